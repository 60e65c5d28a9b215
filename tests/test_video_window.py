"""A part of a video (--start, --duration): the frames, sound, cues, chapters and
timecode of that part, moved to start at 0; the times users type; the errors. Clips
made with PyAV; the real model on the CPU for the command."""
import re
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest

from media import add_subtitles, make_clip
from ncnn_sr import InputError
from ncnn_sr.video import EncodeOptions, upscale_video
from ncnn_sr.video_options import parse_time
from ncnn_sr.video_window import Window
from test_video import NCNN_SR, X2, frame_times, one_line_failure, remux_with, run, stored_frames


@pytest.mark.parametrize("text,seconds", [("90", 90), ("2.5", Fraction(5, 2)), ("1:30", 90), ("01:02:03.5", 3723.5),
                                          ("0:00:00.040", Fraction(1, 25)), (" 7 ", 7), ("75:00", 4500)])
def test_times_are_read_as_ffmpeg_reads_them(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-1", "1:2:3:4", "1:60.5", "1:75:00", "inf", "nan", "1/0", "1e999"])
def test_what_is_not_a_time_is_refused(text):
    with pytest.raises(ValueError, match="not a time|before the start|longer than any video"):
        parse_time(text)


def seen(clip, out, **options):
    frames = []

    def recorded(images):
        for image in images:
            frames.append(image)
            yield image

    upscale_video(clip, out, recorded, EncodeOptions(**options))
    return frames


def sound_span(path):
    """When the sound's first packet starts and its last ends, in seconds."""
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(audio=0) if p.pts is not None]
    return float(packets[0].pts * packets[0].time_base), float((packets[-1].pts + packets[-1].duration)
                                                               * packets[-1].time_base)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_part_has_the_frames_of_its_time_and_starts_at_0_with_its_sound(suffix, tmp_path):
    # Keyframes every 10 frames: the part starts between two, where a seek cannot land.
    clip = make_clip(tmp_path / f"in{suffix}", frames=72, rate=Fraction(24), gop=10)
    out = tmp_path / f"out{suffix}"
    frames = seen(clip, out, start=Fraction(1), duration=Fraction(1))
    stored = stored_frames(clip)
    assert len(frames) == 24 and all(np.array_equal(a, b) for a, b in zip(frames, stored[24:48]))
    times, _ = frame_times(out)
    assert times == pytest.approx([i / 24 for i in range(24)], abs=2e-3)
    begins, ends = sound_span(out)
    assert -0.001 <= begins < 0.025 and 0.97 < ends < 1.03  # whole AAC packets, 21 ms each


def test_a_part_to_the_end_and_one_from_the_start(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=12, audio=None)
    assert len(seen(clip, tmp_path / "tail.mkv", start=Fraction(1, 4))) == 6
    assert len(seen(clip, tmp_path / "head.mkv", duration=Fraction(1, 4))) == 6
    assert frame_times(tmp_path / "tail.mkv")[0][0] == 0


@pytest.mark.parametrize("seek", ["works", "fails"])
def test_a_part_of_an_mpeg_ts_counts_from_its_start_and_is_found_though_its_seeks_land_late(seek, tmp_path,
                                                                                             monkeypatch):
    clip = make_clip(tmp_path / "in.ts", frames=120, rate=Fraction(24), audio=None, gop=12)
    with av.open(str(clip)) as c:
        assert c.start_time > 0  # its timeline starts at 83 ms
    if seek == "fails":
        def refused(*args, **kwargs):
            raise av.error.FFmpegError(1, "seek refused")
        monkeypatch.setattr(av.container.InputContainer, "seek", refused)
    frames = seen(clip, tmp_path / "out.mp4", start=Fraction(4), duration=Fraction(1, 4))
    assert len(frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(frames, stored_frames(clip)[96:102]))


def test_a_part_of_an_mpeg_ts_whose_only_keyframe_is_its_first_is_found(tmp_path):
    # found by QA: a seek into an MPEG-TS lands on any packet near its aim, here one
    # between keyframes, taken for a place to decode from: nothing decoded from it up
    # to the end, and --start 3 of a 4 s clip was "no video frame from 3 s on".
    clip = make_clip(tmp_path / "in.ts", frames=96, rate=Fraction(24), audio=None)  # x264's keyframe every 250
    frames = seen(clip, tmp_path / "out.mp4", start=Fraction(3), duration=Fraction(1, 4))
    assert len(frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(frames, stored_frames(clip)[72:78]))


