"""Reconcile a channel's schedules with what YouTube holds (``ScheduleManager.reconcile``).

1. List the channel's uploads playlist (``channels.list`` 1 unit, then ``playlistItems.list``
   1 unit per page of 50).
2. Ask ``videos.list`` (1 unit per 50 ids) about every video a ``completed`` schedule records.
3. Report:

   * **unrecorded** videos: on YouTube, recorded by no schedule. Each gets its likely schedule:
     a ``needs_review``, ``uploading`` or ``failed`` schedule of the channel without a video id
     whose title is exactly the video's and that worked on an upload within
     :data:`MATCH_WINDOW` of the video's upload time. Two candidates for one video, or one
     schedule matching two videos, is **ambiguous** and never applied.
   * **gone** videos: recorded by a completed schedule, not returned by ``videos.list``.
   * **differences**: YouTube holds another privacy or publish time than the plan (private
     with ``publishAt`` = the publish time until then, the metadata's privacy afterwards), or
     rejected / failed the upload.

4. With ``apply``: attach each unambiguous match (the schedule becomes ``completed`` with the
   video id, ``video_state = uploaded`` and a check due now, so verification takes it from
   there; its reservation is released and its cost taken from the quota ledger; a ``failed``
   schedule takes its slot back when still free) and mark gone videos ``deleted``. Each fix is
   one short transaction with a ``reconciled`` timeline entry. Differences are reported only
   (change the plan with ``reschedule``/``cancel``).

   When the channel records two or more videos and ``videos.list`` finds none of them, the
   token probably belongs to another Google account (it sees none of the channel's private
   videos): nothing is marked gone, and the report's ``warning`` says so (the gone videos stay
   unfixed, so the report is not clean).

Every call is written to the quota ledger before it is sent (``within_limit``: refused with
:class:`~langflix_scheduler.errors.QuotaExceededError` when the quota day has no room beside
the bookings' reservations). No database lock is held across a call: all listing happens
first, then the fixes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from . import ledger
from .db import api_calls, bookings
from .db import reconcile as store
from .db.models import DailyLimit, QuotaUsage, Schedule
from .db.schedules import clear_lease
from .db.timeline import TimelineEntry, append
from .db.types import Session
from .domain import Privacy, UploadStatus, VideoState
from .youtube.uploader import ApiCallReport, CallCallback, CallPhase
from .youtube.videos import MAX_IDS_PER_LIST, RemoteVideo, UploadedItem, VideoClient

if TYPE_CHECKING:
    from .manager import ScheduleManager

__all__ = [
    "MATCH_WINDOW",
    "WRONG_ACCOUNT_WARNING",
    "GoneVideo",
    "MatchState",
    "ReconcileProgress",
    "ReconcileReport",
    "UnrecordedVideo",
    "VideoDifference",
    "reconcile",
]

logger = logging.getLogger(__name__)

#: How far a schedule's last upload work (heartbeat, last change) may lie from a video's upload
#: time for the video to be taken as that schedule's.
MATCH_WINDOW = timedelta(hours=2)
#: The report's warning when none of two or more recorded videos is found.
WRONG_ACCOUNT_WARNING = (
    "videos.list found none of the channel's {n} recorded videos: the token may belong to "
    "another account (run `langflix-scheduler auth --check`); no video was marked gone"
)
#: Remote upload statuses that mean the video is not (going to be) watchable.
_BROKEN = frozenset({"rejected", "failed", "deleted"})
#: Video states whose plan no longer holds (taken down on purpose) or whose problem is known and
#: final (shown by ``status``): their videos are checked for being gone, not compared.
_NOT_COMPARED = frozenset(
    {
        VideoState.UNPUBLISHED.value,
        VideoState.REJECTED.value,
        VideoState.PROCESSING_FAILED.value,
    }
)


class MatchState(enum.StrEnum):
    """What became of an unrecorded video."""

    #: No schedule of the channel looks like it uploaded it (made elsewhere, e.g. in Studio).
    UNMATCHED = "unmatched"
    #: One schedule matches; run with ``apply`` to attach it.
    MATCHED = "matched"
    #: Attached to its schedule (``apply``).
    ATTACHED = "attached"
    #: Several schedules match, or the schedule matches several videos: left alone.
    AMBIGUOUS = "ambiguous"
    #: One schedule matches but attaching is not safe now (``note`` says why).
    REFUSED = "refused"


@dataclass(frozen=True, kw_only=True)
class UnrecordedVideo:
    """A video on YouTube that no schedule records, and its likely schedule."""

    video_id: str
    title: str
    uploaded_at: datetime | None
    privacy_status: str | None
    candidates: tuple[int, ...]
    state: MatchState
    schedule_id: int | None = None
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class GoneVideo:
    """A completed schedule whose video YouTube no longer returns."""

    schedule_id: int
    video_id: str
    marked: bool = False


@dataclass(frozen=True, kw_only=True)
class VideoDifference:
    """YouTube holds something else than the schedule's plan (``field``: ``privacy``,
    ``publish_at`` or ``upload_status``)."""

    schedule_id: int
    video_id: str
    field: str
    planned: str
    on_youtube: str


@dataclass(frozen=True, kw_only=True)
class ReconcileProgress:
    """Passed to ``on_progress``: ``phase`` ``uploads`` (videos listed so far, total unknown)
    or ``videos`` (recorded videos checked so far, of ``total``)."""

    phase: str
    done: int
    total: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    """What :meth:`ScheduleManager.reconcile` found and (with ``apply``) fixed."""

    channel: str
    applied: bool
    uploads_listed: int
    videos_checked: int
    api_calls: int
    unrecorded: tuple[UnrecordedVideo, ...]
    gone: tuple[GoneVideo, ...]
    differences: tuple[VideoDifference, ...]
    #: Set when the answers are not to be trusted (:data:`WRONG_ACCOUNT_WARNING`).
    warning: str | None = None

    @property
    def unfixed(self) -> int:
        """Findings still open: unrecorded videos with a schedule candidate not attached, gone
        videos not marked, and every difference. Videos no schedule matches (uploaded outside
        the library) are reported but not counted."""
        open_videos = [
            v
            for v in self.unrecorded
            if v.state is not MatchState.ATTACHED and v.state is not MatchState.UNMATCHED
        ]
        return len(open_videos) + sum(not g.marked for g in self.gone) + len(self.differences)

    @property
    def clean(self) -> bool:
        """Nothing is left to fix."""
        return self.unfixed == 0


ProgressCallback = Callable[[ReconcileProgress], None]


def reconcile(
    manager: ScheduleManager,
    videos: VideoClient,
    *,
    channel: str,
    apply: bool = False,
    on_progress: ProgressCallback | None = None,
    actor: str = "library",
) -> ReconcileReport:
    """The flow of :meth:`ScheduleManager.reconcile` (see the module docstring)."""
    calls = _Counted(manager.api_call_recorder(channel=channel, within_limit=True))
    progress = on_progress or (lambda _p: None)
    uploads = _list_uploads(videos, calls, progress)
    db = manager.database
    recorded, candidates = db.run_core(
        "read schedules to reconcile",
        lambda c: (store.recorded(c, channel), store.candidates(c, channel)),
        read_only=True,
    )
    live = [
        r
        for r in recorded
        if r.upload_status == UploadStatus.COMPLETED.value
        and r.video_state != VideoState.DELETED.value
    ]
    remote = _check_videos(videos, [r.video_id for r in live], calls, progress)
    unrecorded, gone, differences = _findings(
        uploads, recorded, live, candidates, remote, manager.now()
    )
    distinct = {r.video_id for r in live}
    warning = None
    if len(distinct) >= 2 and not remote:
        warning = WRONG_ACCOUNT_WARNING.format(n=len(distinct))
        logger.warning("reconcile %s: %s", channel, warning)
    if apply:
        unrecorded = [_attach(manager, v, actor) for v in unrecorded]
        if warning is None:
            gone = [_mark_gone(manager, g, actor) for g in gone]
    return ReconcileReport(
        channel=channel,
        applied=apply,
        uploads_listed=len(uploads),
        videos_checked=len(live),
        api_calls=calls.count,
        unrecorded=tuple(unrecorded),
        gone=tuple(gone),
        differences=tuple(differences),
        warning=warning,
    )


def _findings(
    uploads: Sequence[UploadedItem],
    recorded: Sequence[store.Recorded],
    live: Sequence[store.Recorded],
    candidates: Sequence[store.Candidate],
    remote: Mapping[str, RemoteVideo],
    now: datetime,
) -> tuple[list[UnrecordedVideo], list[GoneVideo], list[VideoDifference]]:
    """Compare: videos no schedule records, recorded videos gone, differences from the plan."""
    known = {r.video_id for r in recorded}
    unrecorded = _match([u for u in uploads if u.video_id not in known], candidates)
    gone = [
        GoneVideo(schedule_id=r.schedule_id, video_id=r.video_id)
        for r in live
        if r.video_id not in remote
    ]
    differences = [
        d
        for r in live
        if r.video_id in remote and r.video_state not in _NOT_COMPARED
        for d in _differences(r, remote[r.video_id], now)
    ]
    return unrecorded, gone, differences


class _Counted:
    """An ``on_call`` recorder that also counts the calls sent."""

    def __init__(self, record: CallCallback) -> None:
        self.record = record
        self.count = 0

    def __call__(self, report: ApiCallReport) -> None:
        self.record(report)
        if report.phase is CallPhase.SENDING:
            self.count += 1


def _list_uploads(
    videos: VideoClient, on_call: CallCallback, progress: ProgressCallback
) -> list[UploadedItem]:
    """Every entry of the uploads playlist, page by page (a video listed twice counts once)."""
    items: dict[str, UploadedItem] = {}
    token: str | None = None
    while True:
        page = videos.list_uploads(token, on_call=on_call)
        for item in page.items:
            items.setdefault(item.video_id, item)
        progress(ReconcileProgress(phase="uploads", done=len(items)))
        token = page.next_page_token
        if not token:
            return list(items.values())


def _check_videos(
    videos: VideoClient, ids: Sequence[str], on_call: CallCallback, progress: ProgressCallback
) -> dict[str, RemoteVideo]:
    """``videos.list`` for ``ids``, :data:`MAX_IDS_PER_LIST` per call."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, RemoteVideo] = {}
    for start in range(0, len(wanted), MAX_IDS_PER_LIST):
        batch = wanted[start : start + MAX_IDS_PER_LIST]
        found.update(videos.list_videos(batch, on_call=on_call))
        progress(ReconcileProgress(phase="videos", done=start + len(batch), total=len(wanted)))
    return found


