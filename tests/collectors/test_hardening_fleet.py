"""2,000 hosts, 40% of them misbehaving on the wire and 20% carrying hostile text: every host is recorded
exactly once, as the ground truth says, with nothing lost, spooled or set aside, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import text

from collectors.probes import Probes
from collectors.run import RunOptions, run_poll
from collectors.spool import Spool
from models import db
from models.enums import RunStatus
from simulator import generator
from simulator.testing import FleetHandle, running_fleet
from tests.collectors.helpers import fleet_context, mismatches, observed, targets_of

pytestmark = pytest.mark.slow
HOSTS = 2000


@pytest.fixture(scope="module")
def rough_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetHandle]:
    fleet = generator.generate(HOSTS, 21, fault_share=0.4, hostile_share=0.2)
    assert sum(1 for h in fleet.hosts if h.fault) >= 0.39 * HOSTS
    assert sum(1 for h in fleet.hosts if "hostile" in h.tags) >= 0.19 * HOSTS
    with running_fleet(scenario=fleet, workdir=tmp_path_factory.mktemp("rough")) as handle:
        yield handle


def test_every_host_of_a_rough_fleet_is_recorded_once_and_right(rough_fleet, db_url, tmp_path):
    spool = Spool(tmp_path / "spool")
    targets = targets_of(rough_fleet)
    # a deadline that a slow (latency) host meets while 2,000 hosts share two cores; silent hosts run it out
    base = fleet_context(rough_fleet)
    # and a KMS port check that the busy simulator answers in time (the product's default connect timeout, 5 s)
    probes = Probes.for_settings(rough_fleet.dns_server, connect_timeout_s=5.0)
    ctx = replace(base, host_timeout_s=15.0, probes=probes, options=replace(base.options, read_timeout_s=15.0))
    summary = run_poll(
        targets, ctx, database_url=db_url, spool=spool,
        options=RunOptions(concurrency=128, processes=1),
    )  # fmt: skip
    assert summary.status is RunStatus.COMPLETE
    assert summary.succeeded + summary.failed == HOSTS == len(targets)
    assert (summary.batches_spooled, summary.set_aside_count, spool.count()) == (0, 0, 0)
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        hosts, attempted = conn.execute(text("SELECT count(*), count(last_attempt_at) FROM hosts")).one()
        run = conn.execute(text("SELECT * FROM poll_runs")).mappings().one()
    engine.dispose()
    assert (hosts, attempted) == (HOSTS, HOSTS)  # every host once: no row lost, none left unrecorded
    counted = run["succeeded"] + sum(v for k, v in run.items() if k.startswith("failed_"))
    assert counted == HOSTS and run["set_aside"] == 0 and run["status"] == "complete"
    assert mismatches([t for t in rough_fleet.truth if t["fault"] != "tls"], observed(db_url)) == []
