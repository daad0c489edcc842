"""Database problems through the CLI: permanent ones exit 1 and say what to do; only problems a
retry can fix exit 3; no command but init-db creates a SQLite file; init-db leaves no lock file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from langflix_scheduler.db import migrate
from langflix_scheduler.db.engine import Database, create_engine

from ._cli import CliResult

pytestmark = pytest.mark.usefixtures("db_url")

Run = Callable[..., CliResult]


def _error(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _sqlite_only(engine_name: str) -> None:
    if engine_name != "sqlite":
        pytest.skip("a SQLite file problem")


def _with_db(url: str) -> dict[str, str]:
    return {"LANGFLIX_SCHEDULER_DATABASE_URL": url}


def test_a_mistyped_sqlite_path_is_not_created(
    run_cli: Run, tmp_path: Path, engine_name: str
) -> None:
    _sqlite_only(engine_name)
    typo = tmp_path / "langflix-schedular.db"
    for args in (["list"], ["status"], ["quota"], ["next-slot", "--type", "final"]):
        result = run_cli(*args, env=_with_db(f"sqlite:///{typo}"))
        assert result.code == 1, (args, result.stderr)
        line = _error(result)
        assert "init-db" in line
        assert str(typo) in line
        assert not typo.exists(), args


def test_no_init_db_says_run_init_db(run_cli: Run, tmp_path: Path, engine_name: str) -> None:
    _sqlite_only(engine_name)
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run_cli("list", env=_with_db(f"sqlite:///{empty}"))
    assert result.code == 1, result.stderr
    assert "run `langflix-scheduler init-db`" in _error(result)


def test_server_database_without_tables_says_run_init_db(
    run_cli: Run, db_url: str, engine_name: str
) -> None:
    if engine_name == "sqlite":
        pytest.skip("a server database")
    bare = make_url(db_url).set(database="postgres" if engine_name == "postgresql" else "mysql")
    result = run_cli("list", env=_with_db(bare.render_as_string(hide_password=False)))
    assert result.code == 1, result.stderr
    assert "no langflix-scheduler tables yet: run `langflix-scheduler init-db`" in _error(result)


def test_out_of_date_schema_names_both_revisions(
    run_cli: Run, tmp_path: Path, engine_name: str
) -> None:
    _sqlite_only(engine_name)
    old = tmp_path / "old.db"
    db = Database(create_engine(f"sqlite:///{old}"), lock_timeout=5.0)
    try:
        migrate.upgrade(db, "0002")
    finally:
        db.dispose()
    result = run_cli("list", env=_with_db(f"sqlite:///{old}"))
    assert result.code == 1, result.stderr
    line = _error(result)
    assert f"at revision 0002, this version needs {migrate.head_revision()}" in line
    assert "init-db" in line


def test_garbage_file_is_not_a_database(run_cli: Run, tmp_path: Path, engine_name: str) -> None:
    _sqlite_only(engine_name)
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database\n" * 50, encoding="utf-8")
    result = run_cli("list", env=_with_db(f"sqlite:///{junk}"))
    assert result.code == 1, result.stderr
    assert "is not a langflix-scheduler database" in _error(result)


def test_init_db_in_a_missing_directory(run_cli: Run, tmp_path: Path, engine_name: str) -> None:
    _sqlite_only(engine_name)
    target = tmp_path / "no-such-dir" / "x.db"
    result = run_cli("init-db", env=_with_db(f"sqlite:///{target}"))
    assert result.code == 1, result.stderr
    assert f"directory {target.parent} does not exist" in _error(result)


def test_init_db_leaves_no_lock_file(run_cli: Run, tmp_path: Path, engine_name: str) -> None:
    _sqlite_only(engine_name)
    home = tmp_path / "home"
    home.mkdir()
    run_cli("init-db", env=_with_db(f"sqlite:///{home / 'langflix-scheduler.db'}"), check=True)
    assert not list(home.glob("*.lock")), sorted(p.name for p in home.iterdir())


def test_unreachable_server_is_retryable(run_cli: Run, engine_name: str) -> None:
    if engine_name != "postgresql":
        pytest.skip("one server engine is enough")
    result = run_cli("list", env=_with_db("postgresql://nobody@127.0.0.1:9/none"))
    assert result.code == 3, result.stderr
    assert "retry later" in _error(result)
