"""``FakeYouTube``: a loopback fake of the YouTube Data API v3 for offline tests.

It is a real HTTP server (``http.server.ThreadingHTTPServer`` on ``127.0.0.1``, an ephemeral
port) speaking the protocol google-api-python-client uses, so your code under test runs the real
client code path. It lives in the test process; clients in other processes (a processor you
spawn) can connect to it over loopback too.

Quick start::

    from langflix_scheduler.testing import FakeYouTube
    from langflix_scheduler.youtube.google import YouTubeUploader
    from google.oauth2.credentials import Credentials

    with FakeYouTube() as fake:
        uploader = YouTubeUploader(Credentials(token="any"), api_endpoint=fake.api_endpoint)
        result = uploader.upload(request)
        video = fake.videos[result.video_id]
        assert video.size == os.path.getsize(request.video_path)
        assert video.status["publishAt"] == "2030-01-01T10:00:00Z"

What it speaks:

* ``POST /upload/youtube/v3/videos?uploadType=resumable&part=...`` opens a session: ``200`` with a
  ``Location`` session URI (``uploadType=multipart`` uploads in one request also work).
* ``PUT <session URI>`` with ``Content-Range: bytes a-b/total``: ``308`` with ``Range: bytes=0-n``
  until complete, then ``200`` with the video resource. ``Content-Range: bytes */total`` is a
  status query (``308`` + ``Range``, or the resource when complete). Unknown or expired session:
  ``404``.
* ``POST /upload/youtube/v3/thumbnails/set?videoId=...`` (simple or multipart),
  ``POST /youtube/v3/playlistItems?part=snippet``,
  ``GET /youtube/v3/playlistItems?part=id&playlistId=...&videoId=...`` (1 unit),
  ``GET /youtube/v3/videos?id=...``.
* ``POST /token``: an OAuth token endpoint (refresh and authorization-code grants), for testing
  credential refresh offline (``load_credentials(path, token_uri=fake.token_uri)``).

It validates like YouTube (title required, <= 100 characters, description <= 5,000 bytes, no
``<``/``>``, tags <= 500 characters, known category, ``publishAt`` only with ``private``) and
answers errors with YouTube's body shape ``{"error": {"code", "message", "errors": [{"reason",
"domain", "message"}]}}``. A past ``publishAt`` is accepted and the video published at once, as
YouTube does (``FakeVideo.published_immediately``).

Quota is counted per Pacific-time day and bucket with the 2026 granular model by default
(``videos.insert``: bucket ``uploads``, 100 calls; everything else: bucket ``shared``, 10,000
units); pass ``quota_policy`` for another model. A spent ``uploads`` bucket answers 429
``rateLimitExceeded`` "... 'Video Uploads per day' ..."; any other spent bucket answers 403
``quotaExceeded``. Every request is charged, even an invalid one (not chunk PUTs); injected
faults are answered before the request is counted or charged.

Faults on demand (all thread-safe): :meth:`FakeYouTube.fail_next`, ``error_rate`` (fraction of
chunk PUTs answered 503, seeded), :meth:`~FakeYouTube.drop_next_chunk` (read part of a chunk, then
close the connection without answering; the fake keeps the part received, rounded down to
256 KiB, like a server that persisted it; a body cut short by the client is kept the same
way), :meth:`~FakeYouTube.drop_reply_next` (carry a request out, charge it, then close the
connection without answering: a lost answer), ``latency``, :meth:`~FakeYouTube.quota_exceeded_next`,
:meth:`~FakeYouTube.upload_limit_next`, :meth:`~FakeYouTube.unauthorized_next`,
:meth:`~FakeYouTube.expire_sessions`, :meth:`~FakeYouTube.revoke_refresh_tokens`.

What it records, for exactly-once and integrity assertions: ``videos`` (id -> :class:`FakeVideo`
with metadata, ``sha256`` and ``size`` of the received bytes, thumbnail, playlists),
``insert_calls``, ``bytes_received`` (every media byte read, re-sends included),
``chunks_received``, ``status_queries``, ``sessions``, ``requests``, ``quota_used()`` and
``charged()`` (units charged per quota day and method, every initiation included).

Any bearer token is accepted unless ``required_token`` is given; a request without one gets 401.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import hashlib
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..quota import DEFAULT_QUOTA_TIMEZONE, QuotaPolicy, quota_date_of

__all__ = ["FakeSession", "FakeVideo", "FakeYouTube", "RecordedRequest"]

logger = logging.getLogger(__name__)

#: Bytes of a dropped chunk that the fake keeps are rounded down to this (256 KiB).
PERSIST_GRANULARITY = 256 * 1024
#: Idle keep-alive connections are closed after this many seconds.
CONNECTION_IDLE_TIMEOUT_S = 60.0
#: Title, description and tags limits enforced like YouTube.
TITLE_MAX_CHARS = 100
DESCRIPTION_MAX_BYTES = 5000
TAGS_MAX_CHARS = 500
THUMBNAIL_MAX_BYTES = 50 * 1024 * 1024
#: YouTube's assignable video category ids.
VALID_CATEGORY_IDS = frozenset({"1", "2", "10", "15", "17", *(str(i) for i in range(18, 45))})
UPLOADS_BUCKET = "uploads"
_PRIVACY = frozenset({"public", "unlisted", "private"})
_TARGETS = frozenset(
    {"any", "insert", "chunk", "status", "thumbnails", "playlistItems", "playlistList", "list"}
)
_VIDEO_UPLOAD_PATH = "/upload/youtube/v3/videos"
_THUMBNAIL_PATH = "/upload/youtube/v3/thumbnails/set"
_PLAYLIST_ITEMS_PATH = "/youtube/v3/playlistItems"
_VIDEOS_PATH = "/youtube/v3/videos"
_TOKEN_PATH = "/token"  # noqa: S105 - a URL path, not a secret
_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
_COSTS = {
    "videos.insert",
    "thumbnails.set",
    "playlistItems.insert",
    "playlistItems.list",
    "videos.list",
}


@dataclass(frozen=True, kw_only=True)
class FakeVideo:
    """A video the fake accepted.

    Attributes:
        id: the video id.
        snippet: the snippet as stored (what ``videos.list`` returns).
        status: the status as stored (``publishAt`` removed when it was in the past).
        request_body: the metadata exactly as the client sent it.
        size: bytes received for the video.
        sha256: hex digest of the bytes received.
        content: the bytes, when the fake was created with ``keep_media=True``.
        upload_type: ``"resumable"`` or ``"multipart"``.
        published_immediately: a ``publishAt`` in the past was sent (YouTube publishes at once).
        thumbnail_set: ``thumbnails.set`` succeeded for it.
        thumbnail_sha256: hex digest of the last thumbnail.
        thumbnail_count: how many times a thumbnail was set.
        playlist_ids: playlists it was added to, in order (duplicates kept).
        created_at: when the upload completed (fake clock).
    """

    id: str
    snippet: Mapping[str, Any]
    status: Mapping[str, Any]
    request_body: Mapping[str, Any]
    size: int
    sha256: str
    content: bytes | None = None
    upload_type: str = "resumable"
    published_immediately: bool = False
    thumbnail_set: bool = False
    thumbnail_sha256: str | None = None
    thumbnail_count: int = 0
    playlist_ids: tuple[str, ...] = ()
    created_at: datetime

    def resource(self) -> dict[str, Any]:
        """The ``youtube#video`` resource the API returns."""
        return {
            "kind": "youtube#video",
            "etag": self.sha256[:27],
            "id": self.id,
            "snippet": dict(self.snippet),
            "status": dict(self.status),
        }


