"""Every certificate the servers present on the network: OWA, the front-end pool, the Edge (collector
``tls_probe``).

``collector`` (settings, the job, the samples) and ``targets`` (endpoints, their defaults by role,
where to connect); the handshake itself is the source :mod:`collectors.sources.tls`."""
