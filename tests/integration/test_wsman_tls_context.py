"""One TLS client context per trust setting for HTTPS sessions (collectors.sources.wsman_tls), through
requests and urllib3 against TLS servers on loopback: sessions with one trust share one context, and
validation is what it was (the right CA passes, another CA and a wrong host name fail)."""

from __future__ import annotations

import pytest
import requests

from collectors.sources import wsman_tls
from tests.integration.test_tls_probe import LoopbackServer, Pki, issue

NAME = "localhost"


@pytest.fixture
def server(tmp_path):
    pki = Pki(tmp_path, "wsman")
    leaf = issue(NAME, issuer=pki.intermediate, san=(NAME,))
    made = LoopbackServer("tls", pki.server_context(leaf, "wsman"))
    yield made, pki
    made.close()


def session_trusting(verify: bool | str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    return session


def handshake(session: requests.Session, port: int, host: str = NAME) -> str:
    """'ok' when the TLS handshake passed (the test server then never answers), else the failure."""
    try:
        session.post(f"https://{host}:{port}/wsman", data=b"x", timeout=1.5)
    except requests.exceptions.SSLError as exc:
        return f"ssl: {exc}"
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or "doesn't match" in str(exc):
            return f"ssl: {exc}"
        return "ok"
    return "ok"


def test_sessions_with_one_trust_share_one_context(tmp_path, server):
    listener, pki = server
    first, second = session_trusting(str(pki.root_path)), session_trusting(str(pki.root_path))
    assert wsman_tls.share_tls_context(first) and wsman_tls.share_tls_context(second)
    assert first.verify is True and second.verify is True
    contexts = {id(a.poolmanager.connection_pool_kw["ssl_context"]) for s in (first, second)
                for a in s.adapters.values()}
    assert len(contexts) == 1
    assert handshake(first, listener.port) == "ok"
    assert handshake(second, listener.port) == "ok"
    # Connections add nothing to the shared trust: requests gives every validating connection its own
    # CA bundle (certifi's public roots) to load, which would widen a trust pinned to one CA file to
    # every public CA.
    (context,) = {a.poolmanager.connection_pool_kw["ssl_context"] for a in first.adapters.values()}
    assert context.cert_store_stats()["x509_ca"] == 1


def test_validation_is_unchanged(tmp_path, server):
    listener, pki = server
    stranger = Pki(tmp_path, "stranger")
    untrusting = session_trusting(str(stranger.root_path))
    wsman_tls.share_tls_context(untrusting)
    assert "CERTIFICATE_VERIFY_FAILED" in handshake(untrusting, listener.port)
    trusting = session_trusting(str(pki.root_path))
    wsman_tls.share_tls_context(trusting)
    assert handshake(trusting, listener.port) == "ok"
    # The name checked is the connection's own, not one of another session sharing the context.
    assert handshake(trusting, listener.port, host="127.0.0.1").startswith("ssl: ")


def test_a_session_that_does_not_validate_is_left_alone():
    session = session_trusting(False)
    assert not wsman_tls.share_tls_context(session)
    assert session.verify is False
    assert all("ssl_context" not in a.poolmanager.connection_pool_kw for a in session.adapters.values())


def test_a_session_with_a_client_certificate_keeps_its_own_context(server):
    _, pki = server
    session = session_trusting(str(pki.root_path))
    session.cert = ("client.pem", "client.key")  # what pypsrp sets for auth: certificate
    assert not wsman_tls.share_tls_context(session)
    assert session.verify == str(pki.root_path)
    assert all("ssl_context" not in a.poolmanager.connection_pool_kw for a in session.adapters.values())


def test_a_replaced_ca_file_gets_a_fresh_context(tmp_path, server):
    listener, pki = server
    path = tmp_path / "ca.pem"
    path.write_bytes(Pki(tmp_path, "old").root_path.read_bytes())
    before = wsman_tls.shared_context(str(path))
    path.write_bytes(pki.root_path.read_bytes() + b"\n")
    after = wsman_tls.shared_context(str(path))
    assert after is not before
    session = session_trusting(str(path))
    wsman_tls.share_tls_context(session)
    assert handshake(session, listener.port) == "ok"
