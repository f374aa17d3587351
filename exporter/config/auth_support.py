"""What `check` can tell about a credential before the first run: can this installation do its ``auth``,
and are its keytab and ticket cache usable?

- ``kerberos`` needs the Python packages ``gssapi`` and ``krb5`` (the project's ``kerberos`` extra,
  built on the system's MIT Kerberos libraries) with GSSAPI's IOV functions, which WinRM message
  encryption over HTTP uses. ``negotiate`` without them silently degrades to NTLM on every host, which
  Exchange's /PowerShell refuses: that is reported too, with the way to choose NTLM on purpose.
- ``credssp`` needs ``requests-credssp`` (pypsrp's ``credssp`` extra).
- A keytab is read and parsed here (MIT's file format, versions 1 and 2), so an unreadable file, a file
  that is no keytab, and a principal that is not in it are configuration errors naming what is there.
"""

from __future__ import annotations

import errno
import importlib
import os
import struct
from pathlib import Path

from collectors.helpers.bounded_file import FileRefused, read_bounded_file

__all__ = ["missing_for_auth", "keytab_principals", "KeytabError", "check_ticket_cache_target"]

_MAX_KEYTAB_BYTES = 1024 * 1024
_INSTALL_KERBEROS = ("pip install 'lync-owa-exporter[kerberos]' (it builds on the system's MIT Kerberos: Debian "
                     "libkrb5-3 and libgssapi-krb5-2 to run, libkrb5-dev and gcc to build; the container image has "
                     "them)")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - ImportError, or a broken native library (OSError)
        return False
    return True


def kerberos_missing() -> list[str]:
    """What Kerberos with WinRM message encryption lacks in this installation (empty: nothing)."""
    missing = [name for name in ("gssapi", "krb5") if not _importable(name)]
    if "gssapi" not in missing and not _importable("gssapi.raw.ext_iov_mic"):
        missing.append("GSSAPI IOV support (gssapi built against MIT Kerberos >= 1.12)")
    return missing


def missing_for_auth(auth: str, *, password_based: bool = True) -> str | None:
    """A configuration error's text when this installation cannot do ``auth``, else None."""
    if auth == "kerberos" or (auth == "negotiate" and not password_based):
        missing = kerberos_missing()
        if missing:
            return (f"auth: {auth} needs Kerberos support, which is not installed ({', '.join(missing)} missing): "
                    f"{_INSTALL_KERBEROS}")
    elif auth == "negotiate":
        missing = kerberos_missing()
        if missing:
            return (f"auth: negotiate could only ever use NTLM here: its Kerberos part needs {', '.join(missing)}, "
                    f"which is not installed, and Exchange's /PowerShell accepts Kerberos only. Install it: "
                    f"{_INSTALL_KERBEROS}; or set auth: ntlm to use NTLM (with message encryption) on purpose")
    elif auth == "credssp":
        if not _importable("requests_credssp"):
            return "auth: credssp needs the Python package requests-credssp, which is not installed: " \
                   "pip install 'pypsrp[credssp]'"
    return None


class KeytabError(ValueError):
    """The keytab cannot be used; the message says why, naming the file."""


def keytab_principals(path: Path) -> list[str]:
    """The principals in an MIT keytab file (``name/instance@REALM``), in file order, without repeats."""
    where = f"keytab {str(path)!r}"
    try:
        data = read_bounded_file(path, _MAX_KEYTAB_BYTES)  # checked on the open file: a FIFO cannot block
    except FileRefused as exc:
        if exc.errno == errno.EFBIG:
            raise KeytabError(f"{where} is larger than 1 MiB: not a keytab") from None
        raise KeytabError(f"{where} is {exc.strerror}") from None
    except PermissionError:
        raise KeytabError(f"{where} is not readable by this user (uid {os.getuid() if hasattr(os, 'getuid') else '?'}): "
                          f"make it readable by the exporter (e.g. chmod 0400 and chown, or mount it for uid 10112 "
                          f"in the container)") from None
    except OSError as exc:
        raise KeytabError(f"cannot read {where}: {exc.strerror or type(exc).__name__}") from None
    return _parse_keytab(data, where)


def _parse_keytab(data: bytes, where: str) -> list[str]:
    if len(data) < 2 or data[0] != 5 or data[1] not in (1, 2):
        raise KeytabError(f"{where} is not a keytab (MIT keytabs start with 0x0502); "
                          f"make one with ktutil or ktpass /out")
    big = data[1] == 2
    order = ">" if big else "="
    offset = 2
    found: list[str] = []
    try:
        while offset + 4 <= len(data):
            (size,) = struct.unpack_from(order + "i", data, offset)
            offset += 4
            if size == 0:
                break
            if size < 0:  # a hole left by a removed entry
                offset += -size
                continue
            entry = data[offset:offset + size]
            offset += size
            found.append(_entry_principal(entry, order, big))
    except (struct.error, IndexError, UnicodeDecodeError):
        raise KeytabError(f"{where} is damaged (an entry runs past the end of the file)") from None
    unique = list(dict.fromkeys(found))
    if not unique:
        raise KeytabError(f"{where} holds no keys")
    return unique


def _entry_principal(entry: bytes, order: str, v2: bool) -> str:
    pos = 0
    (count,) = struct.unpack_from(order + "H", entry, pos)
    pos += 2
    if not v2:
        count -= 1  # version 1 counts the realm among the components
    (length,) = struct.unpack_from(order + "H", entry, pos)
    pos += 2
    realm = entry[pos:pos + length].decode("utf-8")
    pos += length
    parts = []
    for _ in range(count):
        (length,) = struct.unpack_from(order + "H", entry, pos)
        pos += 2
        if pos + length > len(entry):
            raise IndexError
        parts.append(entry[pos:pos + length].decode("utf-8"))
        pos += length
    return f"{'/'.join(parts)}@{realm}"


def check_ticket_cache_target(cache: str) -> str | None:
    """For a keytab credential's ``ticket_cache``: why the exporter cannot write its tickets there, or None."""
    kind, sep, rest = cache.partition(":")
    if sep and kind.upper() == "MEMORY":
        return None
    if sep and kind.upper() in ("KEYRING", "KCM"):
        return None  # kernel keyring / KCM daemon: nothing to check on the file system
    path = Path(rest if sep and len(kind) > 1 else cache)
    folder = path if sep and kind.upper() == "DIR" else path.parent
    if not folder.is_dir():
        return f"folder {str(folder)!r} for the ticket cache does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (f"folder {str(folder)!r} for the ticket cache is not writable by this user: use a writable "
                f"volume (in a read-only container, a tmpfs such as /run/lync-owa-exporter) or MEMORY:")
    return None
