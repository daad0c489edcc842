"""The content fingerprint of a video file: its full SHA-256, streamed.

A file is read once, in :data:`CHUNK_BYTES` pieces into one reused buffer (no whole-file read, no
allocation per chunk), and the stat the hash belongs to is returned with it. The booking path
stores the three together, so an unchanged file (same path, size and mtime) is not read again.

The stat is taken on the open file before and after reading; a file that is being written while
it is hashed raises :class:`FileChangedError` instead of returning a hash of a mix of versions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

__all__ = [
    "CHUNK_BYTES",
    "FileChangedError",
    "Fingerprint",
    "content_changed",
    "fingerprint_file",
]

#: Read size. 4 MiB keeps the system-call overhead negligible while the buffer stays small.
CHUNK_BYTES = 4 * 1024 * 1024


class FileChangedError(OSError):
    """The file changed (size or mtime) while it was being hashed."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A file's SHA-256 (hex) and the stat (size, mtime in ns) it was computed for."""

    sha256: str
    size: int
    mtime_ns: int

    def matches_stat(self, st: os.stat_result) -> bool:
        """True when ``st`` says the file is still the one this fingerprint was computed for."""
        return (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)


def fingerprint_file(
    path: str | os.PathLike[str], *, chunk_bytes: int = CHUNK_BYTES
) -> Fingerprint:
    """Hash the whole file at ``path``.

    Raises:
        FileChangedError: the file's size or mtime changed while it was read.
        OSError: the file cannot be opened or read.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be >= 1")
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        before = os.fstat(f.fileno())
        # A small file gets a small buffer (+1 so that EOF is seen in the second read).
        buffer = bytearray(min(chunk_bytes, before.st_size + 1))
        view = memoryview(buffer)
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            digest.update(view[:n])
        after = os.fstat(f.fileno())
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise FileChangedError(f"{os.fspath(path)!r} changed while it was being hashed")
    return Fingerprint(digest.hexdigest(), before.st_size, before.st_mtime_ns)


def content_changed(
    path: str | os.PathLike[str], *, sha256: str | None, size: int | None, mtime_ns: int | None
) -> str | None:
    """Why the file at ``path`` is no longer the content booked as ``sha256``, or None.

    The stat is compared first; only a file whose size or mtime moved is read again. A file that
    cannot be stat'ed or read is left to the caller's own error handling (None), and a schedule
    booked without a fingerprint (``sha256`` None) is not checked.
    """
    if sha256 is None:
        return None
    try:
        st = os.stat(path)
        if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
            return None
        found = fingerprint_file(path).sha256
    except FileChangedError:
        found = "(being written)"
    except OSError:
        return None
    if found == sha256:
        return None
    return (
        f"the file changed after it was booked (sha256 expected {sha256[:12]}..., found "
        f"{found[:12]}...): book it again"
    )
