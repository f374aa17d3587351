"""--web.config.file end to end: the real exporter HTTP server on loopback, real TLS clients.

Clients are `requests`, `urllib` and `http.client` over the standard `ssl` module; certificates are made
in the test. Covers basic authentication, HTTPS, client certificates, TLS versions, stalled handshakes,
secrets kept out of logs, and the command line refusing a bad file.
"""

from __future__ import annotations

import base64
import http.client
import io
import logging
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests

from exporter import logsetup
from exporter.http import ExporterHTTPServer
from exporter.metrics import ExpositionCache
from exporter.state import SnapshotStore
from exporter.web_config import load_web_config
from tests.conftest import (
    PASSWORD_ENV,
    PROJECT_ROOT,
    SIM_PASSWORD,
    estate_config,
    free_port,
    write_config,
)
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)

AUTH = (WEB_USER, WEB_PASSWORD)
# Generous: the machine is small and shared; these bound waits, they never measure anything.
CLIENT_TIMEOUT = 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-pki")
    ca, other_ca = TestCA(folder), TestCA(folder, "other-ca")
    return {
        "folder": folder, "ca": ca, "server": ca.issue("server", server=True),
        "client": ca.issue("client", server=False), "foreign_client": other_ca.issue("client", server=False),
    }


@pytest.fixture
def serve(pki):
    """Start the exporter's HTTP server with a web configuration document; returns (base URL, port)."""
    servers = []

    def start(document: dict, handshake_timeout: float = 10.0) -> tuple[str, int]:
        config = load_web_config(write_web_config(pki["folder"], document))
        store = SnapshotStore()
        server = ExporterHTTPServer(("127.0.0.1", 0), ExpositionCache(store, [], process_metrics=False), store,
                                    healthy=lambda: True, web_config=config, handshake_timeout=handshake_timeout)
        server.serve_in_thread()
        servers.append(server)
        port = server.server_address[1]
        return f"{server.scheme}://127.0.0.1:{port}", port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def tls(pki, **extra) -> dict:
    return {"cert_file": str(pki["server"].cert_path), "key_file": str(pki["server"].key_path), **extra}


