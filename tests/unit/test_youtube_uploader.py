"""Uploader helpers, the dry run, and YouTubeUploader construction (no network)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import Privacy, VideoMetadata
from langflix_scheduler.errors import ConfigurationError, InvalidScheduleError, PermanentUploadError
from langflix_scheduler.youtube.uploader import (
    PUBLISH_AT_MIN_LEAD,
    DryRunUploader,
    UploadRequest,
    UploadResult,
    UploadStep,
    check_video_file,
    format_rfc3339,
    publication_status,
    video_resource,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_format_rfc3339_is_utc_with_z():
    seoul = timezone(timedelta(hours=9))
    assert (
        format_rfc3339(datetime(2026, 1, 2, 12, 4, 5, 999, tzinfo=seoul)) == "2026-01-02T03:04:05Z"
    )
    with pytest.raises(ValueError, match="aware"):
        format_rfc3339(datetime(2026, 1, 2))  # noqa: DTZ001 - naive on purpose


def test_publication_status_margin():
    ahead = NOW + PUBLISH_AT_MIN_LEAD
    assert publication_status(Privacy.PUBLIC, ahead, now=NOW) == ("private", ahead)
    just_short = ahead - timedelta(microseconds=1)
    assert publication_status(Privacy.PUBLIC, just_short, now=NOW) == ("public", None)
    assert publication_status(Privacy.PUBLIC, NOW - timedelta(days=1), now=NOW) == ("public", None)
    assert publication_status(Privacy.UNLISTED, ahead, now=NOW) == ("unlisted", None)
    assert publication_status(Privacy.PRIVATE, None, now=NOW) == ("private", None)
    seoul = timezone(timedelta(hours=9))
    local = datetime(2026, 11, 25, 9, 0, 0, 500, tzinfo=seoul)
    privacy, sent = publication_status(Privacy.PUBLIC, local, now=NOW)
    assert privacy == "private"
    assert sent == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert sent is not None
    assert sent.tzinfo is UTC


def test_video_resource_always_has_privacy_status():
    metadata = VideoMetadata(
        title="t", description="d", tags=("a",), made_for_kids=True, default_language="ko"
    )
    body = video_resource(metadata, privacy_status="public", publish_at=None)
    assert body["status"] == {"privacyStatus": "public", "selfDeclaredMadeForKids": True}
    assert body["snippet"] == {
        "title": "t",
        "description": "d",
        "categoryId": "27",
        "tags": ["a"],
        "defaultLanguage": "ko",
        "defaultAudioLanguage": "ko",
    }
    scheduled = video_resource(metadata, privacy_status="private", publish_at=NOW)
    assert scheduled["status"]["publishAt"] == "2026-11-23T12:00:00Z"


def test_check_video_file(tmp_path: Path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"abc")
    assert check_video_file(str(path)) == 3
    with pytest.raises(PermanentUploadError):
        check_video_file(str(tmp_path / "missing.mp4"))
    with pytest.raises(PermanentUploadError):
        check_video_file(str(tmp_path))


def test_request_requires_aware_publish_at(tmp_path: Path):
    with pytest.raises(InvalidScheduleError):
        UploadRequest(
            video_path="v",
            metadata=VideoMetadata(title="t"),
            publish_at=datetime(2030, 1, 1),  # noqa: DTZ001 - naive on purpose
        )


def test_request_and_result_are_frozen_keyword_only():
    request = UploadRequest(video_path="v", metadata=VideoMetadata(title="t"), publish_at=None)
    with pytest.raises(AttributeError):
        request.video_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        UploadResult("id", (), "public", None, 0)  # type: ignore[misc]
    assert UploadStep.INSERT == "videos.insert"


@freeze_time("2026-11-23 12:00:00")
def test_dry_run_uses_the_default_clock(tmp_path: Path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 100)
    publish_at = NOW + timedelta(seconds=59)
    result = DryRunUploader().upload(
        UploadRequest(
            video_path=str(video), metadata=VideoMetadata(title="t"), publish_at=publish_at
        )
    )
    assert (result.privacy_status, result.publish_at) == ("public", None)
    later = DryRunUploader().upload(
        UploadRequest(
            video_path=str(video),
            metadata=VideoMetadata(title="t"),
            publish_at=NOW + timedelta(hours=1),
        )
    )
    assert later.privacy_status == "private"


def test_dry_run_resumed_session_is_no_new_insert(tmp_path: Path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 100)
    result = DryRunUploader(clock=lambda: NOW).upload(
        UploadRequest(
            video_path=str(video),
            metadata=VideoMetadata(title="t"),
            publish_at=None,
            session_uri="dryrun://upload/abc",
        )
    )
    assert result.operations == ()


@pytest.mark.parametrize("chunk_size", [0, 1000, 256 * 1024 + 1, -256 * 1024])
def test_chunk_size_must_be_a_multiple_of_256k(chunk_size: int):
    from langflix_scheduler.youtube.google import YouTubeUploader

    with pytest.raises(ConfigurationError):
        YouTubeUploader(Credentials(token="t"), chunk_size=chunk_size)


def test_bad_endpoint_is_a_configuration_error():
    from langflix_scheduler.youtube.google import YouTubeUploader

    with pytest.raises(ConfigurationError):
        YouTubeUploader(Credentials(token="t"), api_endpoint="ftp://example")


def test_importing_the_protocol_does_not_load_google_client():
    code = (
        "import sys; import langflix_scheduler.youtube.uploader, langflix_scheduler.youtube; "
        "assert 'googleapiclient' not in sys.modules, 'loaded'; "
        "from langflix_scheduler.youtube import YouTubeUploader; "
        "assert 'googleapiclient' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_google_and_auth_modules_import_google_libraries():
    import ast

    import langflix_scheduler

    root = Path(langflix_scheduler.__file__).parent
    # google.py was split (issue 10): its parts that talk to the client libraries are allowed;
    # the protocol (uploader.py), the request body (streaming.py) and the fake stay free of them.
    # health.py (token checks, issue 12) refreshes tokens and calls channels.list itself.
    allowed = {
        root / "youtube" / name
        for name in (
            "google.py",
            "auth.py",
            "classify.py",
            "metering.py",
            "resumable.py",
            "health.py",
        )
    }
    google_libs = ("googleapiclient", "google_auth", "google.auth", "google.oauth2", "httplib2")
    for path in [*root.joinpath("youtube").rglob("*.py"), *root.joinpath("testing").rglob("*.py")]:
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            assert not [n for n in names if n.startswith(google_libs)], (path, names)
