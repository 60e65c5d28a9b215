"""What each video encoder takes, and what the run asks of it: the encoder a run
writes with (``video_encoder``), its pixel format, frame rates, crf and preset, the
smallest frames it codes right, and the containers that hold its video. Checked
before a model loads where it can be, so a wrong --codec or --preset costs nothing;
``video`` opens the encoder with what is chosen here.
"""
from __future__ import annotations

import functools
import io
import logging
import math
import os
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import av
from av.video.reformatter import ColorRange

from . import video_streams
from .budget import cap_room, mb_words
from .errors import FlagNames, InputError, Option, OutOfMemoryFor, SettingError, too_large, with_article
from .native_stderr import captured_stderr
from .resample import target_size
from .streams import VideoOutput
from .video_options import COMMON_CONTAINERS, EncodeOptions
from .video_frames import deeper_format, depth, encodable_size, subsampling

if TYPE_CHECKING:
    from .video import VideoInfo

log = logging.getLogger("ncnn_sr")

DEFAULT_CRF = 18  # visually near-lossless for x264/x265; upscaled detail deserves it
DEFAULT_PIX_FMT = "yuv420p"  # what every player decodes
# The same 4:2:0 samples in one plane of Y and one of CbCr, which hardware encoders
# (Intel's Quick Sync, AMD's AMF) take instead; and its 10-bit form.
HARDWARE_PIX_FMTS = {"yuv420p": "nv12", "yuv420p10le": "p010le"}
# What a hardware encoder needs to open, by its name's ending.
HARDWARE_NEEDS = {"_nvenc": "an NVIDIA GPU and its driver", "_qsv": "an Intel GPU with Quick Sync and its media driver",
                  "_amf": "an AMD GPU and its AMF driver", "_v4l2m2m": "a V4L2 encoder device (/dev/video*)",
                  "_videotoolbox": "macOS's VideoToolbox", "_vaapi": "a VA-API device and its driver"}
# x265 and SVT-AV1 log straight to stderr too: a banner, their settings and their
# statistics, some 25 lines of a tool whose messages are one line each (and under -q,
# which promises errors only). Only their errors are let through: x265's level is an
# option, SVT-AV1's an environment variable (0 fatal, 1 error, ... 4 debug), which a
# user who set it keeps.
QUIET_X265 = {"x265-params": "log-level=error"}
QUIET_SVT_AV1 = ("SVT_LOG", "1")
# The fewest frames x265 stamps right with B-frames on (see video_output._video_out).
X265_FEWEST_REORDERED = 3
# x265's cuTree writes past a buffer of one int per 16 pixels across (valgrind:
# Lookahead::cuTree, into what Lookahead::create allocated) in frames this wide or
# narrower: 40 or 48 pixels corrupted the heap and aborted the process. Without
# cuTree (a bit-allocation refinement) nothing is written past it.
X265_CUTREE_NARROWEST = 49
# x264 (libx264rgb too) and x265 print their own complaint about an unknown preset
# straight to stderr, past FFmpeg's log, so these are checked first to keep the error one line.
X264_X265_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                     "placebo")
# The --crf each encoder with a constant quality takes, lowest to highest. x264 and
# x265 stop at 51 (x264 took more as 51 without a word, x265 refused it once frames
# came); VP8 starts at its lowest quantizer, 4.
CRF_RANGES = {"libx264": (0, 51), "libx264rgb": (0, 51), "libx265": (0, 51), "libvpx": (4, 63),
              "libvpx-vp9": (0, 63), "libaom-av1": (0, 63), "libsvtav1": (0, 63)}
# The encoders given the default crf where no --bitrate is given.
CONSTANT_QUALITY = frozenset({"libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1"})
# VP8 (libvpx) holds its crf under a bitrate, 256 kb/s where none is given, at which
# the crf made no difference from 320x240 up and upscaled frames came out blocky: so
# high a ceiling lets the crf set the quality, as VP9's does alone.
VP8_CEILING = 10 ** 9
# The encoders that take a crf or a bitrate, not both: x264 and x265 encode at the crf
# and leave the bitrate unused without a word; SVT-AV1 refuses to start (in two lines,
# its own and the run's). VP8, VP9 and libaom's AV1 cap their rate with it.
CRF_OR_BITRATE = frozenset({"libx264", "libx264rgb", "libx265", "libsvtav1"})
# Encoders that share their bitrate among frames by the time base, whose default rate
# (VC-2's 600 Mb/s) PyAV leaves unset: 0 bits, or an mkv's 1/1000 s, gave a frame too
# few bytes to code, and FFmpeg refused it. They are given a constant rate, as ffmpeg
# gives them, and their own default rate where no --bitrate is given.
RATE_PER_FRAME = frozenset({"vc2"})
# DNxHD codes only its profiles' few sizes, each at its own bitrates, so without
# --bitrate no size opened. Then DNxHR is coded, which takes any size from 256x120, in
# the profile of the pixel format's depth and chroma.
DNXHR_PROFILES = {"yuv422p": "dnxhr_hq", "yuv422p10le": "dnxhr_hqx", "yuv444p10le": "dnxhr_444",
                  "gbrp10le": "dnxhr_444"}


def profile_options(codec: str, pix_fmt: str, bitrate: int | None) -> dict:
    """The options ``codec`` is opened with for ``pix_fmt`` frames at ``bitrate``
    (None: no --bitrate) beyond the flags: DNxHR's profile."""
    if codec == "dnxhd" and not bitrate:
        return {"profile": DNXHR_PROFILES.get(pix_fmt, "dnxhr_hq")}
    return {}


# The smallest planes (width, height; every plane of the picture) and frames some of
# FFmpeg's encoders code right: smaller, what their decoder reads back is another
# picture, without a word (a flat colour came back up to 80 levels off from VC-2's
# planes of 32 pixels a side, SpeedHQ's frames of 32 lines were noise), or none
# (CineForm's 16-pixel colour planes).
_LEAST_PLANE = {"vc2": (33, 33), "cfhd": (24, 1)}
_LEAST_FRAME = {"speedhq": (1, 33)}
# FFmpeg's encoders that take frames of some sizes only, and say so only as they open:
# H.261's two and H.263's five, DV's profiles, DNxHD's (each at its own bitrates), and
# sides of a multiple of 4, 8 or 16 (H.263+, Cinepak, MS Video 1, SpeedHQ, CineForm,
# y41p). Opened on the first frame, they refused it once the model had loaded and
# upscaled it; opened before on a blank one of its size, which costs them little, they
# refuse it first.
SIZED_ON_OPEN = frozenset({"h261", "h263", "h263p", "dvvideo", "dnxhd", "cinepak", "msvideo1", "speedhq", "cfhd",
                           "y41p", "flashsv2"})
