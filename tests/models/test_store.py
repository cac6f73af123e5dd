"""The write side: idempotent bulk upserts, history that grows with change, nothing lost on failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from models import maintenance, runs, store
from models.db import make_engine, upgrade
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, RunStatus, Severity
from models.records import Finding, HostFailure, HostIdentity, HostObservation, KmsHostCounters, ProductState
from models.tables import Base, CurrentStatus, DailyRollup, Host, HostFinding, KmsHostStat, PollRun, StatusHistory

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def observation(
    host: str = "10.0.0.1",
    at: datetime = T0,
    status: LicenseStatus = LicenseStatus.NOTIFICATION,
    code: str | None = "0xC004F074",
) -> HostObservation:
    product = ProductState(
        product_id="guid-1",
        activation_type=ActivationType.KMS_CLIENT,
        license_status=status,
        error_code=code,
        partial_key="ABCDE12345",
        discovered_kms_machine="KMS01.corp.example",
        discovered_kms_port=1688,
    )
    return HostObservation(
        host=host,
        observed_at=at,
        computer_name="WS1",
        domain="corp.example",
        os_caption="Windows 11 Enterprise",
        product_type=ProductType.WORKSTATION,
        products=(product,),
        findings=(Finding("kms_port", Severity.FAIL, "port 1688 refused", code, {"port": 1688}),),
    )


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for before/after comparisons."""
    with engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in Base.metadata.sorted_tables
        }


def test_writing_the_same_results_twice_changes_nothing(engine: Engine) -> None:
    results = [observation(), HostFailure("10.0.0.2", T0, FailureClass.TIMEOUT, "no answer in 30 s")]
    with engine.begin() as conn:
        store.write_results(conn, None, results)
    before = dump(engine)
    with engine.begin() as conn:
        store.write_results(conn, None, results)
    assert dump(engine) == before


def test_a_replayed_batch_is_not_counted_twice(engine: Engine) -> None:
    with engine.begin() as conn:
        run = runs.start_run(conn, collector="c1", shard="1/2", hosts_total=2, started_at=T0)
        assert store.write_results(conn, run, [observation()], batch_id="batch-1")
        assert not store.write_results(conn, run, [observation()], batch_id="batch-1")
        assert store.write_results(conn, run, [HostFailure("10.0.0.2", T0, FailureClass.AUTH, "401")], batch_id="b2")
    with engine.connect() as conn:
        succeeded, auth = conn.execute(select(PollRun.succeeded, PollRun.failed_auth)).one()
    assert (succeeded, auth) == (1, 1)


