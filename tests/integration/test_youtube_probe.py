"""``YouTubeUploader.probe_session`` (the optional ``SessionProber`` seam) against FakeYouTube:
the real google-api-python-client transport, no media sent, no quota spent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.errors import TransientUploadError
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.uploader import (
    DryRunUploader,
    SessionState,
    UploadRequest,
)

from ._youtube_fixtures import CHUNK, NOW, fixed_clock, real_uploader

pytestmark = pytest.mark.timeout(60)


class _Stop(Exception):
    pass


def _open_session(uploader: Any, video: Path) -> str:
    """Open a resumable session and stop before any media byte is sent."""
    seen: list[str] = []

    def progress(_sent: int, _total: int, uri: str | None) -> None:
        if uri is not None:
            seen.append(uri)
            raise _Stop

    with pytest.raises(_Stop):
        uploader.upload(_request(video), progress=progress)
    return seen[0]


def _request(video: Path, session_uri: str | None = None) -> UploadRequest:
    return UploadRequest(
        video_path=str(video),
        metadata=VideoMetadata(title="probe me", privacy="private"),
        publish_at=NOW,
        session_uri=session_uri,
    )


def test_probe_answers_incomplete_then_completed_then_gone(
    youtube_fake: FakeYouTube, youtube_video: Any
) -> None:
    uploader = real_uploader(youtube_fake)
    video = youtube_video(size=2 * CHUNK + 10)
    uri = _open_session(uploader, video)
    assert youtube_fake.bytes_received == 0

    answer = uploader.probe_session(uri, str(video))
    assert (answer.state, answer.offset, answer.video_id) == (SessionState.INCOMPLETE, 0, None)

    result = uploader.upload(_request(video, session_uri=uri))
    received = youtube_fake.bytes_received
    answer = uploader.probe_session(uri, str(video))
    assert (answer.state, answer.video_id) == (SessionState.COMPLETED, result.video_id)
    # The file may be gone by the time the session is asked: the total is sent as "*".
    video.unlink()
    assert uploader.probe_session(uri, str(video)).video_id == result.video_id
    assert youtube_fake.bytes_received == received  # asking sends no media
    assert len(youtube_fake.videos) == 1

    youtube_fake.expire_sessions()
    assert uploader.probe_session(uri, str(video)).state is SessionState.GONE


def test_probe_retries_transient_errors_then_raises_classified(
    youtube_fake: FakeYouTube, youtube_video: Any
) -> None:
    sleeps: list[float] = []
    uploader = real_uploader(youtube_fake, sleeps, max_retries=2)
    video = youtube_video(size=CHUNK)
    uri = _open_session(uploader, video)
    youtube_fake.fail_next(1, 503)
    assert uploader.probe_session(uri, str(video)).state is SessionState.INCOMPLETE
    assert len(sleeps) == 1
    youtube_fake.fail_next(5, 503)
    with pytest.raises(TransientUploadError):
        uploader.probe_session(uri, str(video))


def test_dry_run_sessions_are_never_complete(tmp_path: Path) -> None:
    answer = DryRunUploader(clock=fixed_clock).probe_session("dryrun://upload/x", "missing.mp4")
    assert (answer.state, answer.offset) == (SessionState.INCOMPLETE, 0)
