"""KMS hosts page: each KMS host's health state, in words on its colour, from all the evidence (its own poll,
its KMS port, its own activation, its clients failing against it, its count against the 5 (servers) and 25
(clients) thresholds) with the reasons; the counts as coloured bars; request counters and DNS publishing; and
the count over time for the host chosen below the table."""

from __future__ import annotations

import streamlit as st

from knowledge.kms_health import KmsHealth
from ui import charts, context, data, tables
from ui.i18n import current_language, t

settings = context.settings()
lang = current_language()
st.title(t("KMS hosts"))
st.caption(t("A KMS host activates servers from a count of 5 and client PCs from 25; the count stops at 50."))
failing = [state.words(lang) for state in KmsHealth if state not in (KmsHealth.HEALTHY, KmsHealth.OFFICE_ONLY)]
st.caption(
    t("State: the first that applies of {states}; else {healthy} (or {office}).").format(
        states=t("LIST_SEPARATOR").join(failing),
        healthy=KmsHealth.HEALTHY.words(lang),
        office=KmsHealth.OFFICE_ONLY.words(lang),
    )
)


@st.fragment(run_every=settings.refresh_s)
def live() -> None:
    src = context.source()
    frame = data.kms_hosts(src, lang)
    if frame.empty:
        st.info(t("No KMS host has been polled yet."))
        return
    st.subheader(t("Count against the activation thresholds"))
    shown, config = tables.kms_hosts(frame, lang)
    st.plotly_chart(charts.kms_counts(frame, tables.kms_state_words(frame, lang), t), key="kms_chart")
    st.dataframe(shown, hide_index=True, column_config=config, key="kms_table")
    st.subheader(t("Count over time"))
    names = tables.kms_names(frame)
    host = st.selectbox(t("KMS host"), list(names), key="kms_host", format_func=names.__getitem__)
    history = data.kms_count_history(src, host) if host else None
    if history is None or history.empty:
        st.info(t("No count history for this host yet."))
    else:
        st.plotly_chart(charts.kms_count_history(history, t), key="kms_history_chart")


live()
