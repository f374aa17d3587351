"""HTTP authentication of a simulated host, as Windows does it: Basic, Negotiate, Kerberos, NTLM.

The acceptors are real: pyspnego's server side (``spnego.server``). Kerberos tickets are checked
against the service keytab that ``KRB5_KTNAME`` names (MIT GSSAPI's acceptor, the ``kerberos``
extra's ``gssapi``); NTLM responses against the user file ``NTLM_USER_FILE`` names (pyspnego's
format, ``DOMAIN:USER:PASSWORD`` lines). Both are read from the process environment, as pyspnego's
acceptors read them; ``Simulator`` sets them from its arguments.

What a host offers (its ``WWW-Authenticate`` headers) is chosen per host and endpoint:
- ``basic``: user and password from the simulator's arguments (the demo's choice);
- ``negotiate``: SPNEGO with Kerberos or NTLM inside (WinRM's default: ``Negotiate`` and ``Kerberos``);
- ``kerberos``: raw Kerberos (Exchange's IIS-hosted ``/PowerShell`` offers only this);
- ``ntlm``: NTLM only.

Negotiate, Kerberos and NTLM authenticate the connection (http.sys keeps the security context per
TCP connection); later requests on it carry no ``Authorization`` header. With the context, WinRM
message encryption works both ways exactly as on Windows: ``multipart/encrypted`` bodies whose
``protocol`` is ``application/HTTP-SPNEGO-session-encrypted`` (Negotiate, NTLM) or
``application/HTTP-Kerberos-session-encrypted`` (Kerberos), each part a 4-byte little-endian
signature length, the signature, and the sealed SOAP envelope.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

SCHEMES = ("basic", "negotiate", "kerberos", "ntlm")
ENDPOINT_KINDS = ("windows", "exchange", "lync")
# The simulator's historical default (every test and the demo): Basic on both endpoints.
BASIC_ONLY: Mapping[str, tuple[str, ...]] = {"windows": ("basic",), "exchange": ("basic",), "lync": ("basic",)}
# What production servers offer: WinRM's defaults (Kerberos, Negotiate), Exchange's /PowerShell
# (IIS, Windows authentication with the Negotiate:Kerberos provider only), Lync's /OcsPowershell
# (IIS on the front end's internal web site, Windows authentication: Negotiate).
PRODUCTION: Mapping[str, tuple[str, ...]] = {"windows": ("negotiate", "kerberos"), "exchange": ("kerberos",),
                                             "lync": ("negotiate",)}

SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS_ENCRYPTED = "application/HTTP-Kerberos-session-encrypted"
BOUNDARY = "Encrypted Boundary"
_HEADER_NAMES = {"basic": 'Basic realm="WSMAN"', "negotiate": "Negotiate", "kerberos": "Kerberos", "ntlm": "NTLM"}
_PROTOCOL_RE = re.compile(r'protocol\s*=\s*"?([^";]+)"?', re.I)
_BOUNDARY_RE = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.I)


class AuthSetupError(ValueError):
    """The simulator's authentication settings are wrong (an unknown scheme, a missing keytab...)."""


def normalise(offer: Mapping[str, Iterable[str]] | Iterable[str] | None,
              default: Mapping[str, tuple[str, ...]] = BASIC_ONLY) -> dict[str, tuple[str, ...]]:
    """``["negotiate"]`` (both endpoints) or ``{"windows": [...], "exchange": [...]}`` -> per endpoint."""
    if offer is None:
        return dict(default)
    if isinstance(offer, str):
        raise AuthSetupError(f"authentication schemes must be a list, got the string {offer!r}")
    if isinstance(offer, Mapping):
        unknown = set(offer) - set(ENDPOINT_KINDS)
        if unknown:
            raise AuthSetupError(f"unknown endpoint kinds {sorted(unknown)}; expected {', '.join(ENDPOINT_KINDS)}")
        result = dict(default)
        result.update({kind: _schemes(schemes) for kind, schemes in offer.items() if schemes is not None})
        return result
    schemes = _schemes(offer)
    return {kind: schemes for kind in ENDPOINT_KINDS}


