"""The after-upload seam: what YouTube holds for a video, and the calls that read or change it.

:class:`RemoteVideo` is one video as ``videos.list(part=status,processingDetails)`` reports it;
:class:`UploadedItem` one entry of a channel's uploads playlist. :class:`VideoClient` is the
protocol the processor (verification, publish confirmation, changes of plan) and ``reconcile``
talk to; ``YouTubeUploader`` implements it with google-api-python-client, and tests give an
in-memory one or ``FakeYouTube``.

Quota (shared bucket; every call is reported through ``on_call`` before it is sent, like
uploads, so the ledger counts it): ``videos.list`` 1 unit per call of up to 50 ids;
``videos.update`` 50; ``videos.delete`` 50; ``channels.list`` 1; ``playlistItems.list`` 1 per
page of up to 50. Errors are the library's (:mod:`langflix_scheduler.errors`), never google's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..domain import VideoMetadata
from .uploader import CallCallback

__all__ = [
    "MAX_IDS_PER_LIST",
    "RemoteVideo",
    "UploadedItem",
    "UploadsPage",
    "VideoClient",
    "is_video_client",
    "mark_snippet_applied",
    "snippet_applied",
]

#: ``videos.list`` and ``playlistItems.list`` take / return at most this many per call.
MAX_IDS_PER_LIST = 50


@dataclass(frozen=True, kw_only=True)
class RemoteVideo:
    """One video as YouTube reports it (``videos.list(part=status,processingDetails,snippet)``).

    Attributes:
        video_id: the video id.
        upload_status: ``status.uploadStatus``: ``uploaded``, ``processed``, ``failed``,
            ``rejected`` or ``deleted``.
        failure_reason: ``status.failureReason`` (upload failed) or ``status.rejectionReason``
            (rejected), when given.
        processing_status: ``processingDetails.processingStatus``: ``processing``,
            ``succeeded``, ``failed`` or ``terminated`` (None when YouTube does not say).
        processing_failure_reason: ``processingDetails.processingFailureReason``.
        privacy_status: ``status.privacyStatus``: ``private``, ``unlisted`` or ``public``.
        publish_at: ``status.publishAt`` (aware UTC), None when not set.
        title: ``snippet.title`` when the part was asked for.
        status: the whole ``status`` part as YouTube sent it: what ``videos.update`` must send
            back (with only the changed field changed), since it resets every field left out.
    """

    video_id: str
    upload_status: str
    privacy_status: str
    publish_at: datetime | None = None
    failure_reason: str | None = None
    processing_status: str | None = None
    processing_failure_reason: str | None = None
    title: str | None = None
    status: Mapping[str, object] | None = None


@dataclass(frozen=True, kw_only=True)
class UploadedItem:
    """One entry of a channel's uploads playlist (``playlistItems.list``)."""

    video_id: str
    title: str
    #: When the video was uploaded: the playlist item's ``snippet.publishedAt`` (when it was
    #: added to the uploads playlist). ``contentDetails.videoPublishedAt`` is only the fallback:
    #: once ``publishAt`` made the video public it is that moment, not the upload time.
    published_at: datetime | None
    privacy_status: str | None = None


@dataclass(frozen=True, kw_only=True)
class UploadsPage:
    """One page of the uploads playlist and the token of the next (None on the last)."""

    items: Sequence[UploadedItem]
    next_page_token: str | None


@runtime_checkable
class VideoClient(Protocol):
    """The calls the library makes about videos already uploaded, on one channel's token.

    Every method reports each quota-bearing request to ``on_call`` before sending it (a
    report that raises stops the request). Errors: ``TransientUploadError`` (retry later),
    ``QuotaExhaustedError`` (defer to the next quota day), ``AuthorizationError`` (run
    ``auth``), ``PermanentUploadError`` (YouTube refused: the reason is in ``reason``).
    """

    def list_videos(
        self, video_ids: Sequence[str], *, on_call: CallCallback | None = None
    ) -> Mapping[str, RemoteVideo]:
        """``videos.list(part=status,processingDetails,snippet, id=...)`` for up to
        :data:`MAX_IDS_PER_LIST` ids (one call, 1 unit). An id YouTube does not return is
        absent from the answer: the video was deleted (or is not this channel's)."""
        ...

    def set_publish_at(
        self,
        current: RemoteVideo,
        publish_at: datetime | None,
        *,
        on_call: CallCallback | None = None,
    ) -> RemoteVideo:
        """``videos.update(part=status)`` (50 units): send ``current.status`` back whole with
        ``privacyStatus=private`` and ``publishAt`` set to ``publish_at`` (None: removed, the
        video stays private: "unpublish"). Returns what YouTube answered."""
        ...

    def delete_video(self, video_id: str, *, on_call: CallCallback | None = None) -> None:
        """``videos.delete`` (50 units). A video already gone is not an error."""
        ...

    def update_metadata(
        self, video_id: str, metadata: VideoMetadata, *, on_call: CallCallback | None = None
    ) -> None:
        """``videos.update(part=snippet)`` (50 units) with title, description, tags, category
        and language; then ``thumbnails.set`` (50 units) when ``metadata.thumbnail_path`` is
        set. An exception raised after ``videos.update`` succeeded (the thumbnail failed, or
        its ``on_call`` report refused it) is marked with :func:`mark_snippet_applied`."""
        ...

    def list_uploads(
        self, page_token: str | None = None, *, on_call: CallCallback | None = None
    ) -> UploadsPage:
        """One page (up to 50) of the channel's uploads playlist: ``channels.list(mine=true,
        part=contentDetails)`` (1 unit) on the first page to find the playlist, then
        ``playlistItems.list`` (1 unit per page)."""
        ...


def is_video_client(obj: object) -> bool:
    """Does ``obj`` implement :class:`VideoClient` (every method present and callable)?"""
    return all(
        callable(getattr(obj, name, None))
        for name in (
            "list_videos",
            "set_publish_at",
            "delete_video",
            "update_metadata",
            "list_uploads",
        )
    )


def mark_snippet_applied(exc: BaseException) -> None:
    """Mark ``exc`` as raised by ``update_metadata`` after YouTube took the new snippet (only
    ``thumbnails.set`` failed)."""
    exc.snippet_applied = True  # type: ignore[attr-defined]


def snippet_applied(exc: BaseException) -> bool:
    """Was ``exc`` raised by ``update_metadata`` after YouTube took the new snippet?"""
    return getattr(exc, "snippet_applied", False) is True
