"""WMI (root/cimv2) instances of a simulated host, with their real property names and CIM types.

Builds ``SoftwareLicensingProduct`` (one per installed SKU, most without a key, plus an Office
product), ``SoftwareLicensingService``, ``Win32_OperatingSystem``, ``Win32_ComputerSystem`` and
``Win32_NTLogEvent`` from a scenario ``Host`` at a given instant. Instances are typed values; how
they become XML is ``soap.py``'s business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from simulator.codes import (
    CHANNEL_BY_ACTIVATION,
    DEFAULT_ACTIVATION_INTERVAL,
    DEFAULT_KMS_PORT,
    EDITIONS,
    KMS_SERVER_THRESHOLD,
    OFFICE_APP_ID,
    PRODUCT_TYPES,
    SPARE_EDITIONS,
    SPP_SOURCE,
    WINDOWS_APP_ID,
    hresult_text,
    is_failure,
)
from simulator.generator import stable_guid
from simulator.scenario import Host, KmsCounters, fqdn, kms_role

CimValue = str | int | bool | datetime | list[str] | list[int] | None
NEVER: Final = datetime(1601, 1, 1, tzinfo=UTC)  # how SPP reports an unset date


@dataclass(frozen=True, slots=True)
class Prop:
    """One property: its name, CIM type (``uint32``, ``string``, ``datetime``, ``string[]`` ...) and value."""

    name: str
    cim_type: str
    value: CimValue


@dataclass(frozen=True, slots=True)
class Instance:
    """One WMI instance; ``props`` are kept in the order Windows serialises them (by name)."""

    class_name: str
    props: tuple[Prop, ...]

    def get(self, name: str) -> Prop | None:
        lowered = name.lower()
        for prop in self.props:
            if prop.name.lower() == lowered:
                return prop
        return None


@dataclass(frozen=True, slots=True)
class HostContext:
    """What the instance builders need beyond the host itself."""

    host: Host
    now: datetime
    kms_port: int = DEFAULT_KMS_PORT
    kms_addresses: Mapping[str, str] | None = None  # KMS host FQDN -> address
    addresses: Mapping[str, str] | None = None  # every fleet host's FQDN (and retired KMS names) -> address


def _instance(class_name: str, props: Iterable[Prop]) -> Instance:
    return Instance(class_name, tuple(sorted(props, key=lambda p: p.name.lower())))


def os_caption(host: Host) -> str:
    return host.os_caption or EDITIONS[host.edition].caption


def served_kms_machine(host: Host, addresses: Mapping[str, str] | None = None) -> str:
    """``KeyManagementServiceMachine`` as the client shows it: the pinned FQDN, its short computer
    name, or the fleet address of that machine (``kms_machine_form``)."""
    if not host.kms_machine or host.kms_machine_form == "fqdn":
        return host.kms_machine
    if host.kms_machine_form == "name":
        return host.kms_machine.split(".", 1)[0].upper()
    return (addresses or {}).get(host.kms_machine.lower(), host.kms_machine)


def channel_of(host: Host) -> tuple[str | None, str]:
    """``ProductKeyChannel`` and Description channel text of the host's Windows product."""
    if host.activation == "KMS host":
        return "Volume:CSVLK", EDITIONS[host.edition].kms_channel
    return CHANNEL_BY_ACTIVATION.get(host.activation, (None, "RETAIL"))


# --- SoftwareLicensingProduct --------------------------------------------------------------


