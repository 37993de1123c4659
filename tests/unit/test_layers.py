"""The flow reads in one direction: contract -> (producers | source -> shape | sinks) -> job ->
entry points. Built from the code's own imports (with `ast`), including imports inside
functions, so a cycle or an upward import fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT

PACKAGES = ("contract", "conf", "producers", "streaming", "sinks")
# What each layer may import from the project, besides itself. A module's layer is the first
# entry whose name is a prefix of the module's dotted name.
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "conf": {"contract"},
    "producers": {"contract", "conf"},
    "sinks": {"contract", "conf"},
    "streaming.__main__": {"contract", "conf", "streaming", "sinks"},
    "streaming.main": {"streaming"},
    "streaming.job": {"contract", "conf", "streaming"},
    "streaming": {"contract", "conf"},
}


def layer_of(module: str) -> str:
    return next(name for name in ALLOWED if module == name or module.startswith(name + "."))


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere in the file."""
    got: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        got.update(n for n in names if n in modules)
    return got


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(p, set(modules)) - {m} for m, p in modules.items()}


def test_every_import_goes_down_the_layers(graph: dict[str, set[str]]) -> None:
    upward = []
    for module, deps in graph.items():
        mine = layer_of(module)
        for dep in deps:
            if layer_of(dep) != mine and dep.split(".")[0] not in ALLOWED[mine]:
                upward.append(f"{module} -> {dep}")
    assert upward == []


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # keep package __init__ edges out: importing a.b also runs a/__init__, which imports nothing
    done: set[str] = set()
    stack: list[str] = []

    def visit(m: str) -> None:
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(m) :], m]))
        if m in done:
            return
        stack.append(m)
        for dep in graph.get(m, ()):
            visit(dep)
        stack.pop()
        done.add(m)

    for module in graph:
        visit(module)


def test_the_checks_can_fail() -> None:
    """Each check fails on a graph that breaks its rule (a test that cannot fail proves nothing)."""
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles({"streaming.a": {"streaming.b"}, "streaming.b": {"streaming.a"}})
    with pytest.raises(AssertionError, match="sinks.x -> streaming.job"):
        test_every_import_goes_down_the_layers({"sinks.x": {"streaming.job"}})
    with pytest.raises(AssertionError, match="streaming.step -> streaming.job"):
        test_every_import_goes_down_the_layers({"streaming.step": {"streaming.job"}})
