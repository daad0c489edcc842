"""What to do with a schedule the processor is giving up on (attempts spent, or a permanent
failure): a pure decision, no I/O.

A schedule that ever opened a resumable upload session may be on YouTube even though no video id
was recorded (the insert completed while the database was unreachable). Its session is asked
first (:class:`~langflix_scheduler.youtube.uploader.SessionProber`), and the answer decides:

======================================  ===========================================================
known video id, or session completed    ``complete``: the video exists; record it with its id
no session ever stored                  ``fail``: nothing can be on YouTube
session incomplete (server has less)    ``fail``: the server confirms the video is not on YouTube
session gone, unreachable, no prober    ``review``: unknown; keep slot and quota, never re-upload
======================================  ===========================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .youtube.uploader import SessionProbe, SessionState

__all__ = ["GiveUp", "Verdict", "decide_give_up"]


class Verdict(enum.Enum):
    """The terminal state a given-up schedule goes to."""

    COMPLETE = "complete"
    FAIL = "fail"
    REVIEW = "review"


@dataclass(frozen=True, kw_only=True)
class GiveUp:
    """A decision: the verdict, the video id for ``COMPLETE``, and why (for ``last_error``)."""

    verdict: Verdict
    video_id: str | None = None
    why: str = ""


def decide_give_up(
    *,
    video_id: str | None,
    session_uri: str | None,
    probe: SessionProbe | None,
    probe_error: str | None = None,
) -> GiveUp:
    """Decide what a schedule that is being given up becomes.

    Args:
        video_id: the video id already recorded on the row, if any.
        session_uri: the resumable session the row stores, if any.
        probe: the session's answer; ``None`` when it was not asked (no prober, or it failed).
        probe_error: why asking failed (``None``: there is no prober).
    """
    if video_id is not None:
        return GiveUp(verdict=Verdict.COMPLETE, video_id=video_id)
    if session_uri is None:
        return GiveUp(verdict=Verdict.FAIL)
    if probe is None:
        why = (
            f"its upload session could not be asked ({probe_error})"
            if probe_error is not None
            else "the uploader cannot ask its upload session"
        )
        return GiveUp(verdict=Verdict.REVIEW, why=why)
    if probe.state is SessionState.COMPLETED:
        return GiveUp(
            verdict=Verdict.COMPLETE,
            video_id=probe.video_id,
            why="its upload session had completed",
        )
    if probe.state is SessionState.INCOMPLETE:
        return GiveUp(
            verdict=Verdict.FAIL,
            why=f"its upload session holds {probe.offset} bytes: the video is not on YouTube",
        )
    return GiveUp(verdict=Verdict.REVIEW, why="its upload session expired or is unknown")
