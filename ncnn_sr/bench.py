"""Benchmarks of the engine: speed, memory, Python share and precision.

Each (model, device, tile, precision) runs in a fresh child process (``python -m
ncnn_sr.bench CONFIG``) so that its peak memory is its own. The child builds an
Upscaler, warms it up on a 32x32 crop, then times ``upscale(picture)`` ``repeat``
times and keeps the best. A row holds:
  - tile_ran: where the engine ran out of memory and halved the tile, the tile it
    ran at (a row whose device fell back to the CPU fails: it has no figure of it);
  - mps: input megapixels per second of the best run; runs_s: every run's seconds;
  - rss_mb: the child's peak resident memory;
  - device_mb: on a Vulkan device, the peak device-local memory the process held
    (weights, blobs, staging), where the driver reports it (VK_EXT_memory_budget;
    "unknown" in the table where it does not);
  - python_share: the part of the best run's wall time when no ncnn extraction
    ran: padding, TTA, stitching, blending, colour and depth conversion;
  - psnr / keep: dB (uint8) against the fp32 output of the same configuration, and
    whether that is at least KEEP_PSNR;
  - cpp_mps / ratio: with a reference Python, the official realesrgan-ncnn-vulkan
    code (realesrgan-ncnn-py 2.0.0) timed the same way on the same picture, model,
    device and tile, in its own process, and our speed over its.

Tiles: an int is a tile size, 0 the whole picture as one tile, "auto" the engine's
automatic choice (and the C++ code's own, tilesize 0: each tool's default against
the other's). Tilings (``TILINGS``): "reference" is the C++ code's rule (10 px
context, no blending), so both sides do the same work; "seamless" is the engine's
default; "exact" asks for exact output (RRDBNet's trunk in stages, or whole on a
discrete GPU, and in stages there too where it does not fit); "blended" blends
windows on every device (a discrete GPU's default before its trunk ran whole).
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .errors import DeviceError, InputError
from .files import atomic_write, check_writable, write_target

_FLOAT_OFF = dict(use_fp16_packed=False, use_fp16_storage=False, use_fp16_arithmetic=False,
                  use_bf16_storage=False, use_bf16_packed=False)
_INT8_OFF = dict(use_int8_storage=False, use_int8_packed=False, use_int8_inference=False)
# ncnn Option flags per precision, set before the model loads. "default" leaves
# ncnn's own choice (fp16 storage on GPUs that have it).
PRECISIONS = {
    "default": {},
    "fp32": {**_FLOAT_OFF, **_INT8_OFF},
    "fp16": {**_FLOAT_OFF, **_INT8_OFF, "use_fp16_packed": True, "use_fp16_storage": True},
    "bf16": {**_FLOAT_OFF, **_INT8_OFF, "use_bf16_storage": True, "use_bf16_packed": True},
    "int8": {**_FLOAT_OFF, "use_int8_storage": True, "use_int8_packed": True, "use_int8_inference": True},
}
# Upscaler arguments per tiling.
TILINGS = {"reference": {"tile_pad": 10}, "seamless": {}, "exact": {"exact": True}, "blended": {"exact": False}}
# realesrgan-ncnn-py 2.0.0 model indices.
REFERENCE_MODELS = {"realesr-animevideov3-x2": 0, "realesr-animevideov3-x3": 1, "realesr-animevideov3-x4": 2,
                    "realesrgan-x4plus-anime": 3, "realesrgan-x4plus": 4}
KEEP_PSNR = 50.0
# A row's cpp_error where realesrgan-ncnn-py has no such model: nothing ran, nothing failed.
NO_REFERENCE_MODEL = "model not in realesrgan-ncnn-py"
# How often the device memory is sampled while a child runs, in seconds.
DEVICE_SAMPLE_S = 0.02
# How long a --reference-python may take to import Pillow and realesrgan-ncnn-py.
REFERENCE_CHECK_S = 60

REFERENCE_CHILD = """
import json, os, sys, time
from PIL import Image
from realesrgan_ncnn_py import Realesrgan
path, dev, idx, tile, repeat = sys.argv[1:6]
img = Image.open(path).convert("RGB")
r = Realesrgan(gpuid=int(dev), model=int(idx), tilesize=int(tile))
r.process_pil(img.crop((0, 0, min(32, img.width), min(32, img.height))))
runs = []
for _ in range(int(repeat)):
    start = time.perf_counter()
    r.process_pil(img)
    runs.append(time.perf_counter() - start)
