"""KMS rules: what a host's count lets it activate, where the count tops out, which host activates
which Windows version, and the numbers behind them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from knowledge import kms
from knowledge.kms import (
    CSVLK_GROUPS,
    RELEASES,
    KmsState,
    at_cap,
    can_activate,
    capped,
    count_ceiling,
    host_count,
    kms_state,
    newest_csvlk_group,
    required_count,
    shortfall,
    srv_name,
    windows_name,
    windows_release,
)


def test_documented_numbers():
    assert kms.KMS_CLIENT_THRESHOLD == 25
    assert kms.KMS_SERVER_THRESHOLD == 5
    assert kms.KMS_COUNT_CAP == 2 * kms.KMS_CLIENT_THRESHOLD == 50
    assert kms.KMS_SERVER_ONLY_CAP == 2 * kms.KMS_SERVER_THRESHOLD == 10
    assert kms.KMS_DEFAULT_PORT == 1688
    assert timedelta(hours=4) == kms.CLOCK_SKEW_LIMIT
    assert kms.KMS_SRV_PREFIX == "_vlmcs._tcp"
    assert timedelta(minutes=10080) == kms.RENEWAL_INTERVAL
    assert timedelta(minutes=120) == kms.RETRY_INTERVAL
    assert timedelta(days=180) == kms.ACTIVATION_VALIDITY


@pytest.mark.parametrize(
    ("count", "state"),
    [
        (-1, KmsState.NONE),
        (0, KmsState.NONE),
        (4, KmsState.NONE),
        (5, KmsState.SERVERS),
        (24, KmsState.SERVERS),
        (25, KmsState.ALL),
        (50, KmsState.ALL),
    ],
)
def test_kms_state_boundaries(count, state):
    assert kms_state(count) is state


def test_state_values_are_stable_strings():
    assert [state.value for state in KmsState] == ["none", "servers", "all"]


def test_state_in_words():
    assert [state.words() for state in KmsState] == ["serves neither", "servers only", "servers and clients"]
    chinese = [state.words("zh-TW") for state in KmsState]
    assert len(set(chinese)) == 3
    assert all("伺服器" in words for words in chinese)
    assert KmsState.ALL.words("de") == "servers and clients"


def test_required_count():
    assert required_count(is_server=True) == 5
    assert required_count(is_server=False) == 25


@pytest.mark.parametrize(("count", "expected"), [(-3, 0), (0, 0), (49, 49), (50, 50), (51, 50), (500, 50)])
def test_capped(count, expected):
    assert capped(count) == expected


def test_shortfall():
    assert shortfall(20, is_server=False) == 5
    assert shortfall(20, is_server=True) == 0
    assert shortfall(0, is_server=True) == 5


def test_srv_name():
    assert srv_name("corp.example") == "_vlmcs._tcp.corp.example"
    assert srv_name(" corp.example. ") == "_vlmcs._tcp.corp.example"


def test_count_ceiling():
    assert count_ceiling(serves_workstations=True) == kms.KMS_COUNT_CAP == 50
    assert count_ceiling(serves_workstations=False) == kms.KMS_SERVER_ONLY_CAP == 10


@pytest.mark.parametrize(
    ("count", "workstations", "expected"),
    [(49, True, False), (50, True, True), (60, True, True), (9, False, False), (10, False, True), (0, False, False)],
)
def test_at_cap(count, workstations, expected):
    assert at_cap(count, serves_workstations=workstations) is expected


def test_a_count_above_ten_proves_workstations_count():
    reading = host_count(12, serves_workstations=False)
    assert reading.ceiling == 50 and not reading.at_cap
    assert not at_cap(12, serves_workstations=False)


@pytest.mark.parametrize(
    ("count", "workstations", "expected"),
    [
        (0, True, (0, 50, KmsState.NONE, False)),
        (12, True, (12, 50, KmsState.SERVERS, False)),
        (50, True, (50, 50, KmsState.ALL, True)),
        (73, True, (50, 50, KmsState.ALL, True)),
        (-2, False, (0, 10, KmsState.NONE, False)),
        (7, False, (7, 10, KmsState.SERVERS, False)),
        (10, False, (10, 10, KmsState.SERVERS, True)),
    ],
)
def test_host_count(count, workstations, expected):
    reading = host_count(count, serves_workstations=workstations)
    assert (reading.count, reading.ceiling, reading.state, reading.at_cap) == expected


def test_host_count_in_words():
    assert host_count(12).words() == "12 of at most 50: servers only"
    assert host_count(50).words("en") == "50, the most it can report: servers and clients"
    assert host_count(10, serves_workstations=False).words() == "10, the most it can report: servers only"
    assert host_count(3, serves_workstations=False).words("zh-TW") == "3（上限 10）：伺服器與用戶端皆無法啟用"
    assert host_count(50).words("zh_tw") == "50（已達上限）：可啟用伺服器與用戶端"
    assert host_count(12).words("fr") == host_count(12).words()


# Real Win32_OperatingSystem Version and Caption pairs.
WS2008 = ("6.0.6002", "Microsoft® Windows Server® 2008 Enterprise ")
WS2008R2 = ("6.1.7601", "Microsoft Windows Server 2008 R2 Datacenter ")
WS2012 = ("6.2.9200", "Microsoft Windows Server 2012 Standard")
WS2012R2 = ("6.3.9600", "Microsoft Windows Server 2012 R2 Standard")
WS2016 = ("10.0.14393", "Microsoft Windows Server 2016 Datacenter")
WS1809 = ("10.0.17763", "Microsoft Windows Server Datacenter")
WS20H2 = ("10.0.19042", "Microsoft Windows Server Standard")
WS2019 = ("10.0.17763", "Microsoft Windows Server 2019 Standard")
WS2022 = ("10.0.20348", "Microsoft Windows Server 2022 Datacenter")
WS2022_AZURE = ("10.0.20348", "Microsoft Windows Server 2022 Datacenter: Azure Edition")
WS23H2 = ("10.0.25398", "Microsoft Windows Server Datacenter")
WS2025 = ("10.0.26100", "Microsoft Windows Server 2025 Standard")
W7 = ("6.1.7601", "Microsoft Windows 7 Enterprise ")
W8 = ("6.2.9200", "Microsoft Windows 8 Enterprise")
W81 = ("6.3.9600", "Microsoft Windows 8.1 Pro")
W10 = ("10.0.19045", "Microsoft Windows 10 Enterprise")
W10_HOME = ("10.0.19045", "Microsoft Windows 10 Home")
W10_LTSB2015 = ("10.0.10240", "Microsoft Windows 10 Enterprise 2015 LTSB")
W10_LTSB2016 = ("10.0.14393", "Microsoft Windows 10 Enterprise 2016 LTSB")
W10_LTSC2019 = ("10.0.17763", "Microsoft Windows 10 Enterprise LTSC")
W10_LTSC2021 = ("10.0.19044", "Microsoft Windows 10 Enterprise LTSC")
W11 = ("10.0.22631", "Microsoft Windows 11 Enterprise")
W11_ZH = ("10.0.26100", "Microsoft Windows 11 專業版")
W11_LTSC2024 = ("10.0.26100", "Microsoft Windows 11 Enterprise LTSC")


@pytest.mark.parametrize(
    ("os", "name"),
    [
        (WS2008, "Windows Server 2008"),
        (WS2008R2, "Windows Server 2008 R2"),
        (WS2012, "Windows Server 2012"),
        (WS2012R2, "Windows Server 2012 R2"),
        (WS2016, "Windows Server 2016"),
        (WS1809, "Windows Server, version 1809"),
        (WS20H2, "Windows Server, version 20H2"),
        (WS2019, "Windows Server 2019"),
        (WS2022, "Windows Server 2022"),
        (WS2022_AZURE, "Windows Server 2022"),
        (WS23H2, "Windows Server, version 23H2"),
        (WS2025, "Windows Server 2025"),
        (W7, "Windows 7"),
        (W8, "Windows 8"),
        (W81, "Windows 8.1"),
        (W10, "Windows 10"),
        (W10_LTSB2015, "Windows 10 LTSB 2015"),
        (W10_LTSB2016, "Windows 10 LTSB 2016"),
        (W10_LTSC2019, "Windows 10 LTSC 2019"),
        (W10_LTSC2021, "Windows 10 LTSC 2021"),
        (W11, "Windows 11"),
        (W11_ZH, "Windows 11"),
        (W11_LTSC2024, "Windows 11 LTSC 2024"),
        ((None, "Microsoft Windows Server 2012 R2 Standard"), "Windows Server 2012 R2"),
        (("", "Microsoft Windows 11 Pro"), "Windows 11"),
        (("10.0", "Microsoft Windows 10 Pro"), "Windows 10"),
    ],
)
def test_windows_name(os, name):
    assert windows_name(*os) == name


@pytest.mark.parametrize(
    "os",
    [
        (None, None),
        ("10.0.20348", None),
        ("10.0.20348", ""),
        ("garbage", "Microsoft Windows Server 2022 Datacenter"),
        ("6.3.9600", "Microsoft Windows Server 2022 Datacenter"),  # caption and version disagree
        ("10.0.22631", "Microsoft Windows 10 Enterprise"),
        ("10.0.17763", "Microsoft Hyper-V Server 2019"),
        (None, "Microsoft Windows Server Datacenter"),  # no year and no build
        (None, "Microsoft Windows 10 Enterprise LTSC"),  # 2019 or 2021
        ("10.0.99999", "Microsoft Windows Server Datacenter"),
        ("6.0.6002", "Microsoft® Windows Vista™ Business"),
        ("5.2.3790", "Microsoft(R) Windows(R) Server 2003, Standard Edition"),
    ],
)
def test_unrecognised_windows_gives_none(os):
    assert windows_release(*os) is None
    assert windows_name(*os) is None


# One case per row of the table (the host's newest key group), its edges, and the update rows.
@pytest.mark.parametrize(
    ("host", "client", "expected"),
    [
        # Volume License for Windows Server 2025: hosted on 2025, 2022, 2019
        (WS2025, WS2025, True),
        (WS2025, W11_LTSC2024, True),
        (WS2022, WS2025, True),
        (WS2019, WS2025, True),
        (WS2019, W11_LTSC2024, True),
        (WS2025, WS2008, True),
        (WS2025, W7, True),
        # Volume License for Windows Server 2022: newest key a 2016 host may hold
        (WS2016, WS2022, True),
        (WS2016, W11, True),
        (WS2016, W10_LTSC2021, True),
        (WS2016, WS20H2, True),
        (WS2016, WS2025, False),
        (WS2016, W11_LTSC2024, False),
        # Volume License for Windows Server 2019: newest key a 2012 R2 host may hold
        (WS2012R2, WS2019, True),
        (WS2012R2, WS2016, True),
        (WS2012R2, W10, True),
        (WS2012R2, W10_LTSC2019, True),
        (WS2012R2, WS1809, True),
        (WS2012R2, WS2022, False),
        (WS2012R2, W11, False),
        # Volume License for Windows Server 2016: newest key a 2012 host may hold
        (WS2012, WS2016, True),
        (WS2012, WS2012R2, True),
        (WS2012, W10, True),
        (WS2012, W10_LTSB2016, True),
        (WS2012, W10_LTSC2019, False),
        (WS2012, WS2019, False),
        (WS2012, WS1809, False),
        # Volume license for Windows 10: hosted on Windows 10, 8.1, 7; clients only
        (W10, W10, True),
        (W81, W10, True),
        (W7, W81, True),
        (W10, W10_LTSB2015, True),
        (W10, W10_LTSC2019, False),
        (W10, W11, False),
        (W10, WS2016, False),
        # Hosts that cannot, and cases the table does not speak of
        (WS2022_AZURE, W10, False),
        (WS2022, W10_HOME, False),
        (W11, W11, None),
        (WS2008R2, W10, None),
        (W10_LTSC2019, W10, None),
        (WS2022, W8, None),
        (WS2022, WS23H2, None),
        (W10, W8, None),
    ],
)
def test_can_activate(host, client, expected):
    assert can_activate(*host, *client) is expected


@pytest.mark.parametrize(
    ("host", "client"),
    [
        ((None, None), W10),
        (WS2022, (None, None)),
        (("6.3", "Microsoft Windows Server 2022"), W10),
        (WS2022, ("x", "y")),
    ],
)
def test_can_activate_with_unknown_inputs_gives_none(host, client):
    assert can_activate(*host, *client) is None


@pytest.mark.parametrize(
    ("host", "group"),
    [
        (WS2025, "Volume License for Windows Server 2025"),
        (WS2019, "Volume License for Windows Server 2025"),
        (WS2016, "Volume License for Windows Server 2022"),
        (WS2012R2, "Volume License for Windows Server 2019"),
        (WS2012, "Volume License for Windows Server 2016"),
        (W7, "Volume license for Windows 10"),
        (WS2022_AZURE, None),
        (W11, None),
        ((None, None), None),
    ],
)
def test_newest_csvlk_group(host, group):
    assert newest_csvlk_group(*host) == group


def test_the_table_names_only_known_releases():
    names = {release.name for release in RELEASES}
    assert len(names) == len(RELEASES)
    for group in CSVLK_GROUPS:
        assert group.hosted_on <= names, group.name
        assert group.activates <= names, group.name
    assert [group.name[-4:] for group in CSVLK_GROUPS[:4]] == ["2025", "2022", "2019", "2016"]


def test_a_client_windows_key_activates_no_server():
    client_key = CSVLK_GROUPS[-1]
    servers = {release.name for release in RELEASES if release.server}
    assert not client_key.activates & servers
