"""Interlaced video made whole frames before it is upscaled.

An interlaced frame holds two fields, the even and the odd lines, shot a field's time
apart (1/50 or 1/60 s): anything that moves shows as combs of alternate lines. The
network takes those combs for detail and sharpens them, four times the size. So
frames flagged interlaced go through FFmpeg's bwdif, which fills each field's missing
lines from that field and its neighbours in time, one frame out for one frame in (the
frame rate and the sound's sync stay as they were), or on request one frame out for
each field (50i to 50p: the motion as smooth as it was shot, twice the frames).
"""
from __future__ import annotations

import collections
from fractions import Fraction

import av

from .video_options import DEINTERLACE_MODES

# bwdif's smallest plane (width, height): it reads a column either side and two
# lines above and below, and refuses less (fieldmatch and decimate come with it).
# Each plane: 4:2:0 colour is half the frame's size each way.
SMALLEST = (3, 4)


def smallest(fmt: av.VideoFormat) -> tuple[int, int]:
    """The smallest frame of pixel format ``fmt`` bwdif takes: 5x7 in yuv420p."""
    width = next(w for w in range(SMALLEST[0], 4 * SMALLEST[0]) if fmt.chroma_width(w) >= SMALLEST[0])
    height = next(h for h in range(SMALLEST[1], 4 * SMALLEST[1]) if fmt.chroma_height(h) >= SMALLEST[1])
    return width, height


class TooSmall(ValueError):
    """Frames smaller than the filters take: FFmpeg's own word was "Invalid argument". Its words
    say what is wrong; the video's command says how to upscale them all the same."""


class Deinterlacer:
    """Decoded frames in, the same frames deinterlaced out, in order. A frame comes
    out a frame late (the filter looks at the next one), so ``finish`` hands out the
    last. Each frame out keeps its input's time stamp, time base and duration; only
    its picture changes. With ``fields``, a frame deinterlaced comes out as two, each
    stamped with its field's time (in half the input's time base) and lasting half
    as long. Frames pass untouched until the first one to deinterlace.

    Mode "film" undoes 3:2 pulldown instead: film's 24 frames a second, spread over
    30 video frames as 60 fields, are put back together from their own fields
    (fieldmatch), a frame that has none to match deinterlaced, and the one repeated
    frame in every five dropped (decimate): 29.97 frames a second in, 23.976 out,
    each stamped with its own time. The filter needs the video's frame ``rate``."""

    def __init__(self, mode: str, fields: bool = False, rate: Fraction = Fraction(30000, 1001)):
        if mode not in DEINTERLACE_MODES:
            raise ValueError(f"deinterlace mode {mode!r} is not one of {', '.join(DEINTERLACE_MODES)}")
        self.mode, self.fields, self.rate = mode, fields, rate
        # One frame out for one in: each gets its input's stamps back. Otherwise (a
        # frame per field, film) the filter's own stamps are the frames' times.
        self.restamped = not fields and mode != "film"
        self.graph = None
        self.shape = None
        self.stamps: collections.deque = collections.deque()

    @property
    def started(self) -> bool:
        """Whether a frame has gone to the filter."""
        return self.shape is not None

    def push(self, frame) -> list:
        if self.graph is None and not self._wanted(frame):
            return [frame]
        done = []
        shape = (frame.width, frame.height, frame.format.name)
        if self.graph is not None and shape != self.shape:
            done = self.finish()  # a change of size or format midway: a filter for the new one
        if self.graph is None:
            least = smallest(frame.format)
            if frame.width < least[0] or frame.height < least[1]:
                raise TooSmall(f"its {frame.width}x{frame.height} frames are too small to deinterlace (bwdif takes "
                               f"{least[0]}x{least[1]} and up in {frame.format.name})")
            self.graph, self.shape = _filter(frame, self._chain(), self.rate), shape
        if self.restamped:
            self.stamps.append((frame.pts, frame.time_base, frame.duration))
        self.graph.push(frame)
        return done + self._pulled()

    def finish(self) -> list:
        """The frames the filter still holds."""
        if self.graph is None:
            return []
        self.graph.push(None)
        done = self._pulled()
        self.graph = None
        return done

    def _wanted(self, frame) -> bool:
        return self.mode in ("on", "film") or (self.mode == "auto" and frame.interlaced_frame)

    def _chain(self) -> list[tuple[str, str]]:
        # parity=auto: the field order each frame is flagged with.
        if self.mode == "film":
            return [("fieldmatch", "order=auto"), ("bwdif", "mode=send_frame:parity=auto:deint=interlaced"),
                    ("decimate", "")]
        which = "interlaced" if self.mode == "auto" else "all"
        return [("bwdif", f"mode={'send_field' if self.fields else 'send_frame'}:parity=auto:deint={which}")]

    def _pulled(self) -> list:
        done = []
        while True:
            try:
                frame = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return done
            if self.restamped:
                # bwdif counts time in fields (half the input's time base); the stamps
                # are the input frame's, which this frame is, one for one.
                frame.pts, frame.time_base, frame.duration = self.stamps.popleft()
            done.append(frame)


def _filter(frame, chain: list[tuple[str, str]], rate: Fraction):
    graph = av.filter.Graph()
    # Described in full, as PyAV's add_buffer cannot give the frame rate decimate needs.
    source = graph.add("buffer", f"video_size={frame.width}x{frame.height}:pix_fmt={frame.format.name}:"
                                 f"time_base={frame.time_base}:frame_rate={rate}:pixel_aspect=1/1")
    nodes = [source, *(graph.add(name, args) for name, args in chain), graph.add("buffersink")]
    for node, after in zip(nodes, nodes[1:]):
        node.link_to(after)
    graph.configure()
    return graph
