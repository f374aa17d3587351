"""Files named by an operator are checked on the open descriptor before a byte is read
(collectors.helpers.bounded_file): the configuration file, the web configuration file, password
files, keytabs and certificate/CA files. A device, a FIFO, a folder or a huge file gets one clear
line naming the file and why, and exit 2 from `check` and `run`; nothing hangs or fills memory."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from collectors.helpers.bounded_file import (
    MAX_CONFIG_FILE_BYTES,
    FileRefused,
    read_bounded_file,
)
from collectors.helpers.paths import MAX_PEM_FILE_BYTES
from exporter import cli
from exporter.config.auth_support import KeytabError, keytab_principals
from tests.conftest import PASSWORD_ENV, PROJECT_ROOT, write_config
from tests.tls_material import TestCA, write_web_config

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and /dev/zero are POSIX")

GOOD = {
    "credentials": {"mon": {"username": "CONTOSO\\svc", "password_env": PASSWORD_ENV}},
    "targets": [{"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "mon"}],
}


@pytest.fixture
def fifo(tmp_path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes are POSIX")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture
def sparse(tmp_path) -> Path:
    """200 MB that take no disk: what a log named by mistake looks like to a reader."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    return path


def read_within(path: Path, limit: int, seconds: float = 10.0):
    """read_bounded_file in a thread, so a regression that blocks fails this test instead of hanging it."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_call(path, limit)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"reading {path} blocked"
    return outcome[0]


def _call(path: Path, limit: int) -> object:
    try:
        return read_bounded_file(path, limit)
    except OSError as exc:
        return exc


def test_a_regular_file_is_read_up_to_the_limit_and_not_one_byte_more(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded_file(path, 100) == b"x" * 100
    refused = read_within(path, 99)
    assert isinstance(refused, FileRefused) and refused.strerror == "larger than 99 bytes"
    assert refused.filename == str(path)


@posix_only
def test_dev_zero_is_refused_as_not_a_regular_file():
    refused = read_within(Path("/dev/zero"), MAX_CONFIG_FILE_BYTES)
    assert isinstance(refused, FileRefused) and refused.strerror == "not a regular file"


def test_a_fifo_without_a_writer_is_refused_at_once(fifo):
    refused = read_within(fifo, MAX_CONFIG_FILE_BYTES)
    assert isinstance(refused, FileRefused) and refused.strerror == "not a regular file"


def test_a_directory_is_refused(tmp_path):
    refused = read_within(tmp_path, MAX_CONFIG_FILE_BYTES)
    assert isinstance(refused, FileRefused) and refused.strerror == "not a regular file"


def test_a_sparse_file_over_the_cap_is_refused_by_its_size(sparse):
    refused = read_within(sparse, MAX_CONFIG_FILE_BYTES)
    assert isinstance(refused, FileRefused) and refused.strerror == "larger than 4 MiB"


def test_a_missing_file_keeps_the_system_words(tmp_path):
    missing = read_within(tmp_path / "nope", 10)
    assert isinstance(missing, FileNotFoundError) and missing.strerror == "No such file or directory"


def test_a_keytab_that_is_a_fifo_is_refused_naming_it(fifo):
    with pytest.raises(KeytabError) as caught:
        keytab_principals(fifo)
    assert str(caught.value) == f"keytab {str(fifo)!r} is not a regular file"


# --- the command line: one line naming the file and the reason, exit 2 ------------------------------------


def special_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    files = {"directory": (tmp_path, "not a regular file")}
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe")
        files["fifo"] = (tmp_path / "pipe", "not a regular file")
        files["dev-zero"] = (Path("/dev/zero"), "not a regular file")
    big = tmp_path / "huge.yaml"
    with big.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    files["sparse-200MB"] = (big, "larger than 4 MiB")
    return files


@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_run_refuse_a_special_configuration_file(tmp_path, capsys, command):
    for kind, (path, why) in special_files(tmp_path).items():
        argv = [command, "--config.file", str(path)] + (["--web.listen-address", "127.0.0.1:0"] if command == "run" else [])
        assert cli.main(argv) == 2, kind
        assert f"{path}: cannot read configuration file: {why}" in capsys.readouterr().err, kind


def test_check_refuses_a_special_web_configuration_file(tmp_path, password_env, capsys):
    config = str(write_config(tmp_path, GOOD))
    folder = tmp_path / "specials"
    folder.mkdir()
    for kind, (path, why) in special_files(folder).items():
        assert cli.main(["check", "--config.file", config, "--web.config.file", str(path)]) == 2, kind
        assert f"{path}: cannot read the web configuration file: {why}" in capsys.readouterr().err, kind


def test_a_password_file_that_is_a_fifo_is_refused_naming_it(tmp_path, fifo, capsys):
    document = {**GOOD, "credentials": {"mon": {"username": "CONTOSO\\svc", "password_file": str(fifo)}}}
    assert cli.main(["check", "--config.file", str(write_config(tmp_path, document))]) == 2
    assert f"password file {str(fifo)!r} is not a regular file" in capsys.readouterr().err


def test_a_ca_file_that_is_dev_zero_is_refused_naming_it(tmp_path, password_env, capsys):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    document = {**GOOD, "collectors": {"tls_probe": {"ca_file": "/dev/zero"}}}
    assert cli.main(["check", "--config.file", str(write_config(tmp_path, document))]) == 2
    assert "CA file '/dev/zero' is not a regular file" in capsys.readouterr().err


def test_the_real_command_on_a_fifo_exits_2_instead_of_hanging(fifo):
    """As an operator runs it: a separate process, which must end by itself."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "--config.file", str(fifo)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"{fifo}: cannot read configuration file: not a regular file"


