"""deploy/jea/ is generated from the collectors' declared cmdlets, and allows only read verbs."""

from __future__ import annotations

import pytest

from collectors.contract import Collector
from collectors.registry import ALL_COLLECTORS
from exporter import jea
from exporter.config import ENDPOINT_KINDS
from tests.conftest import PROJECT_ROOT


def test_committed_files_are_what_the_declarations_generate():
    for name, text in jea.files(ALL_COLLECTORS).items():
        path = PROJECT_ROOT / "deploy" / "jea" / name
        assert path.read_text() == text, f"deploy/jea/{name} is stale: run python -m exporter.jea"


def test_every_declared_cmdlet_is_a_read_verb_on_a_known_endpoint():
    for collector in ALL_COLLECTORS:
        assert collector.cmdlets or collector.name in {"tls_probe"}, f"{collector.name} declares no cmdlets"
        for endpoint, cmdlet in collector.cmdlets:
            assert endpoint in ENDPOINT_KINDS, (collector.name, endpoint)
            # Select-Object only picks properties of what a Get- cmdlet wrote in the same pipeline.
            assert cmdlet.startswith(("Get-", "Test-")) or cmdlet == "Select-Object", (collector.name, cmdlet)


def test_a_write_verb_is_refused():
    class Writer(Collector):
        name = "writer"
        roles = frozenset({"lync_frontend"})
        cmdlets = (("windows", "Set-CsHostingProvider"),)

    with pytest.raises(jea.NotReadOnly, match="Set-CsHostingProvider"):
        jea.files([Writer()])


def test_role_capability_lists_each_windows_cmdlet_once():
    text = jea.role_capability(ALL_COLLECTORS)
    windows = {c for collector in ALL_COLLECTORS for e, c in collector.cmdlets if e == "windows"}
    for cmdlet in windows:
        assert text.count(f"'{cmdlet}'") == 1, cmdlet
    exchange_only = {c for collector in ALL_COLLECTORS for e, c in collector.cmdlets if e == "exchange"} - windows
    for cmdlet in exchange_only:
        assert f"'{cmdlet}'" not in text, cmdlet
