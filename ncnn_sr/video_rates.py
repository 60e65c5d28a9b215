"""Frame rates: the input's (its average, the rate its codec states, FFmpeg's
guess), the constant rate the output is written at where it has one (--fps, an
encoder's standard rates, a container that counts frames) and whether the output
can tell its frames' times apart at it, checked before a model loads; and the
slots of a constant rate that frames are placed in. Used by ``video``; knows
nothing of ncnn.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import video_streams
from .errors import FlagNames, InputError, Option
from .streams import VideoOutput
from .video_codecs import (RATE_PER_FRAME, _frame_rates, _nearest_rate, _rate_text, check_encoder_rate,
                           encoder_time_base)
from .video_options import EncodeOptions

if TYPE_CHECKING:
    from .video import VideoInfo


def _stated_rate(video_in) -> Fraction | None:
    """The rate the frames' times go by without --fps, where the input states one (for
    ``_check_fastest``): FFmpeg's guess of a rate (24576 fps for a .ts of two frames)
    says nothing of how far apart they are, but a bare stream's is all it has."""
    stated = video_in.average_rate if video_in.container.format.name not in _ELEMENTARY else video_in.guessed_rate
    return Fraction(stated) if stated else None


def _guessed_rate(video_in) -> Fraction | None:
    """FFmpeg's guess of ``video_in``'s rate, where its container states an average
    too: without one (a bare stream's, an MPEG program stream of one frame), the guess
    may be twice the rate, a field's, and is what ``_known_rate`` took already if it
    had nothing better."""
    if video_in.container.format.name in _ELEMENTARY or not video_in.average_rate or not video_in.guessed_rate:
        return None
    return Fraction(video_in.guessed_rate)


def _slot_rate(source: Fraction, guessed) -> Fraction:
    """The rate an output that counts frames (an AVI, an Ogg) is written at, or the
    one an encoder of standard rates takes the nearest of, for an input of ``source``
    frames a second on average: FFmpeg's ``guessed`` rate (ffmpeg's own choice) where
    it is higher, as a variable rate's is. A phone's 30 fps with two frames missing in
    30 averages 28.1 fps: frames that came 1/30 s apart fell into one slot, and two were
    dropped. A guess over four times the average, or over 240 fps (as fast as cameras
    film), is taken for the tick of the frames' times, not a rate they come at; one of
    twice it for a field's rate."""
    if guessed and source < guessed <= min(4 * source, 240) and guessed != 2 * source:
        return Fraction(guessed)
    return source


# FFmpeg's readers of bare streams (.h264, .hevc, .m2v, ...), whose average frame rate
# is the 25 a second they assume, whatever the stream says; their guess reads the stream.
_ELEMENTARY = frozenset({"h264", "hevc", "vvc", "mpegvideo", "m4v", "cavsvideo", "vc1", "obu", "h261", "h263",
                         "avs2", "avs3", "dirac"})


# Codecs whose every stream states its rate, one of a few standard ones (MPEG-1 and
# -2's sequence header): where FFmpeg has no average (a single frame), its guess was
# a field's, twice the rate.
_RATE_IN_HEADER = ("mpeg1video", "mpeg2video")


def _known_rate(video_in) -> Fraction | None:
    """The input's frame rate: its average, else the rate its codec states (MPEG-1
    and -2's), else FFmpeg's guess; None if none."""
    average = None if video_in.container.format.name in _ELEMENTARY else video_in.average_rate
    stated = video_in.codec_context.framerate if video_in.codec_context.name in _RATE_IN_HEADER else None
    rate = average or stated or video_in.guessed_rate
    return Fraction(rate) if rate else None


def _source_rate(video_in) -> Fraction:
    """The input's frame rate (``_known_rate``), else PAL's 25."""
    return _known_rate(video_in) or Fraction(25)


def _frame_count(video_in, options: EncodeOptions = EncodeOptions()) -> int | None:
    """The frames written of ``video_in``: those it says it holds, or its duration
    gives at its own rate or at ``options.fps``, of the part ``options`` asks for;
    None when unknown."""
    fps = options.fps
    if video_in.frames and fps is None and not options.trims:
        return video_in.frames
    rate = fps or _known_rate(video_in)
    if video_in.duration and rate:
        return round(options.part_seconds(video_in.duration * video_in.time_base) * rate)
    return video_in.frames or None


# FFmpeg's AVI muxer counts a faster video in 1/600 s, two frames in one slot, which
# it then refused.
AVI_FASTEST = 1000
# Muxers that stamp frames in whole milliseconds (Matroska's and WebM's, FLV's, ASF's):
# a faster video's frames shared stamps, unsaid, and were read back as fewer (ASF's
# muxer refused them, as a bare "Invalid argument", after the model had loaded).
MILLISECOND_MUXERS = frozenset({"matroska", "webm", "flv", "asf"})
MILLISECOND_FASTEST = 1000
# Muxers whose video codecs count frames at the stream's time base (see _constant_rate).
FRAME_COUNTING_MUXERS = frozenset({"avi", "ogg", "ogv"})


