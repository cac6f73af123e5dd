"""Reads about KMS hosts and their clients: the KMS hosts page, count history, and what a client's KMS name
resolves to (by ``models.identity``'s one rule, whatever form of name the client used).

The collector's KMS post-pass resolves each client's KMS name here and stores the answer as the client's
``kms_host_id``; the KMS hosts page then counts clients per host in SQL. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, case, func, or_, select

from knowledge.kms import kms_state
from models import hostfacts
from models.enums import ActivationType, LicenseStatus
from models.tables import Host, KmsHostStat

LICENSED = LicenseStatus.LICENSED.value


@dataclass(frozen=True, slots=True)
class KmsHostRecord:
    """What the database knows about the machine a client's KMS name resolves to."""

    id: int
    name: str  # the inventory name: host detail's key
    fqdn: str | None
    activation_type: str | None
    license_status: str | None
    kms_role: str | None  # windows, office or other when the machine is a KMS host
    os_version: str | None
    os_caption: str | None
    product_type: str | None
    current_count: int | None  # latest count of its KMS host role, if it has one
    last_failure_class: str | None
    last_failure_reason: str | None
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    computer_name: str | None
    address: str | None

    @property
    def keys(self) -> frozenset[hostfacts.NameKey]:
        return hostfacts.host_keys(self.name, self.fqdn, self.computer_name, self.address)

    @property
    def is_windows_kms_host(self) -> bool:
        return self.kms_role == "windows" or self.activation_type == ActivationType.KMS_HOST.value

    @property
    def unreachable(self) -> bool:
        """Its latest poll failed (or it was never read)."""
        if self.last_success_at is None:
            return self.last_attempt_at is not None
        return self.last_failure_class is not None


@dataclass(frozen=True, slots=True)
class KmsClientRow:
    """A host whose Windows activates against KMS, with the KMS name it uses (for the KMS post-pass)."""

    host: str
    kms_name: str
    product_type: str | None
    license_status: str | None
    error_code: str | None
    os_version: str | None
    os_caption: str | None
    domain: str | None


def kms_clients(conn: Connection) -> list[KmsClientRow]:
    """Every KMS client that names a KMS host: narrow columns, no paging, no DataFrame."""
    rows = conn.execute(
        select(
            Host.name, Host.kms_fqdn, Host.product_type, Host.license_status, Host.error_code, Host.os_version,
            Host.os_caption, Host.domain,
        )
        .where(Host.activation_type == ActivationType.KMS_CLIENT.value, Host.kms_fqdn.is_not(None))
        .order_by(Host.name)
    ).all()  # fmt: skip
    return [KmsClientRow(r[0], str(r[1]), *r[2:]) for r in rows]


def resolve_clients(
    conn: Connection, names: Mapping[str, str], address_of: Callable[[str], str | None] | None = None
) -> dict[str, KmsHostRecord | None]:
    """Each client (host name -> the KMS name it uses) -> the machine that name means, or None.

    A name that matches no known machine is looked up (``address_of``, a DNS lookup) and matched by
    address: an inventory that lists the KMS host by IP address never learns its name when it is down.
    """
    resolved, ambiguous = _resolve(conn, names.values())
    if address_of is not None:
        addresses = {
            name: address_of(name) for name, found in resolved.items() if found is None and name not in ambiguous
        }
        by_address, _ = _resolve(conn, [a for a in addresses.values() if a])
        resolved.update({name: by_address[a] for name, a in addresses.items() if a and by_address.get(a)})
    return {client: resolved.get(kms_name) for client, kms_name in names.items()}


def resolve_kms_names(conn: Connection, names: Iterable[str]) -> dict[str, KmsHostRecord | None]:
    """Each name -> the one machine it means, or None when it means none or several."""
    return _resolve(conn, names)[0]


def _resolve(conn: Connection, names: Iterable[str]) -> tuple[dict[str, KmsHostRecord | None], set[str]]:
    """The machine each name means, and the names that mean several (a bare name shared by two domains).

    One query gathers every machine any of the names could mean; ``models.identity`` decides.
    """
    keys = {name: hostfacts.name_key(name) for name in set(names)}
    wanted = [k for k in keys.values() if k is not None]
    if not wanted:
        return dict.fromkeys(keys), set()
    candidates = [KmsHostRecord(*row) for row in conn.execute(_candidates(wanted)).all()]
    host_keys = {c.id: c.keys for c in candidates}
    resolved: dict[str, KmsHostRecord | None] = {}
    ambiguous: set[str] = set()
    for name, key in keys.items():
        found = [c for c in candidates if key is not None and key in host_keys[c.id]]
        resolved[name] = found[0] if len(found) == 1 else None
        if len(found) > 1:
            ambiguous.add(name)
    return resolved, ambiguous


