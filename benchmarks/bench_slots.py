"""Latency of ``ScheduleManager.get_next_available_slot`` over a 90-day horizon, and proof that it
is ONE query.

For each database given with ``--db`` (repeatable) and each size in ``--counts``, the tables are
wiped, N schedules are bulk-inserted for the searched channel, the counters are rebuilt with
``recalculate_quota()``, and then ``get_next_available_slot("short")`` is timed ``--repeat``
times (warm pool, fixed clock). One extra call runs with a SQLAlchemy ``before_cursor_execute``
listener that records every statement sent; the script prints how many there were (transaction
control such as SQLite's ``BEGIN`` excluded) and the statement itself, and on PostgreSQL the
``EXPLAIN (ANALYZE, BUFFERS)`` of that very statement with its parameters.

The channel is configured densely (a short slot every 10 minutes, 144 a day, daily limit 144) so
that 10,000 schedules fit in the horizon: the default cadence (5 shorts + 2 finals a day) holds at
most 630 active schedules of one channel in 90 days. Layouts (``--layout``):

* ``front``: the earliest N slots are booked, as auto-scheduling does (days full from the start);
  the free slot is far out and the full days are skipped in SQL.
* ``scattered``: N slots picked at random over the whole horizon (days partly full); the first
  day has room, but every booked slot of the horizon is a candidate row.
* ``others``: N schedules spread over 100 OTHER channels, none on the searched one (the table is
  big, the channel is empty): shows the indexes keep the query on the channel's rows.

    python benchmarks/bench_slots.py --db postgresql://postgres@127.0.0.1/bench \\
        --db mysql+pymysql://root@127.0.0.1/bench --db sqlite:////tmp/slots.db
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from _common import (
    DEFAULT_DB,
    OPEN_POLICY,
    emit,
    engine_label,
    first_bench_day,
    percentile,
    reset_database,
)
from sqlalchemy import event, insert

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoType
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.domain import VideoMetadata

CHANNEL = "bench"
HORIZON_DAYS = 90
SLOT_EVERY = timedelta(minutes=10)
SLOTS_PER_DAY = 144
DENSE_TIMES = tuple(
    dtime(hour=m // 60, minute=m % 60) for m in range(0, 24 * 60, int(SLOT_EVERY.seconds // 60))
)
TXN_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def dense_config(url: str) -> SchedulerConfig:
    """A channel with 144 short slots a day over a 90-day horizon; nothing refused by quota."""
    return SchedulerConfig(
        database_url=url,
        channel=CHANNEL,
        timezone="UTC",
        publish_times={VideoType.SHORT: DENSE_TIMES, VideoType.FINAL: (dtime(12, 5),)},
        daily_limits={VideoType.SHORT: SLOTS_PER_DAY, VideoType.FINAL: 1},
        quota_policy=OPEN_POLICY,
        horizon_days=HORIZON_DAYS,
        min_lead_time=timedelta(0),
        lock_timeout=10.0,
    )


def slot_instants(now: datetime) -> list[datetime]:
    """Every configured short slot in the horizon, in order."""
    day0 = now.date()
    return [
        datetime.combine(day0 + timedelta(days=d), t, tzinfo=UTC)
        for d in range(HORIZON_DAYS)
        for t in DENSE_TIMES
        if now <= datetime.combine(day0 + timedelta(days=d), t, tzinfo=UTC)
    ]


def rows_for(layout: str, count: int, now: datetime, seed: int) -> list[dict[str, Any]]:
    """Schedule rows (active, ``scheduled``) for the chosen layout."""
    slots = slot_instants(now)
    if count > len(slots):
        raise SystemExit(f"at most {len(slots)} schedules fit in the horizon")
    rng = random.Random(seed)
    if layout == "front":
        chosen = [(CHANNEL, s) for s in slots[:count]]
    elif layout == "scattered":
        chosen = [(CHANNEL, s) for s in sorted(rng.sample(slots, count))]
    else:
        chosen = [(f"other-{i % 100:03d}", slots[(i * 7) % len(slots)]) for i in range(count)]
    meta = VideoMetadata(title="bench").to_json()
    return [
        {
            "channel_id": channel,
            "api_project": "default",
            "video_path": f"/videos/{i}.mp4",
            "video_type": "short",
            "scheduled_publish_time": slot,
            "publish_date": slot.date(),
            "quota_date": (slot - timedelta(hours=9)).date(),
            "slot_key": slot,
            "metadata": meta,
            "upload_status": "scheduled",
            "attempts": 0,
            "bytes_uploaded": 0,
            "completed_steps": [],
            "reserved_quota": {"uploads": 1},
            "consumed_quota": {},
            "created_at": now,
            "updated_at": now,
        }
        for i, (channel, slot) in enumerate(chosen)
    ]


def populate(manager: ScheduleManager, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert, then rebuild every counter row from the schedules (the library's own tool).

    ``recalculate_quota`` logs each counter it corrects; here every one is expected, so quiet.
    """
    logging.getLogger("langflix_scheduler.manager").setLevel(logging.ERROR)
    engine = manager._db.engine
    with engine.begin() as conn:
        for i in range(0, len(rows), 1000):
            conn.execute(insert(Schedule.__table__), list(rows[i : i + 1000]))
    manager.recalculate_quota()
    if manager._db.dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum would do after a bulk load
    elif manager._db.dialect == "mysql":
        with engine.connect() as conn:
            for table in ("youtube_schedules", "youtube_daily_limits", "youtube_quota_usage"):
                conn.exec_driver_sql(f"ANALYZE TABLE {table}")


