"""classify_error on synthetic exceptions (no network)."""

from __future__ import annotations

import errno
import http.client
import json
import ssl
from datetime import UTC, datetime, timedelta

import httplib2
import pytest
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError, ResumableUploadError

from langflix_scheduler.errors import (
    AuthorizationError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
    UploadLimitExceededError,
)
from langflix_scheduler.youtube.google import classify_error

# 2026-03-08 is the day DST starts in Los Angeles: the next midnight is 07:00 UTC, not 08:00.
NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
NEXT_PT_MIDNIGHT = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)


def http_error(
    status: int, reason: str = "", message: str = "msg", *, cls: type[HttpError] = HttpError
) -> HttpError:
    errors = [{"reason": reason, "domain": "youtube.video", "message": message}] if reason else []
    body = {"error": {"code": status, "message": message, "errors": errors}}
    resp = httplib2.Response({"status": status})
    resp.reason = "Reason"
    return cls(resp, json.dumps(body).encode())


UPLOADS_PER_DAY = (
    "Quota exceeded for quota metric 'Video Uploads' and limit 'Video Uploads per day' of "
    "service 'youtube.googleapis.com' for consumer 'project_number:1'."
)


@pytest.mark.parametrize(
    ("exc", "expected", "reason"),
    [
        (http_error(403, "quotaExceeded"), QuotaExhaustedError, "quotaExceeded"),
        (http_error(403, "dailyLimitExceeded"), QuotaExhaustedError, "dailyLimitExceeded"),
        (
            http_error(429, "rateLimitExceeded", UPLOADS_PER_DAY),
            QuotaExhaustedError,
            "rateLimitExceeded",
        ),
        (
            http_error(429, "rateLimitExceeded", "slow down"),
            TransientUploadError,
            "rateLimitExceeded",
        ),
        (http_error(403, "rateLimitExceeded"), TransientUploadError, "rateLimitExceeded"),
        (http_error(403, "userRateLimitExceeded"), TransientUploadError, "userRateLimitExceeded"),
        (http_error(400, "uploadLimitExceeded"), UploadLimitExceededError, "uploadLimitExceeded"),
        (http_error(500, "backendError"), TransientUploadError, "backendError"),
        (http_error(502), TransientUploadError, "http502"),
        (http_error(503), TransientUploadError, "http503"),
        (http_error(504), TransientUploadError, "http504"),
        (http_error(408), TransientUploadError, "http408"),
        (http_error(401, "authError"), AuthorizationError, "authError"),
        (http_error(403, "insufficientPermissions"), AuthorizationError, "insufficientPermissions"),
        (http_error(400, "invalidTitle"), PermanentUploadError, "invalidTitle"),
        (http_error(400, "invalidDescription"), PermanentUploadError, "invalidDescription"),
        (http_error(400, "invalidTags"), PermanentUploadError, "invalidTags"),
        (http_error(400, "invalidCategoryId"), PermanentUploadError, "invalidCategoryId"),
        (http_error(400, "invalidPublishAt"), PermanentUploadError, "invalidPublishAt"),
        (http_error(400, "invalidVideoMetadata"), PermanentUploadError, "invalidVideoMetadata"),
        (http_error(400, "mediaBodyRequired"), PermanentUploadError, "mediaBodyRequired"),
        (http_error(403, "forbidden"), PermanentUploadError, "forbidden"),
        (
            http_error(403, "forbiddenPrivacySetting"),
            PermanentUploadError,
            "forbiddenPrivacySetting",
        ),
        (http_error(404, "videoNotFound"), PermanentUploadError, "videoNotFound"),
        (
            http_error(403, "quotaExceeded", cls=ResumableUploadError),
            QuotaExhaustedError,
            "quotaExceeded",
        ),
        (
            http_error(400, "invalidTitle", cls=ResumableUploadError),
            PermanentUploadError,
            "invalidTitle",
        ),
    ],
)
def test_http_errors(exc: HttpError, expected: type, reason: str):
    err = classify_error(exc, now=NOW)
    assert type(err) is expected
    assert err.reason == reason
    assert err.status == exc.resp.status
    assert err.__cause__ is exc


