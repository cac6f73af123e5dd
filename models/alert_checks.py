"""The alert checks: what each alert rule looks for, asked of the database in SQL (the query layer for alerts).

A check is ``(conn, params, now) -> list[Finding]``: one ``models.alerts.Finding`` per subject that fires now,
with JSON-safe facts. ``params`` carries the rule's name, its severity and the settings that give its
thresholds, so the checks hold no number of their own and never name a rule. ``alerting.rules`` maps each
check's name to its function; a rule that needs new data gets a new check here.

Hosts are counted and filtered in SQL; only the subjects that fire come back, with narrow columns. The checks
about hosts and KMS hosts are here, those about DNS, collectors and error-code trends in
``models.alert_checks_fleet``. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, case, literal, or_, select

from knowledge.kms_health import WINDOWS
from models.alerts import Finding
from models.enums import ActivationType, LicenseStatus
from models.hostfacts import resolution
from models.kms import latest_stats
from models.tables import Host, KmsHostStat

CRITICAL = "critical"
LICENSED = LicenseStatus.LICENSED.value
NOT_ACTIVATED = (LicenseStatus.UNLICENSED.value, LicenseStatus.NOTIFICATION.value)
DAY_S = 86400


@dataclass(frozen=True, slots=True)
class CheckParams:
    """What a check is asked with: the rule it serves, its severity, and its settings by name."""

    rule: str
    severity: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.settings[name]

    def finding(self, subject_key: str, subject: str, **facts: Any) -> Finding:
        return Finding(self.rule, subject_key, subject, self.severity, facts)

    def finding_at(self, severity: str, subject_key: str, subject: str, **facts: Any) -> Finding:
        """A finding more (or less) severe than the rule's own severity."""
        return Finding(self.rule, subject_key, subject, severity, facts)


Check = Callable[[Connection, CheckParams, datetime], list[Finding]]

# A host fails activation: not Licensed, and either an error code says why or Windows is unlicensed outright.
FAILING = and_(
    Host.license_status.is_not(None),
    Host.license_status != LICENSED,
    or_(Host.error_code.is_not(None), Host.license_status.in_(NOT_ACTIVATED)),
)


def days_left(ends: datetime | None, now: datetime) -> float | None:
    return None if ends is None else round((ends - now).total_seconds() / DAY_S, 1)


def code_facts(code: str | None) -> dict[str, Any]:
    """An error code and both places its fix is written (as the CSV export gives them)."""
    return dict(_code_facts(code))


@lru_cache(maxsize=1024)
def _code_facts(code: str | None) -> tuple[tuple[str, Any], ...]:
    fix = resolution(code) if code else None
    if fix is None:
        return (("error_code", code),)
    return (("error_code", fix.code), ("resolution_url", fix.article_url), ("kb_path", fix.kb_path))


