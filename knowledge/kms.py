"""Key Management Service rules: thresholds, caps, ports, timers, host states and host/client versions.

This module owns the numbers KMS activation depends on, named once so the collector's diagnosis,
the store and the dashboard agree, plus the small pure functions built on them (what a host's
count lets it activate, the count a client needs, where the count tops out) and Microsoft's table
of which KMS host versions can activate which Windows versions (error 0xC004F042). It does not
probe anything; the checks that use these rules live in ``collectors.diagnose``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TypeVar

from knowledge.codes import normalise_language

_T = TypeVar("_T")

KMS_CLIENT_THRESHOLD = 25
"""A KMS host activates Windows client (workstation) machines once its count reaches this."""

KMS_SERVER_THRESHOLD = 5
"""A KMS host activates Windows Server machines (and volume Office) once its count reaches this."""

KMS_COUNT_CAP = 50
"""A KMS host remembers only the 50 most recent machines (twice the client threshold)."""

KMS_SERVER_ONLY_CAP = 10
"""With only servers contacting it, a KMS host's count tops out at 10 (twice the server threshold).

Both caps: "Guidelines for troubleshooting the Key Management Service (KMS)",
https://learn.microsoft.com/en-us/windows-server/get-started/activation-troubleshoot-kms-general."""

KMS_COUNT_WINDOW = timedelta(days=30)
"""The count is the number of distinct machines (CMIDs) that contacted the host in this window."""

KMS_DEFAULT_PORT = 1688
"""TCP port a KMS host listens on unless changed with ``slmgr.vbs /sprt``."""

KMS_SRV_PREFIX = "_vlmcs._tcp"
"""DNS SRV name, under the client's domain, through which KMS clients discover hosts."""

SRV_REPUBLISH_INTERVAL = timedelta(hours=24)
"""A publishing KMS host re-registers its SRV record this often."""

CLOCK_SKEW_LIMIT = timedelta(hours=4)
"""A KMS host rejects requests (0xC004F06C) when client and host clocks differ by more, in UTC."""

ACTIVATION_VALIDITY = timedelta(days=180)
"""How long a KMS activation stays valid without a successful renewal."""

RENEWAL_INTERVAL = timedelta(days=7)
"""An activated KMS client renews this often (``VLRenewalInterval`` default, 10080 minutes)."""

RETRY_INTERVAL = timedelta(hours=2)
"""An unactivated KMS client retries this often (``VLActivationInterval`` default, 120 minutes)."""

INTERVAL_MIN = timedelta(minutes=15)
"""Shortest renewal or retry interval a KMS host may hand out (``/sai``, ``/sri``)."""

INTERVAL_MAX = timedelta(days=30)
"""Longest renewal or retry interval a KMS host may hand out."""

KMS_HOST_KEY_ACTIVATIONS = 10
"""A KMS host key (CSVLK) can be activated this many times (0xC004C008 beyond that)..."""

KMS_HOST_KEY_MACHINES = 6
"""... on at most this many different computers."""


class KmsState(StrEnum):
    """What a KMS host's current count lets it activate."""

    NONE = "none"
    SERVERS = "servers"
    ALL = "all"

    def words(self, lang: str = "en") -> str:
        """The state in words for people, in ``lang`` (English for unsupported languages)."""
        return _in_language(_WORDS, lang)[self]


_WORDS: dict[str, dict[KmsState, str]] = {
    "en": {
        KmsState.NONE: "serves neither",
        KmsState.SERVERS: "servers only",
        KmsState.ALL: "servers and clients",
    },
    "zh-TW": {
        KmsState.NONE: "伺服器與用戶端皆無法啟用",
        KmsState.SERVERS: "僅能啟用伺服器",
        KmsState.ALL: "可啟用伺服器與用戶端",
    },
}


def kms_state(count: int) -> KmsState:
    """What a KMS host with ``count`` can activate: nothing, servers only, or everything."""
    if count >= KMS_CLIENT_THRESHOLD:
        return KmsState.ALL
    if count >= KMS_SERVER_THRESHOLD:
        return KmsState.SERVERS
    return KmsState.NONE


def count_ceiling(serves_workstations: bool) -> int:
    """The highest count a KMS host reports for one application: 50, or 10 when no workstation counts.

    Pass False when every client of the application needs only 5: Windows Server machines, or
    volume Office. The Office case is derived from the rule Microsoft's KMS troubleshooting guide
    gives (a host keeps twice the largest count a client asked for); the guide states it for
    Windows only.
    """
    return KMS_COUNT_CAP if serves_workstations else KMS_SERVER_ONLY_CAP


def at_cap(count: int, serves_workstations: bool) -> bool:
    """True when ``count`` has reached its ceiling, so it no longer grows with the fleet."""
    return host_count(count, serves_workstations).at_cap


