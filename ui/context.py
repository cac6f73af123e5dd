"""What every page needs to know about the session: settings, language and the data source.

``dashboard.py`` calls ``install`` once per run with the settings it loaded, then ``select_language``
draws the language switch and keeps ``?lang=`` in the URL. Pages call ``settings()``, ``source()`` and
``page_params()`` instead of reaching into session state themselves. Nothing here reads the database.
"""

from __future__ import annotations

import time

import streamlit as st

from config.settings import Settings
from knowledge.codes import LANGUAGES, normalise_language
from ui import i18n
from ui.data import Source

_SETTINGS_KEY = "_am_settings"


def install(settings: Settings) -> None:
    """Remember the settings for the pages of this run."""
    st.session_state[_SETTINGS_KEY] = settings


def settings() -> Settings:
    """The settings ``dashboard.py`` loaded; pages run only after ``install``."""
    return st.session_state[_SETTINGS_KEY]


def source(clock: float | None = None) -> Source:
    """The cache key for reads: the database URL and the current refresh period."""
    current = settings()
    now = time.time() if clock is None else clock
    return Source(current.database_url, int(now // current.refresh_s))


def select_language(default: str) -> str:
    """Draw the language switch and keep the choice in session state and in ``?lang=``."""
    if i18n.LANG_KEY not in st.session_state:
        from_url = st.query_params.get(i18n.LANG_KEY)
        st.session_state[i18n.LANG_KEY] = normalise_language(from_url, default)
    st.sidebar.radio(
        i18n.t("Language"),
        LANGUAGES,
        format_func=i18n.LANGUAGE_NAMES.__getitem__,
        horizontal=True,
        key=i18n.LANG_KEY,
    )
    lang = i18n.current_language()
    if st.query_params.get(i18n.LANG_KEY) != lang:
        st.query_params[i18n.LANG_KEY] = lang
    return lang


def one_line(exc: BaseException, limit: int = 200) -> str:
    """A short, single-line description of an error for the screen (never a traceback)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else type(cause).__name__
    return text[:limit]
