"""Vulkan and CPU devices: discovery, heap budget, automatic tile size, and the one
Vulkan instance of the process."""
from __future__ import annotations

import atexit
import contextlib
import logging
import math
import numbers
import os
import re
import sys
import threading
import weakref
from dataclasses import dataclass

from . import budget as host_memory
from .choices import DEVICE_SPECS, MIN_TILE
from .errors import DeviceError, address_space_capped, describe
from .native_stderr import captured_stderr  # noqa: F401 (its callers name it here)
from .openmp import ncnn
from .typed_numbers import whole_number

log = logging.getLogger("ncnn_sr")

CPU_INDEX = -1
# ncnn's GpuInfo.type(): what kind of Vulkan device it is.
_GPU_TYPES = {0: "discrete", 1: "integrated", 2: "virtual", 3: "cpu"}
# Every kind a Device may be: ncnn's, and "unknown" for a type it does not name. A
# Vulkan device of kind "cpu" is a software one (lavapipe, SwiftShader).
DEVICE_KINDS = (*_GPU_TYPES.values(), "unknown")


@dataclass(frozen=True)
class Device:
    """A place to run a network: a Vulkan device (index >= 0) or the CPU (index -1).

    ``kind`` is one of DEVICE_KINDS ("cpu" for the CPU). ``heap_budget_mb`` is the
    Vulkan heap budget; None for the CPU.
    """

    index: int
    name: str
    kind: str
    heap_budget_mb: int | None

    def __post_init__(self) -> None:
        # Made by hand with other types, it failed later on a bare TypeError.
        if not _whole(self.index) or not (self.heap_budget_mb is None or _whole(self.heap_budget_mb)):
            raise DeviceError(f"a Device's index and heap budget must be whole numbers, got {self.index!r} "
                              f"and {self.heap_budget_mb!r}")
        # As Python ints: numpy's small types overflowed in the heap arithmetic (a
        # budget of np.int16(3000) raised OverflowError, np.int32 wrapped silently).
        object.__setattr__(self, "index", int(self.index))
        if self.heap_budget_mb is not None:
            object.__setattr__(self, "heap_budget_mb", int(self.heap_budget_mb))
        if self.index < CPU_INDEX:
            raise DeviceError(f"invalid device index {self.index}")
        if (self.index == CPU_INDEX) != (self.heap_budget_mb is None):
            raise DeviceError("the CPU (index -1) has no heap budget (None); a Vulkan device has one in MB")
        # A kind misspelt by hand ("intergrated") read as a discrete GPU: no staging,
        # windows in flight, larger tiles, all without a word.
        if not isinstance(self.name, str):
            raise DeviceError(f"a Device's name must be a string, got {self.name!r}")
        if self.kind not in DEVICE_KINDS:
            raise DeviceError(f"a Device's kind must be one of {', '.join(DEVICE_KINDS)}, got {self.kind!r}")

    @property
    def is_gpu(self) -> bool:
        return self.index != CPU_INDEX

    @property
    def host_memory(self) -> bool:
        """Whether it computes in the host's own memory (the CPU, an integrated GPU, a
        software Vulkan device such as lavapipe): handing it a feature map costs a
        copy, not two trips across a bus."""
        return self.kind in ("cpu", "integrated")

    @property
    def discrete(self) -> bool:
        """A GPU with its own memory across a bus: the one kind that gains from windows
        in flight, larger tiles and more save threads."""
        return self.is_gpu and not self.host_memory

    def __str__(self) -> str:
        return "CPU" if not self.is_gpu else f"GPU {self.index} ({self.name})"


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# --- the Vulkan instance ---------------------------------------------------------------

_lock = threading.Lock()
_gpu_count: int | None = None
# The process that made the instance. A forked child inherits it without the driver's
# state: ncnn waited for ever there, on a network, and in the driver's teardown as the
# child exited (see _exit_unforked).
_instance_pid: int | None = None
_native: tuple = ()  # _native_exit's, looked up as the instance is made
_gpu_users: weakref.WeakSet = weakref.WeakSet()


