"""ORM models (SQLAlchemy 2.0 typed). They never leave the library: see ``domain.py``.

Schema changes need an Alembic migration in ``alembic/versions`` (with a working downgrade); the
migration test checks that ``upgrade head`` equals this metadata on every engine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..domain import VideoState

__all__ = [
    "ApiCall",
    "Base",
    "DailyLimit",
    "ProcessorRun",
    "QuotaUsage",
    "Schedule",
    "ScheduleEvent",
    "UTCDateTime",
    "UploadChannel",
    "VideoChange",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}

VIDEO_TYPES = ("final", "short")
UPLOAD_STATUSES = ("scheduled", "uploading", "completed", "failed", "cancelled", "needs_review")
CALL_OUTCOMES = ("sent", "refused")
ACTIVE_STATUSES = ("scheduled", "uploading", "completed", "needs_review")
#: Every ``domain.VideoState`` value (one list: the CHECK constraint and the enum agree).
VIDEO_STATES = tuple(state.value for state in VideoState)
CHANGE_KINDS = ("reschedule", "unpublish", "delete", "update")
CHANGE_STATES = ("pending", "applied", "failed", "rolled_back")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every engine.

    PostgreSQL keeps ``timestamptz``; SQLite and MySQL have no zone type, so the value is stored
    as naive UTC (microsecond precision on MySQL) and returned aware. Naive input is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name != "postgresql":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so constraint names match on every engine."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Schedule(Base):
    """One video scheduled for publishing on a channel.

    ``slot_key`` equals ``scheduled_publish_time`` while the schedule is active and is NULL once
    it is cancelled or failed; UNIQUE(channel_id, slot_key) makes a double-booked slot impossible
    on every engine (NULLs never collide).

    ``fingerprint_key`` works the same way for content: it equals ``content_sha256`` while the
    schedule is active (unless it was booked with ``allow_duplicate``) and is NULL once cancelled
    or failed, so UNIQUE(channel_id, fingerprint_key) refuses the same file twice on a channel.
    ``file_size``/``file_mtime_ns`` are the file's stat when it was hashed: an unchanged file is
    not read again. ``idempotency_key`` is the caller's request id, UNIQUE per channel for ever.
    """

    __tablename__ = "youtube_schedules"
    __table_args__ = (
        UniqueConstraint("channel_id", "slot_key"),
        UniqueConstraint("channel_id", "fingerprint_key"),
        UniqueConstraint("channel_id", "idempotency_key"),
        Index("ix_youtube_schedules_due", "upload_status", "scheduled_publish_time"),
        Index("ix_youtube_schedules_channel_day", "channel_id", "publish_date"),
        Index("ix_youtube_schedules_lease", "upload_status", "lease_expires_at"),
        # The fingerprint cache: a file whose stat matches a stored row is not hashed again.
        Index("ix_youtube_schedules_file_stat", "file_mtime_ns", "file_size"),
        # Uploaded videos the processor checks on YouTube, by when they are next checked.
        Index("ix_youtube_schedules_check", "video_state", "next_check_at"),
        CheckConstraint(f"video_state IN ({_in(VIDEO_STATES)})", name="video_state"),
        CheckConstraint(f"video_type IN ({_in(VIDEO_TYPES)})", name="video_type"),
        CheckConstraint(f"upload_status IN ({_in(UPLOAD_STATUSES)})", name="upload_status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("bytes_uploaded >= 0", name="bytes_uploaded"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    api_project: Mapped[str] = mapped_column(String(64))
    video_path: Mapped[str] = mapped_column(String(4096))
    video_type: Mapped[str] = mapped_column(String(16))
    scheduled_publish_time: Mapped[datetime] = mapped_column(UTCDateTime())
    publish_date: Mapped[date] = mapped_column(Date)
    quota_date: Mapped[date] = mapped_column(Date)
    slot_key: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    video_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    upload_status: Mapped[str] = mapped_column(String(16), default="scheduled")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    upload_session_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    bytes_uploaded: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    youtube_video_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    completed_steps: Mapped[list[str]] = mapped_column(JSON)
    reserved_quota: Mapped[dict[str, int]] = mapped_column(JSON)
    consumed_quota: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fingerprint_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    file_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    file_mtime_ns: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The video's life after the upload (see domain.VideoState); NULL before it completes.
    video_state: Mapped[str | None] = mapped_column(String(24), nullable=True)
    youtube_privacy: Mapped[str | None] = mapped_column(String(16), nullable=True)
    youtube_publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    video_problem: Mapped[str | None] = mapped_column(Text, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    check_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class DailyLimit(Base):
    """Per-type counts of active schedules on one channel day.

    This is the row locked (``SELECT ... FOR UPDATE``) while a slot on that day is reserved.
    """

    __tablename__ = "youtube_daily_limits"
    __table_args__ = (
        CheckConstraint("final_count >= 0", name="final_count"),
        CheckConstraint("short_count >= 0", name="short_count"),
    )

    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    publish_date: Mapped[date] = mapped_column(Date, primary_key=True)
    final_count: Mapped[int] = mapped_column(Integer, default=0)
    short_count: Mapped[int] = mapped_column(Integer, default=0)


class QuotaUsage(Base):
    """API quota of one bucket on one Pacific-time quota day for one API project.

    ``reserved`` is held by schedules not yet uploaded; ``used`` was spent by uploads;
    ``quota_limit`` is the limit configured when last written (reporting only: checks use the
    current configuration).
    """

    __tablename__ = "youtube_quota_usage"
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved"),
        CheckConstraint("used >= 0", name="used"),
    )

    api_project: Mapped[str] = mapped_column(String(64), primary_key=True)
    quota_date: Mapped[date] = mapped_column(Date, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    used: Mapped[int] = mapped_column(Integer, default=0)
    quota_limit: Mapped[int] = mapped_column(Integer, default=0)


class UploadChannel(Base):
    """One row per channel the processor has claimed uploads for: the per-channel claim lock.

    A claim locks this row (``SELECT ... FOR UPDATE``) before counting the channel's live
    ``uploading`` schedules, so the per-channel concurrency cap holds across every processor on
    every machine. In the lock order (:mod:`langflix_scheduler.ledger`) it comes first.
    """

    __tablename__ = "youtube_upload_channels"

    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_claim_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Set when the channel's token was refused (``invalid_grant``): its uploads are not claimed
    # until ``auth`` succeeds again (or the pause is lifted).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pause_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ProcessorRun(Base):
    """One run of an upload processor, for the status report.

    A running run raises ``heartbeat_at`` and ``lease_expires_at`` while it lives; a row still
    ``running`` whose ``lease_expires_at`` passed belongs to a process that died or lost the
    database (shown as ``lost``).
    """

    __tablename__ = "processor_runs"
    __table_args__ = (Index("ix_processor_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    uploaded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    retried: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)
    rescued: Mapped[int] = mapped_column(Integer, default=0)
    skipped_overlap: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ApiCall(Base):
    """The quota ledger: one row per YouTube API request that YouTube charges for.

    Written *before* the request is sent (a request that may have been sent is counted), on the
    Pacific-time quota day it was sent, together with ``youtube_quota_usage.used += cost``; see
    :mod:`langflix_scheduler.db.api_calls`. ``used`` is the sum of ``cost`` per
    (api_project, quota_date, bucket), which is what ``recalculate_quota`` recounts.
    ``outcome`` is ``sent`` or ``refused`` (YouTube answered "quota spent": not charged, cost 0);
    ``call_key`` is unique per call, so a write whose answer was lost is found, not repeated.
    """

    __tablename__ = "youtube_api_calls"
    __table_args__ = (
        Index("ix_youtube_api_calls_quota_day", "api_project", "quota_date", "bucket"),
        Index("ix_youtube_api_calls_schedule", "schedule_id"),
        CheckConstraint("cost >= 0", name="cost"),
        CheckConstraint(f"outcome IN ({_in(CALL_OUTCOMES)})", name="outcome"),
        UniqueConstraint("call_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_project: Mapped[str] = mapped_column(String(64))
    quota_date: Mapped[date] = mapped_column(Date)
    bucket: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(64))
    cost: Mapped[int] = mapped_column(Integer)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    channel_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16), default="sent", server_default="sent")
    call_key: Mapped[str | None] = mapped_column(String(32), nullable=True)


class ScheduleEvent(Base):
    """The timeline of a schedule: one row per transition, written in the transaction that makes
    it (``show ID``). ``actor`` is who made it (a worker id, ``cli``, ``library``, a user name);
    ``detail`` is a short human text (an error, the old and new publish time ...)."""

    __tablename__ = "youtube_schedule_events"
    __table_args__ = (Index("ix_youtube_schedule_events_schedule", "schedule_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class VideoChange(Base):
    """A change of plan for a video already on YouTube, recorded *before* its API call.

    ``pending`` while the call may be in flight (``lease_expires_at``: after it, the next
    processor run finishes or rolls back the change by asking YouTube what it holds);
    ``applied`` once YouTube holds it and the schedule says so; ``failed`` when YouTube refused
    it (nothing changed remotely; the schedule was put back); ``rolled_back`` when a recovery
    found the call never took effect and undid the local side. ``target`` / ``previous`` hold
    what is changed (publish time, metadata) as JSON.
    """

    __tablename__ = "youtube_video_changes"
    __table_args__ = (
        Index("ix_youtube_video_changes_pending", "state", "lease_expires_at"),
        Index("ix_youtube_video_changes_schedule", "schedule_id"),
        CheckConstraint(f"kind IN ({_in(CHANGE_KINDS)})", name="kind"),
        CheckConstraint(f"state IN ({_in(CHANGE_STATES)})", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
