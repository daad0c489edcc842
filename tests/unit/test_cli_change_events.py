"""The CLI's ``process`` output for changes of plan a run recovered: progress lines, the text
summary and ``--json`` (events with their change, the report's counts)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from langflix_scheduler.cli._cmd_process import _Outcome, _render_outcome
from langflix_scheduler.cli._progress import UploadDisplay
from langflix_scheduler.cli._state import State
from langflix_scheduler.config import SchedulerConfig
from langflix_scheduler.processor import (
    ProcessorEvent,
    ProcessorEventKind,
    ProcessReport,
    RunOutcome,
)

AT = datetime(2026, 5, 4, 12, tzinfo=UTC)


def _event(kind: ProcessorEventKind, error: str | None = None) -> ProcessorEvent:
    return ProcessorEvent(
        kind=kind,
        schedule_id=12,
        channel_id="ch1",
        worker_id="w",
        at=AT,
        attempts=0,
        video_id="vid12",
        error=error,
        change_id=3,
        change_kind="reschedule",
    )


EVENTS = [
    _event(ProcessorEventKind.CHANGE_APPLIED),
    _event(ProcessorEventKind.CHANGE_ROLLED_BACK, "video vid12 is already public on YouTube"),
]


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, force_terminal=False), buf


def test_progress_lines_name_the_change() -> None:
    console, buf = _console()
    display = UploadDisplay(console, live=False)
    for e in EVENTS:
        display.event(e)
    lines = buf.getvalue().splitlines()
    assert lines == [
        "change #3 (reschedule) of #12 applied on YouTube",
        "change #3 (reschedule) of #12 ROLLED BACK: video vid12 is already public on YouTube",
    ]


def _state(as_json: bool) -> tuple[State, io.StringIO]:
    console, buf = _console()
    state = State(
        overrides={},
        config_file=None,
        as_json=as_json,
        verbose=False,
        _config=SchedulerConfig(database_url="sqlite://"),
        _out=console,
    )
    return state, buf


def _report(recovered: int, rolled_back: int) -> ProcessReport:
    return ProcessReport(
        worker_id="w",
        outcome=RunOutcome.OK,
        changes_recovered=recovered,
        changes_rolled_back=rolled_back,
        duration=timedelta(seconds=1),
    )


def test_the_summary_mentions_recovered_changes_only_when_any() -> None:
    state, buf = _state(as_json=False)
    _render_outcome(state, _Outcome(events=EVENTS, report=_report(2, 1), elapsed=1.0))
    assert "2 pending changes of plan finished (1 rolled back)" in buf.getvalue()
    state, buf = _state(as_json=False)
    _render_outcome(state, _Outcome(events=[], report=_report(0, 0), elapsed=1.0))
    assert "changes of plan" not in buf.getvalue()


def test_json_has_the_counts_and_the_change_of_each_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, buf = _state(as_json=True)
    _render_outcome(state, _Outcome(events=EVENTS, report=_report(2, 1), elapsed=1.0))
    payload = json.loads(capsys.readouterr().out or buf.getvalue())
    assert (payload["changes_recovered"], payload["changes_rolled_back"]) == (2, 1)
    assert [(e["kind"], e["change_id"], e["change_kind"]) for e in payload["events"]] == [
        ("change_applied", 3, "reschedule"),
        ("change_rolled_back", 3, "reschedule"),
    ]
