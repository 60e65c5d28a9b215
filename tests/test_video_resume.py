"""A video run stopped midway goes on from where it got to when run again
(video_pieces): the finished file is the one a single run makes."""
from __future__ import annotations

import ctypes
import errno
import io
import logging
import os
import re
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media import make_clip
from ncnn_sr import InputError
from ncnn_sr.video import EncodeOptions, upscale_video

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no flock: no work is kept")

SETTINGS = {"model": "realesr-animevideov3-x2"}
X2 = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]


@pytest.fixture
def short_pieces(monkeypatch):
    monkeypatch.setenv("NCNN_SR_PIECE_SECONDS", "0.5")  # 6 frames a piece at 12 fps


@pytest.fixture
def filled_heap():
    """The C heap filled with one byte as memory is handed out and given back
    (glibc's M_PERTURB) while the test runs. libx264 reads memory it allocated and
    never wrote (valgrind: uninitialised values in x264_encoder_encode), so one
    process encoding the same frames twice could code a piece otherwise: 24 of 400
    runs of a 36-frame clip differed from the first in one piece, by up to 13
    levels, with the frames handed to it the same; with the heap filled, 0 of 300."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        pytest.skip("no glibc mallopt: libx264's output depends on what its heap held")
    assert mallopt(_M_PERTURB, 0xA5) == 1
    yield
    mallopt(_M_PERTURB, 0)


_M_PERTURB = -6


def upscaled(up, stop_at: int | None = None, error: BaseException = KeyboardInterrupt()):
    """A frames function through ``up``; a Ctrl-C (or ``error``) at frame ``stop_at``."""
    def frames(decoded):
        for index, image in enumerate(decoded):
            if index == stop_at:
                raise error
            yield up.upscale(image)
    return frames


def contents(path: Path) -> dict:
    """What a player sees of ``path``: its frames' times and pixels, its sound packets, its length."""
    with av.open(str(path)) as c:
        frames = [(f.pts, f.to_ndarray(format="rgb24").tobytes()) for f in c.decode(video=0)]
        length = c.duration
    with av.open(str(path)) as c:
        sound = [(p.pts, p.duration) for p in c.demux(audio=0) if p.size]
    return {"frames": frames, "sound": sound, "length": length}


def keyframes(path: Path) -> list:
    """The times of ``path``'s video keyframes: where each piece's encoder started."""
    with av.open(str(path)) as c:
        return [p.pts for p in c.demux(video=0) if p.size and p.is_keyframe]


def differences(got: dict, wanted: dict) -> str:
    """Where two ``contents`` part, in a line: which frames (their times, how many
    bytes and by how much), the sound, the length: a full dict diff of frame bytes
    said nothing readable."""
    said = []
    if len(got["frames"]) != len(wanted["frames"]):
        said.append(f"{len(got['frames'])} frames, not {len(wanted['frames'])}")
    for i, ((pts, data), (w_pts, w_data)) in enumerate(zip(got["frames"], wanted["frames"])):
        if pts != w_pts or data != w_data:
            a, b = np.frombuffer(data, np.uint8).astype(int), np.frombuffer(w_data, np.uint8).astype(int)
            off = np.abs(a - b) if a.shape == b.shape else None
            said.append(f"frame {i} (pts {pts} / {w_pts}): " + (
                f"{int((off > 0).sum())} bytes off, by up to {int(off.max())}" if off is not None else "sizes differ"))
    for key in ("sound", "length"):
        if got[key] != wanted[key]:
            said.append(f"{key} differs")
    return "; ".join(said)


@pytest.mark.parametrize("suffix, codec", [(".mkv", "ffv1"), (".mp4", "libx264")])
def test_a_video_stopped_midway_goes_on_into_the_video_one_run_makes(suffix, codec, tmp_path, cpu_upscalers,
                                                                    short_pieces, caplog, request):
    if codec == "libx264":
        request.getfixturevalue("filled_heap")  # see filled_heap: else 1 CI run in 7 failed
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    options = EncodeOptions(codec=codec)
    upscale_video(clip, tmp_path / f"whole{suffix}", upscaled(up), options, settings=SETTINGS)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, out, upscaled(up, stop_at=17), options, settings=SETTINGS)
    assert not out.exists()
    work = tmp_path / f".out{suffix}.ncnn-sr-pieces"
    assert sorted(p.name for p in work.iterdir() if p.suffix == ".bin") == ["piece-00000.bin", "piece-00001.bin"]
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, upscaled(up), options, settings=SETTINGS)
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: going on from 00:00:01 (2 of 6 pieces kept from a stopped run)"]
    whole, resumed = contents(tmp_path / f"whole{suffix}"), contents(out)
    assert len(resumed["frames"]) == 72 // 2
    # The keyframes say whether each piece's encoder began afresh.
    assert resumed == whole, (f"{differences(resumed, whole)}; keyframes at {keyframes(out)}, "
                              f"one run's at {keyframes(tmp_path / f'whole{suffix}')}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", f"out{suffix}", f"whole{suffix}"]


def test_a_rerun_with_another_model_starts_over(tmp_path, cpu_upscalers, short_pieces, caplog):
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, out, upscaled(up, stop_at=13), settings={"model": "realesr-animevideov3-x3"})
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, out, upscaled(up), settings=SETTINGS) == 24
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: starting over: the kept work (.out.mkv.ncnn-sr-pieces) was made with settings['model'] = "
        "'realesr-animevideov3-x3', not 'realesr-animevideov3-x2'"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]


def test_a_rerun_with_another_crf_names_it(tmp_path, cpu_upscalers, short_pieces, caplog):
    # found by an audit: "made with another video options", ungrammatical, named none.
    # EncodeOptions' field, to upscale_video's caller, who was told of --crf.
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, out, upscaled(up, stop_at=13), EncodeOptions(crf=18), settings=SETTINGS)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, out, upscaled(up), EncodeOptions(crf=20), settings=SETTINGS) == 24
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: starting over: the kept work (.out.mp4.ncnn-sr-pieces) was made with crf=18, not 20"]


