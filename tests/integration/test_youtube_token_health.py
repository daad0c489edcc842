"""Token health with the real google client against FakeYouTube: the token is refreshed at the
fake's token endpoint, ``channels.list(mine=true)`` asks whose channel it is."""

from __future__ import annotations

import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from langflix_scheduler.errors import AuthorizationError, TransientUploadError
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.fake_youtube import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_CHANNEL_TITLE,
    TESTING_REFRESH_TOKEN_LIFETIME,
)
from langflix_scheduler.youtube.auth import DEFAULT_SCOPES
from langflix_scheduler.youtube.health import TokenProblem, check_token, check_tokens
from langflix_scheduler.youtube.uploader import ApiCallReport, CallPhase

pytestmark = pytest.mark.timeout(60)

UPLOAD = "https://www.googleapis.com/auth/youtube.upload"
OTHER_ID = "UCotherChannel0000000002"
REFRESH_SECRET = "refresh-secret-value-1"


def _write_token(
    token_dir: Path,
    channel: str = "main",
    *,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    refresh_token: str = REFRESH_SECRET,
    mode: int = 0o600,
) -> Path:
    token_dir.mkdir(mode=0o700, exist_ok=True)
    path = token_dir / f"{channel}.json"
    path.write_text(
        json.dumps(
            {
                "token": "old-access-token",
                "refresh_token": refresh_token,
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "client-secret-value",
                "scopes": list(scopes),
                "expiry": "2000-01-01T00:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    path.chmod(mode)
    return path


def _check(fake: FakeYouTube, token_dir: Path, channel: str = "main", **kwargs: object):
    return check_token(
        channel,
        token_dir,
        api_endpoint=fake.api_endpoint,
        token_uri=fake.token_uri,
        **kwargs,  # type: ignore[arg-type]
    )


def test_healthy_token_reports_its_channel_scopes_and_one_counted_call(tmp_path: Path):
    path = _write_token(tmp_path)
    calls: list[ApiCallReport] = []
    with FakeYouTube() as fake:
        health = _check(fake, tmp_path, on_call=calls.append)
        charged = fake.charged()
        kinds = [r.kind for r in fake.requests]
    assert health.ok, health.message
    assert health.youtube_channel_id == DEFAULT_CHANNEL_ID
    assert health.youtube_channel_title == DEFAULT_CHANNEL_TITLE
    assert health.channel_matches is None  # "main" is a name: nothing to compare with
    assert set(health.scopes) == set(DEFAULT_SCOPES)
    assert health.scopes_source == "token_endpoint"
    assert health.refresh_token_expires_at is None  # a production app's token: no expiry given
    assert health.access_token_expires_at is not None
    assert health.access_token_expires_at.tzinfo is not None
    assert kinds == ["token", "channels"]
    assert charged == {"channels.list": 1}
    assert [(c.operation, c.phase) for c in calls] == [("channels.list", CallPhase.SENDING)]
    # The refreshed token was saved back, privately.
    saved = json.loads(path.read_text())
    assert saved["token"].startswith("fake-access-")
    assert saved["refresh_token"] == REFRESH_SECRET
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_of_another_channel_is_reported_wrong_channel(tmp_path: Path):
    _write_token(tmp_path)
    with FakeYouTube(channel_id=OTHER_ID, channel_title="Someone else") as fake:
        health = _check(fake, tmp_path, expected_channel_id=DEFAULT_CHANNEL_ID)
    assert health.problem is TokenProblem.WRONG_CHANNEL
    assert health.needs_reauth
    assert health.channel_matches is False
    assert health.youtube_channel_id == OTHER_ID
    assert health.youtube_channel_title == "Someone else"
    assert OTHER_ID in health.message
    assert "auth --channel main" in health.message


def test_channel_named_by_its_youtube_id_is_compared_without_being_told(tmp_path: Path):
    _write_token(tmp_path, DEFAULT_CHANNEL_ID)
    with FakeYouTube() as fake:
        good = _check(fake, tmp_path, DEFAULT_CHANNEL_ID)
        fake.set_channel(OTHER_ID, "Moved")
        bad = _check(fake, tmp_path, DEFAULT_CHANNEL_ID)
    assert good.ok
    assert good.channel_matches is True
    assert bad.problem is TokenProblem.WRONG_CHANNEL


def test_invalid_grant_is_a_typed_problem_with_the_google_error_as_cause(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    _write_token(tmp_path)
    caplog.set_level(logging.DEBUG)
    with FakeYouTube() as fake:
        fake.revoke_refresh_tokens()
        health = _check(fake, tmp_path)
        charged = fake.charged()
    assert health.problem is TokenProblem.NEEDS_REAUTH
    assert health.needs_reauth
    assert isinstance(health.error, AuthorizationError)
    assert health.error.reason == "invalid_grant"
    assert isinstance(health.error.__cause__, RefreshError)
    assert "run `langflix-scheduler auth --channel main` again" in health.message
    assert charged == {}  # channels.list never sent
    assert REFRESH_SECRET not in caplog.text
    assert "client-secret-value" not in caplog.text


def test_testing_app_refresh_token_expires_after_seven_days(tmp_path: Path):
    _write_token(tmp_path)
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]

    def clock() -> datetime:
        return now[0]

    with FakeYouTube(app_status="testing", clock=clock) as fake:
        first = _check(fake, tmp_path, clock=clock)
        now[0] += timedelta(days=6)
        later = _check(fake, tmp_path, clock=clock)
        now[0] += timedelta(days=1)
        expired = _check(fake, tmp_path, clock=clock)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert first.ok
    assert first.refresh_token_expires_at == start + TESTING_REFRESH_TOKEN_LIFETIME
    assert later.ok
    assert later.refresh_token_expires_at == start + TESTING_REFRESH_TOKEN_LIFETIME
    assert expired.problem is TokenProblem.NEEDS_REAUTH
    assert isinstance(expired.error, AuthorizationError)
    assert expired.error.reason == "invalid_grant"
    assert "7 days" in expired.message


def test_token_without_a_read_scope_cannot_name_its_channel(tmp_path: Path):
    _write_token(tmp_path, scopes=(UPLOAD,))
    with FakeYouTube() as fake:
        health = _check(fake, tmp_path)
    assert health.problem is TokenProblem.MISSING_SCOPES
    assert health.scopes == (UPLOAD,)
    assert "https://www.googleapis.com/auth/youtube.force-ssl" in health.missing_scopes
    assert health.youtube_channel_id is None
    assert isinstance(health.error, AuthorizationError)
    assert isinstance(health.error.__cause__, HttpError)


def test_account_without_a_channel(tmp_path: Path):
    _write_token(tmp_path)
    with FakeYouTube(channel_id=None) as fake:
        health = _check(fake, tmp_path)
    assert health.problem is TokenProblem.NO_CHANNEL


@pytest.mark.parametrize("fault", ["5xx", "quota"])
def test_channels_list_failing_is_a_failed_check_with_the_cause_kept(tmp_path: Path, fault: str):
    _write_token(tmp_path)
    with FakeYouTube() as fake:
        if fault == "5xx":
            fake.fail_next(1, 503, target="channels")
        else:
            fake.quota_exceeded_next(1, target="channels")
        health = _check(fake, tmp_path)
    assert health.problem is TokenProblem.CHECK_FAILED
    assert not health.needs_reauth
    assert health.error is not None
    assert isinstance(health.error.__cause__, HttpError)
    if fault == "5xx":
        assert isinstance(health.error, TransientUploadError)


def test_on_call_that_raises_stops_the_request_and_propagates(tmp_path: Path):
    _write_token(tmp_path)

    class LedgerDown(Exception):
        pass

    def on_call(report: ApiCallReport) -> None:
        raise LedgerDown(report.operation)

    with FakeYouTube() as fake:
        with pytest.raises(LedgerDown):
            _check(fake, tmp_path, on_call=on_call)
        assert fake.charged() == {}


def test_shared_token_file_is_unsafe_and_nothing_is_sent(tmp_path: Path):
    _write_token(tmp_path, mode=0o644)
    with FakeYouTube() as fake:
        health = _check(fake, tmp_path)
        assert fake.requests == ()
    assert health.problem is TokenProblem.UNSAFE_FILE
    assert "chmod 600" in health.message


def test_check_tokens_checks_every_stored_channel(tmp_path: Path):
    _write_token(tmp_path, "alpha")
    _write_token(tmp_path, "beta", refresh_token="refresh-beta")
    (tmp_path / "notes.txt").write_text("not a token")
    with FakeYouTube() as fake:
        reports = check_tokens(
            tmp_path,
            api_endpoint=fake.api_endpoint,
            token_uri=fake.token_uri,
            expected_channel_ids={"beta": OTHER_ID},
        )
        charged = fake.charged()
    assert [r.channel for r in reports] == ["alpha", "beta"]
    assert reports[0].ok
    assert reports[1].problem is TokenProblem.WRONG_CHANNEL
    assert charged == {"channels.list": 2}
