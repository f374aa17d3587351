"""What went wrong on a remoting call, as one of the collector contract's error kinds.

Whatever pypsrp, requests or the response cap raised becomes a :class:`CollectError` whose message
names the cause and never a secret; ErrorRecords become :class:`ErrorRecordInfo` without trusting
any attribute to be there.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable

import requests
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from urllib3.exceptions import ReadTimeoutError

from collectors.contract import CollectError, ErrorKind, ErrorRecordInfo
from collectors.sources.kerberos import explain_auth_failure, short_error
from collectors.sources.response_cap import ResponseTooLarge
from collectors.sources.safe_xml import UnsafeXML

# WSMan fault codes that matter to us.
WSMAN_OPERATION_TIMEOUT = 0x80338029
WSMAN_SHELL_NOT_FOUND = 0x8033805B  # ERROR_WSMAN_UNEXPECTED_SELECTORS: the shell is gone
WSMAN_ACCESS_DENIED = 5


def _timed_out_reading(exc: BaseException) -> bool:
    """A read timeout that requests reports as a ConnectionError: one inside the body of an answer
    (requests' ``iter_content`` wraps urllib3's ReadTimeoutError so). The host answered, slowly."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ReadTimeoutError):
            return True
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def classify_failure(exc: BaseException, spec: Any, where: str, redact: Callable[[str], str]) -> CollectError:
    """Map whatever pypsrp/requests raised onto one of the error kinds (``spec``: the EndpointSpec)."""
    kind: ErrorKind
    if isinstance(exc, CollectError):
        return exc
    auth_problem = explain_auth_failure(exc, spec)
    if auth_problem is not None:
        kind, message = ErrorKind.AUTH, auth_problem
    elif isinstance(exc, ResponseTooLarge):
        kind, message = ErrorKind.SHAPE, str(exc)
    elif isinstance(exc, UnsafeXML):
        kind, message = ErrorKind.SHAPE, f"answer refused: {exc}"
    elif isinstance(exc, AuthenticationError):
        kind, message = ErrorKind.AUTH, "authentication failed (HTTP 401)"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        kind, message = ErrorKind.UNREACHABLE, "connection timed out"
    elif isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)) or (
            isinstance(exc, requests.exceptions.ConnectionError) and _timed_out_reading(exc)):
        kind, message = ErrorKind.TIMEOUT, "no answer before the deadline"
    elif isinstance(exc, requests.exceptions.SSLError):
        kind, message = ErrorKind.UNREACHABLE, f"TLS handshake failed: {short_error(exc)}"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        kind, message = ErrorKind.UNREACHABLE, f"cannot connect: {short_error(exc)}"
    elif isinstance(exc, WSManFaultError):
        if exc.code == WSMAN_OPERATION_TIMEOUT:
            kind = ErrorKind.TIMEOUT
        elif exc.code == WSMAN_ACCESS_DENIED:
            kind = ErrorKind.AUTH
        else:
            kind = ErrorKind.COMMAND
        code = f"0x{exc.code:08X}" if isinstance(exc.code, int) else str(exc.code)
        message = f"WSMan fault {code}: {(exc.reason or '')[:300]}"
    elif isinstance(exc, WinRMTransportError):
        kind, message = ErrorKind.UNREACHABLE, f"HTTP {exc.code} from the endpoint"
    elif isinstance(exc, (ET.ParseError, WinRMError, ValueError, KeyError, IndexError, TypeError, AttributeError)):
        # pypsrp could not make sense of the answer: broken SOAP, broken PSRP fragments.
        kind, message = ErrorKind.SHAPE, f"unreadable answer ({type(exc).__name__}: {short_error(exc)})"
    else:
        kind, message = ErrorKind.SHAPE, f"unexpected failure ({type(exc).__name__}: {short_error(exc)})"
    return CollectError(kind, where, redact(message))


def error_info(record: Any) -> ErrorRecordInfo:
    """Read an ErrorRecord from pypsrp without trusting any attribute to be there."""
    fqid = str(getattr(record, "fq_error", None) or "Unknown")
    category = str(getattr(record, "reason", None) or getattr(record, "category", None) or "")
    message = getattr(record, "message", None) or ""
    exception = getattr(record, "exception", None)
    if not message and exception is not None:
        props = getattr(exception, "adapted_properties", None) or {}
        message = props.get("Message") or str(exception)
    return ErrorRecordInfo(fqid, category, str(message)[:2000])