def host_failing(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each host that fails activation, with its error code and where its resolution is written."""
    rows = conn.execute(
        select(Host.name, Host.error_code, Host.license_status, Host.activation_type, Host.site)
        .where(FAILING)
        .order_by(Host.name)
    )
    return [
        p.finding(name, name, **code_facts(code), license_status=status, activation_type=kind, site=site)
        for name, code, status, kind, site in rows
    ]


def renewal_failing(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each Licensed KMS client whose renewals fail: it drops out of activation when its validity ends."""
    rows = conn.execute(
        select(Host.name, Host.error_code, Host.grace_ends_at, Host.kms_host)
        .where(Host.renewal_failing.is_(True))
        .order_by(Host.name)
    )
    return [
        p.finding(name, name, **code_facts(code), grace_days=days_left(ends, now), kms_host=kms)
        for name, code, ends, kms in rows
    ]


def grace_ending(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each host whose grace or volume-activation period ends within ``grace_warning_days`` (or has ended)."""
    days = int(p["grace_warning_days"])
    rows = conn.execute(
        select(Host.name, Host.license_status, Host.activation_type, Host.grace_ends_at)
        .where(Host.grace_ends_at <= now + timedelta(days=days))
        .order_by(Host.name)
    )
    return [
        p.finding(
            name, name, license_status=status, activation_type=kind, grace_days=days_left(ends, now), warning_days=days
        )
        for name, status, kind, ends in rows
    ]


def _serves_windows(role: Any) -> Any:
    return or_(role.is_(None), role == WINDOWS)


def kms_below_threshold(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each KMS host whose latest count is below what its clients need: ``kms_client_threshold`` for a Windows
    KMS host (below ``kms_server_threshold`` it activates nothing), ``kms_server_threshold`` for Office's.

    One that still activates servers has the rule's severity; one that activates nothing at all (below
    ``kms_server_threshold``) is critical."""
    clients, servers = int(p["kms_client_threshold"]), int(p["kms_server_threshold"])
    latest = latest_stats()
    needed = case((_serves_windows(Host.kms_role), literal(clients)), else_=literal(servers))
    rows = conn.execute(
        select(Host.name, Host.kms_role, latest.c.current_count)
        .join(latest, latest.c.host_id == Host.id)
        .where(latest.c.current_count < needed)
        .order_by(Host.name)
    )
    found = []
    for name, role, count in rows:
        windows = role in (None, WINDOWS)
        threshold = clients if windows and count >= servers else servers
        activates = "servers" if windows and count >= servers else "nothing" if windows else "office"
        severity = p.severity if activates == "servers" else CRITICAL
        role = role or WINDOWS
        found.append(
            p.finding_at(severity, name, name, count=count, threshold=threshold, role=role, activates=activates)
        )
    return found


def kms_not_activated(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each Windows KMS host whose own Windows is not Licensed: it activates nobody (0xC004F041 on clients)."""
    windows_kms = or_(Host.kms_role == WINDOWS, Host.activation_type == ActivationType.KMS_HOST.value)
    rows = conn.execute(
        select(Host.name, Host.license_status)
        .where(windows_kms, Host.license_status.is_not(None), Host.license_status != LICENSED)
        .order_by(Host.name)
    )
    return [p.finding(name, name, license_status=status) for name, status in rows]


def kms_unreachable(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each KMS host the collector cannot reach, or whose KMS port does not answer.

    A KMS host is a machine with KMS counters, or one that clients resolve to and that was never read, as on
    the KMS hosts page; a machine that answers but hosts no KMS is the clients' problem, not this rule's.
    """
    latest = latest_stats()
    used = select(Host.kms_host_id).where(Host.kms_host_id.is_not(None)).distinct()
    never_read = and_(Host.last_success_at.is_(None), Host.last_attempt_at.is_not(None))
    is_kms_host = or_(
        Host.id.in_(select(KmsHostStat.host_id).distinct()), and_(Host.id.in_(used), Host.last_success_at.is_(None))
    )
    rows = conn.execute(
        select(Host.name, Host.last_failure_class, Host.last_success_at, latest.c.listening, latest.c.listening_port)
        .outerjoin(latest, latest.c.host_id == Host.id)
        .where(is_kms_host, or_(Host.last_failure_class.is_not(None), never_read, latest.c.listening.is_(False)))
        .order_by(Host.name)
    )
    found = []
    for name, failure, success, listening, port in rows:
        why = "poll_failed" if failure else "never_read" if success is None else "not_listening"
        found.append(p.finding(name, name, why=why, failure=failure, listening=listening, port=port or 1688))
    return found


def kms_no_srv(conn: Connection, p: CheckParams, now: datetime) -> list[Finding]:
    """Each KMS host that does not publish its ``_vlmcs._tcp`` SRV record (by its latest counters)."""
    latest = latest_stats()
    rows = conn.execute(
        select(Host.name, Host.kms_role, Host.domain)
        .join(latest, latest.c.host_id == Host.id)
        .where(latest.c.dns_publishing.is_(False))
        .order_by(Host.name)
    )
    return [p.finding(name, name, role=role or WINDOWS, domain=domain) for name, role, domain in rows]
