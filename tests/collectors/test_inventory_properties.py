"""The inventory against hostile input: which hosts are names or addresses, and random CSV and YAML files.

Whatever a cell holds (control characters, invisible characters, odd digits, huge text, broken quotes),
loading never raises: a bad row is one ``InventoryProblem`` with its line, every target's host is an IP
address or a DNS name, and the targets plus the problems account for every row.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.inventory import CSV_COLUMNS, Target, load_inventory

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the host rule, by example -------------------------------------------------------------------

BAD_HOSTS = [
    "ws\x0001",  # NUL
    "ws\x07bell",
    "ws\u200b01",  # zero-width space
    "ws\u202e10",  # right-to-left override
    "ws 01",
    "ws01!",
    "-ws01",
    "ws01-.corp.test",
    "ws01..corp.test",
    ".",
    "a" * 64 + ".corp.test",
    ".".join(["abcdefghi"] * 26),  # 259 characters
    "wś01.corp.test",
    "10.1.1",  # neither an address nor a name
    "999.1.1.1",
    "[ws01]",
    "ws01]",
    "ws01/share",
    "ws01:5985",
    "fe80::1%eth0 x",
]


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_host_that_is_neither_a_name_nor_an_address_rejects_its_row(tmp_path, host):
    path = write_rows(tmp_path / "inv.csv", [["host", "site"], ["ws-ok1", "HQ"], [host, "HQ"], ["ws-ok2", "HQ"]])
    inventory = load_inventory(path)
    assert [t.host for t in inventory.targets] == ["ws-ok1", "ws-ok2"]
    [problem] = inventory.problems
    assert (problem.source, problem.line) == (str(path), 3)
    assert problem.message.startswith("host ")
    assert str(problem).isprintable(), "control characters are shown escaped, never as they are"


@pytest.mark.parametrize(
    ("given", "host"),
    [
        ("ws01.corp.test.", "ws01.corp.test"),
        ("WS_01.corp.test", "WS_01.corp.test"),
        ("xn--bcher-kva.corp.test", "xn--bcher-kva.corp.test"),
        ("10.0.0.1", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::2]", "2001:db8::2"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("a" * 63 + ".corp.test", "a" * 63 + ".corp.test"),
        (".".join(["abcdefghi"] * 25) + ".abc", ".".join(["abcdefghi"] * 25) + ".abc"),  # 253 characters
    ],
)
def test_names_and_addresses_load(tmp_path, given, host):
    inventory = load_inventory(write_rows(tmp_path / "inv.csv", [["host"], [given]]))
    assert inventory.problems == ()
    assert [t.host for t in inventory.targets] == [host]


# --- an independent statement of the rules ---------------------------------------------------------

LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
NAME = re.compile(rf"{LABEL}(?:\.{LABEL})*", re.ASCII)
CREDENTIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*", re.ASCII)
HIDDEN = {"Cc", "Cs", "Zl", "Zp"}  # control characters and line separators: never in a site or tag


def is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and NAME.fullmatch(text) is not None and not text.rsplit(".", 1)[-1].isdigit()
    return True


def visible(text: str) -> bool:
    return not any(unicodedata.category(c) in HIDDEN for c in text)


def assert_sound(target: Target) -> None:
    assert is_host(target.host), target.host
    assert 0 < target.port < 65536 and CREDENTIAL.fullmatch(target.credential)
    assert all(visible(text) for text in (target.site or "", *target.tags, target.spn or ""))


def key(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


# --- random CSV files ------------------------------------------------------------------------------

HOSTILE = st.sampled_from(
    ["²", "٨٠", "5985", "0", "65536", "\x00", "\u200b=", "\u3000", " ", '"', '"x', "a,b", ";", "bad name!", "http"]
)
HUGE = st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(4000, 140_000))
ANY_CELL = st.one_of(st.text(max_size=40), st.text(st.characters(categories=["Cc", "Cf", "Zs"])), HOSTILE, HUGE)
ONE_LINE_CELL = ANY_CELL.map(lambda text: text.replace("\r", "").replace("\n", ""))
HEADER = list(CSV_COLUMNS)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@PROPERTY
@given(rows=st.lists(st.lists(ANY_CELL, min_size=1, max_size=10), max_size=12))
def test_random_rows_never_break_the_inventory(scratch, rows):
    inventory = load_inventory(write_rows(scratch / "any.csv", [HEADER, *rows]))
    for target in inventory.targets:
        assert_sound(target)
    assert all(p.line >= 2 and str(p).isprintable() and len(p.message) < 400 for p in inventory.problems)


@PROPERTY
@given(rows=st.lists(st.lists(ONE_LINE_CELL, min_size=1, max_size=10), max_size=12))
def test_every_row_is_a_target_or_one_problem(scratch, rows):
    rows = [row for row in rows if any(cell.strip() for cell in row)]  # blank rows are skipped, by design
    inventory = load_inventory(write_rows(scratch / "rows.csv", [HEADER, *rows]))
    assert len(inventory.targets) + len(inventory.problems) == len(rows)
    lines = sorted([p.line for p in inventory.problems])
    assert lines == sorted(set(lines)), "a bad row is reported once"
    assert set(lines) <= set(range(2, len(rows) + 2))


LABELS = st.from_regex(LABEL, fullmatch=True).filter(lambda label: not label.isdigit())
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join).filter(lambda name: len(name) <= 253)
SPELLINGS = st.sampled_from(["ws01", "WS01.", "ws01.corp.test", "10.0.0.1", "2001:db8::1", "[2001:DB8:0::1]"])
HOSTS = st.one_of(
    SPELLINGS,  # one host spelled several ways: duplicates
    NAMES,
    NAMES.map(lambda name: name + "."),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
WORDS = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"], exclude_characters=";"), max_size=12)


@st.composite
def valid_rows(draw: st.DrawFn) -> list[str]:
    scheme = draw(st.sampled_from(["", "http", "https", "HTTPS"]))
    transports = ["", "negotiate", "kerberos", "ntlm", *(["basic"] if scheme.lower() == "https" else [])]
    return [
        draw(HOSTS),
        draw(st.one_of(st.just(""), st.integers(1, 65535).map(str))),
        scheme,
        draw(st.sampled_from(transports)),
        draw(st.one_of(st.just(""), st.from_regex(CREDENTIAL, fullmatch=True).filter(lambda c: len(c) < 64))),
        draw(WORDS),
        ";".join(draw(st.lists(WORDS, max_size=3))),
        draw(st.one_of(st.just(""), NAMES.map(lambda name: f"HTTP/{name}"))),
    ]


@PROPERTY
@given(rows=st.lists(valid_rows(), min_size=1, max_size=12))
def test_valid_rows_always_load_and_duplicates_are_reported_as_duplicates(scratch, rows):
    inventory = load_inventory(write_rows(scratch / "valid.csv", [HEADER, *rows]))
    first_line: dict[str, int] = {}
    duplicates: list[tuple[int, int]] = []
    for line, row in enumerate(rows, 2):
        host = key(row[0].strip("[]").removesuffix("."))
        if host in first_line:
            duplicates.append((line, first_line[host]))
        first_line.setdefault(host, line)
    assert [key(t.host) for t in inventory.targets] == list(first_line)
    for target in inventory.targets:
        assert_sound(target)
    assert [p.line for p in inventory.problems] == [line for line, _ in duplicates]
    for problem, (_, first) in zip(inventory.problems, duplicates, strict=True):
        assert problem.message.startswith("duplicate host ") and problem.message.endswith(f"(first on line {first})")


@PROPERTY
@given(
    hosts=st.lists(st.one_of(st.text(max_size=30), HOSTILE, st.integers(), st.lists(st.text(max_size=3))), max_size=8)
)
def test_random_yaml_hosts_never_break_the_inventory(scratch, hosts):
    path = scratch / "any.yaml"
    path.write_text(yaml.safe_dump({"hosts": hosts}, allow_unicode=False), encoding="utf-8")
    inventory = load_inventory(path)
    for target in inventory.targets:
        assert_sound(target)
    assert len(inventory.targets) + len(inventory.problems) == len(hosts)
