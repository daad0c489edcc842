"""The verification step of a run: uploaded videos due for a check are looked up on YouTube
(``videos.list``, batched) and their state written (see :mod:`.verdict` for what a check means).

One round: take up to :data:`_CHECK_CLAIM` due checks of the API project (and channel filter)
in one short transaction (:func:`langflix_scheduler.db.checks.claim_due`: their
``next_check_at`` moves to a lease, so no other processor checks them meanwhile, and no lock is
held across the call); per channel, up to 50 video ids per ``videos.list`` call, each call
written to the quota ledger before it is sent (1 unit, shared bucket, ``within_limit``: a
verification never eats quota that bookings reserved); per call, one short transaction writes
every row's new state (fenced on the lease) and a timeline entry for each change; events go to
``on_event`` after the commit.

Errors: our quota refusal (:class:`QuotaExceededError`) or YouTube's
(:class:`QuotaExhaustedError`) defers every check of the project that is due to the next quota
reset; :class:`AuthorizationError` with reason ``invalid_grant`` (the channel's refresh token
is dead) pauses the channel like an upload does (``channel_paused`` event; its rows are given
back, its checks and uploads wait for ``auth``) and the other channels are still checked;
another :class:`AuthorizationError` gives the rows back and stops the step; a transient error
backs the rows off :data:`_CHECK_RETRY` and stops the step; a permanent answer backs that call's
rows off :data:`~.verdict.PROBLEM_RECHECK`. A video is never uploaded again by this step.

An answer that finds none of two or more videos of a channel is not trusted (a token of
another Google account sees none of the channel's private videos): nothing is recorded as
``missing``; the rows keep their state with a problem saying so (run ``auth --check``) and are
checked again after :data:`_SUSPECT_RECHECK`. A single absent video becomes ``missing`` and
only ``deleted`` after several absent answers (see :mod:`.verdict`); a processor without a
channel filter never makes it ``deleted`` (its one client may hold another channel's token).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..db import checks
from ..db.checks import CheckRow, CheckWrite
from ..db.types import Connection
from ..domain import Privacy, VideoMetadata
from ..errors import (
    AuthorizationError,
    PermanentUploadError,
    QuotaExceededError,
    QuotaExhaustedError,
)
from ..quota import next_quota_reset
from ..youtube.videos import MAX_IDS_PER_LIST, RemoteVideo, VideoClient
from ._core import _Core
from .decide import INVALID_GRANT
from .events import ProcessorEvent, ProcessorEventKind
from .verdict import PROBLEM_RECHECK, decide_check, plan_of

logger = logging.getLogger(__name__)

#: Checks taken per round (up to this / 50 ``videos.list`` calls).
_CHECK_CLAIM = 500
#: Rounds per run (the rest is checked by the next run).
_MAX_CHECK_ROUNDS = 20
#: How long taken checks stay with this processor (the calls of one round fit in it easily).
_CHECK_LEASE = timedelta(minutes=5)
#: The wait after a transient error of ``videos.list``.
_CHECK_RETRY = timedelta(minutes=5)
#: The wait after an answer that found none of the channel's videos asked about.
_SUSPECT_RECHECK = timedelta(hours=1)
#: The problem written on the rows of such an answer.
SUSPECT_PROBLEM = (
    "videos.list found none of this channel's videos: is the token of another account? run "
    "`langflix-scheduler auth --check`"
)


@dataclass
class VerifyTally:
    """What the verification step of one run did."""

    #: Videos checked on YouTube whose result was written.
    verified: int = 0
    #: Why the step stopped early for the channel's token (run ``auth``), if it did.
    unauthorized: str | None = None
    events: list[ProcessorEvent] = field(default_factory=list)


class _Stop(Exception):
    """Internal: the round's remaining rows were handled; end the step."""


