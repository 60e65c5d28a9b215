"""The output video's stream and file: its encoder set up from the options (rate,
quality, B-frames where the container or a variable rate needs them off, tags,
colour) and set up alike again for each kept piece, what the first frame sets
(HDR10 metadata, the sample aspect ratio or a stretch where it cannot be held),
tags and timecodes carried to the new rate, and what is put right in the file once
written (a short MPEG-TS padded, QuickTime keys). Used by ``video``; knows nothing
of ncnn.
"""
from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from . import cover_atom, timecode, video_streams
from .errors import FlagNames, InputError, ffmpeg_short_of_memory, write_error_type
from .video_codecs import (CONSTANT_QUALITY, DEFAULT_CRF, QP2LAMBDA, QUANTISED, QUANTISER, QUIET_X265, RATE_PER_FRAME,
                           VP8_CEILING, X265_FEWEST_REORDERED, _reason, encoded_size, profile_options)
from .video_frames import ColourTags, Mastering, mastering_options, output_aspect
from .video_options import EncodeOptions
from .video_rates import _frame_count, _source_rate

log = logging.getLogger("ncnn_sr")


# Encoders whose stream states the encoder's time base as its frame rate unless told
# the rate is constant.
STATED_RATE_FROM_TICK = ("libx264", "libx264rgb")


def _video_out(out, video_in, codec: str, options: EncodeOptions, time_base: Fraction, colour: ColourTags,
               variable: bool = False, steady: bool = False):
    source_rate = _source_rate(video_in)
    rate = options.fps or source_rate
    stream = out.add_stream(codec, rate=rate)
    stream.metadata.update(retimed_tags(video_streams.stream_tags_to_keep(video_in.metadata), source_rate, rate,
                                        options.start))
    # Matroska writes an unflagged track as not the default one, which its input may have been.
    stream.disposition = video_in.disposition
    stream.pix_fmt = options.pix_fmt
    stream.time_base = time_base
    ctx = stream.codec_context
    ctx.time_base = time_base
    ctx.colorspace, ctx.color_primaries, ctx.color_trc = colour.matrix, colour.primaries, colour.transfer
    ctx.color_range = colour.range
    opts = {}
    if options.crf is not None or (options.bitrate is None and codec in CONSTANT_QUALITY):
        opts["crf"] = str(DEFAULT_CRF if options.crf is None else options.crf)
    if codec == "libvpx" and not options.bitrate:
        stream.codec_context.bit_rate = VP8_CEILING
    if options.preset:
        opts["preset"] = options.preset
    if codec in RATE_PER_FRAME and not options.bitrate:
        stream.codec_context.bit_rate = av.codec.CodecContext.create(codec, "w").bit_rate
    if options.bitrate:
        stream.codec_context.bit_rate = options.bitrate
        if codec == "libvpx-vp9" and options.crf is None:
            opts.pop("crf", None)
    elif codec in QUANTISED:
        # Set as AVOptions, as ffmpeg -q:v sets them: the flag, and the quantiser in lambdas.
        opts.update(flags="+qscale", global_quality=str(QUANTISER * QP2LAMBDA))
    if codec == "libx265":
        opts.update(QUIET_X265)
    opts.update(profile_options(codec, options.pix_fmt, options.bitrate))
    if out.format.name in ("avi", "flv") or (codec == "libx265"
                                             and _frame_count(video_in, options) in range(1, X265_FEWEST_REORDERED)):
        # An AVI has no presentation times: B-frames in it read back in the wrong
        # order (ffmpeg, and this tool, then failed on its own output). An FLV holds no
        # time before 0, where B-frames put the first decode times: FFmpeg moves every
        # stream later by them, but only once it has the first video packet, which
        # the encoder's lookahead holds back (40 frames, 40 s at 1 fps) while it
        # writes up to 10 s of sound; past that it failed. x265 stamps the
        # packets of a clip of one or two frames with decode times it never set
        # (valgrind shows them read from its encoder's uninitialised memory), which the
        # muxer refused now and then as "Invalid argument"; without B-frames nothing
        # is reordered.
        opts["bf"] = "0"
    if variable and out.format.name in video_streams.MOV_FAMILY:
        # An mp4 or .mov states each frame's duration in decoding order, as the time to
        # the next frame decoded: B-frames at a variable rate put its gaps on other
        # frames, and the track ended at the last decoded frame's, short of the last
        # shown (1.14 s of frames read as 1.01 s). Without them the order is the same.
        opts["bf"] = "0"
    if steady and codec in STATED_RATE_FROM_TICK:
        # x264 states the time base as the rate in its VUI unless told the rate is
        # constant: the input's tick, 12800 fps for 25 (an mp4's 1/12800), 24000 for
        # 23.976, which a reader of the stream copied out bare (mkvmerge, MP4Box) took.
        # The frames keep their times; a variable rate keeps the tick (fixed_frame_rate 0).
        opts = _merged(opts, {"x264-params": "force-cfr=1"})
    stream.codec_context.options = opts
    if out.format.name in video_streams.MOV_FAMILY and av.codec.Codec(codec, "w").canonical_name == "hevc":
        # FFmpeg's default tag, hev1, is not played by QuickTime, Safari or iOS; hvc1
        # (ffmpeg -tag:v hvc1) is played everywhere, the parameter sets in its header.
        stream.codec_context.codec_tag = "hvc1"
    return stream


