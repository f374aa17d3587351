"""The TLS probe works in a process holding more than 1024 descriptors, as an exporter polling a
thousand hosts does (a connection or more per remoting endpoint): select() refuses descriptors past
1023, so the handshake waits on a selector (epoll) instead."""

from __future__ import annotations

import os
import resource

import pytest

from collectors.sources.tls import probe

EX01 = "ex01.contoso.com"


def test_a_probe_on_a_descriptor_past_1023_completes_the_handshake(sim):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip(f"the open-file limit ({soft}/{hard}) is below the 1200 descriptors this test holds")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200 if hard == resource.RLIM_INFINITY else min(hard, 4096), hard))
    info = sim.hosts()[EX01]
    endpoint, address = next((e, a) for e, a in info.tls_services.items() if e.endswith(":443"))
    host, port = address.rsplit(":", 1)
    held = []
    try:
        while not held or held[-1] < 1100:  # push the probe's socket past select()'s limit
            held.append(os.open(os.devnull, os.O_RDONLY))
        outcome = probe(host, int(port), EX01, 10.0, info.tls_ca_file)
    finally:
        for fd in held:
            os.close(fd)
    assert outcome.failure is None, outcome.detail
    assert outcome.chain_trusted and outcome.name_matches
    assert endpoint == f"{EX01}:443"
