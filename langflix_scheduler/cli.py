"""``langflix-scheduler`` command line: parse, build the config, call the library, render.

Configuration precedence: flags > environment (``LANGFLIX_SCHEDULER_*``) > config file
(``--config``, default ``./langflix-scheduler.toml`` when present) > defaults.

Exit codes: 0 ok; 1 a problem a retry will not fix (the message says what to do: bad input, no
or an out-of-date schema, not a database, a missing directory, permissions, credentials); 2 a
usage error; 3 a condition a retry can fix (lock or database timeout, unreachable server, lost
connection, unknown commit outcome); 130 interrupted. ``_cli_db.classify`` decides.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import sys
import time as time_module
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .config import SchedulerConfig
from .domain import Booking, ScheduledVideo, UploadStatus, VideoMetadata, VideoType
from .errors import (
    ConfigurationError,
    DuplicateVideoError,
    InvalidScheduleError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
)
from .overview import format_local

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .manager import ScheduleManager
    from .processor import ProcessorEvent

# Start-up time: SQLAlchemy (via the manager), rich, alembic and googleapiclient are imported
# inside the functions that need them, so `--help`, `--version` and usage errors stay fast
# (benchmarks/bench_cli.py measures it).

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG_FILE = "langflix-scheduler.toml"
ENV = "LANGFLIX_SCHEDULER_"


@dataclasses.dataclass
class _State:
    """What the group's options resolved to; commands build the manager lazily from it."""

    overrides: dict[str, Any]
    config_file: Path | None
    as_json: bool
    verbose: bool
    _config: SchedulerConfig | None = None
    _out: Console | None = None
    _err: Console | None = None

    @property
    def out(self) -> Console:
        if self._out is None:
            self._out = _console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = _console(stderr=True)
        return self._err

    @property
    def config(self) -> SchedulerConfig:
        if self._config is None:
            self._config = SchedulerConfig.load(file=self.config_file, **self.overrides)
        return self._config

    @contextmanager
    def manager(self, *, create: bool = False) -> Iterator[ScheduleManager]:
        """The manager; only ``create=True`` (init-db) may create a new SQLite file."""
        from ._cli_db import require_existing
        from .manager import ScheduleManager

        if not create:
            require_existing(self.config)
        with ScheduleManager(self.config) as m:
            yield m

    @property
    def explicit_channel(self) -> str | None:
        """``--channel`` when given on the command line: show/cancel/reschedule then refuse an
        id of another channel (a channel from the environment or config file does not)."""
        value = self.overrides.get("channel")
        return value if isinstance(value, str) else None


#: Console width when the output is not a terminal (a pipe, a file, a cron log): wide enough
#: that rich never wraps a line or cuts a table; tables still size to their content.
_NO_WRAP_WIDTH = 100_000


def _console(*, stderr: bool) -> Console:
    """A rich console; without a terminal it never hard-wraps (pipes and logs get whole lines)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=_NO_WRAP_WIDTH, soft_wrap=True)


def _new_table(**kwargs: Any) -> Table:
    from rich.table import Table

    return Table(**kwargs)


def _fail(state: _State | None, exc: SchedulerError) -> NoReturn:
    from ._cli_db import classify

    verdict = classify(exc, _config_or_none(state))
    err = state.err if state else _console(stderr=True)
    if state and state.verbose:
        err.print_exception()
    message = verdict.message
    if isinstance(exc, DuplicateVideoError):
        message = message.replace("pass allow_duplicate=True", "add --allow-duplicate")
    if state and state.as_json:
        payload: dict[str, Any] = {"error": type(exc).__name__, "message": message}
        if isinstance(exc, SlotUnavailableError) and exc.next_available:
            payload["next_available"] = exc.next_available.isoformat()
        if isinstance(exc, DuplicateVideoError):
            payload["existing_id"] = exc.existing_id
        click.echo(json.dumps(payload), err=True)
    else:
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(verdict.code)


def _config_or_none(state: _State | None) -> SchedulerConfig | None:
    try:
        return state.config if state else None
    except SchedulerError:
        return None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if isinstance(value, frozenset | set) else list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_json_default, indent=2, sort_keys=True))


def _schedule_json(s: ScheduledVideo) -> dict[str, Any]:
    data = dataclasses.asdict(s)
    data["metadata"] = s.metadata.to_json()
    data.pop("lease_owner", None)
    return data


def _parse_instant(value: str, name: str) -> datetime:
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


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidScheduleError(name, f"{value!r} is not a date like 2026-05-01") from None


def _local_midnight(day: date, config: SchedulerConfig) -> datetime:
    return datetime.combine(day, time(0), tzinfo=config.zone).astimezone(UTC)


def _fmt_local(when: datetime | None, config: SchedulerConfig) -> str:
    return format_local(when, config.zone)


# -- the group ---------------------------------------------------------------------------------


def _env_help(name: str, text: str) -> str:
    return f"{text} [env: {ENV}{name.upper()}]"


class _Group(click.Group):
    """Global options are also accepted after the command (``list --json``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist_global_options(self, ctx, args))


