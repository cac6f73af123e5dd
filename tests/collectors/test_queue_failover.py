"""Three workers share a queued run and one is killed with SIGKILL in the middle of a batch: another worker polls
that batch once the dead one counts as stalled, every host is stored once, and the run completes. A batch whose
job fails for good shows as failed and its run ends."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from collectors.inventory import Target
from collectors.queue.app import batch_job, make_app
from models import batches, db
from models.batches import BatchPlan
from simulator.testing import running_fleet
from tests.collectors.helpers import mismatches, observed
from tests.collectors.queue_fleet import (
    STALL_S,
    batch_rows,
    inventory_with_sites,
    queue_env,
    rows,
    run_status,
    schedule_once,
    the_run,
    wait_for,
    workers,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kills a process group with POSIX signals")


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory):
    with running_fleet(hosts=30, seed=21, latency_ms=250, workdir=tmp_path_factory.mktemp("queue-fleet")) as fleet:
        yield fleet


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(slow_fleet, pg_url, tmp_path):
    env = queue_env(slow_fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="3", ACTIVATION_CONCURRENCY="2")
    inventory = inventory_with_sites(slow_fleet, tmp_path / "fleet.csv", lambda n: ("Taipei", "Kaohsiung")[n % 2])
    assert "enqueued: 30 hosts in 10 batches" in schedule_once(env, inventory)

    with workers(env, tmp_path, "w1", "w2", "w3") as (victim, *_others):
        victim_name = f"w1:{victim.pid}"
        wait_for(
            lambda: any(b.status == "running" and b.worker == victim_name for b in batch_rows(pg_url)),
            90, "the first worker to be polling a batch",
        )  # fmt: skip
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        # the dead worker's batches come back after STALL_S without a heartbeat, to a live worker
        wait_for(lambda: run_status(pg_url) != "running", 60 + 4 * STALL_S, "the run to end", every=1)

    run = the_run(pg_url)
    assert run["status"] == "complete"
    assert run["counted"] == run["hosts_total"] == 30  # every host counted, none twice
    batches = batch_rows(pg_url)
    assert [b.status for b in batches] == ["done"] * 10
    assert sum(b.hosts for b in batches) == 30
    retried = [b for b in batches if b.attempts > 1]
    assert retried and all(b.worker != victim_name for b in retried)  # finished by a live worker
    applied = rows(pg_url, "SELECT batch_id FROM applied_batches WHERE run_id = :run", run=run["id"])
    assert len(applied) == 10  # each batch written once
    assert {r[0] for r in rows(pg_url, "SELECT last_run_id FROM hosts")} == {run["id"]}
    assert mismatches([t for t in slow_fleet.truth if t["fault"] != "tls"], observed(pg_url)) == []


def test_a_batch_whose_job_fails_for_good_ends_its_run_as_failed(slow_fleet, pg_url, tmp_path):
    env = queue_env(slow_fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="3")
    engine = db.open_database(pg_url)
    now = datetime.now(UTC)
    try:  # a batch whose job a worker cannot run (a host reference no scheduler of this version writes)
        with engine.begin() as conn:
            run_id = batches.claim_run(
                conn, run_key="broken", slot_at=now, every_s=3600, collector="test/queue", scheduler="test",
                batches=[BatchPlan(1, "default", None, 1)], started_at=now, deadline_at=now + timedelta(hours=1),
            )  # fmt: skip
            assert run_id is not None
            job = batch_job(run_id, "broken", 1, "default", [Target(host="ws1", port=5985)])
            job = job.evolve(task_kwargs={**job.task_kwargs, "hosts": [{"host": "ws1", "transport": "credssp"}]})
            make_app(pg_url).job_manager.batch_defer_jobs([job], connection=conn.connection.driver_connection)
    finally:
        engine.dispose()
    with workers(env, tmp_path, "w1"):
        wait_for(lambda: run_status(pg_url) != "running", 60, "the run to end", every=1)
    assert run_status(pg_url) == "incomplete"
    assert [b.status for b in batch_rows(pg_url)] == ["failed"]
