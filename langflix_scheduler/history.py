"""A schedule's timeline: the entries its transitions write, and the merged view ``show ID`` reads.

The writers (manager, processor) build their entries here so that every kind says the same
thing in the same words; :func:`merge` turns what the events table holds, plus what a row
booked before the table existed still tells (``created_at``, ``uploaded_at``) and, optionally,
the schedule's quota-ledger calls, into :class:`~langflix_scheduler.reports.TimelineEvent`
values, oldest first. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from .db.timeline import ATTEMPT_PREFIX, RESUMING_NOTE, TimelineEntry
from .errors import InvalidScheduleError
from .reports import ApiCallRecord, TimelineEvent

__all__ = [
    "ACTOR_MAX_CHARS",
    "DEFAULT_ACTOR",
    "attempt",
    "booked",
    "cancelled",
    "check_actor",
    "merge",
    "problem",
    "rebooked",
    "rescheduled",
    "waiting",
]

#: Who made a change when the caller did not say (a call of the library API).
DEFAULT_ACTOR = "library"
#: The ``actor`` column's width.
ACTOR_MAX_CHARS = 128


def check_actor(value: object) -> str:
    """``value`` as who made a change (``requested_by``; None: :data:`DEFAULT_ACTOR`), else
    ``InvalidScheduleError``."""
    if value is None:
        return DEFAULT_ACTOR
    if not isinstance(value, str) or not value.strip() or len(value) > ACTOR_MAX_CHARS:
        raise InvalidScheduleError(
            "requested_by", f"must be a non-empty string of <= {ACTOR_MAX_CHARS} characters"
        )
    return value


def _when(value: datetime) -> str:
    """A publish or retry time in a detail line: UTC, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def booked(schedule_id: int, *, at: datetime, publish: datetime, actor: str) -> TimelineEntry:
    """A new booking."""
    detail = f"publish at {_when(publish)}"
    return TimelineEntry(schedule_id=schedule_id, at=at, kind="booked", actor=actor, detail=detail)


def rebooked(schedule_id: int, *, at: datetime, publish: datetime, actor: str) -> TimelineEntry:
    """A ``failed`` schedule booked again (``retry_failed``)."""
    detail = f"booked again after failing; publish at {_when(publish)}, attempts reset"
    return TimelineEntry(schedule_id=schedule_id, at=at, kind="booked", actor=actor, detail=detail)


def rescheduled(
    schedule_id: int, *, at: datetime, old: datetime, new: datetime, actor: str
) -> TimelineEntry:
    """A move of the publish time (before upload)."""
    detail = f"{_when(old)} -> {_when(new)}"
    return TimelineEntry(
        schedule_id=schedule_id, at=at, kind="rescheduled", actor=actor, detail=detail
    )


def cancelled(schedule_id: int, *, at: datetime, publish: datetime, actor: str) -> TimelineEntry:
    """A cancellation before upload."""
    detail = f"was to publish at {_when(publish)}; slot, day count and quota freed"
    return TimelineEntry(
        schedule_id=schedule_id, at=at, kind="cancelled", actor=actor, detail=detail
    )


def attempt(
    schedule_id: int, *, at: datetime, number: int, worker: str, resuming: bool
) -> TimelineEntry:
    """A claim by a processor: attempt ``number`` starts."""
    detail = f"{ATTEMPT_PREFIX}{number}" + (RESUMING_NOTE if resuming else "")
    return TimelineEntry(
        schedule_id=schedule_id, at=at, kind="attempt", actor=worker, detail=detail
    )


def waiting(
    schedule_id: int,
    *,
    kind: str,
    at: datetime,
    error: str,
    next_at: datetime | None,
    worker: str,
) -> TimelineEntry:
    """Back to ``scheduled`` to wait: ``retry``, ``deferred`` or ``rescued``."""
    detail = error if next_at is None else f"{error}; next attempt at {_when(next_at)}"
    return TimelineEntry(schedule_id=schedule_id, at=at, kind=kind, actor=worker, detail=detail)


def problem(schedule_id: int, *, kind: str, at: datetime, error: str, worker: str) -> TimelineEntry:
    """Given up: ``failed`` or ``needs_review``."""
    return TimelineEntry(schedule_id=schedule_id, at=at, kind=kind, actor=worker, detail=error)


def merge(
    entries: Sequence[TimelineEntry],
    *,
    created_at: datetime,
    uploaded_at: datetime | None,
    publish: datetime,
    calls: Iterable[ApiCallRecord] = (),
) -> list[TimelineEvent]:
    """The whole timeline, oldest first (ties keep the order they were written in).

    A schedule booked before the events table existed has no ``booked`` entry: its
    ``created_at`` stands in; likewise ``uploaded_at`` for ``uploaded``. Quota-ledger calls
    become ``api_call`` events.
    """
    kinds = {e.kind for e in entries}
    out = [TimelineEvent(at=e.at, kind=e.kind, actor=e.actor, detail=e.detail) for e in entries]
    if "booked" not in kinds:
        detail = f"publish at {_when(publish)} (from the schedule row)"
        out.append(TimelineEvent(at=created_at, kind="booked", actor=None, detail=detail))
    if uploaded_at is not None and "uploaded" not in kinds:
        detail = "(from the schedule row)"
        out.append(TimelineEvent(at=uploaded_at, kind="uploaded", actor=None, detail=detail))
    for call in calls:
        detail = f"{call.operation}: {call.cost} {call.bucket} ({call.outcome})"
        out.append(
            TimelineEvent(at=call.sent_at, kind="api_call", actor=call.worker_id, detail=detail)
        )
    ranked = sorted(enumerate(out), key=lambda p: (p[1].at.astimezone(UTC), p[0]))
    return [e for _, e in ranked]
