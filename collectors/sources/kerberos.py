"""Kerberos for PowerShell remoting: tickets from a keytab (kept and renewed by the exporter), and
failures explained in words an operator can act on (clock skew, unknown SPN, wrong password...)."""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

from pypsrp.exceptions import AuthenticationError

if TYPE_CHECKING:
    from collectors.sources.remoting import EndpointSpec

log = logging.getLogger(__name__)


def short_error(exc: BaseException, limit: int = 200) -> str:
    """An exception's text on one line, bounded: for messages that end up in logs and on the status page."""
    return str(exc).replace("\n", " ")[:limit]


# Renew a keytab's tickets when less than this is left (or half their life, for short-lived ones).
RENEW_MARGIN_SECONDS = 300
# How far apart clocks may be before Kerberos refuses a ticket: MIT's clockskew default, and Active
# Directory's "Maximum tolerance for computer clock synchronization" default (5 minutes).
CLOCK_SKEW_LIMIT_SECONDS = 300
# After a bare 401, ask the KDC for the reason at most this often per credential and SPN (each question
# with a wrong password is one more bad attempt towards the account's lockout threshold).
DIAGNOSIS_INTERVAL_SECONDS = 600


def kerberos_identity(spec: EndpointSpec) -> Any:
    """What pypsrp passes to pyspnego as the user: a name (with a password, or from the default
    ticket cache) or a pyspnego credential naming the ticket cache to use."""
    if spec.keytab_file:
        import spnego

        return spnego.KerberosCCache(ccache=tickets_for(spec).cache, principal=spec.username)
    if spec.ticket_cache and spec.ticket_cache != "env":
        import spnego

        cache = spec.ticket_cache if _typed_cache(spec.ticket_cache) else f"FILE:{spec.ticket_cache}"
        return spnego.KerberosCCache(ccache=cache, principal=spec.username)
    return spec.username


def _keytab_name(keytab: str) -> str:
    return keytab if _typed_cache(keytab) or keytab.startswith("FILE:") else f"FILE:{keytab}"


def _typed_cache(cache: str) -> bool:
    kind, sep, _ = cache.partition(":")
    return bool(sep) and kind.upper() in ("FILE", "DIR", "KEYRING", "KCM", "MEMORY")


class KeytabTickets:
    """Tickets of one principal, got from its keytab into a cache the exporter owns, renewed in time.

    The cache is in memory (``MEMORY:``, nothing written: the container's root is read-only) unless
    ``ticket_cache`` names a writable place. ``fresh()`` asks the KDC for a new TGT when the one held
    has less than :data:`RENEW_MARGIN_SECONDS` (or half its life) left; service tickets follow from it.
    """

    def __init__(self, keytab: str, principal: str, cache: str | None) -> None:
        self.keytab = _keytab_name(keytab)
        self.principal = principal
        if cache is None:
            cache = f"MEMORY:lync-owa-exporter-{uuid.uuid4().hex[:12]}"
        self.cache = cache if _typed_cache(cache) else f"FILE:{cache}"
        self.expires_at = 0.0
        self.renew_at = 0.0
        self.acquired = 0
        self._lock = threading.Lock()
        self._handles: tuple[Any, ...] = ()  # keeps the MEMORY cache alive

    def fresh(self) -> str:
        with self._lock:
            if time.time() < self.renew_at:
                return self.cache
            import krb5

            ctx = krb5.init_context()
            keytab = krb5.kt_resolve(ctx, self.keytab.encode())
            principal = krb5.parse_name_flags(ctx, self.principal.encode())
            options = krb5.get_init_creds_opt_alloc(ctx)
            creds = krb5.get_init_creds_keytab(ctx, principal, options, keytab=keytab)
            ccache = krb5.cc_resolve(ctx, self.cache.encode())
            krb5.cc_initialize(ctx, ccache, creds.client)
            krb5.cc_store_cred(ctx, ccache, creds)
            start, end = float(creds.times.starttime or creds.times.authtime), float(creds.times.endtime)
            margin = min(RENEW_MARGIN_SECONDS, max(end - start, 0) / 2)
            self.expires_at, self.renew_at = end, end - margin
            self.acquired += 1
            self._handles = (ctx, ccache)
            log.debug("Kerberos tickets acquired from keytab", extra={"principal": self.principal})
            return self.cache


