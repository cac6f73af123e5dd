"""The YAML ``ldap`` source against a real OpenLDAP server holding AD-style computer accounts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.directory import LDAP_FILTER
from collectors.inventory import load_inventory
from tests.collectors.slapd import Computer, LdapServer, running_slapd

COMPUTERS = 600
PAGE_SIZE = 100  # below the number of matches and at the server's per-search limit: paging is required


def fleet() -> list[Computer]:
    computers = []
    for i in range(COMPUTERS):
        os_name = "Ubuntu 22.04" if i % 7 == 0 else ("Windows Server 2022 Standard" if i % 5 == 0 else "Windows 11 Pro")
        flags = 0x1002 if i % 10 == 3 else 0x1000  # ACCOUNTDISABLE (bit 2) on every tenth account
        dns_name = None if i % 50 == 49 else f"PC{i:04d}.corp.test"
        computers.append(Computer(f"PC{i:04d}", dns_name, os_name, flags))
    return computers


def expected_hosts() -> set[str]:
    return {
        c.dns_host_name
        for c in fleet()
        if c.dns_host_name and c.operating_system.startswith("Windows") and not c.user_account_control & 2
    }


@pytest.fixture(scope="module")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd"), fleet()) as server:
        yield server


def inventory_file(tmp_path: Path, server: LdapServer, *, auth: str, page_size: int = PAGE_SIZE) -> Path:
    credential = "    bind_credential: ldapreader\n" if auth != "anonymous" else ""
    text = (
        "defaults:\n  credential: corp\n"
        "hosts:\n  - extra.corp.test\n"
        "ldap:\n"
        f"  - url: {server.url}\n"
        f"    base: ou=Computers,{server.base}\n"
        f"    auth: {auth}\n{credential}"
        f"    page_size: {page_size}\n"
        "    timeout_s: 5\n"
        "    site: AD\n"
    )
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def reader_secrets(server: LdapServer, password: str | None = None) -> dict[str, str]:
    return {
        "ACTIVATION_CRED_LDAPREADER_USERNAME": server.bind_dn,
        "ACTIVATION_CRED_LDAPREADER_PASSWORD": password or server.password,
    }


def test_simple_bind_lists_enabled_windows_computers_across_pages(ldap_server, tmp_path):
    path = inventory_file(tmp_path, ldap_server, auth="simple")
    inventory = load_inventory(path, secrets=reader_secrets(ldap_server))
    from_ldap = {t.host for t in inventory.targets if t.site == "AD"}
    assert inventory.problems == ()
    assert len(expected_hosts()) > 2 * PAGE_SIZE
    assert from_ldap == expected_hosts()
    assert "PC0003.corp.test" not in from_ldap  # disabled account
    assert "PC0007.corp.test" not in from_ldap  # not Windows
    assert all(t.credential == "corp" for t in inventory.targets)


def test_anonymous_bind_needs_no_credential(ldap_server, tmp_path):
    inventory = load_inventory(inventory_file(tmp_path, ldap_server, auth="anonymous"), secrets={})
    assert {t.host for t in inventory.targets if t.site == "AD"} == expected_hosts()


def test_the_server_stops_an_unpaged_search_at_its_limit(ldap_server):
    # Why the test above proves paging: without it the server hands out at most 100 entries.
    import ldap3

    with ldap3.Connection(ldap3.Server(ldap_server.url, connect_timeout=5), receive_timeout=5) as connection:
        connection.search(f"ou=Computers,{ldap_server.base}", LDAP_FILTER, attributes=["dNSHostName"])
        assert connection.result["description"] == "sizeLimitExceeded"
        assert len(connection.entries) == PAGE_SIZE


def test_wrong_password_is_reported_without_the_password(ldap_server, tmp_path):
    path = inventory_file(tmp_path, ldap_server, auth="simple")
    inventory = load_inventory(path, secrets=reader_secrets(ldap_server, "not-the-password"))
    [problem] = inventory.problems
    assert "invalidCredentials" in str(problem) or "invalid credentials" in str(problem).lower()
    assert "not-the-password" not in str(problem)
    assert [t.host for t in inventory.targets] == ["extra.corp.test"]
