"""Load the demo fleet by running the collector's ``demo`` command in a subprocess.

``load_demo`` runs ``python -m collectors demo --hosts N`` from the project folder, with the dashboard's
database URL in ``ACTIVATION_DB_URL`` (its environment, never its command line, since a URL may hold a
password), waits for it within a deadline and reports the outcome in one line. The collector starts and
stops the fleet simulator itself; a run past the deadline is stopped together with that simulator.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

from config.settings import ENV_PREFIX, PROJECT_ROOT, Settings

DEMO_MODULE = "collectors.demo"
DEMO_TIMEOUT_S = 900.0
STOP_GRACE_S = 15.0
MESSAGE_LIMIT = 200
CLI_ERROR_PREFIX = "error: "  # how the collector's command line starts its one-line errors


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """What loading the demo fleet did: ``ok`` with the fleet's size, or a one-line ``error``.

    ``available`` is False when the collector's demo cannot be run from here at all (it is not installed
    beside the dashboard, or the interpreter cannot be started); then nothing was attempted.
    """

    ok: bool
    hosts: int = 0
    error: str = ""
    available: bool = True


def load_demo(
    settings: Settings, *, hosts: int, timeout_s: float = DEMO_TIMEOUT_S, python: str = sys.executable
) -> DemoOutcome:
    """Fill ``settings.database_url`` with a simulated fleet of ``hosts`` hosts polled by the real collector."""
    if _find_spec(DEMO_MODULE) is None:
        return DemoOutcome(ok=False, error=f"no module named {DEMO_MODULE!r}", available=False)
    command = [python, "-m", DEMO_MODULE.partition(".")[0], "demo", "--hosts", str(hosts)]
    try:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=collector_environment(settings),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # one process group with the simulator it starts, to stop both
        )
    except OSError as exc:
        return DemoOutcome(ok=False, error=_one_line(f"cannot start {python}: {exc}"), available=False)
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(process)
        return DemoOutcome(ok=False, error=f"the demo did not finish within {timeout_s:g} s")
    except BaseException:
        _stop(process)
        raise
    if process.returncode != 0:
        return DemoOutcome(ok=False, error=_failure(stderr, process.returncode))
    return DemoOutcome(ok=True, hosts=hosts)


def collector_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The collector's environment: ours, with the database and data folders the dashboard uses.

    The dashboard's sign-in password is left out; the collector has no use for it.
    """
    env = dict(os.environ if environ is None else environ)
    env.pop(f"{ENV_PREFIX}AUTH_PASSWORD", None)
    env[f"{ENV_PREFIX}DB_URL"] = settings.database_url
    env[f"{ENV_PREFIX}DATA_DIR"] = str(settings.data_dir)
    env[f"{ENV_PREFIX}SPOOL_DIR"] = str(settings.spool_path)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _find_spec(name: str) -> ModuleSpec | None:
    """``importlib.util.find_spec`` without running a parent package's ``__init__``: only locates ``name``.

    A module this process has already loaded, or blocked with ``None`` in ``sys.modules``, counts as such.
    """
    if name in sys.modules:
        loaded = sys.modules[name]
        return None if loaded is None else loaded.__spec__
    parent_name, _, _ = name.rpartition(".")
    if not parent_name:
        return importlib.util.find_spec(name)
    parent = _find_spec(parent_name)
    if parent is None or parent.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, list(parent.submodule_search_locations))


def _failure(stderr: str, returncode: int) -> str:
    """The collector's last word on stderr, or how it ended when it said nothing."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:
        return _one_line(lines[-1].removeprefix(CLI_ERROR_PREFIX))
    if returncode < 0:
        return f"the collector was stopped by signal {-returncode}"
    return f"the collector stopped with exit code {returncode}"


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0][:MESSAGE_LIMIT] if text.strip() else ""


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop the collector and the simulator it started: an interrupt first, so it can stop the simulator."""
    if os.name != "posix":
        process.kill()
        process.communicate()
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of the group, the simulator included
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