def client_context(pki, cert: str | None = None, **versions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"].cert_path))
    if cert:
        context.load_cert_chain(str(pki[cert].cert_path), str(pki[cert].key_path))
    for attribute, value in versions.items():
        setattr(context, attribute, value)
    return context


def get(port: int, context: ssl.SSLContext, path: str = "/metrics", auth: tuple[str, str] | None = AUTH):
    """(status, body, negotiated TLS version) over http.client; raises OSError when TLS fails."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=CLIENT_TIMEOUT)
    try:
        headers = {"Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()} if auth else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), connection.sock.version()
    finally:
        connection.close()


# --- basic authentication over HTTPS ------------------------------------------------------------------


@pytest.fixture
def protected(serve, pki):
    return serve({"tls_server_config": tls(pki), "basic_auth_users": {WEB_USER: WEB_HASH}})


def test_no_credentials_get_401_asking_for_basic(protected, pki):
    url, _ = protected
    response = requests.get(f"{url}/metrics", verify=str(pki["ca"].cert_path), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "lync_owa_" not in response.text


def test_a_wrong_password_or_user_gets_401(protected, pki):
    url, _ = protected
    for auth in ((WEB_USER, "wrong"), ("nobody", WEB_PASSWORD), (WEB_USER, "")):
        response = requests.get(f"{url}/metrics", auth=auth, verify=str(pki["ca"].cert_path), timeout=CLIENT_TIMEOUT)
        assert response.status_code == 401, auth


def test_the_right_password_gets_the_metrics_with_requests_and_urllib(protected, pki):
    url, _ = protected
    response = requests.get(f"{url}/metrics", auth=AUTH, verify=str(pki["ca"].cert_path), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200 and "lync_owa_build_info" in response.text

    request = urllib.request.Request(f"{url}/metrics")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{WEB_USER}:{WEB_PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, context=client_context(pki), timeout=CLIENT_TIMEOUT) as answer:
        assert answer.status == 200 and b"lync_owa_build_info" in answer.read()


def test_repeated_scrapes_on_one_keep_alive_connection_stay_authorised(protected, pki):
    url, _ = protected
    verify = str(pki["ca"].cert_path)  # per request: REQUESTS_CA_BUNDLE would override a session's own
    with requests.Session() as session:
        for _ in range(5):
            assert session.get(f"{url}/metrics", auth=AUTH, verify=verify, timeout=CLIENT_TIMEOUT).status_code == 200
        response = session.get(f"{url}/metrics", auth=(WEB_USER, "wrong"), verify=verify, timeout=CLIENT_TIMEOUT)
        assert response.status_code == 401


def test_healthz_is_open_and_the_status_page_is_not(protected, pki):
    url, _ = protected
    verify = str(pki["ca"].cert_path)
    assert requests.get(f"{url}/healthz", verify=verify, timeout=CLIENT_TIMEOUT).text == "ok\n"
    assert requests.get(f"{url}/", verify=verify, timeout=CLIENT_TIMEOUT).status_code == 401
    assert requests.get(f"{url}/nope", verify=verify, timeout=CLIENT_TIMEOUT).status_code == 401
    assert requests.get(f"{url}/", auth=AUTH, verify=verify, timeout=CLIENT_TIMEOUT).status_code == 200


def test_plain_http_against_the_tls_port_gets_no_metrics(protected, pki):
    _, port = protected
    response = requests.get(f"http://127.0.0.1:{port}/metrics", auth=AUTH, timeout=CLIENT_TIMEOUT)
    assert response.status_code == 400 and "HTTPS" in response.text and "lync_owa_" not in response.text
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as raw:
        raw.sendall(b"\x00\x01garbage")
        try:
            assert raw.recv(1024) == b""  # closed without an answer
        except ConnectionResetError:
            pass  # closed without an answer, abruptly


def test_an_untrusted_server_certificate_is_refused_by_the_client(protected):
    url, _ = protected
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/metrics", auth=AUTH, timeout=CLIENT_TIMEOUT)  # system CAs only


def test_basic_auth_over_plain_http(serve):
    url, _ = serve({"basic_auth_users": {WEB_USER: WEB_HASH}})
    assert url.startswith("http://")
    assert requests.get(f"{url}/metrics", timeout=CLIENT_TIMEOUT).status_code == 401
    assert requests.get(f"{url}/metrics", auth=AUTH, timeout=CLIENT_TIMEOUT).status_code == 200


def test_configured_response_headers_are_sent(serve, pki):
    url, _ = serve({"tls_server_config": tls(pki),
                    "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}}})
    response = requests.get(f"{url}/metrics", verify=str(pki["ca"].cert_path), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff"


# --- client certificates --------------------------------------------------------------------------------


def test_a_required_client_certificate_is_checked(serve, pki):
    _, port = serve({"tls_server_config": tls(pki, client_auth_type="RequireAndVerifyClientCert",
                                              client_ca_file=str(pki["ca"].cert_path))})
    with pytest.raises(OSError):  # no certificate: the handshake fails (SSLError, or a reset under TLS 1.3)
        get(port, client_context(pki))
    with pytest.raises(OSError):  # a certificate from another CA
        get(port, client_context(pki, "foreign_client"))
    status, body, _ = get(port, client_context(pki, "client"))
    assert status == 200 and b"lync_owa_build_info" in body


def test_a_required_client_certificate_with_requests(serve, pki):
    url, _ = serve({"tls_server_config": tls(pki, client_auth_type="RequireAndVerifyClientCert",
                                              client_ca_file=str(pki["ca"].cert_path))})
    verify = str(pki["ca"].cert_path)
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a ConnectionError
        requests.get(f"{url}/metrics", verify=verify, timeout=CLIENT_TIMEOUT)
    own = (str(pki["client"].cert_path), str(pki["client"].key_path))
    assert requests.get(f"{url}/metrics", cert=own, verify=verify, timeout=CLIENT_TIMEOUT).status_code == 200


def test_an_optional_client_certificate_is_verified_when_given(serve, pki):
    _, port = serve({"tls_server_config": tls(pki, client_auth_type="VerifyClientCertIfGiven",
                                              client_ca_file=str(pki["ca"].cert_path))})
    assert get(port, client_context(pki))[0] == 200
    assert get(port, client_context(pki, "client"))[0] == 200
    with pytest.raises(OSError):
        get(port, client_context(pki, "foreign_client"))


def test_client_certificate_and_basic_auth_together(serve, pki):
    _, port = serve({"tls_server_config": tls(pki, client_auth_type="RequireAndVerifyClientCert",
                                              client_ca_file=str(pki["ca"].cert_path)),
                     "basic_auth_users": {WEB_USER: WEB_HASH}})
    assert get(port, client_context(pki, "client"), auth=None)[0] == 401
    assert get(port, client_context(pki, "client"))[0] == 200


# --- TLS versions and ciphers --------------------------------------------------------------------------


def test_min_version_tls13_refuses_a_tls12_client(serve, pki):
    _, port = serve({"tls_server_config": tls(pki, min_version="TLS13")})
    with pytest.raises(ssl.SSLError):
        get(port, client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert get(port, client_context(pki))[2] == "TLSv1.3"


def test_max_version_tls12_with_a_cipher_suite(serve, pki):
    _, port = serve({"tls_server_config": tls(pki, max_version="TLS12",
                                              cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"])})
    with pytest.raises(ssl.SSLError):
        get(port, client_context(pki, minimum_version=ssl.TLSVersion.TLSv1_3))
    context = client_context(pki)
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=CLIENT_TIMEOUT)
    try:
        connection.request("GET", "/metrics")
        assert connection.getresponse().status == 200
        assert connection.sock.version() == "TLSv1.2" and connection.sock.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    finally:
        connection.close()


# --- a client that never finishes its handshake ---------------------------------------------------------


@pytest.mark.parametrize("first_bytes", [b"", b"\x16\x03\x01"], ids=["silent", "partial-client-hello"])
def test_a_stalled_handshake_neither_blocks_others_nor_stays_open(serve, pki, first_bytes):
    _, port = serve({"tls_server_config": tls(pki)}, handshake_timeout=1.0)
    with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as stalled:
        stalled.sendall(first_bytes)
        assert get(port, client_context(pki))[0] == 200  # served while the other connection hangs
        stalled.settimeout(60)
        try:
            assert stalled.recv(1) == b""  # the server gave up on it
        except ConnectionResetError:
            pass  # gave up on it abruptly


# --- secrets stay out of the logs -----------------------------------------------------------------------


@pytest.fixture
def debug_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logsetup.LogfmtFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_secrets_never_reach_the_logs(serve, pki, debug_logs):
    _, port = serve({"tls_server_config": tls(pki, client_auth_type="VerifyClientCertIfGiven",
                                              client_ca_file=str(pki["ca"].cert_path)),
                     "basic_auth_users": {WEB_USER: WEB_HASH}})
    assert get(port, client_context(pki), auth=(WEB_USER, WEB_PASSWORD + "-typo"))[0] == 401
    assert get(port, client_context(pki), auth=(WEB_PASSWORD, WEB_PASSWORD))[0] == 401  # password typed as user
    assert get(port, client_context(pki))[0] == 200
    with pytest.raises(OSError):
        get(port, client_context(pki, "foreign_client"))
    deadline = time.monotonic() + 30  # the server thread may log its handshake failure after the client gave up
    while "TLS handshake failed" not in debug_logs.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = debug_logs.getvalue()
    assert "basic authentication failed" in logs and "TLS handshake failed" in logs  # it did log, at debug
    encoded = base64.b64encode(f"{WEB_USER}:{WEB_PASSWORD}".encode()).decode()
    for secret in (WEB_PASSWORD, WEB_HASH, encoded, WEB_HASH[7:29]):
        assert secret not in logs


# --- the command line ------------------------------------------------------------------------------------


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, PASSWORD_ENV: SIM_PASSWORD}
    return subprocess.run([sys.executable, "-m", "exporter.cli", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def exporter_config(tmp_path) -> Path:
    return write_config(tmp_path, {
        "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": PASSWORD_ENV}},
        "targets": [{"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "mon"}],
    })


def test_check_with_a_bad_web_config_exits_2_naming_file_and_problem(exporter_config, pki, tmp_path):
    bad = write_web_config(tmp_path, {"tls_server_config": tls(pki, key_file=str(tmp_path / "missing.key"))}, "bad.yml")
    result = run_cli("check", "--config.file", str(exporter_config), "--web.config.file", str(bad))
    assert result.returncode == 2, result
    assert f"{bad}: tls_server_config.key_file: cannot read {tmp_path / 'missing.key'}" in result.stderr


def test_check_with_a_good_web_config_says_what_it_protects(exporter_config, pki, tmp_path):
    good = write_web_config(tmp_path, {"tls_server_config": tls(pki), "basic_auth_users": {WEB_USER: WEB_HASH}})
    result = run_cli("check", "--config.file", str(exporter_config), "--web.config.file", str(good))
    assert result.returncode == 0, result.stderr
    assert f"{good}: OK, TLS on (TLS12-TLS13, NoClientCert), basic auth for 1 users" in result.stdout


def test_run_with_a_bad_web_config_exits_2_before_listening(exporter_config, tmp_path):
    bad = write_web_config(tmp_path, {"basic_auth_users": {WEB_USER: WEB_PASSWORD}}, "bad.yml")
    port = free_port()
    result = run_cli("run", "--config.file", str(exporter_config), "--web.config.file", str(bad),
                     "--web.listen-address", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"{bad}: basic_auth_users.{WEB_USER}: not a bcrypt hash" in result.stderr
    assert WEB_PASSWORD not in result.stderr + result.stdout and "listening" not in result.stderr


def test_run_serves_https_with_basic_auth_against_the_simulator(sim, pki, tmp_path):
    config = write_config(tmp_path, estate_config(sim, interval="5s", timeout="4s"))
    web = write_web_config(tmp_path, {"tls_server_config": tls(pki), "basic_auth_users": {WEB_USER: WEB_HASH}})
    port = free_port()
    env = {**os.environ, PASSWORD_ENV: SIM_PASSWORD}
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.cli", "run", "--config.file", str(config), "--web.config.file", str(web),
         "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "debug"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url, verify = f"https://127.0.0.1:{port}", str(pki["ca"].cert_path)
    try:
        deadline, body = time.monotonic() + 120, ""
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = requests.get(f"{url}/metrics", auth=AUTH, verify=verify, timeout=CLIENT_TIMEOUT)
            except requests.exceptions.ConnectionError:
                time.sleep(0.2)
                continue
            body = response.text
            if 'lync_owa_collector_up{collector="cms_replication"' in body:
                break
            time.sleep(0.5)
        assert 'lync_owa_collector_up{collector="cms_replication"' in body, process.poll() or "no scrape in time"
        assert requests.get(f"{url}/metrics", verify=verify, timeout=CLIENT_TIMEOUT).status_code == 401
        assert requests.get(f"{url}/healthz", verify=verify, timeout=CLIENT_TIMEOUT).status_code == 200
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/metrics", timeout=CLIENT_TIMEOUT)  # default context: untrusted CA
    finally:
        process.terminate()
        output = process.communicate(timeout=60)[0]
        print(output)  # shown when the test fails
    assert f"address={url}" in output and "TLS on" in output
    for secret in (WEB_PASSWORD, WEB_HASH, SIM_PASSWORD):
        assert secret not in output


def test_the_container_healthcheck_works_over_plain_http_and_over_tls(serve, pki):
    """`lync-owa-exporter healthcheck` (the Dockerfile's HEALTHCHECK) needs neither credentials nor the TLS settings."""
    from exporter import cli

    _, plain_port = serve({"basic_auth_users": {WEB_USER: WEB_HASH}})
    assert cli.main(["healthcheck", "--web.listen-address", f"127.0.0.1:{plain_port}"]) == 0
    _, tls_port = serve({"tls_server_config": tls(pki), "basic_auth_users": {WEB_USER: WEB_HASH}})
    assert cli.main(["healthcheck", "--web.listen-address", f":{tls_port}"]) == 0
    assert cli.main(["healthcheck", "--web.listen-address", f"127.0.0.1:{free_port()}", "--timeout", "2"]) == 1
