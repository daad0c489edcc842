"""What a check of an uploaded video on YouTube means: a pure function of what ``videos.list``
answered, the schedule's plan, the time and the checks done so far (no database, no network).

:func:`decide_check` maps one answer to one :class:`CheckVerdict` (the new
:class:`~langflix_scheduler.domain.VideoState`, a problem text saying what happened and what to
do, and when to check next):

=========================================  =====================================================
YouTube holds                              verdict
=========================================  =====================================================
nothing (absent from the answer)           ``missing`` (deleted, or the token belongs to
                                           another account); checked again after
                                           :data:`MISSING_RECHECK` (10 minutes, then an hour);
                                           ``deleted`` (terminal) at the :data:`MISSING_CHECKS`
                                           th absent answer in a row (at least an hour after
                                           the first), unless the processor has no channel
                                           filter (then it stays ``missing``)
``uploadStatus=rejected``                  ``rejected`` with the reason (terminal)
``uploadStatus=failed``, processing        ``processing_failed`` with the reason (terminal)
``failed`` / ``terminated``
``uploadStatus=deleted``                   ``deleted`` (terminal)
still processing                           ``processing``; next check after 1, 2, 5, 10, 30, 60
                                           minutes, then hourly; no more after
                                           :data:`MAX_CHECKS` checks (the problem says so)
processed, publish time ahead, the         ``ready``; checked once more at the publish time plus
planned privacy and ``publishAt``          :data:`PUBLISH_GRACE` (the publish confirmation)
processed, publish time passed, the        ``published`` (terminal)
planned privacy
publish time passed by more than the       ``held_private`` (the project is locked private, or
grace, still private as planned before     YouTube held the video back); rechecked every
                                           :data:`PROBLEM_RECHECK`
another privacy or ``publishAt``           ``mismatch`` with both (rechecked likewise, and at
                                           the publish confirmation when that comes first)
=========================================  =====================================================

Nothing here ever asks for a new upload: every problem text says what a person can do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from .._time import ensure_aware
from ..domain import Privacy, VideoState
from ..youtube.uploader import publication_status
from ..youtube.videos import RemoteVideo

__all__ = [
    "CHECK_BACKOFF",
    "MAX_CHECKS",
    "MISSING_CHECKS",
    "MISSING_RECHECK",
    "PROBLEM_RECHECK",
    "PUBLISH_GRACE",
    "CheckVerdict",
    "VideoPlan",
    "decide_check",
    "first_check_at",
    "plan_of",
]

#: Waits between checks while YouTube processes a video (the first one after the upload).
CHECK_BACKOFF: tuple[timedelta, ...] = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 30, 60))
#: After the publish time, how long YouTube gets to make the video public before it counts as
#: held back (the publish confirmation runs at publish time + this).
PUBLISH_GRACE = timedelta(minutes=5)
#: How often a video in ``mismatch`` or ``held_private`` is looked at again (someone may fix
#: it in YouTube Studio; it then becomes ``ready`` or ``published``).
PROBLEM_RECHECK = timedelta(hours=6)
#: No automatic check after this many while processing or in a problem state (about two days
#: of processing; the row says so and a person looks).
MAX_CHECKS = 48
#: Absent answers in a row after which a ``missing`` video counts as ``deleted``.
MISSING_CHECKS = 3
#: Waits between the checks of a ``missing`` video: the third absent answer comes at least
#: 70 minutes after the first (a token of another account is found out meanwhile).
MISSING_RECHECK: tuple[timedelta, ...] = (timedelta(minutes=10), timedelta(hours=1))

_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, kw_only=True)
class VideoPlan:
    """What the schedule planned on YouTube.

    Attributes:
        privacy: the privacy the video should have once published (``metadata.privacy``).
        publish_time: the scheduled publish time.
        publish_at_sent: whether the upload sent ``privacyStatus=private`` + ``publishAt``
            (a public video whose publish time was at least ``PUBLISH_AT_MIN_LEAD`` ahead).
    """

    privacy: str
    publish_time: datetime
    publish_at_sent: bool


@dataclass(frozen=True, kw_only=True)
class CheckVerdict:
    """The outcome of one check: the state, the problem (None when all is well: ``processing``,
    ``ready``, ``published``), the next check (None: no more), and what YouTube holds."""

    state: VideoState
    problem: str | None
    next_check_at: datetime | None
    privacy: str | None = None
    publish_at: datetime | None = None
    #: The ``check_count`` to store instead of one more (entering ``missing`` restarts the
    #: count: it then counts the absent answers in a row).
    check_count: int | None = None


def first_check_at(uploaded_at: datetime) -> datetime:
    """When a video uploaded at ``uploaded_at`` is first checked."""
    return uploaded_at + CHECK_BACKOFF[0]


def plan_of(privacy: str, publish_time: datetime, uploaded_at: datetime | None) -> VideoPlan:
    """The plan of a schedule: ``publishAt`` was sent when :func:`publication_status` would
    send one at the upload time (the uploader's own rule)."""
    at = publish_time if uploaded_at is None else uploaded_at
    _, publish_at = publication_status(Privacy(privacy), publish_time, now=at)
    return VideoPlan(
        privacy=privacy, publish_time=publish_time, publish_at_sent=publish_at is not None
    )


def decide_check(
    remote: RemoteVideo | None,
    plan: VideoPlan,
    *,
    now: datetime,
    check_count: int,
    state: str | None = None,
    confirm_deleted: bool = True,
) -> CheckVerdict:
    """The verdict of one check (``check_count``: checks done before this one; ``state``: the
    video state the check started from). ``confirm_deleted`` False (a processor without a
    channel filter, which cannot tell whose token it holds): an absent video stays
    ``missing``."""
    now = ensure_aware(now)
    if remote is None:
        return _absent(now, check_count, state, confirm_deleted)
    upload = (remote.upload_status or "").lower()
    processing = (remote.processing_status or "").lower()
    if upload == "rejected":
        return _terminal(
            VideoState.REJECTED,
            f"YouTube rejected the upload ({_reason(remote.failure_reason)}); fix the cause "
            "(duplicate, copyright, terms, length ...) and book the video again",
            remote,
        )
    if upload == "failed" or processing in ("failed", "terminated"):
        reason = remote.failure_reason or remote.processing_failure_reason
        return _terminal(
            VideoState.PROCESSING_FAILED,
            f"YouTube could not process the video ({_reason(reason)}); check the file "
            "(codec, corruption) and book it again",
            remote,
        )
    if upload == "deleted":
        return _terminal(
            VideoState.DELETED,
            "YouTube reports the video deleted; nothing is uploaded again automatically",
            remote,
        )
    if upload != "processed" or processing == "processing":
        return _still_processing(remote, now, check_count)
    return _processed(remote, plan, now, check_count)


def _processed(
    remote: RemoteVideo, plan: VideoPlan, now: datetime, check_count: int
) -> CheckVerdict:
    privacy = remote.privacy_status
    publish_time = ensure_aware(plan.publish_time)
    scheduled = (
        plan.privacy == Privacy.PUBLIC.value
        and privacy == Privacy.PRIVATE.value
        and remote.publish_at is not None
        and abs(ensure_aware(remote.publish_at) - publish_time) < _SECOND
    )
    as_is = privacy == plan.privacy and remote.publish_at is None
    confirm_at = publish_time + PUBLISH_GRACE
    if now < publish_time:
        if scheduled or (as_is and not plan.publish_at_sent):
            return _verdict(VideoState.READY, None, confirm_at, remote)
        return _mismatch(remote, plan, now, check_count)
    if privacy == plan.privacy:
        return _verdict(VideoState.PUBLISHED, None, None, remote)
    held = privacy == Privacy.PRIVATE.value and (
        remote.publish_at is None or remote.publish_at <= now or scheduled
    )
    if not held:
        return _mismatch(remote, plan, now, check_count)
    if now < confirm_at:
        return _verdict(VideoState.READY, None, confirm_at, remote)
    problem = (
        f"the publish time {_iso(publish_time)} passed and YouTube still holds the video "
        "private: the API project may be locked private (unverified or unaudited projects), "
        "or YouTube held it back (policy, copyright, review); look in YouTube Studio and "
        "publish it there, or reschedule it"
    )
    return _recheck(VideoState.HELD_PRIVATE, problem, remote, now, check_count)


def _absent(now: datetime, check_count: int, state: str | None, confirm: bool) -> CheckVerdict:
    """Not in the answer: ``missing`` first, ``deleted`` at the :data:`MISSING_CHECKS` th
    absent answer in a row (``check_count`` counts them while ``missing``)."""
    misses = check_count + 1 if state == VideoState.MISSING.value else 1
    if misses >= MISSING_CHECKS and confirm:
        gone = _terminal(
            VideoState.DELETED,
            f"the video is no longer on YouTube ({misses} checks over more than an hour did "
            "not find it; if the channel's token belongs to another Google account, run "
            "`langflix-scheduler auth --check`); nothing is uploaded again automatically: "
            "book it again if it should be published",
        )
        return replace(gone, check_count=misses)
    problem = (
        "not found on YouTube: deleted, or the token belongs to another account "
        "(`langflix-scheduler auth --check`); checking again"
    )
    next_at: datetime | None = now + MISSING_RECHECK[min(misses, len(MISSING_RECHECK)) - 1]
    if misses >= MISSING_CHECKS:
        problem += (
            " (the processor has no channel filter, so it cannot tell whether its token is "
            "this channel's: run it with the channel to confirm the deletion)"
        )
        next_at = now + PROBLEM_RECHECK if misses < MAX_CHECKS else None
    return CheckVerdict(
        state=VideoState.MISSING, problem=problem, next_check_at=next_at, check_count=misses
    )


def _mismatch(
    remote: RemoteVideo, plan: VideoPlan, now: datetime, check_count: int
) -> CheckVerdict:
    planned_at = _iso(plan.publish_time) if plan.publish_at_sent else "none"
    planned_privacy = Privacy.PRIVATE.value if plan.publish_at_sent else plan.privacy
    dropped = (
        plan.publish_at_sent
        and remote.privacy_status == Privacy.PRIVATE.value
        and remote.publish_at is None
    )
    why = (
        "YouTube dropped publishAt (the API project may be locked private)"
        if dropped
        else "someone changed it in YouTube Studio, or YouTube did not apply it"
    )
    problem = (
        f"YouTube holds privacy {remote.privacy_status}, publishAt {_iso(remote.publish_at)}; "
        f"planned privacy {planned_privacy}, publishAt {planned_at} (public at "
        f"{_iso(plan.publish_time)}): {why}; set it in YouTube Studio or reschedule the video"
    )
    confirm_at = ensure_aware(plan.publish_time) + PUBLISH_GRACE
    return _recheck(VideoState.MISMATCH, problem, remote, now, check_count, confirm_at)


def _still_processing(remote: RemoteVideo, now: datetime, check_count: int) -> CheckVerdict:
    done = check_count + 1
    if done >= MAX_CHECKS:
        problem = (
            f"still processing on YouTube after {done} checks; no further automatic check: "
            "look in YouTube Studio"
        )
        return _verdict(VideoState.PROCESSING, problem, None, remote)
    delay = CHECK_BACKOFF[min(done, len(CHECK_BACKOFF) - 1)]
    return _verdict(VideoState.PROCESSING, None, now + delay, remote)


def _recheck(
    state: VideoState,
    problem: str,
    remote: RemoteVideo,
    now: datetime,
    check_count: int,
    confirm_at: datetime | None = None,
) -> CheckVerdict:
    """A problem that may still be fixed: looked at again after :data:`PROBLEM_RECHECK`, or at
    the publish confirmation when that comes first."""
    if check_count + 1 >= MAX_CHECKS:
        return _verdict(state, problem + " (no further automatic check)", None, remote)
    next_at = now + PROBLEM_RECHECK
    if confirm_at is not None and now < confirm_at:
        next_at = min(next_at, confirm_at)
    return _verdict(state, problem, next_at, remote)


def _terminal(state: VideoState, problem: str, remote: RemoteVideo | None = None) -> CheckVerdict:
    return _verdict(state, problem, None, remote)


def _verdict(
    state: VideoState, problem: str | None, next_at: datetime | None, remote: RemoteVideo | None
) -> CheckVerdict:
    return CheckVerdict(
        state=state,
        problem=problem,
        next_check_at=next_at,
        privacy=None if remote is None else remote.privacy_status,
        publish_at=None if remote is None or remote.publish_at is None else remote.publish_at,
    )


def _reason(reason: str | None) -> str:
    return f"reason: {reason}" if reason else "no reason given"


def _iso(when: datetime | None) -> str:
    if when is None:
        return "none"
    return ensure_aware(when).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