_tickets: dict[tuple[str, str, str | None], KeytabTickets] = {}
_tickets_lock = threading.Lock()


def tickets_for(spec: EndpointSpec) -> KeytabTickets:
    """One ticket keeper per keytab, principal and cache, shared by every session that uses them."""
    key = (spec.keytab_file or "", spec.username, spec.ticket_cache)
    with _tickets_lock:
        keeper = _tickets.get(key)
        if keeper is None:
            keeper = _tickets[key] = KeytabTickets(spec.keytab_file or "", spec.username, spec.ticket_cache)
        return keeper


# (pattern in the Kerberos library's message, what the operator should know and do). {user}, {spn},
# {realm} and {cache} are filled in. Order matters: the first match wins.
_KERBEROS_CAUSES: tuple[tuple[str, str], ...] = (
    (r"clock skew too great|ticket not yet valid|KRB_AP_ERR_SKEW",
     "Kerberos clock skew between the exporter and the KDC or the server: their clocks differ by more than "
     "the realm allows (5 minutes by default): sync time (NTP) on this machine, the domain controllers and "
     "the server"),
    (r"Client '?[^ ]*'? not found in Kerberos database|CLIENT_NOT_FOUND|Client not found",
     "Kerberos: the KDC does not know the user {user}: check the credential's username "
     "(user@REALM, the realm in capitals) and that the account exists"),
    (r"Server '?[^ ]*'? not found in Kerberos database|S_PRINCIPAL_UNKNOWN|Server not found",
     "Kerberos: the KDC knows no service principal {spn}: register it (setspn -S {spn} <computer or service "
     "account>), or set the endpoint's spn_hostname to the name the SPN is registered for (a CNAME or a "
     "load-balanced name usually has none)"),
    (r"Preauthentication failed|Password incorrect|Decrypt integrity check failed|KDC_ERR_PREAUTH_FAILED",
     "Kerberos: the KDC refused the password (or keys) of {user}: wrong password, or a keytab from before a "
     "password change; fix the credential's password or export the keytab again"),
    (r"Password has expired|KEY_EXPIRED",
     "Kerberos: the password of {user} has expired: change it (the account must not have to change it at "
     "logon) and update the credential"),
    (r"credentials have been revoked|CLIENT_REVOKED|account.*(locked|disabled)",
     "Kerberos: the account {user} is disabled or locked out: unlock or enable it in Active Directory"),
    (r"Cannot contact any KDC|Cannot find KDC|unable to reach any KDC",
     "Kerberos: no KDC of the realm answers: check krb5.conf ([realms] kdc = ..., or dns_lookup_kdc = true "
     "with SRV records) and that this machine reaches the domain controllers on port 88"),
    (r"Cannot find KDC for realm|Configuration file does not specify default realm|Cannot determine realm",
     "Kerberos: krb5.conf does not name the realm: set default_realm and [domain_realm] for the server's "
     "domain (KRB5_CONFIG points at the file)"),
    (r"Key table (entry not found|file '[^']*' not found)|No key table entry|keytab",
     "Kerberos: the keytab has no usable keys for {user}: export it again for this principal"),
    (r"No Kerberos credentials available|No credentials cache found|Credentials cache .*not found|"
     r"No credentials were supplied|credentials? (has|have) expired|Ticket expired",
     "Kerberos: no valid ticket for {user} in the ticket cache {cache}: keep it filled (kinit, k5start -K) or "
     "give the credential a keytab_file so the exporter gets and renews its own tickets"),
    # Windows cannot decrypt a ticket for an SPN of another account (KRB_AP_ERR_MODIFIED); an MIT
    # acceptor bound to its own name says the ticket is not for it (KRB_AP_ERR_NOT_US).
    (r"ticket isn't for us|Wrong principal in request|Message stream modified|KRB_AP_ERR_(MODIFIED|NOT_US)",
     "Kerberos: the server could not use the ticket for {spn}: that service principal belongs to another "
     "account (a CNAME or load-balanced name registered on another server, or a duplicate SPN: setspn -X "
     "lists them): register {spn} on this server's computer account only, or set the endpoint's spn_hostname "
     "to the server's own name"),
    (r"channel binding",
     "Kerberos: the server rejected the channel binding: a TLS-inspecting proxy sits between exporter and server"),
)


