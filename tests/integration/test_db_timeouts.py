"""Every database call is bounded by ``db_timeout`` (issue 9, case 3).

PostgreSQL and MariaDB/MySQL run behind the fault proxy (``fault_server``, tests/faultproxy.py):
with traffic black-holed a call must return a typed error within ``db_timeout`` + 1 s, the
server must free the locks of the stalled client, and the pool must work again afterwards.
SQLite has no network; there a runaway statement is interrupted the same way.

Every blocking call runs in a daemon thread joined with a deadline, so code without these
bounds fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.db.locking import named_lock
from langflix_scheduler.db.models import ApiCall
from langflix_scheduler.errors import (
    DatabaseTimeoutError,
    LockTimeoutError,
    OutcomeUnknownError,
    StorageError,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from tests.conftest import FaultServer

DB_TIMEOUT = 2.0
LOCK_TIMEOUT = 1.0
SLACK = 1.0  # the bound: a stalled call returns within db_timeout + 1 s
DAY = datetime(2026, 5, 5, tzinfo=UTC)  # T0 + 1 day: past min_lead_time


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    elapsed: float = 0.0


def bounded_call(fn: Callable[[], Any], limit: float) -> Outcome:
    """Run ``fn`` in a thread; fail the test if it has not returned after ``limit`` + 3 s."""
    out = Outcome()

    def target() -> None:
        started = time.monotonic()
        try:
            out.value = fn()
        except BaseException as exc:
            out.error = exc
        out.elapsed = time.monotonic() - started

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(limit + 3.0)
    if worker.is_alive():
        pytest.fail(f"the call was still blocked after {limit + 3.0:g} s (bound: {limit:g} s)")
    return out


def config(url: str) -> SchedulerConfig:
    return SchedulerConfig(database_url=url, db_timeout=DB_TIMEOUT, lock_timeout=LOCK_TIMEOUT)


@pytest.fixture
def managers(clock: FakeClock) -> Iterator[Callable[..., ScheduleManager]]:
    made: list[ScheduleManager] = []

    def make(url: str, *, engine: Engine | None = None) -> ScheduleManager:
        manager = ScheduleManager(config(url), engine=engine, clock=clock)
        made.append(manager)
        return manager

    yield make
    for m in made:
        m.close()


def at(hour: int) -> datetime:
    return DAY.replace(hour=hour)


# -- a stalled network ---------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["pooled", "pinged", "new"])
def test_stalled_booking_fails_in_time_and_the_pool_recovers(
    fault_server: FaultServer,
    managers: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
    pool: str,
) -> None:
    """pooled: a connection just used (no ping); pinged: idle long enough to be pinged at
    checkout; new: an empty pool, so the stall hits the connect."""
    manager = managers(fault_server.url)
    manager.schedule_video(video_file(), "final", preferred_time=at(10))
    if pool == "pinged":
        time.sleep(1.2)  # PING_AFTER_IDLE_SECONDS
    elif pool == "new":
        manager._db.engine.dispose()
    fault_server.proxy.stall()
    out = bounded_call(lambda: manager.schedule_video(video_file(), "short"), DB_TIMEOUT + SLACK)
    print(f"{fault_server.engine_name}/{pool}: stalled booking returned after {out.elapsed:.2f} s")
    assert isinstance(out.error, DatabaseTimeoutError | OutcomeUnknownError), out.error
    assert out.elapsed <= DB_TIMEOUT + SLACK

    fault_server.proxy.resume()
    again = bounded_call(lambda: manager.schedule_video(video_file(), "short"), DB_TIMEOUT)
    assert again.error is None, again.error
    assert again.elapsed <= DB_TIMEOUT


def test_a_stalled_booker_does_not_hold_its_day_lock(
    fault_server: FaultServer,
    managers: Callable[..., ScheduleManager],
    video_file: Callable[..., Path],
) -> None:
    """A booking stalls right after locking its channel-day row; the server frees the lock
    (idle-in-transaction timeout) and a second booker, on a direct connection, gets it."""
    engine = create_engine(fault_server.url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT)
    stalled = threading.Event()
    armed = threading.Event()

    @event.listens_for(engine, "after_cursor_execute")
    def stall_after_day_lock(_conn: Connection, _cur: Any, statement: str, *_: Any) -> None:
        if armed.is_set() and "youtube_daily_limits" in statement and not stalled.is_set():
            fault_server.proxy.stall()  # the row lock is held now; nothing more gets through
            stalled.set()

    first = managers(fault_server.url, engine=engine)
    second = managers(fault_server.direct_url)
    first.schedule_video(video_file(), "final", preferred_time=at(10))  # the day row exists
    armed.set()
    results: dict[str, Outcome] = {}
    booker = threading.Thread(
        target=lambda: results.update(
            first=bounded_call(
                lambda: first.schedule_video(video_file(), "final", preferred_time=at(18)),
                DB_TIMEOUT + SLACK,
            )
        ),
        daemon=True,
    )
    booker.start()
    assert stalled.wait(5), "the first booking never reached its day lock"

    def book_second() -> float:
        started = time.monotonic()
        while True:
            try:
                second.schedule_video(video_file(), "short", preferred_time=at(8))
                return time.monotonic() - started
            except LockTimeoutError:
                continue  # still held: ask again

    limit = DB_TIMEOUT + LOCK_TIMEOUT + SLACK
    out = bounded_call(book_second, limit)
    booker.join(DB_TIMEOUT + SLACK + 5)
    print(
        f"{fault_server.engine_name}: stalled booker returned after {results['first'].elapsed:.2f}"
        f" s; second booker waited {out.elapsed:.2f} s"
    )
    assert out.error is None, out.error
    assert out.value <= limit
    assert isinstance(results["first"].error, DatabaseTimeoutError | OutcomeUnknownError)
    engine.dispose()


def test_stall_at_commit_is_outcome_unknown(fault_server: FaultServer) -> None:
    db = Database(
        create_engine(fault_server.url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT),
        lock_timeout=LOCK_TIMEOUT,
        db_timeout=DB_TIMEOUT,
    )
    event.listen(db.engine, "commit", lambda _conn: fault_server.proxy.stall())
    try:
        out = bounded_call(lambda: db.run_core("record call", _insert_call), DB_TIMEOUT + SLACK)
    finally:
        db.dispose()
    assert isinstance(out.error, OutcomeUnknownError), out.error
    assert "retrying the same call is safe" in str(out.error)
    assert out.elapsed <= DB_TIMEOUT + SLACK


def test_reply_lost_after_commit_is_outcome_unknown_and_committed(
    fault_server: FaultServer,
) -> None:
    db = Database(
        create_engine(fault_server.url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT),
        lock_timeout=LOCK_TIMEOUT,
        db_timeout=DB_TIMEOUT,
    )
    fault_server.proxy.drop_commit_reply(b"INSERT INTO youtube_api_calls")
    try:
        out = bounded_call(lambda: db.run_core("record call", _insert_call), DB_TIMEOUT + SLACK)
        assert type(out.error) is OutcomeUnknownError, out.error  # never a plain StorageError
        assert "retrying the same call is safe" in str(out.error)
        assert fault_server.proxy.commits_dropped == 1
        direct = Database(create_engine(fault_server.direct_url), lock_timeout=LOCK_TIMEOUT)
        try:
            count = direct.run_core("count", _count_calls, read_only=True)
        finally:
            direct.dispose()
        assert count == 1  # the server did commit it
        again = bounded_call(lambda: db.run_core("record call", _insert_call), DB_TIMEOUT)
        assert again.error is None, again.error  # the pool recovered
    finally:
        db.dispose()


def test_named_lock_is_not_killed_while_idle(fault_server: FaultServer) -> None:
    """Held past db_timeout with no traffic: the idle-transaction timeouts leave it alone."""
    db = Database(
        create_engine(fault_server.direct_url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT),
        lock_timeout=LOCK_TIMEOUT,
        db_timeout=DB_TIMEOUT,
    )
    other = Database(create_engine(fault_server.direct_url), lock_timeout=LOCK_TIMEOUT)
    try:
        with named_lock(db, "edge-db-test") as got:
            assert got
            time.sleep(DB_TIMEOUT + 1.5)
            with named_lock(other, "edge-db-test") as second:
                assert not second  # still held: the server did not end the holder's session
        with named_lock(other, "edge-db-test") as second:
            assert second  # released on exit
    finally:
        db.dispose()
        other.dispose()


def test_named_lock_waits_longer_than_db_timeout(fault_server: FaultServer) -> None:
    """A wait longer than db_timeout (the migration lock waits 60 s) is not cut short by the
    statement or read timeouts, and still ends when the holder lets go."""
    db = Database(
        create_engine(fault_server.direct_url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT),
        lock_timeout=LOCK_TIMEOUT,
        db_timeout=DB_TIMEOUT,
    )
    try:
        release = threading.Event()
        holding = threading.Event()

        def hold() -> None:
            with named_lock(db, "edge-db-wait") as got:
                assert got
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert holding.wait(5)
        threading.Timer(DB_TIMEOUT + 1.5, release.set).start()

        def wait_for_it() -> bool:
            with named_lock(db, "edge-db-wait", wait=DB_TIMEOUT * 3) as got:
                return got

        out = bounded_call(wait_for_it, DB_TIMEOUT * 3 + SLACK)
        assert out.error is None, out.error
        assert out.value is True
        assert out.elapsed >= DB_TIMEOUT + 1
        holder.join(5)
    finally:
        db.dispose()


def _insert_call(conn: Connection) -> None:
    conn.execute(
        ApiCall.__table__.insert().values(
            api_project="default",
            quota_date=date(2026, 5, 4),
            bucket="videos.insert",
            operation="videos.insert",
            cost=1,
            sent_at=datetime(2026, 5, 4, tzinfo=UTC),
        )
    )


def _count_calls(conn: Connection) -> int:
    return int(conn.execute(text("SELECT COUNT(*) FROM youtube_api_calls")).scalar_one())


# -- the settings themselves --------------------------------------------------------------------


def _server_timeouts(conn: Connection, engine_name: str) -> dict[str, Any]:
    if engine_name == "postgresql":
        row = conn.execute(
            text(
                "SELECT current_setting('statement_timeout'),"
                " current_setting('idle_in_transaction_session_timeout'),"
                " current_setting('lock_timeout')"
            )
        ).one()
        return {"statement": row[0], "idle": row[1], "lock": row[2]}
    row = conn.execute(
        text(
            "SELECT @@SESSION.max_statement_time, @@SESSION.idle_transaction_timeout,"
            " @@SESSION.innodb_lock_wait_timeout"
        )
    ).one()
    return {"statement": float(row[0]), "idle": int(row[1]), "lock": int(row[2])}


def _expected(engine_name: str) -> dict[str, Any]:
    if engine_name == "postgresql":
        return {"statement": "2s", "idle": "2s", "lock": "1s"}
    return {"statement": 2.0, "idle": 2, "lock": 1}


@pytest.mark.parametrize("engine_kind", ["library", "user-built"])
def test_server_timeouts_are_set(fault_server: FaultServer, engine_kind: str) -> None:
    """Preset per connection by create_engine(), per write transaction on any other engine."""
    if engine_kind == "library":
        engine = create_engine(
            fault_server.direct_url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT
        )
    else:
        from sqlalchemy import create_engine as sa_create_engine

        engine = sa_create_engine(fault_server.direct_url)
    db = Database(engine, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT)
    try:
        seen = db.run_core(
            "read settings", lambda conn: _server_timeouts(conn, fault_server.engine_name)
        )
    finally:
        db.dispose()
    assert seen == _expected(fault_server.engine_name)


def test_driver_timeouts_and_keepalives_are_set(fault_server: FaultServer) -> None:
    engine = create_engine(fault_server.direct_url, lock_timeout=LOCK_TIMEOUT, db_timeout=30)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if fault_server.engine_name == "postgresql":
                params = raw.info.get_parameters()  # type: ignore[union-attr]
                assert params["keepalives"] == "1"
                assert params["tcp_user_timeout"] == "30000"
                assert params["connect_timeout"] == "30"
                idle = int(params["keepalives_idle"])
                interval = int(params["keepalives_interval"])
                count = int(params["keepalives_count"])
                assert idle + interval * count <= 30  # a dead peer is noticed within db_timeout
            else:
                assert raw._read_timeout == 30  # type: ignore[union-attr]
                assert raw._write_timeout == 30  # type: ignore[union-attr]
                assert raw.connect_timeout == 30  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_a_server_side_statement_timeout_is_a_database_timeout(fault_server: FaultServer) -> None:
    db = Database(
        create_engine(fault_server.direct_url, lock_timeout=LOCK_TIMEOUT, db_timeout=DB_TIMEOUT),
        lock_timeout=LOCK_TIMEOUT,
        db_timeout=DB_TIMEOUT * 10,  # the client watchdog stays out of it: the server answers
    )
    sleep = (
        "SELECT pg_sleep(10)" if fault_server.engine_name == "postgresql" else "SELECT SLEEP(10)"
    )
    try:
        out = bounded_call(
            lambda: db.run_core("sleep", lambda c: c.execute(text(sleep)).all(), read_only=True),
            DB_TIMEOUT + SLACK,
        )
    finally:
        db.dispose()
    if fault_server.engine_name == "mysql" and out.error is None:
        # MariaDB's SLEEP() returns 1 when max_statement_time interrupts it, instead of failing
        assert out.value == [(1,)]
    else:
        assert isinstance(out.error, DatabaseTimeoutError), out.error
    assert out.elapsed <= DB_TIMEOUT + SLACK


# -- SQLite --------------------------------------------------------------------------------------


def test_sqlite_runaway_statement_is_interrupted(tmp_path: Path) -> None:
    db = Database(
        create_engine(f"sqlite:///{tmp_path / 't.db'}", lock_timeout=0.5),
        lock_timeout=0.5,
        db_timeout=1.0,
    )
    endless = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000000)"
        " SELECT COUNT(*) FROM n"
    )
    try:
        out = bounded_call(
            lambda: db.run_core("count", lambda c: c.execute(endless).scalar(), read_only=True),
            1.0 + SLACK,
        )
        assert isinstance(out.error, DatabaseTimeoutError), out.error
        assert isinstance(out.error, StorageError)
        assert out.elapsed <= 1.0 + SLACK
        assert db.run_core("again", lambda c: c.execute(text("SELECT 1")).scalar()) == 1
    finally:
        db.dispose()
