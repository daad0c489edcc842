"""``ScheduleManager``: finds publish slots and reserves daily limits and API quota, race-free.

Every public method is one short transaction (or a read). Reservations take their locks in the
global order of :mod:`langflix_scheduler.ledger` (cancel, reschedule and retry through
``ledger.change_schedule``), so two reservations never deadlock on each other, and a concurrent
caller in any process on any machine sees either the state before or after, never a half-booked
day. The SQL lives in ``db/`` (``slots``, ``bookings``, ``reads``, ``counters``, ``locking``);
this module validates, decides and orchestrates.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import Engine

from . import changes, dry_run, history, ledger, overview, reports
from ._time import read_clock
from .booking import BookingRequest, check_idempotency_key, decide
from .change_local import merged_metadata
from .config import SchedulerConfig
from .db import api_calls, bookings, counters, dashboard, migrate, reads, timeline
from .db import changes as changes_db
from .db import channels as channels_db
from .db import slots as slots_db
from .db.api_calls import CallRecord
from .db.counters import COUNT_COLUMN
from .db.engine import Database, create_engine
from .db.locking import (
    add_to_day_count,
    add_to_quota_reserved,
    lock_day_counts,
    lock_quota_counts,
    take_day_count,
    take_quota,
)
from .db.models import DailyLimit, ProcessorRun, QuotaUsage, Schedule
from .db.schedules import LEASE_CLEARED, clear_lease, peek_schedule
from .db.types import Connection, Session
from .domain import (
    Booking,
    BucketUsage,
    ChannelPause,
    DailyQuotaStatus,
    ProcessorRunRecord,
    QuotaCorrection,
    RecalculationReport,
    ScheduledVideo,
    TypeUsage,
    UploadStatus,
    VideoMetadata,
    VideoState,
    VideoType,
)
from .errors import (
    DuplicateVideoError,
    InvalidScheduleError,
    InvalidTransitionError,
    OutcomeUnknownError,
    QuotaExceededError,
    ScheduleNotFoundError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
)
from .fingerprint import Fingerprint, fingerprint_file
from .media import check_video_type
from .overview import Attention
from .quota import quota_date_of
from .reconcile import ReconcileProgress, ReconcileReport
from .reconcile import reconcile as reconcile_flow
from .slots import channel_date_of, ensure_aware, slots_on_day
from .youtube.uploader import ApiCallReport, CallCallback, CallPhase
from .youtube.videos import VideoClient, is_video_client

__all__ = ["Clock", "ScheduleManager", "system_clock"]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_PATH_BYTES = 4096
#: Schedule ids are a 32-bit INTEGER column: a larger id cannot exist on any engine.
MAX_SCHEDULE_ID = 2**31 - 1
_MAX_SEARCH_ROUNDS = 64
_MAX_RECALC_ROUNDS = 5
#: Bookings whose unique fingerprint/idempotency key was taken, then freed, before we looked.
_MAX_BOOK_ROUNDS = 3
#: Below this size a file is hashed again rather than looked up by its stat: reading it costs
#: less than the query (SHA-256 runs at about 1-2 GB/s; see docs/performance.md).
_REUSE_HASH_MIN_BYTES = 1 << 20
#: Channel days with room whose booked instants the slot search reads in its one query.
_SNAPSHOT_WINDOW_DAYS = 8
_COUNT_COLUMN = COUNT_COLUMN


def system_clock() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


#: Internal: the slot was booked by someone else (unique constraint or in-lock check).
_SlotTaken = bookings.SlotTaken
#: Internal: the content fingerprint or idempotency key is held by another row (unique).
_Held = bookings.KeyHeld


class _Restart(Exception):
    """Internal: recalculation found new keys under lock; restart with a larger lock set."""

    def __init__(self, keys: tuple[set[tuple[str, date]], set[tuple[str, date, str]]]) -> None:
        self.keys = keys


@dataclass
class _Snapshot:
    """A lock-free read of one channel's horizon: taken slots, day counters, quota counters."""

    taken: set[datetime] = field(default_factory=set)
    day_counts: dict[date, dict[VideoType, int]] = field(default_factory=dict)
    quota: dict[tuple[date, str], int] = field(default_factory=dict)  # reserved + used
    known_until: date | None = None  # booked instants known up to this day (None: all)


@dataclass
class _RetryTarget:
    """Where :meth:`ScheduleManager.retry_failed` books a failed row again; ``qday`` and ``now``
    are those of the transaction that holds the locks."""

    channel: str
    slot: datetime
    day: date
    video_type: VideoType
    cost: dict[str, int]
    qday: date | None = None
    now: datetime | None = None
    actor: str = history.DEFAULT_ACTOR


class _BeyondSnapshot(Exception):
    """Internal: the slot search reached a day whose booked instants a windowed read left out."""


#: Statuses whose reserved quota is still held (needs_review keeps it: the upload may have run).
_RESERVING = (UploadStatus.SCHEDULED, UploadStatus.UPLOADING, UploadStatus.NEEDS_REVIEW)


def _not_scheduled(schedule_id: int, status: str, operation: str) -> InvalidTransitionError:
    hint = None
    if status == UploadStatus.NEEDS_REVIEW:
        hint = (
            "whether its video reached YouTube is unknown (see its last_error): look for it on "
            "the channel first; it keeps its slot and quota until then"
        )
    return InvalidTransitionError(schedule_id, status, operation, hint=hint)


def _correct(
    table: str,
    locked: Mapping[Any, Any],
    want: Mapping[Any, Mapping[str, int]],
    zero: Mapping[str, int],
) -> list[QuotaCorrection]:
    """Set each locked counter row of ``table`` to its recount (``zero`` when nothing counts on
    it) and return what changed. Keys are tuples whose dates are reported in ISO format."""
    out: list[QuotaCorrection] = []
    for key, row in locked.items():
        for column, new in want.get(key, zero).items():
            old = getattr(row, column)
            if old != new:
                setattr(row, column, new)
                shown = tuple(k.isoformat() if isinstance(k, date) else k for k in key)
                out.append(QuotaCorrection(table=table, key=shown, column=column, old=old, new=new))
    return out


