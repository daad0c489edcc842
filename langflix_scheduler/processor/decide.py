"""What to do after an upload attempt raised: a pure function of the exception, the attempt's
count and the settings (no database, no clock of its own, no network).

:func:`decide` maps what the uploader raised to one :class:`Decision`:

=================================  ===============================================================
raised                             decision
=================================  ===============================================================
lease lost (fence failed)          ``LOST``: write nothing
stop requested                     ``RELEASE``: back to ``scheduled``, no attempt counted
                                   (``LOST`` when the lease was lost meanwhile)
``QuotaExhaustedError``            ``DEFER_QUOTA`` to ``resume_at`` (never before the next quota
                                   day by our clock); rows of quota days before it move too
``UploadLimitExceededError``       ``DEFER_CHANNEL`` to now + ``retry_after`` (>= MIN_DEFERRAL)
``AuthorizationError`` with reason  ``PAUSE_CHANNEL``: release (no attempt counted) and pause the
``invalid_grant``                  channel (its token is dead: ``auth`` lifts the pause); the run
                                   goes on with other channels
``AuthorizationError``             ``UNAUTHORIZED``: release, and the run claims nothing more
``PermanentUploadError``,          ``GIVE_UP`` (permanent)
``OSError`` (a local file),
another ``SchedulerError``
``TransientUploadError``, another  ``RETRY`` at now + backoff, or ``GIVE_UP`` once
``UploadError``, anything else     ``max_attempts`` are spent
=================================  ===============================================================

``GIVE_UP`` ends as ``completed`` (the video exists), ``failed`` or ``needs_review``: that depends
on what a stored upload session answers, decided by :func:`langflix_scheduler._give_up.
decide_give_up` once the session was asked.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import date, datetime

from .._backoff import backoff_delay
from .._time import ensure_aware
from ..errors import (
    AuthorizationError,
    PermanentUploadError,
    QuotaExhaustedError,
    SchedulerError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from ..quota import next_quota_reset, quota_date_of
from ._state import _LeaseLost, _StopRequested
from .settings import MAX_RETRY_DELAY, MIN_DEFERRAL, ProcessorSettings

__all__ = ["Action", "AttemptView", "Decision", "decide", "failure_decision"]

#: ``AuthorizationError.reason`` of a refresh token Google refused (expired or revoked): see
#: :func:`langflix_scheduler.youtube.auth.classify_refresh_error`.
INVALID_GRANT = "invalid_grant"

#: The reason recorded when a stop request ends an upload at a chunk boundary.
STOPPED = "stopped at a chunk boundary; the session is resumed"


class Action(enum.StrEnum):
    """What the processor does with the schedule."""

    LOST = "lost"
    RELEASE = "release"
    UNAUTHORIZED = "unauthorized"
    PAUSE_CHANNEL = "pause_channel"
    DEFER_QUOTA = "defer_quota"
    DEFER_CHANNEL = "defer_channel"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, kw_only=True)
class AttemptView:
    """What :func:`decide` needs to know about the attempt."""

    #: Failed attempts counted before this one.
    attempts: int
    #: The lease was taken over meanwhile.
    lost: bool = False


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome :func:`decide` chose.

    Attributes:
        action: what to do.
        reason: ``last_error`` to record (and the event's error).
        attempts: the attempt count to store (one more for ``RETRY``/``GIVE_UP``).
        at: the time the decision was made for.
        retry_at: when a retried schedule is due again (``RETRY``).
        defer_until: when deferred schedules are due again (``DEFER_*``).
        resume_day: the quota day uploads resume on (``DEFER_QUOTA``): every ``scheduled`` row
            of the project planned for an earlier quota day is deferred too.
        unexpected: the uploader raised something that is not an ``UploadError`` (logged with
            its traceback).
    """

    action: Action
    reason: str
    attempts: int
    at: datetime
    retry_at: datetime | None = None
    defer_until: datetime | None = None
    resume_day: date | None = None
    unexpected: bool = False


def decide(
    exc: BaseException,
    attempt: AttemptView,
    settings: ProcessorSettings,
    *,
    now: datetime,
    quota_timezone: str,
    rng: random.Random | None = None,
) -> Decision:
    """The decision for ``exc`` raised by an upload of ``attempt`` at ``now``. Pure."""
    kept = attempt.attempts
    if isinstance(exc, _LeaseLost) or (isinstance(exc, _StopRequested) and attempt.lost):
        return Decision(action=Action.LOST, reason="", attempts=kept, at=now)
    if isinstance(exc, _StopRequested):
        return Decision(action=Action.RELEASE, reason=STOPPED, attempts=kept, at=now)
    if isinstance(exc, QuotaExhaustedError):
        until = max(ensure_aware(exc.resume_at), next_quota_reset(now, quota_timezone))
        return Decision(
            action=Action.DEFER_QUOTA,
            reason=str(exc),
            attempts=kept,
            at=now,
            defer_until=until,
            resume_day=quota_date_of(until, quota_timezone),
        )
    if isinstance(exc, UploadLimitExceededError):
        until = now + max(exc.retry_after, MIN_DEFERRAL)
        return Decision(
            action=Action.DEFER_CHANNEL, reason=str(exc), attempts=kept, at=now, defer_until=until
        )
    if isinstance(exc, AuthorizationError):
        reason = f"authorization failed: {exc}"
        action = Action.PAUSE_CHANNEL if exc.reason == INVALID_GRANT else Action.UNAUTHORIZED
        return Decision(action=action, reason=reason, attempts=kept, at=now)
    reason, permanent, unexpected = _failure_of(exc)
    return failure_decision(
        reason,
        permanent=permanent,
        attempts=kept,
        settings=settings,
        now=now,
        rng=rng,
        unexpected=unexpected,
    )


def _failure_of(exc: BaseException) -> tuple[str, bool, bool]:
    """``(reason, permanent, unexpected)`` of a failed upload."""
    if isinstance(exc, PermanentUploadError):
        return str(exc), True, False
    if isinstance(exc, TransientUploadError | UploadError):
        return str(exc), False, False
    if isinstance(exc, OSError):
        return f"local file error: {type(exc).__name__}: {exc}", True, False
    if isinstance(exc, SchedulerError):
        return str(exc), True, False
    return f"unexpected {type(exc).__name__}: {exc}", False, True


def failure_decision(
    reason: str,
    *,
    permanent: bool,
    attempts: int,
    settings: ProcessorSettings,
    now: datetime,
    rng: random.Random | None = None,
    unexpected: bool = False,
) -> Decision:
    """Retry or give up after a failure; ``attempts`` were counted before this one. Pure (the
    retry delay's jitter comes from ``rng``)."""
    counted = attempts + 1
    if permanent or counted >= settings.max_attempts:
        if not permanent:
            reason = f"{reason} (gave up after {counted} attempts)"
        return Decision(
            action=Action.GIVE_UP, reason=reason, attempts=counted, at=now, unexpected=unexpected
        )
    delay = backoff_delay(
        max(1, counted), base=settings.retry_base, cap=MAX_RETRY_DELAY, rng=rng or random.Random()
    )
    return Decision(
        action=Action.RETRY,
        reason=reason,
        attempts=counted,
        at=now,
        retry_at=now + delay,
        unexpected=unexpected,
    )
