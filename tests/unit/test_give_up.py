"""What a schedule that is being given up becomes, given what its upload session answered."""

from __future__ import annotations

import pytest

from langflix_scheduler._give_up import Verdict, decide_give_up
from langflix_scheduler.youtube.uploader import SessionProbe, SessionState

URI = "https://upload.example/session/1"
COMPLETED = SessionProbe(state=SessionState.COMPLETED, video_id="vid-1")
INCOMPLETE = SessionProbe(state=SessionState.INCOMPLETE, offset=4096)
GONE = SessionProbe(state=SessionState.GONE)


@pytest.mark.parametrize(
    ("video_id", "session_uri", "probe", "probe_error", "verdict", "found_id"),
    [
        ("vid-0", URI, None, None, Verdict.COMPLETE, "vid-0"),  # already known: never asked
        ("vid-0", None, None, None, Verdict.COMPLETE, "vid-0"),
        (None, None, None, None, Verdict.FAIL, None),  # no session: nothing can be uploaded
        (None, URI, COMPLETED, None, Verdict.COMPLETE, "vid-1"),
        (None, URI, INCOMPLETE, None, Verdict.FAIL, None),
        (None, URI, GONE, None, Verdict.REVIEW, None),
        (None, URI, None, "TransientUploadError: timed out", Verdict.REVIEW, None),
        (None, URI, None, None, Verdict.REVIEW, None),  # no prober
    ],
    ids=[
        "known-id",
        "known-id-no-session",
        "no-session",
        "completed",
        "incomplete",
        "gone",
        "unreachable",
        "no-prober",
    ],
)
def test_decision_table(
    video_id: str | None,
    session_uri: str | None,
    probe: SessionProbe | None,
    probe_error: str | None,
    verdict: Verdict,
    found_id: str | None,
) -> None:
    decision = decide_give_up(
        video_id=video_id, session_uri=session_uri, probe=probe, probe_error=probe_error
    )
    assert decision.verdict is verdict
    assert decision.video_id == found_id


def test_reasons_say_what_happened() -> None:
    assert "4096 bytes" in decide_give_up(video_id=None, session_uri=URI, probe=INCOMPLETE).why
    unreachable = decide_give_up(video_id=None, session_uri=URI, probe=None, probe_error="boom")
    assert "could not be asked (boom)" in unreachable.why
    assert "cannot ask" in decide_give_up(video_id=None, session_uri=URI, probe=None).why
    assert "expired" in decide_give_up(video_id=None, session_uri=URI, probe=GONE).why


def test_a_completed_probe_must_carry_its_video_id() -> None:
    with pytest.raises(ValueError, match="video id"):
        SessionProbe(state=SessionState.COMPLETED)
    with pytest.raises(ValueError, match="video id"):
        SessionProbe(state=SessionState.GONE, video_id="x")
