"""Windows facts the simulated fleet is built from: error codes, editions, KMS thresholds.

This module owns the simulator's own copy of the activation vocabulary (the 30 codes of the
"Resolve Windows activation error codes" article, with the cause each one is staged with) and the
edition table used to fill ``Win32_OperatingSystem``. It deliberately does not import the
project's knowledge base: the simulator is an independent implementation of the Windows side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

WINDOWS_APP_ID: Final = "55c92734-d682-4d71-983e-d6ec3f16059f"
OFFICE_APP_ID: Final = "0ff1ce15-a989-479d-af46-f275c6370663"
SPP_SOURCE: Final = "Microsoft-Windows-Security-SPP"

KMS_CLIENT_THRESHOLD: Final = 25
KMS_SERVER_THRESHOLD: Final = 5
KMS_COUNT_CAP: Final = 50
KMS_SERVER_COUNT_CAP: Final = 10  # a KMS host only servers contact keeps 2 x 5 machines
CLOCK_SKEW_LIMIT_S: Final = 4 * 3600
DEFAULT_KMS_PORT: Final = 1688
VOLUME_VALIDITY_MINUTES: Final = 180 * 24 * 60  # a KMS activation lasts 180 days
DEFAULT_RENEWAL_INTERVAL: Final = 7 * 24 * 60  # VLRenewalInterval: a KMS client renews every 7 days
DEFAULT_ACTIVATION_INTERVAL: Final = 120  # VLActivationInterval: retries every 2 hours while unactivated

LICENSE_STATUS_NAMES: Final = (
    "Unlicensed",
    "Licensed",
    "OOBGrace",
    "OOTGrace",
    "NonGenuineGrace",
    "Notification",
    "ExtendedGrace",
)
ACTIVATION_TYPES: Final = ("MAK", "KMS client", "KMS host", "Retail", "OEM", "AD-based", "none")
PRODUCT_TYPES: Final = {"workstation": 1, "dc": 2, "server": 3}

# Informational HRESULTs seen on healthy or freshly installed machines (never errors).
INFO_GRACE: Final = 0x4004F00C
INFO_TIMEBASED: Final = 0x4004FC04


@dataclass(frozen=True, slots=True)
class CodeProfile:
    """How the generator stages one error code: who fails with it, in which state, and why."""

    code: int
    activation: str
    license_status: int
    source: str  # "status" (LicenseStatusReason) or "event" (Security-SPP event 8198)
    cause: str  # kms_count | clock | dns | kms_port | kms_unlicensed | kms_old | grace | none


def _p(code: int, activation: str, status: int, source: str, cause: str = "none") -> CodeProfile:
    return CodeProfile(code, activation, status, source, cause)


CODE_PROFILES: Final[tuple[CodeProfile, ...]] = (
    _p(0x8004FE21, "MAK", 4, "status"),
    _p(0x80070005, "KMS client", 2, "event"),
    _p(0x8007007B, "KMS client", 2, "event", "dns"),
    _p(0x80070490, "MAK", 2, "status"),
    _p(0x800706BA, "KMS client", 2, "status", "kms_port"),
    _p(0x8007232A, "KMS host", 2, "event"),
    _p(0x8007232B, "KMS client", 2, "status", "dns"),
    _p(0x8007251D, "KMS client", 2, "event", "dns"),
    _p(0x80092328, "KMS client", 2, "status", "dns"),
    _p(0xC004B100, "MAK", 2, "status"),
    _p(0xC004C001, "MAK", 2, "status"),
    _p(0xC004C003, "MAK", 2, "status"),
    _p(0xC004C008, "KMS host", 2, "status"),
    _p(0xC004C020, "MAK", 2, "status"),
    _p(0xC004C021, "MAK", 2, "status"),
    _p(0xC004F009, "MAK", 5, "status", "grace"),
    _p(0xC004F00F, "KMS client", 3, "status"),
    _p(0xC004F014, "none", 0, "event"),
    _p(0xC004F02C, "MAK", 2, "event"),
    _p(0xC004F035, "KMS client", 2, "status"),
    _p(0xC004F038, "KMS client", 2, "status", "kms_count"),
    _p(0xC004F039, "KMS client", 2, "status", "kms_port"),
    _p(0xC004F041, "KMS client", 2, "status", "kms_unlicensed"),
    _p(0xC004F042, "KMS client", 2, "status", "kms_old"),
    _p(0xC004F050, "MAK", 2, "status"),
    _p(0xC004F051, "MAK", 2, "status"),
    _p(0xC004F064, "MAK", 5, "status", "grace"),
    _p(0xC004F065, "MAK", 4, "status"),
    _p(0xC004F06C, "KMS client", 2, "status", "clock"),
    _p(0xC004F074, "KMS client", 2, "event", "kms_port"),
)
PROFILE_BY_CODE: Final = {p.code: p for p in CODE_PROFILES}


@dataclass(frozen=True, slots=True)
class Edition:
    """One Windows edition as ``Win32_OperatingSystem`` and ``SoftwareLicensingProduct`` show it."""

    key: str
    caption: str
    version: str
    product_type: str
    sku: int
    edition_name: str  # SoftwareLicensingProduct.Name suffix, e.g. "Enterprise edition"
    kms_channel: str  # Description channel of this edition's KMS host key


EDITIONS: Final[dict[str, Edition]] = {
    e.key: e
    for e in (
        Edition("win11-ent", "Microsoft Windows 11 Enterprise", "10.0.22631", "workstation", 4,
                "Enterprise edition", "VOLUME_KMS_W10"),
        Edition("win10-ent", "Microsoft Windows 10 Enterprise", "10.0.19045", "workstation", 4,
                "Enterprise edition", "VOLUME_KMS_W10"),
        Edition("win11-pro", "Microsoft Windows 11 Pro", "10.0.22631", "workstation", 48,
                "Professional edition", "VOLUME_KMS_W10"),
        Edition("win11-pro-zh", "Microsoft Windows 11 專業版", "10.0.22631", "workstation", 48,
                "Professional edition", "VOLUME_KMS_W10"),
        Edition("ws2022-std", "Microsoft Windows Server 2022 Standard", "10.0.20348", "server", 7,
                "ServerStandard edition", "VOLUME_KMS_WS22"),
        Edition("ws2022-dc", "Microsoft Windows Server 2022 Datacenter", "10.0.20348", "server", 8,
                "ServerDatacenter edition", "VOLUME_KMS_WS22"),
        Edition("ws2019-std", "Microsoft Windows Server 2019 Standard", "10.0.17763", "server", 7,
                "ServerStandard edition", "VOLUME_KMS_WS19"),
        Edition("ws2016-std", "Microsoft Windows Server 2016 Standard", "10.0.14393", "server", 7,
                "ServerStandard edition", "VOLUME_KMS_2016"),
        Edition("ws2012r2-std", "Microsoft Windows Server 2012 R2 Standard", "6.3.9600", "server", 7,
                "ServerStandard edition", "VOLUME_KMS_R2_C"),
    )
}  # fmt: skip
# Editions the generator gives only to the hosts a scenario case needs (never to ordinary hosts).
LEGACY_EDITIONS: Final = frozenset({"ws2012r2-std"})

# Other editions every Windows image carries as unlicensed SKUs without a key.
SPARE_EDITIONS: Final = (
    "Education edition",
    "EnterpriseN edition",
    "ProfessionalWorkstation edition",
    "ServerStandardEval edition",
    "CoreCountrySpecific edition",
    "EnterpriseS edition",
)

CHANNEL_BY_ACTIVATION: Final = {
    "MAK": ("Volume:MAK", "VOLUME_MAK"),
    "KMS client": ("Volume:GVLK", "VOLUME_KMSCLIENT"),
    "AD-based": ("Volume:GVLK", "VOLUME_KMSCLIENT"),
    "Retail": ("Retail", "RETAIL"),
    "OEM": ("OEM:DM", "OEM_DM"),
}


def license_status_name(value: int) -> str:
    """The contract name of a WMI ``LicenseStatus`` number."""
    return LICENSE_STATUS_NAMES[value]


def hresult_text(value: int) -> str:
    """Canonical ``0xC004F074`` form of an unsigned 32-bit HRESULT."""
    return f"0x{value & 0xFFFFFFFF:08X}"


def is_failure(value: int) -> bool:
    """True when the HRESULT severity bit is set."""
    return bool(value & 0x80000000)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"6.3.9600"`` -> ``(6, 3, 9600)``, for comparing Windows versions."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())
