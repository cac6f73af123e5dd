"""Renewals failing on licensed KMS clients, and what a client's KMS host resolves to.

``renewal_failing`` marks a Licensed KMS client whose renewals fail (its own state, "Licensed - renewal
failing"), on the host and on each product. ``address`` keeps where a host was reached, so a client naming
its KMS host by IP address finds it; ``kms_host_id`` is the host a client's KMS name resolves to, whatever
form the name takes; ``kms_role`` says which application's KMS host a machine is (windows, office, other).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renewal_failing", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("kms_role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("kms_host_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_hosts_renewal_failing"), ["renewal_failing"], unique=False)
        batch_op.create_index(batch_op.f("ix_hosts_kms_host_id"), ["kms_host_id"], unique=False)
    with op.batch_alter_table("current_status", schema=None) as batch_op:
        batch_op.add_column(sa.Column("renewal_failing", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("current_status", schema=None) as batch_op:
        batch_op.drop_column("renewal_failing")
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_kms_host_id"))
        batch_op.drop_index(batch_op.f("ix_hosts_renewal_failing"))
        batch_op.drop_column("kms_host_id")
        batch_op.drop_column("kms_role")
        batch_op.drop_column("address")
        batch_op.drop_column("renewal_failing")
