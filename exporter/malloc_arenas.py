"""How many malloc arenas glibc may create in the polling process: a few, not eight per core.

glibc gives threads that allocate at once arenas of their own, up to eight per core (16 on a 2-core
machine, 128 on 16 cores). The pollers run dozens of threads (the workers, and a thread per run for its
deadline), so every arena is soon in use; what a run frees stays in its arena, and each arena keeps
its own free memory. Python code allocates under the interpreter lock, so more arenas buy the
pollers almost no parallelism, only memory. Measured with ``benchmarks/bench_memory_per_host.py``
(``docs/performance.md``, "Poll cycle and memory").

An operator's own ``MALLOC_ARENA_MAX`` wins (glibc read it at start). Elsewhere (musl, Windows,
macOS) there is no such setting and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["POLLING_ARENAS", "limit_malloc_arenas"]

log = logging.getLogger(__name__)

POLLING_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(count: int = POLLING_ARENAS) -> bool:
    """Cap glibc's arenas at ``count`` for the threads started from now on; True when applied."""
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    applied = bool(mallopt(_M_ARENA_MAX, count))  # 1 on success; musl's mallopt is a stub returning 0
    if not applied:
        log.debug("malloc arenas not limited: this C library has no M_ARENA_MAX")
    return applied
