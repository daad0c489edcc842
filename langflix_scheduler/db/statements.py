"""Pre-built Core statements of the processor's hot path (claim, batched completion).

No ORM entities, and statement construction / cache-key generation happen once (see
docs/performance.md). Bound values are parameters named ``k_*``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, case, func, literal, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement

from ..domain import UploadStatus, VideoState
from .models import QuotaUsage, Schedule, UploadChannel, UTCDateTime

_UPLOADING = UploadStatus.UPLOADING.value
_COMPLETED = UploadStatus.COMPLETED.value
_UPLOADED = VideoState.UPLOADED.value


def latest(column: Any, value: datetime) -> ColumnElement[datetime]:
    """SQL for ``max(column, value)`` (``value`` when the column is NULL)."""
    bound = literal(value, UTCDateTime())
    return case((or_(column.is_(None), column < bound), bound), else_=column)


def rowcount(result: Any) -> int:
    """Rows an executed DML statement matched."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# Pre-built Core statements of the hot path (claim, batched completion): no ORM entities, and
# statement construction / cache-key generation happen once (see docs/performance.md).
SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
CHANNELS: Table = UploadChannel.__table__  # type: ignore[assignment]
QUOTA: Table = QuotaUsage.__table__  # type: ignore[assignment]
LOCK_CHANNEL = (
    select(CHANNELS.c.channel_id)
    .where(CHANNELS.c.channel_id == bindparam("k_channel"))
    .with_for_update()
)
TOUCH_CHANNEL = (
    update(CHANNELS)
    .where(CHANNELS.c.channel_id == bindparam("k_channel"))
    .values(last_claim_at=bindparam("k_now"))
)
COUNT_LIVE = (
    select(func.count())
    .select_from(SCHEDULES)
    .where(
        SCHEDULES.c.channel_id == bindparam("k_channel"), SCHEDULES.c.upload_status == _UPLOADING
    )
)
COUNT_LIVE_OF_CHANNEL = COUNT_LIVE.scalar_subquery()
CLAIM_COLUMNS = (
    SCHEDULES.c.id,
    SCHEDULES.c.channel_id,
    SCHEDULES.c.api_project,
    SCHEDULES.c.attempts,
    SCHEDULES.c.video_path,
    SCHEDULES.c["metadata"].label("video_metadata"),
    SCHEDULES.c.scheduled_publish_time,
    SCHEDULES.c.upload_session_uri,
    SCHEDULES.c.youtube_video_id,
    SCHEDULES.c.completed_steps,
    SCHEDULES.c.bytes_uploaded,
    SCHEDULES.c.bytes_total,
    SCHEDULES.c.quota_date,
    SCHEDULES.c.reserved_quota,
    SCHEDULES.c.content_sha256,
    SCHEDULES.c.file_size,
    SCHEDULES.c.file_mtime_ns,
)
LOCK_DONE_ROWS = (
    select(
        SCHEDULES.c.id,
        SCHEDULES.c.lease_owner,
        SCHEDULES.c.upload_status,
        SCHEDULES.c.quota_date,
        SCHEDULES.c.reserved_quota,
        SCHEDULES.c.consumed_quota,
        SCHEDULES.c.bytes_uploaded,
        SCHEDULES.c.bytes_total,
        SCHEDULES.c.attempts,
    )
    .where(SCHEDULES.c.id.in_(bindparam("k_ids", expanding=True)))
    .order_by(SCHEDULES.c.id)
    .with_for_update()
)
RELEASE_AND_USE = (
    update(QUOTA)
    .where(
        QUOTA.c.api_project == bindparam("k_project"),
        QUOTA.c.quota_date == bindparam("k_qday"),
        QUOTA.c.bucket == bindparam("k_bucket"),
    )
    .values(
        reserved=case(
            (
                QUOTA.c.reserved > bindparam("k_release"),
                QUOTA.c.reserved - bindparam("k_release"),
            ),
            else_=0,
        ),
        used=QUOTA.c.used + bindparam("k_use"),
    )
)
SET_QUOTA = (
    update(QUOTA)
    .where(
        QUOTA.c.api_project == bindparam("k_project"),
        QUOTA.c.quota_date == bindparam("k_qday"),
        QUOTA.c.bucket == bindparam("k_bucket"),
    )
    .values(reserved=bindparam("k_reserved"), used=bindparam("k_used"))
)
COMPLETE_ROW = (
    update(SCHEDULES)
    .where(
        SCHEDULES.c.id == bindparam("k_id"),
        SCHEDULES.c.lease_owner == bindparam("k_token"),
        SCHEDULES.c.upload_status == _UPLOADING,
    )
    .values(
        quota_date=bindparam("k_qday"),
        reserved_quota=bindparam("k_reserved", type_=SCHEDULES.c.reserved_quota.type),
        consumed_quota=bindparam("k_consumed", type_=SCHEDULES.c.consumed_quota.type),
        upload_status=_COMPLETED,
        youtube_video_id=bindparam("k_video_id"),
        upload_session_uri=None,  # a secret that is no use once the video exists
        completed_steps=bindparam("k_steps", type_=SCHEDULES.c.completed_steps.type),
        uploaded_at=bindparam("k_now", type_=SCHEDULES.c.uploaded_at.type),
        updated_at=bindparam("k_now", type_=SCHEDULES.c.uploaded_at.type),
        heartbeat_at=bindparam("k_now", type_=SCHEDULES.c.uploaded_at.type),
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=None,
        last_error=None,
        bytes_total=bindparam("k_total", type_=BigInteger()),
        bytes_uploaded=bindparam("k_uploaded", type_=BigInteger()),
        # The video's life after the upload starts: checked on YouTube from k_next_check on.
        video_state=_UPLOADED,
        youtube_privacy=None,
        youtube_publish_at=None,
        video_problem=None,
        checked_at=None,
        next_check_at=bindparam("k_next_check", type_=SCHEDULES.c.next_check_at.type),
        check_count=0,
    )
)
