"""``reconcile``: compare the channel's schedules with its uploads on YouTube (``--apply``
fixes what is safe). The library decides (:mod:`langflix_scheduler.reconcile`); we render."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import click

from ._errors import EXIT_USER_ERROR
from ._render import emit_json, fmt_local, table_of
from ._state import ENV, State, channel_option, run, token_dir_option

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..reconcile import ReconcileProgress, ReconcileReport
    from ..youtube.videos import VideoClient


@click.command()
@channel_option
@click.option(
    "--apply",
    is_flag=True,
    help="Fix what is safe: attach a found video to its schedule, mark gone videos deleted.",
)
@click.option(
    "--api-endpoint",
    envvar=f"{ENV}API_ENDPOINT",
    help=f"YouTube API base URL (default Google's; e.g. a FakeYouTube) [env: {ENV}API_ENDPOINT].",
)
@token_dir_option
@run
def reconcile(state: State, apply: bool, api_endpoint: str | None, token_dir: str) -> None:
    """Compare the channel's (--channel) schedules with its uploads on YouTube.

    Lists the uploads playlist (1 quota unit per 50 videos, plus 1) and checks every recorded
    video (1 unit per 50), each call counted in the quota ledger. Reports videos no schedule
    records (with the schedule that likely uploaded them), schedules whose video is gone, and
    privacy or publish times that differ from the plan. --apply attaches unambiguous matches
    and marks gone videos deleted; differences are only reported. When none of two or more
    recorded videos is found, the token may belong to another Google account: nothing is
    marked gone and a warning says so.

    Exit status: 0 when nothing is left to fix; 1 when findings remain (a match not attached,
    an ambiguous one, a gone video not marked, a difference). Videos no schedule matches
    (uploaded elsewhere) are listed but do not change the exit status.
    """
    videos = _video_client(state, token_dir, api_endpoint)
    show = None if state.as_json else _progress(state)
    with state.manager() as m, contextlib.ExitStack() as stack:
        close = getattr(videos, "close", None)
        if callable(close):
            stack.callback(close)
        report = m.reconcile(videos, channel=state.config.channel, apply=apply, on_progress=show)
    if state.as_json:
        emit_json(_report_json(report))
    else:
        _render(state, report)
    if not report.clean:
        raise SystemExit(EXIT_USER_ERROR)


def _video_client(state: State, token_dir: str, api_endpoint: str | None) -> VideoClient:
    """The channel's YouTube client, built like ``process`` builds its uploader."""
    from ._cmd_process import _build_uploader

    return _build_uploader(state, token_dir, api_endpoint)


def _progress(state: State) -> Callable[[ReconcileProgress], None]:
    def show(p: ReconcileProgress) -> None:
        if p.phase == "uploads":
            state.err.print(f"listed {p.done} upload(s)...", highlight=False)
        else:
            state.err.print(f"checked {p.done}/{p.total} recorded video(s)...", highlight=False)

    return show


def _report_json(report: ReconcileReport) -> dict[str, Any]:
    return {
        "channel": report.channel,
        "applied": report.applied,
        "uploads_listed": report.uploads_listed,
        "videos_checked": report.videos_checked,
        "api_calls": report.api_calls,
        "unrecorded": list(report.unrecorded),
        "gone": list(report.gone),
        "differences": list(report.differences),
        "unfixed": report.unfixed,
        "clean": report.clean,
        "warning": report.warning,
    }


def _render(state: State, report: ReconcileReport) -> None:
    state.out.print(
        f"channel {report.channel}: {report.uploads_listed} upload(s) listed, "
        f"{report.videos_checked} recorded video(s) checked, {report.api_calls} API call(s)"
    )
    for title, columns, rows in (
        _unrecorded_rows(state, report),
        _gone_rows(report),
        _difference_rows(report),
    ):
        if rows:
            state.out.print(table_of(title, columns, rows))
    _summary(state, report)


_Rows = tuple[str, tuple[str, ...], list[tuple[str, ...]]]


def _unrecorded_rows(state: State, report: ReconcileReport) -> _Rows:
    rows: list[tuple[str, ...]] = [
        (
            v.video_id,
            v.title,
            fmt_local(v.uploaded_at, state.config),
            v.state.value,
            ", ".join(f"#{c}" for c in v.candidates) or "-",
            v.note or "",
        )
        for v in report.unrecorded
    ]
    columns = ("video", "title", "uploaded", "state", "schedule(s)", "note")
    return "videos no schedule records", columns, rows


def _gone_rows(report: ReconcileReport) -> _Rows:
    rows: list[tuple[str, ...]] = [
        (f"#{g.schedule_id}", g.video_id, "marked deleted" if g.marked else "not marked")
        for g in report.gone
    ]
    return "schedules whose video is gone", ("schedule", "video", "fix"), rows


def _difference_rows(report: ReconcileReport) -> _Rows:
    rows: list[tuple[str, ...]] = [
        (f"#{d.schedule_id}", d.video_id, d.field, d.planned, d.on_youtube)
        for d in report.differences
    ]
    columns = ("schedule", "video", "field", "planned", "on YouTube")
    return "differences from the plan", columns, rows


def _summary(state: State, report: ReconcileReport) -> None:
    if report.warning:
        state.out.print(f"warning: {report.warning}", highlight=False)
    if report.clean:
        state.out.print("nothing to fix")
        return
    hint = "" if report.applied else "; run with --apply to fix what is safe"
    state.out.print(
        f"{report.unfixed} finding(s) left unfixed{hint} (differences of plan: use "
        "`reschedule`/`cancel`, or change the video in YouTube Studio)"
    )


COMMANDS = (reconcile,)