def _match(
    unrecorded: Iterable[UploadedItem], candidates: Sequence[store.Candidate]
) -> list[UnrecordedVideo]:
    """Each unrecorded video with the schedules that may have uploaded it."""
    matches = {u.video_id: (u, _candidates_of(u, candidates)) for u in unrecorded}
    claims: dict[int, int] = {}
    for _item, ids in matches.values():
        for claimed in ids:
            claims[claimed] = claims.get(claimed, 0) + 1
    out = []
    for item, ids in matches.values():
        sid: int | None = None
        if not ids:
            state = MatchState.UNMATCHED
        elif len(ids) > 1 or claims[ids[0]] > 1:
            state = MatchState.AMBIGUOUS
        else:
            state, sid = MatchState.MATCHED, ids[0]
        out.append(
            UnrecordedVideo(
                video_id=item.video_id,
                title=item.title,
                uploaded_at=item.published_at,
                privacy_status=item.privacy_status,
                candidates=ids,
                state=state,
                schedule_id=sid,
            )
        )
    return out


def _candidates_of(item: UploadedItem, candidates: Sequence[store.Candidate]) -> tuple[int, ...]:
    if item.published_at is None:
        return ()
    at = item.published_at
    return tuple(
        c.schedule_id
        for c in candidates
        if c.title == item.title and any(abs(t - at) <= MATCH_WINDOW for t in c.attempt_times)
    )


