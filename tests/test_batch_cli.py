"""Folders, the drop-in realesrgan-ncnn-vulkan command and the classic calls, run as
a user runs them (subprocess, real models, small pictures, CPU unless said)."""
import errno
import io
import itertools
import re
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import as_a_user, picture, png_bytes, png_chunk
from ncnn_sr.animation import read_frames
from ncnn_sr.errors import HintedInputError, InputError, Option, command_words
from media import bomb_png, make_clip
from test_cli import LATIN1, LOCALES, installed, run_in_locale
from test_models import copy_model
from test_pipeline import within

NCNN_SR = installed("ncnn-sr")
DROPIN = installed("realesrgan-ncnn-vulkan")


def run(cmd, *args, cwd=None, check_ok=True, timeout=300):
    proc = subprocess.run([cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def pictures(folder: Path, names, size=(12, 16)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture(*size, seed=i)).save(folder / name)
    return folder


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()
        return im.size


def test_a_missing_model_by_its_path_names_the_path_once(tmp_path):
    # -m root -n sub/nosuch said "file root/sub/nosuch.param not found (path
    # root/sub/nosuch.param)": the one path, twice.
    pictures(tmp_path, ["in.png"])
    (tmp_path / "root" / "sub").mkdir(parents=True)
    proc = run(DROPIN, "-i", "in.png", "-o", "out.png", "-m", "root", "-n", "sub/nosuch", "-g", "-1", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode != 0 and not (tmp_path / "out.png").exists()
    error = [line for line in proc.stderr.splitlines() if "error" in line]
    assert error == [f"realesrgan-ncnn-vulkan: error: in.png failed: model nosuch: file "
                     f"{Path('root/sub/nosuch.param')} not found"]


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_model_in_the_m_folder_not_there_names_the_one_where_the_command_runs(tmp_path, cmd):
    # found by a user audit: -m models -n mine/x (x.param in mine/ where the command ran)
    # said only "file models/mine/x.param not found", as if no x.param were anywhere.
    from test_cli import in_place_first_model

    pictures(tmp_path, ["in.png"])
    (tmp_path / "models").mkdir()
    (tmp_path / "mine").mkdir()
    in_place_first_model(tmp_path / "mine")
    proc = run(cmd, "-i", "in.png", "-o", "out.png", "-m", "models", "-n", "mine/inplace-x2", "-g", "-1",
               cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and not (tmp_path / "out.png").exists()
    name = Path(cmd).name
    meant = Path("mine/inplace-x2.param")
    failed = "in.png failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.splitlines() == [
        f"{name}: error: {failed}model inplace-x2: file {Path('models/mine/inplace-x2.param')} not found ({meant} "
        f"is where the command runs: -n {meant} runs it)"]
    run(cmd, "-i", "in.png", "-o", "out.png", "-m", "models", "-n", meant, "-s", "2", "-g", "-1", cwd=tmp_path)
    assert size_of(tmp_path / "out.png") == (32, 24)


# --- the reference's calls, verbatim ---------------------------------------------------

def test_classic_call_default_model_x4(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "input.jpg")
    run(DROPIN, "-i", "input.jpg", "-o", "output.png", cwd=tmp_path)
    assert size_of(tmp_path / "output.png") == (64, 48)


def test_classic_call_named_model(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "input.jpg")
    run(DROPIN, "-i", "input.jpg", "-o", "output.png", "-n", "realesr-animevideov3", cwd=tmp_path)
    assert size_of(tmp_path / "output.png") == (64, 48)


def test_classic_call_folder_x2_to_jpg(tmp_path):
    pictures(tmp_path / "input_folder", ["a.png", "b.jpg", "c.webp"])
    run(DROPIN, "-i", "input_folder", "-o", "outputfolder", "-n", "realesr-animevideov3", "-s", "2", "-f", "jpg",
        cwd=tmp_path)
    out = sorted(p.name for p in (tmp_path / "outputfolder").iterdir())
    assert out == ["a.jpg", "b.jpg", "c.jpg"]
    assert all(size_of(tmp_path / "outputfolder" / n) == (32, 24) for n in out)


def test_three_step_frames_recipe_keeps_every_frame_and_the_sound(tmp_path):
    clip = make_clip(tmp_path / "onepiece_demo.mp4", frames=6)
    # 1. frames out (what `ffmpeg -i clip tmp_frames/frame%08d.jpg` does)
    (tmp_path / "tmp_frames").mkdir()
    with av.open(str(clip)) as src:
        rate = src.streams.video[0].average_rate
        for i, frame in enumerate(src.decode(video=0), 1):
            frame.to_image().save(tmp_path / "tmp_frames" / f"frame{i:08d}.jpg", quality=95)
    # 2. the classic call, verbatim; out_frames does not exist yet
    run(DROPIN, "-i", "tmp_frames", "-o", "out_frames", "-n", "realesr-animevideov3", "-s", "2", "-f", "jpg",
        cwd=tmp_path)
    frames = sorted((tmp_path / "out_frames").iterdir())
    assert [f.name for f in frames] == [f"frame{i:08d}.jpg" for i in range(1, 7)]
    # 3. frames back in, with the original's audio copied
    with av.open(str(clip)) as src, av.open(str(tmp_path / "out.mp4"), "w") as dst:
        video = dst.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio_in = src.streams.audio[0]
        audio_out = dst.add_stream_from_template(audio_in)
        for path in frames:
            for packet in video.encode(av.VideoFrame.from_image(Image.open(path).convert("RGB"))):
                dst.mux(packet)
        for packet in video.encode():
            dst.mux(packet)
        for packet in src.demux(audio_in):
            if packet.dts is not None:
                packet.stream = audio_out
                dst.mux(packet)
    with av.open(str(tmp_path / "out.mp4")) as result:
        v, a = result.streams.video[0], result.streams.audio[0]
        assert (v.codec_context.width, v.codec_context.height) == (64, 48)
        assert sum(1 for _ in result.decode(video=0)) == 6
        assert a.codec_context.name == "aac"


# --- folder mode -----------------------------------------------------------------------

def test_stem_clash_gets_the_reference_name_and_a_warning(tmp_path):
    pictures(tmp_path / "in", ["a.jpg", "a.png", "b.png"])
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.png.png", "b.png"]
    assert "a.png will output a.png.png" in proc.stderr


def test_folder_mode_takes_only_pictures_and_no_subfolders(tmp_path):
    pictures(tmp_path / "in", ["a.png", "sub/b.png"])
    (tmp_path / "in" / "notes.txt").write_text("hello")
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_folder_mode_leaves_files_pillow_names_but_cannot_read_as_pictures(tmp_path):
    # Pillow registers .pdf (it only writes them), .mpg (a video's header) and .h5;
    # each failed the batch as "not a picture".
    pictures(tmp_path / "in", ["a.png"])
    Image.fromarray(picture(8, 8)).save(tmp_path / "in" / "doc.pdf")
    (tmp_path / "in" / "clip.mpg").write_bytes(b"\x00\x00\x01\xba" + bytes(60))
    (tmp_path / "in" / "data.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(60))
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "-1")
    assert "ncnn-sr: 1 picture: 1 upscaled" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_folder_named_like_a_video_is_a_folder_of_pictures(cmd, tmp_path):
    # Routed to the video command by its name alone: "unsupported video container ''".
    pictures(tmp_path / "frames.mp4", ["a.png"])
    run(cmd, "-i", tmp_path / "frames.mp4", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert size_of(tmp_path / "out" / "a.png") == (32, 24)


def test_recursive_mirrors_the_tree_and_skips_hidden_folders(tmp_path):
    pictures(tmp_path / "in", ["a.png", "sub/b.jpg", "sub/deeper/c.webp", ".hidden/d.png"])
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "--recursive", "-n", "realesr-animevideov3",
        "-s", "2", "-g", "-1")
    found = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert found == ["a.png", "sub/b.png", "sub/deeper/c.png"]


def test_recursive_picture_whose_output_is_a_sub_folders_name_takes_another(tmp_path):
    # x.jpg outputs x.png, where -r mirrors the sub-folder x.png: whichever came
    # second failed ("out/x.png is a file, not a folder"), its whole folder with it.
    pictures(tmp_path / "in", ["x.jpg", "x.png/y.png"])
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-r", *X2_CPU)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
                  if p.is_file()) == ["x.jpg.png", "x.png/y.png"]
    assert f"{tmp_path / 'in' / 'x.jpg'} would output x.png, where the sub-folder {tmp_path / 'in' / 'x.png'} " \
           "goes: x.jpg will output x.jpg.png" in proc.stderr


@pytest.mark.parametrize("inside", [["sub/a.png"], ["sub/deeper/a.png"]])  # two levels down too
def test_a_folder_whose_pictures_are_all_in_sub_folders_says_how_to_take_them(tmp_path, inside):
    pictures(tmp_path / "in", inside)
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"{tmp_path / 'in'}: no pictures found (-r looks in its sub-folders too)")
    assert not (tmp_path / "out").exists()


def test_what_r_would_take_below_a_folder_is_looked_for_to_the_first_found(tmp_path, monkeypatch):
    # -r is named only where a sub-folder holds a picture it takes: its name's or,
    # of a name that says nothing, its first bytes'; not of the output folder's.
    from ncnn_sr import jobs

    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "notes.txt").write_text("x")
    (src / "a" / "b" / ".c.png").write_bytes(b"x")
    assert not jobs.deeper_holds(src)
    pictures(src / "out", ["x.png"])
    assert not jobs.deeper_holds(src, dst=src / "out") and jobs.deeper_holds(src)
    shutil.rmtree(src / "out")
    pictures(src / "a" / "b", ["frame.png"])
    (src / "a" / "b" / "frame.png").rename(src / "a" / "b" / "frame")
    assert jobs.deeper_holds(src) and not jobs.deeper_holds(src, videos=True)
    # A huge tree is not walked whole for a hint: past DEEPER_LOOKS entries, -r is named.
    (src / "a" / "b" / "frame").unlink()
    monkeypatch.setattr(jobs, "DEEPER_LOOKS", 1)
    assert jobs.deeper_holds(src)
    # The warning of pictures left out in sub-folders says they are there: not past
    # the entries looked at, where a tree of 20,000 other files was said to hold them.
    assert not jobs.deeper_holds(src, past_looks=False)
    pictures(src / "a" / "b", ["frame.png"])
    monkeypatch.setattr(jobs, "DEEPER_LOOKS", 100)
    assert jobs.deeper_holds(src, past_looks=False)


@pytest.mark.parametrize("inside, deeper", [([], ""), (["sub/a.png"], " ('ncnn-sr -r' looks in its sub-folders too)")])
def test_the_drop_in_runs_a_folder_with_no_pictures_as_the_reference_does(inside, deeper, tmp_path):
    # The reference runs it and exits 0: a script looping over frame folders under
    # `set -e` stopped at the first empty one. Pictures in sub-folders alone were
    # passed over unsaid (the drop-in has no -r): ncnn-sr's takes them.
    (tmp_path / "in").mkdir()
    pictures(tmp_path / "in", inside)
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU)
    assert proc.returncode == 0
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"{tmp_path / 'in'}: no pictures found{deeper}: nothing to do")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_folder_of_hidden_pictures_alone_says_they_were_left_out(cmd, tmp_path):
    # It said "in: no pictures found" alone, where the non-pictures left out are counted:
    # a folder of pictures named .a.png looked empty.
    pictures(tmp_path / "in", [".a.png", ".b.png", "sub/.c.png"])
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0")  # named as no picture: not one of them
    proc = run(cmd, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, check_ok=False)
    assert proc.returncode == (1 if cmd == NCNN_SR else 0), proc.stderr
    # No "(-r looks in its sub-folders too)", an audit's: its sub-folder holds a
    # hidden picture alone, which -r leaves out as well.
    end = "" if cmd == NCNN_SR else ": nothing to do"
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"{tmp_path / 'in'}: no pictures found; 2 hidden pictures left out (.a.png, .b.png){end}"), proc.stderr
    assert not (tmp_path / "out").exists()


# A command run as a user runs it, each picture it upscales said on a line of its own.
_COUNTING_UPSCALES = """
import sys
from ncnn_sr import engine, entry

real = engine.Upscaler.upscale

def upscale(self, image, *given, **options):
    # One write: print's several let another thread's error line in between (failed 1 CI run).
    sys.stderr.write(f"upscaled {image.shape}\\n")
    return real(self, image, *given, **options)

engine.Upscaler.upscale = upscale
command, *args = sys.argv[1:]
sys.argv = [command, *args]
getattr(entry, command.replace("-", "_"))()
"""


@pytest.mark.parametrize("command", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
def test_a_picture_whose_output_is_a_folder_fails_before_it_is_upscaled_on_every_rerun(command, tmp_path):
    # Guards the folder run at the command (the Pipeline's own test asks it of a Job):
    # upscaled first, it failed at the write, minutes of CPU a photo, every rerun.
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(8, 8))
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    skip = ["--skip-existing"] if command == "ncnn-sr" else []
    failed = f"{tmp_path / 'in' / 'a.png'} failed: " if command != "ncnn-sr" else ""  # in the reference's word
    for rerun in (False, True):
        proc = subprocess.run([sys.executable, "-c", _COUNTING_UPSCALES, command, "-i", str(tmp_path / "in"), "-o",
                               str(tmp_path / "out"), *X2_CPU, *skip], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1, proc.stderr
        assert f"{command}: error: {failed}cannot write {tmp_path / 'out' / 'a.png'}: a folder of that name is " \
               "there" in proc.stderr, proc.stderr
        # b alone; on --skip-existing's rerun, none.
        assert proc.stderr.count("upscaled (8, 8, 3)") == (0 if rerun and skip else 1), proc.stderr
        assert (tmp_path / "out" / "a.png").is_dir() and (tmp_path / "out" / "b.png").is_file()


@pytest.mark.parametrize("flag, said", [(["-t", "16"], "invalid tilesize argument"),
                                        (["-j", "1:0:2"], "invalid jobs_proc thread count argument"),
                                        (["-g", "-1,-1", "-t", "32,32,32"], "invalid tilesize argument"),
                                        (["-g", "9"], "invalid gpu device 9"),
                                        (["-n", "realesrgan-x4pls"], "unknown model 'realesrgan-x4pls'")])
def test_the_drop_in_refuses_a_bad_flag_or_model_for_a_folder_with_no_pictures_too(flag, said, tmp_path):
    # The reference checks its flags and loads its model before it finds the folder
    # empty: the drop-in said "nothing to do" and exited 0, so a typo tried on an empty
    # folder passed, to fail on the first folder with pictures.
    (tmp_path / "in").mkdir()
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, *flag, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("realesrgan-ncnn-vulkan: error: ") \
        and said in proc.stderr and "nothing to do" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [DROPIN, NCNN_SR], ids=["drop-in", "ncnn-sr"])
@pytest.mark.parametrize("flag, said", [(["-t", "16"], "invalid tilesize argument"),
                                        (["-j", "1:0:2"], "invalid jobs_proc thread count argument"),
                                        (["-g", "0,x"], "invalid gpu device: -g 0,x: ")])
def test_a_bad_flag_is_one_line_before_the_folders_notes(command, flag, said, tmp_path):
    # The reference checks its flags before it lists the folder: a bad -t came after
    # the warnings of the files left out and the names that clash, no longer one line.
    pictures(tmp_path / "in", ["a.png", "a.jpg"])
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    proc = run(command, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, *flag, check_ok=False)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and said in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_recursive_output_inside_the_input_is_not_walked_again(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "in" / "big", "-r", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    run(NCNN_SR, *args)
    run(NCNN_SR, *args)
    assert sorted(p.name for p in (tmp_path / "in" / "big").iterdir()) == ["a.png"]


def test_missing_output_folders_are_made(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "new" / "deeper" / "out.png", "-s", "2")
    assert size_of(tmp_path / "new" / "deeper" / "out.png") == (16, 16)


def test_a_picture_that_fails_leaves_no_folder_made_for_it(tmp_path):
    # 2x8200 at x2 is too wide for WebP, known only once upscaled: the folders made
    # for it stayed behind, empty.
    Image.fromarray(picture(2, 8200)).save(tmp_path / "wide.png")
    proc = run(NCNN_SR, "-i", tmp_path / "wide.png", "-o", tmp_path / "new" / "deeper" / "out.webp",
               "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and "too large for WebP" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.png"]


def test_dropin_writes_webp_lossless_and_jpeg_at_quality_100_as_the_reference(tmp_path):
    # The reference's JPEG quality made every WebP lossy (a VP8 chunk, not VP8L).
    pictures(tmp_path / "in", ["a.png"])
    run(DROPIN, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "one.webp", "-g", "-1", "-s", "2")
    run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "webp", "-g", "-1", "-s", "2", "-f", "webp")
    run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "jpg", "-g", "-1", "-s", "2", "-f", "jpg")
    for path in (tmp_path / "one.webp", tmp_path / "webp" / "a.webp"):
        assert path.read_bytes()[12:16] == b"VP8L", path
    with Image.open(tmp_path / "jpg" / "a.jpg") as im:
        assert set(im.quantization[0]) == {1}  # quality 100


