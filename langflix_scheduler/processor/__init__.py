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

5. **Verify** (when the processor has a :class:`~langflix_scheduler.youtube.videos.VideoClient`,
   also in runs with nothing to upload): uploaded videos whose ``next_check_at`` passed are
   checked with ``videos.list`` (50 ids per call, 1 unit each, written to the quota ledger
   before the call and refused when the quota day has no room beside bookings' reservations)
   and move ``uploaded -> processing -> ready -> published`` or to a problem state
   (``rejected``, ``processing_failed``, ``mismatch``, ``held_private``, ``missing``,
   ``deleted``); see
   :mod:`.verify` (taking checks, errors) and :mod:`.verdict` (what a check means, backoff,
   the publish confirmation). Nothing is ever uploaded again by it.

Locks are taken in the global order written once in :mod:`langflix_scheduler.ledger` (so the
processor cannot deadlock with reservations, cancels or ``recalculate_quota``). Counters (day
counts, quota reserved/used) are only changed while their rows are locked, and every transition
keeps them equal to what ``recalculate_quota`` recounts.

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

* success: ``completed``; video id, ``uploaded_at``; video state ``uploaded``, first checked on
  YouTube a minute later (``next_check_at``), with an ``uploaded`` timeline entry; the reserved
  quota is released from the planned quota day (``quota_date`` moves to the day the upload
  finished). Quota spent is the quota ledger's (:mod:`langflix_scheduler.db.api_calls`): an
  uploader that reports its calls (``on_call``, see
  :func:`~langflix_scheduler.youtube.uploader.reports_calls`) has each call written, with ``used +=
  cost`` on the Pacific day it is sent, in its own short transaction before the call is sent (a
  call that cannot be written is not sent: the attempt fails as transient); a quota refusal is
  taken back off. For another uploader the calls it lists in ``UploadResult.operations`` are
  recorded at completion, on that day, as before. Either way the row's ``consumed_quota`` becomes
  the ledger's total for the schedule, every attempt included. A ``playlistItems.insert`` the
  ledger shows an earlier attempt sent is passed on as ``UploadRequest.attempted_steps`` (the
  uploader checks the playlist before re-sending).
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
* :class:`~langflix_scheduler.errors.AuthorizationError` with reason ``invalid_grant`` (the
  channel's refresh token expired or was revoked): the channel is paused
  (``youtube_upload_channels.paused_at``; a ``channel_paused`` event), then the lease is
  released (no attempt counted). Claims skip a paused channel until ``langflix-scheduler auth
  --channel X`` succeeds or ``ScheduleManager.resume_channel`` is called; other channels go on.
  The same refusal while the run checks uploaded videos or finishes a pending change of plan
  pauses the channel too (its checks and changes wait with its uploads).
* Another :class:`~langflix_scheduler.errors.AuthorizationError`: the lease is released (no
  attempt counted), the run claims nothing more, and the error is logged loudly.
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

from .decide import Action, AttemptView, Decision, decide, failure_decision
from .events import ProcessorEvent, ProcessorEventKind, ProcessReport, RunOutcome
from .loop import UploadProcessor
from .settings import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_LEASE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_RETRY_BASE,
    MAX_RETRY_DELAY,
    MIN_DEFERRAL,
    ProcessorSettings,
)

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_LEASE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PROGRESS_INTERVAL",
    "DEFAULT_RETRY_BASE",
    "MAX_RETRY_DELAY",
    "MIN_DEFERRAL",
    "Action",
    "AttemptView",
    "Decision",
    "ProcessReport",
    "ProcessorEvent",
    "ProcessorEventKind",
    "ProcessorSettings",
    "RunOutcome",
    "UploadProcessor",
    "decide",
    "failure_decision",
]
