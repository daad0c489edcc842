"""A loopback TCP proxy that injects database network faults, for tests.

Put it between the library and PostgreSQL or MariaDB/MySQL and drive it from the test::

    with FaultProxy("127.0.0.1", 5432).start() as proxy:
        manager = ScheduleManager(SchedulerConfig(database_url=proxy.url_for(url)))
        proxy.stall()        # black hole: sockets stay open, nothing is forwarded
        proxy.resume()
        proxy.reset_all()    # RST every open connection, both sides
        proxy.refuse_new()   # new connections are reset at once (server "down")
        proxy.set_latency(0.2)
        proxy.drop_commit_reply(b"INSERT INTO youtube_schedules")  # commits, reply lost

It listens on 127.0.0.1 only. Each accepted connection gets one upstream connection and two
pump threads (client->server, server->client); all threads are daemons and end with
:meth:`FaultProxy.close`.

``drop_commit_reply``: a connection whose client->server bytes contained the pattern since its
last COMMIT/ROLLBACK has its next COMMIT forwarded to the server; the proxy waits (max 2 s) for
the server's reply, swallows it, resets the client and closes the server side. The server has
committed; the client sees a dropped connection after sending COMMIT. COMMIT and ROLLBACK are
matched case-insensitively as whole words, which is how psycopg 3 (a simple Query message) and
PyMySQL (COM_QUERY) send them; a tail of each connection's stream is kept so a pattern split
across two chunks still matches.

Pytest fixtures using it (``fault_server``) live in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import threading
import time
from types import TracebackType

from sqlalchemy.engine import make_url

__all__ = ["FaultProxy"]

_POLL_SECONDS = 0.02
_CHUNK = 65536
_REPLY_WAIT_SECONDS = 2.0
_COMMIT = re.compile(rb"(?<![a-z0-9_])commit(?![a-z0-9_])", re.IGNORECASE)
_ROLLBACK = re.compile(rb"(?<![a-z0-9_])rollback(?![a-z0-9_])", re.IGNORECASE)


def _reset(sock: socket.socket | None) -> None:
    """Close ``sock`` with an RST (SO_LINGER 0) instead of a FIN."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Conn:
    """One proxied connection: the client socket, its upstream socket, and fault state."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.server: socket.socket | None = None
        self.dead = threading.Event()
        self.lock = threading.Lock()
        # drop_commit_reply state (client->server direction)
        self.tail = b""
        self.pattern_seen = False
        self.dropping_reply = threading.Event()
        self.reply_arrived = threading.Event()

    def kill(self, *, reset_client: bool = True, reset_server: bool = True) -> None:
        """End both sides, each with an RST or a plain close (FIN)."""
        with self.lock:
            if self.dead.is_set():
                return
            self.dead.set()
            for sock, rst in ((self.client, reset_client), (self.server, reset_server)):
                if rst:
                    _reset(sock)
                elif sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()


class FaultProxy:
    """A threaded TCP proxy on 127.0.0.1 between a client and one server, with faults on demand.

    Attributes:
        port: the local port it listens on (after :meth:`start`).
        commits_dropped: how many COMMIT replies were swallowed so far.
        connections: how many client connections were accepted so far.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.commits_dropped = 0
        self.connections = 0
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._refuse = False
        self._latency = 0.0
        self._drop_pattern = b""
        self._drop_times = 0
        self._lock = threading.Lock()
        self._conns: list[_Conn] = []
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1:<free port> and start accepting."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_POLL_SECONDS)  # so the accept loop notices close()
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "faultproxy-accept")
        return self

    def close(self) -> None:
        """Stop accepting, reset every connection, end every thread."""
        self._closed.set()
        self._flowing.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        self.reset_all()
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(timeout=2)

    def __enter__(self) -> FaultProxy:
        return self if self._listener is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def url_for(self, url: str) -> str:
        """``url`` (a SQLAlchemy URL) with its host and port pointed at this proxy."""
        u = make_url(url).set(host="127.0.0.1", port=self.port)
        return u.render_as_string(hide_password=False)

    # -- faults ----------------------------------------------------------------------------------

    def reset_all(self) -> None:
        """RST every open connection now, on both sides."""
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.kill()

    def stall(self) -> None:
        """Black hole: keep every socket open but forward nothing, either way, until resume()."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again (what was held back is delivered)."""
        self._flowing.set()

    def set_latency(self, seconds: float) -> None:
        """Delay each forwarded chunk by ``seconds``, both directions."""
        self._latency = max(0.0, seconds)

    def refuse_new(self, on: bool = True) -> None:
        """Reset new client connections at once (the server looks down); open ones live on."""
        self._refuse = on

    def drop_commit_reply(self, pattern: bytes, times: int = 1) -> None:
        """Arm: the next ``times`` COMMITs of transactions that sent ``pattern`` reach the server,
        but their replies are swallowed and the client connection is reset."""
        with self._lock:
            self._drop_pattern = pattern
            self._drop_times = times

    # -- internals -------------------------------------------------------------------------------

    def _spawn(self, target: object, name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _wait_flowing(self, conn: _Conn) -> bool:
        """Block while stalled; False when the connection or the proxy ended meanwhile."""
        while not self._flowing.wait(_POLL_SECONDS):
            if conn.dead.is_set() or self._closed.is_set():
                return False
        return not conn.dead.is_set() and not self._closed.is_set()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.connections += 1
            if self._refuse:
                _reset(client)
                continue
            conn = _Conn(client)
            with self._lock:
                self._conns.append(conn)
            self._spawn(self._open_upstream, "faultproxy-open", conn)

    def _open_upstream(self, conn: _Conn) -> None:
        if not self._wait_flowing(conn):
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            conn.kill()
            return
        server.settimeout(None)
        with conn.lock:
            if conn.dead.is_set():
                _reset(server)
                return
            conn.server = server
        self._spawn(self._pump, "faultproxy-c2s", conn, conn.client, server, True)
        self._spawn(self._pump, "faultproxy-s2c", conn, server, conn.client, False)

    def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        try:
            while not conn.dead.is_set() and not self._closed.is_set():
                if not self._wait_flowing(conn):
                    return
                if not select.select([src], [], [], _POLL_SECONDS)[0]:
                    continue
                data = src.recv(_CHUNK)
                if not data:  # an orderly close on one side: close the other one too
                    conn.kill(reset_client=False, reset_server=False)
                    return
                if self._latency:
                    time.sleep(self._latency)
                if not self._wait_flowing(conn):
                    return
                if to_server:
                    self._to_server(conn, dst, data)
                elif conn.dropping_reply.is_set():
                    conn.reply_arrived.set()  # swallowed: never reaches the client
                else:
                    dst.sendall(data)
        except (OSError, ValueError):
            conn.kill()

    def _to_server(self, conn: _Conn, server: socket.socket, data: bytes) -> None:
        if not self._commit_to_drop(conn, data):
            server.sendall(data)
            return
        conn.dropping_reply.set()
        server.sendall(data)
        conn.reply_arrived.wait(_REPLY_WAIT_SECONDS)
        with self._lock:
            self.commits_dropped += 1
            if conn in self._conns:
                self._conns.remove(conn)
        conn.kill(reset_server=False)

    def _commit_to_drop(self, conn: _Conn, data: bytes) -> bool:
        """Track pattern/COMMIT/ROLLBACK in the client's stream; True if this COMMIT is to drop."""
        pattern = self._drop_pattern
        buf = conn.tail + data
        fresh = len(conn.tail)  # a match ending at or before this was seen in the last chunk
        keep = max(len(pattern), 16) + 1
        conn.tail = buf[-keep:]
        events: list[tuple[int, str]] = []
        if pattern:
            start = buf.lower().find(pattern.lower())
            while start >= 0:
                if start + len(pattern) > fresh:
                    events.append((start, "pattern"))
                start = buf.lower().find(pattern.lower(), start + 1)
        events += [(m.start(), "commit") for m in _COMMIT.finditer(buf) if m.end() > fresh]
        events += [(m.start(), "rollback") for m in _ROLLBACK.finditer(buf) if m.end() > fresh]
        drop = False
        for _, kind in sorted(events):
            if kind == "pattern":
                conn.pattern_seen = True
                continue
            if kind == "commit" and conn.pattern_seen:
                with self._lock:
                    if self._drop_times > 0:
                        self._drop_times -= 1
                        drop = True
            conn.pattern_seen = False
        return drop
