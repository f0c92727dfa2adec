"""The architecture rules of DESIGN.md §6, enforced by reading the imports."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ghostpost"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
SERVICE_FORBIDDEN = (
    "flask",
    "werkzeug",
    "sqlalchemy",
    "authlib",
    "marshmallow",
    "alembic",
    "ghostpost.db",
    "ghostpost.web",
    "ghostpost.api",
    "ghostpost.adapters",
    "ghostpost.worker",
    "ghostpost.cli",
    "ghostpost.bootstrap",
)


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


@pytest.mark.parametrize("path", files("domain"), ids=lambda p: p.name)
def test_the_domain_imports_only_the_standard_library(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top in STDLIB or name.startswith("ghostpost.domain"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", files("services"), ids=lambda p: p.name)
def test_services_depend_only_inward(path: Path) -> None:
    for name in imported_modules(path):
        assert not name.startswith(SERVICE_FORBIDDEN), f"{path.name} imports {name}"


def test_only_the_db_package_imports_sqlalchemy() -> None:
    allowed = {PACKAGE / "db"}
    for path in PACKAGE.rglob("*.py"):
        if (
            any(parent in allowed for parent in path.parents) or path.name == "bootstrap.py"
        ):  # composition root
            continue
        for name in imported_modules(path):
            assert not name.startswith("sqlalchemy"), f"{path} imports {name}"


def test_every_public_domain_and_service_function_has_a_docstring() -> None:
    missing = []
    for path in files("domain") + files("services"):
        tree = ast.parse(path.read_text())
        members = [m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body]
        for node in tree.body + members:
            is_public = isinstance(
                node, ast.FunctionDef | ast.ClassDef
            ) and not node.name.startswith("_")
            if is_public and ast.get_docstring(node) is None:
                missing.append(f"{path.name}:{node.lineno} {node.name}")
    assert not missing, missing


# --- the whole import graph (DESIGN.md §6) ----------------------------------------------------

#: The surfaces: each is an edge of the system, and none borrows another's code.
SURFACES = ("api", "web", "cli", "worker")
#: What the CLI may import from other surfaces: their entry points, which it starts
#: (`ghostpost serve` builds the app, `ghostpost worker` runs the worker), never their innards.
CLI_STARTS = {"ghostpost", "ghostpost.worker"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node, at any depth (function bodies too), except under `if TYPE_CHECKING:`: those
    imports never run, so they make no cycle (annotations name a type, nothing is loaded)."""
    for child in ast.iter_child_nodes(node):
        if _is_type_checking_block(child):
            assert isinstance(child, ast.If)
            for orelse in child.orelse:
                yield orelse
                yield from _runtime_nodes(orelse)
            continue
        yield child
        yield from _runtime_nodes(child)


def _known(name: str) -> str:
    """The module of ours that `name` loads (an attribute import names its module)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> set[str]:
    """The ghostpost modules `module` imports, at module level or inside functions, absolute
    or relative; `from package import submodule` counts as the submodule."""
    path = MODULES[module]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = (
                    module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                )
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            found.update(submodules & MODULES.keys() or {base})
    return {_known(name) for name in found if name.split(".")[0] == "ghostpost"} - {module}


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> str:
    """The part of the package a module belongs to: its sub-package, or itself when top-level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ghostpost"


def edges() -> Iterator[tuple[str, str]]:
    for module, targets in sorted(GRAPH.items()):
        for target in sorted(targets):
            yield module, target


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    # The CLI imports most of what it uses inside its commands.
    assert "ghostpost.services.exports" in GRAPH["ghostpost.cli"]
    assert "ghostpost.bootstrap" in GRAPH["ghostpost.api.oauth"]  # inside a function
    assert "ghostpost.domain.model" in GRAPH["ghostpost.services.posts"]


def test_surfaces_never_import_each_other() -> None:
    crossing = []
    for module, target in edges():
        source, destination = layer(module), layer(target)
        crosses = source in SURFACES and destination in SURFACES and source != destination
        allowed = source == "cli" and target in CLI_STARTS
        if crosses and not allowed:
            crossing.append(f"{module} -> {target}")
    assert not crossing, crossing


def test_adapters_never_import_the_database() -> None:
    found = [f"{m} -> {t}" for m, t in edges() if layer(m) == "adapters" and layer(t) == "db"]
    assert not found, found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return components


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_parts_of_the_package_import_each_other_in_one_direction() -> None:
    """No cycle between sub-packages and top-level modules (db <-> adapters, services <->
    audit...): each names the imports that close it."""
    parts: dict[str, set[str]] = {}
    for module, target in edges():
        parts.setdefault(layer(module), set())
        if layer(module) != layer(target):
            parts[layer(module)].add(layer(target))
    report = []
    for component in _cycles(parts):
        report += [
            f"{m} -> {t}"
            for m, t in edges()
            if {layer(m), layer(t)} <= set(component) and layer(m) != layer(t)
        ]
    assert not report, report
