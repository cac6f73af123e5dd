"""The schema comes from Alembic on both backends, and matches the ORM exactly."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from models.base import Base, include_name
from models.db import alembic_config, make_engine, open_database, upgrade
from models.tables import Host

ROOT = Path(__file__).resolve().parents[2]
HEAD = "0008"


def _upgrade_in_child(url: str) -> str:
    engine = make_engine(url)
    try:
        upgrade(engine)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        engine.dispose()
    return "ok"


TABLES = {
    "hosts",
    "current_status",
    "findings",
    "kms_host_stats",
    "status_history",
    "daily_rollups",
    "poll_runs",
    "applied_batches",
    "signin_failures",
    "alerts",
    "alert_notifications",
    "queue_runs",
    "poll_batches",
    "queue_workers",
    "alembic_version",
}


def test_empty_database_is_upgraded_to_every_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_upgrade_is_a_no_op_on_an_up_to_date_database(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").scalars().all() == [HEAD]


def test_migrations_match_the_orm_models(engine: Engine) -> None:
    with engine.connect() as conn:
        # On PostgreSQL the job queue's procrastinate_* tables are there too; they are not the ORM's.
        options = {"compare_type": True, "include_name": include_name}
        diff = compare_metadata(MigrationContext.configure(conn, opts=options), Base.metadata)
    assert diff == []


def test_sqlite_file_and_folder_are_created_on_first_use(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "folder" / "am.db"
    engine = open_database(f"sqlite:///{target}")
    engine.dispose()
    assert target.exists()


def test_alembic_command_line_upgrades_the_configured_database(tmp_path: Path) -> None:
    target = tmp_path / "cli.db"
    env = {**os.environ, "ACTIVATION_DB_URL": f"sqlite:///{target}"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    engine = make_engine(f"sqlite:///{target}")
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_an_older_database_is_upgraded_with_its_data(db_url: str) -> None:
    """A database left at the first schema keeps its hosts and gains the new columns, backfilled."""
    engine = make_engine(db_url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO hosts (name, computer_name, first_seen, grace_minutes, status_observed_at) "
                "VALUES ('10.0.0.7', 'ÉCOLE-07', :t, 1440, :t)"
            ),
            {"t": datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)},
        )
    upgrade(engine)
    with engine.connect() as conn:
        key, ends = conn.execute(select(Host.search_key, Host.grace_ends_at)).one()
    engine.dispose()
    assert key == "10.0.0.7\nécole-07"
    assert ends == datetime(2026, 11, 2, tzinfo=UTC)


def test_concurrent_first_starts_migrate_once(db_url: str) -> None:
    """Several collectors and a dashboard starting together against an empty database all succeed."""
    # separate processes, as separate machines would be; each runs its own migration attempt
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        outcomes = pool.map(_upgrade_in_child, [db_url] * 3)
    assert outcomes == ["ok", "ok", "ok"]
