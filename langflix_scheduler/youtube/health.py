"""Token health: does a channel's stored token still work, and for which YouTube channel?

:func:`check_token` refreshes one channel's token (proving the refresh token is still
honoured), calls ``channels.list(part=id,snippet, mine=true)`` (1 unit of the shared quota
bucket) and returns a :class:`TokenHealth`: the YouTube channel id and title the token belongs
to, whether that is the channel expected, the scopes granted, when the refresh token expires
(when Google says so: apps whose OAuth consent screen is in "Testing" get refresh tokens that
expire after 7 days, announced as ``refresh_token_expires_in``), and a typed
:class:`TokenProblem` when something needs a person (``invalid_grant``: run
``langflix-scheduler auth`` again). :func:`check_tokens` checks every channel with a stored
token.

Problems with one token are reported, not raised, so one bad token does not hide the others.
Exceptions from google libraries never escape; each problem keeps the library's error (with the
google exception as its ``__cause__``) in :attr:`TokenHealth.error`. Tokens are never logged.

Quota: ``on_call`` is told about the ``channels.list`` request before it is sent
(:class:`~langflix_scheduler.youtube.uploader.ApiCallReport`, operation ``channels.list``), the
same hook the processor's quota ledger uses for uploads;
``ScheduleManager.api_call_recorder()`` is one that writes it to the ledger.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import (
    AuthorizationError,
    ConfigurationError,
    QuotaExhaustedError,
    SchedulerError,
    TransientUploadError,
    UploadError,
)
from ..quota import DEFAULT_QUOTA_TIMEZONE
from .uploader import CallCallback

__all__ = [
    "CHANNEL_ID_PATTERN",
    "READ_SCOPES",
    "TokenHealth",
    "TokenProblem",
    "build_health",
    "check_token",
    "check_tokens",
    "health_from_error",
    "stored_channels",
]

logger = logging.getLogger(__name__)

#: What a YouTube channel id looks like (``UC`` + 22 characters).
CHANNEL_ID_PATTERN = re.compile(r"^UC[0-9A-Za-z_-]{22}$")
#: Scopes that let ``channels.list(mine=true)`` read the channel (``youtube.upload`` does not).
READ_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/youtube",
        "https://www.googleapis.com/auth/youtube.force-ssl",
        "https://www.googleapis.com/auth/youtube.readonly",
        "https://www.googleapis.com/auth/youtubepartner",
    }
)
CHANNEL_PARTS = "id,snippet"
_REAUTH = "run `langflix-scheduler auth --channel {channel}` again"


class TokenProblem(StrEnum):
    """What is wrong with a channel's token."""

    #: The refresh token is refused (``invalid_grant``: expired or revoked), or the token file
    #: is missing or malformed: run ``auth`` again.
    NEEDS_REAUTH = "needs_reauth"
    #: The token works but belongs to another YouTube channel than the one expected.
    WRONG_CHANNEL = "wrong_channel"
    #: Scopes the scheduler needs were not granted (run ``auth`` again and allow them all).
    MISSING_SCOPES = "missing_scopes"
    #: The Google account behind the token has no YouTube channel.
    NO_CHANNEL = "no_channel"
    #: The token file is readable by others or not a regular file (``chmod 600`` it).
    UNSAFE_FILE = "unsafe_file"
    #: The check could not finish (network, 5xx, quota spent): try again later.
    CHECK_FAILED = "check_failed"


#: Problems a person must fix; :attr:`TokenProblem.CHECK_FAILED` may pass by itself.
_NEEDS_ACTION = frozenset(set(TokenProblem) - {TokenProblem.CHECK_FAILED})


