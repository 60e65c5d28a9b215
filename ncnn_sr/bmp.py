"""The alpha of a 32-bit BMP without colour masks (BI_RGB), which Pillow reads as
RGB: the fourth byte of each pixel is reserved there, but Pillow itself writes an
RGBA picture's alpha into it, and browsers and stb_image (the reference tool's reader)
take it as alpha unless every one is 0."""
from __future__ import annotations

import struct

import numpy as np

# BITMAPINFOHEADER and the later versions that extend it (V2, V3, V4, V5).
_INFO_SIZES = frozenset({40, 52, 56, 108, 124})
_BI_RGB = 0
# Rows read at a time: the alpha alone is kept, a quarter of the pixels' bytes.
_ROWS_AT_ONCE = 256


def reserved_alpha(path: str) -> np.ndarray | None:
    """The alpha (H×W, uint8, top row first) a 32-bit BI_RGB BMP at ``path`` holds in
    its pixels' fourth bytes; None for any other file, one whose fourth bytes are all
    0 (Windows leaves them so, and every pixel would be clear), or one cut short
    (Pillow's reading of it says what is wrong)."""
    with open(path, "rb") as f:
        head = f.read(34)
        if len(head) < 34 or head[:2] != b"BM":
            return None
        offset = int.from_bytes(head[10:14], "little")
        info_size, width, height, _, bits, compression = struct.unpack_from("<IiiHHI", head, 14)
        if info_size not in _INFO_SIZES or bits != 32 or compression != _BI_RGB or width <= 0 or height == 0:
            return None
        rows = abs(height)
        alpha = np.empty((rows, width), np.uint8)
        f.seek(offset)
        for start in range(0, rows, _ROWS_AT_ONCE):
            count = min(_ROWS_AT_ONCE, rows - start)
            data = f.read(count * width * 4)
            if len(data) < count * width * 4:
                return None
            alpha[start:start + count] = np.frombuffer(data, np.uint8).reshape(count, width, 4)[:, :, 3]
    if not alpha.any():
        return None
    return alpha[::-1] if height > 0 else alpha  # rows stored bottom-up unless the height is negative