# Encoders that refuse frames with a side under so many pixels as they open, opened
# before only then: FFmpeg's wrapper of x265 refuses those under 16 before x265 starts;
# x265 codes those under 32 in blocks of 16 pixels, which the HEVC levels it picks for
# more pixels than about 4000 across the other way (or as many a second) do not allow,
# and refused 6000x16 frames as the first came. Opening costs more at other sizes.
X265_LEAST_SIDE, X265_SMALL_BLOCKS = 16, 32
OPENED_WHEN_UNDER = {"libx265": X265_SMALL_BLOCKS}
# The largest frames (width, height) encoders code, each found here by opening and
# encoding frames one pixel (a chroma sample) wider or higher: the bits of their
# headers' sizes (MPEG-1's 12, MPEG-4 Part 2's 13, MPEG-2's and VP8's 14, VP9's and
# FLV's 16), x264's, SVT-AV1's and libwebp's own, JPEG's as FFmpeg takes it. Checked
# without opening, before any model loads: a video that says it is so large (a damaged
# or crafted one, PNG frames of 12000 pixels a side) was upscaled for hours before its
# first frame was refused; libvpx-vp9 took 39 s and 7 GB to open on 15360x8640 frames;
# SVT-AV1 opened on frames 70000 pixels wide and wrote them 4464 wide (70000 less
# 65536) without a word; libwebp refused them only as the first frame came.
MOST_SIDES = {"libx264": (16384, 16384), "libx264rgb": (16384, 16384), "libvpx": (16383, 16383),
              "libvpx-vp9": (65536, 65536), "libsvtav1": (16384, 8704), "mpeg1video": (4095, 4095),
              "mpeg4": (8191, 8191), "mpeg2video": (16383, 16383), "flv": (65535, 65535), "svq1": (4095, 4095),
              "mjpeg": (65500, 65500), "jpegls": (65535, 65535), "gif": (65535, 65535), "libwebp": (16383, 16383)}
# The smallest: SVT-AV1 refused frames under 4 pixels a side as it opened, in two lines of its own.
LEAST_SIDES = {"libsvtav1": (4, 4)}
# MPEG-2's start codes could be read inside a header whose size is a multiple of 4096,
# which FFmpeg's encoder refuses as it opens.
MPEG2_SIDE_STEP = 4096
# FFmpeg opens no encoder on frames whose bytes (8 a pixel, with 128 pixels' margins
# on each side) it could not count in an int: 16255 pixels a side at most, square.
FFMPEG_MOST_BYTES = 2 ** 31 - 1
# Those the refusals name, for frames too large for the one asked for, where the
# output takes them: x265 takes any size FFmpeg does (at least 32 pixels a side).
ROOMIER_ENCODERS = ("libx265", "libvpx-vp9")
# The encoders whose frames carry a palette of their own (GIF's colour table, PNG's
# PLTE), which each frame gets (video_frames.paletted); and an AVI's, which holds a
# palette change per frame for MS RLE too. A .mov keeps only the palette of its header:
# MS RLE and SMC frames after the first came back in the first one's colours.
PALETTE_IN_FRAME = frozenset({"gif", "png", "apng"})
PALETTE_PER_FRAME = {"avi": PALETTE_IN_FRAME | {"msrle"}}
ONE_PALETTE = frozenset({"msrle", "smc"})
# SVT-AV1 turns its adaptive quantisation off for frames under 64 pixels a side, and
# then refuses a target rate, in a line of its own and FFmpeg's "bad parameter".
SVT_AV1_RATE_SIDE = 64
# SVT-AV1 opens at no faster rate, refusing in a line of its own and FFmpeg's "bad parameter".
SVT_AV1_FASTEST = 240
# SVT-AV1 (4.1) gives back no packet of frames 24 pixels or fewer across one way and
# more than 64 (its superblock) the other, once it splits the work among threads (its
# level of parallelism, lp, which it picks by the cores: 2 on 2 of them, or any of 2
# to 6 asked for; FFmpeg's thread count does not reach it): its threads wait on each
# other for good, and the video hung at its end (or once its queue was full), whatever
# the preset, the frames or 8- or 10-bit depth. At lp=1 it codes each such size tried
# (4 to 24 pixels by 66 to 16384), and writes the same bytes as at lp=2 or 6 where all
# finish; frames so thin cost one thread little.
SVT_AV1_THIN_SIDE, SVT_AV1_SUPERBLOCK = 24, 64
SVT_AV1_ONE_THREAD = {"svtav1-params": "lp=1"}
# FFmpeg's MPEG-family encoders (MPEG-1/2/4, H.263, WMV, FLV, MJPEG) have no crf: with
# no --bitrate they ran at FFmpeg's 200 kb/s, however many pixels, and an upscaled
# picture came out in blocks. A fixed quantiser (ffmpeg's -q:v) keeps the quality
# whatever the size and rate, which no bitrate guessed from them does; 3 is near the
# best these encoders make (1 to 31, lower is better).
QUANTISED = frozenset({"mpeg1video", "mpeg2video", "mpeg4", "msmpeg4v2", "msmpeg4", "wmv1", "wmv2", "h261", "h263",
                       "h263p", "flv", "mjpeg"})
QUANTISER = 3
# FFmpeg's FF_QP2LAMBDA: global_quality is a quantiser in lambda units.
QP2LAMBDA = 118
# ProRes encoders make the rate of their profile, whatever the bitrate asked.
PROFILE_RATE = frozenset({"prores", "prores_aw", "prores_ks"})
# JPEG's encoders, whose YUV is JFIF's, BT.601 in full range: FFmpeg refused to open
# them on limited-range yuv420p (the default) with a bare "Invalid argument".
JPEG_ENCODERS = frozenset({"mjpeg", "ljpeg"})


def _reason(e: Exception) -> str:
    return too_large(e, getattr(e, "strerror", None) or str(e))


# FFmpeg lists after MPEG-1's eight standard rates Xing's unofficial ones (15, 5, 10,
# 12 fps), which its encoder then refuses unless told to break the standard.
MPEG1_STANDARD_RATES = 8


