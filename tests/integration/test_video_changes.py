"""Changes of plan after upload (reschedule, unpublish, delete, update) on SQLite, PostgreSQL
and MariaDB, with the in-memory ``MemoryVideoClient``: the local side (slot, day counters), the
quota ledger (a recount finds no correction), refusals, crashes between the API call and the
commit (recovered by a processor run), and two concurrent changes of one schedule.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler.changes import CHANGE_LEASE, ChangePendingError, ChangeState
from langflix_scheduler.domain import UploadStatus, VideoState
from langflix_scheduler.errors import (
    InvalidScheduleError,
    InvalidTransitionError,
    PermanentUploadError,
    QuotaExceededError,
    StorageError,
    TransientUploadError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.processor.verdict import PUBLISH_GRACE
from langflix_scheduler.quota import QuotaPolicy
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.memory_videos import MemoryVideoClient
from langflix_scheduler.youtube.uploader import CallCallback
from langflix_scheduler.youtube.videos import RemoteVideo

from ..conftest import T0
from ._processor_support import StubUploader, assert_consistent
from .db_helpers import RawDB

pytestmark = pytest.mark.timeout(120)

OLD = T0 + timedelta(minutes=40)  # due at once (1 h upload lead time), uploaded in setup
NEW = T0 + timedelta(hours=3)
LIMITS = {"final": 30, "short": 30}


@dataclasses.dataclass
class Uploaded:
    """A schedule whose video is on the (memory) channel, private with publishAt OLD."""

    manager: ScheduleManager
    schedule_id: int
    video_id: str
    client: MemoryVideoClient


@pytest.fixture
def processors() -> Iterator[list[UploadProcessor]]:
    made: list[UploadProcessor] = []
    yield made
    for p in made:
        p.close()


def _run_processor(
    manager: ScheduleManager, client: MemoryVideoClient, made: list[UploadProcessor]
) -> None:
    processor = UploadProcessor(manager, StubUploader(), videos=client)
    made.append(processor)
    processor.run_once()


def _upload(
    manager: ScheduleManager,
    video_file: Callable[..., Path],
    client: MemoryVideoClient,
    made: list[UploadProcessor],
    when: datetime = OLD,
) -> Uploaded:
    booked = manager.book(video_file(), "final", preferred_time=when).schedule
    _run_processor(manager, client, made)
    s = manager.get(booked.id)
    assert s.status is UploadStatus.COMPLETED
    assert s.youtube_video_id
    client.add(s.youtube_video_id, publish_at=when, title=s.metadata.title)
    return Uploaded(manager, s.id, s.youtube_video_id, client)


@pytest.fixture
def uploaded(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
) -> Uploaded:
    return _upload(make_manager(daily_limits=LIMITS), video_file, MemoryVideoClient(), processors)


def _timeline(raw: RawDB, schedule_id: int) -> list[str]:
    with raw.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(
            text("SELECT kind FROM youtube_schedule_events WHERE schedule_id = :s ORDER BY id"),
            {"s": schedule_id},
        ).all()
    return [r[0] for r in rows]


def _ledger(m: ScheduleManager, schedule_id: int) -> list[tuple[str, int]]:
    return [
        (c.operation, c.cost) for c in m.api_calls(schedule_id) if c.operation != "videos.insert"
    ]


def _changes(m: ScheduleManager, schedule_id: int) -> list[tuple[str, ChangeState]]:
    return [(c.kind.value, c.state) for c in m.video_changes_of(schedule_id)]


def _check(up: Uploaded, raw: RawDB) -> None:
    assert_consistent(up.manager)
    raw.check_invariants(daily_limits=LIMITS, bucket_limits={"shared": 10_000, "uploads": 100})


# -- each change ---------------------------------------------------------------------------------


def test_reschedule_moves_publish_at_slot_and_counters(
    uploaded: Uploaded, video_file: Callable[..., Path], raw_db: RawDB
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    s = m.reschedule(sid, NEW, videos=client, requested_by="tester")
    assert s.status is UploadStatus.COMPLETED
    assert (s.scheduled_publish_time, s.youtube_publish_at) == (NEW, NEW)
    assert s.video_state is VideoState.READY
    assert s.youtube_privacy == "private"
    remote = client.videos[vid]
    assert (remote.privacy_status, remote.publish_at) == ("private", NEW)
    assert client.operations() == ["videos.list", "videos.update"]
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50)]
    assert _changes(m, sid) == [("reschedule", ChangeState.APPLIED)]
    assert m.video_changes_of(sid)[0].requested_by == "tester"
    assert _timeline(raw_db, sid)[-2:] == ["change_requested", "change_applied"]
    # The old slot is free again: a new booking takes it.
    assert m.book(video_file(), "final", preferred_time=OLD).created
    _check(uploaded, raw_db)


def test_cancel_unpublishes_and_frees_the_slot(
    uploaded: Uploaded, video_file: Callable[..., Path], raw_db: RawDB
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    s = m.cancel(sid, videos=client)
    assert s.status is UploadStatus.CANCELLED
    assert s.video_state is VideoState.UNPUBLISHED
    remote = client.videos[vid]
    assert (remote.privacy_status, remote.publish_at) == ("private", None)
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50)]
    assert _changes(m, sid) == [("unpublish", ChangeState.APPLIED)]
    assert m.book(video_file(), "final", preferred_time=OLD).created
    _check(uploaded, raw_db)


def test_cancel_with_delete_deletes_the_video(uploaded: Uploaded, raw_db: RawDB) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    s = m.cancel(sid, videos=client, delete=True)
    assert s.status is UploadStatus.CANCELLED
    assert s.video_state is VideoState.DELETED
    assert vid not in client.videos
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.delete", 50)]
    assert _changes(m, sid) == [("delete", ChangeState.APPLIED)]
    _check(uploaded, raw_db)


def test_update_changes_metadata_and_thumbnail(
    uploaded: Uploaded, tmp_path: Path, raw_db: RawDB
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    thumb = tmp_path / "t.png"
    thumb.write_bytes(b"\x89PNG fake")
    s = m.update_video(
        sid, title="New title", tags=["a", "b c"], thumbnail_path=thumb, videos=client
    )
    assert (s.metadata.title, s.metadata.tags) == ("New title", ("a", "b c"))
    assert s.metadata.thumbnail_path == str(thumb)
    assert client.metadata[vid].title == "New title"
    assert client.operations() == ["videos.list", "videos.update", "thumbnails.set"]
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50), ("thumbnails.set", 50)]
    # Without a new thumbnail, none is sent again.
    m.update_video(sid, description="more", videos=client)
    assert client.operations()[-2:] == ["videos.list", "videos.update"]
    assert m.get(sid).metadata.description == "more"
    _check(uploaded, raw_db)


# -- refusals ----------------------------------------------------------------------------------


def test_refused_before_anything_is_sent(
    uploaded: Uploaded, raw_db: RawDB, clock: FakeClock
) -> None:
    m, sid, client = uploaded.manager, uploaded.schedule_id, uploaded.client
    for when in (T0 - timedelta(minutes=5), T0 + timedelta(minutes=10)):
        with pytest.raises(InvalidScheduleError, match="min_lead_time"):
            m.reschedule(sid, when, videos=client)
    with pytest.raises(InvalidTransitionError, match="videos="):
        m.reschedule(sid, NEW)
    with pytest.raises(InvalidTransitionError, match="videos="):
        m.cancel(sid)
    with pytest.raises(InvalidScheduleError, match="title"):
        m.update_video(sid, title="<bad>", videos=client)
    with pytest.raises(InvalidScheduleError, match="requested_by"):
        m.cancel(sid, videos=client, requested_by=" ")
    raw_db.execute("UPDATE youtube_schedules SET video_state = 'published' WHERE id = :i", i=sid)
    with pytest.raises(InvalidTransitionError, match="not yet public"):
        m.cancel(sid, videos=client)
    assert client.operations() == []
    assert _ledger(m, sid) == []
    assert _changes(m, sid) == []
    assert m.get(sid).scheduled_publish_time == OLD


def test_a_video_already_public_on_youtube_is_refused_and_put_back(
    uploaded: Uploaded, raw_db: RawDB
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    client.set(vid, privacy_status="public", publish_at=None)
    with pytest.raises(InvalidTransitionError, match="already public"):
        m.reschedule(sid, NEW, videos=client)
    assert client.operations() == ["videos.list"]
    assert m.get(sid).scheduled_publish_time == OLD
    assert _changes(m, sid) == [("reschedule", ChangeState.FAILED)]
    _check(uploaded, raw_db)


def test_youtube_refusal_puts_the_schedule_back(uploaded: Uploaded, raw_db: RawDB) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    client.fail_next("videos.update", PermanentUploadError("no", reason="forbidden", status=403))
    with pytest.raises(PermanentUploadError):
        m.reschedule(sid, NEW, videos=client)
    s = m.get(sid)
    assert s.scheduled_publish_time == OLD
    assert s.video_state is VideoState.UPLOADED  # as the completion left it
    assert client.videos[vid].publish_at == OLD
    assert _changes(m, sid) == [("reschedule", ChangeState.FAILED)]
    assert _timeline(raw_db, sid)[-2:] == ["change_requested", "change_failed"]
    # The call was sent (and is counted); the new slot is free again.
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50)]
    _check(uploaded, raw_db)

    client.fail_next("videos.delete", PermanentUploadError("no", reason="forbidden", status=403))
    with pytest.raises(PermanentUploadError):
        m.cancel(sid, videos=client, delete=True)
    s = m.get(sid)
    assert s.status is UploadStatus.COMPLETED
    assert s.scheduled_publish_time == OLD
    _check(uploaded, raw_db)


def test_no_quota_room_refuses_before_sending(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
    raw_db: RawDB,
) -> None:
    default = QuotaPolicy.default()
    policy = QuotaPolicy(
        name="tight", buckets={**default.buckets, "shared": 30}, costs=default.costs
    )
    up = _upload(
        make_manager(daily_limits=LIMITS, quota_policy=policy),
        video_file,
        MemoryVideoClient(),
        processors,
    )
    with pytest.raises(QuotaExceededError):
        up.manager.cancel(up.schedule_id, videos=up.client)
    assert up.client.operations() == ["videos.list"]  # the update was never sent
    s = up.manager.get(up.schedule_id)
    assert s.status is UploadStatus.COMPLETED
    assert s.scheduled_publish_time == OLD
    assert _changes(up.manager, up.schedule_id) == [("unpublish", ChangeState.FAILED)]
    assert_consistent(up.manager)


class _BookingOnCall(MemoryVideoClient):
    """Books the old slot (another caller) while the update is in flight, then is refused."""

    def __init__(self, book: Callable[[], Any]) -> None:
        super().__init__()
        self.book = book

    def set_publish_at(
        self,
        current: RemoteVideo,
        publish_at: datetime | None,
        *,
        on_call: CallCallback | None = None,
    ) -> RemoteVideo:
        self.book()
        raise PermanentUploadError("refused", reason="invalidPublishAt", status=400)


def test_refusal_after_the_old_slot_was_taken_marks_a_mismatch(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
    raw_db: RawDB,
) -> None:
    m = make_manager(daily_limits=LIMITS)
    other = make_manager(daily_limits=LIMITS)
    taken: list[int] = []
    client = _BookingOnCall(
        lambda: taken.append(other.book(video_file(), "final", preferred_time=OLD).schedule.id)
    )
    up = _upload(m, video_file, client, processors)
    with pytest.raises(PermanentUploadError):
        m.reschedule(up.schedule_id, NEW, videos=client)
    s = m.get(up.schedule_id)
    assert s.video_state is VideoState.MISMATCH
    assert s.scheduled_publish_time == NEW
    assert s.youtube_publish_at is None
    assert s.video_problem
    assert f"#{taken[0]}" in s.video_problem
    assert _timeline(raw_db, up.schedule_id)[-2:] == ["change_failed", "mismatch"]
    _check(up, raw_db)


# -- crashes between the call and the commit, recovered by a processor run ----------------------


def _request(m: ScheduleManager, sid: int, kind: str, client: MemoryVideoClient) -> Any:
    if kind == "reschedule":
        return m.reschedule(sid, NEW, videos=client)
    return m.cancel(sid, videos=client, delete=kind == "delete")


@pytest.mark.parametrize("after_effect", [True, False], ids=["answer-lost", "not-sent"])
@pytest.mark.parametrize("kind", ["reschedule", "unpublish", "delete"])
def test_a_crash_is_finished_by_the_next_processor_run(
    uploaded: Uploaded,
    raw_db: RawDB,
    clock: FakeClock,
    processors: list[UploadProcessor],
    kind: str,
    after_effect: bool,
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    operation = "videos.delete" if kind == "delete" else "videos.update"
    client.fail_next(
        operation, TransientUploadError("reset", reason="reset"), after_effect=after_effect
    )
    with pytest.raises(ChangePendingError):
        _request(m, sid, kind, client)
    assert [c.schedule_id for c in m.pending_video_changes()] == [sid]
    _run_processor(m, client, processors)  # lease not expired yet: left alone
    assert len(client.operations()) == 2
    assert m.pending_video_changes()

    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    _run_processor(m, client, processors)
    resent = [] if after_effect else [operation]
    # A rescheduled video is due for a check at once: the same run's verification lists it.
    checked = ["videos.list"] if kind == "reschedule" else []
    assert client.operations()[2:] == ["videos.list", *resent, *checked]
    assert m.pending_video_changes() == []
    assert _changes(m, sid) == [("delete" if kind == "delete" else kind, ChangeState.APPLIED)]
    s = m.get(sid)
    if kind == "reschedule":
        assert client.videos[vid].publish_at == NEW == s.youtube_publish_at
        assert s.video_state is VideoState.READY
    elif kind == "unpublish":
        assert client.videos[vid].publish_at is None
        assert s.video_state is VideoState.UNPUBLISHED
    else:
        assert vid not in client.videos
        assert s.video_state is VideoState.DELETED
    assert len(_ledger(m, sid)) == 4 - after_effect + len(checked)
    _check(uploaded, raw_db)


def test_a_change_that_can_no_longer_be_sent_is_rolled_back(
    uploaded: Uploaded, raw_db: RawDB, clock: FakeClock, processors: list[UploadProcessor]
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    soon = T0 + timedelta(minutes=16)
    client.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        m.reschedule(sid, soon, videos=client)
    clock.advance(CHANGE_LEASE + timedelta(minutes=1))  # soon is now < min_lead_time ahead
    _run_processor(m, client, processors)
    # The recovery's look, then the verification (the check due since the upload).
    assert client.operations()[2:] == ["videos.list", "videos.list"]
    assert _changes(m, sid) == [("reschedule", ChangeState.ROLLED_BACK)]
    s = m.get(sid)
    assert s.scheduled_publish_time == OLD
    assert client.videos[vid].publish_at == OLD
    assert _timeline(raw_db, sid)[-2:] == ["change_rolled_back", "ready"]  # then checked
    _check(uploaded, raw_db)


def test_an_update_whose_answer_was_lost_is_sent_again(
    uploaded: Uploaded, raw_db: RawDB, clock: FakeClock, processors: list[UploadProcessor]
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    client.fail_next(
        "videos.update", TransientUploadError("reset", reason="reset"), after_effect=True
    )
    with pytest.raises(ChangePendingError):
        m.update_video(sid, title="Renamed", videos=client)
    assert m.get(sid).metadata.title != "Renamed"
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    _run_processor(m, client, processors)
    assert m.get(sid).metadata.title == "Renamed" == client.metadata[vid].title
    assert _changes(m, sid) == [("update", ChangeState.APPLIED)]
    _check(uploaded, raw_db)


# -- concurrency -------------------------------------------------------------------------------


class _Gate(MemoryVideoClient):
    """Holds ``videos.list`` until released (the first change's call in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def list_videos(self, video_ids: Any, *, on_call: CallCallback | None = None) -> Any:
        self.entered.set()
        assert self.release.wait(30)
        return super().list_videos(video_ids, on_call=on_call)


def test_two_concurrent_reschedules_are_not_both_applied(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
    raw_db: RawDB,
) -> None:
    first, second = make_manager(daily_limits=LIMITS), make_manager(daily_limits=LIMITS)
    gate = _Gate()
    gate.release.set()
    up = _upload(first, video_file, gate, processors)
    gate.release.clear()
    other_time = NEW + timedelta(hours=1)
    results: dict[str, Any] = {}

    def run_first() -> None:
        try:
            results["first"] = first.reschedule(up.schedule_id, NEW, videos=gate)
        except Exception as exc:  # pragma: no cover - reported below
            results["first"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    assert gate.entered.wait(30)  # the first change is recorded; its call is in flight
    with pytest.raises(InvalidTransitionError, match="pending"):
        second.reschedule(up.schedule_id, other_time, videos=gate)
    gate.release.set()
    thread.join(30)
    assert results["first"].scheduled_publish_time == NEW
    assert gate.videos[up.video_id].publish_at == NEW
    assert _changes(first, up.schedule_id) == [("reschedule", ChangeState.APPLIED)]
    _check(up, raw_db)


def test_a_schedule_not_uploaded_keeps_the_local_behaviour(
    make_manager: Callable[..., ScheduleManager], video_file: Callable[..., Path], raw_db: RawDB
) -> None:
    m = make_manager(daily_limits=LIMITS)
    client = MemoryVideoClient()
    sid = m.book(video_file(), "final", preferred_time=NEW).schedule.id
    assert (
        m.reschedule(sid, NEW + timedelta(hours=1), videos=client).status is UploadStatus.SCHEDULED
    )
    assert m.update_video(sid, title="Local").metadata.title == "Local"
    assert m.cancel(sid, videos=client).status is UploadStatus.CANCELLED
    assert client.operations() == []
    assert _changes(m, sid) == []
    assert_consistent(m)


def test_verification_waits_while_a_change_is_pending(
    uploaded: Uploaded, raw_db: RawDB, clock: FakeClock, processors: list[UploadProcessor]
) -> None:
    """A pending change moves ``next_check_at`` past its lease (a check in flight is fenced
    out, none starts); once applied the video is checked in the same run (after the
    recovery); an unpublished one is no longer checked."""
    m, sid, client = uploaded.manager, uploaded.schedule_id, uploaded.client
    raw_db.execute(
        "UPDATE youtube_schedules SET video_state = 'processing', next_check_at = :t WHERE id = :i",
        t=T0.replace(tzinfo=None) if raw_db.url.startswith(("sqlite", "mysql")) else T0,
        i=sid,
    )
    client.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        m.reschedule(sid, NEW, videos=client)
    held = m.get(sid).next_check_at
    assert held is not None
    assert held > T0 + CHANGE_LEASE
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    _run_processor(m, client, processors)
    s = m.get(sid)
    assert s.video_state is VideoState.READY  # YouTube answered: processed
    assert s.checked_at == clock()  # checked in the run that finished the change
    assert s.next_check_at == NEW + PUBLISH_GRACE  # the publish confirmation
    assert m.cancel(sid, videos=client).next_check_at is None


def test_a_failed_commit_after_the_call_is_recorded_by_the_next_run(
    uploaded: Uploaded,
    raw_db: RawDB,
    clock: FakeClock,
    processors: list[UploadProcessor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    changes = m.video_changes

    def lost_commit(*_args: Any) -> Any:
        raise StorageError("apply video change", "server closed the connection")

    monkeypatch.setattr(changes, "_applied", lost_commit)
    with pytest.raises(ChangePendingError, match="YouTube applied it"):
        m.cancel(sid, videos=client)
    monkeypatch.undo()
    assert client.videos[vid].publish_at is None  # done on YouTube, not recorded yet
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    _run_processor(m, client, processors)
    assert client.operations()[2:] == ["videos.list"]  # found done: nothing sent again
    assert m.get(sid).video_state is VideoState.UNPUBLISHED
    assert _changes(m, sid) == [("unpublish", ChangeState.APPLIED)]
    _check(uploaded, raw_db)


def test_an_unpublish_of_a_video_not_found_is_refused_and_nothing_changes(
    uploaded: Uploaded, raw_db: RawDB
) -> None:
    # videos.list leaves out what the token cannot see (another account's token sees none of
    # the channel's private videos): cancelling "because it is gone" could let it publish.
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    before = m.get(sid)
    client.remove(vid)
    with pytest.raises(InvalidTransitionError) as refused:
        m.cancel(sid, videos=client)
    assert "not found on YouTube" in str(refused.value)
    assert "auth --check" in str(refused.value)
    s = m.get(sid)
    assert (s.status, s.scheduled_publish_time) == (UploadStatus.COMPLETED, OLD)
    assert s.video_state is before.video_state
    assert _changes(m, sid) == [("unpublish", ChangeState.FAILED)]
    assert _ledger(m, sid) == [("videos.list", 1)]  # nothing but the look
    # With --delete the intent is explicit: gone is what was asked for.
    s = m.cancel(sid, videos=client, delete=True)
    assert (s.status, s.video_state) == (UploadStatus.CANCELLED, VideoState.DELETED)
    _check(uploaded, raw_db)
