"""Initial schema: hosts, current status, findings, KMS statistics, history, rollups, poll runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:05:56.987203
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applied_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_applied_batches")),
    )
    op.create_table(
        "daily_rollups",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("license_status", sa.String(length=16), nullable=False),
        sa.Column("activation_type", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=False),
        sa.Column("failure_class", sa.String(length=16), nullable=False),
        sa.Column("host_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "license_status",
            "activation_type",
            "error_code",
            "failure_class",
            name=op.f("pk_daily_rollups"),
        ),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("scheme", sa.String(length=8), nullable=True),
        sa.Column("site", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("computer_name", sa.Text(), nullable=True),
        sa.Column("domain", sa.Text(), nullable=True),
        sa.Column("fqdn", sa.Text(), nullable=True),
        sa.Column("os_caption", sa.Text(), nullable=True),
        sa.Column("os_version", sa.String(length=64), nullable=True),
        sa.Column("product_type", sa.String(length=16), nullable=True),
        sa.Column("clock_skew_s", sa.Double(), nullable=True),
        sa.Column("activation_type", sa.String(length=16), nullable=True),
        sa.Column("license_status", sa.String(length=16), nullable=True),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("grace_minutes", sa.Integer(), nullable=True),
        sa.Column("kms_host", sa.Text(), nullable=True),
        sa.Column("kms_fqdn", sa.Text(), nullable=True),
        sa.Column("status_observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_class", sa.String(length=16), nullable=True),
        sa.Column("last_failure_reason", sa.Text(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hosts_activation_type"), ["activation_type"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_error_code"), ["error_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_hosts_fqdn"), ["fqdn"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_hosts_kms_fqdn"), ["kms_fqdn"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_last_failure_class"),
            ["last_failure_class"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_last_success_at"), ["last_success_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_license_status"), ["license_status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_os_caption"), ["os_caption"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_product_type"), ["product_type"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_hosts_site"), ["site"], unique=False)

    op.create_table(
        "poll_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("collector", sa.Text(), nullable=False),
        sa.Column("shard", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("hosts_total", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("failed_dns", sa.Integer(), nullable=False),
        sa.Column("failed_refused", sa.Integer(), nullable=False),
        sa.Column("failed_timeout", sa.Integer(), nullable=False),
        sa.Column("failed_auth", sa.Integer(), nullable=False),
        sa.Column("failed_tls", sa.Integer(), nullable=False),
        sa.Column("failed_protocol", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_runs")),
    )
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_poll_runs_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "current_status",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("activation_type", sa.String(length=16), nullable=False),
        sa.Column("license_status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.Column("error_source", sa.String(length=8), nullable=True),
        sa.Column("grace_minutes", sa.Integer(), nullable=True),
        sa.Column("partial_key", sa.String(length=5), nullable=True),
        sa.Column("product_name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("kms_machine", sa.Text(), nullable=True),
        sa.Column("kms_port", sa.Integer(), nullable=True),
        sa.Column("discovered_kms_machine", sa.Text(), nullable=True),
        sa.Column("discovered_kms_port", sa.Integer(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_current_status_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "host_id", "product_id", name=op.f("pk_current_status")
        ),
    )
    op.create_table(
        "findings",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("check", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("related_code", sa.String(length=10), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_findings_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", "check", name=op.f("pk_findings")),
    )
    op.create_table(
        "kms_host_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_count", sa.Integer(), nullable=False),
        sa.Column("total_requests", sa.Integer(), nullable=True),
        sa.Column("failed_requests", sa.Integer(), nullable=True),
        sa.Column("licensed_requests", sa.Integer(), nullable=True),
        sa.Column("non_genuine_requests", sa.Integer(), nullable=True),
        sa.Column("listening_port", sa.Integer(), nullable=True),
        sa.Column("dns_publishing", sa.Boolean(), nullable=True),
        sa.Column("listening", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_kms_host_stats_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kms_host_stats")),
        sa.UniqueConstraint(
            "host_id", "observed_at", name=op.f("uq_kms_host_stats_host_id")
        ),
    )
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("license_status", sa.String(length=16), nullable=False),
        sa.Column("activation_type", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name=op.f("fk_status_history_host_id_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_history")),
        sa.UniqueConstraint(
            "host_id", "changed_at", name=op.f("uq_status_history_host_id")
        ),
    )
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_status_history_changed_at", ["changed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("status_history", schema=None) as batch_op:
        batch_op.drop_index("ix_status_history_changed_at")

    op.drop_table("status_history")
    op.drop_table("kms_host_stats")
    op.drop_table("findings")
    op.drop_table("current_status")
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_poll_runs_started_at"))

    op.drop_table("poll_runs")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_site"))
        batch_op.drop_index(batch_op.f("ix_hosts_product_type"))
        batch_op.drop_index(batch_op.f("ix_hosts_os_caption"))
        batch_op.drop_index(batch_op.f("ix_hosts_license_status"))
        batch_op.drop_index(batch_op.f("ix_hosts_last_success_at"))
        batch_op.drop_index(batch_op.f("ix_hosts_last_failure_class"))
        batch_op.drop_index(batch_op.f("ix_hosts_kms_fqdn"))
        batch_op.drop_index(batch_op.f("ix_hosts_fqdn"))
        batch_op.drop_index(batch_op.f("ix_hosts_error_code"))
        batch_op.drop_index(batch_op.f("ix_hosts_activation_type"))

    op.drop_table("hosts")
    op.drop_table("daily_rollups")
    op.drop_table("applied_batches")
