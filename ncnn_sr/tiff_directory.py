"""The directories (IFDs) of a classic TIFF, which an EXIF block is too: their
entries, the whole numbers they hold, and each entry rewritten in a copy of the
bytes. Offsets count from the TIFF header, which an EXIF block may start after a
prefix of its own (``base``)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

# Entry types: 16- and 32-bit whole numbers, and a fraction of two 32-bit ones.
SHORT, LONG, RATIONAL = 3, 4, 5


def header(data: bytes, base: int = 0) -> tuple[str, int, int]:
    """The byte order (a struct prefix), version (42, or 43 for a BigTIFF) and first
    directory's offset of the TIFF header at ``base`` in ``data``. ValueError where
    there is none."""
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[base:base + 2]))
    if order is None or len(data) < base + 8:
        raise ValueError("not a TIFF")
    version, first = struct.unpack_from(order + "HI", data, base + 2)
    return order, version, first


@dataclass(frozen=True)
class Entry:
    """One entry of a directory: ``count`` values of ``kind``, its 12 bytes at ``at``."""

    tag: int
    kind: int
    count: int
    at: int


class Directory:
    """The directory at ``offset`` of the TIFF at ``base`` in ``data``, in byte
    ``order``. ValueError where it runs past the end of ``data``."""

    def __init__(self, data: bytes, order: str, offset: int, base: int = 0) -> None:
        start = base + offset
        if start + 2 > len(data):
            raise ValueError("no directory")
        count = struct.unpack_from(order + "H", data, start)[0]
        if start + 2 + 12 * count > len(data):
            raise ValueError("directory cut short")
        self.data, self.order, self.base = data, order, base
        self.entries = tuple(Entry(*struct.unpack_from(order + "HHI", data, at), at)
                             for at in range(start + 2, start + 2 + 12 * count, 12))
        # A tag given twice is read as Pillow reads it: the last one.
        self._by_tag = {entry.tag: entry for entry in self.entries}

    def __contains__(self, tag: int) -> bool:
        return tag in self._by_tag

    def entry(self, tag: int) -> Entry:
        return self._by_tag[tag]

    def values(self, tag: int) -> tuple[int, ...] | None:
        """The values of ``tag``'s entry where they are shorts or longs, all of them in
        the data; else None."""
        entry = self._by_tag.get(tag)
        if entry is None or entry.kind not in (SHORT, LONG) or entry.count == 0:
            return None
        size = (2 if entry.kind == SHORT else 4) * entry.count
        where = entry.at + 8 if size <= 4 else self.base + self.offset(entry)
        if where + size > len(self.data):
            return None
        return struct.unpack_from(self.order + ("H" if entry.kind == SHORT else "I") * entry.count, self.data, where)

    def first(self, tag: int, default: int | None) -> int | None:
        return (self.values(tag) or (default,))[0]

    def offset(self, entry: Entry) -> int:
        """The 4 bytes of ``entry``'s value as one long: where its values are, or the
        directory a pointer entry (the Exif one) names."""
        return struct.unpack_from(self.order + "I", self.data, entry.at + 8)[0]

    def put(self, out: bytearray, tag: int, kind: int, *values: int) -> None:
        """Writes ``tag``'s entry in ``out`` (the data or a copy of it) as ``values``,
        after the end of ``out`` where they do not fit in the entry."""
        self.put_entry(out, self._by_tag[tag], kind, *values)

    def put_entry(self, out: bytearray, entry: Entry, kind: int, *values: int) -> None:
        """``put`` for one ``entry``, where a tag may be given twice."""
        packed = struct.pack(self.order + ("H" if kind == SHORT else "I") * len(values), *values)
        if len(packed) > 4:
            out += b"\0" * (len(out) % 2)  # values start on a word boundary
            where = len(out) - self.base
            out += packed
            packed = struct.pack(self.order + "I", where)
        packed = struct.pack(self.order + "HHI", entry.tag, kind, len(values)) + packed.ljust(4, b"\0")
        out[entry.at:entry.at + 12] = packed