@pytest.mark.parametrize("key, old, new, words", [
    ("options", {"crf": "None"}, {"crf": "20"}, "with the default --crf, not --crf 20"),
    ("options", {"crf": "20"}, {"crf": "None"}, "with --crf 20, not the default"),
    ("options", {"fps": "30000/1001"}, {"fps": "25"}, "with --fps 29.97, not 25"),
    ("options", {"start": "7/2"}, {"start": "0"}, "with --start 3.5, not 0"),
    ("options", {"skip_damaged": "False"}, {"skip_damaged": "True"}, "without --skip-damaged, not with it"),
    ("options", {"field_rate": "True"}, {"field_rate": "False"}, "with --field-rate, not without it"),
    ("options", {"deinterlace": "off"}, {"deinterlace": "auto"}, "with --deinterlace off, not auto"),
    ("options", {"pix_fmt": "yuv420p"}, {"pix_fmt": "yuv444p"}, "with --pix-fmt yuv420p, not yuv444p"),
    ("settings", {"model": "a"}, {"model": "b"}, "with -n a, not b"),
    ("settings", {"scale": "2", "tta": "False"}, {"scale": "2", "tta": "True"}, "without -x, not with it"),
    ("settings", {"exact": "True"}, {"exact": "None"}, "with --exact, not the default"),
    ("settings", {"weights": "1 2"}, {"weights": "1 3"}, "with other model files (its .param or .bin changed since)"),
    ("options", "EncodeOptions(crf=18)", {"crf": "18"}, "with other video options"),  # an older record's
    ("rate", "24", "25", "at another frame rate"),
    ("source", {"size": 1}, {"size": 2}, "from another source file (changed since)"),
])
def test_what_made_the_kept_work_is_said_in_the_commands_words(key, old, new, words):
    from ncnn_sr.errors import FlagNames
    from ncnn_sr.video_pieces import made_with

    assert made_with(key, old, new, FlagNames()) == words


@pytest.mark.parametrize("key, old, new, words", [
    ("options", {"crf": "None"}, {"crf": "20"}, "with crf=None, not 20"),
    ("options", {"fps": "30000/1001"}, {"fps": "25"}, "with fps=30000/1001, not 25"),
    ("options", {"skip_damaged": "False"}, {"skip_damaged": "True"}, "with skip_damaged=False, not True"),
    ("options", {"keep_width": "64"}, {"keep_width": "None"}, "with keep_width=64, not None"),
    ("settings", {"model": "a"}, {"model": "b"}, "with settings['model'] = 'a', not 'b'"),
    ("settings", {"exact": "True"}, {"exact": "None"}, "with settings['exact'] = 'True', not 'None'"),
    # The caller's own keys, which no flag sets, are named too.
    ("settings", {"denoise": "0.5"}, {}, "with settings['denoise'] = '0.5', not without it"),
    ("settings", {"weights": "1 2"}, {"weights": "1 3"}, "with other model files (its .param or .bin changed since)"),
    ("rate", "24", "25", "at another frame rate"),
])
def test_what_made_the_kept_work_is_said_in_the_library_s_words(key, old, new, words):
    # upscale_video's caller gave EncodeOptions' fields and its settings' keys, not
    # the command's flags it was told of ("with --crf 18, not 20").
    from ncnn_sr.errors import FlagNames
    from ncnn_sr.video_pieces import made_with

    assert made_with(key, old, new, FlagNames(library=True)) == words


def test_a_command_rerun_with_another_crf_names_the_flag(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=72, width=64, height=48, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mp4"
    stopped_after_pieces(clip, out, signal.SIGKILL, [*X2, "--crf", "18"])
    proc = command(clip, out, [*X2, "--crf", "20"])
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert f"ncnn-sr: warning: {out}: starting over: the kept work (.out.mp4.ncnn-sr-pieces) was made with --crf " \
           "18, not 20\n" in err, err


def test_a_rerun_on_a_source_changed_since_starts_over(tmp_path, cpu_upscalers, short_pieces, caplog):
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, out, upscaled(up, stop_at=13), settings=SETTINGS)
    make_clip(clip, frames=24, rate=Fraction(12), audio=None, colours=[(200, 10, 10)])  # another video, one name
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, out, upscaled(up), settings=SETTINGS) == 24
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: starting over: the kept work (.out.mkv.ncnn-sr-pieces) was made from another source file "
        "(changed since)"]
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(int(first[..., 0].mean()) - 200) < 8  # the new video's frames, none of the old


@pytest.mark.parametrize("seconds", ["inf", "nan"])
def test_a_piece_length_of_no_number_of_seconds_is_the_default_one(seconds, tmp_path, cpu_upscalers, monkeypatch):
    # "inf" stopped each video before its first frame with a traceback (OverflowError:
    # cannot convert float infinity to integer).
    monkeypatch.setenv("NCNN_SR_PIECE_SECONDS", seconds)
    clip = make_clip(tmp_path / "in.mp4", frames=3, rate=Fraction(12), audio=None)
    assert upscale_video(clip, tmp_path / "out.mkv", upscaled(cpu_upscalers("realesr-animevideov3-x2")),
                         settings=SETTINGS) == 3


def test_a_run_that_fails_midway_leaves_no_work_behind(tmp_path, cpu_upscalers, short_pieces):
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)

    def failing(decoded):
        for index, image in enumerate(decoded):
            if index == 15:
                raise InputError("the model failed")
            yield up.upscale(image)

    with pytest.raises(InputError):
        upscale_video(clip, tmp_path / "out.mp4", failing, settings=SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("room", [0, 200])
def test_a_disk_too_full_for_the_pieces_still_gets_the_video(room, tmp_path, cpu_upscalers, short_pieces,
                                                            monkeypatch, caplog):
    # The pieces double what a run writes: a disk with room for the video alone failed
    # the run ('cannot write out.mp4: No space left on device') that, without them,
    # would have finished. Now they are given up, and their room with them. Giving up
    # closed the piece, whose buffer flushed the refused bytes again: that refusal
    # ended the run ("ncnn-sr: error: None: No space left on device").
    from ncnn_sr import video_pieces
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")  # pieced or not, the same pixels
    upscale_video(clip, tmp_path / "whole.mkv", upscaled(up), lossless, settings=SETTINGS)

    class Full(io.FileIO):  # a disk that takes ``room`` bytes of a piece, then no more
        def write(self, data):
            if self.tell() + len(data) > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(data)

    def piece_open(path, mode="r", *args, **kwargs):  # buffered, as open's "wb" is
        if str(path).endswith(".tmp") and mode == "wb":
            return io.BufferedWriter(Full(path, "wb"))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(video_pieces, "open", piece_open, raising=False)
    out = tmp_path / "out.mkv"
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: no room to keep the work beside it (No space left on device): it is still written, but a stop "
        "from here loses the run"]
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def test_pieces_given_up_where_the_video_would_not_fit_in_their_room_either_are_kept(tmp_path, cpu_upscalers,
                                                                                     short_pieces, monkeypatch, caplog):
    # The pieces' write refused gave them all up, the kept ones with them, for the video
    # to be written in their room: where that room is clearly too small for the rest of
    # the video (by the pieces' rate so far), the video fails later all the same, and
    # hours of work were lost with nothing kept. They are kept then, and the run stops
    # at once with the full disk's error, for a rerun once room is made.
    from ncnn_sr import video_pieces
    from ncnn_sr.errors import NoRoom
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    upscale_video(clip, tmp_path / "whole.mkv", upscaled(up), lossless, settings=SETTINGS)

    class Full(io.FileIO):  # the disk full as the second piece is written
        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def piece_open(path, mode="r", *args, **kwargs):
        if str(path).endswith("piece-00001.tmp") and mode == "wb":
            return io.BufferedWriter(Full(path, "wb"))
        return open(path, mode, *args, **kwargs)

    class Usage:
        free = 0
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        m.setattr(video_pieces, "open", piece_open, raising=False)
        m.setattr("shutil.disk_usage", lambda path: Usage)
        with pytest.raises(NoRoom, match="No space left on device"):
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.ncnn-sr-pieces", "in.mp4", "whole.mkv"]
    kept = sorted(p.name for p in (tmp_path / ".out.mkv.ncnn-sr-pieces").iterdir() if p.name.startswith("piece-"))
    assert kept == ["piece-00000.bin"]
    made = []
    upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS, progress=made.append)
    assert len(made) == 36 - 6
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)


