"""The TLS endpoint probe through the real path (configuration loader, JobRunner, snapshot store)
against real TLS servers on loopback, whose certificates the tests make, and against the simulated
estate's own TLS services."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collectors.tls_probe.collector import FAILURE_KINDS, TlsProbeCollector
from simulator.scenario import scenario_names
from tests.integration.collector_harness import Job

NOT_AFTER = "lync_owa_tls_certificate_not_after_timestamp_seconds"
NOT_BEFORE = "lync_owa_tls_certificate_not_before_timestamp_seconds"
EARLIEST = "lync_owa_tls_chain_earliest_not_after_timestamp_seconds"
INFO = "lync_owa_tls_certificate_info"
VERIFIED = "lync_owa_tls_certificate_verified"
SUCCESS = "lync_owa_tls_probe_success"
FAILURES = "lync_owa_tls_probe_failures_total"
DAY = 86400.0


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


# ------------------------------------------------------------ certificates made here


@dataclass
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def not_after(self) -> float:
        return self.certificate.not_valid_after_utc.timestamp()


def issue(cn: str, *, issuer: Issued | None = None, ca: bool = False, days: tuple[float, float] = (-30, 300),
          san: tuple[str, ...] = ()) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Probe Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in san or (cn,)]), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


class Pki:
    """A root and an intermediate; leaves are issued by the intermediate."""

    def __init__(self, folder: Path, name: str = "root", intermediate_days: tuple[float, float] = (-60, 3000)) -> None:
        self.folder = folder
        self.root = issue(f"Probe Test {name}", ca=True, days=(-100, 4000))
        self.intermediate = issue(f"Probe Test {name} Issuing CA", issuer=self.root, ca=True, days=intermediate_days)
        self.root_path = folder / f"{name}.pem"
        self.root_path.write_bytes(self.root.certificate.public_bytes(serialization.Encoding.PEM))

    def server_context(self, leaf: Issued, label: str) -> ssl.SSLContext:
        chain = self.folder / f"{label}-chain.pem"
        key = self.folder / f"{label}-key.pem"
        chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                   for c in (leaf.certificate, self.intermediate.certificate)))
        key.write_bytes(leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        return context


# ------------------------------------------------------------ servers on loopback


class LoopbackServer:
    """``tls``: completes handshakes with ``context``; ``silent``: accepts TCP and never answers;
    ``http``: answers whatever comes with plain HTTP."""

    def __init__(self, mode: str, context: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.context = context
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            if self.mode != "silent":
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            if self.mode == "http":
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            else:
                with self.context.wrap_socket(conn, server_side=True) as tls:  # type: ignore[union-attr]
                    while tls.recv(4096):
                        pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@pytest.fixture
def servers():
    made: list[LoopbackServer] = []

    def make(mode: str, context: ssl.SSLContext | None = None) -> LoopbackServer:
        server = LoopbackServer(mode, context)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def refused_address():
    """A port that is bound but not listening: connections to it are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def probe_job(sim, tmp_path):
    made: list[Job] = []

    def make(target: str = "ex01", **settings) -> Job:
        job = Job(sim, tmp_path, TlsProbeCollector(), target, settings=settings)
        made.append(job)
        return job

    yield make
    for job in made:
        job.close()


def sha1_upper(certificate: x509.Certificate) -> str:
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def failures(job: Job, endpoint: str) -> dict[str, float]:
    return {labels[1]: value for labels, value in job.values(FAILURES).items() if labels[0] == endpoint}


# ------------------------------------------------------------ certificates as presented


