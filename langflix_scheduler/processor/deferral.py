"""Deferrals for quota exhaustion and YouTube's channel upload limit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from .. import history, ledger
from ..db import schedules, timeline
from ..db.models import QuotaUsage, Schedule
from ..db.schedules import clear_lease
from ..db.types import Filter, Session
from ..errors import (
    SchedulerError,
)
from ..quota import quota_date_of
from ._state import (
    _DEFER_PAGE,
    _MAX_DEFER_PAGES,
    _SCHEDULED,
    _Attempt,
    _Kind,
    _Outcome,
    _short,
)
from .decide import Decision
from .events import ProcessorEvent, ProcessorEventKind
from .failures import _Failures

logger = logging.getLogger(__name__)


class _Deferrals(_Failures):
    """Deferring one schedule and the others the limit also blocks."""

    def _defer_quota(self, attempt: _Attempt, decision: Decision, why: str) -> _Outcome:
        """Quota exhausted: this row and the project's rows of earlier quota days wait."""
        until, resume_day = decision.defer_until, decision.resume_day
        assert until is not None
        assert resume_day is not None
        logger.warning(
            "YouTube quota of API project %s is exhausted (%s); deferring its uploads planned "
            "before quota day %s to %s",
            attempt.api_project,
            why,
            resume_day.isoformat(),
            until.isoformat(),
        )
        others = schedules.of_project_before_quota_day(attempt.api_project, resume_day)
        return self._defer(attempt, until, decision.reason, others)

    def _defer_channel(self, attempt: _Attempt, decision: Decision, why: str) -> _Outcome:
        """YouTube's channel upload limit: the channel's rows due before the limit ends wait."""
        until = decision.defer_until
        assert until is not None
        logger.warning(
            "channel %s hit YouTube's upload limit (%s); deferring its uploads due before %s",
            attempt.channel_id,
            why,
            until.isoformat(),
        )
        others = schedules.of_channel_publishing_before(
            attempt.channel_id, until + self.upload_lead_time
        )
        return self._defer(attempt, until, decision.reason, others)

    def _defer_qday(self, row: Schedule, until: datetime) -> date:
        due = row.scheduled_publish_time - self.upload_lead_time
        return quota_date_of(max(until, due), self._quota_tz)

    def _move_reservation(
        self, row: Schedule, new_qday: date, quota: Mapping[tuple[date, str], QuotaUsage]
    ) -> None:
        if new_qday == row.quota_date:
            return
        reserved = dict(row.reserved_quota or {})
        ledger.release_reservation(quota, row.quota_date, reserved)
        ledger.reserve(quota, new_qday, reserved)
        row.quota_date = new_qday

    def _defer(self, attempt: _Attempt, until: datetime, reason: str, others: Filter) -> _Outcome:
        now = self._now()
        uri, sent, total = attempt.progress_snapshot()

        def apply_own(
            session: Session, row: Schedule, days: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            self._move_reservation(row, self._defer_qday(row, until), quota)
            row.upload_status = _SCHEDULED
            row.next_attempt_at = until
            row.last_error = _short(reason)
            clear_lease(row)
            row.updated_at = now
            if uri is not None and uri == row.upload_session_uri:
                row.bytes_uploaded = max(row.bytes_uploaded, sent)
            if total is not None and (uri is None or uri == row.upload_session_uri):
                row.bytes_total = total
            timeline.append(session.connection(), self._deferred_entry(row.id, now, reason, until))

        own = self._durable(
            "defer upload",
            attempt.schedule_id,
            lambda: self._with_counter_locks(
                "defer upload",
                attempt.schedule_id,
                allowed=self._owned_by(attempt),
                new_keys=lambda r: [
                    (self._defer_qday(r, until), b) for b in (r.reserved_quota or {})
                ],
                apply=apply_own,
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempt.attempts, reason),
        )
        if own is None:
            return self._lost(attempt)
        events = [
            self._event(
                ProcessorEventKind.DEFERRED,
                own,
                attempts=own.attempts,
                video_id=own.youtube_video_id,
                error=reason,
                next_attempt_at=until,
                at=now,
            )
        ]
        events += self._defer_rest(others, until, now, reason)
        return _Outcome(_Kind.DEFERRED, events, deferred=len(events), error=reason)

    def _deferred_entry(
        self, schedule_id: int, now: datetime, reason: str, until: datetime
    ) -> timeline.TimelineEntry:
        return history.waiting(
            schedule_id,
            kind="deferred",
            at=now,
            error=reason,
            next_at=until,
            worker=self.worker_id,
        )

    def _defer_rest(
        self, others: Filter, until: datetime, now: datetime, reason: str
    ) -> list[ProcessorEvent]:
        """Defer the other rows the same limit blocks; their events (none when it failed)."""
        try:
            moved = self._defer_others(others, until, now, reason)
        except SchedulerError as exc:
            logger.error("deferring the other pending uploads failed: %s", exc)
            return []
        return [
            self._event(
                ProcessorEventKind.DEFERRED,
                row,
                attempts=row.attempts,
                error=reason,
                next_attempt_at=until,
                at=now,
            )
            for row in moved
        ]

    def _defer_others(
        self, where: Filter, until: datetime, now: datetime, reason: str
    ) -> list[Schedule]:
        """Defer matching ``scheduled`` rows to ``until``, page by page, moving reservations."""
        pending = schedules.waiting_before(where, until)
        moved: list[Schedule] = []
        last_id = 0
        for _ in range(_MAX_DEFER_PAGES):
            page = self._db.run(
                "find uploads to defer",
                lambda s, after=last_id: schedules.page_after(s, pending, after, _DEFER_PAGE),  # type: ignore[misc]
                read_only=True,
            )
            if not page:
                break
            last_id = page[-1].id

            def txn(session: Session, page: list[Schedule] = page) -> list[Schedule]:
                keys: set[tuple[str, date, str]] = set()
                for r in page:
                    for b in r.reserved_quota or {}:
                        keys.add((r.api_project, r.quota_date, b))
                        keys.add((r.api_project, self._defer_qday(r, until), b))
                _, locked = ledger.lock_counters(
                    session, self._db.dialect, (), keys, self._policy.buckets
                )
                seen = {r.id: r for r in page}
                done: list[Schedule] = []
                for row in schedules.lock_matching(session, seen, pending):
                    before = seen[row.id]
                    if (row.quota_date, row.reserved_quota) != (
                        before.quota_date,
                        before.reserved_quota,
                    ):
                        continue  # changed meanwhile (rescheduled): leave it alone
                    project_quota = {
                        (d, b): q for (p, d, b), q in locked.items() if p == row.api_project
                    }
                    self._move_reservation(row, self._defer_qday(row, until), project_quota)
                    row.next_attempt_at = until
                    row.updated_at = now
                    done.append(row)
                session.flush()
                # One multi-row INSERT for the page's timeline entries, in its transaction.
                timeline.append_many(
                    session.connection(),
                    (self._deferred_entry(r.id, now, reason, until) for r in done),
                )
                return done

            moved.extend(self._db.run("defer uploads", txn))
            if len(page) < _DEFER_PAGE:
                break
        return moved
