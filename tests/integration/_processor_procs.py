"""Spawn targets for the multi-process UploadProcessor tests.

Each processor runs in its own OS process (``multiprocessing`` *spawn* context, so nothing is
inherited but the arguments): its own engine, its own ``YouTubeUploader`` talking to the
``FakeYouTube`` of the test process over loopback, and a fixed clock given by the test. What it
did is written as JSON to ``spec["out"]`` (atomic rename), so a test can read it after a join.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from google.oauth2.credentials import Credentials
from sqlalchemy import func, select

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db.engine import create_engine
from langflix_scheduler.db.models import Schedule
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessReport, UploadProcessor
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader

CHUNK = 256 * 1024
_COUNTED = ("claimed", "uploaded", "failed", "retried", "deferred", "rescued")


def _write_json(path: str, payload: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.replace(tmp, path)


def _pending(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(Schedule)
                    .where(Schedule.upload_status.in_(("scheduled", "uploading")))
                ).scalar_one()
            )
    finally:
        engine.dispose()


def processor_main(spec: dict[str, Any]) -> None:
    """Run one processor process.

    ``spec`` keys: ``db_url``, ``endpoint`` (the fake's), ``now`` (ISO instant of the fixed
    clock), ``worker_id``, ``out`` (JSON result path), ``mode`` (``"once"``: one ``run_once``;
    ``"drain"``: ``run_once`` until no schedule is ``scheduled``/``uploading`` or ``deadline``
    seconds passed), ``exclusive``, and processor options ``lease``/``heartbeat``/
    ``progress_interval`` (seconds), ``max_concurrent``, ``per_channel``.
    """
    logging.basicConfig(level=logging.WARNING, format=f"[{spec['worker_id']}] %(message)s")
    clock = FakeClock(datetime.fromisoformat(spec["now"]))
    manager = ScheduleManager(SchedulerConfig(database_url=spec["db_url"]), clock=clock)
    uploader = YouTubeUploader(
        Credentials(token="processor-process"),
        api_endpoint=spec["endpoint"],
        chunk_size=CHUNK,
        clock=clock,
        sleep=lambda _s: None,
        retry_initial_delay=0.001,
        retry_max_delay=0.01,
    )
    processor = UploadProcessor(
        manager,
        uploader,
        worker_id=spec["worker_id"],
        max_concurrent_uploads=spec.get("max_concurrent", 1),
        per_channel_limit=spec.get("per_channel", 1),
        lease=timedelta(seconds=spec.get("lease", 300)),
        heartbeat_interval=timedelta(seconds=spec.get("heartbeat", 30)),
        retry_base=timedelta(0),  # the clock is fixed: a retry must be due at once
        progress_interval=timedelta(seconds=spec.get("progress_interval", 1.0)),
    )
    reports: list[ProcessReport] = []
    try:
        if spec["mode"] == "once":
            reports.append(processor.run_once(exclusive=spec.get("exclusive", False)))
        else:
            deadline = time.monotonic() + spec.get("deadline", 60.0)
            while time.monotonic() < deadline:
                report = processor.run_once()
                reports.append(report)
                if _pending(spec["db_url"]) == 0:
                    break
                if report.claimed == 0:
                    # Every due channel is at its cap (other processes upload): look again soon.
                    time.sleep(0.05)
    finally:
        processor.close()
        uploader.close()
        manager.close()
    result: dict[str, Any] = {name: sum(getattr(r, name) for r in reports) for name in _COUNTED}
    result.update(
        pid=os.getpid(),
        runs=len(reports),
        skipped=sum(r.skipped for r in reports),
        outcomes=[r.outcome.value for r in reports],
    )
    _write_json(spec["out"], result)
    # Everything is closed and written: skip the interpreter teardown (over a second per
    # process on a busy machine, mostly unloading google-api-python-client and SQLAlchemy).
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)
