"""Quota ledger: each API call's outcome and a unique call key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

``youtube_api_calls`` gets:

* ``outcome``: ``sent`` (the request was, or may have been, sent: YouTube charges it whatever
  happened after) or ``refused`` (YouTube answered that the quota is spent: not charged, ``cost``
  0). Existing rows are ``sent``.
* ``call_key``: a random key per call (UNIQUE), so a write whose answer was lost can be looked up
  instead of written twice. Rows carried over by 0003 have none.

Downgrade drops both columns; a ``refused`` row already has cost 0, so the recount is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("youtube_api_calls") as batch:
        batch.add_column(
            sa.Column("outcome", sa.String(length=16), nullable=False, server_default="sent")
        )
        batch.add_column(sa.Column("call_key", sa.String(length=32), nullable=True))
        batch.create_check_constraint(
            op.f("ck_youtube_api_calls_outcome"), "outcome IN ('sent', 'refused')"
        )
        batch.create_unique_constraint(op.f("uq_youtube_api_calls_call_key"), ["call_key"])


def downgrade() -> None:
    with op.batch_alter_table("youtube_api_calls") as batch:
        batch.drop_constraint(op.f("uq_youtube_api_calls_call_key"), type_="unique")
        batch.drop_constraint(op.f("ck_youtube_api_calls_outcome"), type_="check")
        batch.drop_column("call_key")
        batch.drop_column("outcome")
