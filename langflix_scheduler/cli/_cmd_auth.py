"""``auth``: authorise a channel and save its token, or check stored tokens (``--check``);
``init-db``: create or upgrade the schema."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import SchedulerError
from ._errors import EXIT_UNAVAILABLE, EXIT_USER_ERROR
from ._render import emit_json, fmt_local, table_of
from ._state import ENV, State, channel_option, run, token_dir_option

if TYPE_CHECKING:
    from ..domain import ChannelPause
    from ..manager import ScheduleManager
    from ..youtube.health import TokenHealth
    from ..youtube.uploader import ApiCallReport, CallCallback


@click.command("init-db")
@run
def init_db(state: State) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from ..diagnosis import display_url

    with state.manager(create=True) as m:
        m.init_db()
    url = display_url(state.config.database_url)
    if state.as_json:
        emit_json({"ok": True, "database_url": url})
    else:
        state.out.print(f"database ready: {url}")


def _json_after_command(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``auth --check --json``: the global ``--json`` given after the command."""
    state = ctx.find_object(State)
    if value and state is not None:
        state.as_json = True


@click.command()
@click.option(
    "--client-secrets",
    type=click.Path(dir_okay=False, path_type=Path),
    help="OAuth client JSON (Desktop app) from Google Cloud Console (required unless --check).",
)
@channel_option
@click.option("--headless", is_flag=True, help="Do not open a browser; print the URL instead.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Local redirect port.")
@click.option(
    "--check",
    is_flag=True,
    help="Check stored tokens instead (every channel, or --channel): refresh each, ask YouTube "
    "whose channel it is (channels.list, 1 quota unit, recorded in the quota ledger when the "
    "database is initialised); exit 1 when one needs `auth` again.",
)
@click.option(
    "--expect-channel-id",
    metavar="UC...",
    help="With --check --channel: the YouTube channel id the token must belong to.",
)
@click.option(
    "--api-endpoint",
    envvar=f"{ENV}API_ENDPOINT",
    help=f"YouTube API base URL for --check (default Google's) [env: {ENV}API_ENDPOINT].",
)
@click.option(
    "--token-uri",
    envvar=f"{ENV}TOKEN_URI",
    help=f"OAuth token endpoint for --check (default Google's) [env: {ENV}TOKEN_URI].",
)
@click.option(
    "--json",
    "_json",
    is_flag=True,
    expose_value=False,
    callback=_json_after_command,
    help="Machine-readable JSON output (same as the global --json).",
)
@token_dir_option
@run
def auth(
    state: State,
    client_secrets: Path | None,
    headless: bool,
    port: int,
    check: bool,
    expect_channel_id: str | None,
    api_endpoint: str | None,
    token_uri: str | None,
    token_dir: str,
) -> None:
    """Authorise a channel (--channel) and save its token file (mode 0600); or, with --check,
    check the stored tokens."""
    if check:
        _check(state, Path(token_dir).expanduser(), expect_channel_id, api_endpoint, token_uri)
        return
    if expect_channel_id is not None:
        raise click.UsageError("--expect-channel-id goes with --check")
    if client_secrets is None:
        raise click.UsageError("Missing option '--client-secrets' (or pass --check).")
    from ..youtube.auth import authorize, token_path_for

    channel = state.config.channel
    token_path = token_path_for(channel, Path(token_dir).expanduser())
    if headless and port == 0:
        state.err.print("note: with --headless pick a fixed --port and forward it (ssh -L)")
    authorize(
        client_secrets,
        token_path,
        headless=headless,
        port=port,
        on_url=lambda url: state.err.print(
            f"Open this URL to authorise channel {channel}:\n{url}",
            markup=False,
            soft_wrap=True,
        ),
    )
    resumed = _resume(state, [channel])
    if state.as_json:
        emit_json({"channel": channel, "token_path": str(token_path), "resumed": bool(resumed)})
    else:
        state.out.print(f"authorised channel {channel}; token saved to {token_path}")
        _print_resumed(state, resumed)


def _resume(state: State, channels: list[str]) -> list[ChannelPause]:
    """Lift the pause of ``channels`` (their token works again). Best effort: without a usable
    database there is no pause to lift, and a failure is only noted."""
    if not channels:
        return []
    with _ledger(state) as (manager, _why):
        if manager is None:
            return []
        lifted: list[ChannelPause] = []
        for name in channels:
            try:
                pause = manager.resume_channel(name)
            except SchedulerError as exc:
                state.err.print(f"note: could not resume channel {name}: {exc}", markup=False)
                continue
            if pause is not None:
                lifted.append(pause)
        return lifted


def _print_resumed(state: State, resumed: list[ChannelPause]) -> None:
    for p in resumed:
        state.out.print(
            f"channel {p.channel} resumed: its uploads were paused since "
            f"{fmt_local(p.paused_at, state.config)}",
            markup=False,
        )


class _NotRecorded(Exception):
    """The quota ledger could not record ``channels.list``: the call was not sent."""

    def __init__(self, error: SchedulerError) -> None:
        super().__init__(str(error))
        self.error = error