def test_a_run_without_settings_keeps_no_work(tmp_path, short_pieces):
    # A library caller's frames function is not known to make the same frames again.
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)

    def stopping(decoded):
        for index, image in enumerate(decoded):
            if index == 15:
                raise KeyboardInterrupt
            yield image

    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, tmp_path / "out.mp4", stopping)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def command(clip: Path, out: Path, flags: list[str] = X2) -> subprocess.Popen:
    env = {**os.environ, "NCNN_SR_PIECE_SECONDS": "0.5"}
    return subprocess.Popen([sys.executable, "-m", "ncnn_sr", "video", "-i", str(clip), "-o", str(out), *flags],
                            stderr=subprocess.PIPE, text=True, env=env)


def stopped_after_pieces(clip: Path, out: Path, how: int, flags: list[str] = X2) -> str:
    """Run the command on ``clip``, stopped by the signal ``how`` once two pieces are whole; its stderr."""
    proc = command(clip, out, flags)
    work = out.parent / f".{out.name}.ncnn-sr-pieces"
    deadline = time.monotonic() + 120
    while not (work / "piece-00001.bin").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(how)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == (130 if how == signal.SIGINT else -how), err
    assert not out.exists()
    return err


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_the_same_command_goes_on_after_a_ctrl_c_or_a_kill(how, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=72, width=64, height=48, rate=Fraction(12))
    whole = tmp_path / "whole.mp4"
    proc = command(clip, whole)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    out = tmp_path / "out.mp4"
    err = stopped_after_pieces(clip, out, how)
    if how == signal.SIGINT:
        assert err.strip().splitlines()[-1].startswith(f"ncnn-sr: interrupted: {out} is not written yet; the work "
                                                       "up to 00:00:"), err
        assert err.strip().endswith("is kept in .out.mp4.ncnn-sr-pieces: run the same command again to go on"), err
    proc = command(clip, out)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert "going on from 00:00:" in err and "pieces kept from a stopped run" in err
    # Its rate is of the frames it upscaled: the kept ones, copied in a moment, made it many times too high.
    kept, made = map(int, re.search(r"wrote .*: 72 frames in [\d.]+ s \((\d+) kept from a stopped run, (\d+) "
                                    r"upscaled, [\d.]+ fps[;)]", err).groups())
    assert kept >= 12 and kept % 6 == 0 and kept + made == 72, err
    resumed, one_run = contents(out), contents(whole)
    assert [t for t, _ in resumed["frames"]] == [t for t, _ in one_run["frames"]]
    assert (resumed["sound"], resumed["length"]) == (one_run["sound"], one_run["length"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "whole.mp4"]


def test_a_rerun_with_another_model_of_the_same_name_starts_over(tmp_path):
    # The record named the model alone: -m another folder, or weights retrained under
    # the same name, went on from frames of the old weights, joined to the new ones'.
    from ncnn_sr.models import resolve_model
    for folder, name in (("a", "realesrgan-x4plus"), ("b", "realesrgan-x4plus-anime")):
        spec = resolve_model(name)
        (tmp_path / folder).mkdir()
        for path, suffix in ((spec.param_path, ".param"), (spec.bin_path, ".bin")):
            (tmp_path / folder / f"m{suffix}").write_bytes(path.read_bytes())
    clip = make_clip(tmp_path / "in.mp4", frames=36, width=16, height=12, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mkv"
    flags = ["-n", "m", "-s", "4", "-g", "-1"]
    stopped_after_pieces(clip, out, signal.SIGKILL, [*flags, "-m", str(tmp_path / "a")])
    proc = command(clip, out, [*flags, "-m", str(tmp_path / "b")])
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert "starting over: the kept work (.out.mkv.ncnn-sr-pieces) was made with other model files" in err, err
    assert "going on from" not in err, err


@pytest.mark.parametrize("failure", ["DeviceError", "UpscalingFailed", "MemoryError"])
def test_a_run_whose_device_or_memory_fails_midway_keeps_its_whole_pieces_for_a_rerun(failure, tmp_path,
                                                                                      cpu_upscalers, short_pieces):
    # Any error but a stop removed the work: a GPU lost 50 minutes into a video lost them
    # all, though a rerun on the CPU, or with smaller tiles, makes the same frames but
    # for rounding. As the engine (DeviceError) or ordered_map (UpscalingFailed) raise them.
    # The host out of memory (numpy or PyAV unable to allocate a frame) lost them too,
    # though a rerun with smaller tiles or fewer workers needs less.
    from ncnn_sr import DeviceError
    from ncnn_sr.lanes import UpscalingFailed
    up = cpu_upscalers("realesr-animevideov3-x2")
    lost = RuntimeError("vkQueueSubmit failed: VK_ERROR_DEVICE_LOST")
    error = {"DeviceError": lambda: DeviceError("the CPU ran out of memory even with 32px tiles"),
             "UpscalingFailed": lambda: UpscalingFailed([up], lost, every_device=False),
             "MemoryError": lambda: MemoryError("Unable to allocate 3.00 MiB for an array")}[failure]()
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    upscale_video(clip, tmp_path / "whole.mkv", upscaled(up), lossless, settings=SETTINGS)
    out = tmp_path / "out.mkv"
    with pytest.raises(type(error)):
        upscale_video(clip, out, upscaled(up, stop_at=17, error=error), lossless, settings=SETTINGS)
    assert not out.exists()
    work = tmp_path / ".out.mkv.ncnn-sr-pieces"
    assert sorted(p.name for p in work.iterdir() if p.suffix == ".bin") == ["piece-00000.bin", "piece-00001.bin"]
    upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def upscaling_fails_after(monkeypatch, calls: int, kind: type, message: str) -> None:
    """Every Upscaler raising ``kind(message)`` after ``calls`` pictures (a new one each
    time: the frames' threads may raise at once)."""
    from ncnn_sr import engine
    real, made = engine.Upscaler.upscale, []

    def upscale(self, image, *args, **kwargs):
        made.append(None)
        if len(made) > calls:
            raise kind(message)
        return real(self, image, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "upscale", upscale)


def device_lost_after(monkeypatch, calls: int) -> None:
    """Every Upscaler's device lost after ``calls`` pictures, as a Vulkan error from ncnn."""
    upscaling_fails_after(monkeypatch, calls, RuntimeError, "vkQueueSubmit failed: VK_ERROR_DEVICE_LOST")


LOSSLESS = ["--codec", "ffv1"]


def clip_and_one_run(tmp_path, in_process) -> Path:
    """A clip of 36 frames (4 pieces), and the video one run of the command makes of
    it, uninterrupted: whole.mkv, lossless."""
    clip = make_clip(tmp_path / "in.mp4", frames=36, width=32, height=24, rate=Fraction(12))
    status, said = in_process("video", "-i", clip, "-o", tmp_path / "whole.mkv", *X2, *LOSSLESS)
    assert status == 0, said
    return clip


def test_the_command_says_what_a_failed_device_left_and_a_rerun_with_smaller_tiles_goes_on(
        tmp_path, in_process, monkeypatch, short_pieces):
    clip, lossless = clip_and_one_run(tmp_path, in_process), LOSSLESS
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        device_lost_after(m, 20)
        status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless)
    assert status == 1, said
    assert said.splitlines()[-2:] == [
        f"ncnn-sr: error: {clip}: upscaling failed on CPU: RuntimeError('vkQueueSubmit failed: "
        "VK_ERROR_DEVICE_LOST')",
        f"ncnn-sr: {out} is not written yet; the work up to 00:00:01 is kept in .out.mkv.ncnn-sr-pieces: run the "
        "same command again to go on"], said
    assert not out.exists()
    status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless, "-t", "32")
    assert status == 0, said
    # 2 or 3: the pieces the encoder closed before the failure came out, frames in flight
    assert re.search(rf"{re.escape(str(out))}: going on from 00:00:01 \([23] of 6 pieces kept from a stopped run\)",
                     said), said
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def test_after_a_gpu_fails_the_command_offers_the_cpu_where_the_rerun_goes_on(tmp_path, in_process, monkeypatch,
                                                                             short_pieces, gpu):
    # The GPU's frames (fp16 by default) are not the CPU's to the bit: the joined video
    # is within rounding of a run on the CPU alone, as a run on both (-g 0,-1) is.
    from conftest import psnr
    clip = make_clip(tmp_path / "in.mp4", frames=24, width=16, height=12, rate=Fraction(12))
    out = tmp_path / "out.mkv"
    flags = ["-n", "realesr-animevideov3", "-s", "2", "--codec", "ffv1"]
    status, said = in_process("video", "-i", clip, "-o", tmp_path / "cpu.mkv", *flags, "-g", "-1")
    assert status == 0, said
    with monkeypatch.context() as m:
        device_lost_after(m, 14)
        status, said = in_process("video", "-i", clip, "-o", out, *flags, "-g", gpu)
    assert status == 1, said
    assert said.splitlines()[-1] == (
        f"ncnn-sr: {out} is not written yet; the work up to 00:00:01 is kept in .out.mkv.ncnn-sr-pieces: run the "
        "same command again, or with -g -1 (the CPU) or a smaller -t, to go on"), said
    status, said = in_process("video", "-i", clip, "-o", out, *flags, "-g", "-1")
    assert status == 0, said
    # 2 or 3 pieces: the 15th upscale, where the device goes, is a frame of the third
    # piece or of the fourth as the two proc threads take them (1 CI run in about 30);
    # the time said is in whole seconds (1.5 s reads 00:00:01) either way.
    assert re.search(rf"{re.escape(str(out))}: going on from 00:00:01 \([23] of 4 pieces kept from a stopped run\)",
                     said), said
    joined, cpu = contents(out), contents(tmp_path / "cpu.mkv")
    assert [t for t, _ in joined["frames"]] == [t for t, _ in cpu["frames"]]
    assert (joined["sound"], joined["length"]) == (cpu["sound"], cpu["length"])
    assert min(psnr(*(np.frombuffer(f, np.uint8) for f in pair))
               for pair in zip((f for _, f in joined["frames"]), (f for _, f in cpu["frames"]))) > 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cpu.mkv", "in.mp4", "out.mkv"]


