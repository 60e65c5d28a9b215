"""Reading and writing pictures with Pillow: modes, 16-bit, alpha and the metadata
that goes with them. Knows nothing of ncnn."""
from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import os
import re
import stat
import struct
import sys
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageFile, JpegImagePlugin, UnidentifiedImageError, features
from PIL.PngImagePlugin import PngInfo, iTXt

from .errors import (HintedInputError, InputError, Option, SettingError, WriteOutOfMemory, describe, file_path,
                     in_one_line, mappable, with_article)
from .files import atomic_write, check_named_as_file, file_in_the_way
from .fixed import fixed_fields
from . import apng, avif, bmp, budget, damaged, gif, heif, jpeg, jpeg2000, pnm, tiff16
from .gif import SAVE_OPTIONS as GIF_OPTIONS, to_palette
from .icc import cicp_chunks, for_format as colour_profile
from .native_stderr import captured_stderr
from .metadata import (EXIF_ORIENTATION, EXIF_RESOLUTION_FORMATS, MAX_JPEG_EXIF, MAX_JPEG_XMP, PNG_XMP_KEY,
                       RAW_XMP_KEY, app13_segment, dpi_pair, exif_body, exif_stating, exif_to_write, fitting_dpi,
                       fitting_profile, is_exif, orient, photoshop_resources, raw_profile, readable_exif, resolution,
                       sized_exif, sized_xmp, tiff_photoshop, upright_xmp, without_orientation, xmp_option)
from .path_names import NOT_PICTURES
from .cut_short import is_cut_short
from .pixels import check_image, is_grey_colour, to_eight_bit
from .signatures import (UNREAD_HEAD, WEBP_HEAD, cut_in_header, cut_riff, unread_format, webp_canvas,
                         webp_frames_reach)
from .video_options import video_kind
from .png import COLOUR_CHUNK_SIZES, PNG_COMPRESS_LEVEL, TEXT_KINDS, colour_chunks, comment_chunk, \
    cut_palette_alpha, grey_key_in_8_bits, has_damaged_late_chunk, has_keyword, has_refused_text, palette_missing, \
    png16, png_header, read_png16, text_chunks, without_damaged_late_chunks, without_refused_text, write_png8
from .png import SIGNATURE as PNG_SIGNATURE, damaged_pixels as png_damaged_pixels, keep_opened, \
    mended as mended_png, refusal as png_refusal, take_opened, walked as walked_png

log = logging.getLogger("ncnn_sr")

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "jfif": "JPEG", "jpe": "JPEG", "apng": "PNG", "webp": "WEBP",
           "gif": "GIF", "avif": "AVIF"}
# The other names of a format, as extensions: each is read, and was refused as an
# output's (-o out.jfif). An .apng is a PNG, animated where its picture is.
_SAME_AS = {"jpeg": "jpg", "jfif": "jpg", "jpe": "jpg", "apng": "png"}
# The longest side each format can hold (libjpeg's limit, WebP's 14-bit sizes, GIF's
# 16-bit ones; AVIF's is what libavif reads by default: a longer side was written
# and then refused by its readers, Pillow's and browsers').
MAX_SIDE = {"jpg": ("JPEG", 65500), "webp": ("WebP", 16383), "gif": ("GIF", 65535), "avif": ("AVIF", 32768)}
# libavif's readers refuse more pixels than this too, whatever the sides.
MAX_AVIF_PIXELS = 16384 * 16384
DEFAULT_JPEG_QUALITY = 95
# Pillow's own default, 75 (4:2:0), loses far more than jpg's default 95 does: on a
# 1024x768 x4 photo, 75 gave 35 KB at 42.0 dB PSNR, 90 (4:4:4) 89 KB at 44.7 dB,
# JPEG 95 170 KB at 45.4 dB (lossless WebP 628 KB). 90 is near JPEG 95 at half its size.
DEFAULT_AVIF_QUALITY = 90
# Modes of grey pictures: their colour is written back grey (with alpha, as LA, where
# R, G and B are equal: the engine keeps them so).
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"})
# Modes read as RGBA (alpha beside grey too: the engine has no other form of it).
ALPHA_MODES = frozenset({"RGBA", "RGBa", "PA", "LA", "La"})
# Grey that read_image gives in 16 bits (32-bit integer grey is taken to 16 bits).
_DEEP_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
# Formats whose frames are an animation. Any other's further frames are none: an MPO
# (a phone's JPEG) adds a preview or a second view of the same shot, a PSD's are the
# layers of the composite that is read, a HEIF's are a burst or a collection, whose
# primary picture (the one a phone shows, which pillow-heif opens first) stands for
# them; a TIFF's (or a DCX's) are pages, a scan's or a thumbnail, which were written
# as an animation of 0 ms frames looping for ever, or failed where two differed in size.
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF", "FLI"})
# TIFF tags: NewSubfileType, whose bit 0 marks a reduced-resolution image, and
# DNGVersion, which marks a raw photo.
_NEW_SUBFILE_TYPE, _DNG_VERSION = 254, 50706
# Formats whose further frames stand for nothing more than the first: left out
# without a word (a warning says what other formats' pages are left out).
_SILENT_FORMATS = frozenset({"MPO", "PSD", "HEIF"})


@fixed_fields("info")
@dataclass(frozen=True)
class ImageInfo:
    """What a picture was, besides its pixels, so it can be written back alike.

    ``mode`` is Pillow's mode of the file as read (``LA``, ``P``, ``CMYK``, ``I;16``…),
    but ``LA`` for a 16-bit grey+alpha PNG, which Pillow reads as ``RGBA``;
    ``exif`` has its orientation already applied to the pixels and reset to 1;
    ``icc_profile`` is None when the pixels were converted to sRGB on reading;
    ``dpi`` is the resolution the file states (dots per inch across and down the
    upright picture), None where it states none; ``xmp`` is the XMP packet, its
    orientation (``tiff:Orientation``) reset to 1 as the EXIF's is;
    ``colour_chunks`` are a PNG's gAMA, cHRM, sRGB and cICP chunks as (kind, data)
    pairs, or a HEIF's nclx colour (other than sRGB) as a cICP chunk, which a png
    written with this info carries (a jpg, webp or avif holds none: one written
    without ``icc_profile`` gets a profile stating them instead, where they say
    other than sRGB, and so does a png of a cICP, which most readers still ignore;
    an avif states a cICP in its nclx too);
    ``text_chunks`` are a PNG's text chunks (tEXt, zTXt, iTXt) but its XMP's, as
    (kind, data) pairs in the file's order: what a Stable Diffusion picture's
    "parameters" or ComfyUI's "prompt" and "workflow" say it was made with. A png
    written with this info carries them; no other format holds them (a jpg, webp,
    gif or avif is written without them);
    ``comment`` is a JPEG's comment (its COM segment), a GIF's (its comment
    extension) or a PNG's Comment text, which a jpg (up to 65533 bytes) or a gif written with this info
    carries, and a png as its Comment text chunk (where its text has none, as
    ImageMagick writes it); webp and avif have no place for it; ``photoshop`` is a JPEG's
    IPTC record (a photo agency's caption, keywords, copyright) as Photoshop image
    resources (``metadata.photoshop_resources``), or a TIFF's (its IPTC-NAA tag's, else
    its PhotoshopInfo tag's: ``metadata.tiff_photoshop``), which a jpg written with this
    info carries.
    """

    mode: str
    format: str | None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    colour_chunks: tuple[tuple[bytes, bytes], ...] = ()
    text_chunks: tuple[tuple[bytes, bytes], ...] = ()
    comment: bytes | None = None
    photoshop: bytes | None = None


def only_an_extension(path: str | os.PathLike) -> bool:
    """Whether a file name is a picture extension alone (".png", as "$NAME.png" gives
    with NAME unset), which Path reads as a name without an extension."""
    name = Path(path).name
    return name.startswith(".") and name[1:].lower() in FORMATS


def nameless(path: str | os.PathLike) -> str:
    """What to say of an output named by an extension alone (``only_an_extension``)."""
    return f"{path} is an extension without a name: name the output picture, such as out{Path(path).name}"


def no_extension(path: str | os.PathLike, extensions: str) -> str:
    """What to say of an output named without an extension, ``extensions`` being those
    to name it with: a name not there yet may be meant as a folder, made if missing; a
    file or device there cannot become one (-o notes offered notes/, -o /dev/null
    /dev/null/)."""
    folder = "" if os.path.lexists(path) else f", or write {path}{os.sep} for a folder (made if missing)"
    return f"{path} has no extension and is not a folder: name the output picture {extensions}{folder}"


def output_format(path: str | os.PathLike) -> str:
    """The format key (png, jpg, webp, gif, avif) a file name asks for; InputError otherwise."""
    ext = Path(path).suffix.lower().lstrip(".")
    if not ext and only_an_extension(path):
        raise InputError(nameless(path))
    if not ext:
        raise InputError(no_extension(path, ".png, .jpg, .webp, .gif or .avif"))
    if ext not in FORMATS:
        raise InputError(f"unsupported output format '.{ext}' for {path}: use png, jpg, webp, gif or avif")
    return _format_key(ext, path)


def named_format(path: str | os.PathLike) -> str | None:
    """The format key a file name's extension names (jpg for .jfif), else None."""
    ext = Path(path).suffix.lower().lstrip(".")
    return _SAME_AS.get(ext, ext) if ext in FORMATS else None


def format_named(fmt: str, path: str | os.PathLike) -> str:
    """The format key (png, jpg, webp, gif, avif) of a ``fmt`` argument, in any case,
    with or without its dot, for writing ``path``; a SettingError for a ``fmt`` of
    another kind or format, as for the writers' other settings (``quality=0``)."""
    # Checked as itself: read as the name "x.FMT", a wrong one was refused as the file
    # "x.bmp", which the caller never named.
    if not isinstance(fmt, str):
        raise SettingError(f"fmt must be a format's name (png, jpg, webp, gif or avif), got {describe(fmt)}")
    key = fmt.lower().removeprefix(".")
    if key not in FORMATS:
        raise SettingError(f"cannot write {path}: unsupported format {fmt!r} (fmt): use png, jpg, webp, gif or avif")
    return _format_key(key, path)


def _format_key(ext: str, path: str | os.PathLike) -> str:
    """The format key of ``ext``, one of FORMATS' keys, for writing ``path``."""
    if ext == "avif" and not features.check_module("avif"):
        # Pillow's wheels have libavif; a Pillow built without it failed each save with a KeyError.
        raise InputError(f"cannot write {path}: this Pillow was built without AVIF (libavif); "
                         "use png, jpg or webp, or install Pillow's wheel")
    return _SAME_AS.get(ext, ext)


# --- reading ---------------------------------------------------------------------------

