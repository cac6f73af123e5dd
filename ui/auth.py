"""The optional sign-in gate, checked by ``dashboard.py`` before any page runs.

Two ways, chosen by configuration: a shared password (the ``auth_password`` setting, compared in constant
time) or OpenID Connect through ``st.login`` when ``.streamlit/secrets.toml`` has an ``[auth]`` table. With
OIDC, an optional ``[access] allowed_emails`` list in the same file limits who may look; without it any account
the provider accepts may. With neither configured the dashboard is open, which is why
``.streamlit/config.toml`` binds to 127.0.0.1.

A password sign-in is remembered by the browser: the sign-in form is a plain HTML form that posts to the
``signin`` route served next to Streamlit (``routes()``, mounted by ``dashboard.py``), which checks the password,
sets the signed HttpOnly cookie of ``ui.session`` and sends the browser back to the page and query it asked for.
``signout`` clears the cookie. Where those routes are not served (``AppTest`` runs the script without a server),
the password is asked in a Streamlit form and remembered for the Streamlit session only.

Wrong passwords are counted in the database (``models.signin``) per client address (``session.client_address``)
and account, so the count holds across sessions, reloads and replicas: after ``models.signin.MAX_FAILURES`` in a
row even the right password is refused for ``auth_lockout_s``, doubling with each further one. Every wrong one
costs ``FAILURE_DELAY_S``, sets no cookie and comes back to the same form (``?signin=``); a right one clears all.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import html
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from config.settings import ConfigError, Settings, load_settings
from models import signin
from ui import session
from ui.i18n import t

_log = logging.getLogger(__name__)

SIGNED_IN_KEY = "_am_signed_in"
FORM_KEY = "_am_sign_in_form"
PASSWORD_KEY = "auth_password_input"  # noqa: S105 - a widget key, not a password
FAILURE_DELAY_S = 1.0  # every wrong password costs the guesser a second

SIGN_IN_ROUTE = "signin"
SIGN_OUT_ROUTE = "signout"
RETURN_PARAM = "signin"  # set on the way back from a refused sign-in: the form it came from
PASSWORD_FIELD = "password"  # noqa: S105 - a form field name
NEXT_FIELD = "next"
FORM_FIELD = "form_id"
EXPIRED = "expired"
UNAVAILABLE = "unavailable"  # the lockout could not be read or written: nobody is signed in
MAX_FORM_BYTES = 8192
FORM_TTL_S = 24 * 3600.0
MAX_FORMS = 20_000


def gate(settings: Settings) -> bool:
    """Return ``True`` when the session may see data; otherwise draw the sign-in screen."""
    password = settings.auth_password
    if password is not None and password.get_secret_value():
        return _cookie_gate(settings, password) if _server.routes_served else _password_gate(settings, password)
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


def signing_key(settings: Settings, password: SecretStr) -> bytes:
    """This deployment's cookie key for ``password`` (see ``ui.session``)."""
    auth = _secrets().get("auth")
    configured = auth.get("cookie_secret") if isinstance(auth, Mapping) else None
    return session.signing_key(session.secret(settings.data_dir, str(configured) if configured else None), password)


# --- the password, remembered by the browser -------------------------------------------------------------------


@dataclass
class _Server:
    routes_served: bool = False  # set once this process serves the sign-in routes


_server = _Server()


class _Forms:
    """The sign-in forms this process handed out (wrong passwords are counted in the database, not here)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: dict[str, float] = {}  # id -> when it was handed out

    def issue(self, now: float) -> str:
        form_id = secrets.token_urlsafe(18)
        with self._lock:
            for old in [k for k, issued in self._forms.items() if now - issued > FORM_TTL_S]:
                del self._forms[old]
            while len(self._forms) >= MAX_FORMS:
                del self._forms[next(iter(self._forms))]
            self._forms[form_id] = now
        return form_id

    def known(self, form_id: str) -> bool:
        with self._lock:
            return form_id in self._forms

    def forget(self, form_id: str) -> None:
        with self._lock:
            self._forms.pop(form_id, None)


_forms = _Forms()


def _cookie_gate(settings: Settings, password: SecretStr) -> bool:
    cookie = st.context.cookies.get(session.COOKIE_NAME)
    lifetime_s = settings.auth_session_hours * 3600
    if session.is_valid(cookie, signing_key(settings, password), lifetime_s, time.time()):
        st.sidebar.html(_post_form(SIGN_OUT_ROUTE, {NEXT_FIELD: _here()}, t("Sign out")))
        return True
    form_id, problem = _sign_in_form_id(settings)
    st.title(t("Activation Monitor"))
    st.info(t("Sign in to see the fleet."))
    if problem:
        st.error(problem)
    st.html(_post_form(SIGN_IN_ROUTE, {NEXT_FIELD: _here(), FORM_FIELD: form_id}, t("Sign in"), t("Password")))
    return False


def _sign_in_form_id(settings: Settings) -> tuple[str, str | None]:
    """This session's form, or the one a refused sign-in came back with, and what to tell the visitor."""
    problem = None
    returned = st.query_params.get(RETURN_PARAM)
    if returned is not None:
        del st.query_params[RETURN_PARAM]  # the address stays the one that was shared
        if returned == UNAVAILABLE:
            problem = t("The sign-in could not be checked. Try again.")
        elif _forms.known(returned):
            st.session_state[FORM_KEY] = returned
        else:
            problem = t("The sign-in form expired. Sign in again.")
    form_id = st.session_state.get(FORM_KEY)
    if not isinstance(form_id, str) or not _forms.known(form_id):
        form_id = _forms.issue(time.monotonic())
        st.session_state[FORM_KEY] = form_id
    locked = _locked_message(settings)
    if locked:
        problem = locked
    elif returned == form_id:
        problem = t("Wrong password.")
    return form_id, problem


