"""``process``: upload the channel's due schedules (or, with ``--dry-run``, show the plan)."""

from __future__ import annotations

import contextlib
import signal
import time as time_module
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from ..errors import SchedulerError, StorageError
from ._render import emit_json, fmt_local, table_of
from ._state import ENV, State, channel_option, run, token_dir_option

if TYPE_CHECKING:
    from ..dry_run import DryRunItem, DryRunPlan
    from ..manager import ScheduleManager
    from ..processor import ProcessorEvent, ProcessReport, UploadProcessor
    from ..youtube.google import YouTubeUploader
    from ..youtube.videos import VideoClient
    from ._progress import UploadDisplay

_COUNTED = ("uploaded", "failed", "retried", "deferred", "rescued")


@dataclass(frozen=True)
class _Settings:
    """The ``process`` options that shape the processor."""

    once: bool
    interval: float
    exclusive: bool
    max_concurrent: int
    max_attempts: int
    worker_id: str | None


@dataclass
class _Outcome:
    """What a run (or a loop) did."""

    events: list[ProcessorEvent] = field(default_factory=list)
    report: ProcessReport | None = None
    elapsed: float = 0.0


@click.command()
@click.option("--once", is_flag=True, help="One run, then exit (for cron or a systemd timer).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    envvar=f"{ENV}PROCESS_INTERVAL",
    help=f"Seconds between runs when looping [env: {ENV}PROCESS_INTERVAL].",
)
@click.option(
    "--exclusive",
    is_flag=True,
    help="Skip the run when another exclusive run for this API project and channel is running.",
)
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    envvar=f"{ENV}MAX_CONCURRENT",
    help=f"Uploads of the channel in flight, over all processors [env: {ENV}MAX_CONCURRENT].",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    envvar=f"{ENV}MAX_ATTEMPTS",
    help=f"Tries per schedule before it is marked failed [env: {ENV}MAX_ATTEMPTS].",
)
@click.option(
    "--worker-id",
    envvar=f"{ENV}WORKER_ID",
    help=f"Name in leases and `status` (default host:pid:random) [env: {ENV}WORKER_ID].",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check what is due (files, metadata, privacy/publishAt) with no network; change nothing.",
)
@click.option(
    "--api-endpoint",
    envvar=f"{ENV}API_ENDPOINT",
    help=f"YouTube API base URL (default Google's; e.g. a FakeYouTube) [env: {ENV}API_ENDPOINT].",
)
@click.option(
    "--chunk-size",
    "chunk_mib",
    type=click.IntRange(min=0),
    default=None,
    metavar="MIB",
    envvar=f"{ENV}CHUNK_SIZE",
    help="Send each video in requests of at most MIB MiB, for proxies that limit request bodies "
    "(default or 0: the whole file in one request, the fastest; chunks cost one round trip "
    f"each) [env: {ENV}CHUNK_SIZE].",
)
@channel_option
@token_dir_option
@run
def process(
    state: State,
    dry_run: bool,
    api_endpoint: str | None,
    chunk_mib: int | None,
    token_dir: str,
    **options: Any,
) -> None:
    """Upload the channel's (--channel) due schedules: once, or every --interval seconds.

    Uses the OAuth token that `auth` saved for the channel. Stop a loop with Ctrl-C or SIGTERM:
    it claims nothing more, stops uploads within 1 MiB and releases them for the next run.
    """
    if dry_run:
        with state.manager() as m:
            plan = m.dry_run_plan(channel=state.config.channel)
        _render_plan(state, plan)
        return
    settings = _Settings(**options)
    _refuse_paused(state)
    uploader = _build_uploader(state, token_dir, api_endpoint, chunk_mib)
    outcome = _process(state, uploader, settings)
    _render_outcome(state, outcome)
    _raise_for(state, outcome.report)
    _raise_for_pause(state, outcome.events)


def _refuse_paused(state: State) -> None:
    """A paused channel (its token was refused) uploads nothing until `auth` succeeds."""
    from ..errors import AuthorizationError

    with state.manager() as m:
        paused = m.paused_channels(state.config.channel)
    for p in paused:
        raise AuthorizationError(
            f"channel {p.channel} is paused since {fmt_local(p.paused_at, state.config)}: "
            f"{p.reason or 'its token was refused'}; run `{p.command}`",
            reason="channelPaused",
        )


