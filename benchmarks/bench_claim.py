"""Claim-and-complete throughput of ``UploadProcessor`` with a no-op uploader, P OS processes.

N due schedules are bulk-inserted over C channels (counters rebuilt with ``recalculate_quota``,
limits raised so nothing is refused). P spawned processes each build a ``ScheduleManager`` and an
``UploadProcessor`` with :class:`NoopUploader` (returns at once: no network, no file read), wait
on a shared barrier, then call ``run_once()`` in a loop until a run claims nothing. The clock
runs from the barrier to the last process's end; throughput = completed schedules / wall time.

Double claims are checked three ways, and the script exits non-zero if any check fails:

* the no-op uploader of every process records which schedule it was asked to upload; the union
  of those records must name every schedule exactly once;
* the ``processor_runs`` rows must add up to exactly N claims and N uploads;
* every schedule must end ``completed`` with ``attempts`` = 0 and no lease left.

    python benchmarks/bench_claim.py --db postgresql://postgres@127.0.0.1/bench --processors 4
    python benchmarks/bench_claim.py --db mysql+pymysql://root@127.0.0.1/bench --processors 4

Every benchmark WIPES the scheduler tables of the database it is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from typing import Any

from _common import DEFAULT_DB, emit, engine_label, open_config, reset_database, run_processes
from sqlalchemy import func, insert, select, text

from langflix_scheduler import ScheduleManager
from langflix_scheduler.db.models import ProcessorRun, Schedule
from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    StepCallback,
    UploadRequest,
    UploadResult,
    UploadStep,
)

VIDEO_PREFIX = "/bench/claim/"


class NoopUploader:
    """An :class:`~langflix_scheduler.youtube.uploader.Uploader` that returns at once.

    It records every request it gets (the schedule's video path names the schedule), so a
    schedule handed to two uploads, in any process, shows up twice. With ``report_insert`` it
    also reports the ``videos.insert`` step the way the real uploader does, which makes the
    processor persist the video id in its own fenced write (one more transaction per upload).
    """

    def __init__(self, *, report_insert: bool = False) -> None:
        self.seen: list[str] = []
        self.report_insert = report_insert

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        self.seen.append(request.video_path)  # list.append is atomic under the GIL
        video_id = "noop" + request.video_path.rsplit("/", 1)[-1].split(".")[0]
        if self.report_insert and on_step is not None:
            on_step(UploadStep.INSERT, video_id)
        return UploadResult(
            video_id=video_id,
            operations=(UploadStep.INSERT.value,),
            privacy_status="private",
            publish_at=None,
            bytes_sent=0,
        )


@dataclass
class ClaimResult:
    """What one processor process did."""

    uploads: list[str] = field(default_factory=list)
    runs: int = 0
    claimed: int = 0
    uploaded: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float = 0.0
    wall_s: float = 0.0


def processor_worker(
    index: int,
    barrier: Barrier,
    url: str,
    threads: int,
    batch: int,
    report_insert: bool,
) -> ClaimResult:
    """One processor process: run_once until a run claims nothing."""
    logging.getLogger("langflix_scheduler").setLevel(logging.WARNING)
    result = ClaimResult()
    uploader = NoopUploader(report_insert=report_insert)
    with (
        ScheduleManager(open_config(url, channel="bench")) as manager,
        UploadProcessor(
            manager,
            uploader,
            worker_id=f"bench-{index}",
            max_concurrent_uploads=threads,
            per_channel_limit=10_000,
            batch_size=batch,
        ) as processor,
    ):
        manager.get_next_available_slot("short")  # warm the pool and the imports
        barrier.wait()
        cpu0, t0 = time.process_time(), time.perf_counter()
        while True:
            report = processor.run_once()
            result.runs += 1
            result.claimed += report.claimed
            result.uploaded += report.uploaded
            result.failed += report.failed
            if report.error:
                result.errors[report.error] = result.errors.get(report.error, 0) + 1
            if report.claimed == 0:
                break
        result.cpu_s = time.process_time() - cpu0
        result.wall_s = time.perf_counter() - t0
    result.uploads = uploader.seen
    return result


def populate(url: str, schedules: int, channels: int) -> None:
    """``schedules`` due schedules over ``channels`` channels, counters rebuilt."""
    now = datetime.now(UTC).replace(microsecond=0)
    meta = VideoMetadata(title="bench").to_json()
    rows: list[dict[str, Any]] = []
    for i in range(schedules):
        # Publish within the next half hour: due now (upload lead time is one hour).
        publish = now + timedelta(minutes=30) - timedelta(seconds=i // channels)
        rows.append(
            {
                "channel_id": f"ch{i % channels:03d}",
                "api_project": "default",
                "video_path": f"{VIDEO_PREFIX}{i}.mp4",
                "video_type": "short",
                "scheduled_publish_time": publish,
                "publish_date": publish.date(),
                "quota_date": (publish - timedelta(hours=9)).date(),
                "slot_key": publish,
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
        )
    with ScheduleManager(open_config(url, channel="bench")) as manager:
        with manager._db.engine.begin() as conn:
            for i in range(0, len(rows), 1000):
                conn.execute(insert(Schedule.__table__), rows[i : i + 1000])
        logging.getLogger("langflix_scheduler.manager").setLevel(logging.ERROR)
        manager.recalculate_quota()
        if manager._db.dialect == "postgresql":
            with manager._db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as conn:
                conn.execute(text("ANALYZE"))


def verify(url: str, schedules: int, results: list[ClaimResult]) -> dict[str, Any]:
    """The three double-claim checks; returns what they found."""
    uploads = Counter(path for r in results for path in r.uploads)
    twice = {p: n for p, n in uploads.items() if n > 1}
    missing = schedules - len(uploads)
    with (
        ScheduleManager(open_config(url, channel="bench")) as manager,
        manager._db.engine.connect() as conn,
    ):
        statuses = dict(
            conn.execute(
                select(Schedule.upload_status, func.count()).group_by(Schedule.upload_status)
            ).all()
        )
        bad_rows = conn.execute(
            select(func.count()).where(
                (Schedule.attempts != 0)
                | Schedule.lease_owner.is_not(None)
                | (Schedule.upload_status != "completed")
            )
        ).scalar_one()
        claimed, uploaded = conn.execute(
            select(func.sum(ProcessorRun.claimed), func.sum(ProcessorRun.uploaded))
        ).one()
    return {
        "uploads_recorded": sum(uploads.values()),
        "schedules_uploaded_twice": len(twice),
        "schedules_never_uploaded": missing,
        "processor_runs_claimed": int(claimed or 0),
        "processor_runs_uploaded": int(uploaded or 0),
        "statuses": statuses,
        "rows_not_cleanly_completed": int(bad_rows),
        "ok": not twice
        and missing == 0
        and claimed == schedules
        and uploaded == schedules
        and bad_rows == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="scratch database URL (tables are wiped)")
    parser.add_argument("--processors", type=int, default=4, help="processor OS processes")
    parser.add_argument("--schedules", type=int, default=4000, help="due schedules to drain")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8, help="max_concurrent_uploads")
    parser.add_argument("--batch", type=int, default=None, help="batch_size (default: threads)")
    parser.add_argument(
        "--report-insert",
        action="store_true",
        help="the no-op uploader reports the insert step (one more fenced write per upload)",
    )
    args = parser.parse_args()
    reset_database(args.db)
    populate(args.db, args.schedules, args.channels)
    results, wall = run_processes(
        processor_worker,  # type: ignore[arg-type]
        args.processors,
        (args.db, args.threads, args.batch or args.threads, args.report_insert),
    )
    check = verify(args.db, args.schedules, results)
    completed = check["statuses"].get("completed", 0)
    emit(
        {
            "kind": "claim-and-complete",
            "engine": engine_label(args.db),
            "processors": args.processors,
            "threads_per_processor": args.threads,
            "channels": args.channels,
            "schedules": args.schedules,
            "report_insert": args.report_insert,
            "wall_s": round(wall, 3),
            "schedules_per_s": round(completed / wall, 1) if wall > 0 else None,
            "client_cpu_ms_per_schedule": round(
                sum(r.cpu_s for r in results) / max(1, completed) * 1000, 3
            ),
            "per_processor_claimed": [r.claimed for r in results],
            "runs": sum(r.runs for r in results),
            "errors": {k: v for r in results for k, v in r.errors.items()},
            "check": check,
        }
    )
    if not check["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
