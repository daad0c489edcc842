"""The local side of a change of plan after upload: what the schedule row says before, during
and after the change's API call (no network, no transactions of its own).

Each function edits a schedule row that :func:`langflix_scheduler.ledger.change_schedule` (or a
short transaction of :mod:`langflix_scheduler.changes`) has locked, with the counter rows
locked in the ledger's order. The flow that calls them is :mod:`langflix_scheduler.changes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from . import ledger
from .db import bookings
from .db import changes as changes_db
from .db.counters import count_column
from .db.models import DailyLimit, Schedule
from .db.types import Session
from .domain import VideoMetadata, VideoState
from .youtube.videos import RemoteVideo

#: Moves a locked uploaded row to ``(slot, channel day)`` with the ledger's checks and counter
#: moves (the manager's own reschedule move): ``move(session, row, slot, day, days, now)``.
#: Raises ``bookings.SlotTaken`` or ``QuotaExceededError`` before changing anything.
Move = Callable[[Session, Schedule, datetime, date, Mapping[date, DailyLimit], datetime], None]

__all__ = [
    "Move",
    "merged_metadata",
    "ChangeKind",
    "ChangeState",
    "applied_fields",
    "checks_resume",
    "held_from_checks",
    "describe",
    "iso",
    "parse_iso",
    "previous_of",
    "put_back_cancel",
    "put_back_reschedule",
]


class ChangeKind(StrEnum):
    """What a change of plan does on YouTube."""

    #: ``videos.update(part=status)``: a new ``publishAt``, still private.
    RESCHEDULE = "reschedule"
    #: ``videos.update(part=status)``: private, no ``publishAt`` (``cancel``).
    UNPUBLISH = "unpublish"
    #: ``videos.delete`` (``cancel(delete=True)``).
    DELETE = "delete"
    #: ``videos.update(part=snippet)`` and maybe ``thumbnails.set`` (``update_video``).
    UPDATE = "update"


class ChangeState(StrEnum):
    """Where a change of plan is."""

    #: Recorded; its API call may be in flight (a processor run finishes it after its lease).
    PENDING = "pending"
    #: YouTube holds it and the schedule says so.
    APPLIED = "applied"
    #: YouTube refused it (nothing changed there); the schedule was put back.
    FAILED = "failed"
    #: A recovery found it could not be finished; the schedule was put back.
    ROLLED_BACK = "rolled_back"


def iso(when: datetime | None) -> str | None:
    """``when`` as ISO 8601 text for the change's JSON (None stays None)."""
    return None if when is None else when.isoformat()


def parse_iso(text: object) -> datetime | None:
    """The instant stored by :func:`iso`."""
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def previous_of(row: Schedule) -> dict[str, Any]:
    """What the schedule row says before a change: enough to put it back."""
    return {
        "publish_at": iso(row.scheduled_publish_time),
        "youtube_publish_at": iso(row.youtube_publish_at),
        "youtube_privacy": row.youtube_privacy,
        "video_state": row.video_state,
        "video_problem": row.video_problem,
        "fingerprint_key": row.fingerprint_key,
        "next_check_at": iso(row.next_check_at),
        "metadata": dict(row.video_metadata or {}),
    }


def describe(kind: ChangeKind, target: Mapping[str, Any], previous: Mapping[str, Any]) -> str:
    """One human line for the timeline."""
    if kind is ChangeKind.RESCHEDULE:
        return f"publishAt {previous.get('publish_at')} -> {target.get('publish_at')}"
    if kind is ChangeKind.UNPUBLISH:
        return "unpublish: private, no publishAt"
    if kind is ChangeKind.DELETE:
        return "delete the video on YouTube"
    changed = sorted(target.get("changed", ()))
    return "update " + ", ".join(changed)


def applied_fields(
    row: Schedule,
    kind: ChangeKind,
    target: Mapping[str, Any],
    answer: RemoteVideo | None,
    now: datetime,
    previous_check_at: object = None,
) -> None:
    """What YouTube now holds, on the (locked) row: the change is applied. Verification
    (``next_check_at``) resumes: at once after a reschedule or an update (when the video was
    followed before it), never after an unpublish or delete (final states)."""
    row.video_problem = None
    row.checked_at = now
    row.updated_at = now
    if kind is ChangeKind.RESCHEDULE:
        row.youtube_publish_at = answer.publish_at if answer else parse_iso(target["publish_at"])
        row.youtube_privacy = answer.privacy_status if answer else "private"
        if answer is None or answer.upload_status == "processed" or row.video_state is None:
            row.video_state = VideoState.READY.value
        elif row.video_state not in (VideoState.UPLOADED, VideoState.PROCESSING):
            row.video_state = VideoState.PROCESSING.value
        row.next_check_at = now  # the next processor run confirms the new plan
    elif kind is ChangeKind.UNPUBLISH:
        row.next_check_at = None  # final: the processor no longer checks it
        row.youtube_publish_at = None
        row.youtube_privacy = "private"
        gone = answer is None
        row.video_state = (VideoState.DELETED if gone else VideoState.UNPUBLISHED).value
    elif kind is ChangeKind.DELETE:
        row.next_check_at = None
        row.youtube_publish_at = None
        row.youtube_privacy = None
        row.video_state = VideoState.DELETED.value
    else:
        row.video_metadata = dict(target["metadata"])
        # Checked again at the next run when it was followed; never the old value itself: it
        # may be the lease of a check that held the row when the change was recorded, and
        # restoring it would let that stale check write (its fence).
        row.next_check_at = None if parse_iso(previous_check_at) is None else now


