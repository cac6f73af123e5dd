"""Typed records the collector hands to the store.

A poll of one host ends in a ``HostResult``: a ``HostObservation`` when the host answered, or a
``HostFailure`` when it could not be read. These are plain frozen values with no database or
network behaviour; ``models.store`` turns them into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models.enums import ActivationType, FailureClass, LicenseStatus, ProductType, Severity

EvidenceValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """A host as the inventory names it; ``name`` is kept exactly as written there."""

    name: str
    port: int | None = None
    scheme: str | None = None
    site: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProductState:
    """One Windows product instance (``SoftwareLicensingProduct``) after classification."""

    product_id: str
    activation_type: ActivationType
    license_status: LicenseStatus
    name: str | None = None
    description: str | None = None
    channel: str | None = None
    error_code: str | None = None
    error_source: str | None = None  # "status" (LicenseStatusReason) or "event" (SPP event log)
    grace_minutes: int | None = None
    partial_key: str | None = None
    kms_machine: str | None = None
    kms_port: int | None = None
    discovered_kms_machine: str | None = None
    discovered_kms_port: int | None = None
    renewal_failing: bool = False  # Licensed KMS client whose renewals fail: it drops out when its validity ends


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnostic check's verdict on a host, with the evidence behind it."""

    check: str
    severity: Severity
    summary: str
    related_code: str | None = None
    evidence: dict[str, EvidenceValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KmsHostCounters:
    """A KMS host's counters: its Windows product's own, or for a machine that is a KMS host for another
    application only (``application`` ``office`` or ``other``), that application's."""

    current_count: int
    total_requests: int | None = None
    failed_requests: int | None = None
    licensed_requests: int | None = None
    non_genuine_requests: int | None = None
    listening_port: int | None = None
    dns_publishing: bool | None = None
    listening: bool | None = None  # the collector's own TCP check of the listening port
    application: str = "windows"  # which application's KMS host this is: windows, office or other


@dataclass(frozen=True, slots=True)
class HostObservation:
    """Everything read from a host that answered."""

    host: str
    observed_at: datetime
    computer_name: str | None = None
    domain: str | None = None
    os_caption: str | None = None
    os_version: str | None = None
    product_type: ProductType | None = None
    clock_skew_seconds: float | None = None
    products: tuple[ProductState, ...] = ()
    kms: KmsHostCounters | None = None
    findings: tuple[Finding, ...] = ()
    signin: str | None = None  # how the collector signed in: Kerberos, NTLM or Basic
    unread: tuple[str, ...] = ()  # optional WMI classes the host did not give this time
    address: str | None = None  # the IP address the host was reached at


@dataclass(frozen=True, slots=True)
class HostFailure:
    """A host that could not be read: the class of failure and a one-line reason."""

    host: str
    observed_at: datetime
    failure_class: FailureClass
    reason: str


HostResult = HostObservation | HostFailure
