"""The KMS hosts query judges each host's health from the evidence in the database, on both backends: the
seeded fleet's states, and the cases the seed leaves out (a KMS host that stops answering, one never read,
one not activated) written through the real store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine

from models import kms, store
from models.enums import ActivationType, FailureClass, LicenseStatus
from models.records import HostFailure, HostIdentity
from models.seed import KMS_HOSTS, SEED_EXPECTED, SeedHost, fleet, link_kms_clients, result_for, seed_fleet

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    with engine.begin() as conn:
        seed_fleet(conn, now=NOW, days=2)
    return engine


def kms_hosts(engine: Engine, lang: str = "en") -> dict[str, dict[str, object]]:
    """computer name (or inventory name) -> the row the KMS hosts page gets."""
    with engine.connect() as conn:
        frame = kms.kms_hosts(conn, lang)
    names = frame["computer_name"].where(frame["computer_name"].notna(), frame["host"])
    return {str(name): row for name, row in zip(names, frame.to_dict("records"), strict=True)}


def seed_host(computer_name: str) -> SeedHost:
    return next(h for h in KMS_HOSTS if h.computer_name == computer_name)


def test_the_seeded_kms_hosts_get_their_states_with_reasons(seeded: Engine) -> None:
    rows = kms_hosts(seeded)
    assert {name: row["state"] for name, row in rows.items()} == SEED_EXPECTED["kms_states"]
    kms01, kms02 = rows["KMS01"], rows["KMS02"]
    assert kms01["reasons"] == "not listening on 1688; 7 of 17 clients fail with 0xC004F074 (5), 0x800706BA (2)"
    assert kms02["reasons"] == "4 of 4 clients fail with 0xC004F038; count 12: servers only, client PCs need 25"
    assert rows["KMS03"]["reasons"] == "count 3: below 5, it activates nothing"
    assert rows["KMS04"]["reasons"] == ""
    assert rows["KMS05"]["reasons"] == "a KMS host for Office only, not for Windows"
    assert (kms01["listening"], kms01["activated"], kms01["dns_publishing"]) == (False, True, True)
    assert (kms01["failing_here"], kms01["clients"], kms01["threshold"]) == (7, 17, 25)
    assert (rows["KMS03"]["threshold"], rows["KMS05"]["threshold"]) == (5, 5)


def test_reasons_come_in_the_language_asked_for(seeded: Engine) -> None:
    rows = kms_hosts(seeded, "zh-TW")
    assert rows["KMS01"]["state"] == "not_listening"  # the state is a code; the page puts it in words
    assert rows["KMS01"]["reasons"] == "未在連接埠 1688 接聽；17 台用戶端中有 7 台失敗：0xC004F074 (5)、0x800706BA (2)"
    assert rows["KMS05"]["reasons"] == "僅為 Office 的 KMS 主機，不啟用 Windows"


def test_a_kms_host_that_stops_answering_is_unreachable_with_its_last_counters(seeded: Engine) -> None:
    with seeded.begin() as conn:
        store.write_results(conn, None, [HostFailure("10.1.0.13", LATER, FailureClass.TIMEOUT, "no answer")])
    kms04 = kms_hosts(seeded)["KMS04"]
    assert kms04["state"] == "unreachable"
    assert kms04["reasons"] == "its last poll failed: timed out"
    assert kms04["current_count"] == 41  # as of its last read


def test_a_kms_host_clients_use_that_was_never_read_is_listed_as_unreachable(seeded: Engine) -> None:
    client = replace(
        result_for(next(h for h in fleet() if h.error_code == "0xC004F074"), LATER),
        host="10.1.2.1",
        computer_name="WS9001",
    )
    client = replace(client, products=(replace(client.products[0], discovered_kms_machine="kms09.corp.example"),))
    with seeded.begin() as conn:
        store.upsert_inventory(conn, [HostIdentity("kms09.corp.example", 5985, "http", "Taipei", ())], now=LATER)
        store.write_results(
            conn, None, [client, HostFailure("kms09.corp.example", LATER, FailureClass.REFUSED, "refused")]
        )
        link_kms_clients(conn)
    kms09 = kms_hosts(seeded)["kms09.corp.example"]
    assert kms09["state"] == "unreachable"
    assert kms09["reasons"] == "its last poll failed: connection refused; 1 of 1 clients fail with 0xC004F074"
    assert pd.isna(kms09["current_count"])  # nothing read, nothing guessed
    assert kms09["activated"] is None and pd.isna(kms09["serves"])


def test_a_machine_that_answers_but_hosts_no_kms_is_not_listed_however_many_clients_use_it(seeded: Engine) -> None:
    mak_server = replace(result_for(seed_host("KMS04"), LATER), host="10.1.0.20", computer_name="SRV20", kms=None)
    mak_server = replace(mak_server, products=(replace(mak_server.products[0], activation_type=ActivationType.MAK),))
    client = replace(result_for(fleet()[10], LATER), host="10.1.2.2", computer_name="WS9002")
    client = replace(client, products=(replace(client.products[0], discovered_kms_machine="srv20.corp.example"),))
    with seeded.begin() as conn:
        store.write_results(conn, None, [mak_server, client])
        link_kms_clients(conn)
    assert "SRV20" not in kms_hosts(seeded)
    assert len(kms_hosts(seeded)) == SEED_EXPECTED["kms_hosts"]


def test_a_kms_host_that_lost_its_activation_is_not_activated(seeded: Engine) -> None:
    lapsed = replace(seed_host("KMS04"), license_status=LicenseStatus.NOTIFICATION, grace_minutes=None)
    with seeded.begin() as conn:
        store.write_results(conn, None, [result_for(lapsed, LATER)])
    kms04 = kms_hosts(seeded)["KMS04"]
    assert kms04["state"] == "not_activated"
    assert kms04["reasons"] == "not activated itself: Notification"
    assert kms_hosts(seeded, "zh-TW")["KMS04"]["reasons"] == "本身未啟用：通知模式"


def test_an_empty_database_has_no_kms_hosts(engine: Engine) -> None:
    with engine.connect() as conn:
        frame = kms.kms_hosts(conn)
    assert frame.empty
    assert {"state", "reasons", "activated", "serves", "threshold"} <= set(frame.columns)
