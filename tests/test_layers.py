"""The layers point one way: apps -> evaluation -> core, and no two modules import each other.

Every import of every module under apps/, core/ and evaluation/ (installed as
``quintet.apps``, ``quintet.core`` and ``quintet.evaluation``) counts, wherever it stands:
at the top, inside a function (a lazy import hides a cycle from Python, not from the
design) or under ``if TYPE_CHECKING``. Read from the source with :mod:`ast`; nothing is
imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("apps", "core", "evaluation")
# What each layer may import, besides itself.
ALLOWED = {"core": set(), "evaluation": {"core"}, "apps": {"core", "evaluation"}}


def module_name(path: Path) -> str:
    parts = ["quintet", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """``quintet.core.paths`` -> ``core``."""
    return module.split(".")[1]


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """The project modules ``name`` imports, with line numbers.

    ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module, else
    ``pkg``; a package's own ``__init__`` run by importing a submodule is not counted (it
    is how packages work, not a dependency that module chose).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules and "." in target:
                target = target.rpartition(".")[0]  # import a.b.C (a class): module a.b
            if target in modules and target != name:
                found.append((target, node.lineno))
    return found


def import_graph() -> dict[str, list[tuple[str, int]]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_walk_sees_every_kind_of_import() -> None:
    """The walker itself: top-level, relative, in-function and from-package imports."""
    graph = import_graph()
    harness = {target for target, _ in graph["quintet.evaluation.harness"]}
    assert {
        "quintet.evaluation.protocol",
        "quintet.evaluation.registry",
        "quintet.core.locks",
    } <= harness
    # in a function (_device) and a submodule named in `from pkg import sub`
    assert "quintet.core.devices" in harness
    assert "quintet.core.metrics" in {target for target, _ in graph["quintet.apps.qa.harness"]}
    assert len(graph) > 100


def test_no_layer_imports_a_layer_above_it() -> None:
    back_edges = [
        f"{ALL[name]}:{line}: {name} imports {target}"
        for name, edges in import_graph().items()
        for target, line in edges
        if (mine := layer(name)) != (theirs := layer(target)) and theirs not in ALLOWED[mine]
    ]
    assert not back_edges, "layers are apps -> evaluation -> core:\n" + "\n".join(back_edges)


def test_no_import_cycles() -> None:
    graph = {name: sorted({t for t, _ in edges}) for name, edges in import_graph().items()}
    cycles = find_cycles(graph)
    assert not cycles, "import cycles (move the shared type into a module both import):\n" + (
        "\n".join(" -> ".join(cycle) for cycle in cycles)
    )


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": ["b"], "b": ["c"], "c": []}, []),
        ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, [["a", "b", "c"]]),
    ],
)
def test_find_cycles(graph, expected) -> None:
    assert find_cycles(graph) == expected


ALL = {name: path.relative_to(ROOT) for name, path in all_modules().items()}
