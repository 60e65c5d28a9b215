"""What Pillow leaves out of PNG: 16-bit colour and grey+alpha (read through FFmpeg,
written here), the header's depth and colour type, low-bit grey transparency."""
from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zlib

import numpy as np
from PIL import PngImagePlugin

from .files import ffmpeg_name
from .metadata import PNG_XMP_KEY

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The chunks that say how a PNG's samples are shown, kept in a png written from one.
# The chunks that say how a PNG's samples are shown, and their sizes in the PNG
# specification: one of another size is damaged, and written back it would be invalid.
COLOUR_CHUNK_SIZES = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"cICP": 4}
# PNG's text chunks: Latin-1, compressed Latin-1, and UTF-8 (compressed or not).
TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")
# The text chunks whose keyword says they hold the XMP, or the EXIF as ImageMagick
# writes it, which Pillow reads as the picture's: written from ImageInfo.xmp and
# .exif, their orientation reset where the picture was turned, not copied as they were.
_CARRIED_ELSEWHERE = (PNG_XMP_KEY, b"Raw profile type exif")

# zlib level for PNG: 1, the fastest, as OpenCV's default (what Real-ESRGAN's own
# scripts write with). Level 6 (Pillow's default) took 3.3 s to write a 2048x2048
# upscaled photo against 1.15 s at level 3: on a GPU the save threads fell behind the
# network. Level 1 encodes 24-29 % faster again than 3 (1024x1024 photo: 65 against
# 87 ms) for files 3-4 % larger; on a 2-core CPU, saving small pictures of the light
# model competes with the network for the same cores.
PNG_COMPRESS_LEVEL = 1


# The PNG this thread walks once for what reading a picture asks of its file (``walked``).
_walk = threading.local()
_UNWALKED = object()  # asked of, and not walked (an OSError): each question reads it alone


@contextlib.contextmanager
def walked(path: str | os.PathLike):
    """Within the block, in this thread, the questions here about the file at ``path``
    (``png_header``, ``has_refused_text``, ``colour_chunks``, ``text_chunks``) are
    answered from one walk of its chunks, made at the first: reading a picture asked
    them of its file in 6 walks, each opening it anew (its header checked before its
    pixels are read, then the read), in a folder run of small pictures as much work
    as decoding them. The answers are those each walk gave; a walk that fails
    leaves each to its own."""
    name = os.fspath(path)
    if getattr(_walk, "name", None) == name:  # inside a block of its own already
        yield
        return
    before = getattr(_walk, "name", None), getattr(_walk, "found", None), getattr(_walk, "opened", None)
    _walk.name, _walk.found, _walk.opened = name, None, None
    try:
        yield
    finally:
        if _walk.opened is not None:  # kept, and no read took it
            _walk.opened.close()
        _walk.name, _walk.found, _walk.opened = before


def keep_opened(path: str | os.PathLike, im) -> bool:
    """Keep Pillow's open, not yet loaded, picture ``im`` of the file at ``path`` for
    the next ``take_opened(path)`` of this thread's ``walked`` block for that file,
    which closes it at its end where none takes it: True; False (nothing kept) outside
    such a block."""
    if getattr(_walk, "name", None) != os.fspath(path) or _walk.opened is not None:
        return False
    _walk.opened = im
    return True


def take_opened(path: str | os.PathLike):
    """The picture ``keep_opened`` kept of the file at ``path`` in this thread's
    ``walked`` block, now the caller's to close; else None."""
    if getattr(_walk, "name", None) != os.fspath(path):
        return None
    im, _walk.opened = _walk.opened, None
    return im


def _walk_of(path: str | os.PathLike):
    """The one walk of ``path`` (``_walk_once``) where a ``walked`` block is for it, else None."""
    if getattr(_walk, "name", None) is None or os.fspath(path) != _walk.name:
        return None
    if _walk.found is None:
        _walk.found = _walk_once(path)
    return None if _walk.found is _UNWALKED else _walk.found


