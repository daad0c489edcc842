"""Every decision the processor takes after an upload attempt raised, without a database.

:func:`langflix_scheduler.processor.decide` is pure: exception, attempt count, settings and the
time in; one :class:`Decision` out. The give-up verdict (completed / failed / needs_review) is
:func:`langflix_scheduler._give_up.decide_give_up`'s, also pure, checked here too.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from langflix_scheduler._give_up import Verdict, decide_give_up
from langflix_scheduler.errors import (
    AuthorizationError,
    ConfigurationError,
    InvalidScheduleError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from langflix_scheduler.processor import (
    MAX_RETRY_DELAY,
    MIN_DEFERRAL,
    Action,
    AttemptView,
    ProcessorSettings,
    decide,
    failure_decision,
)
from langflix_scheduler.processor._state import _LeaseLost, _StopRequested
from langflix_scheduler.youtube.uploader import SessionProbe, SessionState

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # 05:00 Pacific (PDT): quota day 2026-05-01
PT = "America/Los_Angeles"
SETTINGS = ProcessorSettings(worker_id="w", max_attempts=3, retry_base=timedelta(seconds=10))


def _decide(exc: BaseException, attempts: int = 0, *, lost: bool = False, seed: int = 1):  # type: ignore[no-untyped-def]
    return decide(
        exc,
        AttemptView(attempts=attempts, lost=lost),
        SETTINGS,
        now=NOW,
        quota_timezone=PT,
        rng=random.Random(seed),
    )


def test_lease_lost_writes_nothing() -> None:
    d = _decide(_LeaseLost())
    assert d.action is Action.LOST
    assert d.attempts == 0


def test_stop_releases_without_counting_an_attempt() -> None:
    d = _decide(_StopRequested(), attempts=2)
    assert d.action is Action.RELEASE
    assert d.attempts == 2
    assert "chunk boundary" in d.reason


def test_stop_after_the_lease_was_lost_is_lost() -> None:
    assert _decide(_StopRequested(), lost=True).action is Action.LOST


def test_quota_exhausted_defers_to_the_next_quota_day() -> None:
    resume = datetime(2026, 5, 2, 7, 0, tzinfo=UTC)  # midnight PDT
    d = _decide(QuotaExhaustedError("quota", resume_at=resume), attempts=1)
    assert d.action is Action.DEFER_QUOTA
    assert d.defer_until == resume
    assert d.resume_day == date(2026, 5, 2)
    assert d.attempts == 1  # a deferral counts no attempt
    assert d.retry_at is None


def test_quota_resume_in_the_past_is_never_earlier_than_our_next_reset() -> None:
    stale = NOW - timedelta(days=2)
    d = _decide(QuotaExhaustedError("quota", resume_at=stale))
    assert d.defer_until == datetime(2026, 5, 2, 7, 0, tzinfo=UTC)
    assert d.resume_day == date(2026, 5, 2)


def test_channel_limit_defers_for_retry_after() -> None:
    d = _decide(UploadLimitExceededError("limit", retry_after=timedelta(hours=2)))
    assert d.action is Action.DEFER_CHANNEL
    assert d.defer_until == NOW + timedelta(hours=2)
    assert d.attempts == 0


def test_channel_limit_waits_at_least_min_deferral() -> None:
    d = _decide(UploadLimitExceededError("limit", retry_after=timedelta(0)))
    assert d.defer_until == NOW + MIN_DEFERRAL


def test_authorization_failure_releases_and_stops_claiming() -> None:
    d = _decide(AuthorizationError("token revoked"), attempts=1)
    assert d.action is Action.UNAUTHORIZED
    assert d.reason == "authorization failed: token revoked"
    assert d.attempts == 1


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (PermanentUploadError("invalid title"), "invalid title"),
        (FileNotFoundError(2, "No such file"), "local file error: FileNotFoundError: "),
        (InvalidScheduleError("metadata", "bad"), "invalid metadata: bad"),
    ],
)
def test_permanent_failures_give_up_at_once(exc: Exception, reason: str) -> None:
    d = _decide(exc, attempts=0)
    assert d.action is Action.GIVE_UP
    assert d.reason.startswith(reason)
    assert "gave up after" not in d.reason
    assert d.attempts == 1
    assert not d.unexpected


@pytest.mark.parametrize(
    "exc",
    [TransientUploadError("503"), UploadError("reset", reason="connectionReset")],
)
def test_transient_failures_retry_with_backoff(exc: Exception) -> None:
    d = _decide(exc, attempts=0)
    assert d.action is Action.RETRY
    assert d.attempts == 1
    assert d.retry_at is not None
    # First retry: retry_base jittered to 50-100 %.
    assert NOW + timedelta(seconds=5) <= d.retry_at <= NOW + timedelta(seconds=10)
    assert not d.unexpected


def test_backoff_doubles_per_attempt() -> None:
    d = _decide(TransientUploadError("503"), attempts=1)  # second try failed
    assert d.retry_at is not None
    assert NOW + timedelta(seconds=10) <= d.retry_at <= NOW + timedelta(seconds=20)


def test_backoff_is_capped() -> None:
    many = ProcessorSettings(worker_id="w", max_attempts=100, retry_base=timedelta(hours=1))
    d = failure_decision(
        "x", permanent=False, attempts=50, settings=many, now=NOW, rng=random.Random(3)
    )
    assert d.retry_at is not None
    assert d.retry_at - NOW <= MAX_RETRY_DELAY
    assert d.retry_at - NOW >= MAX_RETRY_DELAY / 2


def test_transient_failure_gives_up_when_attempts_are_spent() -> None:
    d = _decide(TransientUploadError("503"), attempts=2)  # the third of max_attempts=3
    assert d.action is Action.GIVE_UP
    assert d.attempts == 3
    assert d.reason == "503 (gave up after 3 attempts)"
    assert d.retry_at is None


def test_unexpected_exception_is_transient_and_flagged() -> None:
    d = _decide(KeyError("boom"))
    assert d.action is Action.RETRY
    assert d.unexpected
    assert d.reason == "unexpected KeyError: 'boom'"


def test_the_same_seed_gives_the_same_retry_time() -> None:
    a = _decide(TransientUploadError("503"), seed=7)
    b = _decide(TransientUploadError("503"), seed=7)
    assert a == b


def test_settings_validation() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat_interval"):
        ProcessorSettings(lease=timedelta(seconds=10), heartbeat_interval=timedelta(seconds=10))
    with pytest.raises(ConfigurationError, match="max_attempts"):
        ProcessorSettings(max_attempts=0)
    with pytest.raises(ConfigurationError, match="worker_id"):
        ProcessorSettings(worker_id="x" * 101)
    s = ProcessorSettings(max_concurrent_uploads=4, channels=["b", "a", "b"])
    assert s.batch_size == 4
    assert s.channels == ("a", "b")
    assert s.worker_id


def test_give_up_with_a_known_video_id_completes() -> None:
    g = decide_give_up(video_id="vid", session_uri="https://x", probe=None, probe_error=None)
    assert g.verdict is Verdict.COMPLETE
    assert g.video_id == "vid"


def test_give_up_without_a_session_fails() -> None:
    g = decide_give_up(video_id=None, session_uri=None, probe=None, probe_error=None)
    assert g.verdict is Verdict.FAIL


def test_give_up_with_an_unanswered_session_needs_review() -> None:
    g = decide_give_up(video_id=None, session_uri="https://x", probe=None, probe_error="timeout")
    assert g.verdict is Verdict.REVIEW


def test_give_up_with_a_session_and_no_prober_needs_review() -> None:
    g = decide_give_up(video_id=None, session_uri="https://x", probe=None, probe_error=None)
    assert g.verdict is Verdict.REVIEW


@pytest.mark.parametrize(
    ("probe", "verdict", "video_id"),
    [
        (SessionProbe(state=SessionState.COMPLETED, video_id="v1"), Verdict.COMPLETE, "v1"),
        (SessionProbe(state=SessionState.INCOMPLETE, offset=10), Verdict.FAIL, None),
        (SessionProbe(state=SessionState.GONE), Verdict.REVIEW, None),
    ],
)
def test_give_up_after_asking_the_session(
    probe: SessionProbe, verdict: Verdict, video_id: str | None
) -> None:
    g = decide_give_up(video_id=None, session_uri="https://x", probe=probe)
    assert g.verdict is verdict
    assert g.video_id == video_id
