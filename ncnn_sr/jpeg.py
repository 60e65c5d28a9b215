"""JPEGs whose data stops early at an end marker (EOI). libjpeg reads one as a
whole picture, grey (or without its later scans' detail) where the data ran out,
with a warning Pillow does not pass on, where one cut short before its end marker
is refused as truncated. A header patched or damaged to claim far more pixels than
the data can hold (8x8 pixels of data under 9000x9000) is told by the file's size;
a download or a camera's file cut short and closed with an end marker, by the
scans it lacks or by the grey libjpeg fills its missing blocks with; one cut
short with no end marker, closed with one and told so too."""
from __future__ import annotations

import io
import random
import re
import struct

import numpy as np
from PIL import Image, ImageChops

# Start-of-frame markers, of every coding: C0-CF but DHT (C4), JPG (C8) and DAC (CC).
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Start-of-frame markers of Huffman-coded DCT frames, with the fewest bits each 8x8
# block takes: a sequential (baseline or extended) block codes its DC difference
# and at least an end of block, a code of one bit or more each; a progressive one
# is in a first DC scan, one code of one bit or more. Arithmetic coding, which can
# code a flat block in less than a bit, and lossless frames are not bounded here.
_LEAST_BITS_PER_BLOCK = {0xC0: 2, 0xC1: 2, 0xC2: 1}
# Markers that stand alone, with no length after them: TEM, RSTn, SOI.
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_PROGRESSIVE_FRAMES = {0xC2, 0xC6, 0xCA, 0xCE}
# The marker that ends a scan's entropy-coded data: a 0xFF that is no stuffed
# 0x00, no restart marker and no fill byte before the marker.
_END_OF_DATA = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")
# What libjpeg decodes a block with no coefficients to: mid-grey (127 in Pillow's
# inverted Adobe CMYK).
_EMPTY_BLOCK_SAMPLES = (127, 128)
# Bytes set before the end marker to tell data that ran out from data that was
# all read: of no 0xFF, and varied, so that they decode to blocks that are no grey.
# A progressive scan's may decode, with the bits left of the cut byte, to a run of
# empty blocks to the scan's end, as data that ran out leaves them: the second
# starts otherwise, and told most of those the first did not. A sequential one's
# next block codes its DC: the first changed it at every cut tried before an end
# marker, but not every cut in the last bytes of a file without one (10 cuts of
# 4 sizes tried, each within 16 bytes of the end: their last blocks stayed as cut).
_FILLERS = (bytes(range(0x21, 0xFF, 3)) * 4, bytes(b % 0xFF for b in random.Random(1).randbytes(200)))


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
        if marker in _FRAMES:
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


def stops(ended: bool) -> str:
    """How a JPEG's data that runs out stops: at an end marker, or where its file
    ends, with none (``unended``)."""
    return "stops at an end marker" if ended else "is cut short (no end marker)"


def unended(data: bytes) -> bytes | None:
    """The JPEG ``data`` closed with an end marker, where its last scan's data runs to
    the file's end: cut short there, or whole with its end marker left out (some
    cameras and encoders do), which Pillow refuses alike as truncated. Closed, it is
    told as one cut and closed with an end marker is (``missing_scans``,
    ``run_out_at``). One cut inside a header between scans (a progressive one's
    tables) is closed before that header. None where the data ends otherwise (cut
    before its first scan, an end marker there)."""
    if data[:2] != b"\xff\xd8" or _layout(data) is not None or (first := data.find(b"\xff\xda")) < 0:
        return None
    # A marker in scan data is always a header's: the data's own 0xFFs are stuffed.
    headers = [m.start() for m in _END_OF_DATA.finditer(data, first + 2)]
    for end in (len(data), *headers[-1:]):
        if _layout(data[:end] + b"\xff\xd9") is not None:
            return data[:end] + b"\xff\xd9"
    return None


