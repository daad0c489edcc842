"""A cron- and systemd-friendly upload job: one exclusive processor run, then exit.

    python examples/processor_job.py --channel main            # real YouTube (token from `auth`)
    python examples/processor_job.py --fake-youtube            # offline: a FakeYouTube in-process

Exclusive mode holds a named lock for the API project and channel (PostgreSQL advisory lock,
MariaDB ``GET_LOCK``, SQLite lock file) for the whole run. When cron or a timer starts the job
while the previous run is still uploading, the new run logs ``SKIPPED (previous run still in
progress)``, records the skip and exits 0 at once; a crashed holder's lock is released by the
server or the OS.
Several machines can run this job against one PostgreSQL: with ``--exclusive`` only one uploads at
a time; without it, they share the work (claims use ``FOR UPDATE SKIP LOCKED``).

crontab, every five minutes::

    */5 * * * * cd /srv/langflix && .venv/bin/python examples/processor_job.py --channel main

SIGTERM or SIGINT (``systemctl stop``, Ctrl-C) stops gracefully: nothing new is claimed, uploads
in flight stop at the next chunk and are released for the next run, which resumes them.

Logs go to stderr (one line per event, then a summary). Exit codes: 0 ok or skipped, 1 the channel
must be re-authorised or the configuration is wrong, 3 the database failed (retry later).

Settings come from ``--database-url`` and the ``LANGFLIX_SCHEDULER_*`` environment variables.
With ``--fake-youtube`` and no database given explicitly (neither ``--database-url`` nor
``LANGFLIX_SCHEDULER_DATABASE_URL``), the job uses a throwaway SQLite database in a temporary
directory: an offline run never uploads (and marks completed) the due schedules of a real
``langflix-scheduler.db`` it happens to find. Every run logs which database it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langflix_scheduler import (
    AuthorizationError,
    ConfigurationError,
    ProcessorEvent,
    RunOutcome,
    ScheduleManager,
    SchedulerConfig,
    SchedulerError,
    UploadProcessor,
)

log = logging.getLogger("processor_job")
DEFAULT_TOKEN_DIR = "~/.config/langflix-scheduler/tokens"  # noqa: S105 - a path


@contextlib.contextmanager
def uploader_for(channel: str, token_dir: str, fake: bool) -> Iterator[Any]:
    """The real uploader with the channel's saved token, or one talking to a FakeYouTube."""
    from langflix_scheduler.youtube.google import YouTubeUploader

    if not fake:
        from langflix_scheduler.youtube.auth import load_credentials, token_path_for

        token = token_path_for(channel, Path(token_dir).expanduser())
        with YouTubeUploader(load_credentials(token)) as uploader:
            yield uploader
        return
    from google.oauth2.credentials import Credentials

    from langflix_scheduler.testing import FakeYouTube

    with FakeYouTube() as server:
        log.info("FakeYouTube listening on %s", server.url)
        credentials = Credentials(token="any")  # noqa: S106 - FakeYouTube accepts any token
        with YouTubeUploader(credentials, api_endpoint=server.api_endpoint) as up:
            yield up
        log.info("FakeYouTube received %d video(s)", len(server.videos))


@contextlib.contextmanager
def database_for(explicit: str | None, fake: bool) -> Iterator[str | None]:
    """The database URL to use: the explicit one; with --fake-youtube and none given, a
    throwaway SQLite database (created, migrated, deleted afterwards); else the default."""
    explicit = explicit or os.environ.get("LANGFLIX_SCHEDULER_DATABASE_URL")
    if explicit or not fake:
        yield explicit
        return
    with tempfile.TemporaryDirectory(prefix="processor-job-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'offline.db'}"
        with ScheduleManager(SchedulerConfig(database_url=url)) as manager:
            manager.init_db()
        log.info("offline run: throwaway database %s (give --database-url to use yours)", url)
        yield url


def on_event(event: ProcessorEvent) -> None:
    log.info(
        "%s schedule %d%s%s",
        event.kind.value,
        event.schedule_id,
        f" -> video {event.video_id}" if event.video_id else "",
        f" ({event.error})" if event.error else "",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One exclusive upload run (cron/systemd).")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: from the environment)")
    parser.add_argument("--channel", help="channel whose due videos to upload")
    parser.add_argument(
        "--token-dir",
        default=os.environ.get("LANGFLIX_SCHEDULER_TOKEN_DIR", DEFAULT_TOKEN_DIR),
        help="where `langflix-scheduler auth` saved the channel tokens",
    )
    parser.add_argument("--fake-youtube", action="store_true", help="upload to a FakeYouTube")
    parser.add_argument("--max-concurrent", type=int, default=1, help="uploads in flight")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per event from on_event below; set INFO here for the library's step-by-step log.
    logging.getLogger("langflix_scheduler").setLevel(logging.WARNING)
    try:
        with database_for(args.database_url, args.fake_youtube) as url:
            config = SchedulerConfig.from_env(database_url=url, channel=args.channel)
            log.info("database: %s", _safe(config.database_url))
            report = run(config, args)
    except (AuthorizationError, ConfigurationError) as exc:
        log.error("%s", exc)
        return 1
    except SchedulerError as exc:  # StorageError, LockTimeoutError: the database failed
        log.error("%s", exc)
        return 3
    log.info(
        "run %s: claimed %d, uploaded %d, failed %d, retried %d, deferred %d, rescued %d",
        report.outcome.value,
        report.claimed,
        report.uploaded,
        report.failed,
        report.retried,
        report.deferred,
        report.rescued,
    )
    if report.outcome is RunOutcome.UNAUTHORIZED:
        log.error("re-authorise the channel: langflix-scheduler auth --channel %s", config.channel)
        return 1
    return 3 if report.outcome is RunOutcome.ERROR else 0


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def run(config: SchedulerConfig, args: argparse.Namespace) -> Any:
    """One exclusive processor run; returns its report."""
    with (
        ScheduleManager(config) as manager,
        uploader_for(config.channel, args.token_dir, args.fake_youtube) as uploader,
        UploadProcessor(
            manager,
            uploader,
            channels=[config.channel],
            max_concurrent_uploads=args.max_concurrent,
            per_channel_limit=args.max_concurrent,
            exclusive=True,
            on_event=on_event,
        ) as processor,
    ):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda _signum, _frame: processor.request_stop())
        return processor.run_once()


if __name__ == "__main__":
    sys.exit(main())