def test_any_scale_with_the_dropin_resamples_instead_of_garbling(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesrgan-x4plus-anime", "-s", "2")
    out = np.asarray(Image.open(tmp_path / "out.png")).astype(float)
    assert out.shape == (24, 32, 3)
    back = np.asarray(Image.fromarray(out.astype(np.uint8)).resize((16, 12), Image.BICUBIC)).astype(float)
    assert np.mean(np.abs(back - picture(12, 16))) < 25  # the picture, not a scrambled buffer


def test_dropin_says_when_it_resamples_the_models_output(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-s", "2.5", "-g", "-1", "-v")
    assert "realesr-animevideov3-x4 is an x4 model: its output is resampled to x2.5 (Lanczos)" in proc.stderr
    assert size_of(tmp_path / "out.png") == (20, 20)
    native = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-s", "2", "-g", "-1", "-v")
    assert "resampled" not in native.stderr


def test_verbose_says_whether_tta_is_on(tmp_path):
    # -x -v said nothing of TTA: whether a script's -x took was known only from the time.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-x", *X2_CPU, "-v")
    assert "realesrgan-ncnn-vulkan: realesr-animevideov3-x2 x2 on CPU, 1 proc worker(s), TTA (8 runs a tile)" \
        in proc.stderr.splitlines()
    plain = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", *X2_CPU, "-v")
    assert "TTA" not in plain.stderr


def test_dropin_help_gives_the_references_usage_line_once():
    # Click's "Usage: realesrgan-ncnn-vulkan [OPTIONS]" came first, then the
    # reference's usage line again as the description.
    proc = run(DROPIN, "-h")
    usage = [line for line in proc.stdout.splitlines() if "Usage:" in line]
    assert usage == ["Usage: realesrgan-ncnn-vulkan -i infile -o outfile [options]..."]
    assert proc.stdout.splitlines()[2].strip().startswith("Upscale")
    missing = run(DROPIN, "-i", "in.png", check_ok=False)
    assert missing.returncode == 2
    assert missing.stderr.startswith("Usage: realesrgan-ncnn-vulkan -i infile -o outfile [options]...\n")


def test_dropin_help_names_each_flags_value_as_the_reference_does():
    # Click named them all PATH or TEXT: -j TEXT said nothing of load:proc:save.
    shown = {line.split()[0]: line.split()[1] for line in run(DROPIN, "-h").stdout.splitlines()
             if line.startswith("  -") and len(line.split()) > 1}
    assert shown == {"-i": "input-path", "-o": "output-path", "-s": "scale", "-t": "tile-size", "-m": "model-path",
                     "-n": "model-name", "-g": "gpu-id", "-j": "load:proc:save", "-x": "enable", "-f": "format",
                     "-v": "verbose", "-h,": "--help"}


def test_dropin_help_says_which_model_it_names_must_be_fetched_first():
    # It listed realesrnet-x4plus beside the installed models, as the reference does,
    # and -n realesrnet-x4plus then failed: it is not in the model package.
    from ncnn_sr.models import catalog
    words = " ".join(run(DROPIN, "-h").stdout.split())
    listed = words.split("model name: ")[1].split(" [default")[0]
    for name, entry in catalog().items():
        if name in listed.replace(",", " ").replace("(", " ").split() and entry.package_files is None:
            assert f"ncnn-sr fetch {name}" in listed, listed


def test_a_dropin_folder_run_says_failed_only_where_a_picture_failed(tmp_path):
    # Wrappers of the reference (Upscayl) take "failed" on stderr for a failure, as the
    # reference says it only then ("decode image ... failed"): the drop-in's summary of
    # a run that went well said "0 failed".
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(8, 8))
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", "-g", "-1", "-s", "2")
    assert "failed" not in proc.stderr and "2 pictures: 2 upscaled, 0 skipped in" in proc.stderr
    (tmp_path / "in" / "c.png").write_bytes(b"")
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1 and "3 pictures: 2 upscaled, 0 skipped, 1 failed in" in proc.stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_folders_last_lines_name_the_pictures_that_failed(tmp_path, cmd):
    # Each failure had its own error line alone, scrolled away in a folder of hundreds:
    # a user had to search for the pictures to redo. They are named above the summary,
    # which stays the last line, as wrappers read it.
    src = pictures(tmp_path / "in", ["a.png", "c.png"], size=(8, 8))
    whole = (src / "a.png").read_bytes()
    (src / "b.png").write_bytes(whole[: len(whole) // 2])
    (src / "e.png").write_bytes(b"")
    proc = run(cmd, "-i", src, "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1, proc.stderr
    prog = Path(cmd).name
    lines = proc.stderr.splitlines()
    assert lines[-2] == f"{prog}: failed: b.png, e.png", lines
    assert lines[-1].startswith(f"{prog}: 4 pictures: 2 upscaled, 0 skipped, 2 failed in "), lines
    if cmd == DROPIN:  # which has no -q, as the reference
        return
    # -q says errors alone: no summary, and no names above it.
    quiet = run(cmd, "-i", src, "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", "-q",
                check_ok=False)
    assert quiet.returncode == 1 and "failed: b.png, e.png" not in quiet.stderr, quiet.stderr


def test_a_folders_failures_past_ten_are_counted_and_each_name_is_one_shell_word(tmp_path):
    # Hundreds of names made a line that filled the screen; a name holding ", " read as two.
    src = pictures(tmp_path / "in", ["ok.png"], size=(8, 8))
    for name in ["a, b.png", *(f"sub/e{i:02d}.png" for i in range(11))]:
        (src / name).parent.mkdir(exist_ok=True)
        (src / name).write_bytes(b"")
    proc = run(NCNN_SR, "-i", src, "-o", tmp_path / "out", "-r", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "-1", check_ok=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    shown = ", ".join(["'a, b.png'", *(f"sub/e{i:02d}.png" for i in range(9))])
    assert lines[-2] == f"ncnn-sr: failed: {shown}, and 2 more", lines
    assert lines[-1].startswith("ncnn-sr: 13 pictures: 1 upscaled, 0 skipped, 12 failed in "), lines


def test_a_picture_the_dropin_fails_is_said_to_have_failed_as_by_the_reference(tmp_path):
    # The reference's word for a picture it cannot read or write ("decode image ...
    # failed"), which its wrappers look for; a single picture has no summary to say it.
    (tmp_path / "in.png").write_bytes(b"")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1 and proc.stderr == \
        f"realesrgan-ncnn-vulkan: error: {tmp_path / 'in.png'} failed: not a picture: the file is empty (0 bytes)\n"


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_the_pictures_of_sub_folders_a_folder_run_leaves_out_are_said(tmp_path, cmd):
    # found by a folder audit: photos/ with photos/2023/*.jpg upscaled the top's
    # pictures alone, the others left out without a word, where a Thumbs.db is said.
    src = pictures(tmp_path / "in", ["a.png", "sub/deeper/b.png"])
    (tmp_path / "in" / "notes").mkdir()
    (tmp_path / "in" / "notes" / "n.txt").write_text("no picture")
    hint = "(-r upscales them too)" if cmd == NCNN_SR else "('ncnn-sr -r' upscales them too)"
    said = f"{Path(cmd).name}: warning: in: the pictures in its sub-folders are left out {hint}"
    proc = run(cmd, "-i", "in", "-o", "out", *X2_CPU, cwd=tmp_path)
    assert said in proc.stderr.splitlines() and os.listdir(tmp_path / "out") == ["a.png"], proc.stderr
    # Not where none holds a picture, nor of the output folder inside the input's.
    shutil.rmtree(src / "sub")
    pictures(src / "out", ["old.png"])
    assert "sub-folders" not in run(cmd, "-i", "in", "-o", "in/out", *X2_CPU, cwd=tmp_path).stderr
    if cmd == NCNN_SR:
        assert "sub-folders" not in run(cmd, "-i", "in", "-o", "out2", "-r", *X2_CPU, cwd=tmp_path).stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_file_without_an_extension_that_cannot_be_read_is_not_said_to_be_no_picture(tmp_path, cmd):
    # found by a folder audit: one this user may not read was left out as "not a
    # picture by its name or first bytes", whose first bytes were never read.
    src = pictures(tmp_path / "in", ["a.png", "d.png"])
    (src / "d.png").rename(src / "d")
    (src / "d").chmod(0)
    proc = subprocess.run(as_a_user([cmd, "-i", "in", "-o", "out", "-g", "-1", "-s", "2"]), capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{Path(cmd).name}: warning: 1 file in in left out: it cannot be read to tell whether it is a picture " \
           "(d: permission denied)" in proc.stderr.splitlines(), proc.stderr
    assert os.listdir(tmp_path / "out") == ["a.png"]


@pytest.mark.parametrize("folder", [False, True])
def test_a_picture_the_dropin_fails_is_named_once_where_its_name_is_escaped(tmp_path, folder):
    # found by a folder audit: a name said escaped (a Latin-1 byte, a line break) was
    # said twice, "caf\xe9.png failed: caf\xe9.png: not a picture", its plain form
    # not found at the start of the escaped message to be taken off.
    for name in (f"{LATIN1}.png", "new\nline.png"):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    args = ["-i", "in", "-o", "out"] if folder else ["-i", f"in/{LATIN1}.png", "-o", "o.png"]
    proc = run_in_locale({"LC_ALL": "C.UTF-8"}, *args, "-g", "-1", "-s", "2", cmd=DROPIN, cwd=tmp_path)
    errors = [line for line in proc.stderr.decode().splitlines() if "error:" in line]
    said = ["realesrgan-ncnn-vulkan: error: in/caf\\xe9.png failed: not a picture: the file is empty (0 bytes)"]
    if folder:
        said.append("realesrgan-ncnn-vulkan: error: in/new\\nline.png failed: not a picture: the file is empty "
                    "(0 bytes)")
    assert proc.returncode == 1 and sorted(errors) == said


@pytest.mark.parametrize("args", [["-i", "gone.png", "-o", "o.png"],  # the reference: "decode image ... failed"
                                  ["-i", "in", "-o", "in"],  # refused, where the reference writes over them
                                  ["-i", "in.png", "-o", "in.png/o.png"],  # "encode image ... failed"
                                  ["-i", "in", "-o", "in.png/out"],
                                  ["-i", "in.png", "-o", "o.png", "-n", "nosuch"],  # ncnn: "fopen ... failed"
                                  ["-i", "in.png", "-o", "o.png", "-m", "gone"],
                                  ["-i", "in.png", "-o", "o.png", "-m", "in.png"],
                                  ["-i", "in.png", "-o", "o.png", "-m", "mine"],
                                  # the refusals of a path flag, before the run
                                  ["-i", "*.png", "-o", "out"],  # a pattern left unexpanded
                                  ["-i", "in.png/", "-o", "out"],  # a folder that is a file
                                  ["-i", "https://x.org/a.png", "-o", "o.png"],
                                  ["-i", "file:///gone/a.png", "-o", "o.png"],
                                  ["-i", "~nosuchuser/a.png", "-o", "o.png"],
                                  ["-i", "in.png", "-o", "o.png", "-m", "~nosuchuser/models"],
                                  ["-i", "-", "-o", "o.png"],
                                  ["-i", "in.png", "-o", "-"],
                                  ["-i", "in.png", "-o", "o.bmp"],
                                  ["-i", "in.png", "-o", "o"]],
                         ids=["missing input", "folder into itself", "output unwritable", "folder unwritable",
                              "unknown model", "model folder missing", "model folder a file", "model not in folder",
                              "pattern", "folder a file", "web address", "file address", "no such user",
                              "model folder of no such user", "dash input", "dash output", "output format",
                              "no extension"])
def test_a_dropin_run_that_writes_nothing_says_failed_as_the_reference_does(args, tmp_path):
    # Upscayl takes the drop-in's stderr without "failed" (or "invalid gpu") for a
    # success, whatever the exit status, as the reference says "failed" wherever it
    # cannot read, write or load: it announced an output never written.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    pictures(tmp_path / "in", ["a.png"], size=(8, 8))
    (tmp_path / "mine").mkdir()
    proc = run(DROPIN, *args, "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("realesrgan-ncnn-vulkan: error: ") and "failed" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_dropin_run_refused_a_terminal_says_failed_too(tmp_path):
    # Upscayl-style wrappers read "failed" in stderr, as for any run that writes
    # nothing: -i /dev/stdin on a terminal said "standard input is a terminal" alone.
    import pty
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    main, other = pty.openpty()
    try:
        for args, said in ((["-i", "/dev/stdin", "-o", "o.png"], "/dev/stdin failed: standard input is a terminal"),
                           (["-i", "/dev/stdin", "-o", "o.mp4"], "/dev/stdin failed: standard input is a terminal"),
                           (["-i", "in.png", "-o", "/dev/stdout"], "in.png failed: /dev/stdout has no extension")):
            proc = subprocess.run([DROPIN, *args, "-g", "-1", "-s", "2"], stdin=other, stdout=other,
                                  stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=300)
            assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
            assert proc.stderr.startswith(f"realesrgan-ncnn-vulkan: error: {said}"), proc.stderr
    finally:
        os.close(main)
        os.close(other)
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


def test_a_video_the_dropin_cannot_run_is_said_to_have_failed_too(tmp_path):
    # The drop-in takes a video too; its errors said "gone.mp4: file not found" alone.
    proc = run(DROPIN, "-i", "gone.mp4", "-o", "o.mp4", "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr == "realesrgan-ncnn-vulkan: error: gone.mp4 failed: file not found\n"
    assert not (tmp_path / "o.mp4").exists()


def test_a_missing_input_is_said_to_have_failed_by_the_dropin_in_one_naming(tmp_path):
    # As a picture that cannot be read is said to ("in.png failed: not a picture"), not
    # its name twice.
    proc = run(DROPIN, "-i", "gone.png", "-o", "o.png", "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.stderr == "realesrgan-ncnn-vulkan: error: gone.png failed: file not found\n"


@pytest.mark.parametrize("source, said", [
    ("gone.png", "gone.png failed: file not found"),
    pytest.param(os.devnull, f"{os.devnull} failed: {os.devnull} is neither a file nor a folder",
                 marks=pytest.mark.skipif(os.name == "nt", reason="nul is no path to check")),
])
@pytest.mark.parametrize("fmt", ["bmp", ""])
def test_an_input_that_is_no_picture_with_a_format_a_file_ignores_is_said_so(source, said, fmt, tmp_path):
    # A file output takes its extension's format whatever -f says, as for the
    # reference: a missing input (or a device) was taken for a folder, and -f refused
    # ("invalid format argument: -f bmp"), what was wrong unsaid and no "failed".
    proc = run(DROPIN, "-i", source, "-o", "o.png", "-f", fmt, "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr == f"realesrgan-ncnn-vulkan: error: {said}\n"
    assert not (tmp_path / "o.png").exists()


def test_empty_words_among_the_dropins_arguments_are_passed_over_as_by_the_reference(tmp_path):
    # Wrappers build the argument list with "" for a flag they leave out (Upscayl's
    # cond ? "-s" : ""), which the reference's getopt leaves aside as operands: the
    # drop-in refused them as extra arguments, exit 2.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "", "", "-g", "-1", "-s", "2", "")
    assert size_of(tmp_path / "out.png") == (16, 16)
    words = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "", "x.png", "-g", "-1", check_ok=False)
    assert words.returncode == 2 and "Got unexpected extra argument (x.png)" in words.stderr


def test_dropin_help_answers_help_with_two_dashes_too():
    # The reference prints its usage for any option it does not know, --help too; the
    # drop-in said "No such option '--help'" and exited 2.
    proc = run(DROPIN, "--help")
    assert proc.stdout == run(DROPIN, "-h").stdout and proc.stderr == ""


def test_dropin_help_answers_help_with_one_dash_as_the_references_getopt():
    # The reference's getopt reads -help as -h, its usage, and stops there: the drop-in
    # said "No such option '-e'", a letter never typed.
    proc = run(DROPIN, "-help")
    assert proc.stdout == run(DROPIN, "-h").stdout and proc.stderr == ""
    assert not re.search(r"(?<![-\w])-help", proc.stdout)  # -h and --help are the names shown


@pytest.mark.parametrize("flag, said", [
    ("-r", "No such option '-r' (an option of ncnn-sr: the drop-in takes the reference's flags only)"),
    ("--skip-existing", "No such option '--skip-existing' (an option of ncnn-sr: the drop-in takes the reference's "
                        "flags only)"),
    ("--crf", "No such option '--crf' (an option of 'ncnn-sr video': the drop-in takes the reference's flags only)"),
    ("--scale", "No such option '--scale'. Did you mean '-s'?"),  # the drop-in's own, by ncnn-sr's name
    ("-Z", "No such option '-Z'."),
])
def test_an_option_of_ncnn_sr_given_to_the_dropin_says_where_it_is(flag, said, tmp_path):
    # -r to the drop-in said only "No such option '-r'": the pictures in sub-folders,
    # what users of the reference ask for most, seemed out of reach.
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", flag, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == f"Error: {said}", proc.stderr


def test_cpu_is_accepted_by_the_dropin(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-s", "2")
    assert size_of(tmp_path / "out.png") == (16, 16)


def test_dropin_prints_a_percentage_per_tile_on_stderr_as_the_reference(tmp_path):
    # Wrappers of the reference (GUIs, scripts) show its progress from these lines; the
    # drop-in printed nothing while a picture was upscaled, minutes of silence on a CPU.
    # Unlike the reference's, the last says 100.00%.
    Image.fromarray(picture(40, 70)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-s", "2", "-t", "32")
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["16.67%", "33.33%", "50.00%", "66.67%", "83.33%", "100.00%"]
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(8, 8))
    folder = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", "-g", "-1", "-s", "2")
    assert [line for line in folder.stderr.splitlines() if line.endswith("%")] == ["100.00%"] * 2


def test_dropin_with_tta_prints_a_percentage_per_tile_not_per_pass(tmp_path):
    # The reference runs a tile's eight flips of -x together and prints its line once;
    # a picture of one tile printed eight (12.50% ... 100.00%), a line per pass.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-s", "2", "-x")
    assert proc.stderr.splitlines() == ["100.00%"]
    Image.fromarray(picture(40, 70)).save(tmp_path / "wide.png")
    proc = run(DROPIN, "-i", tmp_path / "wide.png", "-o", tmp_path / "out.png", "-g", "-1", "-s", "2", "-t", "32",
               "-x")
    assert proc.stderr.splitlines() == ["16.67%", "33.33%", "50.00%", "66.67%", "83.33%", "100.00%"]


def test_the_dropins_percentages_leave_out_an_upscale_that_ended_without_its_result(capsys):
    # Told (0, total) for it, they would print 0.00% before its error.
    from ncnn_sr.console import tile_percent
    tile_percent(0, 4)
    tile_percent(1, 4)
    assert capsys.readouterr().err == "25.00%\n"


def test_the_dropins_percentages_say_each_tile_once_whatever_steps_make_them_up(capsys):
    # Steps of tiles (a staged run's windows, TTA's passes): a line a tile, to 100.00%,
    # where fewer steps than tiles would have left some tiles unsaid.
    from ncnn_sr.console import tile_percent
    from ncnn_sr.tiles import Steps

    for total, tiles in ((3, 4), (8, 1), (10, 4)):
        for done in range(1, total + 1):
            tile_percent(done, Steps(total, tiles))
        lines = capsys.readouterr().err.splitlines()
        assert lines == [f"{k / tiles * 100:.2f}%" for k in range(1, tiles + 1)], (total, tiles, lines)


def test_the_dropins_percentages_never_go_back_within_a_picture(capsys):
    # A tile size that ran out of memory is halved and the picture starts again: it said
    # 50.00%, then 6.25%. Silent until the retry passes where it was, the lines go on
    # as the reference's do (a wrapper reading them as a bar sees it only move on), the
    # warning before them saying why they paused; a picture's end, or an upscale that
    # ended without its result (0, total), starts the next picture's lines afresh.
    from ncnn_sr.console import tile_percent
    from ncnn_sr.tiles import Steps

    for done in (1, 2):
        tile_percent(done, 4)
    for done in range(1, 17):
        tile_percent(done, 16)
    assert capsys.readouterr().err.splitlines() == ["25.00%", "50.00%", *(f"{k * 6.25:.2f}%" for k in range(9, 17))]
    tile_percent(1, 2)  # the next picture
    tile_percent(0, 2)  # it failed
    for done in range(1, 17):  # a picture of one tile, 16 steps (TTA, the alpha through the model)
        tile_percent(done, Steps(16, 1))
    assert capsys.readouterr().err.splitlines() == ["50.00%", "100.00%"]


_OUT_OF_MEMORY_ONCE = """
import sys
from ncnn_sr import network
runs, real = [0], network.Network.run

def run(self, image, keep=None):
    runs[0] += 1
    if runs[0] == 3:  # two of its four tiles done
        raise network.NetFailure("injected out of memory")
    return real(self, image, keep)

network.Network.run = run
sys.argv = ["realesrgan-ncnn-vulkan", *sys.argv[1:]]
from ncnn_sr.entry import realesrgan_ncnn_vulkan
sys.exit(realesrgan_ncnn_vulkan())
"""


def test_the_dropins_percentages_go_on_past_an_out_of_memory_retry(tmp_path):
    (tmp_path / "oom.py").write_text(_OUT_OF_MEMORY_ONCE)
    Image.fromarray(picture(128, 128)).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "whole.png", "-g", "-1", "-s", "2", "-t", "32", "-n",
        "realesr-animevideov3")
    proc = run(sys.executable, tmp_path / "oom.py", "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1",
               "-s", "2", "-t", "64", "-n", "realesr-animevideov3")
    lines = proc.stderr.splitlines()
    assert lines[:2] == ["25.00%", "50.00%"] and "retrying with 32px tiles" in lines[2]
    assert lines[3:] == [f"{k * 6.25:.2f}%" for k in range(9, 17)]
    with Image.open(tmp_path / "out.png") as got, Image.open(tmp_path / "whole.png") as want:
        assert np.array_equal(np.asarray(got), np.asarray(want))  # the retry's picture, whole


class GoneTerminal(io.StringIO):
    """Standard error on a terminal that went away (a closed pipe beneath it) once
    ``gone`` is set: each write then fails."""

    gone = False

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.gone:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("bar", ["folder", "picture"])
def test_a_bar_whose_stderr_is_gone_loses_no_picture(tmp_path, monkeypatch, bar):
    # Each picture failed with "on_tile, the progress callback, failed: BrokenPipeError",
    # where the drop-in's percentages (tile_percent) leave it be.
    from ncnn_sr import Upscaler
    from ncnn_sr.console import Progress, TileBar
    from ncnn_sr.jobs import plan_jobs
    from ncnn_sr.lanes import Lane
    from ncnn_sr.pipeline import Pipeline

    pictures(tmp_path / "in", ["a.png", "b.png"], size=(80, 80))
    stderr = GoneTerminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    progress = Progress("ncnn-sr", 2, False, False, show=True) if bar == "folder" else TileBar("ncnn-sr")
    progress.bar.mininterval = 0  # each tile redraws it
    on_tile = progress.tile if bar == "folder" else progress
    stderr.gone = True
    outcomes = []
    with Upscaler("realesr-animevideov3-x2", device=-1, tile=32, threads=1) as up:  # 9 tiles a picture
        Pipeline([Lane(up, 1)], on_tile=on_tile, on_outcome=outcomes.append).run(
            plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert [(o.status, o.message) for o in outcomes] == [("ok", "")] * 2
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png"]
    # tqdm, raising from a write, kept its lock: closing the bar then waited for ever.
    within(30, lambda: progress.close())
    assert stderr.getvalue().count("ncnn-sr") == 1  # the bar as it opened, nothing after


def _shares(lines: list[str]) -> list[float]:
    """The share of a picture's tiles each of a TileBar's plain lines says ("2.5/16 tiles")."""
    counts = [re.match(r"ncnn-sr: ([\d.]+)/(\d+) tiles", line) for line in lines]
    return [float(count[1]) / int(count[2]) for count in counts if count]


def test_a_pictures_tile_bar_keeps_its_place_past_an_out_of_memory_retry(monkeypatch):
    # A tile size that ran out of memory is halved and the picture starts again: the
    # bar went from 2/4 back to 1/16. It stays where it was, in the new tiling's
    # count (8/16), until the retry passes it. An animation's frames alike.
    from ncnn_sr.console import TileBar

    monkeypatch.setattr(sys, "stderr", GoneTerminal())  # a terminal, never gone
    for frames, told in ((1, [(1, 4), (2, 4), *((done, 16) for done in range(1, 17))]),
                         (2, [*((done, 4) for done in range(1, 5)), (1, 4), (2, 4),
                              *((done, 16) for done in range(1, 17))])):
        tiles = TileBar("ncnn-sr", frames)
        shares = []
        for done, total in told:
            tiles(done, total)
            shares.append(tiles.bar.n / tiles.bar.total)
        assert shares == sorted(shares), (frames, shares)
        assert (tiles.bar.n, tiles.bar.total) == (16 * frames, 16 * frames), frames  # whole, in the new tiling
        tiles.close()


def test_a_single_pictures_tile_lines_never_go_back_past_an_out_of_memory_retry(tmp_path, in_process, monkeypatch):
    # Off a terminal, the same: "2/4 tiles", then "1/16 tiles".
    from ncnn_sr import console, network

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    runs, real = [0], network.Network.run

    def run_once_short(self, image, keep=None):
        runs[0] += 1
        if runs[0] == 3:  # two of its four tiles done
            raise network.NetFailure("injected out of memory")
        return real(self, image, keep)
    monkeypatch.setattr(network.Network, "run", run_once_short)
    Image.fromarray(picture(128, 128)).save(tmp_path / "in.png")
    status, said = in_process("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1", "-s", "2",
                              "-t", "64", "-n", "realesr-animevideov3")
    assert status == 0, said
    lines = said.splitlines()
    assert "retrying with 32px tiles" in lines[2], lines
    shares = _shares(lines)
    assert shares[:2] == [0.25, 0.5] and shares == sorted(shares) and shares[-1] == 1, lines
    assert re.fullmatch(r"ncnn-sr: 16/16 tiles, done in \d+ s", lines[-1]), lines


def test_an_animations_tile_lines_wait_for_the_frames_of_its_retry(tmp_path, in_process, monkeypatch):
    # A frame that failed after its last tile (as its result was resampled) stayed
    # counted, as did the frames done beside it, and the animation's retry on the other
    # lane counted each again: "3/3 tiles, done" came after its first frame of three.
    from ncnn_sr import console, engine

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    events, real_line, real_resize = [], console.TileBar._plain_line, engine.resize

    def plain_line(self, count, whole):
        events.append("whole" if count >= whole else "part")
        real_line(self, count, whole)

    def resize_failing_once(image, height, width):
        events.append("resize")
        if events.count("resize") == 1:
            raise RuntimeError("injected resize failure")
        return real_resize(image, height, width)
    monkeypatch.setattr(console.TileBar, "_plain_line", plain_line)
    monkeypatch.setattr(engine, "resize", resize_failing_once)
    # Four frames, the first to be resampled failing: the others cannot all be done before.
    frames = [Image.fromarray(picture(40, 40, seed=seed)) for seed in range(4)]
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    status, stderr = in_process("-i", tmp_path / "in.gif", "-o", tmp_path / "out.gif", "-g", "-1,-1", "-j", "1:1,1:1",
                                "-s", "3", "-n", "realesr-animevideov3")
    assert status == 0, stderr
    shares = _shares(stderr.splitlines())
    assert shares == sorted(shares) and shares[-1] == 1, stderr
    # The retry's last frame is resampled once its last tile is told: none before it.
    assert events[events.index("whole"):].count("resize") == 1, events


def test_what_a_display_keeps_of_a_picture_follows_it_across_threads_and_goes_with_it():
    # Kept by the thread, a picture gone to another device started its lines again;
    # kept for good, a freed picture's id, which a new one can take, would hold its mark.
    import gc
    from ncnn_sr.in_work import PerPicture, upscaling

    kept, picture, seen = PerPicture(), np.ones((4, 4, 3), np.uint8), []
    with upscaling(picture):
        kept.set((2, 4))
        kept.upscale_ended()  # it fails here, and may go on elsewhere

    def elsewhere():
        with upscaling(picture):
            seen.append(kept.get())
        seen.append(kept.get())  # this thread, no picture named: nothing
    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [(2, 4), None] and kept.get() is None
    kept.set((1, 3))  # a thread's own, where no picture is named
    kept.upscale_ended()
    assert kept.get() is None
    del picture
    gc.collect()
    assert kept._by_picture == {}


@pytest.mark.parametrize("display", ["percent lines", "tile lines"])
def test_a_pictures_progress_goes_on_where_it_was_on_another_device(tmp_path, monkeypatch, capsys, display):
    # A picture whose device failed goes to another, where it starts again: the
    # drop-in's lines said 25.00%, 50.00%, then 25.00% again (their mark was the
    # failed thread's); a single picture's tile lines 2/4, then 1/4.
    from ncnn_sr import Upscaler, console, network
    from ncnn_sr.jobs import plan_jobs
    from ncnn_sr.lanes import Lane
    from ncnn_sr.pipeline import Pipeline

    real, lost, failing = network.Network.run, [], set()

    def run_lost_once(self, image, keep=None):
        if threading.get_ident() in failing:
            failing.clear()
            lost.append(image.shape)
            raise RuntimeError("injected lost device")
        return real(self, image, keep)
    monkeypatch.setattr(network.Network, "run", run_lost_once)
    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    pictures(tmp_path / "in", ["a.png"], size=(128, 128))
    display = console.tile_percent if display == "percent lines" else console.TileBar("ncnn-sr")

    def on_tile(done: int, total: int) -> None:
        display(done, total)
        if not lost and done * 2 == total:  # its device is lost once half of it is done
            failing.add(threading.get_ident())
    outcomes = []
    with Upscaler("realesr-animevideov3-x2", device=-1, tile=64, threads=1) as one, \
            Upscaler("realesr-animevideov3-x2", device=-1, tile=64, threads=1) as other:
        Pipeline([Lane(one, 1), Lane(other, 1)], on_tile=on_tile, on_outcome=outcomes.append).run(
            plan_jobs(tmp_path / "in", tmp_path / "out").jobs)
    assert [outcome.status for outcome in outcomes] == ["ok"] and len(lost) == 1
    lines = capsys.readouterr().err.splitlines()
    if display is console.tile_percent:
        shares = [float(line[:-1]) / 100 for line in lines if line.endswith("%")]
    else:
        shares = _shares(lines)
    # Its tiles there need not be those of the first device (its tile size, its memory):
    # the second's first line says more than half.
    assert 0.5 in shares and shares == sorted(set(shares)) and shares[-1] == 1, lines


def test_a_single_picture_off_a_terminal_says_its_tiles_every_few_seconds(monkeypatch, capsys):
    # A folder's run and a video's write a plain line every few seconds where stderr is
    # no terminal (a log, nohup); a single photo, minutes on the CPU, said nothing at all.
    from ncnn_sr import console

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    tiles = console.TileBar("ncnn-sr")
    assert tiles.bar is None  # capsys's stderr is no terminal
    for done in (0, 1, 2, 4):  # 0: no tile, an upscale that ended without its result
        tiles(done, 4)
    tiles.close()
    lines = capsys.readouterr().err.splitlines()
    # found by a user audit: the log's last line was "2/4 tiles", as if it stopped there.
    assert [line.split(",")[0] for line in lines] == ["ncnn-sr: 1/4 tiles", "ncnn-sr: 2/4 tiles", "ncnn-sr: 4/4 tiles"]
    assert all(re.fullmatch(r"ncnn-sr: \d/4 tiles, [\d.]+/s, ETA \d+ s", line) for line in lines[:-1])
    assert re.fullmatch(r"ncnn-sr: 4/4 tiles, done in \d+ s", lines[-1])


def test_a_folder_off_a_terminal_says_the_share_of_tiles_done_every_few_seconds(tmp_path, in_process, monkeypatch):
    # A folder's plain line came only as a picture was done: a few photos on the CPU,
    # minutes each, left a log (nohup, docker run -t) silent between them, where the
    # bar on a terminal moves by each tile. (--tile-pad: the CPU runs a small picture whole.)
    from ncnn_sr import console

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(64, 64))
    status, said = in_process("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
                              "-g", "-1", "-j", "1:1:1", "-t", "32", "--tile-pad", "10")
    assert status == 0, said
    counts = [float(line.split()[1].split("/")[0]) for line in said.splitlines()
              if re.fullmatch(r"ncnn-sr: [\d.]+/2 pictures, [\d.]+/s, ETA \d+ s", line)]
    assert any(0 < count < 1 for count in counts) and any(1 < count < 2 for count in counts), said
    assert counts == sorted(counts) and counts[-1] == 2, said  # never back, and the last line the whole count


@pytest.mark.parametrize("command", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
def test_a_folder_off_a_terminal_says_a_count_whole_to_its_tenth_as_a_whole_number(command, tmp_path, monkeypatch):
    # found by a user audit: a log said "1/2 pictures", then "1.0/2 pictures", a
    # picture and a sixteenth cut to a tenth, as if the count had changed its kind.
    from click.testing import CliRunner
    from ncnn_sr import cli, console, dropin

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 0)
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(128, 128))  # 16 tiles of 32 each
    result = CliRunner().invoke(cli.main if command == "ncnn-sr" else dropin.main,
                                [str(arg) for arg in ("-i", tmp_path / "in", "-o", tmp_path / "out", "-n",
                                                      "realesr-animevideov3", "-s", "2", "-g", "-1", "-j", "1:1:1",
                                                      "-t", "32")])
    assert result.exit_code == 0, result.stderr
    counts = [line.split()[1].split("/")[0] for line in result.stderr.splitlines()
              if re.fullmatch(rf"{command}: [\d.]+/2 pictures, [\d.]+/s, ETA \d+ s", line)]
    if command == "ncnn-sr":
        assert "1" in counts and any(count.startswith("1.") and count != "1.0" for count in counts), result.stderr
        assert not [count for count in counts if count.endswith(".0")], counts
    else:  # the drop-in tells its tiles in the reference's percent lines, its count whole
        assert counts and all(count.isdigit() for count in counts), result.stderr


def test_a_single_picture_done_before_its_first_line_says_nothing(monkeypatch, capsys):
    from ncnn_sr import console

    monkeypatch.setattr(console._Meter, "PLAIN_EVERY", 3600)
    tiles = console.TileBar("ncnn-sr")
    for done in (1, 2, 3, 4):
        tiles(done, 4)
    tiles.close()
    assert capsys.readouterr().err == ""


def stderr_on_a_terminal(cmd, *args, columns: int) -> str:
    """What ``cmd`` writes on a pseudo-terminal of ``columns`` columns (0: one whose
    size nobody set, as `ssh -t` and `docker run -t` give from a script)."""
    import fcntl
    import pty
    import struct
    import termios

    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24 if columns else 0, columns, 0, 0))
    proc = subprocess.Popen([cmd, *map(str, args)], stdin=subprocess.DEVNULL, stdout=side, stderr=side)
    os.close(side)
    said = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the command has ended and closed its side
            break
        if not chunk:
            break
        said += chunk
    os.close(main)
    assert proc.wait(timeout=300) == 0, said
    return said.decode()


@pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are POSIX")
def test_a_terminal_of_unknown_size_still_shows_progress(tmp_path):
    # tqdm draws nothing on a terminal that states no size (it takes its rows for -1):
    # a folder on the CPU, hours, showed no progress at all, neither bar nor lines.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    flags = ["-i", tmp_path / "in", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    sized = stderr_on_a_terminal(NCNN_SR, *flags, "-o", tmp_path / "sized", columns=80)
    assert "ncnn-sr:   0%|" in sized  # the bar, as it opens
    unsized = stderr_on_a_terminal(NCNN_SR, *flags, "-o", tmp_path / "unsized", columns=0)
    assert "ncnn-sr: 2/2 pictures" in unsized, unsized


def test_two_cpu_lanes_share_a_folder(tmp_path):
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(6)])
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "-1,-1", "-t", "0,32", "-j", "1:1,2:2", "-v")
    assert len(list((tmp_path / "out").iterdir())) == 6
    assert proc.stderr.count("proc worker(s)") == 2


def test_a_lane_left_out_is_named_apart_from_the_lanes_of_its_device_that_run():
    from ncnn_sr.batch_cli import _left_out
    from ncnn_sr.devices import CPU, Device

    gpu = Device(0, "card", "discrete", 8000)
    assert _left_out([gpu, gpu], kept=[0]) == [f"{gpu} lane 2"]
    # A device none of whose lanes runs is said once, as a device.
    assert _left_out([CPU, CPU, gpu], kept=[2]) == ["CPU"]
    assert _left_out([gpu, CPU, CPU, gpu], kept=[2]) == [str(gpu), "CPU lane 1"]


def test_one_picture_with_two_devices_loads_the_model_on_the_first_alone(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    flags = ["-n", "realesr-animevideov3", "-s", "2", "-v"]
    two = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "two.png", *flags, "-g", "-1,-1")
    assert two.stderr.count("loading realesr-animevideov3-x2 on CPU") == 1, two.stderr
    # Named as the failure lines name two lanes of one device: "CPU is left out" was said
    # of the device the picture then ran on.
    assert "ncnn-sr: CPU lane 2 is left out: no picture of this run would reach it" in two.stderr.splitlines()
    run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "one.png", *flags, "-g", "-1")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "two.png")), np.asarray(Image.open(tmp_path / "one.png")))


def test_one_picture_gets_one_proc_worker_with_all_the_cores(tmp_path):
    # Two CPU workers would each get half the cores, and one picture keeps only one busy.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    one = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.png", "-n", "realesr-animevideov3",
              "-s", "2", "-g", "-1", "-j", "1:2:2", "-v")
    assert "1 proc worker(s)" in one.stderr
    # -v said "using 2" (the cores) of four asked for, then ran one.
    four = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.png", "-n", "realesr-animevideov3",
               "-s", "2", "-g", "-1", "-j", "1:4:2", "-v")
    assert "4 proc workers on CPU: using 1, one per picture\n" in four.stderr and "1 proc worker(s)" in four.stderr
    auto = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.png", *X2_CPU, "-v")
    assert "1 proc worker(s)" in auto.stderr and "using" not in auto.stderr  # no -j: nothing asked, nothing to say
    two = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
              "-g", "-1", "-j", "1:3:2", "-v")
    assert f"{min(2, os.cpu_count())} proc worker(s)" in two.stderr  # two pictures; at most one per core