@dataclass(frozen=True, slots=True)
class HostCount:
    """One application's count on a KMS host, read against the thresholds and the count's ceiling.

    A host keeps a separate count per application (Windows apart from volume Office), so each
    application's count gets its own ``HostCount``.
    """

    count: int
    ceiling: int

    @property
    def state(self) -> KmsState:
        return kms_state(self.count)

    @property
    def at_cap(self) -> bool:
        return self.count >= self.ceiling

    def words(self, lang: str = "en") -> str:
        """``12 of at most 50: servers only`` in ``lang`` (English for unsupported languages)."""
        table = _in_language(_COUNT_WORDS, lang)
        template = table["cap"] if self.at_cap else table["below"]
        return template.format(count=self.count, ceiling=self.ceiling, state=self.state.words(lang))


def host_count(count: int, serves_workstations: bool = True) -> HostCount:
    """Describe one application's count; it is clamped to 0..ceiling.

    A count above 10 proves a workstation asked for 25, so the ceiling is then 50 whatever
    ``serves_workstations`` says.
    """
    ceiling = count_ceiling(serves_workstations or count > KMS_SERVER_ONLY_CAP)
    return HostCount(max(0, min(count, ceiling)), ceiling)


_COUNT_WORDS: dict[str, dict[str, str]] = {
    "en": {"below": "{count} of at most {ceiling}: {state}", "cap": "{count}, the most it can report: {state}"},
    "zh-TW": {"below": "{count}（上限 {ceiling}）：{state}", "cap": "{count}（已達上限）：{state}"},
}


def _in_language(tables: dict[str, _T], lang: str) -> _T:
    return tables.get(normalise_language(lang), tables["en"])


def required_count(is_server: bool) -> int:
    """The KMS host count a machine needs before the host activates it."""
    return KMS_SERVER_THRESHOLD if is_server else KMS_CLIENT_THRESHOLD


def capped(count: int) -> int:
    """``count`` clamped to what a KMS host can report (0 to 50)."""
    return max(0, min(count, KMS_COUNT_CAP))


def shortfall(count: int, is_server: bool) -> int:
    """How many more machines the host must count before it activates this kind of machine."""
    return max(0, required_count(is_server) - count)


def srv_name(domain: str) -> str:
    """The SRV name KMS clients of ``domain`` query, e.g. ``_vlmcs._tcp.corp.example``."""
    return f"{KMS_SRV_PREFIX}.{domain.strip().strip('.')}"


# Which KMS host can activate which Windows version (error 0xC004F042) -----------------------------

KMS_VERSIONS_SOURCE = (
    "https://learn.microsoft.com/en-us/windows-server/get-started/kms-activation-planning#activation-versions"
)
"""Microsoft's "Key Management Services (KMS) activation planning", section "Activation versions"
(MicrosoftDocs/windowsserverdocs ``WindowsServerDocs/get-started/kms-activation-planning.md``, ms.date
2025-03-17; the 2024-11-12 version has the same table). Its tabs say, per KMS host key (CSVLK) group,
which Windows versions may hold that key and which versions the key activates; the "KMS host
required updates" table below them lists the updates a host needs before it activates newer versions."""


@dataclass(frozen=True, slots=True)
class WindowsRelease:
    """One Windows release as that table names it, recognised from ``Win32_OperatingSystem``."""

    name: str  # short human name, e.g. "Windows Server 2012 R2", "Windows 10 LTSC 2019"
    server: bool
    version: tuple[int, int]  # major.minor of ``Version``
    builds: range | None = None  # the builds of a 10.0 release; None: any build of ``version``
    ltsc: bool = False  # the Caption says LTSB or LTSC
    label: str | None = None  # what the Caption names; None: no year in it (Semi-Annual Channel)


def _server(name: str, version: tuple[int, int], build: int | None = None) -> WindowsRelease:
    builds = range(build, build + 1) if build else None
    return WindowsRelease(name, True, version, builds, label=name)


def _channel(version: str, build: int) -> WindowsRelease:
    return WindowsRelease(f"Windows Server, version {version}", True, (10, 0), range(build, build + 1))


def _client(name: str, version: tuple[int, int], builds: range | None = None, ltsc: bool = False) -> WindowsRelease:
    label = " ".join(name.split()[:2])  # "Windows 10 LTSC 2019" -> "Windows 10"
    return WindowsRelease(name, False, version, builds, ltsc, label)


def _ltsc(name: str, build: int) -> WindowsRelease:
    return _client(name, (10, 0), range(build, build + 1), ltsc=True)


_SEMI_ANNUAL_CHANNEL = (
    _channel("1709", 16299),
    _channel("1803", 17134),
    _channel("1809", 17763),
    _channel("1903", 18362),
    _channel("1909", 18363),
    _channel("2004", 19041),
    _channel("20H2", 19042),
)