def test_valid_chain_is_measured_and_verified(tmp_path, servers, probe_job):
    pki = Pki(tmp_path)
    leaf = issue("owa.probe.test", issuer=pki.intermediate, days=(-10, 200))
    server = servers("tls", pki.server_context(leaf, "valid"))
    job = probe_job(endpoints=["owa.probe.test:443"], connect_addresses={"owa.probe.test:443": server.address},
                    ca_file=str(pki.root_path))
    status = job.run()
    assert status.up, status.last_error
    key = ("owa.probe.test:443",)
    assert job.values(SUCCESS) == {key: 1}
    assert job.values(VERIFIED) == {key: 1}
    assert job.values(NOT_AFTER)[key] == leaf.not_after
    assert job.values(NOT_BEFORE)[key] == leaf.certificate.not_valid_before_utc.timestamp()
    assert job.values(EARLIEST)[key] == leaf.not_after  # the intermediate outlives the leaf
    assert job.values(INFO) == {("owa.probe.test:443", sha1_upper(leaf.certificate), "owa.probe.test"): 1}
    assert failures(job, "owa.probe.test:443") == {kind: 0 for kind in FAILURE_KINDS}


def test_untrusted_or_misnamed_chain_is_still_measured(tmp_path, servers, probe_job):
    pki, other = Pki(tmp_path, "root"), Pki(tmp_path, "other")
    leaf = issue("owa.probe.test", issuer=pki.intermediate)
    server = servers("tls", pki.server_context(leaf, "untrusted"))
    mapping = {"owa.probe.test:443": server.address, "wrong.probe.test:443": server.address}
    untrusted = probe_job(endpoints=["owa.probe.test:443"], connect_addresses={"owa.probe.test:443": server.address},
                          ca_file=str(other.root_path))
    assert untrusted.run().up
    assert untrusted.values(SUCCESS) == {("owa.probe.test:443",): 1}
    assert untrusted.values(VERIFIED) == {("owa.probe.test:443",): 0}
    assert untrusted.values(NOT_AFTER) == {("owa.probe.test:443",): leaf.not_after}

    misnamed = probe_job(endpoints=list(mapping), connect_addresses=mapping, ca_file=str(pki.root_path))
    assert misnamed.run().up
    assert misnamed.values(VERIFIED) == {("owa.probe.test:443",): 1, ("wrong.probe.test:443",): 0}

    # server_name: the name sent and checked, for every endpoint (a VIP reached by address, say).
    renamed = probe_job(endpoints=["wrong.probe.test:443"], connect_addresses={"wrong.probe.test:443": server.address},
                        ca_file=str(pki.root_path), server_name="owa.probe.test")
    assert renamed.run().up
    assert renamed.values(VERIFIED) == {("wrong.probe.test:443",): 1}


def test_expired_leaf_is_measured_not_verified(tmp_path, servers, probe_job):
    pki = Pki(tmp_path)
    leaf = issue("old.probe.test", issuer=pki.intermediate, days=(-400, -3))
    server = servers("tls", pki.server_context(leaf, "expired"))
    job = probe_job(endpoints=["old.probe.test:5061"], connect_addresses={"old.probe.test:5061": server.address},
                    ca_file=str(pki.root_path))
    assert job.run().up
    key = ("old.probe.test:5061",)
    assert job.values(SUCCESS) == {key: 1}
    assert job.values(VERIFIED) == {key: 0}
    assert job.values(NOT_AFTER)[key] == leaf.not_after < time.time()
    assert job.values(INFO) == {("old.probe.test:5061", sha1_upper(leaf.certificate), "old.probe.test"): 1}


def test_not_yet_valid_leaf_is_measured_not_verified(tmp_path, servers, probe_job):
    pki = Pki(tmp_path)
    leaf = issue("new.probe.test", issuer=pki.intermediate, days=(2, 400))
    server = servers("tls", pki.server_context(leaf, "future"))
    job = probe_job(endpoints=["new.probe.test:443"], connect_addresses={"new.probe.test:443": server.address},
                    ca_file=str(pki.root_path))
    assert job.run().up
    key = ("new.probe.test:443",)
    assert job.values(SUCCESS) == {key: 1}
    assert job.values(VERIFIED) == {key: 0}
    assert job.values(NOT_BEFORE)[key] > time.time() + DAY
    assert job.values(NOT_AFTER)[key] == leaf.not_after


