"""A small builder for Grafana dashboard JSON (Grafana 10 and later, Prometheus data source).

Plain dictionaries, no client library: the output is exactly what Grafana's "Import dashboard"
and file provisioning read. Every panel gets a unit and a description (a test checks both), every
query goes through the `datasource` variable, and `job`/`instance` select one exporter. The output is
type-checked against Grafana's published schema (tests/grafana_schema/check.py): keys and values must
be ones `@grafana/schema` knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39  # Grafana 10.x/11.x
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# The exporter's series carry job and instance from Prometheus' scrape: every query filters on both.
SELECTOR = 'job=~"$job", instance=~"$instance"'


def sel(extra: str = "") -> str:
    """The label matchers for the chosen exporter, plus any extra matchers."""
    return "{" + SELECTOR + (", " + extra if extra else "") + "}"


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def to_json(self, ref_id: str) -> dict[str, Any]:
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "expr": self.expr,
            "refId": ref_id,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
        }
        if self.table:
            target["format"] = "table"
        return target


@dataclass
class Panel:
    title: str
    description: str
    queries: list[Query]
    unit: str
    kind: str = "timeseries"  # timeseries | stat | table | state-timeline | bargauge
    width: int = 12
    height: int = 8
    mappings: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    overrides: list[dict[str, Any]] = field(default_factory=list)
    custom: dict[str, Any] = field(default_factory=dict)

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        defaults: dict[str, Any] = {
            "unit": self.unit,
            "mappings": self.mappings,
            "thresholds": {"mode": "absolute",
                           "steps": [{"color": color, "value": value} for value, color in self.thresholds]},
        }
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.custom:
            defaults["custom"] = self.custom
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "options": self.options,
            "targets": [q.to_json(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "transformations": self.transformations,
        }


def link(title: str, url: str, tooltip: str, icon: str = "doc") -> dict[str, Any]:
    """A dashboard link to a URL, with every field Grafana's DashboardLink schema requires."""
    return {"title": title, "type": "link", "url": url, "tooltip": tooltip, "icon": icon, "tags": [],
            "asDropdown": False, "includeVars": False, "keepTime": False, "targetBlank": True}


@dataclass
class Row:
    title: str


def value_text(mapping: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Value mappings: {"1": ("OK", "green")} -> Grafana's value-mapping JSON."""
    return [{"type": "value", "options": {value: {"text": text, "color": color, "index": i}}}
            for i, (value, (text, color)) in enumerate(mapping.items())]


def _variables() -> list[dict[str, Any]]:
    def query_variable(name: str, label: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "type": "query",
            "datasource": DATASOURCE,
            "query": {"query": query, "refId": f"{name}-variable"},
            "refresh": 2,  # on time range change
            "includeAll": True,
            "multi": True,
            "allValue": ".+",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1,
        }

    return [
        # No "current": Grafana selects the default Prometheus data source (an empty {} is not a valid option).
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "refresh": 1, "hide": 0},
        query_variable("job", "Job", "label_values(lync_owa_build_info, job)"),
        query_variable("instance", "Exporter", 'label_values(lync_owa_build_info{job=~"$job"}, instance)'),
    ]


def dashboard(uid: str, title: str, description: str, tags: list[str], items: list[Panel | Row],
              links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Lay panels out left to right, wrapping at the grid width; a Row starts a new collapsible row."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    panel_id = 1
    for item in items:
        if isinstance(item, Row):
            y += row_height
            x = row_height = 0
            panels.append({"id": panel_id, "type": "row", "title": item.title, "collapsed": False,
                           "gridPos": {"x": 0, "y": y, "w": GRID_WIDTH, "h": 1}, "panels": []})
            panel_id += 1
            y += 1
            continue
        if x + item.width > GRID_WIDTH:
            y += row_height
            x = row_height = 0
        panels.append(item.to_json(panel_id, x, y))
        panel_id += 1
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": _variables()},
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
        }]},
        "links": links or [],
        "panels": panels,
    }
