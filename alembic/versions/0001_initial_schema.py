"""Initial schema: schedules, channel-day and quota-day counters, processor runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import langflix_scheduler.db.models


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processor_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column(
            "started_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "finished_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("uploaded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("retried", sa.Integer(), nullable=False),
        sa.Column("deferred", sa.Integer(), nullable=False),
        sa.Column("rescued", sa.Integer(), nullable=False),
        sa.Column("skipped_overlap", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_runs")),
    )
    op.create_index("ix_processor_runs_started_at", "processor_runs", ["started_at"], unique=False)

    op.create_table(
        "youtube_daily_limits",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("publish_date", sa.Date(), nullable=False),
        sa.Column("final_count", sa.Integer(), nullable=False),
        sa.Column("short_count", sa.Integer(), nullable=False),
        sa.CheckConstraint("final_count >= 0", name=op.f("ck_youtube_daily_limits_final_count")),
        sa.CheckConstraint("short_count >= 0", name=op.f("ck_youtube_daily_limits_short_count")),
        sa.PrimaryKeyConstraint("channel_id", "publish_date", name=op.f("pk_youtube_daily_limits")),
    )
    op.create_table(
        "youtube_quota_usage",
        sa.Column("api_project", sa.String(length=64), nullable=False),
        sa.Column("quota_date", sa.Date(), nullable=False),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("quota_limit", sa.Integer(), nullable=False),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_youtube_quota_usage_reserved")),
        sa.CheckConstraint("used >= 0", name=op.f("ck_youtube_quota_usage_used")),
        sa.PrimaryKeyConstraint(
            "api_project", "quota_date", "bucket", name=op.f("pk_youtube_quota_usage")
        ),
    )
    op.create_table(
        "youtube_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("api_project", sa.String(length=64), nullable=False),
        sa.Column("video_path", sa.String(length=4096), nullable=False),
        sa.Column("video_type", sa.String(length=16), nullable=False),
        sa.Column(
            "scheduled_publish_time",
            langflix_scheduler.db.models.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("publish_date", sa.Date(), nullable=False),
        sa.Column("quota_date", sa.Date(), nullable=False),
        sa.Column(
            "slot_key", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("upload_status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            langflix_scheduler.db.models.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column(
            "lease_expires_at",
            langflix_scheduler.db.models.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "heartbeat_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("upload_session_uri", sa.Text(), nullable=True),
        sa.Column("bytes_uploaded", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("youtube_video_id", sa.String(length=64), nullable=True),
        sa.Column("completed_steps", sa.JSON(), nullable=False),
        sa.Column("reserved_quota", sa.JSON(), nullable=False),
        sa.Column("consumed_quota", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "uploaded_at", langflix_scheduler.db.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.CheckConstraint(
            "upload_status IN ('scheduled', 'uploading', 'completed', 'failed', 'cancelled')",
            name=op.f("ck_youtube_schedules_upload_status"),
        ),
        sa.CheckConstraint(
            "video_type IN ('final', 'short')", name=op.f("ck_youtube_schedules_video_type")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_youtube_schedules_attempts")),
        sa.CheckConstraint("bytes_uploaded >= 0", name=op.f("ck_youtube_schedules_bytes_uploaded")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youtube_schedules")),
        sa.UniqueConstraint(
            "channel_id", "slot_key", name=op.f("uq_youtube_schedules_channel_id_slot_key")
        ),
    )
    op.create_index(
        "ix_youtube_schedules_channel_day",
        "youtube_schedules",
        ["channel_id", "publish_date"],
        unique=False,
    )
    op.create_index(
        "ix_youtube_schedules_due",
        "youtube_schedules",
        ["upload_status", "scheduled_publish_time"],
        unique=False,
    )
    op.create_index(
        "ix_youtube_schedules_lease",
        "youtube_schedules",
        ["upload_status", "lease_expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_youtube_schedules_lease", table_name="youtube_schedules")
    op.drop_index("ix_youtube_schedules_due", table_name="youtube_schedules")
    op.drop_index("ix_youtube_schedules_channel_day", table_name="youtube_schedules")

    op.drop_table("youtube_schedules")
    op.drop_table("youtube_quota_usage")
    op.drop_table("youtube_daily_limits")
    op.drop_index("ix_processor_runs_started_at", table_name="processor_runs")

    op.drop_table("processor_runs")
