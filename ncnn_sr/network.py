"""One ncnn network on one device, as the Upscaler runs it: float planes in, float
planes out, a failed run as NetFailure (what a device out of memory gives). Also the
network run in two parts (``netsplit``) and ncnn's bicubic resize as a network.
Knows nothing of pictures' dtypes, tiling rules or files.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import platform
import re
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import budget, devices
from .devices import Device
from .dysample import SAMPLE_REACH, Offsets
from .errors import CpuOutOfMemory, ModelError, default_thread_stack, mappable, os_reason, out_of_memory
from .netsplit import NetPlan
from .openmp import claim_threads, ncnn
from .param_file import layer_weights, parse_param, weight_blobs
from .signals import HeldInterrupts, ctrl_c_signals
from .tiles import pieces

log = logging.getLogger("ncnn_sr")


def crop_output(result: np.ndarray, keep: tuple | None, scale: int) -> np.ndarray:
    """The output of box ``keep`` (y0, y1, x0, x1, in input pixels) of an H×W×C output
    at ``scale``; all of it when ``keep`` is None."""
    if keep is None:
        return result
    return result[keep[0] * scale:keep[1] * scale, keep[2] * scale:keep[3] * scale]


def because(said: str) -> str:
    """ncnn's first complaint, to end a one-line error with."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    return f" ({lines[0]})" if lines else ""


def _samples_a_grid(param: str, param_text: str | None) -> bool:
    """Whether the network holds a GridSample layer (a DySample upsampler)."""
    if param_text is None:
        try:
            param_text = Path(param).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False  # the load below says why
    return any(line.split(None, 1)[:1] == ["GridSample"] for line in param_text.splitlines())


# ncnn opens a model's files with fopen, which on Windows reads the path in the ANSI code
# page: a path past ASCII (below C:\Users\José, where fetched models go) was not found
# there. Such a param is read here and handed to ncnn as bytes (weights always are).
_FOPEN_TAKES_UTF8 = sys.platform != "win32"


def _read_by_python(path: str) -> bool:
    # A name whose bytes are not UTF-8 (Latin-1 from an old archive, or any non-ASCII
    # name under LC_ALL=C with PYTHONUTF8=0) holds surrogates, which the ncnn wheel
    # cannot pass to fopen: Python opens it by its own bytes (os.fsencode).
    return not _FOPEN_TAKES_UTF8 and not path.isascii() or not _utf8(path)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype, _capsule_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_capsule_name = ctypes.pythonapi.PyCapsule_GetName
_capsule_name.restype, _capsule_name.argtypes = ctypes.c_char_p, [ctypes.py_object]


class _WeightsReader(ncnn.DataReader):
    """A model's weights read from ``file`` straight into the buffers ncnn asks to fill,
    a blob at a time: ncnn holds the GIL while it loads, and these calls into Python
    between its layers are where the main thread gets it back to take a Ctrl-C; once
    ``stop()`` is true, every read is short, which ends the load. Python opens the
    file: ncnn's fopen reads a path in the ANSI code page on Windows."""

    def __init__(self, file, stop: Callable[[], bool]):
        super().__init__()
        self._file, self._stop = file, stop

    def read(self, buf, size: int) -> int:
        # Nothing may be raised here: it would unwind through ncnn's C++.
        if self._stop():
            return 0
        try:
            into = (ctypes.c_char * size).from_address(_capsule_pointer(buf, _capsule_name(buf)))
            return self._file.readinto(into) or 0
        except (OSError, ValueError):
            return 0

    def scan(self, fmt, p) -> int:  # only a text param is scanned, and this holds weights
        return 0


def _load_param(net, param: str, param_text: str | None) -> int:
    if param_text is None and _read_by_python(param):
        try:
            param_text = Path(param).read_bytes()
        except OSError as e:
            if out_of_memory(e):  # the host's memory, not the model's fault
                raise MemoryError(f"cannot read {param}: {os_reason(e)}") from e
            return -1  # said as ncnn's own failure to open it is
    return net.load_param_mem(param_text) if param_text is not None else net.load_param(param)


