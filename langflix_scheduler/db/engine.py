"""Engine factory with per-dialect setup, and ``Database``: short transactions with lock timeouts.

* SQLite: WAL, foreign keys, ``busy_timeout`` = lock timeout, and write transactions opened with
  ``BEGIN IMMEDIATE`` so writers serialise at BEGIN (no lock upgrade deadlocks); reads use
  ``BEGIN DEFERRED``.
* PostgreSQL (psycopg 3): READ COMMITTED; every write transaction runs with ``lock_timeout``.
* MySQL/MariaDB (PyMySQL): READ COMMITTED (so a statement after a granted row lock sees the newest
  committed rows); every write transaction runs with ``innodb_lock_wait_timeout``.
* How the lock timeout gets there: an engine made by :func:`create_engine` sets it once per
  connection, when the connection is opened (``SET lock_timeout`` /
  ``SET SESSION innodb_lock_wait_timeout``), and marks the pooled connection with the value.
  :class:`Database` skips per-transaction statements on a connection marked with its own
  timeout; on any other connection (an engine you built yourself, another timeout) it sets the
  timeout per transaction as before: ``SET LOCAL lock_timeout`` (PostgreSQL), or ``SET SESSION
  innodb_lock_wait_timeout`` restored to ``DEFAULT`` before COMMIT (MySQL). Both paths give every
  write transaction the same timeout; the first saves one (PostgreSQL) or two (MySQL) round
  trips per transaction. On PostgreSQL the connection-level setting also bounds lock waits of
  reads and of schema migrations on that engine (a migration blocked longer than the lock
  timeout fails with ``LockTimeoutError`` instead of waiting indefinitely).
* Every call is bounded by ``db_timeout`` (seconds, longer than the lock timeout), in three
  layers, because a stalled network defeats each of them alone:

  - server side, so the server frees the locks of a client that went silent: PostgreSQL
    ``statement_timeout`` and ``idle_in_transaction_session_timeout``; MariaDB
    ``max_statement_time`` and ``idle_transaction_timeout``; MySQL ``max_execution_time``
    (MySQL has no idle-transaction timeout). Preset per connection like the lock timeout, or
    per write transaction on an engine you built yourself;
  - in the driver: psycopg ``connect_timeout``, TCP keepalives (a dead peer is noticed within
    about two thirds of ``db_timeout``) and ``tcp_user_timeout``; PyMySQL ``connect_timeout``,
    ``read_timeout`` and ``write_timeout``. Keys already in the URL win;
  - in the client: :class:`Database` arms a per-instance watchdog
    (:mod:`langflix_scheduler.db.watchdog`) for each transaction, including the checkout, ping
    and connect before it. When the transaction is still running at ``db_timeout`` the watchdog
    shuts its socket down (SQLite: ``interrupt()``), so the call fails at once:
    ``DatabaseTimeoutError``, or ``OutcomeUnknownError`` when it was waiting for its COMMIT.
    A connect started inside a transaction gets the time that is left as its connect timeout.
* Server engines ping a pooled connection at checkout only when it sat idle in the pool for more
  than :data:`PING_AFTER_IDLE_SECONDS` (SQLAlchemy's ``pool_pre_ping`` pings on every checkout,
  one extra round trip per transaction). A connection that fails the ping is replaced and the
  pool invalidated, exactly as with ``pool_pre_ping``; pass ``pool_pre_ping=True`` to
  :func:`create_engine` to ping always.

Every database failure leaves here as a :mod:`langflix_scheduler.errors` exception with the
original as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    InvalidatePoolError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ..errors import (
    ConfigurationError,
    DatabaseTimeoutError,
    LockTimeoutError,
    OutcomeUnknownError,
    SchedulerError,
    StorageError,
)
from .watchdog import Watch, Watchdog

__all__ = [
    "DEFAULT_DB_TIMEOUT",
    "PING_AFTER_IDLE_SECONDS",
    "PRESET_DB_TIMEOUT",
    "PRESET_LOCK_TIMEOUT",
    "Database",
    "create_engine",
    "dialect_of",
    "is_connection_failure",
    "is_statement_timeout",
    "translate_error",
]

logger = logging.getLogger(__name__)

_READ_ONLY = "langflix_read_only"
_IDLE_SINCE = "langflix_idle_since"
#: Key in a pooled connection's ``info``: the lock timeout (seconds) set on it at connect time.
PRESET_LOCK_TIMEOUT = "langflix_lock_timeout"
#: Key in a pooled connection's ``info``: the db timeout (seconds) set on it at connect time.
PRESET_DB_TIMEOUT = "langflix_db_timeout"
#: Seconds any one transaction may take when nobody says otherwise (``SchedulerConfig``: 30).
DEFAULT_DB_TIMEOUT = 30.0
PING_AFTER_IDLE_SECONDS = 1.0
_RETRY_BASE_SECONDS = 0.02
_RETRY_MAX_SECONDS = 0.5

# SQLSTATEs / server error codes
_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_MYSQL_LOCK_WAIT_TIMEOUT = 1205
# query_canceled (statement_timeout), idle_in_transaction_session_timeout
_PG_TIMEOUTS = {"57014", "25P03"}
_MYSQL_TIMEOUTS = {1969, 3024}  # MariaDB max_statement_time, MySQL max_execution_time
_MYSQL_LOST_DURING_QUERY = 2013  # with "timed out": PyMySQL's read/write timeout
_MYSQL_RETRYABLE = {1213}  # ER_LOCK_DEADLOCK
_MYSQL_CONNECTION_ERRORS = {2002, 2003, 2006, 2013, 1045, 1049}
_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

T = TypeVar("T")


_PG_LOCAL_TIMEOUTS = text(
    "SELECT set_config('lock_timeout', :lock, true), set_config('statement_timeout', :db, true),"
    " set_config('idle_in_transaction_session_timeout', :db, true)"
)


class RetryableError(Exception):
    """Internal: a deadlock or serialization failure; the whole transaction may be retried."""


def dialect_of(engine: Engine) -> str:
    """``"sqlite"``, ``"postgresql"`` or ``"mysql"`` (MariaDB counts as mysql)."""
    name = engine.dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


def _normalise_url(url: str | URL) -> URL:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError("database_url", f"not a database URL: {exc}") from exc
    backend = u.get_backend_name()
    if backend == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb") and u.drivername in ("mysql", "mariadb"):
        u = u.set(drivername=f"{backend}+pymysql")
    if backend in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return u


def create_engine(
    url: str | URL,
    *,
    lock_timeout: float = 5.0,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
    **kwargs: Any,
) -> Engine:
    """Create an engine configured for this library on SQLite, PostgreSQL or MySQL/MariaDB.

    ``lock_timeout`` bounds row-lock waits, ``db_timeout`` every statement, idle transaction and
    network read/write (see the module docstring).
    """
    u = _normalise_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(u, lock_timeout, **kwargs)
        if backend == "postgresql":
            return _server_engine(u, lock_timeout, db_timeout, **kwargs)
        if backend in ("mysql", "mariadb"):
            kwargs.setdefault("pool_recycle", 3600)
            return _server_engine(u, lock_timeout, db_timeout, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        extra = "postgres" if backend == "postgresql" else "mysql"
        raise ConfigurationError(
            "database_url",
            f"the driver for {u.drivername} is not installed: "
            f"pip install 'langflix-scheduler[{extra}]'",
        ) from exc
    raise ConfigurationError(
        "database_url", f"unsupported database {backend!r}: use sqlite, postgresql or mysql/mariadb"
    )


def _server_engine(u: URL, lock_timeout: float, db_timeout: float, **kwargs: Any) -> Engine:
    postgres = u.get_backend_name() == "postgresql"
    connect_args = dict(kwargs.pop("connect_args", {}))
    for key, value in _driver_timeouts(postgres, db_timeout).items():
        if key not in u.query:
            connect_args.setdefault(key, value)
    engine = sa_create_engine(
        u, isolation_level="READ COMMITTED", connect_args=connect_args, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _preset_timeouts(dbapi_conn: Any, record: Any) -> None:
        if postgres:
            statement = _pg_session_timeouts(lock_timeout, db_timeout)
        else:
            mariadb = "mariadb" in str(getattr(dbapi_conn, "server_version", "")).lower()
            statement = _mysql_session_timeouts(lock_timeout, db_timeout, mariadb=mariadb)[0]
        cur = dbapi_conn.cursor()
        try:
            cur.execute(statement)
        finally:
            cur.close()
        dbapi_conn.commit()  # psycopg opened a transaction for the SET; keep the setting
        record.info[PRESET_LOCK_TIMEOUT] = lock_timeout
        record.info[PRESET_DB_TIMEOUT] = db_timeout

    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


def _driver_timeouts(postgres: bool, db_timeout: float) -> dict[str, Any]:
    """Connect arguments that bound connects, reads and writes, and detect a dead peer."""
    if not postgres:  # PyMySQL: socket timeouts, seconds (float)
        return {
            "connect_timeout": db_timeout,
            "read_timeout": db_timeout,
            "write_timeout": db_timeout,
        }
    return {  # libpq: whole seconds (connect_timeout at least 2), tcp_user_timeout in ms
        "connect_timeout": max(2, math.ceil(db_timeout)),
        "keepalives": 1,
        "keepalives_idle": max(1, int(db_timeout / 3)),
        "keepalives_interval": max(1, int(db_timeout / 9)),
        "keepalives_count": 3,
        "tcp_user_timeout": max(1, int(db_timeout * 1000)),
    }


def _pg_session_timeouts(lock_timeout: float, db_timeout: float) -> str:
    lock_ms, db_ms = _pg_lock_timeout_ms(lock_timeout), _pg_lock_timeout_ms(db_timeout)
    return (
        f"SELECT set_config('lock_timeout', '{lock_ms}ms', false),"
        f" set_config('statement_timeout', '{db_ms}ms', false),"
        f" set_config('idle_in_transaction_session_timeout', '{db_ms}ms', false)"
    )


def _mysql_session_timeouts(
    lock_timeout: float, db_timeout: float, *, mariadb: bool
) -> tuple[str, str]:
    """``SET SESSION`` statements that set, and restore to the server defaults, the timeouts."""
    lock = _mysql_lock_timeout(lock_timeout)
    if mariadb:  # max_statement_time: seconds (fractional); idle_transaction_timeout: seconds
        return (
            f"SET SESSION innodb_lock_wait_timeout = {lock},"
            f" max_statement_time = {db_timeout:.3f},"
            f" idle_transaction_timeout = {_mysql_lock_timeout(db_timeout)}",
            "SET SESSION innodb_lock_wait_timeout = DEFAULT, max_statement_time = DEFAULT,"
            " idle_transaction_timeout = DEFAULT",
        )
    return (  # MySQL: max_execution_time in ms (SELECTs only); no idle-transaction timeout
        f"SET SESSION innodb_lock_wait_timeout = {lock},"
        f" max_execution_time = {_pg_lock_timeout_ms(db_timeout)}",
        "SET SESSION innodb_lock_wait_timeout = DEFAULT, max_execution_time = DEFAULT",
    )


def _pg_lock_timeout_ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _mysql_lock_timeout(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only if it sat idle longer than the threshold.

    A connection checked in moments ago was working moments ago; pinging it again would add a
    round trip to every short transaction. A failed ping invalidates the pool (every connection
    older than now is replaced), as ``pool_pre_ping`` does, and checkout retries with a fresh one.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if not dialect.is_disconnect(exc, dbapi_conn, None):
                raise
            alive = False
        if not alive:
            raise InvalidatePoolError("pooled connection failed its ping")


def _create_private_file(path: str) -> None:
    """Create a missing SQLite file with mode 0600 before SQLite would create it 0644: the
    database holds upload-session URIs (bearer capabilities). SQLite gives its ``-wal`` and
    ``-shm`` files the database file's mode. An existing file is left as it is; a failure here
    (missing directory, ...) is left to SQLite to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return