def _walk_once(path: str | os.PathLike):
    """The first 26 bytes of the file at ``path`` (as ``png_header`` reads them),
    (kind, length, data, checksum right, before the pixels) for each of its chunks
    that ``colour_chunks``, the text questions or ``has_damaged_late_chunk`` take,
    to its end (None where it is no PNG), and (where its data starts, its length,
    its checksum) for each IDAT, whose data is not read (``damaged_pixels`` reads
    it); _UNWALKED on an OSError."""
    chunks, idats = [], []
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            if head[:len(SIGNATURE)] != SIGNATURE:
                return head, None, ()
            f.seek(len(SIGNATURE))
            before_pixels = True
            while len(chunk_head := f.read(8)) == 8 and chunk_head[4:] != b"IEND":
                kind, length = chunk_head[4:], struct.unpack(">I", chunk_head[:4])[0]
                before_pixels = before_pixels and kind != b"IDAT"
                if kind in TEXT_KINDS or kind == b"eXIf" or COLOUR_CHUNK_SIZES.get(kind) == length:
                    data, crc = f.read(length), f.read(4)
                    chunks.append((kind, length, data, crc == struct.pack(">I", zlib.crc32(kind + data)),
                                   before_pixels))
                elif kind == b"IDAT":
                    start = f.tell()
                    f.seek(length, os.SEEK_CUR)
                    idats.append((start, length, f.read(4)))
                else:
                    f.seek(length + 4, os.SEEK_CUR)
    except OSError:
        return _UNWALKED
    return head, chunks, tuple(idats)


def damaged_pixels(path: str | os.PathLike, file=None) -> tuple[str, bool] | None:
    """Whether an IDAT chunk of the PNG at ``path`` has a wrong checksum, and if so
    whether its pixels are damaged: (why, damaged), None where every checksum is right
    or the file cannot be read again. Pillow and FFmpeg check no IDAT's checksum, and
    stop inflating at the last row, short of zlib's own check (its Adler-32 at the
    stream's end): a bit flipped on a disk decoded into wrong pixels without a word.
    The stream is inflated to its end only where a checksum is wrong: right there, the
    pixels are whole (the checksum alone is wrong, as some writers leave it; browsers
    show such a picture), which libpng, checking only the chunk, would refuse. Read in
    pieces: a photo's IDAT may be one of 100 MB. An IDAT cut short is passed over: its
    decoder says it is cut short, in its words. ``file``, the PNG opened (Pillow's,
    before it loads), is read and left where it was, rather than a new opening."""
    walk = _walk_of(path) or _walk_once(path)
    if walk is _UNWALKED or not walk[2]:
        return None
    try:
        if file is None:
            with open(path, "rb") as f:
                return _checked_pixels(f, walk[2])
        at = file.tell()
        try:
            return _checked_pixels(file, walk[2])
        finally:
            file.seek(at)
    except OSError:
        return None


def _checked_pixels(f, idats) -> tuple[str, bool] | None:
    """``damaged_pixels`` of the IDATs ``idats`` (where each one's data starts, its
    length, its checksum) in the PNG opened as ``f``."""
    wrong = False
    for start, length, stored in idats:
        crc, left = zlib.crc32(b"IDAT"), length
        for piece in _pieces(f, start, length):
            crc, left = zlib.crc32(piece, crc), left - len(piece)
        wrong = wrong or (not left and len(stored) == 4 and stored != struct.pack(">I", crc))
    if not wrong:
        return None
    stream = zlib.decompressobj()
    try:
        for start, length, _ in idats:
            for piece in _pieces(f, start, length):
                while piece and not stream.eof:  # output in bounded pieces, thrown away
                    stream.decompress(piece, 1 << 20)
                    piece = stream.unconsumed_tail
        # Output held back by the bound: drained, where the input was all taken.
        while not stream.eof and stream.decompress(b"", 1 << 20):
            pass
        if not stream.eof:
            raise zlib.error("the stream ends early")
    except zlib.error:
        return "PNG: its pixel data (IDAT) has a wrong checksum and does not decompress whole: damaged", True
    return "its pixel data's checksum (IDAT) is wrong, though the data decompresses whole: read as it is", False


def _pieces(f, start: int, length: int):
    """The ``length`` bytes of ``f`` from ``start``, in pieces of at most 1 MiB (fewer
    where the file ends first)."""
    f.seek(start)
    while length and (piece := f.read(min(length, 1 << 20))):
        length -= len(piece)
        yield piece


def png_header(path: str | os.PathLike) -> tuple[int, int | None]:
    """A PNG's bit depth and colour type, from its IHDR (8 and None where unreadable)."""
    if (walk := _walk_of(path)) is not None:
        head = walk[0]
    else:
        with open(path, "rb") as f:
            head = f.read(26)
    return (head[24], head[25]) if len(head) == 26 and head[12:16] == b"IHDR" else (8, None)


def palette_missing(path: str | os.PathLike) -> bool:
    """Whether the PNG at ``path`` is of palette colours (colour type 3) with no
    palette (PLTE) before its pixels: libpng refuses it ("Missing PLTE before
    IDAT"), where Pillow read every pixel black."""
    with open(path, "rb") as f:
        head = f.read(len(SIGNATURE) + 18)
        if len(head) < len(SIGNATURE) + 18 or head[12:16] != b"IHDR" or head[25] != 3:
            return False
        f.seek(len(SIGNATURE))
        while len(chunk_head := f.read(8)) == 8 and chunk_head[4:] not in (b"IDAT", b"PLTE"):
            f.seek(struct.unpack(">I", chunk_head[:4])[0] + 4, os.SEEK_CUR)
        return chunk_head[4:] != b"PLTE"