@dataclass(frozen=True, kw_only=True)
class TokenHealth:
    """The result of checking one channel's token.

    Attributes:
        channel: the scheduler's channel name (the token file's name).
        token_path: the token file.
        checked_at: when the check ran.
        youtube_channel_id: the YouTube channel the token belongs to (None: unknown).
        youtube_channel_title: its title.
        expected_channel_id: the YouTube channel id it should belong to, if known.
        channel_matches: True/False when ``expected_channel_id`` is known and the channel was
            read; None when they cannot be compared.
        scopes: the scopes granted (as the token endpoint listed them, else as stored).
        scopes_source: ``"token_endpoint"`` or ``"token_file"`` (where ``scopes`` came from).
        missing_scopes: required scopes not among ``scopes``.
        access_token_expires_at: when the fresh access token expires.
        refresh_token_expires_at: when the refresh token expires, when Google said so (apps in
            "Testing": 7 days after consent); None when Google gave no expiry.
        problem: what needs doing, or None when the token is healthy.
        message: a sentence saying what is wrong and what to do ("" when healthy).
        error: the library error behind ``problem``, when there was one (its ``__cause__`` is
            the google exception).
    """

    channel: str
    token_path: str
    checked_at: datetime
    youtube_channel_id: str | None = None
    youtube_channel_title: str | None = None
    expected_channel_id: str | None = None
    channel_matches: bool | None = None
    scopes: tuple[str, ...] = ()
    scopes_source: str = "token_file"
    missing_scopes: tuple[str, ...] = ()
    access_token_expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    problem: TokenProblem | None = None
    message: str = ""
    error: SchedulerError | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return self.problem is None

    @property
    def needs_reauth(self) -> bool:
        """A person must act (run ``auth`` again, or ``chmod 600`` the file) before this
        channel can upload; a check that merely could not finish is not counted."""
        return self.problem in _NEEDS_ACTION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (times as ISO 8601, the error as its class name and reason)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "channel": self.channel,
            "token_path": self.token_path,
            "checked_at": iso(self.checked_at),
            "ok": self.ok,
            "needs_reauth": self.needs_reauth,
            "youtube_channel_id": self.youtube_channel_id,
            "youtube_channel_title": self.youtube_channel_title,
            "expected_channel_id": self.expected_channel_id,
            "channel_matches": self.channel_matches,
            "scopes": list(self.scopes),
            "scopes_source": self.scopes_source,
            "missing_scopes": list(self.missing_scopes),
            "access_token_expires_at": iso(self.access_token_expires_at),
            "refresh_token_expires_at": iso(self.refresh_token_expires_at),
            "problem": self.problem.value if self.problem is not None else None,
            "message": self.message,
            "error": type(self.error).__name__ if self.error is not None else None,
            "reason": getattr(self.error, "reason", None) if self.error is not None else None,
        }


# -- building the report (pure) ------------------------------------------------------------------


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _refresh_expiry(token_response: Mapping[str, Any], now: datetime) -> datetime | None:
    raw = token_response.get("refresh_token_expires_in")
    if isinstance(raw, bool):
        return None
    try:
        seconds = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if seconds < 0:
        return None
    return now + timedelta(seconds=seconds)


def _granted(
    token_response: Mapping[str, Any], stored_scopes: Sequence[str]
) -> tuple[tuple[str, ...], str]:
    raw = token_response.get("scope")
    if isinstance(raw, str) and raw.strip():
        return tuple(sorted(set(raw.split()))), "token_endpoint"
    return tuple(sorted(set(stored_scopes))), "token_file"


def build_health(
    channel: str,
    token_path: str | os.PathLike[str],
    *,
    now: datetime,
    token_response: Mapping[str, Any],
    channel_items: Sequence[Mapping[str, Any]] | None,
    stored_scopes: Sequence[str] = (),
    required_scopes: Iterable[str] = (),
    expected_channel_id: str | None = None,
    access_token_expires_at: datetime | None = None,
    channel_error: UploadError | None = None,
) -> TokenHealth:
    """The report of a token that refreshed: from the token endpoint's answer
    (``token_response``: only ``scope`` and ``refresh_token_expires_in`` are read) and
    ``channels.list``'s ``items`` (None when the call failed with ``channel_error``).

    The first problem found wins, in this order: the channel could not be read (a scope missing
    for reading it, or ``channel_error``), no channel, another channel than expected, scopes
    missing.
    """
    scopes, source = _granted(token_response, stored_scopes)
    missing = tuple(sorted(set(required_scopes) - set(scopes)))
    common: dict[str, Any] = {
        "channel": channel,
        "token_path": os.fspath(token_path),
        "checked_at": now,
        "expected_channel_id": expected_channel_id,
        "scopes": scopes,
        "scopes_source": source,
        "missing_scopes": missing,
        "access_token_expires_at": _aware(access_token_expires_at),
        "refresh_token_expires_at": _refresh_expiry(token_response, now),
    }
    reauth = _REAUTH.format(channel=channel)
    if channel_items is None:
        err = channel_error or TransientUploadError("channels.list gave no answer")
        problem, message = _unread_channel_problem(err, reauth)
        return TokenHealth(**common, problem=problem, message=message, error=err)
    if not channel_items:
        return TokenHealth(
            **common,
            problem=TokenProblem.NO_CHANNEL,
            message=(
                "the Google account behind this token has no YouTube channel; "
                f"{reauth} and pick the channel's account"
            ),
        )
    return _health_of_channel(common, channel_items[0], missing=missing, reauth=reauth)