def _sqlite_engine(u: URL, lock_timeout: float, **kwargs: Any) -> Engine:
    memory = u.database in (None, "", ":memory:")
    connect_args = {"timeout": lock_timeout, "check_same_thread": False}
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    engine = sa_create_engine(u, connect_args=connect_args, **kwargs)
    if not memory and not u.query.get("mode") and not str(u.database).startswith("file:"):
        path = str(u.database)

        @event.listens_for(engine, "do_connect")
        def _create_private(*_args: Any) -> None:
            _create_private_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get(_READ_ONLY) else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _orig(exc: BaseException) -> BaseException | None:
    return exc.orig if isinstance(exc, DBAPIError) else None


def _sqlstate(orig: BaseException | None) -> str | None:
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _mysql_code(orig: BaseException | None) -> int | None:
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def is_lock_timeout(exc: BaseException) -> bool:
    """True when ``exc`` is a lock-wait timeout (or SQLite busy) from any engine."""
    orig = _orig(exc)
    if orig is None:
        return False
    if _sqlstate(orig) == _PG_LOCK_NOT_AVAILABLE:
        return True
    if _mysql_code(orig) == _MYSQL_LOCK_WAIT_TIMEOUT:
        return True
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        return code in _SQLITE_BUSY_CODES or "locked" in str(orig)
    return False


