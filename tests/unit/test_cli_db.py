"""The CLI's one table of database failures: exit 1 with advice, or exit 3 (retry later)."""

from __future__ import annotations

from pathlib import Path

import pytest

from langflix_scheduler.cli._errors import classify
from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.errors import (
    DatabaseTimeoutError,
    InvalidScheduleError,
    LockTimeoutError,
    OutcomeUnknownError,
    StorageError,
)


def _config(path: Path) -> SchedulerConfig:
    return SchedulerConfig(database_url=f"sqlite:///{path}")


@pytest.mark.parametrize(
    "exc",
    [
        LockTimeoutError("book slot", 5.0),
        DatabaseTimeoutError("list schedules", 30.0),
        OutcomeUnknownError("book slot", "server closed the connection"),
        StorageError("list", 'connection to server at "db", port 5432 failed: Connection refused'),
        StorageError("list", "database unavailable: (2013, 'Lost connection to MySQL server')"),
        StorageError("book slot", "still deadlocking after 5 retries"),
    ],
)
def test_retryable_conditions_exit_3(exc: Exception, tmp_path: Path) -> None:
    assert isinstance(exc, StorageError | LockTimeoutError)
    verdict = classify(exc, _config(tmp_path / "x.db"))
    assert verdict.code == 3
    assert "retry later" in verdict.message


@pytest.mark.parametrize(
    ("detail", "advice"),
    [
        ("file is not a database", "is not a langflix-scheduler database"),
        ("attempt to write a readonly database", "check permissions of {dir}"),
        ("unable to open database file", "check permissions of {dir}"),
        ('FATAL:  password authentication failed for user "x"', "refused the user or password"),
        ("(1049, \"Unknown database 'nope'\")", "does not exist: create it"),
        ("some constraint nobody expected", ""),
    ],
)
def test_permanent_problems_exit_1_with_advice(tmp_path: Path, detail: str, advice: str) -> None:
    verdict = classify(StorageError("list schedules", detail), _config(tmp_path / "x.db"))
    assert verdict.code == 1
    assert advice.format(dir=tmp_path) in verdict.message
    assert detail in verdict.message


def test_missing_directory_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path / "gone" / "x.db")
    verdict = classify(StorageError("init", "unable to open database file"), config)
    assert verdict.code == 1
    assert f"directory {tmp_path / 'gone'} does not exist" in verdict.message


def test_user_errors_keep_their_message(tmp_path: Path) -> None:
    verdict = classify(InvalidScheduleError("--at", "bad"), _config(tmp_path / "x.db"))
    assert (verdict.code, verdict.message) == (1, "invalid --at: bad")


def test_the_library_diagnosis_says_retryable_or_not(tmp_path: Path) -> None:
    """The CLI's exit codes come from the library's diagnosis, which other front ends share."""
    from langflix_scheduler.diagnosis import diagnose

    config = _config(tmp_path / "x.db")
    assert diagnose(LockTimeoutError("book slot", 5.0), config).retryable
    bad = diagnose(StorageError("list", "file is not a database"), config)
    assert not bad.retryable
    assert "is not a langflix-scheduler database" in bad.message
    plain = diagnose(InvalidScheduleError("preferred_time", "bad"), config)
    assert (plain.retryable, plain.message) == (
        False,
        str(InvalidScheduleError("preferred_time", "bad")),
    )


def test_display_url_hides_the_password() -> None:
    from langflix_scheduler.diagnosis import display_url

    shown = display_url("postgresql+psycopg://u:secret@db/x")
    assert "secret" not in shown
    assert "db/x" in shown
    assert display_url("::not a url::") == "<database>"
