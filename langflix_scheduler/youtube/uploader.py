"""The upload seam: what the processor asks for (:class:`UploadRequest`), what it gets back
(:class:`UploadResult`), the :class:`Uploader` protocol, and the network-free
:class:`DryRunUploader`.

One upload is up to three API steps, each reported through ``on_step`` the moment it succeeds so
the caller can persist it and never repeat it::

    videos.insert (resumable)  ->  thumbnails.set (if a thumbnail)  ->  playlistItems.insert

Scheduled publishing: a ``public`` video whose publish time is at least
:data:`PUBLISH_AT_MIN_LEAD` ahead is sent as ``privacyStatus="private"`` plus ``publishAt``
(RFC 3339, UTC, ``Z``), so YouTube makes it public at that time. Otherwise the requested privacy
is sent explicitly and no ``publishAt`` at all: YouTube publishes a past ``publishAt`` at once
without an error, and a missing ``privacyStatus`` defaults to public.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ..domain import Privacy, VideoMetadata
from ..errors import InvalidScheduleError, PermanentUploadError

__all__ = [
    "ApiCallReport",
    "CallCallback",
    "CallPhase",
    "DEFAULT_CHUNK_SIZE",
    "DryRunUploader",
    "PUBLISH_AT_MIN_LEAD",
    "ProgressCallback",
    "SessionProbe",
    "SessionProber",
    "SessionState",
    "StepCallback",
    "UploadRequest",
    "UploadResult",
    "UploadStep",
    "Uploader",
    "check_video_file",
    "format_rfc3339",
    "publication_status",
    "reports_calls",
    "upload_passing_calls",
    "video_resource",
]

logger = logging.getLogger(__name__)

#: A publish time closer than this to "now" is not sent as ``publishAt`` (it could be in the past
#: by the time YouTube processes it, which publishes the video at once).
PUBLISH_AT_MIN_LEAD = timedelta(seconds=60)

#: Simulated chunk size of :class:`DryRunUploader` in bytes (8 MiB). The real uploader sends the
#: whole file in one request unless given a ``chunk_size`` (a multiple of 256 KiB).
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024

#: Resumable-upload chunks other than the last must be a multiple of this many bytes (256 KiB).
CHUNK_GRANULARITY = 256 * 1024

_DRY_RUN_ID_CHARS = 11


class UploadStep(enum.StrEnum):
    """One API step of an upload, named after the API operation (also its quota-cost key)."""

    INSERT = "videos.insert"
    THUMBNAIL = "thumbnails.set"
    PLAYLIST = "playlistItems.insert"


ProgressCallback = Callable[[int, int, "str | None"], None]
"""``(bytes_sent, bytes_total, session_uri)``.

