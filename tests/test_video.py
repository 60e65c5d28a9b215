"""Video in one command: size, frames, timestamps, sound and subtitles, on clips the
tests make with PyAV; the real model on the CPU."""
import gc
import io
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image

from conftest import as_a_user, ctrl_c_once_made, picture
from media import (HDR10, add_mov_text, add_subtitles, encode_all, hdr_metadata, make_clip, make_hdr_clip,
                   make_turning_stream, packets)
from ncnn_sr import InputError, isobmff, video_frames
from ncnn_sr.errors import shell_word
from ncnn_sr.lanes import Lane, ordered_map
from ncnn_sr.video import EncodeOptions, upscale_video
from ncnn_sr.video_streams import sample_rate_for
from ncnn_sr.video_codecs import encoded_size
from ncnn_sr.video_frames import ColourTags, encodable_size, output_colour, to_rgb
from test_cli import LATIN1, LOCALES, installed, run_in_locale

NCNN_SR = installed("ncnn-sr")
DROPIN = installed("realesrgan-ncnn-vulkan")
X2 = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]


def run(cmd, *args, check_ok=True):
    proc = subprocess.run([cmd, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def frame_times(path):
    """Presentation times (s) of the decoded video frames, and their size."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return [float(f.pts * f.time_base) for f in frames], (frames[0].width, frames[0].height)


def audio_stream(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        return a.codec_context.name, float(a.duration * a.time_base) if a.duration else None


def test_output_is_scaled_with_every_frame_and_the_sound_copied(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=8)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    times_in, size_in = frame_times(clip)
    times_out, size_out = frame_times(tmp_path / "out.mp4")
    assert size_out == (size_in[0] * 2, size_in[1] * 2)
    assert len(times_out) == len(times_in) == 8
    assert times_out == pytest.approx(times_in, abs=1e-3)
    assert audio_stream(tmp_path / "out.mp4") == audio_stream(clip)
    assert packets(tmp_path / "out.mp4", "audio") == packets(clip, "audio")  # copied, not re-encoded


@pytest.mark.parametrize("rotation", [0, -90])
def test_decoded_frames_are_freed_as_the_run_goes(rotation, tmp_path, monkeypatch):
    # PyAV's frame and its side data hold each other: a frame whose display matrix was
    # read is freed by a full collection alone, which comes by object counts, whatever
    # its pixels (a 1080p run held 706 MB after 600 frames, 143 MB without the reads).
    clip = make_clip(tmp_path / "in.mp4", frames=120, audio=None, rotation=rotation)
    monkeypatch.setattr(video_frames, "SIDE_DATA_HELD", 16 * 32 * 24 * 3 // 2)  # 16 frames' bytes
    live = []

    def frames(images):
        for image in images:
            live.append(sum(isinstance(o, av.VideoFrame) for o in gc.get_objects()))
            yield image

    gc.collect()
    gc.disable()  # collections come only as the run makes them
    try:
        assert upscale_video(clip, tmp_path / "out.mkv", frames) == 120
    finally:
        gc.enable()
    assert max(live) < 60


def test_a_24000_1001_rate_keeps_every_timestamp(tmp_path):
    clip = make_clip(tmp_path / "ntsc.mp4", frames=10, rate=Fraction(24000, 1001))
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    times_in, _ = frame_times(clip)
    times_out, _ = frame_times(tmp_path / "out.mp4")
    assert times_out == pytest.approx(times_in, abs=1e-3)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)


@pytest.mark.parametrize("muxer, codec", [("h264", "libx264"), ("hevc", "libx265")])
def test_an_elementary_stream_keeps_the_frame_rate_it_states(muxer, codec, tmp_path):
    # A bare .h264 or .hevc stream has no time stamps: FFmpeg's reader says 25 frames a
    # second, whatever the stream's own timing says, and 29.97 fps video played 20 % slow.
    clip = tmp_path / f"in.{muxer}"
    with av.open(str(clip), "w", format=muxer) as out:
        video = out.add_stream(codec, rate=Fraction(30000, 1001))
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        video.codec_context.options = {"x265-params": "log-level=error"} if codec == "libx265" else {}
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(24, 32, seed=i), format="rgb24") for i in range(5)])
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    times, _ = frame_times(tmp_path / "out.mp4")
    assert times == pytest.approx([i * 1001 / 30000 for i in range(5)], abs=1e-3)


def test_an_avi_from_an_elementary_stream_is_written_at_the_streams_own_rate(tmp_path):
    # An AVI is written at its input's rate: an .m2v's was FFmpeg's assumed 25, not its 29.97.
    clip = tmp_path / "in.m2v"
    with av.open(str(clip), "w", format="mpeg2video") as out:
        video = out.add_stream("mpeg2video", rate=Fraction(30000, 1001))
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(24, 32, seed=i), format="rgb24") for i in range(6)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
        assert len(list(c.decode(video=0))) == 6


def stated_rate(path) -> Fraction:
    """The frame rate the video stream of ``path`` states in its own headers (H.264's
    or HEVC's VUI timing), as a reader of it copied out bare (ffmpeg -c copy out.h264,
    then mkvmerge or MP4Box) takes it."""
    with av.open(str(path)) as c:
        video = c.streams.video[0]
        bare = path.with_suffix("." + video.codec_context.name)
        with av.open(str(bare), "w", format=video.codec_context.name) as out:
            copy = out.add_stream_from_template(video)
            for packet in c.demux(video):
                if packet.size:
                    packet.stream = copy
                    out.mux(packet)
    with av.open(str(bare)) as c:
        return c.streams.video[0].codec_context.framerate


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
@pytest.mark.parametrize("rate, suffix, fps", [(Fraction(24000, 1001), ".mp4", None), (Fraction(25), ".mkv", None),
                                               (Fraction(30), ".mp4", None), (Fraction(25), ".mp4", Fraction(30))])
def test_the_video_states_its_own_frame_rate(codec, rate, suffix, fps, tmp_path):
    # x264 takes its timing from the encoder's time base, the input's tick: its VUI said
    # 24000 fps for 23.976 (an mp4's 1/24000), 12800 for 25, 15360 for 30, where the
    # container said the rate.
    clip = make_clip(tmp_path / "in.mp4", frames=6, width=64, height=48, rate=rate, audio=None)
    upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames, EncodeOptions(codec=codec, fps=fps))
    assert stated_rate(tmp_path / f"out{suffix}") == (fps or rate)


@pytest.mark.parametrize("b_frames", [0, 2])
def test_h264_in_an_mpeg_program_stream_keeps_the_frames_its_packets_state_no_time_for(b_frames, tmp_path, caplog):
    # Small frames share a PES packet, whose one time stamp is its first frame's: the
    # others had none, and were counted at the rate from 0, before the first (0.5 s
    # in), then left out as stamped no later than the frame before: 28 of 60 frames.
    clip = make_clip(tmp_path / "in.mpg", frames=24, width=64, height=48, audio=None, b_frames=b_frames)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    assert caplog.text == ""
    times, _ = frame_times(tmp_path / "out.mkv")  # on the file's timeline, which starts near 0.5 s
    assert [t - times[0] for t in times] == pytest.approx([i / 24 for i in range(24)], abs=1e-3)


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(25), Fraction(30000, 1001)])
def test_a_one_frame_mpeg_program_stream_keeps_the_rate_its_sequence_header_states(rate, tmp_path):
    # One frame gives FFmpeg no average rate, and its guess is twice the rate (a field's):
    # a 24 fps still came out as 1 frame lasting 1/48 s in an .mp4, 2 frames in an .mpg.
    clip = tmp_path / "in.mpg"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("mpeg2video", rate=rate)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(24, 32), format="rgb24")])
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    upscale_video(clip, tmp_path / "out.mpg", lambda frames: frames, EncodeOptions(codec="mpeg2video"))
    for name in ("out.mp4", "out.mpg"):
        with av.open(str(tmp_path / name)) as c:
            durations = [p.duration * p.time_base for p in c.demux(video=0) if p.size]
        assert durations == [1 / rate], name


def test_a_variable_frame_rate_keeps_each_frame_time(tmp_path):
    ms = [0, 40, 50, 130, 140, 300, 310, 420]
    clip = make_clip(tmp_path / "vfr.mp4", frames=len(ms), frame_ms=ms)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    times_out, _ = frame_times(tmp_path / "out.mp4")
    assert times_out == pytest.approx([m / 1000 for m in ms], abs=1e-3)
    assert packets(tmp_path / "out.mp4", "audio") == packets(clip, "audio")


def reordered(path) -> bool:
    """Whether the video packets of ``path`` are stored out of the order they are shown in (B-frames)."""
    with av.open(str(path)) as c:
        order = [p.pts for p in c.demux(video=0) if p.size]
    return order != sorted(order)


@pytest.mark.parametrize("name, suffix", [("vfr.mp4", ".mp4"), ("vfr.mp4", ".mov"), ("vfr.mkv", ".mp4")])
def test_a_variable_rate_with_b_frames_keeps_its_length_in_an_mp4_or_mov(name, suffix, tmp_path):
    # found by QA: an mp4 or .mov states each frame's duration in decoding order, as
    # the time to the next frame decoded: B-frames at a variable rate put the gaps on
    # other frames, and the track's end (the last decoded frame's time and duration)
    # fell short of the last frame shown: frames to 1.1 s read as 1.0 s long
    ms = [0, 100, 200, 300, 400, 500, 600, 700, 710, 900, 1100]
    # (A Matroska states the nominal 24 fps, whatever its frames' times.)
    clip = make_clip(tmp_path / name, frames=len(ms), width=16, height=16, frame_ms=ms, audio=None, b_frames=3)
    assert reordered(clip)
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    times_out, _ = frame_times(out)
    assert times_out == pytest.approx([m / 1000 for m in ms], abs=1e-3)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        # The last frame, at 1.1 s, lasts a frame at the rate the clip states: at most 0.11 s here.
        assert 1.1 < float((stream.start_time + stream.duration) * stream.time_base) < 1.1 + 0.11
        assert 1.1 < c.duration / 1e6 < 1.1 + 0.11


def test_a_variable_rate_read_from_a_pipe_keeps_its_length_in_an_mp4(tmp_path):
    # A pipe cannot be read twice: the frames' times are read ahead of the run, which
    # then reads those packets first. Matroska states the nominal 24 fps whatever they are.
    ms = [0, 100, 200, 300, 400, 500, 600, 700, 710, 900, 1100]
    clip = make_clip(tmp_path / "vfr.mkv", frames=len(ms), width=16, height=16, frame_ms=ms, b_frames=3)
    out = tmp_path / "out.mp4"
    proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", str(out), *X2], input=clip.read_bytes(),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    assert frame_times(out)[0] == pytest.approx([m / 1000 for m in ms], abs=1e-3)
    assert track_end(out) == pytest.approx(1.1 + 1 / 24, abs=0.001)
    # The sound read ahead with the frames goes along whole.
    assert [data for _, data in packets(out, "audio")] == [data for _, data in packets(clip, "audio")]


def track_end(path) -> float:
    """Where the first video track ends (s), as its container states it."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return float((stream.start_time + stream.duration) * stream.time_base)


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_a_variable_rate_keeps_its_last_frames_length_in_an_mp4_or_mov(suffix, tmp_path):
    # found by QA: the last frame lasted a frame at the average rate (9.6 fps here),
    # not its own 1/24 s: 1.14 s of video came out 1.20 s long
    ms = [0, 100, 200, 300, 400, 500, 600, 700, 710, 900, 1100]
    clip = make_clip(tmp_path / "vfr.mp4", frames=len(ms), width=16, height=16, frame_ms=ms, audio=None)
    assert track_end(clip) == pytest.approx(1.1 + 1 / 24, abs=0.001)
    upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames)
    assert track_end(tmp_path / f"out{suffix}") == pytest.approx(1.1 + 1 / 24, abs=0.001)
    assert frame_times(tmp_path / f"out{suffix}")[0] == pytest.approx([m / 1000 for m in ms], abs=1e-3)


# 25 fps for 12.8 s, past the first 300 packets, then at a variable rate (in an mkv,
# which keeps the times: an mp4 with B-frames makes the same fault of its own).
LATE_VARIABLE_MS = [40 * i for i in range(320)] + [12800, 12900, 12910, 13100, 13110, 13300]


def late_variable_clip(path: Path) -> Path:
    clip = make_clip(path, frames=len(LATE_VARIABLE_MS), width=16, height=16, rate=Fraction(25),
                     frame_ms=LATE_VARIABLE_MS, audio=None, b_frames=3)
    assert reordered(clip)
    return clip


def test_a_rate_that_turns_variable_late_keeps_its_length_in_an_mp4(tmp_path):
    # found by QA: only the first 300 packets were looked at: a video constant for
    # 12.8 s, then variable, kept its B-frames, and ended short
    clip = late_variable_clip(tmp_path / "late.mkv")
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert frame_times(tmp_path / "out.mp4")[0] == pytest.approx([m / 1000 for m in LATE_VARIABLE_MS], abs=1e-3)
    assert track_end(tmp_path / "out.mp4") == pytest.approx(13.34, abs=0.001)


def test_a_part_is_judged_by_its_own_frames_rate(tmp_path):
    # The first 12 s are constant: that part keeps its B-frames; one from 12 s is
    # variable, whatever the file's first seconds are, and keeps its length.
    clip = late_variable_clip(tmp_path / "late.mkv")
    upscale_video(clip, tmp_path / "constant.mp4", lambda frames: frames, EncodeOptions(duration=Fraction(12)))
    assert reordered(tmp_path / "constant.mp4")
    upscale_video(clip, tmp_path / "variable.mp4", lambda frames: frames, EncodeOptions(start=Fraction(12)))
    assert not reordered(tmp_path / "variable.mp4")
    assert frame_times(tmp_path / "variable.mp4")[0] == pytest.approx(
        [m / 1000 - 12 for m in LATE_VARIABLE_MS if m >= 12000], abs=1e-3)
    assert track_end(tmp_path / "variable.mp4") == pytest.approx(1.34, abs=0.001)


def bytes_read() -> int:
    """What this process has read so far, through any file."""
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts the bytes read in /proc/self/io")
def test_a_part_near_the_end_is_judged_without_reading_the_file_from_its_beginning(tmp_path):
    # found by QA: the rate check read the file from its start to the part's, which
    # for --start 50:00 of a 6.3 GB hour took 3.9 s (page cache) to 6.5 s before a frame
    clip = tmp_path / "long.mp4"
    rng = np.random.RandomState(0)
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.gop_size = 10
        encode_all(out, video, [av.VideoFrame.from_ndarray(rng.randint(0, 256, (48, 64, 3), np.uint8), format="rgb24")
                                for _ in range(500)])
    size = clip.stat().st_size
    before = bytes_read()
    options = EncodeOptions(start=Fraction(85), duration=Fraction(1))
    assert upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames, options) == 5
    # The part, the seek margin and what follows it before the run stops, read twice:
    # about a quarter of the file, where the whole of it was read once more.
    assert bytes_read() - before < size / 2


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts the bytes read in /proc/self/io")
def test_a_part_near_the_end_into_an_avi_is_looked_at_for_pauses_without_reading_the_file_from_its_beginning(
        tmp_path):
    # found by QA: an .avi's (or .ogv's) look for pauses in the sound read every sound
    # packet of the file: 24 s for --start 50:00 --duration 2 of a 6.3 GB hour, 1.9 s into an mp4
    clip = tmp_path / "long.mkv"
    rng = np.random.RandomState(0)
    with av.open(str(clip), "w") as out:  # interleaved as a camera's: 100 s of video, and sound beside it
        video = out.add_stream("libx264", rate=5)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.codec_context.gop_size = 10
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "mono"
        for i in range(500):
            image = rng.randint(0, 256, (48, 64, 3), np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            for j in range(i * 9600 // 1024, (i + 1) * 9600 // 1024):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.int16), format="s16p", layout="mono")
                frame.sample_rate, frame.pts = 48000, j * 1024
                out.mux(sound.encode(frame))
        out.mux(video.encode())
        out.mux(sound.encode())
    size = clip.stat().st_size
    before = bytes_read()
    options = EncodeOptions(start=Fraction(85), duration=Fraction(1))
    assert upscale_video(clip, tmp_path / "out.avi", lambda frames: frames, options) == 5
    assert bytes_read() - before < size / 2
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"  # copied: no pause


def test_a_pause_at_the_start_of_a_part_is_found_for_an_avi(tmp_path):
    # Sound from 0 to 50 s and again from 85.5 s: a part from 85 s starts with half a
    # second of silence, which an .avi would drop from a copy.
    clip = make_clip(tmp_path / "long.mp4", frames=500, rate=Fraction(5), width=16, height=16, gop=10,
                     sound_spans=[(0.0, 50.0), (85.5, 100.0)])
    options = EncodeOptions(start=Fraction(85), duration=Fraction(2))
    assert upscale_video(clip, tmp_path / "out.avi", lambda frames: frames, options) == 10
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.audio[0].codec_context.name != "aac"  # re-encoded, led by silence


def test_a_rate_that_turns_variable_late_in_a_pipe_keeps_its_length_in_an_mp4(tmp_path):
    # A pipe is looked at as far ahead as the bytes it may hold for the run (PEEK_BYTES).
    from ncnn_sr.streams import VideoInput
    data = late_variable_clip(tmp_path / "late.mkv").read_bytes()
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: open(fifo, "wb").write(data))
    writer.start()
    src = VideoInput(fifo)
    try:
        upscale_video(src, tmp_path / "out.mp4", lambda frames: frames)
    finally:
        src.close()
        writer.join(10)
    assert frame_times(tmp_path / "out.mp4")[0] == pytest.approx([m / 1000 for m in LATE_VARIABLE_MS], abs=1e-3)
    assert track_end(tmp_path / "out.mp4") == pytest.approx(13.34, abs=0.001)


def test_a_pipe_that_sends_slowly_is_upscaled_as_it_comes_into_an_mp4(tmp_path):
    # found by QA: the rate check read a pipe ahead to its end (or 64 MiB) before the
    # first frame was upscaled: a live source's whole stream, minutes of a camera's
    # (64 MiB at 2 Mbit/s), was waited for before any work began
    from ncnn_sr.streams import VideoInput
    # PCM makes it 400 kB: FFmpeg reads a pipe 32 kB at a time.
    data = make_clip(tmp_path / "in.mkv", frames=48, width=64, height=64, b_frames=3, audio="pcm_s16le",
                     layout="stereo").read_bytes()
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    upscaling, early = threading.Event(), threading.Event()

    def send() -> None:
        # Half at once, then the rest as a live source sends it, over half a minute,
        # until a frame is upscaled: then all that is left.
        half = len(data) // 2
        with open(fifo, "wb") as f:
            f.write(data[:half])
            step = -(-half // 120)
            for at in range(half, len(data), step):
                if upscaling.is_set():
                    early.set()
                    f.write(data[at:])
                    break
                f.write(data[at:at + step])
                f.flush()
                time.sleep(0.25)

    def frames(decoded):
        for frame in decoded:
            upscaling.set()
            yield frame

    writer = threading.Thread(target=send)
    writer.start()
    src = VideoInput(fifo)
    try:
        assert upscale_video(src, tmp_path / "out.mp4", frames) == 48
    finally:
        src.close()
        writer.join(40)
    assert early.is_set()  # the first frames were upscaled while the rest was still to come
    assert frame_times(tmp_path / "out.mp4")[0] == pytest.approx([i / 24 for i in range(48)], abs=1e-3)
    assert reordered(tmp_path / "out.mp4")  # judged by what came in time: a constant rate


def test_a_constant_rate_keeps_its_b_frames_in_an_mp4(tmp_path):
    clip = make_clip(tmp_path / "cfr.mp4", frames=12, width=16, height=16, audio=None, b_frames=3)
    assert upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames) == 12
    assert reordered(tmp_path / "out.mp4")


@pytest.mark.parametrize("rate", [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(24)])
def test_a_constant_rate_matroska_stamps_in_milliseconds_is_written_at_that_rate(rate, tmp_path):
    # 23.976 fps in an mkv reads as 41 and 42 ms frames: copied into an mp4 they made
    # it a variable rate of 23.98 that editors and MediaInfo take it for.
    clip = make_clip(tmp_path / "in.mkv", frames=12, rate=rate, audio=None)
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames, EncodeOptions())
    with av.open(str(tmp_path / "out.mp4")) as c:
        stream = c.streams.video[0]
        times = sorted(p.pts * stream.time_base for p in c.demux(stream) if p.pts is not None)
        assert stream.average_rate == rate
    assert times == [i / rate for i in range(12)]


def test_frames_off_a_rate_by_more_than_a_millisecond_keep_their_times(tmp_path):
    ms = [0, 42, 85, 125, 167, 300, 342]  # 24 fps, but for 85 and the pause at 300
    clip = make_clip(tmp_path / "in.mkv", frames=len(ms), frame_ms=ms, audio=None)
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames, EncodeOptions())
    times, _ = frame_times(tmp_path / "out.mp4")
    assert times == pytest.approx([0, 1 / 24, 0.085, 3 / 24, 4 / 24, 0.3, 0.342], abs=1e-6)


def test_a_clip_without_sound_stays_without(tmp_path):
    clip = make_clip(tmp_path / "mute.mp4", frames=5, audio=None)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert audio_stream(tmp_path / "out.mp4") is None
    assert len(frame_times(tmp_path / "out.mp4")[0]) == 5


def test_timestamps_are_strictly_increasing(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=12)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    times, _ = frame_times(tmp_path / "out.mp4")
    assert all(b > a for a, b in zip(times, times[1:]))
    with av.open(str(tmp_path / "out.mp4")) as c:
        dts = [p.dts for p in c.demux(c.streams.video[0]) if p.dts is not None]
    assert all(b > a for a, b in zip(dts, dts[1:]))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_frame_stamped_with_the_time_of_the_one_before_is_left_out_with_a_warning(suffix, tmp_path, caplog):
    # As ffmpeg does for a variable rate; into an mp4 it failed the whole video after
    # every frame was upscaled ("cannot encode: Invalid argument"), into an mkv two
    # frames were written at one time.
    clip = make_clip(tmp_path / "in.mkv", frames=5, frame_ms=[0, 40, 40, 80, 120], audio=None)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames) == 4
    assert "1 frame stamped no later than the frame before it left out" in caplog.text
    times, _ = frame_times(tmp_path / f"out{suffix}")
    assert times == pytest.approx([0, 0.04, 0.08, 0.12], abs=1e-3)


def test_a_video_written_over_keeps_the_mode_of_the_one_it_replaces(tmp_path):
    # As pictures do: a video its owner made private (chmod 600) became 0644.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    out = tmp_path / "out.mp4"
    upscale_video(clip, out, lambda frames: frames)
    out.chmod(0o600)
    upscale_video(clip, out, lambda frames: frames)
    assert out.stat().st_mode & 0o777 == 0o600


CUES = [("00:00:00,000", "00:00:00,100", "Hello there"), ("00:00:00,120", "00:00:00,200", "General Kenobi")]


def test_subtitles_are_copied_into_mkv(tmp_path):
    clip = add_subtitles(make_clip(tmp_path / "in.mp4"), tmp_path / "in.mkv", CUES)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert packets(tmp_path / "out.mkv", "subtitles") == packets(clip, "subtitles")
    assert packets(tmp_path / "out.mkv", "audio") == packets(clip, "audio")


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_text_subtitles_are_converted_to_mov_text_for_mp4_and_mov(suffix, tmp_path, caplog):
    clip = add_subtitles(make_clip(tmp_path / "in.mp4"), tmp_path / "in.mkv", CUES)
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, lambda frames: frames)
    assert f"{suffix} cannot hold srt subtitles: converting subtitle stream 2 to mov_text" in caplog.text
    with av.open(str(out)) as c:
        assert c.streams.subtitles[0].codec_context.name == "mov_text" and c.streams.audio
    assert cues(out) == cues(clip)


def test_sound_the_container_cannot_hold_is_reencoded_with_a_warning(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=4, audio="pcm_s16le")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.webm", *X2)
    assert "re-encoding audio" in proc.stderr
    name, duration = audio_stream(tmp_path / "out.webm")
    assert name == "opus"
    with av.open(str(tmp_path / "out.webm")) as c:
        assert c.streams.video[0].codec_context.name == "vp9"


def sound_seconds(path):
    """How long the first audio stream plays, from its decoded samples."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    return sum(f.samples for f in frames) / frames[0].sample_rate


@pytest.mark.parametrize("name,audio,rate,target", [
    ("in.mp4", "aac", 44100, 48000),
    ("in.mkv", "pcm_s16le", 22050, 24000),
    ("in.mp4", "aac", 11025, 12000),
])
def test_sound_at_a_rate_the_encoder_cannot_take_is_resampled(name, audio, rate, target, tmp_path):
    clip = make_clip(tmp_path / name, frames=4, audio=audio, sample_rate=rate)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.webm", *X2)
    assert f"re-encoding audio stream 1 to opus, resampled from {rate} to {target} Hz" in proc.stderr
    assert audio_stream(tmp_path / "out.webm")[0] == "opus"
    assert sound_seconds(tmp_path / "out.webm") == pytest.approx(sound_seconds(clip), abs=0.01)


def sound_stretches(path):
    """(start, end) seconds of each unbroken stretch of decoded sound in the first audio
    stream: a jump of more than 5 ms between frames (past mkv's millisecond rounding)
    starts a new one."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    stretches = []
    for f in frames:
        start = float(f.pts * f.time_base)
        end = start + f.samples / f.sample_rate
        if stretches and start - stretches[-1][1] <= 0.005:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])
    return [tuple(s) for s in stretches]


def test_reencoded_sound_keeps_its_start_and_end_time(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=12, sound_spans=[(0.25, 0.5)])
    upscale_video(clip, tmp_path / "out.webm", lambda frames: frames)
    assert audio_stream(tmp_path / "out.webm")[0] == "opus"
    [(start, end)] = sound_stretches(clip)
    assert start == pytest.approx(0.25, abs=0.001)
    # Opus codes 20 ms frames.
    assert sound_stretches(tmp_path / "out.webm") == [(pytest.approx(start, abs=0.02), pytest.approx(end, abs=0.02))]


def test_reencoded_sound_keeps_a_gap_in_its_source(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio="pcm_s16le", sound_spans=[(0, 0.15), (0.3, 0.5)])
    upscale_video(clip, tmp_path / "out.webm", lambda frames: frames)
    source = sound_stretches(clip)
    assert len(source) == 2
    # The encoder codes whole 20 ms frames with a 6.5 ms look-ahead, so the frame that
    # spans the gap carries some sound from after it to before it (as ffmpeg's does).
    assert sound_stretches(tmp_path / "out.webm") == [tuple(pytest.approx(t, abs=0.03) for t in s) for s in source]


def tone_onset(path):
    """When the first audio stream's tone is first heard (s): its first sample past a
    third of its loudness."""
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            samples = f.to_ndarray()
            level = np.abs(samples[0] / (32768 if samples.dtype.kind == "i" else 1))
            loud = np.nonzero(level > 0.1)[0]
            if len(loud):
                return float(f.pts * f.time_base) + loud[0] / f.sample_rate
    return None


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_an_mp4s_sound_stays_in_step_with_the_picture(suffix, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6)
    out = tmp_path / f"out{suffix}"
    upscale_video(clip, out, lambda frames: frames)
    first_in, first_out = frame_times(clip)[0][0], frame_times(out)[0][0]
    assert tone_onset(out) - first_out == pytest.approx(tone_onset(clip) - first_in, abs=0.002)
    # The AAC's priming, before 0, which the mp4 cuts, Matroska can cut only by a
    # CodecDelay PyAV cannot set: every stream of an .mkv starts that much later, as
    # with ffmpeg -c copy (1024 samples: 21 ms at 48 kHz). FFmpeg 9's Matroska muxer
    # (PyAV 19) writes the CodecDelay itself: the sound starts at -21 ms, the picture at 0.
    late = suffix == ".mkv" and av.library_versions["libavformat"] < (63,)
    assert first_out - first_in == pytest.approx(0.021 if late else 0, abs=0.001)


def test_sound_that_changes_format_midway_is_a_one_line_error(tmp_path, monkeypatch):
    # PyAV's resampler refuses a second input format with a ValueError: a traceback.
    from ncnn_sr import video as video_mod

    class Refusing:
        def __init__(self, **kwargs):
            pass

        def resample(self, frame):
            raise ValueError("Frame does not match AudioResampler setup.")

    monkeypatch.setattr(video_mod.av, "AudioResampler", Refusing)
    clip = make_clip(tmp_path / "in.mp4", frames=4, sample_rate=44100)
    with pytest.raises(InputError, match="its sound changes format midway"):
        upscale_video(clip, tmp_path / "out.webm", lambda frames: frames)
    assert os.listdir(tmp_path) == ["in.mp4"]


def adts_sound(rate: int, layout: str, seconds: float) -> bytes:
    """A tone as AAC in ADTS frames, each of which states its rate and channels."""
    written = io.BytesIO()
    with av.open(written, "w", format="adts") as out:
        sound = out.add_stream("aac", rate=rate)
        sound.layout = layout
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(round(seconds * rate)) / rate) * 32767).astype(np.int16)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(np.tile(tone[start:start + 1024], (sound.layout.nb_channels, 1)),
                                               format="s16p", layout=layout)
            frame.sample_rate, frame.pts = rate, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    return written.getvalue()


def test_sound_that_changes_format_midway_is_re_encoded_through(tmp_path):
    # found by QA: an MPEG-TS joined from two recordings, its sound 48 kHz stereo then
    # 44.1 kHz mono, failed into a .webm once its video was upscaled up to the change.
    (tmp_path / "two.aac").write_bytes(adts_sound(48000, "stereo", 0.5) + adts_sound(44100, "mono", 0.5))
    picture = make_clip(tmp_path / "picture.mkv", frames=24, width=16, height=16, audio=None)
    clip = tmp_path / "joined.ts"
    with av.open(str(picture)) as v, av.open(str(tmp_path / "two.aac")) as a, av.open(str(clip), "w") as out:
        targets = {v.streams.video[0]: out.add_stream_from_template(v.streams.video[0]),
                   a.streams.audio[0]: out.add_stream_from_template(a.streams.audio[0])}
        both = [p for p in v.demux(video=0) if p.size] + [p for p in a.demux(audio=0) if p.size]
        for packet in sorted(both, key=lambda p: (p.dts or 0) * p.time_base):
            packet.stream = targets[packet.stream]
            out.mux(packet)
    with av.open(str(clip)) as c:
        assert {(f.sample_rate, f.layout.name) for f in c.decode(audio=0)} == {(48000, "stereo"), (44100, "mono")}
    assert upscale_video(clip, tmp_path / "out.webm", lambda frames: frames) == 24
    with av.open(str(tmp_path / "out.webm")) as c:
        sound = list(c.decode(audio=0))
    assert {(f.sample_rate, f.layout.name) for f in sound} == {(48000, "stereo")}
    assert sum(f.samples for f in sound) / 48000 == pytest.approx(1.0, abs=0.1)  # both parts (and priming)


def test_the_sample_rate_is_the_sources_else_the_nearest_above_that_the_encoder_takes():
    opus = av.codec.Codec("libopus", "w").audio_rates
    assert sample_rate_for(48000, opus) == 48000 and sample_rate_for(8000, opus) == 8000
    assert sample_rate_for(44100, opus) == 48000 and sample_rate_for(22050, opus) == 24000
    assert sample_rate_for(96000, opus) == 48000  # none above: the highest
    assert sample_rate_for(22050, None) == 22050  # any rate goes


def test_fps_makes_a_constant_rate_and_keeps_the_duration(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=12, rate=Fraction(24))
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "half.mp4", *X2, "--fps", "12")
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "double.mp4", *X2, "--fps", "48")
    half, _ = frame_times(tmp_path / "half.mp4")
    double, _ = frame_times(tmp_path / "double.mp4")
    assert len(half) == 6 and half == pytest.approx([i / 12 for i in range(6)], abs=1e-3)
    assert len(double) == 24 and double == pytest.approx([i / 48 for i in range(24)], abs=1e-3)


def counted(frames):
    """The frames as they are, each one counted in ``counted.seen``: an upscaler
    that says how often it ran."""
    for image in frames:
        counted.seen += 1
        yield image


LOWER_RATES = [  # (clip, options, frames written, frames upscaled)
    (dict(frames=24), dict(fps=Fraction(2)), 2, 2),  # 1 s at 24 fps into 2 fps
    (dict(frames=12, rate=Fraction(60)), dict(fps=Fraction(30)), 6, 6),
    (dict(frames=8, frame_ms=[0, 40, 50, 130, 140, 300, 310, 420]), dict(fps=Fraction(10)), 5, 4),  # one frame twice
    (dict(frames=24), dict(fps=Fraction(7), start=Fraction(1, 10), duration=Fraction(1, 2)), 4, 4),
    (dict(frames=6, interlaced=True, height=32), dict(fps=Fraction(20), field_rate=True), 5, 5),
]


@pytest.mark.parametrize("clip, options, written, upscaled", LOWER_RATES)
def test_a_constant_rate_below_the_inputs_upscales_only_the_frames_it_shows(clip, options, written, upscaled,
                                                                             tmp_path):
    # found by a performance review: --fps 2 on a 24 fps clip upscaled all 24 frames
    # a second to write 2 of them, and 60 to 30 fps twice the frames it needed
    src = make_clip(tmp_path / "in.mp4", **clip)
    counted.seen = 0
    assert upscale_video(src, tmp_path / "out.mkv", counted, EncodeOptions(**options)) == written
    assert counted.seen == upscaled


def test_a_constant_rate_writes_as_many_frames_whatever_the_pictures_at_the_same_times(tmp_path):
    # found by QA: these times gave 4 frames at 10 fps for moving pictures and 5 for
    # flat colours; the test clips' mp4 put decoding-order durations on the frames
    # (with B-frames for the moving ones only), so the last frame lasted 10 ms or 42
    ms = [0, 40, 50, 130, 140, 300, 310, 420]
    moving = make_clip(tmp_path / "moving.mp4", frames=len(ms), frame_ms=ms, audio=None)
    flat = make_clip(tmp_path / "flat.mp4", frames=len(ms), frame_ms=ms, audio=None,
                     colours=[(200, 30, 30), (30, 200, 30)])
    options = EncodeOptions(fps=Fraction(10))
    # slots 0-4: the last frame, at 0.42 s, lasts to 0.46 s, past slot 4's half
    assert upscale_video(moving, tmp_path / "moving.mkv", lambda frames: frames, options) == 5
    assert upscale_video(flat, tmp_path / "flat.mkv", lambda frames: frames, options) == 5


def test_a_constant_rate_ends_a_variable_rate_mp4_with_b_frames_where_its_track_ends(tmp_path):
    # found by QA: an mp4 states each frame's duration as the time to the next frame
    # decoded, not shown: the last frame shown (0.71 s), decoded before the one shown
    # at 0.7 s, lasted 0.1 s, and 20 fps wrote 16 frames, 0.8 s of a 0.75 s video
    ms = [0, 100, 200, 300, 400, 500, 600, 700, 710]
    clip = make_clip(tmp_path / "vfr.mp4", frames=len(ms), frame_ms=ms, audio=None, b_frames=3)
    with av.open(str(clip)) as c:
        stream = c.streams.video[0]
        order = [p.pts for p in c.demux(stream) if p.pts is not None]
        assert order != sorted(order)  # frames decoded out of the order shown
        assert float((stream.start_time + stream.duration) * stream.time_base) == pytest.approx(0.75, abs=0.005)
    with av.open(str(clip)) as c:
        last = max(c.decode(video=0), key=lambda f: f.pts)
        assert float(last.duration * last.time_base) == pytest.approx(0.1)  # the gap of 0.6 s to 0.7 s
    assert upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(fps=Fraction(20))) == 15


@pytest.mark.parametrize("suffix, fps, written", [(".mp4", 10, 10), (".mkv", 20, 20)])
def test_a_constant_rate_ends_a_part_where_it_was_asked_to_end(suffix, fps, written, tmp_path):
    # found by QA: a part of 1 s at 10 fps was 3 s long, its last frame (at 0.9 s)
    # held until the next one, at 3 s; and at 20 fps from an mkv, which states a
    # frame's nominal duration, 0.95 s long
    clip = make_clip(tmp_path / f"vfr{suffix}", frames=4, frame_ms=[0, 100, 900, 3000], audio=None)
    options = EncodeOptions(fps=Fraction(fps), duration=Fraction(1))
    assert upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, options) == written


