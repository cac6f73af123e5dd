"""The job queue on the Poll runs page: workers and their heartbeats, jobs waiting per site, and the batches of
recent queued runs. Shown only once a queued run or a worker was recorded; every value reaches the page
through ``ui.data`` and is drawn as table cells, never as HTML or Markdown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ui import data
from ui.data import Source
from ui.i18n import t

TIME_FORMAT = "YYYY-MM-DD HH:mm:ss"


def queue_section(src: Source, stall_s: float) -> None:
    if not data.has_queue_data(src):
        return
    st.subheader(t("Job queue"))
    st.caption(t("QUEUE_HELP"))
    workers(data.queue_workers(src, stall_s))
    depth(data.queue_depth(src))
    runs(data.queued_runs(src))
    per_worker(data.hosts_per_worker(src))


def _number(label: str, **options: Any) -> Any:
    return st.column_config.NumberColumn(t(label), **options)


def _time(label: str) -> Any:
    return st.column_config.DatetimeColumn(t(label), format=TIME_FORMAT)


def _words(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.assign(**{column: [t(str(value)) for value in frame[column]]})


def workers(frame: pd.DataFrame) -> None:
    st.markdown(f"**{t('Workers')}**")
    if frame.empty:
        st.caption(t("No worker has started yet."))
        return
    config = {
        "name": st.column_config.TextColumn(t("worker")),
        "state": st.column_config.TextColumn(t("state"), help=t("WORKER_STATE_HELP")),
        "queues": st.column_config.TextColumn(t("queues")),
        "concurrency": _number("concurrency"),
        "started_at": _time("started"),
        "heartbeat_age_s": _number("seconds since heartbeat", format="%.0f"),
        "last_heartbeat": _time("last heartbeat"),
        "stopped_at": _time("stopped"),
        "batches_done": _number("batches done"),
        "hosts_polled": _number("hosts polled"),
    }
    st.dataframe(_words(frame, "state"), hide_index=True, column_config=config, key="queue_workers")


def depth(frame: pd.DataFrame) -> None:
    st.markdown(f"**{t('Queue depth per site')}**")
    if frame.empty:
        st.caption(t("No batch is waiting in the queue."))
        return
    config = {
        "queue": st.column_config.TextColumn(t("queue")),
        "site": st.column_config.TextColumn(t("site")),
        "todo": _number("waiting"),
        "doing": _number("being polled"),
    }
    st.dataframe(frame, hide_index=True, column_config=config, key="queue_depth")


def runs(frame: pd.DataFrame) -> None:
    st.markdown(f"**{t('Batches of recent queued runs')}**")
    config = {
        "run_id": st.column_config.NumberColumn("#", format="%d"),
        "started_at": _time("started"),
        "status": st.column_config.TextColumn(t("status")),
        "deadline_at": _time("deadline"),
        "progress": st.column_config.ProgressColumn(t("progress"), min_value=0.0, max_value=1.0, format="percent"),
        "batches": _number("batches"),
        "hosts": _number("hosts"),
        "hosts_done": _number("hosts done"),
        "workers": _number("workers"),
    }
    for status in ("queued", "running", "done", "incomplete", "failed"):
        config[status] = _number(status)
    columns = ["run_id", "started_at", "status", "progress", "batches", "queued", "running", "done", "incomplete",
               "failed", "hosts", "hosts_done", "workers", "deadline_at"]  # fmt: skip
    shown = _words(frame, "status")[columns]
    st.dataframe(shown, hide_index=True, column_config=config, key="queued_runs")


def per_worker(frame: pd.DataFrame) -> None:
    if frame.empty:
        return
    st.markdown(f"**{t('Hosts per worker')}**")
    config = {
        "run_id": st.column_config.NumberColumn("#", format="%d"),
        "worker": st.column_config.TextColumn(t("worker")),
        "batches": _number("batches done"),
        "hosts": _number("hosts polled"),
        "failed": _number("failed"),
    }
    st.dataframe(frame, hide_index=True, column_config=config, key="hosts_per_worker")
