"""The TLS probe's client contexts are shared per trust setting (issue 16, memory): real handshakes with
loopback servers show that sharing never mixes two CA files' trust, that a CA file replaced on disk is
read again, that a CA file which cannot be loaded is reported and not kept, and that probes at once
share one context safely."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization

from collectors.contract import CollectError, ErrorKind
from collectors.sources import tls
from tests.integration.test_tls_probe import LoopbackServer, Pki, issue

NAME = "owa.contoso.com"


@pytest.fixture
def server(tmp_path):
    pki = Pki(tmp_path, "trusted")
    leaf = issue(NAME, issuer=pki.intermediate, san=(NAME,))
    made = LoopbackServer("tls", pki.server_context(leaf, "owa"))
    yield made, pki
    made.close()


def probe(server: LoopbackServer, ca_file: str | None) -> tls.ProbeOutcome:
    return tls.probe("127.0.0.1", server.port, NAME, timeout=10, ca_file=ca_file)


def test_two_ca_files_keep_their_own_trust(tmp_path, server):
    listener, pki = server
    other = Pki(tmp_path, "other")
    for ca_file, trusted in ((pki.root_path, True), (other.root_path, False), (pki.root_path, True)):
        outcome = probe(listener, str(ca_file))
        assert outcome.failure is None and outcome.name_matches
        assert outcome.chain_trusted is trusted, ca_file.name
    assert tls._client_context(str(pki.root_path)) is tls._client_context(str(pki.root_path))
    assert tls._client_context(str(pki.root_path)) is not tls._client_context(str(other.root_path))


def test_a_ca_file_replaced_on_disk_is_read_again(tmp_path, server):
    listener, pki = server
    path = tmp_path / "ca.pem"
    path.write_bytes(Pki(tmp_path, "stranger").root_path.read_bytes())
    assert not probe(listener, str(path)).chain_trusted
    # The operator puts the right CA in the same file (as a config management tool would, in place).
    trusted_root = pki.root.certificate.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(trusted_root + b"\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert probe(listener, str(path)).chain_trusted


def test_a_ca_file_that_cannot_be_loaded_is_reported_and_not_kept(tmp_path, server):
    listener, pki = server
    path = tmp_path / "broken.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with pytest.raises(CollectError) as info:
        probe(listener, str(path))
    assert info.value.kind is ErrorKind.SHAPE
    assert f"tls_probe ca_file {path}" in str(info.value) and "cannot load the CA file" in str(info.value)
    path.write_bytes(pki.root_path.read_bytes())
    assert probe(listener, str(path)).chain_trusted


def test_probes_at_once_share_one_context(server):
    listener, pki = server
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda _: probe(listener, str(pki.root_path)), range(32)))
    assert all(o.failure is None and o.verified for o in outcomes)
    assert len({o.chain[0].fingerprint(o.chain[0].signature_hash_algorithm) for o in outcomes}) == 1
