"""Prometheus metrics: stored totals read from the database at scrape time, plus in-process
event counters and latency histograms.

* :class:`SchedulerCollector` reads the database on each scrape (no state in the process, so
  every replica reports the same numbers): schedules by status, processor runs and what they did
  by outcome, the quota ledger, quota reserved/used/limit per bucket and day, due-to-start lag.
  Register it in your own registry to export with your own exporter::

      from prometheus_client import REGISTRY
      from langflix_scheduler.web.metrics import SchedulerCollector
      REGISTRY.register(SchedulerCollector(manager))

* :class:`EventMetrics` counts what a processor in *this* process did (uploads by outcome,
  deferrals by reason) and times claims and bookings. Pass ``EVENTS.on_event`` as the
  processor's ``on_event`` callback; wrap bookings in ``with EVENTS.time_booking(): ...``.

:func:`render_metrics` returns both in the text exposition format (what ``/metrics`` serves).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from ..quota import quota_date_of

if TYPE_CHECKING:
    from ..manager import ScheduleManager
    from ..processor import ProcessorEvent
    from ..reports import StoredTotals

__all__ = [
    "CONTENT_TYPE",
    "EVENTS",
    "EventMetrics",
    "SchedulerCollector",
    "deferral_reason",
    "render_metrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_RUN_FIELDS = ("claimed", "uploaded", "failed", "retried", "deferred", "rescued", "skipped_overlap")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REASONS = (
    ("quota", re.compile(r"quota", re.IGNORECASE)),
    ("upload_limit", re.compile(r"uploadLimitExceeded|upload limit", re.IGNORECASE)),
    ("rate_limit", re.compile(r"rate.?limit|429", re.IGNORECASE)),
    ("auth", re.compile(r"auth|credential|token", re.IGNORECASE)),
)


def deferral_reason(error: str | None) -> str:
    """A short, bounded label for why a schedule was deferred or retried (from its error)."""
    for label, pattern in _REASONS:
        if error and pattern.search(error):
            return label
    return "other" if error else "unknown"


class SchedulerCollector(Collector):
    """Reads stored totals from the manager's database at every scrape."""

    def __init__(self, manager: ScheduleManager, *, quota_days: int = 1) -> None:
        self._m = manager
        self._quota_days = quota_days

    def describe(self) -> list[Any]:
        return []  # collected lazily: never read the database at registration

    def collect(self) -> Iterator[Any]:
        totals = self._m.stored_totals()
        yield from _schedule_families(totals)
        yield from _run_families(totals)
        yield from _api_call_families(totals)
        yield from self._quota_families()
        yield from _due_families(totals)

    def _quota_families(self) -> Iterator[Any]:
        cfg = self._m.config
        today = quota_date_of(self._m.now(), cfg.quota_timezone)
        rows = self._m.quota_usage(
            today - timedelta(days=self._quota_days - 1), today + timedelta(days=self._quota_days)
        )
        families = {
            name: GaugeMetricFamily(
                f"langflix_quota_{name}",
                f"Quota {name} per API project, bucket and Pacific quota day.",
                labels=["api_project", "bucket", "quota_date"],
            )
            for name in ("reserved", "used", "limit")
        }
        for r in rows:
            labels = [r.api_project, r.bucket, r.quota_date.isoformat()]
            families["reserved"].add_metric(labels, r.reserved)
            families["used"].add_metric(labels, r.used)
            families["limit"].add_metric(labels, r.limit)
        yield from families.values()


def _schedule_families(totals: StoredTotals) -> Iterator[Any]:
    by_status = GaugeMetricFamily(
        "langflix_schedules", "Schedules by channel and status.", labels=["channel", "status"]
    )
    for (channel, status), n in sorted(totals.schedules.items()):
        by_status.add_metric([channel, status], n)
    yield by_status

    uploads = CounterMetricFamily(
        "langflix_stored_uploads",
        "Schedules that reached a final upload outcome (stored statuses).",
        labels=["outcome"],
    )
    for outcome in ("completed", "failed", "needs_review"):
        n = sum(v for (_, st), v in totals.schedules.items() if st == outcome)
        uploads.add_metric([outcome], n)
    yield uploads


