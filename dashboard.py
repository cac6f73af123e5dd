"""Streamlit entry point of Activation Monitor: page frame, settings, sign-in, language and routing.

Run with ``streamlit run dashboard.py``. This file only routes: every page lives in ``ui/pages/`` and
reads through ``ui.data``. An empty database offers only the first-run page.

Streamlit runs this file as ``__main__`` for every script run (``main()``). ``streamlit run`` also imports it
once, as the module ``dashboard``, and serves the ``st.App`` it finds in ``app``: Streamlit plus the routes
that set and clear the sign-in cookie (``ui.auth.routes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import streamlit as st

from config.settings import ConfigError, load_settings
from ui import alert_tables, auth, links
from ui.i18n import t

# A file of our own: a Material icon name would make every browser fetch it from a public font host.
FAVICON = Path(__file__).resolve().parent / "ui" / "static" / "favicon.png"


def page(ref: links.PageRef, title: str, icon: str | None = None, *, hidden: bool = False) -> st.Page:
    shown: Literal["visible", "hidden"] = "hidden" if hidden else "visible"
    return st.Page(ref.path, title=t(title), icon=icon, url_path=ref.url_path, visibility=shown)


def main() -> None:
    # Imported here, by the script run: their cached queries belong to the running Streamlit server.
    from ui import context, data

    st.set_page_config(page_title="Activation Monitor", page_icon=str(FAVICON), layout="wide")
    try:
        settings = load_settings()
    except ConfigError as exc:
        st.error(str(exc))
        st.stop()
    context.install(settings)
    context.select_language(settings.language)
    if not auth.gate(settings):
        st.stop()
    try:
        empty = data.fleet_is_empty(context.source())
        firing = 0 if empty else data.firing_count(context.source())
    except Exception as exc:
        st.error(t("The database cannot be read: {reason}").format(reason=context.one_line(exc)))
        st.stop()
    fleet = {
        t("Fleet"): [
            page(links.OVERVIEW, "Overview", ":material/dashboard:"),
            page(links.HOSTS, "Hosts", ":material/computer:"),
            page(links.KMS_HOSTS, "KMS hosts", ":material/dns:"),
            alert_tables.nav_page(firing),
            page(links.HOST_DETAIL, "Host detail", hidden=True),
            page(links.FIRST_RUN, "First run", hidden=True),
        ],
        t("Reference"): [
            page(links.ERROR_CODES, "Error codes", ":material/menu_book:"),
            page(links.POLL_RUNS, "Poll runs", ":material/history:"),
        ],
    }
    st.navigation([page(links.FIRST_RUN, "First run", ":material/rocket_launch:")] if empty else fleet).run()


if __name__ == "__main__":  # a script run
    main()
else:  # imported by `streamlit run dashboard.py`, which serves this app; nothing is drawn here
    app = st.App(__file__, routes=auth.routes())