Called once right after a resumable session is opened (``bytes_sent=0``) or probed on resume,
before any media byte of that session is sent, so the caller can persist the session URI; then
while the media is being sent (the real uploader: after each 1 MiB handed to the socket, also in
the middle of one long request, and after each answer), so an exception raised here stops the
upload within one buffer. ``bytes_sent`` counts the bytes handed to the connection in this
session: at least the offset the server has confirmed, ahead of it by at most the request in
flight (a request cut short is resumed from the server's offset, which may be lower; the count
reported does not go down). It is non-decreasing within one session (a new session, after the
old one expired, starts again at 0 with a new URI). The session URI is a bearer capability:
store it like a secret and never log it.
"""

StepCallback = Callable[[UploadStep, str], None]
"""``(step, video_id)``, called right after each step succeeded (the video id the moment the insert
completes), so the caller can persist it and never repeat the step."""


class CallPhase(enum.StrEnum):
    """What an :class:`ApiCallReport` says about one API request."""

    #: The request is about to be sent (once this report returns). Count it: YouTube charges a
    #: request that reached it whatever happens after. A report that raises stops the request.
    SENDING = "sending"
    #: YouTube answered that the quota is spent (403 ``quotaExceeded``, 429 "Video Uploads per
    #: day"): this request was not charged.
    REFUSED = "refused"


@dataclass(frozen=True, kw_only=True)
class ApiCallReport:
    """One quota-bearing API request, reported through ``on_call``.

    Attributes:
        operation: the API method, also its quota-cost key (``videos.insert`` for a resumable
            initiation, re-sent ones included; ``thumbnails.set``; ``playlistItems.insert``;
            ``playlistItems.list``).
        phase: :class:`CallPhase`.
        call_id: ties a ``REFUSED`` report to the ``SENDING`` report of the same request
            (unique within one :meth:`Uploader.upload` call).
    """

    operation: str
    phase: CallPhase
    call_id: int


CallCallback = Callable[[ApiCallReport], None]
"""Called with an :class:`ApiCallReport` before each quota-bearing request is sent (and again if
YouTube refuses it for quota). Optional: an uploader accepts it when its ``upload`` has an
``on_call`` keyword (see :func:`reports_calls`)."""


def reports_calls(uploader: object) -> bool:
    """Does ``uploader.upload`` accept an ``on_call`` keyword (so it reports each API call it
    sends)? Checked by signature: uploaders written before it keep working without it.

    A wrapper whose ``upload`` takes ``on_call`` only to pass it on says whether its inner
    uploader reports calls with a boolean ``reports_api_calls`` attribute, which wins.
    """
    flag = getattr(uploader, "reports_api_calls", None)
    if isinstance(flag, bool):
        return flag
    upload = getattr(uploader, "upload", None)
    if upload is None:
        return False
    try:
        params = inspect.signature(upload).parameters
    except (TypeError, ValueError):
        return False
    param = params.get("on_call")
    return param is not None and param.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def upload_passing_calls(
    inner: Uploader,
    request: UploadRequest,
    *,
    progress: ProgressCallback | None,
    on_step: StepCallback | None,
    on_call: CallCallback | None,
) -> UploadResult:
    """``inner.upload(...)`` for a wrapping uploader: ``on_call`` is passed on only when
    ``inner`` reports calls (see :func:`reports_calls`)."""
    if on_call is not None and reports_calls(inner):
        return inner.upload(  # type: ignore[call-arg]
            request, progress=progress, on_step=on_step, on_call=on_call
        )
    return inner.upload(request, progress=progress, on_step=on_step)


@dataclass(frozen=True, kw_only=True)
class UploadRequest:
    """What to upload, and how far an earlier attempt got.

    Attributes:
        video_path: the media file.
        metadata: title, description, privacy, thumbnail, playlist, ...
        publish_at: the scheduled publish time (timezone-aware), or ``None`` for "now".
        session_uri: a resumable session stored by an earlier attempt: it is resumed (the upload
            is never started over while the session lives).
        video_id: set when the insert already completed earlier; only follow-ups remain.
        completed_steps: follow-up steps already done; they are skipped.
        attempted_steps: follow-up steps an earlier attempt sent (or may have sent) without
            learning the answer: before sending one again, the uploader checks whether it took
            effect (``playlistItems.list`` before a second ``playlistItems.insert``).
    """

    video_path: str
    metadata: VideoMetadata
    publish_at: datetime | None
    session_uri: str | None = None
    video_id: str | None = None
    completed_steps: frozenset[UploadStep] = frozenset()
    attempted_steps: frozenset[UploadStep] = frozenset()

    def __post_init__(self) -> None:
        if self.publish_at is not None and (
            self.publish_at.tzinfo is None or self.publish_at.utcoffset() is None
        ):
            raise InvalidScheduleError("publish_at", "must be timezone-aware")
        object.__setattr__(self, "completed_steps", frozenset(self.completed_steps))
        object.__setattr__(self, "attempted_steps", frozenset(self.attempted_steps))


@dataclass(frozen=True, kw_only=True)
class UploadResult:
    """What one :meth:`Uploader.upload` call did.

    Attributes:
        video_id: the YouTube video id.
        operations: API operations performed in this call, for quota accounting (e.g.
            ``("videos.insert", "thumbnails.set")``). Resuming a stored session performs no new
            ``videos.insert``; starting a new session after an expired one does.
        privacy_status: the ``privacyStatus`` that was sent.
        publish_at: the ``publishAt`` that was sent (``None`` when published without scheduling).
        bytes_sent: media bytes this call delivered (0 when the stored session was already
            complete or the insert had been done earlier).
    """

    video_id: str
    operations: tuple[str, ...]
    privacy_status: str
    publish_at: datetime | None
    bytes_sent: int


class Uploader(Protocol):
    """Uploads one video and its follow-up steps; the only YouTube seam the library uses."""

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        """Perform the remaining steps of ``request``.

        Raises:
            UploadError: a subclass saying what to do next (retry, defer, re-authorise, fail);
                follow-ups that finished before the failure were reported through ``on_step``.
        """
        ...


class SessionState(enum.StrEnum):
    """What a stored resumable upload session answered when asked how far it got."""

    #: The upload completed: the video exists on YouTube (its id is in :class:`SessionProbe`).
    COMPLETED = "completed"
    #: The session lives and does not have the whole file: the video is not on YouTube.
    INCOMPLETE = "incomplete"
    #: The session expired or is unknown: nobody can tell any more whether it completed.
    GONE = "gone"


@dataclass(frozen=True, kw_only=True)
class SessionProbe:
    """The answer of :meth:`SessionProber.probe_session`.

    Attributes:
        state: completed, incomplete or gone.
        video_id: the video id when ``state`` is completed.
        offset: bytes the server holds when ``state`` is incomplete.
    """

    state: SessionState
    video_id: str | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if (self.state is SessionState.COMPLETED) != (self.video_id is not None):
            raise ValueError("a completed probe carries the video id, and only a completed one")


class SessionProber(Protocol):
    """Optional second face of an :class:`Uploader`: ask a stored resumable session how far it
    got, without sending any media (the processor asks before it gives a schedule up)."""

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        """Ask ``session_uri`` (opened for ``video_path``) whether its upload completed.

        Raises:
            UploadError: the session could not be asked (network, authorisation); retried a
                bounded number of times first.
        """
        ...


def format_rfc3339(instant: datetime) -> str:
    """``instant`` as RFC 3339 in UTC with a ``Z`` suffix, whole seconds.

    ``2026-01-02T03:04:05Z``.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return instant.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def publication_status(
    privacy: Privacy, publish_at: datetime | None, *, now: datetime
) -> tuple[str, datetime | None]:
    """The ``(privacyStatus, publishAt)`` to send.

    ``public`` with a publish time at least :data:`PUBLISH_AT_MIN_LEAD` after ``now`` becomes
    ``("private", publish_at)``; everything else is ``(privacy, None)``. A past ``publishAt`` is
    never returned. The returned ``publishAt`` is truncated to whole seconds, in UTC.
    """
    privacy = Privacy(privacy)
    if privacy is Privacy.PUBLIC and publish_at is not None:
        if publish_at.tzinfo is None or publish_at.utcoffset() is None:
            raise InvalidScheduleError("publish_at", "must be timezone-aware")
        if publish_at - now >= PUBLISH_AT_MIN_LEAD:
            return Privacy.PRIVATE.value, publish_at.astimezone(UTC).replace(microsecond=0)
        logger.info(
            "publish time %s is not at least %s ahead; uploading public without publishAt",
            publish_at.isoformat(),
            PUBLISH_AT_MIN_LEAD,
        )
    return privacy.value, None


