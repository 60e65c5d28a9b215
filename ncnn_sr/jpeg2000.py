"""Deep colour JPEG 2000 (an archive's master scan, 9 to 16 bits a sample), which
Pillow reads as 8-bit RGB, and wrongly at the top (its rounding turns a 16-bit
65535 into 0: white into black), read in 16 bits through FFmpeg, as a 16-bit PNG
is. Pillow reads deep grey whole."""
from __future__ import annotations

import struct

import numpy as np

from .isobmff import boxes
from .png import read_png16

# A codestream's first markers: start of codestream, then its image and tile size (SIZ).
_CODESTREAM = b"\xff\x4f\xff\x51"


def bits(path: str) -> int:
    """The most bits a sample of the JPEG 2000 at ``path`` has, from its codestream's
    SIZ marker (a JP2 header's ihdr may say otherwise: FFmpeg's writer puts the bits
    where the bits less one belong), 8 where it states none readable or any sample
    is signed."""
    try:
        with open(path, "rb") as f:
            def read(at: int, n: int) -> bytes:
                f.seek(at)
                return f.read(n)

            start = 0 if read(0, 4) == _CODESTREAM else \
                next((box.body for box in boxes(read) if box.kind == b"jp2c"), None)
            head = b"" if start is None else read(start, 42 + 3 * 16)
        if not head.startswith(_CODESTREAM):
            return 8
        count = struct.unpack_from(">H", head, 40)[0]  # Csiz, after the sizes
        depths = list(head[42:42 + 3 * count:3])  # each component's Ssiz
    except (OSError, struct.error):
        return 8
    if not depths or any(d & 0x80 for d in depths):  # signed samples: left to Pillow
        return 8
    return max(d & 0x7F for d in depths) + 1


def read16(path: str, depth: int, channels: int) -> np.ndarray:
    """The H×W×``channels`` (3 or 4) uint16 samples of the JPEG 2000 at ``path`` of
    ``depth`` bits, spread over 16 as a 16-bit PNG holds them: FFmpeg gives them
    shifted to the top, 4095 of 12 bits as 65520."""
    levels = read_png16(path, channels).astype(np.uint32) >> (16 - depth)
    top = (1 << depth) - 1
    return ((levels * 65535 + top // 2) // top).astype(np.uint16)
