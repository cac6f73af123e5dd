"""Structural rules that keep the architecture honest: import directions and where SQL may live."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> packages it must never import
FORBIDDEN = {
    "knowledge": {"models", "collectors", "ui", "simulator", "config"},
    "models": {"collectors", "ui", "simulator"},
    "collectors": {"ui"},
    "ui": {"simulator"},
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
