"""A minimal PowerShell remoting client, to measure what a leaner transport would cost (a prototype).

Not used by the exporter. Only what a poll needs, over Basic authentication on plain HTTP:

- the PSRP layer is psrpcore's (``ClientRunspacePool``/``ClientPowerShell`` state machines, fragments);
- WSMan SOAP envelopes come from byte templates built once per shell: a request substitutes only its
  MessageID, the CommandId and the base64 payload;
- answers are read with expat, streaming: only the ``Stream`` texts and the ``CommandState`` are kept;
- a pipeline's output becomes plain values either straight from its CLIXML (``lean_clixml.walk_output``)
  or through psrpcore's deserializer (``lean_clixml.psrpcore_plain``);
- one persistent HTTP/1.1 connection per endpoint (``lean_http.py``): ``http.client``, or a socket with
  the HTTP framing written there, or (:mod:`asyncio`) the same framing on asyncio streams.

The protocol steps are generators that yield a request body and receive the answer's body
(:func:`drive` / :func:`drive_async`), so the blocking and the asyncio clients share them. Envelopes
copy what pypsrp 0.9 sends (the same headers, namespaces and options); they were tried against the
simulator only, never against a Windows WinRM service.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any, Callable, Generator
from xml.etree import ElementTree
from xml.parsers import expat
from xml.sax.saxutils import escape

from lean_clixml import psrpcore_plain, walk_output
from lean_http import AsyncTransport, RemotingError
from psrpcore import ClientPowerShell, ClientRunspacePool, PSRPPayload, StreamType
from psrpcore._payload import PSRPMessage, create_message
from psrpcore.types import (
    PSInvocationState,
    PSRPMessageType,
    RunspacePoolState,
    serialize,
)

from collectors.contract import Shape, ShapeError
from collectors.sources.normalize import _coerce
from collectors.sources.safe_xml import bounded_fromstring

SHELL_NS = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
_NAMESPACES = (
    f'xmlns:rsp="{SHELL_NS}" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:wsmv="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"'
)
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
OPERATION_TIMEOUT = "PT20S"
MAX_ENVELOPE = 512000

Steps = Generator[bytes, bytes, Any]  # yields request bodies, is sent answer bodies, returns a result


# --------------------------------------------------------------------------- envelopes

class Envelopes:
    """Byte templates of one endpoint's requests; ``shell_id`` fills the selector once the shell exists."""

    def __init__(self, url: str, configuration: str) -> None:
        self.to = escape(url)
        self.resource = escape("http://schemas.microsoft.com/powershell/" + configuration)
        self.session = str(uuid.uuid4()).upper()
        self.shell_id = ""
        self._receive = self._command = self._delete = (b"", b"")

    def _template(self, action: str, options: str, selector: bool) -> tuple[bytes, bytes]:
        selectors = (f'<wsman:SelectorSet><wsman:Selector Name="ShellId">{escape(self.shell_id)}</wsman:Selector>'
                     '</wsman:SelectorSet>') if selector else ""
        head = (f'<s:Envelope {_NAMESPACES}><s:Header><wsa:Action s:mustUnderstand="true">{action}</wsa:Action>'
                '<wsmv:DataLocale s:mustUnderstand="false" xml:lang="en-US" />'
                '<wsman:Locale s:mustUnderstand="false" xml:lang="en-US" />'
                f'<wsman:MaxEnvelopeSize s:mustUnderstand="true">{MAX_ENVELOPE}</wsman:MaxEnvelopeSize>'
                '<wsa:MessageID>uuid:')
        tail = (f'</wsa:MessageID><wsman:OperationTimeout>{OPERATION_TIMEOUT}</wsman:OperationTimeout>'
                '<wsa:ReplyTo><wsa:Address s:mustUnderstand="true">'
                'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>'
                f'<wsman:ResourceURI s:mustUnderstand="true">{self.resource}</wsman:ResourceURI>'
                f'<wsmv:SessionId s:mustUnderstand="false">uuid:{self.session}</wsmv:SessionId>'
                f'<wsa:To>{self.to}</wsa:To>{options}{selectors}</s:Header><s:Body>')
        return head.encode(), tail.encode()

    def bind(self, shell_id: str) -> None:
        self.shell_id = shell_id
        keepalive = ('<wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">'
                     'True</wsman:Option></wsman:OptionSet>')
        self._receive = self._template(SHELL + "Receive", keepalive, True)
        self._command = self._template(SHELL + "Command", '<wsman:OptionSet s:mustUnderstand="true"><wsman:Option '
                                       'Name="WINRS_SKIP_CMD_SHELL">False</wsman:Option></wsman:OptionSet>', True)
        self._delete = self._template(TRANSFER + "Delete", "", True)

    @staticmethod
    def _join(template: tuple[bytes, bytes], body: bytes) -> bytes:
        return b"".join((template[0], str(uuid.uuid4()).upper().encode(), template[1], body,
                         b"</s:Body></s:Envelope>"))

    def create(self, creation: bytes) -> bytes:
        options = ('<wsman:OptionSet s:mustUnderstand="true"><wsman:Option MustComply="true" '
                   'Name="protocolversion">2.3</wsman:Option></wsman:OptionSet>')
        body = (f'<rsp:Shell ShellId="{str(uuid.uuid4()).upper()}"><rsp:InputStreams>stdin pr</rsp:InputStreams>'
                '<rsp:OutputStreams>stdout</rsp:OutputStreams><rsp:IdleTimeOut>PT600S</rsp:IdleTimeOut>'
                '<creationXml xmlns="http://schemas.microsoft.com/powershell">').encode()
        return self._join(self._template(TRANSFER + "Create", options, False),
                          body + base64.b64encode(creation) + b"</creationXml></rsp:Shell>")

    def receive(self, command_id: str | None) -> bytes:
        attr = f' CommandId="{command_id}"' if command_id else ""
        return self._join(self._receive, f"<rsp:Receive><rsp:DesiredStream{attr}>stdout</rsp:DesiredStream>"
                                         "</rsp:Receive>".encode())

    def command(self, command_id: str, arguments: bytes) -> bytes:
        return self._join(self._command, f'<rsp:CommandLine CommandId="{command_id}"><rsp:Command />'
                                         "<rsp:Arguments>".encode() + base64.b64encode(arguments)
                          + b"</rsp:Arguments></rsp:CommandLine>")

    def delete(self) -> bytes:
        return self._join(self._delete, b"")


