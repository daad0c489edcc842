"""The library's exception tree.

Every failure that crosses the public API is one of these; SQLAlchemy, database-driver and
googleapiclient exceptions are translated and kept as ``__cause__``::

    SchedulerError
    ├── ConfigurationError          bad configuration (names the field)
    ├── InvalidScheduleError        bad input to a scheduling call (also ValueError)
    │   └── NotAShortError          a 'short' whose file YouTube would not treat as a Short
    ├── QuotaExceededError          a reservation would exceed one of OUR configured limits
    ├── SlotUnavailableError        the requested publish slot is taken (carries next_available)
    ├── DuplicateVideoError         the same file is already live or uploaded on the channel
    ├── ScheduleNotFoundError       no schedule with that id (also LookupError)
    ├── InvalidTransitionError      the schedule's status does not allow the operation
    ├── ChangePendingError          a change of plan after upload awaits YouTube's unknown answer
    ├── ThumbnailNotSetError        update_video: the text was updated on YouTube, the thumbnail not
    ├── LockTimeoutError            a row lock was not granted within lock_timeout
    ├── StorageError                the database failed (unreachable, deadlock retries spent, ...)
    │   ├── DatabaseTimeoutError    a database call did not finish within db_timeout
    │   └── OutcomeUnknownError     the failure came after COMMIT was sent: it may have committed
    └── UploadError                 an upload to YouTube failed
        ├── TransientUploadError    5xx, resets, timeouts, rate limits: retry with backoff
        ├── QuotaExhaustedError     YouTube says the project's quota is spent until next PT midnight
        ├── UploadLimitExceededError  YouTube's per-channel upload cap (rolling 24 h)
        ├── AuthorizationError      credentials are missing, revoked or lack a scope: run ``auth``
        └── PermanentUploadError    the request is wrong (metadata, file): retrying won't help

``QuotaExceededError`` is ours (the configured policy refuses a reservation);
``QuotaExhaustedError`` is YouTube's (the real quota is spent).
Errors carry their data as attributes and format their own message.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

__all__ = [
    "AuthorizationError",
    "ChangePendingError",
    "ConfigurationError",
    "DatabaseTimeoutError",
    "DuplicateVideoError",
    "InvalidScheduleError",
    "InvalidTransitionError",
    "LockTimeoutError",
    "NotAShortError",
    "OutcomeUnknownError",
    "PermanentUploadError",
    "QuotaExceededError",
    "QuotaExhaustedError",
    "ScheduleNotFoundError",
    "SchedulerError",
    "SlotUnavailableError",
    "StorageError",
    "ThumbnailNotSetError",
    "TransientUploadError",
    "UploadError",
    "UploadLimitExceededError",
]


class SchedulerError(Exception):
    """Root of every error raised by langflix-scheduler."""


class ConfigurationError(SchedulerError, ValueError):
    """A configuration value is invalid.

    Attributes:
        field: the configuration field (or environment variable) at fault.
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid configuration {field!r}: {reason}")


