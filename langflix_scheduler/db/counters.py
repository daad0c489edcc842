"""Counter rows: which ``youtube_daily_limits`` column counts each video type."""

from __future__ import annotations

from types import MappingProxyType

from ..domain import VideoType

__all__ = ["COUNT_COLUMN", "count_column"]

#: The day-count column of each video type.
COUNT_COLUMN = MappingProxyType({VideoType.FINAL: "final_count", VideoType.SHORT: "short_count"})


def count_column(video_type: VideoType | str) -> str:
    """The ``youtube_daily_limits`` column that counts ``video_type``."""
    return COUNT_COLUMN[VideoType(video_type)]