def explain_auth_failure(exc: BaseException, spec: EndpointSpec, *, force: bool = False) -> str | None:
    """An operator's message for an authentication failure, or None when ``exc`` is no such failure."""
    text = " | ".join(_chain_text(exc))
    names = {type(e).__name__ for e in _chain(exc)}
    spn = f"{spec.spn_service}/{spec.spn_hostname or urllib.parse.urlsplit(spec.url).hostname}"
    realm = spec.username.rpartition("@")[2] if "@" in spec.username else "(the default realm)"
    cache = spec.ticket_cache if spec.ticket_cache and spec.ticket_cache != "env" else "KRB5CCNAME (or the default)"
    fill = {"user": spec.username, "spn": spn, "realm": realm, "cache": cache}
    kerberos_error = bool(names & {"SpnegoError", "GSSError", "Krb5Error", "BadMechanismError", "InvalidTokenError",
                                   "OperationNotAvailableError", "NoCredentialError", "InvalidCredentialError",
                                   "ExpiredCredentialsError", "MissingCredentialsError", "BadNameError",
                                   "GSSAPIError"})
    incompatible = re.search(r"Server responded with the auth protocol '(\w+)' which is incompatible with "
                             r"the specified auth_provider '(\w+)'", text)
    if incompatible:
        offered, wanted = incompatible.groups()
        return (f"the endpoint accepts only {offered} and the credential uses auth: {wanted}: set the credential's "
                f"auth to {offered.lower()} (Exchange's /PowerShell accepts Kerberos only)")
    offered = re.search(r"did not response with one of the following authentication methods .* - actual: '([^']*)'",
                        text)
    if offered:
        schemes = offered.group(1) or "nothing"
        return (f"the endpoint does not offer {spec.auth} (it offers {schemes}): change the credential's auth, "
                f"or enable it on the server (winrm set winrm/config/service/auth)")
    if kerberos_error or force:
        for pattern, message in _KERBEROS_CAUSES:
            if re.search(pattern, text, re.IGNORECASE):
                return message.format(**fill)
        if names & {"SpnegoError", "OperationNotAvailableError"} and "gssapi" in text.lower():
            return ("Kerberos is not available in this installation (the gssapi package is missing): "
                    "pip install 'lync-owa-exporter[kerberos]'")
        return f"{spec.auth} authentication failed before the server answered: {short_error(exc, 300)}"
    if isinstance(exc, AuthenticationError):
        if spec.auth in ("negotiate", "kerberos"):
            cause = _hidden_kerberos_cause(spec, fill)
            if cause is not None:
                return cause
        if spec.auth == "basic":
            return ("the server refused Basic authentication (HTTP 401): wrong user name or password, or the "
                    "endpoint does not accept Basic (WinRM's default and Exchange's /PowerShell do not): "
                    "use auth: kerberos or negotiate")
        return (f"the server refused the {spec.auth} authentication of {spec.username} (HTTP 401): a wrong or "
                f"expired password, a locked account, an account without remote PowerShell rights, or (NTLM) "
                f"a server that refuses NTLM")
    return None