@contextmanager
def _ledger(state: State) -> Iterator[tuple[ScheduleManager | None, str | None]]:
    """The manager recording ``auth --check``'s calls, or None and why they are not recorded
    (no database, or one without the current schema: the check runs anyway)."""
    with ExitStack() as stack:
        try:
            m = stack.enter_context(state.manager())
            current = m.schema_is_current()
        except SchedulerError as exc:
            yield None, f"no usable database ({exc})"
            return
        if current:
            yield m, None
        else:
            yield None, "the database is not initialised at the current schema (run `init-db`)"


def _check(
    state: State,
    token_dir: Path,
    expect_channel_id: str | None,
    api_endpoint: str | None,
    token_uri: str | None,
) -> None:
    """``auth --check``: one report per channel; exit 1 when any needs a person. Each
    ``channels.list`` is recorded in the quota ledger before it is sent, when the database is
    usable; a call the ledger cannot record is not sent (that channel's check fails)."""
    from ..youtube.health import stored_channels

    channel = state.explicit_channel
    if expect_channel_id is not None and channel is None:
        raise click.UsageError("--expect-channel-id needs --channel")
    channels = [channel] if channel is not None else stored_channels(token_dir)
    if not channels:
        raise click.ClickException(
            f"no stored tokens in {token_dir}; run `langflix-scheduler auth --channel NAME "
            "--client-secrets FILE` first"
        )
    with _ledger(state) as (manager, not_recorded):
        reports = [
            _check_one(
                state,
                manager,
                name,
                token_dir,
                expect_channel_id if channel else None,
                api_endpoint,
                token_uri,
            )
            for name in channels
        ]
    resumed = _resume(state, [r.channel for r in reports if r.ok])
    if state.as_json:
        emit_json(
            {
                "tokens": [r.to_dict() for r in reports],
                "quota_ledger": {"recorded": manager is not None, "reason": not_recorded},
                "resumed_channels": [p.channel for p in resumed],
            }
        )
    else:
        _render_health(state, reports)
        _print_resumed(state, resumed)
        if not_recorded is not None:
            state.err.print(
                f"note: channels.list not recorded in the quota ledger: {not_recorded}",
                markup=False,
                soft_wrap=True,
            )
    if any(r.needs_reauth for r in reports):
        raise SystemExit(EXIT_USER_ERROR)
    if any(not r.ok for r in reports):
        raise SystemExit(EXIT_UNAVAILABLE)


def _check_one(
    state: State,
    manager: ScheduleManager | None,
    channel: str,
    token_dir: Path,
    expect_channel_id: str | None,
    api_endpoint: str | None,
    token_uri: str | None,
) -> TokenHealth:
    """Check one channel's token, its ``channels.list`` recorded through ``manager``."""
    from ..youtube.auth import token_path_for
    from ..youtube.health import check_token, health_from_error

    on_call: CallCallback | None = None
    if manager is not None:
        record = manager.api_call_recorder(channel=channel)

        def on_call(report: ApiCallReport) -> None:
            try:
                record(report)
            except SchedulerError as exc:
                raise _NotRecorded(exc) from exc

    try:
        return check_token(
            channel,
            token_dir,
            expected_channel_id=expect_channel_id,
            api_endpoint=api_endpoint,
            token_uri=token_uri,
            on_call=on_call,
            quota_timezone=state.config.quota_timezone,
        )
    except _NotRecorded as exc:
        health = health_from_error(
            channel, token_path_for(channel, token_dir), exc.error, now=datetime.now(UTC)
        )
        return dataclasses.replace(
            health,
            message=(
                f"channels.list not sent: it could not be recorded in the quota ledger "
                f"({exc.error}); try again later"
            ),
        )


def _render_health(state: State, reports: list[TokenHealth]) -> None:
    def expiry(r: TokenHealth) -> str:
        if r.refresh_token_expires_at is None:
            return "-" if r.problem is not None else "no expiry given"
        return fmt_local(r.refresh_token_expires_at, state.config)

    def matches(r: TokenHealth) -> str:
        if r.channel_matches is None:
            return "cannot compare" if r.youtube_channel_id else "-"
        return "yes" if r.channel_matches else f"NO (expected {r.expected_channel_id})"

    rows: list[tuple[str, ...]] = [
        (
            r.channel,
            "ok" if r.ok else r.problem.value if r.problem else "",
            r.youtube_channel_id or "-",
            r.youtube_channel_title or "-",
            matches(r),
            " ".join(s.rsplit("/", 1)[-1] for s in r.scopes) or "-",
            expiry(r),
        )
        for r in reports
    ]
    state.out.print(
        table_of(
            "OAuth tokens",
            (
                "channel",
                "health",
                "youtube channel id",
                "title",
                "matches",
                "scopes",
                "refresh token expires",
            ),
            rows,
        )
    )
    for r in reports:
        if r.message:
            state.out.print(f"{r.channel}: {r.message}", markup=False, soft_wrap=True)


COMMANDS = (init_db, auth)
