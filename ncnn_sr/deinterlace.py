"""Interlaced video made whole frames before it is upscaled.

An interlaced frame holds two fields, the even and the odd lines, shot a field's time
apart (1/50 or 1/60 s): anything that moves shows as combs of alternate lines. The
network takes those combs for detail and sharpens them, four times the size. So
frames flagged interlaced go through FFmpeg's bwdif, which fills each field's missing
lines from that field and its neighbours in time, one frame out for one frame in (the
frame rate and the sound's sync stay as they were).
"""
from __future__ import annotations

import collections

import av

from .video_options import DEINTERLACE_MODES


class Deinterlacer:
    """Decoded frames in, the same frames deinterlaced out, in order. A frame comes
    out a frame late (the filter looks at the next one), so ``finish`` hands out the
    last. Each frame out keeps its input's time stamp, time base and duration; only
    its picture changes. Frames pass untouched until the first one to deinterlace."""

    def __init__(self, mode: str):
        if mode not in DEINTERLACE_MODES:
            raise ValueError(f"deinterlace mode {mode!r} is not one of {', '.join(DEINTERLACE_MODES)}")
        self.mode = mode
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
            self.graph, self.shape = _filter(frame, "interlaced" if self.mode == "auto" else "all"), shape
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
            # bwdif counts time in fields (half the input's time base); the stamps are
            # the input frame's, which this frame is, one for one.
            frame.pts, frame.time_base, frame.duration = self.stamps.popleft()
            done.append(frame)


def _filter(frame, which: str):
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=frame.time_base)
    # parity=auto: the field order each frame is flagged with.
    fields = graph.add("bwdif", f"mode=send_frame:parity=auto:deint={which}")
    sink = graph.add("buffersink")
    source.link_to(fields)
    fields.link_to(sink)
    graph.configure()
    return graph
