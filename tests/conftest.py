"""Shared fixtures: small deterministic pictures, and the Vulkan gate.

Vulkan tests run on whatever Vulkan device there is (lavapipe in CI). Where there is
none they fail, so CI cannot pass them by skipping; set NCNN_SR_SKIP_VULKAN=1 to
skip them on purpose on a machine without Vulkan.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

# Until the session's folder is made (below), as the test modules are collected, a
# folder that is not there: not this machine's.
os.environ["NCNN_SR_FETCHED_MODELS"] = os.path.join(os.path.dirname(__file__), "no-fetched-models-yet")


@pytest.fixture(scope="session", autouse=True)
def _fetched_models_of_its_own(tmp_path_factory):
    """Models fetched on this machine (~/.local/share/ncnn-sr/models) would change what
    -n finds; the tests, and the commands they start, look in a folder of their own.
    Under pytest's own temporary folder, which pytest prunes: one made in /tmp and
    removed at exit stayed there whenever the session was killed (a timeout's SIGTERM,
    pytest-timeout's os._exit)."""
    os.environ["NCNN_SR_FETCHED_MODELS"] = str(tmp_path_factory.mktemp("fetched"))


@pytest.fixture(autouse=True)
def _logger_as_it_was():
    """A test that runs a command in-process sets the "ncnn_sr" logger up as the
    command does (its own handler, not propagated): later tests' caplog would see
    nothing. The notices logged once a process are forgotten too, and the percent
    line the drop-in's tile_percent said last."""
    import logging

    import sys

    log = logging.getLogger("ncnn_sr")
    saved = (log.handlers[:], log.level, log.propagate)
    devices = sys.modules.get("ncnn_sr.devices")  # not imported here: ncnn loads slowly
    if devices is not None:
        devices.forget_warnings()  # each test may look for the once-a-process notices
    console = sys.modules.get("ncnn_sr.console")
    if console is not None:
        # How far the drop-in's percent lines went, which a test's picture left unfinished.
        console._percent_said.set(None)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]


def as_a_user(cmd: list) -> list:
    """``cmd`` run with the file permissions a user has: root's reading of any file set
    aside (setpriv drops CAP_DAC_OVERRIDE); pytest.skip where that cannot be done."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("setpriv") is None:
        pytest.skip("root reads any file, and setpriv is not here to set that aside")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *cmd]


# `python -c` of the video command as a user runs it, its output folder (argv[1])
# made read-only once a video's frames are all encoded: the video is whole in its
# temporary file, which can be neither renamed into place nor removed.
READ_ONLY_ONCE_ENCODED = """
import os, sys
from ncnn_sr import video

real, folder = video._transcode, sys.argv[1]

def transcode(*given, **options):
    done = real(*given, **options)
    os.chmod(folder, 0o555)
    return done

video._transcode = transcode
sys.argv = ["ncnn-sr", "video", *sys.argv[2:]]
from ncnn_sr import entry
entry.ncnn_sr()
"""


def run_breaking_a_folder(cmd: list, out) -> subprocess.CompletedProcess:
    """``cmd`` run as a user (as_a_user), which may make its output folder ``out``
    read-only: its mode is given back after, so that pytest can remove it."""
    try:
        return subprocess.run(as_a_user(cmd), capture_output=True, text=True, timeout=300)
    finally:
        if out.exists():
            out.chmod(0o755)


def picture(height: int, width: int, channels: int = 3, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    """A natural-ish picture: smooth colour waves, a hard-edged block, mild noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.RandomState(seed)
    planes = [128 + 100 * np.sin(xx / 5.0 + yy / 9.0 + c) for c in range(3)]
    img = np.stack(planes, axis=2) + rng.randn(height, width, 3) * 6
    img[height // 4: height // 2, width // 3: 2 * width // 3] = [240, 40, 30]
    img = np.clip(img, 0, 255)
    if channels == 1:
        img = img.mean(axis=2, keepdims=True)
    elif channels == 4:
        alpha = np.clip(xx * 255.0 / max(width - 1, 1), 0, 255)[:, :, None]
        img = np.concatenate([img, alpha], axis=2)
    img = np.round(img).astype(np.uint8)
    if dtype == np.uint16:
        return img.astype(np.uint16) * 257
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def adam7_rows(samples: np.ndarray) -> bytes:
    """16-bit H×W×C ``samples`` as the rows of an Adam7-interlaced PNG, pass by pass,
    unfiltered and not yet compressed."""
    rows = b""
    for x, y, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
        for row in samples[y::dy, x::dx]:
            rows += b"\0" + row.astype(">u2").tobytes()
    return rows


def png_bytes(samples: np.ndarray, depth: int, colour_type: int, *chunks: bytes) -> bytes:
    """A PNG of H×W×C ``samples`` at any bit depth, with extra chunks before IDAT:
    Pillow writes neither 16-bit grey+alpha nor 2- and 4-bit grey."""
    h, w, _ = samples.shape
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))
    return (b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + png_chunk(b"IDAT", png_data(samples, depth))
            + png_chunk(b"IEND", b""))


