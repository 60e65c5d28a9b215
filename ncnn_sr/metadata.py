"""What a picture carries besides its pixels, as read and as each format can write it
back: EXIF and its orientation, XMP, resolution (DPI), ICC profiles."""
from __future__ import annotations

import math
import numbers
import re
import struct
from fractions import Fraction

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PIL.TiffImagePlugin import PREFIXES as TIFF_HEADERS  # the first 4 bytes of the TIFFs Pillow reads

from .icc import colour_from_grey
from .tiff_directory import LONG, RATIONAL, SHORT, Directory, header

# JPEG holds EXIF in one APP1 marker segment; Pillow refuses more with a bare ValueError.
MAX_JPEG_EXIF = 65533
# JPEG holds XMP in one APP1 segment after its 29-byte namespace; Pillow refuses more.
MAX_JPEG_XMP = MAX_JPEG_EXIF - 29
# An XMP orientation in the two forms Pillow turns a picture by when its EXIF has none.
_XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))[0-9]')
# The picture's size in XMP, across and down, as the EXIF's tags are named there.
_XMP_WIDTH = re.compile(rb'((?:exif:PixelXDimension|tiff:ImageWidth)(?:="|>)\s*)[0-9]+')
_XMP_HEIGHT = re.compile(rb'((?:exif:PixelYDimension|tiff:ImageLength)(?:="|>)\s*)[0-9]+')
PNG_XMP_KEY = b"XML:com.adobe.xmp"
# The PNG text chunk in which ImageMagick writes the XMP, as hex digits.
RAW_XMP_KEY = b"Raw profile type xmp"
EXIF_ORIENTATION = 0x0112
_EXIF_X_RESOLUTION = 0x011A
_EXIF_Y_RESOLUTION = 0x011B
_EXIF_RESOLUTION_UNIT = 0x0128
# IFD1's JPEGInterchangeFormat and JPEGInterchangeFormatLength: where its thumbnail lies.
_THUMBNAIL = (0x0201, 0x0202)
# Formats that state their resolution in their EXIF alone, which Pillow does not read
# as their dpi (it does for a JPEG without JFIF's).
_EXIF_RESOLUTION_ONLY = frozenset({"WEBP", "AVIF", "HEIF"})
# The tags of a TIFF's first directory that EXIF holds too, describing the picture
# (not its file): description, make, model, orientation, software, date, artist,
# host computer, copyright, Windows' title, comment, author, keywords and subject
# (XPTitle...), its rating (stars and percent), and the Exif and GPS directories.
_SUB_DIRECTORIES = (0x8769, 0x8825)
_TIFF_EXIF_TAGS = (0x010E, 0x010F, 0x0110, EXIF_ORIENTATION, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298,
                   *range(0x9C9B, 0x9CA0), 0x4746, 0x4749, *_SUB_DIRECTORIES)
# The picture's size, stated in the first directory (ImageWidth, ImageLength) and in
# the Exif directory (PixelXDimension, PixelYDimension): across first.
_FIRST_SIZE = (0x0100, 0x0101)
_EXIF_SIZE = (0xA002, 0xA003)
# A JPEG's APP13 segment holds Photoshop's image resources after this name. Those
# kept: IPTC-NAA (a photo agency's caption, keywords, copyright) and its digest; the
# others describe the picture as it was (thumbnails, paths, slices) or copy its EXIF
# and XMP, unturned.
PHOTOSHOP_SIGNATURE = b"Photoshop 3.0\x00"
_KEPT_RESOURCES = frozenset({0x0404, 0x0425})
# A TIFF's IPTC-NAA tag (the record a JPEG's Photoshop resource 0x0404 holds) and its
# PhotoshopInfo tag (Photoshop's image resources, as a JPEG's APP13 segment holds them).
_IPTC_NAA, _PHOTOSHOP_INFO = 33723, 34377
_IPTC_RESOURCE = 0x0404
# Orientations that turn the picture a quarter: across and down trade places.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
# The most a rational's denominator is written with: a PNG's 299.9994 dpi (its pixels
# a metre) is stated as 299999/1000.
_RATIONAL_DENOMINATOR = 1000
# The dots per inch each format can state, least and most: JFIF's density is a 16-bit
# whole number, PNG's pHYs 31-bit pixels per metre (both rounded). WebP and AVIF
# state theirs in their EXIF alone (``exif_stating``): rationals of 32-bit parts.
_EXIF_DPI_RANGE = (1 / _RATIONAL_DENOMINATOR, (2**32 - 1) / _RATIONAL_DENOMINATOR)
_DPI_RANGE = {"jpg": (0.5, 65535.49), "png": (0.5 * 0.0254, (2**31 - 1.5) * 0.0254),
              "webp": _EXIF_DPI_RANGE, "avif": _EXIF_DPI_RANGE}
