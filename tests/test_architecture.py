"""The import direction of docs/design.md, read from the source: imports only point down the
layers, and no module imports itself back through others.

Every ``import`` and ``from ... import`` of ``vae_gjs`` counts, at module level or inside a
function (the lazy imports that keep ``--help`` fast are edges like any other). An edge goes to
the module named: ``from vae_gjs.data import MNIST`` to the package ``vae_gjs.data``,
``from vae_gjs import cli`` to the module ``vae_gjs.cli``. Importing a submodule also runs its
package's ``__init__``; that implicit step is not counted (packages import their own modules).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vae_gjs"

#: Components (``vae_gjs.<component>``), top to bottom; a component imports only components of
#: lower layers (and its own modules). ``vae_gjs`` itself is the public face above them all.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("",),
    ("cli", "fused"),
    ("tasks",),
    ("lifecycle", "callbacks"),  # the training-time pictures reuse evaluation's image grids
    ("evaluation", "reports", "toy"),
    ("module",),
    ("divergences", "models", "data", "loggers", "checkpoints", "plotting"),
    ("resume",),
    ("config",),
    ("rundir", "datadir", "runlock", "hardware"),
    ("io", "console", "provenance"),
    ("errors", "signals"),
)
LAYER = {component: depth for depth, names in enumerate(LAYERS) for component in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> Iterator[tuple[str, int]]:
    """The ``vae_gjs`` modules that module ``name`` imports, with the line of each import."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vae_gjs":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "vae_gjs":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in MODULES else base), node.lineno


def component(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = {name: sorted({target for target, _ in imports(name)} - {name}) for name in MODULES}


def test_every_component_has_a_layer() -> None:
    assert {component(name) for name in MODULES} == set(LAYER)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {target}"
        for name in MODULES
        for target, line in imports(name)
        if component(target) != component(name) and LAYER[component(target)] <= LAYER[component(name)]
    ]
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One cycle of ``graph`` (as its modules, first = last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in graph.get(node, []):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles_and_relative_imports_resolve() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None
    # the lazy import inside cli.train is an edge; the package's own modules resolve as modules
    assert (
        "vae_gjs.tasks.train" in GRAPH["vae_gjs.cli"] and "vae_gjs.config.validation" in GRAPH["vae_gjs.cli"]
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_dispatch_by_string(name: str) -> None:
    """Imports a reader and a tool can follow: no ``importlib.import_module`` / ``__import__``."""
    tree = ast.parse(MODULES[name].read_text())
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
        )
    ]
    assert not calls, f"{name}: string dispatch at lines {calls}"


def test_the_fused_path_shares_the_lifecycle_not_the_task() -> None:
    """A fused member keeps a separate run's record through :mod:`vae_gjs.lifecycle`, the home
    both training paths share: nothing in ``fused/`` imports ``tasks/`` (its internals least of
    all), and both paths import the lifecycle."""
    fused = {name: GRAPH[name] for name in MODULES if component(name) == "fused"}
    into_tasks = [
        f"{name} imports {t}" for name, targets in fused.items() for t in targets if component(t) == "tasks"
    ]
    assert not into_tasks, "\n".join(into_tasks)
    assert "vae_gjs.lifecycle" in GRAPH["vae_gjs.tasks.train"]
    assert any("vae_gjs.lifecycle" in targets for targets in fused.values())
