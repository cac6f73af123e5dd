"""The dashboard's only door to the database, and the only place with Streamlit caching.

Each reader here is one ``models.queries`` (or ``models.kms``) function made cached by ``_on_source``: it
takes a ``Source`` where the query takes a connection, runs the query on a connection from the engine for
that URL (one per database URL, shared by every session through ``st.cache_resource``) and caches the result
by its arguments (``st.cache_data``). A ``Source`` is the URL plus the number of the current refresh period,
so cached results are shared by all viewers for one period and re-read in the next one; the period length is
the ``refresh_s`` setting. Where a page's arguments differ from the query's, a small adapter taking the
connection first sits in between. Only aggregates and pages of rows are cached, never tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import pandas as pd
import streamlit as st

from models import alerts, batches, db, export, kms, queries, runs
from models.filters import HostFilter

# Entries from earlier refresh periods are unreachable; this bound only frees their memory.
_TTL_S = 3600
_MAX = 256

P = ParamSpec("P")
R = TypeVar("R")


class Source(NamedTuple):
    """Where to read and which refresh period the result belongs to (part of every cache key)."""

    db_url: str
    tick: int = 0


@st.cache_resource(show_spinner=False)
def engine(db_url: str) -> db.Engine:
    """One connection pool per database URL, upgraded to the current schema once."""
    return db.open_database(db_url)


def clear() -> None:
    """Forget every cached result, e.g. after the demo fleet was loaded (all of them are made here)."""
    st.cache_data.clear()


def _on_source(read: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Source, P], R]:
    """``read(conn, ...)`` as a cached ``read(src, ...)`` that runs on a connection to ``src.db_url``.

    The connection is typed ``Any`` because the dashboard names no SQLAlchemy type.
    """

    def on_source(src: Source, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with engine(src.db_url).connect() as conn:
            return read(conn, *args, **kwargs)

    # Streamlit tells caches apart by the function's module and qualified name (and its source, which every
    # reader here shares), so each reader takes the name of the query it runs. No ``__wrapped__``: Streamlit
    # would then read the query's parameter names, which start with the connection, for the reader's.
    on_source.__module__ = read.__module__
    on_source.__name__ = read.__name__
    on_source.__qualname__ = read.__qualname__
    on_source.__doc__ = read.__doc__
    return st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)(on_source)


# Queries whose arguments after the connection are the ones the pages pass.
fleet_is_empty = _on_source(queries.fleet_is_empty)
failures_by_activation_type = _on_source(queries.failures_by_activation_type)
activation_trend = _on_source(queries.activation_trend)
grace_expiring = _on_source(queries.grace_expiring)
last_completed_run = _on_source(runs.last_completed_run)
kms_hosts = _on_source(kms.kms_hosts)
kms_count_history = _on_source(kms.kms_count_history)
host_count = _on_source(queries.host_count)
host_history = _on_source(queries.host_history)
code_counts = _on_source(queries.code_counts)
filter_options = _on_source(queries.filter_options)
poll_runs = _on_source(runs.poll_runs)
has_queue_data = _on_source(batches.has_queue_data)
queue_depth = _on_source(batches.queue_depth)
queued_runs = _on_source(batches.queued_runs)
hosts_per_worker = _on_source(batches.hosts_per_worker)
firing_alerts = _on_source(alerts.list_alerts)  # with state="firing"
resolved_alerts = _on_source(alerts.resolved_alerts)
firing_count = _on_source(alerts.firing_count)
recent_notifications = _on_source(alerts.recent_notifications)


# Adapters for the rest: the pages pass these arguments positionally, or a number of hours for a moment.
@_on_source
def fleet_summary(conn: Any, stale_hours: float) -> queries.FleetSummary:
    return queries.fleet_summary(conn, now=datetime.now(UTC), stale_after=timedelta(hours=stale_hours))


@_on_source
def queue_workers(conn: Any, stall_s: float) -> pd.DataFrame:
    return batches.queue_workers(conn, now=datetime.now(UTC), stall_s=stall_s)


@_on_source
def failures_by_code(conn: Any, flt: HostFilter, lang: str = "en") -> pd.DataFrame:
    return queries.failures_by_code(conn, flt, lang=lang)


@_on_source
def host_page(conn: Any, flt: HostFilter, limit: int, offset: int, lang: str = "en") -> pd.DataFrame:
    return queries.host_page(conn, flt, limit=limit, offset=offset, lang=lang)


@_on_source
def host_detail(conn: Any, host: str, lang: str = "en") -> queries.HostDetail | None:
    return queries.host_detail(conn, host, lang=lang)


def export_csv(db_url: str, flt: HostFilter, lang: str = "en") -> bytes:
    """The unactivated-hosts CSV for ``flt`` with error titles in ``lang``, built when the user clicks (never
    cached)."""
    with engine(db_url).connect() as conn:
        return export.csv_bytes(conn, flt, lang=lang)


# Writes: alert acknowledgements and silences, then every cached read is forgotten so each page shows them at once.
def acknowledge_alert(db_url: str, alert_id: int, *, by: str, comment: str) -> alerts.AlertView | None:
    """Acknowledge a firing alert now; ``None`` when it no longer fires."""
    with engine(db_url).begin() as conn:
        done = alerts.acknowledge(conn, alert_id, by=by, comment=comment, now=datetime.now(UTC))
    clear()
    return done


def silence_alert(db_url: str, alert_id: int, *, until: datetime, by: str, comment: str) -> alerts.AlertView | None:
    """Silence an alert until ``until`` (which must lie ahead); ``None`` when there is no such alert."""
    with engine(db_url).begin() as conn:
        done = alerts.silence(conn, alert_id, until=until, by=by, comment=comment, now=datetime.now(UTC))
    clear()
    return done
