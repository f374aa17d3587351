"""The verdict in Python: per OWA server, does IM in OWA work, and if not, why and what fixes it.

The same answer as the recording rules ``lync_owa:im_integration_broken`` and
``lync_owa:im_integration_healthy`` (alerts/lync-owa.rules.yml), computed from the exporter's own
snapshots, for the status page and ``diagnose``:

- ``catalogue``: every reason with the check it comes from, the collector whose data says so, and its fix;
- ``readings``: the series a scrape would show now, read from the snapshot store;
- ``causes``: one function per recording rule of ``lync_owa:im_integration_broken``;
- ``judge``: one row per OWA server (and per Edge where hybrid applies): OK, BROKEN, UNKNOWN or MAINTENANCE.
"""
