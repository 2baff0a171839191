"""Keep the layers honest: the domain never imports the web framework, and only the store
imports the database toolkit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = sorted((ROOT / "mdm").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_domain_is_there() -> None:
    assert len(DOMAIN) > 20


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_never_imports_the_web_framework(path: Path) -> None:
    forbidden = {"fastapi", "starlette", "api"}
    if path.name != "cli.py":  # `mdm serve` runs the server; nothing else may
        forbidden.add("uvicorn")
    assert not imported_modules(path) & forbidden


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_store_imports_sqlalchemy_and_alembic(path: Path) -> None:
    relative = path.relative_to(ROOT / "mdm")
    if relative.parts[0] == "store":
        return
    assert not imported_modules(path) & {"sqlalchemy", "alembic", "psycopg"}


@pytest.mark.parametrize(
    "path", sorted((ROOT / "mdm" / "flow").rglob("*.py")), ids=lambda p: p.name
)
def test_flow_stages_do_no_io(path: Path) -> None:
    assert not imported_modules(path) & {"mdm.store", "mdm.services", "socket", "requests"}
    source = path.read_text()
    assert "from mdm.store" not in source and "from mdm.services" not in source