def capture(manager: ScheduleManager) -> tuple[datetime, list[tuple[str, Any]]]:
    """Run one search with a statement listener; returns the slot and the statements sent."""
    seen: list[tuple[str, Any]] = []
    engine = manager._db.engine

    def listener(
        _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool
    ) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        slot = manager.get_next_available_slot("short")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return slot, seen


def explain(manager: ScheduleManager, statement: str, params: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the captured statement with its parameters (PostgreSQL)."""
    with manager._db.engine.connect() as conn:
        result = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        lines = [str(r[0]) for r in result]
        conn.rollback()
    return lines


def run_one(url: str, layout: str, count: int, repeat: int, show: bool) -> dict[str, Any]:
    """Reset, populate, time; returns the summary for one (engine, layout, count)."""
    reset_database(url)
    now = datetime.combine(first_bench_day(), dtime(0, 0), tzinfo=UTC) + timedelta(minutes=1)
    with ScheduleManager(dense_config(url), clock=lambda: now) as manager:
        populate(manager, rows_for(layout, count, now, seed=count))
        slot, statements = capture(manager)
        queries = [s for s in statements if not s[0].lstrip().upper().startswith(TXN_CONTROL)]
        latencies = []
        cpu0 = time.process_time()
        for _ in range(repeat):
            t0 = time.perf_counter()
            manager.get_next_available_slot("short")
            latencies.append(time.perf_counter() - t0)
        cpu_ms = (time.process_time() - cpu0) / repeat * 1000
        latencies.sort()
        out: dict[str, Any] = {
            "engine": engine_label(url),
            "layout": layout,
            "existing_schedules": count,
            "next_slot": slot.isoformat(),
            "queries_per_call": len(queries),
            "calls": repeat,
            "p50_ms": round(percentile(latencies, 50) * 1000, 3),
            "p95_ms": round(percentile(latencies, 95) * 1000, 3),
            "p99_ms": round(percentile(latencies, 99) * 1000, 3),
            "mean_ms": round(sum(latencies) / len(latencies) * 1000, 3),
            "client_cpu_ms": round(cpu_ms, 3),
        }
        if engine_label(url) == "postgresql" and queries:
            plan = explain(manager, queries[0][0], queries[0][1])
            timing = [line for line in plan if line.startswith("Execution Time")]
            out["server_execution"] = timing[0] if timing else None
            if show:
                out["explain"] = plan
        if show and queries:
            out["statement"] = " ".join(queries[0][0].split())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", action="append", help="scratch database URL (tables are wiped); repeatable"
    )
    parser.add_argument("--counts", default="0,1000,10000", help="existing schedules, comma list")
    parser.add_argument("--layout", choices=("front", "scattered", "others", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per case")
    parser.add_argument(
        "--show-sql", action="store_true", help="print the statement (and EXPLAIN on PostgreSQL)"
    )
    args = parser.parse_args()
    layouts = ("front", "scattered", "others") if args.layout == "all" else (args.layout,)
    counts = [int(c) for c in args.counts.split(",")]
    results = []
    for url in args.db or [DEFAULT_DB]:
        for layout in layouts:
            for count in counts:
                if count == 0 and layout != layouts[0]:
                    continue  # empty is the same for every layout
                show = args.show_sql and count == max(counts)
                results.append(run_one(url, layout, count, args.repeat, show))
    emit({"benchmark": "get_next_available_slot", "horizon_days": HORIZON_DAYS, "runs": results})


if __name__ == "__main__":
    main()
