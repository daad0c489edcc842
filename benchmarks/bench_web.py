"""Dashboard calendar: the month page with 10,000 schedules, server time per request.

    python benchmarks/bench_web.py [--database-url URL] [--schedules 10000] [--runs 20]

WIPES the scheduler tables of the database it is given. Inserts ``--schedules`` rows for one
channel spread over one month (statuses mixed), then requests ``/calendar?view=month`` through
the ASGI app in-process (Starlette's TestClient: no network, so the time is the server's:
routing, the database read, building the calendar and rendering the template) and prints the
median and p95 wall time as JSON, the CPU time of this process per request (PostgreSQL's own
work is in its server process, not counted there), the database read alone
(``ScheduleManager.calendar``) and the machine's load average (wall times on a busy machine
grow with the load). The month view lists 24 slots per day and summarises the rest by status
(the week view lists every one).
The target (issue 13): under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_DB, engine_label, open_config, reset_database
from sqlalchemy import insert

from langflix_scheduler.db.engine import create_engine
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.manager import ScheduleManager

STATUSES = ("scheduled",) * 6 + ("uploading", "completed", "failed", "needs_review")
MONTH = date(2030, 3, 1)  # 31 days


def fill(url: str, n: int) -> None:
    start = datetime.combine(MONTH, datetime.min.time(), tzinfo=UTC)
    step = timedelta(days=31) / n
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        at = (start + step * i).replace(microsecond=0)
        status = STATUSES[i % len(STATUSES)]
        active = status != "failed"
        rows.append(
            {
                "channel_id": "bench",
                "api_project": "default",
                "video_path": f"/videos/{i}.mp4",
                "video_type": "final" if i % 3 else "short",
                "scheduled_publish_time": at,
                "publish_date": at.date(),
                "quota_date": at.date(),
                "slot_key": at if active else None,
                "metadata": {"title": f"Lesson {i} & more"},
                "upload_status": status,
                "attempts": 0,
                "bytes_uploaded": 500 if status == "uploading" else 0,
                "bytes_total": 1000 if status == "uploading" else None,
                "completed_steps": [],
                "reserved_quota": {"uploads": 1},
                "consumed_quota": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    engine = create_engine(url)
    with engine.begin() as conn:
        for chunk in range(0, n, 1000):
            conn.execute(insert(Schedule.__table__), rows[chunk : chunk + 1000])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from starlette.testclient import TestClient

    from langflix_scheduler.web import create_app

    reset_database(args.database_url)
    fill(args.database_url, args.schedules)
    clock = datetime.combine(MONTH, datetime.min.time(), tzinfo=UTC) - timedelta(days=1)
    manager = ScheduleManager(open_config(args.database_url, channel="bench"), clock=lambda: clock)
    url = f"/calendar?view=month&channel=bench&date={MONTH.isoformat()}"
    with TestClient(create_app(manager, secret="bench")) as client:
        first = client.get(url)
        assert first.status_code == 200, first.text[:500]
        shown = first.text.count('class="st st-')
        times = []
        cpu = []
        for _ in range(args.runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            assert response.status_code == 200
        reads = []
        for _ in range(args.runs):
            started = time.perf_counter()
            manager.calendar(MONTH - timedelta(days=6), MONTH + timedelta(days=36), channel="bench")
            reads.append(time.perf_counter() - started)
    manager.close()
    times.sort()
    print(
        json.dumps(
            {
                "engine": engine_label(args.database_url),
                "schedules": args.schedules,
                "entries_on_page": shown,
                "page_kb": round(len(first.content) / 1024),
                "runs": args.runs,
                "median_ms": round(statistics.median(times) * 1000, 1),
                "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 1),
                "cpu_median_ms": round(statistics.median(cpu) * 1000, 1),
                "calendar_read_median_ms": round(statistics.median(reads) * 1000, 1),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "target_ms": 200,
            }
        )
    )


if __name__ == "__main__":
    main()
