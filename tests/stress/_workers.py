"""Process targets for the stress tests (imported by the ``forkserver`` before it forks).

Everything here runs in child processes started from a ``forkserver`` that preloaded this
module, so each child starts in milliseconds instead of importing SQLAlchemy, the Google client
and the library again (about a CPU-second per process on a small machine).

* :func:`hammer_main`: a long-lived racer that runs one :class:`HammerTask` per round;
* :func:`chaos_processor_main`: one upload processor with the real ``YouTubeUploader`` talking to
  the test process's ``FakeYouTube``, killed at random by the test.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from google.oauth2.credentials import Credentials

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.errors import SchedulerError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.quota import QuotaPolicy
from langflix_scheduler.youtube.google import YouTubeUploader

CHUNK = 256 * 1024


class FixedClock:
    """A picklable clock that always answers ``at``."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


# -- the hammer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One ``schedule_video`` call: automatic (``preferred`` None) or an exact instant."""

    channel: str
    video_type: str
    preferred: datetime | None


@dataclass(frozen=True)
class HammerTask:
    """One racer's attempts for one round, and the configuration to build its manager with."""

    worker: int
    url: str
    video_path: str
    now: datetime
    attempts: tuple[Attempt, ...]
    daily_limits: dict[str, int]
    buckets: dict[str, int]
    horizon_days: int
    lock_timeout: float


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: a schedule, or an error (its type, and whether it is ours)."""

    attempt: Attempt
    schedule_id: int | None = None
    slot: datetime | None = None
    error: str | None = None
    library_error: bool = False
    detail: str = ""
    limit_name: str | None = None
    day: date | None = None
    elapsed: float = 0.0


def _hammer_round(task: HammerTask, barrier: Any) -> list[Outcome] | str:
    manager: ScheduleManager | None = None
    setup_error = ""
    try:
        policy = QuotaPolicy(
            name="hammer", buckets=task.buckets, costs={"videos.insert": ("uploads", 1)}
        )
        config = SchedulerConfig(
            database_url=task.url,
            timezone="UTC",
            daily_limits=task.daily_limits,
            quota_policy=policy,
            horizon_days=task.horizon_days,
            lock_timeout=task.lock_timeout,
        )
        manager = ScheduleManager(config, clock=FixedClock(task.now))
        manager.check_daily_quota(task.now.date())  # a pooled connection before the start
    except Exception:
        setup_error = traceback.format_exc()
    try:
        barrier.wait(120)  # always meet the others, even after a failed setup
        if manager is None:
            return f"hammer worker {task.worker} setup failed:\n{setup_error}"
        out: list[Outcome] = []
        for attempt in task.attempts:
            started = time.monotonic()
            try:
                booked = manager.schedule_video(
                    task.video_path,
                    attempt.video_type,
                    preferred_time=attempt.preferred,
                    channel=attempt.channel,
                    allow_duplicate=True,  # one file, many slots: the race is about slots
                )
            except Exception as exc:
                out.append(
                    Outcome(
                        attempt=attempt,
                        error=type(exc).__name__,
                        library_error=isinstance(exc, SchedulerError),
                        detail=str(exc)
                        if isinstance(exc, SchedulerError)
                        else traceback.format_exc(),
                        limit_name=getattr(exc, "limit_name", None),
                        day=getattr(exc, "day", None),
                        elapsed=time.monotonic() - started,
                    )
                )
            else:
                out.append(
                    Outcome(
                        attempt=attempt,
                        schedule_id=booked.id,
                        slot=booked.scheduled_publish_time,
                        elapsed=time.monotonic() - started,
                    )
                )
        return out
    except Exception:
        return f"hammer worker {task.worker} failed:\n{traceback.format_exc()}"
    finally:
        if manager is not None:
            manager.close()


def hammer_main(tasks: Any, results: Any, barrier: Any) -> None:
    """A racer: report ready, then run one task per round until given ``None``."""
    results.put(("ready", os.getpid()))
    while True:
        task = tasks.get()
        if task is None:
            results.close()
            results.join_thread()
            os._exit(0)
        results.put((task.worker, _hammer_round(task, barrier)))


# -- the chaos run ------------------------------------------------------------------------------


def chaos_processor_main(spec: dict[str, Any]) -> None:
    """One processor process: ``run_once`` in a loop until ``spec["stop_file"]`` exists.

    Uses the real clock (leases of killed processors must really expire), the real
    ``YouTubeUploader`` against ``spec["endpoint"]``, and generous limits so only the injected
    faults and the kills get in the way.
    """
    logging.basicConfig(level=logging.ERROR, format=f"[{spec['worker_id']}] %(message)s")
    policy = QuotaPolicy(
        name="chaos",
        buckets={"uploads": 100_000, "shared": 1_000_000},
        costs={"videos.insert": ("uploads", 1)},
    )
    manager = ScheduleManager(
        SchedulerConfig(database_url=spec["db_url"], quota_policy=policy, lock_timeout=10.0)
    )
    uploader = YouTubeUploader(
        Credentials(token="chaos"),
        api_endpoint=spec["endpoint"],
        # The whole-file shape for some processors, chunks for others (issue 14).
        chunk_size=spec.get("chunk_size", CHUNK),
        retry_initial_delay=0.005,
        retry_max_delay=0.05,
    )
    processor = UploadProcessor(
        manager,
        uploader,
        worker_id=spec["worker_id"],
        max_concurrent_uploads=spec["threads"],
        per_channel_limit=spec["threads"],
        lease=timedelta(seconds=spec["lease"]),
        heartbeat_interval=timedelta(seconds=spec["lease"] / 4),
        max_attempts=spec["max_attempts"],
        retry_base=timedelta(seconds=0.05),
        progress_interval=timedelta(seconds=0.2),
    )
    try:
        while not os.path.exists(spec["stop_file"]):
            report = processor.run_once()
            if report.claimed == 0 and report.rescued == 0:
                time.sleep(0.1)
    finally:
        processor.close()
        uploader.close()
        manager.close()
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
