"""Structural rules that keep the architecture honest: import directions, where SQL may live, module size,
no reaching into another module's private names, and one home for each shared fact."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> packages it must never import
FORBIDDEN = {
    "knowledge": {"models", "collectors", "ui", "simulator", "config", "alerting"},
    "models": {"collectors", "ui", "simulator", "alerting"},
    "collectors": {"ui"},
    "alerting": {"ui", "simulator", "collectors"},
    "ui": {"simulator", "collectors", "alerting"},
    "services": {"collectors", "ui", "simulator"},
    "simulator": {"collectors", "models", "ui", "knowledge"},
}


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in python_files(package)
        if imported_packages(path) & FORBIDDEN[package]
    }
    assert offenders == {}


def test_no_sql_in_the_dashboard() -> None:
    files = [ROOT / "dashboard.py", *python_files("ui")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if "sqlalchemy" in imported_packages(path) or re.search(r"\bselect\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_host_text_is_never_rendered_as_html() -> None:
    files = [ROOT / "dashboard.py", *python_files("ui")]
    offenders = [str(p.relative_to(ROOT)) for p in files if "unsafe_allow_html=True" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_caching_lives_only_in_ui_data() -> None:
    files = [ROOT / "dashboard.py", *python_files("ui")]
    offenders = [
        str(p.relative_to(ROOT))
        for p in files
        if p.name != "data.py" and ("st.cache_data" in p.read_text() or "st.cache_resource" in p.read_text())
    ]
    assert offenders == []


# The simulator is a test fixture standing in for Windows, and Alembic writes the migrations' shape.
SIZE_EXEMPT = ("simulator", "models/migrations")
MAX_MODULE_LINES = 450
PRODUCT = ("collectors", "models", "ui", "knowledge", "config", "services", "alerting")


def all_modules() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        and not str(path.relative_to(ROOT)).startswith(SIZE_EXEMPT)
    )


def test_no_module_is_too_long_to_read() -> None:
    lengths = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in all_modules()}
    assert len(lengths) > 100
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


# Standard-library functions whose documented name starts with an underscore.
STDLIB_PUBLIC = {"os._exit"}


def private_uses(path: Path) -> list[str]:
    """``from m import _x`` and ``something._x`` where something is not ``self``, ``cls`` or ``super()``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and not _own(node.value)
            and ast.unparse(node) not in STDLIB_PUBLIC
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own(value: ast.expr) -> bool:
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"


def test_no_module_reaches_into_another_modules_private_names() -> None:
    files = [ROOT / "dashboard.py", *(p for package in PRODUCT for p in python_files(package))]
    offenders = {str(p.relative_to(ROOT)): uses for p in files if (uses := private_uses(p))}
    assert offenders == {}


def test_the_rule_sees_a_private_call() -> None:
    sample = ROOT / "tests" / "data" / "private_call_sample.py.txt"
    assert sorted(private_uses(sample)) == ["4: writer._went_down", "5: from models.store import _insert"]


def test_the_host_state_words_and_the_filter_vocabulary_are_written_once() -> None:
    """Each is spelled out in one module and generated or imported everywhere else."""
    spelled = {
        "Licensed \\u2014 renewal failing": "models/hostfacts.py",
        '"--error-code"': "models/filters.py",
        '"--include-at-risk"': "models/filters.py",
        '"--stale-hours"': "models/filters.py",
        "pg_advisory_xact_lock(:key)": "models/db.py",
    }
    files = [ROOT / "dashboard.py", *(p for package in PRODUCT for p in python_files(package))]
    for text, owner in spelled.items():
        holders = [str(p.relative_to(ROOT)) for p in files if text in p.read_text(encoding="utf-8")]
        assert holders == [owner], text
