"""Interlaced video is made whole before it is upscaled: the frames flagged interlaced
by default, every frame or none on request; frame times, sound and the picture's
turn kept. Clips made with PyAV; the real model on the CPU for the command."""
from fractions import Fraction

import av
import numpy as np
import pytest

from media import film_frame, fields, make_clip, make_telecined_clip
from ncnn_sr.deinterlace import Deinterlacer
from ncnn_sr.errors import InputError
from ncnn_sr.video import EncodeOptions, upscale_video
from test_video import DROPIN, NCNN_SR, X2, audio_stream, frame_times, run, stored_frames


def combing(image: np.ndarray) -> float:
    """How far each line is from the mean of its neighbours, on average (grey levels):
    high where alternate lines show different moments."""
    grey = image.astype(np.float64).mean(axis=2)
    return float(np.abs(grey[1:-1] - (grey[:-2] + grey[2:]) / 2).mean())


def seen(clip, out, mode="auto", field_rate=False):
    frames = []

    def recorded(images):
        for image in images:
            frames.append(image)
            yield image

    upscale_video(clip, out, recorded, EncodeOptions(deinterlace=mode, field_rate=field_rate))
    return frames


def test_frames_flagged_interlaced_are_made_whole_and_keep_their_times_and_sound(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=8, width=64, height=48, rate=Fraction(25), interlaced=True)
    with av.open(str(clip)) as c:
        assert all(f.interlaced_frame for f in c.decode(video=0))
    before = [combing(a) for a in stored_frames(clip)]
    after = [combing(a) for a in seen(clip, tmp_path / "out.mp4")]
    assert len(after) == 8
    assert min(before) > 20 and max(after) < 2, (before, after)
    assert frame_times(tmp_path / "out.mp4")[0] == frame_times(clip)[0]
    assert audio_stream(tmp_path / "out.mp4") == audio_stream(clip)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert not any(f.interlaced_frame for f in c.decode(video=0))


def test_off_leaves_interlaced_frames_as_they_are(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=3, width=64, height=48, audio=None, interlaced=True)
    assert all(np.array_equal(a, b) for a, b in zip(seen(clip, tmp_path / "out.mkv", "off"), stored_frames(clip)))


def test_progressive_frames_are_left_as_they_are(tmp_path):
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=None)
    frames = seen(clip, tmp_path / "out.mkv")
    assert len(frames) == 3 and all(np.array_equal(a, b) for a, b in zip(frames, stored_frames(clip)))


