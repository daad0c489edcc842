"""The fault proxy itself (tests/faultproxy.py), against real PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.conftest import FaultServer
from tests.faultproxy import FaultProxy, _Conn


@pytest.fixture
def proxied(fault_server: FaultServer) -> Iterator[tuple[FaultServer, Engine, Engine]]:
    """The fault server, a pool-less engine through the proxy, and a direct one; a scratch table."""
    through = create_engine(fault_server.url, poolclass=NullPool)
    direct = create_engine(fault_server.direct_url, poolclass=NullPool)
    with direct.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS fp_probe"))
        conn.execute(text("CREATE TABLE fp_probe (id INTEGER PRIMARY KEY)"))
    yield fault_server, through, direct
    through.dispose()
    with direct.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS fp_probe"))
    direct.dispose()


def _probe_count(direct: Engine) -> int:
    with direct.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM fp_probe")).scalar_one())


def test_forwards_both_ways(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, direct = proxied
    with through.begin() as conn:
        conn.execute(text("INSERT INTO fp_probe (id) VALUES (1)"))
        assert conn.execute(text("SELECT COUNT(*) FROM fp_probe")).scalar_one() == 1
    assert _probe_count(direct) == 1
    assert server.proxy.connections >= 1
    assert server.proxy.commits_dropped == 0


def test_reset_all_breaks_a_live_connection(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, _ = proxied
    with through.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        server.proxy.reset_all()
        started = time.monotonic()
        with pytest.raises(DBAPIError) as info:
            conn.execute(text("SELECT 1"))
        assert time.monotonic() - started < 2
        assert info.value.connection_invalidated
    with through.connect() as conn:  # new connections still work
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_stall_blocks_until_resume(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, _ = proxied
    results: list[object] = []
    with through.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        server.proxy.stall()
        worker = threading.Thread(
            target=lambda: results.append(conn.execute(text("SELECT 2")).scalar_one()),
            daemon=True,
        )
        worker.start()
        worker.join(1.0)
        assert worker.is_alive()
        assert results == []
        server.proxy.resume()
        worker.join(5.0)
        assert results == [2]


def test_stall_holds_new_connections_too(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, _ = proxied
    server.proxy.stall()
    results: list[object] = []

    def connect_and_select() -> None:
        with through.connect() as conn:
            results.append(conn.execute(text("SELECT 3")).scalar_one())

    worker = threading.Thread(target=connect_and_select, daemon=True)
    worker.start()
    worker.join(1.0)
    assert worker.is_alive()
    assert results == []
    server.proxy.resume()
    worker.join(5.0)
    assert results == [3]


def test_refuse_new_resets_new_connections(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, _ = proxied
    server.proxy.refuse_new()
    with pytest.raises(DBAPIError), through.connect():
        pass
    server.proxy.refuse_new(False)
    with through.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_latency_delays_each_round_trip(proxied: tuple[FaultServer, Engine, Engine]) -> None:
    server, through, _ = proxied
    with through.connect() as conn:
        conn.execute(text("SELECT 1"))
        server.proxy.set_latency(0.2)
        started = time.monotonic()
        conn.execute(text("SELECT 1"))
        assert time.monotonic() - started >= 0.4  # one chunk each way
        server.proxy.set_latency(0)


def test_drop_commit_reply_commits_but_the_client_fails(
    proxied: tuple[FaultServer, Engine, Engine],
) -> None:
    server, through, direct = proxied
    server.proxy.drop_commit_reply(b"INSERT INTO fp_probe")
    with through.begin() as conn:  # no pattern: committed and answered normally
        conn.execute(text("SELECT 1"))
    with pytest.raises(DBAPIError), through.begin() as conn:
        conn.execute(text("INSERT INTO fp_probe (id) VALUES (7)"))
    assert server.proxy.commits_dropped == 1
    assert _probe_count(direct) == 1  # the server committed it
    with through.begin() as conn:  # armed once only: the next commit gets its reply
        conn.execute(text("INSERT INTO fp_probe (id) VALUES (8)"))
    assert server.proxy.commits_dropped == 1
    assert _probe_count(direct) == 2


def test_drop_commit_reply_ignores_rolled_back_transactions(
    proxied: tuple[FaultServer, Engine, Engine],
) -> None:
    server, through, direct = proxied
    server.proxy.drop_commit_reply(b"INSERT INTO fp_probe")
    with through.connect() as conn:
        conn.execute(text("INSERT INTO fp_probe (id) VALUES (1)"))
        conn.rollback()
        conn.execute(text("SELECT 1"))
        conn.commit()
    assert server.proxy.commits_dropped == 0
    assert _probe_count(direct) == 0


def test_commit_matching_spans_chunks_and_ignores_words() -> None:
    proxy = FaultProxy("127.0.0.1", 9)  # never started: only the stream matcher is used
    proxy.drop_commit_reply(b"INSERT INTO youtube_schedules", times=2)
    conn = _Conn(client=None)  # type: ignore[arg-type]
    assert not proxy._commit_to_drop(conn, b"Q\x00\x00\x00\x30INSERT INTO yout")
    assert not proxy._commit_to_drop(conn, b"ube_schedules (committed_at) VALUES (1)\x00")
    assert not proxy._commit_to_drop(conn, b"Q\x00\x00\x00\x0bCOM")
    assert proxy._commit_to_drop(conn, b"MIT\x00")
    assert not proxy._commit_to_drop(conn, b"\x03commit")  # pattern not seen since
    assert proxy._commit_to_drop(conn, b"insert into YOUTUBE_SCHEDULES ...\x03commit")
    assert not proxy._commit_to_drop(conn, b"INSERT INTO youtube_schedules\x03commit")  # spent
