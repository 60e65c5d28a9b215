"""Video in one streaming pass with PyAV: demux and decode, frames through a caller's
upscaler, encode and mux, with audio and subtitles copied. Knows nothing of ncnn.

Timestamps go from each input frame to its output frame, so variable frame rates
and rates like 24000/1001 stay in sync with the sound; ``fps`` instead makes a
constant rate, repeating or dropping frames so that the duration stays the same.
Re-encoded sound keeps its source's times too: where it starts, and its gaps.
The output is written under a temporary name and renamed at the end: an error or
Ctrl-C leaves no output file at all; the encoded video is kept meanwhile in pieces
beside it (``video_pieces``), which a Ctrl-C or a kill leaves for the same run to go
on from. What a frame shows, and how a picture is coded
back into a frame, colour included, is ``video_frames``; what goes along from the
other streams (sound, subtitles, attachments, chapters, tags) is ``video_streams``;
which encoder, pixel format, rate and sizes the output takes is ``video_codecs``.
The run's own parts: the input opened, or refused in one line (``video_input``),
its packets (``video_packets``), its timeline and the part asked for
(``video_timeline``), frame rates (``video_rates``), damage met (``video_damage``),
the output's stream (``video_output``), and the transcode loop itself
(``video_transcode``).
"""
from __future__ import annotations

import errno
import functools
import logging
import math
import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import av
import numpy as np

from . import cover_atom, part_files, video_pieces, video_streams
from .errors import (DISK_FULL, DeviceFailure, FlagNames, InputError, NoRoom, Option, SettingError, cannot_write,
                     describe, file_path, host_out_of_memory, in_one_line, out_of_memory)
from .signals import HeldInterrupts, ctrl_c_signals
from .files import check_named_as_file, ffmpeg_name, mode_for, remove_part, same_file, temp_stem, write_target
from .streams import VideoInput, VideoOutput
from .video_options import EncodeOptions
from .video_codecs import _pixel_format, _rate_text, _standard_rate, video_encoder
from .video_frames import turned_sideways
from .video_packets import _ahead_of
from .video_input import _NEVER_BARE, _decode_in_order, _open_input, _open_run_input, _video_stream
from .video_rates import (_ELEMENTARY, _checked_rate, _frame_count, _guessed_rate, _known_rate, _source_rate,
                          _stated_rate, check_rate)
from .video_timeline import (CUE_LEAD, SEEK_MARGIN, _clock_window, _lead, _length, _seek, _video_length, _window,
                             check_start)
from .video_output import (_broken_pipe, _cannot_write, _muxer_options, _pad_transport_stream, _transport_padding,
                           quicktime_keys)
from .video_transcode import _transcode

# What the library and the commands take from here; check_rate and check_start,
# called before a model loads, live beside the rates and the timeline they check.
__all__ = ["EncodeOptions", "VideoInfo", "check_rate", "check_start", "disk_full", "frames_out", "probe", "sideways",
           "upscale_video"]

log = logging.getLogger("ncnn_sr")

# The rates 3:2 pulldown makes of film: NTSC video, and its whole-number cousin.
TELECINE_RATES = (Fraction(30000, 1001), Fraction(30))


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction | None
    frames: int | None
    duration: float | None
    audio: int
    subtitles: int
    field_order: int = 0  # FFmpeg's AVFieldOrder: 0 unknown, 1 progressive, 2-5 interlaced
    pix_fmt: str | None = None  # the decoder's
    square: bool = True  # whether its samples are square (or of no stated shape)
    stated_rate: Fraction | None = None  # the rate its header states (a bare stream's: FFmpeg's guess)
    guessed_rate: Fraction | None = None  # FFmpeg's guess of its rate beside an average (see _slot_rate)
    # Its video track's own length, where the container states it apart from its other
    # streams' (duration is the longest's, a sound that runs on past the picture).
    video_duration: float | None = None


def frames_out(info: VideoInfo, options: EncodeOptions) -> int | None:
    """About how many frames of the video ``info`` describes go through the upscaler
    (for progress): those of the part asked for, at the rate deinterlacing makes, and
    no more than a lower ``options.fps`` shows."""
    if not info.frames:
        return None
    frames = info.frames
    seconds = info.video_duration or info.duration
    if options.trims and seconds and info.rate:
        frames = options.part_seconds(seconds) * info.rate
    frames *= options.rate_factor(info.field_order)
    if options.fps and seconds:
        frames = min(frames, options.part_seconds(seconds) * options.fps)
    return round(frames)


