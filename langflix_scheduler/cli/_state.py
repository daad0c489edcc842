"""What every command shares: the resolved global options, the manager, error translation.

Start-up time: SQLAlchemy (via the manager), rich, alembic and googleapiclient are imported
inside the functions that need them, so `--help`, `--version` and usage errors stay fast
(benchmarks/bench_cli.py measures it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..config import SchedulerConfig
from ..errors import DuplicateVideoError, SchedulerError, SlotUnavailableError
from ._errors import EXIT_INTERRUPTED, classify
from ._render import console

if TYPE_CHECKING:
    from rich.console import Console

    from ..manager import ScheduleManager

DEFAULT_CONFIG_FILE = "langflix-scheduler.toml"
ENV = "LANGFLIX_SCHEDULER_"
DEFAULT_TOKEN_DIR = "~/.config/langflix-scheduler/tokens"  # noqa: S105 - a path, not a secret


def env_help(name: str, text: str) -> str:
    """Help text naming the environment variable of setting ``name``."""
    return f"{text} [env: {ENV}{name.upper()}]"


@dataclasses.dataclass
class State:
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
            self._out = console(stderr=False)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            self._err = console(stderr=True)
        return self._err

    @property
    def config(self) -> SchedulerConfig:
        if self._config is None:
            self._config = SchedulerConfig.load(file=self.config_file, **self.overrides)
        return self._config

    @contextmanager
    def manager(self, *, create: bool = False) -> Iterator[ScheduleManager]:
        """The manager; only ``create=True`` (init-db) may create a new SQLite file."""
        from ..diagnosis import check_database_file
        from ..manager import ScheduleManager

        if not create:
            check_database_file(self.config)
        with ScheduleManager(self.config) as m:
            yield m

    @property
    def explicit_channel(self) -> str | None:
        """``--channel`` when given on the command line: show/cancel/reschedule then refuse an
        id of another channel (a channel from the environment or config file does not)."""
        value = self.overrides.get("channel")
        return value if isinstance(value, str) else None

    def set_channel(self, channel: str) -> None:
        """``--channel`` given after the command (``auth --channel main``)."""
        self.overrides["channel"] = channel
        self._config = None


def fail(state: State | None, exc: SchedulerError) -> NoReturn:
    """Print the error as one line (or JSON) and exit with its code."""
    verdict = classify(exc, _config_or_none(state))
    err = state.err if state else console(stderr=True)
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


def _config_or_none(state: State | None) -> SchedulerConfig | None:
    try:
        return state.config if state else None
    except SchedulerError:
        return None


def run(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a command body: translate the library's errors into one line and an exit code."""

    @click.pass_obj
    def wrapper(state: State, /, **kwargs: Any) -> None:
        try:
            fn(state, **kwargs)
        except SchedulerError as exc:
            fail(state, exc)
        except KeyboardInterrupt:
            state.err.print("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


token_dir_option = click.option(
    "--token-dir",
    envvar=f"{ENV}TOKEN_DIR",
    default=DEFAULT_TOKEN_DIR,
    show_default=True,
    help=f"Directory of per-channel OAuth tokens [env: {ENV}TOKEN_DIR].",
)


def channel_option(fn: Callable[..., None]) -> Callable[..., None]:
    """``--channel`` after the command too (``auth --channel main``), same as the global flag."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            state = ctx.find_object(State)
            if state is not None:
                state.set_channel(value)

    return click.option(
        "--channel",
        "_channel",
        expose_value=False,
        callback=remember,
        help=env_help("channel", "Channel id (same as the global --channel)."),
    )(fn)
