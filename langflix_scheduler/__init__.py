"""langflix-scheduler: schedule and upload YouTube videos on a cadence, race-free and crash-safe.

The public API is what ``__all__`` lists; everything else is internal and may change.
"""

from importlib.metadata import PackageNotFoundError, version

from .config import SchedulerConfig
from .domain import (
    Booking,
    BucketUsage,
    DailyQuotaStatus,
    Privacy,
    ProcessorRunRecord,
    QuotaCorrection,
    RecalculationReport,
    ScheduledVideo,
    TypeUsage,
    UploadStatus,
    VideoMetadata,
    VideoType,
)
from .errors import (
    AuthorizationError,
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
    TransientUploadError,
    UploadError,
    UploadLimitExceededError,
)
from .manager import ScheduleManager
from .processor import (
    ProcessorEvent,
    ProcessorEventKind,
    ProcessReport,
    RunOutcome,
    UploadProcessor,
)
from .quota import QuotaPolicy

try:
    __version__ = version("langflix-scheduler")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "AuthorizationError",
    "Booking",
    "BucketUsage",
    "ConfigurationError",
    "DailyQuotaStatus",
    "DatabaseTimeoutError",
    "DuplicateVideoError",
    "InvalidScheduleError",
    "InvalidTransitionError",
    "LockTimeoutError",
    "NotAShortError",
    "OutcomeUnknownError",
    "PermanentUploadError",
    "Privacy",
    "ProcessReport",
    "ProcessorEvent",
    "ProcessorEventKind",
    "ProcessorRunRecord",
    "QuotaCorrection",
    "QuotaExceededError",
    "QuotaExhaustedError",
    "QuotaPolicy",
    "RecalculationReport",
    "RunOutcome",
    "ScheduleManager",
    "ScheduleNotFoundError",
    "ScheduledVideo",
    "SchedulerConfig",
    "SchedulerError",
    "SlotUnavailableError",
    "StorageError",
    "TransientUploadError",
    "TypeUsage",
    "UploadError",
    "UploadLimitExceededError",
    "UploadProcessor",
    "UploadStatus",
    "VideoMetadata",
    "VideoType",
    "__version__",
]
