"""Type-check Grafana dashboard JSON against Grafana's own published schema, with the TypeScript compiler.

Grafana publishes its dashboard model and every built-in panel's options as TypeScript types in the
npm package ``@grafana/schema``. ``package.json`` beside this file installs one copy per Grafana major
(npm aliases ``grafana-schema-<major>``) and ``typescript``. For a dashboard and one of those copies,
``check`` writes a TypeScript file in which

- the whole dashboard is one object literal typed as the schema's ``Dashboard``, so the compiler's
  excess-property check reports any key the schema does not know, at any depth, and every value of
  the wrong type;
- every panel is, once more, an object literal typed as the schema's ``Panel`` with its options and
  ``fieldConfig.defaults.custom`` replaced by the types of its plugin (``raw/composable/<plugin>/
  panelcfg``), so a misspelt or invalid panel option is an error too. A panel type with no published
  schema is an error, never skipped;

then runs ``tsc --noEmit --strict`` and maps each error back to the dashboard and panel it is in.

What is adapted, and why (each narrower than the published type or equal to what Grafana reads):

- ``Json<T>``: the schema uses TypeScript enums, and a JSON file holds their values. ``Json<T>`` turns
  each string enum into the union of its values (``BigValueTextMode`` -> ``"auto" | "name" | ...``);
  numeric enums already accept their number values. Everything else is unchanged.
- The schema's ``Panel`` types ``options`` and ``custom`` as open records (any key passes) and its
  ``targets`` as the datasource-independent base query. Here they are the plugin's ``Options`` and
  ``FieldConfig`` and Prometheus' query type. Options and custom are ``Partial`` at their top level
  because Grafana fills options a dashboard leaves out from the plugin's defaults (``defaultOptions``
  is itself a ``Partial<Options>``); nested objects keep every required field.
- Prometheus' query type (``PrometheusDataQuery``) was last published in ``@grafana/schema`` 10.4;
  Grafana 11 moved it into ``@grafana/prometheus``, a UI package that cannot be installed for its
  types alone. Its fields are unchanged there, so majors 11 and later use the 10.4 copy, extending
  their own base ``DataQuery``.
- ``__requires`` is the import envelope Grafana's "Export for sharing externally" writes and its
  importer reads (required Grafana version and plugins); it is not part of the saved dashboard
  model, so it is typed separately (``ImportEnvelope``) rather than left unchecked.

Run ``python -m tests.grafana_schema.check`` to check the committed dashboards against every version.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
INSTALL_HINT = "run scripts/bootstrap-grafana-schema (Node.js and npm, then npm ci in tests/grafana_schema)"
ALIAS_PREFIX = "grafana-schema-"
# The last @grafana/schema that publishes Prometheus' query type (see the module docstring).
PROMETHEUS_QUERY_ALIAS = "grafana-schema-10.4"
TSC_TIMEOUT_SECONDS = 300
TSC_ERROR = re.compile(r"^(?P<file>[^()\n]+)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<text>.*)$")

PRELUDE = """\
// The JSON form of a schema type: string enums become the union of their values.
type Json<T> = T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;
// T with the types of keys K replaced by V, optional where they were optional.
type Replace<T, K extends keyof T, V> = Omit<T, K> & { [P in keyof Pick<T, K>]: V };
type Query = Json<prometheus.PrometheusDataQuery>;
type FieldsOf<Custom> = Replace<Json<schema.FieldConfigSource>, "defaults",
  Replace<Json<schema.FieldConfig>, "custom", Partial<Json<Custom>>>>;
type PanelOf<Options, Custom> = Replace<Replace<Replace<Json<schema.Panel<Options, Custom>>,
  "options", Partial<Json<Options>>>, "fieldConfig", FieldsOf<Custom>>, "targets", Query[]>;
type Row = Json<schema.RowPanel>;
type AnyPanel = Replace<Json<schema.Panel>, "targets", Query[]>;
type ImportEnvelope = {
  __requires?: Array<{ type: "grafana" | "panel" | "datasource"; id: string; name: string; version: string }>;
};
type DashboardFile = Replace<Json<schema.Dashboard>, "panels", Array<Row | AnyPanel>> & ImportEnvelope;
"""


class SchemaNotInstalled(RuntimeError):
    """Node.js or the schema packages are missing; the message says how to install them."""


@dataclass(frozen=True)
class Schema:
    alias: str  # the npm alias in package.json, e.g. grafana-schema-11
    version: str  # the @grafana/schema version installed under it
    types_root: Path  # the folder holding index.d.ts and raw/ (dist/esm up to 11, dist/types from 12)

    def panel_config(self, panel_type: str) -> Path | None:
        """The plugin's panelcfg types: raw/composable/<type without dashes>/panelcfg/x/*types.gen.d.ts."""
        folder = self.types_root / "raw" / "composable" / panel_type.replace("-", "") / "panelcfg" / "x"
        found = sorted(folder.glob("*types.gen.d.ts"))
        return found[0] if found else None

    def prometheus_query(self) -> Path:
        own = sorted((self.types_root / "raw" / "composable" / "prometheus" / "dataquery" / "x").glob("*.d.ts"))
        return own[0] if own else locate(PROMETHEUS_QUERY_ALIAS).prometheus_query()


