from __future__ import annotations

import csv
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


# --- one bad cell rejects its row, never the inventory ------------------------------------------


def problems_of(inventory) -> list[str]:
    return [str(p) for p in inventory.problems]


def assert_printable(messages: list[str]) -> None:
    # a message goes to a terminal and a log: no control or invisible character, only their repr
    assert all(c.isprintable() for message in messages for c in message), messages


def test_a_port_in_superscript_digits_rejects_only_its_row(tmp_path):
    path = write(tmp_path, "inv.csv", "host,port\nws01,\nws02,²\nws03,٨٠\nws04,5986\n")
    inventory = load_inventory(path)
    assert [(t.host, t.port) for t in inventory.targets] == [("ws01", 5985), ("ws04", 5986)]
    messages = problems_of(inventory)
    assert [m.split(": ", 1)[0] for m in messages] == [f"{path}:3", f"{path}:4"]
    assert "port '²'" in messages[0] and "1-65535" in messages[0]


def test_a_credential_name_that_cannot_be_configured_rejects_its_row(tmp_path):
    text = "host,credential\nws01,corp\nws02,bad name!\nws03,\nws04,ok_name-2\n"
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [(t.host, t.credential) for t in inventory.targets] == [
        ("ws01", "corp"),
        ("ws03", "default"),
        ("ws04", "ok_name-2"),
    ]
    [message] = problems_of(inventory)
    assert "inv.csv:3: credential name 'bad name!'" in message and "letters, digits" in message


def test_an_oversized_cell_rejects_its_row_with_a_short_message(tmp_path):
    huge = "x" * 200_000
    text = f"host,site\nws01,HQ\nws02,{huge}\n{huge},HQ\nws03,HQ\n"
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [t.host for t in inventory.targets] == ["ws01", "ws03"]
    messages = problems_of(inventory)
    assert [m.split(": ", 1)[0].rsplit(":", 1)[1] for m in messages] == ["3", "4"]
    assert all(len(m) < 400 and "characters" in m for m in messages)


def test_a_cell_just_over_the_field_limit_is_named(tmp_path):
    inventory = load_inventory(write(tmp_path, "inv.csv", "host,site\nws01," + "s" * 4097 + "\nws02,HQ\n"))
    assert [t.host for t in inventory.targets] == ["ws02"]
    [message] = problems_of(inventory)
    assert "inv.csv:2: site" in message and "4097 characters" in message and "4096" in message


def test_an_inventory_larger_than_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "inv.csv"
    with path.open("wb") as handle:
        handle.write(b"host\nws01\n")
        handle.truncate(64 * 1024 * 1024 + 1)  # sparse: costs no disk
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "64 MiB" in message and "\n" not in message


def test_a_broken_quote_rejects_only_its_line(tmp_path):
    text = 'host,site\nws01,"Taipei\nws02,Hsinchu\nws03,"Tai"pei\nws04,HQ\n'
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [t.host for t in inventory.targets] == ["ws02", "ws04"]
    assert [p.line for p in inventory.problems] == [2, 4]
    assert all("not a CSV row" in p.message for p in inventory.problems)


def test_a_file_that_is_not_csv_is_one_inventory_error(tmp_path):
    with pytest.raises(InventoryError, match=r"inv\.csv:1: ") as caught:
        load_inventory(write(tmp_path, "inv.csv", '"host\n' + "x" * 10 + "\n"))
    assert "\n" not in str(caught.value)
    with pytest.raises(InventoryError, match="not UTF-8"):
        path = tmp_path / "binary.csv"
        path.write_bytes(b"PK\x03\x04\xff\xfe\x00\x01")
        load_inventory(path)
    with pytest.raises(InventoryError, match="more than once"):
        load_inventory(write(tmp_path, "dup.csv", "host,site,site\nws01,a,b\n"))


def test_the_same_host_spelled_twice_is_a_duplicate(tmp_path):
    text = "host\nws01.corp.test\nWS01.CORP.TEST.\n2001:db8::1\n2001:DB8:0::1\n"
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [t.host for t in inventory.targets] == ["ws01.corp.test", "2001:db8::1"]
    assert [p.line for p in inventory.problems] == [3, 5]
    assert all("duplicate host" in p.message for p in inventory.problems)


