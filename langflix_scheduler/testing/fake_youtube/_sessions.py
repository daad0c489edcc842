"""Resumable upload sessions in the fake: initiation, media ``PUT`` requests, status queries,
dropped and cut-short bodies."""

from __future__ import annotations

import contextlib
import random
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import _ApiError, _server_error
from ._http import VIDEO_UPLOAD_PATH, Answer, _Dropped, _Handler
from ._rules import YouTubeRules

#: Bytes of a dropped chunk that the fake keeps are rounded down to this (256 KiB).
PERSIST_GRANULARITY = 256 * 1024

_CONTENT_RANGE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


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


class ResumableSessions(YouTubeRules):
    """The resumable protocol (state set by ``FakeYouTube``)."""

    _sessions: dict[str, _Session]
    _drops: list[int | None]
    _rng: random.Random
    _error_rate: float
    _bytes_received: int
    _chunks_received: int
    _status_queries: int

    def drop_next_chunk(self, n: int = 1, *, after_bytes: int | None = None) -> None:
        """Drop the next ``n`` chunk PUTs: read ``after_bytes`` of the body (default half), keep
        them rounded down to 256 KiB, then close the connection without an answer."""
        with self._lock:
            self._drops.extend([after_bytes] * n)

    def expire_sessions(self) -> None:
        """Expire every resumable session: further requests to them get 404."""
        with self._lock:
            for session in self._sessions.values():
                session.expired = True

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

    def _session_uri(self, session_id: str) -> str:
        return f"{self.url}{VIDEO_UPLOAD_PATH}?uploadType=resumable&upload_id={session_id}"

    def _insert(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
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

    def _live_session(self, params: Mapping[str, str]) -> _Session:
        with self._lock:
            session = self._sessions.get(params.get("upload_id", ""))
            if session is None or session.expired:
                raise _ApiError(404, "notFound", "The upload session does not exist or expired.")
            return session

    def _progress_answer(self, session: _Session) -> Answer:
        with self._lock:
            if session.video_id is not None:
                video = self._videos.get(session.video_id)
                if video is None:  # deleted since: the upload still completed
                    return 200, {"kind": "youtube#video", "id": session.video_id}, {}
                return 200, video.resource(), {}
            offset = len(session.data)
        headers = {"Range": f"bytes=0-{offset - 1}"} if offset else {}
        return 308, None, headers

    def _status(self, h: _Handler, params: Mapping[str, str], body: bytes) -> Answer:
        with self._lock:
            self._status_queries += 1
        return self._progress_answer(self._live_session(params))

    def _media(self, h: _Handler, params: Mapping[str, str]) -> None:
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
