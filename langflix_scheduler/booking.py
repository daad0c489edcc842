"""Booking identity: when a booking request was already made, and when it is a duplicate.

A request is **the same request** as an existing schedule when it is for the same channel, the
same content (SHA-256), the same video type and the same metadata, and, when it asked for an
exact time, that time. With an ``idempotency_key`` the key identifies the request instead: the
same key with a different request is a caller error (as in Stripe's API).

:func:`decide` turns the schedules that hold the request's key or fingerprint (see
:func:`langflix_scheduler.db.bookings.holders`) into one of: the schedule to return (a replay),
a :class:`DuplicateVideoError` / :class:`InvalidScheduleError` to raise, or None (nothing holds
the request: book it). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .db.models import Schedule
from .domain import VideoMetadata, VideoType
from .errors import DuplicateVideoError, InvalidScheduleError
from .fingerprint import Fingerprint
from .slots import ensure_aware

__all__ = ["IDEMPOTENCY_KEY_MAX_CHARS", "BookingRequest", "check_idempotency_key", "decide"]

#: The ``idempotency_key`` column's width.
IDEMPOTENCY_KEY_MAX_CHARS = 128


def check_idempotency_key(value: object) -> str | None:
    """``value`` if it is a usable idempotency key (or None), else ``InvalidScheduleError``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise InvalidScheduleError(
            "idempotency_key",
            f"must be a non-empty string of <= {IDEMPOTENCY_KEY_MAX_CHARS} characters",
        )
    return value


@dataclass(frozen=True, kw_only=True)
class BookingRequest:
    """One validated booking request, with its file's fingerprint."""

    channel: str
    path: str
    video_type: VideoType
    meta: VideoMetadata
    cost: Mapping[str, int]
    slot: datetime | None  # the exact time asked for, if any
    fingerprint: Fingerprint
    idempotency_key: str | None
    allow_duplicate: bool
    #: Who asked (written to the schedule's timeline).
    actor: str = "library"

    @property
    def fingerprint_key(self) -> str | None:
        """What the row's unique ``fingerprint_key`` holds: NULL when duplicates are allowed."""
        return None if self.allow_duplicate else self.fingerprint.sha256

    def row_values(self) -> dict[str, Any]:
        """The identity columns of the row this request inserts."""
        return {
            "content_sha256": self.fingerprint.sha256,
            "fingerprint_key": self.fingerprint_key,
            "file_size": self.fingerprint.size,
            "file_mtime_ns": self.fingerprint.mtime_ns,
            "idempotency_key": self.idempotency_key,
        }

    def same_as(self, row: Schedule) -> bool:
        """True when ``row`` is this request, already booked (keys aside)."""
        if (row.channel_id, row.content_sha256, row.video_type) != (
            self.channel,
            self.fingerprint.sha256,
            self.video_type.value,
        ):
            return False
        if self.slot is not None and ensure_aware(row.scheduled_publish_time) != self.slot:
            return False
        try:
            stored = VideoMetadata.from_json(row.video_metadata).to_json()
        except (TypeError, ValueError):
            return False
        return stored == self.meta.to_json()


def decide(request: BookingRequest, rows: Sequence[Schedule]) -> Schedule | None:
    """The schedule that already is ``request`` (return it), or None (book it).

    Raises:
        InvalidScheduleError: the idempotency key was used for a different request.
        DuplicateVideoError: the same content is live on the channel as a different request.
    """
    key = request.idempotency_key
    by_key = next((r for r in rows if key is not None and r.idempotency_key == key), None)
    if by_key is not None:
        if request.same_as(by_key):
            return by_key
        raise InvalidScheduleError(
            "idempotency_key",
            f"{key!r} was already used for a different request (schedule #{by_key.id}: other "
            "file, type, metadata or time); use a new key for a new booking",
        )
    sha = request.fingerprint_key
    holder = next((r for r in rows if sha is not None and r.fingerprint_key == sha), None)
    if holder is None:
        return None
    same = request.same_as(holder)
    if same and key is None:
        return holder
    raise DuplicateVideoError(
        holder.id,
        channel_id=holder.channel_id,
        content_sha256=request.fingerprint.sha256,
        status=holder.upload_status,
        same_request=same,
    )