def test_a_huge_proc_count_is_capped_instead_of_starting_threads_for_ever(tmp_path):
    # A video with -j 1:99999999999999999999:1 never began: it started threads until
    # killed (1:100000:1 took seconds a frame).
    clip = make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "o.mp4", "-g", "-1", "-s", "2",
               "-j", "1:99999999999999999999:1", "-v")
    assert f"99999999999999999999 proc workers on CPU: using {os.cpu_count()}" in proc.stderr
    assert (tmp_path / "o.mp4").exists()
    # A folder's run says the count asked for, not the one trimmed to its pictures.
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    folder = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-g", "-1", "-n", "realesr-animevideov3",
                 "-s", "2", "-j", "1:100000:1", "-v")
    assert f"100000 proc workers on CPU: using {min(os.cpu_count(), 3)}" in folder.stderr  # one per core or picture


def test_skip_existing_leaves_done_outputs(tmp_path):
    pictures(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"kept")
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "--skip-existing", "-n",
               "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"kept"
    assert size_of(tmp_path / "out" / "b.png") == (32, 24)
    assert "1 upscaled, 1 skipped, 0 failed" in proc.stderr


def test_a_folder_whose_outputs_are_all_there_says_no_progress_and_no_speed(tmp_path):
    # It said "2/2 pictures" and "... in 0.0 s (0.00 pictures/s)", of a run that
    # upscaled nothing.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU]
    run(NCNN_SR, *args)
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert re.fullmatch(r"ncnn-sr: 2 pictures: 0 upscaled, 2 skipped, 0 failed in \d+\.\d s\n", proc.stderr), \
        proc.stderr


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "gif", "avif"])
def test_skip_existing_writes_again_an_output_cut_short(tmp_path, fmt):
    # An output whose end is missing (a copy or another tool stopped while writing it,
    # a disk that filled) was taken for done: the picture was never upscaled again.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-f", fmt, *X2_CPU]
    run(NCNN_SR, *args)
    cut, whole = tmp_path / "out" / f"a.{fmt}", tmp_path / "out" / f"b.{fmt}"
    cut.write_bytes(cut.read_bytes()[:cut.stat().st_size // 2])
    kept = whole.stat().st_mtime_ns
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "1 upscaled, 1 skipped, 0 failed" in proc.stderr
    assert f"warning: {cut} is there but cut short (its end is missing): written again" in proc.stderr
    assert size_of(cut) == (32, 24) and whole.stat().st_mtime_ns == kept


def test_skip_existing_leaves_a_file_it_cannot_tell_is_cut_short(tmp_path):
    # Only a file that starts as a picture of its format is judged by its end: one
    # that does not (made by hand, say) is left as it is.
    pictures(tmp_path / "in", ["a.png"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"\x89PN")  # shorter than a PNG's signature
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "--skip-existing", *X2_CPU)
    assert "0 upscaled, 1 skipped, 0 failed" in proc.stderr and "cut short" not in proc.stderr
    assert (tmp_path / "out" / "a.png").read_bytes() == b"\x89PN"


def test_a_folder_whose_every_output_is_there_is_skipped_without_loading_the_model(tmp_path, in_process, loads):
    # A finished batch resumed loaded the model, seconds on a GPU, for no picture (and
    # -g 0 on lavapipe warned that it was slow).
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "out" / name).write_bytes(b"done before")
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "--skip-existing", *X2_CPU]
    status, said = in_process(*args)
    assert status == 0 and loads == [], said
    assert said.splitlines()[-1].startswith("ncnn-sr: 3 pictures: 0 upscaled, 3 skipped, 0 failed in ")
    (tmp_path / "out" / "b.png").unlink()
    status, said = in_process(*args)
    assert status == 0 and len(loads) == 1, said
    assert said.splitlines()[-1].startswith("ncnn-sr: 3 pictures: 1 upscaled, 2 skipped, 0 failed in ")
    assert size_of(tmp_path / "out" / "b.png") == (32, 24)
    assert (tmp_path / "out" / "a.png").read_bytes() == b"done before"


def test_a_single_picture_whose_output_is_there_is_skipped_without_loading_the_model(tmp_path, in_process, loads):
    pictures(tmp_path, ["a.png"])
    (tmp_path / "b.png").write_bytes(b"done before")
    status, said = in_process("-i", tmp_path / "a.png", "-o", tmp_path / "b.png", "--skip-existing", *X2_CPU)
    assert (status, said, loads) == (0, f"ncnn-sr: {tmp_path / 'b.png'} exists: skipped (--skip-existing)\n", [])


@pytest.mark.parametrize("flags, error", [
    (["-n", "nosuch"], "ncnn-sr: error: unknown model 'nosuch': "),
    (["-j", "1:0:1"], "ncnn-sr: error: invalid jobs_proc thread count argument: "),
    (["-t", "16"], "ncnn-sr: error: invalid tilesize argument: "),
    (["-g", "99"], "ncnn-sr: error: invalid gpu device 99: this machine has "),
])
@pytest.mark.parametrize("one", [False, True])
def test_a_run_with_every_output_there_still_refuses_a_wrong_model_or_flag(flags, error, one, tmp_path, in_process,
                                                                             loads):
    # Skipped without loading the model, an unknown model was no error: a typo in a
    # script went unseen until it had work to do.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "out" / name).write_bytes(b"done before")
    paths = [tmp_path / "in" / "a.png", tmp_path / "out" / "a.png"] if one else [tmp_path / "in", tmp_path / "out"]
    status, said = in_process("-i", paths[0], "-o", paths[1], "--skip-existing", "-s", "2", "-g", "-1", *flags)
    assert status == 1 and said.startswith(error) and said.count("\n") == 1, said
    assert loads == []


