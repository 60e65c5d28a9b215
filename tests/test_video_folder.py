"""A folder of videos, one command: each keeps its name and, where the encoder can be
written there, its container (else .mkv); sub-folders with -r; a broken one is one
line and the rest go on; --skip-existing; the mistakes refused before any model
loads. Real model on the CPU, tiny clips."""
import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from media import make_clip
from ncnn_sr.errors import InputError
from test_batch_cli import READ_ONLY, in_small_disk, run_read_only
from test_video import NCNN_SR, X2, frame_times, run


def videos(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    make_clip(folder / "a.mp4", frames=2)
    make_clip(folder / "b.webm", frames=2, audio=None)
    make_clip(folder / "sub" / "c.mkv", frames=2)
    make_clip(folder / "d.mov", frames=2, audio=None)
    (folder / "broken.mp4").write_text("not a video")
    (folder / "notes.txt").write_text("not a video either")
    make_clip(folder / ".hidden.mp4", frames=2, audio=None)
    return folder


def done_before(path: Path) -> bytes:
    """A finished video at ``path``, as an earlier run left it, whose bytes it returns:
    --skip-existing writes one that is empty, cut short or no video again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_clip(path, frames=1, width=8, height=8, audio=None).read_bytes()


def names(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def make_vob(path, width: int, height: int) -> None:
    """Two frames of MPEG-2 in a .vob (which holds MPEG-2, and not H.264)."""
    make_in(path, "vob", "mpeg2video", width, height, frames=2)


def make_in(path, container: str, codec: str, width: int = 16, height: int = 16, frames: int = 3) -> Path:
    """A video of ``frames`` black frames in FFmpeg's ``container`` whatever the name
    of ``path`` (none, say), coded by ``codec``."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return Path(path)


def test_each_video_of_a_folder_is_upscaled_into_the_output_folder_and_a_broken_one_is_one_line(tmp_path):
    src = videos(tmp_path / "in")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "-r", *X2, check_ok=False)
    assert proc.returncode == 1
    assert names(tmp_path / "out") == ["a.mp4", "b.webm", "d.mov", "sub/c.mkv"]
    assert frame_times(tmp_path / "out" / "sub" / "c.mkv")[1] == (64, 48)
    lines = proc.stderr.splitlines()
    assert f"ncnn-sr: error: {src / 'broken.mp4'}: not a video FFmpeg can read" in proc.stderr
    assert lines[-1].startswith("ncnn-sr: 5 videos: 4 upscaled, 0 skipped, 1 failed in ")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "-r", "--skip-existing", *X2, check_ok=False)
    assert proc.stderr.splitlines()[-1].startswith("ncnn-sr: 5 videos: 0 upscaled, 4 skipped, 1 failed in ")


def test_a_video_folders_last_lines_name_the_videos_that_failed(tmp_path):
    # As a folder of pictures names them: each error line scrolls away in a long run.
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_clip(src / "a.mp4", frames=1, width=8, height=8, audio=None)
    (src / "b.mp4").write_text("not a video")
    (src / "sub" / "c d.mkv").write_bytes(b"")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "-r", *X2, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-2] == "ncnn-sr: failed: b.mp4, 'sub/c d.mkv'", lines
    assert lines[-1].startswith("ncnn-sr: 3 videos: 1 upscaled, 0 skipped, 2 failed in "), lines


@pytest.mark.parametrize("command", [["video"], []])
def test_skip_existing_leaves_a_single_videos_output_as_a_single_pictures(command, tmp_path):
    # A script resuming video by video (for f in *.mkv; do ncnn-sr video -i "$f" ...
    # --skip-existing) upscaled every one again, over its output, without a word.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    done = done_before(tmp_path / "out.mp4")
    proc = run(NCNN_SR, *command, "-i", clip, "-o", tmp_path / "out.mp4", "--skip-existing", *X2)
    assert proc.stderr == f"ncnn-sr: {tmp_path / 'out.mp4'} exists: skipped (--skip-existing)\n"
    assert (tmp_path / "out.mp4").read_bytes() == done


def test_skip_existing_writes_again_a_video_output_empty_cut_short_or_unreadable(tmp_path):
    # Each output that was there was skipped, whatever it held: one emptied, copied in
    # part, or whose writer (another tool, a disk that filled) stopped before the end
    # stayed so, and the run said all were done.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mkv", "c.mp4", "d.webm", "e.mkv"):
        make_clip(src / name, frames=2, width=16, height=12, audio=None)
    out = tmp_path / "out"
    run(NCNN_SR, "video", "-i", src, "-o", out, *X2)
    whole = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "a.mp4").write_bytes(b"")
    (out / "b.mkv").write_bytes(whole["b.mkv"][:-20])  # its last frame cut off
    (out / "c.mp4").write_bytes(whole["c.mp4"][:len(whole["c.mp4"]) // 2])  # no moov box: FFmpeg cannot open it
    (out / "d.webm").write_bytes(whole["d.webm"][:-1])
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, "--skip-existing", *X2)
    said = [line for line in proc.stderr.splitlines() if "written again" in line]
    assert said == [f"ncnn-sr: warning: {out / 'a.mp4'} is empty: written again (--skip-existing)",
                    f"ncnn-sr: warning: {out / 'b.mkv'} is cut short (its end is missing): written again "
                    "(--skip-existing)",
                    f"ncnn-sr: warning: {out / 'c.mp4'} is cut short (its end is missing): written again "
                    "(--skip-existing)",
                    f"ncnn-sr: warning: {out / 'd.webm'} is cut short (its end is missing): written again "
                    "(--skip-existing)"], proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("ncnn-sr: 5 videos: 4 upscaled, 1 skipped, 0 failed in ")
    assert (out / "e.mkv").read_bytes() == whole["e.mkv"]
    for name in whole:
        assert frame_times(out / name)[1] == (32, 24), name
    # A file FFmpeg cannot open, and a single video's output, alike.
    (out / "e.mkv").write_bytes(b"not a video")
    proc = run(NCNN_SR, "video", "-i", src / "e.mkv", "-o", out / "e.mkv", "--skip-existing", *X2)
    assert proc.stderr.startswith(f"ncnn-sr: warning: {out / 'e.mkv'} cannot be opened as a video ("), proc.stderr
    assert frame_times(out / "e.mkv")[1] == (32, 24)


def test_verbose_says_each_video_skipped_as_a_single_video_skipped_says_it(tmp_path):
    # -v is "a line per file": a folder's skipped videos had none, a folder of pictures' have.
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mkv"):
        make_clip(src / name, frames=2, audio=None)
    run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2)
    (tmp_path / "out" / "b.mkv").unlink()
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "--skip-existing", "-v", *X2)
    assert f"ncnn-sr: {tmp_path / 'out' / 'a.mp4'} exists: skipped (--skip-existing)" in proc.stderr.splitlines()
    assert "b.mkv exists" not in proc.stderr
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "--skip-existing", *X2)
    assert "exists: skipped" not in proc.stderr


def test_a_folder_of_videos_all_skipped_loads_no_model_and_still_refuses_an_unknown_one(tmp_path, in_process, loads):
    # An unknown model was no error where every video was skipped: a typo in a script
    # went unseen until it had work to do.
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=2, audio=None)
    (tmp_path / "out").mkdir()
    done = done_before(tmp_path / "out" / "a.mp4")
    args = ["video", "-i", tmp_path / "in", "-o", tmp_path / "out", "--skip-existing", *X2]
    status, said = in_process(*args)
    assert status == 0 and loads == [], said
    assert said.splitlines()[-1].startswith("ncnn-sr: 1 video: 0 upscaled, 1 skipped, 0 failed in ")
    status, said = in_process(*args, "-n", "nosuch")
    assert status == 1 and said.startswith("ncnn-sr: error: unknown model 'nosuch': ") and said.count("\n") == 1
    assert (tmp_path / "out" / "a.mp4").read_bytes() == done and loads == []


@pytest.mark.parametrize("command", [["video"], []])
def test_a_single_video_skipped_still_refuses_an_unknown_model(command, tmp_path, in_process):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    done_before(tmp_path / "out.mp4")
    status, said = in_process(*command, "-i", clip, "-o", tmp_path / "out.mp4", "--skip-existing", *X2, "-n", "nosuch")
    assert status == 1 and said.startswith("ncnn-sr: error: unknown model 'nosuch': ") and said.count("\n") == 1