print(json.dumps({"seconds": min(runs), "runs_s": runs}), flush=True)
# Skip the teardown: realesrgan-ncnn-py has been seen to die while freeing its Vulkan
# objects at exit on an NVIDIA driver, after its timing was done and printed.
os._exit(0)
"""


# --- child ------------------------------------------------------------------------------

class _DevicePeak:
    """The peak of this process's device memory on one GPU, sampled in a thread and
    after every extraction."""

    def __init__(self, index: int):
        from . import gpu_memory

        self._read = lambda: gpu_memory.used_bytes(index)
        self._lock = threading.Lock()  # the sampling thread and every window thread
        self.peak = self._read()
        self._stop = threading.Event()
        self._thread = None
        if self.peak is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()

    def sample(self) -> None:
        if self.peak is not None:
            used = self._read()
            with self._lock:
                self.peak = max(self.peak, used)

    def _loop(self) -> None:
        while not self._stop.wait(DEVICE_SAMPLE_S):
            self.sample()

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return None if self.peak is None else self.peak / 2 ** 20


def child(cfg: dict) -> dict:
    """One measurement, in this process."""
    from . import network
    from .engine import Upscaler
    from .openmp import ncnn

    flags = PRECISIONS[cfg["precision"]]
    applied = {k: v for k, v in flags.items() if hasattr(ncnn.Option, k)}
    real_net = ncnn.Net

    def net_with_flags():
        net = real_net()
        for name, value in applied.items():
            setattr(net.opt, name, value)
        return net

    network.ncnn.Net = net_with_flags  # network.ncnn is the ncnn module: this child only

    device_peak = _DevicePeak(cfg["device"]) if cfg["device"] >= 0 else None
    # Every ncnn run of the engine goes through Network.extract: the time upscale()
    # spends with none running is the Python share. With windows in flight on a GPU
    # several run at once, so what counts is the time at least one runs, not the sum.
    in_run, running, since, lock = [0.0], [0], [0.0], threading.Lock()
    real_extract = network.Network.extract

    def timed_extract(self, inputs, output):
        with lock:
            running[0] += 1
            if running[0] == 1:
                since[0] = time.perf_counter()
        try:
            return real_extract(self, inputs, output)
        finally:
            with lock:
                running[0] -= 1
                if running[0] == 0:
                    in_run[0] += time.perf_counter() - since[0]
            if device_peak is not None:
                device_peak.sample()

    network.Network.extract = timed_extract

    picture = np.load(cfg["picture"])
    h, w = picture.shape[:2]
    tile = 0 if cfg["tile"] == "auto" else cfg["tile"] or max(32, h, w)
    up = Upscaler(cfg["model"], device=cfg["device"], tile=tile, **TILINGS[cfg["tiling"]])
    up.upscale(picture[:32, :32])
    best, share, out, runs = math.inf, None, None, []
    for _ in range(cfg["repeat"]):
        in_run[0] = 0.0
        start = time.perf_counter()
        out = up.upscale(picture)
        seconds = time.perf_counter() - start
        runs.append(seconds)
        if seconds < best:
            best, share = seconds, 1 - in_run[0] / seconds
    if up.device.index != cfg["device"]:
        raise DeviceError(f"{up.device} ran out of memory and fell back to the CPU: no figure of device "
                          f"{cfg['device']}")
    np.save(cfg["output"], out)
    ran = {}
    if up.tile != tile:  # halved after running out of memory: the figures are of that tile
        ran["tile_ran"] = up.tile
    # Every run's time, not the best alone: their spread tells whether two figures differ.
    return {"seconds": best, "runs_s": runs, "mps": w * h / 1e6 / best, "python_share": share,
            "device_mb": None if device_peak is None else device_peak.stop(),
            "flags": applied, "skipped_flags": sorted(set(flags) - set(applied)), **ran}


# --- parent -----------------------------------------------------------------------------

class ChildRun(NamedTuple):
    returncode: int
    seconds: float  # wall time
    rss_mb: float | None  # the child's own peak resident memory (None where it cannot be told)
    stdout: str
    stderr_tail: str  # its last lines, joined by " | "
    timed_out: bool = False  # killed, with what it started, at the end of its time


def run_child(cmd: list[str], timeout: float | None = None) -> ChildRun:
    """Run ``cmd`` to its end and measure it. Its peak memory is its own (reaped with
    wait4); stderr goes to a file, so a chatty child cannot fill a pipe and stall.
    With ``timeout``, it and what it started are killed after that many seconds;
    on Ctrl-C (SIGTERM, SIGHUP) at once. InputError if it cannot be started."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        try:
            # No stdin: a program that ignores its arguments (a wrapper that starts
            # Python's prompt) waited for the terminal's input, forever. A session of
            # its own: what it starts can be killed with it, as one group.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    start_new_session=True)
        except OSError as e:
            raise InputError(f"cannot run {cmd[0]}: {e.strerror or e}") from None

        def kill_group() -> None:
            try:  # the whole group: a child it started would hold stdout open
                if hasattr(os, "killpg"):
                    os.killpg(proc.pid, signal.SIGKILL)
                else:  # Windows: no process groups to kill, the child alone
                    proc.kill()
            except OSError:
                pass

        def expire() -> None:
            expired.set()
            kill_group()

        timer = None
        # Everything after the start inside the try: a Ctrl-C that landed before it
        # (as the Event or the Timer was made) left the child, in its own session, running.
        try:
            expired = threading.Event()
            if timeout is not None:
                timer = threading.Timer(timeout, expire)
                timer.daemon = True
                timer.start()
            stdout = proc.stdout.read().decode(errors="replace")
            proc.stdout.close()
            if hasattr(os, "wait4"):
                _, status, usage = os.wait4(proc.pid, 0)
                code = os.waitstatus_to_exitcode(status)
                rss_kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes
                rss_mb = rss_kib / 1024
            else:  # Windows
                code = proc.wait()
                rss_mb = _windows_peak_mb(proc)
        except BaseException:
            # Ctrl-C: the child may be deep in an ncnn call, where Python cannot
            # stop it; it must not run on after us, nor what it started (a
            # wrapper's Python, which a SIGTERM to us alone left running).
            kill_group()
            proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    return ChildRun(code, seconds, rss_mb, stdout, " | ".join(tail), expired.is_set())


