"""The sign-in lockout in the database, on both backends: what a client that keeps guessing runs into.

Five wrong passwords in a row lock the client's address and account for the first lockout; every further wrong
one doubles it, up to an hour; a right password clears the count; a day of quiet forgets it. Replicas that
count the same client at the same moment never lose a wrong password.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from models import signin
from models.db import make_engine
from models.signin import Lockout
from models.tables import SigninFailure

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
KEY = signin.signin_key("203.0.113.7", signin.PASSWORD_ACCOUNT)


def fail(engine: Engine, at: datetime, key: str = KEY, lockout_s: float = 300.0) -> Lockout:
    with engine.begin() as conn:
        return signin.record_failure(conn, key, at, lockout_s=lockout_s)


def lock_end(engine: Engine, at: datetime, key: str = KEY) -> datetime | None:
    with engine.connect() as conn:
        return signin.locked_until(conn, key, at)


def recorded(engine: Engine, key: str = KEY) -> Lockout:
    with engine.connect() as conn:
        return signin.lockout(conn, key)


def test_four_wrong_passwords_are_counted_and_the_fifth_locks_for_five_minutes(engine: Engine) -> None:
    for n in range(1, 5):
        assert fail(engine, T0 + timedelta(seconds=n)) == Lockout(n, None)
        assert lock_end(engine, T0 + timedelta(seconds=n)) is None
    fifth = T0 + timedelta(seconds=5)
    locked = fail(engine, fifth)
    assert locked == Lockout(5, fifth + timedelta(minutes=5))
    assert lock_end(engine, fifth + timedelta(seconds=299)) == fifth + timedelta(minutes=5)
    assert lock_end(engine, fifth + timedelta(seconds=300)) is None, "the lock ends on time"
    assert recorded(engine) == locked


def test_every_further_wrong_password_doubles_the_lock_up_to_an_hour(engine: Engine) -> None:
    at = T0
    for _ in range(5):
        lockout = fail(engine, at)
    expected_minutes = [5, 10, 20, 40, 60, 60, 60]
    for minutes in expected_minutes:
        assert lockout.locked_until == at + timedelta(minutes=minutes)
        at = lockout.locked_until + timedelta(seconds=1)  # the client waits the lock out, then guesses again
        lockout = fail(engine, at)
    assert lockout.failures == 5 + len(expected_minutes)


def test_the_first_lock_follows_the_setting(engine: Engine) -> None:
    for n in range(5):
        lockout = fail(engine, T0 + timedelta(seconds=n), lockout_s=2)
    assert lockout.locked_until == T0 + timedelta(seconds=4 + 2)
    assert fail(engine, T0 + timedelta(seconds=7), lockout_s=2).locked_until == T0 + timedelta(seconds=7 + 4)


def test_a_right_password_clears_the_count(engine: Engine) -> None:
    for n in range(4):
        fail(engine, T0 + timedelta(seconds=n))
    with engine.begin() as conn:
        signin.record_success(conn, KEY)
    assert recorded(engine) == Lockout(0, None)
    for n in range(4):
        assert fail(engine, T0 + timedelta(minutes=1, seconds=n)).locked_until is None, "counting starts again"


def test_addresses_and_accounts_are_counted_apart_and_kept_only_as_a_hash(engine: Engine) -> None:
    other_address = signin.signin_key("198.51.100.9", signin.PASSWORD_ACCOUNT)
    account = signin.signin_key("203.0.113.7", "IT-Desk@corp.example")
    for n in range(5):
        fail(engine, T0 + timedelta(seconds=n))
    assert lock_end(engine, T0 + timedelta(seconds=5)) is not None
    assert lock_end(engine, T0 + timedelta(seconds=5), other_address) is None
    assert lock_end(engine, T0 + timedelta(seconds=5), account) is None
    fail(engine, T0, account)
    assert recorded(engine, signin.signin_key(" 203.0.113.7", "it-desk@CORP.example")).failures == 1
    with engine.connect() as conn:
        stored = [str(value) for row in conn.execute(select(SigninFailure)).all() for value in row]
    assert not any("203.0.113" in value or "corp.example" in value or "password" in value for value in stored)


def test_a_day_without_wrong_passwords_forgets_them_and_old_rows_go(engine: Engine) -> None:
    quiet = signin.signin_key("192.0.2.1", signin.PASSWORD_ACCOUNT)
    fail(engine, T0, quiet)
    for n in range(4):
        fail(engine, T0 + timedelta(seconds=n))
    later = T0 + timedelta(days=1, seconds=10)
    assert fail(engine, later) == Lockout(1, None), "four wrong passwords a day ago do not count"
    assert recorded(engine, quiet) == Lockout(0, None), "the quiet key's row was removed by another's failure"
    with engine.connect() as conn:
        assert conn.execute(select(SigninFailure.key)).scalars().all() == [KEY]


def test_replicas_counting_at_once_never_lose_a_wrong_password(db_url: str, engine: Engine) -> None:
    """Twenty wrong passwords posted at the same moment to two replicas (each its own pool): all twenty count."""
    replicas, per_replica = 2, 10
    engines = [make_engine(db_url) for _ in range(replicas)]
    start = threading.Barrier(replicas * per_replica)
    seen: list[int] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def post(replica: Engine) -> None:
        try:
            start.wait(timeout=30)
            lockout = fail(replica, T0)
            with guard:
                seen.append(lockout.failures)
        except BaseException as exc:
            with guard:
                errors.append(exc)

    threads = [threading.Thread(target=post, args=(e,)) for e in engines for _ in range(per_replica)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for e in engines:
        e.dispose()
    assert errors == []
    total = replicas * per_replica
    assert sorted(seen) == list(range(1, total + 1)), "every writer saw its own count"
    assert recorded(engine) == Lockout(total, T0 + timedelta(hours=1))


def test_attempts_arriving_at_once_check_no_more_than_five_passwords(db_url: str, engine: Engine) -> None:
    """Twenty sign-ins at the same moment on two replicas: five are checked (all wrong), the rest find the lock."""
    replicas = [make_engine(db_url) for _ in range(2)]
    start = threading.Barrier(20)
    checked: list[int] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def attempt(replica: Engine) -> None:
        try:
            start.wait(timeout=30)
            with replica.begin() as conn:
                if signin.start_attempt(conn, KEY, T0) is None:
                    lockout = signin.record_failure(conn, KEY, T0)  # the password was checked: wrong
                    with guard:
                        checked.append(lockout.failures)
        except BaseException as exc:
            with guard:
                errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(replica,)) for replica in replicas for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for replica in replicas:
        replica.dispose()
    assert errors == []
    assert sorted(checked) == [1, 2, 3, 4, 5]
    assert recorded(engine) == Lockout(5, T0 + timedelta(minutes=5))


def test_an_attempt_that_ends_in_the_right_password_leaves_nothing_behind(engine: Engine) -> None:
    with engine.begin() as conn:
        assert signin.start_attempt(conn, KEY, T0) is None
        signin.record_success(conn, KEY)
    with engine.connect() as conn:
        assert conn.execute(select(SigninFailure.key)).scalars().all() == []
    for n in range(5):
        fail(engine, T0 + timedelta(seconds=n))
    with engine.begin() as conn:
        assert signin.start_attempt(conn, KEY, T0 + timedelta(seconds=6)) == T0 + timedelta(seconds=4, minutes=5)
    assert recorded(engine).failures == 5, "a refused attempt is not counted"
