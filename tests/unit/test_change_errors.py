"""How the CLI reads the errors of a change of plan after upload (exit 3: YouTube will tell
later or the next processor run finishes it; exit 1: YouTube or the input refused it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from langflix_scheduler.cli._errors import EXIT_UNAVAILABLE, EXIT_USER_ERROR, classify
from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.errors import (
    ChangePendingError,
    InvalidTransitionError,
    PermanentUploadError,
    QuotaExhaustedError,
    SchedulerError,
    TransientUploadError,
)


def _config(tmp_path: Path) -> SchedulerConfig:
    return SchedulerConfig(database_url=f"sqlite:///{tmp_path / 'x.db'}")


@pytest.mark.parametrize(
    "exc",
    [
        ChangePendingError(3, 7, "connection reset"),
        TransientUploadError("HTTP 503", reason="backendError"),
        QuotaExhaustedError("quota spent", resume_at=datetime(2026, 5, 5, 7, tzinfo=UTC)),
    ],
    ids=["pending", "transient", "quota"],
)
def test_later_exits_3(exc: SchedulerError, tmp_path: Path) -> None:
    verdict = classify(exc, _config(tmp_path))
    assert verdict.code == EXIT_UNAVAILABLE
    assert str(exc).split(" (")[0].split(";")[0] in verdict.message


def test_refusals_exit_1(tmp_path: Path) -> None:
    for exc in (
        PermanentUploadError("forbidden", reason="forbidden", status=403),
        InvalidTransitionError(3, "completed", "reschedule", hint="already public"),
    ):
        assert classify(exc, _config(tmp_path)).code == EXIT_USER_ERROR


def test_pending_error_says_what_happens_next() -> None:
    exc = ChangePendingError(3, 7, "connection reset")
    assert (exc.schedule_id, exc.change_id, exc.reason) == (3, 7, "connection reset")
    assert "next processor run" in str(exc)
