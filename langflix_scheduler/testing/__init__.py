"""Test helpers for users of langflix-scheduler: a loopback fake of the YouTube Data API and a
controllable clock.

See :mod:`langflix_scheduler.testing.fake_youtube` for the protocol the fake speaks, the faults it
can inject and what it records.
"""

from .clock import FakeClock
from .fake_youtube import FakeSession, FakeVideo, FakeYouTube, RecordedRequest
from .memory_videos import MemoryVideoClient

__all__ = [
    "FakeClock",
    "FakeSession",
    "FakeVideo",
    "FakeYouTube",
    "MemoryVideoClient",
    "RecordedRequest",
]