def gpu_count() -> int:
    """How many Vulkan devices there are; creates the Vulkan instance on first call."""
    global _gpu_count, _instance_pid, _native
    with _lock:
        if _gpu_count is not None and _instance_pid != os.getpid():
            raise DeviceError("the Vulkan instance was made in the parent of this forked process and cannot be used "
                              "here (ncnn would hang): use the CPU (device=-1), or start the process with "
                              "multiprocessing's 'spawn' method")
        if _gpu_count is None:
            _instance_pid = os.getpid()
            _native = _native_exit()
            if os.environ.get("NCNN_SR_VERBOSE_VULKAN"):
                ncnn.create_gpu_instance()
                _gpu_count = ncnn.get_gpu_count()
            else:
                with captured_stderr():
                    ncnn.create_gpu_instance()
                    _gpu_count = ncnn.get_gpu_count()
        return _gpu_count


def register_gpu_user(obj) -> None:
    """Remember an object holding Vulkan resources; its ``release()`` is called before
    the instance is torn down at exit, because freeing them after would crash."""
    _gpu_users.add(obj)


def _destroy_instance() -> None:
    if _gpu_count is None or _instance_pid != os.getpid():  # never made, or the parent's (see _exit_unforked)
        return
    for user in list(_gpu_users):
        user.release()
    ncnn.destroy_gpu_instance()


# Registered as this module loads, not when the instance is made: atexit runs the last
# registered first, so the hooks of the modules that import this one (the engine's,
# which waits for the calls still inside a network) run before the teardown.
atexit.register(_destroy_instance)


