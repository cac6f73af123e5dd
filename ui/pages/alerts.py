"""Alerts page: what fires now (most severe, then newest) with who acknowledged or silenced it and until when,
the forms to acknowledge or silence one, the alerts that resolved (newest first) and the messages sent. The
rules run in ``python -m collectors alerts check``; this page reads and changes only the alerts' state."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from ui import alert_forms, alert_tables, context, data
from ui.i18n import current_language, t

FIRING_LIMIT = 500
HISTORY_LIMIT = 200
MESSAGES_LIMIT = 50

settings = context.settings()
lang = current_language()
st.set_page_config(page_title=alert_tables.tab_title(data.firing_count(context.source())))
st.title(t("Alerts"))
st.caption(t("ALERTS_HELP"))


@st.fragment(run_every=settings.refresh_s)
def live() -> None:
    src = context.source()
    alert_forms.outcome()
    firing = data.firing_alerts(src, state="firing", limit=FIRING_LIMIT)
    st.subheader(t("Firing now"))
    if not firing:
        st.success(t("Nothing is firing."))
    else:
        if len(firing) == FIRING_LIMIT:
            st.caption(t("The {n} most severe and newest are listed.").format(n=FIRING_LIMIT))
        shown, config = alert_tables.firing(firing, lang, datetime.now(UTC))
        st.dataframe(shown, hide_index=True, column_config=config, key="firing_table")
        alert_forms.actions(firing, settings, src.db_url)
    st.subheader(t("History"))
    resolved = data.resolved_alerts(src, limit=HISTORY_LIMIT)
    if not resolved:
        st.info(t("No alert has resolved yet."))
    else:
        shown, config = alert_tables.history(resolved, lang)
        st.dataframe(shown, hide_index=True, column_config=config, key="history_table")
    st.subheader(t("Messages sent"))
    sent = data.recent_notifications(src, limit=MESSAGES_LIMIT)
    if not sent:
        st.info(t("No message has been sent yet."))
    else:
        shown, config = alert_tables.messages(sent)
        st.dataframe(shown, hide_index=True, column_config=config, key="messages_table")


live()
st.caption(t("Times are UTC.") + " " + t("Data refreshes every {s} seconds.").format(s=settings.refresh_s))
