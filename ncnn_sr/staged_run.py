"""Exact tiling on an Upscaler: the trunk of a split network stage by stage over the
whole picture (``staged``), then the head piece by piece, with the alpha channel
beside it and TTA as one whole run per symmetry.

A mixin of ``engine.Upscaler``: it reads the Upscaler's settings (``_scale``,
``_border``, ``tta``, ``_alpha_net``, ``spec``) from ``self``; the pictures go in and
out as arguments.
"""
from __future__ import annotations

import numpy as np

from . import staged
from .errors import ModelError
from .network import SplitNetwork
from .pixels import quantize_into, to_float
from .tiles import TTA_COUNT, pieces, tta_forward, tta_inverse


class StagedRun:
    """The staged run of an Upscaler: ``_run_stages``."""

    def _run_stages(self, net: SplitNetwork, rgb: np.ndarray, alpha: np.ndarray | None, out: np.ndarray,
                    longest: int, dtype, progress) -> None:
        """Exact tiling (``staged``): the trunk stage by stage over the whole picture,
        then the head piece by piece; with TTA, once per symmetry, summed in float."""
        s, p, channels = self._scale, self._border, out.shape[2]
        height, width = rgb.shape[0] - 2 * p, rgb.shape[1] - 2 * p
        c, u = net.plan.head_context, net.plan.unshuffle

        def windows(h: int, w: int) -> int:  # in one pass over an h × w padded picture
            h, w, q = -(-h // u), -(-w // u), p // u  # in the trunk's cells
            heads = sum(1 for _ in pieces(h, w, (q, h - q, q, w - q), net.head_piece + 2 * c, c))
            return staged.window_count(net.plan.stages, h, w, longest // u) + heads

        total = windows(*rgb.shape[:2])
        if self.tta:  # four passes transposed
            total = 4 * (total + windows(rgb.shape[1], rgb.shape[0]))
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
        depth = 3 if alpha is None else 4
        summed = np.zeros((height * s, width * s, depth), np.float32)
        if u > 1:
            # Whole blocks, reflected at the bottom and right as the network pads itself
            # (windows.py does the same): turned, a part block would start the network at
            # another phase than the picture's.
            blocks = ((0, -rgb.shape[0] % u), (0, -rgb.shape[1] % u), (0, 0))
            rgb = np.pad(rgb, blocks, mode="reflect")
            # (the alpha channel, only ever bicubic here, by its edge as _pad_alpha pads it)
            alpha = None if alpha is None else np.pad(alpha, blocks, mode="edge")
        for k in range(TTA_COUNT):
            turned = tta_forward(rgb, k)
            one = np.empty(((turned.shape[0] - 2 * p) * s, (turned.shape[1] - 2 * p) * s, depth), np.float32)

            def gather(y0, y1, x0, x1, values):
                one[y0 * s:y1 * s, x0 * s:x1 * s] = values
            self._staged_pass(net, turned, None if alpha is None else tta_forward(alpha, k), longest, dtype, gather,
                              tick)
            summed += tta_inverse(one, k)[:height * s, :width * s]
        quantize_into(summed * np.float32(1.0 / TTA_COUNT), channels, out)

    def _staged_pass(self, net: SplitNetwork, rgb: np.ndarray, alpha: np.ndarray | None, longest: int, dtype,
                     sink, tick) -> None:
        """One staged run over the mirror-padded picture: ``sink(y0, y1, x0, x1,
        values)`` gets the float output (RGB, plus alpha) of each piece of the picture,
        in the picture's coordinates."""
        s, p, u = self._scale, self._border, net.plan.unshuffle
        height, width = rgb.shape[:2]
        blob, picture = net.entry(np.ascontiguousarray(to_float(rgb).transpose(2, 0, 1)))
        features = staged.run_stages(net.net.extract, picture, blob, net.plan.stages, longest // u, tick, dtype,
                                     net.norms)
        del picture
        _, cells_y, cells_x = features.shape
        q = p // u  # the border in cells (p is 0 or a multiple of u: tiles and pads are whole blocks)
        for row, col, scale, colour in net.head(features, (q, cells_y - q, q, cells_x - q)):
            if scale != s * u:
                raise ModelError(f"model {self.spec.name}: upscales by {scale // u} in parts, not {s}")
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