def video_resource(
    metadata: VideoMetadata, *, privacy_status: str, publish_at: datetime | None
) -> dict[str, Any]:
    """The ``videos.insert`` request body (parts ``snippet`` and ``status``)."""
    snippet: dict[str, Any] = {
        "title": metadata.title,
        "description": metadata.description,
        "categoryId": metadata.category_id,
    }
    if metadata.tags:
        snippet["tags"] = list(metadata.tags)
    if metadata.default_language:
        snippet["defaultLanguage"] = metadata.default_language
        snippet["defaultAudioLanguage"] = metadata.default_language
    status: dict[str, Any] = {
        "privacyStatus": privacy_status,
        "selfDeclaredMadeForKids": metadata.made_for_kids,
    }
    if publish_at is not None:
        status["publishAt"] = format_rfc3339(publish_at)
    return {"snippet": snippet, "status": status}


def check_video_file(path: str) -> int:
    """Check the media file before any quota is spent; return its size in bytes.

    Raises:
        PermanentUploadError: missing, not a regular file, empty, or unreadable.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PermanentUploadError(
            f"video file {path!r} cannot be read: {exc.strerror}", reason="invalidVideoFile"
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise PermanentUploadError(
            f"video file {path!r} is not a regular file", reason="invalidVideoFile"
        )
    if st.st_size == 0:
        raise PermanentUploadError(f"video file {path!r} is empty", reason="invalidVideoFile")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise PermanentUploadError(
            f"video file {path!r} cannot be read: {exc.strerror}", reason="invalidVideoFile"
        ) from exc
    return st.st_size


def check_thumbnail_file(metadata: VideoMetadata) -> None:
    """Check the thumbnail (exists, non-empty, at most 50 MB) before any quota is spent.

    Raises:
        PermanentUploadError: the thumbnail is missing, empty or too large.
    """
    try:
        metadata.check_files()
    except InvalidScheduleError as exc:
        raise PermanentUploadError(str(exc), reason="invalidThumbnail") from exc


def remaining_steps(request: UploadRequest) -> tuple[UploadStep, ...]:
    """The steps ``request`` still needs, in order."""
    steps: list[UploadStep] = []
    if request.video_id is None:
        steps.append(UploadStep.INSERT)
    if request.metadata.thumbnail_path and UploadStep.THUMBNAIL not in request.completed_steps:
        steps.append(UploadStep.THUMBNAIL)
    if request.metadata.playlist_id and UploadStep.PLAYLIST not in request.completed_steps:
        steps.append(UploadStep.PLAYLIST)
    return tuple(steps)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DryRunUploader:
    """An :class:`Uploader` that validates and reports without touching the network.

    It checks the files, decides ``privacyStatus``/``publishAt`` exactly like the real uploader,
    calls ``progress`` (a fake session URI first, then once per simulated chunk) and ``on_step``
    like the real one, and returns a deterministic fake video id (``"dry"`` + hash of path and
    title; the request's ``video_id`` when set).

    Args:
        clock: returns the aware current time (default ``datetime.now(UTC)``).
        chunk_size: simulated chunk size in bytes, for progress reports.
    """

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._clock = clock or _utc_now
        self._chunk_size = chunk_size

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
    ) -> UploadResult:
        """Validate ``request`` and simulate its remaining steps (see :class:`Uploader`)."""
        steps = remaining_steps(request)
        size = check_video_file(request.video_path) if UploadStep.INSERT in steps else 0
        if UploadStep.THUMBNAIL in steps:
            check_thumbnail_file(request.metadata)
        privacy_status, publish_at = publication_status(
            request.metadata.privacy, request.publish_at, now=self._clock()
        )
        digest = hashlib.sha256(
            f"{os.path.abspath(request.video_path)}\0{request.metadata.title}".encode()
        ).hexdigest()
        video_id = request.video_id or "dry" + digest[: _DRY_RUN_ID_CHARS - 3]
        operations: list[str] = []
        sent = 0
        if UploadStep.INSERT in steps:
            session_uri = request.session_uri or f"dryrun://upload/{digest[:16]}"
            if request.session_uri is None:
                operations.append(UploadStep.INSERT.value)
            if progress is not None:
                progress(0, size, session_uri)
            while sent < size:
                sent = min(size, sent + self._chunk_size)
                if progress is not None:
                    progress(sent, size, session_uri)
            logger.info("dry run: would upload %s (%d bytes)", request.video_path, size)
            if on_step is not None:
                on_step(UploadStep.INSERT, video_id)
        for step in steps:
            if step is UploadStep.INSERT:
                continue
            operations.append(step.value)
            logger.info("dry run: would perform %s for video %s", step.value, video_id)
            if on_step is not None:
                on_step(step, video_id)
        return UploadResult(
            video_id=video_id,
            operations=tuple(operations),
            privacy_status=privacy_status,
            publish_at=publish_at,
            bytes_sent=sent,
        )

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        """A dry run never sends anything anywhere: every session is incomplete at offset 0."""
        return SessionProbe(state=SessionState.INCOMPLETE, offset=0)