def test_without_r_the_sub_folders_are_left_and_a_container_that_cannot_hold_h264_becomes_mkv(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    (src / "sub").mkdir()
    make_clip(src / "sub" / "b.mp4", frames=2, audio=None)
    make_vob(src / "dvd.vob", 32, 24)
    run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2)
    assert names(tmp_path / "out") == ["a.mp4", "dvd.mkv"]


def test_a_single_video_into_a_folder_is_named_as_a_folders_video(tmp_path):
    # A .vob (which holds no H.264) becomes .mkv there, as in a folder of videos.
    make_vob(tmp_path / "dvd.vob", 32, 24)
    run(NCNN_SR, "video", "-i", tmp_path / "dvd.vob", "-o", f"{tmp_path / 'out'}{os.sep}", *X2)
    assert names(tmp_path / "out") == ["dvd.mkv"]
    assert frame_times(tmp_path / "out" / "dvd.mkv")[1] == (64, 48)


def test_a_single_video_without_an_extension_into_a_folder_is_named_as_a_folders_video(tmp_path):
    # It was refused as out/clip having "no extension to say its video container",
    # where the same clip in a folder of videos becomes clip.mkv.
    make_in(tmp_path / "clip", "mp4", "libx264")
    run(NCNN_SR, "video", "-i", tmp_path / "clip", "-o", f"{tmp_path / 'out'}{os.sep}", *X2)
    assert names(tmp_path / "out") == ["clip.mkv"]
    assert frame_times(tmp_path / "out" / "clip.mkv")[1] == (32, 32)


def test_a_single_video_whose_suffix_is_no_extension_into_a_folder_is_named_as_a_folders_video(tmp_path):
    # It was refused as "unsupported video container '.1080p' for out/Show.S01E01.1080p",
    # where in a folder of videos the same clip becomes Show.S01E01.mkv.
    make_in(tmp_path / "Show.S01E01.1080p", "mp4", "libx264")
    run(NCNN_SR, "video", "-i", tmp_path / "Show.S01E01.1080p", "-o", f"{tmp_path / 'out'}{os.sep}", *X2)
    assert names(tmp_path / "out") == ["Show.S01E01.mkv"]
    assert frame_times(tmp_path / "out" / "Show.S01E01.mkv")[1] == (32, 32)

def test_skip_existing_leaves_a_single_videos_output_in_a_folder(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    (tmp_path / "out").mkdir()
    done = done_before(tmp_path / "out" / "in.mp4")
    proc = run(NCNN_SR, "-i", clip, "-o", tmp_path / "out", "--skip-existing", *X2)
    assert proc.stderr == f"ncnn-sr: {tmp_path / 'out' / 'in.mp4'} exists: skipped (--skip-existing)\n"
    assert (tmp_path / "out" / "in.mp4").read_bytes() == done


def test_a_single_video_into_its_own_folder_is_refused_as_its_own_output(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    before = clip.read_bytes()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: output {tmp_path / 'in.mp4'} is the input: it would be overwritten; "
                           "choose another output\n")
    assert clip.read_bytes() == before


@pytest.mark.parametrize("codec, moved", [("huffyuv", ".avi"), ("qtrle", ".mov")])
def test_a_video_whose_container_and_mkv_cannot_hold_the_codec_goes_into_one_that_can(codec, moved, tmp_path):
    # Each such video failed, once the model had loaded, as "a.mp4: .mkv cannot hold
    # huffyuv video: write .avi, ...", advice a folder run had no way to take.
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    make_clip(src / "b.mov", frames=2, audio=None)
    run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2, "--codec", codec)
    kept = "b.mov" if codec == "qtrle" else "b" + moved  # huffyuv: .mov cannot hold it either
    assert names(tmp_path / "out") == sorted(["a" + moved, kept])
    for name in names(tmp_path / "out"):
        with av.open(str(tmp_path / "out" / name)) as c:
            assert c.streams.video[0].codec_context.name == codec and len(list(c.decode(video=0))) == 2


def test_a_codec_no_container_can_take_for_a_folders_video_is_refused_before_any_model_loads(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2, "--codec", "smc", "-v", check_ok=False)
    assert proc.returncode == 1 and "model" not in proc.stderr.lower()
    assert proc.stderr.strip() == f"ncnn-sr: error: {src / 'a.mp4'}: .mp4 cannot hold smc video: choose another --codec"
    assert not (tmp_path / "out").exists()


def test_plan_videos_refuses_a_codec_no_container_can_take_as_a_setting_named_as_given(tmp_path):
    # Said in an f-string, the refusal lost its pieces: the library's caller read the
    # command's --codec, and a plain InputError for the setting given.
    from ncnn_sr.errors import SettingError, command_words
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.mp4").write_bytes(b"")  # planned by its name: never read
    with pytest.raises(SettingError) as e:
        plan_videos(src, tmp_path / "out", EncodeOptions(codec="smc"))
    assert str(e.value) == f"{src / 'a.mp4'}: codec='smc': .mp4 cannot hold smc video: choose another codec"
    assert command_words(e.value) == f"{src / 'a.mp4'}: .mp4 cannot hold smc video: choose another --codec"


def test_an_output_folder_inside_the_input_is_not_walked(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    run(NCNN_SR, "video", "-i", src, "-o", src / "big", "-r", *X2)
    proc = run(NCNN_SR, "video", "-i", src, "-o", src / "big", "-r", *X2)
    assert names(src / "big") == ["a.mp4"] and "1 video: 1 upscaled" in proc.stderr


def test_a_folder_of_no_videos_names_recursive_to_plan_videos_caller(tmp_path):
    # plan_videos' caller was told of -r, the command's flag.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.mp4").write_bytes(b"")  # named as a video, as recursive=True takes it
    with pytest.raises(InputError) as caught:
        plan_videos(tmp_path / "in", tmp_path / "out", EncodeOptions())
    assert str(caught.value) == f"{tmp_path / 'in'}: no videos in it (recursive=True looks in its sub-folders too)"


@pytest.mark.parametrize("inside", [[], ["sub/.a.mp4"], ["sub/notes.txt", "sub/deeper/x.png"], [".hidden/a.mp4"]])
def test_a_folder_whose_sub_folders_hold_no_video_names_no_recursive(tmp_path, inside):
    # An audit's: -r was named where the sub-folders held nothing it would take
    # (a hidden video, or none), and a run with it found nothing either.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in inside:
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"x")
    with pytest.raises(InputError) as caught:
        plan_videos(tmp_path / "in", tmp_path / "out", EncodeOptions())
    assert str(caught.value).startswith(f"{tmp_path / 'in'}: no videos in it")
    assert "recursive=True" not in str(caught.value)


def test_folder_mistakes_are_one_line_errors_before_anything_runs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "notes.txt").write_text("x")
    # The file that is there is named before the error, as pictures among no videos are.
    left = f"ncnn-sr: warning: 1 file in {src} left out: not a video by its name (notes.txt)\n"
    for out, said in [(tmp_path / "out", f"{left}ncnn-sr: error: {src}: no videos in it\n"),
                      (src, f"ncnn-sr: error: {src} is the input folder: the videos would be written over; "
                            "choose another\n")]:
        proc = run(NCNN_SR, "video", "-i", src, "-o", out, *X2, check_ok=False)
        assert proc.returncode == 1 and proc.stderr == said
    # -r is named where it could help, as for pictures: it was named of a folder without sub-folders too.
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "sub" / "deeper" / "b.mkv").write_bytes(b"")  # two levels down
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2, check_ok=False)
    assert proc.stderr == f"{left}ncnn-sr: error: {src}: no videos in it (-r looks in its sub-folders too)\n"
    shutil.rmtree(src / "sub")
    make_clip(src / "a.mp4", frames=2, audio=None)
    (tmp_path / "file.mp4").write_text("")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "file.mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and "is a file: give an output folder for its videos" in proc.stderr
    assert not (tmp_path / "out").exists() and sorted(os.listdir(src)) == ["a.mp4", "notes.txt"]