def is_retryable(exc: BaseException) -> bool:
    """True for deadlocks and serialization failures: the whole transaction may be retried."""
    orig = _orig(exc)
    if orig is None:
        return False
    return _sqlstate(orig) in _PG_RETRYABLE or _mysql_code(orig) in _MYSQL_RETRYABLE


def is_statement_timeout(exc: BaseException) -> bool:
    """True when a server or driver timeout ended the call: ``statement_timeout`` /
    ``idle_in_transaction_session_timeout``, ``max_statement_time`` / ``max_execution_time``,
    or PyMySQL's read/write timeout."""
    orig = _orig(exc)
    if orig is None:
        return False
    if _sqlstate(orig) in _PG_TIMEOUTS:
        return True
    code = _mysql_code(orig)
    if code in _MYSQL_TIMEOUTS:
        return True
    return code == _MYSQL_LOST_DURING_QUERY and "timed out" in str(orig)


def is_connection_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the connection (not the statement) failed: a reset, a closed or
    timed-out socket, a server gone away. After COMMIT was sent, such a failure leaves the
    outcome unknown; a statement error (a constraint, a lock timeout) does not."""
    if is_lock_timeout(exc) or is_retryable(exc):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if _mysql_code(_orig(exc)) in _MYSQL_CONNECTION_ERRORS:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _detail(exc: BaseException) -> str:
    orig = _orig(exc)
    detail = str(orig) if orig is not None else str(exc)
    return detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__


def translate_error(
    exc: BaseException,
    operation: str,
    lock_timeout: float,
    *,
    db_timeout: float = DEFAULT_DB_TIMEOUT,
) -> SchedulerError:
    """Map a SQLAlchemy/driver exception to the library's error tree (raise it ``from exc``)."""
    if is_lock_timeout(exc):
        return LockTimeoutError(operation, lock_timeout)
    if is_statement_timeout(exc):
        return DatabaseTimeoutError(operation, db_timeout, _detail(exc))
    orig = _orig(exc)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StorageError(operation, f"database connection lost: {orig}")
    if _mysql_code(orig) in _MYSQL_CONNECTION_ERRORS:
        return StorageError(operation, f"database unavailable: {orig}")
    detail = str(orig) if orig is not None else str(exc)
    return StorageError(
        operation, detail.strip().splitlines()[0] if detail.strip() else type(exc).__name__
    )


