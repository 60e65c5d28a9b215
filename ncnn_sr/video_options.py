"""What the command line needs to know of video before a video is opened: which
names are videos, and how to encode one. Kept apart from ``video`` so that a picture
run never imports PyAV (and a machine without it can still upscale pictures).
"""
from __future__ import annotations

import math
import numbers
import os
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .errors import SettingError, describe
from .fixed import fixed_fields

# "auto": the frames a video flags as interlaced (DVDs, TV recordings, camcorder
# footage); "on": every frame, for a video that does not flag them; "off": none;
# "film": 3:2 pulldown undone (film and anime on NTSC DVDs: 29.97 to 23.976).
DEINTERLACE_MODES = ("auto", "on", "off", "film")
# FFmpeg's AVFieldOrder for a stream coded as fields: top or bottom first, in either order.
INTERLACED_FIELD_ORDERS = frozenset((2, 3, 4, 5))
# Longer than any video (some 30 years): a typo such as 1e99 is an error, not a wait.
MAX_SECONDS = 10 ** 9
# The common containers, which a refusal to write a codec into another offers in its place.
COMMON_CONTAINERS = ("mp4", "mkv", "mov", "webm", "avi")
# The containers a video is read and written as, the common ones first, as the
# command's help and its refusal of another list them.
VIDEO_CONTAINERS = COMMON_CONTAINERS + ("m4v", "3gp", "ts", "m2ts", "mts", "flv", "mpg", "mpeg", "vob", "wmv", "ogv")
VIDEO_SUFFIXES = frozenset(f".{container}" for container in VIDEO_CONTAINERS)


def is_video_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


# The brands of pictures stored as an mp4's boxes are (AVIF, HEIF), not videos; nor
# are those of sound alone (iTunes' songs and audiobooks, Flash's sound).
_PICTURE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_SOUND_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")


def video_kind(head: bytes) -> str | None:
    """The container whose signature ``head`` (a file's first 200 bytes or more)
    starts with, where it is a video's; None else. A Matroska file whose tracks are
    all in ``head`` is a video's where one of them may be a video track."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        types = _matroska_track_types(head)
        # 1: video; 3: "complex", which may hold video; None: a track that says not.
        return "Matroska" if types is None or {1, 3, None} & set(types) else None
    if head[4:8] == b"ftyp" and head[8:12] not in _PICTURE_BRANDS + _SOUND_BRANDS \
            or head[4:8] in (b"moov", b"mdat", b"wide"):
        return "MP4"
    if any(head[at:at + 1] == head[at + size:at + size + 1] == b"\x47" for at, size in ((0, 188), (4, 192))):
        return "MPEG-TS"  # a sync byte each packet: of 188 bytes, or 192 in a Blu-ray's .m2ts
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    signatures = {b"FLV\x01": "FLV", b"\x00\x00\x01\xba": "MPEG-PS", b"nut/multimedia container": "NUT",
                  b"\x30\x26\xb2\x75\x8e\x66\xcf\x11": "ASF", b"YUV4MPEG2 ": "YUV4MPEG2"}
    return next((kind for signature, kind in signatures.items() if head.startswith(signature)), None)


def _ebml_element(data: bytes, at: int) -> tuple[int, int, int] | None:
    """The EBML element whose header starts at ``at``: its ID, where its body starts,
    and its size (-1: unknown, as a live stream's is); None where ``data`` ends first."""
    fields = []
    for is_id in (True, False):
        if at >= len(data) or data[at] == 0:
            return None
        length = 9 - data[at].bit_length()  # a field's first set bit says how many bytes it has
        if at + length > len(data):
            return None
        value = int.from_bytes(data[at:at + length], "big")
        if not is_id:  # an ID keeps its length bit; a size drops it, and all ones is unknown
            value &= (1 << 7 * length) - 1
            value = -1 if value == (1 << 7 * length) - 1 else value
        fields.append(value)
        at += length
    return fields[0], at, fields[1]


def _matroska_track_types(head: bytes) -> list[int | None] | None:
    """Each track's TrackType in the Matroska file ``head`` starts (None: a track
    without one), where its Tracks element is whole in ``head`` before its first
    Cluster; None else. A sound file (.mka, .weba) has only audio tracks."""
    at, in_segment = 0, False
    while (element := _ebml_element(head, at)) is not None:
        id_, body, size = element
        if id_ == 0x18538067 and not in_segment:  # the Segment, which holds the rest
            at, in_segment = body, True
            continue
        if size < 0 or id_ == 0x1F43B675:
            return None  # a Cluster (the frames), or a size unknown: no Tracks told before them
        if id_ == 0x1654AE6B:
            entries = _ebml_children(head, body, body + size)  # None where cut short by ``head``
            if entries is None:
                return None
            types = []
            for entry_id, entry_body, entry_size in entries:
                fields = _ebml_children(head, entry_body, entry_body + entry_size) if entry_id == 0xAE else []
                if fields is None:
                    return None
                if entry_id == 0xAE:
                    types.append(next((int.from_bytes(head[b:b + n], "big") for i, b, n in fields if i == 0x83), None))
            return types
        at = body + size
    return None


def _ebml_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]] | None:
    """The elements from ``start`` to ``end`` as ``_ebml_element`` gives them; None where
    one is cut short, of unknown size, or runs past ``end``."""
    children = []
    while start < end:
        element = _ebml_element(data, start)
        if element is None or element[2] < 0 or element[1] + element[2] > end:
            return None
        children.append(element)
        start = element[1] + element[2]
    return children