def refusal(path: str | os.PathLike) -> str | None:
    """Why Pillow's PNG reader refuses the file at ``path``, which starts as a PNG
    (cut short before its pixels, a chunk's checksum wrong): Pillow then says no
    format of its own fits. None for a file that is no PNG, that it opens, or that
    cannot be read again."""
    try:
        return _refusal(path)
    except OSError:
        return None


def _refusal(path: str | os.PathLike) -> str | None:
    with open(path, "rb") as f:
        if f.read(len(SIGNATURE)) != SIGNATURE:
            return None
        while len(head := f.read(8)) == 8 and head[4:] != b"IDAT":  # each chunk's length and kind
            f.seek(struct.unpack(">I", head[:4])[0] + 4, os.SEEK_CUR)
        if len(head) < 8:
            return "PNG cut short before its pixels"  # Pillow's words: a buffer's size, or none
        f.seek(0)
        data = f.read()
        try:  # what is damaged past mending, as ``mended`` leaves it
            PngImagePlugin.PngImageFile(io.BytesIO(mended(data)[0])).close()
        except Exception as e:  # noqa: BLE001 - only its words are wanted
            return _header_words(data) or " ".join(str(e).split()) or type(e).__name__
    return None


# The bit depths each colour type may have, by the PNG specification.
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _header_words(data: bytes) -> str | None:
    """What is wrong with the header (IHDR) of the PNG ``data`` in words, where it
    states no pixels or a depth its colour type does not take (zeroed by a bad block,
    say), for which Pillow says only "not identified by this driver"; None else."""
    if data[12:16] != b"IHDR" or len(data) < 26:
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
    if not width or not height:
        return f"PNG: its header states {width}x{height} pixels"
    if depth not in _DEPTHS.get(colour, ()):
        return f"PNG: its header states {depth}-bit samples of colour type {colour}, which PNG does not define"
    return None


def _packed(kind: bytes, data: bytes) -> bytes | None:
    """The compressed text of the text chunk (``kind``, ``data``), None where its text is not compressed."""
    rest = data.partition(b"\x00")[2]
    if kind == b"zTXt" and rest[:1] == b"\x00":
        return rest[1:]
    if kind == b"iTXt" and rest[:2] == b"\x01\x00" and len(parts := rest[2:].split(b"\x00", 2)) == 3:
        return parts[2]
    return None


def _inflated(packed: bytes) -> tuple[int, bool]:
    """How long the compressed text ``packed`` is once decompressed, as far as
    Pillow goes (0 where zlib refuses it, as Pillow then reads none), and whether
    it goes on past that."""
    inflate = zlib.decompressobj()
    try:  # as far as Pillow goes, and one step past it
        text = inflate.decompress(packed, PngImagePlugin.MAX_TEXT_CHUNK)
    except zlib.error:
        return 0, False
    return len(text), bool(inflate.unconsumed_tail)


def too_long_for_pillow(kind: bytes, data: bytes) -> bool:
    """Whether the text chunk (``kind``, ``data``) is compressed text longer once
    decompressed than Pillow reads (``PngImagePlugin.MAX_TEXT_CHUNK``, 1 MB): it
    refuses the whole picture for one (a large ComfyUI workflow, say), before its
    pixels or after them, where libpng reads it. Such a chunk is carried whole into
    a png as read (``text_chunks``), so Pillow need not see it (``without_refused_text``)."""
    return (packed := _packed(kind, data)) is not None and _inflated(packed)[1]


def _text_memory(kind: bytes, data: bytes) -> int:
    """At most what Pillow counts of the text chunk (``kind``, ``data``) against
    ``PngImagePlugin.MAX_TEXT_MEMORY``: its text's length, decompressed."""
    if (packed := _packed(kind, data)) is not None:
        return _inflated(packed)[0]
    rest = data.partition(b"\x00")[2]
    return len(rest if kind == b"tEXt" else rest[2:].split(b"\x00", 2)[-1])


