"""The knowledge base as the dashboard shows it: code labels for widgets and one entry's full block.

Entries come from ``knowledge.codes`` in the session's language. Their text is the project's own
(trusted) Markdown, so it goes through ``st.markdown``; the code itself is canonical (``0xC004F074``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import streamlit as st

from knowledge.codes import ErrorCode, all_codes, lookup, normalise
from ui import links
from ui.i18n import t


def title(code: str, lang: str) -> str:
    return lookup(code, lang).title


def label(code: str, lang: str) -> str:
    """``0xC004F074 — No KMS host could be contacted``: how a code appears in a picker."""
    return f"{code} — {title(code, lang)}"


def titles(codes: Iterable[object], lang: str) -> dict[str, str]:
    """Code -> title for every distinct non-empty code in ``codes``."""
    return {str(code): title(str(code), lang) for code in set(codes) if code}


def canonical(value: str | None) -> str | None:
    return normalise(value) if value else None


def known_codes(lang: str) -> list[str]:
    return [entry.code for entry in all_codes(lang)]


def entries(lang: str) -> tuple[ErrorCode, ...]:
    return all_codes(lang)


def entry_block(code: str, lang: str, *, compact: bool = False, activation_type: str | None = None) -> ErrorCode:
    """Draw one entry: title, message, (activation types and causes), numbered steps, commands, article.

    With ``activation_type`` (a host's), the steps are the variant written for that kind of activation.
    """
    entry = lookup(code, lang)
    st.subheader(f"{entry.code} · {entry.title}")
    st.markdown(entry.message)
    if not compact and entry.activation_types:
        st.markdown(f"**{t('Applies to')}:** " + ", ".join(t(kind) for kind in entry.activation_types))
    if not compact and entry.causes:
        st.markdown(f"**{t('Causes')}**")
        st.markdown("\n".join(f"- {cause}" for cause in entry.causes))
    st.markdown(f"**{t('Resolution steps')}**")
    steps = entry.steps_for(activation_type) if activation_type else entry.steps
    st.markdown("\n".join(f"{number}. {step}" for number, step in enumerate(steps, start=1)))
    if entry.commands:
        st.markdown(f"**{t('Commands')}**")
        st.code("\n".join(entry.commands), language="powershell")
    # the same article the CSV's resolution_url names (``models.hostfacts.resolution``), unless the entry
    # points at a more specific one
    article = entry.deep_link or links.article_url(entry.code, lang) or entry.url
    st.link_button(t("Microsoft article"), article, icon=":material/open_in_new:")
    return entry


def overview_frame(codes: Iterable[ErrorCode], counts: Mapping[str, int], lang: str) -> pd.DataFrame:
    """One row per code: title, activation types, hosts having it now, and links to entry and hosts."""
    rows = [
        (
            entry.code,
            entry.title,
            ", ".join(t(kind) for kind in entry.activation_types),
            counts.get(entry.code, 0),
            links.resolution_url(entry.code, lang),
            links.hosts_url(entry.code, lang),
        )
        for entry in codes
    ]
    return pd.DataFrame(rows, columns=["code", "title", "applies_to", "hosts_now", "entry", "hosts"])


def overview_columns() -> dict[str, Any]:
    return {
        "code": st.column_config.TextColumn(t("code")),
        "title": st.column_config.TextColumn(t("title"), width="large"),
        "applies_to": st.column_config.TextColumn(t("Applies to")),
        "hosts_now": st.column_config.NumberColumn(t("hosts now")),
        "entry": st.column_config.LinkColumn(t("view"), display_text=t("view")),
        "hosts": st.column_config.LinkColumn(t("Hosts"), display_text=t("List these hosts")),
    }
