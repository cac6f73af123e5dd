"""Runs left 'running' by a collector that was killed are closed as incomplete by the next run."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from pydantic import SecretStr

from collectors.credentials import Credential
from collectors.inventory import Target
from collectors.probes import Probes
from collectors.run import PollContext, RunOptions, run_poll
from collectors.spool import Spool
from models import db, runs
from tests.collectors.slapd import free_port

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def context() -> PollContext:
    credential = Credential("default", "user", SecretStr("pw"))
    return PollContext(credentials={"default": credential}, probes=Probes.for_settings(None), host_timeout_s=2.0)


def run_statuses(url: str) -> dict[int, str]:
    engine = db.open_database(url)
    try:
        with engine.connect() as conn:
            return runs.poll_runs(conn).set_index("id")["status"].to_dict()
    finally:
        engine.dispose()


def test_next_run_marks_a_killed_collectors_run_incomplete(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    still_running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        engine = db.open_database(url)
        with engine.begin() as conn:
            start = {"shard": None, "hosts_total": 5, "started_at": T0}
            killed = runs.start_run(conn, collector="box1", pid=dead_pid(), **start)
            live = runs.start_run(conn, collector="box1", pid=still_running.pid, **start)
            elsewhere = runs.start_run(conn, collector="box2", pid=dead_pid(), **start)
        engine.dispose()
        targets = (Target("127.0.0.1", free_port()),)  # nobody listens there: a quick 'refused'
        summary = run_poll(
            targets, context(), database_url=url, spool=Spool(tmp_path / "spool"), options=RunOptions(collector="box1")
        )
    finally:
        still_running.kill()
        still_running.wait(timeout=10)
    statuses = run_statuses(url)
    assert statuses[killed] == "incomplete"
    assert statuses[live] == "running"  # its collector is still at work
    assert statuses[elsewhere] == "running"  # another machine's collector: its pids mean nothing here
    assert statuses[summary.run_id] == "complete"


def test_a_run_started_while_the_dead_are_being_looked_for_is_never_marked(tmp_path):
    """Another collector process of the same name starts its run between the look and the update."""
    from collectors.run import close_abandoned_runs

    url = f"sqlite:///{tmp_path / 'race.db'}"
    engine = db.open_database(url)
    started: list[int] = []
    with engine.begin() as conn:
        gone = runs.start_run(conn, collector="box1", pid=dead_pid(), shard=None, hosts_total=1, started_at=T0)

        def alive_while_another_run_starts(pid: int) -> bool:
            started.append(runs.start_run(conn, collector="box1", pid=None, shard=None, hosts_total=1, started_at=T0))
            return False

        assert close_abandoned_runs(conn, "box1", T0, alive_while_another_run_starts) == 1
    engine.dispose()
    statuses = run_statuses(url)
    assert statuses[gone] == "incomplete"
    assert [statuses[s] for s in started] == ["running"]
