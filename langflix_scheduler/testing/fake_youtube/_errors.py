"""The error answers of the fake, in YouTube's body shape."""

from __future__ import annotations

from typing import Any

#: The quota bucket of ``videos.insert`` in the 2026 model (a spent one answers HTTP 429).
UPLOADS_BUCKET = "uploads"


class _ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, *, domain: str = "global") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
            }
        }


def _quota_error(bucket: str) -> _ApiError:
    if bucket == UPLOADS_BUCKET:
        return _ApiError(
            429,
            "rateLimitExceeded",
            "Quota exceeded for quota metric 'Video Uploads' and limit 'Video Uploads per day' "
            "of service 'youtube.googleapis.com' for consumer 'project_number:0'.",
        )
    return _ApiError(
        403,
        "quotaExceeded",
        'The request cannot be completed because you have exceeded your <a href="/youtube/v3/'
        'getting-started#quota">quota</a>.',
        domain="youtube.quota",
    )


def _upload_limit_error() -> _ApiError:
    return _ApiError(
        400,
        "uploadLimitExceeded",
        "The user has exceeded the number of videos they may upload.",
        domain="youtube.video",
    )


def _unauthorized_error() -> _ApiError:
    return _ApiError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    )


def _server_error(status: int) -> _ApiError:
    return _ApiError(status, "backendError", "Backend Error")


def _invalid(reason: str, message: str) -> _ApiError:
    return _ApiError(400, reason, message, domain="youtube.video")
