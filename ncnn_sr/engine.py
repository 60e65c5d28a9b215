"""The Upscaler: one model on one device, ``upscale(array) -> array``.

It knows nothing of files, flags or video: arrays in, arrays out.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable

import ncnn
import numpy as np

from . import devices
from .devices import Device
from .errors import DeviceError, InputError, ModelError
from .models import ModelSpec, resolve_model
from .pixels import check_image, quantize, to_float, to_gray
from .resample import resize, target_size
from .tiles import TTA_COUNT, grow, mirror_pad, ramp_weights, tile_grid, tta_forward, tta_inverse

log = logging.getLogger("ncnn_sr")

ALPHA_MODES = ("bicubic", "model")
# default: ncnn's choice (fp16 storage on GPUs that have it). fp32: full precision.
# bf16: bfloat16 storage, measured on the CPU at 54.6 dB from fp32 for 9% more speed
# and 8% less memory (docs/benchmarks.md). fp16 and int8 storage gained nothing on the
# CPU and are not offered.
PRECISIONS = ("default", "fp32", "bf16")
# Seam-free tiling by default: neighbouring tiles overlap by this many pixels and are
# blended. With 200 px tiles and the 10 px context this costs 15% more compute than
# the reference rule and gains 3-4 dB of tiled-vs-whole PSNR on realesrgan-x4plus
# (docs/benchmarks.md). Asking for a tile_pad alone selects the reference rule.
DEFAULT_OVERLAP = 16
# Side of the blank picture a custom model is run on once to learn its scale.
PROBE_SIZE = 32


class _NetFailure(Exception):
    """ncnn returned an error for one run: on a device that is out of memory."""


class _Network:
    """One ncnn.Net on one device. ``run`` is safe from several threads at once: each
    call has its own Extractor, and ncnn lets go of the GIL while it computes."""

    def __init__(self, param: str, bin_: str | None, device: Device, input_blob: str,
                 output_blob: str, precision: str = "default", threads: int | None = None,
                 param_text: str | None = None):
        self.device = device
        self.input_blob, self.output_blob = input_blob, output_blob
        net = ncnn.Net()
        net.opt.use_vulkan_compute = device.is_gpu
        if threads:
            net.opt.num_threads = threads
        if precision in ("fp32", "bf16"):
            net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
            net.opt.use_bf16_storage = net.opt.use_bf16_packed = precision == "bf16"
        if device.is_gpu:
            net.set_vulkan_device(device.index)
            devices.register_gpu_user(self)
        else:
            devices.steady_heap()
        loaded = net.load_param_mem(param_text) if param_text is not None else net.load_param(param)
        if loaded != 0:
            raise ModelError(f"ncnn could not parse {param}")
        loaded = net.load_model(ncnn.DataReaderFromEmpty()) if bin_ is None else net.load_model(bin_)
        if loaded != 0:
            raise ModelError(f"ncnn could not load the weights in {bin_}")
        self._net = net

    def run(self, image: np.ndarray) -> np.ndarray:
        """An H×W×C float32 picture through the network, H'×W'×C' float32 out."""
        # ncnn.Mat borrows the array's memory: the array must outlive the extraction.
        planar = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        ex = self._net.create_extractor()
        ex.input(self.input_blob, ncnn.Mat(planar))
        ret, out = ex.extract(self.output_blob)
        result = np.array(out).transpose(1, 2, 0) if ret == 0 else None
        del ex, out, planar
        if ret != 0:
            raise _NetFailure(f"ncnn error {ret} on {self.device}")
        if not np.isfinite(result).all():
            raise _NetFailure(f"non-finite output on {self.device}")
        return result

    def release(self) -> None:
        net, self._net = getattr(self, "_net", None), None
        if net is not None:
            net.clear()


def _bicubic_net(scale: int) -> _Network:
    """ncnn's own bicubic Interp (resize type 3), the reference tool's alpha upscaler,
    as a one-layer network on the CPU."""
    text = f"7767517\n2 2\nInput in 0 1 data\nInterp up 1 1 data out 0=3 1={scale:.1f} 2={scale:.1f}\n"
    return _Network("<bicubic>", None, devices.CPU, "data", "out", threads=1, param_text=text)