# --------------------------------------------------------------------------- answers

def _refuse_dtd(*_: Any) -> None:
    raise ShapeError("WSMan answer with a DTD; SOAP envelopes never carry one")


def parse_receive(body: bytes) -> tuple[list[bytes], bool]:
    """(the decoded stdout streams, whether the command is Done) of a ReceiveResponse, streaming."""
    streams: list[bytes] = []
    texts: list[str] = []
    state = [False, False]  # inside a Stream, command done
    stream_tag, state_tag = SHELL_NS + "}Stream", SHELL_NS + "}CommandState"

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == stream_tag:
            state[0] = True
            texts.clear()
        elif name == state_tag:
            state[1] = attrs.get("State", "").endswith("/Done")

    def end(name: str) -> None:
        if name == stream_tag:
            state[0] = False
            streams.append(base64.b64decode("".join(texts)))

    def characters(data: str) -> None:
        if state[0]:
            texts.append(data)

    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.Parse(body, True)
    return streams, state[1]


def _shell_id(body: bytes) -> str:
    root = bounded_fromstring(body)  # once per pool: not worth a streaming parser
    shell_id = root.find(f".//{{{SHELL_NS}}}ShellId")
    if shell_id is None or not shell_id.text:
        raise RemotingError("CreateResponse without a ShellId")
    return shell_id.text


def fault_text(status: int, body: bytes) -> str:
    try:
        root = bounded_fromstring(body)
        fault = root.find(".//{http://schemas.microsoft.com/wbem/wsman/1/wsmanfault}WSManFault")
        if fault is not None:
            return f"HTTP {status}, WSMan fault {fault.get('Code')}"
    except Exception:  # noqa: BLE001 - not XML: the status says enough
        pass
    return f"HTTP {status}"


# --------------------------------------------------------------------------- PSRP on psrpcore

class _DirectOutput:
    """A PipelineOutput message converted straight from its CLIXML (psrpcore's deserializer skipped)."""

    __slots__ = ("pipeline_id", "data")

    def __init__(self, pipeline_id: Any, data: Any) -> None:
        self.pipeline_id = pipeline_id
        self.data = data