def test_the_last_line_says_no_more_frames_upscaled_than_a_lower_rate_shows(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=24, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--fps", "2")
    assert re.search(r": 2 frames in [\d.]+ s \([\d.]+ fps\)\n", proc.stderr), proc.stderr


def lossless_frames(path):
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


# Which of the input's frames (as they are written without --fps) each slot showed
# when every frame was upscaled, before those no slot takes were left out.
SLOTS_TAKEN = [
    (dict(frames=24), dict(fps=Fraction(2)), [5, 17]),
    (dict(frames=12, rate=Fraction(60)), dict(fps=Fraction(30)), [0, 2, 4, 6, 8, 10]),
    (dict(frames=6), dict(fps=Fraction(8)), [1, 4]),
    (dict(frames=6), dict(fps=Fraction(60)), [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5]),
    (dict(frames=8, frame_ms=[0, 40, 50, 130, 140, 300, 310, 420]), dict(fps=Fraction(10)), [1, 4, 4, 6, 7]),
    (dict(frames=8, frame_ms=[0, 40, 50, 130, 140, 300, 310, 420]), dict(fps=Fraction(50)),
     [0, 0, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6, 6, 6, 6, 6, 7, 7]),
    (dict(frames=24), dict(fps=Fraction(7), start=Fraction(1, 10), duration=Fraction(1, 2)), [1, 5, 8, 11]),
    (dict(frames=12), dict(fps=Fraction(30), start=Fraction(3, 40), duration=Fraction(1, 5)), [0, 1, 1, 2, 3, 4]),
    (dict(frames=6, interlaced=True, height=32), dict(fps=Fraction(30), field_rate=True),
     [0, 2, 3, 5, 7, 8, 10, 11]),
    (dict(frames=6, interlaced=True, height=32), dict(fps=Fraction(20), field_rate=True), [1, 3, 5, 8, 10]),
    (dict(frames=1), dict(fps=Fraction(2)), [0]),
    (dict(frames=3), dict(fps=Fraction(2)), [2]),  # shorter than half a slot: its last frame
    (dict(frames=24, audio=None), dict(fps=Fraction(5)), [2, 7, 11, 16, 21]),
]


@pytest.mark.parametrize("clip, options, taken", SLOTS_TAKEN)
def test_a_constant_rate_shows_the_frames_it_showed_when_it_upscaled_them_all(clip, options, taken, tmp_path):
    # Frames of one flat colour each (a moving bar for fields), written losslessly:
    # each slot's picture is, bit for bit, one of the frames written without --fps.
    if not clip.get("interlaced"):
        clip = dict(clip, colours=[(10 * i, 255 - 10 * i, 70 * i % 256) for i in range(clip["frames"])])
    src = make_clip(tmp_path / "in.mp4", **clip)
    lossless = dict(codec="ffv1", pix_fmt="bgr0")
    every = dict(options, fps=None)
    upscale_video(src, tmp_path / "every.mkv", lambda frames: frames, EncodeOptions(**every, **lossless))
    upscale_video(src, tmp_path / "slots.mkv", lambda frames: frames, EncodeOptions(**options, **lossless))
    reference = [image for _, image in lossless_frames(tmp_path / "every.mkv")]
    shown = lossless_frames(tmp_path / "slots.mkv")
    assert [[i for i, image in enumerate(reference) if np.array_equal(image, got)] for _, got in shown] \
        == [[i] for i in taken]
    times = [t for t, _ in shown]
    assert times == pytest.approx([times[0] + k / options["fps"] for k in range(len(taken))], abs=1e-3)


def test_encoder_options_are_used(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "a.mp4", *X2, "--crf", "30", "--preset", "veryfast")
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "b.mkv", *X2, "--codec", "mpeg4", "--bitrate", "200000",
        "--pix-fmt", "yuv420p")
    with av.open(str(tmp_path / "b.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"


@pytest.mark.parametrize("codec", ["mpeg4", "mpeg2video"])
def test_an_encoder_without_a_crf_gets_a_fixed_quantiser_by_default(codec, tmp_path):
    # Without a --bitrate MPEG-4 and MPEG-2 ran at FFmpeg's 200 kb/s, unsaid: an
    # upscaled picture came out in blocks. By default they now keep a fixed quantiser,
    # close to what a generous bitrate gives; --bitrate still sets the rate.
    clip = tmp_path / "in.mkv"  # noise, which the rate held at 200 kb/s cannot keep
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        rng = np.random.default_rng(1)
        pictures = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(3)]
        encode_all(out, stream, [av.VideoFrame.from_ndarray(p, format="rgb24") for p in pictures])
    outs = {}
    for name, more in (("default", []), ("rich", ["--bitrate", "40M"]), ("poor", ["--bitrate", "100k"])):
        outs[name] = tmp_path / f"{name}.mkv"
        run(NCNN_SR, "video", "-i", clip, "-o", outs[name], *X2, "--codec", codec, *more)

    def frames(path):
        with av.open(str(path)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)

    def psnr(a, b):
        return 10 * np.log10(255 ** 2 / np.mean((a - b) ** 2))

    rich = frames(outs["rich"])
    default = psnr(frames(outs["default"]), rich)
    assert default > 30 and psnr(frames(outs["poor"]), rich) < default - 3  # --bitrate still counts


@pytest.mark.parametrize("codec", ["libx264", "h264", "libx265", "hevc"])
def test_the_default_crf_holds_for_an_encoder_named_by_its_codec(codec, tmp_path):
    # --codec h264 (FFmpeg's name for what libx264 encodes) was written at x264's own
    # crf 23, hevc at x265's 28: the default of 18 went only to the library names.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    upscale_video(clip, tmp_path / "out.mkv", doubled, EncodeOptions(codec=codec))
    # x264 and x265 write their settings into the stream, as text.
    assert b"crf=18.0" in (tmp_path / "out.mkv").read_bytes()


@pytest.mark.parametrize("name", ["out.mp4", "out.mov"])
def test_hevc_in_an_mp4_or_mov_is_tagged_hvc1_as_apples_players_need(name, tmp_path):
    # FFmpeg tags it hev1 by default, which QuickTime, Safari and iOS do not play
    # (ffmpeg's users add -tag:v hvc1).
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None)
    assert upscale_video(clip, tmp_path / name, doubled, EncodeOptions(codec="libx265")) == 3
    with av.open(str(tmp_path / name)) as c:
        assert c.streams.video[0].codec_tag == "hvc1"
        assert len(list(c.decode(video=0))) == 3


@pytest.mark.parametrize("frames, bframes", [(1, 0), (2, 0), (3, 4)])
def test_x265_encodes_a_clip_of_one_or_two_frames_without_b_frames(frames, bframes, tmp_path):
    # With B-frames x265 gave such a clip's packets decode times it never set
    # (valgrind: read from uninitialised memory), and the muxer refused some of them
    # as "Invalid argument", depending on what that memory held.
    clip = make_clip(tmp_path / "in.mp4", frames=frames, audio=None)
    assert upscale_video(clip, tmp_path / "out.mkv", doubled, EncodeOptions(codec="libx265")) == frames
    assert f" bframes={bframes} ".encode() in (tmp_path / "out.mkv").read_bytes()  # x265 writes its settings into the stream


def test_the_last_line_says_how_many_frames_were_upscaled_where_fps_repeats_some(tmp_path):
    # found by a README audit: "wrote out.mkv: 2 frames in 3.6 s (6.64 fps)" for 24
    # frames upscaled into 2 at --fps 2, a rate that the 2 frames cannot have made
    # (frames no slot shows are no longer upscaled; a higher rate still repeats them)
    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=None, colours=[(40 * i, 200, 100) for i in range(6)])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--fps", "48")
    assert re.search(rf"wrote {re.escape(str(tmp_path / 'out.mkv'))}: 12 frames in [\d.]+ s \(6 upscaled, "
                     r"[\d.]+ fps\)\n", proc.stderr), proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "same.mkv", *X2)
    assert re.search(r": 6 frames in [\d.]+ s \([\d.]+ fps\)\n", proc.stderr), proc.stderr


def test_a_video_of_one_frame_is_written_and_said_to_be_one(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=1)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert f"wrote {tmp_path / 'out.mp4'}: 1 frame in " in proc.stderr  # not "1 frames"
    assert frame_times(tmp_path / "out.mp4") == ([0.0], (64, 48))


def test_x265_counts_the_frames_it_writes_at_another_rate(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None)  # 24 fps: 2 frames at 12
    assert upscale_video(clip, tmp_path / "out.mkv", doubled, EncodeOptions(codec="libx265", fps=Fraction(12))) == 2
    assert b" bframes=0 " in (tmp_path / "out.mkv").read_bytes()


@pytest.mark.parametrize("width", [20, 24])
def test_x265_writes_frames_48_pixels_wide_or_less_without_corrupting_its_memory(width, tmp_path):
    # x265's cuTree wrote past a buffer of one int per 16 pixels across (valgrind:
    # Lookahead::cuTree, into Lookahead::create's allocation) in frames up to 48
    # pixels wide: flat 40- and 48-pixel-wide frames aborted the process ("corrupted
    # size vs. prev_size") and left the temporary file behind.
    clip = make_clip(tmp_path / "in.mp4", frames=4, width=width, height=16, colours=[(200, 30, 30), (30, 200, 30)],
                     audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "libx265", "-q",
               check_ok=False)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert frame_times(tmp_path / "out.mkv")[1] == (2 * width, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mkv"]
    assert b" no-cutree " in (tmp_path / "out.mkv").read_bytes()


@pytest.mark.parametrize("width, height", [(64, 8), (8, 64)])
def test_svt_av1_finishes_frames_24_pixels_or_fewer_across_and_over_64_the_other_way(width, height, tmp_path):
    # SVT-AV1 on threads never gave back a packet of such frames (128x16 here, as
    # 16x128): the command hung as it flushed the encoder at the video's end. The
    # timeout keeps a hang a failure.
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=width, height=height, audio=None)
    proc = subprocess.run([NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "libsvtav1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    times, size = frame_times(tmp_path / "out.mkv")
    assert size == (2 * width, 2 * height) and len(times) == 3


@pytest.mark.parametrize("codec, name", [("libx265", "out.mkv"), ("libsvtav1", "out.mp4")])
def test_quiet_keeps_the_encoders_own_logs_out_too(codec, name, tmp_path):
    # x265 and SVT-AV1 print their banners, settings and statistics straight to
    # stderr, past FFmpeg's log: some 25 lines under -q, which promises errors only.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", codec, "-q")
    assert proc.stderr == ""
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", codec)
    assert all(line.startswith("ncnn-sr: ") for line in proc.stderr.splitlines()), proc.stderr


def test_sizes_a_subsampled_format_cannot_hold_are_cropped_to_even(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, "--width", "51")
    assert "even sides" in proc.stderr
    assert frame_times(tmp_path / "out.mp4")[1] == (50, 38)
    assert encodable_size(51, 37, "yuv420p") == (50, 36) and encodable_size(51, 37, "yuv444p") == (51, 37)


@pytest.mark.parametrize("pix_fmt, size, said", [("yuvj420p", (50, 38), "yuvj420p needs even sides: cropping 51x39"),
                                                  ("yuv422p", (50, 39), "yuv422p needs an even width: cropping 51x39")])
def test_sizes_any_subsampled_format_cannot_hold_are_cropped_to_what_it_can(pix_fmt, size, said, tmp_path):
    # Only names starting yuv420/yuv422 were cropped: --pix-fmt yuvj420p on an odd
    # size failed in x264 as "Generic error in an external library"; 4:2:2, which
    # halves only the width, lost a line of an odd height too.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--width", "51", "--height", "39",
               "--pix-fmt", pix_fmt)
    assert said in proc.stderr
    assert frame_times(tmp_path / "out.mkv")[1] == size
    assert encodable_size(51, 37, "yuv411p") == (48, 37) and encodable_size(51, 37, "p010le") == (50, 36)


@pytest.mark.parametrize("codec, name", [("ffv1", "out.mkv"), ("libvpx-vp9", "out.webm"), ("mpeg4", "out.mp4")])
def test_encoders_that_code_odd_sides_keep_them(codec, name, tmp_path):
    # Only x264 and x265 refuse 4:2:0 frames of odd sides: VP9, FFV1, MPEG-4 and more
    # code them, their chroma rounded up, and an FFV1 archive 51 px wide came out 50.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--width", "51", "--height", "39",
               "--codec", codec)
    assert "needs even" not in proc.stderr
    assert frame_times(tmp_path / name)[1] == (51, 39)
    assert encoded_size(51, 39, "yuv420p", "libx264") == (50, 38)


def test_frames_smaller_than_the_pixel_format_allows_are_padded_with_a_warning_saying_so(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, "--width", "1", "--height", "1")
    assert "yuv420p needs even sides of at least 2 pixels: padding 1x1 frames to 2x2" in proc.stderr
    assert frame_times(tmp_path / "out.mp4")[1] == (2, 2)


needs_display_matrix = pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="tagging a clip with a display matrix needs PyAV's VideoStream.set_display_rotation")


def display_rotation(path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).rotation


@needs_display_matrix
def test_a_rotated_video_is_upscaled_upright_and_needs_no_rotation_tag(tmp_path):
    clip = make_clip(tmp_path / "portrait.mp4", frames=3, rotation=-90)
    assert display_rotation(clip) == -90 and frame_times(clip)[1] == (32, 24)  # stored sideways, shown 24x32
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert frame_times(tmp_path / "out.mp4")[1] == (48, 64)
    assert display_rotation(tmp_path / "out.mp4") == 0


@needs_display_matrix
@pytest.mark.parametrize("rotation,hflip", [(90, False), (-90, False), (180, False), (0, True), (90, True),
                                            (-90, True), (180, True)])
def test_frames_reach_the_upscaler_as_players_show_them(rotation, hflip, tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=2, audio=None, rotation=rotation, hflip=hflip)
    # What the display matrix asks of players: turn counterclockwise, then mirror.
    shown = [np.rot90(a, rotation // 90)[:, ::-1 if hflip else 1] for a in stored_frames(clip)]
    seen = frames_seen(clip, tmp_path / "out.mkv")
    assert len(seen) == len(shown) and all(np.array_equal(a, b) for a, b in zip(seen, shown))



def test_a_display_orientation_message_on_a_first_frame_turns_the_frames_after_it_too(tmp_path):
    # found by QA: H.264's message holds until the next, but FFmpeg gives its matrix
    # to the frame it comes with alone: the first frame came out upside down to the
    # others, without a word.
    clip = make_turning_stream(tmp_path / "in.h264", [180, 0])
    stored = stored_frames(clip)
    assert [f.side_data.get("DISPLAYMATRIX") is not None for f in av.open(str(clip)).decode(video=0)] \
        == [True] + [False] * 5
    seen = frames_seen(clip, tmp_path / "out.mkv")
    assert all(np.array_equal(a, np.rot90(b, 2)) for a, b in zip(seen[:3], stored[:3]))
    assert all(np.array_equal(a, b) for a, b in zip(seen[3:], stored[3:]))  # the part without one: as stored


def test_a_display_matrix_that_changes_midway_is_followed_with_a_warning(tmp_path):
    # A phone turned midway: the frames shown the other way were scaled to the first
    # ones' shape with a warning of a size change alone, which said nothing of why.
    clip = make_turning_stream(tmp_path / "in.h264", [180, 90])
    proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", tmp_path / "out.mkv", *X2], input=clip.read_bytes(),
                          capture_output=True, timeout=300)  # through a pipe, which is looked at once
    assert proc.returncode == 0, proc.stderr
    proc.stderr = proc.stderr.decode()
    assert proc.stderr.count("its display matrix changes midway") == 1, proc.stderr
    assert "from a turn of 180 degrees to 90" in proc.stderr
    assert "its frames change size midway, from 32x16 to 16x32 at frame 3" in proc.stderr
    assert frame_times(tmp_path / "out.mkv")[1] == (64, 32) and len(stored_frames(tmp_path / "out.mkv")) == 6


def frames_seen(clip, out):
    """The frames ``upscale_video`` hands the upscaler for ``clip``, written to ``out``."""
    seen = []

    def recorded(frames):
        for f in frames:
            seen.append(f)
            yield f

    upscale_video(clip, out, recorded)
    return seen


def stored_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("clockwise", [90, 180, 270, -90])
def test_a_rotate_tag_without_a_display_matrix_turns_the_frames_clockwise(clockwise, tmp_path):
    plain = make_clip(tmp_path / "plain.mkv", frames=2, audio=None)
    clip = remux_with(plain, tmp_path / "in.mkv", stream_tags={0: {"rotate": str(clockwise)}})
    shown = [np.rot90(a, -clockwise // 90) for a in stored_frames(clip)]
    seen = frames_seen(clip, tmp_path / "out.mkv")
    assert len(seen) == len(shown) and all(np.array_equal(a, b) for a, b in zip(seen, shown))


def test_a_video_rotated_by_its_tag_is_upscaled_upright_and_the_tag_left_out(tmp_path):
    plain = make_clip(tmp_path / "plain.mkv", frames=3, audio=None)
    clip = remux_with(plain, tmp_path / "in.mkv", stream_tags={0: {"rotate": "90"}})
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert frame_times(tmp_path / "out.mkv")[1] == (48, 64)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert not any(key.lower() == "rotate" for key in c.streams.video[0].metadata)


@needs_display_matrix
def test_a_display_matrix_and_a_rotate_tag_turn_the_frames_once(tmp_path):
    sideways = make_clip(tmp_path / "sideways.mkv", frames=2, audio=None, rotation=-90)
    clip = remux_with(sideways, tmp_path / "in.mkv", stream_tags={0: {"rotate": "90"}})
    assert display_rotation(clip) == -90  # the matrix is still there, next to the tag
    shown = [np.rot90(a, -1) for a in stored_frames(clip)]
    seen = frames_seen(clip, tmp_path / "out.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(seen, shown))


def aspect(path):
    """(sample, display) aspect ratios of the first video stream, as players guess them;
    None for one unstated (PyAV 18's None, 19's 0/1)."""
    with av.open(str(path)) as c:
        return c.streams.video[0].sample_aspect_ratio or None, c.streams.video[0].display_aspect_ratio or None


DVD_WIDE = Fraction(32, 27)  # NTSC DVD's 720x480 samples shown at 16:9


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_an_anamorphic_video_keeps_its_sample_aspect_ratio(suffix, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None, sar=DVD_WIDE)
    assert aspect(clip) == (DVD_WIDE, Fraction(128, 81))  # the fixture holds what it says
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert frame_times(out)[1] == (64, 48) and aspect(out) == aspect(clip)


@needs_display_matrix
def test_an_anamorphic_video_turned_upright_gets_the_aspect_of_its_turned_samples(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None, sar=DVD_WIDE, rotation=-90)
    upscale_video(clip, tmp_path / "out.mp4", doubled)
    assert aspect(tmp_path / "out.mp4") == (1 / DVD_WIDE, Fraction(81, 128))


def stretched(frames):
    for f in frames:
        yield f.repeat(2, axis=0).repeat(4, axis=1)


def test_anamorphic_frames_stretched_unevenly_keep_their_display_aspect(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None, sar=DVD_WIDE)
    upscale_video(clip, tmp_path / "out.mp4", stretched)
    assert aspect(tmp_path / "out.mp4") == (DVD_WIDE / 2, Fraction(128, 81))


def test_square_samples_stretched_on_purpose_stay_stretched(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    upscale_video(clip, tmp_path / "out.mp4", stretched)
    assert aspect(tmp_path / "out.mp4") == (None, None)


@pytest.mark.parametrize("sar,size,name", [(DVD_WIDE, None, "out.webm"), (Fraction(8, 9), None, "out.webm"),
                                           (DVD_WIDE, (90, 60), "out.webm"), (DVD_WIDE, (90, 60), "out.mkv")])
def test_anamorphic_frames_where_the_output_holds_no_aspect_are_stretched_to_square_samples(tmp_path, caplog, sar,
                                                                                         size, name):
    # 16:9 and 4:3 NTSC DVDs; 90x60 at 32:27 doubled wants 213.3 px: 213 in VP9, which
    # codes odd sides, and in ProRes 4:2:2, which needs an even width, the even 214,
    # not 213 cropped to 212.
    kw = {} if size is None else {"width": size[0], "height": size[1]}
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None, sar=sar, **kw)
    with av.open(str(clip)) as c:
        w, h = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    prores = name == "out.mkv"
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / name, doubled, EncodeOptions(codec="prores_ks") if prores else EncodeOptions())
    wide, tall = (round(2 * w * sar), 2 * h) if sar > 1 else (2 * w, round(2 * h / sar))
    if prores:
        wide = 2 * round(w * sar)
    with av.open(str(tmp_path / name)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (wide, tall)
        assert (v.sample_aspect_ratio or 1) == 1  # PyAV 19 gives 0/1 for an unstated one, 18 None
    # Shown at the input's shape: its display aspect, to a pixel's rounding.
    assert abs(Fraction(wide, tall) - Fraction(w, h) * sar) < Fraction(1, tall)
    assert "holds no sample aspect ratio: its frames are stretched" in caplog.text
    assert "WARNING" not in caplog.text


@pytest.mark.parametrize("keep, expected", [("width", (64, 40)), ("height", (76, 48)), ("both", (64, 48))])
def test_a_side_asked_for_stays_as_asked_where_frames_are_stretched(tmp_path, caplog, keep, expected):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None, sar=DVD_WIDE)  # 32x24, doubled
    options = EncodeOptions(keep_width=keep in ("width", "both"), keep_height=keep in ("height", "both"))
    with caplog.at_level(logging.INFO, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.webm", doubled, options)
    with av.open(str(tmp_path / "out.webm")) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == expected
    assert ("plays with square samples" in caplog.text or "play with square samples" in caplog.text) == \
        (keep == "both")


PURE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (16, 128, 200), (250, 200, 40)]


def colour_tags(path):
    """(matrix, primaries, transfer, range) of the first video stream, as H.273 numbers
    them (1 is BT.709 throughout, 2 unspecified; range 1 is limited, 2 full)."""
    with av.open(str(path)) as c:
        ctx = c.streams.video[0].codec_context
        return ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range


def shown_colours(path, matrix=None):
    """The colour at the centre of each frame, decoded to RGB as a player that honours
    the tags would (PyAV hands them to swscale), or with ``matrix`` whatever they say."""
    forced = {} if matrix is None else {"src_colorspace": matrix}
    with av.open(str(path)) as c:
        return np.array([f.to_ndarray(format="rgb24", **forced)[12, 16] for f in c.decode(video=0)], dtype=int)


# A colour survives decoding, coding in YUV 4:2:0 and encoding within this many levels.
LEVELS = 4


@pytest.mark.parametrize("matrix", ["bt709", "bt601"])
def test_a_tagged_video_keeps_its_matrix_its_tags_and_its_colours(matrix, tmp_path):
    clip = make_clip(tmp_path / "in.mkv", audio=None, colours=PURE, matrix=matrix)
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    assert colour_tags(tmp_path / "out.mkv") == colour_tags(clip) != (2, 2, 2, 0)
    assert np.abs(shown_colours(tmp_path / "out.mkv") - np.array(PURE)).max() <= LEVELS


def test_an_untagged_video_comes_out_coded_and_tagged_bt709(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", audio=None, colours=PURE)
    assert colour_tags(clip) == (2, 2, 2, 0)
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    assert colour_tags(tmp_path / "out.mkv") == (1, 1, 1, 1)
    shown = shown_colours(tmp_path / "out.mkv", Colorspace.ITU709)
    assert np.abs(shown - shown_colours(clip)).max() <= LEVELS


def test_a_full_range_video_comes_out_in_limited_range_with_its_colours(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", audio=None, colours=PURE, matrix="bt709", full_range=True)
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    assert colour_tags(tmp_path / "out.mkv") == (1, 1, 1, 1)
    assert np.abs(shown_colours(tmp_path / "out.mkv") - np.array(PURE)).max() <= LEVELS


@pytest.mark.parametrize("width,tag,coded_with", [
    (1280, 2, Colorspace.ITU709),
    (32, 2, Colorspace.ITU601),
    (1280, 3, Colorspace.ITU709),
], ids=["hd", "sd", "hd-reserved-tag"])
def test_frames_without_a_matrix_tag_are_read_with_the_one_players_assume_for_their_size(width, tag, coded_with):
    from ncnn_sr import video_frames

    green = np.zeros((2, width, 3), np.uint8)
    green[..., 1] = 255
    frame = av.VideoFrame.from_ndarray(green, format="rgb24").reformat(format="yuv444p", dst_colorspace=coded_with)
    frame.colorspace, frame.color_range = tag, 0
    assert np.abs(video_frames.to_rgb(frame).astype(int) - green).max() <= 2


@pytest.mark.parametrize("matrix,primaries,transfer,pix_fmt,expected", [
    (9, 9, 16, "yuv420p10le", (9, 9, 16, ColorRange.MPEG)),
    (8, 1, 13, "yuv420p", (1, 1, 13, ColorRange.MPEG)),
    (2, 2, 2, "yuvj420p", (1, 1, 1, ColorRange.JPEG)),
    (1, 1, 1, "bgr0", (0, 1, 1, ColorRange.UNSPECIFIED)),
], ids=["hdr10-stays-bt2020-pq", "ycgco-swscale-cannot-code-becomes-bt709", "yuvj-is-full-range",
        "rgb-has-no-matrix"])
def test_the_output_is_coded_and_tagged_as_its_input_where_it_can_be(matrix, primaries, transfer, pix_fmt,
                                                                     expected):
    source = SimpleNamespace(colorspace=matrix, color_primaries=primaries, color_trc=transfer)
    assert output_colour(source, pix_fmt) == ColourTags(*expected)


@pytest.mark.parametrize("matrix", [1, 5, 9])
def test_a_frame_is_coded_with_the_matrix_it_is_tagged_with(matrix):
    from ncnn_sr import video_frames

    colours = np.array(PURE, np.uint8).reshape(2, 3, 3).repeat(2, axis=0).repeat(2, axis=1)
    frame = video_frames.coded(colours, "yuv444p", ColourTags(matrix, 1, 1, ColorRange.MPEG))
    assert frame.colorspace == matrix
    assert np.abs(video_frames.to_rgb(frame).astype(int) - colours).max() <= LEVELS


def test_a_second_video_stream_is_dropped_with_a_warning(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=3, video_streams=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "dropping video stream 1: only video stream 0 is upscaled" in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert len(c.streams.video) == 1 and c.streams.audio


def test_a_video_stream_of_an_unknown_codec_gives_way_to_a_later_one_that_decodes(tmp_path):
    # found by a bug hunt: "cannot decode its video: FFmpeg knows no decoder for it",
    # though the file's second video stream could be upscaled
    clip = make_clip(tmp_path / "in.mkv", frames=3, video_streams=2, audio=None)
    data = clip.read_bytes()
    at = data.index(b"V_MPEG4/ISO/AVC")  # the first track's codec, renamed to one no one knows
    clip.write_bytes(data[:at] + b"V_MPEG4/ISO/XYZ" + data[at + 15:])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "dropping video stream 0: FFmpeg knows no codec for it" in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert len(c.streams.video) == 1 and len(list(c.decode(video=0))) == 3


def with_cover_art(src, dst, codec="mjpeg"):
    """``src``'s video and sound with an 8x8 JPEG (or PNG: ``codec`` png) attached as
    cover art (an mp4 puts it after them)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        cover = out.add_stream(codec, rate=1)
        cover.width = cover.height = 8
        cover.pix_fmt = "yuvj420p" if codec == "mjpeg" else "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        copies = {s.index: out.add_stream_from_template(s) for s in (*inp.streams.video[:1], *inp.streams.audio)}
        for packet in cover.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")):
            out.mux(packet)
        for packet in inp.demux(*(inp.streams[i] for i in copies)):
            if packet.dts is not None:
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
    return dst


def _cover_bytes(path):
    """The bytes of each attached picture of ``path``, and its video streams' dispositions."""
    with av.open(str(path)) as c:
        pictures = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        return [bytes(next(c.demux(s))) for s in pictures], [s.disposition for s in c.streams.video]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".m4v", ".mov"])
def test_cover_art_is_kept_as_it_is_where_the_output_holds_it(tmp_path, suffix):
    # found by a sweep: an mp4's cover was dropped, with a warning, even into an mp4;
    # and into a .m4v and a .mov, whose muxers write none
    clip = with_cover_art(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16), tmp_path / "in.mp4")
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "cover art" not in proc.stderr
    covers, dispositions = _cover_bytes(out)
    assert covers == _cover_bytes(clip)[0]  # copied, not re-encoded
    # Players still take the upscaled video: the first video stream, the default one.
    assert dispositions[0] == av.stream.Disposition.default
    assert dispositions[1:] == [av.stream.Disposition.attached_pic]
    assert frame_times(out)[1] == (32, 32)
    assert [data for _, data in packets(out, "audio")] == [data for _, data in packets(clip, "audio")]
    with av.open(str(out)) as c:
        if suffix == ".mkv":  # as Matroska's cover art: an attachment named so
            assert c.streams.video[1].metadata["filename"] == "cover.jpg"
        if suffix in (".m4v", ".mov"):  # still written by the muxer of the name's: an iPod's brand, QuickTime's
            assert c.metadata["major_brand"] == {".m4v": "M4V ", ".mov": "qt  "}[suffix]
    assert not list(tmp_path.glob(".*ncnn-sr-part*"))


@pytest.mark.parametrize("suffix", [".m4v", ".mov"])
def test_a_png_cover_is_kept_as_a_png(tmp_path, suffix):
    clip = with_cover_art(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16, audio=None),
                          tmp_path / "in.mp4", codec="png")
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert _cover_bytes(out)[0] == _cover_bytes(clip)[0]
    with av.open(str(out)) as c:
        assert c.streams.video[1].codec_context.name == "png"


@pytest.mark.parametrize("suffix", [".m4v", ".mov"])
def test_a_video_without_cover_art_gets_none(tmp_path, suffix):
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=16, height=16)
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert _cover_bytes(out) == ([], [av.stream.Disposition.default])
    assert b"covr" not in out.read_bytes()


def test_a_cover_read_apart_belongs_to_a_stream_still_open(tmp_path):
    # found by review: the packet of a cover read from the file opened again kept the
    # stream of that copy, closed at once: its index read back as freed memory.
    from ncnn_sr.video_streams import _picture

    clip = with_cover_art(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16), tmp_path / "in.mp4")
    with av.open(str(clip)) as inp:
        cover = next(s for s in inp.streams.video if s.disposition & av.stream.Disposition.attached_pic)
        packet = _picture(inp, cover, reopen=True)
        assert packet.stream.container is inp
        assert bytes(packet) == _cover_bytes(clip)[0][0]


@pytest.mark.parametrize("suffix", [".3gp", ".webm"])
def test_cover_art_is_named_as_such_when_dropped(tmp_path, suffix):
    # A .3gp takes neither JPEG nor PNG (its muxer's codec list), and its tags are 3GPP's own.
    clip = with_cover_art(make_clip(tmp_path / "plain.mp4", frames=3, width=16, height=16, audio=None),
                          tmp_path / "in.mp4")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / f"out{suffix}", *X2)
    assert (f"{suffix} cannot hold mjpeg cover art: dropping stream 1, a picture attached to the file"
            " (an .mp4 or .mkv output keeps it)") in proc.stderr
    with av.open(str(tmp_path / f"out{suffix}")) as c:
        assert [(s.width, s.height) for s in c.streams.video] == [(32, 32)]


def test_the_video_upscaled_is_never_a_cover_picture_listed_first():
    from ncnn_sr.video_input import _video_stream

    class Stream:
        def __init__(self, disposition):
            self.disposition = disposition
            self.codec_context = SimpleNamespace()  # a decoder FFmpeg has
            self.frames, self.duration = 24, 12288  # a track's: no still picture of an AVIF

    class Container:
        format = SimpleNamespace(name="mov,mp4,m4a,3gp,3g2,mj2")

        class streams:
            video = [Stream(av.stream.Disposition.attached_pic), Stream(av.stream.Disposition.default)]

    assert _video_stream(Container, "in.mp4") is Container.streams.video[1]
    Container.streams.video = Container.streams.video[:1]
    with pytest.raises(InputError, match="has no video stream, only a cover picture"):
        _video_stream(Container, "in.mp4")


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_cover_art_kept_as_a_matroska_track_is_cover_art_not_the_video(tmp_path, first, suffix):
    # found by an audit: FFmpeg's Matroska muxer writes an mp4's cover art (ffmpeg -i
    # in.mp4 -c copy out.mkv) as a JPEG track of one frame, read back as a video stream
    # like any other; listed first, its one 8x8 picture was upscaled and the video left out.
    clip, picture = _cover_track_clip(tmp_path, first)
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    _check_cover_track_kept(proc, clip, out, picture, suffix)


def _cover_track_clip(tmp_path, first, frames=3, rate=Fraction(24)):
    """A .mkv of ``frames`` of 16x16 video at ``rate`` and its sound, with an mp4's
    cover art as FFmpeg's Matroska muxer keeps it, a JPEG track of one picture (listed
    ``first``, or after the others, as a remux of an mp4 has it); and its bytes."""
    plain = make_clip(tmp_path / "plain.mp4", frames=frames, width=16, height=16, rate=rate)
    if first:
        clip = with_cover_art(plain, tmp_path / "in.mkv")
    else:  # an mp4's cover comes after the video and sound, as a remux keeps it
        clip = remux_with(with_cover_art(plain, tmp_path / "in.mp4"), tmp_path / "in.mkv", dispositions={2: 0})
    with av.open(str(clip)) as c:  # not marked as a cover: a track
        assert [s.disposition & av.stream.Disposition.attached_pic for s in c.streams.video] == [0, 0]
        [cover] = [s for s in c.streams.video if s.codec_context.name == "mjpeg"]
        picture = bytes(next(c.demux(cover)))
    return clip, picture


def _check_cover_track_kept(proc, clip, out, picture, suffix, frames=3):
    """That the command ``proc`` upscaled the video of ``clip``, a ``_cover_track_clip``,
    into ``out`` (``frames`` of it: all of them, its sound copied), its cover
    ``picture`` kept as cover art, as it is."""
    assert "dropping" not in proc.stderr
    times, size = frame_times(out)
    assert (len(times), size) == (frames, (32, 32))
    covers, dispositions = _cover_bytes(out)
    assert covers == [picture]  # kept as cover art, as it is
    assert dispositions[1:] == [av.stream.Disposition.attached_pic]  # after the video
    if suffix == ".mkv":
        with av.open(str(out)) as c:
            assert c.streams.video[1].metadata["filename"] == "cover.jpg"
    if frames == 3:
        assert [data for _, data in packets(out, "audio")] == [data for _, data in packets(clip, "audio")]


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("suffix, given", [(".mp4", "pipe"), (".mkv", "pipe"), (".mp4", "file"),
                                           (".mp4", "file, a part")])
def test_a_cover_track_read_from_standard_input_is_cover_art_not_the_video(tmp_path, first, suffix, given):
    # found by review: a stream cannot be opened a second time to look for the cover
    # track's second picture, so a cover listed first was upscaled as the video (one
    # frame), and the video dropped. Its first packets are read ahead instead, then
    # read again by the run: from a pipe, and from standard input redirected from the
    # file, gone back in too (a part: the run then reads on from where it is sought to).
    part = given == "file, a part"
    clip, picture = _cover_track_clip(tmp_path, first, *((20, Fraction(4)) if part else ()))
    out = tmp_path / f"out{suffix}"
    with open(clip, "rb") as source:
        feed = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE) if given == "pipe" else None
        proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", out, *X2, *["--start", "3"] * part],
                              stdin=feed.stdout if feed else source, capture_output=True, text=True, timeout=300)
        if feed:
            feed.stdout.close()
            feed.wait()
    assert proc.returncode == 0, proc.stderr
    _check_cover_track_kept(proc, clip, out, picture, suffix, frames=8 if part else 3)


def test_a_matroska_video_of_one_jpeg_track_alone_is_still_upscaled(tmp_path):
    # A cover track is only told from the video beside it: alone, it is upscaled as before.
    clip = tmp_path / "in.mkv"
    with av.open(str(clip), "w") as out:
        still = out.add_stream("mjpeg", rate=1)
        still.width = still.height = 8
        still.pix_fmt = "yuvj420p"
        for packet in [*still.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")),
                       *still.encode()]:
            out.mux(packet)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert frame_times(tmp_path / "out.mkv")[1] == (16, 16)


def test_sound_that_starts_after_ffmpegs_first_look_is_kept(tmp_path):
    # found by an audit: an MPEG-TS whose first sound packet comes after the 5 s FFmpeg
    # reads to learn its streams' parameters had its sound dropped as "its header
    # states no channels, as a damaged file's does", though all of it decodes.
    clip = make_clip(tmp_path / "late.ts", frames=40, width=16, height=16, rate=Fraction(2))
    with av.open(str(clip)) as c:  # what FFmpeg's first look makes of it
        assert c.streams.audio[0].codec_context.layout.nb_channels == 0
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert "dropping" not in proc.stderr
    with av.open(str(tmp_path / "out.mp4")) as c:  # all 20 s of it
        assert sum(frame.samples for frame in c.decode(audio=0)) == pytest.approx(20 * 48000, abs=2048)
    # A pipe, read once, is not read again: said so.
    proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", tmp_path / "piped.mp4", *X2],
                          stdin=subprocess.Popen(["cat", clip], stdout=subprocess.PIPE).stdout,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("dropping audio stream 1: no channels stated in what FFmpeg read of it first, as a damaged "
            "file's header, or sound that starts late in a pipe, which is not read again (give it as a file)"
            ) in proc.stderr


def test_a_cut_off_video_is_upscaled_with_a_warning_that_it_may_be_truncated(tmp_path):
    # FFmpeg ends the streams of a cut-off file quietly, as if it were whole.
    whole = make_clip(tmp_path / "whole.mkv", frames=60).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[:len(whole) // 2])
    proc = run(NCNN_SR, "video", "-i", tmp_path / "cut.mkv", "-o", tmp_path / "out.mp4", *X2)
    warnings = [line for line in proc.stderr.splitlines() if "truncated" in line]
    assert len(warnings) == 1 and "cut.mkv ended at 1." in warnings[0], proc.stderr
    assert "s of the 2.5" in warnings[0] and "s its container gives: it may be truncated" in warnings[0]


@pytest.mark.parametrize("frames", [1, 3])
def test_a_short_mpeg_ts_whose_packets_state_no_duration_is_not_said_to_be_truncated(frames, tmp_path, caplog):
    # MPEG-TS states no length: FFmpeg measures it to the file's last timestamps, a
    # frame past where packets with no duration reach. 1 frame 'ended at 0.00 s of the
    # 0.00 s its container gives: it may be truncated', 3 at 0.08 s of 0.12 s.
    clip = make_clip(tmp_path / "in.ts", frames=frames, width=64, height=48, audio=None,
                     frame_ms=[40 * i for i in range(frames)])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions())
    assert "truncated" not in caplog.text
    assert len(frame_times(tmp_path / "out.mkv")[0]) == frames
    if frames == 1:
        proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "x2.mkv", *X2)
        assert "truncated" not in proc.stderr and ": 1 frame in " in proc.stderr, proc.stderr


@pytest.mark.parametrize("frames, rate", [(1, 24), (2, 50)])
def test_a_short_whole_matroska_video_with_aac_is_not_said_to_be_truncated(frames, rate, tmp_path, caplog):
    # AAC's priming packet, stamped 21 ms before 0, counts in Matroska's duration but
    # not in its streams' start: 1 frame at 24 fps 'ended at 0.04 s of the 0.06 s its
    # container gives: it may be truncated'.
    clip = make_clip(tmp_path / "in.mkv", frames=frames, rate=Fraction(rate))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions())
    assert "truncated" not in caplog.text
    assert len(frame_times(tmp_path / "out.mkv")[0]) == frames


def test_a_cut_off_matroska_video_that_starts_late_is_said_to_be_truncated(tmp_path):
    # Matroska's duration runs from 0, not from its first frame, at 10 s here.
    frame_ms = [10000 + 40 * i for i in range(60)]
    whole = make_clip(tmp_path / "whole.mkv", frames=60, frame_ms=frame_ms, audio=None).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[:len(whole) // 2])
    proc = run(NCNN_SR, "video", "-i", tmp_path / "cut.mkv", "-o", tmp_path / "out.mkv", *X2)
    assert "s of the 2.40 s its container gives: it may be truncated" in proc.stderr


def test_a_start_past_the_end_of_a_matroska_video_that_starts_late_is_one_line(tmp_path):
    clip = make_clip(tmp_path / "late.mkv", frames=4, frame_ms=[10000, 10040, 10080, 10120], audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--start", "1", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"ncnn-sr: error: {clip}: starting at 1 s (--start) is past its end, at 0.162 s"]


def test_a_part_the_video_has_not_names_encode_options_fields_to_the_library(tmp_path):
    # upscale_video's caller gave EncodeOptions(start=...), and was told "(--start)".
    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=None)
    with pytest.raises(InputError) as caught:
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames, EncodeOptions(start=5))
    assert str(caught.value) == f"{clip}: starting at 5 s (start) is past its end, at 0.250 s"
    with pytest.raises(InputError) as caught:
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames,
                      EncodeOptions(start=Fraction(249, 1000), duration=Fraction(1, 1000)))
    assert str(caught.value) == f"{clip}: no video frame from 0.249 s (start) on for 0.001 s (duration)"
    assert not [p.name for p in tmp_path.iterdir() if p.name != "in.mp4"]


