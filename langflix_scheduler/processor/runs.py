"""The ``processor_runs`` rows: start (with heartbeat and lease), heartbeat, end, skipped."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.orm import Session

from ..db.models import ProcessorRun
from ..db.statements import (
    latest as _latest,
)
from ..errors import (
    OutcomeUnknownError,
    SchedulerError,
)
from ._core import _Core
from ._state import (
    _Counts,
    _short,
)
from .events import ProcessReport, RunOutcome

logger = logging.getLogger(__name__)


class _Runs(_Core):
    """Run rows of one processor."""

    def _skipped_run(self) -> ProcessReport:
        now = self._now()
        logger.warning(
            "processor %s: SKIPPED (previous run still in progress) for API project %s",
            self.worker_id,
            self.api_project,
        )

        def write(session: Session) -> None:
            session.add(
                ProcessorRun(
                    worker_id=self.worker_id,
                    started_at=now,
                    finished_at=now,
                    outcome=RunOutcome.SKIPPED.value,
                    claimed=0,
                    uploaded=0,
                    failed=0,
                    retried=0,
                    deferred=0,
                    rescued=0,
                    skipped_overlap=1,
                )
            )

        self._db.run("record skipped processor run", write)
        return ProcessReport(worker_id=self.worker_id, outcome=RunOutcome.SKIPPED, skipped=True)

    def _start_run_row(self, started: datetime) -> int:
        """Insert the ``running`` row (with its first heartbeat); retried with backoff. When the
        answer to the insert is lost, the row is looked up by worker and start time."""

        def write(session: Session) -> int:
            row = ProcessorRun(
                worker_id=self.worker_id,
                started_at=started,
                outcome="running",
                claimed=0,
                uploaded=0,
                failed=0,
                retried=0,
                deferred=0,
                rescued=0,
                skipped_overlap=0,
                heartbeat_at=started,
                lease_expires_at=started + self.lease,
            )
            session.add(row)
            session.flush()
            return row.id

        def find(session: Session) -> int | None:
            return session.execute(
                select(ProcessorRun.id)
                .where(
                    ProcessorRun.worker_id == self.worker_id,
                    ProcessorRun.started_at == started,
                    ProcessorRun.outcome == "running",
                    ProcessorRun.id > self._last_run_id,
                )
                .order_by(ProcessorRun.id.desc())
                .limit(1)
            ).scalar_one_or_none()

        deadline = self._record_deadline()
        while True:
            try:
                run_id = self._retry(
                    "record processor run",
                    lambda: self._db.run("record processor run", write),
                    deadline,
                )
            except OutcomeUnknownError:
                found = self._retry(
                    "read processor run",
                    lambda: self._db.run("read processor run", find, read_only=True),
                    deadline,
                    idempotent=True,
                )
                if found is None and time.monotonic() < deadline:
                    continue  # the insert did not commit: insert again
                if found is None:
                    raise
                run_id = found
            self._last_run_id = run_id
            return run_id

    def _heartbeat_run(self, run_id: int) -> None:
        """Raise the run row's heartbeat and lease (a row whose lease passed shows as lost)."""
        now = self._now()
        stmt = (
            update(ProcessorRun)
            .where(ProcessorRun.id == run_id, ProcessorRun.outcome == "running")
            .values(
                heartbeat_at=_latest(ProcessorRun.heartbeat_at, now),
                lease_expires_at=_latest(ProcessorRun.lease_expires_at, now + self.lease),
            )
        )
        try:
            self._execute_count("record processor run heartbeat", stmt)
        except SchedulerError as exc:
            logger.warning("heartbeat of processor run %d failed: %s", run_id, exc)

    def _finish_run_row(
        self, run_id: int, counts: _Counts, outcome: RunOutcome, error: str | None
    ) -> None:
        finished = self._now()

        def write(session: Session) -> None:
            session.execute(
                update(ProcessorRun)
                .where(ProcessorRun.id == run_id)
                .values(
                    finished_at=finished,
                    outcome=outcome.value,
                    **asdict(counts),
                    error=_short(error) if error else None,
                    heartbeat_at=finished,
                )
                .execution_options(synchronize_session=False)
            )

        try:
            # Sets fixed values: repeating it after a lost answer changes nothing.
            self._retry(
                "record processor run",
                lambda: self._db.run("record processor run", write),
                self._record_deadline(),
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.error("could not record the end of processor run %d: %s", run_id, exc)
