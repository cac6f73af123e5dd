"""What an inventory entry may name: the one rule for a host, an SPN, a credential name and free text.

``check_host`` is the one rule for a host whatever its source (a CSV row, a YAML entry, a directory's
``dNSHostName``): an IPv4 or IPv6 address, or a DNS name. ``check_spn`` and ``plain_text`` hold the SPN
and the free-text fields to the same standard, and ``quoted`` puts any of them in a message safely.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from collectors.credentials import NAME_RULE, valid_name

MAX_FIELD_CHARS = 4096  # any one inventory field or ldap setting
MAX_HOST_CHARS = 253  # RFC 1035
MAX_PREFIX_WITHOUT_FORCE = 16
MAX_RANGE_ADDRESSES = 2**20  # even with force: a /12 of IPv4, a /108 of IPv6


class InvalidText(ValueError):
    """A host name, SPN or other inventory text is not acceptable; the message says which and why."""


# Host names: dot-separated labels of ASCII letters, digits, '-' and '_' (1-63 characters, no '-' at either
# end), at most 253 characters; a trailing dot is dropped. RFC 1123 has no '_', but Windows computer names
# may hold one (NetBIOS allows it and AD-integrated DNS registers it), so it is accepted. An internationalised
# name is written in its xn-- form. A name whose last label is all digits is refused: it is an address typed
# wrong (10.1.1, 999.1.1.1), and a Windows computer name is never all digits.
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # an IPv6 zone, as in fe80::1%eth0
_SERVICE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")  # an SPN's service class: HTTP, WSMAN, host
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: isdigit() accepts '²' (int() refuses it), int() reads '٨٠' as 80
# Control characters (Cc: NUL, ESC, tab, ...), lone surrogates and line/paragraph separators have no place in
# a site, a tag or an ldap setting: a database may refuse them (PostgreSQL text holds no NUL) and a terminal
# obeys them. Format characters (Cf: bidi marks, zero-width joiners) are kept: right-to-left and emoji text
# needs them, and the dashboard and the CSV show every such text as text. Host names are ASCII only.
_HIDDEN = frozenset(("Cc", "Cs", "Zl", "Zp"))


def field_text(fields: Mapping[str, Any], name: str) -> str:
    """One field as stripped text, '' when absent; a list, a mapping or over ``MAX_FIELD_CHARS`` is refused."""
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict | set):
        raise InvalidText(f"{name} must be a single value, not a list or a mapping")
    try:
        text = str(value).strip()
    except ValueError:  # an integer too long to print (YAML reads 0x... of any length)
        raise InvalidText(f"{name} is too large a number") from None
    if len(text) > MAX_FIELD_CHARS:
        raise InvalidText(f"{name} is {len(text)} characters long; a field holds at most {MAX_FIELD_CHARS}")
    return text


def port_number(text: str) -> int:
    """``text`` as a TCP port, 1-65535 in ASCII digits; raises ``InvalidText``."""
    number = ascii_int(text)
    if number is None:
        raise InvalidText(f"port {quoted(text)} is not a whole number in 1-65535")
    if not 0 < number < 65536:
        raise InvalidText(f"port {quoted(text)} is out of range 1-65535")
    return number


def check_host(text: str) -> str:
    """``text`` as the inventory keeps it when it is an IPv4/IPv6 address or a DNS name; raises ``InvalidText``.

    An IPv6 address may be written in brackets; the brackets and a name's trailing dot are dropped.
    """
    if not text:
        raise InvalidText("host is missing")
    if text.startswith("[") and text.endswith("]"):
        if ":" in text and _is_address(text[1:-1]):
            return text[1:-1]
        raise InvalidText(f"host {quoted(text)}: only an IPv6 address goes in brackets")
    if _is_address(text):
        return text
    name = text.removesuffix(".")
    reason = _name_problem(name)
    if reason:
        raise InvalidText(f"host {quoted(text)} is neither an IP address nor a DNS name: {reason}")
    return name


def _is_address(text: str) -> bool:
    _, percent, zone = text.partition("%")
    if percent and not _ZONE.fullmatch(zone):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if not name.isascii():
        return "it has non-ASCII characters (write an internationalised name in its xn-- form)"
    if len(name) > MAX_HOST_CHARS:
        return f"it is {len(name)} characters long, at most {MAX_HOST_CHARS}"
    for label in name.split("."):
        if not label:
            return "it has an empty label (two dots in a row, or a leading dot)"
        if not _LABEL.fullmatch(label):
            return f"label {quoted(label)} is not 1-63 letters, digits, '-' or '_' without '-' at either end"
    if name.rpartition(".")[2].isdigit():
        return "its last label is all digits"
    return None


def host_key(host: str) -> str:
    """What makes two spellings one host: an address's value, or a name in lower case."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def check_spn(text: str) -> str:
    """A ``service/host[:port]`` SPN such as ``HTTP/ws01.corp.example``, unchanged; raises ``InvalidText``."""
    service, _, rest = text.partition("/")
    host, colon, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    try:
        if not _SERVICE.fullmatch(service):
            raise InvalidText(text)
        check_host(host)
        if colon:
            port_number(port)
    except InvalidText:
        raise InvalidText(f"spn {quoted(text)} must look like HTTP/host.corp.example") from None
    return text


