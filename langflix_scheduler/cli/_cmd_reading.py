"""Reading commands: ``list`` and ``show``."""

from __future__ import annotations

from datetime import timedelta

import click

from ..domain import UploadStatus
from ._parse import parse_date
from ._render import (
    emit_json,
    pending_changes_table,
    schedule_detail,
    schedule_json,
    schedules_table,
    timeline_table,
)
from ._state import State, run


@click.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in UploadStatus]),
    multiple=True,
    help="Only schedules in this status (repeat for several; default: all).",
)
@click.option("--from", "from_", help="First channel day (YYYY-MM-DD), inclusive.")
@click.option("--to", help="Last channel day (YYYY-MM-DD), inclusive.")
@click.option("--all-channels", is_flag=True, help="Do not filter by --channel.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@run
def list_cmd(
    state: State,
    status: tuple[str, ...],
    from_: str | None,
    to: str | None,
    all_channels: bool,
    limit: int | None,
) -> None:
    """List schedules by publish time."""
    cfg = state.config
    start_day, end_day = parse_date(from_, "--from"), parse_date(to, "--to")
    with state.manager() as m:
        rows = m.list_schedules(
            status=list(status) or None,
            channel=None if all_channels else cfg.channel,
            start=cfg.day_start(start_day) if start_day else None,
            end=cfg.day_start(end_day + timedelta(days=1)) if end_day else None,
            limit=limit,
        )
    if state.as_json:
        emit_json([schedule_json(s) for s in rows])
    else:
        state.out.print(schedules_table(rows, f"{len(rows)} schedule(s)", cfg))


@click.command()
@click.argument("schedule_id", type=int)
@click.option(
    "--api-calls", is_flag=True, help="Also list the schedule's API calls (quota ledger)."
)
@run
def show(state: State, schedule_id: int, api_calls: bool) -> None:
    """Show one schedule in full, then its timeline (booked, each attempt, the upload, what
    followed, each change with who and when)."""
    with state.manager() as m:
        s = m.get(schedule_id, channel=state.explicit_channel)
        pending = [c for c in m.video_changes_of(s.id) if c.state == "pending"]
        events = m.timeline(schedule_id, channel=state.explicit_channel, api_calls=api_calls)
    if state.as_json:
        emit_json({**schedule_json(s), "pending_changes": pending, "timeline": events})
    else:
        state.out.print(schedule_detail(s, state.config))
        if pending:
            state.out.print(pending_changes_table(pending, state.config))
        state.out.print(timeline_table(events, state.config))


COMMANDS = (list_cmd, show)
