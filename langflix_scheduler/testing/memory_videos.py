"""An in-memory :class:`~langflix_scheduler.youtube.videos.VideoClient` for fast tests.

No network and no google client: videos are plain records the test sets up (``add``) and
changes (``set``, ``remove``); every call is reported to ``on_call`` like the real client (so
the quota ledger sees it) and recorded in :attr:`MemoryVideoClient.calls`. Faults: queue an
exception with :meth:`MemoryVideoClient.fail_next` (raised *after* ``on_call`` reported the
call, as a request that reached YouTube and failed), or a crash that takes effect remotely and
then raises (``fail_next(..., after_effect=True)``: the answer was lost).

For the whole protocol over real HTTP with the real google client use
:class:`~langflix_scheduler.testing.FakeYouTube`.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..domain import VideoMetadata
from ..errors import PermanentUploadError
from ..youtube.uploader import ApiCallReport, CallCallback, CallPhase
from ..youtube.videos import (
    MAX_IDS_PER_LIST,
    RemoteVideo,
    UploadedItem,
    UploadsPage,
    mark_snippet_applied,
)

__all__ = ["MemoryVideoClient", "RecordedCall"]


@dataclass(frozen=True)
class RecordedCall:
    """One call the client received: the operation and its main argument."""

    operation: str
    argument: object


@dataclass
class _Fault:
    operation: str
    error: BaseException
    after_effect: bool


@dataclass
class MemoryVideoClient:
    """Videos held in memory, the calls made, and queued faults. Thread-safe."""

    videos: dict[str, RemoteVideo] = field(default_factory=dict)
    uploads: list[UploadedItem] = field(default_factory=list)
    metadata: dict[str, VideoMetadata] = field(default_factory=dict)
    calls: list[RecordedCall] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # -- setting up ----------------------------------------------------------------------------

    def add(
        self,
        video_id: str,
        *,
        privacy_status: str = "private",
        publish_at: datetime | None = None,
        upload_status: str = "processed",
        processing_status: str | None = "succeeded",
        title: str = "",
        uploaded_at: datetime | None = None,
        in_uploads: bool = True,
        **extra: object,
    ) -> RemoteVideo:
        """Put a video on the fake channel (and, by default, in its uploads playlist)."""
        video = RemoteVideo(
            video_id=video_id,
            upload_status=upload_status,
            privacy_status=privacy_status,
            publish_at=publish_at,
            processing_status=processing_status,
            title=title,
            status=_status_part(privacy_status, publish_at, upload_status),
            **extra,  # type: ignore[arg-type]
        )
        with self._lock:
            self.videos[video_id] = video
            if in_uploads:
                self.uploads.insert(
                    0,
                    UploadedItem(
                        video_id=video_id,
                        title=title,
                        published_at=uploaded_at,
                        privacy_status=privacy_status,
                    ),
                )
        return video

    def set(self, video_id: str, **changes: object) -> RemoteVideo:
        """Change fields of a video (``privacy_status="public"``, ``upload_status=...``)."""
        with self._lock:
            video = dataclasses.replace(self.videos[video_id], **changes)  # type: ignore[arg-type]
            video = dataclasses.replace(
                video,
                status=_status_part(video.privacy_status, video.publish_at, video.upload_status),
            )
            self.videos[video_id] = video
            return video

    def remove(self, video_id: str) -> None:
        """Delete a video behind the library's back (someone deleted it in Studio)."""
        with self._lock:
            self.videos.pop(video_id, None)

    def fail_next(
        self, operation: str, error: BaseException, *, after_effect: bool = False
    ) -> None:
        """Make the next call of ``operation`` raise ``error`` (after it took effect remotely
        when ``after_effect``: the answer was lost)."""
        with self._lock:
            self._faults.append(_Fault(operation, error, after_effect))

    def operations(self) -> list[str]:
        """The operations called so far, in order."""
        with self._lock:
            return [c.operation for c in self.calls]

    # -- the VideoClient protocol --------------------------------------------------------------

    def list_videos(
        self, video_ids: Sequence[str], *, on_call: CallCallback | None = None
    ) -> Mapping[str, RemoteVideo]:
        if not 0 < len(video_ids) <= MAX_IDS_PER_LIST:
            raise ValueError(f"videos.list takes 1 to {MAX_IDS_PER_LIST} ids")
        fault = self._begin("videos.list", tuple(video_ids), on_call)
        with self._lock:
            found = {i: self.videos[i] for i in video_ids if i in self.videos}
        self._end(fault)
        return found

    def set_publish_at(
        self,
        current: RemoteVideo,
        publish_at: datetime | None,
        *,
        on_call: CallCallback | None = None,
    ) -> RemoteVideo:
        fault = self._begin("videos.update", (current.video_id, publish_at), on_call)
        if fault is not None and not fault.after_effect:
            raise fault.error
        with self._lock:
            if current.video_id not in self.videos:
                raise PermanentUploadError(
                    f"video {current.video_id} not found", reason="videoNotFound", status=404
                )
        updated = self.set(current.video_id, privacy_status="private", publish_at=publish_at)
        self._end(fault)
        return updated

    def delete_video(self, video_id: str, *, on_call: CallCallback | None = None) -> None:
        fault = self._begin("videos.delete", video_id, on_call)
        if fault is not None and not fault.after_effect:
            raise fault.error
        self.remove(video_id)
        self._end(fault)

    def update_metadata(
        self, video_id: str, metadata: VideoMetadata, *, on_call: CallCallback | None = None
    ) -> None:
        fault = self._begin("videos.update", (video_id, metadata.title), on_call)
        if fault is not None and not fault.after_effect:
            raise fault.error
        with self._lock:  # the new text, the thumbnail YouTube held
            previous = self.metadata.get(video_id)
            kept = previous.thumbnail_path if previous is not None else None
            self.metadata[video_id] = dataclasses.replace(metadata, thumbnail_path=kept)
        self._end(fault)
        if metadata.thumbnail_path:
            try:
                self._set_thumbnail(video_id, metadata, on_call)
            except BaseException as exc:
                mark_snippet_applied(exc)
                raise

    def _set_thumbnail(
        self, video_id: str, metadata: VideoMetadata, on_call: CallCallback | None
    ) -> None:
        fault = self._begin("thumbnails.set", video_id, on_call)
        if fault is not None and not fault.after_effect:
            raise fault.error
        with self._lock:
            self.metadata[video_id] = metadata
        self._end(fault)

    def list_uploads(
        self, page_token: str | None = None, *, on_call: CallCallback | None = None
    ) -> UploadsPage:
        if page_token is None:
            self._end(self._begin("channels.list", "mine", on_call))
        fault = self._begin("playlistItems.list", page_token, on_call)
        start = int(page_token or 0)
        with self._lock:
            page = self.uploads[start : start + MAX_IDS_PER_LIST]
            more = start + MAX_IDS_PER_LIST < len(self.uploads)
        self._end(fault)
        return UploadsPage(
            items=page, next_page_token=str(start + MAX_IDS_PER_LIST) if more else None
        )

    # -- internals -----------------------------------------------------------------------------

    def _begin(
        self, operation: str, argument: object, on_call: CallCallback | None
    ) -> _Fault | None:
        """Report the call (a report that raises stops it), record it, take its fault."""
        if on_call is not None:
            on_call(
                ApiCallReport(operation=operation, phase=CallPhase.SENDING, call_id=next(self._ids))
            )
        with self._lock:
            self.calls.append(RecordedCall(operation, argument))
            for n, fault in enumerate(self._faults):
                if fault.operation == operation:
                    return self._faults.pop(n)
        return None

    @staticmethod
    def _end(fault: _Fault | None) -> None:
        if fault is not None:
            raise fault.error


def _status_part(
    privacy_status: str, publish_at: datetime | None, upload_status: str
) -> dict[str, object]:
    status: dict[str, object] = {
        "uploadStatus": upload_status,
        "privacyStatus": privacy_status,
        "license": "youtube",
        "embeddable": True,
        "publicStatsViewable": True,
        "selfDeclaredMadeForKids": False,
    }
    if publish_at is not None:
        status["publishAt"] = publish_at.isoformat().replace("+00:00", "Z")
    return status
