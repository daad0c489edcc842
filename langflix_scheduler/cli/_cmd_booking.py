"""Booking commands: ``schedule``, ``next-slot``, ``cancel``, ``reschedule``, ``update``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..domain import Booking, ScheduledVideo, UploadStatus, VideoType
from ._parse import build_metadata, parse_instant, type_and_time
from ._render import emit_json, fmt_local, schedule_json, schedule_line
from ._state import ENV, State, run, token_dir_option

if TYPE_CHECKING:
    from ..manager import ScheduleManager

#: Who the timeline says asked for a change made with the CLI.
REQUESTED_BY = "cli"

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
            requested_by=REQUESTED_BY,
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


def _videos_for(
    state: State, m: ScheduleManager, schedule_id: int, token_dir: str, api_endpoint: str | None
) -> Any:
    """The channel's YouTube client when the schedule's video is on YouTube (built the way
    `process` builds it, from the token `auth` saved), else None (a local change)."""
    s = m.get(schedule_id, channel=state.explicit_channel)
    if s.status is not UploadStatus.COMPLETED:
        return None
    from ._cmd_process import _build_uploader

    return _build_uploader(state, token_dir, api_endpoint, channel=s.channel_id)


@contextmanager
def _changing(
    state: State, schedule_id: int, token_dir: str, api_endpoint: str | None
) -> Iterator[tuple[ScheduleManager, Any]]:
    """The manager and, for an uploaded schedule, the channel's client (closed afterwards)."""
    with state.manager() as m:
        videos = _videos_for(state, m, schedule_id, token_dir, api_endpoint)
        with videos if videos is not None else nullcontext():
            yield m, videos


def _verb(s: ScheduledVideo, local: str, remote: str) -> str:
    return remote if s.youtube_video_id and s.video_state is not None else local


_youtube_options = (
    token_dir_option,
    click.option(
        "--api-endpoint",
        envvar=f"{ENV}API_ENDPOINT",
        help=f"YouTube API base URL (default Google's; e.g. a FakeYouTube) [env: "
        f"{ENV}API_ENDPOINT].",
    ),
)


def youtube_options(fn: Callable[..., None]) -> Callable[..., None]:
    """``--token-dir`` and ``--api-endpoint``: used when the video is already on YouTube."""
    for option in reversed(_youtube_options):
        fn = option(fn)
    return fn


@click.command()
@click.argument("schedule_id", type=int)
@click.option(
    "--delete",
    is_flag=True,
    help="For a video already on YouTube: delete it (default: unpublish it, private, no "
    "publish time).",
)
@youtube_options
@run
def cancel(
    state: State, schedule_id: int, delete: bool, token_dir: str, api_endpoint: str | None
) -> None:
    """Cancel a schedule (frees its slot and quota). A video already on YouTube and not yet
    public is unpublished there (or deleted with --delete), with the channel's token."""
    with _changing(state, schedule_id, token_dir, api_endpoint) as (m, videos):
        s = m.cancel(
            schedule_id,
            channel=state.explicit_channel,
            videos=videos,
            delete=delete,
            requested_by=REQUESTED_BY,
        )
    _print_schedule(state, s, _verb(s, "cancelled", f"cancelled ({s.video_state} on YouTube)"))


@click.command()
@click.argument("schedule_id", type=int)
@click.argument("time", required=False)
@click.option("--at", "at", help="New publish time, ISO 8601 with offset (or give it as TIME).")
@youtube_options
@run
def reschedule(
    state: State,
    schedule_id: int,
    time: str | None,
    at: str | None,
    token_dir: str,
    api_endpoint: str | None,
) -> None:
    """Move a schedule to another publish time TIME (ISO 8601 with offset). A video already on
    YouTube and not yet public gets its publish time moved there too, with the channel's
    token."""
    if (time is None) == (at is None):
        raise click.UsageError("give the new publish time once: as TIME or with --at")
    when = parse_instant(time or at or "", "--at" if at else "TIME")
    with _changing(state, schedule_id, token_dir, api_endpoint) as (m, videos):
        s = m.reschedule(
            schedule_id,
            when,
            channel=state.explicit_channel,
            videos=videos,
            requested_by=REQUESTED_BY,
        )
    _print_schedule(state, s, _verb(s, "rescheduled", "rescheduled on YouTube"))


@click.command()
@click.argument("schedule_id", type=int)
@click.option("--title", help="New title.")
@click.option("--description", help="New description.")
@click.option("--tags", help="New comma-separated tags (replace the old ones).")
@click.option("--thumbnail", type=click.Path(path_type=Path), help="New thumbnail JPEG/PNG.")
@youtube_options
@run
def update(
    state: State,
    schedule_id: int,
    title: str | None,
    description: str | None,
    tags: str | None,
    thumbnail: Path | None,
    token_dir: str,
    api_endpoint: str | None,
) -> None:
    """Change the title, description, tags or thumbnail of a schedule before it is public
    (on YouTube too when its video is already there, with the channel's token)."""
    if title is None and description is None and tags is None and thumbnail is None:
        raise click.UsageError("give at least one of --title, --description, --tags, --thumbnail")
    with _changing(state, schedule_id, token_dir, api_endpoint) as (m, videos):
        s = m.update_video(
            schedule_id,
            title=title,
            description=description,
            tags=None if tags is None else [t for t in tags.split(",")],
            thumbnail_path=thumbnail,
            channel=state.explicit_channel,
            videos=videos,
            requested_by=REQUESTED_BY,
        )
    _print_schedule(state, s, _verb(s, "updated", "updated on YouTube"))


COMMANDS = (schedule, next_slot, cancel, reschedule, update)