class InvalidScheduleError(SchedulerError, ValueError):
    """Input to a scheduling call is invalid (naive datetime, past time, bad path, ...).

    Attributes:
        field: the argument at fault.
        reason: what is wrong with it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class NotAShortError(InvalidScheduleError):
    """A video booked as ``short`` that YouTube would publish as a regular video.

    YouTube treats an upload as a Short when its frame (as displayed, after any rotation flag)
    is square or taller and it is at most 180 seconds long. The file says otherwise, so booking
    it against the Shorts limit would be wrong: book it as ``final``, or fix the file.

    Attributes:
        duration_seconds: the measured duration.
        width: the displayed frame width in pixels.
        height: the displayed frame height in pixels.
    """

    def __init__(self, *, duration_seconds: float, width: int, height: int, reason: str) -> None:
        self.duration_seconds = duration_seconds
        self.width = width
        self.height = height
        super().__init__(
            "video_type",
            f"'short' but YouTube would not treat this file as a Short ({reason}; measured "
            f"{duration_seconds:.2f} s, {width}x{height}); a Short is square or vertical and at "
            "most 180 s long: book it as 'final' or fix the file",
        )


class QuotaExceededError(SchedulerError):
    """Reserving would exceed a configured limit (a daily per-type limit or an API quota bucket).

    Attributes:
        limit_name: ``"daily:<video type>"`` for a channel-day limit, ``"quota:<bucket>"`` for an
            API quota bucket.
        day: the channel day (daily limits) or the Pacific-time quota day (API quota).
        used: what is already used or reserved on that day.
        limit: the configured limit.
        requested: what this reservation needed.
    """

    def __init__(
        self, limit_name: str, day: date, *, used: int, limit: int, requested: int
    ) -> None:
        self.limit_name = limit_name
        self.day = day
        self.used = used
        self.limit = limit
        self.requested = requested
        super().__init__(
            f"{limit_name} limit reached for {day.isoformat()}: "
            f"{used} of {limit} used, {requested} more requested"
        )


class SlotUnavailableError(SchedulerError):
    """The requested publish time cannot be booked.

    Attributes:
        requested: the requested publish time (UTC).
        reason: why (taken, not a configured slot, ...).
        next_available: the earliest bookable slot after it within the horizon, or ``None``.
    """

    def __init__(
        self, requested: datetime, reason: str, *, next_available: datetime | None
    ) -> None:
        self.requested = requested
        self.reason = reason
        self.next_available = next_available
        nxt = next_available.isoformat() if next_available else "none within the horizon"
        super().__init__(
            f"slot {requested.isoformat()} is unavailable ({reason}); next available: {nxt}"
        )


class ScheduleNotFoundError(SchedulerError, LookupError):
    """No schedule with this id exists (on the channel asked for, when one was given).

    Any id that cannot exist (not an integer, a bool, ``None``, below 1 or beyond the 32-bit id
    column) is "not found" too, on every engine.

    Attributes:
        schedule_id: the id that was looked up.
        channel: the channel the caller restricted the lookup to, or ``None``.
    """

    def __init__(self, schedule_id: object, *, channel: str | None = None) -> None:
        self.schedule_id = schedule_id
        self.channel = channel
        where = f" on channel {channel!r}" if channel is not None else ""
        super().__init__(f"schedule {schedule_id!r} not found{where}")


class InvalidTransitionError(SchedulerError):
    """The schedule's current status does not allow the requested operation.

    Attributes:
        schedule_id: the schedule.
        status: its current status.
        operation: what was attempted.
        hint: what to do instead, when there is something to say.
    """

    def __init__(
        self, schedule_id: int, status: str, operation: str, *, hint: str | None = None
    ) -> None:
        self.schedule_id = schedule_id
        self.status = status
        self.operation = operation
        self.hint = hint
        message = f"cannot {operation} schedule {schedule_id}: its status is {status!r}"
        super().__init__(message + (f"; {hint}" if hint else ""))


class ChangePendingError(SchedulerError):
    """A change of plan was recorded, but whether YouTube applied it is unknown (its answer was
    lost, or YouTube failed transiently). Nothing to do: the next processor run, once the
    change's lease has expired, asks YouTube and finishes it or rolls it back; ``show ID`` and
    ``status`` show it meanwhile.

    Attributes:
        schedule_id: the schedule.
        change_id: the pending change.
        reason: what went wrong with the call.
    """

    def __init__(self, schedule_id: int, change_id: int, reason: str) -> None:
        self.schedule_id = schedule_id
        self.change_id = change_id
        self.reason = reason
        super().__init__(
            f"change #{change_id} of schedule {schedule_id} is pending: YouTube's answer is "
            f"unknown ({reason}); the next processor run finishes it or rolls it back"
        )


class ThumbnailNotSetError(SchedulerError):
    """``update_video`` with a thumbnail: YouTube took the new title/description/tags
    (``videos.update``) but refused the thumbnail (``thumbnails.set``), or our quota ledger
    had no room left for it. The change is ``applied`` for the text and the schedule holds the
    new text with the old thumbnail; set the thumbnail again with another ``update_video``.
    The refusal is kept as ``__cause__``.

    Attributes:
        schedule_id: the schedule.
        change_id: the change (``applied``; its ``error`` says the thumbnail was not set).
        reason: why the thumbnail was not set.
    """

    def __init__(self, schedule_id: int, change_id: int, reason: str) -> None:
        self.schedule_id = schedule_id
        self.change_id = change_id
        self.reason = reason
        super().__init__(
            f"change #{change_id} of schedule {schedule_id}: the title/description/tags were "
            f"updated on YouTube, but the thumbnail was not set ({reason}); run update_video "
            "with the thumbnail again"
        )


class LockTimeoutError(SchedulerError):
    """A row lock was not granted within ``lock_timeout``; the transaction was rolled back whole.

    Attributes:
        timeout: the configured lock timeout in seconds.
        operation: the operation that waited.
    """

    def __init__(self, operation: str, timeout: float) -> None:
        self.operation = operation
        self.timeout = timeout
        super().__init__(
            f"{operation}: lock not granted within {timeout:g} s (another transaction holds it); "
            "nothing was written, retry later"
        )


class StorageError(SchedulerError):
    """The database failed: unreachable, a constraint broke unexpectedly, or retries were spent.

    Attributes:
        operation: the operation that failed.
    """

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"{operation}: database error: {detail}")


class DatabaseTimeoutError(StorageError):
    """A database call did not finish within ``db_timeout`` (a stalled network or server).

    The transaction was abandoned; the server frees its locks when its own timeout fires. When
    the stall hit the COMMIT itself, :class:`OutcomeUnknownError` is raised instead.

    Attributes:
        timeout: the configured ``db_timeout`` in seconds.
    """

    def __init__(self, operation: str, timeout: float, detail: str = "") -> None:
        self.timeout = timeout
        text = f"no answer within db_timeout={timeout:g} s"
        super().__init__(operation, f"{text} ({detail})" if detail else text)


class OutcomeUnknownError(StorageError):
    """The connection failed after COMMIT was sent: the change may or may not have been made.

    Retrying the same public call is safe: booking returns the schedule a lost commit made (by
    its idempotency key or content fingerprint) instead of booking twice, and every other call
    either finds its change done or makes it.

    Attributes:
        operation: the operation whose commit is in doubt.
    """

    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(
            operation,
            f"the connection failed after COMMIT was sent, so the change may or may not have "
            f"been saved ({detail}); retrying the same call is safe",
        )


class DuplicateVideoError(SchedulerError):
    """The same video file (by content) is already scheduled, uploading or uploaded on the channel.

    Pass ``allow_duplicate=True`` to book it again on purpose.

    Attributes:
        existing_id: the schedule that holds the same content.
        channel_id: the channel.
        content_sha256: the file's SHA-256 (hex).
        status: the existing schedule's status.
        same_request: True when the existing schedule is the same request (same file, type,
            metadata and, if one was asked for, time): a retry of a booking that succeeded.
    """

    def __init__(
        self,
        existing_id: int,
        *,
        channel_id: str,
        content_sha256: str,
        status: str,
        same_request: bool = False,
    ) -> None:
        self.existing_id = existing_id
        self.channel_id = channel_id
        self.content_sha256 = content_sha256
        self.status = status
        self.same_request = same_request
        super().__init__(
            f"this video is already {status} on channel {channel_id} as schedule #{existing_id} "
            f"(same content, sha256 {content_sha256[:12]}...); pass allow_duplicate=True to book "
            "it again"
        )


class UploadError(SchedulerError):
    """An upload to YouTube failed.

    Attributes:
        reason: YouTube's machine-readable reason (``quotaExceeded``, ``invalidTitle``, ...) or a
            short description of a network failure.
        status: the HTTP status, when there was an answer.
    """

    def __init__(self, message: str, *, reason: str = "", status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(message)


class TransientUploadError(UploadError):
    """A failure worth retrying later: 5xx, connection reset, timeout, short-term rate limit."""


class QuotaExhaustedError(UploadError):
    """YouTube answered that the API project's daily quota is spent.

    Attributes:
        resume_at: the next quota-day start (midnight America/Los_Angeles), when quota resets.
    """

    def __init__(
        self, message: str, *, resume_at: datetime, reason: str = "quotaExceeded", status: int = 403
    ) -> None:
        self.resume_at = resume_at
        super().__init__(
            f"{message} (quota resets at {resume_at.isoformat()})", reason=reason, status=status
        )


class UploadLimitExceededError(UploadError):
    """YouTube's per-channel upload cap was hit (a rolling 24-hour window, not the quota day).

    Attributes:
        retry_after: how long to wait before trying this channel again.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: timedelta = timedelta(hours=24),
        reason: str = "uploadLimitExceeded",
        status: int = 400,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, reason=reason, status=status)


class AuthorizationError(UploadError):
    """Credentials are missing, expired beyond refresh, revoked, or lack a needed scope.

    Retrying will not help until a person runs ``langflix-scheduler auth`` again; schedules are
    not failed for it.
    """


class PermanentUploadError(UploadError):
    """The request is wrong (invalid metadata, unreadable file, forbidden): retrying won't help."""