@dataclass(frozen=True, kw_only=True)
class FakeSession:
    """A snapshot of one resumable upload session.

    Attributes:
        id: the ``upload_id``.
        uri: the session URI handed out.
        offset: bytes persisted so far.
        total: the announced size (``X-Upload-Content-Length``), if any.
        video_id: set once the upload completed.
        expired: the session was expired by :meth:`FakeYouTube.expire_sessions`.
    """

    id: str
    uri: str
    offset: int
    total: int | None
    video_id: str | None
    expired: bool


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request the fake answered (or dropped: ``status`` 0)."""

    method: str
    path: str
    kind: str
    status: int
    body_bytes: int


@dataclass(kw_only=True)
class _Session:
    id: str
    uri: str
    body: dict[str, Any]
    total: int | None
    content_type: str
    data: bytearray = field(default_factory=bytearray)
    video_id: str | None = None
    expired: bool = False


@dataclass(kw_only=True)
class _Fault:
    target: str
    status: int
    reason: str
    count: int


class _ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, *, domain: str = "global") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
            }
        }


def _quota_error(bucket: str) -> _ApiError:
    if bucket == UPLOADS_BUCKET:
        return _ApiError(
            429,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Video Uploads' and limit 'Video Uploads per day' "
            "of service 'youtube.googleapis.com' for consumer 'project_number:0'.",
        )
    return _ApiError(
        403,
        "quotaExceeded",
        'The request cannot be completed because you have exceeded your <a href="/youtube/v3/'
        'getting-started#quota">quota</a>.',
        domain="youtube.quota",
    )


def _upload_limit_error() -> _ApiError:
    return _ApiError(
        400,
        "uploadLimitExceeded",
        "The user has exceeded the number of videos they may upload.",
        domain="youtube.video",
    )


def _unauthorized_error() -> _ApiError:
    return _ApiError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    )


def _server_error(status: int) -> _ApiError:
    return _ApiError(status, "backendError", "Backend Error")


def _invalid(reason: str, message: str) -> _ApiError:
    return _ApiError(400, reason, message, domain="youtube.video")


def _parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeYouTube/1.0"
    timeout = CONNECTION_IDLE_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake youtube: " + format, *args)

    def do_GET(self) -> None:
        self.server.fake._dispatch(self)

    def do_POST(self) -> None:
        self.server.fake._dispatch(self)

    def do_PUT(self) -> None:
        self.server.fake._dispatch(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeYouTube) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Dropped(Exception):
    def __init__(self, body_bytes: int) -> None:
        super().__init__("connection dropped")
        self.body_bytes = body_bytes


class FakeYouTube:
    """A loopback fake YouTube Data API server (see the module docstring).

    Args:
        clock: returns the aware current time (quota days, ``publishAt`` checks).
        quota_policy: buckets and costs (default: the 2026 granular model).
        insert_limit: daily limit of the ``uploads`` bucket (overrides the policy's).
        shared_limit: daily limit of the ``shared`` bucket (overrides the policy's).
        quota_timezone: the zone whose midnight resets quota.
        required_token: when set, only this bearer token is accepted.
        error_rate: fraction of chunk PUTs answered 503 (seeded by ``seed``).
        seed: seed of the fault RNG.
        latency: seconds to wait before answering each request.
        keep_media: keep each video's bytes in ``FakeVideo.content``.
        known_playlists: playlist ids that exist (``None``: every playlist id exists).
        host: interface to listen on.
        port: port to listen on (0: ephemeral).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        quota_policy: QuotaPolicy | None = None,
        insert_limit: int | None = None,
        shared_limit: int | None = None,
        quota_timezone: str = DEFAULT_QUOTA_TIMEZONE,
        required_token: str | None = None,
        error_rate: float = 0.0,
        seed: int = 0,
        latency: float = 0.0,
        keep_media: bool = False,
        known_playlists: set[str] | frozenset[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        policy = quota_policy or QuotaPolicy.default()
        self._limits = dict(policy.buckets)
        if insert_limit is not None:
            self._limits[UPLOADS_BUCKET] = insert_limit
        if shared_limit is not None:
            self._limits["shared"] = shared_limit
        self._costs = {op: policy.costs[op] for op in _COSTS if op in policy.costs}
        self._clock = clock or (lambda: datetime.now(UTC))
        self._quota_timezone = quota_timezone
        self._required_token = required_token
        self._keep_media = keep_media
        self._known_playlists = None if known_playlists is None else frozenset(known_playlists)
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._error_rate = float(error_rate)
        self._latency = float(latency)
        self._faults: list[_Fault] = []
        self._drops: list[int | None] = []
        self._reply_drops: list[list[Any]] = []  # [target, count]
        self._charged: dict[tuple[date, str], int] = {}
        self._sessions: dict[str, _Session] = {}
        self._videos: dict[str, FakeVideo] = {}
        self._usage: dict[tuple[date, str], int] = {}
        self._requests: list[RecordedRequest] = []
        self._insert_calls = 0
        self._bytes_received = 0
        self._chunks_received = 0
        self._status_queries = 0
        self._next_video = 0
        self._tokens_issued = 0
        self._refresh_revoked = False
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeYouTube:
        """Start serving (idempotent); returns ``self``."""
        with self._lock:
            if self._server is not None:
                return self
            self._server = _Server((self._host, self._port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="FakeYouTube",
                daemon=True,
            )
            self._thread.start()
        logger.debug("FakeYouTube listening on %s", self.url)
        return self

    def close(self) -> None:
        """Stop serving and drop open connections (idempotent)."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            connections = list(self._connections)
        if server is None:
            return
        server.shutdown()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeYouTube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the server must be started)."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeYouTube is not started; use `with FakeYouTube() as fake:`")
        host, port = server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_endpoint(self) -> str:
        """The value for ``YouTubeUploader(api_endpoint=...)``."""
        return self.url

    @property
    def token_uri(self) -> str:
        """The fake OAuth token endpoint."""
        return self.url + _TOKEN_PATH

    # -- fault injection ---------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 503, *, target: str = "any") -> None:
        """Answer the next ``n`` requests of ``target`` with ``status`` (a 5xx ``backendError``
        unless another status is given).

        ``target``: ``"any"`` (every API request), ``"insert"`` (session initiation), ``"chunk"``,
        ``"status"`` (status queries), ``"thumbnails"``, ``"playlistItems"``,
        ``"playlistList"`` (``playlistItems.list``), ``"list"`` (``videos.list``).
        """
        reason = "backendError" if status >= 500 else "badRequest"
        self._add_fault(target, status, reason, n)

    def quota_exceeded_next(self, n: int = 1, *, target: str = "any") -> None:
        """Answer the next ``n`` requests of ``target`` with 403 ``quotaExceeded``."""
        self._add_fault(target, 403, "quotaExceeded", n)

    def upload_limit_next(self, n: int = 1) -> None:
        """Answer the next ``n`` session initiations with 400 ``uploadLimitExceeded``."""
        self._add_fault("insert", 400, "uploadLimitExceeded", n)

    def unauthorized_next(self, n: int = 1, *, target: str = "any") -> None:
        """Answer the next ``n`` requests of ``target`` with 401 (invalid credentials)."""
        self._add_fault(target, 401, "authError", n)

    def drop_next_chunk(self, n: int = 1, *, after_bytes: int | None = None) -> None:
        """Drop the next ``n`` chunk PUTs: read ``after_bytes`` of the body (default half), keep
        them rounded down to 256 KiB, then close the connection without an answer."""
        with self._lock:
            self._drops.extend([after_bytes] * n)

    def drop_reply_next(self, n: int = 1, *, target: str = "any") -> None:
        """Carry out the next ``n`` requests of ``target`` (charged, committed: a session opened,
        a playlist item added), then close the connection without answering, as when an answer
        is lost on the way back. ``target`` as for :meth:`fail_next` (not ``"chunk"``: see
        :meth:`drop_next_chunk`)."""
        if target not in _TARGETS or target == "chunk":
            raise ValueError(
                f"unknown target {target!r}; choose from {sorted(_TARGETS - {'chunk'})}"
            )
        with self._lock:
            self._reply_drops.append([target, n])

    def _take_reply_drop(self, kind: str) -> bool:
        with self._lock:
            for drop in self._reply_drops:
                if drop[1] > 0 and drop[0] in ("any", kind):
                    drop[1] -= 1
                    self._reply_drops = [d for d in self._reply_drops if d[1] > 0]
                    return True
        return False

    def expire_sessions(self) -> None:
        """Expire every resumable session: further requests to them get 404."""
        with self._lock:
            for session in self._sessions.values():
                session.expired = True

    def revoke_refresh_tokens(self) -> None:
        """Make the token endpoint answer ``invalid_grant`` to refresh requests."""
        with self._lock:
            self._refresh_revoked = True

    def exhaust_quota(self, bucket: str = UPLOADS_BUCKET, day: date | None = None) -> None:
        """Mark ``bucket`` as spent for ``day`` (default: the current quota day)."""
        with self._lock:
            key = (day or self._quota_day(), bucket)
            self._usage[key] = self._limits[bucket]

    @property
    def error_rate(self) -> float:
        """Fraction of chunk PUTs answered 503."""
        with self._lock:
            return self._error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        with self._lock:
            self._error_rate = float(value)

    @property
    def latency(self) -> float:
        """Seconds waited before answering each request."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency = float(value)

    def _add_fault(self, target: str, status: int, reason: str, n: int) -> None:
        if target not in _TARGETS:
            raise ValueError(f"unknown target {target!r}; choose from {sorted(_TARGETS)}")
        with self._lock:
            self._faults.append(_Fault(target=target, status=status, reason=reason, count=n))

    # -- observations ------------------------------------------------------------------------------

    @property
    def videos(self) -> dict[str, FakeVideo]:
        """A snapshot: video id -> :class:`FakeVideo`."""
        with self._lock:
            return dict(self._videos)

    @property
    def sessions(self) -> dict[str, FakeSession]:
        """A snapshot: upload id -> :class:`FakeSession`."""
        with self._lock:
            return {
                sid: FakeSession(
                    id=s.id,
                    uri=s.uri,
                    offset=len(s.data) if s.video_id is None else (s.total or len(s.data)),
                    total=s.total,
                    video_id=s.video_id,
                    expired=s.expired,
                )
                for sid, s in self._sessions.items()
            }

    @property
    def insert_calls(self) -> int:
        """``videos.insert`` calls received (session initiations and multipart uploads)."""
        with self._lock:
            return self._insert_calls

    @property
    def bytes_received(self) -> int:
        """Media bytes read from chunk PUTs, re-sent and dropped bytes included."""
        with self._lock:
            return self._bytes_received

    @property
    def chunks_received(self) -> int:
        """Chunk PUTs with a body (answered, failed or dropped)."""
        with self._lock:
            return self._chunks_received

    @property
    def status_queries(self) -> int:
        """``Content-Range: bytes */total`` status queries received."""
        with self._lock:
            return self._status_queries

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request answered so far, in order."""
        with self._lock:
            return tuple(self._requests)

    def quota_used(self, bucket: str, day: date | None = None) -> int:
        """Units of ``bucket`` charged on ``day`` (default: the current quota day)."""
        with self._lock:
            return self._usage.get((day or self._quota_day(), bucket), 0)

    def charged(self, day: date | None = None) -> dict[str, int]:
        """Units charged per API method on quota ``day`` (default: every day summed): every
        request YouTube would charge, including initiations whose session was never used and
        requests whose answer was dropped; not injected faults or quota refusals."""
        with self._lock:
            out: dict[str, int] = {}
            for (d, operation), units in self._charged.items():
                if day is None or d == day:
                    out[operation] = out.get(operation, 0) + units
            return dict(sorted(out.items()))

    def charged_by_bucket(self) -> dict[tuple[date, str], int]:
        """Units charged per (quota day, bucket), like :meth:`quota_used` but without the
        usage set by :meth:`exhaust_quota`."""
        with self._lock:
            out: dict[tuple[date, str], int] = {}
            for (d, operation), units in self._charged.items():
                key = (d, self._costs[operation][0])
                out[key] = out.get(key, 0) + units
            return dict(sorted(out.items()))

    def wait_until(
        self, predicate: Callable[[FakeYouTube], bool], *, timeout: float = 10.0
    ) -> None:
        """Poll ``predicate(self)`` until true; raise ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError("FakeYouTube.wait_until: condition not met in time")
            time.sleep(0.01)

    # -- request handling --------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _quota_day(self) -> date:
        return quota_date_of(self._clock(), self._quota_timezone)

    def _record(self, h: _Handler, kind: str, status: int, body_bytes: int) -> None:
        path = urllib.parse.urlsplit(h.path).path
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=h.command, path=path, kind=kind, status=status, body_bytes=body_bytes
                )
            )

    def _dispatch(self, h: _Handler) -> None:
        latency = self.latency
        if latency:
            time.sleep(latency)
        split = urllib.parse.urlsplit(h.path)
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query).items()}
        path = split.path
        kind = self._kind(h.command, path, params, h.headers.get("Content-Range", ""))
        body = b""
        try:
            if kind == "token":
                body = self._read_body(h)
                self._answer(h, kind, *self._token(body), len(body))
                return
            if kind == "unknown":
                body = self._read_body(h)
                raise _ApiError(404, "notFound", f"no such method: {h.command} {path}")
            if kind == "chunk":
                self._chunk(h, params)
                return
            body = self._read_body(h)
            self._check_auth(h)
            self._take_fault(kind)
            handler = {
                "insert": self._insert,
                "status": self._status,
                "thumbnails": self._thumbnail,
                "playlistItems": self._playlist_item,
                "playlistList": self._playlist_list,
                "list": self._list,
            }[kind]
            status, payload, headers = handler(h, params, body)
            if self._take_reply_drop(kind):
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
                raise _Dropped(len(body))
            self._answer(h, kind, status, payload, len(body), headers)
        except _ApiError as err:
            self._answer(h, kind, err.status, err.body(), len(body))
        except _Dropped as dropped:
            self._record(h, kind, 0, dropped.body_bytes)

    @staticmethod
    def _kind(method: str, path: str, params: Mapping[str, str], content_range: str) -> str:
        if method == "POST" and path == _TOKEN_PATH:
            return "token"
        if method == "POST" and path == _VIDEO_UPLOAD_PATH and "upload_id" not in params:
            return "insert"
        if method == "PUT" and path == _VIDEO_UPLOAD_PATH and "upload_id" in params:
            return "status" if content_range.startswith("bytes */") else "chunk"
        if method == "POST" and path == _THUMBNAIL_PATH:
            return "thumbnails"
        if method == "POST" and path == _PLAYLIST_ITEMS_PATH:
            return "playlistItems"
        if method == "GET" and path == _PLAYLIST_ITEMS_PATH:
            return "playlistList"
        if method == "GET" and path == _VIDEOS_PATH:
            return "list"
        return "unknown"

    @staticmethod
    def _read_body(h: _Handler, limit: int | None = None) -> bytes:
        length = int(h.headers.get("Content-Length") or 0)
        if limit is not None:
            length = min(length, limit)
        return h.rfile.read(length) if length > 0 else b""

    def _answer(
        self,
        h: _Handler,
        kind: str,
        status: int,
        payload: Any,
        body_bytes: int,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._record(h, kind, status, body_bytes)
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if data:
            h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if data:
            h.wfile.write(data)

    def _check_auth(self, h: _Handler) -> None:
        value = h.headers.get("Authorization", "")
        token = value[len("Bearer ") :] if value.startswith("Bearer ") else ""
        if not token or (self._required_token is not None and token != self._required_token):
            raise _unauthorized_error()

    def _take_fault(self, kind: str) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.count > 0 and fault.target in ("any", kind):
                    fault.count -= 1
                    self._faults = [f for f in self._faults if f.count > 0]
                    break
            else:
                return
        if fault.reason == "quotaExceeded":
            raise _quota_error("shared")
        if fault.reason == "uploadLimitExceeded":
            raise _upload_limit_error()
        if fault.reason == "authError":
            raise _unauthorized_error()
        if fault.status >= 500:
            raise _server_error(fault.status)
        raise _ApiError(fault.status, fault.reason, f"injected HTTP {fault.status}")

    def _charge(self, operation: str) -> None:
        bucket, amount = self._costs[operation]
        with self._lock:
            key = (self._quota_day(), bucket)
            used = self._usage.get(key, 0)
            if used + amount > self._limits[bucket]:
                raise _quota_error(bucket)
            self._usage[key] = used + amount
            charged_key = (key[0], operation)
            self._charged[charged_key] = self._charged.get(charged_key, 0) + amount

    def _session_uri(self, session_id: str) -> str:
        return f"{self.url}{_VIDEO_UPLOAD_PATH}?uploadType=resumable&upload_id={session_id}"

    # -- videos.insert -----------------------------------------------------------------------------

    def _validate_video(self, params: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if not params.get("part"):
            raise _ApiError(400, "required", "Required parameter: part")
        try:
            resource = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            raise _ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(resource, dict):
            raise _ApiError(400, "parseError", "Parse Error")
        snippet = resource.get("snippet") or {}
        status = resource.get("status") or {}
        title = snippet.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("invalidTitle", "The request metadata does not specify a video title.")
        if len(title) > TITLE_MAX_CHARS or "<" in title or ">" in title:
            raise _invalid("invalidTitle", "The request metadata specifies an invalid video title.")
        description = snippet.get("description", "")
        if (
            not isinstance(description, str)
            or len(description.encode("utf-8")) > DESCRIPTION_MAX_BYTES
            or "<" in description
            or ">" in description
        ):
            raise _invalid(
                "invalidDescription", "The request metadata specifies an invalid video description."
            )
        tags = snippet.get("tags", [])
        if not isinstance(tags, list) or sum(len(str(t)) for t in tags) > TAGS_MAX_CHARS:
            raise _invalid("invalidTags", "The request metadata specifies invalid video keywords.")
        category = snippet.get("categoryId")
        if category is not None and str(category) not in VALID_CATEGORY_IDS:
            raise _invalid(
                "invalidCategoryId",
                "The snippet.categoryId property specifies an invalid category ID.",
            )
        privacy = status.get("privacyStatus")
        if privacy is not None and privacy not in _PRIVACY:
            raise _invalid(
                "invalidVideoMetadata", "The request metadata specifies an invalid privacy status."
            )
        if "publishAt" in status:
            if _parse_rfc3339(status["publishAt"]) is None:
                raise _invalid(
                    "invalidPublishAt", "The request metadata specifies an invalid publishAt time."
                )
            if privacy != "private":
                raise _invalid(
                    "invalidPublishAt",
                    "publishAt can only be set when the video's privacy status is private.",
                )
        return resource

    def _insert(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._insert_calls += 1
        self._charge("videos.insert")
        upload_type = params.get("uploadType", "")
        if upload_type == "multipart":
            return self._multipart_insert(h, params, body)
        if upload_type != "resumable":
            raise _ApiError(400, "badRequest", f"uploadType {upload_type!r} is not supported")
        resource = self._validate_video(params, body)
        announced = h.headers.get("X-Upload-Content-Length")
        session_id = secrets.token_urlsafe(18)
        session = _Session(
            id=session_id,
            uri=self._session_uri(session_id),
            body=resource,
            total=int(announced) if announced and announced.isdigit() else None,
            content_type=h.headers.get("X-Upload-Content-Type", "application/octet-stream"),
        )
        with self._lock:
            self._sessions[session_id] = session
        return 200, None, {"Location": session.uri}

    def _multipart_insert(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        parts = self._multipart(h, body)
        if len(parts) != 2:
            raise _ApiError(400, "badContent", "multipart body needs metadata and media parts")
        resource = self._validate_video(params, parts[0][1])
        media = parts[1][1]
        if not media:
            raise _invalid("mediaBodyRequired", "The request does not include the video content.")
        video = self._finish_video(resource, bytes(media), upload_type="multipart")
        return 200, video.resource(), {}

    @staticmethod
    def _multipart(h: _Handler, body: bytes) -> list[tuple[str, bytes]]:
        content_type = h.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/"):
            raise _ApiError(400, "badContent", "expected a multipart/related body")
        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        parts: list[tuple[str, bytes]] = []
        for part in message.iter_parts():
            payload = part.get_payload(decode=True)
            parts.append((part.get_content_type(), payload if isinstance(payload, bytes) else b""))
        return parts

    def _finish_video(
        self, resource: Mapping[str, Any], data: bytes, *, upload_type: str
    ) -> FakeVideo:
        now = self._clock()
        snippet = dict(resource.get("snippet") or {})
        snippet.setdefault("description", "")
        snippet.setdefault("categoryId", "22")
        snippet["publishedAt"] = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        snippet.setdefault("channelId", "UCfakeChannel000000000000")
        status = dict(resource.get("status") or {})
        # Since 2026-11-02 a missing privacyStatus means public.
        status.setdefault("privacyStatus", "public")
        published_immediately = False
        publish_at = _parse_rfc3339(status.get("publishAt"))
        if publish_at is not None and publish_at <= now:
            published_immediately = True
            status.pop("publishAt")
            status["privacyStatus"] = "public"
        status["uploadStatus"] = "uploaded"
        with self._lock:
            self._next_video += 1
            video_id = f"v{self._next_video:010d}"
            video = FakeVideo(
                id=video_id,
                snippet=snippet,
                status=status,
                request_body=json.loads(json.dumps(resource)),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                content=data if self._keep_media else None,
                upload_type=upload_type,
                published_immediately=published_immediately,
                created_at=now,
            )
            self._videos[video_id] = video
        return video

    def _live_session(self, params: Mapping[str, str]) -> _Session:
        with self._lock:
            session = self._sessions.get(params.get("upload_id", ""))
            if session is None or session.expired:
                raise _ApiError(404, "notFound", "The upload session does not exist or expired.")
            return session

    def _progress_answer(self, session: _Session) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if session.video_id is not None:
                return 200, self._videos[session.video_id].resource(), {}
            offset = len(session.data)
        headers = {"Range": f"bytes=0-{offset - 1}"} if offset else {}
        return 308, None, headers

    def _status(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._status_queries += 1
        return self._progress_answer(self._live_session(params))

    def _chunk(self, h: _Handler, params: Mapping[str, str]) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        with self._lock:
            drop = self._drops.pop(0) if self._drops else -1
            self._chunks_received += 1
        if drop != -1:
            keep = length // 2 if drop is None else min(drop, length)
            data = self._read_body(h, keep)
            with self._lock:
                self._bytes_received += len(data)
            self._drop(h, params, data)
        data = self._read_body(h)
        with self._lock:
            self._bytes_received += len(data)
            fail = self._error_rate > 0 and self._rng.random() < self._error_rate
        if len(data) < length:
            # The client went away mid-body (cancelled, or its connection broke): like YouTube,
            # keep what arrived, rounded down to 256 KiB, for the client to resume from.
            self._drop(h, params, data)
        kind = "chunk"
        try:
            self._check_auth(h)
            self._take_fault(kind)
            if fail:
                raise _server_error(503)
            session = self._live_session(params)
            match = _CONTENT_RANGE.match(h.headers.get("Content-Range", "").strip())
            if match is None or match.group(1) is None:
                raise _ApiError(400, "badRequest", "invalid Content-Range header")
            start, end = int(match.group(1)), int(match.group(2))
            total = None if match.group(3) == "*" else int(match.group(3))
            if end - start + 1 != len(data):
                raise _ApiError(400, "badRequest", "Content-Range does not match the body length")
            self._accept(session, start, data)
            with self._lock:
                if session.total is None:
                    session.total = total
                complete = (
                    session.video_id is None
                    and session.total is not None
                    and len(session.data) >= session.total
                )
                if complete:
                    media = bytes(session.data[: session.total])
                    session.data = bytearray()
            if complete:
                video = self._finish_video(session.body, media, upload_type="resumable")
                with self._lock:
                    session.video_id = video.id
            status, payload, headers = self._progress_answer(session)
            self._answer(h, kind, status, payload, len(data), headers)
        except _ApiError as err:
            self._answer(h, kind, err.status, err.body(), len(data))

    def _accept(self, session: _Session, start: int, data: bytes) -> None:
        with self._lock:
            if session.video_id is not None:
                return
            offset = len(session.data)
            if start <= offset < start + len(data):
                session.data += data[offset - start :]

    def _drop(self, h: _Handler, params: Mapping[str, str], data: bytes) -> None:
        match = _CONTENT_RANGE.match(h.headers.get("Content-Range", "").strip())
        with self._lock:
            session = self._sessions.get(params.get("upload_id", ""))
        if session is not None and match is not None and match.group(1) is not None:
            kept = len(data) - len(data) % PERSIST_GRANULARITY
            if kept:
                self._accept(session, int(match.group(1)), data[:kept])
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped(len(data))

    # -- follow-ups and reads ----------------------------------------------------------------------

    def _update_video(self, video_id: str, **changes: Any) -> FakeVideo:
        with self._lock:
            video = self._videos.get(video_id)
            if video is None:
                raise _ApiError(
                    404,
                    "videoNotFound",
                    "The video identified by the videoId parameter could not be found.",
                    domain="youtube.thumbnail",
                )
            if "playlist_id" in changes:
                changes["playlist_ids"] = (*video.playlist_ids, changes.pop("playlist_id"))
            if "thumbnail_sha256" in changes:
                changes["thumbnail_count"] = video.thumbnail_count + 1
            video = replace(video, **changes)
            self._videos[video_id] = video
            return video

    def _thumbnail(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self._charge("thumbnails.set")
        upload_type = params.get("uploadType", "media")
        if upload_type == "multipart":
            parts = self._multipart(h, body)
            content_type, image = parts[-1] if parts else ("", b"")
        elif upload_type == "media":
            content_type, image = h.headers.get("Content-Type", ""), body
        else:
            raise _ApiError(400, "badRequest", f"uploadType {upload_type!r} is not supported")
        if not image:
            raise _invalid("mediaBodyRequired", "The request does not include the image content.")
        if len(image) > THUMBNAIL_MAX_BYTES:
            raise _invalid("mediaBodyTooLarge", "The thumbnail image is larger than 50 MB.")
        if content_type.split(";")[0].strip() not in (
            "image/jpeg",
            "image/png",
            "application/octet-stream",
        ):
            raise _invalid("invalidImage", "The provided image content is invalid.")
        video_id = params.get("videoId", "")
        self._update_video(
            video_id, thumbnail_set=True, thumbnail_sha256=hashlib.sha256(image).hexdigest()
        )
        url = f"https://i.ytimg.com/vi/{video_id}/default.jpg"
        payload = {
            "kind": "youtube#thumbnailSetResponse",
            "items": [{"default": {"url": url, "width": 120, "height": 90}}],
        }
        return 200, payload, {}

    def _playlist_item(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self._charge("playlistItems.insert")
        try:
            resource = json.loads(body.decode("utf-8"))
            snippet = resource["snippet"]
            playlist_id = str(snippet["playlistId"])
            video_id = str(snippet["resourceId"]["videoId"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise _ApiError(
                400, "playlistIdRequired", "The request does not specify a playlist and video."
            ) from None
        if self._known_playlists is not None and playlist_id not in self._known_playlists:
            raise _ApiError(
                404,
                "playlistNotFound",
                "The playlist identified with the request's playlistId parameter cannot be found.",
                domain="youtube.playlistItem",
            )
        video = self._update_video(video_id, playlist_id=playlist_id)
        payload = {
            "kind": "youtube#playlistItem",
            "id": f"{playlist_id}.{video_id}.{len(video.playlist_ids)}",
            "snippet": {
                "playlistId": playlist_id,
                "position": len(video.playlist_ids) - 1,
                "resourceId": {"kind": "youtube#video", "videoId": video_id},
            },
        }
        return 200, payload, {}

    def _playlist_list(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """``playlistItems.list(part=id, playlistId=..., videoId=...)``: that video's items in
        that playlist (duplicates included)."""
        self._charge("playlistItems.list")
        playlist_id = params.get("playlistId", "")
        if not playlist_id:
            raise _ApiError(400, "playlistIdRequired", "The request does not specify a playlist.")
        if self._known_playlists is not None and playlist_id not in self._known_playlists:
            raise _ApiError(
                404,
                "playlistNotFound",
                "The playlist identified with the request's playlistId parameter cannot be found.",
                domain="youtube.playlistItem",
            )
        wanted = params.get("videoId")
        with self._lock:
            videos = [v for v in self._videos.values() if wanted is None or v.id == wanted]
            items = [
                {"kind": "youtube#playlistItem", "id": f"{playlist_id}.{v.id}.{n + 1}"}
                for v in videos
                for n, p in enumerate(v.playlist_ids)
                if p == playlist_id
            ]
        payload = {
            "kind": "youtube#playlistItemListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        return 200, payload, {}

    def _list(
        self, h: _Handler, params: Mapping[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        self._charge("videos.list")
        ids = [i for i in params.get("id", "").split(",") if i]
        with self._lock:
            items = [self._videos[i].resource() for i in ids if i in self._videos]
        payload = {
            "kind": "youtube#videoListResponse",
            "items": items,
            "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
        }
        return 200, payload, {}

    # -- OAuth token endpoint ----------------------------------------------------------------------

    def _token(self, body: bytes) -> tuple[int, Any]:
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        with self._lock:
            revoked = self._refresh_revoked
            self._tokens_issued += 1
            issued = self._tokens_issued
        if grant == "refresh_token" and revoked:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        if grant not in ("refresh_token", "authorization_code"):
            return 400, {"error": "unsupported_grant_type"}
        payload: dict[str, Any] = {
            "access_token": self._required_token or f"fake-access-{issued}",
            "expires_in": 3599,
            "token_type": "Bearer",
        }
        if grant == "authorization_code":
            payload["refresh_token"] = f"fake-refresh-{issued}"
        return 200, payload
