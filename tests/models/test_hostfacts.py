"""One definition of a host's derived facts, used by the store, diagnosis, the CLI, the queries and the UI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from knowledge.codes import lookup
from models import db, hostfacts, store
from models.enums import ActivationType, HostState, LicenseStatus, ProductType
from models.records import HostObservation, ProductState
from models.tables import Host

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def product(pid: str, status: LicenseStatus, code: str | None = None, kind=ActivationType.KMS_CLIENT, **kw):
    return ProductState(pid, kind, status, error_code=code, **kw)


def test_the_failing_product_speaks_for_the_host():
    healthy = product("a", LicenseStatus.LICENSED)
    grace = product("b", LicenseStatus.OOB_GRACE)
    failing = product("c", LicenseStatus.NOTIFICATION, "0xC004F074")
    renewal = product("d", LicenseStatus.LICENSED, "0x800706BA", renewal_failing=True)
    assert hostfacts.main_product([healthy, grace, failing, renewal]) is failing
    assert hostfacts.main_product([healthy, renewal]) is renewal
    assert hostfacts.main_product([healthy, grace]) is grace
    assert hostfacts.main_product([]) is hostfacts.NO_KEY_PRODUCT
    mak = product("e", LicenseStatus.NOTIFICATION, "0xC004C008", kind=ActivationType.MAK)
    assert hostfacts.kms_client_product([mak, healthy]) is healthy
    assert hostfacts.kms_client_product([mak]) is None


@pytest.mark.parametrize(
    ("status", "renewal_failing", "state"),
    [
        ("Licensed", False, HostState.LICENSED),
        ("Licensed", True, HostState.RENEWAL_FAILING),
        ("Notification", False, HostState.NOTIFICATION),
        (None, False, None),
        ("Bogus", False, None),
    ],
)
def test_state_in_python(status, renewal_failing, state):
    assert hostfacts.host_state(status, renewal_failing) == state


def test_state_in_sql_follows_the_same_rule(tmp_path):
    engine = db.open_database(f"sqlite:///{tmp_path / 'facts.db'}")
    hosts = {
        "ok": product("p", LicenseStatus.LICENSED),
        "risk": product("p", LicenseStatus.LICENSED, "0x800706BA", renewal_failing=True),
        "grace": product("p", LicenseStatus.OOB_GRACE, "0xC004F074"),
    }
    with engine.begin() as conn:
        observations = [
            HostObservation(name, NOW, name.upper(), "corp.test", "W11", "10.0", ProductType.WORKSTATION, 0.0, (p,))
            for name, p in hosts.items()
        ]
        store.write_results(conn, None, observations)
        rows = dict(conn.execute(select(Host.name, hostfacts.STATE)).all())
        flags = {name: (status, risk) for name, status, risk in conn.execute(
            select(Host.name, Host.license_status, Host.renewal_failing))}  # fmt: skip
    engine.dispose()
    for name, state in rows.items():
        assert hostfacts.host_state(*flags[name]) == HostState(state)
    assert rows == {"ok": "Licensed", "risk": "RenewalFailing", "grace": "OOBGrace"}


def test_state_words_in_both_languages():
    assert hostfacts.state_words(HostState.RENEWAL_FAILING) == "Licensed \u2014 renewal failing"
    assert hostfacts.state_words("Licensed") == "Licensed"
    assert hostfacts.state_words("RenewalFailing", "zh-TW") == "已授權—續約失敗"
    assert hostfacts.state_words("Unlicensed", "zh_tw") == "未授權"
    assert hostfacts.state_words("something else") == "something else"


def test_one_function_gives_the_public_article_and_the_dashboard_page():
    fix = hostfacts.resolution("C004F074", "zh-TW")
    assert fix is not None and fix.code == "0xC004F074"
    assert fix.article_url == lookup("0xC004F074", "zh-TW").url and fix.article_url.startswith("https://")
    assert fix.kb_path == "error_codes?code=0xC004F074&lang=zh-TW"
    assert hostfacts.resolution("not a code") is None
    assert hostfacts.resolution(None) is None


@pytest.mark.parametrize(
    ("name", "domain", "expected"),
    [("kms01", "corp.test", "kms01.corp.test"), ("KMS01.", "Corp.Test.", "kms01.corp.test"),
     ("kms01.other.test", "corp.test", "kms01.other.test"), ("10.0.0.5", "corp.test", "10.0.0.5"),
     ("kms01", None, "kms01")],
)  # fmt: skip
def test_a_short_kms_name_is_qualified_as_its_client_resolves_it(name, domain, expected):
    assert hostfacts.machine_name(hostfacts.qualified(name, domain)) == expected
