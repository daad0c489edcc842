"""Regenerate the dashboard screenshots in docs/ (README): a demo database, the app served on
loopback, headless Chromium (Debian's ``chromium``) driven by Playwright.

    python scripts/screenshot_web.py [--out docs]

Needs the ``[web]`` and ``[dev]`` extras and ``chromium`` on PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.domain import VideoType
from langflix_scheduler.manager import ScheduleManager
from langflix_scheduler.testing.clock import FakeClock
from langflix_scheduler.web.serve import build_server

# Monday 2026-05-04, 09:00 in Seoul.
T0 = datetime(2026, 5, 4, 0, 0, tzinfo=UTC)
TITLES = [
    "Listening drill: at the cafe",
    "Phrasal verbs in 5 minutes",
    "Shadowing practice: weather report",
    "Honorifics explained",
    "Vocabulary sprint: travel",
    "Grammar: contrast endings",
    "Minimal pairs: vowels",
    "Numbers in real life",
    "Listening: subway announcements",
    "Idioms about eyes",
]


def demo(tmp: Path) -> ScheduleManager:
    url = f"sqlite:///{tmp / 'demo.db'}"
    manager = ScheduleManager(
        SchedulerConfig(database_url=url, timezone="Asia/Seoul", channel="langflix-ko"),
        clock=FakeClock(T0),
    )
    manager.init_db()
    booked = []
    for i in range(16):
        path = tmp / f"video{i}.mp4"
        path.write_bytes(os.urandom(4096))
        vtype = VideoType.SHORT if i % 3 == 2 else VideoType.FINAL
        title = TITLES[i % len(TITLES)] + ("" if i < len(TITLES) else " (part 2)")
        booked.append(manager.schedule_video(path, vtype, metadata={"title": title}))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE youtube_schedules SET upload_status = 'uploading', bytes_uploaded = 620, "
                "bytes_total = 1000, lease_owner = 'demo#1', lease_expires_at = :t WHERE id = :i"
            ),
            {"t": (T0 + timedelta(hours=1)).replace(tzinfo=None), "i": booked[0].id},
        )
        conn.execute(
            text(
                "UPDATE youtube_schedules SET upload_status = 'completed', "
                "youtube_video_id = 'dQw4w9WgXcQ' WHERE id = :i"
            ),
            {"i": booked[1].id},
        )
        conn.execute(
            text(
                "UPDATE youtube_schedules SET upload_status = 'failed', slot_key = NULL, "
                "fingerprint_key = NULL, attempts = 5, last_error = 'invalidTitle' WHERE id = :i"
            ),
            {"i": booked[4].id},
        )
        conn.execute(
            text(
                "UPDATE youtube_schedules SET upload_status = 'needs_review', "
                "last_error = 'connection lost after the upload finished' WHERE id = :i"
            ),
            {"i": booked[6].id},
        )
    engine.dispose()
    manager.recalculate_quota()
    return manager


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        manager = demo(Path(tmp))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = build_server(manager, port=port, log_level="warning")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 560})
                page.goto(f"{base}/calendar?view=week&date=2026-05-04&channel=langflix-ko")
                page.screenshot(path=str(args.out / "web-calendar.png"))
                page.set_viewport_size({"width": 1280, "height": 760})
                page.goto(f"{base}/quota")
                page.screenshot(path=str(args.out / "web-quota.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            manager.close()
    print("wrote", args.out / "web-calendar.png", "and", args.out / "web-quota.png")


if __name__ == "__main__":
    main()
