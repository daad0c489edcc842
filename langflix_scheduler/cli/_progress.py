"""Upload progress on the console, for ``process`` and ``demo``.

CLI-side module: it renders with rich, so only the CLI (``cli/``) imports it; the library
modules never do.

:class:`UploadDisplay` shows one rich progress bar per upload in flight on a terminal, and plain
log lines otherwise (cron, systemd, pipes). :class:`DisplayingUploader` wraps any
:class:`~langflix_scheduler.youtube.uploader.Uploader` and forwards its progress reports to the
display, after the processor's own callback (whose exceptions, such as a stop request, still
propagate unchanged).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from ..domain import VideoState
from ..processor import ProcessorEvent, ProcessorEventKind
from ..youtube.uploader import (
    CallCallback,
    ProgressCallback,
    SessionProbe,
    StepCallback,
    Uploader,
    UploadRequest,
    UploadResult,
    reports_calls,
    upload_passing_calls,
)

_LABEL_CHARS = 40
#: Event kinds that report a video state found by a check on YouTube.
_VIDEO_STATES = frozenset(s.value for s in VideoState)


def _label(request: UploadRequest) -> str:
    title = request.metadata.title
    return title if len(title) <= _LABEL_CHARS else title[: _LABEL_CHARS - 1] + "…"


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


class UploadDisplay:
    """Progress bars on a terminal, plain lines otherwise. Thread-safe.

    Args:
        console: where to render.
        live: force bars on or off (default: bars when ``console`` is a terminal).
        describe: ``schedule_id -> text`` used in event lines (e.g. the title).
        fmt_time: renders times in event lines (default ISO 8601).
        timestamps: prefix plain lines with the wall-clock time (for logs).
    """

    def __init__(
        self,
        console: Console,
        *,
        live: bool | None = None,
        describe: Callable[[int], str] | None = None,
        fmt_time: Callable[[datetime], str] | None = None,
        timestamps: bool = False,
    ) -> None:
        self.console = console
        self.timestamps = timestamps
        self.live = console.is_terminal if live is None else live
        self._describe = describe
        self._fmt_time = fmt_time or (lambda t: t.isoformat())
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._tasks: dict[int, TaskID] = {}
        if self.live:
            self._progress = Progress(
                TextColumn(
                    "{task.description}",
                    markup=False,
                    table_column=Column(width=28, no_wrap=True, overflow="ellipsis"),
                ),
                BarColumn(bar_width=16),
                TaskProgressColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> UploadDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def print(self, text: str) -> None:
        """Print a line (above the bars when they are shown)."""
        if self.timestamps:
            text = f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} {text}"
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # -- called from upload threads ------------------------------------------------------------

    def started(self, key: int, request: UploadRequest) -> None:
        label = _label(request)
        how = "resuming" if request.session_uri or request.video_id else "uploading"
        if self._progress is None:
            self.print(f"{how}: {label} ({os.path.basename(request.video_path)})")
            return
        with self._lock:
            self._tasks[key] = self._progress.add_task(f"{how} {label}", total=None)

    def advanced(self, key: int, sent: int, total: int) -> None:
        if self._progress is None:
            return
        with self._lock:
            task = self._tasks.get(key)
        if task is not None:
            self._progress.update(task, completed=sent, total=total or None)

    def finished(self, key: int, request: UploadRequest, error: BaseException | None) -> None:
        label = _label(request)
        if self._progress is None:
            if error is not None:
                self.print(f"interrupted: {label}: {type(error).__name__}: {error}")
            return
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            # Only uploads in flight keep a bar; the outcome is printed as an event line.
            self._progress.remove_task(task)

    # -- called from the processor's run thread ------------------------------------------------

    def event(self, event: ProcessorEvent) -> None:
        """One line per committed transition (a claim has its own line: :meth:`started`)."""
        if event.kind is ProcessorEventKind.CLAIMED:
            return
        what = f"#{event.schedule_id}"
        if self._describe is not None:
            what += f" {self._describe(event.schedule_id)}"
        kind = event.kind
        if kind is ProcessorEventKind.UPLOADED:
            line = f"uploaded {what} -> video {event.video_id}"
        elif kind is ProcessorEventKind.RETRIED:
            line = f"retry {what} at {self._when(event.next_attempt_at)} ({event.error})"
        elif kind is ProcessorEventKind.DEFERRED:
            line = f"deferred {what} to {self._when(event.next_attempt_at)} ({event.error})"
        elif kind is ProcessorEventKind.FAILED:
            line = f"FAILED {what}: {event.error}"
        elif kind is ProcessorEventKind.NEEDS_REVIEW:
            line = f"NEEDS REVIEW {what}: {event.error}"
        elif kind.value in _VIDEO_STATES:
            line = f"video {event.video_id} of {what} is {kind.value}"
            if event.error:
                line += f": {event.error}"
        elif kind is ProcessorEventKind.CHANGE_APPLIED:
            line = f"change #{event.change_id} ({event.change_kind}) of {what} applied on YouTube"
        elif kind is ProcessorEventKind.CHANGE_ROLLED_BACK:
            line = (
                f"change #{event.change_id} ({event.change_kind}) of {what} ROLLED BACK: "
                f"{event.error}"
            )
        elif kind is ProcessorEventKind.CHANNEL_PAUSED:
            line = (
                f"CHANNEL PAUSED {event.channel_id} (found by {what}): {event.error}; run "
                f"`langflix-scheduler auth --channel {event.channel_id}`"
            )
        else:
            line = f"{kind.value} {what} (expired lease taken back)"
        if event.attempts and kind is not ProcessorEventKind.DEFERRED:
            line += f" [attempts: {event.attempts}]"
        self.print(line)

    def _when(self, when: datetime | None) -> str:
        return "-" if when is None else self._fmt_time(when)


class DisplayingUploader:
    """An :class:`Uploader` that reports another uploader's progress to an :class:`UploadDisplay`.

    Thread-safe when the wrapped uploader is.
    """

    def __init__(self, inner: Uploader, display: UploadDisplay) -> None:
        self.inner = inner
        self.display = display
        self._lock = threading.Lock()
        self._next_key = 0

    @property
    def reports_api_calls(self) -> bool:
        """Whether the wrapped uploader reports its API calls (``on_call`` is passed on)."""
        return reports_calls(self.inner)

    def upload(
        self,
        request: UploadRequest,
        *,
        progress: ProgressCallback | None = None,
        on_step: StepCallback | None = None,
        on_call: CallCallback | None = None,
    ) -> UploadResult:
        """Upload with ``inner``, showing its progress."""
        with self._lock:
            self._next_key += 1
            key = self._next_key
        self.display.started(key, request)

        def report(sent: int, total: int, uri: str | None) -> None:
            if progress is not None:
                progress(sent, total, uri)
            self.display.advanced(key, sent, total)

        try:
            result = upload_passing_calls(
                self.inner, request, progress=report, on_step=on_step, on_call=on_call
            )
        except BaseException as exc:
            self.display.finished(key, request, exc)
            raise
        self.display.finished(key, request, None)
        return result

    def probe_session(self, session_uri: str, video_path: str) -> SessionProbe:
        """Ask ``inner`` about a stored session (the processor does before giving up on one).

        Raises:
            NotImplementedError: ``inner`` cannot ask sessions (the processor then marks the
                schedule ``needs_review``, as it does for an uploader without the method).
        """
        probe = getattr(self.inner, "probe_session", None)
        if not callable(probe):
            raise NotImplementedError("the uploader cannot ask upload sessions")
        answer: SessionProbe = probe(session_uri, video_path)
        return answer
