"""The job queue's cost per host against the in-process poller, and the combined rate of 1, 2 and 4 workers.

Starts ``python -m simulator serve`` in its own process (20 ms added to every reply by default) and keeps its
healthy hosts. On PostgreSQL (a private schema per measurement) it runs, each as its own process tree:

- ``python -m collectors poll --processes 1`` over those hosts: the in-process poller;
- ``python -m collectors schedule --once`` and then 1, 2 and 4 ``python -m collectors worker`` processes
  (``--concurrency`` each, as separate machines would be) until the run is complete.

A rate is hosts over the run's own span (from its first batch taken to the run closed, as the database
recorded it), so interpreter start-up is left out of both; CPU is the whole process tree's (``os.wait4``),
start-up included. The simulator's CPU share over each span is read from ``/proc``: on a 2-core machine it
shares the cores with the collectors, and where it nears 100 % of one core it, not the collector, sets the
rate. ``idle_worker_cpu_s`` is what a worker costs to start and stop with nothing to do; the CPU per host
"without start-up" takes it out. Then, in-process on synthetic data: the enqueue cost per 1,000 hosts (run
claimed, inventory upserted, batch jobs deferred, one transaction), the rate PostgreSQL takes results through
``store.write_results``, and bytes per row (indexes included) of the tables that grow with time. The tables'
bytes per row after the in-process run are those of the fleet's current state.

    python bench/bench_queue.py --hosts 1000 --latency-ms 20 --concurrency 64
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy import table as sql_table  # noqa: E402

from bench.bench_queries import pg_schema_url  # noqa: E402
from collectors.inventory import Target  # noqa: E402
from collectors.queue import ScheduleOptions, enqueue_run, make_app  # noqa: E402
from models import batches, db, store  # noqa: E402
from models.batches import BatchPlan  # noqa: E402
from models.enums import ActivationType, LicenseStatus, ProductType  # noqa: E402
from models.records import HostIdentity, HostObservation, ProductState  # noqa: E402

USER = "bench"
TICKS = os.sysconf("SC_CLK_TCK")


class Simulator:
    """``python -m simulator serve`` as a process, with its DNS server and CPU seconds so far."""

    def __init__(self, workdir: Path, hosts: int, seed: int, latency_ms: int, password: str) -> None:
        self.inventory = workdir / "inventory.csv"
        self.truth = workdir / "truth.json"
        command = [
            sys.executable, "-m", "simulator", "serve", "--hosts", str(hosts), "--seed", str(seed),
            "--latency-ms", str(latency_ms), "--inventory-out", str(self.inventory), "--truth-out", str(self.truth),
            "--username", USER, "--address-base", "127.61.0.0", "--port", "0", "--https-port", "0",
        ]  # fmt: skip
        env = {**os.environ, "SIMULATOR_PASSWORD": password}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        self.dns_server = ""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("dns server:"):
                self.dns_server = line.split(":", 1)[1].strip()
            if line.startswith("ready"):
                break
        else:
            raise SystemExit("the simulator did not start")
        threading.Thread(target=lambda: [None for _ in self.process.stdout or ()], daemon=True).start()

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def healthy_inventory(sim: Simulator, workdir: Path) -> tuple[Path, int]:
    truth = json.loads(sim.truth.read_text())
    healthy = {t["host"] for t in truth if not t["fault"] and not t["poll_error"]}
    with sim.inventory.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["host"] in healthy]
    path = workdir / "healthy.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, len(rows)


@contextlib.contextmanager
def private_schema() -> Iterator[str]:
    with pg_schema_url() as url:
        db.open_database(url).dispose()
        yield url


def run_span(url: str) -> tuple[int, float]:
    """Hosts the run counted and its span: first batch taken (or the run's start) to the run closed."""
    engine = db.make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT r.succeeded + r.failed_dns + r.failed_refused + r.failed_timeout + r.failed_auth + r.failed_tls"
            " + r.failed_protocol, coalesce((SELECT min(started_at) FROM poll_batches), r.started_at), r.finished_at"
            " FROM poll_runs r"
        )).one()  # fmt: skip
    engine.dispose()
    return int(row[0]), (row[2] - row[1]).total_seconds()


def cpu_of(process: subprocess.Popen[bytes]) -> float:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def in_process(inventory: Path, env: dict[str, str], concurrency: int, sim: Simulator) -> dict:
    with private_schema() as url:
        command = [sys.executable, "-m", "collectors", "poll", "--inventory", str(inventory), "--db", url, "--json",
                   "--processes", "1", "--concurrency", str(concurrency)]  # fmt: skip
        sim0 = sim.cpu_s()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = cpu_of(process)
        hosts, span = run_span(url)
        return {**_figures(hosts, span, cpu, sim.cpu_s() - sim0), "tables": table_sizes(url)}


TABLES = ("hosts", "current_status", "findings", "status_history", "kms_host_stats", "daily_rollups", "poll_runs",
          "applied_batches", "poll_batches")  # fmt: skip


