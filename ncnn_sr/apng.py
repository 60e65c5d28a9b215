"""What APNG holds: frames drawn one after another on a canvas, each a PNG of its
own box. They are composed here as the APNG specification says, and browsers show
them. Knows nothing of ncnn."""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from .errors import with_article
from .png import SIGNATURE, cut_palette_alpha, grey_key_in_8_bits, read_png16

# What the file says after showing a frame (fcTL dispose_op), and how the frame is
# drawn (blend_op).
DISPOSE_NONE, DISPOSE_BACKGROUND, DISPOSE_PREVIOUS = 0, 1, 2
BLEND_SOURCE, BLEND_OVER = 0, 1
# A delay's denominator of 0 means hundredths (the specification's rule).
DEFAULT_DENOMINATOR = 100
# The chunks before the image data that decoding a frame's own pixels takes: its
# palette, and the colour or palette entries that are transparent.
_DECODING = (b"PLTE", b"tRNS")


@dataclass(frozen=True)
class _Frame:
    """One frame as its fcTL places it, and its compressed pixels (from IDAT or
    fdAT, the sequence numbers taken off)."""

    width: int
    height: int
    left: int
    top: int
    duration: Fraction  # milliseconds, exactly as its delay says
    dispose: int
    blend: int
    data: bytes


def frames_as_shown(data: bytes, deep: bool = False, failed: list | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of the APNG ``data`` as browsers show it, 8-bit RGBA of the canvas
    size (16-bit where ``deep`` and the APNG is 16-bit), and each frame's duration in
    milliseconds (a denominator of 0 read as 100), each frame ending at the
    millisecond nearest its end, so the whole keeps its length.

    The frames are those acTL counts; a default image without an fcTL before it is
    no frame of the animation and is left out. The canvas starts clear; each frame
    replaces its box (blend SOURCE) or is drawn over it with the Porter-Duff "over"
    operator on straight alpha, rounded to the nearest (blend OVER); after it is
    shown its box is left (dispose NONE), cleared (BACKGROUND) or put back as it
    was before the frame (PREVIOUS). Pillow's reader drew OVER frames through their
    own alpha as a mask, so a half-clear pixel over an opaque one left the canvas
    half clear there. Each frame's pixels are decoded by Pillow (one frame alone, as
    a PNG of its box), so they are 8-bit as Pillow reads them (a 16-bit sample's high
    byte), but by FFmpeg in 16 bits where ``deep``. A broken file raises what Pillow
    raises, SyntaxError, or EOFError; or where ``failed`` is a list, gives the
    frames before, the error put in it."""
    shown = []
    try:
        shown.extend(_shown(data, deep, failed is not None))
    except Exception as e:  # noqa: BLE001 - a damaged frame's, whatever Pillow or FFmpeg raised
        if failed is None or not shown:
            raise
        failed.append(e)
    return [frame for frame, _ in shown], _milliseconds([duration for _, duration in shown])


def _milliseconds(durations: list[Fraction]) -> list[int]:
    """Exact durations as whole milliseconds, each frame ending at the millisecond
    nearest its end: rounded one by one, a 60 fps APNG's 1/60 s was 17 ms a frame and
    played 2 % slow, a 30 fps one's 33 ms 1 % fast."""
    ends = []
    elapsed = Fraction(0)
    for duration in durations:
        elapsed += duration
        ends.append(int(elapsed + Fraction(1, 2)))  # halves up, as the GIF writer rounds
    return [end - start for start, end in zip([0] + ends, ends)]


def first_as_shown(data: bytes) -> np.ndarray:
    """The first frame of the APNG ``data`` as ``frames_as_shown`` gives it (not a
    default image outside the animation), the frames after it left undecoded. A cut
    or break past it is left to the animation's reading, as Pillow leaves it for an
    APNG without a default image: it says what is kept."""
    return next(_shown(data, partial=True))[0]


def _shown(data: bytes, deep: bool = False, partial: bool = False) -> Iterator[tuple[np.ndarray, int]]:
    """Each frame of the APNG ``data`` composed on the canvas, with its exact duration,
    one at a time, in 16 bits where ``deep`` and the APNG is 16-bit. ``partial``: one
    cut short, or broken past its first frames, gives the frames whose chunks came
    before, then raises what ended them."""
    header, decoding, frames, ended = _split(data, partial)
    width, height = struct.unpack_from(">II", header)
    deep = deep and header[8] == 16
    canvas = np.zeros((height, width, 4), np.uint16 if deep else np.uint8)
    for frame in frames:
        pixels = _decode(header, decoding, frame, deep)
        box = canvas[frame.top:frame.top + frame.height, frame.left:frame.left + frame.width]
        # PREVIOUS on the first frame puts back the clear canvas, which is the
        # BACKGROUND the specification asks for there.
        before = box.copy() if frame.dispose == DISPOSE_PREVIOUS else None
        box[:] = pixels if frame.blend == BLEND_SOURCE else over(pixels, box)
        yield canvas.copy(), frame.duration
        if frame.dispose == DISPOSE_BACKGROUND:
            box[:] = 0
        elif before is not None:
            box[:] = before
    if ended is not None:
        raise ended


