"""The tables, as typed SQLAlchemy 2.0 ORM classes.

Current state (``hosts``, ``current_status``, ``findings``) grows with the fleet; ``status_history`` grows with
change, ``daily_rollups`` with days x distinct states, ``kms_host_stats`` with KMS hosts x polls. Nothing here
grows with hosts x polls, so a large fleet polled hourly stays a small database. Enum columns store the
``models.enums`` values as plain strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


def host_fk() -> ForeignKey:
    """A fresh foreign key to ``hosts.id`` (a ForeignKey object can belong to one column only)."""
    return ForeignKey("hosts.id", ondelete="CASCADE")


class Host(Base):
    """A machine as the inventory names it, plus what the latest polls said about it.

    The activation columns summarise the host's Windows product (the worst one, should it carry several),
    so fleet-wide counts read one table; ``current_status`` keeps every product's detail.
    """

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    port: Mapped[int | None]
    scheme: Mapped[str | None] = mapped_column(String(8))
    site: Mapped[str | None] = mapped_column(Text, index=True)
    tags: Mapped[str | None] = mapped_column(Text)
    computer_name: Mapped[str | None] = mapped_column(Text)
    domain: Mapped[str | None] = mapped_column(Text)
    fqdn: Mapped[str | None] = mapped_column(Text, index=True)
    os_caption: Mapped[str | None] = mapped_column(Text, index=True)
    os_version: Mapped[str | None] = mapped_column(String(64))
    product_type: Mapped[str | None] = mapped_column(String(16), index=True)
    clock_skew_s: Mapped[float | None]
    activation_type: Mapped[str | None] = mapped_column(String(16), index=True)
    license_status: Mapped[str | None] = mapped_column(String(16), index=True)
    error_code: Mapped[str | None] = mapped_column(String(10), index=True)
    grace_minutes: Mapped[int | None]
    grace_ends_at: Mapped[datetime | None] = mapped_column(index=True)
    kms_host: Mapped[str | None] = mapped_column(Text)
    kms_fqdn: Mapped[str | None] = mapped_column(Text, index=True)
    status_observed_at: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None] = mapped_column(index=True)
    last_failure_class: Mapped[str | None] = mapped_column(String(16), index=True)
    last_failure_reason: Mapped[str | None] = mapped_column(Text)
    last_run_id: Mapped[int | None]
    signin: Mapped[str | None] = mapped_column(String(16))  # Kerberos, NTLM or Basic, on the last success
    unread_classes: Mapped[str | None] = mapped_column(Text)  # optional WMI classes the last success lacked
    renewal_failing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)
    address: Mapped[str | None] = mapped_column(String(64))  # where the host was reached, for KMS name matching
    kms_role: Mapped[str | None] = mapped_column(String(16))  # KMS host for: windows, office, other
    kms_host_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the KMS host this client resolves to
    # When each optional part was last read; a poll that could not read it leaves its fields and this as they were.
    identity_read_at: Mapped[datetime | None]  # computer name and domain (Win32_ComputerSystem)
    os_read_at: Mapped[datetime | None]  # OS caption, version, product type, clock (Win32_OperatingSystem)
    error_read_at: Mapped[datetime | None]  # the event log that gives an error code (Win32_NTLogEvent)


class CurrentStatus(Base):
    """One row per host and Windows product: the latest activation state read from it."""

    __tablename__ = "current_status"

    host_id: Mapped[int] = mapped_column(host_fk(), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    activation_type: Mapped[str] = mapped_column(String(16))
    license_status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(10))
    error_source: Mapped[str | None] = mapped_column(String(8))
    grace_minutes: Mapped[int | None]
    partial_key: Mapped[str | None] = mapped_column(String(5))
    product_name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(32))
    kms_machine: Mapped[str | None] = mapped_column(Text)
    kms_port: Mapped[int | None]
    discovered_kms_machine: Mapped[str | None] = mapped_column(Text)
    discovered_kms_port: Mapped[int | None]
    renewal_failing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    observed_at: Mapped[datetime]


class HostFinding(Base):
    """The current verdict of one diagnostic check on one host, with its evidence."""

    __tablename__ = "findings"

    host_id: Mapped[int] = mapped_column(host_fk(), primary_key=True)
    check: Mapped[str] = mapped_column(String(32), primary_key=True)
    severity: Mapped[str] = mapped_column(String(8))
    summary: Mapped[str] = mapped_column(Text)
    related_code: Mapped[str | None] = mapped_column(String(10))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    observed_at: Mapped[datetime]


class KmsHostStat(Base):
    """A KMS host's counters as read by one poll."""

    __tablename__ = "kms_host_stats"
    __table_args__ = (UniqueConstraint("host_id", "observed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(host_fk())
    observed_at: Mapped[datetime]
    current_count: Mapped[int]
    total_requests: Mapped[int | None]
    failed_requests: Mapped[int | None]
    licensed_requests: Mapped[int | None]
    non_genuine_requests: Mapped[int | None]
    listening_port: Mapped[int | None]
    dns_publishing: Mapped[bool | None] = mapped_column(Boolean)
    listening: Mapped[bool | None] = mapped_column(Boolean)


class StatusHistory(Base):
    """A row each time a host's license status, activation type or error code changed."""

    __tablename__ = "status_history"
    __table_args__ = (
        UniqueConstraint("host_id", "changed_at"),
        Index("ix_status_history_changed_at", "changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(host_fk())
    changed_at: Mapped[datetime]
    license_status: Mapped[str] = mapped_column(String(16))
    activation_type: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(10))


class DailyRollup(Base):
    """Hosts per day x license status x activation type x error code x poll failure ('' = none or unknown)."""

    __tablename__ = "daily_rollups"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    license_status: Mapped[str] = mapped_column(String(16), primary_key=True)
    activation_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    error_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    failure_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    host_count: Mapped[int] = mapped_column(Integer)


class PollRun(Base):
    """One run of a collector (one shard): when, how many hosts, how it ended."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    collector: Mapped[str] = mapped_column(Text)
    shard: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    pid: Mapped[int | None]
    hosts_total: Mapped[int] = mapped_column(default=0)
    succeeded: Mapped[int] = mapped_column(default=0)
    failed_dns: Mapped[int] = mapped_column(default=0)
    failed_refused: Mapped[int] = mapped_column(default=0)
    failed_timeout: Mapped[int] = mapped_column(default=0)
    failed_auth: Mapped[int] = mapped_column(default=0)
    failed_tls: Mapped[int] = mapped_column(default=0)
    failed_protocol: Mapped[int] = mapped_column(default=0)
    set_aside: Mapped[int] = mapped_column(default=0, server_default="0")  # results the database refused


class AppliedBatch(Base):
    """Result batches already written, so replaying a spooled batch counts nothing twice."""

    __tablename__ = "applied_batches"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int | None]
    applied_at: Mapped[datetime]


class SigninFailure(Base):
    """Recent wrong dashboard sign-ins from one client address for one account (``models.signin``).

    ``key`` is a hash of the address and the account, so neither is kept in the clear; nothing typed is stored.
    """

    __tablename__ = "signin_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[datetime]
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None]


class Alert(Base):
    """One episode of an alert rule firing for one subject: from first seen until resolved (``models.alerts``).

    ``open_key`` is ``rule:subject_key`` while the episode fires and ``NULL`` once it is resolved; being unique,
    it lets no two evaluators (or two runs) open the same alert twice. A resolved episode stays as history.
    ``facts`` holds what the rule found (counts, codes, names), from which messages are written in either
    language; nothing in it is a secret.
    """

    __tablename__ = "alerts"
    # finds the episodes whose end is still to be announced (resolved, firing announced)
    __table_args__ = (Index("ix_alerts_state_notified_state", "state", "notified_state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(48), index=True)
    subject_key: Mapped[str] = mapped_column(String(255))
    open_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)  # firing, resolved
    subject: Mapped[str] = mapped_column(Text)  # what it is about, as shown: a host, a domain, a code
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen: Mapped[datetime] = mapped_column(index=True)
    last_seen: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    notified_state: Mapped[str | None] = mapped_column(String(16))  # the state the last message announced
    notified_severity: Mapped[str | None] = mapped_column(String(16))  # the severity the last message announced
    # A message some targets missed: {"kind": ..., "targets": [...]} as JSON text, the targets still owed it.
    owed: Mapped[str | None] = mapped_column(Text, index=True)
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(Text)
    ack_comment: Mapped[str | None] = mapped_column(Text)
    silenced_until: Mapped[datetime | None]
    silenced_by: Mapped[str | None] = mapped_column(Text)
    silence_comment: Mapped[str | None] = mapped_column(Text)


class AlertNotification(Base):
    """One message sent (or tried) to one notification target: what, where (scheme and host only), how it went."""

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # firing, repeat, resolved, storm
    target: Mapped[str] = mapped_column(Text)  # the URL with every secret part removed
    sent_at: Mapped[datetime] = mapped_column(index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)


class QueueRun(Base):
    """A poll run enqueued on the job queue (``collectors.queue``): its schedule slot, batch count and deadline.

    ``run_key`` names the schedule slot; being unique, it lets no two schedulers enqueue the same run.
    """

    __tablename__ = "queue_runs"

    run_id: Mapped[int] = mapped_column(ForeignKey("poll_runs.id", ondelete="CASCADE"), primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    slot_at: Mapped[datetime]
    every_s: Mapped[int] = mapped_column(Integer)
    batches: Mapped[int] = mapped_column(Integer)
    deadline_at: Mapped[datetime] = mapped_column(index=True)
    scheduler: Mapped[str] = mapped_column(Text)


class PollBatch(Base):
    """One batch of a queued run: its queue (one per site), its hosts, the worker that polled it, how it went.

    ``batch_key`` is the id its results are written under (``applied_batches``), whichever attempt writes them.
    """

    __tablename__ = "poll_batches"
    __table_args__ = (UniqueConstraint("run_id", "batch_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("poll_runs.id", ondelete="CASCADE"))
    batch_no: Mapped[int] = mapped_column(Integer)
    batch_key: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    site: Mapped[str | None] = mapped_column(Text)
    hosts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued, running, done, incomplete, failed
    worker: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed_dns: Mapped[int] = mapped_column(Integer, default=0)
    failed_refused: Mapped[int] = mapped_column(Integer, default=0)
    failed_timeout: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth: Mapped[int] = mapped_column(Integer, default=0)
    failed_tls: Mapped[int] = mapped_column(Integer, default=0)
    failed_protocol: Mapped[int] = mapped_column(Integer, default=0)
    set_aside: Mapped[int] = mapped_column(Integer, default=0)


class QueueWorker(Base):
    """A queue worker process: the queues it serves and when it last said it was alive."""

    __tablename__ = "queue_workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(Text)  # comma-separated, or * for every queue
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    last_heartbeat: Mapped[datetime] = mapped_column(index=True)
    stopped_at: Mapped[datetime | None]
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    hosts_polled: Mapped[int] = mapped_column(Integer, default=0)
