"""The reservation transaction of ``schedule_video(preferred_time=...)`` as plain SQL.

Same rows, same locks in the same order, same checks, same statements, through the bare DB-API
driver (psycopg 3, PyMySQL or sqlite3) with no SQLAlchemy, no validation and no error mapping. It
is the baseline the library's throughput is divided by. Statement for statement, per transaction:

0. once per connection, as the library's ``create_engine`` does: the lock timeout
   (PostgreSQL ``SET lock_timeout``, MySQL ``SET SESSION innodb_lock_wait_timeout``; SQLite
   ``busy_timeout`` via the driver's ``timeout``), READ COMMITTED;
1. SQLite: ``BEGIN IMMEDIATE`` (PostgreSQL and MySQL begin implicitly);
2. the channel-day row, locked by its increment: PostgreSQL/SQLite ``UPDATE ... SET short_count
   = short_count + 1 ... RETURNING`` the counts (insert-if-absent + update again if missing);
   MySQL ``SELECT ... FOR UPDATE`` then ``UPDATE`` (no ``UPDATE ... RETURNING`` there);
3. the same for the quota-day row of the upload's Pacific quota day (``reserved + 1``,
   ``quota_limit``);
4. the limit checks on the returned counts (in Python; a refusal would roll back);
5. ``INSERT`` the schedule (UNIQUE(channel_id, slot_key) refuses a booked slot);
6. COMMIT.

``bench_schedule.py --show-sql`` prints the statements the library sends for one booking, to
compare with these.

    python benchmarks/bench_raw.py --db postgresql://postgres@127.0.0.1/bench --clients 8 --ops 200
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

from _common import (
    DEFAULT_DB,
    WorkerResult,
    emit,
    engine_label,
    first_bench_day,
    reset_database,
    run_processes,
    slot_for,
    summarise,
)
from sqlalchemy.engine import make_url

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.quota import quota_date_of

CHANNEL = "bench"
PROJECT = "default"
LOCK_TIMEOUT_MS = 10_000
UPLOAD_LEAD_TIME = timedelta(hours=1)  # SchedulerConfig's default, as in the library run
QUOTA_TZ = "America/Los_Angeles"


def _connect(url: str) -> tuple[Any, str]:
    u = make_url(url)
    kind = engine_label(url)
    if kind == "postgresql":
        import psycopg

        conn = psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password or "",
            dbname=u.database,
        )
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
        conn.commit()
        return conn, "%s"
    if kind == "mysql":
        import pymysql

        conn = pymysql.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            database=u.database,
            autocommit=False,
        )
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_MS // 1000}")
        return conn, "%s"
    conn = sqlite3.connect(u.database or ":memory:", timeout=LOCK_TIMEOUT_MS / 1000)
    conn.isolation_level = None
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn, "?"


def _ts(kind: str, when: datetime) -> Any:
    return when if kind == "postgresql" else when.astimezone(UTC).replace(tzinfo=None)


def quota_day(slot: datetime, now: datetime) -> date:
    """The library's quota day: Pacific date of the upload (publish time - upload lead time)."""
    return quota_date_of(max(now, slot - UPLOAD_LEAD_TIME), QUOTA_TZ)


