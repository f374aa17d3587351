"""The ``credentials`` section: user names, and passwords read from the environment or a file, or
Kerberos keys (a keytab) or tickets (a ticket cache).

Passwords are never written in the configuration itself; this module fetches them from where the
file points (an environment variable or a secret file, relative to the configuration file) and
says precisely why one cannot be had, without ever echoing a password. It also reports what this
installation cannot do (``auth: kerberos`` without gssapi, ``credssp`` without its package) and a
keytab that is unreadable or lacks the credential's principal (see ``auth_support``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from collectors.helpers.paths import FileRefused, read_small_file, resolve_path
from collectors.helpers.values import yaml_type
from exporter.config import auth_support
from exporter.config.errors import Report
from exporter.config.model import (
    ENV_NAME_RE,
    Credential,
    RawCredential,
    none_as_empty_mapping,
)
from exporter.config.yaml_source import KeyPath

__all__ = ["load_credentials"]

log = logging.getLogger("exporter.config")  # the package's name: operators' log filters predate the split

# A password file is a few bytes; refusing big ones avoids reading a log by mistake.
_MAX_PASSWORD_FILE_BYTES = 64 * 1024


def load_credentials(
    section: Any, report: Report, environ: Mapping[str, str], base_dir: Path
) -> dict[str, Credential | None]:
    """name -> Credential, or None for a credential that is defined but broken (so references to it
    are not reported as missing too). Problems go to ``report``."""
    section = none_as_empty_mapping(section)
    if not isinstance(section, dict):
        report.problem(
            ("credentials",), f"must be a mapping of credential name to credential, got {yaml_type(section)}"
        )
        return {}
    passwords = _Passwords(report, environ, base_dir)
    return {name: _load_credential(name, raw, report, passwords) for name, raw in section.items()}


def _load_credential(name: str, raw: Any, report: Report, passwords: _Passwords) -> Credential | None:
    path: KeyPath = ("credentials", name)
    model = report.validate(RawCredential, raw, path)
    # Read the password even if another key is wrong, so an unset variable shows up in the same run.
    password = passwords.read(raw, path, name)
    if model is None:
        return None
    password_based = model.password_env is not None or model.password_file is not None
    problems_before = len(report.problems)
    missing = auth_support.missing_for_auth(model.auth, password_based=password_based)
    if missing:
        report.problem(path + ("auth",), missing)
    keytab = _check_keytab(model, path, report, passwords.base_dir) if model.keytab_file else None
    cache = model.ticket_cache
    if cache is not None and cache != "env" and not _typed_cache(cache):
        cache = str(resolve_path(cache, None, passwords.base_dir))  # a plain path, relative to the config
    if cache is not None and model.keytab_file is not None:
        problem = auth_support.check_ticket_cache_target(cache)
        if problem:
            report.problem(path + ("ticket_cache",), problem)
    if len(report.problems) > problems_before or (password_based and password is None):
        return None
    return Credential(name=name, username=model.username, password=SecretStr(password or ""), auth=model.auth,
                      keytab_file=keytab, ticket_cache=cache)


def _typed_cache(cache: str) -> bool:
    kind, sep, _ = cache.partition(":")
    return bool(sep) and kind.upper() in ("FILE", "DIR", "KEYRING", "KCM", "MEMORY")


def _check_keytab(model: RawCredential, path: KeyPath, report: Report, base_dir: Path) -> str | None:
    keytab = resolve_path(model.keytab_file or "", None, base_dir)
    try:
        principals = auth_support.keytab_principals(keytab)
    except auth_support.KeytabError as exc:
        report.problem(path + ("keytab_file",), str(exc))
        return None
    wanted = model.username
    if not any(p.lower() == wanted.lower() for p in principals):
        shown = ", ".join(principals[:5]) + (f" and {len(principals) - 5} more" if len(principals) > 5 else "")
        report.problem(path + ("keytab_file",),
                       f"keytab {str(keytab)!r} has no keys for {wanted} (it holds {shown}): set username to one "
                       f"of those, or export the user's keys (ktpass /princ {wanted} /out ..., or ktutil addent)")
        return None
    return str(keytab)


class _Passwords:
    def __init__(self, report: Report, environ: Mapping[str, str], base_dir: Path) -> None:
        self.report = report
        self.environ = environ
        self.base_dir = base_dir

    def read(self, raw: Any, path: KeyPath, credential: str) -> str | None:
        if not isinstance(raw, dict):
            return None
        env, file_name = raw.get("password_env"), raw.get("password_file")
        if isinstance(env, str) and ENV_NAME_RE.fullmatch(env) and file_name is None:
            return self._from_env(env, path + ("password_env",))
        if isinstance(file_name, str) and file_name and env is None:
            return self._from_file(file_name, path + ("password_file",), credential)
        return None  # neither or both: reported by the model

    def _from_env(self, variable: str, path: KeyPath) -> str | None:
        value = self.environ.get(variable)
        if value is None:
            self.report.problem(path, f"environment variable {variable} is not set")
        elif value == "":
            self.report.problem(path, f"environment variable {variable} is empty")
        return value or None

    def _from_file(self, file_name: str, path: KeyPath, credential: str) -> str | None:
        file_path = resolve_path(file_name, None, self.base_dir)
        where = f"password file {str(file_path)!r}"
        try:
            content = read_small_file(file_path, _MAX_PASSWORD_FILE_BYTES)
        except FileRefused as exc:  # not a regular file, or too large
            self.report.problem(path, f"{where} is {exc.strerror}")
            return None
        except OSError as exc:
            self.report.problem(path, f"cannot read {where}: {exc.strerror or type(exc).__name__}")
            return None
        try:
            password = content.decode("utf-8").rstrip("\r\n")  # `echo secret > file` adds a newline
        except UnicodeDecodeError:  # its text would quote bytes of the secret
            self.report.problem(path, f"{where} is not UTF-8 text")
            return None
        if not password:
            self.report.problem(path, f"{where} is empty")
            return None
        _warn_if_shared(file_path, credential)
        return password


def _warn_if_shared(file_path: Path, credential: str) -> None:
    try:
        mode = file_path.stat().st_mode
    except OSError:  # just read; gone again since: nothing to warn about
        return
    if os.name == "posix" and mode & 0o077:
        log.warning(
            "password file %s of credential %s is readable by group or others (mode %04o); chmod 600 it",
            file_path,
            credential,
            stat.S_IMODE(mode),
        )
