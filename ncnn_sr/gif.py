"""What GIF holds: a palette of at most 256 colours per frame, one of which may be
transparent. Pictures are reduced to it here. Knows nothing of ncnn."""
from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from PIL import Image

# GIF has no partial transparency: alpha below this is transparent, the rest opaque
# (the middle of the range, as gifsicle and ImageMagick cut it).
ALPHA_CUT = 128
# 255 colours from the picture; the last index is kept for the transparent pixels.
TRANSPARENT_INDEX = 255

# Pillow's own palette clean-up reorders the indices of each frame (only below
# 512x512), and with it the transparent one, which the frames of an animation
# disposed to the background then no longer shared.
SAVE_OPTIONS = {"optimize": False}
# Browsers (Chrome, Firefox, Safari) show a GIF frame of 10 ms or less for 100 ms,
# and gif2webp and FFmpeg read it so: GIFs are made to be seen that way, and their
# 0 or 10 ms kept in a WebP or APNG played them many times too fast.
SHORTEST_DELAY = 10
DEFAULT_DELAY = 100


def has_clear_pixels(image: np.ndarray) -> bool:
    """Whether an 8-bit H×W×C array has pixels a GIF shows transparent."""
    return image.shape[2] == 4 and bool((image[:, :, 3] < ALPHA_CUT).any())


