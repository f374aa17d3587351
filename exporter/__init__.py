"""lync-owa-exporter: is IM and presence in Outlook Web App working, and if not, why.

This package is the runtime (configuration, scheduling, the snapshot store, rendering, HTTP, the
CLI); what the collectors are and what they read lives in ``collectors``."""

from collectors.helpers.version import VERSION as __version__

__all__ = ["__version__"]
