"""Tile grids, mirror padding and the eight TTA symmetries: pure numpy, no ncnn.

The reference tool's rule: tiles of T×T cover the picture row by row; each tile is
grown by ``pad`` pixels on every side, from real neighbours inside the picture and
from the picture mirrored at its border outside it (without repeating the edge pixel:
index -1 reads index 1). Mirroring the whole picture once and slicing each grown tile
out of it gives exactly those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile's own area ``[y0, y1) × [x0, x1)`` of the picture.

    In a picture mirror-padded by ``pad``, its grown window is ``[y0, y1 + 2*pad) ×
    [x0, x1 + 2*pad)``. Guarantees ``0 <= y0 < y1`` and ``0 <= x0 < x1``.
    """

    y0: int
    y1: int
    x0: int
    x1: int

    def __post_init__(self) -> None:
        if not (0 <= self.y0 < self.y1 and 0 <= self.x0 < self.x1):
            raise ValueError(f"empty or negative tile {self}")

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def window(self, pad: int) -> tuple[slice, slice]:
        """The grown window, as slices into the picture mirror-padded by ``pad``."""
        return slice(self.y0, self.y1 + 2 * pad), slice(self.x0, self.x1 + 2 * pad)

    def out_slices(self, scale: int) -> tuple[slice, slice]:
        """Where this tile's output goes in the upscaled picture."""
        return slice(self.y0 * scale, self.y1 * scale), slice(self.x0 * scale, self.x1 * scale)


