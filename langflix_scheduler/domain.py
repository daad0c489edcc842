"""Frozen value objects returned by the public API, and the enums they use.

Nothing here touches the database or the network. ORM rows are converted to these before they
leave the library.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import InvalidScheduleError

__all__ = [
    "Booking",
    "BucketUsage",
    "ChannelPause",
    "DailyQuotaStatus",
    "Privacy",
    "ProcessorRunRecord",
    "QuotaCorrection",
    "RecalculationReport",
    "ScheduledVideo",
    "TypeUsage",
    "UploadStatus",
    "VideoMetadata",
    "VideoState",
    "VideoType",
    "title_from_filename",
    "youtube_tags_length",
]

TITLE_MAX_CHARS = 100
DESCRIPTION_MAX_BYTES = 5000
TAGS_MAX_CHARS = 500
THUMBNAIL_MAX_BYTES = 50 * 1024 * 1024
THUMBNAIL_SUFFIXES = (".jpg", ".jpeg", ".png")
LANGUAGE_MAX_CHARS = 35
PLAYLIST_ID_MAX_CHARS = 64
DEFAULT_CATEGORY_ID = "27"  # Education


class VideoType(enum.StrEnum):
    """Kind of video; each kind has its own publish times and daily limit."""

    FINAL = "final"
    SHORT = "short"


class UploadStatus(enum.StrEnum):
    """Lifecycle of a schedule: scheduled -> uploading -> completed, or failed / cancelled.

    ``needs_review``: whether the video reached YouTube is unknown (an upload session was opened
    but can no longer be asked, or an upload's outcome could not be recorded). The schedule keeps
    its slot, daily count and quota, is shown by ``status``, and is never uploaded again
    automatically: look on the channel, then mark it or book it again.
    """

    SCHEDULED = "scheduled"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"

    @property
    def is_active(self) -> bool:
        """True while the schedule occupies its slot and its reservations."""
        return self in (
            UploadStatus.SCHEDULED,
            UploadStatus.UPLOADING,
            UploadStatus.COMPLETED,
            UploadStatus.NEEDS_REVIEW,
        )


class VideoState(enum.StrEnum):
    """What YouTube holds for an uploaded video: the schedule's life after ``completed``.

    ``upload_status`` says what the library did (booked, uploading, completed ...); the video
    state says what the processor last saw on YouTube (``videos.list``), or what a change of
    plan made of the video. None until the upload completes.

    uploaded -> processing -> ready -> published is the planned path; ``ready`` means processed
    and holding the planned privacy and ``publishAt``. Terminal problems: ``rejected``,
    ``processing_failed``, ``deleted``. ``mismatch``: YouTube holds another privacy or publish
    time than planned; ``held_private``: the publish time passed and the video is still private
    (a project locked private, or held back by YouTube). ``missing``: ``videos.list`` did not
    return the video (deleted, or the token belongs to another account); checked again, and
    ``deleted`` only after three absent answers spanning at least an hour. ``unpublished``:
    cancelled after the upload (private, no ``publishAt``). None of these is ever uploaded
    again automatically.
    """

    UPLOADED = "uploaded"
    PROCESSING = "processing"
    READY = "ready"
    PUBLISHED = "published"
    REJECTED = "rejected"
    PROCESSING_FAILED = "processing_failed"
    MISMATCH = "mismatch"
    HELD_PRIVATE = "held_private"
    MISSING = "missing"
    DELETED = "deleted"
    UNPUBLISHED = "unpublished"

    @property
    def is_problem(self) -> bool:
        """True when a person should look at the video."""
        return self in (
            VideoState.REJECTED,
            VideoState.PROCESSING_FAILED,
            VideoState.MISMATCH,
            VideoState.HELD_PRIVATE,
            VideoState.MISSING,
            VideoState.DELETED,
        )

    @property
    def is_final(self) -> bool:
        """True when the processor no longer checks the video on its own."""
        return self in (
            VideoState.PUBLISHED,
            VideoState.REJECTED,
            VideoState.PROCESSING_FAILED,
            VideoState.DELETED,
            VideoState.UNPUBLISHED,
        )


class Privacy(enum.StrEnum):
    """Visibility of the video once its publish time arrives."""

    PUBLIC = "public"
    UNLISTED = "unlisted"
    PRIVATE = "private"


def _forbidden_brackets(text: str) -> bool:
    return "<" in text or ">" in text


#: Control characters a description may hold: line breaks (LF, and CR of CRLF files) and tab.
#: Every other C0 control (NUL, ESC, ...) and DEL is refused in every text field: YouTube
#: answers ``invalidTitle`` / ``invalidDescription`` / ``invalidTags`` for them.
DESCRIPTION_CONTROLS_ALLOWED = frozenset("\n\r\t")


def _check_text(field_name: str, text: str, *, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse text YouTube (and MariaDB/PostgreSQL) cannot take: lone surrogates, which is
    what undecodable bytes become (``'caf\\udce9'`` from a Latin-1 argument), and control
    characters other than ``allowed``. The message names the first bad character's position."""
    for index, char in enumerate(text):
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            raise InvalidScheduleError(
                field_name,
                f"is not valid Unicode (undecodable byte or lone surrogate U+{code:04X} at "
                f"character {index + 1}); save the text as UTF-8",
            )
        if (code < 0x20 or code == 0x7F) and char not in allowed:
            raise InvalidScheduleError(
                field_name,
                f"contains the control character U+{code:04X} at character {index + 1}; "
                "YouTube refuses it",
            )


def youtube_tags_length(tags: Iterable[str]) -> int:
    """The length YouTube counts for ``tags`` against its 500-character limit.

    The commas between tags count, and a tag containing a space counts as if it were wrapped in
    quotes: ``Foo-Baz`` is 7 characters, ``Foo Baz`` is 9 (API reference, ``snippet.tags[]``).
    """
    items = list(tags)
    quoted = sum(len(t) + 2 if " " in t else len(t) for t in items)
    return quoted + max(0, len(items) - 1)


def title_from_filename(video_path: str | os.PathLike[str]) -> str:
    """The default title of a video: its file name without extension, without the ``<``/``>``
    YouTube refuses, at most 100 characters (``Untitled`` when nothing is left)."""
    stem = Path(video_path).stem.replace("<", "").replace(">", "").strip()
    return stem[:TITLE_MAX_CHARS] or "Untitled"


@dataclass(frozen=True, kw_only=True)
class VideoMetadata:
    """What YouTube is told about a video. Validated against YouTube's documented limits.

    Attributes:
        title: at most 100 characters, no ``<`` or ``>``; required.
        description: at most 5,000 UTF-8 bytes, no ``<`` or ``>``.
        tags: at most 500 characters counted YouTube's way (:func:`youtube_tags_length`: the
            commas between tags count, a tag with a space counts two more for its quotes).

    No text field may hold invalid Unicode (lone surrogates, e.g. from undecodable bytes) or
    control characters; a description may hold line breaks (LF, CR) and tabs.
        category_id: YouTube category id (default ``"27"``, Education).
        privacy: visibility once published. ``public`` (default) uploads the video private with
            ``publishAt`` so YouTube makes it public at the scheduled time; ``unlisted`` and
            ``private`` upload with that visibility and no ``publishAt`` (YouTube only schedules
            transitions to public).
        made_for_kids: the ``selfDeclaredMadeForKids`` flag.
        default_language: BCP-47 language of title and description (e.g. ``"ko"``).
        thumbnail_path: a JPEG or PNG of at most 50 MB, set after the upload.
        playlist_id: a playlist the video is added to after the upload.
    """

    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    category_id: str = DEFAULT_CATEGORY_ID
    privacy: Privacy = Privacy.PUBLIC
    made_for_kids: bool = False
    default_language: str | None = None
    thumbnail_path: str | None = None
    playlist_id: str | None = None

    def __post_init__(self) -> None:
        self._check_title()
        self._check_description()
        self._check_tags()
        self._check_rest()

    def _check_title(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InvalidScheduleError("metadata.title", "must be a non-empty string")
        if len(self.title) > TITLE_MAX_CHARS:
            raise InvalidScheduleError(
                "metadata.title", f"{len(self.title)} characters; YouTube allows {TITLE_MAX_CHARS}"
            )
        if _forbidden_brackets(self.title):
            raise InvalidScheduleError("metadata.title", "must not contain '<' or '>'")
        _check_text("metadata.title", self.title)

    def _check_description(self) -> None:
        if not isinstance(self.description, str):
            raise InvalidScheduleError("metadata.description", "must be a string")
        _check_text("metadata.description", self.description, allowed=DESCRIPTION_CONTROLS_ALLOWED)
        size = len(self.description.encode("utf-8"))
        if size > DESCRIPTION_MAX_BYTES:
            raise InvalidScheduleError(
                "metadata.description",
                f"{size} bytes in UTF-8; YouTube allows {DESCRIPTION_MAX_BYTES}",
            )
        if _forbidden_brackets(self.description):
            raise InvalidScheduleError("metadata.description", "must not contain '<' or '>'")

    def _check_tags(self) -> None:
        tags: object = self.tags
        if isinstance(tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise InvalidScheduleError("metadata.tags", "must be a sequence of strings")
        object.__setattr__(self, "tags", tuple(t.strip() for t in self.tags if t.strip()))
        for index, tag in enumerate(self.tags):
            _check_text(f"metadata.tags[{index}]", tag)
        total = youtube_tags_length(self.tags)
        if total > TAGS_MAX_CHARS:
            raise InvalidScheduleError(
                "metadata.tags",
                f"{total} characters as YouTube counts them (commas between tags count, a tag "
                f"with a space counts 2 more for its quotes); YouTube allows {TAGS_MAX_CHARS}",
            )
        if any(_forbidden_brackets(t) for t in self.tags):
            raise InvalidScheduleError("metadata.tags", "must not contain '<' or '>'")

    def _check_rest(self) -> None:
        if not (isinstance(self.category_id, str) and self.category_id.isdigit()):
            raise InvalidScheduleError("metadata.category_id", "must be a numeric string")
        try:
            object.__setattr__(self, "privacy", Privacy(self.privacy))
        except ValueError:
            raise InvalidScheduleError(
                "metadata.privacy", f"{self.privacy!r} is not one of public, unlisted, private"
            ) from None
        if not isinstance(self.made_for_kids, bool):
            raise InvalidScheduleError("metadata.made_for_kids", "must be true or false")
        if self.default_language is not None and not (
            isinstance(self.default_language, str)
            and 0 < len(self.default_language) <= LANGUAGE_MAX_CHARS
        ):
            raise InvalidScheduleError("metadata.default_language", "must be a short language tag")
        for name in ("category_id", "default_language", "playlist_id", "thumbnail_path"):
            value = getattr(self, name)
            if isinstance(value, str):
                _check_text(f"metadata.{name}", value)
        if self.playlist_id is not None and not (
            isinstance(self.playlist_id, str) and 0 < len(self.playlist_id) <= PLAYLIST_ID_MAX_CHARS
        ):
            raise InvalidScheduleError("metadata.playlist_id", "must be a playlist id")
        if self.thumbnail_path is not None:
            if not isinstance(self.thumbnail_path, str) or not self.thumbnail_path:
                raise InvalidScheduleError("metadata.thumbnail_path", "must be a file path")
            if not self.thumbnail_path.lower().endswith(THUMBNAIL_SUFFIXES):
                raise InvalidScheduleError("metadata.thumbnail_path", "must be a .jpg or .png file")

    def check_files(self) -> None:
        """Check that the thumbnail (if any) exists and fits YouTube's size limit."""
        if self.thumbnail_path is None:
            return
        try:
            st = os.stat(self.thumbnail_path)
        except OSError as exc:
            raise InvalidScheduleError(
                "metadata.thumbnail_path", f"cannot read {self.thumbnail_path!r}: {exc.strerror}"
            ) from exc
        if not os.path.isfile(self.thumbnail_path) or st.st_size == 0:
            raise InvalidScheduleError("metadata.thumbnail_path", "must be a non-empty file")
        if st.st_size > THUMBNAIL_MAX_BYTES:
            raise InvalidScheduleError(
                "metadata.thumbnail_path", f"{st.st_size} bytes; YouTube allows 50 MB"
            )

    def operations(self) -> tuple[str, ...]:
        """The API operations one upload with this metadata performs (for quota accounting)."""
        ops = ["videos.insert"]
        if self.thumbnail_path:
            ops.append("thumbnails.set")
        if self.playlist_id:
            ops.append("playlistItems.insert")
        return tuple(ops)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (stored in the schedule row)."""
        return {
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "category_id": self.category_id,
            "privacy": self.privacy.value,
            "made_for_kids": self.made_for_kids,
            "default_language": self.default_language,
            "thumbnail_path": self.thumbnail_path,
            "playlist_id": self.playlist_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VideoMetadata:
        """Build from a dict such as a ``meta.json`` file; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise InvalidScheduleError("metadata", "must be a JSON object")
        known = {
            "title",
            "description",
            "tags",
            "category_id",
            "privacy",
            "made_for_kids",
            "default_language",
            "thumbnail_path",
            "playlist_id",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidScheduleError("metadata", f"unknown keys: {', '.join(unknown)}")
        kwargs = dict(data)
        if "tags" in kwargs:
            tags = kwargs["tags"]
            if isinstance(tags, str):
                tags = [t for t in tags.split(",")]
            if not isinstance(tags, list | tuple):
                raise InvalidScheduleError("metadata.tags", "must be a list of strings")
            kwargs["tags"] = tuple(tags)
        if "title" not in kwargs:
            raise InvalidScheduleError("metadata.title", "is required")
        return cls(**kwargs)

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> VideoMetadata:
        """Rebuild the metadata of a stored schedule, even one booked under looser rules.

        A row booked by an older version may break a rule added since (YouTube's tag counting,
        control characters): it is still shown, listed and cancellable, so it is rebuilt without
        the checks here. The processor validates with :meth:`from_json` before any upload.
        """
        try:
            return cls.from_json(data)
        except InvalidScheduleError:
            meta = object.__new__(cls)
            fields = {name: data.get(name, getattr(cls, name, None)) for name in _STORED_FIELDS}
            fields["tags"] = tuple(fields["tags"] or ())
            if fields["privacy"] in Privacy.__members__.values():
                fields["privacy"] = Privacy(fields["privacy"])
            for name, value in fields.items():
                object.__setattr__(meta, name, value)
            return meta


_STORED_FIELDS = (
    "title",
    "description",
    "tags",
    "category_id",
    "privacy",
    "made_for_kids",
    "default_language",
    "thumbnail_path",
    "playlist_id",
)


@dataclass(frozen=True, kw_only=True)
class ScheduledVideo:
    """A schedule as stored: where, when, what, and how far its upload got."""

    id: int
    channel_id: str
    api_project: str
    video_path: str
    video_type: VideoType
    scheduled_publish_time: datetime
    publish_date: date
    quota_date: date
    metadata: VideoMetadata
    status: UploadStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    youtube_video_id: str | None
    bytes_uploaded: int
    bytes_total: int | None
    reserved_quota: Mapping[str, int]
    consumed_quota: Mapping[str, int]
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None
    #: SHA-256 (hex) of the file's content when it was booked (None for older schedules).
    content_sha256: str | None = None
    #: The caller's request id given when booking, if any.
    idempotency_key: str | None = None
    #: What YouTube holds for the uploaded video (None before the upload completes).
    video_state: VideoState | None = None
    #: ``status.privacyStatus`` YouTube reported at the last check.
    youtube_privacy: str | None = None
    #: ``status.publishAt`` YouTube reported at the last check.
    youtube_publish_at: datetime | None = None
    #: Why the video is in a problem state (YouTube's rejection or failure reason, the
    #: difference found), and what to do.
    video_problem: str | None = None
    #: When the processor last asked YouTube about the video, and when it asks next.
    checked_at: datetime | None = None
    next_check_at: datetime | None = None

    def due_at(self, upload_lead_time: timedelta) -> datetime:
        """The first instant a processor run claims this schedule while it stays ``scheduled``:
        its publish time minus ``upload_lead_time``, or its retry time when that is later.

        The same rule as the claim's SQL predicate (``db/due.py``) and
        :meth:`ScheduleManager.due_schedules`, for a front end that must know *when* (the
        demo's simulated clock jumps there).
        """
        start = self.scheduled_publish_time - upload_lead_time
        if self.next_attempt_at is not None and self.next_attempt_at > start:
            return self.next_attempt_at
        return start


@dataclass(frozen=True, kw_only=True)
class Booking:
    """What :meth:`ScheduleManager.book` did: the schedule, and whether this call created it.

    ``created`` is False when the request was already booked (a retry of the same request, or a
    replay of its idempotency key): ``schedule`` is then the schedule booked earlier, as it is now.
    """

    schedule: ScheduledVideo
    created: bool


@dataclass(frozen=True, kw_only=True)
class TypeUsage:
    """Use of one video type's daily limit on one channel day."""

    video_type: VideoType
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        """How many more of this type fit on the day."""
        return max(0, self.limit - self.used)


@dataclass(frozen=True, kw_only=True)
class BucketUsage:
    """Use of one API quota bucket on one Pacific-time quota day.

    ``reserved`` is held by schedules not yet uploaded; ``used`` was spent by uploads.
    """

    api_project: str
    quota_date: date
    bucket: str
    reserved: int
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        """What is neither reserved nor used."""
        return max(0, self.limit - self.reserved - self.used)


@dataclass(frozen=True, kw_only=True)
class DailyQuotaStatus:
    """Per-type usage of a channel day, and the API quota of the quota day(s) it touches."""

    channel_id: str
    publish_date: date
    types: Mapping[VideoType, TypeUsage]
    quota: tuple[BucketUsage, ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class QuotaCorrection:
    """One counter that ``recalculate_quota`` changed."""

    table: str
    key: tuple[str, ...]
    column: str
    old: int
    new: int


@dataclass(frozen=True, kw_only=True)
class RecalculationReport:
    """What ``recalculate_quota`` found and fixed."""

    start: date | None
    end: date | None
    rows_checked: int
    corrections: tuple[QuotaCorrection, ...]

    @property
    def changed(self) -> bool:
        """True when any counter was corrected."""
        return bool(self.corrections)


@dataclass(frozen=True, kw_only=True)
class ProcessorRunRecord:
    """One recorded run of an upload processor (a ``processor_runs`` row), for status reports.

    ``outcome`` is ``running`` while the run is in progress; ``lost`` when the row still says
    running but its heartbeat stopped (``lease_expires_at`` passed: the process died, hangs, or
    lost its database); else ``ok``, ``skipped`` (another exclusive run held the lock),
    ``stopped``, ``unauthorized`` or ``error``.
    """

    id: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    claimed: int
    uploaded: int
    failed: int
    retried: int
    deferred: int
    rescued: int
    skipped_overlap: int
    error: str | None
    heartbeat_at: datetime | None = None
    lease_expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ChannelPause:
    """A channel whose uploads are paused: its refresh token was refused (``invalid_grant``).

    The processor claims none of its schedules until ``langflix-scheduler auth --channel X``
    stores a new token, ``auth --check`` finds the token good, or
    ``ScheduleManager.resume_channel`` is called.

    Attributes:
        channel: the channel.
        paused_at: when the processor paused it.
        reason: what YouTube/Google answered.
        command: the command that lifts the pause.
    """

    channel: str
    paused_at: datetime
    reason: str | None

    @property
    def command(self) -> str:
        """The command to run: ``langflix-scheduler auth --channel <channel>``."""
        return f"langflix-scheduler auth --channel {self.channel}"
