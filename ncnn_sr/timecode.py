"""SMPTE timecodes ("HH:MM:SS:FF", drop-frame "HH:MM:SS;FF") carried to another frame
rate, for a video that ``--fps`` re-times: the label counts frames, so the same
instant has another label at another rate. Pure functions; knows nothing of files.
"""
from __future__ import annotations

import re
from fractions import Fraction

_LABEL = re.compile(r"^(\d+):(\d\d):(\d\d)([:;.,])(\d+)$")


def _base(rate: Fraction) -> int:
    """Frames per timecode second: the rate rounded (30 for 30000/1001)."""
    return max(1, round(rate))


def _drops(rate: Fraction) -> int:
    """Labels skipped at each minute but every tenth: drop-frame timecode exists for
    the NTSC rates, 30000/1001 and its multiples."""
    return 2 * _base(rate) // 30 if rate.denominator == 1001 and _base(rate) % 30 == 0 else 0


def to_frames(label: str, rate: Fraction) -> tuple[int, bool] | None:
    """The frame count ``label`` stands for at ``rate``, and whether it is
    drop-frame; None when it is not a timecode this module reads."""
    found = _LABEL.match(label.strip())
    if found is None:
        return None
    h, m, s, mark, f = found.groups()
    h, m, s, f = int(h), int(m), int(s), int(f)
    base = _base(rate)
    drop = mark in ";," and _drops(rate) > 0
    if m > 59 or s > 59 or f >= base:
        return None
    if drop and s == 0 and f < _drops(rate) and m % 10:
        return None  # a label drop-frame skips: 00:01:00;00 never shows
    frames = (h * 3600 + m * 60 + s) * base + f
    if drop:
        minutes = 60 * h + m
        frames -= _drops(rate) * (minutes - minutes // 10)
    return frames, drop


def to_label(frames: int, rate: Fraction, drop: bool) -> str:
    """The timecode of frame ``frames`` at ``rate``; drop-frame where asked and the
    rate has it."""
    base, skipped = _base(rate), _drops(rate) if drop else 0
    if skipped:
        per_ten = base * 600 - skipped * 9
        per_minute = base * 60 - skipped
        tens, rest = divmod(frames, per_ten)
        frames += skipped * 9 * tens + (skipped * ((rest - skipped) // per_minute) if rest > skipped else 0)
    seconds, f = divmod(frames, base)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{h:02d}:{m:02d}:{s:02d}{';' if skipped else ':'}{f:02d}"


def retimed(label: str, source: Fraction, target: Fraction, later: Fraction = Fraction(0)) -> str | None:
    """``label``, a timecode at ``source`` frames per second, for the same instant at
    ``target`` (rounded to the nearest frame), or for ``later`` seconds after it;
    None when it cannot be read, or ``target`` is under one frame a second, where
    timecode has no frames to count."""
    read = to_frames(label, source)
    if read is None or target < 1:
        return None
    frames, drop = read
    return to_label(round((frames + later * source) * target / source), target, drop)
