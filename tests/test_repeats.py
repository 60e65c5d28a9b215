"""Frames that repeat the one before them are upscaled once: the outputs in order,
the upscaler spared, the video the same as without; errors and closing pass
through. Real model on the CPU for the video."""
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from media import make_clip
from ncnn_sr.engine import Upscaler
from ncnn_sr.errors import InputError, SettingError
from ncnn_sr.lanes import Lane, ordered_map
from ncnn_sr.repeats import Repeats
from ncnn_sr.video import upscale_video
from test_video import NCNN_SR, X2, run, stored_frames


def frame(value, shape=(4, 6, 3), dtype=np.uint8):
    return np.full(shape, value, dtype)


def test_repeats_get_their_predecessors_output_and_only_new_frames_are_upscaled():
    seen = []

    def upscale(frames):
        for f in frames:
            seen.append(int(f[0, 0, 0]))
            yield f * 2

    frames = [frame(1), frame(1), frame(2), frame(2), frame(2), frame(3), frame(1), frame(1, (4, 7, 3)),
              frame(1, (4, 7, 3), np.uint16)]
    repeats = Repeats(upscale)
    outputs = list(repeats(frames))
    assert seen == [1, 2, 3, 1, 1, 1]  # a new size or dtype is no repeat, though its values are
    assert [(int(o[0, 0, 0]), o.shape, o.dtype) for o in outputs] == [(2 * int(f[0, 0, 0]), f.shape, f.dtype)
                                                                      for f in frames]
    assert repeats.count == 3


def test_no_frames_and_one_frame():
    assert list(Repeats(lambda fs: (f for f in fs))([])) == []
    assert len(list(Repeats(lambda fs: (f for f in fs))([frame(5)]))) == 1


def test_a_function_that_gives_a_list_is_taken_and_what_is_no_function_or_gives_no_frames_refused():
    # found by a check of the library's faults: a list of outputs, which upscale_video
    # takes from its frames function, was a bare TypeError ("'list' object is not an
    # iterator") through Repeats, as None was; Repeats(5) failed only once a video was open
    frames = [frame(1), frame(1), frame(2)]
    repeats = Repeats(lambda fs: [f * 2 for f in fs])
    assert [int(o[0, 0, 0]) for o in repeats(frames)] == [2, 2, 4] and repeats.count == 1
    with pytest.raises(SettingError) as refused:
        Repeats(5)
    assert str(refused.value) == "Repeats needs a function of the frames, got 5"
    with pytest.raises(InputError) as refused:
        list(Repeats(lambda fs: None)(frames))
    assert str(refused.value) == "Repeats' function gave None, not the outputs: an iterable of them is wanted"


def test_an_upscaler_that_fails_fails_the_run_and_is_closed_when_the_run_is():
    closed = threading.Event()

    def upscale(frames):
        try:
            for i, f in enumerate(frames):
                if i == 2:
                    raise ValueError("broken")
                yield f
        finally:
            closed.set()

    with pytest.raises(ValueError, match="broken"):
        list(Repeats(upscale)([frame(1), frame(2), frame(2), frame(3), frame(4)]))
    closed.clear()
    outputs = Repeats(upscale)([frame(1), frame(2)])
    next(outputs)
    outputs.close()
    assert closed.is_set()


def test_a_video_with_held_frames_comes_out_as_it_would_without_and_upscales_each_picture_once(tmp_path):
    # Flat colours code exactly: each is decoded to the same pixels every time it is held.
    colours = [(200, 30, 30)] * 3 + [(30, 200, 30)] * 2 + [(30, 30, 200)] + [(200, 30, 30)] * 2
    clip = make_clip(tmp_path / "in.mp4", frames=8, rate=Fraction(24), audio=None, colours=colours)
    stored = stored_frames(clip)
    held = sum(np.array_equal(a, b) for a, b in zip(stored, stored[1:]))
    assert held >= 4
    upscaled = []
    with Upscaler("realesr-animevideov3-x2", device=-1, threads=1) as up:
        lanes = [Lane(up, workers=2)]

        def work(u, f):
            upscaled.append(f)
            return u.upscale(f)

        def mapped(frames):
            return ordered_map(lanes, frames, work)

        repeats = Repeats(mapped)
        assert upscale_video(clip, tmp_path / "once.mkv", repeats) == 8
        assert repeats.count == held and len(upscaled) == 8 - held
        upscale_video(clip, tmp_path / "every.mkv", mapped)
    assert all(np.array_equal(a, b) for a, b in zip(stored_frames(tmp_path / "once.mkv"),
                                                   stored_frames(tmp_path / "every.mkv")))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert f"; {held} repeated the frame before, upscaled once" in proc.stderr