def test_control_characters_in_site_and_tags_reject_the_row(tmp_path):
    text = "host,site,tags\nws01,Tai\x00pei,\nws02,HQ,a;b\x1bc\nws03,台北,財務;3F\nws04,\u202eetis,\n"
    inventory = load_inventory(write(tmp_path, "inv.csv", text))
    assert [(t.host, t.site, t.tags) for t in inventory.targets] == [
        ("ws03", "台北", ("財務", "3F")),
        ("ws04", "\u202eetis", ()),  # a format character (here a bidi override) is text; the dashboard shows it
    ]
    assert [(p.line, p.message.split(" ")[0]) for p in inventory.problems] == [(2, "site"), (3, "tags")]
    assert_printable(problems_of(inventory))


@pytest.mark.parametrize(
    ("spn", "ok"),
    [
        ("HTTP/kms01.corp.example.com", True),
        ("WSMAN/kms01.corp.example.com:5985", True),
        ("HTTP/10.20.30.7", True),
        ("HTTP/kms01\x00.corp", False),
        ("HTTP/kms 01", False),
        ("HTTP/", False),
        ("/kms01", False),
        ("HT TP/kms01", False),
        ("HTTP/kms01:99999", False),
        ("HTTP/kms01@CORP.EXAMPLE", False),
        ("HTTP/kms01/extra", False),
    ],
)
def test_the_spn_column_follows_the_host_rules(tmp_path, spn, ok):
    path = tmp_path / "inv.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["host", "spn"], ["ws01", spn]])
    inventory = load_inventory(path)
    assert [t.spn for t in inventory.targets] == ([spn] if ok else [])
    assert len(inventory.problems) == (0 if ok else 1)
    assert all(p.message.startswith("spn ") for p in inventory.problems)
    assert_printable(problems_of(inventory))


