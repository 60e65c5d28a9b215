"""What the commands load as they start. A folder of small pictures is upscaled in a
few seconds, and a module loaded at the start that the run never uses (the bench,
downloads, video, every reader Pillow has) is a part of each of them: these tests
name what stays out, so that an import put back at the top of a module is seen. No
time is measured."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from conftest import picture

MODEL = "realesr-animevideov3-x2"

# Runs a command's entry point, then writes its exit status and the modules it loaded
# (those already there as Python started, a site hook's, are not the command's).
_RUN = """
import gc, json, sys
before = set(sys.modules)
from ncnn_sr.entry import ncnn_sr, realesrgan_ncnn_vulkan
command, report = sys.argv[1], sys.argv[2]
sys.argv = [command, *sys.argv[3:]]
try:
    (ncnn_sr if command == "ncnn-sr" else realesrgan_ncnn_vulkan)()
except SystemExit as e:
    code = e.code
with open(report, "w") as f:
    json.dump({"code": code, "modules": sorted(set(sys.modules) - before), "frozen": gc.get_freeze_count()}, f)
"""

# Only `ncnn-sr bench`, `fetch`, `convert` and `video` use these, and a CMYK picture
# with a colour profile (ImageCms).
RARE = {"ncnn_sr.bench", "ncnn_sr.download", "ncnn_sr.fetch", "ncnn_sr.convert", "ncnn_sr.checkpoint",
        "ncnn_sr.video", "ncnn_sr.video_window", "av", "http.client", "urllib.request", "ssl", "certifi",
        "PIL.ImageCms"}
# Loaded only with every reader of Pillow's (Image.init), which PNG and JPEG pictures
# do not need.
ALL_READERS = {"PIL.PdfImagePlugin", "PIL.IcnsImagePlugin"}
# What upscaling needs, and nothing that reads no picture does: a tenth of a second or
# more of each start (numpy alone 0.1 s on 2 cores), where help took 0.3 s in all.
WORK = {"numpy", "ncnn", "PIL", "PIL.Image", "pillow_heif", "ncnn_sr.batch_cli", "ncnn_sr.engine",
        "ncnn_sr.devices", "ncnn_sr.images", "ncnn_sr.jobs"}


def ran(tmp_path, command: str, *args: str, code: int = 0) -> dict:
    report = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", _RUN, command, str(report), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    result = json.loads(report.read_text())
    assert result["code"] in ((0, None) if code == 0 else (code,)), done.stderr
    return result


def loaded(tmp_path, command: str, *args: str, code: int = 0) -> set[str]:
    return set(ran(tmp_path, command, *args, code=code)["modules"])


def test_help_loads_no_rare_module_and_not_every_picture_reader(tmp_path):
    modules = loaded(tmp_path, "ncnn-sr", "--help")
    assert "ncnn_sr.cli" in modules  # what was run is seen
    assert sorted(modules & (RARE | ALL_READERS)) == []


@pytest.mark.parametrize("command, args, code", [
    ("ncnn-sr", ["--help"], 0),
    ("ncnn-sr", ["--version"], 0),
    ("ncnn-sr", ["upscale", "--help"], 0),
    ("ncnn-sr", ["video", "-h"], 0),
    ("ncnn-sr", ["models"], 0),
    ("ncnn-sr", ["--no-such-flag"], 2),
    ("ncnn-sr", ["-i", "a.png", "-o", "b.png", "--no-such-flag"], 2),
    ("ncnn-sr", ["-i", "a.png", "-o", "b.png", "-s", "0"], 2),
    ("ncnn-sr", ["-i", "", "-o", "b.png"], 1),
    ("ncnn-sr", ["fetch", "--help"], 0),
    ("realesrgan-ncnn-vulkan", ["-h"], 0),
    ("realesrgan-ncnn-vulkan", ["-Z"], 2),
    ("realesrgan-ncnn-vulkan", ["-i", "a.png", "-o", "b.png", "-s", "0"], 1),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_help_usage_errors_and_the_model_listing_load_nothing_of_the_work(command, args, code, tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "a.png")
    modules = loaded(tmp_path, command, *args, code=code)
    assert "ncnn_sr.entry" in modules  # what was run is seen
    assert sorted(modules & WORK) == []
    assert not (tmp_path / "b.png").exists()


def test_version_reads_no_installed_distributions_metadata(tmp_path):
    # click's package_name lookup loaded importlib.metadata and searched the installed
    # distributions: a sixth of --version's start (0.108 s of CPU, 0.089 s without).
    modules = loaded(tmp_path, "ncnn-sr", "--version")
    assert "ncnn_sr.cli" in modules  # what was run is seen
    assert "importlib.metadata" not in modules


def test_a_picture_on_the_cpu_loads_no_rare_module_and_not_every_picture_reader(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "a.png")
    modules = loaded(tmp_path, "ncnn-sr", "-i", "a.png", "-o", "b.png", "-n", MODEL, "-g", "-1", "-q")
    assert (tmp_path / "b.png").is_file()
    assert sorted(modules & (RARE | ALL_READERS)) == []
    assert "pillow_heif" not in modules  # for a file that opens as a HEIF does alone


def test_a_folder_of_png_and_jpeg_loads_not_every_picture_reader(tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(12, 16)).save(tmp_path / "in" / "a.png")
    Image.fromarray(picture(12, 16, seed=1)).save(tmp_path / "in" / "b.jpg")
    modules = loaded(tmp_path, "ncnn-sr", "-i", "in", "-o", "out", "-n", MODEL, "-g", "-1", "-q")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    # A JPEG's coded data is checked by FFmpeg's decoder (jpeg.bad_codes): PyAV loads
    # with the first JPEG read, as it does for a video; a PNG's run loads none (above).
    assert sorted(modules & (RARE - {"av"} | ALL_READERS)) == []


def test_the_drop_in_on_a_picture_loads_no_rare_module_and_not_every_picture_reader(tmp_path):
    Image.fromarray(picture(12, 16)).save(tmp_path / "a.png")
    modules = loaded(tmp_path, "realesrgan-ncnn-vulkan", "-i", "a.png", "-o", "b.png", "-n", MODEL, "-s", "2",
                     "-g", "-1")
    assert (tmp_path / "b.png").is_file()
    assert sorted(modules & (RARE | ALL_READERS)) == []


@pytest.mark.parametrize("command", ["ncnn-sr", "realesrgan-ncnn-vulkan"])
def test_the_objects_left_as_a_command_ends_are_kept_out_of_the_interpreters_last_collections(command, tmp_path):
    # Its teardown went through every object of numpy, click and Pillow in several full
    # collections, a tenth of a one-picture run: they are frozen out of them instead.
    Image.fromarray(picture(12, 16)).save(tmp_path / "a.png")
    result = ran(tmp_path, command, "-i", "a.png", "-o", "b.png", "-n", MODEL, "-s", "2", "-g", "-1")
    assert (tmp_path / "b.png").is_file()
    assert result["frozen"] > 10000


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts the threads in Linux's /proc")
def test_numpys_blas_starts_no_threads_of_its_own_in_a_command(tmp_path):
    # OpenBLAS started a thread per core as numpy loaded, spinning for work that never
    # came, on the cores the command was loading on: the process has its main thread
    # alone once --help has been shown (nothing else starts a thread by then).
    code = _RUN.replace('with open(report, "w")', 'print(len(os.listdir("/proc/self/task")))\nwith open(report, "w")')
    code = code.replace("import gc, json, sys", "import gc, json, os, sys")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code, "ncnn-sr", str(tmp_path / "r.json"), "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1"


@pytest.mark.parametrize("first", ["", "from PIL import Image; Image.init(); "])
def test_the_quick_picture_check_agrees_with_every_reader_pillow_has(first):
    # is_picture_suffix answers from the common formats' extensions where it can,
    # without loading Pillow's other readers: its answers are those of the full list.
    code = first + """
import sys
from PIL import Image
from ncnn_sr.path_names import is_picture_suffix, picture_suffixes
Image.preinit()
common = list(Image.EXTENSION)
answers = {s: is_picture_suffix(s) for s in common + [s.upper() for s in common]}
quick = "PIL.PdfImagePlugin" not in sys.modules
answers |= {s: is_picture_suffix(s) for s in (".webp", ".tif", ".heic", ".avif", ".pdf", ".txt", "", ".mp4")}
print(quick, answers[".png"], sorted(s for s, yes in answers.items() if yes != (s.lower() in picture_suffixes())))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{not first} True []"