def _constant_rate(dst: Path | VideoOutput, encoder: str, factor: Fraction) -> bool:
    """Whether ``dst`` is written at a constant rate without --fps, the input's times
    ``factor``. A frame per field is a constant rate, as fields are shot, and so is
    film put back together. An AVI counts frames at its time base: at the input's
    (1/12288 from an mp4, 1/90000 from a .ts) it was a video of hundreds of frames a
    second, mostly empty ones. ffmpeg, too, writes an AVI at its frame rate. Ogg's
    VP8 and Theora count frames too: at another time base FFmpeg read the first frame
    back a frame late, a tick before the second, which players then skipped."""
    return factor != 1 or video_streams.muxer_for(dst) in FRAME_COUNTING_MUXERS or encoder in RATE_PER_FRAME


def check_rate(info: VideoInfo, dst: Path | VideoOutput, encoder: str, options: EncodeOptions,
               flags: FlagNames = FlagNames()) -> None:
    """Before any model loads: the InputError ``upscale_video`` would meet where ``dst``
    cannot tell apart the times of frames at the rate it would write ``info``'s at."""
    _checked_rate(dst, encoder, options.fps, info.rate or Fraction(25), info.stated_rate,
                  options.rate_factor(info.field_order), flags, guessed=info.guessed_rate)


def _checked_rate(dst: Path | VideoOutput, encoder: str, fps: Fraction | None, source: Fraction,
                  stated: Fraction | None, factor: Fraction, flags: FlagNames,
                  listed: Callable[[str, Fraction], Fraction] = _nearest_rate,
                  guessed: Fraction | None = None) -> Fraction | None:
    """The constant rate ``dst`` is written at, None where frames keep their own
    times: ``fps`` (--fps); else, for an encoder that keeps to a list of rates, the
    one ``listed`` picks for the input's ``source`` rate times ``factor`` (a frame per
    field, film put back together), or that rate itself where ``_constant_rate``. An
    InputError where ``encoder`` cannot encode at it, or ``dst`` cannot tell apart
    the times of frames at it (with none, at the ``stated`` rate times ``factor``)."""
    if fps is None and _frame_rates(encoder):
        fps = listed(encoder, _slot_rate(source, guessed) * factor)
    elif fps is None and _constant_rate(dst, encoder, factor):
        fps = _slot_rate(source, guessed) * factor
    check_encoder_rate(dst, encoder, fps or source, flags)
    _check_fastest(dst, fps or (stated and stated * factor), flags)
    return fps


def _fps(flags: FlagNames, rate: int) -> Option:
    """A rate to give, as ``flags``' command takes it (--fps 1000) or EncodeOptions (fps=1000)."""
    return Option(flag=flags(f"--fps {rate}"), argument=f"fps={rate}", everywhere=True)


def _check_fastest(dst: Path | VideoOutput, rate: Fraction | None, flags: FlagNames) -> None:
    """An InputError if a ``dst`` of video at ``rate`` frames a second cannot tell its frames' times apart."""
    if rate is None:
        return
    muxer = video_streams.muxer_for(dst)
    if muxer == "avi" and rate > AVI_FASTEST:
        raise InputError(f"{dst}: an .avi holds at most {AVI_FASTEST} frames a second, not {_rate_text(rate)}: "
                         "give ", _fps(flags, AVI_FASTEST), " or less, or write another container")
    if muxer in MILLISECOND_MUXERS and rate > MILLISECOND_FASTEST:
        raise InputError(f"{dst}: {dst.suffix} stamps frames in whole milliseconds, so holds at most "
                         f"{MILLISECOND_FASTEST} frames a second, not {_rate_text(rate)}: give ",
                         _fps(flags, MILLISECOND_FASTEST), " or less, or write .mp4 or .mov")


