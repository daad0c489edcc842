"""The content fingerprint: a streamed full SHA-256, its stat, and reuse of a stored hash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler import fingerprint as fp
from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.fingerprint import (
    CHUNK_BYTES,
    FileChangedError,
    content_changed,
    fingerprint_file,
)
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from tests.conftest import T0


def _write(path: Path, size: int, seed: int = 0) -> bytes:
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129, 64 * 5 + 7])
def test_hash_equals_hashlib_around_a_small_buffer(tmp_path: Path, size: int) -> None:
    path = tmp_path / "v.mp4"
    data = _write(path, size, seed=size)
    got = fingerprint_file(path, chunk_bytes=64)
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    st = os.stat(path)
    assert (got.size, got.mtime_ns) == (size, st.st_mtime_ns)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_hash_equals_hashlib_around_the_default_buffer(tmp_path: Path, delta: int) -> None:
    path = tmp_path / "v.mp4"
    data = _write(path, CHUNK_BYTES + delta, seed=delta)
    assert fingerprint_file(path).sha256 == hashlib.sha256(data).hexdigest()


def test_the_buffer_is_allocated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v.mp4"
    _write(path, 64 * 10 + 3)
    made: list[int] = []
    real = bytearray

    def counting(*args: Any) -> bytearray:
        made.append(1)
        return real(*args)

    monkeypatch.setattr(fp, "bytearray", counting, raising=False)
    fingerprint_file(path, chunk_bytes=64)
    assert made == [1]


def test_a_file_changing_while_hashed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.mp4"
    _write(path, 1000)
    real = os.fstat
    calls = iter(range(10))

    class Grown:
        def __init__(self, st: os.stat_result) -> None:
            self.st_size = st.st_size + (next(calls) and 1)
            self.st_mtime_ns = st.st_mtime_ns

    monkeypatch.setattr(fp.os, "fstat", lambda fd: Grown(real(fd)))
    with pytest.raises(FileChangedError):
        fingerprint_file(path)


def test_content_changed_reads_nothing_while_the_stat_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.mp4"
    _write(path, 500)
    booked = fingerprint_file(path)

    def no_read(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the file was read")

    monkeypatch.setattr(fp, "fingerprint_file", no_read)
    assert (
        content_changed(path, sha256=booked.sha256, size=booked.size, mtime_ns=booked.mtime_ns)
        is None
    )


def test_content_changed_names_both_hashes_when_replaced(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    _write(path, 500, seed=1)
    booked = fingerprint_file(path)
    _write(path, 500, seed=2)
    os.utime(path, ns=(booked.mtime_ns + 10**9, booked.mtime_ns + 10**9))
    now = fingerprint_file(path)
    reason = content_changed(path, sha256=booked.sha256, size=booked.size, mtime_ns=booked.mtime_ns)
    assert reason == (
        f"the file changed after it was booked (sha256 expected {booked.sha256[:12]}..., "
        f"found {now.sha256[:12]}...): book it again"
    )


def test_content_changed_accepts_a_touched_file_with_the_same_content(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    _write(path, 500)
    booked = fingerprint_file(path)
    os.utime(path, ns=(booked.mtime_ns + 10**9, booked.mtime_ns + 10**9))
    assert (
        content_changed(path, sha256=booked.sha256, size=booked.size, mtime_ns=booked.mtime_ns)
        is None
    )


def test_content_changed_leaves_unfingerprinted_and_missing_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    assert content_changed(path, sha256="ab" * 32, size=1, mtime_ns=1) is None  # missing
    _write(path, 10)
    assert content_changed(path, sha256=None, size=None, mtime_ns=None) is None


# -- reuse of a stored hash by the booking path (SQLite file database, no server) --------------


@pytest.fixture
def manager(tmp_path: Path) -> Any:
    config = SchedulerConfig(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with ScheduleManager(config, clock=FakeClock(T0)) as m:
        m.init_db()
        yield m


def test_an_unchanged_large_file_is_not_read_again(
    manager: ScheduleManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langflix_scheduler import manager as manager_module

    path = tmp_path / "big.mp4"
    data = _write(path, 2 * 1024 * 1024)
    first = manager.schedule_video(path, "final", channel="a")
    assert first.content_sha256 == hashlib.sha256(data).hexdigest()

    def no_read(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the file was read again")

    monkeypatch.setattr(manager_module, "fingerprint_file", no_read)
    second = manager.schedule_video(path, "final", channel="b")  # another channel: a new booking
    assert second.id != first.id
    assert second.content_sha256 == first.content_sha256


def test_a_touched_large_file_is_read_again(
    manager: ScheduleManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langflix_scheduler import manager as manager_module

    path = tmp_path / "big.mp4"
    _write(path, 2 * 1024 * 1024, seed=1)
    first = manager.schedule_video(path, "final", channel="a")
    _write(path, 2 * 1024 * 1024, seed=2)
    os.utime(path, ns=(10**18, 10**18))
    calls: list[str] = []
    real = manager_module.fingerprint_file

    def counting(p: Any) -> Any:
        calls.append(str(p))
        return real(p)

    monkeypatch.setattr(manager_module, "fingerprint_file", counting)
    second = manager.schedule_video(path, "final", channel="b")
    assert calls == [str(path)]
    assert second.content_sha256 != first.content_sha256