RELEASES: tuple[WindowsRelease, ...] = (
    _server("Windows Server 2008", (6, 0)),
    _server("Windows Server 2008 R2", (6, 1)),
    _server("Windows Server 2012", (6, 2)),
    _server("Windows Server 2012 R2", (6, 3)),
    _server("Windows Server 2016", (10, 0), 14393),
    _server("Windows Server 2019", (10, 0), 17763),
    _server("Windows Server 2022", (10, 0), 20348),
    _server("Windows Server 2025", (10, 0), 26100),
    *_SEMI_ANNUAL_CHANNEL,
    _channel("23H2", 25398),  # Annual Channel: not in the table
    _client("Windows 7", (6, 1)),
    _client("Windows 8", (6, 2)),
    _client("Windows 8.1", (6, 3)),
    _client("Windows 10", (10, 0), range(10240, 22000)),
    _ltsc("Windows 10 LTSB 2015", 10240),
    _ltsc("Windows 10 LTSB 2016", 14393),
    _ltsc("Windows 10 LTSC 2019", 17763),
    _ltsc("Windows 10 LTSC 2021", 19044),
    _client("Windows 11", (10, 0), range(22000, 100000)),
    _ltsc("Windows 11 LTSC 2024", 26100),
)
"""Every release the compatibility table speaks of, plus the few it leaves out (Windows 8, Windows
Server version 23H2), so that those are recognised and answered None rather than guessed."""


@dataclass(frozen=True, slots=True)
class CsvlkGroup:
    """One KMS host key group: the Windows versions that may hold the key and those it activates."""

    name: str
    hosted_on: frozenset[str]
    activates: frozenset[str]


_OLDER_SERVERS = ("Windows Server 2012 R2", "Windows Server 2012", "Windows Server 2008 R2", "Windows Server 2008")
_SEMI_ANNUAL = tuple(release.name for release in _SEMI_ANNUAL_CHANNEL)
_LTSC_10 = ("Windows 10 LTSB 2015", "Windows 10 LTSB 2016", "Windows 10 LTSC 2019", "Windows 10 LTSC 2021")
_OLDER_CLIENTS = ("Windows 10", "Windows 8.1", "Windows 7")


def _group(name: str, hosted_on: tuple[str, ...], servers: tuple[str, ...], clients: tuple[str, ...]) -> CsvlkGroup:
    """Every server group also activates Windows Server 2012 R2 back to 2008 (all editions)."""
    older = _OLDER_SERVERS if servers else ()
    return CsvlkGroup(name, frozenset(hosted_on), frozenset((*servers, *older, *clients)))


# Windows Server 2008 R2 appears as a host only in the required-updates table (KB3079821: up to
# Windows Server 2012 R2 and Windows 10), through a key group the current table no longer lists,
# so a 2008 R2 host is answered None.
CSVLK_GROUPS: tuple[CsvlkGroup, ...] = (
    _group(
        "Volume License for Windows Server 2025",
        ("Windows Server 2025", "Windows Server 2022", "Windows Server 2019"),
        ("Windows Server 2025", "Windows Server 2022", *_SEMI_ANNUAL, "Windows Server 2019", "Windows Server 2016"),
        ("Windows 11 LTSC 2024", "Windows 11", *_LTSC_10, *_OLDER_CLIENTS),
    ),
    _group(
        "Volume License for Windows Server 2022",
        ("Windows Server 2022", "Windows Server 2019", "Windows Server 2016"),
        ("Windows Server 2022", *_SEMI_ANNUAL, "Windows Server 2019", "Windows Server 2016"),
        # "Windows 11 Enterprise" is listed with no LTSC edition, and Windows 11 LTSC 2024 appears
        # only under the 2025 group, so a 2022 key is taken not to activate it.
        ("Windows 11", *_LTSC_10, *_OLDER_CLIENTS),
    ),
    _group(
        "Volume License for Windows Server 2019",
        ("Windows Server 2019", "Windows Server 2016", "Windows Server 2012 R2"),
        (*_SEMI_ANNUAL, "Windows Server 2019", "Windows Server 2016"),
        (*_LTSC_10, *_OLDER_CLIENTS),
    ),
    _group(
        "Volume License for Windows Server 2016",
        ("Windows Server 2016", "Windows Server 2012 R2", "Windows Server 2012"),
        # "Windows Server Semi-Annual Channel" is listed without saying which versions; 1809 and later
        # share or pass the build of Windows Server 2019, which this key does not activate, so no
        # Semi-Annual Channel version is taken to be activated.
        ("Windows Server 2016",),
        # LTSB is named for 2015 and 2016 only.
        ("Windows 10 LTSB 2015", "Windows 10 LTSB 2016", *_OLDER_CLIENTS),
    ),
    _group(
        "Volume license for Windows 10",
        ("Windows 10", "Windows 8.1", "Windows 7"),
        (),  # a key on a client version of Windows activates client versions only
        ("Windows 10 LTSB 2015", *_OLDER_CLIENTS),  # LTSB is named for 2015 only
    ),
)
"""The table's groups, newest first. Hosts on older versions need the updates the same page lists
(for example KB4467695 on Windows Server 2012 R2 for the 2019 key, KB5003638 on Windows Server 2016
for the 2022 key) before the newer key installs."""

