"""``langflix-scheduler`` command line: parse, build the config, call the library, render.

Configuration precedence: flags > environment (``LANGFLIX_SCHEDULER_*``) > config file
(``--config``, default ``./langflix-scheduler.toml`` when present) > defaults.

Exit codes: 0 ok; 1 a user error (the message says what to fix); 2 a usage error; 3 a lock
timeout or an unreachable database (retry later); 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import SchedulerConfig
from .domain import ScheduledVideo, UploadStatus, VideoMetadata, VideoType
from .errors import (
    ConfigurationError,
    InvalidScheduleError,
    LockTimeoutError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
)
from .manager import ScheduleManager

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
    out: Console
    err: Console
    _config: SchedulerConfig | None = None

    @property
    def config(self) -> SchedulerConfig:
        if self._config is None:
            self._config = SchedulerConfig.load(file=self.config_file, **self.overrides)
        return self._config

    @contextmanager
    def manager(self) -> Iterator[ScheduleManager]:
        with ScheduleManager(self.config) as m:
            yield m


def _fail(state: _State | None, exc: BaseException) -> NoReturn:
    code = EXIT_UNAVAILABLE if isinstance(exc, LockTimeoutError | StorageError) else EXIT_USER_ERROR
    err = state.err if state else Console(stderr=True)
    if state and state.verbose:
        err.print_exception()
    if state and state.as_json:
        payload = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, SlotUnavailableError) and exc.next_available:
            payload["next_available"] = exc.next_available.isoformat()
        click.echo(json.dumps(payload), err=True)
    else:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(code)


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
    if when is None:
        return "-"
    return when.astimezone(config.zone).strftime("%Y-%m-%d %H:%M %Z")


# -- the group ---------------------------------------------------------------------------------


def _env_help(name: str, text: str) -> str:
    return f"{text} [env: {ENV}{name.upper()}]"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="langflix-scheduler")
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
            "quota_policy": quota_policy,
        },
        config_file=config_file,
        as_json=as_json,
        verbose=verbose,
        out=Console(highlight=False),
        err=Console(stderr=True, highlight=False),
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
    with state.manager() as m:
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
        try:
            loaded = json.loads(metadata_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(
                "--metadata", f"cannot read {metadata_file}: {exc.strerror}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                "--metadata", f"{metadata_file} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigurationError("--metadata", "must contain a JSON object")
        data.update(loaded)
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
        f"{_fmt_local(s.scheduled_publish_time, state.config)} "
        f"({s.scheduled_publish_time.isoformat()}) on channel {s.channel_id}"
    )


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--type", "video_type", required=True, type=click.Choice([v.value for v in VideoType])
)
@click.option(
    "--at", "at", help="Exact publish time, ISO 8601 with offset (default: next free slot)."
)
@click.option("--title", help="Video title (default: the file name).")
@click.option("--description", help="Video description.")
@click.option("--tags", help="Comma-separated tags.")
@click.option("--thumbnail", type=click.Path(path_type=Path), help="Thumbnail JPEG/PNG.")
@click.option("--playlist", help="Playlist id to add the video to.")
@click.option("--privacy", type=click.Choice(["public", "unlisted", "private"]))
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file with metadata (flags override its keys).",
)
@_run
def schedule(
    state: _State,
    path: Path,
    video_type: str,
    at: str | None,
    title: str | None,
    description: str | None,
    tags: str | None,
    thumbnail: Path | None,
    playlist: str | None,
    privacy: str | None,
    metadata_file: Path | None,
) -> None:
    """Book a publish slot for the video at PATH."""
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
        booked = m.schedule_video(path, video_type, preferred_time=when, metadata=meta)
    _print_schedule(state, booked, "scheduled")


@cli.command("next-slot")
@click.option(
    "--type", "video_type", required=True, type=click.Choice([v.value for v in VideoType])
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
        state.out.print(
            f"next {video_type} slot: {_fmt_local(slot, state.config)} ({slot.isoformat()})"
        )


def _schedules_table(state: _State, rows: list[ScheduledVideo], title: str) -> Table:
    table = Table(title=title)
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
@click.option("--status", type=click.Choice([s.value for s in UploadStatus]), multiple=True)
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
        s = m.get(schedule_id)
    if state.as_json:
        _emit_json(_schedule_json(s))
        return
    table = Table(show_header=False, title=f"schedule #{s.id}")
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
        s = m.cancel(schedule_id)
    _print_schedule(state, s, "cancelled")


@cli.command()
@click.argument("schedule_id", type=int)
@click.option("--at", "at", required=True, help="New publish time, ISO 8601 with offset.")
@_run
def reschedule(state: _State, schedule_id: int, at: str) -> None:
    """Move a scheduled video to another publish time."""
    with state.manager() as m:
        s = m.reschedule(schedule_id, _parse_instant(at, "--at"))
    _print_schedule(state, s, "rescheduled")


@cli.command()
@click.option("--date", "day", help="First channel day (default: today in the channel zone).")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
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
    table = Table(title=f"channel {cfg.channel} ({cfg.timezone}), API project {cfg.api_project}")
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
    table = Table(title=f"{len(report.corrections)} counter(s) corrected")
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


@cli.command()
@click.option(
    "--client-secrets",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OAuth client JSON (Desktop app) from Google Cloud Console.",
)
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
