"""Hosts: when their grace period ends, and a case-folded search key.

``grace_ends_at`` lets the dashboard age a remaining grace period between polls; ``search_key`` makes host
search match non-ASCII names the same way on SQLite and PostgreSQL. Existing rows are backfilled.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:33:28
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

hosts = sa.table(
    "hosts",
    sa.column("id", sa.Integer),
    sa.column("name", sa.Text),
    sa.column("computer_name", sa.Text),
    sa.column("grace_minutes", sa.Integer),
    sa.column("status_observed_at", sa.DateTime(timezone=True)),
    sa.column("search_key", sa.Text),
    sa.column("grace_ends_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("search_key", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("grace_ends_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_hosts_grace_ends_at"), ["grace_ends_at"], unique=False
        )
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    rows = conn.execute(
        sa.select(
            hosts.c.id,
            hosts.c.name,
            hosts.c.computer_name,
            hosts.c.grace_minutes,
            hosts.c.status_observed_at,
        )
    ).all()
    updates = [
        {
            "hid": hid,
            "key": f"{name}\n{computer or ''}".casefold(),
            "ends": _ends(at, minutes, naive=conn.dialect.name == "sqlite"),
        }
        for hid, name, computer, minutes, at in rows
    ]
    if updates:
        stmt = (
            hosts.update()
            .where(hosts.c.id == sa.bindparam("hid"))
            .values(search_key=sa.bindparam("key"), grace_ends_at=sa.bindparam("ends"))
        )
        conn.execute(stmt, updates)


def _ends(observed: datetime | str | None, minutes: int | None, *, naive: bool) -> datetime | None:
    """The end of the grace period in UTC; naive on SQLite, which stores UTC without a zone."""
    if observed is None or not minutes:
        return None
    if isinstance(observed, str):
        observed = datetime.fromisoformat(observed)
    ends = observed.replace(tzinfo=observed.tzinfo or UTC).astimezone(UTC) + timedelta(minutes=minutes)
    return ends.replace(tzinfo=None) if naive else ends


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hosts_grace_ends_at"))
        batch_op.drop_column("grace_ends_at")
        batch_op.drop_column("search_key")