def _windows_peak_mb(proc: subprocess.Popen) -> float | None:
    """The peak working set of the ended child ``proc``, in MB, from Windows's
    GetProcessMemoryInfo (its process handle stays open until ``proc`` is dropped);
    None where it cannot be asked."""
    try:
        import ctypes

        size_t = ctypes.c_size_t

        class Counters(ctypes.Structure):  # PROCESS_MEMORY_COUNTERS
            _fields_ = [("cb", ctypes.c_uint32), ("PageFaultCount", ctypes.c_uint32),
                        ("PeakWorkingSetSize", size_t), ("WorkingSetSize", size_t),
                        ("QuotaPeakPagedPoolUsage", size_t), ("QuotaPagedPoolUsage", size_t),
                        ("QuotaPeakNonPagedPoolUsage", size_t), ("QuotaNonPagedPoolUsage", size_t),
                        ("PagefileUsage", size_t), ("PeakPagefileUsage", size_t)]

        counters = Counters()
        counters.cb = ctypes.sizeof(counters)
        kernel32 = ctypes.WinDLL("kernel32")
        if not kernel32.K32GetProcessMemoryInfo(ctypes.c_void_p(int(proc._handle)), ctypes.byref(counters),
                                                counters.cb):
            return None
    except (OSError, AttributeError, TypeError, ValueError):
        return None
    return counters.PeakWorkingSetSize / (1 << 20)


