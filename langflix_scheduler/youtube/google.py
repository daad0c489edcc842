"""The real :class:`~langflix_scheduler.youtube.uploader.Uploader`, on google-api-python-client.

How it uses the client, and why (see ``YOUTUBE_FACTS.md`` for the reproduced pitfalls):

* The service is built from the discovery document bundled with google-api-python-client
  (``build_from_document``; never a network fetch). With ``api_endpoint`` its ``rootUrl`` is
  pointed there and ``mtlsRootUrl`` dropped: ``client_options={"api_endpoint": ...}`` would not
  redirect media uploads.
* Transport: ``google_auth_httplib2.AuthorizedHttp(credentials, http=build_http())``
  (``build_http`` stops httplib2 treating 308 as a redirect; ``AuthorizedHttp`` refreshes the
  token before a chunk when it nears expiry and once on a 401). httplib2 is not thread-safe, so
  each thread gets its own service object.
* ``next_chunk(num_retries=0)`` and our own bounded retry loop (exponential backoff, full jitter);
  ``httplib2.RETRIES = 1``; chunks are sent as bytes, never as a stream, so any re-send is whole.
* The session URI is caught from the initiation response and handed to ``progress`` before chunk 0
  is sent. A stored session is probed with ``Content-Range: bytes */size`` first: a 200/201 means
  the upload already completed (its video id is taken, nothing re-sent, no second insert); a 308
  says where to continue; a 404 means the session expired and a new insert starts.
* Every quota-bearing request actually sent (a ``videos.insert`` initiation, re-sent ones
  included; ``thumbnails.set``; ``playlistItems.insert``/``.list``; ``videos.list``) is reported
  through ``on_call`` *before* it is sent, by a thin wrapper around the http object
  (:class:`_MeteredHttp`), so a quota ledger counts what YouTube counts; a report that raises
  stops that request. A ``quotaExceeded`` answer is reported as refused (not charged).
* ``playlistItems.insert`` is not blindly re-sent: after a failure whose outcome is unknown (or
  when an earlier attempt sent it, ``UploadRequest.attempted_steps``), ``playlistItems.list``
  (``part=id``, 1 unit) asks whether the video is in the playlist already.
* Every failure leaves as an :class:`~langflix_scheduler.errors.UploadError` subclass
  (:func:`classify_error`), with the original exception as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import mimetypes
import os
import random
import socket
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import google_auth_httplib2
import httplib2
from google.auth import exceptions as google_auth_exceptions
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import Error as GoogleApiClientError
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload, build_http

from ..errors import (
    AuthorizationError,
    ConfigurationError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from ..quota import DEFAULT_QUOTA_TIMEZONE, next_quota_reset
from .auth import classify_refresh_error
from .uploader import (
    CHUNK_GRANULARITY,
    DEFAULT_CHUNK_SIZE,
    ApiCallReport,
    CallCallback,
    CallPhase,
    ProgressCallback,
    SessionProbe,
    SessionState,
    StepCallback,
    UploadRequest,
    UploadResult,
    UploadStep,
    check_thumbnail_file,
    check_video_file,
    publication_status,
    remaining_steps,
    video_resource,
)

__all__ = ["DEFAULT_MAX_RETRIES", "YouTubeUploader", "classify_error"]

logger = logging.getLogger(__name__)

# A retried request must never be re-sent by httplib2 itself: with a streamed body the re-send
# carries the full Content-Length but an empty body and hangs. Our retry loop does it instead.
httplib2.RETRIES = 1

#: Retries after the first try, per streak of consecutive failures (a confirmed chunk resets it).
DEFAULT_MAX_RETRIES = 5
#: First backoff delay in seconds; doubles per consecutive failure, with full jitter.
RETRY_INITIAL_DELAY_S = 1.0
#: Backoff delays are capped at this many seconds.
RETRY_MAX_DELAY_S = 64.0

VIDEO_PARTS = "snippet,status"
PLAYLIST_ITEM_PARTS = "snippet"
#: ``playlistItems.list`` asks only for ids: is the video in the playlist already?
PLAYLIST_CHECK_PARTS = "id"
PLAYLIST_LIST = "playlistItems.list"
_DISCOVERY_SERVICE = ("youtube", "v3")
_VIDEO_FALLBACK_MIMETYPE = "application/octet-stream"
_THUMBNAIL_MIMETYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_SESSION_GONE = frozenset({404, 410})
_QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
_TRANSIENT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}
)
_AUTH_REASONS = frozenset(
    {"insufficientPermissions", "authError", "unauthorized", "youtubeSignupRequired"}
)
_UPLOADS_PER_DAY = "Video Uploads per day"
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ETIMEDOUT",
        "EPIPE",
        "ECONNABORTED",
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTUNREACH",
        "EHOSTDOWN",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EADDRNOTAVAIL",
        "EAGAIN",
    )
    if hasattr(errno, name)
)

_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _error_fields(exc: HttpError) -> tuple[int, str, str]:
    """``(status, reason, message)`` of an API error answer."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    reason = ""
    message = ""
    try:
        data = json.loads(exc.content.decode("utf-8"))
        error = data["error"]
        message = str(error.get("message", ""))
        errors = error.get("errors") or []
        if errors:
            reason = str(errors[0].get("reason", ""))
            message = message or str(errors[0].get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        pass
    if not message:
        message = str(getattr(exc.resp, "reason", "") or "")
    return status, reason, message


def _classify_http_error(exc: HttpError, *, now: datetime, quota_timezone: str) -> UploadError:
    status, reason, message = _error_fields(exc)
    detail = f"YouTube answered HTTP {status}" + (f" {reason}" if reason else "")
    if message:
        detail += f": {message}"
    if status == 429 and _UPLOADS_PER_DAY.lower() in exc.content.decode("utf-8", "replace").lower():
        # The videos.insert bucket of the project is spent: same as quotaExceeded, per PT day.
        return QuotaExhaustedError(
            detail,
            resume_at=next_quota_reset(now, quota_timezone),
            reason=reason or "rateLimitExceeded",
            status=status,
        )
    if reason in _QUOTA_REASONS:
        return QuotaExhaustedError(
            detail, resume_at=next_quota_reset(now, quota_timezone), reason=reason, status=status
        )
    if reason == "uploadLimitExceeded":
        return UploadLimitExceededError(detail, reason=reason, status=status)
    if reason in _TRANSIENT_REASONS or status in {429, 408} or status >= 500:
        return TransientUploadError(detail, reason=reason or f"http{status}", status=status)
    if status == 401 or reason in _AUTH_REASONS:
        return AuthorizationError(
            detail + " (run `langflix-scheduler auth` again to re-authorise this channel)",
            reason=reason or "unauthorized",
            status=status,
        )
    if isinstance(exc, GoogleApiClientError) and status == 200:
        # A resumable initiation answered 200 without a session URI: a broken intermediary.
        return TransientUploadError(detail, reason="noSessionUri", status=status)
    return PermanentUploadError(detail, reason=reason or f"http{status}", status=status)


def classify_error(
    exc: BaseException, *, now: datetime, quota_timezone: str = DEFAULT_QUOTA_TIMEZONE
) -> UploadError:
    """Translate an exception raised while talking to YouTube into an :class:`UploadError`.

    The reason is read from the error body (``error.errors[0].reason``), not from the message,
    except for the insert bucket's HTTP 429 "Video Uploads per day".

    ============================================================  ============================
    answer                                                        result
    ============================================================  ============================
    403 ``quotaExceeded`` / ``dailyLimitExceeded``                 :class:`QuotaExhaustedError`
    429 mentioning "Video Uploads per day"                         :class:`QuotaExhaustedError`
    ``uploadLimitExceeded`` (400)                                  :class:`UploadLimitExceededError`
    other 429, ``rateLimitExceeded``, ``userRateLimitExceeded``,   :class:`TransientUploadError`
    408, 5xx, connection resets, timeouts, TLS and DNS errors
    401, ``insufficientPermissions``, a dead refresh token         :class:`AuthorizationError`
    other 4xx (invalid metadata, not found, forbidden), file I/O   :class:`PermanentUploadError`
    ============================================================  ============================

    ``QuotaExhaustedError.resume_at`` is the next midnight in ``quota_timezone`` after ``now``.
    The returned error has ``exc`` as ``__cause__``; raise it with ``raise err from exc``.
    An :class:`UploadError` is returned unchanged.
    """
    if isinstance(exc, UploadError):
        return exc
    err: UploadError
    if isinstance(exc, HttpError):
        err = _classify_http_error(exc, now=now, quota_timezone=quota_timezone)
    elif isinstance(exc, google_auth_exceptions.RefreshError):
        err = classify_refresh_error(exc)
    elif isinstance(exc, google_auth_exceptions.TransportError):
        err = TransientUploadError(
            f"network error while refreshing the access token: {type(exc).__name__}",
            reason="tokenTransportError",
        )
    elif isinstance(exc, google_auth_exceptions.GoogleAuthError):
        err = AuthorizationError(
            f"credentials are unusable ({type(exc).__name__}); run `langflix-scheduler auth`",
            reason="authError",
        )
    elif isinstance(exc, socket.timeout | TimeoutError):
        err = TransientUploadError("timed out talking to YouTube", reason="timeout")
    elif isinstance(exc, ConnectionError | ssl.SSLError | http.client.HTTPException):
        err = TransientUploadError(
            f"connection to YouTube failed: {type(exc).__name__}: {exc}", reason="connection"
        )
    elif isinstance(exc, httplib2.HttpLib2Error):
        err = TransientUploadError(
            f"HTTP transport error: {type(exc).__name__}: {exc}", reason="transport"
        )
    elif isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        err = TransientUploadError(
            f"network error: {type(exc).__name__}: {exc}", reason="connection"
        )
    elif isinstance(exc, OSError):
        err = PermanentUploadError(
            f"local I/O error: {type(exc).__name__}: {exc}", reason="localIOError"
        )
    else:
        err = PermanentUploadError(
            f"unexpected error talking to YouTube: {type(exc).__name__}: {exc}",
            reason="unexpected",
        )
    err.__cause__ = exc
    return err


class _CallbackFailed(Exception):
    """Carries an exception raised by the caller's ``on_call`` out of the client's frames
    unchanged (the request was not sent); never retried or classified."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"on_call raised {type(original).__name__}")
        self.original = original


_METERED_PATHS = (
    # (HTTP method, path suffix, operation); the upload of a media chunk or a status query
    # (a PUT to the session URI) is not a call of its own and costs nothing.
    ("POST", "/upload/youtube/v3/videos", UploadStep.INSERT.value),
    ("POST", "/upload/youtube/v3/thumbnails/set", UploadStep.THUMBNAIL.value),
    ("POST", "/youtube/v3/playlistItems", UploadStep.PLAYLIST.value),
    ("GET", "/youtube/v3/playlistItems", PLAYLIST_LIST),
    ("GET", "/youtube/v3/videos", "videos.list"),
)


def _metered_operation(uri: str, method: str) -> str | None:
    """The quota-bearing operation a request is, or None (chunks, status queries, tokens)."""
    split = urllib.parse.urlsplit(uri)
    if "upload_id=" in split.query:
        return None  # a chunk or status query of an open session
    for verb, suffix, operation in _METERED_PATHS:
        if method.upper() == verb and split.path.endswith(suffix):
            return operation
    return None


def _refused_for_quota(resp: Any, content: Any) -> bool:
    status = int(getattr(resp, "status", 0) or 0)
    if status not in (403, 429):
        return False
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    if status == 429:
        return _UPLOADS_PER_DAY.lower() in text.lower()
    return any(f'"{reason}"' in text for reason in _QUOTA_REASONS)


class _MeteredHttp:
    """Wraps the raw http object of one thread (under ``AuthorizedHttp``, so a request re-sent
    after a token refresh is seen too): reports each quota-bearing request to ``on_call`` before
    it is sent, and a quota refusal after.

    "Sent" is counted where the bytes go out, on the connection (``conn.request`` inside
    ``httplib2.Http._conn_request``). httplib2 silently sends a request a second time when the
    first answer was lost on a kept-alive connection (``BadStatusLine`` on the first try,
    whatever ``httplib2.RETRIES`` says); for a quota-bearing request that second send is refused
    with a ``ConnectionResetError``, so our own retry loop (counted, backed off, and checking
    ``playlistItems.list`` first) decides instead. When that hook is missing (another http
    object), each ``request`` counts once.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.on_call: CallCallback | None = None
        self._next_id = 0
        self._operation: str | None = None
        self._sends = 0
        self._per_connection = callable(getattr(inner, "_conn_request", None))
        if self._per_connection:
            original: Callable[..., Any] = inner._conn_request

            def conn_request(conn: Any, *args: Any, **kwargs: Any) -> Any:
                operation = self._operation
                if operation is None:
                    return original(conn, *args, **kwargs)
                send = conn.request
                sends = 0

                def metered_send(*a: Any, **k: Any) -> Any:
                    nonlocal sends
                    sends += 1
                    if sends > 1:
                        # httplib2 re-sending on its own after a lost answer: the first send
                        # may have taken effect (a second playlist entry, a second session).
                        # Refuse; our retry loop decides, and checks before re-sending.
                        raise ConnectionResetError(
                            f"the answer to {operation} was lost; not re-sent blindly"
                        )
                    self._report_sending(operation)
                    return send(*a, **k)

                conn.request = metered_send
                try:
                    return original(conn, *args, **kwargs)
                finally:
                    with contextlib.suppress(AttributeError):
                        del conn.request

            inner._conn_request = conn_request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _report(self, report: ApiCallReport) -> None:
        assert self.on_call is not None
        try:
            self.on_call(report)
        except Exception as exc:
            raise _CallbackFailed(exc) from exc

    def _report_sending(self, operation: str) -> None:
        self._next_id += 1
        self._sends = self._next_id
        self._report(
            ApiCallReport(operation=operation, phase=CallPhase.SENDING, call_id=self._next_id)
        )

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, bytes]:
        operation = _metered_operation(uri, method) if self.on_call is not None else None
        if operation is None:
            return self._inner.request(uri, method, body=body, headers=headers, **kwargs)  # type: ignore[no-any-return]
        self._sends = 0
        if not self._per_connection:
            self._report_sending(operation)
        self._operation = operation
        try:
            resp, content = self._inner.request(uri, method, body=body, headers=headers, **kwargs)
        finally:
            self._operation = None
        if self._sends and _refused_for_quota(resp, content):
            self._report(
                ApiCallReport(operation=operation, phase=CallPhase.REFUSED, call_id=self._sends)
            )
        return resp, content


