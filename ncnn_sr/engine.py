"""The Upscaler: one model on one device, ``upscale(array) -> array``.

It knows nothing of files, flags or video: arrays in, arrays out.

Here: the settings' checks, loading, the calls' bookkeeping (threads, close, exit),
recovery from running out of memory, and which runner a picture takes. The automatic
tile (``tile_choice``), the window runs (``windows``) and the staged runs
(``staged_run``) are mixins of the Upscaler in modules of their own: methods that read
its settings from ``self``, as they did when they were here, while the pictures pass as
arguments.
"""
from __future__ import annotations

import atexit
import inspect
import logging
import math
import numbers
import os
import platform
import threading
import weakref
from typing import Callable

import numpy as np

from . import budget, device_check, device_gate, devices, interruptible, transparent
from .choices import ALPHA_MODES, DEVICE_SPECS, MAX_CONTEXT, PRECISIONS
from .devices import Device
from .dysample import offsets_of
from .errors import CpuOutOfMemory, DeviceError, InputError, ModelError, SettingError, describe, no_path, with_article
from .fixed import DeclaredOnly, Fixed, read_only
from .models import PATH_TYPES, ModelSpec, mapped, resolve_model
from .netsplit import network_reach, plan_network
from .network import NetFailure, Network, NonFinite, SplitNetwork, UnevenScale, bicubic_net, group_norm_weights
from .param_file import fixed_blobs, fixed_output, parse_param
from .pixels import check_image, is_grey_colour, make_grey
from .resample import resize, resize_bytes, target_size
from .resident import COPIES as RESIDENT_COPIES, ResidentNetwork
from .signals import HeldInterrupts, ctrl_c_signals
from .staged_run import StagedRun
from .tile_choice import HEAD_PIECE, TileChoice, first_oversized_blob, largest_fitting_tile
from .tiles import mirror_pad, tile_grid
from .windows import WindowRunner

log = logging.getLogger("ncnn_sr")

# Seam-free tiling by default. On the CPU and on devices that compute in the host's
# memory (integrated GPUs), a network whose trunk ``netsplit`` can cut into stages
# (RRDBNet) runs them over the whole picture (``staged``): tiled output is the whole
# picture's, for 2-6% less compute than the reference rule with 200 px tiles, when
# the stitched feature map fits in memory. A discrete GPU runs the trunk whole on the
# GPU instead where it fits (resident.py), and stages only when asked (``exact=True``):
# each stage's windows cross the bus twice, and on an H200 realesrgan-x4plus ran at
# 0.027 MP/s in stages against 0.38-0.61 blended with 200 px tiles
# (docs/benchmarks.md). Otherwise seams are blended over
# this many pixels, and windows grow by it within a budget of (tile + overlap + 2*pad)
# / (tile + 2*pad) per axis over the reference rule: with 200 px tiles and the 10 px
# context, 235/220 per axis, at most 14.1% more compute in 2-D, for 60-64 dB
# tiled-vs-whole PSNR on realesrgan-x4plus's synthetic test pictures (53.5 and 49.5
# dB on a detailed photo), against 40-55 dB for the reference rule. 16 px gave
# 236/220, 15.07% in 2-D, over issue 6's 15%, for 0.3-1.2 dB more
# (docs/benchmarks.md, 2026-12-04). Asking for a tile_pad alone selects the
# reference rule.
DEFAULT_OVERLAP = 15
# Pixels around a pixel that the bicubic upscale of an alpha channel reads.
BICUBIC_REACH = 2
# Side of the blank picture a custom model is run on once to learn its scale.
PROBE_SIZE = 32


# After a picture whose upscaled size is at least this, ncnn's buffers are handed back.
TRIM_AFTER_OUTPUT_BYTES = 64 << 20
# And after any picture where a cap of the process's own (ulimit -v) leaves less than
# this room: what the pools keep counts against it. With more, trimming after each
# call cost a video's small frames a tenth of their time, their buffers taken anew.
TRIM_UNDER_CAP_ROOM = 256 << 20

# What every use of an Upscaler after close() raises (an InputError).
CLOSED = "this Upscaler is closed: make another"


# Upscalers made and not yet collected, closed as Python exits (_close_at_exit).
_made: weakref.WeakSet[Upscaler] = weakref.WeakSet()

# Said where a Ctrl-C lands as Python's exit waits for a window (_close_at_exit).
EXIT_WAIT_SAID = "Python exits once ncnn has finished the window it is running: ncnn cannot stop one midway"
# How often that wait looks for such a Ctrl-C, to say so as it comes.
EXIT_POLL_SECONDS = 0.1


def _close_at_exit() -> None:
    """Stop the calls still running, in daemon threads or left by a Ctrl-C, at their
    next window, and free the networks once they are out: left running, they were
    inside ncnn while the Vulkan instance was torn down and the process died (SIGSEGV
    or SIGABRT). The exit waits for the window each is in, which ncnn cannot stop, and
    Python cannot finish beside it either: a thread coming back from ncnn once Python
    has begun to finalize is ended by Python inside ncnn's binding, which aborts the
    process ("terminate called without an active exception", Python 3.11). A Ctrl-C
    meanwhile is held and dropped, with a line that says why: raised, it came out of
    the wait, and the teardown went on under the window (SIGSEGV on lavapipe)."""
    while True:
        # Again where one lands before all are held: a key held down sends a stream of
        # them, and one raised as the handlers were looked up skipped the wait.
        try:
            held = HeldInterrupts(ctrl_c_signals())
            break
        except KeyboardInterrupt:
            pass
    try:
        made = list(_made)
        for up in made:  # every one first: their windows end side by side
            up._exiting = True
        said = False
        for up in made:
            with up._lock:
                while up._running:
                    up._idle.wait(EXIT_POLL_SECONDS)
                    if held.noted and not said:
                        log.warning(EXIT_WAIT_SAID)
                        said = True
            up.close()
    finally:
        held.release(hand_on=False)  # Python is on its way out already


# After devices' teardown is registered (imported above), so this runs before it.
atexit.register(_close_at_exit)


def out_bytes(image: np.ndarray, scale: int) -> int:
    """Bytes of the native-scale result of ``image``."""
    return image.nbytes * scale * scale


def checked_tile(tile) -> int:
    """``tile`` as an int; a SettingError unless it is 0 (auto) or at least MIN_TILE."""
    if not isinstance(tile, numbers.Integral) or isinstance(tile, bool):
        raise SettingError(f"tile must be a whole number, got {describe(tile)}")
    # As a Python int: numpy's small types overflowed in the tile arithmetic (an
    # np.uint8 tile of 200 raised OverflowError).
    tile = int(tile)
    if tile != 0 and tile < devices.MIN_TILE:
        raise SettingError(f"tile size must be 0 (auto) or at least {devices.MIN_TILE}, got {tile}")
    return tile


