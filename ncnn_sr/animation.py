"""Animated pictures (GIF, WebP, APNG, AVIF): every frame as a viewer shows it,
and written back so (as WebP, APNG or GIF). Knows nothing of ncnn."""
from __future__ import annotations

import numbers
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import avif, damaged
from .errors import InputError, Option, SettingError, describe, in_one_line, with_article
from .fixed import fixed_fields
from .apng import animate, frames_as_shown as apng_frames
from .gif import animation_to_palette as gif_pictures, frames_as_shown as gif_frames
from .gif import loop_count as gif_loop_count, write_animation as write_gif
from .images import (FORMATS, GREY_MODES, ImageInfo, check_fits, checked_metadata, checked_write, comment_option,
                     count_frames, decoding, file_path, gif_profile, open_mended, palette_to_srgb, pillow_warnings,
                     png_file, promised_write, read_image, reading, save_options, sized, write_bytes, write_still,
                     damage_words)
from .metadata import EXIF_ORIENTATION, orient, readable_exif
from .png import mended as mended_png
from .pixels import check_image, to_eight_bit

# What gives an animation's damaged first frame alone: a command, asked for a still
# format, reads that frame alone; read_frames's caller asks read_image. Said as it
# is by each command (no flag of ncnn-sr's to send the drop-in's user to).
FIRST_FRAME_ALONE = Option("a jpg of it is that frame, read as far as it goes",
                           "read_image with skip_damaged=True reads that frame as far as it goes", everywhere=True)

@fixed_fields("anim")
@dataclass(frozen=True)
class Animation:
    """The frames of an animated picture and their timing.

    ``frames`` are whole pictures (no frame leans on the one before), as
    ``check_image`` takes them and all of one shape and dtype. ``durations`` holds
    each frame's time on screen in milliseconds, one per frame. ``plays`` is how many
    times the animation is shown, 0 for ever."""

    frames: tuple[np.ndarray, ...]
    durations: tuple[int, ...]
    plays: int = 0

    def __post_init__(self) -> None:
        given = self.frames
        if isinstance(given, np.ndarray):  # one array would be taken row by row
            if not given.ndim:
                raise InputError("an animation needs a sequence of one or more frames, got a 0-d array")
            shape = "x".join(map(str, given.shape))
            picture = ", or one picture as (picture,)" if given.ndim < 4 else ""
            raise InputError(f"an animation needs a sequence of one or more frames, got {with_article(shape)} array: give its "
                             f"frames as tuple(frames){picture}")
        if isinstance(given, (str, bytes)) or not isinstance(given, Iterable) or not (frames := tuple(given)):
            raise InputError(f"an animation needs a sequence of one or more frames, got {describe(given)}")
        frames = tuple(check_image(frame) for frame in frames)
        for frame in frames:
            if (frame.shape, frame.dtype) != (frames[0].shape, frames[0].dtype):
                raise InputError(f"animation frames must all be of one shape and dtype: {frames[0].shape} "
                                 f"{frames[0].dtype} and {frame.shape} {frame.dtype}")
        durations = tuple(self.durations) if isinstance(self.durations, Iterable) else None
        if durations is None or len(durations) != len(frames) or not all(_whole(d) for d in durations):
            raise InputError(f"an animation needs one whole number of milliseconds (0 or more) per frame, "
                             f"got {describe(self.durations)} for its {len(frames)} frame{'' if len(frames) == 1 else 's'}")
        if not _whole(self.plays):
            raise InputError(f"plays must be a whole number, 0 or more, got {describe(self.plays)}")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "durations", tuple(int(d) for d in durations))
        object.__setattr__(self, "plays", int(self.plays))

    def __repr__(self) -> str:
        # The dataclass's printed every frame's pixels.
        shape = "x".join(map(str, self.frames[0].shape))
        return (f"Animation(frames=<{len(self.frames)} of {shape} {self.frames[0].dtype}>, "
                f"durations={self.durations!r}, plays={self.plays!r})")

    def __eq__(self, other: object) -> bool:
        # The dataclass's == compared the frame tuples, whose arrays answer == with an
        # array: a ValueError for any two animations of separate, equal-shaped frames.
        if not isinstance(other, Animation):
            return NotImplemented
        return (self.durations == other.durations and self.plays == other.plays
                and len(self.frames) == len(other.frames)
                and all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(self.frames, other.frames)))


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