def unflagged_fields(path, frames=4, width=64, height=48):
    """Frames shot as fields but coded (and flagged) progressive, as some captures are."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(fields(height, width, i), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
    return path


def test_on_deinterlaces_frames_the_video_does_not_flag(tmp_path):
    clip = unflagged_fields(tmp_path / "in.mkv")
    assert max(combing(a) for a in seen(clip, tmp_path / "auto.mkv")) > 20
    assert max(combing(a) for a in seen(clip, tmp_path / "on.mkv", "on")) < 2


def test_an_interlaced_video_turned_by_its_display_matrix_is_still_shown_upright(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=3, width=64, height=48, audio=None, rotation=-90,
                     interlaced=True)
    frames = seen(clip, tmp_path / "out.mp4")
    assert [a.shape for a in frames] == [(64, 48, 3)] * 3


def test_frames_of_a_new_size_midway_go_through_a_filter_of_their_own():
    fields_of = Deinterlacer("on")
    sizes = [(32, 24)] * 3 + [(48, 32)] * 2
    out = []
    for i, (width, height) in enumerate(sizes):
        frame = av.VideoFrame.from_ndarray(fields(height, width, i), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = 10 * i, Fraction(1, 250)
        out += fields_of.push(frame)
    out += fields_of.finish()
    assert [(f.width, f.height) for f in out] == sizes
    assert [f.pts for f in out] == [0, 10, 20, 30, 40] and {f.time_base for f in out} == {Fraction(1, 250)}


def test_a_deinterlace_mode_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="deinterlace"):
        EncodeOptions(deinterlace="yes")
    with pytest.raises(ValueError, match="field"):
        EncodeOptions(deinterlace="off", field_rate=True)


def test_a_frame_per_field_doubles_the_rate_and_keeps_the_duration_and_sound(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=6, width=64, height=48, rate=Fraction(25), interlaced=True)
    frames = seen(clip, tmp_path / "out.mp4", field_rate=True)
    assert len(frames) == 12 and max(combing(a) for a in frames) < 5
    times, _ = frame_times(tmp_path / "out.mp4")
    start = frame_times(clip)[0][0]
    assert times == pytest.approx([start + i / 50 for i in range(12)], abs=1e-3)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].average_rate == 50
    assert audio_stream(tmp_path / "out.mp4") == audio_stream(clip)
    # The bar moves on between a frame's two fields: the second frame of each pair
    # shows it half a step on, not the first again.
    assert not np.array_equal(frames[0], frames[1])


def test_a_frame_per_field_leaves_a_progressive_video_at_its_rate_and_says_so(tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mkv", frames=3, audio=None)
    frames = seen(clip, tmp_path / "out.mkv", field_rate=True)
    assert len(frames) == 3 and frame_times(tmp_path / "out.mkv")[0] == frame_times(clip)[0]
    assert "does not say it is interlaced: field_rate keeps its 24 fps (deinterlace='on' makes" in caplog.text


def test_on_with_a_frame_per_field_doubles_frames_the_video_does_not_flag(tmp_path):
    clip = unflagged_fields(tmp_path / "in.mkv", frames=3)
    assert len(seen(clip, tmp_path / "out.mkv", "on", field_rate=True)) == 6


def test_fields_out_of_the_filter_are_stamped_with_their_own_times():
    fields_of = Deinterlacer("on", fields=True)
    out = []
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(fields(24, 32, i), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base, frame.duration = 10 * i, Fraction(1, 250), 10
        out += fields_of.push(frame)
    out += fields_of.finish()
    assert [float(f.pts * f.time_base) for f in out] == [0, 0.02, 0.04, 0.06, 0.08, 0.1]
    assert all(float(f.duration * f.time_base) == 0.02 for f in out)


def test_the_drop_in_names_the_command_that_keeps_the_fields(tmp_path):
    # -v said "--deinterlace off keeps the fields", a flag the drop-in has not.
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=32, height=24, audio=None, interlaced=True)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / "out.mp4", "-v", *X2)
    assert "is interlaced: deinterlacing it (bwdif, 'ncnn-sr video --deinterlace off' keeps the fields)" \
        in proc.stderr, proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "own.mp4", "-v", *X2)
    assert "is interlaced: deinterlacing it (bwdif, --deinterlace off keeps the fields)" in proc.stderr


def test_the_command_says_it_deinterlaces_and_takes_off(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, width=32, height=24, audio=None, interlaced=True)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out.mp4", "-v", *X2)
    assert "is interlaced: deinterlacing it" in proc.stderr
    assert frame_times(tmp_path / "out.mp4") == (frame_times(clip)[0], (64, 48))
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "off.mp4", "-v", "--deinterlace", "off", *X2)
    assert "interlaced" not in proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "bad.mp4", "--deinterlace", "maybe", *X2,
               check_ok=False)
    assert proc.returncode == 2 and "'maybe' is not one of" in proc.stderr
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "fields.mp4", "-v", "--field-rate", *X2)
    assert "a frame per field" in proc.stderr and "wrote" in proc.stderr and ": 4 frames" in proc.stderr
    for mode in ("off", "film"):
        proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "bad.mp4", "--field-rate", "--deinterlace", mode,
                   *X2, check_ok=False)
        assert proc.returncode == 2 and f"it cannot go with --deinterlace {mode}" in proc.stderr
    clip = make_telecined_clip(tmp_path / "film.mp4", film_frames=4, width=32, height=24, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "film_x2.mp4", "-v", "--deinterlace", "film", *X2)
    assert "undoing 3:2 pulldown" in proc.stderr and ": 4 frames" in proc.stderr


def test_film_puts_telecined_frames_back_together_at_the_film_rate(tmp_path):
    clip = make_telecined_clip(tmp_path / "in.mp4", film_frames=12)
    frames = seen(clip, tmp_path / "out.mp4", "film")
    film = [film_frame(64, 96, k).astype(np.float64) for k in range(12)]
    # Each frame out is the film frame of its place, to coding noise (the nearest
    # other one is tens of grey levels away), with no comb of two frames' fields.
    errors = [np.abs(a - film[k]).mean() for k, a in enumerate(frames)]
    assert len(frames) == 12 and max(errors) < 2, errors
    times, _ = frame_times(tmp_path / "out.mp4")
    assert times == pytest.approx([k * 1001 / 24000 for k in range(12)], abs=1e-3)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.video[0].average_rate == Fraction(24000, 1001)
    assert audio_stream(tmp_path / "out.mp4") == audio_stream(clip)


def test_film_says_a_video_at_another_rate_cannot_be_telecined_film(tmp_path, caplog):
    clip = make_clip(tmp_path / "in.mkv", frames=5, rate=Fraction(25), audio=None)
    assert len(seen(clip, tmp_path / "out.mkv", "film")) == 4
    assert "is 25 fps, not 29.97" in caplog.text


def test_film_and_a_frame_per_field_do_not_go_together():
    with pytest.raises(ValueError, match="field"):
        EncodeOptions(deinterlace="film", field_rate=True)


def sound_behind(path) -> float:
    """How far, at worst, the sound is behind the picture in the file's order (seconds):
    a player reads the file in order and needs both."""
    worst, last = 0.0, {}
    with av.open(str(path)) as c:
        for packet in c.demux():
            if packet.size and packet.dts is not None:
                last[packet.stream.type] = float(packet.dts * packet.time_base)
                if len(last) == 2:
                    worst = max(worst, last["video"] - last["audio"])
    return worst


def test_film_keeps_its_sound_beside_its_picture_in_the_file(tmp_path):
    # 75 s: a fifth fewer frames out than in left the sound 15 s behind by the end,
    # past the 10 s over which the muxer puts packets back in order.
    clip = make_telecined_clip(tmp_path / "apart.mkv", film_frames=4 * 450, width=32, height=32)
    with av.open(str(clip)) as inp, av.open(str(tmp_path / "in.mkv"), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in sorted((p for p in inp.demux() if p.dts is not None), key=lambda p: p.dts * p.time_base):
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    upscale_video(tmp_path / "in.mkv", tmp_path / "out.mkv", lambda frames: frames, EncodeOptions(deinterlace="film"))
    assert sound_behind(tmp_path / "out.mkv") < 1


def test_film_from_a_start_between_frames_starts_at_0_in_step_with_its_sound(tmp_path):
    # 0.5 s is 0.5 ms before the 16th video frame: at a constant rate that frame went
    # to the second slot, and every frame after it a frame late.
    clip = make_telecined_clip(tmp_path / "in.mp4", film_frames=40)
    upscale_video(clip, tmp_path / "out.mp4", lambda frames: frames,
                  EncodeOptions(deinterlace="film", start=Fraction(1, 2), duration=Fraction(1, 2)))
    times, _ = frame_times(tmp_path / "out.mp4")
    assert times == pytest.approx([k * 1001 / 24000 for k in range(12)], abs=1e-3)


@pytest.mark.parametrize("mode", ["on", "film"])
def test_frames_too_small_to_deinterlace_are_said_to_be_so_not_undecodable(mode, tmp_path):
    # bwdif takes frames of 3x4 pixels and up: "cannot decode: Invalid argument" was
    # all a 16x2 video said, which upscales as it is with --deinterlace off.
    clip = unflagged_fields(tmp_path / "in.mkv", width=16, height=2)
    with pytest.raises(InputError, match=r"in.mkv: its 16x2 frames are too small to deinterlace \(bwdif takes "
                                         r"5x7 and up in yuv420p\): deinterlace='off' upscales them as they are"):
        seen(clip, tmp_path / "out.mkv", mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]
    assert len(seen(clip, tmp_path / "out.mkv", "off")) == 4


@pytest.mark.parametrize("width, height", [(16, 4), (4, 16)])
def test_frames_whose_colour_planes_are_too_small_to_deinterlace_are_said_to_be_so(width, height, tmp_path):
    # bwdif takes 3x4 and up in each plane: a 4:2:0 frame of 16x4 has 8x2 colour
    # planes, and said "cannot decode: Invalid argument".
    clip = make_clip(tmp_path / "in.mkv", frames=3, width=width, height=height, audio=None, interlaced=True)
    with pytest.raises(InputError, match=rf"in.mkv: its {width}x{height} frames are too small to deinterlace "
                                         r"\(bwdif takes 5x7 and up in yuv420p\)"):
        seen(clip, tmp_path / "out.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]
    assert len(seen(clip, tmp_path / "out.mkv", "off")) == 3
    assert len(seen(make_clip(tmp_path / "in.mkv", frames=3, width=6, height=8, audio=None, interlaced=True),
                    tmp_path / "out.mkv")) == 3


def test_the_drop_in_names_the_command_that_upscales_frames_too_small_to_deinterlace(tmp_path):
    # It said "--deinterlace off upscales them as they are", a flag the drop-in has not.
    clip = make_clip(tmp_path / "in.mkv", frames=3, width=2, height=16, audio=None, interlaced=True)
    proc = run(DROPIN, "-i", clip, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.rstrip().endswith("(bwdif takes 5x7 and up in yuv420p): 'ncnn-sr video --deinterlace off' "
                                         "upscales them as they are"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_a_frame_per_field_from_a_start_between_a_frames_fields_keeps_its_second_field(tmp_path):
    from fractions import Fraction as F

    clip = make_clip(tmp_path / "in.mp4", frames=24, width=64, height=48, rate=F(25), audio=None, interlaced=True)
    frames = []

    def recorded(images):
        for image in images:
            frames.append(image)
            yield image

    # Frame 12 is shot at 0.48 s and 0.50 s: from 0.49 s its second field is in, then
    # frames 13 and 14 give two each, up to 0.59 s.
    upscale_video(clip, tmp_path / "out.mp4", recorded,
                  EncodeOptions(field_rate=True, start=F(49, 100), duration=F(1, 10)))
    assert len(frames) == 5