def checked_progress(progress, wanted: str = "progress must be a function of (done, total)") -> None:
    """A SettingError unless ``progress`` is None or can be called with (done, total):
    one that cannot was a bare TypeError from the first tile, after that tile's work.
    ``wanted`` begins its message (a Pipeline's ``on_tile`` names itself)."""
    if progress is None:
        return
    wanted = f"{wanted}, got {describe(progress)}"
    if not callable(progress):
        raise SettingError(wanted)
    try:
        signature = inspect.signature(progress)
    except (TypeError, ValueError):
        return  # a builtin, whose arguments cannot be looked at: called as given
    try:
        signature.bind(0, 0)
    except TypeError as e:
        raise SettingError(f"{wanted}: {e}") from None


class Upscaler(TileChoice, WindowRunner, StagedRun, DeclaredOnly):
    """One model on one device.

    ``model`` is a catalog name, a ``.param`` path or a ``ModelSpec``; a spec made by
    hand has its files checked as ``resolve_model`` checks a custom model's. A name
    is looked for in ``model_path`` (a folder, which must be there, as the commands'
    -m must) first, then where ``resolve_model`` looks. ``device`` is ``"auto"``, an index (-1 or ``"cpu"`` for the CPU), or
    anything else ``get_device`` takes; not ``""``, which ``ncnn-sr -g`` refuses too.

    ``upscale`` takes H×W×C arrays (C in 1, 3, 4) or H×W grey ones, uint8 or uint16,
    and returns the same axes, channel count and dtype. It may be called from
    several threads at once. If the device runs out of memory the tile is halved
    down to 32 pixels, then the work moves to the CPU with a warning; a wrong
    picture is never returned.
    ``concurrency`` is how many calls the caller runs at once: they share the
    memory budget of the automatic CPU tile, and the CPU's cores: on the CPU each
    call runs ``threads`` of ncnn's threads where given, else its share of the cores.

    ``tile`` is the tile size in pixels, at least 32, or 0 for one chosen to fit the
    device's memory. ``tta`` averages the eight flips and transposes of the picture
    (eight times the work). ``alpha`` is how an alpha channel is upscaled:
    ``"bicubic"``, as the reference tool does, or ``"model"``, through the network
    as a grey picture. ``fill_transparent``: where all of a picture's fully
    transparent pixels hold one colour (black or white, as most editors save them),
    the model sees the visible colours around them there instead (transparent.py),
    which keeps a dark or light fringe off the edges of what is visible; the
    output's colour under them changes, its visible pixels no longer depend on it.
    Default: True but under the reference rule, which promises the C++ code's
    output; False for an alpha channel that holds data, not transparency.
    ``precision`` is the number format inside the network:
    ``"default"`` (ncnn's choice: float16 storage on GPUs that have it), ``"fp32"``,
    or ``"bf16"`` (CPU only: a little faster, 54 dB from fp32).

    Tiling: by default seam-free. On the CPU and on integrated GPUs, RRDBNet models
    run their trunk in stages over the whole picture, which gives the whole picture's
    output at any tile size while the feature map fits in the host's memory. On a
    discrete GPU their trunk runs once over the whole picture and the head on pieces
    of the tile from the map kept on the GPU (resident.py), the whole picture's output
    too, where that fits in the room tiles would have had. Otherwise neighbouring
    tiles overlap by ``DEFAULT_OVERLAP`` (15) pixels and are blended. ``exact``: True
    stages on discrete GPUs too where the trunk does not fit, False never stages nor
    runs the trunk whole. ``tile_pad`` alone selects the reference
    tool's rule (each tile cropped out of a run padded by ``tile_pad`` pixels, no
    blending), and ``overlap`` sets the blend width explicitly (0: the reference
    rule).

    A network that pixel-unshuffles its input by ``s`` (``alignment``: RRDBNets of
    scale 2 and 1) computes each ``s`` × ``s`` block together, so every window it
    runs on starts at a multiple of ``s`` in the picture, as Real-ESRGAN's own
    inference keeps it: ``tile_pad`` is rounded up and the tile down to multiples of
    ``s``, and with TTA each window is first reflected at its bottom and right to
    whole blocks, so that its flips and transposes see the picture's blocks too.
    Tiled output then differs from the whole picture's only by context and blending,
    as for any other network, and one window of the picture (seam-free tiling)
    gives the network's output for the picture at its own phase.

    Raises ModelError for a model unknown, missing (ModelMissing), damaged or not an
    upscaler, or a ``model_path`` that is not there or no folder; DeviceError for a device that is not there; SettingError (an
    InputError and a ValueError) for a setting of the wrong kind or out of range.

    ``spec``, ``tta``, ``alpha``, ``tile_pad`` and ``overlap`` read back as attributes,
    fixed when it is made: setting one, or another argument (``precision``), is an
    AttributeError, as is setting ``scale``, ``alignment``, ``stages`` or ``closed``,
    read back only; each says what to do instead. ``tile`` alone may be set later,
    checked as here. A public name it does not declare (``up.tiles``) is an
    AttributeError naming the one meant (DeclaredOnly); a subclass's declared names
    may be set.
    """

    def __init__(self, model: str | bytes | os.PathLike | ModelSpec, device: str | int | Device = "auto",
                 tile: int = 0, tta: bool = False, tile_pad: int | None = None, overlap: int | None = None,
                 alpha: str = "bicubic", precision: str = "default",
                 model_path: str | bytes | os.PathLike | None = None,
                 threads: int | None = None, concurrency: int = 1, exact: bool | None = None,
                 fill_transparent: bool | None = None):
        if not isinstance(model, (*PATH_TYPES, ModelSpec)):
            raise SettingError(f"model must be a name, a .param path or a ModelSpec, got {no_path(model)}")
        if not isinstance(device, (str, numbers.Integral, Device)) or isinstance(device, bool):
            raise SettingError(f"device must be 'auto', an index or a Device, got {describe(device)}")
        if isinstance(device, str) and not device.strip():
            raise SettingError(f"device is empty: {DEVICE_SPECS}, got {device!r}")
        if model_path is not None and (not isinstance(model_path, PATH_TYPES) or not os.fspath(model_path)):
            raise SettingError(f"model_path must be a folder's path, got {no_path(model_path)}")
        tile = checked_tile(tile)
        for name, value in (("tile_pad", tile_pad), ("overlap", overlap), ("threads", threads),
                            ("concurrency", concurrency)):
            if (value is None and name == "concurrency") or (
                    value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool))):
                raise SettingError(f"{name} must be a whole number, got {describe(value)}")
        # As Python ints, as checked_tile's, for the same overflow.
        concurrency = int(concurrency)
        tile_pad, overlap, threads = (None if v is None else int(v) for v in (tile_pad, overlap, threads))
        for name, value in (("tta", tta), ("exact", exact), ("fill_transparent", fill_transparent)):
            # A truthy 'no' turned TTA (eight times the work) or exact tiling on.
            if not (isinstance(value, (bool, np.bool_)) or (value is None and name != "tta")):
                raise SettingError(f"{name} must be True or False, got {describe(value)}")
        tta, exact = bool(tta), None if exact is None else bool(exact)
        if threads is not None and not 1 <= threads <= devices.MAX_THREADS:
            # ncnn divides by it (a negative count crashed); far too many crashed too
            raise SettingError(f"threads must be 1 to {devices.MAX_THREADS}, got {threads}")
        if not isinstance(precision, str) or precision not in PRECISIONS:  # an array's `in` is ambiguous
            raise SettingError(f"precision must be one of {', '.join(PRECISIONS)}, got {describe(precision)}")
        if not isinstance(alpha, str) or alpha not in ALPHA_MODES:
            raise SettingError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {describe(alpha)}")
        if tile_pad is not None and not 0 <= tile_pad <= MAX_CONTEXT:
            raise SettingError(f"tile padding must be 0 to {MAX_CONTEXT} pixels, got {tile_pad}")
        if overlap is not None and not 0 <= overlap <= MAX_CONTEXT:
            raise SettingError(f"tile overlap must be 0 to {MAX_CONTEXT} pixels, got {overlap}")
        if concurrency < 1:
            raise SettingError(f"concurrency must be at least 1, got {concurrency}")
        self._concurrency = concurrency
        # A ModelSpec made by hand gets its files checked there too: it skipped them, and
        # the bin of another model, or one with bytes to spare, loaded and ran without a word.
        # A model_path not there is refused there, whatever names the model: it was passed
        # over for the installed model, unsaid.
        self._spec = resolve_model(model, model_path)
        self._tta = tta
        self._alpha = alpha
        self._tile_pad = self.spec.prepadding if tile_pad is None else tile_pad
        self._pad_given = tile_pad is not None
        self._align_to(self.spec.alignment)
        if overlap is None:
            overlap = DEFAULT_OVERLAP if tile_pad is None else 0
        self._overlap = overlap
        if exact and overlap == 0:
            raise SettingError("exact tiling and the reference tiling (no overlap) exclude each other")
        self._exact = exact
        # The reference rule promises the C++ code's output: the colour under
        # transparent pixels as the picture has it, there.
        self._fill_transparent = overlap != 0 if fill_transparent is None else bool(fill_transparent)
        self._norm_warned = False
        self._precision, self._threads = precision, threads
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # no upscale call in progress
        self._closed = False
        self._exiting = False  # Python is exiting: calls in progress stop at their next window
        self._retired: list = []  # networks given up for the CPU, freed once no call runs
        self._running = 0  # upscale calls in progress
        self._left = 0  # of which their callers have left (a Ctrl-C), their work still running
        self._callers: dict[int, int] = {}  # calls in progress per thread
        self._last_size: tuple = ()
        self._tile = tile
        self._pid = os.getpid()
        # (heap, the heap's tile) -> the automatic GPU tile; "cpu" -> the bytes per pixel
        # of the largest blob's (tile_choice)
        self._blob_memo: dict = {}
        # A discrete GPU's split network, run whole-trunk (resident.py) where the picture
        # fits: its plan and the network it was planned for; the rewritten net, once made.
        self._resident_plan: tuple | None = None
        self._resident: ResidentNetwork | None = None
        self._resident_lock = threading.Lock()
        self._resident_failed = False
        self._unfit_said = False  # the first picture whose trunk does not fit, said once
        chosen = devices.get_device(device)
        self._check_fixed_sizes(chosen)
        self._check_given_tile(tile, chosen)
        self._net = self._load(chosen)
        try:
            # Not a software device (lavapipe: kind "cpu"), which computes on the CPU in
            # float32 anyway and took seconds for realesrgan-x4plus's test picture.
            if self._net.device.is_gpu and self._net.device.kind != "cpu":
                self._net = self._trusted(self._net)
            self._scale = self.spec.scale or self._probe_scale()
            if not self.spec.scale:
                self._align_to(math.lcm(self._alignment, self._probe_block()))
            self._alpha_net = bicubic_net(self._scale)
            self._cut_context_to_reach()
        except BaseException:
            # Left to the collector, a CPU network's pools could go before the net
            # that holds their buffers: ncnn printed "pool allocator destroyed too
            # early" after the error line.
            self._release_networks()
            raise
        _made.add(self)

    def _cut_context_to_reach(self) -> None:
        """The reference rule's context cut to the network's reach, past which it
        cannot change a tile's output: a --tile-pad of 500 around 32 px tiles of a
        64x64 picture ran windows of 1032 px, 65 s on 2 cores for
        realesr-animevideov3-x4, whose reach is 19 px. The sums are the same; ncnn
        rounds them a little differently in windows of another size, as between any
        two tile sizes (1 to 3 samples of 12,000 to 28,000 one level apart)."""
        reach = network_reach(self.spec.param_path.read_bytes(), self.spec.output_blob) if self.overlap == 0 else None
        if reach is not None:
            reach = max(reach, BICUBIC_REACH)  # an alpha channel's resampling sees as far
        if reach is not None and self.tile_pad > reach:
            self._tile_pad = reach + -reach % self._alignment

    # --- public ------------------------------------------------------------------------

    spec = Fixed("The model's ModelSpec: its files, scale and blobs.", "model")
    tta = Fixed("Whether each picture is run in its eight flips and transposes, averaged.")
    alpha = Fixed('How an alpha channel is upscaled: "bicubic" or "model".')
    fill_transparent = Fixed("Whether one colour under fully transparent pixels is filled from the visible "
                             "ones before the model sees it.")
    tile_pad = Fixed("The context, in pixels, each tile is run with: as asked, rounded up to the "
                      "network's blocks, and with the reference rule cut to how far the network sees.")
    overlap = Fixed("The pixels over which neighbouring tiles are blended; 0: the reference rule.")

    @read_only("is its model's: give upscale() a scale= for results of another size, "
               "or make another with another model=")
    def scale(self) -> int:
        """The model's native scale."""
        return self._scale

    def _align_to(self, alignment: int) -> None:
        """Windows start at multiples of ``alignment``, and ``tile_pad`` is rounded up to one."""
        self._alignment = alignment
        self._tile_pad += -self._tile_pad % alignment

    @property
    def _border(self) -> int:
        """Context mirrored beyond the picture's own edges: the reference rule's (its
        output is promised), none for seam-free tiling. A run of the picture as it
        is matches the whole picture as Real-ESRGAN's own PyTorch inference runs it
        (no padding at its borders, tiles clamped to them); against 4x-downscaled
        photos it was as close to the originals in the outer band as the mirrored
        context (within +-0.3 dB either way), and one window of a 256x256 picture
        does 16 % less work (docs/benchmarks.md, "Borders")."""
        return self.tile_pad if self.overlap == 0 else 0

    @read_only("is its model's: make another with another model=")
    def alignment(self) -> int:
        """The multiple of which every window's start in the picture is: the stride of
        the pixel unshuffle the network opens with, 1 for networks without one."""
        return self._alignment

    @property
    def device(self) -> Device:
        """Where the network runs now (the CPU after an out-of-memory fallback)."""
        return self._net.device

    @read_only("is read back only: close() closes it")
    def closed(self) -> bool:
        """Whether ``close()`` has been called (or its ``with`` block has ended): its
        calls from then on raise InputError."""
        return self._closed

    @read_only("follows from how it was made: make another with exact= (or overlap=)")
    def stages(self) -> bool:
        """Whether a tiled run may go in exact stages (the whole picture's output): False
        for a network that has none (SRVGGNetCompact, SPAN...), with ``exact=False``,
        on a discrete GPU not asked for them (it runs the trunk whole where that fits,
        resident.py, and blends tiles beyond), and with the reference rule (``overlap``
        0), whose output is the reference tool's."""
        # As _stage_maps decides, but for memory and an alpha channel through the model.
        net = self._net
        return (isinstance(net, SplitNetwork) and bool(net.plan.stages) and self.overlap != 0
                and self._exact is not False)

    @property
    def tile(self) -> int:
        """The tile size asked for, or shrunk to after running out of memory; 0 is auto.
        Set, it is checked as the constructor checks it (a SettingError), and is the
        tile of every call that starts, or retries after running out of memory, from
        then on; set once it is closed, an InputError."""
        return self._tile

    @tile.setter
    def tile(self, tile: int) -> None:
        tile = checked_tile(tile)
        with self._lock:
            if self._closed:  # taken, and read back, it changed nothing
                raise InputError(CLOSED)
            self._check_given_tile(tile, self._net.device)
            self._tile = tile

    def upscale(self, image: np.ndarray, scale: float | None = None,
                width: int | None = None, height: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Upscale a picture.

        With no ``scale``, ``width`` or ``height`` the result is at the model's native
        scale. Otherwise the model runs at its native scale and the result is resampled
        (Lanczos) to ``scale`` × the input, or to ``width``/``height`` (one alone keeps
        the aspect ratio). ``scale`` is any real number but a bool (an int, a float, a
        Fraction, numpy's) or a Decimal.

        ``image`` is H×W×C (C in 1, 3, 4) or H×W grey, uint8 or uint16, any strides
        or byte order; a numpy subclass (a masked array, np.matrix) is taken as its
        plain data. Colours are in RGB(A) order, as ``read_image`` and Pillow give them
        (OpenCV's BGR: ``upscale(image[:, :, ::-1])[:, :, ::-1]``). The result has the
        same number of axes, channels and dtype, is a new array, and ``image`` is never
        changed. Grey stays grey: one channel, and RGBA of equal R, G and B (grey with
        alpha), whose grey is the luma of the colour result.

        ``progress(done, total)`` is called after each tile, in the caller's thread, or
        after each step of the tiles where the work goes in smaller steps (a staged
        run's windows, TTA's passes over a picture of one window): ``total`` is then a
        ``tiles.Steps``, an int whose ``tiles`` is the tile count the steps make up. An
        exception it raises stops the work and comes out of ``upscale`` (that is how a
        batch cancels). In the main thread a Ctrl-C (KeyboardInterrupt, or what a
        program's own handler raises) comes out at once, though ncnn may be running a
        window then: the work runs in a helper thread, which stops at its next tile.
        Python's exit waits for that window.

        Raises InputError for a picture it cannot take (float pixels, 2 channels, no
        pixels), a closed Upscaler, or a result larger than the memory available;
        SettingError (an InputError and a ValueError) for a ``scale``, ``width``,
        ``height`` or ``progress`` of the wrong kind (a ``progress`` that cannot be
        called with (done, total)); DeviceError where even 32 px tiles do not fit on
        the CPU; ModelError where the model gives NaN there.
        """
        # An H×W picture came back H×W×1, which Pillow's fromarray refuses.
        flat = isinstance(image, np.ndarray) and image.ndim == 2
        image = check_image(image)
        checked_progress(progress)
        h, w = image.shape[:2]
        wanted = None
        if scale is not None or width is not None or height is not None:
            wanted = target_size(h, w, scale, width, height)
        if self._closed:
            raise InputError(CLOSED)
        if self._pid != os.getpid():
            # Its network is the parent's: ncnn's threads and a GPU's state do not
            # cross a fork, and ncnn waited for them for ever.
            raise InputError("this Upscaler was made in another process (before a fork): make one in this process")
        self._check_room(image, wanted)
        # "new", then "waiting" (counted in, its work not begun), "running", "left"
        # (its caller gone, its work not), "over". Whoever moves it on from "waiting"
        # counts it out: a Ctrl-C can land before the work begins (in another thread),
        # and the call stayed counted for ever, close() waiting on it.
        call, me = ["new"], threading.get_ident()
        try:
            with self._lock:
                if self._closed:
                    raise InputError(CLOSED)
                # ncnn's pools keep every buffer; they fit only runs of the same shape.
                # With nothing else in flight, a picture of another size starts from
                # empty pools instead of piling new buffers on the old.
                if self._running == 0 and image.shape[:2] != self._last_size:
                    self._trim()
                self._last_size = image.shape[:2]
                # No call between these three: a signal's handler runs at calls (and
                # loops), so it finds all three done or none.
                self._callers[me] = self._callers.get(me, 0) + 1
                self._running += 1
                call[0] = "waiting"
            if interruptible.wanted():  # so that a Ctrl-C need not wait for ncnn's window
                owner = device_gate.helper_owner()

                def work(report):
                    with device_gate.acting_for(owner):
                        return self._run_call(image, report, call)

                def told(done, total):
                    # Its progress runs here: a call made in it (another helper) nests
                    # in the holds of this call's helper.
                    with device_gate.acting_for(owner):
                        progress(done, total)

                # None stays None: the helper then runs on without asking this thread.
                out = interruptible.run(work, None if progress is None else told, lambda: self._leave(call))
            else:
                out = self._run_call(image, progress, call)
        finally:
            with self._lock:
                if call[0] != "new":
                    if self._callers[me] == 1:
                        del self._callers[me]
                    else:
                        self._callers[me] -= 1
                if call[0] == "waiting":  # its work never began, and will not
                    self._end_call(image, call)
        if image.shape[2] == 4 and is_grey_colour(image):
            # Grey with alpha, which comes in as RGBA: the network colours it (up to 120
            # levels apart on grain), and a grey picture's writing could not tell that
            # colour from the caller's own.
            make_grey(out)
        if wanted is not None:
            out = resize(out, *wanted)
        return out[:, :, 0] if flat else out

    def _run_call(self, image: np.ndarray, progress: Callable[[int, int], None] | None, call: list) -> np.ndarray:
        """The native-scale result of one call, and the end of the call's bookkeeping
        once its work is over, in the thread that does the work. Abandoned where its
        caller left before it began (and counted it out)."""
        try:
            with self._lock:
                if call[0] != "waiting":
                    raise interruptible.Abandoned
                call[0] = "running"
            return self._upscale_native(image, self._stopping_at_exit(progress))
        finally:
            with self._lock:
                if call[0] in ("running", "left"):
                    self._end_call(image, call)

    def _end_call(self, image: np.ndarray, call: list) -> None:
        """Counts ``call`` out, under the lock."""
        self._running -= 1
        if call[0] == "left":
            self._left -= 1
        call[0] = "over"
        if self._running == 0 and (out_bytes(image, self._scale) >= TRIM_AFTER_OUTPUT_BYTES
                                   or (capped := budget.cap_room()) is not None
                                   and capped[0] < TRIM_UNDER_CAP_ROOM):
            # A big result is about to be resampled or saved: make room for that. Its
            # run took long enough that the next one's page faults are noise. Under a
            # cap of the process's own (ulimit -v), what the pools keep is counted
            # against it whatever the result: x4plus's 256x256 picture ran in 71 MB of
            # room, and then its 4 MB of PNG writing found 2.3 MB left.
            self._trim()
        if self._running == 0:
            while self._retired:
                self._retired.pop().release()
            if self._closed:  # closed from inside a call, or with calls left running: see close()
                self._release_networks()
        self._idle.notify_all()

    def _leave(self, call: list) -> None:
        """The caller of ``call`` has left it (a Ctrl-C) while its work goes on to its next tile."""
        with self._lock:
            if call[0] == "running":
                call[0] = "left"
                self._left += 1
                self._idle.notify_all()

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
        available = budget.memory_limit()
        if available is not None and need > available:
            size = f"{image.shape[1] * s}x{image.shape[0] * s}" if wanted is None else f"{wanted[1]}x{wanted[0]}"
            raise InputError(f"{with_article(size)} result needs about {budget.size_words(need, up=True)} of memory, "
                             f"more than {budget.room_words(need, available)}")

    def _trim(self) -> None:
        self._net.trim()
        self._alpha_net.trim()
        resident = self._resident
        if resident is not None and resident is not self._net:  # beside stages (exact=True)
            resident.trim()

    def close(self) -> None:
        """Free the networks now rather than when the object is collected. Calls in
        progress in other threads finish first (freeing a network under a running
        extraction crashed the process); later calls, a ``with`` of it and its tile
        set raise InputError. Called from inside a call (its ``progress``), or from
        that of another Upscaler's call on the same GPU, it returns at once, and the
        networks are freed when the last call ends: waiting there would wait for
        itself forever (for a call of this one waiting at the GPU's gate).
        A call whose caller a Ctrl-C took out of it is not waited for either: it frees
        them as it ends, at its next tile. As Python exits, every Upscaler is closed,
        and calls still running (in daemon threads) stop at their next tile with an
        InputError."""
        lock = getattr(self, "_lock", None)
        if lock is None:  # the constructor failed before any network was made
            return
        # From the progress of a call that holds this GPU (another Upscaler's): a call
        # of this one may wait at the GPU's gate for that hold, which waits for the
        # progress, and waited for, both hung for ever.
        net = getattr(self, "_net", None)
        gated = net is not None and device_gate.holding(net.device.index)
        with lock:
            self._closed = True
            if self._callers.get(threading.get_ident()) or gated:
                return
            # Calls whose callers left (a Ctrl-C) are not waited for, but as Python exits.
            while self._running > (0 if self._exiting else self._left):
                self._idle.wait()
            if not self._running:
                self._release_networks()  # else the last call out frees them

    def _release_networks(self) -> None:
        for net in (getattr(self, "_net", None), getattr(self, "_alpha_net", None), getattr(self, "_resident", None)):
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
        # The rest where given otherwise than by default, so that two of one model tell
        # apart; tile_pad as it is used (cut to the network's reach), where given.
        others = (("alpha", "bicubic"), ("precision", "default"), ("threads", None), ("tile_pad", None),
                  ("overlap", DEFAULT_OVERLAP), ("exact", None))
        for name, default in others:
            value = getattr(self, f"_{name}", default)
            if value != default and (name != "tile_pad" or getattr(self, "_pad_given", False)):
                parts.append(f"{name}={value}")
        if getattr(self, "_closed", False):
            parts.append("closed")
        return f"<Upscaler {' '.join(parts)}>"

    def __reduce_ex__(self, protocol):
        # pickle and copy both come here. A copy shared the network but not the count
        # of calls running in it, so closing the copy freed it under the original.
        raise InputError("an Upscaler cannot be copied or pickled: it holds a network loaded on a device; "
                         "share this one between threads, or make one per process")

    def __enter__(self) -> Upscaler:
        # As a closed file is refused at its with: a block would run up to its first call.
        if self._closed:
            raise InputError(CLOSED)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------

    def _check_fixed_sizes(self, device: Device) -> None:
        """A ModelError where a blob a layer makes whatever the picture (an Interp's
        3= and 4=, a Padding's pads: fixed_blobs), or for the test picture a model of
        no known scale is run on first, is larger than ``device``'s heap, or on the
        CPU than half the memory available: ncnn does not check the GPU buffer it
        fails to make ("vkCreateBuffer failed -2" on lavapipe, then a segfault), and
        on the CPU it segfaulted or filled the memory as it went. Likewise where the
        network's output is of a size of its own: not an upscaler, which its test
        runs took minutes and gigabytes to find at 8192x8192."""
        s = self.spec
        graph = self._graph = parse_param(s.param_path.read_bytes(), s.name, s.param_path)
        if device.is_gpu:
            room = device.heap_budget_mb * 2**20

            def where(need: int) -> str:
                return f"the {device.heap_budget_mb} MB of {device}"
        else:
            # Half: a layer's workspace comes beside its output (an x1024 deconvolution's
            # 12 GB output for the 32x32 test picture took 21.7 GB before Linux killed it).
            memory = budget.memory_limit()
            room = memory and memory // 2

            def where(need: int) -> str:
                # As every refusal of memory names it: a cap (ulimit -v) or a cgroup's
                # limit that binds, where the machine has gigabytes free.
                return budget.room_words(need, memory, half=True)
        # Bytes a value takes at the least: ncnn's default fp16 storage on GPUs and ARM
        # CPUs (bf16 where asked), float32 on other CPUs, which have no fp16 storage.
        half = device.is_gpu or self._precision == "bf16" or platform.machine().lower().startswith(("arm", "aarch"))
        value = 2 if half and self._precision != "fp32" else 4
        # Whatever the picture, then for the test picture (_probe_scale) where it runs;
        # none where the memory is not known.
        sides = () if not room else (1,) if s.scale else (1, PROBE_SIZE)
        # On a GPU, then the window of the smallest tile, to which the automatic tile
        # shrinks for such a model (tile_choice.gpu_fitting_tile).
        smallest = devices.MIN_TILE + self._window_extra
        sides += (smallest,) if room and device.is_gpu else ()
        for side in sides:
            # The first too large: the layer to mend, where the rest grow from it.
            for layer, channels, height, width in fixed_blobs(graph, side):
                need = channels * height * width * value
                if need > room:
                    test = (f" from the {side}x{side} window of a {devices.MIN_TILE} px tile, the smallest" if side == smallest
                            else f" from its {side}x{side} test picture" if side > 1 else "")
                    raise ModelError(f"{s.said}layer {layer.name} ({layer.type}) makes "
                                     f"{with_article(f'{width}x{height}x{channels}')} "
                                     f"blob ({budget.mb_words(need, up=True)}){test}, more than {where(need)}")
        output = fixed_output(graph, s.output_blob)
        if output is not None:
            layer, height, width = output
            size = f"{with_article(f'{width}x{height}')} output" if width else "an output of a size of its own"
            raise ModelError(f"{s.said}makes {size} whatever the picture (layer {layer.name}, {layer.type}, "
                             "fixes its size): not an upscaler")

    def _check_given_tile(self, tile: int, device: Device) -> None:
        """A ModelError where the window of a ``tile`` given (not 0) makes a blob of a
        custom model larger than ``device``'s whole heap (the automatic tile keeps to a
        quarter: the user asked for this one), naming the largest tile that fits: ncnn
        does not check the buffer it fails to make ("vkCreateBuffer failed -2" on
        lavapipe, then a segfault). The catalog's models are left to their tiles as
        before: their runs at any tile are known, and on a host-memory GPU cut in pieces."""
        if not tile or not device.is_gpu or self.spec.verified:
            return
        room, value = device.heap_budget_mb << 20, 4 if self._precision == "fp32" else 2
        side = tile + self._window_extra
        blob = first_oversized_blob(self._graph, side, room, value)
        if blob is None:
            return
        layer, channels, height, width = blob
        fits = largest_fitting_tile(self._graph, room, tile - 1, self._window_extra, value)
        raise ModelError(f"{self.spec.said}layer {layer.name} ({layer.type}) makes "
                         f"{with_article(f'{width}x{height}x{channels}')} blob "
                         f"({budget.mb_words(channels * height * width * value, up=True)}) from the {side}x{side} window of "
                         f"{with_article(str(tile))} px "
                         f"tile, more than the {device.heap_budget_mb} MB of {device}: "
                         + (f"the largest tile that fits is {fits} px" if fits else "no tile fits"))

    def _load(self, device: Device, precision: str | None = None) -> Network | SplitNetwork | ResidentNetwork:
        s = self.spec
        log.info("loading %s on %s", s.name, device)
        threads = self._threads
        if threads is None and not device.is_gpu and self._concurrency > 1:
            # The calls at once split the cores, as a CPU lane's workers do; a GPU lane
            # falling back to the CPU with ncnn's default (every core per call) ran
            # cores x workers threads beside any CPU lane.
            threads = devices.cpu_threads_per_call(self._concurrency)
        param = s.param_path.read_bytes()
        plan = plan_network(param, s.input_blob, s.output_blob)
        normalised = plan is not None and any(stage.norm is not None for stage in plan.stages)
        whole_trunk = device.is_gpu and not device.host_memory and plan is not None and not plan.sampled
        if whole_trunk and not (self._exact or normalised):
            # The rewritten net runs windows too (its first head over all of each):
            # one load, not two, where blending stays the way for pictures too large.
            resident = self._load_resident(device, precision or self._precision, plan, param)
            if resident is not None:
                self._resident_plan, self._resident = (plan, resident), resident
                return resident
            # Not tried again for the first picture that fits: said once.
            self._resident_failed = True
        net = Network(str(s.param_path), str(s.bin_path), device, s.input_blob, s.output_blob,
                       precision or self._precision, threads, name=s.name)
        if plan is None:
            return net
        if whole_trunk:
            self._resident_plan = (plan, net)
        # A GroupNorm's statistics are the whole picture's: windows alone get them wrong.
        if device.is_gpu and not (device.host_memory or self._exact or normalised):
            return net
        weights, offsets = {}, None
        if normalised or plan.sampled:
            # Mapped, not read: Network has read the weights already, and these layers'
            # are a few KB of what may be hundreds of MB.
            with mapped(s.bin_path, s.name) as bin_bytes:
                weights = group_norm_weights(plan, param, bin_bytes) if normalised else {}
                if plan.sampled and weights is not None:
                    offsets = offsets_of(parse_param(param), bin_bytes)
        if weights is None:
            return net  # a GroupNorm's scale and shift not found: windows it is
        if plan.sampled and offsets is None:
            return net  # how far its samples reach is not known: windows it is
        if device.is_gpu:
            # The head on pieces of the tile the reference tool would give the whole
            # network on this heap: it fits, and GPUs want few large runs.
            return SplitNetwork(net, plan, devices.gpu_auto_tile(device.heap_budget_mb), weights, offsets)
        return SplitNetwork(net, plan, HEAD_PIECE, weights, offsets)

    def _trusted(self, net: Network | SplitNetwork) -> Network | SplitNetwork:
        """``net`` (on a GPU) if it computes device_check's test picture as it
        should; else the same model in float32 on that GPU if that does, else on the
        CPU, each change said in a warning. A network that fails to run at all is
        left to the first picture, which says why."""
        device = net.device
        tries = [("fp32", "in float32")] if self._precision == "default" else []
        for precision, how in [*tries, (None, "on the CPU")]:
            try:
                reason = device_check.fault(net.run(device_check.probe_picture()), self.spec.probe)
            except NonFinite:
                reason = "NaN or infinite values"
            except (NetFailure, MemoryError):
                return net
            if reason is None:
                return net
            log.warning("%s computes %s wrong (%s for a test picture: a driver fault?): running it %s%s", device,
                        self.spec.name, reason, how, ", slower" if precision is None else "")
            net.release()
            net = self._load(device if precision else devices.CPU, precision)
        return net

    def _probe_scale(self) -> int:
        failed = None
        try:
            out = self._probe(PROBE_SIZE)
        except NetFailure as e:
            out, failed = None, e
        else:
            if self._whole_upscale(out, PROBE_SIZE):
                return out.shape[0] // PROBE_SIZE
        # Not an upscaler of any picture. Two runs tell one that crops its border
        # (Real-CUGAN's, whose x2 and x4 fail on 32x32 outright) from any other.
        runs = [] if out is None else [(PROBE_SIZE, out)]
        for size in (PROBE_SIZE * 2, PROBE_SIZE * 4):
            if len(runs) == 2:
                break
            try:
                runs.append((size, self._probe(size)))
            except NetFailure:
                break
        if failed is not None and (len(runs) < 2 or self._whole_upscale(runs[0][1], runs[0][0])):
            if isinstance(failed, NonFinite):  # from a black picture: the weights' doing
                raise ModelError(f"{self.spec.said}gave NaN or infinite values for a black {PROBE_SIZE}x{PROBE_SIZE} "
                                 f"test input on {self._net.device}: {self._weights} are broken, or not those of its "
                                 ".param")
            raise ModelError(f"{self.spec.said}failed on a {PROBE_SIZE}x{PROBE_SIZE} test input: "
                             f"{failed}") from None
        self._not_whole(*runs[0], *(runs[1] if len(runs) == 2 else (None, 0)))

    @property
    def _weights(self) -> str:
        """The weights, as the NaN errors name them: with their .bin where no catalog
        hash vouches for it."""
        return "its weights" if self.spec.verified else f"its weights ({self.spec.bin_path})"

    def _probe_block(self) -> int:
        """The smallest block (1, 2, 4 ... 32 pixels) whose multiples a custom model
        upscales whole. A network that pools its input (a U-Net) gives a picture of
        any other size rows and columns too many, which were cropped away unseen: a
        garbled border. Windows of such a model are made of whole blocks, reflected
        at their bottom and right, as for a pixel unshuffle."""
        short = None  # the first run that failed for memory, (size, failure)
        for block in (1, 2, 4, 8, 16, 32):
            size = PROBE_SIZE + block
            try:
                out = self._probe(size)
            except NetFailure as failure:
                if failure.out_of_memory and short is None:
                    short = size, failure
                continue
            if out.shape == (size * self._scale, size * self._scale, 3):
                return block
        if short is not None:
            # The memory's doing, not the model's: an x32 deconvolution to 256 maps on the
            # CPU under ulimit -v 2400000 failed each with ncnn error -100.
            size, failure = short
            raise DeviceError(f"{self.spec.said}could not be run on a {size}x{size} test picture: "
                              f"{self._net.device} ran out of memory ({failure})")
        raise ModelError(f"{self.spec.said}upscales a {PROBE_SIZE}x{PROBE_SIZE} picture x{self._scale} but "
                         f"no picture of {PROBE_SIZE + 1} to {PROBE_SIZE * 2} pixels a side likewise: not an "
                         "upscaler of any picture")

    @staticmethod
    def _whole_upscale(out: np.ndarray, size: int) -> bool:
        return out.shape[0] == out.shape[1] and out.shape[0] % size == 0 and out.shape[2] == 3

    def _not_whole(self, size: int, out: np.ndarray, larger_size: int, larger: np.ndarray | None) -> None:
        """Raise the ModelError for a model that turns a ``size`` square into ``out``;
        ``larger``, its output for a ``larger_size`` square, tells a model that
        upscales but crops its border (as Real-CUGAN's, which need a padding of
        their own) from any other."""
        oh, ow, channels = out.shape
        said = f"{self.spec.said}turns a {size}x{size} RGB picture into {ow}x{oh}x{channels}"
        if larger is not None and oh == ow and channels == 3 and larger.shape == (larger.shape[0],) * 2 + (3,):
            grown = larger.shape[0] - oh
            scale, rest = divmod(grown, larger_size - size)
            crop = scale * size - oh
            if not rest and scale and crop > 0 and crop % (2 * scale) == 0:
                raise ModelError(f"{said}: an x{scale} model that crops {crop // (2 * scale)} pixels of the input "
                                 "from each side of its output, as Real-CUGAN's do: it needs a padding of its own, "
                                 "which ncnn-sr does not give")
        raise ModelError(f"{said}: not a whole-number RGB upscaler")

    def _probe(self, size: int) -> np.ndarray:
        """The model's output for a black ``size`` square; NetFailure where ncnn fails."""
        probe = np.zeros((size, size, 3), np.float32)
        try:
            try:
                return self._net.run(probe)
            except UnevenScale:  # a piece of a split network's head: the whole one shows what the model does
                return self._net.net.run(probe)
        except MemoryError:
            # A tiny input: what ncnn cannot allocate here is a broken layer's (a
            # negative or absurd Interp scale), not this machine's lack of memory.
            raise ModelError(f"{self.spec.said}failed on a {size}x{size} test input: "
                             "its layers ask for an impossible amount of memory") from None

    def runs_whole(self, height: int, width: int, calls: int | None = None) -> bool:
        """Whether an RGB ``height`` × ``width`` picture runs as one window here, one
        network run (TTA's passes aside), as ``upscale`` runs it: a tile, asked for or
        automatic, that covers it, or blended windows of a smaller one that grow to
        the whole picture; never a staged run. ``calls`` pictures at once share the
        memory (default: the concurrency it was made for). An InputError once it is
        closed."""
        for name, value in (("height", height), ("width", width), ("calls", calls)):
            # Else a bare TypeError or "math domain error", or an answer for -5 rows.
            if (value is not None or name != "calls") and (
                    not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1):
                what = "a whole number of pixels" if name != "calls" else "a whole number"
                raise SettingError(f"{name} must be {what}, at least 1, got {describe(value)}")
        with self._lock:
            if self._closed:  # its network is freed
                raise InputError(CLOSED)
            net, tile = self._net, self._tile
        stages = True
        if tile == 0:
            tile, stages = self._auto_tile(net, height, width, calls)
        # As _run_tiles decides: an automatic tile of 32 px, or -t 32, ran a 40x40
        # picture as one blended window (realesr-animevideov3-x2), where this said
        # False, and a CPU lane kept two workers for pictures one worker runs whole.
        grid, _, maps = self._layout(net, height, width, tile, stages)
        if len(grid) == 1:
            return True
        return maps is None and self._blends_whole(grid)

    def _upscale_native(self, image: np.ndarray, progress) -> np.ndarray:
        while True:
            with self._lock:
                net, tile = self._net, self._tile
            stages = True
            if tile == 0:
                tile, stages = self._auto_tile(net, *image.shape[:2])
            run = net
            if isinstance(net, SplitNetwork) and not net.device.is_gpu:
                # A tile asked for too: the head's pieces are no part of it.
                piece = self._cpu_head_piece(net)
                run = net if piece == net.head_piece else net.with_piece(piece)
            try:
                return self._run_tiles(image, run, tile, progress, stages)
            except NetFailure as failure:
                self._recover(net, tile, image.shape, failure)

    def _recover(self, net: Network, tile: int, shape: tuple, failure: NetFailure) -> None:
        """After a failed run: halve the tile, or move to the CPU, or give up."""
        if isinstance(failure, NonFinite) and not net.device.is_gpu:
            # Halving the tile down to 32 px only to say "the CPU ran out of memory"
            # blamed the wrong thing, after as many runs again.
            raise ModelError(f"{self.spec.said}gave NaN or infinite values on the CPU: {self._weights} are broken, "
                             "or not those of its .param")
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
        raise CpuOutOfMemory(f"the CPU ran out of memory even with {devices.MIN_TILE}px tiles")

    def _resident_net(self, net: Network | SplitNetwork, h: int, w: int, tile: int,
                      channels: int, instead: str) -> tuple[ResidentNetwork | None, bool]:
        """The whole-trunk net (resident.py) with head pieces of ``tile``, where an
        ``h`` × ``w`` picture of ``channels`` fits it on this GPU, made on first use,
        and whether it needs the GPU to itself (past its share beside the calls at
        once). None where it does not fit, or could not be made (then ``instead``, as
        before, said once)."""
        sizes = self._resident_room(net, h, w, tile, channels)
        if sizes is None:
            return None, False
        need, room, share = sizes
        if need > room:
            # Its output is not the whole picture's where it blends: -v said nothing.
            # Once: a folder's or a video's pictures of that size would each say it.
            with self._resident_lock:
                said, self._unfit_said = self._unfit_said or self._resident_failed, True
            if not said:
                why = f"more than {RESIDENT_COPIES} head pieces" if need == float("inf") else \
                    f"{budget.mb_words(int(need), up=True)}, over the {budget.mb_words(room)} its run may take"
                log.info("%s: the trunk of a %dx%d picture does not fit %s whole (%s): %s", self.spec.name, w, h,
                         net.device, why, instead)
            return None, False
        plan, planned = self._resident_plan
        with self._resident_lock:
            if self._resident is None and not self._resident_failed:
                self._resident = self._load_resident(planned.device, planned.precision, plan, instead=instead)
                self._resident_failed = self._resident is None
            if self._resident is None:
                return None, False
            return self._resident.with_piece(max(1, tile // plan.unshuffle)), need > share

    def _load_resident(self, device: Device, precision: str, plan, param: bytes | None = None,
                       instead: str = "blended windows") -> ResidentNetwork | None:
        """The model's whole-trunk net (resident.py) on ``device``, or None (said at
        the info level, with ``instead``, what runs then) where it cannot be made."""
        s = self.spec
        # Said either way: a net rewrite could not cut went to the tiles unsaid.
        why = "its .param and .bin could not be rewritten for it"
        try:
            with mapped(s.bin_path, s.name) as weights:
                made = ResidentNetwork.load(param or s.param_path.read_bytes(), bytes(weights), plan, s.output_blob,
                                            device, precision, s.name, path=str(s.param_path))
        except (ModelError, NetFailure, MemoryError, OSError) as e:
            made, why = None, str(e)
        if made is None:
            log.info("%s: the trunk cannot run whole on %s (%s): %s", s.name, device, why, instead)
        return made

    def _why_not_staged(self, channels: int) -> str:
        """What kept a tiled run from exact stages, for a warning."""
        if self.overlap == 0:
            return "the reference tiling rule runs no stages"
        if self._exact is False:
            return "exact tiling was turned off"
        if channels == 4 and self.alpha == "model":
            return "the alpha channel through the model runs no stages"
        return "no room for the feature maps of exact stages: more free memory or a larger tile would do"

    def _pad_alpha(self, alpha: np.ndarray) -> np.ndarray:
        """The alpha channel padded as the colour is, but for the bicubic upscale: the
        reference's (ncnn's Interp) reads its edge pixel again past the picture's edge,
        which padding by that pixel leaves as it is; mirrored, the outer 2 px of each
        side of its output differed from the C++ code's, by up to 84 levels on a sharp
        alpha (docs/benchmarks.md, "Parity")."""
        if self.alpha != "bicubic" or not self._border:
            return mirror_pad(alpha, self._border)
        return np.pad(alpha, ((self._border, self._border), (self._border, self._border), (0, 0)), mode="edge")

    def _layout(self, net: Network, h: int, w: int, tile: int, stages: bool | type, channels: int = 3):
        """How ``tile`` (0: none) runs an ``h`` × ``w`` picture of ``channels``: its
        grid, the window the tile's memory is for, and the maps of a staged run (None
        where it runs windows; float16 ones alone where ``stages`` is np.float16, as
        _auto_tile chose them). _run_tiles runs it; runs_whole reads it."""
        if tile:  # tiles of whole blocks keep the next tile's window at the picture's phase
            tile = max(self._alignment, tile - tile % self._alignment)
        grid = tile_grid(h, w, tile)
        longest = tile + 2 * self.tile_pad + self.overlap
        maps = self._stage_maps(net, h, w, longest, channels, half=stages is np.float16) \
            if stages and len(grid) > 1 else None
        return grid, longest, maps

    def _run_tiles(self, image: np.ndarray, net: Network, tile: int, progress, stages: bool = True) -> np.ndarray:
        h, w, channels = image.shape
        # Padded at the picture's own depth and made float one window at a time: a
        # float copy of a 12 MP picture would cost 140 MB for the whole run.
        colour = np.repeat(image, 3, axis=2) if channels == 1 else image[:, :, :3]
        if channels == 4 and self._fill_transparent:
            filled = transparent.filled(colour, image[:, :, 3:])
            colour = colour if filled is None else filled
        rgb = mirror_pad(colour, self._border)
        alpha = self._pad_alpha(image[:, :, 3:]) if channels == 4 else None
        grid, longest, maps = self._layout(net, h, w, tile, stages, channels)
        tile = grid.tile
        out = np.empty((h * self._scale, w * self._scale, channels), image.dtype)
        # Blended windows grown to the whole picture are one run, exact already.
        tiled = len(grid) > 1 and not self._blends_whole(grid)
        instead = "blended windows" if maps is None else "exact stages"
        resident, alone = self._resident_net(net, h, w, tile, channels, instead) if tiled else (None, False)
        # Said once the whole-trunk net is known to be there: a picture that fitted it
        # was left unsaid where the net could not be made.
        if maps is None and resident is None and tiled and getattr(net, "norms", None) and not self._norm_warned:
            self._norm_warned = True
            log.warning("%s normalises over the whole picture (GroupNorm), which tiles of %d px do not see: "
                        "their output differs from the whole picture's (%s)", self.spec.name, tile,
                        self._why_not_staged(channels))
        # The report of the last step waits for the hold to be let go: the GPU's work is
        # over by then, and a slow progress (a bar redrawn) held it as long, a call that
        # takes it alone waiting, and every call after that one. A report after it
        # (never, as the steps are counted) tells it first, in order.
        last: list = []

        def told(done: int, total: int) -> None:
            while last:
                progress(*last.pop())
            if done == total:
                last.append((done, total))
            else:
                progress(done, total)

        with device_gate.hold(net.device, alone) as held_alone:
            if alone and not held_alone:
                # Another call in its share waits to take the GPU alone (both from
                # progress callbacks): this one runs in its share, as windows.
                resident = None
            if resident is not None:
                self._run_stages(resident, rgb, alpha, out, longest, None, told, len(grid))
            elif maps is not None:
                self._run_stages(net, rgb, alpha, out, longest, maps[0], told, len(grid))
            elif self.overlap == 0 or len(grid) == 1:
                self._place_tiles(grid, net, rgb, alpha, out, told)
            else:
                self._blend_tiles(grid, net, rgb, alpha, out, told)
        if last:
            progress(*last.pop())
        return out
