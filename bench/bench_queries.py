"""Query latency per dashboard page, ingest rate and database size for a large fleet with long history.

Builds a fleet of ``--hosts`` hosts through the real write path (``models.store``), then ``--days`` days in which
a small share of hosts change state each day (history grows with change, as in production) with daily rollups and
hourly KMS counters, then times every query each dashboard page runs (p50/p95 of warm runs) and the full CSV
export. Run: ``python -m bench.bench_queries --hosts 100000 --days 90 --backend both``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from models import kms, maintenance, queries, runs, store
from models.db import make_engine, upgrade
from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, RunStatus, Severity
from models.export import write_csv
from models.filters import HostFilter
from models.records import Finding, HostFailure, HostObservation, HostResult, KmsHostCounters, ProductState

CODES = ("0xC004F074", "0xC004F038", "0x8007232B", "0xC004C003", "0xC004F06C", "0xC004F035", "0x800706BA")
PG_URL = os.environ.get("ACTIVATION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KMS_HOSTS = 20


def make_result(i: int, at: datetime, rng: random.Random, failing: bool) -> HostResult:
    if rng.random() < 0.01:
        return HostFailure(f"h{i}", at, rng.choice(list(FailureClass)), "bench failure")
    kind = (
        ActivationType.KMS_HOST
        if i < KMS_HOSTS
        else rng.choice(
            (ActivationType.KMS_CLIENT, ActivationType.KMS_CLIENT, ActivationType.MAK, ActivationType.RETAIL)
        )
    )
    code = rng.choice(CODES) if failing else None
    status = rng.choice((LicenseStatus.NOTIFICATION, LicenseStatus.OOB_GRACE)) if failing else LicenseStatus.LICENSED
    kms = f"kms{i % KMS_HOSTS:02d}.corp.example" if kind is ActivationType.KMS_CLIENT else None
    product = ProductState(
        "windows",
        kind,
        status,
        error_code=code,
        grace_minutes=rng.randint(1, 260_000),
        discovered_kms_machine=kms,
        discovered_kms_port=1688 if kms else None,
        partial_key="ABCDE",
    )
    findings = (Finding("kms_port", Severity.FAIL, "port closed", code, {"port": 1688}),) if failing else ()
    counters = KmsHostCounters(rng.randint(0, 50), 100, 3, 90, 0, 1688, True, True) if i < KMS_HOSTS else None
    return HostObservation(
        host=f"h{i}",
        observed_at=at,
        computer_name=f"{'KMS' if i < KMS_HOSTS else 'WS'}{i:02d}",
        domain="corp.example",
        os_caption=rng.choice(("Windows 11 Enterprise", "Windows Server 2022 Standard")),
        product_type=ProductType.SERVER if i < KMS_HOSTS else ProductType.WORKSTATION,
        products=(product,),
        kms=counters,
        findings=findings,
    )


def build(engine: Engine, hosts: int, days: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    failing = set(rng.sample(range(hosts), hosts // 7))
    t0 = time.perf_counter()
    with engine.begin() as conn:
        run = runs.start_run(conn, collector="bench", shard=None, hosts_total=hosts, started_at=start)
    for lo in range(0, hosts, 1000):
        batch = [make_result(i, start, rng, i in failing) for i in range(lo, min(hosts, lo + 1000))]
        with engine.begin() as conn:
            store.write_results(conn, run, batch, batch_id=uuid.uuid4().hex)
    ingest_s = time.perf_counter() - t0
    for day in range(1, days + 1):
        at = start + timedelta(days=day)
        changed = rng.sample(range(hosts), hosts // 50)
        for i in changed:
            if rng.random() < 0.5:
                failing.symmetric_difference_update({i})
        results = [make_result(i, at, rng, i in failing) for i in changed]
        results += [make_result(i, at + timedelta(hours=h), rng, False) for i in range(KMS_HOSTS) for h in range(24)]
        with engine.begin() as conn:
            store.write_results(conn, None, results)
            maintenance.refresh_rollup(conn, at.date())
            runs.finish_run(conn, run, finished_at=at, status=RunStatus.COMPLETE)
    return {"ingest_hosts_per_s": hosts / ingest_s, "build_s": time.perf_counter() - t0}


def timed(fn: Callable[[], Any], runs: int = 5) -> tuple[float, float]:
    fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[-1]


def page_queries(engine: Engine) -> dict[str, Callable[[], Any]]:
    now = datetime.now(UTC)
    code = HostFilter(error_codes=("0xC004F074",))

    def run(*calls: Callable[[Any], Any]) -> Callable[[], Any]:
        def go() -> None:
            with engine.connect() as conn:
                for call in calls:
                    call(conn)

        return go

    return {
        "overview": run(
            lambda c: queries.fleet_summary(c, now=now, stale_after=timedelta(hours=2)),
            lambda c: queries.failures_by_code(c, HostFilter()),
            lambda c: queries.failures_by_activation_type(c, HostFilter()),
            lambda c: queries.activation_trend(c, days=90),
            lambda c: queries.grace_expiring(c, within_days=14),
            lambda c: runs.last_completed_run(c),
        ),
        "kms_hosts": run(lambda c: kms.kms_hosts(c), lambda c: kms.kms_count_history(c, "h3")),
        "hosts (unfiltered page)": run(
            lambda c: queries.host_count(c, HostFilter()),
            lambda c: queries.host_page(c, HostFilter()),
            lambda c: queries.filter_options(c),
        ),
        "hosts (error code filter)": run(lambda c: queries.host_count(c, code), lambda c: queries.host_page(c, code)),
        "host detail": run(lambda c: queries.host_detail(c, "h12345"), lambda c: queries.host_history(c, "h12345")),
        "error codes": run(lambda c: queries.code_counts(c)),
        "poll runs": run(lambda c: runs.poll_runs(c)),
        "csv export (all unactivated)": run(lambda c: write_csv(c, HostFilter(), io.BytesIO())),
    }


def size_mb(engine: Engine, url: str) -> float:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        files = (path, path.with_name(path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.exists()) / 1e6
    with engine.connect() as conn:
        sql = "select sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        sql += "where n.nspname = current_schema() and c.relkind = 'r'"
        return float(conn.execute(text(sql)).scalar_one()) / 1e6


def bench(url: str, label: str, hosts: int, days: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    figures = build(engine, hosts, days)
    with engine.connect() as conn:
        counts = {
            t: conn.execute(text(f"select count(*) from {t}")).scalar_one()  # noqa: S608 - fixed names
            for t in ("hosts", "status_history", "daily_rollups", "kms_host_stats")
        }
    print(f"\n== {label}: {hosts} hosts, {days} days ==")
    print(
        f"ingest through store.write_results: {figures['ingest_hosts_per_s']:.0f} hosts/s "
        f"(build {figures['build_s']:.0f} s); rows {counts}; size {size_mb(engine, url):.1f} MB"
    )
    for page, fn in page_queries(engine).items():
        p50, worst = timed(fn)
        print(f"  {page:32s} p50 {p50:8.1f} ms   max {worst:8.1f} ms")
    engine.dispose()


@contextlib.contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a fresh PostgreSQL schema of ``PG_URL``'s database, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="am-bench-") as folder:
            bench(f"sqlite:///{folder}/bench.db", "SQLite", args.hosts, args.days)
    if args.backend in ("postgresql", "both"):
        with pg_schema_url() as url:
            bench(url, "PostgreSQL", args.hosts, args.days)


if __name__ == "__main__":
    main()
