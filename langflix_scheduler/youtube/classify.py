"""Error classification: every exception raised while talking to YouTube becomes an
:class:`~langflix_scheduler.errors.UploadError` subclass saying what to do next.

Table-driven (like httpx's mapping of transport errors): :data:`_HTTP_RULES` maps an API error
answer (status, reason, body) to a result, and :data:`_EXCEPTION_RULES` maps an exception type
to one; the first matching row wins. :func:`classify_error` is the only entry point.
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httplib2
from google.auth import exceptions as google_auth_exceptions
from googleapiclient.errors import Error as GoogleApiClientError
from googleapiclient.errors import HttpError

from ..errors import (
    AuthorizationError,
    PermanentUploadError,
    QuotaExhaustedError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from ..quota import DEFAULT_QUOTA_TIMEZONE, next_quota_reset
from .auth import classify_refresh_error

__all__ = ["QUOTA_REASONS", "UPLOADS_PER_DAY", "classify_error", "refused_for_quota"]

QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
TRANSIENT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError"}
)
AUTH_REASONS = frozenset(
    {"insufficientPermissions", "authError", "unauthorized", "youtubeSignupRequired"}
)
#: The text of the HTTP 429 YouTube answers when the project's ``videos.insert`` bucket is spent.
UPLOADS_PER_DAY = "Video Uploads per day"
NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ETIMEDOUT",
        "EPIPE",
        "ECONNABORTED",
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTUNREACH",
        "EHOSTDOWN",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EADDRNOTAVAIL",
        "EAGAIN",
    )
    if hasattr(errno, name)
)


@dataclass(frozen=True)
class _Answer:
    """An API error answer, parsed once."""

    exc: HttpError
    status: int
    reason: str
    detail: str
    text: str
    now: datetime
    quota_timezone: str


def _error_fields(exc: HttpError) -> tuple[int, str, str]:
    """``(status, reason, message)`` of an API error answer."""
    status = int(getattr(exc.resp, "status", 0) or 0)
    reason = ""
    message = ""
    try:
        data = json.loads(exc.content.decode("utf-8"))
        error = data["error"]
        message = str(error.get("message", ""))
        errors = error.get("errors") or []
        if errors:
            reason = str(errors[0].get("reason", ""))
            message = message or str(errors[0].get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        pass
    if not message:
        message = str(getattr(exc.resp, "reason", "") or "")
    return status, reason, message


def _parse_answer(exc: HttpError, now: datetime, quota_timezone: str) -> _Answer:
    status, reason, message = _error_fields(exc)
    detail = f"YouTube answered HTTP {status}" + (f" {reason}" if reason else "")
    if message:
        detail += f": {message}"
    content = exc.content if isinstance(exc.content, bytes) else b""
    text = content.decode("utf-8", "replace")
    return _Answer(exc, status, reason, detail, text, now, quota_timezone)


def _uploads_bucket_spent(a: _Answer) -> UploadError:
    # The videos.insert bucket of the project is spent: same as quotaExceeded, per PT day.
    return QuotaExhaustedError(
        a.detail,
        resume_at=next_quota_reset(a.now, a.quota_timezone),
        reason=a.reason or "rateLimitExceeded",
        status=a.status,
    )


def _quota_spent(a: _Answer) -> UploadError:
    return QuotaExhaustedError(
        a.detail,
        resume_at=next_quota_reset(a.now, a.quota_timezone),
        reason=a.reason,
        status=a.status,
    )


def _upload_limit(a: _Answer) -> UploadError:
    return UploadLimitExceededError(a.detail, reason=a.reason, status=a.status)


def _transient(a: _Answer) -> UploadError:
    return TransientUploadError(a.detail, reason=a.reason or f"http{a.status}", status=a.status)


def _unauthorized(a: _Answer) -> UploadError:
    return AuthorizationError(
        a.detail + " (run `langflix-scheduler auth` again to re-authorise this channel)",
        reason=a.reason or "unauthorized",
        status=a.status,
    )


def _no_session_uri(a: _Answer) -> UploadError:
    # A resumable initiation answered 200 without a session URI: a broken intermediary.
    return TransientUploadError(a.detail, reason="noSessionUri", status=a.status)


def _permanent(a: _Answer) -> UploadError:
    return PermanentUploadError(a.detail, reason=a.reason or f"http{a.status}", status=a.status)


#: API error answers, first match wins: ``(matches(answer), result(answer))``.
_HTTP_RULES: tuple[tuple[Callable[[_Answer], bool], Callable[[_Answer], UploadError]], ...] = (
    (
        lambda a: a.status == 429 and UPLOADS_PER_DAY.lower() in a.text.lower(),
        _uploads_bucket_spent,
    ),
    (lambda a: a.reason in QUOTA_REASONS, _quota_spent),
    (lambda a: a.reason == "uploadLimitExceeded", _upload_limit),
    (
        lambda a: a.reason in TRANSIENT_REASONS or a.status in {429, 408} or a.status >= 500,
        _transient,
    ),
    (lambda a: a.status == 401 or a.reason in AUTH_REASONS, _unauthorized),
    (lambda a: isinstance(a.exc, GoogleApiClientError) and a.status == 200, _no_session_uri),
    (lambda a: True, _permanent),
)


def _classify_http_error(exc: HttpError, *, now: datetime, quota_timezone: str) -> UploadError:
    answer = _parse_answer(exc, now, quota_timezone)
    for matches, result in _HTTP_RULES:
        if matches(answer):
            return result(answer)
    raise AssertionError("the last rule matches everything")  # pragma: no cover


def _refresh_failed(exc: BaseException) -> UploadError:
    assert isinstance(exc, google_auth_exceptions.RefreshError)
    return classify_refresh_error(exc)


def _network_errno(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS


#: Exceptions other than API answers, first match wins: ``(type, extra test, result)``.
_EXCEPTION_RULES: tuple[
    tuple[
        type[BaseException] | tuple[type[BaseException], ...],
        Callable[[BaseException], bool] | None,
        Callable[[BaseException], UploadError],
    ],
    ...,
] = (
    (
        google_auth_exceptions.RefreshError,
        None,
        _refresh_failed,
    ),
    (
        google_auth_exceptions.TransportError,
        None,
        lambda e: TransientUploadError(
            f"network error while refreshing the access token: {type(e).__name__}",
            reason="tokenTransportError",
        ),
    ),
    (
        google_auth_exceptions.GoogleAuthError,
        None,
        lambda e: AuthorizationError(
            f"credentials are unusable ({type(e).__name__}); run `langflix-scheduler auth`",
            reason="authError",
        ),
    ),
    (
        (socket.timeout, TimeoutError),
        None,
        lambda e: TransientUploadError("timed out talking to YouTube", reason="timeout"),
    ),
    (
        (ConnectionError, ssl.SSLError, http.client.HTTPException),
        None,
        lambda e: TransientUploadError(
            f"connection to YouTube failed: {type(e).__name__}: {e}", reason="connection"
        ),
    ),
    (
        httplib2.HttpLib2Error,
        None,
        lambda e: TransientUploadError(
            f"HTTP transport error: {type(e).__name__}: {e}", reason="transport"
        ),
    ),
    (
        OSError,
        _network_errno,
        lambda e: TransientUploadError(
            f"network error: {type(e).__name__}: {e}", reason="connection"
        ),
    ),
    (
        OSError,
        None,
        lambda e: PermanentUploadError(
            f"local I/O error: {type(e).__name__}: {e}", reason="localIOError"
        ),
    ),
)


def _classify_exception(exc: BaseException) -> UploadError:
    for types, extra, result in _EXCEPTION_RULES:
        if isinstance(exc, types) and (extra is None or extra(exc)):
            return result(exc)
    return PermanentUploadError(
        f"unexpected error talking to YouTube: {type(exc).__name__}: {exc}", reason="unexpected"
    )


def classify_error(
    exc: BaseException, *, now: datetime, quota_timezone: str = DEFAULT_QUOTA_TIMEZONE
) -> UploadError:
    """Translate an exception raised while talking to YouTube into an :class:`UploadError`.

    The reason is read from the error body (``error.errors[0].reason``), not from the message,
    except for the insert bucket's HTTP 429 "Video Uploads per day".

    ============================================================  ============================
    answer                                                        result
    ============================================================  ============================
    403 ``quotaExceeded`` / ``dailyLimitExceeded``                 :class:`QuotaExhaustedError`
    429 mentioning "Video Uploads per day"                         :class:`QuotaExhaustedError`
    ``uploadLimitExceeded`` (400)                                  :class:`UploadLimitExceededError`
    other 429, ``rateLimitExceeded``, ``userRateLimitExceeded``,   :class:`TransientUploadError`
    408, 5xx, connection resets, timeouts, TLS and DNS errors
    401, ``insufficientPermissions``, a dead refresh token         :class:`AuthorizationError`
    other 4xx (invalid metadata, not found, forbidden), file I/O   :class:`PermanentUploadError`
    ============================================================  ============================

    ``QuotaExhaustedError.resume_at`` is the next midnight in ``quota_timezone`` after ``now``.
    The returned error has ``exc`` as ``__cause__``; raise it with ``raise err from exc``.
    An :class:`UploadError` is returned unchanged.
    """
    if isinstance(exc, UploadError):
        return exc
    if isinstance(exc, HttpError):
        err = _classify_http_error(exc, now=now, quota_timezone=quota_timezone)
    else:
        err = _classify_exception(exc)
    err.__cause__ = exc
    return err


def refused_for_quota(status: int, content: object) -> bool:
    """Is this answer a quota refusal (the request was not charged)?"""
    if status not in (403, 429):
        return False
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
    if status == 429:
        return UPLOADS_PER_DAY.lower() in text.lower()
    return any(f'"{reason}"' in text for reason in QUOTA_REASONS)
