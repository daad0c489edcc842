"""The lock order, written once: every change to schedules and their counters goes through here.

Lock order (never violated, so no two transactions can wait for each other in a cycle):

0. the upload-channel row (``youtube_upload_channels``), taken only by the processor's claim;
1. the channel-day counter row (``youtube_daily_limits``, one per channel and local day; a
   change touching two days locks both, in key order);
2. the quota-day counter rows (``youtube_quota_usage``), sorted by
   ``(api_project, quota_date, bucket)``;
3. the schedule rows, by id.

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

from sqlalchemy.orm import Session

from .db.engine import Database
from .db.locking import lock_day, lock_quota_rows
from .db.models import QuotaUsage, Schedule
from .db.schedules import lock_schedule, peek_schedule
from .errors import SchedulerError

__all__ = ["MAX_TRIES", "Apply", "change_schedule"]

#: How often a change is tried again when its schedule moved between the peek and the lock.
MAX_TRIES = 5

#: Edits a locked schedule row and its locked counter rows (channel day, quota rows by key).
Apply = Callable[[Session, Schedule, Any, Mapping[tuple[date, str], QuotaUsage]], None]


def change_schedule(
    db: Database,
    operation: str,
    schedule_id: int,
    *,
    limits: Mapping[str, int],
    allowed: Callable[[Schedule], bool],
    new_keys: Callable[[Schedule], Iterable[tuple[date, str]]],
    apply: Apply,
    tries: int = MAX_TRIES,
) -> Schedule | None:
    """Change one schedule and its counters under locks in the global order.

    Reads the row first to learn which counter rows to lock, locks the channel-day row, then
    the quota rows (its current quota day's reserved buckets plus ``new_keys``), sorted, then
    the schedule row, and re-checks that nothing moved meanwhile. Returns the changed row, or
    None when ``allowed`` refuses it (a fence failed: someone else owns it now).

    Raises:
        SchedulerError: the row kept moving for ``tries`` rounds.
    """
    for _ in range(tries):
        peek = db.run("read schedule", lambda s: peek_schedule(s, schedule_id), read_only=True)
        if peek is None or not allowed(peek):
            return None

        def txn(session: Session, peek: Schedule = peek) -> Schedule | bool | None:
            day = lock_day(session, db.dialect, peek.channel_id, peek.publish_date)
            keys = {(peek.quota_date, b) for b in (peek.reserved_quota or {})}
            keys |= set(new_keys(peek))
            quota = lock_quota_rows(session, db.dialect, peek.api_project, keys, limits)
            row = lock_schedule(session, schedule_id)
            if row is None or not allowed(row):
                return None
            if _counter_keys(row) != _counter_keys(peek):
                return False  # moved meanwhile: lock the right rows and try again
            apply(session, row, day, quota)
            session.flush()
            return row

        result = db.run(operation, txn)
        if result is not False:
            return result if isinstance(result, Schedule) else None
    raise SchedulerError(f"{operation}: schedule {schedule_id} kept changing; giving up")


def _counter_keys(row: Schedule) -> tuple[Any, ...]:
    """What decides which counter rows a schedule's change must lock."""
    return (row.publish_date, row.quota_date, row.reserved_quota)
