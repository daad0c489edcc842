"""The CLI as a subprocess: every scheduling command, JSON outputs, exit codes, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.testing.media import write_mp4

from ._cli import CliResult

pytestmark = pytest.mark.usefixtures("db_url")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "lesson 01.mp4"
    path.write_bytes(b"\x00" * 4096)
    return path


def _one_line_error(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_schedule_list_show_cancel_roundtrip(
    run_cli: Callable[..., CliResult], video: Path
) -> None:
    run_cli("init-db", check=True)
    booked = run_cli("--json", "schedule", str(video), "--type", "final", "--title", "Lesson 1")
    assert booked.code == 0, booked.stderr
    data = booked.json()
    assert data["status"] == "scheduled"
    assert data["metadata"]["title"] == "Lesson 1"
    when = datetime.fromisoformat(data["scheduled_publish_time"])
    assert when > datetime.now(UTC)

    listed = run_cli("--json", "list", "--status", "scheduled", check=True).json()
    assert [s["id"] for s in listed] == [data["id"]]

    shown = run_cli("--json", "show", str(data["id"]), check=True).json()
    assert shown["scheduled_publish_time"] == data["scheduled_publish_time"]

    human = run_cli("show", str(data["id"]), check=True)
    assert "Lesson 1" in human.stdout

    cancelled = run_cli("--json", "cancel", str(data["id"]), check=True).json()
    assert cancelled["status"] == "cancelled"
    again = run_cli("cancel", str(data["id"]))
    assert again.code == 1
    assert "cancelled" in _one_line_error(again)


def test_next_slot_matches_schedule(run_cli: Callable[..., CliResult], video: Path) -> None:
    slot = run_cli("--json", "next-slot", "--type", "short", check=True).json()["slot"]
    booked = run_cli("--json", "schedule", str(video), "--type", "short", check=True).json()
    assert booked["scheduled_publish_time"] == slot


def test_exact_time_and_reschedule(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    # A real vertical Short: a dummy file would add the "could not check" warning to stderr.
    video = write_mp4(tmp_path / "short.mp4", width=1080, height=1920, seconds=30)
    at = (datetime.now(UTC) + timedelta(days=3)).replace(hour=7, minute=30, second=0, microsecond=0)
    booked = run_cli("--json", "schedule", str(video), "--type", "short", "--at", at.isoformat())
    assert booked.code == 0, booked.stderr
    sid = booked.json()["id"]
    # Other content (the same file would be a replay), also a real Short.
    other = write_mp4(
        video.with_name("lesson 02.mp4"), width=1080, height=1920, seconds=30, payload=b"\x01" * 64
    )
    taken = run_cli("schedule", str(other), "--type", "short", "--at", at.isoformat())
    assert taken.code == 1
    assert "next available" in _one_line_error(taken)
    new_at = at + timedelta(days=1)
    moved = run_cli("--json", "reschedule", str(sid), "--at", new_at.isoformat(), check=True)
    assert datetime.fromisoformat(moved.json()["scheduled_publish_time"]) == new_at


def test_quota_table_and_json(run_cli: Callable[..., CliResult], video: Path) -> None:
    run_cli("schedule", str(video), "--type", "final", check=True)
    days = run_cli("--json", "quota", "--days", "3", check=True).json()
    assert len(days) == 3
    used = sum(d["types"]["final"]["used"] for d in days)
    assert used == 1
    reserved = sum(q["reserved"] for d in days for q in d["quota"] if q["bucket"] == "uploads")
    assert reserved >= 1
    table = run_cli("quota", "--days", "2", check=True)
    assert "uploads" in table.stdout


def test_recalculate_quota_reports_consistency(
    run_cli: Callable[..., CliResult], video: Path
) -> None:
    run_cli("schedule", str(video), "--type", "final", check=True)
    report = run_cli("--json", "recalculate-quota", check=True).json()
    assert report["corrections"] == []
    assert report["rows_checked"] == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schedule", "{missing}", "--type", "final"], "does not exist"),
        (["schedule", "{video}", "--type", "final", "--at", "not-a-date"], "ISO 8601"),
        (["schedule", "{video}", "--type", "final", "--at", "2030-01-01T10:00:00"], "time zone"),
        (["schedule", "{video}", "--type", "final", "--title", "a<b"], "metadata.title"),
        (["show", "999999"], "not found"),
        (["list", "--from", "yesterday"], "date"),
    ],
)
def test_user_errors_are_one_line_exit_1(
    run_cli: Callable[..., CliResult], video: Path, args: list[str], needle: str
) -> None:
    filled = [a.format(missing=video.parent / "nope.mp4", video=video) for a in args]
    result = run_cli(*filled)
    assert result.code == 1, (result.code, result.stderr)
    assert needle in _one_line_error(result)


def test_usage_error_exit_2(run_cli: Callable[..., CliResult], video: Path) -> None:
    result = run_cli("schedule", str(video), "--type", "long")
    assert result.code == 2
    assert "Traceback" not in result.stderr


def test_database_unreachable_exit_3(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli(
        "list", env={"LANGFLIX_SCHEDULER_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    )
    assert result.code == 3
    assert "database" in _one_line_error(result)


def test_flags_beat_environment_beat_file(
    run_cli: Callable[..., CliResult], video: Path, tmp_path: Path
) -> None:
    (tmp_path / "langflix-scheduler.toml").write_text(
        '[scheduler]\ntimezone = "Asia/Seoul"\nchannel = "from-file"\n', encoding="utf-8"
    )
    from_file = run_cli("--json", "schedule", str(video), "--type", "final", check=True).json()
    assert from_file["channel_id"] == "from-file"
    from_env = run_cli(
        "--json",
        "schedule",
        str(video),
        "--type",
        "final",
        env={"LANGFLIX_SCHEDULER_CHANNEL": "from-env"},
        check=True,
    ).json()
    assert from_env["channel_id"] == "from-env"
    from_flag = run_cli(
        "--channel",
        "from-flag",
        "--json",
        "schedule",
        str(video),
        "--type",
        "final",
        env={"LANGFLIX_SCHEDULER_CHANNEL": "from-env"},
        check=True,
    ).json()
    assert from_flag["channel_id"] == "from-flag"
    local = datetime.fromisoformat(from_file["scheduled_publish_time"]).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Seoul")
    )
    assert (local.hour, local.minute) in {(10, 0), (18, 0)}


def test_db_timeout_flag_reaches_the_config(run_cli: Callable[..., CliResult]) -> None:
    too_short = run_cli("--lock-timeout", "2", "--db-timeout", "1", "list")
    assert too_short.code != 0
    assert "db_timeout" in too_short.stderr
    assert run_cli("--lock-timeout", "2", "--db-timeout", "3", "list").code == 0
    from_env = run_cli("list", env={"LANGFLIX_SCHEDULER_DB_TIMEOUT": "1"})  # lock_timeout 5
    assert "db_timeout" in from_env.stderr


def test_help_names_environment_variables(run_cli: Callable[..., CliResult]) -> None:
    result = run_cli("--help", check=True)
    assert "LANGFLIX_SCHEDULER_DATABASE_URL" in result.stdout
