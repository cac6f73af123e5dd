"""What one evaluation of the alert rules costs on a large fleet: each check, then whole evaluations.

Builds ``--hosts`` hosts (a seventh failing, 20 KMS hosts, a week of daily rollups) through the real write path as
``bench.bench_queries`` does, with each KMS client's SRV lookup recorded, then times every rule's check (median of
``--runs`` warm runs) and ``run_alerts``: the first evaluation (every episode opens) and the steady one (every
episode kept). Nothing is sent. Run: ``python -m bench.bench_alerts --hosts 100000 --backend both``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from alerting import run_alerts
from alerting.rules import CHECKS, RULES
from bench.bench_queries import make_result, pg_schema_url
from config.settings import Settings, load_settings
from models import maintenance, runs, store
from models.alert_checks import Check, CheckParams
from models.db import make_engine, upgrade
from models.enums import ActivationType, RunStatus, Severity
from models.records import EvidenceValue, Finding, HostObservation, HostResult
from models.tables import Alert

DOMAINS = ("corp.example", "branch.example", "lab.example")  # the last publishes no SRV record


def with_srv_lookup(result: HostResult, i: int) -> HostResult:
    """A KMS client's result with its ``_vlmcs._tcp`` lookup, as the collector records it."""
    if not isinstance(result, HostObservation) or result.products[0].activation_type is not ActivationType.KMS_CLIENT:
        return result
    domain = DOMAINS[i % len(DOMAINS)]
    name = f"_vlmcs._tcp.{domain}"
    if domain == DOMAINS[-1]:
        evidence: dict[str, EvidenceValue] = {"name": name, "error": "NXDOMAIN", "pinned_kms_host": None}
        finding = Finding("dns_srv", Severity.FAIL, f"No KMS SRV record: {name}", "0x8007232B", evidence)
    else:
        finding = Finding("dns_srv", Severity.OK, f"{name} -> kms00.{domain}:1688", None,
                          {"name": name, "records": f"kms00.{domain}:1688"})  # fmt: skip
    return dataclasses.replace(result, domain=domain, findings=(*result.findings, finding))


def build(engine: Engine, hosts: int, seed: int = 1) -> float:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    failing = set(rng.sample(range(hosts), hosts // 7))
    started = time.perf_counter()
    with engine.begin() as conn:
        run = runs.start_run(conn, collector="bench", shard=None, hosts_total=hosts, started_at=now - timedelta(days=8))
    for day in range(8, -1, -1):  # the whole fleet a week ago, then a fiftieth of it changing each day
        at = now - timedelta(days=day, minutes=5)
        ids = range(hosts) if day == 8 else rng.sample(range(hosts), hosts // 50)
        for i in ids:
            if day < 8 and rng.random() < 0.5:
                failing.symmetric_difference_update({i})
        ordered = sorted(ids)
        for lo in range(0, len(ordered), 1000):
            batch = [with_srv_lookup(make_result(i, at, rng, i in failing), i) for i in ordered[lo : lo + 1000]]
            with engine.begin() as conn:
                store.write_results(conn, run, batch, batch_id=uuid.uuid4().hex)
        with engine.begin() as conn:
            maintenance.refresh_rollup(conn, at.date())
    with engine.begin() as conn:
        runs.finish_run(conn, run, finished_at=now, status=RunStatus.COMPLETE)
    return time.perf_counter() - started


def defaults() -> Settings:
    """The default settings, whatever the environment or a local config file say."""
    with tempfile.TemporaryDirectory(prefix="am-bench-") as folder:
        empty = Path(folder) / "empty.toml"
        empty.touch()
        return load_settings(config_file=empty, environ={})


def timed(fn: Callable[[], object], runs_: int) -> float:
    samples = []
    for _ in range(runs_):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def bench(url: str, label: str, hosts: int, runs_: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    build_s = build(engine, hosts)
    settings = defaults()
    now = datetime.now(UTC)
    print(f"\n== {label}: {hosts} hosts (built in {build_s:.0f} s) ==")
    total = 0.0
    with engine.connect() as conn:
        for rule in RULES:
            check = CHECKS[rule.check]
            params = rule.params(settings)
            found = len(check(conn, params, now))

            def once(check: Check = check, params: CheckParams = params) -> None:
                check(conn, params, now)
                conn.rollback()

            ms = timed(once, runs_)
            total += ms
            print(f"  check {rule.name:22s} {ms:8.1f} ms  ({found} firing)")
    print(f"  all checks                   {total:8.1f} ms")
    t = time.perf_counter()
    first = run_alerts(engine, settings, now=now, notify_urls=[])
    print(f"  run_alerts, first (opens {len(first.opened)}) {(time.perf_counter() - t) * 1000:8.1f} ms")
    steady = timed(lambda: run_alerts(engine, settings, now=now + timedelta(minutes=5), notify_urls=[]), runs_)
    with engine.connect() as conn:
        firing = conn.execute(select(func.count()).select_from(Alert).where(Alert.state == "firing")).scalar_one()
    print(f"  run_alerts, steady ({firing} firing, all kept) {steady:8.1f} ms")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="am-bench-") as folder:
            bench(f"sqlite:///{folder}/bench.db", "SQLite", args.hosts, args.runs)
    if args.backend in ("postgresql", "both"):
        with pg_schema_url() as url:
            bench(url, "PostgreSQL", args.hosts, args.runs)


if __name__ == "__main__":
    main()
