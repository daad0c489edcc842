"""``UploadProcessor``: the run loop, signals and lifecycle."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from types import FrameType, TracebackType
from typing import Any, Self

from .._time import as_timedelta as _as_timedelta
from ..db.locking import (
    named_lock,
)
from ..errors import (
    ConfigurationError,
    SchedulerError,
)
from ..manager import ScheduleManager
from ..youtube.uploader import (
    Uploader,
    reports_calls,
)
from ..youtube.videos import VideoClient, is_video_client
from ._state import (
    _LOCK_PREFIX,
    _MAX_RECORD_BUDGET,
    _POLL_SECONDS,
    _Attempt,
    _Counts,
    _Kind,
    _Outcome,
)
from .changes import recover_changes
from .claim import _Claims
from .events import ProcessorEvent, ProcessReport, RunOutcome
from .runs import _Runs
from .settings import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_LEASE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_RETRY_BASE,
    ProcessorSettings,
)
from .upload import _Uploads
from .verify import _Verify

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _RunState:
    """What one run did so far, and whether it still claims."""

    counts: _Counts = field(default_factory=_Counts)
    outcome: RunOutcome = RunOutcome.OK
    error: str | None = None
    claiming: bool = True
    want_claim: bool = True
    in_flight: dict[concurrent.futures.Future[_Outcome], _Attempt] = field(default_factory=dict)
    #: Uploaded videos checked on YouTube (not a ``processor_runs`` column).
    verified: int = 0
    #: Changes of plan finished by the recovery (applied or rolled back), and rolled back.
    changes_recovered: int = 0
    changes_rolled_back: int = 0


class UploadProcessor(_Uploads, _Claims, _Runs, _Verify):
    """Uploads due schedules of one API project, safely beside other processors anywhere.

    Args:
        manager: the :class:`~langflix_scheduler.manager.ScheduleManager` whose database and
            configuration (API project, quota policy and time zone) are used.
        uploader: the :class:`~langflix_scheduler.youtube.uploader.Uploader` (shared by all upload
            threads, so it must be thread-safe; ``YouTubeUploader`` and ``DryRunUploader`` are).
        worker_id: identifies this processor in leases and ``processor_runs`` (default
            ``host:pid:random``; at most 100 characters).
        max_concurrent_uploads: upload threads of this instance.
        per_channel_limit: uploads of one channel in flight at once, over ALL processors
            (enforced in the database at claim time).
        lease: how long a claim stays valid without a heartbeat.
        heartbeat_interval: how often leases of uploads in flight are extended (must be shorter
            than ``lease``).
        max_attempts: tries per schedule before it is marked ``failed``.
        upload_lead_time: how long before its publish time a schedule is due (default: the
            manager's ``upload_lead_time``).
        batch_size: most schedules claimed per claim transaction (default:
            ``max_concurrent_uploads``); a claim never exceeds the free upload threads.
        retry_base: the first retry delay after a transient failure (doubles per attempt).
        progress_interval: progress is written at most this often per upload (session URIs and
            video ids are always written at once).
        exclusive: default for :meth:`run_once`/:meth:`run_forever`: hold the named lock
            :attr:`lock_name` for the run and skip the run when another holder has it.
        channels: only claim schedules of these channels (default: every channel of the
            project). An uploader holds one channel's credentials, so give it that channel:
            the processor cannot tell which channel an uploader's token belongs to.
        on_event: called with a :class:`ProcessorEvent` after each committed transition, from the
            run thread, never inside a transaction; its exceptions are logged and ignored.
        videos: the :class:`~langflix_scheduler.youtube.videos.VideoClient` used after the
            upload (checking videos on YouTube, finishing changes of plan), on the same channel
            as ``uploader`` (default: ``uploader`` itself when it implements the protocol, as
            ``YouTubeUploader`` does; else no after-upload work is done). Every check of the
            run uses this one client, for every channel the processor takes (``channels``):
            give a processor one channel. Without a channel filter, a video its answers lack
            stays ``missing`` and is never marked ``deleted`` (the client may hold another
            channel's token); with one, it is ``deleted`` after three absent answers spanning
            more than an hour.
        on_claim: called with the wall-clock seconds each claim round took (finding due rows
            and claiming them, every transaction of the round), for latency metrics such as
            ``langflix_scheduler.web.metrics.EVENTS.observe_claim``; its exceptions are logged
            and ignored.
        clock: returns the aware current time (default: the manager's clock).

    Use as a context manager, or call :meth:`close` to shut the thread pool down.
    """

    def __init__(
        self,
        manager: ScheduleManager,
        uploader: Uploader,
        *,
        worker_id: str | None = None,
        max_concurrent_uploads: int = 2,
        per_channel_limit: int = 1,
        lease: timedelta = DEFAULT_LEASE,
        heartbeat_interval: timedelta = DEFAULT_HEARTBEAT_INTERVAL,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        upload_lead_time: timedelta | None = None,
        batch_size: int | None = None,
        retry_base: timedelta = DEFAULT_RETRY_BASE,
        progress_interval: timedelta = DEFAULT_PROGRESS_INTERVAL,
        exclusive: bool = False,
        channels: Iterable[str] | None = None,
        on_event: Callable[[ProcessorEvent], None] | None = None,
        on_claim: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        videos: VideoClient | None = None,
    ) -> None:
        settings = ProcessorSettings(
            worker_id=worker_id,
            max_concurrent_uploads=max_concurrent_uploads,
            per_channel_limit=per_channel_limit,
            lease=lease,
            heartbeat_interval=heartbeat_interval,
            max_attempts=max_attempts,
            upload_lead_time=(
                manager.config.upload_lead_time if upload_lead_time is None else upload_lead_time
            ),
            batch_size=batch_size,
            retry_base=retry_base,
            progress_interval=progress_interval,
            exclusive=exclusive,
            channels=channels,
        )
        self._setup(
            manager,
            uploader,
            settings,
            on_event=on_event,
            on_claim=on_claim,
            clock=clock,
            videos=videos,
        )

    @classmethod
    def from_settings(
        cls,
        manager: ScheduleManager,
        uploader: Uploader,
        settings: ProcessorSettings,
        *,
        on_event: Callable[[ProcessorEvent], None] | None = None,
        on_claim: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        videos: VideoClient | None = None,
    ) -> UploadProcessor:
        """A processor built from ready :class:`ProcessorSettings` (``upload_lead_time`` None:
        the manager's)."""
        self = cls.__new__(cls)
        if settings.upload_lead_time is None:
            settings = dataclasses.replace(
                settings, upload_lead_time=manager.config.upload_lead_time
            )
        self._setup(
            manager,
            uploader,
            settings,
            on_event=on_event,
            on_claim=on_claim,
            clock=clock,
            videos=videos,
        )
        return self

    def _setup(
        self,
        manager: ScheduleManager,
        uploader: Uploader,
        settings: ProcessorSettings,
        *,
        on_event: Callable[[ProcessorEvent], None] | None,
        on_claim: Callable[[float], None] | None = None,
        clock: Callable[[], datetime] | None,
        videos: VideoClient | None = None,
    ) -> None:
        assert settings.upload_lead_time is not None
        self.settings = settings
        self.manager = manager
        self.uploader = uploader
        self.worker_id = settings.worker
        self.max_concurrent_uploads = settings.max_concurrent_uploads
        self.per_channel_limit = settings.per_channel_limit
        self.lease = settings.lease
        self.heartbeat_interval = settings.heartbeat_interval
        self.max_attempts = settings.max_attempts
        self.upload_lead_time = settings.upload_lead_time
        self.batch_size = settings.claim_batch
        self.retry_base = settings.retry_base
        self.progress_interval = settings.progress_interval
        self.exclusive = settings.exclusive
        self.channels = settings.channel_filter
        self.api_project = manager.config.api_project
        self._on_event = on_event
        self._on_claim = on_claim
        if videos is None and is_video_client(uploader):
            videos = uploader  # type: ignore[assignment]
        #: The after-upload client (None: no verification or change recovery in runs).
        self.videos: VideoClient | None = videos
        self._clock = clock or manager.now
        self._db = manager.database
        self._policy = manager.config.quota_policy
        self._quota_tz = manager.config.quota_timezone
        self._rng = random.Random()
        # Asked before a schedule that opened an upload session is given up (optional seam).
        self._prober = (
            uploader if callable(getattr(uploader, "probe_session", None)) else None  # type: ignore[assignment]
        )
        self._record_budget = min(self.lease / 3, _MAX_RECORD_BUDGET)
        # The quota ledger is written call by call when the uploader reports its calls
        # (``on_call``); otherwise the calls are recorded when the upload completes.
        self._metered = reports_calls(uploader)
        self._sleep = time.sleep
        self._last_run_id = 0
        self._state_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._active = {}
        self._claim_sql_cache = None
        self._executor = None
        self._stop = threading.Event()
        self._external_stop = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def lock_name(self) -> str:
        """The named lock taken in exclusive mode: one per API project and channel filter.

        ``langflix-scheduler:processor:<api_project>`` when every channel is processed, with
        ``:<channel>,<channel>...`` appended when ``channels`` is set, so periodic jobs of
        different channels never skip each other (they coordinate through the database anyway).
        """
        name = _LOCK_PREFIX + self.api_project
        if self.channels is not None:
            name += ":" + ",".join(self.channels)
        return name

    def request_stop(self) -> None:
        """Ask the current run to stop: claim nothing more, stop uploads at the next chunk
        boundary and release their leases (the next run resumes their sessions). Thread-safe."""
        self._stop.set()

    def close(self) -> None:
        """Shut the upload thread pool down (waits for uploads in flight). Idempotent."""
        with self._state_lock:
            executor, self._executor = self._executor, None
            self._closed = True
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._state_lock:
            if self._closed:
                raise RuntimeError("this UploadProcessor is closed")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.max_concurrent_uploads,
                    thread_name_prefix=f"upload-{self.worker_id}",
                )
            return self._executor

    # -- runs ----------------------------------------------------------------------------------

    def run_once(self, *, exclusive: bool | None = None) -> ProcessReport:
        """Rescue expired leases, then claim and upload due schedules until none is left.

        Args:
            exclusive: hold the named lock :attr:`lock_name` for the run; when another run holds
                it, log ``SKIPPED (previous run still in progress)``, record a skipped run and
                return at once (default: the constructor's ``exclusive``).

        Raises:
            StorageError, LockTimeoutError: the database failed before the run could start.
            RuntimeError: this instance is already running (runs of one instance never overlap).
        """
        self._stop.clear()
        return self._run_once(exclusive)

    def _run_once(self, exclusive: bool | None) -> ProcessReport:
        if self._closed:
            raise RuntimeError("this UploadProcessor is closed")
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError("run_once is already running on this UploadProcessor")
        try:
            if self.exclusive if exclusive is None else exclusive:
                with named_lock(self._db, self.lock_name) as got:
                    if not got:
                        return self._skipped_run()
                    return self._run()
            return self._run()
        finally:
            self._run_lock.release()

    def run_forever(
        self,
        interval: timedelta | float,
        *,
        stop_event: threading.Event | None = None,
        exclusive: bool | None = None,
    ) -> None:
        """Run :meth:`run_once` every ``interval`` until stopped.

        Stops on ``stop_event``, :meth:`request_stop`, SIGINT or SIGTERM (handlers are installed
        only when called from the main thread, and the previous handlers come back after the
        first signal, so a second Ctrl-C interrupts at once). Stopping claims nothing more, stops
        uploads in flight at the next chunk boundary, releases their leases and returns; a
        summary is logged at INFO. A run that fails with a database error is logged and the loop
        goes on.
        """
        period = _as_timedelta(interval, "interval").total_seconds()
        if period < 0:
            raise ConfigurationError("interval", "must not be negative")
        self._stop.clear()
        self._external_stop = stop_event
        restore = self._install_signal_handlers()
        totals = _Counts()
        runs = skipped = errors = 0
        started = time.monotonic()
        try:
            while not self._stopping():
                try:
                    report = self._run_once(exclusive)
                except SchedulerError as exc:
                    errors += 1
                    logger.error("processor run failed: %s", exc)
                else:
                    runs += 1
                    skipped += int(report.skipped)
                    errors += int(report.outcome is RunOutcome.ERROR)
                    for name in ("claimed", "uploaded", "failed", "retried", "deferred"):
                        setattr(totals, name, getattr(totals, name) + getattr(report, name))
                    totals.rescued += report.rescued
                self._pause(period)
        finally:
            restore()
            self._external_stop = None
            logger.info(
                "processor %s stopped after %d runs in %.1f s: %d uploaded, %d failed, "
                "%d retried, %d deferred, %d rescued, %d runs skipped, %d runs with errors",
                self.worker_id,
                runs,
                time.monotonic() - started,
                totals.uploaded,
                totals.failed,
                totals.retried,
                totals.deferred,
                totals.rescued,
                skipped,
                errors,
            )

    def _pause(self, period: float) -> None:
        """Wait ``period`` seconds between runs, waking to notice a stop request."""
        deadline = time.monotonic() + period
        while not self._stopping():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._stop.wait(min(remaining, _POLL_SECONDS))

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def restore() -> None:
            for signum, handler in previous.items():
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signum, handler)
            previous.clear()

        def handler(signum: int, _frame: FrameType | None) -> None:
            logger.info(
                "received %s: claiming nothing more; uploads in flight stop at the next chunk "
                "boundary and release their leases",
                signal.Signals(signum).name,
            )
            self._stop.set()
            restore()

        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
        return restore

    def _run(self) -> ProcessReport:
        """One run: rescue, then claim/upload/record until nothing is due or in flight."""
        t0 = time.monotonic()
        run_id = self._start_run_row(self._now())
        run = _RunState()
        try:
            self._rescue_step(run)
            self._changes_step(run)
            self._claim_loop(run_id, run)
            self._verify_step(run)
        except BaseException as exc:
            # Interrupted (KeyboardInterrupt, a bug): stop uploads at a chunk boundary and let
            # them release their leases before propagating.
            self._stop.set()
            self._drain(run)
            self._finish_run_row(run_id, run.counts, RunOutcome.ERROR, repr(exc))
            raise
        self._finish_run_row(run_id, run.counts, run.outcome, run.error)
        return self._report(run, t0)

    def _rescue_step(self, run: _RunState) -> None:
        try:
            rescued, rescue_failed, rescue_uploaded = self._rescue()
        except SchedulerError as exc:
            logger.error("rescuing expired leases failed: %s", exc)
            run.outcome, run.error, run.claiming = RunOutcome.ERROR, str(exc), False
            return
        run.counts.rescued = rescued
        run.counts.failed += rescue_failed
        run.counts.uploaded += rescue_uploaded

    def _changes_step(self, run: _RunState) -> None:
        """Finish or roll back changes of plan whose requester died (never raises)."""
        report = recover_changes(self)
        if report is not None:
            run.changes_recovered = report.applied + report.rolled_back
            run.changes_rolled_back = report.rolled_back

    def _verify_step(self, run: _RunState) -> None:
        """Check uploaded videos on YouTube (after the uploads: also when none was due)."""
        if self.videos is None or run.outcome is not RunOutcome.OK or self._stopping():
            return
        try:
            tally = self._verify()
        except SchedulerError as exc:
            logger.error("checking uploaded videos failed: %s", exc)
            run.outcome, run.error = RunOutcome.ERROR, str(exc)
            return
        run.verified = tally.verified
        if tally.unauthorized is not None:
            run.outcome, run.error = RunOutcome.UNAUTHORIZED, tally.unauthorized

    def _claim_loop(self, run_id: int, run: _RunState) -> None:
        claim_min = max(1, min(self.batch_size, self.max_concurrent_uploads // 2))
        last_claim = time.monotonic()
        next_heartbeat = time.monotonic() + self.heartbeat_interval.total_seconds()
        while True:
            if run.claiming and self._stopping():
                run.claiming = False
                run.outcome = RunOutcome.STOPPED
            free = self.max_concurrent_uploads - len(run.in_flight)
            # Claim when enough threads are free to make a claim worth its statements, when
            # the pool is idle, or when a free thread has waited one poll interval.
            if (
                run.claiming
                and run.want_claim
                and free > 0
                and (
                    free >= claim_min
                    or not run.in_flight
                    or time.monotonic() - last_claim >= _POLL_SECONDS
                )
            ):
                last_claim = time.monotonic()
                self._claim_and_submit(run, free)
            if not run.in_flight:
                break
            self._collect(run)
            if time.monotonic() >= next_heartbeat:
                self._heartbeat_all()
                self._heartbeat_run(run_id)
                next_heartbeat = time.monotonic() + self.heartbeat_interval.total_seconds()
                run.want_claim = True

    def _claim_and_submit(self, run: _RunState, free: int) -> None:
        started = time.perf_counter()
        try:
            claimed = self._claim(free)
        except SchedulerError as exc:
            logger.error("claiming due uploads failed: %s", exc)
            run.outcome, run.error, run.claiming = RunOutcome.ERROR, str(exc), False
            claimed = []
        self._report_claim_time(time.perf_counter() - started)
        run.counts.claimed += len(claimed)
        run.want_claim = len(claimed) >= free
        pool = self._pool() if claimed else None
        for attempt in claimed:
            with self._state_lock:
                self._active[attempt.schedule_id] = attempt
            assert pool is not None
            run.in_flight[pool.submit(self._upload, attempt)] = attempt

    def _collect(self, run: _RunState) -> None:
        """Wait briefly for uploads to finish; record and report the finished ones."""
        done, _ = concurrent.futures.wait(
            run.in_flight,
            timeout=min(_POLL_SECONDS, self.heartbeat_interval.total_seconds()),
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        finished: list[tuple[_Attempt, _Outcome]] = []
        for future in done:
            attempt = run.in_flight.pop(future)
            with self._state_lock:
                self._active.pop(attempt.schedule_id, None)
            finished.append((attempt, future.result()))
            run.want_claim = True
        for result in self._settle(finished):
            self._tally(run.counts, result)
            self._emit(result.events)
            if result.kind is _Kind.UNAUTHORIZED and run.claiming:
                run.claiming = False
                run.outcome, run.error = RunOutcome.UNAUTHORIZED, result.error

    def _drain(self, run: _RunState) -> None:
        """After an interrupt: wait for the uploads in flight and record what they did."""
        for future in concurrent.futures.as_completed(run.in_flight):
            attempt = run.in_flight[future]
            with self._state_lock:
                self._active.pop(attempt.schedule_id, None)
            if not future.cancelled() and future.exception() is None:
                for result in self._settle([(attempt, future.result())]):
                    self._tally(run.counts, result)
                    self._emit(result.events)

    def _report(self, run: _RunState, t0: float) -> ProcessReport:
        counts = run.counts
        report = ProcessReport(
            worker_id=self.worker_id,
            outcome=run.outcome,
            **asdict(counts),
            verified=run.verified,
            changes_recovered=run.changes_recovered,
            changes_rolled_back=run.changes_rolled_back,
            duration=timedelta(seconds=time.monotonic() - t0),
            error=run.error,
        )
        busy = counts.claimed or counts.rescued or run.verified or run.error
        busy = busy or run.changes_recovered
        logger.log(
            logging.INFO if busy else logging.DEBUG,
            "processor %s run %s: claimed %d, uploaded %d, failed %d, retried %d, deferred %d, "
            "rescued %d, verified %d in %.2f s",
            self.worker_id,
            run.outcome.value,
            counts.claimed,
            counts.uploaded,
            counts.failed,
            counts.retried,
            counts.deferred,
            counts.rescued,
            run.verified,
            report.duration.total_seconds(),
        )
        return report

    @staticmethod
    def _tally(counts: _Counts, result: _Outcome) -> None:
        if result.kind is _Kind.UPLOADED:
            counts.uploaded += 1
        elif result.kind is _Kind.FAILED:
            counts.failed += 1
        elif result.kind is _Kind.RETRIED:
            counts.retried += 1
        counts.deferred += result.deferred
