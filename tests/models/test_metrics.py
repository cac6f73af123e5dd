"""The exporter's query layer (``models.metrics``) on real databases: caps keep totals right, labels are clean."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from models import queries, runs, store
from models.enums import ActivationType, FailureClass, LicenseStatus, RunStatus
from models.filters import HostFilter
from models.metrics import LABEL_WIDTH, NONE, OTHER, Limits, fleet_metrics, label_value
from models.records import HostFailure, HostIdentity, HostObservation, ProductState
from models.seed import seed_fleet

NOW = datetime.now(UTC).replace(microsecond=0)


@given(st.text(max_size=400))
def test_a_label_is_short_printable_and_never_empty(text):
    label = label_value(text)
    assert 0 < len(label) <= LABEL_WIDTH
    assert label == label.strip() and "  " not in label
    assert not set(label) & set('<>"\\`{}')
    assert all(unicodedata.category(ch)[0] != "C" for ch in label)


def test_label_examples():
    assert label_value(None) == NONE
    assert label_value(" \u202e\x00 ") == NONE
    assert label_value("Taipei 台北\tHQ") == "Taipei 台北 HQ"
    assert label_value('<img src=x onerror="alert(1)">') == "img src=x onerror=alert(1)"


def failing(name: str, code: str) -> HostObservation:
    product = ProductState("windows", ActivationType.MAK, LicenseStatus.UNLICENSED, error_code=code)
    return HostObservation(host=name, observed_at=NOW, products=(product,))


def test_caps_fold_the_rest_and_keep_the_totals(engine: Engine):
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW)
        extra = [HostIdentity(f"odd{i}", site=f"Site {i}") for i in range(12)]
        store.upsert_inventory(conn, extra, now=NOW)
        results = [failing(f"odd{i}", f"0xC00{i:05X}") for i in range(12)]
        run = runs.start_run(conn, collector="c2", shard="2/2", hosts_total=12, started_at=NOW)
        store.write_results(conn, run, results)
        runs.finish_run(conn, run, finished_at=NOW, status=RunStatus.INCOMPLETE)
    with engine.connect() as conn:
        small = Limits(sites=3, codes=4, kms_hosts=2, collectors=1)
        m = fleet_metrics(conn, now=NOW, stale_after=timedelta(hours=2), grace_warning_days=14, limits=small)
        summary = queries.fleet_summary(conn, now=NOW, stale_after=timedelta(hours=2))
        codes_present = len(queries.code_counts(conn))
    sites = {site for site, _, _ in m.hosts}
    assert len(sites - {OTHER}) == 3 and OTHER in sites
    assert m.folded["site"] == 4 + 1 + 12 - 3  # the seed's sites, its hostile one, the twelve new ones
    assert sum(m.hosts.values()) == summary.hosts
    present = {code: n for code, n in m.by_code.items() if n}
    assert len(present) == 5 and present[OTHER] == summary.failing - sum(n for c, n in present.items() if c != OTHER)
    assert m.folded["code"] == codes_present - 4
    assert sum(m.by_code.values()) == summary.failing
    # the worst KMS hosts are kept: not listening, then clients failing
    assert [k.state for k in m.kms_hosts] == ["not_listening", "clients_failing"] and m.folded["kms_host"] == 3
    assert len(m.runs) == 1 and m.folded["collector"] == 1


def test_runs_per_collector_and_shard(engine: Engine):
    with engine.begin() as conn:
        earlier = NOW - timedelta(hours=3)
        first = runs.start_run(conn, collector="c1", shard=None, hosts_total=2, started_at=earlier)
        store.write_results(conn, first, [failing("a", "0xC004F074"), failing("b", "0xC004F074")])
        runs.finish_run(conn, first, finished_at=earlier + timedelta(seconds=90), status=RunStatus.COMPLETE)
        second = runs.start_run(conn, collector="c1", shard=None, hosts_total=2, started_at=NOW)
        store.write_results(conn, second, [HostFailure("a", NOW, FailureClass.TIMEOUT, "silent")])
        runs.finish_run(conn, second, finished_at=NOW + timedelta(seconds=30), status=RunStatus.INCOMPLETE)
        runs.start_run(conn, collector="c1", shard=None, hosts_total=2, started_at=NOW + timedelta(minutes=1))
    with engine.connect() as conn:
        m = fleet_metrics(conn, now=NOW, stale_after=timedelta(hours=2), grace_warning_days=14)
        unreachable = queries.host_count(conn, HostFilter(failure_classes=(FailureClass.TIMEOUT,)))
    (run,) = m.runs
    assert (run.collector, run.shard, run.status) == ("c1", "", "incomplete")  # the newest finished one
    assert run.duration_s == 30 and run.failures["timeout"] == 1 and run.succeeded == 0
    assert run.last_complete_at == earlier + timedelta(seconds=90)
    assert m.unreachable["timeout"] == unreachable == 1
