"""The unactivated-hosts CSV: its column contract, encoding and formula neutralisation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from models.export import EXPORT_COLUMNS, csv_bytes, neutralise
from models.filters import HostFilter
from models.seed import HOSTILE_SITE, SEED_EXPECTED, seed_fleet
from models.tables import Host

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HEADER = (
    "host,domain,site,os,product_type,activation_type,license_status,error_code,error_title,"
    "grace_days_remaining,kms_host,last_seen_utc,poll_error,resolution_url"
)


def rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def test_columns_are_the_contract() -> None:
    assert ",".join(EXPORT_COLUMNS) == HEADER


def test_export_lists_exactly_the_unactivated_hosts(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=2)
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter()))
        with_at_risk = rows(csv_bytes(conn, HostFilter(include_at_risk=True)))
    assert len(exported) == SEED_EXPECTED["failing"] - SEED_EXPECTED["at_risk"] + SEED_EXPECTED["unreachable"]
    # opted in, the Licensed KMS clients whose renewals fail come too, with their current code
    at_risk = [r for r in with_at_risk if r not in exported]
    assert len(at_risk) == SEED_EXPECTED["at_risk"]
    assert all(r["license_status"] == "Licensed" and r["error_code"] == "0x800706BA" for r in at_risk)
    assert all(r["license_status"] != "Licensed" or r["poll_error"] for r in exported)
    unreachable = [r for r in exported if r["poll_error"]]
    assert sorted(r["poll_error"].split(":")[0] for r in unreachable) == ["auth", "refused", "timeout"]
    assert all(r["license_status"] == "Licensed" for r in unreachable), "last known status is kept"


def test_export_follows_the_filter(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter(error_codes=("0xC004F038",)), now=NOW))
    assert {r["error_code"] for r in exported} == {"0xC004F038"}
    first = exported[0]
    assert first["activation_type"] == "KMS client" and first["kms_host"] == "kms02.corp.example:1688"
    assert first["resolution_url"].endswith(
        "#0xc004f038-the-count-reported-by-your-key-management-service-kms-is-insufficient"
    )
    assert first["grace_days_remaining"] == "13.9" and first["last_seen_utc"] == "2026-11-24T09:00:00Z"


def test_hostile_cells_are_neutralised(engine: Engine) -> None:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=1)
        conn.execute(update(Host).where(Host.site == HOSTILE_SITE).values(license_status="Unlicensed"))
    with engine.connect() as conn:
        exported = rows(csv_bytes(conn, HostFilter(search="10.1.9.9")))
    assert exported[0]["site"] == "'" + HOSTILE_SITE


@given(st.text())
def test_no_cell_can_start_a_formula(value: str) -> None:
    cell = neutralise(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n", "\0"))
    assert cell in (value.replace("\0", ""), "'" + value.replace("\0", ""))


def test_numbers_stay_numbers() -> None:
    assert neutralise(-1.5) == "-1.5"
    assert neutralise(42) == "42"
    assert neutralise(None) == ""
