"""Stopping a collector as systemd, a container or a person at a terminal does: SIGTERM, Ctrl-C, Ctrl-C twice.

Each leaves the run recorded as ``incomplete`` with its end time and what it read, prints the summary,
exits 1, and shows no traceback; the status printed is the status stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from models import db
from simulator.testing import running_fleet
from tests.collectors.test_cli import ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals to a process group")


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slow-fleet")
    with running_fleet(hosts=60, seed=9, latency_ms=250, workdir=workdir) as fleet:
        yield fleet


def start(fleet, tmp_path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    url = f"sqlite:///{tmp_path / 'am.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env.update({
        "ACTIVATION_CRED_DEFAULT_USERNAME": fleet.username, "ACTIVATION_CRED_DEFAULT_PASSWORD": fleet.password,
        "ACTIVATION_DNS_SERVER": fleet.dns_server, "ACTIVATION_DATA_DIR": str(tmp_path / "data"),
        "ACTIVATION_CONCURRENCY": "4", "ACTIVATION_TIMEOUT_S": "20", "ACTIVATION_SECRETS_FILE": str(tmp_path / "x"),
    })  # fmt: skip
    command = [sys.executable, "-m", "collectors", "poll", "--inventory", str(fleet.inventory_path), "--db", url,
               *extra]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    return process, url


def stored_runs(url: str) -> list[tuple[str, object, int]]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, finished_at, succeeded FROM poll_runs ORDER BY id")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def wait_until_some_hosts_are_stored(url: str, limit_s: float = 90.0) -> None:
    """Until the run has written its first results (however busy the machine), then a moment more."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        engine = db.make_engine(url)
        try:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM hosts WHERE last_success_at IS NOT NULL")).scalar():
                    return
        except SQLAlchemyError:
            pass  # the database or its tables are not there yet
        finally:
            engine.dispose()
        time.sleep(0.3)
    raise AssertionError(f"no host was stored within {limit_s:g}s")


@pytest.mark.parametrize(
    ("signals", "extra"),
    [([signal.SIGTERM], ()), ([signal.SIGINT], ()), ([signal.SIGINT, signal.SIGINT], ()),
     ([signal.SIGTERM], ("--processes", "2"))],
    ids=["sigterm", "ctrl-c", "ctrl-c-twice", "sigterm-to-workers-too"],
)  # fmt: skip
def test_a_stopped_run_is_recorded_incomplete_with_its_summary(slow_fleet, tmp_path, signals, extra):
    process, url = start(slow_fleet, tmp_path, *extra)
    wait_until_some_hosts_are_stored(url)  # in the middle of the run
    for signum in signals:
        os.killpg(process.pid, signum)  # the whole group, as systemd and a terminal do
        time.sleep(0.3)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err[-2000:]
    assert "Traceback" not in err and "Traceback" not in out
    assert ": incomplete" in out  # the summary table's title: "Poll run N: incomplete"
    [(status, finished_at, succeeded)] = stored_runs(url)
    assert status == "incomplete" and finished_at is not None and 0 < succeeded < 60