class Database:
    """An engine plus the rules for using it: short transactions, lock timeouts, bounded retries.

    Repository code receives a ``Session`` from :meth:`transaction` and never commits itself.
    Every transaction (with the checkout, ping or connect before it) is bounded by
    ``db_timeout`` through this instance's watchdog (see the module docstring); call
    :meth:`close` (or :meth:`dispose`) when done with it.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lock_timeout: float,
        db_timeout: float = DEFAULT_DB_TIMEOUT,
        deadlock_retries: int = 5,
    ) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self.lock_timeout = lock_timeout
        self.db_timeout = db_timeout
        self.deadlock_retries = deadlock_retries
        self._write = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._read_engine = engine.execution_options(**{_READ_ONLY: True})
        self._read = sessionmaker(bind=self._read_engine, expire_on_commit=False, autoflush=False)
        self._rng = random.Random()
        self._mysql_timeouts: tuple[str, str] | None = None
        self._watchdog = Watchdog(db_timeout)
        self._current = threading.local()  # this thread's armed Watch, if any
        # First in line, so the ping at checkout and the SETs at connect are watched too.
        event.listen(engine, "do_connect", self._before_connect)
        event.listen(engine, "connect", self._attach_current, insert=True)
        event.listen(engine, "checkout", self._attach_current, insert=True)

    @contextlib.contextmanager
    def bounded(
        self, timeout: float | None = None, *, conn: Connection | None = None
    ) -> Iterator[Watch]:
        """Bound this thread's database work in the block by ``db_timeout`` (or ``timeout``).

        The connection the block checks out (or ``conn``, already checked out) is interrupted
        when the time is up, and the watch's ``fired`` is then True.
        """
        previous = getattr(self._current, "watch", None)
        with self._watchdog.watch(timeout) as watch:
            if conn is not None:
                with contextlib.suppress(SQLAlchemyError):
                    watch.attach(conn.connection.dbapi_connection)
            self._current.watch = watch
            try:
                yield watch
            finally:
                self._current.watch = previous

    def _attach_current(self, dbapi_conn: Any, *_args: Any) -> None:
        watch: Watch | None = getattr(self._current, "watch", None)
        if watch is not None:
            watch.attach(dbapi_conn)

    def _before_connect(self, dialect: Any, _rec: Any, _cargs: Any, cparams: Any) -> None:
        """A connect inside a watched block gets only the time that is left."""
        watch: Watch | None = getattr(self._current, "watch", None)
        if watch is None:
            return
        left = watch.deadline - time.monotonic()
        if watch.fired or left <= 0:
            raise DatabaseTimeoutError("connect", watch.timeout, "no time left to connect")
        if dialect.name == "postgresql":
            cparams["connect_timeout"] = max(2, math.ceil(left))  # libpq: whole seconds, >= 2
        elif dialect.name in ("mysql", "mariadb"):
            cparams["connect_timeout"] = left

    def error_for(
        self, exc: SQLAlchemyError, operation: str, watch: Watch | None = None
    ) -> SchedulerError:
        """The library error for ``exc`` raised in a block watched by ``watch``."""
        if watch is not None and watch.fired:
            return DatabaseTimeoutError(operation, watch.timeout, _detail(exc))
        return translate_error(exc, operation, self.lock_timeout, db_timeout=self.db_timeout)

    @contextlib.contextmanager
    def transaction(self, operation: str, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, full rollback on any error, errors translated.

        Deadlocks surface as :class:`RetryableError` (use :meth:`run` to retry them).
        """
        with self.bounded() as watch:
            session = (self._read if read_only else self._write)()
            with self._guard(
                operation, session, session.connection, read_only=read_only, watch=watch
            ):
                yield session

    @contextlib.contextmanager
    def connection(self, operation: str, *, read_only: bool = False) -> Iterator[Connection]:
        """The same transaction as :meth:`transaction` on a bare Core ``Connection``.

        For hot paths that run pre-built Core statements only: no ORM session to create, flush,
        commit and close around them. Same lock timeout, commit/rollback and error rules.
        """
        with self.bounded() as watch:
            try:
                conn = (self._read_engine if read_only else self.engine).connect()
            except SQLAlchemyError as exc:
                raise self.error_for(exc, operation, watch) from exc
            with self._guard(operation, conn, lambda: conn, read_only=read_only, watch=watch):
                yield conn

    @contextlib.contextmanager
    def _guard(
        self,
        operation: str,
        handle: Session | Connection,
        get_connection: Callable[[], Connection],
        *,
        read_only: bool,
        watch: Watch,
    ) -> Iterator[None]:
        restore_mysql = False
        committing = False
        try:
            if not read_only:
                restore_mysql = self._apply_lock_timeout(handle, get_connection())
            yield
            if restore_mysql:
                # Session variables are not transactional: restoring before COMMIT is safe.
                self._restore_mysql(handle)
            committing = True
            handle.commit()
        except SQLAlchemyError as exc:
            self._rollback(handle, get_connection, restore_mysql)
            if is_retryable(exc):
                raise RetryableError(str(exc)) from exc
            if committing and not read_only and (watch.fired or is_connection_failure(exc)):
                # COMMIT was sent (or may have been): the server may have committed it.
                raise OutcomeUnknownError(operation, _detail(exc)) from exc
            raise self.error_for(exc, operation, watch) from exc
        except BaseException:
            self._rollback(handle, get_connection, restore_mysql)
            raise
        finally:
            handle.close()

    def run(self, operation: str, fn: Callable[[Session], T], *, read_only: bool = False) -> T:
        """Run ``fn`` in a transaction, retrying deadlocks a bounded number of times with jitter."""
        return self._retrying(
            operation, lambda: self.transaction(operation, read_only=read_only), fn
        )

    def run_core(
        self, operation: str, fn: Callable[[Connection], T], *, read_only: bool = False
    ) -> T:
        """:meth:`run` on a bare Core ``Connection`` (see :meth:`connection`)."""
        return self._retrying(
            operation, lambda: self.connection(operation, read_only=read_only), fn
        )

    def _retrying(
        self,
        operation: str,
        begin: Callable[[], contextlib.AbstractContextManager[Any]],
        fn: Callable[[Any], T],
    ) -> T:
        attempt = 0
        while True:
            try:
                with begin() as handle:
                    return fn(handle)
            except RetryableError as exc:
                attempt += 1
                if attempt > self.deadlock_retries:
                    raise StorageError(
                        operation, f"still deadlocking after {self.deadlock_retries} retries"
                    ) from exc.__cause__
                delay = min(_RETRY_MAX_SECONDS, _RETRY_BASE_SECONDS * 2**attempt)
                delay *= self._rng.uniform(0.5, 1.5)
                logger.info("%s: deadlock, retry %d in %.3f s", operation, attempt, delay)
                time.sleep(delay)

    def _apply_lock_timeout(self, handle: Session | Connection, conn: Connection) -> bool:
        """Give this write transaction the lock and db timeouts; True if they must be restored
        (MySQL)."""
        if self.dialect == "sqlite":
            return False  # busy_timeout is set per connection; BEGIN IMMEDIATE serialises
        if (
            conn.info.get(PRESET_LOCK_TIMEOUT) == self.lock_timeout
            and conn.info.get(PRESET_DB_TIMEOUT) == self.db_timeout
        ):
            return False  # set when the connection was opened (see the module docstring)
        if self.dialect == "postgresql":
            lock_ms = _pg_lock_timeout_ms(self.lock_timeout)
            db_ms = _pg_lock_timeout_ms(self.db_timeout)
            handle.execute(_PG_LOCAL_TIMEOUTS, {"lock": f"{lock_ms}ms", "db": f"{db_ms}ms"})
            return False
        handle.execute(text(self._mysql_statements(conn)[0]))
        return True

    def _mysql_statements(self, conn: Connection) -> tuple[str, str]:
        if self._mysql_timeouts is None:
            mariadb = bool(getattr(conn.dialect, "is_mariadb", False))
            self._mysql_timeouts = _mysql_session_timeouts(
                self.lock_timeout, self.db_timeout, mariadb=mariadb
            )
        return self._mysql_timeouts

    def _restore_mysql(self, handle: Session | Connection) -> None:
        assert self._mysql_timeouts is not None
        handle.execute(text(self._mysql_timeouts[1]))

    def _rollback(
        self,
        handle: Session | Connection,
        get_connection: Callable[[], Connection],
        restore_mysql: bool,
    ) -> None:
        try:
            handle.rollback()
            if restore_mysql:
                self._restore_mysql(handle)
                handle.rollback()
        except SQLAlchemyError:
            # The connection is unusable; invalidate it rather than mask the original error.
            logger.debug("rollback failed; invalidating the connection", exc_info=True)
            with contextlib.suppress(SQLAlchemyError):
                get_connection().invalidate()

    def close(self) -> None:
        """Stop the watchdog and detach from the engine (which stays usable, unbounded)."""
        self._watchdog.close()
        for name, fn in (
            ("do_connect", self._before_connect),
            ("connect", self._attach_current),
            ("checkout", self._attach_current),
        ):
            if event.contains(self.engine, name, fn):
                event.remove(self.engine, name, fn)

    def dispose(self) -> None:
        """Close every pooled connection and stop the watchdog."""
        self.close()
        self.engine.dispose()
