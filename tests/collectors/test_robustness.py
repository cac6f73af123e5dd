"""Faults a fleet produces and the collector must survive: dead worker processes, hostile replies during
the handshake, optional WMI classes that misbehave and bugs on our side; and the KMS post-pass reading only
what it needs. Secrets in tracebacks and child environments, and corrupt spool files, are in
test_robustness_secrets_and_spool.py."""

from __future__ import annotations

import base64
import http.client
import http.server
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from spnego._ntlm_raw import messages as ntlm
from sqlalchemy import text

from collectors import wmi
from collectors.credentials import Credential
from collectors.inventory import Target
from collectors.probes import Probes
from collectors.run import (
    PollContext,
    RunOptions,
    poll_host,
    run_poll,
    safe_poll,
)
from collectors.run.kms_pass import stored_kms_clients
from collectors.spool import Spool
from collectors.transport import WsmanOptions
from models import db, kms, queries
from models.enums import ActivationType, FailureClass, ProductType, RunStatus
from models.filters import HostFilter
from models.records import HostFailure, HostObservation
from tests.collectors.helpers import fleet_context, poll, targets_of

PASSWORD = "Tr0ub4dor&3-not-for-logs"  # a test password that must never be printed


# --- small local servers ---------------------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    bytes_sent = 0
    reply: Callable[[http.server.BaseHTTPRequestHandler, bytes], None]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.reply(self, body)  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def local_server(reply: Callable[[http.server.BaseHTTPRequestHandler, bytes], None]) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.reply = reply
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def ntlm_challenge() -> str:
    flags = (
        ntlm.NegotiateFlags.unicode
        | ntlm.NegotiateFlags.ntlm
        | ntlm.NegotiateFlags.extended_session_security
        | ntlm.NegotiateFlags.target_info
        | ntlm.NegotiateFlags.seal
        | ntlm.NegotiateFlags.sign
        | ntlm.NegotiateFlags.key_128
        | ntlm.NegotiateFlags.key_exch
        | ntlm.NegotiateFlags.always_sign
    )
    info = ntlm.TargetInfo({ntlm.AvId.nb_computer_name: "WS01", ntlm.AvId.nb_domain_name: "CORP"})
    token = ntlm.Challenge(flags=flags, server_challenge=b"\x01" * 8, target_name="CORP", target_info=info).pack()
    return base64.b64encode(token).decode()


def local_context(**options: Any) -> PollContext:
    return PollContext(
        credentials={"default": Credential("default", "reader", SecretStr(PASSWORD))},
        probes=Probes.for_settings(None, connect_timeout_s=1.0),
        options=WsmanOptions(connect_timeout_s=2.0, read_timeout_s=10.0, **options),
        host_timeout_s=10.0,
    )


def local_target(server: _Server, transport: str = "ntlm") -> Target:
    return Target("127.0.0.1", server.server_address[1], transport=transport)  # type: ignore[arg-type]


# --- 1. a worker process that dies -----------------------------------------------------------------


def test_a_dead_worker_process_ends_promptly_and_loses_no_host(http_fleet, sqlite_url, tmp_path):
    killed: list[int] = []

    def kill_one_child(progress: Any) -> None:
        children = multiprocessing.active_children()
        if progress.done >= 5 and not killed and children:
            killed.append(children[0].pid or 0)
            os.kill(children[0].pid or 0, signal.SIGKILL)

    targets = targets_of(http_fleet)
    summary = run_poll(
        targets,
        fleet_context(http_fleet),
        database_url=sqlite_url,
        spool=Spool(tmp_path / "spool"),
        options=RunOptions(concurrency=4, processes=2, run_timeout_s=90),
        on_progress=kill_one_child,
    )
    assert killed
    assert summary.duration_s < 45, "the run waited for the dead worker"
    assert summary.status is RunStatus.COMPLETE
    assert summary.succeeded + summary.failed == len(targets)
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        attempted = conn.execute(text("SELECT COUNT(*) FROM hosts WHERE last_attempt_at IS NOT NULL")).scalar_one()
        died = conn.execute(
            text("SELECT COUNT(*) FROM hosts WHERE last_failure_reason = 'worker process died (exit -9)'")
        ).scalar_one()
    engine.dispose()
    assert attempted == len(targets)
    assert died >= 1


