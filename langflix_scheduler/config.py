"""Configuration: frozen, keyword-only, validated on construction.

``SchedulerConfig.from_env()`` and ``SchedulerConfig.from_file()`` are the only readers of the
environment and of config files in the library (the CLI adds its flags on top).

Environment variables (all optional)::

    LANGFLIX_SCHEDULER_DATABASE_URL     sqlite:///langflix-scheduler.db
    LANGFLIX_SCHEDULER_TIMEZONE         UTC            (channel time zone, IANA name)
    LANGFLIX_SCHEDULER_DAILY_LIMITS     final=2,short=5
    LANGFLIX_SCHEDULER_PUBLISH_TIMES    final=10:00|18:00,short=08:00|11:00|14:00|17:00|20:00
    LANGFLIX_SCHEDULER_QUOTA_POLICY     granular-2026 | pool-2025 | legacy
    LANGFLIX_SCHEDULER_QUOTA_TIMEZONE   America/Los_Angeles
    LANGFLIX_SCHEDULER_LOCK_TIMEOUT     5.0            (seconds)
    LANGFLIX_SCHEDULER_DB_TIMEOUT       30.0           (seconds)
    LANGFLIX_SCHEDULER_HORIZON_DAYS     60
    LANGFLIX_SCHEDULER_MIN_LEAD_TIME    900            (seconds)
    LANGFLIX_SCHEDULER_UPLOAD_LEAD_TIME 3600           (seconds)
    LANGFLIX_SCHEDULER_API_PROJECT      default
    LANGFLIX_SCHEDULER_CHANNEL          default
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .domain import VideoType
from .errors import ConfigurationError
from .quota import DEFAULT_QUOTA_TIMEZONE, QuotaPolicy

__all__ = ["ENV_PREFIX", "SchedulerConfig"]

ENV_PREFIX = "LANGFLIX_SCHEDULER_"
DEFAULT_DATABASE_URL = "sqlite:///langflix-scheduler.db"
DEFAULT_DAILY_LIMITS: Mapping[VideoType, int] = {VideoType.FINAL: 2, VideoType.SHORT: 5}
DEFAULT_PUBLISH_TIMES: Mapping[VideoType, tuple[time, ...]] = {
    VideoType.FINAL: (time(10, 0), time(18, 0)),
    VideoType.SHORT: (time(8, 0), time(11, 0), time(14, 0), time(17, 0), time(20, 0)),
}
MAX_NAME_LENGTH = 64
MAX_HORIZON_DAYS = 3660


def _zone(name: str, field_name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(field_name, "must be an IANA time zone name such as 'Asia/Seoul'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(field_name, f"unknown time zone {name!r}") from exc


def _video_type(key: Any, field_name: str) -> VideoType:
    try:
        return VideoType(key)
    except ValueError:
        raise ConfigurationError(
            field_name, f"unknown video type {key!r}; use 'final' or 'short'"
        ) from None


def _seconds(value: Any, field_name: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return timedelta(seconds=float(value))
    except (TypeError, ValueError, OverflowError):
        raise ConfigurationError(field_name, f"{value!r} is not a number of seconds") from None


@dataclass(frozen=True, kw_only=True)
class SchedulerConfig:
    """Everything the scheduler and the processor need to know.

    Attributes:
        database_url: SQLAlchemy URL. SQLite (default, a file in the working directory) for one
            machine; ``postgresql+psycopg://`` or ``mysql+pymysql://`` when several machines share
            the work.
        timezone: the channel's IANA time zone; publish times and daily limits are per local day.
        daily_limits: per video type, how many may be published on one channel day.
        publish_times: per video type, the local wall-clock times of its slots. Defaults: final
            10:00 and 18:00; short 08:00, 11:00, 14:00, 17:00 and 20:00.
        quota_policy: YouTube API quota buckets and costs (see :mod:`langflix_scheduler.quota`).
        quota_timezone: where the quota day starts (YouTube: midnight Pacific Time).
        lock_timeout: seconds a reservation waits for a row lock before ``LockTimeoutError``.
        db_timeout: seconds any one database call may take (statement, idle transaction, network
            read/write) before it fails with ``DatabaseTimeoutError``, so a stalled network or
            server never blocks a caller, or holds a lock, for longer. Must exceed
            ``lock_timeout``.
        horizon_days: how far ahead slot search looks.
        min_lead_time: the earliest a new schedule may be, from now.
        upload_lead_time: how long before its publish time a video is uploaded; the upload's API
            quota is reserved on the quota day of that moment.
        api_project: the Google Cloud project whose quota the uploads spend.
        channel: the default channel id.
        deadlock_retries: how many times a transaction that lost a deadlock is retried.
    """

    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "UTC"
    daily_limits: Mapping[VideoType, int] = field(
        default_factory=lambda: dict(DEFAULT_DAILY_LIMITS)
    )
    publish_times: Mapping[VideoType, tuple[time, ...]] = field(
        default_factory=lambda: dict(DEFAULT_PUBLISH_TIMES)
    )
    quota_policy: QuotaPolicy = field(default_factory=QuotaPolicy.default)
    quota_timezone: str = DEFAULT_QUOTA_TIMEZONE
    lock_timeout: float = 5.0
    db_timeout: float = 30.0
    horizon_days: int = 60
    min_lead_time: timedelta = timedelta(minutes=15)
    upload_lead_time: timedelta = timedelta(hours=1)
    api_project: str = "default"
    channel: str = "default"
    deadlock_retries: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.database_url, str) or "://" not in self.database_url:
            raise ConfigurationError(
                "database_url", "must be a SQLAlchemy URL such as sqlite:///x.db"
            )
        _zone(self.timezone, "timezone")
        _zone(self.quota_timezone, "quota_timezone")
        self._normalise_limits()
        self._normalise_times()
        self._check_timeouts()
        self._check_rest()

    def _normalise_limits(self) -> None:
        limits: dict[VideoType, int] = {}
        for key, value in dict(self.daily_limits).items():
            vt = _video_type(key, "daily_limits")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigurationError(f"daily_limits.{vt}", "must be a non-negative integer")
            limits[vt] = value
        for vt in VideoType:
            limits.setdefault(vt, DEFAULT_DAILY_LIMITS[vt])
        object.__setattr__(self, "daily_limits", MappingProxyType(limits))

    def _normalise_times(self) -> None:
        times: dict[VideoType, tuple[time, ...]] = {}
        for key, wall_times in dict(self.publish_times).items():
            vt = _video_type(key, "publish_times")
            parsed = []
            for t in wall_times:
                if not isinstance(t, time):
                    raise ConfigurationError(f"publish_times.{vt}", f"{t!r} is not a time")
                if t.tzinfo is not None:
                    raise ConfigurationError(
                        f"publish_times.{vt}", "times are local wall-clock times: give no tzinfo"
                    )
                parsed.append(t.replace(microsecond=0))
            times[vt] = tuple(sorted(set(parsed)))
        for vt in VideoType:
            times.setdefault(vt, DEFAULT_PUBLISH_TIMES[vt])
        object.__setattr__(self, "publish_times", MappingProxyType(times))

    def _check_timeouts(self) -> None:
        if not isinstance(self.quota_policy, QuotaPolicy):
            raise ConfigurationError("quota_policy", "must be a QuotaPolicy")
        if not isinstance(self.lock_timeout, int | float) or not (
            0 < self.lock_timeout <= 3600 and math.isfinite(self.lock_timeout)
        ):
            raise ConfigurationError("lock_timeout", "must be a number of seconds in (0, 3600]")
        if not isinstance(self.db_timeout, int | float) or not (
            0 < self.db_timeout <= 3600 and math.isfinite(self.db_timeout)
        ):
            raise ConfigurationError("db_timeout", "must be a number of seconds in (0, 3600]")
        if self.db_timeout <= self.lock_timeout:
            raise ConfigurationError(
                "db_timeout",
                f"must be longer than lock_timeout ({self.lock_timeout:g} s), or every lock wait "
                "would end as a database timeout",
            )

    def _check_rest(self) -> None:
        if not isinstance(self.horizon_days, int) or not 1 <= self.horizon_days <= MAX_HORIZON_DAYS:
            raise ConfigurationError(
                "horizon_days", f"must be an integer in [1, {MAX_HORIZON_DAYS}]"
            )
        for name in ("min_lead_time", "upload_lead_time"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ConfigurationError(name, "must be a non-negative timedelta")
        for name in ("api_project", "channel"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH:
                raise ConfigurationError(
                    name, f"must be a non-empty string of <= {MAX_NAME_LENGTH} chars"
                )
        if not isinstance(self.deadlock_retries, int) or not 0 <= self.deadlock_retries <= 100:
            raise ConfigurationError("deadlock_retries", "must be an integer in [0, 100]")

    @property
    def zone(self) -> ZoneInfo:
        """The channel time zone."""
        return ZoneInfo(self.timezone)

    @property
    def quota_zone(self) -> ZoneInfo:
        """The quota-day time zone."""
        return ZoneInfo(self.quota_timezone)

    @property
    def horizon(self) -> timedelta:
        """``horizon_days`` as a timedelta."""
        return timedelta(days=self.horizon_days)

    def day_start(self, day: date) -> datetime:
        """The UTC instant at which channel day ``day`` begins (local midnight, DST-aware).

        ``[day_start(d), day_start(d + 1 day))`` is channel day ``d``: the bounds a front end
        passes to :meth:`ScheduleManager.list_schedules` for a range of channel days.
        """
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def replace(self, **changes: Any) -> SchedulerConfig:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "config") -> SchedulerConfig:
        """Build from loosely typed values (strings from the environment, TOML values)."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise ConfigurationError(key, f"unknown setting in {source}")
            kwargs[key] = _coerce(key, raw)
        return cls(**kwargs)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> SchedulerConfig:
        """Read ``LANGFLIX_SCHEDULER_*`` variables; ``overrides`` win over the environment."""
        return cls.load(environ=environ, **overrides)

    @classmethod
    def load(
        cls,
        *,
        file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> SchedulerConfig:
        """Merge, lowest precedence first: the TOML ``file``, the environment, ``overrides``.

        ``None`` overrides are ignored, so unset command-line flags fall through.
        """
        values: dict[str, Any] = _read_toml(Path(file)) if file is not None else {}
        env = os.environ if environ is None else environ
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values, source=str(file) if file else "environment")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **overrides: Any) -> SchedulerConfig:
        """Read a TOML file (``langflix-scheduler.toml``): top-level keys or a ``[scheduler]``."""
        values = _read_toml(Path(path))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values, source=str(path))


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError("config_file", f"cannot read {p}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("config_file", f"{p} is not valid TOML: {exc}") from exc
    table = data.get("scheduler", data)
    if not isinstance(table, dict):
        raise ConfigurationError("config_file", "[scheduler] must be a table")
    return dict(table)


def _parse_time(text: str, field_name: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ConfigurationError(field_name, f"{text!r} is not a time like 18:30") from None


def _pairs(raw: str, field_name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigurationError(field_name, f"expected type=value pairs, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _coerce(key: str, raw: Any) -> Any:
    """Turn an environment string or TOML value into the field's type."""
    special = _COERCERS.get(key)
    if special is not None:
        return special(key, raw)
    if key in ("min_lead_time", "upload_lead_time"):
        return _seconds(raw, key)
    if key in ("lock_timeout", "db_timeout"):
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ConfigurationError(key, f"{raw!r} is not a number of seconds") from None
    if key in ("horizon_days", "deadlock_retries"):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ConfigurationError(key, f"{raw!r} is not an integer") from None
    return raw


def _coerce_daily_limits(key: str, raw: Any) -> Any:
    if isinstance(raw, str):
        raw = _pairs(raw, key)
    if not isinstance(raw, Mapping):
        raise ConfigurationError(key, "must map video type to a count")
    out: dict[Any, int] = {}
    for k, v in raw.items():
        try:
            out[k] = int(v)
        except (TypeError, ValueError):
            raise ConfigurationError(f"daily_limits.{k}", f"{v!r} is not an integer") from None
    return out


def _coerce_publish_times(key: str, raw: Any) -> Any:
    if isinstance(raw, str):
        raw = {k: v.split("|") for k, v in _pairs(raw, key).items()}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(key, "must map video type to a list of times")
    return {
        k: tuple(
            v if isinstance(v, time) else _parse_time(str(v), f"publish_times.{k}") for v in vs
        )
        for k, vs in raw.items()
    }


def _coerce_quota_policy(key: str, raw: Any) -> Any:
    if isinstance(raw, QuotaPolicy):
        return raw
    if isinstance(raw, str):
        return QuotaPolicy.preset(raw.strip())
    if isinstance(raw, Mapping):
        costs = {op: tuple(v) for op, v in dict(raw.get("costs", {})).items()}
        return QuotaPolicy(
            name=str(raw.get("name", "custom")),
            buckets=dict(raw.get("buckets", {})),
            costs=costs,
        )
    raise ConfigurationError(key, "must be a preset name or a table with buckets and costs")


_COERCERS: dict[str, Callable[[str, Any], Any]] = {
    "daily_limits": _coerce_daily_limits,
    "publish_times": _coerce_publish_times,
    "quota_policy": _coerce_quota_policy,
}
