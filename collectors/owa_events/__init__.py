"""Check E1: Event 112 and the IM failure events of ``MSExchange OWA`` (collector ``owa_events``).

``collector`` (settings, the job), ``remote`` (Get-WinEvent), ``files`` (exported .evtx files),
``tally`` (counting) and ``reasons`` (failure messages to reasons)."""
