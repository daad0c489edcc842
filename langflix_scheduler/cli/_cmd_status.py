"""``status``: recent processor runs and what needs a look (the library classifies; we render)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..config import SchedulerConfig
from ..domain import ProcessorRunRecord
from ..overview import VIDEO_PROBLEM_KINDS
from ._render import emit_json, fmt_local, pending_changes_table, schedule_json, table_of
from ._state import State, run

if TYPE_CHECKING:
    from rich.table import Table

    from ..overview import Attention

_CLASSES = (
    "needs_review",
    "stuck",
    "in_flight",
    "failed",
    "overdue",
    "waiting",
    "due",
    *VIDEO_PROBLEM_KINDS,
    "processing_stuck",
)
_RUN_COUNTS = ("claimed", "uploaded", "failed", "retried", "deferred", "rescued")


@click.command()
@click.option(
    "--runs",
    "n_runs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many recent processor runs to show.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="At most this many failed schedules.",
)
@run
def status(state: State, n_runs: int, limit: int) -> None:
    """Recent processor runs (skips and lost runs included) and schedules that need review, are
    stuck, failed, overdue or retrying, and uploaded videos YouTube rejected, could not
    process, still processes after the last check, holds private or otherwise than planned, or
    no longer has."""
    with state.manager() as m:
        runs = m.processor_runs(limit=n_runs)
        att = m.attention(limit=limit)
        pending = m.pending_video_changes(limit=limit)
    if state.as_json:
        emit_json({**_status_json(runs, att), "pending_changes": pending})
        return
    _print_runs(state, runs)
    _print_attention(state, att)
    if pending:
        state.out.print(pending_changes_table(pending, state.config))


def _elsewhere(att: Attention) -> dict[str, int]:
    return {
        f"--channel {channel} --api-project {project}": n
        for (channel, project), n in att.due_elsewhere.items()
    }


def _status_json(runs: list[ProcessorRunRecord], att: Attention) -> dict[str, Any]:
    return {
        "now": att.now,
        "runs": runs,
        "skipped_runs": sum(r.skipped_overlap for r in runs),
        **{k: [schedule_json(s) for s in getattr(att, k)] for k in _CLASSES},
        "failed_total": att.failed_total,
        "channel": att.channel,
        "api_project": att.api_project,
        "due_elsewhere": _elsewhere(att),
        "paused_channels": [
            {
                "channel": p.channel,
                "paused_at": p.paused_at,
                "reason": p.reason,
                "command": p.command,
            }
            for p in att.paused_channels
        ],
    }


def _run_row(r: ProcessorRunRecord, cfg: SchedulerConfig) -> tuple[str, ...]:
    secs = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
    counts = [f"{n} {name}" for name in _RUN_COUNTS if (n := getattr(r, name))]
    if r.skipped_overlap:
        counts = ["previous run still in progress"]
    if r.error:
        counts.append(f"error: {r.error}")
    return (
        fmt_local(r.started_at, cfg),
        r.worker_id,
        "SKIPPED" if r.skipped_overlap else r.outcome,
        "-" if secs is None else f"{secs:.1f}",
        ", ".join(counts) or "nothing due",
    )


def _print_runs(state: State, runs: list[ProcessorRunRecord]) -> None:
    cfg = state.config
    if runs:
        state.out.print(
            table_of(
                f"last {len(runs)} processor run(s), newest first",
                ("started", "worker", "outcome", "secs", "what happened"),
                [_run_row(r, cfg) for r in runs],
            )
        )
    else:
        state.out.print("no processor runs recorded yet (run `langflix-scheduler process`)")
    skipped = sum(r.skipped_overlap for r in runs)
    if skipped:
        state.out.print(
            f"{skipped} of the last {len(runs)} runs SKIPPED (previous run still in progress)"
        )
    lost = sum(r.outcome == "lost" for r in runs)
    if lost:
        state.out.print(
            f"{lost} of the last {len(runs)} runs LOST: their heartbeat stopped (the process died, "
            "hangs, or lost its database)"
        )


def _print_paused(state: State, att: Attention) -> None:
    for p in att.paused_channels:
        state.out.print(
            f"channel {p.channel} PAUSED since {fmt_local(p.paused_at, state.config)}: "
            f"{p.reason or 'its token was refused'}; its uploads wait until you run "
            f"`{p.command}`"
        )


def _print_attention(state: State, att: Attention) -> None:
    _print_paused(state, att)
    for where, n in sorted(_elsewhere(att).items()):
        state.out.print(f"also due: {n} with {where}")
    state.out.print(
        f"{len(att.needs_review)} need review, "
        f"{len(att.in_flight)} uploading now, "
        f"{len(att.due)} due for the next run on "
        f"channel {att.channel}, API project {att.api_project}, "
        f"{len(att.stuck)} stuck, {att.failed_total} failed, "
        f"{len(att.overdue)} overdue, {len(att.waiting)} waiting to retry"
    )
    on_youtube = [f"{n} {kind.replace('_', ' ')}" for kind, n in _video_counts(att) if n]
    if on_youtube:
        state.out.print("after upload: " + ", ".join(on_youtube))
    if att.problems():
        state.out.print(_attention_table(att, state.config))


def _video_counts(att: Attention) -> list[tuple[str, int]]:
    from ..overview import VIDEO_PROBLEM_KINDS

    return [(kind, len(getattr(att, kind))) for kind in (*VIDEO_PROBLEM_KINDS, "processing_stuck")]


def _attention_table(att: Attention, cfg: SchedulerConfig) -> Table:
    from ..overview import explain

    return table_of(
        "schedules that need attention",
        ("id", "channel", "publish (local)", "state", "attempts", "title", "why"),
        [
            (
                str(s.id),
                s.channel_id,
                fmt_local(s.scheduled_publish_time, cfg),
                kind,
                str(s.attempts),
                s.metadata.title,
                explain(kind, s, cfg.zone),
            )
            for kind, s in att.problems()
        ],
    )


COMMANDS = (status,)