def _hidden_kerberos_cause(spec: EndpointSpec, fill: dict[str, str]) -> str | None:
    """The Kerberos cause behind a bare 401, or None: a client-side failure Negotiate dropped before
    trying NTLM, or clocks apart (the KDC's time is in every ticket it issues).

    Asking costs an exchange with the KDC, with a password that may be the wrong one: at most once
    per credential and SPN every :data:`DIAGNOSIS_INTERVAL_SECONDS`, so a failing job does not bring
    the account nearer to its lockout threshold on every run.
    """
    key = (spec.username, spec.keytab_file, fill["spn"])
    with _diagnoses_lock:
        asked_at, cause = _diagnoses.get(key, (float("-inf"), None))
        if time.monotonic() - asked_at < DIAGNOSIS_INTERVAL_SECONDS:
            return cause
    cause = _ask_kerberos(spec, fill)
    with _diagnoses_lock:
        _diagnoses[key] = (time.monotonic(), cause)
    return cause


_diagnoses: dict[tuple[str, str | None, str], tuple[float, str | None]] = {}
_diagnoses_lock = threading.Lock()


def _ask_kerberos(spec: EndpointSpec, fill: dict[str, str]) -> str | None:
    why_not = _kerberos_failure(spec) if spec.auth == "negotiate" else None
    if why_not is not None:  # no ticket at all: a cause of the table, or nothing more to learn
        for pattern, message in _KERBEROS_CAUSES:
            if re.search(pattern, why_not, re.IGNORECASE):
                return f"{message.format(**fill)} (Negotiate then tried NTLM, which the server refused)"
        return None
    offset = kdc_clock_offset(spec)
    if offset is not None and abs(offset) > CLOCK_SKEW_LIMIT_SECONDS:
        direction = "ahead of" if offset > 0 else "behind"
        return (f"Kerberos clock skew between the exporter and the KDC: the KDC's clock is {abs(offset) / 60:.0f} "
                f"minutes {direction} this machine's, more than the realm allows (5 minutes by default), so the "
                "server refuses the tickets: sync time (NTP) on this machine, the domain controllers and the server")
    return None


def kdc_clock_offset(spec: EndpointSpec) -> float | None:
    """Seconds the KDC's clock is ahead of this machine's (negative: behind), from the authentication
    time of a fresh ticket; None without a password or keytab, or when the KDC gives no ticket.

    MIT Kerberos adopts the KDC's time for its own requests (``kdc_timesync``), so a skewed clock
    shows only where a server with its own clock checks the ticket: this is how to see it here.
    """
    if not (spec.password or spec.keytab_file):
        return None
    try:
        import krb5

        ctx = krb5.init_context()
        principal = krb5.parse_name_flags(ctx, spec.username.encode())
        options = krb5.get_init_creds_opt_alloc(ctx)
        before = time.time()
        if spec.keytab_file:
            keytab = krb5.kt_resolve(ctx, _keytab_name(spec.keytab_file).encode())
            creds = krb5.get_init_creds_keytab(ctx, principal, options, keytab=keytab)
        else:
            creds = krb5.get_init_creds_password(ctx, principal, options, password=spec.password.encode())
        after = time.time()
    except Exception:  # noqa: BLE001 - no krb5, no KDC, refused: nothing to learn about clocks here
        return None
    return float(creds.times.authtime) - (before + after) / 2


def _kerberos_failure(spec: EndpointSpec) -> str | None:
    """Why Kerberos could not start for ``spec``, in the Kerberos library's words, or None if it can.

    Negotiate drops Kerberos without a word when the client gets no service ticket (an unknown SPN,
    a refused password, an unknown user) and goes on with NTLM; when the server then refuses
    NTLM, only a bare 401 is left. Asking the KDC once more, as Negotiate did, finds the cause. Only
    called after a failure, so a working exporter never pays for it.
    """
    try:
        import spnego
    except ImportError:
        return None
    hostname = spec.spn_hostname or urllib.parse.urlsplit(spec.url).hostname or "unspecified"
    try:
        context = spnego.client(kerberos_identity(spec), spec.password or None, hostname=hostname,
                                service=spec.spn_service, protocol="kerberos")
        context.step()
    except Exception as exc:  # noqa: BLE001 - whatever the Kerberos library says is the diagnosis
        return " | ".join(_chain_text(exc))
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "base_error", None), current.__cause__, current.__context__]
    return seen


def _chain_text(exc: BaseException) -> list[str]:
    return [str(e) for e in _chain(exc)]


