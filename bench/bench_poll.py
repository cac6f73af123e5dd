"""Poll throughput against the simulated fleet, against the obvious pywinrm baseline.

Starts ``python -m simulator serve`` in its own process (20 ms added to every reply by default), polls
every host with the real collector (NTLM with message encryption) into a fresh SQLite database, and
reports hosts/s, requests and connections per host, collector CPU ms per host, peak memory and the
database write rate; then runs the baseline, a sequential loop of ``winrm.Session(...).run_ps`` with
``Get-CimInstance`` per host, on a sample of hosts in the same run, and prints the ratio.

    python bench/bench_poll.py --hosts 10000 --latency-ms 20 --concurrency 128
    python bench/bench_poll.py --hosts 300            # a quick check
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from collectors import demo, wsman
from collectors.credentials import Credential
from collectors.inventory import load_inventory
from collectors.poller import PollContext, RunOptions, run_poll
from collectors.probes import Probes
from collectors.spool import Spool
from models import db, store
from models.enums import ActivationType, LicenseStatus, ProductType
from models.records import HostObservation, ProductState

BASELINE_PS = (
    "Get-CimInstance -ClassName SoftwareLicensingProduct "
    "-Filter \"ApplicationID='55c92734-d682-4d71-983e-d6ec3f16059f' AND PartialProductKey IS NOT NULL\" | "
    "Select-Object Name,LicenseStatus,LicenseStatusReason,ProductKeyChannel | ConvertTo-Json"
)


def start_simulator(workdir: Path, hosts: int, latency_ms: int, password: str):
    inventory, truth, ca = workdir / "inventory.csv", workdir / "truth.json", workdir / "ca.pem"
    import os
    import subprocess

    command = [
        sys.executable, "-m", "simulator", "serve", "--hosts", str(hosts), "--seed", "3",
        "--latency-ms", str(latency_ms),
        "--inventory-out", str(inventory), "--truth-out", str(truth), "--ca-out", str(ca), "--username", "bench",
        "--address-base", "127.60.0.0", "--port", "0", "--https-port", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, demo.PASSWORD_ENV: password}, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    dns_server = demo._wait_ready(process)
    return demo._Simulator(process, dns_server, inventory, ca), json.loads(truth.read_text())


def healthy_targets(inventory: Path, truth: list[dict]) -> list:
    healthy = {t["host"] for t in truth if not t["fault"]}
    return [t for t in load_inventory(inventory).targets if t.host in healthy]


def collector_run(
    sim, targets, password: str, concurrency: int, processes: int | None, url: str, workdir: Path
) -> dict:
    ctx = PollContext(
        credentials={"default": Credential("default", "bench", SecretStr(password))},
        probes=Probes.for_settings(sim.dns_server, connect_timeout_s=2.0),
        options=wsman.WsmanOptions(connect_timeout_s=5, read_timeout_s=30, ca_bundle=str(sim.ca)),
        host_timeout_s=30,
    )
    before = replace(wsman.COUNTER)
    cpu0, wall0 = collector_cpu_s(), time.perf_counter()
    summary = run_poll(targets, ctx, database_url=url, spool=Spool(workdir / "spool"),
                       options=RunOptions(concurrency=concurrency, collector="bench", processes=processes))  # fmt: skip
    wall, cpu = time.perf_counter() - wall0, collector_cpu_s() - cpu0
    n = summary.succeeded + summary.failed
    return {
        "hosts": n,
        "succeeded": summary.succeeded,
        "failures": dict(summary.failures),
        "wall_s": round(wall, 2),
        "hosts_per_s": round(n / wall, 1),
        "collector_cpu_ms_per_host": round(cpu * 1000 / n, 2),
        "requests_per_host": round((wsman.COUNTER.requests - before.requests) / n, 2),
        "connections_per_host": round((wsman.COUNTER.connections - before.connections) / n, 2),
        "failure_samples": failure_samples(url) if summary.failed else [],
        "peak_rss_mb_per_worker_process": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        if processes != 1
        else None,
    }


def failure_samples(url: str, limit: int = 5) -> list[str]:
    from models import queries
    from models.filters import HostFilter

    engine = db.open_database(url)
    with engine.connect() as conn:
        frame = queries.host_page(conn, HostFilter(), limit=100_000)
    engine.dispose()
    errors = [e for e in frame["poll_error"].tolist() if isinstance(e, str) and e]
    return errors[:limit]


def collector_cpu_s() -> float:
    """CPU of this process plus its finished worker processes (the simulator is reaped only later)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def baseline_run(targets, password: str, sample: int) -> dict:
    import winrm

    chosen = targets[:sample]
    wall0 = time.perf_counter()
    ok = 0
    for target in chosen:
        session = winrm.Session(
            target.endpoint, auth=("bench", password), transport="ntlm", read_timeout_sec=30, operation_timeout_sec=20
        )
        result = session.run_ps(BASELINE_PS)
        ok += result.status_code == 0
    wall = time.perf_counter() - wall0
    return {"hosts": len(chosen), "ok": ok, "wall_s": round(wall, 2), "hosts_per_s": round(len(chosen) / wall, 2)}


def db_write_rate(url: str, results: int) -> dict:
    engine = db.open_database(url)
    now = datetime.now(UTC)
    product = ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, channel="Volume:GVLK")
    batch = [_observation(i, now, product) for i in range(results)]
    wall0 = time.perf_counter()
    for start in range(0, results, 250):
        with engine.begin() as conn:
            store.write_results(conn, None, batch[start : start + 250])
    wall = time.perf_counter() - wall0
    engine.dispose()
    return {"results": results, "results_per_s": round(results / wall, 1)}


def _observation(i: int, now: datetime, product: ProductState) -> HostObservation:
    return HostObservation(
        f"dbbench-{i}", now + timedelta(seconds=i), "PC", "corp.test", "Windows 11", "10.0",
        ProductType.WORKSTATION, 0.0, (product,),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: the collector's)")
    parser.add_argument("--baseline-hosts", type=int, default=30)
    parser.add_argument("--db-results", type=int, default=5000)
    args = parser.parse_args()
    password = "bench-" + str(time.time_ns())
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp:
        workdir = Path(tmp)
        sim, truth = start_simulator(workdir, args.hosts, args.latency_ms, password)
        try:
            targets = healthy_targets(sim.inventory, truth)
            url = f"sqlite:///{workdir / 'bench.db'}"
            report = {"fleet_hosts": args.hosts, "latency_ms": args.latency_ms, "concurrency": args.concurrency,
                      "processes": args.processes or "auto"}  # fmt: skip
            report["collector"] = collector_run(sim, targets, password, args.concurrency, args.processes, url, workdir)
            report["baseline"] = baseline_run(targets, password, args.baseline_hosts)
            report["speedup"] = round(report["collector"]["hosts_per_s"] / report["baseline"]["hosts_per_s"], 1)
        finally:
            sim.stop()
        report["db_write"] = db_write_rate(f"sqlite:///{workdir / 'write.db'}", args.db_results)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
