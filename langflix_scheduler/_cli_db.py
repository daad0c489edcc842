"""The CLI's view of database failures: which exit code, and what the user should do.

One table (:data:`_RULES`) decides, for every command: a permanent problem (no schema, not a
database, a missing directory, bad credentials) exits 1 with what to do; only conditions that a
retry can fix (an unreachable server, a lock or statement timeout, a lost connection, a commit
whose outcome is unknown) exit 3. SQLAlchemy and alembic are imported only on the error path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .config import SchedulerConfig
from .errors import (
    ConfigurationError,
    DatabaseTimeoutError,
    InvalidScheduleError,
    LockTimeoutError,
    OutcomeUnknownError,
    SchedulerError,
    StorageError,
)

EXIT_USER_ERROR = 1
EXIT_UNAVAILABLE = 3

#: Errors whose type alone says "retry later".
_RETRYABLE_TYPES = (LockTimeoutError, DatabaseTimeoutError, OutcomeUnknownError)


@dataclass(frozen=True)
class Verdict:
    """What a failure means for the user: the exit code and the line to print."""

    code: int
    message: str


# (what the driver said, kind). First match wins; matched against the error's whole message.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"file is not a database|database disk image is malformed", "not_a_database"),
        (r"unable to open database file|lock file .*no such file or directory", "cannot_open"),
        (r"readonly database|read-only file system", "read_only"),
        (r"password authentication failed|access denied for user", "credentials"),
        (r'database "[^"]*" does not exist|unknown database', "no_database"),
        (
            r"no such table|no such column|relation \S+ does not exist|column \S+ does not exist"
            r"|table \S+ doesn't exist|unknown column",
            "schema",
        ),
        (
            r"connection refused|could not connect|connection to server|can't connect"
            r"|server has gone away|lost connection|connection lost|connection .*closed"
            r"|timed out|timeout expired|could not translate host|name or service not known"
            r"|database unavailable|still deadlocking|too many connections|database is locked",
            "retry",
        ),
    )
)


def classify(exc: SchedulerError, config: SchedulerConfig | None) -> Verdict:
    """Exit code and message for a library error raised by a command."""
    if isinstance(exc, _RETRYABLE_TYPES):
        return Verdict(EXIT_UNAVAILABLE, f"{exc} (temporary: retry later)")
    if not isinstance(exc, StorageError):
        return Verdict(EXIT_USER_ERROR, humane(exc, config))
    text = str(exc)
    kind = next((k for pattern, k in _RULES if pattern.search(text)), None)
    if kind == "retry":
        return Verdict(EXIT_UNAVAILABLE, f"{text} (temporary: retry later)")
    if kind is None:
        return Verdict(EXIT_USER_ERROR, text)
    return Verdict(EXIT_USER_ERROR, f"{_advice(kind, config)} ({text})")


#: Library parameter names -> the CLI options a person typed.
_OPTION_OF_FIELD = {
    "preferred_time": "--at",
    "new_time": "--at",
    "after": "--after",
    "video_type": "--type",
    "video_path": "PATH",
    "schedule_id": "ID",
    "channel": "--channel",
}
_ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:\d\d|Z)")


def humane(exc: SchedulerError, config: SchedulerConfig | None) -> str:
    """The message a person reads: CLI option names instead of Python parameters, and every
    instant in the channel's local time with its zone, without microseconds."""
    text = str(exc)
    if isinstance(exc, InvalidScheduleError) and exc.field in _OPTION_OF_FIELD:
        text = f"invalid {_OPTION_OF_FIELD[exc.field]}: {exc.reason}"
    return local_times(text, config)


def local_times(text: str, config: SchedulerConfig | None) -> str:
    """Rewrite ISO 8601 instants in ``text`` as ``2026-05-01 18:00 KST`` in the channel zone."""
    if config is None:
        return text

    def local(match: re.Match[str]) -> str:
        try:
            when = datetime.fromisoformat(match.group(0).replace("Z", "+00:00"))
        except ValueError:
            return match.group(0)
        moment = when.astimezone(config.zone)
        fmt = "%Y-%m-%d %H:%M:%S %Z" if moment.second else "%Y-%m-%d %H:%M %Z"
        return moment.strftime(fmt)

    return _ISO_INSTANT.sub(local, text)


def _sqlite_path(config: SchedulerConfig | None) -> Path | None:
    if config is None:
        return None
    try:
        from sqlalchemy.engine import make_url

        url = make_url(config.database_url)
    except Exception:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(os.path.abspath(str(url.database)))


def _advice(kind: str, config: SchedulerConfig | None) -> str:
    path = _sqlite_path(config)
    where = str(path) if path else "the database in --database-url"
    directory = path.parent if path else None
    if kind == "schema":
        return _schema_advice(config)
    if kind == "not_a_database":
        return f"{where} is not a langflix-scheduler database: check --database-url"
    if kind == "cannot_open" and directory is not None and not directory.is_dir():
        return f"cannot open {where}: directory {directory} does not exist"
    if kind in ("cannot_open", "read_only"):
        target = directory if directory is not None else where
        return f"cannot write {where}: check permissions of {target}"
    if kind == "credentials":
        return "the database server refused the user or password in --database-url"
    return "the database named in --database-url does not exist: create it, then run init-db"


def _schema_advice(config: SchedulerConfig | None) -> str:
    """Name the schema revision the database is at and the one this version needs."""
    init = "run `langflix-scheduler init-db`"
    if config is None:
        return f"the database schema is missing or out of date: {init}"
    try:
        from .db import migrate
        from .db.engine import Database, create_engine

        db = Database(create_engine(config.database_url), lock_timeout=config.lock_timeout)
        try:
            current = migrate.current_revision(db)
        finally:
            db.dispose()
        head = migrate.head_revision()
    except SchedulerError:
        return f"the database schema is missing or out of date: {init}"
    if current is None:
        return f"the database has no langflix-scheduler tables yet: {init}"
    if current != head:
        return (
            f"the database schema is at revision {current}, this version needs {head}: "
            f"{init} to upgrade it"
        )
    return f"the database schema (revision {current}) does not match this version: {init}"


def require_existing(config: SchedulerConfig) -> None:
    """Refuse a SQLite path that does not exist: only ``init-db`` creates a database file.

    (The library itself still creates the file on first use, as SQLite does; an application
    that embeds it decides. The CLI must not turn a mistyped path into a new empty database.)
    """
    path = _sqlite_path(config)
    if path is None or path.exists():
        return
    if not path.parent.is_dir():
        raise ConfigurationError(
            "--database-url", f"directory {path.parent} does not exist (for {path})"
        )
    raise ConfigurationError(
        "--database-url",
        f"no database at {path}: run `langflix-scheduler init-db` to create it, or fix the path",
    )
