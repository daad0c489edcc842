"""A refresh token refused with ``invalid_grant`` pauses its channel (issue 12, item 5).

The upload that finds out is released without spending an attempt; the channel row is paused;
claims skip the channel on every later run while other channels keep uploading; ``attention``
shows it; ``resume_channel`` lifts it. One body per engine.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import ChannelPause
from langflix_scheduler.errors import AuthorizationError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import (
    ProcessorEvent,
    ProcessorEventKind,
    RunOutcome,
    UploadProcessor,
)
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import ProgressCallback, StepCallback, UploadRequest

from ..conftest import T0
from ._processor_support import (
    StubUploader,
    assert_consistent,
    default_upload,
    outcomes,
    schedule_many,
)
from .db_helpers import RawDB

SOON = T0 + timedelta(minutes=20)
LIMITS = {"final": 30, "short": 30}
REFUSED = "the refresh token was refused (invalid_grant: Token has been expired or revoked.)"


@pytest.fixture
def mgr(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    return make_manager(daily_limits=LIMITS)


@pytest.fixture
def make_processor() -> Iterator[Callable[..., UploadProcessor]]:
    made: list[UploadProcessor] = []

    def factory(manager: ScheduleManager, uploader: Any, **kwargs: Any) -> UploadProcessor:
        kwargs.setdefault("progress_interval", timedelta(0))
        processor = UploadProcessor(manager, uploader, **kwargs)
        made.append(processor)
        return processor

    yield factory
    for p in made:
        p.close()


class DeadTokenOf:
    """An uploader whose token for the paths of ``dead`` channels is refused (``invalid_grant``);
    other channels upload normally."""

    def __init__(self) -> None:
        self.dead: set[str] = set()
        self.lock = threading.Lock()

    def script(
        self,
        stub: StubUploader,
        request: UploadRequest,
        progress: ProgressCallback,
        on_step: StepCallback,
    ) -> Any:
        if stub.channel_of.get(request.video_path) in self.dead:
            raise AuthorizationError(REFUSED, reason="invalid_grant")
        return default_upload(stub, request, progress, on_step)


def _book(mgr: ScheduleManager, video_file: Any, channel: str, n: int) -> list[int]:
    return schedule_many(mgr, video_file, n, start=SOON, channel=channel)


def _calls_of(stub: StubUploader, channel: str) -> int:
    with stub.lock:
        return sum(stub.channel_of.get(r.video_path) == channel for r in stub.calls)


def test_invalid_grant_pauses_the_channel_and_other_channels_upload(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    a = _book(mgr, video_file, "a", 3)
    b = _book(mgr, video_file, "b", 3)
    paths = {peek.row(s)["video_path"]: ch for ch, ids in (("a", a), ("b", b)) for s in ids}
    tokens = DeadTokenOf()
    tokens.dead.add("a")
    stub = StubUploader(tokens.script, channel_of=paths)
    events: list[ProcessorEvent] = []

    report = make_processor(
        mgr, stub, max_concurrent_uploads=1, per_channel_limit=1, on_event=outcomes(events)
    ).run_once()

    # The run went on with channel b after a's token was refused.
    assert report.outcome is RunOutcome.OK
    assert report.uploaded == 3
    assert _calls_of(stub, "a") == 1
    assert peek.statuses(b) == {"completed": 3}
    rows = [peek.row(s) for s in a]
    assert [r["upload_status"] for r in rows] == ["scheduled"] * 3
    assert [r["attempts"] for r in rows] == [0, 0, 0]
    assert all(r["lease_owner"] is None for r in rows)
    paused = [e for e in events if e.kind is ProcessorEventKind.CHANNEL_PAUSED]
    assert [(e.channel_id, e.attempts) for e in paused] == [("a", 0)]
    assert "invalid_grant" in (paused[0].error or "")

    (pause,) = mgr.paused_channels()
    assert (pause.channel, pause.paused_at) == ("a", clock())
    assert "invalid_grant" in (pause.reason or "")
    assert pause.command == "langflix-scheduler auth --channel a"
    att = mgr.attention()
    assert att.paused_channels == (pause,)
    assert not att.is_clear
    assert mgr.due_schedules(channel="a") == []
    assert_consistent(mgr)

    # Later runs do not touch the paused channel: no upload call, no attempt.
    clock.advance(minutes=5)
    later = make_processor(mgr, stub).run_once()
    assert (later.claimed, _calls_of(stub, "a")) == (0, 1)
    assert [peek.row(s)["attempts"] for s in a] == [0, 0, 0]


def test_resume_channel_lifts_the_pause(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
) -> None:
    a = _book(mgr, video_file, "a", 2)
    paths = {peek.row(s)["video_path"]: "a" for s in a}
    tokens = DeadTokenOf()
    tokens.dead.add("a")
    stub = StubUploader(tokens.script, channel_of=paths)
    make_processor(mgr, stub, max_concurrent_uploads=1).run_once()
    assert [p.channel for p in mgr.paused_channels("a")] == ["a"]
    assert mgr.paused_channels("b") == []

    tokens.dead.clear()  # `auth` stored a new token
    lifted = mgr.resume_channel("a")
    assert isinstance(lifted, ChannelPause)
    assert lifted.channel == "a"
    assert mgr.resume_channel("a") is None  # idempotent
    assert mgr.paused_channels() == []
    assert mgr.attention().paused_channels == ()

    report = make_processor(mgr, stub).run_once()
    assert report.uploaded == 2
    assert peek.statuses(a) == {"completed": 2}
    assert [peek.row(s)["attempts"] for s in a] == [0, 0]
    assert_consistent(mgr)


def test_other_authorization_errors_still_stop_the_run_without_pausing(
    mgr: ScheduleManager, make_processor: Any, video_file: Any
) -> None:
    _book(mgr, video_file, "a", 2)

    def refused(*_args: Any) -> Any:
        raise AuthorizationError("insufficient scope", reason="insufficientPermissions")

    report = make_processor(mgr, StubUploader(refused), max_concurrent_uploads=1).run_once()
    assert report.outcome is RunOutcome.UNAUTHORIZED
    assert mgr.paused_channels() == []


# -- end to end: the real google client against FakeYouTube --------------------------------------


def _credentials(fake: FakeYouTube, refresh_token: str) -> Credentials:
    """What `process` loads from the token file: an access token already expired, so google-auth
    refreshes it before the first request."""
    return Credentials(
        token="old-access",
        refresh_token=refresh_token,
        token_uri=fake.token_uri,
        client_id="client.apps.googleusercontent.com",
        client_secret="client-secret-value",
        expiry=datetime(2000, 1, 1),  # noqa: DTZ001 - google-auth keeps expiry naive UTC
    )


def _uploader(fake: FakeYouTube, refresh_token: str, clock: FakeClock) -> YouTubeUploader:
    return YouTubeUploader(
        _credentials(fake, refresh_token),
        api_endpoint=fake.api_endpoint,
        clock=clock,
        sleep=lambda _s: None,
    )


def test_an_expired_refresh_token_pauses_the_channel_end_to_end(
    mgr: ScheduleManager,
    make_processor: Any,
    video_file: Any,
    peek: RawDB,
    clock: FakeClock,
) -> None:
    # An app in "Testing": Google's refresh tokens live 7 days.
    with FakeYouTube(clock=clock, app_status="testing") as fake:
        first = _book(mgr, video_file, "a", 1)
        with _uploader(fake, "refresh-week-1", clock) as uploader:
            assert make_processor(mgr, uploader).run_once().uploaded == 1
        assert peek.statuses(first) == {"completed": 1}

        clock.advance(days=8)  # the refresh token died meanwhile
        later = schedule_many(
            mgr, video_file, 2, start=clock() + timedelta(minutes=20), channel="a"
        )
        inserts = fake.insert_calls
        events: list[ProcessorEvent] = []
        with _uploader(fake, "refresh-week-1", clock) as uploader:
            report = make_processor(mgr, uploader, on_event=outcomes(events)).run_once()
            assert report.outcome is RunOutcome.OK
            assert [e.kind for e in events] == [ProcessorEventKind.CHANNEL_PAUSED]
            assert "invalid_grant" in (events[0].error or "")
            assert make_processor(mgr, uploader).run_once().claimed == 0
        assert fake.insert_calls == inserts  # nothing was sent
        assert [r["attempts"] for r in map(peek.row, later)] == [0, 0]
        assert peek.statuses(later) == {"scheduled": 2}
        assert [p.channel for p in mgr.attention().paused_channels] == ["a"]

        # `auth` stored a new token and lifted the pause.
        assert mgr.resume_channel("a") is not None
        with _uploader(fake, "refresh-week-2", clock) as uploader:
            assert make_processor(mgr, uploader).run_once().uploaded == 2
        assert peek.statuses(later) == {"completed": 2}
        assert_consistent(mgr)
