"""Public result types of the processor: events passed to ``on_event``, and run reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["ProcessReport", "ProcessorEvent", "ProcessorEventKind", "RunOutcome"]


class ProcessorEventKind(enum.StrEnum):
    """What happened to a schedule."""

    #: Claimed by a processor: an attempt starts (``attempts`` counts the earlier failed ones).
    CLAIMED = "claimed"
    UPLOADED = "uploaded"
    FAILED = "failed"
    RETRIED = "retried"
    DEFERRED = "deferred"
    RESCUED = "rescued"
    #: Given up, but the video may be on YouTube: ``needs_review``, slot and quota kept.
    NEEDS_REVIEW = "needs_review"
    # A check on YouTube found the video in a new state (``domain.VideoState``; the problem
    # text, if any, is in ``error``; ``next_attempt_at`` is the next check, None: no more).
    PROCESSING = "processing"
    READY = "ready"
    PUBLISHED = "published"
    REJECTED = "rejected"
    PROCESSING_FAILED = "processing_failed"
    MISMATCH = "mismatch"
    HELD_PRIVATE = "held_private"
    MISSING = "missing"
    DELETED = "deleted"
    #: The channel's refresh token was refused (``invalid_grant``): its uploads are not claimed
    #: until ``langflix-scheduler auth --channel X`` succeeds (``schedule_id``: the upload
    #: that found out; it was released without counting an attempt).
    CHANNEL_PAUSED = "channel_paused"
    # A change of plan after upload (reschedule, unpublish, delete, update) whose requester died
    # or lost YouTube's answer, finished by the run's recovery (``change_id``, ``change_kind``).
    #: YouTube holds the change now (it already did, or it was sent again).
    CHANGE_APPLIED = "change_applied"
    #: The change could no longer be sent: the schedule is put back (``error``: why).
    CHANGE_ROLLED_BACK = "change_rolled_back"


class RunOutcome(enum.StrEnum):
    """How a run ended (stored in ``processor_runs.outcome``)."""

    OK = "ok"
    SKIPPED = "skipped"
    STOPPED = "stopped"
    UNAUTHORIZED = "unauthorized"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class ProcessorEvent:
    """One transition, passed to ``on_event`` after it was committed.

    Attributes:
        kind: what happened.
        schedule_id: the schedule.
        channel_id: its channel.
        worker_id: the processor that made the transition.
        at: when (processor clock).
        attempts: failed attempts counted so far.
        video_id: the YouTube video id, when known.
        error: the error that caused a failure, retry or deferral; for a video state found by
            a check, what is wrong and what to do (None when all is well).
        next_attempt_at: when a retried or deferred schedule becomes due again; for a video
            state found by a check, when it is checked next (None: no more automatic checks).
        change_id: for ``change_applied`` / ``change_rolled_back``, the change of plan.
        change_kind: its kind (``reschedule``, ``unpublish``, ``delete``, ``update``).
    """

    kind: ProcessorEventKind
    schedule_id: int
    channel_id: str
    worker_id: str
    at: datetime
    attempts: int
    video_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    change_id: int | None = None
    change_kind: str | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessReport:
    """What one run did.

    Attributes:
        worker_id: the processor.
        outcome: how the run ended.
        claimed: schedules claimed.
        uploaded: schedules completed.
        failed: schedules marked failed (including rescued ones whose attempts were spent).
        retried: schedules put back for a retry after a transient failure.
        deferred: schedules deferred for quota or the channel upload limit (all of them, not only
            the one whose upload hit the limit).
        rescued: expired leases taken back.
        verified: uploaded videos checked on YouTube (``videos.list``) and recorded.
        changes_recovered: pending changes of plan this run finished (applied or rolled back).
        changes_rolled_back: of them, those rolled back.
        skipped: the run did nothing because another run held the exclusive lock.
        duration: wall-clock time the run took.
        error: why the run stopped early (``outcome`` ``error`` or ``unauthorized``).
    """

    worker_id: str
    outcome: RunOutcome
    claimed: int = 0
    uploaded: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    rescued: int = 0
    verified: int = 0
    changes_recovered: int = 0
    changes_rolled_back: int = 0
    skipped: bool = False
    duration: timedelta = timedelta(0)
    error: str | None = None