# Formats whose resolution ``fitting_dpi`` gives goes in their EXIF.
EXIF_RESOLUTION_FORMATS = frozenset({"webp", "avif"})
# An EXIF block with no entries, which ``exif_stating`` gives a resolution.
_EMPTY_EXIF = b"Exif\x00\x00II*\x00" + struct.pack("<IHI", 8, 0, 0)
# EXIF orientation -> the numpy steps that undo it, as Pillow's exif_transpose does.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    step = _ORIENT.get(orientation)
    return arr if step is None else np.ascontiguousarray(step(arr))


def readable_exif(im: Image.Image) -> Image.Exif | None:
    """The picture's EXIF, or None where it cannot be parsed: a corrupt EXIF block
    (cameras and editors write some) costs the metadata, not the picture."""
    try:
        exif = im.getexif()
    except Exception:
        return None
    raw = im.info.get("exif")
    if EXIF_ORIENTATION not in exif and isinstance(raw, bytes) and (stated := _stated_orientation(raw)):
        # Pillow stops reading a directory at the first value cut short, and loses the
        # entries after it; browsers read the orientation's entry alone, and turn it.
        exif[EXIF_ORIENTATION] = stated
    return exif


def _stated_orientation(data: bytes) -> int | None:
    """The orientation (1 to 8) the first directory of the EXIF block ``data`` states
    in its own entry, whatever the rest holds; None where it states none."""
    base = 6 if data.startswith(b"Exif\x00\x00") else 0
    try:
        order, version, first = header(data, base)
        stated = Directory(data, order, first, base).first(EXIF_ORIENTATION, None) if version == 42 else None
    except (ValueError, struct.error):
        return None
    return stated if stated in range(1, 9) else None


def exif_body(data: bytes) -> bytes:
    """EXIF ``data`` without the "Exif\\0\\0" before it (at most two, as Pillow takes it)."""
    return re.sub(rb"^(Exif\x00\x00){1,2}", b"", data)


def is_exif(data: bytes) -> bool:
    """Whether ``data`` is EXIF as Pillow takes it to write: a TIFF header (or nothing)
    after at most two "Exif\\0\\0"."""
    body = exif_body(data)
    return not body or body[:4] in TIFF_HEADERS


def exif_to_write(im: Image.Image, exif: Image.Exif | None) -> bytes | None:
    """The EXIF to write back, its orientation reset to 1 (the pixels get turned).
    A TIFF's is its descriptive tags and their Exif and GPS directories: its other
    tags (strip offsets...) describe its own file."""
    if exif and im.format == "TIFF":
        try:
            exif = _tiff_exif(exif)
        except Exception:  # a directory that cannot be read: the metadata is lost, not the picture
            return None
    elif not ("exif" in im.info or "Raw profile type exif" in im.info):
        exif = None
    if not exif:
        return None
    raw = im.info.get("exif")
    if im.format != "TIFF" and isinstance(raw, bytes) and (kept := upright_in_place(raw)) is not None:
        return kept
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
    try:
        return exif.tobytes()
    except Exception:  # a tag Pillow read but cannot write back
        return None


