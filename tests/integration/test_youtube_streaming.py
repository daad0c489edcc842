"""The request shape of issue 14: the media streamed in one request by default, through one
reused buffer; failures mid-request resume from the server's confirmed offset; nothing re-sends a
half-read stream; progress and cancellation work while a long request is in flight."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httplib2
import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.errors import ConfigurationError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import RunOutcome, UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.streaming import FileBody, StreamReused
from langflix_scheduler.youtube.uploader import UploadRequest, UploadResult, upload_passing_calls

from ..conftest import T0
from ._processor_support import schedule_many
from ._youtube_fixtures import *  # noqa: F403 - pytest fixtures
from ._youtube_fixtures import CHUNK, NOW, fixed_clock, real_uploader, sha256_of
from .db_helpers import RawDB

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _httplib2_default_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """httplib2's own default (googleapiclient sets 1 process-wide when imported): the
    guarantees below must not depend on it."""
    monkeypatch.setattr(httplib2, "RETRIES", 2)


MIB = 1024 * 1024
SIZE = 6 * MIB + 12345  # several 1 MiB buffers, not a multiple of 256 KiB


def _request(video: Path, **kwargs: object) -> UploadRequest:
    return UploadRequest(
        video_path=str(video),
        metadata=VideoMetadata(title="streaming test"),
        publish_at=NOW + timedelta(days=2),
        **kwargs,  # type: ignore[arg-type]
    )


def _media_puts(fake: FakeYouTube) -> list[int]:
    """Body bytes of each media PUT the fake saw (answered or dropped)."""
    return [r.body_bytes for r in fake.requests if r.kind == "chunk"]


def test_default_sends_the_whole_file_in_one_request(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(SIZE)
    seen: list[tuple[int, int]] = []

    def progress(sent: int, total: int, uri: str | None) -> None:
        seen.append((sent, youtube_fake.chunks_received))

    uploader = real_uploader(youtube_fake, chunk_size=None)
    assert uploader.chunk_size is None
    result = uploader.upload(_request(video), progress=progress)

    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert _media_puts(youtube_fake) == [SIZE]
    assert result.bytes_sent == SIZE
    # The session URI first (before any media), then progress while the one request is in
    # flight, from the bytes handed to the socket: one report per 1 MiB buffer.
    assert seen[0] == (0, 0)
    sent = [s for s, _ in seen]
    assert sent == sorted(sent)
    assert sent[-1] == SIZE
    assert [s for s in sent if 0 < s < SIZE] == [n * MIB for n in range(1, 7)]


def test_chunk_size_still_splits_requests(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(SIZE)
    result = real_uploader(youtube_fake, chunk_size=4 * CHUNK).upload(_request(video))
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    puts = _media_puts(youtube_fake)
    assert puts[:-1] == [4 * CHUNK] * (len(puts) - 1)
    assert sum(puts) == SIZE


@pytest.mark.parametrize("chunk_size", [None, 16 * CHUNK])
def test_drop_mid_request_resumes_from_the_confirmed_offset(
    youtube_fake: FakeYouTube, youtube_video, chunk_size: int | None
):
    """A connection cut mid-body: the server keeps what it persisted (rounded to 256 KiB), the
    uploader asks and sends only the rest; YouTube ends with exactly the file's bytes."""
    video = youtube_video(SIZE)
    cut = 2 * MIB + 1000
    youtube_fake.drop_next_chunk(1, after_bytes=cut)
    result = real_uploader(youtube_fake, chunk_size=chunk_size).upload(_request(video))

    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert youtube_fake.status_queries == 1
    kept = cut - cut % CHUNK
    # Nothing but the rest after the kept offset was sent again.
    assert youtube_fake.bytes_received == cut + (SIZE - kept)
    assert result.bytes_sent == SIZE


def test_5xx_after_the_whole_body_resumes(youtube_fake: FakeYouTube, youtube_video):
    video = youtube_video(SIZE)
    youtube_fake.fail_next(1, 503, target="chunk")
    result = real_uploader(youtube_fake, chunk_size=None).upload(_request(video))
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert youtube_fake.status_queries == 1
    assert _media_puts(youtube_fake) == [SIZE, SIZE]  # the 503 kept nothing: all sent again


