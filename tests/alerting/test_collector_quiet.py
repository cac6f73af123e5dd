"""A collector is quiet after ``alert_quiet_factor`` times *its own* interval without a complete run: the spacing
of its recent runs (``poll --watch N``, a nightly job, the job queue's schedule), else ``poll_interval_s``. The job
queue's schedulers count as one collector, and a machine retired a month ago is forgotten. Both backends, runs
recorded as the collectors record them (``models.runs``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from alerting import run_alerts
from alerting.rules import BY_NAME
from models import alerts, runs
from models.enums import RunStatus
from tests.alerting import fleetstate

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
RULES = (BY_NAME["collector_quiet"],)


def ran(engine: Engine, collector: str, starts: Iterable[datetime], *, shard: str | None = None) -> None:
    """Complete runs of ``collector`` that started at ``starts`` and took a minute each."""
    with engine.begin() as conn:
        for started in starts:
            run = runs.start_run(conn, collector=collector, shard=shard, hosts_total=10, started_at=started)
            runs.finish_run(conn, run, finished_at=started + MINUTE, status=RunStatus.COMPLETE)


def quiet(engine: Engine, tmp_path, at: datetime) -> dict[str, dict]:
    """The quiet collectors at ``at``, with their facts (the default settings: 2 x 3600 s)."""
    run_alerts(engine, fleetstate.settings(tmp_path), now=at, notify_urls=[], rules=RULES)
    with engine.connect() as conn:
        return {a.subject: a.facts for a in alerts.list_alerts(conn, state=alerts.FIRING)}


def test_a_collector_is_quiet_after_twice_its_own_interval(engine, tmp_path):
    ran(engine, "watch-10min", (NOW - n * 10 * MINUTE for n in range(5, 0, -1)))  # poll --watch 600
    ran(engine, "nightly", (NOW - HOUR - n * 24 * HOUR for n in range(4, -1, -1)))  # a daily job
    assert quiet(engine, tmp_path, NOW) == {}

    # 19 minutes after the last complete run: within 2 x 10 min; 2 hours on: quiet, though within 2 x 1 h of
    # the default interval. The nightly job, 2 hours after its run, is on time.
    assert quiet(engine, tmp_path, NOW + 10 * MINUTE) == {}
    found = quiet(engine, tmp_path, NOW + 40 * MINUTE)
    assert set(found) == {"watch-10min"}
    assert (found["watch-10min"]["poll_interval_s"], found["watch-10min"]["quiet_after_s"]) == (600, 1200)
    assert set(quiet(engine, tmp_path, NOW + 46 * HOUR)) == {"watch-10min"}
    assert set(quiet(engine, tmp_path, NOW + 48 * HOUR)) == {"watch-10min", "nightly"}


def test_with_too_few_runs_the_setting_gives_the_interval(engine, tmp_path):
    ran(engine, "new-collector", (NOW - 10 * MINUTE, NOW))  # one gap is not a pattern yet
    assert quiet(engine, tmp_path, NOW + HOUR + 50 * MINUTE) == {}
    found = quiet(engine, tmp_path, NOW + 2 * HOUR + 2 * MINUTE)  # the last run finished at NOW + 1 min
    assert found["new-collector"]["poll_interval_s"] == 3600


def test_shards_of_one_poll_are_one_run(engine, tmp_path):
    for shard in ("1/4", "2/4", "3/4", "4/4"):  # four processes started together every hour
        ran(
            engine,
            "sharded",
            (NOW - n * HOUR + int(shard[0]) * 5 * timedelta(seconds=1) for n in range(5)),
            shard=shard,
        )
    assert quiet(engine, tmp_path, NOW + 30 * MINUTE) == {}
    assert quiet(engine, tmp_path, NOW + 2 * HOUR + 5 * MINUTE)["sharded"]["poll_interval_s"] == 3600


def test_the_job_queue_is_one_collector_whichever_scheduler_enqueued(engine, tmp_path):
    # sched-a enqueued every 15 minutes, then failed over to sched-b an hour ago
    ran(engine, "sched-a/queue", (NOW - HOUR - n * 15 * MINUTE for n in range(8, 0, -1)))
    ran(engine, "sched-b/queue", (NOW - n * 15 * MINUTE for n in range(4, -1, -1)))
    assert quiet(engine, tmp_path, NOW + 20 * MINUTE) == {}
    found = quiet(engine, tmp_path, NOW + 40 * MINUTE)
    assert set(found) == {"queue"} and found["queue"]["poll_interval_s"] == 900


def test_a_collector_retired_a_month_ago_is_forgotten(engine, tmp_path):
    ran(engine, "retired", (NOW - 31 * 24 * HOUR - n * HOUR for n in range(5)))
    ran(engine, "recently-stopped", (NOW - 29 * 24 * HOUR - n * HOUR for n in range(5)))
    assert set(quiet(engine, tmp_path, NOW)) == {"recently-stopped"}
