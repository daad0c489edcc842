"""``auth --check`` as a subprocess against a FakeYouTube served by this test process
(``LANGFLIX_SCHEDULER_API_ENDPOINT`` / ``LANGFLIX_SCHEDULER_TOKEN_URI``), with token files like
the ones ``auth`` writes. The check needs no database; it runs once (SQLite configured)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.testing.fake_youtube import DEFAULT_CHANNEL_ID

from ._cli import CliResult

SQLITE_ONLY = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True, ids=["sqlite"])
pytestmark = SQLITE_ONLY

SCOPES = [
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",
]
OTHER_ID = "UCotherChannel0000000002"


@pytest.fixture
def youtube() -> Iterator[FakeYouTube]:
    with FakeYouTube(app_status="testing") as fake:
        yield fake


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    for channel in ("main", "second"):
        path = directory / f"{channel}.json"
        path.write_text(
            json.dumps(
                {
                    "token": "old-access",
                    "refresh_token": f"refresh-{channel}-secret",
                    "client_id": "client.apps.googleusercontent.com",
                    "client_secret": "client-secret-value",
                    "scopes": SCOPES,
                    "expiry": "2000-01-01T00:00:00Z",
                }
            ),
            encoding="utf-8",
        )
        path.chmod(0o600)
    return directory


@pytest.fixture
def env(youtube: FakeYouTube, tokens: Path) -> dict[str, str]:
    return {
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(tokens),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
        "LANGFLIX_SCHEDULER_TOKEN_URI": youtube.token_uri,
    }


def _no_secrets(result: CliResult) -> None:
    text = result.stdout + result.stderr
    assert "secret" not in text.replace("client-secrets", "")
    assert "Traceback" not in text


def test_check_all_channels_prints_a_table_and_exits_0(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube
) -> None:
    result = run_cli("auth", "--check", env=env)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if "main" in line or "second" in line]
    assert len(rows) == 2
    for row in rows:
        assert "ok" in row
        assert DEFAULT_CHANNEL_ID in row
        assert "Fake Channel" in row
        assert "cannot compare" in row
        assert "youtube.force-ssl" in row
    assert "refresh token expires" in result.stdout
    assert youtube.charged() == {"channels.list": 2}
    _no_secrets(result)


def test_check_json_of_one_channel(run_cli: Callable[..., CliResult], env: dict[str, str]) -> None:
    result = run_cli("auth", "--check", "--channel", "main", "--json", env=env)
    assert result.code == 0, result.stderr
    (report,) = result.json()["tokens"]
    assert report["channel"] == "main"
    assert report["ok"] is True
    assert report["youtube_channel_id"] == DEFAULT_CHANNEL_ID
    assert report["channel_matches"] is None
    assert sorted(report["scopes"]) == sorted(SCOPES)
    assert report["refresh_token_expires_at"] is not None  # a "testing" app: 7 days
    _no_secrets(result)


def test_check_of_another_channel_exits_1(
    run_cli: Callable[..., CliResult], env: dict[str, str]
) -> None:
    result = run_cli(
        "--json", "auth", "--check", "--channel", "main", "--expect-channel-id", OTHER_ID, env=env
    )
    assert result.code == 1
    (report,) = result.json()["tokens"]
    assert report["problem"] == "wrong_channel"
    assert report["channel_matches"] is False
    assert report["expected_channel_id"] == OTHER_ID


def test_revoked_refresh_token_exits_1_and_says_run_auth(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube
) -> None:
    youtube.revoke_refresh_tokens()
    result = run_cli("auth", "--check", env=env)
    assert result.code == 1
    assert "needs_reauth" in result.stdout
    assert "run `langflix-scheduler auth --channel main` again" in result.stdout
    assert "run `langflix-scheduler auth --channel second` again" in result.stdout
    assert youtube.charged() == {}
    _no_secrets(result)


def test_unreachable_api_exits_3_not_1(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube
) -> None:
    youtube.fail_next(1, 503, target="channels")
    result = run_cli("--json", "auth", "--check", "--channel", "main", env=env)
    assert result.code == 3
    (report,) = result.json()["tokens"]
    assert report["problem"] == "check_failed"
    assert report["needs_reauth"] is False


def test_no_stored_tokens_is_an_error(
    run_cli: Callable[..., CliResult], env: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    result = run_cli("auth", "--check", env={**env, "LANGFLIX_SCHEDULER_TOKEN_DIR": str(empty)})
    assert result.code == 1
    assert "no stored tokens" in result.stderr


def test_auth_without_check_still_needs_client_secrets(
    run_cli: Callable[..., CliResult], env: dict[str, str]
) -> None:
    result = run_cli("auth", "--channel", "main", env=env)
    assert result.code == 2
    assert "--client-secrets" in result.stderr
    expect = run_cli("auth", "--check", "--expect-channel-id", OTHER_ID, env=env)
    assert expect.code == 2
    assert "--channel" in expect.stderr


def _ledger(db_url: str) -> list[tuple[object, ...]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT operation, bucket, cost, schedule_id, channel_id, outcome"
                        " FROM youtube_api_calls ORDER BY channel_id"
                    )
                )
            ]
    finally:
        engine.dispose()


def _used(db_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            total = conn.execute(
                text("SELECT SUM(used) FROM youtube_quota_usage WHERE bucket = 'shared'")
            ).scalar()
    finally:
        engine.dispose()
    return int(total or 0)


def test_check_records_each_channels_list_in_the_quota_ledger(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube, db_url: str
) -> None:
    result = run_cli("--json", "auth", "--check", env=env)
    assert result.code == 0, result.stderr
    assert result.json()["quota_ledger"] == {"recorded": True, "reason": None}
    assert sum(youtube.charged().values()) == 2
    assert _ledger(db_url) == [
        ("channels.list", "shared", 1, None, "main", "sent"),
        ("channels.list", "shared", 1, None, "second", "sent"),
    ]
    assert _used(db_url) == 2
    recount = run_cli("--json", "recalculate-quota", env=env)
    assert recount.code == 0, recount.stderr
    assert recount.json()["corrections"] == []
    assert _used(db_url) == 2


def test_check_without_a_database_runs_and_says_the_call_was_not_recorded(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube, tmp_path: Path
) -> None:
    missing = f"sqlite:///{tmp_path / 'absent.db'}"
    env = {**env, "LANGFLIX_SCHEDULER_DATABASE_URL": missing}
    result = run_cli("auth", "--check", "--channel", "main", env=env)
    assert result.code == 0, result.stderr
    assert "not recorded in the quota ledger" in result.stderr
    assert sum(youtube.charged().values()) == 1
    assert not (tmp_path / "absent.db").exists()


def test_check_on_an_uninitialised_database_runs_and_says_so(
    run_cli: Callable[..., CliResult], env: dict[str, str], youtube: FakeYouTube, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    env = {**env, "LANGFLIX_SCHEDULER_DATABASE_URL": f"sqlite:///{empty}"}
    result = run_cli("--json", "auth", "--check", "--channel", "main", env=env)
    assert result.code == 0, result.stderr
    ledger = result.json()["quota_ledger"]
    assert ledger["recorded"] is False
    assert "init-db" in ledger["reason"]
    assert sum(youtube.charged().values()) == 1
