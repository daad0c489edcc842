"""The one backoff formula and the bounded retry of storage errors (no database, no sleeping)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from langflix_scheduler._backoff import backoff_delay, retry_until
from langflix_scheduler.errors import LockTimeoutError, OutcomeUnknownError, StorageError

BASE = timedelta(seconds=10)
CAP = timedelta(minutes=5)


class FakeTime:
    """A monotonic clock that only moves when ``sleep`` is called."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("attempt", "step"), [(1, 10), (2, 20), (3, 40), (5, 160), (6, 300)])
def test_delay_doubles_is_capped_and_jittered_to_half_or_more(attempt: int, step: float) -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, base=BASE, cap=CAP, rng=rng) for _ in range(500)]
    assert all(timedelta(seconds=step / 2) <= d <= timedelta(seconds=step) for d in delays)
    assert max(delays) - min(delays) > timedelta(seconds=step / 4)  # really jittered


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    delay = backoff_delay(10_000, base=BASE, cap=CAP, rng=random.Random(2))
    assert CAP / 2 <= delay <= CAP


@pytest.mark.parametrize(
    ("attempt", "base", "cap"),
    [(0, BASE, CAP), (1, -BASE, CAP), (1, BASE, -CAP)],
)
def test_invalid_input_is_refused(attempt: int, base: timedelta, cap: timedelta) -> None:
    with pytest.raises(ValueError, match="must"):
        backoff_delay(attempt, base=base, cap=cap, rng=random.Random())


def _flaky(errors: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return calls, fn


def _retry(fn: object, clock: FakeTime, *, deadline: float = 30.0, **kwargs: object) -> object:
    return retry_until(
        fn,  # type: ignore[arg-type]
        deadline=deadline,
        base=timedelta(seconds=0.5),
        cap=timedelta(seconds=4),
        rng=random.Random(3),
        what="test write",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        **kwargs,  # type: ignore[arg-type]
    )


def test_storage_and_lock_errors_are_retried_with_growing_waits() -> None:
    clock = FakeTime()
    calls, fn = _flaky(
        [StorageError("w", "connection lost"), LockTimeoutError("w", 1.0), StorageError("w", "x")]
    )
    assert _retry(fn, clock) == "done"
    assert len(calls) == 4
    assert len(clock.sleeps) == 3
    assert 0.25 <= clock.sleeps[0] <= 0.5
    assert 0.5 <= clock.sleeps[1] <= 1.0
    assert 1.0 <= clock.sleeps[2] <= 2.0


def test_gives_up_with_the_last_error_when_the_deadline_would_pass() -> None:
    clock = FakeTime()
    calls, fn = _flaky([StorageError("w", f"drop {i}") for i in range(100)])
    with pytest.raises(StorageError, match="drop"):
        _retry(fn, clock, deadline=5.0)
    assert clock.now <= 5.0
    assert 3 <= len(calls) < 100


def test_an_unknown_outcome_is_not_retried_unless_idempotent() -> None:
    clock = FakeTime()
    calls, fn = _flaky([OutcomeUnknownError("w", "reply lost")])
    with pytest.raises(OutcomeUnknownError):
        _retry(fn, clock)
    assert (len(calls), clock.sleeps) == (1, [])
    calls, fn = _flaky([OutcomeUnknownError("w", "reply lost")])
    assert _retry(fn, clock, idempotent=True) == "done"
    assert len(calls) == 2


def test_other_errors_are_not_retried() -> None:
    clock = FakeTime()
    calls, fn = _flaky([ValueError("bug")])
    with pytest.raises(ValueError, match="bug"):
        _retry(fn, clock)
    assert len(calls) == 1