def _hoist_global_options(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """Move the group's options found after the command name to before it, unless the command
    has an option of that name itself (``auth --channel``); values of the command's own
    options and everything after ``--`` stay where they are."""
    takes_value = {
        n: not p.is_flag
        for p in group.params
        if isinstance(p, click.Option)
        for n in p.opts + p.secondary_opts
    }
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name = args[i].split("=", 1)[0]
        i += 2 if takes_value.get(name) and "=" not in args[i] else 1
    command = group.get_command(ctx, args[i]) if i < len(args) else None
    if command is None:
        return args
    own = {
        n: not p.is_flag
        for p in command.params
        if isinstance(p, click.Option)
        for n in p.opts + p.secondary_opts
    }
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


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="langflix-scheduler", prog_name="langflix-scheduler")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"TOML config file (default: ./{DEFAULT_CONFIG_FILE} when present).",
)
@click.option("--database-url", help=_env_help("database_url", "SQLAlchemy database URL."))
@click.option("--timezone", help=_env_help("timezone", "Channel time zone (IANA name)."))
@click.option("--channel", help=_env_help("channel", "Channel id."))
@click.option("--api-project", help=_env_help("api_project", "Google Cloud project (quota owner)."))
@click.option(
    "--lock-timeout", type=float, help=_env_help("lock_timeout", "Seconds to wait for a row lock.")
)
@click.option(
    "--db-timeout",
    type=float,
    help=_env_help("db_timeout", "Seconds any one database call may take (> lock timeout)."),
)
@click.option(
    "--quota-policy",
    help=_env_help("quota_policy", "Quota preset: granular-2026, pool-2025 or legacy."),
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("-v", "--verbose", is_flag=True, help="Log details and show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_file: Path | None,
    database_url: str | None,
    timezone: str | None,
    channel: str | None,
    api_project: str | None,
    lock_timeout: float | None,
    db_timeout: float | None,
    quota_policy: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Schedule and upload YouTube videos on a cadence, race-free and crash-safe."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if config_file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        config_file = Path(DEFAULT_CONFIG_FILE)
    ctx.obj = _State(
        overrides={
            "database_url": database_url,
            "timezone": timezone,
            "channel": channel,
            "api_project": api_project,
            "lock_timeout": lock_timeout,
            "db_timeout": db_timeout,
            "quota_policy": quota_policy,
        },
        config_file=config_file,
        as_json=as_json,
        verbose=verbose,
    )


def _run(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command body: translate the library's errors into one line and an exit code."""

    @click.pass_obj
    def wrapper(state: _State, /, **kwargs: Any) -> None:
        try:
            fn(state, **kwargs)
        except SchedulerError as exc:
            _fail(state, exc)
        except KeyboardInterrupt:
            state.err.print("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# -- commands ----------------------------------------------------------------------------------


@cli.command("init-db")
@_run
def init_db(state: _State) -> None:
    """Create or upgrade the database schema (idempotent)."""
    with state.manager(create=True) as m:
        m.init_db()
    if state.as_json:
        _emit_json({"ok": True, "database_url": _safe_url(state.config.database_url)})
    else:
        state.out.print(f"database ready: {_safe_url(state.config.database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def _read_metadata_file(metadata_file: Path) -> dict[str, Any]:
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


def _type_and_time(
    metadata_file: Path | None, video_type: str | None, at: str | None
) -> tuple[str, str | None]:
    """--type/--at, else the metadata file's "type"/"at" keys (the batch example's format)."""
    data = _read_metadata_file(metadata_file) if metadata_file is not None else {}
    video_type = video_type or data.get("type")
    if video_type is None:
        raise click.UsageError("Missing option '--type' (or a \"type\" key in --metadata).")
    if video_type not in {v.value for v in VideoType}:
        raise ConfigurationError("--metadata", f'"type" must be final or short: {video_type!r}')
    at = at or data.get("at")
    if at is not None and not isinstance(at, str):
        raise ConfigurationError("--metadata", '"at" must be an ISO 8601 string')
    return video_type, at


def _build_metadata(
    path: Path,
    *,
    metadata_file: Path | None,
    title: str | None,
    description: str | None,
    tags: str | None,
    thumbnail: Path | None,
    playlist: str | None,
    privacy: str | None,
) -> VideoMetadata:
    data: dict[str, Any] = {}
    if metadata_file is not None:
        loaded = _read_metadata_file(metadata_file)
        data.update({k: v for k, v in loaded.items() if k not in ("type", "at")})
    flags = {
        "title": title,
        "description": description,
        "tags": [t.strip() for t in tags.split(",")] if tags is not None else None,
        "thumbnail_path": str(thumbnail) if thumbnail is not None else None,
        "playlist_id": playlist,
        "privacy": privacy,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    data.setdefault(
        "title", path.stem.replace("<", "").replace(">", "").strip()[:100] or "Untitled"
    )
    return VideoMetadata.from_json(data)


def _print_schedule(state: _State, s: ScheduledVideo, verb: str) -> None:
    if state.as_json:
        _emit_json(_schedule_json(s))
        return
    state.out.print(
        f"{verb} #{s.id} {s.video_type} {s.metadata.title!r} for "
        f"{_fmt_local(s.scheduled_publish_time, state.config)} on channel {s.channel_id}"
    )


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--type",
    "video_type",
    type=click.Choice([v.value for v in VideoType]),
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
@_run
def schedule(
    state: _State,
    path: Path,
    video_type: str | None,
    at: str | None,
    title: str | None,
    description: str | None,
    tags: str | None,
    thumbnail: Path | None,
    playlist: str | None,
    privacy: str | None,
    metadata_file: Path | None,
    idempotency_key: str | None,
    allow_duplicate: bool,
) -> None:
    """Book a publish slot for the video at PATH.

    Running the same command again is safe: it prints "already scheduled as #N" and exits 0.
    The same file with other metadata or type exits 1 naming the schedule that holds it.
    """
    video_type, at = _type_and_time(metadata_file, video_type, at)
    when = _parse_instant(at, "--at") if at else None
    meta = _build_metadata(
        path,
        metadata_file=metadata_file,
        title=title,
        description=description,
        tags=tags,
        thumbnail=thumbnail,
        playlist=playlist,
        privacy=privacy,
    )
    with state.manager() as m:
        booking = m.book(
            path,
            video_type,
            preferred_time=when,
            metadata=meta,
            idempotency_key=idempotency_key,
            allow_duplicate=allow_duplicate,
        )
    _print_booking(state, booking)


def _print_booking(state: _State, booking: Booking) -> None:
    s = booking.schedule
    if state.as_json:
        _emit_json({**_schedule_json(s), "created": booking.created})
    elif booking.created:
        _print_schedule(state, s, "scheduled")
    else:
        state.out.print(
            f"already scheduled as #{s.id} ({s.status}: {s.video_type} {s.metadata.title!r} for "
            f"{_fmt_local(s.scheduled_publish_time, state.config)} on channel {s.channel_id})"
        )


@cli.command("next-slot")
@click.option(
    "--type",
    "video_type",
    required=True,
    type=click.Choice([v.value for v in VideoType]),
    help="final or short (each type has its own slots and daily limit).",
)
@click.option("--after", help="Search after this time (ISO 8601 with offset).")
@_run
def next_slot(state: _State, video_type: str, after: str | None) -> None:
    """Show the next free publish slot for a video type."""
    with state.manager() as m:
        slot = m.get_next_available_slot(
            video_type, after=_parse_instant(after, "--after") if after else None
        )
    if state.as_json:
        _emit_json(
            {"video_type": video_type, "slot": slot, "local": _fmt_local(slot, state.config)}
        )
    else:
        state.out.print(f"next {video_type} slot: {_fmt_local(slot, state.config)}")


def _schedules_table(state: _State, rows: list[ScheduledVideo], title: str) -> Table:
    table = _new_table(title=title)
    for col in ("id", "publish (local)", "type", "status", "title", "attempts", "video id"):
        table.add_column(col, overflow="fold")
    for s in rows:
        table.add_row(
            str(s.id),
            _fmt_local(s.scheduled_publish_time, state.config),
            s.video_type.value,
            s.status.value,
            s.metadata.title,
            str(s.attempts),
            s.youtube_video_id or "-",
        )
    return table


@cli.command("list")
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
@_run
def list_cmd(
    state: _State,
    status: tuple[str, ...],
    from_: str | None,
    to: str | None,
    all_channels: bool,
    limit: int | None,
) -> None:
    """List schedules by publish time."""
    cfg = state.config
    start_day, end_day = _parse_date(from_, "--from"), _parse_date(to, "--to")
    with state.manager() as m:
        rows = m.list_schedules(
            status=list(status) or None,
            channel=None if all_channels else cfg.channel,
            start=_local_midnight(start_day, cfg) if start_day else None,
            end=_local_midnight(end_day + timedelta(days=1), cfg) if end_day else None,
            limit=limit,
        )
    if state.as_json:
        _emit_json([_schedule_json(s) for s in rows])
    else:
        state.out.print(_schedules_table(state, rows, f"{len(rows)} schedule(s)"))


@cli.command()
@click.argument("schedule_id", type=int)
@_run
def show(state: _State, schedule_id: int) -> None:
    """Show one schedule in full."""
    with state.manager() as m:
        s = m.get(schedule_id, channel=state.explicit_channel)
    if state.as_json:
        _emit_json(_schedule_json(s))
        return
    table = _new_table(show_header=False, title=f"schedule #{s.id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    data = _schedule_json(s)
    for key in sorted(data):
        value = data[key]
        if isinstance(value, datetime):
            value = f"{_fmt_local(value, state.config)} ({value.isoformat()})"
        elif isinstance(value, dict | list):
            value = json.dumps(value, default=_json_default, ensure_ascii=False)
        table.add_row(key, "-" if value is None else str(value))
    state.out.print(table)


@cli.command()
@click.argument("schedule_id", type=int)
@_run
def cancel(state: _State, schedule_id: int) -> None:
    """Cancel a scheduled video (frees its slot and quota)."""
    with state.manager() as m:
        s = m.cancel(schedule_id, channel=state.explicit_channel)
    _print_schedule(state, s, "cancelled")


@cli.command()
@click.argument("schedule_id", type=int)
@click.option("--at", "at", required=True, help="New publish time, ISO 8601 with offset.")
@_run
def reschedule(state: _State, schedule_id: int, at: str) -> None:
    """Move a scheduled video to another publish time."""
    with state.manager() as m:
        s = m.reschedule(schedule_id, _parse_instant(at, "--at"), channel=state.explicit_channel)
    _print_schedule(state, s, "rescheduled")


@cli.command()
@click.option("--date", "day", help="First channel day (default: today in the channel zone).")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="How many channel days to show from --date on.",
)
@_run
def quota(state: _State, day: str | None, days: int) -> None:
    """Per-day use of the daily limits and of the API quota (reserved vs used)."""
    cfg = state.config
    with state.manager() as m:
        first = _parse_date(day, "--date") or m.now().astimezone(cfg.zone).date()
        statuses = [m.check_daily_quota(first + timedelta(days=i)) for i in range(days)]
    if state.as_json:
        _emit_json(statuses)
        return
    table = _new_table(
        title=f"channel {cfg.channel} ({cfg.timezone}), API project {cfg.api_project}"
    )
    table.add_column("day")
    for vt in VideoType:
        table.add_column(f"{vt.value} used/limit", justify="right")
    table.add_column("PT quota day")
    buckets = sorted(cfg.quota_policy.buckets)
    for b in buckets:
        table.add_column(f"{b} reserved+used/limit", justify="right")
    for st in statuses:
        first_row = True
        for qd in sorted({q.quota_date for q in st.quota}):
            cells = [st.publish_date.isoformat() if first_row else ""]
            for vt in VideoType:
                u = st.types[vt]
                cells.append(f"{u.used}/{u.limit}" if first_row else "")
            cells.append(qd.isoformat())
            by_bucket = {q.bucket: q for q in st.quota if q.quota_date == qd}
            for b in buckets:
                q = by_bucket.get(b)
                cells.append(f"{q.reserved}+{q.used}/{q.limit}" if q else "-")
            table.add_row(*cells)
            first_row = False
    state.out.print(table)


@cli.command("recalculate-quota")
@click.option("--from", "from_", help="First day (YYYY-MM-DD), inclusive.")
@click.option("--to", help="Last day (YYYY-MM-DD), inclusive.")
@_run
def recalculate_quota(state: _State, from_: str | None, to: str | None) -> None:
    """Rebuild the limit and quota counters from the schedules (idempotent)."""
    with state.manager() as m:
        report = m.recalculate_quota(
            start=_parse_date(from_, "--from"), end=_parse_date(to, "--to")
        )
    if state.as_json:
        _emit_json(report)
        return
    if not report.corrections:
        state.out.print(f"counters consistent ({report.rows_checked} schedules checked)")
        return
    table = _new_table(title=f"{len(report.corrections)} counter(s) corrected")
    for col in ("table", "key", "column", "old", "new"):
        table.add_column(col)
    for c in report.corrections:
        table.add_row(c.table, " ".join(c.key), c.column, str(c.old), str(c.new))
    state.out.print(table)


DEFAULT_TOKEN_DIR = "~/.config/langflix-scheduler/tokens"  # noqa: S105 - a path, not a secret
_TOKEN_DIR_OPTION = click.option(
    "--token-dir",
    envvar=f"{ENV}TOKEN_DIR",
    default=DEFAULT_TOKEN_DIR,
    show_default=True,
    help=f"Directory of per-channel OAuth tokens [env: {ENV}TOKEN_DIR].",
)


def _channel_option(fn: Callable[..., None]) -> Callable[..., None]:
    """``--channel`` after the command too (``auth --channel main``), same as the global flag."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            state = ctx.find_object(_State)
            if state is not None:
                state.overrides["channel"] = value
                state._config = None

    return click.option(
        "--channel",
        "_channel",
        expose_value=False,
        callback=remember,
        help=_env_help("channel", "Channel id (same as the global --channel)."),
    )(fn)


@cli.command()
@click.option(
    "--client-secrets",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OAuth client JSON (Desktop app) from Google Cloud Console.",
)
@_channel_option
@click.option("--headless", is_flag=True, help="Do not open a browser; print the URL instead.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Local redirect port.")
@_TOKEN_DIR_OPTION
@_run
def auth(state: _State, client_secrets: Path, headless: bool, port: int, token_dir: str) -> None:
    """Authorise a channel (--channel) and save its token file (mode 0600)."""
    from .youtube.auth import authorize, token_path_for

    token_path = token_path_for(state.config.channel, Path(token_dir).expanduser())
    if headless and port == 0:
        state.err.print("note: with --headless pick a fixed --port and forward it (ssh -L)")
    authorize(
        client_secrets,
        token_path,
        headless=headless,
        port=port,
        on_url=lambda url: state.err.print(
            f"Open this URL to authorise channel {state.config.channel}:\n{url}",
            markup=False,
            soft_wrap=True,
        ),
    )
    if state.as_json:
        _emit_json({"channel": state.config.channel, "token_path": str(token_path)})
    else:
        state.out.print(f"authorised channel {state.config.channel}; token saved to {token_path}")


# -- processing --------------------------------------------------------------------------------


_COUNTED = ("uploaded", "failed", "retried", "deferred", "rescued")


def _event_json(e: ProcessorEvent) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "schedule_id": e.schedule_id,
        "channel_id": e.channel_id,
        "at": e.at.isoformat(),
        "attempts": e.attempts,
        "video_id": e.video_id,
        "error": e.error,
        "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
    }


def _due_now(m: ScheduleManager, cfg: SchedulerConfig) -> list[ScheduledVideo]:
    """What a processor run would claim now for this channel and project (the library's rule)."""
    return m.due_schedules(channel=cfg.channel, api_project=cfg.api_project)


def _looked_at(cfg: SchedulerConfig) -> str:
    return f"channel {cfg.channel}, API project {cfg.api_project}"


def _dry_run(state: _State) -> None:
    from .errors import UploadError
    from .youtube.uploader import DryRunUploader, UploadRequest

    cfg = state.config
    results: list[dict[str, Any]] = []
    with state.manager() as m:
        uploader = DryRunUploader(clock=m.now)
        for s in _due_now(m, cfg):
            entry: dict[str, Any] = {
                "id": s.id,
                "title": s.metadata.title,
                "video_path": s.video_path,
                "scheduled_publish_time": s.scheduled_publish_time.isoformat(),
            }
            try:
                result = uploader.upload(
                    UploadRequest(
                        video_path=s.video_path,
                        metadata=s.metadata,
                        publish_at=s.scheduled_publish_time,
                        video_id=s.youtube_video_id,
                    )
                )
            except UploadError as exc:
                entry.update(ok=False, error=str(exc))
            else:
                entry.update(
                    ok=True,
                    operations=list(result.operations),
                    privacy_status=result.privacy_status,
                    publish_at=result.publish_at.isoformat() if result.publish_at else None,
                    bytes=result.bytes_sent,
                )
            results.append(entry)
    if state.as_json:
        _emit_json(
            {
                "dry_run": True,
                "channel": cfg.channel,
                "api_project": cfg.api_project,
                "due": results,
            }
        )
        return
    if not results:
        state.out.print(f"dry run: nothing is due on {_looked_at(cfg)}")
        return
    table = _new_table(title=f"dry run: {len(results)} due upload(s) on {_looked_at(cfg)}")
    for col in ("id", "title", "would send", "result"):
        table.add_column(col, overflow="fold")
    for r in results:
        if r["ok"]:
            send = r["privacy_status"] + (
                f", publishAt {r['publish_at']}" if r["publish_at"] else ""
            )
            table.add_row(str(r["id"]), r["title"], send, f"ok: {', '.join(r['operations'])}")
        else:
            table.add_row(str(r["id"]), r["title"], "-", f"would fail: {r['error']}")
    state.out.print(table)
    state.out.print("nothing was uploaded or changed")


def _build_uploader(
    state: _State, token_dir: str, api_endpoint: str | None, chunk_mib: int | None = None
) -> Any:
    from .youtube.auth import load_credentials, token_path_for
    from .youtube.google import YouTubeUploader

    cfg = state.config
    credentials = load_credentials(token_path_for(cfg.channel, Path(token_dir).expanduser()))
    return YouTubeUploader(
        credentials,
        api_endpoint=api_endpoint,
        quota_timezone=cfg.quota_timezone,
        chunk_size=chunk_mib * 1024 * 1024 if chunk_mib else None,
    )


@cli.command()
@click.option("--once", is_flag=True, help="One run, then exit (for cron or a systemd timer).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    envvar=f"{ENV}PROCESS_INTERVAL",
    help=f"Seconds between runs when looping [env: {ENV}PROCESS_INTERVAL].",
)
@click.option(
    "--exclusive",
    is_flag=True,
    help="Skip the run when another exclusive run for this API project and channel is running.",
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    envvar=f"{ENV}MAX_CONCURRENT",
    help=f"Uploads of the channel in flight, over all processors [env: {ENV}MAX_CONCURRENT].",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    envvar=f"{ENV}MAX_ATTEMPTS",
    help=f"Tries per schedule before it is marked failed [env: {ENV}MAX_ATTEMPTS].",
)
@click.option(
    "--worker-id",
    envvar=f"{ENV}WORKER_ID",
    help=f"Name in leases and `status` (default host:pid:random) [env: {ENV}WORKER_ID].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check what is due (files, metadata, privacy/publishAt) with no network; change nothing.",
)
@click.option(
    "--api-endpoint",
    envvar=f"{ENV}API_ENDPOINT",
    help=f"YouTube API base URL (default Google's; e.g. a FakeYouTube) [env: {ENV}API_ENDPOINT].",
)
@click.option(
    "--chunk-size",
    "chunk_mib",
    type=click.IntRange(min=0),
    default=None,
    metavar="MIB",
    envvar=f"{ENV}CHUNK_SIZE",
    help="Send each video in requests of at most MIB MiB, for proxies that limit request bodies "
    "(default or 0: the whole file in one request, the fastest; chunks cost one round trip "
    f"each) [env: {ENV}CHUNK_SIZE].",
)
@_channel_option
@_TOKEN_DIR_OPTION
@_run
def process(
    state: _State,
    once: bool,
    interval: float,
    exclusive: bool,
    max_concurrent: int,
    max_attempts: int,
    worker_id: str | None,
    dry_run: bool,
    api_endpoint: str | None,
    chunk_mib: int | None,
    token_dir: str,
) -> None:
    """Upload the channel's (--channel) due schedules: once, or every --interval seconds.

    Uses the OAuth token that `auth` saved for the channel. Stop a loop with Ctrl-C or SIGTERM:
    it claims nothing more, stops uploads at the next chunk and releases them for the next run.
    """
    from ._progress import DisplayingUploader, UploadDisplay
    from .processor import ProcessReport, RunOutcome, UploadProcessor

    if dry_run:
        _dry_run(state)
        return
    cfg = state.config
    uploader = _build_uploader(state, token_dir, api_endpoint, chunk_mib)
    quiet = state.as_json
    events: list[ProcessorEvent] = []
    report: ProcessReport | None = None
    started = time_module.monotonic()
    with state.manager() as m:
        titles: dict[int, str] = {}

        def describe(schedule_id: int) -> str:
            if schedule_id not in titles:
                try:
                    titles[schedule_id] = repr(m.get(schedule_id).metadata.title)
                except SchedulerError:
                    titles[schedule_id] = ""
            return titles[schedule_id]

        display = UploadDisplay(
            state.out,
            describe=describe,
            fmt_time=lambda t: _fmt_local(t, cfg),
            timestamps=not state.out.is_terminal,
        )

        def on_event(event: ProcessorEvent) -> None:
            events.append(event)
            if not quiet:
                display.event(event)

        processor = UploadProcessor(
            m,
            uploader if quiet else DisplayingUploader(uploader, display),
            worker_id=worker_id,
            max_concurrent_uploads=max_concurrent,
            per_channel_limit=max_concurrent,
            max_attempts=max_attempts,
            exclusive=exclusive,
            channels=[cfg.channel],
            on_event=on_event,
        )
        with uploader, processor, contextlib.nullcontext() if quiet else display:
            if once:
                with _stop_on_signals(processor.request_stop):
                    report = processor.run_once()
            else:
                if not quiet:
                    display.print(
                        f"processing channel {cfg.channel} every {interval:g} s "
                        "(Ctrl-C or SIGTERM stops after the uploads in flight reach a chunk "
                        "boundary)"
                    )
                processor.run_forever(interval)
    totals = {k: sum(e.kind.value == k for e in events) for k in _COUNTED}
    elapsed = time_module.monotonic() - started
    if report is not None:
        totals = {k: getattr(report, k) for k in _COUNTED}
    if state.as_json:
        payload: dict[str, Any] = {
            "channel": cfg.channel,
            "api_project": cfg.api_project,
            **totals,
            "elapsed_seconds": round(elapsed, 3),
            "events": [_event_json(e) for e in events],
        }
        if report is not None:
            payload.update(
                outcome=report.outcome.value,
                claimed=report.claimed,
                skipped=report.skipped,
                error=report.error,
            )
        _emit_json(payload)
    else:
        if report is not None and report.skipped:
            state.out.print("SKIPPED (previous run still in progress)")
        summary = ", ".join(f"{n} {k}" for k, n in totals.items())
        what = f"run {report.outcome.value}" if report is not None else "stopped"
        state.out.print(f"{what} after {elapsed:.1f} s: {summary}")
    if report is not None and report.outcome is RunOutcome.UNAUTHORIZED:
        from .errors import AuthorizationError

        raise AuthorizationError(
            f"YouTube refused the credentials of channel {cfg.channel}: {report.error}; "
            "run `langflix-scheduler auth` again",
            reason="unauthorized",
        )
    if report is not None and report.outcome is RunOutcome.ERROR:
        raise StorageError("processor run", report.error or "stopped early")


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM ask the run to stop gracefully; a second signal interrupts at once."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        stop()
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- status ------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--runs",
    "n_runs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many recent processor runs to show.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="At most this many failed schedules.",
)
@_run
def status(state: _State, n_runs: int, limit: int) -> None:
    """Recent processor runs (skips and lost runs included) and schedules that need review, are
    stuck, failed, overdue or retrying."""
    from .overview import explain

    cfg = state.config
    with state.manager() as m:
        runs = m.processor_runs(limit=n_runs)
        att = m.attention(limit=limit)
    elsewhere = {
        f"--channel {channel} --api-project {project}": n
        for (channel, project), n in att.due_elsewhere.items()
    }
    if state.as_json:
        _emit_json(
            {
                "now": att.now,
                "runs": runs,
                "skipped_runs": sum(r.skipped_overlap for r in runs),
                **{
                    k: [_schedule_json(s) for s in getattr(att, k)]
                    for k in (
                        "needs_review",
                        "stuck",
                        "in_flight",
                        "failed",
                        "overdue",
                        "waiting",
                        "due",
                    )
                },
                "failed_total": att.failed_total,
                "channel": cfg.channel,
                "api_project": cfg.api_project,
                "due_elsewhere": elsewhere,
            }
        )
        return
    table = _new_table(title=f"last {len(runs)} processor run(s), newest first")
    for col in ("started", "worker", "outcome", "secs", "what happened"):
        table.add_column(col, overflow="fold")
    for r in runs:
        secs = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
        counts = [
            f"{n} {name}"
            for name in ("claimed", "uploaded", "failed", "retried", "deferred", "rescued")
            if (n := getattr(r, name))
        ]
        if r.skipped_overlap:
            counts = ["previous run still in progress"]
        if r.error:
            counts.append(f"error: {r.error}")
        table.add_row(
            _fmt_local(r.started_at, cfg),
            r.worker_id,
            "SKIPPED" if r.skipped_overlap else r.outcome,
            "-" if secs is None else f"{secs:.1f}",
            ", ".join(counts) or "nothing due",
        )
    if runs:
        state.out.print(table)
    else:
        state.out.print("no processor runs recorded yet (run `langflix-scheduler process`)")
    skipped = sum(r.skipped_overlap for r in runs)
    if skipped:
        state.out.print(
            f"{skipped} of the last {len(runs)} runs SKIPPED (previous run still in progress)"
        )
    lost = sum(r.outcome == "lost" for r in runs)
    if lost:
        state.out.print(
            f"{lost} of the last {len(runs)} runs LOST: their heartbeat stopped (the process died, "
            "hangs, or lost its database)"
        )
    for where, n in sorted(elsewhere.items()):
        state.out.print(f"also due: {n} with {where}")
    rows = att.problems()
    state.out.print(
        f"{len(att.needs_review)} need review, "
        f"{len(att.in_flight)} uploading now, "
        f"{len(att.due)} due for the next run on {_looked_at(cfg)}, "
        f"{len(att.stuck)} stuck, {att.failed_total} failed, "
        f"{len(att.overdue)} overdue, {len(att.waiting)} waiting to retry"
    )
    if not rows:
        return
    table = _new_table(title="schedules that need attention")
    for col in ("id", "channel", "publish (local)", "state", "attempts", "title", "why"):
        table.add_column(col, overflow="fold")
    for kind, s in rows:
        table.add_row(
            str(s.id),
            s.channel_id,
            _fmt_local(s.scheduled_publish_time, cfg),
            kind,
            str(s.attempts),
            s.metadata.title,
            explain(kind, s, cfg.zone),
        )
    state.out.print(table)


# -- demo --------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the demo's temporary directory (database and videos) and print where it is.",
)
@_run
def demo(state: _State, keep: bool) -> None:
    """The whole job offline in seconds: schedule a week, upload to a fake YouTube, verify.

    Uses its own throwaway SQLite database (database flags are ignored), generated videos,
    FakeYouTube on 127.0.0.1 and the real google-api-python-client, with a simulated clock.
    """
    from ._demo import demo_json, run_demo

    if not state.verbose:
        # The demo narrates what happens; the library's warnings (the injected fault) would
        # repeat it.
        logging.getLogger("langflix_scheduler").setLevel(logging.ERROR)
    run = run_demo(state.out, quiet=state.as_json, keep=keep)
    if state.as_json:
        _emit_json(demo_json(run, kept=keep))
    elif keep:
        flags = (
            f"--database-url {run.database_url} --timezone {run.timezone} "
            f"--channel {run.channel} --api-project {run.api_project}"
        )
        state.out.print(
            f"kept {run.workdir}; look around with:\n"
            f"  langflix-scheduler {flags} list\n"
            f"  langflix-scheduler {flags} status\n"
            f"  langflix-scheduler {flags} process --dry-run",
            markup=False,
            soft_wrap=True,
        )
    if not run.ok:
        failed = ", ".join(name for name, ok in run.checks.items() if not ok) or "no checks ran"
        raise SchedulerError(f"demo checks failed: {failed}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="langflix-scheduler", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_USER_ERROR
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    except SchedulerError as exc:
        _fail(None, exc)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
