"""Read models for dashboards and exporters: the calendar, quota usage, stored totals.

Returned by :meth:`ScheduleManager.calendar`, :meth:`ScheduleManager.quota_usage`,
:meth:`ScheduleManager.api_calls`, :meth:`ScheduleManager.record_api_call`,
:meth:`ScheduleManager.known_names` and
:meth:`ScheduleManager.stored_totals`. Pure data; :func:`build_calendar` is pure arithmetic on
rows already read (no I/O).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .domain import UploadStatus, VideoType
from .slots import slots_on_day

__all__ = [
    "ApiCallRecord",
    "CalendarDay",
    "CalendarEntry",
    "CalendarSlot",
    "KnownNames",
    "QuotaDayUsage",
    "RecordedApiCall",
    "StoredTotals",
    "TimelineEvent",
    "build_calendar",
    "json_default",
]

#: Statuses that hold their slot (``slot_key`` set).
_HOLDING = frozenset(
    {
        UploadStatus.SCHEDULED.value,
        UploadStatus.UPLOADING.value,
        UploadStatus.COMPLETED.value,
        UploadStatus.NEEDS_REVIEW.value,
    }
)


class CalendarEntry(NamedTuple):
    """A schedule shown on the calendar (every status but ``cancelled``)."""

    id: int
    video_type: VideoType
    publish_time: datetime
    status: UploadStatus
    title: str
    bytes_uploaded: int
    bytes_total: int | None
    next_attempt_at: datetime | None
    #: True while the schedule keeps its slot (failed schedules freed theirs).
    holds_slot: bool

    @property
    def progress(self) -> float | None:
        """Upload progress in [0, 1] while uploading with a known size, else None."""
        if self.status is not UploadStatus.UPLOADING or not self.bytes_total:
            return None
        return min(1.0, self.bytes_uploaded / self.bytes_total)


class CalendarSlot(NamedTuple):
    """One publish instant of a channel day.

    ``types`` are the video types configured at this local time (empty: an off-cadence time
    booked exactly). ``free`` is True when no schedule holds the instant; ``bookable`` when it is
    free and inside the booking window (now + min lead time .. the horizon).
    """

    at: datetime
    local: datetime
    types: tuple[VideoType, ...]
    entries: tuple[CalendarEntry, ...]
    free: bool
    bookable: bool


@dataclass(frozen=True)
class CalendarDay:
    """One channel day (in the channel's time zone) and its slots, in time order."""

    day: date
    slots: tuple[CalendarSlot, ...]
    counts: Mapping[VideoType, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QuotaDayUsage:
    """One bucket of one Pacific-time quota day for one API project."""

    api_project: str
    quota_date: date
    bucket: str
    reserved: int
    used: int
    limit: int

    @property
    def free(self) -> int:
        """What is neither reserved nor used (never negative)."""
        return max(0, self.limit - self.reserved - self.used)


@dataclass(frozen=True)
class ApiCallRecord:
    """One row of the quota ledger (a charged YouTube API call)."""

    id: int
    operation: str
    bucket: str
    cost: int
    quota_date: date
    sent_at: datetime
    outcome: str
    worker_id: str | None


@dataclass(frozen=True, kw_only=True)
class TimelineEvent:
    """One line of a schedule's life (:meth:`ScheduleManager.timeline`, ``show ID``).

    Attributes:
        at: when it happened (aware, UTC).
        kind: what happened: ``booked``, ``rescheduled``, ``cancelled``, ``attempt``,
            ``retry``, ``deferred``, ``rescued``, ``failed``, ``needs_review``, ``uploaded``,
            the after-upload states (``processing``, ``ready``, ``published``, ...), changes of
            plan, ``api_call`` (a quota-ledger call, when asked for); newer versions may add kinds.
        actor: who made it: a worker id, ``cli``, ``library``, a caller-given name; None when
            it was read from an older row.
        detail: one human line (publish time, old -> new time, the error and the next attempt).
    """

    at: datetime
    kind: str
    actor: str | None = None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordedApiCall:
    """One API call outside any schedule, written to the quota ledger by
    :meth:`ScheduleManager.record_api_call` (its cost already added to ``used``).

    Attributes:
        call_key: the ledger row's unique key (:meth:`ScheduleManager.refuse_api_call` takes it).
        api_project: the Google Cloud project whose quota it spends.
        channel: the channel it was made for.
        operation: the API method (``channels.list``, ...).
        bucket: the quota bucket charged.
        cost: units charged.
        quota_date: the Pacific-time quota day it was sent on.
        sent_at: when it was recorded (just before it was sent).
    """

    call_key: str
    api_project: str
    channel: str
    operation: str
    bucket: str
    cost: int
    quota_date: date
    sent_at: datetime


@dataclass(frozen=True)
class KnownNames:
    """Channels and API projects that appear in the database, plus the configured ones."""

    channels: tuple[str, ...]
    api_projects: tuple[str, ...]


@dataclass(frozen=True)
class StoredTotals:
    """Totals read from the database, for metrics (see :mod:`langflix_scheduler.web.metrics`).

    Attributes:
        schedules: ``(channel, status) -> count``.
        runs: ``outcome -> {"runs": n, "claimed": n, "uploaded": n, ...}``.
        api_calls: ``(api_project, operation, outcome) -> (calls, cost)``.
        due_lag_seconds: how long the oldest due ``scheduled`` schedule has been due (0 if none).
        due_count: how many ``scheduled`` schedules are due now.
    """

    schedules: Mapping[tuple[str, str], int]
    runs: Mapping[str, Mapping[str, int]]
    api_calls: Mapping[tuple[str, str, str], tuple[int, int]]
    due_lag_seconds: float
    due_count: int


def build_calendar(
    rows: Iterable[Sequence[Any]],
    *,
    start: date,
    end: date,
    zone: ZoneInfo,
    publish_times: Mapping[VideoType, Sequence[time]],
    window: tuple[datetime, datetime],
) -> list[CalendarDay]:
    """Days ``start..end`` (inclusive), each with its configured slots and its schedules.

    ``rows`` are :func:`langflix_scheduler.db.dashboard.calendar_rows` tuples; ``window`` the
    bookable ``[earliest, end)`` of publish times.
    """
    by_instant = _entries_by_instant(rows)
    by_day = _instants_by_day(by_instant, start, end, zone)
    days: list[CalendarDay] = []
    day = start
    while day <= end:
        days.append(
            _calendar_day(day, by_instant, by_day.get(day, set()), zone, publish_times, window)
        )
        day += timedelta(days=1)
    return days


def _entries_by_instant(rows: Iterable[Sequence[Any]]) -> dict[datetime, list[CalendarEntry]]:
    by_instant: dict[datetime, list[CalendarEntry]] = {}
    types = {v.value: v for v in VideoType}
    statuses = {v.value: v for v in UploadStatus}
    for sid, vtype, at, status, done, total, title, retry_at in rows:
        entry = CalendarEntry(
            sid,
            types[vtype],
            at,
            statuses[status],
            title or "",
            done or 0,
            total,
            retry_at,
            status in _HOLDING,
        )
        same = by_instant.get(at)
        if same is None:
            by_instant[at] = [entry]
        else:
            same.append(entry)
    return by_instant


def _instants_by_day(
    by_instant: Mapping[datetime, object], start: date, end: date, zone: ZoneInfo
) -> dict[date, set[datetime]]:
    """Which channel day each booked instant falls on: one pass over the sorted instants against
    the days' UTC boundaries (no time-zone conversion per schedule)."""
    bounds = []
    day = start
    while day <= end + timedelta(days=1):
        bounds.append((day, datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)))
        day += timedelta(days=1)
    by_day: dict[date, set[datetime]] = {}
    i = 0
    for at in sorted(by_instant):
        while i + 1 < len(bounds) and at >= bounds[i + 1][1]:
            i += 1
        if bounds[0][1] <= at < bounds[-1][1]:
            by_day.setdefault(bounds[i][0], set()).add(at)
    return by_day


def _calendar_day(
    day: date,
    by_instant: Mapping[datetime, list[CalendarEntry]],
    booked: set[datetime],
    zone: ZoneInfo,
    publish_times: Mapping[VideoType, Sequence[time]],
    window: tuple[datetime, datetime],
) -> CalendarDay:
    """One day: its configured slots (free or not) and every booked instant."""
    earliest, latest = window
    types_at: dict[datetime, list[VideoType]] = {}
    for vt in VideoType:
        for instant in slots_on_day(day, publish_times.get(vt, ()), zone):
            types_at.setdefault(instant, []).append(vt)
    slots = []
    counts: dict[VideoType, int] = {}
    for instant in sorted(set(types_at) | booked):
        entries = tuple(by_instant.get(instant, ()))
        free = not any(e.holds_slot for e in entries)
        for e in entries:
            if e.holds_slot:
                counts[e.video_type] = counts.get(e.video_type, 0) + 1
        slots.append(
            CalendarSlot(
                at=instant,
                local=instant.astimezone(zone),
                types=tuple(types_at.get(instant, ())),
                entries=entries,
                free=free,
                bookable=free and earliest <= instant < latest,
            )
        )
    return CalendarDay(day=day, slots=tuple(slots), counts=counts)


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for the library's types: what ``--json`` prints and the web
    dashboard's JSON endpoints return (datetimes ISO 8601, durations in seconds, enums by value,
    dataclasses as objects, sets sorted)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
