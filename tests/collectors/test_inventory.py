from __future__ import annotations

from pathlib import Path

import pytest

from collectors.directory import LdapSource
from collectors.errors import InventoryError
from collectors.inventory import (
    Target,
    load_inventory,
    parse_shard,
    select_shard,
    shard_index,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_defaults_apply_when_only_host_is_given(tmp_path):
    path = write(tmp_path, "inv.csv", "host,port,scheme,transport,credential,site,tags\nws01.corp.test,,,,,,\n")
    [target] = load_inventory(path).targets
    assert target == Target("ws01.corp.test", 5985, "http", "negotiate", "default", None, ())


def test_csv_https_default_port_and_tags(tmp_path):
    path = write(tmp_path, "inv.csv", "host,scheme,credential,site,tags\nsrv1,https,corp,Taipei,dc;tier0\n")
    [target] = load_inventory(path).targets
    assert (target.port, target.credential, target.site, target.tags) == (5986, "corp", "Taipei", ("dc", "tier0"))
    assert target.endpoint == "https://srv1:5986/wsman"


def test_bad_rows_are_reported_with_line_and_skipped(tmp_path):
    text = (
        "host,port,scheme,transport,credential,site,tags\n"
        "good1,,,,,,\n"
        "bad-transport,,,credssp,,,\n"
        "bad-port,70000,,,,,\n"
        "GOOD1,,,,,,\n"
        "good2,5986,https,basic,,,\n"
    )
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [t.host for t in inventory.targets] == ["good1", "good2"]
    messages = [str(p) for p in inventory.problems]
    assert messages[0].endswith("inv.csv:3: unknown transport 'credssp' (use negotiate, kerberos, ntlm, basic)")
    assert "inv.csv:4: port '70000' is out of range" in messages[1]
    assert "inv.csv:5: duplicate host 'GOOD1' (first on line 2)" in messages[2]


def test_wrong_header_refuses_the_file(tmp_path):
    with pytest.raises(InventoryError, match="header must be"):
        load_inventory(write(tmp_path, "inv.csv", "hostname,port\nx,1\n"))


def test_missing_file_is_an_inventory_error(tmp_path):
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "nope.csv")


YAML_TEXT = """\
defaults:
  credential: corp
  site: HQ
hosts:
  - ws01.corp.test
  - host: srv01.corp.test
    scheme: https
    tags: [db]
ranges:
  - cidr: 10.1.0.0/30
    site: lab
  - 10.2.0.0/8
ldap:
  - url: ldap://127.0.0.1:1
    base: dc=corp,dc=test
    bind_credential: ldapreader
    auth: simple
    site: AD
"""


def test_yaml_sources_hosts_ranges_and_ldap(tmp_path):
    seen: list[LdapSource] = []

    def search(source, secrets):
        seen.append(source)
        return ["pc1.corp.test", "ws01.corp.test"]

    inventory = load_inventory(write(tmp_path, "inv.yaml", YAML_TEXT), ldap_search=search)
    hosts = {t.host: t for t in inventory.targets}
    assert list(hosts) == ["ws01.corp.test", "srv01.corp.test", "10.1.0.1", "10.1.0.2", "pc1.corp.test"]
    assert hosts["srv01.corp.test"].port == 5986 and hosts["srv01.corp.test"].tags == ("db",)
    assert hosts["10.1.0.1"].site == "lab" and hosts["10.1.0.1"].credential == "corp"
    assert hosts["pc1.corp.test"].site == "AD"
    assert seen[0].auth == "simple" and seen[0].credential == "ldapreader"
    problems = [str(p) for p in inventory.problems]
    assert any(":12: range 10.2.0.0/8" in p and "needs force" in p for p in problems)
    assert any("duplicate host 'ws01.corp.test'" in p for p in problems)


def test_yaml_large_range_allowed_with_force(tmp_path):
    path = write(tmp_path, "inv.yaml", "ranges:\n  - cidr: 10.0.0.0/15\n")
    assert len(load_inventory(path, force=True).targets) == 2**17 - 2


