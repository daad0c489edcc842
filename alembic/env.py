"""Alembic environment for langflix-scheduler.

The library passes its engine in ``config.attributes["langflix_engine"]``; the ``alembic`` command
line uses ``sqlalchemy.url`` from alembic.ini or LANGFLIX_SCHEDULER_DATABASE_URL.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection, Engine

from langflix_scheduler.db.engine import create_engine
from langflix_scheduler.db.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    given = config.attributes.get("langflix_engine")
    if given is not None:
        return given  # type: ignore[no-any-return]
    url = os.environ.get("LANGFLIX_SCHEDULER_DATABASE_URL") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("set LANGFLIX_SCHEDULER_DATABASE_URL or sqlalchemy.url in alembic.ini")
    return create_engine(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = os.environ.get("LANGFLIX_SCHEDULER_DATABASE_URL") or config.get_main_option(
        "sqlalchemy.url"
    )
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
