"""A part of a video, for ``--start`` and ``--duration``: which frames, sound packets,
subtitle cues and chapters fall in it, with their times moved so that the part
starts at 0, as a video cut from a longer one does. Knows nothing of files or ncnn.

Times are exact fractions of a second on the video's own timeline (its streams'
time stamps, which may not start at 0: an MPEG program stream starts near 0.5 s).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

# How far apart in time a file's streams' packets may lie: muxers interleave them
# within a second or so (Matroska's clusters hold up to a few seconds).
INTERLEAVED_WITHIN = Fraction(10)

@dataclass(frozen=True)
class Window:
    """From ``start`` to ``end`` seconds of the video's timeline (``end`` None: to
    its end), shown from time 0 in the output."""

    start: Fraction
    end: Fraction | None = None

    def holds(self, seconds: Fraction) -> bool:
        """Whether something that starts at ``seconds`` (a frame, a sound packet) is
        in the window."""
        return self.start <= seconds and (self.end is None or seconds < self.end)

    def past(self, seconds: Fraction | None) -> bool:
        """Whether ``seconds`` (None: not known) is at or after the window's end."""
        return self.end is not None and seconds is not None and seconds >= self.end

    def ticks(self, time_base: Fraction) -> int:
        """The window's start in ``time_base`` ticks, rounded down: what comes off the
        time stamps of a stream in that time base (never below 0 for what it holds)."""
        return math.floor(self.start / time_base)

    def moved(self, packet) -> object | None:
        """``packet`` (sound or subtitles) moved to the output's timeline, or None when
        it falls outside. A sound packet is in when it starts in the window; a cue
        when it is shown at some time in it, cut to the window (an mp4's empty cue
        that fills the time to the next would otherwise lengthen the file past it)."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None or packet.time_base is None:
            return None
        begins = stamp * packet.time_base
        if self.past(begins):
            return None
        shift = self.ticks(packet.time_base)
        if begins < self.start:
            ends = (stamp + (packet.duration or 0)) * packet.time_base
            if packet.stream.type != "subtitle" or ends <= self.start:
                return None
            cut = math.ceil(self.start / packet.time_base) - stamp
            packet.duration -= cut
            packet.pts = None if packet.pts is None else packet.pts + cut
            packet.dts = None if packet.dts is None else packet.dts + cut
        if packet.stream.type == "subtitle" and packet.duration and self.end is not None:
            stamp = packet.pts if packet.pts is not None else packet.dts
            packet.duration = min(packet.duration, math.ceil(self.end / packet.time_base) - stamp)
        packet.pts = None if packet.pts is None else packet.pts - shift
        packet.dts = None if packet.dts is None else packet.dts - shift
        return packet

    def chapters(self, chapters: list[dict]) -> list[dict]:
        """The chapters that overlap the window, cut to it and moved with it."""
        kept = []
        for chapter in chapters:
            base = Fraction(chapter["time_base"])
            start, end = chapter["start"] * base, chapter["end"] * base
            if end <= self.start or self.past(start):
                continue
            start = max(start, self.start) - self.start
            end = (end if self.end is None else min(end, self.end)) - self.start
            kept.append({**chapter, "start": math.floor(start / base), "end": math.ceil(end / base)})
        return kept
