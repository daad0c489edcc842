"""OAuth for YouTube channels: authorise once in a browser, then load (and refresh) the token.

* :func:`authorize` runs Google's installed-app flow (a loopback redirect server) and saves the
  token, atomically, with mode ``0600``.
* :func:`load_credentials` loads a saved token, refreshes it when expired and saves it back. It
  **refuses** a token file that its group or others can read: it raises
  :class:`~langflix_scheduler.errors.ConfigurationError` (field ``token_path``) telling you to
  ``chmod 600`` it, because the refresh token in it grants upload rights to the channel.
* :func:`token_path_for` gives each channel its own token file.

A refresh token that Google no longer honours (``invalid_grant``) becomes an
:class:`~langflix_scheduler.errors.AuthorizationError` telling the user to run
``langflix-scheduler auth`` again. Apps whose OAuth consent screen is in "Testing" status get
refresh tokens that expire after 7 days; publish the app ("In production") to avoid that.

Tokens, client secrets and authorization codes are never logged.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from google.auth import exceptions as google_auth_exceptions
from google.oauth2.credentials import Credentials

from ..errors import AuthorizationError, ConfigurationError, TransientUploadError, UploadError

__all__ = [
    "DEFAULT_SCOPES",
    "TOKEN_FILE_MODE",
    "access_token_credentials",
    "authorize",
    "classify_refresh_error",
    "load_credentials",
    "read_credentials",
    "refresh_credentials",
    "save_credentials",
    "token_path_for",
]

logger = logging.getLogger(__name__)

YOUTUBE_UPLOAD_SCOPE = "https://www.googleapis.com/auth/youtube.upload"
YOUTUBE_FORCE_SSL_SCOPE = "https://www.googleapis.com/auth/youtube.force-ssl"

#: ``youtube.upload`` covers videos.insert and thumbnails.set; ``youtube.force-ssl`` is needed
#: for playlistItems.insert and videos.update.
DEFAULT_SCOPES: tuple[str, ...] = (YOUTUBE_UPLOAD_SCOPE, YOUTUBE_FORCE_SSL_SCOPE)

#: Token files are written with this mode (owner read/write only).
TOKEN_FILE_MODE = 0o600
#: Directories created for token files get this mode.
TOKEN_DIR_MODE = 0o700
#: Mode bits that must not be set on a token file (any group/other access).
_FORBIDDEN_TOKEN_BITS = stat.S_IRWXG | stat.S_IRWXO

_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_REAUTH_HINT = "run `langflix-scheduler auth` again to re-authorise this channel"
_TESTING_HINT = (
    "if the Google Cloud app's OAuth consent screen is in 'Testing' status, its refresh tokens "
    "expire after 7 days: publish the app to get long-lived tokens"
)


def access_token_credentials(token: str) -> Credentials:
    """Credentials holding only an access ``token`` (no refresh token, never refreshed).

    For talking to a stand-in API such as :class:`~langflix_scheduler.testing.FakeYouTube`
    (the demo does), where any bearer token is accepted; front ends outside ``youtube/`` use it
    instead of importing google-auth themselves.
    """
    return Credentials(token=token)  # type: ignore[no-untyped-call]


def token_path_for(channel: str, token_dir: str | os.PathLike[str]) -> Path:
    """The token file of ``channel`` inside ``token_dir`` (one file per channel).

    Raises:
        ConfigurationError: the channel name is not a safe file name.
    """
    if not isinstance(channel, str) or not _CHANNEL_NAME.match(channel) or ".." in channel:
        raise ConfigurationError(
            "channel",
            f"{channel!r} must be 1-128 letters, digits, '_', '.', '@' or '-' "
            "(it names the token file)",
        )
    return Path(token_dir) / f"{channel}.json"


def classify_refresh_error(exc: Exception) -> UploadError:
    """Translate google-auth's ``RefreshError`` into an :class:`UploadError`.

    Retryable refresh failures (the token endpoint answered 5xx) are transient; everything else,
    notably ``invalid_grant`` (expired or revoked refresh token), is an
    :class:`AuthorizationError` telling the user to run ``auth`` again. ``exc`` becomes the
    ``__cause__``.
    """
    summary = str(exc.args[0]) if exc.args else type(exc).__name__
    err: UploadError
    if getattr(exc, "retryable", False):
        err = TransientUploadError(
            f"refreshing the access token failed temporarily: {summary}", reason="tokenRefresh"
        )
    elif "invalid_grant" in summary:
        err = AuthorizationError(
            f"the refresh token was refused ({summary}); {_REAUTH_HINT}. {_TESTING_HINT}",
            reason="invalid_grant",
        )
    else:
        err = AuthorizationError(
            f"the access token cannot be refreshed ({summary}); {_REAUTH_HINT}",
            reason="refreshFailed",
            status=401,
        )
    err.__cause__ = exc
    return err


def _check_token_permissions(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AuthorizationError(
            f"no token file at {str(path)!r}; run `langflix-scheduler auth` to create it",
            reason="noToken",
        ) from None
    except OSError as exc:
        raise AuthorizationError(
            f"cannot read token file {str(path)!r}: {exc.strerror}", reason="noToken"
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise ConfigurationError("token_path", f"{str(path)!r} is not a regular file")
    if os.name == "posix" and st.st_mode & _FORBIDDEN_TOKEN_BITS:
        raise ConfigurationError(
            "token_path",
            f"{str(path)!r} has mode {stat.S_IMODE(st.st_mode):04o}: group or others can access "
            f"the channel's refresh token; run `chmod 600 {path}` (or re-run "
            "`langflix-scheduler auth`)",
        )
    return st


def save_credentials(credentials: Any, token_path: str | os.PathLike[str]) -> Path:
    """Write ``credentials`` as JSON to ``token_path`` atomically with mode ``0600``.

    The parent directory is created with mode ``0700`` when missing. A crash never leaves a
    partial token file: the JSON goes to a temporary file in the same directory first.
    """
    path = Path(token_path)
    path.parent.mkdir(mode=TOKEN_DIR_MODE, parents=True, exist_ok=True)
    data = credentials.to_json()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp already creates the file 0600; chmod again in case of an unusual umask/OS.
        os.chmod(tmp, TOKEN_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    logger.info("saved OAuth token to %s (mode %04o)", path, TOKEN_FILE_MODE)
    return path


def _refresh(credentials: Credentials, on_response: Callable[[Any], None] | None = None) -> None:
    import google_auth_httplib2
    from googleapiclient.http import build_http

    http = build_http()
    inner = google_auth_httplib2.Request(http)

    def request(*args: Any, **kwargs: Any) -> Any:
        response = inner(*args, **kwargs)
        if on_response is not None:
            on_response(response)
        return response

    try:
        credentials.refresh(request)  # type: ignore[no-untyped-call]
    finally:
        http.close()


def load_credentials(
    token_path: str | os.PathLike[str],
    *,
    scopes: Sequence[str] | None = None,
    token_uri: str | None = None,
) -> Credentials:
    """Load the token saved by :func:`authorize`; refresh and re-save it when expired.

    Args:
        token_path: the channel's token file (see :func:`token_path_for`).
        scopes: override the scopes stored in the file (normally leave ``None``).
        token_uri: OAuth token endpoint for refreshing (default Google's; google-auth ignores a
            ``token_uri`` stored in the file). Tests point it at ``FakeYouTube.token_uri``.

    Raises:
        ConfigurationError: the token file is accessible by group or others (``chmod 600`` it),
            or is not a regular file.
        AuthorizationError: no token file, an unreadable or malformed one, or a refresh token
            Google refuses (run ``langflix-scheduler auth`` again).
        TransientUploadError: the token endpoint could not be reached; retry later.
    """
    path = Path(token_path)
    credentials = read_credentials(path, scopes=scopes, token_uri=token_uri)
    if not credentials.valid:
        logger.info("access token in %s expired; refreshing", path)
        refresh_credentials(credentials)
        save_credentials(credentials, path)
    return credentials


def read_credentials(
    token_path: str | os.PathLike[str],
    *,
    scopes: Sequence[str] | None = None,
    token_uri: str | None = None,
) -> Credentials:
    """Read a token file (checking its mode first) without refreshing it.

    Arguments and errors as for :func:`load_credentials`, except that nothing is refreshed, so
    no :class:`TransientUploadError` and no ``invalid_grant`` can come from here.
    """
    path = Path(token_path)
    _check_token_permissions(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        credentials: Credentials = Credentials.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes
        )
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise AuthorizationError(
            f"token file {str(path)!r} is not a valid authorised-user token "
            f"({type(exc).__name__}); run `langflix-scheduler auth` again",
            reason="invalidToken",
        ) from exc
    if token_uri is not None:
        credentials._token_uri = token_uri
    return credentials


def refresh_credentials(
    credentials: Credentials, *, on_response: Callable[[Any], None] | None = None
) -> None:
    """Refresh ``credentials`` now (in memory; :func:`save_credentials` writes them back).

    ``on_response`` is called with the token endpoint's HTTP response (``.status``,
    ``.data``) when it answers, for a caller that reads fields google-auth does not keep
    (``scope``, ``refresh_token_expires_in``); it must not log the body (it holds the token).

    Raises:
        AuthorizationError: the refresh token was refused (``invalid_grant``: run ``auth``
            again) or cannot be used.
        TransientUploadError: the token endpoint could not be reached or answered 5xx.
    """
    try:
        _refresh(credentials, on_response)
    except google_auth_exceptions.RefreshError as exc:
        raise classify_refresh_error(exc) from exc
    except google_auth_exceptions.TransportError as exc:
        raise TransientUploadError(
            f"cannot reach the OAuth token endpoint: {type(exc).__name__}",
            reason="tokenTransportError",
        ) from exc


#: Loggers that print the redirect request line (``GET /?code=...``), the token request body or
#: its URL at INFO/DEBUG level: silenced below WARNING while the flow runs, so ``--verbose``
#: never logs an authorization code.
_OAUTH_LOGGERS = (
    "google_auth_oauthlib",
    "requests_oauthlib",
    "oauthlib",
    "urllib3",
    "requests",
    "google.auth.transport",
)


@contextlib.contextmanager
def _oauth_loggers_quiet() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in _OAUTH_LOGGERS}
    for name in _OAUTH_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _warn_if_shared(client_secrets: Path) -> None:
    """The client secret is a secret: say so when group or others can read the file."""
    try:
        mode = stat.S_IMODE(client_secrets.stat().st_mode)
    except OSError:
        return  # from_client_secrets_file reports a missing file
    if mode & 0o077:
        logger.warning(
            "client secrets file %s is readable by group or others (mode %04o): run `chmod 600 %s`",
            client_secrets,
            mode,
            client_secrets,
        )


def authorize(
    client_secrets: str | os.PathLike[str],
    token_path: str | os.PathLike[str],
    *,
    headless: bool = False,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    open_browser: bool = True,
    port: int = 0,
    host: str = "localhost",
    on_url: Callable[[str], None] | None = None,
    timeout_seconds: int | None = None,
) -> Credentials:
    """Authorise a channel in the browser and save its token (mode ``0600``) to ``token_path``.

    Runs ``InstalledAppFlow.run_local_server``: a one-shot HTTP server on ``host:port`` receives
    Google's redirect. The consent URL is handed to ``on_url`` (default: logged at WARNING
    level, since the library does not print; the CLI passes a callback that prints it).

    Headless machines (``headless=True``): no browser is opened. Pick a fixed ``port``, forward
    it from your desktop (``ssh -L 8765:localhost:8765 server``), open the URL there, and the
    redirect to ``http://localhost:8765/`` reaches this process through the tunnel.

    Args:
        client_secrets: the OAuth client JSON downloaded from Google Cloud (type "Desktop app").
        token_path: where to save the token (see :func:`token_path_for`).
        headless: do not open a browser (implies ``open_browser=False``).
        scopes: OAuth scopes (default ``youtube.upload`` + ``youtube.force-ssl``).
        open_browser: open the consent page in the default browser.
        port: local redirect port (0 = any free port; choose one for port forwarding).
        host: host name used in the redirect URI.
        on_url: called with the consent URL.
        timeout_seconds: give up waiting for the redirect after this long (``None``: wait).

    Raises:
        ConfigurationError: the client secrets file is missing or malformed.
        AuthorizationError: the user denied access or the code exchange failed.
    """
    flow = _installed_app_flow(client_secrets, scopes)
    _announce_consent_url(flow, on_url)
    credentials = _run_local_server(
        flow,
        host=host,
        port=port,
        open_browser=open_browser and not headless,
        timeout_seconds=timeout_seconds,
    )
    if not getattr(credentials, "refresh_token", None):
        logger.warning("Google returned no refresh token; the token will stop working in an hour")
    save_credentials(credentials, token_path)
    return credentials


def _installed_app_flow(client_secrets: str | os.PathLike[str], scopes: Sequence[str]) -> Any:
    """The installed-app flow for ``client_secrets`` (warning when the file is shared).

    Raises:
        ConfigurationError: the client secrets file is missing or malformed.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    _warn_if_shared(Path(os.fspath(client_secrets)))
    try:
        return InstalledAppFlow.from_client_secrets_file(os.fspath(client_secrets), list(scopes))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigurationError(
            "client_secrets",
            f"cannot use {os.fspath(client_secrets)!r} ({type(exc).__name__}): download the "
            "OAuth client JSON (Desktop app) from Google Cloud Console",
        ) from exc


