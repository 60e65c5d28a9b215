"""What Pillow leaves out of AVIF: how many times an animation plays, the colour its
nclx states and its depth, which its reader does not say, and the colour its writer
does not take.

An AVIF animation is a track of an ISO BMFF file. Its edit list (moov/trak/edts/elst)
says whether it repeats; a repeating one plays until the track's duration (tkhd) is
filled, for ever where that duration is "indefinite" (all ones). Read as libavif
reads it: without an edit list the count is unknown, which browsers play for ever.
"""
from __future__ import annotations

import struct

import numpy as np
from PIL import features

from .files import ffmpeg_name
from .isobmff import boxes, children, top_box

# How far FFmpeg's reading of a deep AVIF may stray from libavif's (through Pillow),
# as the root mean square over 4x4 blocks of their difference, in 8-bit levels: the
# same picture differed by 0.5 to 1.5 (1.5 in noise), a wrong range or matrix by 5 to 9.
_AGREEING = 3.0

# Containers walked down to the boxes read here.
_CONTAINERS = (b"moov", b"trak", b"edts", b"mdia")


def plays(data: bytes) -> int:
    """How many times the AVIF animation in ``data`` (the file's bytes) is shown, 0
    for ever, as ``Animation.plays`` counts; 0 where the file says nothing
    readable about it."""
    return next((_tracks_plays(moov) for moov in _boxes(data, b"moov")), 0)


def file_plays(path: str) -> int:
    """``plays`` of the AVIF at ``path``, reading its moov box alone: not the
    frames, which may be most of a large file."""
    try:
        moov = top_box(path, b"moov")
    except OSError:
        return 0
    return 0 if moov is None else _tracks_plays(moov)


def _tracks_plays(moov: bytes) -> int:
    for trak in _boxes(moov, b"trak"):
        handler = next(_boxes(trak, b"mdia", b"hdlr"), b"")
        if handler[8:12] != b"pict":  # an alpha or a depth track, or sound
            continue
        elst = next(_boxes(trak, b"edts", b"elst"), None)
        tkhd = next(_boxes(trak, b"tkhd"), None)
        try:
            return _plays(elst, tkhd)
        except (struct.error, IndexError):  # a box cut short
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


def is_avif(path: str) -> bool:
    """Whether the file at ``path`` names AVIF among its brands (its ftyp box), which
    a HEIF reader takes too."""
    try:
        ftyp = top_box(path, b"ftyp") or b""
    except OSError:
        return False
    brands = {ftyp[i:i + 4] for i in range(0, len(ftyp) - 3, 4)} - {ftyp[4:8]}  # less the minor version
    return bool(brands & {b"avif", b"avis"})


