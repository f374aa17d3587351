"""Files named in the configuration (collectors.helpers.paths), checked once for every setting that
names one: the config's endpoint ca_file, owa_app_pool's healthcheck_ca_file, tls_probe's ca_file,
the web config's cert_file, key_file and client_ca_file, and password files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator

from collectors.helpers.paths import (
    MAX_PEM_FILE_BYTES,
    FileRefused,
    check_ca_file,
    pem_certificates,
    read_small_file,
    resolve_path,
)
from tests.tls_material import TestCA

# What a careless "echo" leaves: a PEM header with no certificate behind it.
PLACEHOLDER = "-----BEGIN CERTIFICATE-----\n"


class Loose(BaseModel):
    """A setting as the config's endpoints and owa_app_pool check it: any readable file."""

    ca_file: str

    @field_validator("ca_file")
    @classmethod
    def _usable(cls, ca_file: str, info: ValidationInfo) -> str:
        return check_ca_file(ca_file, info, require_certificate=False)


class Strict(BaseModel):
    """A setting as tls_probe checks it: the file must hold a PEM certificate."""

    ca_file: str

    @field_validator("ca_file")
    @classmethod
    def _usable(cls, ca_file: str, info: ValidationInfo) -> str:
        return check_ca_file(ca_file, info, require_certificate=True)


def refusal(model: type[BaseModel], name: str, folder: Path) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"ca_file": name}, context={"base_dir": folder})
    return caught.value.errors()[0]["msg"]


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(tmp_path)


def test_relative_paths_are_relative_to_the_configuration_folder(tmp_path):
    assert resolve_path("ca.pem", None, tmp_path) == tmp_path / "ca.pem"
    assert resolve_path("/etc/ca.pem", None, tmp_path) == Path("/etc/ca.pem")
    assert resolve_path("ca.pem", None) == Path("ca.pem")  # no folder known: left as written


@pytest.mark.parametrize("model", [Loose, Strict])
def test_a_ca_file_is_resolved_against_the_folder_in_the_validation_context(ca, tmp_path, model):
    settings = model.model_validate({"ca_file": ca.cert_path.name}, context={"base_dir": tmp_path})
    assert settings.ca_file == str(ca.cert_path)
    assert model(ca_file=str(ca.cert_path)).ca_file == str(ca.cert_path)  # absolute, no context


@pytest.mark.parametrize("model", [Loose, Strict])
def test_a_missing_ca_file_is_named(tmp_path, model):
    assert refusal(model, "nope.pem", tmp_path) == (
        f"Value error, CA file {str(tmp_path / 'nope.pem')!r} does not exist or is not readable"
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_ca_file_without_permission_is_refused(ca, tmp_path):
    ca.cert_path.chmod(0)
    assert "does not exist or is not readable" in refusal(Loose, ca.cert_path.name, tmp_path)


@pytest.mark.parametrize("model", [Loose, Strict])
def test_a_folder_is_not_a_ca_file(tmp_path, model):
    (tmp_path / "certs").mkdir()
    assert refusal(model, "certs", tmp_path).endswith(f"CA file {str(tmp_path / 'certs')!r} is not a regular file")


def test_a_ca_file_too_large_to_be_a_bundle_is_refused(tmp_path):
    (tmp_path / "huge.pem").write_bytes(b"#" * (MAX_PEM_FILE_BYTES + 1))
    assert refusal(Loose, "huge.pem", tmp_path).endswith("is larger than 4 MiB")


def test_only_the_strict_check_wants_a_pem_certificate(tmp_path):
    (tmp_path / "placeholder.pem").write_text(PLACEHOLDER)
    (tmp_path / "garbage.pem").write_text("not a certificate")
    assert Loose.model_validate({"ca_file": "placeholder.pem"}, context={"base_dir": tmp_path})
    for name in ("placeholder.pem", "garbage.pem"):
        assert refusal(Strict, name, tmp_path).endswith(f"CA file {str(tmp_path / name)!r} holds no PEM certificate")


def test_pem_certificates_reads_a_whole_bundle_in_order(tmp_path):
    first, second = TestCA(tmp_path, "first"), TestCA(tmp_path, "second")
    bundle = first.cert_path.read_bytes() + second.cert_path.read_bytes()
    assert pem_certificates(bundle) == [first.certificate, second.certificate]
    assert pem_certificates(b"not PEM") == [] and pem_certificates(PLACEHOLDER.encode()) == []


def test_read_small_file_reads_up_to_its_limit(tmp_path):
    path = tmp_path / "secret"
    path.write_bytes(b"x" * 1024)
    assert read_small_file(path, 1024) == b"x" * 1024
    with pytest.raises(FileRefused) as caught:
        read_small_file(path, 1023)
    assert caught.value.strerror == "larger than 1023 bytes"
    path.write_bytes(b"x" * 1025)
    with pytest.raises(FileRefused, match="larger than 1 KiB"):
        read_small_file(path, 1024)


def test_read_small_file_says_why_it_cannot_read(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        read_small_file(tmp_path / "nope.crt")
    assert missing.value.strerror == "No such file or directory"  # web config: "cannot read <path>: <strerror>"
    with pytest.raises(FileRefused) as folder:
        read_small_file(tmp_path)
    assert folder.value.strerror == "not a regular file" and isinstance(folder.value, OSError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with pytest.raises(FileRefused, match="not a regular file"):
        read_small_file(fifo)
    assert "is not a regular file" in refusal(Loose, "pipe", tmp_path)
