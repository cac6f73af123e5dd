"""Active Directory as an inventory source.

A YAML inventory's ``ldap`` section names the directory, the search base and how to bind (NTLM or simple
with a named credential, or anonymous); ``search_computers`` pages through the computers and yields each
enabled account's ``dNSHostName``. ldap3 is imported only when a directory is searched.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from collectors.credentials import NAME_RULE, valid_name
from collectors.names import InvalidText, ascii_int, field_text, plain_text, quoted

log = logging.getLogger("collectors")

LDAP_PAGE_SIZE = 500
LdapAuth = Literal["ntlm", "simple", "anonymous"]
LDAP_AUTHS = ("ntlm", "simple", "anonymous")


class SourceError(ValueError):
    """The directory source is misconfigured; the message names the field."""


# --- the directory -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LdapSource:
    """An LDAP search for enabled Windows computer accounts (``dNSHostName``)."""

    url: str
    base: str
    credential: str
    auth: LdapAuth = "ntlm"
    page_size: int = LDAP_PAGE_SIZE
    ca_bundle: str | None = None
    timeout_s: float = 10.0


LdapSearch = Callable[[LdapSource, Mapping[str, str]], Iterable[str]]


def ldap_source(fields: dict[str, Any]) -> LdapSource:
    auth = _setting(fields, "auth").lower() or "ntlm"
    if auth not in LDAP_AUTHS:
        raise SourceError(f"ldap auth {quoted(auth)} is not one of {', '.join(LDAP_AUTHS)}")
    settings = {k: _setting(fields, k) for k in ("url", "base", "bind_credential", "ca_bundle")}
    needed = ("url", "base") if auth == "anonymous" else ("url", "base", "bind_credential")
    missing = [k for k in needed if not settings[k]]
    if missing:
        raise SourceError(f"ldap source needs {', '.join(missing)}")
    if any(c.isspace() for c in settings["url"]):
        raise SourceError(f"ldap url {quoted(settings['url'])} contains spaces")
    credential = settings["bind_credential"]
    if credential and not valid_name(credential):
        raise SourceError(f"ldap bind_credential: credential name {quoted(credential)}: {NAME_RULE}")
    return LdapSource(
        url=settings["url"],
        base=settings["base"],
        credential=credential,
        auth=auth,  # type: ignore[arg-type]  # checked against LDAP_AUTHS above
        page_size=_positive_int(_number(fields, "page_size", LDAP_PAGE_SIZE), "page_size"),
        ca_bundle=settings["ca_bundle"] or None,
        timeout_s=_seconds(_number(fields, "timeout_s", 10.0)),
    )


def _setting(fields: Mapping[str, Any], name: str) -> str:
    try:
        return plain_text(f"ldap {name}", field_text(fields, name))
    except InvalidText as exc:
        raise SourceError(f"ldap {exc}" if str(exc).startswith(name) else str(exc)) from None


def _number(fields: Mapping[str, Any], name: str, default: float) -> str:
    value = fields.get(name, default)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SourceError(f"ldap {name} must be a number")
    return _setting({name: value}, name)


def _positive_int(text: str, name: str) -> int:
    number = ascii_int(text)
    if number is None or number < 1:
        raise SourceError(f"ldap {name} {quoted(text)} is not a positive whole number")
    return number


def _seconds(text: str) -> float:
    number = float(text) if re.fullmatch(r"[0-9]{1,9}(\.[0-9]{0,9})?|\.[0-9]{1,9}", text) else 0.0
    if not number > 0:
        raise SourceError(f"ldap timeout_s {quoted(text)} is not a positive number of seconds")
    return number


# Enabled accounts are checked on the client: the AD bitwise matching rule is not portable.
LDAP_FILTER = "(&(objectClass=computer)(operatingSystem=Windows*)(dNSHostName=*))"
LDAP_ATTRIBUTES = ("dNSHostName", "userAccountControl")
ACCOUNTDISABLE = 0x2


def search_computers(source: LdapSource, secrets: Mapping[str, str]) -> Iterator[str]:
    """``dNSHostName`` of enabled Windows computer accounts under ``source.base`` (paged search)."""
    import ldap3  # imported here: only YAML inventories with an ldap section need it

    tls = ldap3.Tls(ca_certs_file=source.ca_bundle) if source.ca_bundle else None
    server = ldap3.Server(source.url, get_info=ldap3.NONE, tls=tls, connect_timeout=source.timeout_s)
    connection = ldap3.Connection(
        server,
        **_ldap_bind(source, secrets),
        read_only=True,
        receive_timeout=max(1, math.ceil(source.timeout_s)),  # ldap3 packs it as a whole number
        raise_exceptions=True,
    )
    with connection:
        yield from _enabled_hosts(connection, source)


def _ldap_bind(source: LdapSource, secrets: Mapping[str, str]) -> dict[str, Any]:
    """ldap3 bind arguments: anonymous, or the bind credential with simple or NTLM authentication."""
    import ldap3

    from collectors.credentials import CredentialError, load_credentials

    if source.auth == "anonymous":
        return {"authentication": ldap3.ANONYMOUS}
    try:
        credential = load_credentials([source.credential], environ=secrets or None).get(source.credential)
    except CredentialError as exc:
        raise SourceError(str(exc)) from None
    if credential is None:
        raise SourceError(f"ldap bind credential {source.credential!r} is not configured")
    if source.auth == "simple" and not source.url.lower().startswith("ldaps://"):
        log.warning("ldap source %s: simple bind over plain LDAP sends the password in clear", source.url)
    return {
        "user": credential.username,
        "password": credential.secret(),
        "authentication": ldap3.NTLM if source.auth == "ntlm" else ldap3.SIMPLE,
    }


def _enabled_hosts(connection: Any, source: LdapSource) -> Iterator[str]:
    """The names of enabled accounts; the inventory checks each with ``check_host``."""
    entries = connection.extend.standard.paged_search(
        source.base,
        LDAP_FILTER,
        attributes=list(LDAP_ATTRIBUTES),
        paged_size=source.page_size,
        generator=True,
    )
    for entry in entries:
        attributes = entry.get("attributes") or {}
        name = _first(attributes.get("dNSHostName"))
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        flags = _flags(_first(attributes.get("userAccountControl")))
        if not name:
            continue
        if flags is None:  # cannot tell whether the account is disabled
            log.warning("ldap source %s: skipped %s: userAccountControl is not a number", source.url, quoted(str(name)))
        elif not flags & ACCOUNTDISABLE:
            yield str(name)


def _flags(value: Any) -> int | None:
    if value is None or isinstance(value, int):
        return value or 0
    text = str(value).strip()
    number = ascii_int(text.removeprefix("-"))
    return None if number is None else -number if text.startswith("-") else number


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
