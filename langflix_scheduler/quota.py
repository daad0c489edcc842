"""YouTube API quota policy and quota-day arithmetic. Pure functions, no I/O.

YouTube counts quota per Google Cloud project in named daily buckets that reset at midnight
America/Los_Angeles (DST-aware). Which buckets exist and what each operation costs changed twice,
so the policy is data (:class:`QuotaPolicy`) with presets for each era:

* ``granular-2026`` (default, since 2026-06-01): ``videos.insert`` has its own bucket of 100
  calls/day; every other method shares 10,000 units/day (thumbnails.set 50,
  playlistItems.insert 50, videos.update 50, videos.delete 50, videos.list 1,
  playlistItems.list 1, channels.list 1).
* ``pool-2025`` (2025-12-04 to 2026-05-31): one 10,000-unit pool, an insert costing 100 units.
* ``legacy`` (until 2025-12-04): one 10,000-unit pool, an insert costing 1,600 units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ._time import require_aware
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_QUOTA_TIMEZONE",
    "QUOTA_PRESETS",
    "QuotaPolicy",
    "next_quota_reset",
    "quota_date_of",
]

DEFAULT_QUOTA_TIMEZONE = "America/Los_Angeles"
INSERT = "videos.insert"
SHARED = "shared"
UPLOADS = "uploads"


@dataclass(frozen=True, kw_only=True)
class QuotaPolicy:
    """Daily quota buckets and what each API operation costs.

    Attributes:
        name: a label for reports (``"granular-2026"``, ``"legacy"``, or your own).
        buckets: bucket name -> daily limit (units or calls, as the bucket counts them).
        costs: operation (``"videos.insert"``, ``"thumbnails.set"``, ...) -> (bucket, amount).
    """

    name: str = "custom"
    buckets: Mapping[str, int] = field(default_factory=dict)
    costs: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        buckets = dict(self.buckets)
        costs = {op: (str(b), int(a)) for op, (b, a) in dict(self.costs).items()}
        if not buckets:
            raise ConfigurationError("quota_policy.buckets", "at least one bucket is required")
        for name, limit in buckets.items():
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise ConfigurationError(
                    f"quota_policy.buckets.{name}", "must be a non-negative integer"
                )
        if INSERT not in costs:
            raise ConfigurationError("quota_policy.costs", f"must price {INSERT!r}")
        for op, (bucket, amount) in costs.items():
            if bucket not in buckets:
                raise ConfigurationError(
                    f"quota_policy.costs.{op}", f"names unknown bucket {bucket!r}"
                )
            if amount < 0:
                raise ConfigurationError(f"quota_policy.costs.{op}", "cost must be >= 0")
        object.__setattr__(self, "buckets", MappingProxyType(buckets))
        object.__setattr__(self, "costs", MappingProxyType(costs))

    def __hash__(self) -> int:
        return hash(
            (self.name, tuple(sorted(self.buckets.items())), tuple(sorted(self.costs.items())))
        )

    @classmethod
    def preset(cls, name: str) -> QuotaPolicy:
        """One of the named presets: ``granular-2026`` (default), ``pool-2025``, ``legacy``."""
        try:
            return QUOTA_PRESETS[name]
        except KeyError:
            raise ConfigurationError(
                "quota_policy", f"unknown preset {name!r}; choose one of {', '.join(QUOTA_PRESETS)}"
            ) from None

    @classmethod
    def default(cls) -> QuotaPolicy:
        """The policy in force since 2026-06-01."""
        return QUOTA_PRESETS["granular-2026"]

    def cost(self, operations: Iterable[str]) -> dict[str, int]:
        """Units per bucket that performing ``operations`` (once each) costs."""
        total: dict[str, int] = {}
        for op in operations:
            try:
                bucket, amount = self.costs[op]
            except KeyError:
                raise ConfigurationError(
                    "quota_policy.costs", f"no cost configured for operation {op!r}"
                ) from None
            total[bucket] = total.get(bucket, 0) + amount
        return {b: a for b, a in sorted(total.items()) if a > 0}

    def limit(self, bucket: str) -> int:
        """The daily limit of ``bucket``."""
        return self.buckets[bucket]


_SHARED_COSTS = {
    "thumbnails.set": (SHARED, 50),
    "playlistItems.insert": (SHARED, 50),
    "videos.update": (SHARED, 50),
    "videos.delete": (SHARED, 50),
    "videos.list": (SHARED, 1),
    # Asked before re-sending a playlistItems.insert whose answer was lost.
    "playlistItems.list": (SHARED, 1),
    # `auth --check`: which channel a token belongs to (channels.list mine=true).
    "channels.list": (SHARED, 1),
}

QUOTA_PRESETS: Mapping[str, QuotaPolicy] = MappingProxyType(
    {
        "granular-2026": QuotaPolicy(
            name="granular-2026",
            buckets={UPLOADS: 100, SHARED: 10_000},
            costs={INSERT: (UPLOADS, 1), **_SHARED_COSTS},
        ),
        "pool-2025": QuotaPolicy(
            name="pool-2025",
            buckets={SHARED: 10_000},
            costs={INSERT: (SHARED, 100), **_SHARED_COSTS},
        ),
        "legacy": QuotaPolicy(
            name="legacy",
            buckets={SHARED: 10_000},
            costs={INSERT: (SHARED, 1600), **_SHARED_COSTS},
        ),
    }
)


def _require_aware(instant: datetime) -> None:
    require_aware(instant, "datetime must be timezone-aware")


def quota_date_of(instant: datetime, quota_timezone: str = DEFAULT_QUOTA_TIMEZONE) -> date:
    """The quota day (a date in ``quota_timezone``) an API call at ``instant`` counts against."""
    _require_aware(instant)
    return instant.astimezone(ZoneInfo(quota_timezone)).date()


def quota_day_start(day: date, quota_timezone: str = DEFAULT_QUOTA_TIMEZONE) -> datetime:
    """The UTC instant at which quota day ``day`` begins (local midnight, DST-aware)."""
    tz = ZoneInfo(quota_timezone)
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def next_quota_reset(instant: datetime, quota_timezone: str = DEFAULT_QUOTA_TIMEZONE) -> datetime:
    """The UTC instant of the first quota reset strictly after ``instant``."""
    return quota_day_start(
        quota_date_of(instant, quota_timezone) + timedelta(days=1), quota_timezone
    )
