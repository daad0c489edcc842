"""Shared plumbing for the benchmark scripts: database reset, process fan-out, statistics.

Every benchmark WIPES the langflix-scheduler tables of the database it is given: point it at a
scratch database.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db import migrate
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.quota import QuotaPolicy

DEFAULT_DB = "sqlite:////tmp/langflix-bench.db"
UNLIMITED = 10**9

# Raised limits so that nothing is refused: the benchmarks measure locking, not policy.
OPEN_POLICY = QuotaPolicy(
    name="bench-unlimited",
    buckets={"uploads": UNLIMITED, "shared": UNLIMITED},
    costs={"videos.insert": ("uploads", 1), "thumbnails.set": ("shared", 50)},
)


def open_config(url: str, **overrides: Any) -> SchedulerConfig:
    """A configuration that refuses nothing (huge daily limits and quota)."""
    values: dict[str, Any] = {
        "database_url": url,
        "timezone": "UTC",
        "daily_limits": {"final": UNLIMITED, "short": UNLIMITED},
        "quota_policy": OPEN_POLICY,
        "min_lead_time": timedelta(0),
        "horizon_days": 90,
        "lock_timeout": 10.0,
    }
    values.update(overrides)
    return SchedulerConfig(**values)


def reset_database(url: str) -> None:
    """Drop and recreate the schema (Alembic downgrade base + upgrade head)."""
    db = Database(create_engine(url), lock_timeout=30)
    try:
        if migrate.current_revision(db) is not None:
            migrate.downgrade(db, "base")
        migrate.upgrade(db)
    finally:
        db.dispose()


def engine_label(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql``."""
    head = url.split(":", 1)[0].split("+", 1)[0]
    return "mysql" if head == "mariadb" else head


def first_bench_day() -> date:
    """Tomorrow (UTC): every booking lands in the future without waiting for a lead time."""
    return (datetime.now(UTC) + timedelta(days=1)).date()


def slot_for(index: int, days: int, day0: date) -> datetime:
    """A unique instant for booking ``index``: all on one day (days=1) or spread over ``days``."""
    day = day0 + timedelta(days=index % days)
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=index // days)


@dataclass
class WorkerResult:
    """What one benchmark process measured."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    cpu_s: float = 0.0  # CPU time of this client process over the timed loop

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1


def _child(
    target: Callable[..., WorkerResult], index: int, barrier: Any, queue: Any, args: Sequence[Any]
) -> None:
    try:
        queue.put((index, target(index, barrier, *args), None))
    except BaseException as exc:
        barrier.abort()
        queue.put((index, None, f"{type(exc).__name__}: {exc}"))


def run_processes(
    target: Callable[..., WorkerResult], clients: int, args: Sequence[Any]
) -> tuple[list[WorkerResult], float]:
    """Run ``target(client_index, barrier, *args)`` in ``clients`` spawned processes at once.

    Every process calls ``barrier.wait()`` when ready; the clock starts when all are. Returns the
    results and the wall time from the shared start to the last finish.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(target, i, barrier, queue, tuple(args)))
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=600)
        started = time.perf_counter()
        results: list[WorkerResult] = []
        for _ in procs:
            _, result, error = queue.get(timeout=3600)
            if error is not None:
                raise RuntimeError(f"benchmark worker failed: {error}")
            results.append(result)
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return results, wall


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summarise(results: Sequence[WorkerResult], wall: float, **labels: Any) -> dict[str, Any]:
    """Throughput and latency figures (milliseconds) of one run."""
    lat = sorted(x for r in results for x in r.latencies)
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    ok = len(lat)
    return {
        **labels,
        "ok": ok,
        "wall_s": round(wall, 3),
        "ops_per_s": round(ok / wall, 1) if wall > 0 else None,
        "p50_ms": round(percentile(lat, 50) * 1000, 2),
        "p95_ms": round(percentile(lat, 95) * 1000, 2),
        "p99_ms": round(percentile(lat, 99) * 1000, 2),
        "median_ms": round(statistics.median(lat) * 1000, 2) if lat else None,
        # Client-side CPU per successful call: the library's own overhead, much less sensitive
        # to a busy machine than wall-clock throughput.
        "client_cpu_ms_per_op": round(sum(r.cpu_s for r in results) / ok * 1000, 3) if ok else None,
        "lock_timeouts": errors.get("LockTimeoutError", 0),
        "retries": sum(r.retries for r in results),
        "errors": errors,
    }


def emit(data: dict[str, Any]) -> None:
    """Print one JSON document to stdout."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def as_dict(obj: Any) -> dict[str, Any]:
    """Dataclass to dict (for JSON)."""
    return asdict(obj)
