"""``processor_runs`` rows: insert, find, heartbeat, finish (Core/ORM statements only)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import ProcessorRun
from .statements import latest

__all__ = ["find_running", "finish_run", "heartbeat_run", "insert_run"]

_ZERO_COUNTS = {
    "claimed": 0,
    "uploaded": 0,
    "failed": 0,
    "retried": 0,
    "deferred": 0,
    "rescued": 0,
}


def insert_run(
    session: Session,
    worker_id: str,
    started: datetime,
    *,
    lease: timedelta | None = None,
    skipped_outcome: str | None = None,
) -> int:
    """Insert a ``running`` row with its first heartbeat and lease; or, with
    ``skipped_outcome``, a finished row for a run skipped because another held the lock."""
    if skipped_outcome is not None:
        row = ProcessorRun(
            worker_id=worker_id,
            started_at=started,
            finished_at=started,
            outcome=skipped_outcome,
            **_ZERO_COUNTS,
            skipped_overlap=1,
        )
    else:
        assert lease is not None
        row = ProcessorRun(
            worker_id=worker_id,
            started_at=started,
            outcome="running",
            **_ZERO_COUNTS,
            skipped_overlap=0,
            heartbeat_at=started,
            lease_expires_at=started + lease,
        )
    session.add(row)
    session.flush()
    return row.id


def find_running(session: Session, worker_id: str, started: datetime, after_id: int) -> int | None:
    """The id of ``worker_id``'s ``running`` row started at ``started`` (newest above
    ``after_id``), or None: how a start whose answer was lost is found."""
    return session.execute(
        select(ProcessorRun.id)
        .where(
            ProcessorRun.worker_id == worker_id,
            ProcessorRun.started_at == started,
            ProcessorRun.outcome == "running",
            ProcessorRun.id > after_id,
        )
        .order_by(ProcessorRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def heartbeat_run(run_id: int, now: datetime, lease: timedelta) -> Any:
    """The statement raising a running row's heartbeat and lease (never lowering them)."""
    return (
        update(ProcessorRun)
        .where(ProcessorRun.id == run_id, ProcessorRun.outcome == "running")
        .values(
            heartbeat_at=latest(ProcessorRun.heartbeat_at, now),
            lease_expires_at=latest(ProcessorRun.lease_expires_at, now + lease),
        )
    )


def finish_run(
    session: Session,
    run_id: int,
    finished: datetime,
    outcome: str,
    counts: Mapping[str, int],
    error: str | None,
) -> None:
    """Write a run's end: outcome, counters and error (fixed values: safe to repeat)."""
    session.execute(
        update(ProcessorRun)
        .where(ProcessorRun.id == run_id)
        .values(
            finished_at=finished,
            outcome=outcome,
            **counts,
            error=error,
            heartbeat_at=finished,
        )
        .execution_options(synchronize_session=False)
    )