def _announce_consent_url(flow: Any, on_url: Callable[[str], None] | None) -> None:
    """Make ``flow`` hand its consent URL to ``on_url`` (default: log it at WARNING level)."""

    def announce(url: str) -> None:
        if on_url is not None:
            on_url(url)
        else:
            logger.warning("Open this URL in a browser to authorise the channel: %s", url)

    original_authorization_url = flow.authorization_url

    def authorization_url(**kwargs: Any) -> tuple[str, str]:
        url, state = original_authorization_url(**kwargs)
        announce(url)
        return url, state

    flow.authorization_url = authorization_url


def _run_local_server(
    flow: Any, *, host: str, port: int, open_browser: bool, timeout_seconds: int | None
) -> Credentials:
    """Wait for Google's redirect on ``host:port`` (OAuth loggers quiet) and return the token.

    Raises:
        ConfigurationError: ``host:port`` cannot be listened on.
        AuthorizationError: the user denied access or the code exchange failed.
    """
    try:
        with _oauth_loggers_quiet():
            credentials: Credentials = flow.run_local_server(
                host=host,
                port=port,
                open_browser=open_browser,
                authorization_prompt_message="",
                timeout_seconds=timeout_seconds,
                access_type="offline",
                prompt="consent",
            )
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise AuthorizationError(
                f"authorisation failed ({type(exc).__name__}); try `langflix-scheduler auth` again",
                reason="authorizationFailed",
            ) from exc
        raise ConfigurationError(
            "port", f"cannot listen on {host}:{port} for the OAuth redirect: {exc.strerror}"
        ) from exc
    except Exception as exc:
        raise AuthorizationError(
            f"authorisation failed ({type(exc).__name__}); try `langflix-scheduler auth` again",
            reason="authorizationFailed",
        ) from exc
    return credentials
