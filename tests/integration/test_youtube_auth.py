"""OAuth: token files (permissions, refresh, invalid_grant) and the authorize() flow, offline
against FakeYouTube's token endpoint."""

from __future__ import annotations

import json
import stat
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.errors import AuthorizationError, ConfigurationError
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.auth import (
    DEFAULT_SCOPES,
    authorize,
    load_credentials,
    save_credentials,
    token_path_for,
)

pytestmark = pytest.mark.timeout(30)


def _write_token(path: Path, *, expired: bool, mode: int = 0o600) -> Path:
    expiry = datetime.now(UTC) + (timedelta(hours=-1) if expired else timedelta(hours=1))
    info = {
        "token": "old-access",
        "refresh_token": "refresh-1",
        "client_id": "client.apps.googleusercontent.com",
        "client_secret": "client-secret-value",
        "scopes": list(DEFAULT_SCOPES),
        "expiry": expiry.replace(tzinfo=None).isoformat() + "Z",
    }
    path.write_text(json.dumps(info))
    path.chmod(mode)
    return path


def test_token_readable_by_others_is_refused(tmp_path: Path):
    path = _write_token(tmp_path / "main.json", expired=False, mode=0o644)
    with pytest.raises(ConfigurationError) as info:
        load_credentials(path)
    assert info.value.field == "token_path"
    assert "chmod 600" in str(info.value)
    assert "0644" in str(info.value)


def test_token_readable_by_group_is_refused(tmp_path: Path):
    path = _write_token(tmp_path / "main.json", expired=False, mode=0o640)
    with pytest.raises(ConfigurationError):
        load_credentials(path)


def test_valid_private_token_loads_without_network(tmp_path: Path):
    path = _write_token(tmp_path / "main.json", expired=False)
    credentials = load_credentials(path)
    assert credentials.token == "old-access"
    assert credentials.valid


def test_missing_and_malformed_tokens_ask_for_auth(tmp_path: Path):
    with pytest.raises(AuthorizationError, match="langflix-scheduler auth"):
        load_credentials(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    with pytest.raises(AuthorizationError, match="langflix-scheduler auth") as info:
        load_credentials(bad)
    assert info.value.reason == "invalidToken"


def test_expired_token_is_refreshed_and_saved_back_privately(tmp_path: Path):
    path = _write_token(tmp_path / "main.json", expired=True)
    with FakeYouTube() as fake:
        credentials = load_credentials(path, token_uri=fake.token_uri)
    assert credentials.token.startswith("fake-access-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["token"] == credentials.token
    assert saved["refresh_token"] == "refresh-1"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_revoked_grant_tells_the_user_to_authorise_again(tmp_path: Path, caplog):
    path = _write_token(tmp_path / "main.json", expired=True)
    with FakeYouTube() as fake:
        fake.revoke_refresh_tokens()
        with pytest.raises(AuthorizationError) as info:
            load_credentials(path, token_uri=fake.token_uri)
    message = str(info.value)
    assert "langflix-scheduler auth" in message
    assert "7 days" in message
    assert "Testing" in message
    assert info.value.reason == "invalid_grant"
    for secret in ("client-secret-value", "refresh-1", "old-access"):
        assert secret not in message
        assert secret not in caplog.text


def test_token_path_for_one_file_per_channel(tmp_path: Path):
    assert token_path_for("main", tmp_path) == tmp_path / "main.json"
    assert token_path_for("kids-channel", tmp_path) != token_path_for("main", tmp_path)
    for bad in ("", "../etc/passwd", "a/b", ".hidden", "a..b"):
        with pytest.raises(ConfigurationError):
            token_path_for(bad, tmp_path)


def test_save_credentials_creates_private_dir_and_file(tmp_path: Path):
    class FakeCredentials:
        def to_json(self) -> str:
            return json.dumps({"token": "t"})

    path = save_credentials(FakeCredentials(), tmp_path / "tokens" / "main.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"token": "t"}


def test_authorize_headless_flow_end_to_end(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is http
    with FakeYouTube() as fake:
        secrets_file = tmp_path / "client_secret.json"
        secrets_file.write_text(
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
        urls: list[str] = []
        errors: list[BaseException] = []

        def browser(url: str) -> None:
            # The user opens the URL and consents; Google redirects to the local server.
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            redirect = query["redirect_uri"][0]
            state = query["state"][0]
            target = f"{redirect}?code=auth-code&state={state}&scope=" + urllib.parse.quote(
                " ".join(DEFAULT_SCOPES)
            )
            try:
                with urllib.request.urlopen(target, timeout=10) as answer:
                    answer.read()
            except BaseException as exc:
                errors.append(exc)

        def on_url(url: str) -> None:
            urls.append(url)
            threading.Thread(target=browser, args=(url,), daemon=True).start()

        token_path = tmp_path / "tokens" / "main.json"
        credentials = authorize(
            secrets_file, token_path, headless=True, on_url=on_url, timeout_seconds=10
        )
    assert errors == []
    assert len(urls) == 1
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(urls[0]).query)
    assert set(query["scope"][0].split()) == set(DEFAULT_SCOPES)
    assert query["access_type"] == ["offline"]
    assert credentials.refresh_token.startswith("fake-refresh-")
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
    assert json.loads(token_path.read_text())["refresh_token"] == credentials.refresh_token


def test_authorize_with_missing_client_secrets_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(ConfigurationError) as info:
        authorize(tmp_path / "nope.json", tmp_path / "t.json", headless=True)
    assert info.value.field == "client_secrets"


def test_access_token_credentials_carry_only_the_token() -> None:
    from langflix_scheduler.youtube.auth import access_token_credentials

    creds = access_token_credentials("tok")
    assert creds.token == "tok"
    assert creds.refresh_token is None