def _day_has_room(days: Mapping[date, DailyLimit], row: Schedule, limit: int) -> bool:
    day = days[row.publish_date]
    return bool(getattr(day, count_column(row.video_type)) < limit)


def put_back_cancel(
    session: Session,
    row: Schedule,
    days: Mapping[date, DailyLimit],
    previous: Mapping[str, Any],
    *,
    daily_limit: int,
    reason: str,
    now: datetime,
) -> str | None:
    """Undo a cancel's local side on the locked row: take its slot, day count and content key
    back. When the slot was booked meanwhile (or its day is full), the row stays cancelled and
    is marked ``mismatch``: the video still publishes there. Returns that problem, or None."""
    holder = changes_db.slot_holder(
        session.connection(), row.channel_id, row.scheduled_publish_time
    )
    if holder is None and _day_has_room(days, row, daily_limit):
        ledger.count_up(days[row.publish_date], row.video_type)
        row.upload_status = "completed"
        row.slot_key = row.scheduled_publish_time
        key = previous.get("fingerprint_key")
        if key and bookings.fingerprint_holder(session, row.channel_id, key) is None:
            row.fingerprint_key = key
        _restore_video_fields(row, previous)
        row.updated_at = now
        bookings.flush_schedule(session, row.scheduled_publish_time)
        return None
    taken_by = f"schedule #{holder}" if holder is not None else "other schedules (day full)"
    problem = (
        f"cancel failed on YouTube ({reason}): the video still publishes at "
        f"{iso(row.scheduled_publish_time)}, but that slot is now held by {taken_by}; "
        "cancel again or move one of them"
    )
    row.video_state = VideoState.MISMATCH.value
    row.video_problem = problem
    row.updated_at = now
    return problem


def put_back_reschedule(
    session: Session,
    row: Schedule,
    days: Mapping[date, DailyLimit],
    previous: Mapping[str, Any],
    *,
    old_day: date,
    move: Move,
    daily_limit: int,
    reason: str,
    now: datetime,
) -> str | None:
    """Undo a reschedule's local side on the locked row: move it back to its old slot (the
    ledger's own move). When the old slot was booked meanwhile (or its day is full), the row
    keeps the new slot and is marked ``mismatch``: YouTube still publishes at the old time.
    Returns that problem, or None."""
    old = parse_iso(previous["publish_at"])
    assert old is not None
    holder = changes_db.slot_holder(session.connection(), row.channel_id, old)
    limit_ok = old_day == row.publish_date or bool(
        getattr(days[old_day], count_column(row.video_type)) < daily_limit
    )
    if holder in (None, row.id) and limit_ok:
        move(session, row, old, old_day, days, now)
        _restore_video_fields(row, previous)
        return None
    taken_by = f"schedule #{holder}" if holder is not None else "other schedules (day full)"
    problem = (
        f"reschedule failed on YouTube ({reason}): YouTube still publishes at {iso(old)}, but "
        f"that slot is now held by {taken_by}; this schedule keeps {iso(row.slot_key)}: "
        "reschedule again or move one of them"
    )
    row.video_state = VideoState.MISMATCH.value
    row.video_problem = problem
    row.updated_at = now
    return problem


def _restore_video_fields(row: Schedule, previous: Mapping[str, Any]) -> None:
    row.video_state = previous.get("video_state")
    row.video_problem = previous.get("video_problem")


def held_from_checks(row: Schedule, now: datetime, until: datetime) -> None:
    """While a change is pending, verification leaves the row alone: ``next_check_at`` moves
    past the change's lease, which also fences a check in flight (it writes nothing)."""
    if row.video_state is not None or row.next_check_at is not None:
        row.next_check_at = max(until, now)


def checks_resume(row: Schedule, now: datetime) -> None:
    """After a change was put back: check the video at the next processor run (what does
    YouTube hold now?), unless its state is final."""
    if row.video_state is not None and not VideoState(row.video_state).is_final:
        row.next_check_at = now


def merged_metadata(
    row: Schedule,
    *,
    title: str | None,
    description: str | None,
    tags: tuple[str, ...] | None,
    thumbnail_path: str | None,
) -> tuple[VideoMetadata, list[str]]:
    """The row's metadata with the given fields replaced (validated), and which changed."""
    stored = dict(row.video_metadata or {})
    changes: dict[str, Any] = {
        "title": title,
        "description": description,
        "tags": None if tags is None else list(tags),
        "thumbnail_path": thumbnail_path,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    meta = VideoMetadata.from_json({**stored, **changes})
    meta.check_files()
    return meta, sorted(changes)
