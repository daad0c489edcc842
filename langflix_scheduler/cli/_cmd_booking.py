"""Booking commands: ``schedule``, ``next-slot``, ``cancel``, ``reschedule``."""

from __future__ import annotations

from pathlib import Path

import click

from ..domain import Booking, ScheduledVideo, VideoType
from ._parse import build_metadata, parse_instant, type_and_time
from ._render import emit_json, fmt_local, schedule_json, schedule_line
from ._state import State, run

_TYPES = [v.value for v in VideoType]


def _print_schedule(state: State, s: ScheduledVideo, verb: str) -> None:
    if state.as_json:
        emit_json(schedule_json(s))
    else:
        state.out.print(schedule_line(s, verb, state.config))


def _print_booking(state: State, booking: Booking) -> None:
    s = booking.schedule
    if state.as_json:
        emit_json({**schedule_json(s), "created": booking.created})
    elif booking.created:
        _print_schedule(state, s, "scheduled")
    else:
        state.out.print(
            f"already scheduled as #{s.id} ({s.status}: {s.video_type} {s.metadata.title!r} for "
            f"{fmt_local(s.scheduled_publish_time, state.config)} on channel {s.channel_id})"
        )


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--type",
    "video_type",
    type=click.Choice(_TYPES),
    help="final (long video, slots per day as configured) or short (YouTube Short); "
    'required unless the --metadata file has a "type" key.',
)
@click.option(
    "--at", "at", help="Exact publish time, ISO 8601 with offset (default: next free slot)."
)
@click.option("--title", help="Video title (default: the file name).")
@click.option("--description", help="Video description.")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--thumbnail", type=click.Path(path_type=Path), help="Thumbnail JPEG/PNG.")
@click.option("--playlist", help="Playlist id to add the video to.")
@click.option(
    "--privacy",
    type=click.Choice(["public", "unlisted", "private"]),
    help="Visibility once published (default: public; uploaded private until the publish time).",
)
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='JSON file with metadata: VideoMetadata keys plus optional "type" and "at" (the '
    "same format as examples/batch_schedule.py); flags override its keys.",
)
@click.option(
    "--idempotency-key",
    "idempotency_key",
    help="Your id for this request: running it again returns the schedule it booked.",
)
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Book the file even if the same content is already scheduled or uploaded.",
)
@run
def schedule(
    state: State,
    path: Path,
    video_type: str | None,
    at: str | None,
    metadata_file: Path | None,
    idempotency_key: str | None,
    allow_duplicate: bool,
    **flags: object,
) -> None:
    """Book a publish slot for the video at PATH.

    Running the same command again is safe: it prints "already scheduled as #N" and exits 0.
    The same file with other metadata or type exits 1 naming the schedule that holds it.
    """
    video_type, at = type_and_time(metadata_file, video_type, at)
    when = parse_instant(at, "--at") if at else None
    meta = build_metadata(path, metadata_file, flags)
    with state.manager() as m:
        booking = m.book(
            path,
            video_type,
            preferred_time=when,
            metadata=meta,
            idempotency_key=idempotency_key,
            allow_duplicate=allow_duplicate,
            requested_by="cli",
        )
    _print_booking(state, booking)


@click.command("next-slot")
@click.option(
    "--type",
    "video_type",
    required=True,
    type=click.Choice(_TYPES),
    help="final or short (each type has its own slots and daily limit).",
)
@click.option("--after", help="Search after this time (ISO 8601 with offset).")
@run
def next_slot(state: State, video_type: str, after: str | None) -> None:
    """Show the next free publish slot for a video type."""
    with state.manager() as m:
        slot = m.get_next_available_slot(
            video_type, after=parse_instant(after, "--after") if after else None
        )
    if state.as_json:
        emit_json({"video_type": video_type, "slot": slot, "local": fmt_local(slot, state.config)})
    else:
        state.out.print(f"next {video_type} slot: {fmt_local(slot, state.config)}")


@click.command()
@click.argument("schedule_id", type=int)
@run
def cancel(state: State, schedule_id: int) -> None:
    """Cancel a scheduled video (frees its slot and quota)."""
    with state.manager() as m:
        s = m.cancel(schedule_id, channel=state.explicit_channel, requested_by="cli")
    _print_schedule(state, s, "cancelled")


@click.command()
@click.argument("schedule_id", type=int)
@click.option("--at", "at", required=True, help="New publish time, ISO 8601 with offset.")
@run
def reschedule(state: State, schedule_id: int, at: str) -> None:
    """Move a scheduled video to another publish time."""
    with state.manager() as m:
        s = m.reschedule(
            schedule_id,
            parse_instant(at, "--at"),
            channel=state.explicit_channel,
            requested_by="cli",
        )
    _print_schedule(state, s, "rescheduled")


COMMANDS = (schedule, next_slot, cancel, reschedule)
