"""Error codes page, the knowledge base: the entry chosen by ``?code=`` (where every resolution link
lands) in full, with how many hosts have it now and a link to them, then every code with its count."""

from __future__ import annotations

import streamlit as st

from ui import context, data, kb, links
from ui.i18n import current_language, t

lang = current_language()
counts = data.code_counts(context.source())
st.title(t("Error codes"))

known = kb.known_codes(lang)
wanted = kb.canonical(st.query_params.get("code"))
if "kb_code" not in st.session_state:
    st.session_state["kb_code"] = wanted or known[0]
options = list(dict.fromkeys([*known, *counts, st.session_state["kb_code"]]))
code = st.selectbox(t("Find a code"), options, key="kb_code", format_func=lambda c: kb.label(c, lang))
if st.query_params.get("code") != code:
    st.query_params["code"] = code

entry = kb.entry_block(code, lang)
if not entry.known:
    st.warning(t("Unknown code {code}: it is not in the knowledge base.").format(code=code))
hosts_now = counts.get(code, 0)
st.page_link(
    links.HOSTS.path,
    label=t("Hosts with this code now: {n}").format(n=hosts_now) + " · " + t("List these hosts"),
    query_params={"code": code, "lang": lang},
    icon=":material/computer:",
    disabled=hosts_now == 0,
)

st.subheader(t("All codes"))
st.dataframe(
    kb.overview_frame(kb.entries(lang), counts, lang),
    hide_index=True,
    key="codes_table",
    column_config=kb.overview_columns(),
)