def probe(path: str | os.PathLike) -> VideoInfo:
    """What a video holds; InputError if it is not a video or has no video stream. A
    stream's container is left open, in ``path.opened``, for the run to go on with."""
    container = _open_input(path)
    try:
        v = _video_stream(container, path)
        rate = _known_rate(v)
        length = _length(container, src=path)
        own = _video_length(container, v, src=path)
        if own is not None and length is not None:
            own = min(own, length)
        # Its frames span its own time alone: an MPEG-TS's picture starts 21 ms after
        # its AAC sound's priming, and 1.27 s to its end made 31 frames of 30.
        seconds = own - _lead(container, v) if own else length
        frames = v.frames or (round(float(seconds) * rate) if seconds and seconds > 0 and rate else None)
        if not v.codec_context.width or not v.codec_context.height:
            # FFmpeg learns the size from a frame it decodes while opening: none there (a
            # stream cut before its first key frame); the size's arithmetic divided by 0.
            raise InputError(f"{path}: its video's size is unknown: FFmpeg decoded no frame of it where it "
                             "starts (a recording cut before its first key frame, or damaged)")
        info = VideoInfo(v.codec_context.width, v.codec_context.height, rate,
                         frames or None, float(length) if length else None,
                         len(container.streams.audio), len(container.streams.subtitles),
                         v.codec_context.field_order, v.codec_context.pix_fmt,
                         not v.sample_aspect_ratio or v.sample_aspect_ratio == 1, _stated_rate(v),
                         _guessed_rate(v), float(own) if own else None)
    except BaseException as e:
        container.close()
        if out_of_memory(e) and not isinstance(e, MemoryError):
            raise host_out_of_memory(e) from e
        raise
    if isinstance(path, VideoInput):
        path.opened = container  # only its header was read: it cannot be read again
    else:
        if container.format.name in _ELEMENTARY and Path(path).suffix.lower() in _NEVER_BARE:
            # A file whose start is cut off (recovered, copied in part) loses its header,
            # and FFmpeg finds the bare video in it: the rest came out as if whole.
            log.warning("%s: read as %s, not as the %s its name says: its header is missing or damaged (its "
                        "start cut off?), and any sound in it is not found", path, container.format.long_name,
                        Path(path).suffix.lower())
        container.close()
    return info


def sideways(path: str | os.PathLike) -> bool | None:
    """Whether the video ``path`` is shown turned by a quarter (a phone's held upright),
    as its first frame's display matrix or its stream's rotate tag say, which turn its
    frames (``Upright``); None where that is unknown before the run reads it: a stream,
    read once, or a file whose first frame does not decode."""
    if isinstance(path, VideoInput):
        return None
    container = _open_input(path)
    try:
        stream = _video_stream(container, path)
        _decode_in_order(stream)
        for frame in container.decode(stream):
            return turned_sideways(frame, stream.metadata)
    except av.error.FFmpegError:
        pass
    finally:
        container.close()
    return None


