"""Video frames as pictures and back: what a frame shows as RGB (its display matrix
turned upright, its colour decoded by its tags), and how an upscaled picture is
coded into the output's pixel format. Knows nothing of files or ncnn.

Colour: frames reach the upscaler in RGB as players show them, decoded with the
matrix and range their tags give, or untagged with the matrix players assume for
their size (BT.709 for HD, BT.601 below). The output is coded and tagged with the
input's matrix, primaries and transfer where it gives them (and swscale can code that
matrix), else BT.709's, the HD standard, as upscaled video mostly is; always in
limited range, the one every player and encoder takes (yuvj formats are full range
by definition). HDR10's static metadata (the mastering display, the content's light
levels) goes along where the encoder can write it into the video stream.
"""
from __future__ import annotations

import gc
import logging
import math
import struct
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc, Colorspace

from . import gif
from .errors import ffmpeg_short_of_memory

log = logging.getLogger("ncnn_sr")


def subsampling(pix_fmt: str) -> tuple[int, int]:
    """How many pixels across and down share one chroma sample in ``pix_fmt``: (2, 2)
    for 4:2:0, (2, 1) for 4:2:2, (4, 1) for 4:1:1, (1, 1) for 4:4:4, RGB and gray."""
    fmt = av.VideoFormat(pix_fmt)
    return 64 // fmt.chroma_width(64), 64 // fmt.chroma_height(64)


def encodable_size(width: int, height: int, pix_fmt: str) -> tuple[int, int]:
    """The size ``pix_fmt`` can hold nearest to (width, height): a side its chroma is
    subsampled along must be a whole number of chroma samples (even for 4:2:0's both
    sides and 4:2:2's width), so it loses the pixels over that, and one too short
    grows to one sample; other formats take any size."""
    # By the format's subsampling, not its name: yuvj420p, p010le and yuv411p were
    # left odd, and the encoder refused them.
    across, down = subsampling(pix_fmt)
    return max(across, width - width % across), max(down, height - height % down)


