"""Per-channel claim lock rows for the upload processor's per-channel concurrency cap.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import langflix_scheduler.db.models


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "youtube_upload_channels",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column(
            "last_claim_at",
            langflix_scheduler.db.models.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_youtube_upload_channels")),
    )


def downgrade() -> None:
    op.drop_table("youtube_upload_channels")