def test_a_model_that_cannot_load_ends_the_run_in_one_line(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", "-n", "no-such-model", "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "no-such-model" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_picture_folder_run_names_the_video_command_for_the_videos_it_leaves(tmp_path):
    from PIL import Image

    from conftest import picture

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(picture(12, 16)).save(src / "a.png")
    make_clip(src / "clip.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "-i", src, "-o", tmp_path / "out", *X2)
    assert f"1 video in {src} left out: a folder run upscales pictures; ncnn-sr video -i {src} -o OUT_FOLDER " \
           "upscales its videos" in proc.stderr


def test_a_video_folder_run_names_the_picture_command_for_the_pictures_it_leaves(tmp_path):
    # As a folder of pictures names 'ncnn-sr video' for its videos: a GIF or a PNG among
    # the clips was left out without a word, and a folder of GIFs was "no videos in it".
    from PIL import Image

    from conftest import picture

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(picture(12, 16)).save(src / "a.png")
    Image.fromarray(picture(12, 16)).save(src / "b.gif")
    Image.fromarray(picture(12, 16)).save(src / ".hidden.png")
    note = f"2 pictures in {src} left out: a video folder run upscales videos; ncnn-sr -i {src} -o OUT_FOLDER " \
           "upscales its pictures"
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"ncnn-sr: warning: {note}", f"ncnn-sr: error: {src}: no videos in it"]
    make_clip(src / "clip.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2)
    assert f"ncnn-sr: warning: {note}" in proc.stderr.splitlines() and names(tmp_path / "out") == ["clip.mp4"]


def test_progress_past_its_estimated_total_raises_the_total_and_gives_no_negative_eta(monkeypatch, capsys):
    from ncnn_sr import console

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    bar = console.FrameProgress("ncnn-sr", 2, quiet=False)
    for done in (1, 2, 3):
        bar(done)
    assert bar.total == 3 and "ETA -" not in capsys.readouterr().err


def test_a_folder_runs_progress_lines_name_the_video_and_its_place_in_the_folder(tmp_path, in_process, monkeypatch):
    # A season's log said "ncnn-sr: 8000/34000 frames, ..." for hours, of no video named
    # and with no word of how many were left.
    import re

    from ncnn_sr import console

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_clip(src / "a b.mp4", frames=2, audio=None)
    make_clip(src / "sub" / "c.mkv", frames=2, audio=None)
    status, said = in_process("video", "-i", src, "-o", tmp_path / "out", "-r", *X2)
    assert status == 0
    frames = [line for line in said.splitlines() if " frames, " in line]
    assert {re.sub(r": \d+/2 frames, .*", "", line) for line in frames} == \
        {"ncnn-sr: video 1/2 (a b.mp4)", "ncnn-sr: video 2/2 (sub/c.mkv)"}, said


@pytest.mark.parametrize("gpu", ["-1", "auto"])  # auto too, where it finds the CPU (no hardware Vulkan device)
def test_each_video_of_a_folder_gets_the_cpu_workers_its_own_frames_would(gpu, tmp_path, monkeypatch, capsys):
    # The first video's size chose them for the whole folder: a 640x480 clip after a
    # 32x24 one ran on two workers over blended tiles, 22 % slower than alone (25.0 s
    # against 20.4 s for 6 frames, 2 cores) and not the frames it gets alone. Here 48 MB
    # lets one worker run 96x64 whole, not two, and two run 16x16 whole.
    from ncnn_sr import batch_cli, budget, console, devices
    from ncnn_sr.video_options import EncodeOptions

    if gpu == "auto" and devices.get_device("auto").is_gpu:
        pytest.skip("auto finds a GPU here")
    monkeypatch.setattr(budget, "available_memory", lambda: 48 << 20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, width=16, height=16, audio=None)
    make_clip(src / "b.mp4", frames=2, width=96, height=64, audio=None)
    make_clip(src / "c.mp4", frames=2, width=16, height=16, audio=None)
    opts = batch_cli.RunOptions(input=src, output=tmp_path / "out", model="realesr-animevideov3-x2", model_path=None,
                                gpu=gpu, tile="0", jobs="1:2:2", tta=False, fmt=None, verbose=True)
    console.setup_logging("ncnn-sr", verbose=True)
    assert batch_cli.run_video("ncnn-sr", opts, EncodeOptions()) == 0
    said = capsys.readouterr().err
    assert said.count("one proc worker on CPU with all its cores: 96x64 pictures fit one window for one, not for 2") \
        == 1, said
    assert said.count("loading realesr-animevideov3-x2 on CPU") == 4, said  # a's, b's (twice), c's
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4", "b.mp4", "c.mp4"]


def test_ctrl_c_in_a_folder_run_stops_at_once_and_leaves_no_partial_video(tmp_path):
    import signal
    import subprocess
    import time

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    make_clip(src / "b.mp4", frames=48, width=96, height=72, audio=None)
    make_clip(src / "c.mp4", frames=2, audio=None)
    (src / "0.mp4").write_text("not a video")  # named as failed above the last line, as above a summary
    out = tmp_path / "out"
    proc = subprocess.Popen([NCNN_SR, "video", "-i", str(src), "-o", str(out), "-n", "realesrgan-x4plus-anime",
                             "-g", "-1", "-j", "1:1:1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and any(p.name.startswith(".b") for p in out.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # well into b.mp4, whose 48 frames take 20 s or more
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()  # a failed assertion above left it running, parentless
    # Within a second on a quiet machine; the margin is for a loaded one (1.5 s failed
    # at a load of 9 on two cores).
    assert time.monotonic() - sent < 5 and proc.returncode == 130, err
    # What is left to do counted, as a folder of pictures counts it.
    # How to go on said: the same command again upscaled a.mp4 again.
    assert err.splitlines()[-2:] == ["ncnn-sr: failed: 0.mp4", "ncnn-sr: interrupted: 1 video upscaled, 0 skipped, "
                                     "1 failed, 2 not done; no partial files were left; the same command with "
                                     "--skip-existing goes on from there"], err
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4"]


def test_ctrl_c_in_a_folder_run_takes_back_the_folders_made_for_the_video_it_stopped(tmp_path):
    import signal
    import subprocess
    import time

    src = tmp_path / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    make_clip(src / "a.mp4", frames=2, audio=None)
    make_clip(src / "sub" / "deeper" / "b.mp4", frames=48, width=96, height=72, audio=None)
    out = tmp_path / "out"
    proc = subprocess.Popen([NCNN_SR, "video", "-i", str(src), "-o", str(out), "-r", "-n", "realesrgan-x4plus-anime",
                             "-g", "-1", "-j", "1:1:1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".b") for p in out.rglob("*")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    # out/sub/deeper was made for b.mp4 alone, as a single video's folder is, and goes with it.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.mp4"]


def the_mkv_and_a_vob_of_its_name(src: Path) -> tuple[str, str]:
    # c.vob (which holds no H.264) became c.mkv, the very output of c.mkv beside it.
    make_clip(src / "c.mkv", frames=2, audio=None)  # 32x24
    make_vob(src / "c.vob", 48, 32)
    return "c.mkv", "c.vob"


def two_names_differing_in_case(src: Path) -> tuple[str, str]:
    # a.MP4 and a.mp4 both went to OUT/a.mp4.
    make_clip(src / "a.MP4", frames=2, audio=None)
    make_clip(src / "a.mp4", frames=2, audio=None, width=48, height=32)
    return "a.MP4", "a.mp4"


@pytest.mark.parametrize("make,outputs", [(the_mkv_and_a_vob_of_its_name, ("c.mkv", "c.vob.mkv")),
                                          (two_names_differing_in_case, ("a.mp4", "a.mp4.mp4"))],
                         ids=["vob-made-mkv", "case"])
def test_two_videos_that_would_write_one_output_get_outputs_of_their_own(tmp_path, make, outputs):
    # Both were written there, the later over the earlier, without a word.
    src = tmp_path / "in"
    src.mkdir()
    first, second = make(src)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2)
    assert names(tmp_path / "out") == list(outputs)
    assert frame_times(tmp_path / "out" / outputs[0])[1] == (64, 48)
    assert frame_times(tmp_path / "out" / outputs[1])[1] == (96, 64)
    assert f"{src / second} would output {outputs[0]}, as {src / first} does: it will output {outputs[1]}" \
        in proc.stderr


def test_a_folder_into_an_output_named_like_a_video_is_refused_unless_it_ends_in_a_separator(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1 and f"{src} is a folder but {tmp_path / 'out.mp4'} is named like a video" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()  # a folder of that name was made without a word
    run(NCNN_SR, "video", "-i", src, "-o", f"{tmp_path / 'out.mp4'}{os.sep}", *X2)
    assert names(tmp_path / "out.mp4") == ["a.mp4"]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "a-file"])
def test_a_folder_into_a_video_name_is_refused_alone_before_any_note_of_what_it_leaves_out(tmp_path, existing):
    # An audit's: 'ncnn-sr video -i FOLDER -o out.mp4' printed the notes of the
    # folder's other files (not videos, pictures, a clash of names) before refusing
    # the output, which the picture folder's run refuses in one line.
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    make_clip(src / "a.MP4", frames=2, audio=None)  # a second that would output a.mp4
    (src / "notes.txt").write_text("x")
    (src / "a.en.srt").write_text("x")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / "still.png")
    out = tmp_path / "out.mp4"
    if existing:
        out.write_bytes(b"x")
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, *X2, check_ok=False)
    said = f"{out} is a file" if existing else f"{out} is named like a video"
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and f"error: {src} is a folder but {said}" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == (["in", "out.mp4"] if existing else ["in"])


@pytest.mark.parametrize("existing", [False, True], ids=["new", "a-file"])
def test_a_folder_of_frames_into_a_video_says_it_holds_no_videos(tmp_path, existing):
    # The reference's recipe leaves a folder of frames: 'ncnn-sr video -i frames -o
    # out.mp4' was told to give out.mp4/ (or another folder) for its videos, and that
    # run then found none. The folder's want of videos is said first.
    from PIL import Image

    from conftest import picture

    src = tmp_path / "frames"
    src.mkdir()
    for n in range(3):
        Image.fromarray(picture(12, 16)).save(src / f"frame{n:08d}.png")
    if existing:
        (tmp_path / "out.mp4").write_bytes(b"")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out.mp4", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"ncnn-sr: warning: 3 pictures in {src} left out: a video folder run upscales videos; "
        f"ncnn-sr -i {src} -o OUT_FOLDER upscales its pictures",
        f"ncnn-sr: error: {src}: no videos in it"]
    assert sorted(os.listdir(tmp_path)) == (["frames", "out.mp4"] if existing else ["frames"])