@in_one_line  # a file name may hold a line break
def read_frames(path: str | bytes | os.PathLike, info: ImageInfo | None = None,
                skip_damaged: bool = False) -> tuple[Animation, ImageInfo]:
    """Every frame of a picture as a viewer shows it, and its ImageInfo (that of
    ``read_image``, whose ``frames`` is the frame count). ``info``, what
    ``read_image`` already gave for this file, spares an animation that first read.

    Each frame is the whole canvas after the file's disposal and blending (a GIF's
    composed as browsers do, by ``gif.frames_as_shown``, an APNG's as its
    specification says, by ``apng.frames_as_shown``, a WebP's by Pillow's reader
    when seeking), turned upright as the picture's EXIF says; all are
    8-bit RGB, or RGBA when any frame has transparency, but a 16-bit APNG's in 16
    bits (its grey as colour), and a 10- or 12-bit AVIF's RGB in 16 bits, as
    ``read_image`` reads a still one. Durations are as viewers show them too: a GIF frame of
    10 ms or less (0 or 1 hundredth) is 100 ms, as browsers, gif2webp and FFmpeg
    play it, so a GIF written back has 10 hundredths there, which plays alike. A
    still picture (an MPO's, PSD's or TIFF's further frames are no animation) gives
    ``read_image``'s pixels as its one frame, shown once. Every failure, a broken
    frame midway included, is an InputError naming the file, but for the memory
    running out, a MemoryError naming it. An animation damaged past its first frame
    is refused naming ``skip_damaged``, with which it gives the frames before the
    damaged one, with a warning; a damaged still is read as ``read_image`` reads it
    with it. One damaged in its first frame is refused still."""
    path = file_path(path, "read_frames")
    if info is not None and not isinstance(info, ImageInfo):
        raise InputError(f"info must be the ImageInfo read_image gave, got {describe(info)}")
    if not isinstance(skip_damaged, (bool, np.bool_)):
        raise SettingError(f"skip_damaged must be True or False, got {describe(skip_damaged)}")
    if info is None or info.frames == 1:
        first, info = read_image(path, skip_damaged)
        if info.frames == 1:
            return Animation((first,), (0,), plays=1), info
    with damaged.skipping(skip_damaged), reading(path):
        try:
            return _read_all(path, info), info
        except damaged.RAN_OUT as e:
            if not skip_damaged or getattr(e, "errno", None) is not None:
                raise
            # Its first frame was read, as a still, as far as it goes: said, where
            # asked to read damage, as what can be had instead.
            raise InputError(f"{path}: broken or truncated picture ({damage_words(path, e)}): its first frame is "
                             "damaged, so no frame of the animation is whole (", FIRST_FRAME_ALONE, ")") from None


def _read_all(path: str, info: ImageInfo) -> Animation:
    count = info.frames
    with pillow_warnings():
        im = open_mended(path)  # read_image warned of what is left out
    with im:
        with pillow_warnings():
            found = count_frames(im, path)
        if (im.format, found) != (info.format, count):
            # Trusted, a still was "broken or truncated" and a WebP's frames past the count were lost.
            raise InputError(f"{path}: info is another picture's (it says {describe(info.format)}, "
                             f"{describe(count)} frames; the file is {im.format!r}, {found}): give what read_image "
                             "gave for this file, or none")
        exif = readable_exif(im)
        orientation = exif.get(EXIF_ORIENTATION, 1) if exif is not None else 1
        plays = _plays(im, path)
        failed = []  # where damaged frames end it, their error (damaged.skips)
        composed = {"GIF": gif_frames, "PNG": apng_frames}.get(im.format)
        if composed is not None:
            # Composed here: Pillow paints a GIF frame's uncovered canvas and its box
            # disposed to the background in the background colour, where browsers
            # leave them clear, and draws an APNG frame blended over the canvas
            # through its own alpha as a mask, so a half-clear pixel left the canvas
            # half clear under it.
            with open(path, "rb") as f:
                data = mended_png(f.read())[0]
            # A 16-bit APNG's frames in 16 bits, as a still png's are read.
            frames, durations = gif_frames(data, failed) if im.format == "GIF" else apng_frames(data, True, failed)
            frames = [orient(frame, orientation) for frame in frames]
        else:
            frames, durations = [], []
            for index in range(count):
                try:
                    im.seek(index)
                    with decoding(im, path):  # a WebP's frame is decoded as it is first used
                        shown = im.convert("RGBA")
                except damaged.RAN_OUT as e:
                    if not frames:  # nothing to keep
                        raise
                    failed.append(e)
                    break
                frames.append(np.asarray(shown))
                durations.append(round(im.info.get("duration") or 0))
        fmt = im.format
    if failed:
        if isinstance(failed[0], MemoryError) or getattr(failed[0], "errno", None) is not None:
            raise failed[0]  # the host's, not the file's
        lost = f"frame {count}" if len(frames) + 1 == count else f"frames {len(frames) + 1}-{count}"
        damaged.found(path, damage_words(path, failed[0]),
                      f"{lost} of {count} missing: the {len(frames)} before {'is' if len(frames) == 1 else 'are'} kept")
    if all(frame[:, :, 3].min() == np.iinfo(frame.dtype).max for frame in frames):
        for index, frame in enumerate(frames):  # one at a time: never two copies of them all
            frames[index] = np.ascontiguousarray(frame[:, :, :3])
    if fmt == "AVIF":
        frames = [orient(frame, orientation) for frame in _deep_avif(path, frames)]
    elif composed is None:
        frames = [orient(frame, orientation) for frame in frames]
    return Animation(tuple(frames), tuple(durations), plays)


