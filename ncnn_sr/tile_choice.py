"""The automatic tile of an Upscaler: blended windows of the largest tile that fits,
or a staged run with the smaller tile its feature maps leave room for, and that room.

A mixin of ``engine.Upscaler``, kept apart because the choice is arithmetic on the
Upscaler's settings (``tile_pad``, ``overlap``, ``_border``, ``tta``, ``alpha``,
``_exact``, ``_concurrency``, ``_scale``, ``spec``), read from ``self``, and on the
memory ``devices`` reports: it runs no network.
"""
from __future__ import annotations

import numpy as np

from . import budget, devices, staged
from .choices import MIN_TILE
from .netsplit import NetPlan
from .network import Network, SplitNetwork
from .param_file import ParamGraph, fixed_blobs
from .resident import KEPT_MAP_BYTES_PER_CELL, TRUNK_BYTES_PER_CELL, piece_spans, window_end
from .staged_run import tta_bytes
from .windows import GPU_WINDOW_BYTES_PER_PIXEL, GPU_WINDOWS_IN_FLIGHT, blob_width

# Side of the pieces a split network's head runs on (netsplit) on the CPU, and what its
# parts keep per input pixel of a window: realesrgan-x4plus on the CPU measured ~230 MB for
# the head on 72x72 windows (44 kB per pixel) and a slope of 14.5 kB per pixel for the
# rest (tools/cpu_memory.py), against 50-65 kB per pixel for the whole network.
HEAD_PIECE = 48
# The least a short room shrinks that piece to (_cpu_head_piece), in steps of
# HEAD_PIECE_STEP: realesrgan-x4plus (a context of 1 px) then runs (18/16)² of the
# head's pixels where 48 px pieces run (50/48)².
MIN_HEAD_PIECE = 16
HEAD_PIECE_STEP = 8
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
# The largest blob of a window at the automatic GPU tile takes at most this share of
# the heap (beside it: the blob it is made from, a layer's workspace, the weights), so
# that a custom model making much per input pixel (an x32 deconvolution of 256
# channels: 512 kB a pixel) gets smaller tiles than the heap's rule. No packaged model
# comes near it: realesrgan-x4plus's largest, a 4x map of 64 channels, is 99 MB at the
# reference's 200 px tiles, which take a heap over 1900 MB.
GPU_BLOB_SHARE = 4
# On the CPU a window takes at least this many times its largest float32 blob: the
# layer's input beside it, and its workspace. An x32 deconvolution to 64 maps (256 kB a
# pixel), whose Pooling no estimate knows (the 64 kB a pixel of custom models), peaked
# at 5.2 GB on a 100x100 picture run whole: 520 kB a pixel.
CPU_OVER_LARGEST_BLOB = 2
# The side of the test picture that per-pixel figure is worked out on: sides grow with
# it (a pad, a kernel's reach), less so on larger pictures.
BLOB_SIDE = 64


def largest_blob_bytes(graph: ParamGraph, side: int, value: int) -> int:
    """Bytes of the largest blob a ``side`` x ``side`` window makes, at ``value``
    bytes a number (a lower bound: see param_file.fixed_blobs)."""
    return max((c * h * w for _, c, h, w in fixed_blobs(graph, side)), default=0) * value


def cpu_blob_bytes_per_pixel(graph: ParamGraph) -> int:
    """Bytes per input pixel a CPU window takes at least, from its largest blob."""
    return CPU_OVER_LARGEST_BLOB * largest_blob_bytes(graph, BLOB_SIDE, 4) // BLOB_SIDE ** 2


def gpu_fitting_tile(graph: ParamGraph, heap_mb: int, start: int, extra: int, value: int) -> int:
    """The largest tile from ``start`` down, by 16 px, whose window (the tile and
    ``extra``) makes no blob larger than a GPU_BLOB_SHARE of a ``heap_mb`` heap;
    MIN_TILE where none does (the load refused a model whose window there does not
    fit the whole heap)."""
    room = (heap_mb << 20) // GPU_BLOB_SHARE
    for tile in range(start, MIN_TILE, -16):
        if largest_blob_bytes(graph, tile + extra, value) <= room:
            return tile
    return MIN_TILE


def largest_fitting_tile(graph: ParamGraph, room: int, high: int, extra: int, value: int) -> int:
    """The largest tile up to ``high`` whose window (the tile and ``extra``) makes no
    blob larger than ``room`` bytes; 0 where not even MIN_TILE's does. Bisected: a
    blob grows with its window, and a tile may be given in the thousands."""
    low, best = MIN_TILE, 0
    while low <= high:
        mid = (low + high) // 2
        if largest_blob_bytes(graph, mid + extra, value) <= room:
            best, low = mid, mid + 1
        else:
            high = mid - 1
    return best


def first_oversized_blob(graph: ParamGraph, side: int, room: int, value: int):
    """The first blob (layer, channels, height, width) a ``side`` x ``side`` window
    makes larger than ``room`` bytes, or None: the layer to mend, as the rest grow
    from it."""
    return next(((layer, c, h, w) for layer, c, h, w in fixed_blobs(graph, side) if c * h * w * value > room), None)


