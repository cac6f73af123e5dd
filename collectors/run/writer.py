"""Writing a run's results: batches through ``models.store``, or to the spool while the database is away.

Two failures are told apart. The database unreachable (the connection fails, or a probe after a failed
batch does): the batch is spooled and the database is tried again with a growing pause, during the run
too; when it answers, the run's record is started late if need be and the spool is replayed. The
database reachable but refusing a batch: the batch is written host by host, and a result the database
still refuses is set aside on its own (``Spool.set_aside``: a dead-letter file with the reason) and
counted in the run; it never blocks the batch, the run or a later replay.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from collectors import diagnose
from collectors.run import kms_pass
from collectors.run.state import RunSummary
from collectors.spool import Spool, SpooledBatch
from models import db, store
from models.records import HostObservation, HostResult

log = logging.getLogger("collectors")

DB_RETRY_MIN_S = 2.0  # the first pause after the database failed; it doubles up to DB_RETRY_MAX_S
DB_RETRY_MAX_S = 60.0


class ResultWriter:
    """Writes batches through the store; while the database is away, batches go to the spool."""

    def __init__(
        self,
        database_url: str,
        spool: Spool,
        summary: RunSummary,
        monotonic: Callable[[], float],
        on_connect: Callable[[Engine], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.spool = spool
        self.summary = summary
        self.monotonic = monotonic
        self.on_connect = on_connect  # called once the database answers (at the start, or later in the run)
        self.engine: Engine | None = None
        self.down_since: float | None = None
        self.pause_s = DB_RETRY_MIN_S
        self.replayed_clients: list[diagnose.KmsClient] = []
        self.spooled_here: set[str] = set()  # batches of this run spooled before it had a run id

    # --- the database ---------------------------------------------------------------------------------

    def connect(self) -> Engine | None:
        """The engine, opening the database when there is none and the pause since the last try is over."""
        if self.engine is None and self._may_try():
            try:
                self.engine = db.open_database(self.database_url)
            except SQLAlchemyError as exc:
                self.record_outage(exc)
                return None
            self.down_since, self.pause_s = None, DB_RETRY_MIN_S
            if self.on_connect is not None:
                self.on_connect(self.engine)
        return self.engine

    def database_usable(self) -> bool:
        """Whether to try the database: it is up, or was down long enough ago to try again."""
        return self.connect() is not None and self._may_try()

    def _may_try(self) -> bool:
        return self.down_since is None or self.monotonic() - self.down_since >= self.pause_s

    def record_outage(self, exc: SQLAlchemyError) -> None:
        """The database failed: results go to the spool, and it is tried again after a growing pause."""
        reason = db_reason(exc)
        if self.down_since is None:
            log.warning("database unavailable, spooling results to %s: %s", self.spool.directory, reason)
        else:
            self.pause_s = min(self.pause_s * 2, DB_RETRY_MAX_S)
        self.summary.database_error = reason
        self.down_since = self.monotonic()

    def reachable(self) -> bool:
        """Whether the database answers a trivial query now (after a batch it refused)."""
        if self.engine is None:
            return False
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def dispose(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    # --- writing --------------------------------------------------------------------------------------

    def write(self, results: Sequence[HostResult]) -> None:
        if not results:
            return
        usable = self.database_usable()  # may connect, and so record the run: the batch takes its id after
        batch = SpooledBatch(uuid.uuid4().hex, self.summary.run_id, tuple(results))
        if usable and self._deliver(batch):
            self.summary.batches_written += 1
            return
        self.spool.write(batch)  # SpoolError ends the run: nowhere left to keep results
        self.summary.batches_spooled += 1
        if batch.run_id is None:
            self.spooled_here.add(batch.batch_id)

    def _deliver(self, batch: SpooledBatch) -> bool:
        """Write ``batch``, setting aside what the database refuses; False when the database went away."""
        try:
            self._write_db(batch)
            return True
        except SQLAlchemyError as exc:
            if not self.reachable():
                self.record_outage(exc)
                return False
            log.warning("the database refused a batch (%s); writing its hosts one by one", db_reason(exc))
        for index, result in enumerate(batch.results):
            one = SpooledBatch(f"{batch.batch_id}-{index}", batch.run_id, (result,))
            try:
                self._write_db(one)
            except SQLAlchemyError as exc:
                if not self.reachable():
                    self.record_outage(exc)
                    rest = batch.results[index:]
                    self.spool.write(SpooledBatch(f"{batch.batch_id}-rest", batch.run_id, rest))
                    self.summary.batches_spooled += 1
                    return True  # what is left is kept; the batch itself is dealt with
                self._set_aside(result, db_reason(exc))
        return True

    def _write_db(self, batch: SpooledBatch) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            store.write_results(conn, batch.run_id, batch.results, batch_id=batch.batch_id)
        self.down_since, self.pause_s = None, DB_RETRY_MIN_S

    def _set_aside(self, result: HostResult, reason: str) -> None:
        path = self.spool.set_aside(result, reason)
        self.summary.set_aside(result.host, reason)
        log.error("%s: the database refuses this host's result (%s); set aside in %s", result.host, reason, path)

    def replay(self) -> int:
        """Write spooled batches back, oldest first; stops when the database goes away."""
        replayed = 0
        if not self.database_usable():
            return 0
        for batch in self.spool.pending():
            if batch.run_id is None and batch.batch_id in self.spooled_here and self.summary.run_id is not None:
                batch = replace(batch, run_id=self.summary.run_id)  # this run's own, spooled before it was recorded
            if not self._deliver(batch):
                break
            Spool.remove(batch)
            replayed += 1
            # Their kms_count verdicts were never judged: the database was away at the end of their run.
            observations = (r for r in batch.results if isinstance(r, HostObservation))
            self.replayed_clients.extend(c for c in map(kms_pass.observed_client, observations) if c is not None)
        self.summary.replayed_batches += replayed
        if replayed:
            log.info("replayed %d spooled batch(es)", replayed)
        return replayed


def db_reason(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    return text.split(" [SQL:")[0][:200]
