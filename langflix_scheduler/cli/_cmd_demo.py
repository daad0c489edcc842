"""``demo``: the whole job offline (the story itself is in :mod:`._demo`)."""

from __future__ import annotations

import logging

import click

from ..errors import SchedulerError
from ._render import emit_json
from ._state import State, run


@click.command()
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the demo's temporary directory (database and videos) and print where it is.",
)
@run
def demo(state: State, keep: bool) -> None:
    """The whole job offline in seconds: schedule a week, upload to a fake YouTube, verify.

    Uses its own throwaway SQLite database (database flags are ignored), generated videos,
    FakeYouTube on 127.0.0.1 and the real google-api-python-client, with a simulated clock.
    """
    from ._demo import demo_json, run_demo

    if not state.verbose:
        # The demo narrates what happens; the library's warnings (the injected fault) would
        # repeat it.
        logging.getLogger("langflix_scheduler").setLevel(logging.ERROR)
    result = run_demo(state.out, quiet=state.as_json, keep=keep)
    if state.as_json:
        emit_json(demo_json(result, kept=keep))
    elif keep:
        flags = (
            f"--database-url {result.database_url} --timezone {result.timezone} "
            f"--channel {result.channel} --api-project {result.api_project}"
        )
        state.out.print(
            f"kept {result.workdir}; look around with:\n"
            f"  langflix-scheduler {flags} list\n"
            f"  langflix-scheduler {flags} status\n"
            f"  langflix-scheduler {flags} process --dry-run",
            markup=False,
            soft_wrap=True,
        )
    if not result.ok:
        failed = ", ".join(name for name, ok in result.checks.items() if not ok) or "no checks ran"
        raise SchedulerError(f"demo checks failed: {failed}")


COMMANDS = (demo,)