class TileChoice:
    """The tile an Upscaler runs a picture with when asked for none (``tile=0``)."""

    def _auto_tile(self, net: Network | SplitNetwork, height: int, width: int,
                   share: int | None = None) -> tuple[int, bool | type]:
        """The automatic tile, and whether a staged run may use it (its budget left
        room for the maps): True, False, or np.float16 where it may with float16 maps
        only (``_stage_maps``' ``half``), with ``share`` calls at once (default: the
        concurrency): the maps' own budget is always the concurrency's, as only the
        window's matters to ``runs_whole``."""
        share = share or self._concurrency
        if net.device.is_gpu:  # the maps stay in the host's memory
            return self._gpu_tile(net.device), isinstance(net, SplitNetwork)
        if not isinstance(net, SplitNetwork):
            if "cpu" not in self._blob_memo:
                self._blob_memo["cpu"] = cpu_blob_bytes_per_pixel(self._graph)
            per_pixel = max(self.spec.cpu_bytes_per_pixel, self._blob_memo["cpu"])
            return devices.cpu_auto_tile(height, width, per_pixel, self.tile_pad,
                                         share=share, overlap=self.overlap, border=self._border), False
        # RRDBNet's parts, measured; a network lighter than them whole (RealPLKSR, cut
        # only before its pixel shuffle) is held to its own estimate.
        whole = self.spec.cpu_bytes_per_pixel
        reserve = (net.head_piece + 2 * net.plan.head_context) ** 2 * min(SPLIT_HEAD_BYTES_PER_PIXEL, whole)
        trunk = min(SPLIT_TRUNK_BYTES_PER_PIXEL, whole)

        def tile(more: int) -> int:
            return devices.cpu_auto_tile(height, width, trunk, self.tile_pad,
                                         share=share, overlap=self.overlap, reserve=reserve + more,
                                         border=self._border)

        full = tile(0)
        if full == 0:  # one window: exact without maps
            return 0, False
        maps = self._stage_maps(net, height, width, STAGE_BAND)
        if maps is not None:
            staged_tile, stages = tile(maps[1]), True
            if maps[0] is np.float32:
                # Float32 maps, which fit from half the maps' budget on, take twice the
                # room of float16 ones: just past that point they left a smaller tile
                # than float16's just before it (720x1280: 176 px with 2.5 GB available,
                # 144 px with a little more). Float16 (66 dB from float32) keeps the
                # larger tile until float32's catches up with it: more memory never
                # gives a smaller one.
                half = self._stage_maps(net, height, width, STAGE_BAND, half=True)
                if half is not None and tile(half[1]) > staged_tile:
                    staged_tile, stages = tile(half[1]), np.float16
            # Smaller tiles add context per seam and stage: stage while that costs at
            # most EXACT_WORTH times the blended windows of the full tile. (A fixed
            # 128 px floor ruled out stages whenever two calls shared the budget, whose
            # blended tile is 112 px, although 96 px stages are cheaper than that.)
            if self._staged_cost(net.plan, staged_tile) <= EXACT_WORTH * self._blended_cost(full):
                return staged_tile, stages
        return full, False

    def _cpu_head_piece(self, net: SplitNetwork) -> int:
        """The head piece a CPU split network runs with now: its own, where its reserve
        leaves the trunk the quarter of a window's budget (devices.cpu_tile_budget)
        that _auto_tile gives it at least, else the largest, by HEAD_PIECE_STEP, whose
        reserve does, down to MIN_HEAD_PIECE. Under ulimit -v 640000 (71 MB of room
        past realesrgan-x4plus's load) a 256x256 picture ran its 32 px tiles with
        pieces of 16 and 24 px, where 48 px ones ran out of memory at the first
        window whose box took a whole piece. The tile is chosen with the whole piece's
        reserve still: the trunk takes no more room than it did."""
        whole = min(SPLIT_HEAD_BYTES_PER_PIXEL, self.spec.cpu_bytes_per_pixel)
        room = devices.cpu_tile_budget(share=self._concurrency) * 3 // 4
        c = net.plan.head_context
        piece = net.head_piece
        while piece > MIN_HEAD_PIECE and (piece + 2 * c) ** 2 * whole > room:
            piece = max(MIN_HEAD_PIECE, (piece - 1) // HEAD_PIECE_STEP * HEAD_PIECE_STEP)
        return piece

    def _gpu_tile(self, device: devices.Device) -> int:
        """The heap's tile, less where the model's blobs need it (gpu_fitting_tile).
        ncnn does not check the buffers it fails to make: a window too large for
        lavapipe's heap printed "vkCreateBuffer failed -2" and segfaulted."""
        start = devices.gpu_tile_for(device, reference_rule=self.overlap == 0)
        key = (device.heap_budget_mb, start)
        if key not in self._blob_memo:
            self._blob_memo[key] = gpu_fitting_tile(self._graph, device.heap_budget_mb, start,
                                                    self._window_extra, 4 if self._precision == "fp32" else 2)
        return self._blob_memo[key]

    @property
    def _window_extra(self) -> int:
        """How much longer than its tile a window may be: its context on both sides,
        the overlap and the rounding to the alignment (tiles.blend_spans)."""
        return 2 * self.tile_pad + self.overlap + self._alignment - 1

    def _blended_cost(self, tile: int) -> float:
        """Network runs per pixel of blended windows of ``tile`` (one axis, squared)."""
        return ((tile + 2 * self.tile_pad + self.overlap) / tile) ** 2

    def _staged_cost(self, plan: NetPlan, tile: int) -> float:
        """Network runs per pixel of a staged run with windows made for ``tile``: each
        stage keeps the window less its reach on both sides."""
        window = (tile + 2 * self.tile_pad + self.overlap) / plan.unshuffle  # in the trunk's cells
        cells = [max(1, window - 2 * stage.reach) for stage in plan.stages]
        return sum((window / cell) ** 2 for cell in cells) / len(cells)

    def _resident_fits(self, net: Network | SplitNetwork, height: int, width: int, tile: int,
                       channels: int = 3) -> bool:
        """Whether an exact run of a ``height`` × ``width`` picture of ``channels`` may
        keep the trunk's work whole on this GPU (resident.py): the network split, its
        trunk over the padded picture, or its map and one head piece of ``tile``, in
        the room blended windows of one call alone would have had (half the heap
        budget, and no more than the windows of a tile asked for), and at most
        resident.COPIES pieces. Not with the reference rule, ``exact=False`` or the
        alpha channel through the network, as for stages."""
        sizes = self._resident_room(net, height, width, tile, channels)
        return sizes is not None and sizes[0] <= sizes[1]

    def _resident_room(self, net: Network | SplitNetwork, height: int, width: int, tile: int,
                       channels: int = 3) -> tuple[float, int, int] | None:
        """The device memory the whole-trunk run of ``_resident_fits`` needs, the room
        it may take with the GPU to itself, and its share beside the other calls at
        once, in bytes (an infinite need where it would take more than
        resident.COPIES pieces); None where it may not run at all, whatever the room.
        A need past the share runs alone (device_gate)."""
        held = self._resident_plan
        if held is None or held[1] is not net and getattr(net, "net", None) is not held[1]:
            return None
        if self.overlap == 0 or self._exact is False or (channels == 4 and self.alpha == "model"):
            return None
        plan, planned = held
        u, p, c = plan.unshuffle, self._border, plan.head_context
        cells_y, cells_x = -(-(height + 2 * p) // u), -(-(width + 2 * p) // u)
        q = p // u
        wide = blob_width(planned.precision)
        room = net.device.heap_budget_mb * 2 ** 20 // 2
        if self._tile:
            room = min(room, GPU_WINDOWS_IN_FLIGHT * (tile + self._window_extra) ** 2 * GPU_WINDOW_BYTES_PER_PIXEL
                       * wide)
        share = min(room, net.device.heap_budget_mb * 2 ** 20 // (2 * self._concurrency))
        spans = piece_spans(cells_y, cells_x, (q, cells_y - q, q, cells_x - q), max(1, tile // u), c)
        if spans is None:
            return float("inf"), room, share
        # The largest piece's window (pieces grow where the tile would make too many).
        longest_y, longest_x = (max(window_end(span, limit, c) - span.window for span in side)
                                for side, limit in zip(spans, (cells_y, cells_x)))
        trunk = cells_y * cells_x * TRUNK_BYTES_PER_CELL * wide
        piece = longest_y * longest_x * u * u * GPU_WINDOW_BYTES_PER_PIXEL * wide
        return max(trunk, cells_y * cells_x * KEPT_MAP_BYTES_PER_CELL * wide + piece), room, share

    def _stage_budget(self) -> int:
        return min(budget.available_memory() // 4, STAGE_MAP_CAP) // self._concurrency

    def _stage_maps(self, net: Network | SplitNetwork, height: int, width: int, longest: int,
                    channels: int = 3, half: bool = False) -> tuple[type, int] | None:
        """The number type and the memory of the maps of a staged run of a ``height``
        × ``width`` picture: float32 or float16 where they fit the budget (float16
        alone with ``half``), else None; also None when the run cannot be staged: on
        a discrete GPU not asked to (its net is not split), with ``exact=False``, with
        the reference rule (it promises the reference's output), or with the alpha
        channel through the network."""
        if not isinstance(net, SplitNetwork) or not net.plan.stages or self.overlap == 0 or self._exact is False:
            return None
        if channels == 4 and self.alpha == "model":
            return None
        u = net.plan.unshuffle
        p = self._border
        extra = tta_bytes(height, width, p, u, self._scale, channels) if self.tta else 0
        # float32 while its maps take at most half the budget; beyond, they would
        # shrink the automatic tile (and so add context per seam) more than float16,
        # 66 dB from float32, is worth.
        budget = self._stage_budget()
        kinds = ((np.float32, budget // 2), (np.float16, budget))
        for dtype, room in kinds[1:] if half else kinds:
            total = staged.map_bytes(net.plan.stages, -(-(height + 2 * p) // u), -(-(width + 2 * p) // u),
                                     longest // u, dtype) + extra
            if total <= room:
                return dtype, total
        return None
