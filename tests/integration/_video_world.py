"""Shared pieces of the after-upload tests: a movable clock, a fake, the real client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.domain import Privacy, VideoMetadata
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import ApiCallReport, UploadRequest

__all__ = ["world"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class MovableClock:
    """The fake's and the client's clock; tests move it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    """A started fake, the real client on it, their clock and a media file."""

    fake: FakeYouTube
    client: YouTubeUploader
    clock: MovableClock
    media: Path
    sleeps: list[float] = field(default_factory=list)

    def uploader(self, **kwargs: Any) -> YouTubeUploader:
        """Another real client on the same fake."""
        options: dict[str, Any] = {
            "api_endpoint": self.fake.api_endpoint,
            "clock": self.clock,
            "sleep": self.sleeps.append,
            "retry_initial_delay": 0.001,
            "retry_max_delay": 0.01,
        }
        options.update(kwargs)
        credentials = options.pop("credentials", None) or Credentials(token="test-token")
        return YouTubeUploader(credentials, **options)

    def upload(
        self,
        title: str = "A lesson",
        *,
        publish_at: datetime | None = None,
        privacy: Privacy = Privacy.PUBLIC,
    ) -> str:
        """Upload the media file with the real client; returns the video id."""
        request = UploadRequest(
            video_path=str(self.media),
            metadata=VideoMetadata(title=title, privacy=privacy),
            publish_at=publish_at,
        )
        return self.client.upload(request).video_id


class Calls:
    """An ``on_call`` that records each report together with how many requests of that
    operation the fake had received at that moment (so "reported before sent" is provable)."""

    def __init__(self, fake: FakeYouTube) -> None:
        self.fake = fake
        self.reports: list[ApiCallReport] = []
        self.seen_by_fake: list[int] = []

    def __call__(self, report: ApiCallReport) -> None:
        self.reports.append(report)
        self.seen_by_fake.append(self.fake.calls_of(report.operation))

    def log(self) -> list[tuple[str, str]]:
        return [(r.operation, r.phase.value) for r in self.reports]


def make_world(tmp_path: Path, **fake_options: Any) -> Iterator[World]:
    clock = MovableClock()
    media = tmp_path / "lesson.mp4"
    media.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    with FakeYouTube(clock=clock, **fake_options) as fake:
        world = World(fake=fake, client=None, clock=clock, media=media)  # type: ignore[arg-type]
        world.client = world.uploader()
        try:
            yield world
        finally:
            world.client.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fake (processing instantaneous) and the real client, on a clock at :data:`NOW`."""
    yield from make_world(tmp_path)