def test_a_lost_answer_is_not_re_sent_by_httplib2(youtube_fake: FakeYouTube, youtube_video):
    """The whole body arrives, the answer is lost: httplib2 would send the request again on its
    own (a stale kept-alive connection, whatever its RETRIES); a streamed body is refused, and
    the uploader asks the server, which has everything kept (rounded down) already."""
    video = youtube_video(SIZE)
    youtube_fake.drop_next_chunk(1, after_bytes=SIZE)
    result = real_uploader(youtube_fake, chunk_size=None).upload(_request(video))

    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    puts = _media_puts(youtube_fake)
    assert puts == [SIZE, SIZE - (SIZE - SIZE % CHUNK)]
    assert youtube_fake.status_queries == 1


def test_a_401_mid_upload_refreshes_and_resumes_without_re_sending_the_stream(
    youtube_fake: FakeYouTube, youtube_video
):
    """``AuthorizedHttp`` refreshes the token on a 401 and sends the same request again: with a
    stream that would be a half-read body; it is refused, and the upload resumes by status
    query with the new token."""
    video = youtube_video(SIZE)
    credentials = Credentials(
        token="old",
        refresh_token="r",
        token_uri=youtube_fake.token_uri,
        client_id="c",
        client_secret="s",
    )
    youtube_fake.unauthorized_next(1, target="chunk")
    uploader = real_uploader(youtube_fake, chunk_size=None, credentials=credentials)
    result = uploader.upload(_request(video))

    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert credentials.token != "old"
    assert youtube_fake.status_queries == 1
    assert _media_puts(youtube_fake) == [SIZE, SIZE]


class _Stop(Exception):
    pass


def test_cancel_mid_request_stops_promptly_and_resumes_in_a_new_uploader(
    youtube_fake: FakeYouTube, youtube_video
):
    video = youtube_video(SIZE)
    stored: dict[str, str] = {}
    stopped_at: list[float] = []

    def progress(sent: int, total: int, uri: str | None) -> None:
        assert uri is not None
        stored["uri"] = uri
        if sent >= 3 * MIB:
            stopped_at.append(time.monotonic())
            raise _Stop

    first = real_uploader(youtube_fake, chunk_size=None)
    with pytest.raises(_Stop):
        first.upload(_request(video), progress=progress)
    assert time.monotonic() - stopped_at[0] < 2.0
    assert youtube_fake.videos == {}
    youtube_fake.wait_until(lambda f: any(r.status == 0 for r in f.requests))
    kept = next(iter(youtube_fake.sessions.values())).offset
    assert 0 < kept <= 3 * MIB

    # Another uploader (as in the next run of another process) resumes the stored session.
    second = real_uploader(youtube_fake, chunk_size=None)
    result = second.upload(_request(video, session_uri=stored["uri"]))
    assert youtube_fake.videos[result.video_id].sha256 == sha256_of(video)
    assert result.bytes_sent == SIZE - kept
    assert result.operations == ()
    assert youtube_fake.insert_calls == 1


def test_a_streamed_body_can_be_iterated_once(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 40)
    reached: list[int] = []
    body = FileBody(str(path), 100, 5000, buffer=bytearray(4096), on_sent=reached.append)
    assert b"".join(bytes(piece) for piece in body) == path.read_bytes()[100:5100]
    assert reached == [4196, 5100]
    with pytest.raises(StreamReused):
        iter(body)


def test_a_file_shorter_than_announced_is_a_local_error(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="ended at byte 10"):
        list(FileBody(str(path), 0, 20, buffer=bytearray(8)))


@pytest.mark.parametrize("value", [True, 0, 1000, -CHUNK, 1.5])
def test_chunk_size_must_be_none_or_a_multiple_of_256k(value: object):
    with pytest.raises(ConfigurationError, match="chunk_size"):
        YouTubeUploader(Credentials(token="t"), chunk_size=value)  # type: ignore[arg-type]


