"""Time helpers used everywhere: aware checks, reading an injected clock, ``timedelta`` coercion.

Every datetime the library stores or compares is timezone-aware and normalised to UTC; the
helpers here are the only place that says how.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .errors import ConfigurationError

__all__ = ["as_timedelta", "ensure_aware", "is_aware", "read_clock", "require_aware"]

_NAIVE = "datetime must be timezone-aware (e.g. 2026-05-01T10:00:00+09:00)"


def is_aware(value: datetime) -> bool:
    """Does ``value`` carry a UTC offset?"""
    return value.tzinfo is not None and value.utcoffset() is not None


def require_aware(value: datetime, message: str = _NAIVE) -> None:
    """Raise ``ValueError(message)`` if ``value`` is naive."""
    if not is_aware(value):
        raise ValueError(message)


def ensure_aware(value: datetime) -> datetime:
    """Return ``value`` in UTC; raise ``ValueError`` if it is naive."""
    # Inlined (no helper calls): the slot search calls this for every candidate slot.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(_NAIVE)
    return value.astimezone(UTC)


def read_clock(clock: Callable[[], datetime]) -> datetime:
    """Call an injected clock and return its answer in UTC.

    Raises:
        ConfigurationError: the clock returned a naive datetime (or no datetime).
    """
    value = clock()
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ConfigurationError(
            "clock",
            f"{clock!r} returned {value!r}; a clock must return a timezone-aware "
            "datetime, e.g. datetime.now(UTC)",
        )
    return value.astimezone(UTC)


def as_timedelta(value: timedelta | float, name: str) -> timedelta:
    """``value`` as a ``timedelta`` (a number is seconds); ``ConfigurationError`` otherwise."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    raise ConfigurationError(name, f"{value!r} is not a timedelta or a number of seconds")