@dataclass(frozen=True)
class Diagnostic:
    dashboard: str
    where: str  # "panel 3 "Jobs" (stat)" or "dashboard"
    source_line: str  # the offending line of the dashboard as written into the checked file
    message: str  # the compiler's text, with its elaboration lines

    def __str__(self) -> str:
        at = f", at {self.source_line.strip()!r}" if self.source_line.strip() else ""
        return f"{self.dashboard}, {self.where}{at}: {self.message}"


def aliases() -> list[str]:
    """The schema copies package.json installs, oldest Grafana first."""
    dependencies = json.loads((HERE / "package.json").read_text())["devDependencies"]
    names = [name for name in dependencies if name.startswith(ALIAS_PREFIX)]
    return sorted(names, key=lambda name: [int(part) for part in name[len(ALIAS_PREFIX):].split(".")])


def require_toolchain() -> str:
    """The node binary; raises SchemaNotInstalled when node or the packages are missing."""
    node = shutil.which("node")
    if not node:
        raise SchemaNotInstalled(f"node is not installed; {INSTALL_HINT}")
    locked = json.loads((HERE / "package-lock.json").read_text())["packages"]
    missing = []
    for name in ["typescript", *aliases()]:
        manifest = NODE_MODULES / name / "package.json"
        want = locked.get(f"node_modules/{name}", {}).get("version")
        have = json.loads(manifest.read_text())["version"] if manifest.exists() else None
        if have != want:
            missing.append(f"{name} {want}" + (f" (found {have})" if have else ""))
    if missing:
        raise SchemaNotInstalled(f"{', '.join(missing)} not installed in tests/grafana_schema/node_modules; "
                                 f"{INSTALL_HINT}")
    return node


def locate(alias: str) -> Schema:
    package = NODE_MODULES / alias
    manifest = json.loads((package / "package.json").read_text())
    for root in (package / "dist" / "types", package / "dist" / "esm"):
        if (root / "index.d.ts").exists() and (root / "raw" / "dashboard" / "x").is_dir():
            return Schema(alias, manifest["version"], root)
    raise SchemaNotInstalled(f"{alias} ({manifest['version']}) has no dashboard types under dist/types or dist/esm")


class _Writer:
    """Accumulates the TypeScript file and remembers which lines belong to which dashboard part."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.regions: list[tuple[int, int, str]] = []  # first line, last line (1-based), where

    def add(self, text: str, where: str | None = None) -> None:
        first = len(self.lines) + 1
        self.lines.extend(text.split("\n"))
        if where:
            self.regions.append((first, len(self.lines), where))

    def where(self, line: int) -> str:
        # The innermost (latest starting) region containing the line.
        matches = [(first, where) for first, last, where in self.regions if first <= line <= last]
        return max(matches)[1] if matches else "dashboard"


def _panel_label(number: str, panel: dict[str, Any]) -> str:
    return f"panel {number} {json.dumps(panel.get('title', ''))} ({panel.get('type')})"


def _all_panels(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every panel with its number, those inside a collapsed row included ("5.2": row 5's second panel)."""
    found = []
    for index, panel in enumerate(dashboard.get("panels", [])):
        found.append((str(index + 1), panel))
        if panel.get("type") == "row":
            found += [(f"{index + 1}.{inner + 1}", nested) for inner, nested in enumerate(panel.get("panels", []))]
    return found


def _literal(value: Any) -> str:
    """JSON is a TypeScript expression; indented so each key sits on its own line for error mapping."""
    return json.dumps(value, indent=2)


