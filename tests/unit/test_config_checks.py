"""The configuration-check catalogue and its table in docs/metrics.md stay equal."""

from __future__ import annotations

import re

import pytest

from collectors.config_checks import CHECKS, check_sample
from tests.conftest import PROJECT_ROOT

BEGIN, END = "<!-- config-checks:", "<!-- /config-checks -->"


def render_table() -> list[str]:
    rows = ["| check | from | passes when | fix |", "| --- | --- | --- | --- |"]
    for check in sorted(CHECKS.values(), key=lambda c: (c.source, c.name)):
        fix, passes = (text.replace("|", "\\|") for text in (check.remediation, check.passes_when))
        rows.append(f"| `{check.name}` | {check.source} | {passes} | `{fix}` |")
    return rows


def documented_table() -> list[str]:
    text = (PROJECT_ROOT / "docs" / "metrics.md").read_text()
    block = text[text.index(BEGIN):text.index(END)]
    return [line for line in block.splitlines()[1:] if line.startswith("|")]


def test_docs_list_exactly_the_catalogue():
    # To update the page: python -m tests.unit.test_config_checks
    assert documented_table() == render_table(), "docs/metrics.md config-check table is out of date"


def test_names_are_bounded_snake_case():
    for name in CHECKS:
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,60}", name), name


def test_unknown_check_is_a_programming_error():
    with pytest.raises(KeyError, match="not in the catalogue"):
        check_sample("no_such_check", True)
    assert check_sample("ucma_dll_present", False).value == 0


if __name__ == "__main__":  # rewrite the table in docs/metrics.md from the catalogue
    path = PROJECT_ROOT / "docs" / "metrics.md"
    text = path.read_text()
    start = text.index("\n", text.index(BEGIN)) + 1
    path.write_text(text[:start] + "\n".join(render_table()) + "\n" + text[text.index(END):])
