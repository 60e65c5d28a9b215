"""The alpha of a 32-bit BMP without colour masks (BI_RGB), which Pillow reads as
RGB: the fourth byte of each pixel is reserved there, but Pillow itself writes an
RGBA picture's alpha into it, and browsers and stb_image (the reference tool's reader)
take it as alpha unless every one is 0. The pixels an RLE BMP's codes leave
unwritten, which browsers show clear."""
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


# Compressions of run-length coded BMPs, with the bits of their pixels.
_RLE_BITS = {1: 8, 2: 4}
# A delta moving as far as one can (255 right, 255 up): Pillow fills what a delta
# passes over, which a bitmap ended early leaves it short of.
_FARTHEST_DELTA = b"\x00\x02\xff\xff"


def rle_skipped(path: str) -> tuple[np.ndarray, bytes | None] | None:
    """For an RLE8 or RLE4 BMP at ``path`` whose codes leave pixels unwritten (a
    delta passing over them, a line or the bitmap ended early), which browsers show
    clear and Pillow gave the palette's first colour, opaque: those pixels (H×W
    bool, top row first), and, where the bitmap ends early, which Pillow refuses
    ('not enough image data'), the file's bytes with deltas to its end in place of
    that end (None where it needs none). None for any other file, one whose codes
    write every pixel, or one whose codes run out before its end (cut short: Pillow
    says so). The codes are walked as Pillow's decoder reads them: the pixels it
    writes are those not skipped."""
    with open(path, "rb") as f:
        head = f.read(34)
        if len(head) < 34 or head[:2] != b"BM":
            return None
        info_size, width, height, _, bits, compression = struct.unpack_from("<IiiHHI", head, 14)
        if info_size not in _INFO_SIZES or _RLE_BITS.get(compression) != bits or width <= 0 or height == 0:
            return None
        f.seek(0)
        data = f.read()
    total = width * abs(height)
    written = np.zeros(total, bool)
    done = x = 0
    pos = int.from_bytes(head[10:14], "little")
    while done < total:
        if pos + 2 > len(data):
            return None  # cut short
        count, code = data[pos], data[pos + 1]
        pos += 2
        if count:  # a run of one colour, which Pillow cuts at the row's end
            count = min(count, max(0, width - x))
            written[done:done + count] = True
            done, x = done + count, x + count
        elif code == 0:  # end of line
            done, x = -(-done // width) * width, 0
        elif code == 1:  # end of bitmap, early
            more = -(-(total - done) // (255 + 255 * width))
            return _top_first(~written, width, height), data[:pos - 2] + _FARTHEST_DELTA * more + data[pos - 2:]
        elif code == 2:  # delta
            if pos + 2 > len(data):
                return None
            done = min(total, done + data[pos] + data[pos + 1] * width)
            x, pos = done % width, pos + 2
        else:  # that many pixels, each coded apart, padded to a 16-bit word
            count = min(total - done, code)
            size = (count + 1) // 2 if bits == 4 else count
            if pos + size > len(data):
                return None
            written[done:done + count] = True
            done, x, pos = done + count, x + code, pos + size
            pos += pos % 2
    if written.all():
        return None
    return _top_first(~written, width, height), None


def _top_first(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    rows = pixels.reshape(abs(height), width)
    return rows[::-1] if height > 0 else rows  # rows stored bottom-up unless the height is negative
