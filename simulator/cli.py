"""``python -m simulator``: ``serve`` a simulated fleet until interrupted, or ``generate`` a scenario file.

A thin argparse layer over ``runtime.prepare`` and ``FleetServer``: it parses flags, prints where
the inventory, truth and CA files are, which account is accepted (a password taken from the
environment is never printed; a generated demo password is), prints ``ready`` once every listener
accepts connections, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from simulator import generator, scenario
from simulator.runtime import FleetOptions, Prepared, prepare
from simulator.scenario import TRANSPORTS, WinrmService

PASSWORD_ENV = "SIMULATOR_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Simulated Windows fleet over WinRM.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a fleet on 127.0.0.0/8 until interrupted")
    _fleet_flags(serve)
    gen = commands.add_parser("generate", help="write a generated scenario file")
    gen.add_argument("--hosts", type=int, default=50, help="number of hosts")
    gen.add_argument("--seed", type=int, default=1, help="random seed")
    gen.add_argument("--out", type=Path, required=True, help="scenario JSON to write")
    return parser


def _fleet_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--hosts", type=int, default=50, help="number of generated hosts")
    serve.add_argument("--seed", type=int, default=1, help="random seed of the generated fleet")
    serve.add_argument("--scenario", type=Path, help="scenario JSON/YAML instead of a generated fleet")
    serve.add_argument("--inventory-out", type=Path, help="write the collector inventory CSV here")
    serve.add_argument("--truth-out", type=Path, help="write the ground-truth JSON here")
    serve.add_argument("--ca-out", type=Path, help="write the CA certificate (PEM) of HTTPS hosts here")
    serve.add_argument("--username", default="simadmin", help="the account every host accepts")
    serve.add_argument("--password", help=f"its password (default: ${PASSWORD_ENV}, else generated)")
    serve.add_argument("--https", action="store_true", help="serve every host over HTTPS")
    serve.add_argument("--latency-ms", type=int, default=0, help="latency added to every reply")
    serve.add_argument("--address-base", default="127.10.0.0", help="first host is base+1 (127.0.0.0/8)")
    serve.add_argument("--port", type=int, default=5985, help="WinRM HTTP port (0 = any free port)")
    serve.add_argument("--https-port", type=int, default=5986, help="WinRM HTTPS port (0 = any free port)")
    serve.add_argument("--kms-port", type=int, default=0, help="TCP port of listening KMS hosts (0 = free port)")
    serve.add_argument("--dns-port", type=int, default=0, help="UDP port of the DNS responder (0 = free port)")
    serve.add_argument("--basic", action="store_true", help="enable Basic in every host's WinRM service")
    serve.add_argument(
        "--allow-unencrypted",
        action="store_true",
        help="set AllowUnencrypted on every host (Basic or clear text over HTTP)",
    )
    serve.add_argument("--keytab", type=Path, help="keytab with the hosts' HTTP/<fqdn> keys: serve Kerberos")
    serve.add_argument("--names", action="store_true", help="list hosts by DNS name in the inventory (Kerberos)")
    serve.add_argument(
        "--spns", action="store_true", help="add each host's HTTP/<fqdn> SPN to the inventory (Kerberos)"
    )
    serve.add_argument("--transport", choices=TRANSPORTS, help="the transport every inventory row names")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        scenario.save(generator.generate(args.hosts, args.seed), args.out)
        print(f"scenario with {args.hosts} hosts written to {args.out}")
        return 0
    try:
        prepared = prepare(_options(args))
    except (scenario.ScenarioError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _announce(prepared, from_env=args.password is None and PASSWORD_ENV in os.environ)
    try:
        asyncio.run(_serve(prepared))
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


def _options(args: argparse.Namespace) -> FleetOptions:
    return FleetOptions(
        hosts=args.hosts, seed=args.seed, scenario_path=args.scenario, username=args.username,
        password=args.password or os.environ.get(PASSWORD_ENV), https=args.https, latency_ms=args.latency_ms,
        address_base=args.address_base, http_port=args.port, https_port=args.https_port, kms_port=args.kms_port,
        dns_port=args.dns_port, inventory_out=args.inventory_out, truth_out=args.truth_out, ca_out=args.ca_out,
        winrm=_service(args), transport=args.transport, names=args.names, spns=args.spns, keytab=args.keytab,
    )  # fmt: skip


def _service(args: argparse.Namespace) -> WinrmService | None:
    if not (args.basic or args.allow_unencrypted):
        return None  # each host keeps its own settings: Windows' defaults unless the scenario says otherwise
    return WinrmService(basic=args.basic, allow_unencrypted=args.allow_unencrypted)


def _announce(prepared: Prepared, from_env: bool) -> None:
    plan = prepared.plan
    hosts = len(plan.scenario.hosts)
    print(f"fleet: {hosts} hosts from {plan.base + 1}, WinRM http port {plan.ports.http}, "
          f"https port {plan.ports.https}, KMS port {plan.ports.kms}")  # fmt: skip
    print(f"dns server: 127.0.0.1:{plan.ports.dns}")
    for label, path in (
        ("inventory", prepared.inventory_path),
        ("truth", prepared.truth_path),
        ("ca", prepared.ca_path),
    ):
        if path is not None:
            print(f"{label}: {path}")
    if prepared.password_generated:
        print(f"credentials: {prepared.creds.username} / {prepared.creds.password} (generated demo password)")
    else:
        source = f"${PASSWORD_ENV}" if from_env else "--password"
        print(f"credentials: {prepared.creds.username} / password from {source}")
    kerberos = ", Kerberos (keytab)" if prepared.server.kerberos is not None else ""
    print(f"auth: as each host's WinRM service allows: Negotiate (NTLM{kerberos}), Basic where enabled", flush=True)


async def _serve(prepared: Prepared) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await prepared.server.start()
    print("ready: every listener accepts connections (Ctrl-C to stop)", flush=True)
    try:
        await stop.wait()
    finally:
        await prepared.server.stop()
        print("stopped", flush=True)