def _unopened(param: str, param_text) -> str | None:
    """Why the system refuses to open ``param`` (no file descriptor left, no permission),
    in words; None where it opens, or was not opened (its text given). Asked while
    ncnn's failure stands (fd 2 still captured): its fopen says only "failed", which
    read as the file's content being wrong."""
    if param_text is not None:
        return None
    try:
        with open(param, "rb"):
            return None
    except OSError as e:
        return os_reason(e)


def _load_weights(net, bin_: str | None, stop: Callable[[], bool], weights: io.BytesIO | None = None) -> int:
    if weights is not None:
        return net.load_model(_WeightsReader(weights, stop))
    if bin_ is None:
        return net.load_model(ncnn.DataReaderFromEmpty())
    with open(bin_, "rb") as file:
        return net.load_model(_WeightsReader(file, stop))


# What a CPU load maps for each convolution beyond its weights (the layer's objects,
# the transform's buffers, the heap's steps): the least room each shipped model loaded
# in held 7.3 (x4plus-anime), 8.4 (x4plus) and 16.7 KiB (animevideov3) a convolution
# past them, and 64 KiB less crashed animevideov3's load, at 13.1.
_PER_CONVOLUTION = 14 << 10
# What a thread past the first maps beside its stack (its guard page, its own data):
# a second thread took 7.9 to 8.3 MiB more room than one, with 8 MiB stacks.
_PER_THREAD = 320 << 10


def _refuse_a_load_past_the_cap(name: str, param: str, param_text, threads: int, precision: str,
                                room: int) -> None:
    """A CpuOutOfMemory where ``room``, what a cap of the process's own (ulimit -v)
    leaves, is less than loading the weights on the CPU maps. ncnn does not check its
    allocations there: short of room it crashed the process (a segfault inside
    load_model, or libgomp's "Thread creation failed" and exit(1)), with no message.
    Without such a cap nothing is checked: the machine's memory is not mapped ahead."""
    need = _load_need(param, param_text, threads, precision)
    if need > room:
        # Rounded up, as the room is down: "needs about 267 MB, more than the 267 MB" read as no shortage.
        raise CpuOutOfMemory(f"out of memory: {name} needs about {budget.mb_words(need, up=True)} of address "
                             f"space to load on the CPU with {threads} thread{'s' if threads != 1 else ''}, more "
                             f"than {budget.room_words(need, room, mb=True)}")


# A net of one ReLU, which runs its channels in an OpenMP loop: libgomp starts its
# team of threads for the calling thread at its first loop.
_ONE_LOOP = "7767517\n2 2\nInput in 0 1 in\nReLU relu 1 1 in out\n"


# The most OpenMP threads each thread has started a team of (see _start_threads).
_teams = threading.local()


def _start_threads(name: str, threads: int, doing: str = "load") -> None:
    """ncnn's ``threads`` OpenMP threads (the caller and a team of the rest) started
    for this thread, as ncnn would at its first loop: libgomp that cannot start one
    prints "Thread creation failed" and calls exit(1), which skips the command's
    ending, and inside a capture of stderr (a load's) leaves it without a word. A
    CpuOutOfMemory where their stacks cannot be mapped now (past a ulimit -v);
    libgomp's own line, heard, where they fail for another reason. A thread keeps
    its team: later loops and loads reuse it, and nothing is done again. ``doing``:
    what they are started for, in the refusal's words."""
    if threads <= getattr(_teams, "threads", 1):
        return
    stacks = (threads - 1) * _omp_stack()
    if stacks and not mappable(stacks):
        capped = budget.cap_room()
        room = budget.room_words(stacks, capped[0] if capped else budget.memory_limit() or 0, mb=True)
        raise CpuOutOfMemory(f"out of memory: {name} cannot start its {threads - 1} OpenMP "
                             f"thread{'s' if threads > 2 else ''} to {doing} on the CPU: their stacks take "
                             f"{budget.mb_words(stacks, up=True)}, more than {room}")
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.load_param_mem(_ONE_LOOP)
    net.load_model(ncnn.DataReaderFromEmpty())
    ex = net.create_extractor()
    ex.input("in", ncnn.Mat(np.zeros((threads, 1, 1), np.float32)).clone())
    ex.extract("out")
    del ex
    net.clear()
    _teams.threads = threads


