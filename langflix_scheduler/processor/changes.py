"""The processor's step for changes of plan after upload: finish or roll back pending changes
whose requester died or lost YouTube's answer (see :mod:`langflix_scheduler.changes`).

Runs at the start of every run, after the rescue of expired upload leases, with the processor's
after-upload client (``UploadProcessor.videos``) on its channels. A run without such a client
does nothing here. Each change finished goes to ``on_event`` (``change_applied`` /
``change_rolled_back``). A channel whose refresh token is refused (``invalid_grant``) is paused
like an upload pauses it (``channel_paused``): its changes stay pending, and its checks,
recoveries and uploads wait until ``auth`` lifts the pause.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..changes import RecoveredChange, RecoveryReport
from ..errors import SchedulerError
from .events import ProcessorEvent, ProcessorEventKind

if TYPE_CHECKING:
    from .loop import UploadProcessor

__all__ = ["recover_changes"]

logger = logging.getLogger(__name__)

_KINDS = {
    "applied": ProcessorEventKind.CHANGE_APPLIED,
    "rolled_back": ProcessorEventKind.CHANGE_ROLLED_BACK,
}


def recover_changes(processor: UploadProcessor) -> RecoveryReport | None:
    """Recover the expired pending changes of the processor's API project and channels.

    Never raises a library error (a failed recovery is logged; the change stays pending and the
    next run tries again). Returns what was done, or None without an after-upload client.
    """
    if processor.videos is None:
        return None
    channels = None if processor.channels is None else list(processor.channels)
    try:
        report = processor.manager.video_changes.recover(processor.videos, channels=channels)
    except SchedulerError as exc:
        logger.error("recovering pending video changes failed: %s", exc)
        return None
    if report.applied or report.rolled_back or report.still_pending:
        logger.info(
            "video changes recovered: %d applied, %d rolled back, %d still pending",
            report.applied,
            report.rolled_back,
            report.still_pending,
        )
    paused = [_pause(processor, ch, sid, why) for ch, (sid, why) in report.refused.items()]
    events = [_event(processor, c) for c in report.finished]
    processor._emit([*events, *(e for e in paused if e is not None)])
    return report


def _event(processor: UploadProcessor, change: RecoveredChange) -> ProcessorEvent:
    return ProcessorEvent(
        kind=_KINDS[change.outcome],
        schedule_id=change.schedule_id,
        channel_id=change.channel,
        worker_id=processor.worker_id,
        at=processor._now(),
        attempts=0,
        video_id=change.video_id,
        error=change.reason,
        change_id=change.change_id,
        change_kind=change.kind.value,
    )


def _pause(
    processor: UploadProcessor, channel: str, schedule_id: int, why: str
) -> ProcessorEvent | None:
    """Pause ``channel`` (its token was refused recovering a change of ``schedule_id``); the
    ``channel_paused`` event when this paused it."""
    now = processor._now()
    reason = f"authorization failed: {why}"
    fresh = processor._pause_channel(channel, reason, now)
    if fresh is None:
        return None
    logger.error(
        "CHANNEL PAUSED: %s's token was refused recovering a change of schedule %d (%s); its "
        "changes, checks and uploads wait until `langflix-scheduler auth --channel %s` succeeds",
        channel,
        schedule_id,
        why,
        channel,
    )
    if not fresh:
        return None
    return ProcessorEvent(
        kind=ProcessorEventKind.CHANNEL_PAUSED,
        schedule_id=schedule_id,
        channel_id=channel,
        worker_id=processor.worker_id,
        at=now,
        attempts=0,
        error=reason,
    )
