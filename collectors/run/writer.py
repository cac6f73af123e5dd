"""Writing a run's results: batches through ``models.store``, or to the spool while the database is away.

The spool is replayed, oldest batch first, at the start and at the end of each run; a replayed batch's
KMS clients are judged by that run's KMS post-pass, since their own run never could.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collectors import diagnose
from collectors.run import kms_pass
from collectors.run.state import RunSummary
from collectors.spool import Spool, SpooledBatch
from models import store
from models.records import HostObservation, HostResult

log = logging.getLogger("collectors")

DB_RETRY_S = 10.0


class ResultWriter:
    """Writes batches through the store; while the database is away, batches go to the spool."""

    def __init__(
        self, engine: Engine | None, spool: Spool, summary: RunSummary, monotonic: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.spool = spool
        self.summary = summary
        self.monotonic = monotonic
        self.down_since: float | None = None if engine is not None else monotonic()
        self.replayed_clients: list[diagnose.KmsClient] = []

    def write(self, results: Sequence[HostResult]) -> None:
        if not results:
            return
        batch = SpooledBatch(uuid.uuid4().hex, self.summary.run_id, tuple(results))
        if self.database_usable():
            try:
                self._write_db(batch)
                self.summary.batches_written += 1
                return
            except SQLAlchemyError as exc:
                self.record_outage(exc)
        self.spool.write(batch)  # SpoolError ends the run: nowhere left to keep results
        self.summary.batches_spooled += 1

    def database_usable(self) -> bool:
        """Whether to try the database: it is up, or was down long enough ago to try again."""
        if self.engine is None:
            return False
        return self.down_since is None or self.monotonic() - self.down_since >= DB_RETRY_S

    def _write_db(self, batch: SpooledBatch) -> None:
        assert self.engine is not None
        with self.engine.begin() as conn:
            store.write_results(conn, batch.run_id, batch.results, batch_id=batch.batch_id)
        self.down_since = None

    def record_outage(self, exc: SQLAlchemyError) -> None:
        """The database failed: results go to the spool until ``DB_RETRY_S`` have passed."""
        reason = db_reason(exc)
        if self.down_since is None:
            log.warning("database unavailable, spooling results to %s: %s", self.spool.directory, reason)
        self.summary.database_error = reason
        self.down_since = self.monotonic()

    def replay(self) -> int:
        """Write spooled batches back, oldest first; stops at the first database error."""
        replayed = 0
        if self.engine is None:
            return 0
        for batch in self.spool.pending():
            try:
                self._write_db(batch)
            except SQLAlchemyError as exc:
                self.record_outage(exc)
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