def run_measured(cmd: list[str]) -> tuple[dict | None, float, str]:
    """Run a benchmark child; its last JSON line (None if it failed), its peak RSS in
    MB, and its stderr's tail, or how it ended where it said nothing."""
    run = run_child(cmd)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if run.returncode == 0 and lines else None
    reason = run.stderr_tail
    if result is None:  # killed (the OOM killer, a segfault): a row must not fail blank, nor hide how it ended
        if run.returncode < 0:
            ended = f"killed by signal {-run.returncode}"
        elif run.returncode:
            ended = f"exit status {run.returncode}"
        else:
            ended = "no result printed"
        reason = f"{reason} ({ended})" if reason else ended
    return result, run.rss_mb, reason


def checked_models(names: list[str]) -> list[str]:
    """The models ``names`` name, each once, a family as its default variant; a
    ModelError for one that cannot be resolved, before any run. (The same model twice
    would be timed twice, and its ratios to the C++ code counted as rounds.)"""
    from . import models

    checked = list(dict.fromkeys(models.model_name_for(name, None) for name in names))
    for name in checked:
        models.resolve_model(name)
    return checked


def reference_path(reference_python: str) -> str:
    """``reference_python`` as the path of a checked Python (``check_reference``): a
    file given is that file (its link kept: a venv's python is one); a bare name that
    is no file here is a program on PATH, as a shell finds python3."""
    if os.sep not in reference_python and not os.path.exists(reference_python):
        found = shutil.which(reference_python)
        if found is None:  # else "cannot run" a file in the current folder, which nobody named
            raise InputError(f"--reference-python {reference_python}: no such file here nor program on PATH")
        reference_python = found
    reference_python = os.path.abspath(reference_python)
    check_reference(reference_python)
    return reference_python


def check_reference(reference_python: str) -> None:
    """InputError, before any run, if ``reference_python`` cannot run the reference
    child: otherwise every row's C++ column would fail alike, after all the runs."""
    run = run_child([reference_python, "-c", "import PIL, realesrgan_ncnn_py; print('ready')"],
                    timeout=REFERENCE_CHECK_S)
    if run.timed_out:
        raise InputError(f"--reference-python {reference_python}: no answer in {REFERENCE_CHECK_S} s: not a Python "
                         "with realesrgan-ncnn-py and Pillow, or one that hangs")
    if run.returncode != 0 or run.stdout.split()[-1:] != ["ready"]:  # a script that ignores its arguments, say
        said = run.stderr_tail.split(" | ")[-1] or f"exit status {run.returncode}"
        raise InputError(f"--reference-python {reference_python}: not a Python with realesrgan-ncnn-py and Pillow "
                         f"({said})")


