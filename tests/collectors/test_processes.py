"""Polling with worker processes stores the same results as polling with threads, written once."""

from __future__ import annotations

import threading

from sqlalchemy import text

from collectors.connection import COUNTER
from collectors.run import RunOptions, run_poll
from collectors.spool import Spool
from models import db
from models.enums import RunStatus
from tests.collectors.helpers import fleet_context, mismatches, observed, poll, targets_of


def test_two_worker_processes_match_ground_truth(http_fleet, sqlite_url, tmp_path):
    requests_before = COUNTER.requests
    summary = poll(http_fleet, sqlite_url, tmp_path / "spool", processes=2, concurrency=8)
    assert summary.status is RunStatus.COMPLETE
    assert summary.succeeded + summary.failed == len(http_fleet.truth)
    truth = [t for t in http_fleet.truth if t["fault"] != "tls"]
    assert mismatches(truth, observed(sqlite_url)) == []
    # the children's exchanges are counted in this process too (benchmarks read them)
    assert COUNTER.requests - requests_before >= 6 * summary.succeeded
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT status, succeeded FROM poll_runs")).all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("complete", summary.succeeded)]


def test_stopping_a_run_with_worker_processes_keeps_what_was_collected(http_fleet, sqlite_url, tmp_path):
    stop = threading.Event()

    def progress(p):
        if p.done >= 5:
            stop.set()

    summary = run_poll(
        targets_of(http_fleet),
        fleet_context(http_fleet),
        database_url=sqlite_url,
        spool=Spool(tmp_path / "spool"),
        options=RunOptions(concurrency=2, processes=2),
        on_progress=progress,
        stop=stop,
    )
    assert summary.status is RunStatus.INCOMPLETE and summary.stopped_by == "stop"
    assert 5 <= summary.succeeded + summary.failed < len(http_fleet.truth)
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*) FROM hosts WHERE last_attempt_at IS NOT NULL")).scalar_one()
    engine.dispose()
    assert stored == summary.succeeded + summary.failed
