"""A JPEG whose header claims far more pixels than its data can hold. libjpeg
reads one whose data stops at an end marker (EOI) as a picture of the claimed size
grey where the data ran out, without an error: 8x8 pixels of data under a header
patched or damaged to say 9000x9000 came out as a 9000x9000 grey picture, upscaled
at length. One cut short before its end marker is refused as truncated."""
from __future__ import annotations

import struct

# Start-of-frame markers of Huffman-coded DCT frames, with the fewest bits each 8x8
# block takes: a sequential (baseline or extended) block codes its DC difference
# and at least an end of block, a code of one bit or more each; a progressive one
# is in a first DC scan, one code of one bit or more. Arithmetic coding, which can
# code a flat block in less than a bit, and lossless frames are not bounded here.
_LEAST_BITS_PER_BLOCK = {0xC0: 2, 0xC1: 2, 0xC2: 1}
# Markers that stand alone, with no length after them: TEM, RSTn, SOI.
_STANDALONE = {0x01, *range(0xD0, 0xD9)}


def shortfall(f, size: int) -> str | None:
    """Why the JPEG open as the binary file ``f`` (``size`` bytes long) holds far
    less than its header claims: its frame's 8x8 blocks need more bits than the
    whole file has. None where they may fit, or where its headers cannot be walked
    to its frame (the reader says what is wrong, if anything)."""
    f.seek(0)
    if f.read(2) != b"\xff\xd8":
        return None
    while True:
        head = f.read(2)
        if len(head) < 2 or head[0] != 0xFF:
            return None
        marker = head[1]
        if marker == 0xFF:  # a fill byte before the marker
            f.seek(-1, 1)
            continue
        if marker in _STANDALONE:
            continue
        if marker == 0xDA:  # the first scan, and no frame yet
            return None
        length = f.read(2)
        if len(length) < 2 or (n := struct.unpack(">H", length)[0]) < 2:
            return None
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _frame_shortfall(marker, f.read(n - 2), size)
        f.seek(n - 2, 1)


def _frame_shortfall(marker: int, body: bytes, size: int) -> str | None:
    least = _LEAST_BITS_PER_BLOCK.get(marker)
    if least is None or len(body) < 6:
        return None
    height, width, count = struct.unpack(">HHB", body[1:6])
    factors = [(b >> 4, b & 15) for b in body[7:6 + 3 * count:3]]
    if not height or not width or len(factors) != count or not all(h and v for h, v in factors):
        return None  # no height (given by a later DNL marker), or a broken frame: the reader's to say
    most_h, most_v = max(h for h, _ in factors), max(v for _, v in factors)
    # Each component's blocks as a scan of it alone codes them: no more than an
    # interleaved scan's, which pads to whole MCUs.
    blocks = sum(_ceil(_ceil(width * h, most_h), 8) * _ceil(_ceil(height * v, most_v), 8) for h, v in factors)
    if blocks * least <= 8 * size:
        return None
    return f"JPEG: its header claims {width}x{height} pixels, far more than its {size} bytes can hold"


def _ceil(a: int, b: int) -> int:
    return -(-a // b)
