"""16-bit colour PPMs (a raw photo developed by dcraw -6 or LibRaw), which Pillow
reads as 8-bit RGB, read in 16 bits. Its 16-bit grey PGMs Pillow reads whole."""
from __future__ import annotations

import numpy as np
from PIL import Image


def deep_samples(im: Image.Image) -> tuple[int, int] | None:
    """Where the samples of the opened, not yet loaded, picture ``im`` start and the
    largest value they take (maxval), where it is a binary PPM (P6) of more than 8
    bits a sample; None for any other picture."""
    if im.format != "PPM" or im.mode != "RGB" or len(im.tile) != 1:
        return None
    tile = im.tile[0]
    # Pillow decodes a P6 of another maxval than 255 with its "ppm" decoder, whose
    # last argument is the maxval ("ppm_plain" for the text form, P3).
    if tile.codec_name != "ppm" or not isinstance(tile.args, tuple) or not 255 < tile.args[-1] < 65536:
        return None
    return tile.offset, tile.args[-1]


def read16(path: str, width: int, height: int, offset: int, maxval: int) -> np.ndarray:
    """The H×W×3 uint16 samples of the P6 PPM at ``path``, spread from 0..``maxval``
    over 0..65535 as a 16-bit PNG holds them (a value past maxval is maxval)."""
    count = width * height * 3
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(count * 2)
    if len(data) < count * 2:
        raise SyntaxError(f"PPM cut short: {len(data) // 6} of its {width * height} pixels")
    levels = np.minimum(np.frombuffer(data, ">u2").astype(np.uint32), maxval)
    return ((levels * 65535 + maxval // 2) // maxval).astype(np.uint16).reshape(height, width, 3)
