"""An .avi file's index (idx1): 16 bytes for each chunk of its streams' data (its
ID, such as 00dc for stream 0's video, flags, offset and size), which its muxer
writes last, after the data (the movi list). FFmpeg reads the chunks where the index
points, and leaves out, unsaid, one it does not find there; it does not find the
index at all where the movi list's stated size runs past it (bytes cut out of the
data), and then reads the chunks one after another, skipping what it cannot read,
unsaid too. Knows nothing of PyAV."""
from __future__ import annotations

import os
from dataclasses import dataclass

ENTRY = 16  # bytes: chunk ID, flags, offset, size
LISTED = 0x1  # the flag of an entry that points to a list (AVIIF_LIST), not a chunk

# How far from the end the index is looked for where the chunks before it do not
# lead to it: a share of the file, as an index takes 16 bytes of each chunk (1% of a
# 32x24 clip's; far less of a real video's), within a bound on what is read.
TAIL_SHARE = 8
TAIL_MOST = 64 << 20


@dataclass(frozen=True)
class Index:
    """The ``entries`` of a file's index (idx1's payload, ENTRY bytes each), whose
    offsets count from ``base`` in the file (the movi list's ID, or its start)."""

    entries: bytes
    base: int

    def __len__(self) -> int:
        return len(self.entries) // ENTRY

    def chunk_id(self, k: int) -> bytes:
        return self.entries[k * ENTRY:k * ENTRY + 4]

    def flags(self, k: int) -> int:
        return int.from_bytes(self.entries[k * ENTRY + 4:k * ENTRY + 8], "little")

    def offset(self, k: int) -> int:
        return int.from_bytes(self.entries[k * ENTRY + 8:k * ENTRY + 12], "little")

    def size(self, k: int) -> int:
        return int.from_bytes(self.entries[k * ENTRY + 12:k * ENTRY + 16], "little")

    def video_chunks(self, stream: int, before: int | None = None, empty: bool = False) -> int:
        """How many chunks of stream ``stream``'s video (dc or db) come before entry
        ``before`` (None: all), those without data too where ``empty``: an empty chunk
        keeps a dropped frame's place."""
        mine = b"%02d" % stream
        return sum(1 for k in range(len(self) if before is None else before)
                   if self.chunk_id(k)[:2] == mine and self.chunk_id(k)[2:] in (b"dc", b"db")
                   and (empty or self.size(k)))


def _top_chunks(f, size: int):
    """(ID, start, stated size) of the top-level chunks of the first RIFF, in turn,
    up to one that states a size past the end."""
    at = 12
    while at + 8 <= size:
        f.seek(at)
        head = f.read(12)
        length = int.from_bytes(head[4:8], "little")
        yield head[:4] if head[:4] != b"LIST" else head[8:12], at, length
        at += 8 + length + (length & 1)


def _tail_index(f, size: int) -> int | None:
    """Where the index starts that ends the file, looked for in its tail: its size
    states just what is left of the file (padded to an even size)."""
    span = min(size, max(ENTRY << 12, size // TAIL_SHARE), TAIL_MOST)
    f.seek(size - span)
    tail = f.read(span)
    at = len(tail)
    while (at := tail.rfind(b"idx1", 0, at)) >= 0:
        length = int.from_bytes(tail[at + 4:at + 8], "little")
        if len(tail) - at - 8 - length in (0, 1) and length % ENTRY == 0:
            return size - span + at
    return None


def read(path) -> Index | None:
    """The index of the .avi file at ``path``, found after its data or, where the
    data's stated size runs past it, at the file's end; None without one (a file cut
    off has none) or where its first chunk is not where it points."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(12)[:4] != b"RIFF":
                return None
            movi = at = None
            for kind, start, length in _top_chunks(f, size):
                if kind == b"movi":
                    movi = start + 8  # the list's ID, which offsets count from
                elif kind == b"idx1" and start + 8 + length <= size:
                    at = start
                    break
            if movi is None:
                return None
            at = at if at is not None else _tail_index(f, size)
            if at is None:
                return None
            f.seek(at + 4)
            length = int.from_bytes(f.read(4), "little")
            entries = f.read(length)
            if not entries:
                return None
            # Offsets count from the movi list's ID, or, in some muxers' files, from
            # the file's start: the first chunk tells which.
            for base in (movi, 0):
                index = Index(entries, base)
                if _in_place(f, index, 0):
                    return index
    except OSError:
        pass
    return None


def _in_place(f, index: Index, k: int) -> bool:
    f.seek(index.base + index.offset(k))
    head = f.read(12)
    if index.flags(k) & LISTED:  # a list of chunks (rec), named by its type
        return head[:4] == b"LIST" and head[8:12] == index.chunk_id(k)
    return head[:4] == index.chunk_id(k) and int.from_bytes(head[4:8], "little") == index.size(k)


def first_misplaced(path, index: Index) -> int | None:
    """The first entry of ``index`` (of the file at ``path``) whose chunk is not where
    it points, where bytes were cut out of (or put into) the data before it: every
    chunk after is shifted too, so the last tells, and halving finds the first.
    None where the last is in place (a chunk overwritten midway is not looked for)."""
    try:
        with open(path, "rb") as f:
            last = len(index) - 1
            if _in_place(f, index, last):
                return None
            low, high = 0, last  # the first is in place (``read``); the last is not
            while high - low > 1:
                middle = (low + high) // 2
                if _in_place(f, index, middle):
                    low = middle
                else:
                    high = middle
            return high
    except OSError:
        return None
