"""The TCP connections this process holds towards a loopback port, read from /proc (Linux only)."""

from __future__ import annotations

import os
import re
from pathlib import Path

ESTABLISHED = "01"  # the state column of /proc/net/tcp


def connections_to(port: int, *, established_only: bool = False) -> int:
    """Sockets this process holds towards 127.0.0.1:``port``: every state (CLOSE_WAIT too, a dropped
    pool's connection nobody closed), or only established ones (those carrying requests)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if found:
            inodes.add(found.group(1))
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] not in inodes or int(fields[2].split(":")[1], 16) != port:
            continue
        if not established_only or fields[3] == ESTABLISHED:
            count += 1
    return count
