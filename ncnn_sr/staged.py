"""Exact tiling: a network's trunk run stage by stage over the whole picture.

Tiles of a deep network disagree along their seams because each tile's network pads
its feature maps with zeros where the picture goes on. ``netsplit`` cuts the trunk
into stages whose reach is exact (one pixel per 3x3 convolution, 15 for one of
RRDBNet's blocks). Each stage runs window by window over the whole picture's feature
map, every cell with that reach of real context around it, and its cells are stitched
into the next stage's map: the result is the whole picture's, to float rounding, at
the cost of ``2 * reach`` pixels per seam and stage (the reference rule spends
``2 * pad`` per seam and is not exact). The price is memory: the feature map of the
whole picture (64 channels of float32 for RRDBNet: 256 bytes per pixel).

A stage that ends in a GroupNorm (``Stage.norm``) has its windows compute the norm's
input; the stitched map is then normalised over the whole picture, each group by its
own mean and variance (float64 sums), scaled and shifted by the layer's weights and
added to the stage's input map, as the network does for the whole picture at once.

Pure numpy around one function that runs part of the network:
``extract({blob: C×H×W array, ...}, blob) -> C'×H×W array``.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .netsplit import GroupNorm, Stage
from .tiles import Span, reach_spans

Extract = Callable[[dict, str], np.ndarray]


def map_bytes(stages: tuple[Stage, ...], height: int, width: int, longest: int, dtype=np.float32) -> int:
    """Peak bytes the stitched maps of a ``height`` × ``width`` (padded) picture take:
    one map, a second one where a stage changes the channel count, and the row of
    cells (float32) a stage holds before writing it back."""
    peak, channels, size = 0, 3, np.dtype(dtype).itemsize
    for stage in stages:
        same = stage.channels == channels and stage.norm is None  # a norm adds its input map at the end
        maps = stage.channels + (0 if same else channels)
        peak = max(peak, maps * height * width * size + stage.channels * min(longest, height) * width * 4)
        channels = stage.channels
    return peak


def window_count(stages: tuple[Stage, ...], height: int, width: int, longest: int) -> int:
    """How many windows ``run_stages`` runs (for progress reports)."""
    total = 0
    for stage in stages:
        rows = reach_spans(0, height, height, longest, stage.reach)[1]
        cols = reach_spans(0, width, width, longest, stage.reach)[1]
        total += len(rows) * len(cols)
    return total


def run_stages(extract: Extract, picture: np.ndarray, input_blob: str, stages: tuple[Stage, ...],
               longest: int, on_window: Callable[[], None] | None = None, dtype=np.float32,
               norms: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """The last stage's output for the whole of ``picture`` (3×H×W float32), run in
    windows of at most about ``longest`` pixels a side, the maps between stages kept
    as ``dtype`` (float16 halves their memory: 66 dB from float32 on
    realesrgan-x4plus, at most one grey level off). ``on_window`` is called after each
    window; an exception it raises stops the run. ``norms`` holds the (scale, shift)
    of each GroupNorm layer a stage ends in, by name."""
    _, height, width = picture.shape
    features = picture
    for stage in stages:
        length_y, rows = reach_spans(0, height, height, longest, stage.reach)
        length_x, cols = reach_spans(0, width, width, longest, stage.reach)
        # Written back in place when the shape allows; a new map otherwise.
        # (Only when no row of cells reads above the row before it.)
        in_place = (stage.channels == features.shape[0] and features is not picture and features.dtype == dtype
                    and stage.norm is None
                    and all(rows[i + 1].window >= rows[i].start for i in range(len(rows) - 1)))
        target = features if in_place else None
        if target is None:
            target = np.empty((stage.channels, height, width), dtype)
        pending: tuple[int, np.ndarray] | None = None  # rows the next row of cells still reads
        for i, row in enumerate(rows):
            band = np.empty((stage.channels, row.end - row.start, width), np.float32)
            for col in cols:
                inputs = {input_blob: _window(picture, row, col, length_y, length_x)}
                if stage.source != input_blob:
                    inputs[stage.source] = _window(features, row, col, length_y, length_x)
                out = extract(inputs, stage.windowed)
                if out.shape[1:] != (length_y, length_x) or out.shape[0] != stage.channels:
                    raise ValueError(f"stage {stage.windowed} gave {out.shape}, expected "
                                     f"{(stage.channels, length_y, length_x)}")
                band[:, :, col.start:col.end] = out[:, row.start - row.window:row.end - row.window,
                                                    col.start - col.window:col.end - col.window]
                if on_window is not None:
                    on_window()
            if pending is not None:
                target[:, pending[0]:pending[0] + pending[1].shape[1]] = pending[1]
            # The next row of cells reads this one's rows from its window's top on.
            keep = row.end if i + 1 == len(rows) else max(row.start, rows[i + 1].window)
            target[:, row.start:keep] = band[:, :keep - row.start]
            pending = (keep, band[:, keep - row.start:]) if keep < row.end else None
            del band
        if pending is not None:
            target[:, pending[0]:pending[0] + pending[1].shape[1]] = pending[1]
        if stage.norm is not None:
            if norms is None or stage.norm.layer not in norms:
                raise ValueError(f"no weights given for GroupNorm {stage.norm.layer}")
            normalise(target, stage.norm, *norms[stage.norm.layer], features)
        features = target
    return features


def normalise(values: np.ndarray, norm: GroupNorm, scale: np.ndarray, shift: np.ndarray,
              added: np.ndarray) -> None:
    """``values`` (C×H×W), in place: GroupNorm ``norm`` over all of it (each group of
    channels less its mean, over the root of its variance plus eps, both taken in
    float64 over the whole map), times ``scale`` plus ``shift`` channel by channel,
    plus ``added``. One channel at a time in float32: no copy of the map."""
    channels = values.shape[0]
    size = channels // norm.groups
    for g in range(norm.groups):
        group = range(g * size, (g + 1) * size)
        count = size * values[0].size
        mean = sum(float(values[c].sum(dtype=np.float64)) for c in group) / count
        # Two passes: the sum of squares less the squared mean loses the variance of
        # a map far from zero to cancellation.
        variance = sum(float(np.square(values[c].astype(np.float64) - mean).sum()) for c in group) / count
        inverse = 1.0 / np.sqrt(variance + norm.eps)
        for c in group:
            k = np.float32(scale[c] * inverse)
            values[c] = (values[c].astype(np.float32) - np.float32(mean)) * k + np.float32(shift[c]) + added[c]


def _window(array: np.ndarray, row: Span, col: Span, length_y: int, length_x: int) -> np.ndarray:
    return np.ascontiguousarray(array[:, row.window:row.window + length_y, col.window:col.window + length_x],
                                dtype=np.float32)
