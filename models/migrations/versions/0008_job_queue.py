"""The job queue: queued runs, their batches and the workers that poll them; procrastinate's tables on PostgreSQL.

``queue_runs`` holds a queued run's schedule slot (``run_key``, unique, so two schedulers never enqueue one slot
twice), its batch count and deadline; ``poll_batches`` one row per batch of hosts with its queue, worker and
counts by failure class; ``queue_workers`` each worker process with its queues and last heartbeat. On PostgreSQL
this revision also installs the schema of the procrastinate release in requirements.txt, once: a later
procrastinate release brings its own SQL migration files, applied by a later revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COUNT_COLUMNS = ("succeeded", "failed_dns", "failed_refused", "failed_timeout", "failed_auth", "failed_tls",
                 "failed_protocol", "set_aside")  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "queue_runs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=64), nullable=False),
        sa.Column("slot_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("every_s", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduler", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["poll_runs.id"], name=op.f("fk_queue_runs_run_id_poll_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_queue_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_queue_runs_run_key")),
    )
    with op.batch_alter_table("queue_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_runs_deadline_at"), ["deadline_at"], unique=False)
    op.create_table(
        "poll_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("site", sa.Text(), nullable=True),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNT_COLUMNS),
        sa.ForeignKeyConstraint(
            ["run_id"], ["poll_runs.id"], name=op.f("fk_poll_batches_run_id_poll_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_batches")),
        sa.UniqueConstraint("batch_key", name=op.f("uq_poll_batches_batch_key")),
        sa.UniqueConstraint("run_id", "batch_no", name=op.f("uq_poll_batches_run_id")),
    )
    with op.batch_alter_table("poll_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_poll_batches_queue"), ["queue"], unique=False)
        batch_op.create_index(batch_op.f("ix_poll_batches_status"), ["status"], unique=False)
    op.create_table(
        "queue_workers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("queues", sa.Text(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("batches_done", sa.Integer(), nullable=False),
        sa.Column("hosts_polled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queue_workers")),
    )
    with op.batch_alter_table("queue_workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_workers_last_heartbeat"), ["last_heartbeat"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _install_procrastinate()


def _install_procrastinate() -> None:
    """procrastinate's tables, types and functions in the connection's schema, unless they are there already."""
    from procrastinate.schema import SchemaManager

    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is not None:
        return
    # The schema file is many statements with $$-quoted bodies and literal % signs: psycopg runs it as one
    # parameterless script on the migration's own connection and transaction.
    psycopg_connection = bind.connection.driver_connection
    assert psycopg_connection is not None  # a live connection, in the migration's transaction
    psycopg_connection.execute(SchemaManager.get_schema())


def downgrade() -> None:
    """procrastinate's schema stays (it may hold other applications' jobs); this revision's tables go."""
    for table, indexes in (
        ("queue_workers", ("ix_queue_workers_last_heartbeat",)),
        ("poll_batches", ("ix_poll_batches_status", "ix_poll_batches_queue")),
        ("queue_runs", ("ix_queue_runs_deadline_at",)),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
