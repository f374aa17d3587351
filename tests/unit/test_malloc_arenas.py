"""The cap on glibc's malloc arenas: threads started after it share a few arenas (counted by glibc's own
``malloc_info``), an operator's ``MALLOC_ARENA_MAX`` wins, and the CLI applies it for run and demo.
Each case runs in a fresh interpreter: arenas, once made, stay for the life of a process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")

COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, tempfile, threading
    from exporter.malloc_arenas import limit_malloc_arenas

    applied = limit_malloc_arenas() if sys.argv[1] == "limit" else None
    start = threading.Barrier(8)

    def allocate():
        start.wait()  # all at once: each thread takes an arena of its own while the cap allows
        kept = [bytearray(4096) for _ in range(2000)]  # past pymalloc's 512 bytes: glibc's malloc
        del kept

    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fdopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    with tempfile.TemporaryFile() as out:
        stream = libc.fdopen(libc.dup(out.fileno()), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        out.seek(0)
        print(applied, out.read().count(b"<heap nr="))
    """
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", COUNT_ARENAS, mode], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=60, check=True)
    applied, count = done.stdout.split()
    return applied, int(count)


def test_threads_share_the_capped_arenas():
    from exporter.malloc_arenas import POLLING_ARENAS

    applied, count = arenas("limit")
    assert applied == "True"
    assert 1 <= count <= POLLING_ARENAS
    _, uncapped = arenas("none")
    assert uncapped > POLLING_ARENAS  # the same eight threads, without the cap, make more


def test_the_operators_setting_wins():
    applied, count = arenas("limit", MALLOC_ARENA_MAX="3")
    assert applied == "False"
    assert count == 3


def test_run_and_demo_apply_the_cap(monkeypatch):
    from exporter import cli

    calls = []
    monkeypatch.setattr(cli, "limit_malloc_arenas", lambda: calls.append(True) or True)
    monkeypatch.setattr(cli, "install_signal_handlers", lambda: None)
    monkeypatch.setitem(cli.COMMANDS, "run", lambda args: 0)
    monkeypatch.setitem(cli.COMMANDS, "check", lambda args: 0)
    assert cli.main(["check", "--config.file", "x.yaml"]) == 0
    assert calls == []
    assert cli.main(["run", "--config.file", "x.yaml"]) == 0
    assert calls == [True]
