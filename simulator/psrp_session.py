"""One WinRS shell of a PowerShell endpoint: a psrpcore ServerRunspacePool and its pipelines.

The WSMan layer hands in the raw PSRP bytes of Create (creationXml), Command (first fragment of
CreatePipeline), Send (the rest, or input) and asks for output on Receive. psrpcore is sans-IO:
it parses fragments into events and queues answer messages; this class runs the cmdlet of each
CreatePipeline synchronously, then keeps the answer fragments per target (pool or pipeline) so a
Receive for one pipeline never gets another's data, and packs them to the client's MaxEnvelopeSize.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from psrpcore import ServerPipeline, ServerRunspacePool
from psrpcore._payload import PSRPPayload, StreamType
from psrpcore.types import (
    ErrorCategory,
    PipelineState,
    PSInvocationState,
    PSPrimitiveDictionary,
    PSVersion,
)

from simulator import cmdlets, errors
from simulator.cmdlets.base import Invocation, Output
from simulator.estate import HostView
from simulator.faults import FaultSet

log = logging.getLogger(__name__)

_TERMINAL = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
# Room left in an envelope for the SOAP around the streams; what remains is base64 (4/3 larger).
_ENVELOPE_OVERHEAD = 4096
_MAX_FRAGMENT = 64 * 1024


class ProtocolError(Exception):
    """Input the server cannot process; the WSMan layer answers it with a fault."""


def payload_budget(max_envelope: int) -> int:
    """Raw PSRP bytes that fit a Receive response of ``max_envelope`` bytes."""
    return max(((max_envelope - _ENVELOPE_OVERHEAD) * 3) // 4, 1024)


class _PipelineOutput(Output):
    """Output of one cmdlet run, written into its psrpcore pipeline."""

    def __init__(self, pipeline: ServerPipeline, error_action: str) -> None:
        super().__init__(error_action)
        self.pipeline = pipeline

    def write(self, obj: Any) -> None:
        self.pipeline.write_output(obj)

    def warning(self, message: str) -> None:
        self.pipeline.write_warning(message)

    def _error(self, spec: errors.ErrorSpec) -> None:
        record = spec.record()
        self.pipeline.write_error(
            exception=record.Exception,
            category_info=record.CategoryInfo,
            target_object=record.TargetObject,
            fully_qualified_error_id=record.FullyQualifiedErrorId,
        )


class _CollectingOutput(Output):
    """The first command of ``X | Select-Object``: objects are kept for the next command, errors and
    warnings go straight to the pipeline (as PowerShell's error stream does)."""

    def __init__(self, final: _PipelineOutput) -> None:
        super().__init__(final.error_action)
        self.final = final
        self.objects: list[Any] = []

    def write(self, obj: Any) -> None:
        self.objects.append(obj)

    def warning(self, message: str) -> None:
        self.final.warning(message)

    def _error(self, spec: errors.ErrorSpec) -> None:
        self.final._error(spec)


class RunspaceShell:
    """Server side of one RunspacePool. Not thread-safe by itself: the caller holds ``lock``."""

    def __init__(
        self,
        shell_id: str,
        endpoint: str,
        configuration: str,
        visible_cmdlets: list[str] | None,
        view_factory: Callable[[], HostView],
        faults: FaultSet,
        ps_version: str,
    ) -> None:
        self.shell_id = shell_id
        self.endpoint = endpoint
        self.configuration = configuration
        self.lock = threading.Lock()
        self.created = time.monotonic()
        self.last_used = self.created
        self._visible = visible_cmdlets
        self._view_factory = view_factory
        self._faults = faults
        # What Windows PowerShell 5.1 tells a client about itself (pypsrp stores it, pwsh reads it).
        version_table = PSPrimitiveDictionary(
            PSVersion=PSVersion(ps_version),
            PSEdition="Desktop",
            WSManStackVersion=PSVersion("3.0"),
            BuildVersion=PSVersion(ps_version),
            CLRVersion=PSVersion("4.0.30319.42000"),
        )
        self.pool = ServerRunspacePool(application_private_data={"PSVersionTable": version_table})
        self._pipelines: dict[uuid.UUID, ServerPipeline] = {}
        self._outbox: dict[uuid.UUID | None, collections.deque[bytes]] = collections.defaultdict(collections.deque)
        self.fragment_size = _MAX_FRAGMENT
        self.commands_run = 0

    @property
    def pipelines_open(self) -> int:
        return len(self._pipelines)

    # ------------------------------------------------------------ input

    def open(self, creation: bytes) -> None:
        self._feed(creation)

    def command(self, command_id: str, data: bytes) -> None:
        pipeline_id = _uuid(command_id)
        if pipeline_id in self._pipelines:
            raise ProtocolError(f"command {command_id} already exists")
        self._pipelines[pipeline_id] = ServerPipeline(self.pool, pipeline_id)
        self._feed(data)

    def send(self, command_id: str | None, stream: str, data: bytes) -> None:
        if command_id is not None and _uuid(command_id) not in self._pipelines:
            raise ProtocolError(f"unknown command {command_id}")
        if stream == "pr":
            return  # host call answers: no simulated cmdlet makes host calls
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        try:
            self.pool.receive_data(PSRPPayload(data, StreamType.default, None))
            while True:
                event = self.pool.next_event()
                if event is None:
                    break
                kind = type(event).__name__
                if kind == "CreatePipelineEvent":
                    self._run(self._pipelines[event.pipeline_id], event.pipeline)
                elif kind == "GetCommandMetadataEvent":
                    pipeline = self._pipelines[event.pipeline_id]
                    pipeline.start()
                    pipeline.complete()
        except ProtocolError:
            raise
        except Exception as err:  # psrpcore rejects malformed or out-of-order client data
            raise ProtocolError(f"invalid PSRP data: {err}") from err
        self._drain()

    # ------------------------------------------------------------ execution

    def _run(self, pipeline: ServerPipeline, powershell: Any) -> None:
        pipeline.start()
        self.commands_run += 1
        statements: list[list[Any]] = [[]]
        for command in powershell.commands:
            statements[-1].append(command)
            if command.end_of_statement:
                statements.append([])
        try:
            for statement in (s for s in statements if s):
                self._run_statement(pipeline, statement)
        except errors.TerminatingError as err:
            self._fail(pipeline, err.spec)
            return
        except Exception:  # a simulator bug must look like a failed command, not a dead server
            log.exception("simulated cmdlet failed")
            self._fail(pipeline, errors.ErrorSpec(
                "The simulator failed to run this command (see the simulator's log).",
                ["System.InvalidOperationException", "System.SystemException", "System.Exception", "System.Object"],
                ErrorCategory.NotSpecified, "SimulatorInternalError"))
            return
        pipeline.complete()

    def _run_statement(self, pipeline: ServerPipeline, statement: list[Any]) -> None:
        first = statement[0]
        if first.is_script:
            no_language = self.endpoint in (cmdlets.EXCHANGE_ENDPOINT, cmdlets.LYNC_ENDPOINT) or self._visible is not None
            spec = errors.scripts_not_allowed if no_language else errors.scripts_not_simulated
            raise errors.TerminatingError(spec(first.command_text))
        view = self._view_factory()
        found = []
        for command in statement:
            cmd = cmdlets.find(command.command_text, self.endpoint, view, self._visible)
            if cmd is None:
                raise errors.TerminatingError(errors.command_not_found(command.command_text))
            found.append(cmd)
        # One cmdlet, or one cmdlet piped into Select-Object (a restricted endpoint's way to get
        # properties that do not travel, e.g. a certificate's HasPrivateKey); nothing longer.
        if len(found) > 2 or (len(found) == 2 and found[1].name != "Select-Object"):
            raise errors.TerminatingError(errors.invalid_argument(
                "The simulator runs one cmdlet per statement, optionally piped into Select-Object; other "
                "pipelines of cmdlets are not simulated.",
                "SimulatorPipelineNotSupported", found[0].name))
        cmd = found[0]
        params = cmd.bind(list(first.parameters))
        selector = found[1] if len(found) == 2 else None
        select_params = selector.bind(list(statement[1].parameters)) if selector else {}
        out = _PipelineOutput(pipeline, str(params.get("ErrorAction", "Continue")))
        first_out = _CollectingOutput(out) if selector else out
        injected = self._faults.command_fault(cmd.name)
        if injected is not None and injected.kind == "terminating_error":
            raise errors.TerminatingError(errors.injected(cmd.name, cmd.dotnet_class, terminating=True))
        if injected is not None and injected.kind == "non_terminating_error":
            out.error(errors.injected(cmd.name, cmd.dotnet_class, terminating=False))
            if not injected.output:
                return
        cmd.handler(Invocation(cmd, params, view, first_out))
        if selector is not None:
            assert isinstance(first_out, _CollectingOutput)
            selector.handler(Invocation(selector, select_params, view, out, input=first_out.objects))

    def _fail(self, pipeline: ServerPipeline, spec: errors.ErrorSpec) -> None:
        # psrpcore's ServerPipeline has no public "failed": send the state message it would send.
        pipeline.prepare_message(
            PipelineState(PipelineState=int(PSInvocationState.Failed), ExceptionAsErrorRecord=spec.record())
        )
        pipeline.state = PSInvocationState.Failed

    # ------------------------------------------------------------ output

    def _drain(self) -> None:
        while True:
            payload = self.pool.data_to_send(self.fragment_size)
            if payload is None:
                return
            self._outbox[payload.pipeline_id].append(payload.data)

    def set_max_envelope(self, max_envelope: int) -> None:
        self.fragment_size = max(min(payload_budget(max_envelope), _MAX_FRAGMENT), 1024)

    def receive(self, command_id: str | None, max_envelope: int) -> tuple[list[bytes], bool]:
        """(chunks of PSRP fragments that fit the envelope, whether the command is done)."""
        target = _uuid(command_id) if command_id else None
        if target is not None and target not in self._pipelines:
            raise ProtocolError(f"unknown command {command_id}")
        budget = payload_budget(max_envelope)
        queue = self._outbox.get(target) or collections.deque()
        chunks: list[bytes] = []
        used = 0
        while queue and (not chunks or used + len(queue[0]) <= budget):
            chunk = queue.popleft()
            chunks.append(chunk)
            used += len(chunk)
        done = target is not None and self._pipelines[target].state in _TERMINAL and not queue
        if done:
            # Like Windows, forget a pipeline once its last answer is out (MS-PSRP 3.2.5.4.21: the server
            # clears the pipeline when it reaches Completed, Failed or Stopped); a terminate Signal
            # after this finds nothing to do and is still answered.
            self._pipelines.pop(target).close()
            self._outbox.pop(target, None)
        return chunks, done

    def signal(self, command_id: str, code: str) -> None:
        target = _uuid(command_id)
        pipeline = self._pipelines.pop(target, None)
        self._outbox.pop(target, None)
        if pipeline is None:
            return
        if pipeline.state == PSInvocationState.Running:
            pipeline.stop()
        pipeline.close()
        # Anything stop() queued belongs to a command the client has let go of.
        self._drain()
        self._outbox.pop(target, None)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProtocolError(f"invalid identifier {value!r}") from None