class LeanPool(ClientRunspacePool):
    """psrpcore's client pool, with two shortcuts: with ``direct`` its output messages skip psrpcore's
    deserializer, and a CreatePipeline message's CLIXML is serialized once per cmdlet and parameters
    (it holds no pipeline or pool id: those are in the message header, written per call)."""

    def __init__(self, direct: bool) -> None:
        super().__init__()
        self.direct = direct
        self.pipeline_key: Any = None  # set by LeanSession.run just before ClientPowerShell.start()
        self._pipeline_xml: dict[Any, bytes] = {}
        self.recorded: list[bytes] | None = None  # a list: every output message's CLIXML is kept in it

    def prepare_message(self, message: Any, message_type: Any = None, pipeline_id: Any = None,
                        stream_type: StreamType = StreamType.default) -> None:
        key, self.pipeline_key = self.pipeline_key, None
        if key is None or message_type != PSRPMessageType.CreatePipeline:
            return super().prepare_message(message, message_type, pipeline_id, stream_type)
        data = self._pipeline_xml.get(key)
        if data is None:
            element = serialize(message, self._cipher, our_capability=self.our_capability,
                                their_capability=self.their_capability)
            data = self._pipeline_xml[key] = ElementTree.tostring(element, encoding="utf-8", method="xml")
        raw = create_message(True, message_type, data, self.runspace_pool_id, pipeline_id)
        self._send_buffer.append(PSRPMessage(message_type, bytearray(raw), self.runspace_pool_id, pipeline_id,
                                             self._fragment_counter, stream_type))

    def _process_message(self, message: Any) -> Any:
        if self.recorded is not None and message.message_type == PSRPMessageType.PipelineOutput and message.data:
            self.recorded.append(bytes(message.data))
        if self.direct and message.message_type == PSRPMessageType.PipelineOutput and message.data:
            return _DirectOutput(message.pipeline_id, walk_output(bytes(message.data)))
        return super()._process_message(message)


def shaped(shape: Shape, plain: Any) -> dict[str, Any]:
    """``normalize.convert`` on a value already plain: the declared fields checked and coerced."""
    if not isinstance(plain, dict):
        raise ShapeError(f"{shape.cmdlet}: expected an object, got {type(plain).__name__}")
    for spec in shape.fields:
        if spec.name not in plain:
            if spec.required:
                raise ShapeError(f"{shape.cmdlet}: property {spec.name} missing")
            plain[spec.name] = None
            continue
        plain[spec.name] = _coerce(shape.cmdlet, spec, plain[spec.name])
    return plain


class LeanSession:
    """One runspace pool on one endpoint; the protocol as generator steps (see :func:`drive`)."""

    def __init__(self, url: str, configuration: str, direct: bool = True) -> None:
        self.envelopes = Envelopes(url, configuration)
        self.pool = LeanPool(direct)
        self.requests = 0

    def open(self) -> Steps:
        self.pool.open()
        answer = yield self.envelopes.create(self.pool.data_to_send().data)
        self.envelopes.bind(_shell_id(answer))
        while self.pool.state != RunspacePoolState.Opened:
            streams, _ = parse_receive((yield self.envelopes.receive(None)))
            for data in streams:
                self.pool.receive_data(PSRPPayload(data, StreamType.default, None))
            while (event := self.pool.next_event()) is not None:
                if self.pool.state == RunspacePoolState.Broken:
                    raise RemotingError(f"runspace pool broken: {event!r}"[:300])

    def run(self, cmdlet: str, parameters: dict[str, Any], shape: Shape) -> Steps:
        """Command, then Receive until Done; no terminate Signal (as the exporter's pipeline_call)."""
        ps = ClientPowerShell(self.pool)
        ps.add_command(cmdlet)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        self.pool.pipeline_key = (cmdlet, tuple((name, repr(value)) for name, value in parameters.items()))
        ps.start()
        command_id = str(ps.pipeline_id).upper()
        yield self.envelopes.command(command_id, self.pool.data_to_send().data)
        objects: list[dict[str, Any]] = []
        done = False
        while not done:
            streams, done = parse_receive((yield self.envelopes.receive(command_id)))
            for data in streams:
                self.pool.receive_data(PSRPPayload(data, StreamType.default, ps.pipeline_id))
            while (event := self.pool.next_event()) is not None:
                if isinstance(event, _DirectOutput):
                    objects.append(shaped(shape, event.data))
                elif event.message_type == PSRPMessageType.PipelineOutput:
                    objects.append(shaped(shape, psrpcore_plain(event.data)))
                elif event.message_type == PSRPMessageType.ErrorRecord:
                    raise RemotingError(f"{cmdlet}: error record {event.data!s}"[:300])
        if ps.state != PSInvocationState.Completed:
            raise RemotingError(f"{cmdlet}: pipeline ended {ps.state.name}")
        ps.close()
        return objects

    def close(self) -> Steps:
        yield self.envelopes.delete()


def _checked(session: LeanSession, status: int, answer: bytes) -> bytes:
    session.requests += 1
    if status != 200:
        raise RemotingError(fault_text(status, answer))
    return answer


def drive(session: LeanSession, steps: Steps, post: Callable[[bytes], tuple[int, bytes]]) -> Any:
    """Run protocol steps over a blocking transport; returns what the steps return."""
    try:
        body = next(steps)
        while True:
            body = steps.send(_checked(session, *post(body)))
    except StopIteration as stop:
        return stop.value


async def drive_async(session: LeanSession, steps: Steps, transport: AsyncTransport) -> Any:
    try:
        body = next(steps)
        while True:
            body = steps.send(_checked(session, *(await transport.post(body))))
    except StopIteration as stop:
        return stop.value