def table_sizes(url: str) -> dict[str, dict[str, float]]:
    """Rows and bytes per row (table, indexes and TOAST: ``pg_total_relation_size``) of each table after a run."""
    engine = db.make_engine(url)
    sizes: dict[str, dict[str, float]] = {}
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        for table in TABLES:
            rows = conn.execute(select(func.count()).select_from(sql_table(table))).scalar_one()
            size = conn.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}).scalar_one()
            sizes[table] = {"rows": rows, "bytes_per_row": round(size / rows, 1) if rows else 0.0}
    engine.dispose()
    return sizes


def queued(inventory: Path, env: dict[str, str], concurrency: int, workers: int, sim: Simulator) -> dict:
    with private_schema() as url:
        env = {**env, "ACTIVATION_DB_URL": url}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "collectors", "schedule", "--inventory", str(inventory), "--once",
                        "--every", "1d"], cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
        schedule_s = time.perf_counter() - started
        sim0 = sim.cpu_s()
        command = [sys.executable, "-m", "collectors", "worker", "--concurrency", str(concurrency)]
        processes = [
            subprocess.Popen(command, cwd=ROOT, env={**env, "ACTIVATION_COLLECTOR_NAME": f"bench{k}"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for k in range(workers)
        ]  # fmt: skip
        engine = db.make_engine(url)
        while True:
            time.sleep(0.5)
            with engine.connect() as conn:
                if conn.execute(text("SELECT status FROM poll_runs")).scalar_one() != "running":
                    break
        engine.dispose()
        sim_cpu = sim.cpu_s() - sim0
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        cpu = sum([cpu_of(process) for process in processes], 0.0)
        hosts, span = run_span(url)
        figures = {
            "workers": workers,
            "schedule_process_s": round(schedule_s, 2),
            **_figures(hosts, span, cpu, sim_cpu),
        }
        if workers == 1:
            figures["tables"] = {k: v for k, v in table_sizes(url).items() if k in ("poll_batches", "applied_batches")}
        return figures


def idle_worker_cpu(env: dict[str, str]) -> float:
    """CPU seconds of a worker that starts, registers, finds nothing to do and stops: its fixed cost."""
    with private_schema() as url:
        command = [sys.executable, "-m", "collectors", "worker"]
        process = subprocess.Popen(
            command, cwd=ROOT, env={**env, "ACTIVATION_DB_URL": url}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        engine = db.make_engine(url)
        while True:
            time.sleep(0.5)
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM queue_workers")).scalar_one():
                    break
        engine.dispose()
        time.sleep(2)  # its first heartbeat and upkeep tick
        os.killpg(process.pid, signal.SIGTERM)
        return cpu_of(process)


def _figures(hosts: int, span: float, cpu: float, sim_cpu: float) -> dict:
    return {
        "hosts": hosts,
        "span_s": round(span, 2),
        "hosts_per_s": round(hosts / span, 1),
        "cpu_s_process_tree": round(cpu, 2),
        "cpu_ms_per_host": round(cpu * 1000 / hosts, 2),
        "simulator_cpu_share_of_one_core": round(sim_cpu / span, 2),
    }


def db_write_rate(results: int) -> dict:
    """Results per second PostgreSQL takes through ``store.write_results`` in batches of 200, in-process."""
    product = ProductState("p", ActivationType.KMS_CLIENT, LicenseStatus.LICENSED, channel="Volume:GVLK")
    now = datetime.now(UTC)
    observations = [
        HostObservation(f"dbbench-{i}", now, "PC", "corp.test", "Windows 11", "10.0", ProductType.WORKSTATION, 0.0,
                        (product,))
        for i in range(results)
    ]  # fmt: skip
    with private_schema() as url:
        engine = db.make_engine(url)
        started = time.perf_counter()
        for start in range(0, results, 200):
            with engine.begin() as conn:
                store.write_results(conn, None, observations[start : start + 200], batch_id=f"b{start}")
        wall = time.perf_counter() - started
        engine.dispose()
    return {"results": results, "results_per_s": round(results / wall, 1)}


def growth_row_bytes(rows: int) -> dict[str, float]:
    """Bytes per row, indexes and TOAST included, of the tables that grow with time, filled with ``rows`` rows."""
    now = datetime.now(UTC)
    plans = [BatchPlan(i + 1, "taipei", "Taipei", 200) for i in range(rows)]
    with private_schema() as url:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            run_id = batches.claim_run(
                conn, run_key="k", slot_at=now, every_s=3600, collector="bench", scheduler="b", batches=plans,
                started_at=now, deadline_at=now,
            )  # fmt: skip
            conn.execute(text(
                "UPDATE poll_batches SET status = 'done', worker = 'collector-07.corp.example:123456', attempts = 1,"
                " started_at = now(), finished_at = now(), succeeded = 190, failed_timeout = 6, failed_auth = 4"
            ))  # fmt: skip
            store.upsert_inventory(conn, [HostIdentity(f"ws{i:07d}.corp.example") for i in range(rows)], now=now)
            ids = conn.execute(text("SELECT id FROM hosts")).scalars().all()
            conn.execute(text(
                "INSERT INTO applied_batches (batch_id, run_id, applied_at) VALUES (:b, :r, now())"
            ), [{"b": f"queue-{run_id}-{i}", "r": run_id} for i in range(rows)])  # fmt: skip
            conn.execute(text(
                "INSERT INTO kms_host_stats (host_id, observed_at, current_count, total_requests, failed_requests,"
                " licensed_requests, non_genuine_requests, listening_port, dns_publishing, listening)"
                " VALUES (:h, now(), 50, 123456, 12, 123000, 0, 1688, true, true)"
            ), [{"h": i} for i in ids])  # fmt: skip
            conn.execute(text(
                "INSERT INTO status_history (host_id, changed_at, license_status, activation_type, error_code)"
                " VALUES (:h, now(), 'Notification', 'KMS client', '0xC004F074')"
            ), [{"h": i} for i in ids])  # fmt: skip
            found = {
                table: conn.execute(
                    text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
                ).scalar_one()
                / rows
                for table in ("poll_batches", "applied_batches", "kms_host_stats", "status_history")
            }
        engine.dispose()
    return {table: round(size, 1) for table, size in found.items()}


def enqueue_cost(hosts: int) -> dict:
    """Claiming a run and deferring its batch jobs for ``hosts`` synthetic hosts over 20 sites, in-process."""
    targets = [Target(host=f"ws{i:07d}.corp.example", port=5985, site=f"Site {i % 20}") for i in range(hosts)]
    with private_schema() as url:
        engine = db.make_engine(url)
        options = ScheduleOptions(every_s=3600, batch_size=200, run_timeout_s=3600, collector="bench", scheduler="b")
        started = time.perf_counter()
        result = enqueue_run(engine, make_app(url), targets, options, now=datetime.now(UTC))
        wall = time.perf_counter() - started
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_total_relation_size('procrastinate_jobs')")).scalar_one()
        engine.dispose()
    return {"hosts": hosts, "batches": result.batches, "wall_s": round(wall, 2),
            "ms_per_1000_hosts": round(wall * 1e6 / hosts, 1),
            "job_table_bytes_per_host": round(size / hosts, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64, help="hosts at once, per poll or per worker")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--enqueue-hosts", type=int, default=20000, help="0 skips the enqueue measurement")
    parser.add_argument("--db-results", type=int, default=10000, help="0 skips the database write measurement")
    parser.add_argument("--growth-rows", type=int, default=20000, help="0 skips the row sizes of growing tables")
    args = parser.parse_args()
    password = "bench-" + secrets.token_urlsafe(12)
    report: dict = {"fleet_hosts": args.hosts, "latency_ms": args.latency_ms, "concurrency": args.concurrency,
                    "cores": os.cpu_count()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        workdir = Path(tmp)
        sim = Simulator(workdir, args.hosts, args.seed, args.latency_ms, password)
        try:
            inventory, report["healthy_hosts"] = healthy_inventory(sim, workdir)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
            env.update({
                "ACTIVATION_DATA_DIR": str(workdir / "data"), "ACTIVATION_SECRETS_FILE": str(workdir / "none.env"),
                "ACTIVATION_DNS_SERVER": sim.dns_server, "ACTIVATION_CRED_DEFAULT_USERNAME": USER,
                "ACTIVATION_CRED_DEFAULT_PASSWORD": password, "ACTIVATION_QUEUE_STALL_S": "30",
            })  # fmt: skip
            report["in_process"] = base = in_process(inventory, env, args.concurrency, sim)
            report["queue"] = [
                queued(inventory, env, args.concurrency, int(n), sim) for n in args.workers.split(",") if n.strip()
            ]
            report["idle_worker_cpu_s"] = start = round(idle_worker_cpu(env), 2)
            for figures in report["queue"]:
                spent = figures["cpu_s_process_tree"] - start * figures["workers"]
                figures["cpu_ms_per_host_without_start_up"] = round(spent * 1000 / figures["hosts"], 2)
            one = report["queue"][0]
            report["queue_overhead_cpu_ms_per_host"] = round(one["cpu_ms_per_host"] - base["cpu_ms_per_host"], 2)
            report["queue_overhead_wall_ms_per_host"] = round(1000 / one["hosts_per_s"] - 1000 / base["hosts_per_s"], 2)
        finally:
            sim.stop()
    if args.enqueue_hosts:
        report["enqueue"] = enqueue_cost(args.enqueue_hosts)
    if args.db_results:
        report["db_write"] = db_write_rate(args.db_results)
    if args.growth_rows:
        report["growth_table_bytes_per_row"] = growth_row_bytes(args.growth_rows)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