@pytest.mark.parametrize("names, outputs", [
    (("A/x.mp4", "a/x.mp4"), ("A/x.mp4", "a/x.mp4.mp4")),
    (("cafe\u0301.mp4", "caf\u00e9.mp4"), ("cafe\u0301.mp4", "caf\u00e9.mp4.mp4")),
], ids=["sub-folders-by-case", "unicode-spellings"])
def test_videos_whose_outputs_are_one_file_on_macos_get_outputs_of_their_own(tmp_path, names, outputs):
    # With -r, A/x.mp4 and a/x.mp4 went to OUT/A/x.mp4 and OUT/a/x.mp4: one file where
    # case is not told apart, the second written over the first.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    for name in names:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        make_clip(src / name, frames=2, audio=None)
    jobs = plan_videos(src, tmp_path / "out", EncodeOptions(), recursive=True)
    assert [(s.relative_to(src).as_posix(), d.relative_to(tmp_path / "out").as_posix()) for s, d in jobs] == \
        list(zip(names, outputs))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_pipe_or_a_link_to_nowhere_named_as_a_video_in_the_folder_is_left_out_with_a_warning(tmp_path, caplog):
    # Left out without a word, where a picture folder's are named.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "a.mp4", frames=2, audio=None)
    os.mkfifo(src / "b.mp4")
    (src / "c.mkv").symlink_to(tmp_path / "moved.mkv")
    os.mkfifo(src / "notes.txt")  # no video by its name
    (src / "d.mp4").mkdir()  # a folder, as a picture folder's are, passed over
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        jobs = plan_videos(src, tmp_path / "out", EncodeOptions())
    assert jobs == [(src / "a.mp4", tmp_path / "out" / "a.mp4")]
    assert [r.getMessage() for r in caplog.records] == [
        f"{src / 'b.mp4'} is a pipe (FIFO), not a video file: left out",
        f"{src / 'c.mkv'} is a link to {tmp_path / 'moved.mkv'}, which does not exist: left out"]


def test_a_folders_video_whose_output_is_a_link_to_nowhere_says_so_as_a_single_videos(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, frames=2, audio=None)
    (out / "a.mp4").symlink_to(tmp_path / "gone" / "x.mp4")
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    # It was "cannot write out/a.mp4: No such file or directory".
    assert proc.stderr.splitlines()[0] == f"ncnn-sr: error: cannot write {out / 'a.mp4'}: it is a link to " \
                                          f"{tmp_path / 'gone' / 'x.mp4'}, which does not exist"
    assert "1 upscaled, 0 skipped, 1 failed" in proc.stderr and not (tmp_path / "gone").exists()


@pytest.mark.parametrize("linked", ["a.mkv", "b.mkv"])
def test_a_folders_video_whose_output_is_an_input_by_a_link_is_refused_before_anything_is_written(linked, tmp_path):
    # As a folder of pictures refuses it, and a single video's -o: out/a.mkv, a link to
    # in/a.mkv (or to in/b.mkv, the next to be read), was written over with a's output.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name in ("a.mkv", "b.mkv"):
        make_clip(src / name, frames=2, audio=None)
    (out / "a.mkv").symlink_to(src / linked)
    before = {name: (src / name).read_bytes() for name in ("a.mkv", "b.mkv")}
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: output {out / 'a.mkv'} is an input ({src / linked}): it would be " \
                          "overwritten; choose another output\n"
    assert {name: (src / name).read_bytes() for name in ("a.mkv", "b.mkv")} == before
    assert sorted(os.listdir(out)) == ["a.mkv"]


@pytest.mark.parametrize("folder_run", [False, True])
def test_a_video_into_a_read_only_folder_is_one_line_before_a_model_loads(folder_run, tmp_path):
    # Found only as the output was opened, once the model had loaded (pictures are
    # checked first, check_writable). An unknown model, which only loading finds, shows
    # which comes first.
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / "a.mp4", frames=2, audio=None)
    out = tmp_path / "out"
    proc = run_read_only(out, [NCNN_SR, "video", "-i", tmp_path / "in" / ("" if folder_run else "a.mp4"), "-o",
                               out / ("" if folder_run else "a.mp4"), "-n", "no-such-model", "-s", "2", "-g", "-1"])
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"ncnn-sr: error: cannot write into {out}: {READ_ONLY}"]


def test_a_video_onto_a_full_disk_is_one_line_before_a_model_loads(tmp_path):
    # A full disk makes an empty file, so a folder's check made one and found nothing
    # wrong: the model loaded and the output's first bytes were refused.
    make_clip(tmp_path / "a.mp4", frames=2, audio=None)
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = in_small_disk(disk, [NCNN_SR, "video", "-i", tmp_path / "a.mp4", "-o", disk / "out.mp4", "-n",
                               "no-such-model", "-s", "2", "-g", "-1"])
    # Filled before the command runs; what the run leaves on it listed after.
    cmd[4] = cmd[4].replace('exec "$@"', f'(cat /dev/zero > "{disk}/fill") 2>/dev/null; "$@"; status=$?; '
                                         f'ls -A "{disk}" >&2; exit $status')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"ncnn-sr: error: cannot write into {disk}: No space left on device",
                                                "fill"]


def test_a_video_that_fills_the_disk_is_one_line_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(0)
    noise = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(12)]
    make_clip(tmp_path / "a.mp4", frames=12, width=64, height=48, audio=None, colours=noise)
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = in_small_disk(disk, [NCNN_SR, "video", "-i", tmp_path / "a.mp4", "-o", disk / "out.avi", *X2, "--codec",
                               "rawvideo"])  # 128x96 rgb24 frames of 36 kB: the fourth is past 120 kB
    cmd[4] = cmd[4].replace('exec "$@"', f'"$@"; status=$?; ls -A "{disk}" >&2; exit $status')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"ncnn-sr: error: cannot write {disk / 'out.avi'}: No space left on "
                                                "device"]


