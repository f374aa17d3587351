"""Puts the loopback guard (tests/loopback_guard.py) into a child process the tests start (the demo).

Python imports ``sitecustomize`` at start-up from the first directory of ``sys.path`` that has one:
tests/loopback_guard.py's ``guarded_environment()`` puts this directory first in PYTHONPATH. What the
guard refused is appended, one ``refused:`` line each after an ``installed:`` line for the process, to
the file named by LOOPBACK_GUARD_REPORT when the process exits (several processes may share the file:
the demo and the children it starts), for the test to read.
"""

import atexit
import os

from tests import loopback_guard

_report = os.environ.get("LOOPBACK_GUARD_REPORT")
if _report:
    loopback_guard.install()

    def _write_report() -> None:
        with open(_report, "a", encoding="utf-8") as out:
            out.write(f"installed: pid {os.getpid()}\n")
            out.writelines(f"refused: {what}\n" for what in loopback_guard.REFUSED)

    atexit.register(_write_report)
