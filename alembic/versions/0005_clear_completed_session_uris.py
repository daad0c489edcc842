"""Clear the resumable session URI of completed uploads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A session URI lets whoever holds it talk to the upload session without credentials, so it is a
secret; once a video exists it is of no use to the library. Completed uploads now clear it when
they are recorded; this revision clears the URIs that completed rows kept before.

Downgrade changes nothing: the cleared URIs are gone for good, and no code reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schedules = sa.table(
        "youtube_schedules",
        sa.column("upload_status", sa.String),
        sa.column("upload_session_uri", sa.Text),
    )
    op.execute(
        schedules.update()
        .where(schedules.c.upload_status == "completed")
        .where(schedules.c.upload_session_uri.is_not(None))
        .values(upload_session_uri=None)
    )


def downgrade() -> None:
    """Nothing to undo (see the module docstring)."""
