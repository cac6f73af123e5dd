"""Hosts page, the working list: filters kept in the URL, one page of hosts at a time (so 100,000 hosts
stay responsive), a details and a resolution link per row, and the CSV of the filtered unactivated hosts
built by ``models.export`` when the button is clicked."""

from __future__ import annotations

import dataclasses
import functools

import streamlit as st

from ui import context, data, filters, kb, tables, views
from ui.i18n import current_language, t

PAGE_SIZE = 500

settings = context.settings()
lang = current_language()
src = context.source()
st.title(t("Hosts"))

url_filter, rejected = filters.from_query_params()
if rejected:
    st.warning(t("Ignored filter values that are not allowed:"))
    st.text(", ".join(rejected))
options = data.filter_options(src)
flt = filters.filter_bar(
    url_filter,
    codes=options.error_codes,
    sites=options.sites,
    os_captions=options.os_captions,
    code_label=functools.partial(kb.label, lang=lang),
)
total = data.host_count(src, flt)
page = views.pager(total, PAGE_SIZE, flt)
filters.write_query_params(flt, {filters.PAGE_KEY: str(page)} if page > 1 else None)

st.text(flt.describe(total, lang))
actions = st.container(horizontal=True)
actions.download_button(
    t("Download CSV of unactivated hosts"),
    data=functools.partial(data.export_csv, src.db_url, dataclasses.replace(flt, unactivated_only=True), lang),
    file_name="unactivated-hosts.csv",
    mime="text/csv",
    on_click="ignore",
    key="download_csv",
    help=t("The CSV lists the unactivated hosts that match these filters."),
    icon=":material/download:",
)
actions.button(t("Clear filters"), key="clear_filters", on_click=filters.clear_filters)
st.caption(t("UNACTIVATED_HELP"))


@st.fragment(run_every=settings.refresh_s)
def host_table(offset: int) -> None:
    frame = data.host_page(context.source(), flt, PAGE_SIZE, offset, lang)
    if frame.empty:
        st.info(t("No host matches these filters."))
        return
    shown, config = tables.hosts(frame, lang)
    st.dataframe(
        shown, hide_index=True, column_config=config, key="hosts_table", height=tables.table_height(len(shown))
    )


host_table((page - 1) * PAGE_SIZE)
