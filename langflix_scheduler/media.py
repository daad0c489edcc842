"""What YouTube will make of a video file: a Short or a regular video.

YouTube has no "Short" flag in its API: since 2024-10-15 it treats an upload as a Short when its
frame, as displayed, is square or taller and it is at most 180 seconds long (see
``YOUTUBE_FACTS.md``). So the only way to know before uploading is to read the file.

Duration and frame size are read from the container headers (MP4, MOV, WebM/Matroska, ...) by
MediaInfo through ``pymediainfo``, whose wheels bundle the MediaInfo library: nothing is decoded,
no external program is run. A rotation flag (a phone video stored landscape with "rotate 90") and
a non-square pixel aspect ratio are applied, as a player would.

A file whose container cannot be read (not a video, truncated, or MediaInfo unavailable on this
platform) is NOT refused: the check is skipped with a warning saying why, and the booking goes on
as the caller asked. Only a file that was read and measured can be refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .domain import VideoType
from .errors import NotAShortError

__all__ = ["SHORT_MAX_SECONDS", "MediaUnreadableError", "VideoFormat", "check_video_type", "probe"]

logger = logging.getLogger(__name__)

#: YouTube's longest Short, in seconds (since 2024-10-15).
SHORT_MAX_SECONDS = 180.0


class MediaUnreadableError(Exception):
    """The container could not be read; ``reason`` says why. Internal to the booking check,
    which turns it into a warning."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, kw_only=True)
class VideoFormat:
    """Duration and displayed frame size of a video file, as read from its container.

    Attributes:
        duration_seconds: the duration.
        width: displayed width in pixels (after rotation and pixel aspect ratio).
        height: displayed height in pixels.
        rotation: the container's rotation flag in degrees (0, 90, 180, 270).
    """

    duration_seconds: float
    width: int
    height: int
    rotation: int = 0

    @property
    def is_short(self) -> bool:
        """True when YouTube would treat the upload as a Short."""
        return self.height >= self.width and self.duration_seconds <= SHORT_MAX_SECONDS

    def not_short_reason(self) -> str:
        """Why YouTube would not treat it as a Short ("" when it would)."""
        reasons = []
        if self.height < self.width:
            reasons.append("wider than square")
        if self.duration_seconds > SHORT_MAX_SECONDS:
            reasons.append(f"longer than {SHORT_MAX_SECONDS:.0f} s")
        return " and ".join(reasons)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _parse(path: str) -> Any:
    try:
        from pymediainfo import MediaInfo
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MediaUnreadableError(f"pymediainfo is not installed ({exc})") from exc
    try:
        return MediaInfo.parse(path)
    except OSError as exc:
        # Also raised when the MediaInfo library cannot be loaded (no wheel for the platform).
        raise MediaUnreadableError(f"MediaInfo could not read it ({exc})") from exc
    except (RuntimeError, ValueError) as exc:  # pragma: no cover - defensive
        raise MediaUnreadableError(f"MediaInfo failed ({exc})") from exc


def probe(path: str) -> VideoFormat:
    """Read the duration and displayed frame size of the first video track of ``path``.

    Raises:
        MediaUnreadableError: the container could not be read or has no measurable video track.
    """
    info = _parse(path)
    general = next((t for t in info.tracks if t.track_type == "General"), None)
    video = next((t for t in info.tracks if t.track_type == "Video"), None)
    if video is None:
        kind = getattr(general, "format", None)
        what = f"a {kind} file without a video track" if kind else "not a video container"
        raise MediaUnreadableError(f"{what} that MediaInfo can read")
    width, height = _number(video.width), _number(video.height)
    duration_ms = _number(video.duration) or _number(getattr(general, "duration", None))
    if not width or not height or duration_ms is None:
        raise MediaUnreadableError("the container does not state the frame size and duration")
    width *= _number(video.pixel_aspect_ratio) or 1.0
    rotation = round(_number(video.rotation) or 0.0) % 360
    if rotation in (90, 270):
        width, height = height, width
    return VideoFormat(
        duration_seconds=duration_ms / 1000.0,
        width=round(width),
        height=round(height),
        rotation=rotation,
    )


def check_video_type(path: str, video_type: VideoType) -> None:
    """The booking check: refuse a ``short`` YouTube would not treat as a Short; warn when a
    ``final`` would become a Short; warn (and go on) when the file cannot be read.

    Raises:
        NotAShortError: ``video_type`` is ``short`` and the measured file is wider than square
            or longer than 180 s.
    """
    try:
        fmt = probe(path)
    except MediaUnreadableError as exc:
        logger.warning(
            "%s: could not check whether YouTube will treat it as a Short (%s); booking it as "
            "'%s' as asked",
            path,
            exc.reason,
            video_type.value,
        )
        return
    if video_type is VideoType.SHORT and not fmt.is_short:
        raise NotAShortError(
            duration_seconds=fmt.duration_seconds,
            width=fmt.width,
            height=fmt.height,
            reason=fmt.not_short_reason(),
        )
    if video_type is VideoType.FINAL and fmt.is_short:
        logger.warning(
            "%s: booked as 'final' but YouTube will publish it as a Short (%.2f s, %dx%d: square "
            "or vertical and at most %.0f s)",
            path,
            fmt.duration_seconds,
            fmt.width,
            fmt.height,
            SHORT_MAX_SECONDS,
        )
