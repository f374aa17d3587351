"""``--web.config.file`` kept current while serving, as exporter-toolkit does: the file (and the
certificate, key and client CA it names) is checked at every connection and request, and read again
when one of them changed; a reload reads it again regardless.

Checking costs a few ``stat`` calls; reading happens only after a change. A broken file keeps the
configuration in use and is reported once per change of the files, not at every request. Turning TLS
on or off needs a restart (the listening socket's protocol is chosen at start, as in exporter-toolkit).
Unchanged basic-auth users keep their verifier, so remembered successful checks stay valid.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from exporter.basic_auth import BasicAuth
from exporter.web_config import WebConfig, WebConfigError, load_web_config

log = logging.getLogger(__name__)

Signature = tuple[tuple[int, int, int] | None, ...]


class WebServer(Protocol):
    """What the HTTP server exposes for its protection (exporter.http.ExporterHTTPServer)."""

    ssl_context: object
    basic_auth: BasicAuth | None
    response_headers: dict[str, str]
    before_request: object


def _files(config: WebConfig) -> list[Path]:
    files = [Path(config.path)]
    if config.tls is not None:
        files += [config.tls.cert_file, config.tls.key_file]
        if config.tls.client_ca_file is not None:
            files.append(config.tls.client_ca_file)
    return files


def _signature(files: list[Path]) -> Signature:
    """What tells that a file changed (an editor's rename, a Kubernetes secret's symlink swap too)."""
    found = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            found.append(None)
        else:
            found.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(found)


class LiveWebConfig:
    def __init__(self, initial: WebConfig, server: WebServer) -> None:
        self.current = initial
        self.path = Path(initial.path)
        self.server = server
        self._files = _files(initial)
        self._signature = _signature(self._files)
        self._broken_signature: Signature | None = None  # the files' state already reported as broken
        self._lock = threading.Lock()
        server.before_request = self.refresh

    def load(self) -> WebConfig:
        """Read the file again; raises WebConfigError for a broken file or a change needing a restart."""
        new = load_web_config(self.path)
        if (new.ssl_context is None) != (self.current.ssl_context is None):
            now = "on" if new.ssl_context is not None else "off"
            raise WebConfigError(self.path, [f"the file now turns TLS {now}; that needs a restart (the running "
                                             f"server keeps TLS {'off' if now == 'on' else 'on'})"])
        return new

    def use(self, new: WebConfig) -> None:
        """Protect the next connections and requests with ``new``."""
        with self._lock:
            self._use(new)

    def _use(self, new: WebConfig) -> None:
        server = self.server
        if dict(new.basic_auth_users) != dict(self.current.basic_auth_users):
            server.basic_auth = BasicAuth(new.basic_auth_users) if new.basic_auth_users else None
        server.response_headers = dict(new.headers)
        server.ssl_context = new.ssl_context
        self.current = new
        self._files = _files(new)
        self._signature = _signature(self._files)
        self._broken_signature = None
        for warning in new.warnings:
            log.warning("web configuration: %s", warning, extra={"file": str(self.path)})

    def refresh(self) -> None:
        """Called before every connection and request: re-read only when a file changed."""
        signature = _signature(self._files)
        if signature == self._signature or signature == self._broken_signature:
            return
        with self._lock:
            signature = _signature(self._files)
            if signature == self._signature or signature == self._broken_signature:
                return
            try:
                new = self.load()
            except WebConfigError as exc:
                self._broken_signature = signature
                log.error("web configuration changed but cannot be used; serving with the previous one: %s",
                          "; ".join(exc.problems), extra={"file": str(self.path)})
                return
            self._use(new)
        log.info("web configuration re-read after a change", extra={"file": str(self.path),
                                                                      "web": new.summary()})
