"""Shared fixtures: one test body runs against SQLite, PostgreSQL and MariaDB/MySQL.

Each test session creates its own throwaway database on each server (so parallel runs never
collide), migrates it once with Alembic, and empties the tables before every test.

PostgreSQL and MySQL are read from ``LANGFLIX_TEST_POSTGRES_URL`` / ``LANGFLIX_TEST_MYSQL_URL``
(defaults: the local services). When a server is unreachable its tests are skipped with the
reason, unless ``LANGFLIX_REQUIRE_DBS=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db import migrate
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.db.models import Base
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from tests.faultproxy import FaultProxy

POSTGRES_URL = os.environ.get(
    "LANGFLIX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("LANGFLIX_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE_DBS = os.environ.get("LANGFLIX_REQUIRE_DBS") == "1"
ENGINES = ("sqlite", "postgresql", "mysql")
# A Monday, 00:00 UTC: far from DST changes unless a test picks one.
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)


def _unavailable(name: str, reason: str) -> None:
    message = f"{name} unavailable: {reason}"
    if REQUIRE_DBS:
        pytest.fail(f"{message} (LANGFLIX_REQUIRE_DBS=1 requires every database)", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class TestDatabase:
    """A migrated, session-private database on one engine."""

    __test__ = False
    engine_name: str
    url: str


def _create_server_db(name: str, admin_url: str) -> tuple[str, Callable[[], None]]:
    db_name = f"lfs_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = sa_create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {db_name}"))
    except (SQLAlchemyError, ModuleNotFoundError) as exc:
        _unavailable(name, str(exc).splitlines()[0])
        raise AssertionError("unreachable") from exc

    def drop() -> None:
        with admin.connect() as conn:
            if name == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {db_name}"))
        admin.dispose()

    url = make_url(admin_url).set(database=db_name).render_as_string(hide_password=False)
    return url, drop


def _create_database(engine_name: str, tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_dir / 'test.db'}", lambda: None
    if engine_name == "postgresql":
        return _create_server_db(engine_name, POSTGRES_URL)
    return _create_server_db(engine_name, MYSQL_URL)


@pytest.fixture(scope="session", params=ENGINES)
def test_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestDatabase]:
    """A migrated database on each engine, created once per session."""
    engine_name: str = request.param
    url, drop = _create_database(engine_name, tmp_path_factory.mktemp(engine_name))
    db = Database(create_engine(url), lock_timeout=5.0)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    try:
        yield TestDatabase(engine_name=engine_name, url=url)
    finally:
        drop()


def empty_tables(url: str) -> None:
    """Delete every row (children first)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture
def db_url(test_database: TestDatabase) -> str:
    """The URL of an empty, migrated database (parametrised over every engine)."""
    empty_tables(test_database.url)
    return test_database.url


@pytest.fixture
def engine_name(test_database: TestDatabase) -> str:
    """Which engine the current test runs against."""
    return test_database.engine_name


@pytest.fixture
def clock() -> FakeClock:
    """A fixed clock at T0 that only moves when a test advances it."""
    return FakeClock(T0)


@pytest.fixture
def make_manager(db_url: str, clock: FakeClock) -> Iterator[Callable[..., ScheduleManager]]:
    """Build managers on the test database: ``make_manager(timezone="Asia/Seoul", ...)``."""
    managers: list[ScheduleManager] = []

    def factory(
        *, clock_: Callable[[], datetime] | None = None, **overrides: Any
    ) -> ScheduleManager:
        overrides.setdefault("database_url", db_url)
        manager = ScheduleManager(SchedulerConfig(**overrides), clock=clock_ or clock)
        managers.append(manager)
        return manager

    yield factory
    for m in managers:
        m.close()


@pytest.fixture
def manager(make_manager: Callable[..., ScheduleManager]) -> ScheduleManager:
    """A manager with the default configuration on the test database."""
    return make_manager()


def unique_bytes(size: int) -> bytes:
    """``size`` bytes no other call returns, that no media parser takes for a video.

    Random bytes are unique but, read by MediaInfo (the Shorts check), a few in a thousand
    files parse as some container with absurd dimensions and durations, and booking them as a
    ``short`` is refused (``NotAShortError``): a flaky test. Text lines are never a video.
    """
    line = f"langflix test file {uuid.uuid4().hex}\n".encode()
    return (line * (size // len(line) + 1))[:size]


@pytest.fixture
def video_file(tmp_path: Path) -> Callable[..., Path]:
    """Create small stand-in video files with unique content (not media: see
    :func:`unique_bytes`): ``video_file("a.mp4", size=1024)``."""
    counter = iter(range(1_000_000))

    def make(name: str | None = None, *, size: int = 2048) -> Path:
        path = tmp_path / (name or f"video_{next(counter)}.mp4")
        path.write_bytes(unique_bytes(size))
        return path

    return make


@pytest.fixture
def raw_db(db_url: str) -> Iterator[Any]:
    """Plain-SQL access to the test database (no library code): counts, rows, invariants."""
    from tests.integration.db_helpers import RawDB

    raw = RawDB(db_url)
    yield raw
    raw.close()


@pytest.fixture
def peek(raw_db: Any) -> Any:
    """The test database read directly (typed rows, statuses, counters): ``raw_db``."""
    return raw_db


@pytest.fixture(params=ENGINES)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestDatabase]:
    """A brand-new EMPTY database (no schema) on each engine, dropped after the test.

    Separate from the session database, so migration tests may drop and recreate everything.
    """
    engine_name: str = request.param
    url, drop = _create_database(engine_name, tmp_path)
    try:
        yield TestDatabase(engine_name=engine_name, url=url)
    finally:
        drop()


# -- fault injection (tests/faultproxy.py) ---------------------------------------------------------

SERVER_ENGINES = ("postgresql", "mysql")


class FaultServer(NamedTuple):
    """A private migrated database reached through a :class:`FaultProxy`.

    Unpacks as ``proxy, url, direct_url``: ``url`` goes through the proxy, ``direct_url`` does
    not (for a second client the faults must not touch, and for checking what really committed).
    """

    proxy: FaultProxy
    url: str
    direct_url: str
    engine_name: str


@pytest.fixture(scope="session", params=SERVER_ENGINES)
def fault_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestDatabase]:
    """A migrated private database on each server engine, for tests behind the fault proxy."""
    engine_name: str = request.param
    url, drop = _create_database(engine_name, tmp_path_factory.mktemp(f"fault_{engine_name}"))
    db = Database(create_engine(url), lock_timeout=5.0)
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()
    try:
        yield TestDatabase(engine_name=engine_name, url=url)
    finally:
        drop()


@pytest.fixture
def fault_server(fault_database: TestDatabase) -> Iterator[FaultServer]:
    """``(proxy, url_through_proxy, direct_url)`` on PostgreSQL and MariaDB/MySQL, tables empty.

    The proxy is started for the test and closed after it (every connection through it reset).
    """
    empty_tables(fault_database.url)
    direct = make_url(fault_database.url)
    with FaultProxy(
        direct.host or "127.0.0.1", direct.port or _DEFAULT_PORTS[direct.get_backend_name()]
    ) as proxy:
        yield FaultServer(
            proxy, proxy.url_for(fault_database.url), fault_database.url, fault_database.engine_name
        )


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
