"""The database goes away in the middle of a queued run and comes back: a worker spools the batches it finishes
meanwhile, writes them once it can, picks up the rest of the queue, and the run completes with every host once."""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import pytest

from models import db
from simulator.testing import running_fleet
from tests.collectors.helpers import mismatches, observed
from tests.collectors.queue_fleet import (
    FlakyProxy,
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
from tests.collectors.test_outage import via

pytestmark = pytest.mark.skipif(os.name != "posix", reason="stops workers with POSIX signals")
OUTAGE_S = 8


@pytest.fixture(scope="module")
def slow_fleet(tmp_path_factory):
    with running_fleet(hosts=16, seed=22, latency_ms=250, workdir=tmp_path_factory.mktemp("queue-fleet")) as fleet:
        yield fleet


def test_a_database_outage_mid_run_is_spooled_and_replayed(slow_fleet, pg_url, tmp_path):
    db.open_database(pg_url).dispose()
    upstream = urlsplit(pg_url)
    proxy = FlakyProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432))
    env = queue_env(slow_fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="2")
    inventory = inventory_with_sites(slow_fleet, tmp_path / "fleet.csv", lambda n: None)
    assert "enqueued: 16 hosts in 8 batches" in schedule_once(env, inventory)

    with workers({**env, "ACTIVATION_DB_URL": via(pg_url, proxy.port)}, tmp_path, "w1"):
        wait_for(lambda: any(b.status == "done" for b in batch_rows(pg_url)), 90, "a first batch written")
        proxy.down()  # every connection of the worker's cut, new ones refused
        time.sleep(OUTAGE_S)
        done_during = [b.batch_no for b in batch_rows(pg_url) if b.status == "done"]
        proxy.up()
        wait_for(lambda: run_status(pg_url) != "running", 180, "the run to end", every=1)
    log = (tmp_path / "w1.log").read_text(encoding="utf-8")

    assert "spooling it" in log  # a batch finished while the database was away
    run = the_run(pg_url)
    assert run["status"] == "complete"
    assert run["counted"] == run["hosts_total"] == 16
    assert [b.status for b in batch_rows(pg_url)] == ["done"] * 8
    assert len(done_during) < 8  # the outage hit the run in its middle
    assert len(rows(pg_url, "SELECT batch_id FROM applied_batches WHERE run_id = :r", r=run["id"])) == 8
    spooled = list((tmp_path / "data" / "spool").rglob("*.json"))
    assert spooled == []  # every spooled batch was replayed
    assert mismatches([t for t in slow_fleet.truth if t["fault"] != "tls"], observed(pg_url)) == []
    assert "Traceback" not in log
