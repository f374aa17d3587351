"""Declared cmdlet parameters: the runtime check, the merge of several collectors, and the JEA output."""

from __future__ import annotations

import re

import pytest

from collectors.contract import Collector
from collectors.helpers.cmdlet_policy import Matching, OneOf, merge, problem_with
from collectors.registry import ALL_COLLECTORS
from exporter import jea

WEB_CONFIG = Matching(r"[a-z]:\\.*\\ClientAccess\\Owa\\web\.config")


def test_declared_calls_pass_and_others_are_named():
    policy = {"Path": WEB_CONFIG, "Raw": None}
    assert problem_with("Get-Content", {"Path": r"C:\Program Files\Microsoft\Exchange Server\V15\ClientAccess\Owa\web.config",
                                        "Raw": True}, policy) is None
    assert problem_with("Get-Content", {"path": r"d:\exchange\clientaccess\owa\WEB.CONFIG"}, policy) is None
    assert "does not match" in problem_with("Get-Content", {"Path": r"C:\Windows\System32\config\SAM"}, policy)
    assert "does not match" in problem_with("Get-Content", {"Path": r"C:\x\ClientAccess\Owa\web.config\..\..\secret"},
                                            policy)
    assert "-Encoding is not among" in problem_with("Get-Content", {"Path": r"c:\x\ClientAccess\Owa\web.config", "Encoding": "Byte"},
                                                 policy)
    assert "not one of" in problem_with("Get-ItemProperty", {"Path": r"HKLM:\SAM"}, {"Path": OneOf((r"HKLM:\A",))})
    assert "must be a string" in problem_with("Get-ItemProperty", {"Path": ["a"]}, {"Path": OneOf(("a",))})


def test_merge_keeps_the_loosest_rule():
    assert merge([OneOf(("a",)), None]) is None
    assert merge([OneOf(("a", "b")), OneOf(("B", "c"))]) == OneOf(("a", "b", "c"))
    mixed = merge([OneOf(("a.b",)), Matching("x+")])
    assert isinstance(mixed, Matching)
    assert re.fullmatch(mixed.pattern, "a.b") and re.fullmatch(mixed.pattern, "xxx") and not re.fullmatch(mixed.pattern, "acb")


def test_every_collector_declares_parameters_for_each_windows_cmdlet():
    """So the JEA role restricts parameters everywhere, not only where someone remembered to."""
    for collector in ALL_COLLECTORS:
        declared = {name.lower() for name in collector.cmdlet_parameters}
        for endpoint, cmdlet in collector.cmdlets:
            assert cmdlet.lower() in declared, f"{collector.name}: no cmdlet_parameters for {cmdlet}"


def test_role_capability_pins_values():
    text = jea.role_capability(ALL_COLLECTORS)
    assert "ValidateSet = 'Win32_Process'" in text
    assert "ValidatePattern = '^(?:(?:[a-z]:\\\\.*\\\\ClientAccess\\\\Owa\\\\web\\.config))$'" in text
    assert "'Name=''w3wp.exe'''" in text  # single quotes doubled inside a PowerShell string


def test_a_cmdlet_some_collector_leaves_undeclared_stays_unrestricted():
    class Loose(Collector):
        name = "loose"
        roles = frozenset({"lync_frontend"})
        cmdlets = (("windows", "Get-Content"),)

    class Strict(Collector):
        name = "strict"
        roles = frozenset({"lync_frontend"})
        cmdlets = (("windows", "Get-Content"),)
        cmdlet_parameters = {"Get-Content": {"Path": WEB_CONFIG}}

    assert jea.parameter_policies([Loose(), Strict()], "windows") == {}
    assert "'Get-Content'," not in jea.role_capability([Strict()]) and "ValidatePattern" in jea.role_capability([Strict()])


@pytest.mark.parametrize("collector", ALL_COLLECTORS, ids=lambda c: c.name)
def test_declared_parameter_names_are_powershell_names(collector):
    for cmdlet, policy in collector.cmdlet_parameters.items():
        assert re.fullmatch(r"(Get|Test)-[A-Za-z]+|Select-Object", cmdlet)
        for name in policy:
            assert re.fullmatch(r"[A-Z][A-Za-z]+", name), (collector.name, cmdlet, name)
