"""``channels.list`` of a token check is written to the quota ledger through
``ScheduleManager.api_call_recorder`` / ``record_api_call`` (outside any schedule), on
SQLite, PostgreSQL and MariaDB, with the real google client against FakeYouTube."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from langflix_scheduler.errors import QuotaExceededError, StorageError
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.quota import quota_date_of
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.auth import DEFAULT_SCOPES
from langflix_scheduler.youtube.health import check_token
from langflix_scheduler.youtube.uploader import ApiCallReport, CallPhase

pytestmark = pytest.mark.timeout(60)


def _write_token(token_dir: Path, channel: str = "main") -> None:
    token_dir.mkdir(mode=0o700, exist_ok=True)
    path = token_dir / f"{channel}.json"
    path.write_text(
        json.dumps(
            {
                "token": "old-access-token",
                "refresh_token": "refresh-secret-value-1",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "client-secret-value",
                "scopes": list(DEFAULT_SCOPES),
                "expiry": "2000-01-01T00:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)


def _ledger_rows(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT api_project, quota_date, bucket, operation, cost, schedule_id,"
                        " channel_id, outcome FROM youtube_api_calls"
                    )
                )
            ]
    finally:
        engine.dispose()


def _used(manager: ScheduleManager, qday: date) -> int:
    rows = manager.quota_usage(qday, qday)
    return sum(r.used for r in rows if r.bucket == "shared" and r.api_project == "default")


def test_check_records_one_channels_list_and_used_grows_by_one(
    manager: ScheduleManager, db_url: str, tmp_path: Path
) -> None:
    _write_token(tmp_path)
    qday = quota_date_of(manager.now())
    before = _used(manager, qday)
    with FakeYouTube() as fake:
        health = check_token(
            "main",
            tmp_path,
            api_endpoint=fake.api_endpoint,
            token_uri=fake.token_uri,
            on_call=manager.api_call_recorder(channel="main"),
            clock=manager.now,
        )
        charged = fake.charged()
    assert health.ok, health.message
    assert sum(charged.values()) == 1
    rows = _ledger_rows(db_url)
    assert len(rows) == 1
    project, row_day, bucket, operation, cost, schedule_id, channel_id, outcome = rows[0]
    assert (project, bucket, operation, cost) == ("default", "shared", "channels.list", 1)
    assert str(row_day)[:10] == qday.isoformat()
    assert schedule_id is None
    assert (channel_id, outcome) == ("main", "sent")
    assert _used(manager, qday) == before + 1
    report = manager.recalculate_quota()
    assert report.corrections == ()


def test_a_refused_call_costs_nothing_and_recount_agrees(manager: ScheduleManager) -> None:
    qday = quota_date_of(manager.now())
    record = manager.api_call_recorder(channel="main")
    record(ApiCallReport(operation="channels.list", phase=CallPhase.SENDING, call_id=7))
    assert _used(manager, qday) == 1
    record(ApiCallReport(operation="channels.list", phase=CallPhase.REFUSED, call_id=7))
    assert _used(manager, qday) == 0
    assert manager.recalculate_quota().corrections == ()


def test_record_api_call_charges_the_pacific_day_of_the_send(manager: ScheduleManager) -> None:
    # 07:30 UTC on 2026-03-10 is 00:30 PDT on the 10th; 06:30 UTC is still the 9th in Pacific.
    report = ApiCallReport(operation="channels.list", phase=CallPhase.SENDING, call_id=1)
    late = manager.record_api_call(
        report, channel="main", now=datetime(2026, 3, 10, 6, 30, tzinfo=UTC)
    )
    early = manager.record_api_call(
        report, channel="main", now=datetime(2026, 3, 10, 7, 30, tzinfo=UTC)
    )
    assert late is not None
    assert early is not None
    assert (late.quota_date, early.quota_date) == (date(2026, 3, 9), date(2026, 3, 10))
    assert (late.bucket, late.cost, late.channel) == ("shared", 1, "main")
    assert late.call_key != early.call_key
    assert manager.refuse_api_call(late.call_key) is True
    assert manager.refuse_api_call(late.call_key) is False
    assert manager.recalculate_quota().corrections == ()


def test_a_call_the_ledger_cannot_record_is_not_sent(
    make_manager: Callable[..., ScheduleManager], tmp_path: Path
) -> None:
    _write_token(tmp_path)
    broken = make_manager(database_url=f"sqlite:///{tmp_path / 'no-schema.db'}")
    with FakeYouTube() as fake:
        with pytest.raises(StorageError):
            check_token(
                "main",
                tmp_path,
                api_endpoint=fake.api_endpoint,
                token_uri=fake.token_uri,
                on_call=broken.api_call_recorder(channel="main"),
            )
        charged = fake.charged()
        kinds = [r.kind for r in fake.requests]
    assert sum(charged.values()) == 0
    assert kinds  # the token was refreshed at the fake ...
    assert "channels" not in kinds  # ... but channels.list never reached it


def test_a_call_within_limit_is_refused_when_the_quota_day_is_full(
    manager: ScheduleManager,
) -> None:
    qday = quota_date_of(manager.now())
    update = ApiCallReport(operation="videos.update", phase=CallPhase.SENDING, call_id=1)
    for _ in range(199):  # 199 x 50 = 9,950 of 10,000
        manager.record_api_call(update, channel="main", within_limit=True)
    last = manager.record_api_call(update, channel="main", schedule_id=5, within_limit=True)
    assert last is not None
    assert _used(manager, qday) == 10_000
    with pytest.raises(QuotaExceededError) as refused:
        manager.record_api_call(update, channel="main", within_limit=True)
    assert (refused.value.limit_name, refused.value.limit, refused.value.requested) == (
        "quota:shared",
        10_000,
        50,
    )
    assert _used(manager, qday) == 10_000  # nothing written
    # Without within_limit the call is counted anyway (it may already have been sent).
    manager.record_api_call(update, channel="main")
    assert _used(manager, qday) == 10_050
    assert [c.operation for c in manager.api_calls(5)] == ["videos.update"]
    assert manager.recalculate_quota().corrections == ()
