"""Whether a GPU computes a model right, checked once as the model loads on it.

Users of the reference tool see black or garbled pictures on some drivers (float16
maths a driver gets wrong, a shader it miscompiles), with nothing said. So a small
test picture goes through the network on the GPU, and its output is compared with
what the CPU gives, kept in the catalog for its models as the output shrunk to 8x8
(``signature``). A model the catalog does not know is held to what any sound output
shows: finite numbers, and not one flat colour for a picture that is not flat.
"""
from __future__ import annotations

import numpy as np

PROBE_SIDE = 32
CELLS = 8  # the signature's cells a side
# Grey levels a cell may differ by: float16 on a GPU is 0.5-1 level from the CPU's
# float32 here; a driver at fault is tens off, or flat.
TOLERANCE = 6


def probe_picture() -> np.ndarray:
    """The test picture: H×W×3 float32 in [0,1], smooth ramps with hard edges and
    some texture, as photos and drawings have."""
    y, x = np.mgrid[0:PROBE_SIDE, 0:PROBE_SIDE].astype(np.float32) / (PROBE_SIDE - 1)
    picture = np.stack([x, y, 0.5 + 0.4 * np.sin(7 * x + 5 * y)], axis=2)
    picture[8:20, 10:22] = (0.9, 0.2, 0.1)
    picture[::4, :, 1] *= 0.6
    return np.clip(picture, 0, 1).astype(np.float32)


def signature(output: np.ndarray) -> tuple[int, ...]:
    """``output`` (H×W×3 float, [0,1] or so) shrunk to CELLS × CELLS by averaging, in
    grey levels, channel after channel of each cell."""
    h, w, c = output.shape
    cells = np.clip(output, 0, 1).reshape(CELLS, h // CELLS, CELLS, w // CELLS, c).mean(axis=(1, 3))
    return tuple(int(v) for v in np.rint(cells * 255).astype(int).ravel())


def fault(output: np.ndarray, expected: tuple[int, ...] | None) -> str | None:
    """What is wrong with the network's ``output`` for ``probe_picture()``, in words,
    or None. ``expected`` is its signature on the CPU where known."""
    if not np.isfinite(output).all():
        return "NaN or infinite values"
    if float(np.ptp(np.clip(output, 0, 1))) < 1 / 255:
        return "one flat colour"
    if expected is not None:
        off = np.abs(np.asarray(signature(output)) - np.asarray(expected)).max()
        if off > TOLERANCE:
            return f"a picture {off} grey levels from the CPU's"
    return None