def upright_in_place(data: bytes) -> bytes | None:
    """The EXIF block ``data`` (as its file holds it) with its orientation set to 1,
    without its thumbnail (IFD1: the picture unturned, and small), "Exif\\0\\0"
    before it; every other byte where it was. Pillow writes each part anew at
    another offset, and a maker note's own offsets (Canon's, Sony's, Panasonic's
    count from the TIFF header) then pointed elsewhere: its lens and settings read
    as garbage. None where it cannot be walked, or is more than a JPEG holds once
    its thumbnail is left out (Pillow's, smaller, is written then)."""
    base = 6 if data.startswith(b"Exif\x00\x00") else 0
    out = bytearray(data)
    try:
        order, version, first = header(out, base)
        first_directory = Directory(out, order, first, base)
        if version != 42:
            return None
        if EXIF_ORIENTATION in first_directory:
            first_directory.put(out, EXIF_ORIENTATION, SHORT, 1)
        next_at = base + first + 2 + 12 * len(first_directory.entries)
        second = struct.unpack_from(order + "I", out, next_at)[0]
        if second:
            struct.pack_into(order + "I", out, next_at, 0)
            _drop_thumbnail(out, order, second, base)
    except (ValueError, struct.error):
        return None
    kept = bytes(out) if base else b"Exif\x00\x00" + bytes(out)
    return kept if len(kept) <= MAX_JPEG_EXIF else None


def without_orientation(data: bytes) -> bytes:
    """The EXIF block ``data`` without its first directory's orientation entry, the
    entries after it moved up by one and every other byte where it was, for an AVIF:
    Pillow's writer takes an orientation out (HEIF states a turn in its own boxes)
    and writes the rest anew, each part at another offset, where a maker note's own
    offsets then point elsewhere. ``data`` as it is where it states none or cannot
    be walked."""
    base = 6 if data.startswith(b"Exif\x00\x00") else 0
    out = bytearray(data)
    try:
        order, version, first = header(out, base)
        directory = Directory(out, order, first, base)
        start = base + first
        end = start + 2 + 12 * len(directory.entries)  # where the next directory's offset is
        if version != 42 or EXIF_ORIENTATION not in directory or end + 4 > len(out):
            return data
    except ValueError:
        return data
    kept = [bytes(out[entry.at:entry.at + 12]) for entry in directory.entries if entry.tag != EXIF_ORIENTATION]
    gone = len(directory.entries) - len(kept)
    out[start:end + 4] = struct.pack(order + "H", len(kept)) + b"".join(kept) + out[end:end + 4] + bytes(12 * gone)
    return bytes(out)


def _drop_thumbnail(out: bytearray, order: str, offset: int, base: int) -> None:
    """Zeroes the thumbnail the directory at ``offset`` names, or cuts ``out`` where
    it starts where it ends the block (as cameras write it)."""
    try:
        directory = Directory(out, order, offset, base)
    except ValueError:
        return
    start, length = directory.first(_THUMBNAIL[0], None), directory.first(_THUMBNAIL[1], None)
    if start and length and base + start + length <= len(out):
        if not out[base + start + length:].strip(b"\x00"):
            del out[base + start:]
        else:
            out[base + start:base + start + length] = bytes(length)


