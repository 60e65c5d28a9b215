"""What Pillow leaves out of HEIF (iPhones' .heic photos), through pillow-heif: the
reader itself, its 10- and 12-bit pictures whole, libheif's reason for refusing a
broken file."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# ISO BMFF's first box, which HEIF and AVIF files open with: a file's bytes 4 to 8.
_FTYP = b"ftyp"

_lock = threading.Lock()
_registered = False


def register() -> bool:
    """pillow-heif's reader given to Pillow, and its extensions with it (.heic, .heif,
    .hif), once a process; True where it is given now. Loading pillow-heif (libheif)
    took 30-60 ms of each command's start, for the few HEIF pictures: it is loaded for
    a file that may be one. libheif turns the picture upright itself and pillow-heif
    then says orientation 1 in its EXIF (and drops the XMP's), so it is not turned
    twice."""
    global _registered
    with _lock:
        if _registered:
            return False
        import pillow_heif

        pillow_heif.register_heif_opener()
        _registered = True
        return True


def register_for(path) -> bool:
    """``register`` where the file at ``path`` opens as ISO BMFF does (an ftyp box),
    as every HEIF does, whatever its name; True where that gave Pillow the reader
    now. Nothing where the file cannot be read, which opening it says."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except (OSError, TypeError, ValueError):
        return False
    return head[4:8] == _FTYP and register()


def is_heif(path: str) -> bool:
    """Whether the file at ``path`` says it is a HEIF (its ftyp box), readable or not."""
    import pillow_heif

    return pillow_heif.is_supported(path)


def coded_colour(im: Image.Image) -> tuple[tuple[bytes, bytes], ...]:
    """The colour the open HEIF ``im`` states as H.273 code points (its nclx) as
    ``icc.cicp_chunks`` gives it: libheif gives the samples in those primaries and
    that transfer, and what was written from them was shown as sRGB. () where it
    has an ICC profile (which it keeps) or is sRGB."""
    nclx = im.info.get("nclx_profile")
    if im.format != "HEIF" or im.info.get("icc_profile") or not isinstance(nclx, dict):
        return ()
    from .icc import cicp_chunks

    return cicp_chunks(nclx.get("color_primaries"), nclx.get("transfer_characteristics"))


def is_deep(im: Image.Image) -> bool:
    """Whether the open picture ``im`` is a HEIF of more than 8 bits: Pillow's reader
    gives its colour as 8-bit, its grey (I;16) left-aligned, 1023 as 65472."""
    return im.format == "HEIF" and im.info.get("bit_depth", 8) > 8 and im.mode in ("RGB", "RGBA", "I;16")


def read16(path: str) -> np.ndarray:
    """The primary picture of the HEIF at ``path`` as an H×W×C uint16 array (grey,
    RGB or RGBA), its 10 or 12 bits spread over 16 as a 16-bit PNG holds them: the
    top level is 65535, where pillow-heif's left-aligned 1023 was 65472."""
    import numpy as np
    import pillow_heif

    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    picture = heif[heif.primary_index]
    top = (1 << picture.info["bit_depth"]) - 1
    levels = np.asarray(picture).astype(np.uint32) >> (16 - picture.info["bit_depth"])
    spread = ((levels * 65535 + top // 2) // top).astype(np.uint16)
    return spread[:, :, None] if spread.ndim == 2 else spread


def failure(path: str) -> str:
    """libheif's reason for refusing the HEIF at ``path``, which pillow-heif hides
    from Pillow (a truncated HEIF was "not a picture")."""
    import pillow_heif

    try:
        pillow_heif.open_heif(path)
    except Exception as e:  # noqa: BLE001 - only its words are wanted
        return " ".join(str(e).split()) or type(e).__name__  # on one line: libheif's end in a newline
    return "libheif reads it, pillow-heif does not"
