"""Fixtures and helpers for the YouTube tests (imported explicitly by the test modules)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.google import YouTubeUploader
from langflix_scheduler.youtube.uploader import DryRunUploader, Uploader, UploadStep

# Star-imported by the test modules: only the fixtures (helpers are imported by name).
__all__ = ["backend", "close_uploaders", "thumbnail", "youtube_fake", "youtube_video"]

#: A fixed "now" for every YouTube test: Monday 2026-11-23 12:00 UTC (04:00 in Los Angeles).
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CHUNK = 256 * 1024
FIVE_MB = 5 * 1000 * 1000


def fixed_clock() -> datetime:
    """The tests' clock."""
    return NOW


@dataclass
class Recorder:
    """Collects progress and step callbacks, plus what the fake had seen at each progress call."""

    fake: FakeYouTube | None = None
    progress: list[tuple[int, int, str | None]] = field(default_factory=list)
    chunks_at_progress: list[int] = field(default_factory=list)
    steps: list[tuple[UploadStep, str]] = field(default_factory=list)

    def on_progress(self, sent: int, total: int, session_uri: str | None) -> None:
        self.progress.append((sent, total, session_uri))
        self.chunks_at_progress.append(self.fake.chunks_received if self.fake else -1)

    def on_step(self, step: UploadStep, video_id: str) -> None:
        self.steps.append((step, video_id))


@dataclass
class Backend:
    """An uploader under test, and the fake behind it (``None`` for the dry run)."""

    name: str
    uploader: Uploader
    fake: FakeYouTube | None
    sleeps: list[float]

    def recorder(self) -> Recorder:
        return Recorder(fake=self.fake)


def make_file(directory: Path, name: str, size: int, *, seed: int = 0) -> Path:
    """A file of ``size`` deterministic pseudo-random bytes."""
    path = directory / name
    block = hashlib.sha256(f"{seed}".encode()).digest() * 4096
    with open(path, "wb") as fh:
        written = 0
        counter = 0
        while written < size:
            piece = hashlib.sha256(block + counter.to_bytes(8, "big")).digest() + block
            piece = piece[: size - written]
            fh.write(piece)
            written += len(piece)
            counter += 1
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def token_credentials(token: str = "test-token") -> Credentials:
    """Credentials with an access token and no way to refresh it."""
    return Credentials(token=token)


_OPEN_UPLOADERS: list[YouTubeUploader] = []


@pytest.fixture(autouse=True)
def close_uploaders() -> Iterator[None]:
    """Close the connections of every uploader a test made with :func:`real_uploader`."""
    yield
    while _OPEN_UPLOADERS:
        _OPEN_UPLOADERS.pop().close()


def real_uploader(fake: FakeYouTube, sleeps: list[float] | None = None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "api_endpoint": fake.api_endpoint,
        "chunk_size": CHUNK,
        "clock": fixed_clock,
        "sleep": (sleeps.append if sleeps is not None else lambda _s: None),
        "retry_initial_delay": 0.001,
        "retry_max_delay": 0.01,
    }
    options.update(kwargs)
    credentials = options.pop("credentials", None) or token_credentials()
    uploader = YouTubeUploader(credentials, **options)
    _OPEN_UPLOADERS.append(uploader)
    return uploader


@pytest.fixture
def youtube_fake() -> Iterator[FakeYouTube]:
    """A started :class:`FakeYouTube` using the tests' fixed clock."""
    with FakeYouTube(clock=fixed_clock) as fake:
        yield fake


@pytest.fixture
def youtube_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``youtube_video(size=..., name=...)`` writes a media file."""

    def make(size: int = FIVE_MB, name: str = "video.mp4", seed: int = 0) -> Path:
        return make_file(tmp_path, name, size, seed=seed)

    return make


@pytest.fixture
def thumbnail(tmp_path: Path) -> Path:
    path = tmp_path / "thumb.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    return path


@pytest.fixture(params=["google", "dryrun"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The real uploader against the fake, or the dry run: for contract tests."""
    sleeps: list[float] = []
    if request.param == "dryrun":
        yield Backend("dryrun", DryRunUploader(clock=fixed_clock, chunk_size=CHUNK), None, sleeps)
        return
    with FakeYouTube(clock=fixed_clock) as fake:
        yield Backend("google", real_uploader(fake, sleeps), fake, sleeps)
