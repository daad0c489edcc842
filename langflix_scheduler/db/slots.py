"""The slot search's one read: booked instants, channel-day counters and quota counters of a
channel's horizon in ONE round trip (a UNION ALL of three branches), built once per shape.

Three branches:

* ``s``: booked instants in [start, end) on the channel days that still have room for the
  video type (a counter row below the limit), joined day by day through the
  (channel_id, publish_date) index. Full days are skipped by the search anyway, and a day
  without a counter row holds no schedule (every reservation creates the row; the counters are
  what reservations trust too, and ``recalculate_quota`` repairs them). A *windowed* statement
  keeps only the first ``window_days`` such days, so a busy horizon does not ship every booked
  instant when the first free slot is near;
* ``d``: every counter row of the channel days in the horizon (at most ``horizon_days``);
* ``q``: every quota row of the project's quota days in the horizon.

Rows are ``(kind, ts, day, bucket, a, b)``: ``("s", instant, ...)``,
``("d", None, publish_date, None, final_count, short_count)`` and
``("q", None, quota_date, bucket, reserved, used)``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, cast, literal, null, select, union_all
from sqlalchemy.engine import Connection

from .models import DailyLimit, QuotaUsage, Schedule, UTCDateTime

__all__ = ["snapshot_rows", "snapshot_statement"]


@functools.cache
def snapshot_statement(count_column: str, window_days: int | None) -> Any:
    """The snapshot query for the day counter ``count_column`` (bound parameters: ``channel``,
    ``start``, ``end``, ``d0``, ``d1``, ``project``, ``q0``, ``q1``, ``day_limit``); with
    ``window_days``, the booked instants of only the first ``window_days`` days with room."""
    channel = bindparam("channel", type_=String(64))
    d0, d1 = bindparam("d0", type_=Date), bindparam("d1", type_=Date)
    with_room = (
        select(DailyLimit.publish_date.label("publish_date"))
        .where(
            DailyLimit.channel_id == channel,
            DailyLimit.publish_date >= d0,
            DailyLimit.publish_date <= d1,
            getattr(DailyLimit, count_column) < bindparam("day_limit"),
        )
        .order_by(DailyLimit.publish_date)
    )
    if window_days is not None:
        with_room = with_room.limit(window_days)
    open_days = with_room.subquery("open_days")
    slots = (
        select(
            literal("s").label("kind"),
            Schedule.slot_key.label("ts"),
            cast(null(), Date).label("day"),
            cast(null(), String(64)).label("bucket"),
            cast(null(), Integer).label("a"),
            cast(null(), Integer).label("b"),
        )
        .join_from(Schedule, open_days, Schedule.publish_date == open_days.c.publish_date)
        .where(
            Schedule.channel_id == channel,
            Schedule.slot_key >= bindparam("start", type_=UTCDateTime()),
            Schedule.slot_key < bindparam("end", type_=UTCDateTime()),
        )
    )
    days = select(
        literal("d"),
        cast(null(), UTCDateTime()),
        DailyLimit.publish_date,
        cast(null(), String(64)),
        DailyLimit.final_count,
        DailyLimit.short_count,
    ).where(
        DailyLimit.channel_id == channel,
        DailyLimit.publish_date >= d0,
        DailyLimit.publish_date <= d1,
    )
    quota = select(
        literal("q"),
        cast(null(), UTCDateTime()),
        QuotaUsage.quota_date,
        QuotaUsage.bucket,
        QuotaUsage.reserved,
        QuotaUsage.used,
    ).where(
        QuotaUsage.api_project == bindparam("project", type_=String(64)),
        QuotaUsage.quota_date >= bindparam("q0", type_=Date),
        QuotaUsage.quota_date <= bindparam("q1", type_=Date),
    )
    return union_all(slots, days, quota)


def snapshot_rows(
    conn: Connection, count_column: str, window_days: int | None, params: Mapping[str, Any]
) -> Sequence[Any]:
    """The rows of :func:`snapshot_statement` for ``params``."""
    return conn.execute(snapshot_statement(count_column, window_days), dict(params)).all()