def synthetic_picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, a few hard-edged shapes and mild noise: natural-ish, deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.3 + 0.5 * y, 0.6 - 0.4 * x * y], axis=2)
    for _ in range(6):
        cx, cy, r = rng.random(), rng.random(), 0.05 + 0.2 * rng.random()
        colour = rng.random(3)
        if rng.random() < 0.5:
            mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        else:
            mask = (abs(x - cx) < r) & (abs(y - cy) < r / 2)
        img[mask] = colour
    img = img * 255 + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def rgb8(image: np.ndarray) -> np.ndarray:
    """An H×W×C picture (C in 1, 3, 4; uint8 or uint16) as 8-bit RGB, what both
    sides of a comparison take."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def machine_line() -> str:
    from .openmp import ncnn
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu or 'unknown CPU'}, {os.cpu_count()} cores, ncnn {ncnn.__version__}"


def _fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _tile_name(tile) -> str:
    return "whole" if tile == 0 else str(tile)


def markdown(rows: list[dict]) -> str:
    head = ["model", "device", "tile", "tiling", "precision", "round", "input MP/s", "peak RSS MB", "device MB",
            "python share %", "PSNR vs fp32", "C++ input MP/s", "ratio vs C++"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("psnr") is None:
            quality = "—"
        elif r["psnr"] == math.inf:  # int8 flags on a float model, say: they changed nothing
            quality = "identical (no effect)"
        else:
            quality = f"{r['psnr']:.1f} ({'keep' if r['keep'] else 'drop'})"
        share = None if r.get("python_share") is None else 100 * r["python_share"]
        if "cpp_error" not in r:
            cpp = _fmt(r.get("cpp_mps"), ".4g")
        else:
            cpp = "no such model" if r["cpp_error"] == NO_REFERENCE_MODEL else "failed"
        device_mb = _fmt(r.get("device_mb"), ".0f")
        if r["device"] >= 0 and r.get("device_mb") is None and "error" not in r:
            device_mb = "unknown"  # a driver without VK_EXT_memory_budget, where the CPU has none to tell
        tile = _tile_name(r["tile"]) + (f" → {r['tile_ran']}" if "tile_ran" in r else "")
        cells = [r["model"], r["device"], tile, r["tiling"], r["precision"], r["round"],
                 _fmt(r.get("mps"), ".4g") if "error" not in r else "failed", _fmt(r.get("rss_mb"), ".0f"),
                 device_mb, _fmt(share, ".1f"), quality,
                 cpp, _fmt(r.get("ratio"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def ratio_summary(rows: list[dict]) -> list[str]:
    """Median and range of the per-round ratios of each configuration measured in several rounds."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if "ratio" in r:
            key = (r["model"], r["device"], _tile_name(r["tile"]), r["tiling"], r["precision"])
            groups.setdefault(key, []).append(r["ratio"])
    return [f"{m} device {d} tile {t} {tiling} {q}: median ratio {float(np.median(v)):.2f} over {len(v)} rounds "
            f"({min(v):.2f}-{max(v):.2f})" for (m, d, t, tiling, q), v in groups.items() if len(v) > 1]