# --- the web configuration's TLS files, through the real command -------------------------------------------

TLS_FILE_KEYS = ("cert_file", "key_file", "client_ca_file")


def tls_web_config(folder: Path, **override: str) -> Path:
    """A web configuration with a server certificate, its key and a client CA, each file good unless overridden."""
    ca = TestCA(folder)
    leaf = ca.issue("server", server=True)
    tls = {"cert_file": str(leaf.cert_path), "key_file": str(leaf.key_path),
           "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(ca.cert_path), **override}
    return write_web_config(folder, {"tls_server_config": tls})


def run_check(config: Path, web_config: Path) -> subprocess.CompletedProcess:
    """`check` as an operator runs it, in a process of its own; the timeout turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "--config.file", str(config), "--web.config.file", str(web_config)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
    )


def test_the_tls_web_configuration_used_below_passes_check(tmp_path, password_env):
    result = run_check(write_config(tmp_path, GOOD), tls_web_config(tmp_path))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1].endswith(": OK, TLS on (TLS12-TLS13, RequireAndVerifyClientCert), basic auth off")


@posix_only
@pytest.mark.parametrize("key", TLS_FILE_KEYS)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "over-the-cap"])
def test_check_refuses_a_special_tls_file_naming_the_key_and_the_path(tmp_path, password_env, key, kind):
    special = tmp_path / "special"
    special.mkdir()
    if kind == "fifo":  # no writer ever comes: reading it would block for ever
        path, why = special / "pipe", "not a regular file"
        os.mkfifo(path)
    elif kind == "dev-zero":  # never ends
        path, why = Path("/dev/zero"), "not a regular file"
    elif kind == "directory":
        path, why = special, "not a regular file"
    else:  # one byte over the cap, sparse: refused by its size before a byte is read
        path, why = special / "huge.pem", "larger than 4 MiB"
        with path.open("wb") as handle:
            handle.truncate(MAX_PEM_FILE_BYTES + 1)
    web_config = tls_web_config(tmp_path, **{key: str(path)})
    result = run_check(write_config(tmp_path, GOOD), web_config)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"{web_config}: tls_server_config.{key}: cannot read {path}: {why}"]
