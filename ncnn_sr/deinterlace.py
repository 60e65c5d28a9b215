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

import av

from .video_options import DEINTERLACE_MODES


class Deinterlacer:
    """Decoded frames in, the same frames deinterlaced out, in order. A frame comes
    out a frame late (the filter looks at the next one), so ``finish`` hands out the
    last. Each frame out keeps its input's time stamp, time base and duration; only
    its picture changes. With ``fields``, a frame deinterlaced comes out as two, each
    stamped with its field's time (in half the input's time base) and lasting half
    as long. Frames pass untouched until the first one to deinterlace."""

    def __init__(self, mode: str, fields: bool = False):
        if mode not in DEINTERLACE_MODES:
            raise ValueError(f"deinterlace mode {mode!r} is not one of {', '.join(DEINTERLACE_MODES)}")
        self.mode, self.fields = mode, fields
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
            self.graph = _filter(frame, "interlaced" if self.mode == "auto" else "all", self.fields)
            self.shape = shape
        if not self.fields:
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
        return self.mode == "on" or (self.mode == "auto" and frame.interlaced_frame)

    def _pulled(self) -> list:
        done = []
        while True:
            try:
                frame = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return done
            if not self.fields:
                # bwdif counts time in fields (half the input's time base); the stamps
                # are the input frame's, which this frame is, one for one.
                frame.pts, frame.time_base, frame.duration = self.stamps.popleft()
            done.append(frame)


def _filter(frame, which: str, fields: bool):
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=frame.time_base)
    # parity=auto: the field order each frame is flagged with.
    bwdif = graph.add("bwdif", f"mode={'send_field' if fields else 'send_frame'}:parity=auto:deint={which}")
    sink = graph.add("buffersink")
    source.link_to(bwdif)
    bwdif.link_to(sink)
    graph.configure()
    return graph
