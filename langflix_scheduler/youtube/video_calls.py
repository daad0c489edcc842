"""The after-upload calls of :class:`~.google.YouTubeUploader`: the
:class:`~.videos.VideoClient` protocol on google-api-python-client.

* Reads (``videos.list``, ``channels.list``, ``playlistItems.list``) are safe to repeat:
  transient failures are retried with the uploader's backoff.
* Writes (``videos.update``, ``videos.delete``, ``thumbnails.set``) are sent once: a failure
  whose outcome is unknown (a lost answer, a 5xx) raises :class:`TransientUploadError` and the
  caller's change recovery asks YouTube what happened. Neither httplib2 nor the client re-sends
  them (:class:`~.metering.MeteredHttp` refuses a second send of a quota-bearing request).
* ``videos.update`` replaces every mutable property of the part it names: ``set_publish_at``
  sends the whole ``status`` part YouTube reported (only ``privacyStatus`` and ``publishAt``
  changed), ``update_metadata`` the whole ``snippet``.
* Every quota-bearing request is reported to ``on_call`` before it is sent (this thread's
  :class:`~.metering.MeteredHttp`), a quota refusal after it (phase ``REFUSED``). A report that
  raises stops the request and propagates unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..domain import VideoMetadata
from ..errors import InvalidScheduleError, PermanentUploadError, UploadError
from .metering import CallbackFailed, MeteredHttp
from .uploader import PUBLISH_AT_MIN_LEAD, CallCallback, check_thumbnail_file, format_rfc3339
from .videos import (
    MAX_IDS_PER_LIST,
    RemoteVideo,
    UploadedItem,
    UploadsPage,
    mark_snippet_applied,
)

__all__ = [
    "LIST_PARTS",
    "UPLOADS_PARTS",
    "VideoCalls",
    "remote_video",
    "uploaded_item",
]

logger = logging.getLogger(__name__)

#: ``videos.list`` parts: what the processor needs to follow a video.
LIST_PARTS = "status,processingDetails,snippet"
#: ``playlistItems.list`` parts of the uploads playlist.
UPLOADS_PARTS = "snippet,contentDetails,status"

_T = TypeVar("_T")


def _parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as aware UTC (None when absent or unreadable)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def remote_video(item: Mapping[str, Any]) -> RemoteVideo:
    """A ``youtube#video`` resource as a :class:`RemoteVideo` (``status`` kept whole)."""
    status = dict(item.get("status") or {})
    processing = item.get("processingDetails") or {}
    snippet = item.get("snippet") or {}
    return RemoteVideo(
        video_id=str(item["id"]),
        upload_status=str(status.get("uploadStatus", "")),
        privacy_status=str(status.get("privacyStatus", "")),
        publish_at=_parse_time(status.get("publishAt")),
        failure_reason=_text(status.get("failureReason")) or _text(status.get("rejectionReason")),
        processing_status=_text(processing.get("processingStatus")),
        processing_failure_reason=_text(processing.get("processingFailureReason")),
        title=_text(snippet.get("title")),
        status=status,
    )


def uploaded_item(item: Mapping[str, Any]) -> UploadedItem | None:
    """One ``youtube#playlistItem`` of the uploads playlist (None without a video id)."""
    snippet = item.get("snippet") or {}
    content = item.get("contentDetails") or {}
    video_id = content.get("videoId") or (snippet.get("resourceId") or {}).get("videoId")
    if not video_id:
        return None
    # snippet.publishedAt is when the video was added to the uploads playlist, i.e. uploaded;
    # contentDetails.videoPublishedAt becomes the moment it went public (publishAt), which is
    # no upload time: it is only the fallback.
    published = _parse_time(snippet.get("publishedAt")) or _parse_time(
        content.get("videoPublishedAt")
    )
    return UploadedItem(
        video_id=str(video_id),
        title=str(snippet.get("title", "")),
        published_at=published,
        privacy_status=_text((item.get("status") or {}).get("privacyStatus")),
    )


def _snippet(metadata: VideoMetadata) -> dict[str, Any]:
    """The whole ``snippet`` part for ``videos.update``: every mutable property, since one
    left out is reset (an empty tag list clears the tags)."""
    snippet: dict[str, Any] = {
        "title": metadata.title,
        "description": metadata.description,
        "tags": list(metadata.tags),
        "categoryId": metadata.category_id,
    }
    if metadata.default_language:
        snippet["defaultLanguage"] = metadata.default_language
        snippet["defaultAudioLanguage"] = metadata.default_language
    return snippet


