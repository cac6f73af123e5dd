"""The dashboard and the collector CLI run on Windows: nothing on their import path needs a POSIX-only module.

The check runs in a fresh interpreter in which those modules cannot be imported, as on Windows. It imports every
module of the packages that ship, the modules that the dashboard and its pages import (Streamlit runs those files
as scripts, so importing them would run the pages) and, through an Alembic upgrade of a new SQLite file, the
migration scripts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSIX_ONLY = ("fcntl", "termios", "pwd", "grp", "resource", "tty", "pty")
NOT_SHIPPED = {"tests", "bench"}  # the benchmarks measure the collector on Linux only

CHILD = r"""
import ast
import importlib
import importlib.abc
import sys
from pathlib import Path

root, database, blocked = Path(sys.argv[1]), sys.argv[2], set(sys.argv[3].split(","))
packages, scripts = sys.argv[4].split(","), [root / name for name in sys.argv[5].split(",")]


def importer():
    frame = sys._getframe(2)
    while frame is not None:
        file = Path(frame.f_code.co_filename)
        if file.is_relative_to(root):
            return f"{file.relative_to(root).as_posix()}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


class NotOnWindows(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} (missing on Windows) imported at {importer()}", name=name)
        return None


sys.meta_path.insert(0, NotOnWindows())
for name in [name for name in sys.modules if name.partition(".")[0] in blocked]:
    del sys.modules[name]
sys.path.insert(0, str(root))


def modules_of(package):
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        folders = [root.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if path.name == "__main__.py" or not all((folder / "__init__.py").exists() for folder in folders):
            continue
        if path.parent == root / "ui" / "pages" and path.name != "__init__.py":
            continue  # a page script; its imports are checked below
        yield ".".join(parts[:-1] if path.name == "__init__.py" else parts)


def imports_of(script):
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


wanted = [name for package in packages for name in modules_of(package)]
wanted += [name for script in scripts for name in imports_of(script)]
failures = []
for name in dict.fromkeys(wanted):
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures.append(f"import {name}: {type(exc).__name__}: {exc}")
try:
    from models.db import open_database

    open_database(f"sqlite:///{database}").dispose()
except BaseException as exc:
    failures.append(f"Alembic upgrade of a new SQLite database: {type(exc).__name__}: {exc}")
print("\n".join(failures))
sys.exit(1 if failures else 0)
"""


def shipped_packages() -> list[str]:
    return sorted(path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in NOT_SHIPPED)


def page_scripts() -> list[str]:
    pages = sorted(path for path in (ROOT / "ui" / "pages").glob("*.py") if path.name != "__init__.py")
    return [path.relative_to(ROOT).as_posix() for path in [ROOT / "dashboard.py", *pages]]


def test_the_dashboard_and_the_cli_import_without_posix_only_modules(tmp_path: Path) -> None:
    assert {"collectors", "config", "knowledge", "models", "ui"} <= set(shipped_packages())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(ROOT),
            str(tmp_path / "am.db"),
            ",".join(POSIX_ONLY),
            ",".join(shipped_packages()),
            ",".join(page_scripts()),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"not importable on Windows:\n{done.stdout or done.stderr[-3000:]}"
