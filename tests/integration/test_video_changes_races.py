"""Changes of plan after upload, the review's findings (issue 12 item 3) on SQLite, PostgreSQL
and MariaDB with ``MemoryVideoClient``: a requester whose lease expired sends nothing (F1), a
thumbnail refused after the text landed (F2), a put-back that cannot be written (F5), a bad
argument found before sending (F6), and an update recorded while a check held the row (F7).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from langflix_scheduler.changes import CHANGE_LEASE, SEND_MARGIN, ChangePendingError, ChangeState
from langflix_scheduler.domain import VideoState
from langflix_scheduler.errors import (
    InvalidScheduleError,
    InvalidTransitionError,
    PermanentUploadError,
    QuotaExceededError,
    StorageError,
    ThumbnailNotSetError,
    TransientUploadError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.testing.memory_videos import MemoryVideoClient
from langflix_scheduler.youtube.uploader import PUBLISH_AT_MIN_LEAD, ApiCallReport, CallCallback
from langflix_scheduler.youtube.videos import RemoteVideo

from ..conftest import T0
from .db_helpers import RawDB
from .test_video_changes import (
    LIMITS,
    NEW,
    OLD,
    Uploaded,
    _changes,
    _check,
    _ledger,
    _run_processor,
    _timeline,
    _upload,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def processors() -> Iterator[list[UploadProcessor]]:
    made: list[UploadProcessor] = []
    yield made
    for p in made:
        p.close()


@pytest.fixture
def uploaded(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
) -> Uploaded:
    """A schedule whose video is on the (memory) channel, private with publishAt OLD."""
    return _upload(make_manager(daily_limits=LIMITS), video_file, MemoryVideoClient(), processors)


class _Interleaved:
    """A VideoClient that runs ``during`` just before the first videos.update is sent (or,
    ``after_write``, just after it landed)."""

    def __init__(self, inner: MemoryVideoClient, during: Any, *, after_write: bool = False):
        self.inner = inner
        self.during = during
        self.after_write = after_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _run(self) -> None:
        if self.during is not None:
            during, self.during = self.during, None
            during()

    def set_publish_at(self, current: Any, publish_at: Any, *, on_call: Any = None) -> Any:
        if not self.after_write:
            self._run()
        answer = self.inner.set_publish_at(current, publish_at, on_call=on_call)
        if self.after_write:
            self._run()
        return answer


def _thumbnail(tmp_path: Path) -> Path:
    thumb = tmp_path / "t.png"
    thumb.write_bytes(b"\x89PNG fake")
    return thumb


def _detail_of_last(raw: RawDB, schedule_id: int, kind: str) -> str:
    with raw.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT detail FROM youtube_schedule_events WHERE schedule_id = :s AND kind = :k "
                "ORDER BY id"
            ),
            {"s": schedule_id, "k": kind},
        ).all()
    return str(rows[-1][0])


# -- F1: a change is sent once, and never reported applied when it was ended otherwise ---------


def test_slow_requester_and_recovery_both_send_the_update(
    uploaded: Uploaded, clock: FakeClock, raw_db: RawDB
) -> None:
    """The requester's lease expires while it is still working; a processor run takes the
    change over and sends videos.update; the requester, fenced on its lease, sends nothing."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client

    def processor_run_meanwhile() -> None:
        clock.advance(CHANGE_LEASE + timedelta(seconds=1))
        m.video_changes.recover(client, channels=None)

    with pytest.raises(ChangePendingError, match="took it over"):
        m.reschedule(sid, NEW, videos=_Interleaved(client, processor_run_meanwhile))
    sent = [op for op in client.operations() if op == "videos.update"]
    assert len(sent) == 1, f"videos.update sent {len(sent)} times for one change"
    assert _changes(m, sid) == [("reschedule", ChangeState.APPLIED)]
    assert m.get(sid).youtube_publish_at == NEW == client.videos[vid].publish_at
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.list", 1), ("videos.update", 50)]
    _check(uploaded, raw_db)


