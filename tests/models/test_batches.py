"""Queued runs in the database: a slot claimed once even by schedulers racing, a run closed once by whoever sees
its last batch finish, overdue runs closed incomplete, and the queue read back for the dashboard."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from procrastinate.jobs import Job
from sqlalchemy import Engine, text

from collectors.queue.app import make_app
from models import batches
from models.batches import BatchCounts, BatchPlan, BatchStatus
from models.db import make_engine, upgrade
from models.enums import RunStatus

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PLAN = [BatchPlan(1, "taipei", "Taipei", 3), BatchPlan(2, "kaohsiung", "Kaohsiung", 2)]


def claim(conn, key: str = "slot-1", deadline: datetime = NOW + timedelta(hours=1)) -> int | None:
    return batches.claim_run(
        conn, run_key=key, slot_at=NOW, every_s=3600, collector="c/queue", scheduler="s:1", batches=PLAN,
        started_at=NOW, deadline_at=deadline,
    )  # fmt: skip


def statuses(engine: Engine) -> tuple[str, list[str]]:
    with engine.connect() as conn:
        run = conn.execute(text("SELECT status FROM poll_runs")).scalar_one()
        found = conn.execute(text("SELECT status FROM poll_batches ORDER BY batch_no")).scalars().all()
    return run, list(found)


def test_a_slot_is_claimed_once(engine):
    with engine.begin() as conn:
        run_id = claim(conn)
        assert claim(conn) is None  # the same slot again: nothing recorded
        assert batches.run_for_key(conn, "slot-1") == run_id
        assert conn.execute(text("SELECT count(*) FROM poll_runs")).scalar_one() == 1
        assert conn.execute(text("SELECT sum(hosts_total) FROM poll_runs")).scalar_one() == 5


def test_two_schedulers_racing_for_a_slot_record_one_run(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    outcome: list[int | None] = []
    try:
        with engine.connect() as first:
            transaction = first.begin()
            assert claim(first) is not None

            def second() -> None:
                with engine.begin() as conn:
                    outcome.append(claim(conn))

            racer = threading.Thread(target=second)
            racer.start()
            racer.join(1.0)
            assert racer.is_alive()  # it waits on the slot's unique key
            transaction.commit()
            racer.join(10)
        assert outcome == [None]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM poll_runs")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM poll_batches")).scalar_one() == 2
    finally:
        engine.dispose()


def test_a_run_closes_once_when_its_last_batch_finishes(engine):
    with engine.begin() as conn:
        run_id = claim(conn)
        assert run_id is not None
        batches.start_batch(conn, run_id, 1, worker="w1:1", now=NOW)
        batches.finish_batch(conn, run_id, 1, status=BatchStatus.DONE, counts=BatchCounts(2, {"timeout": 1}), now=NOW)
        assert batches.close_run_if_finished(conn, run_id, now=NOW) is None  # batch 2 waits in its queue
        batches.finish_batch(conn, run_id, 2, status=BatchStatus.DONE, counts=BatchCounts(2, set_aside=1), now=NOW)
        assert batches.close_run_if_finished(conn, run_id, now=NOW) is RunStatus.COMPLETE
        assert batches.close_run_if_finished(conn, run_id, now=NOW) is None  # someone closed it already
        assert batches.runs_awaiting_close(conn) == []
        set_aside = conn.execute(text("SELECT set_aside FROM poll_runs")).scalar_one()
    assert statuses(engine) == ("complete", ["done", "done"]) and set_aside == 1


def test_a_run_with_a_batch_cut_short_ends_incomplete(engine):
    with engine.begin() as conn:
        run_id = claim(conn)
        assert run_id is not None
        for batch_no, status in ((1, BatchStatus.DONE), (2, BatchStatus.INCOMPLETE)):
            batches.finish_batch(conn, run_id, batch_no, status=status, counts=BatchCounts(), now=NOW)
        assert batches.runs_awaiting_close(conn) == [run_id]
        assert batches.close_run_if_finished(conn, run_id, now=NOW) is RunStatus.INCOMPLETE


def test_a_run_past_its_deadline_is_closed_incomplete_with_its_waiting_batches(engine):
    with engine.begin() as conn:
        run_id = claim(conn, deadline=NOW + timedelta(minutes=5))
        assert run_id is not None
        batches.start_batch(conn, run_id, 1, worker="w1:1", now=NOW)
        assert batches.close_overdue_runs(conn, now=NOW + timedelta(minutes=4)) == []
        assert batches.close_overdue_runs(conn, now=NOW + timedelta(minutes=6)) == [run_id]
        assert batches.close_overdue_runs(conn, now=NOW + timedelta(minutes=7)) == []
    assert statuses(engine) == ("incomplete", ["running", "incomplete"])  # the running one ends by itself


def test_workers_and_runs_read_back_for_the_dashboard(engine):
    with engine.begin() as conn:
        assert not batches.has_queue_data(conn)
        run_id = claim(conn)
        assert run_id is not None
        batches.register_worker(conn, "w1:1", queues=["taipei"], concurrency=8, now=NOW)
        batches.worker_heartbeat(conn, "w1:1", now=NOW + timedelta(seconds=30), batches_done=1, hosts_polled=3)
        batches.start_batch(conn, run_id, 1, worker="w1:1", now=NOW)
        batches.finish_batch(conn, run_id, 1, status=BatchStatus.DONE, counts=BatchCounts(2, {"auth": 1}), now=NOW)
        assert batches.has_queue_data(conn)
        workers = batches.queue_workers(conn, now=NOW + timedelta(seconds=90), stall_s=300)
        runs = batches.queued_runs(conn)
        per_worker = batches.hosts_per_worker(conn)
    assert workers[["name", "queues", "heartbeat_age_s", "hosts_polled"]].values.tolist() == [
        ["w1:1", "taipei", 60.0, 3]
    ]
    row = runs.iloc[0]
    assert (row["batches"], row["done"], row["queued"], row["hosts"], row["hosts_done"]) == (2, 1, 1, 5, 3)
    assert row["progress"] == pytest.approx(0.6)
    assert per_worker[["worker", "batches", "hosts", "failed"]].values.tolist() == [["w1:1", 1, 3, 1]]


def test_queue_depth_counts_waiting_and_running_jobs_per_site(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    app = make_app(pg_url)
    try:
        with engine.begin() as conn:
            claim(conn)
            jobs = [
                Job(queue=q, lock=None, queueing_lock=None, task_name="t") for q in ("taipei", "taipei", "kaohsiung")
            ]
            jobs.append(Job(queue="activation-monitor-upkeep", lock=None, queueing_lock=None, task_name="u"))
            app.job_manager.batch_defer_jobs(jobs, connection=conn.connection.driver_connection)
            conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = 1"))
        with engine.connect() as conn:
            depth = batches.queue_depth(conn)
        assert depth.values.tolist() == [["kaohsiung", "Kaohsiung", 1, 0], ["taipei", "Taipei", 1, 1]]
    finally:
        engine.dispose()


def test_queue_depth_is_empty_without_the_queue(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert batches.queue_depth(conn).empty
    engine.dispose()


def test_old_batches_and_long_silent_workers_are_forgotten(engine):
    with engine.begin() as conn:
        run_id = claim(conn)
        assert run_id is not None
        batches.finish_batch(conn, run_id, 1, status=BatchStatus.DONE, counts=BatchCounts(3), now=NOW)
        batches.register_worker(conn, "w1:1", queues=None, concurrency=8, now=NOW)
        assert batches.forget_batches(conn, finished_before=NOW) == 0
        assert batches.forget_batches(conn, finished_before=NOW + timedelta(seconds=1)) == 1  # batch 2 never finished
        assert batches.forget_workers(conn, silent_since=NOW) == 0
        assert batches.forget_workers(conn, silent_since=NOW + timedelta(seconds=1)) == 1
        assert conn.execute(text("SELECT succeeded FROM poll_runs")).scalar_one() == 0  # the run itself stays
