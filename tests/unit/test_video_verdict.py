"""The pure verdict of a check on YouTube (processor/verdict.py): one table row per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from langflix_scheduler.domain import VideoState
from langflix_scheduler.processor.verdict import (
    CHECK_BACKOFF,
    MAX_CHECKS,
    MISSING_CHECKS,
    MISSING_RECHECK,
    PROBLEM_RECHECK,
    PUBLISH_GRACE,
    VideoPlan,
    decide_check,
    first_check_at,
    plan_of,
)
from langflix_scheduler.youtube.videos import RemoteVideo

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
PUBLISH = NOW + timedelta(hours=3)
SCHEDULED = VideoPlan(privacy="public", publish_time=PUBLISH, publish_at_sent=True)
AT_ONCE = VideoPlan(privacy="public", publish_time=NOW, publish_at_sent=False)
UNLISTED = VideoPlan(privacy="unlisted", publish_time=PUBLISH, publish_at_sent=False)
PRIVATE = VideoPlan(privacy="private", publish_time=PUBLISH, publish_at_sent=False)
AFTER = PUBLISH + PUBLISH_GRACE
JUST_AFTER = PUBLISH + PUBLISH_GRACE / 2


def video(**kw: Any) -> RemoteVideo:
    values: dict[str, Any] = {
        "video_id": "v1",
        "upload_status": "processed",
        "processing_status": "succeeded",
        "privacy_status": "private",
        "publish_at": PUBLISH,
    }
    values.update(kw)
    return RemoteVideo(**values)


# (name, remote, plan, now, check_count, state, next check, problem mentions)
CASES: list[tuple[str, RemoteVideo | None, VideoPlan, datetime, int, VideoState, Any, str]] = [
    (
        "absent: missing, checked again in 10 minutes",
        None,
        SCHEDULED,
        NOW,
        0,
        VideoState.MISSING,
        NOW + timedelta(minutes=10),
        "another account",
    ),
    (
        "reported deleted",
        video(upload_status="deleted"),
        SCHEDULED,
        NOW,
        0,
        VideoState.DELETED,
        None,
        "deleted",
    ),
    (
        "rejected",
        video(upload_status="rejected", failure_reason="duplicate"),
        SCHEDULED,
        NOW,
        0,
        VideoState.REJECTED,
        None,
        "reason: duplicate",
    ),
    (
        "upload failed",
        video(upload_status="failed", failure_reason="codec"),
        SCHEDULED,
        NOW,
        0,
        VideoState.PROCESSING_FAILED,
        None,
        "reason: codec",
    ),
    (
        "processing failed",
        video(
            upload_status="uploaded",
            processing_status="failed",
            processing_failure_reason="transcodeFailed",
        ),
        SCHEDULED,
        NOW,
        3,
        VideoState.PROCESSING_FAILED,
        None,
        "transcodeFailed",
    ),
    (
        "processing terminated",
        video(upload_status="uploaded", processing_status="terminated"),
        SCHEDULED,
        NOW,
        0,
        VideoState.PROCESSING_FAILED,
        None,
        "no reason given",
    ),
    (
        "first check, processing",
        video(upload_status="uploaded", processing_status="processing"),
        SCHEDULED,
        NOW,
        0,
        VideoState.PROCESSING,
        NOW + CHECK_BACKOFF[1],
        "",
    ),
    (
        "third check, processing",
        video(upload_status="uploaded", processing_status="processing"),
        SCHEDULED,
        NOW,
        2,
        VideoState.PROCESSING,
        NOW + CHECK_BACKOFF[3],
        "",
    ),
    (
        "processing long: hourly",
        video(upload_status="uploaded", processing_status=None),
        SCHEDULED,
        NOW,
        20,
        VideoState.PROCESSING,
        NOW + timedelta(hours=1),
        "",
    ),
    (
        "processing too long: no more checks",
        video(upload_status="uploaded", processing_status="processing"),
        SCHEDULED,
        NOW,
        MAX_CHECKS - 1,
        VideoState.PROCESSING,
        None,
        "no further automatic check",
    ),
    ("ready (publishAt held)", video(), SCHEDULED, NOW, 1, VideoState.READY, AFTER, ""),
    (
        "ready, publishAt to the microsecond",
        video(publish_at=PUBLISH.replace(microsecond=0)),
        VideoPlan(
            privacy="public",
            publish_time=PUBLISH.replace(microsecond=500_000),
            publish_at_sent=True,
        ),
        NOW,
        1,
        VideoState.READY,
        PUBLISH.replace(microsecond=500_000) + PUBLISH_GRACE,
        "",
    ),
    (
        "ready unlisted",
        video(privacy_status="unlisted", publish_at=None),
        UNLISTED,
        NOW,
        0,
        VideoState.READY,
        AFTER,
        "",
    ),
    (
        "published at once (publishAt not sent)",
        video(privacy_status="public", publish_at=None),
        AT_ONCE,
        NOW,
        0,
        VideoState.PUBLISHED,
        None,
        "",
    ),
    (
        "published after the publish time",
        video(privacy_status="public"),
        SCHEDULED,
        AFTER,
        2,
        VideoState.PUBLISHED,
        None,
        "",
    ),
    (
        "private as planned",
        video(publish_at=None),
        PRIVATE,
        AFTER,
        2,
        VideoState.PUBLISHED,
        None,
        "",
    ),
    (
        "publish time passed, within grace",
        video(),
        SCHEDULED,
        JUST_AFTER,
        2,
        VideoState.READY,
        AFTER,
        "",
    ),
    (
        "held private after grace",
        video(),
        SCHEDULED,
        AFTER,
        2,
        VideoState.HELD_PRIVATE,
        AFTER + PROBLEM_RECHECK,
        "still holds the video private",
    ),
    (
        "held private: publishAt dropped",
        video(publish_at=None),
        SCHEDULED,
        AFTER,
        2,
        VideoState.HELD_PRIVATE,
        AFTER + PROBLEM_RECHECK,
        "locked private",
    ),
    (
        "unlisted plan held private",
        video(publish_at=None),
        UNLISTED,
        AFTER,
        1,
        VideoState.HELD_PRIVATE,
        AFTER + PROBLEM_RECHECK,
        "YouTube Studio",
    ),
    (
        "mismatch: public early",
        video(privacy_status="public", publish_at=None),
        SCHEDULED,
        NOW,
        1,
        VideoState.MISMATCH,
        AFTER,
        "holds privacy public, publishAt none; planned privacy private",
    ),
    (
        "mismatch: another publishAt",
        video(publish_at=PUBLISH + timedelta(days=1)),
        SCHEDULED,
        NOW,
        1,
        VideoState.MISMATCH,
        AFTER,
        "publishAt 2026-05-05T15:00:00Z; planned privacy private, publishAt 2026-05-04T15:00:00Z",
    ),
    (
        "mismatch: publishAt not applied",
        video(publish_at=None),
        SCHEDULED,
        NOW,
        1,
        VideoState.MISMATCH,
        AFTER,
        "YouTube dropped publishAt (the API project may be locked private)",
    ),
    (
        "mismatch: later publishAt after the publish time",
        video(publish_at=AFTER + timedelta(days=1)),
        SCHEDULED,
        AFTER,
        1,
        VideoState.MISMATCH,
        AFTER + PROBLEM_RECHECK,
        "holds privacy private",
    ),
    (
        "mismatch: unlisted instead of public",
        video(privacy_status="unlisted", publish_at=None),
        SCHEDULED,
        AFTER,
        1,
        VideoState.MISMATCH,
        AFTER + PROBLEM_RECHECK,
        "holds privacy unlisted",
    ),
    (
        "mismatch: publishAt on a private plan",
        video(),
        PRIVATE,
        NOW,
        1,
        VideoState.MISMATCH,
        AFTER,
        "planned privacy private, publishAt none",
    ),
    (
        "mismatch, checks spent",
        video(publish_at=None),
        SCHEDULED,
        NOW,
        MAX_CHECKS,
        VideoState.MISMATCH,
        None,
        "no further automatic check",
    ),
]


@pytest.mark.parametrize(
    ("remote", "plan", "now", "count", "state", "next_at", "problem"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_verdict_table(
    remote: RemoteVideo | None,
    plan: VideoPlan,
    now: datetime,
    count: int,
    state: VideoState,
    next_at: datetime | None,
    problem: str,
) -> None:
    verdict = decide_check(remote, plan, now=now, check_count=count)
    assert verdict.state is state
    assert verdict.next_check_at == next_at
    if state.is_problem or problem:
        assert verdict.problem is not None
        assert problem in verdict.problem
    else:
        assert verdict.problem is None
    if state.is_final:
        assert verdict.next_check_at is None
    if remote is not None:
        assert (verdict.privacy, verdict.publish_at) == (remote.privacy_status, remote.publish_at)


def test_backoff_covers_processing_then_hourly() -> None:
    processing = video(upload_status="uploaded", processing_status="processing")
    waits = []
    at = first_check_at(NOW)
    assert at == NOW + timedelta(minutes=1)
    for count in range(8):
        verdict = decide_check(processing, SCHEDULED, now=at, check_count=count)
        assert verdict.next_check_at is not None
        waits.append(verdict.next_check_at - at)
        at = verdict.next_check_at
    minutes = [w / timedelta(minutes=1) for w in waits]
    assert minutes == [2, 5, 10, 30, 60, 60, 60, 60]


def test_plan_follows_the_uploaders_publish_at_rule() -> None:
    assert plan_of("public", PUBLISH, NOW).publish_at_sent
    assert not plan_of("public", NOW + timedelta(seconds=30), NOW).publish_at_sent
    assert not plan_of("unlisted", PUBLISH, NOW).publish_at_sent
    assert not plan_of("private", PUBLISH, NOW).publish_at_sent
    assert plan_of("public", PUBLISH, None).publish_at_sent is False


def test_a_problem_far_from_the_publish_time_is_rechecked_after_a_while() -> None:
    far = VideoPlan(privacy="public", publish_time=NOW + timedelta(days=3), publish_at_sent=True)
    verdict = decide_check(video(publish_at=None), far, now=NOW, check_count=1)
    assert verdict.state is VideoState.MISMATCH
    assert verdict.next_check_at == NOW + PROBLEM_RECHECK


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_check(video(), SCHEDULED, now=NOW.replace(tzinfo=None), check_count=0)


# (state checked from, checks before, confirm_deleted) -> (state, wait to the next check, count)
ABSENT: list[tuple[str | None, int, bool, VideoState, timedelta | None, int]] = [
    ("ready", 7, True, VideoState.MISSING, MISSING_RECHECK[0], 1),
    (None, 0, True, VideoState.MISSING, MISSING_RECHECK[0], 1),
    ("mismatch", 40, True, VideoState.MISSING, MISSING_RECHECK[0], 1),
    ("missing", 1, True, VideoState.MISSING, MISSING_RECHECK[1], 2),
    ("missing", 2, True, VideoState.DELETED, None, 3),
    ("missing", 2, False, VideoState.MISSING, PROBLEM_RECHECK, 3),
    ("missing", 20, False, VideoState.MISSING, PROBLEM_RECHECK, 21),
    ("missing", MAX_CHECKS - 1, False, VideoState.MISSING, None, MAX_CHECKS),
]


@pytest.mark.parametrize(("state", "count", "confirm", "want", "wait", "stored"), ABSENT)
def test_an_absent_video_is_missing_before_it_is_deleted(
    state: str | None,
    count: int,
    confirm: bool,
    want: VideoState,
    wait: timedelta | None,
    stored: int,
) -> None:
    verdict = decide_check(
        None, SCHEDULED, now=NOW, check_count=count, state=state, confirm_deleted=confirm
    )
    assert verdict.state is want
    assert verdict.next_check_at == (None if wait is None else NOW + wait)
    assert verdict.check_count == stored
    assert verdict.problem is not None
    if want is VideoState.DELETED:
        assert "no longer on YouTube" in verdict.problem
    else:
        assert "another account" in verdict.problem
    if not confirm:
        assert "channel filter" in verdict.problem


def test_deleted_takes_three_absent_answers_over_more_than_an_hour() -> None:
    at, state, count = NOW, "ready", 5
    seen = []
    while True:
        verdict = decide_check(None, SCHEDULED, now=at, check_count=count, state=state)
        seen.append((at - NOW, verdict.state))
        if verdict.next_check_at is None:
            break
        at, state = verdict.next_check_at, verdict.state.value
        count = verdict.check_count if verdict.check_count is not None else count + 1
    assert [s for _, s in seen] == [VideoState.MISSING] * (MISSING_CHECKS - 1) + [
        VideoState.DELETED
    ]
    assert seen[-1][0] >= timedelta(hours=1)


def test_missing_is_a_problem_not_final() -> None:
    assert VideoState.MISSING.is_problem
    assert not VideoState.MISSING.is_final


def test_a_missing_video_found_again_takes_its_state_back() -> None:
    verdict = decide_check(video(), SCHEDULED, now=NOW, check_count=2, state="missing")
    assert verdict.state is VideoState.READY
    assert verdict.problem is None
