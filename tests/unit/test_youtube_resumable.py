"""The resumable insert state machine against a scripted http object (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httplib2
import pytest

from langflix_scheduler.errors import TransientUploadError, UploadError
from langflix_scheduler.youtube.classify import classify_error
from langflix_scheduler.youtube.resumable import ResumableInsert, RetryPolicy
from langflix_scheduler.youtube.streaming import FileBody

SIZE = 3000
URI = "https://upload.example/upload?upload_id=s1"


class ScriptedHttp:
    """Answers each request with the next ``(status, headers, body)``; records what was sent."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, int]] = []  # (Content-Range, body bytes)

    def request(self, uri: str, method: str, body: Any = None, headers: Any = None) -> Any:
        data = b"".join(bytes(p) for p in body) if isinstance(body, FileBody) else b""
        content_range = headers.get("Content-Range") or headers.get("content-range")
        self.sent.append((content_range, len(data)))
        status, extra, content = self.answers.pop(0)
        return httplib2.Response({"status": str(status), **extra}), content


def _insert(tmp_path: Path, http: ScriptedHttp, **kwargs: Any) -> ResumableInsert:
    video = tmp_path / "v.bin"
    video.write_bytes(b"x" * SIZE)
    failures: list[str] = []

    def retry_or_raise(exc: Exception, count: int, what: str) -> None:
        err = classify_error(exc, now=datetime.now(UTC))
        if not isinstance(err, TransientUploadError) or count >= 2:
            raise err from exc
        failures.append(err.reason)

    options: dict[str, Any] = {
        "http": http,
        "open_session": lambda: URI,
        "video_path": str(video),
        "size": SIZE,
        "session_uri": None,
        "chunk_size": None,
        "policy": RetryPolicy(
            max_retries=2,
            retry_or_raise=retry_or_raise,
            classify=lambda e: classify_error(e, now=datetime.now(UTC)),
        ),
        "progress": None,
        "buffer_size": 1024,
    }
    options.update(kwargs)
    return ResumableInsert(**options)


def test_whole_file_in_one_request(tmp_path: Path) -> None:
    http = ScriptedHttp([(200, {}, b'{"id": "v1"}')])
    outcome = _insert(tmp_path, http).run()
    assert (outcome.video_id, outcome.bytes_sent, outcome.inserts) == ("v1", SIZE, 1)
    assert http.sent == [(f"bytes 0-{SIZE - 1}/{SIZE}", SIZE)]


def test_a_5xx_is_followed_by_a_status_query_and_the_rest(tmp_path: Path) -> None:
    http = ScriptedHttp(
        [
            (503, {}, b"{}"),
            (308, {"range": "bytes=0-1023"}, b""),
            (200, {}, b'{"id": "v1"}'),
        ]
    )
    outcome = _insert(tmp_path, http).run()
    assert outcome.video_id == "v1"
    assert http.sent == [
        (f"bytes 0-{SIZE - 1}/{SIZE}", SIZE),
        (f"bytes */{SIZE}", 0),
        (f"bytes 1024-{SIZE - 1}/{SIZE}", SIZE - 1024),
    ]


def test_a_server_that_holds_everything_but_never_completes_is_bounded(tmp_path: Path) -> None:
    full = {"range": f"bytes=0-{SIZE - 1}"}
    http = ScriptedHttp([(308, full, b"")] + [(308, full, b"")] * 10)
    with pytest.raises(UploadError) as caught:
        _insert(tmp_path, http).run()
    assert isinstance(caught.value, TransientUploadError)
    # One media request, then only status queries (no empty media request), bounded.
    assert [rng for rng, _ in http.sent][1:] == [f"bytes */{SIZE}"] * (len(http.sent) - 1)
    assert len(http.sent) <= 4


def test_chunked_requests_respect_chunk_size(tmp_path: Path) -> None:
    http = ScriptedHttp(
        [
            (308, {"range": "bytes=0-1023"}, b""),
            (308, {"range": "bytes=0-2047"}, b""),
            (200, {}, b'{"id": "v1"}'),
        ]
    )
    _insert(tmp_path, http, chunk_size=1024).run()
    assert [n for _, n in http.sent] == [1024, 1024, SIZE - 2048]