def test_a_part_of_a_matroska_video_ffmpeg_gives_no_start_time_counts_from_its_first_frame(tmp_path):
    # Three frames with B-frames: FFmpeg reads no start time for it (the 4-frame one has 10 s).
    clip = make_clip(tmp_path / "late.mkv", frames=3, frame_ms=[10000, 10040, 10080], audio=None)
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(start=Fraction(1, 20)))
    assert len(frame_times(tmp_path / "out.mkv")[0]) == 1  # the frame at 10.08 s
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "past.mkv", "--start", "1", *X2, check_ok=False)
    assert proc.stderr.strip().splitlines() == [
        f"ncnn-sr: error: {clip}: starting at 1 s (--start) is past its end, at 0.122 s"]
    assert not (tmp_path / "past.mkv").exists()


def cut_within_last_packet(src, dst, kind: str):
    """``src`` remuxed as an mp4 with its index first (as a web video is), then cut off
    in the middle of its last packet of ``kind`` (video or audio), as a download cut
    short is: FFmpeg hands that packet out shorter than it was."""
    whole = dst.with_name("faststart.mp4")
    with av.open(str(src)) as inp, av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    with av.open(str(whole)) as c:
        last = max((p for p in c.demux() if p.size and p.stream.type == kind), key=lambda p: p.pos)
        end = last.pos + last.size // 2
    dst.write_bytes(whole.read_bytes()[:end])
    return dst


def test_a_video_cut_off_in_a_sound_packet_it_re_encodes_is_upscaled_with_a_warning(tmp_path):
    # The sound packet cut short cannot be decoded: the whole video failed as damaged,
    # naming --skip-damaged for a file that is only cut off.
    clip = cut_within_last_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "cut.mp4", "audio")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.webm", *X2)
    assert f"{clip} ends in a sound packet cut short, at " in proc.stderr
    assert "it may be truncated" in proc.stderr and "damaged" not in proc.stderr
    assert len(frame_times(tmp_path / "out.webm")[0]) == 12


def plain_decode(path) -> int:
    """The frames a plain, single-threaded PyAV decode gets from ``path``, over the
    packets the decoder refuses."""
    count = 0
    with av.open(str(path)) as c:
        for packet in c.demux(video=0):
            try:
                count += len(packet.decode())
            except av.error.InvalidDataError:
                pass
    return count


def test_a_video_cut_off_in_a_video_packet_keeps_every_frame_it_can_decode(tmp_path):
    # Frame-threaded decoding lost the frames still in its threads when the packet cut
    # short failed as they came out: 2 of 30, without a word. (Single-threaded, the
    # packet is refused as it is sent, and the rest come out.)
    clip = make_clip(tmp_path / "in.mp4", frames=30, width=64, height=48, audio=None)
    clip = cut_within_last_packet(clip, tmp_path / "cut.mp4", "video")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert len(frame_times(tmp_path / "out.mkv")[0]) == plain_decode(clip) == 29
    assert f"{clip} ends in a video packet cut short, at " in proc.stderr
    assert "it may be truncated" in proc.stderr and "damaged" not in proc.stderr


@pytest.mark.parametrize("garbage", [bytes(40), b"\xff" * 40, bytes.fromhex("ab1c12f6")],
                         ids=["invalid-data", "an-error-ffmpeg-has-no-name-for", "a-bare-minus-one"])
def test_a_damaged_sound_packet_the_video_goes_on_after_is_an_error_or_skipped(garbage, tmp_path):
    # The AAC decoder refuses bytes of 0xff with an error code of its own, which
    # --skip-damaged did not take for damage: the run stopped all the same. Some bytes
    # it refuses with a bare -1, AVERROR(EPERM) (found by the fuzzer): that stopped the
    # run too, as "cannot decode: Operation not permitted", blaming no damage.
    clip = make_clip(tmp_path / "in.mp4", frames=12)
    broken = tmp_path / "broken.mkv"
    with av.open(str(clip)) as inp, av.open(str(broken), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        sound = 0
        for packet in inp.demux():
            if not packet.size:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == "audio":
                sound += 1
                if sound == 3:  # a packet the AAC decoder refuses, with more sound after it
                    bad = av.Packet(garbage)
                    bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                    packet = bad
            packet.stream = target
            out.mux(packet)
    proc = run(NCNN_SR, "video", "-i", broken, "-o", tmp_path / "out.webm", *X2, check_ok=False)
    assert proc.returncode == 1 and f"{broken}: cannot decode: " in proc.stderr
    assert "(a damaged file? --skip-damaged upscales the rest)" in proc.stderr
    assert "not permitted" not in proc.stderr
    proc = run(NCNN_SR, "video", "-i", broken, "-o", tmp_path / "out.webm", "--skip-damaged", *X2)
    # found by the damage audit: the gap it left in the sound went unsaid
    assert f"{broken}: 1 damaged sound packet skipped (--skip-damaged): the sound has a gap there" in proc.stderr


def _sound_damaged_midway(clip: Path, dst: Path, garbage) -> tuple[float, bytes]:
    """``clip`` with the bytes of its middle sound packet overwritten in place, where
    ``garbage(packet)`` says, as a disk's bad sector does; where the packet starts
    (s from the clip's start), and its bytes as they were."""
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as c:
        origin = min(s.start_time * s.time_base for s in c.streams)
        sound = [p for p in c.demux(audio=0) if p.size]
        packet = sound[len(sound) // 2]
        at, given = float(packet.pts * packet.time_base - origin), bytes(packet)
    where = data.find(given)
    start, new = garbage(given)
    data[where + start:where + start + len(new)] = new
    dst.write_bytes(bytes(data))
    return at, given


def _random_bytes(given: bytes) -> tuple[int, bytes]:  # the whole packet
    return 0, np.random.default_rng(3).integers(0, 256, len(given), np.uint8).tobytes()


def _eight_bytes(given: bytes) -> tuple[int, bytes]:  # within the packet
    return len(given) // 2, b"\xa5" * 8


@pytest.mark.parametrize("name, codec, garbage", [
    ("in.mp4", "aac", _random_bytes), ("in.mkv", "libmp3lame", _random_bytes),
    ("in.mkv", "ac3", _eight_bytes), ("in.mp4", "flac", _eight_bytes),  # caught by their checksums
], ids=["aac", "mp3", "ac3", "flac"])
def test_a_damaged_sound_packet_copied_into_the_output_is_an_error_or_left_out(name, codec, garbage, tmp_path):
    # found by the damage audit: copied sound was never decoded, so a packet of it
    # overwritten midway went into the output as it was: exit 0, the sound garbled
    # or cut there (AC-3's and FLAC's decoders play past a checksum that fails).
    clip = tmp_path / name
    at, given = _sound_damaged_midway(make_clip(tmp_path / f"good{clip.suffix}", frames=24, audio=codec), clip,
                                      garbage)
    out = tmp_path / "out.mkv"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert re.search(rf"error: {re.escape(str(clip))}: cannot decode: its sound is damaged at {at:.2f} s \(its "
                     r"decoder refused a packet[^\n]*\) \(a damaged file\? --skip-damaged upscales the rest\)\n$",
                     proc.stderr), proc.stderr
    assert not out.exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, "--skip-damaged", *X2)
    assert f"{clip}: 1 damaged sound packet skipped (--skip-damaged): the sound has a gap there" in proc.stderr
    assert audio_stream(out)[0] == audio_stream(clip)[0]  # copied, not re-encoded
    kept = [bytes_ for _, bytes_ in packets(clip, "audio")]
    assert [bytes_ for _, bytes_ in packets(out, "audio")] == [b for b in kept if b != kept[len(kept) // 2]]
    assert given not in kept  # the fixture is damaged as it says


@pytest.mark.parametrize("name, codec, start", [
    (name, codec, start) for name, codec in [("in.mp4", "aac"), ("in.mkv", "aac"), ("in.webm", "libopus"),
                                             ("in.mkv", "libopus"), ("in.mkv", "libmp3lame"),
                                             ("in.mp4", "libmp3lame"), ("in.mkv", "ac3"), ("in.mp4", "ac3"),
                                             ("in.mkv", "flac"), ("in.mp4", "flac")]
    for start in ([], ["--start", "0.3"])])
def test_whole_sound_of_each_codec_copied_is_not_called_damaged(name, codec, start, tmp_path):
    # Each packet of copied sound is decoded, to find damage: not a decoder's priming,
    # an encoder's padding, the last packet's few samples, nor a part's first packet
    # (MP3's bit reservoir reaches back past it).
    clip = make_clip(tmp_path / name, frames=24, audio=codec, layout="stereo" if codec == "libopus" else "mono")
    out = tmp_path / "out.mkv"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *start, *X2)
    assert "damaged" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    assert audio_stream(out)[0] == audio_stream(clip)[0]


def _ebml_number(data: bytes, at: int, marker: bool) -> tuple[int, int]:
    """The EBML variable-length number at ``at`` (an ID keeps its length marker, a size
    does not), and where what follows it starts."""
    length = 9 - data[at].bit_length()
    value = int.from_bytes(data[at:at + length], "big")
    return (value if marker else value & ((1 << 7 * length) - 1)), at + length


def _mkv_block_times(data: bytes, start: int = 0, end: int | None = None):
    """(track number, offset of its 16-bit time) of each SimpleBlock of a Matroska file."""
    end = len(data) if end is None else end
    while start < end:
        ident, start = _ebml_number(data, start, True)
        size, start = _ebml_number(data, start, False)
        if ident in (0x18538067, 0x1F43B675):  # Segment, Cluster: the blocks are within
            yield from _mkv_block_times(data, start, min(end, start + size))
        elif ident == 0xA3:
            yield _ebml_number(data, start, False)
        start += size


@pytest.mark.parametrize("name", ["out.mkv", "out.mp4"])
def test_a_copied_sound_packet_stamped_before_the_one_before_is_left_out(name, tmp_path):
    # found by the fuzzer: a Matroska block's time damaged to before the one before
    # it. Copied as it was, the muxer refused it: "out.mkv: cannot encode: Invalid
    # argument", blaming the output for the input's damage.
    data = bytearray(make_clip(tmp_path / "good.mkv", frames=4, width=16, height=12, audio="libopus").read_bytes())
    sound = [at for track, at in _mkv_block_times(bytes(data)) if track == 2]
    assert [int.from_bytes(data[at:at + 2], "big") for at in sound[:3]] == [0, 21, 41]  # ms in its cluster
    data[sound[2]:sound[2] + 2] = bytes(2)  # 41 ms: 0 ms, before the 21 ms packet
    broken = tmp_path / "in.mkv"
    broken.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", broken, "-o", tmp_path / name, *X2)
    assert f"{broken}: 1 audio packet stamped before the one before it left out" in proc.stderr, proc.stderr
    given = [bytes_ for _, bytes_ in packets(broken, "audio")]
    assert [bytes_ for _, bytes_ in packets(tmp_path / name, "audio")] == given[:2] + given[3:]


def _mkv_video_block_ids(data: bytes) -> list[int]:
    """The offset of each video SimpleBlock's ID (0xA3) in a Matroska file."""
    found = []
    for track, at in _mkv_block_times(data):
        # Before the time: the track number (1 byte), the block's size, its ID.
        size_end = at - 1
        ids = [p - 1 for p in range(size_end - 1, size_end - 9, -1)
               if data[p - 1] == 0xA3 and 9 - data[p].bit_length() == size_end - p]
        if track == 1 and ids:
            found.append(ids[0])
    return found


@pytest.mark.parametrize("block", [2, 12, 20])
def test_a_matroska_damaged_midway_is_an_error_or_upscaled_up_to_the_damage_with_a_warning(block, tmp_path):
    # found by the damage audit: bytes zeroed in a block midway (as a disk's lost
    # sector does) stop FFmpeg's Matroska demuxer, which logs "0x00 at pos ... invalid
    # as first byte of an EBML number" and ends the file quietly: 12 frames of 24
    # were written, exit 0, said only to be "maybe truncated"; damaged at frame 20,
    # 20 frames with nothing said at all. Damaged within what FFmpeg reads as it opens
    # the file (to find its streams), the demuxer's words came then, not as it was read.
    good = make_clip(tmp_path / "good.mkv", frames=24, width=32, height=24, audio=None, gop=6)
    with av.open(str(good)) as c:  # how far the blocks before go (B-frames: stored out of order)
        seconds = float(max((p.pts + p.duration) * p.time_base for p in itertools.islice(c.demux(), block)))
    data = bytearray(good.read_bytes())
    at = _mkv_video_block_ids(bytes(data))[block]
    data[at:at + 16] = bytes(16)
    clip = tmp_path / "in.mkv"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.endswith(f"error: {clip}: cannot read past {seconds:.2f} s: FFmpeg's demuxer says: 0x00 at pos "
                                f"{at} (0x{at:x}) invalid as first byte of an EBML number (a damaged file? "
                                "--skip-damaged upscales what can be read)\n"), proc.stderr
    assert not (tmp_path / "out.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    assert (f"{clip}: cannot be read past {seconds:.2f} s of 1.00 s (FFmpeg's demuxer says: 0x00 at pos {at} "
            f"(0x{at:x}) invalid as first byte of an EBML number): upscaled up to there (--skip-damaged)"
            ) in proc.stderr, proc.stderr
    assert "truncated" not in proc.stderr
    assert len(frame_times(tmp_path / "out.mkv")[0]) == plain_decode(clip) < 24


def test_a_piped_matroska_damaged_midway_says_where_it_stops_being_readable(tmp_path):
    # Read ahead of the run from a pipe (an mp4 output's rate is judged first), the
    # damage was said to be at 0.00 s, where the run came to the packets read ahead.
    data = bytearray(make_clip(tmp_path / "good.mkv", frames=24, width=32, height=24, audio=None, gop=6)
                     .read_bytes())
    at = _mkv_video_block_ids(bytes(data))[12]
    data[at:at + 16] = bytes(16)
    clip = tmp_path / "in.mkv"
    clip.write_bytes(bytes(data))
    for skip in ([], ["--skip-damaged"]):
        proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", tmp_path / "out.mp4", *skip, *X2],
                              stdin=subprocess.Popen(["cat", clip], stdout=subprocess.PIPE).stdout,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == (0 if skip else 1), proc.stderr
        assert "standard input: cannot " + ("be read" if skip else "read") + " past 0.50 s" in proc.stderr, proc.stderr
        assert "truncated" not in proc.stderr
    assert len(frame_times(tmp_path / "out.mp4")[0]) == 12


def test_an_avi_whose_frames_its_index_lists_cannot_all_be_read_is_an_error_or_upscaled_with_a_warning(tmp_path):
    # found by the damage audit: 4 kB zeroed midway in an .avi with sound. FFmpeg's
    # demuxer, going by the index, quietly leaves out the chunk it cannot find there:
    # 23 frames of the 24 its index lists were written (and 43 ms of sound fewer),
    # exit 0, nothing said.
    data = bytearray(make_clip(tmp_path / "good.avi", frames=24, width=32, height=24, audio="pcm_s16le")
                     .read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    clip = tmp_path / "in.avi"
    clip.write_bytes(bytes(data))
    assert plain_decode(clip) == 23  # the fixture is damaged as it says
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.endswith(f"error: {clip}: cannot read 1 of the 24 video frames its index lists (a damaged "
                                "file? --skip-damaged upscales the rest)\n"), proc.stderr
    assert not (tmp_path / "out.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    assert f"{clip}: 1 of the 24 video frames its index lists could not be read (--skip-damaged)" in proc.stderr
    assert len(frame_times(tmp_path / "out.mkv")[0]) == 23


@pytest.mark.parametrize("audio", ["pcm_s16le", None])
def test_an_avi_with_bytes_cut_out_midway_is_an_error_or_upscaled_with_a_warning(audio, tmp_path):
    # found by the damage audit: 100 bytes cut out of an .avi midway (not overwritten).
    # The index (idx1), whole at the end, then lies past where the data says it is:
    # FFmpeg reads on without it, leaves out what it cannot make out, and 23 frames of
    # the 24 were written (or all 24, the sound 100 bytes short), exit 0, nothing said.
    data = make_clip(tmp_path / "good.avi", frames=24, width=32, height=24, audio=audio).read_bytes()
    middle = (data.index(b"movi") + data.rindex(b"idx1")) // 2  # amid the frames (and sound)
    clip = tmp_path / "in.avi"
    clip.write_bytes(data[:middle] + data[middle + 100:])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    said = ("its data is not where its index (idx1) lists it from there on, as where bytes were cut out of the "
            "file")
    found = re.search(rf"error: {re.escape(str(clip))}: cannot read past (\d+\.\d\d) s: {re.escape(said)} \(a "
                      r"damaged file\? --skip-damaged upscales what can be read\)\n$", proc.stderr)
    assert found and 0 < float(found[1]) < 1, proc.stderr
    assert not (tmp_path / "out.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    assert (f"{clip}: damaged at {found[1]} s ({said}): what could not be read there is missing (--skip-damaged)"
            in proc.stderr), proc.stderr
    assert 20 <= len(frame_times(tmp_path / "out.mkv")[0]) <= 24


def _kind_damaged(data: bytearray, kind: bytes) -> bytearray:
    at = data.index(kind)
    data[at:at + 4] = b"\xa5" * 4
    return data


def _first_places_damaged(data: bytearray) -> bytearray:
    at = data.index(b"stco") + 12  # past its version and flags and its count: the first chunk's place
    data[at:at + 8] = b"\xff" * 8
    return data


@pytest.mark.parametrize("damage, said", [
    (lambda d: _kind_damaged(d, b"moov"), "its index (moov) is damaged (its moov box's kind reads 0xa5a5a5a5): FFmpeg "
                                          "cannot find its frames"),
    (lambda d: _kind_damaged(d, b"trak"), "cannot find its video: its index (moov) is damaged (its trak box's "
                                          "kind reads 0xa5a5a5a5)"),
    (lambda d: _kind_damaged(d, b"stsz"), "cannot find its video frames: its index (moov) is damaged (FFmpeg's "
                                          "demuxer says: stream 0, missing mandatory atoms, broken header)"),
    (lambda d: _kind_damaged(d, b"stsd"), "cannot find its video's codec: its index (moov) is damaged (its stsd "
                                          "box's kind reads 0xa5a5a5a5)"),
    (lambda d: _first_places_damaged(d), "cannot find its video frames: none of the 24 its index (moov) lists "
                                         "could be read where it places them (a damaged index, or a file cut "
                                         "short)"),
], ids=["moov", "trak", "stsz", "stsd", "stco"])
def test_an_mp4_whose_index_is_damaged_says_so(damage, said, tmp_path):
    # found by the damage audit: an mp4 whose index (moov) had bytes overwritten was
    # said to have "no video stream" (a track's box's kind damaged), "no decodable
    # video frames" (its sample sizes' box's), a codec "FFmpeg knows no decoder for"
    # (its sample descriptions' box's), or to be "without its index, as one cut off
    # before its end is" (the index's own kind damaged).
    clip = tmp_path / "in.mp4"
    clip.write_bytes(bytes(damage(bytearray(make_clip(tmp_path / "good.mp4", frames=24).read_bytes()))))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.endswith(f"error: {clip}: {said}\n"), proc.stderr
    assert not (tmp_path / "out.mkv").exists()


def test_an_mp4_whose_video_stops_short_of_its_index_is_an_error_or_upscaled_up_to_there(tmp_path):
    # found by the damage audit: 32 bytes overwritten in an mp4's index, within the
    # video track's chunk places (stco). FFmpeg's demuxer, sent past the file's end
    # midway, ended the video there, unsaid, and read the sound to its end: 10 frames
    # of 24 were written, exit 0, nothing said.
    data = bytearray(make_clip(tmp_path / "good.mp4", frames=24).read_bytes())
    at = data.index(b"stco") + 8  # the video track's (the first): its count, then the places
    count = int.from_bytes(data[at:at + 4], "big")
    assert count > 2
    for k in range(count // 2, count):
        data[at + 4 + 4 * k:at + 8 + 4 * k] = b"\x7f\xff\xff\xff"
    clip = tmp_path / "in.mp4"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    said = "the rest is not where its index places it"
    found = re.search(rf"error: {re.escape(str(clip))}: cannot read its video past (\d\.\d\d) s of the 1\.00 s its "
                      rf"index \(moov\) gives: {said} \(a damaged file\? --skip-damaged upscales what can be read\)\n$",
                      proc.stderr)
    assert found, proc.stderr
    assert not (tmp_path / "out.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    assert (f"{clip}: its video cannot be read past {found[1]} s of the 1.00 s its index (moov) gives ({said}): "
            "upscaled up to there (--skip-damaged)") in proc.stderr, proc.stderr
    assert len(frame_times(tmp_path / "out.mkv")[0]) < 24


def test_an_mpeg_ts_missing_packets_midway_is_an_error_or_upscaled_with_a_warning(tmp_path):
    # found by the damage audit: two 188-byte packets gone from an MPEG-TS midway (a
    # recording's lost reception) break a frame's continuity, which FFmpeg's demuxer
    # flags on the packet ("Packet corrupt"): 22 frames of 24 were written, exit 0,
    # nothing said (an MPEG-TS states no length to be found short of).
    data = make_clip(tmp_path / "good.ts", frames=24, width=32, height=24, audio=None, gop=6).read_bytes()
    clip = tmp_path / "in.ts"
    clip.write_bytes(data[:25 * 188] + data[27 * 188:])
    assert plain_decode(clip) == 22  # the fixture is damaged as it says
    refused_then_kept(clip, tmp_path / "out.mkv", "0.33 s (its demuxer found a packet corrupt)", 22)


def test_a_frame_the_decoder_conceals_damage_in_is_an_error_or_kept_with_a_warning(tmp_path):
    # found by the damage audit: 8 bytes overwritten within an H.264 keyframe midway.
    # FFmpeg's decoder conceals what it cannot decode ("error while decoding MB") and
    # flags the frame: it and the 5 frames predicted from it were upscaled garbled
    # (off by 37 to 79 of 255 on average), exit 0, nothing said.
    good = make_clip(tmp_path / "good.mkv", frames=24, width=32, height=24, audio=None, gop=6)
    with av.open(str(good)) as c:
        pos, size = [(p.pos, p.size) for p in c.demux(video=0) if p.size][12]  # the keyframe at 0.5 s
    data = bytearray(good.read_bytes())
    data[pos + size // 2:pos + size // 2 + 8] = b"\xa5" * 8
    clip = tmp_path / "in.mkv"
    clip.write_bytes(bytes(data))
    refused_then_kept(clip, tmp_path / "out.mkv", "0.50 s (its decoder concealed the damage)", 24)


_ANOTHER_THREADS_ERROR = """
import threading, av
from ncnn_sr.video_packets import _logged_here

def broken_frame():
    try:
        av.CodecContext.create("h264", "r").decode(av.Packet(b"\\0\\0\\0\\1\\x65" + bytes(range(200))))
    except av.error.FFmpegError:
        pass

with _logged_here() as logs:
    thread = threading.Thread(target=broken_frame)
    thread.start()
    thread.join()
print(len(logs))
"""


def test_another_threads_ffmpeg_errors_while_packets_are_read_stay_off_stderr():
    # found by the review: the demuxer's errors are caught around each packet read with
    # PyAV's level raised, and another thread's FFmpeg errors meanwhile (a frame-
    # threaded decoder's) reached Python's logging, set up by no one, which printed
    # them raw on stderr: "no frame!" lines under a one-line command.
    proc = subprocess.run([sys.executable, "-c", _ANOTHER_THREADS_ERROR], capture_output=True, text=True,
                          timeout=120, check=True)
    assert proc.stdout == "0\n" and proc.stderr == "", proc.stderr


# ``ncnn-sr video ARGS`` whose encoder opens with argv[1] kB of room under a cap of
# the process's own (ulimit -v): libx264 maps some 38 MB to open on 384x384 frames.
_ENCODER_OPENED_SHORT = """
import resource, sys
from ncnn_sr import entry, video_transcode

real, room = video_transcode._open_saying_why, int(sys.argv.pop(1)) << 10

def capped(ctx):
    size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + room, resource.getrlimit(resource.RLIMIT_AS)[1]))
    real(ctx)

video_transcode._open_saying_why = capped
sys.argv = ["ncnn-sr", *sys.argv[1:]]
entry.ncnn_sr()
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.parametrize("room", [512])  # with 16 MB it opened on one machine and not on another
def test_an_encoder_that_cannot_open_for_want_of_memory_is_out_of_memory(room, tmp_path):
    # libx264 under ulimit -v 480000 to 680000 (a 96x96 clip upscaled x4) said
    # "cannot encode with libx264: Generic error in an external library: the upscaled
    # frames are 384x384", which blamed the settings: a failed allocation is all it
    # says of one, if anything, on its own stderr (with 512 kB of room, most times),
    # where its "x264 [error]: malloc of size 1500068 failed" came before the command's line.
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=96, height=96, audio=None)
    proc = subprocess.run([sys.executable, "-c", _ENCODER_OPENED_SHORT, str(room), "video", "-i", clip, "-o",
                           tmp_path / "out.mp4", "-n", "realesr-animevideov3", "-g", "-1", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    # With 16 MB of room another allocation may run out first (the encoder opened, a
    # thread after it): then the plain line, which blames no setting either.
    assert re.fullmatch(r"ncnn-sr: error: out of memory(: libx264 cannot open \((Generic error in an external "
                        r"library|malloc of size \d+ failed)\) with \d+ (MB|kB) left under ulimit -v)?\n",
                        proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


# ``ncnn-sr video ARGS`` whose first upscaled frame is converted for the encoder
# (swscale) with argv[1] kB of room under a cap of the process's own (ulimit -v).
_CONVERTED_SHORT = """
import resource, sys
from ncnn_sr import entry, video_frames, video_transcode

room = int(sys.argv.pop(1)) << 10

def capped(*given, **named):
    size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + room, resource.getrlimit(resource.RLIMIT_AS)[1]))
    video_transcode.coded = video_frames.coded
    return video_frames.coded(*given, **named)

video_transcode.coded = capped
sys.argv = ["ncnn-sr", *sys.argv[1:]]
entry.ncnn_sr()
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_frames_swscale_cannot_convert_for_want_of_memory_say_so(tmp_path):
    # Under ulimit -v 600000 to 660000 (a 96x96 clip, animevideov3 x2 on the CPU) the
    # conversion of the upscaled frames to yuv420p for libx264 failed with FFmpeg's
    # EAGAIN ("Failed initializing scaling graph (Resource temporarily unavailable)"),
    # its threads' stacks past the cap: the command said "out of memory" alone, where
    # its other out-of-memory lines say what ran out.
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=96, height=96, audio=None)
    proc = subprocess.run([sys.executable, "-c", _CONVERTED_SHORT, "2048", "video", "-i", clip, "-o",
                           tmp_path / "out.mp4", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert re.fullmatch(r"ncnn-sr: error: out of memory: swscale cannot convert the upscaled frames from rgb24 to "
                        r"yuv420p \((Resource temporarily unavailable|Cannot allocate memory)\) with \d+ (MB|kB) left "
                        r"under ulimit -v\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


# ``ncnn-sr video ARGS`` where FFmpeg runs out of memory as the second frame of the
# input is decoded: its ENOMEM raised where the decoding's errors are taken.
_DECODED_SHORT = """
import errno, sys
import av
from ncnn_sr import entry, video_transcode

real, calls = video_transcode.to_rgb, []

def decoding(frame, *given, **named):
    calls.append(frame)
    if len(calls) == 2:
        av.error.err_check(-errno.ENOMEM)
    return real(frame, *given, **named)

video_transcode.to_rgb = decoding
sys.argv = ["ncnn-sr", *sys.argv[1:]]
entry.ncnn_sr()
"""


def test_a_decoder_out_of_memory_says_what_ran_out(tmp_path):
    # FFmpeg's ENOMEM as a video was decoded was said "out of memory" alone (its
    # words, "in.mp4: cannot decode: Cannot allocate memory", dropped as a file's
    # error), where the other out-of-memory lines say what ran out.
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None)
    proc = subprocess.run([sys.executable, "-c", _DECODED_SHORT, "video", "-i", clip, "-o", tmp_path / "out.mp4",
                           *X2, "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert re.fullmatch(rf"ncnn-sr: error: out of memory: FFmpeg cannot decode {re.escape(str(clip))} \(Cannot "
                        r"allocate memory\)( with \d+ (MB|kB) left under ulimit -[vd])?\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def refused_then_kept(clip, out, where: str, frames: int) -> None:
    """The command refuses the damaged ``clip``, damaged at ``where``, writing nothing;
    with --skip-damaged it writes ``frames`` frames and says where the damage was kept."""
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.endswith(f"error: {clip}: cannot decode: its video is damaged at {where} (a damaged file? "
                                "--skip-damaged upscales the rest)\n"), proc.stderr
    assert not out.exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, "--skip-damaged", *X2)
    at = where.split(" (")[0]
    assert (f"{clip}: damaged in 1 place, at {at}, kept as FFmpeg makes it out (--skip-damaged): frames there are "
            "missing or garbled") in proc.stderr, proc.stderr
    assert len(frame_times(out)[0]) == frames


def _subtitles_outlasting_the_picture(tmp_path):
    clip = make_clip(tmp_path / "short.mp4", frames=6)  # a quarter of a second
    return add_subtitles(clip, tmp_path / "in.mkv", [("00:00:00,000", "00:00:00,200", "Hello"),
                                                     ("00:00:01,500", "00:00:02,000", "and goodbye")])


@pytest.mark.parametrize("make", [
    lambda tmp: make_clip(tmp / "whole.mkv", frames=60),
    lambda tmp: make_clip(tmp / "vfr.mp4", frames=6, frame_ms=[0, 40, 50, 200, 210, 500]),
    lambda tmp: make_clip(tmp / "vfr.mkv", frames=6, frame_ms=[0, 40, 50, 200, 210, 500], audio=None),
    _subtitles_outlasting_the_picture,
    lambda tmp: make_clip(tmp / "late.mkv", frames=4, frame_ms=[10000, 10040, 10080, 10120], audio=None),
], ids=["whole", "variable-rate-mp4", "variable-rate-mkv", "subtitles-outlast-the-picture", "mkv-starting-late"])
def test_a_complete_video_is_not_called_truncated(make, tmp_path):
    proc = run(NCNN_SR, "video", "-i", make(tmp_path), "-o", tmp_path / "out.mkv", *X2)
    assert "truncated" not in proc.stderr


def test_pictures_commands_route_videos_to_the_video_path(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    run(NCNN_SR, "-i", clip, "-o", tmp_path / "a.mp4", *X2)
    run(DROPIN, "-i", clip, "-o", tmp_path / "b.mp4", "-s", "2", "-g", "-1")
    assert frame_times(tmp_path / "a.mp4")[1] == frame_times(tmp_path / "b.mp4")[1] == (64, 48)
    assert packets(tmp_path / "b.mp4", "audio") == packets(clip, "audio")


@pytest.mark.parametrize("frames, rate", [(4, Fraction(25)), (5, Fraction(30000, 1001)), (7, Fraction(24))])
def test_the_frames_of_a_nut_file_are_counted_from_its_first_to_the_end_of_its_last(tmp_path, frames, rate):
    # found by a bug hunt: NUT's duration is its last packet's time, on a timeline from 0:
    # the progress total was one short (the last frame left out), or one over (H.264
    # with B-frames, which starts a frame or two in)
    from ncnn_sr.video import probe

    info = probe(make_clip(tmp_path / "in.nut", frames=frames, rate=rate, audio=None))
    assert info.frames == frames and info.duration == pytest.approx(frames / rate, abs=1e-3)
    with av.open(str(tmp_path / "intra.nut"), "w") as out:  # no B-frames: it starts at 0
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for _ in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    assert probe(tmp_path / "intra.nut").frames == frames


def test_a_video_named_as_no_picture_is_routed_by_its_outputs_name(tmp_path):
    # NUT, Y4M, MXF, RMVB...: the picture command took them, and offered picture formats
    # for the .mkv asked for.
    clip = make_clip(tmp_path / "in.mkv", frames=3)
    clip = clip.rename(tmp_path / "in.nut")
    run(NCNN_SR, "-i", clip, "-o", tmp_path / "a.mkv", *X2)
    run(DROPIN, "-i", clip, "-o", tmp_path / "b.mkv", "-s", "2", "-g", "-1")
    assert frame_times(tmp_path / "a.mkv")[1] == frame_times(tmp_path / "b.mkv")[1] == (64, 48)
    picture_named = tmp_path / "in.png"
    make_clip(tmp_path / "p.mkv", frames=2).rename(picture_named)
    proc = run(NCNN_SR, "-i", picture_named, "-o", tmp_path / "c.mkv", *X2, check_ok=False)
    assert proc.returncode == 1 and "unsupported output format '.mkv'" in proc.stderr  # a picture's name: a picture


@pytest.mark.parametrize("name", ["out.gif", "out.avif"])
def test_the_drop_in_names_video_containers_for_a_video_asked_as_a_picture_format(name, tmp_path):
    # It named "png, jpg or webp", which a video is not written as either.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / name, "-s", "2", "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"unsupported video container '{name[3:]}'" in proc.stderr and "png, jpg or webp" not in proc.stderr
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name, own", [("out.vob", "mpeg2video"), ("out.ogv", "libvpx")])
def test_the_drop_in_names_the_command_that_writes_a_container_h264_cannot_go_in(name, own, tmp_path):
    # It said "choose another --codec", a flag the drop-in has not.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / name, "-s", "2", "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.rstrip().endswith(f"write .mp4, .mkv, .mov or .avi, or choose another codec with "
                                         f"'ncnn-sr video --codec', such as {own}"), proc.stderr
    assert not (tmp_path / name).exists()


def test_the_drop_in_names_the_command_that_chooses_a_codec_for_frames_too_large(tmp_path):
    # The size check before the model loads said "choose another --codec", a flag the
    # drop-in has not: 32x8 at -s 600 is 19200x4800, past libx264's 16384.
    clip = make_clip(tmp_path / "in.mp4", frames=1, width=32, height=8, audio=None)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / "out.mp4", "-s", "600", "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "libx264 encodes frames of at most 16384x16384 pixels, not 19200x4800: upscale less, or choose another " \
           "codec with 'ncnn-sr video --codec'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_text("not a video"), "not a video FFmpeg can read"),
    (lambda p: p.write_bytes(b""), "not a video: the file is empty (0 bytes)"),  # a copy cut short, say
    (lambda p: _audio_only(p), "has no video stream"),
    # A song with its album art: "no video stream" left the picture it does hold unexplained.
    (lambda p: _audio_only(p, cover=True), "has no video stream, only a cover picture"),
    (lambda p: _audio_only(p, video=True), "has no decodable video frames"),  # it named the output
    # A recording or copy cut off before the index an mp4 ends with: "not a video", it said.
    (lambda p: _first_half(make_clip(p.with_name("whole.mp4"), frames=24), p),
     "an mp4 without its index (moov), as one cut off before its end is: FFmpeg cannot find its frames"),
    # Named by what its file type says, whatever its name: a mov was called an mp4.
    (lambda p: _first_half(make_clip(p.with_name("whole.mov"), frames=24), p),
     "a mov (QuickTime) without its index (moov), as one cut off before its end is: FFmpeg cannot find its frames"),
    # A Matroska download cut inside its header (tracks, attached fonts): FFmpeg's EIO
    # came out as "file:PATH: Input/output error", which reads as a failing disk.
    (lambda p: p.write_bytes(make_clip(p.with_name("whole.mkv"), frames=24).read_bytes()[:300]),
     "not a video FFmpeg can read (it ends too soon, as a copy or download cut short does)"),
    # A TV recording cut before its first key frame: FFmpeg knows no size for it, and the
    # size check divided by 0 (a traceback).
    (lambda p: p.write_bytes(make_clip(p.with_name("whole.ts"), frames=24, audio=None).read_bytes()[188 * 20:]),
     "its video's size is unknown: FFmpeg decoded no frame of it where it starts (a recording cut before its "
     "first key frame, or damaged)"),
    # What FFmpeg takes for lyrics or subtitles (an mp4 whose start is cut off read as LRC
    # lyrics, 1 in 4 cuts tried) said "has no video stream".
    (lambda p: p.write_text("1\n00:00:01,000 --> 00:00:02,000\nla la\n"),
     "not a video FFmpeg can read (it reads as SubRip subtitle: damaged, or its start cut off?)"),
])
def test_inputs_that_are_not_videos_are_one_line_errors(make, message, tmp_path):
    src = tmp_path / "in.mp4"
    make(src)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"error: {src}: {message}" in errors[0], proc.stderr
    assert not list(p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out")))


def _first_half(whole, path):
    data = whole.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _audio_only(path, video=False, cover=False):
    """Sound alone; with ``video``, beside a video stream of no frames (in Matroska,
    which keeps such a stream, whatever the name); with ``cover``, beside a JPEG
    attached as its cover picture."""
    with av.open(str(path), "w", format="matroska" if video else None) as out:
        if video:
            v = out.add_stream("libx264", rate=24)
            v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        s = out.add_stream("aac", rate=48000)
        s.layout = "mono"
        if cover:
            art = out.add_stream("mjpeg", rate=1)
            art.width = art.height = 8
            art.pix_fmt = "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            for p in art.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")):
                out.mux(p)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.int16), format="s16", layout="mono")
        f.sample_rate, f.pts = 48000, 0
        for p in s.encode(f):
            out.mux(p)
        for p in s.encode():
            out.mux(p)


def test_ctrl_c_stops_at_once_and_leaves_no_output(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=48, width=96, height=72)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([NCNN_SR, "video", "-i", str(clip), "-o", str(out), "-n", "realesrgan-x4plus-anime",
                             "-g", "-1", "-j", "1:1:1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".out") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # well into the work
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    # Within a second on a quiet machine; the margin is for a loaded one (1.5 s failed
    # the folder's test at a load of 9 on two cores).
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130, err
    assert "interrupted: no output was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4"]


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/wchan"), reason="tells a read pipe's wait by wchan")
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_ctrl_c_while_ffmpeg_waits_for_a_pipe_is_an_interruption(suffix, tmp_path):
    # found by QA: a Ctrl-C as FFmpeg waited for standard input (a live source that
    # had sent too little yet) printed a KeyboardInterrupt traceback (PyAV passes on
    # only Exceptions from a read), then "not a video FFmpeg can read", status 1
    data = make_clip(tmp_path / "in.mkv", frames=48, width=64, height=64, audio="pcm_s16le",
                     layout="stereo").read_bytes()
    proc = subprocess.Popen([NCNN_SR, "video", "-i", "-", "-o", str(tmp_path / f"out{suffix}"), *X2],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(data[:20000])  # its first bytes: FFmpeg reads 32 kB at a time
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    wchan = Path(f"/proc/{proc.pid}/wchan")
    while "pipe_read" not in wchan.read_text():  # waiting for more
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # FFmpeg's, not the look's, as the first bytes are there
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1].decode()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("ncnn-sr: interrupted") and "Traceback" not in err, err


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/wchan"), reason="tells a written pipe's wait by wchan")
def test_a_ctrl_c_while_standard_output_waits_for_its_reader_is_an_interruption(tmp_path):
    # found by QA: -o - to a reader that had stopped reading (a paused player): a
    # Ctrl-C as the muxer waited to write was lost in PyAV's write (it passes on only
    # Exceptions), and the command went on waiting, for ever
    clip = make_clip(tmp_path / "in.mkv", frames=48, width=64, height=64, audio="pcm_s16le", layout="stereo")
    unread, written = os.pipe()
    try:
        proc = subprocess.Popen([NCNN_SR, "video", "-i", str(clip), "-o", "-", *X2], stdout=written,
                                stderr=subprocess.PIPE)
        os.close(written)
        deadline = time.monotonic() + 120
        wchan = Path(f"/proc/{proc.pid}/wchan")
        while "pipe_write" not in wchan.read_text():  # the pipe is full
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        try:
            err = proc.communicate(timeout=60)[1].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    finally:
        os.close(unread)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("ncnn-sr: interrupted") and "Traceback" not in err, err


def test_library_call_with_any_frame_function(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=5)

    def doubled(frames):
        for f in frames:
            yield f.repeat(2, axis=0).repeat(2, axis=1)

    written = upscale_video(clip, tmp_path / "out.mkv", doubled, EncodeOptions(crf=20))
    assert written == 5
    assert frame_times(tmp_path / "out.mkv")[1] == (64, 48)


def test_a_frame_function_that_fails_leaves_no_output(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=5)

    def broken(frames):
        for i, f in enumerate(frames):
            if i == 2:
                raise InputError("frame 2 broke")
            yield f

    with pytest.raises(InputError, match="frame 2 broke"):
        upscale_video(clip, tmp_path / "out.mp4", broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def one_line_failure(proc, tmp_path, message):
    """The command failed with exit 1, one error line holding ``message`` and no
    traceback, and left no output file, finished or partial."""
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncnn-sr: error: ") and message in proc.stderr, proc.stderr
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


@pytest.mark.parametrize("flags,message", [
    (["--codec", "aac"], "'aac' is an audio encoder, not a video encoder"),
    (["--codec", "libbogus"], "unknown video encoder 'libbogus': this FFmpeg's video encoders include libx264, "),
    (["--pix-fmt", "bogus"], "unknown pixel format 'bogus': libx264 takes yuv420p"),
    (["--pix-fmt", "rgb24"], "libx264 cannot encode rgb24 pixels: it takes yuv420p"),
    (["--codec", "png", "--pix-fmt", "yuv420p"], "png cannot encode yuv420p pixels: it takes rgb24"),
    (["--preset", "bogus"], "libx264 has no preset 'bogus': use one of ultrafast"),
])
def test_settings_the_encoder_cannot_take_are_one_line_errors(flags, message, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, *flags, check_ok=False)
    one_line_failure(proc, tmp_path, message)


def psnr(a, b):
    return 10 * np.log10(255 ** 2 / max(np.mean((a.astype(float) - b.astype(float)) ** 2), 1e-9))


def rgb_frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("name, flags", [("out.mov", ["--codec", "gif"]), ("out.avi", ["--codec", "msrle"]),
                                         ("out.mov", ["--codec", "png", "--pix-fmt", "pal8"])])
def test_paletted_video_gets_a_palette_of_each_frames_own_colours(name, flags, tmp_path):
    # A GIF in a .mov was GIF's fixed 3-3-2 palette, rgb8 (21 dB from the frames, bands
    # of 8 reds); msrle and --pix-fmt pal8 were refused, as swscale makes no palette.
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "rgb.mov", *X2, "--codec", "png", "-q")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, *flags)
    assert "warning" not in proc.stderr
    made, lossless = rgb_frames(tmp_path / name), rgb_frames(tmp_path / "rgb.mov")
    assert len(made) == len(lossless) == 4
    assert min(psnr(a, b) for a, b in zip(made, lossless)) > 30


@pytest.mark.parametrize("flags, said", [
    # Written, its frames after the first came back in the first one's colours (13 dB).
    (["--codec", "msrle"], ".mov keeps one palette for all msrle frames, which would show those after the first in its "
                           "colours: write .avi, or choose another --codec"),
    (["--codec", "smc"], ".mov keeps one palette for all smc frames, which would show those after the first in its "
                         "colours: choose another --codec"),
    # swscale makes no palette: refused once the model had run, "Operation not supported".
    (["--codec", "targa", "--pix-fmt", "pal8"], "targa cannot encode pal8 pixels here (frames get a palette of their "
                                                "own only in gif, png or apng, or msrle in .avi): it takes bgr24, "),
])
def test_paletted_video_without_a_palette_per_frame_is_refused(flags, said, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mov", *X2, *flags, check_ok=False)
    one_line_failure(proc, tmp_path, said)


@pytest.mark.parametrize("flag", ["--codec", "--preset", "--pix-fmt"])
def test_an_empty_encoder_setting_is_its_default(flag, tmp_path):
    # --pix-fmt "" (an unset variable in a script) was a traceback from PyAV.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, flag, "")
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert (c.streams.video[0].codec_context.name, c.streams.video[0].format.name) == ("h264", "yuv420p")


@pytest.mark.parametrize("codec, name, flags, message", [
    ("libvpx-vp9", "out.webm", ["--preset", "slow"], "libvpx-vp9 has no presets: leave --preset out"),
    ("libsvtav1", "out.mp4", ["--preset", "slow"], "libsvtav1 has no preset 'slow'"),
    ("libx264", "out.mp4", ["--crf", "60"], "libx264 takes --crf 0 to 51 (lower is better), not 60"),
    ("libx265", "out.mp4", ["--crf", "52"], "libx265 takes --crf 0 to 51 (lower is better), not 52"),
    ("libvpx", "out.webm", ["--crf", "2"], "libvpx takes --crf 4 to 63 (lower is better), not 2"),
    ("mpeg4", "out.mp4", ["--crf", "30"], "mpeg4 has no constant quality (--crf): give a --bitrate"),
    ("ffv1", "out.mkv", ["--crf", "20"], "ffv1 is lossless: leave --crf and --bitrate out"),
    ("ffv1", "out.mkv", ["--bitrate", "100k"], "ffv1 is lossless: leave --crf and --bitrate out"),
    ("prores_ks", "out.mov", ["--bitrate", "100k"],
     "prores_ks has no --crf or --bitrate: its profile sets its rate"),
    ("prores_ks", "out.mov", ["--crf", "20"], "prores_ks has no --crf or --bitrate: its profile sets its rate"),
    # Asked by opening MJPEG on limited-range pixels, which it refuses: the --crf was
    # taken and ignored, the preset blamed as "Invalid argument".
    ("mjpeg", "out.avi", ["--crf", "20"], "mjpeg has no constant quality (--crf): give a --bitrate"),
    ("mjpeg", "out.avi", ["--preset", "slow"], "mjpeg has no presets: leave --preset out"),
    # Opened at 64x64, which H.263 does not take: the --crf was taken and ignored.
    ("h263", "out.avi", ["--crf", "20"], "h263 has no constant quality (--crf): give a --bitrate"),
    ("h263", "out.avi", ["--preset", "slow"], "h263 has no presets: leave --preset out"),
])
def test_an_encoder_setting_the_encoder_cannot_take_is_a_one_line_error(codec, name, flags, message, tmp_path):
    # Each was taken without a word, or failed late: VP9 ignored --preset and SVT-AV1
    # (presets -1..13) failed once frames reached it with a bare "Invalid argument";
    # x264 took --crf 60 as its highest, 51; x265 refused 52 in two lines once the
    # model had loaded, VP8 2 as a bare "Invalid argument"; MPEG-4 Part 2, which has
    # no crf, encoded at its default 200 kb/s; FFV1 and ProRes encoded the same file
    # whatever --bitrate said, and a --crf was refused with "give a --bitrate", which
    # they ignore too.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", codec, *flags, check_ok=False)
    one_line_failure(proc, tmp_path, message)


# The library's caller gave EncodeOptions' fields, not the command's flags: each
# refusal of them named --crf, --preset, --codec, which upscale_video takes none of.
@pytest.mark.parametrize("name, options, library, command", [
    ("out.mp4", EncodeOptions(crf=99), "crf=99: libx264 takes crf 0 to 51 (lower is better)",
     "libx264 takes --crf 0 to 51 (lower is better), not 99"),
    ("out.mp4", EncodeOptions(preset="nope"), "preset='nope': libx264 has no such preset: use one of ultrafast, ",
     "libx264 has no preset 'nope': use one of ultrafast, "),
    ("out.webm", EncodeOptions(preset="slow"), "preset='slow': libvpx-vp9 has no presets: leave preset out",
     "libvpx-vp9 has no presets: leave --preset out"),
    ("out.mp4", EncodeOptions(codec="mpeg4", crf=30), "crf=30: mpeg4 has no constant quality (crf): give a bitrate",
     "mpeg4 has no constant quality (--crf): give a --bitrate"),
    ("out.mkv", EncodeOptions(codec="libx264", crf=20, bitrate=100_000),
     "crf=20, bitrate=100000: libx264 takes crf or bitrate, not both", "libx264 takes --crf or --bitrate, not both"),
    ("out.mkv", EncodeOptions(codec="ffv1", bitrate=100_000),
     "bitrate=100000: ffv1 is lossless: leave crf and bitrate out", "ffv1 is lossless: leave --crf and --bitrate out"),
    ("out.mov", EncodeOptions(codec="prores_ks", crf=20),
     "crf=20: prores_ks has no crf or bitrate: its profile sets its rate",
     "prores_ks has no --crf or --bitrate: its profile sets its rate"),
    ("out.mp4", EncodeOptions(codec="nope"),
     "codec='nope': unknown video encoder: this FFmpeg's video encoders include ",
     "unknown video encoder 'nope': this FFmpeg's video encoders include "),
    ("out.mp4", EncodeOptions(codec="aac"), "codec='aac': an audio encoder, not a video encoder",
     "'aac' is an audio encoder, not a video encoder"),
    ("out.mp4", EncodeOptions(pix_fmt="nope"), "pix_fmt='nope': unknown pixel format: libx264 takes yuv420p",
     "unknown pixel format 'nope': libx264 takes yuv420p"),
    ("out.mp4", EncodeOptions(pix_fmt="rgb24"), "pix_fmt='rgb24': libx264 cannot encode rgb24 pixels: it takes yuv420p",
     "libx264 cannot encode rgb24 pixels: it takes yuv420p"),
    ("out.mov", EncodeOptions(codec="libvpx"), "codec='libvpx': .mov cannot hold vp8 video: write .mkv, .webm or .avi, "
     "or choose another codec", ".mov cannot hold vp8 video: write .mkv, .webm or .avi, or choose another --codec"),
    ("out.mpg", EncodeOptions(codec="mpeg1video", fps=Fraction(10)),
     "fps=10: mpeg1video cannot encode 10 fps: it takes 24000/1001",
     "mpeg1video cannot encode 10 fps: it takes 24000/1001"),
])
def test_an_encoder_setting_refused_names_it_as_the_library_s_caller_gave_it(name, options, library, command):
    from ncnn_sr import video_codecs
    from ncnn_sr.errors import SettingError, command_words
    with pytest.raises(SettingError) as e:
        video_codecs.video_encoder(Path(name), options)
    assert isinstance(e.value, ValueError)
    assert str(e.value).startswith(library) and "--" not in str(e.value), str(e.value)
    assert command in command_words(e.value) and "=" not in command_words(e.value), command_words(e.value)


def test_a_container_refused_for_the_default_encoder_is_the_output_s_fault_not_a_setting_s():
    # No setting was given: the name asked for a container h264 cannot go in.
    from ncnn_sr import video_codecs
    from ncnn_sr.errors import SettingError
    with pytest.raises(InputError) as e:
        video_codecs.video_encoder(Path("out.ogv"), EncodeOptions())
    assert not isinstance(e.value, SettingError)
    assert str(e.value) == (".ogv cannot hold h264 video: write .mp4, .mkv, .mov or .avi, or choose another codec, "
                            "such as libvpx")


def test_upscale_video_refuses_a_crf_the_encoder_cannot_take_as_a_setting_before_any_frame(tmp_path):
    from ncnn_sr.errors import SettingError
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    # Taken when made: the encoder, and so its range, is known only with the output.
    options = EncodeOptions(codec="nope", preset="nope", pix_fmt="nope", crf=99)
    asked = []
    for options, said in ((options, "codec='nope': unknown video encoder"),
                          (EncodeOptions(crf=99), "crf=99: libx264 takes crf 0 to 51 (lower is better)")):
        with pytest.raises(SettingError, match=re.escape(said)):
            upscale_video(clip, tmp_path / "out.mp4", lambda frames: asked.append(1) or frames, options)
    assert asked == [] and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("codec", ["libx264", "libx265", "libsvtav1"])
def test_a_crf_and_a_bitrate_together_are_refused_where_the_encoder_cannot_take_both(codec, tmp_path):
    # x264 and x265 encoded at the crf and dropped the bitrate without a word; SVT-AV1
    # refused to start once the model had loaded, in two lines.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", codec, "--crf", "20",
               "--bitrate", "500k", check_ok=False)
    one_line_failure(proc, tmp_path, f"{codec} takes --crf or --bitrate, not both")


def test_a_bitrate_for_svt_av1_on_frames_under_64_pixels_is_one_line(tmp_path):
    # SVT-AV1 turns adaptive quantisation off below 64x64 and then refuses a target rate:
    # two lines, its own and "bad parameter (0x80001005)", which named no cause.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=40, height=24)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "libsvtav1",
               "--bitrate", "500k", check_ok=False)
    one_line_failure(proc, tmp_path, "libsvtav1 keeps to a --bitrate only on frames of 64x64 pixels or more, "
                                     "not 80x48: give a --crf instead")


def test_a_bitrate_for_svt_av1_on_frames_of_64_pixels_is_kept(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=32, height=32)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "libsvtav1", "--bitrate", "500k")
    assert frame_times(tmp_path / "out.mkv")[1] == (64, 64)


