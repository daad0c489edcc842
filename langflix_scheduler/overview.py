"""What needs a look: the one classification of schedules that every front end shares.

The CLI's ``status``, the web dashboard and any app ask :meth:`ScheduleManager.attention` and get
an :class:`Attention`; none of them classifies rows itself. The classes:

``needs_review``
    The outcome on YouTube is unknown; the row keeps its slot and quota until someone looks.
``stuck``
    ``uploading`` with an expired (or missing) lease: the worker died or stalled; the next
    processor run takes it back.
``in_flight``
    ``uploading`` under a live lease (not a problem, shown for context).
``failed``
    Gave up (newest first, at most ``limit``; ``failed_total`` counts all of them).
``overdue``
    ``scheduled`` and its publish time has passed.
``waiting``
    ``scheduled`` with a retry or deferral time still in the future.
``paused_channels``
    Channels whose token was refused (``invalid_grant``): none of their uploads is claimed
    until ``langflix-scheduler auth --channel X`` succeeds (:class:`~.domain.ChannelPause`).
``due``
    What the next processor run would claim for the configured channel and API project;
    ``due_elsewhere`` counts due schedules of other channel/project pairs.

After the upload, what the processor's last check found on YouTube (``video_problem`` says
what happened and what to do; nothing is ever uploaded again automatically):

``rejected``
    YouTube rejected the upload (duplicate, copyright, terms ...): fix it and book it again.
``processing_failed``
    YouTube could not process the video: check the file and book it again.
``mismatch``
    YouTube holds another privacy or ``publishAt`` than planned: set it back in YouTube Studio
    or reschedule (rechecked every few hours).
``held_private``
    The publish time passed and the video is still private (a project locked private, or held
    back by YouTube): look in YouTube Studio (rechecked every few hours).
``missing``
    ``videos.list`` did not return the video: deleted, or the channel's token belongs to
    another Google account (``langflix-scheduler auth --check``). Checked again after 10
    minutes and an hour; ``deleted`` after three absent answers spanning at least an hour.
``deleted``
    The video is gone from YouTube: book it again if it should be published.
``processing_stuck``
    Still ``processing`` on YouTube after the last automatic check
    (:data:`~langflix_scheduler.processor.verdict.MAX_CHECKS`): nobody checks it any more;
    look in YouTube Studio (book it again when YouTube never finishes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from .domain import ChannelPause, ScheduledVideo, UploadStatus, VideoState

if TYPE_CHECKING:
    from .manager import ScheduleManager

ProblemKind = Literal[
    "needs_review",
    "stuck",
    "failed",
    "overdue",
    "waiting",
    "rejected",
    "processing_failed",
    "mismatch",
    "held_private",
    "missing",
    "deleted",
    "processing_stuck",
]
#: The classes after the upload (one per problem ``VideoState``, same names).
VIDEO_PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    "rejected",
    "processing_failed",
    "mismatch",
    "held_private",
    "missing",
    "deleted",
)
PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    "needs_review",
    "stuck",
    "failed",
    "overdue",
    "waiting",
    *VIDEO_PROBLEM_KINDS,
    "processing_stuck",
)
_VIDEO_HELP = {
    "rejected": "YouTube rejected the upload: fix the cause and book the video again",
    "processing_failed": "YouTube could not process the video: check the file, book it again",
    "mismatch": "YouTube holds another privacy or publish time than planned",
    "held_private": "the publish time passed and the video is still private",
    "missing": "not found on YouTube: deleted, or the token belongs to another account; "
    "checking again",
    "deleted": "the video is no longer on YouTube: book it again if it should be published",
    "processing_stuck": (
        "still processing on YouTube and no longer checked automatically: look in YouTube "
        "Studio; book the video again if YouTube never finishes it"
    ),
}


@dataclass(frozen=True)
class Attention:
    """Schedules that need a look at one instant (see the module docstring for each class)."""

    now: datetime
    channel: str
    api_project: str
    needs_review: tuple[ScheduledVideo, ...]
    stuck: tuple[ScheduledVideo, ...]
    in_flight: tuple[ScheduledVideo, ...]
    failed: tuple[ScheduledVideo, ...]
    failed_total: int
    overdue: tuple[ScheduledVideo, ...]
    waiting: tuple[ScheduledVideo, ...]
    due: tuple[ScheduledVideo, ...]
    due_elsewhere: Mapping[tuple[str, str], int] = field(default_factory=dict)
    rejected: tuple[ScheduledVideo, ...] = ()
    processing_failed: tuple[ScheduledVideo, ...] = ()
    mismatch: tuple[ScheduledVideo, ...] = ()
    held_private: tuple[ScheduledVideo, ...] = ()
    missing: tuple[ScheduledVideo, ...] = ()
    deleted: tuple[ScheduledVideo, ...] = ()
    processing_stuck: tuple[ScheduledVideo, ...] = ()
    paused_channels: tuple[ChannelPause, ...] = ()

    def problems(self) -> list[tuple[ProblemKind, ScheduledVideo]]:
        """Every (class, schedule) pair that needs a look, in :data:`PROBLEM_KINDS` order."""
        return [(kind, s) for kind in PROBLEM_KINDS for s in getattr(self, kind)]

    @property
    def is_clear(self) -> bool:
        """True when nothing needs a look (in-flight and due schedules are not problems)."""
        return not self.problems() and not self.paused_channels


def attention(
    manager: ScheduleManager, *, limit: int = 20, now: datetime | None = None
) -> Attention:
    """Classify the manager's schedules at ``now`` (default: its clock). See :class:`Attention`."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    cfg = manager.config
    at = manager.now() if now is None else now
    uploading = manager.list_schedules(status=UploadStatus.UPLOADING)
    stuck = [s for s in uploading if s.lease_expires_at is None or s.lease_expires_at < at]
    failed = sorted(
        manager.list_schedules(status=UploadStatus.FAILED),
        key=lambda s: s.updated_at,
        reverse=True,
    )
    soon = manager.list_schedules(
        status=UploadStatus.SCHEDULED, end=at + cfg.upload_lead_time + timedelta(days=1)
    )
    here = (cfg.channel, cfg.api_project)
    due_anywhere = manager.due_schedules(at)
    elsewhere: dict[tuple[str, str], int] = {}
    for s in due_anywhere:
        key = (s.channel_id, s.api_project)
        if key != here:
            elsewhere[key] = elsewhere.get(key, 0) + 1
    video_problems = manager.list_schedules(
        status=UploadStatus.COMPLETED, video_state=[VideoState(k) for k in VIDEO_PROBLEM_KINDS]
    )
    by_state = {
        kind: tuple(s for s in video_problems if s.video_state == kind)
        for kind in VIDEO_PROBLEM_KINDS
    }
    processing = manager.list_schedules(
        status=UploadStatus.COMPLETED, video_state=[VideoState.PROCESSING]
    )
    return Attention(
        now=at,
        channel=cfg.channel,
        api_project=cfg.api_project,
        needs_review=tuple(manager.list_schedules(status=UploadStatus.NEEDS_REVIEW)),
        stuck=tuple(stuck),
        in_flight=tuple(s for s in uploading if s not in stuck),
        failed=tuple(failed[:limit]),
        failed_total=len(failed),
        overdue=tuple(s for s in soon if s.scheduled_publish_time < at),
        waiting=tuple(s for s in soon if s.next_attempt_at is not None and s.next_attempt_at > at),
        due=tuple(s for s in due_anywhere if (s.channel_id, s.api_project) == here),
        due_elsewhere=elsewhere,
        paused_channels=tuple(manager.paused_channels()),
        # Past the last automatic check: the verdict left no next check.
        processing_stuck=tuple(s for s in processing if s.next_check_at is None),
        **by_state,
    )


def explain(kind: ProblemKind, schedule: ScheduledVideo, zone: ZoneInfo) -> str:
    """One line saying why ``schedule`` is in class ``kind`` and what happens next."""
    s = schedule
    if kind == "stuck":
        return (
            f"lease of {s.lease_owner or '?'} expired {format_local(s.lease_expires_at, zone)}; "
            "the next processor run takes it back"
        )
    if kind in ("failed", "needs_review"):
        return s.last_error or kind
    if kind in _VIDEO_HELP:
        checked = f" (video {s.youtube_video_id}, checked {format_local(s.checked_at, zone)})"
        return (s.video_problem or _VIDEO_HELP[kind]) + checked
    if kind == "waiting":
        return f"retry/deferred until {format_local(s.next_attempt_at, zone)}: {s.last_error or ''}"
    return "publish time passed and not uploaded yet" + (
        f" ({s.last_error})" if s.last_error else ""
    )


def format_local(when: datetime | None, zone: ZoneInfo) -> str:
    """``when`` in ``zone`` as ``YYYY-MM-DD HH:MM TZ`` (``-`` for None)."""
    if when is None:
        return "-"
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
