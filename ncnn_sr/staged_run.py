"""Exact tiling on an Upscaler: the trunk of a split network stage by stage over the
whole picture (``staged``), then the head piece by piece, with the alpha channel
beside it and TTA as one whole run per symmetry.

A mixin of ``engine.Upscaler``: it reads the Upscaler's settings (``_scale``,
``_border``, ``tta``, ``_alpha_net``, ``spec``) from ``self``; the pictures go in and
out as arguments.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import staged
from .errors import ModelError
from .network import SplitNetwork
from .resident import ResidentNetwork
from .pixels import quantize_into, to_float
from .tiles import TTA_COUNT, Steps, pieces, tta_forward


# Bytes of float pixels rounded at a time at the end of a staged TTA run.
TTA_BAND_BYTES = 4 << 20


def tta_sum_shape(padded: tuple, border: int, scale: int, alpha: bool) -> tuple[int, int, int]:
    """The TTA sum of a staged run over a picture padded to ``padded`` (by ``border``
    on each side, and to whole blocks): RGB, plus alpha where there is one (grey
    runs as RGB)."""
    return (padded[0] - 2 * border) * scale, (padded[1] - 2 * border) * scale, 4 if alpha else 3


def tta_band_rows(width: int, depth: int) -> int:
    """Rows of a ``width`` × ``depth`` float sum rounded at once: ``TTA_BAND_BYTES``."""
    return max(1, TTA_BAND_BYTES // (width * depth * 4))


def tta_bytes(height: int, width: int, border: int, unshuffle: int, scale: int, channels: int) -> int:
    """Peak bytes a staged TTA run holds beside its maps and its result, for a
    ``height`` × ``width`` picture of ``channels``: the float sum, and the rounding of
    one band of it (a grey band's clipped copy, luma and rounding: under two bands)."""
    u = unshuffle
    padded = (-(-(height + 2 * border) // u) * u, -(-(width + 2 * border) // u) * u)
    sum_h, sum_w, depth = tta_sum_shape(padded, border, scale, channels == 4)
    band = min(sum_h, tta_band_rows(sum_w, depth)) * sum_w * depth * 4
    return sum_h * sum_w * depth * 4 + 2 * band


class StagedRun:
    """The staged run of an Upscaler: ``_run_stages``."""

    def _run_stages(self, net: SplitNetwork | ResidentNetwork, rgb: np.ndarray, alpha: np.ndarray | None,
                    out: np.ndarray, longest: int, dtype, progress, tiles: int) -> None:
        """Exact tiling (``staged``): the trunk stage by stage over the whole picture,
        or whole on the GPU (a ResidentNetwork), then the head piece by piece; with
        TTA, once per symmetry, summed in float.
        ``progress`` is told each window, out of ``Steps`` that make up the ``tiles``
        of the picture's grid."""
        s, p, channels = self._scale, self._border, out.shape[2]
        height, width = rgb.shape[0] - 2 * p, rgb.shape[1] - 2 * p
        c, u = net.plan.head_context, net.plan.unshuffle

        def windows(h: int, w: int) -> int:  # in one pass over an h × w padded picture
            h, w, q = -(-h // u), -(-w // u), p // u  # in the trunk's cells
            if isinstance(net, ResidentNetwork):
                return net.steps(h, w, (q, h - q, q, w - q))
            heads = sum(1 for _ in pieces(h, w, (q, h - q, q, w - q), net.head_piece + 2 * c, c))
            return staged.window_count(net.plan.stages, h, w, longest // u) + heads

        total = windows(*rgb.shape[:2])
        if self.tta:  # four passes transposed
            total = 4 * (total + windows(rgb.shape[1], rgb.shape[0]))
        total = Steps(total, tiles)
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            progress(done, total)

        if not self.tta:
            def place(y0, y1, x0, x1, values):
                quantize_into(values, channels, out[y0 * s:y1 * s, x0 * s:x1 * s])
            self._staged_pass(net, rgb, alpha, longest, dtype, place, tick)
            return
        if u > 1:
            # Whole blocks, reflected at the bottom and right as the network pads itself
            # (windows.py does the same): turned, a part block would start the network at
            # another phase than the picture's.
            blocks = ((0, -rgb.shape[0] % u), (0, -rgb.shape[1] % u), (0, 0))
            rgb = np.pad(rgb, blocks, mode="reflect")
            # (the alpha channel, only ever bicubic here, by its edge as _pad_alpha pads it)
            alpha = None if alpha is None else np.pad(alpha, blocks, mode="edge")
        # One float buffer, each pass adding its pieces into it through its symmetry's
        # view: a pass's own output, its turned copy and the scaled sum were three more
        # (36 bytes a pixel of RGB). Each pixel gets the passes in the same order as
        # then, so the sum is the same to the bit.
        summed = np.zeros(tta_sum_shape(rgb.shape, p, s, alpha is not None), np.float32)
        for k in range(TTA_COUNT):
            turned = tta_forward(summed, k)

            def add(y0, y1, x0, x1, values):
                turned[y0 * s:y1 * s, x0 * s:x1 * s] += values
            self._staged_pass(net, tta_forward(rgb, k), None if alpha is None else tta_forward(alpha, k), longest,
                              dtype, add, tick)
        summed = summed[:height * s, :width * s]
        # Rounded a band of rows at a time: whole, its temporaries were a float copy or two.
        rows = tta_band_rows(width * s, summed.shape[2])
        for y in range(0, height * s, rows):
            band = summed[y:y + rows]
            band *= np.float32(1.0 / TTA_COUNT)
            quantize_into(band, channels, out[y:y + rows])

    def _staged_pass(self, net: SplitNetwork | ResidentNetwork, rgb: np.ndarray, alpha: np.ndarray | None,
                     longest: int, dtype, sink, tick) -> None:
        """One staged run over the mirror-padded picture: ``sink(y0, y1, x0, x1,
        values)`` gets the float output (RGB, plus alpha) of each piece of the picture,
        in the picture's coordinates."""
        s, p, u = self._scale, self._border, net.plan.unshuffle
        height, width = rgb.shape[:2]
        blob, picture = net.entry(np.ascontiguousarray(to_float(rgb).transpose(2, 0, 1)))
        _, cells_y, cells_x = picture.shape
        q = p // u  # the border in cells (p is 0 or a multiple of u: tiles and pads are whole blocks)
        box = (q, cells_y - q, q, cells_x - q)
        if isinstance(net, ResidentNetwork):  # the trunk and the head on the GPU, the map kept there
            parts = net.run_pieces(picture, box, tick)
        else:
            features = staged.run_stages(net.net.extract, picture, blob, net.plan.stages, longest // u, tick, dtype,
                                         net.norms)
            parts = net.head(features, box)
        del picture
        # Closed however the loop ends: a resident net's pieces keep their extractor
        # open between them, and a tick that raised (a cancel) left it so in the frames
        # of the error's traceback, which could outlive the net's pools ("pool
        # allocator destroyed too early" as close() freed them, then SIGSEGV).
        with contextlib.closing(parts):
            for row, col, scale, colour in parts:
                if scale != s * u:
                    raise ModelError(f"{self.spec.said}upscales by {scale // u} in parts, not {s}")
                # The piece's pixels in the picture: its cells' blocks, the last cut at the picture's side.
                y0, y1 = row.start * u, min(row.end * u, height - p)
                x0, x1 = col.start * u, min(col.end * u, width - p)
                colour = colour[:(y1 - y0) * s, :(x1 - x0) * s]
                if alpha is not None:
                    c = max(net.plan.head_context * u, 2)  # what the bicubic reaches
                    wy, wx = max(0, y0 - c), max(0, x0 - c)
                    window = to_float(alpha[wy:min(height, y1 + c), wx:min(width, x1 + c)])
                    a = self._alpha_net.run(window)[(y0 - wy) * s:(y1 - wy) * s, (x0 - wx) * s:(x1 - wx) * s]
                    colour = np.concatenate([colour, a], axis=2)
                sink(y0 - p, y1 - p, x0 - p, x1 - p, colour)
                tick()
