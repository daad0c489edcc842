"""The CLI's reading of a library error: which exit code, and the line a person reads.

Whether a retry can fix it and the advice come from the library
(:func:`langflix_scheduler.diagnosis.diagnose`); this module maps that to exit codes (1: fix
something, 3: retry later) and names the CLI's options instead of Python parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from ..config import SchedulerConfig
from ..diagnosis import diagnose
from ..errors import (
    ChangePendingError,
    InvalidScheduleError,
    QuotaExhaustedError,
    SchedulerError,
    StorageError,
    TransientUploadError,
)

#: YouTube errors a later attempt (or the next processor run) resolves: exit 3.
_LATER = (ChangePendingError, TransientUploadError, QuotaExhaustedError)

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Verdict:
    """What a failure means for the user: the exit code and the line to print."""

    code: int
    message: str


def classify(exc: SchedulerError, config: SchedulerConfig | None) -> Verdict:
    """Exit code and message for a library error raised by a command."""
    if isinstance(exc, _LATER):
        return Verdict(EXIT_UNAVAILABLE, humane(exc, config))
    diagnosis = diagnose(exc, config)
    if diagnosis.retryable:
        return Verdict(EXIT_UNAVAILABLE, diagnosis.message)
    if isinstance(exc, StorageError):
        return Verdict(EXIT_USER_ERROR, diagnosis.message)
    return Verdict(EXIT_USER_ERROR, humane(exc, config))


#: Library parameter names -> the CLI options a person typed.
_OPTION_OF_FIELD = {
    "preferred_time": "--at",
    "new_time": "--at",
    "after": "--after",
    "video_type": "--type",
    "video_path": "PATH",
    "schedule_id": "ID",
    "channel": "--channel",
}
_ISO_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:\d\d|Z)")


def humane(exc: SchedulerError, config: SchedulerConfig | None) -> str:
    """The message a person reads: CLI option names instead of Python parameters, and every
    instant in the channel's local time with its zone, without microseconds."""
    text = str(exc)
    if isinstance(exc, InvalidScheduleError) and exc.field in _OPTION_OF_FIELD:
        text = f"invalid {_OPTION_OF_FIELD[exc.field]}: {exc.reason}"
    return local_times(text, config)


def local_times(text: str, config: SchedulerConfig | None) -> str:
    """Rewrite ISO 8601 instants in ``text`` as ``2026-05-01 18:00 KST`` in the channel zone."""
    if config is None:
        return text

    def local(match: re.Match[str]) -> str:
        try:
            when = datetime.fromisoformat(match.group(0).replace("Z", "+00:00"))
        except ValueError:
            return match.group(0)
        moment = when.astimezone(config.zone)
        fmt = "%Y-%m-%d %H:%M:%S %Z" if moment.second else "%Y-%m-%d %H:%M %Z"
        return moment.strftime(fmt)

    return _ISO_INSTANT.sub(local, text)