class VideoCalls:
    """Mixin of :class:`~.google.YouTubeUploader` implementing :class:`~.videos.VideoClient`.

    It relies on the uploader's per-thread client (``_client``, ``_meter``), its clock
    (``_now``), classification (``_classify``) and retry loop (``_call_with_retries``).
    """

    #: The uploads playlist id, found once per instance (``channels.list``).
    _uploads_playlist: str | None = None
    _lock: threading.Lock  # the uploader's

    # Provided by YouTubeUploader.
    def _client(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def _meter(self) -> MeteredHttp:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def _classify(self, exc: Exception) -> UploadError:
        raise NotImplementedError

    def _call_with_retries(self, what: str, call: Callable[[], _T]) -> _T:
        raise NotImplementedError

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reporting(self, on_call: CallCallback | None) -> Iterator[None]:
        """Report this thread's quota-bearing requests to ``on_call`` for the block; the
        caller's own exception leaves unchanged."""
        meter = self._meter()
        meter.on_call = on_call
        try:
            yield
        except CallbackFailed as exc:
            raise exc.original from None
        finally:
            meter.on_call = None

    def _read(self, what: str, call: Callable[[], _T], on_call: CallCallback | None) -> _T:
        """A read: retried on transient failures."""
        with self._reporting(on_call):
            return self._call_with_retries(what, call)

    def _write(self, call: Callable[[], _T], on_call: CallCallback | None) -> _T:
        """A write: sent once; any failure is classified and raised (a lost answer is
        :class:`TransientUploadError`: the caller finds out what happened)."""
        with self._reporting(on_call):
            try:
                return call()
            except CallbackFailed:
                raise
            except Exception as exc:
                raise self._classify(exc) from exc

    # -- VideoClient ---------------------------------------------------------------------------

    def list_videos(
        self, video_ids: Sequence[str], *, on_call: CallCallback | None = None
    ) -> Mapping[str, RemoteVideo]:
        """``videos.list(part=status,processingDetails,snippet)`` for up to 50 ids (1 unit).
        An id YouTube does not return is absent (deleted, or not this channel's)."""
        ids = list(dict.fromkeys(video_ids))
        if not 0 < len(ids) <= MAX_IDS_PER_LIST:
            raise ValueError(f"videos.list takes 1 to {MAX_IDS_PER_LIST} ids, got {len(ids)}")

        def call() -> Any:
            service, _ = self._client()
            return (
                service.videos()
                .list(part=LIST_PARTS, id=",".join(ids), maxResults=MAX_IDS_PER_LIST)
                .execute(num_retries=0)
            )

        answer = self._read("videos.list", call, on_call)
        found: dict[str, RemoteVideo] = {}
        for item in answer.get("items") or []:
            if item.get("id") in ids:
                found[str(item["id"])] = remote_video(item)
        return found

    def set_publish_at(
        self,
        current: RemoteVideo,
        publish_at: datetime | None,
        *,
        on_call: CallCallback | None = None,
    ) -> RemoteVideo:
        """``videos.update(part=status)`` (50 units) sending ``current.status`` whole with
        ``privacyStatus=private`` and ``publishAt`` (removed when None). Sent once.

        Raises:
            InvalidScheduleError: ``publish_at`` naive, or less than ``PUBLISH_AT_MIN_LEAD``
                ahead (YouTube would publish at once); nothing sent.
            ValueError: ``current.status`` is missing (list the video first).
            UploadError: classified; a lost answer is ``TransientUploadError``.
        """
        if current.status is None:
            raise ValueError("current.status is needed: videos.update resets what is left out")
        status: dict[str, Any] = {**current.status, "privacyStatus": "private"}
        status.pop("publishAt", None)
        if publish_at is not None:
            self._check_publish_at(publish_at)
            status["publishAt"] = format_rfc3339(publish_at)
        body = {"id": current.video_id, "status": status}

        def call() -> Any:
            service, _ = self._client()
            return service.videos().update(part="status", body=body).execute(num_retries=0)

        answer = self._write(call, on_call)
        sent_back = dict((answer or {}).get("status") or status)
        return remote_video(
            {
                "id": current.video_id,
                "status": {"uploadStatus": current.upload_status, **sent_back},
                "processingDetails": {
                    "processingStatus": current.processing_status,
                    "processingFailureReason": current.processing_failure_reason,
                },
                "snippet": {"title": current.title},
            }
        )

    def _check_publish_at(self, publish_at: datetime) -> None:
        if publish_at.tzinfo is None or publish_at.utcoffset() is None:
            raise InvalidScheduleError("publish_at", "must be timezone-aware")
        earliest = self._now() + PUBLISH_AT_MIN_LEAD
        if publish_at < earliest:
            raise InvalidScheduleError(
                "publish_at",
                f"{publish_at.isoformat()} is less than {PUBLISH_AT_MIN_LEAD} ahead; YouTube "
                "would publish the video at once",
            )

    def delete_video(self, video_id: str, *, on_call: CallCallback | None = None) -> None:
        """``videos.delete`` (50 units), sent once. A video already gone (404
        ``videoNotFound``) counts as deleted."""

        def call() -> Any:
            service, _ = self._client()
            return service.videos().delete(id=video_id).execute(num_retries=0)

        try:
            self._write(call, on_call)
        except PermanentUploadError as err:
            if err.status == 404 or err.reason == "videoNotFound":
                logger.info("video %s was already gone; delete counts as done", video_id)
                return
            raise

    def update_metadata(
        self, video_id: str, metadata: VideoMetadata, *, on_call: CallCallback | None = None
    ) -> None:
        """``videos.update(part=snippet)`` (50 units) with the whole snippet, then
        ``thumbnails.set`` (50 units) when ``metadata.thumbnail_path``. Each sent once; a
        failure of the thumbnail (after the snippet landed) is marked
        :func:`~.videos.mark_snippet_applied`."""
        if metadata.thumbnail_path:
            check_thumbnail_file(metadata)
        body = {"id": video_id, "snippet": _snippet(metadata)}

        def call() -> Any:
            service, _ = self._client()
            return service.videos().update(part="snippet", body=body).execute(num_retries=0)

        self._write(call, on_call)
        thumbnail = metadata.thumbnail_path
        if thumbnail:
            try:
                self._write(lambda: self._set_thumbnail(video_id, thumbnail), on_call)
            except BaseException as exc:
                mark_snippet_applied(exc)
                raise

    def _set_thumbnail(self, video_id: str, path: str) -> None:
        raise NotImplementedError

    def list_uploads(
        self, page_token: str | None = None, *, on_call: CallCallback | None = None
    ) -> UploadsPage:
        """One page (up to 50, newest first) of the channel's uploads playlist. The first
        page of an instance asks ``channels.list(part=contentDetails, mine=true)`` (1 unit)
        for the playlist id; each page is a ``playlistItems.list`` (1 unit)."""
        playlist = self._uploads_playlist_id(on_call)

        def call() -> Any:
            service, _ = self._client()
            return (
                service.playlistItems()
                .list(
                    part=UPLOADS_PARTS,
                    playlistId=playlist,
                    maxResults=MAX_IDS_PER_LIST,
                    pageToken=page_token,
                )
                .execute(num_retries=0)
            )

        answer = self._read("playlistItems.list", call, on_call)
        items = [uploaded_item(i) for i in answer.get("items") or []]
        return UploadsPage(
            items=[i for i in items if i is not None],
            next_page_token=_text(answer.get("nextPageToken")),
        )

    def _uploads_playlist_id(self, on_call: CallCallback | None) -> str:
        with self._lock:
            cached = self._uploads_playlist
        if cached is not None:
            return cached

        def call() -> Any:
            service, _ = self._client()
            return service.channels().list(part="contentDetails", mine=True).execute(num_retries=0)

        answer = self._read("channels.list", call, on_call)
        items = answer.get("items") or []
        uploads = _text(
            ((items[0].get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads")
            if items
            else None
        )
        if uploads is None:
            raise PermanentUploadError(
                "the authorised account has no channel (channels.list mine=true is empty)",
                reason="channelNotFound",
            )
        with self._lock:
            self._uploads_playlist = uploads
        return uploads