def licensing_products(ctx: HostContext) -> list[Instance]:
    """Every SKU the host knows: the keyed Windows product (if any), keyless editions, Office."""
    host = ctx.host
    products = [_spare_product(ctx, name) for name in SPARE_EDITIONS[: host.extra_products]]
    if host.activation != "none":
        products.insert(host.extra_products // 2, _windows_product(ctx))
    office_kms = host.kms if kms_role(host) == "office" else None
    products.append(_office_product(ctx) if office_kms is None else _office_kms_host_product(ctx, office_kms))
    return products


def _windows_product(ctx: HostContext) -> Instance:
    host = ctx.host
    edition = EDITIONS[host.edition]
    key_channel, desc_channel = channel_of(host)
    props = _product_common(ctx, edition.edition_name, WINDOWS_APP_ID)
    props.update(
        Description=Prop(
            "Description", "string", f"{host.description_prefix}Windows(R) Operating System, {desc_channel} channel"
        ),
        PartialProductKey=Prop("PartialProductKey", "string", _partial_key(host)),
        ProductKeyChannel=Prop("ProductKeyChannel", "string", key_channel),
        ProductKeyID=Prop(
            "ProductKeyID", "string", f"03612-0{edition.sku:04d}-{host.name[-5:]}-AA{len(host.name):03d}"
        ),
        LicenseStatus=Prop("LicenseStatus", "uint32", host.license_status),
        LicenseStatusReason=Prop("LicenseStatusReason", "uint32", host.reason),
        GracePeriodRemaining=Prop("GracePeriodRemaining", "uint32", host.grace_minutes),
    )
    props.update(_kms_client_props(ctx))
    props.update(_kms_host_props(ctx))
    if host.activation == "AD-based":
        props["ADActivationObjectName"] = Prop("ADActivationObjectName", "string", "Windows Server 2022 AD Activation")
        dn = (
            "CN=Windows Server 2022 AD Activation,CN=Activation Objects,CN=Microsoft SPP,CN=Services,"
            "CN=Configuration,DC=corp,DC=contoso,DC=test"
        )
        props["ADActivationObjectDN"] = Prop("ADActivationObjectDN", "string", dn)
    return _instance("SoftwareLicensingProduct", props.values())


def _partial_key(host: Host) -> str:
    alphabet = "BCDFGHJKMPQRTVWXY2346789"
    seed = sum(ord(c) for c in host.name + host.activation)
    return "".join(alphabet[(seed * (i + 7) + i) % len(alphabet)] for i in range(5))


def _kms_client_props(ctx: HostContext) -> dict[str, Prop]:
    host = ctx.host
    if host.activation not in {"KMS client", "AD-based"}:
        return {}
    discovered = host.discovered_kms
    address = (ctx.kms_addresses or {}).get(discovered.lower(), "") if discovered else ""
    return {
        "KeyManagementServiceMachine": Prop(
            "KeyManagementServiceMachine", "string", served_kms_machine(host, ctx.addresses)
        ),
        "KeyManagementServicePort": Prop("KeyManagementServicePort", "uint32", ctx.kms_port if host.kms_machine else 0),
        "DiscoveredKeyManagementServiceMachineName": Prop(
            "DiscoveredKeyManagementServiceMachineName", "string", discovered
        ),
        "DiscoveredKeyManagementServiceMachinePort": Prop(
            "DiscoveredKeyManagementServiceMachinePort", "uint32", ctx.kms_port if discovered else 0
        ),
        "DiscoveredKeyManagementServiceMachineIpAddress": Prop(
            "DiscoveredKeyManagementServiceMachineIpAddress", "string", address or None
        ),
        "KeyManagementServiceLookupDomain": Prop("KeyManagementServiceLookupDomain", "string", ""),
        "KeyManagementServiceProductKeyID": Prop(
            "KeyManagementServiceProductKeyID", "string", "06401-00206-271-392853-03-1033-20348.0000-0452024"
        ),
        "VLActivationInterval": Prop("VLActivationInterval", "uint32", DEFAULT_ACTIVATION_INTERVAL),
        "VLRenewalInterval": Prop("VLRenewalInterval", "uint32", host.renewal_interval),
    }


def _kms_host_props(ctx: HostContext) -> dict[str, Prop]:
    """The Windows KMS host counters of the host's Windows product (none unless it is the KMS host)."""
    kms = ctx.host.kms
    if kms is None or kms_role(ctx.host) != "windows":
        return {}
    return _kms_counter_props(kms)


def _kms_counter_props(kms: KmsCounters) -> dict[str, Prop]:
    return {
        "IsKeyManagementServiceMachine": Prop("IsKeyManagementServiceMachine", "uint32", 1),
        "KeyManagementServiceCurrentCount": Prop("KeyManagementServiceCurrentCount", "uint32", kms.current_count),
        "KeyManagementServiceTotalRequests": Prop("KeyManagementServiceTotalRequests", "uint32", kms.total_requests),
        "KeyManagementServiceFailedRequests": Prop("KeyManagementServiceFailedRequests", "uint32", kms.failed_requests),
        "KeyManagementServiceLicensedRequests": Prop(
            "KeyManagementServiceLicensedRequests", "uint32", kms.licensed_requests
        ),
        "KeyManagementServiceNonGenuineGraceRequests": Prop(
            "KeyManagementServiceNonGenuineGraceRequests", "uint32", kms.non_genuine_requests
        ),
        "RequiredClientCount": Prop("RequiredClientCount", "uint32", KMS_SERVER_THRESHOLD),
    }


def _spare_product(ctx: HostContext, edition_name: str) -> Instance:
    props = _product_common(ctx, edition_name, WINDOWS_APP_ID)
    channel = "VOLUME_KMSCLIENT" if "Eval" not in edition_name else "TIMEBASED_EVAL"
    props["Description"] = Prop("Description", "string", f"Windows(R) Operating System, {channel} channel")
    return _instance("SoftwareLicensingProduct", props.values())


def _office_product(ctx: HostContext) -> Instance:
    props = _product_common(ctx, "Office 21, Office21ProPlus2021VL_KMS_Client_AE edition", OFFICE_APP_ID)
    props.update(
        Description=Prop("Description", "string", "Office 21, VOLUME_KMSCLIENT channel"),
        PartialProductKey=Prop("PartialProductKey", "string", "6F7TH"),
        ProductKeyChannel=Prop("ProductKeyChannel", "string", "Volume:GVLK"),
        LicenseStatus=Prop("LicenseStatus", "uint32", 5),
        LicenseStatusReason=Prop("LicenseStatusReason", "uint32", 0xC004F074),
    )
    return _instance("SoftwareLicensingProduct", props.values())


def _office_kms_host_product(ctx: HostContext, kms: KmsCounters) -> Instance:
    """An Office KMS host key (CSVLK) installed beside a Windows product of another type: its own counters."""
    props = _product_common(ctx, "Office 21, Office21VL_KMS_Host edition", OFFICE_APP_ID)
    props.update(
        Description=Prop("Description", "string", "Office 21, VOLUME_KMS channel"),
        PartialProductKey=Prop("PartialProductKey", "string", "QJ3KW"),
        ProductKeyChannel=Prop("ProductKeyChannel", "string", "Volume:CSVLK"),
        LicenseStatus=Prop("LicenseStatus", "uint32", 1),
        LicenseStatusReason=Prop("LicenseStatusReason", "uint32", 0),
    )
    props.update(_kms_counter_props(kms))
    return _instance("SoftwareLicensingProduct", props.values())


def _product_common(ctx: HostContext, edition_name: str, app_id: str) -> dict[str, Prop]:
    family = "Office" if app_id == OFFICE_APP_ID else "Windows(R)"
    name = edition_name if app_id == OFFICE_APP_ID else f"{family}, {edition_name}"
    specs: list[tuple[str, str, CimValue]] = [
        ("ADActivationCsvlkPid", "string", None), ("ADActivationCsvlkSkuId", "string", None),
        ("ADActivationObjectDN", "string", None), ("ADActivationObjectName", "string", None),
        ("ApplicationID", "string", app_id), ("AutomaticVMActivationHostDigitalPid2", "string", None),
        ("AutomaticVMActivationHostMachineName", "string", None),
        ("AutomaticVMActivationLastActivationTime", "datetime", NEVER), ("Description", "string", None),
        ("DiscoveredKeyManagementServiceMachineIpAddress", "string", None),
        ("DiscoveredKeyManagementServiceMachineName", "string", None),
        ("DiscoveredKeyManagementServiceMachinePort", "uint32", 0), ("EvaluationEndDate", "datetime", NEVER),
        ("ExtendedGrace", "uint32", 0), ("GenuineStatus", "uint32", 0), ("GracePeriodRemaining", "uint32", 0),
        ("IAID", "string", None), ("ID", "string", stable_guid(ctx.host.edition, name)),
        ("IsKeyManagementServiceMachine", "uint32", 0), ("KeyManagementServiceCurrentCount", "uint32", 0),
        ("KeyManagementServiceFailedRequests", "uint32", 0), ("KeyManagementServiceLicensedRequests", "uint32", 0),
        ("KeyManagementServiceLookupDomain", "string", None), ("KeyManagementServiceMachine", "string", None),
        ("KeyManagementServiceNonGenuineGraceRequests", "uint32", 0),
        ("KeyManagementServiceNotificationRequests", "uint32", 0),
        ("KeyManagementServiceOOBGraceRequests", "uint32", 0), ("KeyManagementServiceOOTGraceRequests", "uint32", 0),
        ("KeyManagementServicePort", "uint32", 0), ("KeyManagementServiceProductKeyID", "string", None),
        ("KeyManagementServiceTotalRequests", "uint32", 0), ("KeyManagementServiceUnlicensedRequests", "uint32", 0),
        ("LicenseDependsOn", "string", None), ("LicenseFamily", "string", edition_name.split(" ")[0]),
        ("LicenseIsAddon", "boolean", False), ("LicenseStatus", "uint32", 0),
        ("LicenseStatusReason", "uint32", 0xC004F014),
        ("MachineURL", "string", None), ("Name", "string", name), ("OfflineInstallationId", "string", None),
        ("PartialProductKey", "string", None), ("ProcessorURL", "string", None), ("ProductKeyChannel", "string", None),
        ("ProductKeyID", "string", None), ("ProductKeyID2", "string", None), ("ProductKeyURL", "string", None),
        ("RemainingAppReArmCount", "uint32", 1000), ("RemainingSkuReArmCount", "uint32", 1001),
        ("RequiredClientCount", "uint32", 0), ("TokenActivationAdditionalInfo", "string", None),
        ("TokenActivationCertificateThumbprint", "string", None), ("TokenActivationGrantNumber", "uint32", 0),
        ("TokenActivationILID", "string", None), ("TokenActivationILVID", "uint32", 0),
        ("TrustedTime", "datetime", ctx.now.replace(microsecond=0)), ("UseLicenseURL", "string", None),
        ("ValidationURL", "string", None), ("VLActivationInterval", "uint32", 0),
        ("VLActivationType", "uint32", 0), ("VLActivationTypeEnabled", "uint32", 0), ("VLRenewalInterval", "uint32", 0),
    ]  # fmt: skip
    return {name: Prop(name, cim_type, value) for name, cim_type, value in specs}


# --- SoftwareLicensingService --------------------------------------------------------------


def licensing_service(ctx: HostContext) -> Instance:
    host = ctx.host
    kms = host.kms if kms_role(host) else None  # machine-wide: set for any application's KMS host
    oem_key = "XXXXX-XXXXX-XXXXX-XXXXX-" + _partial_key(host) if host.activation == "OEM" else ""
    specs: list[tuple[str, str, CimValue]] = [
        ("ClientMachineID", "string", stable_guid("cmid", host.name)),
        ("DiscoveredKeyManagementServiceMachineIpAddress", "string", None),
        ("DiscoveredKeyManagementServiceMachineName", "string", host.discovered_kms or None),
        ("DiscoveredKeyManagementServiceMachinePort", "uint32", ctx.kms_port if host.discovered_kms else 0),
        ("IsKeyManagementServiceMachine", "uint32", 1 if kms else 0),
        ("KeyManagementServiceCurrentCount", "uint32", kms.current_count if kms else 0),
        ("KeyManagementServiceDnsPublishing", "boolean", kms.dns_publishing if kms else True),
        ("KeyManagementServiceFailedRequests", "uint32", kms.failed_requests if kms else 0),
        ("KeyManagementServiceHostCaching", "boolean", True),
        ("KeyManagementServiceLicensedRequests", "uint32", kms.licensed_requests if kms else 0),
        ("KeyManagementServiceListeningPort", "uint32", ctx.kms_port if kms else 0),
        ("KeyManagementServiceLookupDomain", "string", None), ("KeyManagementServiceLowPriority", "boolean", False),
        ("KeyManagementServiceMachine", "string", served_kms_machine(host, ctx.addresses) or None),
        ("KeyManagementServiceNonGenuineGraceRequests", "uint32", kms.non_genuine_requests if kms else 0),
        ("KeyManagementServiceNotificationRequests", "uint32", 0),
        ("KeyManagementServiceOOBGraceRequests", "uint32", 0),
        ("KeyManagementServiceOOTGraceRequests", "uint32", 0),
        ("KeyManagementServicePort", "uint32", ctx.kms_port if host.kms_machine else 0),
        ("KeyManagementServiceProductKeyID", "string", None),
        ("KeyManagementServiceTotalRequests", "uint32", kms.total_requests if kms else 0),
        ("KeyManagementServiceUnlicensedRequests", "uint32", 0),
        ("OA3xOriginalProductKey", "string", oem_key), ("OA3xOriginalProductKeyDescription", "string", ""),
        ("OA3xOriginalProductKeyPkPn", "string", ""), ("PolicyCacheRefreshRequired", "uint32", 0),
        ("RemainingWindowsReArmCount", "uint32", 1001),
        ("RequiredClientCount", "uint32", KMS_SERVER_THRESHOLD if kms else 0),
        ("TokenActivationAdditionalInfo", "string", None), ("TokenActivationCertificateThumbprint", "string", None),
        ("TokenActivationGrantNumber", "uint32", 0), ("TokenActivationILID", "string", None),
        ("TokenActivationILVID", "uint32", 0), ("Version", "string", EDITIONS[host.edition].version + ".1000"),
        ("VLActivationInterval", "uint32", DEFAULT_ACTIVATION_INTERVAL),
        ("VLRenewalInterval", "uint32", host.renewal_interval),
    ]  # fmt: skip
    return _instance("SoftwareLicensingService", (Prop(n, t, v) for n, t, v in specs))


# --- Win32_OperatingSystem / Win32_ComputerSystem -----------------------------------------


def host_clock(ctx: HostContext) -> datetime:
    """The host's wall clock in its own time zone, including its scenario clock offset."""
    zone = timezone(timedelta(minutes=ctx.host.tz_minutes))
    return (ctx.now + timedelta(seconds=ctx.host.clock_offset_s)).astimezone(zone)


def operating_system(ctx: HostContext) -> Instance:
    host = ctx.host
    edition = EDITIONS[host.edition]
    local = host_clock(ctx)
    build = edition.version.rsplit(".", 1)[1]
    specs: list[tuple[str, str, CimValue]] = [
        ("BootDevice", "string", "\\Device\\HarddiskVolume1"), ("BuildNumber", "string", build),
        ("BuildType", "string", "Multiprocessor Free"), ("Caption", "string", os_caption(host)),
        ("CodeSet", "string", "1252"), ("CountryCode", "string", "886"),
        ("CreationClassName", "string", "Win32_OperatingSystem"),
        ("CSCreationClassName", "string", "Win32_ComputerSystem"),
        ("CSDVersion", "string", None), ("CSName", "string", host.computer_name.upper()),
        ("CurrentTimeZone", "sint16", host.tz_minutes), ("DataExecutionPrevention_Available", "boolean", True),
        ("Debug", "boolean", False), ("Description", "string", ""), ("Distributed", "boolean", False),
        ("EncryptionLevel", "uint32", 256), ("ForegroundApplicationBoost", "uint8", 2),
        ("FreePhysicalMemory", "uint64", 5_312_004), ("InstallDate", "datetime", local - timedelta(days=412)),
        ("LastBootUpTime", "datetime", local - timedelta(hours=77)), ("LocalDateTime", "datetime", local),
        ("Locale", "string", "0404"), ("Manufacturer", "string", "Microsoft Corporation"),
        ("MUILanguages", "string[]", ["zh-TW", "en-US"]),
        ("Name", "string", f"{edition.caption}|C:\\Windows|\\Device\\Harddisk0\\Partition2"),
        ("NumberOfProcesses", "uint32", 142), ("NumberOfUsers", "uint32", 2),
        ("OperatingSystemSKU", "uint32", edition.sku),
        ("Organization", "string", ""), ("OSArchitecture", "string", "64-bit"), ("OSLanguage", "uint32", 1028),
        ("OSProductSuite", "uint32", 256), ("OSType", "uint16", 18), ("Primary", "boolean", True),
        ("ProductType", "uint32", PRODUCT_TYPES[host.product_type]), ("RegisteredUser", "string", "IT"),
        ("SerialNumber", "string", f"00330-80000-{host.name[-5:]}-AA{len(host.computer_name) % 1000:03d}"),
        ("ServicePackMajorVersion", "uint16", 0), ("ServicePackMinorVersion", "uint16", 0), ("Status", "string", "OK"),
        ("SuiteMask", "uint32", 272), ("SystemDevice", "string", "\\Device\\HarddiskVolume2"),
        ("SystemDirectory", "string", "C:\\Windows\\system32"), ("SystemDrive", "string", "C:"),
        ("TotalVisibleMemorySize", "uint64", 16_645_300), ("Version", "string", edition.version),
        ("WindowsDirectory", "string", "C:\\Windows"),
    ]  # fmt: skip
    return _instance("Win32_OperatingSystem", (Prop(n, t, v) for n, t, v in specs))


def computer_system(ctx: HostContext) -> Instance:
    host = ctx.host
    joined = host.domain.upper() != "WORKGROUP"
    role = {"workstation": 1 if joined else 0, "server": 3 if joined else 2, "dc": 5}[host.product_type]
    specs: list[tuple[str, str, CimValue]] = [
        ("AdminPasswordStatus", "uint16", 3), ("AutomaticResetBootOption", "boolean", True),
        ("BootupState", "string", "Normal boot"), ("Caption", "string", host.computer_name.upper()),
        ("CurrentTimeZone", "sint16", host.tz_minutes), ("DaylightInEffect", "boolean", False),
        ("Description", "string", "AT/AT COMPATIBLE"), ("DNSHostName", "string", host.computer_name.lower()),
        ("Domain", "string", host.domain), ("DomainRole", "uint16", role), ("HypervisorPresent", "boolean", True),
        ("Manufacturer", "string", "Microsoft Corporation"), ("Model", "string", "Virtual Machine"),
        ("Name", "string", host.computer_name.upper()), ("NumberOfLogicalProcessors", "uint32", 4),
        ("NumberOfProcessors", "uint32", 1), ("PartOfDomain", "boolean", joined),
        ("PrimaryOwnerName", "string", "IT"), ("Roles", "string[]", _roles(host)), ("Status", "string", "OK"),
        ("SystemType", "string", "x64-based PC"), ("TotalPhysicalMemory", "uint64", 17_044_787_200),
        ("UserName", "string", None), ("Workgroup", "string", None if joined else "WORKGROUP"),
    ]  # fmt: skip
    return _instance("Win32_ComputerSystem", (Prop(n, t, v) for n, t, v in specs))


def _roles(host: Host) -> list[str]:
    roles = ["LM_Workstation", "LM_Server", "NT"]
    if host.product_type != "workstation":
        roles = ["LM_Workstation", "LM_Server", "Server_NT"]
    if host.product_type == "dc":
        roles.append("Primary_Domain_Controller")
    return roles


# --- Win32_NTLogEvent ----------------------------------------------------------------------

_EVENT_IDENTIFIER: Final = {8198: 0xC0002006, 12288: 0x40003000, 12289: 0x40003001, 16384: 0x40004000, 1033: 0x400003F9}


def log_events(ctx: HostContext) -> list[Instance]:
    """The host's Application log: its SPP events plus unrelated noise, newest first."""
    host = ctx.host
    rows = [(e.minutes_ago, e.event_code, SPP_SOURCE, _spp_message(ctx, e.event_code, e.hr)) for e in host.events]
    rows.append((3, 16384, SPP_SOURCE, "Successfully scheduled Software Protection service for re-start at "
                 f"{ctx.now.strftime('%Y-%m-%dT%H:%M:%SZ')}. Reason: RulesEngine."))  # fmt: skip
    rows.append(
        (45, 1033, "MsiInstaller", "Windows Installer installed the product. Installation success or error status: 0.")
    )
    rows.sort(key=lambda r: r[0])
    total = len(rows)
    return [_event_instance(ctx, total - i, *row) for i, row in enumerate(rows)]


def _spp_message(ctx: HostContext, code: int, hr: int) -> str:
    if code == 8198:
        return (f"License Activation (slui.exe) failed with the following error code:\r\nhr={hresult_text(hr)}\r\n"
                f"Command-line arguments:\r\nRuleId=eeba1977-569e-4571-b639-7623d8bfecc0;Action=AutoActivate;"
                f"AppId={WINDOWS_APP_ID};SkuId={stable_guid(ctx.host.edition, 'sku')};NotificationInterval=1440;"
                "Trigger=TimerEvent")  # fmt: skip
    target = (served_kms_machine(ctx.host, ctx.addresses) or ctx.host.discovered_kms or "kms").lower()
    if code == 12288:
        return (f"The client has sent an activation request to the key management service machine.\r\nInfo:\r\n"
                f"{hresult_text(hr)}, 0x00000000, {target}:{ctx.kms_port}, {stable_guid('cmid', ctx.host.name)}, "
                f"{ctx.now:%Y/%m/%d %H:%M}, 0, 2, 43200, {stable_guid(ctx.host.edition, 'sku')}, 25")  # fmt: skip
    bound = 0 if is_failure(hr) else 1
    return (f"The client has processed an activation response from the key management service machine.\r\nInfo:\r\n"
            f"{hresult_text(hr)}, 0x00000000, {bound}, 0, 50, {DEFAULT_ACTIVATION_INTERVAL}, "
            f"{ctx.host.renewal_interval}, {ctx.now:%Y/%m/%d %H:%M}")  # fmt: skip


def _event_instance(ctx: HostContext, record: int, minutes_ago: int, code: int, source: str, message: str) -> Instance:
    generated = ctx.now - timedelta(minutes=minutes_ago)
    error = code == 8198
    strings = [line for line in message.split("\r\n") if line.startswith(("hr=", "RuleId="))] if error else [message]
    specs: list[tuple[str, str, CimValue]] = [
        ("Category", "uint16", 0), ("CategoryString", "string", None), ("ComputerName", "string", fqdn(ctx.host)),
        ("Data", "uint8[]", None), ("EventCode", "uint16", code),
        ("EventIdentifier", "uint32", _EVENT_IDENTIFIER.get(code, 0x40000000 | code)),
        ("EventType", "uint8", 1 if error else 3), ("InsertionStrings", "string[]", strings),
        ("Logfile", "string", "Application"), ("Message", "string", message),
        ("RecordNumber", "uint32", 40000 + record),
        ("SourceName", "string", source), ("TimeGenerated", "datetime", generated),
        ("TimeWritten", "datetime", generated), ("Type", "string", "Error" if error else "Information"),
        ("User", "string", None),
    ]  # fmt: skip
    return _instance("Win32_NTLogEvent", (Prop(n, t, v) for n, t, v in specs))


CLASSES: Final[dict[str, Callable[[HostContext], list[Instance]]]] = {
    "softwarelicensingproduct": licensing_products,
    "softwarelicensingservice": lambda ctx: [licensing_service(ctx)],
    "win32_operatingsystem": lambda ctx: [operating_system(ctx)],
    "win32_computersystem": lambda ctx: [computer_system(ctx)],
    "win32_ntlogevent": log_events,
}
CLASS_NAMES: Final = {
    "softwarelicensingproduct": "SoftwareLicensingProduct",
    "softwarelicensingservice": "SoftwareLicensingService",
    "win32_operatingsystem": "Win32_OperatingSystem",
    "win32_computersystem": "Win32_ComputerSystem",
    "win32_ntlogevent": "Win32_NTLogEvent",
}


def instances(class_name: str, ctx: HostContext) -> list[Instance] | None:
    """All instances of a class (case-insensitive name), or None when the class does not exist."""
    builder = CLASSES.get(class_name.lower())
    return None if builder is None else builder(ctx)
