"""The dashboards type-check against Grafana's own published schema, for every Grafana major we support.

A person must be able to import the dashboards into Grafana 10 or later without editing them. No
Grafana server runs here, so the dashboards are checked with the TypeScript compiler against the
dashboard and panel types Grafana publishes in ``@grafana/schema`` (one copy per major, pinned in
tests/grafana_schema/package-lock.json); tests/grafana_schema/check.py says how. The negative tests
prove the check reports real mistakes, naming the panel, so it cannot pass by checking nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from dashboards.generate import DASHBOARDS
from tests.conftest import PROJECT_ROOT, unavailable
from tests.grafana_schema import check as schema

DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"
ALIASES = schema.aliases()
# The mistakes are checked against the oldest and the newest schema copy.
EDGE_ALIASES = sorted({ALIASES[0], ALIASES[-1]}, key=ALIASES.index)


def _toolchain() -> None:
    try:
        schema.require_toolchain()
    except schema.SchemaNotInstalled as missing:
        unavailable(str(missing))


def _load(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS_DIR / name).read_text())


def _report(problems: list[schema.Diagnostic]) -> str:
    return "\n".join(f"  {problem}" for problem in problems)


def test_the_lock_file_pins_every_schema_copy():
    # 10.4 is the first Grafana 10 whose published schema describes the whole model (10.0's lacks includeAll).
    majors = {alias[len(schema.ALIAS_PREFIX):].split(".")[0] for alias in ALIASES}
    assert {"10", "11", "12"} <= majors, f"tests/grafana_schema/package.json checks only Grafana {sorted(majors)}"
    lock = json.loads((schema.HERE / "package-lock.json").read_text())["packages"]
    for alias in ALIASES:
        assert f"node_modules/{alias}" in lock, f"{alias} is not in tests/grafana_schema/package-lock.json"


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_matches_grafana_schema(name, alias):
    _toolchain()
    problems = schema.check(_load(name), name, alias)
    assert not problems, (f"dashboards/{name} does not match @grafana/schema {schema.locate(alias).version} "
                          f"({len(problems)} error(s)):\n{_report(problems)}")


def _first_panel(dashboard: dict[str, Any], panel_type: str) -> dict[str, Any]:
    panels = [panel for panel in dashboard["panels"] if panel["type"] == panel_type]
    assert panels, f"the dashboard has no {panel_type} panel to break"
    return panels[0]


def _misspelt_stat_option(dashboard):
    panel = _first_panel(dashboard, "stat")
    panel["options"]["textMod"] = "name"
    return panel["title"], '"textMod"'


def _invalid_state_timeline_value(dashboard):
    panel = _first_panel(dashboard, "state-timeline")
    panel["options"]["showValue"] = "sometimes"  # one of auto | always | never
    return panel["title"], '"sometimes"'


def _wrong_type_in_field_config(dashboard):
    panel = _first_panel(dashboard, "timeseries")
    panel["fieldConfig"]["defaults"]["custom"] = {"lineWidth": "thick"}
    return panel["title"], "not assignable to type 'number"


def _misspelt_query_field(dashboard):
    panel = _first_panel(dashboard, "table")
    panel["targets"][0]["legendFromat"] = "{{target}}"
    return panel["title"], '"legendFromat"'


def _unknown_panel_type(dashboard):
    panel = _first_panel(dashboard, "stat")
    panel["type"] = "stats"
    return panel["title"], "no published schema"


@pytest.mark.parametrize("alias", EDGE_ALIASES)
@pytest.mark.parametrize("mistake", [_misspelt_stat_option, _invalid_state_timeline_value, _wrong_type_in_field_config,
                                     _misspelt_query_field, _unknown_panel_type], ids=lambda f: f.__name__.strip("_"))
def test_a_broken_copy_fails_naming_the_panel_and_the_mistake(mistake, alias):
    _toolchain()
    dashboard = copy.deepcopy(_load("lync-owa-exporter.json"))
    title, evidence = mistake(dashboard)
    problems = schema.check(dashboard, "broken-copy.json", alias)
    assert problems, f"{mistake.__name__.strip('_')} in panel {title!r} passed the @grafana/schema check ({alias})"
    named = [problem for problem in problems if json.dumps(title) in problem.where
             and evidence in problem.source_line + problem.message]
    assert named, (f"no error names panel {title!r} and {evidence} ({alias}); the check reported:\n"
                   f"{_report(problems)}")


def test_a_misspelt_variable_key_fails():
    _toolchain()
    dashboard = _load("lync-owa-im.json")
    dashboard["templating"]["list"][1]["includAll"] = True
    problems = schema.check(dashboard, "broken-copy.json", ALIASES[-1])
    assert any('"includAll"' in problem.message and problem.where == 'dashboard key "templating"'
               for problem in problems), f"a misspelt variable key passed or was not named:\n{_report(problems)}"
