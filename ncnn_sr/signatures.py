"""Pictures by their first bytes: files cut short inside the signature or the first
header fields of a picture format (too few bytes for Pillow's readers to recognise
the format, which then said "not a picture" of a download that stopped a few bytes
in), formats Pillow lacks, and the formats read, for files named without an
extension; and, for those files too, the video containers FFmpeg reads."""
from __future__ import annotations

# Each format's first bytes, and how many of them a file must hold to be taken for
# it: fewer could be the start of a text (a "GI", an "II") or of another format.
_SIGNATURES = (
    ("PNG", b"\x89PNG\r\n\x1a\n", 2),
    ("JPEG", b"\xff\xd8\xff", 2),  # its start-of-image marker, then the first segment's
    ("GIF", b"GIF87a", 3),
    ("GIF", b"GIF89a", 3),
    ("TIFF", b"II*\x00", 3),
    ("TIFF", b"MM\x00*", 3),
    ("BMP", b"BM", 2),
    ("JPEG 2000", b"\x00\x00\x00\x0cjP  \r\n\x87\n", 6),
)
# The WebP header Pillow reads before it knows the format: RIFF, the file's size,
# WEBP, and the first chunk's kind (VP8, VP8L or VP8X).
_WEBP_HEADER = 16


def cut_in_header(head: bytes) -> str | None:
    """What ``head``, a whole file's bytes, is the start of, where it is too short
    for Pillow to tell ("WebP: cut short at 14 bytes, inside its header"); None
    where it is no such start (it may be whole, of a format Pillow lacks)."""
    size = len(head)
    for fmt, signature, least in _SIGNATURES:
        if least <= size <= len(signature) and signature.startswith(head):
            return _words(fmt, size)
    # "RIFF" alone may start a WAV or an AVI: its kind, past its size, tells.
    if size < _WEBP_HEADER and head[:4] == b"RIFF" and size > 8 and b"WEBP".startswith(head[8:12]):
        return _words("WebP", size)
    # An ISO media file (HEIF, AVIF, but also MP4) cut inside its ftyp box's brand.
    if 8 <= size < 12 and head[4:8] == b"ftyp":
        return _words("HEIF or AVIF", size)
    return None


# Picture formats Pillow has no reader for, by their first bytes, with what to say of
# them: what they are, and what to convert them to.
_TO_16_BITS = "which Pillow cannot read: convert it to a 16-bit png or tiff"
_JPEG_XL = "a JPEG XL picture, which Pillow cannot read: convert it to png (djxl)"
_UNREAD = (
    (b"\x76\x2f\x31\x01", f"an OpenEXR picture (float pixels), {_TO_16_BITS}"),
    (b"\xff\x0a", _JPEG_XL),  # its bare codestream
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", _JPEG_XL),  # its ISO container
    (b"#?RADIANCE\n", f"a Radiance HDR picture (float pixels), {_TO_16_BITS}"),
    (b"#?RGBE\n", f"a Radiance HDR picture (float pixels), {_TO_16_BITS}"),
    (b"SDPX", f"a DPX picture, {_TO_16_BITS}"),
    (b"XPDS", f"a DPX picture, {_TO_16_BITS}"),  # little-endian
)
UNREAD_HEAD = max(len(signature) for signature, _ in _UNREAD)


def unread_format(head: bytes, size: int = 0) -> str | None:
    """What to say of a file whose first bytes are ``head`` (UNREAD_HEAD of them)
    where it is a picture format Pillow lacks; None otherwise."""
    return next((said for signature, said in _UNREAD if head.startswith(signature)), None)


def _words(fmt: str, size: int) -> str:
    return f"{fmt}: cut short at {size} byte{'s' if size != 1 else ''}, inside its header"


def cut_riff(head: bytes, size: int) -> str | None:
    """Where a WebP whose first bytes are ``head`` and whose file is ``size`` bytes
    long holds fewer bytes than its RIFF header states: a download cut short, which
    Pillow's reader says "could not create decoder object" of. None otherwise."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    stated = int.from_bytes(head[4:8], "little") + 8
    return f"WebP: cut short, {size} of the {stated} bytes its header states" if size < stated else None


# A WebP's first bytes that hold its canvas's size, whichever its first chunk.
WEBP_HEAD = 30


def webp_canvas(head: bytes) -> tuple[int, int] | None:
    """The (width, height) of the canvas the WebP whose first bytes are ``head``
    (WEBP_HEAD of them) states: its VP8X chunk's, else its one picture's (lossy VP8 or
    lossless VP8L). None where ``head`` is no WebP's, or too short to tell."""
    if len(head) < WEBP_HEAD or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":  # past a key frame's start code
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + (bits >> 14 & 0x3FFF)
    return None


