"""The installed distribution's version: shown by the CLI and the status page, exported in
``lync_owa_build_info`` and sent as the HTTP User-Agent of probes."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("lync-owa-exporter")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0+unknown"
