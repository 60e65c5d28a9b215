"""16-bit RGB, RGBA and grey+alpha TIFFs read in 16 bits.

Pillow has no 16-bit colour mode: it reads such a TIFF (a photo editor's export, a
scanner's) as 8-bit RGB, keeping the high byte of each sample. Its 16-bit grey
mode, though, takes any compression libtiff decodes. So the file's first directory
is rewritten in memory to describe the same samples as one grey row of width x
samples per pixel (the strips' or tiles' bytes are the same either way), read by
Pillow as 16-bit grey, and reshaped. A horizontal predictor, which differences each
sample with the one of the same channel before it, is undone here: described as grey,
the predictor would difference neighbouring samples of different channels.

Only what that rewriting keeps exact is taken: a classic (not Big) TIFF, RGB with
16 bits per sample, samples interleaved, 3 or 4 of them (the fourth alpha,
premultiplied or not: premultiplied colour is divided by it, as Pillow divides 8-bit
RGBa), predictor none or horizontal. Anything else gives None, and the caller keeps
Pillow's 8 bits.

Grey with alpha in 16 bits Pillow cannot open at all. Its pixels are 4 bytes, as
8-bit RGBA's are, so the directory is rewritten to say that: Pillow reads the bytes
(and the picture's size, pages and metadata), which are then taken as the 16-bit
samples they are. Its extra sample is read as Pillow reads an 8-bit one: alpha,
premultiplied alpha (divided out), or, unspecified, no alpha (left aside).
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, TiffImagePlugin

from .metadata import orient
from .tiff_directory import LONG, SHORT, Directory, header

_WIDTH, _BITS, _PHOTOMETRIC, _ORIENTATION, _SAMPLES, _PLANAR, _PREDICTOR, _TILE_WIDTH, _EXTRA = \
    256, 258, 262, 274, 277, 284, 317, 322, 338
_RGB = 2
_UNSPECIFIED, _ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA = 0, 1, 2
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


def reads_deep(im: Image.Image) -> bool:
    """Whether ``read16`` reads the open TIFF ``im`` in 16 bits (its layout one it
    reads exactly, as ``_as_grey`` tells from the file), from Pillow's reading of its
    tags: the memory a result takes is counted from it before the pixels are read."""
    if not is_deep(im):
        return False
    tags = im.tag_v2
    extra = tags.get(_EXTRA, ())
    extra = extra if isinstance(extra, tuple) else (extra,)
    samples = tags.get(_SAMPLES, 1)
    return samples in (3, 4) and len(tags.get(_BITS)) == samples and tags.get(_PHOTOMETRIC) == _RGB \
        and tags.get(_PLANAR, 1) == 1 and tags.get(_PREDICTOR, 1) in (1, 2) and len(extra) == samples - 3 \
        and extra in ((), (_ASSOCIATED_ALPHA,), (_UNASSOCIATED_ALPHA,))


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
    grey, samples, predictor, tile_width, orientation, premultiplied = rewritten
    with _Rows(io.BytesIO(grey)) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I;16N"):
            return None
        im.load()
        rows = np.asarray(im).astype(np.uint16)
    height, width = rows.shape[0], rows.shape[1] // samples
    pixels = np.ascontiguousarray(rows.reshape(height, width, samples))
    if predictor == 2:
        _undo_predictor(pixels, tile_width)
    if premultiplied:
        pixels[:, :, :3] = _unpremultiplied(pixels[:, :, :3], pixels[:, :, 3:])
    return orient(pixels, orientation)


def _undo_predictor(pixels: np.ndarray, tile_width: int | None) -> None:
    """Undoes the horizontal predictor on H×W×C uint16 ``pixels``, in place: each
    sample was stored less the one before it in its channel, modulo 2^16, from the
    left edge of its tile (a strip's is the picture's)."""
    step = tile_width or pixels.shape[1]
    for left in range(0, pixels.shape[1], step):
        block = pixels[:, left:left + step]
        np.cumsum(block, axis=1, dtype=np.uint16, out=block)


def _directory(data: bytes) -> Directory | None:
    """The first directory of classic (not Big) TIFF bytes ``data``; None for any other."""
    try:
        order, version, first = header(data)
        return Directory(data, order, first) if version == 42 else None  # a BigTIFF's is 43
    except ValueError:
        return None


def _as_grey(data: bytes) -> tuple[bytes, int, int, int | None, int, bool] | None:
    """``data`` with its first directory describing 16-bit grey rows of width x
    samples, the samples per pixel, the predictor taken out, the tile width in
    pixels (None in strips), the orientation taken out, and whether its alpha is
    premultiplied; None where that would not be the same picture."""
    tiff = _directory(data)
    if tiff is None:
        return None
    samples = tiff.first(_SAMPLES, 1)
    bits = tiff.values(_BITS) or ()
    width = tiff.values(_WIDTH)
    extra = tiff.values(_EXTRA) or ()
    if samples not in (3, 4) or len(bits) != samples or any(b != 16 for b in bits) or width is None \
            or tiff.first(_PHOTOMETRIC, None) != _RGB or tiff.first(_PLANAR, 1) != 1 \
            or extra not in ((), (_ASSOCIATED_ALPHA,), (_UNASSOCIATED_ALPHA,)) or len(extra) != samples - 3:
        return None
    predictor = tiff.first(_PREDICTOR, 1)
    if predictor not in (1, 2):
        return None
    out = bytearray(data)
    tiff.put(out, _WIDTH, LONG, width[0] * samples)
    tiff.put(out, _BITS, SHORT, 16)
    tiff.put(out, _SAMPLES, SHORT, 1)
    tiff.put(out, _PHOTOMETRIC, SHORT, 1)  # grey, black at 0
    if _PREDICTOR in tiff:
        tiff.put(out, _PREDICTOR, SHORT, 1)
    tile = None
    if _TILE_WIDTH in tiff:
        tile = tiff.values(_TILE_WIDTH)
        if tile is None:
            return None
        tiff.put(out, _TILE_WIDTH, LONG, tile[0] * samples)
    if _EXTRA in tiff:
        at = tiff.entry(_EXTRA).at
        out[at:at + 2] = struct.pack(tiff.order + "H", _IGNORED)
    orientation = _upright(tiff, out)
    return bytes(out), samples, predictor, tile and tile[0], orientation, extra == (_ASSOCIATED_ALPHA,)


def _upright(tiff: Directory, out: bytearray) -> int:
    """The orientation of ``tiff``, set to 1 in ``out``, its bytes rewritten: Pillow
    turns a TIFF upright as it loads it, which turned rows of samples, or pixels
    whose samples are differenced along the file's rows, before they were whole."""
    orientation = tiff.first(_ORIENTATION, 1)
    if _ORIENTATION in tiff:
        tiff.put(out, _ORIENTATION, SHORT, 1)
    return orientation


