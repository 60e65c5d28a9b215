"""16-bit RGB and RGBA TIFFs read in 16 bits.

Pillow has no 16-bit colour mode: it reads such a TIFF (a photo editor's export, a
scanner's) as 8-bit RGB, keeping the high byte of each sample. Its 16-bit grey
mode, though, takes any compression libtiff decodes. So the file's first directory
is rewritten in memory to describe the same samples as one grey row of width x
samples per pixel (the strips' or tiles' bytes are the same either way), read by
Pillow as 16-bit grey, and reshaped. A horizontal predictor, which differences each
sample with the one of the same channel before it, is undone here: described as grey,
the predictor would difference neighbouring samples of different channels.

Only what that rewriting keeps exact is taken: a classic (not Big) TIFF, RGB with
16 bits per sample, samples interleaved, 3 or 4 of them (the fourth unassociated
alpha), predictor none or horizontal. Anything else gives None, and the caller keeps
Pillow's 8 bits.
"""
from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, TiffImagePlugin

_WIDTH, _BITS, _PHOTOMETRIC, _SAMPLES, _PLANAR, _PREDICTOR, _TILE_WIDTH, _EXTRA = \
    256, 258, 262, 277, 284, 317, 322, 338
_SHORT, _LONG = 3, 4
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_RGB = 2
_UNASSOCIATED_ALPHA = 2
# A tag no reader knows: the extra-samples entry is renamed to it, since one grey
# sample has none (libtiff refuses a count over the samples per pixel).
_IGNORED = 65000


def is_deep(im: Image.Image) -> bool:
    """Whether ``im`` (opened, not yet converted) is a TIFF of 16-bit colour."""
    if im.format != "TIFF" or im.mode not in ("RGB", "RGBA"):
        return False
    bits = getattr(im, "tag_v2", {}).get(_BITS)
    bits = bits if isinstance(bits, tuple) else (bits,)
    return len(bits) >= 3 and all(b == 16 for b in bits)


class _Rows(TiffImagePlugin.TiffImageFile):
    """The rewritten TIFF, opened without Pillow's decompression-bomb check, which
    would count its samples as pixels and refuse (or warn of) a 16-bit photo a third
    of the limit's size: the caller has checked the picture's own pixels. Where
    Pillow's internals differ from those this was written for, its check stays."""

    def load_prepare(self) -> None:
        if getattr(self, "_im", False) is None and hasattr(self, "_tile_size"):
            self.im = Image.core.new(self.mode, self._tile_size)
        super().load_prepare()


def read16(data: bytes) -> np.ndarray | None:
    """The first picture of TIFF bytes ``data`` as H×W×C uint16 (C 3 or 4), or None
    when it is not one this module reads exactly."""
    rewritten = _as_grey(data)
    if rewritten is None:
        return None
    grey, samples, predictor, tile_width = rewritten
    with _Rows(io.BytesIO(grey)) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I;16N"):
            return None
        im.load()
        rows = np.asarray(im).astype(np.uint16)
    height, width = rows.shape[0], rows.shape[1] // samples
    pixels = rows.reshape(height, width, samples)
    if predictor == 2:
        # Each sample was stored less the one before it in its channel, modulo 2^16,
        # from the left edge of its tile (a strip's is the picture's).
        step = tile_width or width
        for left in range(0, width, step):
            block = pixels[:, left:left + step]
            np.cumsum(block, axis=1, dtype=np.uint16, out=block)
    return np.ascontiguousarray(pixels)


def _as_grey(data: bytes) -> tuple[bytes, int, int, int | None] | None:
    """``data`` with its first directory describing 16-bit grey rows of width x
    samples, the samples per pixel, the predictor taken out, and the tile width in
    pixels (None in strips); None where that would not be the same picture."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return None
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack(order + "H", data[2:4])[0] != 42:  # BigTIFF is 43
        return None
    start = struct.unpack(order + "I", data[4:8])[0]
    if start + 2 > len(data):
        return None
    count = struct.unpack(order + "H", data[start:start + 2])[0]
    if start + 2 + 12 * count > len(data):
        return None
    entries = {}
    for i in range(count):
        at = start + 2 + 12 * i
        tag, kind, n = struct.unpack(order + "HHI", data[at:at + 8])
        entries[tag] = (at, kind, n)

    def values(tag: int) -> tuple[int, ...] | None:
        if tag not in entries:
            return None
        at, kind, n = entries[tag]
        if kind not in (_SHORT, _LONG) or n == 0:
            return None
        size = _SIZES[kind] * n
        where = at + 8 if size <= 4 else struct.unpack(order + "I", data[at + 8:at + 12])[0]
        if where + size > len(data):
            return None
        return struct.unpack(order + ("H" if kind == _SHORT else "I") * n, data[where:where + size])

    samples = (values(_SAMPLES) or (1,))[0]
    bits = values(_BITS) or ()
    width = values(_WIDTH)
    extra = values(_EXTRA) or ()
    if samples not in (3, 4) or len(bits) != samples or any(b != 16 for b in bits) or width is None \
            or (values(_PHOTOMETRIC) or (None,))[0] != _RGB or (values(_PLANAR) or (1,))[0] != 1 \
            or extra not in ((), (_UNASSOCIATED_ALPHA,)) or len(extra) != samples - 3:
        return None
    predictor = (values(_PREDICTOR) or (1,))[0]
    if predictor not in (1, 2):
        return None
    out = bytearray(data)

    def put(tag: int, kind: int, value: int) -> None:
        at = entries[tag][0]
        packed = struct.pack(order + "H", value) + b"\0\0" if kind == _SHORT else struct.pack(order + "I", value)
        out[at:at + 12] = struct.pack(order + "HHI", tag, kind, 1) + packed

    put(_WIDTH, _LONG, width[0] * samples)
    put(_BITS, _SHORT, 16)
    put(_SAMPLES, _SHORT, 1)
    put(_PHOTOMETRIC, _SHORT, 1)  # grey, black at 0
    if _PREDICTOR in entries:
        put(_PREDICTOR, _SHORT, 1)
    tile = None
    if _TILE_WIDTH in entries:
        tile = values(_TILE_WIDTH)
        if tile is None:
            return None
        put(_TILE_WIDTH, _LONG, tile[0] * samples)
    if _EXTRA in entries:
        at = entries[_EXTRA][0]
        out[at:at + 2] = struct.pack(order + "H", _IGNORED)
    return bytes(out), samples, predictor, tile and tile[0]