def test_a_folder_of_videos_says_what_a_failed_device_left_of_the_video_it_failed(tmp_path, in_process, monkeypatch,
                                                                                 short_pieces):
    (tmp_path / "in").mkdir()
    clip = make_clip(tmp_path / "in" / "a.mp4", frames=24, width=16, height=12, rate=Fraction(12), audio=None)
    with monkeypatch.context() as m:
        device_lost_after(m, 14)
        status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", *X2)
    assert status == 1, said
    lines = said.splitlines()
    assert lines[-4:-1] == [
        f"ncnn-sr: error: {clip}: upscaling failed on CPU: RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')",
        f"ncnn-sr: {tmp_path / 'out' / 'a.mp4'} is not written yet; the work up to 00:00:01 is kept in "
        ".a.mp4.ncnn-sr-pieces: run the same command again to go on",
        "ncnn-sr: failed: a.mp4"], said
    assert lines[-1].startswith("ncnn-sr: 1 video: 0 upscaled, 0 skipped, 1 failed in "), said
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", *X2)
    assert status == 0, said
    assert "going on from 00:00:01 (2 of 4 pieces kept from a stopped run)" in said, said
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4"]


def cpu_memory_short_after(monkeypatch, calls: int) -> None:
    """ncnn out of memory on the CPU after ``calls`` windows, each failing run after:
    the engine's "the CPU ran out of memory even with 32px tiles"."""
    from ncnn_sr import network
    real, made = network.Network.run, []

    def run(self, image, keep=None):
        made.append(None)
        if len(made) > calls:
            raise network.NetFailure("injected out of memory")
        return real(self, image, keep)
    monkeypatch.setattr(network.Network, "run", run)


