"""A spool belongs to its database: results spooled while one database was down are never replayed
into another database that a later run names, and the command says where they wait."""

from __future__ import annotations

import csv

from sqlalchemy import select

from collectors.spool import Spool, database_identity
from models import db
from models.tables import Host
from tests.collectors.test_cli import collector, fleet_env

DOWN = "postgresql+psycopg://nobody:not-this-password@127.0.0.1:1/absent"


def inventory_of(fleet, rows: slice, path):
    with fleet.inventory_path.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        chosen = [row for row in reader if row["host"] in {t["host"] for t in fleet.truth if not t["poll_error"]}]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(chosen[0]))
        writer.writeheader()
        writer.writerows(chosen[rows])
    return path, [row["host"] for row in chosen[rows]]


def test_results_spooled_for_one_database_never_reach_another(http_fleet, tmp_path):
    env = fleet_env(http_fleet, tmp_path)
    first, _ = inventory_of(http_fleet, slice(0, 4), tmp_path / "first.csv")
    down = collector(["poll", "--inventory", str(first), "--db", DOWN], env, tmp_path)
    # every result is kept in the spool, but the run could not be recorded: it says so, and exits 1
    assert down.returncode == 1 and "database unavailable" in down.stdout + down.stderr, down.stderr
    spool_base = tmp_path / "data" / "spool"
    assert Spool(spool_base / database_identity(DOWN)).count() >= 1
    assert "not-this-password" not in "".join(p.name for p in spool_base.rglob("*"))

    other = f"sqlite:///{tmp_path / 'other.db'}"
    second, hosts = inventory_of(http_fleet, slice(4, 5), tmp_path / "second.csv")
    run = collector(["poll", "--inventory", str(second), "--db", other], env, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "belong to another database: not replayed here" in run.stderr
    assert str(spool_base / database_identity(DOWN)) in run.stderr
    engine = db.make_engine(other)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(Host.name)).scalars()) == sorted(hosts)
    engine.dispose()
    assert Spool(spool_base / database_identity(DOWN)).count() >= 1  # still waiting for its own database


def test_the_identity_ignores_the_password_and_tells_databases_apart():
    a = database_identity("postgresql+psycopg://am:secret-1@db.corp.example/activation")
    assert a == database_identity("postgresql+psycopg://am:secret-2@db.corp.example/activation")
    assert a != database_identity("postgresql+psycopg://am:secret-1@db.corp.example/other")
    assert a != database_identity("sqlite:///data/activation.db")
    assert "secret" not in a