def test_a_full_disk_stops_a_folder_of_videos_at_the_first_that_fills_it(tmp_path):
    # found by review: each later video was upscaled in turn only to fail alike, where
    # a folder of pictures stops at the first.
    rng = np.random.default_rng(0)
    noise = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(12)]
    (tmp_path / "in" / "sub").mkdir(parents=True)
    make_clip(tmp_path / "in" / "a.mkv", frames=2, width=16, height=16, audio=None)  # 6 kB upscaled: it fits
    for name in ("b.mkv", "c.mkv"):  # 128x96 rgb24 frames of 36 kB: the fourth is past 120 kB
        make_clip(tmp_path / "in" / "sub" / name, frames=12, width=64, height=48, audio=None, colours=noise)
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "out"
    cmd = in_small_disk(disk, [NCNN_SR, "video", "-i", tmp_path / "in", "-o", out, "-r", *X2, "--codec", "rawvideo"])
    # What the run leaves on the small disk, gone with its namespace, listed before it ends.
    cmd[4] = cmd[4].replace('exec "$@"', f'"$@"; status=$?; ls -AR "{out}" >&2; exit $status')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(f"ncnn-sr: wrote {out / 'a.mkv'}: 2 frames")
    # Neither b's part file nor the folder made for it are left.
    assert lines[1:] == [f"ncnn-sr: stopped: cannot write {out / 'sub' / 'b.mkv'}: No space left on device; "
                         "1 upscaled, "
                         "0 skipped, 1 failed, 1 not done; once it can be written, the same command with "
                         "--skip-existing goes on from there",
                         f"{out}:", "a.mkv"]


def test_recursive_follows_linked_sub_folders_as_a_picture_folder_run_does(tmp_path):
    # rglob stepped into no link: the videos below shared/deeper were left out without
    # a word, where a picture folder's walk finds them; a link to a folder above is
    # walked once, and a folder reached by a link and by its own name is walked once.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (tmp_path / "shared" / "deeper").mkdir(parents=True)
    make_clip(src / "a.mp4", frames=2, audio=None)
    make_clip(src / "sub" / "b.mp4", frames=2, audio=None)
    make_clip(tmp_path / "shared" / "deeper" / "c.mp4", frames=2, audio=None)
    (src / "shared").symlink_to(tmp_path / "shared")
    (src / "sub" / "up").symlink_to("..")
    (src / "again").symlink_to(src / "sub")
    jobs = plan_videos(src, tmp_path / "out", EncodeOptions(), recursive=True)
    assert sorted((s.relative_to(src).as_posix(), d.relative_to(tmp_path / "out").as_posix()) for s, d in jobs) == [
        ("a.mp4", "a.mp4"), ("shared/deeper/c.mp4", "shared/deeper/c.mp4"), ("sub/b.mp4", "sub/b.mp4")]


# A folder of videos run as a user runs it, its folder broken once the second video is
# written: made read-only, the output folder removed, or the input folder renamed.
_VIDEOS_BROKEN_MID_RUN = """
import os, shutil, sys
from ncnn_sr import batch_cli

action, folder, *args = sys.argv[1:]
real, done = batch_cli._one_video, []

def one_video(*given, **options):
    line = real(*given, **options)
    done.append(line)
    if len(done) == 2:
        {"chmod": lambda: os.chmod(folder, 0o555), "remove": lambda: shutil.rmtree(folder),
         "rename": lambda: os.rename(folder, folder + ".moved")}[action]()
    return line

batch_cli._one_video = one_video
sys.argv = ["ncnn-sr", "video", *args]
from ncnn_sr import entry
entry.ncnn_sr()
"""


@pytest.mark.parametrize("action", ["chmod", "remove", "rename"])
def test_a_folder_broken_during_a_run_of_videos_stops_it_in_one_line(tmp_path, action):
    # Each later video failed in a line of its own ('cannot write out/v2.mp4: Permission
    # denied', one for each of 4 after a chmod following the second of 6).
    import sys

    from conftest import run_breaking_a_folder

    if os.name == "nt":
        pytest.skip("Windows ignores a folder's read-only mode, and moves no folder with a file open in it")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for i in range(5):
        make_clip(src / f"v{i}.mp4", frames=2, audio=None)
    broken = src if action == "rename" else out
    cmd = [sys.executable, "-c", _VIDEOS_BROKEN_MID_RUN, action, str(broken), "-i", str(src), "-o", str(out), *X2]
    proc = run_breaking_a_folder(cmd, out)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "frames/s" not in line]
    cause = {"chmod": f"cannot write into {out}: Permission denied",
             "remove": f"{out} was removed during the run (what was written there is gone)",
             "rename": f"{src} was removed or renamed during the run"}[action]
    once = "it is back" if action == "rename" else "it can be written"
    then = ("nothing is left to go on from: the same command starts over" if action == "remove"
            else f"once {once}, the same command with --skip-existing goes on from there")
    assert lines[2:] == [f"ncnn-sr: stopped: {cause}; 2 upscaled, 0 skipped, 1 failed, 2 not done; {then}"], lines
    if action != "remove":
        assert sorted(os.listdir(out)) == ["v0.mp4", "v1.mp4"]
    else:
        assert not out.exists()  # not made again for the videos after



def test_an_output_folder_made_read_only_before_any_video_is_written_there_stops_the_run(tmp_path):
    # Only a folder a video was written in was looked at once a video failed: each
    # later one failed in a line of its own ('cannot write out/v1.mp4: Permission
    # denied', one for each of 3), as a folder of pictures does not.
    import sys

    from conftest import READ_ONLY_ONCE_ENCODED, run_breaking_a_folder

    if os.name == "nt":
        pytest.skip("Windows ignores a folder's read-only mode")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for i in range(4):
        make_clip(src / f"v{i}.mp4", frames=2, audio=None)
    cmd = [sys.executable, "-c", READ_ONLY_ONCE_ENCODED, str(out), "-i", str(src), "-o", str(out), *X2]
    proc = run_breaking_a_folder(cmd, out)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "frames/s" not in line and ": warning: " not in line]
    assert lines == [f"ncnn-sr: stopped: cannot write into {out}: Permission denied; 0 upscaled, 0 skipped, 1 "
                     "failed, 3 not done; once it can be written, the same command with --skip-existing goes on "
                     "from there"], proc.stderr
    assert [name for name in os.listdir(out) if not name.startswith(".")] == []


@pytest.mark.parametrize("removed", ["b", "a"])  # one not read yet, the one being read
def test_a_sub_folder_of_videos_removed_during_the_run_is_one_line_and_the_others_are_done(tmp_path, removed):
    # -r: a sub-folder removed before its videos were read failed each alone, a line
    # each ("in/b/v0.mp4: file not found"), counted failed; one removed while its videos
    # were read stopped the whole run, the other folders undone. As a picture folder run
    # does: one line, its videos counted as not done, the run goes on.
    import sys

    src, out = tmp_path / "in", tmp_path / "out"
    for sub, count in (("a", 3), ("b", 3), ("c", 2)):
        (src / sub).mkdir(parents=True)
        for i in range(count):
            make_clip(src / sub / f"v{i}.mp4", frames=2, width=16, height=16, audio=None)
    # Removed once the second video (a/v1) is written: a/v2 and b's three are left.
    cmd = [sys.executable, "-c", _VIDEOS_BROKEN_MID_RUN, "remove", str(src / removed), "-i", str(src), "-o",
           str(out), "-r", *X2]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "frames/s" not in line]
    lost = 1 if removed == "a" else 3
    gone = [f"ncnn-sr: error: {src / removed} was removed or renamed during the run: its videos not yet read are "
            "not done; the other folders go on"]
    wrote = [line.split(":")[1].strip().removeprefix("wrote ") for line in lines if ": wrote " in line]
    assert [line for line in lines if ": wrote " not in line][:-1] == gone, lines
    assert lines[-1].startswith(f"ncnn-sr: 8 videos: {8 - lost} upscaled, 0 skipped, 0 failed, {lost} not done in "), \
        lines
    assert wrote == [str(out / sub / f"v{i}.mp4") for sub, count in (("a", 3), ("b", 3), ("c", 2))
                     for i in range(count) if not (sub == removed or sub == "a" and i == 2 and removed == "a")
                     or sub == "a" and i < 2]
    assert names(out) == sorted(Path(path).relative_to(out).as_posix() for path in wrote)