def _load_need(param: str, param_text, threads: int, precision: str) -> int:
    """Bytes of address space a CPU load of the model maps at its peak: the least room
    past the process's size (a cap, ulimit -v) in which it loaded, bisected in 64 KiB
    steps with its weights mapped apart (devices.weights_mapped_apart), at 1 and 2
    threads: animevideov3-x2 9.75 MiB (and loaded and ran a 16x16 picture there
    too), x4plus-anime 68.8 and 76.8 (ran from 83.5 and 91.6), x4plus 257.5 and
    265.4 (ran from 272.6 and 280.6). Less crashed inside ncnn, which does not check
    its allocations there. Most of it is the 3x3 convolutions' weights, which x86
    ncnn keeps transformed for Winograd's method: 64 values for each pair of input
    and output channels (F(6,3)) where both counts are 32 or fewer, else 36
    (F(4,3)), and none where both are 8 or fewer; other machines' ncnn is not
    measured, and its transform is counted at the least one's 16 (F(2,3)), erring
    low as before. Other layers keep their weights as the .bin holds them. Each
    thread past the first adds its OpenMP stack and _PER_THREAD where this thread
    has not started it."""
    try:
        text = param_text if param_text is not None else Path(param).read_bytes()
        graph = parse_param(text.encode() if isinstance(text, str) else bytes(text))
    except (OSError, ModelError):
        return 0  # the load says what is wrong with it
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
    values = convolutions = 0
    for layer in graph.layers:
        try:
            blobs = weight_blobs(layer) or []
        except (TypeError, ValueError):  # a param of the wrong kind: the load says so
            blobs = []
        kept = sum(max(count, 0) for count, _ in blobs)
        p = layer.params
        if layer.type == "Convolution" and isinstance(p.get(6), int) and isinstance(p.get(0), int) and p[0] > 0 \
                and not p.get(8, 0):  # int8 weights are not transformed so
            convolutions += 1
            kernel, stride, dilation = (p.get(k, 1) for k in (1, 3, 2))
            square = (kernel, stride, dilation) == (p.get(11, kernel), p.get(13, stride), p.get(12, dilation))
            outputs, inputs = p[0], p[6] // (9 * p[0])
            if square and (kernel, stride, dilation) == (3, 1, 1) and p[6] == 9 * outputs * inputs \
                    and max(inputs, outputs) > 8:
                per_pair = (64 if max(inputs, outputs) <= 32 else 36) if x86 else 16
                kept += (per_pair - 9) * inputs * outputs
        values += kept
    # Weights as the CPU keeps them: bf16 where asked, fp16 on ARM, else float32.
    value = 2 if precision == "bf16" or platform.machine().lower().startswith(("arm", "aarch")) else 4
    # The stacks of a team this thread started already are mapped already.
    starting = max(threads - max(getattr(_teams, "threads", 1), 1), 0)
    return values * value + convolutions * _PER_CONVOLUTION + starting * (_omp_stack() + _PER_THREAD)


def _omp_stack() -> int:
    """The stack libgomp gives each thread it starts: OMP_STACKSIZE's (or
    GOMP_STACKSIZE's: a number, in kB unless B, K, M or G follows), else the
    threads' default. 0 where the setting cannot be read, erring low as _load_need
    does."""
    for variable in ("OMP_STACKSIZE", "GOMP_STACKSIZE"):
        text = os.environ.get(variable)
        if text is not None:
            found = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)\s*", text, re.IGNORECASE)
            if found is None:
                return 0
            shift = {"b": 0, "": 10, "k": 10, "m": 20, "g": 30}[found[2].lower()]
            return int(found[1]) << shift
    return default_thread_stack()


