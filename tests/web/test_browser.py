"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Opens the calendar, finds the booked videos in their local slots, reschedules one by clicking a
free slot, cancels another, watches the quota bars change, and saves a screenshot of each page
under the test's temporary directory. Skipped (with the reason) when Chromium or Playwright is
missing, except with ``LANGFLIX_REQUIRE_BROWSER=1`` (CI), which fails instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.domain import UploadStatus, VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.web.serve import build_server

REQUIRE = os.environ.get("LANGFLIX_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Monday 2026-05-04, 09:00 in Seoul.
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if REQUIRE:
        pytest.fail(f"{reason} (LANGFLIX_REQUIRE_BROWSER=1 requires the browser test)")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    _need(CHROMIUM is not None, "Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "Playwright for Python is not installed (pip install playwright)")
        raise
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ScheduleManager]]:
    clock = FakeClock(T0)
    manager = ScheduleManager(
        SchedulerConfig(database_url=f"sqlite:///{tmp_path / 'web.db'}", timezone="Asia/Seoul"),
        clock=clock,
    )
    manager.init_db()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = build_server(manager, port=port, log_level="warning", secret="browser-test")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", manager
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        manager.close()


def _reserved(page: Any, day: str) -> int:
    rows = page.locator(f'table.quota tr[data-day="{day}"] td.qcell')
    return sum(int(rows.nth(i).get_attribute("data-reserved")) for i in range(rows.count()))


def test_calendar_reschedule_cancel_and_quota_in_a_browser(
    browser: Any,
    served: tuple[str, ScheduleManager],
    video_file: Callable[..., Path],
    tmp_path: Path,
) -> None:
    base, manager = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    a, b, c = (
        manager.schedule_video(
            str(video_file()), VideoType.FINAL, metadata={"title": f"Lesson {n}"}
        )
        for n in ("A", "B", "C")
    )
    manager.schedule_video(str(video_file()), VideoType.SHORT, metadata={"title": "Short S"})
    page = browser.new_page(viewport={"width": 1400, "height": 900})

    # The calendar shows each video in its local slot (Seoul: finals at 10:00 and 18:00).
    page.goto(f"{base}/calendar?view=week&date=2026-05-04")
    expected = {
        a.id: ("2026-05-04", "10:00"),
        b.id: ("2026-05-04", "18:00"),
        c.id: ("2026-05-05", "10:00"),
    }
    for sid, (day, hm) in expected.items():
        link = page.locator(f'td[data-date="{day}"] div.slot[data-local="{hm}"] a[data-id="{sid}"]')
        assert link.count() == 1, (sid, day, hm)
        assert "st-scheduled" in link.get_attribute("class")
    assert page.locator("div.slot.free").count() == 7 * 7 - 4
    page.screenshot(path=str(shots / "calendar-week.png"), full_page=True)
    page.goto(f"{base}/calendar?view=month&date=2026-05-04")
    assert page.locator(f'a[data-id="{a.id}"]').count() == 1
    page.screenshot(path=str(shots / "calendar-month.png"), full_page=True)

    page.goto(f"{base}/quota")
    old_a = _reserved(page, a.quota_date.isoformat())
    old_b = _reserved(page, b.quota_date.isoformat())
    assert old_a > 0
    assert old_b > 0
    page.screenshot(path=str(shots / "quota-before.png"), full_page=True)

    # Reschedule A by clicking a free slot: Wednesday 18:00 Seoul.
    page.goto(f"{base}/schedules/{a.id}")
    page.click("#move")
    page.wait_for_selector("#moving")
    page.screenshot(path=str(shots / "calendar-move.png"), full_page=True)
    target = page.locator(
        'td[data-date="2026-05-06"] div.slot[data-local="18:00"] form.pick button'
    )
    target.click()
    page.wait_for_selector("p.msg.ok")
    assert "Rescheduled" in page.inner_text("p.msg.ok")
    assert "2026-05-06 18:00 KST" in page.inner_text("dl.details")
    page.screenshot(path=str(shots / "schedule-rescheduled.png"), full_page=True)
    moved = manager.get(a.id)
    assert moved.scheduled_publish_time == datetime(2026, 5, 6, 9, 0, tzinfo=UTC)

    # Cancel B.
    page.goto(f"{base}/schedules/{b.id}")
    page.click("#cancel")
    page.wait_for_selector("p.msg.ok")
    assert "Cancelled" in page.inner_text("p.msg.ok")
    page.screenshot(path=str(shots / "schedule-cancelled.png"), full_page=True)
    assert manager.get(b.id).status is UploadStatus.CANCELLED

    # The calendar and the quota bars show both changes.
    page.goto(f"{base}/calendar?view=week&date=2026-05-04")
    assert page.locator(f'a[data-id="{b.id}"]').count() == 0
    assert (
        page.locator(
            f'td[data-date="2026-05-06"] div.slot[data-local="18:00"] a[data-id="{a.id}"]'
        ).count()
        == 1
    )
    page.screenshot(path=str(shots / "calendar-after.png"), full_page=True)
    page.goto(f"{base}/quota")
    cost = sum(a.reserved_quota.values())
    if a.quota_date != moved.quota_date:
        assert _reserved(page, a.quota_date.isoformat()) == old_a - cost
    assert _reserved(page, b.quota_date.isoformat()) < old_b
    bar = page.locator(f'table.quota tr[data-day="{moved.quota_date.isoformat()}"] rect.reserved')
    assert any(float(bar.nth(i).get_attribute("width")) > 0 for i in range(bar.count()))
    page.screenshot(path=str(shots / "quota-after.png"), full_page=True)

    for name in ("attention", "runs"):
        page.goto(f"{base}/{name}")
        assert page.locator("h1").count() == 1
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    # Reading works with JavaScript off (the dashboard ships no script at all).
    no_js = browser.new_context(java_script_enabled=False).new_page()
    no_js.goto(f"{base}/calendar?view=week&date=2026-05-04")
    assert no_js.locator(f'a[data-id="{c.id}"]').count() == 1
    saved = sorted(p.name for p in shots.iterdir())
    assert len(saved) == 10, saved
    assert all((shots / n).stat().st_size > 1000 for n in saved)
