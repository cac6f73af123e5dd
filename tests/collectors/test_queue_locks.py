"""Host locks on real PostgreSQL: a host another worker polls waits its turn, one kept busy too long is handed
back, a dead worker's locks are gone with its session, a closed lock session keeps none, and the server probes
a lock session's client so a vanished machine's locks end within about a minute."""

from __future__ import annotations

import threading

from sqlalchemy import func, select, text

from collectors.inventory import Target
from collectors.queue.locks import KEEPALIVES, HostLocks, lock_engine, lock_key, locked_targets
from models import db


def hosts(*names: str) -> list[Target]:
    return [Target(host=name, port=5985) for name in names]


def test_a_host_another_worker_polls_waits_until_it_is_free(pg_url):
    engine = lock_engine(pg_url)
    other, ours = HostLocks(engine), HostLocks(engine)
    try:
        assert other.acquire("WS2.corp.example") is True  # the same host, spelled differently
        feed = locked_targets(hosts("ws1", "ws2.corp.example", "ws3"), ours, busy_wait_s=30, stopped=lambda: False,
                              gave_up=lambda t: None, sleep=lambda s: other.release("ws2.corp.example"))  # fmt: skip
        assert [t.host for t in feed] == ["ws1", "ws3", "ws2.corp.example"]
        assert other.acquire("ws1") is False  # held by us until released
        ours.release("ws1")
        assert other.acquire("ws1") is True
    finally:
        other.close()
        ours.close()
        engine.dispose()


def test_a_host_kept_busy_past_the_wait_is_given_up(pg_url):
    engine = lock_engine(pg_url)
    other, ours = HostLocks(engine), HostLocks(engine)
    clock = iter(range(0, 1000, 10))
    given_up: list[str] = []
    try:
        other.acquire("ws2")
        feed = locked_targets(hosts("ws1", "ws2"), ours, busy_wait_s=25, stopped=lambda: False,
                              gave_up=lambda t: given_up.append(t.host), sleep=lambda s: None,
                              monotonic=lambda: next(clock))  # fmt: skip
        assert [t.host for t in feed] == ["ws1"]
        assert given_up == ["ws2"]
    finally:
        other.close()
        ours.close()
        engine.dispose()


def test_a_killed_workers_locks_go_with_its_session(pg_url):
    engine = lock_engine(pg_url)
    dead, ours = HostLocks(engine), HostLocks(engine)
    try:
        assert dead.acquire("ws1") is True
        with engine.connect() as conn:
            holder = conn.execute(
                text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :low"),
                {"low": lock_key("ws1") & 0xFFFFFFFF},
            ).scalar_one()
            conn.execute(select(func.pg_terminate_backend(holder)))
        assert ours.acquire("ws1") is True
    finally:
        dead.close()
        ours.close()
        engine.dispose()


def test_locks_unavailable_mean_polling_goes_on(tmp_path):
    engine = lock_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    locks = HostLocks(engine)
    stop = threading.Event()
    feed = locked_targets(hosts("ws1", "ws2"), locks, busy_wait_s=1, stopped=stop.is_set, gave_up=lambda t: None)
    assert [t.host for t in feed] == ["ws1", "ws2"]  # the database is away: no lock to be had, none to wait for
    engine.dispose()


def held_advisory_locks(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one())
    finally:
        engine.dispose()


def test_closing_the_locks_ends_the_session_even_on_a_pooled_engine(pg_url):
    pooled = db.make_engine(pg_url, pool_size=1)  # a pool would keep the session, and its locks, for reuse
    locks = HostLocks(pooled)
    try:
        assert locks.acquire("ws1") is True and locks.acquire("ws2") is True
        assert held_advisory_locks(pg_url) == 2
        locks.close()
        assert held_advisory_locks(pg_url) == 0
        with pooled.connect() as conn:  # the pool still works: a fresh session
            assert conn.execute(select(func.pg_try_advisory_lock(lock_key("ws1")))).scalar() is True
    finally:
        pooled.dispose()


def test_the_server_probes_a_lock_sessions_client(pg_url):
    engine = lock_engine(pg_url)
    locks = HostLocks(engine)
    try:
        assert locks.acquire("ws1") is True
        assert locks.conn is not None
        shown = {name: locks.conn.execute(text(f"SHOW {name}")).scalar_one() for name in KEEPALIVES}
        assert shown == {
            "tcp_keepalives_idle": "30",
            "tcp_keepalives_interval": "10",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "60000",
        }  # fmt: skip (seconds, and milliseconds: about a minute)
        params = locks.conn.connection.driver_connection.info.get_parameters()
        assert params["keepalives_idle"] == "30" and params["tcp_user_timeout"] == "60000"  # the client's side
    finally:
        locks.close()
        engine.dispose()
