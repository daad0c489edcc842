"""``process`` and ``status`` as subprocesses, on SQLite and PostgreSQL.

The CLI uploads with the real YouTubeUploader to a FakeYouTube served by this test process
(``--api-endpoint`` / ``LANGFLIX_SCHEDULER_API_ENDPOINT``), with a token file like the one
``auth`` writes. Setup (booking videos, breaking rows) uses the library or plain SQL; what is
checked is what the CLI printed, its exit code, and what reached FakeYouTube and the database.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler import ScheduleManager, SchedulerConfig, VideoMetadata
from langflix_scheduler.db.engine import Database, create_engine
from langflix_scheduler.db.locking import named_lock
from langflix_scheduler.processor import UploadProcessor
from langflix_scheduler.testing import FakeYouTube
from langflix_scheduler.youtube.uploader import DryRunUploader
from tests.conftest import unique_bytes
from tests.integration.db_helpers import RawDB

from ._cli import CliResult
from .conftest import CLI_TIMEOUT_SECONDS

# "every command on SQLite and PostgreSQL" (MariaDB is covered by the integration tests).
BOTH_ENGINES = pytest.mark.parametrize(
    "test_database", ["sqlite", "postgresql"], indirect=True, ids=["sqlite", "postgresql"]
)
# Checks that do not depend on the engine (or that test_cli.py runs on every engine) run once.
SQLITE_ONLY = pytest.mark.parametrize("test_database", ["sqlite"], indirect=True, ids=["sqlite"])


def _lock_name(url: str) -> str:
    """The exclusive-mode lock of a processor of channel ``default`` (as the CLI builds it)."""
    with ScheduleManager(SchedulerConfig(database_url=url)) as m:
        return UploadProcessor(m, DryRunUploader(), channels=["default"]).lock_name


def _one_line_error(result: CliResult) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def youtube() -> Iterator[FakeYouTube]:
    with FakeYouTube() as fake:
        yield fake


@pytest.fixture
def uploading_env(youtube: FakeYouTube, tmp_path: Path) -> dict[str, str]:
    """Environment for `process`: a token file for channel `default` and the fake endpoint."""
    tokens = tmp_path / "tokens"
    tokens.mkdir(mode=0o700)
    token = tokens / "default.json"
    token.write_text(
        json.dumps(
            {
                "token": "access-token",
                "refresh_token": "refresh-token",
                "client_id": "client.apps.googleusercontent.com",
                "client_secret": "secret",
                "expiry": "2099-01-01T00:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    token.chmod(0o600)
    return {
        "LANGFLIX_SCHEDULER_TOKEN_DIR": str(tokens),
        "LANGFLIX_SCHEDULER_API_ENDPOINT": youtube.api_endpoint,
    }


@pytest.fixture
def book(db_url: str, tmp_path: Path) -> Callable[..., list[int]]:
    """``book(n, days_ago=1)``: book n shorts with the library, as if ``days_ago`` days ago (so
    they are due now), each with a real file; returns their ids."""

    def run(n: int, *, days_ago: float = 1.0, size: int = 300_000) -> list[int]:
        past = datetime.now(UTC) - timedelta(days=days_ago)
        manager = ScheduleManager(SchedulerConfig(database_url=db_url), clock=lambda: past)
        ids = []
        try:
            for _ in range(n):
                video = tmp_path / f"video-{len(list(tmp_path.glob('video-*')))}.mp4"
                video.write_bytes(unique_bytes(size))
                s = manager.schedule_video(
                    video, "short", metadata=VideoMetadata(title=f"Lesson {video.stem}")
                )
                ids.append(s.id)
        finally:
            manager.close()
        return ids

    return run


@BOTH_ENGINES
def test_process_once_uploads_due_videos(
    run_cli: Callable[..., CliResult],
    book: Callable[..., list[int]],
    youtube: FakeYouTube,
    uploading_env: dict[str, str],
    raw_db: RawDB,
) -> None:
    # Not a terminal: plain lines, one per upload and event, then the summary.
    (first,) = book(1)
    plain = run_cli("process", "--once", env=uploading_env)
    assert plain.code == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert any("uploading: Lesson" in line for line in lines), plain.stdout
    (video_id,) = youtube.videos
    assert any(f"uploaded #{first}" in line and video_id in line for line in lines)
    assert "\x1b[" not in plain.stdout  # no terminal control sequences in logs
    assert "run ok after" in lines[-1]
    assert "1 uploaded" in lines[-1]

    ids = book(2)
    result = run_cli("--json", "process", "--once", env=uploading_env)
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["outcome"] == "ok"
    assert (report["claimed"], report["uploaded"], report["failed"]) == (2, 2, 0)
    assert sorted(e["schedule_id"] for e in report["events"]) == sorted(ids)
    assert youtube.insert_calls == 3  # each video exactly once
    rows = raw_db.schedules()
    assert {r.upload_status for r in rows} == {"completed"}
    stored = {
        raw_db.scalar("SELECT youtube_video_id FROM youtube_schedules WHERE id = :i", i=i)
        for i in [first, *ids]
    }
    assert stored == set(youtube.videos)

    status = run_cli("--json", "status", check=True).json()
    assert [r["uploaded"] for r in status["runs"]] == [2, 1]  # newest first
    assert {r["outcome"] for r in status["runs"]} == {"ok"}
    assert status["stuck"] == status["failed"] == status["overdue"] == []


@BOTH_ENGINES
def test_process_dry_run_changes_nothing(
    run_cli: Callable[..., CliResult],
    book: Callable[..., list[int]],
    raw_db: RawDB,
    youtube: FakeYouTube,
    tmp_path: Path,
) -> None:
    ok_id, broken_id = book(2)
    missing = tmp_path / "gone.mp4"
    raw_db.execute(
        "UPDATE youtube_schedules SET video_path = :p WHERE id = :i", p=str(missing), i=broken_id
    )
    result = run_cli("--json", "process", "--dry-run")  # no token needed
    assert result.code == 0, result.stderr
    due = {d["id"]: d for d in result.json()["due"]}
    assert set(due) == {ok_id, broken_id}
    assert due[ok_id]["ok"] is True
    assert due[ok_id]["operations"] == ["videos.insert"]
    assert due[broken_id]["ok"] is False
    assert "gone.mp4" in due[broken_id]["error"]
    human = run_cli("process", "--dry-run", check=True)
    assert "would fail" in human.stdout
    assert "nothing was uploaded or changed" in human.stdout
    assert youtube.insert_calls == 0
    assert [r.upload_status for r in raw_db.schedules()] == ["scheduled", "scheduled"]
    assert raw_db.scalar("SELECT COUNT(*) FROM processor_runs") == 0


@BOTH_ENGINES
def test_process_exclusive_skips_while_another_run_holds_the_lock(
    run_cli: Callable[..., CliResult],
    book: Callable[..., list[int]],
    youtube: FakeYouTube,
    uploading_env: dict[str, str],
    db_url: str,
    raw_db: RawDB,
) -> None:
    book(1)
    db = Database(create_engine(db_url), lock_timeout=5.0)
    try:
        with named_lock(db, _lock_name(db_url)) as got:
            assert got
            result = run_cli("process", "--once", "--exclusive", env=uploading_env)
    finally:
        db.dispose()
    assert result.code == 0, result.stderr
    assert "SKIPPED (previous run still in progress)" in result.stdout
    assert youtube.insert_calls == 0
    assert raw_db.scalar("SELECT outcome FROM processor_runs") == "skipped"
    assert raw_db.scalar("SELECT skipped_overlap FROM processor_runs") == 1
    # With the lock free again, the next exclusive run uploads.
    after = run_cli("--json", "process", "--once", "--exclusive", env=uploading_env)
    assert after.code == 0, after.stderr
    assert after.json()["uploaded"] == 1


@BOTH_ENGINES
def test_process_loop_stops_gracefully_on_sigterm(
    cli_env: dict[str, str],
    book: Callable[..., list[int]],
    youtube: FakeYouTube,
    uploading_env: dict[str, str],
    tmp_path: Path,
) -> None:
    book(1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "langflix_scheduler", "process", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**cli_env, **uploading_env},
        cwd=tmp_path,
    )
    try:
        youtube.wait_until(lambda f: len(f.videos) == 1, timeout=CLI_TIMEOUT_SECONDS / 2)
        time.sleep(0.5)  # a few empty runs
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped after" in out
    assert "1 uploaded" in out.splitlines()[-1]


@SQLITE_ONLY
def test_process_without_a_token_says_to_run_auth(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = run_cli("process", "--once", env={"LANGFLIX_SCHEDULER_TOKEN_DIR": str(tmp_path)})
    assert result.code == 1
    assert "langflix-scheduler auth" in _one_line_error(result)


@BOTH_ENGINES
def test_status_lists_stuck_failed_overdue_and_waiting(
    run_cli: Callable[..., CliResult], book: Callable[..., list[int]], raw_db: RawDB
) -> None:
    stuck, failed, overdue = book(3, days_ago=2)
    (waiting,) = book(1, days_ago=0)
    # A worker died mid-upload: its lease (set to a time long past) expired.
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'uploading', lease_owner = 'dead#1', "
        "lease_expires_at = created_at WHERE id = :i",
        i=stuck,
    )
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'failed', slot_key = NULL, "
        "last_error = 'invalidTitle: the title is rejected' WHERE id = :i",
        i=failed,
    )
    raw_db.execute(
        "UPDATE youtube_schedules SET next_attempt_at = scheduled_publish_time, attempts = 1, "
        "last_error = 'backendError' WHERE id = :i",
        i=waiting,
    )
    data = run_cli("--json", "status", check=True).json()
    assert [s["id"] for s in data["stuck"]] == [stuck]
    assert [s["id"] for s in data["failed"]] == [failed]
    assert [s["id"] for s in data["overdue"]] == [overdue]
    assert [s["id"] for s in data["waiting"]] == [waiting]
    assert data["failed_total"] == 1
    human = run_cli("status", check=True)
    assert "1 stuck, 1 failed, 1 overdue, 1 waiting to retry" in human.stdout
    assert "invalidTitle" in human.stdout
    assert "next processor run takes it back" in human.stdout


@BOTH_ENGINES
def test_status_shows_schedules_that_need_review_and_lost_runs(
    run_cli: Callable[..., CliResult], book: Callable[..., list[int]], raw_db: RawDB
) -> None:
    (review,) = book(1, days_ago=2)
    raw_db.execute(
        "UPDATE youtube_schedules SET upload_status = 'needs_review', attempts = 5, "
        "last_error = 'whether the video reached YouTube is unknown' WHERE id = :i",
        i=review,
    )
    # A run that never finished and whose heartbeat stopped long ago (its process died).
    raw_db.execute(
        "INSERT INTO processor_runs (worker_id, started_at, outcome, claimed, uploaded, failed, "
        "retried, deferred, rescued, skipped_overlap, heartbeat_at, lease_expires_at) "
        "SELECT 'dead-host:1', created_at, 'running', 1, 0, 0, 0, 0, 0, 0, created_at, created_at "
        "FROM youtube_schedules WHERE id = :i",
        i=review,
    )
    data = run_cli("--json", "status", check=True).json()
    assert [s["id"] for s in data["needs_review"]] == [review]
    assert [r["outcome"] for r in data["runs"]] == ["lost"]
    human = run_cli("status", check=True)
    assert "1 need review" in human.stdout
    assert "reached YouTube is unknown" in human.stdout
    assert "LOST" in human.stdout
    cancel = run_cli("cancel", str(review))
    assert cancel.code == 1
    assert "look for it on the channel" in _one_line_error(cancel)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["reschedule", "999999", "--at", "{soon}"], 1, "not found"),
        (["reschedule", "1", "--at", "2030-01-01T10:00:00"], 1, "time zone"),
        (["quota", "--date", "2026-13-01"], 1, "date"),
        (["schedule", "{video}", "--type", "short", "--metadata", "{missing}"], 1, "--metadata"),
        (["process", "--interval", "-1"], 2, "interval"),
    ],
    ids=["reschedule-unknown", "naive", "bad-date", "no-meta", "negative-interval"],
)
def test_more_bad_input(
    run_cli: Callable[..., CliResult],
    tmp_path: Path,
    args: list[str],
    code: int,
    needle: str,
) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 1024)
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    filled = [a.format(video=video, missing=tmp_path / "meta.json", soon=soon) for a in args]
    result = run_cli(*filled)
    assert result.code == code, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    if code == 1:
        assert needle in _one_line_error(result)
    else:
        assert needle in result.stderr


@SQLITE_ONLY
@pytest.mark.parametrize("command", [["status"], ["process", "--dry-run"]])
def test_database_unreachable_exit_3(run_cli: Callable[..., CliResult], command: list[str]) -> None:
    result = run_cli(
        *command, env={"LANGFLIX_SCHEDULER_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    )
    assert result.code == 3, (result.code, result.stderr)
    assert "database" in _one_line_error(result)


@SQLITE_ONLY
def test_process_on_a_terminal_shows_progress_bars(
    cli_env: dict[str, str],
    book: Callable[..., list[int]],
    youtube: FakeYouTube,
    uploading_env: dict[str, str],
    tmp_path: Path,
) -> None:
    (sid,) = book(1, size=1_000_000)
    youtube.latency = 0.3  # slow enough for a few screen refreshes
    env = {**cli_env, **uploading_env, "TERM": "xterm-256color", "COLUMNS": "100"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with a terminal as stdout; never returns into pytest
        try:
            os.chdir(tmp_path)
            args = [sys.executable, "-m", "langflix_scheduler", "process", "--once"]
            os.execve(sys.executable, args, env)
        finally:
            os._exit(127)
    chunks: list[bytes] = []
    deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    out = b"".join(chunks).decode("utf-8", errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert "\x1b[" in out  # a live display, not plain lines
    assert "━" in out  # the bar
    assert "uploading Lesson" in out
    assert f"uploaded #{sid}" in out
    assert "run ok after" in out


def test_process_chunk_size_option_and_env(
    run_cli: Callable[..., CliResult],
    book: Callable[..., list[int]],
    youtube: FakeYouTube,
    uploading_env: dict[str, str],
) -> None:
    """By default a video goes in one request; ``--chunk-size MIB`` (or
    ``LANGFLIX_SCHEDULER_CHUNK_SIZE``) caps the request body for proxies that limit it."""
    mib = 1024 * 1024
    size = 3 * mib + 5

    def media_puts() -> list[int]:
        return [r.body_bytes for r in youtube.requests if r.kind == "chunk"]

    book(1, size=size)
    run_cli("process", "--once", env=uploading_env, check=True)
    assert media_puts() == [size]

    book(1, size=size)
    run_cli("process", "--once", "--chunk-size", "1", env=uploading_env, check=True)
    assert media_puts()[1:] == [mib, mib, mib, 5]

    book(1, size=size)
    env = {**uploading_env, "LANGFLIX_SCHEDULER_CHUNK_SIZE": "2"}
    run_cli("process", "--once", env=env, check=True)
    assert media_puts()[5:] == [2 * mib, mib + 5]
    assert len(youtube.videos) == 3