def test_requester_reports_success_for_a_change_recovery_rolled_back(
    uploaded: Uploaded, clock: FakeClock, raw_db: RawDB
) -> None:
    """Same race, the recovery's re-send is refused and it rolls the change back: the
    requester sends nothing after it (YouTube and the row both say OLD) and raises."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client

    def processor_run_meanwhile() -> None:
        clock.advance(CHANGE_LEASE + timedelta(seconds=1))
        client.fail_next(
            "videos.update", PermanentUploadError("no", reason="forbidden", status=403)
        )
        m.video_changes.recover(client, channels=None)

    with pytest.raises(ChangePendingError):
        m.reschedule(sid, NEW, videos=_Interleaved(client, processor_run_meanwhile))
    assert _changes(m, sid) == [("reschedule", ChangeState.ROLLED_BACK)]
    assert client.videos[vid].publish_at == OLD
    assert m.get(sid).scheduled_publish_time == OLD
    assert client.operations().count("videos.update") == 1  # the recovery's, refused
    _check(uploaded, raw_db)


def test_a_requester_whose_change_was_rolled_back_after_its_write_raises(
    uploaded: Uploaded, clock: FakeClock, raw_db: RawDB
) -> None:
    """The requester's write hangs past its lease; a processor run meanwhile finds the video
    public on YouTube and rolls the change back: the requester's commit does not report
    success, it names the change's end."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client

    def processor_run_meanwhile() -> None:
        clock.advance(CHANGE_LEASE + timedelta(seconds=1))
        client.set(vid, privacy_status="public")  # published in Studio meanwhile
        m.video_changes.recover(client, channels=None)

    hung = _Interleaved(client, processor_run_meanwhile, after_write=True)
    with pytest.raises(InvalidTransitionError, match="rolled_back"):
        m.reschedule(sid, NEW, videos=hung)
    assert _changes(m, sid) == [("reschedule", ChangeState.ROLLED_BACK)]
    assert "change_applied" not in _timeline(raw_db, sid)
    _check(uploaded, raw_db)


def test_a_requester_whose_change_the_recovery_applied_returns_it(
    uploaded: Uploaded, clock: FakeClock, raw_db: RawDB
) -> None:
    """Same hang, the recovery finds YouTube holds the target and applies it (no second
    call): the requester returns the row, applied once."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client

    def processor_run_meanwhile() -> None:
        clock.advance(CHANGE_LEASE + timedelta(seconds=1))
        m.video_changes.recover(client, channels=None)

    s = m.reschedule(
        sid, NEW, videos=_Interleaved(client, processor_run_meanwhile, after_write=True)
    )
    assert s.scheduled_publish_time == NEW == client.videos[vid].publish_at
    assert client.operations().count("videos.update") == 1
    assert _changes(m, sid) == [("reschedule", ChangeState.APPLIED)]
    assert _timeline(raw_db, sid).count("change_applied") == 1
    _check(uploaded, raw_db)


def test_the_change_lease_outlasts_a_retried_read() -> None:
    assert timedelta(minutes=10) <= CHANGE_LEASE


# -- F2: a thumbnail refused after the text landed ----------------------------------------------


def test_failed_thumbnail_leaves_youtube_title_unrecorded(
    uploaded: Uploaded, tmp_path: Path, raw_db: RawDB
) -> None:
    """videos.update(snippet) lands, thumbnails.set is refused: the change is applied for the
    text, the row holds the new title and the old thumbnail, the caller is told."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    client.fail_next(
        "thumbnails.set", PermanentUploadError("bad image", reason="invalidImage", status=400)
    )
    with pytest.raises(ThumbnailNotSetError, match="thumbnail was not set") as raised:
        m.update_video(sid, title="New title", thumbnail_path=_thumbnail(tmp_path), videos=client)
    assert isinstance(raised.value.__cause__, PermanentUploadError)
    assert client.metadata[vid].title == "New title"  # YouTube holds the new title
    assert client.metadata[vid].thumbnail_path is None  # and not the thumbnail
    s = m.get(sid)
    assert (s.metadata.title, s.metadata.thumbnail_path) == ("New title", None)
    (change,) = m.video_changes_of(sid)
    assert change.state is ChangeState.APPLIED
    assert change.error is not None
    assert "thumbnail was NOT set" in change.error
    assert "thumbnail was NOT set: bad image" in _detail_of_last(raw_db, sid, "change_applied")
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50), ("thumbnails.set", 50)]
    _check(uploaded, raw_db)


