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
    LockTimeoutError,
    OutcomeUnknownError,
    SchedulerError,
    StorageError,
)

__all__ = [
    "PING_AFTER_IDLE_SECONDS",
    "PRESET_LOCK_TIMEOUT",
    "Database",
    "create_engine",
    "dialect_of",
    "is_connection_failure",
    "translate_error",
]

logger = logging.getLogger(__name__)

_READ_ONLY = "langflix_read_only"
_IDLE_SINCE = "langflix_idle_since"
#: Key in a pooled connection's ``info``: the lock timeout (seconds) set on it at connect time.
PRESET_LOCK_TIMEOUT = "langflix_lock_timeout"
PING_AFTER_IDLE_SECONDS = 1.0
_RETRY_BASE_SECONDS = 0.02
_RETRY_MAX_SECONDS = 0.5

# SQLSTATEs / server error codes
_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_MYSQL_LOCK_WAIT_TIMEOUT = 1205
_MYSQL_RETRYABLE = {1213}  # ER_LOCK_DEADLOCK
_MYSQL_CONNECTION_ERRORS = {2002, 2003, 2006, 2013, 1045, 1049}
_SQLITE_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}

T = TypeVar("T")


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


def create_engine(url: str | URL, *, lock_timeout: float = 5.0, **kwargs: Any) -> Engine:
    """Create an engine configured for this library on SQLite, PostgreSQL or MySQL/MariaDB."""
    u = _normalise_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(u, lock_timeout, **kwargs)
        if backend == "postgresql":
            return _server_engine(u, lock_timeout, **kwargs)
        if backend in ("mysql", "mariadb"):
            kwargs.setdefault("pool_recycle", 3600)
            return _server_engine(u, lock_timeout, **kwargs)
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


def _server_engine(u: URL, lock_timeout: float, **kwargs: Any) -> Engine:
    engine = sa_create_engine(u, isolation_level="READ COMMITTED", **kwargs)
    postgres = u.get_backend_name() == "postgresql"
    if postgres:
        statement = f"SET lock_timeout = '{_pg_lock_timeout_ms(lock_timeout)}ms'"
    else:
        statement = f"SET SESSION innodb_lock_wait_timeout = {_mysql_lock_timeout(lock_timeout)}"

    @event.listens_for(engine, "connect")
    def _preset_lock_timeout(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(statement)
        finally:
            cur.close()
        dbapi_conn.commit()  # psycopg opened a transaction for the SET; keep the setting
        record.info[PRESET_LOCK_TIMEOUT] = lock_timeout

    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


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


def translate_error(exc: BaseException, operation: str, lock_timeout: float) -> SchedulerError:
    """Map a SQLAlchemy/driver exception to the library's error tree (raise it ``from exc``)."""
    if is_lock_timeout(exc):
        return LockTimeoutError(operation, lock_timeout)
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
    """

    def __init__(self, engine: Engine, *, lock_timeout: float, deadlock_retries: int = 5) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)
        self.lock_timeout = lock_timeout
        self.deadlock_retries = deadlock_retries
        self._write = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._read_engine = engine.execution_options(**{_READ_ONLY: True})
        self._read = sessionmaker(bind=self._read_engine, expire_on_commit=False, autoflush=False)
        self._rng = random.Random()

    @contextlib.contextmanager
    def transaction(self, operation: str, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, full rollback on any error, errors translated.

        Deadlocks surface as :class:`RetryableError` (use :meth:`run` to retry them).
        """
        session = (self._read if read_only else self._write)()
        with self._guard(operation, session, session.connection, read_only=read_only):
            yield session

    @contextlib.contextmanager
    def connection(self, operation: str, *, read_only: bool = False) -> Iterator[Connection]:
        """The same transaction as :meth:`transaction` on a bare Core ``Connection``.

        For hot paths that run pre-built Core statements only: no ORM session to create, flush,
        commit and close around them. Same lock timeout, commit/rollback and error rules.
        """
        try:
            conn = (self._read_engine if read_only else self.engine).connect()
        except SQLAlchemyError as exc:
            raise translate_error(exc, operation, self.lock_timeout) from exc
        with self._guard(operation, conn, lambda: conn, read_only=read_only):
            yield conn

    @contextlib.contextmanager
    def _guard(
        self,
        operation: str,
        handle: Session | Connection,
        get_connection: Callable[[], Connection],
        *,
        read_only: bool,
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
            if committing and not read_only and is_connection_failure(exc):
                # COMMIT was sent (or may have been): the server may have committed it.
                raise OutcomeUnknownError(operation, _detail(exc)) from exc
            raise translate_error(exc, operation, self.lock_timeout) from exc
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
        """Give this write transaction the lock timeout; True if it must be restored (MySQL)."""
        if self.dialect == "sqlite":
            return False  # busy_timeout is set per connection; BEGIN IMMEDIATE serialises
        if conn.info.get(PRESET_LOCK_TIMEOUT) == self.lock_timeout:
            return False  # set when the connection was opened (see the module docstring)
        if self.dialect == "postgresql":
            ms = _pg_lock_timeout_ms(self.lock_timeout)
            handle.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": f"{ms}ms"})
            return False
        seconds = _mysql_lock_timeout(self.lock_timeout)
        handle.execute(text("SET SESSION innodb_lock_wait_timeout = :v"), {"v": seconds})
        return True

    def _restore_mysql(self, handle: Session | Connection) -> None:
        handle.execute(text("SET SESSION innodb_lock_wait_timeout = DEFAULT"))

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

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