def _merged(options: dict, more: dict) -> dict:
    """``options`` with ``more``; an encoder's lists of its own settings (x265-params:
    key=value:key=value) are joined, not replaced."""
    merged = dict(options)
    for key, value in more.items():
        merged[key] = f"{merged[key]}:{value}" if key.endswith("-params") and merged.get(key) else value
    return merged


# What an encoder is set up with before it opens, for the next piece's to be alike.
_SETUP = ("width", "height", "pix_fmt", "time_base", "framerate", "bit_rate", "colorspace", "color_primaries",
          "color_trc", "color_range", "sample_aspect_ratio", "flags", "flags2")


def _setup_of(ctx) -> dict:
    setup = {name: value for name in _SETUP if (value := getattr(ctx, name, None)) is not None}
    setup["options"] = dict(ctx.options)
    return setup


def _like(codec: str, setup: dict):
    """A new encoder ``codec``, not yet open, set up as ``setup`` (``_setup_of``) says."""
    ctx = av.CodecContext.create(codec, "w")
    for name, value in setup.items():
        setattr(ctx, name, value)
    return ctx


def _keep_mastering(video_out, codec: str, hdr: Mastering, src) -> None:
    """Have the encoder of ``video_out`` write the HDR10 metadata ``hdr``, or warn
    that it cannot."""
    params = mastering_options(codec, hdr)
    if params is None:
        log.warning("%s cannot write the HDR mastering display and light levels of %s: they are left out "
                    "(libx265, libsvtav1 and libx264 keep them)", codec, src)
        return
    video_out.codec_context.options = _merged(video_out.codec_context.options, params)


@dataclass(frozen=True)
class _FirstFrame:
    """What the output takes from the input's first frame: its HDR10 metadata, its
    size as shown (width, height, turned upright) and the sample aspect ratio that
    goes with it."""

    hdr: Mastering | None
    shown: tuple[int, int]
    sar: Fraction | None


def _keep_first(video_out, codec: str, first: _FirstFrame, image: np.ndarray, options: EncodeOptions, src,
                dst: Path, flags: FlagNames) -> tuple[int, int] | None:
    """Have ``video_out`` keep what ``first`` holds, for output frames like ``image``.
    Where it cannot hold their sample aspect ratio, the (width, height) to stretch the
    frames to, so that square samples show them as the input showed; else None."""
    if first.hdr is not None:
        _keep_mastering(video_out, codec, first.hdr, src)
    size = (image.shape[1], image.shape[0])
    sar = output_aspect(first.sar, first.shown, size)
    if sar is None:
        return None
    if _holds_aspect(video_out, codec):
        video_out.codec_context.sample_aspect_ratio = sar
        return None
    if options.keep_width and options.keep_height:
        log.warning("%s holds no sample aspect ratio, and %s fix both sides: it will play with square samples, "
                    "not %s:%s (an .mp4 or .mov output, or H.264 or H.265 video, keeps it)", dst,
                    flags.named("--width and --height", "keep_width and keep_height"), sar.numerator, sar.denominator)
        return None
    # Wider (or taller) rather than narrower, unless that side was asked for; a side
    # the pixel format needs even is rounded to the nearest even size, not cropped later.
    wider = options.keep_height or (sar > 1 and not options.keep_width)
    want = (size[0] * sar, Fraction(size[1])) if wider else (Fraction(size[0]), size[1] / sar)
    even = tuple(s != 3 for s in encoded_size(3, 3, options.pix_fmt, codec))
    stretched = tuple(max(2 if e else 1, 2 * round(w / 2) if e else round(w)) for w, e in zip(want, even))
    if stretched == size:
        return None
    log.info("%s holds no sample aspect ratio: its frames are stretched from %dx%d to %dx%d, as %s:%s samples "
             "show them", dst, *size, *stretched, sar.numerator, sar.denominator)
    return stretched


# Muxers that write a video's sample aspect ratio from its encoder's (an mp4's pasp
# box). The others (Matroska, WebM, AVI) write the stream's own, which PyAV cannot set:
# VideoStream.sample_aspect_ratio is FFmpeg's guess, read-only, and assigning it sets the
# encoder's; neither the muxers nor AVStream have an option for it (PyAV 18, FFmpeg 8).
# Nor does VP9 or SVT-AV1's AV1 carry it in its bitstream for readers to fall back on.
_ASPECT_MUXERS = frozenset({"mp4", "mov", "ipod", "3gp", "3g2"})
# Codecs whose bitstream holds it (H.264's VUI), which players fall back on.
_ASPECT_CODECS = frozenset({"h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4"})