def test_a_video_whose_cpu_ran_out_of_memory_offers_fewer_workers_not_the_same_run(tmp_path, in_process,
                                                                                  monkeypatch, short_pieces):
    # It said "run the same command again to go on", which on the same host runs out at
    # the same place; its tiles are the smallest already (32 px), fewer frames in work
    # at once (-j 1:1:1) need less, as the host's own out-of-memory line says.
    clip = make_clip(tmp_path / "in.mp4", frames=24, width=16, height=12, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        cpu_memory_short_after(m, 13)
        status, said = in_process("video", "-i", clip, "-o", out, *X2, "--codec", "ffv1")
    assert status == 1, said
    assert said.splitlines()[-2:] == [
        "ncnn-sr: error: the CPU ran out of memory even with 32px tiles",
        f"ncnn-sr: {out} is not written yet; the work up to 00:00:01 is kept in .out.mkv.ncnn-sr-pieces: run the "
        "same command again, or with -j 1:1:1, to go on"], said
    status, said = in_process("video", "-i", clip, "-o", out, *X2, "--codec", "ffv1", "-j", "1:1:1")
    assert status == 0, said
    assert re.search(r"going on from 00:00:01 \([23] of 4 pieces kept from a stopped run\)", said), said


def memory_short_after(monkeypatch, calls: int) -> None:
    """Every Upscaler out of host memory after ``calls`` pictures, as numpy says it."""
    upscaling_fails_after(monkeypatch, calls, MemoryError,
                          "Unable to allocate 3.00 MiB for an array with shape (48, 64, 3) and data type float32")


OUT_OF_MEMORY = ("ncnn-sr: error: out of memory; {out} is not written yet; the work up to 00:00:01 is kept in "
                 "{work}: run the same command again, or with a smaller -t or -j 1:1:1, to go on")


def test_a_video_out_of_memory_says_in_one_line_what_is_kept_and_a_rerun_goes_on(tmp_path, in_process, monkeypatch,
                                                                                 short_pieces):
    # It said "ncnn-sr: error: out of memory", the work removed: hours of upscaling
    # lost to a frame the host could not allocate, which fewer frames in work at once
    # (-j) or smaller tiles (-t) would have had room for.
    clip, lossless = clip_and_one_run(tmp_path, in_process), LOSSLESS
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        memory_short_after(m, 20)
        status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless)
    assert status == 1, said
    assert said.splitlines()[-1] == OUT_OF_MEMORY.format(out=out, work=".out.mkv.ncnn-sr-pieces"), said
    assert "error" not in "\n".join(said.splitlines()[:-1]), said
    assert not out.exists()
    status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless, "-t", "32", "-j", "1:1:1")
    assert status == 0, said
    assert re.search(rf"{re.escape(str(out))}: going on from 00:00:01 \([23] of 6 pieces kept from a stopped run\)",
                     said), said
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def test_a_video_out_of_memory_for_what_its_words_name_says_them_with_what_is_kept(tmp_path, in_process, monkeypatch,
                                                                                   short_pieces):
    # Where pieces were kept the line said "out of memory" alone, whatever ran out:
    # the words of an OutOfMemoryFor (a thread that could not start, swscale or
    # FFmpeg's decoder short of memory), which entry's own line says, were lost.
    from ncnn_sr.errors import OutOfMemoryFor
    clip = make_clip(tmp_path / "in.mp4", frames=24, width=16, height=12, rate=Fraction(12), audio=None)
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        upscaling_fails_after(m, 14, OutOfMemoryFor, "cannot start a thread: no memory for its stack")
        status, said = in_process("video", "-i", clip, "-o", out, *X2)
    assert status == 1, said
    assert said.splitlines()[-1] == OUT_OF_MEMORY.format(out=out, work=".out.mkv.ncnn-sr-pieces").replace(
        "out of memory;", "out of memory: cannot start a thread: no memory for its stack;"), said


def test_a_folder_of_videos_out_of_memory_says_what_is_kept_of_the_video_it_stopped_at(tmp_path, in_process,
                                                                                      monkeypatch, short_pieces):
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=24, width=16, height=12, rate=Fraction(12), audio=None)
    with monkeypatch.context() as m:
        memory_short_after(m, 14)
        status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", *X2)
    assert status == 1, said
    assert said.splitlines()[-1] == OUT_OF_MEMORY.format(out=tmp_path / "out" / "a.mp4",
                                                          work=".a.mp4.ncnn-sr-pieces"), said
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", *X2)
    assert status == 0, said
    assert "going on from 00:00:01 (2 of 4 pieces kept from a stopped run)" in said, said
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4"]


def test_a_video_out_of_memory_with_no_work_kept_says_so_as_before(tmp_path, in_process, monkeypatch, short_pieces):
    # Nothing whole to go on from (the first piece not done): entry's own line.
    clip = make_clip(tmp_path / "in.mp4", frames=24, width=16, height=12, rate=Fraction(12), audio=None)
    with monkeypatch.context() as m:
        memory_short_after(m, 2)
        status, said = in_process("video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert status == 1
    assert "is kept in" not in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def decoding_short_of_memory_after(monkeypatch, packets: int) -> None:
    """FFmpeg out of memory as it decodes the video packet after the first
    ``packets``: PyAV's av.error.MemoryError (ENOMEM), as its decoder raises it."""
    from ncnn_sr import video_packets
    real, decoded = video_packets._demuxed, []

    class Short:
        def __init__(self, packet):
            self._real = packet

        def __getattr__(self, name):
            return getattr(self._real, name)

        def decode(self):
            decoded.append(None)
            if len(decoded) > packets:
                av.error.err_check(-errno.ENOMEM)
            return self._real.decode()

    def demuxed(container, *streams, **options):
        for packet in real(container, *streams, **options):
            yield Short(packet) if packet.stream.type == "video" else packet
    monkeypatch.setattr(video_packets, "_demuxed", demuxed)


def pieces_short_of_memory_after(monkeypatch, pieces: int) -> None:
    """The pieces' own files refused with ENOMEM (an OSError: the kernel out of
    memory for the write) once ``pieces`` are begun."""
    from ncnn_sr import video_pieces
    begun = []

    def opening(file, mode="r", *args, **kwargs):
        if mode == "wb" and str(file).endswith(".tmp"):
            begun.append(None)
            if len(begun) > pieces:
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
        return open(file, mode, *args, **kwargs)
    monkeypatch.setattr(video_pieces, "open", opening, raising=False)


@pytest.mark.parametrize("where", ["decoding", "muxing", "pieces"])
def test_ffmpeg_or_a_write_out_of_memory_keeps_the_whole_pieces_as_our_own_does(where, tmp_path, in_process,
                                                                              monkeypatch, short_pieces):
    # FFmpeg's own ENOMEM (av.error.MemoryError) as it decoded the input or muxed the
    # output said "cannot decode: Cannot allocate memory" (or "cannot encode: ..."),
    # the work removed; a write of the pieces refused with ENOMEM gave them up, and
    # the run went on keeping nothing. The host out of memory is the same whoever met
    # it: the whole pieces kept and said in one line, as for a frame numpy could not
    # allocate.
    clip, lossless = clip_and_one_run(tmp_path, in_process), LOSSLESS
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        {"decoding": lambda: decoding_short_of_memory_after(m, 16),
         "muxing": lambda: disk_full(m, 14, errno.ENOMEM),
         "pieces": lambda: pieces_short_of_memory_after(m, 2)}[where]()
        status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless)
    assert status == 1, said
    # FFmpeg's decoder names itself, with the room a cap leaves where one is set.
    named = (f": FFmpeg cannot decode {clip} (Cannot allocate memory)" if where == "decoding" else "") + ";"
    assert re.sub(r" with \d+ (MB|kB) left under ulimit -[vd];", ";", said.splitlines()[-1]) == \
        OUT_OF_MEMORY.format(out=out, work=".out.mkv.ncnn-sr-pieces").replace(";", named, 1), said
    assert "error" not in "\n".join(said.splitlines()[:-1]), said
    assert "no room" not in said, said
    assert not out.exists()
    status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless, "-t", "32", "-j", "1:1:1")
    assert status == 0, said
    assert re.search(rf"{re.escape(str(out))}: going on from 00:00:01 \(2 of 6 pieces kept from a stopped run\)",
                     said), said
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def said_as(error: BaseException, said: type = InputError) -> BaseException:
    """``error`` said in one line as ``said``, as video's wrappers say it (from None)."""
    try:
        try:
            raise error
        except BaseException:
            raise said("in.mp4: cannot decode: it") from None
    except said as e:
        return e