def _unread_channel_problem(err: UploadError, reauth: str) -> tuple[TokenProblem, str]:
    """The problem, and what to do, when ``channels.list`` failed with ``err``."""
    if isinstance(err, AuthorizationError) and err.reason == "insufficientPermissions":
        return TokenProblem.MISSING_SCOPES, (
            "the token may not read the channel (it lacks a YouTube read scope such as "
            f"youtube.force-ssl); {reauth} and allow every permission asked"
        )
    if isinstance(err, AuthorizationError):
        return TokenProblem.NEEDS_REAUTH, f"YouTube refused the token ({err}); {reauth}"
    return TokenProblem.CHECK_FAILED, f"could not read the channel ({err}); try again later"


def _health_of_channel(
    common: Mapping[str, Any],
    item: Mapping[str, Any],
    *,
    missing: tuple[str, ...],
    reauth: str,
) -> TokenHealth:
    """The report once ``channels.list`` named a channel (``item``): another channel than
    ``common["expected_channel_id"]`` wins over ``missing`` scopes."""
    expected_channel_id = common["expected_channel_id"]
    channel_id = str(item.get("id") or "") or None
    snippet = item.get("snippet")
    title = snippet.get("title") if isinstance(snippet, Mapping) else None
    matches = None if expected_channel_id is None else channel_id == expected_channel_id
    fields = {
        **common,
        "youtube_channel_id": channel_id,
        "youtube_channel_title": str(title) if title is not None else None,
        "channel_matches": matches,
    }
    if matches is False:
        return TokenHealth(
            **fields,
            problem=TokenProblem.WRONG_CHANNEL,
            message=(
                f"the token belongs to channel {channel_id} ({title!r}), not "
                f"{expected_channel_id}; {reauth} and pick the right channel"
            ),
        )
    if missing:
        return TokenHealth(
            **fields,
            problem=TokenProblem.MISSING_SCOPES,
            message=f"scopes not granted: {', '.join(missing)}; {reauth} and allow them",
        )
    return TokenHealth(**fields)


def health_from_error(
    channel: str,
    token_path: str | os.PathLike[str],
    err: SchedulerError,
    *,
    now: datetime,
    expected_channel_id: str | None = None,
) -> TokenHealth:
    """The report of a token that could not be read or refreshed."""
    reauth = _REAUTH.format(channel=channel)
    problem: TokenProblem
    if isinstance(err, ConfigurationError):
        problem, message = TokenProblem.UNSAFE_FILE, str(err)
    elif isinstance(err, AuthorizationError):
        problem = TokenProblem.NEEDS_REAUTH
        if err.reason == "invalid_grant":
            message = (
                f"the refresh token was refused (invalid_grant: expired or revoked); {reauth}. "
                "If the Google Cloud app's OAuth consent screen is in 'Testing' status, its "
                "refresh tokens expire after 7 days: publish the app"
            )
        elif err.reason == "noToken":
            message = (
                f"no token stored for this channel; run `langflix-scheduler auth --channel "
                f"{channel}`"
            )
        else:
            message = f"{err}; {reauth}"
    elif isinstance(err, QuotaExhaustedError | TransientUploadError):
        problem, message = TokenProblem.CHECK_FAILED, f"{err}; try again later"
    else:
        problem, message = TokenProblem.CHECK_FAILED, str(err)
    return TokenHealth(
        channel=channel,
        token_path=os.fspath(token_path),
        checked_at=now,
        expected_channel_id=expected_channel_id,
        problem=problem,
        message=message,
        error=err,
    )


