"""What the hosts table says about a host after a poll that read it: its main product's state, its names,
its OS, and when each part was last read.

A poll may read a host only in part: an optional WMI class that failed leaves its fields as they were
(their last known value, with the time they were read in ``*_read_at``), and a failed event-log read
never erases a known error code. ``unread_kept`` says which of a poll's classes were not read;
``assignments`` gives the update for such a group; ``row`` the values of one host.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func

from models.hostfacts import fqdn_of, machine_name, main_product
from models.records import HostObservation, ProductState
from models.tables import Host

# The fields each optional class gives, and the column that says when they were last read.
KEPT_WHEN_UNREAD: dict[str, tuple[str, ...]] = {
    "Win32_ComputerSystem": ("computer_name", "domain", "fqdn", "search_key"),
    "Win32_OperatingSystem": ("os_caption", "os_version", "product_type", "clock_skew_s"),
    "SoftwareLicensingService": ("kms_host", "kms_fqdn"),
    "Win32_NTLogEvent": ("error_code",),
}
READ_AT: dict[str, str] = {
    "Win32_ComputerSystem": "identity_read_at",
    "Win32_OperatingSystem": "os_read_at",
    "Win32_NTLogEvent": "error_read_at",
}


def kms_target(product: ProductState) -> str | None:
    """``host:port`` of the KMS host a client uses: the pinned one, else the one it discovered."""
    machine = product.kms_machine or product.discovered_kms_machine
    if not machine:
        return None
    port = product.kms_port if product.kms_machine else product.discovered_kms_port
    return f"{machine}:{port}" if port else machine


SUMMARY_FIELDS = (
    "computer_name",
    "domain",
    "fqdn",
    "os_caption",
    "os_version",
    "product_type",
    "clock_skew_s",
    "activation_type",
    "license_status",
    "error_code",
    "grace_minutes",
    "grace_ends_at",
    "kms_host",
    "kms_fqdn",
    "search_key",
    "signin",
    "unread_classes",
    "renewal_failing",
    "address",
    "kms_role",
)


def row(o: HostObservation, hid: int) -> dict[str, Any]:
    """One host's values for the summary update (``hid``, ``at`` and one per ``SUMMARY_FIELDS``)."""
    main = main_product(o.products)
    return {
        "hid": hid,
        "at": o.observed_at,
        "computer_name": o.computer_name,
        "domain": o.domain,
        "fqdn": fqdn_of(o.computer_name, o.domain),
        "os_caption": o.os_caption,
        "os_version": o.os_version,
        "product_type": o.product_type.value if o.product_type else None,
        "clock_skew_s": o.clock_skew_seconds,
        "activation_type": main.activation_type.value,
        "license_status": main.license_status.value,
        "error_code": main.error_code,
        "grace_minutes": main.grace_minutes,
        "kms_host": kms_target(main),
        "kms_fqdn": machine_name(main.kms_machine or main.discovered_kms_machine) or None,
        "grace_ends_at": _grace_end(o, main.grace_minutes),
        "search_key": search_key(o.host, o.computer_name),
        "signin": o.signin,
        "unread_classes": ",".join(o.unread) or None,
        "renewal_failing": main.renewal_failing,
        "address": o.address,
        "kms_role": o.kms.application if o.kms is not None else None,
    }


def search_key(name: str, computer_name: str | None = None) -> str:
    """What host search matches: both names, case-folded in Python so every backend agrees."""
    return f"{name}\n{computer_name or ''}".casefold()


def unread_kept(o: HostObservation) -> frozenset[str]:
    """The optional classes this poll did not read whose fields keep their last value."""
    return frozenset(c for c in o.unread if c in KEPT_WHEN_UNREAD)


def assignments(unread: frozenset[str]) -> dict[str, Any]:
    """The update of a host's summary when the classes in ``unread`` were not read by the poll."""
    kept = {name for cls in unread for name in KEPT_WHEN_UNREAD[cls]}
    values: dict[str, Any] = {
        name: func.coalesce(bindparam(name), getattr(Host, name)) if name in kept else bindparam(name)
        for name in SUMMARY_FIELDS
    }
    values.update({column: bindparam("at") for cls, column in READ_AT.items() if cls not in unread})
    return values


def _grace_end(o: HostObservation, minutes: int | None) -> datetime | None:
    """When the grace period ends; unknown for a count of minutes no Windows reports (a hostile value)."""
    if not minutes or not 0 < minutes <= 2**31 - 1:
        return None
    return o.observed_at + timedelta(minutes=minutes)
