"""Tiles run as windows of the picture, one network run each: the reference rule
(each tile cropped out of its padded run) and blended windows, with windows kept in
flight on a discrete GPU, and TTA and the alpha channel within each window.

A mixin of ``engine.Upscaler``: it reads the Upscaler's settings (``_scale``,
``_border``, ``tile_pad``, ``overlap``, ``tta``, ``alpha``, ``_alpha_net``, ``spec``,
``_concurrency``, ``_windows_ahead``, ``_alignment``) from ``self``; the pictures go in and out as
arguments.
"""
from __future__ import annotations

import collections
import contextlib
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import ModelError
from .network import Network, crop_output
from .pixels import quantize_into, to_float
from .tiles import TTA_COUNT, Steps, blend_spans, ramp_weights, tta_forward, tta_inverse

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


def blob_width(precision: str | None) -> int:
    """How many times ncnn's float16 blobs a GPU's blobs of ``precision`` take: on
    lavapipe a head piece of realesrgan-x4plus peaked 193 MB in float32 against 77 in
    float16 (docs/benchmarks.md, 2026-12-05)."""
    return 2 if precision == "fp32" else 1


class WindowRunner:
    """The window runs of an Upscaler: ``_place_tiles`` (the reference rule) and
    ``_blend_tiles``, each network run through ``_window_output``. Their ``progress``
    is always a callable (``Upscaler.upscale`` wraps the caller's)."""

    _windows_ahead = GPU_WINDOWS_IN_FLIGHT  # an instance may lower it (tools, tests)

    def _window_output(self, net: Network, rgb: np.ndarray, alpha: np.ndarray | None,
                       wy: int, wx: int, height: int, width: int, keep: tuple, tick=None) -> np.ndarray:
        """Float output (RGB, plus alpha if any) of the box ``keep`` (y0, y1, x0, x1,
        in the window) of the window ``[wy, wy + height) × [wx, wx + width)`` of the
        mirror-padded picture; ``tick()``, if given, after each TTA pass."""
        s = self._scale
        window = (slice(wy, wy + height), slice(wx, wx + width))
        colour = self._infer(net, to_float(rgb[window]), keep, tick)
        expected = ((keep[1] - keep[0]) * s, (keep[3] - keep[2]) * s)
        if colour.shape[:2] != expected:
            raise ModelError(f"{self.spec.said}gave {colour.shape[1]}x{colour.shape[0]} for a box of "
                             f"{keep[3] - keep[2]}x{keep[1] - keep[0]}: its scale is not {s}")
        if alpha is None:
            return colour
        a = self._upscale_alpha(net, to_float(alpha[window]), tick)
        return np.concatenate([colour, crop_output(a, keep, s)], axis=2)

    def _place_tiles(self, grid, net, rgb, alpha, out, progress) -> None:
        """The reference rule: each tile's own area, cropped out of its padded run (or
        the whole picture as one window, padded by the border)."""
        s, p, channels = self._scale, self._border, out.shape[2]
        boxes = [(t.y0, t.x0, t.height + 2 * p, t.width + 2 * p, (p, p + t.height, p, p + t.width))
                 for t in grid.tiles]
        if len(boxes) == 1 and self.tta:
            self._one_window_passes(net, rgb, alpha, boxes[0], out[grid.tiles[0].out_slices(s)], progress)
            return
        with contextlib.closing(self._window_outputs(net, rgb, alpha, boxes)) as outputs:
            for done, (t, own) in enumerate(zip(grid.tiles, outputs), 1):
                quantize_into(own, channels, out[t.out_slices(s)])
                progress(done, len(grid))

    def _one_window_passes(self, net, rgb, alpha, box: tuple, out, progress) -> None:
        """The one window ``box`` of a picture, with TTA, into ``out``: minutes of eight
        passes on the CPU for a photo, each told (``Steps`` of one tile), so a bar moves
        and a cancel stops between them; the last is told once placed."""
        total = Steps(self._tta_passes(alpha), tiles=1)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            if done < total:
                progress(done, total)
        quantize_into(self._window_output(net, rgb, alpha, *box, tick), out.shape[2], out)
        progress(total, total)

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
            # Thread.join can take a thread still inside ncnn for ended (workers.Worker).
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
        wide = blob_width(getattr(net, "precision", None))
        room = device.heap_budget_mb * 2**20 // (2 * self._concurrency * largest * GPU_WINDOW_BYTES_PER_PIXEL * wide)
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
        b, channels = self._border, out.shape[2]
        height, rows, width, cols = self._blend_layout(grid)
        depth = 3 if alpha is None else 4
        total = len(rows) * len(cols)
        boxes = [(row.window, col.window, height, width, (row.start + b - row.window, row.end + b - row.window,
                                                          col.start + b - col.window, col.end + b - col.window))
                 for row in rows for col in cols]
        if total == 1 and self.tta:
            # Grown to the whole picture (a 40x40 one in tiles of 32 px): one window with
            # no seam, whose passes are told as a grid of one tile's are; told once at
            # the end, its bar stood still and a cancel waited for all eight.
            self._one_window_passes(net, rgb, alpha, boxes[0], out, progress)
            return
        with contextlib.closing(self._window_outputs(net, rgb, alpha, boxes)) as outputs:
            self._blend_rows(rows, cols, outputs, out, channels, depth, total, progress)

    def _blend_layout(self, grid) -> tuple[int, list, int, list]:
        """The blended windows of ``grid``: their height and row spans, their width and
        column spans (``tiles.blend_spans``). One span on both axes is one window of
        the whole picture, however many tiles the grid has."""
        p, b, a = self.tile_pad, self._border, self._alignment
        height, rows = blend_spans(grid.height, grid.tile, p, self.overlap, b, a)
        width, cols = blend_spans(grid.width, grid.tile, p, self.overlap, b, a)
        return height, rows, width, cols

    def _blends_whole(self, grid) -> bool:
        """Whether ``grid``, run as blended windows, is one window of the whole picture."""
        if self.overlap == 0:
            return False  # the reference rule: a window a tile
        _, rows, _, cols = self._blend_layout(grid)
        return len(rows) == len(cols) == 1

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
                quantize_into(piece[mid, left:edge], channels, out[rows_out, x0 + left:x1 - right])
                if left:
                    quantize_into(pending + piece[mid, :left] * weight_x[:, :left], channels,
                                  out[rows_out, x0:x0 + left])
                pending = piece[mid, edge:] * weight_x[:, edge:] if right else None
                done += 1
                progress(done, total)
            if rise:
                quantize_into(top, channels, out[y0:y0 + rise])
            carry = bottom

    def _tta_passes(self, alpha: np.ndarray | None) -> int:
        """The network runs of one window with TTA: the colour's, and the alpha's
        where the model upscales it."""
        return TTA_COUNT * (2 if alpha is not None and self.alpha == "model" else 1)

    def _infer(self, net: Network, window: np.ndarray, keep: tuple | None = None, tick=None) -> np.ndarray:
        height, width, a = window.shape[0], window.shape[1], self._alignment
        if height % a or width % a:
            # Whole blocks, reflected at the bottom and right as the network pads itself,
            # which leaves its output as it was: its own reflection reads past a side
            # narrower than that padding (ncnn does not check; a 1 px wide picture came
            # out different on each run), and, flipped for TTA, a part block would start
            # the network at another phase than the window's.
            window = np.pad(window, ((0, -height % a), (0, -width % a), (0, 0)), mode="reflect")
            keep = keep or (0, height, 0, width)
        if not self.tta:
            return net.run(window, keep)
        total = None
        for k in range(TTA_COUNT):
            result = tta_inverse(net.run(tta_forward(window, k)), k)
            total = result if total is None else total + result
            if tick is not None:
                tick()
        total *= np.float32(1.0 / TTA_COUNT)
        return crop_output(total, keep, self._scale)

    def _upscale_alpha(self, net: Network, window: np.ndarray, tick=None) -> np.ndarray:
        if self.alpha == "bicubic":
            return self._alpha_net.run(window)
        return self._infer(net, np.repeat(window, 3, axis=2), tick=tick).mean(axis=2, keepdims=True)
