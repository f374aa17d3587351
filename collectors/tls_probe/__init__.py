"""Every certificate the servers present on the network: OWA, the front-end pool, the Edge (collector
``tls_probe``)."""