@in_one_line  # a file name may hold a line break
def upscale_video(src: str | os.PathLike, dst: str | os.PathLike,
                  frames: Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]],
                  options: EncodeOptions = EncodeOptions(),
                  progress: Callable[[int], None] | None = None, flags: FlagNames = FlagNames(library=True),
                  settings: dict | None = None) -> int:
    """Upscale ``src`` into ``dst``; ``frames`` maps decoded RGB frames (H×W×3 uint8,
    or uint16 when the output's pixel format holds more than 8 bits) to output frames
    of the same type, one for each it is given, in order and all of one size; it takes
    them all (one that stops early is an InputError); at a constant rate only the frames
    it shows are given (none that a lower rate drops). Returns the frames written.

    Audio and subtitles are copied packet for packet when the output container can
    hold their codec; otherwise audio is re-encoded to the container's default codec,
    text subtitles are converted to the container's text format where it has one (ASS
    in .mkv, WebVTT in .webm, mov_text in .mp4 and .mov) and other subtitles are
    dropped, each with a warning.
    Attachments (fonts) go into a Matroska output; data streams and further video
    streams are dropped, each with a warning. HDR10 metadata goes along where the
    encoder can write it (``video_frames.mastering_options``), else with a warning.

    ``src`` may be a ``streams.VideoInput`` and ``dst`` a ``streams.VideoOutput``: a
    video read as it comes and written as it is made (in ``dst.format``), where a failure
    leaves what was written. ``flags``: how the hints of the command run name its options
    (by default, the warnings name EncodeOptions' fields, as the errors do).

    ``settings`` (what makes ``frames``'s pictures: the model, the scale, as strings)
    has the encoded video kept in pieces beside ``dst`` while it is written
    (``video_pieces``): a run stopped midway, or whose ``frames`` failed for its device
    (a DeviceFailure: a DeviceError, or ordered_map's UpscalingFailed) or the host's
    memory (a MemoryError: a frame that could not be allocated; FFmpeg's ENOMEM as it
    decodes, encodes or writes, or a write's, is raised as one: ``out_of_memory``), or
    whose output's disk filled (a NoRoom of ENOSPC or EDQUOT: ``disk_full``), or whose
    whole video could not be renamed into place (its folder made read-only meanwhile),
    run again with the same source, settings and options, goes on from the last whole
    piece.
    None keeps nothing (a stream, an encoder or container not in video_pieces' lists
    keeps nothing either).
    ``progress`` is then not called for the frames the kept pieces hold: its first
    count is past them.

    Errors are InputErrors that name the file at fault: an encoder or pixel format
    that cannot be used (raised before any file is opened), a ``dst`` that is ``src``
    (by any path or link: renamed into place, the upscale replaced it), ``src`` when it cannot be
    read or decoded, ``dst`` when the video cannot be encoded or written; but the
    host out of memory, whoever met it, is a MemoryError, as said above. Arguments
    of the wrong kind (a path that is none, ``frames``, ``options`` or ``progress``
    that cannot be used) are refused first, in one line.
    """
    # Each was a bare TypeError or AttributeError, some once the input was open.
    if not isinstance(src, VideoInput):
        src = file_path(src, "upscale_video")
    if not callable(frames):
        raise SettingError(f"upscale_video's frames must be a function of the decoded frames, got {describe(frames)}")
    if not isinstance(options, EncodeOptions):
        raise SettingError(f"upscale_video's options must be EncodeOptions, got {describe(options)}")
    if progress is not None and not callable(progress):
        raise SettingError(f"upscale_video's progress must be a function of the frames done, or None, "
                           f"got {describe(progress)}")
    piped = isinstance(dst, VideoOutput)  # written as it is made, not renamed into place
    if not piped:
        dst = file_path(dst, "upscale_video")
        check_named_as_file(dst, "the video, such as out.mp4")  # "out.mp4/" was written as out.mp4
    dst = dst if piped else Path(dst)
    encoder = video_encoder(dst, options, flags)
    part = lock = work = None
    unplaced = placed = False  # the finished video refused its rename into place; renamed there
    if not piped:
        final = write_target(dst)
        if not isinstance(src, VideoInput) and same_file(src, final):
            # Renamed into place at the end, the upscale replaced the source: it was lost
            # (the command refuses it before; a link's file is the one replaced).
            raise InputError(f"cannot write {dst}: it is the input, {src}, which it would overwrite: choose another ",
                             Option("-o", "dst", everywhere=True))
    inp, opened = _open_run_input(src)
    try:
        video_in = _video_stream(inp, src)
        _decode_in_order(video_in)
        window = _window(inp, video_in, src, options, flags) if options.trims else _clock_window(inp)
        try:
            if not piped:
                # A Ctrl-C as mkstemp made it is raised once ``part`` names it, for the removal below.
                with HeldInterrupts(ctrl_c_signals()):
                    part, lock = _part_file(final, dst.suffix)
            if piped and dst.unkept:
                log.warning("%s is a pipe, which %s cannot be written into: writing %s (%s) into it", dst,
                            dst.unkept, dst.kind, dst.suffix)
            out = (av.open(dst, "w", format=dst.format, container_options=dst.options) if piped
                   else av.open(ffmpeg_name(part), "w", container_options=_muxer_options(dst)))
        except (av.error.FFmpegError, ValueError, OSError) as e:
            raise _cannot_write(dst, e) from None
        if not options.pix_fmt:  # "" too, as video_encoder and --codec/--preset take it
            options = replace(options, pix_fmt=_pixel_format(encoder, video_in, src, video_streams.muxer_for(dst),
                                                                    chosen=not options.codec, flags=flags))
        factor = options.rate_factor(video_in.codec_context.field_order)
        if options.field_rate and factor == 1:  # else asked for, and left undone, without a word
            log.warning("%s does not say it is interlaced: %s keeps its %s fps (%s makes a frame of each field all "
                        "the same)", src, flags.named("--field-rate", "field_rate"), _rate_text(_source_rate(video_in)),
                        flags.named("--deinterlace on", "deinterlace='on'"))
        if options.deinterlace == "film" and _source_rate(video_in) not in TELECINE_RATES:
            log.warning("%s is %s fps, not 29.97 or 30 as telecined film is: %s drops one frame in five of it all "
                        "the same", src, _rate_text(_source_rate(video_in)),
                        flags.named("--deinterlace film", "deinterlace='film'"))
        asked = options
        options = replace(options, fps=_checked_rate(dst, encoder, options.fps, _source_rate(video_in),
                                                     _stated_rate(video_in), factor, flags,
                                                     functools.partial(_standard_rate, flags=flags),
                                                     _guessed_rate(video_in)))
        if settings is not None and not piped:
            work = _open_work(src, final, dst, encoder, asked, settings, options.fps or _source_rate(video_in) * factor,
                              flags)
            if work is not None:
                work.total, work.video = _frame_count(video_in, options), part
            if work is not None and work.kept:
                short = work.room_short()
                if short is not None and short[0] < short[2]:
                    # The kept pieces, copied into the video first, would not fit: the
                    # rerun would fail again as it copied them, got no further.
                    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    raise NoRoom(f"cannot write {final}: its disk has {video_pieces.amount(short[0], down=True)} free, "
                                 f"less than the {video_pieces.amount(short[2], up=True)} of work kept to copy into "
                                 "it") from full
                total = work.total
                of = f" of {max(len(work.kept), math.ceil(total / work.every))}" if total else ""
                log.warning("%s: going on from %s (%d%s pieces kept from a stopped run)", final,
                            video_pieces.clock(work.kept[-1].seconds), len(work.kept), of)
                if short is not None:
                    # Said before the upscaling, not as the disk fills again. Not a stop:
                    # what is made until then is kept too, for the next rerun.
                    log.warning("%s: its disk has %s free, about %s too little to go on to the end (the video and "
                                "its pieces beside it, reckoned from those kept): going on, keeping the work as it "
                                "goes", final, video_pieces.amount(short[0]), video_pieces.amount(short[1]))
        try:
            lead = CUE_LEAD if inp.streams.subtitles else SEEK_MARGIN
            # A pipe cannot be sought in: its frames before the part are read and left out.
            one_way = isinstance(src, VideoInput) and not src.seekable()
            origin = None if window is None else window.start - options.start  # where the file starts
            if window is not None and not one_way and not _seek(inp, video_in, window.start, origin, lead,
                                                                 _ahead_of(src, inp)):
                inp.close()  # read again from the beginning, the only place known to be right
                inp, opened = _open_run_input(src)
                video_in = _video_stream(inp, src)
                _decode_in_order(video_in)
            written, boxed = _transcode(inp, video_in, out, src, dst, encoder, frames, options, progress, window,
                                        flags, work, opened)
        except BaseException:
            _close_discarded(out)
            raise
        try:
            keyed = quicktime_keys(out) if not piped else {}
            out.close()
            if piped:
                if out.format.name == "mpegts":  # not an .m2ts, written in units of 32 192-byte packets
                    dst.write(_transport_padding(dst.written))
                dst.flush()
            elif out.format.name == "mpegts":
                _pad_transport_stream(part)
            elif boxed and not cover_atom.add_covers(part, boxed):
                log.warning("%s has no moov box to hold cover art: dropping %d cover picture%s", dst.suffix,
                            len(boxed), "s" * (len(boxed) > 1))
            if keyed and not cover_atom.add_keys(part, keyed, iso=out.format.name != "mov"):
                log.warning("%s has no moov box to hold QuickTime keys: dropping %s", dst.suffix, ", ".join(keyed))
        except (av.error.FFmpegError, OSError) as e:  # the trailer did not fit on the disk, say
            if piped and _broken_pipe(e):
                raise dst.closed_early() from None
            raise _cannot_write(dst, e) from None
        if not piped:
            try:
                os.chmod(part, mode_for(final))  # FFmpeg made it as a new file; the one replaced may be private
                # Held as it is renamed, so that ``placed`` says whether it was: a stop
                # landing just after kept the pieces beside the finished video.
                with HeldInterrupts(ctrl_c_signals()):
                    os.replace(part, final)
                    placed = True
            except OSError as e:  # on Windows, an output open in a player cannot be replaced
                unplaced = True
                raise cannot_write(final, e) from None
            if work is not None:
                work.remove()
    except KeyboardInterrupt:
        if part is not None and not placed:
            _remove(part)
        if work is not None:
            if placed:
                work.remove()  # nothing is left to go on to
            else:
                work.keep_or_remove()  # for the same command to go on from
        # Ctrl-C does not wait for the frame workers, which may still be demuxing the
        # input: closing it under them could crash the process before the command's
        # own quick exit. The container closes itself once they let go of it.
        raise
    except BaseException as e:
        if part is not None:
            _remove(part)
        memory = out_of_memory(e)
        if work is not None:
            if _device_failed(e) or memory or disk_full(e) or unplaced:
                # For a rerun on another device, or with smaller tiles or fewer frames
                # in work at once (the host's memory), or once room is made on the
                # disk, or once the output can be replaced (its folder made read-only
                # as the video ended, a player holding it open on Windows), to go on
                # from: all of it, copied in a moment.
                work.keep_or_remove()
            else:
                work.remove()
        inp.close()
        if piped and _broken_pipe(e):
            raise dst.closed_early() from None
        if memory and not isinstance(e, MemoryError):
            # The command says it with what is kept.
            raise host_out_of_memory(e) from e
        raise
    finally:
        if lock is not None:
            os.close(lock)  # the part is in place, or removed
    inp.close()
    return written


