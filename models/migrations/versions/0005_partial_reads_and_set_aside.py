"""Partial reads keep what is known, and results the database refused are counted.

``identity_read_at``, ``os_read_at`` and ``error_read_at`` say when each optional part of a host was last
read: a poll that could not read a part leaves its fields, and this time, as they were. ``poll_runs.set_aside``
counts the results of a run that the database refused and the collector set aside in its spool.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identity_read_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("os_read_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("error_read_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_aside", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("poll_runs", schema=None) as batch_op:
        batch_op.drop_column("set_aside")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("error_read_at")
        batch_op.drop_column("os_read_at")
        batch_op.drop_column("identity_read_at")