def _here() -> str:
    """The page the browser shows, with its query: where a sign-in or sign-out returns to."""
    path = urlsplit(st.context.url or "").path or "/"
    query = urlencode([(key, value) for key in st.query_params for value in st.query_params.get_all(key)])
    return f"{path}?{query}" if query else path


def _route_path(route: str) -> str:
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/{route}" if base else f"/{route}"


def _cookie_path() -> str:
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else "/"


def _post_form(route: str, fields: Mapping[str, str], button: str, password_label: str | None = None) -> str:
    """A plain HTML form posting to one of the routes; every value in it is escaped."""
    box = "border:1px solid rgba(128,128,128,.45);border-radius:.5rem;color:inherit;background:transparent;font:inherit"
    parts = [f'<form method="post" action="{html.escape(_route_path(route))}" style="margin:.5rem 0 1rem">']
    if password_label is not None:
        parts.append(
            f'<label style="display:block;margin-bottom:.75rem">{html.escape(password_label)}<br>'
            f'<input type="password" name="{PASSWORD_FIELD}" autocomplete="current-password" required autofocus '
            f'style="{box};width:100%;max-width:24rem;padding:.45rem .7rem;margin-top:.3rem"></label>'
        )
    parts += [f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in fields.items()]
    parts.append(
        f'<button type="submit" style="{box};padding:.4rem .9rem;cursor:pointer">{html.escape(button)}</button>'
    )
    parts.append("</form>")
    return "".join(parts)


def routes() -> list[BaseRoute]:
    """The ``signin`` and ``signout`` routes for ``st.App``; the gate uses them from now on."""
    _server.routes_served = True
    return [
        Route(_route_path(SIGN_IN_ROUTE), _sign_in, methods=["POST"]),
        Route(_route_path(SIGN_OUT_ROUTE), _sign_out_of_browser, methods=["POST"]),
    ]


async def _sign_in(request: Request) -> Response:
    if not _same_origin(request):
        return PlainTextResponse("Sign-in from another site refused.", status_code=403)
    fields = await _form_fields(request)
    if fields is None:
        return PlainTextResponse("Not a sign-in form.", status_code=400)
    target = session.safe_next(fields.get(NEXT_FIELD)) or "./"
    try:
        settings = load_settings()
    except ConfigError:
        return _redirect(target)  # the page says what is wrong
    password = settings.auth_password
    form_id = fields.get(FORM_FIELD, "")
    if password is None or not password.get_secret_value():
        return _redirect(target)
    if not _forms.known(form_id):
        return _redirect(_with_param(target, RETURN_PARAM, EXPIRED))
    peer = request.client.host if request.client else None
    address = session.client_address(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)
    # The database may be slow or busy: the check runs beside the server's event loop, not on it.
    outcome = await asyncio.to_thread(_attempt, settings, address, fields.get(PASSWORD_FIELD, ""), password)
    if outcome is Outcome.SIGNED_IN:
        _forms.forget(form_id)
        response = _redirect(target)
        lifetime_s = settings.auth_session_hours * 3600
        cookie = session.issue(signing_key(settings, password), time.time())
        _set_cookie(response, request, cookie, max_age=max(1, int(lifetime_s)))
        return response
    if outcome is Outcome.WRONG:
        await asyncio.sleep(FAILURE_DELAY_S)
    return _redirect(_with_param(target, RETURN_PARAM, UNAVAILABLE if outcome is Outcome.UNAVAILABLE else form_id))


async def _sign_out_of_browser(request: Request) -> Response:
    if not _same_origin(request):
        return PlainTextResponse("Sign-out from another site refused.", status_code=403)
    fields = await _form_fields(request) or {}
    response = _redirect(session.safe_next(fields.get(NEXT_FIELD)) or "./")
    _set_cookie(response, request, "", max_age=0)
    return response


def _set_cookie(response: Response, request: Request, value: str, *, max_age: int) -> None:
    response.set_cookie(
        session.COOKIE_NAME,
        value,
        max_age=max_age,
        path=_cookie_path(),
        secure=_over_https(request),
        httponly=True,
        samesite="lax",
    )