def _device_failed(e: BaseException) -> bool:
    """Whether ``frames`` failed for its device, not for the video: a DeviceFailure, a
    DeviceError (the CPU out of memory even in the smallest tiles) or ordered_map's
    UpscalingFailed (a frame that failed in an unforeseen way, a Vulkan error or a
    lost device, on each device in service). A rerun on another device, or with
    smaller tiles, makes the same frames but for rounding (batch_cli's
    _frame_settings), so the whole pieces are kept for it, as for a stop."""
    return isinstance(e, DeviceFailure)


def disk_full(e: BaseException) -> bool:
    """Whether ``e`` is the output's write refused for a full disk (ENOSPC, or the
    user's quota): the whole pieces beside it are kept, as for a stop, often hours of
    upscaling that a rerun once room is made copies instead of making again. (Where
    the pieces' own write was refused first, they were given up to make room for the
    video, and nothing is left to keep; or, where that room was too small for the
    rest of the video at their rate, the run stopped there, as for the video's, with
    its whole pieces: video_pieces.Work._give_up.)"""
    return isinstance(e, InputError) and getattr(e.__cause__ or e.__context__, "errno", None) in DISK_FULL


def _open_work(src, final: Path, dst: Path, encoder: str, options: EncodeOptions, settings: dict,
               rate: Fraction, flags: FlagNames) -> video_pieces.Work | None:
    """The pieces ``final`` is kept in while written (video_pieces), None where it
    cannot be: a stream read in, an encoder or container whose pieces were not
    checked to join."""
    source = video_pieces.source_identity(src)
    if source is None or encoder not in video_pieces.ENCODERS \
            or video_streams.muxer_for(dst) not in video_pieces.MUXERS:
        return None
    from . import __version__

    # Each setting and option apart, for a changed one to be named (video_pieces.made_with).
    record = {"source": source, "settings": {str(k): str(v) for k, v in settings.items()},
              "options": {str(k): str(v) for k, v in asdict(options).items()}, "encoder": encoder,
              "output": dst.suffix.lower(),
              "versions": [__version__, av.__version__, repr(av.library_versions)], "rate": str(rate)}
    every = max(1, round(video_pieces.piece_seconds() * rate))
    return video_pieces.open_work(final, record, every, flags)


def _part_file(final: Path, suffix: str) -> tuple[Path, int | None]:
    """A new empty file beside ``final``, hidden, to write its video into: of this run
    alone, as two runs writing one output at once (over one folder with
    --skip-existing, say) each wrote into the other's; and with ``suffix``, which says
    the container, whatever a link named ``final`` points to. With it, the descriptor
    that locks it while it is written (part_files), to close once it is renamed or
    removed. Those a run killed while writing ``final`` left are removed first."""
    stem = temp_stem(final.stem, final.parent)
    for name, size in part_files.remove_stale(final.parent, stem, suffix):
        log.warning("%s: removed %s (%s), left by a run killed while writing it", final, name,
                    video_pieces.amount(size))
    return part_files.new_part(final.parent, stem, suffix)


def _close_discarded(out) -> None:
    try:
        out.close()
    except av.error.FFmpegError:
        pass  # the file is being thrown away; the error that got us here is the one to report


def _remove(path: Path) -> None:
    # A part its folder, made read-only meanwhile, holds on to is named, as a picture's
    # is: hidden, it was found by no one (the whole video, where the rename failed).
    left = remove_part(path)
    if left is not None:
        log.warning("%s", left)