def test_quota_resume_at_is_next_pacific_midnight_dst_aware():
    err = classify_error(http_error(403, "quotaExceeded"), now=NOW)
    assert isinstance(err, QuotaExhaustedError)
    assert err.resume_at == NEXT_PT_MIDNIGHT
    other = classify_error(http_error(403, "quotaExceeded"), now=NOW, quota_timezone="UTC")
    assert isinstance(other, QuotaExhaustedError)
    assert other.resume_at == datetime(2026, 3, 9, tzinfo=UTC)


def test_reason_comes_from_the_body_not_the_message():
    # A message that mentions "quota" does not make a validation error a quota error.
    err = classify_error(http_error(400, "invalidDescription", "quota is a nice word"), now=NOW)
    assert isinstance(err, PermanentUploadError)


def test_upload_limit_retry_after_is_a_day():
    err = classify_error(http_error(400, "uploadLimitExceeded"), now=NOW)
    assert isinstance(err, UploadLimitExceededError)
    assert err.retry_after == timedelta(hours=24)


def test_non_json_error_body():
    resp = httplib2.Response({"status": 502})
    resp.reason = "Bad Gateway"
    exc = HttpError(resp, b"<html>bad gateway</html>")
    err = classify_error(exc, now=NOW)
    assert isinstance(err, TransientUploadError)
    assert "Bad Gateway" in str(err)


def test_resumable_initiation_without_location_is_transient():
    exc = ResumableUploadError(httplib2.Response({"status": 200}), b"")
    assert isinstance(classify_error(exc, now=NOW), TransientUploadError)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(errno.ECONNRESET, "reset"),
        ConnectionAbortedError(errno.ECONNABORTED, "aborted"),
        BrokenPipeError(errno.EPIPE, "broken pipe"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError("timed out"),
        ssl.SSLError("bad record mac"),
        OSError(errno.ETIMEDOUT, "timed out"),
        OSError(errno.ENETUNREACH, "unreachable"),
        http.client.RemoteDisconnected("closed"),
        http.client.IncompleteRead(b"partial"),
        httplib2.ServerNotFoundError("no dns"),
        httplib2.RedirectMissingLocation("308", httplib2.Response({"status": 308}), b""),
        TransportError("token endpoint unreachable"),
        RefreshError("server error", retryable=True),
    ],
)
def test_network_failures_are_transient(exc: Exception):
    err = classify_error(exc, now=NOW)
    assert isinstance(err, TransientUploadError)
    assert err.__cause__ is exc


def test_dead_refresh_token_is_an_authorization_error():
    exc = RefreshError(
        "invalid_grant: Token has been expired or revoked.",
        {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    )
    err = classify_error(exc, now=NOW)
    assert isinstance(err, AuthorizationError)
    assert err.reason == "invalid_grant"
    assert "langflix-scheduler auth" in str(err)
    assert "7 days" in str(err)
    assert err.__cause__ is exc


def test_unrefreshable_credentials_are_an_authorization_error():
    exc = RefreshError("The credentials do not contain the necessary fields")
    err = classify_error(exc, now=NOW)
    assert isinstance(err, AuthorizationError)
    assert err.reason == "refreshFailed"


@pytest.mark.parametrize(
    "exc", [FileNotFoundError(errno.ENOENT, "gone"), PermissionError(errno.EACCES, "denied")]
)
def test_local_file_errors_are_permanent(exc: Exception):
    err = classify_error(exc, now=NOW)
    assert isinstance(err, PermanentUploadError)
    assert err.reason == "localIOError"


def test_upload_errors_pass_through_and_unknown_errors_are_wrapped():
    original = TransientUploadError("x")
    assert classify_error(original, now=NOW) is original
    err = classify_error(ValueError("boom"), now=NOW)
    assert isinstance(err, PermanentUploadError)
    assert isinstance(err.__cause__, ValueError)
