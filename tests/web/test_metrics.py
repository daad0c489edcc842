"""Metrics: stored totals read from the database, and in-process event metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest

from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.processor import ProcessorEvent, ProcessorEventKind
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.web.metrics import (
    EventMetrics,
    SchedulerCollector,
    deferral_reason,
    render_metrics,
)
from tests.integration.db_helpers import RawDB
from tests.web.conftest import Site


def _value(text: str, prefix: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(prefix))
    return float(line.rsplit(" ", 1)[1])


def test_stored_totals_in_your_own_registry(site: Site, raw_db: RawDB, clock: FakeClock) -> None:
    m = site.manager
    now = m.now()
    raw_db.execute(
        "INSERT INTO processor_runs (worker_id, started_at, finished_at, outcome, claimed, "
        "uploaded, failed, retried, deferred, rescued, skipped_overlap) VALUES "
        "('w#1', :s, :s, 'ok', 3, 2, 1, 0, 4, 0, 0), ('w#2', :s, :s, 'skipped', 0, 0, 0, 0, 0, "
        "0, 1), ('w#3', :s, :s, 'ok', 1, 1, 0, 0, 0, 0, 0)",
        s=now,
    )
    raw_db.execute(
        "INSERT INTO youtube_api_calls (api_project, quota_date, bucket, operation, cost, "
        "sent_at, outcome) VALUES ('default', :d, 'uploads', 'videos.insert', 1, :s, 'sent')",
        d=now.date(),
        s=now,
    )
    registry = CollectorRegistry()
    registry.register(SchedulerCollector(m))
    text = generate_latest(registry).decode()
    assert _value(text, 'langflix_processor_runs_total{outcome="ok"}') == 2
    assert _value(text, 'langflix_processor_runs_total{outcome="skipped"}') == 1
    assert _value(text, 'langflix_processor_run_schedules_total{outcome="ok",what="uploaded"}') == 3
    assert _value(text, 'langflix_processor_run_schedules_total{outcome="ok",what="deferred"}') == 4
    assert (
        _value(
            text,
            'langflix_api_calls_total{api_project="default",operation="videos.insert",'
            'outcome="sent"}',
        )
        == 1
    )
    assert _value(text, 'langflix_schedules{channel="default",status="scheduled"}') == 4
    assert _value(text, "langflix_due_lag_seconds") == 0
    # Two hours after the first video's upload time: it is due and waited that long.
    first = min(site.booked, key=lambda s: s.scheduled_publish_time)
    clock.set(first.scheduled_publish_time - m.config.upload_lead_time + timedelta(hours=2))
    text = generate_latest(registry).decode()
    assert _value(text, "langflix_due_lag_seconds") == 7200
    assert _value(text, "langflix_due_schedules") >= 1
    limit = 'langflix_quota_limit{api_project="default",bucket="uploads",quota_date="'
    assert _value(text, limit) == 100


def test_event_metrics_count_outcomes_and_reasons(web_manager: ScheduleManager) -> None:
    events = EventMetrics()
    at = datetime(2026, 5, 4, tzinfo=UTC)
    for kind, error in (
        (ProcessorEventKind.UPLOADED, None),
        (ProcessorEventKind.DEFERRED, "quotaExceeded: daily quota spent"),
        (ProcessorEventKind.DEFERRED, "uploadLimitExceeded"),
        (ProcessorEventKind.RETRIED, "backendError 503"),
    ):
        events.on_event(
            ProcessorEvent(
                kind=kind,
                schedule_id=1,
                channel_id="c",
                worker_id="w",
                at=at,
                attempts=1,
                error=error,
            )
        )
    with events.time_booking():
        pass
    events.observe_claim(0.004)
    text = render_metrics(web_manager, events=events).decode()
    assert _value(text, 'langflix_uploads_total{outcome="uploaded"}') == 1
    assert _value(text, 'langflix_uploads_total{outcome="deferred"}') == 2
    assert _value(text, 'langflix_deferrals_total{reason="quota"}') == 1
    assert _value(text, 'langflix_deferrals_total{reason="upload_limit"}') == 1
    assert _value(text, 'langflix_deferrals_total{reason="other"}') == 1
    assert _value(text, "langflix_booking_latency_seconds_count") == 1
    assert _value(text, 'langflix_claim_latency_seconds_bucket{le="0.005"}') == 1
    assert deferral_reason(None) == "unknown"


def test_recovered_changes_have_their_own_counter(web_manager: ScheduleManager) -> None:
    events = EventMetrics()
    at = datetime(2026, 5, 4, tzinfo=UTC)
    for kind in (
        ProcessorEventKind.CHANGE_APPLIED,
        ProcessorEventKind.CHANGE_APPLIED,
        ProcessorEventKind.CHANGE_ROLLED_BACK,
    ):
        events.on_event(
            ProcessorEvent(
                kind=kind,
                schedule_id=1,
                channel_id="c",
                worker_id="w",
                at=at,
                attempts=0,
                change_id=7,
                change_kind="reschedule",
            )
        )
    text = render_metrics(web_manager, events=events).decode()
    assert _value(text, 'langflix_video_changes_recovered_total{outcome="applied"}') == 2
    assert _value(text, 'langflix_video_changes_recovered_total{outcome="rolled_back"}') == 1
    assert "langflix_uploads_total{" not in text  # not upload outcomes


def test_due_lag_leaves_a_paused_channel_out(site: Site, clock: FakeClock) -> None:
    from langflix_scheduler.db import channels as channels_db

    m = site.manager
    first = min(site.booked, key=lambda s: s.scheduled_publish_time)
    clock.set(first.scheduled_publish_time - m.config.upload_lead_time + timedelta(hours=2))
    text = render_metrics(m, events=EventMetrics()).decode()
    assert _value(text, "langflix_due_lag_seconds") == 7200
    m.database.run_core(
        "pause",
        lambda c: channels_db.pause(
            c, m.database.dialect, first.channel_id, at=m.now(), reason="invalid_grant"
        ),
    )
    text = render_metrics(m, events=EventMetrics()).decode()
    assert _value(text, "langflix_due_lag_seconds") == 0
    assert _value(text, "langflix_due_schedules") == 0
