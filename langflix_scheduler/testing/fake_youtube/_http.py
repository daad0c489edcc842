"""HTTP plumbing of the fake: the threaded server, routing, recording, faults on demand.

:class:`HttpPlumbing` is the bottom layer of :class:`~.FakeYouTube`: it serves requests, finds
what kind each one is, answers faults injected on demand, records every request, and hands the
rest to the layers above (:meth:`HttpPlumbing._route`, :meth:`HttpPlumbing._media`,
:meth:`HttpPlumbing._token`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from ._errors import (
    _ApiError,
    _quota_error,
    _server_error,
    _unauthorized_error,
    _upload_limit_error,
)

logger = logging.getLogger("langflix_scheduler.testing.fake_youtube")

#: Idle keep-alive connections are closed after this many seconds.
CONNECTION_IDLE_TIMEOUT_S = 60.0

_TARGETS = frozenset(
    {
        "any",
        "insert",
        "chunk",
        "status",
        "thumbnails",
        "playlistItems",
        "playlistList",
        "list",
        "channels",
        "update",
        "delete",
    }
)

#: The API method (quota-cost key) of each kind of request; kinds not listed are not API calls.
OPERATIONS = {
    "insert": "videos.insert",
    "thumbnails": "thumbnails.set",
    "playlistItems": "playlistItems.insert",
    "playlistList": "playlistItems.list",
    "list": "videos.list",
    "channels": "channels.list",
    "update": "videos.update",
    "delete": "videos.delete",
}

VIDEO_UPLOAD_PATH = "/upload/youtube/v3/videos"
THUMBNAIL_PATH = "/upload/youtube/v3/thumbnails/set"
PLAYLIST_ITEMS_PATH = "/youtube/v3/playlistItems"
VIDEOS_PATH = "/youtube/v3/videos"
CHANNELS_PATH = "/youtube/v3/channels"
TOKEN_PATH = "/token"  # noqa: S105 - a URL path, not a secret

#: ``(status, payload, headers)`` of an answer.
Answer = tuple[int, Any, dict[str, str]]
#: A request handler of an API method: ``(handler, query parameters, body) -> answer``.
Route = Callable[[Any, Mapping[str, str], bytes], Answer]


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    """One request the fake answered (or dropped: ``status`` 0)."""

    method: str
    path: str
    kind: str
    status: int
    body_bytes: int
    #: The query parameters (last value of each), e.g. ``{"part": "status"}``.
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str | None:
        """The API method this request was (``"videos.update"``, ...), None for media, status
        queries and tokens."""
        return OPERATIONS.get(self.kind)


@dataclass(kw_only=True)
class _Fault:
    target: str
    status: int
    reason: str
    count: int


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

    def do_DELETE(self) -> None:
        self.server.fake._dispatch(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: HttpPlumbing) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Dropped(Exception):
    def __init__(self, body_bytes: int) -> None:
        super().__init__("connection dropped")
        self.body_bytes = body_bytes


class HttpPlumbing:
    """The HTTP layer (see the module docstring); state is set by ``FakeYouTube.__init__``."""

    _lock: threading.RLock
    _host: str
    _port: int
    _required_token: str | None
    _latency: float
    _faults: list[_Fault]
    _reply_drops: list[list[Any]]
    _requests: list[RecordedRequest]
    _connections: set[socket.socket]
    _server: _Server | None
    _thread: threading.Thread | None

    # -- hooks of the layers above ----------------------------------------------------------------

    def _route(self, kind: str) -> Route:
        raise NotImplementedError

    def _media(self, h: _Handler, params: Mapping[str, str]) -> None:
        raise NotImplementedError

    def _token(self, body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
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

    def __enter__(self) -> Self:
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
        return self.url + TOKEN_PATH

    # -- fault injection ---------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 503, *, target: str = "any") -> None:
        """Answer the next ``n`` requests of ``target`` with ``status`` (a 5xx ``backendError``
        unless another status is given).

        ``target``: ``"any"`` (every API request), ``"insert"`` (session initiation), ``"chunk"``,
        ``"status"`` (status queries), ``"thumbnails"``, ``"playlistItems"``,
        ``"playlistList"`` (``playlistItems.list``), ``"list"`` (``videos.list``),
        ``"channels"`` (``channels.list``), ``"update"`` (``videos.update``), ``"delete"``
        (``videos.delete``).
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

    # -- observations ------------------------------------------------------------------------------

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request answered so far, in order."""
        with self._lock:
            return tuple(self._requests)

    def calls_of(self, operation: str, *, answered_only: bool = False) -> int:
        """How many requests of API method ``operation`` (``"videos.update"``, ...) arrived
        (``answered_only``: not counting those whose answer was dropped)."""
        with self._lock:
            return sum(
                1
                for r in self._requests
                if r.operation == operation and (r.status or not answered_only)
            )

    def wait_until(self, predicate: Callable[[Self], bool], *, timeout: float = 10.0) -> None:
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

    def _record(self, h: _Handler, kind: str, status: int, body_bytes: int) -> None:
        split = urllib.parse.urlsplit(h.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query).items()}
        query.pop("upload_id", None)  # a bearer capability: not kept in the record
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=h.command,
                    path=split.path,
                    kind=kind,
                    status=status,
                    body_bytes=body_bytes,
                    query=query,
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
                self._media(h, params)
                return
            body = self._read_body(h)
            self._check_auth(h)
            self._take_fault(kind)
            handler = self._route(kind)
            status, payload, headers = handler(h, params, body)
            if self._take_reply_drop(kind):
                # Recorded before the connection closes: the client learns of the loss only
                # after the fake counted the request.
                self._record(h, kind, 0, len(body))
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(h, kind, status, payload, len(body), headers)
        except _ApiError as err:
            self._answer(h, kind, err.status, err.body(), len(body))
        except _Dropped as dropped:
            self._record(h, kind, 0, dropped.body_bytes)

    @staticmethod
    def _kind(method: str, path: str, params: Mapping[str, str], content_range: str) -> str:
        if method == "POST" and path == TOKEN_PATH:
            return "token"
        if method == "POST" and path == VIDEO_UPLOAD_PATH and "upload_id" not in params:
            return "insert"
        if method == "PUT" and path == VIDEO_UPLOAD_PATH and "upload_id" in params:
            return "status" if content_range.startswith("bytes */") else "chunk"
        if method == "POST" and path == THUMBNAIL_PATH:
            return "thumbnails"
        if method == "POST" and path == PLAYLIST_ITEMS_PATH:
            return "playlistItems"
        if method == "GET" and path == PLAYLIST_ITEMS_PATH:
            return "playlistList"
        if method == "GET" and path == VIDEOS_PATH:
            return "list"
        if method == "GET" and path == CHANNELS_PATH:
            return "channels"
        if method == "PUT" and path == VIDEOS_PATH:
            return "update"
        if method == "DELETE" and path == VIDEOS_PATH:
            return "delete"
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
