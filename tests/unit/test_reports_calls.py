"""Which uploaders report their API calls (``on_call``), checked by signature."""

from __future__ import annotations

from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.youtube.google import YouTubeUploader, _metered_operation
from langflix_scheduler.youtube.uploader import DryRunUploader, reports_calls


class _Old:
    def upload(self, request: Any, *, progress: Any = None, on_step: Any = None) -> Any:
        raise NotImplementedError


class _KwargsOnly:
    def upload(self, request: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class _New:
    def upload(
        self, request: Any, *, progress: Any = None, on_step: Any = None, on_call: Any = None
    ) -> Any:
        raise NotImplementedError


def test_only_uploaders_with_an_on_call_keyword_report_calls() -> None:
    assert reports_calls(YouTubeUploader(Credentials(token="t")))
    assert reports_calls(_New())
    assert not reports_calls(_Old())
    assert not reports_calls(_KwargsOnly())  # **kwargs may not mean it reports anything
    assert not reports_calls(DryRunUploader())
    assert not reports_calls(object())


def test_which_requests_are_quota_bearing() -> None:
    root = "https://youtube.googleapis.com"
    assert (
        _metered_operation(f"{root}/upload/youtube/v3/videos?uploadType=resumable&part=x", "POST")
        == "videos.insert"
    )
    # A chunk or a status query of an open session is not a call of its own.
    assert (
        _metered_operation(
            f"{root}/upload/youtube/v3/videos?uploadType=resumable&upload_id=a", "PUT"
        )
        is None
    )
    assert (
        _metered_operation(f"{root}/upload/youtube/v3/thumbnails/set?videoId=v", "POST")
        == "thumbnails.set"
    )
    assert (
        _metered_operation(f"{root}/youtube/v3/playlistItems?part=snippet", "POST")
        == "playlistItems.insert"
    )
    assert (
        _metered_operation(f"{root}/youtube/v3/playlistItems?part=id&playlistId=p", "GET")
        == "playlistItems.list"
    )
    assert _metered_operation("https://oauth2.googleapis.com/token", "POST") is None


def test_a_wrapper_reports_calls_when_its_inner_uploader_does() -> None:
    from langflix_scheduler.cli._progress import DisplayingUploader

    display: Any = object()
    assert reports_calls(DisplayingUploader(YouTubeUploader(Credentials(token="t")), display))
    assert not reports_calls(DisplayingUploader(_Old(), display))


@pytest.mark.parametrize(
    ("path", "method", "operation"),
    [
        ("/youtube/v3/videos?part=status&alt=json", "PUT", "videos.update"),
        ("/youtube/v3/videos?part=snippet", "PUT", "videos.update"),
        ("/youtube/v3/videos?id=v1", "DELETE", "videos.delete"),
        ("/youtube/v3/videos?part=status&id=v1", "GET", "videos.list"),
        ("/youtube/v3/channels?part=contentDetails&mine=true", "GET", "channels.list"),
        # The media endpoint is never videos.update / videos.delete.
        ("/upload/youtube/v3/videos?uploadType=resumable", "PUT", None),
        ("/upload/youtube/v3/videos?uploadType=resumable", "DELETE", None),
    ],
)
def test_after_upload_calls_are_metered(path: str, method: str, operation: str | None) -> None:
    root = "https://youtube.googleapis.com"
    assert _metered_operation(root + path, method) == operation