def test_out_of_memory_is_the_hosts_memory_whoever_met_it_and_nothing_else():
    from ncnn_sr.errors import out_of_memory
    try:
        av.error.err_check(-errno.ENOMEM)
    except av.error.FFmpegError as e:
        ffmpegs = e
    enomem = OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
    assert out_of_memory(MemoryError("Unable to allocate 3.00 MiB")) and out_of_memory(ffmpegs)
    assert out_of_memory(enomem) and out_of_memory(said_as(ffmpegs)) and out_of_memory(said_as(enomem))
    # A damaged file's size past any memory (a MemoryError behind the file's error),
    # a full disk, a broken input: not the host's memory.
    assert not out_of_memory(said_as(MemoryError()))
    assert not out_of_memory(said_as(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    assert not out_of_memory(InputError("in.mp4: cannot decode: Invalid data found when processing input"))


def test_upscale_video_raises_ffmpegs_out_of_memory_as_a_memory_error_and_keeps_the_pieces(tmp_path, cpu_upscalers,
                                                                                         short_pieces, monkeypatch):
    # The library's caller is told the host ran out of memory, as for numpy's, not
    # that the input cannot be decoded: the same source, once memory is free, decodes.
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        decoding_short_of_memory_after(m, 16)
        with pytest.raises(MemoryError, match=f"^FFmpeg cannot decode {re.escape(str(clip))} \\(Cannot allocate "
                                              "memory\\)"):
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    assert not out.exists()
    work = tmp_path / ".out.mkv.ncnn-sr-pieces"
    assert sorted(p.name for p in work.iterdir() if p.suffix == ".bin") == ["piece-00000.bin", "piece-00001.bin"]


# ``ncnn-sr video ARGS`` whose inputs' opening meets ENOMEM (``kind``: FFmpeg's, as
# PyAV raises it, or the system's), or (``path``) the look at an output's path does,
# each counted on stdout; with little memory free, where FFmpeg's ENOMEM is the host's
# (with more than FFmpeg allocates at once, it is a damaged file's).
_OPENED_OUT_OF_MEMORY = """
import errno, os, sys
import av
from ncnn_sr import batch_cli, video_packets
kind, *args = sys.argv[1:]
video_packets.available_memory = lambda: 200 << 20

def opening(file, mode="r", *given, **options):
    if mode == "r" and kind != "path":
        print("opened", flush=True)
        if kind == "ffmpeg":
            av.error.err_check(-errno.ENOMEM)
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
    return real(file, mode, *given, **options)

def looking(path, *given, **options):
    if kind == "path":
        print("opened", flush=True)
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM), str(path))
    return look(path, *given, **options)

real, av.open = av.open, opening
look, batch_cli.check_reachable = batch_cli.check_reachable, looking
sys.argv = ["ncnn-sr", "video", *args]
from ncnn_sr import entry
entry.ncnn_sr()
"""


@pytest.mark.parametrize("kind", ["ffmpeg", "system", "path"])
@pytest.mark.parametrize("folder", [False, True], ids=["video", "folder"])
def test_out_of_memory_as_an_input_opens_is_the_hosts_not_the_files(kind, folder, tmp_path):
    # It said "in.mp4: not a video FFmpeg can read (Cannot allocate memory)" (or
    # "out.mkv: Cannot allocate memory"), the file's fault, and a folder's run tried
    # each later video, failing alike.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, frames=2, audio=None)
    given = src if folder else src / "a.mp4"
    proc = subprocess.run([sys.executable, "-c", _OPENED_OUT_OF_MEMORY, kind, "-i", str(given), "-o",
                           str(tmp_path / ("out" if folder else "out.mkv")), *X2],
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: out of memory\n"), proc.stderr
    assert proc.stdout == "opened\n"  # the next video not tried
    assert sorted(os.listdir(tmp_path)) == ["in"]


@pytest.mark.parametrize("kind", ["ffmpeg", "system"])
def test_probe_and_upscale_video_raise_out_of_memory_as_the_input_opens_as_a_memory_error(kind, tmp_path,
                                                                                      monkeypatch):
    from ncnn_sr import video, video_packets
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)

    def opening(file, mode="r", *given, **options):
        if mode != "r":
            return real(file, mode, *given, **options)
        if kind == "ffmpeg":
            av.error.err_check(-errno.ENOMEM)
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
    real = av.open
    monkeypatch.setattr(av, "open", opening)
    # Short of memory indeed: with room to spare, FFmpeg's ENOMEM is a damaged file's.
    monkeypatch.setattr(video_packets, "available_memory", lambda: 200 << 20)
    said = f"^{re.escape(str(clip))}: cannot open: Cannot allocate memory$"
    with pytest.raises(MemoryError, match=said):
        video.probe(clip)
    with pytest.raises(MemoryError, match=said):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(codec="ffv1"))
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_pieces_refused_for_another_cause_than_room_say_that_cause(tmp_path, cpu_upscalers, short_pieces,
                                                                   monkeypatch, caplog):
    # Their folder made read-only (or removed with the output's) was said as "no room
    # to keep the work beside it (Permission denied)", as if the disk were full.
    from ncnn_sr import video_pieces
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)

    def piece_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".tmp") and mode == "wb":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(video_pieces, "open", piece_open, raising=False)
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, upscaled(up), settings=SETTINGS)
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: cannot keep the work beside it (Permission denied): it is still written, but a stop from here "
        "loses the run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def disk_full(monkeypatch, packets: int | None, code: int = errno.ENOSPC) -> None:
    """The output's disk full after ``packets`` video packets are muxed into it, or
    (None) as it closes, its trailer (the end of a run): FFmpeg's ENOSPC, as a muxer
    meets it (or the error ``code``: ENOMEM, FFmpeg out of memory as it muxes)."""
    from ncnn_sr import video
    real_open = av.open

    class Full:
        def __init__(self, container):
            self._real, self._muxed = container, 0

        def __getattr__(self, name):
            return getattr(self._real, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def mux(self, packets_in):
            for packet in packets_in if isinstance(packets_in, list) else [packets_in]:
                if packets is not None and packet.stream.type == "video":
                    self._muxed += 1
                    if self._muxed > packets:
                        av.error.err_check(-code)
                self._real.mux(packet)

        def close(self):
            self._real.close()
            if packets is None:
                av.error.err_check(-code)

    def opening(file, mode="r", *args, **kwargs):
        made = real_open(file, mode, *args, **kwargs)
        return Full(made) if mode == "w" and "ncnn-sr-part" in str(file) else made  # the output's part file
    monkeypatch.setattr(video.av, "open", opening)


@pytest.mark.parametrize("packets", [14, None], ids=["midway", "at_the_end"])
def test_a_disk_that_fills_under_the_video_keeps_its_whole_pieces_for_a_rerun(packets, tmp_path, cpu_upscalers,
                                                                           short_pieces, monkeypatch):
    # The output's write refused (ENOSPC, or its trailer at the very end of a run of
    # hours) removed the pieces with the partial video: all the upscaling lost, where
    # a rerun once room is made could copy them.
    from ncnn_sr.errors import NoRoom
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    upscale_video(clip, tmp_path / "whole.mkv", upscaled(up), lossless, settings=SETTINGS)
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        disk_full(m, packets)
        with pytest.raises(NoRoom, match="No space left on device"):
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.ncnn-sr-pieces", "in.mp4", "whole.mkv"]
    work = tmp_path / ".out.mkv.ncnn-sr-pieces"
    kept = sorted(p.name for p in work.iterdir() if p.name.startswith("piece-"))
    assert kept == [f"piece-{i:05d}.bin" for i in range(2 if packets else 6)]
    made = []
    upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS, progress=made.append)
    assert len(made) == (36 - 12 if packets else 0)  # at the end, the rerun only copies: no frame upscaled
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]