def _raise_for_pause(state: State, events: list[ProcessorEvent]) -> None:
    """The run paused the channel (its token was refused): exit non-zero like a refusal."""
    from ..errors import AuthorizationError
    from ..processor import ProcessorEventKind

    for e in events:
        if e.kind is ProcessorEventKind.CHANNEL_PAUSED:
            raise AuthorizationError(
                f"channel {e.channel_id} was paused: {e.error}; run "
                f"`langflix-scheduler auth --channel {e.channel_id}`",
                reason="channelPaused",
            )


# -- dry run -----------------------------------------------------------------------------------


def _item_json(item: DryRunItem) -> dict[str, Any]:
    s = item.schedule
    entry: dict[str, Any] = {
        "id": s.id,
        "title": s.metadata.title,
        "video_path": s.video_path,
        "scheduled_publish_time": s.scheduled_publish_time.isoformat(),
        "ok": item.ok,
    }
    if not item.ok:
        entry["error"] = item.error
        return entry
    entry.update(
        operations=list(item.operations),
        privacy_status=item.privacy_status,
        publish_at=item.publish_at.isoformat() if item.publish_at else None,
        bytes=item.bytes_sent,
    )
    return entry


def _item_row(item: DryRunItem) -> tuple[str, ...]:
    s = item.schedule
    if not item.ok:
        return (str(s.id), s.metadata.title, "-", f"would fail: {item.error}")
    when = f", publishAt {item.publish_at.isoformat()}" if item.publish_at else ""
    ops = ", ".join(item.operations)
    return (str(s.id), s.metadata.title, f"{item.privacy_status}{when}", f"ok: {ops}")


def _render_plan(state: State, plan: DryRunPlan) -> None:
    """``process --dry-run``: the library's plan, saying which channel and project it is for."""
    if state.as_json:
        emit_json(
            {
                "dry_run": True,
                "channel": plan.channel,
                "api_project": plan.api_project,
                "due": [_item_json(i) for i in plan.items],
            }
        )
        return
    if not plan.items:
        state.out.print(f"dry run: nothing is due on {plan.looked_at}")
        return
    state.out.print(
        table_of(
            f"dry run: {len(plan.items)} due upload(s) on {plan.looked_at}",
            ("id", "title", "would send", "result"),
            [_item_row(i) for i in plan.items],
        )
    )
    state.out.print("nothing was uploaded or changed")


# -- a real run --------------------------------------------------------------------------------


def _build_uploader(
    state: State,
    token_dir: str,
    api_endpoint: str | None,
    chunk_mib: int | None = None,
    *,
    channel: str | None = None,
) -> YouTubeUploader:
    """The channel's uploader (default: the configured channel), with the token that `auth`
    saved."""
    from ..youtube.auth import load_credentials, token_path_for
    from ..youtube.google import YouTubeUploader

    cfg = state.config
    token = token_path_for(channel or cfg.channel, Path(token_dir).expanduser())
    credentials = load_credentials(token)
    return YouTubeUploader(
        credentials,
        api_endpoint=api_endpoint,
        quota_timezone=cfg.quota_timezone,
        chunk_size=chunk_mib * 1024 * 1024 if chunk_mib else None,
    )


def _titles(m: ScheduleManager) -> Callable[[int], str]:
    """``schedule id -> repr(title)`` for event lines, read once per schedule."""
    titles: dict[int, str] = {}

    def describe(schedule_id: int) -> str:
        if schedule_id not in titles:
            try:
                titles[schedule_id] = repr(m.get(schedule_id).metadata.title)
            except SchedulerError:
                titles[schedule_id] = ""
        return titles[schedule_id]

    return describe


