"""The media body of one upload request: a byte range of the file, streamed.

:class:`FileBody` is what ``http.client`` sends when handed an iterable body (with an explicit
``Content-Length``): it reads the range through one reused buffer (1 MiB by default, allocated
once per upload), so memory stays flat whatever the file or request size, and it can be iterated
only once: any layer trying to send it a second time (httplib2 after a lost answer, an
``AuthorizedHttp`` re-send after a 401) gets :class:`StreamReused`, a transient connection
error, instead of a half-read stream. After each buffer handed to the socket it calls
``on_sent(offset)`` (the file offset reached), so progress and cancellation work while a long
request is in flight.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator

__all__ = ["DEFAULT_BUFFER_SIZE", "FileBody", "StreamReused"]

#: Bytes read from the file and handed to the socket per step.
DEFAULT_BUFFER_SIZE = 1024 * 1024


class StreamReused(ConnectionError):
    """A request body was asked for a second time: the request is not re-sent from here."""


class FileBody:
    """Bytes ``[start, start + length)`` of ``path`` as a one-shot request body.

    Args:
        path: the media file.
        start: first byte to send.
        length: bytes to send (the request's ``Content-Length``).
        buffer: the reused read buffer (its whole size is used per step).
        on_sent: called with the file offset reached after each buffer was handed to the
            socket; an exception it raises stops the request.
    """

    def __init__(
        self,
        path: str,
        start: int,
        length: int,
        *,
        buffer: bytearray,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        if start < 0 or length < 0:
            raise ValueError("start and length must be >= 0")
        if not buffer:
            raise ValueError("buffer must not be empty")
        self.path = path
        self.start = start
        self.length = length
        self._buffer = buffer
        self._on_sent = on_sent
        self._used = False
        #: Bytes handed to the socket so far.
        self.sent = 0

    @property
    def spent(self) -> bool:
        """Has the body been handed to a connection already?"""
        return self._used

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[memoryview]:
        if self._used:
            raise StreamReused("a streamed request body cannot be sent twice")
        self._used = True
        return self._chunks()

    def _chunks(self) -> Iterator[memoryview]:
        view = memoryview(self._buffer)
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(self.start)
            while self.sent < self.length:
                want = min(len(view), self.length - self.sent)
                got = fh.readinto(view[:want])
                if not got:
                    raise OSError(
                        errno.EIO,
                        f"{self.path!r} ended at byte {self.start + self.sent}, "
                        f"before the {self.start + self.length} bytes announced",
                    )
                yield view[:got]
                self.sent += got
                if self._on_sent is not None:
                    self._on_sent(self.start + self.sent)
