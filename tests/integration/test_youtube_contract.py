"""Uploader contract: one body runs against YouTubeUploader + FakeYouTube (the real
google-api-python-client over loopback HTTP) and against DryRunUploader, where meaningful."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from langflix_scheduler.domain import Privacy, VideoMetadata
from langflix_scheduler.errors import PermanentUploadError
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.uploader import PUBLISH_AT_MIN_LEAD, UploadRequest, UploadStep

from ._youtube_fixtures import (
    CHUNK,
    FIVE_MB,
    NOW,
    Backend,
    Recorder,
    fixed_clock,
    make_file,
    real_uploader,
    sha256_of,
)

pytestmark = pytest.mark.timeout(60)

HELPER = Path(__file__).with_name("youtube_helpers.py")
PUBLISH_AT = NOW + timedelta(days=1, hours=3)


def _request(video: Path, **kwargs: object) -> UploadRequest:
    metadata = kwargs.pop("metadata", None) or VideoMetadata(
        title="Korean lesson 1",
        description="Learn Korean with langflix",
        tags=("korean", "lesson"),
        default_language="ko",
    )
    publish_at = kwargs.pop("publish_at", PUBLISH_AT)
    return UploadRequest(
        video_path=str(video),
        metadata=metadata,  # type: ignore[arg-type]
        publish_at=publish_at,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def test_five_megabytes_in_256k_chunks_arrive_byte_identical(backend: Backend, youtube_video):
    video = youtube_video(FIVE_MB)
    rec = backend.recorder()
    result = backend.uploader.upload(_request(video), progress=rec.on_progress)

    assert result.privacy_status == "private"
    assert result.publish_at == PUBLISH_AT
    assert result.operations == ("videos.insert",)
    assert result.bytes_sent == FIVE_MB
    if backend.fake is None:
        return
    fake = backend.fake
    stored = fake.videos[result.video_id]
    assert stored.size == FIVE_MB
    assert stored.sha256 == sha256_of(video)
    assert stored.snippet["title"] == "Korean lesson 1"
    assert stored.snippet["description"] == "Learn Korean with langflix"
    assert stored.snippet["tags"] == ["korean", "lesson"]
    assert stored.snippet["defaultLanguage"] == "ko"
    assert stored.status["privacyStatus"] == "private"
    assert stored.status["publishAt"] == "2026-11-24T15:00:00Z"
    assert stored.status["selfDeclaredMadeForKids"] is False
    assert fake.insert_calls == 1
    assert fake.bytes_received == FIVE_MB
    assert fake.chunks_received == -(-FIVE_MB // CHUNK)  # 20 chunks, nothing re-sent


def test_progress_is_monotonic_and_session_reported_before_chunk_zero(
    backend: Backend, youtube_video
):
    video = youtube_video(3 * CHUNK + 1000)
    rec = backend.recorder()
    backend.uploader.upload(_request(video), progress=rec.on_progress)

    sent = [p[0] for p in rec.progress]
    assert sent[0] == 0
    assert sent == sorted(sent)
    assert sent[-1] == 3 * CHUNK + 1000
    assert all(p[1] == 3 * CHUNK + 1000 for p in rec.progress)
    uris = {p[2] for p in rec.progress}
    assert len(uris) == 1
    assert None not in uris
    if backend.fake is not None:
        assert rec.chunks_at_progress[0] == 0  # the session URI was known before chunk 0 was sent
        assert sent == [0, CHUNK, 2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 1000]


@pytest.mark.parametrize(
    ("privacy", "publish_at", "expected_privacy", "expected_publish_at"),
    [
        (Privacy.PUBLIC, PUBLISH_AT, "private", PUBLISH_AT),
        (Privacy.PUBLIC, NOW - timedelta(hours=1), "public", None),
        (Privacy.PUBLIC, NOW + PUBLISH_AT_MIN_LEAD - timedelta(seconds=1), "public", None),
        (Privacy.PUBLIC, NOW + PUBLISH_AT_MIN_LEAD, "private", NOW + PUBLISH_AT_MIN_LEAD),
        (Privacy.PUBLIC, None, "public", None),
        (Privacy.UNLISTED, PUBLISH_AT, "unlisted", None),
        (Privacy.PRIVATE, PUBLISH_AT, "private", None),
    ],
)
def test_publish_at_only_when_safely_ahead_and_privacy_always_explicit(
    backend: Backend, youtube_video, privacy, publish_at, expected_privacy, expected_publish_at
):
    video = youtube_video(1000)
    metadata = VideoMetadata(title="scheduled", privacy=privacy)
    result = backend.uploader.upload(_request(video, metadata=metadata, publish_at=publish_at))

    assert result.privacy_status == expected_privacy
    assert result.publish_at == expected_publish_at
    if backend.fake is None:
        return
    stored = backend.fake.videos[result.video_id]
    sent_status = stored.request_body["status"]
    assert sent_status["privacyStatus"] == expected_privacy
    if expected_publish_at is None:
        assert "publishAt" not in sent_status
    else:
        assert sent_status["publishAt"] == expected_publish_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not stored.published_immediately


def test_thumbnail_and_playlist_follow_ups_reported_in_order(
    backend: Backend, youtube_video, thumbnail
):
    video = youtube_video(2 * CHUNK)
    metadata = VideoMetadata(title="with extras", thumbnail_path=str(thumbnail), playlist_id="PL1")
    rec = backend.recorder()
    result = backend.uploader.upload(_request(video, metadata=metadata), on_step=rec.on_step)

    assert rec.steps == [
        (UploadStep.INSERT, result.video_id),
        (UploadStep.THUMBNAIL, result.video_id),
        (UploadStep.PLAYLIST, result.video_id),
    ]
    assert result.operations == ("videos.insert", "thumbnails.set", "playlistItems.insert")
    assert result.operations == metadata.operations()
    if backend.fake is not None:
        stored = backend.fake.videos[result.video_id]
        assert stored.thumbnail_set
        assert stored.thumbnail_sha256 == sha256_of(thumbnail)
        assert stored.playlist_ids == ("PL1",)
        assert backend.fake.quota_used("uploads") == 1
        assert backend.fake.quota_used("shared") == 100


def test_completed_steps_and_known_video_id_are_skipped(backend: Backend, youtube_video, thumbnail):
    video = youtube_video(CHUNK)
    metadata = VideoMetadata(title="follow-ups", thumbnail_path=str(thumbnail), playlist_id="PL9")
    first = backend.uploader.upload(_request(video, metadata=metadata))

    rec = backend.recorder()
    again = backend.uploader.upload(
        _request(
            video,
            metadata=metadata,
            video_id=first.video_id,
            completed_steps=frozenset({UploadStep.THUMBNAIL}),
        ),
        progress=rec.on_progress,
        on_step=rec.on_step,
    )
    assert again.video_id == first.video_id
    assert again.operations == ("playlistItems.insert",)
    assert again.bytes_sent == 0
    assert rec.steps == [(UploadStep.PLAYLIST, first.video_id)]
    assert rec.progress == []
    if backend.fake is not None:
        stored = backend.fake.videos[first.video_id]
        assert backend.fake.insert_calls == 1
        assert stored.thumbnail_count == 1
        assert stored.playlist_ids == ("PL9", "PL9")

    nothing = backend.uploader.upload(
        _request(
            video,
            metadata=metadata,
            video_id=first.video_id,
            completed_steps=frozenset({UploadStep.THUMBNAIL, UploadStep.PLAYLIST}),
        )
    )
    assert nothing.operations == ()


@pytest.mark.parametrize("problem", ["missing", "empty", "directory", "unreadable"])
def test_bad_video_file_is_permanent_before_any_request(
    backend: Backend, tmp_path: Path, problem: str
):
    path = tmp_path / "bad.mp4"
    if problem == "empty":
        path.write_bytes(b"")
    elif problem == "directory":
        path.mkdir()
    elif problem == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root can read any file")
        path.write_bytes(b"x" * 10)
        path.chmod(0)
    with pytest.raises(PermanentUploadError) as info:
        backend.uploader.upload(_request(path))
    assert info.value.reason == "invalidVideoFile"
    if backend.fake is not None:
        assert backend.fake.requests == ()


def test_missing_thumbnail_is_permanent_before_any_request(backend: Backend, youtube_video):
    metadata = VideoMetadata(title="t", thumbnail_path="/nonexistent/thumb.png")
    with pytest.raises(PermanentUploadError) as info:
        backend.uploader.upload(_request(youtube_video(100), metadata=metadata))
    assert info.value.reason == "invalidThumbnail"
    if backend.fake is not None:
        assert backend.fake.requests == ()


def test_callback_errors_propagate_unchanged(backend: Backend, youtube_video):
    class LeaseLost(Exception):
        pass

    def progress(sent: int, total: int, uri: str | None) -> None:
        if sent > 0:
            raise LeaseLost

    with pytest.raises(LeaseLost):
        backend.uploader.upload(_request(youtube_video(3 * CHUNK)), progress=progress)


# -- real client only -------------------------------------------------------------------------


def test_completed_session_resumed_gives_same_video_without_second_insert(
    youtube_fake: FakeYouTube, youtube_video
):
    video = youtube_video(3 * CHUNK)
    uploader = real_uploader(youtube_fake)
    rec = Recorder(fake=youtube_fake)
    first = uploader.upload(_request(video), progress=rec.on_progress)
    session_uri = rec.progress[0][2]

    steps: list[tuple[UploadStep, str]] = []
    again = uploader.upload(
        _request(video, session_uri=session_uri),
        on_step=lambda s, v: steps.append((s, v)),
    )
    assert again.video_id == first.video_id
    assert again.operations == ()
    assert again.bytes_sent == 0
    assert steps == [(UploadStep.INSERT, first.video_id)]
    assert youtube_fake.insert_calls == 1
    assert youtube_fake.bytes_received == 3 * CHUNK
    assert len(youtube_fake.videos) == 1


def test_expired_stored_session_starts_a_new_insert(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(2 * CHUNK)
    uploader = real_uploader(youtube_fake)
    uris: list[str | None] = []

    class Stop(Exception):
        pass

    def stop_after_first_chunk(sent: int, total: int, uri: str | None) -> None:
        uris.append(uri)
        if sent >= CHUNK:
            raise Stop

    with pytest.raises(Stop):
        uploader.upload(_request(video), progress=stop_after_first_chunk)
    youtube_fake.expire_sessions()

    new_uris: list[str | None] = []
    result = uploader.upload(
        _request(video, session_uri=uris[0]), progress=lambda s, t, u: new_uris.append(u)
    )
    assert result.operations == ("videos.insert",)
    assert result.bytes_sent == 2 * CHUNK
    assert new_uris[0] != uris[0]
    assert youtube_fake.insert_calls == 2
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)


def _run_helper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("crash_after", [0, 2 * 1000 * 1000], ids=["in-chunk-0", "after-2MB"])
def test_upload_crashed_in_one_process_resumes_in_another(
    youtube_fake: FakeYouTube, youtube_video, tmp_path: Path, crash_after: int
):
    video = youtube_video(FIVE_MB)
    state = tmp_path / "state.json"
    out = tmp_path / "out.json"
    common = ["--endpoint", youtube_fake.api_endpoint, "--video", str(video), "--state", str(state)]

    crashed = _run_helper("crash", *common, "--crash-after", str(crash_after))
    assert crashed.returncode == 17, crashed.stderr
    stored = json.loads(state.read_text())
    offset = stored["offset"]
    assert offset >= crash_after
    assert offset < FIVE_MB
    assert youtube_fake.insert_calls == 1
    assert youtube_fake.bytes_received == offset  # the crash happened right after that chunk
    assert youtube_fake.videos == {}

    resumed = _run_helper("resume", *common, "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(out.read_text())
    assert result["pid"] != os.getpid()
    assert result["operations"] == []  # no second videos.insert
    assert result["bytes_sent"] == FIVE_MB - offset
    assert result["progress"][0] == [offset, FIVE_MB, stored["session_uri"]]
    assert youtube_fake.insert_calls == 1
    assert youtube_fake.bytes_received == FIVE_MB  # only the missing bytes were sent
    stored_video = youtube_fake.videos[result["video_id"]]
    assert stored_video.sha256 == sha256_of(video)
    assert stored_video.status["publishAt"] == "2030-01-01T10:00:00Z"


def test_one_uploader_shared_by_threads(youtube_fake: FakeYouTube, tmp_path: Path):
    uploader = real_uploader(youtube_fake)
    videos = [make_file(tmp_path, f"v{i}.mp4", 3 * CHUNK + i, seed=i) for i in range(4)]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = uploader.upload(_request(videos[i])).video_id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(set(results.values())) == 4
    for i, video_id in results.items():
        assert youtube_fake.videos[video_id].sha256 == sha256_of(videos[i])
    assert youtube_fake.insert_calls == 4


def test_dry_run_is_deterministic(youtube_video):
    from langflix_scheduler.youtube.uploader import DryRunUploader

    video = youtube_video(10)
    a = DryRunUploader(clock=fixed_clock).upload(_request(video))
    b = DryRunUploader(clock=fixed_clock).upload(_request(video))
    assert a == b
    assert len(a.video_id) == 11
