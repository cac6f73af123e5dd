"""Where batches go and who enqueues them: one queue per site, a worker polls only the sites it serves (a blank
list of sites is refused), two schedulers started together enqueue one run (once, and as periodic schedulers),
and on SQLite both commands say they need PostgreSQL."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from models import db
from simulator.testing import running_fleet
from tests.collectors.queue_fleet import (
    ROOT,
    batch_rows,
    inventory_with_sites,
    queue_env,
    rows,
    run_status,
    schedule,
    schedule_once,
    stop_worker,
    the_run,
    wait_for,
    workers,
)

SITES = ("Taipei", "Kaohsiung")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with running_fleet(hosts=16, seed=23, workdir=tmp_path_factory.mktemp("queue-fleet")) as fleet:
        yield fleet


@pytest.mark.skipif(os.name != "posix", reason="stops workers with POSIX signals")
def test_a_worker_serving_taipei_never_polls_a_kaohsiung_host(fleet, pg_url, tmp_path):
    env = queue_env(fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="3")
    inventory = inventory_with_sites(fleet, tmp_path / "fleet.csv", lambda n: SITES[n % 2])
    site_of = {row["host"]: row["site"] for row in csv.DictReader(inventory.open(encoding="utf-8"))}
    names_in = {site: {row["name"] for row in fleet.truth if site_of[row["host"]] == site} for site in SITES}
    schedule_once(env, inventory)
    requests_before = dict(fleet.stats["by_host"])

    def site_done(site: str) -> bool:
        return all(b.status == "done" for b in batch_rows(pg_url) if b.site == site)

    with workers(env, tmp_path, "taipei", extra=("--queues", "Taipei")) as [taipei]:
        wait_for(lambda: site_done("Taipei"), 120, "the Taipei batches")
        assert stop_worker(taipei) == 0  # SIGTERM: a clean stop
    polled = {name for name, n in fleet.stats["by_host"].items() if n > requests_before.get(name, 0)}
    assert polled and polled <= names_in["Taipei"]
    assert {b.status for b in batch_rows(pg_url) if b.site == "Kaohsiung"} == {"queued"}
    assert run_status(pg_url) == "running"

    with workers(env, tmp_path, "kaohsiung", extra=("--queues", "kaohsiung")):  # a site's queue, any case
        wait_for(lambda: run_status(pg_url) != "running", 120, "the run to end")
    assert the_run(pg_url)["status"] == "complete"
    by_site = {site: {b.worker.split(":")[0] for b in batch_rows(pg_url) if b.site == site} for site in SITES}
    assert by_site == {"Taipei": {"taipei"}, "Kaohsiung": {"kaohsiung"}}


def test_two_schedulers_started_at_once_enqueue_one_run(fleet, pg_url, tmp_path):
    env = queue_env(fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="4")
    inventory = inventory_with_sites(fleet, tmp_path / "fleet.csv", lambda n: SITES[n % 2])
    first, second = (schedule(env, inventory, "--every", "1d") for _ in range(2))
    outputs = [process.communicate(timeout=120) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [err[-1500:] for _, err in outputs]
    said = sorted(out.strip() for out, _ in outputs)
    assert said[0].startswith("run 1 enqueued: 16 hosts in 4 batches")
    assert said[1].startswith("run 1 of this slot") and said[1].endswith("was already enqueued; nothing added")
    assert len(rows(pg_url, "SELECT id FROM poll_runs")) == 1
    assert rows(pg_url, "SELECT count(*) FROM procrastinate_jobs")[0][0] == 4
    queued = rows(pg_url, "SELECT queue_name, count(*) FROM procrastinate_jobs GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in queued] == [("kaohsiung", 2), ("taipei", 2)]


@pytest.mark.parametrize("command", [["worker"], ["schedule", "--inventory", "fleet.csv", "--once"]])
def test_on_sqlite_the_queue_commands_say_they_need_postgresql(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    url = f"sqlite:///{tmp_path / 'am.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "collectors", *command, "--db", url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "needs PostgreSQL" in done.stderr
    assert not (tmp_path / "am.db").exists()  # nothing was created on the way


@pytest.mark.skipif(os.name != "posix", reason="stops workers with POSIX signals")
def test_one_worker_command_with_two_processes_polls_and_stops_cleanly(fleet, pg_url, tmp_path):
    env = queue_env(fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="4")
    schedule_once(env, inventory_with_sites(fleet, tmp_path / "fleet.csv", lambda n: None))
    with workers(env, tmp_path, "pair", extra=("--processes", "2")) as [pair]:
        wait_for(lambda: run_status(pg_url) != "running", 120, "the run to end")
        assert stop_worker(pair) == 0
    assert the_run(pg_url)["status"] == "complete"
    registered = rows(pg_url, "SELECT name, stopped_at FROM queue_workers")
    assert len(registered) == 2 and all(r.name.startswith("pair:") and r.stopped_at for r in registered)


@pytest.mark.parametrize("blank", ["", ",", " , "])
def test_a_blank_queue_list_is_refused_rather_than_read_as_every_site(blank, pg_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVATION_")}
    done = subprocess.run(
        [sys.executable, "-m", "collectors", "worker", "--db", pg_url, "--queues", blank],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--queues names no site" in done.stderr
    assert rows(pg_url, "SELECT to_regclass('queue_workers')")[0][0] is None  # it never started


@pytest.mark.skipif(os.name != "posix", reason="stops schedulers with POSIX signals")
def test_two_periodic_schedulers_enqueue_each_slot_once(fleet, pg_url, tmp_path):
    env = queue_env(fleet, tmp_path, pg_url, ACTIVATION_QUEUE_BATCH_SIZE="4")
    inventory = inventory_with_sites(fleet, tmp_path / "fleet.csv", lambda n: SITES[n % 2])
    db.open_database(pg_url).dispose()
    if time.time() % 60 > 40:  # one slot for the whole test: start in a fresh minute
        time.sleep(61 - time.time() % 60)
    command = [sys.executable, "-m", "collectors", "schedule", "--inventory", str(inventory), "--every", "1m"]
    logs = [(tmp_path / f"scheduler-{k}.log").open("w+", encoding="utf-8") for k in range(2)]
    schedulers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        for log in logs
    ]  # fmt: skip
    try:  # a scheduler started within an interval of the slot's tick enqueues that slot's run at once
        wait_for(lambda: rows(pg_url, "SELECT count(*) FROM poll_batches")[0][0] >= 4, 60, "the slot's run")
        time.sleep(3)  # time for a second enqueue, were there one
    finally:
        for process in schedulers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in schedulers]
    said = "".join(log.seek(0) or log.read() for log in logs)
    assert codes == [0, 0], said[-3000:]
    runs = rows(pg_url, "SELECT q.run_key, q.batches FROM queue_runs q")
    assert len(runs) == 1 and runs[0].run_key.startswith("every-60s-from-") and runs[0].batches == 4
    assert rows(pg_url, "SELECT count(*) FROM poll_batches")[0][0] == 4
    assert (
        rows(pg_url, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'activation_monitor.poll_batch'")[0][0]
        == 4
    )
    ticks = rows(pg_url, "SELECT defer_timestamp FROM procrastinate_periodic_defers")
    assert len(ticks) == 1  # procrastinate deferred the slot's tick once for both schedulers
    assert said.count("enqueued: 16 hosts in 4 batches") == 1
    assert "was already enqueued; nothing added" not in said  # the second guard was not needed
    assert "Traceback" not in said
