"""Series count and scrape time of ``python -m collectors metrics`` on a large fleet.

Builds ``--hosts`` hosts (default 100,000) through the real write path the way ``bench.bench_queries`` does, with
``--sites`` sites from the inventory (more than the exporter's cap of 100, so folding is exercised), starts the
exporter as a subprocess and times ``--scrapes`` scrapes of /metrics that each read the database
(``--cache-seconds 0``), then ``--concurrent`` scrapes at once with the read shared (``--cache-seconds 60``).
Run: ``python -m bench.bench_metrics --hosts 100000 --backend both``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_queries import build, pg_schema_url
from models import store
from models.db import make_engine, upgrade
from models.records import HostIdentity
from tests.prometheus_exporter import Scrape, running_exporter

BATCH = 5000


def fill(url: str, hosts: int, sites: int) -> float:
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    build(engine, hosts, days=1)
    names = [HostIdentity(f"h{i}", 5985, "http", f"Site {i % sites:03d}") for i in range(hosts)]
    for lo in range(0, hosts, BATCH):
        with engine.begin() as conn:
            store.upsert_inventory(conn, names[lo : lo + BATCH], now=datetime.now(UTC))
    engine.dispose()
    return time.perf_counter() - started


def measure(url: str, label: str, scrapes: int, concurrent: int, workdir: Path) -> None:
    with running_exporter(url, workdir, cache_seconds=0) as exporter:
        timings, sizes, reads = [], [], []
        for _ in range(scrapes):
            t = time.perf_counter()
            scrape = exporter.scrape()
            timings.append((time.perf_counter() - t) * 1000)
            sizes.append(len(scrape.text.encode()))
            reads.append(scrape.value("activation_monitor_database_read_seconds") * 1000)
    ours = [s for s in scrape.samples if s.name.startswith("activation_monitor_")]
    families = {s.name for s in ours}
    print(f"\n== {label} ==")
    print(f"series: {len(scrape.samples)} in all, {len(ours)} activation_monitor_* in {len(families)} names")
    counts = {name: len(scrape.of(f"activation_monitor_{name}")) for name in ("hosts", "hosts_by_error_code")}
    kms_hosts = len(scrape.of("activation_monitor_kms_host_threshold"))
    folded = scrape.value("activation_monitor_label_values_folded", label="site")
    print(f"  {counts}, KMS hosts {kms_hosts}, sites folded into (other) {folded:.0f}")
    print(f"body: {statistics.median(sizes) / 1024:.1f} KiB")
    print(
        f"scrape (uncached, {scrapes} runs): p50 {statistics.median(timings):.0f} ms, max {max(timings):.0f} ms; "
        f"database read p50 {statistics.median(reads):.0f} ms"
    )
    with running_exporter(url, workdir, cache_seconds=60) as exporter, ThreadPoolExecutor(concurrent) as pool:
        t = time.perf_counter()
        answers: list[Scrape] = list(pool.map(lambda _: exporter.scrape(), range(concurrent)))
        wall = (time.perf_counter() - t) * 1000
    total_reads = max(a.value("activation_monitor_database_reads_total") for a in answers)
    print(f"{concurrent} concurrent scrapes (cached): {wall:.0f} ms wall, database reads {total_reads:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=150)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="am-bench-metrics-") as folder:
        workdir = Path(folder)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{folder}/bench.db"
            print(f"SQLite: built {args.hosts} hosts in {fill(url, args.hosts, args.sites):.0f} s")
            measure(url, f"SQLite, {args.hosts} hosts", args.scrapes, args.concurrent, workdir)
        if args.backend in ("postgresql", "both"):
            with pg_schema_url() as url:
                print(f"PostgreSQL: built {args.hosts} hosts in {fill(url, args.hosts, args.sites):.0f} s")
                measure(url, f"PostgreSQL, {args.hosts} hosts", args.scrapes, args.concurrent, workdir)


if __name__ == "__main__":
    main()
