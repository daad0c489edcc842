"""The lock order, written once: every change to schedules and their counters goes through here.

Lock order (never violated, so no two transactions can wait for each other in a cycle):

0. the upload-channel row (``youtube_upload_channels``), taken only by the processor's claim;
1. the channel-day counter row (``youtube_daily_limits``, one per channel and local day; a
   change touching two days locks both, in key order);
2. the quota-day counter rows (``youtube_quota_usage``), sorted by
   ``(api_project, quota_date, bucket)``;
3. the schedule rows, by id;
4. a schedule's change-of-plan rows (``youtube_video_changes``, see
   :mod:`langflix_scheduler.changes`), after their schedule row, never locked on their own
   while another lock of this list is wanted.

A transaction that takes more than one of these takes them in this order. Rows that may not
exist yet are created race-free first (insert-if-absent, then ``SELECT ... FOR UPDATE``; see
:mod:`langflix_scheduler.db.locking`). Because which counter rows to lock depends on the
schedule row, a change first *peeks* at the row without locks, locks the counters it names, then
locks the schedule and *re-checks* that the row still names the same counters; if it moved, the
transaction is rolled back and tried again, a bounded number of times.

:func:`change_schedule` is that protocol for one schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from .db.counters import count_column
from .db.engine import Database
from .db.locking import lock_day, lock_quota_rows
from .db.models import DailyLimit, QuotaUsage, Schedule
from .db.schedules import lock_schedule, peek_schedule
from .db.types import Session
from .errors import SchedulerError

__all__ = [
    "MAX_TRIES",
    "Apply",
    "change_schedule",
    "lock_counters",
    "count_down",
    "count_up",
    "release_reservation",
    "reserve",
]

#: How often a change is tried again when its schedule moved between the peek and the lock.
MAX_TRIES = 5

#: Edits a locked schedule row and its locked counter rows: the channel-day rows by local date,
#: the quota rows by ``(quota_date, bucket)``. It may raise to roll the transaction back.
Apply = Callable[
    [Session, Schedule, Mapping[date, DailyLimit], Mapping[tuple[date, str], QuotaUsage]], None
]


def _no_keys(_row: Schedule) -> Iterable[Any]:
    return ()


def change_schedule(
    db: Database,
    operation: str,
    schedule_id: int,
    *,
    limits: Mapping[str, int],
    allowed: Callable[[Schedule], bool],
    apply: Apply,
    new_keys: Callable[[Schedule], Iterable[tuple[date, str]]] = _no_keys,
    new_days: Callable[[Schedule], Iterable[date]] = _no_keys,
    peek: Callable[[], Schedule | None] | None = None,
    project: str | None = None,
    tries: int = MAX_TRIES,
    exhausted: Callable[[], Exception] | None = None,
    moved: Callable[[Schedule, Schedule], bool] | None = None,
) -> Schedule | None:
    """Change one schedule and its counters under locks in the global order (module docstring).

    1. *Peek* at the row without locks (``peek``, default: read it by id); None or refused by
       ``allowed`` (which may also raise) ends here with None.
    2. In one transaction: lock the channel-day rows (the row's day plus ``new_days``, sorted),
       then the quota rows of ``project`` (default: the row's) that the row reserves on its
       quota day plus ``new_keys``, sorted; then lock the schedule row.
    3. *Re-check*: a vanished row or one ``allowed`` refuses gives None; a row whose day, quota
       day or reservation moved since the peek (or that ``moved(seen, row)`` says changed in
       a way the change depends on) rolls back and starts over at 1.
    4. ``apply`` the change; flush; commit. Returns the changed row (detached, loaded).

    Raises:
        SchedulerError: the row kept moving for ``tries`` rounds (``exhausted()`` when given).
    """
    for _ in range(tries):
        if peek is not None:
            seen = peek()
        else:
            seen = db.run("read schedule", lambda s: peek_schedule(s, schedule_id), read_only=True)
        if seen is None or not allowed(seen):
            return None

        def txn(session: Session, seen: Schedule = seen) -> Schedule | bool | None:
            days = {
                d: lock_day(session, db.dialect, seen.channel_id, d)
                for d in sorted({seen.publish_date, *new_days(seen)})
            }
            keys = {(seen.quota_date, b) for b in (seen.reserved_quota or {})}
            keys |= set(new_keys(seen))
            quota = lock_quota_rows(session, db.dialect, project or seen.api_project, keys, limits)
            row = lock_schedule(session, schedule_id)
            if row is None or not allowed(row):
                return None
            if _counter_keys(row) != _counter_keys(seen) or (
                moved is not None and moved(seen, row)
            ):
                return False  # moved meanwhile: lock the right rows and try again
            apply(session, row, days, quota)
            session.flush()
            return row

        result = db.run(operation, txn)
        if result is not False:
            return result if isinstance(result, Schedule) else None
    if exhausted is not None:
        raise exhausted()
    raise SchedulerError(f"{operation}: schedule {schedule_id} kept changing; giving up")


def lock_counters(
    session: Session,
    dialect: str,
    days: Iterable[tuple[str, date]],
    quota: Iterable[tuple[str, date, str]],
    limits: Mapping[str, int],
) -> tuple[dict[tuple[str, date], DailyLimit], dict[tuple[str, date, str], QuotaUsage]]:
    """Lock (creating as needed) many counter rows in the global order: channel-day rows
    sorted by ``(channel, date)``, then quota rows sorted by ``(project, quota_date, bucket)``.
    For changes of many schedules at once (deferral pages, recount); the caller locks the
    schedule rows afterwards, by id."""
    locked_days = {k: lock_day(session, dialect, k[0], k[1]) for k in sorted(set(days))}
    keys = sorted(set(quota))
    locked_quota: dict[tuple[str, date, str], QuotaUsage] = {}
    for project in sorted({k[0] for k in keys}):
        rows = lock_quota_rows(
            session, dialect, project, [(k[1], k[2]) for k in keys if k[0] == project], limits
        )
        locked_quota.update({(project, qd, b): r for (qd, b), r in rows.items()})
    return locked_days, locked_quota


def _counter_keys(row: Schedule) -> tuple[Any, ...]:
    """What decides which counter rows a schedule's change must lock."""
    return (row.publish_date, row.quota_date, row.reserved_quota)


# -- counter edits on rows locked by change_schedule ------------------------------------------


def count_down(day: DailyLimit, video_type: str) -> None:
    """One booking of ``video_type`` fewer on a locked channel-day row (floored at 0)."""
    column = count_column(video_type)
    setattr(day, column, max(0, getattr(day, column) - 1))


def count_up(day: DailyLimit, video_type: str) -> None:
    """One booking of ``video_type`` more on a locked channel-day row."""
    column = count_column(video_type)
    setattr(day, column, getattr(day, column) + 1)


def release_reservation(
    quota: Mapping[tuple[date, str], QuotaUsage], quota_date: date, reserved: Mapping[str, int]
) -> None:
    """Give ``reserved`` back on ``quota_date``'s locked quota rows (floored at 0)."""
    for bucket, amount in reserved.items():
        q = quota[(quota_date, bucket)]
        q.reserved = max(0, q.reserved - int(amount))


def reserve(
    quota: Mapping[tuple[date, str], QuotaUsage], quota_date: date, reserved: Mapping[str, int]
) -> None:
    """Add ``reserved`` to ``quota_date``'s locked quota rows."""
    for bucket, amount in reserved.items():
        quota[(quota_date, bucket)].reserved += int(amount)