def clocked_ts(src, dst, seconds: int):
    """``src`` remuxed into an MPEG-TS whose clock reads ``seconds`` at its start, as
    a broadcast recording's or a stream's later segment does."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        packets = sorted((p for p in inp.demux() if p.size), key=lambda p: p.dts * p.time_base)
        for packet in packets:
            packet.pts, packet.dts = (t + round(seconds / packet.time_base) for t in (packet.pts, packet.dts))
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


@pytest.mark.parametrize("suffix, part", [(".mp4", {}), (".mkv", {}), (".mp4", {"duration": Fraction(10)})])
def test_a_transport_stream_whose_clock_starts_late_starts_at_0(suffix, part, tmp_path):
    # found by QA: a .ts whose clock read 1000 s at its start made a 1 s clip into an
    # mp4 of 1001 s, its first 1000 s an empty edit (nothing shown), and an .mkv that
    # said it lasted 1001 s; ffmpeg starts its output at 0. Sound keeps its lead: a
    # part lost its first packet, the file's start rounded to the microsecond past it.
    clip = clocked_ts(make_clip(tmp_path / "in.mp4", frames=24), tmp_path / "in.ts", 1000)
    out = tmp_path / f"out{suffix}"
    upscale_video(clip, out, lambda frames: frames, EncodeOptions(**part))
    with av.open(str(out)) as c:
        assert c.duration / av.time_base < 1.1
        starts = {s.type: float(s.start_time * s.time_base) for s in c.streams}
        assert len(list(c.decode(video=0))) == 24
    assert starts["audio"] == pytest.approx(0, abs=0.002)
    assert starts["video"] == pytest.approx(0.021, abs=0.002)  # AAC's priming came first


def test_a_cue_shown_across_the_start_is_kept_from_0_and_later_ones_move(tmp_path):
    clip = add_subtitles(make_clip(tmp_path / "plain.mp4", frames=48, audio=None), tmp_path / "in.mkv",
                         [("00:00:00,500", "00:00:01,500", "across"), ("00:00:01,700", "00:00:01,800", "in"),
                          ("00:00:00,100", "00:00:00,200", "before")])
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(start=Fraction(1)))
    with av.open(str(tmp_path / "out.mkv")) as c:
        cues = [(round(float(p.pts * p.time_base), 3), round(float(p.duration * p.time_base), 3), bytes(p))
                for p in c.demux(subtitles=0) if p.size]
    assert [(start, length) for start, length, _ in cues] == [(0, 0.5), (0.7, 0.1)]
    assert b"across" in cues[0][2] and b"in" in cues[1][2]


def test_a_cue_that_began_well_before_the_start_is_still_shown_from_0(tmp_path):
    # Keyframes every second: a seek to 2 s before the start lands past the cue's beginning.
    clip = add_subtitles(make_clip(tmp_path / "plain.mkv", frames=24 * 10, gop=24), tmp_path / "in.mkv",
                         [("00:00:00,500", "00:00:04,000", "long"), ("00:00:09,000", "00:00:09,500", "later")])
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames,
                  EncodeOptions(start=Fraction(3), duration=Fraction(3)))
    with av.open(str(tmp_path / "out.mkv")) as c:
        cues = [(round(float(p.pts * p.time_base), 3), round(float(p.duration * p.time_base), 3), bytes(p))
                for p in c.demux(subtitles=0) if p.size]
    assert [(start, length) for start, length, _ in cues] == [(0, 1)] and b"long" in cues[0][2]


def test_chapters_are_cut_to_the_part_and_moved_with_it(tmp_path):
    clip = remux_with(make_clip(tmp_path / "plain.mkv", frames=48, audio=None), tmp_path / "in.mkv",
                      chapters=[(0, 500, "one"), (500, 1500, "two"), (1500, 2000, "three")])
    upscale_video(clip, tmp_path / "out.mkv", lambda frames: frames,
                  EncodeOptions(start=Fraction(1), duration=Fraction(1, 4)))
    with av.open(str(tmp_path / "out.mkv")) as c:
        chapters = [(float(ch["start"] * ch["time_base"]), float(ch["end"] * ch["time_base"]),
                     ch["metadata"].get("title")) for ch in c.chapters()]
    assert chapters == [(0, 0.25, "two")]


def test_chapters_outside_the_window_are_dropped_and_the_rest_cut():
    base = Fraction(1, 1000)
    chapters = [{"id": i, "start": a, "end": b, "time_base": base, "metadata": {}}
                for i, (a, b) in enumerate([(0, 1000), (1000, 3000), (3000, 4000)])]
    kept = Window(Fraction(2), Fraction(3)).chapters(chapters)
    assert [(c["id"], c["start"], c["end"]) for c in kept] == [(1, 0, 1000)]
    assert [(c["start"], c["end"]) for c in Window(Fraction(1, 2)).chapters(chapters)] == \
        [(0, 500), (500, 2500), (2500, 3500)]


def packet(pts, duration, kind="audio", time_base=Fraction(1, 1000)):
    return SimpleNamespace(pts=pts, dts=pts, duration=duration, time_base=time_base, stream=SimpleNamespace(type=kind))


def test_sound_packets_are_kept_when_they_start_in_the_window_and_cues_while_shown():
    window = Window(Fraction(1), Fraction(2))
    assert window.moved(packet(990, 21)) is None  # begins before: its sound would start early
    assert window.moved(packet(1000, 21)).pts == 0
    assert window.moved(packet(2000, 21)) is None
    cue = window.moved(packet(500, 1000, "subtitle"))
    assert (cue.pts, cue.dts, cue.duration) == (0, 0, 500)
    assert window.moved(packet(400, 100, "subtitle")) is None


def test_a_cue_shown_across_the_end_is_cut_at_the_end():
    window = Window(Fraction(1), Fraction(2))
    cue = window.moved(packet(1500, 1000, "subtitle"))
    assert (cue.pts, cue.duration) == (500, 500)
    cue = window.moved(packet(500, 2000, "subtitle"))  # across both ends
    assert (cue.pts, cue.duration) == (0, 1000)
    assert window.moved(packet(1500, 0, "subtitle")).duration == 0  # a cue that states no length


def test_a_part_of_an_mp4_with_cues_lasts_as_long_as_asked(tmp_path):
    # An mp4's text track fills the time between cues with empty ones: the one after
    # "in" runs to 2.5 s, past the part's end, and the file's length counted it.
    clip = add_subtitles(make_clip(tmp_path / "plain.mp4", frames=72, audio=None), tmp_path / "cues.mkv",
                         [("00:00:01,100", "00:00:01,200", "in"), ("00:00:02,500", "00:00:02,600", "after")])
    remuxed = tmp_path / "in.mp4"
    upscale_video(clip, remuxed, lambda frames: frames, EncodeOptions())  # the cues become mov_text
    upscale_video(remuxed, tmp_path / "out.mp4", lambda frames: frames,
                  EncodeOptions(start=Fraction(1), duration=Fraction(1)))
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.duration / 1e6 == pytest.approx(1, abs=0.05)


def test_a_timecode_moves_on_by_the_start(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=48, audio=None, timecode="01:02:03:04")
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames, EncodeOptions(start=Fraction(1, 2)))
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].metadata["timecode"] == "01:02:03:16"  # 12 frames on at 24 fps


def test_a_part_of_one_or_two_frames_encodes_with_x265(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=24, audio=None)
    for frames in (1, 2):
        out = tmp_path / f"x265-{frames}.mkv"
        upscale_video(clip, out, lambda f: f, EncodeOptions(codec="libx265", start=Fraction(1, 2),
                                                            duration=Fraction(frames, 24)))
        assert len(frame_times(out)[0]) == frames


@pytest.mark.parametrize("bad", [dict(start=-1), dict(duration=0), dict(start=float("nan")), dict(duration="2 s"),
                                 dict(start=Fraction(10 ** 999)), dict(duration=True)])
def test_a_part_the_library_cannot_take_is_refused(bad):
    with pytest.raises(ValueError):
        EncodeOptions(**bad)


def test_the_command_upscales_a_part_and_says_what_is_wrong_in_one_line(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=24)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "part.mp4", "--start", "0:00.25", "--duration", "0.5",
               *X2)
    assert ": 12 frames" in proc.stderr
    assert frame_times(tmp_path / "part.mp4") == ([pytest.approx(i / 24, abs=2e-3) for i in range(12)], (64, 48))
    for flags, message in [(["--start", "5"], f"{clip}: starting at 5 s (--start) is past its end, at 1.000 s"),
                           (["--start", "0.99"], f"{clip}: no video frame from 0.99 s (--start) on")]:
        proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", *flags, *X2, check_ok=False)
        one_line_failure(proc, tmp_path, message)
    for flags in (["--start", "soon"], ["--duration", "0"], ["--duration", "-3"], ["--start", "1", "--end", "0:01"]):
        proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "bad.mp4", *flags, *X2, check_ok=False)
        assert proc.returncode == 2 and f"Invalid value for '{flags[-2]}'" in proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "bad.mp4", "--end", "1", "--duration", "1", *X2,
               check_ok=False)
    assert proc.returncode == 2 and "--end and --duration both say where the part ends" in proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "end.mp4", "--start", "0.5", "--end", "0:00.75", *X2)
    assert ": 6 frames" in proc.stderr


def test_progress_counts_the_frames_of_the_part_at_the_rate_made():
    from ncnn_sr.video import VideoInfo, frames_out
    info = VideoInfo(64, 48, Fraction(25), 250, 10.0, 1, 0, field_order=2)  # 10 s of interlaced 25 fps
    assert frames_out(info, EncodeOptions()) == 250
    assert frames_out(info, EncodeOptions(start=Fraction(8))) == 50
    assert frames_out(info, EncodeOptions(start=Fraction(2), duration=Fraction(1))) == 25
    assert frames_out(info, EncodeOptions(start=Fraction(2), duration=Fraction(1), field_rate=True)) == 50
    assert frames_out(info, EncodeOptions(deinterlace="film")) == 200
    assert frames_out(info, EncodeOptions(fps=Fraction(10))) == 100  # the frames no slot shows are not upscaled
    assert frames_out(info, EncodeOptions(fps=Fraction(10), start=Fraction(8))) == 20
    assert frames_out(info, EncodeOptions(fps=Fraction(60), field_rate=True)) == 500
    assert frames_out(VideoInfo(64, 48, None, None, None, 0, 0), EncodeOptions()) is None


def test_progress_counts_the_frames_of_the_video_not_of_a_sound_that_runs_on(tmp_path):
    # `cat clip.mkv | ncnn-sr video -i - ...` counted the frames of a Matroska clip with
    # no frame count by its container's length, which its longer sound makes: 39 for a
    # clip of 30 (1.25 s at 24 fps, the sound to 1.6 s). Its video track's own length
    # (the DURATION tag FFmpeg writes for each track) counts them, from a pipe too.
    import os
    import threading

    from ncnn_sr.streams import VideoInput
    from ncnn_sr.video import frames_out, probe

    clip = make_clip(tmp_path / "clip.mkv", frames=30, sound_spans=[(0, 1.6)])
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: open(fifo, "wb").write(clip.read_bytes()))
    writer.start()
    src = VideoInput(fifo)
    try:
        piped = probe(src)
    finally:
        src.close()
        writer.join(10)
    assert not src.seekable()
    for info in (piped, probe(clip)):
        assert info.duration == pytest.approx(1.6, abs=0.05)  # the container's, as long as its sound
        assert frames_out(info, EncodeOptions()) == 30
        assert frames_out(info, EncodeOptions(start=Fraction(1, 2))) == 18
        assert frames_out(info, EncodeOptions(fps=Fraction(12))) == 15


@pytest.mark.parametrize("suffix, ends", [(".mkv", 1.25), (".mp4", 1.25), (".avi", 1.25),
                                          # from the file's first time, the sound's 62 ms in
                                          (".ts", 1.271), (".nut", 1.271)])
def test_a_start_past_the_picture_but_not_its_longer_sound_is_refused_before_the_model_loads(suffix, ends, tmp_path):
    # The early check read the container's length, the sound's (1.6 s): --start 1.5 of
    # a 30-frame clip (1.25 s at 24 fps) passed it and was refused once the model had
    # loaded ("no video frame from 1.5 s (--start) on"). An unknown model, which only
    # loading finds, shows which comes first.
    clip = make_clip(tmp_path / f"in{suffix}", frames=30, sound_spans=[(0, 1.6)])
    said = f"{clip}: starting at 1.5 s (--start) is past the end of its video, at {ends:.3f} s (the file goes on to "
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", "--start", "1.5", "-n", "no-such-model",
               "-s", "2", "-g", "-1", check_ok=False)
    one_line_failure(proc, tmp_path, said)
    # the library's own check, before any frame, naming EncodeOptions' field
    with pytest.raises(InputError, match=re.escape(said.replace("(--start)", "(start)"))):
        seen(clip, tmp_path / "out.mkv", start=Fraction(3, 2))
    assert len(seen(clip, tmp_path / "out.mkv", start=Fraction(1))) == 6  # a start inside the picture still is one


@pytest.mark.parametrize("suffix", [".ts", ".nut"])
def test_progress_counts_the_frames_of_a_transport_stream_or_nut_not_of_its_longer_sound(suffix, tmp_path):
    # Their frame totals came from the container's length, the sound's: "x/39 frames"
    # for a 30-frame clip (1.25 s at 24 fps) whose sound ran to 1.6 s. An MPEG-TS file's
    # streams are each measured to their last packets (FFmpeg's); a NUT file's video
    # is, from its last seconds.
    from ncnn_sr.video import frames_out, probe

    info = probe(make_clip(tmp_path / f"clip{suffix}", frames=30, sound_spans=[(0, 1.6)]))
    assert info.duration == pytest.approx(1.6, abs=0.05)  # the container's, as long as its sound
    assert info.frames == frames_out(info, EncodeOptions()) == 30
    assert frames_out(info, EncodeOptions(start=Fraction(1, 2))) in (18, 19)  # 0.77 s: 18.5 frames' time
    assert frames_out(info, EncodeOptions(fps=Fraction(12))) == 15


def test_a_frame_bar_whose_total_was_too_many_ends_at_the_frames_done(monkeypatch):
    # Where the total is a guess that overshoots, the bar ended at "30/31 frames",
    # which reads as a frame lost.
    import io
    import sys

    from ncnn_sr import console

    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(console, "bar_fits", lambda stream: True)
    bar = console.FrameProgress("ncnn-sr", 31, quiet=False)
    bar.bar.mininterval = 0  # each frame redraws it
    for done in range(1, 31):
        bar(done)
    bar.finish()
    drawn = [part for part in stderr.getvalue().split("\r") if "frame" in part]
    assert "30/30" in drawn[-1] and "30/31" not in drawn[-1], drawn[-3:]
    assert bar.bar is None  # closed


def test_a_part_near_the_start_of_a_long_video_stops_reading_soon_after_it(tmp_path, monkeypatch):
    # A subtitle track whose last cue comes early never goes past the part's end:
    # the file was read to its end to see that.
    from ncnn_sr import video_packets, video_timeline

    clip = add_subtitles(make_clip(tmp_path / "long.mp4", frames=24 * 60, width=32, height=24, audio=None, gop=24),
                         tmp_path / "long.mkv", [("00:00:00,500", "00:00:01,000", "early")])
    passes = []  # the packets of each read: the rate is judged in a read of its own (video_timeline._variable_rate)
    demuxed = video_packets._demuxed

    def counted(*args, **kwargs):
        passes.append([])
        return (passes[-1].append(p) or p for p in demuxed(*args, **kwargs))

    for module in (video_packets, video_timeline):  # each that reads the input's packets
        monkeypatch.setattr(module, "_demuxed", counted)
    assert upscale_video(clip, tmp_path / "out.mkv", lambda f: f,
                         EncodeOptions(start=Fraction(1), duration=Fraction(2))) == 48
    assert passes and all(len(read) < 24 * 15 for read in passes)  # the part's end, 3 s, and INTERLEAVED_WITHIN, 10 s


def test_a_constant_rate_keeps_a_last_frame_on_screen_at_its_slot_however_short_its_stated_duration(tmp_path):
    # Variable frame times, each stated to last 1/24 s: the part's last frame, at
    # 0.8 s of it, is the one on screen at 0.8 s, and was dropped for its 41 ms; it
    # stays there to the part's end (the next frame is past it), 1 s, as ffmpeg's -t
    # keeps every slot before it.
    ms = [0, 40, 50, 200, 210, 220, 400, 700, 710, 1000, 1500, 1510]
    clip = make_clip(tmp_path / "in.mkv", frames=len(ms), frame_ms=ms, audio=None,
                     colours=[(20 * i, 0, 0) for i in range(len(ms))])
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames,
                  EncodeOptions(start=Fraction(1, 5), duration=Fraction(1), fps=Fraction(10)))
    with av.open(str(tmp_path / "out.mp4")) as c:
        shown = [round(int(f.to_ndarray(format="rgb24")[0, 0, 0]) / 20) for f in c.decode(video=0)]
    assert shown == [5, 5, 6, 6, 6, 8, 8, 8, 9, 9]


def test_a_late_part_keeps_its_sound_beside_its_picture_in_the_file(tmp_path):
    # The frames decoded before the part (from a keyframe a minute back, for the
    # cues) held its sound back in the file by as long, past what the muxer reorders.
    from test_deinterlace import sound_behind

    clip = add_subtitles(make_clip(tmp_path / "plain.mkv", frames=24 * 92, width=16, height=16, gop=24),
                         tmp_path / "apart.mkv", [("00:01:10,000", "00:01:12,000", "late")])
    with av.open(str(clip)) as inp, av.open(str(tmp_path / "in.mkv"), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in sorted((p for p in inp.demux() if p.dts is not None), key=lambda p: p.dts * p.time_base):
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    upscale_video(tmp_path / "in.mkv", tmp_path / "out.mkv", lambda frames: frames,
                  EncodeOptions(start=Fraction(75), duration=Fraction(15)))
    assert sound_behind(tmp_path / "out.mkv") < 1


def test_seconds_given_as_floats_are_the_decimals_written(tmp_path):
    # 0.2 as a float is a hair over 1/5: the frame at 0.2 s was left out of a part
    # from 0.2, and the one at 0.4 s put in a part of 0.2 s from there.
    options = EncodeOptions(start=0.2, duration=0.2)
    assert (options.start, options.duration) == (Fraction(1, 5), Fraction(1, 5))
    clip = make_clip(tmp_path / "in.mkv", frames=20, rate=Fraction(25), audio=None,
                     colours=[(10 * i, 0, 0) for i in range(20)])
    frames = seen(clip, tmp_path / "out.mkv", start=0.2, duration=0.2)
    assert [round(int(a[0, 0, 0]) / 10) for a in frames] == [5, 6, 7, 8, 9]


def test_a_part_takes_the_frames_whose_millisecond_stamps_round_its_times(tmp_path):
    # An mkv stores 13/24 s as 542 ms and 14/24 s as 583 ms, just under 0.58333.
    clip = make_clip(tmp_path / "in.mkv", frames=24, rate=Fraction(24), audio=None)
    frames = seen(clip, tmp_path / "out.mkv", start=Fraction(13, 24), duration=Fraction(1, 24))
    assert len(frames) == 1 and np.array_equal(frames[0], stored_frames(clip)[13])


def test_a_tiny_mpeg_program_stream_is_counted_and_cut_by_where_its_packets_end(tmp_path):
    # FFmpeg's duration of an MPEG-PS comes from the last time a pack states: 4 small
    # frames in one pack of 2048 bytes, at 25 fps, read as 0.04 s. Its count (the
    # progress total) was 1 frame, and --start 0.1 was refused as past its end.
    from ncnn_sr import video
    clip = tmp_path / "in.mpg"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("mpeg2video", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * i, np.uint8), "rgb24")):
                out.mux(packet)
        out.mux(stream.encode())
    with av.open(str(clip)) as c:
        assert c.duration == 40000  # FFmpeg's own, as this test knows it
    info = video.probe(clip)
    assert (info.frames, info.duration) == (4, pytest.approx(0.16))
    assert upscale_video(clip, tmp_path / "part.mpg", lambda frames: frames,
                         EncodeOptions(codec="mpeg2video", start=Fraction(1, 10))) == 1  # the frame at 0.12 s


@pytest.mark.parametrize("value", [True, np.bool_(False)])
def test_a_flag_of_the_encode_options_takes_true_and_false_numpys_too(value):
    assert EncodeOptions(field_rate=value).field_rate == value


@pytest.mark.parametrize("value", ["no", 1, None, np.int64(0)])
def test_a_flag_of_the_encode_options_refuses_what_is_not_true_or_false(value):
    # video_options checks numpy's bool without loading numpy, which the commands' start does without.
    with pytest.raises(ValueError, match=r"skip_damaged must be True or False, not "):
        EncodeOptions(skip_damaged=value)
