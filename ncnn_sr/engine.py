"""The Upscaler: one model on one device, ``upscale(array) -> array``.

It knows nothing of files, flags or video: arrays in, arrays out.
"""
from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import numbers
import os
import threading
import weakref
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from . import devices, staged
from .devices import Device
from .errors import DeviceError, InputError, ModelError
from .models import PATH_TYPES, ModelSpec, check_files, resolve_model
from .netsplit import NetPlan, plan_network
from .network import NetFailure, Network, NonFinite, SplitNetwork, bicubic_net, crop_output
from .pixels import check_image, quantize, to_float, to_gray
from .resample import resize, resize_bytes, target_size
from .tiles import (TTA_COUNT, blend_spans, mirror_pad, pieces, ramp_weights, tile_grid, tta_forward,
                    tta_inverse)

log = logging.getLogger("ncnn_sr")

ALPHA_MODES = ("bicubic", "model")
# default: ncnn's choice (fp16 storage on GPUs that have it, 60 dB from fp32). fp32:
# full precision. bf16: bfloat16 storage on the CPU, 54.5 dB from fp32 for 9-15% more
# speed and 8-20% less memory (docs/benchmarks.md). fp16 and int8 storage gained
# nothing on the CPU and are not offered.
PRECISIONS = ("default", "fp32", "bf16")
# Seam-free tiling by default. On the CPU and on devices that compute in the host's
# memory (integrated GPUs), a network whose trunk ``netsplit`` can cut into stages
# (RRDBNet) runs them over the whole picture (``staged``): tiled output is the whole
# picture's, for 2-6% less compute than the reference rule with 200 px tiles, when
# the stitched feature map fits in memory. A discrete GPU does so only when asked
# (``exact=True``): each stage's windows cross the bus twice, and on an H200
# realesrgan-x4plus ran at 0.027 MP/s in stages against 0.38-0.61 blended with 200 px
# tiles (docs/benchmarks.md). Otherwise seams are blended over
# this many pixels, and windows grow by it within a budget of (tile + overlap + 2*pad)
# / (tile + 2*pad) per axis over the reference rule: with 200 px tiles and the 10 px
# context, at most 15% more compute for 55-61 dB tiled-vs-whole PSNR on
# realesrgan-x4plus, against 45-51 dB (docs/benchmarks.md). Asking for a tile_pad alone selects the
# reference rule.
DEFAULT_OVERLAP = 16
# Side of the pieces a split network's head runs on (netsplit) on the CPU, and what its
# parts keep per input pixel of a window: realesrgan-x4plus on the CPU measured ~230 MB for
# the head on 72x72 windows (44 kB per pixel) and a slope of 14.5 kB per pixel for the
# rest (tools/cpu_memory.py), against 50-65 kB per pixel for the whole network.
HEAD_PIECE = 48
SPLIT_HEAD_BYTES_PER_PIXEL = 48_000
SPLIT_TRUNK_BYTES_PER_PIXEL = 16_000
# At most this much memory (and a quarter of what is available) goes to the feature
# maps of a staged run: float32 maps up to about 1.2 megapixels for RRDBNet, float16
# ones up to about 5. With the model, the head and the smallest automatic window
# that keeps a run within its output's size plus 1.5 GB; larger pictures are tiled
# with blended windows.
STAGE_MAP_CAP = 768 << 20
# How much more compute than blended windows an exact (staged) run may take when the
# room its maps need shrinks the automatic tile; see _auto_tile. 1080p on the CPU:
# 2.5 % more (144 px staged against 192 px blended).
EXACT_WORTH = 1.10
# Rows of the band a staged run holds, as assumed when the automatic tile is chosen.
STAGE_BAND = 256
# The most context (tile_pad) or blend width (overlap) a tile may ask for: the
# reference uses 10 and 0, the default 10 and 16; 100000 padded a picture until
# memory ran out.
MAX_CONTEXT = 512
# Side of the blank picture a custom model is run on once to learn its scale.
PROBE_SIZE = 32
# Windows one call keeps in flight on a GPU that does not compute in the host's
# memory. The C++ code runs its tiles one after another, so the GPU idles while the
# host converts each one in and out, and a 200 px window cannot fill a large GPU
# anyway (an H200 ran realesrgan-x4plus at 0.72-0.92 MP/s on 200 px windows,
# 1.06-1.42 on 400-512 px ones: docs/benchmarks.md). More windows at once only if each fits in
# its share of the heap budget, at GPU_WINDOW_BYTES_PER_PIXEL per padded pixel:
# realesrgan-x4plus held 20.4 kB per pixel on that H200 (ncnn's fp16), the heaviest
# of the catalog's models.
GPU_WINDOWS_IN_FLIGHT = 3
GPU_WINDOW_BYTES_PER_PIXEL = 24_000