def test_yaml_ldap_failure_skips_only_that_source(tmp_path):
    def search(source, secrets):
        raise ConnectionError("cannot reach 127.0.0.1:1")

    inventory = load_inventory(write(tmp_path, "inv.yaml", YAML_TEXT), ldap_search=search)
    assert "ws01.corp.test" in {t.host for t in inventory.targets}
    assert any("LDAP search" in str(p) and "cannot reach" in str(p) for p in inventory.problems)


def test_shards_partition_the_inventory_exactly_once():
    targets = [Target(f"host{i}.corp.test", 5985) for i in range(500)]
    parts = [select_shard(targets, (k, 3)) for k in (1, 2, 3)]
    names = [t.host for part in parts for t in part]
    assert sorted(names) == sorted(t.host for t in targets)
    assert all(len(p) > 100 for p in parts)
    assert shard_index("HOST7.corp.test", 3) == shard_index("host7.corp.test", 3)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard_text(text):
    with pytest.raises(ValueError, match="shard must be K/N"):
        parse_shard(text)


BASIC_HTTP_CSV = """\
host,port,scheme,transport,credential,site,tags
ws01,,https,basic,,,
ws02,5985,http,basic,,,lab
ws03,5985,http,basic,,,lab;Allow-Basic-Http
ws04,,http,ntlm,,,
"""


def test_basic_over_plain_http_is_refused_with_file_and_line(tmp_path):
    inventory = load_inventory(write(tmp_path, "inv.csv", BASIC_HTTP_CSV))
    assert [t.host for t in inventory.targets] == ["ws01", "ws03", "ws04"]
    [problem] = [str(p) for p in inventory.problems]
    assert problem.startswith(f"{tmp_path / 'inv.csv'}:3: transport basic over plain http")
    assert "password in clear" in problem and "allow-basic-http" in problem


def test_opted_in_basic_over_http_is_warned_once_per_host(tmp_path, caplog):
    path = write(tmp_path, "inv.csv", BASIC_HTTP_CSV.replace("ws03", "optin-ws03"))
    with caplog.at_level("WARNING", logger="collectors"):
        load_inventory(path)
        load_inventory(path)
    warnings = [r.getMessage() for r in caplog.records if "in clear" in r.getMessage()]
    assert warnings == ["optin-ws03: Basic authentication over plain HTTP sends the password in clear (opted in)"]


def test_yaml_top_level_opt_in_allows_basic_over_http(tmp_path):
    text = "defaults:\n  transport: basic\n  scheme: http\nhosts:\n  - yaml-ws01\n  - host: yaml-ws02\n"
    refused = load_inventory(write(tmp_path, "refused.yaml", text))
    assert refused.targets == ()
    assert [p.line for p in refused.problems] == [5, 6]
    assert all("password in clear" in p.message for p in refused.problems)
    allowed = load_inventory(write(tmp_path, "allowed.yaml", "allow_basic_over_http: true\n" + text))
    assert [(t.host, t.transport, t.scheme) for t in allowed.targets] == [
        ("yaml-ws01", "basic", "http"),
        ("yaml-ws02", "basic", "http"),
    ]
    with pytest.raises(InventoryError, match=r"bad\.yaml:1: allow_basic_over_http must be true or false"):
        load_inventory(write(tmp_path, "bad.yaml", "allow_basic_over_http: yes please\n" + text))


def test_the_example_inventories_load_without_problems():
    root = Path(__file__).resolve().parents[2] / "config"
    csv_inventory = load_inventory(root / "inventory.example.csv")
    assert csv_inventory.problems == () and len(csv_inventory.targets) == 5
    assert {t.transport for t in csv_inventory.targets} == {"negotiate", "kerberos", "basic"}
    assert next(t for t in csv_inventory.targets if t.host == "10.20.30.7").spn == "HTTP/kms01.corp.example.com"
    yaml_inventory = load_inventory(root / "inventory.example.yaml", ldap_search=lambda source, secrets: iter(()))
    assert yaml_inventory.problems == ()