def test_importing_the_uploader_changes_no_global_httplib2_setting():
    # googleapiclient.discovery itself sets httplib2.RETRIES = 1 when imported; our modules set
    # nothing (the guarantee they need is kept per connection: see the tests above, which run
    # with httplib2's default of 2).
    code = (
        "import httplib2, googleapiclient.discovery; httplib2.RETRIES = 7\n"
        "import langflix_scheduler.youtube.google\n"
        "import langflix_scheduler.youtube.resumable, langflix_scheduler.youtube.metering\n"
        "assert httplib2.RETRIES == 7, httplib2.RETRIES\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


_RSS_CHILD = """
import resource, sys
from datetime import UTC, datetime, timedelta
from google.oauth2.credentials import Credentials
from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import UploadRequest

endpoint, small, big, chunk = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
uploader = YouTubeUploader(
    Credentials(token="t"), api_endpoint=endpoint, chunk_size=None if chunk == "-" else int(chunk)
)

def request(path):
    return UploadRequest(
        video_path=path, metadata=VideoMetadata(title="rss"),
        publish_at=datetime.now(UTC) + timedelta(days=2),
    )

uploader.upload(request(small))  # warm up: imports, connection, buffer
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
uploader.upload(request(big))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


@pytest.mark.slow
@pytest.mark.parametrize("chunk", ["-", str(8 * MIB)])
def test_memory_stays_flat_whatever_the_request_size(tmp_path: Path, chunk: str, youtube_video):
    small = youtube_video(3 * MIB, name="small.mp4")
    big = youtube_video(96 * MIB, name="big.mp4", seed=1)
    with FakeYouTube(clock=fixed_clock) as fake:
        out = subprocess.run(
            [sys.executable, "-c", _RSS_CHILD, fake.api_endpoint, str(small), str(big), chunk],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert len(fake.videos) == 2
    growth = int(out.stdout.strip().splitlines()[-1])
    assert growth < 16 * MIB, growth


def test_processor_stop_mid_request_keeps_the_session_and_the_next_run_resumes(
    make_manager: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    clock: FakeClock,
    db_url: str,
) -> None:
    """A stop request (what SIGTERM does) while the one request of a whole-file upload is in
    flight stops it within a buffer; the session is kept and the next run sends only the rest."""
    manager = make_manager(daily_limits={"final": 30, "short": 30})
    size = 8 * MIB + 777
    (sid,) = schedule_many(manager, video_file, 1, start=T0 + timedelta(minutes=20), size=size)
    peek = RawDB(db_url)
    box: dict[str, UploadProcessor] = {}
    with FakeYouTube(clock=clock) as fake:
        uploader = YouTubeUploader(
            Credentials(token="t"),
            api_endpoint=fake.api_endpoint,
            clock=clock,
            sleep=lambda _s: None,
        )

        class StopMidRequest:
            """Asks the processor to stop once 3 MiB of the one request were handed over."""

            reports_api_calls = True

            def upload(self, request: UploadRequest, **kwargs: Any) -> UploadResult:
                progress = kwargs.pop("progress")

                def watch(sent: int, total: int, uri: str | None) -> None:
                    if sent >= 3 * MIB:
                        box["processor"].request_stop()
                    progress(sent, total, uri)

                return upload_passing_calls(uploader, request, progress=watch, **kwargs)

        try:
            with UploadProcessor(
                manager, StopMidRequest(), progress_interval=timedelta(0)
            ) as processor:
                box["processor"] = processor
                assert processor.run_once().outcome is RunOutcome.STOPPED
            row = peek.row(sid)
            assert (row["upload_status"], row["attempts"], row["lease_owner"]) == (
                "scheduled",
                0,
                None,
            )
            assert row["upload_session_uri"]
            assert 3 * MIB <= row["bytes_uploaded"] < 5 * MIB  # stopped within a buffer or two
            assert fake.videos == {}
            fake.wait_until(lambda f: any(r.status == 0 for r in f.requests))
            kept = next(iter(fake.sessions.values())).offset
            first_part = fake.bytes_received

            with UploadProcessor(manager, uploader, progress_interval=timedelta(0)) as processor:
                assert processor.run_once().uploaded == 1
            (video,) = fake.videos.values()
            assert video.sha256 == sha256_of(Path(row["video_path"]))
            assert fake.insert_calls == 1
            assert fake.bytes_received - first_part == size - kept  # only the rest was sent
        finally:
            uploader.close()
            peek.close()
