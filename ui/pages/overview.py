"""Overview page: headline numbers with their change since the previous day, failures by error code
(a click on a bar opens the Hosts page filtered to it) and by activation type, the activated trend,
grace periods ending soon and the last completed poll run. Refreshes itself every ``refresh_s``."""

from __future__ import annotations

import streamlit as st

from models.filters import HostFilter
from ui import charts, context, data, links, views
from ui.i18n import current_language, t

TOP_CODES = 12  # the most frequent codes; a longer chart stops being readable at a glance

settings = context.settings()
lang = current_language()
st.title(t("Overview"))


@st.fragment(run_every=settings.refresh_s)
def live() -> None:
    src = context.source()
    views.headline(data.fleet_summary(src, settings.stale_after_hours), settings.stale_after_hours)
    left, right = st.columns([3, 2])
    with left:
        st.subheader(t("Failures by error code"))
        codes = data.failures_by_code(src, HostFilter(), lang)
        if codes.empty:
            st.success(t("No failures."))
        else:
            st.caption(t("Click a bar to list those hosts."))
            event = st.plotly_chart(
                charts.failures_by_code(codes.head(TOP_CODES), t),
                key="codes_chart",
                on_select="rerun",
                selection_mode="points",
            )
            if len(codes) > TOP_CODES:
                st.caption(t("{n} more codes are listed on the Error codes page.").format(n=len(codes) - TOP_CODES))
            if code := views.selected_code(event):
                st.switch_page(links.HOSTS.path, query_params={"code": code, "lang": lang})
    with right:
        st.subheader(t("Failures by activation type"))
        by_type = data.failures_by_activation_type(src, HostFilter(unactivated_only=True, include_at_risk=True))
        if by_type.empty:
            st.success(t("No failures."))
        else:
            st.plotly_chart(charts.failures_by_activation_type(by_type, t), key="types_chart")
    views.trend(data.activation_trend(src))
    left, right = st.columns([3, 2])
    with left:
        views.grace_table(
            data.grace_expiring(src, within_days=settings.grace_warning_days), settings.grace_warning_days
        )
    with right:
        views.last_run(data.last_completed_run(src))


live()
st.caption(t("Data refreshes every {s} seconds.").format(s=settings.refresh_s))
