"""Shared fixtures: real databases (SQLite files and PostgreSQL schemas), the fleet simulator plugin and a
private MIT Kerberos realm."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from models.db import make_engine, upgrade
from tests.krb5kdc import MitKdc, require_kerberos_extra, running_kdc
from tests.krb5kdc_handshakes import Realm, make_realm

pytest_plugins = ["simulator.pytest_plugin"]

PG_URL = os.environ.get("ACTIVATION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_available() -> None:
    reason = _pg_reachable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must run in CI but is not reachable at {PG_URL}: {reason}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {reason}")


@pytest.fixture
def pg_url(pg_available: None) -> Iterator[str]:
    """A URL whose connections live in a fresh, private PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/activation-monitor.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both backends."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An up-to-date, empty database on each backend."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MitKdc]:
    """A private MIT Kerberos realm (``ACTIVATION.TEST``, hosts under ``.corp.example``) on 127.0.0.1.

    Started once per session, stopped at its end. While it runs, its ``env()`` (``KRB5_CONFIG``,
    ``KRB5RCACHEDIR``) is set in this process, since gssapi and krb5 read it in-process; the previous
    values come back afterwards. Skips when MIT Kerberos is missing; fails instead when CI=true.
    """
    with running_kdc(tmp_path_factory.mktemp("kdc")) as realm, realm.configured():
        yield realm


@pytest.fixture(scope="session")
def realm(kdc: MitKdc, tmp_path_factory: pytest.TempPathFactory) -> Realm:
    """The ``krbtest-*`` principals, keytabs and ccache tests/test_krb5kdc*.py check the realm with.

    Made once for the session and shared by those modules, since a principal can be added to the realm only
    once. A module with principals of its own defines its own ``realm`` (tests/collectors/test_kerberos.py).
    """
    return make_realm(kdc, tmp_path_factory.mktemp("krbtest"))


@pytest.fixture(scope="session")
def kerberos_extra() -> None:
    """Skips when gssapi and krb5 (requirements-kerberos.txt) cannot be imported; fails instead when CI=true."""
    require_kerberos_extra()