def png_data(samples: np.ndarray, depth: int) -> bytes:
    """H×W×C ``samples`` as the compressed data of a PNG's IDAT (or an APNG's fdAT)."""
    h, w, c = samples.shape
    if depth == 16:
        rows = samples.astype(">u2").reshape(h, w * c).view(np.uint8)
    else:  # one channel packed 8 // depth samples a byte, first in the high bits
        rows = np.packbits(np.unpackbits(samples.astype(np.uint8), axis=2)[:, :, 8 - depth:].reshape(h, -1), axis=1)
    return zlib.compress(np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes())  # filter 0 a row


def stored_delays(path) -> list[int]:
    """The durations an animation's file holds, in milliseconds, as they are in it
    (Pillow's readers give them once a frame is loaded)."""
    delays = []
    with Image.open(path) as im:
        for index in range(im.n_frames):
            im.seek(index)
            im.load()
            delays.append(im.info.get("duration", 0))
    return delays


def upscale_in_threads(upscaler, images: list[np.ndarray]) -> list[np.ndarray]:
    """Each picture upscaled in its own thread, all at once, results in order."""
    import threading

    results: list = [None] * len(images)

    def work(i: int) -> None:
        results[i] = upscaler.upscale(images[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


@pytest.fixture(scope="session")
def gpu():
    """Index of the Vulkan device to test on."""
    if os.environ.get("NCNN_SR_SKIP_VULKAN") == "1":
        pytest.skip("NCNN_SR_SKIP_VULKAN=1")
    from ncnn_sr import devices

    if devices.gpu_count() == 0:
        pytest.fail("no Vulkan device: install libvulkan1 and mesa-vulkan-drivers (lavapipe), "
                    "or set NCNN_SR_SKIP_VULKAN=1 to skip the Vulkan tests")
    return 0


def discrete(gpu: int, heap_mb: int | None = None):
    """This machine's GPU as if it were a discrete one (lavapipe computes in the host's
    memory), with its heap budget or ``heap_mb``."""
    from ncnn_sr.devices import Device, get_device

    here = get_device(gpu)
    return Device(here.index, here.name, "discrete", heap_mb or here.heap_budget_mb)


@pytest.fixture(scope="module")
def unshuffled(tmp_path_factory):
    """Converted RRDBNets that pixel-unshuffle the picture: x2 (by 2) and x1 (by 4)."""
    from test_convert import random_rrdb

    from ncnn_sr.convert import convert_weights, write_model

    folder = tmp_path_factory.mktemp("unshuffled")
    return {s: write_model(convert_weights(random_rrdb(in_ch=3 * u * u, blocks=3, feat=16, grow=8, seed=s)),
                           folder, f"x{s}") for s, u in ((2, 2), (1, 4))}


@pytest.fixture(scope="session")
def cpu_upscalers():
    """One CPU Upscaler per model name, made on first use and shared."""
    from ncnn_sr import Upscaler

    made: dict = {}

    def get(name: str, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in made:
            made[key] = Upscaler(name, device=-1, **kw)
        return made[key]

    yield get
    for up in made.values():
        up.close()


def exit_while_upscaling(device: int, size: int, wait: float) -> subprocess.CompletedProcess:
    """A Python that exits while a daemon thread of its own loops on an Upscaler."""
    code = ("import sys, threading, time, numpy as np\n"
            "from ncnn_sr import Upscaler\n"
            f"up = Upscaler('realesr-animevideov3-x2', device={device})\n"
            f"image = np.zeros(({size}, {size}, 3), np.uint8)\n"
            "started = threading.Event()\n"
            "def loop():\n"
            "    while True:\n"
            "        started.set()\n"
            "        up.upscale(image)\n"
            "threading.Thread(target=loop, daemon=True).start()\n"
            f"started.wait(); time.sleep({wait})\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


# The window a Ctrl-C came in, which ncnn cannot stop: the second Ctrl-C lands while
# Python's exit waits for it (engine._close_at_exit).
_CTRL_C_TWICE = """
import os, signal, sys, threading, time
import numpy as np
from ncnn_sr import Upscaler

up = Upscaler("realesr-animevideov3-x2", device={device}, threads={threads})
image = np.zeros(({size}, {size}, 3), np.uint8)
main = threading.main_thread().ident

def inside(ident, name):
    frame = sys._current_frames().get(ident)
    while frame is not None and frame.f_code.co_name != name:
        frame = frame.f_back
    return frame is not None

def in_ncnn():
    return any(t.name == "ncnn_sr upscale" and inside(t.ident, "extract") for t in threading.enumerate())

def first_ctrl_c():
    while not in_ncnn():
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)

def second_ctrl_c():
    while not (inside(main, "_close_at_exit") and inside(main, "wait")):
        time.sleep(0.005)
    ran = in_ncnn()
    os.kill(os.getpid(), signal.SIGINT)
    os.write(1, b"second Ctrl-C while ncnn ran\\n" if ran else b"second Ctrl-C after ncnn\\n")

threading.Thread(target=first_ctrl_c, daemon=True).start()
try:
    up.upscale(image)
except KeyboardInterrupt:
    os.write(1, b"interrupted\\n")
threading.Thread(target=second_ctrl_c, daemon=True).start()
"""


def ctrl_c_twice_as_python_exits(device: int, size: int, threads: int | None = None) -> subprocess.CompletedProcess:
    """A Python whose Ctrl-C comes out of an upscale while ncnn runs a window of
    realesr-animevideov3-x2 on a ``size`` px picture, and whose second Ctrl-C lands as
    its exit waits for that window to end; it catches the first, and says whether
    ncnn still ran at the second."""
    code = _CTRL_C_TWICE.format(device=device, size=size, threads=threads)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def ctrl_c_once_made(monkeypatch, marker: str) -> None:
    """os.open, os.mkdir and os.link send this process a SIGINT once they have made a
    file or a folder whose name holds ``marker``: Python raises it inside
    tempfile.mkstemp or mkdtemp, or as a part file made without a name is named
    (part_files), the file or folder made and its name not yet given back, as a
    Ctrl-C landing there does."""
    import signal

    def then_ctrl_c(name):
        real = getattr(os, name)

        def made(path, *args, **kwargs):
            done = real(path, *args, **kwargs)
            if name == "link":  # the name made is its second
                creates, path = True, args[0] if args else kwargs["dst"]
            else:
                creates = name == "mkdir" or (args[0] if args else kwargs["flags"]) & os.O_CREAT
            if creates and marker in os.fspath(path):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(9):  # Python runs the handler between these
                    pass
            return done
        monkeypatch.setattr(os, name, made)
    for name in ("open", "mkdir", "link"):
        then_ctrl_c(name)


def load_interrupted(monkeypatch, device) -> int:
    """Loads realesr-animevideov3-x2 on ``device`` with a SIGINT sent at the third read
    of its weights (of 71); checks that the load raises KeyboardInterrupt and leaves
    SIGINT's handler as it was. Returns how many reads there were."""
    import signal
    from ncnn_sr import network, resolve_model

    spec = resolve_model("realesr-animevideov3-x2")
    reads, read = [], network._WeightsReader.read

    def read_then_ctrl_c(self, buf, size):
        reads.append(size)
        if len(reads) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return read(self, buf, size)
    monkeypatch.setattr(network._WeightsReader, "read", read_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        network.Network(str(spec.param_path), str(spec.bin_path), device, spec.input_blob, spec.output_blob)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    return len(reads)


@pytest.fixture
def in_process(monkeypatch):
    """``ncnn-sr ARGS`` run in this process (so an engine method can be made to fail),
    as (exit status, stderr); the library's logger is put back as it was."""
    import logging

    from click.testing import CliRunner
    from ncnn_sr import cli

    logger = logging.getLogger("ncnn_sr")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)

    def invoke(*args):
        result = CliRunner().invoke(cli.main, [str(arg) for arg in args])
        return result.exit_code, result.stderr
    return invoke


@pytest.fixture
def loads(monkeypatch):
    """The devices a model is loaded on in this process (in_process's runs), one entry
    per load."""
    from ncnn_sr import engine

    real, loaded = engine.Upscaler._load, []

    def load(self, device, *args, **kwargs):
        loaded.append(device)
        return real(self, device, *args, **kwargs)
    monkeypatch.setattr(engine.Upscaler, "_load", load)
    return loaded