def _hidden(chunks: list[tuple[bytes, bytes]]) -> set[int]:
    """The indices of the text ``chunks`` (kind, data) Pillow is not to see: those
    it refuses alone (``too_long_for_pillow``, ``unknown_compression``) and, where
    the rest hold more text than it reads in all (``PngImagePlugin.MAX_TEXT_MEMORY``,
    64 MB, for which it refuses the whole picture), all but the XMP and EXIF it
    reads as the picture's, which are ``text_chunks``' to carry whole all the same;
    then those too, as far as they go past it."""
    hidden = {i for i, (kind, data) in enumerate(chunks) if _refused(kind, data)}
    most = sum(PngImagePlugin.MAX_TEXT_CHUNK if _packed(kind, data) is not None else len(data)
               for i, (kind, data) in enumerate(chunks) if i not in hidden)
    if most <= PngImagePlugin.MAX_TEXT_MEMORY:  # as with any picture of fewer than 64 compressed chunks
        return hidden  # without decompressing them again
    sizes = {i: _text_memory(*chunk) for i, chunk in enumerate(chunks) if i not in hidden}
    if sum(sizes.values()) <= PngImagePlugin.MAX_TEXT_MEMORY:
        return hidden
    total = 0
    for i, size in sizes.items():
        total += size if chunks[i][1].split(b"\x00", 1)[0] in _CARRIED_ELSEWHERE else 0
        if total > PngImagePlugin.MAX_TEXT_MEMORY or chunks[i][1].split(b"\x00", 1)[0] not in _CARRIED_ELSEWHERE:
            hidden.add(i)
    return hidden


def unknown_compression(kind: bytes, data: bytes) -> str | None:
    """Pillow's words refusing a picture for the text chunk (``kind``, ``data``), a
    zTXt of a compression PNG does not define, before its pixels or after them;
    None for any other. No reader can read it: libpng leaves it out, damaged."""
    method = data.partition(b"\x00")[2][:1]
    if kind == b"zTXt" and method not in (b"", b"\x00"):
        return f"Unknown compression method {method[0]} in zTXt chunk"
    return None


def _refused(kind: bytes, data: bytes) -> bool:
    return kind in (b"zTXt", b"iTXt") and (too_long_for_pillow(kind, data)
                                           or unknown_compression(kind, data) is not None)


def has_refused_text(path: str | os.PathLike) -> bool:
    """Whether the PNG at ``path`` holds text Pillow is not to see (``_hidden``),
    its checksum right or not (Pillow checks none past the pixels)."""
    return bool(_hidden(list(_read_chunks(path, lambda kind, length: kind in TEXT_KINDS,
                                          past_pixels=True, checked=False))))


def _spans(data: bytes):
    """(start, end, kind, at or past the first IDAT) of each whole chunk of the PNG
    ``data`` before its IEND."""
    at, past_pixels = len(SIGNATURE), False
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if end > len(data) or kind == b"IEND":
            return
        past_pixels = past_pixels or kind == b"IDAT"
        yield at, end, kind, past_pixels
        at = end


def _checksum_right(data: bytes, at: int, end: int) -> bool:
    return data[end - 4:end] == struct.pack(">I", zlib.crc32(data[at + 4:end - 4]))