def missing_scans(data: bytes, ended: bool = True) -> tuple[str, bool] | None:
    """What the JPEG ``data``'s scans lack, where its end marker comes before scans
    coding each of its frame's components (a progressive frame's, each coefficient
    to its last bit), and whether a component is missing whole: a cut short file,
    where a progressive one lacking only bits or bands of coefficients may be made so
    (libjpeg writes any script with its DC). None where they are all there, or where
    its markers cannot be walked. ``ended``: false where the file had no end marker
    of its own (``unended`` closed it), which the words say."""
    layout = _layout(data)
    if layout is None or layout[0] is None:
        return None
    frame, ids, scans = layout[:3]
    if frame not in _PROGRESSIVE_FRAMES:
        # A sequential scan codes each of its components' coefficients whole: only a
        # component in no scan is missing, as the count below finds it, 64 bits a
        # component at a time (a fifth of reading a small JPEG).
        covered = {c for components, _, _, _ in scans for c in components}
        if all(c in covered for c in ids):
            return None
        return f"JPEG: its data {stops(ended)} after {len(scans)} scans, before its picture is whole", True
    # The lowest bit each coefficient of each component is known to.
    known = {c: [None] * 64 for c in ids}
    for components, start, end, al in scans:
        for bits in (known[c] for c in components if c in known):
            for k in range(start, min(end, 63) + 1):
                bits[k] = al if bits[k] is None else min(bits[k], al)
    if all(bit == 0 for bits in known.values() for bit in bits):
        return None
    if any(bits[0] is None for bits in known.values()):
        return f"JPEG: its data {stops(ended)} after {len(scans)} scans, before its picture is whole", True
    return f"a progressive JPEG whose {len(scans)} scans end before the last bits of its coefficients", False


def scans(data: bytes) -> int:
    """How many scans the JPEG ``data`` holds before its end marker; 0 where its
    markers cannot be walked to one."""
    layout = _layout(data)
    return 0 if layout is None else len(layout[2])


def ends_grey(im: Image.Image) -> bool:
    """Whether the decoded JPEG ``im`` ends in the grey of blocks libjpeg had no
    data for: the one cheap sign that a sequential one's data may have run out;
    ``run_out_at`` tells. Its last MCU is looked at, the blocks decoded last, wherever
    the picture's edge cuts it: the 8x8 pixels at its corner straddled MCUs whose
    data was there. Upsampling blends an MCU's chroma with its neighbours', so its
    colour may be off grey there: its luma is not."""
    layer = getattr(im, "layer", None) or [(0, 1, 1, 0)]
    most_h, most_v = max(c[1] for c in layer), max(c[2] for c in layer)
    if len(layer) == 1 or not most_h or not most_v:  # one component: its MCU is one block
        most_h = most_v = 1
    left, top = (im.width - 1) // (8 * most_h) * 8 * most_h, (im.height - 1) // (8 * most_v) * 8 * most_v
    mcu = np.asarray(im.crop((left, top, im.width, im.height)), dtype=np.int32).reshape(-1, len(im.getbands()))
    if im.mode == "L":
        return bool((mcu == 128).all())
    if im.mode == "RGB":
        return _grey_luma(mcu)
    if im.mode != "CMYK":
        return False
    if np.isin(mcu[0], _EMPTY_BLOCK_SAMPLES).all() and (mcu == mcu[0]).all():
        return True
    # YCCK, which Pillow reads inverted: its colour channels are the RGB of its YCC,
    # its K that of an empty block inverted.
    return im.info.get("adobe_transform") == 2 and _grey_luma(mcu[:, :3]) and bool((mcu[:, 3] == 127).all())


def _grey_luma(rgb: np.ndarray) -> bool:
    """Whether the pixels ``rgb`` (int32, one a row) all have the luma of an empty
    block, 128: libjpeg's YCbCr to RGB tables, rounded, put it within 1 of that
    whatever the chroma, which can be off grey by no more than blending a grey block
    with its neighbours' takes it, so that no channel clips."""
    return bool((np.abs(rgb @ np.array([299, 587, 114], dtype=np.int32) - 128000) < 1000).all())


def run_out_at(data: bytes, im: Image.Image, ended: bool = True) -> tuple[int, int] | None:
    """Where the JPEG ``data``, decoded as ``im``, has blocks its data ran out before:
    bytes set before its end marker change its pixels, where after the last block
    libjpeg passes them over. A picture whose last blocks are coded grey is told from
    one whose data ran out so, at the cost of decoding it again (a progressive one
    twice, where the first bytes change nothing, and so is one without an end marker
    of its own, ``ended`` false). The first pixel they change, in the order its
    blocks are decoded, as (row, column); None where they do not, or cannot be set."""
    layout = _layout(data)
    if layout is None:
        return None
    frame, _, _, eoi, restarts, scan_start = layout
    while data[eoi - 1] == 0xFF:  # before fill bytes, one of which may be data's cut short
        eoi -= 1
    # Cut where an interval ends, libjpeg skips to the next restart marker: the bytes
    # follow the one it looks for too. After the last block it passes over them all,
    # a restart marker among them.
    done = [m[1] - 0xD0 for m in _RESTART.findall(data, scan_start, eoi)] if restarts else []
    restart = bytes((0xFF, 0xD0 + (done[-1] + 1 if done else 0) % 8)) if restarts else b""
    for filler in _FILLERS if frame in _PROGRESSIVE_FRAMES or not ended else _FILLERS[:1]:
        if restarts:
            filler += restart + filler
        try:
            with Image.open(io.BytesIO(data[:eoi] + filler + data[eoi:])) as other:
                other.load()
                if other.mode != im.mode or other.size != im.size:
                    return 0, 0
                changed = np.asarray(ImageChops.difference(other, im))
        except (OSError, SyntaxError, ValueError):  # the filler refused: no sign either way
            continue
        if changed.ndim == 3:
            changed = changed.any(axis=2)
        if changed.any():
            row = int(np.flatnonzero(changed.any(axis=1))[0])
            return row, int(np.flatnonzero(changed[row])[0])
    return None