def _reference(reference_python: str, png: str, size: tuple[int, int], model: str, device: int, tile,
               repeat: int, say: Callable[[str], None]) -> dict:
    if model not in REFERENCE_MODELS:
        return {"cpp_error": NO_REFERENCE_MODEL}
    if tile == "auto":
        tile = 0  # realesrgan-ncnn-py's own automatic tile: each tool's default against the other's
    elif tile == 0:
        tile = max(32, -(-max(size) // 32) * 32)
    cmd = [reference_python, "-c", REFERENCE_CHILD, png, str(device), str(REFERENCE_MODELS[model]), str(tile),
           str(repeat)]
    result, rss, err = run_measured(cmd)
    if result is None:
        say(f"  C++ reference failed: {err}")
        return {"cpp_error": err}
    return {"cpp_mps": size[0] * size[1] / 1e6 / result["seconds"], "cpp_runs_s": result["runs_s"],
            "cpp_rss_mb": rss}


def _precision_rows(cfg: dict, precisions: list[str], ref: dict, tmp: str, say) -> list[dict]:
    """One row per precision, each in a fresh child; PSNR against this round's fp32 output."""
    rows, base = [], None
    for precision in precisions:
        out = os.path.join(tmp, f"out-{precision}.npy")
        run_cfg = {**cfg, "precision": precision, "output": out}
        say(f"running {cfg['model']} device {cfg['device']} tile {_tile_name(cfg['tile'])} {cfg['tiling']} "
            f"{precision} round {cfg['round']}")
        result, rss, err = run_measured([sys.executable, "-m", "ncnn_sr.bench", json.dumps(run_cfg)])
        row = {k: cfg[k] for k in ("model", "device", "tile", "tiling", "round")}
        row.update(precision=precision, **ref)
        if result is None:
            say(f"  failed: {err}")
            row["error"] = err
        else:
            row.update(result, rss_mb=rss)
            output = np.load(out)
            if precision == "fp32":
                base = output
            elif base is not None and base.shape == output.shape:
                row["psnr"] = psnr(output, base)
                row["keep"] = row["psnr"] >= KEEP_PSNR
            if "cpp_mps" in row:
                row["ratio"] = row["mps"] / row["cpp_mps"]
        rows.append(row)
    return rows


def run(picture: np.ndarray, models: list[str], devices: list[int], tiles: list, precisions: list[str],
        repeat: int = 3, rounds: int = 1, tilings: tuple[str, ...] = ("reference",),
        reference_python: str | None = None,
        say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> list[dict]:
    """Every configuration asked for, one row each (see the module's docstring). With
    several precisions, fp32 runs first for each (model, device, tile) as the reference
    of the PSNR column; with
    ``rounds`` > 1 the C++ code and ours alternate, so both see the same spells of load
    on a shared machine and each round's ratio is a fair pair. Each round times the C++
    code once and then every tiling of ours."""
    from PIL import Image

    size = (picture.shape[1], picture.shape[0])
    precisions = list(dict.fromkeys(precisions))
    if len(precisions) > 1:  # the PSNR reference first
        precisions = ["fp32"] + [q for q in precisions if q != "fp32"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pic_npy, png = os.path.join(tmp, "picture.npy"), os.path.join(tmp, "picture.png")
        np.save(pic_npy, picture)
        Image.fromarray(picture).save(png)
        for model in models:
            for device in devices:
                for tile in tiles:
                    for rnd in range(1, rounds + 1):
                        ref = {}
                        if reference_python:
                            ref = _reference(reference_python, png, size, model, device, tile, repeat, say)
                        for tiling in tilings:
                            cfg = {"model": model, "device": device, "tile": tile, "round": rnd, "tiling": tiling,
                                   "repeat": repeat, "picture": pic_npy}
                            rows += _precision_rows(cfg, precisions, ref, tmp, say)
    return rows


def report(rows: list[dict]) -> str:
    """The markdown table and the ratio summary."""
    return "\n".join([markdown(rows), ""] + ratio_summary(rows)).rstrip()


def result_path(path: str) -> str:
    """The file results named ``path`` go to (what a link points to), checked before
    the runs: InputError where it cannot be written, which after them lost them."""
    real = os.path.abspath(write_target(path))  # never a device, FIFO or folder
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise InputError(f"{path!r}: folder {folder} does not exist")
    try:
        # A file made, not os.access: that passes root, read-only mounts and any
        # folder on Windows.
        check_writable(Path(folder))
    except InputError as e:
        raise InputError(f"{path!r}: {e}") from None
    return real


def save(rows: list[dict], size: tuple[int, int], repeat: int, rounds: int, json_path: str | None = None,
         markdown_path: str | None = None) -> None:
    """The rows as JSON and the report as markdown, each file whole or not at all
    (InputError if it cannot be written)."""
    machine = machine_line()
    if markdown_path:
        # The picture's size is part of the figures: MP/s and memory depend on it.
        text = f"machine: {machine}\npicture: {size[0]}x{size[1]}, best of {repeat}\n\n{report(rows)}\n"
        atomic_write(markdown_path, lambda f: f.write(text.encode()))
    if json_path:
        clean = [{k: ("inf" if v == math.inf else v) for k, v in r.items()} for r in rows]  # JSON has no inf
        text = json.dumps({"machine": machine, "size": size, "repeat": repeat, "rounds": rounds, "rows": clean,
                           "summary": ratio_summary(rows)}, indent=2)
        atomic_write(json_path, lambda f: f.write(text.encode()))


if __name__ == "__main__":
    from .errors import NcnnSrError, command_words

    try:
        print(json.dumps(child(json.loads(sys.argv[1]))))
    except NcnnSrError as e:  # the parent shows the end of stderr: one line, not a traceback
        sys.exit(command_words(e))