class _Verify(_Core):
    """The after-upload checks of :class:`~.loop.UploadProcessor`."""

    videos: VideoClient | None

    def _verify(self) -> VerifyTally:
        """Check every due video (bounded per run). Raises SchedulerError from the database."""
        tally = VerifyTally()
        if self.videos is None:
            return tally
        for _ in range(_MAX_CHECK_ROUNDS):
            if self._stopping():
                break
            now = self._now()
            rows = self._db.run_core(
                "take due video checks",
                lambda c, n=now: checks.claim_due(  # type: ignore[misc]
                    c,
                    self._db.dialect,
                    api_project=self.api_project,
                    channels=self.channels,
                    now=n,
                    until=n + _CHECK_LEASE,
                    limit=_CHECK_CLAIM,
                ),
            )
            if not rows:
                break
            try:
                self._check_round(rows, tally)
            except _Stop:
                break
            if len(rows) < _CHECK_CLAIM:
                break
        return tally

    def _check_round(self, rows: Sequence[CheckRow], tally: VerifyTally) -> None:
        batches = _batches(rows)
        paused: set[str] = set()
        for n, batch in enumerate(batches):
            channel = batch[0].channel_id
            if channel in paused:
                continue
            rest = [r for b in batches[n:] for r in b if r.channel_id not in paused]
            try:
                found = self._list_checked(batch)
            except (QuotaExceededError, QuotaExhaustedError) as exc:
                self._defer_checks_to_reset(rest, exc)
                raise _Stop from exc
            except AuthorizationError as exc:
                if exc.reason == INVALID_GRANT and self._pause_for_check(batch[0], exc, tally):
                    # Paused first: no processor takes the rows given back meanwhile.
                    self._give_checks_back([r for r in rest if r.channel_id == channel], None)
                    paused.add(channel)
                    continue
                logger.error("checking videos on YouTube stopped: %s; run `auth` again", exc)
                self._give_checks_back(rest, None)
                tally.unauthorized = str(exc)
                raise _Stop from exc
            except PermanentUploadError as exc:
                logger.error("videos.list refused %d video ids: %s", len(batch), exc)
                self._give_checks_back(batch, self._now() + PROBLEM_RECHECK)
                continue
            except Exception as exc:
                logger.warning("checking videos on YouTube failed (%s); retried later", exc)
                self._give_checks_back(rest, self._now() + _CHECK_RETRY)
                raise _Stop from exc
            self._record_checks(batch, found, tally)

    def _pause_for_check(self, row: CheckRow, exc: AuthorizationError, tally: VerifyTally) -> bool:
        """``row``'s channel token was refused (``invalid_grant``): pause the channel like an
        upload does (a ``channel_paused`` event when this paused it). False when the pause could
        not be written (the caller stops the step instead)."""
        now = self._now()
        reason = f"authorization failed: {exc}"
        fresh = self._pause_channel(row.channel_id, reason, now)
        if fresh is None:
            return False
        logger.error(
            "CHANNEL PAUSED: %s's token was refused checking video %s (%s); its checks and "
            "uploads wait until `langflix-scheduler auth --channel %s` succeeds",
            row.channel_id,
            row.video_id,
            exc,
            row.channel_id,
        )
        if fresh:
            event = ProcessorEvent(
                kind=ProcessorEventKind.CHANNEL_PAUSED,
                schedule_id=row.id,
                channel_id=row.channel_id,
                worker_id=self.worker_id,
                at=now,
                attempts=0,
                video_id=row.video_id,
                error=reason,
            )
            tally.events.append(event)
            self._emit([event])
        return True

    def _list_checked(self, batch: Sequence[CheckRow]) -> dict[str, RemoteVideo]:
        """One ``videos.list`` call for ``batch`` (one channel), written to the ledger first."""
        assert self.videos is not None
        on_call = self.manager.api_call_recorder(
            channel=batch[0].channel_id,
            api_project=self.api_project,
            schedule_id=batch[0].id if len(batch) == 1 else None,
            within_limit=True,
        )
        ids = list(dict.fromkeys(r.video_id for r in batch))
        return dict(self.videos.list_videos(ids, on_call=on_call))

    def _record_checks(
        self, batch: Sequence[CheckRow], found: dict[str, RemoteVideo], tally: VerifyTally
    ) -> None:
        now = self._now()
        if not found and len({r.video_id for r in batch}) >= 2:
            self._hold_suspect(batch, now)
            return
        confirm = self.channels is not None
        writes = [_write_of(row, found.get(row.video_id), now, confirm) for row in batch]
        made = self._db.run_core(
            "record video checks",
            lambda c: checks.write_checks(c, writes, now=now, actor=self.worker_id),
        )
        tally.verified += len(made)
        events = [self._check_event(w, now) for w in made if w.state != w.row.state]
        for w in made:
            if w.state != w.row.state:
                log = logger.warning if w.problem else logger.info
                log(
                    "schedule %d: video %s %s -> %s%s",
                    w.row.id,
                    w.row.video_id,
                    w.row.state,
                    w.state,
                    f": {w.problem}" if w.problem else "",
                )
        tally.events.extend(events)
        self._emit(events)

    def _hold_suspect(self, batch: Sequence[CheckRow], now: datetime) -> None:
        """None of the channel's videos found: record nothing as missing (see the module)."""
        logger.warning(
            "channel %s: %s (%d videos asked about; checked again in %s)",
            batch[0].channel_id,
            SUSPECT_PROBLEM,
            len(batch),
            _SUSPECT_RECHECK,
        )
        self._db.run_core(
            "hold video checks",
            lambda c: checks.hold(
                c, batch, problem=SUSPECT_PROBLEM, now=now, to=now + _SUSPECT_RECHECK
            ),
        )

    def _check_event(self, write: CheckWrite, now: datetime) -> ProcessorEvent:
        return ProcessorEvent(
            kind=ProcessorEventKind(write.state),
            schedule_id=write.row.id,
            channel_id=write.row.channel_id,
            worker_id=self.worker_id,
            at=now,
            attempts=0,
            video_id=write.row.video_id,
            error=write.problem,
            next_attempt_at=write.next_check_at,
        )

    def _defer_checks_to_reset(
        self, rest: Sequence[CheckRow], exc: QuotaExceededError | QuotaExhaustedError
    ) -> None:
        """No quota left today: these rows and every other due check wait for the reset."""
        now = self._now()
        reset = next_quota_reset(now, self._quota_tz)
        if isinstance(exc, QuotaExhaustedError):
            reset = max(reset, exc.resume_at)

        def txn(conn: Connection) -> int:
            moved = checks.release(conn, rest, reset)
            return moved + checks.defer_due(
                conn, api_project=self.api_project, channels=self.channels, now=now, to=reset
            )

        moved = self._db.run_core("defer video checks", txn)
        logger.warning(
            "no quota for checking videos (%s); %d checks deferred to %s",
            exc,
            moved,
            reset.isoformat(),
        )

    def _give_checks_back(self, rows: Sequence[CheckRow], to: datetime | None) -> None:
        self._db.run_core("give video checks back", lambda c: checks.release(c, rows, to))