def is_video_input(path: str | os.PathLike) -> bool:
    """Whether an input is a video by its name; a folder named like one (frames.mp4)
    holds pictures."""
    return is_video_path(path) and not os.path.isdir(path)


def _is_bool(value) -> bool:
    """Whether ``value`` is True or False, numpy's too. A value cannot be numpy's where
    numpy is not loaded: it is not loaded for this alone, which cost each command's
    start, its help too, a tenth of a second."""
    np = sys.modules.get("numpy")
    return isinstance(value, bool) or (np is not None and isinstance(value, np.bool_))


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time(text: str) -> Fraction:
    """Seconds from "90", "90.5", "1:30" or "1:02:03.5" (as ffmpeg's -ss takes
    them); ValueError for anything else, negative times included."""
    text = text.strip()
    found = _CLOCK.match(text)
    try:
        if found is None:
            seconds = Fraction(text)
        else:
            hours, minutes, secs = found.groups()
            if int(minutes) > 59 and hours is not None or Fraction(secs) >= 60:
                raise ValueError
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + Fraction(secs)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a time: give seconds (90, 2.5) or [H:]M:S (1:30, 1:02:03.5)") from None
    if seconds < 0:
        raise ValueError(f"{text!r} is before the start: times count from 0")
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than any video ({MAX_SECONDS} s at most)")
    return seconds


