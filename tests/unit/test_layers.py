"""Imports point one way: helpers <- contract <- sources <- checks <- registry <- runtime (exporter).

A check imports no other check, nothing in ``collectors`` imports the runtime, and the runtime
imports the simulator only for the ``demo`` and ``simulate`` commands. The rule is checked on the
source text (every import statement, including the ones inside functions), so a back-import fails
here before it can tie the layers together again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PROJECT_ROOT

# Bottom to top. A module may import modules of its own layer or below; checks only their own room.
LAYERS = ("helpers", "contract", "sources", "checks", "registry", "runtime")
SHARED_BY_CHECKS = {"collectors.config_checks"}  # a declaration several checks export through
SIMULATOR_ALLOWED_IN = {"exporter.cli", "exporter.demo", "exporter.demo_simulator"}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "exporter":
        return "runtime"
    if parts[0] != "collectors" or len(parts) == 1:
        return None
    second = parts[1]
    if second == "helpers":
        return "helpers"
    if second == "contract":
        return "contract"
    if second == "sources" or module in SHARED_BY_CHECKS:
        return "sources"
    if second == "registry":
        return "registry"
    return "checks"


def room_of(module: str) -> str:
    """The check a module belongs to: collectors.owa_events.files -> collectors.owa_events."""
    return ".".join(module.split(".")[:2])


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import, absolute or relative, anywhere in the file."""
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            # "from collectors import owa_events" imports the module collectors.owa_events
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if layer_of(f"{base}.{alias.name}") and not layer_of(base)]
    return found


def violations(root: Path) -> list[Violation]:
    found: list[Violation] = []
    for path in sorted([*root.glob("collectors/**/*.py"), *root.glob("exporter/**/*.py")]):
        module = module_name(root, path)
        mine = layer_of(module)
        if mine is None:
            continue
        for line, imported in imports_of(path, module):
            top = imported.split(".")[0]
            if top == "simulator":
                if module not in SIMULATOR_ALLOWED_IN:
                    found.append(Violation(module, line, imported, "only demo/simulate may start the simulator"))
                continue
            theirs = layer_of(imported)
            if theirs is None:
                continue
            if LAYERS.index(theirs) > LAYERS.index(mine):
                found.append(Violation(module, line, imported, f"{mine} must not import {theirs}"))
            elif mine == theirs == "checks" and room_of(imported) != room_of(module):
                found.append(Violation(module, line, imported, "a check must not import another check"))
    return found


def test_the_project_imports_one_way():
    problems = violations(PROJECT_ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_the_layers_cover_every_collector_module():
    modules = [module_name(PROJECT_ROOT, p) for p in PROJECT_ROOT.glob("collectors/**/*.py")]
    assert {layer_of(m) for m in modules if m != "collectors"} == set(LAYERS) - {"runtime"}


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_back_import_is_caught(tmp_path):
    root = _tree(tmp_path, {
        "collectors/__init__.py": "",
        "collectors/contract.py": "def f():\n    from exporter.scheduler import JobRunner\n",
        "collectors/sources/__init__.py": "",
        "collectors/sources/remoting.py": "from collectors.owa_events import collector\n",
        "collectors/owa_events/__init__.py": "",
        "collectors/owa_events/files.py": "from . import tally\nfrom ..im_certificate import im_settings\n",
        "collectors/owa_events/tally.py": "from collectors import registry\n",
        "exporter/__init__.py": "",
        "exporter/app.py": "import simulator.server\nfrom collectors.contract import Collector\n",
    })
    found = {(v.module, v.imported) for v in violations(root)}
    assert found == {
        ("collectors.contract", "exporter.scheduler"),
        ("collectors.sources.remoting", "collectors.owa_events"),
        ("collectors.owa_events.files", "collectors.im_certificate"),
        ("collectors.owa_events.tally", "collectors.registry"),
        ("exporter.app", "simulator.server"),
    }
