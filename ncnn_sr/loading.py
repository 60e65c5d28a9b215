"""A Pipeline's load side: the picture in flight (Item), its load workers, and the
checks that fail a picture before it is upscaled, not after: an output that cannot
be written, a size no format holds, memory it would not fit in."""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import avif, images
from .animation import Animation, frames_write_bytes, read_frames
from .budget import MemoryBudget, room_words, size_words
from .errors import FlagNames, InputError, NcnnSrError, cannot_write, host_out_of_memory, out_of_memory, with_article
from .files import check_writable, input_gone, mark_there, write_target
from .images import (ALPHA_MODES, FORMATS, GREY_MODES, ImageInfo, check_size, checked_metadata, header_layout,
                     named_format, output_format, read_image, write_bytes)
from .icc import unstated as unstated_colour
from .jobs import Job, alpha_target, check_reachable, cut_short_output, output_key
from .lanes import Lane
from .metadata import MAX_JPEG_EXIF, MAX_JPEG_XMP, sized_xmp
from .outcomes import Outcome, found_output
from .path_names import split_name
from .pixels import is_grey_colour
from .png import walked as walked_png
from .resample import target_size
from .workers import ProcQueue

# A GIF's delays are in hundredths of a second, and browsers show one of 10 ms or less
# (0 or 1 hundredth) for 100 ms; 15 ms and more round to 2 hundredths. Browsers show a
# frame of 10 ms or less for 100 ms in every format (WebKit's decoders, Firefox's),
# so only a WebP's or APNG's frames from BROWSERS_SHOW_FROM up play slower as a GIF.
GIF_SHORTEST_SHOWN = 15
BROWSERS_SHOW_FROM = 11
# Output formats that hold an animation.
ANIMATED_FORMATS = frozenset({"png", "webp", "gif"})


@dataclass
class Item:
    """A picture in flight from its load to its save, and what it holds on the way."""

    job: Job
    target: Path
    pixels: np.ndarray | None = None
    info: ImageInfo | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    animation: Animation | None = None  # every frame, in place of ``pixels``
    reserved: int = 0  # bytes of the animation budget it holds
    need: int = 0  # bytes a still's result and its writing take (_check_memory)
    held: int = 0  # bytes of the run's memory (Pipeline._memory) it holds
    failed_on: list = field(default_factory=list)  # the Upscalers it failed on in an unforeseen way
    failure: Exception | None = None  # the last such failure
    again: bool = False  # its last such failure sends it to another device


def _read(item: Item, read: Callable, flags: FlagNames | None) -> tuple | None:
    """``read(item's source)``, or None with the failure in ``item.error``, any option
    it names as ``flags`` name it."""
    try:
        return read(item.job.source)
    except NcnnSrError as e:
        if out_of_memory(e):
            # The system's ENOMEM as the file was read: the host's memory, not the
            # picture's fault, which every later picture would meet alike. The run
            # stops (Pipeline.run raises it), as the command says.
            raise host_out_of_memory(e) from e
        item.error = e.said(flags)
    except MemoryError:
        # Pillow's, for its picture, or a decoder's out of memory (read_image): not
        # the picture's fault either, as above. Its header said its result fits
        # (Loader._check_header), so another picture's read would meet it alike.
        raise
    except Exception as e:  # a batch outlives any one file
        item.error = f"{item.job.source}: cannot read: {e!r}"
    return None


def sizes_fitting(job: Job, sizes, output_size: Callable[[int, int], tuple[int, int]],
                  flags: FlagNames | None) -> tuple[list[tuple[int, int]], str | None]:
    """The output sizes (height, width), by ``output_size``, of ``sizes`` (``job``'s
    picture's as its header states them, either way round) that its target can hold,
    and where none can, what refuses the first, in words."""
    # A jpg target becomes a png where the pixels hold transparency (_check_alpha),
    # which they are not yet read to tell: only what that png could not hold either
    # is refused here.
    fmt = output_format(alpha_target(job.target))
    errors, fitting = [], []
    for size in sizes:
        try:
            out_height, out_width = output_size(*size)
            check_size(out_height, out_width, 3, fmt, str(job.target))
            fitting.append((out_height, out_width))
        except NcnnSrError as e:
            errors.append(e)
    if not sizes or fitting:
        return fitting, None
    said = errors[0].said(flags)
    return fitting, said if str(job.target) in said else f"{job.source}: {said}"


