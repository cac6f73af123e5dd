"""Acknowledging and silencing a firing alert from the Alerts page, and who is recorded as having done it.

Both are forms with a required comment; a silence lasts 1 hour, 4 hours, a day, a week, or until a date and time
given in the browser's time zone (UTC when the browser does not say). The forms' buttons write through
``ui.data``, which forgets every cached read, in a callback: the page that draws next already shows the change.
What happened is said once, in words of the dashboard's own (never the comment or the subject).

Who: the signed-in account. With the shared password that is the password account (``PASSWORD_SIGN_IN``); with
OpenID Connect the e-mail address; with no sign-in configured ``NO_SIGN_IN``, which the page says beforehand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from config.settings import Settings
from models.alerts import AlertView
from ui import data
from ui.alert_tables import NO_SIGN_IN, PASSWORD_SIGN_IN, label, who_words
from ui.i18n import current_language, t

PICK_KEY = "alert_pick"
ACK_COMMENT_KEY = "ack_comment"
SILENCE_FOR_KEY = "silence_for"
SILENCE_DATE_KEY = "silence_date"
SILENCE_TIME_KEY = "silence_time"
SILENCE_COMMENT_KEY = "silence_comment"
OUTCOME_KEY = "alert_action_outcome"
MAX_COMMENT_CHARS = 1000

UNTIL = "until"
DURATIONS: dict[str, timedelta] = {
    "1 hour": timedelta(hours=1),
    "4 hours": timedelta(hours=4),
    "1 day": timedelta(days=1),
    "1 week": timedelta(weeks=1),
}
CHOICES = (*DURATIONS, UNTIL)
CHOICE_WORDS = {**{choice: choice for choice in DURATIONS}, UNTIL: "until the date and time below"}


def who(settings: Settings) -> str:
    """The account to record on an acknowledgement or a silence made in this session."""
    password = settings.auth_password
    if password is not None and password.get_secret_value():
        return PASSWORD_SIGN_IN
    if st.user.get("is_logged_in"):
        return str(st.user.get("email") or st.user.get("name") or "?")
    return NO_SIGN_IN


def browser_zone() -> tzinfo:
    """The browser's time zone, or UTC when it did not say."""
    try:
        return ZoneInfo(st.context.timezone) if st.context.timezone else UTC
    except (ValueError, ZoneInfoNotFoundError):
        return UTC


def silence_end(choice: str, day: object, moment: object, now: datetime, zone: tzinfo) -> datetime | None:
    """When a silence chosen as ``choice`` ends, in UTC; ``None`` when a date or time is missing."""
    if choice in DURATIONS:
        return now + DURATIONS[choice]
    if not isinstance(day, date) or not isinstance(moment, time):
        return None
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _say(kind: str, text: str) -> None:
    st.session_state[OUTCOME_KEY] = (kind, text)


def _comment(key: str) -> str | None:
    text = str(st.session_state.get(key) or "").strip()
    if not text:
        _say("error", t("Write a comment: it says why."))
        return None
    return text[:MAX_COMMENT_CHARS]


def _acknowledge(db_url: str, by: str) -> None:
    alert_id, comment = st.session_state.get(PICK_KEY), _comment(ACK_COMMENT_KEY)
    if alert_id is None or comment is None:
        return
    done = data.acknowledge_alert(db_url, int(alert_id), by=by, comment=comment)
    if done is None:
        _say("warning", t("Alert #{id} no longer fires.").format(id=alert_id))
        return
    st.session_state[ACK_COMMENT_KEY] = ""
    _say("success", t("Alert #{id} acknowledged.").format(id=alert_id))


def _silence(db_url: str, by: str) -> None:
    alert_id, comment = st.session_state.get(PICK_KEY), _comment(SILENCE_COMMENT_KEY)
    if alert_id is None or comment is None:
        return
    now = datetime.now(UTC)
    state = st.session_state
    choice, day, moment = state.get(SILENCE_FOR_KEY), state.get(SILENCE_DATE_KEY), state.get(SILENCE_TIME_KEY)
    until = silence_end(str(choice), day, moment, now, browser_zone())
    if until is None or until <= now:
        _say("error", t("A silence must end in the future."))
        return
    done = data.silence_alert(db_url, int(alert_id), until=until, by=by, comment=comment)
    if done is None:
        _say("warning", t("Alert #{id} no longer exists.").format(id=alert_id))
        return
    st.session_state[SILENCE_COMMENT_KEY] = ""
    _say("success", t("Alert #{id} silenced until {until} UTC.").format(id=alert_id, until=f"{until:%Y-%m-%d %H:%M}"))


def outcome() -> None:
    """Say what the last acknowledgement or silence did, once."""
    said = st.session_state.pop(OUTCOME_KEY, None)
    if said is None:
        return
    kind, text = said
    {"success": st.success, "warning": st.warning}.get(kind, st.error)(text)


def actions(firing: Sequence[AlertView], settings: Settings, db_url: str) -> None:
    """Pick a firing alert, then acknowledge or silence it, each with a comment."""
    lang = current_language()
    by = who(settings)
    st.subheader(t("Acknowledge or silence"))
    if by == NO_SIGN_IN:
        st.info(t("Sign-in is off: what you do here is recorded as “{who}”.").format(who=who_words(NO_SIGN_IN)))
    else:
        st.caption(t("Recorded as:"))
        st.text(who_words(by))
    names = {alert.id: label(alert, lang) for alert in firing}
    st.selectbox(t("Alert"), list(names), format_func=names.__getitem__, key=PICK_KEY)
    zone = browser_zone()
    if SILENCE_DATE_KEY not in st.session_state:  # a day ahead, on the hour, in the browser's time zone
        ahead = (datetime.now(zone) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        st.session_state[SILENCE_DATE_KEY], st.session_state[SILENCE_TIME_KEY] = ahead.date(), ahead.time()
    left, right = st.columns(2)
    with left, st.form("acknowledge_form"):
        st.caption(t("An acknowledged alert sends no more messages until it resolves."))
        st.text_area(t("Comment"), key=ACK_COMMENT_KEY, max_chars=MAX_COMMENT_CHARS, height=100)
        st.form_submit_button(t("Acknowledge"), on_click=_acknowledge, args=(db_url, by), key="acknowledge")
    with right, st.form("silence_form"):
        st.caption(t("A silenced alert sends no messages until the silence ends, its resolution included."))
        st.radio(
            t("Silence for"),
            CHOICES,
            format_func=lambda choice: t(CHOICE_WORDS[choice], lang),
            horizontal=True,
            key=SILENCE_FOR_KEY,
        )
        day, moment = st.columns(2)
        day.date_input(t("Until (date)"), key=SILENCE_DATE_KEY, format="YYYY-MM-DD")
        moment.time_input(t("Until (time, {zone})").format(zone=str(zone)), key=SILENCE_TIME_KEY, step=900)
        st.text_area(t("Comment"), key=SILENCE_COMMENT_KEY, max_chars=MAX_COMMENT_CHARS, height=100)
        st.form_submit_button(t("Silence"), on_click=_silence, args=(db_url, by), key="silence")