def _native_exit():
    """C's ``on_exit`` and ``_exit``, where the C library has both (glibc), or (): looked
    up in the parent, so that a forked child, whose parent's threads may have held the
    loader's locks, only calls them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        on_exit, leave = libc.on_exit, ctypes.cast(libc._exit, ctypes.c_void_p)
    except (ImportError, OSError, AttributeError):  # no ctypes, or a C library without them (musl, macOS)
        return ()
    on_exit.argtypes, on_exit.restype = (ctypes.c_void_p, ctypes.c_void_p), ctypes.c_int
    return on_exit, leave


def _exit_unforked() -> None:
    """In a child forked after the Vulkan instance was made: the process ends, once
    Python has finished, without the C library's exit handlers. One of them is ncnn's
    own teardown of the instance, which waited for ever there on the driver's threads,
    left in the parent (lavapipe's, in vkDestroyDevice), so a child that did not end
    by os._exit (multiprocessing's do) never ended. Handlers run last-registered first:
    this one, ``_exit`` given the exit status, runs before those of every library
    loaded before the fork, and the status is kept. (C's own buffered output is not
    flushed then; Python's is, as it finishes.)"""
    if _gpu_count is not None and _native:
        on_exit, leave = _native
        on_exit(leave, None)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_exit_unforked)


# --- discovery ---------------------------------------------------------------------------

CPU = Device(CPU_INDEX, "CPU", "cpu", None)


def gpu_range() -> str:
    """The Vulkan devices there are, in words: "only Vulkan device 0", "Vulkan devices 0..2"."""
    count = gpu_count()
    if count <= 1:
        return "only Vulkan device 0" if count else "no Vulkan device"
    return f"Vulkan devices 0..{count - 1}"


def _check_gpu_index(index: int) -> None:
    if not 0 <= index < gpu_count():
        raise DeviceError(f"invalid gpu device {index}: this machine has {gpu_range()} (use -1 for the CPU)")


def gpu_device(index: int) -> Device:
    _check_gpu_index(index)
    info = ncnn.get_gpu_info(index)
    budget = int(ncnn.get_gpu_device(index).get_heap_budget())
    return Device(index, info.device_name(), _GPU_TYPES.get(info.type(), "unknown"), budget)


def list_devices() -> list[Device]:
    """Every Vulkan device, then the CPU."""
    return [gpu_device(i) for i in range(gpu_count())] + [CPU]


# What a device may be given as: the library's and the CLI's -g errors both quote it, so they
# cannot come to disagree on the spellings named_index accepts.
# A Vulkan device by name: "GPU 0" as str(Device) writes it, "gpu0", "gpu:0".
_GPU_NAME = re.compile(r"gpu\s*:?\s*([0-9]+)")
_WRITTEN_GPU = re.compile(r"(gpu\s*[0-9]+)\s*\((.*)\)", re.IGNORECASE | re.DOTALL)


def named_index(text: str) -> int | None:
    """The device index ``text`` names: a whole number (-1 is the CPU), ``cpu``, or
    a Vulkan device N as ``gpuN``, ``gpu N`` (as ``str(Device)`` writes it) or
    ``gpu:N``, in any case; None for anything else, ``auto`` included."""
    text = text.strip().lower()
    if text == "cpu":
        return CPU_INDEX
    found = _GPU_NAME.fullmatch(text)
    if found:
        return int(found.group(1))
    return whole_number(text)


def split_specs(text: str) -> list[str]:
    """The devices a comma-separated list ``text`` gives, as ``str.split(",")`` cuts it,
    but at no comma within brackets: a GPU's name holds commas ("llvmpipe (LLVM 15.0.6,
    256 bits)"), which the str() of a Device, "GPU 0 (its name)", puts in brackets."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)  # a stray one closes nothing: later commas still cut
        elif char == "," and not depth:
            parts.append(text[start:at])
            start = at + 1
    return parts + [text[start:]]


def get_device(spec: str | int | Device = "auto") -> Device:
    """A device from ``"auto"``, an index (``-1`` is the CPU; as a string also
    ``"cpu"``, ``"gpu0"``, ``"GPU 0"``, ``"gpu:0"``, or the whole ``str()`` of a
    Device, "GPU 0 (its name)", whose name must be that GPU's) or a Device.

    ``auto`` is ncnn's default Vulkan device when it is hardware, else the first
    hardware one, else the CPU with a notice (logged once a process, however many
    calls ask): a software device (llvmpipe) is only ever taken by its index.
    """
    if isinstance(spec, Device):
        if spec.is_gpu:  # made by hand: ncnn ran an index that is not there on its default GPU
            _check_gpu_index(spec.index)
        return spec
    if not (isinstance(spec, str) or _whole(spec)):
        # int() made 1.5 GPU 1 and False GPU 0; None and nan raised bare errors.
        raise DeviceError(f"invalid gpu device {describe(spec)}: {DEVICE_SPECS}")
    if isinstance(spec, str):
        # Not "": a device read from an unset variable ran wherever auto found, unsaid
        # (ncnn-sr's -g refuses it too; the drop-in's rule is its own).
        if spec.strip().lower() == "auto":
            device, notice = explain_auto()
            if notice:
                why = " (slower)" if notice == NO_VULKAN else ", which is faster"
                _warn_once(f"{notice}: running on the CPU{why}")
            return device
        # The whole str() of a Device, "GPU 0 (its name)", as list_devices() shows it.
        written = _WRITTEN_GPU.fullmatch(spec.strip())
        index = named_index(written.group(1) if written else spec)
        if index is None:
            raise DeviceError(f"invalid gpu device {spec!r}: {DEVICE_SPECS}")
        if written:
            device = gpu_device(index)
            if device.name.lower() != written.group(2).lower():  # written elsewhere: another card is GPU N here
                raise DeviceError(f"invalid gpu device {spec!r}: GPU {index} here is {device.name}, "
                                  f"not {written.group(2)}")
            return device
        spec = index
    if spec == CPU_INDEX:
        return CPU
    return gpu_device(int(spec))


NO_VULKAN = "no Vulkan device found"

# The notices already logged: a library loop making an Upscaler(device="auto") per
# picture repeated the same line for each.
_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    """Log ``message`` as a warning, the first time in this process only."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("%s", message)


def forget_warnings() -> None:
    """Let each notice be logged once more (for tests, which each look for theirs)."""
    with _warned_lock:
        _warned.clear()


# The most ncnn threads a run may ask for: more than any machine's cores. Far more
# crashed the process (100000: a segfault; 65535: exit status 1 without a word).
MAX_THREADS = 1024


def cpu_threads_per_call(calls: int) -> int:
    """ncnn threads for each of ``calls`` CPU runs at once, sharing the cores."""
    return max(1, (os.cpu_count() or 1) // calls)


def explain_auto() -> tuple[Device, str | None]:
    """What ``auto`` picks on this machine, and why it is the CPU when it is."""
    found = [gpu_device(i) for i in range(gpu_count())]
    return auto_choice(found, ncnn.get_default_gpu_index() if found else None)


def auto_choice(gpus: list[Device], default: int | None) -> tuple[Device, str | None]:
    """What ``auto`` means among ``gpus``: ncnn's ``default`` Vulkan device if it is
    hardware, else the first hardware one, else the CPU, with why (None otherwise). A
    software Vulkan device (llvmpipe, SwiftShader: kind "cpu") is never chosen: ncnn's
    own CPU path is about ten times faster on the same processor. It can still be
    asked for by index."""
    hardware = [d for d in gpus if d.kind != "cpu"]
    for d in hardware:
        if d.index == default:
            return d, None
    if hardware:
        return hardware[0], None
    if gpus:
        return CPU, f"only a software Vulkan device ({gpus[0].name}) found"
    return CPU, NO_VULKAN


def likely_faster(device: Device) -> int:
    """A sort key, lower for the device likely faster at a picture: a hardware GPU (0),
    then the CPU (1), then a software Vulkan device (2: llvmpipe runs on the same
    processor as the CPU path, about ten times slower)."""
    if not device.is_gpu:
        return 1
    return 2 if device.kind == "cpu" else 0


# --- memory ------------------------------------------------------------------------------

_heap_pinned = False
_mallopt = None  # glibc's, once steady_heap found it
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
# Arenas glibc's allocator may have under a cap on the address space (ulimit -v): each
# past the first reserves 64 MB that the cap counts, however little it holds.
_ARENAS_UNDER_A_CAP = 2
_STEADY_THRESHOLD = 1 << 20
# glibc's own starting threshold: a buffer of a weights' size gets a mapping of its own.
_APART_THRESHOLD = 128 << 10
_apart_lock = threading.Lock()
_loads_apart = 0


def steady_heap() -> None:
    """Pin glibc's mmap threshold at 1 MiB, once per process. Left dynamic, it rises
    after each large free, so freed tile and picture buffers stay in the heap and RSS
    creeps up tile after tile; pinned, they go back to the system when freed. Under a
    cap on the address space (ulimit -v), the threads that allocate later share
    _ARENAS_UNDER_A_CAP arenas: one of their own each (up to 8 a core) took 192 MB of
    the room a 256x256 picture needed for realesrgan-x4plus's 32 px tiles, where 880
    MB went through and 830 MB did not; with two, 780 MB did."""
    global _heap_pinned, _mallopt
    if _heap_pinned or not sys.platform.startswith("linux"):
        return
    _heap_pinned = True
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
        mallopt(_M_MMAP_THRESHOLD, _STEADY_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _STEADY_THRESHOLD)
        if address_space_capped():
            mallopt(_M_ARENA_MAX, _ARENAS_UNDER_A_CAP)
    except (OSError, AttributeError):  # not glibc
        return
    _mallopt = mallopt


@contextlib.contextmanager
def weights_mapped_apart():
    """The heap pinned (steady_heap), with buffers of 128 KiB and more each mapped
    apart meanwhile: ncnn's weights as a CPU load keeps them (a 64x64 3x3
    convolution's 576 KiB, for Winograd's method) then take their own size. Under
    the 1 MiB threshold they came from the heap, and under a cap (ulimit -v), once
    it could not grow in place, glibc mapped 1 MiB for each: a load that fitted in
    10 MB of room in one process crashed inside ncnn at 16 MB in another, as other
    allocations had left the heap. Loads in other threads meanwhile share it: the
    threshold goes back to 1 MiB as the last of them ends."""
    global _loads_apart
    steady_heap()
    if _mallopt is None:
        yield
        return
    with _apart_lock:
        _loads_apart += 1
        if _loads_apart == 1:
            _mallopt(_M_MMAP_THRESHOLD, _APART_THRESHOLD)
    try:
        yield
    finally:
        with _apart_lock:
            _loads_apart -= 1
            if _loads_apart == 0:
                _mallopt(_M_MMAP_THRESHOLD, _STEADY_THRESHOLD)


# --- tile sizes --------------------------------------------------------------------------

# A discrete GPU with at least this heap budget (MB) gets LARGE_GPU_TILE px tiles
# instead of the reference's 200: on an H200 (143 GB), 400 px tiles ran
# realesrgan-x4plus 25-35 % faster than 200 px ones in three runs, and
# realesr-animevideov3-x2 -4 to +15 % (docs/benchmarks.md). A 400 px window of
# realesrgan-x4plus holds about 4.6 GB there. Not under the reference rule, which
# promises the reference tool's output (and so its tiles).
LARGE_GPU_MB = 16_000
LARGE_GPU_TILE = 400


def gpu_tile_for(device: Device, reference_rule: bool = False) -> int:
    """The automatic tile on a Vulkan ``device``. The reference rule promises the
    reference tool's output, tiled as it tiles: no larger tiles under it."""
    return gpu_auto_tile(device.heap_budget_mb, discrete=device.discrete and not reference_rule)


def gpu_auto_tile(heap_budget_mb: int, discrete: bool = False) -> int:
    """The tile size for a Vulkan heap budget in MB: the reference tool's, but larger
    on a large discrete GPU."""
    if discrete and heap_budget_mb >= LARGE_GPU_MB:
        return LARGE_GPU_TILE
    if heap_budget_mb > 1900:
        return 200
    if heap_budget_mb > 550:
        return 100
    if heap_budget_mb > 190:
        return 64
    return 32


# At most this much memory goes to one CPU tile, however much is free, because larger
# tiles gain almost no speed.
CPU_TILE_MEMORY_CAP = 1 << 30
# A picture that fits in one window may take more: nothing is held beside that window
# (no result being assembled, no stage maps), and one window is the fastest way
# through. realesrgan-x4plus on the CPU as one window of 256x256 to 288x288 peaks at
# 1.2-1.35 GB, and ran about 30 % faster than the 192 px staged tiles the tile cap gave
# a 256x256 picture; a 300x300 window, which this cap refuses, peaks at 1.62 GB
# (docs/benchmarks.md).
CPU_WHOLE_MEMORY_CAP = 1_500_000_000


def cpu_tile_budget(memory: int | None = None, share: int = 1) -> int:
    """Bytes a CPU window of one of ``share`` calls at once may take, ``memory``
    (default: what is available now) given: half of it, at most CPU_TILE_MEMORY_CAP."""
    half = (host_memory.available_memory() if memory is None else memory) // 2
    return min(half, CPU_TILE_MEMORY_CAP) // share


def cpu_auto_tile(height: int, width: int, bytes_per_pixel: int, prepadding: int,
                  memory: int | None = None, share: int = 1, overlap: int = 0, reserve: int = 0,
                  border: int | None = None) -> int:
    """A CPU tile size that bounds memory: 0 (the whole image) when it fits, else the
    largest multiple of 16, at least 32, whose window (the tile, grown by ``overlap``
    into its neighbours and padded by ``prepadding`` on each side) fits. ``share``
    calls running at once split the budget; ``reserve`` bytes of each share go to
    something else (a split network's head, a staged run's maps). The whole image
    is padded by ``border`` (default ``prepadding``) when it runs as one window."""
    available = host_memory.available_memory() if memory is None else memory
    half = available // 2
    b = prepadding if border is None else border
    padded = (height + 2 * b) * (width + 2 * b)
    if padded * bytes_per_pixel + reserve <= min(half, CPU_WHOLE_MEMORY_CAP) // share:
        return 0
    budget = cpu_tile_budget(available, share)
    budget = max(budget - reserve, budget // 4)
    if padded * bytes_per_pixel <= budget:
        return 0
    side = int(math.sqrt(budget / bytes_per_pixel)) - 2 * prepadding - overlap
    return max(MIN_TILE, side // 16 * 16)