# MPEG-4 Part 2 counts time in at most 65535 ticks a second (its time base's
# denominator): its encoder refused an input's finer ones (an MPEG-TS's 1/90000 s, many
# phones' mp4s') as the first frame came.
MPEG4_MOST_TICKS = 65535


def encoder_time_base(codec: str, time_base: Fraction) -> Fraction:
    """The time base ``codec`` stamps frames in that keep the times they have in
    ``time_base``: that one, or for MPEG-4 Part 2 a whole number of its ticks where that
    is one the encoder takes (1/45000 s of 1/90000 s: the same times), else the
    encoder's finest, to which times are rounded."""
    if av.codec.Codec(codec, "w").canonical_name != "mpeg4" or time_base.denominator <= MPEG4_MOST_TICKS:
        return time_base
    coarser = time_base * -(-time_base.denominator // MPEG4_MOST_TICKS)
    return coarser if coarser.denominator <= MPEG4_MOST_TICKS else Fraction(1, MPEG4_MOST_TICKS)


def _frame_rates(codec: str) -> list[Fraction]:
    """The only frame rates ``codec`` encodes (MPEG-1 and MPEG-2 video keep to a
    list), or [] when it takes any."""
    encoder = av.codec.Codec(codec, "w")
    rates = [Fraction(r.numerator, r.denominator) for r in encoder.frame_rates or ()]
    return rates[:MPEG1_STANDARD_RATES] if encoder.name == "mpeg1video" else rates


# The rates video is made at, to name first among the many an encoder may list.
_COMMON_RATES = tuple(Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60"))


def _listed_rates(rates: list[Fraction]) -> str:
    shown = [r for r in _COMMON_RATES if r in rates] or sorted(set(rates))[:8]
    return ", ".join(map(str, shown)) + (", ..." if len(set(rates)) > len(shown) else "")


def _standard_rate(codec: str, source: Fraction, flags: FlagNames = FlagNames()) -> Fraction:
    """For an encoder that keeps to a list of rates, the one nearest ``source``: the
    video is then written at that constant rate, as --fps would."""
    rate = _nearest_rate(codec, source)
    if rate != source:
        log.warning("%s encodes only standard frame rates: writing a constant %s fps (the input's is %s); "
                    "%s chooses another", codec, rate, _rate_text(Fraction(source)), flags.named("--fps", "fps"))
    return rate


def _nearest_rate(codec: str, source: Fraction) -> Fraction:
    """The rate of those ``codec`` keeps to nearest ``source``."""
    return min(_frame_rates(codec), key=lambda r: abs(r - source))


def _said(command: str, library: str) -> Option:
    """Words of a refusal that read ``command`` to a command's user, who typed its
    flags, and ``library`` to the library's caller, who gave EncodeOptions' fields.
    ``command`` is said as it is by every command (everywhere): a flag the drop-in has
    not is given here as its FlagNames say it, as the drop-in hands them to the run
    and prints with its own."""
    return Option(flag=command, argument=library, everywhere=True)


def _shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def refusal(options: EncodeOptions, fields: tuple[str, ...], *parts) -> InputError:
    """The one-line refusal of what ``options``' ``fields`` ask of the encoder, in
    ``parts`` (text and Options). The library's caller reads each field given as it
    gave it first ("crf=99: libx264 takes crf 0 to 51"), a command's user the flags
    the parts name. A SettingError (a ValueError too) where a field was given, as
    EncodeOptions' own refusals are; else an InputError: the output's name asked for
    what cannot be (an .ogv of the default h264)."""
    given = [name for name in fields if getattr(options, name) not in (None, "")]
    shown = ", ".join(f"{name}={_shown(getattr(options, name))}" for name in given)
    return (SettingError if given else InputError)(_said("", f"{shown}: " if shown else ""), *parts)


# The encoder settings as the hints name them: the command's flags, EncodeOptions' fields.
CRF = Option(flag="--crf", argument="crf", everywhere=True)
BITRATE = Option(flag="--bitrate", argument="bitrate", everywhere=True)
PRESET = Option(flag="--preset", argument="preset", everywhere=True)


def _another_codec(flags: FlagNames) -> Option:
    """"another codec", as ``flags``' command offers it."""
    return _said(flags.another("codec", "--codec"), "codec")


def _check_preset(codec: str, encoder: str, pix_fmt: str, preset: str) -> None:
    """SettingError unless the encoder ``codec`` (FFmpeg's ``encoder``) takes ``preset``.
    x264's and x265's names are listed, as they print their own complaint on an open;
    SVT-AV1's numbers, -2 to 13, are taken without an open, as it prints its banner on
    every one. Any other encoder is asked by opening it: one without a preset option
    (VP9) would ignore it without a word, and one that refuses the value would fail
    only once frames reach it."""
    if encoder in ("libx264", "libx264rgb", "libx265"):
        if preset not in X264_X265_PRESETS:
            raise refusal(EncodeOptions(preset=preset), ("preset",), f"{codec} has no ",
                          _said(f"preset '{preset}'", "such preset"), f": use one of {', '.join(X264_X265_PRESETS)}")
    elif not (encoder == "libsvtav1" and preset.lstrip("-").isdigit() and -2 <= int(preset) <= 13):
        _open_with_preset(codec, pix_fmt, preset)


@functools.lru_cache(maxsize=None)
def _open_with_preset(codec: str, pix_fmt: str, preset: str) -> None:
    """SettingError unless ``codec`` opens on a small picture with only ``preset`` set,
    and uses it. Kept once it passes: the command checks its options before a model
    loads and upscale_video again before it opens a file, and each open costs an
    encoder's start."""
    ctx = _probe_context(codec, pix_fmt)
    ctx.options = {"preset": preset}
    try:
        ctx.open()
    except (av.error.FFmpegError, ValueError) as e:
        raise refusal(EncodeOptions(preset=preset), ("preset",), f"{codec} has no ",
                      _said(f"preset '{preset}'", "such preset"), f" ({_reason(e)})") from None
    if "preset" in ctx.options:  # left unused: the encoder has no such option
        raise refusal(EncodeOptions(preset=preset), ("preset",), f"{codec} has no presets: leave ", PRESET, " out")


def _check_crf(codec: str, encoder: str, pix_fmt: str, options: EncodeOptions) -> None:
    """SettingError unless the encoder ``codec`` (FFmpeg's ``encoder``) takes
    ``options``' crf, and its bitrate beside it. An encoder not listed is opened with
    it, as for a preset: one without a crf option (MPEG-4, a hardware encoder) ignored
    it without a word."""
    if encoder in CRF_RANGES:
        low, high = CRF_RANGES[encoder]
        if not low <= options.crf <= high:
            raise refusal(options, ("crf",), f"{codec} takes ", CRF, f" {low} to {high} (lower is better)",
                          _said(f", not {options.crf}", ""))
        if options.bitrate is not None and encoder in CRF_OR_BITRATE:
            raise refusal(options, ("crf", "bitrate"), f"{codec} takes ", CRF, " or ", BITRATE, ", not both")
    elif not _opens_with_crf(codec, pix_fmt):
        raise refusal(options, ("crf",), f"{codec} has no constant quality (", CRF, "): give a ", BITRATE)


@functools.lru_cache(maxsize=None)
def _opens_with_crf(codec: str, pix_fmt: str) -> bool:
    """Whether ``codec`` uses a crf option, or cannot be opened here to tell (a
    hardware encoder without its hardware, which the run reports)."""
    ctx = _probe_context(codec, pix_fmt)
    ctx.options = {"crf": "20"}
    try:
        ctx.open()
    except (av.error.FFmpegError, ValueError):
        return True
    return "crf" not in ctx.options


# What begins a line an external library writes to stderr itself ("x264 [error]: ").
_LIBRARY_SAID = re.compile(r"^\S+ \[\w+\]: ")



def set_level_back(level) -> None:
    """PyAV's log level put back to ``level``, its default None (FFmpeg's logs
    ignored) as PANIC, which ignores them alike: a log call another thread (a
    frame-threaded decoder) had begun at the raised level compared its level with
    None, and PyAV printed that TypeError's traceback on stderr."""
    av.logging.set_level(av.logging.PANIC if level is None else level)


def _open_saying_why(ctx) -> None:
    """Open the encoder ``ctx``; where it refuses, the FFmpegError raised has in
    ``said`` FFmpeg's reason (a frame size the encoder does not take), the first line
    of its first error, which goes to FFmpeg's log, kept quiet, and not into the error."""
    before, skipped = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    # PyAV holds back a line that repeats the one before, and lets it out once another
    # comes: a second video refused alike had no reason, and a third the held one.
    av.logging.set_skip_repeated(False)
    heard = ""
    try:
        # An external library may write to stderr itself, not through FFmpeg's log:
        # libx264 said "x264 [error]: malloc of size 1500068 failed" there, above the
        # command's own line for the same failure. Kept from the terminal where the
        # open fails (its words become the reason where FFmpeg's log has none), let
        # through where it opens.
        with av.logging.Capture(local=False) as logs, captured_stderr(hand_back=True) as native:
            try:
                ctx.open()
            except av.error.FFmpegError:
                heard = native()
                raise
    except av.error.FFmpegError as e:
        errors = [message for level, _, message in logs if level <= av.logging.ERROR and message.strip()]
        # Less a list it goes on to give in lines of its own ("Valid DV profiles are:").
        e.said = re.sub(r"(?<=\.)\s*[^.]*:$", "", errors[0].strip().splitlines()[0]) if errors else \
            _LIBRARY_SAID.sub("", heard.strip().splitlines()[-1]) if heard.strip() else None
        raise
    finally:
        set_level_back(before)
        av.logging.set_skip_repeated(skipped)


# Room, under a cap of the process's own (ulimit -v, -d), short of which an encoder
# that will not open is taken to lack memory: libx264 maps 38 MB to open on 384x384
# frames and 68 MB on 1080p ones (its threads and lookahead), and has nothing else to
# say of a failed allocation than "Generic error in an external library" (its own
# "malloc of size N failed" goes straight to stderr, or is not said).
ENCODER_OPEN_ROOM = 64 << 20


def short_of_memory_to_open(codec: str, e: Exception) -> MemoryError | None:
    """The MemoryError to raise for ``codec`` refusing to open (``e``) where memory is
    why: FFmpeg's ENOMEM, or an external library's failure (libx264's) with less than
    ENCODER_OPEN_ROOM left under a cap of the process's own; None otherwise, where the
    refusal is the settings' (refused_open)."""
    if isinstance(e, MemoryError):  # av.error.MemoryError, FFmpeg's ENOMEM
        return OutOfMemoryFor(f"{codec} cannot open ({_reason(e)})")
    if not isinstance(e, av.error.ExternalError):
        return None
    capped = cap_room()
    if capped is None or capped[0] >= ENCODER_OPEN_ROOM:
        return None
    said = getattr(e, "said", None) or _reason(e)  # the library's own words ("malloc of size N failed")
    return OutOfMemoryFor(f"{codec} cannot open ({said}) with {mb_words(capped[0])} left under {capped[1]}")


def refused_open(dst, codec: str, reason: str, said: str | tuple | None = None,
                 size: tuple[int, int] | None = None) -> InputError:
    """The one line for ``codec`` refusing to open on the frames of ``dst``: FFmpeg's
    ``reason``, and what its log ``said`` (``_open_saying_why``) or what it needs;
    and the (width, height) ``size`` of the frames, where FFmpeg's reason may be
    their size and not say it ("input must be at least 256x120"). ``said`` may be in
    pieces, text and Options, where it is ours and names a setting."""
    said = (said,) if isinstance(said, str) else said or ()
    needs = next((what for end, what in HARDWARE_NEEDS.items() if codec.endswith(end)), None)
    hint = (f" ({codec} needs {needs}; libx264 runs anywhere)",) if needs else (" (", *said, ")") if said else ()
    text = "".join(p.flag if isinstance(p, Option) else p for p in said)
    named = size and f"{size[0]}x{size[1]}" in f"{reason} {text}"  # H.263's and Cinepak's reasons name it
    frames = f": the upscaled frames are {size[0]}x{size[1]}" if size and not needs and not named else ""
    return InputError(f"{dst}: cannot encode with {codec}: {reason}", *hint, frames)


@functools.lru_cache(maxsize=None)
def _open_refused(codec: str, pix_fmt: str, size: tuple[int, int], bitrate: int | None) -> tuple[str, str | None]:
    """FFmpeg's reason and its log's for ``codec`` refusing to open on ``size`` frames
    (width, height) of ``pix_fmt`` at ``bitrate`` (None: its default), or ("", None)."""
    ctx = _probe_context(codec, pix_fmt)
    ctx.width, ctx.height = size
    if codec == "libx265":
        ctx.options = dict(QUIET_X265)
    ctx.options = {**ctx.options, **profile_options(codec, pix_fmt, bitrate)}
    if bitrate:
        ctx.bit_rate = bitrate
    try:
        _open_saying_why(ctx)
    except av.error.FFmpegError as e:
        return _reason(e), getattr(e, "said", None)
    return "", None


def _probe_context(codec: str, pix_fmt: str):
    """An encoder of ``codec`` set up as a run would set it, for a small picture, to
    open with one option and see whether it takes it."""
    ctx = av.codec.CodecContext.create(codec, "w")
    # QCIF, as H.261 and H.263 take no other small size: at 64x64 they did not open,
    # which left a --crf taken and ignored.
    ctx.width, ctx.height, ctx.pix_fmt = 176, 144, pix_fmt
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    if av.codec.Codec(codec, "w").name in JPEG_ENCODERS:
        ctx.color_range = ColorRange.JPEG  # else it refuses to open whatever the option
    return ctx


def _rate_text(rate: Fraction) -> str:
    return str(rate) if rate.denominator in (1, 1001) else f"{float(rate):.3f}"


def video_encoder(dst: Path | VideoOutput, options: EncodeOptions, flags: FlagNames = FlagNames()) -> str:
    """The name of the video encoder ``options`` choose for ``dst`` (FFmpeg's encoder's
    own: libx264 for ``--codec h264``, so later choices need not look it up); a SettingError
    unless it is a video encoder that can encode ``options.pix_fmt`` into a file of the
    kind ``dst``'s name asks for (an InputError where ``options`` asked nothing: the
    default encoder into a container that cannot hold it; see ``refusal``). ``flags``:
    how the command's hints name its options (the drop-in has no --codec)."""
    codec = options.codec or ("libvpx-vp9" if dst.suffix.lower() == ".webm" else "libx264")
    try:
        encoder = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError) as e:
        reason = _reason(e)
        why = "" if reason.strip("'") == codec else f" ({reason})"  # PyAV's reason is the name alone
        known = [name for name in _COMMON_ENCODERS if name in av.codecs_available]
        hint = f": this FFmpeg's video encoders include {', '.join(known)}" if known else ""
        raise refusal(options, ("codec",), "unknown video encoder", _said(f" '{codec}'", ""), f"{why}{hint}") from None
    if encoder.type != "video":
        raise refusal(options, ("codec",), _said(f"'{codec}' is ", ""),
                      f"{with_article(encoder.type)} encoder, not a video encoder")
    if encoder.name == "libsvtav1":
        # Before any SVT-AV1 encoder opens (the preset check below may open one).
        os.environ.setdefault(*QUIET_SVT_AV1)
    muxer = video_streams.muxer_for(dst)
    raw = encoder.name == "rawvideo"
    takes = _formats(codec, muxer)
    listed = _listed_formats(takes)
    # Without one asked for, the format is chosen once the input's depth is known: 8-bit
    # 4:2:0 or, only where the encoder takes it, its 10-bit form (another of the
    # encoder's own where it takes neither).
    pix_fmt = options.pix_fmt or _taken(DEFAULT_PIX_FMT, takes)
    if not options.pix_fmt and takes and pix_fmt not in takes:
        pix_fmt = _nearest_format(takes, 8)
    try:
        av.VideoFormat(pix_fmt)
    except ValueError:
        hint = f": {codec} takes {listed}" if takes else ""
        raise refusal(options, ("pix_fmt",), "unknown pixel format", _said(f" '{pix_fmt}'", ""), hint) from None
    if takes and pix_fmt not in takes:
        into = f" into {dst.suffix}" if raw else ""
        raise refusal(options, ("codec", "pix_fmt"), f"{codec} cannot encode {pix_fmt} pixels{into}: it takes {listed}")
    paletted = av.VideoFormat(pix_fmt).has_palette
    if paletted and not _palette_kept(encoder.name, muxer) and (muxer is None or _holds_encoded(muxer, codec, raw)):
        drawn = _listed_formats([f for f in takes if not av.VideoFormat(f).has_palette])
        if encoder.name in ONE_PALETTE:
            where = "write .avi, or " if encoder.name in PALETTE_PER_FRAME["avi"] else ""
            raise refusal(options, ("codec", "pix_fmt"), f"{dst.suffix} keeps one palette for all {codec} frames, "
                          f"which would show those after the first in its colours: {where}choose another ",
                          _another_codec(flags))
        raise refusal(options, ("codec", "pix_fmt"), f"{codec} cannot encode {pix_fmt} pixels here (frames get a "
                      "palette of their own only in gif, png or apng, or msrle in .avi)"
                      + (f": it takes {drawn}" if drawn else ""))
    if options.preset:
        _check_preset(codec, encoder.name, pix_fmt, options.preset)
    if options.crf is not None or options.bitrate is not None:
        # They encoded the same file whatever the bitrate, without a word.
        if encoder.lossless and not encoder.lossy:
            raise refusal(options, ("crf", "bitrate"), f"{codec} is lossless: leave ", CRF, " and ", BITRATE, " out")
        if encoder.name in PROFILE_RATE:
            raise refusal(options, ("crf", "bitrate"), f"{codec} has no ", CRF, " or ", BITRATE,
                          ": its profile sets its rate")
    if options.crf is not None:
        _check_crf(codec, encoder.name, pix_fmt, options)
    rates = _frame_rates(codec)
    if rates and options.fps is not None and options.fps not in rates:
        raise refusal(options, ("fps",), f"{codec} cannot encode {options.fps} fps: it takes {_listed_rates(rates)}")
    if muxer is None:
        return encoder.name
    if not _holds_encoded(muxer, codec, raw) or (dst.suffix.lower() == ".m2ts"
                                                  and encoder.canonical_name in video_streams.M2TS_UNREAD):
        # Asked here, before any model loads, not left to the muxer's bare "Invalid argument".
        problem = "cannot hold"
    elif video_streams.loses_times(muxer, encoder.canonical_name):
        problem = "loses the frame times of"
    else:
        return encoder.name
    own = video_streams.OWN_VIDEO.get(muxer)
    such = [f", such as {own}"] if own and own != encoder.name else []
    if such and own not in QUANTISED and av.codec.CodecContext.create(own, "w").bit_rate:
        # FFmpeg's default rate, 200 kb/s, is all such an encoder has without one.
        such += [" with a ", BITRATE]
    if isinstance(dst, VideoOutput):  # a stream is written in its one container, whatever else a file could be
        raise refusal(options, ("codec",), f"{dst} is {dst.kind}, which {problem} {encoder.canonical_name} video: "
                      "choose another ", _another_codec(flags), *such)
    able = [suffix for suffix in _OFFERED if _holds_encoded(video_streams.muxer_for(Path(suffix)), codec, raw)
            and not (paletted and not _palette_kept(encoder.name, video_streams.muxer_for(Path(suffix))))]
    where = f"write {_either(able)}, or " if able else ""
    raise refusal(options, ("codec",), f"{dst.suffix} {problem} {encoder.canonical_name} video: {where}choose another ",
                  _another_codec(flags), *such)


def svt_av1_stalls(size: tuple[int, int]) -> bool:
    """Whether SVT-AV1, on threads, never finishes frames of ``size`` (width, height)."""
    return min(size) <= SVT_AV1_THIN_SIDE and max(size) > SVT_AV1_SUPERBLOCK


def check_encoder_rate(dst, encoder: str, rate: Fraction, flags: FlagNames = FlagNames()) -> None:
    """An InputError if ``encoder`` cannot encode frames at ``rate``, the rate it is opened at."""
    if encoder == "libsvtav1" and rate > SVT_AV1_FASTEST:
        raise InputError(f"{dst}: libsvtav1 encodes at most {SVT_AV1_FASTEST} frames a second, not "
                         f"{_rate_text(rate)}: give ",
                         _said(flags(f"--fps {SVT_AV1_FASTEST}"), f"fps={SVT_AV1_FASTEST}"),
                         " or less, or another ", _another_codec(flags))


def _palette_kept(encoder: str, muxer: str | None) -> bool:
    """Whether each frame of ``encoder`` in a ``muxer`` output keeps a palette of its own."""
    return encoder in PALETTE_PER_FRAME.get(muxer, PALETTE_IN_FRAME)


def check_size(info: VideoInfo, dst: Path | VideoOutput, encoder: str, options: EncodeOptions,
               scale: float | None = None, width: int | None = None, height: int | None = None,
               sideways: Callable[[], bool | None] | None = None, flags: FlagNames = FlagNames()) -> None:
    """Before any model loads: the InputError the first frame would meet where ``encoder``
    cannot code the frames the upscaler makes of ``info``'s at ``scale``, ``width`` or
    ``height`` (none: the model's scale, unknown here, and nothing is checked). Frames
    turned upright (a phone's) are of the other shape: ``sideways`` tells whether they
    are (``video.sideways``: a frame is decoded), asked only where a frame would be
    refused; where it cannot tell, frames that fit either way round are let through, as
    are those stretched to their samples' shape, which may come out of another size.
    ``flags``: how the command's hints name its options (the drop-in has no --codec)."""
    if (scale is None and width is None and height is None) or not info.square:
        return
    pix_fmt = options.pix_fmt or _default_format(encoder, info.pix_fmt, video_streams.muxer_for(dst))
    refusals = []
    for tall, wide in ((info.height, info.width), (info.width, info.height)):  # as coded, or turned a quarter
        # A scale beside --width or --height only picks the model's variant.
        out_height, out_width = target_size(tall, wide, scale if width is None and height is None else None, width,
                                            height)
        size = encoded_size(out_width, out_height, pix_fmt, encoder)
        refusals.append(_size_refusal(dst, encoder, replace(options, pix_fmt=pix_fmt), size, flags)
                        or _opening_refusal(dst, encoder, pix_fmt, size, options.bitrate, flags))
    if not any(refusals):
        return
    turned = sideways() if sideways is not None else None
    if turned is None and all(refusals):
        raise refusals[0]
    if turned is not None and refusals[turned]:
        raise refusals[turned]


def _size_refusal(dst, codec: str, options: EncodeOptions, size: tuple[int, int],
                  flags: FlagNames = FlagNames()) -> InputError | None:
    """Why ``codec`` cannot code frames of ``size`` (width, height), if it cannot."""
    if codec == "libsvtav1" and options.bitrate and min(size) < SVT_AV1_RATE_SIDE:
        return InputError(f"{dst}: libsvtav1 keeps to a ", BITRATE, f" only on frames of {SVT_AV1_RATE_SIDE}x"
                          f"{SVT_AV1_RATE_SIDE} pixels or more, not {size[0]}x{size[1]}: give a ", CRF, " instead")
    too_large = _too_large(dst, codec, size, flags)
    if too_large:
        return too_large
    least = _least_size(codec, options.pix_fmt)
    if least and (size[0] < least[0] or size[1] < least[1]):
        sides = [f"{n} pixels {way}" for n, has, way in zip(least, size, ("wide", "high")) if has < n]
        return InputError(f"{dst}: {codec} codes {size[0]}x{size[1]} {options.pix_fmt} frames wrong (they read "
                          f"back as another picture, or none): give frames at least {' and '.join(sides)}, or "
                          "another ", _another_codec(flags))
    return None


def _too_large(dst, codec: str, size: tuple[int, int], flags: FlagNames) -> InputError | None:
    """Why ``codec`` cannot code frames of ``size`` (width, height) for their size
    alone, if it cannot: over FFmpeg's limit or the encoder's (MOST_SIDES), under the
    encoder's (LEAST_SIDES), or a side MPEG-2 refuses."""
    width, height = size
    if _over_ffmpeg(size):
        side = _ffmpeg_square()
        return InputError(f"{dst}: FFmpeg encodes no frames as large as {width}x{height} (at most some 268 million "
                          f"pixels and margins: {side}x{side} square): upscale less")
    most = MOST_SIDES.get(codec)
    if most and (width > most[0] or height > most[1]):
        roomier = _roomier(dst, codec, size)
        such = f", such as {roomier}" if roomier else ""
        return InputError(f"{dst}: {codec} encodes frames of at most {most[0]}x{most[1]} pixels, not {width}x{height}: "
                          "upscale less, or choose another ", _another_codec(flags), such)
    least = LEAST_SIDES.get(codec)
    if least and (width < least[0] or height < least[1]):
        return InputError(f"{dst}: {codec} encodes frames of at least {least[0]}x{least[1]} pixels, not "
                          f"{width}x{height}: upscale more, or choose another ", _another_codec(flags))
    if codec == "mpeg2video" and (width % MPEG2_SIDE_STEP == 0 or height % MPEG2_SIDE_STEP == 0):
        return InputError(f"{dst}: mpeg2video encodes no frames {MPEG2_SIDE_STEP} pixels wide or high, or a multiple "
                          f"of it, as {width}x{height}: upscale to another size",
                          _said(f" ({flags('--width')}, {flags('--height')})", ""),
                          ", or choose another ", _another_codec(flags))
    return None


def _over_ffmpeg(size: tuple[int, int]) -> bool:
    """Whether FFmpeg refuses to open any encoder on frames of ``size`` (its av_image_check_size)."""
    return 8 * (size[0] + 128) * (size[1] + 128) >= FFMPEG_MOST_BYTES


def _ffmpeg_square() -> int:
    """The side of the largest square frames FFmpeg encodes."""
    return math.isqrt((FFMPEG_MOST_BYTES - 1) // 8) - 128


def _roomier(dst, codec: str, size: tuple[int, int]) -> str | None:
    """An encoder of ROOMIER_ENCODERS, not ``codec``, that codes frames of ``size`` into ``dst``."""
    muxer = video_streams.muxer_for(dst)
    for other in ROOMIER_ENCODERS:
        most = MOST_SIDES.get(other, size)
        if (other != codec and other in av.codecs_available and size[0] <= most[0] and size[1] <= most[1]
                and not (other == "libx265" and min(size) < X265_SMALL_BLOCKS)
                and (muxer is None or video_streams.takes_encoded(muxer, other))):
            return other
    return None


def _opening_refusal(dst, codec: str, pix_fmt: str, size: tuple[int, int], bitrate: int | None,
                     flags: FlagNames) -> InputError | None:
    """The refusal of an encoder of SIZED_ON_OPEN (or OPENED_WHEN_UNDER, of frames so
    small) to open on frames of ``size``, as the first frame would meet it."""
    if codec not in SIZED_ON_OPEN and min(size) >= OPENED_WHEN_UNDER.get(codec, 0):
        return None
    reason, said = _open_refused(codec, pix_fmt, size, bitrate)
    if reason and codec == "libx265" and min(size) >= X265_LEAST_SIDE:
        # In place of FFmpeg's "Cannot open libx265 encoder.", as x265's own word is quieted.
        said = (f"x265 codes frames under {X265_SMALL_BLOCKS} pixels a side only up to some 4000 pixels the other "
                "way: upscale more, or choose another ", _another_codec(flags))
    return refused_open(dst, codec, reason, said, size) if reason else None


def _least_size(codec: str, pix_fmt: str) -> tuple[int, int] | None:
    """The smallest (width, height) of ``pix_fmt`` frames ``codec`` codes right, where
    it has one (see _LEAST_PLANE)."""
    if codec in _LEAST_FRAME:
        wide, high = _LEAST_FRAME[codec]
        across = down = 1
    elif codec in _LEAST_PLANE:
        wide, high = _LEAST_PLANE[codec]
        across, down = subsampling(pix_fmt)
    else:
        return None
    step_x, step_y = subsampling(pix_fmt)  # and a whole number of colour samples, as encodable_size makes it
    return tuple(-(-n * k // step) * step for n, k, step in ((wide, across, step_x), (high, down, step_y)))


def _listed_formats(formats: list[str]) -> str:
    return ", ".join(formats[:6]) + (", ..." if len(formats) > 6 else "")


def _holds_encoded(muxer: str, codec: str, raw: bool) -> bool:
    """Whether a ``muxer`` output holds video ``codec`` makes: raw video in a pixel
    format it reads back (a template stream, with none, is refused by Matroska)."""
    return bool(_formats(codec, muxer)) if raw else video_streams.takes_encoded(muxer, codec)


@functools.lru_cache(maxsize=None)
def _matrix_read(codec: str, muxer: str, pix_fmt: str, matrix: int) -> int:
    """The matrix a reader takes ``codec`` video in a ``muxer`` file, coded and tagged
    with ``matrix``, to be in: ``matrix`` where the codec or the container keeps it,
    the codec's own where it has one fixed (VP8's BT.601), unspecified where neither
    says (MPEG-4 or FFV1 in an AVI), and players go by the picture's size. Asked of
    one small frame written and read back (``_read_back``); ``matrix`` where that
    cannot be done here (a hardware encoder without its hardware)."""
    read = _read_back(codec, muxer, pix_fmt, (64, 64), matrix)
    return matrix if read is None else read.colorspace


def _read_back(codec: str, muxer: str, pix_fmt: str, size: tuple[int, int], matrix: int | None = None):
    """One blank ``pix_fmt`` frame of ``size`` (tagged with ``matrix``) that ``codec``
    coded into a ``muxer`` file in memory, as it reads back; None where it cannot be
    written or read here (a hardware encoder without its hardware)."""
    written = io.BytesIO()
    try:
        with av.open(written, "w", format=muxer) as probe_output:
            stream = probe_output.add_stream(codec, rate=25)
            stream.width, stream.height = size
            stream.pix_fmt = pix_fmt
            if matrix is not None:
                stream.codec_context.colorspace = matrix
            if codec in RATE_PER_FRAME:
                stream.codec_context.bit_rate = av.codec.CodecContext.create(codec, "w").bit_rate
            if codec == "libx265":
                stream.codec_context.options = dict(QUIET_X265)
            frame = av.VideoFrame(*size, pix_fmt)
            for plane in frame.planes:  # PyAV leaves them unset: encoders read them, valgrind flags it
                plane.update(bytes(plane.buffer_size))
            frame.pts = 0
            if matrix is not None:
                frame.colorspace = matrix
            probe_output.mux(stream.encode(frame))
            probe_output.mux(stream.encode())
        written.seek(0)
        with av.open(written) as probe_input:
            return next(probe_input.decode(video=0))
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration):
        return None


def encoded_size(width: int, height: int, pix_fmt: str, codec: str) -> tuple[int, int]:
    """``encodable_size`` for the encoder ``codec``: sides that are no whole number of
    chroma samples (33x25 in 4:2:0) are kept where it codes them, its chroma rounded
    up (VP8, VP9, AV1, FFV1, MPEG-2, MPEG-4, MJPEG), and cropped where it refuses them
    (x264, x265): an FFV1 archive of a 33x25 clip at -s 3 lost a row and a column."""
    size = encodable_size(width, height, pix_fmt)
    if (size[0] >= width and size[1] >= height) or not _codes_odd_sides(codec, pix_fmt):
        return size
    return max(size[0], width), max(size[1], height)


@functools.lru_cache(maxsize=None)
def _codes_odd_sides(codec: str, pix_fmt: str) -> bool:
    """Whether ``codec`` codes ``pix_fmt`` frames whose sides are no whole number of
    chroma samples and they read back at their size: asked of one 33x25 frame (odd,
    and no multiple of 4:1:1's 4), as each encoder's rule is its own; False where that
    cannot be asked here."""
    read = _read_back(codec, "nut", pix_fmt, (33, 25))
    return read is not None and (read.width, read.height) == (33, 25)


# The video encoders named when one asked for is unknown, where this FFmpeg has them.
_COMMON_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "mpeg4", "prores_ks", "ffv1",
                    "h264_nvenc", "hevc_nvenc")


# The containers named in a refusal: those of the list the command takes that hold the usual codecs.
_OFFERED = tuple(f".{container}" for container in COMMON_CONTAINERS)


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _pixel_format(codec: str, video_in, src, muxer: str | None = None, chosen: bool = False,
                  flags: FlagNames = FlagNames()) -> str:
    """The default output pixel format: 4:2:0, in 10 bits for input deeper than 8 (a
    10-bit source upscaled in 8 bits would band) where ``codec`` can (into a ``muxer``
    output), else in 8. ``chosen``: ``codec`` is the default, not asked for. ``flags``:
    how the command's warning names its options (the drop-in has neither it names)."""
    pix_fmt = _default_format(codec, video_in.codec_context.pix_fmt, muxer, src)
    if chosen and codec == "libx264" and depth(pix_fmt) > 8 and video_in.codec_context.name != "h264":
        source = video_in.codec_context.name
        # A phone's 10-bit HEVC plays where it was shot; H.264's High 10 plays in few
        # players (no hardware decoder, browser or Apple player), unlike its 8-bit form.
        kept = (f"{flags.named('--codec libx265', 'codec=' + repr('libx265'))} keeps its 10 bits in a form they play, "
                if "libx265" in av.codecs_available else "")
        log.warning("%s is %d-bit %s: writing %d-bit H.264 (High 10), which hardware decoders, browsers and "
                    "Apple's players mostly cannot play; %s%s writes 8-bit H.264", src,
                    depth(video_in.codec_context.pix_fmt), SOURCE_NAMES.get(source, source.upper()),
                    depth(pix_fmt), kept, flags.named("--pix-fmt yuv420p", "pix_fmt='yuv420p'"))
    return pix_fmt


# How the warning above names a video's codec.
SOURCE_NAMES = {"hevc": "HEVC", "vp9": "VP9", "av1": "AV1", "libdav1d": "AV1", "prores": "ProRes"}


def _default_format(codec: str, source: str | None, muxer: str | None, src=None) -> str:
    """``_pixel_format`` for input of pixel format ``source``; its warnings only with ``src``."""
    bits = depth(source) if source else 8
    takes = _formats(codec, muxer)
    plain = _taken(DEFAULT_PIX_FMT, takes)
    if takes and plain not in takes and deeper_format(DEFAULT_PIX_FMT, takes) not in takes:
        nearest = _nearest_format(takes, bits)  # ProRes, PNG, QuickTime RLE: no 4:2:0 at all
        if bits > depth(nearest) and src is not None:  # HuffYUV, x264's RGB: said as for those with 4:2:0
            log.warning("%s has %d-bit samples, which %s cannot encode: writing %d-bit %s", src, bits, codec,
                        depth(nearest), nearest)
        return nearest
    if bits <= 8:
        return plain
    deeper = deeper_format(DEFAULT_PIX_FMT, takes) or (_taken("yuv420p10le", takes) if plain != DEFAULT_PIX_FMT
                                                         else None)
    if deeper is None or deeper not in takes:
        cannot = "cannot encode" if takes else "does not say it can encode"  # FFmpeg lists nothing for some
        if src is not None:
            log.warning("%s has %d-bit samples, which %s %s: writing 8-bit %s", src, bits, codec, cannot,
                        plain)
        return plain
    return deeper


# The formats an encoder without 4:2:0 is given, best first, as FFmpeg's choice goes:
# more chroma before RGB, and the input's depth where the encoder has it.
_NEAREST_8 = ("yuv422p", "uyvy422", "yuyv422", "yuv444p", "yuvj422p", "yuvj444p", "gbrp", "rgb24", "bgr24", "rgb0",
              "bgr0", "rgba", "bgra", "argb", "pal8")  # a palette of the frame's own, not GIF's fixed rgb8
_NEAREST_DEEP = ("yuv422p10le", "yuv444p10le", "gbrp10le", "rgb48le", "rgb48be", "yuv422p12le", "yuv444p12le",
                 "gbrpf32le")  # OpenEXR's colour, which it lists after its gray


def _nearest_format(takes: list[str], bits: int) -> str:
    """The format of ``takes`` (an encoder's list, without yuv420p) closest to a
    ``bits``-deep 4:2:0 picture, else the encoder's first."""
    order = _NEAREST_8 + _NEAREST_DEEP if bits <= 8 else _NEAREST_DEEP + _NEAREST_8
    return next((f for f in order if f in takes), takes[0])


def _taken(pix_fmt: str, takes: list[str]) -> str:
    """``pix_fmt``, or its semi-planar form (nv12 for yuv420p) where an encoder that
    ``takes`` those formats has only that."""
    other = HARDWARE_PIX_FMTS.get(pix_fmt)
    return other if takes and pix_fmt not in takes and other in takes else pix_fmt


def _formats(codec: str, muxer: str | None = None) -> list[str]:
    """The pixel formats ``codec`` lists; for raw video, which lists none, those a
    ``muxer`` output reads back as written; empty when FFmpeg does not say."""
    encoder = av.codec.Codec(codec, "w")
    if encoder.name == "rawvideo" and muxer is not None:
        return list(video_streams.raw_formats(muxer))
    return [f.name for f in encoder.video_formats or ()]
