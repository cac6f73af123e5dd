"""Planning a queued run: queue names per site, batches, the schedule slot, what a job carries, and that no
secret of the scheduler's reaches a job or a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, literal_column, select, table, text

from collectors.inventory import Target
from collectors.queue import parse_every, plan_batches, queue_name, queue_names, require_postgresql, run_key, slot_start
from collectors.queue.app import DEFAULT_QUEUE, QueueError, target_of, target_ref
from collectors.queue.schedule import batch_jobs
from models import db
from tests.collectors.queue_fleet import ROOT


def target(host: str, site: str | None = None, **fields: object) -> Target:
    return Target(host=host, port=5985, site=site, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("site", "queue"),
    [
        ("Taipei", "taipei"),
        ("TAIPEI", "taipei"),
        (" Kaohsiung ", "kaohsiung"),
        (None, DEFAULT_QUEUE),
        ("", DEFAULT_QUEUE),
    ],
)
def test_a_plain_site_name_is_its_queue(site, queue):
    assert queue_name(site) == queue


def test_other_site_names_get_a_distinct_channel_safe_queue():
    names = ["Retail stores", "retail-stores", "臺北總部", "台北", "x" * 300, "a/b", "a b"]
    queues = [queue_name(n) for n in names]
    assert len(set(queues)) == len(names)  # no two sites share a queue
    assert all(len(q.encode()) <= 40 and q.isascii() and " " not in q for q in queues)
    assert queue_name("臺北總部").startswith("site-")
    assert queue_names(["Taipei", " ", "taipei", "default"]) == ("taipei", DEFAULT_QUEUE)


def test_batches_are_cut_per_site_in_a_stable_order():
    hosts = [target(f"10.0.0.{i}", "Taipei" if i % 3 else "Kaohsiung") for i in range(1, 11)] + [target("ws1")]
    planned = plan_batches(reversed(hosts), batch_size=3)
    assert [(p.plan.batch_no, p.plan.queue, p.plan.hosts) for p in planned] == [
        (1, "default", 1), (2, "kaohsiung", 3), (3, "taipei", 3), (4, "taipei", 3), (5, "taipei", 1),
    ]  # fmt: skip
    assert planned == plan_batches(hosts, batch_size=3)  # inventory order does not matter
    assert sorted(t.host for p in planned for t in p.targets) == sorted(t.host for t in hosts)
    assert {t.site for t in planned[1].targets} == {"Kaohsiung"} and planned[1].plan.site == "Kaohsiung"


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("15m", 900), ("90s", 90), ("1d", 86400), ("600", 600)])
def test_intervals_read_as_a_person_writes_them(text, seconds):
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1h", "10s", "32d", "1w", "1h30m"])
def test_intervals_out_of_bounds_or_unreadable_are_refused(text):
    with pytest.raises(ValueError, match="--every"):
        parse_every(text)


def test_every_moment_of_a_slot_names_the_same_run():
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    moments = [start, start + timedelta(minutes=59, seconds=59), start.astimezone(timezone(timedelta(hours=8)))]
    assert {run_key(slot_start(m, 3600), 3600) for m in moments} == {"every-3600s-from-2026-11-26T09:00:00Z"}
    assert run_key(slot_start(start + timedelta(hours=1), 3600), 3600) != run_key(start, 3600)
    assert run_key(slot_start(start, 86400), 86400) != run_key(slot_start(start, 3600), 3600)


def test_a_job_carries_how_to_reach_each_host():
    host = target("ws1.corp.example", "Taipei", scheme="https", transport="kerberos", credential="corp",
                  tags=("kiosk",), spn="HTTP/ws1.corp.example")  # fmt: skip
    [job] = batch_jobs(7, "every-3600s-from-x", plan_batches([host], 200))
    assert job.queue == "taipei" and job.queueing_lock == "every-3600s-from-x/1"
    assert target_of(json.loads(json.dumps(job.task_kwargs))["hosts"][0]) == host
    assert target_ref(host)["credential"] == "corp"


def test_a_scheduled_run_stores_no_secret_anywhere(pg_url, tmp_path):
    in_file, in_env = "Fi1e-Secret-7c31d9", "Env-Secret-55ab02"
    secrets = tmp_path / "credentials.env"
    secrets.write_text(f"ACTIVATION_CRED_CORP_USERNAME=CORP\\poller\nACTIVATION_CRED_CORP_PASSWORD={in_file}\n")
    secrets.chmod(0o600)
    inventory = tmp_path / "fleet.csv"
    inventory.write_text(
        "host,port,scheme,transport,credential,site,tags,spn\n"
        "ws1.corp.example,5985,http,negotiate,corp,Taipei,kiosk,\n"
        "ws2.corp.example,5986,https,basic,default,Kaohsiung,,\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    env.update({"ACTIVATION_DB_URL": pg_url, "ACTIVATION_SECRETS_FILE": str(secrets),
                "ACTIVATION_DATA_DIR": str(tmp_path / "data"), "ACTIVATION_CRED_DEFAULT_USERNAME": "poller",
                "ACTIVATION_CRED_DEFAULT_PASSWORD": in_env})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "collectors", "schedule", "--inventory", str(inventory), "--once", "--every", "1d"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "enqueued: 2 hosts in 2 batches" in done.stdout
    engine = db.make_engine(pg_url)
    try:
        with engine.connect() as conn:
            jobs = conn.execute(text("SELECT args::text FROM procrastinate_jobs")).scalars().all()
            tables = (
                conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"))
                .scalars()
                .all()
            )
            rows_as_text = func.coalesce(func.string_agg(literal_column("t::text"), "\n"), "")
            dumped = {name: conn.execute(select(rows_as_text).select_from(table(name).alias("t"))).scalar_one()
                      for name in tables}  # fmt: skip
    finally:
        engine.dispose()
    assert len(jobs) == 2 and any('"credential": "corp"' in args for args in jobs)  # the name travels
    assert "hosts" in dumped and "ws1.corp.example" in dumped["hosts"]  # the search does see the data
    for secret in (in_file, in_env):
        assert not [args for args in jobs if secret in args]
        assert [name for name, content in dumped.items() if secret in content] == []
    assert in_file not in done.stdout + done.stderr and in_env not in done.stdout + done.stderr


def test_a_job_with_an_unknown_transport_is_refused():
    ref = {**target_ref(target("ws1")), "transport": "credssp"}
    with pytest.raises(ValueError, match="transport"):
        target_of(ref)


@pytest.mark.parametrize("url", ["sqlite:///data/am.db", "mysql://x@db/am", "not a url"])
def test_the_queue_needs_postgresql(url):
    with pytest.raises(QueueError, match=r"^needs PostgreSQL"):
        require_postgresql(url)
    require_postgresql("postgresql+psycopg://am@db.corp.example/am")
