"""The optional sign-in gate, checked by ``dashboard.py`` before any page runs.

Two ways, chosen by configuration: a shared password (the ``auth_password`` setting, compared in constant
time and remembered for the browser session) or OpenID Connect through ``st.login`` when
``.streamlit/secrets.toml`` has an ``[auth]`` table. With OIDC, an optional ``[access] allowed_emails``
list in the same file limits who may look; without it any account the provider accepts may. With
neither configured the dashboard is open, which is why ``.streamlit/config.toml`` binds to 127.0.0.1.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st
from pydantic import SecretStr

from ui.i18n import t

SIGNED_IN_KEY = "_am_signed_in"
FAILURES_KEY = "_am_sign_in_failures"
PASSWORD_KEY = "auth_password_input"  # noqa: S105 - a widget key, not a password
MAX_FAILURES = 5
LOCKOUT_S = 300.0
FAILURE_DELAY_S = 1.0  # every wrong password costs the guesser a second


def gate(password: SecretStr | None) -> bool:
    """Return ``True`` when the session may see data; otherwise draw the sign-in screen."""
    if password is not None and password.get_secret_value():
        return _password_gate(password)
    if oidc_configured(_secrets()):
        return _oidc_gate(_allowed_emails(_secrets()))
    return True


def _secrets() -> Mapping[str, Any]:
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except (FileNotFoundError, KeyError, ValueError):
        # No secrets file is the normal case for a password-less or password-only deployment.
        return {}


def oidc_configured(secrets: Mapping[str, Any]) -> bool:
    auth = secrets.get("auth")
    return isinstance(auth, Mapping) and bool(auth)


def _allowed_emails(secrets: Mapping[str, Any]) -> Sequence[str]:
    access = secrets.get("access")
    emails = access.get("allowed_emails", ()) if isinstance(access, Mapping) else ()
    return [str(email).lower() for email in emails]


def password_matches(given: str, expected: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def _password_gate(password: SecretStr) -> bool:
    if st.session_state.get(SIGNED_IN_KEY):
        st.sidebar.button(t("Sign out"), key="sign_out", on_click=_sign_out)
        return True
    st.title(t("Activation Monitor"))
    st.info(t("Sign in to see the fleet."))
    with st.form("sign_in"):
        given = st.text_input(t("Password"), type="password", key=PASSWORD_KEY)
        submitted = st.form_submit_button(t("Sign in"))
    failures = _recent_failures(time.monotonic())
    if len(failures) >= MAX_FAILURES:
        st.error(t("Too many wrong passwords. Try again in a few minutes."))
        return False
    if submitted and password_matches(given, password):
        st.session_state[SIGNED_IN_KEY] = True
        st.session_state.pop(FAILURES_KEY, None)
        st.rerun()
    if submitted:
        st.session_state[FAILURES_KEY] = [*failures, time.monotonic()]
        time.sleep(FAILURE_DELAY_S)
        st.error(t("Wrong password."))
    return False


def _recent_failures(now: float) -> list[float]:
    """This session's wrong passwords within the lockout window."""
    return [at for at in st.session_state.get(FAILURES_KEY, []) if now - at < LOCKOUT_S]


def _sign_out() -> None:
    st.session_state.pop(SIGNED_IN_KEY, None)


def _oidc_gate(allowed: Sequence[str]) -> bool:
    if not st.user.is_logged_in:
        st.title(t("Activation Monitor"))
        st.info(t("Sign in to see the fleet."))
        st.button(t("Sign in"), key="sign_in_oidc", on_click=st.login)
        return False
    email = str(st.user.get("email") or "").lower()
    if allowed and email not in allowed:
        st.error(t("This account is not allowed to use the dashboard."))
        st.button(t("Sign out"), key="sign_out_oidc", on_click=st.logout)
        return False
    st.sidebar.text(t("Signed in as {who}").format(who=email or "?"))
    st.sidebar.button(t("Sign out"), key="sign_out_oidc", on_click=st.logout)
    return True
