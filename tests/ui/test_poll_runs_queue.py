"""The Poll runs page shows the job queue once runs go through it: workers with their heartbeat, jobs waiting
per site, and the batches of recent queued runs; without queued runs it shows none of that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procrastinate.jobs import Job

from collectors.queue.app import make_app
from models import batches, store
from models.batches import BatchCounts, BatchPlan, BatchStatus
from models.db import open_database
from models.records import HostIdentity
from tests.ui.dashboard_app import frame, open_page

PLAN = [
    BatchPlan(1, "taipei", "Taipei", 3),
    BatchPlan(2, "kaohsiung", "Kaohsiung", 2),
    BatchPlan(3, "kaohsiung", "Kaohsiung", 1),
]


def queued_run(url: str) -> None:
    """A run of three batches: one done by w1, one being polled by w2, one waiting; w3 stopped long ago."""
    now = datetime.now(UTC)
    engine = open_database(url)
    with engine.begin() as conn:
        run_id = batches.claim_run(
            conn, run_key="every-3600s-from-now", slot_at=now, every_s=3600, collector="am/queue", scheduler="s:1",
            batches=PLAN, started_at=now - timedelta(minutes=2), deadline_at=now + timedelta(hours=1),
        )  # fmt: skip
        assert run_id is not None
        hosts = [HostIdentity(f"10.0.0.{i}", 5985, "http", "Taipei" if i <= 3 else "Kaohsiung") for i in range(1, 7)]
        store.upsert_inventory(conn, hosts, now=now)
        for name, started in (("w1:11", now), ("w2:12", now), ("w3:13", now - timedelta(days=1))):
            batches.register_worker(conn, name, queues=None, concurrency=64, now=started)
        batches.worker_stopped(conn, "w3:13", now=now - timedelta(days=1))
        batches.start_batch(conn, run_id, 1, worker="w1:11", now=now)
        batches.finish_batch(conn, run_id, 1, status=BatchStatus.DONE, counts=BatchCounts(2, {"timeout": 1}), now=now)
        batches.start_batch(conn, run_id, 2, worker="w2:12", now=now)
        jobs = [Job(queue=p.queue, lock=None, queueing_lock=None, task_name="t") for p in PLAN[1:]]
        make_app(url).job_manager.batch_defer_jobs(jobs, connection=conn.connection.driver_connection)
        conn.exec_driver_sql("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = 1")
    engine.dispose()


def test_the_queue_shows_workers_depth_and_batches(pg_url, monkeypatch):
    queued_run(pg_url)
    monkeypatch.setenv("ACTIVATION_DB_URL", pg_url)
    at = open_page("ui/pages/poll_runs.py")
    assert not at.exception
    assert "Job queue" in [h.value for h in at.subheader]
    workers = frame(at, "heartbeat_age_s")
    assert dict(zip(workers["name"], workers["state"], strict=True)) == {
        "w1:11": "alive",
        "w2:12": "alive",
        "w3:13": "stopped",
    }
    depth = frame(at, "todo")
    assert depth.values.tolist() == [["kaohsiung", "Kaohsiung", 1, 1]]  # batch 2 being polled, batch 3 waiting
    runs = frame(at, "progress").iloc[0]
    assert (runs["batches"], runs["done"], runs["running"], runs["queued"], runs["hosts_done"]) == (3, 1, 1, 1, 3)
    per_worker = frame(at, "worker")
    assert per_worker[["worker", "batches", "hosts", "failed"]].values.tolist() == [["w1:11", 1, 3, 1]]


def test_the_queue_reads_in_chinese(pg_url, monkeypatch):
    queued_run(pg_url)
    monkeypatch.setenv("ACTIVATION_DB_URL", pg_url)
    at = open_page("ui/pages/poll_runs.py", lang="zh-TW")
    assert "工作佇列" in [h.value for h in at.subheader]
    assert set(frame(at, "heartbeat_age_s")["state"]) == {"運作中", "已停止"}


def test_without_queued_runs_the_page_shows_no_queue(seeded_db_url):
    at = open_page("ui/pages/poll_runs.py")
    assert not at.exception
    assert "Job queue" not in [h.value for h in at.subheader]
    assert all("heartbeat_age_s" not in df.value.columns for df in at.dataframe)
