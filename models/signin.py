"""The dashboard's sign-in lockout, kept in the database so that it holds across sessions, reloads and replicas.

Wrong passwords are counted per *key*: a hash of the client's address and the account (the OIDC email, or
``PASSWORD_ACCOUNT`` for the shared password), so the table holds neither in the clear and never anything that
was typed. After ``MAX_FAILURES`` wrong passwords in a row the key is locked for the base lockout (the
``auth_lockout_s`` setting); every further wrong password after a lock doubles it, up to
``MAX_LOCKOUT_S``. A right password clears the key. A key with no wrong password for ``FORGET_AFTER`` starts
again from nothing; such rows are deleted by the next ``record_failure`` of any key.

Every count is one statement that the database applies atomically (an ``INSERT .. ON CONFLICT DO UPDATE``
that adds one in SQL), so two replicas counting the same key at once never lose a count. A sign-in attempt
starts with ``start_attempt``, which also holds the key's row until the transaction ends: attempts on one key,
from any replica, take turns, so however many arrive at once no more than ``MAX_FAILURES`` passwords are
checked before the lock. The caller owns the transaction (``with engine.begin() as conn``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select, update

from models.store import upsert_insert
from models.tables import SigninFailure

MAX_FAILURES = 5
LOCKOUT_S = 300.0  # the first lock; the auth_lockout_s setting
MAX_LOCKOUT_S = 3600.0  # no lock is longer, unless the first one already is
FORGET_AFTER = timedelta(days=1)
PRUNE_BATCH = 500  # forgotten rows removed by one record_failure, at most
PASSWORD_ACCOUNT = "password"  # noqa: S105 - the account name of the shared-password sign-in, not a password
_KEY_LABEL = b"activation-monitor sign-in failures\x00"


@dataclass(frozen=True)
class Lockout:
    """A key's wrong passwords in a row, and until when it is locked (``None``: it is not)."""

    failures: int
    locked_until: datetime | None


def signin_key(address: str, account: str) -> str:
    """The key of ``account`` signing in from ``address``: a SHA-256 hex digest of the two."""
    text = f"{address.strip().lower()}\x00{account.strip().lower()}".encode()
    return hashlib.sha256(_KEY_LABEL + text).hexdigest()


def lock_duration(failures: int, lockout_s: float = LOCKOUT_S) -> timedelta | None:
    """How long the ``failures``-th wrong password in a row locks its key; ``None`` below ``MAX_FAILURES``."""
    if failures < MAX_FAILURES:
        return None
    doublings = min(failures - MAX_FAILURES, 32)  # 2**32 times any lock is past every cap
    return timedelta(seconds=min(lockout_s * 2**doublings, max(lockout_s, MAX_LOCKOUT_S)))


def start_attempt(conn: Connection, key: str, now: datetime) -> datetime | None:
    """Begin a sign-in attempt for ``key``: hold its row until the transaction ends, and say until when the key
    is locked (``None``: it is not, so the password may be checked).

    The row is made if there is none (with no failures: ``record_failure`` or ``record_success`` follows). On
    SQLite this is the transaction's first write, which takes the database's write lock; on PostgreSQL
    ``ON CONFLICT DO UPDATE`` locks the row, even a row another transaction is inserting at the same moment.
    """
    insert = upsert_insert(conn, SigninFailure).values(
        key=key, failures=0, first_failure_at=now, last_failure_at=now, locked_until=None
    )
    held = insert.on_conflict_do_update(index_elements=[SigninFailure.key], set_={"failures": SigninFailure.failures})
    until = conn.execute(held.returning(SigninFailure.locked_until)).scalar_one()
    return until if until is not None and until > now else None


def record_failure(conn: Connection, key: str, now: datetime, *, lockout_s: float = LOCKOUT_S) -> Lockout:
    """Count a wrong password for ``key`` at ``now`` and lock the key when that is one too many.

    Rows with no wrong password for ``FORGET_AFTER`` (and no lock still running) go first, so a key that was
    quiet that long counts from one again. Rows another transaction holds are left for a later call rather
    than waited for, so two attempts never wait on each other's housekeeping.
    """
    forgotten = SigninFailure.last_failure_at < now - FORGET_AFTER
    unlocked = or_(SigninFailure.locked_until.is_(None), SigninFailure.locked_until <= now)
    old = select(SigninFailure.key).where(forgotten, unlocked).limit(PRUNE_BATCH).with_for_update(skip_locked=True)
    conn.execute(delete(SigninFailure).where(SigninFailure.key.in_(old)))
    insert = upsert_insert(conn, SigninFailure).values(
        key=key, failures=1, first_failure_at=now, last_failure_at=now, locked_until=None
    )
    counted = insert.on_conflict_do_update(
        index_elements=[SigninFailure.key],
        set_={"failures": SigninFailure.failures + 1, "last_failure_at": insert.excluded.last_failure_at},
    ).returning(SigninFailure.failures, SigninFailure.locked_until)
    failures, locked = conn.execute(counted).one()
    duration = lock_duration(failures, lockout_s)
    if duration is None:
        return Lockout(failures, locked)
    until = now + duration
    # Only ever later: a slower replica's shorter lock never shortens a longer one.
    conn.execute(
        update(SigninFailure)
        .where(
            SigninFailure.key == key,
            or_(SigninFailure.locked_until.is_(None), SigninFailure.locked_until < until),
        )
        .values(locked_until=until)
    )
    return Lockout(failures, until if locked is None or locked < until else locked)


def locked_until(conn: Connection, key: str, now: datetime) -> datetime | None:
    """When the lock on ``key`` ends, or ``None`` when it is not locked at ``now``."""
    stmt = select(SigninFailure.locked_until).where(SigninFailure.key == key, SigninFailure.locked_until > now)
    return conn.execute(stmt).scalar_one_or_none()


def lockout(conn: Connection, key: str) -> Lockout:
    """What is recorded for ``key``: its wrong passwords in a row and its lock (none and none when nothing is)."""
    row = conn.execute(select(SigninFailure.failures, SigninFailure.locked_until).where(SigninFailure.key == key))
    found = row.one_or_none()
    return Lockout(0, None) if found is None else Lockout(found.failures, found.locked_until)


def record_success(conn: Connection, key: str) -> None:
    """A right password: ``key`` starts again from nothing."""
    conn.execute(delete(SigninFailure).where(SigninFailure.key == key))
