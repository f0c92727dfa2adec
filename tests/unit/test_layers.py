"""The architecture rules of DESIGN.md §6, enforced by reading the imports."""

from __future__ import annotations

import ast
import sys
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
