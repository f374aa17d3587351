"""Build step only (the project is described in pyproject.toml): stamp the git revision and the build
date into the package, so ``--version`` and ``lync_owa_build_info`` can name them without git at run
time (exporter/version.py reads the stamp).

The revision comes from ``LYNC_OWA_REVISION`` when set (the Dockerfile's REVISION build argument: the
build context has no .git), else from ``git rev-parse HEAD`` in a checkout, else "unknown". The date is
``SOURCE_DATE_EPOCH`` when set (reproducible builds), else now, in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

STAMP = Path("exporter") / "_build_stamp.json"


def _revision() -> str:
    revision = os.environ.get("LYNC_OWA_REVISION", "").strip()
    if revision:
        return revision
    try:
        answer = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=20,
                                cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return answer.stdout.strip() if answer.returncode == 0 and answer.stdout.strip() else "unknown"


def _build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = (dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch.isdigit()
            else dt.datetime.now(dt.timezone.utc))
    return when.strftime("%Y%m%d-%H:%M:%S")


class StampedBuildPy(build_py):
    def run(self) -> None:
        super().run()
        text = json.dumps({"revision": _revision(), "build_date": _build_date()}) + "\n"
        # An editable install imports the package from the checkout, where the stamp must then be
        # (it is git-ignored); a wheel carries it in its build directory.
        where = Path(__file__).resolve().parent if getattr(self, "editable_mode", False) else Path(self.build_lib)
        (where / STAMP).parent.mkdir(parents=True, exist_ok=True)
        (where / STAMP).write_text(text, encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / STAMP))
        return outputs


setup(cmdclass={"build_py": StampedBuildPy})
