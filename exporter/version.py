"""What this build is: version, git revision, build date and Python, for ``--version`` and
``lync_owa_build_info``, in the shape of Prometheus' own version output.

The revision and the build date are stamped into the package when it is built (``setup.py`` writes
``exporter/_build_stamp.json``: the revision from ``LYNC_OWA_REVISION``, which the Dockerfile's
``REVISION`` build argument sets, or else from git in a checkout), so nothing asks git at run time.
Without a stamp both read "unknown".
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import resources

from collectors.helpers.version import VERSION

UNKNOWN = "unknown"
STAMP_FILE = "_build_stamp.json"


@dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str
    build_date: str  # UTC, Prometheus' layout: 20261202-09:35:16
    python_version: str
    platform: str

    def labels(self) -> dict[str, str]:
        """The labels of ``lync_owa_build_info``."""
        return {"version": self.version, "revision": self.revision, "build_date": self.build_date,
                "python_version": self.python_version}

    def text(self, program: str = "lync-owa-exporter") -> str:
        """``--version`` output, laid out as ``prometheus --version`` prints it."""
        return (f"{program}, version {self.version} (revision: {self.revision})\n"
                f"  build date:       {self.build_date}\n"
                f"  python version:   {self.python_version}\n"
                f"  platform:         {self.platform}")


def read_stamp(text: str | None) -> tuple[str, str]:
    """(revision, build date) from a stamp file's text; "unknown" for whatever is missing or malformed."""
    try:
        stamp = json.loads(text) if text else {}
    except ValueError:
        stamp = {}
    if not isinstance(stamp, dict):
        stamp = {}

    def field(key: str) -> str:
        value = stamp.get(key)
        # Label values must stay short and printable, whatever a build wrote.
        return value.strip()[:64] if isinstance(value, str) and value.strip().isprintable() and value.strip() \
            else UNKNOWN

    return field("revision"), field("build_date")


def _stamp_text() -> str | None:
    try:
        return resources.files("exporter").joinpath(STAMP_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return None


def build_info() -> BuildInfo:
    revision, build_date = read_stamp(_stamp_text())
    return BuildInfo(
        version=VERSION,
        revision=revision,
        build_date=build_date,
        python_version=platform.python_version(),
        platform=f"{platform.system().lower()}/{platform.machine()}",
    )


BUILD = build_info()
