"""What a storage failure means for a person: retry later, or fix something (and what).

One table (:data:`_RULES`) decides for every front end (the CLI maps it to exit codes 1 and 3, a
dashboard to its messages): a permanent problem (no schema, not a database, a missing directory,
bad credentials) gets advice on what to do; only conditions that a retry can fix (an unreachable
server, a lock or statement timeout, a lost connection, a commit whose outcome is unknown) are
``retryable``. :func:`check_database_file` refuses a SQLite path that does not exist, for front
ends that must not create a database by accident. SQLAlchemy and alembic are imported only on
the paths that need them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import SchedulerConfig
from .errors import (
    ConfigurationError,
    DatabaseTimeoutError,
    LockTimeoutError,
    OutcomeUnknownError,
    SchedulerError,
    StorageError,
)

__all__ = ["Diagnosis", "check_database_file", "diagnose", "display_url", "sqlite_path"]

#: Errors whose type alone says "retry later".
_RETRYABLE_TYPES = (LockTimeoutError, DatabaseTimeoutError, OutcomeUnknownError)


@dataclass(frozen=True)
class Diagnosis:
    """What a failure means: whether a retry can fix it, and the line to show.

    ``message`` is the error's own text for errors that are not about storage (bad input and
    the like); for storage errors it leads with what to do.
    """

    retryable: bool
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


def diagnose(exc: SchedulerError, config: SchedulerConfig | None) -> Diagnosis:
    """Retryable or not, and the message, for a library error (``config``: for the advice)."""
    if isinstance(exc, _RETRYABLE_TYPES):
        return Diagnosis(True, f"{exc} (temporary: retry later)")
    text = str(exc)
    if not isinstance(exc, StorageError):
        return Diagnosis(False, text)
    kind = next((k for pattern, k in _RULES if pattern.search(text)), None)
    if kind == "retry":
        return Diagnosis(True, f"{text} (temporary: retry later)")
    if kind is None:
        return Diagnosis(False, text)
    return Diagnosis(False, f"{_advice(kind, config)} ({text})")


def display_url(url: str) -> str:
    """``url`` with its password hidden, for messages (``<database>`` if it does not parse)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def sqlite_path(config: SchedulerConfig | None) -> Path | None:
    """The absolute path of the configured SQLite database file (``None``: not a file)."""
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
    path = sqlite_path(config)
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


def check_database_file(config: SchedulerConfig) -> None:
    """Refuse a SQLite path that does not exist (only ``init-db`` creates a database file).

    (The manager itself still creates the file on first use, as SQLite does; an application
    that embeds it decides. The CLI calls this so that a mistyped path never becomes a new
    empty database.)
    """
    path = sqlite_path(config)
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
