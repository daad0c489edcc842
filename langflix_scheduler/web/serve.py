"""Serving the dashboard on its own (``langflix-scheduler web``), with uvicorn.

Everything the command does lives here so any CLI layout can call :func:`serve`.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from ..errors import ConfigurationError

if TYPE_CHECKING:
    import uvicorn

    from ..manager import ScheduleManager

__all__ = ["build_server", "check_bind", "is_loopback", "parse_basic_auth", "serve"]

logger = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, token: str | None, basic_auth: tuple[str, str] | None) -> None:
    """Refuse to listen beyond loopback without a token or basic auth.

    Raises:
        ConfigurationError: ``host`` is not a loopback address and no credential is set.
    """
    if not is_loopback(host) and token is None and basic_auth is None:
        raise ConfigurationError(
            "host",
            f"{host!r} is reachable from other machines: set --token (or "
            "LANGFLIX_SCHEDULER_WEB_TOKEN) or --basic-auth USER:PASSWORD, or bind 127.0.0.1",
        )


def parse_basic_auth(value: str | None) -> tuple[str, str] | None:
    """``USER:PASSWORD`` as a pair (None stays None)."""
    if value is None:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigurationError("basic_auth", "use USER:PASSWORD (both non-empty)")
    return user, password


def build_server(
    manager: ScheduleManager,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    read_only: bool = False,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    secret: str | None = None,
    log_level: str = "info",
) -> uvicorn.Server:
    """A uvicorn server for the dashboard of ``manager`` (not started)."""
    check_bind(host, token=token, basic_auth=basic_auth)
    try:
        import uvicorn

        from .app import create_app
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "web", f'the web extra is not installed ({exc}): pip install "langflix-scheduler[web]"'
        ) from exc
    try:
        app = create_app(
            manager, read_only=read_only, token=token, basic_auth=basic_auth, secret=secret
        )
    except ValueError as exc:
        raise ConfigurationError("web", str(exc)) from exc
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
        access_log=log_level == "debug",
    )
    return uvicorn.Server(config)


def serve(
    manager: ScheduleManager,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    read_only: bool = False,
    token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    secret: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve the dashboard until interrupted (Ctrl-C / SIGTERM).

    Raises:
        ConfigurationError: a non-loopback ``host`` without ``token`` or ``basic_auth``, a bad
            credential, or the ``[web]`` extra missing.
    """
    server = build_server(
        manager,
        host=host,
        port=port,
        read_only=read_only,
        token=token,
        basic_auth=basic_auth,
        secret=secret,
        log_level=log_level,
    )
    logger.info("dashboard on http://%s:%d/ (read-only: %s)", host, port, read_only)
    server.run()