def over(top: np.ndarray, under: np.ndarray) -> np.ndarray:
    """``top`` drawn over ``under`` (straight RGBA arrays of one shape and dtype, 8-
    or 16-bit) by the Porter-Duff "over" operator, each channel rounded to the
    nearest: where ``top`` is opaque it is ``top``, where clear ``under``, and a
    pixel clear in both is 0."""
    most = np.iinfo(top.dtype).max
    alpha = top[:, :, 3:].astype(np.int64)
    # Each one's share of the result, in parts of most * most.
    share_top = alpha * most
    share_under = under[:, :, 3:].astype(np.int64) * (most - alpha)
    total = share_top + share_under
    colour = top[:, :, :3] * share_top + under[:, :, :3] * share_under  # within int64: < 2 * 65535**3
    divisor = np.maximum(total, 1)  # a pixel clear in both has no colour: 0 / 1
    out = np.empty_like(top)
    out[:, :, :3] = (2 * colour + divisor) // (2 * divisor)
    out[:, :, 3:] = (2 * total + most) // (2 * most)
    return out


def _split(data: bytes, partial: bool = False) -> tuple[bytes, list[tuple[bytes, bytes]], list[_Frame],
                                                       Exception | None]:
    """The APNG's IHDR data, the chunks its frames need to be decoded, its frames, as
    many as acTL says, and None. ``partial``: where its chunks end early or break
    after its frame control chunks began, the frames before (not the one they cut)
    and the error, to be raised once those are used."""
    header, count = None, None
    decoding: list[tuple[bytes, bytes]] = []
    frames: list[_Frame] = []
    control, pieces = None, []
    expected = 0  # fcTL and fdAT share one sequence, numbered from 0
    data_seen = False

    def close() -> None:
        if control is not None:
            if not pieces:
                raise SyntaxError("broken APNG: a frame without image data")
            frames.append(_Frame(*control, b"".join(pieces)))

    walked = _chunks(data)
    while True:
        try:
            kind, body = next(walked)
        except StopIteration:
            break
        except (EOFError, SyntaxError) as e:
            # The frame it cuts may lack data of a chunk that is gone: not kept.
            if not partial or header is None or count is None or not frames:
                raise
            return header, decoding, frames[:count], e
        if kind == b"IHDR":
            if len(body) != 13:
                raise SyntaxError("broken PNG: IHDR of the wrong size")
            header = body
        elif kind == b"acTL" and len(body) >= 8:
            count = struct.unpack_from(">I", body)[0]
        elif kind in _DECODING and not data_seen:  # the default image's fcTL may come before them
            decoding.append((kind, body))
        elif kind == b"fcTL":
            if header is None:
                raise SyntaxError("broken APNG: fcTL before IHDR")
            close()
            expected = _next(body, expected)
            control, pieces = _control(body, header), []
        elif kind == b"IDAT":
            data_seen = True
            # A default image without an fcTL is what viewers without APNG show;
            # those with it skip it.
            if control is not None and not frames:
                pieces.append(body)
        elif kind == b"fdAT":
            expected = _next(body, expected)
            if control is None:
                raise SyntaxError("broken APNG: frame data before its fcTL")
            pieces.append(body[4:])
    close()
    if header is None or count is None:
        raise SyntaxError("not an animated PNG")
    if len(frames) < count:
        cut = EOFError(f"APNG cut short: {len(frames)} of its {count} frames")
        if not partial or not frames:
            raise cut
        return header, decoding, frames, cut
    return header, decoding, frames[:count], None


def _next(body: bytes, expected: int) -> int:
    """The sequence number after that of the fcTL or fdAT ``body``, which must be
    ``expected``."""
    if len(body) < 4 or struct.unpack_from(">I", body)[0] != expected:
        raise SyntaxError("broken APNG: frame sequence numbers out of order")
    return expected + 1


def _control(body: bytes, header: bytes) -> tuple[int | Fraction, ...]:
    """The fields of an fcTL as ``_Frame`` takes them, checked against the canvas."""
    if len(body) < 26:
        raise SyntaxError("broken APNG: fcTL cut short")
    _, width, height, left, top, num, den, dispose, blend = struct.unpack_from(">IIIIIHHBB", body)
    canvas_width, canvas_height = struct.unpack_from(">II", header)
    if not (width and height and left + width <= canvas_width and top + height <= canvas_height):
        raise SyntaxError(f"broken APNG: {with_article(f'{width}x{height}')} frame at {left},{top} "
                          f"outside its {canvas_width}x{canvas_height} canvas")
    if dispose > DISPOSE_PREVIOUS or blend > BLEND_OVER:
        raise SyntaxError(f"broken APNG: unknown dispose_op {dispose} or blend_op {blend}")
    duration = Fraction(num * 1000, den or DEFAULT_DENOMINATOR)
    return width, height, left, top, duration, dispose, blend


