"""The demo: a simulated fleet polled by the real collector into the configured database.

``load_demo`` starts ``python -m simulator serve`` as a subprocess on free loopback ports, waits
for its ``ready`` line, polls every simulated host with ``run_poll`` (the same path as against
real Windows) and stops the simulator. The CLI's ``demo`` command calls it, and the dashboard's first-run
screen runs that command.

There is one demo fleet per database: its hosts carry the ``demo`` tag and always the same addresses
(``DEMO_ADDRESS_BASE``), so loading it again polls the same hosts again, and demo hosts that the new fleet
no longer has (a smaller ``--hosts``) are removed. Hosts without the tag are never touched.

The simulator's password goes to the subprocess through its environment, never its command line, and
that environment holds nothing else of ours (no collector credentials).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from collectors.credentials import Credential
from collectors.inventory import Target, load_inventory
from collectors.probes import Probes
from collectors.run import PollContext, Progress, RunOptions, RunSummary, run_poll
from collectors.spool import Spool
from collectors.transport import WsmanOptions
from config.settings import Settings
from models import db, maintenance

READY_TIMEOUT_S = 120.0
DEMO_TAG = "demo"
DEMO_ADDRESS_BASE = "127.77.0.0"
DEMO_USER = "demo-reader"
PASSWORD_ENV = "SIMULATOR_PASSWORD"  # noqa: S105  # the variable name, not a password


class DemoError(Exception):
    """The simulator could not be started or did not become ready; one line."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    summary: RunSummary
    database_url: str
    hosts: int
    replaced: int = 0  # hosts of an earlier demo fleet found in the database (polled again or removed)


@dataclass
class _Simulator:
    process: subprocess.Popen[str]
    dns_server: str
    inventory: Path
    ca: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def load_demo(
    settings: Settings,
    *,
    hosts: int = 200,
    seed: int = 1,
    on_progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    python: str = sys.executable,
) -> DemoResult:
    """Serve a simulated fleet of ``hosts`` hosts, poll it into ``settings.database_url``, stop it."""
    password = secrets.token_urlsafe(18)
    with tempfile.TemporaryDirectory(prefix="activation-demo-") as workdir:
        simulator = _start(Path(workdir), hosts, seed, password, python)
        try:
            targets = tuple(replace(t, tags=(*t.tags, DEMO_TAG)) for t in load_inventory(simulator.inventory).targets)
            replaced = _make_room(settings.database_url, [t.host for t in targets])
            summary = _poll(settings, simulator, targets, password, on_progress, stop)
        finally:
            simulator.stop()
    return DemoResult(summary, settings.database_url, hosts, replaced)


def _make_room(database_url: str, names: Sequence[str]) -> int:
    """Remove the earlier demo fleet's hosts the new one does not have; returns how many demo hosts there were."""
    try:
        engine = db.open_database(database_url)
    except SQLAlchemyError:
        return 0  # the run spools its results; the database is checked again when they are replayed
    try:
        with engine.begin() as conn:
            before = maintenance.count_tagged(conn, DEMO_TAG)
            maintenance.remove_tagged(conn, DEMO_TAG, keep=names)
        return before
    except SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def _start(workdir: Path, hosts: int, seed: int, password: str, python: str) -> _Simulator:
    inventory, truth, ca = workdir / "inventory.csv", workdir / "truth.json", workdir / "ca.pem"
    base = DEMO_ADDRESS_BASE  # the same names every time: one demo fleet per database
    command = [
        python, "-m", "simulator", "serve", "--hosts", str(hosts), "--seed", str(seed),
        "--inventory-out", str(inventory), "--truth-out", str(truth), "--ca-out", str(ca),
        "--username", DEMO_USER, "--address-base", base, "--port", "0", "--https-port", "0",
    ]  # fmt: skip
    env = simulator_environment(password)
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=_project_root()
        )
    except OSError as exc:
        raise DemoError(f"cannot start the simulator: {exc}") from None
    dns_server = _wait_ready(process)
    return _Simulator(process, dns_server, inventory, ca)


# What the simulator needs from our environment: finding Python and its packages, a home, the locale
# and temporary directories. Nothing else passes: above all no ACTIVATION_* credentials.
CHILD_ENV_KEEP = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT")


def simulator_environment(password: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The simulator subprocess's whole environment: ``CHILD_ENV_KEEP`` from ``environ``, and its password."""
    source = os.environ if environ is None else environ
    env = {key: source[key] for key in CHILD_ENV_KEEP if key in source}
    env["PYTHONUNBUFFERED"] = "1"
    env[PASSWORD_ENV] = password
    return env


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _wait_ready(process: subprocess.Popen[str]) -> str:
    """Read the simulator's announcements until ``ready``; returns its DNS server."""
    assert process.stdout is not None
    started = time.monotonic()
    dns_server = ""
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.strip())
        if line.startswith("dns server:"):
            dns_server = line.split(":", 1)[1].strip()
        if line.startswith("ready"):
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            return dns_server
        if time.monotonic() - started > READY_TIMEOUT_S:
            break
    process.kill()
    raise DemoError(f"the simulator did not become ready: {' / '.join(lines[-3:]) or 'no output'}")


def _drain(process: subprocess.Popen[str]) -> None:
    # Keeps the pipe from filling up while the fleet is polled.
    assert process.stdout is not None
    for _ in process.stdout:
        pass


def _poll(
    settings: Settings,
    simulator: _Simulator,
    targets: Sequence[Target],
    password: str,
    on_progress: Callable[[Progress], None] | None,
    stop: threading.Event | None,
) -> RunSummary:
    credential = Credential("default", DEMO_USER, SecretStr(password))
    ctx = PollContext(
        credentials={"default": credential},
        probes=Probes.for_settings(simulator.dns_server, connect_timeout_s=settings.connect_timeout_s),
        options=WsmanOptions(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.timeout_s,
            max_reply_bytes=settings.max_reply_bytes,
            ca_bundle=str(simulator.ca),
        ),
        host_timeout_s=min(settings.timeout_s, 10.0),
        grace_warning_days=settings.grace_warning_days,
    )
    options = replace(RunOptions(concurrency=settings.concurrency), collector="demo")
    return run_poll(
        targets,
        ctx,
        database_url=settings.database_url,
        spool=Spool.for_database(settings.spool_path, settings.database_url),
        options=options,
        on_progress=on_progress,
        stop=stop,
    )
