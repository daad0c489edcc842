"""Helpers for the UploadProcessor tests: a scripted, thread-safe Uploader stub and DB peeks."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind
from langflix_scheduler.youtube.uploader import (
    ProgressCallback,
    SessionProbe,
    SessionState,
    StepCallback,
    UploadRequest,
    UploadResult,
    UploadStep,
)

Script = Callable[["StubUploader", UploadRequest, ProgressCallback, StepCallback], UploadResult]

#: Bounded wait for anything a test waits on (seconds).
WAIT = 20.0


def default_upload(
    stub: StubUploader,
    request: UploadRequest,
    progress: ProgressCallback,
    on_step: StepCallback,
) -> UploadResult:
    """What a healthy uploader does: open (or resume) a session, send it, report the steps."""
    size = os.path.getsize(request.video_path)
    operations: list[str] = []
    if request.video_id is None:
        uri = request.session_uri or f"stub://session/{uuid.uuid4().hex}"
        if request.session_uri is None:
            operations.append(UploadStep.INSERT.value)
        progress(0, size, uri)
        if stub.delay:
            threading.Event().wait(stub.delay)
        progress(size, size, uri)
        video_id = "vid-" + Path(request.video_path).stem
        on_step(UploadStep.INSERT, video_id)
    else:
        video_id = request.video_id
    for step in (UploadStep.THUMBNAIL, UploadStep.PLAYLIST):
        wanted = (
            request.metadata.thumbnail_path
            if step is UploadStep.THUMBNAIL
            else request.metadata.playlist_id
        )
        if wanted and step not in request.completed_steps:
            operations.append(step.value)
            on_step(step, video_id)
    return UploadResult(
        video_id=video_id,
        operations=tuple(operations),
        privacy_status="private",
        publish_at=request.publish_at,
        bytes_sent=size,
    )


class StubUploader:
    """A scripted :class:`Uploader`: records every call and the concurrency per channel.

    ``script`` decides what a call does (default: a healthy upload); ``channel_of`` maps a video
    path to its channel for the concurrency record.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        channel_of: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.script = script or default_upload
        self.channel_of = channel_of or {}
        self.delay = delay
        self.lock = threading.Lock()
        self.calls: list[UploadRequest] = []
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        channel = self.channel_of.get(request.video_path, "?")
        with self.lock:
            self.calls.append(request)
            self.active[channel] += 1
            self.max_active[channel] = max(self.max_active[channel], self.active[channel])
        try:
            return self.script(
                self,
                request,
                progress or (lambda *_a: None),
                on_step or (lambda *_a: None),
            )
        finally:
            with self.lock:
                self.active[channel] -= 1


class ProbingStubUploader(StubUploader):
    """A :class:`StubUploader` that can also be asked about upload sessions (``SessionProber``).

    ``answers`` maps a session URI to its answer (default: incomplete at offset 0, i.e. the
    server confirms it does not have the file); an exception as answer is raised.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        answers: dict[str, SessionProbe | Exception] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(script, **kwargs)
        self.answers = answers or {}
        self.probes: list[tuple[str, str]] = []

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        with self.lock:
            self.probes.append((session_uri, video_path))
        answer = self.answers.get(session_uri, SessionProbe(state=SessionState.INCOMPLETE))
        if isinstance(answer, Exception):
            raise answer
        return answer


def schedule_many(
    manager: ScheduleManager,
    make_file: Callable[..., Path],
    n: int,
    *,
    start: datetime,
    step: timedelta = timedelta(minutes=1),
    channel: str = "ch1",
    size: int = 2048,
    **kwargs: Any,
) -> list[int]:
    """Book ``n`` shorts at ``start``, ``start + step``, ... and return their ids."""
    ids = []
    for i in range(n):
        booked = manager.schedule_video(
            make_file(size=size),
            "short",
            preferred_time=start + i * step,
            channel=channel,
            **kwargs,
        )
        ids.append(booked.id)
    return ids


def assert_consistent(manager: ScheduleManager) -> None:
    """Every counter equals the recount from the schedules."""
    report = manager.recalculate_quota()
    assert report.corrections == (), report.corrections


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``predicate`` every 10 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class RecordingUploader:
    """Wraps an :class:`Uploader` and records requests, progress reports and results."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.requests: list[UploadRequest] = []
        self.progress: list[tuple[int, int, str | None]] = []
        self.results: list[UploadResult] = []

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        with self.lock:
            self.requests.append(request)

        def record(sent: int, total: int, uri: str | None) -> None:
            with self.lock:
                self.progress.append((sent, total, uri))
            if progress is not None:
                progress(sent, total, uri)

        result = self.inner.upload(request, progress=record, on_step=on_step)
        with self.lock:
            self.results.append(result)
        return result


def outcomes(events: list[ProcessorEvent]) -> Callable[[ProcessorEvent], None]:
    """An ``on_event`` callback that keeps the outcomes in ``events`` (claims left out)."""

    def keep(event: ProcessorEvent) -> None:
        if event.kind is not ProcessorEventKind.CLAIMED:
            events.append(event)

    return keep
