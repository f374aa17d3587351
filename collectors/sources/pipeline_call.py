"""One pipeline on an open runspace pool: Command, then Receive until it ends, under a deadline.

A pipeline costs two round trips when its answer fits one Receive (Command, Receive), not three:
no terminate Signal follows its end. pypsrp's ``PowerShell.close()`` sends one and waits for the
answer; the protocol does not ask for it. The server clears a pipeline itself when it reaches
Completed, Failed or Stopped and sends nothing more for it (MS-PSRP 3.2.5.4.21 PIPELINE_STATE,
https://msdn.microsoft.com/en-us/library/ee175851.aspx), and the client signals a pipeline only to
stop one still running (MS-PSRP 3.1.5.3.9, code ``powershell/signal/crtl_c``,
https://learn.microsoft.com/openspecs/windows_protocols/ms-psrp/59bb0f35-1a5b-441d-a774-4411cb47899a). So the pipeline is forgotten locally, as ``close()`` does after its
Signal, and a pipeline past its deadline is still stopped with ``crtl_c``. Not checked on the wire of a
real server here (the shared captures hold answers, not traffic): were a Windows build to keep
finished commands until a terminate, they would pile up in a long-lived shell until it closes.
"""

from __future__ import annotations

from typing import Any

from pypsrp.complex_objects import PSInvocationState
from pypsrp.powershell import PowerShell, RunspacePool

from collectors.contract import CollectError, Deadline, ErrorKind, ErrorRecordInfo
from collectors.sources.remoting_failures import error_info
from collectors.sources.request_deadline import requests_end_within

# The longest one Receive waits on the server for output (its WSMan OperationTimeout, in seconds).
MAX_RECEIVE_WAIT = 20
# What stopping a pipeline past its deadline may take (the crtl_c Signal): a run ends by its
# deadline plus this, and the scheduler has abandoned it half a second after the deadline anyway.
STOP_SECONDS = 1.0


def run_pipeline(
    pool: RunspacePool,
    cmdlet: str,
    parameters: dict[str, Any],
    select: list[str] | None,
    deadline: Deadline,
    where: str,
) -> tuple[list[Any], list[ErrorRecordInfo], bool]:
    """(output objects, error records, whether the pipeline failed) of ``cmdlet``; never script text.

    Every request is bounded by the run's deadline (collectors.sources.request_deadline, set by the
    caller); a pipeline still running when the deadline passes between two Receives is stopped.
    """
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    if parameters:
        ps.add_parameters(parameters)
    if select:  # a second command of the same pipeline, still no script text
        ps.add_cmdlet("Select-Object").add_parameter("Property", select)
    ps.begin_invoke()
    try:
        while ps.state == PSInvocationState.RUNNING:
            left = deadline.remaining()
            if left <= 0:
                _stop_quietly(ps)
                raise CollectError(ErrorKind.TIMEOUT, where, "deadline passed while waiting for output")
            # The WSMan operation timeout makes the server answer within it even with no output. A
            # Receive not answered by the deadline raises (a timeout): no Signal is sent to a host that
            # did not answer, it would wait as long; the caller drops the pool.
            ps.poll_invoke(timeout=max(1, min(int(left) - 1, MAX_RECEIVE_WAIT)))
    finally:
        pool.pipelines.pop(ps.id, None)  # what close() does after its Signal; the server has let go
    errors = [error_info(rec) for rec in ps.streams.error]
    failed = bool(ps.had_errors) or ps.state == PSInvocationState.FAILED
    return list(ps.output), errors, failed


def _stop_quietly(ps: PowerShell) -> None:
    try:
        with requests_end_within(STOP_SECONDS):
            ps.stop()
    except Exception:  # noqa: BLE001 - the server is slow or gone; the pool is dropped anyway
        pass
