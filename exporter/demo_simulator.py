"""The demo's simulated estate, in a process of its own.

In one process with the exporter, the simulator's Python work (it serialises every PSRP answer)
competed with the collectors for one interpreter lock: at the 2 s interval of the alerting tests the
demo used 82% of a core, and a machine a little slower or busier than usual left runs past their
deadlines, so the estate looked broken while only the demo was starved. Real servers are other
machines; the demo's are now at least another process. It is started with ``spawn`` (no copy of the
exporter's threads and locks), says where its hosts listen over a pipe, and ends when told to or when
that pipe closes (the demo ended without telling it).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from typing import Any

from exporter import logsetup

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0  # a spawned interpreter imports the simulator and makes its TLS material
STOP_WAIT_SECONDS = 5.0  # the simulator closes every listener and connection at once

READY, FAILED, STOP = "ready", "failed", "stop"


class SimulatorProcessError(Exception):
    """The simulator did not start; the text says why (a bad scenario, a port in use)."""

    def __init__(self, message: str, bad_scenario: bool = False) -> None:
        super().__init__(message)
        self.bad_scenario = bad_scenario  # the user's --scenario is wrong, not the machine


@dataclass(frozen=True)
class SimulatorOptions:
    scenario: str
    listen_host: str
    control_port: int
    tls: bool
    username: str
    password: str
    log_level: str = "info"
    log_format: str = "logfmt"


def _serve(conn: Any, options: SimulatorOptions) -> None:
    """The child: start the estate, say where it is, run until told to stop or the pipe closes."""
    # Ctrl-C and `kill -HUP` reach the whole process group: the demo decides when the estate stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logsetup.configure(options.log_level, options.log_format)
    from simulator.server import Simulator

    try:
        sim = Simulator(scenario=options.scenario, listen_host=options.listen_host,
                        control_port=options.control_port, tls=options.tls,
                        username=options.username, password=options.password)
    except ValueError as exc:  # ScenarioError: unknown name or a broken scenario file
        conn.send((FAILED, f"--scenario {options.scenario}: {exc}", True))
        return
    try:
        sim.start()
    except (OSError, ValueError) as exc:
        conn.send((FAILED, f"cannot start the simulator: {exc}", False))
        return
    try:
        conn.send((READY, sim.hosts(), sim.ca_cert_path, sim.control_url))
        while True:
            try:
                if conn.recv() == STOP:
                    break
            except (EOFError, OSError):  # the demo is gone
                break
    finally:
        sim.stop()


class SimulatorProcess:
    """The parent's handle: the same ``hosts()``, ``ca_cert_path`` and ``control_url`` as a
    :class:`simulator.server.Simulator`, and ``stop()``."""

    def __init__(self, options: SimulatorOptions) -> None:
        self._options = options
        self._context = multiprocessing.get_context("spawn")
        self._conn: Any = None
        self._process: Any = None
        self._hosts: dict[str, Any] = {}
        self.ca_cert_path: str | None = None
        self.control_url = ""
        self._stop_lock = threading.Lock()

    def start(self) -> "SimulatorProcess":
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child_end, self._options),
                                        name="lync-owa-demo-simulator", daemon=True)
        process.start()
        child_end.close()  # only the child's copy stays: recv() sees EOF when the child ends
        self._conn, self._process = parent_end, process
        try:
            if not parent_end.poll(START_TIMEOUT_SECONDS):
                raise SimulatorProcessError(f"the simulator did not start within {START_TIMEOUT_SECONDS:.0f}s")
            answer = parent_end.recv()
        except (EOFError, OSError):
            process.join(1.0)
            self.stop()
            raise SimulatorProcessError(f"the simulator ended while starting (exit code {process.exitcode})") from None
        except SimulatorProcessError:
            self.stop()
            raise
        if answer[0] != READY:
            self.stop()
            raise SimulatorProcessError(answer[1], bad_scenario=answer[2])
        _, self._hosts, self.ca_cert_path, self.control_url = answer
        log.debug("simulator process started", extra={"pid": process.pid})
        return self

    def hosts(self) -> dict[str, Any]:
        return dict(self._hosts)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Tell the simulator to stop and wait for it, bounded; a simulator that does not end is killed."""
        with self._stop_lock:
            conn, process = self._conn, self._process
            self._conn = None
            if conn is not None:
                try:
                    conn.send(STOP)
                except (OSError, ValueError):  # it has already ended
                    pass
                conn.close()
            if process is not None and process.is_alive():
                process.join(STOP_WAIT_SECONDS)
                if process.is_alive():
                    log.warning("the simulator did not stop within %.0fs; killing it", STOP_WAIT_SECONDS)
                    process.kill()
                    process.join(1.0)
