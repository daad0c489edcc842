"""authorize() never logs the authorization code, even at DEBUG; a shared client secret warns."""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.auth import DEFAULT_SCOPES, authorize

CODE = "secret-auth-code-4242"


def _secrets(tmp_path: Path, fake: FakeYouTube, mode: int) -> Path:
    path = tmp_path / "client_secret.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "client.apps.googleusercontent.com",
                    "client_secret": "client-secret-value",
                    "auth_uri": "https://accounts.example.invalid/o/oauth2/auth",
                    "token_uri": fake.token_uri,
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    path.chmod(mode)
    return path


def _consent(url: str) -> None:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    target = (
        f"{query['redirect_uri'][0]}?code={CODE}&state={query['state'][0]}&scope="
        + urllib.parse.quote(" ".join(DEFAULT_SCOPES))
    )
    with urllib.request.urlopen(target, timeout=10) as answer:
        answer.read()


def _authorize(tmp_path: Path, mode: int) -> None:
    with FakeYouTube() as fake:
        authorize(
            _secrets(tmp_path, fake, mode),
            tmp_path / "tokens" / "main.json",
            headless=True,
            on_url=lambda url: threading.Thread(target=_consent, args=(url,), daemon=True).start(),
            timeout_seconds=10,
        )


def test_debug_logging_never_shows_the_authorization_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is http
    with caplog.at_level(logging.DEBUG):
        logging.getLogger().setLevel(logging.DEBUG)
        _authorize(tmp_path, 0o600)
    assert caplog.records, "DEBUG logging captured nothing: the test would prove nothing"
    assert CODE not in caplog.text
    assert not any("readable by group or others" in r.getMessage() for r in caplog.records)


def test_client_secrets_readable_by_others_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with caplog.at_level(logging.WARNING):
        _authorize(tmp_path, 0o644)
    assert any("readable by group or others (mode 0644)" in r.getMessage() for r in caplog.records)
