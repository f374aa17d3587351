"""--web.config.file: loading and validating the exporter-toolkit format, and checking basic authentication."""

from __future__ import annotations

import base64
import ssl

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization

from exporter import basic_auth
from exporter.web_config import (
    BasicAuth,
    WebConfigError,
    load_web_config,
    parse_basic_authorization,
)
from tests.tls_material import (
    WEB_HASH,
    WEB_PASSWORD,
    WEB_USER,
    TestCA,
    write_web_config,
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = TestCA(folder)
    other = TestCA(folder, "other-ca")
    return {
        "folder": folder, "ca": ca, "server": ca.issue("server", server=True),
        "other_server": other.issue("server", server=True),
    }


def tls_section(pki, **extra) -> dict:
    # Relative names: they must resolve against the web configuration file's folder.
    return {"cert_file": pki["server"].cert_path.name, "key_file": pki["server"].key_path.name, **extra}


def load(pki, document):
    return load_web_config(write_web_config(pki["folder"], document))


def problems_of(pki, document) -> str:
    with pytest.raises(WebConfigError) as caught:
        load(pki, document)
    return str(caught.value)


def test_a_full_file_loads_with_relative_paths_resolved_against_the_file(pki):
    config = load(pki, {
        "tls_server_config": tls_section(pki, client_auth_type="RequireAndVerifyClientCert",
                                         client_ca_file=pki["ca"].cert_path.name, min_version="TLS13"),
        "http_server_config": {"http2": True, "headers": {"X-Content-Type-Options": "nosniff", "X-Frame-Options": ""}},
        "basic_auth_users": {WEB_USER: WEB_HASH},
    })
    assert config.tls.cert_file == pki["server"].cert_path
    assert config.tls.client_ca_file == pki["ca"].cert_path
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert config.headers == {"X-Content-Type-Options": "nosniff"}  # a blank value means unset
    assert config.basic_auth_users == {WEB_USER: WEB_HASH.encode()}
    assert config.warnings == ()
    assert config.summary() == "TLS on (TLS13-TLS13, RequireAndVerifyClientCert), basic auth for 1 users"


def test_the_hashes_stay_out_of_repr(pki):
    config = load(pki, {"tls_server_config": tls_section(pki), "basic_auth_users": {WEB_USER: WEB_HASH}})
    assert WEB_HASH not in repr(config) and WEB_HASH not in config.summary()


@pytest.mark.parametrize("auth, mode", [("NoClientCert", ssl.CERT_NONE), ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
                                        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
                                        ("RequireAnyClientCert", ssl.CERT_REQUIRED)])
def test_client_auth_types_map_to_verify_modes(pki, auth, mode):
    extra = {"client_auth_type": auth}
    if auth != "NoClientCert":
        extra["client_ca_file"] = pki["ca"].cert_path.name
    config = load(pki, {"tls_server_config": tls_section(pki, **extra)})
    assert config.ssl_context.verify_mode == mode
    # Python's ssl verifies every certificate it asks for: the stricter behaviour is said at start.
    assert any("RequireAnyClientCert" in w for w in config.warnings) == (auth == "RequireAnyClientCert")


def test_basic_auth_without_tls_warns_that_passwords_travel_in_clear(pki):
    config = load(pki, {"basic_auth_users": {WEB_USER: WEB_HASH}})
    assert config.ssl_context is None and "clear text" in config.warnings[0]


def test_an_empty_file_is_allowed_with_a_warning(pki):
    config = load(pki, "")
    assert config.tls is None and not config.basic_auth_users and "neither" in config.warnings[0]


def test_cipher_suites_go_names_become_openssl_names(pki):
    config = load(pki, {"tls_server_config": tls_section(pki, max_version="TLS12", cipher_suites=[
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"])})
    names = {c["name"] for c in config.ssl_context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names == {"ECDHE-ECDSA-AES128-GCM-SHA256"}


def _garbage(pki, name: str) -> str:
    (pki["folder"] / name).write_text("this is not PEM\n")
    return name


def _encrypted_key(pki) -> str:
    data = pki["server"].key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"pass-phrase"))
    (pki["folder"] / "encrypted.key").write_bytes(data)
    return "encrypted.key"


BAD_FILES = [
    ("not-yaml", lambda p: "tls_server_config: [cert_file\n", "not valid YAML: line 2"),
    ("a-list", lambda p: "- cert_file\n", "expected a mapping of settings at the top level"),
    ("unknown-top-key", lambda p: {"basic_auth_user": {}},
     "basic_auth_user: unknown key (did you mean basic_auth_users?)"),
    ("unknown-tls-key", lambda p: {"tls_server_config": tls_section(p, colour="blue")},
     "tls_server_config.colour: unknown key"),
    ("unsupported-key", lambda p: {"tls_server_config": tls_section(p, client_allowed_sans=["a"])},
     "tls_server_config.client_allowed_sans: part of the exporter-toolkit format, not supported"),
    ("rate-limit", lambda p: {"rate_limit": {"interval": "1s", "burst": 5}},
     "rate_limit: part of the exporter-toolkit"),
    ("empty-tls", lambda p: {"tls_server_config": None},
     "tls_server_config: expected a mapping with cert_file and key_file"),
    ("no-key-file", lambda p: {"tls_server_config": {"cert_file": p["server"].cert_path.name}},
     "tls_server_config.key_file: required"),
    ("missing-cert", lambda p: {"tls_server_config": tls_section(p, cert_file="nope.crt")},
     "tls_server_config.cert_file: cannot read {folder}/nope.crt: No such file or directory"),
    ("cert-not-pem", lambda p: {"tls_server_config": tls_section(p, cert_file=_garbage(p, "garbage.crt"))},
     "tls_server_config.cert_file: {folder}/garbage.crt holds no PEM certificate"),
    ("key-not-pem", lambda p: {"tls_server_config": tls_section(p, key_file=_garbage(p, "garbage.key"))},
     "tls_server_config.key_file: {folder}/garbage.key holds no usable PEM private key"),
    ("key-encrypted", lambda p: {"tls_server_config": tls_section(p, key_file=_encrypted_key(p))},
     "holds an encrypted private key"),
    ("key-mismatch", lambda p: {"tls_server_config": tls_section(p, key_file=p["other_server"].key_path.name)},
     "tls_server_config.key_file: {folder}/other-ca-server.key does not match the certificate in"),
    ("bad-client-auth", lambda p: {"tls_server_config": tls_section(p, client_auth_type="RequestClientCert")},
     "tls_server_config.client_auth_type: 'RequestClientCert' is not one of NoClientCert"),
    ("verify-without-ca",
     lambda p: {"tls_server_config": tls_section(p, client_auth_type="RequireAndVerifyClientCert")},
     "tls_server_config.client_ca_file: required with client_auth_type RequireAndVerifyClientCert"),
    ("ca-without-verify", lambda p: {"tls_server_config": tls_section(p, client_ca_file=p["ca"].cert_path.name)},
     "client_auth_type is NoClientCert"),
    ("ca-unreadable", lambda p: {"tls_server_config": tls_section(p, client_auth_type="VerifyClientCertIfGiven",
                                                                  client_ca_file="no-ca.pem")},
     "tls_server_config.client_ca_file: cannot read {folder}/no-ca.pem"),
    ("obsolete-tls", lambda p: {"tls_server_config": tls_section(p, min_version="TLS11")},
     "tls_server_config.min_version: TLS11 is not supported"),
    ("unknown-tls", lambda p: {"tls_server_config": tls_section(p, max_version="TLS14")},
     "tls_server_config.max_version: 'TLS14' is not one of TLS12, TLS13"),
    ("min-above-max", lambda p: {"tls_server_config": tls_section(p, min_version="TLS13", max_version="TLS12")},
     "min_version TLS13 is above max_version TLS12"),
    ("bad-cipher", lambda p: {"tls_server_config": tls_section(p, cipher_suites=["TLS_RSA_WITH_RC4_128_SHA"])},
     "'TLS_RSA_WITH_RC4_128_SHA' is not a supported cipher suite"),
    ("plain-password", lambda p: {"basic_auth_users": {"alice": WEB_PASSWORD}},
     "basic_auth_users.alice: not a bcrypt hash"),
    ("truncated-hash", lambda p: {"basic_auth_users": {"alice": WEB_HASH[:-1]}},
     "basic_auth_users.alice: not a bcrypt hash"),
    ("user-not-string", lambda p: "basic_auth_users:\n  1234: " + WEB_HASH + "\n",
     "user name 1234 must be a non-empty string"),
    ("user-with-colon", lambda p: {"basic_auth_users": {"a:b": WEB_HASH}}, "cannot contain ':'"),
    ("duplicate-user", lambda p: f"basic_auth_users:\n  alice: '{WEB_HASH}'\n  alice: '{WEB_HASH}'\n",
     "line 3, column 3: duplicate key 'alice'"),
    ("header-not-allowed", lambda p: {"http_server_config": {"headers": {"Server": "x"}}},
     "http_server_config.headers.Server: not a header this file can set"),
    ("header-bad-value", lambda p: {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
     "http_server_config.headers.X-Frame-Options: 'allow' is not one of deny, sameorigin"),
]


@pytest.mark.parametrize("name, document, fragment", BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_every_bad_file_is_an_error_naming_the_file_the_key_and_the_problem(pki, name, document, fragment):
    message = problems_of(pki, document(pki))
    path = pki["folder"] / "web-config.yml"
    assert message.startswith(f"{path}: "), message
    assert fragment.format(folder=pki["folder"]) in message, message
    assert WEB_PASSWORD not in message and WEB_HASH not in message  # never echo a secret


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(WebConfigError) as caught:
        load_web_config(tmp_path / "absent.yml")
    expected = f"{tmp_path / 'absent.yml'}: cannot read the web configuration file: No such file or directory"
    assert str(caught.value) == expected


def test_every_problem_is_reported_at_once(pki):
    message = problems_of(pki, {"tls_server_config": {"cert_file": "a.crt"}, "basic_auth_users": {"bob": "x"}, "x": 1})
    assert len(message.splitlines()) == 4  # x unknown, key_file required, a.crt unreadable, bob's hash
    assert "key_file: required" in message and "x: unknown key" in message and "bob: not a bcrypt hash" in message
    assert "cert_file: cannot read" in message


def test_htpasswd_and_python_bcrypt_prefixes_are_accepted(pki):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    for prefix in ("$2y$", "$2a$", "$2b$"):
        config = load(pki, {"basic_auth_users": {"u": prefix + hashed[4:]}})
        assert BasicAuth(config.basic_auth_users).verify("u", "pw")


# --- basic authentication ------------------------------------------------------------------------------


@pytest.fixture
def counted_bcrypt(monkeypatch):
    calls = []
    real = bcrypt.checkpw

    def checkpw(password, hashed):
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(basic_auth.bcrypt, "checkpw", checkpw)
    return calls


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_right_and_wrong_credentials():
    auth = BasicAuth({WEB_USER: WEB_HASH.encode()})
    assert auth.enabled
    assert auth.check_header(header(WEB_USER, WEB_PASSWORD))
    assert not auth.check_header(header(WEB_USER, "wrong"))
    assert not auth.check_header(header("someone-else", WEB_PASSWORD))
    assert not auth.check_header(None) and not auth.check_header("Bearer abc")


def test_a_successful_check_is_cached_and_a_failed_one_is_not(counted_bcrypt):
    auth = BasicAuth({WEB_USER: WEB_HASH.encode()})
    for _ in range(3):
        assert auth.verify(WEB_USER, WEB_PASSWORD)
    assert len(counted_bcrypt) == 1  # bcrypt once, then the cache
    for _ in range(3):
        assert not auth.verify(WEB_USER, "wrong")
    assert len(counted_bcrypt) == 4  # every wrong guess pays bcrypt
    assert auth.verify(WEB_USER, WEB_PASSWORD) and len(counted_bcrypt) == 4  # the good entry survives bad guesses


def test_an_unknown_user_still_pays_a_bcrypt_run(counted_bcrypt):
    auth = BasicAuth({WEB_USER: WEB_HASH.encode()})
    assert not auth.verify("nobody", WEB_PASSWORD)
    assert not auth.verify("nobody", WEB_PASSWORD)
    assert len(counted_bcrypt) == 2  # same cost as a known user, and never cached


def test_the_cache_holds_no_password():
    auth = BasicAuth({WEB_USER: WEB_HASH.encode()})
    auth.verify(WEB_USER, WEB_PASSWORD)
    assert WEB_PASSWORD.encode() not in b"".join(auth._verified.values())


def test_long_passwords_are_cut_at_72_bytes_like_htpasswd():
    password = "p" * 80
    auth = BasicAuth({"u": bcrypt.hashpw(password[:72].encode(), bcrypt.gensalt(rounds=4))})
    assert auth.verify("u", password) and auth.verify("u", password[:72])


@pytest.mark.parametrize("value, expected", [
    (header("alice", "pa:ss word"), ("alice", "pa:ss word")),
    ("basic " + base64.b64encode(b"alice:").decode(), ("alice", "")),
    ("Basic " + base64.b64encode("zoë:pw".encode()).decode(), ("zoë", "pw")),
    ("Basic " + base64.b64encode(b"no-colon").decode(), None),
    ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
    ("Basic !!!not-base64", None),
    ("Basic", None),
    ("Digest abc", None),
    ("", None),
])
def test_parse_basic_authorization(value, expected):
    assert parse_basic_authorization(value) == expected


def test_the_example_file_is_valid_once_its_certificate_exists(pki):
    from tests.conftest import PROJECT_ROOT

    text = (PROJECT_ROOT / "examples" / "web-config.yml").read_text()
    assert "/etc/lync-owa-exporter/tls/exporter.crt" in text and "/etc/lync-owa-exporter/tls/exporter.key" in text
    text = text.replace("/etc/lync-owa-exporter/tls/exporter.crt", str(pki["server"].cert_path))
    text = text.replace("/etc/lync-owa-exporter/tls/exporter.key", str(pki["server"].key_path))
    config = load(pki, text)
    assert config.summary() == "TLS on (TLS12-TLS13, NoClientCert), basic auth for 1 users"
    assert config.warnings == ()


@pytest.mark.parametrize("section, fragment", [
    ({"client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": None}, "client_ca_file: required"),
    ({"client_auth_type": ["NoClientCert"]}, "client_auth_type: ['NoClientCert'] is not one of"),
    ({"min_version": ["TLS12"]}, "min_version: ['TLS12'] is not one of"),
    ({"cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, "cipher_suites: expected a list"),
    ({"cert_file": 12}, "cert_file: expected a file name, found a number"),
])
def test_values_of_the_wrong_type_are_named_not_crashed_on(pki, section, fragment):
    assert fragment in problems_of(pki, {"tls_server_config": tls_section(pki, **section)})
