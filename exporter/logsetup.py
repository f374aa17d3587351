"""Logging in the formats Prometheus operators expect: logfmt (default) or JSON, one line each."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
import warnings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged as a field.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# Libraries that log every run (pypsrp opens and closes pipelines at INFO, apscheduler reports every
# firing, watchdog every event): at WARNING unless --log.level=debug, so a healthy estate stays quiet.
# Even then only from INFO: their DEBUG output is every SOAP message whole, useful only when asked
# for by name (logging.getLogger("pypsrp").setLevel(logging.DEBUG)).
NOISY_LIBRARIES = ("pypsrp", "psrpcore", "requests", "urllib3", "apscheduler", "watchdog", "spnego")

# pypsrp logs these at ERROR, with a traceback, and then raises: the remoting layer turns them into the
# job's typed failure (timeout, unreachable), which the job's failure log reports once, not every run.
RAISED_AFTER_LOGGING = {
    "pypsrp.wsman": frozenset({
        "%s during WSMan request - attempt %d",
        "%s during initial authentication request - attempt %d",
        "Failed to parse WSManFault message on WinRM error response, raising original WinRMTransportError",
    }),
}


class _DropRaised(logging.Filter):
    def __init__(self, templates: frozenset[str]) -> None:
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.templates


_DROP_FILTERS = {name: _DropRaised(templates) for name, templates in RAISED_AFTER_LOGGING.items()}

# APScheduler warns at every firing it skips ("maximum number of running instances reached") or
# misses ("was missed by") while a job or the pool is busy: per job and message, the first warning is
# logged, then at most one every REPEAT_SECONDS (as a job's own failures, exporter.failure_log).
PER_FIRING_LOGGERS = ("apscheduler.scheduler", "apscheduler.executors.default")
REPEAT_SECONDS = 600.0


class _OncePerJob(logging.Filter):
    def __init__(self, every: float = REPEAT_SECONDS) -> None:
        super().__init__()
        self.every = every
        self._last: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.ERROR:
            return True
        job = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        key = (record.name, str(record.msg), job.split(" (trigger:")[0])  # the job, not its next run time
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                return False
            self._last[key] = now
        return True


_per_firing_filter = _OncePerJob()


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower().replace("warning", "warn"),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
    return fields


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


_warnings_log = logging.getLogger("py.warnings")


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 - warnings' signature
    """Python warnings (urllib3's InsecureRequestWarning when a check is told not to verify TLS, a
    library's DeprecationWarning) as one log line in the configured format, not warnings' own two
    lines of text on stderr. The warnings filters still decide how often one is shown (by default
    once per place in the code)."""
    _warnings_log.warning("%s", message, extra={"category": category.__name__, "where": f"{filename}:{lineno}"})


def configure(level: str = "info", fmt: str = "logfmt", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    library_level = logging.INFO if level == "debug" else max(LEVELS[level], logging.WARNING)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
    warnings.showwarning = _log_warning
    for name, drop in _DROP_FILTERS.items():
        logging.getLogger(name).removeFilter(drop)
        if level != "debug":
            logging.getLogger(name).addFilter(drop)
    global _per_firing_filter
    old_filter, _per_firing_filter = _per_firing_filter, _OncePerJob()  # configured afresh: nothing held back yet
    for name in PER_FIRING_LOGGERS:
        logging.getLogger(name).removeFilter(old_filter)
        if level != "debug":
            logging.getLogger(name).addFilter(_per_firing_filter)
