"""Cover art put into an mp4-family file after FFmpeg has written it, as iTunes keeps
it: a covr atom in moov/udta/meta/ilst, each picture in a data atom whose type says
JPEG, PNG or BMP. FFmpeg's ipod muxer (.m4v) takes no picture stream to write one
from, and its mov muxer writes none in a .mov; its reader gives one back from either
as an attached picture, the bytes as they were.

And QuickTime keys (com.apple.quicktime.location.ISO6709, say), which FFmpeg's mov
and mp4 muxers write only with -movflags use_metadata_tags, and then write every tag
as one: the title too, which players look for in its iTunes or QuickTime atom."""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Callable

from . import isobmff

# The muxers whose outputs get their cover art here (an mp4's muxer writes its own).
MUXERS = frozenset({"ipod", "mov"})

# The muxers whose outputs get QuickTime keys here.
KEYED_MUXERS = frozenset({"ipod", "mov", "mp4"})

# The data atom's type of a picture, by FFmpeg's name of its codec (as read back).
KINDS = {"mjpeg": 13, "png": 14, "bmp": 27}

# The handler of a meta atom that holds iTunes metadata (ilst), as FFmpeg writes it:
# version and flags, none predefined, mdir by appl, no name.
_ITUNES_HANDLER = struct.pack(">II4s4sII", 0, 0, b"mdir", b"appl", 0, 0) + b"\0"

# The handler of a meta atom that holds QuickTime keys: mdta, the rest none, no name.
_KEYS_HANDLER = struct.pack(">II4s12s", 0, 0, b"mdta", bytes(12)) + b"\0"

# A data atom's type of UTF-8 text.
_UTF8 = 1


def add_covers(path: Path, pictures: list[tuple[str, bytes]]) -> bool:
    """Put ``pictures`` (codec, bytes; each codec one of KINDS) into the file at
    ``path`` as its cover art, in place; False where it has no moov to hold them."""
    covr = _box(b"covr", b"".join(_box(b"data", struct.pack(">II", KINDS[codec], 0) + data)
                                  for codec, data in pictures))
    return _grow_moov(path, lambda moov: _with_cover(moov, covr))


def add_keys(path: Path, tags: dict[str, str], iso: bool) -> bool:
    """Put ``tags`` into the file at ``path`` as QuickTime keys, in place, each value
    UTF-8 text, where a phone's camera keeps them: a meta atom of handler mdta in the
    moov itself, with the version and flags an ISO file's (``iso``: an mp4's, not a
    .mov's) has; False where it has no moov to hold them."""
    names = [name.encode() for name in tags]
    keys = struct.pack(">II", 0, len(names)) + b"".join(struct.pack(">I4s", 8 + len(name), b"mdta") + name
                                                        for name in names)
    # Each value is an atom named by its key's place in the keys atom, from 1.
    values = b"".join(_box(struct.pack(">I", place), _box(b"data", struct.pack(">II", _UTF8, 0) + value.encode()))
                      for place, value in enumerate(tags.values(), 1))
    meta = b"\0\0\0\0" * iso + _box(b"hdlr", _KEYS_HANDLER) + _box(b"keys", keys) + _box(b"ilst", values)
    return _grow_moov(path, lambda moov: moov + _box(b"meta", meta))


def _grow_moov(path: Path, change: Callable[[bytes], bytes]) -> bool:
    """Make the payload of the moov of the file at ``path`` what ``change`` makes of
    it, in place; False where it has no moov. The media data stays where it is, so
    no chunk offset changes: a moov last in the file (as FFmpeg writes it without
    faststart) is written over, grown; one before the media data is made a free box,
    and the grown one follows at the end."""
    with open(path, "r+b") as f:
        length = os.fstat(f.fileno()).st_size

        def read(at: int, n: int) -> bytes:
            f.seek(at)
            return f.read(n)

        moov = next((box for box in isobmff.boxes(read) if box.kind == b"moov"), None)
        if moov is None:
            return False
        end = length if moov.end is None else min(moov.end, length)
        f.seek(moov.body)
        grown = _box(b"moov", change(f.read(end - moov.body)))
        if end < length:
            f.seek(moov.start + 4)
            f.write(b"free")
            f.seek(length)
        else:
            f.seek(moov.start)
        f.write(grown)
        f.truncate()
    return True


def _with_cover(moov: bytes, covr: bytes) -> bytes:
    """The payload ``moov`` with ``covr`` at the end of its iTunes metadata, each
    atom on the way made where missing."""
    def in_meta(meta: bytes) -> bytes:
        meta = meta or b"\0\0\0\0" + _box(b"hdlr", _ITUNES_HANDLER)
        # An ISO meta has a version and flags before its atoms; QuickTime's has none.
        return _put(meta, b"ilst", lambda ilst: ilst + covr, skip=0 if meta[4:8] == b"hdlr" else 4)

    def in_udta(udta: bytes) -> bytes:
        return _put(udta, b"meta", in_meta, fits=lambda meta: _handler(meta) == b"mdir")

    return _put(moov, b"udta", in_udta)


def _handler(meta: bytes) -> bytes | None:
    """The handler type of the meta atom of payload ``meta`` (mdir: iTunes metadata;
    mdta: QuickTime's keys); None where it has none."""
    skip = 0 if meta[4:8] == b"hdlr" else 4
    hdlr = next((body for kind, body in isobmff.children(meta[skip:]) if kind == b"hdlr"), None)
    return None if hdlr is None or len(hdlr) < 12 else hdlr[8:12]


def _put(payload: bytes, kind: bytes, change: Callable[[bytes], bytes], skip: int = 0,
         fits: Callable[[bytes], bool] = lambda body: True) -> bytes:
    """``payload`` (an atom's, its first ``skip`` bytes before its atoms) with its
    first atom of ``kind`` that ``fits`` given the payload ``change`` makes of it;
    where none, with one of ``change(b"")`` added at its end. The atoms around it stay
    as they are, byte for byte."""
    atoms = payload[skip:]
    for box in isobmff.boxes(lambda at, n: atoms[at:at + n]):
        end = len(atoms) if box.end is None else min(box.end, len(atoms))
        if box.kind == kind and fits(atoms[box.body:end]):
            return payload[:skip + box.start] + _box(kind, change(atoms[box.body:end])) + payload[skip + end:]
    return payload + _box(kind, change(b""))


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload
