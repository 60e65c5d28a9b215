"""Whether a picture file of a format the commands write ends as that format must:
--skip-existing took an output whose end was missing (a copy, or another tool,
stopped while writing it; a disk that filled) for done. Only the file's first and
last bytes are read (an AVIF's box headers), so a folder of thousands is looked at
in moments; a file that does not start as one of these formats is not judged."""
from __future__ import annotations

import os

_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: empty, with its CRC
_JPEG = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"
_TAIL = 16


def is_cut_short(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts as a PNG, JPEG, WebP, GIF or AVIF (ISOBMFF) file but
    lacks the end its format states; False for any other file, and for one that
    cannot be read (its writing, or reading it as a picture, says why)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL))
            tail = f.read()
            if head[4:8] == b"ftyp":
                return not _boxes_fill(f, size)
    except OSError:
        return False
    if head.startswith(_PNG):
        return not tail.endswith(_PNG_END)
    if head.startswith(_JPEG):
        # Some writers pad past the end marker with zero bytes.
        return not tail.rstrip(b"\x00").endswith(_JPEG_END)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        # The RIFF header states the size of all that follows its first 8 bytes.
        return size < int.from_bytes(head[4:8], "little") + 8
    if head.startswith((b"GIF87a", b"GIF89a")):
        return not tail.endswith(b";")  # the trailer
    return False


def _boxes_fill(f, size: int) -> bool:
    """Whether the top-level boxes of the ISOBMFF file ``f`` (AVIF, HEIF) of ``size``
    bytes each lie whole within it."""
    at = 0
    while at < size:
        f.seek(at)
        header = f.read(16)
        if len(header) < 8:
            return False
        length = int.from_bytes(header[:4], "big")
        if length == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return False
            length = int.from_bytes(header[8:16], "big")
        elif length == 0:  # the box runs to the end of the file
            return True
        if length < 8:
            return False
        at += length
    return at == size