# -- talking to Google ---------------------------------------------------------------------------


def stored_channels(token_dir: str | os.PathLike[str]) -> list[str]:
    """The channels with a token file in ``token_dir`` (sorted; none when it does not exist)."""
    from .auth import token_path_for

    directory = Path(token_dir).expanduser()
    if not directory.is_dir():
        return []
    names = []
    for path in directory.glob("*.json"):
        try:
            token_path_for(path.stem, directory)
        except ConfigurationError:
            continue  # a temporary file of an atomic save, or not ours
        names.append(path.stem)
    return sorted(names)


def _expected(channel: str, expected_channel_id: str | None) -> str | None:
    if expected_channel_id is not None:
        if not CHANNEL_ID_PATTERN.match(expected_channel_id):
            raise ConfigurationError(
                "expected_channel_id",
                f"{expected_channel_id!r} is not a YouTube channel id (UC + 22 characters)",
            )
        return expected_channel_id
    # A channel named by its YouTube id can be compared without being told.
    return channel if CHANNEL_ID_PATTERN.match(channel) else None


def _list_channels(
    credentials: Any, api_endpoint: str | None, on_call: CallCallback | None
) -> list[Mapping[str, Any]]:
    import google_auth_httplib2
    from googleapiclient.discovery import build_from_document
    from googleapiclient.http import build_http

    from .google import discovery_document
    from .metering import MeteredHttp

    meter = MeteredHttp(build_http())
    meter.on_call = on_call
    authed = google_auth_httplib2.AuthorizedHttp(credentials, http=meter)
    try:
        service = build_from_document(discovery_document(api_endpoint), http=authed)
        answer = service.channels().list(part=CHANNEL_PARTS, mine=True).execute(num_retries=0)
    finally:
        authed.close()
    items = answer.get("items") if isinstance(answer, dict) else None
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def check_token(
    channel: str,
    token_dir: str | os.PathLike[str],
    *,
    expected_channel_id: str | None = None,
    required_scopes: Iterable[str] | None = None,
    api_endpoint: str | None = None,
    token_uri: str | None = None,
    on_call: CallCallback | None = None,
    clock: Callable[[], datetime] | None = None,
    quota_timezone: str = DEFAULT_QUOTA_TIMEZONE,
    save: bool = True,
) -> TokenHealth:
    """Check ``channel``'s stored token: refresh it, ask YouTube whose channel it is.

    Args:
        channel: the scheduler's channel name (its token file is
            ``token_path_for(channel, token_dir)``).
        token_dir: the directory of token files (``~`` is expanded).
        expected_channel_id: the YouTube channel id (``UC...``) the token must belong to. When
            None and ``channel`` itself is a channel id, that is expected; otherwise the report
            says they cannot be compared (``channel_matches`` None).
        required_scopes: scopes the token must hold (default
            :data:`~langflix_scheduler.youtube.auth.DEFAULT_SCOPES`).
        api_endpoint: YouTube API base URL (default Google's; a ``FakeYouTube`` in tests).
        token_uri: OAuth token endpoint (default Google's; ``FakeYouTube.token_uri`` in tests).
        on_call: told about ``channels.list`` before it is sent (quota ledger); an exception it
            raises stops the request and propagates unchanged.
        clock: the aware current time (default ``datetime.now(UTC)``).
        quota_timezone: for :class:`~langflix_scheduler.errors.QuotaExhaustedError`.
        save: write the refreshed token back to its file (mode ``0600``), as
            :func:`~langflix_scheduler.youtube.auth.load_credentials` does.

    Returns:
        The report; a problem with the token is in it (:attr:`TokenHealth.problem`), not raised.

    Raises:
        ConfigurationError: ``channel`` is not a valid channel name, or ``expected_channel_id``
            is not a channel id.
    """
    from .auth import DEFAULT_SCOPES, token_path_for

    path = token_path_for(channel, Path(token_dir).expanduser())
    expected = _expected(channel, expected_channel_id)
    now = (clock or (lambda: datetime.now(UTC)))()
    required = tuple(DEFAULT_SCOPES if required_scopes is None else required_scopes)
    try:
        credentials, token_response = _refreshed(path, token_uri=token_uri, save=save)
    except (AuthorizationError, TransientUploadError, ConfigurationError) as err:
        logger.info("token of channel %s: %s", channel, type(err).__name__)
        return health_from_error(channel, path, err, now=now, expected_channel_id=expected)
    items, channel_error = _read_channel(credentials, api_endpoint, on_call, now, quota_timezone)
    stored = getattr(credentials, "granted_scopes", None) or credentials.scopes or ()
    return build_health(
        channel,
        path,
        now=now,
        token_response=token_response,
        channel_items=items,
        stored_scopes=tuple(stored),
        required_scopes=required,
        expected_channel_id=expected,
        access_token_expires_at=credentials.expiry,
        channel_error=channel_error,
    )


def _refreshed(path: Path, *, token_uri: str | None, save: bool) -> tuple[Any, dict[str, Any]]:
    """Read and refresh the token at ``path`` (saving it back when ``save``): the credentials
    and the token endpoint's ``scope`` and ``refresh_token_expires_in``.

    Raises:
        AuthorizationError, TransientUploadError, ConfigurationError: as
            :func:`~langflix_scheduler.youtube.auth.read_credentials` and
            :func:`~langflix_scheduler.youtube.auth.refresh_credentials` raise them.
    """
    from .auth import read_credentials, refresh_credentials, save_credentials

    responses: list[Any] = []
    credentials = read_credentials(path, token_uri=token_uri)
    refresh_credentials(credentials, on_response=responses.append)
    if save:
        try:
            save_credentials(credentials, path)
        except OSError as exc:
            # The check stands; only the fresh access token is not kept for the next run.
            logger.warning("could not save the refreshed token to %s: %s", path, exc.strerror)
    return credentials, _token_fields(responses)


def _read_channel(
    credentials: Any,
    api_endpoint: str | None,
    on_call: CallCallback | None,
    now: datetime,
    quota_timezone: str,
) -> tuple[list[Mapping[str, Any]] | None, UploadError | None]:
    """``channels.list``'s items, or None and the classified error when the call failed.

    Raises:
        ConfigurationError: about ``api_endpoint``.
        Exception: whatever ``on_call`` raised, unchanged.
    """
    from .classify import classify_error
    from .metering import CallbackFailed

    try:
        return _list_channels(credentials, api_endpoint, on_call), None
    except CallbackFailed as exc:
        raise exc.original from None  # the caller's on_call raised: theirs, unchanged
    except SchedulerError:
        raise  # a ConfigurationError about api_endpoint
    except Exception as exc:
        return None, classify_error(exc, now=now, quota_timezone=quota_timezone)


def _token_fields(responses: Sequence[Any]) -> dict[str, Any]:
    """``scope`` and ``refresh_token_expires_in`` of the last successful token response; the
    rest (the tokens) is dropped at once."""
    for response in reversed(responses):
        if int(getattr(response, "status", 0) or 0) != 200:
            continue
        data = getattr(response, "data", b"")
        try:
            body = json.loads(data.decode("utf-8") if isinstance(data, bytes) else str(data))
        except (ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(body, dict):
            return {}
        return {k: body[k] for k in ("scope", "refresh_token_expires_in") if k in body}
    return {}


def check_tokens(
    token_dir: str | os.PathLike[str],
    channels: Sequence[str] | None = None,
    *,
    expected_channel_ids: Mapping[str, str] | None = None,
    **options: Any,
) -> list[TokenHealth]:
    """:func:`check_token` for each of ``channels`` (default: every channel with a token file
    in ``token_dir``, sorted), one after another. ``expected_channel_ids`` maps a channel name to
    the YouTube channel id it must belong to; ``options`` go to :func:`check_token`."""
    names = list(channels) if channels is not None else stored_channels(token_dir)
    expected = dict(expected_channel_ids or {})
    return [
        check_token(name, token_dir, expected_channel_id=expected.get(name), **options)
        for name in names
    ]
