"""``python -m collectors metrics`` as an administrator runs it: /metrics over HTTP equals the query layer.

The exporter runs as a subprocess against real databases (a seeded fleet on SQLite and PostgreSQL, and a
real poll of the simulated fleet); each scrape is parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from models import kms, queries, runs, store
from models.db import make_engine, upgrade
from models.enums import GRACE_STATUSES, FailureClass
from models.filters import HostFilter
from models.records import HostIdentity
from models.seed import HOSTILE_NAME, HOSTILE_SITE, SITES, seed_fleet
from tests.collectors.helpers import poll
from tests.prometheus_exporter import ROOT, Scrape, exporter_env, free_port, metrics_command, running_exporter

STALE_AFTER = timedelta(hours=2)  # the stale_after_hours default


@pytest.fixture
def seeded_url(db_url: str) -> str:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        seed_fleet(conn, now=datetime.now(UTC))
    engine.dispose()
    return db_url


def query_layer(url: str) -> dict[str, object]:
    engine: Engine = make_engine(url)
    now = datetime.now(UTC)
    with engine.connect() as conn:
        out = {
            "summary": queries.fleet_summary(conn, now=now, stale_after=STALE_AFTER),
            "by_code": queries.failures_by_code(conn, HostFilter()),
            "kms": kms.kms_hosts(conn).set_index("host"),
            "runs": runs.poll_runs(conn),
            "grace_14d": queries.grace_expiring(conn, within_days=14, limit=100_000, now=now),
            "sites": {site: queries.host_count(conn, HostFilter(sites=(site,))) for site in SITES},
        }
    engine.dispose()
    return out


def assert_equals_query_layer(scrape: Scrape, url: str) -> None:
    q = query_layer(url)
    summary = q["summary"]
    assert isinstance(summary, queries.FleetSummary)
    assert scrape.value("activation_monitor_database_up") == 1
    assert scrape.total("activation_monitor_hosts") == summary.hosts
    assert scrape.total("activation_monitor_hosts", license_status="Licensed") == summary.activated
    statuses = scrape.by("activation_monitor_hosts", "license_status")
    assert sum(statuses.get(s.value, 0) for s in GRACE_STATUSES) == summary.in_grace
    assert statuses.get("Unlicensed", 0) + statuses.get("Notification", 0) == summary.unlicensed
    assert scrape.total("activation_monitor_hosts_unreachable") == summary.unreachable
    assert scrape.value("activation_monitor_hosts_stale") == summary.stale
    assert scrape.value("activation_monitor_hosts_renewal_failing") == summary.at_risk

    codes = scrape.by("activation_monitor_hosts_by_error_code", "code")
    frame = q["by_code"]
    assert {c: n for c, n in codes.items() if n} == dict(zip(frame.error_code, frame.hosts, strict=True))
    assert sum(codes.values()) == summary.failing
    sites = scrape.by("activation_monitor_hosts", "site")
    assert {s: sites.get(s, 0) for s in SITES} == q["sites"]

    within = scrape.by("activation_monitor_hosts_by_grace_end", "within")
    soon = within["expired"] + within["1d"] + within["7d"] + within["14d"]
    assert soon == len(q["grace_14d"]) == scrape.value("activation_monitor_hosts_grace_ending_soon")

    table = q["kms"]
    assert set(scrape.by("activation_monitor_kms_host_threshold", "kms_host")) == set(table.index)
    for host, row in table.iterrows():
        if pd.isna(row.current_count):  # never read: no count, but its threshold, clients and health
            assert not scrape.of("activation_monitor_kms_host_count", kms_host=host)
        else:
            assert scrape.value("activation_monitor_kms_host_count", kms_host=host) == row.current_count
        assert scrape.value("activation_monitor_kms_host_threshold", kms_host=host) == row.threshold
        assert scrape.value("activation_monitor_kms_host_clients", kms_host=host) == row.clients
        assert scrape.value("activation_monitor_kms_host_failing_clients", kms_host=host) == row.failing_here
        assert scrape.value("activation_monitor_kms_host_health", kms_host=host, state=row.state) == 1

    newest = q["runs"].iloc[0]
    collector = {"collector": newest.collector}
    assert scrape.value("activation_monitor_poll_run_hosts", **collector) == newest.hosts_total
    assert scrape.value("activation_monitor_poll_run_succeeded", **collector) == newest.succeeded
    assert scrape.value("activation_monitor_poll_run_duration_seconds", **collector) == pytest.approx(newest.duration_s)
    for c in FailureClass:
        failed = scrape.value("activation_monitor_poll_run_failures", **collector, **{"class": c.value})
        assert failed == newest[f"failed_{c.value}"]


def test_a_scrape_shows_the_query_layers_numbers(seeded_url, tmp_path):
    with running_exporter(seeded_url, tmp_path) as exporter:
        scrape = exporter.scrape()
        assert_equals_query_layer(scrape, seeded_url)
        assert scrape.value("activation_monitor_poll_run_complete", collector="seed") == 1
        assert 0 <= scrape.value("activation_monitor_poll_run_age_seconds", collector="seed") < 3600
    assert exporter.returncode == 0, exporter.stderr  # SIGTERM stops it cleanly
    assert "serving http://127.0.0.1:" in exporter.stderr


def test_the_settings_thresholds_and_warning_days_apply(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.begin() as conn:
        seed_fleet(conn, now=datetime.now(UTC))
    engine.dispose()
    settings = {"ACTIVATION_KMS_CLIENT_THRESHOLD": "35", "ACTIVATION_GRACE_WARNING_DAYS": "7"}
    with running_exporter(sqlite_url, tmp_path, settings=settings) as exporter:
        scrape = exporter.scrape()
    thresholds = scrape.by("activation_monitor_kms_host_threshold", "kms_host")
    counts = scrape.by("activation_monitor_kms_host_count", "kms_host")
    # KMS01 counts 30, KMS02 12, KMS03 3, KMS04 41 (Windows); KMS05 8 (Office)
    assert thresholds == {"10.1.0.10": 35, "10.1.0.11": 35, "10.1.0.12": 5, "10.1.0.13": 35, "10.1.0.14": 5}
    below = {host for host, n in counts.items() if n < thresholds[host]}
    assert below == {"10.1.0.10", "10.1.0.11", "10.1.0.12"}
    within = scrape.by("activation_monitor_hosts_by_grace_end", "within")
    assert scrape.value("activation_monitor_hosts_grace_ending_soon") == within["expired"] + within["1d"] + within["7d"]


def test_a_real_poll_of_the_simulated_fleet(http_fleet, sqlite_url, tmp_path):
    summary = poll(http_fleet, sqlite_url, tmp_path / "spool")
    with running_exporter(sqlite_url, tmp_path) as exporter:
        scrape = exporter.scrape()
    assert_equals_query_layer(scrape, sqlite_url)
    assert scrape.total("activation_monitor_hosts") == len(http_fleet.truth)
    for name, n in summary.failures.items():
        assert scrape.value("activation_monitor_poll_run_failures", **{"class": name}) == n
    assert scrape.total("activation_monitor_kms_host_count") > 0, "the fleet stages KMS hosts"


def test_no_series_names_a_host_and_host_text_is_cleaned(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    now = datetime.now(UTC)
    hostile = "\u202eevil <script>alert(1)</script>\x07 " + "x" * 300
    extra = [HostIdentity(f"extra{i}.corp.example", site=f"Branch {i:03d}") for i in range(120)]
    extra += [HostIdentity(f"rtl{i}.corp.example", site=hostile) for i in range(3)]
    with engine.begin() as conn:
        seeded = seed_fleet(conn, now=now)
        store.upsert_inventory(conn, extra, now=now)
        kms_hosts = set(kms.kms_hosts(conn)["host"])
    engine.dispose()
    with running_exporter(sqlite_url, tmp_path) as exporter:
        scrape = exporter.scrape()

    hosts = {h.name for h in seeded} | {h.computer_name for h in seeded} | {h.name for h in extra}
    values = {v for s in scrape.samples for v in s.labels.values()}
    assert values & (hosts - kms_hosts) == set()
    for value in values:
        assert len(value) <= 64
        assert not set(value) & set('<>"\\'), value
        assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in value), ascii(value)
    sites = scrape.by("activation_monitor_hosts", "site")
    assert "=HYPERLINK(http://evil.example,x)" in sites  # the seed's HOSTILE_SITE, quotes removed
    assert HOSTILE_SITE not in sites and HOSTILE_NAME not in values
    assert [s for s in sites if s.startswith("evil script")] == ["evil scriptalert(1)/script " + "x" * 36 + "…"]
    # 126 sites: the 100 most common keep their label, the rest are counted under (other)
    assert len(sites) == 101 and sites["(other)"] > 0
    assert scrape.value("activation_monitor_label_values_folded", label="site") == 26
    assert scrape.total("activation_monitor_hosts") == len(seeded) + len(extra)


@pytest.mark.parametrize("broken", ["closed_pg_port", "sqlite_under_a_file"])
def test_an_unreadable_database_still_gets_an_answer(broken, tmp_path):
    password = "S3cret-pw-for-the-exporter"
    if broken == "closed_pg_port":
        url = f"postgresql+psycopg://monitor:{password}@127.0.0.1:{free_port()}/activation"
    else:
        (tmp_path / "a-file").write_text("not a folder")
        url = f"sqlite:///{tmp_path}/a-file/activation-monitor.db"
    with running_exporter(url, tmp_path) as exporter:
        first, second = exporter.scrape(), exporter.scrape()
    for scrape in (first, second):
        assert scrape.value("activation_monitor_database_up") == 0
        assert not scrape.of("activation_monitor_hosts"), "no numbers from a database that cannot be read"
    assert second.value("activation_monitor_database_read_errors_total") >= 2
    assert exporter.returncode == 0
    assert "cannot read the database" in exporter.stderr and password not in exporter.stderr
    assert len([line for line in exporter.stderr.splitlines() if "cannot read" in line]) == 1  # not every scrape


def test_it_never_migrates_a_database_it_reads(tmp_path):
    """A monitoring role may only read: an empty database is reported, not given our schema."""
    path = tmp_path / "empty.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
    with running_exporter(f"sqlite:///{path}", tmp_path) as exporter:
        scrape = exporter.scrape()
    assert scrape.value("activation_monitor_database_up") == 0
    assert "alembic upgrade head" in exporter.stderr
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars().all()
    engine.dispose()
    assert tables == ["unrelated"]


def test_concurrent_scrapes_share_one_database_read(seeded_url, tmp_path):
    with running_exporter(seeded_url, tmp_path, cache_seconds=3600) as exporter, ThreadPoolExecutor(8) as pool:
        scrapes = list(pool.map(lambda _: exporter.scrape(), range(16)))
    assert {s.value("activation_monitor_database_reads_total") for s in scrapes} == {1}
    assert len({s.total("activation_monitor_hosts") for s in scrapes}) == 1


def _migrated(url: str) -> str:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_without_a_cache_every_scrape_reads_again(sqlite_url, tmp_path):
    sqlite_url = _migrated(sqlite_url)
    with running_exporter(sqlite_url, tmp_path, cache_seconds=0) as exporter:
        before = exporter.scrape().value("activation_monitor_database_reads_total")
        after = exporter.scrape().value("activation_monitor_database_reads_total")
    assert after == before + 1


def test_ipv6_loopback(sqlite_url, tmp_path):
    try:
        free_port("::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback on this machine: {exc}")
    sqlite_url = _migrated(sqlite_url)
    with running_exporter(sqlite_url, tmp_path, host="::1") as exporter:
        assert exporter.url.startswith("http://[::1]:")
        assert exporter.scrape().value("activation_monitor_database_up") == 1
    assert exporter.returncode == 0


def test_ctrl_c_stops_it_cleanly(sqlite_url, tmp_path):
    with running_exporter(sqlite_url, tmp_path) as exporter:
        exporter.process.send_signal(signal.SIGINT)
        assert exporter.process.wait(timeout=30) == 0
    assert "stopping (SIGINT)" in exporter.stderr and "Traceback" not in exporter.stderr


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("nonsense:port", "--listen: expected HOST:PORT"),
        ("127.0.0.1:0", "--listen: expected HOST:PORT"),
        ("127.0.0.1:70000", "--listen: expected HOST:PORT"),
        ("[::1", "--listen: expected HOST:PORT"),
        ("192.0.2.1:9464", "cannot serve there"),  # an address of no interface here (TEST-NET-1)
        ("in-use", "cannot serve there: Address already in use"),
    ],
)
def test_a_bad_listen_address_is_one_line_and_exit_2(listen, message, sqlite_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        if listen == "in-use":
            listen = f"127.0.0.1:{taken.getsockname()[1]}"
        run = subprocess.run(
            metrics_command("--listen", listen, "--db", sqlite_url),
            cwd=ROOT,
            env=exporter_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_it_is_a_documented_command():
    run = subprocess.run(metrics_command("--help"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "--listen" in run.stdout and "Prometheus" in run.stdout