def _needs(across: int, down: int) -> str:
    if across == down:
        return "even sides" if across == 2 else f"sides that are multiples of {across}"
    sides = [f"an even {side}" if step == 2 else f"a {side} that is a multiple of {step}"
             for side, step in (("width", across), ("height", down)) if step > 1]
    return " and ".join(sides)


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` cropped or, where a side is too short, padded with its edge pixels
    to ``size`` (width, height)."""
    width, height = size
    image = image[:height, :width]
    grow = ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0))
    return np.pad(image, grow, mode="edge") if any(g[1] for g in grow) else image


def fit_warning(pix_fmt: str, width: int, height: int, size: tuple[int, int]) -> str:
    grows = size[0] > width or size[1] > height
    shrinks = size[0] < width or size[1] < height
    across, down = subsampling(pix_fmt)
    needs = _needs(across, down)
    if not grows:
        return f"{pix_fmt} needs {needs}: cropping {width}x{height} frames to {size[0]}x{size[1]}"
    how = "cropping and padding" if shrinks else "padding"
    least = f" of at least {across} pixels" if across == down else f", and at least {across}x{down} pixels"
    return (f"{pix_fmt} needs {needs}{least}: {how} {width}x{height} frames to "
            f"{size[0]}x{size[1]}, repeating their edge pixels")


# A display matrix's counterclockwise turn (a right angle) -> the numpy steps that show
# the frame as players do, given the matrix ``m``. These are ffmpeg's autorotate rules:
# a mirrored picture reads as a turn, told apart by the signs of some entries.
_TURNS = {
    0: lambda a, m: a[::-1] if m[4] < 0 else a,
    90: lambda a, m: a.swapaxes(0, 1)[::-1, ::-1] if m[3] < 0 else np.rot90(a, 1),
    180: lambda a, m: a[::-1 if m[4] < 0 else 1, ::-1 if m[0] < 0 else 1],
    270: lambda a, m: a.swapaxes(0, 1) if m[3] > 0 else np.rot90(a, -1),
}


def _display_turn(matrix: np.ndarray) -> float | None:
    """The counterclockwise turn of a display matrix in degrees, in [-180, 180), as
    FFmpeg's av_display_rotation_get (PyAV's VideoFrame.rotation) gives it; None for
    a degenerate matrix."""
    a, b, c, d = (float(v) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    if not math.hypot(a, c) or not math.hypot(b, d):
        return None
    return -math.degrees(math.atan2(b / math.hypot(b, d), a / math.hypot(a, c)))


def _rotation_matrix(clockwise: float) -> np.ndarray:
    """The display matrix of a turn by ``clockwise`` degrees, as FFmpeg's
    av_display_rotation_set makes it (16.16 fixed point, w in 2.30)."""
    radians = math.radians(-clockwise)
    c, s = round(math.cos(radians) * 65536), round(math.sin(radians) * 65536)
    return np.array([c, -s, 0, s, c, 0, 0, 0, 1 << 30], dtype=np.int32)


def _tagged_rotation(tags) -> np.ndarray | None:
    """The display matrix a stream's "rotate" tag stands for, or None. Older files
    hold a phone's turn only there: ffmpeg once gave a display matrix as that tag,
    the clockwise degrees that show the picture upright, and copied it into outputs
    such as an mkv, which then had no matrix."""
    value = next((v for k, v in tags.items() if k.lower() == "rotate"), None)
    try:
        clockwise = float(value) if value is not None else 0.0
    except ValueError:
        return None  # no angle to turn by
    return _rotation_matrix(clockwise) if math.isfinite(clockwise) and clockwise % 360 else None


# PyAV's frame and the side data read from it hold each other (the frame keeps its
# container, and each entry its frame): such a frame is freed by a full collection
# alone, which Python starts by counts of objects, whatever pixels they hold. A 1080p
# video passed through held 706 MB at 600 frames, 143 MB without the reads. A full
# collection (10-15 ms in a run) once the frames read since the last one hold
# SIDE_DATA_HELD bytes bounds them, at a cost that follows the frames' size: 0.8 ms
# a frame at 1080p, for 188 MB at 600 frames.
SIDE_DATA_HELD = 48 << 20
_side_data_held = [0]


def side_data(frame, kind: str) -> bytes | None:
    """The bytes of ``frame``'s side data of ``kind`` (PyAV's name of its type), or None."""
    try:
        held = frame.side_data
    except ValueError:  # a type PyAV has no name for
        _name_unknown_side_data()
        held = frame.side_data
    data = held.get(kind)
    _side_data_held[0] += sum(plane.buffer_size for plane in frame.planes)
    if _side_data_held[0] >= SIDE_DATA_HELD:
        _side_data_held[0] = 0
        gc.collect()
    return None if data is None else bytes(data)


def _name_unknown_side_data() -> None:
    """Let PyAV name a frame's side data of a type its enum lacks (UNKNOWN_31), as it
    names every entry to list them: FFmpeg 8 gives an MJPEG frame that holds EXIF (a
    camera's clip), and a HEIF picture, the side data EXIF (31), which PyAV 18 does
    not know, and reading any of the frame's side data raised "ValueError: 31 is not
    a valid Type". None of those is read here."""
    from av.sidedata.sidedata import Type

    def missing(cls, value):
        if not isinstance(value, int):
            return None
        unknown = object.__new__(cls)
        unknown._name_, unknown._value_ = f"UNKNOWN_{value}", value
        return cls._value2member_map_.setdefault(value, unknown)

    if "_missing_" not in vars(Type):
        Type._missing_ = classmethod(missing)


def _right_angle(turn: float) -> int | None:
    """The right angle a display matrix's ``turn`` (degrees) is taken for, or None
    where it is not within a degree of one: the frames are then left as stored."""
    nearest = round(turn / 90) * 90
    return nearest if abs(turn - nearest) < 1 else None


def turned_sideways(frame, tags=None) -> bool:
    """Whether ``Upright`` turns ``frame``, of a stream tagged ``tags``, by a quarter:
    its width shown is its height stored."""
    data = side_data(frame, "DISPLAYMATRIX")
    matrix = _tagged_rotation(tags or {}) if data is None else np.frombuffer(data, dtype=np.int32)
    turn = None if matrix is None else _display_turn(matrix)
    nearest = None if turn is None else _right_angle(turn)
    return nearest is not None and nearest % 180 != 0


class Upright:
    """Decoded frames turned and mirrored as their display matrix tells players to
    show them, as pictures get their EXIF orientation: the output needs no matrix.
    Frames without a matrix are turned as the stream's "rotate" ``tags`` say, if they
    say; a frame with one follows it alone, so it is never turned twice. A matrix
    that only some frames carry (an H.264 or H.265 display orientation message, which
    FFmpeg gives the frame it comes with, though it holds until the next, or the next
    keyframe) holds for the frames after it up to a keyframe; one that changes midway
    is followed, with a warning."""

    def __init__(self, src, tags=None):
        self.src = src
        self.warned = False
        # A stream's matrix is the same on every frame: its turn is worked out once from
        # the rotate tag, and again only when a frame's display matrix differs from the last.
        tagged = _tagged_rotation(tags or {})
        self.tagged = (tagged, None if tagged is None else _display_turn(tagged))
        self.seen: tuple[bytes | None, np.ndarray | None, float | None] = (None, None, None)
        self.sideways = False  # frames have been turned by a quarter
        self.first: tuple | None = None  # how the first frame was turned: its right angle and mirroring
        self.changed = False  # a later frame was turned otherwise, and said so

    def shown_aspect(self, sar: Fraction | None) -> Fraction | None:
        """``sar``, the stored frames' sample aspect ratio, for the frames as turned:
        a quarter turn swaps a sample's sides."""
        return 1 / sar if sar and self.sideways else sar

    def __call__(self, image: np.ndarray, frame) -> np.ndarray:
        data = side_data(frame, "DISPLAYMATRIX")
        if data is None and frame.key_frame:
            self.seen = (None, None, None)  # a keyframe starts a new sequence, where a message no longer holds
        if data is None and self.seen[0] is None:
            matrix, turn = self.tagged
        else:
            raw = self.seen[0] if data is None else data
            if raw != self.seen[0]:
                matrix = np.frombuffer(raw, dtype=np.int32)
                self.seen = (raw, matrix, _display_turn(matrix))
            _, matrix, turn = self.seen
        nearest = None if turn is None else _right_angle(turn)
        self._note(nearest, matrix, frame)
        if turn is None:
            return image  # no matrix, or one players ignore too
        if nearest is None:
            if not self.warned:
                self.warned = True
                log.warning("%s: its %s turns the picture by %.0f degrees, not a right angle: "
                            "the frames are upscaled as stored", self.src,
                            "rotate tag" if data is None else "display matrix", turn)
            return image
        self.sideways = nearest % 180 != 0
        return np.ascontiguousarray(_TURNS[nearest % 360](image, matrix))

    def _note(self, nearest: int | None, matrix: np.ndarray | None, frame) -> None:
        """Warn once where ``frame`` is turned otherwise than the first frame was:
        one video holds one way up, so the frames shown the other way are of the
        other shape (scaled to the first's) or upside down to the ones before."""
        # The entries whose signs tell a mirrored picture from a turned one (_TURNS).
        way = (0, (False, False, False)) if matrix is None or nearest is None else \
            (nearest % 360, tuple(bool(v < 0) for v in matrix[[0, 3, 4]]))
        if self.first is None:
            self.first = way
        elif way != self.first and not self.changed:
            self.changed = True
            seconds = f" at {float(frame.time):.2f} s" if frame.time is not None else ""
            log.warning("%s: its display matrix changes midway%s, from a turn of %d degrees to %d: each frame is "
                        "shown upright as its own says", self.src, seconds, self.first[0], way[0])


def output_aspect(sar: Fraction | None, shown: tuple[int, int], size: tuple[int, int]) -> Fraction | None:
    """The sample aspect ratio (SAR) that shows frames of ``size`` (width, height),
    upscaled from frames of ``shown`` whose SAR is ``sar``, at the shape those show
    at: ``sar`` itself for a scale, corrected for a change of shape as FFmpeg's scale
    filter corrects it. None where the input's samples are square or of no stated
    shape, so that a picture stretched on purpose (--width and --height) stays so."""
    if not sar or sar == 1:
        return None
    (width, height), (new_width, new_height) = shown, size
    # H.264's VUI holds 16 bits a side; a scale's SAR is the input's, which fits.
    return (sar * Fraction(new_height * width, new_width * height)).limit_denominator(65535)


# Colour tags are H.273's code points, which FFmpeg's AVColorSpace, AVColorPrimaries
# and AVColorTransferCharacteristic share.
BT709 = 1
UNSPECIFIED = 2
RGB_MATRIX = 0  # the samples are R, G and B themselves
JPEG_MATRIX = 5  # BT.601 (BT.470 BG), JFIF's, as FFmpeg's JPEG decoders tag it
# Matrix tags that name no matrix for YUV samples: swscale takes the first two for
# BT.601 and refuses the last (reserved), where players guess.
_NO_MATRIX = frozenset({RGB_MATRIX, UNSPECIFIED, 3})
# The matrices swscale can code RGB with, by tag -> swscale's name for each. Tags 5 and
# 6 name the same BT.601 matrix, for PAL and NTSC. PyAV before 18 has no name for
# BT.2020's, swscale's 9, but takes the number.
_SWSCALE_MATRICES = {1: Colorspace.ITU709, 4: Colorspace.FCC, 5: Colorspace.ITU601, 6: Colorspace.ITU601,
                     7: Colorspace.SMPTE240M, 9: getattr(Colorspace, "BT2020", 9)}


def assumed_matrix(width: int, height: int) -> Colorspace:
    """The matrix players assume for YUV video of this size that does not name its
    own: BT.709 for HD (1280 wide or more, or taller than 576 lines), else BT.601.
    This is mpv's rule, and VLC's."""
    return Colorspace.ITU709 if width >= 1280 or height > 576 else Colorspace.ITU601


def _has_matrix(fmt: av.VideoFormat) -> bool:
    """Whether ``fmt``'s samples are luma and chroma, made from RGB by a matrix; gray
    is not, as swscale takes it for full-range BT.601 luma whatever the tags."""
    return not fmt.is_rgb and not fmt.has_palette and len(fmt.components) >= 3


# H.273's names for the matrices swscale cannot decode (it fails with "Operation not
# supported", which names nothing).
_OTHER_MATRICES = {8: "YCgCo", 10: "BT.2020 constant luminance", 11: "SMPTE ST 2085", 12: "chroma-derived",
                   13: "chroma-derived constant luminance", 14: "ICtCp", 15: "IPT-C2", 16: "YCgCo-R (even)",
                   17: "YCgCo-R (odd)"}


class UnsupportedColour(ValueError):
    """Frames coded with a colour matrix FFmpeg's scaler cannot turn into RGB."""


def depth(pix_fmt: str) -> int:
    """Bits per sample of ``pix_fmt``, its deepest component's."""
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def has_alpha(stream) -> bool:
    """Whether the video ``stream`` holds transparency: an alpha plane in its pixel
    format (PNG or QuickTime Animation in a .mov), or the alpha a WebM flags beside its
    VP8 or VP9, which FFmpeg's own decoders leave out."""
    pix_fmt = stream.codec_context.pix_fmt
    if pix_fmt and len(av.VideoFormat(pix_fmt).components) in (2, 4):  # grey or colour, and alpha
        return True
    return any(key.lower() == "alpha_mode" and value == "1" for key, value in stream.metadata.items())


def deeper_format(pix_fmt: str, takes: list[str]) -> str | None:
    """The 10-bit form of ``pix_fmt`` (yuv420p -> yuv420p10le) where an encoder that
    ``takes`` those formats has it, else None."""
    deeper = f"{pix_fmt}10le"
    return deeper if deeper in takes else None


def to_rgb(frame, deep: bool = False) -> np.ndarray:
    """``frame`` in RGB as players show it: H×W×3 uint8, or uint16 when ``deep``
    (keeping what a 10- or 12-bit frame holds beyond 8 bits). PyAV hands the frame's
    matrix and range tags to swscale, but an untagged frame would get swscale's BT.601
    at any size."""
    fmt = "rgb48le" if deep else "rgb24"
    matrix = frame.colorspace
    given = {}
    if _has_matrix(frame.format):
        if matrix in _NO_MATRIX:
            given = {"src_colorspace": assumed_matrix(frame.width, frame.height)}
        elif matrix not in _SWSCALE_MATRICES:
            name = _OTHER_MATRICES.get(matrix, "an unknown one")
            raise UnsupportedColour(f"its colour matrix, {name} (H.273 code {matrix}), is not one FFmpeg can "
                                    "convert to RGB")
    try:
        return frame.to_ndarray(format=fmt, **given)
    except av.error.FFmpegError as e:
        raise _converting_short(e, "decoded", frame.format.name, fmt) or e


def _converting_short(e: av.error.FFmpegError, frames: str, source: str, target: str) -> MemoryError | None:
    """The MemoryError to raise where swscale failed (``e``) to convert the ``frames``
    ones from ``source`` to ``target`` for want of memory (ffmpeg_short_of_memory);
    None where memory is not why."""
    return ffmpeg_short_of_memory(f"swscale cannot convert the {frames} frames from {source} to {target}", e)


@dataclass(frozen=True)
class ColourTags:
    """How a video's samples code colour, as H.273 numbers it: ``matrix`` from RGB to
    YUV (0 for RGB samples, 2 unspecified for gray), ``primaries``, ``transfer``, and
    ``range``: limited (MPEG: 16-235), full (JPEG: 0-255), or unspecified where there
    is no matrix."""

    matrix: int
    primaries: int
    transfer: int
    range: ColorRange


def _named(kind, value: int) -> bool:
    return value != UNSPECIFIED and value in {member.value for member in kind}


def output_colour(source, pix_fmt: str, jpeg: bool = False) -> ColourTags:
    """How video in ``pix_fmt`` made from ``source`` (a video codec context or anything
    with its colorspace, color_primaries and color_trc) is coded and tagged: the
    source's matrix, primaries and transfer where it names them (and swscale can code
    the matrix), else BT.709's; limited range unless ``pix_fmt`` is full range (yuvj).
    ``jpeg`` (a JPEG encoder's YUV) is BT.601's matrix in full range, as JFIF has it.

    The primaries and transfer are only tags: the upscaler changes neither, and so
    they are passed on. The range changes no colour, so the one that every player and
    encoder takes is used."""
    primaries = source.color_primaries if _named(ColorPrimaries, source.color_primaries) else BT709
    transfer = source.color_trc if _named(ColorTrc, source.color_trc) else BT709
    fmt = av.VideoFormat(pix_fmt)
    if not _has_matrix(fmt):
        # Gray is made by swscale in full range, and so tagged: H.264 read it as limited.
        gray = not fmt.is_rgb and not fmt.has_palette
        return ColourTags(RGB_MATRIX if fmt.is_rgb else UNSPECIFIED, primaries, transfer,
                          ColorRange.JPEG if gray else ColorRange.UNSPECIFIED)
    if jpeg:  # its decoders read BT.601 whatever the tags say, and its encoders refuse limited range
        return ColourTags(JPEG_MATRIX, primaries, transfer, ColorRange.JPEG)
    matrix = source.colorspace if source.colorspace in _SWSCALE_MATRICES else BT709
    full = pix_fmt.startswith("yuvj")
    return ColourTags(matrix, primaries, transfer, ColorRange.JPEG if full else ColorRange.MPEG)


def as_read(colour: ColourTags, read: int, width: int, height: int) -> ColourTags:
    """``colour`` coded in the matrix that a reader of the video written takes it to
    be in: ``read``, the tag a frame of it reads back with, or where that names none,
    the one players assume for a picture of (width, height). RGB and gray as they are."""
    if colour.matrix not in _SWSCALE_MATRICES:
        return colour
    if read in _NO_MATRIX:
        read = assumed_matrix(width, height)
    return colour if read == colour.matrix or read not in _SWSCALE_MATRICES else replace(colour, matrix=int(read))


def paletted(image: np.ndarray):
    """An 8-bit RGB ``image`` as a pal8 frame with a palette of its own colours: 255,
    median cut and the details it loses, undithered, as a GIF's frame gets (swscale makes no palette)."""
    reduced = gif.to_palette(image, transparent=False)
    rgb = np.zeros((256, 3), np.uint8)
    palette = np.asarray(reduced.getpalette(), np.uint8).reshape(-1, 3)[:256]
    rgb[:len(palette)] = palette
    argb = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)  # opaque, every entry
    return av.VideoFrame.from_ndarray((np.asarray(reduced), argb), format="pal8")


def coded(image: np.ndarray, pix_fmt: str, colour: ColourTags):
    """``image`` (RGB, uint8 or uint16) as a frame to encode in ``pix_fmt``, coded and
    tagged as ``colour`` says."""
    if av.VideoFormat(pix_fmt).has_palette:
        frame = paletted(image)
    else:
        frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if image.dtype == np.uint16 else "rgb24")
    if colour.matrix in _SWSCALE_MATRICES:
        # Left to the encoder, the conversion would take swscale's default, BT.601.
        # PyAV before 18 hands swscale BT.2020 only as the RGB frame's tag (which the
        # conversion otherwise ignores), not from dst_colorspace.
        frame.colorspace = colour.matrix
        try:
            frame = frame.reformat(format=pix_fmt, dst_colorspace=_SWSCALE_MATRICES[colour.matrix],
                                   dst_color_range=colour.range)
        except av.error.FFmpegError as e:
            raise _converting_short(e, "upscaled", frame.format.name, pix_fmt) or e
    frame.colorspace, frame.color_primaries, frame.color_trc = colour.matrix, colour.primaries, colour.transfer
    frame.color_range = colour.range
    return frame


@dataclass(frozen=True)
class Mastering:
    """HDR10's static metadata, as FFmpeg gives it on a decoded frame: the mastering
    display's ``primaries`` (red, green, blue) and ``white`` point as CIE 1931 (x, y)
    and its ``luminance`` (max, min) in cd/m², None where the source gives none; the
    content's ``light`` levels (MaxCLL, MaxFALL) in cd/m², or None."""

    primaries: tuple[tuple[Fraction, Fraction], ...] | None = None
    white: tuple[Fraction, Fraction] | None = None
    luminance: tuple[Fraction, Fraction] | None = None
    light: tuple[int, int] | None = None


def _ratio(num: int, den: int) -> Fraction:
    return Fraction(num, den) if den else Fraction(0)


def mastering(frame) -> Mastering | None:
    """The HDR10 metadata on a decoded ``frame`` (from the stream's SEI or metadata
    OBUs, or the container's, which FFmpeg's decoders put on every frame), or None."""
    display = side_data(frame, "MASTERING_DISPLAY_METADATA")
    light = side_data(frame, "CONTENT_LIGHT_LEVEL")
    if display is None and light is None:
        return None
    primaries = white = luminance = None
    if display is not None:
        # AVMasteringDisplayMetadata: R, G, B and white (x, y), min and max luminance,
        # all AVRationals (two ints), then has_primaries and has_luminance.
        n = struct.unpack("=22i", display[:88])
        xy = [(_ratio(*n[i:i + 2]), _ratio(*n[i + 2:i + 4])) for i in range(0, 16, 4)]
        if n[20]:
            primaries, white = tuple(xy[:3]), xy[3]
        if n[21]:
            luminance = (_ratio(n[18], n[19]), _ratio(n[16], n[17]))
    cll = struct.unpack("=2I", light[:8]) if light is not None else None
    return Mastering(primaries, white, luminance, cll)


def _display_string(hdr: Mastering, chroma, lum) -> str:
    """G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min), the order of H.265's SEI, which x264,
    x265 and SVT-AV1 all read; ``chroma`` and ``lum`` write the numbers."""
    red, green, blue = hdr.primaries
    points = "".join(f"{name}({chroma(x)},{chroma(y)})" for name, (x, y) in
                     (("G", green), ("B", blue), ("R", red), ("WP", hdr.white)))
    return f"{points}L({lum(hdr.luminance[0])},{lum(hdr.luminance[1])})"


def mastering_options(encoder: str, hdr: Mastering) -> dict[str, str] | None:
    """Options that have ``encoder`` (its name) write ``hdr`` into the video stream,
    as SEI messages (H.264, H.265) or metadata OBUs (AV1); None for one that cannot:
    VP9 keeps it only in the container, which PyAV cannot write it into."""
    params = []
    whole = hdr.primaries is not None and hdr.luminance is not None
    if encoder in ("libx264", "libx265"):
        # The SEI's own units: 0.00002 for x and y, 0.0001 cd/m² for luminance.
        if whole:
            key = "master-display" if encoder == "libx265" else "mastering-display"
            params.append(f"{key}={_display_string(hdr, lambda v: round(v * 50000), lambda v: round(v * 10000))}")
        if hdr.light is not None:
            params.append(f"{'max-cll' if encoder == 'libx265' else 'cll'}={hdr.light[0]},{hdr.light[1]}")
        return {f"{encoder[3:]}-params": ":".join(params)} if params else {}
    if encoder == "libsvtav1":
        if whole:  # SVT-AV1 reads the numbers themselves
            display = _display_string(hdr, lambda v: f"{float(v):.5f}", lambda v: f"{float(v):.4f}")
            params.append(f"mastering-display={display}")
        if hdr.light is not None:
            params.append(f"content-light={hdr.light[0]},{hdr.light[1]}")
        return {"svtav1-params": ":".join(params)} if params else {}
    return None