def to_palette(image: np.ndarray, transparent: bool | None = None, kept: np.ndarray | None = None) -> Image.Image:
    """An 8-bit H×W×C array (C in 1, 3, 4) as a GIF frame: its colours reduced to a
    palette of 255 (``_searched``: median cut and the details it loses, undithered),
    and, where C is 4,
    TRANSPARENT_INDEX wherever alpha is under ALPHA_CUT. The frame has that
    transparent index (its ``info["transparency"]``) when ``transparent`` says so
    (None: when it has such pixels); an animation gives all its frames one if any
    has such pixels, as Pillow reads the frames after the first as opaque unless the
    first has one. ``kept``, an H×W boolean array, is where the frame is transparent
    too, to leave the one before showing there (with ``transparent``)."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    reduced = _searched(np.ascontiguousarray(rgb))
    if not (has_clear_pixels(image) if transparent is None else transparent):
        return reduced
    indices = np.asarray(reduced).copy()
    if image.shape[2] == 4:
        indices[image[:, :, 3] < ALPHA_CUT] = TRANSPARENT_INDEX
    if kept is not None:
        indices[kept] = TRANSPARENT_INDEX
    frame = Image.fromarray(indices, "P")
    palette = reduced.getpalette()[:3 * TRANSPARENT_INDEX]
    frame.putpalette(palette + [0] * (3 * 256 - len(palette)))
    frame.info["transparency"] = TRANSPARENT_INDEX
    return frame


# Median cut splits the colours where most pixels are, and a small detail of a colour
# of its own (an eye, a mouth's red, a sparkle) takes the colour of its surround: 15-22
# dB in its 8x8 block. Up to this many entries of its palette go to such details,
# searched among the pixels it left this far off (squared distance over the three
# channels: 18 levels a channel), this many at a time (8 at a time did no better, for
# more time).
DETAIL_COLOURS = 32
DETAIL_ROUND = 16
DETAIL_SAMPLE = 1 << 16
LOST = 1000
# Pixels nearer than this to their colour are not mapped to a detail's: it brings them
# little, and the search's working set stays small.
NEAR = 250
# Pixels worked on at a time: widened to 32 bits for their distances, all at once they
# took 12 bytes a pixel more beside the search.
_BAND = 1 << 14


def _searched(rgb: np.ndarray) -> Image.Image:
    """A contiguous 8-bit H×W×3 array as a palette picture of at most 255 colours,
    undithered (Pillow's search maps without dithering whatever it is asked): a median
    cut, then, DETAIL_ROUND at a time, the colours that Pillow's maximum coverage (the
    most frequent ones, which keeps a small detail's exact) finds among the pixels
    still LOST (DETAIL_SAMPLE of them at most), each in an entry left free or in place of the one whose pixels lose
    least in going to the nearest other entry, the pixels past NEAR and those of that
    entry mapped again. A round is kept only where the frame's squared error falls:
    a frame median cut keeps close is its picture as it was. Maximum coverage alone
    lost 2-7 dB on gradients and anti-aliased edges, and choosing it or median cut by
    the frame's error kept median cut on upscaled frames, and their details lost
    (docs/benchmarks.md)."""
    return _with_details(rgb, Image.fromarray(rgb).quantize(TRANSPARENT_INDEX, method=Image.Quantize.MEDIANCUT))


def _with_details(rgb: np.ndarray, reduced: Image.Image) -> Image.Image:
    """``reduced``, a palette picture of ``rgb`` (H×W×3), with the colours of the
    details it lost (``_searched``)."""
    indices = np.array(reduced).reshape(-1)
    if not indices.size:  # a picture of no pixels, which Pillow's search takes
        return reduced
    palette = np.array(reduced.getpalette(), np.uint8).reshape(-1, 3)[:int(indices.max()) + 1]
    pixels = rgb.reshape(-1, 3)
    off = np.empty(indices.size, np.int32)  # each pixel's squared distance to its colour
    for start in range(0, indices.size, _BAND):
        part = np.s_[start:start + _BAND]
        difference = palette[indices[part]].astype(np.int32) - pixels[part]
        off[part] = np.einsum("ij,ij->i", difference, difference)
    given = 0
    while given < DETAIL_COLOURS and (lost := int(np.count_nonzero(off > LOST))):
        # Every so many of the lost pixels, at most DETAIL_SAMPLE: all of a frame of
        # noise took as much memory and time again as its median cut.
        step = -(-lost // DETAIL_SAMPLE)
        sample = np.concatenate([pixels[start:start + _BAND][off[start:start + _BAND] > LOST][::step]
                                 for start in range(0, indices.size, _BAND)])
        colours = Image.fromarray(sample[None]).quantize(
            min(DETAIL_ROUND, DETAIL_COLOURS - given), method=Image.Quantize.MAXCOVERAGE)
        del sample
        found = np.array(colours.getpalette(), np.uint8).reshape(-1, 3)[np.unique(np.asarray(colours))]
        free = min(TRANSPARENT_INDEX - len(palette), len(found))
        between = _squared_distances(palette, palette)
        np.fill_diagonal(between, np.iinfo(np.int32).max)
        cost = np.bincount(indices, minlength=len(palette)) * between.min(axis=1).astype(np.float64)
        dropped = np.argsort(cost, kind="stable")[:len(found) - free]
        slots = np.concatenate([np.arange(len(palette), len(palette) + free), dropped]).astype(np.uint8)
        tried = np.concatenate([palette, found[:free]])
        tried[dropped] = found[free:]
        gone = np.zeros(256, bool)
        gone[dropped] = True
        # The pixels of a dropped entry go to the nearest of all; those past NEAR to a
        # detail's colour where it is nearer. Into copies, a band at a time, as the
        # round may be undone.
        new_indices, new_off = indices.copy(), off.copy()
        for start in range(0, indices.size, _BAND):
            part = np.s_[start:start + _BAND]
            band_indices, band_off, band_pixels = new_indices[part], new_off[part], pixels[part]
            moved = gone[band_indices]
            band_indices[moved], band_off[moved] = _nearest(band_pixels[moved], tried)
            near = np.flatnonzero((band_off > NEAR) & ~moved)
            to, distance = _nearest(band_pixels[near], tried[slots])
            nearer = distance < band_off[near]
            band_indices[near[nearer]], band_off[near[nearer]] = slots[to[nearer]], distance[nearer]
        if new_off.sum(dtype=np.int64) >= off.sum(dtype=np.int64):
            break
        indices, off, palette = new_indices, new_off, tried
        given += len(found)
    if not given:
        return reduced
    picture = Image.fromarray(indices.reshape(rgb.shape[:2]), "P")
    picture.putpalette(palette.tobytes())
    return picture


def _squared_distances(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The N×M squared distances, int32, of N×3 colours to M×3 ones."""
    difference = colours[:, None, :].astype(np.int32) - palette[None, :, :]
    return np.einsum("ijk,ijk->ij", difference, difference)


def _nearest(colours: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For N×3 colours, the index (uint8) of the nearest of a palette's M×3 and the
    squared distance (int32) to it, a band at a time. Ranked by |p|² - 2c·p in
    float32, whose integers stay exact below 2**24, a channel at a time: the
    differences of every pair took 12 bytes each and three times as long, and a
    matrix product, BLAS's threads waiting, 20 times as much CPU on small bands."""
    to, off = np.empty(len(colours), np.uint8), np.empty(len(colours), np.int32)
    entries = palette.astype(np.float32)
    lengths = (entries * entries).sum(axis=1)
    for start in range(0, len(colours), _BAND):
        part = np.s_[start:start + _BAND]
        band = colours[part].astype(np.float32) * -2
        scores = lengths + band[:, :1] * entries[:, 0]
        for channel in (1, 2):
            scores += band[:, channel:channel + 1] * entries[:, channel]
        to[part] = scores.argmin(axis=1)
        difference = palette[to[part]].astype(np.int32) - colours[part]
        off[part] = np.einsum("ij,ij->i", difference, difference)
    return to, off


# A pixel that moved no more than this, in each channel, from the colour it was last
# drawn in is left as drawn: upscaled frames of a background that stays still differ
# by a level or two near what moves.
KEPT_WITHIN = 2


class Frame(NamedTuple):
    """A frame as written: its palette picture, cut to its box, where the box lies on
    the canvas, and how the frame is disposed of before the next is drawn."""
    picture: Image.Image
    left: int
    top: int
    disposal: int


def animation_to_palette(frames: list[np.ndarray]) -> list[Frame]:
    """8-bit H×W×C frames of one shape (C in 3, 4) as GIF frames (``to_palette``).
    The first is drawn whole; each after it draws only the pixels that changed (past
    KEPT_WITHIN) or that the canvas does not show, the others transparent, and is
    cut to the box of those: reduced whole with a palette of its own, a background
    that stayed still came out in other colours every frame, and shimmered. Where a
    pixel the canvas shows must turn clear, the frame before is disposed to the
    background (2), which clears its box, widened to every such pixel, and the
    frame draws all it shows there; the others are left as they are (1). Where any
    frame has clear pixels, the last clears all the canvas shows, as the first
    frame, drawn again, expects."""
    any_clear = any(has_clear_pixels(frame) for frame in frames)
    drawn = np.array(frames[0][:, :, :3])  # each pixel's colour when it was last drawn
    shows = _opaque(frames[0])  # where the canvas shows a pixel
    # The first frame of an opaque animation without a transparent index: read alone
    # (a still of it, jpg say), it is opaque.
    pictures = [to_palette(_reduced(frames[0], shows), transparent=any_clear, kept=~shows)]
    # The colours the canvas shows, which only a canvas cleared in part draws again.
    seen = np.array(pictures[0].convert("RGB")) if any_clear else None
    boxes: list[tuple[int, int, int, int] | None] = [(0, 0, *shows.shape)]
    disposals = []
    for frame in frames[1:]:
        clear = ~_opaque(frame)
        to_clear = _box(shows & clear)
        disposals.append(1 if to_clear is None else 2)
        unchanged = ~clear
        for channel in range(3):  # one at a time, and unsigned: less memory
            now, then = frame[:, :, channel], drawn[:, :, channel]
            unchanged &= np.maximum(now, then) - np.minimum(now, then) <= KEPT_WITHIN
        # Pixels cleared with the box but unchanged are drawn again in the colours they
        # showed, which the palette holds exactly where they and the new ones are 255
        # colours at most: reduced anew, a sticker moving through a clear surround
        # shimmered wherever its box was cleared. They keep the colour they were
        # drawn for, as the pixels left as drawn do.
        again = cleared = None
        if to_clear is not None:
            box = boxes[-1] = _union(boxes[-1], to_clear)
            cleared = np.s_[box[0]:box[2], box[1]:box[3]]
            again = shows[cleared] & unchanged[cleared]
            shows[cleared] = False
        draw = ~(shows & unchanged | clear)
        del clear, unchanged  # the palette search beside them takes the most memory
        before = None if again is None else drawn[cleared].copy()
        np.copyto(drawn, frame[:, :, :3], where=draw[:, :, None])
        if again is not None:
            np.copyto(drawn[cleared], before, where=again[:, :, None])
        reduced = _reduced(frame, draw, seen, cleared, again)
        del before, again
        # The box of the frame before is now as it is written.
        pictures[-1] = _cut(pictures[-1], boxes[-1])
        picture = to_palette(reduced, transparent=True, kept=~draw)
        del reduced
        pictures.append(picture)
        if seen is not None:
            palette = np.array(picture.getpalette(), np.uint8).reshape(-1, 3)
            seen[draw] = palette[np.asarray(picture)[draw]]
        shows |= draw
        boxes.append(_box(draw))
    disposals.append(1)
    if any_clear:
        disposals[-1] = 2
        boxes[-1] = _union(boxes[-1], _box(shows))
    pictures[-1] = _cut(pictures[-1], boxes[-1])
    return [Frame(picture, box[1] if box else 0, box[0] if box else 0, disposal)
            for picture, box, disposal in zip(pictures, boxes, disposals)]


def write_animation(f, frames: list[Frame], durations: list[int], loop: int | None = None,
                    comment: str | bytes | None = None) -> None:
    """Write ``frames`` (``animation_to_palette``) as a GIF to the file ``f``, each
    shown for its duration in ``durations`` (ms), repeated ``loop`` times after the
    first showing (0: for ever; None: no count, shown once), with ``comment``.
    Each frame is written alone, in its box, by Pillow's encoder: its own writer of
    an animation cuts each frame to what differs from the one before, and after a
    frame disposed to the background, to what differs from the background colour,
    so an opaque black edge there was not drawn and showed clear.

    The global table holds the colours that most frames draw exactly
    (``_shared_colours``): those frames carry no table of their own, the others one
    of only the colours they draw (``_fewest_colours``)."""
    colours, clear, sharing = _shared_colours([frame.picture for frame in frames])
    table = _table(colours, clear)
    width, height = frames[0].picture.size
    f.write(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80 | _table_bits(len(table) // 3) - 1, 0, 0))
    f.write(table)
    if loop is not None:
        f.write(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00")
    if comment:
        text = comment.encode() if isinstance(comment, str) else bytes(comment)
        f.write(b"!\xfe" + b"".join(bytes([len(text[i:i + 255])]) + text[i:i + 255]
                                    for i in range(0, len(text), 255)) + b"\x00")
    for index, (frame, duration) in enumerate(zip(frames, durations)):
        own = index not in sharing
        picture, transparent = _fewest_colours(frame.picture, None if own else colours)
        if transparent is not None or duration or frame.disposal:
            f.write(b"!\xf9\x04" + struct.pack("<BHB", (frame.disposal << 2) | (transparent is not None),
                                                 duration // 10, transparent or 0) + b"\x00")
        local = _table(_numbers(np.array(picture.getpalette(), np.uint8).reshape(-1, 3)), False) if own else b""
        f.write(b"," + struct.pack("<HHHHB", frame.left, frame.top, *picture.size,
                                   0x80 | _table_bits(len(local) // 3) - 1 if own else 0))
        f.write(local)
        f.write(_lzw(picture, _table_bits(len(local or table) // 3)))
    f.write(b";")


def _lzw(picture: Image.Image, bits: int) -> bytes:
    """The image data of the palette picture ``picture``, whose indices are below
    2**``bits``: its LZW code size, the codes in sub-blocks, and their terminator.
    Pillow's writer starts the codes at 9 bits whatever the table (a code size of
    8), so a frame of 4 colours took about a third more than at 3 bits."""
    bits = max(bits, 2)  # the least GIF allows
    return bytes([bits]) + picture.tobytes("gif", "P", bits, 0) + b"\x00"


def _used(picture: Image.Image) -> tuple[np.ndarray, int | None]:
    """The palette indices ``picture`` draws in (its transparent one left out) and its
    transparent index, None where it has none."""
    transparent = picture.info.get("transparency")
    # Pillow's count: numpy's took a copy of the pixels, and 8 bytes a pixel more.
    used = np.flatnonzero(picture.histogram())
    return (used if transparent is None else used[used != transparent]), transparent


def _numbers(rgb: np.ndarray) -> np.ndarray:
    """N×3 colours as 24-bit numbers."""
    rgb = rgb.astype(np.uint32)
    return rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]


def _colours(picture: Image.Image) -> np.ndarray:
    """The colours ``picture`` draws, as sorted 24-bit numbers."""
    used, _ = _used(picture)
    return np.unique(_numbers(np.array(picture.getpalette(), np.uint8).reshape(-1, 3)[used]))


def _table(colours: np.ndarray, clear: bool) -> bytes:
    """The colour table of ``colours`` (24-bit numbers), with a transparent entry after
    them where ``clear``, padded to a size GIF holds (2, 4 ... 256 entries)."""
    rgb = np.stack([colours >> 16, colours >> 8 & 255, colours & 255], axis=1).astype(np.uint8)
    table = rgb.tobytes() + (bytes(3) if clear else b"")
    return table + bytes((3 << _table_bits(len(table) // 3)) - len(table))


def _table_bits(entries: int) -> int:
    """The bits of the GIF colour table size that holds ``entries``."""
    return max(1, (max(entries, 1) - 1).bit_length())


def _shared_colours(pictures: list[Image.Image]) -> tuple[np.ndarray, bool, set[int]]:
    """The colours of the global table (sorted 24-bit numbers), whether it needs a
    transparent entry, and the frames (by index) that use it, which must draw no
    colour outside it. Colours are reduced for each frame (``to_palette``), but
    frames that draw alike (a sprite shown again, a disc that blinks) draw the same
    colours, or most of them: gifsicle put those of two such frames in its global
    table, where each carried 768 bytes of its own. The frames are gathered while
    their colours fit in 255 (a transparent entry after them), first those whose
    colours most frames draw, then in order, and the table that saves the most bytes
    is kept; where none saves any, the first frame's own colours (as it was)."""
    sets = [_colours(picture) for picture in pictures]
    clear = ["transparency" in picture.info for picture in pictures]
    own = [_table_bytes(colours.size + c) for colours, c in zip(sets, clear)]
    everything, frames_of = np.unique(np.concatenate(sets), return_counts=True)
    popular = [-frames_of[np.searchsorted(everything, colours)].mean() if colours.size else -len(sets)
               for colours in sets]
    best, saved = (sets[0], clear[0], {0}), 0
    for order in (np.argsort(popular, kind="stable"), range(len(sets))):
        colours, members = sets[0][:0], []
        for index in order:
            joined = np.union1d(colours, sets[index])
            if joined.size <= TRANSPARENT_INDEX:
                colours = joined
                members.append(int(index))
        needs_clear = any(clear[i] for i in members)
        gain = sum(own[i] for i in members) - _table_bytes(colours.size + needs_clear)
        if gain > saved:
            best, saved = (colours, needs_clear, set(members)), gain
    return best


def _table_bytes(entries: int) -> int:
    """The bytes of the GIF colour table that holds ``entries``."""
    return 3 << _table_bits(entries)


def _fewest_colours(picture: Image.Image, shared: np.ndarray | None = None) -> tuple[Image.Image, int | None]:
    """``picture`` (``to_palette``'s) with only the colours it draws in its palette,
    and its transparent index, if it has one, after them: a frame that draws a small
    square carried all 256 entries, 768 bytes, more than half of a sticker's file.
    Where it uses the global table of the colours ``shared`` (sorted 24-bit numbers,
    every one it draws among them; a transparent entry after them), its indices are
    that table's. Each frame says its own transparent index."""
    used, transparent = _used(picture)
    rgb = np.array(picture.getpalette(), np.uint8).reshape(-1, 3)[used]
    renumbered = np.zeros(256, np.uint8)
    if shared is None:
        renumbered[used] = np.arange(used.size)
        clear = used.size
    else:
        renumbered[used] = np.searchsorted(shared, _numbers(rgb))
        clear = shared.size
    if transparent is not None:
        renumbered[transparent] = clear
    fewer = picture.point(renumbered.tolist())  # one copy: numpy's indexing took three
    if shared is None:
        # A table holds one entry at least: a frame that draws nothing has one.
        fewer.putpalette(rgb.tobytes() + (bytes(3) if transparent is not None or not used.size else b""))
    return fewer, None if transparent is None else int(clear)


def _cut(picture: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    """``picture`` cut to ``box``; to one transparent pixel where None (a frame that
    draws nothing: without a frame there, the one before would show for both times)."""
    top, left, bottom, right = box or (0, 0, 1, 1)
    if (top, left, bottom, right) == (0, 0, picture.height, picture.width):
        return picture
    return picture.crop((left, top, right, bottom))


def _reduced(frame: np.ndarray, draw: np.ndarray, seen: np.ndarray | None = None, cleared=None,
             again: np.ndarray | None = None) -> np.ndarray:
    """The colours ``to_palette`` reduces for ``frame``: ``seen`` at the pixels
    ``again`` of the box ``cleared`` (a slice), and at every pixel not drawn
    (``draw``) the colour of one drawn, to take no place in the palette (a clear
    one's took one); the pixels not drawn are its ``kept``. ``frame`` itself where
    it is drawn whole."""
    whole = bool(draw.all())
    if whole and again is None:
        return frame
    reduced = np.array(frame[:, :, :3])
    if again is not None:
        np.copyto(reduced[cleared], seen[cleared], where=again[:, :, None])
    if not whole and draw.any():
        reduced[~draw] = reduced.reshape(-1, 3)[np.argmax(draw)].copy()
    return reduced


def _opaque(image: np.ndarray) -> np.ndarray:
    """Where an 8-bit H×W×C array shows in a GIF."""
    if image.shape[2] != 4:
        return np.ones(image.shape[:2], bool)
    return image[:, :, 3] >= ALPHA_CUT


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (top, left, bottom, right) of the true pixels of ``mask``; None where none is."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1


def _union(one, other):
    """The box that holds both boxes, either of which may be None."""
    if one is None or other is None:
        return other if one is None else one
    return min(one[0], other[0]), min(one[1], other[1]), max(one[2], other[2]), max(one[3], other[3])


# --- reading --------------------------------------------------------------------------

def frames_as_shown(data: bytes, failed: list | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of the GIF ``data`` as browsers show it, 8-bit RGBA of the canvas
    size, and each frame's duration in milliseconds as browsers show it: a delay of
    SHORTEST_DELAY or less (0 or 1 hundredth) is DEFAULT_DELAY.

    Browsers start from a clear canvas and clear a frame's box when it is disposed
    to the background (2); Pillow's reader paints both in the background colour
    instead, unless the frame has a transparent index, so a frame smaller than the
    canvas, or a box disposed of, showed as an opaque block. Each frame's own pixels
    are decoded by Pillow (one frame alone, as a GIF of its box); the composition is
    done here. A broken file raises what Pillow raises, or EOFError; or where
    ``failed`` is a list, gives the frames before, the error put in it."""
    shown = []
    try:
        shown.extend(_shown(data))
    except Exception as e:  # noqa: BLE001 - a damaged frame's, whatever Pillow raised
        if failed is None or not shown:
            raise
        failed.append(e)
    if not shown:
        raise SyntaxError("broken GIF: no frame")
    return [frame for frame, _ in shown], [duration for _, duration in shown]


def first_as_shown(data: bytes) -> np.ndarray:
    """The first frame of the GIF ``data`` as ``frames_as_shown`` gives it, the
    frames after it left undecoded."""
    first = next(_shown(data), None)
    if first is None:
        raise SyntaxError("broken GIF: no frame")
    return first[0]


def frame_count(data: bytes) -> int:
    """How many frames ``frames_as_shown`` gives of the GIF ``data``, its blocks walked
    and none decoded. Pillow's count can be fewer: after an extension whose data is
    empty it takes the next byte for a sub-block's size and passes over what
    follows, frames and all, so a small file counted as 2 frames was composed as
    thousands, each of the whole canvas, past what the memory budget allowed for."""
    count = 0
    try:
        for _ in _images(data):
            count += 1
    except EOFError:
        count += 1  # a frame cut short counts, as Pillow counts it: read_frames fails on it
    return count


def cut_short(data: bytes) -> str | None:
    """Where the GIF ``data`` is cut short, in words ("GIF: cut short after frame 2"),
    its blocks walked; None where they run whole (a missing trailer is no cut)."""
    whole = 0
    try:
        for _ in _images(data):
            whole += 1
    except EOFError:
        return f"GIF: cut short after frame {whole}" if whole else "GIF: cut short in its first frame"
    except SyntaxError:
        return None
    return None


def damaged_image(data: bytes) -> str | None:
    """Which frame of the GIF ``data``, its blocks whole, has image data that stops
    or breaks before its last pixels (an old encoder's, a disk's damage), in words:
    Pillow said 'image file is truncated' of a file that was not. Browsers show
    such a frame's pixels up to there. None where each decodes, or the blocks are
    cut short (``cut_short`` says where)."""
    number = 0
    try:
        for number, _ in enumerate(_shown(data), 1):
            pass
    except OSError as e:
        if e.errno is None:
            return f"GIF: frame {number + 1}'s image data is damaged or ends before its last pixels"
    except (EOFError, SyntaxError, ValueError, struct.error):
        pass
    return None


# Photoshop's and ExifTool's XMP in a GIF: an application extension whose data is the
# packet as it is, then a "magic trailer" (1, 255 down to 0: 257 bytes) that brings a
# reader walking it as sub-blocks to the terminator after it.
_XMP_APPLICATION = b"\x0bXMP DataXMP"
_XMP_TRAILER = 257
# ImageMagick's ICC profile in a GIF: an application extension whose data sub-blocks hold it.
_ICC_APPLICATION = b"\x0bICCRGBG1012"


def xmp(data: bytes) -> bytes | None:
    """The XMP packet of the GIF ``data`` (its first "XMP DataXMP" extension), or
    None where it has none, or its blocks are broken before one. Pillow reads none."""
    found = _application(data, _XMP_APPLICATION)
    if found is None:
        return None
    packet = data[found[0]:found[1] - 1 - _XMP_TRAILER]
    return packet if b"<x:xmpmeta" in packet else None


def icc(data: bytes) -> bytes | None:
    """The ICC profile of the GIF ``data`` (its first "ICCRGBG1012" extension's data
    sub-blocks, as ImageMagick writes it), or None where it has none, or its blocks
    are broken before one. Pillow reads none."""
    found = _application(data, _ICC_APPLICATION)
    if found is None:
        return None
    pos, parts = found[0], []
    while size := data[pos]:  # _application walked them: each is whole
        parts.append(data[pos + 1:pos + 1 + size])
        pos += size + 1
    return b"".join(parts) or None


# The looping extension's names: Netscape's, and the one some encoders wrote after it.
_LOOPING_APPLICATIONS = (b"\x0bNETSCAPE2.0", b"\x0bANIMEXTS1.0")


def loop_count(data: bytes) -> int | None:
    """The repeats the GIF ``data`` asks for (0 for ever), from its last looping
    extension, wherever it is: Chrome and Firefox read one after the first frame
    too, and by either name, where Pillow reads one before it, by Netscape's. None
    where it has none, or its blocks are broken before one."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    pos, found = 13 + _palette_size(data[10]), None
    try:
        while (kind := _byte(data, pos)) in (0x21, 0x2C):
            if kind == 0x2C:
                pos = _skip_blocks(data, pos + 10 + _palette_size(_byte(data, pos + 9)) + 1)
                continue
            end = _skip_blocks(data, pos + 2)
            if _byte(data, pos + 1) == 0xFF and data[pos + 2:pos + 14] in _LOOPING_APPLICATIONS:
                sub = pos + 14  # its first sub-block: size, then 1 and the count for looping
                if data[sub] >= 3 and data[sub + 1] & 7 == 1:
                    found = int.from_bytes(data[sub + 2:sub + 4], "little")
            pos = end
    except EOFError:
        pass
    return found


def _application(data: bytes, name: bytes) -> tuple[int, int] | None:
    """Where the data of the GIF ``data``'s first application extension ``name``
    (its 11-byte block, with the size before it) starts and where the extension
    ends; None where it has none, or its blocks are broken before one."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    pos = 13 + _palette_size(data[10])
    try:
        while (kind := _byte(data, pos)) in (0x21, 0x2C):
            if kind == 0x2C:  # an image: past its descriptor, palette, LZW code size and data
                pos = _skip_blocks(data, pos + 10 + _palette_size(_byte(data, pos + 9)) + 1)
                continue
            end = _skip_blocks(data, pos + 2)
            if _byte(data, pos + 1) == 0xFF and data[pos + 2:pos + 14] == name:
                return pos + 14, end
            pos = end
    except EOFError:
        pass
    return None


def _images(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """Where each image of the GIF ``data`` starts (its descriptor), the graphic
    control extension before it (b"" if none), and where it ends."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise SyntaxError("not a GIF file")
    pos = 13 + _palette_size(data[10])
    control, seen = b"", False
    while True:
        if pos >= len(data) and seen and not control:
            # A GIF without its trailer, which viewers and Pillow show as it is; not
            # where a graphic control extension came last: its frame is cut off.
            break
        kind = _byte(data, pos)
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: keep the graphic control one for the next image
            label, start = _byte(data, pos + 1), pos
            pos = _skip_blocks(data, pos + 2)
            if label == 0xF9:
                control = data[start:pos]
            continue
        if kind != 0x2C:
            pos += 1  # a stray byte, which Pillow's reader passes over too
            continue
        image_flags = _byte(data, pos + 9)
        end = pos + 10 + _palette_size(image_flags)
        end = _skip_blocks(data, end + 1)  # past the LZW minimum code size, then the data
        yield pos, control, end
        seen, control, pos = True, b"", end


def _shown(data: bytes) -> Iterator[tuple[np.ndarray, int]]:
    """Each frame of the GIF ``data`` composed on the canvas, with its duration as
    shown, one at a time."""
    canvas = None
    for pos, control, end in _images(data):
        if canvas is None:
            width, height, flags = struct.unpack_from("<HHB", data, 6)
            screen = data[10:13]  # flags, background, aspect: the global palette goes with it
            palette = data[13:13 + _palette_size(flags)]
        left, top, w, h = struct.unpack_from("<HHHH", data, pos + 1)
        disposal = (control[3] >> 2) & 7 if len(control) >= 8 else 0
        if disposal == 4:  # reserved, written by some encoders for 3: browsers restore the box
            disposal = 3
        delay = struct.unpack_from("<H", control, 4)[0] * 10 if len(control) >= 8 else 0
        alone = (b"GIF89a" + struct.pack("<HH", w, h) + screen + palette + control + b"\x2c"
                 + struct.pack("<HHHH", 0, 0, w, h) + data[pos + 9:end] + b"\x3b")
        if w and h:
            with Image.open(io.BytesIO(alone)) as im:
                pixels = np.asarray(im.convert("RGBA"))
        else:  # a frame of no pixels draws none (Pillow cannot open a GIF of its size)
            pixels = np.zeros((h, w, 4), np.uint8)
        if canvas is None:
            # The first frame's box widens a smaller screen (one of 0x0, as some
            # encoders write it), as it does in Pillow's reader and browsers.
            canvas = np.zeros((max(height, top + h), max(width, left + w), 4), np.uint8)
        box = canvas[top:top + h, left:left + w]  # a box past the canvas is cut to it
        pixels = pixels[:box.shape[0], :box.shape[1]]
        before = canvas.copy() if disposal == 3 else None
        shown = pixels[:, :, 3] > 0
        box[shown] = pixels[shown]
        yield canvas.copy(), DEFAULT_DELAY if delay <= SHORTEST_DELAY else delay
        if disposal == 2:
            box[:] = 0
        elif disposal == 3:
            canvas = before


def _palette_size(flags: int) -> int:
    """Bytes of the colour table that a screen's or image's ``flags`` say follows."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _byte(data: bytes, pos: int) -> int:
    if pos >= len(data):
        raise EOFError("GIF cut short")
    return data[pos]


def _skip_blocks(data: bytes, pos: int) -> int:
    """Past the data sub-blocks starting at ``pos`` and their terminator."""
    while (size := _byte(data, pos)):
        pos += size + 1
    if pos > len(data):
        raise EOFError("GIF cut short")
    return pos + 1