def brand_passed_by(path: str) -> bool:
    """Whether the file at ``path`` is an AVIF by its compatible brands (``is_avif``)
    whose major brand is not AVIF's, and Pillow reads AVIF. libavif (browsers') reads
    it as AVIF, but Pillow gives its AVIF reader only a major brand of avif, avis,
    mif1 or msf1, and pillow-heif takes those last two first, with a libheif that
    decodes no AV1: a damaged major brand made it a video (MP4), a HEIF one broken."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return (head[4:8] == b"ftyp" and head[8:12] not in (b"avif", b"avis") and is_avif(path)
            and bool(features.check_module("avif")))


def failure(path: str) -> str:
    """libavif's reason for refusing the AVIF at ``path``, which Pillow hides (it
    said no format fits a truncated one)."""
    from PIL import AvifImagePlugin

    try:
        with open(path, "rb") as f:
            AvifImagePlugin._avif.AvifDecoder(f.read(), "auto", 1)
    except Exception as e:  # noqa: BLE001 - only its words are wanted
        return " ".join(str(e).split()) or type(e).__name__
    return "libavif reads it, Pillow does not"


def coded_colour(path: str) -> tuple[int, int] | None:
    """The H.273 primaries and transfer the primary picture of the AVIF at ``path``
    states (its nclx colour property), which libavif leaves to the reader: it gives
    the samples in them, and Pillow says nothing of them. None where it states
    none (an ICC profile, which Pillow reads, or no colour), or the file cannot be
    walked to them."""
    for kind, payload in _primary_properties(path):
        if kind == b"colr" and payload[:4] == b"nclx" and len(payload) >= 8:  # one cut short states nothing
            return struct.unpack_from(">HH", payload, 4)
    return None


def bit_depth(path: str) -> int:
    """The bits per sample the primary picture of the AVIF at ``path`` states (its
    pixi property; the most of its channels), 8 where it states none readable."""
    for kind, payload in _primary_properties(path):
        if kind == b"pixi" and len(payload) >= 6 and len(payload) >= 5 + payload[4]:
            return max(payload[5:5 + payload[4]], default=8)
    return 8


def read16(path: str, shallow: np.ndarray) -> np.ndarray | None:
    """The H×W×3 uint16 colour of the deep (10- or 12-bit) AVIF at ``path``, spread
    over 16 bits as a 16-bit PNG holds it, decoded through FFmpeg (libdav1d), as
    Pillow's reader gives 8 bits only; ``shallow`` is Pillow's reading of it. None
    where FFmpeg cannot decode it or its picture is not Pillow's: another size (a
    grid of tiles, which FFmpeg gives one by one), or colours that differ in the
    mean over 4x4 blocks by more than ``_AGREEING`` 8-bit levels (a matrix or range
    read otherwise than libavif's; the two upsample chroma apart, which differs
    pixel by pixel, not in a block's mean)."""
    import av  # only this rare case needs it

    try:
        with av.open(ffmpeg_name(path)) as container:
            frame = next(container.decode(video=0), None)
            # An unspecified matrix is BT.601 to libavif and to swscale alike.
            deep = None if frame is None else frame.to_ndarray(format="rgb48le")
    except (av.error.FFmpegError, ValueError, IndexError):
        return None
    return deep if deep is not None and _agrees(deep, shallow) else None


def read16_frames(path: str, shallow: list[np.ndarray]) -> list[np.ndarray] | None:
    """The frames of the deep AVIF animation at ``path`` as ``read16`` reads a still
    one, ``shallow`` being Pillow's readings of them (H×W×3, in order). FFmpeg gives
    the primary still picture as a stream of its own: the animation is the track of
    as many frames as Pillow read. None where there is no such track, or any frame
    fails ``read16``'s checks."""
    import av

    try:
        with av.open(ffmpeg_name(path)) as container:
            track = next((s for s in container.streams.video if s.frames == len(shallow)), None)
            if track is None:
                return None
            deep = []
            for frame, alike in zip(container.decode(track), shallow):
                deep.append(frame.to_ndarray(format="rgb48le"))
                if not _agrees(deep[-1], alike):
                    return None
    except (av.error.FFmpegError, ValueError, IndexError):
        return None
    return deep if len(deep) == len(shallow) else None


def _agrees(deep: np.ndarray, shallow: np.ndarray) -> bool:
    """Whether FFmpeg's 16-bit ``deep`` is the picture of libavif's 8-bit ``shallow``
    (``read16``'s test)."""
    if deep.shape != shallow.shape:
        return False
    h, w = (n // 4 * 4 or n for n in shallow.shape[:2])  # whole blocks; a side under 4 pixels as one
    bh, bw = min(h, 4), min(w, 4)
    blocks = (deep[:h, :w] / 257.0 - shallow[:h, :w]).reshape(h // bh, bh, w // bw, bw, 3).mean(axis=(1, 3))
    return bool(np.sqrt((blocks ** 2).mean()) <= _AGREEING)


def _primary_properties(path: str) -> list[tuple[bytes, bytes]]:
    """The properties (kind, payload) of the primary item of the AVIF at ``path``;
    [] where the file cannot be walked to them."""
    try:
        meta = top_box(path, b"meta")
        if meta is None:
            return []
        boxes = dict(children(meta[4:]))  # after the full box's version and flags
        pitm, iprp = boxes.get(b"pitm"), boxes.get(b"iprp")
        if pitm is None or iprp is None:
            return []
        primary = struct.unpack_from(">H" if pitm[0] == 0 else ">I", pitm, 4)[0]
        properties = dict(children(iprp))
        listed = list(children(properties.get(b"ipco", b"")))
        return [listed[i - 1] for i in _properties_of(properties.get(b"ipma", b""), primary)]
    except (OSError, struct.error, IndexError):
        return []


def stating_colour(data: bytes, primaries: int, transfer: int) -> bytes:
    """The AVIF ``data`` (as Pillow writes one) with H.273's ``primaries`` and
    ``transfer`` in its nclx colour properties, in place of the sRGB Pillow's writer
    always states: what an HDR colour (PQ, HLG), which no ICC profile states, is
    shown by. ``data`` as it is where it has no nclx."""
    out = bytearray(data)
    for at in _nclx_offsets(data, 0, len(data), (b"meta", b"iprp", b"ipco", b"colr")):
        out[at:at + 4] = struct.pack(">HH", primaries, transfer)
    return bytes(out)


def _nclx_offsets(data: bytes, start: int, end: int, path: tuple[bytes, ...]):
    """Where the primaries of each nclx colr box at ``path`` inside ``data[start:end]``
    lie in ``data``."""
    for box in boxes(lambda at, n: data[start + at:min(start + at + n, end)]):
        if box.kind != path[0]:
            continue
        body, stop = start + box.body, end if box.end is None else min(start + box.end, end)
        if len(path) > 1:
            # meta is a full box: its version and flags come before its children.
            yield from _nclx_offsets(data, body + (4 if box.kind == b"meta" else 0), stop, path[1:])
        elif data[body:body + 4] == b"nclx" and stop - body >= 8:
            yield body + 4


def _properties_of(ipma: bytes, item: int) -> list[int]:
    """The 1-based indices into ipco of the properties ``ipma`` gives ``item``."""
    version, wide = ipma[0], ipma[3] & 1  # flags: 15-bit indices
    count, at = struct.unpack_from(">I", ipma, 4)[0], 8
    for _ in range(count):
        owner = struct.unpack_from(">H" if version < 1 else ">I", ipma, at)[0]
        at += 2 if version < 1 else 4
        n, at = ipma[at], at + 1
        indices = [struct.unpack_from(">H", ipma, at + 2 * i)[0] & 0x7FFF if wide else ipma[at + i] & 0x7F
                   for i in range(n)]
        at += n * (2 if wide else 1)
        if owner == item:
            return [i for i in indices if i]
    return []


def _boxes(data: bytes, *path: bytes):
    """The payloads of the boxes at ``path`` (kinds, outermost first) in ``data``."""
    for kind, payload in children(data):
        if kind == path[0]:
            if len(path) == 1:
                yield payload
            elif kind in _CONTAINERS:
                yield from _boxes(payload, *path[1:])
