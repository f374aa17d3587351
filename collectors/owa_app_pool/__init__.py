"""Check E5: the MSExchangeOWAAppPool state, its worker and OWA's health check (collector ``owa_app_pool``).

``collector`` and ``iis_workers`` (which w3wp.exe serves which pool)."""
