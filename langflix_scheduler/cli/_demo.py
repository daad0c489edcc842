"""``langflix-scheduler demo``: the whole job, offline, in well under a minute.

CLI-side module: it renders with rich, so only the CLI imports it (the library modules never
import click or rich); like the rest of ``cli/`` it uses only the library's public API and never
imports google libraries itself. Everything it drives is the real library:

* a throwaway SQLite database in a temporary directory, migrated with Alembic;
* generated sample "videos" (placeholder bytes; nothing inspects their content) and thumbnails;
* :class:`~langflix_scheduler.testing.FakeYouTube` on loopback, with the same quota model;
* the real :class:`~langflix_scheduler.youtube.google.YouTubeUploader` (google-api-python-client,
  resumable uploads in 256 KiB chunks);
* a simulated clock (:class:`~langflix_scheduler.testing.FakeClock`): the demo jumps to each
  moment an upload comes due, like a cron job that runs exactly then.

It books a week for one channel, shows the calendar and the quota, processes the first days with
the real :class:`~langflix_scheduler.processor.UploadProcessor`, drops one connection mid-upload
(the processor retries and the upload resumes its session), verifies that every due video reached
"YouTube" exactly once with the right bytes, follows the videos after the upload (checked on
YouTube until published; one video's whole timeline; one change of plan after upload, see
:mod:`._demo_life`), and ends with the final status table.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config import SchedulerConfig
from ..domain import ScheduledVideo, UploadStatus, VideoMetadata, VideoType
from ..errors import QuotaExceededError, SchedulerError, SlotUnavailableError
from ..manager import ScheduleManager
from ..processor import ProcessorEvent, ProcessorEventKind, UploadProcessor
from ..quota import QuotaPolicy
from ..testing import FakeClock, FakeYouTube
from ..testing.media import write_mp4
from ..youtube.uploader import (
    CallCallback,
    ProgressCallback,
    StepCallback,
    Uploader,
    UploadRequest,
    UploadResult,
    reports_calls,
    upload_passing_calls,
)
from ._demo_life import LifeReport, after_upload
from ._progress import DisplayingUploader, UploadDisplay

if TYPE_CHECKING:
    from ..youtube.google import YouTubeUploader

CHANNEL = "korean-daily"
API_PROJECT = "langflix-demo"
TIMEZONE = "Asia/Seoul"
QUOTA_PRESET = "legacy"
PLAYLIST = "PLkoreanWithDramas"
#: Sunday evening before the demo week (Seoul time): the producer books the week then.
START = datetime(2025, 11, 2, 21, 0, tzinfo=ZoneInfo(TIMEZONE))
WEEK_DAYS = 7
FINALS = 14
SHORTS = 35
#: Channel days whose uploads the demo processes (the rest stay scheduled).
PROCESS_DAYS = 2
CHUNK_SIZE = 256 * 1024
FINAL_BYTES = 1_300_000
SHORT_BYTES = 600_000
#: The upload that loses its connection once (the first final), and where.
FAULT_AT_FRACTION = 0.4
MAX_PROCESS_ROUNDS = 200

_TOPICS = (
    "ordering food",
    "at the subway",
    "polite speech",
    "meeting friends",
    "at the office",
    "shopping",
    "feelings",
    "the weather",
    "phone calls",
    "directions",
    "hospital visit",
    "apologising",
    "making plans",
    "family words",
)


@dataclass
class DemoRun:
    """Everything the demo did, for the JSON output and the checks."""

    workdir: Path
    database_url: str
    booked: list[ScheduledVideo] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    events: list[ProcessorEvent] = field(default_factory=list)
    runs: int = 0
    fault_injected_into: str | None = None
    final: list[ScheduledVideo] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    fake: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    life: LifeReport = field(default_factory=LifeReport)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    # What the demo's database is configured for (the `--keep` hint repeats them as flags).
    timezone: str = TIMEZONE
    channel: str = CHANNEL
    api_project: str = API_PROJECT


class _DropOnce:
    """Wraps the uploader: when the chosen upload is ``FAULT_AT_FRACTION`` done, tell the fake
    server to answer the next chunk with ``503 backendError`` (a Google hiccup, once)."""

    def __init__(self, inner: Uploader, fake: FakeYouTube, target_path: str) -> None:
        self.inner = inner
        self.fake = fake
        self.target_path = target_path
        self.injected = False

    @property
    def reports_api_calls(self) -> bool:
        """Whether the wrapped uploader reports its API calls (``on_call`` is passed on)."""
        return reports_calls(self.inner)

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
        on_call: CallCallback | None = None,
    ) -> UploadResult:
        def report(sent: int, total: int, uri: str | None) -> None:
            if progress is not None:
                progress(sent, total, uri)
            if (
                not self.injected
                and request.video_path == self.target_path
                and total
                and sent >= total * FAULT_AT_FRACTION
            ):
                self.injected = True
                self.fake.fail_next(1, 503, target="chunk")

        return upload_passing_calls(
            self.inner, request, progress=report, on_step=on_step, on_call=on_call
        )


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _png(rng: random.Random) -> bytes:
    # A PNG signature and some bytes: YouTube (and the fake) only see an image upload.
    return b"\x89PNG\r\n\x1a\n" + rng.randbytes(2048)


def _make_videos(folder: Path) -> list[tuple[Path, VideoType, VideoMetadata]]:
    """The week's output, in the order the producer finishes it: per day 2 finals, 5 shorts."""
    rng = random.Random(2025)
    folder.mkdir(parents=True, exist_ok=True)
    finals: list[tuple[Path, VideoType, VideoMetadata]] = []
    for n in range(1, FINALS + 1):
        topic = _TOPICS[(n - 1) % len(_TOPICS)]
        path = folder / f"episode-{n:02d}.mp4"
        write_mp4(path, width=1920, height=1080, seconds=600, payload=rng.randbytes(FINAL_BYTES))
        thumb = folder / f"episode-{n:02d}.png"
        thumb.write_bytes(_png(rng))
        meta = VideoMetadata(
            title=f"Korean with K-dramas #{n}: {topic}",
            description=f"Learn Korean for {topic} with real drama scenes.",
            tags=("korean", "learn korean", "k-drama"),
            default_language="ko",
            thumbnail_path=str(thumb),
            playlist_id=PLAYLIST,
        )
        finals.append((path, VideoType.FINAL, meta))
    shorts: list[tuple[Path, VideoType, VideoMetadata]] = []
    for n in range(1, SHORTS + 1):
        path = folder / f"short-{n:02d}.mp4"
        write_mp4(path, width=1080, height=1920, seconds=59, payload=rng.randbytes(SHORT_BYTES))
        meta = VideoMetadata(
            title=f"1-minute Korean #{n}",
            tags=("korean", "shorts"),
            default_language="ko",
        )
        shorts.append((path, VideoType.SHORT, meta))
    videos: list[tuple[Path, VideoType, VideoMetadata]] = []
    per_day_finals, per_day_shorts = FINALS // WEEK_DAYS, SHORTS // WEEK_DAYS
    for day in range(WEEK_DAYS):
        videos += finals[day * per_day_finals : (day + 1) * per_day_finals]
        videos += shorts[day * per_day_shorts : (day + 1) * per_day_shorts]
    return videos