def planned_status(
    privacy: str | None, publish_time: datetime, now: datetime
) -> tuple[str, datetime | None]:
    """``(privacyStatus, publishAt)`` YouTube should hold at ``now`` for the plan: a public
    video is private with ``publishAt`` until its publish time, then public; another privacy
    holds from the start, without ``publishAt``."""
    values = {p.value for p in Privacy}
    wanted = Privacy(privacy) if privacy is not None and privacy in values else Privacy.PUBLIC
    if wanted is Privacy.PUBLIC and now < publish_time:
        return Privacy.PRIVATE.value, publish_time.replace(microsecond=0)
    return wanted.value, None


def _differences(row: store.Recorded, video: RemoteVideo, now: datetime) -> list[VideoDifference]:
    def diff(field: str, planned: str, on_youtube: str) -> VideoDifference:
        return VideoDifference(
            schedule_id=row.schedule_id,
            video_id=row.video_id,
            field=field,
            planned=planned,
            on_youtube=on_youtube,
        )

    if video.upload_status in _BROKEN:
        return [diff("upload_status", "processed", video.upload_status)]
    privacy, publish_at = planned_status(row.privacy, row.scheduled_publish_time, now)
    out = []
    if video.privacy_status != privacy:
        out.append(diff("privacy", privacy, video.privacy_status))
    held = video.publish_at.replace(microsecond=0) if video.publish_at else None
    if publish_at is not None and held != publish_at:
        out.append(diff("publish_at", publish_at.isoformat(), held.isoformat() if held else "-"))
    return out


# -- fixes (each one short transaction) --------------------------------------------------------


class _Unsafe(Exception):
    """Attaching is not safe now (the message says why); its transaction rolls back."""


