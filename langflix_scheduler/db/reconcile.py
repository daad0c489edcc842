"""``reconcile``'s reads and its simple write: which schedules record which videos, which may
have uploaded one nobody recorded, and marking a video that is gone.

The flow (listing YouTube, matching, attaching a found video through
:func:`langflix_scheduler.ledger.change_schedule`, the report) is
:mod:`langflix_scheduler.reconcile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from ..domain import UploadStatus, VideoState
from . import timeline
from .statements import SCHEDULES, rowcount

__all__ = ["ATTACHABLE", "Candidate", "Recorded", "candidates", "mark_gone", "recorded"]

_S = SCHEDULES
_COMPLETED = UploadStatus.COMPLETED.value
_DELETED = VideoState.DELETED.value
#: Statuses of a schedule that may have uploaded a video it did not record.
ATTACHABLE = (
    UploadStatus.NEEDS_REVIEW.value,
    UploadStatus.UPLOADING.value,
    UploadStatus.FAILED.value,
)


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """A schedule of the channel that records a video id."""

    schedule_id: int
    video_id: str
    upload_status: str
    video_state: str | None
    scheduled_publish_time: datetime
    privacy: str | None


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A schedule of the channel that may have uploaded a video without recording it."""

    schedule_id: int
    upload_status: str
    title: str | None
    #: When it last worked on an upload (heartbeat, last change, upload time), None left out.
    attempt_times: tuple[datetime, ...]
    lease_expires_at: datetime | None


def recorded(conn: Connection, channel: str) -> list[Recorded]:
    """Every schedule of ``channel`` with a video id, by id."""
    rows = conn.execute(
        select(
            _S.c.id,
            _S.c.youtube_video_id,
            _S.c.upload_status,
            _S.c.video_state,
            _S.c.scheduled_publish_time,
            _S.c["metadata"],
        )
        .where(_S.c.channel_id == channel, _S.c.youtube_video_id.is_not(None))
        .order_by(_S.c.id)
    ).all()
    return [
        Recorded(
            schedule_id=r[0],
            video_id=r[1],
            upload_status=r[2],
            video_state=r[3],
            scheduled_publish_time=r[4],
            privacy=_field(r[5], "privacy"),
        )
        for r in rows
    ]


def candidates(conn: Connection, channel: str) -> list[Candidate]:
    """Schedules of ``channel`` without a video id in a status that may hide one
    (:data:`ATTACHABLE`), by id."""
    rows = conn.execute(
        select(
            _S.c.id,
            _S.c.upload_status,
            _S.c["metadata"],
            _S.c.heartbeat_at,
            _S.c.updated_at,
            _S.c.uploaded_at,
            _S.c.lease_expires_at,
        )
        .where(
            _S.c.channel_id == channel,
            _S.c.youtube_video_id.is_(None),
            _S.c.upload_status.in_(ATTACHABLE),
        )
        .order_by(_S.c.id)
    ).all()
    return [
        Candidate(
            schedule_id=r[0],
            upload_status=r[1],
            title=_field(r[2], "title"),
            attempt_times=tuple(t for t in (r[3], r[4], r[5]) if t is not None),
            lease_expires_at=r[6],
        )
        for r in rows
    ]


def _field(metadata: Any, name: str) -> str | None:
    value = metadata.get(name) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def mark_gone(
    conn: Connection, schedule_id: int, video_id: str, *, now: datetime, actor: str, detail: str
) -> bool:
    """``video_state = deleted`` on the completed schedule recording ``video_id``, with a
    ``reconciled`` timeline entry; False when the row no longer matches (nothing written)."""
    hit = rowcount(
        conn.execute(
            update(_S)
            .where(
                _S.c.id == schedule_id,
                _S.c.youtube_video_id == video_id,
                _S.c.upload_status == _COMPLETED,
                or_(_S.c.video_state.is_(None), _S.c.video_state != _DELETED),
            )
            .values(
                video_state=_DELETED,
                video_problem=detail,
                checked_at=now,
                next_check_at=None,
                updated_at=now,
            )
        )
    )
    if hit:
        timeline.append(
            conn,
            timeline.TimelineEntry(
                schedule_id=schedule_id, at=now, kind="reconciled", actor=actor, detail=detail
            ),
        )
    return hit > 0