def expand_cidr(cidr: str, *, force: bool = False) -> Iterator[str]:
    """The host addresses of ``cidr``; raises ``InvalidText``.

    Ranges larger than /16 (IPv4) need ``force``; ranges of more than ``MAX_RANGE_ADDRESSES`` are refused even
    with it (an IPv6 /64 would never finish expanding).
    """
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise InvalidText(f"not a CIDR range: {quoted(cidr)}") from None
    host_bits = network.max_prefixlen - network.prefixlen
    if host_bits > 32 - MAX_PREFIX_WITHOUT_FORCE and not force:
        raise InvalidText(f"range {cidr} has {network.num_addresses} addresses; larger than /16 needs force")
    if network.num_addresses > MAX_RANGE_ADDRESSES:
        raise InvalidText(
            f"range {cidr} has {network.num_addresses} addresses; at most {MAX_RANGE_ADDRESSES} even with force"
        )
    return (str(address) for address in (network.hosts() if host_bits > 1 else iter(network)))


def credential_name(text: str) -> str:
    """``text`` unchanged when it can name a credential (``collectors.credentials``); raises ``InvalidText``."""
    if not valid_name(text):
        raise InvalidText(f"credential name {quoted(text)}: {NAME_RULE}")
    return text


def tag_list(value: Any) -> tuple[str, ...]:
    """Tags from a ``;``-separated field or a YAML list, blanks dropped; raises ``InvalidText``."""
    items = value if isinstance(value, list | tuple) else field_text({"tags": value}, "tags").split(";")
    tags = [field_text({"tags": item}, "tags") for item in items]
    if sum(len(tag) + 1 for tag in tags) > MAX_FIELD_CHARS:
        raise InvalidText(f"tags are longer than {MAX_FIELD_CHARS} characters")
    return tuple(plain_text("tags", tag) for tag in tags if tag)


def plain_text(name: str, text: str) -> str:
    """``text`` unchanged unless it holds a control character or a line separator; raises ``InvalidText``."""
    hidden = next((c for c in text if unicodedata.category(c) in _HIDDEN), None)
    if hidden is not None:
        raise InvalidText(f"{name} {quoted(text)} holds the control character {hidden!r}")
    return text


def ascii_int(text: str) -> int | None:
    """``text`` as a whole number when it is ASCII digits only (a huge one saturates), else None."""
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


def quoted(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message: control characters escaped (``repr``), long text cut short."""
    shown = repr(text[:limit])
    if len(text) <= limit and len(shown) <= 2 * limit:
        return shown
    return f"{shown[:limit]}... ({len(text)} characters)"


def printable(text: str, limit: int = 300) -> str:
    """``text`` on one line for a message: whitespace runs as one space, other unprintables escaped, cut short."""
    line = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in " ".join(text.split())[: limit + 1])
    return line if len(line) <= limit else line[:limit] + "..."