@pytest.mark.parametrize("removed", ["a", "b"])  # once a video was written into it; once one was skipped there
def test_an_output_sub_folder_of_videos_removed_during_the_run_is_one_line_and_the_others_are_done(tmp_path, removed):
    # -r: an output sub-folder removed once a video was written into it stopped the
    # whole run ("stopped: out/a was removed during the run (what was written there is
    # gone)"), b and c undone, though their outputs go into folders of their own; one
    # whose output --skip-existing found there was made again in silence for the videos
    # left, the skipped one gone while counted skipped. As a folder of pictures does:
    # one line, its videos left counted as not done.
    import sys

    src, out = tmp_path / "in", tmp_path / "out"
    for sub, count in (("a", 3 if removed == "a" else 2), ("b", 3), ("c", 2)):
        (src / sub).mkdir(parents=True)
        for i in range(count):
            make_clip(src / sub / f"v{i}.mp4", frames=2, width=16, height=16, audio=None)
    (out / "b").mkdir(parents=True)
    make_clip(out / "b" / "v0.mp4", frames=2, width=32, height=32, audio=None)  # a stopped run's
    # Removed once the second video (a/v1) is written: a/v2 is left, or b's two not done.
    cmd = [sys.executable, "-c", _VIDEOS_BROKEN_MID_RUN, "remove", str(out / removed), "-i", str(src), "-o",
           str(out), "-r", "--skip-existing", *X2]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "frames/s" not in line and ": wrote " not in line]
    assert lines[:-1] == [f"ncnn-sr: error: {out / removed} was removed during the run (what was written there is "
                          "gone): its videos not yet written are not done; the other folders go on"], lines
    counts = "8 videos: 6 upscaled, 1 skipped, 0 failed, 1 not done" if removed == "a" else \
        "7 videos: 4 upscaled, 1 skipped, 0 failed, 2 not done"
    assert lines[-1].startswith(f"ncnn-sr: {counts} in "), lines
    kept = ["b/v0.mp4", "b/v1.mp4", "b/v2.mp4"] if removed == "a" else ["a/v0.mp4", "a/v1.mp4"]
    assert names(out) == kept + ["c/v0.mp4", "c/v1.mp4"]


# Each container read, as FFmpeg's muxer names it, with an encoder it holds.
CONTAINERS = {"mp4": "libx264", "mov": "libx264", "matroska": "libx264", "webm": "libvpx-vp9", "avi": "mpeg4",
              "mpegts": "mpeg2video", "flv": "flv", "ogg": "libvpx", "asf": "wmv2"}
# Frames enough for FFmpeg to tell the video a transport stream: one of 3 tiny frames
# (7 to 13 packets) was read as a program stream, and no video, in 50 of 60 made.
FRAMES = {"mpegts": 12}


def test_a_video_without_an_extension_in_a_folder_is_taken_by_its_first_bytes_into_mkv(tmp_path):
    # A clip a downloader left without its extension was left out without a word, and a
    # folder of them was "no videos in it". Each container read is told by its first
    # bytes, and goes into .mkv, as a video whose own container cannot be kept.
    from PIL import Image

    from conftest import picture

    src = tmp_path / "in"
    src.mkdir()
    for container, codec in CONTAINERS.items():
        make_in(src / f"clip_{container}", container, codec, frames=FRAMES.get(container, 3))
    Image.fromarray(picture(12, 16)).save(src / "poster", "PNG")
    (src / "notes").write_text("ftyp, not a video\n")
    proc = run(NCNN_SR, "video", "-i", src, "-o", tmp_path / "out", *X2)
    assert names(tmp_path / "out") == sorted(f"clip_{container}.mkv" for container in CONTAINERS)
    for container in CONTAINERS:
        times, size = frame_times(tmp_path / "out" / f"clip_{container}.mkv")
        assert (len(times), size) == (FRAMES.get(container, 3), (32, 32)), container
    assert proc.stderr.splitlines()[:2] == [
        f"ncnn-sr: warning: 1 file in {src} left out: not a video by its name or first bytes (notes)",
        f"ncnn-sr: warning: 1 picture in {src} left out: a video folder run upscales videos; ncnn-sr -i {src} "
        "-o OUT_FOLDER upscales its pictures"]
    assert proc.stderr.splitlines()[-1].startswith(f"ncnn-sr: {len(CONTAINERS)} videos: {len(CONTAINERS)} upscaled")


def test_the_first_bytes_of_sound_or_a_picture_in_a_video_container_are_no_video(tmp_path):
    from ncnn_sr.signatures import VIDEO_HEAD, video_container

    for container, codec in (("ipod", "aac"), ("ogg", "libopus"), ("ogg", "flac")):
        with av.open(str(tmp_path / "sound"), "w", format=container) as out:
            stream = out.add_stream(codec, rate=48000)
            for i in range(3):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
                frame.sample_rate, frame.pts = 48000, i * 960
                out.mux(stream.encode(frame))
            out.mux(stream.encode())
        assert video_container((tmp_path / "sound").read_bytes()[:VIDEO_HEAD]) is None, (container, codec)
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    avif = b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00avifmif1miafMA1B"
    for head in (heic, avif, b"", b"\x47" * 300, b"RIFF\x24\x00\x00\x00WAVEfmt ", b"OggS"):
        assert video_container(head) is None, head
    for container, codec in CONTAINERS.items():
        head = make_in(tmp_path / container, container, codec).read_bytes()[:VIDEO_HEAD]
        assert video_container(head) is not None, container


