"""Domain vocabulary shared by the store, the query layer, the collector and the dashboard.

Every enum is a ``StrEnum`` stored in the database and exported to CSV by its value, so the strings
here are a contract with the CSV export and the dashboard URLs. This module owns names only; the
rules that derive them from WMI data live in ``collectors.classify``.
"""

from __future__ import annotations

from enum import StrEnum


class ActivationType(StrEnum):
    MAK = "MAK"
    KMS_CLIENT = "KMS client"
    KMS_HOST = "KMS host"
    RETAIL = "Retail"
    OEM = "OEM"
    AD_BASED = "AD-based"
    UNKNOWN = "unknown"


class LicenseStatus(StrEnum):
    """WMI ``SoftwareLicensingProduct.LicenseStatus``; the member order is the WMI number."""

    UNLICENSED = "Unlicensed"
    LICENSED = "Licensed"
    OOB_GRACE = "OOBGrace"
    OOT_GRACE = "OOTGrace"
    NON_GENUINE_GRACE = "NonGenuineGrace"
    NOTIFICATION = "Notification"
    EXTENDED_GRACE = "ExtendedGrace"

    @classmethod
    def from_wmi(cls, value: int) -> LicenseStatus:
        """Map the WMI number 0-6; raises ``ValueError`` for anything else."""
        members = list(cls)
        if not 0 <= value < len(members):
            raise ValueError(f"LicenseStatus {value} is outside 0-6")
        return members[value]

    @property
    def wmi_value(self) -> int:
        return list(LicenseStatus).index(self)

    @property
    def in_grace(self) -> bool:
        return self in GRACE_STATUSES


GRACE_STATUSES = frozenset(
    {
        LicenseStatus.OOB_GRACE,
        LicenseStatus.OOT_GRACE,
        LicenseStatus.NON_GENUINE_GRACE,
        LicenseStatus.EXTENDED_GRACE,
    }
)


class HostState(StrEnum):
    """A host's activation state as people read it: its license status, with a Licensed KMS client whose
    renewals fail told apart ("Licensed - renewal failing"); it will drop out when its validity ends."""

    UNLICENSED = "Unlicensed"
    LICENSED = "Licensed"
    RENEWAL_FAILING = "RenewalFailing"
    OOB_GRACE = "OOBGrace"
    OOT_GRACE = "OOTGrace"
    NON_GENUINE_GRACE = "NonGenuineGrace"
    NOTIFICATION = "Notification"
    EXTENDED_GRACE = "ExtendedGrace"


class FailureClass(StrEnum):
    """Why a host could not be read at all (see ``collectors.errors`` for the mapping)."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    AUTH = "auth"
    TLS = "tls"
    PROTOCOL = "protocol"


class ProductType(StrEnum):
    """``Win32_OperatingSystem.ProductType``: 1 workstation, 2 domain controller, 3 server."""

    WORKSTATION = "workstation"
    DC = "dc"
    SERVER = "server"

    @classmethod
    def from_wmi(cls, value: int) -> ProductType | None:
        return {1: cls.WORKSTATION, 2: cls.DC, 3: cls.SERVER}.get(value)

    @property
    def is_server(self) -> bool:
        return self is not ProductType.WORKSTATION


class Severity(StrEnum):
    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "fail"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