def _batches(rows: Sequence[CheckRow]) -> list[list[CheckRow]]:
    """Rows grouped by channel (one token per call), at most 50 video ids per group."""
    by_channel: dict[str, list[CheckRow]] = {}
    for row in rows:
        by_channel.setdefault(row.channel_id, []).append(row)
    out: list[list[CheckRow]] = []
    for channel_rows in by_channel.values():
        current: list[CheckRow] = []
        ids: set[str] = set()
        for row in channel_rows:
            if row.video_id not in ids and len(ids) == MAX_IDS_PER_LIST:
                out.append(current)
                current, ids = [], set()
            current.append(row)
            ids.add(row.video_id)
        if current:
            out.append(current)
    return out


def _write_of(
    row: CheckRow, remote: RemoteVideo | None, now: datetime, confirm_deleted: bool
) -> CheckWrite:
    plan = plan_of(_privacy(row.metadata), row.publish_time, row.uploaded_at)
    verdict = decide_check(
        remote,
        plan,
        now=now,
        check_count=row.check_count,
        state=row.state,
        confirm_deleted=confirm_deleted,
    )
    return CheckWrite(
        row=row,
        state=verdict.state.value,
        privacy=verdict.privacy,
        publish_at=verdict.publish_at,
        problem=verdict.problem,
        next_check_at=verdict.next_check_at,
        check_count=verdict.check_count,
    )


def _privacy(metadata: dict[str, object]) -> str:
    try:
        return VideoMetadata.from_stored(metadata).privacy.value
    except (TypeError, ValueError):
        return Privacy.PUBLIC.value
