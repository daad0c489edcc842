"""Times the library writes into human text are shown in the channel's time by the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from langflix_scheduler.cli._render import localize_instants, timeline_table
from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.reports import TimelineEvent

SEOUL = ZoneInfo("Asia/Seoul")


def _seoul(when: datetime) -> str:
    return when.astimezone(SEOUL).strftime("%m-%d %H:%M %Z")


def test_every_utc_instant_in_a_text_is_shown_in_local_time() -> None:
    text = (
        "YouTube answered 503; next attempt at 2025-11-03 00:00:20 UTC "
        "(was 2025-11-02T23:59:59.5+00:00), booked 2025-11-01"
    )
    assert localize_instants(text, _seoul) == (
        "YouTube answered 503; next attempt at 11-03 09:00 KST (was 11-03 08:59 KST), "
        "booked 2025-11-01"  # a date alone is not an instant: left as it is
    )


def test_text_without_instants_is_unchanged() -> None:
    assert localize_instants("attempt 2 (resuming)", _seoul) == "attempt 2 (resuming)"


def test_the_show_timeline_renders_details_in_the_channel_zone() -> None:
    config = SchedulerConfig(database_url="sqlite://", timezone="Asia/Seoul")
    event = TimelineEvent(
        at=datetime(2025, 11, 2, 12, 0, tzinfo=UTC),
        kind="booked",
        actor="cli",
        detail="publish at 2025-11-03 01:00:00 UTC",
    )
    table = timeline_table([event], config)
    detail = next(iter(table.columns[3].cells))
    assert detail == "publish at 2025-11-03 10:00 KST"
