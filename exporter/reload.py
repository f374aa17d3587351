"""Reloading the configuration without a restart: SIGHUP, or ``POST /-/reload`` when
``--web.enable-lifecycle`` is given (Prometheus' flag and endpoint).

A reload reads the configuration file and the web configuration file again. When either is broken
nothing changes: the problems are logged, the running configuration stays, and
``lync_owa_config_last_reload_successful`` reads 0 until a reload succeeds (Prometheus' and
Alertmanager's names for the same thing). Otherwise the exporter applies only the difference
(``Exporter.apply``). Reloads are serialised: a SIGHUP and an HTTP reload never interleave.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, NamedTuple

from prometheus_client.core import Metric

from collectors import registry
from exporter.config import ConfigError, load_config
from exporter.metrics import reload_families
from exporter.web_config import WebConfigError

if TYPE_CHECKING:
    from exporter.app import Exporter

log = logging.getLogger(__name__)


class ReloadResult(NamedTuple):
    ok: bool
    message: str  # what changed, or every problem that kept the running configuration


class ReloadStatus:
    """The reload metrics, rendered at every scrape (a prometheus_client custom collector).
    Loading the configuration at start counts as the first successful reload, as in Prometheus."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.successful = True
        self.last_success_timestamp = clock()

    def record(self, ok: bool) -> None:
        self.successful = ok
        if ok:
            self.last_success_timestamp = self.clock()

    def collect(self) -> list[Metric]:
        return reload_families(self.successful, self.last_success_timestamp)


class Reloader:
    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self._lock = threading.Lock()

    def reload(self) -> ReloadResult:
        with self._lock:
            result = self._reload()
            self.exporter.reload_status.record(result.ok)
        return result

    def _reload(self) -> ReloadResult:
        path = self.exporter.config.path
        problems: list[str] = []
        config = None
        try:
            config = load_config(path, registry.by_name())
        except ConfigError as exc:
            problems.append(str(exc))
        web = self.exporter.web
        web_config = None
        if web is not None:
            try:
                web_config = web.load()
            except WebConfigError as exc:
                problems.append(str(exc))
        if problems or config is None:
            text = "\n".join(problems)
            log.error("reload failed, the running configuration stays: %s", text.replace("\n", "; "),
                      extra={"file": str(path)})
            return ReloadResult(False, text)
        try:
            if web is not None and web_config is not None:
                web.use(web_config)
            change = self.exporter.apply(config)
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the exporter down
            log.exception("reload failed while applying the new configuration")
            return ReloadResult(False, f"applying the configuration failed: {type(exc).__name__}: {exc}")
        log.info("configuration reloaded", extra={"file": str(path), "jobs": change.summary()})
        return ReloadResult(True, change.summary())
