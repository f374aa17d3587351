"""docs/checks.md names the module of every check, and every collector has a check there."""

from __future__ import annotations

import re

from collectors.registry import ALL_COLLECTORS
from tests.conftest import PROJECT_ROOT

CHECKS = PROJECT_ROOT / "docs" / "checks.md"
IMPLEMENTED_IN = re.compile(r"^- Implemented in: \[`([^`]+)`\]\(\.\./([^)]+)\)", re.MULTILINE)


def test_every_check_names_a_module_that_exists():
    text = CHECKS.read_text()
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    assert len(sections) >= 12  # E1-E6, L1-L4, H1-H2
    for section in sections:
        assert IMPLEMENTED_IN.search(section), f"### {section.splitlines()[0]} names no module"
    for shown, link in IMPLEMENTED_IN.findall(text):
        assert shown == link and (PROJECT_ROOT / link).exists(), link


def test_every_collector_is_named_by_a_check():
    named = set(re.findall(r"collectors? `([a-z_]+)`", CHECKS.read_text()))
    named |= set(re.findall(r"`([a-z_]+)` on ", CHECKS.read_text()))
    assert {c.name for c in ALL_COLLECTORS} <= named