def test_a_rerun_whose_disk_still_lacks_the_room_to_finish_says_so_before_it_upscales(tmp_path, cpu_upscalers,
                                                                                     short_pieces, monkeypatch,
                                                                                     caplog):
    # A rerun after a full disk, no room made, said nothing until its disk filled
    # again. It says up front what is short, by the kept pieces' reckoning, and goes
    # on where it can get further (the copy of the kept work fits): what it makes
    # before the disk fills is kept too, for the next rerun.
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    upscale_video(clip, tmp_path / "whole.mkv", upscaled(up), lossless, settings=SETTINGS)
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        disk_full(m, 14)
        with pytest.raises(InputError, match="No space left on device"):
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    kept = sum(p.stat().st_size for p in (tmp_path / ".out.mkv.ncnn-sr-pieces").glob("piece-*.bin"))

    class Usage:
        free = kept + 1000
    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage)
    made = []
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS, progress=made.append)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and said[0] == f"{out}: going on from 00:00:01 (2 of 6 pieces kept from a stopped run)"
    short = re.fullmatch(rf"{re.escape(str(out))}: its disk has \d+ kB free, about (\d+) kB too little to go on to the "
                         r"end \(the video and its pieces beside it, reckoned from those kept\): going on, keeping "
                         r"the work as it goes", said[1])
    assert short, said
    assert 4 * kept / 1024 - 3 <= int(short[1]) <= 4 * kept / 1024 + 1  # the video (3 times the kept), its pieces
    assert len(made) == 36 - 12  # it went on
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)


def test_a_rerun_whose_disk_cannot_even_take_the_kept_work_stops_before_it_upscales(tmp_path, cpu_upscalers,
                                                                                   short_pieces, monkeypatch):
    # Its disk with less room than the kept pieces, which it copies into the video
    # first, the rerun failed again as it copied them, having got no further (on a
    # 300 kB tmpfs: 'No space left on device; the work up to 00:00:03 is kept ...
    # (229 kB): once over 495 kB more is free', run after run). It stops before
    # upscaling, with the full disk's error, the work kept.
    from ncnn_sr.errors import NoRoom
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=36, rate=Fraction(12))
    lossless = EncodeOptions(codec="ffv1")
    out = tmp_path / "out.mkv"
    with monkeypatch.context() as m:
        disk_full(m, 14)
        with pytest.raises(NoRoom):
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS)
    work = tmp_path / ".out.mkv.ncnn-sr-pieces"
    before = sorted(p.name for p in work.iterdir())
    kept = sum(p.stat().st_size for p in work.glob("piece-*.bin"))

    class Usage:
        free = kept - 1000
    made = []
    with monkeypatch.context() as m:
        m.setattr("shutil.disk_usage", lambda path: Usage)
        with pytest.raises(NoRoom) as caught:
            upscale_video(clip, out, upscaled(up), lossless, settings=SETTINGS, progress=made.append)
    assert re.fullmatch(rf"cannot write {re.escape(str(out))}: its disk has \d+ kB free, less than the \d+ kB of "
                        r"work kept to copy into it", str(caught.value)), caught.value
    assert made == [] and sorted(p.name for p in work.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mkv.ncnn-sr-pieces", "in.mp4"]


def test_the_command_says_in_one_line_what_a_full_disk_left_and_the_room_to_make(tmp_path, in_process, monkeypatch,
                                                                               short_pieces):
    # It said "error: cannot write out.mkv: No space left on device", the work removed
    # with the partial video: a run of hours lost to the last megabytes of its disk.
    clip, lossless = clip_and_one_run(tmp_path, in_process), LOSSLESS
    out = tmp_path / "out.mkv"

    class Usage:
        free = 0  # the room the removed partial video gave back, and no more
    with monkeypatch.context() as m:
        m.setattr("shutil.disk_usage", lambda path: Usage)
        disk_full(m, None)  # at the very end: its trailer
        status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless)
    assert status == 1, said
    line = said.splitlines()[-1]
    kept = re.fullmatch(rf"ncnn-sr: error: cannot write {re.escape(str(out))}: No space left on device; the work up "
                        r"to 00:00:02 is kept in \.out\.mkv\.ncnn-sr-pieces \((\d+) kB\): once over (\d+) kB more is "
                        r"free on its disk, run the same command again to go on", line)
    assert kept, said
    assert "error" not in "\n".join(said.splitlines()[:-1]), said
    assert int(kept[1]) <= int(kept[2]) <= int(kept[1]) * 1.1  # the video, as large again: the pieces are there
    assert not out.exists()
    status, said = in_process("video", "-i", clip, "-o", out, *X2, *lossless)  # room made
    assert status == 0, said
    assert f"{out}: going on from 00:00:02 (6 of 6 pieces kept from a stopped run)" in said, said
    # It said "(0 upscaled, 0.00 fps)": no frame went through the bar, which counts the kept ones from the first.
    assert re.search(rf"wrote {re.escape(str(out))}: 36 frames in [\d.]+ s \(all kept from a stopped run\)$", said,
                     re.M), said
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv", "whole.mkv"]



