"""``python -m collectors demo`` as an administrator runs it: one demo fleet per database, with progress."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from models import db, store
from models.records import HostIdentity
from models.tables import Host
from tests.collectors.test_cli import collector


def hosts_in(url: str) -> list[tuple[str, str | None, str | None]]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(Host.name, Host.computer_name, Host.tags).order_by(Host.name)).all())
    finally:
        engine.dispose()


def test_loading_the_demo_again_replaces_the_demo_fleet_and_leaves_real_hosts_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = db.open_database(url)
    with engine.begin() as conn:  # a real host the administrator already polls
        store.upsert_inventory(
            conn, [HostIdentity("pc01.corp.example", 5985, "http", "Taipei", ())], now=datetime.now(UTC)
        )
    engine.dispose()

    first = collector(["demo", "--hosts", "8", "--db", url], {}, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "polled 8/8" in first.stderr  # progress while it runs (log lines when not on a terminal)
    after_first = hosts_in(url)
    assert len(after_first) == 9

    second = collector(["demo", "--hosts", "5", "--db", url], {}, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "The earlier demo fleet (8 hosts) was replaced" in second.stdout
    after_second = hosts_in(url)
    demo = [row for row in after_second if "demo" in (row[2] or "").split(";")]
    assert len(demo) == 5 and {row[0] for row in demo} <= {row[0] for row in after_first}
    assert [row[0] for row in after_second if row not in demo] == ["pc01.corp.example"]
    names = [row[1] for row in demo if row[1]]
    assert len(names) == len(set(names))  # never two of the same simulated machine

    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Host)).scalar_one() == 6
    engine.dispose()
