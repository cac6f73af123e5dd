"""What the collector asks Windows: WMI classes, the properties used, WQL text, the Windows SPP
application id and the Security-SPP event ids. Named data only; sending lives in ``wsman`` and
reading the replies in ``parse``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

WINDOWS_APP_ID = "55c92734-d682-4d71-983e-d6ec3f16059f"
SPP_EVENT_SOURCE = "Microsoft-Windows-Security-SPP"
SPP_EVENT_IDS = (8198, 12288, 12289)
CIMV2_WILDCARD_URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"


@dataclass(frozen=True, slots=True)
class WqlQuery:
    """One WMI class read with one Enumerate; ``required`` classes fail the host when unreadable."""

    class_name: str
    properties: tuple[str, ...]
    where: str = ""
    required: bool = False

    @property
    def text(self) -> str:
        clause = f" WHERE {self.where}" if self.where else ""
        # WQL built only from the constants below, never from host or user input
        return f"SELECT {','.join(self.properties)} FROM {self.class_name}{clause}"  # noqa: S608


PRODUCT = WqlQuery(
    "SoftwareLicensingProduct",
    (
        "ID",
        "Name",
        "Description",
        "ApplicationID",
        "PartialProductKey",
        "ProductKeyChannel",
        "LicenseStatus",
        "LicenseStatusReason",
        "GracePeriodRemaining",
        "KeyManagementServiceMachine",
        "KeyManagementServicePort",
        "DiscoveredKeyManagementServiceMachineName",
        "DiscoveredKeyManagementServiceMachinePort",
        "IsKeyManagementServiceMachine",
        "ADActivationObjectName",
        "VLRenewalInterval",
        # A KMS host's counters are kept per application: these are the Windows ones.
        "KeyManagementServiceCurrentCount",
        "KeyManagementServiceTotalRequests",
        "KeyManagementServiceFailedRequests",
        "KeyManagementServiceLicensedRequests",
        "KeyManagementServiceNonGenuineGraceRequests",
    ),
    where=f"ApplicationID = '{WINDOWS_APP_ID}' AND PartialProductKey IS NOT NULL",
    required=True,
)

SERVICE = WqlQuery(
    "SoftwareLicensingService",
    (
        "IsKeyManagementServiceMachine",
        "KeyManagementServiceCurrentCount",
        "RequiredClientCount",
        "KeyManagementServiceTotalRequests",
        "KeyManagementServiceFailedRequests",
        "KeyManagementServiceLicensedRequests",
        "KeyManagementServiceNonGenuineGraceRequests",
        "KeyManagementServiceListeningPort",
        "KeyManagementServiceDnsPublishing",
        "KeyManagementServiceMachine",
        "KeyManagementServicePort",
        "DiscoveredKeyManagementServiceMachineName",
        "DiscoveredKeyManagementServiceMachinePort",
        "KeyManagementServiceLookupDomain",
    ),
)

OPERATING_SYSTEM = WqlQuery(
    "Win32_OperatingSystem",
    ("Caption", "Version", "ProductType", "LocalDateTime", "CSName"),
)

COMPUTER_SYSTEM = WqlQuery(
    "Win32_ComputerSystem",
    ("Name", "Domain", "PartOfDomain"),
)

SPP_EVENTS = WqlQuery(
    "Win32_NTLogEvent",
    ("EventCode", "RecordNumber", "TimeGenerated", "InsertionStrings"),
    where=(
        f"Logfile = 'Application' AND SourceName = '{SPP_EVENT_SOURCE}' AND "
        f"({' OR '.join(f'EventCode = {i}' for i in SPP_EVENT_IDS)})"
    ),
)
# Only recent attempts matter, and a busy Application log holds years of events: without a bound
# the host scans and sends every one of them.
SPP_EVENT_WINDOW = timedelta(days=30)


def wql_datetime(moment: datetime) -> str:
    """``moment`` as a WQL datetime literal in UTC (``20261025000000.000000+000``)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.000000+000")


def spp_events(now: datetime) -> WqlQuery:
    """``SPP_EVENTS`` limited to events generated within ``SPP_EVENT_WINDOW`` before ``now``."""
    since = wql_datetime(now - SPP_EVENT_WINDOW)
    return replace(SPP_EVENTS, where=f"{SPP_EVENTS.where} AND TimeGenerated > '{since}'")


# Read only where SoftwareLicensingService says the machine is a KMS host but no Windows product is one:
# which other application (Office) it hosts KMS for, with that application's own count.
OTHER_KMS_PRODUCTS = WqlQuery(
    "SoftwareLicensingProduct",
    ("ID", "Name", "ApplicationID", "KeyManagementServiceCurrentCount"),
    where=f"IsKeyManagementServiceMachine = 1 AND ApplicationID <> '{WINDOWS_APP_ID}'",
)
OFFICE_APP_ID = "0ff1ce15-a989-479d-af46-f275c6370663"

# Always read, in this order; the SPP events (``spp_events``) are read only when a product's error code needs it.
ALWAYS = (PRODUCT, SERVICE, OPERATING_SYSTEM, COMPUTER_SYSTEM)
