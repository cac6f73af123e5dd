"""A result the database refuses is set aside on its own: the rest of its batch, the run and later runs are
recorded as usual, and the run says how many it set aside (on SQLite and PostgreSQL).

The database here refuses one host's row through a trigger, as a DBA's policy or a constraint the
collector knows nothing of would: a refusal no cleaning on our side can foresee.
"""

from __future__ import annotations

import json

from sqlalchemy import text

from collectors.run import RunOptions, run_poll
from collectors.spool import Spool
from models import db
from models.enums import RunStatus
from tests.collectors.helpers import fleet_context, mismatches, observed, targets_of

REFUSED_SQLITE = """CREATE TRIGGER refuse_one BEFORE UPDATE OF computer_name ON hosts
WHEN NEW.computer_name = '{name}' BEGIN SELECT RAISE(ABORT, 'refused by site policy'); END"""
REFUSED_PG = [
    """CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused by site policy'; END
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER refuse_one BEFORE UPDATE ON hosts FOR EACH ROW WHEN (NEW.computer_name = '{name}')
    EXECUTE FUNCTION refuse_one()""",
]


def refuse(url: str, computer_name: str) -> None:
    engine = db.open_database(url)
    with engine.begin() as conn:
        statements = REFUSED_PG if conn.dialect.name == "postgresql" else [REFUSED_SQLITE]
        for statement in statements:
            conn.execute(text(statement.format(name=computer_name)))
    engine.dispose()


def test_one_refused_row_is_set_aside_and_everything_else_recorded(http_fleet, db_url, tmp_path):
    readable = [t for t in http_fleet.truth if not t["poll_error"] and t["fault"] != "tls"]
    victim = next(t for t in readable if t["computer_name"] and "'" not in t["computer_name"])
    refuse(db_url, victim["computer_name"])
    spool = Spool(tmp_path / "spool")
    for _ in range(2):  # and the next run is not held up by it either
        summary = run_poll(
            targets_of(http_fleet), fleet_context(http_fleet), database_url=db_url, spool=spool,
            options=RunOptions(concurrency=8, batch_size=10, flush_interval_s=0.2),
        )  # fmt: skip
        assert summary.status is RunStatus.COMPLETE and summary.run_id is not None
        assert summary.set_aside_count == 1 and list(summary.set_aside_hosts) == [victim["host"]]
        assert "refused by site policy" in summary.set_aside_hosts[victim["host"]]
        assert spool.count() == 0 and summary.batches_spooled == 0
    others = [t for t in http_fleet.truth if t["fault"] != "tls" and t["host"] != victim["host"]]
    assert mismatches(others, observed(db_url)) == []
    kept = sorted(spool.dead_directory.glob("*.json"))
    assert len(kept) == 2
    letter = json.loads(kept[0].read_text(encoding="utf-8"))
    assert letter["result"]["host"] == victim["host"] and "refused by site policy" in letter["reason"]
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        counts = conn.execute(text("SELECT set_aside, status FROM poll_runs ORDER BY id")).all()
    engine.dispose()
    assert [tuple(c) for c in counts] == [(1, "complete"), (1, "complete")]