def test_yaml_entries_follow_the_same_rules(tmp_path):
    text = (
        "hosts:\n"
        '  - "ws\\x0001"\n'  # line 2: NUL
        "  - host: ws02\n"  # line 3
        "    port: ²\n"
        "  - host: ws03\n"  # line 5
        "    credential: bad name!\n"
        "  - host: ws04\n"  # line 7
        "    tags: [[nested]]\n"
        "  - host: [ws05]\n"  # line 9
        "  - ws06.corp.test.\n"  # line 10: good
        "ranges:\n"
        "  - cidr: 10.9.0.0/30\n"  # line 12: one problem for the range, not one per address
        "    port: ²\n"
        '  - cidr: "10.9.1.0/30\\x00"\n'  # line 14
        "  - cidr: 2001:db8::/64\n"  # line 15: too large, even forced
        "    force: true\n"
        "  - cidr: 10.9.2.0/31\n"  # line 17
        "    force: please\n"
    )
    inventory = load_inventory(write(tmp_path, "inv.yaml", text))
    assert [t.host for t in inventory.targets] == ["ws06.corp.test"]
    by_line = {p.line: p.message for p in inventory.problems}
    assert sorted(by_line) == [2, 3, 5, 7, 9, 12, 14, 15, 17]
    assert len(inventory.problems) == 9
    assert by_line[2].startswith("host ") and by_line[3].startswith("port '²'")
    assert by_line[5].startswith("credential name 'bad name!'") and by_line[7].startswith("tags ")
    assert by_line[9].startswith("host ") and by_line[12].startswith("port '²'")
    assert "CIDR" in by_line[14] and "addresses" in by_line[15] and "force" in by_line[17]
    assert_printable(problems_of(inventory))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hosts: ws01.corp.test\n", "hosts must be a list"),
        ("hosts:\n  ws01: {}\n", "hosts must be a list"),
        ("ranges: 10.0.0.0/30\n", "ranges must be a list"),
        ("ldap: {url: ldap://dc01}\n", "ldap must be a list"),
        ("defaults: [corp]\nhosts: [ws01]\n", "defaults must be a mapping"),
        ("hosts: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_a_yaml_inventory_of_the_wrong_shape_is_one_inventory_error(tmp_path, text, reason):
    with pytest.raises(InventoryError, match=reason) as caught:
        load_inventory(write(tmp_path, "inv.yaml", text))
    assert "\n" not in str(caught.value)


def test_yaml_aliases_cannot_blow_up_a_field(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "defaults: {}\nhosts:\n  - host: ws01\n    tags: *a8\n"
    path = write(tmp_path, "inv.yaml", text.replace("defaults: {}\n", "defaults:\n  " + "\n  ".join(levels) + "\n"))
    inventory = load_inventory(path)
    assert inventory.targets == ()
    [problem] = inventory.problems
    assert problem.line == 12 and len(problem.message) < 400


def test_an_ldap_source_with_a_bad_setting_is_skipped_alone(tmp_path):
    text = (
        "hosts:\n  - ws01\n"
        "ldap:\n"
        "  - url: ldap://dc01.corp.test\n"  # line 4
        "    base: dc=corp,dc=test\n"
        "    bind_credential: bad name!\n"
        "  - url: ldap://dc01.corp.test\n"  # line 7
        "    base: dc=corp,dc=test\n"
        "    auth: anonymous\n"
        "    page_size: ²\n"
        "  - url: ldap://dc01.corp.test\n"  # line 11
        "    base: dc=corp,dc=test\n"
        "    auth: anonymous\n"
        "    timeout_s: .nan\n"
        "  - url: ldap://dc01.corp.test\n"  # line 15
        "    base: dc=corp,dc=test\n"
        "    auth: anonymous\n"
        "    port: '²'\n"
    )

    def search(source, secrets):
        raise AssertionError("a misconfigured source is never searched")

    inventory = load_inventory(write(tmp_path, "inv.yaml", text), ldap_search=search)
    assert [t.host for t in inventory.targets] == ["ws01"]
    by_line = {p.line: p.message for p in inventory.problems}
    assert sorted(by_line) == [4, 7, 11, 15]
    assert "bad name!" in by_line[4] and "page_size" in by_line[7] and "timeout_s" in by_line[11]
    assert by_line[15].startswith("port '²'")


def test_names_from_a_directory_that_are_not_host_names_are_skipped_with_a_warning(tmp_path, caplog):
    text = "ldap:\n  - url: ldap://dc01.corp.test\n    base: dc=corp,dc=test\n    auth: anonymous\n"

    def search(source, secrets):
        return ["pc1.corp.test", "pc\x002.corp.test", "bad name.corp.test", "-pc3", "PC4.corp.test."]

    with caplog.at_level("WARNING", logger="collectors"):
        inventory = load_inventory(write(tmp_path, "inv.yaml", text), ldap_search=search)
    assert [t.host for t in inventory.targets] == ["pc1.corp.test", "PC4.corp.test"]
    assert inventory.problems == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3 and all("inv.yaml:2" in w and "skipped" in w for w in warnings)
    assert "'pc\\x002.corp.test'" in warnings[0]
    assert_printable(warnings)


def test_a_real_directory_answer_that_is_not_a_host_name_is_skipped_with_a_warning(tmp_path, caplog):
    from tests.collectors.slapd import Computer, running_slapd

    names = ["pc1.corp.test", "bad name.corp.test", "-pc2.corp.test", "pc3_lab.corp.test", "x" * 300]
    computers = [Computer(f"PC{i}", name, "Windows 11 Pro", 0x1000) for i, name in enumerate(names)]
    with running_slapd(tmp_path / "slapd", computers) as server, caplog.at_level("WARNING", logger="collectors"):
        text = f"ldap:\n  - url: {server.url}\n    base: ou=Computers,{server.base}\n    auth: anonymous\n"
        inventory = load_inventory(write(tmp_path, "inv.yaml", text), secrets={})
    assert sorted(t.host for t in inventory.targets) == ["pc1.corp.test", "pc3_lab.corp.test"]
    assert inventory.problems == ()
    warnings = [r.getMessage() for r in caplog.records if "skipped a computer" in r.getMessage()]
    assert len(warnings) == 3 and all("inv.yaml:2" in w and len(w) < 400 for w in warnings)
