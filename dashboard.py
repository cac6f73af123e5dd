"""Streamlit entry point of Activation Monitor: page frame, settings, sign-in, language and routing.

Run with ``streamlit run dashboard.py``. This file only routes: every page lives in ``ui/pages/`` and
reads through ``ui.data``. An empty database offers only the first-run page.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

from config.settings import ConfigError, load_settings
from ui import auth, context, data, links
from ui.i18n import t

st.set_page_config(page_title="Activation Monitor", page_icon=":material/verified:", layout="wide")
try:
    settings = load_settings()
except ConfigError as exc:
    st.error(str(exc))
    st.stop()
context.install(settings)
context.select_language(settings.language)
if not auth.gate(settings.auth_password):
    st.stop()


def page(ref: links.PageRef, title: str, icon: str | None = None, *, hidden: bool = False) -> st.Page:
    shown: Literal["visible", "hidden"] = "hidden" if hidden else "visible"
    return st.Page(ref.path, title=t(title), icon=icon, url_path=ref.url_path, visibility=shown)


try:
    empty = data.fleet_is_empty(context.source())
except Exception as exc:
    st.error(t("The database cannot be read: {reason}").format(reason=context.one_line(exc)))
    st.stop()
fleet = {
    t("Fleet"): [
        page(links.OVERVIEW, "Overview", ":material/dashboard:"),
        page(links.HOSTS, "Hosts", ":material/computer:"),
        page(links.KMS_HOSTS, "KMS hosts", ":material/dns:"),
        page(links.HOST_DETAIL, "Host detail", hidden=True),
        page(links.FIRST_RUN, "First run", hidden=True),
    ],
    t("Reference"): [
        page(links.ERROR_CODES, "Error codes", ":material/menu_book:"),
        page(links.POLL_RUNS, "Poll runs", ":material/history:"),
    ],
}
st.navigation([page(links.FIRST_RUN, "First run", ":material/rocket_launch:")] if empty else fleet).run()
