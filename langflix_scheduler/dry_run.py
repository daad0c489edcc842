"""What the next processor run would do, without doing it: the dry-run plan every front end shares.

:func:`dry_run_plan` takes the schedules a run would claim now (the library's one due rule,
:meth:`ScheduleManager.due_schedules`) and checks each with the
:class:`~langflix_scheduler.youtube.uploader.DryRunUploader`: the file is there and readable, the
metadata is valid, and it says which ``privacyStatus``/``publishAt`` and which API operations a
real upload would send. No network, no database writes. ``process --dry-run`` renders the plan;
a dashboard can show the same one (:meth:`ScheduleManager.dry_run_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .domain import ScheduledVideo
from .errors import UploadError
from .youtube.uploader import DryRunUploader, UploadRequest

if TYPE_CHECKING:
    from .manager import ScheduleManager

__all__ = ["DryRunItem", "DryRunPlan", "dry_run_plan"]


@dataclass(frozen=True)
class DryRunItem:
    """One due schedule and what a real upload of it would send (or why it would fail).

    Attributes:
        schedule: the due schedule.
        error: why the upload would fail (``None`` when it would go through).
        operations: the API operations a real upload would perform (empty on ``error``).
        privacy_status: the ``privacyStatus`` it would send (``None`` on ``error``).
        publish_at: the ``publishAt`` it would send (``None``: published without scheduling).
        bytes_sent: media bytes the dry-run uploader read from the file.
    """

    schedule: ScheduledVideo
    error: str | None = None
    operations: tuple[str, ...] = ()
    privacy_status: str | None = None
    publish_at: datetime | None = None
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        """True when a real upload would be attempted with these values."""
        return self.error is None


@dataclass(frozen=True)
class DryRunPlan:
    """What a processor run for ``channel`` and ``api_project`` would take at ``now``."""

    now: datetime
    channel: str
    api_project: str
    items: tuple[DryRunItem, ...]

    @property
    def looked_at(self) -> str:
        """The channel and project the plan is for, as ``channel X, API project Y``."""
        return f"channel {self.channel}, API project {self.api_project}"


def dry_run_plan(
    manager: ScheduleManager,
    *,
    channel: str | None = None,
    api_project: str | None = None,
    now: datetime | None = None,
) -> DryRunPlan:
    """The plan of a run at ``now`` (default: the manager's clock) for ``channel`` and
    ``api_project`` (default: the manager's configured ones). Reads only; sends nothing."""
    cfg = manager.config
    at = manager.now() if now is None else now
    channel = cfg.channel if channel is None else channel
    api_project = cfg.api_project if api_project is None else api_project
    due = manager.due_schedules(at, channel=channel, api_project=api_project)
    uploader = DryRunUploader(clock=lambda: at)
    items = tuple(_check(uploader, s) for s in due)
    return DryRunPlan(now=at, channel=channel, api_project=api_project, items=items)


def _check(uploader: DryRunUploader, schedule: ScheduledVideo) -> DryRunItem:
    request = UploadRequest(
        video_path=schedule.video_path,
        metadata=schedule.metadata,
        publish_at=schedule.scheduled_publish_time,
        video_id=schedule.youtube_video_id,
    )
    try:
        result = uploader.upload(request)
    except UploadError as exc:
        return DryRunItem(schedule=schedule, error=str(exc))
    return DryRunItem(
        schedule=schedule,
        operations=tuple(result.operations),
        privacy_status=result.privacy_status,
        publish_at=result.publish_at,
        bytes_sent=result.bytes_sent,
    )
