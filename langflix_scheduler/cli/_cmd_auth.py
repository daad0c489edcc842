"""``auth``: authorise a channel and save its token; ``init-db``: create or upgrade the schema."""

from __future__ import annotations

from pathlib import Path

import click

from ._render import emit_json
from ._state import State, channel_option, run, token_dir_option


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


@click.command()
@click.option(
    "--client-secrets",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OAuth client JSON (Desktop app) from Google Cloud Console.",
)
@channel_option
@click.option("--headless", is_flag=True, help="Do not open a browser; print the URL instead.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Local redirect port.")
@token_dir_option
@run
def auth(state: State, client_secrets: Path, headless: bool, port: int, token_dir: str) -> None:
    """Authorise a channel (--channel) and save its token file (mode 0600)."""
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
    if state.as_json:
        emit_json({"channel": channel, "token_path": str(token_path)})
    else:
        state.out.print(f"authorised channel {channel}; token saved to {token_path}")


COMMANDS = (init_db, auth)