def test_an_output_written_again_keeps_the_mode_its_owner_gave_it(tmp_path):
    # A user who made an output private (chmod 600) had it world-readable again, at
    # the umask's mode, once a later run wrote it over.
    pictures(tmp_path / "in", ["a.png", "b.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    run(NCNN_SR, *args)
    (tmp_path / "out" / "a.png").chmod(0o600)
    new_mode = (tmp_path / "out" / "b.png").stat().st_mode & 0o777
    (tmp_path / "out" / "b.png").unlink()
    run(NCNN_SR, *args)
    assert (tmp_path / "out" / "a.png").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "out" / "b.png").stat().st_mode & 0o777 == new_mode  # a new file: as before


def test_skip_existing_does_not_take_a_stem_clash_output_for_another(tmp_path):
    # a.jpg outputs a.png and a.png outputs a.png.png: with a.png missing, a.png.png
    # was taken for a.jpg's result (as if a.png.png were where a transparent a.jpg
    # goes) and a.jpg was never upscaled.
    pictures(tmp_path / "in", ["a.jpg", "a.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    run(NCNN_SR, *args)
    (tmp_path / "out" / "a.png").unlink()
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "1 upscaled, 1 skipped, 0 failed" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.png.png"]


def test_skip_existing_after_a_picture_of_the_same_stem_sorting_first_was_added_loses_none(tmp_path):
    # a.jpg made a.png; a.bmp, added, sorts first and takes a.png: a.png was skipped
    # as a.bmp's, so a.bmp was never upscaled and a.jpg's picture was there twice.
    colours = {"a.bmp": (0, 0, 255), "a.jpg": (255, 0, 0), "a.png": (0, 255, 0)}
    (tmp_path / "in").mkdir()
    for name in ("a.jpg", "a.png"):
        Image.new("RGB", (8, 8), colours[name]).save(tmp_path / "in" / name)
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    run(NCNN_SR, *args)
    Image.new("RGB", (8, 8), colours["a.bmp"]).save(tmp_path / "in" / "a.bmp")
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "2 upscaled, 1 skipped, 0 failed" in proc.stderr
    assert f"{tmp_path / 'out' / 'a.png'} is written again: {tmp_path / 'out' / 'a.jpg.png'} is missing" in proc.stderr
    for output, source in (("a.png", "a.bmp"), ("a.jpg.png", "a.jpg"), ("a.png.png", "a.png")):
        with Image.open(tmp_path / "out" / output) as im:
            assert np.abs(np.asarray(im.convert("RGB"), int)[4, 4] - colours[source]).max() < 16, output
    again = run(NCNN_SR, *args, "--skip-existing")  # every output there: nothing is redone
    assert "0 upscaled, 3 skipped, 0 failed" in again.stderr


def test_skip_existing_after_a_picture_of_the_same_stem_sorting_first_was_removed_takes_none_for_another(tmp_path):
    # a.jpg made a.png and a.png made a.png.png; a.jpg removed, a.png took the plain
    # name a.png, where a.jpg's picture was: skipped as done, its own output never
    # looked at. Its output stays where the earlier run put it, and a.png is left.
    colours = {"a.jpg": (255, 0, 0), "a.png": (0, 255, 0)}
    (tmp_path / "in").mkdir()
    for name, colour in colours.items():
        Image.new("RGB", (8, 8), colour).save(tmp_path / "in" / name)
    out = tmp_path / "out"
    args = ["-i", tmp_path / "in", "-o", out, "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    run(NCNN_SR, *args)
    (tmp_path / "in" / "a.jpg").unlink()
    for _ in range(2):  # and again: nothing moves
        proc = run(NCNN_SR, *args, "--skip-existing", "-v")
        assert "0 upscaled, 1 skipped, 0 failed" in proc.stderr
        assert f"{tmp_path / 'in' / 'a.png'} -> {out / 'a.png.png'} skipped (output exists)" in proc.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a.png", "a.png.png"]
        for output, source in (("a.png", "a.jpg"), ("a.png.png", "a.png")):
            with Image.open(out / output) as im:
                assert np.abs(np.asarray(im.convert("RGB"), int)[4, 4] - colours[source]).max() < 16, output
    # Without --skip-existing every picture is written at its name of this run.
    run(NCNN_SR, *args)
    with Image.open(out / "a.png") as im:
        assert np.abs(np.asarray(im.convert("RGB"), int)[4, 4] - colours["a.png"]).max() < 16


# SIGXCPU: a soft CPU time limit reached (ulimit -St, a batch scheduler's), which killed the
# command unsaid (its default: a core dump, status 152), its partial files left.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU])
def test_interrupted_batch_leaves_no_partial_file_and_resumes(sig, tmp_path):
    count = 10
    pictures(tmp_path / "in", [f"p{i:02d}.png" for i in range(count)], size=(40, 40))
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesrgan-x4plus-anime", "-g", "-1", "-j", "1:1:1"]
    # The command, as nohup wants, goes on after a signal ignored when it started: the
    # tests run under nohup (SIGHUP ignored, inherited) once made it finish all ten.
    proc = subprocess.Popen([NCNN_SR, *map(str, args)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "out").is_dir() or not any(p.suffix == ".png" for p in (tmp_path / "out").iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    # 128 + the signal, as a shell reports a command that died of it (and the reference,
    # which has no handler, gives): 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP; a
    # SIGTERM gave 130, which a service manager or a script took for a Ctrl-C.
    assert proc.returncode == 128 + sig, err
    assert "interrupted" in err and "no partial files" in err
    left = sorted((tmp_path / "out").iterdir())
    assert not [p for p in left if p.name.startswith(".")], "temporary files left behind"
    assert 1 <= len(left) < count
    for p in left:
        assert size_of(p) == (160, 160)  # every file there is whole
    resumed = run(NCNN_SR, *args, "--skip-existing")
    assert f"{count - len(left)} upscaled, {len(left)} skipped, 0 failed" in resumed.stderr
    assert len(list((tmp_path / "out").iterdir())) == count


def test_an_interrupted_dropin_folder_says_failed_only_where_a_picture_failed(tmp_path):
    # Its summary leaves out "0 failed" for the reference's wrappers, which take the word
    # for a failure; its line after Ctrl-C still said it.
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(10)], size=(40, 40))
    err = ctrl_c_after_the_first_picture(DROPIN, tmp_path)
    assert "interrupted: " in err and " skipped, " in err and "failed" not in err


def ctrl_c_after_the_first_picture(cmd, tmp_path) -> str:
    """``cmd`` upscaling folder in/ into out/ one picture at a time, a Ctrl-C once the
    first picture is written; its stderr, after checking it ended as a Ctrl-C does."""
    proc = subprocess.Popen([cmd, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesrgan-x4plus-anime",
                             "-g", "-1", "-j", "1:1:1"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "out").is_dir() or not any(p.suffix == ".png" for p in (tmp_path / "out").iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return err


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_an_interrupted_folder_names_the_pictures_that_failed_above_its_last_line(tmp_path, cmd):
    # As a summary has them named above it: the line after Ctrl-C counted them alone.
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(10)], size=(40, 40))
    (tmp_path / "in" / "a.png").write_bytes(b"")
    err = ctrl_c_after_the_first_picture(cmd, tmp_path)
    prog = Path(cmd).name
    lines = err.splitlines()
    assert lines[-2] == f"{prog}: failed: a.png", lines
    # and how to go on, as the line of a run stopped by a full disk says it: run again
    # as it was, the command wrote every picture again.
    how = "the same command" if cmd == NCNN_SR else "ncnn-sr"
    assert re.fullmatch(rf"{re.escape(prog)}: interrupted: \d+ upscaled, 0 skipped, 1 failed, \d+ not done; "
                        f"no partial files were left; {how} with --skip-existing goes on from there",
                        lines[-1]), lines


# The command named, run as installed, but for one thing: a call into ncnn's network
# from a worker thread (a picture's; the model's probes run in the main thread) says so
# on stderr, then lasts for ever, as one call on a large picture can last minutes and
# nothing stops it. A test sends its signal once one has begun: a fixed wait for that
# came too early on a slow machine, and after the picture's calls on a fast one (the
# picture here, in stages, is some 80 calls of a second each on two cores).
IN_NCNN = """
import sys, threading
from ncnn_sr import entry, network
extract = network.Network.extract
def lasting(self, inputs, output):
    if threading.current_thread() is threading.main_thread():
        return extract(self, inputs, output)
    print("test: into ncnn", file=sys.stderr, flush=True)
    extract(self, inputs, output)
    threading.Event().wait()
network.Network.extract = lasting
sys.argv[:2] = [sys.argv[1]]
{"ncnn-sr": entry.ncnn_sr, "realesrgan-ncnn-vulkan": entry.realesrgan_ncnn_vulkan}[sys.argv[0]]()
"""


class Said:
    """A child's standard output and error, read by threads as they come: a test waits
    for a line with a deadline (a loop over a silent child's pipe waited for ever), and
    nothing is lost (communicate() after such a loop reads past what it had buffered)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.out, self.err = proc, [], []
        self._changed = threading.Condition()
        self._open = {"out": proc.stdout is not None, "err": True}
        self._readers = [threading.Thread(target=self._read, args=(name, stream, lines), daemon=True)
                         for name, stream, lines in (("out", proc.stdout, self.out), ("err", proc.stderr, self.err))
                         if stream is not None]
        for reader in self._readers:
            reader.start()

    def _read(self, name, stream, lines) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._open[name] = False
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Returns once a line of stderr holds ``text``."""
        with self._changed:
            self._changed.wait_for(lambda: any(text in line for line in self.err) or not self._open["err"], timeout)
            if any(text in line for line in self.err):
                return
        self.proc.kill()
        pytest.fail(f"no line with {text!r} on stderr within {timeout} s:\n{''.join(self.err)}")

    def ended(self, timeout: float = 60) -> tuple[str, str]:
        """Its whole stdout and stderr once it has ended."""
        try:
            self.proc.wait(timeout)
        finally:
            self.proc.kill()
        for reader in self._readers:
            reader.join(timeout)
        return "".join(self.out), "".join(self.err)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_does_not_wait_for_a_picture_in_ncnn(sig, tmp_path):
    # A call of ncnn, which nothing stops, can last minutes (this picture was one call
    # on the CPU, over a minute here, before the drop-in ran it in stages): the command
    # waited for it and ignored a second Ctrl-C or SIGTERM meanwhile.
    Image.fromarray(picture(320, 320)).save(tmp_path / "in.png")
    said = Said(subprocess.Popen([sys.executable, "-c", IN_NCNN, "realesrgan-ncnn-vulkan", "-i", tmp_path / "in.png",
                                  "-o", tmp_path / "out.png", "-n", "realesrgan-x4plus", "-g", "-1", "-v"],
                                 stderr=subprocess.PIPE, text=True))
    said.wait_for("test: into ncnn")
    assert said.proc.poll() is None
    said.proc.send_signal(sig)
    sent = time.monotonic()
    _, err = said.ended()  # not waiting for the call, which never ends
    assert said.proc.returncode == 128 + sig, err
    assert time.monotonic() - sent < 10
    assert err.splitlines()[-1] == "realesrgan-ncnn-vulkan: interrupted: no output was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


# A Ctrl-C sent from inside a single picture's run: from the function named, which then
# goes on once the run has heard it (the pipeline cancelled), as a function is under way
# when a user's Ctrl-C comes. "loading" is in the main thread, before any pipeline.
CTRL_C_IN = """
import os, signal, sys, threading
from ncnn_sr import engine, loading, pipeline
heard = threading.Event()
cancel = pipeline.Pipeline.cancel
pipeline.Pipeline.cancel = lambda self: (cancel(self), heard.set())[0]
owner, name = {"loading": (engine.Upscaler, "_load"), "reading": (loading, "read_image"),
               "upscaling": (engine.Upscaler, "upscale"), "saving": (pipeline, "write_image")}[sys.argv[1]]
real = getattr(owner, name)
def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        assert heard.wait(120)
    return real(*args, **kwargs)
setattr(owner, name, interrupted)
sys.argv[:2] = ["ncnn-sr"]
from ncnn_sr.entry import ncnn_sr
ncnn_sr()
"""


@pytest.mark.parametrize("where", ["loading", "reading", "upscaling", "saving"])
def test_a_single_picture_interrupted_says_whether_its_output_was_written_whatever_it_was_doing(where, tmp_path):
    # It said "interrupted before any picture was written" while the model loaded, and a
    # folder's "interrupted: 0 upscaled, 0 skipped, 0 failed, 1 not done; ..." once it
    # was upscaling; now, as a single video: a save under way is finished first.
    pictures(tmp_path, ["in.png"])
    proc = subprocess.run([sys.executable, "-c", CTRL_C_IN, where, "-i", str(tmp_path / "in.png"), "-o",
                           str(tmp_path / "new" / "out.png"), *X2_CPU], capture_output=True, text=True, timeout=300)
    if where == "saving":
        assert (proc.returncode, proc.stderr) == (130, f"ncnn-sr: interrupted after {tmp_path / 'new' / 'out.png'} was "
                                                       "written whole\n")
        assert size_of(tmp_path / "new" / "out.png") == (32, 24) and os.listdir(tmp_path / "new") == ["out.png"]
    else:
        assert (proc.returncode, proc.stderr) == (130, "ncnn-sr: interrupted: no output was written\n")
        assert os.listdir(tmp_path) == ["in.png"]  # nor the folder made for it


def test_a_picture_for_standard_output_interrupted_as_it_was_saved_was_not_written(tmp_path):
    # Its file is handed to standard output only once the run has ended well.
    pictures(tmp_path, ["in.png"])
    proc = subprocess.run([sys.executable, "-c", CTRL_C_IN, "saving", "-i", str(tmp_path / "in.png"), "-o", "-",
                           *X2_CPU], capture_output=True, timeout=300)
    assert (proc.returncode, proc.stderr, proc.stdout) == (130, b"ncnn-sr: interrupted: no output was written\n", b"")


@pytest.mark.parametrize("command, streams", [("ncnn-sr", ["-i", "-", "-o", "-"]),
                                              ("realesrgan-ncnn-vulkan", ["-i", "/dev/stdin", "-o", "OUT"])])
def test_a_picture_from_standard_input_interrupted_inside_ncnn_leaves_no_copy_of_it(command, streams, tmp_path):
    # found by a user audit: Ctrl-C inside ncnn's upscale ends the process at once
    # (os._exit), past the temporary folder that holds standard input's copy: each one
    # left a /tmp/ncnn-sr-stream-* as large as the picture.
    Image.fromarray(picture(400, 400)).save(tmp_path / "in.png")
    (tmp_path / "tmp").mkdir()
    args = [str(tmp_path / "out.png") if word == "OUT" else word for word in streams]
    with open(tmp_path / "in.png", "rb") as stdin:
        said = Said(subprocess.Popen([sys.executable, "-c", IN_NCNN, command, *args, *X2_CPU, "-t", "0", "-v"],
                                     stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "TMPDIR": str(tmp_path / "tmp")},
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)))
    said.wait_for("test: into ncnn")  # the picture is being upscaled
    assert len(os.listdir(tmp_path / "tmp")) == 1  # the copy of standard input
    assert said.proc.poll() is None
    said.proc.send_signal(signal.SIGINT)
    out, err = said.ended()
    assert said.proc.returncode == 130, err
    assert err.splitlines()[-1].endswith(": interrupted: no output was written") and out == ""
    assert os.listdir(tmp_path / "tmp") == []


def test_a_batch_under_nohup_goes_on_after_sighup(tmp_path):
    # nohup ignores SIGHUP so that a closed terminal does not stop the work: the
    # command must not take it as Ctrl-C then.
    count = 3
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(count)], size=(40, 40))
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesrgan-x4plus-anime", "-g", "-1", "-j", "1:1:1"]
    proc = subprocess.Popen([NCNN_SR, *map(str, args)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not (tmp_path / "out").is_dir() or not any(p.suffix == ".png" for p in (tmp_path / "out").iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"{count} upscaled" in err
    assert len(list((tmp_path / "out").iterdir())) == count


def on_a_terminal_closed_once_a_picture_is_written(cmd: list, out: Path) -> subprocess.Popen:
    """``cmd`` started on a terminal of its own (a pseudo-terminal, its controlling
    one), closed as a window is once the first picture is in ``out``: the system
    hangs it up, sending SIGHUP, and each write to it fails from then on (EIO)."""
    import fcntl
    import pty
    import termios

    terminal, its_end = pty.openpty()

    def take_the_terminal():
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as an interactive shell starts it
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([str(c) for c in cmd], stdin=its_end, stdout=its_end, stderr=its_end,
                            start_new_session=True, preexec_fn=take_the_terminal)
    os.close(its_end)
    os.set_blocking(terminal, False)
    deadline = time.monotonic() + 120
    while not out.is_dir() or not any(p.suffix == ".png" for p in out.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        try:
            os.read(terminal, 65536)  # what it says, read as a terminal does
        except (BlockingIOError, OSError):
            pass
        time.sleep(0.02)
    os.close(terminal)
    proc.wait(timeout=60)
    return proc


@pytest.mark.parametrize("command", [NCNN_SR, DROPIN])
def test_a_folder_whose_terminal_closes_ends_with_sighups_status(command, tmp_path):
    # Its last line, written once the terminal was gone, failed (EIO), and its error
    # ended the command with status 1: a closed terminal is SIGHUP's 129 as a kill -HUP
    # is, the line unsaid, whatever else fails for the terminal gone.
    count = 12
    pictures(tmp_path / "in", [f"p{i:02d}.png" for i in range(count)], size=(40, 40))
    out = tmp_path / "out"
    proc = on_a_terminal_closed_once_a_picture_is_written(
        [command, "-i", tmp_path / "in", "-o", out, "-n", "realesrgan-x4plus-anime", "-g", "-1", "-j", "1:1:1"], out)
    assert proc.returncode == 128 + signal.SIGHUP
    left = sorted(out.iterdir())
    assert not [p for p in left if p.name.startswith(".")] and 1 <= len(left) < count
    assert all(size_of(p) == (160, 160) for p in left)


# --- inputs that are not (good) pictures -----------------------------------------------

def test_each_broken_input_has_its_outcome_and_the_batch_goes_on(tmp_path):
    folder = tmp_path / "in"
    pictures(folder, ["good.png", "фото 🌸.png"])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("I am not a picture")
    whole = (folder / "good.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    bomb_png(folder / "bomb.png")
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    proc = run(NCNN_SR, "-i", folder, "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1
    err = proc.stderr
    assert "empty.png: not a picture" in err
    assert "text.png: not a picture" in err
    assert "cut.png: broken or truncated" in err
    assert "bomb.png: too many pixels" in err and "decompression bomb" in err
    assert "frames" not in err  # anim.gif is an animated png of every frame
    assert "7 pictures: 3 upscaled, 0 skipped, 4 failed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anim.png", "good.png", "фото 🌸.png"]
    with Image.open(tmp_path / "out" / "anim.png") as im:
        assert im.n_frames == 3 and im.size == (16, 12)


def animated_gif(path: Path, count: int = 3) -> Path:
    frames = [Image.fromarray(picture(12, 16, seed=i)) for i in range(count)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
    return path


@pytest.mark.parametrize("out", ["o.gif", "o.webp", "o.png"])
def test_an_animated_gif_gives_an_animation_of_every_frame(out, tmp_path):
    animated_gif(tmp_path / "anim.gif")
    proc = run(NCNN_SR, "-i", "anim.gif", "-o", out, "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", cwd=tmp_path)
    assert "warning" not in proc.stderr
    written = read_frames(tmp_path / out)[0]
    assert [f.shape[:2] for f in written.frames] == [(24, 32)] * 3
    assert (written.durations, written.plays) == ((80, 80, 80), 0)


def test_an_animated_gif_asked_as_jpg_warns_which_formats_keep_every_frame(tmp_path):
    animated_gif(tmp_path / "anim.gif")
    proc = run(NCNN_SR, "-i", "anim.gif", "-o", "o.jpg", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.stderr == ("ncnn-sr: warning: anim.gif has 3 frames: upscaling the first only (.jpg holds no "
                           "animation: write webp, png or gif for every frame)\n")
    assert size_of(tmp_path / "o.jpg") == (32, 24)


def transparent_animated_gif(path: Path, count: int = 3) -> Path:
    frames = []
    for i in range(count):
        pixels = picture(12, 16, channels=4, seed=i)
        pixels[..., 3] = 255
        pixels[3:7, 2 + i:6 + i, 3] = 0  # a hole that moves
        frames.append(Image.fromarray(pixels))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0, disposal=2)
    return path


def test_an_animation_with_transparency_asked_as_jpg_is_its_first_frame_as_a_png_beside_it(tmp_path):
    # A jpg asked for is a still of the first frame; transparency sends that still to
    # o.jpg.png, as any picture's. It went there as an APNG of every frame, said only
    # as transparency, where an opaque animation (or one clear in a later frame alone)
    # gave its first frame: what -f jpg made hung on the first frame's alpha.
    transparent_animated_gif(tmp_path / "anim.gif")
    proc = run(NCNN_SR, "-i", "anim.gif", "-o", "o.jpg", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.stderr == ("ncnn-sr: warning: anim.gif has transparency, which JPEG cannot store: writing o.jpg.png\n"
                           "ncnn-sr: warning: anim.gif has 3 frames: upscaling the first only (.jpg holds no "
                           "animation: write webp, png or gif for every frame)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif", "o.jpg.png"]
    with Image.open(tmp_path / "o.jpg.png") as im:
        assert (im.format, getattr(im, "n_frames", 1), im.mode, im.size) == ("PNG", 1, "RGBA", (32, 24))
        assert not getattr(im, "is_animated", False)


def test_a_folder_of_animations_asked_as_jpg_gives_a_still_of_each_and_counts_each_once(tmp_path):
    (tmp_path / "in").mkdir()
    animated_gif(tmp_path / "in" / "opaque.gif")
    transparent_animated_gif(tmp_path / "in" / "clear.gif")
    proc = run(NCNN_SR, "-i", "in", "-o", "out", "-f", "jpg", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clear.jpg.png", "opaque.jpg"]
    for name in ("clear.jpg.png", "opaque.jpg"):
        with Image.open(tmp_path / "out" / name) as im:
            assert getattr(im, "n_frames", 1) == 1 and im.size == (32, 24)
    for name in ("clear.gif", "opaque.gif"):
        assert f"{name} has 3 frames: upscaling the first only (.jpg holds no animation" in proc.stderr
    assert "2 pictures: 2 upscaled, 0 skipped, 0 failed" in proc.stderr


def half_clear(count: int) -> list:
    """``count`` frames 12x16 whose every pixel is a little under half opaque, as a
    shadow or a glass sticker's: GIF, clear or opaque, makes all of them clear."""
    frames = []
    for i in range(count):
        pixels = picture(12, 16, channels=4, seed=i)
        pixels[..., 3] = 100
        frames.append(Image.fromarray(pixels))
    return frames


@pytest.mark.parametrize("source", ["still.png", "anim.png", "anim.webp"])
def test_partial_transparency_asked_as_gif_is_said_to_be_cut_at_half(source, tmp_path):
    # GIF holds a pixel clear or opaque: these pictures came out wholly clear, an
    # empty GIF, without a word.
    frames = half_clear(1 if source.startswith("still") else 3)
    frames[0].save(tmp_path / source, save_all=len(frames) > 1, append_images=frames[1:], duration=80, loop=0,
                   lossless=True)
    proc = run(NCNN_SR, "-i", source, "-o", "o.gif", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.stderr == (f"ncnn-sr: warning: {source} has partial transparency, which GIF cannot store: "
                           "writing o.gif clear where under half opaque, opaque elsewhere (png or webp keep it)\n")
    with Image.open(tmp_path / "o.gif") as im:  # what the warning is for
        assert (np.asarray(im.convert("RGBA"))[..., 3] == 0).all()


@pytest.mark.parametrize("source", ["anim.gif", "anim.webp"])
def test_transparency_that_is_clear_or_opaque_asked_as_gif_is_kept_without_a_word(source, tmp_path):
    transparent_animated_gif(tmp_path / "anim.gif")
    if source != "anim.gif":
        with Image.open(tmp_path / "anim.gif") as im:
            im.save(tmp_path / source, save_all=True, lossless=True)
    proc = run(NCNN_SR, "-i", source, "-o", "o.gif", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.stderr == ""
    written = read_frames(tmp_path / "o.gif")[0]
    assert len(written.frames) == 3 and all((f[..., 3] == 0).any() for f in written.frames)


def test_a_sixteen_bit_apng_written_as_an_animation_keeps_sixteen_bits(tmp_path):
    # "16-bit stays 16-bit in PNG output" held for a still, not for an APNG's frames,
    # which came out 8-bit (with a warning).
    import struct
    from conftest import png_data
    frames = [picture(8, 8, seed=i, dtype=np.uint16) for i in range(2)]
    control = [png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", n, 8, 8, 0, 0, 50, 1000, 0, 0)) for n in (0, 1)]
    first = png_bytes(frames[0], 16, 2, png_chunk(b"acTL", struct.pack(">II", 2, 0)), control[0])
    second = png_chunk(b"fdAT", struct.pack(">I", 2) + png_data(frames[1], 16))
    (tmp_path / "deep.png").write_bytes(first[:-12] + control[1] + second + first[-12:])
    proc = run(NCNN_SR, "-i", "deep.png", "-o", "o.png", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert (tmp_path / "o.png").read_bytes()[24] == 16 and Image.open(tmp_path / "o.png").n_frames == 2
    for out in ("o.webp", "o.gif"):  # 8-bit formats, as a still's
        proc = run(NCNN_SR, "-i", "deep.png", "-o", out, "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
                   cwd=tmp_path)
        assert "warning" not in proc.stderr


@pytest.mark.parametrize("pix_fmt, channels", [("rgb48be", 3), ("rgba64be", 4)])
def test_a_sixteen_bit_apng_ffmpeg_wrote_keeps_sixteen_bits(pix_fmt, channels, tmp_path):
    # FFmpeg's APNG (its later frames boxes of what changed, blended over) as a user
    # exports one: its frames, upscaled, are a 16-bit APNG, its every sample kept.
    base = picture(12, 16, channels=channels, seed=3, dtype=np.uint16)
    with av.open(str(tmp_path / "deep.png"), "w", format="apng") as out:
        stream = out.add_stream("apng", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 12, pix_fmt
        for index in range(3):
            frame = base.copy()
            frame[2:4, 2 + index:5 + index] = 1000 * index
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format=pix_fmt)))
        out.mux(stream.encode())
    assert b"fdAT" in (tmp_path / "deep.png").read_bytes()
    proc = run(NCNN_SR, "-i", "deep.png", "-o", "o.png", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    written = read_frames(tmp_path / "o.png")[0]
    assert (tmp_path / "o.png").read_bytes()[24] == 16 and len(written.frames) == 3
    assert written.frames[0].dtype == np.uint16 and written.frames[0].shape == (24, 32, channels)
    assert (written.frames[1] % 257 != 0).mean() > 0.9  # not 8 bits widened (v * 257)


def test_one_animation_gets_a_proc_worker_per_frame_its_frames_being_shared(tmp_path):
    animated_gif(tmp_path / "anim.gif")
    every = run(NCNN_SR, "-i", "anim.gif", "-o", "o.webp", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
                "-j", "1:2:2", "-v", cwd=tmp_path)
    assert f"{min(2, os.cpu_count())} proc worker(s)" in every.stderr
    first = run(NCNN_SR, "-i", "anim.gif", "-o", "o.jpg", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
                "-j", "1:2:2", "-v", cwd=tmp_path)
    assert "1 proc worker(s)" in first.stderr  # its first frame alone is upscaled


def test_the_dropin_upscales_the_first_frame_as_the_reference_does(tmp_path):
    animated_gif(tmp_path / "anim.gif")
    proc = run(DROPIN, "-i", "anim.gif", "-o", "o.png", "-s", "2", "-g", "-1", cwd=tmp_path)
    assert "anim.gif has 3 frames: upscaling the first only\n" in proc.stderr
    with Image.open(tmp_path / "o.png") as im:
        assert getattr(im, "n_frames", 1) == 1 and im.size == (32, 24)


def test_a_phone_mpo_jpeg_is_one_picture_without_a_frames_warning(tmp_path):
    # Its second frame is a preview or another view, not animation: every photo warned.
    views = [Image.fromarray(picture(8, 8, seed=i)) for i in range(2)]
    views[0].save(tmp_path / "photo.jpg", format="MPO", save_all=True, append_images=views[1:])
    proc = run(NCNN_SR, "-i", "photo.jpg", "-o", "o.png", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert "frames" not in proc.stderr and "warning" not in proc.stderr
    assert size_of(tmp_path / "o.png") == (16, 16)


def test_a_multi_page_tiff_gives_its_first_page_as_one_picture(tmp_path):
    pages = [Image.fromarray(picture(8, 8, seed=i)) for i in range(3)]
    pages[0].save(tmp_path / "scan.tiff", save_all=True, append_images=pages[1:])
    proc = run(NCNN_SR, "-i", "scan.tiff", "-o", "o.webp", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert "scan.tiff: a TIFF of 3 pages: reading the first only" in proc.stderr
    with Image.open(tmp_path / "o.webp") as im:
        assert getattr(im, "n_frames", 1) == 1 and im.size == (16, 16)


def run_read_only(out: Path, cmd: list) -> subprocess.CompletedProcess:
    """``cmd`` run with the folder ``out`` (made if missing) read-only."""
    out.mkdir(exist_ok=True)
    if os.geteuid() == 0:  # root ignores permissions: the folder mounted read-only in a private namespace
        script = f'mount --bind "{out}" "{out}" && mount -o remount,bind,ro "{out}" && exec "$@"'
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", *cmd]
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("root without mount namespaces: cannot make a read-only folder")
    else:
        out.chmod(0o500)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        out.chmod(0o700)


def library_in_read_only(out: Path, imports: str, call: str) -> subprocess.CompletedProcess:
    """The library's ``call`` (after ``from ncnn_sr... import``-lines ``imports``) run in
    a fresh Python with ``out`` read-only; an NcnnSrError it raises goes to stderr as
    'refused: MESSAGE', so a test sees it is one, not an OSError's traceback."""
    script = (f"import sys\nfrom ncnn_sr import NcnnSrError\n{imports}\n"
              f"try:\n    {call}\nexcept NcnnSrError as e:\n    sys.exit(f'refused: {{e}}')\n")
    return run_read_only(out, [sys.executable, "-c", script])


READ_ONLY = "Read-only file system" if os.geteuid() == 0 else "Permission denied"


def test_read_only_output_folder_is_said_clearly(tmp_path):
    pictures(tmp_path / "in", ["a.png", "b.png"])
    out = tmp_path / "out"
    proc = run_read_only(out, [NCNN_SR, "-i", str(tmp_path / "in"), "-o", str(out), "-n", "realesr-animevideov3",
                               "-s", "2", "-g", "-1"])
    assert proc.returncode == 1
    # Said before any picture is upscaled: each was upscaled only to fail, a line each
    # (a folder without write permission), or the first was (a read-only file system).
    assert proc.stderr.strip().splitlines() == [f"ncnn-sr: error: cannot write into {out}: {READ_ONLY}"]


def test_bench_results_into_a_read_only_folder_are_refused_before_the_runs(tmp_path):
    # Checked with os.access, which root, a read-only mount and Windows all pass: the
    # runs were timed, then their results could not be written.
    out = tmp_path / "out"
    proc = run_read_only(out, [NCNN_SR, "bench", "-n", "realesr-animevideov3-x2", "-g", "-1", "-t", "whole",
                               "--size", "32x32", "--repeat", "1", "--json", str(out / "rows.json")])
    assert proc.returncode == 2 and f"cannot write into {out}: {READ_ONLY}" in proc.stderr, proc.stderr
    assert "ms" not in proc.stdout and not list(out.iterdir())


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_picture_into_a_read_only_folder_is_one_line_before_a_model_loads(cmd, tmp_path):
    # The picture was upscaled, minutes of a photo on the CPU, only to fail as it was written.
    pictures(tmp_path, ["a.png"])
    out = tmp_path / "out"
    proc = run_read_only(out, [cmd, "-i", str(tmp_path / "a.png"), "-o", str(out / "b.png"), "-n",
                               "realesr-animevideov3", "-s", "2", "-g", "-1", "-v"])
    assert proc.returncode == 1
    failed = f"{tmp_path / 'a.png'} failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.strip().splitlines() == [f"{os.path.basename(cmd)}: error: {failed}cannot write into {out}: "
                                                f"{READ_ONLY}"]


def test_recursive_pictures_bound_for_a_read_only_sub_folder_fail_before_they_are_upscaled(tmp_path):
    # The sub-folder was there, so only writing found it read-only: each picture for it
    # was upscaled first, and the first one's failure stopped the run.
    pictures(tmp_path / "in", ["a.png", "sub/b.png", "sub/c.png", "sub/deeper/d.png"])
    out = tmp_path / "out"
    out.mkdir()
    proc = run_read_only(out / "sub", [NCNN_SR, "-i", str(tmp_path / "in"), "-o", str(out), "-r",
                                       "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"])
    assert proc.returncode == 1
    for name in ["b.png", "c.png", "deeper/d.png"]:
        assert f"error: {tmp_path / 'in' / 'sub' / name}: cannot write into {out / 'sub'}: {READ_ONLY}\n" \
            in proc.stderr, proc.stderr
    assert "4 pictures: 1 upscaled, 0 skipped, 3 failed" in proc.stderr
    assert size_of(out / "a.png") == (32, 24)


# The library run as a user runs it: the output folder made read-only (chmod) once the
# first picture is written; each upscale counted, by its one tile.
_MADE_READ_ONLY = """
import sys
from pathlib import Path
from ncnn_sr import Upscaler
from ncnn_sr.jobs import plan_jobs
from ncnn_sr.pipeline import Lane, Pipeline

out = Path(sys.argv[2])
upscales = []

def written(outcome):
    if outcome.status == "ok":
        out.chmod(0o555)

with Upscaler("realesr-animevideov3-x2", device=-1, threads=1) as up:
    summary = Pipeline([Lane(up, 1)], 1, 1, queue_size=1, on_outcome=written,
                       on_tile=lambda done, total: upscales.append(done)).run(plan_jobs(sys.argv[1], out).jobs)
print(summary.ok, summary.failed, len(upscales))
print(summary.stopped)
for failure in summary.failures:
    print(failure.message)
"""


def test_a_folder_made_read_only_during_the_run_stops_it(tmp_path):
    # Its folder was found writable once, when the first picture was checked: each
    # later picture was upscaled, only to fail as it was written (578 of 600 pictures
    # of 32x32, a line each, after the chmod); then, once the folder was looked at
    # again, each failed before it was upscaled, still a line each (565 lines of 600).
    from conftest import run_breaking_a_folder

    names = [f"p{i:02d}.png" for i in range(12)]
    pictures(tmp_path / "in", names)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_breaking_a_folder([sys.executable, "-c", _MADE_READ_ONLY, str(tmp_path / "in"), str(out)], out)
    assert proc.returncode == 0, proc.stderr
    counts, stopped, *failures = proc.stdout.splitlines()
    ok, failed, upscaled = map(int, counts.split())
    assert (ok, failed) == (1, 1), proc.stdout
    assert stopped == f"cannot write into {out}: Permission denied" and failures == [stopped]
    assert upscaled <= 8, proc.stdout  # 5 here: the first, and 4 in flight
    assert sorted(os.listdir(out)) == ["p00.png"]  # no temporary file left


# A command run as a user runs it, its folder broken once the second picture is
# written: made read-only, the output folder removed, or the input folder renamed; or
# its disk full from the third picture on.
_BROKEN_MID_RUN = """
import errno, os, shutil, sys, threading
from ncnn_sr import images, pipeline

action, folder, prog, *args = sys.argv[1:]
real, lock, written = pipeline.write_image, threading.Lock(), []
encode, encoded = images._encode, []

def full(*given):
    with lock:
        encoded.append(given)
        refused = action == "full" and len(encoded) > 2
    if refused:
        raise OSError(errno.ENOSPC, "No space left on device")
    encode(*given)


def remove():
    # Again until it is gone, as a user would run rm -rf again: the other save thread's
    # part, made while rmtree emptied the folder, left it there ("Directory not empty").
    while os.path.exists(folder):
        shutil.rmtree(folder, ignore_errors=True)

def write_image(*given, **options):
    real(*given, **options)
    with lock:
        written.append(given[0])
        if len(written) == 2:
            {"chmod": lambda: os.chmod(folder, 0o555), "remove": remove,
             "rename": lambda: os.rename(folder, folder + ".moved"), "full": lambda: None}[action]()

pipeline.write_image, images._encode = write_image, full
sys.argv = [prog, *args]
from ncnn_sr import entry
entry.ncnn_sr() if prog == "ncnn-sr" else entry.realesrgan_ncnn_vulkan()
"""


@pytest.mark.parametrize("prog", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
@pytest.mark.parametrize("action", ["chmod", "remove", "rename", "full"])
def test_a_folder_broken_during_a_run_stops_it_in_one_line(tmp_path, prog, action):
    # Each later picture failed in a line of its own: 249 lines of 300 pictures with the
    # output folder made read-only 4 s in, 255 with the input folder renamed; the output
    # folder removed was made again, and the last line said 299 of 300 upscaled where
    # 281 files were there.
    from conftest import run_breaking_a_folder

    if os.name == "nt" and action != "full":
        pytest.skip("Windows ignores a folder's read-only mode, and moves no folder with a file open in it")
    pictures(tmp_path / "in", [f"p{i:02d}.png" for i in range(24)])
    src, out = tmp_path / "in", tmp_path / "out"
    out.mkdir()
    broken = src if action == "rename" else out
    cmd = [sys.executable, "-c", _BROKEN_MID_RUN, action, str(broken), prog, "-i", str(src), "-o", str(out),
           "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    proc = run_breaking_a_folder(cmd, out)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.endswith("%")]  # the drop-in's progress
    cause = {"chmod": re.escape(f"cannot write into {out}: Permission denied"),
             "remove": re.escape(f"{out} was removed during the run (what was written there is gone)"),
             "rename": re.escape(f"{src} was removed or renamed during the run"),
             "full": re.escape(f"cannot write {out}{os.sep}") + r"p\d\d\.png: No space left on device"}[action]
    once = "it is back" if action == "rename" else "it can be written"
    how = "the same command" if prog == "ncnn-sr" else "ncnn-sr"
    # Removed, what was written went with it: nothing for --skip-existing to go on from.
    then = ("nothing is left to go on from: the same command starts over" if action == "remove"
            else f"once {once}, {how} with --skip-existing goes on from there")
    said = re.fullmatch(rf"{re.escape(prog)}: stopped: {cause}; (\d+) upscaled, 0 skipped, 1 failed, "
                        rf"(\d+) not done; {then}", lines[-1])
    assert said, lines
    # The drop-in says the picture that stopped it in the reference's word, which its
    # wrappers look for, as it does on a full disk.
    failed = [line for line in lines[:-1] if "error" in line or "failed" in line]
    assert len(failed) == (prog != "ncnn-sr"), lines
    upscaled, left = map(int, said.groups())
    assert upscaled >= 2 and upscaled + 1 + left == 24
    if action != "remove":  # what was written is there, whole, and nothing else
        # A picture being written as the folder was made read-only leaves its hidden
        # temporary file, which cannot be removed there: named in a warning.
        left = sorted(name for name in os.listdir(out) if name.startswith("."))
        for name in left:
            assert f"{prog}: warning: {out / name}: a temporary file that could not be removed (Permission " \
                f"denied)" in lines, lines
        written = sorted(name for name in os.listdir(out) if not name.startswith("."))
        assert len(written) == upscaled and all(size_of(out / name) == (32, 24) for name in written), written
        assert not left or action == "chmod"
    else:
        assert not out.exists()


@pytest.mark.parametrize("prog", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
def test_a_folders_last_count_says_the_picture_a_full_disk_failed(tmp_path, prog):
    # Its last picture failed on a full disk, the count said "3/3 pictures", as if all
    # were written, above "stopped: ...; 2 upscaled, 0 skipped, 1 failed, 0 not done".
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    out.mkdir()
    proc = run(sys.executable, "-c", _BROKEN_MID_RUN, "full", out, prog, "-i", tmp_path / "in", "-o", out,
               "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", "-j", "1:1:1", check_ok=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    counts = [line for line in lines if re.match(rf"{re.escape(prog)}: [\d.]+/3 pictures", line)]
    assert re.fullmatch(rf"{re.escape(prog)}: 3/3 pictures \(2 upscaled, 1 failed\), [\d.]+/s, ETA 0 s", counts[-1]), \
        lines
    assert re.fullmatch(rf"{re.escape(prog)}: stopped: .*; 2 upscaled, 0 skipped, 1 failed, 0 not done; .*",
                        lines[-1]), lines
    # c.png, which the stop's line is about, is not named again above it.
    assert not any(line.startswith(f"{prog}: failed:") for line in lines), lines
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]


@pytest.mark.parametrize("prog", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
def test_a_stopped_folder_names_the_pictures_that_failed_on_their_own_above_its_last_line(tmp_path, prog):
    # As a summary has them named above it: the stop's line counted them alone.
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    (tmp_path / "in" / "0.png").write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    proc = run(sys.executable, "-c", _BROKEN_MID_RUN, "full", out, prog, "-i", tmp_path / "in", "-o", out,
               "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", "-j", "1:1:1", check_ok=False)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.endswith("%")]  # the drop-in's progress
    # Not c.png, which the full disk failed: the stop's line says it.
    assert lines[-2] == f"{prog}: failed: 0.png", lines
    assert re.fullmatch(rf"{re.escape(prog)}: stopped: cannot write .*c\.png: No space left on device; 2 upscaled, "
                        "0 skipped, 2 failed, 0 not done; .*", lines[-1]), lines


def test_a_folders_bar_says_the_pictures_that_failed(monkeypatch):
    # On a terminal the bar stood at 3/3 with one of them failed.
    from types import SimpleNamespace

    from ncnn_sr.console import Progress
    from ncnn_sr.outcomes import Outcome

    stderr = GoneTerminal()  # a terminal, never gone
    monkeypatch.setattr(sys, "stderr", stderr)
    progress = Progress("ncnn-sr", 3, False, False, show=True)
    progress.bar.mininterval = 3600  # a redraw held back, as between outcomes close together
    job = SimpleNamespace(source=Path("c.png"))
    for status in ("ok", "skipped", "failed"):
        progress(Outcome(job, status, "cannot write c.png: No space left on device" if status == "failed" else ""))
    drawn = stderr.getvalue().split("\r")[-1]
    assert re.search(r" 3(\.0)?/3 .*, 1 upscaled, 1 skipped, 1 failed\]", drawn), drawn
    progress.close()


def test_a_folder_run_whose_pictures_are_all_done_in_a_read_only_folder_is_not_refused(tmp_path):
    # A finished batch run again with --skip-existing writes nothing: it was refused.
    pictures(tmp_path / "in", ["a.png", "b.jpg"])
    out = tmp_path / "out"
    pictures(out, ["a.png", "b.png"])
    proc = run_read_only(out, [NCNN_SR, "-i", str(tmp_path / "in"), "-o", str(out), "--skip-existing",
                               "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"])
    assert proc.returncode == 0, proc.stderr
    assert "2 pictures: 0 upscaled, 2 skipped, 0 failed" in proc.stderr


def test_a_picture_skipped_as_done_in_a_read_only_folder_is_not_refused(tmp_path):
    pictures(tmp_path, ["a.png"])
    out = tmp_path / "out"
    pictures(out, ["b.png"])
    proc = run_read_only(out, [NCNN_SR, "-i", str(tmp_path / "a.png"), "-o", str(out / "b.png"), "--skip-existing",
                               "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"ncnn-sr: {out / 'b.png'} exists: skipped (--skip-existing)"


def test_unknown_model_is_one_clear_error(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-n", "nope", check_ok=False)
    assert proc.returncode == 1 and "unknown model 'nope'" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_model_folder_given_to_the_dropin_that_does_not_exist_is_an_error(tmp_path):
    # The installed models ran in its stead, unsaid; only the default -m models falls back.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", "-m", tmp_path / "nonexistent",
               cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    said = f"realesrgan-ncnn-vulkan: error: in.png failed: model folder {tmp_path / 'nonexistent'} does not exist"
    assert proc.stderr.strip() == said
    assert not (tmp_path / "o.png").exists()
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", "-m", "models", cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)


def test_a_file_given_to_the_dropin_as_its_model_folder_is_said_to_be_none(tmp_path):
    # It said "file in.png/realesr-animevideov3-x2.param not found in the -m folder;
    # leave -m out", a path through a file, as if a folder lacked the model.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", "-m", "in.png", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == "realesrgan-ncnn-vulkan: error: in.png failed: model folder in.png is not a folder\n"
    assert not (tmp_path / "o.png").exists()


def test_a_model_folder_given_to_the_dropin_without_the_model_is_refused_as_the_reference_fails(tmp_path):
    # -m mine ran the installed model in its stead, unsaid, where the reference looks
    # in mine alone and fails; mine's model was meant.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "other.param").write_text("7767517\n")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", "-m", "mine", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"realesrgan-ncnn-vulkan: error: in.png failed: model realesr-animevideov3-x2: file "
                           f"{Path('mine/realesr-animevideov3-x2.param')} not found in the -m folder; leave -m out "
                           "to run the installed one\n")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("name, there", [("mine", "Mine"), ("realesr-animevideov3-x2", "Realesr-animevideov3-x2")])
def test_a_model_in_the_dropins_folder_named_in_another_case_is_offered(name, there, tmp_path):
    # found by a user audit: ncnn-sr says "did you mean models/Mine.param?" where the
    # drop-in said only "not found in the -m folder" (and "leave -m out" for a catalog
    # name, where the folder's own file was meant).
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    copy_model("realesr-animevideov3-x2", tmp_path / "mine", there)
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-m", "mine", "-n", name, cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"realesrgan-ncnn-vulkan: error: in.png failed: model {name}: file "
                           f"{Path('mine', name + '.param')} not "
                           f"found in the -m folder: did you mean {Path('mine', there + '.param')}?\n")
    assert not (tmp_path / "o.png").exists()


def test_pnnxs_files_in_the_dropins_folder_are_offered_for_their_name_without_ncnn(tmp_path):
    # pnnx writes NAME.ncnn.param: -n NAME said only "not found in the -m folder".
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    copy_model("realesr-animevideov3-x2", tmp_path / "mine", "x2.ncnn")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-m", "mine", "-n", "x2", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"realesrgan-ncnn-vulkan: error: in.png failed: model x2: file {Path('mine', 'x2.param')} "
                           "not "
                           f"found in the -m folder: did you mean {Path('mine', 'x2.ncnn.param')}?\n")
    assert not (tmp_path / "o.png").exists()


def test_the_dropins_own_models_folder_without_the_model_is_passed_over_unsaid(tmp_path):
    # The reference looks beside itself next, where its models are: the installed ones here.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    (tmp_path / "models").mkdir()
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert "warning" not in proc.stderr and size_of(tmp_path / "o.png") == (16, 16)


def test_a_file_named_models_where_the_dropin_runs_is_passed_over_as_a_missing_folder(tmp_path):
    # The default -m models falls back to the installed models when it is missing; a
    # file of that name (a note, a script) failed every run that gave no -m.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    (tmp_path / "models").write_text("a note")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)
    proc = run(DROPIN, "-i", "in.png", "-o", "p.png", "-g", "-1", "-s", "2", "-m", "models/", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == "realesrgan-ncnn-vulkan: error: in.png failed: model folder models is not a folder\n"
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("folder", [None, "mine"])
def test_a_dropin_model_name_with_a_slash_is_found_in_the_model_folder_as_by_the_reference(folder, tmp_path):
    # The reference opens MODELDIR/NAME.param, so -n sub/x is MODELDIR/sub/x.param; it
    # was looked for as sub/x.param where the command ran.
    from test_cli import in_place_first_model

    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / (folder or "models") / "sub").mkdir(parents=True)
    in_place_first_model(tmp_path / (folder or "models") / "sub")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-n", "sub/inplace-x2", "-s", "2", "-g", "-1",
        *(["-m", folder] if folder else []), cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (14, 12)


def test_an_empty_model_folder_is_refused_by_the_dropin(tmp_path):
    # An unset variable (-m "$MODELS") read as the current folder, and the installed
    # models ran in its stead, unsaid; the reference looks for /NAME.param and fails.
    # Found by a docs audit: the refusal lacked "failed", which the reference's
    # "fopen /NAME.param failed" has and the README promises of every error that ends
    # a run before anything is written (Upscayl takes stderr without it for a success).
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-m", "", "-s", "2", "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == "realesrgan-ncnn-vulkan: error: in.png failed: -m is empty: give a model folder\n"
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flags,wording", [
    (["-j", "0:2:2"], "invalid thread count argument"),
    (["-j", "1:2:0"], "invalid thread count argument"),
    (["-j", "12"], "invalid thread count argument"),
    (["-j", "1:0:2"], "invalid jobs_proc thread count argument"),
    (["-j", "1:2,2:2"], "invalid jobs_proc thread count argument"),
    (["-t", "16"], "invalid tilesize argument"),
    (["-t", "0,0,0"], "invalid tilesize argument"),
    (["-t", "16px"], "invalid tilesize argument"),  # read as 16, as the reference reads it
    (["-g", "9"], "invalid gpu device"),
    (["-g", "x"], "invalid gpu device"),
    (["-s", "0"], "invalid scale argument"),
    (["-s", "abc"], "invalid scale argument"),
])
def test_bad_flag_values_use_the_reference_wording(flags, wording, tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *flags, check_ok=False)
    assert proc.returncode == 1, proc.stderr
    assert wording in proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("cmd", [DROPIN, NCNN_SR])
@pytest.mark.parametrize("flags, said", [
    (["-t", "16"], "invalid tilesize argument: -t 16: tile size must be 0 (auto) or a whole number of at least 32"),
    (["-t", "2 0"], "invalid tilesize argument: -t '2 0': tile size must be 0 (auto)"),
    (["-j", "0:2:2"], "invalid thread count argument: -j 0:2:2: give load:proc:save, each at least 1"),
    (["-j", "1:0:2"], "invalid jobs_proc thread count argument: -j 1:0:2: give one proc count of at least 1"),
])
def test_a_bad_tile_or_thread_count_names_the_flag_and_value_given(cmd, flags, said, tmp_path):
    # -s, -f and -g named the flag and the value refused; -t and -j named neither,
    # which left a wrapper's user to guess which of its settings was wrong.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(cmd, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-g", "-1", *flags, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("cmd", [DROPIN, NCNN_SR])
@pytest.mark.parametrize("flags, said", [
    (["-s", "2_0"], "invalid scale argument: -s 2_0: give a positive number, such as 2, 3 or 4"),
    (["-s", "\u0662"], "invalid scale argument: -s '\u0662': give a positive number, such as 2, 3 or 4"),
    (["-t", "3_2"], "invalid tilesize argument"),
    (["-t", "\u0663\u0662"], "invalid tilesize argument"),
    (["-j", "1:1_0:1"], "invalid jobs_proc thread count argument"),
    (["-j", "\u0661:2:2"], "invalid thread count argument"),
    (["-g", "0_0"], "invalid gpu device: -g 0_0: "),
    (["-g", "-1,\u0660"], "invalid gpu device: -g '-1,\u0660': "),
])
def test_a_number_flag_takes_plain_ascii_digits_as_the_references_atoi(cmd, flags, said, tmp_path):
    # Python's int() and float() read -s 2_0 as 20 and Arabic-Indic digits as digits:
    # a typo ran at another scale, tile or device, unsaid.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(cmd, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *flags, check_ok=False)
    if cmd == NCNN_SR and flags[0] == "-s":  # a click option: its usage error
        assert proc.returncode == 2 and f"{flags[1]!r} is not a number" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 1, proc.stderr
        assert said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flags, read", [
    (["-s", "2x"], "-s 2x read as 2"),
    (["-s", " +2 times"], "-s ' +2 times' read as 2"),
    (["-t", "32px"], "-t 32px read as 32"),
    (["-t", "abc"], "-t abc read as 0 (auto)"),
    (["-t", "auto"], "-t auto read as 0 (auto)"),
    (["-g", "-1,-1", "-t", "0,48px"], "-t 0,48px read as 0,48"),
    (["-j", "1:2x:2"], "-j 1:2x:2 read as 1:2:2"),
    (["-j", "1:2:3 savers"], "-j '1:2:3 savers' read as 1:2:3"),
    # sscanf stops at the x, before the save count: its default
    (["-j", "3x:1:4"], "-j 3x:1:4 read as 3:1:2"),
    (["-g", "-1,-1", "-j", "1:1x,2y"], "-j 1:1x,2y read as 1:1,2:2"),
    # sscanf reads the save count from the third part; atoi, the proc count up to its colon
    (["-j", "1:2:2:2"], "-j 1:2:2:2 read as 1:2:2"),
    (["-j", "1:2:3:4"], "-j 1:2:3:4 read as 1:2:3"),
    (["-g", "-1,-1", "-j", "2:1,1:3:"], "-j 2:1,1:3: read as 2:1,1:3"),
])
def test_dropin_numbers_followed_by_letters_are_read_as_the_references_atoi(flags, read, tmp_path):
    # Scripts written for the reference ran: its atoi reads -s 2x as 2, -t 200px as 200
    # and a word as 0 (auto). The drop-in refused them as invalid.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    args = ["-i", "in.png", "-o", "o.png", "-n", "realesr-animevideov3", *flags]
    args += [] if "-s" in flags else ["-s", "2"]
    args += [] if "-g" in flags else ["-g", "-1"]
    proc = run(DROPIN, *args, cwd=tmp_path)
    assert proc.stderr.splitlines()[0] == f"realesrgan-ncnn-vulkan: warning: {read}, as realesrgan-ncnn-vulkan reads it"
    assert size_of(tmp_path / "o.png") == (16, 16)


def test_dropin_gpu_followed_by_letters_is_read_as_the_references_atoi(tmp_path):
    # -g 9x is the reference's GPU 9, which this machine has not (as -g 9).
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "9x", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.splitlines()[0] == \
        "realesrgan-ncnn-vulkan: warning: -g 9x read as 9, as realesrgan-ncnn-vulkan reads it"
    assert "invalid gpu device 9: this machine has " in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_dropin_gpu_zero_followed_by_letters_is_gpu_zero_not_auto(tmp_path):
    # The reference's atoi reads -g 0x as GPU 0, a device: the warning called it
    # "0 (auto)", as -t 0x is, and -g auto may pick another device (or the CPU).
    # Said first, whether this machine has a GPU 0 or not (refused then, as -g 0).
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", "0x", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.stderr.splitlines()[0] == \
        "realesrgan-ncnn-vulkan: warning: -g 0x read as 0, as realesrgan-ncnn-vulkan reads it"


@pytest.mark.parametrize("flags, said", [
    # the reference's 0: no model file (-x0), a crash
    (["-s", "x2"], "invalid scale argument: -s x2: give a positive number, such as 2, 3 or 4"),
    # its 2, where 2.5, 20 or 25 was typed
    (["-s", "2.5x"], "invalid scale argument: -s 2.5x: give a positive number, such as 2, 3 or 4"),
    (["-s", "2_0x"], "invalid scale argument: -s 2_0x: give a positive number, such as 2, 3 or 4"),
    (["-s", "2,5"], "invalid scale argument: -s 2,5: give a positive number, such as 2, 3 or 4"),
    (["-s", "0x"], "invalid scale argument: -s 0x: give a positive number, such as 2, 3 or 4"),
    (["-t", "32.5"], "invalid tilesize argument"),
    (["-t", "\u0663\u0662px"], "invalid tilesize argument"),
    # its GPU 0, where the word named none; its refusal of -1
    (["-g", "abc"], "invalid gpu device: -g abc: "),
    (["-g", "-1x"], "invalid gpu device: -g -1x: "),
    (["-j", "1:2.5:2"], "invalid jobs_proc thread count argument"),
])
def test_dropin_numbers_the_references_atoi_reads_as_another_are_refused(flags, said, tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", *flags, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flags, said", [
    (["-s", ""], "error: invalid scale argument: -s '': give a positive number, such as 2, 3 or 4"),
    (["-s", " "], "error: invalid scale argument: -s ' ': give a positive number, such as 2, 3 or 4"),
    (["-s", "1e400"], "error: invalid scale argument: -s 1e400 is too large: give a positive number, such as 2, 3 "
                      "or 4"),
    (["-f", ""], "error: invalid format argument: -f '': give png, jpg or webp"),
    (["-f", "x y"], "error: invalid format argument: -f 'x y': give png, jpg or webp"),
    # the devices are read as the reference's atoi reads them: these name none
    (["-g", "0 1"], "error: invalid gpu device: -g '0 1': give auto, cpu, -1 or a device index (0 or gpu0), or "
                    "several devices as 0,1"),
    (["-g", "0,, "], "error: invalid gpu device: -g '0,, ': give auto, cpu, -1 or a device index (0 or gpu0), or "
                     "several devices as 0,1"),
])
def test_dropin_says_a_value_given_as_a_shell_word(flags, said, tmp_path):
    # -s "" was "invalid scale argument: -s : give ...", the empty value unseen.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "out", *flags, check_ok=False)
    assert (proc.returncode, proc.stderr) == (1, f"realesrgan-ncnn-vulkan: {said}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, said", [
    (["-t", "a b"], "-t 'a b' read as 0 (auto), as realesrgan-ncnn-vulkan reads it"),
    (["-f", "we bp"], "-f 'we bp' ignored: o.png is written as png, as its extension says"),
])
def test_dropin_warns_of_a_value_given_as_a_shell_word(flags, said, tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", *X2_CPU, *flags, cwd=tmp_path)
    assert proc.stderr.splitlines()[0] == f"realesrgan-ncnn-vulkan: warning: {said}"
    assert size_of(tmp_path / "o.png") == (16, 16)


@pytest.mark.parametrize("jobs", ["1:2", "1: 1"])
def test_dropin_jobs_without_a_save_count_keep_the_default_as_the_reference(jobs, tmp_path):
    # The reference reads -j with sscanf("%d:%*[^:]:%d"): 1:2 is load 1, proc 2 and the
    # default save count; the drop-in refused it as an invalid thread count.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", "2", "-g", "-1", "-j", jobs, cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)


@pytest.mark.parametrize("jobs, read", [("1:2:", "1:2:2"), (":2:2", "1:2:2"), (" :1: ", "1:1:2"), (":1:3", "1:1:3"),
                                         ("2:1,1:", "2:1,1:2")])
def test_dropin_jobs_with_an_empty_load_or_save_count_keep_the_default_as_the_reference(jobs, read, tmp_path):
    # The reference's sscanf leaves a count it cannot read at its default (1 load, 2 save):
    # -j "$LOAD:2:$SAVE" with a variable unset ran there and was refused here.
    from ncnn_sr import dropin

    assert dropin.reference_jobs(jobs) == read
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", "2", "-g", "-1" if jobs.count(",") == 0 else "-1,-1", "-j", jobs,
        cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)


@pytest.mark.parametrize("jobs, read", [("1:2:2:2", "1:2:2"), ("1:2,2:2:9", "1:2,2:2"), ("1:2:3x:4", "1:2:3"),
                                         ("1:2::4", "1:2:2"), ("1:2:3:4,5", "1:2,5:3"), ("3x:1:4:5", "3:1:2"),
                                         ("1:2:2,3", "1:2,3:2")])
def test_dropin_jobs_of_more_than_three_parts_are_read_as_the_reference_reads_them(jobs, read):
    # -j 1:2:2:2 was refused; the reference's sscanf("%d:%*[^:]:%d") reads the load and
    # save counts from the first and third parts (%d stops at a comma), and its
    # comma-list parser a proc count from each comma item of what follows the first
    # colon, with atoi, which stops at a colon.
    from ncnn_sr import dropin

    assert dropin.reference_jobs(jobs, atoi=True) == read
    assert dropin.reference_jobs(jobs) == jobs  # as typed: refused, unless read so, with a warning


@pytest.mark.parametrize("jobs", ["1::2", "1:,2:2", "::", "1::2:2"])
def test_dropin_empty_proc_count_is_refused_as_zero_by_the_reference(jobs, tmp_path):
    # The reference's atoi reads an empty proc count as 0, which it refuses.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", "2", "-g", "-1,-1", "-j", jobs, cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1 and "invalid jobs_proc thread count argument" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("tile", ["", " "])
def test_dropin_empty_tile_size_is_auto_as_the_references_atoi(tile, tmp_path):
    # -t "$TILE" with TILE unset: the reference's atoi reads 0 (auto), as -g "" is auto here.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", "2", "-g", "-1", "-t", tile, cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)


@pytest.mark.parametrize("tile", ["0,", ",", ",0", " ,32"])
def test_dropin_empty_entry_of_a_tile_list_is_auto_as_the_references_atoi(tile, tmp_path):
    # The reference reads each part of -t with atoi: "0," is 0,0. An empty entry was refused.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", "2", "-g", "-1,-1", "-t", tile, cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)
    # Two entries for one device: refused, as the reference refuses a count that is not -g's.
    proc = run(DROPIN, "-i", "in.png", "-o", "p.png", "-s", "2", "-g", "-1", "-t", tile, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "invalid tilesize argument" in proc.stderr and "but -g gives 1 device" in proc.stderr
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("cmd, tile", [(DROPIN, "32.0"), (NCNN_SR, "32.0"), (NCNN_SR, "abc")])
def test_a_tile_size_that_is_no_whole_number_is_told_so(cmd, tile, tmp_path):
    # "must be 0 (auto) or at least 32" left 32.0 looking right.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(cmd, "-i", "in.png", "-o", "o.png", "-g", "-1", "-t", tile, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "must be 0 (auto) or a whole number of at least 32" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("gpu", ["abc", "9", "-2", ",", "0,abc", "gpu9", "-1,9", "0.5"])
def test_dropin_bad_gpu_errors_hold_what_upscayl_looks_for(gpu, tmp_path):
    # Upscayl takes a bad GPU from stderr holding "invalid gpu" (case-sensitive), as the
    # reference says it; else it waits for an output that never comes.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.png", "-g", gpu, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "invalid gpu" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_number_flags_with_a_sign_or_spaces_around_still_run(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run(DROPIN, "-i", "in.png", "-o", "o.png", "-s", " +2 ", "-t", " +32 ", "-g", " -1", "-j", "1: 2 :1",
        cwd=tmp_path)
    assert size_of(tmp_path / "o.png") == (16, 16)


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
@pytest.mark.parametrize("spec", ["gpu9", "GPU 9", "gpu:9", "cpu,gpu9"])
def test_a_gpu_named_as_devices_write_it_is_that_index(cmd, spec, tmp_path):
    # "GPU 9" as str(Device) and the devices command write it was an invalid list.
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    proc = run(cmd, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-g", spec, check_ok=False)
    assert proc.returncode == 1 and "invalid gpu device 9: this machine has " in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("flags, said", [
    (["-s", "0"], "invalid scale argument: -s 0: give a positive number, such as 2, 3 or 4"),
    (["-s", "x\n2"], "invalid scale argument: -s x$'\\n'2: give a positive number, such as 2, 3 or 4"),
    (["-f", "bmp"], "invalid format argument: -f bmp: give png, jpg or webp"),
    (["-f", "gif"], "invalid format argument: -f gif: give png, jpg or webp (ncnn-sr writes gif and avif)"),
])
def test_a_bad_scale_or_format_is_an_error_line_naming_the_value_and_what_to_give(flags, said, tmp_path):
    # Alone of the flags' errors they lacked "error:", the value and what to give instead.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(DROPIN, "-i", "in", "-o", "out", *flags, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"realesrgan-ncnn-vulkan: error: {said}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_an_ignored_format_is_named_as_it_was_given(cmd, tmp_path):
    # -f jpeg was said as "-f jpg ignored": a -f the user never typed.
    pictures(tmp_path, ["a.png"])
    proc = run(cmd, "-i", "a.png", "-o", "o.png", "-f", "jpeg", *X2_CPU, cwd=tmp_path)
    assert "warning: -f jpeg ignored: o.png is written as png, as its extension says" in proc.stderr
    assert "-f jpg" not in proc.stderr
    assert size_of(tmp_path / "o.png") == (32, 24)


def test_an_unknown_format_is_refused_for_a_folder_and_ignored_for_a_file_as_by_the_reference(tmp_path):
    # The reference takes a file output's format from its extension, whatever -f says.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(DROPIN, "-i", "in", "-o", "out", "-f", "gif", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "invalid format argument" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run(DROPIN, "-i", "in/a.png", "-o", "o.png", "-f", "gif", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert "warning: -f gif ignored: o.png is written as png, as its extension says" in proc.stderr
    assert size_of(tmp_path / "o.png") == (32, 24)


@pytest.mark.parametrize("fmt", ["JPG", "jpeg"])
def test_a_format_the_reference_refuses_for_a_folder_is_read_by_the_dropin_as_jpg(fmt, tmp_path):
    # The reference takes png, jpg and webp in lower case alone ("invalid format
    # argument"); the README says the drop-in takes these, and names the outputs .jpg.
    pictures(tmp_path / "in", ["a.png"], size=(8, 8))
    proc = run(DROPIN, "-i", "in", "-o", "out", "-f", fmt, *X2_CPU, cwd=tmp_path)
    assert "warning" not in proc.stderr
    assert os.listdir(tmp_path / "out") == ["a.jpg"]
    with Image.open(tmp_path / "out" / "a.jpg") as im:
        assert (im.format, im.size) == ("JPEG", (16, 16))


@pytest.mark.parametrize("fmt, output", [("gif", "o.png"), ("avif", "o.webp"), ("bmp", "o.jpeg"), ("jpg", "o.png")])
def test_the_dropin_says_the_format_a_file_is_written_as_whichever_format_it_ignores(fmt, output, tmp_path):
    # -f jpg said "o.png is written as png, as its extension says", -f gif (which the
    # drop-in writes into no folder) "o.png is written as its extension says".
    pictures(tmp_path, ["a.png"])
    proc = run(DROPIN, "-i", "a.png", "-o", output, "-f", fmt, *X2_CPU, cwd=tmp_path)
    written = {"o.png": "png", "o.webp": "webp", "o.jpeg": "jpg"}[output]
    assert proc.stderr.splitlines()[0] == (f"realesrgan-ncnn-vulkan: warning: -f {fmt} ignored: {output} is written "
                                           f"as {written}, as its extension says")
    assert size_of(tmp_path / output) == (32, 24)


def test_an_empty_format_for_a_file_is_passed_over_unsaid_as_by_the_reference(tmp_path):
    # -f "$FMT" with FMT unset: the reference takes the file's extension without a
    # word; the drop-in warned "-f  ignored: o.png is written as its extension says".
    pictures(tmp_path, ["a.png"])
    proc = run(DROPIN, "-i", "a.png", "-o", "o.png", "-f", "", *X2_CPU, cwd=tmp_path)
    assert "warning" not in proc.stderr and size_of(tmp_path / "o.png") == (32, 24)


@pytest.mark.parametrize("fmt", ["jpg", "bmp"])
@pytest.mark.parametrize("piped", [False, True])
def test_a_format_given_for_a_video_is_said_to_be_ignored(fmt, piped, tmp_path):
    # A video's file output takes its extension's format whatever -f says, as a
    # picture's: -f jpg was ignored unsaid, and -f bmp refused from a pipe. The
    # container is named, as a picture's format is ("is written as its extension
    # says" named none).
    clip = make_clip(tmp_path / "in.mkv", frames=2, audio=None)
    source = "/dev/stdin" if piped else str(clip)
    proc = subprocess.run([DROPIN, "-i", source, "-o", str(tmp_path / "o.MKV"), "-f", fmt, *X2_CPU],
                          input=clip.read_bytes() if piped else None, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr.decode().splitlines()
    assert said[0] == f"realesrgan-ncnn-vulkan: warning: -f {fmt} ignored: {tmp_path / 'o.MKV'} is written as mkv, " \
                      "as its extension says"
    # Past the warning only the closing line, and on a loaded machine the plain
    # progress line written every 5 s.
    assert said[-1].startswith("realesrgan-ncnn-vulkan: wrote ")
    assert all(re.fullmatch(r"realesrgan-ncnn-vulkan: \d+(/\d+)? frames, .* fps.*", line) for line in said[1:-1]), said
    with av.open(str(tmp_path / "o.MKV")) as c:
        assert c.streams.video[0].width == 64


@pytest.mark.parametrize("output, said", [
    ("o.bmp", "unsupported video container '.bmp' for o.bmp"),
    ("frames", "frames has no extension to say its video container"),
])
def test_a_video_output_refused_gets_no_word_of_the_format_ignored(output, said, tmp_path):
    # -i clip.mp4 -o o.bmp -f jpg warned "-f jpg ignored: o.bmp is written as its
    # extension says" above the error that wrote nothing: two lines, the first untrue.
    make_clip(tmp_path / "clip.mp4", frames=2, audio=None)
    proc = run(DROPIN, "-i", "clip.mp4", "-o", output, "-f", "jpg", *X2_CPU, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"realesrgan-ncnn-vulkan: error: clip.mp4 failed: {said}"), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_format_given_for_a_video_into_a_folder_is_said_to_be_ignored(tmp_path):
    # -i clip.mp4 -o frames/ -f jpg wrote frames/clip.mp4 and said nothing of -f: jpg
    # frames were wanted, as the reference's frame-folder recipe makes them.
    make_clip(tmp_path / "clip.mp4", frames=2, audio=None)
    proc = run(DROPIN, "-i", "clip.mp4", "-o", "frames/", "-f", "jpg", *X2_CPU, cwd=tmp_path)
    said = proc.stderr.splitlines()
    assert said[0] == f"realesrgan-ncnn-vulkan: warning: -f jpg ignored: the video clip.mp4 is written into " \
                      f"{Path('frames')} as a video", said
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["clip.mp4"]


def test_a_gif_output_is_refused_by_the_dropin_as_by_the_reference(tmp_path):
    pictures(tmp_path, ["in.png"])
    proc = run(DROPIN, "-i", "in.png", "-o", "o.gif", "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "unsupported output format '.gif' for o.gif: use png, jpg or webp" in proc.stderr
    assert not (tmp_path / "o.gif").exists()


@pytest.mark.parametrize("output, said", [
    ("o.bmp", "in.png failed: unsupported output format '.bmp' for o.bmp: use png, jpg or webp"),
    ("o", "in.png failed: o has no extension and is not a folder: name the output picture .png, .jpg or .webp, "
          "or write o/ for a folder (made if missing)"),
])
def test_the_dropin_names_only_the_formats_it_writes(output, said, tmp_path):
    # It said "use png, jpg, webp, gif or avif", and then refused the gif it had offered.
    pictures(tmp_path, ["in.png"])
    proc = run(DROPIN, "-i", "in.png", "-o", output, "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"realesrgan-ncnn-vulkan: error: {said}"
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


def test_a_folder_can_be_written_as_gif(tmp_path):
    pictures(tmp_path / "in", ["a.png", "b.jpg"])
    run(NCNN_SR, "-i", "in", "-o", "out", "-f", "gif", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.gif", "b.gif"]
    assert size_of(tmp_path / "out" / "a.gif") == (32, 24)


def test_an_exif_too_large_for_jpeg_is_left_out_by_the_dropin_and_refused_by_ncnn_sr(tmp_path):
    # The drop-in named --no-metadata, a flag it does not have; the reference writes no metadata.
    im = Image.fromarray(picture(8, 8))
    exif = im.getexif()
    exif[0x010E] = "x" * 70000  # ImageDescription: PNG holds it, JPEG's 64 KB segment cannot
    im.save(tmp_path / "big.png", exif=exif.tobytes())
    proc = run(DROPIN, "-i", "big.png", "-o", "o.jpg", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert "big.png: its EXIF (" in proc.stderr and "writing o.jpg without it" in proc.stderr
    assert size_of(tmp_path / "o.jpg") == (16, 16)
    proc = run(NCNN_SR, "-i", "big.png", "-o", "n.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "(--no-metadata)" in proc.stderr
    run(NCNN_SR, "-i", "big.png", "-o", "n.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
        "--no-metadata", cwd=tmp_path)


def test_an_hdr_cicp_that_no_profile_states_is_left_out_of_a_jpg_with_a_warning(tmp_path):
    # BT.2020 PQ: a jpg or webp holds colour as an ICC profile only, and no
    # profile of a matrix and curves states HDR; png keeps the chunk, avif its nclx.
    (tmp_path / "hdr.png").write_bytes(png_bytes(picture(8, 8), 8, 2, png_chunk(b"cICP", bytes([9, 16, 0, 1]))))
    proc = run(NCNN_SR, "-i", "hdr.png", "-o", "o.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert [line for line in proc.stderr.splitlines() if "cICP" in line] == [
        "ncnn-sr: warning: hdr.png: its colour (cICP primaries 9, transfer 16: HDR) has no ICC profile that a "
        "jpg could hold: writing o.jpg without it (png and avif keep it)"]
    assert size_of(tmp_path / "o.jpg") == (16, 16)
    for args in (["-o", "o.png"], ["-o", "n.jpg", "--no-metadata"]):
        proc = run(NCNN_SR, "-i", "hdr.png", *args, "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
                   cwd=tmp_path)
        assert "cICP" not in proc.stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_an_xmp_too_large_for_jpeg_is_left_out_with_a_warning(cmd, tmp_path):
    # It was left out without a word, where an EXIF too large fails the picture or is noted.
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>' + " " * 70000)
    Image.fromarray(picture(8, 8)).save(tmp_path / "big.png", pnginfo=text)
    proc = run(cmd, "-i", "big.png", "-o", "o.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert [line for line in proc.stderr.splitlines() if "XMP" in line] == [
        f"{Path(cmd).name}: warning: big.png: its XMP (70037 bytes) is too large for JPEG, which holds at most "
        "65504: writing o.jpg without it"]
    assert size_of(tmp_path / "o.jpg") == (16, 16) and "xmp" not in Image.open(tmp_path / "o.jpg").info
    proc = run(cmd, "-i", "big.png", "-o", "o.png", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert "XMP" not in proc.stderr and len(Image.open(tmp_path / "o.png").info["xmp"]) == 70037


def test_a_gif_comment_too_large_for_jpeg_is_left_out_with_a_warning(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "long.gif", comment=b"x" * 70000)
    proc = run(NCNN_SR, "-i", "long.gif", "-o", "o.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert [line for line in proc.stderr.splitlines() if "comment" in line] == [
        "ncnn-sr: warning: long.gif: its comment (70000 bytes) is too large for JPEG, which holds at most "
        "65533: writing o.jpg without it"]
    assert size_of(tmp_path / "o.jpg") == (16, 16) and "comment" not in Image.open(tmp_path / "o.jpg").info


def test_an_xmp_that_outgrows_jpeg_once_it_states_the_new_size_is_left_out_with_a_warning(tmp_path):
    # Checked at the input's size, it fitted; its size grown a digit, the jpg was
    # written without it, without a word.
    from PIL.PngImagePlugin import PngInfo

    head = ('<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
            'exif:PixelXDimension="8"/>')
    text = PngInfo()
    text.add_itxt("XML:com.adobe.xmp", head.ljust(65504))  # as much as a jpg holds
    Image.fromarray(picture(8, 8)).save(tmp_path / "big.png", pnginfo=text)
    proc = run(NCNN_SR, "-i", "big.png", "-o", "o.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert [line for line in proc.stderr.splitlines() if "XMP" in line] == [
        "ncnn-sr: warning: big.png: its XMP (65505 bytes) is too large for JPEG, which holds at most "
        "65504: writing o.jpg without it"]


def test_folder_into_a_file_is_refused(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    (tmp_path / "o.png").write_bytes(b"x")
    proc = run(DROPIN, "-i", tmp_path / "in", "-o", tmp_path / "o.png", check_ok=False)
    assert proc.returncode == 1 and "both be files or both be folders" in proc.stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
# out.tif, out.bmp: found by a user audit, pictures that are read but not written
# here, which still made a folder of that name in silence.
@pytest.mark.parametrize("name", ["out.png", "out.tif", "out.BMP"])
def test_a_folder_into_a_missing_output_named_like_a_picture_is_refused(cmd, name, tmp_path):
    # A folder named out.png was made in silence; the reference refuses it.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(cmd, "-i", "in", "-o", name, "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    failed = "in failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.strip().endswith(f"error: {failed}in is a folder but {name} is named like a picture: input "
                                        f"and output must both be files or both be folders ({name}/ makes a "
                                        "folder of that name)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("out", ["x.png", "x.mp4"])
def test_a_folder_into_a_file_name_is_refused_alone_before_any_note_of_what_it_leaves_out(out, tmp_path):
    # As a video folder's (an audit's): the notes of its clips and other files are of
    # no use to a command refused, and are not said.
    pictures(tmp_path / "in", ["a.png"])
    for name in ("clip.mp4", "notes.txt", "photo.dng"):
        (tmp_path / "in" / name).write_bytes(b"x")
    proc = run(NCNN_SR, "-i", "in", "-o", out, "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and f"error: in is a folder but {out} is named like a" in proc.stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_a_folder_into_a_missing_output_named_like_a_video_is_refused(cmd, tmp_path):
    # -i tmp_frames -o out.mp4 made a folder named out.mp4 of pictures, in silence; the
    # reference refuses a folder into anything but a folder that is there.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(cmd, "-i", "in", "-o", "out.mp4", "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    failed = "in failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.strip().endswith(f"error: {failed}in is a folder but out.mp4 is named like a video: a folder's "
                                        "pictures are written into a folder (out.mp4/ makes a folder of that "
                                        "name)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    run(cmd, "-i", "in", "-o", "out.mp4/", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "out.mp4").iterdir()) == ["a.png"]


def contents(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("cmd, output, said", [
    (NCNN_SR, "in/a.png", "output in/a.png is an input"),
    (NCNN_SR, "in/../in/a.png", "output in/../in/a.png is an input (in/a.png)"),
    (NCNN_SR, "in", "output in/a.png is an input"),
    # The drop-in replaces a picture named as its output, as the reference does; one
    # whose output folder is its own (-o ., where the reference refuses a folder for a
    # file) was replaced too, by a name the user never gave.
    (DROPIN, "in", "in/a.png failed: output in/a.png is an input"),
    (DROPIN, "in/", "in/a.png failed: output in/a.png is an input"),
])
def test_an_output_that_is_the_input_picture_is_refused(cmd, output, said, tmp_path):
    # The reference tool wrote over the input, and exited 0.
    pictures(tmp_path / "in", ["a.png"])
    before = contents(tmp_path)
    proc = run(cmd, "-i", "in/a.png", "-o", output, "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"error: {said}: it would be overwritten; choose another output")
    assert contents(tmp_path) == before


@pytest.mark.parametrize("output", ["in/a.png", "in/../in/a.png"])
def test_the_dropin_upscales_a_picture_in_place_as_the_reference_does(output, tmp_path):
    # Upscayl's "double upscayl" runs its second pass as -i out.png -o out.png, which
    # the reference does in place: the drop-in refused it, so the feature failed.
    pictures(tmp_path / "in", ["a.png"])
    with Image.open(tmp_path / "in" / "a.png") as im:
        size = im.size
    for times in (2, 4):  # the first pass, then the second on its output
        run(DROPIN, "-i", "in/a.png", "-o", output, "-g", "-1", "-s", "2", cwd=tmp_path)
        with Image.open(tmp_path / "in" / "a.png") as im:
            assert im.size == (size[0] * times, size[1] * times)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.png"]  # nothing written aside is left


@pytest.mark.parametrize("fmt, overwritten", [("png", "b.png"), ("jpg", "a.jpg")])
def test_a_folder_into_itself_that_would_overwrite_an_input_writes_nothing(fmt, overwritten, tmp_path):
    pictures(tmp_path / "in", ["a.jpg", "b.jpg", "b.png"])
    before = contents(tmp_path)
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "in", "-f", fmt, "-g", "-1", "-s", "2",
               check_ok=False)
    assert proc.returncode == 1 and f"output {tmp_path / 'in' / overwritten} is an input" in proc.stderr
    assert contents(tmp_path) == before


@pytest.mark.parametrize("cmd, hint", [(NCNN_SR, "--suffix _x2"), (DROPIN, "'ncnn-sr --suffix _x2'")])
def test_a_folder_into_itself_is_told_how_outputs_go_beside_their_inputs(cmd, hint, tmp_path):
    # Outputs beside the inputs were wanted: the error said only to choose another output.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(cmd, "-i", "in", "-o", "in", "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    failed = "in failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.returncode == 1 and proc.stderr.strip().endswith(
        f"error: {failed}output {Path('in/a.png')} is an input: it would be overwritten; choose another output, or "
        f"name the outputs apart: {hint}")
    run(NCNN_SR, "-i", "in", "-o", "in", "-g", "-1", "-s", "2", "--suffix", "_x2", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.png", "a_x2.png"]


@pytest.mark.parametrize("size, suffix", [(["-s", "1.5"], "_x1.5"), (["-s", "3"], "_x3"), ([], "_x4"),
                                          (["--width", "40"], "_upscaled")])
def test_the_suffix_a_folder_into_itself_is_offered_says_the_scale_it_runs_at(size, suffix, tmp_path):
    # It offered _x4 whatever the scale: -s 2's outputs named x4.
    pictures(tmp_path / "in", ["a.png"])
    proc = run(NCNN_SR, "-i", "in", "-o", "in", "-g", "-1", *size, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.strip().endswith(f"name the outputs apart: --suffix {suffix}")


def test_a_jpeg_output_whose_transparent_picture_would_become_an_input_is_refused(tmp_path):
    # RGBA asked as JPEG is written to name.jpg.png: that name was not checked.
    Image.fromarray(picture(12, 16, channels=4)).save(tmp_path / "foo.jpg.png")
    before = contents(tmp_path)
    proc = run(NCNN_SR, "-i", "foo.jpg.png", "-o", "foo.jpg", "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert "output foo.jpg.png, where foo.jpg goes if its picture has transparency, is an input" in proc.stderr
    assert contents(tmp_path) == before


def test_an_opaque_alpha_channel_asked_as_jpg_is_named_truly_by_the_dropin(tmp_path):
    # The reference's rule (any RGBA asked as jpg is written as png) stays; the
    # warning said the picture "has transparency", which it had not.
    opaque = picture(8, 8, channels=4)
    opaque[:, :, 3] = 255
    Image.fromarray(opaque).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.jpg", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert "in.png has alpha channel (fully opaque), which JPEG cannot store: writing o.jpg.png" in proc.stderr
    assert "transparency" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o.jpg.png"]


def test_the_dropin_says_has_alpha_channel_as_the_reference_where_a_jpg_becomes_a_png(tmp_path):
    # Wrappers of the reference (Upscayl) look for its words "has alpha channel" on stderr
    # to find the output under its .png name; the drop-in said "has transparency".
    clear = picture(8, 8, channels=4)
    clear[0, 0, 3] = 0
    Image.fromarray(clear).save(tmp_path / "in.png")
    proc = run(DROPIN, "-i", "in.png", "-o", "o.jpg", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert "in.png has alpha channel transparency, which JPEG cannot store: writing o.jpg.png" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o.jpg.png"]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_ncnn_sr_drops_an_opaque_alpha_channel_and_writes_the_jpg_asked_for(mode, tmp_path):
    opaque = picture(8, 8, channels=4)
    opaque[:, :, 3] = 255
    Image.fromarray(opaque).convert(mode).save(tmp_path / "in.png")
    proc = run(NCNN_SR, "-i", "in.png", "-o", "o.jpg", "-g", "-1", "-s", "2", "-n", "realesr-animevideov3",
               cwd=tmp_path)
    assert "warning" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "o.jpg"]
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.size == (16, 16) and im.mode == ("L" if mode == "LA" else "RGB")


def test_a_folder_into_itself_without_clashes_is_allowed(tmp_path):
    pictures(tmp_path / "in", ["a.jpg"])
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "in", "-g", "-1", "-s", "2")
    assert size_of(tmp_path / "in" / "a.png") == (32, 24)


X2_CPU = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]


def test_a_folder_into_itself_without_a_suffix_resumes_with_skip_existing(tmp_path):
    # found by a user audit: -i in -o in -f webp ran, and the same command with
    # --skip-existing (a cron job's, or one resuming after Ctrl-C) was refused, every
    # time: "output in/a.webp is an input: it would be overwritten".
    pictures(tmp_path / "in", ["a.png", "b.jpg"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "in", "-f", "webp", *X2_CPU]
    run(NCNN_SR, *args)
    written = {name: os.stat(tmp_path / "in" / name).st_mtime_ns for name in ("a.webp", "b.webp")}
    pictures(tmp_path / "in", ["c.bmp"])  # added since
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "3 pictures: 1 upscaled, 2 skipped, 0 failed" in proc.stderr
    assert f"2 pictures in {tmp_path / 'in'} named as the output of another (a.webp, b.webp) left out" \
        in proc.stderr
    assert sorted(os.listdir(tmp_path / "in")) == ["a.png", "a.webp", "b.jpg", "b.webp", "c.bmp", "c.webp"]
    assert {name: os.stat(tmp_path / "in" / name).st_mtime_ns for name in written} == written
    # Without it a.webp may be a picture of its own, which a.png's output would replace.
    refused = run(NCNN_SR, *args, check_ok=False)
    assert refused.returncode == 1 and "is an input: it would be overwritten" in refused.stderr
    assert {name: os.stat(tmp_path / "in" / name).st_mtime_ns for name in written} == written


def test_a_picture_of_its_own_named_as_another_s_output_is_kept_by_skip_existing(tmp_path):
    # a.webp beside a.png before any run: left out, and a.png's output, there, is not
    # written over it.
    pictures(tmp_path, ["a.png", "a.webp", "b.png"])
    kept = (tmp_path / "a.webp").read_bytes()
    proc = run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "-f", "webp", "--skip-existing", *X2_CPU)
    assert "2 pictures: 1 upscaled, 1 skipped, 0 failed" in proc.stderr and "(a.webp) left out" in proc.stderr
    assert (tmp_path / "a.webp").read_bytes() == kept and size_of(tmp_path / "b.webp") == (32, 24)


@pytest.mark.parametrize("names,fmt", [(["a.bmp", "a.jpg", "a.png"], "png"), (["a.png", "a.webp"], "webp")])
def test_skip_existing_never_writes_over_a_picture_it_left_out_as_another_s_output(names, fmt, tmp_path):
    # a.png may be a picture of its own: a.bmp, sorting first, takes its name and, a.jpg's
    # a.jpg.png missing, would write it again; a.webp cut short would be written again.
    pictures(tmp_path, names)
    if fmt == "webp":
        (tmp_path / "a.webp").write_bytes((tmp_path / "a.webp").read_bytes()[:60])
    kept = {name: (tmp_path / name).read_bytes() for name in names}
    proc = run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "-f", fmt, "--skip-existing", *X2_CPU, check_ok=False)
    assert proc.returncode == 1
    assert f"output {tmp_path / f'a.{fmt}'} is an input: it would be overwritten" in proc.stderr
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == kept


def test_a_suffix_names_the_outputs_and_lets_them_go_beside_their_inputs(tmp_path):
    pictures(tmp_path / "in", ["a.jpg", "b.png", "sub/c.webp"])
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "in", "--suffix", "_x2", "-r", *X2_CPU)
    names = sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*.*"))
    assert names == ["a.jpg", "a_x2.png", "b.png", "b_x2.png", "sub/c.webp", "sub/c_x2.png"]
    assert size_of(tmp_path / "in" / "b_x2.png") == (32, 24)
    # Run again: the outputs are not taken for pictures to upscale (b_x2_x2.png).
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "in", "--suffix", "_x2", "-r", "--skip-existing",
               *X2_CPU)
    assert "0 upscaled, 3 skipped, 0 failed" in proc.stderr
    assert f"2 pictures in {tmp_path / 'in'} named as the output of another (a_x2.png, b_x2.png) left out" \
        in proc.stderr
    assert len(list((tmp_path / "in").rglob("*.*"))) == 6


def test_a_suffix_into_another_folder_and_on_a_stem_clash(tmp_path):
    pictures(tmp_path / "in", ["a.jpg", "a.png", "a_x2.png"])  # a_x2.png is a picture of its own here
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "--suffix", "_x2", "-f", "webp", *X2_CPU)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x2.png.webp", "a_x2.webp", "a_x2_x2.webp"]
    assert "a.png will output a_x2.png.webp" in proc.stderr and "left out" not in proc.stderr


@pytest.mark.parametrize("fmt,outputs", [("webp", ["a_x2.jpg.webp", "a_x2.webp", "c_x2.webp"]),
                                         ("jpg", ["a_x2.jpg", "a_x2.jpg.jpg", "c_x2.jpg.png"])])
def test_a_suffix_run_again_beside_its_inputs_knows_its_renamed_outputs(fmt, outputs, tmp_path):
    # a.jpg's output is renamed, a.bmp's having taken a_x2.FORMAT; c.png's, with
    # transparency, is a PNG where the format is JPEG.
    pictures(tmp_path, ["a.bmp", "a.jpg"])
    Image.new("RGBA", (12, 16), (10, 20, 30, 40)).save(tmp_path / "c.png")
    run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "--suffix", "_x2", "-f", fmt, *X2_CPU)
    proc = run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "--suffix", "_x2", "-f", fmt, "--skip-existing", *X2_CPU)
    assert "0 upscaled, 3 skipped, 0 failed" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(["a.bmp", "a.jpg", "c.png", *outputs])


def test_a_suffix_run_again_in_another_format_leaves_out_the_outputs_of_the_first(tmp_path):
    # -f jpg, then -f webp: a_x2.jpg was taken for a picture of its own and upscaled
    # again, into a_x2_x2.webp.
    pictures(tmp_path, ["a.png"])
    run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "--suffix", "_x2", "-f", "jpg", *X2_CPU)
    proc = run(NCNN_SR, "-i", tmp_path, "-o", tmp_path, "--suffix", "_x2", "-f", "webp", *X2_CPU)
    assert "1 picture: 1 upscaled" in proc.stderr and "(a_x2.jpg) left out" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.png", "a_x2.jpg", "a_x2.webp"]


def test_a_suffix_for_one_picture(tmp_path):
    pictures(tmp_path, ["a.png"])
    run(NCNN_SR, "-i", tmp_path / "a.png", "-o", f"{tmp_path / 'out'}/", "--suffix", "-big", *X2_CPU)
    assert os.listdir(tmp_path / "out") == ["a-big.png"]
    proc = run(NCNN_SR, "-i", tmp_path / "a.png", "-o", tmp_path / "o.png", "--suffix", "-big", *X2_CPU)
    assert f"--suffix -big ignored: the output is named, {tmp_path / 'o.png'}" in proc.stderr
    assert (tmp_path / "o.png").exists()


@pytest.mark.parametrize("suffix,message", [("a/b", "folder separator"), ("..", "needs a letter or digit")])
def test_a_suffix_that_is_not_part_of_a_name_is_refused(suffix, message, tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "--suffix", suffix, *X2_CPU, check_ok=False)
    assert proc.returncode == 2 and message in proc.stderr and not (tmp_path / "out").exists()


def test_a_video_into_itself_is_refused(tmp_path):
    clip = make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    before = clip.read_bytes()
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "." / "v.mp4", "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1 and "is the input: it would be overwritten" in proc.stderr
    assert clip.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["v.mp4"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
def test_an_output_folder_that_cannot_be_made_is_one_line_before_any_work(cmd, tmp_path):
    # Each picture was upscaled, then failed alone: "cannot write /proc/new/a.png", one line each.
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    proc = run(cmd, "-i", tmp_path / "in", "-o", "/proc/ncnn-sr-new/out", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "-1", check_ok=False)
    assert proc.returncode == 1
    name = os.path.basename(cmd)
    failed = f"{tmp_path / 'in'} failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.strip() == (f"{name}: error: {failed}cannot make the folder /proc/ncnn-sr-new/out: "
                                   "No such file or directory")


def test_a_video_whose_folder_cannot_be_made_is_one_line(tmp_path):
    clip = make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    (tmp_path / "file").write_bytes(b"x")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "file" / "o.mp4", "-g", "-1", "-s", "2",
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ncnn-sr: error: cannot make the folder of {tmp_path / 'file' / 'o.mp4'}: "
                                   f"{tmp_path / 'file'} is a file, not a folder")


def test_a_folder_of_one_size_gets_one_cpu_worker_where_two_would_tile(tmp_path, monkeypatch, capsys):
    # As a video's frames (test_cli): 48 MB let one worker run 96x64 pictures whole, not
    # two, whose 32 px tiles stay several blended windows.
    from ncnn_sr import batch_cli, budget, console

    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"], size=(64, 96))
    monkeypatch.setattr(budget, "available_memory", lambda: 48 << 20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    opts = batch_cli.RunOptions(input=tmp_path / "in", output=tmp_path / "out", model="realesr-animevideov3-x2",
                                model_path=None, gpu="-1", tile="0", jobs="1:2:2", tta=False, fmt=None, verbose=True)
    console.setup_logging("ncnn-sr", verbose=True)
    assert batch_cli.run("ncnn-sr", opts) == 0
    said = capsys.readouterr().err
    assert "one proc worker on CPU with all its cores: 96x64 pictures fit one window for one, not for 2" in said
    assert "realesr-animevideov3-x2 x2 on CPU, 1 proc worker(s)" in said
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png", "c.png"]
    # Pictures of two sizes keep the two workers.
    pictures(tmp_path / "in", ["d.png"], size=(64, 104))
    assert batch_cli.run("ncnn-sr", opts) == 0
    assert "2 proc worker(s)" in capsys.readouterr().err


def test_a_folders_summary_says_the_whole_runs_time_with_the_model_load_apart(tmp_path, monkeypatch, capsys):
    # It said the pictures' time alone: a user timing the command saw seconds more
    # than "in 0.4 s", the model load (seconds on a GPU) left out unsaid.
    from ncnn_sr import batch_cli, console

    pictures(tmp_path / "in", ["a.png", "b.png"], size=(8, 8))
    real = batch_cli.build_lanes

    def slow_load(*args, **kwargs):  # a load as long as a large model's on a GPU
        time.sleep(1.5)
        return real(*args, **kwargs)
    monkeypatch.setattr(batch_cli, "build_lanes", slow_load)
    opts = batch_cli.RunOptions(input=tmp_path / "in", output=tmp_path / "out", model="realesr-animevideov3-x2",
                                model_path=None, gpu="-1", tile="0", jobs="1:1:1", tta=False, fmt=None)
    console.setup_logging("ncnn-sr", verbose=False)
    began = time.monotonic()
    assert batch_cli.run("ncnn-sr", opts) == 0
    took = time.monotonic() - began
    line = capsys.readouterr().err.splitlines()[-1]
    said = re.fullmatch(r"ncnn-sr: 2 pictures: 2 upscaled, 0 skipped, 0 failed "
                        r"in (\d+\.\d) s: model load (\d+\.\d) s, then \d+\.\d\d pictures/s", line)
    assert said, line
    whole, load = float(said[1]), float(said[2])
    assert 1.5 <= load <= whole <= took + 0.05, line


@pytest.mark.parametrize("fps, said", [("1e9", "at most 1000 frames per second"),
                                       ("1e-9", "at least 1/100 frames per second")])
def test_a_frame_rate_out_of_bounds_is_refused_before_any_work(fps, said, tmp_path):
    # --fps 1e9 was taken, and the run wrote frames for hours; 1e-9 blamed the input
    # for having no frames.
    clip = make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "o.mp4", "-g", "-1", "--fps", fps, check_ok=False)
    assert proc.returncode == 2 and said in proc.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_a_picture_whose_folder_is_a_file_says_so(tmp_path):
    pictures(tmp_path, ["in.png"])
    (tmp_path / "file").write_bytes(b"x")
    proc = run(NCNN_SR, "-i", tmp_path / "in.png", "-o", tmp_path / "file" / "o.png", "-g", "-1", "-s", "2",
               check_ok=False)
    assert proc.returncode == 1 and f"{tmp_path / 'file'} is a file, not a folder" in proc.stderr


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
@pytest.mark.parametrize("source", ["in", "in/a.png"])
def test_an_output_that_is_a_link_to_nowhere_is_one_line_before_any_work(cmd, source, tmp_path):
    # A folder was upscaled whole, then each picture failed with "out is a file, not a
    # folder"; a single picture was told its output "has no extension".
    pictures(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out").symlink_to("/nonexistent/dir")
    before = contents(tmp_path)
    proc = run(cmd, "-i", source, "-o", "out", "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    into = "into " if source == "in" else ""
    failed = f"{Path(source)} failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.returncode == 1
    assert proc.stderr == (f"{Path(cmd).name}: error: {failed}cannot write {into}out: "
                           "it is a link to /nonexistent/dir, which does not exist\n")
    assert contents(tmp_path) == before


def test_a_video_below_a_link_to_nowhere_says_so(tmp_path):
    clip = make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    proc = run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "out" / "o.mp4", "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ncnn-sr: error: cannot make the folder of {tmp_path / 'out' / 'o.mp4'}: "
                                   f"{tmp_path / 'out'} is a link to {tmp_path / 'gone'}, which does not exist")


@pytest.mark.parametrize("flag", ["-i", "-o"])
def test_an_empty_path_is_refused_rather_than_taken_for_the_current_folder(flag, tmp_path):
    # Path("") is ".": -i "$UNSET" upscaled the folder the script ran in, -o "" wrote there.
    pictures(tmp_path, ["a.png"])
    paths = {"-i": "a.png", "-o": "out", flag: ""}
    before = contents(tmp_path)
    proc = run(DROPIN, "-i", paths["-i"], "-o", paths["-o"], "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"realesrgan-ncnn-vulkan: error: {flag} is empty: give a picture or folder path\n"
    assert contents(tmp_path) == before


def test_a_name_with_a_newline_keeps_each_message_on_one_line(tmp_path):
    pictures(tmp_path / "in", ["good.png"])
    (tmp_path / "in" / "bad\nname.png").write_text("not a picture")
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1
    assert all(line.startswith("ncnn-sr: ") for line in proc.stderr.splitlines())
    assert f"error: {tmp_path / 'in'}/bad\\nname.png: not a picture" in proc.stderr


@pytest.mark.parametrize("char, shown", [("\x85", "\\x85"), ("\x9b", "\\x9b")])
def test_a_name_with_an_8_bit_control_code_keeps_the_line_and_the_terminal_as_they_were(char, shown, tmp_path):
    # U+0085 is a line break (NEL) and U+009B starts an escape sequence (CSI) on a
    # terminal that takes 8-bit control codes, as xterm does: they went out as they were.
    pictures(tmp_path / "in", ["good.png"])
    (tmp_path / "in" / f"bad{char}2Jname.png").write_text("not a picture")
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, check_ok=False)
    assert proc.returncode == 1 and char not in proc.stderr
    assert f"error: {tmp_path / 'in'}/bad{shown}2Jname.png: not a picture" in proc.stderr


@pytest.mark.parametrize("args", [
    ["-i", "{long}.png", "-o", "o.png"],
    ["-i", "in.png", "-o", "{long}.png"],
    ["-i", "in.png", "-o", "o.png", "-n", "{long}.param"],
    ["video", "-i", "v.mp4", "-o", "{long}.mp4"],
])
def test_a_name_too_long_for_the_file_system_is_one_line(args, tmp_path):
    pictures(tmp_path, ["in.png"])
    make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    long = "y" * 300
    proc = run(NCNN_SR, *[a.format(long=long) for a in args], "-g", "-1", "-s", "2", cwd=tmp_path, check_ok=False)
    # A model's name is said as a name no model can have (tests/test_models.py), not as the file it would be.
    said = "is too long for a file name: no model can be so named in ." if "-n" in args else "File name too long"
    assert proc.returncode == 1 and proc.stderr.strip().endswith(said), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_recursive_walk_survives_a_link_to_a_folder_above(tmp_path):
    pictures(tmp_path / "in", ["a.png", "sub/b.png"])
    (tmp_path / "in" / "sub" / "up").symlink_to("..")
    (tmp_path / "in" / "broken.png").symlink_to("nowhere")
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-r", "-g", "-1", "-s", "2", timeout=120)
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == [
        "a.png", "sub/b.png"]


def test_recursive_mirrors_a_folder_under_its_own_name_not_a_link_to_it_that_sorts_first(tmp_path):
    # albums/best -> ../photos/2024 and photos/2024: the folder was walked once, under
    # whichever name came first, so the output tree had albums/best and no photos/2024.
    pictures(tmp_path / "in", ["photos/2024/x.png", "a.png"])
    (tmp_path / "in" / "albums").mkdir()
    (tmp_path / "in" / "albums" / "best").symlink_to(tmp_path / "in" / "photos" / "2024")
    (tmp_path / "in" / "elsewhere").symlink_to(tmp_path / "in" / "photos")  # a link to one above it
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-r", *X2_CPU)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a.png", "photos/2024/x.png"]


def test_recursive_walks_a_link_to_a_folder_outside_the_tree_under_the_links_name(tmp_path):
    pictures(tmp_path / "shared", ["x.png"])
    pictures(tmp_path / "in", ["a.png"])
    (tmp_path / "in" / "shared").symlink_to(tmp_path / "shared")
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-r", *X2_CPU)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")) == [
        "a.png", "shared/x.png"]


@pytest.mark.parametrize("cmd, flags, status, wording", [
    (NCNN_SR, ["-s", "inf"], 2, "'inf' is not a number"),
    # Infinite as a float, it was "must be a positive number", which it is.
    (NCNN_SR, ["-s", "1e400"], 2, "'1e400' is too large: give a positive number, such as 2, 3.5 or 0.5 (the output is "
                                  "at most 262144 pixels a side)"),
    (NCNN_SR, ["-s", "1e-400"], 2, "'1e-400' is too small: give a positive number"),
    (NCNN_SR, ["-dn", "1e400"], 2, "'1e400' is too large: give a number in 0<=x<=1"),
    (DROPIN, ["-s", "inf"], 1, "invalid scale argument"),
    (DROPIN, ["-s", "1e400"], 1, "invalid scale argument: -s 1e400 is too large: give a positive number"),
    (NCNN_SR, ["-s", "1e10"], 1, "a 16x12 picture at scale 1e+10 is too large: at most 262144 pixels a side"),
    (NCNN_SR, ["--width", "300000"], 1, "width must be at most 262144 pixels a side, got 300000"),
    # A 1x1 picture was written without a word.
    (NCNN_SR, ["-s", "1e-300"], 1, "in.png: a 16x12 picture at scale 1e-300 would be under 1 pixel a side: give a "
                                   "scale of at least 0.0417\n"),
    (DROPIN, ["-s", "1e-300"], 1, "in.png failed: a 16x12 picture at scale 1e-300 would be under 1 pixel a side: "
                                  "give a scale of at least 0.0417\n"),
])
def test_scales_past_any_picture_are_refused_before_upscaling(cmd, flags, status, wording, tmp_path):
    pictures(tmp_path, ["in.png"])
    proc = run(cmd, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-g", "-1", *flags, check_ok=False)
    assert proc.returncode == status and wording in proc.stderr
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_a_scale_too_small_for_one_picture_of_a_batch_fails_that_picture_alone(tmp_path):
    # The 2x2 one was written 1x1 without a word; the setting is each picture's to judge.
    pictures(tmp_path / "in", ["big.png"])
    pictures(tmp_path / "in", ["small.png"], size=(2, 2))
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "0.2",
               "-g", "-1", check_ok=False)
    assert proc.returncode == 1
    assert "small.png: a 2x2 picture at scale 0.2 would be under 1 pixel a side: give a scale of at least 0.25" \
        in proc.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["big.png"] and size_of(tmp_path / "out" / "big.png") == (3, 2)


def test_an_input_that_is_neither_file_nor_pipe_nor_folder_is_named_so(tmp_path):
    # A FIFO is read as a pipe (test_streams); a Unix socket is none of these.
    import socket

    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "sock.png"))
        proc = run(NCNN_SR, "-i", tmp_path / "sock.png", "-o", tmp_path / "o.png", "-g", "-1", check_ok=False,
                   timeout=60)
    assert proc.returncode == 1 and "sock.png is neither a file nor a folder" in proc.stderr
    proc = run(NCNN_SR, "-i", "/dev/zero", "-o", tmp_path / "o.png", "-g", "-1", check_ok=False, timeout=60)
    assert proc.returncode == 1 and "/dev/zero" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("where", ["missing", "in.png"])
def test_a_model_folder_that_is_not_a_folder_is_a_usage_error(where, tmp_path):
    # It was ignored in silence, and the packaged model used instead.
    pictures(tmp_path, ["in.png"])
    proc = run(NCNN_SR, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-g", "-1", "-m", tmp_path / where,
               check_ok=False)
    assert proc.returncode == 2 and "'-m' / '--model-path'" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_an_output_name_without_extension_says_what_to_give(tmp_path):
    pictures(tmp_path, ["in.png"])
    proc = run(NCNN_SR, "-i", "in.png", "-o", "newdir", "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    # It said "or give a folder that exists", where -o's help says a folder is made if
    # missing: the way to have it made was not said.
    assert proc.stderr == ("ncnn-sr: error: newdir has no extension and is not a folder: name the output picture "
                           ".png, .jpg, .webp, .gif or .avif, or write newdir/ for a folder (made if missing)\n")
    run(NCNN_SR, "-i", "in.png", "-o", "newdir/", *X2_CPU, cwd=tmp_path)
    assert [p.name for p in (tmp_path / "newdir").iterdir()] == ["in.png"]


@pytest.mark.parametrize("cmd, formats", [(NCNN_SR, ".png, .jpg, .webp, .gif or .avif"),
                                          (DROPIN, ".png, .jpg or .webp")])
def test_an_output_without_extension_that_is_a_file_is_not_offered_as_a_folder(cmd, formats, tmp_path):
    # "or write notes/ for a folder (made if missing)": a file is there, and no folder
    # can be made under it (the drop-in's -o /dev/null was offered /dev/null/ too).
    pictures(tmp_path, ["in.png"])
    (tmp_path / "notes").write_text("mine")
    proc = run(cmd, "-i", "in.png", "-o", "notes", *X2_CPU, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    failed = "in.png failed: " if cmd == DROPIN else ""
    assert proc.stderr == f"{Path(cmd).name}: error: {failed}notes has no extension and is not a folder: name the " \
                          f"output picture {formats}\n"
    assert (tmp_path / "notes").read_text() == "mine"


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
@pytest.mark.parametrize("source", ["in.png", "in"])
def test_an_output_that_is_only_an_extension_is_refused_as_a_name_missing(cmd, source, tmp_path):
    # -o "$NAME.png" with NAME unset: a picture was told ".png has no extension ...: name
    # the output picture .png", and a folder's pictures went into a hidden folder ".png".
    pictures(tmp_path, ["in.png"])
    pictures(tmp_path / "in", ["a.png"])
    proc = run(cmd, "-i", source, "-o", ".png", *X2_CPU, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    said = proc.stderr.splitlines()[-1]
    if source == "in":
        failed = "in failed: " if cmd == DROPIN else ""  # in the reference's word
        assert said.endswith(f"error: {failed}in is a folder but .png is named like a picture: input and output must "
                             "both be files or both be folders (.png/ makes a folder of that name)")
    else:
        failed = "in.png failed: " if cmd == DROPIN else ""  # in the reference's word
        assert said.endswith(f"error: {failed}.png is an extension without a name: name the output picture, "
                             "such as out.png")
    assert sorted(os.listdir(tmp_path)) == ["in", "in.png"]


def test_help_lists_the_reference_flags():
    out = run(DROPIN, "-h").stdout
    for flag in ("-i", "-o", "-s", "-t", "-m", "-n", "-g", "-j", "-x", "-f", "-v", "-h"):
        assert f"  {flag} " in out or f"  {flag}," in out, flag


# --- what the user sees ----------------------------------------------------------------

def test_progress_off_a_terminal_is_plain_lines_and_quiet_silences_them(tmp_path):
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    args = ["-i", tmp_path / "in", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    loud = run(NCNN_SR, *args, "-o", tmp_path / "o1")
    assert "3/3 pictures" in loud.stderr and "ETA" in loud.stderr
    assert "3 pictures: 3 upscaled, 0 skipped, 0 failed" in loud.stderr
    quiet = run(NCNN_SR, *args, "-o", tmp_path / "o2", "-q")
    assert quiet.stderr == ""


def on_a_terminal(args) -> str:
    """What a command run on a terminal 100 columns wide shows; it must succeed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    # a terminal 100 columns wide (a new pty is 0x0, where a bar has no room)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0, text
    return text


def test_plain_progress_leaves_skipped_pictures_out_of_its_rate(tmp_path):
    # They take no time: a resumed batch's line gave thousands of pictures a second
    # and an ETA of a fraction of the work left; one that skipped all, "6012.57/s".
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    args = ["-i", tmp_path / "in", "-o", tmp_path / "out", *X2_CPU, "--skip-existing"]
    first = run(NCNN_SR, *args)
    assert re.search(r"^ncnn-sr: 3/3 pictures, \d+\.\d\d/s, ETA 0 s$", first.stderr, re.M), first.stderr
    again = run(NCNN_SR, *args)  # all skipped: no progress line at all
    assert again.stderr.splitlines()[0].startswith("ncnn-sr: 3 pictures: 0 upscaled, 3 skipped, 0 failed in ")


def test_progress_on_a_terminal_is_a_bar(tmp_path):
    pictures(tmp_path / "in", ["a.png", "b.png"])
    text = on_a_terminal([NCNN_SR, "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-n",
                          "realesr-animevideov3", "-s", "2", "-g", "-1"])
    assert "pic/s" in text or "s/pic" in text  # tqdm's rate
    assert "/2 [" in text  # count and total, as tqdm draws them


def test_a_single_picture_on_a_terminal_shows_its_tiles_as_a_bar(tmp_path):
    # A photo takes minutes on the CPU, in which a single picture showed nothing at all.
    pictures(tmp_path, ["in.png"])
    args = [NCNN_SR, "-i", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), *X2_CPU]
    shown = on_a_terminal(args)
    assert "ncnn-sr: 0tile [" in shown and "1/1 [" in shown  # before any tile is done, and the total once known
    assert size_of(tmp_path / "out.png") == (32, 24)
    assert on_a_terminal([*args, "-q"]).strip() == ""
    # An animation's bar counts the tiles of all its frames: it showed nothing either.
    frames = [Image.fromarray(picture(12, 16, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    shown = on_a_terminal([NCNN_SR, "-i", str(tmp_path / "in.gif"), "-o", str(tmp_path / "out.gif"), *X2_CPU])
    assert "1/3 [" in shown and "/1 [" not in shown


def test_a_folders_bar_moves_with_the_tiles_of_the_pictures_in_work(tmp_path):
    # It counted whole pictures only: a few large photos on the CPU sat at 0/N for minutes.
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(256, 256))
    shown = on_a_terminal([NCNN_SR, "-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *X2_CPU, "-t", "32",
                           "-j", "1:1:1"])
    shares = {float(n) for n in re.findall(r"\| (\d\.\d)/2 \[", shown)}
    assert shares - {0.0, 1.0, 2.0}, shown  # a share of a picture was shown
    assert sorted(shares) == sorted(shares, key=lambda n: shown.index(f"| {n:.1f}/2 ["))  # never backwards
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_a_folders_bar_drops_the_share_of_a_picture_that_failed_midway(tmp_path):
    # Its two tiles of four stayed counted beside its outcome: 1.5 of 2 pictures shown
    # with one done, until that worker's next picture.
    from types import SimpleNamespace
    from ncnn_sr import InputError
    from ncnn_sr.console import Progress
    from ncnn_sr.devices import CPU
    from ncnn_sr.jobs import Job
    from ncnn_sr.lanes import Lane
    from ncnn_sr.pipeline import Pipeline

    class Refusing:
        device, scale = CPU, 1

        def upscale(self, image, progress=None, **kw):
            progress(1, 4)
            progress(2, 4)
            raise InputError("refused at its third tile")

    class Bar(SimpleNamespace):
        def update(self, step):
            self.n += step

        def set_postfix_str(self, words):
            self.postfix = words

    pictures(tmp_path, ["a.png"])
    progress = Progress("ncnn-sr", 2, verbose=False, quiet=True, show=True)
    progress.bar = Bar(n=0.0)
    summary = Pipeline([Lane(Refusing(), 1)], on_outcome=progress, on_tile=progress.tile).run(
        [Job(tmp_path / "a.png", tmp_path / "out.png")])
    assert summary.failed == 1 and progress.bar.n == 1.0 and progress.bar.postfix == "0 upscaled, 1 failed"


def test_a_folders_bar_drops_the_share_of_an_animations_frame_lost_with_another(tmp_path):
    # One frame failed while another worker was on the next: that frame's tiles told
    # stayed counted beside the animation's outcome, until that worker's next picture.
    from types import SimpleNamespace
    from ncnn_sr import InputError
    from ncnn_sr.console import Progress
    from ncnn_sr.devices import CPU
    from ncnn_sr.jobs import Job
    from ncnn_sr.lanes import Lane
    from ncnn_sr.pipeline import Pipeline

    failing, untold = threading.Event(), threading.Event()

    class FailingSecondFrame:
        device, scale = CPU, 1

        def upscale(self, image, progress=None, **kw):
            progress(1, 4)
            if image[0, 0, 0] > 128:  # the second frame
                failing.set()
                raise InputError("refused at its second tile")
            assert untold.wait(10)  # the failure has reached the Pipeline
            progress(2, 4)
            return image.copy()

    frames = [Image.new("RGB", (8, 8), (value,) * 3) for value in (0, 255)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    progress = Progress("ncnn-sr", 2, verbose=False, quiet=True, show=True)
    progress.bar = SimpleNamespace(n=0.0, update=lambda step: None, set_postfix_str=lambda words: None)
    def on_tile(done, total):
        progress.tile(done, total)
        if not done:
            untold.set()
    summary = Pipeline([Lane(FailingSecondFrame(), 2)], on_outcome=progress, on_tile=on_tile).run(
        [Job(tmp_path / "a.gif", tmp_path / "out.gif")])
    assert failing.is_set() and summary.failed == 1
    assert progress._shown() == 1, progress._parts


def test_verbose_names_each_file_and_debug_shows_tracebacks(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    out = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
              "-g", "-1", "-v")
    assert f"{tmp_path / 'in' / 'a.png'} -> {tmp_path / 'out' / 'a.png'} done" in out.stderr
    failed = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "o2", "-n", "nope", "--debug", check_ok=False)
    assert failed.returncode != 0 and "Traceback" in failed.stderr


def test_a_verbose_batch_whose_stderr_reader_went_away_still_upscales_every_picture(tmp_path):
    # ncnn-sr -v 2>&1 | head: the first log line after head had gone (loading the
    # model) ended the run before any picture, exit status 1 and nothing written.
    pictures(tmp_path / "in", ["a.png", "b.png", "c.png"])
    read, write = os.pipe()
    os.close(read)  # every write to stderr is then EPIPE
    try:
        proc = subprocess.run([NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-v", *X2_CPU],
                              stderr=write, timeout=300)
    finally:
        os.close(write)
    assert proc.returncode == 1  # what it had to say was lost
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


def test_dropin_tiles_like_the_reference_and_ncnn_sr_is_seam_free(tmp_path):
    from ncnn_sr import Upscaler

    image = picture(40, 70, seed=5)
    Image.fromarray(image).save(tmp_path / "in.png")
    run(DROPIN, "-i", tmp_path / "in.png", "-o", tmp_path / "ref.png", "-t", "32", "-g", "-1")
    run(NCNN_SR, "-i", tmp_path / "in.png", "-o", tmp_path / "ours.png", "-n", "realesr-animevideov3", "-t", "32",
        "-g", "-1")
    model = "realesr-animevideov3-x4"
    reference = Upscaler(model, device=-1, tile=32, tile_pad=10).upscale(image)
    seam_free = Upscaler(model, device=-1, tile=32).upscale(image)
    assert not np.array_equal(reference, seam_free)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ref.png")), reference)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")), seam_free)


def test_output_folders_the_run_made_and_left_empty_are_taken_back(tmp_path):
    # Every picture failed to be written (here: too wide for WebP), as on a full disk.
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(1, 48)).save(tmp_path / "in" / "line.png")
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out" / "sub", "-f", "webp", "--width", "17000",
               "-g", "-1", "-s", "2", check_ok=False)
    assert proc.returncode == 1 and "too large for WebP" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in"]


def in_small_disk(folder: Path, cmd: list) -> list:
    """``cmd`` run with a 120 kB file system mounted on ``folder``, in a mount namespace
    of its own (nothing to unmount, whatever happens); pytest.skip where that is not
    permitted."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace here")
    script = f'mount -t tmpfs -o size=120k tmpfs "{folder}" && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, "sh", *map(str, cmd)]


def test_a_full_disk_stops_a_folder_run_and_says_how_to_go_on(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for i in range(12):  # noise: about 36 kB a PNG once upscaled
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "in" / f"p{i:02d}.png")
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = in_small_disk(disk, [NCNN_SR, "-i", tmp_path / "in", "-o", disk / "out", "-n", "realesr-animevideov3",
                               "-s", "2", "-g", "-1"])
    # Left behind, a temporary file would be on the small disk, gone with its namespace:
    # the run lists what it leaves there before it ends.
    cmd[4] = cmd[4].replace('exec "$@"', '"$@"; status=$?; ls -A "' + str(disk / "out") + '" >&2; exit $status')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    stopped = [line for line in lines if line.startswith("ncnn-sr: stopped: ")]
    assert len(stopped) == 1 and "cannot write " in stopped[0] and "No space left on device;" in stopped[0]
    # The one line: the picture that stopped it was said first, the same words again.
    assert not [line for line in lines if line.startswith("ncnn-sr: error: ")], lines
    assert stopped[0].endswith("not done; once it can be written, the same command with --skip-existing goes on "
                               "from there")
    listed = lines[lines.index(stopped[0]) + 1:]
    assert listed and all(name.endswith(".png") and not name.startswith(".") for name in listed)


def test_a_full_disk_fails_a_single_picture_in_words(tmp_path):
    # The line of the picture that stopped the run was left to the folder's "stopped:"
    # line, which a single picture has not: it failed with status 1 and no word.
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = in_small_disk(disk, [NCNN_SR, "-i", tmp_path / "a.png", "-o", disk / "a.png", "-n", "realesr-animevideov3",
                               "-s", "2", "-g", "-1"])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: cannot write {disk / 'a.png'}: No space left on device\n"


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
@pytest.mark.parametrize("source", ["in/a.png", "in"])
def test_an_output_with_a_trailing_slash_is_a_folder_made_if_missing(cmd, source, tmp_path):
    # click's Path dropped the slash: a picture into new/ was refused as "new has no extension".
    pictures(tmp_path / "in", ["a.png"], size=(16, 16))
    run(cmd, "-i", source, "-o", "new/", "-g", "-1", "-s", "2", cwd=tmp_path)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["a.png"]
    assert size_of(tmp_path / "new" / "a.png") == (32, 32)


@pytest.mark.parametrize("cmd", [NCNN_SR, DROPIN])
@pytest.mark.parametrize("output", ["new/", "there"])
def test_a_single_video_into_a_folder_keeps_its_name_there_as_a_single_picture(cmd, output, tmp_path):
    # It was refused, "new/ is a folder: give the output video's file name", where a
    # picture went into the folder, and a folder's videos went in each by its name.
    make_clip(tmp_path / "v.mp4", frames=2, width=16, height=16, audio=None)
    (tmp_path / "there").mkdir()
    proc = run(cmd, "-i", "v.mp4", "-o", output, "-g", "-1", "-s", "2", "-n", "realesr-animevideov3", cwd=tmp_path)
    folder = tmp_path / output.rstrip("/")
    assert os.listdir(folder) == ["v.mp4"]
    with av.open(str(folder / "v.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (32, 32)
    assert str(Path(output.rstrip("/")) / "v.mp4") in proc.stderr


def test_a_sub_folder_that_cannot_be_listed_fails_alone_and_the_rest_is_upscaled(tmp_path, monkeypatch, capsys):
    # One unreadable sub-folder ended a recursive run before any picture. In-process:
    # root lists a folder whatever its mode, so the listing is refused by hand.
    from ncnn_sr import batch_cli, console

    pictures(tmp_path / "in", ["a.png", "locked/b.png", "open/c.png"], size=(16, 16))
    scandir = os.scandir
    locked = str(tmp_path / "in" / "locked")

    def scan(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return scandir(path)
    monkeypatch.setattr(os, "scandir", scan)
    opts = batch_cli.RunOptions(input=tmp_path / "in", output=tmp_path / "out", model="realesr-animevideov3-x2",
                                model_path=None, gpu="-1", tile="0", jobs="1:1:1", tta=False, fmt=None, recursive=True)
    console.setup_logging("ncnn-sr", verbose=False)
    assert batch_cli.run("ncnn-sr", opts) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"ncnn-sr: error: {locked}: cannot list: Permission denied: its pictures, and the folders in "
                        "it, are left out")
    assert lines[-1].startswith("ncnn-sr: 2 pictures: 2 upscaled, 0 skipped, 0 failed, 1 folder not listed in ")
    found = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert found == ["a.png", "open/c.png"]


def test_dropin_jpegs_into_a_trailing_slash_folder_are_at_quality_100_as_the_reference(tmp_path):
    # A picture into new/ counted as a file output, whose extension ("") is no JPEG's.
    pictures(tmp_path / "in", ["a.png"], size=(16, 16))
    run(DROPIN, "-i", "in/a.png", "-o", "new/", "-f", "jpg", "-g", "-1", "-s", "2", cwd=tmp_path)
    with Image.open(tmp_path / "new" / "a.jpg") as im:
        assert set(im.quantization[0]) == {1}


def test_videos_in_a_folder_are_left_out_with_a_word(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    (tmp_path / "in" / "clip.mp4").write_bytes(b"not looked at")
    (tmp_path / "in" / "other.MKV").write_bytes(b"not looked at")
    proc = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert "2 videos in" in proc.stderr and "ncnn-sr video" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def _scraped_folder(folder: Path) -> Path:
    """Pictures named as a scraper or a phone's export leaves them: d is a png with no
    extension, and d.png is another picture of its stem."""
    pictures(folder, ["a.jfif", "b.jpe", "c.JPG", "e.tif", "g.webp", "d.png"], size=(16, 16))
    Image.fromarray(picture(16, 16, seed=9)).save(folder / "d", "PNG")
    (folder / "f.heic.txt").write_text("not a picture")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return folder


def test_a_folder_takes_pictures_without_an_extension_and_says_what_it_leaves_out(tmp_path):
    # d and f.heic.txt were left out without a word, even with -v ("5 pictures: 5
    # upscaled"): the reference reads every file of a folder by its content.
    src = _scraped_folder(tmp_path / "fin")
    out = tmp_path / "fout"
    args = ["-i", src, "-o", out, "-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    proc = run(NCNN_SR, *args, "-v")
    assert f"ncnn-sr: warning: 1 file in {src} left out: not a picture by its name (f.heic.txt)\n" in proc.stderr
    assert "ncnn-sr: 7 pictures: 7 upscaled, 0 skipped, 0 failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png", "d.png.png", "e.png",
                                                     "g.png"]
    assert size_of(out / "d.png") == (32, 32)
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "7 pictures: 0 upscaled, 7 skipped" in proc.stderr
    # d.png.png gone: it is written again, and d.png with it (d took the plain name, as
    # a.bmp added beside a.jpg takes a.png), not taken for d.png's output.
    (out / "d.png.png").unlink()
    proc = run(NCNN_SR, *args, "--skip-existing")
    assert "7 pictures: 2 upscaled, 5 skipped" in proc.stderr


def test_dropin_takes_pictures_without_an_extension_and_says_what_it_leaves_out(tmp_path):
    # The reference reads every file of a folder: a folder of extension-less pictures
    # gave nothing here, with status 0 and "failed" nowhere.
    src = _scraped_folder(tmp_path / "fin")
    proc = run(DROPIN, "-i", src, "-o", tmp_path / "fout", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
               "-f", "jpg")
    assert f"1 file in {src} left out: not a picture by its name (f.heic.txt)" in proc.stderr
    assert "failed" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "fout").iterdir()) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "d.png.jpg",
                                                                     "e.jpg", "g.jpg"]


def test_a_folder_takes_pictures_whose_suffix_is_no_extension_as_a_single_one_is_taken(tmp_path):
    # photo.jpg_large and image.png~ were "left out: not pictures by their names" in a
    # folder, where the same file given alone was upscaled (by its content) into
    # out/photo.png; a raw photo was read as its preview alone, or said to be no picture.
    src = pictures(tmp_path / "fin", ["photo.jpg", "b.png"], size=(16, 16))
    Image.fromarray(picture(16, 16, seed=7)).save(src / "photo.jpg_large", "JPEG")
    Image.fromarray(picture(16, 16, seed=8)).save(src / "image.png~", "PNG")
    Image.fromarray(picture(16, 16, seed=9)).save(src / "raw.dng", "TIFF")
    out = tmp_path / "fout"
    fast = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    proc = run(NCNN_SR, "-i", src, "-o", out, *fast)
    assert f"warning: 1 raw photo in {src} left out (raw.dng): raw photos are not read here" in proc.stderr
    assert "4 pictures: 4 upscaled, 0 skipped, 0 failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "image.png", "photo.jpg_large.png", "photo.png"]
    assert size_of(out / "photo.jpg_large.png") == (32, 32)
    # Alone, each goes where it would in a folder, and the raw photo is refused alike.
    run(NCNN_SR, "-i", src / "photo.jpg_large", "-o", f"{tmp_path / 'one'}{os.sep}", *fast)
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["photo.png"]
    proc = run(NCNN_SR, "-i", src / "raw.dng", "-o", tmp_path / "raw.png", *fast, check_ok=False)
    assert proc.returncode == 1 and proc.stderr == (
        f"ncnn-sr: error: {src / 'raw.dng'} is a raw photo, which is not read here: develop it to a 16-bit TIFF or "
        "PNG first (darktable, RawTherapee, dcraw -6 -T)\n")
    assert not (tmp_path / "raw.png").exists()


def test_quality_for_png_outputs_is_said_to_be_ignored(tmp_path):
    pictures(tmp_path / "in", ["a.png"])
    args = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1", "--quality", "50"]
    proc = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.png", *args)
    assert "--quality ignored" in proc.stderr
    proc = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.gif", *args)
    assert "--quality ignored" in proc.stderr
    proc = run(NCNN_SR, "-i", tmp_path / "in" / "a.png", "-o", tmp_path / "a.jpg", *args)
    assert "--quality ignored" not in proc.stderr


def test_the_drop_in_reads_a_pipe_path_as_the_reference_reads_any_file(tmp_path):
    """Scripts hand the reference `-i <(curl ...)` or /dev/stdin: it opens any path.
    The drop-in said such a pipe was neither a file nor a folder."""
    Image.fromarray(picture(6, 5)).save(tmp_path / "in.png")
    args = [DROPIN, "-i", "/dev/stdin", "-o", str(tmp_path / "o.png"), "-n", "realesr-animevideov3", "-s", "2",
            "-g", "-1"]
    proc = subprocess.run(args, input=(tmp_path / "in.png").read_bytes(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert size_of(tmp_path / "o.png") == (10, 12)
    empty = subprocess.run(args[:4] + [str(tmp_path / "e.png")] + args[5:], input=b"", capture_output=True,
                           timeout=60)
    assert empty.returncode == 1 and empty.stderr.decode().count("\n") == 1 and b"is empty" in empty.stderr
    assert not (tmp_path / "e.png").exists()


@pytest.mark.parametrize("args, said", [
    (["-i", "-", "-o", "o.png"], "- failed: no file named - here: the drop-in reads standard input as -i /dev/stdin"),
    (["-i", "in.png", "-o", "-"], "in.png failed: -o -: the drop-in writes files, not standard output: give the "
                                  "output picture's name or a folder"),
    (["-i", "in", "-o", "-"], "in failed: -o -: the drop-in writes files, not standard output: give the output "
                              "picture's name or a folder"),
])
def test_a_dash_for_a_standard_stream_is_refused_by_the_drop_in_with_what_to_give(args, said, tmp_path):
    # The drop-in reads "-" as a file's name, as the reference: -i - said "-: file not
    # found", -o - "- has no extension", and a folder run made a folder named "-".
    pictures(tmp_path, ["in.png"])
    pictures(tmp_path / "in", ["a.png"])
    proc = run(DROPIN, *args, *X2_CPU, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and proc.stderr == f"realesrgan-ncnn-vulkan: error: {said}\n"
    assert sorted(os.listdir(tmp_path)) == ["in", "in.png"]


def test_a_file_or_folder_named_dash_is_taken_by_the_drop_in_as_by_the_reference(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "-", format="PNG")
    run(DROPIN, "-i", "-", "-o", "o.png", *X2_CPU, cwd=tmp_path)
    (tmp_path / "d" / "-").mkdir(parents=True)
    pictures(tmp_path / "in", ["a.png"])
    run(DROPIN, "-i", "../in", "-o", "-", *X2_CPU, cwd=tmp_path / "d")
    assert size_of(tmp_path / "o.png") == (32, 24) and os.listdir(tmp_path / "d" / "-") == ["a.png"]


def test_the_drop_in_takes_a_video_from_a_pipe_path_to_an_output_named_as_a_video(tmp_path):
    """As `ncnn-sr -i - -o out.mkv` does: a pipe's kind is not in its name, and the
    drop-in said "unsupported output format '.mp4' ... use png, jpg or webp"."""
    clip = make_clip(tmp_path / "in.mkv", frames=3)
    proc = subprocess.run([DROPIN, "-i", "/dev/stdin", "-o", str(tmp_path / "o.mp4"), "-n", "realesr-animevideov3",
                           "-s", "2", "-g", "-1"], input=clip.read_bytes(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert len(list(c.decode(video=0))) == 3 and c.streams.video[0].width == 64


# --- several devices: one that fails ---------------------------------------------------

def failing_device(monkeypatch, which, others_wait: bool = False):
    """Upscalers for which ``which(upscaler)`` is true fail each picture as a lost Vulkan
    device does, from inside ncnn's run. With ``others_wait``, the others start no
    picture until one has failed: which lane takes a picture first is the threads'
    timing, and a sound lane could take them all before a failing one had any."""
    from ncnn_sr import engine

    real, failed = engine.Upscaler._run_tiles, threading.Event()

    def run_tiles(self, *args, **kwargs):
        if which(self):
            failed.set()
            raise RuntimeError("vkQueueSubmit failed: VK_ERROR_DEVICE_LOST")
        if others_wait:
            assert failed.wait(120), "no lane that fails took a picture"
        return real(self, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "_run_tiles", run_tiles)


def same_pictures(one: Path, other: Path) -> None:
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in other.iterdir())
    for name in names:
        assert np.array_equal(np.asarray(Image.open(one / name)), np.asarray(Image.open(other / name))), name


def test_a_cpu_lane_that_fails_hands_its_pictures_to_the_other_lane(tmp_path, in_process, monkeypatch):
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(4)])
    flags = ["-n", "realesr-animevideov3", "-s", "2"]
    alone = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "alone", *flags, "-g", "-1")
    assert alone.returncode == 0
    first = []  # the Upscaler of the first lane that gets a picture fails

    failing_device(monkeypatch, lambda up: (first or first.append(up) or True) and up is first[0])
    status, said = in_process("-i", tmp_path / "in", "-o", tmp_path / "out", *flags, "-g", "-1,-1", "-j", "1:1:2")
    assert status == 0, said
    lines = said.splitlines()
    # Two lanes on the CPU: which one failed is said ("CPU failed" named neither).
    assert lines[0] in [f"ncnn-sr: warning: CPU lane {n} failed (RuntimeError('vkQueueSubmit failed: "
                        "VK_ERROR_DEVICE_LOST')): it takes no more pictures, the other devices go on" for n in (1, 2)]
    assert lines[-1].startswith("ncnn-sr: 4 pictures: 4 upscaled, 0 skipped, 0 failed in ")
    same_pictures(tmp_path / "alone", tmp_path / "out")


def test_a_picture_that_fails_on_both_lanes_fails_alone_and_both_lanes_go_on(tmp_path, in_process, monkeypatch):
    # The first lane was out for the rest of the run, which went on at half speed.
    from ncnn_sr import engine

    pictures(tmp_path / "in", [f"p{i}.png" for i in range(6)])
    # odd.png sorts first, so at least five good pictures are left once it has failed on both lanes.
    Image.fromarray(picture(13, 17)).save(tmp_path / "in" / "odd.png")
    real, failed_on, after = engine.Upscaler._run_tiles, [], set()
    turn = threading.Condition()

    def run_tiles(self, image, *args, **kwargs):
        with turn:
            if image.shape[:2] == (13, 17):
                failed_on.append(self)
                raise IndexError("a bug an odd size meets")
            if len(failed_on) == 2:
                # Once it has failed on both, each lane takes a picture before either goes on:
                # which would take the rest is the threads' timing.
                after.add(id(self))
                turn.notify_all()
                assert turn.wait_for(lambda: len(after) == 2, timeout=120), "one lane took no more pictures"
        return real(self, image, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "_run_tiles", run_tiles)
    status, said = in_process("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
                              "-g", "-1,-1", "-j", "1:1:2")
    assert status == 1, said
    lines = said.splitlines()
    # "CPU takes pictures again: odd.png failed on CPU too" named neither lane.
    first, second = ("CPU lane 1", "CPU lane 2") if "CPU lane 1 failed" in lines[0] else ("CPU lane 2", "CPU lane 1")
    assert lines[:2] == [f"ncnn-sr: warning: {first} failed (IndexError('a bug an odd size meets')): it takes no "
                         "more pictures, the other devices go on",
                         f"ncnn-sr: warning: {first} takes pictures again: {tmp_path / 'in' / 'odd.png'} failed on "
                         f"{second} too, so the picture was more likely at fault"]
    assert f"{tmp_path / 'in' / 'odd.png'}: upscaling failed on {first}, then on {second}: IndexError('a bug an odd " \
           "size meets')" in said
    assert lines[-1].startswith("ncnn-sr: 7 pictures: 6 upscaled, 0 skipped, 1 failed in ")
    assert failed_on[0] is not failed_on[1] and len(after) == 2  # each lane upscaled pictures after it


def test_once_every_listed_device_has_failed_the_run_stops_in_one_line(tmp_path, in_process, monkeypatch):
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(12)])
    failing_device(monkeypatch, lambda up: True)
    status, said = in_process("-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
                              "-g", "-1,-1", "-j", "1:1:2")
    assert status == 1
    stopped = [line for line in said.splitlines() if line.startswith("ncnn-sr: stopped: ")]
    assert len(stopped) == 1 and stopped[0].startswith("ncnn-sr: stopped: every device failed (CPU); 0 upscaled, "
                                                       "0 skipped, ")
    assert stopped[0].endswith(" not done; once a device works again, the same command with --skip-existing goes on "
                               "from there")
    assert not (tmp_path / "out").exists()  # the folder made for the run, taken back


def test_a_gpu_that_fails_hands_its_pictures_to_the_cpu(gpu, tmp_path, in_process, monkeypatch):
    pictures(tmp_path / "in", [f"p{i}.png" for i in range(3)], size=(8, 8))
    flags = ["-n", "realesr-animevideov3", "-s", "2"]
    run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "alone", *flags, "-g", "-1")
    # Under load the CPU lane took all three pictures before lavapipe's had one, and none failed.
    failing_device(monkeypatch, lambda up: up.device.is_gpu, others_wait=True)
    status, said = in_process("-i", tmp_path / "in", "-o", tmp_path / "out", *flags, "-g", f"{gpu},-1")
    assert status == 0, said
    failed = [line for line in said.splitlines() if "warning" in line and "failed" in line]
    assert len(failed) == 1 and failed[0].startswith(f"ncnn-sr: warning: GPU {gpu} (")
    assert failed[0].endswith("failed (RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')): "
                              "it takes no more pictures, the other devices go on")
    same_pictures(tmp_path / "alone", tmp_path / "out")


def test_a_software_vulkan_device_asked_by_its_index_is_said_to_be_slower_than_the_cpu(tmp_path):
    # Scripts written for the reference (no CPU mode) pass -g 0 by habit; where GPU 0 is
    # lavapipe that ran ten times slower than -g -1 without a word.
    import ncnn_sr.devices as devices

    software = [i for i in range(devices.gpu_count()) if devices.get_device(i).kind == "cpu"]
    if not software:
        pytest.skip("no software Vulkan device here")
    pictures(tmp_path, ["a.png"], size=(8, 8))
    for prog in (NCNN_SR, DROPIN):
        proc = run(prog, "-i", tmp_path / "a.png", "-o", tmp_path / f"{Path(prog).name}.png", "-n", "realesr-animevideov3",
                   "-s", "2", "-g", f"{software[0]},{software[0]}")
        assert proc.stderr.count("is a software Vulkan device, about ten times slower than the CPU: -g -1 runs on "
                                 "the CPU\n") == 1, proc.stderr
    assert "software" not in run(NCNN_SR, "-i", tmp_path / "a.png", "-o", tmp_path / "c.png", "-n",
                                 "realesr-animevideov3", "-s", "2", "-g", "-1").stderr


def test_one_picture_with_the_cpu_and_a_software_vulkan_device_runs_on_the_cpu_without_a_warning(tmp_path):
    # -g 0,-1 ran on lavapipe, the first listed, ten times slower than the CPU; -g -1,0
    # warned that lavapipe was slow, then left it out.
    import ncnn_sr.devices as devices

    software = [i for i in range(devices.gpu_count()) if devices.get_device(i).kind == "cpu"]
    if not software:
        pytest.skip("no software Vulkan device here")
    pictures(tmp_path, ["a.png"], size=(8, 8))
    for order in (f"{software[0]},-1", f"-1,{software[0]}"):
        proc = run(NCNN_SR, "-i", tmp_path / "a.png", "-o", tmp_path / "b.png", "-n", "realesr-animevideov3", "-s", "2",
                   "-g", order, "-v")
        assert "software" not in proc.stderr and "ncnn-sr: loading realesr-animevideov3-x2 on CPU\n" in proc.stderr
        assert f"ncnn-sr: GPU {software[0]} (" in proc.stderr and "is left out" in proc.stderr


def test_a_video_frame_failed_on_two_lost_lanes_of_three_is_finished_by_the_third(tmp_path, in_process, monkeypatch):
    # A frame that failed on a second lane failed the whole video, the third lane sound.
    from ncnn_sr import engine

    clip = make_clip(tmp_path / "in.mp4", frames=6, audio=None)
    flags = ["-n", "realesr-animevideov3", "-s", "2", "--codec", "ffv1"]
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "alone.mkv", *flags, "-g", "-1")
    real, first, failed = engine.Upscaler._run_tiles, [], []

    def run_tiles(self, image, *args, **kwargs):
        # The first two lanes the first frame meets fail it, as lost devices would.
        first[:] = first or [image.copy()]
        if np.array_equal(image, first[0]) and len(failed) < 2:
            failed.append(self)
            raise RuntimeError("vkQueueSubmit failed: VK_ERROR_DEVICE_LOST")
        return real(self, image, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "_run_tiles", run_tiles)
    status, said = in_process("video", "-i", clip, "-o", tmp_path / "three.mkv", *flags, "-g", "-1,-1,-1",
                              "-j", "1:1:1")
    assert status == 0, said
    assert len(failed) == 2 and failed[0] is not failed[1]
    lost = [f"ncnn-sr: warning: CPU lane {n} failed (RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')): "
            "it takes no more frames, the other devices go on" for n in (1, 2, 3)]
    warned = said.splitlines()[:2]
    assert warned[0] != warned[1] and set(warned) <= set(lost)  # two lanes, each named

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    alone, three = frames(tmp_path / "alone.mkv"), frames(tmp_path / "three.mkv")
    assert len(alone) == len(three) == 6 and all(np.array_equal(a, b) for a, b in zip(alone, three))


def test_a_video_whose_lane_fails_is_finished_by_the_other(tmp_path, in_process, monkeypatch):
    # One Vulkan error on one lane failed the whole video.
    clip = make_clip(tmp_path / "in.mp4", frames=8, audio=None)
    flags = ["-n", "realesr-animevideov3", "-s", "2", "--codec", "ffv1"]
    run(NCNN_SR, "video", "-i", clip, "-o", tmp_path / "alone.mkv", *flags, "-g", "-1")
    first = []
    failing_device(monkeypatch, lambda up: (first or first.append(up) or True) and up is first[0])
    status, said = in_process("video", "-i", clip, "-o", tmp_path / "two.mkv", *flags, "-g", "-1,-1", "-j", "1:1:1")
    assert status == 0, said
    assert said.splitlines()[0] in [f"ncnn-sr: warning: CPU lane {n} failed (RuntimeError('vkQueueSubmit failed: "
                                    "VK_ERROR_DEVICE_LOST')): it takes no more frames, the other devices go on"
                                    for n in (1, 2)]

    def frames(path):
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    alone, two = frames(tmp_path / "alone.mkv"), frames(tmp_path / "two.mkv")
    assert len(alone) == len(two) == 8 and all(np.array_equal(a, b) for a, b in zip(alone, two))


def test_a_video_whose_frames_fail_on_its_one_device_is_one_line_naming_it_and_the_device(tmp_path, in_process,
                                                                                           monkeypatch):
    # found by review: the RuntimeError came out of the command as a traceback.
    clip = make_clip(tmp_path / "in.mp4", frames=2, audio=None)
    failing_device(monkeypatch, lambda up: True)
    out = tmp_path / "new" / "out.mp4"
    status, said = in_process("video", "-i", clip, "-o", out, "-n", "realesr-animevideov3", "-s", "2", "-g", "-1")
    assert status == 1
    assert said.splitlines() == [f"ncnn-sr: error: {clip}: upscaling failed on CPU: "
                                 "RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')"]
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]  # neither a part file nor the folder made for it


def test_in_a_folder_a_video_that_fails_on_its_one_device_fails_alone_and_the_others_go_on(tmp_path, in_process,
                                                                                           monkeypatch):
    # As a picture that fails on the one device there fails alone.
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(tmp_path / "in" / name, frames=2, audio=None)
    failing_device(monkeypatch, lambda up: True)
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3",
                              "-s", "2", "-g", "-1")
    assert status == 1
    lines = said.splitlines()
    assert lines[:2] == [f"ncnn-sr: error: {tmp_path / 'in' / name}: upscaling failed on CPU: "
                         "RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')" for name in ("a.mp4", "b.mp4")]
    assert lines[2] == "ncnn-sr: failed: a.mp4, b.mp4"
    assert lines[3].startswith("ncnn-sr: 2 videos: 0 upscaled, 0 skipped, 2 failed in ") and len(lines) == 4
    assert not (tmp_path / "out").exists()


def test_a_folder_of_videos_stops_in_one_line_once_every_device_has_failed(tmp_path, in_process, monkeypatch):
    # As a folder of pictures does: each later video would fail on them alike. The
    # first video failed on every device may be the video's fault; the second in a row
    # says the devices'.
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(tmp_path / "in" / name, frames=2, audio=None)
    failing_device(monkeypatch, lambda up: True)
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3",
                              "-s", "2", "-g", "-1,-1", "-j", "1:1:1")
    assert status == 1
    lines = [line for line in said.splitlines() if "warning" not in line]
    both = ("CPU lane 1, then on CPU lane 2", "CPU lane 2, then on CPU lane 1")
    assert lines[:2] in [[f"ncnn-sr: error: {tmp_path / 'in' / name}: upscaling failed on {way}: RuntimeError("
                          "'vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')"
                          for name, way in zip(("a.mp4", "b.mp4"), ways)] for ways in itertools.product(both, both)]
    # Each failed on its own line, named again above the stop's, which names no video.
    assert lines[2:] == ["ncnn-sr: failed: a.mp4, b.mp4",
                         "ncnn-sr: stopped: every device failed (CPU); 0 upscaled, 0 skipped, 2 failed, 1 not done; "
                         "once a device works again, the same command with --skip-existing goes on from there"]
    assert not (tmp_path / "out").exists()


def test_in_a_folder_a_video_whose_frame_fails_on_every_device_fails_alone_and_the_others_go_on(
        tmp_path, in_process, monkeypatch):
    # found by tools/failover_stress.py: with two lanes a bad frame stopped the folder as
    # if every device were lost, there again on each rerun with --skip-existing.
    from ncnn_sr import engine

    (tmp_path / "in").mkdir()
    for name, width in (("a.mp4", 40), ("b.mp4", 32), ("c.mp4", 40)):  # a and c bad, b between them
        make_clip(tmp_path / "in" / name, frames=2, width=width, audio=None)
    real = engine.Upscaler.upscale

    def upscale(self, image, *args, **kwargs):
        if image.shape[1] == 40:
            raise IndexError("a bug a frame meets")
        return real(self, image, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "upscale", upscale)
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3",
                              "-s", "2", "-g", "-1,-1", "-j", "1:1:1")
    assert status == 1
    lines = [line for line in said.splitlines() if "warning" not in line]
    errors = [line for line in lines if "error" in line]
    assert len(errors) == 2
    for line, name in zip(errors, ("a.mp4", "c.mp4")):
        assert line in [f"ncnn-sr: error: {tmp_path / 'in' / name}: upscaling failed on {way}: IndexError('a bug a "
                        "frame meets')" for way in ("CPU lane 1, then on CPU lane 2", "CPU lane 2, then on CPU lane 1")]
    assert lines[1].startswith(f"ncnn-sr: wrote {tmp_path / 'out' / 'b.mp4'}: 2 frames in ")
    assert lines[-2] == "ncnn-sr: failed: a.mp4, c.mp4"
    assert lines[-1].startswith("ncnn-sr: 3 videos: 1 upscaled, 0 skipped, 2 failed in ") and len(lines) == 5
    assert sorted(os.listdir(tmp_path / "out")) == ["b.mp4"]


def test_in_a_folder_of_videos_a_device_that_failed_a_frame_another_did_stays_out(tmp_path, in_process, monkeypatch):
    # It came back for each video, failed a frame and warned again.
    (tmp_path / "in").mkdir()
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(tmp_path / "in" / name, frames=6, audio=None)
    first = []
    failing_device(monkeypatch, lambda up: (first or first.append(up) or True) and up is first[0])
    status, said = in_process("video", "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3",
                              "-s", "2", "-g", "-1,-1", "-j", "1:1:1")
    assert status == 0, said
    assert [line for line in said.splitlines() if "warning" in line] in [[
        f"ncnn-sr: warning: CPU lane {n} failed (RuntimeError('vkQueueSubmit failed: VK_ERROR_DEVICE_LOST')): it takes "
        "no more frames, the other devices go on"] for n in (1, 2)]
    assert sorted(os.listdir(tmp_path / "out")) == ["a.mp4", "b.mp4", "c.mp4"]


def test_a_full_disk_met_making_a_videos_folder_stops_a_folder_of_videos(tmp_path, in_process, monkeypatch):
    # It was a plain failure of that video, and each later one was upscaled in turn only
    # to fail alike, where a full disk met writing one stops the run.
    import errno

    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.mp4", "sub/b.mp4", "sub/c.mp4"):
        make_clip(tmp_path / "in" / name, frames=2, audio=None)
    out = tmp_path / "out"
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == out / "sub":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    status, said = in_process("video", "-i", tmp_path / "in", "-o", out, "-r", *X2_CPU)
    assert status == 1
    lines = said.splitlines()
    assert lines[0].startswith(f"ncnn-sr: wrote {out / 'a.mp4'}: 2 frames")
    assert lines[1:] == [f"ncnn-sr: stopped: cannot make the folder of {out / 'sub' / 'b.mp4'}: No space left on "
                         "device; 1 upscaled, 0 skipped, 1 failed, 1 not done; once it can be written, the same "
                         "command with --skip-existing goes on from there"]
    assert sorted(p.name for p in out.rglob("*")) == ["a.mp4"]


@pytest.mark.parametrize("cmd, video", [(NCNN_SR, False), (DROPIN, False), (NCNN_SR, True)])
def test_a_model_error_names_the_commands_flags_not_the_librarys_arguments(tmp_path, cmd, video):
    # The library says model_path and the model's name; a command says its -m and -n,
    # the drop-in too, which has them.
    make_clip(tmp_path / "in.mp4", frames=2, width=8, height=8) if video else pictures(tmp_path, ["in.png"])
    (tmp_path / "pics").mkdir()
    given = ["video"] if video else []
    source, output = ("in.mp4", "o.mp4") if video else ("in.png", "o.png")
    proc = run(cmd, *given, "-i", source, "-o", output, "-n", "pics", "-g", "-1", cwd=tmp_path, check_ok=False)
    prog = Path(cmd).name
    assert proc.returncode == 1
    failed = "in.png failed: " if cmd == DROPIN else ""  # in the reference's word
    assert proc.stderr.strip() == (f"{prog}: error: {failed}pics is a folder, not a model: pass the folder with -m "
                                   "and the model's name with -n"), proc.stderr
    proc = run(cmd, *given, "-i", source, "-o", output, "-n", "nope", "-g", "-1", cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1 and "the commands pick by -s" in proc.stderr
    assert proc.stderr.strip().endswith("are in a -m or NCNN_SR_MODEL_PATH folder"), proc.stderr
    assert "model_path" not in proc.stderr and not (tmp_path / output).exists()


@pytest.mark.parametrize("refusal, said", [
    (InputError(".mkv cannot hold huffyuv video"), "in/a.mp4: .mkv cannot hold huffyuv video"),
    (HintedInputError("its EXIF is too large", Option("--no-metadata", "metadata=False")),
     "in/a.mp4: its EXIF is too large (--no-metadata)"),
])
def test_a_folder_s_video_refusal_that_names_no_video_says_its_video_first(refusal, said):
    # Remade in pieces to keep its options, a refusal with none was said as the tuple of
    # them: "('in/a.mp4: ', '.mkv cannot hold huffyuv video')".
    from ncnn_sr.batch_cli import _naming

    assert command_words(_naming(refusal, Path("in/a.mp4"), Path("out/a.mkv"))) == said


def test_a_video_run_s_os_error_that_names_no_file_is_said_without_none(capsys):
    # A refusal of a write that was not a path's (a buffer flushed on close) was said
    # as "ncnn-sr: error: None: No space left on device".
    from ncnn_sr.batch_cli import _say_failed

    _say_failed("ncnn-sr", None, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    _say_failed("ncnn-sr", None, OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), "a" * 300))
    assert capsys.readouterr().err.splitlines() == ["ncnn-sr: error: No space left on device",
                                                     f"ncnn-sr: error: {'a' * 300}: File name too long"]


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_picture_parts_a_killed_run_left_are_removed_once_by_the_next_run_into_that_folder(tmp_path):
    # A run killed outright (SIGKILL, the power) left each picture's hidden part file,
    # which no later run removed. Only parts named as this version names them once
    # locked, and free to lock, go: not one another live run holds, nor one just made
    # (not yet locked: part_files.NEW's name), nor any other file.
    pictures(tmp_path / "in", ["a.png", "b.png"], size=(12, 12))
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / f".{n}.png.ncnn-sr-part-locked.{r}.part" for n, r in (("a", "a1b2c3d4"), ("x", "e5f6g7h8"))]
    live, empty = out / ".b.png.ncnn-sr-part-locked.i9j0k1l2.part", out / ".c.png.ncnn-sr-part-new.m3n4o5p6.part"
    older, foreign = out / ".a.png.q7r8s9t0.part", out / "notes.ncnn-sr-part-locked.u1v2w3x4.part"
    video = out / ".v.ncnn-sr-part-locked.y5z6a7b8.mp4"  # a video's: removed by the next run writing v.mp4
    for path in (*stale, live, older, foreign, video):
        path.write_bytes(b"\0" * 100)
    empty.write_bytes(b"")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", str(live)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        result = run(NCNN_SR, "-i", tmp_path / "in", "-o", out, "-n", "realesrgan-x4plus-anime", "-g", "-1")
    finally:
        holder.communicate("")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["a.png", "b.png", live.name, empty.name, older.name, foreign.name, video.name])
    assert result.stderr.count("removed") == 1
    assert f"{out}: removed 2 hidden part files (200 bytes) left by a run or runs killed while writing there" \
        in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_a_picture_part_killed_before_its_first_byte_is_not_empty_and_the_next_run_removes_it(tmp_path):
    # SIGKILL of a folder run of 300 16x16 pictures left an empty part 2 times in 9:
    # the encoder's bytes wait in the file's buffer (8 kB) until the end, and an empty
    # part may be one just made, not yet locked, so it is never taken for stale. A
    # part holds a byte from its lock on, which the encoder writes over.
    child = ("import sys\nfrom ncnn_sr.files import atomic_write\n"
             "def encode(f):\n    print('encoding', flush=True)\n    sys.stdin.read()\n"
             "atomic_write(sys.argv[1], encode)\n")
    (tmp_path / "out").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", child, str(tmp_path / "out" / "a.png")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "encoding\n"
    finally:
        proc.kill()
        proc.wait()
    [part] = (tmp_path / "out").iterdir()
    part_size = part.stat().st_size
    assert part.name.startswith(".a.png.ncnn-sr-part-locked.") and part_size > 0
    pictures(tmp_path / "in", ["a.png"], size=(12, 12))
    result = run(NCNN_SR, "-i", tmp_path / "in", "-o", tmp_path / "out", "-n", "realesr-animevideov3", "-s", "2",
                 "-g", "-1")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    assert f"{tmp_path / 'out'}: removed a hidden part file ({part_size} byte{'s' * (part_size > 1)}) left by a run " \
           "killed while writing there" in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_the_parts_removed_from_the_current_folder_are_said_removed_from_it_by_its_path(tmp_path):
    # Writing a.png into the current folder, the warning began ".: removed ...".
    pictures(tmp_path, ["in.png"], size=(12, 12))
    (tmp_path / ".a.png.ncnn-sr-part-locked.a1b2c3d4.part").write_bytes(b"\0" * 2_500_000)
    result = run(DROPIN, "-i", "in.png", "-o", "a.png", "-n", "realesr-animevideov3", "-s", "2", "-g", "-1",
                 cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "in.png"]
    assert f"realesrgan-ncnn-vulkan: warning: {tmp_path}: removed a hidden part file (2.4 MB) left by a run killed " \
           "while writing there\n" in result.stderr


# Ways to remove the folder ``gone`` during ncnn-sr's run, code that replaces one of
# pipeline's functions (run_with_a_folder_removed).
_REMOVED_AS_THE_RUN_STARTS = """
real = pipeline.Pipeline.run

def run(self, jobs):
    shutil.rmtree(gone)  # listed by the plan, removed as the run starts: before any of its pictures is read
    return real(self, jobs)

pipeline.Pipeline.run = run
"""
_REMOVED_ONCE_WRITTEN_INTO = """
real = pipeline.write_image

def write_image(target, *given, **options):
    real(target, *given, **options)
    if Path(gone) in Path(target).parents and Path(gone).is_dir():
        shutil.rmtree(gone)  # once its first output is written: its other pictures are left

pipeline.write_image = write_image
"""


def run_with_a_folder_removed(tmp_path: Path, hook: str, gone: str, *flags) -> tuple[Path, Path, list[str]]:
    """ncnn-sr -r over in/a, in/b and in/c (4, 5 and 3 pictures) into out, below
    ``tmp_path``, with ``flags``, in a fresh Python where ``hook`` removes the folder
    ``gone`` (a path below ``tmp_path``) during the run. Its exit status, 1, is
    asserted. Returns in, out and what it said, the plain progress lines left out."""
    for sub, count in (("a", 4), ("b", 5), ("c", 3)):
        pictures(tmp_path / "in" / sub, [f"p{i}.png" for i in range(count)])
    src, out = tmp_path / "in", tmp_path / "out"
    script = (f"import shutil, sys\nfrom pathlib import Path\nfrom ncnn_sr import pipeline\n\n"
              f"gone, *args = sys.argv[1:]\n{hook}\n"
              f"sys.argv = ['ncnn-sr', *args]\nfrom ncnn_sr import entry\nentry.ncnn_sr()\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / gone), "-i", str(src), "-o", str(out), "-r",
                           "-n", "realesr-animevideov3", "-s", "2", "-g", "-1", *flags],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    return src, out, [line for line in proc.stderr.splitlines() if "ETA" not in line]


def test_a_sub_folder_removed_during_a_run_is_one_line_and_the_others_are_done(tmp_path):
    # -r: a sub-folder removed before any of its pictures was read failed each picture
    # alone, a line each ("file not found"), counted failed.
    src, out, lines = run_with_a_folder_removed(tmp_path, _REMOVED_AS_THE_RUN_STARTS, "in/b")
    assert lines[:-1] == [f"ncnn-sr: error: {src / 'b'} was removed or renamed during the run: its pictures not "
                          "yet read are not done; the other folders go on"], lines
    assert lines[-1].startswith("ncnn-sr: 12 pictures: 7 upscaled, 0 skipped, 0 failed, 5 not done in "), lines
    assert sorted(os.listdir(out)) == ["a", "c"] and len(os.listdir(out / "a")) == 4 and len(os.listdir(out / "c")) == 3


def test_an_output_sub_folder_removed_during_a_run_is_one_line_and_the_others_are_done(tmp_path):
    # -r: an output sub-folder removed once its first output was written stopped the
    # whole run ("stopped: out/a was removed during the run (what was written there is
    # gone); 1 upscaled, 0 skipped, 1 failed, 10 not done"), b and c undone, though
    # their outputs go into folders of their own.
    src, out, lines = run_with_a_folder_removed(tmp_path, _REMOVED_ONCE_WRITTEN_INTO, "out/a", "-j", "1:1:1")
    assert lines[:-1] == [f"ncnn-sr: error: {out / 'a'} was removed during the run (what was written there is "
                          "gone): its pictures not yet written are not done; the other folders go on"], lines
    assert lines[-1].startswith("ncnn-sr: 12 pictures: 9 upscaled, 0 skipped, 0 failed, 3 not done in "), lines
    assert sorted(os.listdir(out)) == ["b", "c"] and len(os.listdir(out / "b")) == 5 and len(os.listdir(out / "c")) == 3


def test_the_output_folder_removed_during_a_run_says_the_same_command_starts_over(tmp_path):
    # -r: the output folder (-o) removed once its first picture was written said "once
    # it can be written, the same command with --skip-existing goes on from there",
    # though what it had written went with the folder: nothing to go on from.
    src, out, lines = run_with_a_folder_removed(tmp_path, _REMOVED_ONCE_WRITTEN_INTO, "out", "-j", "1:1:1")
    assert re.fullmatch(rf"ncnn-sr: stopped: {re.escape(str(out))} was removed during the run \(what was written "
                        r"there is gone\); 1 upscaled, 0 skipped, 1 failed, 10 not done; nothing is left to go on "
                        r"from: the same command starts over", lines[-1]), lines
    assert len(lines) == 1 and not out.exists(), lines


@pytest.mark.parametrize("env", LOCALES)
def test_pictures_named_in_latin1_are_written_and_said_by_their_bytes(env, tmp_path):
    # A folder's messages named caf\xe9.png as Python's caf\udce9.png: its progress,
    # the picture that failed, and the drop-in's single picture.
    pictures(tmp_path / "in", [f"{LATIN1}.png"])
    (tmp_path / "in" / os.fsdecode(b"bad\xe9.png")).write_bytes(b"not a picture")
    proc = run_in_locale(env, "-i", tmp_path / "in", "-o", tmp_path / "out", "-v", *X2_CPU, cmd=NCNN_SR)
    said = proc.stderr.decode("ascii")
    assert f"ncnn-sr: error: {tmp_path}/in/bad\\xe9.png: not a picture" in said
    assert f"{tmp_path}/in/caf\\xe9.png -> {tmp_path}/out/caf\\xe9.png done" in said
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9.png"]
    proc = run_in_locale(env, "-i", tmp_path / "in" / os.fsdecode(b"bad\xe9.png"), "-o", tmp_path / "o.png", *X2_CPU,
                         cmd=DROPIN)
    assert proc.returncode != 0 and not (tmp_path / "o.png").exists()
    assert proc.stderr.decode("ascii").splitlines() == [
        f"realesrgan-ncnn-vulkan: error: {tmp_path}/in/bad\\xe9.png failed: not a picture, or a format Pillow cannot "
        "read"]
    run_in_locale(env, "-i", tmp_path / "in" / f"{LATIN1}.png", "-o", tmp_path / f"{LATIN1}.webp", *X2_CPU,
                  cmd=DROPIN)
    assert size_of(tmp_path / f"{LATIN1}.webp") == (32, 24)