def _layout(data: bytes) -> tuple[int | None, bytes, list[tuple[bytes, int, int, int]], int, int, int] | None:
    """The JPEG ``data``'s frame marker (None before any frame), its components'
    ids, its scans as (components' ids, first and last coefficient, last bit),
    where the end marker of its first picture is, the restart interval its last scan
    has (0 for none) and where that scan's data starts; None where its markers
    cannot be walked to that end marker."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, frame, ids, scans, restarts, scan_start = 2, None, b"", [], 0, 0
    while True:
        if pos + 2 > len(data) or data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker == 0xD9:
            return frame, ids, scans, pos, restarts, scan_start
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > len(data) or (n := struct.unpack_from(">H", data, pos + 2)[0]) < 2 or pos + 2 + n > len(data):
            return None
        body = data[pos + 4:pos + 2 + n]
        pos += 2 + n
        if marker in _FRAMES and frame is None and len(body) >= 6:
            frame, ids = marker, body[6:6 + 3 * body[5]:3]
        elif marker == 0xDD and len(body) >= 2:
            restarts = struct.unpack_from(">H", body)[0]
        elif marker == 0xDA:
            count = body[0] if body else 0
            if len(body) < 4 + 2 * count:
                return None
            start, end, bits = body[1 + 2 * count:4 + 2 * count]
            scans.append((body[1:1 + 2 * count:2], start, end, bits & 15))
            scan_start = pos
            if (after := _END_OF_DATA.search(data, pos)) is None:
                return None
            pos = after.start()


# DCT frames (Huffman or arithmetic coded, sequential or progressive), whose restart
# intervals count MCUs of 8x8 blocks.
_DCT_FRAMES = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}


def restarts_out_of_sequence(data: bytes) -> str | None:
    """Why the restart markers of the JPEG ``data`` show its data damaged: within a
    scan they number its intervals 0 to 7 over and over, one fewer than the
    intervals its MCUs fill (a last one after the last interval is let be). A marker
    lost or changed (a byte gone on an old disk, say) has libjpeg skip to the next
    one it finds, with a warning Pillow does not pass on, and decode the intervals
    between grey or shifted. None where they run in sequence, where the data has
    none, or where its markers cannot be walked to its end."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, frame, interval, scan_number = 2, None, 0, 0
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker == 0xD9:
            return None
        if marker in _STANDALONE:
            pos += 2
            continue
        n = struct.unpack_from(">H", data, pos + 2)[0]
        body = data[pos + 4:pos + 2 + n]
        if n < 2 or len(body) < n - 2:
            return None
        pos += 2 + n
        if marker in _FRAMES and frame is None:
            if marker not in _DCT_FRAMES or len(body) < 6 + 3 * body[5]:
                return None
            height, width = struct.unpack_from(">HH", body, 1)
            frame = (height, width, {body[6 + 3 * i]: (body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15)
                                     for i in range(body[5])})
        elif marker == 0xDD and len(body) >= 2:
            interval = struct.unpack_from(">H", body)[0]
        elif marker == 0xDA:
            if (end := _END_OF_DATA.search(data, pos)) is None:
                return None
            scan_number += 1
            if interval and frame is not None and (units := _units(frame, body[1:1 + 2 * body[0]:2])):
                found = [m[1] - 0xD0 for m in _RESTART.findall(data, pos, end.start())]
                needed = _ceil(units, interval) - 1
                wrong = next((k for k, number in enumerate(found[:needed + 1]) if number != k % 8), None)
                if wrong is not None or len(found) > needed + 1:
                    wrong = needed + 1 if wrong is None else wrong
                    return (f"JPEG: restart marker {wrong + 1} of {needed} in scan {scan_number} is missing or "
                            "out of sequence: its data is damaged")
                if len(found) < needed:
                    return (f"JPEG: scan {scan_number} holds {len(found) + 1} of its {needed + 1} restart "
                            "intervals: its data is damaged or cut short")
            pos = end.start()
    return None