def _to_domain(row: Schedule) -> ScheduledVideo:
    return ScheduledVideo(
        id=row.id,
        channel_id=row.channel_id,
        api_project=row.api_project,
        video_path=row.video_path,
        video_type=VideoType(row.video_type),
        scheduled_publish_time=row.scheduled_publish_time,
        publish_date=row.publish_date,
        quota_date=row.quota_date,
        metadata=VideoMetadata.from_stored(row.video_metadata),
        status=UploadStatus(row.upload_status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        youtube_video_id=row.youtube_video_id,
        bytes_uploaded=row.bytes_uploaded,
        bytes_total=row.bytes_total,
        reserved_quota=dict(row.reserved_quota or {}),
        consumed_quota=dict(row.consumed_quota or {}),
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        uploaded_at=row.uploaded_at,
        content_sha256=row.content_sha256,
        idempotency_key=row.idempotency_key,
        video_state=None if row.video_state is None else VideoState(row.video_state),
        youtube_privacy=row.youtube_privacy,
        youtube_publish_at=row.youtube_publish_at,
        video_problem=row.video_problem,
        checked_at=row.checked_at,
        next_check_at=row.next_check_at,
    )


def _aware(value: datetime, field_name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidScheduleError(field_name, f"expected a datetime, got {type(value).__name__}")
    try:
        return ensure_aware(value)
    except ValueError:
        raise InvalidScheduleError(
            field_name, "naive datetime: give a timezone, e.g. 2026-05-01T10:00:00+09:00"
        ) from None


def _schedule_id(value: object) -> int:
    """The id as an int, or :class:`ScheduleNotFoundError` for an id that cannot exist (not an
    integer, a bool, ``None``, < 1, or beyond the id column): no driver overflow, no
    "integer out of range", no SQLAlchemy warning reaches the caller."""
    if isinstance(value, bool):
        raise ScheduleNotFoundError(value)
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ScheduleNotFoundError(value) from None
    if not 1 <= number <= MAX_SCHEDULE_ID:
        raise ScheduleNotFoundError(number)
    return number


def _video_type(value: VideoType | str) -> VideoType:
    try:
        return VideoType(value)
    except ValueError:
        raise InvalidScheduleError(
            "video_type", f"{value!r} is not one of: {', '.join(v.value for v in VideoType)}"
        ) from None


def _video_path(value: str | os.PathLike[str]) -> str:
    try:
        raw = os.fspath(value)
    except TypeError:
        raise InvalidScheduleError("video_path", "must be a path") from None
    if not isinstance(raw, str) or not raw:
        raise InvalidScheduleError("video_path", "must be a non-empty text path")
    if "\x00" in raw:
        raise InvalidScheduleError("video_path", "contains a NUL character")
    try:
        path = os.path.abspath(raw)
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidScheduleError(
            "video_path", "is not valid UTF-8; rename the file to a UTF-8 name"
        ) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise InvalidScheduleError(
            "video_path", f"is {len(encoded)} bytes long; at most {MAX_PATH_BYTES} are supported"
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidScheduleError("video_path", f"{path!r} does not exist") from None
    except OSError as exc:
        raise InvalidScheduleError("video_path", f"cannot read {path!r}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InvalidScheduleError("video_path", f"{path!r} is not a regular file")
    if st.st_size == 0:
        raise InvalidScheduleError("video_path", f"{path!r} is empty")
    if not os.access(path, os.R_OK):
        raise InvalidScheduleError("video_path", f"{path!r} is not readable")
    return path


def _metadata(value: VideoMetadata | Mapping[str, Any] | None, video_path: str) -> VideoMetadata:
    if value is None:
        title = Path(video_path).stem.replace("<", "").replace(">", "").strip()[:100] or "Untitled"
        meta = VideoMetadata(title=title)
    elif isinstance(value, VideoMetadata):
        meta = value
    elif isinstance(value, Mapping):
        try:
            meta = VideoMetadata.from_json(value)
        except TypeError as exc:
            raise InvalidScheduleError("metadata", str(exc)) from None
    else:
        raise InvalidScheduleError("metadata", "must be a VideoMetadata or a mapping")
    meta.check_files()
    return meta


def _update_fields(
    title: str | None,
    description: str | None,
    tags: Sequence[str] | None,
    thumbnail_path: str | os.PathLike[str] | None,
) -> dict[str, Any]:
    """The fields ``update_video`` changes, checked for type; at least one."""
    if isinstance(tags, str):
        raise InvalidScheduleError("tags", "must be a sequence of strings, not one string")
    fields: dict[str, Any] = {
        "title": title,
        "description": description,
        "tags": None if tags is None else tuple(tags),
        "thumbnail_path": None if thumbnail_path is None else os.fspath(thumbnail_path),
    }
    if all(v is None for v in fields.values()):
        raise InvalidScheduleError(
            "update", "give at least one of title, description, tags, thumbnail_path"
        )
    return fields


class ScheduleManager:
    """Schedules videos into publish slots, reserving daily limits and API quota atomically.

    Args:
        config: the configuration (defaults: ``SchedulerConfig()``).
        engine: an existing SQLAlchemy engine to use instead of creating one from
            ``config.database_url`` (its pool is then yours to dispose).
        clock: returns the current aware time; inject a fixed clock in tests.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        config: SchedulerConfig | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self._owns_engine = engine is None
        if engine is None:
            engine = create_engine(
                self.config.database_url,
                lock_timeout=self.config.lock_timeout,
                db_timeout=self.config.db_timeout,
            )
        self._db = Database(
            engine,
            lock_timeout=self.config.lock_timeout,
            db_timeout=self.config.db_timeout,
            deadlock_retries=self.config.deadlock_retries,
        )
        self._clock = clock or system_clock

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def from_env(cls, *, clock: Clock | None = None, **overrides: Any) -> ScheduleManager:
        """A manager configured from ``LANGFLIX_SCHEDULER_*`` variables (``overrides`` win)."""
        return cls(SchedulerConfig.from_env(**overrides), clock=clock)

    def init_db(self) -> None:
        """Create or upgrade the schema (Alembic ``upgrade head``). Idempotent, safe to race."""
        migrate.upgrade(self._db)

    def schema_is_current(self) -> bool:
        """Is the database initialised at the latest schema revision (``init_db`` done)?

        Raises:
            StorageError: the database could not be reached.
        """
        return migrate.current_revision(self._db) == migrate.head_revision()

    def close(self) -> None:
        """Release the connection pool (when the manager created the engine)."""
        if self._owns_engine:
            self._db.dispose()
        else:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def database(self) -> Database:
        """The manager's database handle (shared with the :class:`UploadProcessor` built on it)."""
        return self._db

    def now(self) -> datetime:
        """The manager's clock, in UTC.

        Raises:
            ConfigurationError: the injected clock returned a naive datetime (or no datetime).
        """
        return read_clock(self._clock)

    # -- helpers -------------------------------------------------------------------------------

    def _channel(self, channel: str | None) -> str:
        value = self.config.channel if channel is None else channel
        if not isinstance(value, str) or not value or len(value) > 64:
            raise InvalidScheduleError("channel", "must be a non-empty string of <= 64 characters")
        return value

    def quota_date_for(self, publish_time: datetime, *, now: datetime | None = None) -> date:
        """The quota day an upload for ``publish_time`` will spend its API quota on."""
        now = now or self.now()
        upload_at = max(now, ensure_aware(publish_time) - self.config.upload_lead_time)
        return quota_date_of(upload_at, self.config.quota_timezone)

    def _window(self, now: datetime) -> tuple[datetime, datetime]:
        """The bookable publish times ``[start, end)`` at ``now``: the ONE rule for what slot
        search offers and what an explicit time (``preferred_time``, ``new_time``) may be.
        ``end`` is one second past ``now + horizon`` so the slot at the horizon's edge, which
        ``now``'s microseconds could otherwise push out, is both offered and accepted."""
        return now + self.config.min_lead_time, now + self.config.horizon + timedelta(seconds=1)

    def _check_window(self, when: datetime, field_name: str, now: datetime) -> None:
        earliest, end = self._window(now)
        if when < earliest:
            raise InvalidScheduleError(
                field_name,
                f"{when.isoformat()} is earlier than now + min_lead_time ({earliest.isoformat()})",
            )
        latest = now + self.config.horizon
        if when >= end:
            raise InvalidScheduleError(
                field_name,
                f"{when.isoformat()} is beyond the {self.config.horizon_days}-day horizon "
                f"({latest.isoformat()})",
            )

    def _check_type_allowed(self, video_type: VideoType, when: datetime) -> None:
        """A type whose daily limit is 0 can never be booked: say so at once (no slot search,
        no counter rows written)."""
        if self.config.daily_limits[video_type] == 0:
            raise SlotUnavailableError(
                when,
                f"the daily limit of {video_type.value} videos is 0 on this channel "
                f"(daily_limits); no {video_type.value} can be booked",
                next_available=None,
            )

    def _cost(self, metadata: VideoMetadata | None) -> dict[str, int]:
        ops = metadata.operations() if metadata else ("videos.insert",)
        return self.config.quota_policy.cost(ops)

    def _quota_fits(
        self, used: Mapping[tuple[date, str], int], qday: date, cost: Mapping[str, int]
    ) -> bool:
        policy = self.config.quota_policy
        return all(used.get((qday, b), 0) + amount <= policy.limit(b) for b, amount in cost.items())

    # -- reads ---------------------------------------------------------------------------------

    def _snapshot(
        self,
        conn: Connection,
        channel: str,
        video_type: VideoType,
        start: datetime,
        end: datetime,
        windowed: bool,
    ) -> _Snapshot:
        """Everything slot search needs over [start, end), in ONE query (see
        :mod:`langflix_scheduler.db.slots`)."""
        tz = self.config.zone
        limit = self.config.daily_limits[video_type]
        params = {
            "channel": channel,
            "start": start,
            "end": end,
            "d0": channel_date_of(start, tz),
            "d1": channel_date_of(end, tz),
            "q0": quota_date_of(start - self.config.upload_lead_time, self.config.quota_timezone),
            "q1": quota_date_of(end, self.config.quota_timezone),
            "project": self.config.api_project,
            "day_limit": limit,
        }
        snap = _Snapshot()
        window = _SNAPSHOT_WINDOW_DAYS if windowed else None
        rows = slots_db.snapshot_rows(conn, _COUNT_COLUMN[video_type], window, params)
        for kind, ts, day, bucket, a, b in rows:
            if kind == "s":
                snap.taken.add(ts)
            elif kind == "d":
                snap.day_counts[day] = {VideoType.FINAL: a, VideoType.SHORT: b}
            else:
                snap.quota[(day, bucket)] = a + b
        if windowed:
            # The same days the query's window took, from the same statement's counter rows.
            with_room = sorted(d for d, c in snap.day_counts.items() if c[video_type] < limit)
            if len(with_room) >= _SNAPSHOT_WINDOW_DAYS:
                snap.known_until = with_room[_SNAPSHOT_WINDOW_DAYS - 1]
        return snap

    def _read_snapshot(
        self,
        channel: str,
        video_type: VideoType,
        start: datetime,
        end: datetime,
        *,
        windowed: bool = True,
    ) -> _Snapshot:
        return self._db.run_core(
            "find next slot",
            functools.partial(
                self._snapshot,
                channel=channel,
                video_type=video_type,
                start=start,
                end=end,
                windowed=windowed,
            ),
            read_only=True,
        )

    def _search(
        self,
        snap: _Snapshot,
        video_type: VideoType,
        start: datetime,
        end: datetime,
        cost: Mapping[str, int],
        now: datetime,
    ) -> datetime | None:
        """The earliest free slot per ``snap``; raises :class:`_BeyondSnapshot` when it would
        need booked instants of a day the (windowed) snapshot did not read."""
        limit = self.config.daily_limits[video_type]
        times = self.config.publish_times[video_type]
        tz = self.config.zone
        day = channel_date_of(start, tz)
        last_day = channel_date_of(end, tz)
        while day <= last_day:
            # Full days are skipped before their slots are even computed.
            counts = snap.day_counts.get(day)
            if counts is None or counts[video_type] < limit:
                if counts is not None and snap.known_until and day > snap.known_until:
                    raise _BeyondSnapshot
                for slot in slots_on_day(day, times, tz):
                    if not start <= slot < end or slot in snap.taken:
                        continue
                    if self._quota_fits(snap.quota, self.quota_date_for(slot, now=now), cost):
                        return slot
            day += timedelta(days=1)
        return None

    def _find_slot(
        self,
        channel: str,
        video_type: VideoType,
        start: datetime,
        end: datetime,
        cost: Mapping[str, int],
        now: datetime,
    ) -> datetime | None:
        """Slot search: one query, plus a second, unwindowed one only when the first
        :data:`_SNAPSHOT_WINDOW_DAYS` days with room were all unusable (quota, lead time)."""
        snap = self._read_snapshot(channel, video_type, start, end)
        try:
            return self._search(snap, video_type, start, end, cost, now)
        except _BeyondSnapshot:
            snap = self._read_snapshot(channel, video_type, start, end, windowed=False)
            return self._search(snap, video_type, start, end, cost, now)

    def get_next_available_slot(
        self,
        video_type: VideoType | str,
        *,
        after: datetime | None = None,
        channel: str | None = None,
        metadata: VideoMetadata | None = None,
    ) -> datetime:
        """The earliest free configured slot (UTC) of ``video_type`` after ``after``.

        Free means: not booked, the channel day has room for the type, and the quota day of the
        upload has room in every bucket the upload uses (insert only, unless ``metadata`` asks for
        a thumbnail or playlist). Reads with one query over the whole horizon, takes no locks.

        Raises:
            SlotUnavailableError: nothing is free within ``horizon_days``.
        """
        vt = _video_type(video_type)
        ch = self._channel(channel)
        now = self.now()
        start, end = self._window(now)
        if after is not None:
            start = max(start, _aware(after, "after"))
        self._check_type_allowed(vt, start)
        cost = self._cost(metadata)
        slot = self._find_slot(ch, vt, start, end, cost, now)
        if slot is None:
            raise SlotUnavailableError(
                start,
                f"no free {vt} slot within {self.config.horizon_days} days",
                next_available=None,
            )
        return slot

    def get(self, schedule_id: int, *, channel: str | None = None) -> ScheduledVideo:
        """One schedule by id; with ``channel``, only if it belongs to that channel.

        Raises:
            ScheduleNotFoundError: no such schedule (on ``channel``, when given), or an id that
                cannot exist.
        """
        return _to_domain(self._peek(schedule_id, channel))

    def list_schedules(
        self,
        *,
        status: UploadStatus | str | Iterable[UploadStatus | str] | None = None,
        channel: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
        video_state: VideoState | str | Iterable[VideoState | str] | None = None,
    ) -> list[ScheduledVideo]:
        """Schedules ordered by publish time, filtered by status, channel, [start, end) and
        the video state on YouTube (``video_state``)."""
        states = None
        if video_state is not None:
            wanted = [video_state] if isinstance(video_state, str) else list(video_state)
            try:
                states = [VideoState(s).value for s in wanted]
            except ValueError:
                raise InvalidScheduleError(
                    "video_state", f"use one of: {', '.join(s.value for s in VideoState)}"
                ) from None
        values = None
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            try:
                values = [UploadStatus(s).value for s in statuses]
            except ValueError:
                raise InvalidScheduleError(
                    "status", f"use one of: {', '.join(s.value for s in UploadStatus)}"
                ) from None
        ch = None if channel is None else self._channel(channel)
        lo = None if start is None else _aware(start, "start")
        hi = None if end is None else _aware(end, "end")
        if limit is not None and limit < 1:
            raise InvalidScheduleError("limit", "must be >= 1")
        return self._db.run(
            "list schedules",
            lambda s: [
                _to_domain(r)
                for r in reads.schedules(
                    s,
                    statuses=values,
                    channel=ch,
                    start=lo,
                    end=hi,
                    limit=limit,
                    video_states=states,
                )
            ],
            read_only=True,
        )

    def due_schedules(
        self,
        now: datetime | None = None,
        *,
        channel: str | None = None,
        api_project: str | None = None,
    ) -> list[ScheduledVideo]:
        """What a processor run would claim at ``now`` (default: the clock), by due time.

        The same rule as the processor's claim (:func:`langflix_scheduler.db.due.due_condition`):
        ``scheduled``, publish time minus ``upload_lead_time`` reached, not waiting for a retry.
        ``channel`` / ``api_project`` filter (``None``: every channel / every project).
        """
        at = self.now() if now is None else _aware(now, "now")
        channels = None if channel is None else [self._channel(channel)]
        return self._db.run(
            "list due schedules",
            lambda s: [
                _to_domain(r)
                for r in reads.due(
                    s,
                    now=at,
                    horizon=at + self.config.upload_lead_time,
                    api_project=api_project,
                    channels=channels,
                )
            ],
            read_only=True,
        )

    def attention(self, *, limit: int = 20, now: datetime | None = None) -> Attention:
        """Schedules that need a look at ``now`` (default: the clock): needs review, stuck,
        failed (newest ``limit``), overdue, waiting to retry, plus what is in flight and due.

        The one classification that ``status``, the dashboard and apps share; see
        :mod:`langflix_scheduler.overview`.
        """
        at = self.now() if now is None else _aware(now, "now")
        return overview.attention(self, limit=limit, now=at)

    def paused_channels(self, channel: str | None = None) -> list[ChannelPause]:
        """Channels whose uploads are paused because their token was refused (``invalid_grant``),
        oldest pause first; only ``channel`` when given. See :class:`ChannelPause`."""
        name = None if channel is None else self._channel(channel)
        rows = self._db.run_core(
            "read paused channels", lambda c: channels_db.paused(c, name), read_only=True
        )
        return [
            ChannelPause(channel=r.channel_id, paused_at=r.paused_at, reason=r.reason) for r in rows
        ]

    def resume_channel(self, channel: str | None = None) -> ChannelPause | None:
        """Lift the pause of ``channel`` (default: the configured one) so the processor claims
        its uploads again. ``auth`` calls it after storing a new token, ``auth --check`` after
        finding the token good. Returns the pause lifted, or None when it was not paused.

        Raises:
            StorageError: the database could not be reached.
        """
        name = self._channel(channel)
        lifted = self._db.run_core("resume channel", lambda c: channels_db.resume(c, name))
        if lifted is None:
            return None
        logger.info("channel %s resumed (paused since %s)", name, lifted.paused_at)
        return ChannelPause(channel=name, paused_at=lifted.paused_at, reason=lifted.reason)

    def reconcile(
        self,
        videos: VideoClient,
        *,
        channel: str | None = None,
        apply: bool = False,
        on_progress: Callable[[ReconcileProgress], None] | None = None,
    ) -> ReconcileReport:
        """Compare the channel's schedules with its uploads on YouTube; with ``apply``, fix
        what is safe. See :mod:`langflix_scheduler.reconcile` for what is compared and fixed.

        ``videos`` talks to YouTube with the channel's token (``YouTubeUploader`` or
        ``MemoryVideoClient``). Every call (``channels.list`` and ``playlistItems.list`` 1 unit
        per 50 uploads, ``videos.list`` 1 unit per 50 recorded videos) is written to the quota
        ledger before it is sent. ``on_progress`` is called after each page.

        Raises:
            QuotaExceededError: the quota day has no room for a call (nothing was fixed).
            UploadError: YouTube refused a call (``AuthorizationError``: run ``auth``).
            StorageError: the database could not be reached.
        """
        return reconcile_flow(
            self,
            videos,
            channel=self._channel(channel),
            apply=bool(apply),
            on_progress=on_progress,
        )

    def processor_runs(self, *, limit: int = 20) -> list[ProcessorRunRecord]:
        """The most recent upload-processor runs (every worker), newest first; a run still
        ``running`` whose heartbeat lease passed is reported as ``lost``."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidScheduleError("limit", "must be an integer >= 1")
        now = self.now()

        def outcome(r: ProcessorRun) -> str:
            # A run row whose heartbeat stopped belongs to a process that died or lost the
            # database: "lost", not "running".
            if (
                r.outcome == "running"
                and r.lease_expires_at is not None
                and r.lease_expires_at < now
            ):
                return "lost"
            return r.outcome

        def read(session: Session) -> list[ProcessorRunRecord]:
            return [
                ProcessorRunRecord(
                    id=r.id,
                    worker_id=r.worker_id,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    outcome=outcome(r),
                    claimed=r.claimed,
                    uploaded=r.uploaded,
                    failed=r.failed,
                    retried=r.retried,
                    deferred=r.deferred,
                    rescued=r.rescued,
                    skipped_overlap=r.skipped_overlap,
                    error=r.error,
                    heartbeat_at=r.heartbeat_at,
                    lease_expires_at=r.lease_expires_at,
                )
                for r in reads.processor_runs(session, limit)
            ]

        return self._db.run("list processor runs", read, read_only=True)

    def check_daily_quota(
        self, target_date: date, *, channel: str | None = None
    ) -> DailyQuotaStatus:
        """Per-type use of a channel day, and the API quota of the quota days its slots touch."""
        if not isinstance(target_date, date) or isinstance(target_date, datetime):
            raise InvalidScheduleError("target_date", "must be a date")
        ch = self._channel(channel)
        tz = self.config.zone
        now = self.now()
        # A slot whose upload time has passed spent (or would have spent) its quota on the
        # Pacific day of that upload time, not today: past days show their own quota days.
        qdays = sorted(
            {
                self.quota_date_for(slot, now=now)
                if slot - self.config.upload_lead_time >= now
                else quota_date_of(slot - self.config.upload_lead_time, self.config.quota_timezone)
                for vt in VideoType
                for slot in slots_on_day(target_date, self.config.publish_times[vt], tz)
            }
        ) or [target_date]

        def read(session: Session) -> DailyQuotaStatus:
            day = reads.day_counter(session, ch, target_date)
            types = {
                vt: TypeUsage(
                    video_type=vt,
                    used=getattr(day, _COUNT_COLUMN[vt]) if day else 0,
                    limit=self.config.daily_limits[vt],
                )
                for vt in VideoType
            }
            rows = reads.quota_counters(session, self.config.api_project, qdays)
            buckets = []
            for qd in qdays:
                for bucket, limit in sorted(self.config.quota_policy.buckets.items()):
                    r = rows.get((qd, bucket))
                    buckets.append(
                        BucketUsage(
                            api_project=self.config.api_project,
                            quota_date=qd,
                            bucket=bucket,
                            reserved=r.reserved if r else 0,
                            used=r.used if r else 0,
                            limit=limit,
                        )
                    )
            return DailyQuotaStatus(
                channel_id=ch, publish_date=target_date, types=types, quota=tuple(buckets)
            )

        return self._db.run("check daily quota", read, read_only=True)

    # -- reservation -----------------------------------------------------------------------------
    #
    # The reservation transaction runs on Core statements built once (see db/locking.py and
    # docs/performance.md): the rows locked, the lock order and the checks are those of the ORM
    # code paths (cancel, reschedule), only without identity-map and flush bookkeeping, which
    # cost more CPU than the round trips while the channel-day row is locked.

    def _reserve(
        self,
        conn: Connection,
        *,
        channel: str,
        day: date,
        video_type: VideoType,
        qday: date,
        cost: Mapping[str, int],
    ) -> None:
        """Count the new schedule on its (locked) channel-day and quota-day rows."""
        add_to_day_count(conn, channel, day, _COUNT_COLUMN[video_type], 1)
        policy = self.config.quota_policy
        for bucket, amount in sorted(cost.items()):
            add_to_quota_reserved(
                conn, self.config.api_project, qday, bucket, amount, policy.limit(bucket)
            )

    def _check_day(self, used: int, day: date, video_type: VideoType) -> None:
        limit = self.config.daily_limits[video_type]
        if used + 1 > limit:
            raise QuotaExceededError(
                f"daily:{video_type.value}", day, used=used, limit=limit, requested=1
            )

    def _check_quota(
        self, used: Mapping[tuple[date, str], int], qday: date, cost: Mapping[str, int]
    ) -> None:
        for bucket, amount in cost.items():
            spent = used[(qday, bucket)]
            limit = self.config.quota_policy.limit(bucket)
            if spent + amount > limit:
                raise QuotaExceededError(
                    f"quota:{bucket}", qday, used=spent, limit=limit, requested=amount
                )

    def _lock_quota_used(
        self, conn: Connection, qdays: Iterable[date], cost: Mapping[str, int]
    ) -> dict[tuple[date, str], int]:
        """Lock the quota rows (sorted) and return ``reserved + used`` per (quota day, bucket)."""
        keys = [(qd, b) for qd in set(qdays) for b in cost]
        rows = lock_quota_counts(
            conn,
            self._db.dialect,
            self.config.api_project,
            keys,
            self.config.quota_policy.buckets,
        )
        return {k: reserved + used for k, (reserved, used) in rows.items()}

    def _new_row(
        self,
        *,
        channel: str,
        path: str,
        video_type: VideoType,
        slot: datetime,
        day: date,
        qday: date,
        meta_json: Mapping[str, Any],
        cost: Mapping[str, int],
        now: datetime,
        identity: Mapping[str, Any],
    ) -> dict[str, Any]:
        return {
            **identity,
            "channel_id": channel,
            "api_project": self.config.api_project,
            "video_path": path,
            "video_type": video_type.value,
            "scheduled_publish_time": slot,
            "publish_date": day,
            "quota_date": qday,
            "slot_key": slot,
            "metadata": meta_json,
            "upload_status": UploadStatus.SCHEDULED.value,
            "attempts": 0,
            "bytes_uploaded": 0,
            "completed_steps": [],
            "reserved_quota": dict(cost),
            "consumed_quota": {},
            "created_at": now,
            "updated_at": now,
        }

    @staticmethod
    def _insert(conn: Connection, values: Mapping[str, Any], actor: str) -> int:
        """Insert a schedule row and its ``booked`` timeline entry; UNIQUE(channel_id, slot_key)
        refuses a booked slot (:class:`_SlotTaken`), and UNIQUE(channel_id, fingerprint_key /
        idempotency_key) content or a request booked (:class:`_Held`)."""
        new_id = bookings.insert_schedule(conn, values)
        if new_id is None:  # pragma: no cover - every supported driver reports the id
            raise StorageError("schedule video", "the database did not report the new id")
        at, slot = values["created_at"], values["scheduled_publish_time"]
        timeline.append(conn, history.booked(new_id, at=at, publish=slot, actor=actor))
        return new_id

    @staticmethod
    def _booked(new_id: int, values: Mapping[str, Any], meta: VideoMetadata) -> ScheduledVideo:
        """The domain object of a row just inserted from ``values`` (no read back needed)."""
        return ScheduledVideo(
            id=new_id,
            channel_id=values["channel_id"],
            api_project=values["api_project"],
            video_path=values["video_path"],
            video_type=VideoType(values["video_type"]),
            scheduled_publish_time=values["scheduled_publish_time"],
            publish_date=values["publish_date"],
            quota_date=values["quota_date"],
            metadata=meta,
            status=UploadStatus.SCHEDULED,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            youtube_video_id=None,
            bytes_uploaded=0,
            bytes_total=None,
            reserved_quota=dict(values["reserved_quota"]),
            consumed_quota={},
            **LEASE_CLEARED,
            created_at=values["created_at"],
            updated_at=values["updated_at"],
            uploaded_at=None,
            content_sha256=values["content_sha256"],
            idempotency_key=values["idempotency_key"],
        )

    def schedule_video(
        self,
        video_path: str | os.PathLike[str],
        video_type: VideoType | str,
        *,
        preferred_time: datetime | None = None,
        metadata: VideoMetadata | Mapping[str, Any] | None = None,
        channel: str | None = None,
        idempotency_key: str | None = None,
        allow_duplicate: bool = False,
        requested_by: str = history.DEFAULT_ACTOR,
    ) -> ScheduledVideo:
        """Book a publish slot and reserve its daily limit and API quota, atomically.

        Without ``preferred_time`` the earliest free configured slot is taken. With it, exactly
        that instant (to the second) is booked or an error says why.

        Safe to retry: a retry of a request that was already booked (same channel, file content,
        type, metadata and, if given, time; or the same ``idempotency_key``) returns the schedule
        booked then instead of booking again. :meth:`book` says which of the two happened.

        Args:
            idempotency_key: the caller's id for this request (<= 128 characters, unique per
                channel for ever): a replay returns the schedule it booked; the same key with a
                different request raises ``InvalidScheduleError``.
            allow_duplicate: book the file even though the same content is already scheduled,
                uploading or uploaded on the channel.
            requested_by: who books, for the schedule's timeline (default ``"library"``).

        Raises:
            InvalidScheduleError: bad input (nothing written), or an idempotency key reused for a
                different request.
            DuplicateVideoError: the same content is live on the channel as another request.
            SlotUnavailableError: ``preferred_time`` is taken (carries ``next_available``), or no
                slot is free within the horizon.
            QuotaExceededError: ``preferred_time``'s day or quota day is full.
            LockTimeoutError: a row lock was not granted within ``lock_timeout`` (nothing written).
            OutcomeUnknownError: the connection failed at COMMIT and the booking could not be
                looked up; retrying the same call is safe.
            StorageError: the database failed.
        """
        return self.book(
            video_path,
            video_type,
            preferred_time=preferred_time,
            metadata=metadata,
            channel=channel,
            idempotency_key=idempotency_key,
            allow_duplicate=allow_duplicate,
            requested_by=requested_by,
        ).schedule

    def book(
        self,
        video_path: str | os.PathLike[str],
        video_type: VideoType | str,
        *,
        preferred_time: datetime | None = None,
        metadata: VideoMetadata | Mapping[str, Any] | None = None,
        channel: str | None = None,
        idempotency_key: str | None = None,
        allow_duplicate: bool = False,
        requested_by: str = history.DEFAULT_ACTOR,
    ) -> Booking:
        """:meth:`schedule_video`, also saying whether this call booked the schedule.

        Returns ``Booking(schedule, created=True)`` for a new booking and ``created=False`` when
        the request had been booked already (the schedule is then the earlier one, as it is now).
        Raises what :meth:`schedule_video` raises.
        """
        request = self._request(
            video_path,
            video_type,
            preferred_time=preferred_time,
            metadata=metadata,
            channel=channel,
            idempotency_key=idempotency_key,
            allow_duplicate=allow_duplicate,
            requested_by=requested_by,
        )
        in_doubt = False
        for _ in range(_MAX_BOOK_ROUNDS):
            attempted: list[Mapping[str, Any]] = []
            try:
                return Booking(schedule=self._attempt(request, attempted), created=True)
            except (_Held, SlotUnavailableError, QuotaExceededError, InvalidScheduleError) as exc:
                # Refused: a retry of a booking already made is refused too (its own slot, day
                # or fingerprint is taken), so look for it before saying why.
                found = self._existing(request)
                if found is not None:
                    logger.info("already booked as schedule %d; returning it", found.id)
                    return Booking(schedule=found, created=False)
                if not isinstance(exc, _Held):
                    raise
            except OutcomeUnknownError as exc:
                found = self._resolve_in_doubt(request, attempted, exc)
                if found is not None:
                    return Booking(schedule=found, created=True)
                if in_doubt:
                    raise StorageError(
                        "schedule video",
                        "the connection failed at COMMIT twice and the booking was not saved; "
                        "retrying the same call is safe",
                    ) from exc
                in_doubt = True
        raise StorageError(
            "schedule video", "the same content or key kept being booked and freed; try again"
        )

    def _request(
        self,
        video_path: str | os.PathLike[str],
        video_type: VideoType | str,
        *,
        preferred_time: datetime | None,
        metadata: VideoMetadata | Mapping[str, Any] | None,
        channel: str | None,
        idempotency_key: str | None,
        allow_duplicate: bool,
        requested_by: str = history.DEFAULT_ACTOR,
    ) -> BookingRequest:
        """Validate a booking request and fingerprint its file (nothing written)."""
        vt = _video_type(video_type)
        ch = self._channel(channel)
        self._check_type_allowed(vt, self.now())
        path = _video_path(video_path)
        check_video_type(path, vt)
        meta = _metadata(metadata, path)
        key = check_idempotency_key(idempotency_key)
        if not isinstance(allow_duplicate, bool):
            raise InvalidScheduleError("allow_duplicate", "must be True or False")
        slot = None
        if preferred_time is not None:
            slot = _aware(preferred_time, "preferred_time").replace(microsecond=0)
        return BookingRequest(
            channel=ch,
            path=path,
            video_type=vt,
            meta=meta,
            cost=self._cost(meta),
            slot=slot,
            fingerprint=self._fingerprint(path),
            idempotency_key=key,
            allow_duplicate=allow_duplicate,
            actor=history.check_actor(requested_by),
        )

    def _fingerprint(self, path: str) -> Fingerprint:
        """The file's SHA-256, taken from a schedule of the same unchanged file when there is
        one (large files only), else read from the file."""
        try:
            st = os.stat(path)
            if st.st_size >= _REUSE_HASH_MIN_BYTES:
                known = self._db.run(
                    "look up file hash",
                    lambda s: bookings.known_sha256(s, path, st.st_size, st.st_mtime_ns),
                    read_only=True,
                )
                if known is not None:
                    return Fingerprint(known, st.st_size, st.st_mtime_ns)
            return fingerprint_file(path)
        except OSError as exc:
            raise InvalidScheduleError(
                "video_path", f"cannot read {path!r}: {exc.strerror or exc}"
            ) from exc

    def _attempt(
        self, request: BookingRequest, attempted: list[Mapping[str, Any]]
    ) -> ScheduledVideo:
        """One booking transaction (exact time or next free slot); ``attempted`` receives the
        values of the row it inserts, to find that row again when the COMMIT is in doubt."""
        if request.slot is not None:
            self._check_window(request.slot, "preferred_time", self.now())
            return self._book_exact(request, request.slot, attempted)
        return self._book_next(request, attempted)

    def _existing(self, request: BookingRequest) -> ScheduledVideo | None:
        """The schedule that already is ``request``, else None; raises for a duplicate or a
        misused idempotency key (see :func:`langflix_scheduler.booking.decide`)."""
        if request.fingerprint_key is None and request.idempotency_key is None:
            return None
        rows = self._db.run(
            "find booking",
            lambda s: bookings.holders(
                s,
                request.channel,
                fingerprint_key=request.fingerprint_key,
                idempotency_key=request.idempotency_key,
            ),
            read_only=True,
        )
        found = decide(request, rows)
        return None if found is None else _to_domain(found)

    def _own_row(
        self, request: BookingRequest, attempted: Sequence[Mapping[str, Any]]
    ) -> ScheduledVideo | None:
        """The row an in-doubt booking transaction inserted, if it committed."""
        if request.fingerprint_key is not None or request.idempotency_key is not None:
            rows = self._db.run(
                "find booking",
                lambda s: bookings.holders(
                    s,
                    request.channel,
                    fingerprint_key=request.fingerprint_key,
                    idempotency_key=request.idempotency_key,
                ),
                read_only=True,
            )
        elif attempted:
            slot = attempted[-1]["slot_key"]
            row = self._db.run(
                "find booking",
                lambda s: bookings.at_slot(s, request.channel, slot),
                read_only=True,
            )
            rows = [] if row is None else [row]
        else:
            return None
        mine = [r for r in rows if request.same_as(r)]
        return _to_domain(mine[0]) if mine else None

    def _resolve_in_doubt(
        self,
        request: BookingRequest,
        attempted: Sequence[Mapping[str, Any]],
        exc: OutcomeUnknownError,
    ) -> ScheduledVideo | None:
        """After a failure at COMMIT: the booking if it committed, None if it did not; raises
        ``exc`` when that cannot be found out."""
        logger.warning("%s; looking the booking up", exc)
        try:
            found = self._own_row(request, attempted)
        except SchedulerError as lookup:
            logger.error("schedule video: the look-up failed too (%s); outcome unknown", lookup)
            raise exc from lookup
        if found is not None:
            logger.warning("schedule video: the COMMIT in doubt did commit (schedule %d)", found.id)
        else:
            logger.warning("schedule video: the COMMIT in doubt did not commit; booking again")
        return found

    def _row_for(
        self,
        request: BookingRequest,
        fixed: tuple[Mapping[str, Any], Mapping[str, Any]],
        *,
        slot: datetime,
        day: date,
        qday: date,
        now: datetime,
    ) -> dict[str, Any]:
        """The new row of ``request`` at ``slot``; ``fixed`` is ``(metadata JSON, identity
        columns)``, computed once per booking (not once per transaction)."""
        meta_json, identity = fixed
        return self._new_row(
            channel=request.channel,
            path=request.path,
            video_type=request.video_type,
            slot=slot,
            day=day,
            qday=qday,
            meta_json=meta_json,
            cost=request.cost,
            now=now,
            identity=identity,
        )

    @staticmethod
    def _log_booked(request: BookingRequest, booked: ScheduledVideo) -> None:
        logger.info(
            "scheduled %s %s on channel %s at %s (id %d)",
            request.video_type.value,
            request.path,
            request.channel,
            booked.scheduled_publish_time.isoformat(),
            booked.id,
        )

    def _book_exact(
        self, request: BookingRequest, slot: datetime, attempted: list[Mapping[str, Any]]
    ) -> ScheduledVideo:
        channel, vt, cost = request.channel, request.video_type, request.cost
        day_date = channel_date_of(slot, self.config.zone)
        fixed = (request.meta.to_json(), request.row_values())

        def txn(conn: Connection) -> tuple[int, dict[str, Any]]:
            now = self.now()
            qday = self.quota_date_for(slot, now=now)
            values = self._row_for(request, fixed, slot=slot, day=day_date, qday=qday, now=now)
            # Lock order: ledger.py (channel-day row, then quota rows sorted). Both are
            # locked by their increment (one statement per row where the engine can return the
            # counts from an UPDATE); the checks follow, and a refusal raises, which rolls the
            # whole transaction back. The slot itself is guarded by UNIQUE(channel_id, slot_key):
            # a booked slot fails the insert (-> _SlotTaken, full rollback) without another query.
            dialect = self._db.dialect
            counts = take_day_count(conn, dialect, channel, day_date, _COUNT_COLUMN[vt])
            before = take_quota(
                conn, dialect, self.config.api_project, qday, cost, self.config.quota_policy.buckets
            )
            self._check_day(counts[_COUNT_COLUMN[vt]], day_date, vt)
            self._check_quota({(qday, b): n for b, n in before.items()}, qday, cost)
            attempted.append(values)
            return self._insert(conn, values, request.actor), values

        try:
            new_id, values = self._db.run_core("schedule video", txn)
        except _SlotTaken:
            raise SlotUnavailableError(
                slot,
                "already booked",
                next_available=self._next_or_none(vt, slot, channel, request.meta),
            ) from None
        booked = self._booked(new_id, values, request.meta)
        self._log_booked(request, booked)
        return booked

    def _next_or_none(
        self, vt: VideoType, after: datetime, channel: str, meta: VideoMetadata | None
    ) -> datetime | None:
        try:
            return self.get_next_available_slot(vt, after=after, channel=channel, metadata=meta)
        except SlotUnavailableError:
            return None

    def _book_next(
        self, request: BookingRequest, attempted: list[Mapping[str, Any]]
    ) -> ScheduledVideo:
        """Book the earliest free slot: search (no locks), then book on that slot's day under
        its locks; a day that filled up meanwhile starts the search again."""
        vt, tz = request.video_type, self.config.zone
        fixed = (request.meta.to_json(), request.row_values())
        for _ in range(_MAX_SEARCH_ROUNDS):
            now = self.now()
            start, end = self._window(now)
            candidate = self._find_slot(request.channel, vt, start, end, request.cost, now)
            if candidate is None:
                raise SlotUnavailableError(
                    start,
                    f"no free {vt} slot within {self.config.horizon_days} days "
                    f"(daily limit {self.config.daily_limits[vt]}, "
                    f"API quota policy {self.config.quota_policy.name})",
                    next_available=None,
                )
            day_date = channel_date_of(candidate, tz)
            day_slots = [
                s
                for s in slots_on_day(day_date, self.config.publish_times[vt], tz)
                if start <= s < end
            ]
            try:
                done = self._db.run_core(
                    "schedule video",
                    functools.partial(
                        self._book_on_day,
                        request=request,
                        fixed=fixed,
                        day_date=day_date,
                        day_slots=day_slots,
                        attempted=attempted,
                    ),
                )
            except _SlotTaken:
                done = None
            if done is not None:
                booked = self._booked(done[0], done[1], request.meta)
                self._log_booked(request, booked)
                return booked
            logger.debug("day %s filled up meanwhile; searching again", day_date)
        raise SlotUnavailableError(
            self.now(), "slot search kept losing races; try again", next_available=None
        )

    def _book_on_day(
        self,
        conn: Connection,
        *,
        request: BookingRequest,
        fixed: tuple[Mapping[str, Any], Mapping[str, Any]],
        day_date: date,
        day_slots: Sequence[datetime],
        attempted: list[Mapping[str, Any]],
    ) -> tuple[int, dict[str, Any]] | None:
        """One booking transaction on one channel day: lock its counter row, then the quota
        rows of its slots' quota days (sorted), and book the first slot that is free and fits;
        None when the day has no such slot any more."""
        channel, vt, cost = request.channel, request.video_type, request.cost
        now = self.now()
        qdays = {s: self.quota_date_for(s, now=now) for s in day_slots}
        counts = lock_day_counts(conn, self._db.dialect, channel, day_date)
        used = self._lock_quota_used(conn, qdays.values(), cost)
        if counts[_COUNT_COLUMN[vt]] >= self.config.daily_limits[vt]:
            return None
        taken = bookings.taken_among(conn, channel, day_slots)
        for slot in day_slots:
            if slot in taken or not self._quota_fits(used, qdays[slot], cost):
                continue
            values = self._row_for(
                request, fixed, slot=slot, day=day_date, qday=qdays[slot], now=now
            )
            new_id = self._insert(conn, values, request.actor)
            self._reserve(
                conn, channel=channel, day=day_date, video_type=vt, qday=qdays[slot], cost=cost
            )
            attempted.append(values)
            return new_id, values
        return None

    # -- changes to existing schedules -------------------------------------------------------------

    def _peek(self, schedule_id: int, channel: str | None) -> Schedule:
        """The row of ``schedule_id`` (detached), refused when it is not on ``channel`` (given
        explicitly): an id of another channel is not found, and nothing is changed."""
        number = _schedule_id(schedule_id)
        only = None if channel is None else self._channel(channel)

        def read(session: Session) -> Schedule:
            row = peek_schedule(session, number)
            if row is None or (only is not None and row.channel_id != only):
                raise ScheduleNotFoundError(number, channel=only)
            return row

        return self._db.run("read schedule", read, read_only=True)

    def cancel(
        self,
        schedule_id: int,
        *,
        channel: str | None = None,
        videos: VideoClient | None = None,
        delete: bool = False,
        requested_by: str = "library",
    ) -> ScheduledVideo:
        """Cancel a schedule, freeing its slot, daily count and reserved quota.

        A ``scheduled`` schedule is cancelled locally. A schedule whose video is already on
        YouTube and not yet public (``completed``, video state not final) is unpublished there
        (private, no ``publishAt``; ``videos.list`` 1 unit + ``videos.update`` 50) or, with
        ``delete=True``, deleted (``videos.delete`` 50), through ``videos`` (a
        :class:`~langflix_scheduler.youtube.videos.VideoClient` on the channel's token, e.g.
        ``YouTubeUploader``); see :mod:`langflix_scheduler.changes` for the flow and what
        happens when YouTube's answer is lost. It ends ``cancelled`` with video state
        ``unpublished`` or ``deleted``.

        With ``channel``, a schedule of another channel is refused (not found, nothing changed).
        A ``needs_review`` schedule is refused too: its video may be on YouTube, publishing in
        the slot it holds, so freeing the slot could let a second video be booked there. Check
        the channel first. ``requested_by`` is who cancels, for the timeline.

        Raises:
            ScheduleNotFoundError: no such schedule (on ``channel``, when given).
            InvalidTransitionError: it cannot be cancelled (uploading, needs review, already
                public or final, a change pending), or it is uploaded and ``videos`` is None.
            UploadError: YouTube refused (nothing changed; the schedule was put back).
            QuotaExceededError: the quota day has no room for the calls (nothing sent).
            ChangePendingError: YouTube's answer was lost; a processor run finishes it.
        """
        schedule_id = _schedule_id(schedule_id)
        who = history.check_actor(requested_by)
        client = self._client_for_change(schedule_id, channel, videos, "cancel", requested_by)
        if client is not None:
            row = self.video_changes.cancel(
                schedule_id,
                videos=client,
                delete=bool(delete),
                channel=channel,
                requested_by=requested_by,
            )
            return _to_domain(row)

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            entry = history.cancelled(
                row.id, at=self.now(), publish=row.scheduled_publish_time, actor=who
            )
            timeline.append(session.connection(), entry)
            self._free_slot(row, days, quota)

        row = self._change_scheduled(schedule_id, channel, "cancel", "cancel schedule", apply)
        logger.info("cancelled schedule %d", schedule_id)
        return _to_domain(row)

    def _free_slot(
        self,
        row: Schedule,
        days: Mapping[date, DailyLimit],
        quota: Mapping[tuple[date, str], QuotaUsage],
    ) -> None:
        """Cancel a locked row: its day count, reserved quota, slot and content key freed."""
        ledger.count_down(days[row.publish_date], row.video_type)
        ledger.release_reservation(quota, row.quota_date, dict(row.reserved_quota or {}))
        row.upload_status = UploadStatus.CANCELLED.value
        row.slot_key = None
        row.fingerprint_key = None
        row.reserved_quota = {}
        clear_lease(row)
        row.updated_at = self.now()

    def _change_scheduled(
        self,
        schedule_id: int,
        channel: str | None,
        verb: str,
        operation: str,
        apply: ledger.Apply,
        *,
        new_days: Callable[[Schedule], Iterable[date]] = lambda _r: (),
        new_keys: Callable[[Schedule], Iterable[tuple[date, str]]] = lambda _r: (),
    ) -> Schedule:
        """:func:`ledger.change_schedule` for a ``scheduled`` row (``verb`` names the refused
        transition): the row must exist (on ``channel``) and still be ``scheduled``."""

        def scheduled(row: Schedule) -> bool:
            if row.upload_status != UploadStatus.SCHEDULED:
                raise _not_scheduled(schedule_id, row.upload_status, verb)
            return True

        row = ledger.change_schedule(
            self._db,
            operation,
            schedule_id,
            limits=self.config.quota_policy.buckets,
            allowed=scheduled,
            apply=apply,
            new_days=new_days,
            new_keys=new_keys,
            peek=lambda: self._peek(schedule_id, channel),
            project=self.config.api_project,
            tries=_MAX_SEARCH_ROUNDS,
            exhausted=lambda: InvalidTransitionError(schedule_id, "changing", verb),
        )
        if row is None:
            raise ScheduleNotFoundError(schedule_id)
        return row

    def reschedule(
        self,
        schedule_id: int,
        new_time: datetime,
        *,
        channel: str | None = None,
        videos: VideoClient | None = None,
        requested_by: str = "library",
    ) -> ScheduledVideo:
        """Move a schedule to ``new_time``, moving its slot, day count and reservations.

        A ``scheduled`` schedule moves locally. A schedule whose video is already on YouTube
        and not yet public (``completed``, video state not final) has its ``publishAt`` moved
        there through ``videos`` (``videos.list`` 1 unit + ``videos.update`` 50, the whole
        ``status`` part sent back, still private); see :meth:`cancel` and
        :mod:`langflix_scheduler.changes`. ``new_time`` must be at least ``min_lead_time``
        ahead either way.

        With ``channel``, a schedule of another channel is refused (not found, nothing changed).
        ``requested_by`` is who moves it, for the timeline.

        Raises:
            InvalidScheduleError: bad ``new_time`` (naive, in the past, < ``min_lead_time``).
            SlotUnavailableError: ``new_time`` is booked (carries ``next_available``).
            QuotaExceededError: the new day or quota day is full.
            ScheduleNotFoundError / InvalidTransitionError / UploadError /
            ChangePendingError: as for :meth:`cancel`.
        """
        schedule_id = _schedule_id(schedule_id)
        slot = _aware(new_time, "new_time").replace(microsecond=0)
        self._check_window(slot, "new_time", self.now())
        new_day_date = channel_date_of(slot, self.config.zone)
        who = history.check_actor(requested_by)
        client = self._client_for_change(schedule_id, channel, videos, "reschedule", requested_by)
        # The time and quota day of the current transaction (set when its locks are chosen).
        at: dict[str, Any] = {}

        def new_keys(peek: Schedule) -> list[tuple[date, str]]:
            at["now"] = now = self.now()
            at["qday"] = qday = self.quota_date_for(slot, now=now)
            return [(qday, b) for b in (peek.reserved_quota or {})]

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            if slot == row.slot_key:
                return
            old = row.scheduled_publish_time
            self._move(session, row, slot, new_day_date, days, quota, at["qday"], at["now"])
            entry = history.rescheduled(row.id, at=at["now"], old=old, new=slot, actor=who)
            timeline.append(session.connection(), entry)

        try:
            if client is not None:
                row = self.video_changes.reschedule(
                    schedule_id, slot, videos=client, channel=channel, requested_by=requested_by
                )
            else:
                row = self._change_scheduled(
                    schedule_id,
                    channel,
                    "reschedule",
                    "reschedule",
                    apply,
                    new_days=lambda _r: [new_day_date],
                    new_keys=new_keys,
                )
        except _SlotTaken:
            peek = self._peek(schedule_id, channel)
            raise SlotUnavailableError(
                slot,
                "already booked",
                next_available=self._next_or_none(
                    VideoType(peek.video_type), slot, peek.channel_id, None
                ),
            ) from None
        logger.info("rescheduled %d to %s", schedule_id, slot.isoformat())
        return _to_domain(row)

    def _move(
        self,
        session: Session,
        row: Schedule,
        slot: datetime,
        new_day_date: date,
        days: Mapping[date, DailyLimit],
        quota: Mapping[tuple[date, str], QuotaUsage],
        new_qday: date,
        now: datetime,
    ) -> None:
        """Move a locked ``scheduled`` row to ``slot``: check the new day's limit and quota
        (released first, so the check sees the quota day as it will be), then move the counts."""
        vt = VideoType(row.video_type)
        reserved = dict(row.reserved_quota or {})
        if new_day_date != row.publish_date:
            self._check_day(getattr(days[new_day_date], _COUNT_COLUMN[vt]), new_day_date, vt)
        if new_qday != row.quota_date:
            ledger.release_reservation(quota, row.quota_date, reserved)
            self._check_quota(
                {k: q.reserved + q.used for k, q in quota.items()}, new_qday, reserved
            )
            ledger.reserve(quota, new_qday, reserved)
        if bookings.taken_among(session.connection(), row.channel_id, [slot]):
            raise _SlotTaken(str(slot))
        if new_day_date != row.publish_date:
            ledger.count_down(days[row.publish_date], vt)
            ledger.count_up(days[new_day_date], vt)
        row.scheduled_publish_time = slot
        row.slot_key = slot
        row.publish_date = new_day_date
        row.quota_date = new_qday
        row.next_attempt_at = None
        row.updated_at = now
        try:
            bookings.flush_schedule(session, slot)
        except _Held as exc:  # the fingerprint does not move: any unique refusal is the slot's
            raise _SlotTaken(str(slot)) from exc

    # -- changes of plan after upload (the flow: langflix_scheduler/changes.py) ----------------

    @functools.cached_property
    def video_changes(self) -> changes.VideoChanges:
        """The change-of-plan flow on this manager (used by ``reschedule``, ``cancel``,
        ``update_video``, and by processor runs recovering pending changes)."""
        return changes.VideoChanges(
            self._db,
            self.config,
            self.now,
            peek=self._peek,
            move=self._move_uploaded,
            free=self._free_slot,
            recorder=self.api_call_recorder,
        )

    def _move_uploaded(
        self,
        session: Session,
        row: Schedule,
        slot: datetime,
        day: date,
        days: Mapping[date, DailyLimit],
        now: datetime,
    ) -> None:
        """:meth:`_move` for an uploaded row: it reserves no quota, and its quota day (the day
        its upload spent) stays."""
        self._move(session, row, slot, day, days, {}, row.quota_date, now)

    def _client_for_change(
        self,
        schedule_id: int,
        channel: str | None,
        videos: VideoClient | None,
        verb: str,
        requested_by: object = "library",
    ) -> VideoClient | None:
        """``videos`` when the schedule's video is on YouTube (the change goes there), None when
        it is not uploaded (a local change). Uploaded without ``videos``: refused."""
        row = self._peek(schedule_id, channel)
        if row.upload_status != UploadStatus.COMPLETED:
            return None
        if not isinstance(requested_by, str) or not requested_by.strip():
            raise InvalidScheduleError("requested_by", "must be a non-empty string")
        if videos is None:
            raise InvalidTransitionError(
                schedule_id,
                row.upload_status,
                verb,
                hint="its video is already on YouTube: pass videos= (a VideoClient on the "
                "channel's token, such as YouTubeUploader) to change it there",
            )
        if not is_video_client(videos):
            raise InvalidTransitionError(
                schedule_id,
                row.upload_status,
                verb,
                hint=f"its video is already on YouTube and the client given "
                f"({type(videos).__name__}) cannot change videos there (no VideoClient)",
            )
        return videos

    def update_video(
        self,
        schedule_id: int,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        thumbnail_path: str | os.PathLike[str] | None = None,
        videos: VideoClient | None = None,
        channel: str | None = None,
        requested_by: str = "library",
    ) -> ScheduledVideo:
        """Change the title, description, tags or thumbnail of a schedule before it is public.

        A schedule not uploaded yet has its stored metadata changed (the upload sends it). An
        uploaded one (not yet public, not final) is changed on YouTube through ``videos``:
        ``videos.list`` (1 unit), ``videos.update(part=snippet)`` (50, sent with every snippet
        field so nothing is reset), plus ``thumbnails.set`` (50) when ``thumbnail_path`` is
        given; see :mod:`langflix_scheduler.changes`. Metadata is validated against YouTube's
        limits before anything is written or sent.

        Raises:
            InvalidScheduleError: invalid metadata (names the field), or nothing to change.
            ScheduleNotFoundError / InvalidTransitionError / UploadError /
            QuotaExceededError / ChangePendingError: as for :meth:`cancel`.
        """
        schedule_id = _schedule_id(schedule_id)
        fields = _update_fields(title, description, tags, thumbnail_path)
        client = self._client_for_change(schedule_id, channel, videos, "update", requested_by)
        if client is not None:
            row = self.video_changes.update(
                schedule_id, videos=client, channel=channel, requested_by=requested_by, **fields
            )
            return _to_domain(row)

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            meta, _changed = merged_metadata(row, **fields)
            if meta.operations() != VideoMetadata.from_stored(row.video_metadata).operations():
                raise InvalidScheduleError(
                    "thumbnail_path",
                    "a thumbnail added to a schedule not uploaded yet changes the quota it "
                    "reserved: cancel it and book it again with the thumbnail",
                )
            row.video_metadata = meta.to_json()
            row.updated_at = self.now()

        row = self._change_scheduled(schedule_id, channel, "update", "update metadata", apply)
        return _to_domain(row)

    def video_changes_of(self, schedule_id: int) -> list[changes.VideoChangeRecord]:
        """Every change of plan of one schedule, oldest first (pending ones included)."""
        number = _schedule_id(schedule_id)
        rows = self._db.run_core(
            "read video changes",
            lambda c: changes_db.changes_of(c, number),
            read_only=True,
        )
        return [changes.VideoChangeRecord.of(r) for r in rows]

    def pending_video_changes(self, *, limit: int = 100) -> list[changes.VideoChangeRecord]:
        """Changes of plan still pending (their API call in flight, or waiting for a processor
        run to finish them), oldest first."""
        rows = self._db.run_core(
            "read pending video changes",
            lambda c: changes_db.pending_changes(c, limit=limit),
            read_only=True,
        )
        return [changes.VideoChangeRecord.of(r) for r in rows]

    # -- maintenance ---------------------------------------------------------------------------

    def recalculate_quota(
        self, *, start: date | None = None, end: date | None = None
    ) -> RecalculationReport:
        """Rebuild the counter rows from the schedules and the quota ledger; idempotent.

        Day counts and ``reserved`` are recounted from the schedules; ``used`` is the sum of the
        quota ledger (``youtube_api_calls``: every API call sent, on the Pacific day it was
        sent, whatever happened to its upload afterwards).

        ``start``/``end`` (inclusive) bound the channel days and quota days examined. Counters are
        locked (day rows, then quota rows, sorted) before the schedules are recounted, so the
        result is exact even while other processes schedule.
        """
        for name, value in (("start", start), ("end", end)):
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise InvalidScheduleError(name, "must be a date")
        if start and end and start > end:
            raise InvalidScheduleError("start", "must not be after end")
        keys: tuple[set[tuple[str, date]], set[tuple[str, date, str]]] = (set(), set())
        for _ in range(_MAX_RECALC_ROUNDS):
            try:
                return self._db.run(
                    "recalculate quota",
                    lambda s, k=keys: self._recalculate(s, start, end, k),  # type: ignore[misc]
                )
            except _Restart as restart:
                keys = (keys[0] | restart.keys[0], keys[1] | restart.keys[1])
        raise InvalidTransitionError(0, "busy", "recalculate quota (counters kept changing)")

    def _recount(
        self, session: Session, start: date | None, end: date | None
    ) -> tuple[
        dict[tuple[str, date], dict[str, int]], dict[tuple[str, date, str], dict[str, int]], int
    ]:
        day_counts: dict[tuple[str, date], dict[str, int]] = {}
        quota: dict[tuple[str, date, str], dict[str, int]] = {}
        rows = counters.recount_rows(session, start, end)

        def in_range(d: date) -> bool:
            return (start is None or d >= start) and (end is None or d <= end)

        for ch, pday, vtype, slot_key, project, qday, status, reserved in rows:
            if in_range(pday) and slot_key is not None:
                counts = day_counts.setdefault((ch, pday), {"final_count": 0, "short_count": 0})
                counts[_COUNT_COLUMN[VideoType(vtype)]] += 1
            if in_range(qday) and status in _RESERVING:
                for bucket, amount in (reserved or {}).items():
                    q = quota.setdefault((project, qday, bucket), {"reserved": 0, "used": 0})
                    q["reserved"] += int(amount)
        # ``used`` is what the quota ledger holds: every call sent, on the day it was sent
        # (including those of attempts that died and of schedules that later failed).
        for key, amount in api_calls.used_by_quota_day(session.connection(), start, end).items():
            quota.setdefault(key, {"reserved": 0, "used": 0})["used"] += amount
        return day_counts, quota, len(rows)

    def _recalculate(
        self,
        session: Session,
        start: date | None,
        end: date | None,
        extra: tuple[set[tuple[str, date]], set[tuple[str, date, str]]],
    ) -> RecalculationReport:
        dialect = self._db.dialect
        existing_days, existing_quota = counters.existing_counter_keys(session, start, end)
        locked_days, locked_quota = ledger.lock_counters(
            session,
            dialect,
            existing_days | extra[0],
            existing_quota | extra[1],
            self.config.quota_policy.buckets,
        )
        day_counts, quota, checked = self._recount(session, start, end)
        missing = (set(day_counts) - set(locked_days), set(quota) - set(locked_quota))
        if missing[0] or missing[1]:
            raise _Restart(missing)
        corrections = [
            *_correct(
                DailyLimit.__tablename__,
                locked_days,
                day_counts,
                {"final_count": 0, "short_count": 0},
            ),
            *_correct(QuotaUsage.__tablename__, locked_quota, quota, {"reserved": 0, "used": 0}),
        ]
        for c in corrections:
            logger.warning(
                "recalculate: %s %s %s: %d -> %d", c.table, c.key, c.column, c.old, c.new
            )
        return RecalculationReport(
            start=start, end=end, rows_checked=checked, corrections=tuple(corrections)
        )

    # -- the dry-run plan (shared by `process --dry-run` and other front ends) ------------------

    def dry_run_plan(
        self,
        *,
        channel: str | None = None,
        api_project: str | None = None,
        now: datetime | None = None,
    ) -> dry_run.DryRunPlan:
        """What a processor run at ``now`` (default: the clock) for ``channel`` and
        ``api_project`` (default: the configured ones) would take and send, with no network and
        no writes. See :func:`langflix_scheduler.dry_run.dry_run_plan`."""
        at = None if now is None else _aware(now, "now")
        return dry_run.dry_run_plan(self, channel=channel, api_project=api_project, now=at)

    # == dashboard reads and retry (web dashboard, issue 13) ======================================
    # Thin public methods over db/dashboard.py; kept in this one block on purpose.

    def calendar(
        self, start: date, end: date, *, channel: str | None = None
    ) -> list[reports.CalendarDay]:
        """Channel days ``start..end`` (inclusive, in the channel's time zone): every configured
        slot of every type, booked or free, and every schedule publishing on those days (all
        statuses but ``cancelled``). At most 400 days."""
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, date) or isinstance(value, datetime):
                raise InvalidScheduleError(name, "must be a date")
        if end < start:
            raise InvalidScheduleError("end", "must not be before start")
        if (end - start).days > 400:
            raise InvalidScheduleError("end", "at most 400 days at once")
        ch = self._channel(channel)
        zone = self.config.zone
        lo = datetime.combine(start, datetime.min.time(), tzinfo=zone).astimezone(UTC)
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(
            UTC
        )
        rows = self._db.run_core(
            "read calendar",
            lambda c: dashboard.calendar_rows(c, ch, lo, hi),
            read_only=True,
        )
        return reports.build_calendar(
            rows,
            start=start,
            end=end,
            zone=zone,
            publish_times=self.config.publish_times,
            window=self._window(self.now()),
        )

    def quota_usage(
        self, start: date, end: date, *, api_project: str | None = None
    ) -> list[reports.QuotaDayUsage]:
        """Reserved and used quota per (API project, Pacific quota day, bucket) for quota days
        ``start..end`` (inclusive). Days and buckets without a counter row are reported as 0
        for the configured buckets of the projects asked for (``api_project``, or the configured
        one plus every project with rows); limits are the configured ones."""
        for name, value in (("start", start), ("end", end)):
            if not isinstance(value, date) or isinstance(value, datetime):
                raise InvalidScheduleError(name, "must be a date")
        if end < start:
            raise InvalidScheduleError("end", "must not be before start")
        if (end - start).days > 400:
            raise InvalidScheduleError("end", "at most 400 days at once")
        rows = self._db.run_core(
            "read quota usage",
            lambda c: dashboard.quota_rows(c, start, end, api_project),
            read_only=True,
        )
        policy = self.config.quota_policy
        found = {(r["api_project"], r["quota_date"], r["bucket"]): r for r in rows}
        projects = {api_project} if api_project is not None else {self.config.api_project}
        projects |= {k[0] for k in found}
        buckets = set(policy.buckets) | {k[2] for k in found}
        out: list[reports.QuotaDayUsage] = []
        for project in sorted(projects):
            day = start
            while day <= end:
                for bucket in sorted(buckets):
                    r = found.get((project, day, bucket))
                    if r is None and bucket not in policy.buckets:
                        continue
                    out.append(
                        reports.QuotaDayUsage(
                            api_project=project,
                            quota_date=day,
                            bucket=bucket,
                            reserved=int(r["reserved"]) if r else 0,
                            used=int(r["used"]) if r else 0,
                            limit=policy.buckets.get(bucket, 0),
                        )
                    )
                day += timedelta(days=1)
        return out

    def timeline(
        self, schedule_id: int, *, channel: str | None = None, api_calls: bool = False
    ) -> list[reports.TimelineEvent]:
        """The life of one schedule, oldest first: booked, each attempt, retries, deferrals,
        the upload and what followed, each change with who made it and when.

        A schedule booked before timelines were written has no entries for its past: its
        ``created_at`` stands in for ``booked`` and its ``uploaded_at`` for ``uploaded``. With
        ``api_calls``, the schedule's quota-ledger calls are included as ``api_call`` events.

        Raises:
            ScheduleNotFoundError: no such schedule (on ``channel``, when given).
        """
        number = _schedule_id(schedule_id)
        only = None if channel is None else self._channel(channel)

        def read(conn: Connection) -> tuple[Any, Sequence[timeline.TimelineEntry], list[Any]]:
            times = timeline.schedule_times(conn, number)
            if times is None or (only is not None and times[0] != only):
                raise ScheduleNotFoundError(number, channel=only)
            calls = dashboard.api_calls_of_schedule(conn, number) if api_calls else []
            return times, timeline.entries_of(conn, number), calls

        times, entries, calls = self._db.run_core("read timeline", read, read_only=True)
        _, created_at, uploaded_at, publish = times
        return history.merge(
            entries,
            created_at=created_at,
            uploaded_at=uploaded_at,
            publish=publish,
            calls=[reports.ApiCallRecord(**r) for r in calls],
        )

    def api_calls(self, schedule_id: int) -> list[reports.ApiCallRecord]:
        """The quota ledger of one schedule (every charged API call), oldest first."""
        number = _schedule_id(schedule_id)
        rows = self._db.run_core(
            "read api calls",
            lambda c: dashboard.api_calls_of_schedule(c, number),
            read_only=True,
        )
        return [reports.ApiCallRecord(**r) for r in rows]

    def record_api_call(
        self,
        report: ApiCallReport,
        *,
        channel: str | None = None,
        api_project: str | None = None,
        now: datetime | None = None,
        schedule_id: int | None = None,
        within_limit: bool = False,
    ) -> reports.RecordedApiCall | None:
        """Write one API call made outside an upload (``auth --check``'s ``channels.list``, a
        verification's ``videos.list``, a change of plan's ``videos.update``) to the quota
        ledger and add its cost to ``used`` of its quota day, *before* it is sent.

        One short transaction: the quota-day row (created if absent) is locked first, then the
        ledger row is appended (lock order: :mod:`langflix_scheduler.ledger`). Call it from an
        ``on_call`` callback on a :attr:`CallPhase.SENDING` report (see
        :meth:`api_call_recorder`); when it raises, do not send the call (an uncounted call
        would let bookings exceed what YouTube allows that day).

        Args:
            report: the call about to be sent (phase ``SENDING``).
            channel: the channel it is made for (default: the configured one).
            api_project: the Google Cloud project it spends (default: the configured one).
            now: when it is sent (default: the clock); its Pacific-time quota day is charged.
            schedule_id: the schedule it is made for, if one (shown in its ledger).
            within_limit: refuse the call when it does not fit beside what its quota day
                already holds (reserved by bookings + used): for calls nothing reserved.

        Returns:
            The row written, or None when the quota policy has no price for the operation
            (logged; the call is not counted, as the processor does).

        Raises:
            InvalidScheduleError: ``report`` is not a ``SENDING`` report, or a name is invalid.
            QuotaExceededError: ``within_limit`` and the quota day has no room (nothing written).
            StorageError: it could not be written (nothing was written; do not send the call).
        """
        if not isinstance(report, ApiCallReport) or report.phase is not CallPhase.SENDING:
            raise InvalidScheduleError("report", "must be an ApiCallReport of phase SENDING")
        name = self._channel(channel)
        project = self.config.api_project if api_project is None else api_project
        if not isinstance(project, str) or not project or len(project) > 64:
            raise InvalidScheduleError(
                "api_project", "must be a non-empty string of <= 64 characters"
            )
        policy = self.config.quota_policy
        priced = policy.costs.get(report.operation)
        if priced is None:
            logger.warning(
                "quota policy %s has no cost for %s; the call is not counted",
                policy.name,
                report.operation,
            )
            return None
        sent_at = _aware(now, "now") if now is not None else self.now()
        call = CallRecord(
            api_project=project,
            quota_date=quota_date_of(sent_at, self.config.quota_timezone),
            bucket=priced[0],
            operation=report.operation,
            cost=priced[1],
            sent_at=sent_at,
            call_key=api_calls.new_call_key(),
            channel_id=name,
            schedule_id=None if schedule_id is None else _schedule_id(schedule_id),
        )
        self._write_call(call, within_limit=within_limit)
        return reports.RecordedApiCall(
            call_key=call.call_key,
            api_project=call.api_project,
            channel=name,
            operation=call.operation,
            bucket=call.bucket,
            cost=call.cost,
            quota_date=call.quota_date,
            sent_at=call.sent_at,
        )

    def _write_call(self, call: CallRecord, *, within_limit: bool = False) -> None:
        """Append ``call`` (and its cost to ``used``); after a lost COMMIT answer its call key
        tells whether it was written."""
        limits = self.config.quota_policy.buckets
        try:
            self._db.run_core(
                "record an API call",
                lambda c: api_calls.record_calls(
                    c, self._db.dialect, [call], limits, within_limit=within_limit
                ),
            )
        except OutcomeUnknownError:
            written = self._db.run_core(
                "read the quota ledger",
                lambda c: api_calls.call_exists(c, call.call_key),
                read_only=True,
            )
            if not written:
                raise

    def refuse_api_call(self, call_key: str) -> bool:
        """Mark a call written by :meth:`record_api_call` as refused by YouTube for quota
        (``403 quotaExceeded``): cost 0, its cost taken off ``used``. Idempotent; False when
        there is no such ``sent`` call.

        Raises:
            StorageError: the database could not be reached.
        """
        if not isinstance(call_key, str) or not call_key:
            raise InvalidScheduleError("call_key", "must be a non-empty string")
        limits = self.config.quota_policy.buckets
        return self._db.run_core(
            "refund a refused API call",
            lambda c: api_calls.refuse_call(c, self._db.dialect, call_key, limits),
        )

    def api_call_recorder(
        self,
        *,
        channel: str | None = None,
        api_project: str | None = None,
        schedule_id: int | None = None,
        within_limit: bool = False,
    ) -> CallCallback:
        """An ``on_call`` callback (for :func:`~langflix_scheduler.youtube.check_token`) that
        records each call with :meth:`record_api_call` before it is sent and marks it refused
        when YouTube refuses it for quota. What :meth:`record_api_call` raises propagates, so
        the call is not sent; a refusal that cannot be written is logged (the ledger then
        over-counts, which is safe)."""
        keys: dict[int, str] = {}

        def on_call(report: ApiCallReport) -> None:
            if report.phase is CallPhase.SENDING:
                recorded = self.record_api_call(
                    report,
                    channel=channel,
                    api_project=api_project,
                    schedule_id=schedule_id,
                    within_limit=within_limit,
                )
                if recorded is not None:
                    keys[report.call_id] = recorded.call_key
            elif report.phase is CallPhase.REFUSED and report.call_id in keys:
                try:
                    self.refuse_api_call(keys[report.call_id])
                except SchedulerError as exc:
                    logger.warning(
                        "could not mark %s as refused (%s); the ledger over-counts it",
                        report.operation,
                        exc,
                    )

        return on_call

    def known_names(self) -> reports.KnownNames:
        """Channels and API projects found in the database, plus the configured ones."""

        def read(conn: Connection) -> reports.KnownNames:
            channels = set(dashboard.known_channels(conn)) | {self.config.channel}
            projects = set(dashboard.known_projects(conn)) | {self.config.api_project}
            return reports.KnownNames(tuple(sorted(channels)), tuple(sorted(projects)))

        return self._db.run_core("read known names", read, read_only=True)

    def stored_totals(self) -> reports.StoredTotals:
        """Totals stored in the database (schedules by status, processor runs by outcome, the
        quota ledger, due lag), for metrics exporters."""
        now = self.now()
        lead = self.config.upload_lead_time

        def read(conn: Connection) -> reports.StoredTotals:
            schedules = {(ch, st): n for ch, st, n in dashboard.status_counts(conn)}
            runs = {
                r["outcome"]: {k: int(v) for k, v in r.items() if k != "outcome"}
                for r in dashboard.run_totals(conn)
            }
            calls = {
                (r["api_project"], r["operation"], r["outcome"]): (int(r["calls"]), int(r["cost"]))
                for r in dashboard.api_call_totals(conn)
            }
            due_since = [
                t - lead
                for t, retry_at in dashboard.due_rows(conn, now + lead)
                if retry_at is None or retry_at <= now
            ]
            lag = (now - min(due_since)).total_seconds() if due_since else 0.0
            return reports.StoredTotals(schedules, runs, calls, max(0.0, lag), len(due_since))

        return self._db.run_core("read stored totals", read, read_only=True)

    def retry_failed(
        self,
        schedule_id: int,
        *,
        new_time: datetime | None = None,
        channel: str | None = None,
        requested_by: str = history.DEFAULT_ACTOR,
    ) -> ScheduledVideo:
        """Put a ``failed`` schedule back to ``scheduled`` so the next processor run uploads it.

        It takes its slot again (its old publish time, or ``new_time``), counts on that channel
        day again and reserves its quota again, under the same locks and checks as
        :meth:`reschedule` (channel-day row, quota rows sorted, then the schedule row). Attempts
        start from 0; ``last_error`` is kept until the next attempt. ``requested_by`` is who
        books it again, for the timeline.

        Raises:
            ScheduleNotFoundError: no such schedule (on ``channel``, when given).
            InvalidTransitionError: it is not ``failed``.
            InvalidScheduleError: the publish time is outside the booking window (give
                ``new_time``).
            SlotUnavailableError: the instant was booked meanwhile (carries ``next_available``).
            QuotaExceededError: the day or quota day is full.
            DuplicateVideoError: the same content is active on the channel again.
        """
        schedule_id = _schedule_id(schedule_id)
        who = history.check_actor(requested_by)
        target: list[_RetryTarget] = []  # the latest peek's target; its quota day, under lock
        try:
            row = self._retry(schedule_id, channel, new_time, target, who)
        except _SlotTaken:
            t = target[0]
            raise SlotUnavailableError(
                t.slot,
                "already booked",
                next_available=self._next_or_none(t.video_type, t.slot, t.channel, None),
            ) from None
        if row is None:
            raise ScheduleNotFoundError(schedule_id)
        logger.info("schedule %d put back for a retry at %s", schedule_id, target[0].slot)
        return _to_domain(row)

    def _retry(
        self,
        schedule_id: int,
        channel: str | None,
        new_time: datetime | None,
        target: list[_RetryTarget],
        actor: str,
    ) -> Schedule | None:
        """:func:`ledger.change_schedule` for :meth:`retry_failed`: peek at the ``failed`` row
        and choose its target (kept in ``target``), lock the target's day and quota rows, then
        :meth:`_put_back`."""

        def failed(row: Schedule) -> bool:
            if row.upload_status != UploadStatus.FAILED:
                raise InvalidTransitionError(schedule_id, row.upload_status, "retry")
            return True

        def peek() -> Schedule:
            row = self._peek(schedule_id, channel)
            failed(row)
            target[:] = [self._retry_target(row, new_time)]
            target[0].actor = actor
            return row

        def new_keys(_seen: Schedule) -> list[tuple[date, str]]:
            t = target[0]
            t.now = self.now()
            t.qday = self.quota_date_for(t.slot, now=t.now)
            return [(t.qday, b) for b in t.cost]

        return ledger.change_schedule(
            self._db,
            "retry failed schedule",
            schedule_id,
            limits=self.config.quota_policy.buckets,
            allowed=failed,
            apply=lambda session, row, days, quota: self._put_back(
                session, row, days, quota, target[0]
            ),
            new_days=lambda _r: [target[0].day],
            new_keys=new_keys,
            peek=peek,
            project=self.config.api_project,
            tries=_MAX_SEARCH_ROUNDS,
            exhausted=lambda: InvalidTransitionError(schedule_id, "changing", "retry"),
            # Any change to the failed row since the peek (its time, its content) is read
            # again, not only a change of the counters it names.
            moved=lambda seen, row: row.updated_at != seen.updated_at,
        )

    def _retry_target(self, row: Schedule, new_time: datetime | None) -> _RetryTarget:
        """Where a retry of the failed ``row`` goes: its old publish time, or ``new_time``
        (checked against the booking window)."""
        field_name = "scheduled_publish_time" if new_time is None else "new_time"
        when = row.scheduled_publish_time if new_time is None else new_time
        slot = _aware(when, field_name).replace(microsecond=0)
        self._check_window(slot, field_name, self.now())
        return _RetryTarget(
            channel=row.channel_id,
            slot=slot,
            day=channel_date_of(slot, self.config.zone),
            video_type=VideoType(row.video_type),
            cost=self._cost(VideoMetadata.from_stored(row.video_metadata)),
        )

    def _put_back(
        self,
        session: Session,
        row: Schedule,
        days: Mapping[date, DailyLimit],
        quota: Mapping[tuple[date, str], QuotaUsage],
        t: _RetryTarget,
    ) -> None:
        """Book the locked ``failed`` row again at ``t``: check the day, the quota day, the
        slot and the content, count and reserve, and make it ``scheduled``."""
        assert t.qday is not None
        assert t.now is not None
        day = days[t.day]
        self._check_day(getattr(day, _COUNT_COLUMN[t.video_type]), t.day, t.video_type)
        self._check_quota({k: q.reserved + q.used for k, q in quota.items()}, t.qday, t.cost)
        if bookings.taken_among(session.connection(), row.channel_id, [t.slot]):
            raise _SlotTaken(str(t.slot))
        self._check_content_free(session, row)
        ledger.count_up(day, t.video_type)
        ledger.reserve(quota, t.qday, t.cost)
        row.upload_status = UploadStatus.SCHEDULED.value
        row.scheduled_publish_time = t.slot
        row.slot_key = t.slot
        row.publish_date = t.day
        row.quota_date = t.qday
        row.fingerprint_key = row.content_sha256
        row.reserved_quota = dict(t.cost)
        row.attempts = 0
        row.next_attempt_at = None
        clear_lease(row)
        row.upload_session_uri = None
        row.bytes_uploaded = 0
        row.updated_at = t.now
        entry = history.rebooked(row.id, at=t.now, publish=t.slot, actor=t.actor)
        timeline.append(session.connection(), entry)
        try:
            bookings.flush_schedule(session, t.slot)
        except _Held as exc:
            raise DuplicateVideoError(
                0,
                channel_id=row.channel_id,
                content_sha256=row.content_sha256 or "",
                status="active",
            ) from exc

    @staticmethod
    def _check_content_free(session: Session, row: Schedule) -> None:
        """Refuse to book ``row`` again while its content is live on the channel."""
        if row.content_sha256 is None:
            return
        holder = bookings.fingerprint_holder(session, row.channel_id, row.content_sha256)
        if holder is not None:
            raise DuplicateVideoError(
                holder[0],
                channel_id=row.channel_id,
                content_sha256=row.content_sha256,
                status=holder[1],
            )

    # == end of dashboard block ==================================================================
