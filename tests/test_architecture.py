"""The package's shape: no import cycle between automnist's modules, no module over
MAX_LINES lines, light modules imported without TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import automnist

ROOT = Path(automnist.__file__).parent
#: "no module over ~400 lines" (issue 9); Keras Tuner's engine has a median of ~240.
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Module -> the automnist modules it imports (anywhere in the file, function bodies and
    ``TYPE_CHECKING`` blocks included; a package's ``__init__`` is resolved to the
    submodule a name comes from when that submodule exists)."""
    mods = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("automnist") else None
                if target and target != module and target != "automnist":
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_automnist_modules():
    graph = import_graph()
    assert "automnist.search" in graph and "automnist.runner" in graph["automnist.search"]
    assert cycles(graph) == []


def test_only_the_fronts_import_search():
    importers = sorted(m for m, targets in import_graph().items() if "automnist.search" in targets)
    allowed = {"automnist.cli.commands", "automnist.sklearn_api.auto"}
    assert set(importers) <= allowed | {m for m in importers if m.startswith("automnist.cli")}, importers


def test_no_module_over_max_lines():
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in _modules().items()}
    assert len(sizes) > 40
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_import_automnist_and_light_modules_do_not_import_tensorflow():
    code = ("import sys, automnist, automnist.spec, automnist.space, automnist.records, automnist.store, "
            "automnist.runs, automnist.search, automnist.report, automnist.cli; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
