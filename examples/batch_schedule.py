"""Schedule a folder of videos, each with an optional metadata file beside it.

    python examples/batch_schedule.py videos/    # book every *.mp4 in videos/
    python examples/batch_schedule.py            # make ./sample-videos first, then book it

For ``videos/lesson-01.mp4`` the metadata is read from ``videos/lesson-01.json`` when present::

    {"type": "final", "title": "Lesson 1", "tags": ["korean"], "thumbnail_path": "lesson-01.png",
     "playlist_id": "PL123", "at": "2026-12-01T18:00:00+09:00"}

``type`` (``final`` or ``short``; default: ``short`` when the file name starts with "short",
else ``final``) and ``at`` (an exact publish time; default: the next free slot) are for this
script; every other key is :class:`~langflix_scheduler.VideoMetadata` (a relative
``thumbnail_path`` is relative to the folder). A video that already has an active schedule is
skipped, so re-running after adding files books only the new ones. One bad file does not stop the
batch: its error is printed and the exit code is 1.

The database comes from ``--database-url`` or ``LANGFLIX_SCHEDULER_DATABASE_URL`` (default:
``langflix-scheduler.db`` in the working directory), like every other setting
(``LANGFLIX_SCHEDULER_TIMEZONE``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from langflix_scheduler import (
    ScheduleManager,
    SchedulerConfig,
    SchedulerError,
    UploadStatus,
    VideoMetadata,
)

ACTIVE = [UploadStatus.SCHEDULED, UploadStatus.UPLOADING, UploadStatus.COMPLETED]


def make_sample(folder: Path) -> Path:
    """A small folder to try the script on: two finals with metadata, three shorts."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in (1, 2):
        (folder / f"lesson-{n:02d}.mp4").write_bytes(f"lesson {n}".encode().ljust(4096, b"\0"))
        (folder / f"lesson-{n:02d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        meta = {
            "type": "final",
            "title": f"Korean lesson {n}",
            "description": "Learn Korean with drama scenes.",
            "tags": ["korean", "lesson"],
            "thumbnail_path": f"lesson-{n:02d}.png",
        }
        (folder / f"lesson-{n:02d}.json").write_text(json.dumps(meta), encoding="utf-8")
    for n in (1, 2, 3):
        (folder / f"short-{n:02d}.mp4").write_bytes(f"short {n}".encode().ljust(2048, b"\0"))
    return folder


def read_sidecar(video: Path) -> tuple[str, datetime | None, VideoMetadata]:
    """The video type, exact time (or None) and metadata for ``video``."""
    sidecar = video.with_suffix(".json")
    data: dict[str, Any] = {}
    if sidecar.exists():
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    video_type = data.pop("type", "short" if video.name.startswith("short") else "final")
    at = data.pop("at", None)
    when = datetime.fromisoformat(at) if at else None
    data.setdefault("title", video.stem.replace("-", " ").replace("_", " "))
    if data.get("thumbnail_path"):
        data["thumbnail_path"] = str(video.parent / data["thumbnail_path"])
    return video_type, when, VideoMetadata.from_json(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, help="folder of *.mp4 files")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: from the environment)")
    args = parser.parse_args(argv)
    folder = args.folder or make_sample(Path("sample-videos"))
    config = SchedulerConfig.from_env(database_url=args.database_url)
    booked = skipped = failed = 0
    with ScheduleManager(config) as manager:
        manager.init_db()
        already = {
            Path(s.video_path).resolve()
            for s in manager.list_schedules(status=ACTIVE, channel=config.channel)
        }
        for video in sorted(folder.glob("*.mp4")):
            if video.resolve() in already:
                print(f"skip   {video.name}: already scheduled")
                skipped += 1
                continue
            try:
                video_type, when, meta = read_sidecar(video)
                s = manager.schedule_video(video, video_type, preferred_time=when, metadata=meta)
            except (SchedulerError, ValueError) as exc:  # bad JSON or date is a ValueError too
                print(f"error  {video.name}: {exc}", file=sys.stderr)
                failed += 1
                continue
            local = s.scheduled_publish_time.astimezone(config.zone)
            print(f"booked {video.name}: #{s.id} {s.video_type} at {local:%Y-%m-%d %H:%M %Z}")
            booked += 1
    print(f"{booked} booked, {skipped} skipped, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
