"""The batched completion's statements: quota counters changed by summed deltas, the completed
schedule rows locked by id and written fenced (see ``processor/batch.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from . import timeline
from .locking import lock_quota_counts
from .statements import COMPLETE_ROW, LOCK_DONE_ROWS, RELEASE_AND_USE, SET_QUOTA, rowcount

__all__ = [
    "append_uploaded",
    "complete_rows",
    "lock_done_rows",
    "release_and_use",
    "set_quota",
]


def release_and_use(
    conn: Connection, api_project: str, change: Mapping[tuple[date, str], Sequence[int]]
) -> bool:
    """One summed ``UPDATE`` per quota row, in sorted key order (the global lock order):
    ``reserved -= release`` (floored at 0) and ``used += use``. False when a row is missing."""
    hit = rowcount(
        conn.execute(
            RELEASE_AND_USE,
            [
                {
                    "k_project": api_project,
                    "k_qday": k[0],
                    "k_bucket": k[1],
                    "k_release": d[0],
                    "k_use": d[1],
                }
                for k, d in sorted(change.items())
            ],
        )
    )
    return hit == len(change)


def set_quota(
    conn: Connection,
    dialect: str,
    api_project: str,
    change: Mapping[tuple[date, str], Sequence[int]],
    limits: Mapping[str, int],
) -> None:
    """Like :func:`release_and_use`, but locking (and creating) the quota rows first."""
    quota = lock_quota_counts(conn, dialect, api_project, change, limits)
    conn.execute(
        SET_QUOTA,
        [
            {
                "k_project": api_project,
                "k_qday": k[0],
                "k_bucket": k[1],
                "k_reserved": max(0, quota[k][0] - d[0]),
                "k_used": quota[k][1] + d[1],
            }
            for k, d in sorted(change.items())
        ],
    )


def lock_done_rows(conn: Connection, ids: Iterable[int]) -> list[Any]:
    """The schedule rows of ``ids``, locked by id, with what the completion re-checks."""
    return list(conn.execute(LOCK_DONE_ROWS, {"k_ids": sorted(ids)}).all())


def complete_rows(conn: Connection, params: list[dict[str, Any]]) -> int:
    """Write ``completed`` on each row, fenced on its lease token (video state ``uploaded``,
    first check at ``k_next_check``); rows matched."""
    return rowcount(conn.execute(COMPLETE_ROW, params))


def append_uploaded(conn: Connection, params: list[dict[str, Any]], actor: str) -> None:
    """The ``uploaded`` timeline entry of each row :func:`complete_rows` wrote (one INSERT)."""
    timeline.append_many(
        conn,
        (
            timeline.TimelineEntry(
                schedule_id=p["k_id"],
                at=p["k_now"],
                kind="uploaded",
                actor=actor,
                detail=f"video {p['k_video_id']}",
            )
            for p in params
        ),
    )