def _decode(header: bytes, decoding: list[tuple[bytes, bytes]], frame: _Frame, deep: bool = False) -> np.ndarray:
    """A frame's own pixels, 8-bit RGBA of its box, decoded from a PNG of that box
    alone by Pillow (by FFmpeg where Pillow loses a 16-bit transparent colour); 16-bit
    RGBA where ``deep`` (the APNG being 16-bit): its grey by Pillow, its colour and
    grey+alpha, which Pillow reads in 8 bits only, by FFmpeg."""
    alone = (SIGNATURE + _chunk(b"IHDR", struct.pack(">II", frame.width, frame.height) + header[8:])
             + b"".join(_chunk(kind, body) for kind, body in decoding)
             + _chunk(b"IDAT", frame.data) + _chunk(b"IEND", b""))
    if deep and header[9] != 0:
        return read_png16(alone, 4)
    if header[8:10] == b"\x10\x02" and any(kind == b"tRNS" for kind, _ in decoding):
        # 16-bit colour with a transparent colour, which Pillow compares with its
        # 8-bit reading of the samples: no pixel matched.
        return (read_png16(alone, 4) >> 8).astype(np.uint8)
    with Image.open(io.BytesIO(alone)) as im:
        if im.mode.startswith("I;16"):
            grey = np.asarray(im).astype(np.uint16)
            return _grey16_as_rgba(grey, im.info.get("transparency"), deep)
        if header[9] == 0:  # grey: a tRNS level of 2- or 4-bit samples, which Pillow scales to 8 bits
            grey_key_in_8_bits(im.info, header[8])
        elif header[9] == 3:  # read_image warned of it
            cut_palette_alpha(im.info)
        return np.asarray(im.convert("RGBA"))


def _grey16_as_rgba(grey: np.ndarray, key, deep: bool = False) -> np.ndarray:
    """16-bit grey as 8-bit RGBA, each sample's high byte as Pillow reads 16-bit
    colour (its own conversion clips grey at 255: white), or as 16-bit RGBA where
    ``deep``; clear where it is ``key``."""
    level = grey if deep else (grey >> 8).astype(np.uint8)
    most = np.iinfo(level.dtype).max
    alpha = np.where(grey == key, 0, most).astype(level.dtype) if isinstance(key, int) \
        else np.full_like(level, most)
    return np.dstack([level, level, level, alpha])


def animate(stills: list[bytes], durations: list[int], plays: int) -> bytes:
    """An APNG of the PNG files ``stills`` (each a whole frame, all of one size, bit
    depth and colour type, in order) shown for ``durations`` milliseconds each and
    ``plays`` times (0 for ever): the first still's chunks, its metadata included,
    with its pixels as the first frame, and the others' pixels as the frames after
    it, each replacing the canvas. What Pillow's writer cannot make: a 16-bit APNG."""
    chunks = list(_chunks(stills[0]))
    header = chunks[0][1]
    sequence = 0

    def control(duration: int) -> bytes:
        nonlocal sequence
        # Milliseconds over 1000, or hundredths past the 16-bit numerator.
        delay = (duration, 1000) if duration <= 0xFFFF else (min(round(duration / 10), 0xFFFF), 100)
        body = struct.pack(">IIIIIHHBB", sequence, *struct.unpack_from(">II", header), 0, 0, *delay,
                           DISPOSE_NONE, BLEND_SOURCE)
        sequence += 1
        return _chunk(b"fcTL", body)

    parts = [SIGNATURE, _chunk(b"IHDR", header), _chunk(b"acTL", struct.pack(">II", len(stills), plays))]
    first_data = True
    for kind, body in chunks[1:]:
        if kind == b"IDAT" and first_data:
            parts.append(control(durations[0]))
            first_data = False
        parts.append(_chunk(kind, body))
    for still, duration in zip(stills[1:], durations[1:]):
        own = list(_chunks(still))
        if own[0][1] != header:
            raise ValueError("APNG frames of different sizes or sample formats")
        parts.append(control(duration))
        parts.append(_chunk(b"fdAT", struct.pack(">I", sequence) + b"".join(b for k, b in own if k == b"IDAT")))
        sequence += 1
    return b"".join(parts) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The kind and data of each chunk of the PNG ``data``, up to IEND (or the end
    of the file, where Pillow's reader stops too); CRCs are not checked."""
    if not data.startswith(SIGNATURE):
        raise SyntaxError("not a PNG file")
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise EOFError("PNG cut short")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise EOFError("PNG cut short")
        if kind == b"IEND":
            return
        yield kind, data[pos + 8:end - 4]
        pos = end