@in_one_line  # a file name may hold a line break
def read_image(path: str | bytes | os.PathLike, skip_damaged: bool = False) -> tuple[np.ndarray, ImageInfo]:
    """A picture as an H×W×C array (C in 1, 3, 4; uint8, or uint16 where it is read in
    16 bits: 16-bit PNG, TIFF and PPM, 10- or 12-bit HEIF and AVIF, deeper JPEG 2000)
    and its ImageInfo. Animated pictures give their first frame (``frames`` says how
    many there are; 1 for an MPO, PSD or TIFF, whose other frames are no animation,
    a TIFF's pages with a warning;
    ``animation.read_frames`` reads them all). A GIF's first frame is as browsers
    show it: clear where it leaves the screen uncovered. Every failure is an
    InputError naming the file, but the memory's: a MemoryError, whoever met it
    (Pillow's readers say some as a broken file's). ``path`` is a file's path (str,
    bytes or os.PathLike), as ``write_image``'s is: a file's contents, or an open file, is an
    InputError saying what to give instead (the reader opens the file again by its
    path for its checks and deeper samples). A damaged picture (cut short, its data's
    checksum, restart markers or codes wrong) is refused, naming ``skip_damaged``
    where something of it can be read; with it, it is read as far as its decoder
    can, what is missing filled grey, with a warning saying what is missing: a JPEG,
    PNG, GIF, BMP or TIFF (a WebP's, AVIF's or HEIF's decoder gives nothing of one;
    ``read_frames`` reads an animation damaged past its first frame up to there)."""
    path = file_path(path, "read_image")
    if not isinstance(skip_damaged, (bool, np.bool_)):
        raise SettingError(f"skip_damaged must be True or False, got {describe(skip_damaged)}")
    with damaged.skipping(bool(skip_damaged)), reading(path), walked_png(path):
        return _read(path)


def _read(path: str) -> tuple[np.ndarray, ImageInfo]:
    _check_regular(path)
    with pillow_warnings():
        im, grey_alpha = _open(path)
        im, ended = _with_end_marker(im)
    with im:
        # The first frame's box, before Pillow moves on to count the frames.
        first_box = im.dispose_extent if im.format == "GIF" else None
        # Pillow turns a TIFF upright as it loads it, and drops its orientation; its
        # resolution is still the file's, across and down as the file has them.
        tiff_turn = getattr(im, "tag_v2", {}).get(EXIF_ORIENTATION, 1) if im.format == "TIFF" else 1
        if grey_alpha is not None:  # its orientation taken out: tiff16 turns it
            tiff_turn = grey_alpha.orientation
        deep_ppm = pnm.deep_samples(im)  # from its tile, which loading clears
        if deep_ppm is not None:
            pnm.decode_fast(im, deep_ppm)
        _check_not_preview(im, path)
        jpeg_read = _check_jpeg_data(im, path, ended)
        _check_tiff_data(im, path)
        _check_webp_canvas(im, path)
        # Pillow's own opening where it is the file's (not a mended copy in memory).
        opened = im.fp if getattr(getattr(im, "fp", None), "name", None) == os.fspath(path) else None
        broken = None  # what damages its pixels, known before they are decoded
        if im.format == "PNG" and (checked := png_damaged_pixels(path, opened)) is not None:
            why, broken = checked[0], checked[0] if checked[1] else None
            if broken is None:
                log.warning("%s: %s", path, why)
        # Pillow reads these 16-bit samples in 8 bits, and the readers of their 16
        # take no damaged file (16-bit grey is Pillow's I;16, read whole).
        narrowed = (im.format == "PNG" and png_header(path)[0] == 16 and im.mode != "I;16") or \
            tiff16.is_deep(im) or deep_ppm is not None
        with decoding(im, path):  # what a damaged one's decoder read, as another opening of it
            loaded, missing = damaged.load(im, path, lambda e: damage_words(path, e),
                                           lambda e: _said_out_of_memory(str(e)), broken,
                                           "read in 8 bits, not its 16: the 16-bit readers read no damaged file"
                                           if narrowed else None)
        salvaged, im = loaded is not im, loaded  # another opening: what a damaged one's decoder read
        if jpeg_read is not None:
            data, lacking = jpeg_read
            # One warning a picture: a cut one's restart markers and codes lack alike.
            if _check_jpeg_end(im, path, *jpeg_read, ended):
                pass
            elif (why := jpeg.restarts_out_of_sequence(data)) is not None:
                damaged.found(path, why, "read as libjpeg reads it on from the next restart marker, the blocks "
                                         "between grey or shifted")
            # A whole one's codes are checked: one cut short decodes no better for it.
            elif ended and lacking is None and (why := jpeg.bad_codes(data, im)) is not None:
                damaged.found(path, why, "read as libjpeg decodes on through them, the blocks from there wrong or "
                                         "shifted")
        # Loading runs outside the warnings guard (decoding is slow and the guard is
        # one at a time), where Pillow only warns of a frame that grew past the
        # limit on loading: the limit is checked again here.
        if (limit := pixel_limit()) is not None and im.width * im.height > limit:
            raise Image.DecompressionBombError(f"{im.width}x{im.height}")
        with pillow_warnings():
            frames = count_frames(im, path)
            _warn_of_pages(im, path)
            exif = readable_exif(im)
            orientation = exif.get(EXIF_ORIENTATION, 1) if exif is not None else 1
            exif_bytes = exif_to_write(im, exif)  # resets the orientation
        depth, colour_type = png_header(path) if im.format == "PNG" else (8, None)
        if colour_type == 3 and palette_missing(path):
            raise SyntaxError("PNG: palette colours without a palette (PLTE)")
        # FFmpeg reads what Pillow has no 16-bit mode for, and an APNG's first frame
        # past a default image, which is composed here in 8 bits.
        deep = depth == 16 and (im.mode in ("RGB", "RGBA") or
                                (colour_type == 0 and bool(im.info.get("default_image"))))
        deep_heif = heif.is_deep(im)
        deep_tiff = tiff16.is_deep(im)
        deep_jpeg2000 = jpeg2000.bits(path) if im.format == "JPEG2000" and im.mode in ("RGB", "RGBA") else 8
        if colour_type == 0:
            grey_key_in_8_bits(im.info, depth)
        if im.format == "PNG" and im.mode == "P" and cut_palette_alpha(im.info):
            log.warning("%s: its transparency (tRNS) has entries past the 256 colours a palette holds: "
                        "those are left out", path)
        arr, info = _to_array(im, path, frames, exif_bytes)
        if im.format == "BMP" and arr.shape[2] == 3 and (alpha := bmp.reserved_alpha(path)) is not None \
                and alpha.shape == arr.shape[:2]:
            arr, info = np.dstack([arr, alpha]), replace(info, mode="RGBA")
        elif im.format == "BMP" and (rle := bmp.rle_skipped(path)) is not None and rle[0].shape == arr.shape[:2]:
            # Browsers show the pixels an RLE BMP's codes leave unwritten clear.
            grey = arr.shape[2] == 1
            colour = np.repeat(arr, 3, axis=2) if grey else arr[:, :, :3]
            arr = np.dstack([colour, np.where(rle[0], 0, 255).astype(np.uint8)])
            info = replace(info, mode="LA" if grey else "RGBA")
        if grey_alpha is not None:
            arr = tiff16.grey_alpha_pixels(arr, grey_alpha)
            info = replace(info, mode="LA" if arr.shape[2] == 4 else "I;16")
        if missing is not None:  # the 8 bits read are kept: the deeper readers take no damage
            arr = damaged.filled(arr, missing)
            deep = deep_heif = deep_tiff = False
            deep_jpeg2000, deep_ppm = 8, None
        if first_box is not None and first_box != (0, 0, *im.size):
            # Pillow paints the canvas the first frame leaves uncovered in palette
            # colour 0, opaque unless that frame has a transparent index; browsers
            # leave it clear.
            if not salvaged:
                with open(path, "rb") as f:
                    arr = gif.first_as_shown(f.read())
            else:  # its damaged data read again would fail: the frame as read, on a clear canvas
                arr = _on_clear_canvas(arr, first_box)
        elif im.format == "PNG" and im.info.get("default_image") and not deep:
            # Pillow gives the default image, which browsers skip for the animation's
            # first frame (a 16-bit one is read from FFmpeg's first frame below).
            with open(path, "rb") as f:
                arr = apng.first_as_shown(mended_png(f.read())[0])
            if (arr[:, :, 3] == 255).all():
                arr = np.ascontiguousarray(arr[:, :, :3])
        xmp = im.info.get("xmp") or im.info.get(PNG_XMP_KEY.decode())  # a PNG's, in a tEXt chunk
        if im.format == "GIF":  # whose XMP and ICC profile Pillow does not read
            with open(path, "rb") as f:
                data = f.read()
            xmp = gif.xmp(data)
            info = replace(info, icc_profile=info.icc_profile or gif.icc(data))
        texts = text_chunks(path) if im.format == "PNG" else ()
        if not xmp and (xmp := raw_profile(im.info.get(RAW_XMP_KEY.decode()))):
            # ImageMagick's, which it and exiv2 read as the XMP: carried as the XMP,
            # its orientation reset as the EXIF's, not copied as text still saying the old.
            texts = tuple((kind, data) for kind, data in texts if data.split(b"\x00", 1)[0] != RAW_XMP_KEY)
        info = replace(info, dpi=resolution(im, exif, orientation if tiff_turn == 1 else tiff_turn),
                       xmp=upright_xmp(xmp),
                       colour_chunks=_colour_chunks(im, path),
                       text_chunks=texts,
                       comment=_comment(im), photoshop=_photoshop(im))
    if deep:
        arr = read_png16(path, 4 if arr.shape[2] == 4 else 3)
        if arr.shape[2] == 3 and colour_type == 0:
            arr = np.ascontiguousarray(arr[:, :, :1])
        if colour_type == 4:  # grey+alpha: written back so, not as colour
            info = replace(info, mode="LA")
    elif deep_heif:
        arr = heif.read16(path)
    elif deep_tiff:
        with open(path, "rb") as f:
            deep_arr = tiff16.read16(f.read())
        if deep_arr is not None and deep_arr.shape == arr.shape:
            arr = deep_arr
        else:
            log.warning("%s: a 16-bit TIFF of a layout read here in 8 bits only", path)
    elif deep_jpeg2000 > 8:
        try:
            arr = jpeg2000.read16(path, deep_jpeg2000, arr.shape[2])
        except SyntaxError as e:  # what FFmpeg's decoder lacks, OpenJPEG's (Pillow's) may have
            log.warning("%s: %s read here in 8 bits only (%s)", path,
                        with_article(f"{deep_jpeg2000}-bit JPEG 2000"), e)
    elif deep_ppm is not None:
        arr = pnm.read16(path, *arr.shape[1::-1], *deep_ppm)
    elif info.format == "AVIF" and (bits := avif.bit_depth(path)) > 8:
        # Pillow's reader gives 8 bits, where a HEIF's 10 or 12 are read in 16.
        deep_avif = avif.read16(path, arr) if arr.shape[2] == 3 else None
        if deep_avif is not None:
            arr = deep_avif
        else:
            why = {4: "its transparency is read by Pillow alone, which gives 8",
                   1: "a grey one is read by Pillow alone, which gives 8"}.get(
                       arr.shape[2], "Pillow gives 8, and FFmpeg cannot decode it as libavif does")
            log.warning("%s: %s, read here in 8 bits only (%s)", path, with_article(f"{bits}-bit AVIF"), why)
    return orient(arr, orientation), info