class Demo:
    """One demo run (see the module docstring)."""

    def __init__(self, console: Console, *, quiet: bool, workdir: Path) -> None:
        self.console = console
        self.quiet = quiet
        self.zone = ZoneInfo(TIMEZONE)
        self.clock = FakeClock(START)
        self.run = DemoRun(workdir=workdir, database_url=f"sqlite:///{workdir / 'demo.db'}")
        self.policy = QuotaPolicy.preset(QUOTA_PRESET)
        self.config = SchedulerConfig(
            database_url=self.run.database_url,
            timezone=TIMEZONE,
            quota_policy=self.policy,
            api_project=API_PROJECT,
            channel=CHANNEL,
        )

    # -- rendering -------------------------------------------------------------------------------

    def say(self, text: str = "", *, style: str | None = None) -> None:
        if not self.quiet:
            self.console.print(text, style=style, highlight=False)

    def show(self, table: Table) -> None:
        if not self.quiet:
            self.console.print(table)

    def local(self, when: datetime) -> str:
        return when.astimezone(self.zone).strftime("%a %m-%d %H:%M %Z")

    # -- the story -------------------------------------------------------------------------------

    def __call__(self) -> DemoRun:
        t0 = time.monotonic()
        self.say(
            f"[bold]langflix-scheduler demo[/bold]: channel [cyan]{CHANNEL}[/cyan] ({TIMEZONE}), "
            f"simulated clock starting {START:%a %Y-%m-%d %H:%M %Z} (Seoul time)"
        )
        self.say(f"Temporary database {self.run.database_url}, videos in {self.run.workdir}/videos")
        self.say(
            f"API project {API_PROJECT} on the [bold]{QUOTA_PRESET}[/bold] quota model: 10,000 "
            "units per Pacific-time day, 1,600 per upload, 50 per thumbnail or playlist insert "
            "(about 6 uploads a day), so the quota binds before the daily limits do. "
            "Why legacy: the demo week is in November 2025, when YouTube still charged 1,600 "
            "units per upload (until 2025-12-04); real use today takes the default, "
            "granular-2026."
        )
        videos = _make_videos(self.run.workdir / "videos")
        with ScheduleManager(self.config, clock=self.clock) as manager:
            manager.init_db()
            self.book(manager, videos)
            self.refusals(manager)
            self.show_calendar(manager)
            self.show_quota(manager)
            with FakeYouTube(clock=self.clock, quota_policy=self.policy) as fake:
                self.process(manager, fake)
                self.verify(manager, fake)
                self.life(manager, fake)
        self.run.elapsed = time.monotonic() - t0
        self.show_final()
        return self.run

    def book(
        self, manager: ScheduleManager, videos: list[tuple[Path, VideoType, VideoMetadata]]
    ) -> None:
        self.say()
        self.say(
            f"[bold]1. Booking the week[/bold]: {FINALS} finals (with thumbnail and playlist) and "
            f"{SHORTS} shorts, each into the next free slot"
        )
        for path, vtype, meta in videos:
            self.run.booked.append(manager.schedule_video(path, vtype, metadata=meta))
        first = min(s.scheduled_publish_time for s in self.run.booked)
        last = max(s.scheduled_publish_time for s in self.run.booked)
        self.say(
            f"   {len(self.run.booked)} videos booked from {self.local(first)} to "
            f"{self.local(last)}: the quota pushed some into the following week"
        )

    def refusals(self, manager: ScheduleManager) -> None:
        monday = START.date() + timedelta(days=1)
        attempts = [
            ("a third final on Monday at 12:00", VideoType.FINAL, monday, 12, 0),
            ("an extra short on Friday at 21:30", VideoType.SHORT, monday + timedelta(4), 21, 30),
            ("a short at 08:00 a week from Tuesday", VideoType.SHORT, monday + timedelta(8), 8, 0),
        ]
        videos = self.run.workdir / "videos"
        extra = {  # real headers: the booking check reads the frame size and duration
            VideoType.FINAL: write_mp4(videos / "extra.mp4", width=1920, height=1080, seconds=600),
            VideoType.SHORT: write_mp4(videos / "short.mp4", width=1080, height=1920, seconds=30),
        }
        self.say("   Requests for exact times are checked under the same locks:")
        for what, vtype, day, hour, minute in attempts:
            when = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
            try:
                booked = manager.schedule_video(
                    extra[vtype], vtype, preferred_time=when, metadata=VideoMetadata(title="Extra")
                )
            except (QuotaExceededError, SlotUnavailableError) as exc:
                self.run.refused.append(
                    {"request": what, "error": type(exc).__name__, "message": str(exc)}
                )
                self.say(f"   [red]refused[/red] {what}: {type(exc).__name__}: {escape(str(exc))}")
            else:
                manager.cancel(booked.id)
                self.say(f"   accepted {what} (then cancelled again)")

    def show_calendar(self, manager: ScheduleManager) -> None:
        by_day: dict[date, list[ScheduledVideo]] = {}
        for s in manager.list_schedules(channel=CHANNEL, status="scheduled"):
            by_day.setdefault(s.publish_date, []).append(s)
        table = Table(title=f"2. Calendar ({TIMEZONE}): finals 10:00/18:00, shorts 5 a day")
        table.add_column("channel day")
        table.add_column("finals", justify="right")
        table.add_column("shorts", justify="right")
        table.add_column("slots booked (hour + F/s)")
        limits = self.config.daily_limits
        for day in sorted(by_day):
            rows = by_day[day]
            count = Counter(s.video_type for s in rows)
            times = " ".join(
                f"{s.scheduled_publish_time.astimezone(self.zone):%H}"
                + ("F" if s.video_type is VideoType.FINAL else "s")
                for s in sorted(rows, key=lambda r: r.scheduled_publish_time)
            )
            table.add_row(
                f"{day:%a %Y-%m-%d}",
                f"{count[VideoType.FINAL]}/{limits[VideoType.FINAL]}",
                f"{count[VideoType.SHORT]}/{limits[VideoType.SHORT]}",
                times,
            )
        self.say()
        self.show(table)
        self.say(
            "   10F = a final at 10:00, 08s = a short at 08:00. An empty slot on a day below its "
            "limit is one whose quota day was full."
        )

    def show_quota(self, manager: ScheduleManager) -> None:
        seen: dict[tuple[date, str], Any] = {}
        days = sorted({s.publish_date for s in self.run.booked})
        for day in days:
            for usage in manager.check_daily_quota(day).quota:
                seen[(usage.quota_date, usage.bucket)] = usage
        uploads = Counter(s.quota_date for s in self.run.booked)
        table = Table(title="3. API quota per Pacific-time day (resets at midnight PT)")
        table.add_column("quota day (PT)")
        table.add_column("uploads", justify="right")
        table.add_column("units reserved", justify="right")
        table.add_column("limit", justify="right")
        table.add_column("left", justify="right")
        for (qday, bucket), u in sorted(seen.items()):
            if not u.reserved and not u.used:
                continue
            table.add_row(
                f"{qday:%a %Y-%m-%d}" + ("" if bucket == "shared" else f" {bucket}"),
                str(uploads.get(qday, 0)),
                f"{u.reserved + u.used:,}",
                f"{u.limit:,}",
                f"{u.remaining:,}",
            )
        self.say()
        self.show(table)
        self.say(
            "   An upload counts on the PT day it runs (publish time minus 1 h): a Seoul "
            "evening slot and the next Seoul morning share one quota day."
        )

    def process(self, manager: ScheduleManager, fake: FakeYouTube) -> None:
        window_end = self.config.day_start(START.date() + timedelta(days=1 + PROCESS_DAYS))
        first_final = min(
            (s for s in self.run.booked if s.video_type is VideoType.FINAL),
            key=lambda s: s.scheduled_publish_time,
        )
        self.run.fault_injected_into = first_final.metadata.title
        self.say()
        self.say(
            f"[bold]4. Processing[/bold] the first {PROCESS_DAYS} days: the clock jumps to each "
            f"moment an upload is due; FakeYouTube listens on {fake.url}"
        )
        self.say(
            f"   Fault: YouTube answers 503 once in the middle of {first_final.metadata.title!r}."
            " The client's own retries are off here, so the processor handles it: it schedules "
            "a retry with backoff, and the next run resumes the upload session where it stopped."
        )
        titles = {s.id: s.metadata.title for s in self.run.booked}
        display = UploadDisplay(
            self.console,
            live=None if not self.quiet else False,
            describe=lambda sid: repr(titles.get(sid, "?")),
            fmt_time=lambda t: f"{t.astimezone(self.zone):%a %m-%d %H:%M:%S %Z}",
        )
        real = self._uploader(fake)
        faulty = _DropOnce(real, fake, first_final.video_path)
        uploader: Uploader = faulty if self.quiet else DisplayingUploader(faulty, display)

        def on_event(event: ProcessorEvent) -> None:
            if event.kind is ProcessorEventKind.CLAIMED:
                return  # the demo reports outcomes
            self.run.events.append(event)
            if not self.quiet:
                display.event(event)

        processor = UploadProcessor(
            manager,
            uploader,
            worker_id="demo-processor",
            max_concurrent_uploads=2,
            per_channel_limit=1,
            exclusive=True,
            on_event=on_event,
            videos=real,  # the wrappers above only upload: checks on YouTube use the client
        )
        with real, processor:
            if not self.quiet:
                display.__enter__()
            try:
                self._process_until(manager, processor, window_end)
            finally:
                if not self.quiet:
                    display.__exit__(None, None, None)
        if not faulty.injected:
            self.say("   (the fault was never injected)", style="red")

    def _uploader(self, fake: FakeYouTube) -> YouTubeUploader:
        """The real uploader, pointed at the fake, on the simulated clock, without its own
        retries (the processor retries)."""
        from ..youtube.auth import access_token_credentials
        from ..youtube.google import YouTubeUploader

        return YouTubeUploader(
            access_token_credentials("demo-access-token"),
            api_endpoint=fake.api_endpoint,
            chunk_size=CHUNK_SIZE,
            max_retries=0,
            clock=self.clock,
            sleep=lambda _s: None,
            quota_timezone=self.config.quota_timezone,
        )

    def _process_until(
        self, manager: ScheduleManager, processor: UploadProcessor, window_end: datetime
    ) -> None:
        lead = self.config.upload_lead_time
        for _ in range(MAX_PROCESS_ROUNDS):
            pending = manager.list_schedules(status="scheduled", channel=CHANNEL, end=window_end)
            if not pending:
                return
            due = min(s.due_at(lead) for s in pending)
            # Like a cron job every minute: also wake when an uploaded video is due a check.
            checks = [
                s.next_check_at
                for s in manager.list_schedules(status="completed", channel=CHANNEL)
                if s.next_check_at is not None and s.next_check_at > self.clock()
            ]
            due = min([due, *checks])
            if due > self.clock():
                self.clock.set(due)
            processor.run_once()
            self.run.runs += 1
        raise SchedulerError(f"the demo did not finish within {MAX_PROCESS_ROUNDS} runs")

    def verify(self, manager: ScheduleManager, fake: FakeYouTube) -> None:
        everything = manager.list_schedules(channel=CHANNEL)
        due = [s for s in everything if s.status is not UploadStatus.SCHEDULED]
        self.run.final = due
        videos = fake.videos
        completed = [s for s in due if s.status is UploadStatus.COMPLETED]
        retried = [e for e in self.run.events if e.kind is ProcessorEventKind.RETRIED]
        retried_ids = {e.schedule_id for e in retried}
        self.run.checks = {
            "every due schedule completed": bool(due) and len(completed) == len(due),
            "one videos.insert per video": fake.insert_calls == len(completed),
            "every video id distinct and on YouTube": len(
                {s.youtube_video_id for s in completed} & set(videos)
            )
            == len(completed),
            "bytes on YouTube match the files": all(
                s.youtube_video_id in videos
                and videos[s.youtube_video_id].sha256 == _sha256(s.video_path)
                for s in completed
            ),
            "one transient fault retried, then completed": len(retried) == 1
            and all(s.attempts == 1 for s in completed if s.id in retried_ids)
            and all(s.attempts == 0 for s in completed if s.id not in retried_ids),
            "finals got thumbnail and playlist": all(
                videos[s.youtube_video_id].thumbnail_count == 1
                and videos[s.youtube_video_id].playlist_ids == (PLAYLIST,)
                for s in completed
                if s.video_type is VideoType.FINAL and s.youtube_video_id in videos
            ),
            "later schedules untouched": all(
                s.attempts == 0 and s.youtube_video_id is None
                for s in everything
                if s.status is UploadStatus.SCHEDULED
            ),
        }
        self.run.fake = {
            "insert_calls": fake.insert_calls,
            "videos": len(videos),
            "bytes_received": fake.bytes_received,
            "chunks_received": fake.chunks_received,
            "status_queries": fake.status_queries,
        }
        self.run.status_counts = dict(sorted(Counter(s.status.value for s in everything).items()))

    def life(self, manager: ScheduleManager, fake: FakeYouTube) -> None:
        """Step 5: verification, one change of plan after upload, the publish confirmation."""

        def on_event(event: ProcessorEvent) -> None:
            if event.kind is not ProcessorEventKind.CLAIMED:
                self.run.events.append(event)

        self.run.life = after_upload(
            manager,
            fake,
            say=self.say,
            local=self.local,
            clock=self.clock,
            channel=CHANNEL,
            new_uploader=lambda: self._uploader(fake),
            on_event=on_event,
        )
        self.run.checks.update(self.run.life.checks)
        self.run.final = [
            next((n for n in manager.list_schedules(channel=CHANNEL) if n.id == s.id), s)
            for s in self.run.final
        ]
        self.run.fake["videos_list_calls"] = fake.calls_of("videos.list")
        self.run.fake["videos_update_calls"] = fake.calls_of("videos.update")

    def show_final(self) -> None:
        table = Table(title="6. Final status of the due schedules")
        # `attempts` counts the tries that failed: 0 for a first-try success, hence "retries".
        for col in (
            "id",
            "publish (Seoul)",
            "video",
            "status",
            "retries",
            "video id",
            "on YouTube",
        ):
            table.add_column(col, overflow="fold")
        for s in self.run.final:
            table.add_row(
                str(s.id),
                self.local(s.scheduled_publish_time),
                Path(s.video_path).stem,
                s.status.value,
                str(s.attempts),
                s.youtube_video_id or "-",
                s.video_state.value if s.video_state is not None else "-",
            )
        self.say()
        self.show(table)
        counts = ", ".join(f"{n} {status}" for status, n in self.run.status_counts.items())
        self.say(
            f"   All schedules: {counts}. {self.run.runs} processor runs; FakeYouTube received "
            f"{self.run.fake['insert_calls']} videos.insert calls, "
            f"{self.run.fake['chunks_received']} chunks, {self.run.fake['status_queries']} "
            f"session status {'query' if self.run.fake['status_queries'] == 1 else 'queries'}."
        )
        for name, passed in self.run.checks.items():
            mark = "[green]ok[/green]  " if passed else "[red]FAIL[/red]"
            self.say(f"   {mark} {name}")
        self.say(
            f"   done in {self.run.elapsed:.1f} s (simulated time: {self.local(self.clock())})"
        )


