"""The job queue's procrastinate side: the ``App`` on the PostgreSQL database, queue names, and job payloads.

One queue per inventory site (``queue_name``), so a worker started for some sites polls only their hosts. A job
carries what reaches a host (name or address, port, scheme, transport, Kerberos SPN, tags) and the *name* of its
credential; the worker resolves the secret from its own environment or secrets file. Nothing here opens a
connection: ``make_app`` builds the App, its callers open it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from procrastinate import App, PsycopgConnector
from procrastinate.jobs import Job
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from collectors.inventory import SCHEMES, TRANSPORTS, Scheme, Target, Transport
from models.db import PG_CONNECT_DEFAULTS

TASK_POLL_BATCH = "activation_monitor.poll_batch"
TASK_UPKEEP = "activation_monitor.upkeep"
TASK_SCHEDULE = "activation_monitor.schedule_run"
DEFAULT_QUEUE = "default"  # hosts without a site
UPKEEP_QUEUE = "activation-monitor-upkeep"  # every worker serves it besides its sites
SCHEDULE_QUEUE_PREFIX = "activation-monitor-schedule-"  # + the interval: served by schedulers only
# procrastinate notifies on the channel "procrastinate_queue_v1#<queue>", and PostgreSQL channel names hold at
# most 63 bytes: a queue name stays within 40.
QUEUE_SLUG_CHARS = 31
POOL_MIN, POOL_MAX = 1, 4


class QueueError(Exception):
    """The job queue cannot be used as configured; the message is one line."""


def require_postgresql(database_url: str) -> None:
    """Raise ``QueueError`` unless ``database_url`` is a PostgreSQL database (the queue lives in it)."""
    try:
        backend = make_url(database_url).get_backend_name()
    except (ArgumentError, ValueError):
        backend = "?"
    if backend != "postgresql":
        raise QueueError(
            f"needs PostgreSQL: the job queue lives in the database, and this one is {backend}; "
            "set --db or ACTIVATION_DB_URL to postgresql+psycopg://..."
        )


def queue_name(site: str | None) -> str:
    """The queue of a site: its name in lower case when that is plain ``a-z 0-9 - _``, else a slug plus a hash
    of the name (two sites never share a queue, whatever their spelling); ``default`` for no site."""
    text = (site or "").strip()
    if not text:
        return DEFAULT_QUEUE
    lowered = text.lower()
    slug = re.sub(r"[^a-z0-9_-]+", "-", lowered).strip("-")[:QUEUE_SLUG_CHARS]
    if slug == lowered:
        return slug
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"site-{digest}"


def queue_names(sites: Iterable[str]) -> tuple[str, ...]:
    """The queues of ``sites`` as a person types them (``Taipei``, ``default``), without repeats."""
    return tuple(dict.fromkeys(queue_name(site) for site in sites if site.strip()))


def conninfo(database_url: str) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL URL (its query, e.g. ``options=-csearch_path=...``, kept)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def schedule_queue(every_s: int) -> str:
    """The queue of the schedule ticks of one interval (schedulers with the same interval share it)."""
    return f"{SCHEDULE_QUEUE_PREFIX}{every_s}s"


def make_app(
    database_url: str, *, pool_min: int = POOL_MIN, pool_max: int = POOL_MAX, periodic_max_delay: float | None = None
) -> App:
    """A procrastinate App on ``database_url``, not yet open; connections fail within the libpq timeouts.

    ``periodic_max_delay``: how late a periodic tick may still be deferred by a process that starts after it.
    """
    query = make_url(database_url).query
    settings = {k: v for k, v in PG_CONNECT_DEFAULTS.items() if k not in query}
    connector = PsycopgConnector(
        conninfo=conninfo(database_url),
        kwargs=settings,
        min_size=pool_min,
        max_size=pool_max,
        name="activation-monitor-queue",
    )
    if periodic_max_delay is None:
        return App(connector=connector)
    return App(connector=connector, periodic_defaults={"max_delay": periodic_max_delay})


# --- job payloads ----------------------------------------------------------------------------------


def target_ref(target: Target) -> dict[str, Any]:
    """What a job says about one host: how to reach it and the name of its credential, never a secret."""
    return {
        "host": target.host,
        "port": target.port,
        "scheme": target.scheme,
        "transport": target.transport,
        "credential": target.credential,
        "site": target.site,
        "tags": list(target.tags),
        "spn": target.spn,
    }


def batch_job(
    run_id: int,
    run_key: str,
    batch_no: int,
    queue: str,
    targets: Sequence[Target],
    *,
    scheduled_at: datetime | None = None,
) -> Job:
    """The job of one batch: its site's queue, a queueing lock from the run key, its hosts as references."""
    return Job(
        queue=queue,
        lock=None,
        queueing_lock=f"{run_key}/{batch_no}",
        task_name=TASK_POLL_BATCH,
        task_kwargs={"run_id": run_id, "batch_no": batch_no, "hosts": [target_ref(t) for t in targets]},
        scheduled_at=scheduled_at,
    )


def target_of(ref: Mapping[str, Any]) -> Target:
    """The ``Target`` a job's host reference describes; raises ``ValueError`` for one the scheduler never wrote."""
    scheme, transport = str(ref["scheme"]), str(ref["transport"])
    if scheme not in SCHEMES or transport not in TRANSPORTS:
        raise ValueError(f"unknown scheme or transport in a queued host: {scheme!r}, {transport!r}")
    return Target(
        host=str(ref["host"]),
        port=int(ref["port"]),
        scheme=cast(Scheme, scheme),
        transport=cast(Transport, transport),
        credential=str(ref["credential"]),
        site=str(ref["site"]) if ref.get("site") is not None else None,
        tags=tuple(str(tag) for tag in ref.get("tags") or ()),
        spn=str(ref["spn"]) if ref.get("spn") else None,
    )