class Loading:
    """The load workers of a Pipeline, of which it is a part, and their checks of each
    picture. What they take of the Pipeline is declared here, and nothing more (a test
    holds them to it)."""

    # Its settings, from Pipeline.__init__.
    lanes: list[Lane]
    _flags: FlagNames | None
    _resize: dict[str, float | int | None]
    _quality: int | None
    _metadata: bool
    _keep_opaque_alpha: bool
    _drop_oversized_exif: bool
    _skip_existing: bool
    _skip_damaged: bool
    _animate: bool
    # Its run's: what stops new pictures, the memory of stills and animations in flight
    # (``_memory`` None where it is unknown), and where pictures go.
    _halt: threading.Event
    _memory: MemoryBudget | None
    _budget: MemoryBudget
    _put: Callable[..., None]
    _report: Callable[[Outcome], None]
    _stop: Callable[..., bool]
    _lost_alone: Callable[[Job], str | None]
    _outputs_lost: bool

    def _start_loading(self) -> None:
        """Nothing claimed yet, as each run starts."""
        # Why each output folder looked at cannot be written in (None: it can), so a
        # folder of thousands of pictures is tried once, not once a picture.
        self._unwritable: dict[Path, str | None] = {}
        self._unwritable_lock = threading.Lock()
        self._targets: set[str] = set()  # this run's outputs so far, as absolute paths
        self._targets_lock = threading.Lock()  # the loaders claim them
        # The folders this run read a picture in, and those above them: they were there.
        self._read_in: set[Path] = set()

    def _load(self, next_job, to_proc: ProcQueue) -> None:
        while not self._halt.is_set():
            job = next_job()
            if job is None:
                return
            if self._outputs_lost and (lost := self._lost_alone(job)) is not None:
                # Its output sub-folder went (-r), as a save found: read and upscaled,
                # it would be lost as it is written (see Pipeline._save_one). Asked
                # once one is found: a look at the folder for each picture otherwise.
                self._report(Outcome(job, "not done", lost))
                continue
            existing, missing = found_output(job) if self._skip_existing else (None, None)
            if existing is not None and missing is None:
                self._report(Outcome(job, "skipped", "output exists", existing))
                continue
            item = Item(job, job.target)
            if self._skip_existing and existing is None and (cut := cut_short_output(job.target)) is not None:
                item.notes.append(f"{cut} is there but cut short (its end is missing): written again")
            if missing is not None:
                item.notes.append(f"{existing} is written again: {missing} is missing, so it may be the output of "
                                  f"another {split_name(job.source.name)[0]}.* picture, named when that one sorted first")
            self._check_overwrite(item)
            with walked_png(job.source):  # its header checked, then read: its chunks walked once for both
                if not item.error:
                    self._check_header(item)
                read = None if item.error else _read(
                    item, lambda source: read_image(source, skip_damaged=self._skip_damaged), self._flags)
            if item.error and (gone := self._input_gone(job)) is not None:
                # Every later picture of that folder would fail alike, a line each
                # (255 of 300 pictures, the folder renamed during the run). A sub-folder
                # (-r) is its own pictures' loss alone: said once (the console, by its
                # words), the run goes on with the other folders.
                words, stops = gone
                if not stops:
                    self._report(Outcome(job, "not done", words))
                    continue
                if self._stop(words, input_gone=True):
                    self._report(Outcome(job, "failed", words, notes=tuple(item.notes)))
                return
            if read:
                mark_there(job.source.parent, self._read_in)
                item.pixels, item.info = read
                self._check_output(item)
                if not item.error and self._animated(item) and not self._read_frames(item):
                    return  # cancelled while waiting for room
                if not item.error and item.need:
                    if not self._memory.take(item.need, self._halt):
                        return  # cancelled while waiting for room
                    item.held = item.need
            self._put(to_proc, item)

    def _input_gone(self, job: Job) -> tuple[str, bool] | None:
        """Why ``job``'s picture, which could not be read, and others after it cannot
        be: a folder of it is gone (files.input_gone); and whether the run stops for it
        (the folder it was given, which it read pictures in) or goes on (a sub-folder).
        Else None: a folder never seen (a Job made by hand) is the picture's failure alone."""
        return input_gone(job.source.parent, self._read_in, job.listed_in)

    def _check_overwrite(self, item: Item) -> None:
        """Fail ``item`` whose output is its input, or an earlier job's output of this
        run: Jobs made by hand wrote over it without a word (a folder's plan refuses
        both before the run)."""
        job = item.job
        with contextlib.suppress(OSError):
            if not job.in_place and os.path.samefile(job.source, job.target):
                item.error = f"{job.source}: its output is the input: it would be overwritten; choose another output"
                return
        key = output_key(job.target)
        with self._targets_lock:
            taken = key in self._targets
            self._targets.add(key)
        if taken:
            item.error = f"{job.source}: its output {job.target} is another picture's of this run: it would be " \
                         "overwritten; choose another output"

    def _animated(self, item: Item) -> bool:
        # The format asked for, not the png a jpg with transparency becomes: -f jpg
        # makes stills, whichever frame holds the transparency.
        return self._animate and item.info.frames > 1 and output_format(item.job.target) in ANIMATED_FORMATS

    def _read_frames(self, item: Item) -> bool:
        """Every frame of ``item``'s picture, once the animations' budget and the run's
        memory, which stills share, have room for them (False: cancelled while
        waiting); a picture that alone needs more than either fails."""
        try:
            need = self._animation_bytes(item.pixels, item.info.frames)
        except NcnnSrError as e:  # a size too large: each frame would fail alike
            item.error = f"{item.job.source}: {e.said(self._flags)}"
            return True
        room = self._budget.total if self._memory is None else min(self._budget.total, self._memory.total)
        if need > room:
            # FFmpeg reads animated GIF and APNG; animated WebP from FFmpeg 9 (PyAV 19) only.
            maker = "upscale_video" if self._flags is None else "ncnn-sr video"  # a library run's, or a command's
            readable = item.info.format in ("GIF", "PNG") or (item.info.format == "WEBP"
                                                              and images.ffmpeg_reads_animated_webp())
            video = f", or make a video of it ({maker})" if readable else ""
            item.error = (f"{item.job.source}: its {item.info.frames} frames upscaled need about "
                          f"{size_words(need, up=True)} of memory, more than the {size_words(room, down=True)} "
                          f"animations may take: ask for a smaller size{video}")
            return True
        # The run's memory holds their writing too, as a still's (``_check_memory``);
        # the animations' budget counts frames alone.
        held = need + self._frames_writing(item)
        if self._memory is not None and held > self._memory.total:
            item.error = (f"{item.job.source}: its {item.info.frames} frames upscaled and their writing need about "
                          f"{size_words(held, up=True)} of memory, more than {room_words(held, self._memory.total)}")
            return True
        if not self._budget.take(need, self._halt):
            return False
        if self._memory is not None and not self._memory.take(held, self._halt):
            self._budget.give(need)
            return False
        deep = item.pixels.dtype == np.uint16
        item.reserved, item.held, item.pixels = need, 0 if self._memory is None else held, None
        read = _read(item, lambda source: read_frames(source, item.info, self._skip_damaged),
                     self._flags)  # its first frame is read
        if read:
            item.animation, item.info = read
            if deep and item.animation.frames[0].dtype != np.uint16 and output_format(item.target) == "png":
                # A deep AVIF's frames are read in 8 bits where FFmpeg's reading is
                # not libavif's: said, as a still png keeps its 10 or 12.
                bits = avif.bit_depth(str(item.job.source)) if item.info.format == "AVIF" else 16
                item.notes.append(f"{item.job.source}: {with_article(f'{bits}-bit')} animation: its frames are read in 8 bits "
                                  f"(a still png keeps {bits})")
            self._check_gif_delays(item)
            self._check_gif_alpha(item, item.animation.frames)
        return True

    @staticmethod
    def _check_gif_alpha(item: Item, frames) -> None:
        # A GIF pixel is clear or opaque: a shadow or glass of alpha under half comes
        # out clear, a whole picture of it empty. Only the source's own partial alpha
        # is said: a clear-or-opaque picture's edges, partly clear once upscaled, are
        # cut back to what it was.
        if output_format(item.target) != "gif" or frames[0].shape[2] != 4:
            return
        full = np.iinfo(frames[0].dtype).max
        if any(((frame[:, :, 3] > 0) & (frame[:, :, 3] < full)).any() for frame in frames):
            item.notes.append(f"{item.job.source} has partial transparency, which GIF cannot store: writing "
                              f"{item.target} clear where under half opaque, opaque elsewhere (png or webp keep it)")

    @staticmethod
    def _check_gif_delays(item: Item) -> None:
        # Browsers show a GIF frame of 10 ms or less for 100 ms: a WebP or APNG made
        # of such frames turns slow as a GIF. A GIF's own are read as shown, 100 ms.
        if output_format(item.target) != "gif":
            return
        short = sum(BROWSERS_SHOW_FROM <= duration < GIF_SHORTEST_SHOWN for duration in item.animation.durations)
        if short:
            item.notes.append(f"{item.job.source}: {short} of its {len(item.animation.durations)} frames last "
                              f"{BROWSERS_SHOW_FROM} to {GIF_SHORTEST_SHOWN - 1} ms, which a GIF holds as 10 ms, shown "
                              "by browsers for 100 ms: write webp or png to keep its speed")

    def _frames_writing(self, item: Item) -> int:
        """What writing ``item``'s frames upscaled takes beside them (``frames_write_bytes``),
        before they are read: as RGB or RGBA, whichever takes more."""
        height, width = self._output_size(*item.pixels.shape[:2])
        # read_frames gives every frame RGBA where any one has transparency (a later
        # one may, beside an opaque first), else RGB, grey as colour.
        return max(frames_write_bytes(height, width, channels, item.pixels.itemsize, item.info.frames,
                                      output_format(item.target), self._quality, grey=item.info.mode in GREY_MODES)
                   for channels in (3, 4))

    def _animation_bytes(self, first: np.ndarray, frames: int) -> int:
        """What ``frames`` frames like ``first`` take, upscaled, as MAX_ANIMATION_MEMORY
        counts them."""
        height, width = first.shape[:2]
        out_height, out_width = self._output_size(height, width)
        # 16-bit frames (a deep AVIF's, kept in 16 bits) take twice what 8-bit ones do.
        return frames * 4 * first.itemsize * (height * width + 2 * out_height * out_width)

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        """The height and width a picture of ``height`` x ``width`` is upscaled to;
        InputError past the longest side a result may have (``resample.MAX_SIDE``), at
        the model's own scale too, as at any asked for."""
        if all(value is None for value in self._resize.values()):
            return target_size(height, width, self.lanes[0].upscaler.scale)
        return target_size(height, width, self._resize["scale"], self._resize["width"], self._resize["height"])

    def _check_header(self, item: Item) -> None:
        """Fail ``item`` before its pixels are read if the size its header states
        cannot be upscaled at the scale asked, or written as its format, or its result
        cannot fit in memory: a damaged WebP stating 8388609x9 pixels took a minute
        to decode before it was refused.
        A target width or height depends on the picture's orientation: where its
        header does not tell it, only what neither way round could be is refused."""
        sizes, mode, itemsize = header_layout(item.job.source)
        fitting, refusal = sizes_fitting(item.job, sizes, self._output_size, self._flags)
        if refusal is not None:
            item.error = refusal
        elif fitting and mode is not None and not (mode in ALPHA_MODES and alpha_target(item.target) != item.target):
            # The refusal _check_memory would make once the pixels are read, made before
            # the minute a large 16-bit photo takes to read: at the fewest channels and
            # bytes a sample they may come to. Not for a jpg target of a picture with
            # alpha, which it writes as a png unless its alpha is opaque.
            channels = 4 if mode in ALPHA_MODES else 1 if mode in GREY_MODES else 3
            fmt = output_format(item.target)
            refusals = [self._memory_refusal(item, *size, channels, itemsize, fmt, False)[1] for size in fitting]
            if all(refusals):
                item.error = refusals[0]

    def _check_output(self, item: Item) -> None:
        self._check_alpha(item)
        if not self._animated(item):  # an animation's frames are looked at once read
            self._check_gif_alpha(item, (item.pixels,))
        if item.info.frames > 1 and not self._animated(item):
            asked = item.job.target.suffix  # .jpg, where transparency makes the file name.jpg.png
            held = "ncnn-sr writes avif still" if asked.lower() == ".avif" else f"{asked} holds no animation"
            why = "" if not self._animate else f" ({held}: write webp, png or gif for every frame)"
            item.notes.append(f"{item.job.source} has {item.info.frames} frames: upscaling the first only{why}")
        if self._metadata and named_format(item.target) == "jpg":
            self._check_jpeg_metadata(item)
        if self._metadata:
            self._check_colour(item)
        self._check_writable(item)

    def _check_colour(self, item: Item) -> None:
        """A note where ``item``'s output holds colour as an ICC profile only and its
        cICP is one (HDR) that no profile written here states (an avif states it in
        its nclx)."""
        fmt = named_format(item.target)
        if fmt not in ("jpg", "webp") or item.info.icc_profile:
            return
        if coded := unstated_colour(item.info.colour_chunks):
            hdr = ": HDR" if coded[1] in (16, 18) else ""  # PQ, HLG
            item.notes.append(f"{item.job.source}: its colour (cICP primaries {coded[0]}, transfer {coded[1]}{hdr}) "
                              f"has no ICC profile that a {fmt} could hold: writing {item.target} without it "
                              "(png and avif keep it)")

    def _check_writable(self, item: Item) -> None:
        """Fail ``item`` now if its output cannot hold the upscaled picture (a side too
        long for WebP, an EXIF too large for JPEG), is no file (a folder of its
        name) or cannot be made (a file where its folder goes, a read-only folder):
        found by the writer, it came after the upscaling, hours of it for a large
        photo on the CPU."""
        try:
            check_reachable(item.target, file=True)  # a file where -r mirrors a sub-folder, say
            write_target(item.target, pipe=True)
            self._check_folder(item)  # a read-only sub-folder -r mirrors into, say
        except NcnnSrError as e:
            item.error = e.said(self._flags)
            return
        except OSError as e:  # a name too long for the file system, say
            item.error = str(cannot_write(item.target, e))
            return
        height, width, channels = item.pixels.shape
        try:
            out_height, out_width = self._output_size(height, width)
        except NcnnSrError as e:  # past the longest side a result may have: its header did not say
            item.error = f"{item.job.source}: {e.said(self._flags)}"
            return
        target, fmt = str(item.target), output_format(item.target)
        try:
            check_size(out_height, out_width, channels, fmt, target)
            checked_metadata(item.info, self._metadata, fmt, target)
        except NcnnSrError as e:
            item.error = e.said(self._flags)
            return
        if not self._animated(item):  # an animation's frames have the budget of their own
            self._check_memory(item, out_height, out_width, fmt)

    def _check_memory(self, item: Item, height: int, width: int, fmt: str) -> None:
        """Fail ``item`` now if its result and what its writer takes beside it cannot
        fit in the run's memory: the engine counts the result alone, and a 70000x70000
        png that fitted was killed while Pillow copied it. What fits is ``item.need``,
        which the loader holds (waiting for room beside the stills in flight) until it
        is saved or has failed."""
        need, item.error = self._memory_refusal(item, height, width, item.pixels.shape[2], item.pixels.itemsize,
                                                fmt, item.info.mode in GREY_MODES)
        if not item.error:
            item.need = need

    def _memory_refusal(self, item: Item, height: int, width: int, channels: int, itemsize: int, fmt: str,
                        grey: bool) -> tuple[int, str]:
        """The bytes ``item``'s result of ``height`` x ``width`` x ``channels`` takes with
        its writing as ``fmt``, and its failure where that is more than the run's
        memory ("" where it fits or the memory is unknown)."""
        if self._memory is None:
            return 0, ""
        need = height * width * channels * itemsize + write_bytes(
            height, width, channels, itemsize, fmt, self._quality, grey=grey)
        available = self._memory.total
        if need <= available:
            return need, ""
        return need, (f"{item.job.source}: its {width}x{height} result written as {FORMATS[fmt]} needs about "
                      f"{size_words(need, up=True)} of memory, more than {room_words(need, available)}")

    def _check_folder(self, item: Item) -> None:
        """InputError naming ``item``'s picture unless a file can be made in its
        output's folder, or where that is not made yet, in the nearest folder above it
        that is there (the one it is made in)."""
        folder = _nearest_folder(item.target)
        with self._unwritable_lock:
            if folder not in self._unwritable:
                try:
                    check_writable(folder)
                    self._unwritable[folder] = None
                except InputError as e:
                    self._unwritable[folder] = e.said(self._flags)
            refused = self._unwritable[folder]
        if refused is not None:
            raise InputError(f"{item.job.source}: {refused}")  # which picture: the folder says the same for each

    def _found_writable(self, item: Item) -> Path | None:
        """The folder ``item`` is made in, where this run found it writable (asked again
        once a write failed there: made read-only during the run, chmod); else None."""
        folder = _nearest_folder(item.target)
        with self._unwritable_lock:
            return folder if folder in self._unwritable and self._unwritable[folder] is None else None

    def _check_jpeg_metadata(self, item: Item) -> None:
        """EXIF, XMP and a comment too large for ``item``'s JPEG: left out with a note each, but an
        EXIF only when ``drop_oversized_exif`` (else write_image fails the picture)."""
        exif, xmp = item.info.exif, item.info.xmp
        if xmp:  # as write_image writes it, stating the output's size: a digit more fitted no more
            try:
                height, width = self._output_size(*item.pixels.shape[:2])
                xmp = sized_xmp(xmp, width, height)
            except NcnnSrError:
                pass  # a size no picture may have: the picture fails in the engine's words
        if exif and len(exif) > MAX_JPEG_EXIF:
            if not self._drop_oversized_exif:
                return  # the picture fails in write_image's words; a note on its XMP would say it was written
            item.info = replace(item.info, exif=None)
            item.notes.append(f"{item.job.source}: its EXIF ({len(exif)} bytes) is too large for JPEG, which holds "
                              f"at most {MAX_JPEG_EXIF}: writing {item.target} without it")
        if xmp and len(xmp) > MAX_JPEG_XMP:
            # write_image leaves it out without a word; left out here, the commands say so.
            item.info = replace(item.info, xmp=None)
            item.notes.append(f"{item.job.source}: its XMP ({len(xmp)} bytes) is too large for JPEG, which holds "
                              f"at most {MAX_JPEG_XMP}: writing {item.target} without it")
        if (comment := item.info.comment) and len(comment) > MAX_JPEG_EXIF:  # a GIF's, which has no limit
            item.info = replace(item.info, comment=None)
            item.notes.append(f"{item.job.source}: its comment ({len(comment)} bytes) is too large for JPEG, which "
                              f"holds at most {MAX_JPEG_EXIF}: writing {item.target} without it")

    def _check_alpha(self, item: Item) -> None:
        if item.pixels.shape[2] == 4 and alpha_target(item.target) != item.target:
            alpha = item.pixels[:, :, 3]
            opaque = bool((alpha == np.iinfo(alpha.dtype).max).all())
            if opaque and not self._keep_opaque_alpha:
                # Nothing is lost: the colour (grey stays grey) is the whole picture.
                grey = item.info.mode in GREY_MODES and is_grey_colour(item.pixels)
                item.pixels = item.pixels[:, :, :1 if grey else 3]
            else:
                item.target = alpha_target(item.target)
                what = "an alpha channel (fully opaque)" if opaque else "transparency"
                if self._keep_opaque_alpha:
                    # The reference's rule, in its words: its wrappers (Upscayl) look for
                    # "has alpha channel" to find the output under its .png name.
                    what = "alpha channel (fully opaque)" if opaque else "alpha channel transparency"
                item.notes.append(f"{item.job.source} has {what}, which JPEG cannot store: writing {item.target}")


def _nearest_folder(target: Path) -> Path:
    """The folder ``target`` is made in: its own, or where that is not made yet, the
    nearest folder above it that is there."""
    folder = target.parent
    while not folder.is_dir() and folder.parent != folder:
        folder = folder.parent
    return folder