def test_a_crf_sets_vp8s_quality_without_a_bitrate(tmp_path):
    # libvpx's VP8 given a crf and no bitrate caps it at 256 kb/s: at 640x480 --crf 4
    # and --crf 40 made files within 1% of each other, and the default was as blocky.
    clip = make_clip(tmp_path / "in.mp4", frames=4, width=640, height=480, audio=None)
    sizes = {}
    for crf in (4, 40):
        upscale_video(clip, tmp_path / f"{crf}.webm", lambda frames: iter(frames), EncodeOptions(codec="libvpx", crf=crf))
        sizes[crf] = (tmp_path / f"{crf}.webm").stat().st_size
    assert sizes[4] > 1.2 * sizes[40]


def test_a_crf_with_a_bitrate_caps_vp9(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.webm", *X2, "--crf", "20", "--bitrate", "500k")


def test_a_preset_x264_rgb_does_not_take_is_one_line(tmp_path):
    # libx264rgb was asked by opening it, and x264 printed its own "invalid preset" line.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "libx264rgb",
               "--pix-fmt", "rgb24", "--preset", "bogus", check_ok=False)
    one_line_failure(proc, tmp_path, "libx264rgb has no preset 'bogus': use one of ultrafast")


def test_a_preset_svt_av1_takes_is_used(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, "--codec", "libsvtav1", "--preset", "12")
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert len(list(c.decode(video=0))) == 3


def test_an_encoder_is_opened_once_to_check_a_preset_however_often_it_is_checked(tmp_path, monkeypatch):
    # The command checks its options before the model loads and upscale_video again:
    # each check opened the encoder, paying for its start twice a run.
    from ncnn_sr import video_codecs
    opened = []

    class TakesIt:  # an encoder that uses the preset: none is left over once it opens
        options = property(lambda self: {}, lambda self, value: None)

        def open(self):
            pass

    def create(codec, mode):
        opened.append(codec)
        return TakesIt()

    video_codecs._open_with_preset.cache_clear()
    monkeypatch.setattr(av.codec.CodecContext, "create", create)
    for _ in range(2):
        video_codecs.video_encoder(tmp_path / "out.mkv", EncodeOptions(codec="mpeg4", preset="fast"))
    video_codecs._open_with_preset.cache_clear()
    assert opened == ["mpeg4"]


def test_the_encoder_is_checked_before_any_file_is_opened(tmp_path):
    from ncnn_sr.errors import SettingError
    with pytest.raises(SettingError, match="codec='aac': an audio encoder"):
        upscale_video(tmp_path / "missing.mp4", tmp_path / "out.mp4", lambda frames: frames,
                      EncodeOptions(codec="aac"))
    assert list(tmp_path.iterdir()) == []


def test_a_bitrate_too_low_to_encode_is_refused_before_the_model_loads(tmp_path):
    # libx264 failed on opening with FFmpeg's "Generic error in an external library".
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, "--bitrate", "1", check_ok=False)
    assert proc.returncode == 2 and "1 is 1 bits per second: give 1000 to" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_a_bitrate_past_any_float_is_refused_in_one_line(tmp_path):
    # float() of its Fraction raised OverflowError, a traceback.
    from click.testing import CliRunner
    from ncnn_sr import cli
    result = CliRunner().invoke(cli.main, ["video", "-i", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "o.mp4"),
                                           "--bitrate", "1e400"])
    assert result.exit_code == 2 and "1e400 is more than 1e+10 bits per second: give 1000 to 1e+10" in result.output, \
        result.output


@pytest.mark.parametrize("given, bits", [("8000000", 8_000_000), ("8M", 8_000_000), ("2500k", 2_500_000),
                                         ("1.5m", 1_500_000)])
def test_a_bitrate_takes_thousands_and_millions(given, bits):
    from ncnn_sr.cli import video

    assert video.make_context("video", ["-i", "a.mp4", "-o", "b.mp4", "--bitrate", given]).params["bitrate"] == bits


def test_a_video_that_fails_after_its_folder_was_made_takes_the_folder_back(tmp_path):
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "new" / "deep" / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and "cannot decode" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["broken.mkv", "in.mp4"]


@pytest.mark.parametrize("removed, when", [("gone", "frame"), ("out", "encoded")])
def test_a_single_videos_output_folder_removed_during_its_run_is_one_line_as_for_pictures(removed, when, tmp_path,
                                                                                         in_process, monkeypatch):
    # It said "cannot write out/gone/v.mp4: No such file or directory", where a folder's
    # run says the folder was removed during the run. The folder the run made (gone),
    # removed as the second frame is upscaled; or the one given (out), once the video is
    # encoded, before its part file is renamed into place.
    import shutil

    from ncnn_sr import console, video

    clip = make_clip(tmp_path / "in.mp4", frames=12, audio=None)
    (tmp_path / "out").mkdir()
    folder = tmp_path / "out" / removed if removed == "gone" else tmp_path / "out"
    if when == "frame":
        counted = console.FrameProgress.__call__

        def count(self, done):
            if done == 2:
                shutil.rmtree(folder)
            return counted(self, done)
        monkeypatch.setattr(console.FrameProgress, "__call__", count)
    else:
        transcode = video._transcode

        def encoded(*given, **options):
            done = transcode(*given, **options)
            shutil.rmtree(folder)
            return done
        monkeypatch.setattr(video, "_transcode", encoded)
    status, said = in_process("video", "-i", clip, "-o", tmp_path / "out" / "gone" / "v.mp4", *X2)
    assert status == 1
    assert [line for line in said.splitlines() if " frames, " not in line] == [
        f"ncnn-sr: error: {folder} was removed during the run (what was written there is gone)"], said
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == \
        ["in.mp4"] + ["out"] * (removed == "gone")  # and no part file


def test_an_encoder_error_stops_the_frame_workers_before_returning(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=20)
    before = set(threading.enumerate())

    def slowly(upscaler, image):
        time.sleep(0.2)
        return image

    def frames(decoded):
        return ordered_map([Lane(SimpleNamespace(upscale=lambda image: image), 2)], decoded, slowly)

    with pytest.raises(InputError, match="cannot encode"):
        upscale_video(clip, tmp_path / "out.mp4", frames, EncodeOptions(bitrate=1))
    # Workers left running would still read the input, which is closed by now.
    assert set(threading.enumerate()) - before == set()


def garble_video_packet(src, dst, index):
    """Remux ``src`` into ``dst`` (mkv) with video packet ``index`` replaced by bytes
    the H.264 decoder refuses (a NAL unit longer than the packet)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        seen = 0
        for packet in inp.demux():
            if packet.dts is None:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == "video":
                if seen == index:
                    garbage = av.Packet(b"\xff\xff\xff\xff" + bytes(60))
                    garbage.pts, garbage.dts, garbage.time_base = packet.pts, packet.dts, packet.time_base
                    packet = garbage
                seen += 1
            packet.stream = target
            out.mux(packet)
    return dst


def test_a_video_that_cannot_be_decoded_is_an_error_naming_the_input(tmp_path):
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    one_line_failure(proc, tmp_path, f"{clip}: cannot decode: Invalid data found")


def test_the_drop_in_names_the_command_that_skips_damaged_packets(tmp_path):
    # It said "--skip-damaged upscales the rest", a flag the drop-in has not.
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.rstrip().endswith("(a damaged file? 'ncnn-sr video --skip-damaged' upscales the rest)")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.stderr.rstrip().endswith("(a damaged file? --skip-damaged upscales the rest)"), proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def test_the_library_names_the_field_that_skips_damaged_packets(tmp_path):
    # It said --skip-damaged, a flag upscale_video has not: EncodeOptions' field is it.
    from ncnn_sr.errors import command_words
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    with pytest.raises(InputError) as e:
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert str(e.value).endswith("(a damaged file? skip_damaged=True upscales the rest)"), str(e.value)
    assert command_words(e.value).endswith("(a damaged file? --skip-damaged upscales the rest)")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))]


def unknown_codec(path, codec_id: bytes):
    """The Matroska file ``path`` with the track whose codec ID is ``codec_id`` given
    one FFmpeg does not know, as a newer codec or a damaged header reads."""
    data = path.read_bytes()
    assert data.count(codec_id) == 1
    path.write_bytes(data.replace(codec_id, codec_id[:-3] + b"XXX"))  # its kind kept: V_, A_, S_TEXT/
    return path


def test_a_video_whose_codec_ffmpeg_does_not_know_is_a_one_line_error(tmp_path):
    # It was a traceback: the stream has no codec context to read the size from.
    clip = unknown_codec(make_clip(tmp_path / "in.mkv", frames=3), b"V_MPEG4/ISO/AVC")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    one_line_failure(proc, tmp_path, f"{clip}: cannot decode its video: FFmpeg knows no decoder for it")


@pytest.mark.parametrize("kind, codec_id", [("audio", b"A_AAC"), ("subtitle", b"S_TEXT/UTF8")])
def test_sound_and_subtitles_of_a_codec_ffmpeg_does_not_know_are_dropped_with_a_warning(kind, codec_id, tmp_path,
                                                                                           caplog):
    clip = make_clip(tmp_path / ("plain.mkv" if kind == "audio" else "plain.mp4"), frames=3,
                     audio="aac" if kind == "audio" else None)
    if kind == "subtitle":
        clip = add_subtitles(clip, tmp_path / "subtitled.mkv", [("00:00:00,000", "00:00:00,100", "Hello")])
    clip = unknown_codec(clip, codec_id)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames) == 3
    assert f"dropping {kind} stream 1: FFmpeg knows no codec for it" in caplog.text
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video"]


def audio_pes_on_a_new_pid() -> bytes:
    """An MPEG-TS packet that starts an MPEG audio PES on a PID no table lists, at 2 s:
    the demuxer adds a stream for it when it comes."""
    pts = 2 * 90000
    stamp = bytes([0x21 | (pts >> 29) & 0x0E, pts >> 22 & 0xFF, 0x01 | pts >> 14 & 0xFE, pts >> 7 & 0xFF,
                   0x01 | pts << 1 & 0xFE])
    packet = bytes([0x47, 0x55, 0x01, 0x10]) + b"\x00\x00\x01\xc0\x00\x00\x80\x80\x05" + stamp
    return packet + b"\xff" * (188 - len(packet))


def test_a_stream_that_turns_up_midway_through_an_mpeg_ts_is_no_error(tmp_path):
    # PyAV raised IndexError at the end of such a file (a recording with a damaged packet
    # header, say): a traceback, once every frame had been upscaled.
    clip = make_clip(tmp_path / "in.ts", frames=24, audio=None)
    clip.write_bytes(clip.read_bytes() + audio_pes_on_a_new_pid())
    assert upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames) == 24
    assert len(frame_times(tmp_path / "out.mp4")[0]) == 24


@pytest.mark.skipif(os.name == "nt", reason="needs resource limits (POSIX)")
def test_a_write_the_file_system_refuses_is_a_one_line_error(tmp_path):
    import resource

    clip = make_clip(tmp_path / "in.mp4", frames=4)

    def small_files():  # writes past 64 bytes fail (EFBIG), as they would on a full disk (ENOSPC)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    proc = subprocess.run([NCNN_SR, "video", "-i", str(clip), "-o", str(tmp_path / "out.mp4"), *X2],
                          capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    one_line_failure(proc, tmp_path, f"cannot write {tmp_path / 'out.mp4'}: File too large"
                                    " (past this process's limit on a file's size: ulimit -f)")


@pytest.mark.parametrize("named", ["same", "spelt", "symlink", "hardlink"])
def test_a_dst_that_is_the_src_is_refused_and_the_source_kept(named, tmp_path):
    # The command refuses it; the library wrote the upscale over the source, which was
    # lost (through a link too: the file it points to was replaced).
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    kept = clip.read_bytes()
    dst = {"same": clip, "spelt": tmp_path / "." / "in.mp4", "symlink": tmp_path / "link.mp4",
           "hardlink": tmp_path / "hard.mp4"}[named]
    if named == "symlink":
        dst.symlink_to(clip.name)
    if named == "hardlink":
        os.link(clip, dst)
    called = []
    with pytest.raises(InputError) as e:
        upscale_video(clip, dst, lambda frames: called.append(1) or frames)
    assert str(e.value) == f"cannot write {dst}: it is the input, {clip}, which it would overwrite: choose another dst"
    assert clip.read_bytes() == kept and not called
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"in.mp4", dst.name})


def test_two_runs_writing_one_output_at_once_each_write_a_file_of_their_own(tmp_path):
    # They wrote one hidden file: the second emptied the first's, each then wrote into
    # the other's, and the one to finish last failed naming that file, not found, after
    # the other's video had been renamed into place with frames of both.
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mp4"

    def with_a_run_inside(frames):
        for i, frame in enumerate(frames):
            if i == 1:  # mid-way, another run writes the same output, whole
                assert upscale_video(clip, out, lambda inner: (f.repeat(3, 0).repeat(3, 1) for f in inner)) == 4
                assert frame_times(out)[1] == (96, 72)
            yield frame.repeat(2, 0).repeat(2, 1)
    assert upscale_video(clip, out, with_a_run_inside) == 4
    times, size = frame_times(out)
    assert len(times) == 4 and size == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_a_video_whose_name_is_near_the_longest_a_file_may_have_is_written(tmp_path):
    # 250 bytes fit a file name; the partial file's name, 14 bytes longer, did not.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    name = "v" * 246 + ".mp4"
    assert upscale_video(clip, tmp_path / name, lambda frames: frames) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", name])


def test_videos_whose_names_start_like_a_protocol_are_files(tmp_path, monkeypatch):
    # FFmpeg took "ep1:pilot.mkv" for a URL of a protocol "ep1": not found, either way.
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "ep1:pilot.mp4", frames=2)
    assert upscale_video("ep1:pilot.mp4", "pilot:x2.mkv", lambda frames: frames) == 2
    assert len(frame_times(tmp_path / "pilot:x2.mkv")[0]) == 2
    assert audio_stream(tmp_path / "pilot:x2.mkv")[0] == "aac"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep1:pilot.mp4", "pilot:x2.mkv"]


def remux_with(src, dst, attachments=(), tags=None, stream_tags=(), dispositions=(), chapters=(), options=None):
    """``src`` remuxed into ``dst`` with (name, mimetype, bytes) attachments (Matroska
    only), the file's ``tags``, ``stream_tags`` and ``dispositions`` by stream index,
    ``chapters`` (start ms, end ms, title), and the muxer's ``options``."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options or {}) as out:
        if chapters:
            out.set_chapters([{"id": i, "start": start, "end": end, "time_base": Fraction(1, 1000),
                               "metadata": {"title": title}} for i, (start, end, title) in enumerate(chapters, 1)])
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams
                   if s.type in ("video", "audio", "subtitle")}
        out.metadata.update(tags or {})
        for index, stream_tags_ in dict(stream_tags).items():
            streams[index].metadata.update(stream_tags_)
        for index, disposition in dict(dispositions).items():
            streams[index].disposition = disposition
        for name, mimetype, data in attachments:
            out.add_attachment(name, mimetype, data)
        for packet in inp.demux():
            if packet.size:  # not the demuxer's empty flush packets
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


FONT = ("font.ttf", "font/ttf", bytes(range(256)) * 4)


def test_attachments_go_into_a_matroska_output_whole(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3, audio=None), tmp_path / "in.mkv", [FONT])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "cannot hold attachments" not in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [(s.name, s.mimetype, bytes(s.data)) for s in c.streams.attachments] == [FONT]
        assert c.streams.video[0].width == 64


def test_attachments_are_named_when_the_output_cannot_hold_them(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3, audio=None), tmp_path / "in.mkv", [FONT])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2)
    assert ".mp4 cannot hold attachments: dropping stream 1 (font.ttf; a .mkv output keeps it)" in proc.stderr
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].width == 64


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_timecode_is_kept(suffix, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None, timecode="01:02:03:04")
    with av.open(str(clip)) as c:
        assert len(c.streams.data) == 1  # the fixture made the track it says
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "dropping" not in proc.stderr
    with av.open(str(out)) as c:
        tags = {key.lower(): value for key, value in c.streams.video[0].metadata.items()}  # Matroska's are upper case
        assert tags["timecode"] == "01:02:03:04"
        assert c.streams.video[0].width == 64


@pytest.mark.parametrize("suffix, codec", [(".m4v", []), (".ts", []), (".mpg", ["--codec", "mpeg2video"])])
def test_a_timecode_a_container_cannot_hold_is_said_to_be_dropped(suffix, codec, tmp_path):
    # .m4v, MPEG-TS and MPEG program streams left it out without a word.
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None, timecode="01:02:03:04")
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, *codec)
    assert f"{suffix} cannot hold a timecode: dropping '01:02:03:04' (a .mp4, .mov or .mkv output keeps it)" \
        in proc.stderr
    with av.open(str(out)) as c:
        tags = [c.metadata] + [stream.metadata for stream in c.streams]
        assert not any(key.lower() == "timecode" for t in tags for key in t)


def test_the_muxers_said_to_drop_a_timecode_drop_it_and_no_other_does(tmp_path):
    # Keeps TIMECODELESS_MUXERS true to the FFmpeg here, for each container the commands write.
    from ncnn_sr.video_output import TIMECODELESS_MUXERS
    from ncnn_sr.video_options import VIDEO_CONTAINERS

    dropping = set()
    for ext in VIDEO_CONTAINERS:
        codec = {"webm": "libvpx-vp9", "ogv": "libvpx", "wmv": "wmv2", "flv": "flv", "mpg": "mpeg2video",
                 "mpeg": "mpeg2video", "vob": "mpeg2video"}.get(ext, "libx264")
        path = tmp_path / f"o.{ext}"
        with av.open(str(path), "w") as c:
            c.metadata["timecode"] = "01:00:00:00"
            stream = c.add_stream(codec, rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
            for frame in [av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")] * 10 + [None]:
                c.mux(stream.encode(frame))
            muxer = c.format.name
        with av.open(str(path)) as c:
            tags = [c.metadata] + [s.metadata for s in c.streams]
            if not any(key.lower() == "timecode" for t in tags for key in t):
                dropping.add(muxer)
    assert dropping == TIMECODELESS_MUXERS


def test_tags_and_dispositions_are_kept_and_stale_ones_left_out(tmp_path):
    commentary = av.stream.Disposition.comment
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      tags={"title": "Holiday 1998"},
                      stream_tags={0: {"title": "camera", "BPS": "123", "DURATION": "00:00:09.000000000"},
                                   1: {"language": "jpn", "title": "director"}},
                      dispositions={1: commentary})
    out = tmp_path / "out.mkv"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    with av.open(str(out)) as c:
        video, sound = c.streams.video[0], c.streams.audio[0]
        assert c.metadata["title"] == "Holiday 1998"
        assert video.metadata.get("title") == "camera"
        assert video.metadata.get("BPS") != "123" and video.metadata.get("DURATION") != "00:00:09.000000000"
        assert (sound.language, sound.metadata.get("title")) == ("jpn", "director")
        assert sound.disposition & commentary


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_aac_whose_header_is_damaged_is_re_encoded(suffix, tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16)
    # The ES descriptor's length cut to one byte (0x38), as a fuzzed file had it: FFmpeg
    # finds no AudioSpecificConfig in the esds. Into a .mkv the copy failed as
    # "out.mkv: cannot encode: Invalid argument"; an .mp4 took it on, headerless.
    data = clip.read_bytes()
    at = data.index(b"esds") + 8
    assert data[at:at + 4] == b"\x03\x80\x80\x80"
    clip.write_bytes(data[:at + 2] + b"\x38" + data[at + 3:])
    with av.open(str(clip)) as c:
        assert not c.streams.audio[0].codec_context.extradata  # the fixture is damaged as it says
    out = tmp_path / f"out{suffix}"
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, out, doubled) == 2
    assert "without its header (AudioSpecificConfig)" in caplog.text
    with av.open(str(out)) as c:
        sound = c.streams.audio[0].codec_context
        assert sound.extradata or sound.name != "aac"  # AC-3, a .mkv's own, has no header
        assert sum(frame.samples for frame in c.decode(audio=0)) > 0


def test_sound_whose_header_states_no_channels_is_dropped(tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16)
    # Four bytes into the sound's sample entry, its size as it was (a fuzzed file's):
    # its fields shift, FFmpeg reads 0 channels and no esds. The run failed as
    # "out.mkv: cannot encode: Invalid argument".
    data = clip.read_bytes()
    at = data.index(b"mp4a") + 6
    clip.write_bytes(data[:at] + bytes(4) + data[at:])
    with av.open(str(clip)) as c:
        assert c.streams.audio[0].codec_context.layout.nb_channels == 0  # the fixture is damaged as it says
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, tmp_path / "out.mkv", doubled) == 2
    assert "dropping audio stream 1: its header states no channels" in caplog.text
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert not c.streams.audio


def test_a_tag_that_is_not_utf8_is_read_with_replacement_characters(tmp_path):
    # PyAV 19 reads such a byte as a lone surrogate, which it wrote back as the byte:
    # the output's tags were no UTF-8 either.
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=2, width=16, height=16), tmp_path / "in.mkv",
                      tags={"title": "Holiday 1998"}, stream_tags={1: {"title": "director"}},
                      chapters=[(0, 40, "Opening scene")])
    data = clip.read_bytes()  # as Latin-1, its length unchanged: a lone 0xE9 is no UTF-8
    clip.write_bytes(data.replace(b"Holiday 1998", b"Holid\xe9y 1998").replace(b"director", b"dir\xe9ctor")
                     .replace(b"Opening scene", b"Opening sc\xe8ne"))
    out = tmp_path / "out.mkv"
    assert upscale_video(clip, out, doubled) == 2
    with av.open(str(out)) as c:
        assert c.metadata["title"] == "Holid\ufffdy 1998"
        assert c.streams.audio[0].metadata.get("title") == "dir\ufffdctor"
        assert [chapter["metadata"].get("title") for chapter in c.chapters()] == ["Opening sc\ufffdne"]


@pytest.mark.parametrize("suffix, lost", [
    (".3gp", "the file's and those of streams 0 and 1"),  # found by a sweep: lost without a word
    (".m4v", "those of streams 0 and 1"),
    (".mp4", None),
])
def test_titles_an_output_cannot_hold_are_named(suffix, lost, tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3, width=16, height=16), tmp_path / "in.mkv",
                      tags={"title": "Holiday 1998"}, stream_tags={0: {"title": "camera"}, 1: {"title": "director"}})
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    warning = f"{suffix} cannot hold titles: dropping {lost} (a .mp4 or .mkv output keeps them)"
    assert (warning in proc.stderr) if lost else ("cannot hold titles" not in proc.stderr), proc.stderr
    with av.open(str(out)) as c:
        titles = [c.metadata.get("title")] + [s.metadata.get("name") for s in c.streams]
    assert titles == ([None if "file" in lost else "Holiday 1998", None, None] if lost
                      else ["Holiday 1998", "camera", "director"])


@pytest.mark.parametrize("suffix, lost", [(".mkv", ""), (".mp4", ""), (".webm", "commentary (stream 1)"),
                                          (".mov", "forced (stream 2) and commentary (stream 1)")])
def test_forced_and_commentary_flags_are_kept_or_named_where_the_container_cannot_hold_them(suffix, lost, tmp_path):
    forced, commentary = av.stream.Disposition.forced, av.stream.Disposition.comment
    flags, sound, subtitles = _upscaled_with_track_flags(tmp_path, suffix, commentary, forced, "Hi")
    if lost:
        assert flags == [f"ncnn-sr: warning: {suffix} cannot hold the track flags {lost}: dropping them "
                         "(a .mkv output keeps them)"]
    else:
        assert flags == []
    assert bool(sound & commentary) == ("commentary" not in lost)
    assert bool(subtitles & forced) == ("forced" not in lost)


def _upscaled_with_track_flags(tmp_path, suffix, sound_flag, subtitles_flag, cue):
    """Upscale a clip whose sound and subtitle tracks carry the given flags into
    ``suffix``; give the warning lines about flags and the output tracks' flags."""
    subtitled = add_subtitles(make_clip(tmp_path / "plain.mp4", frames=2), tmp_path / "subs.mkv",
                              [("00:00:00,000", "00:00:00,050", cue)])
    clip = remux_with(subtitled, tmp_path / "in.mkv", dispositions={1: sound_flag, 2: subtitles_flag})
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    flags = [line for line in proc.stderr.splitlines() if "flags" in line]
    with av.open(str(out)) as c:
        return flags, c.streams.audio[0].disposition, c.streams.subtitles[0].disposition


@pytest.mark.parametrize("suffix, lost", [(".mkv", ""), (".mp4", ""),
                                          (".webm", "hearing-impaired (stream 2) and visual-impaired (stream 1)"),
                                          (".mov", "hearing-impaired (stream 2) and visual-impaired (stream 1)")])