# --- 2. the reply cap holds during the NTLM handshake ----------------------------------------------


def test_a_huge_body_on_the_ntlm_challenge_is_refused_at_the_cap():
    challenge = ntlm_challenge()

    def huge_401(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", f"NTLM {challenge}")
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Connection", "close")  # no Content-Length: the size shows only by reading
        handler.end_headers()
        handler.close_connection = True
        chunk = b"x" * 65536
        try:
            for _ in range(1024):  # 64 MB
                handler.wfile.write(chunk)
                handler.server.bytes_sent += len(chunk)  # type: ignore[attr-defined]
        except OSError:
            pass  # the collector hung up, as it should

    with local_server(huge_401) as server:
        started = time.monotonic()
        result = poll_host(local_target(server), local_context(max_reply_bytes=1024 * 1024))
        elapsed = time.monotonic() - started
        time.sleep(0.2)
        sent = server.bytes_sent
    assert isinstance(result, HostFailure)
    assert result.failure_class is FailureClass.PROTOCOL
    assert "cap" in result.reason
    assert elapsed < 8
    assert sent < 32 * 1024 * 1024, f"the collector read {sent} bytes of the handshake body"


def test_a_malformed_ntlm_challenge_is_the_hosts_protocol_fault():
    def bad_challenge(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        handler.send_response(401)
        handler.send_header("WWW-Authenticate", "NTLM " + base64.b64encode(b"NTLMSSP\x00\x02\x00\x00\x00").decode())
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with local_server(bad_challenge) as server:
        result = safe_poll(local_target(server), local_context())
    assert isinstance(result, HostFailure)
    assert result.failure_class is FailureClass.PROTOCOL
    assert "malformed NTLM challenge" in result.reason


# --- 3. an optional WMI class that misbehaves loses only its fields --------------------------------

WSMAN_TIMEOUT_FAULT = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"><s:Body><s:Fault>'
    "<s:Code><s:Value>s:Receiver</s:Value></s:Code>"
    '<s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the '
    "time specified in OperationTimeout.</s:Text></s:Reason>"
    '<s:Detail><f:WSManFault Code="2150858793" Machine="ws01"/></s:Detail>'
    "</s:Fault></s:Body></s:Envelope>"
)


def _misbehaving(mode: str) -> tuple[int, bytes]:
    if mode == "operation timeout":
        return 500, WSMAN_TIMEOUT_FAULT.encode()
    if mode == "not xml":
        return 200, b"<s:Envelope><unclosed"
    return 200, b"<x>" + b"y" * (2 * 1024 * 1024) + b"</x>"  # oversized


@contextmanager
def faulting_proxy(upstream: Target, wmi_class: str, mode: str, seen: list[str]) -> Iterator[_Server]:
    """Forwards WS-Man (Basic over HTTP, so the WQL is readable) to a simulated host, except ``wmi_class``."""

    def forward(handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        seen.append(body.decode("utf-8", "replace"))
        if f"FROM {wmi_class}".encode() in body:
            status, reply, challenges = *_misbehaving(mode), []
        else:
            conn = http.client.HTTPConnection(upstream.host, upstream.port, timeout=10)
            headers = {k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "content-type")}
            conn.request("POST", "/wsman", body, headers)
            answer = conn.getresponse()
            status, reply, challenges = answer.status, answer.read(), answer.headers.get_all("WWW-Authenticate") or []
            conn.close()
        handler.send_response(status)
        for challenge in challenges:
            handler.send_header("WWW-Authenticate", challenge)
        handler.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    with local_server(forward) as server:
        yield server


def _healthy_kms_client(fleet: Any) -> Target:
    truth = {t["host"]: t for t in fleet.truth}
    return next(
        t for t in targets_of(fleet) if not truth[t.host]["fault"] and truth[t.host]["activation_type"] == "KMS client"
    )


@pytest.mark.parametrize("mode", ["operation timeout", "not xml", "oversized"])
def test_an_optional_class_that_misbehaves_loses_only_its_fields(lab_http_fleet, mode):
    upstream = _healthy_kms_client(lab_http_fleet)
    expected = next(t for t in lab_http_fleet.truth if t["host"] == upstream.host)
    ctx = fleet_context(lab_http_fleet)
    ctx = replace(ctx, options=replace(ctx.options, max_reply_bytes=512 * 1024))
    with faulting_proxy(upstream, "Win32_ComputerSystem", mode, []) as proxy:
        result = poll_host(local_target(proxy, "basic"), ctx)
    assert isinstance(result, HostObservation), result
    assert result.unread == ("Win32_ComputerSystem",)  # recorded on the host, not passed over
    assert result.domain is None  # Win32_ComputerSystem's field
    assert result.os_caption == expected["os"]  # the classes after it were still read
    assert result.products and result.products[0].activation_type.value == expected["activation_type"]


def test_the_licensing_product_class_misbehaving_still_fails_the_host(lab_http_fleet):
    upstream = _healthy_kms_client(lab_http_fleet)
    with faulting_proxy(upstream, "SoftwareLicensingProduct", "not xml", []) as proxy:
        result = poll_host(local_target(proxy, "basic"), fleet_context(lab_http_fleet))
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.PROTOCOL


def test_spp_events_are_asked_for_the_last_30_days_only(lab_http_fleet):
    now = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert "TimeGenerated > '20261025093000.000000+000'" in wmi.spp_events(now).text
    truth = {t["host"]: t for t in lab_http_fleet.truth}
    needs_events = [
        t
        for t in targets_of(lab_http_fleet)
        if not truth[t.host]["fault"] and truth[t.host]["error_code"] and truth[t.host]["license_status"] != "Licensed"
    ]
    seen: list[str] = []
    for upstream in needs_events[:3]:
        with faulting_proxy(upstream, "NoSuchClass", "not xml", seen) as proxy:
            result = poll_host(local_target(proxy, "basic"), fleet_context(lab_http_fleet))
        assert isinstance(result, HostObservation)
        assert result.products[0].error_code == truth[upstream.host]["error_code"]
    event_queries = [q for q in seen if "Win32_NTLogEvent" in q]
    assert event_queries and all("TimeGenerated &gt; '" in q for q in event_queries)


# --- 4. bugs are not hidden as host faults ---------------------------------------------------------


def test_a_programming_error_is_an_internal_error_with_its_traceback(caplog):
    def buggy_factory(*args: Any) -> Any:
        return {}["protocol"]  # a KeyError: a bug on our side, not the host's

    ctx = replace(local_context(), protocol_factory=buggy_factory)
    target = Target("ws01.corp.test", 5985)
    with pytest.raises(KeyError):
        poll_host(target, ctx)
    with caplog.at_level(logging.ERROR, logger="collectors"):
        result = safe_poll(target, ctx)
    assert isinstance(result, HostFailure)
    assert result.reason.startswith("internal error: KeyError")
    assert any(r.exc_info and "internal error" in r.getMessage() for r in caplog.records)


# --- 5. the KMS post-pass reads KMS clients narrowly ----------------------------------------------


def test_kms_clients_are_read_with_one_narrow_query(http_fleet, sqlite_url, tmp_path):
    poll(http_fleet, sqlite_url, tmp_path / "spool")
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        rows = kms.kms_clients(conn)
        clients = stored_kms_clients(conn)
        flt = HostFilter(activation_types=(ActivationType.KMS_CLIENT,))
        page = queries.host_page(conn, flt, limit=10_000)
    engine.dispose()
    listed = page[page["kms_host"].notna()]
    assert rows and {r.host for r in rows} == set(listed["host"])
    assert all(r.kms_name == r.kms_name.lower() for r in rows)
    by_host = {c.host: c for c in clients}
    for row in listed.itertuples():
        client = by_host[row.host]
        assert client.kms_host == str(row.kms_host).rsplit(":", 1)[0].rstrip(".").lower()
        assert client.is_server is ProductType(row.product_type).is_server
        assert client.error_code == (row.error_code if isinstance(row.error_code, str) else None)
