"""Quickstart: book publish slots with the library.

    python examples/quickstart.py

Uses ``LANGFLIX_SCHEDULER_DATABASE_URL`` (default: ``langflix-scheduler.db`` here) and writes two
placeholder videos into ``./out``. Run it twice: the second run books the next free slots.
"""

from pathlib import Path

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoMetadata

config = SchedulerConfig.from_env(timezone="Asia/Seoul")  # env vars, then these overrides
out = Path("out")
out.mkdir(exist_ok=True)
for name in ("episode-12.mp4", "short-3.mp4"):
    if not (out / name).exists():  # stand-ins for your rendered videos (distinct content)
        (out / name).write_bytes(name.encode().ljust(1024, b"\0"))

with ScheduleManager(config) as manager:
    manager.init_db()  # Alembic upgrade head; idempotent
    meta = VideoMetadata(title="Korean with dramas #12", tags=("korean", "learn"))
    final = manager.schedule_video(out / "episode-12.mp4", "final", metadata=meta)
    short = manager.schedule_video(out / "short-3.mp4", "short")
    for video in (final, short):
        when = video.scheduled_publish_time.astimezone(config.zone)
        print(f"booked #{video.id} {video.video_type} for {when:%Y-%m-%d %H:%M %Z}")
    day = manager.check_daily_quota(final.publish_date)
    print(f"{final.publish_date}: finals {day.types['final'].used}/{day.types['final'].limit}")
    print("next free final slot:", manager.get_next_available_slot("final").isoformat())
