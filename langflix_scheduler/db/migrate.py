"""Run the Alembic migrations shipped with the package (works from a wheel, outside a checkout)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConfigurationError
from .engine import Database, translate_error
from .locking import named_lock

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions that use it: importing it costs more than the rest of
# the package's start-up, and only init_db / migrations need it (every CLI call would pay).

__all__ = ["current_revision", "downgrade", "head_revision", "script_location", "upgrade"]

logger = logging.getLogger(__name__)

_MIGRATION_LOCK = "langflix-scheduler:migrate"
_MIGRATION_LOCK_WAIT_SECONDS = 60.0


def script_location() -> Path:
    """The Alembic script directory: inside the installed package, else the source checkout's."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_alembic", package_dir.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise ConfigurationError(
        "alembic", f"migration scripts not found next to {package_dir}; reinstall the package"
    )


def _config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.attributes["langflix_engine"] = db.engine
    return cfg


def head_revision() -> str:
    """The newest revision shipped."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(script_location())).get_current_head()
    if head is None:
        raise ConfigurationError("alembic", "no migration revisions found")
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with db.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise translate_error(exc, "read schema revision", db.lock_timeout) from exc


def _run(db: Database, operation: str, revision: str, *, up: bool) -> None:
    from alembic import command

    # Several processes may call init_db at once: serialise them on a named lock.
    with named_lock(db, _MIGRATION_LOCK, wait=_MIGRATION_LOCK_WAIT_SECONDS) as got:
        if not got:
            logger.warning("%s: another process holds the migration lock; proceeding", operation)
        try:
            if up:
                command.upgrade(_config(db), revision)
            else:
                command.downgrade(_config(db), revision)
        except SQLAlchemyError as exc:
            raise translate_error(exc, operation, db.lock_timeout) from exc


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    _run(db, "upgrade schema", revision, up=True)


def downgrade(db: Database, revision: str) -> None:
    """Take the schema down to ``revision`` (``"base"`` drops everything)."""
    _run(db, "downgrade schema", revision, up=False)