class _ConstantRate:
    """A constant output rate: each input frame goes to the slot nearest its time
    (slot k at k/fps seconds), as ffmpeg's fps filter puts it; a slot shows the last
    frame to reach it or before it, so frames repeat or drop and the duration stays.
    Not the first slot at or after its time: on a timeline a little off the slots'
    (a .vob's, a part's from a --start between frames) every frame came a slot late,
    behind its sound. The slots are shifted by the first frame's distance from its
    own (under half a slot either way), so that a rate's frames near the halves
    between slots, in millisecond stamps that round either way (a Matroska's picture
    starting 21 ms in, at 24 fps), do not fall two in one slot, one dropped, one shown
    twice."""

    EPSILON = 1e-6

    def __init__(self, fps: Fraction):
        self.fps = fps
        self.next_slot = 0
        self.pending = None
        self.begins = self.end = 0.0
        self.shown = False  # whether a frame has been given a slot
        self.phase: Fraction | None = None  # the first frame's place less its slot's, in slots

    def push(self, frame, seconds: float, duration: float) -> list:
        """(frame, slot) pairs that are now settled, after a new input frame."""
        slot = self._nearest(seconds)
        settled = []
        if self.pending is None:
            self.next_slot = slot
        else:
            settled = [(self.pending, k) for k in range(self.next_slot, slot)]
            self.next_slot = max(self.next_slot, slot)
            self.shown = self.shown or bool(settled)
        self.pending, self.begins, self.end = frame, seconds, seconds + duration
        return settled

    def finish(self, end: float | None = None, part: Fraction | None = None, cut: bool = False) -> list:
        """The slots of the last frame: to ``end`` seconds where that is known better
        than from its own duration; none from ``part`` seconds on, the length of a
        part asked for, and every slot before that where ``cut``, a frame shown after
        the part having come (as ffmpeg's -t keeps the frames stamped before its time)."""
        if self.pending is None:
            return []
        if end is not None and end > self.begins:
            self.end = end
        last = self._nearest(self.end)
        shift = self.phase or 0
        if not self.shown or self.begins * self.fps - shift <= self.next_slot < self.end * self.fps - shift:
            # The frame on screen at its slot's time keeps it, however short its stated
            # duration (a variable rate's frames state the nominal one); and a video
            # shorter than half a slot still has its frame.
            last = max(last, self.next_slot + 1)
        if part is not None:
            # The slots whose times, as the frames were placed in them, are in the part.
            slots = math.ceil(part * self.fps - shift - self.EPSILON)
            last = slots if cut else min(last, slots)
        return [(self.pending, k) for k in range(self.next_slot, last)]

    def _nearest(self, seconds: float) -> int:
        place = Fraction(seconds) * self.fps
        if self.phase is None:
            self.phase = place - math.floor(place + Fraction(1, 2) + self.EPSILON)  # halves up, as ffmpeg rounds
        return math.floor(place - self.phase + Fraction(1, 2) + self.EPSILON)


GRID_FINEST = 1_000_000  # ticks a second a rate's grid may take (24000/1001 in milliseconds: 24000)


class _RateGrid:
    """Frame times stamped in a coarse tick (a Matroska's milliseconds) put back on
    the video's constant rate where they are within a tick of it: 23.976 fps reads
    as frames of 41 and 42 ms, which an mp4 kept as a variable rate of 23.98, as
    editors and MediaInfo then took it. The rate's slots count from the first frame;
    a frame further off one (a variable rate's) keeps its own time."""

    def __init__(self, rate: Fraction, tick: Fraction):
        self.rate, self.tick = rate, tick
        self.time_base = Fraction(1, math.lcm(rate.numerator, tick.denominator))  # holds both kinds of time
        self.origin: Fraction | None = None
        self.last: Fraction | None = None

    @classmethod
    def fitting(cls, video_in, codec: str, muxer: str) -> _RateGrid | None:
        """The grid for ``video_in``'s frames, where it states a constant rate (its
        average is FFmpeg's guess from its stamps: not a variable rate's, as a GIF's)
        that its tick cannot hold the frame times of, and the output can (not a muxer
        of milliseconds itself)."""
        rate, tick = video_in.average_rate, video_in.time_base
        if not rate or rate != video_in.guessed_rate or tick is None or tick.numerator != 1 \
                or muxer in MILLISECOND_MUXERS or (1 / Fraction(rate) / tick).denominator == 1 \
                or math.lcm(rate.numerator, tick.denominator) > GRID_FINEST:
            return None
        grid = cls(Fraction(rate), tick)
        return grid if encoder_time_base(codec, grid.time_base) == grid.time_base else None

    def place(self, pts: int) -> int:
        """``pts``, in the input's ticks, in the grid's time base."""
        seconds = pts * self.tick
        if self.origin is None:
            self.origin = seconds
        slot = self.origin + round((seconds - self.origin) * self.rate) / self.rate
        # Nearer than a tick, where the first frame's own rounding may put the others:
        # a frame a tick later than one moved on by under a tick stays after it.
        if abs(slot - seconds) < self.tick and (self.last is None or slot > self.last):
            seconds = slot
        self.last = seconds
        return int(seconds / self.time_base)


def _avi_lead(seconds: float, time_base: Fraction, settled: list) -> list:
    """The (frame, slot) pairs of an AVI's first frame, shown ``seconds`` after its
    sound's start, with its picture in the slots before it too: the AVI muxer writes
    the first frame in the first slot whatever its time, and sound that started before
    the picture (a .ts recording's, whose picture waits for a keyframe) came that much
    late. Held there, as ffmpeg's constant rate holds it; the slot nearest its time.
    (Without sound, nothing is placed against it: an .m2v's first frame, guessed a
    frame in, was shown twice.)"""
    frame, slot = settled[0]
    ahead = round(Fraction(seconds) / time_base)
    return [(frame, slot - k) for k in range(ahead, 0, -1)] + settled
