"""The boxes of an ISO BMFF file (mp4, mov, HEIF, AVIF) one after another: each a
32-bit size, then its 4-letter kind, then its payload. A size of 1 means a 64-bit
size follows the kind; a size of 0, that the box runs to the end of the file or of
the box it is in."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class Box:
    """A box whose header starts at ``start``; its payload runs from ``body`` to
    ``end``, which is None where the box runs to the end of what holds it."""

    kind: bytes
    start: int
    body: int
    end: int | None


def boxes(read: Callable[[int, int], bytes], before: int | None = None) -> Iterator[Box]:
    """The boxes of what ``read(offset, n)`` gives (its n bytes there, fewer where it
    ends sooner), from offset 0, those that start before ``before`` where given.
    They stop at its end, or at a header cut short or stating a size smaller than
    the header itself: what follows cannot be found."""
    at = 0
    while before is None or at < before:
        head = read(at, 16)
        if len(head) < 8:
            return
        size, kind = struct.unpack_from(">I4s", head)
        body = at + 8
        if size == 0:  # the last box
            yield Box(kind, at, body, None)
            return
        if size == 1:  # a 64-bit size follows the kind
            if len(head) < 16:
                return
            size, body = struct.unpack_from(">Q", head, 8)[0], at + 16
        if at + size < body:
            return
        yield Box(kind, at, body, at + size)
        at += size


def children(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The boxes in ``data`` (a file's bytes, or a box's payload) as (kind, payload),
    in their order; a payload cut short by the end of ``data`` is given as it is."""
    for box in boxes(lambda at, n: data[at:at + n]):
        yield box.kind, data[box.body:box.end]


def top_box(path: str, kind: bytes) -> bytes | None:
    """The payload of the first top-level box of ``kind`` in the file at ``path``, the
    boxes before it passed over unread (a picture's or a video's data among them);
    None where it has none."""
    with open(path, "rb") as f:
        length = os.fstat(f.fileno()).st_size

        # Where a box states a size past the file's end (a damaged one), the walk
        # ends there and the box is what is left of the file: nothing is sought or
        # read past the end.
        def read(at: int, n: int) -> bytes:
            if at >= length:
                return b""
            f.seek(at)
            return f.read(n)

        for box in boxes(read):
            if box.kind == kind:
                end = length if box.end is None else min(box.end, length)
                f.seek(box.body)
                return f.read(end - box.body)
    return None


# The box that begins each kind of box of an index (moov), where it must: one begun so
# under another kind is of this kind, its own damaged.
_BEGUN_BY = {b"mvhd": b"moov", b"tkhd": b"trak", b"mdhd": b"mdia", b"stsd": b"stbl"}
# The kinds of box of an index that hold the boxes looked at.
_HOLDERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})


def misnamed(found: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    """The first box among ``found`` (kind, payload: ``children``'s) or within those
    of an index's kinds, whose kind is damaged: the box it begins with says what it
    is (a track begins with its header, tkhd), or, that one's kind damaged, what it
    is in says what it begins with. (That kind, the kind it reads), or None. Looked
    for where the file was not read as a video: muxers write these boxes first."""
    for kind, payload in found:
        inner = list(children(payload))
        first = inner[0][0] if inner else None
        should = _BEGUN_BY.get(first)
        if should is not None and kind != should:
            return should, kind
        begun = next((head for head, holder in _BEGUN_BY.items() if holder == kind), None)
        if begun is not None and first is not None and first != begun and first not in _BEGUN_BY:
            return begun, first
        if kind in _HOLDERS or should in _HOLDERS:
            if (deeper := misnamed(inner)) is not None:
                return deeper
    return None