class Upscaler:
    """One model on one device.

    ``upscale`` takes H×W×C arrays (C in 1, 3, 4; uint8 or uint16) and returns the
    same channel count and dtype. It may be called from several threads at once.
    If the device runs out of memory the tile is halved down to 32 pixels, then the
    work moves to the CPU with a warning; a wrong picture is never returned.
    ``concurrency`` is how many calls the caller runs at once: they share the
    memory budget of the automatic CPU tile.

    Tiling: by default neighbouring tiles overlap by ``DEFAULT_OVERLAP`` pixels and
    are blended (seam-free); ``tile_pad`` alone selects the reference tool's rule
    (each tile cropped out of a run padded by ``tile_pad`` pixels, no blending), and
    ``overlap`` sets the blend width explicitly.
    """

    def __init__(self, model: "str | os.PathLike | ModelSpec", device: "str | int | Device" = "auto",
                 tile: int = 0, tta: bool = False, tile_pad: int | None = None, overlap: int | None = None,
                 alpha: str = "bicubic", precision: str = "default", model_path: "str | os.PathLike | None" = None,
                 threads: int | None = None, concurrency: int = 1):
        if tile != 0 and tile < devices.MIN_TILE:
            raise InputError(f"tile size must be 0 (auto) or at least {devices.MIN_TILE}, got {tile}")
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if alpha not in ALPHA_MODES:
            raise InputError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
        if tile_pad is not None and tile_pad < 0:
            raise InputError(f"tile padding must not be negative, got {tile_pad}")
        if overlap is not None and overlap < 0:
            raise InputError(f"tile overlap must not be negative, got {overlap}")
        if concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        self._concurrency = concurrency
        self.spec = model if isinstance(model, ModelSpec) else resolve_model(model, model_path)
        self.tta = tta
        self.alpha = alpha
        self.tile_pad = self.spec.prepadding if tile_pad is None else tile_pad
        if overlap is None:
            overlap = DEFAULT_OVERLAP if tile_pad is None else 0
        self.overlap = overlap
        self._precision, self._threads = precision, threads
        self._lock = threading.Lock()
        self._tile = tile
        self._net = self._load(devices.get_device(device))
        self._scale = self.spec.scale or self._probe_scale()
        self._alpha_net = _bicubic_net(self._scale)

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

        ``progress(done, total)`` is called after each tile; an exception it raises
        stops the work and comes out of ``upscale`` (that is how a batch cancels).
        """
        image = check_image(image)
        h, w = image.shape[:2]
        wanted = None
        if scale is not None or width is not None or height is not None:
            wanted = target_size(h, w, scale, width, height)
        out = self._upscale_native(image, progress)
        return out if wanted is None else resize(out, *wanted)

    def close(self) -> None:
        """Free the networks now rather than when the object is collected."""
        for net in (getattr(self, "_net", None), getattr(self, "_alpha_net", None)):
            if net is not None:
                net.release()

    def __enter__(self) -> "Upscaler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------

    def _load(self, device: Device) -> _Network:
        s = self.spec
        log.info("loading %s on %s", s.name, device)
        return _Network(str(s.param_path), str(s.bin_path), device, s.input_blob, s.output_blob,
                        self._precision, self._threads)

    def _probe_scale(self) -> int:
        probe = np.zeros((PROBE_SIZE, PROBE_SIZE, 3), np.float32)
        try:
            out = self._net.run(probe)
        except _NetFailure as e:
            raise ModelError(f"model {self.spec.name} failed on a {PROBE_SIZE}x{PROBE_SIZE} test input: {e}") from None
        oh, ow = out.shape[:2]
        if oh != ow or oh % PROBE_SIZE or out.shape[2] != 3:
            raise ModelError(
                f"model {self.spec.name} turns a {PROBE_SIZE}x{PROBE_SIZE} RGB picture into "
                f"{ow}x{oh}x{out.shape[2]}: not a whole-number RGB upscaler"
            )
        return oh // PROBE_SIZE

    def _auto_tile(self, device: Device, height: int, width: int) -> int:
        if device.is_gpu:
            return devices.gpu_auto_tile(device.heap_budget_mb)
        return devices.cpu_auto_tile(height, width, self.spec.cpu_bytes_per_pixel, self.tile_pad,
                                     share=self._concurrency, overlap=self.overlap)

    def _upscale_native(self, image: np.ndarray, progress) -> np.ndarray:
        while True:
            with self._lock:
                net, tile = self._net, self._tile
            if tile == 0:
                tile = self._auto_tile(net.device, *image.shape[:2])
            try:
                return self._run_tiles(image, net, tile, progress)
            except _NetFailure as failure:
                self._recover(net, tile, image.shape, failure)

    def _recover(self, net: _Network, tile: int, shape: tuple, failure: _NetFailure) -> None:
        """After a failed run: halve the tile, or move to the CPU, or give up."""
        with self._lock:
            if self._net is not net:
                return  # another thread already moved on; retry with its choice
            effective = tile or max(shape[0], shape[1])
            if effective > devices.MIN_TILE:
                self._tile = max(devices.MIN_TILE, effective // 2)
                log.warning("%s ran out of memory (%s): retrying with %dpx tiles", net.device, failure, self._tile)
                return
            if net.device.is_gpu:
                log.warning("%s ran out of memory even with %dpx tiles: falling back to the CPU (slower)",
                            net.device, devices.MIN_TILE)
                self._net = self._load(devices.CPU)
                self._tile = 0
                net.release()
                return
        raise DeviceError(f"the CPU ran out of memory even with {devices.MIN_TILE}px tiles")

    def _run_tiles(self, image: np.ndarray, net: _Network, tile: int, progress) -> np.ndarray:
        h, w, channels = image.shape
        pixels = to_float(image)
        rgb = mirror_pad(np.repeat(pixels, 3, axis=2) if channels == 1 else pixels[:, :, :3], self.tile_pad)
        alpha = mirror_pad(pixels[:, :, 3:], self.tile_pad) if channels == 4 else None
        grid = tile_grid(h, w, tile)
        out = np.empty((h * self._scale, w * self._scale, channels), image.dtype)
        if self.overlap == 0 or len(grid) == 1:
            self._place_tiles(grid, net, rgb, alpha, out, progress)
        else:
            self._blend_tiles(grid, net, rgb, alpha, out, progress)
        return out

    def _tile_output(self, net: _Network, rgb: np.ndarray, alpha: np.ndarray | None,
                     y0: int, y1: int, x0: int, x1: int, span: tuple[int, int] | None = None) -> np.ndarray:
        """Float output (RGB, plus alpha if any) of the picture's ``[y0, y1) × [x0, x1)``,
        computed with at least ``tile_pad`` pixels of context around it.

        ``span`` (height, width) makes the network see a window of exactly that size
        (grown inward where the picture ends), so that every tile of a run has one
        shape: ncnn then reuses its buffers instead of adding a set per shape."""
        s, p = self._scale, self.tile_pad
        if span is None:
            wy0, wy1, wx0, wx1 = y0, y1 + 2 * p, x0, x1 + 2 * p
        else:
            wy0 = max(0, min(y0, rgb.shape[0] - span[0]))
            wx0 = max(0, min(x0, rgb.shape[1] - span[1]))
            wy1, wx1 = wy0 + min(span[0], rgb.shape[0]), wx0 + min(span[1], rgb.shape[1])
        window = (slice(wy0, wy1), slice(wx0, wx1))
        oy, ox = y0 + p - wy0, x0 + p - wx0  # where the wanted area starts in the window
        crop = (slice(oy * s, (oy + y1 - y0) * s), slice(ox * s, (ox + x1 - x0) * s))
        colour = self._infer(net, rgb[window])
        if colour.shape[:2] != ((wy1 - wy0) * s, (wx1 - wx0) * s):
            raise ModelError(f"model {self.spec.name} gave a tile of {colour.shape[1]}x{colour.shape[0]}, "
                             f"expected {(wx1 - wx0) * s}x{(wy1 - wy0) * s}: its scale is not {s}")
        colour = colour[crop]
        if alpha is None:
            return colour
        return np.concatenate([colour, self._upscale_alpha(net, alpha[window])[crop]], axis=2)

    @staticmethod
    def _finish(values: np.ndarray, channels: int, dtype) -> np.ndarray:
        return quantize(to_gray(values) if channels == 1 else values, dtype)

    def _place_tiles(self, grid, net, rgb, alpha, out, progress) -> None:
        """The reference rule: each tile's own area, cropped out of its padded run."""
        channels = out.shape[2]
        for done, t in enumerate(grid.tiles, 1):
            result = self._tile_output(net, rgb, alpha, t.y0, t.y1, t.x0, t.x1)
            out[t.out_slices(self._scale)] = self._finish(result, channels, out.dtype)
            if progress is not None:
                progress(done, len(grid))

    def _blend_tiles(self, grid, net, rgb, alpha, out, progress) -> None:
        """Tiles grown to overlap their neighbours by ``overlap`` pixels, blended with
        complementary linear ramps. One row of tiles is summed in a float band; the
        rows it shares with the next row are carried over, the rest written out."""
        s = self._scale
        h, w, channels = grid.height, grid.width, out.shape[2]
        # No overlap may be wider than the last (smallest) tile on its axis, or the
        # two ramps of a seam would not cover the same pixels.
        tiles = grid.tiles
        oy = min(self.overlap, tiles[-1].height) if tiles[-1].y0 > 0 else 0
        ox = min(self.overlap, tiles[-1].width) if tiles[-1].x0 > 0 else 0
        rows: dict[int, list] = {}
        for t in tiles:
            rows.setdefault(t.y0, []).append(t)
        p2 = 2 * self.tile_pad
        span = (max(b - a for a, b in (grow(r[0].y0, r[0].y1, h, oy) for r in rows.values())) + p2,
                max(b - a for a, b in (grow(t.x0, t.x1, w, ox) for t in rows[0])) + p2)
        carry = None
        done = 0
        for row in rows.values():
            y0, y1 = grow(row[0].y0, row[0].y1, h, oy)
            last_row = row[0].y1 == h
            height = (y1 - y0) * s
            weight_y = ramp_weights(height, oy * s if y0 > 0 else 0, 0 if last_row else oy * s)
            band = np.zeros((height, w * s, 3 if alpha is None else 4), np.float32)
            for t in row:
                x0, x1 = grow(t.x0, t.x1, w, ox)
                weight_x = ramp_weights((x1 - x0) * s, ox * s if x0 > 0 else 0, ox * s if x1 < w else 0)
                weight = weight_y[:, None, None] * weight_x[None, :, None]
                band[:, x0 * s:x1 * s] += weight * self._tile_output(net, rgb, alpha, y0, y1, x0, x1, span)
                done += 1
                if progress is not None:
                    progress(done, len(grid))
            if carry is not None:
                band[:carry.shape[0]] += carry
            final = height if last_row else height - oy * s  # the rest is shared with the next row
            out[y0 * s:y0 * s + final] = self._finish(band[:final], channels, out.dtype)
            carry = None if last_row else band[final:]

    def _infer(self, net: _Network, window: np.ndarray) -> np.ndarray:
        if not self.tta:
            return net.run(window)
        total = None
        for k in range(TTA_COUNT):
            result = tta_inverse(net.run(tta_forward(window, k)), k)
            total = result if total is None else total + result
        return total * np.float32(1.0 / TTA_COUNT)

    def _upscale_alpha(self, net: _Network, window: np.ndarray) -> np.ndarray:
        if self.alpha == "bicubic":
            return self._alpha_net.run(window)
        return self._infer(net, np.repeat(window, 3, axis=2)).mean(axis=2, keepdims=True)