# After a picture whose upscaled size is at least this, ncnn's buffers are handed back.
TRIM_AFTER_OUTPUT_BYTES = 64 << 20


# Upscalers made and not yet collected, closed as Python exits (_close_at_exit).
_made: "weakref.WeakSet[Upscaler]" = weakref.WeakSet()


def _close_at_exit() -> None:
    """Stop the calls still running, in daemon threads, at their next window, and free
    the networks once they are out: left running, they were inside ncnn while the
    Vulkan instance was torn down and the process died (SIGSEGV or SIGABRT)."""
    for up in list(_made):
        up._exiting = True
        up.close()


# After devices' teardown is registered (imported above), so this runs before it.
atexit.register(_close_at_exit)


def out_bytes(image: np.ndarray, scale: int) -> int:
    """Bytes of the native-scale result of ``image``."""
    return image.nbytes * scale * scale


class Upscaler:
    """One model on one device.

    ``model`` is a catalog name, a ``.param`` path or a ``ModelSpec``; a spec made by
    hand has its files checked as ``resolve_model`` checks a custom model's.
    ``upscale`` takes H×W×C arrays (C in 1, 3, 4; uint8 or uint16) and returns the
    same channel count and dtype. It may be called from several threads at once.
    If the device runs out of memory the tile is halved down to 32 pixels, then the
    work moves to the CPU with a warning; a wrong picture is never returned.
    ``concurrency`` is how many calls the caller runs at once: they share the
    memory budget of the automatic CPU tile.

    Tiling: by default seam-free. On the CPU and on integrated GPUs, RRDBNet models
    run their trunk in stages over the whole picture, which gives the whole picture's
    output at any tile size while the feature map fits in the host's memory;
    otherwise, and on discrete GPUs, neighbouring tiles overlap by
    ``DEFAULT_OVERLAP`` pixels and are blended. ``exact=True`` stages on discrete
    GPUs too, ``exact=False`` never stages. ``tile_pad`` alone selects the reference
    tool's rule (each tile cropped out of a run padded by ``tile_pad`` pixels, no
    blending), and ``overlap`` sets the blend width explicitly (0: the reference
    rule).
    """

    def __init__(self, model: "str | bytes | os.PathLike | ModelSpec", device: "str | int | Device" = "auto",
                 tile: int = 0, tta: bool = False, tile_pad: int | None = None, overlap: int | None = None,
                 alpha: str = "bicubic", precision: str = "default",
                 model_path: "str | bytes | os.PathLike | None" = None,
                 threads: int | None = None, concurrency: int = 1, exact: bool | None = None):
        if not isinstance(model, (*PATH_TYPES, ModelSpec)):
            raise InputError(f"model must be a name, a .param path or a ModelSpec, got {model!r}")
        if not isinstance(device, (str, numbers.Integral, Device)) or isinstance(device, bool):
            raise InputError(f"device must be 'auto', an index or a Device, got {device!r}")
        if model_path is not None and not isinstance(model_path, PATH_TYPES):
            raise InputError(f"model_path must be a folder's path, got {model_path!r}")
        for name, value in (("tile", tile), ("tile_pad", tile_pad), ("overlap", overlap), ("threads", threads),
                            ("concurrency", concurrency)):
            if (value is None and name in ("tile", "concurrency")) or (
                    value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool))):
                raise InputError(f"{name} must be a whole number, got {value!r}")
        # As Python ints: numpy's small types overflowed in the tile arithmetic (an
        # np.uint8 tile of 200 raised OverflowError).
        tile, concurrency = int(tile), int(concurrency)
        tile_pad, overlap, threads = (None if v is None else int(v) for v in (tile_pad, overlap, threads))
        for name, value in (("tta", tta), ("exact", exact)):
            # A truthy 'no' turned TTA (eight times the work) or exact tiling on.
            if not (isinstance(value, (bool, np.bool_)) or (value is None and name == "exact")):
                raise InputError(f"{name} must be True or False, got {value!r}")
        tta, exact = bool(tta), None if exact is None else bool(exact)
        if tile != 0 and tile < devices.MIN_TILE:
            raise InputError(f"tile size must be 0 (auto) or at least {devices.MIN_TILE}, got {tile}")
        if threads is not None and not 1 <= threads <= devices.MAX_THREADS:
            # ncnn divides by it (a negative count crashed); far too many crashed too
            raise InputError(f"threads must be 1 to {devices.MAX_THREADS}, got {threads}")
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if alpha not in ALPHA_MODES:
            raise InputError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
        if tile_pad is not None and not 0 <= tile_pad <= MAX_CONTEXT:
            raise InputError(f"tile padding must be 0 to {MAX_CONTEXT} pixels, got {tile_pad}")
        if overlap is not None and not 0 <= overlap <= MAX_CONTEXT:
            raise InputError(f"tile overlap must be 0 to {MAX_CONTEXT} pixels, got {overlap}")
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        self._concurrency = concurrency
        if isinstance(model, ModelSpec):
            # Made by hand, it skipped resolve_model's checks: the bin of another model,
            # or one with bytes to spare, loaded and ran without a word.
            check_files(model)
            self.spec = model
        else:
            self.spec = resolve_model(model, model_path)
        self.tta = tta
        self.alpha = alpha
        self.tile_pad = self.spec.prepadding if tile_pad is None else tile_pad
        if overlap is None:
            overlap = DEFAULT_OVERLAP if tile_pad is None else 0
        self.overlap = overlap
        # Context mirrored beyond the picture's own edges: the reference rule's (its
        # output is promised), none for seam-free tiling. A run of the picture as it
        # is matches the whole picture as Real-ESRGAN's own PyTorch inference runs it
        # (no padding at its borders, tiles clamped to them); against 4x-downscaled
        # photos it was as close to the originals in the outer band as the mirrored
        # context (within +-0.3 dB either way), and one window of a 256x256 picture
        # does 16 % less work (docs/benchmarks.md, "Borders").
        self._border = self.tile_pad if overlap == 0 else 0
        if exact and overlap == 0:
            raise InputError("exact tiling and the reference tiling (no overlap) exclude each other")
        self._exact = exact
        self._precision, self._threads = precision, threads
        self._windows_ahead = GPU_WINDOWS_IN_FLIGHT
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # no upscale call in progress
        self._closed = False
        self._exiting = False  # Python is exiting: calls in progress stop at their next window
        self._retired: list = []  # networks given up for the CPU, freed once no call runs
        self._running = 0  # upscale calls in progress
        self._callers: dict[int, int] = {}  # calls in progress per thread
        self._last_size: tuple = ()
        self._tile = tile
        self._net = self._load(devices.get_device(device))
        try:
            self._scale = self.spec.scale or self._probe_scale()
            self._alpha_net = bicubic_net(self._scale)
        except BaseException:
            # Left to the collector, a CPU network's pools could go before the net
            # that holds their buffers: ncnn printed "pool allocator destroyed too
            # early" after the error line.
            self._release_networks()
            raise
        _made.add(self)

    # --- public ------------------------------------------------------------------------

    @property
    def scale(self) -> int:
        """The model's native scale."""
        return self._scale

    @property
    def device(self) -> Device:
        """Where the network runs now (the CPU after an out-of-memory fallback)."""
        return self._net.device

    @property
    def tile(self) -> int:
        """The tile size asked for, or shrunk to after running out of memory; 0 is auto."""
        return self._tile

    def upscale(self, image: np.ndarray, scale: float | None = None,
                width: int | None = None, height: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Upscale a picture.

        With no ``scale``, ``width`` or ``height`` the result is at the model's native
        scale. Otherwise the model runs at its native scale and the result is resampled
        (Lanczos) to ``scale`` × the input, or to ``width``/``height`` (one alone keeps
        the aspect ratio).

        ``image`` is H×W×C (C in 1, 3, 4) or H×W grey, uint8 or uint16, any strides
        or byte order; a numpy subclass (a masked array, np.matrix) is taken as its
        plain data. The result has the same number of axes, channels and dtype, is a
        new array, and ``image`` is never changed.

        ``progress(done, total)`` is called after each tile; an exception it raises
        stops the work and comes out of ``upscale`` (that is how a batch cancels).
        """
        # An H×W picture came back H×W×1, which Pillow's fromarray refuses.
        flat = isinstance(image, np.ndarray) and image.ndim == 2
        image = check_image(image)
        if progress is not None and not callable(progress):
            raise InputError(f"progress must be a function of (done, total), got {progress!r}")
        h, w = image.shape[:2]
        wanted = None
        if scale is not None or width is not None or height is not None:
            wanted = target_size(h, w, scale, width, height)
        if self._closed:
            raise InputError("this Upscaler is closed")
        self._check_room(image, wanted)
        with self._lock:
            if self._closed:
                raise InputError("this Upscaler is closed")
            # ncnn's pools keep every buffer; they fit only runs of the same shape.
            # With nothing else in flight, a picture of another size starts from
            # empty pools instead of piling new buffers on the old.
            if self._running == 0 and image.shape[:2] != self._last_size:
                self._trim()
            self._running += 1
            me = threading.get_ident()
            self._callers[me] = self._callers.get(me, 0) + 1
            self._last_size = image.shape[:2]
        try:
            out = self._upscale_native(image, self._stopping_at_exit(progress))
        finally:
            with self._lock:
                self._running -= 1
                if self._callers[me] == 1:
                    del self._callers[me]
                else:
                    self._callers[me] -= 1
                if self._running == 0 and out_bytes(image, self._scale) >= TRIM_AFTER_OUTPUT_BYTES:
                    # A big result is about to be resampled or saved: make room for
                    # that. Its run took long enough that the next one's page faults
                    # are noise.
                    self._trim()
                if self._running == 0:
                    while self._retired:
                        self._retired.pop().release()
                    if self._closed:  # closed from inside a call: see close()
                        self._release_networks()
                    self._idle.notify_all()
        if wanted is not None:
            out = resize(out, *wanted)
        return out[:, :, 0] if flat else out

    def _stopping_at_exit(self, progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
        """``progress``, after a check that Python is not exiting (see _close_at_exit)."""
        def check(done: int, total: int) -> None:
            if self._exiting:
                raise InputError("this Upscaler was closed as Python exits")
            if progress is not None:
                progress(done, total)
        return check

    def _check_room(self, image: np.ndarray, wanted: tuple[int, int] | None) -> None:
        """An InputError when the result cannot fit in the memory available: asked for
        anyway, it ended with the process killed (a width of 100000 for a 40 px
        picture wants 10 GB per channel of float) instead of an error."""
        s = self._scale
        need = out_bytes(image, s)
        if wanted is not None:
            native = (image.shape[0] * s, image.shape[1] * s)
            need += resize_bytes(native, *wanted, image.shape[2], image.itemsize)
        available = devices.memory_limit()
        if available is not None and need > available:
            size = f"{image.shape[1] * s}x{image.shape[0] * s}" if wanted is None else f"{wanted[1]}x{wanted[0]}"
            raise InputError(f"a {size} result needs about {need / 2**30:.1f} GB of memory, "
                             f"more than the {available / 2**30:.1f} GB available")

    def _trim(self) -> None:
        self._net.trim()
        self._alpha_net.trim()

    def close(self) -> None:
        """Free the networks now rather than when the object is collected. Calls in
        progress in other threads finish first (freeing a network under a running
        extraction crashed the process); later calls raise InputError. Called from
        inside a call (its ``progress``), it returns at once, and the networks are
        freed when the last call ends: waiting there would wait for itself forever.
        As Python exits, every Upscaler is closed, and calls still running (in daemon
        threads) stop at their next tile with an InputError."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # the constructor failed before any network was made
            return
        with lock:
            self._closed = True
            if self._callers.get(threading.get_ident()):
                return
            while self._running:
                self._idle.wait()
            self._release_networks()

    def _release_networks(self) -> None:
        for net in (getattr(self, "_net", None), getattr(self, "_alpha_net", None)):
            if net is not None:
                net.release()

    def __repr__(self) -> str:
        # What a log line or a debugger needs to tell two of them apart; safe on one
        # whose constructor failed half way.
        spec, net = getattr(self, "spec", None), getattr(self, "_net", None)
        parts = [repr(spec.name) if spec is not None else "?"]
        if getattr(self, "_scale", None):
            parts.append(f"x{self._scale}")
        if net is not None:
            parts.append(f"on {net.device}")
        tile = getattr(self, "_tile", None)
        if tile is not None:
            parts.append(f"tile={tile or 'auto'}")
        if getattr(self, "tta", False):
            parts.append("tta")
        if getattr(self, "_closed", False):
            parts.append("closed")
        return f"<Upscaler {' '.join(parts)}>"

    def __enter__(self) -> "Upscaler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------

    def _load(self, device: Device) -> "Network | SplitNetwork":
        s = self.spec
        log.info("loading %s on %s", s.name, device)
        threads = self._threads
        if threads is None and not device.is_gpu and self._concurrency > 1:
            # The calls at once split the cores, as a CPU lane's workers do; a GPU lane
            # falling back to the CPU with ncnn's default (every core per call) ran
            # cores x workers threads beside any CPU lane.
            threads = devices.cpu_threads_per_call(self._concurrency)
        net = Network(str(s.param_path), str(s.bin_path), device, s.input_blob, s.output_blob,
                       self._precision, threads)
        if device.is_gpu and not (device.host_memory or self._exact):
            return net
        plan = plan_network(s.param_path.read_bytes(), s.input_blob, s.output_blob)
        if plan is None:
            return net
        if device.is_gpu:
            # The head on pieces of the tile the reference tool would give the whole
            # network on this heap: it fits, and GPUs want few large runs.
            return SplitNetwork(net, plan, devices.gpu_auto_tile(device.heap_budget_mb))
        return SplitNetwork(net, plan, HEAD_PIECE)

    def _probe_scale(self) -> int:
        probe = np.zeros((PROBE_SIZE, PROBE_SIZE, 3), np.float32)
        try:
            out = self._net.run(probe)
        except NetFailure as e:
            raise ModelError(f"model {self.spec.name} failed on a {PROBE_SIZE}x{PROBE_SIZE} test input: {e}") from None
        except MemoryError:
            # A tiny input: what ncnn cannot allocate here is a broken layer's (a
            # negative or absurd Interp scale), not this machine's lack of memory.
            raise ModelError(f"model {self.spec.name} failed on a {PROBE_SIZE}x{PROBE_SIZE} test input: "
                             "its layers ask for an impossible amount of memory") from None
        oh, ow = out.shape[:2]
        if oh != ow or oh % PROBE_SIZE or out.shape[2] != 3:
            raise ModelError(
                f"model {self.spec.name} turns a {PROBE_SIZE}x{PROBE_SIZE} RGB picture into "
                f"{ow}x{oh}x{out.shape[2]}: not a whole-number RGB upscaler"
            )
        return oh // PROBE_SIZE

    def runs_whole(self, height: int, width: int, calls: int | None = None) -> bool:
        """Whether a ``height`` × ``width`` picture runs as one window here (an
        automatic tile that fits it whole, or a tile at least as large), with
        ``calls`` pictures at once sharing the memory (default: the concurrency it
        was made for)."""
        with self._lock:
            net, tile = self._net, self._tile
        if tile:
            return tile >= max(height, width)
        return self._auto_tile(net, height, width, calls)[0] == 0

    def _auto_tile(self, net: "Network | SplitNetwork", height: int, width: int,
                   share: int | None = None) -> tuple[int, bool]:
        """The automatic tile, and whether a staged run may use it (its budget left
        room for the maps), with ``share`` calls at once (default: the concurrency): the
        maps' own budget is always the concurrency's, as only the window's matters to
        ``runs_whole``."""
        share = share or self._concurrency
        if net.device.is_gpu:  # the maps stay in the host's memory
            return devices.gpu_tile_for(net.device, reference_rule=self.overlap == 0), isinstance(net, SplitNetwork)
        if not isinstance(net, SplitNetwork):
            return devices.cpu_auto_tile(height, width, self.spec.cpu_bytes_per_pixel, self.tile_pad,
                                         share=share, overlap=self.overlap, border=self._border), False
        reserve = (HEAD_PIECE + 2 * net.plan.head_context) ** 2 * SPLIT_HEAD_BYTES_PER_PIXEL

        def tile(more: int) -> int:
            return devices.cpu_auto_tile(height, width, SPLIT_TRUNK_BYTES_PER_PIXEL, self.tile_pad,
                                         share=share, overlap=self.overlap, reserve=reserve + more,
                                         border=self._border)

        full = tile(0)
        if full == 0:  # one window: exact without maps
            return 0, False
        maps = self._stage_maps(net, height, width, STAGE_BAND)
        if maps is not None:
            staged_tile = tile(maps[1])
            # Smaller tiles add context per seam and stage: stage while that costs at
            # most EXACT_WORTH times the blended windows of the full tile. (A fixed
            # 128 px floor ruled out stages whenever two calls shared the budget, whose
            # blended tile is 112 px, although 96 px stages are cheaper than that.)
            if self._staged_cost(net.plan, staged_tile) <= EXACT_WORTH * self._blended_cost(full):
                return staged_tile, True
        return full, False

    def _blended_cost(self, tile: int) -> float:
        """Network runs per pixel of blended windows of ``tile`` (one axis, squared)."""
        return ((tile + 2 * self.tile_pad + self.overlap) / tile) ** 2

    def _staged_cost(self, plan: NetPlan, tile: int) -> float:
        """Network runs per pixel of a staged run with windows made for ``tile``: each
        stage keeps the window less its reach on both sides."""
        window = tile + 2 * self.tile_pad + self.overlap
        cells = [max(1, window - 2 * stage.reach) for stage in plan.stages]
        return sum((window / cell) ** 2 for cell in cells) / len(cells)

    def _stage_budget(self) -> int:
        return min(devices.available_memory() // 4, STAGE_MAP_CAP) // self._concurrency

    def _stage_maps(self, net: "Network | SplitNetwork", height: int, width: int, longest: int,
                    channels: int = 3) -> tuple[type, int] | None:
        """The number type and the memory of the maps of a staged run of a ``height``
        × ``width`` picture: float32 or float16 where they fit the budget, else
        None; also None when the run cannot be staged: on a discrete GPU not asked to
        (its net is not split), with ``exact=False``, with the reference rule (it
        promises the reference's output), or with the alpha channel through the
        network."""
        if not isinstance(net, SplitNetwork) or not net.plan.stages or self.overlap == 0 or self._exact is False:
            return None
        if channels == 4 and self.alpha == "model":
            return None
        p = self._border
        extra = 0
        if self.tta:  # each pass's output and their sum, in float (grey as RGB)
            extra = 2 * height * width * self._scale ** 2 * (4 if channels == 4 else 3) * 4
        # float32 while its maps take at most half the budget; beyond, they would
        # shrink the automatic tile (and so add context per seam) more than float16,
        # 66 dB from float32, is worth.
        budget = self._stage_budget()
        for dtype, room in ((np.float32, budget // 2), (np.float16, budget)):
            total = staged.map_bytes(net.plan.stages, height + 2 * p, width + 2 * p, longest, dtype) + extra
            if total <= room:
                return dtype, total
        return None

    def _upscale_native(self, image: np.ndarray, progress) -> np.ndarray:
        while True:
            with self._lock:
                net, tile = self._net, self._tile
            stages = True
            if tile == 0:
                tile, stages = self._auto_tile(net, *image.shape[:2])
            try:
                return self._run_tiles(image, net, tile, progress, stages)
            except NetFailure as failure:
                self._recover(net, tile, image.shape, failure)

    def _recover(self, net: Network, tile: int, shape: tuple, failure: NetFailure) -> None:
        """After a failed run: halve the tile, or move to the CPU, or give up."""
        if isinstance(failure, NonFinite) and not net.device.is_gpu:
            # Halving the tile down to 32 px only to say "the CPU ran out of memory"
            # blamed the wrong thing, after as many runs again.
            raise ModelError(f"model {self.spec.name} gave NaN or infinite values on the CPU: its weights are "
                             "broken, or not those of its .param")
        with self._lock:
            if self._net is not net:
                return  # another thread already moved on; retry with its choice
            # A tile past the picture ran it as one window: halving it from there
            # repeated that same failing run (some 95 times for a tile of 10**30).
            longest = max(shape[0], shape[1])
            effective = min(tile, longest) if tile else longest
            if effective > devices.MIN_TILE:
                self._tile = max(devices.MIN_TILE, effective // 2)
                log.warning("%s ran out of memory (%s): retrying with %dpx tiles", net.device, failure, self._tile)
                return
            if net.device.is_gpu:
                log.warning("%s ran out of memory even with %dpx tiles: falling back to the CPU (slower)",
                            net.device, devices.MIN_TILE)
                self._net = self._load(devices.CPU)
                self._tile = 0
                # Not freed now: other calls may be inside it (freeing a network under a
                # running extraction crashes the process); the last call out frees it.
                self._retired.append(net)
                return
        raise DeviceError(f"the CPU ran out of memory even with {devices.MIN_TILE}px tiles")

    def _run_tiles(self, image: np.ndarray, net: Network, tile: int, progress, stages: bool = True) -> np.ndarray:
        h, w, channels = image.shape
        # Padded at the picture's own depth and made float one window at a time: a
        # float copy of a 12 MP picture would cost 140 MB for the whole run.
        rgb = mirror_pad(np.repeat(image, 3, axis=2) if channels == 1 else image[:, :, :3], self._border)
        alpha = mirror_pad(image[:, :, 3:], self._border) if channels == 4 else None
        grid = tile_grid(h, w, tile)
        out = np.empty((h * self._scale, w * self._scale, channels), image.dtype)
        longest = tile + 2 * self.tile_pad + self.overlap  # the window the tile's memory is for
        maps = self._stage_maps(net, h, w, longest, channels) if stages and len(grid) > 1 else None
        if maps is not None:
            self._run_stages(net, rgb, alpha, out, longest, maps[0], progress)
        elif self.overlap == 0 or len(grid) == 1:
            self._place_tiles(grid, net, rgb, alpha, out, progress)
        else:
            self._blend_tiles(grid, net, rgb, alpha, out, progress)
        return out

    def _window_output(self, net: Network, rgb: np.ndarray, alpha: np.ndarray | None,
                       wy: int, wx: int, height: int, width: int, keep: tuple) -> np.ndarray:
        """Float output (RGB, plus alpha if any) of the box ``keep`` (y0, y1, x0, x1,
        in the window) of the window ``[wy, wy + height) × [wx, wx + width)`` of the
        mirror-padded picture."""
        s = self._scale
        window = (slice(wy, wy + height), slice(wx, wx + width))
        colour = self._infer(net, to_float(rgb[window]), keep)
        expected = ((keep[1] - keep[0]) * s, (keep[3] - keep[2]) * s)
        if colour.shape[:2] != expected:
            raise ModelError(f"model {self.spec.name} gave {colour.shape[1]}x{colour.shape[0]} for a box of "
                             f"{keep[3] - keep[2]}x{keep[1] - keep[0]}: its scale is not {s}")
        if alpha is None:
            return colour
        a = self._upscale_alpha(net, to_float(alpha[window]))
        return np.concatenate([colour, crop_output(a, keep, s)], axis=2)

    @staticmethod
    def _finish(values: np.ndarray, channels: int, into: np.ndarray) -> None:
        """Float output, rounded into ``into``, a box of the output picture."""
        quantize(to_gray(values) if channels == 1 else values, into.dtype, into)

    def _place_tiles(self, grid, net, rgb, alpha, out, progress) -> None:
        """The reference rule: each tile's own area, cropped out of its padded run (or
        the whole picture as one window, padded by the border)."""
        s, p, channels = self._scale, self._border, out.shape[2]
        boxes = [(t.y0, t.x0, t.height + 2 * p, t.width + 2 * p, (p, p + t.height, p, p + t.width))
                 for t in grid.tiles]
        with contextlib.closing(self._window_outputs(net, rgb, alpha, boxes)) as outputs:
            for done, (t, own) in enumerate(zip(grid.tiles, outputs), 1):
                self._finish(own, channels, out[t.out_slices(s)])
                if progress is not None:
                    progress(done, len(grid))

    def _window_outputs(self, net: Network, rgb: np.ndarray, alpha: np.ndarray | None, boxes: list):
        """``_window_output`` of each box (wy, wx, height, width, keep), in order. On a
        GPU with room for it, the next windows run while the caller places this one
        (GPU_WINDOWS_IN_FLIGHT). Close it (contextlib.closing) before the network may
        be freed: closing waits for the windows still running."""
        ahead = self._windows_in_flight(net, boxes)
        if ahead <= 1:
            for box in boxes:
                yield self._window_output(net, rgb, alpha, *box)
            return
        pending: collections.deque = collections.deque()
        pool = ThreadPoolExecutor(ahead, thread_name_prefix="ncnn-sr-window")
        try:
            for box in boxes:
                pending.append(pool.submit(self._window_output, net, rgb, alpha, *box))
                if len(pending) == ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()  # those not started
            # The rest run to their end even through another Ctrl-C: the network may be
            # freed as soon as the call ends, and freeing it under a window crashes.
            # Their futures are waited for, not their threads: an interrupted
            # Thread.join can take a thread still inside ncnn for ended (pipeline._Worker).
            interrupted = False
            while True:
                try:
                    futures.wait(pending)
                    pool.shutdown(wait=True)  # out of ncnn by now: only the threads' exit is left
                    break
                except KeyboardInterrupt:
                    interrupted = True
            if interrupted:
                raise KeyboardInterrupt

    def _windows_in_flight(self, net: Network, boxes: list) -> int:
        device = net.device
        if len(boxes) < 2 or not device.discrete:
            return 1
        largest = max(height * width for _, _, height, width, _ in boxes)  # TTA's passes run one by one
        room = device.heap_budget_mb * 2**20 // (2 * self._concurrency * largest * GPU_WINDOW_BYTES_PER_PIXEL)
        return max(1, min(self._windows_ahead, room, len(boxes)))

    def _blend_tiles(self, grid, net, rgb, alpha, out, progress) -> None:
        """Windows of one shape, spaced evenly, blended with complementary linear ramps
        around each seam (``tiles.blend_spans``). One shape lets ncnn reuse its buffers
        instead of keeping a set per shape.

        Only the blended pixels are summed in float: the strip a row of windows shares
        with the next row (carried over), and the columns a window shares with the
        next window in its row. Pixels one window alone covers go straight to ``out``,
        so no float copy of a whole row of output is ever held (160 MB for a row of
        200 px tiles across a 4000 px picture at x4)."""
        p, b, channels = self.tile_pad, self._border, out.shape[2]
        height, rows = blend_spans(grid.height, grid.tile, p, self.overlap, b)
        width, cols = blend_spans(grid.width, grid.tile, p, self.overlap, b)
        depth = 3 if alpha is None else 4
        total = len(rows) * len(cols)
        boxes = [(row.window, col.window, height, width, (row.start + b - row.window, row.end + b - row.window,
                                                          col.start + b - col.window, col.end + b - col.window))
                 for row in rows for col in cols]
        with contextlib.closing(self._window_outputs(net, rgb, alpha, boxes)) as outputs:
            self._blend_rows(rows, cols, outputs, out, channels, depth, total, progress)

    def _blend_rows(self, rows, cols, outputs, out, channels, depth, total, progress) -> None:
        s, width_out = self._scale, out.shape[1]
        done, carry = 0, None
        for row in rows:
            y0, rise, fall = row.start * s, row.rise * s, row.fall * s
            band_height = (row.end - row.start) * s
            mid = slice(rise, band_height - fall)
            weight_y = ramp_weights(band_height, rise, fall)[:, None, None]
            top = carry  # the previous row's share of these pixels, if any
            bottom = np.zeros((fall, width_out, depth), np.float32) if fall else None
            pending = None  # the previous window's share of the columns it shares with this one
            for col, piece in zip(cols, outputs):
                x0, x1 = col.start * s, col.end * s
                left, right = col.rise * s, col.fall * s
                # Weighted only where it blends: the whole piece times its weights took
                # half of this loop's time on x4plus's 944 px windows.
                weight_x = ramp_weights(x1 - x0, left, right)[None, :, None]
                edge = piece.shape[1] - right
                if rise:
                    top[:, x0:x1] += weight_y[:rise] * (piece[:rise] * weight_x)
                if fall:
                    bottom[:, x0:x1] += weight_y[-fall:] * (piece[-fall:] * weight_x)
                rows_out = slice(y0 + rise, y0 + band_height - fall)
                self._finish(piece[mid, left:edge], channels, out[rows_out, x0 + left:x1 - right])
                if left:
                    self._finish(pending + piece[mid, :left] * weight_x[:, :left], channels,
                                 out[rows_out, x0:x0 + left])
                pending = piece[mid, edge:] * weight_x[:, edge:] if right else None
                done += 1
                if progress is not None:
                    progress(done, total)
            if rise:
                self._finish(top, channels, out[y0:y0 + rise])
            carry = bottom

    def _run_stages(self, net: SplitNetwork, rgb: np.ndarray, alpha: np.ndarray | None, out: np.ndarray,
                    longest: int, dtype, progress) -> None:
        """Exact tiling (``staged``): the trunk stage by stage over the whole picture,
        then the head piece by piece; with TTA, once per symmetry, summed in float."""
        s, p, channels = self._scale, self._border, out.shape[2]
        height, width = rgb.shape[0] - 2 * p, rgb.shape[1] - 2 * p
        c = net.plan.head_context

        def windows(h: int, w: int) -> int:  # in one pass over an h × w padded picture
            heads = sum(1 for _ in pieces(h, w, (p, h - p, p, w - p), net.head_piece + 2 * c, c))
            return staged.window_count(net.plan.stages, h, w, longest) + heads

        total = windows(*rgb.shape[:2])
        if self.tta:  # four passes transposed
            total = 4 * (total + windows(rgb.shape[1], rgb.shape[0]))
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total)

        if not self.tta:
            def place(y0, y1, x0, x1, values):
                self._finish(values, channels, out[y0 * s:y1 * s, x0 * s:x1 * s])
            self._staged_pass(net, rgb, alpha, longest, dtype, place, tick)
            return
        depth = 3 if alpha is None else 4
        summed = np.zeros((height * s, width * s, depth), np.float32)
        for k in range(TTA_COUNT):
            turned = tta_forward(rgb, k)
            one = np.empty(((turned.shape[0] - 2 * p) * s, (turned.shape[1] - 2 * p) * s, depth), np.float32)

            def gather(y0, y1, x0, x1, values):
                one[y0 * s:y1 * s, x0 * s:x1 * s] = values
            self._staged_pass(net, turned, None if alpha is None else tta_forward(alpha, k), longest, dtype, gather,
                              tick)
            summed += tta_inverse(one, k)
        self._finish(summed * np.float32(1.0 / TTA_COUNT), channels, out)

    def _staged_pass(self, net: SplitNetwork, rgb: np.ndarray, alpha: np.ndarray | None, longest: int, dtype,
                     sink, tick) -> None:
        """One staged run over the mirror-padded picture: ``sink(y0, y1, x0, x1,
        values)`` gets the float output (RGB, plus alpha) of each piece of the picture,
        in the picture's coordinates."""
        s, p = self._scale, self._border
        picture = np.ascontiguousarray(to_float(rgb).transpose(2, 0, 1))
        features = staged.run_stages(net.net.extract, picture, net.net.input_blob, net.plan.stages, longest, tick,
                                     dtype)
        del picture
        _, height, width = features.shape
        for row, col, scale, colour in net.head(features, (p, height - p, p, width - p)):
            if scale != s:
                raise ModelError(f"model {self.spec.name} upscales by {scale} in parts, not {s}")
            if alpha is not None:
                c = max(net.plan.head_context, 2)  # what the bicubic reaches
                wy, wx = max(0, row.start - c), max(0, col.start - c)
                window = to_float(alpha[wy:min(height, row.end + c), wx:min(width, col.end + c)])
                a = self._alpha_net.run(window)[(row.start - wy) * s:(row.end - wy) * s,
                                                (col.start - wx) * s:(col.end - wx) * s]
                colour = np.concatenate([colour, a], axis=2)
            sink(row.start - p, row.end - p, col.start - p, col.end - p, colour)
            tick()

    def _infer(self, net: Network, window: np.ndarray, keep: tuple | None = None) -> np.ndarray:
        if not self.tta:
            return net.run(window, keep)
        total = None
        for k in range(TTA_COUNT):
            result = tta_inverse(net.run(tta_forward(window, k)), k)
            total = result if total is None else total + result
        total *= np.float32(1.0 / TTA_COUNT)
        return crop_output(total, keep, self._scale)

    def _upscale_alpha(self, net: Network, window: np.ndarray) -> np.ndarray:
        if self.alpha == "bicubic":
            return self._alpha_net.run(window)
        return self._infer(net, np.repeat(window, 3, axis=2)).mean(axis=2, keepdims=True)
