"""Poll runs page: the recent runs with their duration, hosts tried, read and failed by failure class,
and the collector and shard that ran them; then, where runs go through the job queue, its workers, queue
depth per site and the batches of recent queued runs."""

from __future__ import annotations

import streamlit as st

from ui import charts, context, data, queue_view, tables
from ui.i18n import t

settings = context.settings()
st.title(t("Poll runs"))


@st.fragment(run_every=settings.refresh_s)
def live() -> None:
    frame = data.poll_runs(context.source())
    if frame.empty:
        st.info(t("No poll run recorded yet."))
    else:
        st.subheader(t("Hosts read and failed per run"))
        st.plotly_chart(charts.poll_runs(frame, tables.failure_columns(frame), t), key="runs_chart")
        shown = frame.assign(status=[t(str(status)) for status in frame["status"]])
        st.dataframe(shown, hide_index=True, column_config=tables.poll_runs(frame), key="runs_table")
    queue_view.queue_section(context.source(), settings.queue_stall_s)  # workers may wait for a first run


live()
