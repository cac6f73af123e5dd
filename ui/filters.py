"""The Hosts filter bar and its two-way binding with the URL (``st.query_params``).

The URL is parsed only through ``HostFilter.from_params`` (allow-listed; rejected values are reported,
never used), the widgets are seeded from it when they first appear, and every run writes the filter the
widgets describe back to the URL so the address bar can be shared. Widget keys equal the URL keys, so a
test can drive ``at.multiselect(key="code")``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import streamlit as st

from models.enums import ActivationType, FailureClass, HostState, ProductType
from models.filters import HostFilter
from ui.i18n import LANG_KEY, current_language, t

URL_KEYS = ("code", "type", "status", "site", "os", "product", "failure", "stale", "q", "unactivated", "at_risk")
PAGE_KEY = "page"


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
    """Give each widget its URL value the first time it is drawn on this visit."""
    values: dict[str, object] = {
        "code": list(flt.error_codes),
        "type": [str(x) for x in flt.activation_types],
        "status": [str(x) for x in flt.license_statuses],
        "site": list(flt.sites),
        "os": list(flt.os_captions),
        "product": [str(x) for x in flt.product_types],
        "failure": [str(x) for x in flt.failure_classes],
        "stale": int(flt.stale_hours or 0),
        "q": flt.search,
        "unactivated": flt.unactivated_only,
        "at_risk": flt.include_at_risk,
    }
    for key, value in values.items():
        if key not in st.session_state:
            st.session_state[key] = value


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
    first = st.columns([3, 2, 2, 2])
    with first[0]:
        code = _multiselect(t("Error code"), _options(codes, "code"), "code", code_label)
    with first[1]:
        kinds = _multiselect(t("Activation type"), [str(x) for x in ActivationType], "type")
    with first[2]:
        statuses = _multiselect(t("License status"), [str(x) for x in HostState], "status")
    with first[3]:
        failures = _multiselect(t("Poll failure"), [str(x) for x in FailureClass], "failure")
    second = st.columns([2, 3, 2, 2, 2, 3, 3])
    with second[0]:
        site = _multiselect(t("Site"), _options(sites, "site"), "site", str)
    with second[1]:
        os_names = _multiselect(t("OS"), _options(os_captions, "os"), "os", str)
    with second[2]:
        products = _multiselect(t("Product type"), [str(x) for x in ProductType], "product")
    with second[3]:
        stale = st.number_input(t("Not read for at least (hours)"), min_value=0, max_value=24 * 365, key="stale")
    with second[4]:
        search = st.text_input(t("Search host name"), key="q", max_chars=200)
    with second[5]:
        unactivated = st.toggle(t("Only unactivated hosts"), key="unactivated")
    with second[6]:
        at_risk = st.toggle(t("Include at-risk licensed hosts"), key="at_risk", help=t("AT_RISK_HELP"))
    return HostFilter(
        error_codes=tuple(code),
        activation_types=tuple(ActivationType(x) for x in kinds),
        license_statuses=tuple(HostState(x) for x in statuses),
        sites=tuple(site),
        os_captions=tuple(os_names),
        product_types=tuple(ProductType(x) for x in products),
        failure_classes=tuple(FailureClass(x) for x in failures),
        stale_hours=int(stale) or None,
        search=search.strip(),
        unactivated_only=bool(unactivated),
        include_at_risk=bool(at_risk),
    )


def clear_filters() -> None:
    """Button callback: empty every filter widget (the URL follows on the rerun)."""
    for key in (*URL_KEYS, PAGE_KEY):
        st.session_state.pop(key, None)
    st.query_params.from_dict({LANG_KEY: current_language()})
