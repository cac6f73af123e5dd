"""Poll throughput and cost against the simulated fleet, measured as an administrator would measure it.

Starts ``python -m simulator serve`` in its own process (20 ms added to every reply by default), then
runs ``python -m collectors poll`` as its own process over the healthy hosts into a fresh SQLite
database, and reports what that whole process tree cost, start-up included, the way ``/usr/bin/time``
does: ``os.wait4`` of the poll process gives its CPU plus that of the worker processes it reaped. The
simulator's CPU is not counted. Figures: hosts/s, HTTP requests and connections per host, SPP event
log reads per 1,000 hosts (and how many only the renewal watch asked for), CPU ms per host, peak RSS;
then the obvious pywinrm baseline (a sequential ``winrm.Session(...).run_ps`` with ``Get-CimInstance``
per host) on a sample, and the database write rate.

    python bench/bench_poll.py --hosts 2000 --latency-ms 20              # Negotiate/NTLM, sealed over HTTP
    python bench/bench_poll.py --hosts 2000 --latency-ms 20 --processes 1
    python bench/bench_poll.py --hosts 2000 --kerberos                   # Kerberos against a private MIT KDC

``--kerberos`` needs Debian's krb5-kdc and krb5-admin-server and ``requirements-kerberos.txt``: it starts a
realm of its own (``tests/krb5kdc.py``), gives every host its ``HTTP/<fqdn>`` key and lists the hosts by
address with their SPN beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collectors import demo  # noqa: E402
from models import db, store  # noqa: E402
from models.enums import ActivationType, LicenseStatus, ProductType  # noqa: E402
from models.records import HostObservation, ProductState  # noqa: E402
from simulator import generator, scenario  # noqa: E402
from simulator.scenario import fqdn  # noqa: E402

BASELINE_PS = (
    "Get-CimInstance -ClassName SoftwareLicensingProduct "
    "-Filter \"ApplicationID='55c92734-d682-4d71-983e-d6ec3f16059f' AND PartialProductKey IS NOT NULL\" | "
    "Select-Object Name,LicenseStatus,LicenseStatusReason,ProductKeyChannel | ConvertTo-Json"
)
USER = "bench"


def start_simulator(workdir: Path, args: argparse.Namespace, password: str, extra: list[str]) -> tuple:
    inventory, truth, ca = workdir / "inventory.csv", workdir / "truth.json", workdir / "ca.pem"
    command = [
        sys.executable, "-m", "simulator", "serve", "--scenario", str(workdir / "scenario.json"),
        "--latency-ms", str(args.latency_ms), "--inventory-out", str(inventory), "--truth-out", str(truth),
        "--ca-out", str(ca), "--username", USER, "--address-base", "127.60.0.0", "--port", "0", "--https-port", "0",
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, demo.PASSWORD_ENV: password},
    )  # fmt: skip
    dns_server = demo._wait_ready(process)
    return demo._Simulator(process, dns_server, inventory, ca), json.loads(truth.read_text())


def healthy_inventory(sim, truth: list[dict], workdir: Path) -> tuple[Path, int]:
    """The inventory with only the hosts that answer, so every polled host is a full read."""
    healthy = {t["host"] for t in truth if not t["fault"] and not t["poll_error"]}
    with sim.inventory.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["host"] in healthy]
    path = workdir / "healthy.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, len(rows)


def poll_process(inventory: Path, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> dict:
    """Run ``python -m collectors poll`` and measure its whole process tree, start-up included."""
    command = [sys.executable, "-m", "collectors", "poll", "--inventory", str(inventory), "--json",
               "--db", f"sqlite:///{workdir / 'bench.db'}", "--concurrency", str(args.concurrency)]  # fmt: skip
    if args.processes:
        command += ["--processes", str(args.processes)]
    out, err = workdir / "poll.out", workdir / "poll.err"
    wall0 = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - wall0
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"poll exited {process.returncode}: {err.read_text()[-2000:]}")
    summary = json.loads(out.read_text())
    n = summary["polled"]
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "hosts": n,
        "succeeded": summary["succeeded"],
        "failures": summary["failures"],
        "signin": summary["signin"],
        "wall_s": round(wall, 2),
        "run_s": summary["duration_s"],
        "hosts_per_s": round(n / summary["duration_s"], 1),
        "cpu_s_process_tree": round(cpu, 2),
        "cpu_ms_per_host": round(cpu * 1000 / n, 2),
        "requests_per_host": round(summary["http_requests"] / n, 2),
        "connections_per_host": round(summary["connections"] / n, 2),
        # SPP event log reads per 1,000 hosts; the renewal watch's share is the reads it alone asked for
        "event_reads_per_1000_hosts": round(summary["event_reads"] * 1000 / n, 1),
        "renewal_event_reads_per_1000_hosts": round(summary["renewal_event_reads"] * 1000 / n, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def poll_env(workdir: Path, sim, password: str | None, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env.update({
        "ACTIVATION_DATA_DIR": str(workdir / "data"),
        "ACTIVATION_SECRETS_FILE": str(workdir / "no-secrets.env"),
        "ACTIVATION_DNS_SERVER": sim.dns_server,
        "ACTIVATION_CA_BUNDLE": str(sim.ca),
        "ACTIVATION_TIMEOUT_S": "30",
        "ACTIVATION_CRED_DEFAULT_USERNAME": extra.pop("username", USER),
        "ACTIVATION_COLLECTOR_NAME": "bench",
        **({"ACTIVATION_CRED_DEFAULT_PASSWORD": password} if password else {}),
        **extra,
    })  # fmt: skip
    return env


@contextlib.contextmanager
def kerberos_realm(workdir: Path, fleet: scenario.Scenario) -> Iterator[tuple[list[str], dict[str, str]]]:
    """A private MIT realm holding every host's HTTP/<fqdn> and the collector's account, with a keytab each."""
    from tests.krb5kdc import running_kdc  # the tests' own realm builder; on demand only

    with running_kdc(workdir / "kdc") as realm:
        # hosts whose name cannot be a DNS name are listed by address alone and fail Kerberos, as they should
        names = sorted({f"HTTP/{fqdn(h)}" for h in fleet.hosts if re.fullmatch(r"[a-z0-9.-]+", fqdn(h))})
        realm.add_services(names)
        principal = realm.add_user(USER, "Bench-" + secrets.token_urlsafe(12))
        hosts_keytab = realm.export_keytab(names, workdir / "hosts.keytab")
        client_keytab = realm.export_keytab([principal], workdir / "collector.keytab")
        env = {**realm.env(), "username": principal, "ACTIVATION_CRED_DEFAULT_KEYTAB": str(client_keytab)}
        os.environ.update(realm.env())  # the simulator process reads the same realm
        yield ["--keytab", str(hosts_keytab), "--spns", "--transport", "kerberos"], env


def baseline_run(inventory: Path, password: str, sample: int) -> dict:
    import winrm

    from collectors.inventory import load_inventory

    chosen = load_inventory(inventory).targets[:sample]
    wall0 = time.perf_counter()
    ok = 0
    for target in chosen:
        session = winrm.Session(target.endpoint, auth=(USER, password), transport="ntlm", read_timeout_sec=30,
                                operation_timeout_sec=20)  # fmt: skip
        ok += session.run_ps(BASELINE_PS).status_code == 0
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
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: the collector's)")
    parser.add_argument("--kerberos", action="store_true", help="sign in with Kerberos against a private MIT KDC")
    parser.add_argument("--baseline-hosts", type=int, default=30, help="0 skips the pywinrm baseline")
    parser.add_argument("--db-results", type=int, default=5000)
    args = parser.parse_args()
    password = "bench-" + secrets.token_urlsafe(12)
    report: dict = {"fleet_hosts": args.hosts, "latency_ms": args.latency_ms, "concurrency": args.concurrency,
                    "processes": args.processes or "auto",
                    "signin": "Kerberos" if args.kerberos else "Negotiate/NTLM"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        fleet = generator.generate(args.hosts, args.seed)
        scenario.save(fleet, workdir / "scenario.json")
        flags, kerberos_env = stack.enter_context(kerberos_realm(workdir, fleet)) if args.kerberos else ([], {})
        sim, truth = start_simulator(workdir, args, password, flags)
        try:
            inventory, report["healthy_hosts"] = healthy_inventory(sim, truth, workdir)
            env = poll_env(workdir, sim, None if args.kerberos else password, dict(kerberos_env))
            report["collector"] = poll_process(inventory, env, args, workdir)
            if args.baseline_hosts and not args.kerberos:
                report["baseline"] = baseline_run(inventory, password, args.baseline_hosts)
                report["speedup"] = round(report["collector"]["hosts_per_s"] / report["baseline"]["hosts_per_s"], 1)
        finally:
            sim.stop()
        report["db_write"] = db_write_rate(f"sqlite:///{workdir / 'write.db'}", args.db_results)
    report["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