def _holds_aspect(video_out, codec: str) -> bool:
    """Whether ``video_out`` is written with its encoder's sample aspect ratio:
    anamorphic video (a DVD's 720x480 shown at 16:9) played with square samples would
    look squeezed."""
    name = av.codec.Codec(codec, "w").canonical_name
    return video_out.container.format.name in _ASPECT_MUXERS or name in _ASPECT_CODECS


def quicktime_keys(out) -> dict:
    """The tags of the file ``out`` that its mov or mp4 muxer leaves out, to be put in
    as QuickTime keys once it is written: those named in reverse DNS, as the keys of
    a phone's video are (com.apple.quicktime.location.ISO6709, com.android.version),
    which no iTunes or QuickTime atom of FFmpeg's holds."""
    if out.format.name not in cover_atom.KEYED_MUXERS:
        return {}
    return {key: value for key, value in out.metadata.items() if "." in key}


def retimed_tags(tags: dict, source_rate, rate, skipped: Fraction = Fraction(0)) -> dict:
    """``tags`` with a timecode carried from ``source_rate`` to ``rate``, and on by
    ``skipped`` seconds (a part that starts later): it counts frames, so at a new
    rate, or a later first frame, the same instant has another label."""
    # Matroska's tags read back upper case: TIMECODE.
    key = next((k for k in tags if k.lower() == "timecode"), None)
    if key is None or (rate == source_rate and not skipped):
        return tags
    tags = dict(tags)
    label = timecode.retimed(tags[key], Fraction(source_rate), Fraction(rate), skipped)
    if label is None:
        log.warning("cannot carry the timecode %r to %s fps: dropping it", tags.pop(key), rate)
    else:
        tags[key] = label
    return tags


# Muxers that write no timecode, the file's or the video's (measured with PyAV 18.1:
# .m4v, .3gp, MPEG-TS and MPEG program streams left it out without a word).
TIMECODELESS_MUXERS = frozenset({"ipod", "3gp", "mpegts", "mpeg", "svcd"})


def _say_timecode_dropped(out, video_out, dst) -> None:
    """Warn where ``out`` leaves out the timecode its tags or ``video_out``'s carry."""
    if out.format.name not in TIMECODELESS_MUXERS:
        return
    label = next((value for tags in (video_out.metadata, out.metadata) for key, value in tags.items()
                  if key.lower() == "timecode"), None)
    if label is not None:
        log.warning("%s cannot hold a timecode: dropping %r (a .mp4, .mov or .mkv output keeps it)", dst.suffix,
                    label)


# FFmpeg's probe takes a file for an MPEG-TS only with more than 10 of its longest
# (204-byte) packets' worth in it: a shorter one, of a few tiny frames, was taken for
# an MPEG program stream, which found no frame in it, by this tool and ffmpeg alike.
TS_PACKET = 188
TS_FEWEST_PACKETS = 12  # 12 x 188 bytes > 11 x 204
# A null packet (PID 0x1FFF), the stuffing every demuxer skips.
TS_NULL_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * (TS_PACKET - 4)


def _transport_padding(size: int) -> bytes:
    """The null packets that fill an MPEG-TS of ``size`` bytes in 188-byte packets
    to ``TS_FEWEST_PACKETS``, so that it is read back as one."""
    if size % TS_PACKET or size >= TS_PACKET * TS_FEWEST_PACKETS:
        return b""
    return TS_NULL_PACKET * (TS_FEWEST_PACKETS - size // TS_PACKET)


def _pad_transport_stream(path: Path) -> None:
    """Fill an MPEG-TS of 188-byte packets at ``path`` to ``TS_FEWEST_PACKETS``.
    (An .m2ts, of 192-byte packets, is written in units of 32 of them.)"""
    padding = _transport_padding(path.stat().st_size)
    if not padding:
        return
    with open(path, "r+b") as f:
        if f.read(1) != TS_NULL_PACKET[:1]:
            return
        f.seek(0, os.SEEK_END)
        f.write(padding)


def _muxer_options(dst: Path) -> dict | None:
    """The muxer's settings for a file named ``dst``."""
    if video_streams.muxer_for(dst) == "avi":
        # An AVI plays each stream from its first packet, and its picture is placed
        # in its slots here. FFmpeg moved every stream later by the time sound starts
        # before 0 (AAC's priming, 21 ms), rounded up to a whole frame of the picture:
        # an empty frame after the first, and each frame after it a frame late.
        return {"avoid_negative_ts": "disabled"}
    return None


def _cannot_write(dst, e: Exception) -> InputError | MemoryError:
    """The one-line error for a failure ``e`` to write the output ``dst``: NoRoom where
    its disk is full or read-only, which no later output there can get past either;
    the host out of memory (ENOMEM, or FFmpeg's EAGAIN under a cap) said as that."""
    if (short := ffmpeg_short_of_memory(f"cannot write {dst}", e)) is not None:
        return short
    return write_error_type(e)(f"cannot write {dst}: {_reason(e)}")


def _broken_pipe(e: BaseException) -> bool:
    """Whether ``e`` says the output stream's reader went away (``| head``)."""
    return isinstance(e, BrokenPipeError) or getattr(e, "errno", None) == errno.EPIPE
