"""Reading a file named by an operator, refusing what must not be read: anything but a regular file
(a FIFO can block for ever, ``/dev/zero`` never ends, a folder cannot be read) and files larger than
a cap (a log named by mistake would be read whole into memory).

The file is opened without blocking and checked on the open descriptor (``fstat``), so what is
checked is what is read: no path can be swapped for a FIFO between the check and the read, and
opening a FIFO that has no writer returns at once instead of waiting for one.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["FileRefused", "MAX_CONFIG_FILE_BYTES", "read_bounded_file", "size_text"]

# The configuration file of a large estate (hundreds of targets) is tens of KiB.
MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# O_NONBLOCK: open() of a FIFO without a writer returns at once. Not on Windows, where open() of a
# named pipe does not wait for a writer either.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class FileRefused(OSError):
    """A path that names something not to be read: not a regular file, or a file that is too large.
    ``strerror`` says which in a few words ("not a regular file", "larger than 4 MiB")."""


def read_bounded_file(path: str | Path, limit: int) -> bytes:
    """The content of the regular file ``path``, of at most ``limit`` bytes.

    Raises FileRefused for anything else than a regular file or for a larger file, and OSError when
    it cannot be opened or read (missing, no permission: ``strerror`` says why).
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > limit:  # a sparse file of 200 MB is refused before a byte is read
            raise FileRefused(errno.EFBIG, f"larger than {size_text(limit)}", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= limit:  # the size may grow while we read: never read more than limit + 1
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise FileRefused(errno.EFBIG, f"larger than {size_text(limit)}", str(path))
    return b"".join(chunks)


def size_text(limit: int) -> str:
    """4194304 -> "4 MiB", for messages."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= scale and limit % scale == 0:
            return f"{limit // scale} {unit}"
    return f"{limit} bytes"