def book(conn: Any, kind: str, p: str, slot: datetime, video_type: str) -> int:
    """One reservation transaction; returns the new schedule id."""
    day = slot.date()
    now = datetime.now(UTC)
    qday = quota_day(slot, now)
    upsert_day = {
        "postgresql": "INSERT INTO youtube_daily_limits VALUES ({p},{p},0,0) "
        "ON CONFLICT DO NOTHING",
        "sqlite": "INSERT INTO youtube_daily_limits VALUES ({p},{p},0,0) ON CONFLICT DO NOTHING",
        "mysql": "INSERT INTO youtube_daily_limits VALUES ({p},{p},0,0) "
        "ON DUPLICATE KEY UPDATE channel_id = channel_id",
    }[kind].format(p=p)
    upsert_quota = {
        "postgresql": "INSERT INTO youtube_quota_usage VALUES ({p},{p},'uploads',0,0,{p}) "
        "ON CONFLICT DO NOTHING",
        "sqlite": "INSERT INTO youtube_quota_usage VALUES ({p},{p},'uploads',0,0,{p}) "
        "ON CONFLICT DO NOTHING",
        "mysql": "INSERT INTO youtube_quota_usage VALUES ({p},{p},'uploads',0,0,{p}) "
        "ON DUPLICATE KEY UPDATE api_project = api_project",
    }[kind].format(p=p)
    fu = "" if kind == "sqlite" else " FOR UPDATE"
    col = f"{video_type}_count"
    cur = conn.cursor()
    try:
        if kind == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        add_day = (
            f"UPDATE youtube_daily_limits SET {col} = {col} + 1 "
            f"WHERE channel_id={p} AND publish_date={p}"
        )
        add_quota = (
            f"UPDATE youtube_quota_usage SET reserved = reserved + 1, quota_limit = {p} "
            f"WHERE api_project={p} AND quota_date={p} AND bucket='uploads'"
        )
        if kind == "mysql":
            # No UPDATE ... RETURNING: lock with SELECT ... FOR UPDATE, then update.
            sel_day = (
                f"SELECT final_count, short_count FROM youtube_daily_limits "
                f"WHERE channel_id={p} AND publish_date={p}{fu}"
            )
            cur.execute(sel_day, (CHANNEL, day))
            counts = cur.fetchone()
            if counts is None:
                cur.execute(upsert_day, (CHANNEL, day))
                cur.execute(sel_day, (CHANNEL, day))
                counts = cur.fetchone()
            cur.execute(add_day, (CHANNEL, day))
            sel_q = (
                f"SELECT reserved, used FROM youtube_quota_usage "
                f"WHERE api_project={p} AND quota_date={p} AND bucket='uploads'{fu}"
            )
            cur.execute(sel_q, (PROJECT, qday))
            quota = cur.fetchone()
            if quota is None:
                cur.execute(upsert_quota, (PROJECT, qday, 10**9))
                cur.execute(sel_q, (PROJECT, qday))
                quota = cur.fetchone()
            cur.execute(add_quota, (10**9, PROJECT, qday))
        else:
            # PostgreSQL and SQLite: the increment takes the lock and returns the counts.
            cur.execute(add_day + " RETURNING final_count, short_count", (CHANNEL, day))
            counts = cur.fetchone()
            if counts is None:
                cur.execute(upsert_day, (CHANNEL, day))
                cur.execute(add_day + " RETURNING final_count, short_count", (CHANNEL, day))
                counts = cur.fetchone()
            cur.execute(add_quota + " RETURNING reserved, used", (10**9, PROJECT, qday))
            quota = cur.fetchone()
            if quota is None:
                cur.execute(upsert_quota, (PROJECT, qday, 10**9))
                cur.execute(add_quota + " RETURNING reserved, used", (10**9, PROJECT, qday))
                quota = cur.fetchone()
        # The limit checks the library makes (never refusing here: the limits are huge).
        if max(counts) > 10**9 or quota[0] + quota[1] > 10**9:
            raise RuntimeError("over the limit")
        cols = (
            "channel_id, api_project, video_path, video_type, scheduled_publish_time, "
            "publish_date, quota_date, slot_key, metadata, upload_status, attempts, "
            "bytes_uploaded, completed_steps, reserved_quota, consumed_quota, "
            "created_at, updated_at"
        )
        values = (
            CHANNEL,
            PROJECT,
            "/tmp/bench.mp4",
            video_type,
            _ts(kind, slot),
            day,
            qday,
            _ts(kind, slot),
            json.dumps(VideoMetadata(title="bench").to_json()),
            "scheduled",
            0,
            0,
            "[]",
            json.dumps({"uploads": 1}),
            "{}",
            _ts(kind, now),
            _ts(kind, now),
        )
        marks = ",".join([p] * len(values))
        returning = " RETURNING id" if kind == "postgresql" else ""
        cur.execute(f"INSERT INTO youtube_schedules ({cols}) VALUES ({marks}){returning}", values)
        new_id = cur.fetchone()[0] if kind == "postgresql" else cur.lastrowid
        if kind == "sqlite":
            cur.execute("COMMIT")
        else:
            conn.commit()
        return int(new_id)
    except BaseException:
        if kind == "sqlite":
            if conn.in_transaction:
                cur.execute("ROLLBACK")
        else:
            conn.rollback()
        raise
    finally:
        cur.close()


def raw_worker(
    index: int, barrier: Barrier, url: str, ops: int, days: int, clients: int
) -> WorkerResult:
    """One client: ``ops`` raw reservations."""
    conn, p = _connect(url)
    kind = engine_label(url)
    day0 = first_bench_day()
    result = WorkerResult()
    barrier.wait()
    cpu0 = time.process_time()
    for i in range(ops):
        slot = slot_for(i * clients + index, days, day0)
        t0 = time.perf_counter()
        try:
            book(conn, kind, p, slot, "short")
        except Exception as exc:
            result.error(type(exc).__name__)
            continue
        result.latencies.append(time.perf_counter() - t0)
    result.cpu_s = time.process_time() - cpu0
    conn.close()
    return result


def run_raw(url: str, clients: int, ops: int, days: int) -> dict[str, Any]:
    """Reset the database, run the raw benchmark, return the summary."""
    reset_database(url)
    results, wall = run_processes(raw_worker, clients, (url, ops, days, clients))
    return summarise(
        results, wall, kind="raw-sql", engine=engine_label(url), clients=clients, ops=ops, days=days
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="scratch database URL (tables are wiped)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=200, help="reservations per client")
    parser.add_argument("--days", type=int, choices=(1, 31), default=1)
    args = parser.parse_args()
    emit(run_raw(args.db, args.clients, args.ops, args.days))


if __name__ == "__main__":
    main()
