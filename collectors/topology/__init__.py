"""Checks L2 and L4, from both sides: the trusted application for OWA and OAuth's autodiscover.

``lync_topology`` (collector of the same name, on front ends), ``exchange_topology`` (collector of
the same name, on Exchange client access servers, which hands the SipName UM servers to the front-end
jobs), ``shared`` (what both read and the fact they pass)."""