def _attach(manager: ScheduleManager, video: UnrecordedVideo, actor: str) -> UnrecordedVideo:
    if video.state is not MatchState.MATCHED or video.schedule_id is None:
        return video
    sid = video.schedule_id
    now = manager.now()
    detail = (
        f"video {video.video_id} ({video.title!r}, uploaded "
        f"{video.uploaded_at.isoformat() if video.uploaded_at else '?'}) found on YouTube and "
        "attached by reconcile"
    )

    def allowed(row: Schedule) -> bool:
        return row.youtube_video_id is None and row.upload_status in store.ATTACHABLE

    def apply(
        session: Session,
        row: Schedule,
        days: Mapping[date, DailyLimit],
        quota: Mapping[tuple[date, str], QuotaUsage],
    ) -> None:
        _complete_with(
            session,
            row,
            days,
            quota,
            video_id=video.video_id,
            uploaded_at=video.uploaded_at or now,
            now=now,
            entry=TimelineEntry(
                schedule_id=sid, at=now, kind="reconciled", actor=actor, detail=detail
            ),
        )

    try:
        done = ledger.change_schedule(
            manager.database,
            "reconcile: attach video",
            sid,
            limits=manager.config.quota_policy.buckets,
            allowed=allowed,
            apply=apply,
        )
    except _Unsafe as exc:
        return replace(video, state=MatchState.REFUSED, note=str(exc))
    if done is None:
        return replace(video, state=MatchState.REFUSED, note=f"schedule {sid} changed meanwhile")
    logger.warning("reconcile: %s", detail)
    return replace(video, state=MatchState.ATTACHED)


def _complete_with(
    session: Session,
    row: Schedule,
    days: Mapping[date, DailyLimit],
    quota: Mapping[tuple[date, str], QuotaUsage],
    *,
    video_id: str,
    uploaded_at: datetime,
    now: datetime,
    entry: TimelineEntry,
) -> None:
    """Make the locked ``row`` ``completed`` with ``video_id`` the way the processor's
    completion does: reservation released, cost taken from the quota ledger (which already
    holds every call its attempts sent: nothing is added to ``used``), lease and session
    cleared; ``video_state = uploaded`` with a check due now. A ``failed`` row takes its slot,
    day count and content key back first."""
    if row.upload_status == UploadStatus.UPLOADING.value and (
        row.lease_expires_at is not None and row.lease_expires_at > now
    ):
        raise _Unsafe(f"schedule {row.id} is being uploaded by {row.lease_owner}")
    conn = session.connection()
    if row.upload_status == UploadStatus.FAILED.value:
        _take_back(session, row, days)
    ledger.release_reservation(quota, row.quota_date, dict(row.reserved_quota or {}))
    row.reserved_quota = {}
    row.consumed_quota = api_calls.cost_by_schedule(conn, [row.id])[row.id]
    row.upload_status = UploadStatus.COMPLETED.value
    row.youtube_video_id = video_id
    row.upload_session_uri = None  # a secret that is no use once the video exists
    row.uploaded_at = uploaded_at
    row.updated_at = now
    clear_lease(row)
    row.next_attempt_at = None
    row.video_state = VideoState.UPLOADED.value
    row.video_problem = None
    row.next_check_at = now
    row.check_count = 0
    append(conn, entry)


def _take_back(session: Session, row: Schedule, days: Mapping[date, DailyLimit]) -> None:
    """A ``failed`` row gave its slot, day count and content key up: take them back, unless
    another schedule took them meanwhile."""
    slot = row.scheduled_publish_time
    if bookings.taken_among(session.connection(), row.channel_id, [slot]):
        raise _Unsafe(f"its slot {slot.isoformat()} was booked again")
    if row.content_sha256 is not None:
        holder = bookings.fingerprint_holder(session, row.channel_id, row.content_sha256)
        if holder is not None:
            raise _Unsafe(f"the same file is booked again as schedule {holder[0]}")
        row.fingerprint_key = row.content_sha256
    ledger.count_up(days[row.publish_date], row.video_type)
    row.slot_key = slot


def _mark_gone(manager: ScheduleManager, gone: GoneVideo, actor: str) -> GoneVideo:
    now = manager.now()
    detail = f"video {gone.video_id} is no longer on YouTube (found by reconcile)"
    marked = manager.database.run_core(
        "reconcile: mark video deleted",
        lambda c: store.mark_gone(
            c, gone.schedule_id, gone.video_id, now=now, actor=actor, detail=detail
        ),
    )
    if marked:
        logger.warning("reconcile: schedule %d: %s", gone.schedule_id, detail)
    return replace(gone, marked=marked)
