"""Who a machine name means: the one identity rule for names given as FQDN, short name or IP address.

A KMS client names its KMS host however its administrator typed it (``/skms kms01``,
``/skms kms01.corp.example``, ``/skms 10.0.0.5``) or as DNS discovery returned it. A host is known by its
inventory name, its FQDN, its computer name and the address it was reached at. ``name_key`` normalises a
name once; ``host_keys`` lists every key a host answers to; ``matches`` says whether a name means a host.
A short name matches a host's computer name or the first label of its names; a name with a domain part
matches only that exact name, so ``kms01.other.example`` never means the ``kms01`` of another domain.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

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
    if _is_address(text):
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


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
