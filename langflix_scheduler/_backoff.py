"""The one backoff formula, and a bounded retry of database writes built on it.

:func:`backoff_delay` is exponential (``base * 2**(attempt-1)``), capped at ``cap`` and jittered to
50-100 % of that, so retries of many workers spread out but never wait less than half the step.

:func:`retry_until` retries a callable on :class:`~langflix_scheduler.errors.StorageError` and
:class:`~langflix_scheduler.errors.LockTimeoutError` until a deadline. It never retries an
:class:`~langflix_scheduler.errors.OutcomeUnknownError` (the write may have committed: the caller
must look before writing again) unless the caller says the call is idempotent. Time and sleep are
injected so tests never sleep.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from .errors import LockTimeoutError, OutcomeUnknownError, StorageError

__all__ = ["backoff_delay", "retry_until"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Doublings beyond this cannot matter (2**60 times any sane base exceeds every cap).
_MAX_DOUBLINGS = 60


def backoff_delay(
    attempt: int, *, base: timedelta, cap: timedelta, rng: random.Random
) -> timedelta:
    """The wait before retry number ``attempt`` (1 = the first retry).

    ``min(cap, base * 2**(attempt-1))``, jittered uniformly to 50-100 % of that.

    Raises:
        ValueError: ``attempt`` < 1, or a negative ``base`` or ``cap``.
    """
    if attempt < 1:
        raise ValueError("attempt must be >= 1")
    if base < timedelta(0) or cap < timedelta(0):
        raise ValueError("base and cap must not be negative")
    step = base.total_seconds() * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS)
    return timedelta(seconds=min(cap.total_seconds(), step) * rng.uniform(0.5, 1.0))


def retry_until(
    fn: Callable[[], _T],
    *,
    deadline: float,
    base: timedelta,
    cap: timedelta,
    rng: random.Random,
    what: str,
    idempotent: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> _T:
    """Call ``fn``; retry it after :func:`backoff_delay` while it fails with a storage error.

    Args:
        fn: the call (one short transaction).
        deadline: ``monotonic()`` value after which no retry starts; the last error is raised.
        base, cap, rng: the backoff (see :func:`backoff_delay`).
        what: named in the log line of each retry.
        idempotent: also retry an :class:`OutcomeUnknownError` (only for calls whose repetition
            changes nothing, e.g. an ``UPDATE`` that sets fixed values).
        sleep, monotonic: injected time (tests pass fakes).

    Raises:
        OutcomeUnknownError: at once, unless ``idempotent``.
        StorageError, LockTimeoutError: the last failure, once the next retry would start after
            ``deadline``.
    """
    tries = 0
    while True:
        try:
            return fn()
        except (StorageError, LockTimeoutError) as exc:
            if isinstance(exc, OutcomeUnknownError) and not idempotent:
                raise
            tries += 1
            delay = backoff_delay(tries, base=base, cap=cap, rng=rng).total_seconds()
            if monotonic() + delay > deadline:
                raise
            logger.warning("%s failed (%s); retry %d in %.2f s", what, exc, tries, delay)
            sleep(delay)
