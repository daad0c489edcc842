"""Parsing what a person typed: instants, dates, the metadata file, global options anywhere."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from ..domain import VideoMetadata, VideoType, title_from_filename
from ..errors import ConfigurationError, InvalidScheduleError


def parse_instant(value: str, name: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` accepted); ``name`` is the option for errors."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidScheduleError(
            name, f"{value!r} is not an ISO 8601 time like 2026-05-01T18:00:00+09:00"
        ) from None
    if parsed.tzinfo is None:
        raise InvalidScheduleError(
            name, f"{value!r} has no time zone: add an offset such as +09:00 or Z"
        )
    return parsed


def parse_date(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` date, or None."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidScheduleError(name, f"{value!r} is not a date like 2026-05-01") from None


def read_metadata_file(metadata_file: Path) -> dict[str, Any]:
    """The JSON object in ``--metadata``."""
    try:
        loaded = json.loads(metadata_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(
            "--metadata", f"cannot read {metadata_file}: {exc.strerror}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError("--metadata", f"{metadata_file} is not valid JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError("--metadata", "must contain a JSON object")
    return loaded


def type_and_time(
    metadata_file: Path | None, video_type: str | None, at: str | None
) -> tuple[str, str | None]:
    """--type/--at, else the metadata file's "type"/"at" keys (the batch example's format)."""
    data = read_metadata_file(metadata_file) if metadata_file is not None else {}
    video_type = video_type or data.get("type")
    if video_type is None:
        raise click.UsageError("Missing option '--type' (or a \"type\" key in --metadata).")
    if video_type not in {v.value for v in VideoType}:
        raise ConfigurationError("--metadata", f'"type" must be final or short: {video_type!r}')
    at = at or data.get("at")
    if at is not None and not isinstance(at, str):
        raise ConfigurationError("--metadata", '"at" must be an ISO 8601 string')
    return video_type, at


def build_metadata(path: Path, metadata_file: Path | None, flags: dict[str, Any]) -> VideoMetadata:
    """The metadata file's keys (less "type"/"at"), overridden by the flags given, with the
    title from the file name by default. ``flags`` holds ``title``, ``description``, ``tags``
    (comma-separated), ``thumbnail``, ``playlist`` and ``privacy`` (None when not given)."""
    data: dict[str, Any] = {}
    if metadata_file is not None:
        loaded = read_metadata_file(metadata_file)
        data.update({k: v for k, v in loaded.items() if k not in ("type", "at")})
    tags, thumbnail = flags.get("tags"), flags.get("thumbnail")
    given = {
        "title": flags.get("title"),
        "description": flags.get("description"),
        "tags": [t.strip() for t in tags.split(",")] if tags is not None else None,
        "thumbnail_path": str(thumbnail) if thumbnail is not None else None,
        "playlist_id": flags.get("playlist"),
        "privacy": flags.get("privacy"),
    }
    data.update({k: v for k, v in given.items() if v is not None})
    data.setdefault("title", title_from_filename(path))
    return VideoMetadata.from_json(data)


def _option_arity(params: list[click.Parameter]) -> dict[str, bool]:
    """Option name -> whether it takes a value."""
    return {
        n: not p.is_flag
        for p in params
        if isinstance(p, click.Option)
        for n in p.opts + p.secondary_opts
    }


def hoist_global_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """Move the group's options found after the command name to before it, unless the command
    has an option of that name itself (``auth --channel``); values of the command's own
    options and everything after ``--`` stay where they are."""
    takes_value = _option_arity(group.params)
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name = args[i].split("=", 1)[0]
        i += 2 if takes_value.get(name) and "=" not in args[i] else 1
    command = group.get_command(ctx, args[i]) if i < len(args) else None
    if command is None:
        return args
    own = _option_arity(command.params)
    head, tail, rest = args[:i], [args[i]], args[i + 1 :]
    j = 0
    while j < len(rest):
        arg = rest[j]
        name = arg.split("=", 1)[0]
        if arg == "--":
            tail += rest[j:]
            break
        width = 2 if "=" not in arg and (own.get(name) or takes_value.get(name)) else 1
        if name in takes_value and name not in own and name not in ("-h", "--help"):
            head += rest[j : j + width]
        else:
            tail += rest[j : j + width]
        j += width
    return head + tail