def _candidates(wanted: list[hostfacts.NameKey]) -> Any:
    latest = latest_stats()
    full = [k.key for k in wanted if k.kind != "short"]
    shorts = [k.key for k in wanted if k.kind == "short"]
    name = func.lower(Host.name)
    conditions: list[ColumnElement[bool]] = [
        name.in_(full), Host.fqdn.in_(full), Host.address.in_(full), func.lower(Host.computer_name).in_(shorts),
        name.in_(shorts),
    ]  # fmt: skip
    # over-fetching is harmless (models.identity decides); the names come from hosts, hence the escaping
    conditions += [name.startswith(f"{s}.", autoescape=True) for s in shorts]
    conditions += [Host.fqdn.startswith(f"{s}.", autoescape=True) for s in shorts]
    return (
        select(
            Host.id, Host.name, Host.fqdn, Host.activation_type, Host.license_status, Host.kms_role, Host.os_version,
            Host.os_caption, Host.product_type, latest.c.current_count, Host.last_failure_class,
            Host.last_failure_reason, Host.last_success_at, Host.last_attempt_at, Host.computer_name, Host.address,
        )
        .outerjoin(latest, latest.c.host_id == Host.id)
        .where(or_(*conditions))
    )  # fmt: skip


def latest_stats() -> Any:
    """Each KMS host's newest counters row, as a subquery."""
    newest = (
        select(KmsHostStat.host_id, func.max(KmsHostStat.observed_at).label("at"))
        .group_by(KmsHostStat.host_id)
        .subquery()
    )
    return (
        select(KmsHostStat)
        .join(newest, (newest.c.host_id == KmsHostStat.host_id) & (newest.c.at == KmsHostStat.observed_at))
        .subquery()
    )


KMS_HOST_COLUMNS = (
    "host", "computer_name", "fqdn", "product_type", "kms_role", "current_count", "total_requests",
    "failed_requests", "licensed_requests", "non_genuine_requests", "listening_port", "dns_publishing",
    "listening", "observed_at", "clients", "failing_clients",
)  # fmt: skip


def kms_hosts(conn: Connection) -> pd.DataFrame:
    """Every KMS host with its latest counters and its clients: every host whose KMS name resolved to it."""
    latest = latest_stats()
    client = Host.__table__.alias("client")
    failing = (client.c.license_status != LICENSED) | client.c.error_code.is_not(None)
    clients = (
        select(
            client.c.kms_host_id,
            func.count().label("clients"),
            func.sum(case((failing, 1), else_=0)).label("failing_clients"),
        )
        .where(client.c.kms_host_id.is_not(None))
        .group_by(client.c.kms_host_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            Host.name, Host.computer_name, Host.fqdn, Host.product_type, Host.kms_role, latest.c.current_count,
            latest.c.total_requests, latest.c.failed_requests, latest.c.licensed_requests,
            latest.c.non_genuine_requests, latest.c.listening_port, latest.c.dns_publishing, latest.c.listening,
            latest.c.observed_at, func.coalesce(clients.c.clients, 0), func.coalesce(clients.c.failing_clients, 0),
        )
        .join(latest, latest.c.host_id == Host.id)
        .outerjoin(clients, clients.c.kms_host_id == Host.id)
        .order_by(Host.name)
    ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=list(KMS_HOST_COLUMNS))
    frame.insert(6, "state", [kms_state(int(c)).value for c in frame["current_count"]])
    return frame


def kms_count_history(conn: Connection, host: str) -> pd.DataFrame:
    rows = conn.execute(
        select(KmsHostStat.observed_at, KmsHostStat.current_count)
        .join(Host, Host.id == KmsHostStat.host_id)
        .where(Host.name == host)
        .order_by(KmsHostStat.observed_at)
    ).all()
    return pd.DataFrame(rows, columns=["observed_at", "current_count"])
