"""Internal state of one processor: attempts in flight, outcome kinds, run counters, limits."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..domain import UploadStatus
from ..youtube.uploader import UploadResult, UploadStep
from .events import ProcessorEvent

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


_SCHEDULED = UploadStatus.SCHEDULED.value
_UPLOADING = UploadStatus.UPLOADING.value
_COMPLETED = UploadStatus.COMPLETED.value
_FAILED = UploadStatus.FAILED.value
_NEEDS_REVIEW = UploadStatus.NEEDS_REVIEW.value

_STEP_VALUES = frozenset(s.value for s in UploadStep)
_FOLLOW_UP_VALUES = frozenset(s.value for s in _FOLLOW_UPS)


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
