"""Row locks in a fixed order, insert-if-absent, and named non-blocking locks.

Lock order (never violated, so two reservations can never deadlock on these rows):

1. the channel-day row (``youtube_daily_limits``) — one per transaction;
2. the quota-day rows (``youtube_quota_usage``), sorted by (api_project, quota_date, bucket).

A row that may not exist yet is created race-free: insert-if-absent (``ON CONFLICT DO NOTHING``
/ ``ON DUPLICATE KEY UPDATE``), then ``SELECT ... FOR UPDATE``. On SQLite, ``FOR UPDATE`` renders
as nothing; the write transaction's ``BEGIN IMMEDIATE`` already serialises writers.
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

from sqlalchemy import Table, select, text
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import StorageError
from .engine import Database, translate_error
from .models import DailyLimit, QuotaUsage

__all__ = ["insert_if_absent", "lock_day", "lock_quota_rows", "named_lock"]

logger = logging.getLogger(__name__)

_SQLITE_LOCK_POLL_SECONDS = 0.05
_MYSQL_LOCK_NAME_MAX = 64


def insert_if_absent(
    session: Session, dialect: str, table: Table, values: Mapping[str, Any]
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
    stmt = (
        select(DailyLimit)
        .where(DailyLimit.channel_id == channel_id, DailyLimit.publish_date == publish_date)
        .with_for_update()
    )
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        insert_if_absent(
            session,
            dialect,
            DailyLimit.__table__,  # type: ignore[arg-type]
            {
                "channel_id": channel_id,
                "publish_date": publish_date,
                "final_count": 0,
                "short_count": 0,
            },
        )
        row = session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
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
        stmt = (
            select(QuotaUsage)
            .where(
                QuotaUsage.api_project == api_project,
                QuotaUsage.quota_date == quota_date,
                QuotaUsage.bucket == bucket,
            )
            .with_for_update()
        )
        row = session.execute(stmt).scalar_one_or_none()
        if row is None:
            insert_if_absent(
                session,
                dialect,
                QuotaUsage.__table__,  # type: ignore[arg-type]
                {
                    "api_project": api_project,
                    "quota_date": quota_date,
                    "bucket": bucket,
                    "reserved": 0,
                    "used": 0,
                    "quota_limit": limits.get(bucket, 0),
                },
            )
            row = session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
        out[(quota_date, bucket)] = row
    return out


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
    """
    if db.dialect == "sqlite":
        with _file_lock(_sqlite_lock_path(db, name), wait) as got:
            yield got
        return
    operation = f"named lock {name!r}"
    try:
        conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise translate_error(exc, operation, db.lock_timeout) from exc
    try:
        try:
            if db.dialect == "postgresql":
                key = _pg_key(name)
                if wait > 0:
                    ms = max(1, int(wait * 1000))
                    conn.execute(
                        text("SELECT set_config('lock_timeout', :v, false)"), {"v": f"{ms}ms"}
                    )
                    try:
                        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                        got = True
                    except SQLAlchemyError:
                        got = False
                    conn.execute(text("SELECT set_config('lock_timeout', '0', false)"))
                else:
                    got = bool(
                        conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                    )
                release = text("SELECT pg_advisory_unlock(:k)")
                params: dict[str, Any] = {"k": key}
            else:
                lock_name = _mysql_name(name)
                got = (
                    conn.execute(
                        text("SELECT GET_LOCK(:n, :t)"), {"n": lock_name, "t": max(0, int(wait))}
                    ).scalar()
                    == 1
                )
                release = text("SELECT RELEASE_LOCK(:n)")
                params = {"n": lock_name}
        except SQLAlchemyError as exc:
            raise translate_error(exc, operation, db.lock_timeout) from exc
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(release, params)
                except SQLAlchemyError:
                    # Closing the connection below releases it on the server anyway.
                    logger.warning("could not release %s cleanly", operation, exc_info=True)
    finally:
        conn.close()


@contextlib.contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[bool]:
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"lock file {path}", exc.strerror or str(exc)) from exc
    try:
        deadline = time.monotonic() + wait
        got = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(_SQLITE_LOCK_POLL_SECONDS)
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
