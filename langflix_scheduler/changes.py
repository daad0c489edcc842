"""Changes of plan for a video already on YouTube: reschedule, unpublish, delete, update.

The flow never holds a database lock across an API call:

1. **Record** (one short transaction through :func:`langflix_scheduler.ledger.change_schedule`,
   so in the ledger's lock order): check, move the schedule locally (slot, day counters; an
   uploaded schedule holds no quota reservation), insert a ``pending`` change
   (``youtube_video_changes``: target, previous, who, ``lease_expires_at``) and the timeline
   entry ``change_requested``.
2. **Call** YouTube, each request written to the quota ledger before it is sent (refused when
   the quota day has no room beside the bookings' reservations): ``videos.list`` (1 unit: the
   current ``status`` part, which ``videos.update`` must send back whole), then
   ``videos.update(part=status)`` (50), ``videos.delete`` (50) or ``videos.update(part=snippet)``
   (50, plus ``thumbnails.set`` 50).
3. **Commit** (one short transaction): the change ``applied``, the schedule saying what YouTube
   holds, the timeline entry ``change_applied``.

A definite refusal (YouTube refused it, our quota ledger had no room, the credentials were
refused) puts the local side back and marks the change ``failed`` (``change_failed``); when the
old slot was booked meanwhile the schedule is marked ``mismatch`` with the reason instead. A
call whose outcome is unknown (a lost answer, a 5xx) leaves the change ``pending``:
:class:`ChangePendingError` is raised, and once its lease has expired the next processor run
asks YouTube what it holds (:meth:`VideoChanges.recover`): it marks the change applied when
YouTube already holds the target (no second call), else sends it again, or rolls it back
(``rolled_back``) when it cannot be sent any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from . import ledger
from .change_local import (
    ChangeKind,
    ChangeState,
    Move,
    applied_fields,
    checks_resume,
    describe,
    held_from_checks,
    iso,
    merged_metadata,
    parse_iso,
    previous_of,
    put_back_cancel,
    put_back_reschedule,
)
from .config import SchedulerConfig
from .db import changes as changes_db
from .db import timeline
from .db.engine import Database
from .db.models import DailyLimit, QuotaUsage, Schedule
from .db.schedules import lock_schedule
from .db.types import Session
from .domain import UploadStatus, VideoMetadata, VideoState, VideoType
from .errors import (
    AuthorizationError,
    ChangePendingError,
    InvalidTransitionError,
    LockTimeoutError,
    PermanentUploadError,
    QuotaExceededError,
    QuotaExhaustedError,
    SchedulerError,
    StorageError,
    ThumbnailNotSetError,
    TransientUploadError,
    UploadLimitExceededError,
)
from .slots import channel_date_of
from .youtube.uploader import PUBLISH_AT_MIN_LEAD, ApiCallReport, CallCallback, CallPhase
from .youtube.videos import RemoteVideo, VideoClient, snippet_applied

__all__ = [
    "CHANGE_LEASE",
    "ChangeKind",
    "ChangePendingError",
    "ChangeState",
    "RecoveredChange",
    "RecoveryReport",
    "VideoChangeRecord",
    "VideoChanges",
]

logger = logging.getLogger(__name__)

#: How long a requester may be working on a change (its ``videos.list``, retried with backoff
#: for up to ~7 minutes, then the write) before a processor run takes the change over (asks
#: YouTube what it holds). Each write renews it, fenced on the lease its sender holds, right
#: before it is sent: a sender that lost the change sends nothing.
CHANGE_LEASE = timedelta(minutes=15)
#: A publish time is sent only when at least this far ahead (YouTube publishes a past
#: ``publishAt`` at once; the client refuses one less than ``PUBLISH_AT_MIN_LEAD`` ahead, on
#: its own clock). The request was checked against ``min_lead_time`` moments before; a
#: recovery, later, checks ``min_lead_time`` again.
SEND_MARGIN = PUBLISH_AT_MIN_LEAD + timedelta(minutes=1)
#: Verification of a video with a pending change waits this long past the change's lease (the
#: recovery, earlier in the same processor run, finishes the change first).
CHECK_HOLD = timedelta(minutes=1)
#: Most expired changes one processor run recovers.
MAX_RECOVER_PER_RUN = 50

#: ``AuthorizationError.reason`` of a refresh token Google refused (see
#: :func:`langflix_scheduler.youtube.auth.classify_refresh_error`).
_INVALID_GRANT = "invalid_grant"

#: Refusals after which nothing changed on YouTube: the change is put back.
_DEFINITE = (
    PermanentUploadError,
    QuotaExhaustedError,
    QuotaExceededError,
    AuthorizationError,
    UploadLimitExceededError,
    StorageError,
    LockTimeoutError,
)
#: The API writes of a change: each renews the change's lease right before it is sent.
_WRITES = frozenset({"videos.update", "videos.delete", "thumbnails.set"})
_CHANGEABLE_STATES = frozenset(
    {None, *(s.value for s in VideoState if not s.is_final and s is not VideoState.PUBLISHED)}
)


@dataclass(frozen=True, kw_only=True)
class VideoChangeRecord:
    """A change of plan as stored (``ScheduleManager.video_changes_of`` and
    ``pending_video_changes``).

    ``target``/``previous``: what is changed, as JSON (``publish_at``, ``metadata`` ...).
    """

    id: int
    schedule_id: int
    kind: ChangeKind
    state: ChangeState
    target: Mapping[str, Any]
    previous: Mapping[str, Any]
    requested_at: datetime
    requested_by: str | None
    lease_expires_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, row: changes_db.ChangeRow) -> VideoChangeRecord:
        return cls(
            id=row.id,
            schedule_id=row.schedule_id,
            kind=ChangeKind(row.kind),
            state=ChangeState(row.state),
            target=row.target,
            previous=row.previous,
            requested_at=row.requested_at,
            requested_by=row.requested_by,
            lease_expires_at=row.lease_expires_at,
            finished_at=row.finished_at,
            error=row.error,
        )


@dataclass(frozen=True, kw_only=True)
class RecoveredChange:
    """A change a recovery pass finished: ``outcome`` ``applied`` or ``rolled_back`` (with
    ``reason``: why it could not be sent any more)."""

    change_id: int
    schedule_id: int
    kind: ChangeKind
    channel: str
    video_id: str
    outcome: str
    reason: str | None = None


@dataclass
class RecoveryReport:
    """What one recovery pass did with expired pending changes.

    ``finished``: the changes applied or rolled back, in order. ``refused``: channels whose
    refresh token was refused (``invalid_grant``) -> (schedule id, reason) of the change that
    found out; their changes stay pending (nothing was sent) and the rest of the channel's
    changes were skipped (the processor pauses the channel).
    """

    applied: int = 0
    rolled_back: int = 0
    still_pending: int = 0
    schedule_ids: list[int] = field(default_factory=list)
    finished: list[RecoveredChange] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass
class _Change:
    """A recorded change, as the flow carries it between its transactions: ``lease`` is the
    lease its carrier holds (renewed before each write); ``sent``: a write was reported as
    being sent (before it, a failure changed nothing on YouTube)."""

    id: int
    schedule_id: int
    kind: ChangeKind
    target: Mapping[str, Any]
    previous: Mapping[str, Any]
    video_id: str
    channel: str
    api_project: str
    requested_by: str
    lease: datetime | None
    sent: bool = False


class _LeaseLost(ChangePendingError):
    """A processor run took the change over (its lease had expired): this carrier sends
    nothing more."""


Recorder = Callable[..., CallCallback]
Peek = Callable[[int, str | None], Schedule]
Free = Callable[[Schedule, Mapping[date, DailyLimit], Mapping[tuple[date, str], QuotaUsage]], None]


class VideoChanges:
    """The change-of-plan flow (module docstring) on one manager's database and configuration.

    Built by :class:`~langflix_scheduler.manager.ScheduleManager` (its ``reschedule``,
    ``cancel`` and ``update_video`` delegate here for uploaded schedules) with the manager's own
    ledger moves, so the local side of a change is the same code as a booking's.
    """

    def __init__(
        self,
        db: Database,
        config: SchedulerConfig,
        clock: Callable[[], datetime],
        *,
        peek: Peek,
        move: Move,
        free: Free,
        recorder: Recorder,
    ) -> None:
        self._db = db
        self._config = config
        self._now = clock
        self._peek = peek
        self._move = move
        self._free = free
        self._recorder = recorder

    # -- the requests ----------------------------------------------------------------------------

    def reschedule(
        self,
        schedule_id: int,
        slot: datetime,
        *,
        videos: VideoClient,
        channel: str | None,
        requested_by: str,
    ) -> Schedule:
        """Move an uploaded video's ``publishAt`` to ``slot`` (already checked against the
        window). Raises ``bookings.SlotTaken`` when the slot is booked."""
        new_day = channel_date_of(slot, self._config.zone)

        def local(session: Session, row: Schedule, days: Any, quota: Any, now: datetime) -> None:
            if (row.video_metadata or {}).get("privacy", "public") != "public":
                raise InvalidTransitionError(
                    row.id,
                    "completed",
                    "reschedule",
                    hint="it was uploaded unlisted/private without publishAt: YouTube has "
                    "no publish time to move",
                )
            if slot != row.slot_key:
                self._move(session, row, slot, new_day, days, now)

        change = self._record(
            schedule_id,
            ChangeKind.RESCHEDULE,
            {"publish_at": iso(slot)},
            local,
            channel=channel,
            requested_by=requested_by,
            new_days=[new_day],
        )
        return self._send(change, videos)

    def cancel(
        self,
        schedule_id: int,
        *,
        videos: VideoClient,
        delete: bool,
        channel: str | None,
        requested_by: str,
    ) -> Schedule:
        """Unpublish (private, no ``publishAt``) or delete an uploaded video; its slot, day
        count and content key are freed at once."""
        kind = ChangeKind.DELETE if delete else ChangeKind.UNPUBLISH

        def local(session: Session, row: Schedule, days: Any, quota: Any, now: datetime) -> None:
            self._free(row, days, quota)

        target: dict[str, Any] = {"deleted": True} if delete else {"publish_at": None}
        change = self._record(
            schedule_id, kind, target, local, channel=channel, requested_by=requested_by
        )
        return self._send(change, videos)

    def update(
        self,
        schedule_id: int,
        *,
        title: str | None,
        description: str | None,
        tags: tuple[str, ...] | None,
        thumbnail_path: str | None,
        videos: VideoClient,
        channel: str | None,
        requested_by: str,
    ) -> Schedule:
        """Change title/description/tags/thumbnail of an uploaded video before it is public."""
        target: dict[str, Any] = {}

        def local(session: Session, row: Schedule, days: Any, quota: Any, now: datetime) -> None:
            meta, changed = merged_metadata(
                row, title=title, description=description, tags=tags, thumbnail_path=thumbnail_path
            )
            target.update(metadata=meta.to_json(), changed=changed, thumbnail=thumbnail_path)

        # Validate before anything is written (the record re-validates under the lock).
        merged_metadata(
            self._peek(schedule_id, channel),
            title=title,
            description=description,
            tags=tags,
            thumbnail_path=thumbnail_path,
        )
        change = self._record(
            schedule_id,
            ChangeKind.UPDATE,
            target,
            local,
            channel=channel,
            requested_by=requested_by,
        )
        return self._send(change, videos)

    # -- step 1: record --------------------------------------------------------------------------

    def _record(
        self,
        schedule_id: int,
        kind: ChangeKind,
        target: dict[str, Any],
        local: Callable[[Session, Schedule, Any, Any, datetime], None],
        *,
        channel: str | None,
        requested_by: str,
        new_days: list[date] | None = None,
    ) -> _Change:
        verb = "cancel" if kind in (ChangeKind.UNPUBLISH, ChangeKind.DELETE) else kind.value
        out: dict[str, _Change] = {}

        def allowed(row: Schedule) -> bool:
            _check_changeable(row, verb)
            return True

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            out["change"] = self._write_change(
                session, row, (days, quota), kind, target, local, verb, requested_by
            )

        row = ledger.change_schedule(
            self._db,
            f"record {kind.value}",
            schedule_id,
            limits=self._config.quota_policy.buckets,
            allowed=allowed,
            apply=apply,
            new_days=lambda _r: new_days or [],
            peek=lambda: self._peek(schedule_id, channel),
            project=self._config.api_project,
            exhausted=lambda: InvalidTransitionError(schedule_id, "changing", verb),
        )
        if row is None or "change" not in out:
            raise InvalidTransitionError(schedule_id, "gone", verb)
        logger.info("schedule %d: change #%d (%s) recorded", schedule_id, out["change"].id, kind)
        return out["change"]

    def _write_change(
        self,
        session: Session,
        row: Schedule,
        counters: tuple[Any, Any],
        kind: ChangeKind,
        target: dict[str, Any],
        local: Callable[[Session, Schedule, Any, Any, datetime], None],
        verb: str,
        requested_by: str,
    ) -> _Change:
        """Under the locks: refuse a second pending change, make the local side, hold
        verification off, insert the pending change and its timeline entry."""
        conn = session.connection()
        pending = changes_db.pending_of(conn, row.id)
        if pending is not None:
            raise InvalidTransitionError(
                row.id,
                "changing",
                verb,
                hint=f"change #{pending.id} ({pending.kind}) is still pending; it finishes "
                "within minutes (the next processor run completes it if its requester died)",
            )
        now = self._now()
        previous = previous_of(row)
        local(session, row, counters[0], counters[1], now)
        held_from_checks(row, now, now + CHANGE_LEASE + CHECK_HOLD)
        session.flush()
        lease = now + CHANGE_LEASE
        change_id = changes_db.insert_change(
            conn,
            schedule_id=row.id,
            kind=kind.value,
            target=target,
            previous=previous,
            requested_at=now,
            requested_by=requested_by,
            lease_expires_at=lease,
        )
        detail = f"#{change_id} {describe(kind, target, previous)}"
        timeline.append(
            conn,
            timeline.TimelineEntry(
                schedule_id=row.id,
                at=now,
                kind="change_requested",
                actor=requested_by,
                detail=detail,
            ),
        )
        return _Change(
            id=change_id,
            schedule_id=row.id,
            kind=kind,
            target=dict(target),
            previous=previous,
            video_id=str(row.youtube_video_id),
            channel=row.channel_id,
            api_project=row.api_project,
            requested_by=requested_by,
            lease=lease,
        )

    # -- step 2: the calls -----------------------------------------------------------------------

    def _on_call(self, change: _Change) -> CallCallback:
        """The quota ledger's ``on_call``; before a write it first renews the change's lease,
        fenced on the lease ``change`` holds (:class:`_LeaseLost`: nothing is sent)."""
        record = self._recorder(
            channel=change.channel,
            api_project=change.api_project,
            schedule_id=change.schedule_id,
            within_limit=True,
        )

        def on_call(report: ApiCallReport) -> None:
            write = report.phase is CallPhase.SENDING and report.operation in _WRITES
            if write:
                self._renew(change)
            record(report)
            if write:
                change.sent = True

        return on_call

    def _renew(self, change: _Change) -> None:
        new_lease = self._now() + CHANGE_LEASE
        mine = self._db.run_core(
            "renew a video change's lease",
            lambda c: changes_db.take_over(
                c, change.id, seen_lease=change.lease, new_lease=new_lease
            ),
        )
        if not mine:
            raise _LeaseLost(
                change.schedule_id,
                change.id,
                "its lease expired and a processor run took it over; this caller sent nothing more",
            )
        change.lease = new_lease

    def _send(self, change: _Change, videos: VideoClient) -> Schedule:
        """Steps 2 and 3 for a change just recorded by this caller."""
        on_call = self._on_call(change)
        try:
            found = videos.list_videos([change.video_id], on_call=on_call)
        except Exception as exc:  # nothing was changed on YouTube yet: put it back
            self._put_back(change, ChangeState.FAILED, _reason(exc))
            error = _public(exc)
            if error is exc:
                raise
            raise error from exc
        current = found.get(change.video_id)
        refusal = _refusal(change, current, self._now() + SEND_MARGIN)
        if refusal is not None:
            self._put_back(change, ChangeState.FAILED, refusal)
            raise InvalidTransitionError(
                change.schedule_id, "completed", change.kind.value, hint=refusal
            )
        try:
            answer = _call(change, current, videos, on_call)
        except _LeaseLost:
            raise
        except Exception as exc:
            self._after_failed_call(change, exc)
        try:
            return self._applied(change, answer)
        except InvalidTransitionError:
            raise
        except SchedulerError as exc:  # YouTube holds it; the recovery records it
            raise ChangePendingError(
                change.schedule_id, change.id, f"YouTube applied it, recording that failed: {exc}"
            ) from exc

    def _after_failed_call(self, change: _Change, exc: Exception) -> NoReturn:
        """Raises for a failed call of the requester: a thumbnail refused after the text
        landed -> :class:`ThumbnailNotSetError`; a definite refusal (or a bad argument found
        before anything was sent) -> put back, ``exc``; else -> :class:`ChangePendingError`."""
        if snippet_applied(exc) and isinstance(exc, _DEFINITE):
            try:
                self._text_only(change, exc)
            except InvalidTransitionError:
                raise
            except SchedulerError as err:
                raise ChangePendingError(
                    change.schedule_id,
                    change.id,
                    f"the text was updated on YouTube, the thumbnail was not ({_reason(exc)}); "
                    f"recording that failed: {err}",
                ) from err
            raise ThumbnailNotSetError(change.schedule_id, change.id, _reason(exc)) from exc
        if isinstance(exc, _DEFINITE) or (isinstance(exc, ValueError) and not change.sent):
            self._put_back(change, ChangeState.FAILED, _reason(exc))
            raise exc
        logger.warning("change #%d: outcome unknown (%s); left pending", change.id, exc)
        raise ChangePendingError(change.schedule_id, change.id, _reason(exc)) from exc

    # -- step 3: commit --------------------------------------------------------------------------

    def _applied(self, change: _Change, answer: RemoteVideo | None, note: str = "") -> Schedule:
        """Mark the change applied and the schedule as YouTube now holds it (one transaction).
        A change another finisher ended meanwhile is left as it is: its row is returned when
        that finisher applied it too, else :class:`InvalidTransitionError` names its end."""
        ended: list[str] = []

        def txn(session: Session) -> Schedule:
            row = lock_schedule(session, change.schedule_id)
            assert row is not None  # schedules are never deleted
            now = self._now()
            conn = session.connection()
            state = ChangeState.APPLIED.value
            if not changes_db.finish(conn, change.id, state=state, now=now, error=note or None):
                found = changes_db.read_change(conn, change.id)
                ended.append(found.state if found is not None else "gone")
                return row
            prior = change.previous.get("next_check_at")
            applied_fields(row, change.kind, change.target, answer, now, prior)
            detail = f"#{change.id} {describe(change.kind, change.target, change.previous)}"
            timeline.append(
                conn,
                timeline.TimelineEntry(
                    schedule_id=row.id,
                    at=now,
                    kind="change_applied",
                    actor=change.requested_by,
                    detail=detail + (f"; {note}" if note else ""),
                ),
            )
            session.flush()
            return row

        row = self._db.run("apply video change", txn)
        if ended and ended[0] != ChangeState.APPLIED.value:
            raise InvalidTransitionError(
                change.schedule_id,
                f"change #{change.id} {ended[0]}",
                change.kind.value,
                hint="a processor run took the change over after its lease expired and ended "
                "it; the next check compares the schedule with what YouTube holds",
            )
        logger.info("schedule %d: change #%d applied", change.schedule_id, change.id)
        return row

    def _text_only(self, change: _Change, exc: BaseException) -> Schedule:
        """An update whose text landed and whose thumbnail did not: applied for the text, the
        schedule keeping its old thumbnail, the change's error and timeline saying so."""
        old_thumbnail = (change.previous.get("metadata") or {}).get("thumbnail_path")
        target = {
            **change.target,
            "metadata": {**change.target["metadata"], "thumbnail_path": old_thumbnail},
            "changed": [c for c in change.target.get("changed", ()) if c != "thumbnail_path"],
        }
        note = f"the thumbnail was NOT set: {_reason(exc)}"
        logger.warning("change #%d: text updated, %s", change.id, note)
        return self._applied(replace(change, target=target), None, note)

    def _put_back(self, change: _Change, state: ChangeState, reason: str) -> None:
        """Undo the local side (one transaction in the ledger's lock order) and end the change
        as ``state``. When that cannot be written, the refusal is noted on the pending change
        (the next processor run puts it back without sending it) and :class:`ChangePendingError`
        is raised."""
        try:
            self._undo(change, state, reason)
        except SchedulerError as exc:
            logger.error(
                "change #%d: could not put schedule %d back (%s); the next processor run does",
                change.id,
                change.schedule_id,
                exc,
            )
            self._note_refusal(change, reason)
            raise ChangePendingError(
                change.schedule_id,
                change.id,
                f"{reason}; nothing was changed on YouTube, but putting the schedule back "
                f"failed ({exc})",
            ) from exc

    def _note_refusal(self, change: _Change, reason: str) -> None:
        now = self._now()
        try:
            self._db.run_core(
                "note a refused video change",
                lambda c: changes_db.note_refusal(c, change.id, error=reason, lease=now),
            )
        except SchedulerError as exc:
            logger.error("change #%d: could not note its refusal (%s)", change.id, exc)

    def _undo(self, change: _Change, state: ChangeState, reason: str) -> None:
        old = parse_iso(change.previous.get("publish_at"))
        old_day = channel_date_of(old, self._config.zone) if old else None

        def apply(session: Session, row: Schedule, days: Any, quota: Any) -> None:
            now = self._now()
            conn = session.connection()
            if not changes_db.finish(conn, change.id, state=state.value, now=now, error=reason):
                return  # another finisher ended it
            problem = self._local_put_back(session, row, days, change, reason, now, old_day)
            checks_resume(row, now)
            kind = "change_failed" if state is ChangeState.FAILED else "change_rolled_back"
            entries = [
                timeline.TimelineEntry(
                    schedule_id=row.id,
                    at=now,
                    kind=kind,
                    actor=change.requested_by,
                    detail=f"#{change.id} {describe(change.kind, change.target, change.previous)}"
                    f": {reason}",
                )
            ]
            if problem is not None:
                entries.append(
                    timeline.TimelineEntry(
                        schedule_id=row.id, at=now, kind="mismatch", actor=None, detail=problem
                    )
                )
            session.flush()
            timeline.append_many(conn, entries)

        ledger.change_schedule(
            self._db,
            "put back a video change",
            change.schedule_id,
            limits=self._config.quota_policy.buckets,
            allowed=lambda _r: True,
            apply=apply,
            new_days=lambda _r: [old_day] if old_day else [],
            project=self._config.api_project,
        )
        logger.info("change #%d %s: %s", change.id, state.value, reason)

    def _local_put_back(
        self,
        session: Session,
        row: Schedule,
        days: Any,
        change: _Change,
        reason: str,
        now: datetime,
        old_day: date | None,
    ) -> str | None:
        """The schedule as before the change (or ``mismatch`` and the problem text)."""
        limit = self._config.daily_limits[VideoType(row.video_type)]
        if change.kind is ChangeKind.RESCHEDULE and old_day is not None:
            return put_back_reschedule(
                session,
                row,
                days,
                change.previous,
                old_day=old_day,
                move=self._move,
                daily_limit=limit,
                reason=reason,
                now=now,
            )
        if change.kind in (ChangeKind.UNPUBLISH, ChangeKind.DELETE):
            return put_back_cancel(
                session, row, days, change.previous, daily_limit=limit, reason=reason, now=now
            )
        return None

    # -- recovery (a processor run) --------------------------------------------------------------

    def recover(
        self,
        videos: VideoClient,
        *,
        channels: list[str] | None,
        limit: int = MAX_RECOVER_PER_RUN,
    ) -> RecoveryReport:
        """Finish or roll back pending changes whose lease expired (their requester died, or
        lost YouTube's answer), of this manager's API project and ``channels`` (None: all):
        ask YouTube (``videos.list``); already holds the target -> applied, no second call;
        else send it again, or roll it back when it can no longer be sent. A change whose
        refusal was noted (its requester could not put it back) is put back, not sent."""
        report = RecoveryReport()
        now = self._now()
        found = self._db.run_core(
            "find expired video changes",
            lambda c: changes_db.expired_pending(
                c, now=now, api_project=self._config.api_project, channels=channels, limit=limit
            ),
            read_only=True,
        )
        for row, channel, video_id in found:
            if channel in report.refused:
                continue
            lease = self._take_over(row)
            if lease is None:
                continue
            change = _Change(
                id=row.id,
                schedule_id=row.schedule_id,
                kind=ChangeKind(row.kind),
                target=row.target,
                previous=row.previous,
                video_id=str(video_id),
                channel=channel,
                api_project=self._config.api_project,
                requested_by=row.requested_by or "processor",
                lease=lease,
            )
            if row.error is not None:  # refused; its requester could not put it back
                outcome, reason = self._recover_put_back(change, ChangeState.FAILED, row.error)
            else:
                outcome, reason = self._recover_one(change, videos)
            _count(report, change, outcome, reason)
        return report

    def _take_over(self, row: changes_db.ChangeRow) -> datetime | None:
        """The new lease when this run took the change over, else None."""
        new_lease = self._now() + CHANGE_LEASE
        mine = self._db.run_core(
            "take over a video change",
            lambda c: changes_db.take_over(
                c, row.id, seen_lease=row.lease_expires_at, new_lease=new_lease
            ),
        )
        return new_lease if mine else None

    def _recover_one(self, change: _Change, videos: VideoClient) -> tuple[str, str | None]:
        """``(outcome, reason)``: ``applied``, ``rolled_back`` (why), ``still_pending``, or
        ``refused`` (the channel's token was refused: nothing sent, the change stays pending)."""
        on_call = self._on_call(change)
        try:
            found = videos.list_videos([change.video_id], on_call=on_call)
        except Exception as exc:
            if _token_refused(exc):
                return "refused", _reason(exc)
            logger.warning("change #%d: videos.list failed (%s); retried next run", change.id, exc)
            return "still_pending", None
        current = found.get(change.video_id)
        if _holds_target(change, current):
            return self._recover_applied(change, current)
        refusal = _refusal(change, current, self._now() + self._config.min_lead_time)
        if refusal is not None:
            return self._recover_put_back(change, ChangeState.ROLLED_BACK, refusal)
        return self._recover_send(change, current, videos, on_call)

    def _recover_send(
        self,
        change: _Change,
        current: RemoteVideo | None,
        videos: VideoClient,
        on_call: CallCallback,
    ) -> tuple[str, str | None]:
        """Send the change again (fenced on this run's lease, like the requester's)."""
        try:
            answer = _call(change, current, videos, on_call)
        except _LeaseLost:
            return "still_pending", None
        except Exception as exc:
            if _token_refused(exc):
                return "refused", _reason(exc)
            if snippet_applied(exc) and isinstance(exc, _DEFINITE):
                try:
                    self._text_only(change, exc)
                except InvalidTransitionError:
                    return "still_pending", None
                return "applied", f"the thumbnail was NOT set: {_reason(exc)}"
            if isinstance(exc, _DEFINITE) or (isinstance(exc, ValueError) and not change.sent):
                return self._recover_put_back(change, ChangeState.ROLLED_BACK, _reason(exc))
            logger.warning("change #%d: re-send failed (%s); retried next run", change.id, exc)
            return "still_pending", None
        return self._recover_applied(change, answer)

    def _recover_applied(
        self, change: _Change, answer: RemoteVideo | None
    ) -> tuple[str, str | None]:
        try:
            self._applied(change, answer)
        except InvalidTransitionError as exc:  # another finisher ended it otherwise
            logger.warning("change #%d: %s", change.id, exc)
            return "still_pending", None
        return "applied", None

    def _recover_put_back(
        self, change: _Change, state: ChangeState, reason: str
    ) -> tuple[str, str | None]:
        try:
            self._put_back(change, state, reason)
        except ChangePendingError:
            return "still_pending", None
        return "rolled_back", reason


