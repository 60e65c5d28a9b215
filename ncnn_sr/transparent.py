"""The colour under a picture's fully transparent pixels, filled from the visible
colours around it before the model sees it.

A model reads every pixel's colour, whatever its alpha, and its reach (dozens of
pixels for RRDBNet) carries what lies under the transparent ones into the visible
ones beside them: a cut-out saved over black (as GIF frames and most editors keep
it) came out with a dark fringe along its semi-transparent edge, over white with a
light one. Where all those pixels hold one colour, it says nothing of the picture,
and it is replaced by the visible colours spread outwards (a push-pull pyramid:
each level halves the picture, averaging the colours by their alpha; a hidden pixel
takes the colour of the finest level at which its block holds a visible one). The
output under those pixels stays transparent. Where they hold colours of their own
(a texture whose alpha holds data, not coverage), they are left as they are.
"""
from __future__ import annotations

import numpy as np

# Rows of the picture filled at once: the pyramid's finest level, a quarter of the
# picture's size, is all that is held whole.
_BAND = 256


def filled(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """``colour`` (H×W×C, an integer type) with the colour under the pixels whose
    ``alpha`` (H×W×1) is 0 filled from the visible ones; None where nothing is filled:
    no pixel transparent, none visible, or more than one colour under them."""
    hidden = alpha[:, :, 0] == 0
    if not hidden.any() or hidden.all():
        return None
    first = colour[np.unravel_index(hidden.argmax(), hidden.shape)]  # the colour of one of them
    if any((colour[:, :, c][hidden] != first[c]).any() for c in range(colour.shape[2])):
        return None
    coarse = _pulled(colour, alpha[:, :, 0])
    top = np.iinfo(colour.dtype).max
    out = colour.copy()
    for y0 in range(0, colour.shape[0], _BAND):
        y1 = min(colour.shape[0], y0 + _BAND)
        band = hidden[y0:y1]
        if band.any():
            # y0 is even: the band's rows are the coarse rows y0 // 2 on, each twice.
            up = np.repeat(np.repeat(coarse[y0 // 2:(y1 + 1) // 2], 2, axis=0), 2, axis=1)
            out[y0:y1][band] = np.clip(np.rint(up[:y1 - y0, :colour.shape[1]][band]), 0, top)
    return out


def _pulled(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The pyramid's colour at its finest level (half the picture's sides, rounded up),
    float32: each cell the alpha-weighted mean of its block's visible pixels, or where
    it holds none, of the next coarser level's cell."""
    h, w = alpha.shape
    if h % 2 or w % 2:
        colour = np.pad(colour, ((0, h % 2), (0, w % 2), (0, 0)))
        alpha = np.pad(alpha, ((0, h % 2), (0, w % 2)))
    # The first halving a quarter at a time: the picture's own size in float32 (12
    # bytes a pixel, with its alpha 16) is never held.
    sums = np.zeros((colour.shape[0] // 2, colour.shape[1] // 2, colour.shape[2]), np.float32)
    weights = np.zeros(sums.shape[:2], np.float32)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = alpha[dy::2, dx::2].astype(np.float32)
        sums += colour[dy::2, dx::2] * weight[:, :, None]
        weights += weight
    levels = []
    while True:
        levels.append((sums, weights))
        if (weights > 0).all():
            break
        sums, weights = _halved(sums), _halved(weights)
    sums, weights = levels.pop()
    mean = sums / weights[:, :, None]
    while levels:
        sums, weights = levels.pop()
        seen = weights > 0
        np.divide(sums, np.where(seen, weights, 1)[:, :, None], out=sums)
        up = np.repeat(np.repeat(mean, 2, axis=0), 2, axis=1)[:sums.shape[0], :sums.shape[1]]
        np.copyto(sums, up, where=~seen[:, :, None])
        mean = sums
    return mean


def _halved(a: np.ndarray) -> np.ndarray:
    """Sums of ``a``'s 2×2 blocks (a side of odd length ends in a block of one row or
    column)."""
    h, w = a.shape[:2]
    if h % 2 or w % 2:
        a = np.pad(a, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (a.ndim - 2))
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]