def _deep_avif(path: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames of the AVIF animation at ``path`` (Pillow's 8-bit ``frames``) in 16
    bits where it is deep and FFmpeg reads them as libavif does (``avif.read16``),
    as a deep still AVIF is read; else ``frames`` (the pipeline says why)."""
    if frames[0].shape[2] != 3 or avif.bit_depth(path) <= 8:  # transparency: Pillow alone reads it
        return frames
    return avif.read16_frames(path, frames) or frames


def _plays(im: Image.Image, path: str) -> int:
    """How many times the file asks for its animation to be shown, 0 for ever. A GIF
    counts repeats after the first showing, and without a count is shown once;
    APNG and WebP count showings; an AVIF's count Pillow does not read (``avif``)."""
    if im.format == "AVIF":
        return avif.file_plays(path)
    if im.format == "GIF":
        with open(path, "rb") as f:
            loop = gif_loop_count(f.read())
        return 1 if loop is None else 0 if loop == 0 else loop + 1
    loop = im.info.get("loop")
    return int(loop or 0)


# --- writing ---------------------------------------------------------------------------

@in_one_line
def write_frames(path: str | bytes | os.PathLike, animation: Animation, info: ImageInfo | None = None,
                 fmt: str | None = None, quality: int | None = None, metadata: bool = True) -> None:
    """Write an Animation as an animated webp, png (APNG) or gif (``fmt``, else from
    the file name), with its durations and play count, and the metadata of ``info``
    that the format holds (as ``write_image`` keeps it). One frame is a still
    picture, written by ``write_image``.

    The file appears whole or not at all. Frames are written as 8-bit colour (16-bit
    as the nearest 8-bit, grey as colour), but 16-bit frames as a 16-bit png (grey
    stays grey there, as ``write_image`` keeps it); webp is lossless unless ``quality`` is
    given; a gif has a palette per frame (frames that draw the same colours share
    the global one) and cuts alpha at half (``gif.to_palette``),
    its frames after the first draw only the pixels that changed, after the box of
    the one before is cleared where pixels turn clear (``gif.animation_to_palette``),
    and its frames end at the hundredth of a second nearest their end.
    The GIF and APNG writers show a frame equal to the one before as that one for
    their summed durations. A play count past what the format counts is the most it
    counts (65536 showings in a gif, 65535 in a webp). A frame shown longer than the
    format holds (655350 ms in a gif or png, 2**24 - 1 in a webp) is an InputError; an
    APNG frame past 65535 ms is written to the nearest hundredth of a second. JPEG
    holds no animation, and AVIF none that ncnn-sr writes: that is an InputError.
    Writing that needs more memory than is available (``frames_write_bytes``) is an
    InputError before it begins; it shares that memory with ``write_image`` and other
    writers in other threads, waiting for those in progress where it would not fit
    beside them (``budget.WRITERS``).
    """
    if not isinstance(animation, Animation):
        raise InputError(f"write_frames needs an Animation, got {describe(animation)}")
    if len(animation.frames) == 1:
        write_still(path, animation.frames[0], info, fmt, quality, metadata, "write_frames")
        return
    path, fmt, quality = checked_write(path, fmt, quality, info, "write_frames")
    if fmt == "jpg":
        raise InputError(f"{path}: JPEG holds no animation; write webp, png or gif")
    if fmt == "avif":  # Pillow's writer has no play count: a GIF shown once looped for ever
        raise InputError(f"{path}: an animated AVIF would lose how many times it plays; write webp, png or gif")
    check_fits(animation.frames[0], fmt, path)
    _check_durations(animation, fmt, path)
    info = sized(checked_metadata(info, metadata, fmt, path), animation.frames[0])
    first, count = animation.frames[0], len(animation.frames)
    height, width = first.shape[:2]
    need = frames_write_bytes(height, width, first.shape[2] if first.ndim == 3 else 1, first.itemsize, count, fmt,
                              quality, grey=info is not None and info.mode in GREY_MODES)
    promised_write(path, lambda f: _encode_frames(f, animation, info, fmt, quality), need,
                   f"{count} {width}x{height} frames as {FORMATS[fmt]}", "the frames")


# The longest a frame is shown that each format holds: a GIF's 16-bit count of
# hundredths, an APNG's 16-bit fraction of a second past a minute in hundredths (as
# apng.animate writes it), a WebP's 24-bit count of milliseconds.
_LONGEST_FRAME = {"gif": ("GIF", 655350), "png": ("an APNG", 655350), "webp": ("WebP", 2**24 - 1)}


# Peak bytes a pixel that writing 8-bit RGB or RGBA frames takes beside the frames
# themselves, as (once, per frame), as measured (peak RSS of the encoder writing a file,
# 2 and 6 grainy frames of 1 and 2 megapixels, which took more than smooth ones in each
# case; Pillow 13), rounded up (an RGBA WebP's to a still's 46 at two frames): they held
# at both sizes within 4 bytes a pixel. Every frame is made a Pillow picture before the
# writer begins (RGB as 4 bytes a pixel); the APNG writer adds its own work on each
# frame, WebP's encoder holds each frame's encoded data until it assembles the file in
# memory, and GIF's palette search takes a working set of its own (26 bytes a pixel for
# a still of 9-36 megapixels in write_bytes) beside the byte a pixel of each frame's
# palette picture, the colours each pixel was last drawn in and, where frames have clear
# pixels, the colours the canvas shows (``gif.animation_to_palette``: 56.9-57.5 and
# 61.0-61.8 for 2 and 6 opaque frames of 1 megapixel, 56.2-56.8 and 60.8-61.3 for RGBA
# ones; 6 of 2 megapixels 59.8-60.2 opaque, 60.0-65.8 RGBA, over runs of the same). Its
# writer holds a frame's codes twice as Pillow joins them (``gif._lzw``), where they
# went out in pieces: 6 opaque frames of 1 megapixel of noise took 62.3-63.2 (61.0-61.4
# before), 2 took 57.0, and 6 RGBA ones 58.0-60.2 (50.1-57.1).
_FRAMES_WRITE_BYTES = {"png": {3: (11, 9), 4: (10, 5)}, "gif": {3: (59, 1), 4: (61, 1)},
                       "webp": {3: (29, 13), 4: (22, 12)}, "webp-lossy": {3: (16, 7), 4: (37, 4)}}


def frames_write_bytes(height: int, width: int, channels: int, itemsize: int, count: int, fmt: str,
                       quality: int | None = None, grey: bool = False) -> int:
    """About the most memory ``write_frames`` takes to write ``count`` frames of
    ``height`` x ``width`` pixels of ``channels`` channels of ``itemsize`` bytes as
    ``fmt`` (png, gif or webp) at ``quality`` (``grey``: its ImageInfo's mode is
    grey), beside the frames themselves: from 10 bytes a pixel and 5 a frame (an 8-bit
    RGBA png) to 61 bytes a pixel (an RGBA gif); for a 16-bit png, a 16-bit still's
    ``write_bytes`` and five times each frame (measured 4 to 4.75 on grainy frames:
    the frames' png files are held, copied into the APNG's chunks and joined)."""
    pixels, size = height * width, height * width * channels * itemsize
    if itemsize == 2 and fmt == "png":
        return write_bytes(height, width, channels, itemsize, fmt, grey=grey) + 5 * count * size
    colour = 3 if channels == 1 else channels
    once, each = _FRAMES_WRITE_BYTES["webp-lossy" if fmt == "webp" and quality is not None else fmt][colour]
    need = pixels * (once + each * count)
    # Grey frames become colour, 16-bit ones 8-bit, every one held before the writer
    # begins; 16 bits to 8 takes two 32-bit copies of the frame being made.
    if channels == 1 or itemsize == 2:
        need += count * pixels * colour
    return need + (8 * pixels * channels if itemsize == 2 else 0)


def _check_durations(animation: Animation, fmt: str, path: str) -> None:
    """InputError where a frame of ``animation`` is shown longer than ``fmt`` holds:
    Pillow's writers failed with an OverflowError, a ValueError or a RuntimeError."""
    durations = _centiseconds(list(animation.durations)) if fmt == "gif" else animation.durations
    if fmt != "webp":  # whose writer keeps each frame
        durations = _shown(animation.frames, durations)[1]
    name, most = _LONGEST_FRAME[fmt]
    if max(durations) > most:
        raise InputError(f"{path}: a frame shown for {max(durations)} ms is longer than {name} holds ({most} ms)"
                         + ("; write webp" if fmt != "webp" else ""))


def _shown(frames, durations) -> tuple[list[int], list[int]]:
    """The frames the GIF and APNG writers show, by index, and for how long: a frame
    equal to the one before is that one, shown for their summed durations."""
    kept, times = [0], [durations[0]]
    for index in range(1, len(frames)):
        if np.array_equal(frames[index], frames[kept[-1]]):
            times[-1] += durations[index]
        else:
            kept.append(index)
            times.append(durations[index])
    return kept, times


# The most showings each format counts: a GIF's 16-bit count of repeats, WebP's
# 16-bit count, APNG's 32-bit one (0 is for ever in each).
_MOST_PLAYS = {"gif": 65536, "webp": 65535, "png": 2**32 - 1}


def _encode_frames(f, animation: Animation, info: ImageInfo | None, fmt: str, quality: int | None) -> None:
    # More than it counts is the most it counts: Pillow's writers failed on it.
    plays = min(animation.plays, _MOST_PLAYS[fmt])
    if fmt == "png" and animation.frames[0].dtype == np.uint16:
        f.write(_apng16(animation, info, plays))
        return
    frames = [_colour(frame) for frame in animation.frames]
    durations = list(animation.durations)
    if fmt == "gif":
        # Two equal frames in a row are one, shown for their summed durations: the
        # second would draw nothing.
        kept, durations = _shown(frames, _centiseconds(durations))
        pictures = gif_pictures([frames[index] for index in kept])
        if icc := gif_profile(info, grey=info is not None and info.mode in GREY_MODES):
            for picture in pictures:
                palette_to_srgb(picture.picture, icc)
        write_gif(f, pictures, durations, **_gif_loop(plays), **comment_option(info, fmt))
        return
    if fmt == "png":
        # Past a minute, to the hundredth, as apng.animate writes it: Pillow's writer
        # failed on a time it cannot state in 16-bit fractions of a second (65537 ms).
        kept, durations = _shown(frames, durations)
        durations = [d if d <= 0xFFFF else round(d / 10) * 10 for d in durations]
        pictures = [Image.fromarray(frames[index]) for index in kept]
        options = dict(save_options(info, fmt, quality), loop=plays)
    else:
        pictures = [Image.fromarray(frame) for frame in frames]
        options = dict(save_options(info, fmt, quality), loop=plays)
    pictures[0].save(f, format=FORMATS[fmt], save_all=True, append_images=pictures[1:], duration=durations,
                     **options)


def _apng16(animation: Animation, info: ImageInfo | None, plays: int) -> bytes:
    """A 16-bit APNG of ``animation``, which Pillow's writer has no mode for: each
    frame as ``write_image`` writes a 16-bit png, and two equal frames in a row one
    frame for their summed durations, as Pillow's writer shows them."""
    kept, durations = _shown(animation.frames, animation.durations)
    stills = [png_file(animation.frames[index], info) for index in kept]
    if len(stills) == 1:  # every frame alike: a still picture, as Pillow writes it
        return stills[0]
    return animate(stills, durations, plays)


def _colour(frame: np.ndarray) -> np.ndarray:
    """A frame as the animated writers take it: 8-bit RGB or RGBA."""
    frame = to_eight_bit(frame)
    return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame


def _centiseconds(durations: list[int]) -> list[int]:
    """Durations in milliseconds as a GIF holds them, whole hundredths of a second
    (Pillow's writer cuts the rest off, so 33 ms frames became 30 ms and an
    animation ran 10 % fast): each frame ends at the hundredth nearest its end, so
    the animation keeps its length, within 5 ms, however many frames it has."""
    ends, elapsed = [], 0
    for duration in durations:
        elapsed += duration
        ends.append((elapsed + 5) // 10 * 10)
    return [end - start for start, end in zip([0] + ends, ends)]


def _gif_loop(plays: int) -> dict:
    """Pillow's GIF loop option for ``plays`` showings: a GIF counts the repeats,
    and one showing is a GIF without a count."""
    return {} if plays == 1 else {"loop": 0 if plays == 0 else plays - 1}
