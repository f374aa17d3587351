"""The names the exporter serves: no old name left behind, HELP texts in words, siblings in one vocabulary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from collectors import registry
from collectors.edge_hosting_provider import COMPARED_FIELDS, SETTINGS_CHECKED
from exporter.metrics import domain_families

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHANGELOG = PROJECT_ROOT / "CHANGELOG.md"
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".json", ".txt", ".toml", ".html", ".sh", ".ps1", ".psrc", ".pssc"}
# A check's code in docs/checks.md (E3, L2, H1...): meaningless to someone reading a scrape.
CHECK_CODE = re.compile(r"\b[ELH][0-9]+\b")


def _declared_metrics():
    return [spec for collector in registry.by_name().values() for spec in collector.metrics]


def _renamed_metrics() -> dict[str, str]:
    """old -> new, from the CHANGELOG's "Renamed metrics" table."""
    section = CHANGELOG.read_text().split("### Renamed metrics", 1)[1].split("\n### ", 1)[0]
    return dict(re.findall(r"^\| `(lync_owa_[a-z0-9_]+)` \| `(lync_owa_[a-z0-9_]+)` \|", section, re.M))


def _project_text_files():
    for path in PROJECT_ROOT.rglob("*"):
        if SKIP_DIRS & set(path.relative_to(PROJECT_ROOT).parts) or path.suffix not in TEXT_SUFFIXES:
            continue
        if path.name == "CHANGELOG.md" or path.parent.name.endswith(".egg-info") or not path.is_file():
            continue
        yield path


def test_the_changelog_lists_renames_to_names_the_collectors_declare():
    renamed = _renamed_metrics()
    assert len(renamed) == 11
    declared = {spec.name for spec in _declared_metrics()}
    assert set(renamed.values()) <= declared
    assert not set(renamed) & declared


def test_no_file_of_the_project_uses_an_old_name():
    old = re.compile(r"\b(" + "|".join(map(re.escape, _renamed_metrics())) + r")\b")
    found = []
    for path in _project_text_files():
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(PROJECT_ROOT)}: {name}" for name in sorted(set(old.findall(text)))]
    assert found == [], "old metric names (CHANGELOG.md lists the new ones)"


@pytest.mark.parametrize("spec", _declared_metrics(), ids=lambda spec: spec.name)
def test_help_names_no_check_code_and_the_prefix_once(spec):
    assert not CHECK_CODE.search(spec.help), f"{spec.name}: HELP names a check by its code: {spec.help!r}"
    assert not spec.name.startswith("lync_owa_owa_") and not spec.name.startswith("lync_owa_lync_owa_")


def test_the_edge_setting_checks_use_the_field_names_of_the_cms_comparison():
    # setting_ok{setting} and matches_cms{field} are about the same properties of one provider.
    assert set(SETTINGS_CHECKED) <= set(COMPARED_FIELDS)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in SETTINGS_CHECKED)


class _Fixed:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                    reason="promtool not installed (scripts/test installs Debian's prometheus package)")
def test_promtool_accepts_every_declared_metric():
    # The demo's scrape (tests/e2e/test_demo.py) lacks the optional ones (healthcheck, evtx_*, key sizes
    # Lync does not report): one sample of every declared metric, rendered as a scrape renders it.
    specs = {spec.name: spec for spec in _declared_metrics()}
    samples = [spec.sample(1, **{label: "x" for label in spec.labels}) for spec in specs.values()]
    exposition_registry = CollectorRegistry(auto_describe=False)
    exposition_registry.register(_Fixed(domain_families("t", samples, specs)))  # type: ignore[arg-type]
    body = generate_latest(exposition_registry).decode()
    assert body.count("# TYPE ") == len(specs)
    result = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