def test_a_failure_keeps_the_last_known_status(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
        store.write_results(conn, None, [HostFailure("10.0.0.1", T0 + timedelta(hours=1), FailureClass.REFUSED, "x")])
    with engine.connect() as conn:
        host = conn.execute(select(Host.__table__)).one()
        assert conn.execute(select(func.count()).select_from(CurrentStatus)).scalar_one() == 1
    assert (host.license_status, host.error_code, host.last_failure_class) == ("Notification", "0xC004F074", "refused")
    assert host.last_success_at == T0


def test_a_success_clears_the_failure(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [HostFailure("10.0.0.1", T0, FailureClass.TLS, "bad certificate")])
        store.write_results(conn, None, [observation(at=T0 + timedelta(hours=1))])
    with engine.connect() as conn:
        host = conn.execute(select(Host.__table__)).one()
    assert host.last_failure_class is None and host.last_failure_reason is None


def test_an_older_observation_never_overwrites_a_newer_one(engine: Engine) -> None:
    newer = observation(at=T0 + timedelta(hours=2), status=LicenseStatus.LICENSED, code=None)
    with engine.begin() as conn:
        store.write_results(conn, None, [newer])
        store.write_results(conn, None, [observation(at=T0)])
    with engine.connect() as conn:
        host = conn.execute(select(Host.__table__)).one()
        product = conn.execute(select(CurrentStatus.__table__)).one()
        history = conn.execute(select(func.count()).select_from(StatusHistory)).scalar_one()
    assert (host.license_status, host.error_code, product.license_status) == ("Licensed", None, "Licensed")
    assert history == 1


def test_history_grows_with_change_not_with_polls(engine: Engine) -> None:
    with engine.begin() as conn:
        for hour in range(24):
            store.write_results(conn, None, [observation(at=T0 + timedelta(hours=hour))])
        fixed = observation(at=T0 + timedelta(hours=30), status=LicenseStatus.LICENSED, code=None)
        store.write_results(conn, None, [fixed])
    with engine.connect() as conn:
        rows = conn.execute(
            select(StatusHistory.license_status, StatusHistory.error_code).order_by(StatusHistory.changed_at)
        ).all()
    assert [tuple(r) for r in rows] == [("Notification", "0xC004F074"), ("Licensed", None)]


def test_partial_key_keeps_only_the_last_five_characters(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
    with engine.connect() as conn:
        assert conn.execute(select(CurrentStatus.partial_key)).scalar_one() == "12345"


def test_a_host_without_a_windows_key_counts_as_unlicensed(engine: Engine) -> None:
    bare = replace(observation(), products=())
    with engine.begin() as conn:
        store.write_results(conn, None, [bare])
    with engine.connect() as conn:
        host = conn.execute(select(Host.__table__)).one()
    assert (host.license_status, host.activation_type) == ("Unlicensed", "unknown")


def test_findings_are_replaced_by_the_next_poll(engine: Engine) -> None:
    healthy = replace(observation(at=T0 + timedelta(hours=1)), findings=())
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
        store.write_results(conn, None, [healthy])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(HostFinding)).scalar_one() == 0


def test_replace_findings_updates_only_the_checks_given(engine: Engine) -> None:
    later = T0 + timedelta(minutes=5)
    count = Finding("kms_count", Severity.FAIL, "count 12 < 25", "0xC004F038", {"count": 12, "required": 25})
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
        store.replace_findings(conn, {"10.0.0.1": [count], "not-a-host": [count]}, observed_at=later)
    with engine.connect() as conn:
        checks = conn.execute(select(HostFinding.check, HostFinding.evidence).order_by(HostFinding.check)).all()
    assert [c for c, _ in checks] == ["kms_count", "kms_port"]
    assert checks[0][1] == {"count": 12, "required": 25}


def test_kms_counters_form_a_time_series(engine: Engine) -> None:
    with engine.begin() as conn:
        for hour, count in enumerate((3, 4, 5)):
            kms = replace(observation(at=T0 + timedelta(hours=hour)), kms=KmsHostCounters(current_count=count))
            store.write_results(conn, None, [kms, kms])
    with engine.connect() as conn:
        counts = conn.execute(select(KmsHostStat.current_count).order_by(KmsHostStat.observed_at)).scalars().all()
    assert counts == [3, 4, 5]


def test_inventory_refresh_keeps_activation_state(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
        store.upsert_inventory(conn, [HostIdentity("10.0.0.1", 5986, "https", "Taipei", ("lab", "vip"))], now=T0)
    with engine.connect() as conn:
        host = conn.execute(select(Host.__table__)).one()
    assert (host.site, host.tags, host.port, host.license_status) == ("Taipei", "lab;vip", 5986, "Notification")


def test_run_lifecycle_and_abandoned_runs(engine: Engine) -> None:
    with engine.begin() as conn:
        done = runs.start_run(conn, collector="c1", shard=None, hosts_total=1, started_at=T0, pid=111)
        runs.finish_run(conn, done, finished_at=T0 + timedelta(seconds=9), status=RunStatus.COMPLETE)
        runs.start_run(conn, collector="c1", shard=None, hosts_total=1, started_at=T0, pid=222)
        runs.start_run(conn, collector="c2", shard=None, hosts_total=1, started_at=T0, pid=333)
        running = runs.running_runs(conn, collector="c1")
        assert list(running.values()) == [222]
        assert runs.mark_incomplete(conn, running, now=T0) == 1
    with engine.connect() as conn:
        statuses = conn.execute(select(PollRun.collector, PollRun.status).order_by(PollRun.id)).all()
    assert [tuple(s) for s in statuses] == [("c1", "complete"), ("c1", "incomplete"), ("c2", "running")]


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def test_a_large_batch_is_written_with_a_handful_of_statements(engine: Engine, statements: list[str]) -> None:
    results = [observation(host=f"10.0.{i // 250}.{i % 250}") for i in range(1000)]
    with engine.begin() as conn:
        store.write_results(conn, None, results)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Host)).scalar_one() == 1000
    # executemany counts once per call; a per-row design would need thousands
    assert len(statements) < 60, len(statements)


def test_two_polls_of_one_host_in_one_batch_end_in_the_newer_state(engine: Engine) -> None:
    with engine.begin() as conn:
        store.write_results(conn, None, [observation(at=T0, status=LicenseStatus.LICENSED, code=None)])
        later = [
            observation(at=T0 + timedelta(hours=1)),
            observation(at=T0 + timedelta(hours=2), code=None, status=LicenseStatus.LICENSED),
        ]
        store.write_results(conn, None, later)
    with engine.connect() as conn:
        assert conn.execute(select(Host.license_status)).scalar_one() == "Licensed"
        history = conn.execute(select(StatusHistory.license_status)).scalars().all()
    assert history == ["Licensed"]


def test_shards_finishing_together_both_write_their_rollup(pg_url: str) -> None:
    """Two collectors' end-of-run transactions overlap on PostgreSQL (SQLite serialises writers itself)."""
    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.begin() as conn:
        store.write_results(conn, None, [observation()])
    first, second = engine.connect(), engine.connect()
    first.begin()
    maintenance.refresh_rollup(first, T0.date())
    second.begin()
    worker = threading.Thread(target=maintenance.refresh_rollup, args=(second, T0.date()))
    worker.start()
    worker.join(timeout=1)
    assert worker.is_alive(), "the second shard waits for the first"
    first.commit()
    worker.join(timeout=30)
    second.commit()
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(DailyRollup.host_count))).scalar_one() == 1
    first.close()
    second.close()
    engine.dispose()