def test_an_output_folder_made_read_only_as_the_video_ends_keeps_the_work_and_names_what_is_left(
        tmp_path, in_process, short_pieces):
    # The whole video was left in a hidden temporary file, unsaid, and its pieces were
    # removed: a rerun, once the folder could be written again, upscaled it all again.
    from conftest import READ_ONLY_ONCE_ENCODED, run_breaking_a_folder

    clip = clip_and_one_run(tmp_path, in_process)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "out.mkv"
    proc = run_breaking_a_folder([sys.executable, "-c", READ_ONLY_ONCE_ENCODED, str(folder), "-i", str(clip),
                                  "-o", str(out), *X2, *LOSSLESS], folder)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if " frames, " not in line]
    part = next((p for p in folder.iterdir() if p.name.startswith(".out.ncnn-sr-part-")), None)
    assert part is not None, proc.stderr
    assert lines == [
        f"ncnn-sr: warning: {part}: a temporary file that could not be removed (Permission denied)",
        f"ncnn-sr: error: cannot write {out}: Permission denied",
        f"ncnn-sr: {out} is not written yet; the work up to 00:00:02 is kept in .out.mkv.ncnn-sr-pieces: run the "
        "same command again to go on"], proc.stderr
    status, said = in_process("video", "-i", clip, "-o", out, *X2, *LOSSLESS)  # the folder writable again
    assert status == 0, said
    assert f"{out}: going on from 00:00:02 (6 of 6 pieces kept from a stopped run)" in said, said
    assert (got := contents(out)) == (wanted := contents(tmp_path / "whole.mkv")), differences(got, wanted)
    assert sorted(p.name for p in folder.iterdir()) == ["out.mkv"]


def test_a_ctrl_c_as_the_finished_video_is_renamed_into_place_leaves_no_pieces_beside_it(tmp_path, cpu_upscalers,
                                                                                       short_pieces, monkeypatch):
    # Landing once the rename was done, it kept the pieces, for a rerun, beside the
    # finished video: a hidden folder as large as the video, which a rerun with
    # --skip-existing, skipping the video, never removed.
    up = cpu_upscalers("realesr-animevideov3-x2")
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12), audio=None)
    real = os.replace

    def replace(src, dst, *given, **options):
        real(src, dst, *given, **options)
        if ".ncnn-sr-part-" in os.fspath(src):
            os.kill(os.getpid(), signal.SIGINT)  # handled as the next few steps run
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, tmp_path / "out.mp4", upscaled(up), settings=SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


# The command, killed outright (SIGKILL) once the finished video is renamed into place,
# before its pieces are removed.
KILLED_ONCE_RENAMED = """
import os, signal, sys
real = os.replace
def replace(src, dst, *given, **options):
    real(src, dst, *given, **options)
    if ".ncnn-sr-part-" in os.fspath(src):
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
sys.argv[0] = "ncnn-sr"
from ncnn_sr.entry import ncnn_sr
ncnn_sr()
"""


def test_skip_existing_removes_the_pieces_a_run_killed_once_its_video_was_in_place_left(tmp_path):
    # The kill's pieces, a hidden folder as large as the video, stayed beside it for
    # good: a rerun with --skip-existing skipped the video and never looked at them.
    clip = make_clip(tmp_path / "in.mp4", frames=24, rate=Fraction(12))
    out = tmp_path / "out.mp4"
    env = {**os.environ, "NCNN_SR_PIECE_SECONDS": "0.5"}
    killed = subprocess.run([sys.executable, "-c", KILLED_ONCE_RENAMED, "video", "-i", str(clip), "-o", str(out), *X2],
                            capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    work = tmp_path / ".out.mp4.ncnn-sr-pieces"
    assert work.is_dir() and out.is_file()
    finished = contents(out)
    proc = command(clip, out, [*X2, "--skip-existing"])
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert f"{out} exists: skipped (--skip-existing)" in err
    assert f"{out}: removed .out.mp4.ncnn-sr-pieces (" in err and "left by a run killed once the video was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]
    assert contents(out) == finished


def test_skip_existing_keeps_the_work_of_a_stopped_run_that_was_to_replace_the_video(tmp_path):
    # Made after the video there (a run without --skip-existing, with another crf, to
    # write it again), the pieces are that command's to go on from.
    clip = make_clip(tmp_path / "in.mp4", frames=72, width=64, height=48, rate=Fraction(12))
    out = tmp_path / "out.mp4"
    assert command(clip, out).wait(timeout=300) == 0
    before = out.read_bytes()
    proc = command(clip, out, [*X2, "--crf", "20"])
    work = tmp_path / ".out.mp4.ncnn-sr-pieces"
    deadline = time.monotonic() + 120
    while not (work / "piece-00001.bin").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    kept = sorted(p.name for p in work.iterdir())
    proc = command(clip, out, [*X2, "--crf", "20", "--skip-existing"])
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0 and "exists: skipped" in err and "removed" not in err, err
    assert sorted(p.name for p in work.iterdir()) == kept and out.read_bytes() == before