def test_hearing_and_visual_impaired_flags_are_kept_or_named_where_the_container_cannot_hold_them(suffix, lost,
                                                                                                  tmp_path):
    # Subtitles for the deaf and a described-sound track lost their flags in a .webm or
    # a .mov without a word, where forced and commentary were named.
    hearing, visual = av.stream.Disposition.hearing_impaired, av.stream.Disposition.visual_impaired
    flags, sound, subtitles = _upscaled_with_track_flags(tmp_path, suffix, visual, hearing, "[door creaks]")
    assert flags == ([f"ncnn-sr: warning: {suffix} cannot hold the track flags {lost}: dropping them "
                      "(a .mkv output keeps them)"] if lost else [])
    assert bool(sound & visual) == bool(subtitles & hearing) == (not lost)


def test_an_mpeg_ts_keeps_one_impaired_flag_a_sound_track_and_names_the_other(tmp_path):
    # Its language descriptor gives a sound track one kind: hearing impaired, of both.
    hearing, visual = av.stream.Disposition.hearing_impaired, av.stream.Disposition.visual_impaired
    clip = remux_with(make_clip(tmp_path / "plain.mp4", frames=2), tmp_path / "in.mkv",
                      dispositions={1: hearing | visual})
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.ts", *X2)
    assert [line for line in proc.stderr.splitlines() if "flags" in line] == [
        "ncnn-sr: warning: .ts cannot hold the track flags visual-impaired (stream 1): dropping them "
        "(a .mkv output keeps them)"]
    with av.open(str(tmp_path / "out.ts")) as c:
        assert c.streams.audio[0].disposition & (hearing | visual) == hearing


def with_an_empty_track(src, dst):
    """``src`` remuxed into ``dst`` (mkv) with a second, French, sound track that has
    no packets."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        sound = out.add_stream_from_template(inp.streams.audio[0])
        out.add_stream_from_template(inp.streams.audio[0]).metadata["language"] = "fra"
        for packet in inp.demux():
            if packet.size:
                packet.stream = video if packet.stream.type == "video" else sound
                out.mux(packet)
    return dst


@pytest.mark.parametrize("suffix, kept", [(".mkv", True), (".ts", True), (".mp4", False), (".mov", False)])
def test_an_empty_sound_track_is_kept_or_named_where_the_container_leaves_it_out(suffix, kept, tmp_path):
    clip = with_an_empty_track(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mkv")
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    empty = [line for line in proc.stderr.splitlines() if "empty track" in line]
    assert empty == ([] if kept else [f"ncnn-sr: warning: {suffix} cannot hold an empty track: dropping audio "
                                      "stream 2, which has no packets (a .mkv output keeps it)"])
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == (2 if kept else 1)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_the_video_keeps_its_disposition(suffix, tmp_path):
    plain = make_clip(tmp_path / "plain.mkv", frames=2, audio=None)
    clip = remux_with(plain, tmp_path / "in.mkv", dispositions={0: av.stream.Disposition.default})
    upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames)
    with av.open(str(tmp_path / f"out{suffix}")) as c:
        assert c.streams.video[0].disposition & av.stream.Disposition.default


def two_languages(src, dst):
    """``src`` remuxed into ``dst`` with its sound twice: English, then Japanese as the
    default track."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        sounds = [out.add_stream_from_template(inp.streams.audio[0]) for _ in range(2)]
        for sound, language, disposition in zip(sounds, ("eng", "jpn"), (0, av.stream.Disposition.default)):
            sound.metadata["language"], sound.disposition = language, disposition
        for packet in inp.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                packet.stream = video
                out.mux(packet)
                continue
            for sound in sounds:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
                copy.time_base, copy.stream = packet.time_base, sound
                out.mux(copy)
    return dst


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_every_sound_track_keeps_its_language_and_which_is_the_default(suffix, tmp_path):
    clip = two_languages(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mkv")
    out = tmp_path / f"out{suffix}"
    upscale_video(clip, out, lambda frames: frames)
    with av.open(str(out)) as c:
        tracks = [(s.language, bool(s.disposition & av.stream.Disposition.default)) for s in c.streams.audio]
    assert tracks == [("eng", False), ("jpn", True)]


@pytest.mark.parametrize("suffix", [".ts", ".avi"])
def test_a_default_flag_on_a_later_sound_track_is_named_where_the_container_cannot_hold_it(suffix, tmp_path):
    clip = two_languages(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mkv")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / f"out{suffix}", *X2)
    assert [line for line in proc.stderr.splitlines() if "flags" in line] == [
        f"ncnn-sr: warning: {suffix} cannot hold the track flags default (stream 2): dropping them "
        "(a .mkv output keeps them)"]


@pytest.mark.parametrize("tracks", [1, 2])
def test_a_default_flag_on_the_first_sound_track_goes_unsaid_where_it_is_lost(tracks, tmp_path):
    # Players take the first track anyway; a Matroska file's tracks are all default unless said otherwise.
    plain = make_clip(tmp_path / "plain.mp4", frames=3)
    source = two_languages(plain, tmp_path / "two.mkv") if tracks == 2 else plain
    clip = remux_with(source, tmp_path / "in.mkv", dispositions={i: av.stream.Disposition.default
                                                                 for i in range(1, tracks + 1)})
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.ts", *X2)
    assert "flags" not in proc.stderr


@pytest.mark.parametrize("code, held", [("fre", "fra"), ("deu", "ger"), ("chi", "chi")])
def test_a_mov_keeps_a_language_by_the_one_of_its_two_codes_it_holds(code, held, tmp_path):
    # found by QA: a .mov names languages by the Macintosh's old list, which has one of
    # ISO 639-2's two codes for some: an mkv's French track (fre) lost its language
    # without a word, and so did German tagged deu.
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      stream_tags={1: {"language": code}})
    upscale_video(clip, tmp_path / "out.mov", lambda frames: frames)
    with av.open(str(tmp_path / "out.mov")) as c:
        assert c.streams.audio[0].language == held


def test_a_language_a_mov_cannot_hold_is_named_in_a_warning(tmp_path, caplog):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      stream_tags={0: {"language": "srp"}, 1: {"language": "hrv"}})
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mov", lambda frames: frames)
    assert ".mov holds languages of the Macintosh's old list only: dropping srp (stream 0), hrv (stream 1) " \
           "(a .mp4 or .mkv output keeps them)" in caplog.text
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert (c.streams.video[0].language, c.streams.audio[0].language) == ("srp", "hrv")


def test_a_language_a_mov_cannot_hold_is_named_in_one_line(tmp_path, caplog):
    # found by review: a tag holding a line break was put into the warning as it was.
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      stream_tags={1: {"language": "x\ny"}})
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mov", lambda frames: frames)
    lines = [r.getMessage() for r in caplog.records if "Macintosh" in r.getMessage()]
    assert lines == [".mov holds languages of the Macintosh's old list only: dropping x\\ny (stream 1) "
                     "(a .mp4 or .mkv output keeps them)"]


def test_a_blank_language_tag_loses_nothing_in_a_mov(tmp_path, caplog):
    # found by review: a tag of spaces gave "dropping  (stream 1)"; it names no language.
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      stream_tags={1: {"language": "  "}})
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mov", lambda frames: frames)
    assert "languages" not in caplog.text


def test_tags_go_along_when_the_sound_is_re_encoded(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mp4",
                      stream_tags={1: {"language": "fra"}})
    out = tmp_path / "out.webm"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "re-encoding audio stream 1" in proc.stderr
    with av.open(str(out)) as c:
        assert c.streams.audio[0].language == "fra"


def test_an_unknown_data_stream_is_dropped_with_a_warning(tmp_path):
    clip = tmp_path / "in.ts"
    with av.open(str(make_clip(tmp_path / "plain.mp4", frames=3, audio=None))) as inp, \
            av.open(str(clip), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        data = out.add_data_stream("klv")
        for packet in inp.demux():
            if packet.size:
                packet.stream = video
                out.mux(packet)
        for i in range(3):
            packet = av.Packet(b"\x06\x0e\x2b\x34" + bytes(12))
            packet.stream, packet.pts, packet.dts, packet.time_base = data, i * 3750, i * 3750, Fraction(1, 90000)
            out.mux(packet)
    with av.open(str(clip)) as c:
        assert len(c.streams.data) == 1  # the fixture made the stream it says
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "dropping data stream 1 (klv)" in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.video[0].width == 64 and not c.streams.data


def test_a_colour_matrix_ffmpeg_cannot_convert_is_named(tmp_path):
    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        video.codec_context.colorspace = 8  # YCgCo: H.264 can say so, swscale cannot decode it
        encode_all(out, video, (av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
                                .reformat(format="yuv420p") for i in range(3)))
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ncnn-sr: error: {clip}: cannot decode: its colour matrix, YCgCo (H.273 code 8), is not one FFmpeg "
        "can convert to RGB")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def deep_clip(path, level: int = 514, frames: int = 3, width: int = 32, height: int = 24, codec: str = "libx264"):
    """A lossless 10-bit H.264 (or ``codec``: libx265) clip of flat grey frames at
    10-bit luma ``level``: between two 8-bit levels when it is not a multiple of 4."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p10le"
        video.codec_context.options = ({"qp": "0"} if codec == "libx264"
                                       else {"x265-params": "lossless=1:log-level=error"})
        video.codec_context.colorspace, video.codec_context.color_range = 1, ColorRange.MPEG
        planes = [np.full((height, width), level, "<u2"), np.full((height // 2, width // 2), 512, "<u2"),
                  np.full((height // 2, width // 2), 512, "<u2")]

        def frame():
            made = av.VideoFrame(width, height, "yuv420p10le")
            for plane, values in zip(made.planes, planes):
                rows = np.zeros((values.shape[0], plane.line_size // 2), "<u2")
                rows[:, :values.shape[1]] = values
                plane.update(rows.tobytes())
            return made
        encode_all(out, video, (frame() for _ in range(frames)))
    return path


def luma_levels(path) -> set:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name == "yuv420p10le"
        return set(np.frombuffer(bytes(frame.planes[0]), "<u2").reshape(frame.height, -1)[:, :frame.width].ravel())


def doubled(frames):
    """The frames at twice their size, pixel for pixel: an upscaler that keeps levels."""
    for image in frames:
        yield np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)


def test_ten_bit_video_stays_ten_bit_through_the_upscaler(tmp_path):
    clip = deep_clip(tmp_path / "in.mp4")
    assert luma_levels(clip) == {514}  # the fixture holds what it says
    seen = []

    def recording(frames):
        for image in doubled(frames):
            seen.append(image.dtype)
            yield image
    upscale_video(clip, tmp_path / "out.mp4", recording)
    assert set(seen) == {np.dtype(np.uint16)}
    # Through 8 bits the level would come back as 512 or 516.
    assert luma_levels(tmp_path / "out.mp4") <= {513, 514, 515}


def test_the_command_writes_ten_bit_video_from_ten_bit_input(tmp_path):
    clip = deep_clip(tmp_path / "in.mkv")
    out = tmp_path / "out.mkv"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "warning" not in proc.stderr
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.pix_fmt, ctx.width) == ("yuv420p10le", 64)


def test_ten_bit_hevc_made_ten_bit_h264_by_default_is_said(tmp_path):
    # A phone's 10-bit HEVC (HDR) plays on the phone; its High 10 H.264 upscale plays
    # in few players (no hardware decoder, browser or Apple player), unsaid before.
    clip = deep_clip(tmp_path / "in.mkv", width=16, height=16, codec="libx265")
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert proc.returncode == 0, proc.stderr
    assert (f"{clip} is 10-bit HEVC: writing 10-bit H.264 (High 10), which hardware decoders, browsers and "
            "Apple's players mostly cannot play; --codec libx265 keeps its 10 bits in a form they play, "
            "--pix-fmt yuv420p writes 8-bit H.264") in proc.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    # Asked for, either way, it is not said again.
    for asked in (["--codec", "libx264"], ["--pix-fmt", "yuv420p10le"]):
        proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "asked.mkv", *X2, *asked)
        assert "warning" not in proc.stderr, asked


def test_ten_bit_hevc_made_ten_bit_h264_by_the_drop_in_names_the_command_that_chooses(tmp_path):
    # The drop-in, which has no --codec or --pix-fmt, was told to give them.
    clip = deep_clip(tmp_path / "in.mkv", width=16, height=16, codec="libx265")
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / "out.mp4", "-s", "2", "-g", "-1")
    assert ("mostly cannot play; 'ncnn-sr video --codec libx265' keeps its 10 bits in a form they play, "
            "'ncnn-sr video --pix-fmt yuv420p' writes 8-bit H.264") in proc.stderr, proc.stderr


def test_upscale_videos_warnings_name_encode_options_fields_to_the_library(tmp_path, caplog):
    # The library's caller, who gives EncodeOptions, was told of --codec, --pix-fmt,
    # --field-rate and --deinterlace, the command's flags.
    clip = deep_clip(tmp_path / "in.mkv", width=16, height=16, codec="libx265")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
        upscale_video(clip, tmp_path / "fields.mkv", lambda frames: frames, EncodeOptions(field_rate=True))
    assert ("mostly cannot play; codec='libx265' keeps its 10 bits in a form they play, pix_fmt='yuv420p' writes "
            "8-bit H.264") in caplog.text
    assert "does not say it is interlaced: field_rate keeps its 24 fps (deinterlace='on' " in caplog.text
    assert "--" not in caplog.text, caplog.text


@pytest.mark.parametrize("codec, name, pix_fmt", [("huffyuv", "out.avi", "yuv422p"),
                                                  ("libx264rgb", "out.mkv", "rgb24")])
def test_ten_bit_input_into_an_encoder_without_4_2_0_or_ten_bits_is_said(codec, name, pix_fmt, tmp_path):
    # Those given their nearest format (no 4:2:0) wrote 8 bits without a word.
    clip = deep_clip(tmp_path / "in.mkv", width=16, height=16)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", codec)
    assert f"{clip} has 10-bit samples, which {codec} cannot encode: writing 8-bit {pix_fmt}" in proc.stderr


def test_ten_bit_input_into_an_encoder_without_ten_bits_is_said(tmp_path):
    clip = deep_clip(tmp_path / "in.mkv")
    out = tmp_path / "out.webm"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    takes = [f.name for f in av.codec.Codec("libvpx-vp9", "w").video_formats or ()]
    if "yuv420p10le" in takes:  # an FFmpeg whose VP9 encoder has 10 bits: nothing to say
        assert "warning" not in proc.stderr
        return
    assert f"{clip} has 10-bit samples, which libvpx-vp9 cannot encode: writing 8-bit yuv420p" in proc.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("codec, name", [("libx265", "out.mkv"), ("libsvtav1", "out.mp4"), ("libx264", "out.mkv")])
def test_hdr10_mastering_metadata_goes_along(codec, name, tmp_path):
    clip = make_hdr_clip(tmp_path / "in.mkv")
    assert hdr_metadata(clip) == HDR10  # the fixture holds what it says
    upscale_video(clip, tmp_path / name, doubled, EncodeOptions(codec=codec))
    kept = hdr_metadata(tmp_path / name)
    # AV1 codes chromaticities in 1/65536 and the least luminance in 1/16384.
    assert kept is not None and kept == pytest.approx(HDR10, abs=5e-5)
    assert colour_tags(tmp_path / name)[:3] == (9, 9, 16)


def test_hdr10_metadata_an_encoder_cannot_write_is_named(tmp_path, caplog):
    clip = make_hdr_clip(tmp_path / "in.mkv")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.webm", doubled)
    assert "libvpx-vp9 cannot write the HDR mastering display and light levels" in caplog.text
    assert hdr_metadata(tmp_path / "out.webm") is None


def test_video_without_hdr_metadata_gets_none(tmp_path):
    clip = deep_clip(tmp_path / "in.mkv")
    upscale_video(clip, tmp_path / "out.mkv", doubled, EncodeOptions(codec="libx265"))
    assert hdr_metadata(tmp_path / "out.mkv") is None


def test_an_explicit_eight_bit_format_is_kept_for_ten_bit_input(tmp_path):
    clip = deep_clip(tmp_path / "in.mp4")
    seen = []

    def recording(frames):
        for image in doubled(frames):
            seen.append(image.dtype)
            yield image
    upscale_video(clip, tmp_path / "out.mp4", recording, EncodeOptions(pix_fmt="yuv420p"))
    assert set(seen) == {np.dtype(np.uint8)}
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def transparent_clip(path, codec, pix_fmt, frames=2):
    """A clip whose frames are half transparent, in ``pix_fmt`` (one with alpha)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=24)
        video.width, video.height, video.pix_fmt = 32, 24, pix_fmt
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(24, 32, 4, seed=i), format="rgba")
                                for i in range(frames)])
    return path


@pytest.mark.parametrize("name,codec,pix_fmt", [("in.mov", "png", "rgba"), ("in.webm", "libvpx-vp9", "yuva420p")])
def test_transparency_video_cannot_keep_is_said_to_be_dropped(name, codec, pix_fmt, tmp_path, caplog):
    # Left out without a word; and a WebM's flag that its video has alpha went along onto
    # a video without.
    clip = transparent_clip(tmp_path / name, codec, pix_fmt)
    out = tmp_path / f"out{clip.suffix}"
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(clip, out, lambda frames: frames) == 2
    assert f"{clip} has transparency (an alpha channel), which the video made of it leaves out" in caplog.text
    with av.open(str(out)) as c:
        assert not {key.lower() for key in c.streams.video[0].metadata} & {"alpha_mode"}


@pytest.mark.parametrize("transparent", [False, True])
def test_a_gif_is_said_to_lose_transparency_only_where_it_has_some(transparent, tmp_path, caplog):
    # found by a README audit: FFmpeg decodes every GIF with an alpha plane (bgra), so
    # an opaque GIF given to `ncnn-sr video` was said to have transparency, dropped
    frames = [picture(16, 16, 4 if transparent else 3, seed=i) for i in range(3)]
    if transparent:
        for frame in frames:
            frame[:4, :, 3] = 0
    images = [Image.fromarray(f) for f in frames]
    images[0].save(tmp_path / "in.gif", save_all=True, append_images=images[1:], duration=40, loop=0)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(tmp_path / "in.gif", tmp_path / "out.mp4", lambda frames: frames) == 3
    assert ("has transparency (an alpha channel)" in caplog.text) is transparent, caplog.text


def test_an_animated_avif_makes_a_video_of_its_animation_not_of_its_still_picture(tmp_path, caplog):
    # FFmpeg gives an AVIF's still picture (an item: one frame, no duration) as video
    # stream 0 and its animation as stream 1: 'ncnn-sr video' upscaled the still alone,
    # "dropping video stream 1: only video stream 0 is upscaled", a video of 1 frame
    # of 3, as the hint 'ncnn-sr -i a.avif -o out.mp4' gives had it run.
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    images = [Image.fromarray(np.full((16, 16, 3), c, np.uint8)) for c in colours]
    images[0].save(tmp_path / "a.avif", save_all=True, append_images=images[1:], duration=100)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(tmp_path / "a.avif", tmp_path / "out.mp4", lambda frames: frames) == 3
    assert not caplog.records, caplog.text
    with av.open(str(tmp_path / "out.mp4")) as c:
        means = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0) for f in c.decode(video=0)]
    assert [int(np.argmax(m)) for m in means] == [0, 1, 2]


def test_frames_with_side_data_pyav_has_no_name_for_are_upscaled(tmp_path):
    # FFmpeg 8 gives each MJPEG frame that holds EXIF (a camera's clip) the frame side
    # data EXIF, type 31, which PyAV's enum of types lacks: reading a frame's display
    # matrix raised "ValueError: 31 is not a valid Type", a traceback for the run.
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    with av.open(str(tmp_path / "cam.avi"), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuvj420p"
        for i, colour in enumerate(colours):
            jpeg = io.BytesIO()
            Image.fromarray(np.full((24, 32, 3), colour, np.uint8)).save(jpeg, "JPEG", exif=exif.tobytes())
            packet = av.Packet(jpeg.getvalue())
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, i, i, Fraction(1, 10)
            out.mux(packet)
    assert upscale_video(tmp_path / "cam.avi", tmp_path / "out.mkv", lambda frames: frames) == 3
    with av.open(str(tmp_path / "out.mkv")) as c:
        means = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0) for f in c.decode(video=0)]
    assert [int(np.argmax(m)) for m in means] == [0, 1, 2]


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_chapters_are_kept(suffix, tmp_path):
    marks = [(0, 60, "Opening"), (60, 125, "Part A")]
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv", chapters=marks)
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--fps", "30")
    with av.open(str(out)) as c:
        got = [(round(ch["start"] * ch["time_base"] * 1000), round(ch["end"] * ch["time_base"] * 1000),
                ch["metadata"].get("title")) for ch in c.chapters()]
    assert got == marks


@pytest.mark.parametrize("suffix", [".ts", ".m2ts"])
def test_an_mpeg_ts_output_holds_h264_and_its_sound_as_they_are(suffix, tmp_path):
    # FFmpeg says an MPEG-TS holds only MPEG-2 video and MP2 sound: it lists no codecs.
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / f"out{suffix}"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "warning" not in proc.stderr
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams] == ["h264", "aac"]
    assert frame_times(out)[1] == (64, 48)


@pytest.mark.parametrize("frames, codec", [(2, "libx264"), (3, "libx264"), (4, "mpeg2video")])
def test_a_tiny_mpeg_ts_output_is_read_back_as_one(frames, codec, tmp_path):
    # FFmpeg takes a file for an MPEG-TS only with more than 10 of its 204-byte
    # packets' worth: shorter, 9 or 10 packets of 188, were read as an MPEG program
    # stream, which found no frame ("not a video FFmpeg can read (End of file)").
    clip = make_clip(tmp_path / "in.mp4", frames=frames, width=16, height=16, audio=None)
    out = tmp_path / "out.ts"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--codec", codec)
    with av.open(str(out)) as c:
        assert c.format.name == "mpegts"
    assert len(frame_times(out)[0]) == frames
    run(NCNN_SR, "video", "-i", out, "-o", tmp_path / "again.mkv", *X2)


def test_pictures_attached_to_a_matroska_file_stay_attached(tmp_path):
    # FFmpeg shows a Matroska attachment that is a picture as a cover-art video stream.
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "JPEG")
    picture_file = ("cover.jpg", "image/jpeg", buffer.getvalue())
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3, audio=None), tmp_path / "in.mkv",
                      [picture_file, FONT])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "dropping" not in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        [picture] = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        assert (picture.metadata["filename"], picture.metadata["mimetype"]) == picture_file[:2]
        assert bytes(next(c.demux(picture))) == picture_file[2]
        assert [s.name for s in c.streams.attachments] == ["font.ttf"]


def _picture_file(name, kind):
    """A (name, mimetype, bytes) Matroska attachment: an 8x8 picture in ``kind`` (JPEG, PNG)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, kind)
    return name, f"image/{kind.lower()}", buffer.getvalue()


@pytest.mark.parametrize("piped", [False, True])
@pytest.mark.parametrize("name, kind", [("cover.jpg", "JPEG"), ("cover.png", "PNG")])
def test_a_matroska_cover_becomes_the_cover_art_of_an_mp4(tmp_path, name, kind, piped):
    # a .mkv's cover.jpg was dropped from an .mp4 output, which holds
    # cover art, as if it were any attached file; piped in, it was dropped too, as one
    # the .mp4 "cannot hold": looked for past the packets the run had read ahead
    cover = _picture_file(name, kind)
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3, audio=None), tmp_path / "in.mkv",
                      [cover, _picture_file("logo.png", "PNG")])
    out = tmp_path / "out.mp4"
    if piped:
        proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", out, *X2], input=clip.read_bytes(),
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        proc.stderr = proc.stderr.decode()
    else:
        proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    assert "dropping stream 1" not in proc.stderr
    assert ".mp4 cannot hold attachments: dropping stream 2 (logo.png; a .mkv output keeps it)" in proc.stderr
    covers, dispositions = _cover_bytes(out)
    assert covers == [cover[2]]  # copied, not re-encoded
    assert dispositions == [av.stream.Disposition.default, av.stream.Disposition.attached_pic]
    times, size = frame_times(out)
    assert (len(times), size) == (3, (64, 48))


def cues(path):
    """(start s, end s, text) of each cue of the first subtitle stream, as decoded."""
    with av.open(str(path)) as c:
        stream = c.streams.subtitles[0]
        return [(float(p.pts * p.time_base), float((p.pts + p.duration) * p.time_base), s.dialogue.decode())
                for p in c.demux(stream) if p.size for s in stream.decode(p)]


def test_mov_text_subtitles_are_converted_to_ass_for_mkv(tmp_path, caplog):
    clip = add_mov_text(make_clip(tmp_path / "plain.mp4", frames=3, audio=None), tmp_path / "in.mp4")
    assert cues(clip) == [(0.0, 0.1, "Hello")]  # the fixture holds what it says
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    assert ".mkv cannot hold mov_text subtitles: converting subtitle stream 1 to ass" in caplog.text
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.streams.subtitles[0].codec_context.codec.canonical_name == "ass"
    assert cues(tmp_path / "out.mkv") == [(0.0, 0.1, "Hello")]


def test_mov_text_subtitles_are_copied_into_mov_and_named_when_dropped(tmp_path):
    clip = add_mov_text(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mp4")
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mov", *X2)
    assert packets(tmp_path / "out.mov", "subtitles") == packets(clip, "subtitles")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2)
    assert ".avi cannot hold mov_text subtitles: dropping stream 2 (a .mkv output keeps it)" in proc.stderr


@pytest.mark.parametrize("suffix, told", [
    (".avi", ".avi cannot hold srt subtitles: dropping streams 2 and 3 (a .mkv output keeps them)"),
    (".mp4", ".mp4 cannot hold srt subtitles: converting subtitle streams 2 and 3 to mov_text"),
])
def test_subtitle_streams_alike_are_named_in_one_warning(suffix, told, tmp_path, caplog):
    # Each was a line of its own, a dropped one as "srt subtitle" in the singular.
    clip = add_subtitles(make_clip(tmp_path / "in.mp4", frames=3), tmp_path / "in.mkv", CUES, tracks=2)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames)
    assert [r.getMessage() for r in caplog.records if "subtitle" in r.getMessage()] == [told]


def test_text_subtitles_are_converted_to_webvtt_for_webm(tmp_path):
    clip = add_subtitles(make_clip(tmp_path / "plain.mp4", frames=3, audio=None), tmp_path / "in.mkv", CUES)
    upscale_video(clip, tmp_path / "out.webm", lambda frames: frames)
    with av.open(str(tmp_path / "out.webm")) as c:
        assert c.streams.subtitles[0].codec_context.name == "webvtt"
    assert cues(tmp_path / "out.webm") == cues(clip) == [(0.0, 0.1, "Hello there"), (0.12, 0.2, "General Kenobi")]


def test_an_mp4s_chapter_track_is_not_called_a_dropped_stream(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mp4",
                      chapters=[(0, 60, "Opening"), (60, 125, "Part A")])
    with av.open(str(clip)) as c:
        assert [s.name for s in c.streams.data] == ["bin_data"]  # how FFmpeg reads the chapter track back
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert "dropping" not in proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Opening", "Part A"]


def test_chapters_a_container_cannot_hold_are_named_in_a_warning(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=3), tmp_path / "in.mkv",
                      chapters=[(0, 60, "Opening"), (60, 125, "Part A")])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2)
    assert ".avi cannot hold chapters: dropping 2 (a .mkv output keeps them)" in proc.stderr


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_an_mp4s_track_titles_are_kept(suffix, tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mp4", frames=3), tmp_path / "in.mp4",
                      stream_tags={0: {"title": "camera"}, 1: {"title": "director"}})
    with av.open(str(clip)) as c:
        assert c.streams.audio[0].metadata.get("name") == "director"  # an mp4's titles read back as "name"
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    with av.open(str(out)) as c:
        titles = [s.metadata.get("name", s.metadata.get("title")) for s in (c.streams.video[0], c.streams.audio[0])]
    assert titles == ["camera", "director"]


def test_an_encoder_of_standard_rates_gets_the_nearest_one(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=Fraction(23), audio=None)
    out = tmp_path / "out.mpg"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--codec", "mpeg2video")
    assert ("mpeg2video encodes only standard frame rates: writing a constant 24000/1001 fps (the input's is 23)"
            in proc.stderr)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)


@pytest.mark.parametrize("flags", [[], ["--fps", "10"]])
def test_mpeg1_is_given_only_its_standard_rates(flags, tmp_path):
    # FFmpeg lists Xing's unofficial 5, 10, 12 and 15 fps among MPEG-1's rates, then
    # refuses them: a 10 fps clip (or --fps 10) was "cannot encode with mpeg1video:
    # Invalid argument" once the model had run.
    clip = make_clip(tmp_path / "in.mp4", frames=3, rate=Fraction(10), audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mpg", *X2, "--codec", "mpeg1video", *flags,
               check_ok=False)
    if flags:
        one_line_failure(proc, tmp_path, "mpeg1video cannot encode 10 fps: it takes 24000/1001, 24, 25, 30000/1001, "
                                         "30, 50, 60000/1001, 60")
        return
    assert "mpeg1video encodes only standard frame rates: writing a constant 24000/1001 fps" in proc.stderr
    with av.open(str(tmp_path / "out.mpg")) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)


def test_an_encoder_of_standard_rates_takes_a_standard_input_rate_without_a_word(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=Fraction(25), audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mpg", *X2, "--codec", "mpeg1video")
    assert "warning" not in proc.stderr


def test_an_avi_is_written_at_the_frame_rate_of_its_input(tmp_path):
    # An AVI counts frames at its time base: at an mp4's 1/12288 it came out at 600
    # fps, every frame followed by 24 empty ones.
    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=None)
    assert upscale_video(clip, tmp_path / "out.avi", lambda frames: frames) == 6
    with av.open(str(tmp_path / "out.avi")) as c:
        assert (c.streams.video[0].average_rate, c.streams.video[0].frames) == (24, 6)


def test_an_ogv_is_written_at_the_frame_rate_of_its_input(tmp_path):
    # Ogg's VP8 mapping counts frames: at an mp4's 1/12288 FFmpeg read the first frame
    # back a frame late, one tick before the second, so players skipped it.
    clip = make_clip(tmp_path / "in.mp4", frames=4, audio=None)
    upscale_video(clip, tmp_path / "out.ogv", lambda frames: frames, EncodeOptions(codec="libvpx"))
    with av.open(str(tmp_path / "out.ogv")) as c:
        assert [f.time for f in c.decode(video=0)] == pytest.approx([0, 1 / 24, 2 / 24, 3 / 24])


@pytest.mark.parametrize("name, options", [("out.avi", EncodeOptions()), ("out.ogv", EncodeOptions(codec="libvpx")),
                                           ("out.mpg", EncodeOptions(codec="mpeg2video"))])
def test_a_variable_rate_at_a_constant_rate_of_its_own_keeps_every_frame(name, options, tmp_path, caplog):
    # found by QA: a phone's 30 fps with two frames missing averages 28.1 fps, which an
    # .avi or .ogv was written at: frames 1/30 s apart fell into one slot, and 2 of the
    # 30 were dropped (ffmpeg writes it at 29.97, FFmpeg's guess of its rate, each frame
    # kept). MPEG-2 took 29.97, the standard rate nearest, saying the input's was 28.108.
    ms = [round(i * 1000 / 30) + (33 if i >= 10 else 0) + (34 if i >= 20 else 0) for i in range(30)]
    clip = make_clip(tmp_path / "in.mp4", frames=30, frame_ms=ms, rate=Fraction(30), audio=None)
    counted.seen = 0
    written = upscale_video(clip, tmp_path / name, counted, options)
    assert counted.seen == 30 and written == 32  # the two missing ones' slots show the frame before
    with av.open(str(tmp_path / name)) as c:
        slots = [round(f.time * 30000 / 1001) for f in c.decode(video=0)]
    assert slots == list(range(slots[0], slots[0] + 32))  # a frame a slot, from where the container starts them
    assert "warning" not in caplog.text.lower()  # its rate is 29.97: nothing to say of it


def test_sound_that_starts_late_starts_as_late_in_an_ogv(tmp_path):
    # Ogg counts a sound stream's samples from 0: its first time was lost, and sound
    # 0.1 s late in the input played 0.1 s early against the picture.
    clip = make_clip(tmp_path / "in.mp4", frames=8, sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.ogv", lambda frames: frames, EncodeOptions(codec="libvpx"))
    with av.open(str(tmp_path / "out.ogv")) as c:
        frames = list(c.decode(audio=0))
    rate = frames[0].sample_rate
    sound = np.abs(np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64))
    assert sound[:round(0.07 * rate)].max() < 0.01 * sound.max()  # AAC spreads an onset a frame back
    assert sound[round(0.11 * rate):round(0.12 * rate)].max() > 0.5 * sound.max()


@pytest.mark.parametrize("audio, src", [("aac", "in.mp4"), ("libopus", "in.mkv")])
def test_sound_that_starts_late_starts_as_late_in_an_avi(audio, src, tmp_path):
    # An AVI plays each stream from its first packet, and its picture is counted from
    # where the input starts: sound that came in 0.1 s after the picture, copied or
    # re-encoded, played from 0, 0.1 s early against it.
    clip = make_clip(tmp_path / src, frames=8, audio=audio, sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    # Both become MP3 (FFmpeg's AAC encoder is not taken there unopened), whose
    # encoder's delay, 1105 samples at 48 kHz, an AVI plays: the silence that leads
    # the sound is that much shorter, else it came 23 ms late.
    assert audio_stream(tmp_path / "out.avi")[0] == "mp3float"
    assert tone_onset(tmp_path / "out.avi") == pytest.approx(0.1, abs=0.002)


def test_surround_sound_that_starts_late_keeps_its_codec_and_channels_in_an_avi(tmp_path):
    # Re-encoded to lead it with silence, it became the AVI's MP3, downmixed to stereo.
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="ac3", layout="5.1", sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    with av.open(str(tmp_path / "out.avi")) as c:
        sound = c.streams.audio[0].codec_context
        assert (sound.name, sound.channels) == ("ac3", 6)
    # AC3's encoder leads with 256 samples (5 ms), which the silence before is short of.
    assert tone_onsets(tmp_path / "out.avi")[0] == pytest.approx(0.1, abs=0.002)


def test_sound_that_starts_too_little_late_to_be_heard_is_still_copied_into_an_avi(tmp_path):
    # Re-encoding for sound 30 ms late (less than players' sync is noticed by) made
    # AC3 MP3, its surround stereo.
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="ac3", sound_spans=[(0.03, 0.3)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert audio_stream(tmp_path / "out.avi")[0] == "ac3"


def test_copied_sound_that_starts_late_starts_as_late_in_an_ogv(tmp_path):
    # Ogg counts a sound stream's samples from 0: Opus, which it holds, was copied,
    # its first time lost, and played 0.1 s early against the picture.
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="libopus", sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.ogv", lambda frames: frames, EncodeOptions(codec="libvpx"))
    assert tone_onset(tmp_path / "out.ogv") == pytest.approx(0.1, abs=0.005)


@pytest.mark.parametrize("src, audio, codec, late", [
    ("in.mp4", "aac", "aac", 1024),  # copied: FFmpeg's AAC encoder's priming, 21 ms at 48 kHz
    ("in.mkv", "libmp3lame", "mp3float", 1105),  # copied: LAME's, 23 ms
    ("in.mkv", "libopus", "mp3float", 1105),  # re-encoded to MP3, starting with the picture
])
def test_aac_or_mp3_sound_in_an_avi_comes_its_priming_late_and_says_so(src, audio, codec, late, tmp_path, caplog):
    # An AVI plays each sound stream from its first packet, its packets' times
    # unread, and holds no edit list, no initial padding: the priming its encoder
    # leads AAC or MP3 with, which an mp4, a Matroska file or an mp3's LAME tag cut,
    # plays, and the sound comes that much late against the picture. Cutting it
    # would damage the sound's first 16 ms (the decoder needs the packet before);
    # moving the picture is possible only by whole frames (42 ms at 24 fps). Within
    # a frame, then, not within 2 ms, and said (with -v: under what viewers notice).
    clip = make_clip(tmp_path / src, frames=6, audio=audio)
    caplog.set_level(logging.INFO)
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert audio_stream(tmp_path / "out.avi")[0] == codec
    offset = tone_onset(tmp_path / "out.avi") - tone_onset(clip)
    assert offset == pytest.approx(late / 48000, abs=0.001) and offset < 1 / 24
    said = [r.getMessage() for r in caplog.records if "late against the picture" in r.getMessage()]
    assert said == [f".avi plays the priming of {'aac' if audio == 'aac' else 'mp3'} sound: audio stream 1 comes "
                    f"{round(1000 * late / 48000)} ms late against the picture (a .mkv or .mp4 output keeps it "
                    "in step)"]


@pytest.mark.parametrize("src, audio", [("in.mkv", "pcm_s16le"), ("in.mp4", "aac")])
def test_sound_in_an_avi_with_no_priming_played_is_not_said_to_be_late(src, audio, tmp_path, caplog):
    # PCM has none; sound that starts late is led by silence short of the priming.
    spans = [(0.1, 0.3)] if audio == "aac" else None
    clip = make_clip(tmp_path / src, frames=8, audio=audio, sound_spans=spans)
    caplog.set_level(logging.INFO)
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert tone_onset(tmp_path / "out.avi") == pytest.approx(tone_onset(clip), abs=0.002)
    assert not [r for r in caplog.records if "late against the picture" in r.getMessage()]


def tone_onsets(path) -> list[float]:
    """When each burst of the first audio stream's tone is first heard (s), as
    tone_onset, counting its decoded samples on from the first's time: a new burst
    after 20 ms without one loud sample."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    rate, start = frames[0].sample_rate, float(frames[0].pts * frames[0].time_base)
    samples = np.concatenate([f.to_ndarray()[:1].reshape(-1) for f in frames])
    loud = np.nonzero(np.abs(samples / (32768 if samples.dtype.kind == "i" else 1)) > 0.1)[0]
    firsts = [loud[0]] + [b for a, b in zip(loud, loud[1:]) if b - a > 0.02 * rate]
    return [start + i / rate for i in firsts]


@pytest.mark.parametrize("name, audio, options", [
    ("out.avi", "aac", EncodeOptions()),  # AAC to MP3 (as it starts late), its encoder's delay in the lead
    ("out.ogv", "pcm_s16le", EncodeOptions(codec="libvpx")),  # to FLAC
])
def test_a_gap_in_reencoded_sound_is_kept_in_an_avi_or_ogv(name, audio, options, tmp_path):
    # Neither stamps sound with times: the sound after a gap of 0.25 s, re-encoded at
    # its time, played right after the sound before it, 0.25 s early.
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio=audio, sound_spans=[(0.05, 0.1), (0.35, 0.45)])
    upscale_video(clip, tmp_path / name, lambda frames: frames, options)
    # Around a gap the encoders' frames move sound by up to a frame (as ffmpeg's).
    first, after = tone_onsets(tmp_path / name)
    assert first == pytest.approx(0.05, abs=0.002) and after == pytest.approx(0.35, abs=0.02)


