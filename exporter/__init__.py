"""lync-owa-exporter: is IM and presence in Outlook Web App working, and if not, why."""

from importlib import metadata

try:
    __version__ = metadata.version("lync-owa-exporter")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