def render(dashboard: dict[str, Any], schema: Schema) -> tuple[str, _Writer, list[str]]:
    """The TypeScript source for one dashboard against one schema, and panels with no published schema."""
    out = _Writer()
    unknown: list[str] = []
    panels = _all_panels(dashboard)
    plugins: dict[str, Path] = {}
    for number, panel in panels:
        kind = panel.get("type")
        if kind == "row":
            continue
        config = schema.panel_config(kind) if isinstance(kind, str) and kind else None
        if config is None:
            unknown.append(_panel_label(number, panel))
        else:
            plugins[kind] = config

    out.add(f"// Checked against @grafana/schema {schema.version}.")
    out.add('import type * as schema from "@grafana/schema";')
    out.add(f"import type * as prometheus from {json.dumps(_module(schema.prometheus_query()))};")
    identifiers = {kind: "plugin_" + re.sub(r"\W", "_", kind) for kind in plugins}
    for kind, config in sorted(plugins.items()):
        out.add(f"import type * as {identifiers[kind]} from {json.dumps(_module(config))};")
    out.add(PRELUDE)
    for kind, config in sorted(plugins.items()):
        custom = f"{identifiers[kind]}.FieldConfig"
        if not re.search(r"^export (interface|type) FieldConfig\b", config.read_text(), re.MULTILINE):
            custom = "Record<string, never>"  # a plugin with no custom field config (stat, gauge) accepts none
        out.add(f"type Panel_{identifiers[kind]} = PanelOf<{identifiers[kind]}.Options, {custom}>;")

    out.add("\n// Each panel against its plugin's options and field config.")
    for number, panel in panels:
        kind = panel.get("type")
        if kind == "row":
            annotation = "Row"
        elif kind in plugins:
            annotation = f"Panel_{identifiers[kind]}"
        else:
            continue
        variable = "panel_" + number.replace(".", "_")
        out.add(f"export const {variable}: {annotation} = {_literal(panel)};", _panel_label(number, panel))

    out.add("\n// The whole dashboard against the dashboard model.")
    out.add("export const dashboard: DashboardFile = {")
    for key, value in dashboard.items():
        if key != "panels":
            out.add(f"  {json.dumps(key)}: {_indent(_literal(value))},", f"dashboard key {json.dumps(key)}")
            continue
        out.add('  "panels": [')
        for index, panel in enumerate(value):
            out.add(f"    {_indent(_literal(panel), 4)},", _panel_label(str(index + 1), panel))
        out.add("  ],")
    out.add("};")
    return "\n".join(out.lines) + "\n", out, unknown


def _indent(text: str, spaces: int = 2) -> str:
    return text.replace("\n", "\n" + " " * spaces)


def _module(declaration: Path) -> str:
    """An import specifier for a .d.ts file: its absolute path without the extension."""
    return str(declaration)[: -len(".d.ts")]


def _tsconfig(schema: Schema) -> dict[str, Any]:
    return {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            # The schema's panelcfg files import "@grafana/schema": the copy under test, not another major.
            "paths": {"@grafana/schema": [_module(schema.types_root / "index.d.ts")]},
            "types": [],
            # Errors inside Grafana's own declaration files are not ours to report; our literals are checked.
            "skipLibCheck": True,
        },
        "files": ["dashboard.ts"],
    }


def check(dashboard: dict[str, Any], name: str, alias: str) -> list[Diagnostic]:
    """Every schema error in one dashboard (its parsed JSON) against one installed schema copy."""
    node = require_toolchain()
    schema = locate(alias)
    source, writer, unknown = render(dashboard, schema)
    problems = [Diagnostic(name, where, "", f"panel type has no published schema in @grafana/schema "
                                            f"{schema.version} (no raw/composable/<type>/panelcfg)")
                for where in unknown]
    with tempfile.TemporaryDirectory(prefix="grafana-schema-check-") as tmp:
        work = Path(tmp)
        (work / "dashboard.ts").write_text(source)
        (work / "tsconfig.json").write_text(json.dumps(_tsconfig(schema), indent=2))
        result = subprocess.run([node, str(TSC), "-p", str(work), "--noEmit", "--strict", "--pretty", "false"],
                                check=False, capture_output=True, text=True, timeout=TSC_TIMEOUT_SECONDS)
    if result.returncode == 0:
        return problems
    problems += _diagnostics(result.stdout, name, writer)
    if not problems:  # tsc failed without a diagnostic we could read: never pass silently.
        problems.append(Diagnostic(name, "dashboard", "", f"tsc exited {result.returncode}: "
                                                          f"{(result.stdout + result.stderr).strip()}"))
    return problems


def _diagnostics(output: str, name: str, writer: _Writer) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for line in output.splitlines():
        match = TSC_ERROR.match(line)
        if match:
            number = int(match["line"])
            source_line = writer.lines[number - 1] if 0 < number <= len(writer.lines) else ""
            found.append(Diagnostic(name, writer.where(number), source_line,
                                    f"{match['code']}: {match['text']}"))
        elif found and line.startswith(" "):
            # Elaboration lines ("Type 'x' is not assignable to ...") belong to the error above.
            last = found[-1]
            found[-1] = Diagnostic(last.dashboard, last.where, last.source_line, last.message + "\n" + line)
        elif line.strip():
            found.append(Diagnostic(name, "dashboard", "", line.strip()))
    return found


def main() -> int:
    from dashboards.generate import DASHBOARDS

    dashboards_dir = HERE.parent.parent / "dashboards"
    try:
        require_toolchain()
    except SchemaNotInstalled as missing:
        print(missing, file=sys.stderr)
        return 2
    failed = False
    for alias in aliases():
        for name in sorted(DASHBOARDS):
            problems = check(json.loads((dashboards_dir / name).read_text()), name, alias)
            print(f"{name} against @grafana/schema {locate(alias).version}: "
                  f"{'ok' if not problems else f'{len(problems)} error(s)'}")
            for problem in problems:
                print(f"  {problem}")
            failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
