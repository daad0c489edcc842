"""Two channels sharing one Google Cloud project's API quota.

    python examples/multi_channel.py [--database-url URL]

YouTube counts quota per Cloud project, not per channel: every channel authorised through the same
OAuth client spends the same daily buckets. Here channels ``korean`` (Asia/Seoul) and ``japanese``
(Asia/Tokyo) share project ``langflix-multi``, whose ``videos.insert`` bucket allows 6 uploads a
Pacific-time day (a tight custom policy so the sharing shows; the real default is 100). Each channel
has its own daily limits and calendar, but both reserve from the one project quota, so once the
first channel has taken a quota day the second channel's videos move to the next one.

Then each channel is uploaded by its own processor with its own credentials (a processor uploads
one channel's videos with that channel's token), both talking to one FakeYouTube that plays the
project and counts its quota. A simulated clock jumps to each due time, so this finishes at once.

Settings come from ``--database-url`` and the ``LANGFLIX_SCHEDULER_*`` environment variables.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from google.oauth2.credentials import Credentials

from langflix_scheduler import (
    QuotaPolicy,
    ScheduleManager,
    SchedulerConfig,
    UploadProcessor,
    VideoMetadata,
)
from langflix_scheduler.quota import quota_date_of
from langflix_scheduler.testing import FakeClock, FakeYouTube
from langflix_scheduler.youtube.google import YouTubeUploader

PROJECT = "langflix-multi"
CHANNELS = {"korean": "Asia/Seoul", "japanese": "Asia/Tokyo"}
POLICY = QuotaPolicy(
    name="six-uploads-a-day",
    buckets={"uploads": 6, "shared": 10_000},
    costs={
        "videos.insert": ("uploads", 1),
        "thumbnails.set": ("shared", 50),
        "playlistItems.insert": ("shared", 50),
        # The processor checks uploaded videos (processing, publish confirmation).
        "videos.list": ("shared", 1),
    },
)
VIDEOS_PER_CHANNEL = 6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Two channels, one API project's quota.")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: from the environment)")
    args = parser.parse_args(argv)
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    managers = {
        channel: ScheduleManager(
            SchedulerConfig.from_env(
                database_url=args.database_url,
                channel=channel,
                timezone=tz,
                api_project=PROJECT,
                quota_policy=POLICY,
            ),
            clock=clock,
        )
        for channel, tz in CHANNELS.items()
    }
    out = Path("multi-channel-videos")
    out.mkdir(exist_ok=True)
    booked: dict[int, str] = {}
    try:
        next(iter(managers.values())).init_db()
        # The two channels book alternately, as two producers would.
        for n in range(1, VIDEOS_PER_CHANNEL + 1):
            for channel, manager in managers.items():
                video = out / f"{channel}-{n:02d}.mp4"
                video.write_bytes(bytes([n]) * 300_000)
                s = manager.schedule_video(
                    video, "short", metadata=VideoMetadata(title=f"{channel} short {n}")
                )
                booked[s.id] = channel
                local = s.scheduled_publish_time.astimezone(manager.config.zone)
                print(
                    f"{channel:9} #{s.id:<3} {local:%a %m-%d %H:%M %Z}  "
                    f"quota day (PT) {s.quota_date}"
                )
        shared_days = Counter(managers[ch].get(sid).quota_date for sid, ch in booked.items())
        for day, n in sorted(shared_days.items()):
            print(f"project {PROJECT}: {n} upload(s) reserved on PT day {day} (limit 6)")

        with FakeYouTube(clock=clock, quota_policy=POLICY) as youtube:
            processors = [
                UploadProcessor(
                    manager,
                    YouTubeUploader(
                        Credentials(token=f"token-of-{channel}"),  # the channel's own token
                        api_endpoint=youtube.api_endpoint,
                        clock=clock,
                    ),
                    channels=[channel],
                    worker_id=f"processor-{channel}",
                )
                for channel, manager in managers.items()
            ]
            manager = managers["korean"]
            lead = manager.config.upload_lead_time
            for _ in range(100):
                pending = [s for s in manager.list_schedules(status="scheduled") if s.id in booked]
                if not pending:
                    break
                clock.set(max(clock(), min(s.scheduled_publish_time - lead for s in pending)))
                for processor in processors:
                    processor.run_once()
            for processor in processors:
                processor.close()
            uploaded = [s for s in manager.list_schedules(status="completed") if s.id in booked]
            for channel in CHANNELS:
                n = sum(1 for s in uploaded if booked[s.id] == channel)
                print(f"{channel}: {n} of {VIDEOS_PER_CHANNEL} uploaded")
            days = sorted({quota_date_of(v.created_at) for v in youtube.videos.values()})
            for day in days:
                print(
                    f"FakeYouTube: project used {youtube.quota_used('uploads', day)} of 6 "
                    f"uploads on PT day {day}"
                )
    finally:
        for m in managers.values():
            m.close()
    return 0 if len(uploaded) == len(booked) else 1


if __name__ == "__main__":
    sys.exit(main())
