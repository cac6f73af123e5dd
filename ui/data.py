"""The dashboard's only door to the database, and the only place with Streamlit caching.

Each function wraps one ``models.queries`` (or ``models.export``) call: one engine per database URL is
shared by every session (``st.cache_resource``), and query results are cached by their arguments
(``st.cache_data``). The first argument is a ``Source``, the URL plus the number of the current refresh
period, so cached results are shared by all viewers for one period and re-read in the next one; the
period length is the ``refresh_s`` setting. Only aggregates and pages of rows are cached, never tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import pandas as pd
import streamlit as st

from models import db, export, kms, queries
from models.filters import HostFilter

# Entries from earlier refresh periods are unreachable; this bound only frees their memory.
_TTL_S = 3600
_MAX = 256


class Source(NamedTuple):
    """Where to read and which refresh period the result belongs to (part of every cache key)."""

    db_url: str
    tick: int = 0


@st.cache_resource(show_spinner=False)
def engine(db_url: str) -> db.Engine:
    """One connection pool per database URL, upgraded to the current schema once."""
    return db.open_database(db_url)


def clear() -> None:
    """Forget every cached result, e.g. after the demo fleet was loaded."""
    _cached_functions_clear()


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def fleet_is_empty(src: Source) -> bool:
    with engine(src.db_url).connect() as conn:
        return queries.fleet_is_empty(conn)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def fleet_summary(src: Source, stale_hours: float) -> queries.FleetSummary:
    with engine(src.db_url).connect() as conn:
        return queries.fleet_summary(conn, now=datetime.now(UTC), stale_after=timedelta(hours=stale_hours))


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def failures_by_code(src: Source, flt: HostFilter, lang: str = "en") -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.failures_by_code(conn, flt, lang=lang)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def failures_by_activation_type(src: Source, flt: HostFilter) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.failures_by_activation_type(conn, flt)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def activation_trend(src: Source, days: int = 90) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.activation_trend(conn, days=days)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def grace_expiring(src: Source, within_days: int) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.grace_expiring(conn, within_days=within_days)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def last_completed_run(src: Source) -> queries.RunRow | None:
    with engine(src.db_url).connect() as conn:
        return queries.last_completed_run(conn)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def kms_hosts(src: Source) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return kms.kms_hosts(conn)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def kms_count_history(src: Source, host: str) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return kms.kms_count_history(conn, host)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def host_count(src: Source, flt: HostFilter) -> int:
    with engine(src.db_url).connect() as conn:
        return queries.host_count(conn, flt)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def host_page(src: Source, flt: HostFilter, limit: int, offset: int, lang: str = "en") -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.host_page(conn, flt, limit=limit, offset=offset, lang=lang)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def host_detail(src: Source, host: str, lang: str = "en") -> queries.HostDetail | None:
    with engine(src.db_url).connect() as conn:
        return queries.host_detail(conn, host, lang=lang)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def host_history(src: Source, host: str) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.host_history(conn, host)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def code_counts(src: Source) -> dict[str, int]:
    with engine(src.db_url).connect() as conn:
        return queries.code_counts(conn)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def filter_options(src: Source) -> queries.FilterOptions:
    with engine(src.db_url).connect() as conn:
        return queries.filter_options(conn)


@st.cache_data(ttl=_TTL_S, max_entries=_MAX, show_spinner=False)
def poll_runs(src: Source, limit: int = 50) -> pd.DataFrame:
    with engine(src.db_url).connect() as conn:
        return queries.poll_runs(conn, limit=limit)


def export_csv(db_url: str, flt: HostFilter) -> bytes:
    """The unactivated-hosts CSV for ``flt``, built when the user clicks (never cached)."""
    with engine(db_url).connect() as conn:
        return export.csv_bytes(conn, flt)


_CACHED = (
    fleet_is_empty,
    fleet_summary,
    failures_by_code,
    failures_by_activation_type,
    activation_trend,
    grace_expiring,
    last_completed_run,
    kms_hosts,
    kms_count_history,
    host_count,
    host_page,
    host_detail,
    host_history,
    code_counts,
    filter_options,
    poll_runs,
)


def _cached_functions_clear() -> None:
    for function in _CACHED:
        function.clear()