class NetFailure(Exception):
    """ncnn returned an error for one run: on a device that is out of memory."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code  # ncnn's: -100 where a layer could not allocate its output

    @property
    def out_of_memory(self) -> bool:
        return self.code == -100


class UnevenScale(ModelError):
    """A split network's head gave a piece no whole multiple of its input's size."""


class NonFinite(NetFailure):
    """A run's output held NaN or infinity: on a GPU, what running out of memory can
    give; on the CPU, the model's own doing (weights broken or not those of its
    .param), which no smaller tile mends."""


class Network:
    """One ncnn.Net on one device. ``run`` is safe from several threads at once: each
    call has its own Extractor, and ncnn lets go of the GIL while it computes."""

    def __init__(self, param: str, bin_: str | None, device: Device, input_blob: str,
                 output_blob: str, precision: str = "default", threads: int | None = None,
                 param_text: str | None = None, name: str | None = None, weights: io.BytesIO | None = None):
        self.device, self.param = device, param
        # Every other model error begins so (models, the engine's probe): these too.
        self._said = f"model {name}: " if name else ""
        self.input_blob, self.output_blob = input_blob, output_blob
        net = ncnn.Net()
        net.opt.use_vulkan_compute = device.is_gpu
        if threads:
            net.opt.num_threads = threads
        # Loading transforms weights with them too, not only a run.
        claim_threads(net.opt.num_threads)
        if precision == "bf16" and device.is_gpu:
            # Measured on Vulkan (lavapipe) at 49.7 dB from fp32 on animevideov3, under
            # the 50 dB bar: the GPU keeps ncnn's fp16, which stays above 60 dB.
            log.warning("bf16 is a CPU mode; %s uses ncnn's default precision", device)
            precision = "default"
        if precision == "default" and device.is_gpu and _samples_a_grid(param, param_text):
            # GridSample's coordinates (DySample) in fp16 storage land up to 1/2048 of the
            # tile's side off, which grows with the tile: on lavapipe 51 dB from fp32 at
            # 192 px tiles (57 dB for the same model with a pixel shuffle), and a GPU's
            # tiles are larger.
            log.info("%s samples a grid: float32 on %s, which fp16 would put pixels off", name or param, device)
            precision = "fp32"
        if precision in ("fp32", "bf16"):
            net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
            net.opt.use_bf16_storage = net.opt.use_bf16_packed = precision == "bf16"
        self.precision = precision
        self._pools: tuple = ()
        self._running, self._running_lock = 0, threading.Lock()  # extractors in use (_trimmed_alone)
        if device.is_gpu:
            net.set_vulkan_device(device.index)
            devices.register_gpu_user(self)
        else:
            devices.steady_heap()
            # ncnn's own pools keep every buffer until the net is freed (370 MB after
            # one 300x300 animevideov3 picture); owning them lets ``trim`` give it back.
            self._pools = (ncnn.PoolAllocator(), ncnn.PoolAllocator())
            net.opt.blob_allocator, net.opt.workspace_allocator = self._pools
        with devices.captured_stderr(hand_back=True) as ncnn_said:
            loaded = _load_param(net, param, param_text)
            if loaded != 0:
                if (refused := _unopened(param, param_text)) is not None:
                    raise ModelError(f"{self._said}cannot open {param}: {refused}")
                raise ModelError(f"{self._said}ncnn could not parse {param}{because(ncnn_said())}")
        # A wrong name fails every run alike, which would read as a lack of memory: the
        # tile halved down to 32 px, then "the CPU ran out of memory".
        if input_blob not in net.input_names():
            raise ModelError(f"{self._said}{param} has no input blob '{input_blob}' "
                             f"(its inputs: {', '.join(net.input_names())})")
        if output_blob not in {blob.name for blob in net.blobs()}:
            raise ModelError(f"{self._said}{param} has no blob '{output_blob}' "
                             f"(its outputs: {', '.join(net.output_names())})")
        capped = None  # a cap of the process's own (ulimit -v) on a CPU load: (room, its name)
        if not device.is_gpu and bin_ is not None:
            capped = budget.cap_room()
            if capped is not None:
                _refuse_a_load_past_the_cap(name or param, param, param_text, net.opt.num_threads, precision,
                                            capped[0])
            _start_threads(name or param, net.opt.num_threads)
        self._name, self._threads = name or param, 1 if device.is_gpu else net.opt.num_threads
        # A Ctrl-C waited for the whole load (seconds on a GPU, compiling its shaders):
        # noted, it ends the load at the next read, and is raised once ncnn has returned.
        # Only signals that raise KeyboardInterrupt anyway are held: the engine does not
        # take over a library user's own handlers.
        held = HeldInterrupts(ctrl_c_signals())
        try:
            # Only under a cap: the weights' own mappings took 0.2-0.3 s more to load
            # x4plus (0.94-1.10 s against 0.58-1.06), and without one the heap's way
            # crashes nothing.
            apart = devices.weights_mapped_apart() if capped is not None else contextlib.nullcontext()
            with devices.captured_stderr(hand_back=True) as ncnn_said, apart:
                loaded = _load_weights(net, bin_, lambda: held.noted, weights)
                said = because(ncnn_said()) if loaded != 0 else ""
        except OSError as e:
            if out_of_memory(e):  # the host's memory, not the model's fault
                raise MemoryError(f"{self._said}cannot read {bin_}: {os_reason(e)}") from e
            loaded, said = -1, f" ({os_reason(e)})"
        finally:
            held.release()
        if loaded != 0:
            raise ModelError(f"{self._said}ncnn could not load the weights in {bin_}{said}")
        self._net = net

    def extract(self, inputs: dict, output: str) -> np.ndarray:
        """Planar (C×H×W) float32 arrays fed to the named blobs; the named blob out,
        planar float32. A CPU run out of memory is run once more with the pools
        trimmed, where no other run is in this net."""
        try:
            with self.extractor(inputs) as extract:
                return extract({}, output)
        except NetFailure as failure:
            if not (failure.out_of_memory and self._trimmed_alone()):
                raise
        # ncnn's pools keep the buffers of every shape run before, and take new ones for
        # a shape they do not fit, which a cap (ulimit -v) counts: animevideov3-x2 on
        # 160x160 planes after 64x64 ones failed with 8 MB more room than it needs
        # alone, and a 256x256 picture of realesrgan-x4plus under ulimit -v 670000
        # failed so after 74 s of 32 px tiles in one of two runs.
        with self.extractor(inputs) as extract:
            return extract({}, output)

    def _trimmed_alone(self) -> bool:
        """Whether this net's pools (a CPU net's) were trimmed: only with no run in it."""
        with self._running_lock:
            if not self._pools or self._running:
                return False
            self.trim()
            return True

    @contextlib.contextmanager
    def extractor(self, inputs: dict):
        """One ncnn Extractor fed ``inputs``, as ``extract(more_inputs, output)``, which
        ``extract`` is for one output: the blobs it computes are kept between its
        extractions (resident.py runs the heads of one trunk so)."""
        # The extractor and its output hold buffers of this net's pools: dropped however
        # the call ends. A Ctrl-C between two lines here left them in the traceback's
        # frame, alive when release freed the pools: ncnn printed "pool allocator
        # destroyed too early", and freeing them afterwards crashed the process.
        if self._threads > getattr(_teams, "threads", 1):  # this thread's first CPU call, as a rule
            _start_threads(self._name, self._threads, "run")
        # Held in a list the caller's function reads it through: emptied here, the
        # extractor is freed when the block ends, whoever still holds the function.
        with self._running_lock:
            self._running += 1
        try:
            held = [self._net.create_extractor()]
            try:
                self._feed(held[0], inputs)
                yield lambda more, output: self._extracted(held[0], more, output)
            finally:
                held.clear()
        finally:
            with self._running_lock:
                self._running -= 1

    @staticmethod
    def _feed(ex, inputs: dict) -> None:
        for name, array in inputs.items():
            # A Mat that borrows an array's memory has no reference count, and ncnn
            # dereferences it when an in-place layer (ReLU, a scalar BinaryOp) reads an
            # input directly: a segfault on custom models that start with one. The copy
            # owns its memory; it costs a few milliseconds against seconds of network.
            planar = np.ascontiguousarray(array, dtype=np.float32)  # alive until cloned
            ex.input(name, ncnn.Mat(planar).clone())

    def _extracted(self, ex, inputs: dict, output: str) -> np.ndarray:
        out = None
        try:
            self._feed(ex, inputs)
            ret, out = ex.extract(output)
            # A GPU's output Mat, downloaded into memory of its own, is viewed, not copied
            # (a pass over the output, a tenth of the host time around a light model); the
            # view keeps it alive. A CPU net's output lives in this net's pools, which must
            # not be freed under it: copied.
            # A Crop that takes more than the picture has gives a negative size, which
            # numpy refused with a bare ValueError.
            shape = None if ret != 0 else (out.c, out.h, out.w)
            result = None if ret != 0 or min(shape) < 1 else \
                np.asarray(out) if self.device.is_gpu else np.array(out)
        finally:
            # Not left in this frame for an error's traceback to keep past the pools.
            del ex, out
        if ret != 0:
            self._failed = True
            raise NetFailure(f"ncnn error {ret} on {self.device}", ret)
        if result is None:
            raise NetFailure(f"ncnn gave an output of {shape[2]}x{shape[1]}x{shape[0]} on {self.device}")
        if result.ndim != 3:  # a classifier's scores, say: transposed as a picture, a bare ValueError
            raise ModelError(f"{self._said}{self.param} gives blob '{output}' of shape {result.shape}, not a picture's "
                             "(channels, height, width): not an upscaling model")
        if not np.isfinite(result).all():
            raise NonFinite(f"non-finite output on {self.device}")
        return result

    def run(self, image: np.ndarray, keep: tuple | None = None) -> np.ndarray:
        """An H×W×C float32 picture through the network, H'×W'×C' float32 out; with
        ``keep`` (y0, y1, x0, x1), only the output of that box of the picture."""
        result = self.extract({self.input_blob: image.transpose(2, 0, 1)}, self.output_blob).transpose(1, 2, 0)
        return crop_output(result, keep, result.shape[0] // image.shape[0])

    def trim(self) -> None:
        """Free the buffers ncnn keeps for the next run; only call between runs."""
        for pool in self._pools:
            pool.clear()

    def __del__(self) -> None:
        # Collected unreleased (a caller that never closed its Upscaler), the attributes
        # went in the order they were set: the pools before the net. A layer that still
        # held a buffer of theirs (RealPLKSR's layer norm does) then crashed the process.
        with contextlib.suppress(Exception):  # at exit, what release uses may be gone already
            self.release()

    def release(self) -> None:
        net, self._net = getattr(self, "_net", None), None
        if net is not None:
            net.clear()
            del net  # before its pools
        pools, self._pools = getattr(self, "_pools", ()), ()
        # A failed run can leave a buffer ncnn could not allocate listed as in use,
        # and the pool says so on stderr as it goes ("pool allocator destroyed too
        # early"), after the command's own error line: that goes unheard.
        quiet = devices.captured_stderr() if getattr(self, "_failed", False) else contextlib.nullcontext()
        with quiet:
            del pools  # the last reference: the pools are destroyed here, after the net


class SplitNetwork:
    """A network run in parts (``netsplit``) on one ncnn.Net: its trunk, then its head
    on pieces of ``head_piece`` pixels of the trunk's output, which gives the whole
    network's numbers with the head's large per-pixel memory spent on one piece at a
    time, so that the trunk, which needs the context, can take large windows. Its
    trunk may also run in stages over a whole picture (``staged``). Used on the CPU,
    and on GPUs that may stage. Same interface as ``Network``."""

    def __init__(self, net: Network, plan: NetPlan, head_piece: int, norms: dict | None = None,
                 offsets: Offsets | None = None):
        if plan.sampled and offsets is None:
            raise ValueError("a DySample head needs its offsets to know its pieces' context")
        self.net, self.plan, self.head_piece = net, plan, head_piece
        self.device = net.device
        self.norms = norms or {}  # (scale, shift) of each GroupNorm a stage ends in, by layer name
        self.offsets = offsets

    def with_piece(self, head_piece: int) -> SplitNetwork:
        """The same net, its head run in pieces of ``head_piece`` (one call's: the
        numbers are the same, only the memory and the time differ)."""
        return SplitNetwork(self.net, self.plan, head_piece, self.norms, self.offsets)

    def run(self, image: np.ndarray, keep: tuple | None = None) -> np.ndarray:
        features = self.trunk(image.transpose(2, 0, 1))
        return placed(lambda cells: self.head(features, cells), image.shape, keep, self.plan.unshuffle)

    @property
    def precision(self) -> str:
        return self.net.precision

    def trunk(self, planes: np.ndarray) -> np.ndarray:
        """The cut blob for C×H×W picture planes (unshuffled first where the plan says)."""
        blob, fed = self.entry(planes)
        return self.net.extract({blob: fed}, self.plan.cut_blob)

    def entry(self, planes: np.ndarray) -> tuple[str, np.ndarray]:
        """The blob the stages start from, and what to feed it for picture planes."""
        if self.plan.unshuffle > 1:
            return self.plan.entry, unshuffle(planes, self.plan.unshuffle)
        return self.net.input_blob, planes

    def head(self, features: np.ndarray, box: tuple):
        """The head's output for ``box`` (y0, y1, x0, x1) of the trunk's output
        ``features`` (C×H×W), piece by piece: (row span, column span, scale, H×W×C
        float32 output of the piece's own cell). Only the box is computed, with the
        head's context around each piece where ``features`` has it: for a DySample
        head, as far as the piece's own samples reach."""
        c = self.plan.head_context
        _, height, width = features.shape
        for row, col, length_y, length_x in pieces(height, width, box, self.head_piece + 2 * c, c):
            if self.offsets is not None:
                # The samples of the cells around the piece too, which an end
                # convolution larger than 1x1 reads: those within the planned context.
                near = features[:, max(0, row.start - c):row.end + c, max(0, col.start - c):col.end + c]
                more = self.offsets.reach(near) - SAMPLE_REACH
                if more > 0:  # past the planned context: a window of its own
                    y0, x0 = max(0, row.start - c - more), max(0, col.start - c - more)
                    length_y, length_x = min(height, row.end + c + more) - y0, min(width, col.end + c + more) - x0
                    row, col = replace(row, window=y0), replace(col, window=x0)
            window = features[:, row.window:row.window + length_y, col.window:col.window + length_x]
            out = self.net.extract({self.plan.cut_blob: window}, self.plan.head_output or self.net.output_blob)
            yield own_piece(out, row, col, length_y, length_x, self.net.output_blob)

    def trim(self) -> None:
        self.net.trim()

    def release(self) -> None:
        self.net.release()


def placed(head: Callable, shape: tuple, keep: tuple | None, u: int) -> np.ndarray:
    """The output of box ``keep`` (all of a picture of ``shape`` where None) from the
    pieces ``head(cells)`` gives for the box's whole blocks of ``u`` pixels, as
    SplitNetwork.head gives them: placed, and cut to the box's own pixels."""
    box = keep or (0, shape[0], 0, shape[1])
    cells = (box[0] // u, -(-box[1] // u), box[2] // u, -(-box[3] // u))  # whole blocks
    out = None
    for row, col, s, piece in head(cells):
        if out is None:
            out = np.empty(((cells[1] - cells[0]) * s, (cells[3] - cells[2]) * s, piece.shape[2]), np.float32)
        out[(row.start - cells[0]) * s:(row.end - cells[0]) * s,
            (col.start - cells[2]) * s:(col.end - cells[2]) * s] = piece
    if u > 1:  # the box's own pixels of its whole blocks, at the network's scale
        f = out.shape[0] // (cells[1] - cells[0]) // u
        y0, x0 = (box[0] - cells[0] * u) * f, (box[2] - cells[2] * u) * f
        out = out[y0:y0 + (box[1] - box[0]) * f, x0:x0 + (box[3] - box[2]) * f]
    return out


def own_piece(out: np.ndarray, row, col, length_y: int, length_x: int, blob: str) -> tuple:
    """(row span, column span, scale, H×W×C output of the piece's own cell) from a
    head's C×H×W output ``out`` for a window ``length_y`` × ``length_x`` whose spans
    are ``row`` and ``col``; UnevenScale where it is no whole-number upscale."""
    s = out.shape[1] // length_y
    if out.shape[1:] != (length_y * s, length_x * s):
        raise UnevenScale(f"the head of {blob} gave {out.shape[2]}x{out.shape[1]} "
                          f"for {length_x}x{length_y}: not a whole-number upscale")
    return row, col, s, out[:, (row.start - row.window) * s:(row.end - row.window) * s,
                            (col.start - col.window) * s:(col.end - col.window) * s].transpose(1, 2, 0)


def group_norm_weights(plan: NetPlan, param: bytes, weights: bytes) -> dict | None:
    """(scale, shift) of each GroupNorm the ``plan``'s stages end in, by layer name,
    from the model's .param and .bin bytes (ones and zeros for one without affine
    weights); None where one's are not found."""
    norms = [(stage.norm, stage.channels) for stage in plan.stages if stage.norm is not None]
    found = layer_weights(parse_param(param), weights, [norm.layer for norm, _ in norms if norm.affine])
    pairs = {norm.layer: tuple(found.get(norm.layer, ())) if norm.affine
             else (np.ones(channels, np.float32), np.zeros(channels, np.float32)) for norm, channels in norms}
    return pairs if all(len(pair) == 2 for pair in pairs.values()) else None


def unshuffle(planes: np.ndarray, s: int) -> np.ndarray:
    """C×H×W planes as a network opening with a pixel unshuffle by ``s`` makes them:
    reflected (without repeating the edge) at the bottom and right to whole s×s
    blocks, then each block's pixels as channels, c·s² + dy·s + dx (ncnn's Reorg, as
    PyTorch's pixel_unshuffle). A side shorter than the padding is reflected over and
    over (numpy's), where the network's own reflection would read past it."""
    c, h, w = planes.shape
    pad_y, pad_x = -h % s, -w % s
    if pad_y or pad_x:
        planes = np.pad(planes, ((0, 0), (0, pad_y), (0, pad_x)), mode="reflect")
    hb, wb = (h + pad_y) // s, (w + pad_x) // s
    blocks = planes.reshape(c, hb, s, wb, s).transpose(0, 2, 4, 1, 3)
    return np.ascontiguousarray(blocks.reshape(c * s * s, hb, wb), dtype=np.float32)


def bicubic_net(scale: int) -> Network:
    """ncnn's own bicubic Interp (resize type 3), the reference tool's alpha upscaler,
    as a one-layer network on the CPU."""
    text = f"7767517\n2 2\nInput in 0 1 data\nInterp up 1 1 data out 0=3 1={scale:.1f} 2={scale:.1f}\n"
    return Network("<bicubic>", None, devices.CPU, "data", "out", threads=1, param_text=text)
