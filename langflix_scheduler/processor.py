"""``UploadProcessor``: consumes due schedules and uploads them, safely beside other processors.

One run (:meth:`UploadProcessor.run_once`) does, in order:

1. **Rescue**: every ``uploading`` row of the API project whose lease expired goes back to
   ``scheduled`` (one attempt counted; its resumable session URI, byte offset and video id are
   kept, so the next try resumes the session or skips the insert), or, when its attempts are
   spent, is given up (see *Giving up* below). No row stays ``uploading`` longer than one lease
   after its worker died.
2. **Claim**: due rows (``scheduled_publish_time - upload_lead_time <= now`` and
   ``next_attempt_at`` empty or passed) are claimed in short transactions, one per channel:
   lock the channel's ``youtube_upload_channels`` row, count that channel's ``uploading`` rows,
   then take at most ``per_channel_limit - uploading`` rows with ``FOR UPDATE SKIP LOCKED``
   (PostgreSQL, MariaDB 10.6+, MySQL 8; SQLite serialises writers with ``BEGIN IMMEDIATE``) and
   set status ``uploading`` with a lease (owner token per row, expiry, heartbeat) in one
   ``UPDATE`` (PostgreSQL: count, pick and mark in one ``UPDATE ... RETURNING`` whose subquery
   runs after the channel lock). The per-channel cap therefore holds across every processor on
   every machine. Only as many rows are claimed as there are free upload threads, so nothing
   claimed sits waiting in a queue; a claim waits until half the threads are free, the pool is
   idle or a free thread waited one poll interval, so one claim serves several threads.
3. **Upload** with no transaction open, in the instance's thread pool.
4. **Record** the outcome, then fire events. Successes are recorded by the run thread, every
   upload that finished at that moment in one transaction (one summed update per quota row,
   then the schedule rows by id, each write fenced; see :meth:`UploadProcessor._record_successes`);
   other outcomes in one short transaction per schedule by the upload thread (see below).

Lock order (never violated, so the processor cannot deadlock with reservations, cancels or
``recalculate_quota``): upload-channel row -> channel-day row -> quota-day rows sorted by key ->
schedule rows by id. Counters (day counts, quota reserved/used) are only changed while their
rows are locked, and every transition keeps them equal to what ``recalculate_quota`` recounts.

Fencing: a claim writes a fresh lease-owner token (``<worker_id>#<random>``) on the row. Every
later write of that attempt (progress, session URI, video id, outcome) is conditional on
``id = :id AND lease_owner = :token AND upload_status = 'uploading'``; a worker whose lease was
taken over changes nothing and aborts its upload at the next progress report. Progress only moves
forward (``bytes_uploaded`` is raised, never lowered) except when the uploader reports a *new*
session URI (the old session expired), which restarts the count at that URI's offset; late
reports about a session the attempt already left are ignored. ``lease_expires_at`` and
``heartbeat_at`` are only ever raised too (``CASE`` in the ``UPDATE``), because the run thread's
heartbeat and the upload thread's progress write race. A finished row is never touched: every
write requires ``upload_status = 'uploading'`` and the current lease token.

Outcomes:

* success: ``completed``; video id, ``uploaded_at``; the reserved quota is released from the
  planned quota day (``quota_date`` moves to the day the upload finished). Quota spent is the
  quota ledger's (:mod:`langflix_scheduler.db.api_calls`): an uploader that reports its calls
  (``on_call``, see :func:`~langflix_scheduler.youtube.uploader.reports_calls`) has each call
  written, with ``used += cost`` on the Pacific day it is sent, in its own short transaction
  before the call is sent (a call that cannot be written is not sent: the attempt fails as
  transient); a quota refusal is taken back off. For another uploader the calls it lists in
  ``UploadResult.operations`` are recorded at completion, on that day, as before. Either way the
  row's ``consumed_quota`` becomes the ledger's total for the schedule, every attempt included.
  A ``playlistItems.insert`` the ledger shows an earlier attempt sent is passed on as
  ``UploadRequest.attempted_steps`` (the uploader checks the playlist before re-sending).
* A new resumable session's URI is stored before any of its bytes are sent; when that write
  fails, the upload stops there and the attempt counts as a transient failure (an unrecorded
  session that completed could not be found again, and the next attempt would upload twice).
* :class:`~langflix_scheduler.errors.TransientUploadError` (and any unexpected exception):
  ``scheduled`` again with ``next_attempt_at`` = now + ``retry_base * 2**(attempt-1)`` (capped at
  :data:`MAX_RETRY_DELAY`, jittered to 50-100 %), one attempt counted; ``failed`` once
  ``max_attempts`` are spent.
* :class:`~langflix_scheduler.errors.QuotaExhaustedError`: this row and every other ``scheduled``
  row of the API project planned for the exhausted quota day (or earlier) are deferred to
  ``resume_at`` (the next midnight Pacific; never earlier than that by the processor's own
  clock), their quota reservations moved to that quota day; no attempt counted.
* :class:`~langflix_scheduler.errors.UploadLimitExceededError`: this channel's ``scheduled`` rows
  due before now + ``retry_after`` (at least :data:`MIN_DEFERRAL`) are deferred to then,
  likewise.
* :class:`~langflix_scheduler.errors.AuthorizationError`: the lease is released (no attempt
  counted), the run claims nothing more, and the error is logged loudly.
* :class:`~langflix_scheduler.errors.PermanentUploadError`, an ``OSError`` from the uploader (a
  file problem) or an invalid stored request: ``failed`` with the reason in ``last_error``, slot
  freed (``slot_key`` NULL), day count decremented, reserved quota released.
* A video that already exists on YouTube (its id recorded) is never marked ``failed``: when only a
  follow-up step (thumbnail, playlist) failed for good or the attempts ran out, the row is
  ``completed`` with the follow-up's error in ``last_error`` (its slot stays booked, since the
  video will publish there).

Giving up (attempts spent, at a failure or at the rescue of an expired lease; or a permanent
failure): a row that stores an upload session URI but no video id may be on YouTube already (the
insert completed while the database was unreachable). Its session is asked first, through the
uploader's optional :class:`~langflix_scheduler.youtube.uploader.SessionProber` face, with no
database lock held; then the decision (:func:`langflix_scheduler._give_up.decide_give_up`) is
written fenced: completed -> ``completed`` with that video id (reservation released, one insert
used, like a success; follow-up steps not done stay undone, as for any row whose attempts are
spent, and ``last_error`` says so); incomplete -> ``failed`` (the server confirms the video is
not there); gone, unreachable, or no prober -> ``needs_review``: slot, day count and quota
reservation kept, lease cleared, ``last_error`` says what to check, never claimed again.

Recording is durable within bounds: every outcome write (batched and single completions, retry,
failure, release, deferral, needs_review) is retried on storage and lock errors with
:func:`~langflix_scheduler._backoff.backoff_delay` for at most ``min(lease / 3, 60 s)``, so the
lease outlives the retries. When the answer to a COMMIT is lost
(:class:`~langflix_scheduler.errors.OutcomeUnknownError`) the row is read back: in the state this
attempt's write produces (status, attempt count, ``last_error``, video id; every takeover counts
an attempt and writes its own ``last_error``, so nobody else can produce it) means written, and
the outcome is reported and its event fired; still ``uploading`` under the attempt's token means
not written, so it is written again. The completion clears ``lease_owner`` as before.

Run rows: ``processor_runs`` gets ``heartbeat_at`` and ``lease_expires_at`` (now + lease) at the
start, raised by the run thread at every heartbeat; a ``running`` row whose lease passed is
reported ``lost`` by :meth:`ScheduleManager.processor_runs`. The start insert is retried (a lost
answer is resolved by looking the row up by worker id and start time), the end write too.

Threading model: :meth:`~UploadProcessor.run_once` runs in the caller's thread (the *run thread*):
it rescues, claims, sends heartbeats for every upload in flight every ``heartbeat_interval``,
records successful uploads (batched), fires ``on_event`` callbacks (one at a time, after the
transition committed) and records the ``processor_runs`` row. Uploads run in a
:class:`~concurrent.futures.ThreadPoolExecutor` owned by the instance (``max_concurrent_uploads``
threads, created on first use, shut down by :meth:`~UploadProcessor.close`); each upload thread
persists its own progress through fenced writes and records its own outcome unless the upload
succeeded (heartbeats leave an upload alone once its uploader returned). The only shared state is
the instance's table of uploads in flight, guarded by a lock owned by the instance. There are no
module-level locks, semaphores, engines or sessions; all limits that must hold across processes are
enforced in the database.
A :class:`~langflix_scheduler.youtube.google.YouTubeUploader` keeps one API client per thread, so
one uploader may be shared by all upload threads.

Error policy: database failures surface as :mod:`langflix_scheduler.errors` exceptions (the
database layer translates them); an exception the uploader raises that is not an
:class:`~langflix_scheduler.errors.UploadError` is treated as transient, except ``OSError``
(a local file problem), which is permanent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ._backoff import backoff_delay, retry_until
from ._give_up import GiveUp, Verdict, decide_give_up
from .db import api_calls
from .db.due import due_condition
from .db.engine import Database
from .db.locking import (
    insert_if_absent,
    lock_day,
    lock_quota_counts,
    lock_quota_rows,
    named_lock,
)
from .db.models import ProcessorRun, QuotaUsage, Schedule, UploadChannel, UTCDateTime
from .domain import UploadStatus, VideoMetadata, VideoType
from .errors import (
    AuthorizationError,
    ConfigurationError,
    LockTimeoutError,
    OutcomeUnknownError,
    PermanentUploadError,
    QuotaExhaustedError,
    SchedulerError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from .fingerprint import content_changed
from .manager import _COUNT_COLUMN, ScheduleManager
from .quota import next_quota_reset, quota_date_of
from .slots import ensure_aware
from .youtube.uploader import (
    ApiCallReport,
    CallCallback,
    CallPhase,
    SessionProbe,
    SessionProber,
    Uploader,
    UploadRequest,
    UploadResult,
    UploadStep,
    reports_calls,
)

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_RETRY_BASE",
    "MAX_RETRY_DELAY",
    "MIN_DEFERRAL",
    "ProcessReport",
    "ProcessorEvent",
    "ProcessorEventKind",
    "RunOutcome",
    "UploadProcessor",
]

logger = logging.getLogger(__name__)

#: How long a claim is valid without a heartbeat before any processor may rescue the row.
DEFAULT_LEASE = timedelta(minutes=5)
#: How often the lease of every upload in flight is extended.
DEFAULT_HEARTBEAT_INTERVAL = timedelta(seconds=30)
#: Tries per schedule (transient failures and expired leases count; deferrals do not).
DEFAULT_MAX_ATTEMPTS = 5
#: First retry delay after a transient failure; doubles per attempt.
DEFAULT_RETRY_BASE = timedelta(seconds=30)
#: Retry delays are capped at this.
MAX_RETRY_DELAY = timedelta(hours=6)
#: A channel deferred for YouTube's upload limit waits at least this long.
MIN_DEFERRAL = timedelta(minutes=1)
#: Progress is written at most this often per upload (session URIs and video ids at once).
DEFAULT_PROGRESS_INTERVAL = timedelta(seconds=1)
#: The run thread wakes at least this often (seconds) to notice stop requests.
_POLL_SECONDS = 0.2
#: Channels examined per claim round.
_MAX_CHANNELS_PER_CLAIM = 64
#: Schedules moved per deferral transaction.
_DEFER_PAGE = 200
#: Pages per deferral before giving up (bounds the loop under constant concurrent change).
_MAX_DEFER_PAGES = 1000
#: Rows rescued per run (the rest are rescued by the next run).
_MAX_RESCUE_PER_RUN = 1000
#: How often a recording transaction is retried when its rows changed or a lock timed out.
_MAX_RECORD_TRIES = 5
_WORKER_ID_MAX = 100
_LAST_ERROR_MAX_CHARS = 2000
_LOCK_PREFIX = "langflix-scheduler:processor:"
_FOLLOW_UPS = (UploadStep.THUMBNAIL, UploadStep.PLAYLIST)
#: Recording an outcome is retried for at most this long (and at most a third of the lease).
_MAX_RECORD_BUDGET = timedelta(seconds=60)
#: First and largest wait between retries of a recording write.
_RECORD_RETRY_BASE = timedelta(seconds=0.2)
_RECORD_RETRY_CAP = timedelta(seconds=5)

_T = TypeVar("_T")

_SCHEDULED = UploadStatus.SCHEDULED.value
_UPLOADING = UploadStatus.UPLOADING.value
_COMPLETED = UploadStatus.COMPLETED.value
_FAILED = UploadStatus.FAILED.value
_NEEDS_REVIEW = UploadStatus.NEEDS_REVIEW.value


class ProcessorEventKind(enum.StrEnum):
    """What happened to a schedule."""

    UPLOADED = "uploaded"
    FAILED = "failed"
    RETRIED = "retried"
    DEFERRED = "deferred"
    RESCUED = "rescued"
    #: Given up, but the video may be on YouTube: ``needs_review``, slot and quota kept.
    NEEDS_REVIEW = "needs_review"


class RunOutcome(enum.StrEnum):
    """How a run ended (stored in ``processor_runs.outcome``)."""

    OK = "ok"
    SKIPPED = "skipped"
    STOPPED = "stopped"
    UNAUTHORIZED = "unauthorized"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class ProcessorEvent:
    """One transition, passed to ``on_event`` after it was committed.

    Attributes:
        kind: what happened.
        schedule_id: the schedule.
        channel_id: its channel.
        worker_id: the processor that made the transition.
        at: when (processor clock).
        attempts: failed attempts counted so far.
        video_id: the YouTube video id, when known.
        error: the error that caused a failure, retry or deferral.
        next_attempt_at: when a retried or deferred schedule becomes due again.
    """

    kind: ProcessorEventKind
    schedule_id: int
    channel_id: str
    worker_id: str
    at: datetime
    attempts: int
    video_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ProcessReport:
    """What one run did.

    Attributes:
        worker_id: the processor.
        outcome: how the run ended.
        claimed: schedules claimed.
        uploaded: schedules completed.
        failed: schedules marked failed (including rescued ones whose attempts were spent).
        retried: schedules put back for a retry after a transient failure.
        deferred: schedules deferred for quota or the channel upload limit (all of them, not only
            the one whose upload hit the limit).
        rescued: expired leases taken back.
        skipped: the run did nothing because another run held the exclusive lock.
        duration: wall-clock time the run took.
        error: why the run stopped early (``outcome`` ``error`` or ``unauthorized``).
    """

    worker_id: str
    outcome: RunOutcome
    claimed: int = 0
    uploaded: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    rescued: int = 0
    skipped: bool = False
    duration: timedelta = timedelta(0)
    error: str | None = None


class _LeaseLost(Exception):
    """Internal: a fenced write matched no row; this worker no longer owns the schedule."""


class _Regroup(Exception):
    """Internal: roll a batched completion back; ``drop`` its schedules that need recording
    alone, and with ``slow`` lock the quota rows first (creating any that are missing)."""

    def __init__(self, drop: set[int], *, slow: bool = False) -> None:
        super().__init__("regroup")
        self.drop = drop
        self.slow = slow


class _StopRequested(Exception):
    """Internal: raised from the progress callback to stop an upload at a chunk boundary."""


class _Kind(enum.Enum):
    UPLOADED = enum.auto()
    FAILED = enum.auto()
    RETRIED = enum.auto()
    DEFERRED = enum.auto()
    RELEASED = enum.auto()
    UNAUTHORIZED = enum.auto()
    LOST = enum.auto()
    UNRECORDED = enum.auto()
    #: Given up without knowing whether the video is on YouTube: ``needs_review``.
    REVIEW = enum.auto()
    #: The upload succeeded; the run thread records it (batched with the others done then).
    SUCCEEDED = enum.auto()


@dataclass
class _Outcome:
    kind: _Kind
    events: list[ProcessorEvent] = field(default_factory=list)
    deferred: int = 0
    error: str | None = None
    upload: UploadResult | None = None


@dataclass(eq=False)
class _Attempt:
    """One claimed schedule being uploaded. Mutable fields are guarded by ``lock``."""

    schedule_id: int
    channel_id: str
    api_project: str
    token: str
    attempts: int
    video_path: str
    metadata: dict[str, Any]
    publish_time: datetime
    session_uri: str | None
    video_id: str | None
    steps_done: set[UploadStep]
    bytes_uploaded: int
    bytes_total: int | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    lost: threading.Event = field(default_factory=threading.Event)
    #: Set once the uploader returned: heartbeats stop, the outcome is being recorded.
    finished: threading.Event = field(default_factory=threading.Event)
    #: Session URIs this attempt moved away from: late reports about them are ignored.
    retired_uris: set[str] = field(default_factory=set)
    reported_uri: str | None = None
    reported_bytes: int = 0
    reported_total: int | None = None
    last_progress_write: float = 0.0
    #: The row's quota day and reserved quota as claimed (the batched completion locks the quota
    #: rows these name, then re-checks them under the schedule row's lock).
    claimed_qday: date | None = None
    claimed_reserved: dict[str, int] | None = None
    #: The content fingerprint stored at booking (None for schedules booked before it existed).
    content_sha256: str | None = None
    file_size: int | None = None
    file_mtime_ns: int | None = None
    #: Follow-up steps an earlier attempt may have sent (read from the quota ledger).
    attempted_steps: frozenset[UploadStep] = frozenset()
    #: The ledger key of each call this attempt reported (``ApiCallReport.call_id`` -> key).
    call_keys: dict[int, str] = field(default_factory=dict)

    def progress_snapshot(self) -> tuple[str | None, int, int | None]:
        with self.lock:
            return self.reported_uri, self.reported_bytes, self.reported_total


@dataclass
class _Counts:
    """What a run did; its fields are ``ProcessReport``'s and ``processor_runs``' counters."""

    claimed: int = 0
    uploaded: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    rescued: int = 0


def _short(text: str) -> str:
    return text if len(text) <= _LAST_ERROR_MAX_CHARS else text[: _LAST_ERROR_MAX_CHARS - 3] + "..."


def _default_worker_id() -> str:
    host = socket.gethostname()[:60] or "host"
    return f"{host}:{os.getpid()}:{secrets.token_hex(3)}"


def _as_timedelta(value: timedelta | float, name: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    raise ConfigurationError(name, f"{value!r} is not a timedelta or a number of seconds")


def _latest(column: Any, value: datetime) -> ColumnElement[datetime]:
    """SQL for ``max(column, value)`` (``value`` when the column is NULL)."""
    bound = literal(value, UTCDateTime())
    return case((or_(column.is_(None), column < bound), bound), else_=column)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class UploadProcessor:
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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        worker = worker_id if worker_id is not None else _default_worker_id()
        if not isinstance(worker, str) or not worker or len(worker) > _WORKER_ID_MAX:
            raise ConfigurationError("worker_id", f"must be 1-{_WORKER_ID_MAX} characters")
        for name, value in (
            ("max_concurrent_uploads", max_concurrent_uploads),
            ("per_channel_limit", per_channel_limit),
            ("max_attempts", max_attempts),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(name, "must be an integer >= 1")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ConfigurationError("batch_size", "must be an integer >= 1")
        for name, delta in (
            ("lease", lease),
            ("heartbeat_interval", heartbeat_interval),
            ("retry_base", retry_base),
            ("progress_interval", progress_interval),
        ):
            if not isinstance(delta, timedelta) or delta < timedelta(0):
                raise ConfigurationError(name, "must be a non-negative timedelta")
        if heartbeat_interval <= timedelta(0) or heartbeat_interval >= lease:
            raise ConfigurationError(
                "heartbeat_interval", "must be positive and shorter than the lease"
            )
        self.manager = manager
        self.uploader = uploader
        self.worker_id = worker
        self.max_concurrent_uploads = max_concurrent_uploads
        self.per_channel_limit = per_channel_limit
        self.lease = lease
        self.heartbeat_interval = heartbeat_interval
        self.max_attempts = max_attempts
        self.upload_lead_time = (
            manager.config.upload_lead_time if upload_lead_time is None else upload_lead_time
        )
        self.batch_size = batch_size or max_concurrent_uploads
        self.retry_base = retry_base
        self.progress_interval = progress_interval
        self.exclusive = exclusive
        self.channels = None if channels is None else tuple(sorted(set(channels)))
        self.api_project = manager.config.api_project
        self._on_event = on_event
        self._clock = clock or manager.now
        self._db: Database = manager._db
        self._policy = manager.config.quota_policy
        self._quota_tz = manager.config.quota_timezone
        self._rng = random.Random()
        # Asked before a schedule that opened an upload session is given up (optional seam).
        self._prober: SessionProber | None = (
            uploader if callable(getattr(uploader, "probe_session", None)) else None  # type: ignore[assignment]
        )
        self._record_budget = min(lease / 3, _MAX_RECORD_BUDGET)
        # The quota ledger is written call by call when the uploader reports its calls
        # (``on_call``); otherwise the calls are recorded when the upload completes.
        self._metered = reports_calls(uploader)
        self._sleep: Callable[[float], None] = time.sleep
        self._last_run_id = 0
        self._state_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._active: dict[int, _Attempt] = {}
        self._claim_sql_cache: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._external_stop: threading.Event | None = None
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

    def _now(self) -> datetime:
        return ensure_aware(self._clock())

    def _stopping(self) -> bool:
        external = self._external_stop
        return self._stop.is_set() or (external is not None and external.is_set())

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

    def _emit(self, events: Iterable[ProcessorEvent]) -> None:
        if self._on_event is None:
            return
        for event in events:
            try:
                self._on_event(event)
            except Exception:
                logger.exception(
                    "on_event callback failed for %s of schedule %d; processing continues",
                    event.kind.value,
                    event.schedule_id,
                )

    def _event(
        self,
        kind: ProcessorEventKind,
        row: Schedule | _Attempt,
        *,
        attempts: int,
        video_id: str | None = None,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        at: datetime | None = None,
    ) -> ProcessorEvent:
        schedule_id = row.schedule_id if isinstance(row, _Attempt) else row.id
        return ProcessorEvent(
            kind=kind,
            schedule_id=schedule_id,
            channel_id=row.channel_id,
            worker_id=self.worker_id,
            at=at or self._now(),
            attempts=attempts,
            video_id=video_id,
            error=error,
            next_attempt_at=next_attempt_at,
        )

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
                deadline = time.monotonic() + period
                while not self._stopping():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._stop.wait(min(remaining, _POLL_SECONDS))
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

    def _skipped_run(self) -> ProcessReport:
        now = self._now()
        logger.warning(
            "processor %s: SKIPPED (previous run still in progress) for API project %s",
            self.worker_id,
            self.api_project,
        )

        def write(session: Session) -> None:
            session.add(
                ProcessorRun(
                    worker_id=self.worker_id,
                    started_at=now,
                    finished_at=now,
                    outcome=RunOutcome.SKIPPED.value,
                    claimed=0,
                    uploaded=0,
                    failed=0,
                    retried=0,
                    deferred=0,
                    rescued=0,
                    skipped_overlap=1,
                )
            )

        self._db.run("record skipped processor run", write)
        return ProcessReport(worker_id=self.worker_id, outcome=RunOutcome.SKIPPED, skipped=True)

    def _start_run_row(self, started: datetime) -> int:
        """Insert the ``running`` row (with its first heartbeat); retried with backoff. When the
        answer to the insert is lost, the row is looked up by worker and start time."""

        def write(session: Session) -> int:
            row = ProcessorRun(
                worker_id=self.worker_id,
                started_at=started,
                outcome="running",
                claimed=0,
                uploaded=0,
                failed=0,
                retried=0,
                deferred=0,
                rescued=0,
                skipped_overlap=0,
                heartbeat_at=started,
                lease_expires_at=started + self.lease,
            )
            session.add(row)
            session.flush()
            return row.id

        def find(session: Session) -> int | None:
            return session.execute(
                select(ProcessorRun.id)
                .where(
                    ProcessorRun.worker_id == self.worker_id,
                    ProcessorRun.started_at == started,
                    ProcessorRun.outcome == "running",
                    ProcessorRun.id > self._last_run_id,
                )
                .order_by(ProcessorRun.id.desc())
                .limit(1)
            ).scalar_one_or_none()

        deadline = self._record_deadline()
        while True:
            try:
                run_id = self._retry(
                    "record processor run",
                    lambda: self._db.run("record processor run", write),
                    deadline,
                )
            except OutcomeUnknownError:
                found = self._retry(
                    "read processor run",
                    lambda: self._db.run("read processor run", find, read_only=True),
                    deadline,
                    idempotent=True,
                )
                if found is None and time.monotonic() < deadline:
                    continue  # the insert did not commit: insert again
                if found is None:
                    raise
                run_id = found
            self._last_run_id = run_id
            return run_id

    def _heartbeat_run(self, run_id: int) -> None:
        """Raise the run row's heartbeat and lease (a row whose lease passed shows as lost)."""
        now = self._now()
        stmt = (
            update(ProcessorRun)
            .where(ProcessorRun.id == run_id, ProcessorRun.outcome == "running")
            .values(
                heartbeat_at=_latest(ProcessorRun.heartbeat_at, now),
                lease_expires_at=_latest(ProcessorRun.lease_expires_at, now + self.lease),
            )
        )
        try:
            self._execute_count("record processor run heartbeat", stmt)
        except SchedulerError as exc:
            logger.warning("heartbeat of processor run %d failed: %s", run_id, exc)

    def _finish_run_row(
        self, run_id: int, counts: _Counts, outcome: RunOutcome, error: str | None
    ) -> None:
        finished = self._now()

        def write(session: Session) -> None:
            session.execute(
                update(ProcessorRun)
                .where(ProcessorRun.id == run_id)
                .values(
                    finished_at=finished,
                    outcome=outcome.value,
                    **asdict(counts),
                    error=_short(error) if error else None,
                    heartbeat_at=finished,
                )
                .execution_options(synchronize_session=False)
            )

        try:
            # Sets fixed values: repeating it after a lost answer changes nothing.
            self._retry(
                "record processor run",
                lambda: self._db.run("record processor run", write),
                self._record_deadline(),
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.error("could not record the end of processor run %d: %s", run_id, exc)

    def _run(self) -> ProcessReport:
        t0 = time.monotonic()
        run_id = self._start_run_row(self._now())
        counts = _Counts()
        outcome = RunOutcome.OK
        error: str | None = None
        in_flight: dict[concurrent.futures.Future[_Outcome], _Attempt] = {}
        try:
            try:
                counts.rescued, rescue_failed, rescue_uploaded = self._rescue()
                counts.failed += rescue_failed
                counts.uploaded += rescue_uploaded
                claiming = True
            except SchedulerError as exc:
                logger.error("rescuing expired leases failed: %s", exc)
                outcome, error, claiming = RunOutcome.ERROR, str(exc), False
            want_claim = True
            claim_min = max(1, min(self.batch_size, self.max_concurrent_uploads // 2))
            last_claim = time.monotonic()
            next_heartbeat = time.monotonic() + self.heartbeat_interval.total_seconds()
            while True:
                if claiming and self._stopping():
                    claiming = False
                    outcome = RunOutcome.STOPPED
                free = self.max_concurrent_uploads - len(in_flight)
                # Claim when enough threads are free to make a claim worth its statements, when
                # the pool is idle, or when a free thread has waited one poll interval.
                if (
                    claiming
                    and want_claim
                    and free > 0
                    and (
                        free >= claim_min
                        or not in_flight
                        or time.monotonic() - last_claim >= _POLL_SECONDS
                    )
                ):
                    last_claim = time.monotonic()
                    try:
                        claimed = self._claim(free)
                    except SchedulerError as exc:
                        logger.error("claiming due uploads failed: %s", exc)
                        outcome, error, claiming = RunOutcome.ERROR, str(exc), False
                        claimed = []
                    counts.claimed += len(claimed)
                    want_claim = len(claimed) >= free
                    pool = self._pool() if claimed else None
                    for attempt in claimed:
                        with self._state_lock:
                            self._active[attempt.schedule_id] = attempt
                        assert pool is not None
                        in_flight[pool.submit(self._upload, attempt)] = attempt
                if not in_flight:
                    break
                done, _ = concurrent.futures.wait(
                    in_flight,
                    timeout=min(_POLL_SECONDS, self.heartbeat_interval.total_seconds()),
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
                finished: list[tuple[_Attempt, _Outcome]] = []
                for future in done:
                    attempt = in_flight.pop(future)
                    with self._state_lock:
                        self._active.pop(attempt.schedule_id, None)
                    finished.append((attempt, future.result()))
                    want_claim = True
                for result in self._settle(finished):
                    self._tally(counts, result)
                    self._emit(result.events)
                    if result.kind is _Kind.UNAUTHORIZED and claiming:
                        claiming = False
                        outcome, error = RunOutcome.UNAUTHORIZED, result.error
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat_all()
                    self._heartbeat_run(run_id)
                    next_heartbeat = time.monotonic() + self.heartbeat_interval.total_seconds()
                    want_claim = True
        except BaseException as exc:
            # Interrupted (KeyboardInterrupt, a bug): stop uploads at a chunk boundary and let
            # them release their leases before propagating.
            self._stop.set()
            for future in concurrent.futures.as_completed(in_flight):
                attempt = in_flight[future]
                with self._state_lock:
                    self._active.pop(attempt.schedule_id, None)
                if not future.cancelled() and future.exception() is None:
                    for result in self._settle([(attempt, future.result())]):
                        self._tally(counts, result)
                        self._emit(result.events)
            self._finish_run_row(run_id, counts, RunOutcome.ERROR, repr(exc))
            raise
        self._finish_run_row(run_id, counts, outcome, error)
        report = ProcessReport(
            worker_id=self.worker_id,
            outcome=outcome,
            **asdict(counts),
            duration=timedelta(seconds=time.monotonic() - t0),
            error=error,
        )
        level = logging.INFO if counts.claimed or counts.rescued or error else logging.DEBUG
        logger.log(
            level,
            "processor %s run %s: claimed %d, uploaded %d, failed %d, retried %d, deferred %d, "
            "rescued %d in %.2f s",
            self.worker_id,
            outcome.value,
            counts.claimed,
            counts.uploaded,
            counts.failed,
            counts.retried,
            counts.deferred,
            counts.rescued,
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

    # -- claim ---------------------------------------------------------------------------------

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return due_condition(
            Schedule,
            now=now,
            horizon=now + self.upload_lead_time,
            api_project=self.api_project,
            channels=self.channels,
        )

    def _claim_sql(self) -> dict[str, Any]:
        """The claim path's statements, built once per processor (bound values as parameters)."""
        key = (self.api_project, self.channels, self.worker_id)
        if self._claim_sql_cache is not None and self._claim_sql_cache[0] == key:
            return self._claim_sql_cache[1]
        due = due_condition(
            _S.c,
            now=bindparam("k_now"),
            horizon=bindparam("k_horizon"),
            api_project=self.api_project,
            channels=self.channels,
        )
        by_due = (_S.c.scheduled_publish_time, _S.c.id)
        first = (
            select(_S.c.channel_id)
            .where(due)
            .order_by(*by_due)
            .limit(bindparam("k_peek", type_=Integer))
        )
        # PostgreSQL, one statement: the subquery counts the channel's uploading rows (its
        # snapshot is taken after the channel lock), takes at most the room left under the cap
        # with SKIP LOCKED, the UPDATE marks them, each with its own random lease token, and the
        # channel row is stamped when any was taken.
        room_left = func.greatest(
            0,
            func.least(
                bindparam("k_limit", type_=Integer),
                bindparam("k_cap", type_=Integer) - _COUNT_LIVE_OF_CHANNEL,
            ),
        )
        ids = (
            select(_S.c.id)
            .where(due, _S.c.channel_id == bindparam("k_channel"))
            .order_by(*by_due)
            .limit(room_left)
            .with_for_update(skip_locked=True)
        )
        token_sql = literal(f"{self.worker_id}#") + func.substr(
            func.md5(func.random().cast(Text)), 1, 12
        )
        claim = (
            update(_S)
            .where(_S.c.id.in_(ids))
            .values(
                upload_status=_UPLOADING,
                lease_owner=token_sql,
                lease_expires_at=bindparam("k_expires"),
                heartbeat_at=bindparam("k_now"),
                updated_at=bindparam("k_now"),
            )
            .returning(*_CLAIM_COLUMNS, _S.c.lease_owner)
            .cte("claimed")
        )
        touch = (
            update(_CHANNELS)
            .where(
                _CHANNELS.c.channel_id == bindparam("k_channel"),
                exists(select(literal(1)).select_from(claim)),
            )
            .values(last_claim_at=bindparam("k_now"))
            .cte("touched")
        )
        pick = (
            select(*_CLAIM_COLUMNS)
            .where(due, _S.c.channel_id == bindparam("k_channel"))
            .order_by(*by_due)
            .limit(bindparam("k_room", type_=Integer))
            .with_for_update(skip_locked=True)
        )
        sql: dict[str, Any] = {
            "first": first,
            "pg_claim": select(claim).add_cte(touch),
            "pick": pick,
        }
        self._claim_sql_cache = (key, sql)
        return sql

    def _claim(self, room: int) -> list[_Attempt]:
        """Claim up to ``room`` due schedules, one short transaction per channel.

        Channels are taken in order of their earliest due schedule. The first look is a cheap
        top-N read of the due index (the channels of the next few due rows); only when those
        channels could not fill ``room`` (capped, or their rows taken by other processors) are
        the remaining channels found with a ``GROUP BY`` over all due rows.
        """
        now = self._now()
        peek = min(_MAX_CHANNELS_PER_CLAIM * 4, max(room * 4, 16))

        def first_channels(conn: Connection) -> tuple[list[str], bool]:
            rows = conn.execute(
                self._claim_sql()["first"],
                {"k_now": now, "k_horizon": now + self.upload_lead_time, "k_peek": peek},
            ).all()
            return list(dict.fromkeys(r[0] for r in rows)), len(rows) >= peek

        def all_channels(conn: Connection) -> list[str]:
            first_due = func.min(_S.c.scheduled_publish_time)
            rows = conn.execute(
                select(_S.c.channel_id, first_due)
                .where(self._due(self._now()))
                .group_by(_S.c.channel_id)
                .order_by(first_due, _S.c.channel_id)
                .limit(_MAX_CHANNELS_PER_CLAIM)
            ).all()
            return [r[0] for r in rows]

        claimed: list[_Attempt] = []
        tried: set[str] = set()

        def claim_from(channels: Iterable[str]) -> None:
            for channel in channels:
                limit = min(self.batch_size, room - len(claimed))
                if limit <= 0:
                    return
                if channel in tried:
                    continue
                tried.add(channel)
                try:
                    claimed.extend(
                        self._db.run_core(
                            "claim uploads",
                            lambda c, ch=channel, n=limit: self._claim_channel(c, ch, n),  # type: ignore[misc]
                        )
                    )
                except LockTimeoutError as exc:
                    # Another claimer held the channel longer than the lock timeout: nothing
                    # was written; try the other channels now and this one in the next round.
                    logger.warning("claiming channel %s timed out: %s", channel, exc)

        # The first channel is claimed in the transaction that found it (the read takes no
        # lock, so the lock order is unchanged); the others each in their own transaction.
        found: list[tuple[list[str], bool]] = []

        def find_and_claim_first(conn: Connection) -> list[_Attempt]:
            found[:] = [first_channels(conn)]
            channels = found[0][0]
            if not channels:
                return []
            return self._claim_channel(conn, channels[0], min(self.batch_size, room))

        try:
            claimed.extend(self._db.run_core("claim uploads", find_and_claim_first))
        except LockTimeoutError as exc:
            if not found:
                raise
            logger.warning("claiming channel %s timed out: %s", found[0][0][0], exc)
        channels, more = found[0]
        tried.update(channels[:1])
        claim_from(channels)
        if more and len(claimed) < room:
            claim_from(self._db.run_core("find due uploads", all_channels, read_only=True))
        return claimed

    def _lock_channel(self, conn: Connection, channel: str) -> None:
        params = {"k_channel": channel}
        if conn.execute(_LOCK_CHANNEL, params).first() is None:
            insert_if_absent(
                conn, self._db.dialect, _CHANNELS, {"channel_id": channel, "last_claim_at": None}
            )
            conn.execute(_LOCK_CHANNEL, params).one()

    def _claim_channel(self, conn: Connection, channel: str, limit: int) -> list[_Attempt]:
        now = self._now()
        # The channel row serialises claimers of this channel on every engine, so the count
        # of its uploading rows below cannot be raced by another processor: the cap holds
        # across machines.
        self._lock_channel(conn, channel)
        if conn.dialect.update_returning and self._db.dialect == "postgresql":
            # One statement: the subquery counts the channel's uploading rows (its snapshot is
            # taken after the channel lock), takes at most the room left under the cap with
            # SKIP LOCKED, and the UPDATE marks them, each with its own random lease token.
            returned = conn.execute(
                self._claim_sql()["pg_claim"],
                {
                    "k_now": now,
                    "k_horizon": now + self.upload_lead_time,
                    "k_channel": channel,
                    "k_limit": limit,
                    "k_cap": self.per_channel_limit,
                    "k_expires": now + self.lease,
                },
            ).all()
            rows = sorted(returned, key=lambda r: (r.scheduled_publish_time, r.id))
            tokens = {r.id: str(r.lease_owner) for r in rows}
        else:
            live = conn.execute(_COUNT_LIVE, {"k_channel": channel}).scalar_one()
            room = min(limit, self.per_channel_limit - int(live))
            if room <= 0:
                return []
            rows = list(
                conn.execute(
                    self._claim_sql()["pick"],
                    {
                        "k_now": now,
                        "k_horizon": now + self.upload_lead_time,
                        "k_channel": channel,
                        "k_room": room,
                    },
                ).all()
            )
            tokens = {r.id: f"{self.worker_id}#{secrets.token_hex(6)}" for r in rows}
            if rows:
                # The rows are locked by this transaction: one UPDATE takes them all, each with
                # its own lease token.
                owner: Any = (
                    case(tokens, value=_S.c.id) if len(tokens) > 1 else next(iter(tokens.values()))
                )
                conn.execute(
                    update(_S)
                    .where(_S.c.id.in_(list(tokens)))
                    .values(
                        upload_status=_UPLOADING,
                        lease_owner=owner,
                        lease_expires_at=now + self.lease,
                        heartbeat_at=now,
                        updated_at=now,
                    )
                )
                conn.execute(_TOUCH_CHANNEL, {"k_channel": channel, "k_now": now})
        out: list[_Attempt] = []
        for row in rows:
            steps = {UploadStep(s) for s in (row.completed_steps or []) if s in _STEP_VALUES}
            out.append(
                _Attempt(
                    schedule_id=row.id,
                    channel_id=row.channel_id,
                    api_project=row.api_project,
                    token=tokens[row.id],
                    attempts=row.attempts,
                    video_path=row.video_path,
                    metadata=dict(row.video_metadata or {}),
                    publish_time=row.scheduled_publish_time,
                    session_uri=row.upload_session_uri,
                    video_id=row.youtube_video_id,
                    steps_done=steps,
                    bytes_uploaded=row.bytes_uploaded,
                    bytes_total=row.bytes_total,
                    reported_uri=row.upload_session_uri,
                    reported_bytes=row.bytes_uploaded,
                    reported_total=row.bytes_total,
                    claimed_qday=row.quota_date,
                    claimed_reserved=dict(row.reserved_quota or {}),
                    content_sha256=row.content_sha256,
                    file_size=row.file_size,
                    file_mtime_ns=row.file_mtime_ns,
                )
            )
            logger.info(
                "claimed schedule %d (channel %s, attempt %d%s)",
                row.id,
                row.channel_id,
                row.attempts + 1,
                ", resuming" if row.upload_session_uri or row.youtube_video_id else "",
            )
        return out

    # -- fenced writes during an upload --------------------------------------------------------

    def _fence(self, attempt: _Attempt) -> ColumnElement[bool]:
        return and_(
            Schedule.id == attempt.schedule_id,
            Schedule.lease_owner == attempt.token,
            Schedule.upload_status == _UPLOADING,
        )

    def _execute_count(self, operation: str, stmt: Any) -> int:
        """Run one UPDATE in its own short transaction; return the number of rows matched."""

        def txn(session: Session) -> int:
            return _rowcount(session.connection().execute(stmt))

        return self._db.run(operation, txn)

    def _fenced_update(self, operation: str, attempt: _Attempt, values: Mapping[str, Any]) -> int:
        return self._execute_count(
            operation, update(Schedule).where(self._fence(attempt)).values(**values)
        )

    def _lease_values(self, now: datetime) -> dict[str, Any]:
        # Only ever forward: the run thread's heartbeat and the upload thread's progress write
        # race, and the one that read the clock first may commit last.
        return {
            "lease_expires_at": _latest(Schedule.lease_expires_at, now + self.lease),
            "heartbeat_at": _latest(Schedule.heartbeat_at, now),
            "updated_at": _latest(Schedule.updated_at, now),
        }

    def _progress_values(self, uri: str | None, sent: int, total: int | None) -> dict[str, Any]:
        # Only progress of the session the row currently stores is taken, and only upwards: an
        # out-of-order report (or a heartbeat carrying an older snapshot) never lowers it.
        same_session: ColumnElement[bool] = (
            true() if uri is None else Schedule.upload_session_uri == uri
        )
        sent_value = literal(sent, BigInteger())
        values: dict[str, Any] = {
            "bytes_uploaded": case(
                (and_(same_session, Schedule.bytes_uploaded < sent_value), sent_value),
                else_=Schedule.bytes_uploaded,
            )
        }
        if total is not None:
            values["bytes_total"] = case(
                (same_session, literal(total, BigInteger())), else_=Schedule.bytes_total
            )
        return values

    def _write_session(self, attempt: _Attempt, uri: str, sent: int, total: int | None) -> None:
        values = self._lease_values(self._now())
        values.update(upload_session_uri=uri, bytes_uploaded=sent)
        if total is not None:
            values["bytes_total"] = total
        if self._fenced_update("record upload session", attempt, values) == 0:
            attempt.lost.set()
            raise _LeaseLost
        attempt.session_uri = uri

    def _write_progress(self, attempt: _Attempt) -> bool:
        """Extend the lease and store the newest progress; False when the lease is lost."""
        uri, sent, total = attempt.progress_snapshot()
        values = self._lease_values(self._now())
        values.update(self._progress_values(uri, sent, total))
        if self._fenced_update("record upload progress", attempt, values) == 0:
            if attempt.finished.is_set():
                return True  # the upload thread recorded the outcome meanwhile: not a takeover
            attempt.lost.set()
            return False
        return True

    def _heartbeat_all(self) -> None:
        with self._state_lock:
            active = list(self._active.values())
        for attempt in active:
            if attempt.lost.is_set() or attempt.finished.is_set():
                continue
            try:
                if not self._write_progress(attempt):
                    logger.warning(
                        "lease of schedule %d was taken over; its upload stops at the next chunk",
                        attempt.schedule_id,
                    )
            except SchedulerError as exc:
                logger.warning("heartbeat for schedule %d failed: %s", attempt.schedule_id, exc)

    def _progress_callback(self, attempt: _Attempt) -> Callable[[int, int, str | None], None]:
        interval = self.progress_interval.total_seconds()

        def progress(sent: int, total: int, uri: str | None) -> None:
            if attempt.lost.is_set():
                raise _LeaseLost
            with attempt.lock:
                stale = uri is not None and uri in attempt.retired_uris
                if stale:
                    pass  # a late report about a session this attempt already left: ignored
                elif uri is not None and uri != attempt.reported_uri:
                    # A new session (the old one expired): its count legitimately restarts.
                    if attempt.reported_uri is not None:
                        attempt.retired_uris.add(attempt.reported_uri)
                    attempt.reported_uri, attempt.reported_bytes = uri, sent
                    attempt.reported_total = total
                else:
                    attempt.reported_bytes = max(attempt.reported_bytes, sent)
                    attempt.reported_total = total
            if stale:
                if self._stopping():
                    raise _StopRequested
                return
            if uri is not None and uri != attempt.session_uri:
                # A new session: persist its URI before any of its bytes are sent, so a crash
                # from here on resumes it instead of starting over. If it cannot be stored, no
                # byte is sent: a completed session nobody can find again would mean a second
                # upload of the same video on the next attempt.
                try:
                    self._write_session(attempt, uri, sent, total)
                except SchedulerError as exc:
                    raise TransientUploadError(
                        f"could not store the resumable session: {exc}", reason="storageError"
                    ) from exc
                attempt.last_progress_write = time.monotonic()
            elif time.monotonic() - attempt.last_progress_write >= interval:
                try:
                    if not self._write_progress(attempt):
                        raise _LeaseLost
                    attempt.last_progress_write = time.monotonic()
                except SchedulerError as exc:
                    # Progress is advisory (the server knows the offset): keep uploading.
                    logger.warning(
                        "could not record progress of schedule %d: %s", attempt.schedule_id, exc
                    )
            if self._stopping():
                raise _StopRequested

        return progress

    def _step_callback(self, attempt: _Attempt) -> Callable[[UploadStep, str], None]:
        def on_step(step: UploadStep, video_id: str) -> None:
            with attempt.lock:
                attempt.video_id = video_id
                if step in _FOLLOW_UPS:
                    attempt.steps_done.add(step)
                steps = sorted(s.value for s in attempt.steps_done)
            values = {
                "youtube_video_id": video_id,
                "completed_steps": steps,
                "updated_at": self._now(),
            }
            try:
                written = self._fenced_update("record upload step", attempt, values)
            except SchedulerError as exc:
                logger.warning(
                    "could not record %s of schedule %d: %s", step.value, attempt.schedule_id, exc
                )
                return
            if written == 0:
                attempt.lost.set()
                raise _LeaseLost
            logger.info(
                "schedule %d: %s done (video %s)", attempt.schedule_id, step.value, video_id
            )

        return on_step

    # -- quota ledger (upload thread) ----------------------------------------------------------

    def _attempted_steps(self, attempt: _Attempt) -> frozenset[UploadStep]:
        """Follow-up steps not done whose call an earlier attempt sent (or may have sent): the
        ledger row is written before a call is sent, so it is the "attempted" marker. When the
        ledger cannot be read, every pending follow-up counts as attempted (a check costs one
        unit; a duplicate playlist entry cannot be taken back)."""
        pending = {UploadStep.PLAYLIST} - attempt.steps_done
        if not attempt.metadata.get("playlist_id") or not pending:
            return frozenset()
        try:
            sent = self._retry(
                "read the quota ledger",
                lambda: self._db.run_core(
                    "read the quota ledger",
                    lambda c: api_calls.attempted_operations(c, attempt.schedule_id),
                    read_only=True,
                ),
                self._record_deadline(),
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.warning(
                "could not read the quota ledger of schedule %d (%s); checking the playlist "
                "before inserting",
                attempt.schedule_id,
                exc,
            )
            return frozenset(pending)
        return frozenset(s for s in pending if s.value in sent)

    def _call_callback(self, attempt: _Attempt) -> CallCallback:
        """``on_call`` for one attempt: each quota-bearing call is written to the ledger (and
        ``used``) before it is sent; a quota refusal is taken back off. A call that cannot be
        written is not sent (the upload stops as a transient failure)."""

        def on_call(report: ApiCallReport) -> None:
            if report.phase is CallPhase.SENDING:
                if attempt.lost.is_set():
                    raise _LeaseLost
                self._ledger_record(attempt, report)
            elif report.phase is CallPhase.REFUSED:
                self._ledger_refuse(attempt, report)

        return on_call

    def _ledger_record(self, attempt: _Attempt, report: ApiCallReport) -> None:
        priced = self._policy.costs.get(report.operation)
        if priced is None:
            logger.warning(
                "quota policy %s has no cost for %s; the call is not counted",
                self._policy.name,
                report.operation,
            )
            return
        now = self._now()
        call = api_calls.CallRecord(
            api_project=attempt.api_project,
            quota_date=quota_date_of(now, self._quota_tz),
            bucket=priced[0],
            operation=report.operation,
            cost=priced[1],
            sent_at=now,
            call_key=api_calls.new_call_key(),
            schedule_id=attempt.schedule_id,
            channel_id=attempt.channel_id,
            worker_id=attempt.token,
        )
        limits = self._policy.buckets
        deadline = self._record_deadline()
        while True:
            try:
                self._retry(
                    "record an API call",
                    lambda: self._db.run_core(
                        "record an API call",
                        lambda c: api_calls.record_call(c, self._db.dialect, call, limits),
                    ),
                    deadline,
                )
                break
            except OutcomeUnknownError as exc:
                # The answer to the COMMIT was lost: the call key tells whether it committed.
                try:
                    written = self._retry(
                        "read the quota ledger",
                        lambda: self._db.run_core(
                            "read the quota ledger",
                            lambda c: api_calls.call_exists(c, call.call_key),
                            read_only=True,
                        ),
                        deadline,
                        idempotent=True,
                    )
                except SchedulerError as read_exc:
                    raise TransientUploadError(
                        f"could not record {report.operation} in the quota ledger: {read_exc}",
                        reason="storageError",
                    ) from exc
                if written:
                    break
                if time.monotonic() >= deadline:
                    raise TransientUploadError(
                        f"could not record {report.operation} in the quota ledger: {exc}",
                        reason="storageError",
                    ) from exc
            except SchedulerError as exc:
                # Not counted, so not sent: an uncounted call would let the scheduler book
                # more than YouTube allows that day.
                raise TransientUploadError(
                    f"could not record {report.operation} in the quota ledger: {exc}",
                    reason="storageError",
                ) from exc
        with attempt.lock:
            attempt.call_keys[report.call_id] = call.call_key

    def _ledger_refuse(self, attempt: _Attempt, report: ApiCallReport) -> None:
        with attempt.lock:
            key = attempt.call_keys.get(report.call_id)
        if key is None:
            return
        limits = self._policy.buckets
        try:
            self._retry(
                "refund a refused API call",
                lambda: self._db.run_core(
                    "refund a refused API call",
                    lambda c: api_calls.refuse_call(c, self._db.dialect, key, limits),
                ),
                self._record_deadline(),
                idempotent=True,  # setting cost 0 on a 'sent' row twice changes nothing
            )
        except SchedulerError as exc:
            # Over-counting is safe (it can only refuse a booking YouTube would have taken).
            logger.warning(
                "could not mark %s of schedule %d as refused (%s); the ledger over-counts it",
                report.operation,
                attempt.schedule_id,
                exc,
            )

    # -- one upload (upload thread) ------------------------------------------------------------

    def _request(self, attempt: _Attempt) -> UploadRequest:
        return UploadRequest(
            video_path=attempt.video_path,
            metadata=VideoMetadata.from_json(attempt.metadata),
            publish_at=attempt.publish_time,
            session_uri=attempt.session_uri,
            video_id=attempt.video_id,
            completed_steps=frozenset(attempt.steps_done),
            attempted_steps=attempt.attempted_steps,
        )

    def _upload(self, attempt: _Attempt) -> _Outcome:
        """Upload one claimed schedule and record the outcome. Never raises."""
        return self._guarded(attempt, lambda: self._upload_and_record(attempt))

    def _guarded(self, attempt: _Attempt, work: Callable[[], _Outcome]) -> _Outcome:
        """Run ``work`` for ``attempt``; a lost lease or a failure to record becomes an outcome
        (an unrecorded attempt's lease expires and the next run resumes it). Never raises."""
        try:
            return work()
        except _LeaseLost:
            return self._lost(attempt)
        except SchedulerError as exc:
            logger.error(
                "could not record the outcome of schedule %d: %s; its lease will expire and the "
                "next run resumes it",
                attempt.schedule_id,
                exc,
            )
            return _Outcome(_Kind.UNRECORDED, error=str(exc))
        except Exception:
            logger.exception("unexpected error processing schedule %d", attempt.schedule_id)
            return _Outcome(_Kind.UNRECORDED)

    def _lost(self, attempt: _Attempt) -> _Outcome:
        logger.warning(
            "schedule %d: lease %s was taken over (this worker stalled past its lease); "
            "writing nothing",
            attempt.schedule_id,
            attempt.token,
        )
        return _Outcome(_Kind.LOST)

    def _upload_and_record(self, attempt: _Attempt) -> _Outcome:
        try:
            request = self._request(attempt)
        except SchedulerError as exc:
            attempt.finished.set()
            return self._record_failure(attempt, f"invalid stored request: {exc}", permanent=True)
        # A file replaced after booking is not uploaded (once the video exists, it is moot).
        changed = attempt.video_id is None and content_changed(
            attempt.video_path,
            sha256=attempt.content_sha256,
            size=attempt.file_size,
            mtime_ns=attempt.file_mtime_ns,
        )
        if changed:
            attempt.finished.set()
            return self._record_failure(attempt, changed, permanent=True)
        if self._metered:
            attempted = self._attempted_steps(attempt)
            if attempted:
                attempt.attempted_steps = attempted
                request = self._request(attempt)
        try:
            try:
                if self._metered:
                    result = self.uploader.upload(  # type: ignore[call-arg]
                        request,
                        progress=self._progress_callback(attempt),
                        on_step=self._step_callback(attempt),
                        on_call=self._call_callback(attempt),
                    )
                else:
                    result = self.uploader.upload(
                        request,
                        progress=self._progress_callback(attempt),
                        on_step=self._step_callback(attempt),
                    )
            finally:
                # From here on the outcome is recorded by this thread; the run thread's
                # heartbeats leave the row alone (they would only race the final write).
                attempt.finished.set()
        except (_LeaseLost, _StopRequested) as exc:
            if isinstance(exc, _LeaseLost) or attempt.lost.is_set():
                return self._lost(attempt)
            return self._release(attempt, "stopped at a chunk boundary; the session is resumed")
        except QuotaExhaustedError as exc:
            return self._defer_quota(attempt, exc)
        except UploadLimitExceededError as exc:
            return self._defer_channel(attempt, exc)
        except AuthorizationError as exc:
            logger.error(
                "AUTHORIZATION FAILED uploading schedule %d (channel %s): %s. No more uploads are "
                "claimed this run; run `langflix-scheduler auth` to re-authorise",
                attempt.schedule_id,
                attempt.channel_id,
                exc,
            )
            out = self._release(attempt, f"authorization failed: {exc}")
            return _Outcome(_Kind.UNAUTHORIZED, out.events, error=str(exc))
        except PermanentUploadError as exc:
            return self._record_failure(attempt, str(exc), permanent=True)
        except TransientUploadError as exc:
            return self._record_failure(attempt, str(exc), permanent=False)
        except UploadError as exc:
            return self._record_failure(attempt, str(exc), permanent=False)
        except OSError as exc:
            return self._record_failure(
                attempt, f"local file error: {type(exc).__name__}: {exc}", permanent=True
            )
        except SchedulerError as exc:
            return self._record_failure(attempt, str(exc), permanent=True)
        except Exception as exc:
            logger.warning(
                "uploader raised %s for schedule %d; treated as transient",
                type(exc).__name__,
                attempt.schedule_id,
                exc_info=True,
            )
            return self._record_failure(
                attempt, f"unexpected {type(exc).__name__}: {exc}", permanent=False
            )
        if attempt.lost.is_set():
            return self._lost(attempt)
        return _Outcome(_Kind.SUCCEEDED, upload=result)

    # -- durable recording ---------------------------------------------------------------------

    def _record_deadline(self) -> float:
        """``time.monotonic()`` value until which one outcome's recording is retried: at most
        a third of the lease (so the lease outlives it) and :data:`_MAX_RECORD_BUDGET`."""
        return time.monotonic() + self._record_budget.total_seconds()

    def _retry(
        self, what: str, fn: Callable[[], _T], deadline: float, *, idempotent: bool = False
    ) -> _T:
        return retry_until(
            fn,
            deadline=deadline,
            base=_RECORD_RETRY_BASE,
            cap=_RECORD_RETRY_CAP,
            rng=self._rng,
            what=what,
            idempotent=idempotent,
            sleep=self._sleep,
        )

    def _read_rows(self, ids: Iterable[int]) -> dict[int, Schedule]:
        def read(session: Session) -> dict[int, Schedule]:
            rows = list(
                session.execute(select(Schedule).where(Schedule.id.in_(list(ids)))).scalars()
            )
            for r in rows:
                session.expunge(r)
            return {r.id: r for r in rows}

        return self._db.run("read schedules", read, read_only=True)

    def _durable(
        self,
        operation: str,
        schedule_id: int,
        write: Callable[[], _T | None],
        *,
        pending: Callable[[Schedule], bool],
        settled: Callable[[Schedule], bool],
        deadline: float | None = None,
    ) -> _T | Schedule | None:
        """Record one outcome: ``write`` (fenced; None when the fence failed), retried with
        backoff on storage errors until ``deadline`` (default: :meth:`_record_deadline`).

        After a write whose answer was lost (:class:`OutcomeUnknownError`) the row is read back:
        still ``pending`` (ours, unchanged) means the write did not commit, so it is written
        again; ``settled`` (in the state this write produces, which only this attempt can
        produce) means it did commit, and the row is returned; anything else means the row is
        no longer ours (None).
        """
        if deadline is None:
            deadline = self._record_deadline()
        lost_answer: OutcomeUnknownError | None = None
        while True:
            try:
                result = self._retry(operation, write, deadline)
            except OutcomeUnknownError as exc:
                logger.warning(
                    "%s of schedule %d: %s; reading the row back", operation, schedule_id, exc
                )
                lost_answer = exc
            else:
                if result is not None or lost_answer is None:
                    return result
            rows = self._retry(
                "read schedule", lambda: self._read_rows([schedule_id]), deadline, idempotent=True
            )
            row = rows.get(schedule_id)
            if row is None or not pending(row):
                return row if row is not None and settled(row) else None
            if lost_answer is not None and time.monotonic() >= deadline:
                raise lost_answer
            # Still ours and unchanged: the write did not commit. Write it again.

    @staticmethod
    def _wrote(
        status: str, attempts: int, last_error: str | None, video_id: str | None = None
    ) -> Callable[[Schedule], bool]:
        """Is a row in the state one outcome write of an attempt leaves it in? Every takeover
        of a lease counts an attempt and writes its own ``last_error``, so ``attempts`` and
        ``last_error`` tell this attempt's write from anyone else's."""
        error = _short(last_error) if last_error else None
        return lambda row: (
            row.upload_status == status
            and row.attempts == attempts
            and row.last_error == error
            and (video_id is None or row.youtube_video_id == video_id)
        )

    # -- recording outcomes --------------------------------------------------------------------

    def _consumed(self, steps: Iterable[UploadStep], inserts: int) -> dict[str, int]:
        return self._policy.cost(self._operations(steps, inserts))

    @staticmethod
    def _operations(steps: Iterable[UploadStep], inserts: int) -> list[str]:
        ops = [UploadStep.INSERT.value] * max(1, inserts)
        ops += [s.value for s in _FOLLOW_UPS if s in set(steps)]
        return ops

    def _counted_at_completion(self, consumed: Mapping[str, int]) -> dict[str, int]:
        """What a completion adds to ``used``: nothing when the uploader reported each call to
        the ledger as it was sent (already counted), else ``consumed``."""
        return {} if self._metered else dict(consumed)

    def _completion_calls(
        self,
        schedule_id: int,
        channel_id: str | None,
        operations: Iterable[str],
        *,
        qday: date,
        now: datetime,
        worker: str | None,
    ) -> list[api_calls.CallRecord]:
        """Ledger rows for an uploader that does not report its calls: what the upload says it
        did, on the day it completed (as ``used`` always counted them)."""
        if self._metered:
            return []
        out = []
        for op in operations:
            bucket, cost = self._policy.costs[op]
            out.append(
                api_calls.CallRecord(
                    api_project=self.api_project,
                    quota_date=qday,
                    bucket=bucket,
                    operation=op,
                    cost=cost,
                    sent_at=now,
                    call_key=api_calls.new_call_key(),
                    schedule_id=schedule_id,
                    channel_id=channel_id,
                    worker_id=worker,
                )
            )
        return out

    def _with_counter_locks(
        self,
        operation: str,
        schedule_id: int,
        *,
        allowed: Callable[[Schedule], bool],
        new_keys: Callable[[Schedule], Iterable[tuple[date, str]]],
        apply: Callable[[Session, Schedule, Any, Mapping[tuple[date, str], QuotaUsage]], None],
    ) -> Schedule | None:
        """Change one schedule and its counters under locks in the global order.

        Reads the row first to learn which counter rows to lock, locks the channel-day row, then
        the quota rows (its current quota day's reserved buckets plus ``new_keys``), sorted,
        then the schedule row, and re-checks that nothing moved meanwhile. Returns the changed
        row, or None when ``allowed`` refuses it (the fence failed: someone else owns it now).
        """
        for _ in range(_MAX_RECORD_TRIES):

            def peek_row(session: Session) -> Schedule | None:
                row = session.get(Schedule, schedule_id)
                if row is not None:
                    session.expunge(row)
                return row

            peek = self._db.run("read schedule", peek_row, read_only=True)
            if peek is None or not allowed(peek):
                return None

            def txn(session: Session, peek: Schedule = peek) -> Schedule | bool | None:
                day = lock_day(session, self._db.dialect, peek.channel_id, peek.publish_date)
                keys = {(peek.quota_date, b) for b in (peek.reserved_quota or {})}
                keys |= set(new_keys(peek))
                quota = lock_quota_rows(
                    session, self._db.dialect, peek.api_project, keys, self._policy.buckets
                )
                row = session.execute(
                    select(Schedule).where(Schedule.id == schedule_id).with_for_update()
                ).scalar_one_or_none()
                if row is None or not allowed(row):
                    return None
                if (row.publish_date, row.quota_date, row.reserved_quota) != (
                    peek.publish_date,
                    peek.quota_date,
                    peek.reserved_quota,
                ):
                    return False  # moved meanwhile: lock the right rows and try again
                apply(session, row, day, quota)
                session.flush()
                return row

            result = self._db.run(operation, txn)
            if result is not False:
                return result if isinstance(result, Schedule) else None
        raise SchedulerError(f"{operation}: schedule {schedule_id} kept changing; giving up")

    def _settle(self, finished: list[tuple[_Attempt, _Outcome]]) -> list[_Outcome]:
        """Record the successful uploads among ``finished`` (in one transaction); all outcomes."""
        out = [r for _, r in finished if r.kind is not _Kind.SUCCEEDED]
        done = [(a, r.upload) for a, r in finished if r.kind is _Kind.SUCCEEDED and r.upload]
        if done:
            out.extend(self._record_successes(done))
        return out

    def _record_one_success(
        self, attempt: _Attempt, result: UploadResult, deadline: float | None = None
    ) -> _Outcome:
        """:meth:`_record_success` with :meth:`_upload`'s error handling. Never raises."""
        return self._guarded(
            attempt, lambda: self._record_success(attempt, result, deadline=deadline)
        )

    def _record_successes(self, done: list[tuple[_Attempt, UploadResult]]) -> list[_Outcome]:
        """Record uploads that succeeded, all in one transaction, in the global lock order.

        First one summed ``UPDATE`` per quota row, in sorted key order (it takes the row's lock):
        the reserved buckets of the quota day each schedule was claimed with are released
        (floored at 0, which equals releasing each share in turn) and the consumed buckets are
        added to today's quota day. Then the schedule rows are locked by id and re-checked: when
        a lease is no longer this attempt's, or a quota day or reservation moved since the claim,
        the transaction is rolled back and redone without those schedules, which are recorded
        afterwards on their own (:meth:`_record_success` re-reads them and locks the right rows;
        a lost lease writes nothing). A missing quota row makes the retry lock (and create) the
        rows first. Each schedule's write is fenced on its lease token and status. Events are
        built here and fired by the caller, after the commit.
        """
        # One recording deadline for all of them: the run thread, which also sends the
        # heartbeats, is never held up longer than one recording budget.
        deadline = self._record_deadline()
        if any(a.claimed_qday is None for a, _ in done):
            return [self._record_one_success(a, r, deadline) for a, r in done]
        now = self._now()
        qday = quota_date_of(now, self._quota_tz)
        plans: dict[int, tuple[_Attempt, UploadResult, dict[str, int], list[str], int | None]] = {}
        ledger_rows: dict[int, list[api_calls.CallRecord]] = {}
        for attempt, result in done:
            with attempt.lock:
                steps = set(attempt.steps_done)
                steps |= {UploadStep(op) for op in result.operations if op in _FOLLOW_UP_VALUES}
                total = attempt.reported_total
            inserts = result.operations.count(UploadStep.INSERT.value)
            consumed = self._counted_at_completion(self._consumed(steps, inserts))
            ledger_rows[attempt.schedule_id] = self._completion_calls(
                attempt.schedule_id,
                attempt.channel_id,
                self._operations(steps, inserts),
                qday=qday,
                now=now,
                worker=attempt.token,
            )
            step_values = sorted(s.value for s in steps if s in _FOLLOW_UPS)
            plans[attempt.schedule_id] = (attempt, result, consumed, step_values, total)

        def deltas(ids: Iterable[int]) -> dict[tuple[date, str], list[int]]:
            """Per quota row: [reserved to release, used to add] for these schedules."""
            out: dict[tuple[date, str], list[int]] = {}
            for i in ids:
                attempt, _, consumed, _, _ = plans[i]
                assert attempt.claimed_qday is not None
                for bucket, amount in (attempt.claimed_reserved or {}).items():
                    out.setdefault((attempt.claimed_qday, bucket), [0, 0])[0] += int(amount)
                for bucket, amount in consumed.items():
                    out.setdefault((qday, bucket), [0, 0])[1] += amount
            return out

        def txn(conn: Connection, ids: list[int], fast: bool) -> dict[int, int]:
            """Record ``ids``; returns their attempts. Raises _Regroup when some cannot be."""
            change = deltas(ids)
            if not change:
                pass
            elif fast:
                # One summed UPDATE per quota row (sorted: the global lock order). Releasing the
                # sum at once, floored at 0, equals releasing each schedule's share in turn.
                hit = _rowcount(
                    conn.execute(
                        _RELEASE_AND_USE,
                        [
                            {
                                "k_project": self.api_project,
                                "k_qday": k[0],
                                "k_bucket": k[1],
                                "k_release": d[0],
                                "k_use": d[1],
                            }
                            for k, d in sorted(change.items())
                        ],
                    )
                )
                if hit != len(change):
                    raise _Regroup(set(), slow=True)  # a quota row is missing: create it
            else:
                quota = lock_quota_counts(
                    conn, self._db.dialect, self.api_project, change, self._policy.buckets
                )
                conn.execute(
                    _SET_QUOTA,
                    [
                        {
                            "k_project": self.api_project,
                            "k_qday": k[0],
                            "k_bucket": k[1],
                            "k_reserved": max(0, quota[k][0] - d[0]),
                            "k_used": quota[k][1] + d[1],
                        }
                        for k, d in sorted(change.items())
                    ],
                )
            rows = conn.execute(_LOCK_DONE_ROWS, {"k_ids": sorted(ids)}).all()
            drop = set(ids) - {row.id for row in rows}
            for row in rows:
                attempt = plans[row.id][0]
                if (
                    row.lease_owner != attempt.token
                    or row.upload_status != _UPLOADING
                    or row.quota_date != attempt.claimed_qday
                    or dict(row.reserved_quota or {}) != (attempt.claimed_reserved or {})
                ):
                    drop.add(row.id)
            if drop:
                raise _Regroup(drop)  # roll the counters back; record the others without them
            # The quota rows are locked (and ``used`` raised) above: append the ledger rows of
            # an uploader that does not report its calls, then record what each schedule's
            # calls cost, every attempt's, from the ledger.
            api_calls.insert_rows(conn, [c for i in sorted(ids) for c in ledger_rows[i]])
            costs = api_calls.cost_by_schedule(conn, ids)
            params: list[dict[str, Any]] = []
            for row in rows:
                attempt, result, _counted, step_values, total = plans[row.id]
                merged = costs.get(row.id, {})
                final_total = total if total is not None else row.bytes_total
                uploaded = row.bytes_uploaded
                if final_total is not None:
                    uploaded = max(uploaded, final_total)
                params.append(
                    {
                        "k_id": row.id,
                        "k_token": attempt.token,
                        "k_qday": qday,
                        "k_reserved": {},
                        "k_consumed": merged,
                        "k_video_id": result.video_id,
                        "k_steps": step_values,
                        "k_now": now,
                        "k_total": final_total,
                        "k_uploaded": uploaded,
                    }
                )
            if _rowcount(conn.execute(_COMPLETE_ROW, params)) != len(params):
                raise _Regroup(set(), slow=True)  # cannot happen under the row locks
            return {row.id: row.attempts for row in rows}

        ids = sorted(plans)
        alone: list[int] = []  # recorded one by one (lease lost or row moved since the claim)
        recorded: dict[int, int] = {}
        fast = True
        try:
            for _ in range(_MAX_RECORD_TRIES):
                if not ids:
                    break
                try:
                    recorded = self._db.run_core(
                        "record completed uploads",
                        lambda c, i=ids, f=fast: txn(c, i, f),  # type: ignore[misc]
                    )
                    ids = []
                except _Regroup as regroup:
                    alone.extend(regroup.drop)
                    ids = [i for i in ids if i not in regroup.drop]
                    fast = fast and not regroup.slow
            alone.extend(ids)  # still not recorded together: one by one
        except OutcomeUnknownError as exc:
            # The answer to the COMMIT was lost: the rows tell whether it committed.
            logger.warning("the answer to recording %d uploads was lost (%s)", len(ids), exc)
            recorded = self._completed_by_us(ids, plans, deadline)
            alone.extend(i for i in ids if i not in recorded)
        except SchedulerError as exc:
            logger.warning("recording %d uploads together failed (%s); one by one", len(done), exc)
            alone, recorded = sorted(plans), {}
        out = [self._record_one_success(plans[i][0], plans[i][1], deadline) for i in alone]
        for schedule_id, attempts in recorded.items():
            attempt, result = plans[schedule_id][0], plans[schedule_id][1]
            logger.info(
                "uploaded schedule %d as video %s (%s, publishAt %s)",
                attempt.schedule_id,
                result.video_id,
                result.privacy_status,
                result.publish_at.isoformat() if result.publish_at else "none",
            )
            out.append(
                _Outcome(
                    _Kind.UPLOADED,
                    [
                        self._event(
                            ProcessorEventKind.UPLOADED,
                            attempt,
                            attempts=attempts,
                            video_id=result.video_id,
                            at=now,
                        )
                    ],
                )
            )
        return out

    def _completed_by_us(
        self,
        ids: list[int],
        plans: Mapping[int, tuple[_Attempt, UploadResult, Any, Any, Any]],
        deadline: float,
    ) -> dict[int, int]:
        """Of ``ids``, those whose rows this batch's completion wrote (id -> attempts)."""
        try:
            rows = self._retry(
                "read schedules",
                lambda: self._read_rows(ids),
                deadline,
                idempotent=True,
            )
        except SchedulerError as exc:
            logger.warning("could not read the uploads back (%s); recording them one by one", exc)
            return {}
        out: dict[int, int] = {}
        for i in ids:
            attempt, result = plans[i][0], plans[i][1]
            row = rows.get(i)
            if row is not None and self._wrote(_COMPLETED, attempt.attempts, None, result.video_id)(
                row
            ):
                out[i] = row.attempts
        return out

    def _record_success(
        self, attempt: _Attempt, result: UploadResult, *, deadline: float | None = None
    ) -> _Outcome:
        now = self._now()
        qday = quota_date_of(now, self._quota_tz)
        with attempt.lock:
            steps = set(attempt.steps_done)
            steps |= {UploadStep(op) for op in result.operations if op in _FOLLOW_UP_VALUES}
            total = attempt.reported_total
        inserts = result.operations.count(UploadStep.INSERT.value)
        consumed = self._consumed(steps, inserts)
        done = self._durable(
            "record completed upload",
            attempt.schedule_id,
            lambda: self._complete(
                attempt,
                video_id=result.video_id,
                consumed=consumed,
                inserts=inserts,
                steps=steps,
                total=total,
                qday=qday,
                now=now,
                note=None,
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_COMPLETED, attempt.attempts, None, result.video_id),
            deadline=deadline,
        )
        if done is None:
            return self._lost(attempt)
        logger.info(
            "uploaded schedule %d as video %s (%s, publishAt %s)",
            attempt.schedule_id,
            result.video_id,
            result.privacy_status,
            result.publish_at.isoformat() if result.publish_at else "none",
        )
        return _Outcome(
            _Kind.UPLOADED,
            [
                self._event(
                    ProcessorEventKind.UPLOADED,
                    attempt,
                    attempts=done.attempts,
                    video_id=result.video_id,
                    at=now,
                )
            ],
        )

    def _complete(
        self,
        attempt: _Attempt | None,
        *,
        video_id: str,
        consumed: Mapping[str, int],
        steps: Iterable[UploadStep],
        total: int | None,
        qday: date,
        now: datetime,
        note: str | None,
        schedule_id: int | None = None,
        allowed: Callable[[Schedule], bool] | None = None,
        attempts: int | None = None,
        inserts: int = 1,
    ) -> Schedule | None:
        steps = set(steps)
        step_values = sorted(s.value for s in steps if s in _FOLLOW_UPS)
        counted = self._counted_at_completion(consumed)
        operations = self._operations(steps, inserts)

        def apply(
            session: Session, row: Schedule, day: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            for bucket, amount in (row.reserved_quota or {}).items():
                q = quota[(row.quota_date, bucket)]
                q.reserved = max(0, q.reserved - int(amount))
            for bucket, amount in counted.items():
                quota[(qday, bucket)].used += amount
            conn = session.connection()
            api_calls.insert_rows(
                conn,
                self._completion_calls(
                    row.id,
                    row.channel_id,
                    operations,
                    qday=qday,
                    now=now,
                    worker=row.lease_owner,
                ),
            )
            merged = api_calls.cost_by_schedule(conn, [row.id])[row.id]
            row.quota_date = qday
            row.reserved_quota = {}
            row.consumed_quota = merged
            row.upload_status = UploadStatus.COMPLETED.value
            row.youtube_video_id = video_id
            row.completed_steps = step_values
            row.uploaded_at = now
            row.updated_at = now
            row.heartbeat_at = now
            row.lease_owner = None
            row.lease_expires_at = None
            row.next_attempt_at = None
            row.last_error = _short(note) if note else None
            if attempts is not None:
                row.attempts = attempts
            final_total = total if total is not None else row.bytes_total
            if final_total is not None:
                row.bytes_total = final_total
                row.bytes_uploaded = max(row.bytes_uploaded, final_total)

        if attempt is not None:
            schedule_id = attempt.schedule_id
            allowed = self._owned_by(attempt)
        assert schedule_id is not None
        assert allowed is not None
        return self._with_counter_locks(
            "record completed upload",
            schedule_id,
            allowed=allowed,
            new_keys=lambda _row: [(qday, b) for b in counted],
            apply=apply,
        )

    @staticmethod
    def _owned_by(attempt: _Attempt) -> Callable[[Schedule], bool]:
        return lambda row: row.lease_owner == attempt.token and row.upload_status == _UPLOADING

    def _fail(
        self,
        schedule_id: int,
        *,
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
        now: datetime,
    ) -> Schedule | None:
        """``failed``: slot freed, day count decremented, reserved quota released."""

        def apply(
            session: Session, row: Schedule, day: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            column = _COUNT_COLUMN[VideoType(row.video_type)]
            if row.slot_key is not None:
                setattr(day, column, max(0, getattr(day, column) - 1))
            for bucket, amount in (row.reserved_quota or {}).items():
                q = quota[(row.quota_date, bucket)]
                q.reserved = max(0, q.reserved - int(amount))
            row.upload_status = UploadStatus.FAILED.value
            row.slot_key = None
            row.fingerprint_key = None
            row.reserved_quota = {}
            row.attempts = attempts
            row.last_error = _short(reason)
            row.lease_owner = None
            row.lease_expires_at = None
            row.next_attempt_at = None
            row.updated_at = now

        return self._with_counter_locks(
            "record failed upload",
            schedule_id,
            allowed=allowed,
            new_keys=lambda _r: (),
            apply=apply,
        )

    def _ask_session(
        self, session_uri: str | None, video_path: str
    ) -> tuple[SessionProbe | None, str | None]:
        """Ask a stored upload session how far it got (no database lock is held here):
        ``(answer, None)``, or ``(None, why asking failed)``; ``(None, None)``: no prober."""
        if session_uri is None or self._prober is None:
            return None, None
        try:
            return self._prober.probe_session(session_uri, video_path), None
        except Exception as exc:  # any failure to ask means "unknown"
            return None, f"{type(exc).__name__}: {exc}"

    def _terminal(
        self,
        *,
        schedule_id: int,
        video_id: str | None,
        steps: Iterable[UploadStep],
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
        session_uri: str | None = None,
        video_path: str = "",
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """Give up on a schedule. A schedule that opened an upload session but has no video id
        asks that session first (see :mod:`langflix_scheduler._give_up`): ``completed`` when
        the video exists, ``failed`` when it certainly does not, else ``needs_review``."""
        if video_id is None:
            probe, probe_error = self._ask_session(session_uri, video_path)
            decision = decide_give_up(
                video_id=None, session_uri=session_uri, probe=probe, probe_error=probe_error
            )
        else:
            decision = GiveUp(verdict=Verdict.COMPLETE, video_id=video_id)
        if decision.verdict is Verdict.COMPLETE:
            return self._give_up_uploaded(
                schedule_id,
                decision,
                found=video_id is None,
                steps=steps,
                allowed=allowed,
                reason=reason,
                attempts=attempts,
            )
        if decision.verdict is Verdict.REVIEW:
            return self._give_up_unknown(
                schedule_id, decision, allowed=allowed, reason=reason, attempts=attempts
            )
        if decision.why:
            reason = f"{reason}; {decision.why}"
        now = self._now()
        failed = self._durable(
            "record failed upload",
            schedule_id,
            lambda: self._fail(
                schedule_id, allowed=allowed, reason=reason, attempts=attempts, now=now
            ),
            pending=allowed,
            settled=self._wrote(_FAILED, attempts, reason),
        )
        if failed is None:
            return None
        logger.error("schedule %d failed after %d attempts: %s", schedule_id, attempts, reason)
        return _Kind.FAILED, self._event(
            ProcessorEventKind.FAILED, failed, attempts=attempts, error=reason, at=now
        )

    def _give_up_uploaded(
        self,
        schedule_id: int,
        decision: GiveUp,
        *,
        found: bool,
        steps: Iterable[UploadStep],
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """The video exists: ``completed`` with a note (follow-up steps not done stay undone,
        as for any schedule whose attempts are spent); the reserved quota is released."""
        now = self._now()
        video_id = decision.video_id
        assert video_id is not None
        steps = set(steps)
        if found:
            note = f"video found through its upload session after: {reason}"
        else:
            note = f"video uploaded, but a follow-up step failed: {reason}"
        done = self._durable(
            "record completed upload",
            schedule_id,
            lambda: self._complete(
                None,
                video_id=video_id,
                consumed=self._consumed(steps, 1),
                steps=steps,
                total=None,
                qday=quota_date_of(now, self._quota_tz),
                now=now,
                note=note,
                schedule_id=schedule_id,
                allowed=allowed,
                attempts=attempts,
            ),
            pending=allowed,
            settled=self._wrote(_COMPLETED, attempts, note, video_id),
        )
        if done is None:
            return None
        logger.warning("schedule %d: video %s is on YouTube; %s", schedule_id, video_id, note)
        return _Kind.UPLOADED, self._event(
            ProcessorEventKind.UPLOADED,
            done,
            attempts=attempts,
            video_id=video_id,
            error=reason,
            at=now,
        )

    def _give_up_unknown(
        self,
        schedule_id: int,
        decision: GiveUp,
        *,
        allowed: Callable[[Schedule], bool],
        reason: str,
        attempts: int,
    ) -> tuple[_Kind, ProcessorEvent] | None:
        """Whether the video is on YouTube is unknown: ``needs_review``. Slot, day count and
        quota reservation are kept, the lease is cleared, and nothing claims the row again."""
        now = self._now()
        note = (
            f"{reason}; {decision.why}, so whether the video reached YouTube is unknown: look for "
            "it on the channel before booking it again (it keeps its slot and quota meanwhile)"
        )

        def apply(session: Session, row: Schedule, day: Any, quota: Any) -> None:
            row.upload_status = _NEEDS_REVIEW
            row.attempts = attempts
            row.last_error = _short(note)
            row.lease_owner = None
            row.lease_expires_at = None
            row.next_attempt_at = None
            row.updated_at = now

        row = self._durable(
            "record upload for review",
            schedule_id,
            lambda: self._with_counter_locks(
                "record upload for review",
                schedule_id,
                allowed=allowed,
                new_keys=lambda _r: (),
                apply=apply,
            ),
            pending=allowed,
            settled=self._wrote(_NEEDS_REVIEW, attempts, note),
        )
        if row is None:
            return None
        logger.error("schedule %d NEEDS REVIEW: %s", schedule_id, note)
        return _Kind.REVIEW, self._event(
            ProcessorEventKind.NEEDS_REVIEW, row, attempts=attempts, error=note, at=now
        )

    def _backoff(self, attempts: int) -> timedelta:
        return backoff_delay(
            max(1, attempts), base=self.retry_base, cap=MAX_RETRY_DELAY, rng=self._rng
        )

    def _record_failure(self, attempt: _Attempt, reason: str, *, permanent: bool) -> _Outcome:
        with attempt.lock:
            video_id = attempt.video_id
            steps = set(attempt.steps_done)
        attempts = attempt.attempts + 1
        if permanent or attempts >= self.max_attempts:
            if not permanent:
                reason = f"{reason} (gave up after {attempts} attempts)"
            done = self._terminal(
                schedule_id=attempt.schedule_id,
                video_id=video_id,
                steps=steps,
                allowed=self._owned_by(attempt),
                reason=reason,
                attempts=attempts,
                session_uri=attempt.session_uri,
                video_path=attempt.video_path,
            )
            if done is None:
                return self._lost(attempt)
            return _Outcome(done[0], [done[1]], error=reason)
        now = self._now()
        retry_at = now + self._backoff(attempts)
        written = self._durable(
            "record upload retry",
            attempt.schedule_id,
            lambda: (
                self._fenced_update(
                    "record upload retry",
                    attempt,
                    {
                        "upload_status": _SCHEDULED,
                        "attempts": attempts,
                        "next_attempt_at": retry_at,
                        "last_error": _short(reason),
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "updated_at": now,
                    },
                )
                or None
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempts, reason),
        )
        if written is None:
            return self._lost(attempt)
        logger.warning(
            "schedule %d: attempt %d of %d failed (%s); retrying at %s",
            attempt.schedule_id,
            attempts,
            self.max_attempts,
            reason,
            retry_at.isoformat(),
        )
        return _Outcome(
            _Kind.RETRIED,
            [
                self._event(
                    ProcessorEventKind.RETRIED,
                    attempt,
                    attempts=attempts,
                    video_id=video_id,
                    error=reason,
                    next_attempt_at=retry_at,
                    at=now,
                )
            ],
            error=reason,
        )

    def _release(self, attempt: _Attempt, reason: str) -> _Outcome:
        """Back to ``scheduled`` at once, no attempt counted (stop, authorization)."""
        now = self._now()
        uri, sent, total = attempt.progress_snapshot()
        values: dict[str, Any] = {
            "upload_status": _SCHEDULED,
            "lease_owner": None,
            "lease_expires_at": None,
            "last_error": _short(reason),
            "updated_at": now,
        }
        values.update(self._progress_values(uri, sent, total))
        written = self._durable(
            "release upload lease",
            attempt.schedule_id,
            lambda: self._fenced_update("release upload lease", attempt, values) or None,
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempt.attempts, reason),
        )
        if written is None:
            return self._lost(attempt)
        logger.info("schedule %d released: %s", attempt.schedule_id, reason)
        return _Outcome(_Kind.RELEASED)

    # -- deferrals -----------------------------------------------------------------------------

    def _defer_quota(self, attempt: _Attempt, exc: QuotaExhaustedError) -> _Outcome:
        # Never earlier than the next quota day by our own clock: a resume time in the past
        # (clock skew between the uploader and us) would make the rows due again at once.
        until = max(ensure_aware(exc.resume_at), next_quota_reset(self._now(), self._quota_tz))
        resume_day = quota_date_of(until, self._quota_tz)
        logger.warning(
            "YouTube quota of API project %s is exhausted (%s); deferring its uploads planned "
            "before quota day %s to %s",
            attempt.api_project,
            exc.reason,
            resume_day.isoformat(),
            until.isoformat(),
        )
        others = and_(Schedule.api_project == attempt.api_project, Schedule.quota_date < resume_day)
        return self._defer(attempt, until, str(exc), others)

    def _defer_channel(self, attempt: _Attempt, exc: UploadLimitExceededError) -> _Outcome:
        until = self._now() + max(exc.retry_after, MIN_DEFERRAL)
        logger.warning(
            "channel %s hit YouTube's upload limit (%s); deferring its uploads due before %s",
            attempt.channel_id,
            exc.reason,
            until.isoformat(),
        )
        others = and_(
            Schedule.channel_id == attempt.channel_id,
            Schedule.scheduled_publish_time < until + self.upload_lead_time,
        )
        return self._defer(attempt, until, str(exc), others)

    def _defer_qday(self, row: Schedule, until: datetime) -> date:
        due = row.scheduled_publish_time - self.upload_lead_time
        return quota_date_of(max(until, due), self._quota_tz)

    def _move_reservation(
        self, row: Schedule, new_qday: date, quota: Mapping[tuple[date, str], QuotaUsage]
    ) -> None:
        if new_qday == row.quota_date:
            return
        for bucket, amount in (row.reserved_quota or {}).items():
            old = quota[(row.quota_date, bucket)]
            old.reserved = max(0, old.reserved - int(amount))
            quota[(new_qday, bucket)].reserved += int(amount)
        row.quota_date = new_qday

    def _defer(
        self, attempt: _Attempt, until: datetime, reason: str, others: ColumnElement[bool]
    ) -> _Outcome:
        now = self._now()
        uri, sent, total = attempt.progress_snapshot()

        def apply_own(
            session: Session, row: Schedule, day: Any, quota: Mapping[tuple[date, str], QuotaUsage]
        ) -> None:
            self._move_reservation(row, self._defer_qday(row, until), quota)
            row.upload_status = _SCHEDULED
            row.next_attempt_at = until
            row.last_error = _short(reason)
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = now
            if uri is not None and uri == row.upload_session_uri:
                row.bytes_uploaded = max(row.bytes_uploaded, sent)
            if total is not None and (uri is None or uri == row.upload_session_uri):
                row.bytes_total = total

        own = self._durable(
            "defer upload",
            attempt.schedule_id,
            lambda: self._with_counter_locks(
                "defer upload",
                attempt.schedule_id,
                allowed=self._owned_by(attempt),
                new_keys=lambda r: [
                    (self._defer_qday(r, until), b) for b in (r.reserved_quota or {})
                ],
                apply=apply_own,
            ),
            pending=self._owned_by(attempt),
            settled=self._wrote(_SCHEDULED, attempt.attempts, reason),
        )
        if own is None:
            return self._lost(attempt)
        events = [
            self._event(
                ProcessorEventKind.DEFERRED,
                own,
                attempts=own.attempts,
                video_id=own.youtube_video_id,
                error=reason,
                next_attempt_at=until,
                at=now,
            )
        ]
        try:
            moved = self._defer_others(others, until, now)
        except SchedulerError as exc:
            logger.error("deferring the other pending uploads failed: %s", exc)
            moved = []
        events += [
            self._event(
                ProcessorEventKind.DEFERRED,
                row,
                attempts=row.attempts,
                error=reason,
                next_attempt_at=until,
                at=now,
            )
            for row in moved
        ]
        return _Outcome(_Kind.DEFERRED, events, deferred=len(events), error=reason)

    def _defer_others(
        self, where: ColumnElement[bool], until: datetime, now: datetime
    ) -> list[Schedule]:
        """Defer matching ``scheduled`` rows to ``until``, page by page, moving reservations."""
        pending = and_(
            where,
            Schedule.upload_status == _SCHEDULED,
            or_(Schedule.next_attempt_at.is_(None), Schedule.next_attempt_at < until),
        )
        moved: list[Schedule] = []
        last_id = 0
        for _ in range(_MAX_DEFER_PAGES):

            def peek_page(session: Session, after: int = last_id) -> list[Schedule]:
                rows = list(
                    session.execute(
                        select(Schedule)
                        .where(pending, Schedule.id > after)
                        .order_by(Schedule.id)
                        .limit(_DEFER_PAGE)
                    ).scalars()
                )
                for r in rows:
                    session.expunge(r)
                return rows

            page = self._db.run("find uploads to defer", peek_page, read_only=True)
            if not page:
                break
            last_id = page[-1].id

            def txn(session: Session, page: list[Schedule] = page) -> list[Schedule]:
                keys: dict[str, set[tuple[date, str]]] = {}
                for r in page:
                    wanted = keys.setdefault(r.api_project, set())
                    for b in r.reserved_quota or {}:
                        wanted.add((r.quota_date, b))
                        wanted.add((self._defer_qday(r, until), b))
                locked: dict[tuple[str, date, str], QuotaUsage] = {}
                for project in sorted(keys):
                    rows = lock_quota_rows(
                        session, self._db.dialect, project, keys[project], self._policy.buckets
                    )
                    locked.update({(project, d, b): q for (d, b), q in rows.items()})
                seen = {r.id: r for r in page}
                done: list[Schedule] = []
                for row in session.execute(
                    select(Schedule)
                    .where(Schedule.id.in_(list(seen)), pending)
                    .order_by(Schedule.id)
                    .with_for_update()
                ).scalars():
                    before = seen[row.id]
                    if (row.quota_date, row.reserved_quota) != (
                        before.quota_date,
                        before.reserved_quota,
                    ):
                        continue  # changed meanwhile (rescheduled): leave it alone
                    project_quota = {
                        (d, b): q for (p, d, b), q in locked.items() if p == row.api_project
                    }
                    self._move_reservation(row, self._defer_qday(row, until), project_quota)
                    row.next_attempt_at = until
                    row.updated_at = now
                    done.append(row)
                session.flush()
                return done

            moved.extend(self._db.run("defer uploads", txn))
            if len(page) < _DEFER_PAGE:
                break
        return moved

    # -- rescue --------------------------------------------------------------------------------

    def _rescue(self) -> tuple[int, int, int]:
        """Take back expired leases of the project. Returns ``(rescued, failed, uploaded)``
        (uploaded: given up, but the video was found on YouTube)."""
        now = self._now()

        def find(session: Session) -> list[Schedule]:
            rows = list(
                session.execute(
                    select(Schedule)
                    .where(
                        Schedule.api_project == self.api_project,
                        Schedule.upload_status == _UPLOADING,
                        or_(Schedule.lease_expires_at.is_(None), Schedule.lease_expires_at < now),
                    )
                    .order_by(Schedule.id)
                    .limit(_MAX_RESCUE_PER_RUN)
                ).scalars()
            )
            for r in rows:
                session.expunge(r)
            return rows

        rescued = failed = uploaded = 0
        for row in self._db.run("find expired leases", find, read_only=True):
            owner = row.lease_owner
            expired = and_(
                Schedule.id == row.id,
                Schedule.upload_status == _UPLOADING,
                Schedule.lease_owner == owner
                if owner is not None
                else Schedule.lease_owner.is_(None),
                or_(Schedule.lease_expires_at.is_(None), Schedule.lease_expires_at < now),
            )
            attempts = row.attempts + 1
            reason = f"lease of {owner} expired (the worker died or stalled)"
            if attempts >= self.max_attempts:

                def still_expired(r: Schedule, owner: str | None = owner) -> bool:
                    return (
                        r.upload_status == _UPLOADING
                        and r.lease_owner == owner
                        and (r.lease_expires_at is None or r.lease_expires_at < now)
                    )

                steps = {UploadStep(s) for s in (row.completed_steps or []) if s in _STEP_VALUES}
                done = self._terminal(
                    schedule_id=row.id,
                    video_id=row.youtube_video_id,
                    steps=steps,
                    allowed=still_expired,
                    reason=f"{reason} (gave up after {attempts} attempts)",
                    attempts=attempts,
                    session_uri=row.upload_session_uri,
                    video_path=row.video_path,
                )
                if done is not None:
                    rescued += 1
                    failed += int(done[0] is _Kind.FAILED)
                    uploaded += int(done[0] is _Kind.UPLOADED)
                    self._emit([done[1]])
                continue
            stmt = (
                update(Schedule)
                .where(expired)
                .values(
                    upload_status=_SCHEDULED,
                    attempts=attempts,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=None,
                    last_error=_short(reason),
                    updated_at=now,
                )
            )
            written = self._execute_count("rescue expired lease", stmt)
            if written:
                rescued += 1
                logger.warning(
                    "rescued schedule %d: %s; attempt %d of %d counted, its session is resumed",
                    row.id,
                    reason,
                    attempts,
                    self.max_attempts,
                )
                self._emit(
                    [
                        self._event(
                            ProcessorEventKind.RESCUED,
                            row,
                            attempts=attempts,
                            video_id=row.youtube_video_id,
                            error=reason,
                            at=now,
                        )
                    ]
                )
        return rescued, failed, uploaded


_STEP_VALUES = frozenset(s.value for s in UploadStep)
_FOLLOW_UP_VALUES = frozenset(s.value for s in _FOLLOW_UPS)

# Pre-built Core statements of the hot path (claim, batched completion): no ORM entities, and
# statement construction / cache-key generation happen once (see docs/performance.md).
_S: Table = Schedule.__table__  # type: ignore[assignment]
_CHANNELS: Table = UploadChannel.__table__  # type: ignore[assignment]
_QUOTA: Table = QuotaUsage.__table__  # type: ignore[assignment]
_LOCK_CHANNEL = (
    select(_CHANNELS.c.channel_id)
    .where(_CHANNELS.c.channel_id == bindparam("k_channel"))
    .with_for_update()
)
_TOUCH_CHANNEL = (
    update(_CHANNELS)
    .where(_CHANNELS.c.channel_id == bindparam("k_channel"))
    .values(last_claim_at=bindparam("k_now"))
)
_COUNT_LIVE = (
    select(func.count())
    .select_from(_S)
    .where(_S.c.channel_id == bindparam("k_channel"), _S.c.upload_status == _UPLOADING)
)
_COUNT_LIVE_OF_CHANNEL = _COUNT_LIVE.scalar_subquery()
_CLAIM_COLUMNS = (
    _S.c.id,
    _S.c.channel_id,
    _S.c.api_project,
    _S.c.attempts,
    _S.c.video_path,
    _S.c["metadata"].label("video_metadata"),
    _S.c.scheduled_publish_time,
    _S.c.upload_session_uri,
    _S.c.youtube_video_id,
    _S.c.completed_steps,
    _S.c.bytes_uploaded,
    _S.c.bytes_total,
    _S.c.quota_date,
    _S.c.reserved_quota,
    _S.c.content_sha256,
    _S.c.file_size,
    _S.c.file_mtime_ns,
)
_LOCK_DONE_ROWS = (
    select(
        _S.c.id,
        _S.c.lease_owner,
        _S.c.upload_status,
        _S.c.quota_date,
        _S.c.reserved_quota,
        _S.c.consumed_quota,
        _S.c.bytes_uploaded,
        _S.c.bytes_total,
        _S.c.attempts,
    )
    .where(_S.c.id.in_(bindparam("k_ids", expanding=True)))
    .order_by(_S.c.id)
    .with_for_update()
)
_RELEASE_AND_USE = (
    update(_QUOTA)
    .where(
        _QUOTA.c.api_project == bindparam("k_project"),
        _QUOTA.c.quota_date == bindparam("k_qday"),
        _QUOTA.c.bucket == bindparam("k_bucket"),
    )
    .values(
        reserved=case(
            (
                _QUOTA.c.reserved > bindparam("k_release"),
                _QUOTA.c.reserved - bindparam("k_release"),
            ),
            else_=0,
        ),
        used=_QUOTA.c.used + bindparam("k_use"),
    )
)
_SET_QUOTA = (
    update(_QUOTA)
    .where(
        _QUOTA.c.api_project == bindparam("k_project"),
        _QUOTA.c.quota_date == bindparam("k_qday"),
        _QUOTA.c.bucket == bindparam("k_bucket"),
    )
    .values(reserved=bindparam("k_reserved"), used=bindparam("k_used"))
)
_COMPLETE_ROW = (
    update(_S)
    .where(
        _S.c.id == bindparam("k_id"),
        _S.c.lease_owner == bindparam("k_token"),
        _S.c.upload_status == _UPLOADING,
    )
    .values(
        quota_date=bindparam("k_qday"),
        reserved_quota=bindparam("k_reserved", type_=_S.c.reserved_quota.type),
        consumed_quota=bindparam("k_consumed", type_=_S.c.consumed_quota.type),
        upload_status=UploadStatus.COMPLETED.value,
        youtube_video_id=bindparam("k_video_id"),
        completed_steps=bindparam("k_steps", type_=_S.c.completed_steps.type),
        uploaded_at=bindparam("k_now", type_=_S.c.uploaded_at.type),
        updated_at=bindparam("k_now", type_=_S.c.uploaded_at.type),
        heartbeat_at=bindparam("k_now", type_=_S.c.uploaded_at.type),
        lease_owner=None,
        lease_expires_at=None,
        next_attempt_at=None,
        last_error=None,
        bytes_total=bindparam("k_total", type_=BigInteger()),
        bytes_uploaded=bindparam("k_uploaded", type_=BigInteger()),
    )
)