def photoshop_resources(segments) -> bytes | None:
    """The resources of a JPEG's APP13 ``segments`` (their bytes after the marker and
    length) that a jpg written from it carries (``_KEPT_RESOURCES``), in their order;
    None where it has none. A resource cut short ends the reading."""
    data = b"".join(segment[len(PHOTOSHOP_SIGNATURE):] for segment in segments
                    if segment.startswith(PHOTOSHOP_SIGNATURE))
    kept, at = [], 0
    while at + 12 <= len(data) and data[at:at + 4] == b"8BIM":
        code, named = struct.unpack_from(">HB", data, at + 4)
        sized_at = at + 6 + ((named + 2) & ~1)  # the name, a Pascal string padded to even
        if sized_at + 4 > len(data):
            break
        size = struct.unpack_from(">I", data, sized_at)[0]
        if sized_at + 4 + size > len(data):
            break
        if code in _KEPT_RESOURCES:
            kept.append(data[at:sized_at + 4 + size] + b"\x00" * (size % 2))
        at = sized_at + 4 + size + size % 2
    return b"".join(kept) or None


def tiff_photoshop(tags) -> bytes | None:
    """The Photoshop resources a jpg written from a TIFF of ``tags`` (its first
    directory, Pillow's ``tag_v2``) carries: the record of its IPTC-NAA tag as the IPTC
    resource, else the kept resources of its PhotoshopInfo tag; None where it has
    neither."""
    iptc, resources = _stored(tags, _IPTC_NAA), _stored(tags, _PHOTOSHOP_INFO)
    if iptc:
        return b"8BIM" + struct.pack(">HHI", _IPTC_RESOURCE, 0, len(iptc)) + iptc + b"\x00" * (len(iptc) % 2)
    return photoshop_resources([PHOTOSHOP_SIGNATURE + resources]) if resources else None


def _stored(tags, tag: int) -> bytes | None:
    """The bytes of ``tag`` as the TIFF stores them, whatever its type: Photoshop types
    its IPTC as longs, which Pillow reads as numbers (its getiptcinfo reads these
    bytes too)."""
    stored = getattr(tags, "_tagdata", {}).get(tag)
    if stored is None and tags is not None:
        stored = tags.get(tag)
    return stored if isinstance(stored, bytes) and stored else None


def app13_segment(resources: bytes) -> bytes | None:
    """The APP13 marker segment holding Photoshop ``resources``, None where one segment cannot hold them."""
    payload = PHOTOSHOP_SIGNATURE + resources
    return b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload if len(payload) <= MAX_JPEG_EXIF else None


def sized_exif(exif: bytes | None, width: int, height: int) -> bytes | None:
    """``exif`` stating the size of the picture it goes with, ``width`` x ``height``,
    where it states one: it came with the input, and viewers that trust it showed
    the upscaled picture at the input's size. Changed in place, the rest byte for
    byte as it was; an EXIF that cannot be walked is given back as it is."""
    if not exif:
        return exif
    base = 6 if exif.startswith(b"Exif\x00\x00") else 0
    data = bytearray(exif)
    try:
        order, _, first = header(data, base)
        inner = _put_size(data, Directory(data, order, first, base), dict(zip(_FIRST_SIZE, (width, height))))
        if inner:
            _put_size(data, Directory(data, order, inner, base), dict(zip(_EXIF_SIZE, (width, height))))
    except ValueError:
        return exif
    return bytes(data)