@pytest.mark.parametrize("name", ["out.mov", "out.avi"])
def test_a_gap_in_copied_pcm_sound_is_kept_in_a_mov_or_avi(name, tmp_path):
    # Both time PCM by its samples alone (a .mov's stts a tick a sample): the sound
    # after a pause of 0.25 s, copied, played right after the sound before it.
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio="pcm_s16le", sound_spans=[(0, 0.1), (0.35, 0.45)])
    upscale_video(clip, tmp_path / name, lambda frames: frames)
    assert audio_stream(tmp_path / name)[0] == "pcm_s16le"
    assert tone_onsets(tmp_path / name) == [pytest.approx(t, abs=0.002) for t in (0, 0.35)]


@pytest.mark.parametrize("src, audio, name, options", [
    ("in.mkv", "libopus", "out.ogv", EncodeOptions(codec="libvpx")),  # Opus, which an Ogg file holds
    ("in.mkv", "ac3", "out.avi", EncodeOptions()),
    # An mp4 or .mov states the pause as the duration of the packet before it.
    ("in.mov", "aac", "out.avi", EncodeOptions()),
    ("in.mp4", "libopus", "out.ogv", EncodeOptions(codec="libvpx")),  # Opus, whose header states no frame size
])
def test_a_pause_in_sound_that_could_be_copied_is_kept_in_an_ogv_or_avi(src, audio, name, options, tmp_path):
    # Neither times sound but by its samples: copied, the sound after a pause of 0.25 s
    # played right after the sound before it, 0.25 s early against the picture.
    clip = make_clip(tmp_path / src, frames=12, audio=audio, sound_spans=[(0, 0.1), (0.35, 0.45)])
    upscale_video(clip, tmp_path / name, lambda frames: frames, options)
    # AAC becomes MP3 there, whose encoder's delay (1105 samples) an AVI keeps. The
    # encoders code whole frames (AC3's of 32 ms): the burst after the pause moves by up to one.
    delay = 1105 / 48000 if audio == "aac" else 0
    assert tone_onsets(tmp_path / name) == [pytest.approx(delay, abs=0.01), pytest.approx(0.35 + delay, abs=0.04)]


# Whether PyAV's FFmpeg states the durations of the packets of sound a Matroska stores
# after its video, and of ALAC's: FFmpeg 9 (PyAV 19) does. The files without, FFmpeg
# 8's (PyAV 18), are what the tests below are of; with 9, they check the copy alone.
FFMPEG_TIMES_SOUND_AFTER_VIDEO = av.library_versions["libavformat"] >= (63,)


def test_a_pause_in_sound_whose_packets_state_no_durations_is_kept_in_an_avi(tmp_path):
    # found by QA: a Matroska whose sound comes after its video (FFmpeg reads no frame
    # size for it then, so its AAC blocks have no durations) was copied into an .avi:
    # a pause of 10 s failed the run as "cannot encode: Invalid argument" (the AVI
    # muxer's "Too large number of skipped frames"), a shorter one was lost unsaid
    clip = make_clip(tmp_path / "in.mkv", frames=40, rate=Fraction(2), width=16, height=16,
                     sound_spans=[(0.0, 5.0), (15.5, 20.0)])
    with av.open(str(clip)) as c:
        assert any(p.duration for p in c.demux(audio=0)) == FFMPEG_TIMES_SOUND_AFTER_VIDEO
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert audio_stream(tmp_path / "out.avi")[0] == "mp3float"  # re-encoded, its pause kept
    assert tone_onsets(tmp_path / "out.avi") == [pytest.approx(1105 / 48000, abs=0.01),
                                                 pytest.approx(15.5 + 1105 / 48000, abs=0.04)]


@pytest.mark.parametrize("audio, frames, rate, name", [
    ("alac", 8, Fraction(24), "out.mp4"),  # FFmpeg has no parser to time ALAC by: no packet has a duration
    ("aac", 40, Fraction(2), "out.mov"),  # AAC stored after the video: no frame size read, nor durations
])
def test_copied_sound_whose_packets_state_no_durations_keeps_its_last_packet_in_an_mp4(audio, frames, rate, name,
                                                                                        tmp_path):
    # An mp4's muxer times each sample by the next one's start, and the last by its
    # packet's duration: 0 put it past the edit list's end, where readers leave it out
    # (ALAC's last 3712 samples, 77 ms; AAC's last 1024).
    clip = make_clip(tmp_path / "in.mkv", frames=frames, rate=rate, width=16, height=16, audio=audio)
    with av.open(str(clip)) as c:
        assert any(p.duration for p in c.demux(audio=0)) == FFMPEG_TIMES_SOUND_AFTER_VIDEO
    with av.open(str(clip)) as c:
        decoded = [f.samples for f in c.decode(audio=0)]
    with av.open(str(clip)) as c:
        sound = c.streams.audio[0]
        last = [p for p in c.demux(sound) if p.size][-1]
        # FFmpeg 9 states the encoder's padding of the last frame (AAC's: 496 of its
        # 1024 samples) as that packet's shorter duration, which an mp4 leaves out;
        # Matroska's millisecond times round it.
        told = round(last.duration * last.time_base * sound.rate) if last.duration else decoded[-1]
        stated = sum(decoded[:-1]) + (told if decoded[-1] - told > sound.rate // 1000 else decoded[-1])
    upscale_video(clip, tmp_path / name, lambda frames: frames)
    with av.open(str(tmp_path / name)) as c:
        assert c.streams.audio[0].codec_context.name == audio  # copied
        assert sum(f.samples for f in c.decode(audio=0)) == stated


def test_flac_that_starts_late_is_re_encoded_into_an_avi_at_48_khz(tmp_path):
    # FLAC's encoder ends with an empty packet (its header's update) a few samples on
    # from the last: an AVI times FLAC by whole 4608-sample blocks, where both fell in
    # one, and its muxer refused the second: "cannot encode: Invalid argument".
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="flac", sound_spans=[(0.13, 0.3)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert audio_stream(tmp_path / "out.avi")[0] == "flac"
    assert tone_onsets(tmp_path / "out.avi") == [pytest.approx(0.13, abs=0.002)]


@pytest.mark.parametrize("audio, layout", [("flac", "mono"), ("eac3", "stereo")])
def test_sound_whose_frames_length_ffmpeg_does_not_know_is_copied_into_an_avi_a_chunk_a_packet(audio, layout,
                                                                                             tmp_path):
    # found by QA: FLAC or E-AC3 from a Matroska (or its AAC where FFmpeg read no frame
    # size) was timed in an AVI by its samples, and its muxer wrote an empty chunk for
    # each sample a packet held: 48000 chunks a second, a 1 s clip of 14 kB of FLAC
    # 1.2 MB, a 20 s one of AAC 23 MB, most of it index.
    clip = make_clip(tmp_path / "in.mkv", frames=24, audio=audio, layout=layout)
    with av.open(str(clip)) as c:
        assert c.streams.audio[0].codec_context.frame_size == 0
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    sound = packets(clip, "audio")
    assert [data for _, data in packets(tmp_path / "out.avi", "audio")] == [data for _, data in sound]
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.audio[0].frames == len(sound)
        assert sum(f.samples for f in c.decode(audio=0)) == pytest.approx(48000, abs=1536)
    assert (tmp_path / "out.avi").stat().st_size < 3 * clip.stat().st_size


@pytest.mark.parametrize("audio, layout", [("flac", "mono"), ("eac3", "stereo")])
def test_sound_whose_frames_length_ffmpeg_does_not_know_is_not_timed_by_the_sample_in_an_avi_from_a_pipe(
        audio, layout, tmp_path, caplog):
    # found by QA: the frame's length (above) was read in a second opening of the
    # input, which a pipe has not: its AVI was as bloated as before (1.2 MB a second).
    # FLAC's header states it; E-AC3's first packet does (its syncframe's blocks), and
    # it was re-encoded, as itself. Both are copied.
    clip = make_clip(tmp_path / "in.mkv", frames=24, audio=audio, layout=layout)
    upscale_piped(clip, tmp_path / "out.avi")
    _check_copied_a_chunk_a_packet(clip, tmp_path / "out.avi", layout)
    assert "re-encoding" not in caplog.text


def test_a_matroskas_aac_whose_frames_length_ffmpeg_does_not_know_is_copied_into_an_avi_from_a_pipe(tmp_path,
                                                                                                  caplog):
    # Its sound stored after its video, FFmpeg reads no frame size for it: its header
    # (AudioSpecificConfig) states 1024 samples a frame. It was re-encoded, as MP3.
    clip = make_clip(tmp_path / "in.mkv", frames=40, rate=Fraction(2), width=16, height=16)
    with av.open(str(clip)) as c:
        assert c.streams.audio[0].codec_context.frame_size == 0
    upscale_piped(clip, tmp_path / "out.avi")
    _check_copied_a_chunk_a_packet(clip, tmp_path / "out.avi", "mono", seconds=20)
    assert "re-encoding" not in caplog.text


def test_sound_whose_frames_length_ffmpeg_does_not_know_is_copied_into_an_avi_from_standard_input_from_a_file(
        tmp_path, caplog):
    # found by review: standard input redirected from a file (< in.mkv) was taken for
    # a pipe, not read a second time for the frame's length: its E-AC3 was re-encoded,
    # "given as a file, it is copied". It is that file, opened again.
    from ncnn_sr.streams import VideoInput
    clip = make_clip(tmp_path / "in.mkv", frames=24, audio="eac3", layout="stereo")
    src = VideoInput(clip)  # a file, read as standard input redirected from it is
    try:
        assert src.seekable()
        upscale_video(src, tmp_path / "out.avi", lambda frames: frames)
    finally:
        src.close()
    _check_copied_a_chunk_a_packet(clip, tmp_path / "out.avi", "stereo")
    assert "re-encoding" not in caplog.text


def test_sound_that_starts_after_ffmpegs_first_look_is_kept_from_standard_input_from_a_file(tmp_path):
    # found by review: standard input redirected from a file was not read further for
    # sound FFmpeg's first look learnt nothing of (as a file is, open_file): dropped.
    from ncnn_sr.streams import VideoInput
    clip = make_clip(tmp_path / "late.ts", frames=40, width=16, height=16, rate=Fraction(2))
    src = VideoInput(clip)
    try:
        upscale_video(src, tmp_path / "out.mp4", lambda frames: frames)
    finally:
        src.close()
    with av.open(str(tmp_path / "out.mp4")) as c:  # all 20 s of it
        assert sum(frame.samples for frame in c.decode(audio=0)) == pytest.approx(20 * 48000, abs=2048)


def _check_copied_a_chunk_a_packet(clip: Path, out: Path, layout: str, seconds: int = 1) -> None:
    """That the sound of ``clip`` is copied into the .avi ``out`` byte for byte, a chunk
    a packet, not timed by the sample (a chunk a sample, most of the file index)."""
    sound = packets(clip, "audio")
    assert [data for _, data in packets(out, "audio")] == [data for _, data in sound]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].frames == len(sound)
        assert c.streams.audio[0].codec_context.layout.name == layout
        assert sum(f.samples for f in c.decode(audio=0)) == pytest.approx(seconds * 48000, abs=1536)
    assert out.stat().st_size < 3 * clip.stat().st_size


def test_flacs_block_size_is_read_from_its_header_where_every_block_has_it():
    from ncnn_sr.video_streams import _flac_block_size
    info = bytes.fromhex("12001200") + bytes(30)  # STREAMINFO: least and most 4608 samples
    assert _flac_block_size(info) == 4608
    assert _flac_block_size(b"fLaC" + bytes.fromhex("80000022") + info) == 4608  # after the marker, as in a file
    assert _flac_block_size(bytes.fromhex("10001200") + bytes(30)) is None  # blocks of 4096 to 4608: a variable size
    assert _flac_block_size(info[:20]) is None and _flac_block_size(None) is None


def test_the_frames_length_of_aac_and_e_ac3_is_read_from_their_headers():
    from ncnn_sr.video_streams import _aac_frame_length, _ac3_frame_length

    def bits(text: str) -> bytes:
        text = text.replace(" ", "")
        return int(text.ljust(-(-len(text) // 8) * 8, "0"), 2).to_bytes(-(-len(text) // 8), "big")

    # AudioSpecificConfig: object type, rate index, channels, then frameLengthFlag.
    assert _aac_frame_length(bytes.fromhex("1188"), 48000) == 1024  # AAC-LC at 48 kHz, mono
    assert _aac_frame_length(bytes.fromhex("118c"), 48000) == 960
    # HE-AAC stated first (type 5): its core at 24 kHz, doubled to the 48 kHz stated.
    assert _aac_frame_length(bits("00101 0110 0010 0011 00010 0"), 48000) == 2048
    assert _aac_frame_length(bits("00010 0110 0010 0"), 48000) == 2048  # SBR found by decoding only
    assert _aac_frame_length(bits("10111 0011 0001 0"), 48000) is None  # ER AAC LD: 512 or 480
    assert _aac_frame_length(b"\x11", 48000) is None and _aac_frame_length(None, 48000) is None

    def syncframe(blocks_code: int, dependent: bool = False, words: int = 8) -> bytes:
        head = bytes([0x0B, 0x77, (1 << 6 if dependent else 0) | ((words - 1) >> 8), (words - 1) & 0xFF,
                      blocks_code << 4, 16 << 3])
        return head + bytes(words * 2 - len(head))

    assert _ac3_frame_length(syncframe(3)) == 1536
    assert _ac3_frame_length(syncframe(0)) == 256
    assert _ac3_frame_length(syncframe(1) + syncframe(1, dependent=True) + syncframe(1)) == 1024
    assert _ac3_frame_length(bytes.fromhex("0b77") + bytes([0, 0, 0, 8 << 3])) == 1536  # AC-3 (bsid 8)
    assert _ac3_frame_length(b"\x00" * 8) is None


def upscale_piped(clip: Path, dst: Path) -> int:
    """``clip`` upscaled (its frames as they are) into ``dst``, read from a pipe."""
    from ncnn_sr.streams import VideoInput
    fifo = clip.with_name(clip.name + ".fifo")
    os.mkfifo(fifo)
    data = clip.read_bytes()
    writer = threading.Thread(target=lambda: open(fifo, "wb").write(data))
    writer.start()
    src = VideoInput(fifo)
    try:
        return upscale_video(src, dst, lambda frames: frames)
    finally:
        src.close()
        writer.join(10)


def test_sound_that_starts_after_a_short_video_ends_starts_as_late_in_an_avi(tmp_path):
    # a QA report: 6 frames (0.25 s) whose sound starts at 0.3 s, after the last one,
    # played early in an .avi, which plays each stream from its first packet
    clip = make_clip(tmp_path / "in.mkv", frames=6, width=16, height=16, sound_spans=[(0.3, 0.6)])
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2)
    assert "led by silence" in proc.stderr
    # Re-encoded to MP3, whose encoder's delay (1105 samples at 48 kHz) the lead is short of.
    assert tone_onset(tmp_path / "out.avi") == pytest.approx(0.3, abs=0.002)


@pytest.mark.parametrize("name, options", [("out.avi", EncodeOptions()), ("out.wmv", EncodeOptions(codec="wmv2"))])
def test_flac_is_copied_into_an_avi_or_wmv_in_step_with_the_picture(name, options, tmp_path):
    # a QA question: both hold FLAC (FFmpeg's 0xF1AC tag), and FLAC has no encoder
    # delay to lag by, as AAC (21 ms) and MP3 (23 ms) copied into an .avi do
    clip = make_clip(tmp_path / "in.mkv", frames=6, width=16, height=16, audio="flac")
    upscale_video(clip, tmp_path / name, lambda frames: frames, options)
    assert audio_stream(tmp_path / name)[0] == "flac"
    assert tone_onset(tmp_path / name) == pytest.approx(tone_onset(clip), abs=0.001)


def test_pcm_sound_that_starts_late_is_copied_into_an_avi_led_by_silence(tmp_path):
    # Not re-encoded to MP3 to lead it with silence: PCM's silence is copied as it is.
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="pcm_s16le", sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert audio_stream(tmp_path / "out.avi")[0] == "pcm_s16le"
    assert tone_onsets(tmp_path / "out.avi") == [pytest.approx(0.1, abs=0.002)]


def test_flac_that_starts_late_starts_as_late_in_an_ogv(tmp_path):
    # FFmpeg never reads a late start back from an Ogg file's FLAC: copied as it was,
    # this played 0.1 s early against the picture.
    clip = make_clip(tmp_path / "in.mkv", frames=8, audio="flac", sound_spans=[(0.1, 0.3)])
    upscale_video(clip, tmp_path / "out.ogv", lambda frames: frames, EncodeOptions(codec="libvpx"))
    with av.open(str(tmp_path / "out.ogv")) as c:
        frames = list(c.decode(audio=0))
    rate = frames[0].sample_rate
    assert frames[0].time == 0
    sound = np.abs(np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64))
    assert sound[:round(0.09 * rate)].max() < 0.01 * sound.max()
    assert sound[round(0.11 * rate):round(0.12 * rate)].max() > 0.5 * sound.max()


@pytest.mark.parametrize("src, audio, spans", [
    ("in.mkv", "pcm_s24le", None),  # PCM, which an .ogv does not hold
    ("in.mov", "pcm_s24le", None),
    ("in.mkv", "flac", [(0.1, 0.3)]),  # FLAC that starts late, led by silence
])
def test_24_bit_sound_reencoded_to_flac_keeps_every_sample(src, audio, spans, tmp_path):
    # FLAC's encoder takes 16-bit samples unless told otherwise: 24-bit sound lost
    # its lowest 8 bits in an .ogv.
    clip = make_clip(tmp_path / src, frames=8, audio=audio, sample_bits=24, sound_spans=spans)
    upscale_video(clip, tmp_path / "out.ogv", lambda frames: frames, EncodeOptions(codec="libvpx"))
    assert audio_stream(tmp_path / "out.ogv")[0] == "flac"
    (start_in, source), (start_out, output) = (samples_from(path) for path in (clip, tmp_path / "out.ogv"))
    assert source.dtype == output.dtype == np.int32 and (source & 0xff00).any()  # 24 bits, in s32's top ones
    lead = start_in - start_out
    assert lead == (0 if spans is None else 4800) and len(output) >= lead + len(source) - 1024
    kept = output[lead:lead + len(source)]
    assert np.array_equal(kept, source[:len(kept)])


def samples_from(path) -> tuple[int, np.ndarray]:
    """The first audio stream's first channel, decoded, with where it starts (in samples)."""
    with av.open(str(path)) as c:
        frames = list(c.decode(audio=0))
    start = round(frames[0].pts * frames[0].time_base * frames[0].sample_rate)
    return start, np.concatenate([f.to_ndarray()[:1].reshape(-1) for f in frames])


@pytest.mark.parametrize("rate", [Fraction(1), Fraction(24)])
def test_an_avi_of_an_mp4_whose_sound_starts_before_0_has_no_empty_frame(rate, tmp_path):
    # AAC's priming puts an mp4's sound 21 ms before 0. FFmpeg moved every stream of
    # the AVI later by that, rounded up to a whole frame of the picture: an empty
    # frame went in after the first, which was held, and every later frame was late
    # by a frame (a second at 1 fps).
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=rate)
    with av.open(str(clip)) as c:
        assert next(c.demux(audio=0)).pts < 0
    assert upscale_video(clip, tmp_path / "out.avi", lambda frames: frames) == 4
    with av.open(str(tmp_path / "out.avi")) as c:
        assert [p.dts for p in c.demux(video=0) if p.size] == [0, 1, 2, 3]  # an AVI's dts counts its slots


@pytest.mark.parametrize("audio, name, codec, options", [
    ("aac", "out.avi", "aac", EncodeOptions()),
    ("libopus", "out.ogv", "opus", EncodeOptions(codec="libvpx")),
    ("flac", "out.ogv", "flac", EncodeOptions(codec="libvpx")),
])
def test_an_avi_or_ogv_leaves_out_the_sound_an_mp4s_edit_list_cuts(audio, name, codec, options, tmp_path):
    # found by QA: an mp4 whose sound starts 0.3 s before its picture, cut there by its
    # edit list (FFmpeg flags those packets discarded), copied into an .avi or .ogv,
    # played that 0.3 s too: its sound came 0.3 s late. The last packet before the cut
    # still goes in, for the decoder to start from (AAC's overlap, Opus's): a packet
    # late, as AAC's priming, which an mp4 cuts from 0, plays in an .avi; FLAC needs
    # none. The first packet kept may start before 0 too.
    clip = tmp_path / "in.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        sound = out.add_stream(audio, rate=48000)
        sound.layout = "mono"
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(24, 32, seed=i), format="rgb24") for i in range(12)])
        t = np.arange(-14400, 24000) / 48000  # from -0.3 s, a tone from 0.1 s
        tone = np.where(t >= 0.1, 0.3 * np.sin(2 * np.pi * 440 * t) * 32767, 0).astype(np.int16)
        for start in range(0, len(tone), 960):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 960], format="s16p", layout="mono")
            frame.sample_rate, frame.pts = 48000, start - 14400
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    assert tone_onset(clip) == pytest.approx(0.1, abs=0.001)
    upscale_video(clip, tmp_path / name, lambda frames: frames, options)
    assert audio_stream(tmp_path / name)[0] == codec  # copied
    assert 0.1 <= tone_onset(tmp_path / name) <= 0.125


def test_an_avi_of_a_video_of_more_than_1000_fps_is_refused_naming_fps(tmp_path):
    # FFmpeg's AVI muxer counts such a video in 1/600 s: two frames fell in one slot,
    # and the run failed after upscaling as "cannot encode: Invalid argument".
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=Fraction(1200), audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ncnn-sr: error: {tmp_path / 'out.avi'}: an .avi holds at most 1000 frames a "
                                   "second, not 1200: give --fps 1000 or less, or write another container")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, "--fps", "1000")


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".flv"])
def test_a_millisecond_stamped_container_of_a_video_of_more_than_1000_fps_is_refused_naming_fps(suffix, tmp_path):
    # These stamp frames in whole milliseconds: a 2000 fps video's frames shared
    # stamps (0, 1, 1, 2 ms), unsaid, and reading the file back dropped the doubles.
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=Fraction(2000), audio=None)
    with pytest.raises(InputError) as e:
        upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames)
    assert str(e.value) == (f"{tmp_path / f'out{suffix}'}: {suffix} stamps frames in whole milliseconds, so holds at "
                            "most 1000 frames a second, not 2000: give fps=1000 or less, or write .mp4 or .mov")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]
    assert upscale_video(clip, tmp_path / f"out{suffix}", lambda frames: frames, EncodeOptions(fps=Fraction(1000))) == 2
    with av.open(str(tmp_path / f"out{suffix}")) as c:
        assert [f.pts for f in c.decode(video=0)] == [0, 1]  # no stamp shared


def test_a_wmv_of_a_video_of_more_than_1000_fps_is_refused_naming_fps(tmp_path):
    # ASF stamps in milliseconds too: its muxer refused the shared stamps, after the
    # model had loaded, as a bare "cannot encode: Invalid argument".
    clip = make_clip(tmp_path / "in.mp4", frames=4, rate=Fraction(2000), audio=None)
    with pytest.raises(InputError, match=r"\.wmv stamps frames in whole milliseconds, .* not 2000: give fps=1000"):
        upscale_video(clip, tmp_path / "out.wmv", lambda frames: frames, EncodeOptions(codec="wmv2"))


def test_an_flv_of_a_slow_video_with_sound_is_written(tmp_path):
    # An FLV holds no time before 0, and B-frames start the picture's decode times
    # two frames before it: FFmpeg moves every stream later by that, but only once
    # it has the picture's first packet, which x264 gave out some 40 frames in (40 s
    # at 1 fps) while more than 10 s of sound had been written ("cannot encode:
    # Invalid argument", after "failed to avoid negative timestamp").
    clip = make_clip(tmp_path / "in.mp4", frames=16, width=16, height=16, rate=Fraction(1))
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.flv", *X2)
    times, size = frame_times(tmp_path / "out.flv")
    assert len(times) == 16 and size == (32, 32)
    assert audio_stream(tmp_path / "out.flv")[0] == "aac"


def test_an_avi_from_an_mpeg_program_stream_starts_its_picture_with_its_sound(tmp_path):
    # A .vob's streams start near 0.5 s, and an AVI plays its sound from its first
    # packet: the picture's first frame was held for those 0.5 s, the rest late.
    vob = tmp_path / "in.vob"
    upscale_video(make_clip(tmp_path / "in.mp4", frames=8, rate=Fraction(25), audio="mp2"), vob, lambda f: f,
                  EncodeOptions(codec="mpeg2video", bitrate=2_000_000))
    with av.open(str(vob)) as c:
        assert c.start_time > 0.4 * av.time_base
    assert upscale_video(vob, tmp_path / "out.avi", lambda frames: frames) == 8
    with av.open(str(tmp_path / "out.avi")) as c:
        assert c.streams.video[0].frames == 8


def shown_from(path, colour) -> float:
    """When the first video frame of about ``colour`` (RGB) is shown (s): an AVI's by
    its slot, its frame rate's count; another's by its time."""
    with av.open(str(path)) as c:
        slots = c.format.name == "avi"
        rate = c.streams.video[0].average_rate
        for k, f in enumerate(c.decode(video=0)):
            if np.abs(f.to_ndarray(format="rgb24").astype(int) - colour).max() < 12:
                return k / rate if slots else float(f.pts * f.time_base)
    raise AssertionError(f"no frame of {colour}")


@pytest.mark.parametrize("options", [EncodeOptions(), EncodeOptions(fps=Fraction(24))])
def test_an_avi_keeps_sound_that_starts_before_the_picture_ahead_of_it(options, tmp_path):
    # found by QA: sound 0.2 s ahead of the picture (a .ts recording's, whose picture
    # waits for a keyframe) played in an .avi from the picture's first frame, 0.2 s
    # late: the AVI muxer writes its first frame in the first slot, whatever its time.
    # Its first frame now fills the slots before it, as ffmpeg's constant rate does.
    colours = [(40 + 15 * i, 200 - 10 * i, 90) for i in range(12)]
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio="pcm_s16le", colours=colours,
                     frame_ms=[200 + round(i * 1000 / 24) for i in range(12)])
    # Five slots (0.2 s at 24 fps) hold the first frame before its own.
    assert upscale_video(clip, tmp_path / "out.avi", lambda frames: frames, options) == 12 + 5
    ahead = shown_from(clip, colours[1]) - tone_onset(clip)
    assert ahead == pytest.approx(0.2 + 1 / 24, abs=0.002)
    # A slot is 1/24 s: the picture lands within half of one of its time.
    assert shown_from(tmp_path / "out.avi", colours[1]) - tone_onset(tmp_path / "out.avi") == pytest.approx(
        ahead, abs=1 / 48)


@pytest.mark.parametrize("name, fps", [("out.avi", None), ("out.mp4", Fraction(24))])
def test_millisecond_stamps_at_a_constant_rate_keep_every_frame_once(name, fps, tmp_path):
    # A Matroska frame at 42 ms, 1/24 s rounded up, went to the slot after its own:
    # frames 1, 4, 7 and 10 of 24 fps were dropped, and those before them shown twice.
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio=None, colours=[(20 * i, 0, 0) for i in range(12)])
    upscale_video(clip, tmp_path / name, lambda frames: frames, EncodeOptions(fps=fps))
    with av.open(str(tmp_path / name)) as c:
        shown = [round(int(f.to_ndarray(format="rgb24")[0, 0, 0]) / 20) for f in c.decode(video=0)]
    assert shown == list(range(12))


@pytest.mark.parametrize("name, fps", [("out.avi", None), ("out.mp4", Fraction(24))])
def test_frames_half_a_slot_off_the_rate_keep_every_frame_once(name, fps, tmp_path):
    # ncnn-sr's own .mkv of an mp4 with AAC starts its picture 21 ms in, at 24 fps:
    # stamps of 21, 63, 104, 146 ms... fall either side of the halves between slots,
    # and the nearest slot put 63 and 104 in one, dropping a frame and doubling one.
    stamps = [round(1000 * (i + 0.5) / 24) for i in range(12)]
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio=None, frame_ms=stamps,
                     colours=[(20 * i, 0, 0) for i in range(12)])
    upscale_video(clip, tmp_path / name, lambda frames: frames, EncodeOptions(fps=fps))
    with av.open(str(tmp_path / name)) as c:
        shown = [round(int(f.to_ndarray(format="rgb24")[0, 0, 0]) / 20) for f in c.decode(video=0)]
    assert shown == list(range(12))


def test_a_rate_the_encoder_cannot_encode_is_refused_before_anything_runs(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4, audio=None)
    out = tmp_path / "out.mpg"
    proc = run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--codec", "mpeg2video", "--fps", "23", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("ncnn-sr: error: mpeg2video cannot encode 23 fps: it takes 24000/1001, 24, 25, "
                                   "30000/1001, 30, 50, 60000/1001, 60, ...")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_timecode_is_carried_to_the_rate_fps_asks_for(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None, timecode="01:02:03:04")
    out = tmp_path / "out.mp4"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--fps", "30")
    with av.open(str(out)) as c:
        assert c.streams.video[0].metadata["timecode"] == "01:02:03:05"  # 4/24 s is 5/30 s
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "slow.mp4", *X2, "--fps", "1/2")
    assert "cannot carry the timecode '01:02:03:04' to 1/2 fps: dropping it" in proc.stderr


def test_a_matroska_timecode_is_carried_to_the_rate_fps_asks_for(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=None, timecode="01:02:03:04")
    with av.open(str(clip)) as c:
        assert c.streams.video[0].metadata["TIMECODE"] == "01:02:03:04"  # Matroska's tags read back upper case
    for suffix in (".mkv", ".mp4"):
        out = tmp_path / f"out{suffix}"
        run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--fps", "30")
        with av.open(str(out)) as c:
            tags = {key.lower(): value for key, value in c.streams.video[0].metadata.items()}
            assert tags["timecode"] == "01:02:03:05"


def test_a_still_picture_named_like_a_video_is_refused(tmp_path):
    fake = tmp_path / "photo.mp4"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(fake, format="JPEG")
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", fake, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ncnn-sr: error: {fake}: a still picture (jpeg), not a video: upscale it as a picture ('ncnn-sr upscale' into out.png, say)"
    assert not out.exists()


@pytest.mark.parametrize("name, kind", [("photo.heic", "heic"), ("photo.avif", "avif")])
def test_a_still_heif_or_avif_is_refused_as_a_still_picture(name, kind, tmp_path):
    # FFmpeg reads one through its mp4 reader, as a video of one frame: a HEIC's was
    # its coded size (the 64x64 block of a 30x20 photo, cropped by none) and upscaled
    # so, 'wrote out.mp4: 1 frame', where a JPEG is told to be upscaled as a picture.
    import pillow_heif

    pillow_heif.register_heif_opener()
    still = tmp_path / name
    Image.fromarray(picture(20, 30)).save(still)
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", still, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ncnn-sr: error: {still}: a still picture ({kind}), not a video: upscale it as a picture ('ncnn-sr upscale' into out.png, say)"
    assert not out.exists()


def test_a_file_only_named_as_a_picture_is_not_called_one(tmp_path):
    # FFmpeg's image2 reader takes a file by its name: a text file named .png was called
    # "a still picture (image2)", to be upscaled as one, which then failed as no picture.
    fake = tmp_path / "notes.png"
    fake.write_text("hello\n")
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", fake, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ncnn-sr: error: {fake}: not a video, nor a picture (only named as one)"
    assert not out.exists()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(fake)  # a picture indeed
    proc = run(NCNN_SR, "video", "-i", fake, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1 and "a still picture" in proc.stderr


def ffmpeg_picture(path, codec, pix_fmt="rgb24"):
    """A one-frame picture ``path`` that FFmpeg's ``codec`` encodes, Pillow reads or not."""
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec)
        stream.width, stream.height, stream.pix_fmt = 8, 8, pix_fmt
        frame = av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24").reformat(format=pix_fmt)
        out.mux(stream.encode(frame) + stream.encode())
    return path


@pytest.mark.parametrize("name, codec, pix_fmt", [("scan.dpx", "dpx", "rgb24"), ("render.exr", "exr", "gbrpf32le"),
                                                  ("photo.pam", "pam", "rgb24")])
