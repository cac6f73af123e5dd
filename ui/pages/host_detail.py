"""Host detail page (``host?host=NAME``): the host's current state, the diagnosis with its evidence
(KMS count, clock skew, DNS SRV answer, port check), the status timeline from history and the resolution
steps for its error codes. Every value that came from the host is shown as plain text."""

from __future__ import annotations

import streamlit as st

from models.filters import HostFilter
from ui import charts, context, data, detail, kb, links
from ui.i18n import current_language, t

lang = current_language()
src = context.source()
st.title(t("Host detail"))

host = st.query_params.get("host", "")
if not host:
    search = st.text_input(t("Search host name"), key="host_search", max_chars=200)
    matches = data.host_page(src, HostFilter(search=search.strip()), 50, 0, lang)
    host = st.selectbox(t("Choose a host"), list(matches["host"]), index=None, key="host_pick") or ""
    if not host:
        st.stop()
    st.query_params["host"] = host

found = data.host_detail(src, host, lang)
if found is None:
    st.warning(t("Host not found."))
    st.text(host)
    st.stop()

st.text(host)
detail.state(found)
st.subheader(t("Diagnosis"))
detail.findings(found, lang)
st.subheader(t("Status timeline"))
history = data.host_history(src, host)
if history.empty:
    st.info(t("No status changes recorded."))
else:
    titles = kb.titles(history["error_code"], lang)
    st.plotly_chart(charts.status_timeline(history, titles, t), key="timeline_chart")
    st.dataframe(detail.history_frame(history), hide_index=True, key="history_table")
fixes = detail.codes_to_fix(found)
if fixes:
    st.subheader(t("How to fix"))
for code in fixes:
    kb.entry_block(code, lang, compact=True, activation_type=found.row.activation_type)
    st.page_link(
        links.ERROR_CODES.path, label=t("Open the knowledge-base entry"), query_params={"code": code, "lang": lang}
    )