def test_files_neither_videos_nor_pictures_are_said_in_one_note_and_subtitles_beside_a_video_in_their_own(
        tmp_path, caplog):
    # A season folder's subtitles, .nfo and texts were left out without a word: the
    # subtitles beside a video most of all, which an output does not carry.
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    make_in(src / "ep1.mp4", "mp4", "libx264")
    make_in(src / "sub" / "ep2", "matroska", "libx264")
    for name in ("ep1.srt", "ep1.en.ass", "sub/ep2.vtt", "other.srt", "show.nfo", "notes", "poster.jpg",
                 ".hidden.txt", "sub/.DS_Store", "sub/readme.txt"):
        (src / name).write_text("x")
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        jobs = plan_videos(src, tmp_path / "out", EncodeOptions(), recursive=True)
    assert jobs == [(src / "ep1.mp4", tmp_path / "out" / "ep1.mp4"), (src / "sub" / "ep2", tmp_path / "out" / "sub" / "ep2.mkv")]
    sub = f"sub{os.sep}"
    assert [r.getMessage() for r in caplog.records] == [
        f"3 subtitle files in {src} not carried: subtitles in separate files are not read; copy them beside the "
        f"outputs (ep1.en.ass, ep1.srt, {sub}ep2.vtt)",
        f"4 files in {src} left out: not videos by their names or first bytes (notes, other.srt, show.nfo, ...)",
        f"1 picture in {src} left out: plan_videos plans videos; plan_jobs({str(src)!r}, out_folder) plans its "
        "pictures"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        plan_videos(src, tmp_path / "out", EncodeOptions())
    assert [r.getMessage() for r in caplog.records][:2] == [
        f"2 subtitle files in {src} not carried: subtitles in separate files are not read; copy them beside the "
        "outputs (ep1.en.ass, ep1.srt)",
        f"3 files in {src} left out: not videos by their names or first bytes (notes, other.srt, show.nfo)"]


def test_only_files_without_an_extension_are_opened_to_plan_a_folder_of_videos(tmp_path, monkeypatch):
    # A folder of 20000 files must not have 20000 first bytes read to plan.
    from ncnn_sr import jobs
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    make_in(src / "a.mp4", "mp4", "libx264")
    make_in(src / "b", "mp4", "libx264")
    for name in ("a.srt", "c.txt", "d.jpg", "e"):
        (src / name).write_text("x")
    if hasattr(os, "mkfifo"):
        os.mkfifo(src / "f")  # no writer: opening it to wait for one would hang
    opened = []
    head = jobs._head
    monkeypatch.setattr(jobs, "_head", lambda path, *size: opened.append(Path(path).name) or head(path, *size))
    assert jobs.plan_videos(src, tmp_path / "out", EncodeOptions()) == [
        (src / "a.mp4", tmp_path / "out" / "a.mp4"), (src / "b", tmp_path / "out" / "b.mkv")]
    assert sorted(opened) == ["b", "e"]


def test_a_video_without_an_extension_beside_the_mkv_of_its_name_gets_an_output_of_its_own(tmp_path, caplog):
    from ncnn_sr.jobs import plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    for name in ("clip", "clip.mkv", "clip-2.mkv", "other", "other.mp4"):
        make_in(src / name, "matroska", "libx264")
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        jobs = plan_videos(src, out, EncodeOptions())
    assert sorted(jobs) == [(src / "clip", out / "clip-3.mkv"), (src / "clip-2.mkv", out / "clip-2.mkv"),
                            (src / "clip.mkv", out / "clip.mkv"), (src / "other", out / "other.mkv"),
                            (src / "other.mp4", out / "other.mp4")]
    assert [r.getMessage() for r in caplog.records] == [
        f"{src / 'clip'} would output clip.mkv, as {src / 'clip.mkv'} does: it will output clip-3.mkv"]


def test_a_picture_folder_run_counts_a_video_without_an_extension_among_the_videos_it_leaves(tmp_path):
    from ncnn_sr.jobs import plan_jobs

    src = tmp_path / "in"
    src.mkdir()
    make_in(src / "clip", "mp4", "libx264")
    (src / "notes").write_text("x")
    assert plan_jobs(src, tmp_path / "out", fmt="png").notes[-2:] == (
        f"1 file in {src} left out: not a picture by its name or first bytes (notes)",
        f"1 video in {src} left out: plan_jobs plans pictures; upscale_video upscales a video")


def test_a_video_whose_suffix_is_no_extension_is_taken_by_its_first_bytes(tmp_path, caplog, monkeypatch):
    # A clip saved without its extension but with dots in its name (Show.S01E01.1080p),
    # or with a suffix a tool added (exiftool's clip.mp4_original, a backup's clip.mkv~),
    # was "left out: not a video by its name". Its output is named as any file's, by its
    # name up to the last dot, in .mkv; sidecars known by their names are not opened.
    from PIL import Image

    from conftest import picture
    from ncnn_sr import jobs
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    make_in(src / "Show.S01E01.1080p", "mp4", "libx264")
    make_in(src / "Show.S01E01.1080p.srt", "mp4", "libx264")  # known by its name: not opened
    make_in(src / "clip.mp4_original", "mp4", "libx264")
    make_in(src / "clip.mp4", "mp4", "libx264")
    make_in(src / "b.mkv~", "matroska", "libx264")
    make_in(src / "GL010001.LRV", "mp4", "libx264")  # a GoPro's low-resolution copy of its video
    Image.fromarray(picture(12, 16)).save(src / "poster.jpg_large", "JPEG")
    (src / "notes.1").write_text("not a video")
    opened = []
    head = jobs._head
    monkeypatch.setattr(jobs, "_head", lambda path: opened.append(Path(path).name) or head(path))
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        planned = jobs.plan_videos(src, out, EncodeOptions())
    assert planned == [(src / "Show.S01E01.1080p", out / "Show.S01E01.mkv"), (src / "b.mkv~", out / "b.mkv"),
                       (src / "clip.mp4", out / "clip.mp4"), (src / "clip.mp4_original", out / "clip.mkv")]
    assert [r.getMessage() for r in caplog.records] == [
        f"1 subtitle file in {src} not carried: subtitles in separate files are not read; copy them beside the "
        "outputs (Show.S01E01.1080p.srt)",
        f"2 files in {src} left out: not videos by their names or first bytes (GL010001.LRV, notes.1)",
        f"1 picture in {src} left out: plan_videos plans videos; plan_jobs({str(src)!r}, out_folder) plans its "
        "pictures"]
    assert sorted(opened) == ["Show.S01E01.1080p", "b.mkv~", "clip.mp4_original", "notes.1", "poster.jpg_large"]


def test_a_video_named_with_a_dot_at_its_end_outputs_the_part_before_it(tmp_path):
    # As a picture: "clip." went to clip..mkv, where the reference's rule (the part
    # before the last dot) gives clip.mkv.
    from ncnn_sr.jobs import plan_videos, video_output_name
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    make_in(src / "clip.", "matroska", "libx264")
    assert plan_videos(src, tmp_path / "out", EncodeOptions()) == [(src / "clip.", tmp_path / "out" / "clip.mkv")]
    assert video_output_name(src / "clip.", EncodeOptions()) == "clip.mkv"


def make_sound(path, container: str, codec: str) -> Path:
    """A tenth of a second of silence coded by ``codec`` in FFmpeg's ``container``,
    whatever the name of ``path``, and no video."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=48000, layout="stereo")
        stream.codec_context.options = {"strict": "experimental"}  # FFmpeg's own vorbis
        stream.bit_rate = 64000
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, i * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return Path(path)


# Sound alone in a container that holds video as well, as FFmpeg's muxer names it,
# with an encoder of sound it holds.
SOUND = (("asf", "wmav2"), ("matroska", "libopus"), ("mp4", "aac"), ("ogg", "libopus"), ("ogg", "vorbis"),
         ("avi", "mp3"), ("mpegts", "mp2"))


def test_sound_without_an_extension_in_a_folder_of_videos_is_left_out_with_the_other_non_videos(tmp_path, caplog):
    # A .wma (ASF) saved without its extension has the first bytes of a .wmv, a .mka
    # those of a .mkv: each was taken for a video, and failed on its own ("has no video
    # stream") after the others, where a sound file named so is left out in one note.
    from ncnn_sr.jobs import plan_jobs, plan_videos
    from ncnn_sr.video_options import EncodeOptions

    src = tmp_path / "in"
    src.mkdir()
    made = [make_sound(src / f"song_{container}_{codec}", container, codec).name
            for container, codec in SOUND if codec in av.codecs_available]  # wmav2 where FFmpeg has it
    make_in(src / "clip", "matroska", "libx264")
    (src / "notes").write_text("not a video")
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        jobs = plan_videos(src, tmp_path / "out", EncodeOptions())
    assert jobs == [(src / "clip", tmp_path / "out" / "clip.mkv")]
    left = sorted(["notes", *made])
    named = ", ".join(left[:3]) + ", ..." * (len(left) > 3)
    assert [r.getMessage() for r in caplog.records] == [
        f"{len(left)} files in {src} left out: not videos by their names or first bytes ({named})"]
    # A folder of pictures counted each among the videos it left for 'ncnn-sr video'.
    notes = plan_jobs(src, tmp_path / "pictures").notes
    assert notes == (f"{len(left)} files in {src} left out: not pictures by their names or first bytes ({named})",
                     f"1 video in {src} left out: plan_jobs plans pictures; upscale_video upscales a video")


def test_skip_existing_after_a_video_of_the_same_name_was_removed_takes_none_for_another(tmp_path):
    # c.mkv kept its name and c.vob went to c.vob.mkv; c.mkv removed, c.vob took c.mkv,
    # where c.mkv's video was: skipped as done, its own output never looked at. As a
    # picture's: found where the earlier run wrote it, and c.mkv is left as it is.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_in(src / "c.mkv", "matroska", "libx264", frames=2)
    make_vob(src / "c.vob", 16, 16)
    run(NCNN_SR, "video", "-i", src, "-o", out, *X2)
    assert names(out) == ["c.mkv", "c.vob.mkv"]
    before = (out / "c.mkv").read_bytes()
    (src / "c.mkv").unlink()
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, "--skip-existing", "-v", *X2)
    assert f"ncnn-sr: {out / 'c.vob.mkv'} exists: skipped (--skip-existing)" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("ncnn-sr: 1 video: 0 upscaled, 1 skipped, 0 failed")
    assert names(out) == ["c.mkv", "c.vob.mkv"] and (out / "c.mkv").read_bytes() == before


@pytest.mark.parametrize("keep_the_others", [True, False], ids=["its-output-kept", "its-output-removed"])
def test_skip_existing_finds_the_numbered_output_of_a_video_without_an_extension(tmp_path, keep_the_others):
    # clip.mkv kept its name and clip (a Matroska clip without an extension) went to
    # clip-2.mkv; clip.mkv removed, clip took clip.mkv again and its numbered output
    # was never looked at, as c.vob's c.vob.mkv is: it was upscaled again where
    # clip.mkv's output was gone, and skipped for clip.mkv's video where it was kept.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_in(src / "clip.mkv", "matroska", "libx264", frames=2)
    make_in(src / "clip", "matroska", "libx264", frames=2)
    run(NCNN_SR, "video", "-i", src, "-o", out, *X2)
    assert names(out) == ["clip-2.mkv", "clip.mkv"]
    ours = (out / "clip-2.mkv").read_bytes()
    (src / "clip.mkv").unlink()
    if not keep_the_others:
        (out / "clip.mkv").unlink()
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, "--skip-existing", "-v", *X2)
    assert f"ncnn-sr: {out / 'clip-2.mkv'} exists: skipped (--skip-existing)" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("ncnn-sr: 1 video: 0 upscaled, 1 skipped, 0 failed")
    assert names(out) == (["clip-2.mkv", "clip.mkv"] if keep_the_others else ["clip-2.mkv"])
    assert (out / "clip-2.mkv").read_bytes() == ours


def test_the_numbered_output_looked_for_is_the_one_the_plan_would_give():
    # As plan_videos numbers it: the first number no other output of the run has.
    from ncnn_sr.jobs import video_clash_outputs

    src, out = Path("in"), Path("out")
    assert video_clash_outputs([(src / "clip", out / "clip.mkv")]) == {out / "clip.mkv": out / "clip-2.mkv"}
    assert video_clash_outputs([(src / "clip", out / "clip.mkv"), (src / "clip-2.mkv", out / "clip-2.mkv")])[
        out / "clip.mkv"] == out / "clip-3.mkv"
    # One named so already, as another took its plain name, has none.
    assert out / "clip-2.mkv" not in video_clash_outputs([(src / "clip", out / "clip-2.mkv"),
                                                          (src / "clip.mkv", out / "clip.mkv")])
    assert video_clash_outputs([(src / "Show.1080p", out / "Show.mkv")]) == {out / "Show.mkv": out / "Show.1080p.mkv"}


@pytest.mark.skipif(os.name == "nt", reason="the names are POSIX shell words")
@pytest.mark.parametrize("name", ["my clips", os.fsdecode(b"caf\xe9")])
def test_the_command_a_mixed_folder_names_for_what_it_leaves_out_can_be_copied(tmp_path, caplog, name):
    # found by a README walk: "a command offered to copy quotes such a byte as the shell
    # reads it back", but these two put the folder in as it is: "ncnn-sr video -i my
    # clips -o OUT_FOLDER" named two paths, and caf\xe9 a folder "cafxe9".
    from PIL import Image

    from conftest import picture
    from ncnn_sr.errors import FlagNames
    from ncnn_sr.jobs import plan_jobs, plan_videos
    from ncnn_sr.video import EncodeOptions

    src = tmp_path / name
    src.mkdir()
    Image.fromarray(picture(12, 16)).save(src / "a.png")
    make_clip(src / "clip.mp4", frames=2, audio=None)
    with caplog.at_level("WARNING", logger="ncnn_sr"):
        plan_videos(src, tmp_path / "out", EncodeOptions(), flags=FlagNames())  # the commands' words
    for note, command, then in [(plan_jobs(src, tmp_path / "out", flags=FlagNames()).notes[-1], "ncnn-sr video -i ",
                                 " upscales its videos"),
                                (caplog.records[-1].getMessage(), "ncnn-sr -i ", " upscales its pictures")]:
        assert " left out: a " in note and note.endswith(f" -o OUT_FOLDER{then}"), note
        word = note.split(command, 1)[1].removesuffix(f" -o OUT_FOLDER{then}")
        said = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True).stdout
        assert said == os.fsencode(src), note


@pytest.mark.parametrize("given", [True, False])  # the output folder there, or made by the run
def test_an_output_folder_removed_during_the_first_video_of_a_folder_stops_the_run(given, tmp_path, in_process,
                                                                                monkeypatch):
    # Nothing written there yet, the first video failed alone ("cannot write out/v0.mp4:
    # No such file or directory"), then the folder was made again in silence for the
    # others, as a folder of pictures does not: it stops, the folder said removed.
    import shutil

    from ncnn_sr import console

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    if given:
        out.mkdir()
    for i in range(3):
        make_clip(src / f"v{i}.mp4", frames=6, audio=None)
    counted, removed = console.FrameProgress.__call__, []

    def count(self, done):
        if done == 2 and not removed:
            removed.append(shutil.rmtree(out))
        return counted(self, done)
    monkeypatch.setattr(console.FrameProgress, "__call__", count)
    status, said = in_process("video", "-i", src, "-o", out, *X2)
    assert status == 1
    assert [line for line in said.splitlines() if " frames, " not in line] == [
        f"ncnn-sr: stopped: {out} was removed during the run (what was written there is gone); 0 upscaled, "
        "0 skipped, 1 failed, 2 not done; nothing is left to go on from: the same command starts over"], said
    assert not out.exists()  # not made again for the videos after


@pytest.mark.parametrize("recursive", [False, True])
def test_a_folder_the_run_took_back_after_its_first_video_failed_is_made_again_for_the_next(recursive, tmp_path,
                                                                                        in_process, monkeypatch):
    # The run removes the folder it made for a video that failed as it was decoded,
    # empty: that is no folder removed during the run, and the videos after it are
    # written.
    from ncnn_sr import video
    from ncnn_sr.errors import InputError

    src, out = tmp_path / "in", tmp_path / "out"
    held = src / "a" if recursive else src
    held.mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        make_clip(held / name, frames=2, audio=None)
    real = video.upscale_video

    def upscale_video(source, *given, **options):
        if Path(source).name == "a.mp4":
            raise InputError(f"{source}: cannot decode frame 1")
        return real(source, *given, **options)
    monkeypatch.setattr(video, "upscale_video", upscale_video)
    status, said = in_process("video", "-i", src, "-o", out, *(["-r"] if recursive else []), *X2)
    assert status == 1
    lines = said.splitlines()
    assert lines[0] == f"ncnn-sr: error: {held / 'a.mp4'}: cannot decode frame 1", said
    assert lines[-1].startswith("ncnn-sr: 2 videos: 1 upscaled, 0 skipped, 1 failed in "), said
    assert names(out) == [("a/" if recursive else "") + "b.mp4"]


@pytest.mark.parametrize("skip", [False, True])
def test_a_folder_where_a_folders_video_goes_fails_that_video_before_it_is_upscaled(skip, tmp_path):
    # --skip-existing took the folder out/v0.mp4 for the video done: "2 videos: 1
    # upscaled, 1 skipped", exit 0, and no video was ever written there.
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(2):
        make_clip(src / f"v{i}.mp4", frames=2, audio=None)
    (out / "v0.mp4").mkdir(parents=True)
    proc = run(NCNN_SR, "video", "-i", src, "-o", out, *X2, *(["--skip-existing"] if skip else []), check_ok=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"ncnn-sr: error: cannot write {out / 'v0.mp4'}: a folder of that name is there", lines
    assert lines[-1].startswith("ncnn-sr: 2 videos: 1 upscaled, 0 skipped, 1 failed in "), lines
    assert names(out) == ["v1.mp4"] and (out / "v0.mp4").is_dir()


def test_a_folder_of_hidden_videos_alone_says_they_were_left_out(tmp_path):
    # It said "in: no videos in it" alone, where the files that are no video are counted.
    (tmp_path / "in").mkdir()
    make_clip(tmp_path / "in" / ".v.mp4", frames=2, audio=None)
    proc = run(NCNN_SR, "video", "-i", tmp_path / "in", "-o", tmp_path / "out", *X2, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ncnn-sr: error: {tmp_path / 'in'}: no videos in it; 1 hidden video left out (.v.mp4)"), proc.stderr
    assert not (tmp_path / "out").exists()
