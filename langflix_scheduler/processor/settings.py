"""The processor's settings: defaults, and :class:`ProcessorSettings`, validated once."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFAULT_RETRY_BASE",
    "MAX_RETRY_DELAY",
    "MIN_DEFERRAL",
    "ProcessorSettings",
]

#: How long a claim is valid without a heartbeat before any processor may rescue the row.
DEFAULT_LEASE = timedelta(minutes=5)
#: How often the lease of every upload in flight is extended.
DEFAULT_HEARTBEAT_INTERVAL = timedelta(seconds=30)
#: Tries per schedule (transient failures and expired leases count; deferrals do not).
DEFAULT_MAX_ATTEMPTS = 5
#: First retry delay after a transient failure; doubles per attempt.
DEFAULT_RETRY_BASE = timedelta(seconds=30)
#: Retry delays are capped at this.
MAX_RETRY_DELAY = timedelta(hours=6)
#: A channel deferred for YouTube's upload limit waits at least this long.
MIN_DEFERRAL = timedelta(minutes=1)
#: Progress is written at most this often per upload (session URIs and video ids at once).
DEFAULT_PROGRESS_INTERVAL = timedelta(seconds=1)

_WORKER_ID_MAX = 100


def default_worker_id() -> str:
    """``host:pid:random``: unique per process, readable in ``processor_runs``."""
    host = socket.gethostname()[:60] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, kw_only=True)
class ProcessorSettings:
    """How an :class:`~langflix_scheduler.processor.UploadProcessor` works, validated once.

    The fields are the processor's constructor arguments of the same names (see
    :class:`~langflix_scheduler.processor.UploadProcessor`). ``worker_id`` ``None`` becomes
    ``host:pid:random``, ``batch_size`` ``None`` becomes ``max_concurrent_uploads``, ``channels``
    becomes a sorted tuple without duplicates; ``upload_lead_time`` ``None`` means the manager's
    (the processor fills it in).

    Raises:
        ConfigurationError: a value is out of range (the first one found, in field order).
    """

    worker_id: str | None = None
    max_concurrent_uploads: int = 2
    per_channel_limit: int = 1
    lease: timedelta = DEFAULT_LEASE
    heartbeat_interval: timedelta = DEFAULT_HEARTBEAT_INTERVAL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    upload_lead_time: timedelta | None = None
    batch_size: int | None = None
    retry_base: timedelta = DEFAULT_RETRY_BASE
    progress_interval: timedelta = DEFAULT_PROGRESS_INTERVAL
    exclusive: bool = False
    channels: Iterable[str] | None = field(default=None)

    def __post_init__(self) -> None:
        worker = self.worker_id if self.worker_id is not None else default_worker_id()
        if not isinstance(worker, str) or not worker or len(worker) > _WORKER_ID_MAX:
            raise ConfigurationError("worker_id", f"must be 1-{_WORKER_ID_MAX} characters")
        for name in ("max_concurrent_uploads", "per_channel_limit", "max_attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(name, "must be an integer >= 1")
        batch = self.batch_size
        if batch is not None and (not isinstance(batch, int) or batch < 1):
            raise ConfigurationError("batch_size", "must be an integer >= 1")
        for name in ("lease", "heartbeat_interval", "retry_base", "progress_interval"):
            delta = getattr(self, name)
            if not isinstance(delta, timedelta) or delta < timedelta(0):
                raise ConfigurationError(name, "must be a non-negative timedelta")
        if self.heartbeat_interval <= timedelta(0) or self.heartbeat_interval >= self.lease:
            raise ConfigurationError(
                "heartbeat_interval", "must be positive and shorter than the lease"
            )
        object.__setattr__(self, "worker_id", worker)
        object.__setattr__(self, "batch_size", batch or self.max_concurrent_uploads)
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(sorted(set(self.channels))))

    @property
    def worker(self) -> str:
        """``worker_id`` (never None after validation)."""
        assert self.worker_id is not None
        return self.worker_id

    @property
    def claim_batch(self) -> int:
        """``batch_size`` (never None after validation)."""
        assert self.batch_size is not None
        return self.batch_size

    @property
    def channel_filter(self) -> tuple[str, ...] | None:
        """``channels`` as a sorted tuple, or None for every channel."""
        return None if self.channels is None else tuple(self.channels)
