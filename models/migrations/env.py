"""Alembic environment: migrates the connection handed in by ``models.db.upgrade``, or the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from models import tables  # noqa: F401 - registers the tables on Base.metadata
from models.base import Base, include_name

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,  # the job queue's procrastinate_* tables are its own
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_from_settings() -> None:
    from config.settings import load_settings
    from models.db import make_engine

    engine = make_engine(load_settings().database_url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    _run_from_settings()