def test_a_picture_the_picture_path_cannot_read_is_called_a_picture_to_convert(name, codec, pix_fmt, tmp_path):
    # found by review: a PAM, which FFmpeg's image2 reader takes by its name and Pillow
    # cannot open, was "not a video, nor a picture (only named as one)"; a DPX or EXR
    # was to be upscaled as a picture, which then failed as one Pillow cannot read.
    still = ffmpeg_picture(tmp_path / name, codec, pix_fmt)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as e:
        upscale_video(still, out, lambda frames: frames)
    # read_image to upscale_video's caller, the pictures' command to ncnn-sr video's user.
    said = (f"{still}: a still picture ({codec}), not a video, of a kind {{}} does not read either: convert it "
            "(to PNG or TIFF, say) to upscale it")
    assert str(e.value) == said.format("read_image")
    assert not out.exists()
    proc = run(NCNN_SR, "video", "-i", still, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1 and proc.stderr == f"ncnn-sr: error: {said.format('ncnn-sr upscale')}\n"
    assert not out.exists()


def test_a_damaged_video_whose_headers_ask_ffmpeg_for_too_much_memory_is_called_damaged(tmp_path):
    # found by the fuzzer: a table's entry count past FFmpeg's largest allocation
    # (2 GB) fails its open with ENOMEM, with gigabytes free: "error: out of memory".
    data = bytearray(make_clip(tmp_path / "good.mp4", frames=2, audio=None).read_bytes())
    counts = data.find(b"stts") + 8  # after its version and flags
    data[counts:counts + 4] = (0x7FFFFFFF).to_bytes(4, "big")
    clip = tmp_path / "in.mp4"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1
    assert re.fullmatch(rf"ncnn-sr: error: {re.escape(str(clip))}: not a video FFmpeg can read: its headers ask "
                        r"FFmpeg for more memory than it gives at once, with .+ free \(damaged, most likely\)\n",
                        proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["good.mp4", "in.mp4"]


def test_a_damaged_video_whose_packet_asks_ffmpeg_for_too_much_memory_is_called_damaged(tmp_path):
    # found by the fuzzer: an 18 kB .mov whose second video sample's size was damaged
    # to 822 MB failed as FFmpeg read it with ENOMEM, with gigabytes free: "error: out
    # of memory".
    data = bytearray(make_clip(tmp_path / "good.mov", frames=4, width=16, height=12, audio="pcm_s16le")
                     .read_bytes())
    sizes = data.find(b"stsz") + 16  # after its version and flags, its one size for all (0: none), its count
    assert data[sizes - 8:sizes] == bytes(4) + (4).to_bytes(4, "big")  # the video's: four samples, each sized
    data[sizes + 4] = 0x31  # the second's size: 822 MB
    clip = tmp_path / "in.mov"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1
    assert re.fullmatch(rf"ncnn-sr: error: {re.escape(str(clip))}: cannot read: a packet asks FFmpeg for more "
                        r"memory than it gives, with .+ free \(damaged, most likely\)\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["good.mov", "in.mov"]


@pytest.mark.parametrize("side", [10_000, 65_535])
def test_a_huge_picture_named_as_one_is_called_a_picture(side, tmp_path):
    # Asked whether a file FFmpeg's image2 reader took by its name is a picture, Pillow's
    # decompression bomb check (its warning past 89 Mpx, its error past twice that) was
    # a traceback, from a TGA, which has no signature to tell it by.
    import struct

    big = tmp_path / "huge.tga"
    big.write_bytes(struct.pack("<BBB5sHHHHBB", 0, 0, 2, bytes(5), 0, 0, side, side, 24, 0x20) + bytes(64))
    out = tmp_path / "out.mp4"
    proc = run(NCNN_SR, "video", "-i", big, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {big}: a still picture (image2), not a video: upscale it as a picture ('ncnn-sr upscale' into out.png, say)\n"
    assert not out.exists()


# Where and when a phone shot a video, and on what, as an iPhone's .mov holds them:
# QuickTime keys (a meta box of handler mdta), which FFmpeg reads as these tags.
PHONE_KEYS = {"com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
              "com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "iPhone 15 Pro",
              "com.apple.quicktime.software": "17.4.1", "com.apple.quicktime.creationdate": "2024-05-01T14:00:00+0200"}


@pytest.mark.parametrize("name", ["out.mov", "out.mp4"])
def test_a_phones_quicktime_keys_go_along_into_an_mov_or_mp4(name, tmp_path):
    # found by QA: FFmpeg's mov and mp4 muxers write such keys only with -movflags
    # use_metadata_tags, and then every tag as one (the title too, which players
    # look for elsewhere): the upscale of a phone's video lost where it was shot.
    plain = make_clip(tmp_path / "plain.mov", frames=3)
    clip = remux_with(plain, tmp_path / "phone.mov", options={"movflags": "use_metadata_tags"},
                      tags={"creation_time": "2024-05-01T12:00:00.000000Z", "title": "Holiday", **PHONE_KEYS})
    out = tmp_path / name
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    with av.open(str(out)) as c:
        tags = dict(c.metadata)
    assert {key: tags.get(key) for key in PHONE_KEYS} == PHONE_KEYS
    assert tags["creation_time"] == "2024-05-01T12:00:00.000000Z" and tags["title"] == "Holiday"
    # Where the phone put them, which Apple's players read: in the moov itself, its
    # meta a QuickTime atom in a .mov, an ISO box (its version and flags first) in an mp4.
    meta = dict(isobmff.children(isobmff.top_box(str(out), b"moov")))[b"meta"]
    assert (meta[4:8] == b"hdlr") == (name == "out.mov")


def with_keys_too(plain, keyed, dst):
    """The .mov ``plain`` (its tags in its udta's QuickTime atoms) with, in that udta,
    the meta of QuickTime keys of the .mov ``keyed``: a file's tags written both ways."""
    def box(kind, body):
        return (8 + len(body)).to_bytes(4, "big") + kind + body
    data = plain.read_bytes()
    moov = isobmff.top_box(str(plain), b"moov")
    assert data.endswith(box(b"moov", moov))  # the moov last: no offset moves
    meta = dict(isobmff.children(dict(isobmff.children(isobmff.top_box(str(keyed), b"moov")))[b"udta"]))[b"meta"]
    kids = [box(kind, body + box(b"meta", meta) if kind == b"udta" else body) for kind, body in isobmff.children(moov)]
    dst.write_bytes(data[:-len(moov) - 8] + box(b"moov", b"".join(kids)))
    return dst


@pytest.mark.parametrize("name", ["out.mov", "out.mkv"])
def test_a_tag_a_mov_holds_both_as_an_atom_and_as_a_key_goes_along_once(name, tmp_path):
    # FFmpeg 9 (PyAV 19) reads such a tag twice, as 'Holiday;Holiday' (FFmpeg 8 as
    # 'Holiday'): the upscale's title was 'Holiday;Holiday'.
    tags = {"title": "Holiday", "artist": "Ann", "creation_time": "2024-05-01T12:00:00.000000Z"}
    plain = make_clip(tmp_path / "plain.mov", frames=3)
    clip = with_keys_too(remux_with(plain, tmp_path / "atoms.mov", tags=tags),
                         remux_with(plain, tmp_path / "keys.mov", tags=tags, options={"movflags": "use_metadata_tags"}),
                         tmp_path / "both.mov")
    with av.open(str(clip)) as c:
        read = c.metadata["title"]
    assert read == ("Holiday;Holiday" if av.library_versions["libavformat"] >= (63,) else "Holiday")
    out = tmp_path / name
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    with av.open(str(out)) as c:
        got = {key.lower(): value for key, value in c.metadata.items()}
    assert {key: got.get(key) for key in tags} == tags


def test_an_mp4s_default_handler_names_do_not_become_matroska_tags(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    with av.open(str(clip)) as c:
        assert c.streams.video[0].metadata.get("handler_name") == "VideoHandler"  # what FFmpeg writes
    out = tmp_path / "out.mkv"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2)
    with av.open(str(out)) as c:
        for stream in c.streams:
            assert not {key.lower() for key in stream.metadata} & {"handler_name", "vendor_id"}, stream.metadata


@pytest.mark.parametrize("codec, name, message", [
    ("libsvtav1", "out.mov", ".mov cannot hold av1 video: write .mp4, .mkv, .webm or .avi, or choose another --codec"),
    ("libvpx-vp9", "out.mov", ".mov cannot hold vp9 video: write .mp4, .mkv, .webm or .avi, or choose another --codec"),
    ("libvpx", "out.mov", ".mov cannot hold vp8 video: write .mkv, .webm or .avi, or choose another --codec"),
    ("mpeg4", "out.flv", ".flv cannot hold mpeg4 video: write .mp4, .mkv, .mov or .avi, or choose another --codec"),
    ("libx265", "out.webm", ".webm cannot hold hevc video: write .mp4, .mkv or .mov, or choose another --codec"),
    ("libsvtav1", "out.m4v", ".m4v cannot hold av1 video: write .mp4, .mkv, .webm or .avi, or choose another --codec"),
    ("libx264", "out.ogv", ".ogv cannot hold h264 video: write .mp4, .mkv, .mov or .avi, or choose another --codec, "
                           "such as libvpx"),
    # Written, and read back (by FFmpeg, and this tool) as a data stream: "has no video stream".
    ("libsvtav1", "out.ts", ".ts cannot hold av1 video: write .mp4, .mkv, .webm or .avi, or choose another --codec"),
    ("libsvtav1", "out.m2ts", ".m2ts cannot hold av1 video: write .mp4, .mkv, .webm or .avi, or choose another "
                              "--codec"),
    # So was VC-2 from a Blu-ray's .m2ts (FFmpeg reads it from a .ts).
    ("vc2", "out.m2ts", ".m2ts cannot hold dirac video: write .mp4, .mkv, .mov or .avi, or choose another --codec"),
])
def test_video_a_container_cannot_hold_is_refused_before_the_input_is_read(codec, name, message, tmp_path):
    # FFmpeg says .mov holds AV1, VP9 and VP8 and .flv MPEG-4, then refuses them as it
    # writes the file's header, with a bare "Invalid argument".
    proc = run(NCNN_SR, "video", "-i", tmp_path / "missing.mp4", "-o", tmp_path / name, *X2, "--codec", codec,
               check_ok=False)
    one_line_failure(proc, tmp_path, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec, name", [("libsvtav1", "out.mp4"), ("libsvtav1", "out.mkv"),
                                         ("libvpx-vp9", "out.mp4"), ("libx265", "out.mov"),
                                         ("flv", "out.flv"), ("msmpeg4v3", "out.wmv"),
                                         ("mpeg2video", "out.vob"), ("wmv2", "out.wmv"), ("libvpx", "out.ogv")])
def test_video_a_container_holds_is_written(codec, name, tmp_path):
    # Not 2 frames: x265 then gives some packets garbage decoding times, which the mp4
    # muxer refuses ("pts/dts pair unsupported"). A .flv's and a .wmv's own codecs were
    # refused: FFmpeg lists their encoders as flv and msmpeg4, not flv1 and msmpeg4v3.
    clip = make_clip(tmp_path / "in.mp4", frames=3, audio=None)
    upscale_video(clip, tmp_path / name, lambda frames: frames, EncodeOptions(codec=codec))
    with av.open(str(tmp_path / name)) as c:
        assert c.streams.video[0].codec_context.codec.canonical_name == av.codec.Codec(codec, "w").canonical_name
        assert len(list(c.decode(video=0))) == 3


@pytest.mark.parametrize("name, own", [("out.mpg", "mpeg2video"), ("out.mpeg", "mpeg2video"),
                                       ("out.vob", "mpeg2video"), ("out.wmv", "wmv2")])
def test_h264_where_its_frame_times_are_lost_is_refused_in_one_line(name, own, tmp_path):
    # Written as asked, an MPEG program stream kept a time on one frame in several and
    # an ASF (.wmv) read back its frames' times out of order and doubled. Their own
    # encoders keep a fixed quantiser without a --bitrate, so none is asked for.
    proc = run(NCNN_SR, "video", "-i", tmp_path / "missing.mp4", "-o", tmp_path / name, *X2, check_ok=False)
    one_line_failure(proc, tmp_path, f"{name[3:]} loses the frame times of h264 video: write .mp4, .mkv, .mov or "
                                     f".avi, or choose another --codec, such as {own}\n")


def test_every_container_a_video_is_written_as_is_named_in_the_help_and_the_refusal(tmp_path):
    # --help and the refusal of another named mp4, mkv, mov, webm and avi alone.
    from ncnn_sr.video_options import VIDEO_CONTAINERS

    shown = " ".join(run(NCNN_SR, "video", "--help").stdout.split())
    assert all(f" {name}" in shown for name in VIDEO_CONTAINERS), shown
    proc = run(NCNN_SR, "video", "-i", tmp_path / "missing.mp4", "-o", tmp_path / "out.mxf", *X2, check_ok=False)
    one_line_failure(proc, tmp_path, f"unsupported video container '.mxf' for {tmp_path / 'out.mxf'}: use mp4, "
                     "mkv, mov, webm, avi, m4v, 3gp, ts, m2ts, mts, flv, mpg, mpeg, vob, wmv or ogv")


def test_the_crf_help_gives_each_constant_quality_encoder_s_range():
    # found by a README audit: --help gave 0-51 for x264/x265 and 0-63 for VP9/AV1,
    # "default 18 for them", where VP8 (libvpx) also gets 18 and takes 4 to 63 alone
    from ncnn_sr.video_codecs import CONSTANT_QUALITY, CRF_RANGES

    shown = " ".join(run(NCNN_SR, "video", "--help").stdout.split())
    labels = {"libx264": "x264", "libx265": "x265", "libvpx": "VP8", "libvpx-vp9": "VP9", "libsvtav1": "AV1"}
    for encoder in CONSTANT_QUALITY:
        low, high = CRF_RANGES[encoder]
        assert re.search(rf"{low}-{high} for [\w/]*\b{labels[encoder]}\b", shown), (encoder, shown)


@pytest.mark.parametrize("suffix, audio", [(".ts", "aac"), (".flv", "aac"), (".vob", "mp2")])
def test_other_containers_get_every_frame_in_time_and_the_sound(suffix, audio, tmp_path):
    # They were written, but not named in --help or the README; .vob only with its own codec.
    clip = make_clip(tmp_path / "in.mp4", frames=8)
    out = tmp_path / f"out{suffix}"
    codec = ["--codec", "mpeg2video", "--bitrate", "2M"] if suffix == ".vob" else []
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, *codec)
    times_in, size_in = frame_times(clip)
    times_out, size_out = frame_times(out)
    assert size_out == (size_in[0] * 2, size_in[1] * 2) and len(times_out) == 8
    steps = [b - a for a, b in zip(times_out, times_out[1:])]
    assert steps == pytest.approx([1 / 24] * 7, abs=2e-3)  # in order, none lost or doubled
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == audio
    assert sound_seconds(out) == pytest.approx(sound_seconds(clip), abs=0.05)


@pytest.mark.parametrize("audio, name, target", [
    ("libopus", "out.mov", "aac"),  # FFmpeg lists Opus for .mov, whose muxer then refuses it
    ("pcm_s16le", "out.flv", "mp3"),  # its Matroska layout names no channels, which MP3 refuses
    ("libopus", "out.wmv", "wmav2"),  # WMA refuses PyAV's bitrate of 0
    ("pcm_s16le", "out.3gp", "aac"),  # FFmpeg's default there, AMR-NB, takes 8 kHz mono speech only
    ("libopus", "out.3gp", "aac"),
])
def test_sound_a_container_refuses_is_reencoded_to_its_own_kind(audio, name, target, tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=audio)
    own = EncodeOptions(codec="wmv2") if name.endswith(".wmv") else EncodeOptions()  # H.264 loses its times there
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / name, lambda frames: frames, own)
    assert f"re-encoding audio stream 1 to {target}" in caplog.text
    with av.open(str(tmp_path / name)) as c:
        assert c.streams.audio[0].codec_context.codec.canonical_name == target
    assert sound_seconds(tmp_path / name) == pytest.approx(sound_seconds(clip), abs=0.05)


def test_pcm_as_the_second_sound_track_of_an_flv_is_re_encoded_without_an_error(tmp_path):
    # FFmpeg's FLV muxer takes a second sound track only of a codec with an enhanced
    # FLV FourCC (AAC, MP3...), which PCM has not: "Unsupported multi-track audio
    # codec", the run failing as "cannot encode: Invalid argument".
    clip = tmp_path / "in.mkv"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        sounds = [out.add_stream(codec, rate=44100) for codec in ("aac", "pcm_s16le")]
        for sound in sounds:
            sound.layout = "mono"
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(16, 16, seed=i), format="rgb24") for i in range(4)])
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(7350) / 44100) * 32767).astype(np.int16)
        for sound in sounds:
            frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode())
    upscale_video(clip, tmp_path / "out.flv", lambda frames: frames)
    with av.open(str(tmp_path / "out.flv")) as c:
        assert sorted(s.codec_context.name for s in c.streams.audio) == ["aac", "mp3float"]


def pitch(frames) -> float:
    """The frequency (Hz) of the loudest tone in the first channel of ``frames``."""
    sound = np.concatenate([f.to_ndarray()[0].astype(np.float64) for f in frames])
    return float(np.argmax(np.abs(np.fft.rfft(sound)))) * frames[0].sample_rate / len(sound)


@pytest.mark.parametrize("first", ["libmp3lame", "pcm_s16le"])
def test_two_sound_tracks_of_an_flv_read_back_in_their_order(first, tmp_path):
    # found by QA: FFmpeg's FLV reader lists sound tracks as their first tags come,
    # and its muxer writes one at the start for each track after the first (enhanced
    # FLV's multitrack) but none for a first of MP3 or PCM: the second read back first.
    clip = tmp_path / "in.mkv"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        sounds = [out.add_stream(codec, rate=44100) for codec in (first, "aac")]
        for sound in sounds:
            sound.layout = "mono"
        encode_all(out, video, [av.VideoFrame.from_ndarray(picture(16, 16, seed=i), format="rgb24") for i in range(6)])
        for sound, hz in zip(sounds, (440, 1000)):
            tone = (0.3 * np.sin(2 * np.pi * hz * np.arange(11025) / 44100) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode())
    upscale_video(clip, tmp_path / "out.flv", lambda frames: frames)
    pitches = []
    for i in range(2):
        with av.open(str(tmp_path / "out.flv")) as c:
            assert len(c.streams.audio) == 2
            pitches.append(pitch(list(c.decode(audio=i))))
    assert pitches == [pytest.approx(440, rel=0.05), pytest.approx(1000, rel=0.05)]


@pytest.mark.parametrize("layout, rate, target, rate_out", [
    ("mono", 44100, "pcm_s16le", 44100),  # a Matroska file's: its channels unnamed
    ("mono", 8000, "mp3", 11025),  # which FLV's flags state as 5.5 kHz; and MP3 at FLV's lowest rate
    ("5.1", 44100, "mp3", 44100),
])
def test_pcm_sound_an_flv_holds_is_copied_and_more_channels_re_encoded_without_a_crash(layout, rate, target,
                                                                                      rate_out, tmp_path):
    # FFmpeg's FLV muxer aborted the process (an assertion: "Invalid codec FourCC write
    # requested") on PCM of other than one or two named channels: no line, no exit status 1.
    clip = make_clip(tmp_path / "in.mkv", frames=24, audio="pcm_s16le", sample_rate=rate, layout=layout)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.flv", *X2, check_ok=False)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "out.flv")) as c:
        sound = c.streams.audio[0].codec_context
        assert (sound.codec.canonical_name, sound.sample_rate) == (target, rate_out)
    # MP3 in an FLV plays its encoder's delay and padding too.
    assert sound_seconds(tmp_path / "out.flv") == pytest.approx(sound_seconds(clip), abs=0.2)


def test_sound_is_named_by_its_codec_not_its_decoder(tmp_path, caplog):
    # MP3 sound was "mp3float audio", after FFmpeg's decoder of it.
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio="libopus")
    upscale_video(clip, tmp_path / "mp3.avi", lambda frames: frames)  # an AVI's sound is MP3
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(tmp_path / "mp3.avi", tmp_path / "out.webm", lambda frames: frames)
    assert ".webm cannot hold mp3 audio: re-encoding audio stream 1 to opus" in caplog.text


@pytest.mark.parametrize("audio, name, target", [
    ("libopus", "out.avi", "mp3"),  # MP3 takes mono and stereo only
    ("pcm_s16le", "out.ts", "mp2"),  # and so does MPEG audio layer 2
])
def test_sound_of_more_channels_than_the_encoder_takes_is_downmixed_to_stereo(audio, name, target, tmp_path,
                                                                               caplog):
    # 5.1 sound failed the whole video: "cannot encode: Invalid argument".
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=audio, layout="5.1")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / name, lambda frames: frames)
    assert f"re-encoding audio stream 1 to {target}, downmixed from 5.1 to stereo" in caplog.text
    with av.open(str(tmp_path / name)) as c:
        sound = c.streams.audio[0].codec_context
        assert sound.codec.canonical_name == target and sound.layout.name == "stereo"
    assert sound_seconds(tmp_path / name) == pytest.approx(sound_seconds(clip), abs=0.05)


@pytest.mark.parametrize("layout, kept", [("5.1(side)", "5.1"), ("5.0(side)", "5.0"), ("quad(side)", "quad")])
def test_surround_with_side_speakers_keeps_its_channels_in_opus(layout, kept, tmp_path):
    # found by QA: AC3's 5.1 (side speakers, as films' tracks have it) into a .webm
    # was downmixed to stereo: Opus takes 5.1 with back speakers, which ffmpeg puts
    # the side ones into, as here
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio="ac3", layout=layout)
    upscale_video(clip, tmp_path / "out.webm", lambda frames: frames)
    with av.open(str(tmp_path / "out.webm")) as c:
        assert c.streams.audio[0].codec_context.layout.name == kept
    assert sound_seconds(tmp_path / "out.webm") == pytest.approx(sound_seconds(clip), abs=0.05)


def test_stereo_pcm_whose_channels_are_unnamed_is_copied_into_a_mov(tmp_path):
    # A Matroska or AVI file's PCM sound names no channels, which the mov muxer
    # refused only when it wrote its trailer, after every frame was upscaled.
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio="pcm_s16le", layout="stereo")
    upscale_video(clip, tmp_path / "out.mov", lambda frames: frames)
    with av.open(str(tmp_path / "out.mov")) as c:
        assert c.streams.audio[0].layout.name == "stereo"
    # Copied, not re-encoded: the same samples (the mov muxer cuts them in its own packets).
    assert b"".join(data for _, data in packets(tmp_path / "out.mov", "audio")) == \
        b"".join(data for _, data in packets(clip, "audio"))


@pytest.mark.parametrize("audio", ["vorbis", "pcm_s16le"])
def test_sound_an_mp4_holds_but_players_do_not_play_from_it_is_re_encoded_to_aac(audio, tmp_path, caplog):
    # found by a sweep: Vorbis and PCM were copied into an .mp4, where browsers and
    # QuickTime (Vorbis) or Apple's players (PCM) play no sound.
    clip = make_clip(tmp_path / "in.mkv", frames=3, width=16, height=16, audio=audio, layout="stereo")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert (f".mp4 holds {audio} audio that common players do not play there: re-encoding audio stream 1 to aac "
            "(a .mkv output keeps it)") in caplog.text
    assert audio_stream(tmp_path / "out.mp4")[0] == "aac"
    assert sound_seconds(tmp_path / "out.mp4") == pytest.approx(sound_seconds(clip), abs=0.05)


def test_vorbis_sound_is_re_encoded_into_an_avi_in_step_with_the_picture(tmp_path, caplog):
    # Vorbis has no AVI tag of its own (FFmpeg writes one it made up, which no other
    # player knows) and FFmpeg read its copy back mistimed: its second packet at
    # 0.47 s, 22 packets' time, against a picture from 0.
    clip = make_clip(tmp_path / "in.mkv", frames=8, width=16, height=16, audio="vorbis", layout="stereo")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.avi", lambda frames: frames)
    assert (".avi holds vorbis audio that common players do not play there: re-encoding audio stream 1 to mp3 "
            "(a .mkv output keeps it)") in caplog.text
    assert audio_stream(tmp_path / "out.avi")[0] == "mp3float"
    with av.open(str(tmp_path / "out.avi")) as c:
        first = next(c.decode(audio=0))
    assert first.pts * first.time_base == 0
    assert sound_seconds(tmp_path / "out.avi") == pytest.approx(sound_seconds(clip), abs=0.05)


def test_opus_sound_is_copied_into_an_mp4(tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mkv", frames=3, width=16, height=16, audio="libopus")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert "audio" not in caplog.text
    assert [data for _, data in packets(tmp_path / "out.mp4", "audio")] == [data for _, data in packets(clip, "audio")]


def test_encoder_settings_are_refused_before_the_input_is_read(tmp_path):
    proc = run(NCNN_SR, "video", "-i", tmp_path / "missing.mp4", "-o", tmp_path / "out.mp4", *X2,
               "--codec", "aac", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "ncnn-sr: error: 'aac' is an audio encoder, not a video encoder"


@pytest.mark.parametrize("name, target, container", [
    ("out.mp4", "target.mp4", "mov"),
    ("out.mkv", "blob", "matroska"),  # the link's name, not its target's, says which container
])
def test_a_video_written_through_a_link_keeps_the_link(name, target, container, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    (tmp_path / "store").mkdir()
    link = tmp_path / name
    link.symlink_to(tmp_path / "store" / target)
    run(NCNN_SR, "video", "-i", clip, "-o", link, *X2)
    assert link.is_symlink()
    with av.open(str(tmp_path / "store" / target)) as c:
        assert c.format.name.startswith(container) and c.streams.video[0].width == 64
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [target]


def test_a_timecode_on_the_file_itself_follows_fps_too(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=None, tags={"timecode": "01:02:03:04"})
    out = tmp_path / "out.mkv"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--fps", "30")
    with av.open(str(out)) as c:
        tags = {key.lower(): value for key, value in c.metadata.items()}
    assert tags["timecode"] == "01:02:03:05"


def test_an_avi_with_b_frames_keeps_its_frames_in_order_and_an_avi_written_has_none(tmp_path):
    # An AVI has no presentation times: FFmpeg stamps B-frame video in decoding order
    # (1, 4, 3, 5, 2, ...), which the encoder refused ("cannot encode: Invalid
    # argument"), and this tool's own .avi output had B-frames.
    clip = make_clip(tmp_path / "in.avi", frames=12, audio=None)
    stamped, _ = frame_times(clip)
    assert stamped != sorted(stamped), "the clip was meant to have B-frames"
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    times, _ = frame_times(tmp_path / "out.mkv")
    assert times == pytest.approx([i / 24 for i in range(12)], abs=1e-3)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2)
    times, _ = frame_times(tmp_path / "out.avi")
    assert len(times) == 12 and times == sorted(times)


def test_an_avi_with_b_frames_keeps_each_frame_at_its_time_beside_its_sound(tmp_path):
    # An AVI times its frames by their place in the file, the nth at n frames from
    # its start, as its sound from the start. FFmpeg guesses the stamps of B-frame
    # video a frame late (its reorder delay): the picture came out a frame behind
    # the sound, its first frame at 1/24 s.
    clip = tmp_path / "in.avi"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream("mp3", rate=48000)
        sound.layout = "mono"
        # A grey level per frame (what it is), over a texture (so that x264 makes B-frames).
        images = [(picture(32, 32, seed=i) // 8 + 16 * i).astype(np.uint8) for i in range(12)]
        encode_all(out, video, [av.VideoFrame.from_ndarray(image, format="rgb24") for image in images])
        tone = (0.3 * np.sin(np.arange(24000) / 10) * 32767).astype(np.int16)
        for start in range(0, len(tone), 1152):
            frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1152], format="s16p", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode())
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    with av.open(str(tmp_path / "out.mkv")) as c:
        levels = np.array([image.mean() for image in images])
        shown = [(round(float(f.pts * f.time_base), 3), int(np.abs(levels - f.to_ndarray(format="rgb24").mean()).argmin()))
                 for f in c.decode(video=0)]
    with av.open(str(tmp_path / "out.mkv")) as c:
        sound_starts = float(next(c.decode(audio=0)).time)
    assert shown == [(round(i / 24, 3), i) for i in range(12)]
    assert sound_starts == 0


def test_an_avi_whose_start_is_cut_off_read_as_its_bare_video_is_said(tmp_path):
    # Its header gone (a file recovered or copied in part), FFmpeg reads the H.264 in it
    # as a bare stream: the sound it held was dropped without a word.
    whole = make_clip(tmp_path / "whole.avi", frames=24, gop=6).read_bytes()
    (tmp_path / "in.avi").write_bytes(whole[len(whole) // 100:])
    proc = run(NCNN_SR, "video", "-i", tmp_path / "in.avi", "-o", tmp_path / "out.mkv", *X2)
    assert f"warning: {tmp_path / 'in.avi'}: read as raw H.264 video, not as the .avi its name says: its header " \
           "is missing or damaged (its start cut off?), and any sound in it is not found" in proc.stderr, proc.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video"]
    proc = run(NCNN_SR, "video", "-i", tmp_path / "whole.avi", "-o", tmp_path / "whole_out.mkv", *X2)
    assert "warning" not in proc.stderr, proc.stderr


def test_an_avi_cut_before_a_keyframe_keeps_each_frame_at_its_time(tmp_path):
    # The frames before its first keyframe cannot be decoded: FFmpeg leaves them out,
    # and the frames after them took those frames' places, one to three frames early.
    images = [(picture(32, 32, seed=i) // 8 + 16 * i).astype(np.uint8) for i in range(12)]
    with av.open(str(tmp_path / "full.avi"), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        video.codec_context.gop_size = 4
        encode_all(out, video, [av.VideoFrame.from_ndarray(image, format="rgb24") for image in images])
    clip = tmp_path / "cut.avi"
    with av.open(str(tmp_path / "full.avi")) as full, av.open(str(clip), "w") as out:
        video = out.add_stream_from_template(full.streams.video[0])
        for packet in [p for p in full.demux(video=0) if p.size][1:]:  # the first keyframe cut off
            packet.stream = video
            out.mux(packet)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    levels = np.array([image.mean() for image in images])
    with av.open(str(tmp_path / "out.mkv")) as c:
        shown = [(round(float(f.pts * f.time_base), 3), int(np.abs(levels - f.to_ndarray(format="rgb24").mean()).argmin()))
                 for f in c.decode(video=0)]
    assert shown == [(round(i / 24, 3), i) for i in range(4, 12)]


def test_an_avi_of_h264_without_b_frames_keeps_each_frame_at_its_place_after_a_dropped_one(tmp_path):
    # An AVI keeps a dropped frame's place as an empty chunk. FFmpeg stamps H.264 there
    # with the place of the packet after each, so the frame before the gap took the
    # place of the last frame dropped, two frames late here.
    images = [(picture(32, 32, seed=i) // 8 + 16 * i).astype(np.uint8) for i in range(6)]
    places = [0, 1, 2, 5, 6, 7]
    clip = tmp_path / "in.avi"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        video.codec_context.options = {"bf": "0"}
        for image, place in zip(images, places):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = place, Fraction(1, 24)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
    levels = np.array([image.mean() for image in images])
    with av.open(str(tmp_path / "out.mkv")) as c:
        shown = [(round(float(f.pts * f.time_base) * 24), int(np.abs(levels - f.to_ndarray(format="rgb24").mean()).argmin()))
                 for f in c.decode(video=0)]
    assert shown == list(zip(places, range(6)))


def test_frames_that_change_size_midway_are_scaled_to_the_first_ones_size_with_a_warning(tmp_path):
    # Two bare H.264 streams one after the other (a recording whose source switched,
    # a download of adaptive streaming): the run stopped at the first larger frame,
    # blaming "the frames function", which a command's user never gave.
    clip = tmp_path / "in.h264"
    with open(clip, "wb") as joined:
        for size, colour in (((64, 48), 60), ((80, 60), 180)):
            part = io.BytesIO()
            with av.open(part, "w", format="h264") as out:
                video = out.add_stream("libx264", rate=25)
                video.width, video.height, video.pix_fmt = *size, "yuv420p"
                image = np.full((size[1], size[0], 3), colour, np.uint8)
                encode_all(out, video, [av.VideoFrame.from_ndarray(image, format="rgb24") for _ in range(4)])
            joined.write(part.getvalue())
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2)
    assert [line for line in proc.stderr.splitlines() if "change size" in line] == [
        f"ncnn-sr: warning: {clip}: its frames change size midway, from 64x48 to 80x60 at frame 4 (0.16 s): "
        "scaling them to 64x48, the first frame's size"]
    with av.open(str(tmp_path / "out.mkv")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert [f.shape for f in frames] == [(96, 128, 3)] * 8
    assert [round(f.mean() / 60) for f in frames] == [1] * 4 + [3] * 4


def test_a_damaged_videos_error_is_freed_once_dropped(tmp_path):
    # It was held in a cycle through its traceback, with the decoding's frames and
    # what they held, until a full collection: in a folder of videos, each failed
    # one's while the next ran.
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(InputError, match="a damaged file") as raised:
            upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames)
        errors = [weakref.ref(raised.value), weakref.ref(raised.value.__context__)]  # and FFmpeg's within
        del raised
        assert [error() for error in errors] == [None, None]
    finally:
        gc.enable()


def test_skip_damaged_upscales_the_rest_of_a_damaged_video_and_says_so(tmp_path):
    clip = garble_video_packet(make_clip(tmp_path / "in.mp4", frames=12), tmp_path / "broken.mkv", 6)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "stopped.mp4", *X2, check_ok=False)
    assert "(a damaged file? --skip-damaged upscales the rest)" in proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", "--skip-damaged", *X2)
    assert f"{clip}: 1 damaged video packet skipped (--skip-damaged): frames are missing there" in proc.stderr
    times, size = frame_times(tmp_path / "out.mp4")
    assert size == (64, 48) and 6 <= len(times) < 12
    assert audio_stream(tmp_path / "out.mp4") is not None


def test_a_damaged_subtitle_cue_is_skipped_with_skip_damaged_as_its_hint_says(tmp_path):
    # found by the fuzz audit: the cue's refusal said "--skip-damaged upscales the
    # rest", and with it the run failed the same (an mp4's cues decoded into a .mkv's).
    data = bytearray(add_mov_text(make_clip(tmp_path / "plain.mp4", frames=3, audio=None), tmp_path / "good.mp4",
                                  "Hello").read_bytes())
    at = data.index(b"\x00\x05Hello")
    data[at + 2:at + 7] = b"\xbd\xf2\x21\x06\xf0"  # no UTF-8: the mov_text decoder refuses it
    clip = tmp_path / "in.mp4"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "stopped.mkv", *X2, check_ok=False)
    assert proc.returncode == 1 and "(a damaged file? --skip-damaged upscales the rest)" in proc.stderr, proc.stderr
    assert not (tmp_path / "stopped.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    assert f"{clip}: 1 damaged subtitle cue skipped (--skip-damaged)" in proc.stderr, proc.stderr
    times, size = frame_times(tmp_path / "out.mkv")
    assert len(times) == 3 and size == (64, 48)


def test_a_video_packet_whose_picture_size_is_past_ffmpegs_limits_is_damage(tmp_path):
    # found by the fuzzer: a VP9 keyframe's size damaged to 55305x9355, which its
    # decoder refuses with EINVAL, stopped the run as "cannot decode: Invalid
    # argument", a packet --skip-damaged did not skip.
    data = bytearray(make_clip(tmp_path / "good.webm", frames=6, width=16, height=12, audio=None, gop=3)
                     .read_bytes())
    sync = b"\x82\x49\x83\x42"  # a shown keyframe's first byte, its sync code, then its size
    at = data.index(sync, data.index(sync) + 1) + len(sync)  # the second keyframe's
    data[at:at + 4] = b"\x0f\xff\xff\xff"  # 65536 pixels wide, 65536 high
    data[at + 4] |= 0xF0
    clip = tmp_path / "in.webm"
    clip.write_bytes(bytes(data))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.endswith(f"error: {clip}: cannot decode: its decoder refused a packet as invalid (a damaged "
                                "file? --skip-damaged upscales the rest)\n"), proc.stderr
    assert not (tmp_path / "out.mkv").exists()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "--skip-damaged", *X2)
    # And the two after, which refer to it: the last said as cut short, no video after it.
    assert f"{clip}: 2 damaged video packets skipped" in proc.stderr, proc.stderr
    assert len(frame_times(tmp_path / "out.mkv")[0]) == 3


# OpenEXR lists grayf32le first, which its colour frames were made, without a word.
@pytest.mark.parametrize("codec,suffix,pix_fmt", [("png", ".mov", "rgb24"), ("prores_ks", ".mov", "yuv422p10le"),
                                                  ("qtrle", ".mov", "rgb24"), ("exr", ".mov", "gbrpf32le")])
def test_an_encoder_without_4_2_0_gets_its_nearest_format_unasked(tmp_path, codec, suffix, pix_fmt):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / f"out{suffix}"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--codec", codec, "-q")
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
        assert sum(1 for _ in c.decode(video=0)) == 3


@pytest.mark.parametrize("flags", [[], ["--pix-fmt", "yuv420p"], ["--pix-fmt", "yuv444p"]])
def test_a_jpeg_encoder_codes_its_yuv_pixels_in_full_range(tmp_path, flags):
    # FFmpeg's MJPEG encoder refuses limited-range YUV: --codec mjpeg failed with a
    # bare "Invalid argument" unless --pix-fmt yuvj420p was given too.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, colours=[(200, 40, 90)])
    out = tmp_path / "out.avi"
    run(NCNN_SR, "video", "-i", clip, "-o", out, *X2, "--codec", "mjpeg", *flags)
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.color_range) == ("mjpeg", ColorRange.JPEG)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3)
    assert np.abs(frames[0].reshape(-1, 3).mean(axis=0) - (200, 40, 90)).max() < 6  # read back as it was coded


@pytest.mark.parametrize("name, pix_fmt", [("out.mov", "uyvy422"), ("out.avi", "yuv420p"), ("out.mkv", "yuv420p")])
def test_raw_video_is_written_in_a_pixel_format_its_container_reads_back(name, pix_fmt, tmp_path):
    # rawvideo lists no formats: yuv420p went into a .mov, which stores raw YUV only
    # packed, and the file written could not be decoded; a .mkv, which holds raw
    # yuv420p, was refused.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", "rawvideo")
    with av.open(str(tmp_path / name)) as c:
        frames = list(c.decode(video=0))
    assert [(f.format.name, f.width) for f in frames] == [(pix_fmt, 32)] * 2


@pytest.mark.parametrize("name, pix_fmt, said", [
    ("out.avi", "rgb24", "rawvideo cannot encode rgb24 pixels into .avi: it takes yuv420p"),
    ("out.mov", "yuv420p", "rawvideo cannot encode yuv420p pixels into .mov: it takes "),
])
def test_raw_pixels_a_container_would_misread_are_a_one_line_error(name, pix_fmt, said, tmp_path):
    # An .avi read raw rgb24 back as bgr24, red and blue swapped, without a word.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", "rawvideo", "--pix-fmt", pix_fmt,
               check_ok=False)
    one_line_failure(proc, tmp_path, said)


def mean_colour(path):
    with av.open(str(path)) as c:
        return to_rgb(next(c.decode(video=0))).reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("codec, name", [("mpeg4", "out.avi"), ("ffv1", "out.avi"), ("libvpx", "out.webm"),
                                         ("libvpx", "out.mkv")])
def test_video_that_cannot_say_its_matrix_is_coded_in_the_one_it_is_read_in(codec, name, tmp_path):
    # Coded in BT.709 whatever the output could say: an .avi holds no colour tags (nor
    # do MPEG-4 Part 2 and FFV1), so an SD picture was read as BT.601, and VP8 is
    # BT.601 in any container; a flat red came back 25 levels off in green.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, colours=[(200, 40, 90)])
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "x264.mkv", *X2)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", codec)
    assert np.abs(mean_colour(tmp_path / name) - mean_colour(tmp_path / "x264.mkv")).max() < 3


@pytest.mark.parametrize("name", ["out.mkv", "out.mov", "out.avi"])
@pytest.mark.parametrize("flags", [[], ["--bitrate", "5M"]])
def test_vc2_is_written_and_reads_back(name, flags, tmp_path):
    # VC-2 shares its rate among frames by the time base: at an mkv's 1/1000 a frame had
    # bytes too few to code, and without a --bitrate none at all (PyAV sets 0, not its 600
    # Mb/s): "cannot encode with vc2: Invalid argument" in any container.
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=34, height=34, audio=None, colours=[(200, 40, 90)])
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "x264.mkv", *X2)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / name, *X2, "--codec", "vc2", *flags)
    times, size = frame_times(tmp_path / name)
    assert times == pytest.approx(frame_times(tmp_path / "x264.mkv")[0], abs=1e-3) and size == (68, 68)
    assert np.abs(mean_colour(tmp_path / name) - mean_colour(tmp_path / "x264.mkv")).max() < 3


def test_a_bitrate_too_low_for_vc2s_frames_is_said_to_be(tmp_path):
    # It said "cannot encode with vc2: Invalid argument", and no more.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=40, height=40, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", "vc2", "--bitrate", "10k",
               check_ok=False)
    one_line_failure(proc, tmp_path, "cannot encode with vc2: Invalid argument (too few bits for each frame's "
                                     "slices: give a higher --bitrate)")


@pytest.mark.parametrize("codec, size, pix_fmt, said", [
    # VC-2's 32x32 colour planes came back a flat red 45 levels off in green.
    ("vc2", (16, 16), [], "32x32 yuv420p frames wrong (they read back as another picture, or none): give frames at "
                          "least 66 pixels wide and 66 pixels high"),
    ("vc2", (64, 16), [], "128x32 yuv420p frames wrong (they read back as another picture, or none): give frames at "
                          "least 66 pixels high"),
    ("vc2", (16, 16), ["--pix-fmt", "yuv444p"], "32x32 yuv444p frames wrong (they read back as another picture, or "
                                                "none): give frames at least 33 pixels wide and 33 pixels high"),
    # SpeedHQ's frames of 32 lines read back as noise (5 dB); CineForm's could not be read.
    ("speedhq", (32, 16), [], "64x32 yuv420p frames wrong (they read back as another picture, or none): give frames "
                              "at least 34 pixels high"),
    ("cfhd", (16, 24), [], "32x48 yuv422p10le frames wrong (they read back as another picture, or none): give frames "
                           "at least 48 pixels wide"),
])
def test_frames_an_encoder_codes_wrong_are_one_line(codec, size, pix_fmt, said, tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=size[0], height=size[1], audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, "--codec", codec, *pix_fmt,
               check_ok=False)
    one_line_failure(proc, tmp_path, f"{codec} codes " + said)


@pytest.mark.parametrize("codec, size, flags, said", [
    ("vc2", (16, 16), [], "vc2 codes 32x32 yuv420p frames wrong"),
    ("speedhq", (16, 12), ["--width", "40", "--height", "30"], "speedhq codes 40x30 yuv420p frames wrong"),
    ("libsvtav1", (40, 24), ["--bitrate", "500k"], "libsvtav1 keeps to a --bitrate only on frames of 64x64 pixels"),
])
def test_frames_an_encoder_cannot_code_are_refused_before_the_model_loads(codec, size, flags, said, tmp_path):
    # The output's size is known from the input's: these were refused only once the
    # model had loaded and the first frame was upscaled. An unknown model, which only
    # loading finds, shows which comes first.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=size[0], height=size[1], audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", "-n", "no-such-model", "-s", "2", "-g", "-1",
               "--codec", codec, *flags, check_ok=False)
    one_line_failure(proc, tmp_path, said)


@pytest.mark.parametrize("codec, out, flags, said", [
    ("h261", "out.avi", [], "h261: Invalid argument (The specified picture size of 32x32 is not valid for the H.261 "
                            "codec.)"),
    ("h263", "out.avi", [], "h263: Invalid argument (The specified picture size of 32x32 is not valid for the H.263 "
                            "codec.)"),
    ("dvvideo", "out.avi", [], "dvvideo: Invalid argument (Found no DV profile for 32x32 yuv420p video.)"),
    ("dnxhd", "out.mov", ["--bitrate", "36M"], "dnxhd: Invalid argument (video parameters incompatible with DNxHD.)"),
    ("dnxhd", "out.mov", [], "dnxhd: Invalid argument (Input dimensions too small, input must be at least 256x120): "
                            "the upscaled frames are 32x32"),
    ("cinepak", "out.avi", ["--width", "50", "--height", "38"],
     "cinepak: Invalid argument (width and height must be multiples of four (got 50x38))"),
    ("flashsv2", "out.flv", ["--width", "8", "--height", "8"],
     "flashsv2: Invalid argument (Input dimensions too small, input must be at least 16x16 !): the upscaled frames "
     "are 8x8"),
    ("libx265", "out.mkv", ["--width", "8", "--height", "8"], "libx265: Invalid argument (Image size is too small "
                                                               "(8x8).)"),
])
def test_frames_an_encoder_takes_in_only_some_sizes_are_refused_before_the_model_loads(codec, out, flags, said,
                                                                                       tmp_path):
    # The encoder told its sizes only as it opened on the first frame, once the model had
    # loaded and upscaled it; the wording is that refusal's.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / out, "-n", "no-such-model", "-s", "2", "-g", "-1",
               "--codec", codec, *flags, check_ok=False)
    one_line_failure(proc, tmp_path, f"{tmp_path / out}: cannot encode with {said}")


