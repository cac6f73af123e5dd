"""No host polled by two workers at once: a PostgreSQL session advisory lock per host while it is polled.

Each batch holds one connection of its own (``lock_engine``: never pooled, so closing it ends the session and
its locks); a host's lock is taken just before the host is handed to a poll thread and released when its result
comes back, so a worker holds as many locks as it has hosts in flight. PostgreSQL drops a session's locks when
the session ends, so a killed worker leaves none behind. A machine that vanishes without closing its connection
is noticed by TCP keepalives set on both ends (``KEEPALIVES``), about a minute later, not the kernel's two hours.
Hosts whose lock another worker holds wait at the back of the batch (``locked_targets``); those still held after
the wait are handed back to the caller, which puts them back in the queue.

When the database cannot be reached the locks cannot be either: the batch goes on polling without them (said
once in the log), since the results are spooled and the database is what would coordinate anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from collectors.inventory import Target
from collectors.names import host_key
from collectors.run.writer import db_reason
from models import db

log = logging.getLogger("collectors")

LOCK_NAMESPACE = b"activation-monitor polling "
RECONNECT_AFTER_S = 2.0
BUSY_PAUSE_S = 0.5
# The server's side of the lock session's keepalives (the client's are models.db.PG_CONNECT_DEFAULTS): a
# session whose machine is gone ends, and its locks with it, within about a minute.
KEEPALIVES = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "60000",
}


def lock_key(host: str) -> int:
    """The advisory lock key of a host: 64 bits of a hash of its key (two spellings of one host, one lock)."""
    digest = hashlib.sha256(LOCK_NAMESPACE + host_key(host).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_engine(database_url: str) -> Engine:
    """An engine for lock sessions: no pool (a closed connection is an ended session), keepalives both ways."""
    engine = db.make_engine(database_url, poolclass=NullPool)
    event.listen(engine, "connect", server_keepalives)
    return engine


def server_keepalives(dbapi_connection: Any, _record: Any) -> None:
    """Ask the server to probe this session's client (``KEEPALIVES``); a server or pooler refusing keeps its own."""
    try:
        with dbapi_connection.cursor() as cursor:
            for name, value in KEEPALIVES.items():
                cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
        dbapi_connection.commit()
    except psycopg.Error as exc:
        dbapi_connection.rollback()
        log.debug("lock session keeps the server's keepalives: %s", " ".join(str(exc).split())[:200])


class HostLocks:
    """Advisory locks on one dedicated connection; every method is safe to call from any thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.guard = threading.Lock()
        self.down_since: float | None = None
        self.warned = False

    def acquire(self, host: str) -> bool | None:
        """True: locked for us; False: another worker polls it now; None: the database is unreachable."""
        with self.guard:
            conn = self._connection()
            if conn is None:
                return None
            try:
                return bool(conn.execute(select(func.pg_try_advisory_lock(lock_key(host)))).scalar())
            except SQLAlchemyError as exc:
                self._lost(exc)
                return None

    def release(self, host: str) -> None:
        with self.guard:
            if self.conn is None:
                return  # the session is gone, and its locks with it
            try:
                self.conn.execute(select(func.pg_advisory_unlock(lock_key(host))))
            except SQLAlchemyError as exc:
                self._lost(exc)

    def close(self) -> None:
        """Release every lock by ending the session (invalidated: a pool must not keep it, locks and all)."""
        with self.guard:
            if self.conn is not None:
                with contextlib.suppress(SQLAlchemyError):  # ending the session releases its locks; a dead one has none
                    self.conn.invalidate()
                    self.conn.close()
                self.conn = None

    def _connection(self) -> Connection | None:
        if self.conn is not None:
            return self.conn
        if self.down_since is not None and time.monotonic() - self.down_since < RECONNECT_AFTER_S:
            return None
        try:
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            self._lost(exc)
            return None
        self.down_since = None
        return self.conn

    def _lost(self, exc: SQLAlchemyError) -> None:
        if not self.warned:
            log.warning("host locks unavailable, polling without them until the database answers: %s", db_reason(exc))
            self.warned = True
        if self.conn is not None:
            try:
                self.conn.invalidate()
                self.conn.close()
            except SQLAlchemyError:
                pass  # already dead
        self.conn, self.down_since = None, time.monotonic()


def locked_targets(
    targets: Iterable[Target],
    locks: HostLocks,
    *,
    busy_wait_s: float,
    stopped: Callable[[], bool],
    gave_up: Callable[[Target], None],
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[Target]:
    """``targets`` each once its lock is held (or locks are unavailable); a host another worker keeps busy
    longer than ``busy_wait_s`` is handed to ``gave_up`` instead of polled (to be queued again, not failed)."""
    waiting = deque(targets)
    busy_since: float | None = None
    while waiting and not stopped():
        progressed = False
        for _ in range(len(waiting)):
            target = waiting.popleft()
            if locks.acquire(target.host) is False:
                waiting.append(target)
                continue
            progressed = True
            yield target
            if stopped():
                return
        if not waiting:
            return
        if progressed:
            busy_since = None
            continue
        busy_since = busy_since if busy_since is not None else monotonic()
        if monotonic() - busy_since > busy_wait_s:
            for target in waiting:
                gave_up(target)
            return
        sleep(BUSY_PAUSE_S)
