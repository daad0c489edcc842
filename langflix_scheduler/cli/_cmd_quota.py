"""Quota commands: ``quota`` and ``recalculate-quota``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import click

from ..config import SchedulerConfig
from ..domain import DailyQuotaStatus, VideoType
from ._parse import parse_date
from ._render import emit_json, new_table
from ._state import State, run

if TYPE_CHECKING:
    from rich.table import Table


@click.command()
@click.option("--date", "day", help="First channel day (default: today in the channel zone).")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="How many channel days to show from --date on.",
)
@run
def quota(state: State, day: str | None, days: int) -> None:
    """Per-day use of the daily limits and of the API quota (reserved vs used)."""
    cfg = state.config
    with state.manager() as m:
        first = parse_date(day, "--date") or m.now().astimezone(cfg.zone).date()
        statuses = [m.check_daily_quota(first + timedelta(days=i)) for i in range(days)]
    if state.as_json:
        emit_json(statuses)
    else:
        state.out.print(_quota_table(statuses, cfg))


def _quota_table(statuses: list[DailyQuotaStatus], cfg: SchedulerConfig) -> Table:
    table = new_table(
        title=f"channel {cfg.channel} ({cfg.timezone}), API project {cfg.api_project}"
    )
    table.add_column("day")
    for vt in VideoType:
        table.add_column(f"{vt.value} used/limit", justify="right")
    table.add_column("PT quota day")
    buckets = sorted(cfg.quota_policy.buckets)
    for b in buckets:
        table.add_column(f"{b} reserved+used/limit", justify="right")
    for st in statuses:
        for row in _quota_rows(st, buckets):
            table.add_row(*row)
    return table


def _quota_rows(st: DailyQuotaStatus, buckets: list[str]) -> list[list[str]]:
    """One row per PT quota day the channel day touches; the day's counts on the first."""
    rows: list[list[str]] = []
    for qd in sorted({q.quota_date for q in st.quota}):
        first_row = not rows
        cells = [st.publish_date.isoformat() if first_row else ""]
        for vt in VideoType:
            u = st.types[vt]
            cells.append(f"{u.used}/{u.limit}" if first_row else "")
        cells.append(qd.isoformat())
        by_bucket = {q.bucket: q for q in st.quota if q.quota_date == qd}
        for b in buckets:
            q = by_bucket.get(b)
            cells.append(f"{q.reserved}+{q.used}/{q.limit}" if q else "-")
        rows.append(cells)
    return rows


@click.command("recalculate-quota")
@click.option("--from", "from_", help="First day (YYYY-MM-DD), inclusive.")
@click.option("--to", help="Last day (YYYY-MM-DD), inclusive.")
@run
def recalculate_quota(state: State, from_: str | None, to: str | None) -> None:
    """Rebuild the limit and quota counters from the schedules (idempotent)."""
    with state.manager() as m:
        report = m.recalculate_quota(start=parse_date(from_, "--from"), end=parse_date(to, "--to"))
    if state.as_json:
        emit_json(report)
        return
    if not report.corrections:
        state.out.print(f"counters consistent ({report.rows_checked} schedules checked)")
        return
    table = new_table(title=f"{len(report.corrections)} counter(s) corrected")
    for col in ("table", "key", "column", "old", "new"):
        table.add_column(col)
    for c in report.corrections:
        table.add_row(c.table, " ".join(c.key), c.column, str(c.old), str(c.new))
    state.out.print(table)


COMMANDS = (quota, recalculate_quota)
