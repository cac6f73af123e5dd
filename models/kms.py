"""Reads about KMS hosts and their clients: the KMS hosts page, count history, and what a client's KMS name
resolves to (by ``models.identity``'s one rule, whatever form of name the client used).

The collector's KMS post-pass resolves each client's KMS name here and stores the answer as the client's
``kms_host_id``; the KMS hosts page then counts clients per host in SQL, with those failing against the host per
error code, and ``knowledge.kms_health`` judges each host's health from that evidence. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Connection, case, cast, func, literal, null, or_, select, union_all

from knowledge import kms_health
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
    "listening", "observed_at", "clients", "failing_clients", "failing_here", "license_status",
    "last_failure_class",
)  # fmt: skip
"""The evidence ``kms_hosts`` reads; ``failing_clients`` fail for any cause, ``failing_here`` against the host.
The frame adds ``state`` and ``reasons`` (after ``kms_role``), and ``activated``, ``serves`` and ``threshold``."""
COUNT_COLUMNS = (
    "current_count", "total_requests", "failed_requests", "licensed_requests", "non_genuine_requests", "listening_port",
)  # fmt: skip


def kms_hosts(conn: Connection, lang: str = "en") -> pd.DataFrame:
    """Every KMS host with its latest counters, its clients and its health (``knowledge.kms_health``).

    A KMS host is a machine with KMS counters, or one that clients resolve to and that was never read
    (a KMS host switched off shows here as unreachable rather than not at all). One query gathers the
    evidence: the newest counters, the host's own poll and activation, its clients aggregated per error
    code; only the verdict per host is made in Python. ``reasons`` are in ``lang``.
    """
    latest = latest_stats()
    codes = kms_health.client_failure_codes()
    clients = _clients_by_host(codes)
    # Two branches, each driven by the few rows that name KMS hosts so that neither scans the hosts table: the
    # hosts with counters, and the hosts that clients use but that were never read (so have no counters).
    with_counters = (
        _evidence_select(latest.c, clients, codes)
        .join(latest, latest.c.host_id == Host.id)
        .outerjoin(clients, clients.c.kms_host_id == Host.id)
    )
    no_counters = {name: cast(null(), column.type) for name, column in latest.c.items()}
    never_read = (
        _evidence_select(no_counters, clients, codes)
        .select_from(clients)
        .join(Host, Host.id == clients.c.kms_host_id)
        .where(Host.last_success_at.is_(None), ~select(KmsHostStat.id).where(KmsHostStat.host_id == Host.id).exists())
    )
    rows = conn.execute(union_all(with_counters, never_read).order_by("host")).all()
    evidence = [_evidence(row, codes, lang) for row in rows]
    verdicts = [kms_health.judge(e) for e in evidence]
    values = dict(zip(KMS_HOST_COLUMNS, zip(*rows, strict=False), strict=False))  # column -> its values
    columns: dict[str, Any] = {name: list(values.get(name, ())) for name in KMS_HOST_COLUMNS}
    for name in COUNT_COLUMNS:
        columns[name] = pd.array(columns[name], dtype="Int64")  # an unknown count stays <NA>, not NaN
    return pd.DataFrame(
        {
            **{name: columns[name] for name in KMS_HOST_COLUMNS[:5]},
            "state": [verdict.state.value for verdict in verdicts],
            "reasons": [verdict.summary(lang) for verdict in verdicts],
            **{name: columns[name] for name in KMS_HOST_COLUMNS[5:]},
            "activated": [e.activated for e in evidence],
            "serves": [_serves(e) for e in evidence],
            "threshold": [kms_health.threshold(e.count, e.role) for e in evidence],
        }
    )


def _evidence_select(stats: Any, clients: Any, codes: tuple[str, ...]) -> Any:
    """``KMS_HOST_COLUMNS``, ``read`` and a count per client code, with the counters taken from ``stats``."""
    by_code = [func.coalesce(clients.c[f"code_{i}"], 0) for i in range(len(codes))]
    columns = (
        Host.name, Host.computer_name, Host.fqdn, Host.product_type, Host.kms_role, stats["current_count"],
        stats["total_requests"], stats["failed_requests"], stats["licensed_requests"], stats["non_genuine_requests"],
        stats["listening_port"], stats["dns_publishing"], stats["listening"], stats["observed_at"],
        func.coalesce(clients.c.clients, 0), func.coalesce(clients.c.failing_clients, 0), sum(by_code, literal(0)),
        Host.license_status, Host.last_failure_class, Host.last_success_at.is_not(None), *by_code,
    )  # fmt: skip
    names = (*KMS_HOST_COLUMNS, "read", *codes)
    return select(*(column.label(name) for name, column in zip(names, columns, strict=True)))


def _clients_by_host(codes: tuple[str, ...]) -> Any:
    """Per KMS host: its clients, those failing for any cause, and for each of ``codes`` those failing with it.

    One pass over the clients in ``kms_host_id`` order; the per-code counts are columns ``code_0``, ``code_1``...
    """
    client = Host.__table__.alias("client")
    failing = (client.c.license_status != LICENSED) | client.c.error_code.is_not(None)
    return (
        select(
            client.c.kms_host_id,
            func.count().label("clients"),
            func.sum(case((failing, 1), else_=0)).label("failing_clients"),
            *(
                func.sum(case((client.c.error_code == code, 1), else_=0)).label(f"code_{i}")
                for i, code in enumerate(codes)
            ),
        )
        .where(client.c.kms_host_id.is_not(None))
        .group_by(client.c.kms_host_id)
        .cte("clients_by_host")
    )


def _serves(evidence: kms_health.KmsEvidence) -> str | None:
    """What a Windows KMS host's count lets it activate (``knowledge.kms.KmsState``); None for the rest."""
    if evidence.count is None or not kms_health.serves_windows(evidence.role):
        return None
    return kms_state(evidence.count).value


def _evidence(row: Any, codes: tuple[str, ...], lang: str) -> kms_health.KmsEvidence:
    """The health evidence in one row of the ``kms_hosts`` query (the last columns count clients per code)."""
    per_code = zip(codes, row[-len(codes) :], strict=True) if codes else ()
    return kms_health.KmsEvidence(
        count=row.current_count,
        role=row.kms_role,
        listening=row.listening,
        port=row.listening_port,
        dns_publishing=row.dns_publishing,
        activated=None if row.license_status is None else row.license_status == LICENSED,
        license_status=hostfacts.state_words(row.license_status, lang) or None,
        read=bool(row.read),
        failure=row.last_failure_class,
        clients=int(row.clients),
        failing_codes=tuple((code, int(n)) for code, n in per_code if n),
    )


def kms_count_history(conn: Connection, host: str) -> pd.DataFrame:
    rows = conn.execute(
        select(KmsHostStat.observed_at, KmsHostStat.current_count)
        .join(Host, Host.id == KmsHostStat.host_id)
        .where(Host.name == host)
        .order_by(KmsHostStat.observed_at)
    ).all()
    return pd.DataFrame(rows, columns=["observed_at", "current_count"])
