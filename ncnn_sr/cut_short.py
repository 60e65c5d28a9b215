"""Whether a picture file of a format the commands write ends as that format must:
--skip-existing took an output whose end was missing (a copy, or another tool,
stopped while writing it; a disk that filled) for done. Only the file's first and
last bytes are read (an AVIF's box headers), so a folder of thousands is looked at
in moments; a file that does not start as one of these formats is not judged."""
from __future__ import annotations

import os
import stat

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


_EBML, _SEGMENT = 0x1A45DFA3, 0x18538067


def video_fault(path: str | os.PathLike) -> str | None:
    """Why the video file ``path``, there, is no finished output, or None: it is empty,
    its container is cut short (an mp4's or mov's boxes, a Matroska or WebM segment,
    running past the file's end), or FFmpeg cannot open it (an mp4 whose moov box never
    came). A file that is not a plain file, or cannot be read, is not judged."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size == 0:
            return "is empty"
        with open(path, "rb") as f:
            head = f.read(16)
            cut = not _boxes_fill(f, st.st_size) if head[4:8] == b"ftyp" else \
                _segment_cut(f, st.st_size) if head.startswith(_EBML.to_bytes(4, "big")) else False
    except OSError:
        return None
    if cut:
        return "is cut short (its end is missing)"
    import av  # here, as the videos are run: loaded with them
    try:
        av.open(os.fspath(path)).close()
    except av.error.InvalidDataError as e:
        return f"cannot be opened as a video ({e.strerror or e})"
    except (av.error.FFmpegError, OSError):
        return None  # not the file's fault, or not known to be
    return None


def _segment_cut(f, size: int) -> bool:
    """Whether the Matroska (WebM) file ``f`` of ``size`` bytes ends before its Segment
    or, where the Segment's size is left unknown (written as it was made), its last
    element states. An element of unknown size ends the look: nothing says where."""
    header = _element(f, 0, size)
    if header is None:
        return True
    at = header[1] + header[2]
    segment = _element(f, at, size)
    if segment is None or segment[0] != _SEGMENT:
        return segment is None
    _, start, length = segment
    if length is not None:
        return start + length > size
    at = start
    while at < size:
        element = _element(f, at, size)
        if element is None:
            return True
        _, start, length = element
        if length is None:
            return False
        at = start + length
    return at > size


def _element(f, at: int, size: int) -> tuple[int, int, int | None] | None:
    """(id, where its data starts, its size or None where unknown) of the EBML element
    at ``at``; None where its header runs past ``size``."""
    f.seek(at)
    data = f.read(16)
    ident = _vint(data, 0, keep_marker=True)
    if ident is None:
        return None
    value, used = ident
    length = _vint(data, used)
    if length is None:
        return None
    count, more = length
    unknown = count == (1 << (7 * more)) - 1
    start = at + used + more
    return (value, start, None if unknown else count) if start <= size else None


def _vint(data: bytes, at: int, keep_marker: bool = False) -> tuple[int, int] | None:
    """(value, its length in bytes) of the EBML variable-size integer at ``at``."""
    if at >= len(data) or data[at] == 0:
        return None
    length = 9 - data[at].bit_length()
    if at + length > len(data):
        return None
    value = int.from_bytes(data[at:at + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), length