@dataclass(frozen=True)
class GreyAlpha:
    """How a 16-bit grey+alpha TIFF's samples lie in the 8-bit RGBA Pillow reads
    from ``grey_alpha_as_rgba``'s bytes: each pixel's four bytes are its grey and
    alpha samples, in the file's byte ``order``, still differenced where
    ``predictor`` is 2 (from the left of each tile ``tile_width`` wide, None in
    strips); ``white_at_0`` grey is turned over; ``orientation`` (EXIF's) is to
    be applied; ``extra`` is the TIFF's kind of extra sample: 2 alpha, 1
    premultiplied alpha, 0 unspecified (no alpha)."""

    order: str
    predictor: int
    tile_width: int | None
    white_at_0: bool
    orientation: int = 1
    extra: int = _UNASSOCIATED_ALPHA


def grey_alpha_as_rgba(data: bytes) -> tuple[bytes, GreyAlpha] | None:
    """TIFF bytes ``data`` whose first picture is 16-bit grey with an extra sample
    (alpha, premultiplied or not, or unspecified), which Pillow has no mode for, with that directory describing 8-bit RGBA of the
    same size instead (the same 4 bytes a pixel, so the strips or tiles, compressed
    or not, decode to the same bytes; the predictor is taken out, as it differences
    16-bit samples), and where the samples lie; None for any other TIFF."""
    tiff = _directory(data)
    if tiff is None:
        return None
    photometric, predictor = tiff.first(_PHOTOMETRIC, None), tiff.first(_PREDICTOR, 1)
    if tiff.first(_SAMPLES, 1) != 2 or tiff.values(_BITS) != (16, 16) or photometric not in (0, 1) \
            or tiff.values(_EXTRA) not in ((_UNSPECIFIED,), (_ASSOCIATED_ALPHA,), (_UNASSOCIATED_ALPHA,)) or tiff.first(_PLANAR, 1) != 1 or predictor not in (1, 2):
        return None
    tile = tiff.values(_TILE_WIDTH) if _TILE_WIDTH in tiff else None
    if _TILE_WIDTH in tiff and tile is None:
        return None
    out = bytearray(data)
    tiff.put(out, _SAMPLES, SHORT, 4)
    tiff.put(out, _PHOTOMETRIC, SHORT, _RGB)
    # Read as straight RGBA, its bytes as they are: Pillow would take premultiplied
    # ones apart (RGBa), and leave an unspecified sample out (RGBX).
    tiff.put(out, _EXTRA, SHORT, _UNASSOCIATED_ALPHA)
    if _PREDICTOR in tiff:
        tiff.put(out, _PREDICTOR, SHORT, 1)
    orientation = _upright(tiff, out)
    tiff.put(out, _BITS, SHORT, 8, 8, 8, 8)  # last: its values go after the file's bytes
    return bytes(out), GreyAlpha(tiff.order, predictor, tile and tile[0], photometric == 0, orientation,
                                 tiff.values(_EXTRA)[0])


def grey_alpha_pixels(raw: np.ndarray, layout: GreyAlpha) -> np.ndarray:
    """The H×W×4 uint16 RGBA (grey in each colour; its alpha not premultiplied) of
    a grey+alpha TIFF, or H×W×1 grey where its extra sample is unspecified, from the
    H×W×4 bytes Pillow read of ``grey_alpha_as_rgba``'s file."""
    pixels = np.ascontiguousarray(raw).view(layout.order + "u2").astype(np.uint16)
    if layout.predictor == 2:
        _undo_predictor(pixels, layout.tile_width)
    grey, alpha = pixels[:, :, :1], pixels[:, :, 1:]
    if layout.white_at_0:
        grey = 65535 - grey
    if layout.extra == _UNSPECIFIED:
        return orient(grey, layout.orientation)
    if layout.extra == _ASSOCIATED_ALPHA:
        grey = _unpremultiplied(grey, alpha)
    return orient(np.concatenate([grey, grey, grey, alpha], axis=2), layout.orientation)


def _unpremultiplied(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """16-bit H×W×C ``colour`` premultiplied by the H×W×1 ``alpha``, divided by it
    (rounded): 0 where alpha is 0; a colour over its alpha (a damaged file) is white."""
    wide = alpha.astype(np.uint64)
    return np.where(wide > 0, np.minimum((colour * np.uint64(65535) + wide // 2) // np.maximum(wide, 1), 65535),
                    0).astype(np.uint16)
