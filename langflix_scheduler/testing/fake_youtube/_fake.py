"""``FakeYouTube``: the three layers put together (see the package docstring)."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ...quota import DEFAULT_QUOTA_TIMEZONE, QuotaPolicy
from ._errors import UPLOADS_BUCKET
from ._http import RecordedRequest, Route, _Fault, _Server
from ._lifecycle import FakeVideoUpdate, VideoLife, _OutcomeRule
from ._rules import _COSTS, APP_STATUSES, TESTING_REFRESH_TOKEN_LIFETIME, FakeVideo
from ._sessions import _Session

#: The channel ``channels.list(mine=true)`` answers with unless told otherwise.
DEFAULT_CHANNEL_ID = "UCfakeChannel00000000001"
DEFAULT_CHANNEL_TITLE = "Fake Channel"


class FakeYouTube(VideoLife):
    """A loopback fake YouTube Data API server (see the package docstring).

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
        channel_id: the channel ``channels.list(mine=true)`` returns (``None``: no channel).
        channel_title: its title.
        app_status: the OAuth app's status: ``"production"``, or ``"testing"`` (refresh tokens
            expire 7 days after the fake first sees them; token answers carry
            ``refresh_token_expires_in``).
        refresh_token_lifetime: how long a testing app's refresh token lives (fake clock).
        processing_time: how long processing of an upload takes on the fake's clock
            (``uploadStatus=uploaded``, ``processingStatus=processing`` until then; 0: done at
            the first look after the upload).
        locked_private: a locked-private project (uploads end private with no ``publishAt``).
        granted_scopes: scopes the token endpoint grants (``None``: those asked for, else
            ``youtube.upload`` + ``youtube.force-ssl``); a refresh asking for more is refused
            with ``invalid_scope``.
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
        channel_id: str | None = DEFAULT_CHANNEL_ID,
        channel_title: str = DEFAULT_CHANNEL_TITLE,
        app_status: str = "production",
        granted_scopes: Iterable[str] | None = None,
        refresh_token_lifetime: timedelta = TESTING_REFRESH_TOKEN_LIFETIME,
        processing_time: timedelta = timedelta(0),
        locked_private: bool = False,
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
        self._channel = None if channel_id is None else (channel_id, channel_title)
        if app_status not in APP_STATUSES:
            raise ValueError(f"app_status must be one of {sorted(APP_STATUSES)}")
        self._app_status = app_status
        self._granted_scopes = None if granted_scopes is None else frozenset(granted_scopes)
        self._refresh_first_seen: dict[str, datetime] = {}
        self._access_scopes: dict[str, frozenset[str]] = {}
        self._refresh_token_lifetime = refresh_token_lifetime
        if processing_time < timedelta(0):
            raise ValueError("processing_time must be >= 0")
        self._processing_time = processing_time
        self._locked_private = bool(locked_private)
        self._outcome_rules: list[_OutcomeRule] = []
        self._deleted: dict[str, FakeVideo] = {}
        self._video_updates: list[FakeVideoUpdate] = []
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _route(self, kind: str) -> Route:
        routes: dict[str, Route] = {
            "insert": self._insert,
            "status": self._status,
            "thumbnails": self._thumbnail,
            "playlistItems": self._playlist_item,
            "playlistList": self._playlist_list,
            "list": self._list,
            "channels": self._channels,
            "update": self._update,
            "delete": self._delete,
        }
        return routes[kind]
