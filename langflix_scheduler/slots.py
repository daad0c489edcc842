"""Publish-slot arithmetic in the channel's time zone. Pure functions, no I/O.

A channel has, per video type, a list of local wall-clock publish times (``publish_times``). The
slots of a channel day are those times on that date in the channel's IANA time zone, converted to
UTC. Daylight-saving transitions are handled so that every slot is a real, unique instant:

* **spring forward** (a local time that does not exist, e.g. 02:30 on the day clocks jump from
  02:00 to 03:00): the slot is shifted forward by the length of the gap (02:30 -> 03:30), which is
  what the wall clock reads at that instant; if that collides with another configured time of the
  day, it is taken once.
* **fall back** (a local time that happens twice, e.g. 01:30 on the day clocks go from 02:00 back
  to 01:00): the slot is the first occurrence, taken once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ._time import ensure_aware

__all__ = [
    "channel_date_of",
    "ensure_aware",
    "iter_slots",
    "slots_on_day",
]


def channel_date_of(instant: datetime, tz: ZoneInfo) -> date:
    """The channel day (local date in ``tz``) that ``instant`` falls on."""
    return ensure_aware(instant).astimezone(tz).date()


def _local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    # fold=0: for an ambiguous time the first occurrence; for a nonexistent one the offset in
    # force before the transition, which lands the instant just after the gap (shift forward).
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=0), tzinfo=tz)
    return local.astimezone(UTC)


def slots_on_day(day: date, times: Sequence[time], tz: ZoneInfo) -> list[datetime]:
    """The UTC instants of the configured ``times`` on channel day ``day``, sorted, unique.

    A shifted spring-forward slot that leaves the day (impossible for real zones, guarded anyway)
    is dropped.
    """
    out: set[datetime] = set()
    for wall in times:
        instant = _local_to_utc(day, wall, tz)
        if instant.astimezone(tz).date() == day:
            out.add(instant)
    return sorted(out)


def iter_slots(
    start: datetime, end: datetime, times: Sequence[time], tz: ZoneInfo
) -> Iterator[tuple[date, datetime]]:
    """Yield ``(channel_day, utc_instant)`` for each slot in ``[start, end)``, ascending."""
    start = ensure_aware(start)
    end = ensure_aware(end)
    if not times or start >= end:
        return
    day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    while day <= last_day:
        for instant in slots_on_day(day, times, tz):
            if start <= instant < end:
                yield day, instant
        day += timedelta(days=1)