def test_chain_earliest_not_after_is_the_intermediates(tmp_path, servers, probe_job):
    pki = Pki(tmp_path, intermediate_days=(-300, 20))
    leaf = issue("pool.probe.test", issuer=pki.intermediate, days=(-10, 365))
    server = servers("tls", pki.server_context(leaf, "short-intermediate"))
    job = probe_job(endpoints=["pool.probe.test:5061"], connect_addresses={"pool.probe.test:5061": server.address},
                    ca_file=str(pki.root_path))
    assert job.run().up
    key = ("pool.probe.test:5061",)
    assert job.values(NOT_AFTER)[key] == leaf.not_after
    assert job.values(EARLIEST)[key] == pki.intermediate.not_after < leaf.not_after
    assert job.values(VERIFIED) == {key: 1}


# ------------------------------------------------------------ failures: metrics, not failed runs


def test_each_failure_kind_is_counted_and_the_run_still_succeeds(tmp_path, servers, probe_job, refused_address):
    pki = Pki(tmp_path)
    leaf = issue("ok.probe.test", issuer=pki.intermediate)
    good, silent, plain = servers("tls", pki.server_context(leaf, "ok")), servers("silent"), servers("http")
    mapping = {
        "ok.probe.test:443": good.address,
        "refused.probe.test:443": refused_address,
        "silent.probe.test:443": silent.address,
        "plain.probe.test:443": plain.address,
    }
    endpoints = [*mapping, "nowhere.invalid:443"]  # .invalid never resolves (RFC 6761)
    job = probe_job(endpoints=endpoints, connect_addresses=mapping, ca_file=str(pki.root_path), probe_timeout="2s")
    expected_kind = {"refused.probe.test:443": "refused", "silent.probe.test:443": "timeout",
                     "plain.probe.test:443": "tls_error", "nowhere.invalid:443": "dns"}
    for run in (1, 2):
        status = job.run()
        assert status.up, status.last_error
        assert job.values(SUCCESS) == {(e,): (1 if e == "ok.probe.test:443" else 0) for e in endpoints}
        for endpoint in endpoints:
            kind = expected_kind.get(endpoint)
            assert failures(job, endpoint) == {k: (run if k == kind else 0) for k in FAILURE_KINDS}, endpoint
        # Only the endpoint that answered has certificate series.
        assert set(job.values(NOT_AFTER)) == {("ok.probe.test:443",)}
        assert job.values(VERIFIED) == {("ok.probe.test:443",): 1}


# ------------------------------------------------------------ the simulated estate's TLS services


def service_settings(sim, target: str) -> dict:
    info = sim.hosts()[f"{target}.contoso.com"]
    return {"endpoints": list(info.tls_services), "connect_addresses": dict(info.tls_services),
            "ca_file": info.tls_ca_file}


TARGETS = ("ex01", "ex02", "fe01", "fe02", "edge01")


def signals(job: Job) -> dict[str, tuple]:
    """Per endpoint: (probe succeeded, verified, expires within 30 days)."""
    soon = time.time() + 30 * DAY
    earliest = job.values(EARLIEST)
    return {
        labels[0]: (value, job.values(VERIFIED).get(labels), earliest.get(labels, 0) < soon)
        for labels, value in job.values(SUCCESS).items()
    }


