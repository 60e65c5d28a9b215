"""Damaged pictures read as far as their decoders can (``skip_damaged``): a JPEG or
PNG cut short by a download that stopped, a bit flipped on an old disk. Refused
by default, with a hint where something can be read; with the option, read with
what is missing filled grey and a warning that says what is missing. Knows nothing
of ncnn."""
from __future__ import annotations

import contextlib
import io
import logging
import struct
import threading
from typing import Callable

import numpy as np
from PIL import Image, ImageFile

from .errors import InputError, Option

log = logging.getLogger("ncnn_sr")

SKIP_DAMAGED = Option("--skip-damaged", "skip_damaged=True")

# Per thread: a folder's load workers read several pictures at once.
_asked = threading.local()

# Formats whose readers give nothing of a damaged file (libwebp, libavif, libheif
# decode whole frames) or that are read otherwise (a JPEG is closed with an end
# marker, and libjpeg fills what is missing itself: images._check_jpeg_end).
_NOT_SALVAGED = frozenset({"JPEG", "MPO", "WEBP", "AVIF", "HEIF"})
# What a decoder that ran out of data, or met damage, raises as Pillow feeds it.
RAN_OUT = (OSError, SyntaxError, EOFError, IndexError, ValueError, struct.error)


@contextlib.contextmanager
def skipping(skip: bool):
    """Within the block, this thread reads damaged pictures as far as they go
    (``skip``) or refuses them."""
    before = getattr(_asked, "skip", False)
    _asked.skip = skip
    try:
        yield
    finally:
        _asked.skip = before


def skips() -> bool:
    return getattr(_asked, "skip", False)


def found(path: str, why: str, missing: str, readable: bool = True) -> None:
    """The damage ``why`` of the picture at ``path``, whose pixels were read with
    ``missing`` (in words) missing: a warning where damaged pictures are read, else
    an InputError, naming the option where ``readable`` (something of it was read)."""
    if skips() and readable:
        log.warning("%s: %s: %s", path, why, missing)
        return
    raise refusal(path, why, readable)


def refusal(path: str, why: str, readable: bool = True) -> InputError:
    if not readable:
        return InputError(f"{path}: broken or truncated picture ({why})")
    return InputError(f"{path}: broken or truncated picture ({why}): ", SKIP_DAMAGED, " reads what can be read of it")


def load(im: Image.Image, path: str, words: Callable[[Exception], str], fatal: Callable[[Exception], bool],
         damage: str | None = None, narrowed: str | None = None) -> tuple[Image.Image, np.ndarray | None]:
    """The open picture ``im`` (at ``path``) loaded, and None; or where its decoder
    runs out of data or meets damage (``damage``, in words, known before: the
    decoder is not tried whole), as ``found`` allows, the picture opened anew with
    what its decoder decoded before, and a mask of its size, True where it wrote
    nothing: to be filled grey (its palette, if any, may have none). The decoder's
    own failure is raised where it decoded nothing, where ``fatal`` says it is no
    damage (the memory's), and for pictures Pillow reads otherwise, or whose
    decoders give nothing of a damaged file. ``words``: the failure in the words a
    refusal says it in. ``narrowed``: what the warning adds, in words, where a mask
    is given, and the pixels are the fewer bits Pillow reads (a 16-bit picture's 8)."""
    source = im.fp  # Pillow lets it go as loading ends, failing or not
    # A GIF's first frame may cover part of its canvas: no decoder writes the rest.
    box = im.dispose_extent if im.format == "GIF" else None
    # Damage known before decoding is a wrong checksum's: the decoder may read the
    # damaged data for a while, into wrong pixels, before it fails, if it fails.
    doubt = "" if damage is None else ", and those before may be wrong"
    if damage is None:
        try:
            im.load()
            return im, None
        except RAN_OUT as e:
            if not _salvaged(im) or fatal(e) or (isinstance(e, OSError) and e.errno is not None):
                raise
            failure, damage = e, words(e)
    else:
        failure = SyntaxError(damage)
    data = _contents(source, path)
    if data is None or not _salvaged(im):
        raise failure
    # Decoded over two fills, the pixels the decoder never wrote are those that
    # differ: each from its own opening, loaded to its end (a TIFF is turned upright then).
    low, high = (_decoded(Image.open(io.BytesIO(data), formats=[im.format]), top) for top in (False, True))
    unwritten = np.asarray(low) != np.asarray(high)
    if unwritten.ndim == 3:
        unwritten = unwritten.any(axis=2)
    if box is not None:
        covered = np.zeros_like(unwritten)
        covered[box[1]:box[3], box[0]:box[2]] = True
        unwritten &= covered
    if unwritten.all():
        raise failure
    if unwritten.any():
        found(path, damage, _missing(unwritten) + doubt + (f"; {narrowed}" if narrowed else ""))
    elif doubt:
        found(path, damage, "its decoder read it whole: where the damage is, its pixels may be wrong")
    else:  # a GIF's first frame is drawn over its clear colour, whatever the fill
        found(path, damage, "read as far as its data goes, the rest left clear" if low.format == "GIF" else
              "its decoder wrote every pixel before it failed")
    return low, unwritten if unwritten.any() else None


