"""The real :class:`~langflix_scheduler.youtube.uploader.Uploader`, on google-api-python-client.

How it uses the client, and why (see ``YOUTUBE_FACTS.md`` for the reproduced pitfalls):

* The service is built from the discovery document bundled with google-api-python-client
  (``build_from_document``; never a network fetch). With ``api_endpoint`` its ``rootUrl`` is
  pointed there and ``mtlsRootUrl`` dropped: ``client_options={"api_endpoint": ...}`` would not
  redirect media uploads.
* Transport: ``google_auth_httplib2.AuthorizedHttp(credentials, http=MeteredHttp(build_http()))``
  (``build_http`` stops httplib2 treating 308 as a redirect; ``AuthorizedHttp`` refreshes the
  token before a request when it nears expiry and once on a 401). httplib2 is not thread-safe,
  so each thread gets its own service object. Nothing global is changed: httplib2's own re-sends
  are refused per connection (:mod:`.metering`).
* The resumable insert (:mod:`.resumable`): the client sends the initiation; the media is sent
  by us, by default the whole file in one streamed request (:mod:`.streaming`: one reused 1 MiB
  buffer, a body that refuses to be sent twice), or ``chunk_size`` bytes per request. Any
  failure is followed by a status query (``Content-Range: bytes */size``) and the upload goes on
  from the offset the server confirms. Our own bounded retry loop (exponential backoff, full
  jitter) handles every failure.
* The session URI is caught from the initiation response and handed to ``progress`` before any
  media byte is sent. A stored session is probed first: a 200/201 means the upload already
  completed (its video id is taken, nothing re-sent, no second insert); a 308 says where to
  continue; a 404 means the session expired and a new insert starts.
* Every quota-bearing request actually sent (a ``videos.insert`` initiation, re-sent ones
  included; ``thumbnails.set``; ``playlistItems.insert``/``.list``; ``videos.list``,
  ``videos.update``, ``videos.delete``, ``channels.list``) is reported
  through ``on_call`` *before* it is sent (:class:`~.metering.MeteredHttp`), so a quota ledger
  counts what YouTube counts; a report that raises stops that request. A ``quotaExceeded``
  answer is reported as refused (not charged).
* ``playlistItems.insert`` is not blindly re-sent: after a failure whose outcome is unknown (or
  when an earlier attempt sent it, ``UploadRequest.attempted_steps``), ``playlistItems.list``
  (``part=id``, 1 unit) asks whether the video is in the playlist already.
* After the upload (:mod:`.video_calls`): reads are retried like the upload's requests;
  writes (``videos.update``, ``videos.delete``) are sent once, and ``videos.update`` always
  carries the whole part it names.
* Every failure leaves as an :class:`~langflix_scheduler.errors.UploadError` subclass
  (:func:`~.classify.classify_error`), with the original exception as ``__cause__``.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import google_auth_httplib2
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document
from googleapiclient.http import MediaFileUpload, build_http

from ..errors import ConfigurationError, TransientUploadError, UploadError
from ..quota import DEFAULT_QUOTA_TIMEZONE
from .classify import classify_error
from .metering import PLAYLIST_LIST, CallbackFailed, MeteredHttp, metered_operation
from .resumable import (
    InsertOutcome,
    ResumableInsert,
    RetryPolicy,
    open_session,
    query_status,
    video_id_of,
)
from .streaming import DEFAULT_BUFFER_SIZE
from .uploader import (
    CHUNK_GRANULARITY,
    CallCallback,
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
from .video_calls import VideoCalls

__all__ = ["DEFAULT_MAX_RETRIES", "YouTubeUploader", "classify_error", "discovery_document"]

logger = logging.getLogger(__name__)

# Kept importable under their former names.
_MeteredHttp = MeteredHttp
_CallbackFailed = CallbackFailed
_metered_operation = metered_operation

#: Retries after the first try, per streak of consecutive failures (confirmed progress resets it).
DEFAULT_MAX_RETRIES = 5
#: First backoff delay in seconds; doubles per consecutive failure, with full jitter.
RETRY_INITIAL_DELAY_S = 1.0
#: Backoff delays are capped at this many seconds.
RETRY_MAX_DELAY_S = 64.0

VIDEO_PARTS = "snippet,status"
PLAYLIST_ITEM_PARTS = "snippet"
#: ``playlistItems.list`` asks only for ids: is the video in the playlist already?
PLAYLIST_CHECK_PARTS = "id"
_DISCOVERY_SERVICE = ("youtube", "v3")
_VIDEO_FALLBACK_MIMETYPE = "application/octet-stream"
_THUMBNAIL_MIMETYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}

_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _video_mimetype(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed if guessed and guessed.startswith("video/") else _VIDEO_FALLBACK_MIMETYPE


def _check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is None:
        return
    if (
        not isinstance(chunk_size, int)
        or isinstance(chunk_size, bool)
        or chunk_size <= 0
        or chunk_size % CHUNK_GRANULARITY != 0
    ):
        raise ConfigurationError(
            "chunk_size",
            f"{chunk_size!r} is not None or a positive multiple of 256 KiB (262144)",
        )


def discovery_document(api_endpoint: str | None = None) -> str:
    """The bundled youtube v3 discovery document (no network), pointed at ``api_endpoint``
    (``rootUrl``/``baseUrl`` replaced, ``mtlsRootUrl`` dropped) when one is given.

    Raises:
        ConfigurationError: the document is missing, or ``api_endpoint`` is not an http(s) URL.
    """
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


class YouTubeUploader(VideoCalls):
    """Uploads videos with the YouTube Data API v3 (resumable, crash-safe, retried), and
    follows them after the upload (:class:`~.videos.VideoClient`, from :class:`~.video_calls.
    VideoCalls`: ``list_videos``, ``set_publish_at``, ``delete_video``, ``update_metadata``,
    ``list_uploads``).

    Thread-safe: each thread gets its own service and HTTP connection. Share one instance.

    Args:
        credentials: ``google.oauth2.credentials.Credentials`` (see
            :func:`langflix_scheduler.youtube.auth.load_credentials`).
        api_endpoint: base URL of the API (default: Google's); e.g. ``FakeYouTube().api_endpoint``.
        chunk_size: ``None`` (the default): the media goes in as few requests as possible, the
            whole file (or, after a failure, the rest of it) streamed in one request. A positive
            multiple of 256 KiB: at most that many bytes per request, for proxies that limit
            request bodies; each request then waits one round trip for the server's answer
            before the next is sent, which costs goodput on a link with a long round trip
            (about half of a 1 Gbit/s link at 100 ms with 8 MiB; see docs/performance.md).
            Memory use is the same either way (one reused read buffer).
        max_retries: transient failures retried in a row before giving up (progress the server
            confirmed resets the count).
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
        chunk_size: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        quota_timezone: str = DEFAULT_QUOTA_TIMEZONE,
        retry_initial_delay: float = RETRY_INITIAL_DELAY_S,
        retry_max_delay: float = RETRY_MAX_DELAY_S,
    ) -> None:
        _check_chunk_size(chunk_size)
        if max_retries < 0:
            raise ConfigurationError("max_retries", "must be >= 0")
        if retry_initial_delay < 0 or retry_max_delay < 0:
            raise ConfigurationError("retry_initial_delay", "backoff delays must be >= 0")
        self._credentials = credentials
        self._chunk_size = chunk_size
        self._buffer_size = DEFAULT_BUFFER_SIZE
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
        return discovery_document(api_endpoint)

    def _client(self) -> tuple[Any, Any]:
        """This thread's ``(service, http)``, built on first use (no network)."""
        service = getattr(self._local, "service", None)
        if service is None:
            meter = MeteredHttp(build_http())
            authed = google_auth_httplib2.AuthorizedHttp(self._credentials, http=meter)
            service = build_from_document(self._discovery, http=authed)
            with self._lock:
                self._transports.add(authed)
            self._local.service = service
            self._local.http = authed
            self._local.meter = meter
        return service, self._local.http

    def _meter(self) -> MeteredHttp:
        self._client()
        meter: MeteredHttp = self._local.meter
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
        if isinstance(exc, CallbackFailed):
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
        except CallbackFailed as exc:
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
            "upload session status", lambda: query_status(http, session_uri, size)
        )
        if resource is not None:
            return SessionProbe(state=SessionState.COMPLETED, video_id=video_id_of(resource))
        if offset < 0:
            return SessionProbe(state=SessionState.GONE)
        return SessionProbe(state=SessionState.INCOMPLETE, offset=offset)

    # -- videos.insert -------------------------------------------------------------------------

    @property
    def chunk_size(self) -> int | None:
        """Bytes per media request, or ``None``: the whole file in one streamed request."""
        return self._chunk_size

    def _insert(
        self,
        request: UploadRequest,
        size: int,
        body: dict[str, Any],
        progress: ProgressCallback | None,
    ) -> tuple[str, int, int]:
        """Run (or resume) the resumable insert: ``(video_id, bytes_delivered, inserts_made)``."""
        service, http = self._client()
        media: Any = None
        try:
            try:
                # The client sends only the initiation (size and type from this media object);
                # the media itself is streamed by ResumableInsert.
                media = MediaFileUpload(
                    request.video_path,
                    mimetype=_video_mimetype(request.video_path),
                    chunksize=-1,
                    resumable=True,
                )
                insert = service.videos().insert(part=VIDEO_PARTS, body=body, media_body=media)
            except Exception as exc:
                raise self._classify(exc) from exc
            outcome: InsertOutcome = ResumableInsert(
                http=http,
                open_session=lambda: open_session(insert, http),
                video_path=request.video_path,
                size=size,
                session_uri=request.session_uri,
                chunk_size=self._chunk_size,
                policy=RetryPolicy(
                    max_retries=self._max_retries,
                    retry_or_raise=self._retry_or_raise,
                    classify=self._classify,
                ),
                progress=progress,
                buffer_size=self._buffer_size,
            ).run()
            return outcome.video_id, outcome.bytes_sent, outcome.inserts
        finally:
            if media is not None:
                media.stream().close()

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
