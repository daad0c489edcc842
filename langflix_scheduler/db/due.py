"""THE rule for "due": which schedules a processor run claims now.

Used by the processor's claim statements and by ``ScheduleManager.due_schedules`` (so ``status``
and ``process --dry-run`` report exactly what a run would take). A schedule is due when it is
``scheduled``, belongs to the API project (and, when given, one of the channels), its publish
time minus the upload lead time has come (``scheduled_publish_time <= horizon``, horizon =
now + lead time), it is not waiting for a retry (``next_attempt_at`` unset or passed) and its
channel is not paused (``youtube_upload_channels.paused_at`` set: its token was refused; see
:mod:`langflix_scheduler.db.channels`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..domain import UploadStatus
from .models import UploadChannel

__all__ = ["due_condition"]

_CHANNELS: Table = UploadChannel.__table__  # type: ignore[assignment]


def due_condition(
    columns: Any,
    *,
    now: Any,
    horizon: Any,
    api_project: str | None,
    channels: Iterable[str] | None = None,
) -> ColumnElement[bool]:
    """The due predicate over ``columns`` (the ``Schedule`` ORM class or its table's ``.c``).

    ``now`` and ``horizon`` are datetimes or bind parameters (prepared statements);
    ``api_project=None`` and ``channels=None`` mean any.
    """
    conds: list[ColumnElement[bool]] = []
    if api_project is not None:
        conds.append(columns.api_project == api_project)
    conds += [
        columns.upload_status == UploadStatus.SCHEDULED.value,
        columns.scheduled_publish_time <= horizon,
        or_(columns.next_attempt_at.is_(None), columns.next_attempt_at <= now),
    ]
    if channels is not None:
        conds.append(columns.channel_id.in_(list(channels)))
    # Uncorrelated: the (few, usually no) paused channels are read once per statement and each
    # candidate row probes that set, cheaper than a correlated lookup per row.
    paused = select(_CHANNELS.c.channel_id).where(_CHANNELS.c.paused_at.is_not(None))
    conds.append(columns.channel_id.not_in(paused))
    return and_(*conds)