def webp_frames_reach(data: bytes) -> tuple[int, int] | None:
    """How far right and down the frames (ANMF chunks) of the animated WebP ``data``
    reach on its canvas, at their offsets; None where it has none, or is no WebP."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    reach, at = None, 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        if kind == b"ANMF" and at + 20 <= len(data):
            x, y, w, h = (int.from_bytes(data[at + 8 + i:at + 11 + i], "little") for i in (0, 3, 6, 9))
            right, bottom = 2 * x + w + 1, 2 * y + h + 1
            reach = (right, bottom) if reach is None else (max(reach[0], right), max(reach[1], bottom))
        at += 8 + size + (size & 1)  # chunks are padded to an even size
    return reach


# Enough of a file's first bytes for ``picture_format``: an ISO file's ftyp box with
# its first compatible brands.
PICTURE_HEAD = 32
# The BMP info header's sizes (its versions), 4 bytes in past the 14-byte file header:
# "BM" alone starts texts too.
_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# HEIF's and AVIF's brands (ISO/IEC 23008-12, AV1 in HEIF); an MP4's are others.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
                          b"msf1", b"avif", b"avis"})


def picture_format(head: bytes) -> str | None:
    """The picture format, of those read here, that a file whose first bytes are
    ``head`` (PICTURE_HEAD of them, or the whole file) is ("PNG"); None where it is
    none of them. For a file whose name says nothing (no extension): a text or other
    data must not be taken for a picture, so each format's whole signature is asked,
    and BMP's two letters with its header's size."""
    for fmt, signature, _ in _SIGNATURES:
        if head.startswith(signature):
            if fmt != "BMP" or int.from_bytes(head[14:18], "little") in _BMP_INFO_SIZES:
                return fmt
    if head[:4] == b"RIFF" and head[8:16] in (b"WEBPVP8 ", b"WEBPVP8L", b"WEBPVP8X"):
        return "WebP"
    if head.startswith(b"\xff\x4f\xff\x51"):  # a bare JPEG 2000 codestream (.j2k)
        return "JPEG 2000"
    if head[4:8] == b"ftyp":
        if _brands(head) & _HEIF_BRANDS:
            return "HEIF or AVIF"
    return None


# Enough of a file's first bytes for ``video_container``: an MPEG transport stream's
# third sync byte (at 376, or 388 in a .m2ts's 192-byte packets) and an ftyp box's
# brands.
VIDEO_HEAD = 512
# The brands of an ISO file that is no video: sound alone (iTunes, Flash), a camera's
# raw picture (Canon's CR3).
_NOT_VIDEO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ", b"crx "})
# An Ogg stream's first packet (past its page's 27-byte header and segment table) for a video: Theora, VP8, Dirac, or the Skeleton that
# comes first where there is one. Vorbis, Opus or FLAC alone is sound.
_OGG_VIDEO = (b"\x80theora", b"OVP80", b"BBCD", b"fishead")
_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")  # ASF's header object GUID (.wmv, .asf)


def video_container(head: bytes) -> str | None:
    """The container a file whose first bytes are ``head`` (VIDEO_HEAD of them, or the
    whole file) is ("MP4 or QuickTime"), of those FFmpeg reads a video from; None for
    others, a HEIF or AVIF picture and an ISO or Ogg file of sound alone among them.
    For a file whose name says nothing (no extension)."""
    if head[4:8] == b"ftyp":
        return None if _brands(head) & _HEIF_BRANDS or head[8:12] in _NOT_VIDEO_BRANDS else "MP4 or QuickTime"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska or WebM"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"FLV\x01"):
        return "FLV"
    if head.startswith(b"OggS") and len(head) > 26 and head[27 + head[26]:].startswith(_OGG_VIDEO):
        return "Ogg"
    if head.startswith(_ASF):
        return "ASF"
    for first, packet in ((0, 188), (4, 192)):  # MPEG-TS, and .m2ts's timestamped packets
        if len(head) > first + 2 * packet and all(head[first + n * packet] == 0x47 for n in range(3)):
            return "MPEG transport stream"
    return None


def _brands(head: bytes) -> set[bytes]:
    """The brands of the ftyp box that ``head`` starts with: the major one, then (past
    the minor version) the compatible ones ``head`` holds."""
    size = min(int.from_bytes(head[:4], "big"), len(head))
    return {head[8:12]} | {head[at:at + 4] for at in range(16, size - 3, 4)}
