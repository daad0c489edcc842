"""The ``processor_runs`` rows: start (with heartbeat and lease), heartbeat, end, skipped."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime

from ..db import runs
from ..db.types import Session
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

        self._db.run(
            "record skipped processor run",
            lambda s: runs.insert_run(
                s, self.worker_id, now, skipped_outcome=RunOutcome.SKIPPED.value
            ),
        )
        return ProcessReport(worker_id=self.worker_id, outcome=RunOutcome.SKIPPED, skipped=True)

    def _start_run_row(self, started: datetime) -> int:
        """Insert the ``running`` row (with its first heartbeat); retried with backoff. When the
        answer to the insert is lost, the row is looked up by worker and start time."""

        def write(session: Session) -> int:
            return runs.insert_run(session, self.worker_id, started, lease=self.lease)

        def find(session: Session) -> int | None:
            return runs.find_running(session, self.worker_id, started, self._last_run_id)

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
        stmt = runs.heartbeat_run(run_id, now, self.lease)
        try:
            self._execute_count("record processor run heartbeat", stmt)
        except SchedulerError as exc:
            logger.warning("heartbeat of processor run %d failed: %s", run_id, exc)

    def _finish_run_row(
        self, run_id: int, counts: _Counts, outcome: RunOutcome, error: str | None
    ) -> None:
        finished = self._now()

        def write(session: Session) -> None:
            runs.finish_run(
                session,
                run_id,
                finished,
                outcome.value,
                asdict(counts),
                _short(error) if error else None,
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
