"""What Pillow leaves out of AVIF: how many times an animation plays, which its
reader does not say.

An AVIF animation is a track of an ISO BMFF file. Its edit list (moov/trak/edts/elst)
says whether it repeats; a repeating one plays until the track's duration (tkhd) is
filled, for ever where that duration is "indefinite" (all ones). Read as libavif
reads it: without an edit list the count is unknown, which browsers play for ever.
"""
from __future__ import annotations

import struct

# Containers walked down to the boxes read here.
_CONTAINERS = (b"moov", b"trak", b"edts", b"mdia")


def plays(data: bytes) -> int:
    """How many times the AVIF animation in ``data`` (the file's bytes) is shown, 0
    for ever, as ``Animation.plays`` counts; 0 where the file says nothing
    readable about it."""
    for trak in _boxes(data, b"moov", b"trak"):
        handler = next(_boxes(trak, b"mdia", b"hdlr"), b"")
        if handler[8:12] != b"pict":  # an alpha or a depth track, or sound
            continue
        elst = next(_boxes(trak, b"edts", b"elst"), None)
        tkhd = next(_boxes(trak, b"tkhd"), None)
        try:
            return _plays(elst, tkhd)
        except struct.error:  # a box cut short
            return 0
    return 0


def _plays(elst: bytes | None, tkhd: bytes | None) -> int:
    if elst is None or tkhd is None:
        return 0
    if not elst[3] & 1:  # flags: the edits are not repeated
        return 1
    wide = elst[0] == 1  # version 1: 64-bit durations
    if struct.unpack_from(">I", elst, 4)[0] == 0:  # no edit
        return 0
    segment = struct.unpack_from(">Q" if wide else ">I", elst, 8)[0]
    if tkhd[0] == 1:
        track, indefinite = struct.unpack_from(">Q", tkhd, 28)[0], 2**64 - 1
    else:
        track, indefinite = struct.unpack_from(">I", tkhd, 20)[0], 2**32 - 1
    if track == indefinite or segment == 0 or track == 0:
        return 0
    return -(-track // segment)  # a last showing cut short is a showing


def _boxes(data: bytes, *path: bytes):
    """The payloads of the boxes at ``path`` (kinds, outermost first) in ``data``."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1 and at + 16 <= len(data):
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:  # to the end of its container
            size = len(data) - at
        if size < head:
            return
        if kind == path[0]:
            payload = data[at + head:at + size]
            if len(path) == 1:
                yield payload
            elif kind in _CONTAINERS:
                yield from _boxes(payload, *path[1:])
        at += size
