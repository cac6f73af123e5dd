"""What a host is, derived once for every layer: its main product, the names it answers to, its state in
words, and where the resolution of its failure lives.

* **Main product.** A host may carry several Windows products; ``main_product`` picks the one that speaks
  for it (a failing one before a healthy one), ``kms_client_product`` the one that activates against KMS.
* **Names.** A KMS client names its KMS host however its administrator typed it (``/skms kms01``,
  ``/skms kms01.corp.example``, ``/skms 10.0.0.5``) or as DNS discovery returned it. A host is known by its
  inventory name, its FQDN, its computer name and the address it was reached at. ``name_key`` normalises a
  name once; ``host_keys`` lists every key a host answers to; ``matches`` says whether a name means a host.
  A short name matches a host's computer name or the first label of its names; a name with a domain part
  matches only that exact name, so ``kms01.other.example`` never means the ``kms01`` of another domain.
* **State.** ``HostState``: the license status, with a Licensed KMS client whose renewals fail told apart;
  ``host_state`` in Python and ``STATE`` in SQL follow the same rule, ``state_words`` says it in a language.
* **Resolution.** ``resolution`` gives Microsoft's public article for a code (the CSV's ``resolution_url``)
  and the dashboard's own knowledge-base page beside it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, case

from knowledge.codes import lookup, normalise, normalise_language
from models.enums import ActivationType, HostState, LicenseStatus
from models.records import ProductState
from models.tables import Host

# --- main product ----------------------------------------------------------------------------------

NO_KEY_PRODUCT = ProductState(
    product_id="", activation_type=ActivationType.UNKNOWN, license_status=LicenseStatus.UNLICENSED
)


def main_product(products: Sequence[ProductState]) -> ProductState:
    """The product that speaks for the host: a failing one (not licensed first, then a licensed one whose
    renewals fail) before an unlicensed one before a licensed one; ``NO_KEY_PRODUCT`` when there is none."""
    if not products:
        return NO_KEY_PRODUCT

    def badness(p: ProductState) -> tuple[bool, bool, str]:
        return (p.error_code is None, p.license_status is LicenseStatus.LICENSED, p.product_id)

    return min(products, key=badness)


def kms_client_product(products: Sequence[ProductState]) -> ProductState | None:
    """The product activating against KMS, by the same rule, if there is one."""
    clients = [p for p in products if p.activation_type is ActivationType.KMS_CLIENT]
    return main_product(clients) if clients else None


# --- names ------------------------------------------------------------------------------------------

Kind = Literal["address", "fqdn", "short"]


@dataclass(frozen=True, slots=True)
class NameKey:
    """A normalised machine name and what kind of name it is."""

    key: str
    kind: Kind


def name_key(name: str | None) -> NameKey | None:
    """The normalised form of a name: lower case, no trailing dot, no ``:port``, brackets off an IPv6 address."""
    text = (name or "").strip().lower()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.rstrip(".")
    if not text:
        return None
    if is_address(text):
        return NameKey(text, "address")
    return NameKey(text, "fqdn" if "." in text else "short")


def host_keys(name: str | None, fqdn: str | None, computer_name: str | None, address: str | None) -> frozenset[NameKey]:
    """Every key a host answers to: its inventory name, FQDN, address, and their short forms."""
    keys = {k for k in (name_key(name), name_key(fqdn), name_key(address)) if k is not None}
    shorts = {NameKey(k.key.split(".", 1)[0], "short") for k in keys if k.kind == "fqdn"}
    computer = name_key(computer_name.split(".", 1)[0] if computer_name else None)
    if computer is not None and computer.kind == "short":
        shorts.add(computer)
    return frozenset(keys | shorts)


def matches(name: str | None, keys: frozenset[NameKey]) -> bool:
    """Whether ``name`` means the host with ``keys`` (see the module's rule)."""
    wanted = name_key(name)
    return wanted is not None and wanted in keys


def is_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def machine_name(name: str | None) -> str:
    """A machine name as compared and cached: ``name_key``'s form, or empty."""
    key = name_key(name)
    return key.key if key is not None else ""


def qualified(name: str, domain: str | None) -> str:
    """A short name as a domain member resolves it: with its own DNS domain appended."""
    key = name_key(name)
    if key is not None and key.kind == "short" and domain:
        return f"{key.key}.{domain.strip().rstrip('.').lower()}"
    return name


def fqdn_of(computer_name: str | None, domain: str | None) -> str | None:
    """A machine's FQDN from its computer name and domain, lower case."""
    if not computer_name:
        return None
    name = f"{computer_name}.{domain}" if domain and "." not in computer_name else computer_name
    return name.lower()


# --- state ------------------------------------------------------------------------------------------


def host_state(license_status: str | None, renewal_failing: bool | None) -> HostState | None:
    """The state people read; ``None`` when the license status was never read."""
    if renewal_failing:
        return HostState.RENEWAL_FAILING
    try:
        return HostState(license_status) if license_status else None
    except ValueError:
        return None


# The same rule in SQL, for filters and counts.
STATE: ColumnElement[str] = case(
    (Host.renewal_failing.is_(True), HostState.RENEWAL_FAILING.value), else_=Host.license_status
)

# Words for the states that are not shown as Windows names them (the rest read as their value).
STATE_WORDS: dict[str, dict[HostState, str]] = {
    "en": {HostState.RENEWAL_FAILING: "Licensed \u2014 renewal failing"},
    "zh-TW": {
        HostState.UNLICENSED: "未授權",
        HostState.LICENSED: "已授權",
        HostState.RENEWAL_FAILING: "已授權—續約失敗",
        HostState.OOB_GRACE: "初始寬限期",
        HostState.OOT_GRACE: "額外寬限期",
        HostState.NON_GENUINE_GRACE: "非正版寬限期",
        HostState.NOTIFICATION: "通知模式",
        HostState.EXTENDED_GRACE: "延長寬限期",
    },
}


def state_words(state: HostState | str | None, lang: str = "en") -> str:
    """``state`` in words in ``lang``."""
    if state is None:
        return ""
    try:
        known = HostState(state)
    except ValueError:
        return str(state)
    return STATE_WORDS[normalise_language(lang)].get(known, known.value)


# --- resolution -------------------------------------------------------------------------------------

KB_PAGE = "error_codes"  # the dashboard's knowledge-base page (URL path)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a failure's fix is written: Microsoft's public article (its section for the code when known)
    and the dashboard's own knowledge-base page, relative to the dashboard's root."""

    code: str
    article_url: str
    kb_path: str


def resolution(code: object, lang: str = "en") -> Resolution | None:
    """Both resolution links for ``code``; ``None`` for anything that is not a well-formed failure code."""
    canonical = normalise(code) if isinstance(code, str | int) else None
    if canonical is None:
        return None
    lang = normalise_language(lang)
    kb_path = f"{KB_PAGE}?{urlencode({'code': canonical, 'lang': lang})}"
    return Resolution(canonical, lookup(canonical, lang).url, kb_path)
