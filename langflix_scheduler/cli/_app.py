"""The ``langflix-scheduler`` group: global options (before or after the command), the
commands of each group module, and the exit-code mapping of :func:`main`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..errors import SchedulerError
from . import (
    _cmd_auth,
    _cmd_booking,
    _cmd_demo,
    _cmd_process,
    _cmd_quota,
    _cmd_reading,
    _cmd_reconcile,
    _cmd_status,
    _cmd_web,
)
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_USER_ERROR
from ._parse import hoist_global_options
from ._state import DEFAULT_CONFIG_FILE, State, env_help, fail


class _Group(click.Group):
    """Global options are also accepted after the command (``list --json``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, ctx, args))


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
@click.option("--database-url", help=env_help("database_url", "SQLAlchemy database URL."))
@click.option("--timezone", help=env_help("timezone", "Channel time zone (IANA name)."))
@click.option("--channel", help=env_help("channel", "Channel id."))
@click.option("--api-project", help=env_help("api_project", "Google Cloud project (quota owner)."))
@click.option(
    "--lock-timeout", type=float, help=env_help("lock_timeout", "Seconds to wait for a row lock.")
)
@click.option(
    "--db-timeout",
    type=float,
    help=env_help("db_timeout", "Seconds any one database call may take (> lock timeout)."),
)
@click.option(
    "--quota-policy",
    help=env_help("quota_policy", "Quota preset: granular-2026, pool-2025 or legacy."),
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("-v", "--verbose", is_flag=True, help="Log details and show tracebacks.")
@click.pass_context
def cli(
    ctx: click.Context,
    /,
    config_file: Path | None,
    as_json: bool,
    verbose: bool,
    **overrides: str | float | None,
) -> None:
    """Schedule and upload YouTube videos on a cadence, race-free and crash-safe."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if config_file is None and Path(DEFAULT_CONFIG_FILE).is_file():
        config_file = Path(DEFAULT_CONFIG_FILE)
    ctx.obj = State(
        overrides=dict(overrides), config_file=config_file, as_json=as_json, verbose=verbose
    )


for _module in (
    _cmd_auth,
    _cmd_booking,
    _cmd_reading,
    _cmd_quota,
    _cmd_process,
    _cmd_status,
    _cmd_reconcile,
    _cmd_demo,
    _cmd_web,
):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code.

    Exit codes: 0 ok; 1 a problem a retry will not fix (the message says what to do); 2 a usage
    error; 3 a condition a retry can fix (lock or database timeout, unreachable server, lost
    connection, unknown commit outcome); 130 interrupted.
    """
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
        fail(None, exc)
    return EXIT_OK