def _schemes(values: Iterable[str]) -> tuple[str, ...]:
    schemes = tuple(str(v).lower() for v in values)
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise AuthSetupError(f"unknown authentication schemes {unknown}; known: {', '.join(SCHEMES)}")
    if not schemes:
        raise AuthSetupError("at least one authentication scheme is needed")
    return schemes


def challenge_headers(schemes: Iterable[str]) -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` headers of a 401, in the order Windows sends them."""
    order = ("negotiate", "kerberos", "ntlm", "basic")
    offered = [s for s in order if s in set(schemes)]
    return [("WWW-Authenticate", _HEADER_NAMES[s]) for s in offered]


@dataclass
class StepResult:
    """One leg of a connection-based handshake."""

    complete: bool
    token: bytes | None = None  # to send back in WWW-Authenticate (401 while incomplete, 200 when done)
    failed: str | None = None  # why the acceptor refused (for the simulator's log, never secrets)


class ConnectionAuth:
    """The security context of one TCP connection (Negotiate, Kerberos or NTLM).

    ``service_host`` is the simulated host the connection came to: its Kerberos acceptor takes only
    tickets for ``HTTP/<service_host>``. Windows decrypts a ticket with the keys of its own account,
    so a ticket for another host's SPN is refused there; the simulator's keytab holds every host's
    keys, so the acceptor is bound to the host's own name instead (MIT answers "The ticket isn't for
    us", KRB_AP_ERR_NOT_US). Without it (None) any service principal of the keytab is accepted.
    """

    def __init__(self, scheme: str, cbt_app_data: bytes | None = None, service_host: str | None = None) -> None:
        import spnego
        import spnego.channel_bindings

        self.scheme = scheme  # the HTTP scheme the client answered with: negotiate, kerberos, ntlm
        bindings = (spnego.channel_bindings.GssChannelBindings(application_data=cbt_app_data)
                    if cbt_app_data else None)
        own_name = (spnego.CredentialCache(username=f"HTTP@{service_host}")
                    if service_host and scheme in ("negotiate", "kerberos") else None)
        try:
            self._context = spnego.server(protocol=scheme, channel_bindings=bindings, credentials=own_name,
                                          options=spnego.NegotiateOptions.wrapping_winrm)
        except Exception as exc:  # noqa: BLE001 - no keytab, no NTLM user file, no gssapi...
            raise AuthSetupError(f"cannot accept {scheme}: {type(exc).__name__}: {exc}") from None
        self.complete = False

    @property
    def mechanism(self) -> str:
        """What authenticated the connection: ``kerberos`` or ``ntlm``."""
        if self.scheme == "kerberos":
            return "kerberos"
        try:
            return str(self._context.negotiated_protocol or self.scheme)
        except Exception:  # noqa: BLE001
            return self.scheme

    @property
    def user(self) -> str:
        try:
            return str(self._context.client_principal or "")
        except Exception:  # noqa: BLE001
            return ""

    @property
    def encryption_protocol(self) -> str:
        return KERBEROS_ENCRYPTED if self.scheme == "kerberos" else SPNEGO_ENCRYPTED

    def step(self, token: bytes) -> StepResult:
        if self.scheme == "kerberos":
            return self._step_kerberos(token)
        try:
            out = self._context.step(token)
        except Exception as exc:  # noqa: BLE001 - a bad ticket, a wrong NTLM response, a replay...
            # Like Windows, answer a refused Kerberos ticket with the KRB-ERROR (clock skew, ticket not
            # yet valid...), so the client can tell its operator why.
            return StepResult(False, _error_token(exc), f"{type(exc).__name__}: {_short(exc)}")
        self.complete = bool(self._context.complete)
        return StepResult(self.complete, out or None)

    def _step_kerberos(self, token: bytes) -> StepResult:
        """Raw Kerberos through pyspnego's GSSAPI proxy, stepping its gssapi context directly.

        MIT's acceptor answers a ticket it refuses for timing (clock skew, not yet valid) with a
        KRB-ERROR token and "continue needed", which pyspnego 0.12 turns into an AttributeError and
        loses the token; Windows sends that token back in the 401, and so does the simulator.
        """
        import gssapi

        proxy = self._context
        try:
            if proxy._context is None:  # noqa: SLF001 - see the docstring
                bindings = None
                if proxy.channel_bindings is not None:
                    bindings = gssapi.raw.ChannelBindings(application_data=proxy.channel_bindings.application_data)
                proxy._context = gssapi.SecurityContext(creds=proxy._credential, usage="accept",  # noqa: SLF001
                                                        channel_bindings=bindings)
            out = proxy._context.step(token)  # noqa: SLF001
            # python-gssapi returns the error token of a refused ticket and raises its error on the
            # context's next use; raw Kerberos has one leg, so not complete means refused.
            complete = proxy._context.complete  # noqa: SLF001
        except Exception as exc:  # noqa: BLE001 - a bad ticket, a replay, a wrong key, a clock...
            return StepResult(False, locals().get("out") or _error_token(exc), f"{type(exc).__name__}: {_short(exc)}")
        if not complete:
            return StepResult(False, out or None, "ticket refused (KRB-ERROR sent back)")
        proxy._context_attr = int(proxy._context.actual_flags)  # noqa: SLF001
        self.complete = True
        return StepResult(True, out or None)

    # ------------------------------------------------------------ WinRM message encryption

    def unwrap(self, body: bytes, content_type: str) -> bytes:
        """The SOAP envelope inside a ``multipart/encrypted`` request body. ValueError when malformed."""
        protocol = _PROTOCOL_RE.search(content_type)
        boundary = _BOUNDARY_RE.search(content_type)
        if not protocol or not boundary:
            raise ValueError("multipart/encrypted without protocol or boundary")
        if protocol.group(1).strip().lower() not in (SPNEGO_ENCRYPTED.lower(), KERBEROS_ENCRYPTED.lower()):
            raise ValueError(f"unsupported encryption protocol {protocol.group(1)!r}")
        marker = f"--{boundary.group(1)}".encode()
        parts = [p for p in re.split(re.escape(marker) + rb"(?:--)?\r\n", body) if p]
        message = b""
        for index in range(0, len(parts) - 1, 2):
            header, payload = parts[index], parts[index + 1]
            length = re.search(rb"Length=(\d+)", header)
            if not length:
                raise ValueError("encrypted part without OriginalContent length")
            payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
            if len(payload) < 4:
                raise ValueError("encrypted part too short")
            sig_length = struct.unpack("<I", payload[:4])[0]
            if sig_length > len(payload) - 4:
                raise ValueError("encrypted part's signature length is out of range")
            signature, sealed = payload[4:4 + sig_length], payload[4 + sig_length:]
            plain = self._context.unwrap_winrm(signature, sealed)
            if len(plain) != int(length.group(1)):
                raise ValueError("decrypted length differs from OriginalContent")
            message += plain
        if not parts:
            raise ValueError("empty multipart/encrypted body")
        return message

    def wrap(self, message: bytes) -> tuple[str, bytes]:
        """(Content-Type, body) of an encrypted answer, as WinRM sends it."""
        protocol = self.encryption_protocol
        signature, sealed, padding = self._context.wrap_winrm(message)
        head = "\r\n".join([
            f"--{BOUNDARY}",
            f"\tContent-Type: {protocol}",
            f"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length={len(message) + padding}",
            f"--{BOUNDARY}",
            "\tContent-Type: application/octet-stream",
            "",
        ]).encode()
        body = head + struct.pack("<I", len(signature)) + signature + sealed + f"--{BOUNDARY}--\r\n".encode()
        return f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"', body


def parse_authorization(header: str | None) -> tuple[str, bytes | None] | None:
    """``("negotiate", token)``, ``("basic", None)`` or None for a header that is absent or garbled."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        return scheme, None
    if scheme not in ("negotiate", "kerberos", "ntlm"):
        return None
    try:
        return scheme, base64.b64decode(rest.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def token_header(scheme: str, token: bytes) -> tuple[str, str]:
    return "WWW-Authenticate", f"{_HEADER_NAMES[scheme].split()[0]} {base64.b64encode(token).decode()}"


def _error_token(exc: BaseException) -> bytes | None:
    """The GSSAPI error token (a KRB-ERROR) somewhere in a pyspnego exception's chain, if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        token = getattr(current, "token", None)
        if isinstance(token, bytes) and token:
            return token
        todo += [getattr(current, "base_error", None), current.__cause__, current.__context__]
    return None


def _short(exc: BaseException, limit: int = 200) -> str:
    return str(exc).replace("\n", " ")[:limit]
