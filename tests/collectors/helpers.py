"""Helpers for polling simulated fleets and comparing the database with their ground truth."""

from __future__ import annotations

import contextlib
import csv
import socket
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text

from collectors.credentials import Credential
from collectors.inventory import Target, load_inventory
from collectors.probes import Probes
from collectors.run import PollContext, RunOptions, RunSummary, run_poll
from collectors.spool import Spool
from collectors.transport import WsmanOptions
from models import db, queries
from models.filters import HostFilter
from simulator.testing import FleetHandle

HOST_TIMEOUT_S = 4.0


def fleet_context(fleet: FleetHandle, *, ca: Path | None = None, password: str | None = None) -> PollContext:
    credential = Credential("default", fleet.username, SecretStr(password or fleet.password))
    ca_path = ca or fleet.ca_path
    return PollContext(
        credentials={"default": credential},
        # 2 s: the suite runs in two processes on two cores, so a busy simulator may take a moment to accept
        probes=Probes.for_settings(fleet.dns_server, connect_timeout_s=2.0),
        options=WsmanOptions(
            connect_timeout_s=3.0, read_timeout_s=HOST_TIMEOUT_S, ca_bundle=str(ca_path) if ca_path else None
        ),
        host_timeout_s=HOST_TIMEOUT_S,
    )


def targets_of(fleet: FleetHandle, *, basic_every: int = 0) -> tuple[Target, ...]:
    """The fleet's inventory; with ``basic_every=n`` every n-th host is polled with Basic instead of NTLM."""
    path = fleet.inventory_path
    if basic_every:
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        for i, row in enumerate(rows):
            if i % basic_every == 0:
                row["transport"] = "basic"
                if row["scheme"] == "http":  # the collector refuses Basic in clear unless the row opts in
                    row["tags"] = ";".join(filter(None, (row["tags"], "allow-basic-http")))
        path = fleet.workdir / f"inventory-basic{basic_every}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return load_inventory(path).targets


def poll(
    fleet: FleetHandle,
    url: str,
    spool_dir: Path,
    targets: tuple[Target, ...] | None = None,
    **options: Any,
) -> RunSummary:
    return run_poll(
        targets if targets is not None else targets_of(fleet),
        fleet_context(fleet),
        database_url=url,
        spool=Spool(spool_dir),
        options=RunOptions(**{"concurrency": 32, **options}),
    )


def observed(url: str) -> dict[str, dict[str, Any]]:
    """What the database says about each host: the dashboard's host row plus failing checks."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            page = queries.host_page(conn, HostFilter(), limit=100_000)
            fails = conn.execute(
                text(
                    'SELECT h.name, f."check" FROM findings f JOIN hosts h ON h.id = f.host_id '
                    "WHERE f.severity = 'fail'"
                )
            ).all()
    finally:
        engine.dispose()
    rows = {r["host"]: {k: _none_for_nan(v) for k, v in r.items()} for r in page.to_dict("records")}
    for host, check in fails:
        rows.setdefault(host, {}).setdefault("failing", set()).add(check)
    return rows


def _none_for_nan(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _failure_class(poll_error: str) -> str:
    """``timeout`` from ``unreachable (timeout): host deadline of 4s exceeded``."""
    return poll_error.split("(", 1)[-1].split(")", 1)[0] if poll_error.startswith("unreachable (") else poll_error


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def mismatches(truth: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> list[str]:
    """Hosts whose stored state differs from the ground truth, described for the assertion message."""
    problems = []
    for expected in truth:
        row = rows.get(expected["host"], {})
        if expected["poll_error"]:
            got: tuple[Any, ...] = (_failure_class(_text(row.get("poll_error"))),)
            want: tuple[Any, ...] = (expected["poll_error"],)
        else:
            got = (row.get("activation_type"), row.get("license_status"), _text(row.get("error_code")),
                   sorted(row.get("failing", set())), _text(row.get("poll_error")))  # fmt: skip
            want = (expected["activation_type"], expected["license_status"], expected["error_code"],
                    sorted(expected["expected_findings"]), "")  # fmt: skip
        if got != want:
            problems.append(f"{expected['name']} ({expected['fault'] or 'healthy'}): got {got}, want {want}")
    return problems


def leaking_factory(target: Any, credential: Any, options: Any, deadline: Any) -> Any:
    """A protocol factory with a bug whose message (and cause) carry the password; importable by workers."""
    secret = credential.password.get_secret_value()
    try:
        raise OSError("inner cause mentions " + secret)
    except OSError as exc:
        raise RuntimeError("connect string user=reader;pwd=" + secret) from exc


def pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction of a proxied TCP connection until either side closes, then shut both down."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
