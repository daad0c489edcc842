"""A separate OS process that uploads to a FakeYouTube: used by the multi-process resume tests.

Run as a script (``python youtube_helpers.py ...``). Modes:

* ``crash``: start an upload, store every reported session URI and offset in ``--state`` (atomic
  rename, like a database row), and die with ``os._exit`` (no cleanup, as in a crash) the first
  time the confirmed offset reaches ``--crash-after`` bytes.
* ``resume``: read ``--state`` and upload again with the stored session URI; write the result
  and every progress report to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime, timedelta

from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import VideoMetadata
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import UploadRequest

CRASH_EXIT_CODE = 17
PUBLISH_AT = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


def _write_json(path: str, payload: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["crash", "resume"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--out", default="")
    parser.add_argument("--crash-after", type=int, default=0)
    parser.add_argument("--chunk-size", type=int, default=256 * 1024)
    args = parser.parse_args(argv)

    uploader = YouTubeUploader(
        Credentials(token="subprocess-token"),
        api_endpoint=args.endpoint,
        chunk_size=args.chunk_size,
        sleep=lambda _s: None,
        clock=lambda: PUBLISH_AT - timedelta(days=1),
    )
    metadata = VideoMetadata(title="multi-process upload", description="resumed elsewhere")
    if args.mode == "crash":

        def crash_progress(sent: int, total: int, session_uri: str | None) -> None:
            _write_json(args.state, {"session_uri": session_uri, "offset": sent, "total": total})
            if sent >= args.crash_after:
                os._exit(CRASH_EXIT_CODE)

        request = UploadRequest(video_path=args.video, metadata=metadata, publish_at=PUBLISH_AT)
        uploader.upload(request, progress=crash_progress)
        return 3  # the crash never happened

    with open(args.state, encoding="utf-8") as fh:
        state = json.load(fh)
    reports: list[list[object]] = []
    request = UploadRequest(
        video_path=args.video,
        metadata=metadata,
        publish_at=PUBLISH_AT,
        session_uri=state["session_uri"],
    )
    result = uploader.upload(
        request, progress=lambda sent, total, uri: reports.append([sent, total, uri])
    )
    _write_json(
        args.out,
        {
            "video_id": result.video_id,
            "operations": list(result.operations),
            "bytes_sent": result.bytes_sent,
            "progress": reports,
            "pid": os.getpid(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
