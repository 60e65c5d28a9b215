"""16-bit colour PPMs (a raw photo developed by dcraw -6 or LibRaw), binary or plain
(text), which Pillow reads as 8-bit RGB, read in 16 bits. Its 16-bit grey PGMs
Pillow reads whole. The Netpbm kinds Pillow cannot read (PAM, colour PFM) are named."""
from __future__ import annotations

import re

import numpy as np
from PIL import Image


# The Netpbm kinds Pillow does not identify, by their first bytes, with what to say of
# them: PAM (its header is "P7" and a line end; "P7 332" is an XV thumbnail, which
# Pillow reads) and colour PFM, whose grey sibling ("Pf") Pillow opens as 32-bit float.
FLOAT_ADVICE = "which is not supported: convert it to a 16-bit png or tiff"
_PAM = "a PAM (Netpbm's P7), which Pillow cannot read: convert it to png (pamtopng)"
_PFM = f"a colour PFM (32-bit float pixels), {FLOAT_ADVICE}"
UNREAD_KINDS = ((b"P7\n", _PAM), (b"P7\r", _PAM), (b"PF\n", _PFM), (b"PF\r", _PFM), (b"PF ", _PFM))


def unread_kind(head: bytes) -> str | None:
    """What to say of a file starting with ``head`` (3 bytes) where it is a Netpbm kind
    that Pillow cannot read: what it is, and what to do; None otherwise."""
    return next((said for magic, said in UNREAD_KINDS if head.startswith(magic)), None)


def deep_samples(im: Image.Image) -> tuple[int, int, bool] | None:
    """Where the samples of the opened, not yet loaded, picture ``im`` start, the
    largest value they take (maxval) and whether they are text, where it is a PPM
    (P6, or P3 in text) of more than 8 bits a sample; None for any other picture."""
    if im.format != "PPM" or im.mode != "RGB" or len(im.tile) != 1:
        return None
    tile = im.tile[0]
    # Pillow decodes a PPM of another maxval than 255 with its "ppm" decoder, whose
    # last argument is the maxval ("ppm_plain" for the text form, P3).
    if tile.codec_name not in ("ppm", "ppm_plain") or not isinstance(tile.args, tuple) \
            or not 255 < tile.args[-1] < 65536:
        return None
    return tile.offset, tile.args[-1], tile.codec_name == "ppm_plain"


def decode_fast(im: Image.Image, deep: tuple[int, int, bool]) -> None:
    """Have Pillow decode the binary PPM ``im`` (opened, not yet loaded) of more than
    8 bits a sample (``deep``, what ``deep_samples`` gave) with its raw decoder, in C,
    which keeps each sample's high byte, in place of its "ppm" decoder, in Python, which
    scales them by the maxval: its 8-bit pixels are thrown away for ``read16``'s, and
    that decoder took 24 s of a 4000x3000 photo that read16 reads in 1. A cut-short file
    is still refused by Pillow, as before."""
    if not deep[2]:
        im.tile = [im.tile[0]._replace(codec_name="raw", args=("RGB;16B", 0, 1))]


def read16(path: str, width: int, height: int, offset: int, maxval: int, plain: bool = False) -> np.ndarray:
    """The H×W×3 uint16 samples of the PPM at ``path`` (in text where ``plain``),
    spread from 0..``maxval`` over 0..65535 as a 16-bit PNG holds them (a value past
    maxval is maxval)."""
    count = width * height * 3
    with open(path, "rb") as f:
        f.seek(offset)
        if plain:  # numbers apart, comments left out as Pillow's reader leaves them
            values = re.sub(rb"#[^\r\n]*", b"", f.read()).split()[:count]
            got, levels = len(values), np.array(values or [0]).astype(np.uint32)
        else:
            data = f.read(count * 2)
            got, levels = len(data) // 2, np.frombuffer(data[:count * 2], ">u2").astype(np.uint32)
    if got < count:
        raise SyntaxError(f"PPM cut short: {got // 3} of its {width * height} pixels")
    levels = np.minimum(levels, maxval)
    return ((levels * 65535 + maxval // 2) // maxval).astype(np.uint16).reshape(height, width, 3)