def _units(frame: tuple[int, int, dict[int, tuple[int, int]]], scanned: bytes) -> int:
    """How many units a scan of the components ``scanned`` (their ids) of ``frame``
    (height, width, each component's sampling factors by id) codes: MCUs where it
    interleaves several, else that component's 8x8 blocks; 0 where it cannot be told
    (a height a DNL marker gives, an unknown component)."""
    height, width, sampling = frame
    if not height or not width or not sampling or any(c not in sampling for c in scanned) or not scanned:
        return 0
    most_h = max(h for h, _ in sampling.values())
    most_v = max(v for _, v in sampling.values())
    if not most_h or not most_v:
        return 0
    if len(scanned) > 1:
        return _ceil(width, 8 * most_h) * _ceil(height, 8 * most_v)
    h, v = sampling[scanned[0]]
    return _ceil(_ceil(width * h, most_h), 8) * _ceil(_ceil(height * v, most_v), 8)


# Huffman-coded DCT frames (baseline, extended, progressive): FFmpeg's decoder checks
# their codes. Others (arithmetic coded, lossless) are not checked: FFmpeg decodes
# no arithmetic-coded frame, and a refusal there would say nothing of the data.
_CHECKED_FRAMES = {0xC0, 0xC1, 0xC2}


def bad_codes(data: bytes, im: Image.Image) -> str | None:
    """Why the whole JPEG ``data``, decoded by Pillow as ``im``, has damaged
    entropy-coded data: codes no Huffman table holds, or coefficients past a block's
    end, which libjpeg decodes on with a warning Pillow does not pass on, into
    blocks of wrong colours, often every block after them shifted (a bit flipped
    on a disk or in a transfer). FFmpeg's JPEG decoder, told to stop at damage,
    finds them; where it decodes the picture when let conceal what it found, what
    it found is the data's, not a kind of JPEG it cannot read. None where it
    decodes the data whole, or cannot decode this kind at all."""
    frame, picture = _first_picture(data)
    if frame not in _CHECKED_FRAMES:
        return None
    try:
        import av  # loaded by the JPEGs that need it, not by every start
    except ImportError:  # a picture run does without PyAV, and without this check
        return None

    def decoded(strict: bool):
        decoder = av.CodecContext.create("mjpeg", "r")
        decoder.thread_count = 1  # the network has the cores
        if strict:
            decoder.options = {"err_detect": "explode"}
        return [*decoder.decode(av.Packet(picture)), *decoder.decode(None)]

    try:
        decoded(True)
        return None
    except av.error.InvalidDataError:
        pass
    except (av.error.FFmpegError, MemoryError):  # not the data's damage: no sign either way
        return None
    try:
        concealed = decoded(False)
    except (av.error.FFmpegError, MemoryError):
        return None
    if len(concealed) != 1 or (concealed[0].width, concealed[0].height) != im.size:
        return None
    row = _first_row_apart(concealed[0], im)
    where = f" from about row {row + 1} of {im.height}" if row is not None else ""
    return f"JPEG: its coded data is damaged{where} (codes that cannot be there)"


def _first_picture(data: bytes) -> tuple[int | None, bytes]:
    """The frame marker of the JPEG ``data``'s first picture (None where its headers
    cannot be walked to a frame and a scan) and its bytes, up to its first end marker
    (an MPO's first picture: FFmpeg would go on to the next)."""
    pos, frame = 2, None
    while data[:2] == b"\xff\xd8" and pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # a fill byte before the marker
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == 0xDA:
            end = data.find(b"\xff\xd9", pos)
            return frame, data if end < 0 else data[:end + 2]
        if marker in _FRAMES and frame is None:
            frame = marker
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None, data


def _first_row_apart(concealed, im: Image.Image) -> int | None:
    """The first row where FFmpeg's decoding ``concealed`` (a frame, stopped at the
    damage) and Pillow's ``im`` (decoded on through it) part: where the damage was
    found, at or after where it is. Their luma is compared (their IDCTs and colour
    conversions differ by a level or two); None where it cannot be (CMYK, RGB coded
    as RGB) or they do not part."""
    if im.mode not in ("L", "RGB") or not concealed.format.name.startswith(("yuvj", "gray")):
        return None
    plane = concealed.planes[0]
    theirs = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:im.height, :im.width].astype(np.int32)
    ours = np.asarray(im, dtype=np.int32)
    if im.mode == "RGB":
        ours = (ours @ np.array([299, 587, 114], dtype=np.int32) + 500) // 1000
    apart = (np.abs(theirs - ours) > 12).mean(axis=1) > 0.05
    return int(apart.argmax()) if apart.any() else None
