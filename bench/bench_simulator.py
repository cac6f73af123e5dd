"""Requests per second the simulator serves to pywinrm on this machine (Basic and NTLM + encryption).

Starts ``python -m simulator serve`` in a subprocess (so client and server do not share a GIL),
then drives it with pywinrm from a thread pool in two modes: ``keepalive`` (one Protocol per
worker, an optimized Enumerate of the Windows product per request) and ``fresh`` (a new Protocol
per host: TCP connect, NTLM handshake and encryption set-up, then the Enumerate). Prints one line
per mode and transport. Run: ``python bench/bench_simulator.py [--seconds 10] [--workers 16]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import winrm
import xmltodict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.runtime import free_port, random_base  # noqa: E402

QUERY = ("SELECT * FROM SoftwareLicensingProduct WHERE ApplicationID = '55c92734-d682-4d71-983e-d6ec3f16059f' "
         "AND PartialProductKey IS NOT NULL")  # fmt: skip
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
CIMV2 = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
PASSWORD = "Bench-Pass-1"  # noqa: S105 - a throwaway account of a local benchmark


def start_server(hosts: int, workdir: Path) -> tuple[subprocess.Popen[str], list[str], int]:
    port = free_port()
    truth = workdir / "truth.json"
    env = {**os.environ, "SIMULATOR_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--hosts", str(hosts), "--seed", "1", "--port", str(port),
         "--address-base", random_base(), "--truth-out", str(truth), "--username", "bench"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready"):
            break
    import json

    rows = json.loads(truth.read_text(encoding="utf-8"))
    healthy = [r["host"] for r in rows if r["fault"] == "" and r["activation_type"] != "unknown"]
    return proc, healthy, port


def message(protocol: winrm.protocol.Protocol) -> str:
    envelope = protocol.build_wsman_header(ENUMERATE, CIMV2)
    envelope["env:Body"] = {"n:Enumerate": {"w:OptimizeEnumeration": None, "w:MaxElements": "32000",
                                            "w:Filter": {"@Dialect": "http://schemas.microsoft.com/wbem/wsman/1/WQL",
                                                         "#text": QUERY}}}  # fmt: skip
    return xmltodict.unparse({"env:Envelope": envelope})


def make_protocol(address: str, port: int, transport: str) -> winrm.protocol.Protocol:
    return winrm.protocol.Protocol(f"http://{address}:{port}/wsman", transport=transport, username="bench",  # type: ignore[arg-type]
                                   password=PASSWORD, proxy=None, message_encryption="auto")  # fmt: skip


def run(mode: str, transport: str, hosts: list[str], port: int, seconds: float, workers: int) -> tuple[int, int]:
    done, errors = [0], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        count = failed = 0
        protocol = make_protocol(hosts[index % len(hosts)], port, transport)
        i = index
        while time.monotonic() < deadline:
            if mode == "fresh":
                protocol.transport.close_session()
                protocol = make_protocol(hosts[i % len(hosts)], port, transport)
                i += workers
            try:
                protocol.send_message(message(protocol))
                count += 1
            except Exception:
                failed += 1
        with lock:
            done[0] += count
            errors[0] += failed

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0], errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--hosts", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, hosts, port = start_server(args.hosts, Path(tmp))
        try:
            print(f"simulator: {args.hosts} hosts, {len(hosts)} healthy; {args.workers} client threads, "
                  f"{args.seconds:.0f} s per run, {os.cpu_count()} CPUs shared by client and server")  # fmt: skip
            for mode in ("keepalive", "fresh"):
                for transport in ("basic", "ntlm"):
                    ok, failed = run(mode, transport, hosts, port, args.seconds, args.workers)
                    label = "NTLM+encryption" if transport == "ntlm" else "Basic"
                    unit = "Enumerate requests/s" if mode == "keepalive" else "hosts/s (connect+auth+Enumerate)"
                    print(f"{mode:9s} {label:16s} {ok / args.seconds:8.1f} {unit}  ({failed} errors)", flush=True)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
