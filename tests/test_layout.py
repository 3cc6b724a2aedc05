"""The layout DESIGN.md fixes, and the import rules between packages."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("layers", "ingest", "api", "dig_coordination", "flood", "waste")
DOMAIN = ("layers", "ingest", "dig_coordination", "flood", "waste")
WEB_OR_CLI = ("fastapi", "starlette", "click", "uvicorn")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_layout_exists():
    for name in (*PACKAGES, "notebooks", "tests", "bench"):
        assert (ROOT / name).is_dir(), name
    for name in ("pyproject.toml", "docker-compose.yml", "Makefile", "README.md", ".ci/run"):
        assert (ROOT / name).is_file(), name
    for package in PACKAGES:
        assert ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))


def test_console_script_and_distribution():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "geoby"
    assert project["scripts"]["geoby"] == "api.cli:main"
    assert all(">=" in dep for dep in project["dependencies"]), "pin lower bounds"


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_never_import_web_or_cli(package):
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & set(WEB_OR_CLI)
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_makefile_has_the_readme_targets():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "bench:"):
        assert f"\n{target}" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_no_sql_built_with_fstrings_from_input():
    """Values are bound and identifiers go through psycopg2.sql (STYLE habit 4)."""
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", "") == "execute"
                    and node.args
                    and isinstance(node.args[0], ast.JoinedStr)
                ):
                    pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno} executes an f-string")