def _count(report: RecoveryReport, change: _Change, outcome: str, reason: str | None) -> None:
    """Add one recovered change's outcome to ``report``."""
    report.schedule_ids.append(change.schedule_id)
    if outcome == "refused":
        report.still_pending += 1
        report.refused.setdefault(change.channel, (change.schedule_id, reason or "invalid_grant"))
        return
    setattr(report, outcome, getattr(report, outcome) + 1)
    if outcome in ("applied", "rolled_back"):
        report.finished.append(
            RecoveredChange(
                change_id=change.id,
                schedule_id=change.schedule_id,
                kind=change.kind,
                channel=change.channel,
                video_id=change.video_id,
                outcome=outcome,
                reason=reason,
            )
        )


def _token_refused(exc: BaseException) -> bool:
    """The channel's refresh token was refused (expired or revoked): ``auth`` is needed."""
    return isinstance(exc, AuthorizationError) and exc.reason == _INVALID_GRANT


# -- pure helpers ------------------------------------------------------------------------------


def _check_changeable(row: Schedule, verb: str) -> None:
    """An uploaded schedule whose video is not public, deleted, unpublished or final."""
    if row.upload_status != UploadStatus.COMPLETED or not row.youtube_video_id:
        raise InvalidTransitionError(row.id, row.upload_status, verb)
    if row.video_state not in _CHANGEABLE_STATES:
        raise InvalidTransitionError(
            row.id,
            f"completed, video {row.video_state}",
            verb,
            hint="only a video that is on YouTube and not yet public can be changed",
        )


