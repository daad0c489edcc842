"""The resumable ``videos.insert`` state machine.

One insert is: open a session (the initiation, a ``POST`` that costs quota; its session URI is
handed to ``progress`` before any media byte is sent), then send the media with as few ``PUT``
requests as possible: by default the whole file in one streamed request (``chunk_size=None``),
else ``chunk_size`` bytes per request. Any failure (an error answer, a dropped connection, a
timeout, a refused re-send) is followed by a status query (``Content-Range: bytes */size``) and
the upload continues from the offset the server confirms; a stored session is queried first. A
session that is gone (404/410) is replaced by a new insert.

::

    no session --open--> offset 0 --send--> 308 (offset) --send--> ... --> 200/201: video id
        ^                   ^                  |
        |                   +---- query <------+-- failure (backoff, bounded retries)
        +--- 404/410 -------------+

Progress (``bytes_sent``) is the highest offset handed to the socket in the current session, at
least the offset the server confirmed; it never decreases within one session, also when a
failure makes the upload continue from a lower confirmed offset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from googleapiclient.errors import HttpError

from ..errors import PermanentUploadError, TransientUploadError, UploadError
from .metering import CallbackFailed
from .streaming import DEFAULT_BUFFER_SIZE, FileBody
from .uploader import ProgressCallback

__all__ = [
    "InsertOutcome",
    "ResumableInsert",
    "RetryPolicy",
    "SessionOpened",
    "query_status",
    "video_id_of",
]

logger = logging.getLogger(__name__)

SESSION_GONE = frozenset({404, 410})


class SessionOpened(Exception):
    """Raised by :class:`InitiationGuard` right after a resumable session is opened, so the
    session URI can be handed to the caller before any media byte is sent."""

    def __init__(self, session_uri: str) -> None:
        super().__init__("resumable session opened")
        self.session_uri = session_uri


class InitiationGuard:
    """Wraps the http object of one insert: stops the client right after the initiation
    answered with a session URI (before any media), by raising :class:`SessionOpened`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, bytes]:
        resp, content = self._inner.request(uri, method, body=body, headers=headers, **kwargs)
        if (
            method == "POST"
            and "uploadType=resumable" in uri
            and resp.status == 200
            and "location" in resp
        ):
            raise SessionOpened(resp["location"])
        return resp, content


def open_session(insert: Any, http: Any) -> str:
    """Send the initiation of ``insert`` (a googleapiclient ``HttpRequest`` with a resumable
    media body) and return the new session URI; no media is sent."""
    insert.resumable_uri = None
    insert.resumable_progress = 0
    # The client keeps this private flag; clear it so the call opens a new session.
    insert._in_error_state = False
    try:
        insert.next_chunk(http=InitiationGuard(http), num_retries=0)
    except SessionOpened as opened:
        return opened.session_uri
    raise TransientUploadError(
        "the upload session was not opened (no session URI)", reason="noSessionUri", status=200
    )


def parse_range_end(resp: Any) -> int:
    """The next offset from a 308 answer's ``Range: bytes=0-N`` header (0 when absent)."""
    value = resp.get("range") if hasattr(resp, "get") else None
    if not value:
        return 0
    try:
        return int(str(value).rsplit("-", 1)[1]) + 1
    except (IndexError, ValueError):
        return 0


def query_status(http: Any, session_uri: str, size: int | None) -> tuple[int, Any]:
    """Ask a session how far it got: ``(next_offset, None)``, ``(-1, None)`` when the session
    is gone, or ``(size, video_resource)`` when the upload completed (``size`` None: the total
    is sent as ``*``)."""
    total = "*" if size is None else str(size)
    headers = {"Content-Range": f"bytes */{total}", "content-length": "0"}
    resp, content = http.request(session_uri, "PUT", headers=headers)
    if resp.status in (200, 201):
        return size or 0, json.loads(content.decode("utf-8"))
    if resp.status == 308:
        return parse_range_end(resp), None
    if resp.status in SESSION_GONE:
        return -1, None
    raise HttpError(resp, content)  # the session URI is a secret: keep it out of the error


def video_id_of(resource: Any) -> str:
    """The id of a completed upload's video resource."""
    video_id = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(video_id, str) or not video_id:
        raise PermanentUploadError(
            "YouTube completed the upload but returned no video id", reason="noVideoId"
        )
    return video_id


@dataclass(frozen=True)
class RetryPolicy:
    """How the insert handles a failure.

    Attributes:
        max_retries: failures in a row before giving up (confirmed progress resets the count).
        retry_or_raise: ``(exc, failures, what)``: raises the classified error unless it is
            transient and retries remain; else backs off (sleeps) and returns.
        classify: turns an exception into an :class:`UploadError`.
    """

    max_retries: int
    retry_or_raise: Callable[[Exception, int, str], None]
    classify: Callable[[Exception], UploadError]


@dataclass(frozen=True)
class InsertOutcome:
    """``video_id``; ``bytes_sent``: media bytes this call delivered; ``inserts``: sessions
    opened (each a ``videos.insert`` call)."""

    video_id: str
    bytes_sent: int
    inserts: int


class _Reporter:
    """Calls ``progress`` with a non-decreasing count per session; wraps its errors in
    :class:`CallbackFailed` so they leave the client's frames unchanged."""

    def __init__(self, progress: ProgressCallback | None, size: int) -> None:
        self._progress = progress
        self._size = size
        self._uri: str | None = None
        self._high = 0

    def report(self, uri: str, offset: int, *, if_higher: bool = False) -> None:
        """Report ``offset`` (at least the highest reported in this session); with
        ``if_higher``, only when it is higher (an answer confirming bytes already reported)."""
        if uri != self._uri:
            self._uri, self._high = uri, offset
        elif if_higher and offset <= self._high:
            return
        else:
            self._high = max(self._high, offset)
        if self._progress is None:
            return
        try:
            self._progress(self._high, self._size, uri)
        except Exception as exc:
            raise CallbackFailed(exc) from exc


