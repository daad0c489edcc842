"""Throughput and latency of ``ScheduleManager.schedule_video`` from N concurrent processes.

Limits are raised so nothing is refused; every call books an exact, unique time
(``preferred_time``), either all on ONE channel day (``--days 1``: every transaction locks the
same counter row, the hot-row case) or spread over 31 days. With ``--raw`` the same reservation
transaction runs as plain SQL (``bench_raw.py``) on the same database in the same run, and the
library's overhead is reported as a ratio.

    python benchmarks/bench_schedule.py --db postgresql://postgres@127.0.0.1/bench \\
        --clients 8 --ops 200 --days 1 --raw
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_DB,
    WorkerResult,
    emit,
    engine_label,
    first_bench_day,
    open_config,
    reset_database,
    run_processes,
    slot_for,
    summarise,
)
from bench_raw import run_raw

from langflix_scheduler import ScheduleManager, SchedulerError


class _RetryCounter(logging.Handler):
    """Counts the deadlock retries the library logs."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "deadlock, retry" in record.getMessage():
            self.count += 1


def _videos(folder: str, index: int, ops: int) -> list[str]:
    """``ops`` small files of distinct content for client ``index`` (each booking is a new video:
    the same file twice would be a replay or a duplicate)."""
    paths = []
    for i in range(ops):
        path = Path(folder) / f"c{index}_{i}.mp4"
        path.write_bytes(f"{index}:{i}:".encode().ljust(1024, b"\x00"))
        paths.append(str(path))
    return paths


def schedule_worker(
    index: int, barrier: Barrier, url: str, ops: int, days: int, clients: int, folder: str
) -> WorkerResult:
    """One client: ``ops`` calls of schedule_video with exact unique times, one file each."""
    counter = _RetryCounter()
    engine_logger = logging.getLogger("langflix_scheduler.db.engine")
    engine_logger.addHandler(counter)
    engine_logger.setLevel(logging.INFO)
    engine_logger.propagate = False
    day0 = first_bench_day()
    result = WorkerResult()
    videos = _videos(folder, index, ops)
    with ScheduleManager(open_config(url, channel="bench")) as manager:
        manager.get_next_available_slot("short")  # warm the pool and the imports
        barrier.wait()
        cpu0 = time.process_time()
        for i in range(ops):
            slot = slot_for(i * clients + index, days, day0)
            t0 = time.perf_counter()
            try:
                manager.schedule_video(videos[i], "short", preferred_time=slot)
            except SchedulerError as exc:
                result.error(type(exc).__name__)
                continue
            result.latencies.append(time.perf_counter() - t0)
        result.cpu_s = time.process_time() - cpu0
    result.retries = counter.count
    return result


def show_sql(url: str) -> list[str]:
    """The statements the library sends for one ``schedule_video(preferred_time=...)``.

    Captured with a ``before_cursor_execute`` listener on a fresh database, for a day whose
    counter rows already exist (the steady state of the benchmark).
    """
    from sqlalchemy import event

    reset_database(url)
    day0 = first_bench_day()
    with tempfile.TemporaryDirectory() as tmp:
        first, video = _videos(tmp, 0, 2)
        with ScheduleManager(open_config(url, channel="bench")) as manager:
            manager.schedule_video(first, "short", preferred_time=slot_for(0, 1, day0))
            seen: list[str] = []

            def listener(*args: Any) -> None:
                seen.append(" ".join(str(args[2]).split()))

            event.listen(manager._db.engine, "before_cursor_execute", listener)
            manager.schedule_video(video, "short", preferred_time=slot_for(1, 1, day0))
            event.remove(manager._db.engine, "before_cursor_execute", listener)
    return seen


def run_library(url: str, clients: int, ops: int, days: int) -> dict[str, Any]:
    """Reset the database, run the library benchmark, return the summary."""
    reset_database(url)
    with tempfile.TemporaryDirectory() as tmp:
        results, wall = run_processes(schedule_worker, clients, (url, ops, days, clients, tmp))
    return summarise(
        results, wall, kind="library", engine=engine_label(url), clients=clients, ops=ops, days=days
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="scratch database URL (tables are wiped)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=200, help="calls per client")
    parser.add_argument("--days", type=int, choices=(1, 31), default=1)
    parser.add_argument("--raw", action="store_true", help="also run bench_raw.py and the ratio")
    parser.add_argument(
        "--show-sql", action="store_true", help="print the library's statements for one booking"
    )
    args = parser.parse_args()
    if args.show_sql:
        emit({"library_statements_per_booking": show_sql(args.db)})
        return
    lib = run_library(args.db, args.clients, args.ops, args.days)
    out: dict[str, Any] = {"library": lib}
    if args.raw:
        raw = run_raw(args.db, args.clients, args.ops, args.days)
        out["raw"] = raw
        if raw["ops_per_s"]:
            out["ratio_library_to_raw"] = round(lib["ops_per_s"] / raw["ops_per_s"], 3)
    emit(out)


if __name__ == "__main__":
    main()
