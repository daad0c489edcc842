"""Exactly once at the edges: content fingerprints, idempotency keys, ``needs_review``, run
heartbeats and the quota call ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

* ``youtube_schedules``: ``content_sha256``, ``fingerprint_key`` (UNIQUE per channel while live),
  ``file_size``/``file_mtime_ns`` (the stat the hash belongs to), ``idempotency_key`` (UNIQUE per
  channel), and the ``needs_review`` status.
* ``processor_runs``: ``heartbeat_at`` and ``lease_expires_at`` (a run whose lease passed is lost).
* ``youtube_api_calls``: one row per charged YouTube API request. Existing consumed quota is
  carried over as one ``recorded`` row per schedule and bucket, on the schedule's quota day, so
  ``used`` stays equal to the recount.

Downgrade drops all of it; ``needs_review`` rows become ``completed`` (they keep their slot and are
never uploaded again, as before) with a note in ``last_error``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import langflix_scheduler.db.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = langflix_scheduler.db.models.UTCDateTime
_OLD_STATUSES = "('scheduled', 'uploading', 'completed', 'failed', 'cancelled')"
_NEW_STATUSES = "('scheduled', 'uploading', 'completed', 'failed', 'cancelled', 'needs_review')"
_STATUS_CHECK = "ck_youtube_schedules_upload_status"


def _schedules_table(statuses: str) -> sa.Table:
    """``youtube_schedules`` as revision 0002 left it (for SQLite's batch copy), with the given
    status list in its CHECK constraint."""
    return sa.Table(
        "youtube_schedules",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("api_project", sa.String(64), nullable=False),
        sa.Column("video_path", sa.String(4096), nullable=False),
        sa.Column("video_type", sa.String(16), nullable=False),
        sa.Column("scheduled_publish_time", _UTC(timezone=True), nullable=False),
        sa.Column("publish_date", sa.Date(), nullable=False),
        sa.Column("quota_date", sa.Date(), nullable=False),
        sa.Column("slot_key", _UTC(timezone=True), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("upload_status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _UTC(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", _UTC(timezone=True), nullable=True),
        sa.Column("heartbeat_at", _UTC(timezone=True), nullable=True),
        sa.Column("upload_session_uri", sa.Text(), nullable=True),
        sa.Column("bytes_uploaded", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("youtube_video_id", sa.String(64), nullable=True),
        sa.Column("completed_steps", sa.JSON(), nullable=False),
        sa.Column("reserved_quota", sa.JSON(), nullable=False),
        sa.Column("consumed_quota", sa.JSON(), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.Column("uploaded_at", _UTC(timezone=True), nullable=True),
        sa.CheckConstraint(f"upload_status IN {statuses}", name=_STATUS_CHECK),
        sa.CheckConstraint(
            "video_type IN ('final', 'short')", name="ck_youtube_schedules_video_type"
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_youtube_schedules_attempts"),
        sa.CheckConstraint("bytes_uploaded >= 0", name="ck_youtube_schedules_bytes_uploaded"),
        sa.UniqueConstraint(
            "channel_id", "slot_key", name="uq_youtube_schedules_channel_id_slot_key"
        ),
        sa.Index("ix_youtube_schedules_channel_day", "channel_id", "publish_date"),
        sa.Index("ix_youtube_schedules_due", "upload_status", "scheduled_publish_time"),
        sa.Index("ix_youtube_schedules_lease", "upload_status", "lease_expires_at"),
    )


def upgrade() -> None:
    with op.batch_alter_table(
        "youtube_schedules", copy_from=_schedules_table(_OLD_STATUSES)
    ) as batch:
        batch.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("fingerprint_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("file_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("file_mtime_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=128), nullable=True))
        batch.drop_constraint(op.f(_STATUS_CHECK), type_="check")
        batch.create_check_constraint(op.f(_STATUS_CHECK), f"upload_status IN {_NEW_STATUSES}")
        batch.create_unique_constraint(
            op.f("uq_youtube_schedules_channel_id_fingerprint_key"),
            ["channel_id", "fingerprint_key"],
        )
        batch.create_unique_constraint(
            op.f("uq_youtube_schedules_channel_id_idempotency_key"),
            ["channel_id", "idempotency_key"],
        )

    op.create_index(
        "ix_youtube_schedules_file_stat",
        "youtube_schedules",
        ["file_mtime_ns", "file_size"],
        unique=False,
    )

    with op.batch_alter_table("processor_runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", _UTC(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", _UTC(timezone=True), nullable=True))

    calls = op.create_table(
        "youtube_api_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("api_project", sa.String(length=64), nullable=False),
        sa.Column("quota_date", sa.Date(), nullable=False),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=True),
        sa.Column("worker_id", sa.String(length=128), nullable=True),
        sa.Column("sent_at", _UTC(timezone=True), nullable=False),
        sa.CheckConstraint("cost >= 0", name=op.f("ck_youtube_api_calls_cost")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_youtube_api_calls")),
    )
    op.create_index(
        "ix_youtube_api_calls_quota_day",
        "youtube_api_calls",
        ["api_project", "quota_date", "bucket"],
        unique=False,
    )
    op.create_index(
        "ix_youtube_api_calls_schedule", "youtube_api_calls", ["schedule_id"], unique=False
    )
    _carry_over_consumed_quota(calls)


def _carry_over_consumed_quota(calls: sa.Table | None) -> None:
    """One ``recorded`` ledger row per schedule and bucket it already consumed quota from."""
    if calls is None:  # pragma: no cover - create_table returns the table on every engine
        return
    bind = op.get_bind()
    old = _schedules_table(_NEW_STATUSES)
    rows = bind.execute(
        sa.select(
            old.c.id,
            old.c.api_project,
            old.c.channel_id,
            old.c.quota_date,
            old.c.consumed_quota,
            old.c.uploaded_at,
            old.c.updated_at,
        )
    ).all()
    entries: list[dict[str, Any]] = []
    for row in rows:
        consumed = row.consumed_quota
        if isinstance(consumed, str):
            consumed = json.loads(consumed)
        for bucket, amount in sorted((consumed or {}).items()):
            if int(amount) <= 0:
                continue
            entries.append(
                {
                    "api_project": row.api_project,
                    "quota_date": row.quota_date,
                    "bucket": bucket,
                    "operation": "recorded",
                    "cost": int(amount),
                    "schedule_id": row.id,
                    "channel_id": row.channel_id,
                    "worker_id": None,
                    "sent_at": row.uploaded_at or row.updated_at or datetime.now(UTC),
                }
            )
    if entries:
        op.bulk_insert(calls, entries)


def downgrade() -> None:
    op.drop_index("ix_youtube_api_calls_schedule", table_name="youtube_api_calls")
    op.drop_index("ix_youtube_api_calls_quota_day", table_name="youtube_api_calls")
    op.drop_table("youtube_api_calls")

    with op.batch_alter_table("processor_runs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("heartbeat_at")

    op.drop_index("ix_youtube_schedules_file_stat", table_name="youtube_schedules")
    op.execute(
        "UPDATE youtube_schedules SET upload_status = 'completed', last_error = "
        "'needs_review before a schema downgrade: check the channel for this video' "
        "WHERE upload_status = 'needs_review'"
    )
    new = _schedules_table(_NEW_STATUSES)
    for name in ("content_sha256", "fingerprint_key"):
        new.append_column(sa.Column(name, sa.String(64), nullable=True))
    for name in ("file_size", "file_mtime_ns"):
        new.append_column(sa.Column(name, sa.BigInteger(), nullable=True))
    new.append_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
    new.append_constraint(
        sa.UniqueConstraint(
            "channel_id",
            "fingerprint_key",
            name="uq_youtube_schedules_channel_id_fingerprint_key",
        )
    )
    new.append_constraint(
        sa.UniqueConstraint(
            "channel_id",
            "idempotency_key",
            name="uq_youtube_schedules_channel_id_idempotency_key",
        )
    )
    with op.batch_alter_table("youtube_schedules", copy_from=new) as batch:
        batch.drop_constraint(
            op.f("uq_youtube_schedules_channel_id_idempotency_key"), type_="unique"
        )
        batch.drop_constraint(
            op.f("uq_youtube_schedules_channel_id_fingerprint_key"), type_="unique"
        )
        batch.drop_constraint(op.f(_STATUS_CHECK), type_="check")
        batch.create_check_constraint(op.f(_STATUS_CHECK), f"upload_status IN {_OLD_STATUSES}")
        batch.drop_column("idempotency_key")
        batch.drop_column("file_mtime_ns")
        batch.drop_column("file_size")
        batch.drop_column("fingerprint_key")
        batch.drop_column("content_sha256")