def _salvaged(im: Image.Image) -> bool:
    """Whether ``im`` is loaded as Pillow's ImageFile loads, from its tiles, and its
    decoder gives what it decoded of a damaged file: not a JPEG, which images reads
    closed with an end marker, and libjpeg fills; nor a WebP, AVIF or HEIF, whose
    decoders decode whole frames; nor an EPS (Ghostscript), nor a compressed TIFF
    (libtiff)."""
    if im.format in _NOT_SALVAGED or getattr(im, "use_load_libtiff", False):
        return False
    return type(im).load is ImageFile.ImageFile.load or im.format == "TIFF"


def _contents(source, path: str) -> bytes | None:
    """The bytes of the file ``source`` Pillow read the picture at ``path`` from
    (itself, or a mended copy in memory); None where they cannot be had again."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        source.seek(0)
        return source.read()
    if getattr(source, "name", None) == path:  # closed as the decoder failed
        with contextlib.suppress(OSError), open(path, "rb") as f:
            return f.read()
    return None


def _decoded(im: Image.Image, top: bool) -> Image.Image:
    """The picture ``im``, just opened, decoded over a picture filled with its mode's
    highest value (``top``) or its lowest, as far as its data goes: Pillow's own
    loading, which stops at the first failure, but keeps what was decoded (its
    LOAD_TRUNCATED_IMAGES, which is one setting for every thread)."""
    # Its frames counted first, as the reading counts them after: Pillow counts a
    # GIF's by seeking, and its seek back to the first frame decoded it again, failing.
    with contextlib.suppress(*RAN_OUT):
        getattr(im, "n_frames", 1)
    tiles = list(im.tile)
    im.im = Image.core.fill(im.mode, im.size, _fill(im.mode, top))
    im.load_prepare()
    read = getattr(im, "load_read", im.fp.read)
    seek = getattr(im, "load_seek", im.fp.seek)
    for name, extents, offset, args in sorted(tiles, key=lambda tile: tile[2]):
        try:
            decoder = Image._getdecoder(im.mode, name, args, im.decoderconfig)
        except OSError:  # a decoder this Pillow lacks: nothing decoded
            continue
        try:
            seek(offset)
            decoder.setimage(im.im, extents)
            if decoder.pulls_fd:
                decoder.setfd(im.fp)
                decoder.decode(b"")
                continue
            data = getattr(im, "tile_prefix", b"")
            while chunk := read(im.decodermaxblock):
                data += chunk
                used, status = decoder.decode(data)
                if used < 0:
                    break
                data = data[used:]
        except RAN_OUT:
            pass
        finally:
            decoder.cleanup()
    im.tile = []  # else reading its pixels loads it again
    with contextlib.suppress(*RAN_OUT):  # what follows the pixels (a PNG's text) is cut off
        im.load_end()
    Image.Image.load(im)
    return im


def _fill(mode: str, top: bool):
    """The highest value (``top``) or the lowest of ``mode``, as Image.core.fill takes it."""
    bands = Image.getmodebands(mode)
    value = 0 if not top else 1 if mode == "1" else 65535 if mode.startswith("I") else 255
    return (value,) * bands if bands > 1 else value


def filled(arr: np.ndarray, unwritten: np.ndarray | None) -> np.ndarray:
    """The pixels ``arr`` read from a picture with ``unwritten`` (``load``'s mask,
    None for none) mid grey there, opaque."""
    if unwritten is None or unwritten.shape != arr.shape[:2]:
        return arr
    top = np.iinfo(arr.dtype).max
    arr = arr.copy()
    arr[unwritten] = (top + 1) // 2
    if arr.shape[2] == 4:
        arr[unwritten, -1] = top
    return arr


def _missing(unwritten: np.ndarray) -> str:
    """What is missing of a picture whose unwritten pixels are ``unwritten``, in words."""
    height = unwritten.shape[0]
    rows = np.flatnonzero(unwritten.any(axis=1))
    first, last = int(rows[0]), int(rows[-1])
    if last - first + 1 == len(rows) and unwritten[first + 1:last + 1].all():
        part = ", the first in part" if not unwritten[first].all() else ""
        span = f"row {first + 1}" if first == last else f"rows {first + 1}-{last + 1}"
        return f"{span} of {height} missing{part}, filled grey"
    share = unwritten.mean() * 100
    return f"{share:.0f}% of its pixels missing (rows {first + 1}-{last + 1} of {height} in part), filled grey"