def without_refused_text(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The PNG ``data`` less the text chunks Pillow is not to see (``_hidden``),
    and what is wrong with each of an ``unknown_compression`` ("zTXt (Unknown
    compression method 1 in zTXt chunk)"); ``data`` itself and () where it has
    none. One before the pixels whose checksum is wrong stays, for ``mended`` to
    leave out for its checksum."""
    spans = [(at, end, kind, data[at + 8:end - 4])  # (start, end, kind, body) of each text chunk
             for at, end, kind, past_pixels in _spans(data)
             if kind in TEXT_KINDS and (past_pixels or _checksum_right(data, at, end))]
    hidden = _hidden([(kind, body) for _, _, kind, body in spans])
    if not hidden:
        return data, ()
    parts, dropped, start = [], [], 0
    for i, (at, end, kind, body) in enumerate(spans):
        if i in hidden:
            parts.append(data[start:at])
            start = end
            if (why := unknown_compression(kind, body)) is not None:
                dropped.append(f"{kind.decode('latin-1')} ({why})")
    return b"".join(parts) + data[start:], tuple(dropped)


# The ancillary chunks Pillow reads past the pixels, checking no checksum there:
# the picture's text, XMP and EXIF (whose orientation turns it).
_READ_PAST_PIXELS = (*TEXT_KINDS, b"eXIf")


def has_damaged_late_chunk(path: str | os.PathLike) -> bool:
    """Whether the PNG at ``path`` has, past its first IDAT, a chunk Pillow reads
    there (``_READ_PAST_PIXELS``) whose checksum is wrong."""
    walk = _walk_of(path) or _walk_once(path)
    if walk is _UNWALKED or walk[1] is None:
        return False
    return any(kind in _READ_PAST_PIXELS and not right and not before_pixels
               for kind, _, _, right, before_pixels in walk[1])


def without_damaged_late_chunks(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The PNG ``data`` less the chunks past its first IDAT that Pillow reads there
    (``_READ_PAST_PIXELS``) whose checksum is wrong, and each one's kind with what is
    wrong with it; ``data`` and () where none is. libpng leaves such a chunk out, as
    one before the pixels, and browsers then show the picture without it; Pillow
    took it as it was: a damaged EXIF's orientation turned the picture."""
    parts, dropped, start = [], [], 0
    for at, end, kind, past_pixels in _spans(data):
        if past_pixels and kind in _READ_PAST_PIXELS and not _checksum_right(data, at, end):
            parts.append(data[start:at])
            start = end
            dropped.append(f"{kind.decode('latin-1')} (a wrong checksum)")
    if not dropped:
        return data, ()
    return b"".join(parts) + data[start:], tuple(dropped)


def mended(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The PNG ``data`` less the damaged ancillary chunks before its pixels, and each
    one's kind with what is wrong with it ("gAMA (a wrong checksum)"), in the
    file's order; ``data`` and () where none is. Text Pillow refuses is left out
    too, before the pixels and after them (``without_refused_text``); text too long
    for it is no damage, not named. Pillow refuses the whole picture
    for one (a text chunk whose checksum is wrong, a physical size cut short, a
    profile of an unknown compression), where libpng and browsers leave the chunk
    out and show the picture. A critical chunk (IHDR, PLTE) damaged so stays, for
    Pillow to refuse, and so does an APNG's fcTL. Past the first IDAT Pillow checks
    no chunk: those it reads there are left out where damaged
    (``without_damaged_late_chunks``), the others left as they are."""
    if not data.startswith(SIGNATURE):
        return data, ()
    data, late = without_damaged_late_chunks(data)
    data, unread = without_refused_text(data)  # text too long is no damage: kept in a png
    unread = late + unread
    chunks, at = [], len(SIGNATURE)  # (kind, bytes) of each chunk before the pixels
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 12 + length
        if kind in (b"IDAT", b"IEND") or end > len(data):
            break
        chunks.append((kind, data[at:end]))
        at = end
    # An APNG's first fcTL left out would put every frame after it out of sequence:
    # it stays, as a critical chunk, and Pillow's words for its damage are the error.
    animated = any(kind == b"acTL" for kind, _ in chunks)

    def droppable(kind: bytes) -> bool:
        return bool(kind[0] & 0x20) and not (animated and kind == b"fcTL")

    pixels = data[at:at + 8]  # the IDAT's length and kind, where Pillow stops opening
    dropped, kept = list(unread), []
    for kind, whole in chunks:
        if droppable(kind) and whole[-4:] != struct.pack(">I", zlib.crc32(whole[4:-4])):
            dropped.append(f"{kind.decode('latin-1')} (a wrong checksum)")
        else:
            kept.append((kind, whole))
    critical = b"".join(whole for kind, whole in kept if not droppable(kind))
    if (_opening_refusal(b"".join(whole for _, whole in kept) + pixels) is not None
            and _opening_refusal(critical + pixels) is None):
        # Each ancillary chunk tried alone among the critical ones, in the file's
        # order (a transparency after the palette): those Pillow refuses so are left out.
        for index, (kind, whole) in enumerate(kept):
            alone = b"".join(w for i, (k, w) in enumerate(kept) if i == index or not droppable(k))
            if droppable(kind) and (why := _opening_refusal(alone + pixels)) is not None:
                dropped.append(f"{kind.decode('latin-1')} ({why})")
                kept[index] = (kind, b"")
    if not dropped:
        return data, ()
    return SIGNATURE + b"".join(whole for _, whole in kept) + data[at:], tuple(dropped)


def _opening_refusal(chunks: bytes) -> str | None:
    """Pillow's words refusing a PNG of these ``chunks`` (up to its first IDAT's
    length and kind) as it opens it, None where it opens."""
    try:
        PngImagePlugin.PngImageFile(io.BytesIO(SIGNATURE + chunks)).close()
    except Exception as e:  # noqa: BLE001 - only its words are wanted
        return " ".join(str(e).split()) or type(e).__name__
    return None


def colour_chunks(path: str | os.PathLike) -> tuple[tuple[bytes, bytes], ...]:
    """The chunks of the PNG at ``path`` that say how its samples are shown (its
    gamma, chromaticities, sRGB rendering intent, coding-independent code points) as
    (kind, data) pairs, in the file's order, for a png written from it: Pillow reads
    them but writes none back, and viewers showed the samples alone in other
    colours. () for a file that cannot be walked to its pixels."""
    return _read_chunks(path, lambda kind, length: COLOUR_CHUNK_SIZES.get(kind) == length, past_pixels=False)


def text_chunks(path: str | os.PathLike) -> tuple[tuple[bytes, bytes], ...]:
    """The text chunks (tEXt, zTXt, iTXt) of the PNG at ``path`` as (kind, data)
    pairs, in the file's order, before its pixels or after them, but its XMP's and
    the EXIF ImageMagick writes as text (``ImageInfo.xmp`` and ``.exif`` carry
    them) and those without a keyword: what a picture made by Stable Diffusion (its
    "parameters") or ComfyUI (its "prompt" and "workflow") was made with, which a
    png written from it carries, compressed or not as it was. () for a file that
    cannot be walked."""
    found = _read_chunks(path, lambda kind, length: kind in TEXT_KINDS, past_pixels=True)
    hidden = _hidden(list(found))
    # One without its keyword or of an unknown compression is damaged: libpng leaves
    # it out, and written back it would make the png invalid (Pillow refuses it).
    # An XMP Pillow is not given (too long) is not read as the picture's: it is carried as it is.
    return tuple((kind, data) for i, (kind, data) in enumerate(found)
                 if has_keyword(data) and unknown_compression(kind, data) is None and (
                     data.split(b"\x00", 1)[0] not in _CARRIED_ELSEWHERE or i in hidden))


def comment_chunk(comment: bytes) -> tuple[bytes, bytes]:
    """A JPEG's or GIF's ``comment`` as PNG's Comment text chunk (kind, data), as
    ImageMagick writes it: tEXt, which is Latin-1, but iTXt for UTF-8 past ASCII;
    NUL bytes (a C string's end) left out, as no PNG text holds one."""
    text = comment.replace(b"\x00", b"")
    try:
        text.decode("ascii")
    except UnicodeDecodeError:
        try:
            text.decode("utf-8")
            return b"iTXt", b"Comment\x00\x00\x00\x00\x00" + text
        except UnicodeDecodeError:
            pass
    return b"tEXt", b"Comment\x00" + text


def has_keyword(data: bytes) -> bool:
    """Whether the text chunk's ``data`` starts with a keyword of 1 to 79 bytes and
    the NUL byte after it, as PNG has each one."""
    return 1 <= data.find(b"\x00") <= 79


def _read_chunks(path: str | os.PathLike, wanted, past_pixels: bool,
                 checked: bool = True) -> tuple[tuple[bytes, bytes], ...]:
    """The chunks of the PNG at ``path`` that ``wanted(kind, length)`` takes, as
    (kind, data) pairs in the file's order, up to its pixels or, ``past_pixels``, to
    its end; one whose checksum is wrong is left out, as ``mended`` leaves it, where
    ``checked``."""
    if (walk := _walk_of(path)) is not None:
        # The walk took every text chunk and every colour chunk of its size: all
        # that the ``wanted`` of the questions here take.
        return tuple((kind, data) for kind, length, data, right, before_pixels in walk[1] or ()
                     if (past_pixels or before_pixels) and wanted(kind, length) and (right or not checked))
    found = []
    try:
        with open(path, "rb") as f:
            if f.read(len(SIGNATURE)) != SIGNATURE:
                return ()
            while len(head := f.read(8)) == 8 and head[4:] != b"IEND" and (past_pixels or head[4:] != b"IDAT"):
                length = struct.unpack(">I", head[:4])[0]
                if wanted(head[4:], length):
                    data, crc = f.read(length), f.read(4)
                    if not checked or crc == struct.pack(">I", zlib.crc32(head[4:] + data)):
                        found.append((head[4:], data))
                else:
                    f.seek(length + 4, os.SEEK_CUR)
    except OSError:
        return ()
    return tuple(found)


def grey_key_in_8_bits(info: dict, depth: int) -> None:
    """A grey PNG's tRNS level (``info["transparency"]``) in Pillow's 8-bit grey. The
    level is in the file's depth, while Pillow scales 2- and 4-bit grey to 8 bits
    (×85, ×17): it matched another grey or none. A level past the depth matches no
    pixel (libpng ignores it): it is dropped, and the picture has no alpha."""
    key = info.get("transparency")
    if not isinstance(key, int) or depth not in (2, 4, 8):
        return  # 1-bit levels Pillow reads as 0 or 255 itself; 16-bit grey is not scaled
    top = (1 << depth) - 1
    if key > top:
        del info["transparency"]
    else:
        info["transparency"] = key * (255 // top)


def cut_palette_alpha(info: dict) -> bool:
    """A palette PNG's transparency (``info["transparency"]``, as Pillow reads its tRNS)
    cut to the 256 colours a palette holds; whether its tRNS had more entries. Pillow
    keeps them all and refuses the picture as it applies them ("palette index out of
    range"); no pixel can have their index, and Pillow already ignores those past a
    shorter palette, as FFmpeg does. (libpng 1.6 drops the whole tRNS where it is
    longer than the palette.)"""
    key = info.get("transparency")
    if isinstance(key, bytes) and len(key) > 256:
        info["transparency"] = key[:256]
        return True
    if isinstance(key, int) and key > 255:  # a tRNS all opaque but this one entry, past 256
        del info["transparency"]
        return True
    return False


def read_png16(source: str | os.PathLike | bytes, channels: int) -> np.ndarray:
    """16-bit colour (or grey+alpha) PNG pixels, which Pillow can only read as 8-bit,
    through FFmpeg, as RGB or RGBA; ``source`` is the file's path or its bytes."""
    if isinstance(source, bytes):
        head = source[:len(SIGNATURE) + 25]
    else:
        with open(source, "rb") as f:
            head = f.read(len(SIGNATURE) + 25)
    if len(head) == len(SIGNATURE) + 25 and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 6) and head[28] == 1:
        if not isinstance(source, bytes):
            with open(source, "rb") as f:
                source = f.read()
        return _interlaced16(source, channels)
    try:
        return _ffmpeg16(source, channels)
    except SyntaxError:
        # FFmpeg (libavcodec 62) refuses the whole picture for an ancillary chunk it
        # cannot parse (an eXIf begun with JPEG's Exif\0\0 header, empty or damaged;
        # an ICC profile of an unknown compression), where Pillow reads the 8-bit one,
        # less a damaged chunk as libpng leaves it out (``mended``). The pixels do not
        # depend on them, nor on the EXIF, whose orientation Pillow reads: tried again
        # without them, which costs nothing where FFmpeg takes the file.
        if not isinstance(source, bytes):
            with open(source, "rb") as f:
                source = f.read()
        bare = _without_exif(mended(source)[0])
        if bare == source:
            raise
        return _ffmpeg16(bare, channels)


def _ffmpeg16(source: str | os.PathLike | bytes, channels: int) -> np.ndarray:
    import av  # only this rare case needs it

    try:
        with av.open(io.BytesIO(source) if isinstance(source, bytes) else ffmpeg_name(source)) as container:
            frame = next(container.decode(video=0), None)
            if frame is None:
                raise SyntaxError("FFmpeg finds no picture in it")
            return frame.to_ndarray(format="rgba64le" if channels == 4 else "rgb48le")
    except av.error.FFmpegError as e:
        if isinstance(e, OSError):  # the system's refusal, as reading words it
            raise
        # What FFmpeg refuses in the file (an APNG frame outside its canvas, say),
        # where Pillow read the 8-bit picture: broken, as the readers say it.
        raise SyntaxError(f"FFmpeg cannot decode it: {e.strerror or e}") from None


def _without_exif(data: bytes) -> bytes:
    """The PNG ``data`` without its eXIf chunks; what follows a chunk cut short is
    kept as it was."""
    kept, at = [data[:len(SIGNATURE)]], len(SIGNATURE)
    while at + 12 <= len(data):
        end = at + 12 + struct.unpack_from(">I", data, at)[0]
        if data[at + 4:at + 8] != b"eXIf":
            kept.append(data[at:end])
        at = end
    kept.append(data[at:])
    return b"".join(kept)


# Adam7's passes: each one's first column and row, and its steps across and down.
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _interlaced16(data: bytes, channels: int) -> np.ndarray:
    """An Adam7-interlaced 16-bit colour PNG's pixels, as ``read_png16`` gives them.
    FFmpeg (libavcodec 62) places the pixels of six or eight bytes of such a PNG
    wrongly: rows it leaves black, others shifted. Each pass is a PNG of its own
    (its rows filtered apart from the other passes'), decoded alone and put in place."""
    width, height = struct.unpack_from(">II", data, 16)
    stride = 6 if data[25] == 2 else 8
    kept, idat, at = [], [], len(SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        body = data[at + 8:at + 8 + length]
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        elif kind in (b"PLTE", b"tRNS") and not idat:  # an APNG's frame controls stay out: a pass is still
            kept.append(chunk(kind, body))
        at += 12 + length
    passes = [((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in ADAM7]
    sizes = [h * (1 + w * stride) if w and h else 0 for w, h in passes]
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), sum(sizes))  # no more than the picture holds
    except zlib.error as e:  # an APNG frame's, which Pillow has not decoded before
        raise SyntaxError(f"broken PNG: its compressed pixels are damaged ({e})") from None
    if len(raw) < sum(sizes):
        raise SyntaxError("PNG cut short")
    image = np.zeros((height, width, channels), np.uint16)
    start = 0
    for (x, y, dx, dy), (w, h), size in zip(ADAM7, passes, sizes):
        if size:
            alone = (SIGNATURE + chunk(b"IHDR", struct.pack(">II", w, h) + data[24:28] + b"\0") + b"".join(kept)
                     + chunk(b"IDAT", zlib.compress(raw[start:start + size], 1)) + chunk(b"IEND", b""))
            image[y::dy, x::dx] = read_png16(alone, channels)
        start += size
    return image


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def png16(image: np.ndarray, icc: bytes | None = None, exif: bytes | None = None,
          dpi: tuple[float, float] | None = None, xmp: bytes | None = None,
          colour: tuple[tuple[bytes, bytes], ...] = (), text: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A 16-bit PNG file's bytes (grey+alpha, RGB or RGBA for 2, 3 or 4 channels), with
    optional ICC profile, EXIF, resolution (dots per inch, as Pillow's ``dpi``), XMP,
    ``colour_chunks`` (an sRGB chunk left out beside a profile, as PNG asks and
    Pillow does) and ``text_chunks``."""
    h, w, c = image.shape
    rows = image.astype(">u2").reshape(h, w * c).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0 per row
    parts = [_head(w, h, 16, c, icc, exif, dpi, xmp, colour, text)]
    parts += [chunk(b"IDAT", zlib.compress(raw, PNG_COMPRESS_LEVEL)), chunk(b"IEND", b"")]
    return b"".join(parts)


# The rows of an 8-bit png filtered and compressed at a time, in bytes: writing one
# takes no memory that grows with the picture.
_BLOCK_BYTES = 1 << 20


def write_png8(f, image: np.ndarray, icc: bytes | None = None, exif: bytes | None = None,
               dpi: tuple[float, float] | None = None, xmp: bytes | None = None,
               colour: tuple[tuple[bytes, bytes], ...] = (), text: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """An 8-bit PNG of ``image`` (H x W x 1-4: grey, grey+alpha, RGB, RGBA) written to
    the binary file ``f``, with the metadata ``png16`` takes. Every row gets the Up
    filter, the difference from the row above: Pillow tries five filters on each row
    and keeps the best, which took half its time (a 384x288 RGB upscale: 18 ms against
    9 ms here, files 2.5 % larger; a 1440x954 photo 197 against 93 ms, 12 % larger; a
    2600x1800 diagram 231 against 78 ms, 6 % larger). Same pixels."""
    h, w, c = image.shape
    width = w * c
    f.write(_head(w, h, 8, c, icc, exif, dpi, xmp, colour, text))
    step = max(1, _BLOCK_BYTES // (width + 1))
    buffer = np.empty((min(step, h), width + 1), np.uint8)
    buffer[:, 0] = 2  # Up
    above = np.zeros(width, np.uint8)  # what the first row is told apart from, as PNG says
    deflate = zlib.compressobj(PNG_COMPRESS_LEVEL)
    pending: list[bytes] = []
    held = 0
    for start in range(0, h, step):
        rows = image[start:start + step].reshape(-1, width)
        out = buffer[:len(rows)]
        np.subtract(rows[0], above, out=out[0, 1:])  # uint8: modulo 256, as the filter is
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
        above = rows[-1]
        pending.append(deflate.compress(out))
        held += len(pending[-1])
        if held >= _BLOCK_BYTES:  # several IDAT chunks in a row are one stream
            f.write(chunk(b"IDAT", b"".join(pending)))
            pending, held = [], 0
    pending.append(deflate.flush())
    f.write(chunk(b"IDAT", b"".join(pending)) + chunk(b"IEND", b""))


def _head(width: int, height: int, depth: int, channels: int, icc: bytes | None, exif: bytes | None,
          dpi: tuple[float, float] | None, xmp: bytes | None, colour: tuple[tuple[bytes, bytes], ...],
          text: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """A PNG's signature and every chunk before its pixels (see png16)."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    parts = [SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))]
    parts += [chunk(kind, data) for kind, data in colour if not (icc and kind == b"sRGB")]
    if icc:
        parts.append(chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))
    if exif:
        parts.append(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    if dpi:  # pixels per metre, rounded as Pillow does
        parts.append(chunk(b"pHYs", struct.pack(">IIB", *(int(d / 0.0254 + 0.5) for d in dpi), 1)))
    if xmp:  # an uncompressed iTXt without language, as Adobe's XMP specification asks
        parts.append(chunk(b"iTXt", PNG_XMP_KEY + b"\x00\x00\x00\x00\x00" + xmp))
    parts += [chunk(kind, data) for kind, data in text]
    return b"".join(parts)
