"""Check E5: the MSExchangeOWAAppPool state, its worker and OWA's health check (collector ``owa_app_pool``).

``collector``; which w3wp.exe serves which pool is read by ``collectors.sources.app_pool_workers``."""