def _schedule_json(s: ScheduledVideo) -> dict[str, Any]:
    return {
        "id": s.id,
        "video_type": s.video_type.value,
        "title": s.metadata.title,
        "scheduled_publish_time": s.scheduled_publish_time.isoformat(),
        "publish_date": s.publish_date.isoformat(),
        "quota_date": s.quota_date.isoformat(),
        "status": s.status.value,
        "attempts": s.attempts,
        "youtube_video_id": s.youtube_video_id,
        "video_state": None if s.video_state is None else s.video_state.value,
    }


def demo_json(run: DemoRun, *, kept: bool) -> dict[str, Any]:
    """The machine-readable summary of a run (``demo --json``)."""
    return {
        "ok": run.ok,
        "checks": run.checks,
        "database_url": run.database_url if kept else None,
        "workdir": str(run.workdir) if kept else None,
        "booked": len(run.booked),
        "refused": run.refused,
        "processor_runs": run.runs,
        "fault_injected_into": run.fault_injected_into,
        "events": [
            {
                "kind": e.kind.value,
                "schedule_id": e.schedule_id,
                "attempts": e.attempts,
                "video_id": e.video_id,
                "error": e.error,
            }
            for e in run.events
        ],
        "due": [_schedule_json(s) for s in run.final],
        "status_counts": run.status_counts,
        "after_upload": {
            "video_states_before": run.life.states_before,
            "video_states_after": run.life.states_after,
            "rescheduled": run.life.rescheduled,
        },
        "fake_youtube": run.fake,
        "elapsed_seconds": round(run.elapsed, 2),
    }


def run_demo(
    console: Console,
    *,
    quiet: bool = False,
    keep: bool = False,
    on_done: Callable[[DemoRun], None] | None = None,
) -> DemoRun:
    """Run the demo in a new temporary directory (removed afterwards unless ``keep``)."""
    workdir = Path(tempfile.mkdtemp(prefix="langflix-demo-"))
    try:
        run = Demo(console, quiet=quiet, workdir=workdir)()
        if on_done is not None:
            on_done(run)
        return run
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
