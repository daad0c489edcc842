"""langflix-scheduler: schedule and upload YouTube videos on a cadence, race-free and crash-safe.

The public API is what ``__all__`` lists; everything else is internal and may change.
"""

from typing import TYPE_CHECKING, Any

from .config import SchedulerConfig
from .domain import (
    Booking,
    BucketUsage,
    ChannelPause,
    DailyQuotaStatus,
    Privacy,
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
    AuthorizationError,
    ChangePendingError,
    ConfigurationError,
    DatabaseTimeoutError,
    DuplicateVideoError,
    InvalidScheduleError,
    InvalidTransitionError,
    LockTimeoutError,
    NotAShortError,
    OutcomeUnknownError,
    PermanentUploadError,
    QuotaExceededError,
    QuotaExhaustedError,
    ScheduleNotFoundError,
    SchedulerError,
    SlotUnavailableError,
    StorageError,
    ThumbnailNotSetError,
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from .overview import Attention
from .quota import QuotaPolicy

if TYPE_CHECKING:
    from .changes import ChangeKind, ChangeState, VideoChangeRecord
    from .dry_run import DryRunItem, DryRunPlan
    from .manager import ScheduleManager
    from .processor import (
        ProcessorEvent,
        ProcessorEventKind,
        ProcessorSettings,
        ProcessReport,
        RunOutcome,
        UploadProcessor,
    )
    from .reconcile import MatchState, ReconcileProgress, ReconcileReport

    __version__: str

# The manager and the processor pull in SQLAlchemy (most of the start-up time of every CLI
# call, `--help` included), and the version lookup reads package metadata: they are resolved
# on first access (PEP 562), so `import langflix_scheduler.cli` stays cheap.
_LAZY = {
    "ChangeKind": "changes",
    "ChangeState": "changes",
    "VideoChangeRecord": "changes",
    "DryRunItem": "dry_run",
    "DryRunPlan": "dry_run",
    "ScheduleManager": "manager",
    "ProcessorEvent": "processor",
    "ProcessorEventKind": "processor",
    "ProcessorSettings": "processor",
    "ProcessReport": "processor",
    "RunOutcome": "processor",
    "UploadProcessor": "processor",
    "MatchState": "reconcile",
    "ReconcileProgress": "reconcile",
    "ReconcileReport": "reconcile",
}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("langflix-scheduler")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _package_version()
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Attention",
    "AuthorizationError",
    "Booking",
    "BucketUsage",
    "ChangeKind",
    "ChangePendingError",
    "ChangeState",
    "ChannelPause",
    "ConfigurationError",
    "DailyQuotaStatus",
    "DatabaseTimeoutError",
    "DryRunItem",
    "DryRunPlan",
    "DuplicateVideoError",
    "InvalidScheduleError",
    "InvalidTransitionError",
    "LockTimeoutError",
    "MatchState",
    "NotAShortError",
    "OutcomeUnknownError",
    "PermanentUploadError",
    "Privacy",
    "ProcessReport",
    "ProcessorEvent",
    "ProcessorEventKind",
    "ProcessorRunRecord",
    "ProcessorSettings",
    "QuotaCorrection",
    "QuotaExceededError",
    "QuotaExhaustedError",
    "QuotaPolicy",
    "RecalculationReport",
    "ReconcileProgress",
    "ReconcileReport",
    "RunOutcome",
    "ScheduleManager",
    "ScheduleNotFoundError",
    "ScheduledVideo",
    "SchedulerConfig",
    "SchedulerError",
    "SlotUnavailableError",
    "StorageError",
    "ThumbnailNotSetError",
    "TransientUploadError",
    "TypeUsage",
    "UploadError",
    "UploadLimitExceededError",
    "UploadProcessor",
    "UploadStatus",
    "VideoChangeRecord",
    "VideoMetadata",
    "VideoState",
    "VideoType",
    "__version__",
]
