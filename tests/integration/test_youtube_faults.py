"""YouTubeUploader against FakeYouTube's faults: retries, classification, follow-up failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.errors import HttpError, ResumableUploadError

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.errors import (
    AuthorizationError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.uploader import UploadRequest, UploadStep

from ._youtube_fixtures import (
    CHUNK,
    NOW,
    Recorder,
    fixed_clock,
    real_uploader,
    sha256_of,
)

pytestmark = pytest.mark.timeout(60)

PUBLISH_AT = NOW + timedelta(days=2)
#: Midnight in Los Angeles after NOW (2026-11-23 04:00 PST) is 2026-11-24 08:00 UTC.
NEXT_PT_MIDNIGHT = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _request(video: Path, metadata: VideoMetadata | None = None, **kwargs: object) -> UploadRequest:
    return UploadRequest(
        video_path=str(video),
        metadata=metadata or VideoMetadata(title="fault test"),
        publish_at=PUBLISH_AT,
        **kwargs,  # type: ignore[arg-type]
    )


def _assert_intact(fake: FakeYouTube, video_id: str, video: Path) -> None:
    stored = fake.videos[video_id]
    assert stored.sha256 == sha256_of(video)
    assert stored.size == video.stat().st_size
    assert fake.insert_calls == 1
    assert len(fake.videos) == 1


def test_503_on_a_chunk_is_retried_and_resumed(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(4 * CHUNK)
    sleeps: list[float] = []
    uploader = real_uploader(youtube_fake, sleeps)
    youtube_fake.fail_next(2, 503, target="chunk")
    result = uploader.upload(_request(video))

    _assert_intact(youtube_fake, result.video_id, video)
    assert len(sleeps) == 2
    assert youtube_fake.status_queries == 2  # the client asked where to resume after each 503


def test_503_on_initiation_is_retried(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(CHUNK)
    youtube_fake.fail_next(1, 500, target="insert")
    result = real_uploader(youtube_fake).upload(_request(video))
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    # An injected fault is answered before the fake counts or charges the request.
    assert youtube_fake.insert_calls == 1
    assert result.operations == ("videos.insert",)


@pytest.mark.parametrize(
    ("size", "chunk_size", "after_bytes"),
    [
        (10 * CHUNK + 123, CHUNK, None),
        (10 * CHUNK + 123, 4 * CHUNK, 3 * CHUNK + 1000),
        # A chunk larger than the socket buffers: the client sees the reset while still sending
        # (our retry loop asks the server where to resume), not just a missing answer.
        (80 * CHUNK, 64 * CHUNK, 300 * 1024),
    ],
    ids=["half-chunk-nothing-kept", "partial-chunk-kept", "reset-while-sending"],
)
def test_dropped_connection_mid_chunk_is_survived(
    youtube_fake: FakeYouTube, youtube_video, size: int, chunk_size: int, after_bytes: int | None
):
    video = youtube_video(size)
    uploader = real_uploader(youtube_fake, chunk_size=chunk_size)
    youtube_fake.drop_next_chunk(after_bytes=after_bytes)
    result = uploader.upload(_request(video))

    _assert_intact(youtube_fake, result.video_id, video)
    dropped = [r for r in youtube_fake.requests if r.status == 0]
    assert len(dropped) == 1
    # Every byte arrived; what was dropped (minus what the server kept) was sent again.
    assert youtube_fake.bytes_received > video.stat().st_size
    assert youtube_fake.bytes_received - video.stat().st_size <= chunk_size + dropped[0].body_bytes


def test_random_server_errors_are_survived(youtube_video):
    with FakeYouTube(clock=fixed_clock, error_rate=0.3, seed=7) as fake:
        video = youtube_video(12 * CHUNK)
        result = real_uploader(fake, max_retries=10).upload(_request(video))
        _assert_intact(fake, result.video_id, video)
        assert any(r.status == 503 for r in fake.requests)


def test_transient_errors_give_up_after_max_retries(youtube_fake: FakeYouTube, youtube_video):
    sleeps: list[float] = []
    uploader = real_uploader(youtube_fake, sleeps, max_retries=3)
    youtube_fake.fail_next(100, 503, target="chunk")
    rec = Recorder(fake=youtube_fake)
    with pytest.raises(TransientUploadError) as info:
        uploader.upload(_request(youtube_video(2 * CHUNK)), progress=rec.on_progress)
    assert isinstance(info.value.__cause__, HttpError)
    assert info.value.status == 503
    assert len(sleeps) == 3
    assert all(0 <= s <= 0.01 for s in sleeps)
    assert rec.progress[0][0] == 0
    assert rec.progress[0][2]


def test_unreachable_server_is_transient(youtube_video):
    fake = FakeYouTube(clock=fixed_clock).start()
    uploader = real_uploader(fake, max_retries=1)
    fake.close()
    with pytest.raises(TransientUploadError) as info:
        uploader.upload(_request(youtube_video(100)))
    assert isinstance(info.value.__cause__, OSError)


def test_quota_exceeded_defers_to_next_pt_midnight(youtube_fake: FakeYouTube, youtube_video):
    sleeps: list[float] = []
    youtube_fake.quota_exceeded_next(target="insert")
    with pytest.raises(QuotaExhaustedError) as info:
        real_uploader(youtube_fake, sleeps).upload(_request(youtube_video(100)))
    err = info.value
    assert err.reason == "quotaExceeded"
    assert err.status == 403
    assert err.resume_at == NEXT_PT_MIDNIGHT
    assert isinstance(err.__cause__, ResumableUploadError)
    assert sleeps == []  # never retried


def test_spent_insert_bucket_429_video_uploads_per_day(youtube_video):
    with FakeYouTube(clock=fixed_clock, insert_limit=1) as fake:
        uploader = real_uploader(fake)
        uploader.upload(_request(youtube_video(100, name="a.mp4")))
        with pytest.raises(QuotaExhaustedError) as info:
            uploader.upload(_request(youtube_video(100, name="b.mp4")))
    err = info.value
    assert err.status == 429
    assert err.reason == "rateLimitExceeded"
    assert err.resume_at == NEXT_PT_MIDNIGHT
    assert "Video Uploads per day" in str(err)
    assert isinstance(err.__cause__, HttpError)
    assert fake.quota_used("uploads") == 1


def test_spent_shared_bucket_fails_the_thumbnail_after_the_insert(youtube_video, thumbnail: Path):
    with FakeYouTube(clock=fixed_clock, shared_limit=10) as fake:
        rec = Recorder(fake=fake)
        metadata = VideoMetadata(title="thumb", thumbnail_path=str(thumbnail))
        with pytest.raises(QuotaExhaustedError) as info:
            real_uploader(fake).upload(
                _request(youtube_video(CHUNK), metadata), on_step=rec.on_step
            )
        assert info.value.status == 403
        assert [s for s, _ in rec.steps] == [UploadStep.INSERT]  # the caller knows what finished
        assert fake.insert_calls == 1


def test_upload_limit_exceeded(youtube_fake: FakeYouTube, youtube_video):
    youtube_fake.upload_limit_next()
    with pytest.raises(UploadLimitExceededError) as info:
        real_uploader(youtube_fake).upload(_request(youtube_video(100)))
    assert info.value.retry_after == timedelta(hours=24)
    assert info.value.status == 400
    assert isinstance(info.value.__cause__, HttpError)


def test_invalid_metadata_is_permanent_without_retry(youtube_fake: FakeYouTube, youtube_video):
    sleeps: list[float] = []
    metadata = VideoMetadata(title="bad category", category_id="999")
    with pytest.raises(PermanentUploadError) as info:
        real_uploader(youtube_fake, sleeps).upload(_request(youtube_video(100), metadata))
    assert info.value.reason == "invalidCategoryId"
    assert info.value.status == 400
    assert isinstance(info.value.__cause__, HttpError)
    assert sleeps == []


def test_401_without_refresh_is_an_authorization_error(youtube_fake: FakeYouTube, youtube_video):
    youtube_fake.unauthorized_next()
    with pytest.raises(AuthorizationError) as info:
        real_uploader(youtube_fake).upload(_request(youtube_video(100)))
    assert isinstance(info.value.__cause__, RefreshError)
    assert "langflix-scheduler auth" in str(info.value)


def test_401_is_refreshed_once_with_a_refresh_token(youtube_video):
    with FakeYouTube(clock=fixed_clock, required_token="fresh") as fake:
        credentials = Credentials(
            token="stale",
            refresh_token="r",
            client_id="id",
            client_secret="secret",
            token_uri=fake.token_uri,
        )
        video = youtube_video(2 * CHUNK)
        result = real_uploader(fake, credentials=credentials).upload(_request(video))
        assert fake.videos[result.video_id].sha256 == sha256_of(video)
        assert credentials.token == "fresh"


def test_revoked_refresh_token_is_an_authorization_error(youtube_video):
    with FakeYouTube(clock=fixed_clock, required_token="fresh") as fake:
        fake.revoke_refresh_tokens()
        credentials = Credentials(
            token="stale",
            refresh_token="r",
            client_id="i",
            client_secret="s",
            token_uri=fake.token_uri,
        )
        with pytest.raises(AuthorizationError) as info:
            real_uploader(fake, credentials=credentials).upload(_request(youtube_video(100)))
    assert info.value.reason == "invalid_grant"
    assert "7 days" in str(info.value)
    assert "secret" not in str(info.value)


def test_failed_thumbnail_is_retried_alone(youtube_fake: FakeYouTube, youtube_video, thumbnail):
    video = youtube_video(2 * CHUNK)
    metadata = VideoMetadata(title="t", thumbnail_path=str(thumbnail), playlist_id="PL1")
    uploader = real_uploader(youtube_fake, max_retries=0)
    rec = Recorder(fake=youtube_fake)
    youtube_fake.fail_next(1, 503, target="thumbnails")
    with pytest.raises(TransientUploadError):
        uploader.upload(_request(video, metadata), on_step=rec.on_step)
    assert [s for s, _ in rec.steps] == [UploadStep.INSERT]
    video_id = rec.steps[0][1]

    again = uploader.upload(_request(video, metadata, video_id=video_id), on_step=rec.on_step)
    assert again.operations == ("thumbnails.set", "playlistItems.insert")
    assert youtube_fake.insert_calls == 1
    assert youtube_fake.bytes_received == 2 * CHUNK
    assert youtube_fake.videos[video_id].thumbnail_set
    assert youtube_fake.videos[video_id].playlist_ids == ("PL1",)


def test_unknown_playlist_is_permanent_after_earlier_steps(youtube_video, thumbnail):
    with FakeYouTube(clock=fixed_clock, known_playlists={"PLgood"}) as fake:
        rec = Recorder(fake=fake)
        metadata = VideoMetadata(title="t", thumbnail_path=str(thumbnail), playlist_id="PLbad")
        with pytest.raises(PermanentUploadError) as info:
            real_uploader(fake).upload(_request(youtube_video(100), metadata), on_step=rec.on_step)
    assert info.value.reason == "playlistNotFound"
    assert info.value.status == 404
    assert [s for s, _ in rec.steps] == [UploadStep.INSERT, UploadStep.THUMBNAIL]


def test_no_google_exception_escapes(youtube_fake: FakeYouTube, youtube_video):
    youtube_fake.fail_next(1, 418, target="insert")
    with pytest.raises(UploadError) as info:
        real_uploader(youtube_fake).upload(_request(youtube_video(100)))
    assert type(info.value) is PermanentUploadError
    assert isinstance(info.value.__cause__, HttpError)


def test_session_expiring_mid_upload_starts_one_new_insert(
    youtube_fake: FakeYouTube, youtube_video
):
    video = youtube_video(4 * CHUNK)
    uris: list[str | None] = []

    def expire_after_first_chunk(sent: int, total: int, uri: str | None) -> None:
        uris.append(uri)
        if sent == CHUNK and len(set(uris)) == 1:
            youtube_fake.expire_sessions()

    result = real_uploader(youtube_fake).upload(_request(video), progress=expire_after_first_chunk)
    assert result.operations == ("videos.insert", "videos.insert")
    assert len(set(uris)) == 2
    assert youtube_fake.insert_calls == 2
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert len(youtube_fake.videos) == 1
