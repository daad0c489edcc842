"""``web``: serve the dashboard (needs the ``[web]`` extra; the serving logic is
:func:`langflix_scheduler.web.serve.serve`)."""

from __future__ import annotations

import click

from ._state import State, run


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--read-only", is_flag=True, help="No actions: pages and JSON only.")
@click.option("--token", envvar="LANGFLIX_SCHEDULER_WEB_TOKEN", help="Require this token.")
@click.option("--basic-auth", envvar="LANGFLIX_SCHEDULER_WEB_BASIC_AUTH", help="USER:PASSWORD.")
@click.option(
    "--secret", envvar="LANGFLIX_SCHEDULER_WEB_SECRET", help="CSRF/login key (default: random)."
)
@run
def web(
    state: State,
    host: str,
    port: int,
    read_only: bool,
    token: str | None,
    basic_auth: str | None,
    secret: str | None,
) -> None:
    """Serve the web dashboard (needs the [web] extra); see docs/web.md."""
    from ..web.serve import check_bind, parse_basic_auth, serve

    credentials = parse_basic_auth(basic_auth)
    check_bind(host, token=token, basic_auth=credentials)
    with state.manager() as m:
        serve(
            m,
            host=host,
            port=port,
            read_only=read_only,
            token=token,
            basic_auth=credentials,
            secret=secret,
        )


COMMANDS = (web,)
