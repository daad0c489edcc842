"""The processor's step for changes of plan after upload: finish or roll back pending changes
whose requester died or lost YouTube's answer (see :mod:`langflix_scheduler.changes`).

Runs at the start of every run, after the rescue of expired upload leases, with the processor's
after-upload client (``UploadProcessor.videos``) on its channels. A run without such a client
does nothing here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..changes import RecoveryReport
from ..errors import SchedulerError

if TYPE_CHECKING:
    from .loop import UploadProcessor

__all__ = ["recover_changes"]

logger = logging.getLogger(__name__)


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
    return report
