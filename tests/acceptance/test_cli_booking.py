"""``schedule`` is safe to run again: a replay prints "already scheduled as #N" and exits 0; the
same file as another request exits 1 naming the schedule that holds it (issue 9)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from langflix_scheduler.testing.media import write_mp4

from ._cli import CliResult

pytestmark = pytest.mark.usefixtures("db_url")


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A real landscape episode: the Shorts check reads it, so stderr stays clean."""
    return write_mp4(
        tmp_path / "lesson 07.mp4", width=1920, height=1080, seconds=600, payload=b"\x07" * 4096
    )


@pytest.fixture
def short_video(tmp_path: Path) -> Path:
    """A real vertical Short."""
    return write_mp4(
        tmp_path / "short 07.mp4", width=1080, height=1920, seconds=30, payload=b"\x17" * 4096
    )


def test_scheduling_the_same_file_twice_is_a_replay(
    run_cli: Callable[..., CliResult], video: Path
) -> None:
    first = run_cli("--json", "schedule", str(video), "--type", "final", "--title", "L7")
    assert first.code == 0, first.stderr
    data = first.json()
    assert data["created"] is True
    sid = data["id"]

    again = run_cli("schedule", str(video), "--type", "final", "--title", "L7")
    assert again.code == 0, again.stderr
    assert again.stdout.startswith(f"already scheduled as #{sid} (scheduled: final 'L7' for ")
    assert again.stderr == ""

    replay = run_cli("--json", "schedule", str(video), "--type", "final", "--title", "L7")
    assert replay.code == 0, replay.stderr
    assert (replay.json()["id"], replay.json()["created"]) == (sid, False)
    listed = run_cli("--json", "list", check=True).json()
    assert [s["id"] for s in listed] == [sid]


def test_the_same_file_as_another_request_exits_1_naming_the_schedule(
    run_cli: Callable[..., CliResult], video: Path
) -> None:
    sid = run_cli("--json", "schedule", str(video), "--type", "final", check=True).json()["id"]
    other = run_cli("schedule", str(video), "--type", "final", "--title", "Another title")
    assert other.code == 1
    lines = [line for line in other.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, other.stderr
    assert f"schedule #{sid}" in lines[0]
    assert "--allow-duplicate" in lines[0]

    as_json = run_cli("--json", "schedule", str(video), "--type", "final", "--title", "C")
    assert as_json.code == 1
    assert f'"existing_id": {sid}' in as_json.stderr

    forced = run_cli(
        "--json", "schedule", str(video), "--type", "final", "--title", "B", "--allow-duplicate"
    )
    assert forced.code == 0, forced.stderr
    assert forced.json()["id"] != sid


def test_idempotency_key_flag(run_cli: Callable[..., CliResult], short_video: Path) -> None:
    args = ("schedule", str(short_video), "--type", "short", "--idempotency-key", "job-7")
    sid = run_cli("--json", *args, check=True).json()["id"]
    assert run_cli(*args, check=True).stdout.startswith(f"already scheduled as #{sid} ")
    misuse = run_cli(*args, "--title", "changed")
    assert misuse.code == 1
    assert "idempotency_key" in misuse.stderr
