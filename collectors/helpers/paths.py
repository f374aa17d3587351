"""Paths named in the configuration, and the files they name.

Settings name files the exporter reads later: CA bundles (a remoting endpoint's, the OWA health
check's, the TLS probe's), the certificate, key and client CA of ``--web.config.file``, password
files. They are all checked here, the same way and once, when the configuration is loaded: a wrong
path stops the exporter at start with a message naming the file, not at the first poll, and a
device, a folder or a log named by mistake is refused instead of read.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography import x509
from pydantic import ValidationInfo

from collectors.helpers.bounded_file import FileRefused, read_bounded_file

__all__ = ["MAX_PEM_FILE_BYTES", "FileRefused", "resolve_path", "read_small_file", "pem_certificates", "check_ca_file"]

# PEM bundles are small: the whole Mozilla CA bundle is about 220 KiB.
MAX_PEM_FILE_BYTES = 4 * 1024 * 1024


def resolve_path(name: str, info: ValidationInfo | None, base_dir: Path | None = None) -> Path:
    """A path from the configuration: relative paths are relative to the configuration file, as in Prometheus.

    ``info`` is the pydantic validation info of a settings model; the loader puts the file's folder in
    its context as ``base_dir``.
    """
    if base_dir is None and info is not None and isinstance(info.context, Mapping):
        base_dir = info.context.get("base_dir")
    path = Path(name)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def read_small_file(path: Path, limit: int = MAX_PEM_FILE_BYTES) -> bytes:
    """The content of the regular file ``path``, of at most ``limit`` bytes (see bounded_file).

    Raises FileRefused for anything else than a regular file or for a larger file, and OSError when
    it cannot be read (missing, no permission: ``strerror`` says why).
    """
    return read_bounded_file(path, limit)


def pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order; empty when it holds none or the PEM is broken."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def check_ca_file(name: str, info: ValidationInfo | None, *, require_certificate: bool) -> str:
    """The check of a CA bundle setting, for its field validator: the path, resolved against the
    configuration's folder (see resolve_path), once it names a readable regular file of at most
    MAX_PEM_FILE_BYTES that, with ``require_certificate``, holds at least one PEM certificate.

    Raises ValueError saying what is wrong, naming the resolved path; pydantic reports it at the setting.
    """
    path = resolve_path(name, info)
    where = f"CA file {str(path)!r}"
    try:
        data = read_small_file(path)
    except FileRefused as exc:
        raise ValueError(f"{where} is {exc.strerror}") from None
    except OSError:
        raise ValueError(f"{where} does not exist or is not readable") from None
    if require_certificate and not pem_certificates(data):
        raise ValueError(f"{where} holds no PEM certificate")
    return str(path)

