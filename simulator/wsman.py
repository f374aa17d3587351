"""WS-Management SOAP envelopes: parsing requests (with defusedxml) and building answers and faults.

Answers follow what Windows sends, as far as pypsrp looks: ``RelatesTo`` equal to the request's
``MessageID``, ``ResourceCreated`` with the ShellId selector, and faults as HTTP 500 with an
``s:Fault`` holding a ``wsmanfault:WSManFault`` whose ``Code`` is the Windows error number
(pypsrp retries Receive on 2150858793, OperationTimeout).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
import zlib
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

ACTION_BASE_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
ACTION_BASE_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
POWERSHELL_URI = "http://schemas.microsoft.com/powershell/"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
COMMAND_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"

# Windows error numbers (WSManFault Code) the simulator answers with.
OPERATION_TIMEOUT = 2150858793  # 0x80338029: pypsrp's poll_invoke retries on it
SHELL_NOT_FOUND = 2150858843  # 0x8033805B: pypsrp's is_alive treats it as a closed pool
RESOURCE_NOT_FOUND = 2150858752  # 0x80338000
ACTION_NOT_SUPPORTED = 2150858754
INVALID_REQUEST = 2150858817
PROVIDER_FAILURE = 1726  # RPC_S_CALL_FAILED, what a crashing WSMan provider host reports

_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


class WSManFault(Exception):
    """An answer that is a SOAP fault (HTTP 500)."""

    def __init__(self, code: int, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.subcode = subcode
        self.reason = reason


def operation_timeout() -> WSManFault:
    return WSManFault(OPERATION_TIMEOUT, "w:TimedOut",
                      "The WS-Management service cannot complete the operation within the time specified in "
                      "OperationTimeout.")


def shell_not_found(shell_id: str) -> WSManFault:
    return WSManFault(
        SHELL_NOT_FOUND, "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found "
        "on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on "
        "the server. Provide the correct ShellId or create a new shell and retry the operation.")


def configuration_not_found(configuration: str, machine: str) -> WSManFault:
    return WSManFault(
        RESOURCE_NOT_FOUND, "w:DestinationUnreachable",
        f"The WS-Management service cannot process the request. Cannot find the {configuration} session "
        f"configuration in the WSMan: drive on the {machine} computer.")


def invalid_request(detail: str) -> WSManFault:
    return WSManFault(INVALID_REQUEST, "w:SchemaValidationError",
                      f"The WS-Management service cannot process the request because the request is invalid: {detail}")


def provider_failure() -> WSManFault:
    return WSManFault(PROVIDER_FAILURE, "w:InternalError",
                      "The WSMan provider host process did not return a proper response.  A provider in the host "
                      "process may have behaved improperly.")


@dataclasses.dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    operation_timeout: float
    max_envelope: int
    selectors: dict[str, str]
    options: dict[str, str]
    body: Element

    @property
    def verb(self) -> str:
        """The last part of the action URI: Create, Command, Receive..."""
        return self.action.rsplit("/", 1)[-1]

    def find(self, path: str) -> Element | None:
        return self.body.find(path, NS)


def parse_request(data: bytes) -> Request:
    try:
        envelope = SafeET.fromstring(data)
    except Exception as err:  # defusedxml raises ParseError or its own DefusedXmlException subclasses
        raise invalid_request(f"the body is not valid XML ({err.__class__.__name__})") from None
    header = envelope.find("s:Header", NS)
    body = envelope.find("s:Body", NS)
    if header is None or body is None:
        raise invalid_request("a SOAP envelope with Header and Body is required")

    def text(path: str, default: str = "") -> str:
        element = header.find(path, NS)
        return (element.text or "").strip() if element is not None else default

    message_id = text("a:MessageID")
    action = text("a:Action")
    if not message_id or not action:
        raise invalid_request("wsa:MessageID and wsa:Action are required")
    try:
        max_envelope = int(text("w:MaxEnvelopeSize", "153600"))
    except ValueError:
        raise invalid_request("wsman:MaxEnvelopeSize must be a number") from None
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=text("w:ResourceURI"),
        operation_timeout=_seconds(text("w:OperationTimeout", "PT60S")),
        max_envelope=max_envelope,
        selectors={e.get("Name", ""): (e.text or "") for e in header.findall("w:SelectorSet/w:Selector", NS)},
        options={e.get("Name", ""): (e.text or "") for e in header.findall("w:OptionSet/w:Option", NS)},
        body=body,
    )


def _seconds(duration: str) -> float:
    match = _DURATION.match(duration.strip())
    if not match:
        return 60.0
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    namespaces = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items() if p in ("s", "a", "x", "w", "rsp", "p"))
    return (
        f'<s:Envelope xml:lang="en-US" {namespaces}>'
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To><a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def response(request: Request, body: str) -> bytes:
    """The ...Response action answering ``request`` (Create -> CreateResponse...)."""
    return _envelope(request.action + "Response", request.message_id, body)


def fault_body(fault: WSManFault, relates_to: str, machine: str) -> bytes:
    reason = escape(fault.reason)
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{reason} </s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code="{fault.code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{reason} </f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope(FAULT_ACTION, relates_to or "uuid:00000000-0000-0000-0000-000000000000", body)


# ---------------------------------------------------------------- bodies of the shell answers


def shell_created(endpoint_url: str, resource_uri: str, shell_id: str, owner: str, client_ip: str,
                  idle_timeout: float) -> str:
    selector = f'<w:SelectorSet><w:Selector Name="ShellId">{escape(shell_id)}</w:Selector></w:SelectorSet>'
    return (
        f"<x:ResourceCreated><a:Address>{escape(endpoint_url)}</a:Address><a:ReferenceParameters>"
        f"<w:ResourceURI>{escape(resource_uri)}</w:ResourceURI>{selector}</a:ReferenceParameters></x:ResourceCreated>"
        + shell_info(resource_uri, shell_id, owner, client_ip, idle_timeout, 0.0, 0.0)
    )


def shell_info(resource_uri: str, shell_id: str, owner: str, client_ip: str, idle_timeout: float,
               run_time: float, inactivity: float, state: str | None = None) -> str:
    state_xml = f"<rsp:State>{state}</rsp:State>" if state else ""
    return (
        f'<rsp:Shell xmlns:rsp="{NS["rsp"]}"><rsp:ShellId>{escape(shell_id)}</rsp:ShellId>'
        f"<rsp:Name>Runspace1</rsp:Name><rsp:ResourceUri>{escape(resource_uri)}</rsp:ResourceUri>"
        f"<rsp:Owner>{escape(owner)}</rsp:Owner><rsp:ClientIP>{escape(client_ip)}</rsp:ClientIP>"
        f"<rsp:ProcessId>{4000 + zlib.crc32(shell_id.encode()) % 5000}</rsp:ProcessId>"
        f"<rsp:IdleTimeOut>PT{idle_timeout:.3f}S</rsp:IdleTimeOut><rsp:InputStreams>stdin pr</rsp:InputStreams>"
        f"<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut>"
        f"<rsp:Locale>en-US</rsp:Locale><rsp:DataLocale>en-US</rsp:DataLocale>"
        f"<rsp:CompressionMode>XpressCompression</rsp:CompressionMode><rsp:ProfileLoaded>Yes</rsp:ProfileLoaded>"
        f"<rsp:Encoding>UTF8</rsp:Encoding><rsp:BufferMode>Block</rsp:BufferMode>{state_xml}"
        f"<rsp:ShellRunTime>{_duration(run_time)}</rsp:ShellRunTime>"
        f"<rsp:ShellInactivity>{_duration(inactivity)}</rsp:ShellInactivity></rsp:Shell>"
    )


def _duration(seconds: float) -> str:
    total = int(seconds)
    return f"P{total // 86400}DT{total % 86400 // 3600}H{total % 3600 // 60}M{total % 60}S"


def command_created(command_id: str) -> str:
    return f"<rsp:CommandResponse><rsp:CommandId>{escape(command_id)}</rsp:CommandId></rsp:CommandResponse>"


def received(streams: list[str], command_id: str | None, done: bool | None) -> str:
    """``streams`` are base64 texts; ``done`` None for a pool-level Receive (no CommandState)."""
    attr = f' CommandId="{escape(command_id)}"' if command_id else ""
    parts = [f'<rsp:Stream Name="stdout"{attr}>{s}</rsp:Stream>' for s in streams]
    if done is not None:
        state = "Done" if done else "Running"
        exit_code = "<rsp:ExitCode>0</rsp:ExitCode>" if done else ""
        parts.append(f'<rsp:CommandState{attr} State="{COMMAND_STATE}{state}">{exit_code}</rsp:CommandState>')
    return "<rsp:ReceiveResponse>" + "".join(parts) + "</rsp:ReceiveResponse>"


def max_envelope_config(max_envelope_kb: int) -> str:
    return f'<cfg:Config xmlns:cfg="{CONFIG_URI}"><cfg:MaxEnvelopeSizekb>{max_envelope_kb}</cfg:MaxEnvelopeSizekb>' \
           "<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems></cfg:Config>"
