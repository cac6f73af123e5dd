"""``python -m simulator``: ``serve`` a simulated fleet until interrupted, or ``generate`` a scenario file.

A thin typer layer over ``runtime.prepare`` and ``FleetServer``: it parses flags, prints where the
inventory, truth and CA files are, which account is accepted (a password taken from the environment
is never printed; a generated demo password is), prints ``ready`` once every listener accepts
connections, and stops cleanly on SIGINT or SIGTERM. Exit codes: 0 served until stopped (or the
scenario was written), 2 bad arguments, a scenario or output file that cannot be used, or a listener
that cannot bind.

``collectors.demo`` and ``bench/`` start ``serve`` as a subprocess and read its stdout up to the line
starting with ``ready``; ``dns server:`` and the file lines are part of that contract.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from simulator import generator, scenario
from simulator.runtime import FleetOptions, Prepared, prepare
from simulator.scenario import WinrmService

PROG = "python -m simulator"
PASSWORD_ENV = "SIMULATOR_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
EXIT_USAGE = 2

# scenario.TRANSPORTS as a type, which typer offers as a choice (tests/simulator/test_cli.py keeps them equal).
Transport = Literal["negotiate", "kerberos", "ntlm", "basic"]

app = typer.Typer(
    help="Simulated Windows fleet over WinRM.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # a traceback must not print --password or $SIMULATOR_PASSWORD
)


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(EXIT_USAGE)


# --- serve -----------------------------------------------------------------------------------------


@app.command()
def serve(
    hosts: Annotated[int, typer.Option("--hosts", help="Number of generated hosts.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the generated fleet.")] = 1,
    scenario_path: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario JSON/YAML instead of a generated fleet.")
    ] = None,
    inventory_out: Annotated[
        Path | None, typer.Option("--inventory-out", help="Write the collector inventory CSV here.")
    ] = None,
    truth_out: Annotated[Path | None, typer.Option("--truth-out", help="Write the ground-truth JSON here.")] = None,
    ca_out: Annotated[
        Path | None, typer.Option("--ca-out", help="Write the CA certificate (PEM) of HTTPS hosts here.")
    ] = None,
    username: Annotated[str, typer.Option("--username", help="The account every host accepts.")] = "simadmin",
    password: Annotated[
        str | None, typer.Option("--password", help=f"Its password (default: ${PASSWORD_ENV}, else generated).")
    ] = None,
    https: Annotated[bool, typer.Option("--https", help="Serve every host over HTTPS.")] = False,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Latency added to every reply.")] = 0,
    address_base: Annotated[
        str, typer.Option("--address-base", help="First host is base+1 (127.0.0.0/8).")
    ] = "127.10.0.0",
    port: Annotated[int, typer.Option("--port", help="WinRM HTTP port (0 = any free port).")] = 5985,
    https_port: Annotated[int, typer.Option("--https-port", help="WinRM HTTPS port (0 = any free port).")] = 5986,
    kms_port: Annotated[int, typer.Option("--kms-port", help="TCP port of listening KMS hosts (0 = free port).")] = 0,
    dns_port: Annotated[int, typer.Option("--dns-port", help="UDP port of the DNS responder (0 = free port).")] = 0,
    basic: Annotated[bool, typer.Option("--basic", help="Enable Basic in every host's WinRM service.")] = False,
    allow_unencrypted: Annotated[
        bool,
        typer.Option("--allow-unencrypted", help="Set AllowUnencrypted on every host (Basic or clear text over HTTP)."),
    ] = False,
    keytab: Annotated[
        Path | None, typer.Option("--keytab", help="Keytab with the hosts' HTTP/<fqdn> keys: serve Kerberos.")
    ] = None,
    names: Annotated[bool, typer.Option("--names", help="List hosts by DNS name in the inventory (Kerberos).")] = False,
    spns: Annotated[
        bool, typer.Option("--spns", help="Add each host's HTTP/<fqdn> SPN to the inventory (Kerberos).")
    ] = False,
    transport: Annotated[
        Transport | None,
        typer.Option(
            "--transport",
            metavar="<transport>",
            help=f"The transport every inventory row names: {', '.join(get_args(Transport))}.",
        ),
    ] = None,
) -> None:
    """Serve a fleet on 127.0.0.0/8 until interrupted."""
    options = FleetOptions(
        hosts=hosts, seed=seed, scenario_path=scenario_path, username=username,
        password=password or os.environ.get(PASSWORD_ENV), https=https, latency_ms=latency_ms,
        address_base=address_base, http_port=port, https_port=https_port, kms_port=kms_port,
        dns_port=dns_port, inventory_out=inventory_out, truth_out=truth_out, ca_out=ca_out,
        winrm=_service(basic, allow_unencrypted), transport=transport, names=names, spns=spns, keytab=keytab,
    )  # fmt: skip
    try:
        prepared = prepare(options)
    except (scenario.ScenarioError, ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    _announce(prepared, from_env=password is None and PASSWORD_ENV in os.environ)
    try:
        asyncio.run(_serve(prepared))
    except OSError as exc:
        raise _fail(f"cannot listen: {exc}") from None


def _service(basic: bool, allow_unencrypted: bool) -> WinrmService | None:
    if not (basic or allow_unencrypted):
        return None  # each host keeps its own settings: Windows' defaults unless the scenario says otherwise
    return WinrmService(basic=basic, allow_unencrypted=allow_unencrypted)


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
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # Windows: no signal handlers on the event loop
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await prepared.server.start()
    print("ready: every listener accepts connections (Ctrl-C to stop)", flush=True)
    try:
        await stop.wait()
    finally:
        await prepared.server.stop()
        print("stopped", flush=True)


# --- generate --------------------------------------------------------------------------------------


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Scenario JSON to write.")],
    hosts: Annotated[int, typer.Option("--hosts", min=1, help="Number of hosts.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    fault_share: Annotated[
        float, typer.Option("--fault-share", min=0.0, max=1.0, help="Share of hosts that misbehave on the wire.")
    ] = 0.02,
    hostile_share: Annotated[
        float, typer.Option("--hostile-share", min=0.0, max=1.0, help="Share of hosts with hostile text.")
    ] = 0.0,
) -> None:
    """Write a generated scenario file."""
    try:
        scenario.save(generator.generate(hosts, seed, fault_share=fault_share, hostile_share=hostile_share), out)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"scenario with {hosts} hosts written to {out}")


def main() -> None:
    """Run the command line (``python -m simulator``); exits with the command's code."""
    app(prog_name=PROG)
