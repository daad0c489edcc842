"""The video's life after upload: video state, timeline, changes of plan, channel pauses.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

* ``youtube_schedules`` gets what YouTube holds for an uploaded video (``video_state``,
  ``youtube_privacy``, ``youtube_publish_at``, ``video_problem``) and when it was / will next be
  checked (``checked_at``, ``next_check_at``, ``check_count``). Completed uploads that have a
  video id start as ``uploaded``, due for a check at once, so the processor verifies them.
* ``youtube_schedule_events``: the timeline of each schedule (``show ID``).
* ``youtube_video_changes``: changes of plan after upload, recorded before their API call.
* ``youtube_upload_channels`` gets ``paused_at`` / ``pause_reason`` (a token refused with
  ``invalid_grant`` pauses that channel's uploads).

Downgrade drops all of it; the schedules keep their ``completed`` status.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from langflix_scheduler.db.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VIDEO_STATES = (
    "'uploaded', 'processing', 'ready', 'published', 'rejected', 'processing_failed', "
    "'mismatch', 'held_private', 'missing', 'deleted', 'unpublished'"
)


def upgrade() -> None:
    with op.batch_alter_table("youtube_schedules") as batch:
        batch.add_column(sa.Column("video_state", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("youtube_privacy", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("youtube_publish_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("video_problem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("next_check_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("check_count", sa.Integer(), nullable=False, server_default="0"))
        batch.create_check_constraint(
            op.f("ck_youtube_schedules_video_state"), f"video_state IN ({_VIDEO_STATES})"
        )
        batch.create_index(
            op.f("ix_youtube_schedules_check"), ["video_state", "next_check_at"], unique=False
        )
    schedules = sa.table(
        "youtube_schedules",
        sa.column("upload_status", sa.String),
        sa.column("youtube_video_id", sa.String),
        sa.column("video_state", sa.String),
    )
    op.execute(
        schedules.update()
        .where(schedules.c.upload_status == "completed")
        .where(schedules.c.youtube_video_id.is_not(None))
        .values(video_state="uploaded")
    )
    with op.batch_alter_table("youtube_upload_channels") as batch:
        batch.add_column(sa.Column("paused_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))
    op.create_table(
        "youtube_schedule_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youtube_schedule_events")),
    )
    op.create_index(
        "ix_youtube_schedule_events_schedule",
        "youtube_schedule_events",
        ["schedule_id", "id"],
        unique=False,
    )
    op.create_table(
        "youtube_video_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('reschedule', 'unpublish', 'delete', 'update')",
            name=op.f("ck_youtube_video_changes_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'applied', 'failed', 'rolled_back')",
            name=op.f("ck_youtube_video_changes_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youtube_video_changes")),
    )
    op.create_index(
        "ix_youtube_video_changes_pending",
        "youtube_video_changes",
        ["state", "lease_expires_at"],
        unique=False,
    )
    op.create_index(
        "ix_youtube_video_changes_schedule", "youtube_video_changes", ["schedule_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_youtube_video_changes_schedule", table_name="youtube_video_changes")
    op.drop_index("ix_youtube_video_changes_pending", table_name="youtube_video_changes")
    op.drop_table("youtube_video_changes")
    op.drop_index("ix_youtube_schedule_events_schedule", table_name="youtube_schedule_events")
    op.drop_table("youtube_schedule_events")
    with op.batch_alter_table("youtube_upload_channels") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_at")
    with op.batch_alter_table("youtube_schedules") as batch:
        batch.drop_index(op.f("ix_youtube_schedules_check"))
        batch.drop_constraint(op.f("ck_youtube_schedules_video_state"), type_="check")
        batch.drop_column("check_count")
        batch.drop_column("next_check_at")
        batch.drop_column("checked_at")
        batch.drop_column("video_problem")
        batch.drop_column("youtube_publish_at")
        batch.drop_column("youtube_privacy")
        batch.drop_column("video_state")