def _on_clear_canvas(arr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 8-bit pixels ``arr`` (H×W×C, C in 1, 3, 4) within ``box`` (left, top,
    right, bottom), as RGBA on a clear canvas of their size."""
    shown = np.zeros((*arr.shape[:2], 4), np.uint8)
    part = np.s_[box[1]:box[3], box[0]:box[2]]
    shown[part][..., :3] = arr[part][..., :3] if arr.shape[2] >= 3 else arr[part][..., :1]
    shown[part][..., 3] = arr[part][..., 3] if arr.shape[2] == 4 else 255
    return shown


def _colour_chunks(im: Image.Image, path: str) -> tuple[tuple[bytes, bytes], ...]:
    """``ImageInfo.colour_chunks`` of the open picture ``im`` (at ``path``)."""
    if im.format == "PNG":
        return colour_chunks(path)
    if im.format == "AVIF" and not im.info.get("icc_profile") and (coded := avif.coded_colour(path)):
        return cicp_chunks(*coded)
    return heif.coded_colour(im)


def _open(path: str) -> tuple[Image.Image, tiff16.GreyAlpha | None]:
    """The picture at ``path`` opened by Pillow, and where a 16-bit grey+alpha TIFF's
    samples lie in it (None for any other picture): Pillow has no mode for those,
    and opens them rewritten as 8-bit RGBA of the same bytes."""
    try:
        return open_mended(path, warn=True), None
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            if f.read(4) not in (b"II*\0", b"MM\0*"):  # no classic TIFF: not read whole
                raise
            f.seek(0)
            rewritten = tiff16.grey_alpha_as_rgba(f.read())
        if rewritten is None:
            raise
        return Image.open(io.BytesIO(rewritten[0])), rewritten[1]


def _warn_of_dropped(path: str, dropped: tuple[str, ...], warn: bool) -> None:
    if warn and dropped:
        log.warning("%s: %s left out, as libpng leaves %s out: %s", path,
                    f"{len(dropped)} damaged chunks" if len(dropped) > 1 else "a damaged chunk",
                    "them" if len(dropped) > 1 else "it", ", ".join(dropped))


def open_mended(path: str, warn: bool = False) -> Image.Image:
    """The picture at ``path`` opened by Pillow; a PNG that Pillow refuses for a
    damaged ancillary chunk before its pixels is opened without it (``png.mended``),
    as libpng and browsers show it, with a warning naming them where ``warn``; one
    with text Pillow refuses, before or after its pixels, without that text (named
    where damaged, not where only too long). An AVIF that names AVIF among its
    compatible brands alone is opened by Pillow's AVIF reader (``avif.brand_passed_by``).
    The picture header_layout opened just so, in a ``png.walked`` block, is taken as
    it is."""
    if (kept := take_opened(path)) is not None:
        return kept
    try:
        im = Image.open(path)
    except (UnidentifiedImageError, ValueError):  # a ValueError: a PNG chunk cut short, say
        # pillow-heif's reader is given to Pillow for a file that may be a HEIF, once
        # Pillow's own have refused it: the common pictures are opened once, and
        # pillow-heif is not loaded for them.
        if heif.register_for(path):
            return open_mended(path, warn)
        if avif.brand_passed_by(path):
            return _avif_by_brand(path)
        with open(path, "rb") as f:
            if f.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:  # not read whole: an unknown file may be a large video
                raise
            whole = PNG_SIGNATURE + f.read()
        data, dropped = mended_png(whole)
        if len(data) == len(whole):  # nothing left out: the refusal stands
            raise
        im = Image.open(io.BytesIO(data))  # still refused: a critical chunk is damaged too
        _warn_of_dropped(path, dropped, warn)
        return im
    # The brands are looked at only where Pillow's choice may be wrong: a file is
    # opened once more for it, which a JPEG or PNG was spared.
    if im.format == "HEIF" and avif.brand_passed_by(path):
        im.close()
        return _avif_by_brand(path)
    if im.format == "PNG":
        with walked_png(path):  # one walk answers both
            refused, damaged = has_refused_text(path), has_damaged_late_chunk(path)
    if im.format == "PNG" and (refused or damaged):
        # Pillow reads the text past the pixels only as it loads them, and would
        # refuse the picture then: it is opened without that text, which a png
        # written from it carries whole all the same where it is only long
        # (``text_chunks``); a damaged one is named. So is a damaged text or EXIF
        # there, which Pillow took as it was, checking no checksum.
        im.close()
        with open(path, "rb") as f:
            data, late = without_damaged_late_chunks(f.read())
        data, dropped = without_refused_text(data)
        _warn_of_dropped(path, late + dropped, warn)
        return Image.open(io.BytesIO(data))
    if im.format == "BMP" and (rle := bmp.rle_skipped(path)) is not None and rle[1] is not None:
        im.close()  # an RLE BMP whose bitmap ends early: read to its end, the rest clear (_read)
        return Image.open(io.BytesIO(rle[1]))
    if im.format == "TIFF":
        # Pillow (13.0) memory-maps a one-strip uncompressed grey, palette or 16-bit
        # grey TIFF opened by its path at the size its orientation turns it to, not
        # the size stored: a page turned a quarter had its rows wrapped at the wrong
        # width, scrambled without a word. Without its file's name Pillow reads the
        # strip instead, as it reads any other TIFF.
        im.filename = ""
    return im


def _comment(im: Image.Image) -> bytes | None:
    """A JPEG's or GIF's comment (the first frame's, for a GIF), or a PNG's Comment
    text (GIMP's "Created with GIMP", a JPEG's as ImageMagick writes it) in UTF-8 or
    Latin-1 as its chunk has it; None where it has none."""
    comment = im.info.get("comment") if im.format in ("JPEG", "MPO", "GIF") else None
    if im.format == "PNG" and isinstance(text := im.info.get("Comment"), str):
        comment = text.encode("utf-8" if isinstance(text, iTXt) else "latin-1", "replace")
    return comment if isinstance(comment, bytes) and comment else None


def _photoshop(im: Image.Image) -> bytes | None:
    """``ImageInfo.photoshop`` of the open picture ``im``: a JPEG's from its APP13
    segments, a TIFF's from its IPTC-NAA or PhotoshopInfo tag."""
    if im.format == "TIFF":
        return tiff_photoshop(getattr(im, "tag_v2", None))
    return photoshop_resources(segment for marker, segment in getattr(im, "applist", ()) if marker == "APP13")


def _avif_by_brand(path: str) -> Image.Image:
    from PIL import AvifImagePlugin  # present where the module is: brand_passed_by checked it
    return AvifImagePlugin.AvifImageFile(path)


@contextlib.contextmanager
def reading(path: str):
    """Failures to read the picture at ``path`` turned into InputErrors naming it."""
    try:
        yield
    except FileNotFoundError:
        # A folder's pictures listed, then the folder removed (a drive unplugged): each
        # said "file not found" alone, hundreds of lines that did not say why.
        folder = os.path.dirname(path)
        gone = f": its folder {folder} is not there" if folder and not os.path.isdir(folder) else ""
        raise InputError(f"{path}: file not found{gone}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a picture") from None
    except NotADirectoryError as e:
        there = file_in_the_way(path)
        why = f"file not found: {there} is a file, not a folder" if there else f"cannot read: {e.strerror or e}"
        raise InputError(f"{path}: {why}") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        if _is_empty(path):  # an interrupted copy or download, say: nothing to identify
            raise InputError(f"{path}: not a picture: the file is empty (0 bytes)") from None
        if heif.is_heif(path):  # by its header, and cut short: libheif (libavif for an AVIF) says where
            why = avif.failure(path) if avif.is_avif(path) and features.check_module("avif") else heif.failure(path)
            raise InputError(f"{path}: broken or truncated picture ({why})") from None
        if (reason := png_refusal(path)) is not None:  # a PNG broken before its pixels
            raise InputError(f"{path}: broken or truncated picture ({reason})") from None
        if (kind := _netpbm_kind(path)) is not None:
            raise InputError(f"{path}: {kind}") from None
        if (kind := _judged_head(path, 26, _unread_psd)) is not None:
            raise InputError(f"{path}: {kind}") from None
        if (kind := _judged_head(path, UNREAD_HEAD, unread_format)) is not None:
            raise InputError(f"{path}: {kind}") from None
        if (reason := _cut_gif(path)) is not None:  # Pillow: 'no more images in GIF file'
            raise InputError(f"{path}: broken or truncated picture ({reason})") from None
        if (reason := _header_refusal(path)) is not None:  # another format's, cut short so
            raise InputError(f"{path}: {reason}") from None
        if (reason := _cut_in_header(path)) is not None:  # too short for any reader to know it
            raise InputError(f"{path}: broken or truncated picture ({reason})") from None
        if (kind := _video_kind(path)) is not None:  # piped in, say, with no name to tell
            raise InputError(f"{path} is a video ({kind}), not a picture: upscale it with ",
                             Option("'ncnn-sr video'", "upscale_video", everywhere=True)) from None
        raise InputError(f"{path}: not a picture, or a format Pillow cannot read") from None
    except Image.DecompressionBombError as e:
        size = str(e) if re.fullmatch(r"\d+x\d+", str(e)) else _stated_size(path)  # the former: _read's own
        said = f"{size}, over {pixel_limit()}" if size else f"over {pixel_limit()}"
        raise InputError(f"{path}: too many pixels ({said}): refusing a possible decompression bomb") from None
    except OSError as e:
        if e.errno is not None:
            # The system's refusal (too many open files, an I/O error), not the file's
            # content: Pillow's own complaints about a broken picture have no errno.
            raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
        if _said_out_of_memory(str(e)) or _webp_without_room(path, e):
            # Pillow's reader out of memory, said as a file's complaint: the host's
            # memory, which later pictures would meet alike, not the file's fault.
            raise _short_of_memory(path) from None
        if "Ghostscript" in str(e):  # the file may be whole: what reads it is missing
            raise InputError(f"{path}: an EPS or PostScript picture, which Pillow reads through Ghostscript: "
                             "install Ghostscript (gs), or convert it to png") from None
        if (cut := _cut_words(path)) is None and _one_line(e).lower().startswith("unsupported"):
            # Pillow's readers say so of a variant they lack (a 64-bit BMP), and of a
            # damaged header field.
            raise InputError(f"{path}: broken or truncated picture, or a kind Pillow cannot read "
                             f"({_one_line(e)})") from None
        raise InputError(f"{path}: broken or truncated picture ({cut or _one_line(e)})") from None
    except (SyntaxError, ValueError, EOFError, TypeError, RuntimeError, IndexError, struct.error,
            ZeroDivisionError) as e:
        if isinstance(e, RuntimeError) and _said_out_of_memory(str(e)):  # libavif's, as OSError's above
            raise _short_of_memory(path) from None
        # Pillow's plugins say "broken" in these too: a TIFF frame without its size
        # (TypeError), a DDS of an unknown pixel format (NotImplementedError, a
        # RuntimeError), an AVIF libavif cannot decode (RuntimeError), a GIF cut short
        # between two frames (IndexError, reading a byte past its end) or inside a
        # frame's image descriptor (struct.error, counting the frames), an animated
        # AVIF whose track's timescale is 0 (ZeroDivisionError, timing its frames).
        raise InputError(f"{path}: broken or truncated picture ({_cut_words(path) or _one_line(e)})") from None


# Pillow's words for its decoders' statuses, as its versions say them (the status
# named, or its number): out of memory (IMAGING_CODEC_MEMORY, -9: zlib's, say), and
# broken data (-2), which is what libjpeg's out of memory comes to as well.
_DECODER_OUT_OF_MEMORY = re.compile(r"(out of memory( error)?|decoder error -9) when reading image file")
_DECODER_BROKEN = re.compile(r"(broken data stream|decoding error|decoder error -2) when reading image file")
# libavif's words for AVIF_RESULT_OUT_OF_MEMORY, after what failed ("Pixel allocation
# failed: Out of memory").
_LIBAVIF_OUT_OF_MEMORY = re.compile(r": Out of memory$")
# libavif's words where its AV1 decoder (dav1d) failed, for broken data or for want
# of memory for its frames.
_AV1_FAILED = "Decoding of color planes failed"


def _short_of_memory(path: str) -> MemoryError:
    """The error of a read of ``path`` that the memory fell short of, whoever said so."""
    return MemoryError(f"{path}: not enough memory to read it")


def _said_out_of_memory(words: str) -> bool:
    """Whether a reader's complaint ``words``, with no errno, says it ran out of memory."""
    return bool(_DECODER_OUT_OF_MEMORY.fullmatch(words) or _LIBAVIF_OUT_OF_MEMORY.search(words))


def _room_for(*sizes: int) -> bool:
    """Whether blocks of ``sizes`` bytes can be had now, beside what the process
    holds: asked of the allocator, and given back untouched."""
    try:
        blocks = [np.empty(size, np.uint8) for size in sizes]
    except MemoryError:
        return False
    del blocks
    return True


@contextlib.contextmanager
def decoding(im: Image.Image, path: str):
    """A failure to decode ``im``, read from ``path``, that was the memory's turned
    into a MemoryError naming the file: judged while ``im`` and what it holds are as
    they were when the decoder failed (closing it frees its picture)."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        if getattr(e, "errno", None) is None and not _room_to_decode(im, str(e)):
            raise _short_of_memory(path) from None
        raise


def _room_to_decode(im: Image.Image, words: str) -> bool:
    """Whether the memory the decoder of ``im`` takes can be had now, where it failed
    saying ``words``: False where it cannot, and the decoder's failure was that (or
    said so). A progressive JPEG's decoder (libjpeg) holds the coefficients of the
    whole picture, 2 bytes a sample of each channel at its sampling, beside Pillow's
    picture, and where it cannot get them Pillow says "broken data stream"; an AVIF's
    AV1 decoder its frames (a 4:2:0 one at least, 1.5 bytes a pixel) before libavif's
    RGBA (4). libwebp decodes a WebP's frame into its canvas, and where it cannot
    get the frame's memory beside it Pillow says "failed to read next frame", as of
    a broken frame: a lossless frame's is the most, its pixels and 17 rows more, 4
    bytes a pixel, as wide as the canvas at most (asked for as one block: one a bit
    smaller may fit where a frame read before was freed). True where nothing is known."""
    if _said_out_of_memory(words):
        return False
    if im.format == "WEBP" and words == "failed to read next frame":
        return _room_for((im.height + 17) * im.width * 4)
    if im.format == "AVIF" and words.endswith(_AV1_FAILED):
        return _room_for(im.width * im.height * 3 // 2, im.width * im.height * 4)
    layers = getattr(im, "layer", None)
    if im.format != "JPEG" or not im.info.get("progressive") or not layers or not _DECODER_BROKEN.fullmatch(words):
        return True
    wide, high = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    blocks = sum(math.ceil(im.width * across / wide / 8) * math.ceil(im.height * down / high / 8)
                 for _, across, down, _ in layers)
    return _room_for(blocks * 64 * 2)


def _webp_without_room(path: str, e: OSError) -> bool:
    """Whether Pillow's WebP reader failed at ``path`` with ``e`` for want of memory:
    libwebp's decoder takes two canvases of 4 bytes a pixel as it is made, and
    Pillow says "could not create decoder object" where it cannot be, as of a WebP
    it cannot parse. A whole file whose canvases cannot be had now failed for that."""
    if str(e) != "could not create decoder object" or _cut_riff(path) is not None:
        return False
    canvas = _judged_head(path, WEBP_HEAD, lambda head, size: webp_canvas(head))
    return canvas is not None and not _room_for(canvas[0] * canvas[1] * 4, canvas[0] * canvas[1] * 4)


def _video_kind(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return video_kind(f.read(65536))  # a Matroska file's tracks may come a few KB in
    except OSError:
        return None


def damage_words(path: str, e: Exception) -> str:
    """What a reader's failure ``e`` says of the damage of the picture at ``path``,
    as a refusal words it."""
    return _cut_words(path) or _one_line(e)


def _cut_riff(path: str) -> str | None:
    """``cut_riff``'s words for the file at ``path``."""
    return _judged_head(path, 12, cut_riff)


def _cut_words(path: str) -> str | None:
    """Where the file at ``path`` is cut short, in words, for a WebP or other RIFF
    file or a GIF: Pillow's own words were of its reading ('index out of range')."""
    return _cut_riff(path) or _cut_gif(path)


def _cut_gif(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            if f.read(6) not in (b"GIF87a", b"GIF89a"):
                return None
            f.seek(0)
            data = f.read()
        return gif.cut_short(data) or gif.damaged_image(data)
    except OSError:
        return None


def _cut_in_header(path: str) -> str | None:
    return _judged_head(path, 64, lambda head, size: cut_in_header(head))


def _judged_head(path: str, count: int, judge: Callable[[bytes, int], str | None]) -> str | None:
    """``judge(the first count bytes, the file's size)`` of the file at ``path``; None
    where it cannot be read."""
    try:
        with open(path, "rb") as f:
            return judge(f.read(count), os.fstat(f.fileno()).st_size)
    except OSError:
        return None


# Photoshop's colour modes, by their number in a PSD's header.
_PSD_COLOURS = {0: "bitmap", 1: "grey", 2: "palette", 3: "RGB", 4: "CMYK", 7: "multichannel", 8: "duotone", 9: "Lab"}


def _unread_psd(head: bytes, size: int) -> str | None:
    """What to say of a whole PSD (or PSB) header ``head`` that Pillow cannot read:
    it reads 8-bit (and 1-bit) PSDs alone, and Photoshop saves 16 and 32 bits a
    sample too; None for any other file."""
    if len(head) < 26 or head[:4] != b"8BPS":
        return None
    version, depth, colour = struct.unpack(">H", head[4:6])[0], *struct.unpack(">HH", head[22:26])
    if version == 2:
        return "a PSB (Photoshop's large document format), which Pillow cannot read: save it as a png or tiff"
    if version != 1 or depth not in (16, 32) or colour not in _PSD_COLOURS:
        return None
    kind = f"{depth}-bit (float)" if depth == 32 else f"{depth}-bit"
    return (f"a {kind} {_PSD_COLOURS[colour]} PSD, which Pillow cannot read (it reads 8-bit ones): "
            "save it as a 16-bit png or tiff")


def _netpbm_kind(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return pnm.unread_kind(f.read(3))
    except OSError:
        return None


def _readers_taking(f):
    """(format, reader) for each of Pillow's readers whose check takes the first bytes
    of the open file ``f``, which is rewound for each."""
    prefix = f.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            known = accept is not None and accept(prefix)
        except Exception:  # noqa: BLE001 - a check that fails on these bytes knows them not
            continue
        if known and not isinstance(known, str):  # a str: Pillow lacks its library
            f.seek(0)
            yield fmt, factory


def _header_refusal(path: str) -> str | None:
    """Why the reader of the format whose signature starts the file at ``path``
    refuses it, as "broken or truncated picture (...)": a JPEG cut short between two
    header segments, a GIF inside its palette, a TIFF before its directory (written
    last) have their format's first bytes, but Pillow, whose reader refused them,
    says no format fits. Where the reader's words are not of a header cut short, the
    file may be whole, of a kind the reader lacks: the reason says so too. None where
    no reader knows the file's first bytes."""
    try:
        with open(path, "rb") as f:
            for fmt, factory in _readers_taking(f):
                if fmt in NOT_PICTURES:
                    continue
                try:
                    with pillow_warnings():
                        factory(f, path).close()
                except Exception as e:  # noqa: BLE001 - only its words are wanted
                    words = _one_line(e)
                    if isinstance(e.__cause__, struct.error):  # a field past the end
                        return f"broken or truncated picture ({fmt}: its header is cut short)"
                    if words == "not identified by this driver":  # a header read to its end without a size
                        return f"broken or truncated picture ({fmt}: no size in its header)"
                    return f"broken or truncated picture, or a kind of {fmt} Pillow cannot read ({words})"
                return None
    except OSError:
        return None
    return None


def _stated_size(path: str) -> str | None:
    """The "WxH" the header of the picture at ``path`` states, read by the first of
    Pillow's readers that takes it, without Image.open's pixel limit (which refused
    it); None where none does."""
    try:
        with open(path, "rb") as f:
            for _, factory in _readers_taking(f):
                try:
                    with pillow_warnings(), factory(f, path) as im:
                        return f"{im.width}x{im.height}"
                except Exception:  # noqa: BLE001 - the next reader may take it
                    continue
    except OSError:
        pass
    return None


def _one_line(e: Exception) -> str:
    """A decoder's complaint on one line: libheif's end in a newline."""
    return " ".join(str(e).split())


def one_size(paths, most: int = 500) -> tuple[int, int] | None:
    """The size (height, width, either way round) that the first ``most`` of
    ``paths`` all have, from their headers alone; None as soon as two differ or one
    cannot be read."""
    found = None
    for path in paths[:most]:
        size = header_size(path)
        if size is None or (found is not None and tuple(sorted(size)) != found):
            return None
        found = tuple(sorted(size))
    return found


@in_one_line
def check_picture(path, skip_damaged: bool = False) -> None:
    """The InputError reading the picture at ``path`` would end in, found from its
    header (missing, empty, not a picture, a header broken or of too many pixels), or
    for a file whose end is missing (``is_cut_short``: a download cut short) by
    reading it whole; nothing for a picture that looks whole. For a run of one
    picture, before the devices and the model: their notices came before its error.
    ``skip_damaged``: as ``read_image``'s."""
    path = file_path(path, "check_picture")
    try:
        with reading(path):
            _check_regular(path)
            with pillow_warnings():
                open_mended(path).close()
    except InputError:
        # Our own readers take some that Pillow's header refuses (a 16-bit grey and
        # alpha TIFF): the read says whether the picture is broken.
        with _unsaid_in_this_thread():
            read_image(path, skip_damaged)
        return
    if is_cut_short(path):
        with _unsaid_in_this_thread():  # a reader may take it whole
            read_image(path, skip_damaged)  # its failure, in the words a read says it


class _OtherThreads(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextlib.contextmanager
def _unsaid_in_this_thread():
    """Within the block, what this thread logs on the package's logger is left
    unsaid; other threads' is said. For a read made for its error alone: a picture
    read whole and kept (a progressive JPEG cut between scans) is read again by the
    run, which warns of it, and the warning came twice."""
    unsaid = _OtherThreads()
    log.addFilter(unsaid)
    try:
        yield
    finally:
        log.removeFilter(unsaid)


def header_size(path) -> tuple[int, int] | None:
    """The (height, width) the header of the picture at ``path`` states, before any
    turn its orientation asks for; None where it cannot be read (the picture fails
    later, in its own words)."""
    try:
        # A FIFO put in a listed picture's place would block the open until a writer came.
        _check_regular(path)
        with pillow_warnings():
            im = open_mended(path)
        with im:
            return im.height, im.width
    except Exception:  # noqa: BLE001
        return None


def upright_sizes(path) -> tuple[tuple[int, int], ...]:
    """The (height, width) the picture at ``path`` has once read upright, from its
    header: one size where its turn is known before decoding, both ways round where
    it is not (a PNG's EXIF may follow its pixels, which Pillow reads only then);
    () where the header cannot be read (the picture fails later, in its own words)."""
    return header_layout(path)[0]


def header_layout(path) -> tuple[tuple[tuple[int, int], ...], str | None, int]:
    """``upright_sizes(path)``, the Pillow mode the header states ("RGBA" where it
    states a transparent colour, as a PNG's tRNS; None where it cannot be read) and
    the bytes a sample read_image gives at least: 2 for 16-bit grey and what is read
    in 16 bits (``_read_deep``), else 1. What a result takes in memory is counted
    from these before the pixels are read."""
    try:
        _check_regular(path)  # as header_size
        with pillow_warnings(), walked_png(path):
            im = kept = open_mended(path)
            try:
                size, mode = (im.height, im.width), im.mode
                if "transparency" in im.info and mode not in ALPHA_MODES:
                    mode = "RGBA"  # as _to_array reads it
                depth, colour_type = png_header(path) if im.format == "PNG" else (8, None)
                deep = mode in _DEEP_GREY_MODES or (depth == 16 and colour_type != 3) or _read_deep(im, path)
                itemsize = 2 if deep else 1
                if im.format == "PNG" and "exif" not in im.info:
                    # Opened by its name alone (no text Pillow refuses, nothing mended)
                    # and looked at no more than a new opening: in a block for the
                    # read that follows (as the loader's), that read takes it, where
                    # Pillow opened each picture twice.
                    if im.filename == os.fspath(path) and keep_opened(path, im):
                        kept = None
                    return (size, size[::-1]), mode, itemsize
                # Pillow states a TIFF's size upright already, and turns it as it loads it.
                exif = readable_exif(im) if im.format != "TIFF" else None
            finally:
                if kept is not None:
                    kept.close()
    except Exception:  # noqa: BLE001
        return (), None, 1
    turned = exif is not None and exif.get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)  # a quarter turn
    return (size[::-1] if turned else size,), mode, itemsize


def _read_deep(im: Image.Image, path: str) -> bool:
    """Whether read_image reads the colour of the open, not yet loaded, picture ``im``
    (at ``path``) in 16 bits, told from its header alone: a 16-bit TIFF, JPEG 2000 or
    PPM, a 10- or 12-bit HEIF. Counted as 8 bits, a large one was refused for its
    memory only once its pixels were read (minutes, GBs). Not a deep AVIF: FFmpeg
    reads it in 16 bits only where its picture is Pillow's, which a grid of tiles (a
    large one, often) is not. A deep JPEG 2000 is counted in 16 bits though one
    FFmpeg cannot decode is read in 8: what its header cannot tell, and rare."""
    if im.format == "JPEG2000":
        return im.mode in ("RGB", "RGBA") and jpeg2000.bits(path) > 8
    return heif.is_deep(im) or tiff16.reads_deep(im) or pnm.deep_samples(im) is not None


def frame_count(path) -> int:
    """How many frames read_image says ``path`` has (``ImageInfo.frames``), without
    decoding it; 1 for a picture that cannot be read (it fails later, in its own words)."""
    try:
        _check_regular(path)  # as header_size
        with pillow_warnings():
            im = open_mended(path)
            with im:
                return count_frames(im, path)
    except Exception:  # noqa: BLE001
        return 1


# What an animated WebP is to ``ncnn-sr video`` (``animated_webp``).
ANIMATED_WEBP = "an animated WebP, whose frames FFmpeg cannot decode into a video"


def animated_webp(path) -> bool:
    """Whether ``path`` is an animated WebP, whose frames FFmpeg's WebP decoder, of
    still ones alone, does not decode: ``ncnn-sr video`` cannot read it. Never where
    the FFmpeg PyAV carries reads them (``ffmpeg_reads_animated_webp``)."""
    if ffmpeg_reads_animated_webp():
        return False
    try:
        _check_regular(path)  # as frame_count
        with pillow_warnings():
            im = open_mended(path)
            with im:
                return im.format == "WEBP" and count_frames(im, path) > 1
    except Exception:  # noqa: BLE001 - one that cannot be read fails later, in its own words
        return False


def ffmpeg_reads_animated_webp() -> bool:
    """Whether the FFmpeg PyAV carries has a reader of animated WebP (webp_anim, from
    FFmpeg 9, in PyAV 19), which makes a video of one as of a GIF: FFmpeg 8 (PyAV 18)
    read it as a still WebP it could not decode. False without PyAV."""
    try:
        import av  # only for an animated WebP named as a video's input or output
    except ImportError:
        return False
    return "webp_anim" in av.formats_available


def _check_not_preview(im: Image.Image, path: str) -> None:
    """InputError where the open TIFF ``im`` (at ``path``) starts with a reduced-
    resolution image (NewSubfileType bit 0): a raw photo's DNG starts with its
    preview, its raw data in sub-directories Pillow does not read, and the preview
    was upscaled and written as the photo."""
    tags = getattr(im, "tag_v2", {}) if im.format == "TIFF" else {}
    kind = tags.get(_NEW_SUBFILE_TYPE, 0)
    if not isinstance(kind, int) or not kind & 1:
        return
    why = ("it is a raw photo (DNG), which is not read here: develop it to a 16-bit TIFF or PNG first "
           "(darktable, RawTherapee, dcraw -6 -T)" if _DNG_VERSION in tags else "save the picture on its own first")
    raise InputError(f"{path}: its first image is {with_article(f'{im.width}x{im.height}')} preview, not the picture: "
                     f"{why}")


def _with_end_marker(im: Image.Image) -> tuple[Image.Image, bool]:
    """The open picture ``im``, and whether its data ends as it should: a JPEG whose
    last scan's data runs to the file's end (``jpeg.unended``) reopened with an end
    marker after it, which Pillow refused as truncated whether the picture was whole
    or cut short; whole, it is read, and cut short, refused in the words of one cut
    and closed with an end marker. Read from the file Pillow has open."""
    if im.format not in ("JPEG", "MPO"):
        return im, True
    f = im.fp
    where = f.tell()
    try:
        f.seek(-min(2, f.seek(0, os.SEEK_END)), os.SEEK_END)
        if f.read(2) == b"\xff\xd9":  # most JPEGs: not read whole for it
            return im, True
        f.seek(0)
        closed = jpeg.unended(f.read())
    finally:
        f.seek(where)
    if closed is None:
        return im, True
    im.close()
    return Image.open(io.BytesIO(closed)), False


def _check_jpeg_data(im: Image.Image, path: str, ended: bool = True) -> tuple[bytes, tuple[str, bool] | None] | None:
    """The bytes of the open JPEG ``im`` (at ``path``) and what its scans lack
    (``jpeg.missing_scans``, for _check_jpeg_end), None for another format;
    InputError where it claims far more pixels than its data can hold, or its data
    stops at an end marker before scans of all its components: libjpeg would read it
    as a picture of the claimed size, grey where the data ran out, with no error,
    where one cut short before its end is refused as truncated, as other formats
    are (where damaged pictures are read, ``damaged.skipping``, read with a warning
    instead, where a scan was read). A progressive one lacking only its last bits
    or bands is read with a warning. Read from the file Pillow has open, left where
    it was; ``ended``: false where that file had no end marker of its own
    (``_with_end_marker``)."""
    if im.format not in ("JPEG", "MPO"):
        return None
    f = im.fp
    where = f.tell()
    try:
        size = f.seek(0, os.SEEK_END)
        reason = jpeg.shortfall(f, size)
        f.seek(0)
        data = f.read()
    finally:
        f.seek(where)
    missing = jpeg.missing_scans(data, ended) if reason is None else None
    if reason is not None:
        raise InputError(f"{path}: broken or truncated picture ({reason})")
    if missing is not None and missing[1]:  # libjpeg decodes a component without a scan grey
        damaged.found(path, missing[0], "the components its data lacks are grey", readable=jpeg.scans(data) > 0)
    return data, missing


# The most a byte of a TIFF's compressed data can grow to, by its compression (the
# Compression tag's value): Deflate (a length of 258 in two bits of Huffman code) and
# PackBits (a run of 128 in two bytes). Others (LZW's, JPEG's) bound it less simply.
_TIFF_MOST_GROWTH = {8: ("Deflate", 1032), 32946: ("Deflate", 1032), 32773: ("PackBits", 64)}


def _check_tiff_data(im: Image.Image, path: str) -> None:
    """InputError where the open TIFF ``im`` (at ``path``) claims far more pixels than
    its strips' or tiles' compressed bytes can hold: a damaged width had Pillow (or
    tiff16) allocate the picture claimed, 777 MB for 823 bytes, before libtiff failed."""
    tags = getattr(im, "tag_v2", None)
    if im.format != "TIFF" or tags is None or (growth := _TIFF_MOST_GROWTH.get(tags.get(259))) is None:
        return
    counts = tags.get(325, tags.get(279))  # TileByteCounts, else StripByteCounts
    bits = tags.get(258, (1,))
    counts, bits = (x if isinstance(x, tuple) else (x,) for x in (counts or (), bits))
    if not counts or not all(isinstance(n, int) and n >= 0 for n in counts + bits):
        return  # Pillow's own refusal says it
    planes = len(bits) if tags.get(284, 1) == 2 else 1  # separate planes: a row of each sample
    row_bits = im.width * sum(bits) // planes
    claimed = im.height * planes * -(-row_bits // 8)
    name, most = growth
    if claimed > sum(counts) * most + most:  # a last byte's worth to spare
        raise InputError(f"{path}: broken or truncated picture (TIFF: its header claims {im.width}x{im.height} "
                         f"pixels, far more than its {sum(counts)} bytes of {name} data can hold)")


# An animation's canvas this many times the part its frames reach, and this large,
# is damage: the rest could only ever show its background.
_BARE_CANVAS_TIMES = 16
_BARE_CANVAS_PIXELS = 1 << 24


def _check_webp_canvas(im: Image.Image, path: str) -> None:
    """InputError where the open animated WebP ``im`` (at ``path``) has a canvas far
    larger than its frames reach: Pillow loads a canvas row in 64 kB reads, each
    copying the row read so far, and a 634-byte file whose canvas was damaged to
    8912907x9 took 81 s and 2.5 GB to read."""
    if im.format != "WEBP" or im.width * im.height <= _BARE_CANVAS_PIXELS or not getattr(im, "is_animated", False):
        return
    with open(path, "rb") as f:
        reach = webp_frames_reach(f.read())
    if reach is None:
        return
    width, height = min(reach[0], im.width), min(reach[1], im.height)
    if im.width * im.height > _BARE_CANVAS_TIMES * width * height:
        raise InputError(f"{path}: broken or truncated picture (WebP: its header claims a {im.width}x{im.height} "
                         f"canvas, of which its frames cover no more than {width}x{height})")


def _check_jpeg_end(im: Image.Image, path: str, data: bytes, missing: tuple[str, bool] | None,
                    ended: bool = True) -> bool:
    """InputError where the JPEG ``im`` (at ``path``, of bytes ``data``, whose scans
    lack ``missing``: _check_jpeg_data's walk of its markers, not done again), just
    loaded, has blocks its data ran out before, at an end marker: libjpeg fills them
    with grey (leaves them without a progressive one's last bits), without an error.
    Decoded again, which tells, only where it ends in that grey or is progressive: a
    progressive one's last scan, half of its bytes or more, leaves no trace in its
    pixels. A progressive one whose scans stop, whole, before the last bits of its
    coefficients is read with a warning: it may be made so. Where damaged pictures
    are read (``damaged.skipping``), one whose data ran out is read with a warning
    instead of the InputError, where something of it was read: True then."""
    # A sequential one cut inside its last MCU and closed with an end marker ends in
    # no grey (libjpeg decodes the rest of that MCU from zero bits) and is read
    # without a word: its bottom-right MCU alone is wrong, and a cut lands there once
    # in as many as the picture has MCUs (every cut of the last 95 bytes of a
    # 640x480 photo's 119 KB, 1200 MCUs). Only a second decode tells (0.15 s of CPU
    # a 12 MP picture; two at 1/8 scale cost as much); Pillow passes on no libjpeg
    # warning ("premature end of data segment").
    if missing is not None and missing[1]:
        return True  # read with damaged.skipping, as _check_jpeg_data warned
    if ended and not (im.info.get("progressive") or jpeg.ends_grey(im)):
        return False  # one without its end marker is decoded again whatever its end: a cut may leave no grey
    if (at := jpeg.run_out_at(data, im, ended)) is not None:
        # From the block the data ran out at, libjpeg leaves a sequential one's
        # blocks grey, a progressive one's without its later scans' detail.
        progressive = bool(im.info.get("progressive"))
        lost = "read with less detail or grey" if progressive else "missing, filled grey"
        damaged.found(path, f"JPEG: its data {jpeg.stops(ended)} before its last blocks",
                      f"rows {at[0] + 1}-{im.height} of {im.height}{', the first in part,' * (at[1] > 0)} {lost}",
                      readable=at != (0, 0) or (progressive and jpeg.scans(data) > 1))  # a scan whole
        return True
    if missing is not None:  # whole components are all there
        log.warning("%s: %s (%s): read with less detail", path, missing[0],
                    "cut short, or made so" if ended else "cut short, with no end marker")
    return False


def _warn_of_pages(im: Image.Image, path: str) -> None:
    """Warns that only the first page of the open picture ``im`` (at ``path``) is
    read, where it has others that are no animation (a TIFF's, a DCX's). Counting
    them reads each page's header: one that cannot be read costs a page that is not
    read anyway, not the picture, and Pillow, left on it, is taken back to the first."""
    if im.format in _ANIMATED_FORMATS | _SILENT_FORMATS:
        return
    try:
        pages = getattr(im, "n_frames", 1)
    except (SyntaxError, ValueError, EOFError, TypeError, IndexError, struct.error, OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:  # the system's refusal: reading's words
            raise
        im.seek(0)
        log.warning("%s: %s whose pages after the first cannot be read: reading the first only", path,
                    with_article(im.format))
        return
    if pages > 1:
        log.warning("%s: %s of %d pages: reading the first only", path, with_article(im.format), pages)


def count_frames(im: Image.Image, path: str) -> int:
    """The frames of the open picture ``im`` (at ``path``) as ``ImageInfo.frames``
    counts them. A GIF's are those ``read_frames`` composes, which Pillow's count
    (still taken: it finds a file cut short) can leave out, so that the memory
    budgeted for an animation was that of far fewer frames than were read."""
    frames = getattr(im, "n_frames", 1) if im.format in _ANIMATED_FORMATS else 1
    if im.format == "GIF":
        with open(path, "rb") as f:
            frames = gif.frame_count(f.read())
    elif im.format == "PNG" and frames > 1 and im.info.get("default_image"):
        # Pillow counts an APNG's default image, which is no frame of its animation
        # when it has no fcTL: read_frames leaves it out.
        frames -= 1
    return frames


# warnings.catch_warnings swaps the process's filter list on entry and back on exit:
# two load workers inside it at once left filters behind, or lifted the bomb check
# for the other while it opened a picture. One at a time, and never while decoding.
_WARNINGS_LOCK = threading.Lock()


def pixel_limit() -> int | None:
    """The most pixels a picture may have: Pillow's own refusal, twice its
    MAX_IMAGE_PIXELS (179 megapixels); None where that is lifted."""
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None


@contextlib.contextmanager
def pillow_warnings():
    """Pillow's warnings as reading wants them: a possible decompression bomb left to
    Pillow's limit, notes on a partly corrupt EXIF block dropped (what could be read is
    kept)."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        # Pillow warns from MAX_IMAGE_PIXELS, half its limit: raised, that refused
        # 100-megapixel camera photos (11648x8736), which are no bomb; printed, it
        # would be a warning about nothing the user can change.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")
        yield


# What each kind of file that is not a regular one is called in messages.
_SPECIAL_KINDS = ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                  (stat.S_ISSOCK, "a socket"))


def _special_kind(mode: int) -> str:
    return next((k for test, k in _SPECIAL_KINDS if test(mode)), "a special file")


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is, in words ("a pipe (FIFO)"), where it is neither a regular file
    nor a folder (links followed); None otherwise, and where it cannot be looked at."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else _special_kind(mode)


def _check_regular(name: str) -> None:
    """InputError unless ``name`` is a regular file (or a link to one). Checked by
    stat, which opens nothing: opening a FIFO blocks until a writer comes, and a
    device such as /dev/zero has no end."""
    mode = os.stat(name).st_mode  # FileNotFoundError, PermissionError: read_image's words
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(name)
    if not stat.S_ISREG(mode):
        raise InputError(f"{name}: not a picture: it is {_special_kind(mode)}, not a regular file")


def _is_empty(path: str | os.PathLike) -> bool:
    # Read, not stat: /proc files say 0 bytes and still have content.
    try:
        with open(path, "rb") as f:
            return not f.read(1)
    except OSError:
        return False


def _to_array(im: Image.Image, name: str, frames: int, exif: bytes | None) -> tuple[np.ndarray, ImageInfo]:
    """The pixels as read (``read_image`` turns them upright) and their ImageInfo."""
    mode, fmt = im.mode, im.format
    icc = im.info.get("icc_profile") or None
    if mode in _DEEP_GREY_MODES:
        arr = np.asarray(im)
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high > 65535:
            raise InputError(f"{name}: 32-bit integer pixels from {low} to {high}, past the 16-bit range "
                             f"(0 to 65535), {pnm.FLOAT_ADVICE}")
        grey = arr.astype(np.uint16)[:, :, None]
        key = im.info.get("transparency")
        if isinstance(key, int):  # a PNG's tRNS grey level, which Pillow leaves aside at 16 bits
            grey = _keyed_to_rgba(grey, key)
        return grey, ImageInfo(mode, fmt, icc, exif, frames)
    if mode == "CMYK":
        im = _cmyk_to_rgb(im, icc)
        icc = None
    elif mode in ("LA", "La", "PA", "RGBa") or (mode in ("P", "1", "L", "RGB") and "transparency" in im.info):
        # A PNG's tRNS chunk makes one colour (or grey) transparent: that is alpha too.
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "RGB", "RGBA"):
        if mode == "F":
            what = "a grey PFM (32-bit float pixels)" if fmt == "PPM" else "32-bit float pixels"
            raise InputError(f"{name}: {what}, {pnm.FLOAT_ADVICE}")
        im = im.convert("RGB")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr, ImageInfo(mode, fmt, icc, exif, frames)


def _keyed_to_rgba(grey: np.ndarray, key: int) -> np.ndarray:
    """16-bit grey whose ``key`` level is transparent, as 16-bit RGBA (the engine's
    only form of alpha)."""
    alpha = np.where(grey == key, 0, 65535).astype(np.uint16)
    return np.concatenate([grey, grey, grey, alpha], axis=2)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK through its own ICC profile to sRGB when it has one, else Pillow's naive
    conversion.

    A CMYK JPEG's samples are taken as Adobe's inverted ones (0 for full ink), Adobe
    (APP14) marker or not, as Pillow reads them: so do libjpeg-turbo's djpeg,
    ImageMagick, Firefox and Chrome, where libvips alone reads a JPEG without the
    marker as plain ink. One of plain ink without it comes out dark, as in most
    viewers; one whose marker a metadata stripper took, as it did with it."""
    if icc:
        # Here, not at the top: littleCMS's binding, for a CMYK picture with a profile
        # alone, was a hundredth of every command's start.
        from PIL import ImageCms

        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass
    return im.convert("RGB")


# --- writing ---------------------------------------------------------------------------

@in_one_line
def write_image(path: str | bytes | os.PathLike, image: np.ndarray, info: ImageInfo | None = None,
                fmt: str | None = None, quality: int | None = None, metadata: bool = True) -> None:
    """Write an H×W×C uint8/uint16 array as png, jpg, webp, gif or avif (``fmt``, else
    from the file name), keeping ICC, EXIF, XMP and the resolution from ``info`` when
    ``metadata`` is true, where the format holds them (webp and avif state the
    resolution in their EXIF, made where there is none: ``metadata.exif_stating``;
    gif none of them), and a PNG's text chunks in a png alone. JPEG holds at most MAX_JPEG_EXIF bytes of EXIF and
    MAX_JPEG_XMP of XMP (``ncnn_sr.metadata``): a larger EXIF is an InputError, a
    larger XMP packet is left out of a jpg without a word (measured as written, its
    stated size the output's: ``metadata.sized_xmp``; the commands warn of it).

    The file appears whole or not at all: it is written under a temporary name in the
    same folder, then renamed. ``quality`` (1-100) applies to jpg, webp and avif; webp
    without a quality is lossless, avif is DEFAULT_AVIF_QUALITY. jpg, webp, gif and
    avif are 8-bit: 16-bit pixels are written as the nearest 8-bit. JPEG cannot hold
    alpha: that is an InputError. Grey stays grey: with ``info`` of a grey picture,
    RGBA whose R, G and B are equal is written as grey with alpha, and any other keeps
    its colour.
    GIF is 8-bit with a palette of 255 colours (``gif.to_palette``): alpha is cut to
    transparent or opaque.
    Writing that needs more memory than is available is an InputError before it
    begins, and one that runs out of it all the same (its encoder's words for that
    included) a WriteOutOfMemory, an InputError; calls in other threads share that
    memory, one waiting for those in progress where it would not fit beside them
    (``budget.WRITERS``).
    """
    write_still(path, image, info, fmt, quality, metadata, "write_image")


def write_still(path, image, info, fmt, quality, metadata, what: str) -> None:
    """``write_image``, its refusals naming ``what`` as the function called
    (``write_frames`` writes one frame through this)."""
    path, fmt, quality = checked_write(path, fmt, quality, info, what)
    image = check_image(image)
    check_fits(image, fmt, path)
    info = sized(checked_metadata(info, metadata, fmt, path), image)
    height, width = image.shape[:2]
    need = write_bytes(height, width, image.shape[2] if image.ndim == 3 else 1, image.itemsize, fmt, quality,
                       grey=info is not None and info.mode in GREY_MODES)
    promised_write(path, lambda f: _encode(f, image, info, fmt, quality), need,
                   f"{with_article(f'{width}x{height}')} picture as {FORMATS[fmt]}", "the picture")


def promised_write(path: str, encode: Callable, need: int, what: str, beside: str) -> None:
    """``atomic_write(path, encode)``, which takes ``need`` bytes of memory to write
    ``what`` beside ``beside``, once budget.WRITERS has them; an InputError in those
    words where they are not available, or run out."""
    def refusal(available: int) -> InputError:
        return InputError(f"{path}: writing {what} needs about {budget.size_words(need, up=True)} of memory beside {beside}, "
                          f"more than {budget.room_words(need, available)}")

    def encoding(f) -> None:
        try:
            encode(f)
        except (OSError, ValueError, RuntimeError) as e:
            if getattr(e, "errno", None) is None and _ENCODER_OUT_OF_MEMORY.fullmatch(str(e)):
                raise MemoryError from e  # not "cannot write PATH: out of memory when writing image file"
            raise

    # Past what is available, Linux kills the process rather than failing an allocation;
    # writers in other threads take their share of it at the same time.
    with budget.WRITERS.promise(need, refusal):
        try:
            atomic_write(path, encoding, pipe=True)  # a FIFO among the outputs gets its picture
        except MemoryError:  # the temporary file is gone: atomic_write removes it on any failure
            # Promised, and run out all the same: the host's memory is short of what it
            # seemed, which later writes would meet alike (a WriteOutOfMemory stops a run).
            raise WriteOutOfMemory(f"{path}: not enough memory to write {what} (about {budget.size_words(need)} "
                                   f"beside {beside})") from None


# Pillow's words where an encoder ran out of memory: its codecs' status
# (IMAGING_CODEC_MEMORY, -9, named or numbered, as its versions say it: zlib's for a
# PNG, say), libwebp's VP8_ENC_ERROR_OUT_OF_MEMORY (1) and
# VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY (2) as its WebP writer says them of a still
# and, through libwebp's animation encoder, of a frame, and that encoder's
# WEBP_MUX_MEMORY_ERROR (-3) as it assembles the file; and where that encoder could
# not be made, which its options (Pillow's) and the canvas's size (check_fits) pass.
_ENCODER_OUT_OF_MEMORY = re.compile(r"(out of memory|encoder error -9) when writing image file|encoding error [12]"
                                    r"|ERROR adding frame\. WebPEncodingError: [12]\.|ERROR assembling WebP: -3\."
                                    r"|could not create encoder object")


def checked_write(path, fmt: str | None, quality, info, what: str) -> tuple[str, str, int | None]:
    """A writer's ``path`` as a str, its format key and its quality, checked, and
    ``info`` checked to be an ImageInfo (or None); ``what`` is the writer's name."""
    path = file_path(path, what)
    check_named_as_file(path, "the picture, such as out.png")
    if fmt is not None and not isinstance(fmt, str):  # an array's truth is ambiguous: a bare ValueError below
        format_named(fmt, path)
    if not fmt and not Path(path).suffix:
        # output_format's words offer a folder, as the commands' -o takes one; a writer takes none.
        why = ("a folder of that name is there" if os.path.isdir(path) else
               "its name has no extension: name it .png, .jpg, .webp, .gif or .avif, or give fmt")
        raise InputError(f"cannot write {path}: {why}")
    fmt = format_named(fmt, path) if fmt is not None and fmt != "" else output_format(path)
    quality = checked_quality(quality, path)
    if info is not None and not isinstance(info, ImageInfo):
        raise SettingError(f"info must be the ImageInfo read_image gave, got {type(info).__name__}")
    if info is not None and not isinstance(info.mode, str):  # a list failed "in GREY_MODES" with a TypeError
        raise InputError(f"{path}: info.mode must be Pillow's mode of the picture read, as a str (such as RGB "
                         f"or L), got {describe(info.mode)}")
    return path, fmt, quality


def check_fits(image: np.ndarray, fmt: str, path: str) -> None:
    """InputError unless ``fmt`` can hold a picture like ``image``."""
    check_size(*image.shape, fmt, path)


def check_size(height: int, width: int, channels: int, fmt: str, path: str) -> None:
    """InputError unless ``fmt`` can hold a picture of that size and channels: known
    before a picture is upscaled, so that one is not upscaled only to be refused."""
    if fmt == "jpg" and channels == 4:
        raise InputError(f"{path}: JPEG cannot store transparency; write png or webp")
    if fmt in MAX_SIDE and max(height, width) > MAX_SIDE[fmt][1]:
        name, most = MAX_SIDE[fmt]
        raise InputError(f"{path}: {width}x{height} is too large for {name}, which holds at most "
                         f"{most} pixels a side; write png")
    if fmt == "avif" and height * width > MAX_AVIF_PIXELS:
        raise InputError(f"{path}: {width}x{height} is too large for AVIF, which its readers take up to "
                         f"{MAX_AVIF_PIXELS} pixels; write png")


# Peak bytes a pixel that writing an 8-bit picture of 1, 3 or 4 channels takes beside the
# picture itself, as measured (peak RSS of write_image on 9-36 megapixel pictures, smooth
# and grainy, the larger kept; Pillow 13): Pillow holds RGB as 4 bytes a pixel (a copy,
# where grey and RGBA are shared); an optimized JPEG holds every coefficient (2 bytes a
# sample, fewer at 4:2:0) and its whole file; WebP, GIF's palette search and AVIF's
# encoder work on copies of their own, AVIF's larger on smooth pictures (57 bytes a
# pixel against 42 on a photo).
_WRITE_BYTES = {"png": {1: 0, 3: 4, 4: 0}, "jpg": {1: 3, 3: 12}, "jpg-4:2:0": {1: 3, 3: 8},
                "webp": {1: 34, 3: 42, 4: 46}, "webp-lossy": {1: 12, 3: 14, 4: 24},
                "gif": {1: 16, 3: 26, 4: 26}, "avif": {1: 24, 3: 60, 4: 60}}


def write_bytes(height: int, width: int, channels: int, itemsize: int, fmt: str, quality: int | None = None,
                grey: bool = False) -> int:
    """About the most memory ``write_image`` takes to write a ``height`` x ``width``
    picture of ``channels`` channels of ``itemsize`` bytes as ``fmt`` at ``quality``
    (``grey``: its ImageInfo's mode is grey), beside the picture itself: from
    0 (an 8-bit RGBA png) to 60 bytes a pixel (an AVIF), 4 times the picture for a
    16-bit colour png (its big-endian copy, the rows and zlib's input and output)."""
    pixels, size = height * width, height * width * channels * itemsize
    if itemsize == 2 and fmt == "png":
        return size * (5 if grey and channels == 4 else 1 if channels == 1 else 4)
    if fmt == "jpg" and (DEFAULT_JPEG_QUALITY if quality is None else quality) < 90:
        fmt = "jpg-4:2:0"
    elif fmt == "webp" and quality is not None:
        fmt = "webp-lossy"
    need = pixels * (_WRITE_BYTES[fmt][channels] + (8 if grey and channels == 4 and fmt != "gif" else 0))
    # 16 bits to 8 takes two 32-bit copies; the 8-bit picture is then written.
    return need if itemsize == 1 else max(8 * pixels * channels, pixels * channels + need)


# How the metadata is left out, which a hint names.
NO_METADATA = Option(flag="--no-metadata", argument="metadata=False")


def checked_metadata(info: ImageInfo | None, metadata: bool, fmt: str, path: str) -> ImageInfo | None:
    """``info`` with its metadata, checked, or without it (``metadata`` false)."""
    if not isinstance(metadata, (bool, np.bool_)):  # "no" is true: the EXIF meant to go was kept
        raise SettingError(f"{path}: metadata must be True or False, got {describe(metadata)}")
    if info is None or not metadata:  # left out: nothing to refuse
        return info and replace(info, icc_profile=None, exif=None, dpi=None, xmp=None, colour_chunks=(),
                                text_chunks=(), comment=None, photoshop=None)
    for field in ("icc_profile", "exif", "xmp", "comment", "photoshop"):
        value = getattr(info, field)
        if value is not None and not isinstance(value, bytes):  # Pillow takes a str and writes garbage, or crashes
            raise InputError(f"{path}: info.{field} must be bytes or None, got {type(value).__name__}")
    if info.exif is not None and not exif_body(info.exif):  # nothing, which libavif refused ("Invalid Exif payload")
        info = replace(info, exif=None)
    if info.exif and not is_exif(info.exif):  # an AVIF failed with Pillow's SyntaxError, others wrote it
        shown = repr(info.exif[:24]) + ("..." if len(info.exif) > 24 else "")
        raise InputError(f"{path}: info.exif is no EXIF (it starts with no TIFF header, II*\\x00 or MM\\x00*, "
                         f"after an optional Exif\\x00\\x00): got {shown}")
    pairs = info.colour_chunks
    if not isinstance(pairs, (tuple, list)) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[1], bytes)
            and COLOUR_CHUNK_SIZES.get(p[0]) == len(p[1])
            for p in pairs):  # Pillow would write any chunk given, or fail on a str
        raise InputError(f"{path}: info.colour_chunks must be (kind, data) pairs of bytes, the kind one of "
                         f"{', '.join(f'{k.decode()} ({n} bytes)' for k, n in COLOUR_CHUNK_SIZES.items())}; "
                         f"got {describe(pairs)}")
    texts = info.text_chunks
    if not isinstance(texts, (tuple, list)) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 and p[0] in TEXT_KINDS and isinstance(p[1], bytes)
            and has_keyword(p[1])
            for p in texts):  # written as given, another chunk or one without its keyword would break the png
        raise InputError(f"{path}: info.text_chunks must be (kind, data) pairs of bytes, the kind tEXt, zTXt or "
                         f"iTXt, the data a keyword of 1 to 79 bytes and a NUL byte before the rest; "
                         f"got {describe(texts)}")
    if info.dpi is not None and dpi_pair(info.dpi) is None:
        raise InputError(f"{path}: info.dpi must be two positive numbers (across, down) or None, "
                         f"got {describe(info.dpi)}")
    if fmt == "jpg" and info.exif and len(info.exif) > MAX_JPEG_EXIF:
        raise HintedInputError(f"{path}: its EXIF ({len(info.exif)} bytes) is too large for JPEG, which holds "
                               f"at most {MAX_JPEG_EXIF}: write png or webp, or leave the metadata out", NO_METADATA)
    return info


def sized(info: ImageInfo | None, image: np.ndarray) -> ImageInfo | None:
    """``info`` whose EXIF and XMP state the size of ``image``, the picture written
    with it."""
    if info is None:
        return info
    height, width = image.shape[:2]
    return replace(info, exif=sized_exif(info.exif, width, height), xmp=sized_xmp(info.xmp, width, height))


def checked_quality(quality, path: str | None = None) -> int | None:
    """``quality`` as an int from 1 to 100, or None; its error names ``path`` where
    given. Checked here because Pillow's answers differ by format: JPEG a bare
    ValueError for 50.5, WebP takes 50.5 and True (a bool is an int: quality 1)
    without a word."""
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral) or not 1 <= quality <= 100:
        raise SettingError(f"{f'{path}: ' if path else ''}quality must be a whole number from 1 to 100, "
                         f"got {describe(quality)}")
    return int(quality)


def png_file(image: np.ndarray, info: ImageInfo | None) -> bytes:
    """The bytes of the png ``write_image`` writes of ``image`` (checked), with the
    metadata of ``info`` it keeps: 16-bit pixels stay 16-bit."""
    out = io.BytesIO()
    _encode(out, image, info, "png", None)
    return out.getvalue()


def _encode(f, image: np.ndarray, info: ImageInfo | None, fmt: str, quality: int | None) -> None:
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    sixteen = image.dtype == np.uint16
    grey = info is not None and info.mode in GREY_MODES
    # RGBA is written grey+alpha only where it is grey: the pixels' colour, not the
    # info's mode, is the picture (one coloured since it was read lost its colour).
    grey_alpha = grey and channels == 4 and is_grey_colour(image)
    if sixteen and fmt == "png" and channels in (3, 4):
        if grey_alpha:
            image = image[:, :, [0, 3]]
        # Pillow has no 16-bit colour or grey+alpha modes
        icc, exif, dpi, xmp, colour, text = _kept_metadata(info, fmt, grey=image.shape[2] == 2)
        f.write(png16(image, fitting_profile(icc, grey=image.shape[2] == 2, grey_pixels=grey), exif, dpi, xmp, colour, text))
        return
    if sixteen and not (fmt == "png" and channels == 1):
        image = to_eight_bit(image)  # jpg/webp/gif/avif are 8-bit
        sixteen = False
    if fmt == "gif":  # which holds none of the metadata but a comment
        picture = to_palette(image)
        if icc := gif_profile(info, grey):
            palette_to_srgb(picture, icc)
        picture.save(f, format="GIF", **GIF_OPTIONS, **comment_option(info, fmt))
        return
    if fmt == "png" and not sixteen and not grey_alpha:  # Pillow makes grey+alpha of that
        icc, exif, dpi, xmp, colour, text = _kept_metadata(info, fmt, grey=channels < 3)
        write_png8(f, image, fitting_profile(icc, grey=channels < 3, grey_pixels=grey), exif, dpi, xmp, colour, text)
        return
    if channels == 1:
        im = Image.fromarray(image[:, :, 0].astype("<u2") if sixteen else image[:, :, 0])
    else:
        im = Image.fromarray(np.ascontiguousarray(image))
    if grey_alpha:
        im = im.convert("LA")  # grey stays grey (an L with alpha had a transparent grey level)
    options = save_options(info, fmt, quality, grey=im.mode in ("L", "LA", "I;16"))
    if fmt == "avif" and (coded := dict(info.colour_chunks if info else ()).get(b"cICP")):
        # Pillow's writer states sRGB in the nclx whatever the pixels are: an HDR
        # photo's (PQ, HLG), which no ICC profile states, was shown washed out.
        encoded = io.BytesIO()
        im.save(encoded, format="AVIF", **options)
        f.write(avif.stating_colour(encoded.getvalue(), coded[0], coded[1]))
        return
    optimize = options.get("optimize")
    try:
        if optimize:
            with captured_stderr(hand_back=True) if _short_for_optimizing(im, options) else contextlib.nullcontext():
                save_optimized_jpeg(im, f, options)
        else:
            im.save(f, format=FORMATS[fmt], **options)
    except OSError as e:
        # Past even save_optimized_jpeg's buffer libjpeg fails ("Suspension not allowed
        # here"), or short of memory for its coefficients ("Insufficient memory (case
        # 4)"), both on fd 2. Without optimizing it streams.
        if not optimize or e.errno is not None:
            raise
        f.seek(0)
        f.truncate()
        options["optimize"] = False
        # Rare, so always kept quiet: a retry that fails short of memory is told as
        # WriteOutOfMemory's one line, not libjpeg's too.
        with captured_stderr() as libjpeg_said:
            try:
                im.save(f, format=FORMATS[fmt], **options)
                return
            except OSError as again:
                # libjpeg out of memory (its "Insufficient memory") reaches Pillow as a
                # broken stream, as an error of its options would. A pixel with the
                # same options written tells them apart: where it is, the picture's
                # size failed.
                if again.errno is None and (_ENCODER_OUT_OF_MEMORY.fullmatch(str(again))
                                            or _jpeg_options_hold(im.mode, options)):
                    raise MemoryError from again
                failure, said = again, libjpeg_said()
        if said and sys.stderr is not None:  # not memory: libjpeg's words on it are the user's
            sys.stderr.write(said)
        raise failure


def gif_profile(info: ImageInfo | None, grey: bool) -> bytes | None:
    """The RGB profile showing the colours of a picture of ``info`` (its pixels
    ``grey``), from its own profile or its PNG colour chunks, which a gif, holding
    none and shown as sRGB, is turned to sRGB from (``palette_to_srgb``); None where
    it states none that differs from sRGB."""
    if info is None:
        return None
    icc = info.icc_profile or colour_profile(info.colour_chunks, False, "gif")
    return fitting_profile(icc, grey=False, grey_pixels=grey)


def palette_to_srgb(picture: Image.Image, icc: bytes) -> None:
    """Turns the palette of the GIF frame ``picture`` from the colours of the RGB
    profile ``icc`` to sRGB's, in place: each pixel as it would be turned, at no
    cost of memory. Left as it is where LittleCMS cannot read the profile."""
    from PIL import ImageCms  # LittleCMS, loaded for such a picture alone

    palette = picture.getpalette()
    try:
        # sRGB is what a gif, holding no profile, is shown as.
        shown = ImageCms.profileToProfile(Image.frombytes("RGB", (len(palette) // 3, 1), bytes(palette)),
                                          ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                          outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):
        return
    picture.putpalette(shown.tobytes())


def _jpeg_options_hold(mode: str, options: dict) -> bool:
    """Whether a pixel of ``mode`` is written as a JPEG with ``options``."""
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format="JPEG", **options)
    except OSError:
        return False
    return True


def _short_for_optimizing(im: Image.Image, options: dict) -> bool:
    """Whether an optimized JPEG of ``im`` may not find its memory: where it does not,
    libjpeg prints "Insufficient memory (case 4)" on fd 2 as it fails, an error line
    for a picture the unoptimized retry then writes. Address space for twice what the
    encode takes at once (save_optimized_jpeg's buffer and libjpeg's coefficients, 2
    bytes a sample, chroma quartered at 4:2:0), and 64 MB for other threads meanwhile,
    says it will: no capture of fd 2 then, which holds back the lines other threads
    write (a warning, the progress bar) while it lasts, and loses them where the
    encode fails."""
    bands, pixels = len(im.getbands()), im.width * im.height
    samples = pixels * bands if options.get("subsampling") == 0 else pixels + pixels * (bands - 1) // 4
    need = _OPTIMIZED_JPEG_BYTES * bands * pixels + 2 * samples
    return not mappable(2 * need + (64 << 20))


# Bytes a sample an optimized JPEG's buffer holds: black and white grain at quality
# 100 takes 1.6 a sample (4.7 bytes an RGB pixel), random grey levels 1.4.
_OPTIMIZED_JPEG_BYTES = 2


def save_optimized_jpeg(im: Image.Image, f, options: dict) -> None:
    """``im.save(f, "JPEG", **options)`` with ``optimize``, in a buffer that holds it.
    libjpeg writes an optimized JPEG's data in one go at its end, into a buffer Pillow
    sizes by the picture (a byte a pixel, 2 at quality 95+): grain at quality 90+
    outgrew it, and libjpeg printed "Suspension not allowed here" on fd 2 before
    failing. Pillow takes no buffer size but its global ImageFile.MAXBLOCK, which
    other threads' writes read too (an APNG's chunks are the buffer's size), so its
    encoder is called here as its JPEG writer calls it: the writer, given a pixel of
    the picture's mode and the same options, sets the encoder's settings."""
    pixel, head = Image.new(im.mode, (1, 1)), io.BytesIO()
    pixel.save(head, format="JPEG", **options)  # its metadata, tables and a block
    try:  # Pillow's own names (11 to 13): another Pillow may lack them
        config, encode = pixel.encoderconfig, ImageFile._save
        tile = ImageFile._Tile("jpeg", (0, 0, *im.size), 0, JpegImagePlugin.RAWMODE[im.mode])
    except (AttributeError, KeyError, TypeError):
        im.save(f, format="JPEG", **options)  # Pillow's buffer: grain may still outgrow it, as _encode mends
        return
    im.encoderconfig = config
    encode(im, f, [tile], _OPTIMIZED_JPEG_BYTES * len(im.getbands()) * im.width * im.height + len(head.getvalue()))


def _kept_metadata(info: ImageInfo | None, fmt: str, grey: bool = False) -> tuple:
    """The ICC profile, EXIF, resolution, XMP, PNG colour chunks and PNG text chunks
    of ``info`` that ``fmt`` holds; without a profile of its own, one stating its colour chunks
    where ``fmt`` needs it (``icc.for_format``), for pixels written ``grey``."""
    icc, exif = (info.icc_profile, info.exif) if info else (None, None)
    if not icc and info:
        icc = colour_profile(info.colour_chunks, grey, fmt)
    dpi = fitting_dpi(info.dpi if info else None, fmt)
    if dpi and fmt in EXIF_RESOLUTION_FORMATS:  # which state it in their EXIF alone
        exif, dpi = exif_stating(exif, dpi), None
    xmp = info.xmp if info and not (fmt == "jpg" and len(info.xmp or b"") > MAX_JPEG_XMP) else None
    colour = tuple(info.colour_chunks) if info and fmt == "png" else ()
    text = tuple(info.text_chunks) if info and fmt == "png" else ()
    if fmt == "png" and info and info.comment and not any(
            data.split(b"\x00", 1)[0] == b"Comment" for _, data in text):
        text += (comment_chunk(info.comment),)
    return icc, exif, dpi, xmp, colour, text


def comment_option(info: ImageInfo | None, fmt: str) -> dict:
    """Pillow's save option for the comment of ``info`` where ``fmt`` holds it: a
    gif any, a jpg one of a segment's 65533 bytes at most (a GIF's may be longer)."""
    comment = info.comment if info else None
    if comment and (fmt == "gif" or fmt == "jpg" and len(comment) <= MAX_JPEG_EXIF):
        return {"comment": comment}
    return {}


def save_options(info: ImageInfo | None, fmt: str, quality: int | None, grey: bool = False) -> dict:
    """Pillow's save options for png, jpg, webp or avif: the metadata of ``info`` that
    ``fmt`` holds, and its quality or compression. ``grey``: the pixels are grey."""
    # WebP is colour only; Pillow writes grey+alpha AVIF as colour, and a grey AVIF
    # comes back as colour from libavif's readers.
    written_grey = grey and fmt not in ("webp", "avif")
    icc, exif, dpi, xmp, colour, text = _kept_metadata(info, fmt, written_grey)
    options: dict = {}
    icc = fitting_profile(icc, grey=written_grey, grey_pixels=grey)
    if icc:
        options["icc_profile"] = icc
    if exif:
        if fmt == "webp":
            # A WebP's EXIF chunk starts at the TIFF header, as libwebp writes it;
            # Pillow's writer of an animated WebP keeps a JPEG's "Exif\0\0" before it.
            exif = exif_body(exif)
        elif fmt == "avif":
            exif = without_orientation(exif)  # which Pillow's writer would write anew
        options["exif"] = exif
    if dpi:
        options["dpi"] = dpi
    if xmp:
        options.update(xmp_option(xmp, fmt))
    options.update(comment_option(info, fmt))
    if fmt == "jpg" and info and info.photoshop and (segment := app13_segment(info.photoshop)):
        options["extra"] = segment
    if colour:  # Pillow writes them before the pixels, and sRGB only without a profile, as PNG asks
        chunks = options.setdefault("pnginfo", PngInfo())
        for kind, data in colour:
            chunks.add(kind, data)
    if text:
        chunks = options.setdefault("pnginfo", PngInfo())
        for kind, data in text:
            chunks.add(kind, data)
    if fmt == "jpg":
        q = DEFAULT_JPEG_QUALITY if quality is None else quality
        options.update(quality=q, subsampling=0 if q >= 90 else 2, optimize=True)
    elif fmt == "webp":
        options.update(lossless=True, quality=100, exact=True) if quality is None else options.update(quality=quality)
    elif fmt == "avif":
        q = DEFAULT_AVIF_QUALITY if quality is None else quality
        options["quality"] = q
        if not grey:  # Pillow's 4:0:0 for grey, which has no colour to subsample
            # Full colour at high qualities, as for JPEG: 4:2:0 blurs thin red and blue lines.
            options["subsampling"] = "4:4:4" if q >= 90 else "4:2:0"
    else:
        options.update(compress_level=PNG_COMPRESS_LEVEL)
    return options


