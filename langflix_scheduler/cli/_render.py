"""Rendering: consoles that never wrap without a terminal, tables, local times, JSON."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from ..config import SchedulerConfig
from ..domain import ScheduledVideo
from ..overview import format_local
from ..reports import TimelineEvent, json_default

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from ..changes import VideoChangeRecord

#: Console width when the output is not a terminal (a pipe, a file, a cron log): wide enough
#: that rich never wraps a line or cuts a table; tables still size to their content.
NO_WRAP_WIDTH = 100_000


def console(*, stderr: bool) -> Console:
    """A rich console; without a terminal it never hard-wraps (pipes and logs get whole lines)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=NO_WRAP_WIDTH, soft_wrap=True)


def new_table(**kwargs: Any) -> Table:
    """A rich table (rich is imported on first use)."""
    from rich.table import Table

    return Table(**kwargs)


def table_of(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    """A table whose columns fold long cells instead of cutting them."""
    table = new_table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def fmt_local(when: datetime | None, config: SchedulerConfig) -> str:
    """``when`` in the channel zone as ``YYYY-MM-DD HH:MM TZ`` (``-`` for None)."""
    return format_local(when, config.zone)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented, sorted JSON on stdout."""
    click.echo(json.dumps(data, default=json_default, indent=2, sort_keys=True))


def schedule_json(s: ScheduledVideo) -> dict[str, Any]:
    """A schedule as JSON (the lease owner left out)."""
    data = dataclasses.asdict(s)
    data["metadata"] = s.metadata.to_json()
    data.pop("lease_owner", None)
    return data


def schedule_line(s: ScheduledVideo, verb: str, config: SchedulerConfig) -> str:
    """``scheduled #3 final 'Title' for 2026-05-01 18:00 KST on channel main``."""
    return (
        f"{verb} #{s.id} {s.video_type} {s.metadata.title!r} for "
        f"{fmt_local(s.scheduled_publish_time, config)} on channel {s.channel_id}"
    )


def schedules_table(rows: list[ScheduledVideo], title: str, config: SchedulerConfig) -> Table:
    """The ``list`` table."""
    return table_of(
        title,
        ("id", "publish (local)", "type", "status", "title", "attempts", "video id", "on YouTube"),
        [
            (
                str(s.id),
                fmt_local(s.scheduled_publish_time, config),
                s.video_type.value,
                s.status.value,
                s.metadata.title,
                str(s.attempts),
                s.youtube_video_id or "-",
                "-" if s.video_state is None else s.video_state.value,
            )
            for s in rows
        ],
    )


def schedule_detail(s: ScheduledVideo, config: SchedulerConfig) -> Table:
    """The ``show`` table: every field, times in local time and ISO 8601."""
    table = new_table(show_header=False, title=f"schedule #{s.id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    data = schedule_json(s)
    for key in sorted(data):
        value = data[key]
        if isinstance(value, datetime):
            value = f"{fmt_local(value, config)} ({value.isoformat()})"
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=json_default, ensure_ascii=False)
        table.add_row(key, "-" if value is None else str(value))
    return table


#: A UTC instant as the library writes it into human text (``2025-11-03 01:00:00 UTC``,
#: ``2025-11-03T01:00:00+00:00``): timeline details, error messages.
_UTC_IN_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?(?: UTC|\+00:00)")


def localize_instants(text: str, show: Callable[[datetime], str]) -> str:
    """``text`` with each UTC instant written by the library shown with ``show`` (the
    channel's time, like every other time a person reads)."""

    def one(match: re.Match[str]) -> str:
        return show(datetime.fromisoformat(f"{match[1]}T{match[2]}+00:00"))

    return _UTC_IN_TEXT.sub(one, text)


def timeline_table(events: list[TimelineEvent], config: SchedulerConfig) -> Table:
    """The ``show`` timeline: one row per event, oldest first, times in local time (to the
    second: attempts and retries can be seconds apart)."""
    return table_of(
        "timeline",
        ("when (local)", "what", "who", "detail"),
        [
            (
                e.at.astimezone(config.zone).strftime("%Y-%m-%d %H:%M:%S %Z"),
                e.kind,
                e.actor or "-",
                localize_instants(e.detail, lambda t: fmt_local(t, config)) if e.detail else "-",
            )
            for e in events
        ],
    )


def pending_changes_table(changes: list[VideoChangeRecord], config: SchedulerConfig) -> Table:
    """Changes of plan after upload still pending (``status``, ``show``): their API call is
    in flight, or its answer was lost and the next processor run after the lease finishes it."""
    return table_of(
        f"{len(changes)} change(s) of plan pending on YouTube",
        ("change", "schedule", "kind", "target", "requested", "by", "processor takes over"),
        [
            (
                f"#{c.id}",
                str(c.schedule_id),
                c.kind.value,
                _target_text(c, config),
                fmt_local(c.requested_at, config),
                c.requested_by or "-",
                f"after {fmt_local(c.lease_expires_at, config)}",
            )
            for c in changes
        ],
    )


def _target_text(c: VideoChangeRecord, config: SchedulerConfig) -> str:
    when = c.target.get("publish_at")
    if c.kind.value == "reschedule" and isinstance(when, str):
        return "publish " + fmt_local(datetime.fromisoformat(when), config)
    if c.kind.value == "update":
        return ", ".join(c.target.get("changed", ()))
    return c.kind.value
