"""Where things are on an input video's timeline: where it starts (an MPEG program
stream's near 0.5 s), how long it and its video stream last as its container says,
the part ``--start`` and ``--duration`` ask for on it (a ``Window``, checked before
a model loads), a seek to a keyframe before that part, and whether its frames come
at a variable rate. Used by ``video``; knows nothing of ncnn.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import re
from fractions import Fraction

import av

from .errors import FlagNames, InputError, Option
from .streams import VideoInput
from .video_options import EncodeOptions
from .video_packets import _Ahead, _demuxed, _packet_time, _reopened
from .video_rates import _ELEMENTARY, _known_rate
from .video_window import INTERLEAVED_WITHIN, Window


# How many packets to look at for a file's first time where FFmpeg gives none: enough
# to pass frames coded out of order, and the other streams' packets among them.
FIRST_PACKETS = 64


def _origin(inp, src=None) -> Fraction:
    """Where the input's timeline starts (an MPEG program stream's near 0.5 s). Where
    FFmpeg gives no start time (a Matroska file of three frames or fewer, with
    B-frames) and ``src`` is a file (standard input redirected from one too), the
    earliest time among its first packets."""
    if inp.start_time is not None:
        # Each stream's own start, exactly: the file's is rounded to the microsecond, so
        # could lie past the first packet, which a part then left out (a .ts's first
        # sound packet, 21 ms of AAC, with --start or --duration).
        starts = [s.start_time * s.time_base for s in inp.streams if s.start_time is not None and s.time_base]
        exact = min(starts, default=None)
        rounded = Fraction(inp.start_time, av.time_base)
        return exact if exact is not None and abs(exact - rounded) < Fraction(1, av.time_base) else rounded
    # Read in a second opening of the file, so that ``inp`` stays where it is.
    with _reopened(src) as again:
        if again is None:
            return Fraction(0)
        try:
            times = [t for packet in itertools.islice(_demuxed(again), FIRST_PACKETS)
                     if (t := _packet_time(packet)) is not None]
        except av.error.FFmpegError:
            return Fraction(0)
    return min(times, default=Fraction(0))


def _length(container, start: Fraction | None = None, src=None) -> Fraction | None:
    """How long ``container`` says it lasts, from its first timestamp (``start``
    seconds, else its start time) on; None where it does not say. ``src``, the file
    it was opened from, is read again where what it says falls short."""
    if not container.duration:
        return None
    total = Fraction(container.duration, av.time_base)
    name = container.format.name
    if name == "mpeg" and src is not None and container.start_time is not None:
        # An MPEG program stream's is the last time one of its packs states: the
        # frames after it in that pack (small ones share a pack of 2048 bytes) were
        # left out, and 4 tiny frames at 25 fps lasted 0.04 s, not 0.16 s.
        begins = Fraction(container.start_time, av.time_base)
        end = _packets_end(src, begins + total - TAIL)
        total = max(total, end - begins) if end is not None else total
    if name.startswith("matroska") or name == "nut":
        # Matroska's duration is where its streams end on a timeline that runs from 0,
        # not from its first frame: a file cut from 10 s on was 10 s longer than it lasts.
        # So is NUT's (a video with B-frames starts a frame or two in).
        total -= _origin(container) if start is None else start
    if name == "nut":
        # NUT's is its last packet's time (its index's greatest): the last frame's own
        # length is left out, and a count of frames came one short.
        rate = next((r for v in container.streams.video if (r := _known_rate(v))), None)
        total += 1 / rate if rate else 0
    return total if total > 0 else None


def _video_length(container, v, start: Fraction | None = None, src=None) -> Fraction | None:
    """How long the video stream ``v`` lasts from ``container``'s first timestamp
    (``start`` seconds, else its start time), as _length counts, where the container
    states it apart from its other streams: a Matroska (WebM) track's DURATION tag
    (HH:MM:SS.nnnnnnnnn), where it ends, which FFmpeg's muxer writes for each track,
    ahead of the frames, so a pipe has it too; the stream's own duration where
    _OWN_DURATION trusts it; a NUT file's last video packets, which ``src``, the file
    it was opened from, is read again for. Its length alone counted the frames of a
    clip with no frame count: 39 of a 30-frame clip (1.25 s at 24 fps) whose sound ran
    to 1.6 s. None where it is not stated (a pipe's MPEG-TS or NUT)."""
    origin = _origin(container) if start is None else start
    name = container.format.name
    end = None
    if name.startswith("matroska"):
        stated = next((value for key, value in v.metadata.items() if key.upper() == "DURATION"), None)
        said = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*", stated) if stated else None
        if said is not None:
            end = int(said[1]) * 3600 + int(said[2]) * 60 + Fraction(said[3])
    elif name in _OWN_DURATION and v.duration and v.start_time is not None and v.time_base:
        end = (v.start_time + v.duration) * v.time_base
    elif name == "nut" and src is not None and (whole := _length(container, origin)) is not None:
        # NUT states no stream's length, only where its last packet of any is: a video
        # that ends over TAIL before its sound is not found there, and stays unknown.
        end = _packets_end(src, origin + whole - TAIL, v.index)
    if end is None:
        return None
    seconds = end - origin
    return seconds if seconds > 0 else None


def _lead(container, v) -> Fraction:
    """How long after ``container``'s first timestamp its video stream ``v`` starts."""
    if v.start_time is None or not v.time_base:
        return Fraction(0)
    return max(v.start_time * v.time_base - _origin(container), Fraction(0))


# How far before the end a file's duration gives its last packets are looked for.
TAIL = Fraction(2)


def _packets_end(src, after: Fraction, index: int | None = None) -> Fraction | None:
    """Where the latest packet of ``src`` (of its stream ``index`` alone, where
    given) from ``after`` seconds on ends, in a second opening of it; None where it
    cannot be read again, or has no such packet."""
    with _reopened(src) as again:
        if again is None:
            return None
        try:
            if after > 0:
                again.seek(math.floor(after * av.time_base), backward=True)
            ends = [time + Fraction(packet.duration or 0) * packet.time_base for packet in _demuxed(again)
                    if (index is None or packet.stream.index == index) and (time := _packet_time(packet)) is not None]
        except av.error.FFmpegError:
            return None
    return max(ends, default=None)


# FFmpeg's name for the readers of mp4, mov and their kin, whose tracks state their
# length (what their edit list shows); other containers' stream durations may be guesses.
_MOV_READER = "mov,mp4,m4a,3gp,3g2,mj2"


# The containers whose streams' durations are each its own (_video_length): mp4's and
# its kin's, an AVI's (its frame count), and an MPEG-TS file's, which FFmpeg measures
# to each stream's last timestamps (a pipe's it cannot read to the end: none). Others'
# may be the container's, or guessed from its bitrate, shorter than the picture.
_OWN_DURATION = frozenset({_MOV_READER, "avi", "mpegts"})


def _stream_end(video_in) -> Fraction | None:
    """Where the video track ``video_in`` ends, in seconds on its timeline, as its
    container states it; None where it states none."""
    if video_in.container.format.name != _MOV_READER or video_in.duration is None or video_in.start_time is None:
        return None
    return (video_in.start_time + video_in.duration) * video_in.time_base


def _part_option(name: str, flags: FlagNames) -> Option:
    """EncodeOptions' ``name`` (start, duration) as the library's caller gave it, or the
    flag that sets it as ``flags``' command takes it."""
    return Option(flag=flags(f"--{name}"), argument=name, everywhere=True)


def check_start(src, options: EncodeOptions, length, video=None, flags: FlagNames = FlagNames()) -> None:
    """InputError where ``options.start`` is at or past the end of ``src``, which lasts
    ``length`` seconds (None: unknown), its video ``video`` seconds where known apart
    (a sound that runs on past the picture): no frame of it would come. The commands
    check it from ``probe``'s durations before a model loads: those count from the
    start time FFmpeg gives, else from 0, so they are never shorter than the part's
    timeline, which may count from a late first frame. ``flags``: how the command's
    hints name its options."""
    if video is not None and (length is None or video < length):
        if options.start < video:
            return
        if length is not None and round(video, 3) < round(length, 3):
            raise InputError(f"{src}: starting at {float(options.start):g} s (", _part_option("start", flags),
                             f") is past the end of its video, at {float(video):.3f} s (the file goes on to "
                             f"{float(length):.3f} s)")
        length = video
    if length is not None and options.start >= length:
        raise InputError(f"{src}: starting at {float(options.start):g} s (", _part_option("start", flags),
                         f") is past its end, at {float(length):.3f} s")


def _window(inp, video_in, src, options: EncodeOptions, flags: FlagNames) -> Window:
    """The part of the input that ``options`` asks for, on its timeline."""
    if (inp.start_time is None and isinstance(src, VideoInput) and not src.seekable()
            and inp.format.name not in _ELEMENTARY):  # a bare stream's frames count from 0
        # Its first frame's time is known only once read, after the part has been needed.
        raise InputError(f"{src} does not say where its video starts, which a part (", _part_option("start", flags),
                         ", ", _part_option("duration", flags), ") counts from, and a pipe cannot be read twice to "
                         "find it: ", Option(flag="redirect a file to it (-i - < in.mkv)",
                                             argument="give it as a file", everywhere=True))
    origin = _origin(inp, src)
    check_start(src, options, _length(inp, origin, src), _video_length(inp, video_in, origin, src), flags)
    start = origin + options.start
    return Window(start, None if options.duration is None else start + options.duration)


# Containers whose times are a clock's readings, not the video's own: an MPEG-TS
# (a broadcast recording, a stream's later segment) or program stream starts where
# the clock stood, 1000 s say, or 0.5 s.
_CLOCKED = frozenset({"mpegts", "mpeg"})


def _clock_window(inp) -> Window | None:
    """The whole of ``inp`` as a part from its first time, where that time is a
    clock's reading (_CLOCKED) past 0, so that the output starts at 0 as ffmpeg's
    does: it kept the clock, and a .ts whose clock read 1000 s at its start made an mp4
    of 1000 s of nothing (an empty edit) before its picture. None otherwise."""
    if inp.format.name not in _CLOCKED or inp.start_time is None or inp.start_time <= 0:
        return None
    return Window(_origin(inp))


@contextlib.contextmanager
def _reopened_at(src, index: int, window: Window | None, origin: Fraction):
    """``_reopened(src)``, moved to a keyframe of its stream ``index`` at or before the
    start of ``window`` where it can be (``_seek``), so that a part late in a long file
    is not read from the beginning; else at its beginning."""
    with _reopened(src) as again:
        if again is None or window is None or _seek(again, again.streams[index], window.start, origin):
            yield again
            return
    with _reopened(src) as again:  # moved, but not to such a place
        yield again


def _long_past(window: Window, packet) -> bool:
    """Whether ``packet`` is so far past ``window`` that no packet of the window can follow."""
    seconds = _packet_time(packet)
    return seconds is not None and window.past(seconds - INTERLEAVED_WITHIN)


# How far before the window a seek aims first: a demuxer may land on a keyframe after
# the time asked for (an MPEG-TS finds its times by searching the file, and lands a
# keyframe late).
SEEK_MARGIN = Fraction(2)
# How long before a part a subtitle cue still shown at its start may have begun. A
# cue is read where it begins, which a seek to just before the part passes over, so
# one to an input with subtitles aims this far back; decoding that much more video
# costs little beside upscaling the part.
CUE_LEAD = Fraction(60)


def _seek(inp, video_in, start: Fraction, origin: Fraction, margin: Fraction = SEEK_MARGIN,
          ahead: _Ahead | None = None) -> bool:
    """Move the input to a keyframe at or before ``start``, so that a part late in a
    long video is not decoded from the beginning. Each try looks at the first video
    packet it lands on, and aims further back if that is past ``start`` or no keyframe. False when
    the input has moved but not to such a place (it cannot seek, or lands late even
    aiming at its beginning): it must be read again from the beginning. True also
    where ``start`` is too near the beginning to seek at all. ``ahead``: what was read
    of ``inp`` ahead of its run, which is not read again once it has moved."""
    first = margin
    if ahead is not None and start - margin > origin:
        ahead.sought()
    while start - margin > origin:
        target = int((start - margin) * av.time_base)
        try:
            inp.seek(target, backward=True)
            landed = next((p for p in inp.demux(video_in) if p.pts is not None or p.dts is not None), None)
            # An MPEG-TS's seek lands on any packet near its aim: one between keyframes
            # decodes nothing up to the next (none, in a clip of one), so is no place.
            if landed is not None and landed.is_keyframe:
                stamp = landed.pts if landed.pts is not None else landed.dts
                if stamp * landed.time_base <= start:
                    inp.seek(target, backward=True)  # back to that keyframe, the packet looked at unread
                    return True
        except (av.error.FFmpegError, OSError):
            return False
        margin *= 4
    return margin == first


# The most frames H.264 and H.265 decode before one shown earlier (their reorder depth).
MOST_REORDERED = 16


def _variable_rate(src, video_in, ahead: _Ahead, window: Window | None = None,
                   origin: Fraction = Fraction(0)) -> bool:
    """Whether the frames of ``video_in`` (those in ``window``, on a timeline that starts
    at ``origin``) come at a variable rate: they lie further apart than a millisecond
    (or one of its ticks) from evenly spaced. Read again from ``src``, or where it
    cannot be (a pipe) ``ahead`` of the run."""
    # Every frame's time, not the first few seconds': a video may turn variable late
    # (a screen recording constant for minutes), and B-frames kept for it ended its mp4
    # short. Packets are read, not decoded: one pass over the file (400 MB in 0.28 s
    # from the page cache), little beside upscaling it; a part's from a keyframe
    # before it, not from the file's start (a part at 50 minutes of a 6.3 GB hour:
    # 3.9 s, 6.5 s from the disk, became 0.11 s). A pipe is looked at as far as
    # it can be held for the run (PEEK_BYTES) and comes in PEEK_SECONDS: a rate that
    # turns variable past that is not seen. Neither the mp4's index (decoding times only) nor a switch of encoder
    # at the first uneven frame (its B-frames already out) would answer it.
    base = video_in.time_base
    if not base:
        return False
    # In ticks of the stream's time base: Fractions made for each of a film's 200000
    # packets cost seconds.
    spacing = _Spacing(math.floor(max(base, Fraction(1, 1000)) / base))
    first, end, past = -math.inf, math.inf, math.inf
    if window is not None:  # its frames alone are written, and none that is long past its end follows
        first = math.ceil(window.start / base)
        if window.end is not None:
            end, past = math.ceil(window.end / base), math.ceil((window.end + INTERLEAVED_WITHIN) / base)
    with _reopened_at(src, video_in.index, window, origin) as again:
        packets = _demuxed(again, again.streams[video_in.index]) if again is not None else ahead.read()
        try:
            for packet in packets:
                if packet.stream_index != video_in.index or not packet.size:
                    continue
                time = packet.pts if packet.pts is not None else packet.dts
                if time is None:
                    continue
                if time >= past:
                    return spacing.settled(ended=True)
                if first <= time < end and spacing.uneven(time):
                    return True
        except av.error.FFmpegError:
            return spacing.settled()  # the run reads on, and says what is wrong
        return spacing.settled(ended=again is not None or ahead.ended)


class _Spacing:
    """Frame times in decoding order, each within MOST_REORDERED of its place as shown,
    looked at in the order shown: whether they are further than ``tolerance`` from
    evenly spaced. Holds that many times, however many frames."""

    def __init__(self, tolerance: int):
        self.tolerance = tolerance
        self.waiting: list = []  # a heap of those that an earlier frame may still come before
        self.last = self.low = self.high = None

    def uneven(self, time) -> bool:
        """Whether the times so far show an uneven rate, once ``time`` is taken in."""
        heapq.heappush(self.waiting, time)
        return len(self.waiting) > MOST_REORDERED and self._shown(heapq.heappop(self.waiting))

    def settled(self, ended: bool = False) -> bool:
        """Whether the times show an uneven rate: where more frames may follow (not
        ``ended``), those still waiting are not looked at, as the frames decoded after
        them may be shown between them."""
        return ended and any(self._shown(heapq.heappop(self.waiting)) for _ in range(len(self.waiting)))

    def _shown(self, time) -> bool:
        if self.last is not None:
            # A frame no later than the one before (decoded more than MOST_REORDERED
            # late, or a slip) makes a gap of 0 or less: uneven, as sorting them would.
            gap = time - self.last
            self.low = gap if self.low is None else min(self.low, gap)
            self.high = gap if self.high is None else max(self.high, gap)
        self.last = time
        return self.high is not None and self.high - self.low > self.tolerance
