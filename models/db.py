"""Engines and schema upgrades: the one place a database URL becomes a live SQLAlchemy engine.

SQLite gets its parent folder created, WAL journaling, foreign keys and a busy timeout on every connection;
PostgreSQL is used as configured. ``upgrade`` brings an empty or older database to the newest schema with
Alembic, so the dashboard and the collector can both call it at start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SQLITE_BUSY_TIMEOUT_MS = 30_000


# libpq settings so a database whose packets vanish (a dead link, a firewall dropping traffic) fails within
# about a minute instead of the kernel's retransmission timeout; a URL's own query parameters win.
PG_CONNECT_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; for SQLite the file's folder is created on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args = {k: v for k, v in PG_CONNECT_DEFAULTS.items() if k not in parsed.query}
        connect_args.update(kwargs.pop("connect_args", {}))
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def alembic_config() -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "models" / "migrations"))
    return config


MIGRATION_LOCK = 0x41_4D_4D_47  # pg_advisory_xact_lock key: one migrator at a time


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest schema; does nothing on an up-to-date one.

    Collectors and dashboards may all start at once against an empty database: on PostgreSQL they queue on
    an advisory lock, on SQLite on a lock file beside the database, so exactly one of them migrates.
    """
    config = alembic_config()
    with _sqlite_migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    # An OS lock (flock on POSIX, LockFileEx on Windows) that the kernel drops if its holder dies.
    with FileLock(database + ".migrate-lock"):
        yield


class SchemaOutOfDate(Exception):
    """The database's schema is not the newest; a reader that must not migrate says so instead."""


def check_schema(engine: Engine) -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at the newest migration; never changes it."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"the database schema is at revision {current or 'none'}, this version needs {head}: "
            "start a collector or the dashboard once, or run `alembic upgrade head`"
        )


def open_database(url: str) -> Engine:
    """An engine on an up-to-date database."""
    engine = make_engine(url)
    upgrade(engine)
    return engine
