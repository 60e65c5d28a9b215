"""What a path's name says it is, a picture, a video or a folder, without opening it.
The commands ask this as they read their flags: Pillow is loaded only where a
picture's extension is looked up, and its readers beyond the common formats' only
where those do not answer."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from .files import name_fault
from .video_options import is_video_path

# Formats Pillow registers that are no picture it can read: PDF and PALM it only
# writes, MPEG is a video whose header alone it reads, BUFR/GRIB/HDF5 are data it
# only recognises.
NOT_PICTURES = frozenset({"PDF", "PALM", "MPEG", "BUFR", "GRIB", "HDF5"})


@functools.lru_cache(maxsize=1)
def picture_suffixes() -> frozenset[str]:
    """The extensions of the pictures Pillow reads, .heic and .heif (pillow-heif's)
    among them. Those of NOT_PICTURES are left out: a folder holding them is not a
    folder of broken pictures."""
    from PIL import Image

    from . import heif

    heif.register()
    # Loads every reader of Pillow's (Image.init): some 50 ms, once a process.
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt not in NOT_PICTURES)


def is_picture_suffix(suffix: str) -> bool:
    """Whether ``suffix`` (".png") is in ``picture_suffixes()``."""
    from PIL import Image

    # Pillow's common formats (PNG, JPEG, GIF, BMP, netpbm) register their extensions
    # without the others' readers: a folder of them, or one picture, starts some 50 ms
    # sooner (a tenth of a small run) than where every reader had to be loaded.
    Image.preinit()
    fmt = Image.EXTENSION.get(suffix.lower())
    return fmt not in NOT_PICTURES if fmt is not None else suffix.lower() in picture_suffixes()


def video_by_its_output(src: str | os.PathLike, dst: str | os.PathLike | None) -> bool:
    """Whether the file ``src``, named as neither a picture nor a video (clip.nut,
    film.rmvb, tape.y4m), is a video, as ``dst`` is named as one (out.mkv): read as a
    picture, it could only be refused, and its output with it, as no picture format."""
    return (dst is not None and is_video_path(dst) and not is_picture_suffix(Path(src).suffix)
            and not is_video_path(src) and os.path.isfile(src))


def names_a_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is written as a folder's, ending in a separator or "." ("out/",
    "out/."): Path() drops both, and a missing folder became a file name."""
    return os.path.basename(os.fspath(path)) in ("", ".")


def suffix_fault(suffix: str) -> str | None:
    """Why ``suffix`` cannot be added to a file's name (the words after "suffix"), or
    None where it can."""
    if any(sep and sep in suffix for sep in (os.sep, os.altsep)) or "\0" in suffix:
        return "is added to a file's name: it cannot hold a folder separator"
    if suffix and suffix.strip(".") == "":
        return "needs a letter or digit: dots alone make names that hide or mean other files"
    fault = name_fault(f"a{suffix}.png")
    return None if fault is None else f"is added to a file's name: {fault}"  # else each picture failed to be written