def exif_stating(exif: bytes | None, dpi: tuple[float, float]) -> bytes | None:
    """``exif`` stating the resolution ``dpi`` (dots per inch across and down, within
    ``_EXIF_DPI_RANGE``), as a WebP or AVIF holds one: in its EXIF alone. Where it
    states that already it is given back as it is; where it states none (a TIFF's,
    a PNG's or a JFIF's is not in its EXIF) or another, its first directory is written
    anew at its end with the resolution, every other byte where it was (a maker
    note's offsets still point at what they name). An EXIF block of the resolution
    alone where ``exif`` is None; ``exif`` as it is where it cannot be walked."""
    if exif:
        try:
            stated = Image.Exif()
            stated.load(exif)
            if (now := _exif_dpi(stated)) and all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(now, dpi)):
                return exif
        except Exception:  # damage Pillow cannot read past: the EXIF goes as it came
            return exif
    base = 6 if (exif or _EMPTY_EXIF).startswith(b"Exif\x00\x00") else 0
    out = bytearray(exif or _EMPTY_EXIF)
    try:
        order, _, first = header(out, base)
        directory = Directory(out, order, first, base)
        next_at = base + first + 2 + 12 * len(directory.entries)
        following = struct.unpack_from(order + "I", out, next_at)[0]
    except (ValueError, struct.error):
        return exif
    entries = [bytes(out[entry.at:entry.at + 12]) for entry in directory.entries
               if entry.tag not in (_EXIF_X_RESOLUTION, _EXIF_Y_RESOLUTION, _EXIF_RESOLUTION_UNIT)]
    out += b"\0" * (len(out) % 2)  # values start on a word boundary
    for tag, value in zip((_EXIF_X_RESOLUTION, _EXIF_Y_RESOLUTION), dpi):
        rational = Fraction(value).limit_denominator(_RATIONAL_DENOMINATOR)
        entries.append(struct.pack(order + "HHII", tag, RATIONAL, 1, len(out) - base))
        out += struct.pack(order + "II", rational.numerator, rational.denominator)
    entries.append(struct.pack(order + "HHIHH", _EXIF_RESOLUTION_UNIT, SHORT, 1, 2, 0))  # inches
    entries.sort(key=lambda entry: struct.unpack_from(order + "H", entry)[0])  # TIFF asks them in tag order
    struct.pack_into(order + "I", out, base + 4, len(out) - base)
    out += struct.pack(order + "H", len(entries)) + b"".join(entries) + struct.pack(order + "I", following)
    return bytes(out)


def sized_xmp(xmp: bytes | None, width: int, height: int) -> bytes | None:
    """``xmp`` stating the size of the picture it goes with, where it states one (as
    photo editors write it, beside the EXIF's), in an attribute or an element."""
    if not xmp:
        return xmp
    for pattern, value in ((_XMP_WIDTH, width), (_XMP_HEIGHT, height)):
        xmp = pattern.sub(rb"\g<1>%d" % value, xmp)
    return xmp


def _put_size(data: bytearray, directory: Directory, sizes: dict[int, int]) -> int | None:
    """Writes ``sizes`` (tag: value) over the entries of ``directory`` (in ``data``)
    that hold one number, and gives the Exif directory's offset where it names one."""
    inner = None
    for entry in directory.entries:
        if entry.tag in sizes and entry.kind in (SHORT, LONG) and entry.count == 1:
            value = sizes[entry.tag]
            # A short holds up to 65535: a larger size is a long, in the same 4 bytes.
            directory.put_entry(data, entry, SHORT if entry.kind == SHORT and value <= 0xFFFF else LONG, value)
        elif entry.tag == _SUB_DIRECTORIES[0] and entry.count == 1:
            inner = directory.offset(entry)
    return inner


def _tiff_exif(tags: Image.Exif) -> Image.Exif | None:
    """The EXIF in a TIFF's first directory ``tags``, None where it holds none."""
    kept = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in _SUB_DIRECTORIES:
            if tag in tags and (directory := tags.get_ifd(tag)):
                kept[tag] = dict(directory)
        elif tag in tags:
            kept[tag] = tags[tag]
    return kept or None


def raw_profile(text) -> bytes | None:
    """The bytes of a profile ImageMagick wrote as PNG text (a line naming it, one
    its length, then hex digits), as Pillow reads its EXIF so; None where ``text`` is none."""
    if not isinstance(text, str):
        return None
    try:
        return bytes.fromhex("".join(text.split("\n")[3:])) or None
    except ValueError:
        return None


def upright_xmp(xmp) -> bytes | None:
    """The XMP to write back, its orientation reset to 1 (the pixels get turned)."""
    if isinstance(xmp, str):  # a PNG text chunk's, which Pillow decodes as Latin-1
        xmp = xmp.encode("latin-1", "replace")
    if not isinstance(xmp, bytes) or not xmp:
        return None
    return _XMP_ORIENTATION.sub(rb"\g<1>1", xmp)