@fixed_fields("options", "EncodeOptions'")
@dataclass(frozen=True)
class EncodeOptions:
    """How the upscaled video is encoded. ``codec`` None picks libx264, or libvpx-vp9
    for .webm; ``crf`` None is 18 for x264, x265, VP8, VP9 and SVT-AV1 without a
    ``bitrate``; ``pix_fmt`` None is yuv420p, or its 10-bit form for input of more
    than 8 bits per sample.
    ``deinterlace`` is which frames are made whole before upscaling: "auto" those the
    video flags as interlaced, "on" all, "off" none, "film" 3:2 pulldown undone (see
    ``deinterlace``); ``field_rate`` makes a frame of each field instead of each frame
    (50i to 50p). ``start`` and ``duration`` take a part of the video only: from
    ``start`` into it, for ``duration`` (None: to its end), each in seconds or a
    time as the command takes it ("1:30", "00:01:30.5": ``parse_time``). ``skip_damaged``
    skips video packets the decoder refuses as damaged, with a warning, where
    otherwise the first is an error. ``preset`` is the encoder's own (None: its
    default); ``bitrate`` is in bits a second; ``fps`` a
    constant output rate, frames repeated or dropped to keep the duration (None keeps
    each frame's time). ``keep_width`` and ``keep_height`` say that the frames' width
    or height was asked for (``--width``, ``--height``): where the output holds no
    sample aspect ratio and anamorphic frames are stretched to square samples, the
    other side is what changes; with both, nothing is stretched."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # None: yuv420p, or yuv420p10le for deeper input where the encoder takes it
    bitrate: int | None = None
    fps: Fraction | None = None
    deinterlace: str = "auto"
    field_rate: bool = False
    start: Fraction = Fraction(0)
    duration: Fraction | None = None
    skip_damaged: bool = False
    keep_width: bool = False
    keep_height: bool = False

    def __post_init__(self) -> None:
        # Else fps=0 kept the source's rate unsaid, and fps="x" or codec=5 were bare
        # TypeErrors deep in the run.
        for name, what in (("codec", "an encoder's name"), ("preset", "a name"), ("pix_fmt", "a pixel format's name")):
            if not isinstance(getattr(self, name), (str, type(None))):
                raise SettingError(f"{name} must be {what}, not {describe(getattr(self, name))}")
        for name, what, least in (("crf", "a whole number, 0 or more", 0),
                                  ("bitrate", "a whole number of bits a second, at least 1", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                      or value < least):
                raise SettingError(f"{name} must be {what}, not {describe(value)}")
        if self.fps is not None and (isinstance(self.fps, bool) or not isinstance(self.fps, numbers.Real)
                                     or not 0 < self.fps < math.inf):
            raise SettingError(f"fps must be a positive number of frames a second, not {describe(self.fps)}")
        for name in ("start", "duration"):
            value = getattr(self, name)
            if value is None and name == "duration":
                continue
            if isinstance(value, str):  # as the command's --start and --duration take it
                try:
                    value = parse_time(value)
                except ValueError as e:
                    raise SettingError(f"{name}: {e}") from None
            if (isinstance(value, bool) or not isinstance(value, (int, float, Fraction))
                    or isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_SECONDS):
                raise SettingError(f"{name} must be a number of seconds or a time such as '1:30', up to "
                                   f"{MAX_SECONDS} seconds, not {describe(value)}")
            # A float as the decimal it was written as: 0.2 is a hair over 1/5 in binary,
            # which left out the frame at 0.2 s.
            object.__setattr__(self, name, Fraction(str(value)) if isinstance(value, float) else Fraction(value))
        if self.start < 0:
            raise SettingError(f"start must be 0 seconds or more, not {float(self.start)}")
        if self.duration is not None and self.duration <= 0:
            raise SettingError(f"duration must be more than 0 seconds, not {float(self.duration)}")
        for name in ("field_rate", "skip_damaged", "keep_width", "keep_height"):
            # A truthy "no" made a frame of each field, twice the frames to upscale.
            if not _is_bool(getattr(self, name)):
                raise SettingError(f"{name} must be True or False, not {describe(getattr(self, name))}")
        # An array's `in` compared each of its items: one passed, two were a bare ValueError.
        if not isinstance(self.deinterlace, str) or self.deinterlace not in DEINTERLACE_MODES:
            raise SettingError(f"deinterlace must be one of {', '.join(DEINTERLACE_MODES)}, "
                               f"not {describe(self.deinterlace)}")
        if self.field_rate and self.deinterlace in ("off", "film"):
            raise SettingError(f"a frame per field needs deinterlacing by field: field_rate with deinterlace "
                             f"{self.deinterlace!r}")

    def doubles_rate(self, field_order: int) -> bool:
        """Whether a video whose stream says its fields come in ``field_order`` comes
        out at twice its frame rate, a frame per field. Decided by the stream, before
        any frame: its rate is the output's from the start."""
        return self.field_rate and (self.deinterlace == "on" or (self.deinterlace == "auto"
                                                                 and field_order in INTERLACED_FIELD_ORDERS))

    @property
    def trims(self) -> bool:
        """Whether only a part of the video is wanted."""
        return self.start > 0 or self.duration is not None

    def part_seconds(self, total: Fraction) -> Fraction:
        """How long the part asked for is, of a video ``total`` seconds long."""
        seconds = max(Fraction(0), Fraction(total) - self.start)
        return seconds if self.duration is None else min(seconds, self.duration)

    def rate_factor(self, field_order: int) -> Fraction:
        """The output's frame rate over the input's: 2 for a frame per field, 4/5 for
        film put back together, else 1."""
        if self.deinterlace == "film":
            return Fraction(4, 5)
        return Fraction(2 if self.doubles_rate(field_order) else 1)