def _process(state: State, uploader: YouTubeUploader, settings: _Settings) -> _Outcome:
    """Run the processor once or in a loop, showing progress unless ``--json``."""
    from ..processor import UploadProcessor
    from ..youtube.videos import is_video_client
    from ._progress import DisplayingUploader, UploadDisplay

    cfg = state.config
    quiet = state.as_json
    outcome = _Outcome()
    started = time_module.monotonic()
    with state.manager() as m:
        display = UploadDisplay(
            state.out,
            describe=_titles(m),
            fmt_time=lambda t: fmt_local(t, cfg),
            timestamps=not state.out.is_terminal,
        )

        def on_event(event: ProcessorEvent) -> None:
            if event.kind.value == "claimed":
                return  # the progress display shows the start; the report lists outcomes
            outcome.events.append(event)
            if not quiet:
                display.event(event)

        processor = UploadProcessor(
            m,
            uploader if quiet else DisplayingUploader(uploader, display),
            worker_id=settings.worker_id,
            max_concurrent_uploads=settings.max_concurrent,
            per_channel_limit=settings.max_concurrent,
            max_attempts=settings.max_attempts,
            exclusive=settings.exclusive,
            channels=[cfg.channel],
            on_event=on_event,
            # The display wraps only uploads: after-upload calls go to the uploader itself.
            videos=cast("VideoClient", uploader) if is_video_client(uploader) else None,
        )
        with uploader, processor, contextlib.nullcontext() if quiet else display:
            outcome.report = _run_loop(state, processor, display, settings)
    outcome.elapsed = time_module.monotonic() - started
    return outcome


def _run_loop(
    state: State, processor: UploadProcessor, display: UploadDisplay, settings: _Settings
) -> ProcessReport | None:
    """One run (``--once``, graceful on signals) or runs every ``--interval`` seconds."""
    if settings.once:
        with _stop_on_signals(processor.request_stop):
            report: ProcessReport = processor.run_once()
            return report
    if not state.as_json:
        display.print(
            f"processing channel {state.config.channel} every {settings.interval:g} s "
            "(Ctrl-C or SIGTERM stops the uploads in flight within 1 MiB; they resume next run)"
        )
    processor.run_forever(settings.interval)
    return None


def _event_json(e: ProcessorEvent) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "schedule_id": e.schedule_id,
        "channel_id": e.channel_id,
        "at": e.at.isoformat(),
        "attempts": e.attempts,
        "video_id": e.video_id,
        "error": e.error,
        "next_attempt_at": e.next_attempt_at.isoformat() if e.next_attempt_at else None,
        "change_id": e.change_id,
        "change_kind": e.change_kind,
    }


def _render_outcome(state: State, outcome: _Outcome) -> None:
    cfg, report = state.config, outcome.report
    if report is not None:
        totals = {k: getattr(report, k) for k in _COUNTED}
    else:
        totals = {k: sum(e.kind.value == k for e in outcome.events) for k in _COUNTED}
    if state.as_json:
        payload: dict[str, Any] = {
            "channel": cfg.channel,
            "api_project": cfg.api_project,
            **totals,
            "elapsed_seconds": round(outcome.elapsed, 3),
            "events": [_event_json(e) for e in outcome.events],
        }
        if report is not None:
            payload.update(
                outcome=report.outcome.value,
                claimed=report.claimed,
                verified=report.verified,
                changes_recovered=report.changes_recovered,
                changes_rolled_back=report.changes_rolled_back,
                skipped=report.skipped,
                error=report.error,
            )
        emit_json(payload)
        return
    if report is not None and report.skipped:
        state.out.print("SKIPPED (previous run still in progress)")
    summary = ", ".join(f"{n} {k}" for k, n in totals.items())
    if report is not None and report.verified:
        summary += f", {report.verified} videos checked on YouTube"
    if report is not None and report.changes_recovered:
        summary += (
            f", {report.changes_recovered} pending changes of plan finished "
            f"({report.changes_rolled_back} rolled back)"
        )
    what = f"run {report.outcome.value}" if report is not None else "stopped"
    state.out.print(f"{what} after {outcome.elapsed:.1f} s: {summary}")


def _raise_for(state: State, report: ProcessReport | None) -> None:
    """A run YouTube refused (credentials) or that stopped on an error exits non-zero."""
    from ..processor import RunOutcome

    if report is not None and report.outcome is RunOutcome.UNAUTHORIZED:
        from ..errors import AuthorizationError

        raise AuthorizationError(
            f"YouTube refused the credentials of channel {state.config.channel}: "
            f"{report.error}; run `langflix-scheduler auth` again",
            reason="unauthorized",
        )
    if report is not None and report.outcome is RunOutcome.ERROR:
        raise StorageError("processor run", report.error or "stopped early")


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM ask the run to stop gracefully; a second signal interrupts at once."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        stop()
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


COMMANDS = (process,)