def test_simulated_services_healthy_then_cert_expiring(sim, probe_job):
    jobs = {target: probe_job(target, **service_settings(sim, target)) for target in TARGETS}
    expected_endpoints = {
        # OWA on 443 and OWA's IM endpoint on the OutlookWebApp trusted application's port.
        "ex01": {"ex01.contoso.com:443", "ex01.contoso.com:5199"},
        "ex02": {"ex02.contoso.com:443", "ex02.contoso.com:5199"},
        "fe01": {"fe01.contoso.com:5061", "pool01.contoso.com:5061"},
        "fe02": {"fe02.contoso.com:5061", "pool01.contoso.com:5061"},
        "edge01": {"sip.contoso.com:443", "edge01.contoso.com:5061"},
    }
    baseline = {}
    for target, job in jobs.items():
        assert job.run().up, job.status.last_error
        baseline[target] = dict(job.values(NOT_AFTER))
        assert signals(job) == {e: (1, 1, False) for e in expected_endpoints[target]}, target
    ex01_cn = {labels[2] for labels in jobs["ex01"].values(INFO)}
    assert ex01_cn == {"mail.contoso.com"}

    sim.set_scenario("cert-expiring")
    in_five_days = time.time() + 5 * DAY
    for target, job in jobs.items():
        assert job.run().up, job.status.last_error
        flipped = {e for e, (ok, verified, soon) in signals(job).items() if soon}
        # ex01's IM/UM certificate is bound to IIS and named by IMCertificateThumbprint: both endpoints show it.
        assert flipped == {"ex01": expected_endpoints["ex01"], "fe01": expected_endpoints["fe01"]}.get(target, set())
        for (endpoint,), not_after in job.values(NOT_AFTER).items():
            if endpoint in flipped:
                assert abs(not_after - in_five_days) < DAY, endpoint
            else:
                assert not_after == baseline[target][(endpoint,)], endpoint
        assert set(job.values(VERIFIED).values()) == {1}  # expiring, not expired yet


def test_only_certificate_and_im_endpoint_scenarios_flip_the_probe_signals(sim, probe_job):
    jobs = {target: probe_job(target, **service_settings(sim, target)) for target in TARGETS}
    flipped_by = {}
    for name in scenario_names():
        sim.set_scenario(name)
        flips = set()
        for target, job in jobs.items():
            assert job.run().up, (name, target, job.status.last_error)
            flips |= {(target, e) for e, signal in signals(job).items() if signal != (1, 1, False)}
        if flips:
            flipped_by[name] = flips
    assert flipped_by == {
        "cert-expiring": {("ex01", "ex01.contoso.com:443"), ("ex01", "ex01.contoso.com:5199"),
                          ("fe01", "fe01.contoso.com:5061"), ("fe01", "pool01.contoso.com:5061")},
        # Nothing answers on the trusted application's port; a self-signed IM certificate does not verify;
        # a certificate without the server's FQDN does not name the host on either port.
        "owa-im-port-not-listening": {("ex01", "ex01.contoso.com:5199")},
        "im-cert-untrusted-root": {("ex01", "ex01.contoso.com:5199")},
        "im-cert-lacks-server-name": {("ex02", "ex02.contoso.com:443"), ("ex02", "ex02.contoso.com:5199")},
    }


def test_default_endpoints_reach_the_simulated_services(sim, probe_job):
    # No `endpoints`: derived from the target (OWA 443; front end and pool on 5061), mapped to loopback.
    for target, expected in (("ex01", {"ex01.contoso.com:443"}),
                             ("fe02", {"fe02.contoso.com:5061", "pool01.contoso.com:5061"})):
        info = sim.hosts()[f"{target}.contoso.com"]
        job = probe_job(target, connect_addresses=dict(info.tls_services), ca_file=info.tls_ca_file)
        assert job.run().up, job.status.last_error
        assert job.values(SUCCESS) == {(e,): 1 for e in expected}
        assert job.values(VERIFIED) == {(e,): 1 for e in expected}


def test_refused_simulated_host_is_a_probe_failure(sim, probe_job):
    job = probe_job("ex01", **service_settings(sim, "ex01"))
    assert job.run().up
    sim.set_fault("ex01.contoso.com", "refuse")
    status = job.run()
    assert status.up, status.last_error
    assert job.values(SUCCESS) == {("ex01.contoso.com:443",): 0, ("ex01.contoso.com:5199",): 0}
    assert failures(job, "ex01.contoso.com:443")["refused"] == 1
    sim.clear_faults()
    assert job.run().up
    assert job.values(SUCCESS) == {("ex01.contoso.com:443",): 1, ("ex01.contoso.com:5199",): 1}
    assert failures(job, "ex01.contoso.com:443") == {k: (1 if k == "refused" else 0) for k in FAILURE_KINDS}