def _refusal(change: _Change, current: RemoteVideo | None, earliest: datetime) -> str | None:
    """Why the change cannot be sent for what YouTube holds (None: send it)."""
    if current is None:
        if change.kind is ChangeKind.DELETE:
            return None  # gone is what a delete asks for
        # Not proof that it is gone: a token of another Google account sees none of the
        # channel's private videos, and the real video would still publish at its time.
        return (
            f"video {change.video_id} was not found on YouTube with this channel's token "
            "(deleted, or the token belongs to another account: run `langflix-scheduler auth "
            "--check`); nothing was changed. `cancel --delete` cancels it anyway"
        )
    if current.privacy_status == "public":
        return f"video {change.video_id} is already public on YouTube"
    if change.kind is ChangeKind.RESCHEDULE:
        target = parse_iso(change.target.get("publish_at"))
        if target is None or target < earliest:
            return f"the new publish time {iso(target)} is no longer safely ahead"
    return None


def _holds_target(change: _Change, current: RemoteVideo | None) -> bool:
    """Does YouTube already hold what the change asks for? (An update is never known to be
    held: ``videos.list`` does not return the whole snippet, so it is sent again, which is
    harmless: the same metadata twice.)"""
    if change.kind is ChangeKind.DELETE:
        return current is None
    if current is None:
        return False
    if change.kind is ChangeKind.UNPUBLISH:
        return current.privacy_status == "private" and current.publish_at is None
    if change.kind is ChangeKind.RESCHEDULE:
        target = parse_iso(change.target.get("publish_at"))
        return current.privacy_status == "private" and current.publish_at == target
    return False


