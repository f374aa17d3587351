"""Quiet by default: the libraries' chatter shows only with --log.level=debug; the exporter's own info stays."""

from __future__ import annotations

import inspect
import io
import logging
import re
import warnings

import pytest

from exporter import logsetup


@pytest.fixture
def configured():
    stream = io.StringIO()

    def configure(level: str) -> io.StringIO:
        stream.seek(0)
        stream.truncate()
        logsetup.configure(level, "logfmt", stream=stream)
        return stream

    yield configure
    logsetup.configure("info", "logfmt")


def _emit_everywhere() -> None:
    for name in ("pypsrp.powershell", "requests", "urllib3.connectionpool", "apscheduler.executors.default",
                 "watchdog.observers", "spnego", "psrpcore"):
        logger = logging.getLogger(name)
        logger.info("library info from %s", name)
        logger.warning("library warning from %s", name)
    logging.getLogger("exporter.scheduler").info("exporter info")


def test_default_level_keeps_library_info_out_and_their_warnings_in(configured):
    stream = configured("info")
    _emit_everywhere()
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if "library info" in line]
    assert len([line for line in lines if "library warning" in line]) == 7
    assert any('msg="exporter info"' in line for line in lines)


def test_debug_shows_the_libraries_info_but_not_their_message_dumps(configured):
    stream = configured("debug")
    _emit_everywhere()
    logging.getLogger("pypsrp.messages").debug("a whole SOAP message")
    logging.getLogger("exporter.scheduler").debug("exporter debug")
    text = stream.getvalue()
    assert text.count("library info") == 7 and "a whole SOAP message" not in text
    assert 'msg="exporter debug"' in text


def test_warn_level_is_not_lowered_for_libraries(configured):
    stream = configured("error")
    _emit_everywhere()
    assert stream.getvalue() == ""


def test_failures_pypsrp_logs_and_then_raises_show_only_at_debug(configured):
    """The job reports them as its own typed failure (once); pypsrp would log one per run, with a traceback."""
    wsman = logging.getLogger("pypsrp.wsman")
    stream = configured("info")
    wsman.error("%s during WSMan request - attempt %d", "ReadTimeout", 0)
    wsman.error("Failed to parse WSManFault message on WinRM error response, raising original WinRMTransportError")
    wsman.error("something pypsrp does not raise")
    (line,) = [line for line in stream.getvalue().splitlines() if "pypsrp" in line]
    assert line.endswith(' level=error logger=pypsrp.wsman msg="something pypsrp does not raise"')
    stream = configured("debug")
    wsman.error("%s during WSMan request - attempt %d", "ReadTimeout", 0)
    assert 'msg="ReadTimeout during WSMan request - attempt 0"' in stream.getvalue()


def test_apscheduler_per_firing_warnings_are_logged_once_per_job(configured):
    """A job still running when its next firing is due: APScheduler would warn at every firing."""
    scheduler = logging.getLogger("apscheduler.scheduler")
    stream = configured("info")
    skipped = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
    for minute in range(5):
        for job in ("lync_topology/fe01", "lync_topology/fe02"):
            scheduler.warning(skipped, f"{job} (trigger: interval[0:00:02], next run at: 10:1{minute}:28 UTC)", 1)
    scheduler.error("Job %s raised an exception", "lync_topology/fe01")
    lines = stream.getvalue().splitlines()
    assert len([line for line in lines if "lync_topology/fe01 (trigger" in line]) == 1
    assert len([line for line in lines if "lync_topology/fe02 (trigger" in line]) == 1
    assert any("raised an exception" in line for line in lines)  # errors are never held back


def test_python_warnings_are_one_log_line_in_the_configured_format(configured):
    """urllib3 warns on every unverified HTTPS request (a check told not to verify TLS): the operator
    sees it as a log line like every other, not as warnings' own two lines of text."""
    from urllib3.exceptions import InsecureRequestWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        stream = configured("warn")
        warnings.warn("Unverified HTTPS request is being made to host 'ex01'", InsecureRequestWarning)
        line = inspect.currentframe().f_lineno - 1
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r'ts=\S+ level=warn logger=py.warnings msg="Unverified HTTPS request is being made to host \'ex01\'" '
        rf"category=InsecureRequestWarning where=\S+/tests/unit/test_logsetup.py:{line}", lines[0]), lines[0]
