"""After-upload gaps of issue 12, driven by real processor runs on SQLite, PostgreSQL and MariaDB
with the in-memory ``MemoryVideoClient``:

* a refresh token refused (``invalid_grant``) while checking videos or recovering a change of
  plan pauses that channel like an upload does (``channel_paused``), other channels go on, and
  later runs leave the channel's checks and recoveries alone until the pause is lifted;
* change recovery emits ``change_applied`` / ``change_rolled_back`` and the report counts them;
* a video still processing after the last automatic check is shown as ``processing_stuck``;
* the metrics' due lag leaves paused channels out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler.changes import CHANGE_LEASE, ChangePendingError, ChangeState
from langflix_scheduler.db import channels as channels_db
from langflix_scheduler.domain import UploadStatus, VideoState
from langflix_scheduler.errors import AuthorizationError, TransientUploadError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.overview import attention, explain
from langflix_scheduler.processor import (
    ProcessorEvent,
    ProcessorEventKind,
    ProcessReport,
    RunOutcome,
    UploadProcessor,
)
from langflix_scheduler.processor.verdict import CHECK_BACKOFF, MAX_CHECKS
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.memory_videos import MemoryVideoClient

from ..conftest import T0
from ._processor_support import StubUploader, assert_consistent, schedule_many
from .db_helpers import RawDB

pytestmark = pytest.mark.timeout(120)

LIMITS = {"final": 30, "short": 30}
OLD = T0 + timedelta(minutes=40)  # due at once (1 h upload lead time)
NEW = T0 + timedelta(hours=3)
REFUSED = "the refresh token was refused (invalid_grant: Token has been expired or revoked.)"


def refused() -> AuthorizationError:
    return AuthorizationError(REFUSED, reason="invalid_grant")


@pytest.fixture
def memory() -> MemoryVideoClient:
    return MemoryVideoClient()


@pytest.fixture
def events() -> list[ProcessorEvent]:
    return []


@pytest.fixture
def run(
    memory: MemoryVideoClient, events: list[ProcessorEvent]
) -> Iterator[Callable[[ScheduleManager], ProcessReport]]:
    """One processor run (all channels) with ``memory`` as its after-upload client."""
    made: list[UploadProcessor] = []

    def run_once(manager: ScheduleManager) -> ProcessReport:
        processor = UploadProcessor(manager, StubUploader(), videos=memory, on_event=events.append)
        made.append(processor)
        return processor.run_once()

    yield run_once
    for p in made:
        p.close()


def upload(
    manager: ScheduleManager,
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    channel: str,
    video_file: Callable[..., Path],
    *,
    processing: bool = False,
) -> tuple[int, str]:
    """Book one short on ``channel`` publishing at OLD, upload it, put it in ``memory``."""
    (sid,) = schedule_many(manager, video_file, 1, start=OLD, channel=channel)
    assert run(manager).uploaded == 1
    s = manager.get(sid)
    assert s.status is UploadStatus.COMPLETED
    assert s.youtube_video_id
    extra: dict[str, Any] = (
        {"upload_status": "uploaded", "processing_status": "processing"} if processing else {}
    )
    memory.add(s.youtube_video_id, publish_at=OLD, title=s.metadata.title, **extra)
    return sid, s.youtube_video_id


def kinds(events: list[ProcessorEvent]) -> list[tuple[ProcessorEventKind, str]]:
    return [(e.kind, e.channel_id) for e in events if e.kind is not ProcessorEventKind.CLAIMED]


# -- item 1: invalid_grant while checking -------------------------------------------------------


def test_a_token_refused_while_checking_pauses_only_that_channel(
    make_manager: Callable[..., ScheduleManager],
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    events: list[ProcessorEvent],
    video_file: Callable[..., Path],
    peek: RawDB,
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    dead, _ = upload(m, run, memory, "ch1", video_file)
    live, _ = upload(m, run, memory, "ch2", video_file)
    due = peek.row(dead)["next_check_at"]
    assert due is not None
    assert due <= peek.row(live)["next_check_at"]  # ch1 is listed first
    clock.set(max(due, peek.row(live)["next_check_at"]))
    events.clear()
    memory.fail_next("videos.list", refused())

    report = run(m)
    # Not a stop: ch2 was still checked after ch1's token was refused.
    assert (report.outcome, report.verified, report.error) == (RunOutcome.OK, 1, None)
    assert memory.operations() == ["videos.list", "videos.list"]
    assert kinds(events) == [
        (ProcessorEventKind.CHANNEL_PAUSED, "ch1"),
        (ProcessorEventKind.READY, "ch2"),
    ]
    assert events[0].schedule_id == dead
    assert "invalid_grant" in (events[0].error or "")
    assert peek.row(dead)["next_check_at"] == due  # given back as it was
    assert peek.row(dead)["video_state"] == VideoState.UPLOADED.value
    assert [(p.channel, "invalid_grant" in (p.reason or "")) for p in m.paused_channels()] == [
        ("ch1", True)
    ]
    assert [p.channel for p in attention(m).paused_channels] == ["ch1"]

    # Later runs leave the paused channel's checks alone (its check is due all along).
    clock.advance(timedelta(hours=1))
    assert run(m).verified == 1  # ch2's publish confirmation, not ch1
    assert [(c.operation, c.argument) for c in memory.calls][2:] == [
        ("videos.list", (m.get(live).youtube_video_id,))
    ]
    assert peek.row(dead)["video_state"] == VideoState.UPLOADED.value
    # The pause is lifted (``auth``): the check happens.
    assert m.resume_channel("ch1") is not None
    assert run(m).verified == 1
    assert peek.row(dead)["video_state"] != VideoState.UPLOADED.value
    assert_consistent(m)


def test_another_authorization_error_still_stops_the_step(
    make_manager: Callable[..., ScheduleManager],
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    video_file: Callable[..., Path],
    peek: RawDB,
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    sid, _ = upload(m, run, memory, "ch1", video_file)
    clock.advance(CHECK_BACKOFF[0])
    memory.fail_next("videos.list", AuthorizationError("insufficient scope", reason="scope"))
    report = run(m)
    assert (report.outcome, report.verified) == (RunOutcome.UNAUTHORIZED, 0)
    assert m.paused_channels() == []
    assert peek.row(sid)["video_state"] == VideoState.UPLOADED.value


# -- items 1 and 2: change recovery --------------------------------------------------------------


def pending_reschedule(m: ScheduleManager, sid: int, memory: MemoryVideoClient) -> int:
    """A reschedule to NEW whose videos.update failed before it was sent: left pending."""
    memory.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        m.reschedule(sid, NEW, videos=memory)
    (change,) = [c for c in m.pending_video_changes() if c.schedule_id == sid]
    return change.id


def test_a_token_refused_recovering_a_change_pauses_its_channel(
    make_manager: Callable[..., ScheduleManager],
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    events: list[ProcessorEvent],
    video_file: Callable[..., Path],
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    dead, _ = upload(m, run, memory, "ch1", video_file)
    live, live_video = upload(m, run, memory, "ch2", video_file)
    dead_change = pending_reschedule(m, dead, memory)
    live_change = pending_reschedule(m, live, memory)
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    events.clear()
    calls = len(memory.calls)
    memory.fail_next("videos.list", refused())  # the recovery's first look: ch1's change

    report = run(m)
    assert report.outcome is RunOutcome.OK
    assert (report.changes_recovered, report.changes_rolled_back) == (1, 0)
    applied = [e for e in events if e.kind is ProcessorEventKind.CHANGE_APPLIED]
    assert [(e.schedule_id, e.change_id, e.change_kind, e.video_id) for e in applied] == [
        (live, live_change, "reschedule", live_video)
    ]
    (paused,) = [e for e in events if e.kind is ProcessorEventKind.CHANNEL_PAUSED]
    assert (paused.channel_id, paused.schedule_id) == ("ch1", dead)
    assert [p.channel for p in m.paused_channels()] == ["ch1"]
    # ch1's change is still pending (nothing was sent); ch2's is applied on YouTube.
    assert [(c.id, c.state) for c in m.pending_video_changes()] == [
        (dead_change, ChangeState.PENDING)
    ]
    assert memory.videos[live_video].publish_at == NEW
    # Not one call for ch1 after its refusal (ch2: look, re-send, and its check).
    assert [c.operation for c in memory.calls[calls:]] == [
        "videos.list",
        "videos.list",
        "videos.update",
        "videos.list",
    ]

    # Later runs leave the paused channel's change alone, past its lease too.
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    calls = len(memory.calls)
    assert run(m).changes_recovered == 0
    assert [c.operation for c in memory.calls[calls:]] == []
    assert m.pending_video_changes()

    assert m.resume_channel("ch1") is not None
    events.clear()
    report = run(m)
    assert report.changes_recovered == 1
    assert [(e.kind, e.schedule_id) for e in events][:1] == [
        (ProcessorEventKind.CHANGE_APPLIED, dead)
    ]
    assert m.pending_video_changes() == []
    assert m.get(dead).scheduled_publish_time == NEW
    assert_consistent(m)


def test_a_rolled_back_change_is_an_event_and_counted(
    make_manager: Callable[..., ScheduleManager],
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    events: list[ProcessorEvent],
    video_file: Callable[..., Path],
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    sid, video = upload(m, run, memory, "ch1", video_file)
    change = pending_reschedule(m, sid, memory)
    memory.set(video, privacy_status="public", publish_at=None)  # published in Studio meanwhile
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    events.clear()
    report = run(m)
    assert (report.changes_recovered, report.changes_rolled_back) == (1, 1)
    (rolled,) = [e for e in events if e.kind is ProcessorEventKind.CHANGE_ROLLED_BACK]
    assert (rolled.schedule_id, rolled.change_id, rolled.change_kind) == (
        sid,
        change,
        "reschedule",
    )
    assert "already public" in (rolled.error or "")
    assert [c.state for c in m.video_changes_of(sid)] == [ChangeState.ROLLED_BACK]
    assert m.get(sid).scheduled_publish_time == OLD
    assert_consistent(m)


# -- item 3: still processing after the last check ------------------------------------------------


def test_a_video_still_processing_after_the_last_check_needs_attention(
    make_manager: Callable[..., ScheduleManager],
    run: Callable[[ScheduleManager], ProcessReport],
    memory: MemoryVideoClient,
    video_file: Callable[..., Path],
    peek: RawDB,
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    sid, _ = upload(m, run, memory, "ch1", video_file, processing=True)
    other, _ = upload(m, run, memory, "ch2", video_file, processing=True)
    clock.advance(CHECK_BACKOFF[0])
    assert run(m).verified == 2
    assert attention(m).processing_stuck == ()  # processing, checked again later: fine
    peek.execute(
        "UPDATE youtube_schedules SET check_count = :n WHERE id = :i", n=MAX_CHECKS - 1, i=sid
    )
    clock.advance(timedelta(hours=1))
    assert run(m).verified == 2
    row = peek.row(sid)
    assert (row["video_state"], row["next_check_at"]) == ("processing", None)
    att = attention(m)
    assert [s.id for s in att.processing_stuck] == [sid]
    assert ("processing_stuck", sid) in [(k, s.id) for k, s in att.problems()]
    assert other not in [s.id for _, s in att.problems()]
    assert not att.is_clear
    why = explain("processing_stuck", att.processing_stuck[0], m.config.zone)
    assert "YouTube Studio" in why


# -- item 5: the metrics' due lag ----------------------------------------------------------------


def test_due_lag_leaves_paused_channels_out(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    clock: FakeClock,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    schedule_many(m, video_file, 1, start=OLD, channel="ch1")
    schedule_many(m, video_file, 1, start=OLD + timedelta(hours=2), channel="ch2")
    clock.set(OLD - m.config.upload_lead_time + timedelta(minutes=30))
    totals = m.stored_totals()
    assert (totals.due_count, totals.due_lag_seconds) == (1, 1800)
    m.database.run_core(
        "pause ch1",
        lambda c: channels_db.pause(c, m.database.dialect, "ch1", at=clock(), reason="test"),
    )
    assert len(m.due_schedules()) == 0
    totals = m.stored_totals()
    assert (totals.due_count, totals.due_lag_seconds) == (0, 0.0)
    m.resume_channel("ch1")
    assert m.stored_totals().due_count == 1
