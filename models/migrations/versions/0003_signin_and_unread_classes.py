"""Hosts: how the collector signed in, and which optional WMI classes the last poll could not read.

``signin`` is Kerberos, NTLM or Basic; ``unread_classes`` lists, comma-separated, the optional classes a
host did not give on its last successful poll (their fields are missing, never guessed).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signin", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("unread_classes", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("unread_classes")
        batch_op.drop_column("signin")