class ResumableInsert:
    """One resumable insert (see the module docstring); :meth:`run` performs it.

    Args:
        http: this thread's authorised http object.
        open_session: sends the initiation and returns the new session URI.
        video_path: the media file.
        size: its size in bytes.
        session_uri: a stored session to resume (queried first).
        chunk_size: bytes per request, or None for the whole rest of the file in one request.
        policy: retries.
        progress: the caller's progress callback.
        buffer_size: bytes read and handed to the socket per step (one buffer, reused).
    """

    def __init__(
        self,
        *,
        http: Any,
        open_session: Callable[[], str],
        video_path: str,
        size: int,
        session_uri: str | None,
        chunk_size: int | None,
        policy: RetryPolicy,
        progress: ProgressCallback | None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        self._http = http
        self._open_session = open_session
        self._path = video_path
        self._size = size
        self._chunk_size = chunk_size
        self._policy = policy
        self._reporter = _Reporter(progress, size)
        self._buffer = bytearray(min(buffer_size, max(size, 1)))
        self._uri = session_uri
        self._offset: int | None = None  # next byte to send; None: ask the server first
        self._confirmed = -1  # highest offset the server confirmed in the current session
        self._start: int | None = None  # offset this call started sending the session at
        self._failures = 0
        self._stalls = 0
        self._inserts = 0

    def run(self) -> InsertOutcome:
        """Upload until the server has the whole file.

        Raises:
            CallbackFailed: a callback raised (carries its exception).
            UploadError: classified, after the bounded retries.
        """
        while True:
            try:
                if self._uri is None:
                    self._open()
                    continue
                if self._offset is None:
                    video_id = self._query()
                else:
                    video_id = self._send(self._uri, self._offset)
            except (CallbackFailed, UploadError):
                raise
            except Exception as exc:
                self._policy.retry_or_raise(exc, self._failures, "videos.insert")
                self._failures += 1
                if self._uri is not None:
                    self._offset = None  # ask the server where to continue
                continue
            if video_id is not None:
                delivered = self._size - (self._start if self._start is not None else self._size)
                return InsertOutcome(video_id, delivered, self._inserts)

    def _open(self) -> None:
        uri = self._open_session()
        self._inserts += 1
        self._uri, self._offset, self._confirmed, self._start = uri, 0, 0, 0
        logger.info("resumable session opened for %s", self._path)
        self._reporter.report(uri, 0)

    def _query(self) -> str | None:
        assert self._uri is not None
        offset, resource = query_status(self._http, self._uri, self._size)
        if resource is not None:
            logger.info("the session has the whole file; nothing more is sent")
            self._reporter.report(self._uri, self._size)
            return video_id_of(resource)
        if offset < 0:
            logger.warning("resumable session expired or unknown; starting a new insert")
            self._uri = None
            return None
        if offset > self._confirmed:
            if self._confirmed >= 0:
                self._failures = 0  # the server confirmed progress since the last failure
            self._confirmed = offset
        if self._start is None:
            self._start = offset
            logger.info("resuming stored session at byte %d of %d", offset, self._size)
        self._offset = offset
        self._reporter.report(self._uri, offset)
        return None

    def _send(self, uri: str, offset: int) -> str | None:
        if offset >= self._size:
            # The server says it has every byte but did not complete: ask again after a backoff
            # (bounded by the retries) instead of sending an empty request.
            raise ConnectionError(f"the server holds all {self._size} bytes but did not complete")
        end = self._size if self._chunk_size is None else min(self._size, offset + self._chunk_size)
        body = FileBody(
            self._path,
            offset,
            end - offset,
            buffer=self._buffer,
            on_sent=lambda reached: self._reporter.report(uri, reached),
        )
        headers = {
            "content-length": str(end - offset),
            "content-range": f"bytes {offset}-{end - 1}/{self._size}",
        }
        resp, content = self._http.request(uri, "PUT", body=body, headers=headers)
        if resp.status in (200, 201):
            self._reporter.report(uri, self._size, if_higher=True)
            return video_id_of(json.loads(content.decode("utf-8")))
        if resp.status == 308:
            self._confirm(parse_range_end(resp))
            self._reporter.report(uri, self._offset or 0, if_higher=True)
            return None
        if resp.status in SESSION_GONE:
            self._session_gone(HttpError(resp, content))
            return None
        raise HttpError(resp, content)  # the session URI is a secret: keep it out of the error

    def _confirm(self, offset: int) -> None:
        """A 308 answer to media: continue at ``offset``; a server that stops taking bytes
        must not keep us looping."""
        if offset > self._confirmed:
            self._confirmed, self._failures, self._stalls = offset, 0, 0
        else:
            self._stalls += 1
            if self._stalls > self._policy.max_retries:
                raise TransientUploadError(
                    f"the upload server stopped accepting bytes at offset {offset}",
                    reason="noProgress",
                    status=308,
                )
        self._offset = offset

    def _session_gone(self, exc: HttpError) -> None:
        logger.warning("resumable session expired mid-upload; starting over")
        if self._failures >= self._policy.max_retries:
            raise self._policy.classify(exc) from exc
        self._failures += 1
        self._uri = None