@dataclass(frozen=True)
class TileGrid:
    """Tiles of at most ``tile`` × ``tile`` that cover a ``height`` × ``width`` picture
    exactly once, row by row. ``tile`` 0 means one tile for the whole picture."""

    height: int
    width: int
    tile: int

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"picture of {self.width}x{self.height} has no pixels")
        if self.tile < 0:
            raise ValueError(f"tile size must not be negative, got {self.tile}")

    @property
    def tiles(self) -> list[Tile]:
        th = self.tile or self.height
        tw = self.tile or self.width
        return [
            Tile(y, min(y + th, self.height), x, min(x + tw, self.width))
            for y in range(0, self.height, th)
            for x in range(0, self.width, tw)
        ]

    def __len__(self) -> int:
        th = self.tile or self.height
        tw = self.tile or self.width
        return -(-self.height // th) * -(-self.width // tw)


def tile_grid(height: int, width: int, tile: int) -> TileGrid:
    return TileGrid(height, width, tile)


# --- blending: windows that overlap around each seam -------------------------------------
# (A smoothstep ramp was measured against this linear one on realesrgan-x4plus with
# 200 px tiles: within 0.05 dB either way, so the simpler ramp stays.)

@dataclass(frozen=True)
class Span:
    """One window's place on one axis of a blended run.

    The network sees ``[window, window + length)`` of the picture mirror-padded by
    the run's border (``length`` is the run's, the same for every window); its output is kept
    for the picture's ``[start, end)``, weighted by a ramp rising over the first
    ``rise`` pixels and falling over the last ``fall``."""

    window: int
    start: int
    end: int
    rise: int
    fall: int


def blend_spans(size: int, tile: int, pad: int, overlap: int, border: int | None = None,
                align: int = 1) -> tuple[int, list[Span]]:
    """Windows of one length covering an axis of ``size`` pixels mirror-padded by
    ``border`` (default ``pad``), as many as the reference rule's ``tile`` gives,
    spaced evenly, each seam blended over at most ``overlap`` pixels with at least
    ``pad`` pixels of context beyond it where the windows have room.

    The windows are as long as the compute budget allows: their total on this axis is
    at most the reference rule's (``tile + 2*pad`` per tile, smaller last tile
    included) times ``(tile + overlap + 2*pad) / (tile + 2*pad)``. Of the room two
    neighbours share, the middle ``overlap`` pixels are blended and the rest is
    context on both sides: measured on realesrgan-x4plus, the total shared room sets
    the seam error, not how it is split (docs/benchmarks.md).

    Every window starts at a multiple of ``align`` in the picture (its index less the
    border), for networks whose output depends on that phase
    (``param_file.input_alignment``); the border must be a multiple of it. For that
    the windows are shorter than the budget by less than ``align`` (the room they
    move in a multiple of it), which narrows the room neighbours share; only where
    rounded steps would leave a gap between two kept parts are they longer, by as
    many ``align`` as close it. Returns (window length, spans in order)."""
    b = pad if border is None else border
    if align < 1 or b % align:
        raise ValueError(f"border {b} is not a multiple of the alignment {align}")
    n = -(-size // tile) if tile else 1
    if n == 1:
        return size + 2 * b, [Span(0, 0, size, 0, 0)]
    cell = -(-size // n)
    budget = (size + 2 * pad * n) * (tile + overlap + 2 * pad) // ((tile + 2 * pad) * n)
    length = min(max(budget, cell + 2 * pad), size + 2 * b)
    # The room the windows move in, a multiple of it: rounded up, the windows outgrew the
    # budget (1.157 in 2-D at alignment 2, 1.189 at 4, with 200 px tiles and a 15 px blend).
    length -= -(size + 2 * b - length) % align
    while True:
        room = size + 2 * b - length
        if room == 0:  # every window would be the whole axis (without a border, context as
            # wide as the picture leaves no room for a seam): one window, run once
            return length, [Span(0, 0, size, 0, 0)]
        windows = [align * ((i * (room // align) + (n - 1) // 2) // (n - 1)) for i in range(n)]
        # Window i has ``pad`` of context around the picture's [windows[i] + pad - b,
        # windows[i] + length - pad - b); shared: what two neighbours have in common.
        shared = [windows[i] + length - 2 * pad - windows[i + 1] for i in range(n - 1)]
        if min(shared) >= 0:
            break
        length += align  # steps rounded to the alignment left a gap between two kept parts
    blend = min(overlap, *shared) + 1
    zones: list[int] = []
    while blend > 0 and not (zones and all(zones[i] + blend <= zones[i + 1] for i in range(n - 2))):
        blend -= 1  # narrower, so that a window's two blended seams do not cross
        zones = [windows[i + 1] + pad - b + (shared[i] - blend) // 2 for i in range(n - 1)]
    starts = [0] + zones
    ends = [z + blend for z in zones] + [size]
    return length, [Span(windows[i], starts[i], ends[i], blend if i else 0, blend if i < n - 1 else 0)
                    for i in range(n)]


def reach_spans(lo: int, hi: int, limit: int, longest: int, reach: int) -> tuple[int, list[Span]]:
    """Windows of one length inside ``[0, limit)`` whose kept parts split ``[lo, hi)``
    into cells, each cell with ``reach`` pixels of real context on every side (or the
    end of ``[0, limit)``, where a whole run has none either).

    As few windows as keep their length at most ``longest`` (or, when no count can,
    the count that makes them shortest), spaced evenly from ``lo - reach`` to ``hi +
    reach`` (clipped) and as short as that allows: the work is the span plus ``2 *
    reach`` per seam, an edge cell being longer than an inner one by the context it
    does not need. Returns (window length, spans in order), the spans' rise and fall 0.
    """
    if not 0 <= lo < hi <= limit or reach < 0:
        raise ValueError(f"invalid span [{lo}, {hi}) of {limit}, reach {reach}")
    best: tuple[int, list[Span]] | None = None
    for n in range(1, hi - lo + 1):
        layout = _even_windows(lo, hi, limit, n, reach)
        if layout is not None and (best is None or layout[0] < best[0]):
            best = layout
        if best[0] <= longest or n * 2 * reach > hi - lo + best[0]:
            break  # fits, or more windows only add context
    return best


def pieces(height: int, width: int, box: tuple[int, int, int, int], longest: int,
           context: int) -> Iterator[tuple[Span, Span, int, int]]:
    """Cells splitting ``box`` (y0, y1, x0, x1) of a ``height`` × ``width`` map, each
    with its window, ``context`` pixels around it where the map has them:
    (row span, column span, window height, window width)."""
    y0, y1, x0, x1 = box
    length_y, rows = reach_spans(y0, y1, height, longest, context)
    length_x, cols = reach_spans(x0, x1, width, longest, context)
    for row in rows:
        for col in cols:
            yield row, col, length_y, length_x


def _even_windows(lo: int, hi: int, limit: int, n: int, reach: int) -> tuple[int, list[Span]] | None:
    first, last = max(0, lo - reach), min(limit, hi + reach)
    if n == 1:
        return last - first, [Span(first, lo, hi, 0, 0)]
    length = -(-(last - first + 2 * reach * (n - 1)) // n)
    for length in range(length, last - first):
        windows = [first + (i * (last - first - length) + (n - 1) // 2) // (n - 1) for i in range(n)]
        if all(windows[i] + length - windows[i + 1] >= 2 * reach for i in range(n - 1)):
            bounds = [lo] + [w + reach for w in windows[1:]] + [hi]
            if all(bounds[i] < bounds[i + 1] for i in range(n)):
                return length, [Span(windows[i], bounds[i], bounds[i + 1], 0, 0) for i in range(n)]
            return None
    return None


def ramp_weights(length: int, rise: int, fall: int) -> np.ndarray:
    """Blend weights along a span of ``length`` output pixels: a linear rise over
    the first ``rise`` pixels and a fall over the last ``fall``, 1 between. A rise and
    the neighbour's fall over the same pixels add up to exactly 1."""
    w = np.ones(length, np.float32)
    if rise:
        w[:rise] = (np.arange(rise, dtype=np.float32) + 0.5) / rise
    if fall:
        w[length - fall:] = (np.arange(fall, 0, -1, dtype=np.float32) - 0.5) / fall
    return w


def mirror_pad(image: np.ndarray, pad: int) -> np.ndarray:
    """Pad the first two axes by ``pad`` with the picture mirrored at its border, edge
    pixel not repeated; a side shorter than the pad keeps mirroring back and forth,
    and a side of one pixel repeats that pixel."""
    if pad == 0:
        return image
    widths = [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, mode="reflect")


# --- TTA: the eight symmetries of the square --------------------------------------------

TTA_COUNT = 8


class Steps(int):
    """The ``total`` a progress callback is told where what it counts are steps of the
    picture's ``tiles``, not tiles: a staged run's windows of every stage and pass, or
    the TTA passes of a picture run as one window. Each step is told, so a bar moves
    and a cancel stops between them; a display says the tiles they make up
    (``console.TileBar``, and ``console.tile_percent``, a line a tile as the reference
    prints): told as tiles, a picture of 6 tiles said 192 with TTA."""

    tiles: int

    def __new__(cls, steps: int, tiles: int) -> Steps:
        made = super().__new__(cls, steps)
        made.tiles = tiles
        return made


def tta_forward(image: np.ndarray, k: int) -> np.ndarray:
    """Symmetry ``k`` (0..7) of an H×W(×C) array: bit 2 transposes, bit 0 flips
    left-right, bit 1 flips up-down, in that order."""
    if k & 4:
        image = image.swapaxes(0, 1)
    if k & 1:
        image = image[:, ::-1]
    if k & 2:
        image = image[::-1]
    return image


def tta_inverse(image: np.ndarray, k: int) -> np.ndarray:
    """Undo ``tta_forward(·, k)``."""
    if k & 2:
        image = image[::-1]
    if k & 1:
        image = image[:, ::-1]
    if k & 4:
        image = image.swapaxes(0, 1)
    return image
