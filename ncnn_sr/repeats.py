"""Video frames that repeat the one before them, upscaled once.

Animation is drawn on twos and threes (a drawing held for two or three frames), and
slideshows, screen recordings and still scenes hold a picture for many: a codec
codes such a frame as "same as before", and it decodes to the very same pixels. The
network would give the very same output for it again, so that output is handed out
once more instead; only frames equal to their predecessor, pixel for pixel, count,
so the video comes out exactly as it would without this.
"""
from __future__ import annotations

import collections
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import InputError, SettingError, describe


class Repeats:
    """``upscale`` (a function from an iterable of frames to an iterable of their
    outputs, in order) run over ``frames`` less their repeats; ``count`` says how many
    frames were repeats once the outputs have all been taken."""

    def __init__(self, upscale: Callable[[Iterable[np.ndarray]], Iterable[np.ndarray]]):
        if not callable(upscale):  # else a bare TypeError once a video was open
            raise SettingError(f"Repeats needs a function of the frames, got {describe(upscale)}")
        self.upscale = upscale
        self.count = 0

    def __call__(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        # One flag a frame, True for a repeat: filled by whoever pulls the frames (a
        # feeder thread, ahead of this generator), read here in the frames' order.
        # Appends and pops of a deque are atomic.
        repeats: collections.deque = collections.deque()

        def unrepeated() -> Iterator[np.ndarray]:
            before = None
            for frame in frames:
                repeat = before is not None and frame.shape == before.shape and frame.dtype == before.dtype \
                    and np.array_equal(frame, before)
                repeats.append(repeat)
                before = frame
                if not repeat:
                    yield frame

        outputs = self.upscale(unrepeated())
        if not isinstance(outputs, Iterable):
            raise InputError(f"Repeats' function gave {describe(outputs)}, not the outputs: an iterable of them is wanted")
        # iter(): a list, as upscale_video takes from its frames function, was no iterator for next()
        return self._in_order(iter(outputs), repeats)

    def _in_order(self, outputs: Iterator[np.ndarray], repeats: collections.deque) -> Iterator[np.ndarray]:
        last = None
        taken: collections.deque = collections.deque()  # outputs pulled before their flags came
        try:
            while True:
                if not repeats:
                    try:
                        taken.append(next(outputs))
                    except StopIteration:
                        if not repeats:
                            return
                    continue
                if repeats.popleft():
                    self.count += 1
                    yield last
                else:
                    last = taken.popleft() if taken else next(outputs)
                    yield last
        except KeyboardInterrupt:
            raise  # not closed: closing waits for the tiles in progress, and Ctrl-C does not
        except BaseException:
            close = getattr(outputs, "close", None)
            if close is not None:
                close()  # its threads end before the caller frees what they use
            raise
