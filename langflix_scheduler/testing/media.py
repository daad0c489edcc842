"""Tiny, valid MP4 files for tests and demos: a container that states a frame size, a duration and
optionally a rotation flag, with no real picture in it.

The booking check (:mod:`langflix_scheduler.media`) reads these headers like those of a real
video, so tests can book a Short (vertical, <= 180 s), a regular video, or a phone video stored
landscape with a 90-degree rotation flag, without shipping media files or running ffmpeg.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["write_mp4"]

_TIMESCALE = 1000
_UNITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_ROTATIONS = {
    0: _UNITY,
    90: (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000),
    180: (-0x10000, 0, 0, 0, -0x10000, 0, 0, 0, 0x40000000),
    270: (0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000),
}


def _box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full_box(kind: bytes, flags: int, payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags) + payload)  # version 0


def _track(width: int, height: int, duration: int, matrix: bytes) -> bytes:
    tkhd = _full_box(
        b"tkhd",
        3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration)
        + bytes(8)
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + matrix
        + struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, struct.pack(">I4s", 0, b"vide") + bytes(12) + b"video\0")
    avc1 = _box(
        b"avc1",
        bytes(6)
        + struct.pack(">H", 1)
        + bytes(16)
        + struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1)
        + bytes(32)
        + struct.pack(">Hh", 0x18, -1),
    )
    no_samples = struct.pack(">I", 0)
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, struct.pack(">I", 1) + avc1)
        + _full_box(b"stts", 0, no_samples)
        + _full_box(b"stsc", 0, no_samples)
        + _full_box(b"stsz", 0, struct.pack(">II", 0, 0))
        + _full_box(b"stco", 0, no_samples),
    )
    dinf = _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1) + _full_box(b"url ", 1, b"")))
    minf = _box(b"minf", _full_box(b"vmhd", 1, bytes(8)) + dinf + stbl)
    return _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))


def write_mp4(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    seconds: float,
    rotation: int = 0,
    payload: bytes = b"",
) -> Path:
    """Write an MP4 whose headers state ``width`` x ``height`` (as stored), ``seconds`` and a
    ``rotation`` flag (0, 90, 180 or 270 degrees), followed by ``payload`` in an ``mdat`` box
    (random bytes make files distinct and give uploads a size). Returns the path."""
    duration = round(seconds * _TIMESCALE)
    matrix = struct.pack(">9i", *_ROTATIONS[rotation])
    mvhd = _full_box(
        b"mvhd",
        0,
        struct.pack(">IIIIiH", 0, 0, _TIMESCALE, duration, 0x10000, 0x100)
        + bytes(10)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2),
    )
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    data = ftyp + _box(b"moov", mvhd + _track(width, height, duration, matrix))
    if payload:
        data += _box(b"mdat", payload)
    out = Path(path)
    out.write_bytes(data)
    return out
