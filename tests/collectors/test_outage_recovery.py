"""The database may be away when a run starts, come back during it, or go away at its very end: the run is
recorded when it can be, nothing is lost, and the status the command reports is the status stored."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from sqlalchemy import text

from collectors.run import RunOptions, close_abandoned_runs, run_poll
from collectors.spool import Spool
from models import db
from models.enums import RunStatus
from tests.collectors.helpers import fleet_context, mismatches, observed, targets_of
from tests.collectors.test_outage import CuttableProxy, run_counts, via


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LateProxy(CuttableProxy):
    """Nothing listens on ``port`` until ``open`` is called: a database that comes back."""

    def __init__(self, upstream: tuple[str, int], port: int) -> None:
        self.upstream, self.wanted = upstream, port
        self.proxy: CuttableProxy | None = None

    def open(self) -> None:
        if self.proxy is None:
            listener = socket.create_server(("127.0.0.1", self.wanted))
            proxy = CuttableProxy.__new__(CuttableProxy)
            proxy.upstream, proxy.listener, proxy.port, proxy.sockets = self.upstream, listener, self.wanted, []
            import threading

            proxy.cut_event = threading.Event()
            threading.Thread(target=proxy._accept, daemon=True).start()
            self.proxy = proxy


def test_a_database_that_comes_back_mid_run_gets_the_run_and_every_result(http_fleet, pg_url, tmp_path):
    db.open_database(pg_url).dispose()
    upstream = urlsplit(pg_url)
    late = LateProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432), unused_port())
    targets = targets_of(http_fleet)

    def progress(p):
        if p.done == 10:
            late.open()

    summary = run_poll(
        targets, fleet_context(http_fleet), database_url=via(pg_url, late.wanted), spool=Spool(tmp_path / "spool"),
        options=RunOptions(concurrency=4, batch_size=3, flush_interval_s=0.2), on_progress=progress,
    )  # fmt: skip
    assert summary.database_error and summary.batches_spooled > 0  # it was away at the start
    assert summary.run_id is not None and summary.status is RunStatus.COMPLETE  # and recorded once it was back
    assert Spool(tmp_path / "spool").count() == 0
    assert mismatches([t for t in http_fleet.truth if t["fault"] != "tls"], observed(pg_url)) == []
    run_id, counted, total = run_counts(pg_url)[0]
    assert (run_id, counted, total) == (summary.run_id, len(targets), len(targets))


def test_a_run_whose_end_cannot_be_written_is_reported_as_it_will_be_stored(http_fleet, pg_url, tmp_path):
    db.open_database(pg_url).dispose()
    upstream = urlsplit(pg_url)
    proxy = CuttableProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432))
    targets = targets_of(http_fleet)

    def progress(p):
        if p.done == p.total:
            proxy.cut()

    summary = run_poll(
        targets, fleet_context(http_fleet), database_url=via(pg_url, proxy.port), spool=Spool(tmp_path / "spool"),
        options=RunOptions(concurrency=8, batch_size=5, flush_interval_s=0.2, collector="ending"),
        on_progress=progress,
    )  # fmt: skip
    assert summary.run_id is not None
    assert summary.status is RunStatus.INCOMPLETE and summary.stopped_by  # not "complete" with a row still running
    engine = db.make_engine(pg_url)
    with engine.begin() as conn:  # the next run of this collector, after this process is gone
        close_abandoned_runs(conn, "ending", summary_time(conn), is_alive=lambda pid: False)
        stored = conn.execute(text("SELECT status FROM poll_runs WHERE id = :i"), {"i": summary.run_id}).scalar_one()
    engine.dispose()
    assert stored == summary.status.value


def summary_time(conn):
    return conn.execute(text("SELECT now()")).scalar_one()
