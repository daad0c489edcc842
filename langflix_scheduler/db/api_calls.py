"""The quota ledger (``youtube_api_calls``): one row per YouTube API call that was, or may have
been, sent, on the Pacific-time quota day it was sent.

Who writes it: the processor, through the uploader's ``on_call`` report, *before* each
quota-bearing request goes out (``videos.insert`` initiations, re-sent ones included,
``thumbnails.set``, ``playlistItems.insert``, ``playlistItems.list``), each call in its own short
transaction that locks only the quota-day row it charges, so no lock is ever held across the
network call. An uploader that cannot report its calls gets its calls recorded when its upload
completes (:func:`record_calls_at_completion`), as before the ledger existed. Calls made
outside any schedule (``auth --check``'s ``channels.list``) are written the same way by
``ScheduleManager.record_api_call`` (``schedule_id`` NULL).

What it guarantees: a call that may have been sent is counted (the row is committed before the
request is sent; a row that cannot be written stops the request), so ``used`` never counts less
than YouTube charged; a process killed between the commit and the send over-counts by that one
call. A call YouTube refused because the quota was spent is marked ``refused`` with cost 0
(:func:`refuse_call`): YouTube does not charge it.

``youtube_quota_usage.used`` equals the sum of ``cost`` per (api_project, quota_date, bucket)
(:func:`used_by_quota_day`), which is what ``recalculate_quota`` recounts. Every function takes a
``Connection`` and never commits; the caller owns the transaction. Lock order: the quota-day row
(created if absent) first, then the ledger row.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, and_, bindparam, func, insert, literal, select, update
from sqlalchemy.engine import Connection

from ..errors import QuotaExceededError
from .locking import lock_quota_counts
from .models import ApiCall, QuotaUsage

__all__ = [
    "CallRecord",
    "attempted_operations",
    "call_exists",
    "cost_by_schedule",
    "insert_rows",
    "new_call_key",
    "record_call",
    "record_calls",
    "refuse_call",
    "used_by_quota_day",
]

SENT = "sent"
REFUSED = "refused"

_CALLS: Table = ApiCall.__table__  # type: ignore[assignment]
_QUOTA: Table = QuotaUsage.__table__  # type: ignore[assignment]
_CALL_KEY_BYTES = 16  # 32 hex characters, the column's width


def new_call_key() -> str:
    """A fresh random key for one call (unique: a lost answer is looked up by it)."""
    return secrets.token_hex(_CALL_KEY_BYTES)


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """One ledger row to write.

    Attributes:
        api_project: the Google Cloud project whose quota the call spends.
        quota_date: the Pacific-time day the call is sent on.
        bucket: the quota bucket it is charged to.
        operation: the API method (``videos.insert``, ``playlistItems.list``, ...).
        cost: units charged.
        sent_at: when it was (about to be) sent.
        call_key: unique key (:func:`new_call_key`).
        schedule_id: the schedule it was made for, if any.
        channel_id: that schedule's channel.
        worker_id: the lease token (or worker id) that made it.
    """

    api_project: str
    quota_date: date
    bucket: str
    operation: str
    cost: int
    sent_at: datetime
    call_key: str
    schedule_id: int | None = None
    channel_id: str | None = None
    worker_id: str | None = None


_ADD_USED = (
    update(_QUOTA)
    .where(
        _QUOTA.c.api_project == bindparam("k_project"),
        _QUOTA.c.quota_date == bindparam("k_qday"),
        _QUOTA.c.bucket == bindparam("k_bucket"),
    )
    .values(used=_QUOTA.c.used + bindparam("k_amount"))
)
_TAKE_USED = (
    update(_QUOTA)
    .where(
        _QUOTA.c.api_project == bindparam("k_project"),
        _QUOTA.c.quota_date == bindparam("k_qday"),
        _QUOTA.c.bucket == bindparam("k_bucket"),
        _QUOTA.c.used >= bindparam("k_amount"),
    )
    .values(used=_QUOTA.c.used - bindparam("k_amount"))
)


def record_call(
    conn: Connection, dialect: str, call: CallRecord, limits: Mapping[str, int]
) -> None:
    """Append ``call`` and add its cost to ``used`` of its quota-day row (locked first, created
    if absent). Raises whatever the database raises; nothing is written then."""
    record_calls(conn, dialect, [call], limits)


def record_calls(
    conn: Connection,
    dialect: str,
    calls: Iterable[CallRecord],
    limits: Mapping[str, int],
    *,
    within_limit: bool = False,
) -> None:
    """:func:`record_call` for several calls of one API project (quota rows locked sorted).

    ``within_limit``: refuse (``QuotaExceededError``, nothing written) when the calls do not
    fit beside what the quota day already holds (``reserved + used``): the rule for calls that
    nothing reserved in advance (verification, changes of plan, reconcile), so they never eat
    quota that booked uploads reserved."""
    calls = list(calls)
    if not calls:
        return
    projects = {c.api_project for c in calls}
    for project in sorted(projects):
        mine = [c for c in calls if c.api_project == project]
        held = lock_quota_counts(
            conn, dialect, project, {(c.quota_date, c.bucket) for c in mine}, limits
        )
        if within_limit:
            _check_room(mine, held, limits)
    insert_rows(conn, calls)
    totals: dict[tuple[str, date, str], int] = {}
    for c in calls:
        key = (c.api_project, c.quota_date, c.bucket)
        totals[key] = totals.get(key, 0) + c.cost
    for (project, qday, bucket), amount in sorted(totals.items()):
        if amount:
            conn.execute(
                _ADD_USED,
                {"k_project": project, "k_qday": qday, "k_bucket": bucket, "k_amount": amount},
            )


def _check_room(
    calls: Iterable[CallRecord],
    held: Mapping[tuple[date, str], tuple[int, int]],
    limits: Mapping[str, int],
) -> None:
    wanted: dict[tuple[date, str], int] = {}
    for c in calls:
        wanted[(c.quota_date, c.bucket)] = wanted.get((c.quota_date, c.bucket), 0) + c.cost
    for (qday, bucket), amount in sorted(wanted.items()):
        reserved, used = held[(qday, bucket)]
        limit = limits.get(bucket)
        if limit is not None and reserved + used + amount > limit:
            raise QuotaExceededError(
                f"quota:{bucket}", qday, used=reserved + used, limit=limit, requested=amount
            )


def insert_rows(conn: Connection, calls: Iterable[CallRecord]) -> None:
    """Append ledger rows only: for a caller that adds their cost to ``used`` itself, in the
    same transaction, under the quota-row locks it already holds."""
    calls = list(calls)
    if not calls:
        return
    conn.execute(
        insert(_CALLS),
        [
            {
                "api_project": c.api_project,
                "quota_date": c.quota_date,
                "bucket": c.bucket,
                "operation": c.operation,
                "cost": c.cost,
                "schedule_id": c.schedule_id,
                "channel_id": c.channel_id,
                "worker_id": c.worker_id,
                "sent_at": c.sent_at,
                "outcome": SENT,
                "call_key": c.call_key,
            }
            for c in calls
        ],
    )


def call_exists(conn: Connection, call_key: str) -> bool:
    """Was the call with ``call_key`` written (for a write whose answer was lost)?"""
    return (
        conn.execute(select(_CALLS.c.id).where(_CALLS.c.call_key == call_key)).first() is not None
    )


def refuse_call(conn: Connection, dialect: str, call_key: str, limits: Mapping[str, int]) -> bool:
    """Mark the call ``call_key`` as refused by YouTube for quota: cost 0, its cost taken off
    ``used``. Idempotent; False when there is no such ``sent`` call."""
    row = conn.execute(
        select(_CALLS.c.api_project, _CALLS.c.quota_date, _CALLS.c.bucket).where(
            _CALLS.c.call_key == call_key, _CALLS.c.outcome == SENT
        )
    ).first()
    if row is None:
        return False
    lock_quota_counts(conn, dialect, row.api_project, [(row.quota_date, row.bucket)], limits)
    # Re-read under the quota row's lock: a concurrent refusal of the same call loses here.
    locked = conn.execute(
        select(_CALLS.c.id, _CALLS.c.cost).where(
            _CALLS.c.call_key == call_key, _CALLS.c.outcome == SENT
        )
    ).first()
    if locked is None:
        return False
    conn.execute(
        update(_CALLS)
        .where(_CALLS.c.id == locked.id, _CALLS.c.outcome == SENT)
        .values(outcome=REFUSED, cost=0)
    )
    if locked.cost:
        conn.execute(
            _TAKE_USED,
            {
                "k_project": row.api_project,
                "k_qday": row.quota_date,
                "k_bucket": row.bucket,
                "k_amount": int(locked.cost),
            },
        )
    return True


def used_by_quota_day(
    conn: Connection, start: date | None = None, end: date | None = None
) -> dict[tuple[str, date, str], int]:
    """The recount of ``used``: ledger cost per (api_project, quota_date, bucket), for quota
    days within ``start``..``end`` (inclusive; None: unbounded)."""
    conds = []
    if start is not None:
        conds.append(_CALLS.c.quota_date >= start)
    if end is not None:
        conds.append(_CALLS.c.quota_date <= end)
    rows = conn.execute(
        select(_CALLS.c.api_project, _CALLS.c.quota_date, _CALLS.c.bucket, func.sum(_CALLS.c.cost))
        .where(and_(*conds) if conds else literal(True))
        .group_by(_CALLS.c.api_project, _CALLS.c.quota_date, _CALLS.c.bucket)
    ).all()
    return {(r[0], _as_date(r[1]), r[2]): int(r[3] or 0) for r in rows}


def cost_by_schedule(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """What each schedule's calls cost, per bucket (buckets with cost 0 left out)."""
    wanted = sorted(set(ids))
    out: dict[int, dict[str, int]] = {i: {} for i in wanted}
    if not wanted:
        return out
    rows = conn.execute(
        select(_CALLS.c.schedule_id, _CALLS.c.bucket, func.sum(_CALLS.c.cost))
        .where(_CALLS.c.schedule_id.in_(wanted))
        .group_by(_CALLS.c.schedule_id, _CALLS.c.bucket)
    ).all()
    for schedule_id, bucket, total in rows:
        if int(total or 0) > 0:
            out[int(schedule_id)][bucket] = int(total)
    return {i: dict(sorted(b.items())) for i, b in out.items()}


def attempted_operations(conn: Connection, schedule_id: int) -> set[str]:
    """Operations some attempt sent, or may have sent, for ``schedule_id`` (refused ones left
    out). A ``playlistItems.insert`` here that is not a completed step is ambiguous: it must be
    checked with ``playlistItems.list`` before it is sent again."""
    rows = conn.execute(
        select(_CALLS.c.operation)
        .where(_CALLS.c.schedule_id == schedule_id, _CALLS.c.outcome == SENT)
        .distinct()
    ).all()
    return {r[0] for r in rows}


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