def resolution(im: Image.Image, exif: Image.Exif | None, orientation: int) -> tuple[float, float] | None:
    """The dots per inch the file states, across and down once turned upright."""
    if im.format in ("JPEG", "MPO") and im.info.get("jfif_unit") not in (1, 2) and \
            not (exif and _EXIF_X_RESOLUTION in exif):
        return None  # Pillow's stand-in 72 for a JPEG with EXIF that states none
    if im.format == "TIFF" and not {_EXIF_X_RESOLUTION, _EXIF_Y_RESOLUTION} <= set(getattr(im, "tag_v2", {})):
        return None  # Pillow's stand-in 1 for a TIFF without resolution tags
    if im.format in _EXIF_RESOLUTION_ONLY:
        dpi = _exif_dpi(exif)
    else:
        dpi = dpi_pair(im.info.get("dpi"))
    return dpi[::-1] if dpi and orientation in _QUARTER_TURNS else dpi


def _exif_dpi(exif: Image.Exif | None) -> tuple[float, float] | None:
    """The dots per inch ``exif`` states, across and down as stored: in inches
    unless its unit says centimetres (3); None without a unit (1) or a resolution."""
    if not exif or _EXIF_X_RESOLUTION not in exif:
        return None
    per_cm = {2: 1.0, 3: 2.54}.get(exif.get(_EXIF_RESOLUTION_UNIT, 2))
    across = exif[_EXIF_X_RESOLUTION]
    try:
        pair = dpi_pair((float(across), float(exif.get(_EXIF_Y_RESOLUTION, across))))
    except (TypeError, ValueError, ZeroDivisionError):  # a rational of 0/0, a text: none stated
        return None
    return pair and per_cm and (pair[0] * per_cm, pair[1] * per_cm)


def dpi_pair(value) -> tuple[float, float] | None:
    """``value`` as two positive finite floats (a TIFF's are rationals); None if it
    is not such a pair."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or \
            not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return None
    pair = (float(value[0]), float(value[1]))
    return pair if all(math.isfinite(v) and v > 0 for v in pair) else None


def xmp_option(xmp: bytes, fmt: str) -> dict:
    """Pillow's save option for XMP: its own for jpg, webp and avif, a text chunk for png."""
    if fmt != "png":
        return {"xmp": xmp}
    text = PngInfo()
    text.add_itxt(PNG_XMP_KEY, xmp)
    return {"pnginfo": text}


def fitting_dpi(dpi, fmt: str) -> tuple[float, float] | None:
    """``dpi`` where ``fmt`` can state it, else None (left out, not refused)."""
    pair = dpi_pair(dpi)
    least, most = _DPI_RANGE.get(fmt, (math.inf, 0))
    return pair if pair and least <= min(pair) and max(pair) <= most else None


def fitting_profile(icc: bytes | None, grey: bool, grey_pixels: bool = False) -> bytes | None:
    """``icc``, unless its colour space (header bytes 16-20) is another than the
    pixels' (GRAY for grey ones, RGB for colour): a grey picture's GRAY profile in a
    WebP (which has no grey) or a 16-bit RGBA PNG made colour-managed readers fail
    (LittleCMS builds no transform), and so would another picture's CMYK or Lab one;
    the picture shows the same without it. A GRAY profile of ``grey_pixels`` written as
    colour (a webp or avif, which have no grey) is made an RGB one of its curve
    (``icc.colour_from_grey``), where it has one: left out, a linear grey's mid grey
    showed 60 levels darker (sRGB 128 for 188)."""
    if icc is not None and icc[16:20] == b"GRAY" and grey_pixels and not grey:
        return colour_from_grey(icc)
    if icc is not None and icc[16:20] != (b"GRAY" if grey else b"RGB "):
        return None
    return icc
