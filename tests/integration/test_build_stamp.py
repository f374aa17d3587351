"""The git revision and build date are stamped into the package at build time (setup.py), so an
installed exporter names them without git: a real wheel build of a copy of the sources, as the
Dockerfile's build stage makes it (no .git in the build context, REVISION given as a build argument)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from exporter.version import STAMP_FILE, UNKNOWN, read_stamp
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

SOURCES = ("pyproject.toml", "setup.py", "README.md", "exporter", "collectors", "simulator")


def build_wheel(tmp_path, env: dict[str, str]) -> str:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:  # what the Dockerfile copies: no .git, no stamp of this checkout
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", STAMP_FILE))
        else:
            shutil.copy2(path, source / name)
    environment = {k: v for k, v in os.environ.items() if k not in ("LYNC_OWA_REVISION", "SOURCE_DATE_EPOCH")}
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
                             str(tmp_path / "wheels"), str(source)], env={**environment, **env},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"exporter/{STAMP_FILE}").decode()


def test_the_revision_build_argument_and_the_build_date_reach_the_wheel(tmp_path):
    stamp = build_wheel(tmp_path, {"LYNC_OWA_REVISION": "0123abcd" * 5, "SOURCE_DATE_EPOCH": "1700000000"})
    assert read_stamp(stamp) == ("0123abcd" * 5, "20231114-22:13:20")


def test_without_git_or_a_build_argument_the_revision_is_unknown(tmp_path):
    revision, build_date = read_stamp(build_wheel(tmp_path, {"GIT_DIR": str(tmp_path / "no-git")}))
    assert revision == UNKNOWN
    assert build_date != UNKNOWN and len(build_date) == len("20231114-22:13:20")
