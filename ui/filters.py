"""The Hosts filter bar and its two-way binding with the URL (``st.query_params``).

The URL is parsed only through ``HostFilter.from_params`` (allow-listed; rejected values are reported,
never used), the widgets are seeded from it when they first appear, and every run writes the filter the
widgets describe back to the URL so the address bar can be shared. Widget keys equal the URL keys, so a
test can drive ``at.multiselect(key="code")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import streamlit as st

from models.filters import BY_KEY, CRITERIA, MAX_STALE_HOURS, MAX_TEXT, URL_KEYS, Criterion, HostFilter
from ui.i18n import LANG_KEY, current_language, t

PAGE_KEY = "page"
SECONDARY_KEYS = ("failure", "site", "os", "product", "stale")


def url_params() -> dict[str, list[str]]:
    """The filter part of the current URL, as repeated values per key."""
    return {key: st.query_params.get_all(key) for key in URL_KEYS if key in st.query_params}


def from_query_params() -> tuple[HostFilter, list[str]]:
    """The filter the URL describes and the values that were rejected."""
    return HostFilter.from_params(url_params())


def write_query_params(flt: HostFilter, extra: Mapping[str, str] | None = None) -> None:
    """Make the URL describe ``flt`` (plus the language and ``extra``); unchanged URLs are not rewritten."""
    wanted: dict[str, list[str]] = {key: list(values) for key, values in flt.to_params().items() if values}
    wanted[LANG_KEY] = [current_language()]
    for key, value in (extra or {}).items():
        wanted[key] = [value]
    current = {key: st.query_params.get_all(key) for key in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)


def _seed(flt: HostFilter) -> None:
    """Give each widget its URL value the first time it is drawn on this visit (widget key = URL key)."""
    for c in CRITERIA:
        if c.key not in st.session_state:
            st.session_state[c.key] = _widget_value(c, getattr(flt, c.field))


def _widget_value(c: Criterion, value: Any) -> object:
    if c.kind == "values":
        return c.render(value)
    if c.kind == "hours":
        return int(value or 0)
    return value


def _options(present: Iterable[str], key: str) -> list[str]:
    """Options from the database plus anything already selected (a shared URL may name absent values)."""
    chosen = st.session_state.get(key) or []
    return sorted({*present, *chosen})


def _multiselect(label: str, options: Sequence[str], key: str, fmt: Callable[[str], str] = t) -> list[str]:
    return st.multiselect(label, options, key=key, format_func=fmt, placeholder="")


def filter_bar(
    flt: HostFilter,
    *,
    codes: Iterable[str],
    sites: Iterable[str],
    os_captions: Iterable[str],
    code_label: Callable[[str], str],
) -> HostFilter:
    """Draw the filter widgets (seeded from ``flt``) and return the filter they now describe."""
    _seed(flt)
    # Full width: a chosen code shows its whole title.
    _multiselect(t("Error code"), _options(codes, "code"), "code", code_label)
    first = st.columns(3)
    with first[0]:
        _multiselect(t("Activation type"), list(BY_KEY["type"].choices), "type")
    with first[1]:
        _multiselect(t("License status"), list(BY_KEY["status"].choices), "status")
    with first[2]:
        st.text_input(t("Search host name"), key="q", max_chars=MAX_TEXT)
    # The filters used less often fold away, open whenever one of them is set (a shared link, say).
    more = any(st.session_state.get(key) for key in SECONDARY_KEYS)
    with st.expander(t("More filters"), expanded=more, icon=":material/tune:"):
        second = st.columns(3)
        with second[0]:
            _multiselect(t("Poll failure"), list(BY_KEY["failure"].choices), "failure")
        with second[1]:
            _multiselect(t("Site"), _options(sites, "site"), "site", str)
        with second[2]:
            _multiselect(t("OS"), _options(os_captions, "os"), "os", str)
        third = st.columns(3)
        with third[0]:
            _multiselect(t("Product type"), list(BY_KEY["product"].choices), "product")
        with third[1]:
            st.number_input(t("Not read for at least (hours)"), min_value=0, max_value=MAX_STALE_HOURS, key="stale")
    toggles = st.container(horizontal=True, gap="large")
    toggles.toggle(t("Only unactivated hosts"), key="unactivated", help=t("UNACTIVATED_HELP"))
    toggles.toggle(t("Include at-risk licensed hosts"), key="at_risk", help=t("AT_RISK_HELP"))
    # The widgets hold the URL form (their keys are the URL keys): read back through the one parser.
    widgets = {c.key: c.render(_from_widget(c, st.session_state.get(c.key))) for c in CRITERIA}
    return HostFilter.from_params(widgets)[0]


def _from_widget(c: Criterion, value: Any) -> object:
    if c.kind == "values":
        return tuple(value or ())  # a multiselect's list
    if c.kind == "hours":
        return int(value or 0) or None  # a number input's int
    if c.kind == "text":
        return str(value or "").strip()
    return bool(value)


def clear_filters() -> None:
    """Button callback: empty every filter widget (the URL follows on the rerun)."""
    for key in (*URL_KEYS, PAGE_KEY):
        st.session_state.pop(key, None)
    st.query_params.from_dict({LANG_KEY: current_language()})