def _call(
    change: _Change, current: RemoteVideo | None, videos: VideoClient, on_call: CallCallback
) -> RemoteVideo | None:
    """The change's one API request (plus ``thumbnails.set`` for an update with a thumbnail)."""
    if change.kind is ChangeKind.DELETE:
        if current is not None:
            videos.delete_video(change.video_id, on_call=on_call)
        return None
    if current is None:  # unpublish of a video already gone: nothing to send
        return None
    if change.kind is ChangeKind.RESCHEDULE:
        return videos.set_publish_at(
            current, parse_iso(change.target["publish_at"]), on_call=on_call
        )
    if change.kind is ChangeKind.UNPUBLISH:
        return videos.set_publish_at(current, None, on_call=on_call)
    meta = VideoMetadata.from_json(
        {**change.target["metadata"], "thumbnail_path": change.target.get("thumbnail")}
    )
    videos.update_metadata(change.video_id, meta, on_call=on_call)
    return current


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", "")
    text = str(exc) or type(exc).__name__
    return f"{text} ({reason})" if reason and reason not in text else text


def _public(exc: Exception) -> SchedulerError:
    """The library error for a failure of the first ``videos.list`` (nothing was changed)."""
    if isinstance(exc, SchedulerError):
        return exc
    return TransientUploadError(f"videos.list failed: {_reason(exc)}", reason="unknown")
