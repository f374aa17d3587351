"""`check` knows what it cannot do: Kerberos credentials (keytab, ticket cache), what this installation
lacks for an ``auth``, and the SPN settings of an endpoint; each a configuration error with the fix."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import yaml

from collectors import registry
from exporter import cli
from exporter.config import ConfigError, auth_support, load_config
from tests.conftest import SIM_PASSWORD

PRINCIPAL = "svc-lyncmon@CONTOSO.COM"


def keytab_bytes(*principals: str) -> bytes:
    """An MIT keytab (version 0x502) with one AES256 entry per principal; the keys are made up."""
    out = b"\x05\x02"
    for principal in principals:
        name, _, realm = principal.partition("@")
        parts = name.split("/")
        entry = struct.pack(">H", len(parts)) + struct.pack(">H", len(realm)) + realm.encode()
        for part in parts:
            entry += struct.pack(">H", len(part)) + part.encode()
        entry += struct.pack(">IIB", 1, 1700000000, 3) + struct.pack(">HH", 18, 32) + b"k" * 32
        out += struct.pack(">i", len(entry)) + entry
    return out


def config(tmp_path: Path, credential: dict, endpoint: dict | None = None) -> Path:
    document = {
        "credentials": {"monitoring": credential},
        "targets": [{"name": "ex01", "host": "ex01.contoso.com", "roles": ["exchange_mailbox"],
                     "credential": "monitoring", "endpoints": {"exchange": endpoint or {}}}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def messages(tmp_path: Path, credential: dict, endpoint: dict | None = None, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(config(tmp_path, credential, endpoint), registry.by_name(), environ or {})
    return [f"{p.path}: {p.message}" for p in info.value.problems]


@pytest.fixture
def keytab(tmp_path) -> Path:
    path = tmp_path / "monitor.keytab"
    path.write_bytes(keytab_bytes("HTTP/ex01.contoso.com@CONTOSO.COM", PRINCIPAL))
    path.chmod(0o400)
    return path


def test_a_keytab_credential_loads(tmp_path, keytab):
    loaded = load_config(config(tmp_path, {"username": PRINCIPAL, "keytab_file": keytab.name, "auth": "kerberos"},
                                {"spn_hostname": "mail.contoso.com"}), registry.by_name(), {})
    credential = loaded.credentials["monitoring"]
    assert credential.keytab_file == str(keytab) and credential.password.get_secret_value() == ""
    assert credential.ticket_cache is None  # tickets in memory
    endpoint = loaded.targets[0].endpoint("exchange")
    assert (endpoint.spn_hostname, endpoint.spn_service) == ("mail.contoso.com", "HTTP")


def test_keytab_principals_are_read_from_the_file(keytab):
    assert auth_support.keytab_principals(keytab) == ["HTTP/ex01.contoso.com@CONTOSO.COM", PRINCIPAL]


def test_a_principal_absent_from_the_keytab(tmp_path, keytab):
    found = messages(tmp_path, {"username": "other@CONTOSO.COM", "keytab_file": str(keytab), "auth": "kerberos"})
    assert any("credentials.monitoring.keytab_file" in m and "no keys for other@CONTOSO.COM" in m
               and PRINCIPAL in m and "ktpass" in m for m in found), found


def test_an_unreadable_keytab(tmp_path):
    missing = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": "nope.keytab", "auth": "kerberos"})
    assert any("keytab_file" in m and "cannot read keytab" in m and "nope.keytab" in m for m in missing), missing
    garbage = tmp_path / "garbage.keytab"
    garbage.write_text(SIM_PASSWORD)
    found = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": str(garbage), "auth": "kerberos"})
    assert any("is not a keytab" in m for m in found), found
    assert not any(SIM_PASSWORD in m for m in found)
    damaged = tmp_path / "damaged.keytab"
    damaged.write_bytes(keytab_bytes(PRINCIPAL)[:20])
    found = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": str(damaged), "auth": "kerberos"})
    assert any("damaged" in m for m in found), found


def test_a_keytab_needs_kerberos_and_a_principal(tmp_path, keytab):
    found = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": str(keytab), "auth": "ntlm"})
    assert any("needs auth: kerberos" in m for m in found), found
    found = messages(tmp_path, {"username": "svc-lyncmon", "keytab_file": str(keytab), "auth": "kerberos"})
    assert any("user@REALM" in m for m in found), found
    found = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": str(keytab), "password_env": "X",
                                "auth": "kerberos"}, environ={"X": "secret"})
    assert any("not both" in m for m in found), found


def test_the_ticket_cache_of_a_keytab_must_be_writable(tmp_path, keytab):
    found = messages(tmp_path, {"username": PRINCIPAL, "keytab_file": str(keytab), "auth": "kerberos",
                                "ticket_cache": str(tmp_path / "no-such-folder" / "krb5cc")})
    assert any("ticket_cache" in m and "does not exist" in m for m in found), found
    loaded = load_config(config(tmp_path, {"username": PRINCIPAL, "keytab_file": str(keytab), "auth": "kerberos",
                                           "ticket_cache": "MEMORY:monitor"}), registry.by_name(), {})
    assert loaded.credentials["monitoring"].ticket_cache == "MEMORY:monitor"


def test_an_existing_ticket_cache_needs_no_password(tmp_path):
    loaded = load_config(config(tmp_path, {"username": PRINCIPAL, "ticket_cache": "env", "auth": "kerberos"}),
                         registry.by_name(), {})
    assert loaded.credentials["monitoring"].ticket_cache == "env"
    found = messages(tmp_path, {"username": PRINCIPAL, "ticket_cache": "BOGUS:x", "auth": "kerberos"})
    assert any("unknown ticket cache type" in m for m in found), found


def test_kerberos_without_gssapi_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(auth_support, "kerberos_missing", lambda: ["gssapi", "krb5"])
    found = messages(tmp_path, {"username": PRINCIPAL, "password_env": "P", "auth": "kerberos"}, environ={"P": "x"})
    assert any("credentials.monitoring.auth" in m and "gssapi, krb5 missing" in m
               and "lync-owa-exporter[kerberos]" in m and "libkrb5" in m for m in found), found
    found = messages(tmp_path, {"username": PRINCIPAL, "password_env": "P", "auth": "negotiate"}, environ={"P": "x"})
    assert any("could only ever use NTLM" in m and "auth: ntlm" in m for m in found), found
    # NTLM itself needs nothing more than pyspnego.
    load_config(config(tmp_path, {"username": "svc", "password_env": "P", "auth": "ntlm"}), registry.by_name(),
                {"P": "x"})


def test_credssp_without_its_package(tmp_path, monkeypatch):
    real = auth_support._importable
    monkeypatch.setattr(auth_support, "_importable", lambda name: False if name == "requests_credssp" else real(name))
    found = messages(tmp_path, {"username": "svc", "password_env": "P", "auth": "credssp"}, environ={"P": "x"})
    assert any("requests-credssp" in m and "pypsrp[credssp]" in m for m in found), found


@pytest.mark.parametrize("endpoint, fragment", [
    ({"spn_hostname": "127.0.0.1"}, "the DNS name the SPN is registered for"),
    ({"spn_hostname": "HTTP/ex01.contoso.com"}, "the DNS name the SPN is registered for"),
    ({"spn_service": "HTTP/"}, "service class"),
])
def test_spn_settings_are_checked(tmp_path, endpoint, fragment):
    found = messages(tmp_path, {"username": "svc", "password_env": "P", "auth": "ntlm"}, endpoint, {"P": "x"})
    assert any(fragment in m for m in found), found


def test_check_command_reports_the_keytab_problem(tmp_path, capsys, keytab):
    path = config(tmp_path, {"username": "absent@CONTOSO.COM", "keytab_file": str(keytab), "auth": "kerberos"})
    assert cli.main(["check", "--config.file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no keys for absent@CONTOSO.COM" in err, err
