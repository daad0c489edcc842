"""The SQLite named lock's file: removed by its holder, still exclusive across a removal."""

from __future__ import annotations

import threading
from pathlib import Path

from langflix_scheduler.db.locking import _file_lock


def test_holder_removes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.abc.lock"
    with _file_lock(path, 0.0) as got:
        assert got
        assert path.exists()
    assert not path.exists()


def test_a_waiter_granted_a_removed_file_locks_the_current_one(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite.abc.lock"
    waiter_has_it = threading.Event()
    release_waiter = threading.Event()
    results: list[bool] = []

    def waiter() -> None:
        with _file_lock(path, 10.0) as got:
            results.append(got)
            waiter_has_it.set()
            release_waiter.wait(10)

    with _file_lock(path, 0.0) as first:
        assert first
        thread = threading.Thread(target=waiter)
        thread.start()  # opens the same file, then waits on it
    # The first holder removed the file and unlocked: the waiter must hold a lock that a
    # newcomer (who creates a new file at the path) cannot also take.
    assert waiter_has_it.wait(10)
    with _file_lock(path, 0.0) as newcomer:
        assert not newcomer
    release_waiter.set()
    thread.join(10)
    assert results == [True]
    assert not path.exists()