def _redirect(target: str) -> Response:
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def _with_param(target: str, name: str, value: str) -> str:
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    return urlunsplit(("", "", parts.path, urlencode([*query, (name, value)]), ""))


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (or, without one, no ``Referer``) naming another host than the one addressed."""
    origin = request.headers.get("origin")
    claimed = origin if origin is not None else request.headers.get("referer")
    if claimed is None:
        return True
    addressed = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "").split(",")[0].strip()}
    netloc = urlsplit(claimed).netloc.lower()
    return bool(netloc) and netloc in {host.lower() for host in addressed if host}


def _over_https(request: Request) -> bool:
    """Served over HTTPS, directly or behind a proxy that says so."""
    if request.url.scheme == "https":
        return True
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" or "proto=https" in request.headers.get("forwarded", "").lower()


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The fields of a small URL-encoded form, or ``None`` for anything else."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10))
    except (UnicodeDecodeError, ValueError):
        return None


# --- the password, remembered for one Streamlit session (no server routes) --------------------------------------


def _password_gate(settings: Settings, password: SecretStr) -> bool:
    if st.session_state.get(SIGNED_IN_KEY):
        st.sidebar.button(t("Sign out"), key="sign_out", on_click=_sign_out)
        return True
    st.title(t("Activation Monitor"))
    st.info(t("Sign in to see the fleet."))
    with st.form("sign_in"):
        given = st.text_input(t("Password"), type="password", key=PASSWORD_KEY)
        submitted = st.form_submit_button(t("Sign in"))
    outcome = _attempt(settings, _page_client(settings), given, password) if submitted else None
    if outcome is Outcome.SIGNED_IN:
        st.session_state[SIGNED_IN_KEY] = True
        st.rerun()
    if outcome is Outcome.WRONG:
        time.sleep(FAILURE_DELAY_S)
    locked = _locked_message(settings)
    if locked:
        st.error(locked)
    elif outcome is Outcome.WRONG:
        st.error(t("Wrong password."))
    elif outcome is Outcome.UNAVAILABLE:
        st.error(t("The sign-in could not be checked. Try again."))
    return False


def _sign_out() -> None:
    st.session_state.pop(SIGNED_IN_KEY, None)


# --- the lockout, in the database (models.signin) --------------------------------------------------------------


class Outcome(enum.Enum):
    SIGNED_IN = "signed in"
    WRONG = "wrong password"
    LOCKED = "locked out"  # refused without looking at the password
    UNAVAILABLE = "unavailable"  # the database could not say: refused


def _attempt(settings: Settings, address: str, given: str, password: SecretStr) -> Outcome:
    """Check ``given`` for the client at ``address`` against the lockout and the password, and record it."""
    key = signin.signin_key(address, signin.PASSWORD_ACCOUNT)
    now = datetime.now(UTC)
    try:
        with _engine(settings).begin() as conn:  # attempts on one key take turns (models.signin)
            if signin.start_attempt(conn, key, now) is not None:
                return Outcome.LOCKED
            if password_matches(given, password):
                signin.record_success(conn, key)
                return Outcome.SIGNED_IN
            signin.record_failure(conn, key, now, lockout_s=settings.auth_lockout_s)
            return Outcome.WRONG
    except Exception as exc:
        _log.warning("sign-in refused: the lockout could not be read or written (%s)", type(exc).__name__)
        return Outcome.UNAVAILABLE


def _locked_message(settings: Settings) -> str | None:
    """What to tell a visitor whose address is locked out now, else ``None``."""
    key = signin.signin_key(_page_client(settings), signin.PASSWORD_ACCOUNT)
    try:
        with _engine(settings).connect() as conn:
            until = signin.locked_until(conn, key, datetime.now(UTC))
    except Exception as exc:
        return t("The database cannot be read: {reason}").format(reason=type(exc).__name__)
    if until is None:
        return None
    return t("Too many wrong passwords. Try again after {time}.").format(time=_clock(until))


def _engine(settings: Settings) -> Any:
    # Imported on first use, by a script run or a request: its cached engine belongs to the running server.
    from ui import data

    return data.engine(settings.database_url)


def _page_client(settings: Settings) -> str:
    """The address of the browser showing this page, found the way the ``signin`` route finds it."""
    peer = st.context.ip_address  # None for loopback; not even a string where no browser is connected
    forwarded = st.context.headers.get_all("X-Forwarded-For")
    return session.client_address(peer if isinstance(peer, str) else None, forwarded, settings.trusted_proxies)


def _clock(moment: datetime) -> str:
    """``moment`` as a time of day in the browser's time zone, or in UTC when the browser did not say."""
    try:
        zone = ZoneInfo(st.context.timezone) if st.context.timezone else None
    except (ValueError, ZoneInfoNotFoundError):
        zone = None
    if zone is None:
        return moment.astimezone(UTC).strftime("%H:%M:%S UTC")
    return moment.astimezone(zone).strftime("%H:%M:%S")


# --- OpenID Connect -----------------------------------------------------------------------------------------------


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
