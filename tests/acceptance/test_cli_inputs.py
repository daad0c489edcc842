"""CLI inputs checked at booking (text, tags, Shorts) and ids scoped to an explicit --channel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from langflix_scheduler.testing.media import write_mp4

from ._cli import CliResult

pytestmark = pytest.mark.usefixtures("db_url")


def test_explicit_channel_refuses_an_id_of_another_channel(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    video = write_mp4(tmp_path / "ep.mp4", width=1920, height=1080, seconds=600)
    run_cli("init-db", check=True)
    booked = run_cli("--json", "--channel", "korean", "schedule", str(video), "--type", "final")
    assert booked.code == 0, booked.stderr
    sid = str(booked.json()["id"])
    later = datetime.fromisoformat(booked.json()["scheduled_publish_time"]) + timedelta(days=1)

    for args in (["show", sid], ["cancel", sid], ["reschedule", sid, "--at", later.isoformat()]):
        refused = run_cli("--channel", "spanish", *args)
        assert refused.code == 1, (args, refused.stderr)
        assert "not found on channel 'spanish'" in refused.stderr
        assert "Traceback" not in refused.stderr

    shown = run_cli("--json", "show", sid, check=True).json()  # no --channel: any channel
    assert shown["status"] == "scheduled"
    assert shown["scheduled_publish_time"] == booked.json()["scheduled_publish_time"]
    cancelled = run_cli("--json", "--channel", "korean", "cancel", sid, check=True).json()
    assert cancelled["status"] == "cancelled"


@pytest.mark.parametrize("bad_id", ["99999999999999999999999", "3000000000", "0"])
def test_impossible_ids_are_not_found(run_cli: Callable[..., CliResult], bad_id: str) -> None:
    run_cli("init-db", check=True)
    for command in ("show", "cancel"):
        result = run_cli(command, bad_id)
        assert result.code == 1, result.stderr
        assert "not found" in result.stderr
        assert "Traceback" not in result.stderr


def test_bad_metadata_text_and_tags_are_refused_with_the_field_named(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    video = write_mp4(tmp_path / "ep.mp4", width=1920, height=1080, seconds=600)
    run_cli("init-db", check=True)
    cases = [
        (["--title", "caf\udce9 bad"], "metadata.title"),  # the byte 0xE9 on the command line
        (["--title", "ok", "--description", "nul\x01"], "metadata.description"),
        (["--title", "ok", "--tags", ",".join(["ab cd efgh"] * 46)], "597"),
    ]
    for extra, needle in cases:
        result = run_cli("schedule", str(video), "--type", "final", *extra)
        assert result.code == 1, result.stderr
        assert needle in result.stderr
        assert "Traceback" not in result.stderr
    assert run_cli("--json", "list", check=True).json() == []


def test_a_landscape_short_is_refused_with_the_measured_values(
    run_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    video = write_mp4(tmp_path / "wide.mp4", width=1920, height=1080, seconds=30)
    run_cli("init-db", check=True)
    result = run_cli("schedule", str(video), "--type", "short")
    assert result.code == 1, result.stderr
    assert "30.00 s, 1920x1080" in result.stderr
