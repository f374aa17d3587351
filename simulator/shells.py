"""The WinRS shell operations of a PowerShell endpoint, mapped onto RunspaceShells.

Create (with creationXml), Command (with the first CreatePipeline fragment in Arguments), Send,
Receive, Signal (terminate, powershell/signal/crtl_c), Delete and Get (pypsrp's ``is_alive``), as
pypsrp's shell.py and powershell.py send them.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
import uuid

from simulator import cmdlets, wsman
from simulator.psrp_session import ProtocolError, RunspaceShell
from simulator.runtime import SHELL_IDLE_TIMEOUT, HostRuntime

WINDOWS_CONFIGURATION = "Microsoft.PowerShell"
EXCHANGE_CONFIGURATION = "Microsoft.Exchange"
# A fragment no PSRP client accepts: fragment 7 of an object never started (the malformed fault).
CORRUPT_FRAGMENT = struct.pack(">QQBI", 4242, 7, 0x2, 9) + b"\x00garbage!"


class ShellService:
    """Answers the WSMan requests of one endpoint ("windows" on /wsman, "exchange" on /PowerShell,
    "lync" on /OcsPowershell)."""

    def __init__(self, runtime: HostRuntime, endpoint: str, endpoint_url: str) -> None:
        self.runtime = runtime
        self.endpoint = endpoint
        self.endpoint_url = endpoint_url

    def handle(self, request: wsman.Request, user: str, client_ip: str) -> bytes:
        verb = request.verb
        try:
            if verb == "Get" and request.action.startswith(wsman.ACTION_BASE_TRANSFER):
                return self._get(request)
            if verb == "Create":
                return self._create(request, user, client_ip)
            handler = {
                "Command": self._command,
                "Send": self._send,
                "Receive": self._receive,
                "Signal": self._signal,
                "Delete": self._delete,
            }.get(verb)
            if handler is None:
                raise wsman.WSManFault(wsman.ACTION_NOT_SUPPORTED, "a:ActionNotSupported",
                                       f"The WS-Management service does not support the action {request.action}.")
            return handler(request)
        except ProtocolError as err:
            raise wsman.invalid_request(str(err)) from None

    # ------------------------------------------------------------ helpers

    def _configuration(self, request: wsman.Request) -> tuple[str, list[str] | None]:
        """(configuration name, visible cmdlets for a JEA endpoint) of the request's resource URI."""
        uri = request.resource_uri
        if not uri.lower().startswith(wsman.POWERSHELL_URI.lower()):
            raise wsman.WSManFault(wsman.RESOURCE_NOT_FOUND, "w:DestinationUnreachable",
                                   f"The WS-Management service cannot process the request. The resource URI ({uri}) "
                                   "was not found in the WS-Management catalog.")
        name = uri[len(wsman.POWERSHELL_URI):]
        if self.endpoint == cmdlets.EXCHANGE_ENDPOINT:
            if name.lower() == EXCHANGE_CONFIGURATION.lower():
                return EXCHANGE_CONFIGURATION, None
        elif self.endpoint == cmdlets.LYNC_ENDPOINT:
            # /OcsPowershell is reached with the default configuration name (New-PSSession -ConnectionUri
            # https://<front end>/OcsPowershell names none); IIS, not WinRM, decides what runs there.
            if name.lower() == WINDOWS_CONFIGURATION.lower():
                return WINDOWS_CONFIGURATION, None
        else:
            if name.lower() == WINDOWS_CONFIGURATION.lower():
                return WINDOWS_CONFIGURATION, None
            jea = self.runtime.estate.scenario.model.jea_configurations
            for jea_name, config in jea.items():
                if jea_name.lower() == name.lower():
                    return jea_name, list(config.visible_cmdlets)
        raise wsman.configuration_not_found(name, self.runtime.name)

    def _shell(self, request: wsman.Request) -> RunspaceShell:
        shell_id = request.selectors.get("ShellId", "")
        shell = self.runtime.shell(shell_id) if shell_id else None
        if shell is None:
            raise wsman.shell_not_found(shell_id)
        shell.set_max_envelope(request.max_envelope)
        return shell

    @staticmethod
    def _b64(text: str | None) -> bytes:
        try:
            return base64.b64decode((text or "").strip(), validate=True)
        except (binascii.Error, ValueError):
            raise wsman.invalid_request("stream data is not base64") from None

    # ------------------------------------------------------------ actions

    def _create(self, request: wsman.Request, user: str, client_ip: str) -> bytes:
        configuration, visible = self._configuration(request)
        delay = self.runtime.faults.open_latency_seconds()
        if delay and self.runtime.stopping.wait(delay):
            raise wsman.operation_timeout()
        shell_el = request.find("rsp:Shell")
        creation = request.find("rsp:Shell/pwsh:creationXml")
        if shell_el is None or creation is None:
            raise wsman.invalid_request("Create needs rsp:Shell with creationXml")
        shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
        view = self.runtime.view()
        ps_version = "5.1.17763.1" if view.host.windows.os_version.startswith("10.0.17763") else "5.1.14393.0"
        shell = RunspaceShell(shell_id, self.endpoint, configuration, visible, self.runtime.view,
                              self.runtime.faults, ps_version)
        shell.set_max_envelope(request.max_envelope)
        with shell.lock:
            shell.open(self._b64(creation.text))
        self.runtime.add_shell(shell)
        body = wsman.shell_created(self.endpoint_url, request.resource_uri, shell_id, user, client_ip,
                                   SHELL_IDLE_TIMEOUT)
        return wsman.response(request, body)

    def _command(self, request: wsman.Request) -> bytes:
        shell = self._shell(request)
        line = request.find("rsp:CommandLine")
        if line is None:
            raise wsman.invalid_request("Command needs rsp:CommandLine")
        command_id = (line.get("CommandId") or str(uuid.uuid4())).upper()
        arguments = line.find("rsp:Arguments", wsman.NS)
        with shell.lock:
            shell.command(command_id, self._b64(arguments.text if arguments is not None else ""))
        self.runtime.count_command()
        return wsman.response(request, wsman.command_created(command_id))

    def _send(self, request: wsman.Request) -> bytes:
        shell = self._shell(request)
        streams = request.body.findall("rsp:Send/rsp:Stream", wsman.NS)
        if not streams:
            raise wsman.invalid_request("Send needs rsp:Stream")
        with shell.lock:
            for stream in streams:
                shell.send(stream.get("CommandId"), stream.get("Name", "stdin"), self._b64(stream.text))
        return wsman.response(request, "<rsp:SendResponse/>")

    def _receive(self, request: wsman.Request) -> bytes:
        shell = self._shell(request)
        desired = request.find("rsp:Receive/rsp:DesiredStream")
        command_id = desired.get("CommandId") if desired is not None else None
        deadline = time.monotonic() + min(request.operation_timeout, 60.0)
        while True:
            with shell.lock:
                chunks, done = shell.receive(command_id, request.max_envelope)
            if chunks or done or time.monotonic() >= deadline or self.runtime.stopping.is_set():
                break
            # Nothing yet: like Windows, hold the Receive until data or the OperationTimeout.
            self.runtime.stopping.wait(0.05)
        if not chunks and not done:
            raise wsman.operation_timeout()
        if self.runtime.faults.has("malformed"):
            chunks = [CORRUPT_FRAGMENT]
        streams = [base64.b64encode(c).decode("ascii") for c in chunks]
        body = wsman.received(streams, command_id.upper() if command_id else None,
                              done if command_id else None)
        return wsman.response(request, body)

    def _signal(self, request: wsman.Request) -> bytes:
        shell = self._shell(request)
        signal = request.find("rsp:Signal")
        code = request.find("rsp:Signal/rsp:Code")
        command_id = signal.get("CommandId") if signal is not None else None
        if not command_id or code is None:
            raise wsman.invalid_request("Signal needs a CommandId and a Code")
        with shell.lock:
            shell.signal(command_id, (code.text or "").strip())
        self.runtime.count_signal()
        return wsman.response(request, "<rsp:SignalResponse/>")

    def _delete(self, request: wsman.Request) -> bytes:
        shell_id = request.selectors.get("ShellId", "")
        if self.runtime.remove_shell(shell_id) is None:
            raise wsman.shell_not_found(shell_id)
        return wsman.response(request, "")

    def _get(self, request: wsman.Request) -> bytes:
        if request.resource_uri.lower().rstrip("/") == wsman.CONFIG_URI:
            return wsman.response(request, wsman.max_envelope_config(500))
        shell_id = request.selectors.get("ShellId", "")
        shell = self.runtime.shell(shell_id) if shell_id else None
        if shell is None:
            raise wsman.shell_not_found(shell_id)
        now = time.monotonic()
        body = wsman.shell_info(
            wsman.POWERSHELL_URI + shell.configuration, shell.shell_id, "", "", SHELL_IDLE_TIMEOUT,
            now - shell.created, 0.0, state="Connected")
        return wsman.response(request, body)