class _SessionOpened(Exception):
    """Raised by :class:`_InitiationGuard` right after a resumable session is opened, so the
    session URI can be handed to the caller before chunk 0 is sent."""

    def __init__(self, session_uri: str) -> None:
        super().__init__("resumable session opened")
        self.session_uri = session_uri


class _InitiationGuard:
    """Wraps the http object of one insert: stops ``next_chunk`` right after the initiation
    answered with a session URI (before chunk 0), by raising :class:`_SessionOpened`."""

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
            raise _SessionOpened(resp["location"])
        return resp, content


class _ChunkBytesUpload(MediaFileUpload):  # type: ignore[misc]
    """A resumable file upload whose chunks are sent as bytes (never a half-read stream), so any
    re-send by a lower layer carries the whole chunk."""

    def has_stream(self) -> bool:
        return False


def _video_mimetype(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed if guessed and guessed.startswith("video/") else _VIDEO_FALLBACK_MIMETYPE


def _parse_range_end(resp: Any) -> int:
    """The next offset from a 308 answer's ``Range: bytes=0-N`` header (0 when absent)."""
    value = resp.get("range") if hasattr(resp, "get") else None
    if not value:
        return 0
    try:
        return int(str(value).rsplit("-", 1)[1]) + 1
    except (IndexError, ValueError):
        return 0


class YouTubeUploader:
    """Uploads videos with the YouTube Data API v3 (resumable, crash-safe, retried).

    Thread-safe: each thread gets its own service and HTTP connection. Share one instance.

    Args:
        credentials: ``google.oauth2.credentials.Credentials`` (see
            :func:`langflix_scheduler.youtube.auth.load_credentials`).
        api_endpoint: base URL of the API (default: Google's); e.g. ``FakeYouTube().api_endpoint``.
        chunk_size: bytes per resumable chunk, a positive multiple of 256 KiB (default 8 MiB).
        max_retries: transient failures retried in a row before giving up (a confirmed chunk
            resets the count).
        clock: returns the aware current time (default ``datetime.now(UTC)``).
        sleep: called with the backoff delay in seconds (tests pass a no-op).
        quota_timezone: IANA zone whose midnight resets the quota (for
            ``QuotaExhaustedError.resume_at``).
        retry_initial_delay: first backoff delay in seconds.
        retry_max_delay: cap of the backoff delay in seconds.
    """

    def __init__(
        self,
        credentials: Any,
        *,
        api_endpoint: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        quota_timezone: str = DEFAULT_QUOTA_TIMEZONE,
        retry_initial_delay: float = RETRY_INITIAL_DELAY_S,
        retry_max_delay: float = RETRY_MAX_DELAY_S,
    ) -> None:
        if (
            not isinstance(chunk_size, int)
            or chunk_size <= 0
            or chunk_size % CHUNK_GRANULARITY != 0
        ):
            raise ConfigurationError(
                "chunk_size", f"{chunk_size!r} is not a positive multiple of 256 KiB (262144)"
            )
        if max_retries < 0:
            raise ConfigurationError("max_retries", "must be >= 0")
        if retry_initial_delay < 0 or retry_max_delay < 0:
            raise ConfigurationError("retry_initial_delay", "backoff delays must be >= 0")
        self._credentials = credentials
        self._chunk_size = chunk_size
        self._max_retries = max_retries
        self._clock = clock or _utc_now
        self._sleep = sleep
        self._quota_timezone = quota_timezone
        self._retry_initial_delay = retry_initial_delay
        self._retry_max_delay = retry_max_delay
        self._rng = random.Random()
        self._discovery = self._load_discovery(api_endpoint)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._transports: weakref.WeakSet[Any] = weakref.WeakSet()

    def close(self) -> None:
        """Close the HTTP connections of every thread. Call it when no upload is running; the
        uploader stays usable (connections are reopened on demand)."""
        with self._lock:
            transports = list(self._transports)
        for transport in transports:
            transport.close()

    def __enter__(self) -> YouTubeUploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _load_discovery(api_endpoint: str | None) -> str:
        text = discovery_cache.get_static_doc(*_DISCOVERY_SERVICE)
        if not text:
            raise ConfigurationError(
                "google-api-python-client",
                "the bundled youtube v3 discovery document is missing; reinstall the package",
            )
        if api_endpoint is None:
            return str(text)
        if not api_endpoint.startswith(("http://", "https://")):
            raise ConfigurationError("api_endpoint", f"{api_endpoint!r} is not an http(s) URL")
        doc = json.loads(text)
        root = api_endpoint.rstrip("/") + "/"
        doc["rootUrl"] = root
        doc["baseUrl"] = root + doc.get("servicePath", "")
        doc.pop("mtlsRootUrl", None)
        return json.dumps(doc)

    def _client(self) -> tuple[Any, Any]:
        """This thread's ``(service, http)``, built on first use (no network)."""
        service = getattr(self._local, "service", None)
        if service is None:
            meter = _MeteredHttp(build_http())
            authed = google_auth_httplib2.AuthorizedHttp(self._credentials, http=meter)
            service = build_from_document(self._discovery, http=authed)
            with self._lock:
                self._transports.add(authed)
            self._local.service = service
            self._local.http = authed
            self._local.meter = meter
        return service, self._local.http

    def _meter(self) -> _MeteredHttp:
        self._client()
        meter: _MeteredHttp = self._local.meter
        return meter

    def _now(self) -> datetime:
        return self._clock()

    def _classify(self, exc: Exception) -> UploadError:
        return classify_error(exc, now=self._now(), quota_timezone=self._quota_timezone)

    def _backoff(self, failures: int) -> float:
        cap = min(self._retry_max_delay, self._retry_initial_delay * 2 ** (failures - 1))
        return self._rng.uniform(0, cap)

    def _retry_or_raise(self, exc: Exception, failures: int, what: str) -> None:
        """Raise the classified error unless it is transient and retries remain; else back off."""
        if isinstance(exc, _CallbackFailed):
            raise exc  # the caller's own error: unwrapped by upload(), never retried
        err = self._classify(exc)
        if not isinstance(err, TransientUploadError) or failures >= self._max_retries:
            raise err from exc
        delay = self._backoff(failures + 1)
        logger.warning(
            "%s failed (%s); retry %d of %d in %.2f s",
            what,
            err.reason,
            failures + 1,
            self._max_retries,
            delay,
        )
        self._sleep(delay)

    def _call_with_retries(self, what: str, call: Callable[[], _T]) -> _T:
        failures = 0
        while True:
            try:
                return call()
            except Exception as exc:
                self._retry_or_raise(exc, failures, what)
                failures += 1

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
        on_call: CallCallback | None = None,
    ) -> UploadResult:
        """Perform the remaining steps of ``request`` (see
        :class:`~langflix_scheduler.youtube.uploader.Uploader`).

        ``on_call`` is told about every quota-bearing request before it is sent (see
        :class:`~langflix_scheduler.youtube.uploader.ApiCallReport`). Exceptions raised by
        ``progress``, ``on_step`` or ``on_call`` propagate unchanged (the upload stops; a request
        whose ``on_call`` raised is not sent).

        Raises:
            UploadError: classified (see :func:`classify_error`); files are checked before any
                quota is spent (:class:`PermanentUploadError`).
        """
        meter = self._meter()
        meter.on_call = on_call
        try:
            return self._upload(request, progress=progress, on_step=on_step)
        except _CallbackFailed as exc:
            raise exc.original from None
        finally:
            meter.on_call = None

    def _upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None,
        on_step: StepCallback | None,
    ) -> UploadResult:
        steps = remaining_steps(request)
        size = check_video_file(request.video_path) if UploadStep.INSERT in steps else 0
        if UploadStep.THUMBNAIL in steps:
            check_thumbnail_file(request.metadata)
        privacy_status, publish_at = publication_status(
            request.metadata.privacy, request.publish_at, now=self._now()
        )
        operations: list[str] = []
        bytes_sent = 0
        if request.video_id is not None:
            video_id = request.video_id
        else:
            body = video_resource(
                request.metadata, privacy_status=privacy_status, publish_at=publish_at
            )
            video_id, bytes_sent, inserts = self._insert(request, size, body, progress)
            operations.extend([UploadStep.INSERT.value] * inserts)
            logger.info("uploaded %s as video %s", request.video_path, video_id)
            if on_step is not None:
                on_step(UploadStep.INSERT, video_id)
        if UploadStep.THUMBNAIL in steps:
            thumbnail = request.metadata.thumbnail_path
            assert thumbnail is not None
            self._call_with_retries(
                "thumbnails.set", lambda: self._set_thumbnail(video_id, thumbnail)
            )
            operations.append(UploadStep.THUMBNAIL.value)
            if on_step is not None:
                on_step(UploadStep.THUMBNAIL, video_id)
        if UploadStep.PLAYLIST in steps:
            playlist = request.metadata.playlist_id
            assert playlist is not None
            operations.extend(
                self._add_to_playlist_once(
                    video_id, playlist, ambiguous=UploadStep.PLAYLIST in request.attempted_steps
                )
            )
            if on_step is not None:
                on_step(UploadStep.PLAYLIST, video_id)
        return UploadResult(
            video_id=video_id,
            operations=tuple(operations),
            privacy_status=privacy_status,
            publish_at=publish_at,
            bytes_sent=bytes_sent,
        )

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        """Ask a stored resumable session whether its upload completed (see
        :class:`~langflix_scheduler.youtube.uploader.SessionProber`); sends no media and costs no
        quota. The file's size goes into the status query; when the file is gone, ``*``.

        Raises:
            UploadError: classified (see :func:`classify_error`), after the bounded retries.
        """
        try:
            size: int | None = os.stat(video_path).st_size
        except OSError:
            size = None
        _, http = self._client()
        offset, resource = self._call_with_retries(
            "upload session status", lambda: self._probe(http, session_uri, size)
        )
        if resource is not None:
            return SessionProbe(state=SessionState.COMPLETED, video_id=self._video_id(resource))
        if offset < 0:
            return SessionProbe(state=SessionState.GONE)
        return SessionProbe(state=SessionState.INCOMPLETE, offset=offset)

    # -- videos.insert -------------------------------------------------------------------------

    def _probe(self, http: Any, session_uri: str, size: int | None) -> tuple[int, Any]:
        """Ask a stored session how far it got: ``(next_offset, None)``, ``(-1, None)`` when the
        session is gone, or ``(size, video_resource)`` when the upload already completed
        (``size`` None: the total is sent as ``*``)."""
        total = "*" if size is None else str(size)
        headers = {"Content-Range": f"bytes */{total}", "content-length": "0"}
        resp, content = http.request(session_uri, "PUT", headers=headers)
        if resp.status in (200, 201):
            return size or 0, json.loads(content.decode("utf-8"))
        if resp.status == 308:
            return _parse_range_end(resp), None
        if resp.status in _SESSION_GONE:
            return -1, None
        raise HttpError(resp, content)  # the session URI is a secret: keep it out of the error

    def _insert(
        self,
        request: UploadRequest,
        size: int,
        body: dict[str, Any],
        progress: ProgressCallback | None,
    ) -> tuple[str, int, int]:
        """Run (or resume) the resumable insert: ``(video_id, bytes_delivered, inserts_made)``."""
        service, http = self._client()
        guard = _InitiationGuard(http)
        media: Any = None
        try:
            try:
                media = _ChunkBytesUpload(
                    request.video_path,
                    mimetype=_video_mimetype(request.video_path),
                    chunksize=self._chunk_size,
                    resumable=True,
                )
                insert = service.videos().insert(part=VIDEO_PARTS, body=body, media_body=media)
            except Exception as exc:
                raise self._classify(exc) from exc
            session_uri = request.session_uri
            probe_needed = session_uri is not None
            start_offset = 0
            confirmed = -1  # highest offset the server confirmed in the current session
            inserts = 0
            failures = 0
            stalls = 0
            while True:
                opened: str | None = None
                outcome: tuple[int, Any] | None = None
                status: Any = None
                response: Any = None
                try:
                    if probe_needed:
                        assert session_uri is not None
                        outcome = self._probe(http, session_uri, size)
                    else:
                        status, response = insert.next_chunk(http=guard, num_retries=0)
                except _SessionOpened as signal:
                    opened = signal.session_uri
                except Exception as exc:
                    if (
                        isinstance(exc, HttpError)
                        and exc.resp.status in _SESSION_GONE
                        and insert.resumable_uri is not None
                    ):
                        logger.warning("resumable session expired mid-upload; starting over")
                        insert.resumable_uri = None
                        insert.resumable_progress = 0
                        # The client keeps this private flag; clear it so the next call opens
                        # a new session instead of querying the dead one.
                        insert._in_error_state = False
                        session_uri = None
                        if failures >= self._max_retries:
                            raise self._classify(exc) from exc
                        failures += 1
                        continue
                    self._retry_or_raise(exc, failures, "videos.insert")
                    failures += 1
                    continue
                # Callbacks run here, outside the client's frames, and their errors propagate.
                if opened is not None:
                    inserts += 1
                    insert.resumable_uri = opened
                    insert.resumable_progress = 0
                    session_uri = opened
                    start_offset = 0
                    confirmed = 0
                    logger.info("resumable session opened for %s", request.video_path)
                    if progress is not None:
                        progress(0, size, opened)
                    continue
                if outcome is not None:
                    probe_needed = False
                    offset, resource = outcome
                    if resource is not None:
                        logger.info("stored session had already completed; nothing re-sent")
                        if progress is not None:
                            progress(size, size, session_uri)
                        return self._video_id(resource), 0, inserts
                    if offset < 0:
                        logger.warning("stored resumable session expired; starting a new insert")
                        session_uri = None
                        continue
                    insert.resumable_uri = session_uri
                    insert.resumable_progress = offset
                    start_offset = confirmed = offset
                    logger.info("resuming stored session at byte %d of %d", offset, size)
                    if progress is not None:
                        progress(offset, size, session_uri)
                    continue
                if response is not None:
                    if progress is not None:
                        progress(size, size, session_uri)
                    return self._video_id(response), size - start_offset, inserts
                offset = int(status.resumable_progress)
                if offset > confirmed:
                    confirmed, failures, stalls = offset, 0, 0
                else:
                    # 308 without progress: a misbehaving server must not keep us looping.
                    stalls += 1
                    if stalls > self._max_retries:
                        raise TransientUploadError(
                            f"the upload server stopped accepting bytes at offset {offset}",
                            reason="noProgress",
                            status=308,
                        )
                if progress is not None:
                    progress(offset, size, session_uri)
        finally:
            if media is not None:
                media.stream().close()

    @staticmethod
    def _video_id(resource: Any) -> str:
        video_id = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(video_id, str) or not video_id:
            raise PermanentUploadError(
                "YouTube completed the upload but returned no video id", reason="noVideoId"
            )
        return video_id

    # -- follow-up steps -----------------------------------------------------------------------

    def _set_thumbnail(self, video_id: str, path: str) -> None:
        service, _ = self._client()
        suffix = path[path.rfind(".") :].lower()
        media = MediaFileUpload(path, mimetype=_THUMBNAIL_MIMETYPES.get(suffix, "image/jpeg"))
        try:
            service.thumbnails().set(videoId=video_id, media_body=media).execute(num_retries=0)
        finally:
            media.stream().close()

    def _add_to_playlist_once(
        self, video_id: str, playlist_id: str, *, ambiguous: bool
    ) -> list[str]:
        """``playlistItems.insert``, never twice: once an insert may have taken effect without
        us learning it (its answer was lost, or an earlier attempt sent it), ask
        ``playlistItems.list`` first. Returns the operations sent."""
        operations: list[str] = []
        failures = 0
        while True:
            try:
                if ambiguous:
                    operations.append(PLAYLIST_LIST)
                    if self._in_playlist(video_id, playlist_id):
                        logger.info(
                            "video %s is in playlist %s already (an earlier insert took effect); "
                            "not inserted again",
                            video_id,
                            playlist_id,
                        )
                        return operations
                operations.append(UploadStep.PLAYLIST.value)
                self._add_to_playlist(video_id, playlist_id)
                return operations
            except Exception as exc:
                self._retry_or_raise(exc, failures, "playlistItems.insert")
                failures += 1
                # A failure other than an answer refusing it may have been a lost answer.
                ambiguous = True

    def _in_playlist(self, video_id: str, playlist_id: str) -> bool:
        service, _ = self._client()
        answer = (
            service.playlistItems()
            .list(part=PLAYLIST_CHECK_PARTS, playlistId=playlist_id, videoId=video_id)
            .execute(num_retries=0)
        )
        items = answer.get("items") if isinstance(answer, dict) else None
        return bool(items)

    def _add_to_playlist(self, video_id: str, playlist_id: str) -> None:
        service, _ = self._client()
        body = {
            "snippet": {
                "playlistId": playlist_id,
                "resourceId": {"kind": "youtube#video", "videoId": video_id},
            }
        }
        service.playlistItems().insert(part=PLAYLIST_ITEM_PARTS, body=body).execute(num_retries=0)