def test_no_quota_room_for_the_thumbnail_after_the_text(
    uploaded: Uploaded, tmp_path: Path, raw_db: RawDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our ledger refuses thumbnails.set (within_limit) after videos.update landed."""
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    record = m.record_api_call

    def tight(report: ApiCallReport, **kwargs: Any) -> Any:
        if report.operation == "thumbnails.set":
            raise QuotaExceededError(
                "quota:shared", T0.date(), used=9990, limit=10_000, requested=50
            )
        return record(report, **kwargs)

    monkeypatch.setattr(m, "record_api_call", tight)
    with pytest.raises(ThumbnailNotSetError, match="quota:shared"):
        m.update_video(sid, title="New title", thumbnail_path=_thumbnail(tmp_path), videos=client)
    monkeypatch.undo()
    assert client.metadata[vid].title == "New title" == m.get(sid).metadata.title
    assert _changes(m, sid) == [("update", ChangeState.APPLIED)]
    assert _ledger(m, sid) == [("videos.list", 1), ("videos.update", 50)]
    _check(uploaded, raw_db)


def test_recovery_applies_the_text_when_the_thumbnail_is_refused(
    uploaded: Uploaded,
    tmp_path: Path,
    raw_db: RawDB,
    clock: FakeClock,
    processors: list[UploadProcessor],
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    client.fail_next("videos.update", TransientUploadError("reset", reason="reset"))
    with pytest.raises(ChangePendingError):
        m.update_video(sid, title="Renamed", thumbnail_path=_thumbnail(tmp_path), videos=client)
    clock.advance(CHANGE_LEASE + timedelta(seconds=1))
    client.fail_next(
        "thumbnails.set", PermanentUploadError("bad image", reason="invalidImage", status=400)
    )
    _run_processor(m, client, processors)
    assert _changes(m, sid) == [("update", ChangeState.APPLIED)]
    s = m.get(sid)
    assert (s.metadata.title, s.metadata.thumbnail_path) == ("Renamed", None)
    assert client.metadata[vid].title == "Renamed"
    assert "thumbnail was NOT set" in _detail_of_last(raw_db, sid, "change_applied")
    _check(uploaded, raw_db)


# -- F5: a put-back that cannot be written ------------------------------------------------------


def test_a_refusal_whose_put_back_fails_is_pending_and_never_sent_again(
    uploaded: Uploaded,
    raw_db: RawDB,
    clock: FakeClock,
    processors: list[UploadProcessor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, sid, vid, client = uploaded.manager, uploaded.schedule_id, uploaded.video_id, uploaded.client
    changes = m.video_changes

    def lost(*_args: Any) -> None:
        raise StorageError("put back a video change", "server closed the connection")

    monkeypatch.setattr(changes, "_undo", lost)
    client.fail_next("videos.update", PermanentUploadError("no", reason="forbidden", status=403))
    with pytest.raises(ChangePendingError, match="putting the schedule back failed"):
        m.reschedule(sid, NEW, videos=client)
    monkeypatch.undo()
    (change,) = m.video_changes_of(sid)
    assert change.state is ChangeState.PENDING
    assert change.error is not None
    assert "forbidden" in change.error
    clock.advance(timedelta(seconds=1))  # the noted refusal is due at once
    _run_processor(m, client, processors)
    assert client.operations().count("videos.update") == 1  # never re-sent
    assert client.videos[vid].publish_at == OLD
    assert _changes(m, sid) == [("reschedule", ChangeState.FAILED)]
    assert m.get(sid).scheduled_publish_time == OLD
    assert "change_failed" in _timeline(raw_db, sid)
    _check(uploaded, raw_db)


# -- F6: a bad argument found before anything is sent -------------------------------------------


class _RefusesTooSoon(MemoryVideoClient):
    """Refuses the publish time as the real client does, on its own clock, before sending."""

    def set_publish_at(
        self,
        current: RemoteVideo,
        publish_at: datetime | None,
        *,
        on_call: CallCallback | None = None,
    ) -> RemoteVideo:
        raise InvalidScheduleError("publish_at", "less than 0:01:00 ahead")


def test_a_publish_time_refused_before_sending_is_definite(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    processors: list[UploadProcessor],
    raw_db: RawDB,
) -> None:
    up = _upload(make_manager(daily_limits=LIMITS), video_file, _RefusesTooSoon(), processors)
    m, sid, client = up.manager, up.schedule_id, up.client
    with pytest.raises(InvalidScheduleError):
        m.reschedule(sid, NEW, videos=client)
    assert _changes(m, sid) == [("reschedule", ChangeState.FAILED)]
    assert m.get(sid).scheduled_publish_time == OLD
    assert client.operations().count("videos.update") == 0
    assert SEND_MARGIN > PUBLISH_AT_MIN_LEAD
    _check(up, raw_db)


# -- F7: an update recorded while a check held the row -----------------------------------------


def test_an_applied_update_does_not_restore_a_check_lease(
    uploaded: Uploaded, raw_db: RawDB, clock: FakeClock
) -> None:
    m, sid = uploaded.manager, uploaded.schedule_id
    check_lease = T0 + timedelta(minutes=3)  # a check in flight holds the row until then
    raw_db.execute(
        "UPDATE youtube_schedules SET video_state = 'processing', next_check_at = :t WHERE id = :i",
        t=check_lease.replace(tzinfo=None)
        if raw_db.url.startswith(("sqlite", "mysql"))
        else check_lease,
        i=sid,
    )
    clock.advance(timedelta(seconds=30))
    s = m.update_video(sid, title="Renamed", videos=uploaded.client)
    assert s.next_check_at == clock() != check_lease  # the stale check's fence stays broken
    assert m.get(sid).video_state is VideoState.PROCESSING