def test_a_size_dnxhd_refuses_from_a_pipe_is_one_line_that_says_the_frames_size(tmp_path):
    # Read through a pipe, the size is checked before the model loads all the same
    # (only a rotated video waits for its first frame); FFmpeg's reason says the least
    # size, not the frames'.
    clip = make_clip(tmp_path / "in.mkv", frames=2, width=16, height=16, audio=None)
    proc = subprocess.run([NCNN_SR, "video", "-i", "-", "-o", tmp_path / "out.mov", "-n", "no-such-model", "-s", "2",
                           "-g", "-1", "--codec", "dnxhd"], input=clip.read_bytes(), capture_output=True, timeout=300)
    proc.stderr = proc.stderr.decode()
    one_line_failure(proc, tmp_path, "cannot encode with dnxhd: Invalid argument (Input dimensions too small, input "
                                     "must be at least 256x120): the upscaled frames are 32x32")


def test_a_size_an_encoder_of_fixed_sizes_takes_is_written(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=88, height=72, audio=None)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, "--codec", "h263")
    assert frame_times(tmp_path / "out.avi")[1] == (176, 144)  # QCIF


@pytest.mark.parametrize("pix_fmt, profile", [([], "DNXHR HQ"), (["--pix-fmt", "yuv422p10le"], "DNXHR HQX"),
                                             (["--pix-fmt", "yuv444p10le"], "DNXHR 444")])
def test_dnxhd_without_a_bitrate_codes_dnxhr_at_any_size(pix_fmt, profile, tmp_path):
    # DNxHD takes only its profiles' sizes, each at its own bitrates: without --bitrate
    # it refused every size ("video parameters incompatible with DNxHD").
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=130, height=62, audio=None)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mov", *X2, "--codec", "dnxhd", *pix_fmt)
    with av.open(str(tmp_path / "out.mov")) as made:
        stream = made.streams.video[0]
        assert (stream.profile, stream.width, stream.height) == (profile, 260, 124)
        assert sum(1 for _ in made.decode(stream)) == 2
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "x264.mkv", *X2)
    assert np.abs(mean_colour(tmp_path / "out.mov") - mean_colour(tmp_path / "x264.mkv")).max() < 3


def test_dnxhd_at_a_size_and_rate_of_its_profiles_is_not_refused_before_the_run():
    from ncnn_sr import video, video_codecs
    info = video.VideoInfo(960, 540, Fraction(25), 2, 0.08, 0, 0, pix_fmt="yuv420p")
    options = EncodeOptions(codec="dnxhd", bitrate=36_000_000)
    video_codecs.check_size(info, Path("out.mov"), "dnxhd", options, scale=2)
    with pytest.raises(InputError, match="video parameters incompatible with DNxHD"):
        video_codecs.check_size(info, Path("out.mov"), "dnxhd", replace(options, bitrate=37_000_000), scale=2)


def test_frames_too_large_for_x264_are_refused_before_the_run():
    # A video that says its frames are 12000 pixels a side (PNG frames: a megabyte of
    # file) was upscaled for hours before x264 refused the first frame.
    options = EncodeOptions()
    _check_size(8192, 12, "out.mkv", "libx264", options)
    with pytest.raises(InputError, match=r"out\.mkv: libx264 encodes frames of at most 16384x16384 pixels, not "
                                         r"18000x32: upscale less, or choose another codec, such as libx265$"):
        _check_size(9000, 16, "out.mkv", "libx264", options)


@pytest.mark.parametrize("codec", ["libx265", "ffv1"])
def test_frames_too_large_for_ffmpeg_are_refused_before_the_run(codec):
    # FFmpeg opens no encoder on frames of more bytes than an int counts (8 a pixel,
    # with margins): x265 has no limit of its own.
    options = EncodeOptions()
    _check_size(8127, 8127, "out.mkv", codec, options)
    with pytest.raises(InputError, match=r"out\.mkv: FFmpeg encodes no frames as large as 16256x16256 \(at most some "
                                         r"268 million pixels and margins: 16255x16255 square\): upscale less$"):
        _check_size(8128, 8128, "out.mkv", codec, options)


def test_frames_under_32_pixels_high_and_wide_across_x265_refuses_are_refused_before_the_run():
    # x265 codes them in blocks of 16 pixels, which the HEVC level it picks for so many
    # pixels across does not allow: it refused them as the first frame came.
    options = EncodeOptions()
    _check_size(500, 8, "out.mkv", "libx265", options)
    with pytest.raises(InputError, match=r"out\.mkv: cannot encode with libx265: .*x265 codes frames under 32 pixels a "
                                         r"side only up to some 4000 pixels the other way: upscale more, or "
                                         r"choose another codec\).*6000x16"):
        _check_size(3000, 8, "out.mkv", "libx265", options)


def test_frames_too_small_for_svt_av1_are_refused_before_the_run():
    options = EncodeOptions(codec="libsvtav1")
    _check_size(2, 2, "out.mkv", "libsvtav1", options)
    with pytest.raises(InputError, match=r"out\.mkv: libsvtav1 encodes frames of at least 4x4 pixels, not 2x4"):
        _check_size(1, 2, "out.mkv", "libsvtav1", options)


def test_mpeg2_frames_of_a_side_of_4096_are_refused_before_the_run():
    options = EncodeOptions(codec="mpeg2video")
    _check_size(2049, 16, "out.mpg", "mpeg2video", options)
    with pytest.raises(InputError, match=r"out\.mpg: mpeg2video encodes no frames 4096 pixels wide or high"):
        _check_size(2048, 16, "out.mpg", "mpeg2video", options)
    assert not _opens_and_encodes("mpeg2video", 4096, 32) and _opens_and_encodes("mpeg2video", 4098, 32)


def _check_size(width, height, name, codec, options):
    """video_codecs.check_size on a 25 fps yuv420p video of ``width`` x ``height``, to
    ``name`` with ``codec``, upscaled x2."""
    from ncnn_sr import video, video_codecs
    video_codecs.check_size(video.VideoInfo(width, height, Fraction(25), 2, 0.08, 0, 0, pix_fmt="yuv420p"),
                            Path(name), codec, options, scale=2)


def _opens_and_encodes(codec, width, height):
    """Whether ``codec`` opens on frames of ``width`` x ``height`` and encodes one."""
    from ncnn_sr import video_codecs
    pix_fmt = video_codecs._default_format(codec, "yuv420p", None)
    ctx = video_codecs._probe_context(codec, pix_fmt)
    ctx.width, ctx.height = width, height
    try:
        ctx.open()
        frame = av.VideoFrame(width, height, pix_fmt)
        frame.pts = 0
        return bool(list(ctx.encode(frame)) + list(ctx.encode(None)))
    except av.error.FFmpegError:
        return False


@pytest.mark.parametrize("codec", ["libx264", "libx264rgb", "libvpx", "libvpx-vp9", "libsvtav1", "mpeg1video", "mpeg4",
                                   "mpeg2video", "flv", "svq1", "mjpeg", "jpegls", "gif", "libwebp"])
def test_the_largest_frames_said_for_an_encoder_are_those_it_encodes(codec):
    # On frames 32 pixels across the other way, which cost little to code (SVT-AV1 never
    # finished 128x16 ones), and sides of a whole number of chroma samples (4 pixels,
    # SVQ1's 4:1:0).
    from ncnn_sr import video_codecs
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec}")
    os.environ.setdefault(*video_codecs.QUIET_SVT_AV1)
    for side, (lower, higher) in enumerate(zip((32, 32), video_codecs.MOST_SIDES[codec])):
        most = higher - higher % 4
        size = [lower, lower]
        size[side] = most
        assert _opens_and_encodes(codec, *size)
        size[side] = most + 4
        assert not _opens_and_encodes(codec, *size)


@pytest.mark.parametrize("codec, size, said", [
    ("libvpx-vp9", (32800, 8), "libvpx-vp9 encodes frames of at most 65536x65536 pixels, not 65600x16: upscale less, "
                               "or choose another --codec\n"),
    ("libvpx", (8200, 8), "libvpx encodes frames of at most 16383x16383 pixels, not 16400x16: upscale less, or "
                          "choose another --codec, such as libvpx-vp9"),
    # SVT-AV1 opened on these and wrote them 4464 pixels wide (70000 less 65536), without a word.
    ("libsvtav1", (35000, 8), "libsvtav1 encodes frames of at most 16384x8704 pixels, not 70000x16: upscale less, or "
                              "choose another --codec\n"),
    ("libsvtav1", (8, 4400), "libsvtav1 encodes frames of at most 16384x8704 pixels, not 16x8800: upscale less, or "
                             "choose another --codec, such as libvpx-vp9"),
])
def test_frames_too_large_for_an_encoder_are_refused_before_the_model_loads(codec, size, said, tmp_path):
    clip = make_clip(tmp_path / "in.webm", frames=1, width=size[0], height=size[1], audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.webm", "-n", "no-such-model", "-s", "2", "-g",
               "-1", "--codec", codec, check_ok=False)
    one_line_failure(proc, tmp_path, f"{tmp_path / 'out.webm'}: {said}")


def broken_model_folder(folder):
    """A -m folder whose realesr-animevideov3-x2 fails to load: a catalog model, whose
    scale is known before it loads."""
    folder.mkdir()
    for suffix in (".param", ".bin"):
        (folder / f"realesr-animevideov3-x2{suffix}").write_text("not a model")
    return folder


def test_frames_an_encoder_cannot_code_are_refused_before_the_model_loads_at_the_models_own_scale(tmp_path):
    # With no -s, --width or --height the output is the input at the model's scale,
    # which the catalog knows: nothing was checked before it loaded.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None)
    models = broken_model_folder(tmp_path / "models")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", "-m", models, "-n",
               "realesr-animevideov3-x2", "-g", "-1", "--codec", "h263", check_ok=False)
    one_line_failure(proc, tmp_path, "cannot encode with h263: Invalid argument (The specified picture size of 32x32 "
                                     "is not valid for the H.263 codec.)")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", "-m", models, "-n",
               "realesr-animevideov3-x2", "-g", "-1", "--codec", "vc2", check_ok=False)
    one_line_failure(proc, tmp_path, "vc2 codes 32x32 yuv420p frames wrong")


@needs_display_matrix
def test_frames_that_fit_only_as_stored_are_refused_before_the_model_loads_when_turned_upright(tmp_path):
    # Stored 16x40 and shown 40x16: SpeedHQ codes 32x80 but not 80x32, which the turned
    # frames are; only the first frame was thought to tell, after the model had loaded.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=40, audio=None, rotation=-90)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", "-n", "no-such-model", "-s", "2", "-g",
               "-1", "--codec", "speedhq", check_ok=False)
    one_line_failure(proc, tmp_path, "speedhq codes 80x32 yuv420p frames wrong")


def test_frames_turned_by_a_rotate_tag_are_refused_before_the_model_loads(tmp_path):
    plain = make_clip(tmp_path / "plain.mkv", frames=2, width=16, height=40, audio=None)
    clip = remux_with(plain, tmp_path / "in.mkv", stream_tags={0: {"rotate": "90"}})
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", "-n", "no-such-model", "-s", "2", "-g",
               "-1", "--codec", "speedhq", check_ok=False)
    one_line_failure(proc, tmp_path, "speedhq codes 80x32 yuv420p frames wrong")


def test_frames_that_fit_once_turned_upright_are_not_refused_before_they_are_seen(tmp_path):
    # Stored 40x16 and shown 16x40 (a phone's): SpeedHQ cannot code 80x32 but can
    # 32x80, and which the frames are is known only once one is decoded.
    from ncnn_sr import video, video_codecs
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=40, height=16, audio=None, rotation=-90)
    info = video.probe(clip)
    assert (info.width, info.height) == (40, 16)
    video_codecs.check_size(info, tmp_path / "out.avi", "speedhq", EncodeOptions(codec="speedhq"), scale=2)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, "--codec", "speedhq")
    assert frame_times(tmp_path / "out.avi")[1] == (32, 80)


@pytest.mark.parametrize("frame_ms", [None, [0, 40, 80, 160, 200, 240, 360, 400, 441, 480, 520, 560]])
def test_mpeg4_keeps_the_frame_times_of_a_video_in_ticks_finer_than_it_counts(frame_ms, tmp_path):
    # An MPEG-TS (a phone's mp4 too) counts time in 1/90000 s, which MPEG-4 Part 2 cannot
    # (65535 ticks a second at most): its encoder refused the first frame once the model
    # had loaded, "timebase 1/90000 not supported by MPEG 4 standard".
    clip = make_clip(tmp_path / "in.ts", frames=12, width=16, height=16, audio=None, frame_ms=frame_ms)
    with av.open(str(clip)) as c:
        assert c.streams.video[0].time_base == Fraction(1, 90000)
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *X2, "--codec", "mpeg4")
    times, size = frame_times(tmp_path / "out.mp4")
    expected = frame_times(clip)[0]
    assert size == (32, 32) and len(times) == len(expected)
    assert np.allclose(np.subtract(times, times[0]), np.subtract(expected, expected[0]), atol=1e-4)


@pytest.mark.parametrize("out, flags, said", [
    ("out.avi", [], "an .avi holds at most 1000 frames a second, not 1200: give --fps 1000 or less"),
    ("out.mkv", [], ".mkv stamps frames in whole milliseconds, so holds at most 1000 frames a second, not 1200"),
    ("out.webm", [], ".webm stamps frames in whole milliseconds, so holds at most 1000 frames a second, not 1200"),
    ("out.flv", [], ".flv stamps frames in whole milliseconds, so holds at most 1000 frames a second, not 1200"),
    ("out.wmv", ["--codec", "wmv2"], ".wmv stamps frames in whole milliseconds, so holds at most 1000 frames a "
                                     "second, not 1200"),
])
def test_a_rate_the_container_cannot_stamp_is_refused_before_the_model_loads(out, flags, said, tmp_path):
    # The input's rate is known from its header: it was refused only after the model loaded.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, rate=Fraction(1200))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / out, "-n", "no-such-model", "-s", "2", "-g", "-1",
               *flags, check_ok=False)
    one_line_failure(proc, tmp_path, f"{tmp_path / out}: {said}")


@pytest.mark.parametrize("rate, flags", [(Fraction(300), []), (Fraction(25), ["--fps", "241"])])
def test_a_rate_svt_av1_cannot_encode_is_one_line_before_the_model_loads(rate, flags, tmp_path):
    # SVT-AV1 takes at most 240 fps: it refused to open on the first frame, once the
    # model had loaded, in its own line and FFmpeg's "bad parameter (0x80001005)".
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, rate=rate)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "-n", "no-such-model", "-s", "2", "-g",
               "-1", "--codec", "libsvtav1", *flags, check_ok=False)
    one_line_failure(proc, tmp_path, f"{tmp_path / 'out.mkv'}: libsvtav1 encodes at most 240 frames a second, not "
                                     f"{rate if not flags else 241}: give --fps 240 or less, or another --codec")


def test_svt_av1_refuses_a_rate_over_240_fps_before_opening_the_output(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, rate=Fraction(300))
    with pytest.raises(InputError, match="libsvtav1 encodes at most 240 frames a second, not 300"):
        upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(codec="libsvtav1"))
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_a_frame_per_field_faster_than_the_container_stamps_is_refused_before_the_model_loads(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4, width=16, height=16, audio=None, rate=Fraction(600),
                     interlaced=True)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", "-n", "no-such-model", "-s", "2", "-g",
               "-1", "--field-rate", check_ok=False)
    one_line_failure(proc, tmp_path, "holds at most 1000 frames a second, not 1200: give --fps 1000 or less")


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_gray_video_is_tagged_full_range_as_it_is_made(codec, tmp_path):
    # swscale makes gray from RGB in full range; left untagged, H.264 and H.265 were
    # read as limited range and came back 4 levels darker than a PNG's gray.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=16, audio=None, colours=[(200, 40, 90)])
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "png.mov", *X2, "--codec", "png", "--pix-fmt", "gray")
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mkv", *X2, "--codec", codec, "--pix-fmt", "gray", "-q")
    assert np.abs(mean_colour(tmp_path / "out.mkv") - mean_colour(tmp_path / "png.mov")).max() < 1.5


@pytest.mark.parametrize("codec, said", [
    ("h263", "h263: Invalid argument (The specified picture size of 48x32 is not valid for the H.263 codec.)"),
    ("cinepak", "cinepak: Invalid argument (width and height must be multiples of four (got 50x38))"),
])
def test_an_encoder_refusing_the_frames_says_why(codec, said, tmp_path):
    # It said "cannot encode with h263: Invalid argument" and no more: FFmpeg's reason,
    # a size the encoder does not take, went to its log, which is kept quiet.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=24, height=16, audio=None)
    size = [] if codec == "h263" else ["--width", "50", "--height", "38"]
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.avi", *X2, "--codec", codec, *size, "-q",
               check_ok=False)
    one_line_failure(proc, tmp_path, f"cannot encode with {said}")


def test_each_refusal_of_the_frames_says_its_own_reason(tmp_path):
    # In one process (a folder run) the second video's refusal said no reason, as
    # PyAV holds back a log line that repeats the one before, and a third's said the
    # first's, of another size, which PyAV let out as the repeat ended.
    said = []
    for name, width in (("a", 16), ("b", 16), ("c", 24)):
        clip = make_clip(tmp_path / f"{name}.mp4", frames=2, width=width, height=16, audio=None)
        with pytest.raises(InputError) as refused:
            upscale_video(clip, tmp_path / f"{name}.avi", lambda frames: frames, EncodeOptions(codec="h263"))
        said.append(str(refused.value).split("Invalid argument")[1])
    assert said == [" (The specified picture size of 16x16 is not valid for the H.263 codec.)"] * 2 + [
        " (The specified picture size of 24x16 is not valid for the H.263 codec.)"]


def test_an_output_named_only_by_its_extension_is_said_to_have_none(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / ".mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and f"{tmp_path / '.mp4'} has no extension to say its video container: use mp4" \
        in proc.stderr


@pytest.mark.parametrize("bad, said", [
    (lambda i, f: f.astype(np.float32), "frame 0 is float32 of shape 24x32x3"),
    (lambda i, f: f[:, :, :2], "frame 0 is uint8 of shape 24x32x2"),
    (lambda i, f: f.tolist(), "frame 0 is a list"),
    (lambda i, f: f[:-2] if i == 2 else f, "frame 2 is uint8 of shape 22x32x3, where frame 0 was 24x32"),
])
def test_frames_a_frames_function_gives_wrong_are_refused_in_one_line(bad, said, tmp_path):
    # found by a bug hunt: a float frame came out of PyAV as a bare ValueError, and a
    # frame of another size was cropped or padded to the first one's without a word
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as refused:
        upscale_video(clip, out, lambda frames: (bad(i, f) for i, f in enumerate(frames)))
    assert str(refused.value) == (f"cannot write {out}: the frames function's {said}: "
                                  "H×W×3 uint8 or uint16 frames, all of one size, are wanted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.parametrize("setting, said", [
    ({"fps": 0}, "fps must be a positive number of frames a second, not 0"),
    ({"fps": "x"}, "fps must be a positive number of frames a second, not 'x'"),
    ({"fps": float("nan")}, "fps must be a positive number of frames a second, not nan"),
    ({"crf": -5}, "crf must be a whole number, 0 or more, not -5"),
    ({"crf": "16"}, "crf must be a whole number, 0 or more, not '16'"),
    ({"bitrate": 0}, "bitrate must be a whole number of bits a second, at least 1, not 0"),
    ({"codec": 5}, "codec must be an encoder's name, not 5"),
    ({"preset": b"slow"}, "preset must be a name, not b'slow'"),
    ({"pix_fmt": 1}, "pix_fmt must be a pixel format's name, not 1"),
    # A truthy "no" made a frame of each field (twice the frames), or skipped damage.
    ({"field_rate": "no"}, "field_rate must be True or False, not 'no'"),
    ({"skip_damaged": 1}, "skip_damaged must be True or False, not 1"),
    ({"keep_width": None}, "keep_width must be True or False, not None"),
    ({"keep_height": "false"}, "keep_height must be True or False, not 'false'"),
    # found by a check of the library's faults: an array passed silently, or two of
    # them failed on a bare ValueError (an array's truth is ambiguous)
    ({"deinterlace": np.array(["on"])},
     "deinterlace must be one of auto, on, off, film, not array(['on'], dtype='<U2')"),
    ({"deinterlace": np.array(["on", "off"])},
     "deinterlace must be one of auto, on, off, film, not array(['on', 'off'], dtype='<U3')"),
    ({"deinterlace": None}, "deinterlace must be one of auto, on, off, film, not None"),
    # An array printed over many lines is named by its type: the message keeps one line.
    ({"fps": np.zeros((9, 9))}, "fps must be a positive number of frames a second, not an object of type ndarray"),
    ({"start": np.zeros((9, 9))}, "start must be a number of seconds or a time such as '1:30', up to 1000000000 "
                                  "seconds, not an object of type ndarray"),
    # A time as the command takes it, read by the command's parser, and refused in its words.
    ({"start": "1:3x"}, "start: '1:3x' is not a time: give seconds (90, 2.5) or [H:]M:S (1:30, 1:02:03.5)"),
    ({"duration": "-5"}, "duration: '-5' is before the start: times count from 0"),
    ({"duration": "0:00"}, "duration must be more than 0 seconds, not 0.0"),
    ({"codec": np.zeros((9, 9))}, "codec must be an encoder's name, not an object of type ndarray"),
])
def test_encode_options_of_the_wrong_kind_are_refused_in_one_line(setting, said):
    # found by a bug hunt: fps=0 kept the source's rate without a word, fps="x" and
    # codec=5 were bare TypeErrors deep in the run, crf="16" went to the encoder as it was
    with pytest.raises(InputError) as refused:  # as the library's other refusals; a ValueError as it was
        EncodeOptions(**setting)
    assert str(refused.value) == said and isinstance(refused.value, ValueError)


@pytest.mark.parametrize("start, duration, seconds", [
    ("1:30", "00:01:30.5", (Fraction(90), Fraction(181, 2))),
    ("90", "2.5", (Fraction(90), Fraction(5, 2))),
    ("1:02:03.5", None, (Fraction(7447, 2), None)),
])
def test_encode_options_take_times_as_the_command_does(start, duration, seconds):
    # "1:30" was refused ("start must be a number of seconds") where --start 1:30 ran.
    options = EncodeOptions(start=start, duration=duration)
    assert (options.start, options.duration) == seconds


def each_frame_twice(frames):
    for frame in frames:
        yield frame
        yield frame


@pytest.mark.parametrize("proc, said", [
    (each_frame_twice, "gave a frame more than the 1 it was given"),
    (lambda frames: (f for i, f in enumerate(frames) if i % 2 == 0), "gave 2 frames for the 4 it was given"),
    (lambda frames: (f for f in frames if False), "gave 0 frames for the 4 it was given"),
    # found by a library audit: one that stopped taking frames wrote the first ones
    # without a word, and one that took none said the source "has no decodable video frames"
    (lambda frames: itertools.islice(frames, 2), "took 2 frames and stopped before the video's end"),
    (lambda frames: iter(()), "took 0 frames and stopped before the video's end"),
])
def test_a_frames_function_that_gives_more_or_fewer_frames_than_it_takes_is_refused(proc, said, tmp_path):
    # found by a bug hunt: one frame more was a bare IndexError ("pop from an empty
    # deque"); fewer wrote a shorter video on the first frames' times without a word,
    # and none said the source "has no decodable video frames"
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError) as refused:
        upscale_video(clip, out, proc)
    assert str(refused.value) == f"cannot write {out}: the frames function {said}: one frame out for each in is wanted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def same(frames):
    return frames


@pytest.mark.parametrize("src, dst, frames, options, progress, said", [
    (None, "out.mp4", same, EncodeOptions(), None, "upscale_video needs a file's path, got None"),
    ("in.mp4", None, same, EncodeOptions(), None, "upscale_video needs a file's path, got None"),
    ("in.mp4", 5, same, EncodeOptions(), None, "upscale_video needs a file's path, got 5"),
    ("in.mp4", "out.mp4", None, EncodeOptions(), None,
     "upscale_video's frames must be a function of the decoded frames, got None"),
    ("in.mp4", "out.mp4", same, "fast", None, "upscale_video's options must be EncodeOptions, got 'fast'"),
    ("in.mp4", "out.mp4", same, {"crf": 16}, None,
     "upscale_video's options must be EncodeOptions, got {'crf': 16}"),
    ("in.mp4", "out.mp4", same, EncodeOptions(), 5,
     "upscale_video's progress must be a function of the frames done, or None, got 5"),
    ("in.mp4", "out.mp4", lambda frames: None, EncodeOptions(), None,
     "cannot write out.mp4: the frames function gave None, not the frames: an iterable of them is wanted"),
])
def test_upscale_video_given_arguments_it_cannot_use_says_so_in_one_line(src, dst, frames, options, progress, said,
                                                                         tmp_path, monkeypatch):
    # found by a check of the library's faults: each was a bare TypeError or
    # AttributeError ("'str' object has no attribute 'codec'"), some once the input was open
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(InputError) as refused:
        upscale_video(src, dst, frames, options, progress)
    assert str(refused.value) == said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_a_video_the_user_cannot_read_is_said_to_be_unreadable_not_no_video(tmp_path):
    # It was "not a video FFmpeg can read (Permission denied)", of a good video.
    make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    (tmp_path / "v.mp4").chmod(0)
    proc = subprocess.run(as_a_user([sys.executable, "-m", "ncnn_sr", "video", "-i", str(tmp_path / "v.mp4"),
                                     "-o", str(tmp_path / "o.mkv"), "-g", "-1"]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {tmp_path / 'v.mp4'}: permission denied\n"
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]


@pytest.mark.parametrize("name", ["out.mp4/", "new/"])
def test_an_output_path_written_as_a_folder_s_is_refused_not_written_as_a_file(tmp_path, name):
    # found by a library audit: Path() dropped the separator, and "out.mp4/" was
    # written as the file out.mp4; "new/" failed on FFmpeg's "Could not determine
    # output format" for "new".
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(InputError, match="a folder's"):
        upscale_video(clip, f"{tmp_path}{os.sep}{name}", lambda frames: frames)
    assert os.listdir(tmp_path) == ["in.mp4"]


def test_a_ctrl_c_as_the_video_s_part_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    # Landing in mkstemp once it had made the file, before its name came back, it left
    # the hidden .ncnn-sr-part beside the output: its removal did not know the name.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    ctrl_c_once_made(monkeypatch, "ncnn-sr-part")
    with pytest.raises(KeyboardInterrupt):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_a_part_file_a_killed_run_left_is_removed_by_the_next_writing_that_output(tmp_path, caplog):
    # A run killed outright (SIGKILL, a crash) left its hidden part file, which no
    # later run removed: gigabytes for a long video, a new one for each run killed.
    # Only a part whose writer is gone (its lock free) is removed: not another run's
    # in progress, nor one just made (not yet locked, under part_files.NEW's name),
    # nor another version's (never locked).
    import fcntl
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8, audio=None)
    stale, other_run, older, just_made, other_output = (
        tmp_path / ".out.ncnn-sr-part-locked.a1b2c3d4.mp4", tmp_path / ".out.ncnn-sr-part-locked.e5f6g7h8.mp4",
        tmp_path / ".out.ncnn-sr-part.a1b2c3d4.mp4", tmp_path / ".out.ncnn-sr-part-new.i9j0k1l2.mp4",
        tmp_path / ".out.ncnn-sr-part-locked.m3n4o5p6.mkv")
    for path in (stale, other_run, older, other_output):
        path.write_bytes(b"\0" * 1000)
    just_made.write_bytes(b"")
    held = os.open(other_run, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
            upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    finally:
        os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (clip, tmp_path / "out.mp4", other_run, older, just_made, other_output))
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'out.mp4'}: removed {stale.name} (1000 bytes), left by a run killed while writing it"]
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].frames == 2


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
@pytest.mark.parametrize("size, said", [(1, "1 byte"), (999_500, "976 kB"), (3 << 20, "3.0 MB")])
def test_a_stale_part_files_size_is_said_as_other_sizes_are(tmp_path, caplog, size, said):
    # An audit's: a part file of one byte was said removed "(1 bytes)", and the
    # videos' sizes in MB of 10**6 bytes where the rest are of 2**20 (budget.size_words).
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8, audio=None)
    stale = tmp_path / ".out.ncnn-sr-part-locked.a1b2c3d4.mp4"
    stale.write_bytes(b"\0" * size)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'out.mp4'}: removed {stale.name} ({said}), left by a run killed while writing it"]


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_an_empty_part_file_a_run_killed_as_it_made_it_left_is_removed_by_the_next(tmp_path, caplog):
    # Killed between making its part (under part_files.NEW's name) and locking it, a
    # run left an empty file that no later run removed, as a live run's is there
    # unlocked for that instant too: one older than part_files.NEW_AGE is a killed
    # run's, and removed by the next run writing that output; one just made is not.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8, audio=None)
    killed, just_made = tmp_path / ".out.ncnn-sr-part-new.a1b2c3d4.mp4", tmp_path / ".out.ncnn-sr-part-new.e5f6g7h8.mp4"
    killed.write_bytes(b"")
    just_made.write_bytes(b"")
    os.utime(killed, (time.time() - 3600,) * 2)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.mp4", "out.mp4", just_made.name])
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'out.mp4'}: removed {killed.name} (0 bytes), left by a run killed while writing it"]


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_an_empty_part_file_a_run_killed_before_its_first_write_left_is_removed_by_the_next(tmp_path, caplog):
    # FFmpeg writes nothing into the part until its first flush (after the first
    # frames are upscaled and coded: minutes for a long 4K video on a CPU): a SIGKILL
    # before then left an empty part, which no later run removed, as an empty part
    # may be one just made, not yet locked by its writer. A part is now locked before
    # it takes a name of a part (part_files), so one empty and free is a killed run's.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8, audio=None)
    out = tmp_path / "out.mp4"
    child = ("import sys\nfrom ncnn_sr.video import upscale_video\n"
             "def frames(decoded):\n    print('upscaling', flush=True)\n    sys.stdin.read()\n    yield from decoded\n"
             "upscale_video(sys.argv[1], sys.argv[2], frames)\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(clip), str(out)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "upscaling\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate("")
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert [p.stat().st_size for p in left] == [0], left
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        upscale_video(clip, out, lambda frames: frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: removed {left[0].name} (0 bytes), left by a run killed while writing it"]


def test_a_name_ffmpeg_reads_as_a_numbered_sequence_of_pictures_is_a_file_not_found(tmp_path):
    # found by QA: -i 'f_%04d.png' beside f_0001.png... was opened by FFmpeg as the
    # pictures' sequence, then refused as "a still picture (png), not a video, of a kind
    # ncnn-sr upscale does not read either: convert it (to PNG or TIFF, say)".
    for i in range(1, 4):
        Image.fromarray(picture(8, 8, seed=i)).save(tmp_path / f"f_{i:04d}.png")
    with pytest.raises(InputError) as caught:
        upscale_video(tmp_path / "f_%04d.png", tmp_path / "o.mp4", lambda frames: frames)
    assert str(caught.value) == (f"{tmp_path}/f_%04d.png: file not found: upscale_video takes a video, not "
                                 f"numbered pictures: a Pipeline running plan_jobs({str(tmp_path)!r}, out_folder).jobs "
                                 "upscales them, for ffmpeg to join into a video")
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("name,hint", [
    ("f%d.png", ": upscale_video takes a video, not numbered pictures: a Pipeline running plan_jobs('.', "
                "out_folder).jobs upscales them, for ffmpeg to join into a video"),
    ("my frames/f%02d.png", ": upscale_video takes a video, not numbered pictures: a Pipeline running "
                            "plan_jobs('my frames', out_folder).jobs upscales them, for ffmpeg to join into a video"),
    ("100%.mp4", ""), ("a%s.mp4", ""), ("%dx.mkv/a.mp4", "")])
def test_a_missing_numbered_sequence_of_pictures_is_told_how_to_upscale_it(name, hint, tmp_path, monkeypatch):
    # upscale_video('frames/f%02d.png', ...): "file not found" alone, where the name
    # says what was meant, a folder of frames, which plan_jobs takes (the library's
    # caller was told of ncnn-sr -i, a command). A name without a printf number (%d,
    # %02d) in it is not told so.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        upscale_video(name, tmp_path / "o.mp4", lambda frames: frames)
    assert str(caught.value) == f"{name}: file not found{hint}"


@pytest.mark.parametrize("command", [NCNN_SR, DROPIN], ids=["ncnn-sr", "dropin"])
def test_a_missing_numbered_sequence_of_pictures_is_told_the_command_to_video_commands(command, tmp_path,
                                                                                         monkeypatch):
    # The commands' words, not upscale_video's caller's: ncnn-sr video and the drop-in
    # (an .mp4 output is its video) name the pictures' command.
    monkeypatch.chdir(tmp_path)
    proc = run(*([NCNN_SR, "video"] if command == NCNN_SR else [DROPIN]), "-i", "my frames/f%02d.mp4",
               "-o", "o.mp4", "-s", "2", "-g", "-1", check_ok=False)
    said = ("my frames/f%02d.mp4: file not found: ncnn-sr video takes a video, not numbered pictures: "
            "ncnn-sr -i 'my frames' -o OUT_FOLDER upscales them, for ffmpeg to join into a video")
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: {said}\n" if command == NCNN_SR
                           else f"realesrgan-ncnn-vulkan: error: {said.replace(': file', ' failed: file', 1)}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command,output", [(NCNN_SR, "out.mp4"), (DROPIN, "out.png"), (DROPIN, "out.mp4")],
                         ids=["ncnn-sr", "dropin-png", "dropin-mp4"])
def test_a_missing_numbered_sequence_of_pictures_is_told_how_to_upscale_it_as_pictures(command, output, tmp_path):
    # ncnn-sr -i 'frames/f%02d.png' -o out.mp4 (the pictures' way, not ncnn-sr video's)
    # and the drop-in said "file not found" alone: the same hint as ncnn-sr video's,
    # each command naming its own folder form.
    (tmp_path / "my frames").mkdir()
    Image.fromarray(picture(8, 8)).save(tmp_path / "my frames" / "f01.png")
    src = tmp_path / "my frames" / "f%02d.png"
    proc = run(command, "-i", src, "-o", tmp_path / output, "-s", "2", "-g", "-1", check_ok=False)
    name = os.path.basename(command)
    said = (f"file not found: -i takes a file or a folder, not numbered pictures: {name} -i "
            f"{shell_word(str(tmp_path / 'my frames'))} -o OUT_FOLDER upscales them, for ffmpeg to join into a video")
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: {src}: {said}\n" if command == NCNN_SR
                           else f"realesrgan-ncnn-vulkan: error: {src} failed: {said}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my frames"]


def test_a_file_name_with_a_line_break_is_escaped_in_upscale_videos_errors(tmp_path):
    # read_image's and the model errors' were escaped; a video's kept the raw line break.
    with pytest.raises(InputError) as caught:
        upscale_video(tmp_path / "a\nb.mp4", tmp_path / "o.mp4", lambda frames: frames)
    assert str(caught.value) == f"{tmp_path}/a\\nb.mp4: file not found"
    make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8)
    with pytest.raises(InputError) as caught:
        upscale_video(tmp_path / "in.mp4", tmp_path / "no\nfolder" / "o.mp4", lambda frames: frames)
    assert "no\\nfolder" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "no\nfolder").exists()


def test_a_gif_cut_right_after_a_frames_control_extension_is_said_to_be_truncated(tmp_path, caplog):
    # found by QA: a GIF cut at the end of its third frame's graphic control extension,
    # before that frame's image, was made a video of 2 frames without a word: FFmpeg's
    # reader ends there as at a whole file's end (one cut inside a frame was said to be)
    frames = [Image.new("RGB", (16, 12), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    whole = (tmp_path / "a.gif").read_bytes()
    third = [m.start() for m in re.finditer(b"\x21\xf9\x04", whole)][2]
    (tmp_path / "cut.gif").write_bytes(whole[:third + 8])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        assert upscale_video(tmp_path / "cut.gif", tmp_path / "out.mp4", lambda frames: frames) == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'cut.gif'} is cut short (GIF: cut short after frame 2): it may be truncated"]


def test_a_frame_the_encoder_refuses_for_its_size_frees_its_error_once_dropped(tmp_path):
    # The refusal was kept in a local of the encoding's frame, in its own traceback: a
    # cycle that held that frame's locals (the frame upscaled, the frames function's
    # generator and what it decoded) until a full collection.
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    wide = np.zeros((2, 16400, 3), np.uint8)  # past x264's 16384 a side

    def frames_fn(frames):
        for _ in frames:
            yield wide

    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(InputError, match="libx264 encodes frames of at most") as raised:
            upscale_video(clip, tmp_path / "out.mkv", frames_fn)
        error = weakref.ref(raised.value)
        del raised
        assert error() is None
    finally:
        gc.enable()


def test_a_piped_videos_error_met_ahead_frees_itself_once_dropped():
    # _Ahead kept the error it raised, and its raising frame (in the error's traceback)
    # kept _Ahead: a cycle holding the frames the error went through, the decoding's,
    # until a full collection.
    from ncnn_sr.video_packets import _Ahead

    ahead = _Ahead(None)
    ahead.error = av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(av.error.InvalidDataError) as raised:
            list(ahead.packets())
        error = weakref.ref(raised.value)
        del raised
        assert error() is None
        assert ahead.error is None
    finally:
        gc.enable()


@pytest.mark.parametrize("env", LOCALES)
def test_a_video_named_in_latin1_is_written_and_said_by_its_bytes(env, tmp_path):
    # "wrote out\udce9.mp4" and "bad\udce9.mp4: not a video": Python's escapes.
    clip = make_clip(tmp_path / f"{LATIN1}.mp4", frames=2, width=16, height=16, audio=None)
    out = tmp_path / os.fsdecode(b"out\xe9.mp4")
    said = run_in_locale(env, "video", "-i", clip, "-o", out, *X2).stderr.decode("ascii")
    assert f"ncnn-sr: wrote {tmp_path}/out\\xe9.mp4: 2 frames in " in said, said
    assert sorted(os.listdir(os.fsencode(tmp_path))) == [b"caf\xe9.mp4", b"out\xe9.mp4"]
    bad = tmp_path / os.fsdecode(b"bad\xe9.mp4")
    bad.write_bytes(b"not a video" * 100)
    proc = run_in_locale(env, "video", "-i", bad, "-o", tmp_path / "o.mp4", *X2)
    assert proc.returncode != 0 and not (tmp_path / "o.mp4").exists()
    assert proc.stderr.decode("ascii").startswith(f"ncnn-sr: error: {tmp_path}/bad\\xe9.mp4: not a video")
