"""The schema comes from Alembic on both backends, and matches the ORM exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from models.base import Base
from models.db import make_engine, open_database, upgrade

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "hosts",
    "current_status",
    "findings",
    "kms_host_stats",
    "status_history",
    "daily_rollups",
    "poll_runs",
    "applied_batches",
    "alembic_version",
}


def test_empty_database_is_upgraded_to_every_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_upgrade_is_a_no_op_on_an_up_to_date_database(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select version_num from alembic_version").scalars().all() == ["0001"]


def test_migrations_match_the_orm_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
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