def _run_families(totals: StoredTotals) -> Iterator[Any]:
    runs = CounterMetricFamily(
        "langflix_processor_runs", "Processor runs by outcome.", labels=["outcome"]
    )
    did = CounterMetricFamily(
        "langflix_processor_run_schedules",
        "What processor runs did (sums of their counters) by run outcome.",
        labels=["outcome", "what"],
    )
    for outcome, values in sorted(totals.runs.items()):
        runs.add_metric([outcome], values.get("runs", 0))
        for name in _RUN_FIELDS:
            did.add_metric([outcome, name], values.get(name, 0))
    yield runs
    yield did


def _api_call_families(totals: StoredTotals) -> Iterator[Any]:
    calls = CounterMetricFamily(
        "langflix_api_calls",
        "Charged YouTube API calls in the quota ledger.",
        labels=["api_project", "operation", "outcome"],
    )
    units = CounterMetricFamily(
        "langflix_api_call_units",
        "Quota units charged in the quota ledger.",
        labels=["api_project", "operation", "outcome"],
    )
    for key, (n, cost) in sorted(totals.api_calls.items()):
        calls.add_metric(list(key), n)
        units.add_metric(list(key), cost)
    yield calls
    yield units


def _due_families(totals: StoredTotals) -> Iterator[Any]:
    lag = GaugeMetricFamily(
        "langflix_due_lag_seconds",
        "How long the oldest due scheduled upload has waited to start (0: none due).",
    )
    lag.add_metric([], totals.due_lag_seconds)
    yield lag
    due = GaugeMetricFamily("langflix_due_schedules", "Scheduled uploads due to start now.")
    due.add_metric([], totals.due_count)
    yield due


#: Event kinds of a change of plan finished by a processor run -> its ``outcome`` label.
_CHANGE_KINDS = {"change_applied": "applied", "change_rolled_back": "rolled_back"}


class EventMetrics:
    """In-process counters and histograms (what this process saw happen)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.uploads = Counter(
            "langflix_uploads",
            "Upload outcomes seen by processors in this process.",
            ["outcome"],
            registry=self.registry,
        )
        self.deferrals = Counter(
            "langflix_deferrals",
            "Schedules deferred or retried by processors in this process, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.video_changes = Counter(
            "langflix_video_changes_recovered",
            "Pending changes of plan finished by processors in this process, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.claim_latency = Histogram(
            "langflix_claim_latency_seconds",
            "Time one processor claim transaction took.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.booking_latency = Histogram(
            "langflix_booking_latency_seconds",
            "Time one booking (schedule_video / book) took.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def on_event(self, event: ProcessorEvent) -> None:
        """A processor ``on_event`` callback: counts outcomes and deferral reasons."""
        kind = str(getattr(event.kind, "value", event.kind))
        if kind == "claimed":
            return  # the start of an attempt, not an outcome (claims: processor_runs)
        if kind in _CHANGE_KINDS:
            self.video_changes.labels(_CHANGE_KINDS[kind]).inc()
            return  # a change of plan, not an upload outcome
        if kind in ("deferred", "retried"):
            self.deferrals.labels(deferral_reason(event.error)).inc()
        self.uploads.labels(kind).inc()

    def observe_claim(self, seconds: float) -> None:
        self.claim_latency.observe(seconds)

    def observe_booking(self, seconds: float) -> None:
        self.booking_latency.observe(seconds)

    @contextmanager
    def time_booking(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe_booking(time.perf_counter() - start)


#: The process-wide event metrics that ``/metrics`` serves.
EVENTS = EventMetrics()


def render_metrics(manager: ScheduleManager, *, events: EventMetrics | None = None) -> bytes:
    """Stored totals of ``manager``'s database plus ``events`` (default :data:`EVENTS`), in
    the Prometheus text exposition format."""
    registry = CollectorRegistry()
    registry.register(SchedulerCollector(manager))
    return generate_latest(registry) + generate_latest((events or EVENTS).registry)
