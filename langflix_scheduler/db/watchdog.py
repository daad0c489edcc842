"""A client-side deadline for database calls: one watchdog thread per :class:`Database`.

Server-side timeouts (``statement_timeout``, ``max_statement_time``) do not help a client whose
network stalls: the server may have answered long ago, or never heard the question. libpq (and
so psycopg 3) has no read timeout, and TCP keepalives and ``tcp_user_timeout`` never fire while
the peer (a proxy, a load balancer) keeps ACKing. So the library bounds each transaction itself:
:meth:`Watchdog.watch` arms a deadline for the calling thread's block of work; the DBAPI
connection that block checks out is attached to it; when the deadline passes the watchdog
shuts that connection's socket down (``shutdown(SHUT_RDWR)``; SQLite: ``interrupt()``), so the
call blocked on it fails at once with a connection error, which :class:`Database` translates
into ``DatabaseTimeoutError`` (or ``OutcomeUnknownError`` when it was the COMMIT).

psycopg 3 offers ``connect_timeout`` (honoured, see ``db/engine.py``) and ``cancel()``; a cancel
request travels on a new connection over the same stalled path, so it cannot bound a stall.

One daemon thread per watchdog, started on first use and stopped by :meth:`Watchdog.close`.
While deadlines are armed it wakes every :data:`TICK_SECONDS` at most (a fraction of the
timeout for short ones); with nothing armed it sleeps until something is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["TICK_SECONDS", "Watch", "Watchdog"]

logger = logging.getLogger(__name__)

#: The longest the watchdog sleeps between deadline checks while any deadline is armed.
TICK_SECONDS = 0.25


def interrupt_connection(dbapi_conn: Any) -> None:
    """Make every call blocked on ``dbapi_conn`` fail now (from another thread).

    The socket is shut down, not closed: the driver still owns the file descriptor and closes
    it itself when it sees the error; only the connection is lost, never another one's fd.
    """
    if isinstance(dbapi_conn, sqlite3.Connection):
        dbapi_conn.interrupt()
        return
    sock = getattr(dbapi_conn, "_sock", None)  # PyMySQL
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return
    try:
        fd = dbapi_conn.fileno()  # psycopg 3 (the libpq socket)
    except Exception:  # closed or broken already: nothing is blocked on it
        return
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as dup:
        dup.shutdown(socket.SHUT_RDWR)


class Watch:
    """One armed deadline: the DBAPI connection it guards is attached once it is known.

    Attributes:
        timeout: the limit in seconds.
        fired: True once the deadline passed and the connection was interrupted.
    """

    __slots__ = ("_done", "_lock", "_target", "deadline", "fired", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.fired = False
        self._done = False
        self._target: Any = None
        self._lock = threading.Lock()

    def attach(self, dbapi_conn: Any) -> None:
        """Guard ``dbapi_conn`` (interrupt it at once if the deadline already passed)."""
        with self._lock:
            self._target = dbapi_conn
            late = self.fired and not self._done
        if late:
            interrupt_connection(dbapi_conn)

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            target = self._target
        if target is not None:
            logger.warning("database call exceeded %g s: interrupting its connection", self.timeout)
            interrupt_connection(target)

    def _finish(self) -> None:
        with self._lock:
            self._done = True
            self._target = None


class Watchdog:
    """Deadlines for blocks of database work, enforced by one daemon thread.

    Args:
        timeout: the default limit, in seconds, of one :meth:`watch` block.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._cond = threading.Condition()
        self._armed: dict[int, Watch] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, timeout: float | None = None) -> Iterator[Watch]:
        """Arm a deadline for the ``with`` block; the block attaches its DBAPI connection."""
        w = Watch(self.timeout if timeout is None else timeout)
        key = id(w)
        with self._cond:
            self._armed[key] = w
            self._ensure_thread()
            if len(self._armed) == 1:
                self._cond.notify()
        try:
            yield w
        finally:
            w._finish()
            with self._cond:
                self._armed.pop(key, None)

    def close(self) -> None:
        """Stop the thread (a later :meth:`watch` starts a new one)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and not self._closed:
            return
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="langflix-db-watchdog", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        tick = min(TICK_SECONDS, max(0.01, self.timeout / 8))
        with self._cond:
            while not self._closed:
                if not self._armed:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                expired = [w for w in self._armed.values() if w.deadline <= now]
                for w in expired:
                    self._armed.pop(id(w), None)
                if expired:
                    self._cond.release()
                    try:
                        for w in expired:
                            w._fire()
                    finally:
                        self._cond.acquire()
                    continue
                soonest = min(w.deadline for w in self._armed.values())
                self._cond.wait(min(tick, max(0.0, soonest - now)))