_LISTED = frozenset().union(*(group.activates for group in CSVLK_GROUPS))
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_SERVER_LABEL = re.compile(r"windows server (\d{4})( r2)?\b", re.IGNORECASE)
_CLIENT_LABEL = re.compile(r"windows (8\.1|7|8|10|11)(?![\d.])", re.IGNORECASE)
_LTSC_WORD = re.compile(r"\blts[bc]\b", re.IGNORECASE)
_AZURE_EDITION = re.compile(r"azure edition", re.IGNORECASE)
_HOME_EDITION = re.compile(r"\bhome\b", re.IGNORECASE)


def windows_release(os_version: str | None, caption: str | None) -> WindowsRelease | None:
    """The release a ``Win32_OperatingSystem`` ``Version`` and ``Caption`` describe, or None.

    The Caption is needed (it tells a server from a client and names the year); the Version tells
    apart what the Caption leaves open (Semi-Annual Channel, LTSC builds) and must agree with it.
    """
    text = " ".join((caption or "").replace("®", " ").replace("™", " ").split())
    raw = (os_version or "").strip()
    version = _VERSION.fullmatch(raw)
    if not text or (raw and version is None):
        return None
    server = "server" in text.casefold()
    if server and "windows server" not in text.casefold():
        return None  # Hyper-V Server and the like: not in the table
    key = (server, bool(_LTSC_WORD.search(text)), _caption_label(text, server))
    matches = [
        release
        for release in RELEASES
        if (release.server, release.ltsc, release.label) == key and (version is None or _fits(release, version))
    ]
    return matches[0] if len(matches) == 1 else None


def windows_name(os_version: str | None, caption: str | None) -> str | None:
    """A short name such as "Windows Server 2012 R2" or "Windows 11", or None when unrecognised."""
    release = windows_release(os_version, caption)
    return release.name if release else None


def newest_csvlk_group(host_os_version: str | None, host_caption: str | None) -> str | None:
    """The newest KMS host key group a host of this Windows version may hold, or None when unknown."""
    groups = _groups_for_host(host_os_version, host_caption)
    return groups[0].name if groups else None


def can_activate(
    host_os_version: str | None,
    host_caption: str | None,
    client_os_version: str | None,
    client_caption: str | None,
) -> bool | None:
    """Whether a KMS host on this Windows version can activate a client on that one.

    True means some host key that the host's version may hold activates the client, once the host
    has the updates the source lists; the key actually installed may still be older. False means no
    such key does (error 0xC004F042 follows), including a Datacenter: Azure Edition host, which
    cannot be a KMS host, and a Home client, which no KMS host activates. None: either side is
    unrecognised, or the table says nothing about it (Windows 11 or Windows Server 2008 R2 as a
    host, Windows 8 or Windows Server version 23H2 as a client).
    """
    client = windows_release(client_os_version, client_caption)
    groups = _groups_for_host(host_os_version, host_caption)
    if client is None or groups is None:
        return None
    if not client.server and _HOME_EDITION.search(client_caption or ""):
        return False
    if any(client.name in group.activates for group in groups):
        return True
    return False if client.name in _LISTED or not groups else None


def _groups_for_host(os_version: str | None, caption: str | None) -> tuple[CsvlkGroup, ...] | None:
    """The groups a host may hold, newest first; () for an Azure Edition host; None when unknown."""
    host = windows_release(os_version, caption)
    if host is None:
        return None
    if host.server and _AZURE_EDITION.search(caption or ""):
        return ()
    groups = tuple(group for group in CSVLK_GROUPS if host.name in group.hosted_on)
    return groups or None


def _caption_label(text: str, server: bool) -> str | None:
    if server:
        year = _SERVER_LABEL.search(text)
        return f"Windows Server {year.group(1)}{' R2' if year.group(2) else ''}" if year else None
    number = _CLIENT_LABEL.search(text)
    return f"Windows {number.group(1)}" if number else None


def _fits(release: WindowsRelease, version: re.Match[str]) -> bool:
    major, minor, build = version.groups()
    if (int(major), int(minor)) != release.version:
        return False
    return release.builds is None or build is None or int(build) in release.builds
