"""Authentication, CSRF tokens, form versions, security headers and redaction for the dashboard.

* **Auth**: a bearer token (``Authorization: Bearer ...`` or a login cookie holding an HMAC of the
  token, never the token itself) and/or HTTP basic auth. Compared in constant time.
* **CSRF**: double submit. A random ``lfs_csrf`` cookie is set on every page; each form carries
  ``HMAC(secret, cookie)``; a POST whose field does not match its cookie is refused (403).
* **Stale forms**: each action form carries the schedule's ``updated_at`` it was rendered from;
  a POST for a schedule changed since then is refused (409).
* **Redaction**: free text from the database (``last_error``, run errors) passes through
  :func:`redact`, which removes resumable-session URIs, upload ids, OAuth tokens and secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "AUTH_COOKIE",
    "CSRF_COOKIE",
    "SECURITY_HEADERS",
    "Guard",
    "redact",
]

CSRF_COOKIE = "lfs_csrf"
AUTH_COOKIE = "lfs_auth"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
    (b"cache-control", b"no-store"),
)

_SECRET_PATTERNS = (
    # resumable upload sessions: the whole URI is a bearer credential
    re.compile(r"https?://[^\s'\"<>]*upload_id=[^\s'\"<>]*", re.IGNORECASE),
    re.compile(r"upload_id=[^\s&'\"<>]+", re.IGNORECASE),
    # Google OAuth access / refresh tokens, client secrets
    re.compile(r"ya29\.[0-9A-Za-z_\-.]+"),
    re.compile(r"1//[0-9A-Za-z_\-]{20,}"),
    re.compile(r"GOCSPX-[0-9A-Za-z_\-]+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\"<>]+"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|token|password|key)\s*[=:]\s*)"
        r"[^\s&'\",<>]+"
    ),
    # credentials inside database URLs
    re.compile(r"(?i)(\w+://[^:/\s]+:)[^@/\s]+(@)"),
)


def redact(text: str | None) -> str:
    """``text`` with session URIs, tokens and secrets replaced by ``[redacted]``."""
    if not text:
        return ""
    out = text
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2:
            out = pattern.sub(lambda m: f"{m.group(1)}[redacted]{m.group(2)}", out)
        elif pattern.groups == 1:
            out = pattern.sub(lambda m: f"{m.group(1)}[redacted]", out)
        else:
            out = pattern.sub("[redacted]", out)
    return out


class Guard:
    """The secrets of one app: signs CSRF tokens and login cookies, checks credentials."""

    def __init__(
        self,
        *,
        secret: str | bytes | None,
        token: str | None,
        basic_auth: tuple[str, str] | None,
    ) -> None:
        if isinstance(secret, str):
            secret = secret.encode()
        self._secret = secret or secrets.token_bytes(32)
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise ValueError("token must be a string of at least 8 characters")
        if basic_auth is not None and (
            len(basic_auth) != 2 or not all(isinstance(p, str) and p for p in basic_auth)
        ):
            raise ValueError("basic_auth must be a (user, password) pair of non-empty strings")
        self.token = token
        self.basic_auth = basic_auth

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    # -- authentication -----------------------------------------------------------------------

    @property
    def auth_required(self) -> bool:
        return self.token is not None or self.basic_auth is not None

    def login_cookie(self) -> str:
        """What the login cookie holds: an HMAC of the token (the token is never stored)."""
        assert self.token is not None
        return self._mac("login", self.token)

    def check_token(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            given.encode("utf-8", "surrogateescape"), self.token.encode()
        )

    def authenticated(self, headers: MutableMapping[str, str], cookies: dict[str, str]) -> bool:
        if not self.auth_required:
            return True
        header = headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if self.token is not None:
            if scheme.lower() == "bearer" and self.check_token(value.strip()):
                return True
            cookie = cookies.get(AUTH_COOKIE, "")
            if cookie and hmac.compare_digest(cookie.encode(), self.login_cookie().encode()):
                return True
        if self.basic_auth is not None and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
            want_user, want_password = self.basic_auth
            ok_user = hmac.compare_digest(user.encode(), want_user.encode())
            ok_password = hmac.compare_digest(password.encode(), want_password.encode())
            return ok_user and ok_password
        return False

    # -- CSRF ---------------------------------------------------------------------------------

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, cookie: str) -> str:
        return self._mac("csrf", cookie)

    def csrf_ok(self, cookie: str | None, field: object) -> bool:
        if not cookie or not isinstance(field, str) or not field:
            return False
        return hmac.compare_digest(field.encode(), self.csrf_token(cookie).encode())


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
