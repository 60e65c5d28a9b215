"""What GIF holds: a palette of at most 256 colours per frame, one of which may be
transparent. Pictures are reduced to it here. Knows nothing of ncnn."""
from __future__ import annotations

import numpy as np
from PIL import Image

# GIF has no partial transparency: alpha below this is transparent, the rest opaque
# (the middle of the range, as gifsicle and ImageMagick cut it).
ALPHA_CUT = 128
# 255 colours from the picture; the last index is kept for the transparent pixels.
TRANSPARENT_INDEX = 255

# Pillow's own palette clean-up reorders the indices of each frame (only below
# 512x512), and with it the transparent one, which the frames of an animation
# disposed to the background then no longer shared.
SAVE_OPTIONS = {"optimize": False}


def has_clear_pixels(image: np.ndarray) -> bool:
    """Whether an 8-bit H×W×C array has pixels a GIF shows transparent."""
    return image.shape[2] == 4 and bool((image[:, :, 3] < ALPHA_CUT).any())


def to_palette(image: np.ndarray, transparent: bool = False) -> Image.Image:
    """An 8-bit H×W×C array (C in 1, 3, 4) as a GIF frame: its colours reduced to a
    palette of 255 (median cut, Floyd-Steinberg dithered), and, where C is 4,
    TRANSPARENT_INDEX wherever alpha is under ALPHA_CUT. The frame has that
    transparent index (its ``info["transparency"]``) when it has such pixels or
    ``transparent`` says so: Pillow reads the frames after the first as opaque
    unless the first has one."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    reduced = Image.fromarray(np.ascontiguousarray(rgb)).quantize(
        TRANSPARENT_INDEX, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    if not (transparent or has_clear_pixels(image)):
        return reduced
    indices = np.asarray(reduced).copy()
    if image.shape[2] == 4:
        indices[image[:, :, 3] < ALPHA_CUT] = TRANSPARENT_INDEX
    frame = Image.fromarray(indices, "P")
    palette = reduced.getpalette()[:3 * TRANSPARENT_INDEX]
    frame.putpalette(palette + [0] * (3 * 256 - len(palette)))
    frame.info["transparency"] = TRANSPARENT_INDEX
    return frame
