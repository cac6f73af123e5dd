"""A database outage mid-run loses nothing: results are spooled, replayed once, never counted twice."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import text

from collectors.run import RunOptions, run_poll
from collectors.spool import Spool
from models import db
from tests.collectors.helpers import fleet_context, mismatches, observed, pipe, targets_of


class CuttableProxy:
    """A TCP forwarder to PostgreSQL on 127.0.0.1 that can be cut, like a network outage."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.cut_event = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_event.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_event.is_set():
                client.close()
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    def cut(self) -> None:
        self.cut_event.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def run_counts(url: str) -> list[tuple[int, int, int]]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, succeeded, hosts_total FROM poll_runs ORDER BY id")).all()
        failed = conn.execute(text("SELECT * FROM poll_runs ORDER BY id")).mappings().all()
    engine.dispose()
    return [
        (r[0], r[1] + sum(v for k, v in f.items() if k.startswith("failed_") and v), r[2])
        for r, f in zip(rows, failed, strict=True)
    ]


def test_postgres_outage_mid_run_loses_nothing(http_fleet, pg_url, tmp_path):
    direct = pg_url
    db.open_database(direct).dispose()
    upstream = urlsplit(direct)
    proxy = CuttableProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432))
    targets = targets_of(http_fleet)
    spool = Spool(tmp_path / "spool")

    def progress(p):
        if p.done == 20:
            proxy.cut()

    first = run_poll(
        targets, fleet_context(http_fleet), database_url=via(direct, proxy.port), spool=spool,
        options=RunOptions(concurrency=8, batch_size=5, flush_interval_s=0.2), on_progress=progress,
    )  # fmt: skip
    assert first.batches_spooled > 0 and first.database_error
    assert first.succeeded + first.failed == len(targets)
    kept = tmp_path / "kept"
    shutil.copytree(spool.directory, kept)

    second = run_poll((), fleet_context(http_fleet), database_url=direct, spool=spool)
    assert second.replayed_batches == first.batches_spooled
    assert spool.count() == 0
    assert mismatches([t for t in http_fleet.truth if t["fault"] != "tls"], observed(direct)) == []
    counted = run_counts(direct)[0]

    # Replaying the same batches again (e.g. a copy restored by mistake) counts nothing twice.
    shutil.rmtree(spool.directory)
    shutil.copytree(kept, spool.directory)
    third = run_poll((), fleet_context(http_fleet), database_url=direct, spool=spool)
    assert third.replayed_batches == first.batches_spooled
    assert run_counts(direct)[0] == counted
    assert counted[1] == len(targets)
