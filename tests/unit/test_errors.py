"""Every error carries its data as attributes and formats its own message."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime, timedelta

import pytest

from langflix_scheduler import errors
from langflix_scheduler.errors import (
    AuthorizationError,
    ConfigurationError,
    InvalidScheduleError,
    InvalidTransitionError,
    LockTimeoutError,
    PermanentUploadError,
    QuotaExceededError,
    QuotaExhaustedError,
    ScheduleNotFoundError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)


def test_configuration_error() -> None:
    e = ConfigurationError("timezone", "unknown time zone 'X'")
    assert (e.field, e.reason) == ("timezone", "unknown time zone 'X'")
    assert str(e) == "invalid configuration 'timezone': unknown time zone 'X'"
    assert isinstance(e, ValueError)


def test_invalid_schedule_error() -> None:
    e = InvalidScheduleError("preferred_time", "naive datetime")
    assert (e.field, e.reason) == ("preferred_time", "naive datetime")
    assert str(e) == "invalid preferred_time: naive datetime"
    assert isinstance(e, ValueError)
    with pytest.raises(ValueError, match="preferred_time"):
        raise e


def test_quota_exceeded_error() -> None:
    e = QuotaExceededError("daily:final", date(2026, 5, 4), used=2, limit=2, requested=1)
    assert (e.limit_name, e.day, e.used, e.limit, e.requested) == (
        "daily:final",
        date(2026, 5, 4),
        2,
        2,
        1,
    )
    assert str(e) == "daily:final limit reached for 2026-05-04: 2 of 2 used, 1 more requested"
    q = QuotaExceededError(
        "quota:shared", date(2026, 12, 31), used=9_950, limit=10_000, requested=100
    )
    assert "quota:shared" in str(q)
    assert "2026-12-31" in str(q)
    assert "9950 of 10000" in str(q)
    assert "100 more" in str(q)


def test_slot_unavailable_error() -> None:
    req = datetime(2026, 5, 4, 10, tzinfo=UTC)
    nxt = datetime(2026, 5, 4, 18, tzinfo=UTC)
    e = SlotUnavailableError(req, "already booked", next_available=nxt)
    assert (e.requested, e.reason, e.next_available) == (req, "already booked", nxt)
    assert str(e) == (
        "slot 2026-05-04T10:00:00+00:00 is unavailable (already booked); "
        "next available: 2026-05-04T18:00:00+00:00"
    )
    none = SlotUnavailableError(req, "full", next_available=None)
    assert none.next_available is None
    assert "none within the horizon" in str(none)


def test_schedule_not_found_error() -> None:
    e = ScheduleNotFoundError(42)
    assert e.schedule_id == 42
    assert str(e) == "schedule 42 not found"
    assert isinstance(e, LookupError)
    with pytest.raises(LookupError):
        raise e


def test_invalid_transition_error() -> None:
    e = InvalidTransitionError(7, "cancelled", "cancel")
    assert (e.schedule_id, e.status, e.operation) == (7, "cancelled", "cancel")
    assert str(e) == "cannot cancel schedule 7: its status is 'cancelled'"


def test_lock_timeout_error() -> None:
    e = LockTimeoutError("schedule video", 1.5)
    assert (e.operation, e.timeout) == ("schedule video", 1.5)
    assert str(e).startswith("schedule video: lock not granted within 1.5 s")
    assert "nothing was written" in str(e)


def test_storage_error() -> None:
    e = StorageError("cancel schedule", "connection refused")
    assert (e.operation, e.detail) == ("cancel schedule", "connection refused")
    assert str(e) == "cancel schedule: database error: connection refused"


def test_upload_errors() -> None:
    e = UploadError("boom", reason="backendError", status=503)
    assert (str(e), e.reason, e.status) == ("boom", "backendError", 503)
    t = TransientUploadError("reset")
    assert (t.reason, t.status) == ("", None)
    resume = datetime(2026, 5, 5, 7, tzinfo=UTC)
    q = QuotaExhaustedError("quota spent", resume_at=resume)
    assert q.resume_at == resume
    assert (q.reason, q.status) == ("quotaExceeded", 403)
    assert str(q) == "quota spent (quota resets at 2026-05-05T07:00:00+00:00)"
    u = UploadLimitExceededError("too many")
    assert (u.retry_after, u.reason, u.status) == (timedelta(hours=24), "uploadLimitExceeded", 400)
    u2 = UploadLimitExceededError("too many", retry_after=timedelta(hours=3))
    assert u2.retry_after == timedelta(hours=3)
    p = PermanentUploadError("invalid title", reason="invalidTitle", status=400)
    assert (str(p), p.reason, p.status) == ("invalid title", "invalidTitle", 400)
    a = AuthorizationError("revoked", reason="invalid_grant", status=401)
    assert (a.reason, a.status) == ("invalid_grant", 401)


@pytest.mark.parametrize(
    "cls",
    [
        TransientUploadError,
        QuotaExhaustedError,
        UploadLimitExceededError,
        AuthorizationError,
        PermanentUploadError,
    ],
)
def test_upload_error_subclasses(cls: type[Exception]) -> None:
    assert issubclass(cls, UploadError)


def test_every_error_in_module_subclasses_scheduler_error() -> None:
    classes = [
        v
        for v in vars(errors).values()
        if inspect.isclass(v) and issubclass(v, BaseException) and v.__module__ == errors.__name__
    ]
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert issubclass(cls, SchedulerError), cls
        assert cls.__doc__, cls
    assert {c.__name__ for c in classes} == set(errors.__all__)


def test_data_survives_raise_and_catch_as_root() -> None:
    with pytest.raises(SchedulerError) as info:
        raise QuotaExceededError("quota:uploads", date(2026, 5, 4), used=3, limit=3, requested=1)
    assert isinstance(info.value, QuotaExceededError)
    assert info.value.limit_name == "quota:uploads"
