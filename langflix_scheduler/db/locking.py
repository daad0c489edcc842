"""Row locks in a fixed order, insert-if-absent, and named non-blocking locks.

The order in which these rows are locked is :mod:`langflix_scheduler.ledger`'s (channel-day
rows before quota-day rows, each sorted by key); the functions here lock what they are given, in
key order, and callers follow the ledger's order.

A row that may not exist yet is created race-free: insert-if-absent (``ON CONFLICT DO NOTHING``
/ ``ON DUPLICATE KEY UPDATE``), then ``SELECT ... FOR UPDATE``. On SQLite, ``FOR UPDATE`` renders
as nothing; the write transaction's ``BEGIN IMMEDIATE`` already serialises writers.

Two flavours lock the same rows with the same statements: :func:`lock_day` /
:func:`lock_quota_rows` return ORM rows (for code that edits them through the unit of work), and
:func:`lock_day_counts` / :func:`lock_quota_counts` return plain numbers through pre-built Core
statements, for the reservation hot path where ORM identity-map and flush bookkeeping would cost
more than the round trips themselves. Counter changes then go through :func:`add_to_day_count`
and :func:`add_to_quota_reserved` (``col = col + n`` under the lock already held).

:func:`take_day_count` / :func:`take_quota` lock and increment in one go, for a reservation that
knows exactly which rows it will count on (a booking at an exact time): on engines with
``UPDATE ... RETURNING`` (PostgreSQL, SQLite) the increment itself takes the row lock and
returns the counts, one statement per row instead of two; the caller checks the limits on the
returned values and raises to roll back. Same rows, same order, same lock timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import StorageError
from .engine import Database
from .models import DailyLimit, QuotaUsage

__all__ = [
    "add_to_day_count",
    "add_to_quota_reserved",
    "insert_if_absent",
    "lock_day",
    "lock_day_counts",
    "lock_quota_counts",
    "lock_quota_rows",
    "named_lock",
    "take_day_count",
    "take_quota",
]

logger = logging.getLogger(__name__)

_SQLITE_LOCK_POLL_SECONDS = 0.05
_MYSQL_LOCK_NAME_MAX = 64


def insert_if_absent(
    session: Session | Connection, dialect: str, table: Table, values: Mapping[str, Any]
) -> None:
    """Insert a row unless one with the same primary key exists. Never raises on the duplicate."""
    if dialect == "postgresql":
        pg = pg_insert(table).values(**values).on_conflict_do_nothing()
        session.execute(pg)
    elif dialect == "sqlite":
        lite = sqlite_insert(table).values(**values).on_conflict_do_nothing()
        session.execute(lite)
    else:
        my = mysql_insert(table).values(**values)
        first_pk = next(iter(table.primary_key.columns)).name
        session.execute(my.on_duplicate_key_update({first_pk: my.inserted[first_pk]}))


def lock_day(session: Session, dialect: str, channel_id: str, publish_date: date) -> DailyLimit:
    """Lock (creating it if needed) the counter row of one channel day and return it."""
    params = {"k_channel": channel_id, "k_day": publish_date}
    row = session.execute(_LOCK_DAY_ROW, params).scalar_one_or_none()
    if row is None:
        insert_if_absent(session, dialect, _DAY, _new_day(channel_id, publish_date))
        row = session.execute(_RELOCK_DAY_ROW, params).scalar_one()
    return row


def lock_quota_rows(
    session: Session,
    dialect: str,
    api_project: str,
    keys: Iterable[tuple[date, str]],
    limits: Mapping[str, int],
) -> dict[tuple[date, str], QuotaUsage]:
    """Lock (creating as needed) quota rows for ``(quota_date, bucket)`` keys, in sorted order."""
    out: dict[tuple[date, str], QuotaUsage] = {}
    for quota_date, bucket in sorted(set(keys)):
        params = {"k_project": api_project, "k_qday": quota_date, "k_bucket": bucket}
        row = session.execute(_LOCK_QUOTA_ROW, params).scalar_one_or_none()
        if row is None:
            insert_if_absent(
                session, dialect, _QUOTA, _new_quota(api_project, quota_date, bucket, limits)
            )
            row = session.execute(_RELOCK_QUOTA_ROW, params).scalar_one()
        out[(quota_date, bucket)] = row
    return out


_DAY: Table = DailyLimit.__table__  # type: ignore[assignment]
_QUOTA: Table = QuotaUsage.__table__  # type: ignore[assignment]
_DAY_KEY = (_DAY.c.channel_id == bindparam("k_channel")) & (
    _DAY.c.publish_date == bindparam("k_day")
)
_QUOTA_KEY = (
    (_QUOTA.c.api_project == bindparam("k_project"))
    & (_QUOTA.c.quota_date == bindparam("k_qday"))
    & (_QUOTA.c.bucket == bindparam("k_bucket"))
)
# Built once: statement construction and cache-key generation are a measurable share of a
# reservation's CPU time (see docs/performance.md). They hold no connection or state.
_LOCK_DAY_COUNTS = select(_DAY.c.final_count, _DAY.c.short_count).where(_DAY_KEY).with_for_update()
_LOCK_QUOTA_COUNTS = select(_QUOTA.c.reserved, _QUOTA.c.used).where(_QUOTA_KEY).with_for_update()
_ADD_DAY = {
    column: update(_DAY).where(_DAY_KEY).values({column: _DAY.c[column] + bindparam("k_amount")})
    for column in ("final_count", "short_count")
}
_ADD_QUOTA_RESERVED = (
    update(_QUOTA)
    .where(_QUOTA_KEY)
    .values(reserved=_QUOTA.c.reserved + bindparam("k_amount"), quota_limit=bindparam("k_limit"))
)
_TAKE_DAY = {
    column: stmt.returning(_DAY.c.final_count, _DAY.c.short_count)
    for column, stmt in _ADD_DAY.items()
}
_TAKE_QUOTA = _ADD_QUOTA_RESERVED.returning(_QUOTA.c.reserved, _QUOTA.c.used)
# The ORM flavour (lock_day / lock_quota_rows): same rows, same SQL, loading entities.
_LOCK_DAY_ROW = (
    select(DailyLimit)
    .where(
        DailyLimit.channel_id == bindparam("k_channel"),
        DailyLimit.publish_date == bindparam("k_day"),
    )
    .with_for_update()
)
_RELOCK_DAY_ROW = _LOCK_DAY_ROW.execution_options(populate_existing=True)
_LOCK_QUOTA_ROW = (
    select(QuotaUsage)
    .where(
        QuotaUsage.api_project == bindparam("k_project"),
        QuotaUsage.quota_date == bindparam("k_qday"),
        QuotaUsage.bucket == bindparam("k_bucket"),
    )
    .with_for_update()
)
_RELOCK_QUOTA_ROW = _LOCK_QUOTA_ROW.execution_options(populate_existing=True)


def lock_day_counts(
    conn: Connection, dialect: str, channel_id: str, publish_date: date
) -> dict[str, int]:
    """Lock (creating it if needed) one channel-day row; its counts by column name.

    Same lock, same statements as :func:`lock_day`, without loading an ORM object.
    """
    params = {"k_channel": channel_id, "k_day": publish_date}
    row = conn.execute(_LOCK_DAY_COUNTS, params).first()
    if row is None:
        insert_if_absent(conn, dialect, _DAY, _new_day(channel_id, publish_date))
        row = conn.execute(_LOCK_DAY_COUNTS, params).one()
    return {"final_count": row[0], "short_count": row[1]}


def lock_quota_counts(
    conn: Connection,
    dialect: str,
    api_project: str,
    keys: Iterable[tuple[date, str]],
    limits: Mapping[str, int],
) -> dict[tuple[date, str], tuple[int, int]]:
    """Lock (creating as needed) quota rows in sorted key order; ``(reserved, used)`` per key.

    Same locks, same order, same statements as :func:`lock_quota_rows`, without ORM objects.
    """
    out: dict[tuple[date, str], tuple[int, int]] = {}
    for quota_date, bucket in sorted(set(keys)):
        params = {"k_project": api_project, "k_qday": quota_date, "k_bucket": bucket}
        row = conn.execute(_LOCK_QUOTA_COUNTS, params).first()
        if row is None:
            insert_if_absent(
                conn, dialect, _QUOTA, _new_quota(api_project, quota_date, bucket, limits)
            )
            row = conn.execute(_LOCK_QUOTA_COUNTS, params).one()
        out[(quota_date, bucket)] = (int(row[0]), int(row[1]))
    return out


def add_to_day_count(
    conn: Connection, channel_id: str, publish_date: date, column: str, amount: int
) -> None:
    """``column += amount`` on a channel-day row the caller has locked."""
    conn.execute(
        _ADD_DAY[column], {"k_channel": channel_id, "k_day": publish_date, "k_amount": amount}
    )


def add_to_quota_reserved(
    conn: Connection, api_project: str, quota_date: date, bucket: str, amount: int, limit: int
) -> None:
    """``reserved += amount`` (and record the configured ``limit``) on a locked quota row."""
    conn.execute(
        _ADD_QUOTA_RESERVED,
        {
            "k_project": api_project,
            "k_qday": quota_date,
            "k_bucket": bucket,
            "k_amount": amount,
            "k_limit": limit,
        },
    )


def take_day_count(
    conn: Connection, dialect: str, channel_id: str, publish_date: date, column: str
) -> dict[str, int]:
    """Lock a channel-day row (creating it if needed) and add one to ``column``, in as few
    statements as the engine allows; returns the counts as they were BEFORE the increment.

    PostgreSQL and SQLite: one ``UPDATE ... RETURNING`` (the update takes the row lock);
    MySQL/MariaDB, which have no ``UPDATE ... RETURNING``: ``SELECT ... FOR UPDATE`` + ``UPDATE``.
    The caller checks the limit afterwards and raises to roll the whole transaction back.
    """
    if not conn.dialect.update_returning:
        counts = lock_day_counts(conn, dialect, channel_id, publish_date)
        add_to_day_count(conn, channel_id, publish_date, column, 1)
        return counts
    params = {"k_channel": channel_id, "k_day": publish_date, "k_amount": 1}
    row = conn.execute(_TAKE_DAY[column], params).first()
    if row is None:
        insert_if_absent(conn, dialect, _DAY, _new_day(channel_id, publish_date))
        row = conn.execute(_TAKE_DAY[column], params).one()
    counts = {"final_count": row[0], "short_count": row[1]}
    counts[column] -= 1
    return counts


def take_quota(
    conn: Connection,
    dialect: str,
    api_project: str,
    quota_date: date,
    cost: Mapping[str, int],
    limits: Mapping[str, int],
) -> dict[str, int]:
    """Lock the quota rows of ``quota_date`` for ``cost``'s buckets in sorted order (creating
    them if needed) and add ``cost`` to ``reserved`` (recording each bucket's configured limit);
    returns ``reserved + used`` per bucket as it was BEFORE. Same engine split as
    :func:`take_day_count`."""
    before: dict[str, int] = {}
    if not conn.dialect.update_returning:
        rows = lock_quota_counts(
            conn, dialect, api_project, [(quota_date, b) for b in cost], limits
        )
        for bucket, amount in sorted(cost.items()):
            reserved, used = rows[(quota_date, bucket)]
            before[bucket] = reserved + used
            add_to_quota_reserved(
                conn, api_project, quota_date, bucket, amount, limits.get(bucket, 0)
            )
        return before
    for bucket, amount in sorted(cost.items()):
        params = {
            "k_project": api_project,
            "k_qday": quota_date,
            "k_bucket": bucket,
            "k_amount": amount,
            "k_limit": limits.get(bucket, 0),
        }
        row = conn.execute(_TAKE_QUOTA, params).first()
        if row is None:
            insert_if_absent(
                conn, dialect, _QUOTA, _new_quota(api_project, quota_date, bucket, limits)
            )
            row = conn.execute(_TAKE_QUOTA, params).one()
        before[bucket] = int(row[0]) + int(row[1]) - amount
    return before


def _new_day(channel_id: str, publish_date: date) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "publish_date": publish_date,
        "final_count": 0,
        "short_count": 0,
    }


def _new_quota(
    api_project: str, quota_date: date, bucket: str, limits: Mapping[str, int]
) -> dict[str, Any]:
    return {
        "api_project": api_project,
        "quota_date": quota_date,
        "bucket": bucket,
        "reserved": 0,
        "used": 0,
        "quota_limit": limits.get(bucket, 0),
    }


def _pg_key(name: str) -> int:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _mysql_name(name: str) -> str:
    if len(name) <= _MYSQL_LOCK_NAME_MAX:
        return name
    return "lfs:" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:56]


def _sqlite_lock_path(db: Database, name: str) -> Path:
    database = db.engine.url.database
    safe = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    if database and database != ":memory:":
        return Path(f"{os.path.abspath(database)}.{safe}.lock")
    return Path(tempfile.gettempdir()) / f"langflix-scheduler-{os.getpid()}-{id(db)}.{safe}.lock"


@contextlib.contextmanager
def named_lock(db: Database, name: str, *, wait: float = 0.0) -> Iterator[bool]:
    """Hold a named lock for the ``with`` block; yields False (without waiting longer than
    ``wait`` seconds) when another holder has it.

    PostgreSQL: session advisory lock; MySQL/MariaDB: ``GET_LOCK``; SQLite: ``flock`` on a file
    beside the database. All three are released when the block ends and by the server or OS when
    the holder dies, so a crashed holder never blocks the next run.

    The lock's connection is in autocommit mode: idle between acquire and release, it is never
    "idle in a transaction", so the server's idle-transaction timeout leaves it alone. Acquiring
    (at most ``db_timeout + wait``) and releasing (``db_timeout``) are bounded by the
    database's watchdog; the hold itself is not, since it lasts as long as the caller's work.
    """
    if db.dialect == "sqlite":
        with _file_lock(_sqlite_lock_path(db, name), wait) as got:
            yield got
        return
    operation = f"named lock {name!r}"
    with db.bounded(db.db_timeout + wait) as watch:
        try:
            conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise db.error_for(exc, operation, watch) from exc
        try:
            got, release, params = _acquire(db, conn, name, wait)
        except SQLAlchemyError as exc:
            conn.close()
            raise db.error_for(exc, operation, watch) from exc
    try:
        yield got
    finally:
        with db.bounded(conn=conn):
            try:
                if got:
                    conn.execute(release, params)
            except SQLAlchemyError:
                # Closing the connection below releases it on the server anyway.
                logger.warning("could not release %s cleanly", operation, exc_info=True)
            finally:
                conn.close()


def _acquire(db: Database, conn: Connection, name: str, wait: float) -> tuple[bool, Any, Any]:
    """Try to take the lock on ``conn``; ``(got, release statement, its parameters)``."""
    if db.dialect == "postgresql":
        key = _pg_key(name)
        got = _pg_advisory_lock(conn, key, wait)
        return got, text("SELECT pg_advisory_unlock(:k)"), {"k": key}
    lock_name = _mysql_name(name)
    # Wait in short GET_LOCK steps: one long GET_LOCK would outlast the read timeout and
    # max_statement_time (db_timeout) that every statement on this engine has.
    deadline = time.monotonic() + wait
    while True:
        step = _MYSQL_LOCK_STEP_SECONDS if wait > 0 else 0
        got = conn.execute(_GET_LOCK, {"n": lock_name, "t": step}).scalar() == 1
        if got or time.monotonic() >= deadline:
            return got, text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name}


def _pg_advisory_lock(conn: Connection, key: int, wait: float) -> bool:
    if wait <= 0:
        return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
    ms = max(1, int(wait * 1000))
    # Restore the connection's own settings afterwards: pooled connections of create_engine()
    # carry the configured lock and statement timeouts (see db/engine.py); the statement
    # timeout must not end the wait before the lock timeout does.
    previous = conn.execute(_PG_CURRENT_TIMEOUTS).one()
    conn.execute(_PG_SET_TIMEOUTS, {"lock": f"{ms}ms", "stmt": f"{ms + 1000}ms"})
    try:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        got = True
    except SQLAlchemyError:
        got = False
    conn.execute(_PG_SET_TIMEOUTS, {"lock": previous[0], "stmt": previous[1]})
    return got


_GET_LOCK = text("SELECT GET_LOCK(:n, :t)")
_MYSQL_LOCK_STEP_SECONDS = 1
_PG_CURRENT_TIMEOUTS = text(
    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
)
_PG_SET_TIMEOUTS = text(
    "SELECT set_config('lock_timeout', :lock, false), set_config('statement_timeout', :stmt, false)"
)


@contextlib.contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[bool]:
    """``flock`` on ``path``. The holder removes the file before it unlocks, so no lock file is
    left beside the database; a waiter that was granted the lock on a file removed meanwhile
    (its path is gone or names a newer file) drops it and locks the current file instead."""
    deadline = time.monotonic() + wait
    while True:
        fd = _open_lock_file(path)
        got = _flock_until(fd, deadline)
        if not got or _still_at(fd, path):
            break
        os.close(fd)
    try:
        yield got
    finally:
        if got:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            _unlock(fd)
        os.close(fd)


def _open_lock_file(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"lock file {path}", exc.strerror or str(exc)) from exc


def _flock_until(fd: int, deadline: float) -> bool:
    import fcntl

    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_SQLITE_LOCK_POLL_SECONDS)


def _unlock(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _still_at(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
