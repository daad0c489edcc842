"""Plain-SQL views of the scheduler's tables, independent of the library's ORM and sessions.

Tests use these to check what was really written, on every engine (SQLite returns dates and
timestamps as strings and JSON as text; MySQL returns naive UTC datetimes; PostgreSQL aware ones).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from langflix_scheduler.db.models import DailyLimit, ProcessorRun, QuotaUsage, Schedule

ACTIVE = ("scheduled", "uploading", "completed", "needs_review")
#: Statuses whose reserved quota is still held.
RESERVING = ("scheduled", "uploading", "needs_review")


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_utc(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (naive storage is UTC by design)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)


@dataclass(frozen=True)
class Row:
    id: int
    channel_id: str
    api_project: str
    video_type: str
    scheduled_publish_time: datetime
    publish_date: date
    quota_date: date
    slot_key: datetime | None
    upload_status: str
    reserved_quota: dict[str, int]
    video_path: str


class RawDB:
    """Plain SQL on one database URL (its own engine, no library code)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def execute(self, sql: str, **params: Any) -> None:
        with self.connect() as conn:
            conn.execute(text(sql), params)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    # -- typed reads through the library's tables (aware datetimes, JSON decoded) --------------

    def row(self, schedule_id: int) -> dict[str, Any]:
        """One ``youtube_schedules`` row as a dict of column -> value."""
        with self.connect() as conn:
            row = conn.execute(select(Schedule).where(Schedule.id == schedule_id)).mappings().one()
            return dict(row)

    def rows(self) -> list[dict[str, Any]]:
        """Every ``youtube_schedules`` row, by id."""
        with self.connect() as conn:
            return [
                dict(r) for r in conn.execute(select(Schedule).order_by(Schedule.id)).mappings()
            ]

    def statuses(self, ids: Sequence[int] | None = None) -> Counter[str]:
        """How many rows (of ``ids``, or all) are in each status."""
        rows = self.rows()
        return Counter(r["upload_status"] for r in rows if ids is None or r["id"] in ids)

    def quota_by_day(self) -> dict[tuple[Any, str], tuple[int, int]]:
        """``(quota_date, bucket) -> (reserved, used)`` over every project."""
        with self.connect() as conn:
            return {
                (q.quota_date, q.bucket): (q.reserved, q.used)
                for q in conn.execute(select(QuotaUsage)).all()
            }

    def day_count_pairs(self) -> dict[tuple[str, Any], tuple[int, int]]:
        """``(channel, day) -> (final_count, short_count)``."""
        with self.connect() as conn:
            return {
                (d.channel_id, d.publish_date): (d.final_count, d.short_count)
                for d in conn.execute(select(DailyLimit)).all()
            }

    def runs(self) -> list[dict[str, Any]]:
        """Every ``processor_runs`` row, by id."""
        with self.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(select(ProcessorRun).order_by(ProcessorRun.id)).mappings()
            ]

    # -- plain SQL --------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Every table in the database (reflected), except Alembic's bookkeeping."""
        names = inspect(self.engine).get_table_names()
        return sorted(n for n in names if n != "alembic_version")

    def counts(self) -> dict[str, int]:
        with self.connect() as conn:
            return {
                t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                for t in self.tables()
            }

    def schedules(self) -> list[Row]:
        with self.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, channel_id, api_project, video_type, scheduled_publish_time,"
                    " publish_date, quota_date, slot_key, upload_status, reserved_quota,"
                    " video_path FROM youtube_schedules ORDER BY id"
                )
            ).all()
        out = []
        for r in rows:
            publish = as_utc(r[4])
            assert publish is not None
            out.append(
                Row(
                    id=r[0],
                    channel_id=r[1],
                    api_project=r[2],
                    video_type=r[3],
                    scheduled_publish_time=publish,
                    publish_date=as_date(r[5]),
                    quota_date=as_date(r[6]),
                    slot_key=as_utc(r[7]),
                    upload_status=r[8],
                    reserved_quota={k: int(v) for k, v in (as_json(r[9]) or {}).items()},
                    video_path=r[10],
                )
            )
        return out

    def day_counts(self) -> dict[tuple[str, date], dict[str, int]]:
        with self.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT channel_id, publish_date, final_count, short_count"
                    " FROM youtube_daily_limits"
                )
            ).all()
        return {(r[0], as_date(r[1])): {"final": r[2], "short": r[3]} for r in rows}

    def quota(self) -> dict[tuple[str, date, str], dict[str, int]]:
        with self.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT api_project, quota_date, bucket, reserved, used, quota_limit"
                    " FROM youtube_quota_usage"
                )
            ).all()
        return {
            (r[0], as_date(r[1]), r[2]): {"reserved": r[3], "used": r[4], "limit": r[5]}
            for r in rows
        }

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, for before/after equality checks."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.connect() as conn:
            for t in self.tables():
                rows = conn.execute(text(f"SELECT * FROM {t}")).all()
                out[t] = sorted((tuple(str(v) for v in r) for r in rows), key=repr)
        return out

    # -- invariants ------------------------------------------------------------------------------

    def check_invariants(
        self,
        *,
        daily_limits: Mapping[str, int],
        bucket_limits: Mapping[str, int],
    ) -> list[Row]:
        """Assert the scheduler's invariants from the raw tables; return the schedules."""
        rows = self.schedules()
        active = [r for r in rows if r.slot_key is not None]

        # Active rows have slot_key == publish time, and inactive ones have none.
        for r in rows:
            if r.upload_status in ACTIVE:
                assert r.slot_key == r.scheduled_publish_time, r
            else:
                assert r.slot_key is None, r

        # No (channel, slot_key) booked twice (also checked with GROUP BY in SQL).
        with self.connect() as conn:
            dupes = conn.execute(
                text(
                    "SELECT channel_id, slot_key, COUNT(*) FROM youtube_schedules"
                    " WHERE slot_key IS NOT NULL GROUP BY channel_id, slot_key"
                    " HAVING COUNT(*) > 1"
                )
            ).all()
        assert dupes == []
        assert len({(r.channel_id, r.slot_key) for r in active}) == len(active)

        # Per-type daily limits hold, and the counters equal a recount.
        recount: Counter[tuple[str, date, str]] = Counter(
            (r.channel_id, r.publish_date, r.video_type) for r in active
        )
        for (ch, day, vtype), n in recount.items():
            assert n <= daily_limits[vtype], (ch, day, vtype, n)
        counters = self.day_counts()
        for (ch, day), c in counters.items():
            for vtype in ("final", "short"):
                assert c[vtype] == recount.get((ch, day, vtype), 0), (ch, day, vtype, c)
        for ch, day, _ in recount:
            assert (ch, day) in counters

        # Quota counters equal the reserved quota of scheduled/uploading/needs_review rows; none
        # over limit.
        reserved: Counter[tuple[str, date, str]] = Counter()
        for r in rows:
            if r.upload_status in RESERVING:
                for bucket, amount in r.reserved_quota.items():
                    reserved[(r.api_project, r.quota_date, bucket)] += amount
        quota = self.quota()
        for key, q in quota.items():
            assert q["reserved"] == reserved.get(key, 0), (key, q)
            assert q["reserved"] + q["used"] <= bucket_limits[key[2]], (key, q)
        for key, amount in reserved.items():
            if amount:
                assert key in quota, key
        return rows
