"""Token health reports built from what the token endpoint and channels.list answered (no
network): matching, scopes, refresh-token expiry, and every problem's type and advice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.errors import (
    AuthorizationError,
    ConfigurationError,
    QuotaExhaustedError,
    TransientUploadError,
)
from langflix_scheduler.youtube.health import (
    TokenHealth,
    TokenProblem,
    build_health,
    check_token,
    health_from_error,
    stored_channels,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
UPLOAD = "https://www.googleapis.com/auth/youtube.upload"
FORCE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"
CHANNEL_ID = "UCaaaaaaaaaaaaaaaaaaaaaa"
OTHER_ID = "UCbbbbbbbbbbbbbbbbbbbbbb"
ITEM = {"kind": "youtube#channel", "id": CHANNEL_ID, "snippet": {"title": "Lessons"}}


def _build(**kwargs: object) -> TokenHealth:
    options: dict[str, object] = {
        "now": NOW,
        "token_response": {"scope": f"{UPLOAD} {FORCE_SSL}"},
        "channel_items": [ITEM],
        "required_scopes": (UPLOAD, FORCE_SSL),
    }
    options.update(kwargs)
    return build_health("main", "/tokens/main.json", **options)  # type: ignore[arg-type]


def test_healthy_token_without_an_expected_id_cannot_be_compared():
    h = _build()
    assert h.ok
    assert not h.needs_reauth
    assert h.problem is None
    assert h.message == ""
    assert (h.youtube_channel_id, h.youtube_channel_title) == (CHANNEL_ID, "Lessons")
    assert h.expected_channel_id is None
    assert h.channel_matches is None
    assert h.scopes == (FORCE_SSL, UPLOAD)
    assert h.scopes_source == "token_endpoint"
    assert h.missing_scopes == ()
    assert h.refresh_token_expires_at is None


def test_expected_channel_matches():
    h = _build(expected_channel_id=CHANNEL_ID)
    assert h.ok
    assert h.channel_matches is True


def test_token_of_another_channel_is_wrong_channel_and_needs_auth():
    h = _build(expected_channel_id=OTHER_ID)
    assert h.problem is TokenProblem.WRONG_CHANNEL
    assert h.channel_matches is False
    assert h.needs_reauth
    assert CHANNEL_ID in h.message
    assert OTHER_ID in h.message
    assert "langflix-scheduler auth --channel main" in h.message


def test_refresh_token_expiry_is_now_plus_expires_in():
    h = _build(
        token_response={"scope": UPLOAD + " " + FORCE_SSL, "refresh_token_expires_in": 604799}
    )
    assert h.refresh_token_expires_at == NOW + timedelta(seconds=604799)
    assert h.ok


@pytest.mark.parametrize("raw", ["soon", None, -5, True, [1]])
def test_unusable_refresh_token_expiry_is_ignored(raw: object):
    h = _build(token_response={"refresh_token_expires_in": raw})
    assert h.refresh_token_expires_at is None


def test_scopes_fall_back_to_the_token_file():
    h = _build(token_response={}, stored_scopes=[UPLOAD, FORCE_SSL, UPLOAD])
    assert h.scopes == (FORCE_SSL, UPLOAD)
    assert h.scopes_source == "token_file"
    assert h.ok


def test_missing_scope_is_reported():
    h = _build(
        token_response={"scope": f"{UPLOAD} https://www.googleapis.com/auth/youtube.readonly"}
    )
    assert h.problem is TokenProblem.MISSING_SCOPES
    assert h.missing_scopes == (FORCE_SSL,)
    assert FORCE_SSL in h.message
    assert h.needs_reauth
    assert h.youtube_channel_id == CHANNEL_ID  # the channel was still read


def test_account_without_a_channel():
    h = _build(channel_items=[])
    assert h.problem is TokenProblem.NO_CHANNEL
    assert h.youtube_channel_id is None
    assert h.needs_reauth


def test_channels_list_refused_for_scope_says_the_read_scope_is_missing():
    err = AuthorizationError("insufficient", reason="insufficientPermissions", status=403)
    h = _build(token_response={"scope": UPLOAD}, channel_items=None, channel_error=err)
    assert h.problem is TokenProblem.MISSING_SCOPES
    assert h.error is err
    assert "read scope" in h.message
    assert h.missing_scopes == (FORCE_SSL,)


def test_channels_list_unauthorized_needs_auth():
    err = AuthorizationError("Unauthorized", reason="authError", status=401)
    h = _build(channel_items=None, channel_error=err)
    assert h.problem is TokenProblem.NEEDS_REAUTH
    assert h.needs_reauth


@pytest.mark.parametrize(
    "err",
    [
        TransientUploadError("backend", reason="backendError", status=503),
        QuotaExhaustedError("spent", resume_at=NOW + timedelta(hours=3)),
    ],
)
def test_channels_list_failing_otherwise_is_a_failed_check_not_reauth(err: Exception):
    h = _build(channel_items=None, channel_error=err)
    assert h.problem is TokenProblem.CHECK_FAILED
    assert not h.ok
    assert not h.needs_reauth
    assert "try again later" in h.message


def test_invalid_grant_says_run_auth_again_and_mentions_testing_apps():
    err = AuthorizationError("refused", reason="invalid_grant")
    h = health_from_error("main", "/t/main.json", err, now=NOW, expected_channel_id=OTHER_ID)
    assert h.problem is TokenProblem.NEEDS_REAUTH
    assert h.needs_reauth
    assert h.error is err
    assert "run `langflix-scheduler auth --channel main` again" in h.message
    assert "Testing" in h.message
    assert "7 days" in h.message
    assert h.expected_channel_id == OTHER_ID
    assert h.youtube_channel_id is None
    assert h.channel_matches is None


def test_missing_token_file_says_run_auth():
    err = AuthorizationError("no token", reason="noToken")
    h = health_from_error("main", "/t/main.json", err, now=NOW)
    assert h.problem is TokenProblem.NEEDS_REAUTH
    assert "langflix-scheduler auth --channel main" in h.message


def test_shared_token_file_is_unsafe():
    err = ConfigurationError("token_path", "run `chmod 600 x`")
    h = health_from_error("main", "/t/main.json", err, now=NOW)
    assert h.problem is TokenProblem.UNSAFE_FILE
    assert h.needs_reauth
    assert "chmod 600" in h.message


def test_unreachable_token_endpoint_is_a_failed_check():
    err = TransientUploadError("cannot reach", reason="tokenTransportError")
    h = health_from_error("main", "/t/main.json", err, now=NOW)
    assert h.problem is TokenProblem.CHECK_FAILED
    assert not h.needs_reauth


def test_to_dict_is_json_ready_and_names_the_error_without_secrets():
    err = AuthorizationError("refused", reason="invalid_grant")
    data = health_from_error("main", "/t/main.json", err, now=NOW).to_dict()
    text = json.dumps(data)
    assert data["problem"] == "needs_reauth"
    assert data["needs_reauth"] is True
    assert data["ok"] is False
    assert data["error"] == "AuthorizationError"
    assert data["reason"] == "invalid_grant"
    assert data["checked_at"] == NOW.isoformat()
    assert 'refresh_token"' not in text
    healthy = _build(
        token_response={"scope": f"{UPLOAD} {FORCE_SSL}", "refresh_token_expires_in": 60}
    )
    d = healthy.to_dict()
    assert d["refresh_token_expires_at"] == (NOW + timedelta(seconds=60)).isoformat()
    assert d["youtube_channel_id"] == CHANNEL_ID
    assert d["ok"] is True


def test_stored_channels_lists_token_files_only(tmp_path: Path):
    assert stored_channels(tmp_path / "absent") == []
    for name in ("b.json", "a.json", ".a.json.123.tmp", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert stored_channels(tmp_path) == ["a", "b"]


def test_check_token_refuses_a_bad_expected_id_before_any_network(tmp_path: Path):
    with pytest.raises(ConfigurationError) as info:
        check_token("main", tmp_path, expected_channel_id="not-an-id")
    assert info.value.field == "expected_channel_id"


def test_check_token_of_a_missing_file_reports_needs_reauth(tmp_path: Path):
    h = check_token("main", tmp_path, clock=lambda: NOW)
    assert h.problem is TokenProblem.NEEDS_REAUTH
    assert h.token_path == str(tmp_path / "main.json")
    assert h.checked_at == NOW


def test_a_channel_named_by_its_id_is_compared(tmp_path: Path):
    h = check_token(CHANNEL_ID, tmp_path)
    assert h.expected_channel_id == CHANNEL_ID
