"""Active Directory as an inventory source: enabled Windows computer accounts found through LDAP.

A YAML inventory's ``ldap`` section names the directory, the search base and how to bind (NTLM or simple
with a named credential, or anonymous); ``search_computers`` pages through the computers and yields each
enabled account's ``dNSHostName``. ldap3 is imported only when a directory is searched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger("collectors")

LDAP_PAGE_SIZE = 500
LdapAuth = Literal["ntlm", "simple", "anonymous"]
LDAP_AUTHS = ("ntlm", "simple", "anonymous")


class SourceError(ValueError):
    """The directory source is misconfigured; the message names the field."""


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
    auth = str(fields.get("auth", "ntlm")).lower()
    if auth not in LDAP_AUTHS:
        raise SourceError(f"ldap auth {auth!r} is not one of {', '.join(LDAP_AUTHS)}")
    needed = ("url", "base") if auth == "anonymous" else ("url", "base", "bind_credential")
    missing = [k for k in needed if not fields.get(k)]
    if missing:
        raise SourceError(f"ldap source needs {', '.join(missing)}")
    return LdapSource(
        url=str(fields["url"]),
        base=str(fields["base"]),
        credential=str(fields.get("bind_credential") or ""),
        auth=auth,  # type: ignore[arg-type]  # checked against LDAP_AUTHS above
        page_size=_positive_int(fields.get("page_size", LDAP_PAGE_SIZE), "page_size"),
        ca_bundle=fields.get("ca_bundle"),
        timeout_s=float(fields.get("timeout_s", 10.0)),
    )


def _positive_int(value: Any, name: str) -> int:
    text = "" if value is None else str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise SourceError(f"ldap {name} {text!r} is not a positive whole number")
    return int(text)


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
        flags = _first(attributes.get("userAccountControl"))
        if name and not int(flags or 0) & ACCOUNTDISABLE:
            yield str(name)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
