"""Damage in a video being read: how decoders refuse a damaged packet and how that
is said (with ``--skip-damaged`` to upscale the rest), sound decoders opened to
check their packets, how far the demuxed packets reached (``_Reach``), and the
warnings for an input cut short, read past damage, or whose AVI index lists data
where it is not. Used by ``video``; knows nothing of ncnn.
"""
from __future__ import annotations

import errno
import logging
import mmap
import os
from fractions import Fraction

import av

from . import avi_index, gif
from .errors import FlagNames, InputError, Option, ffmpeg_short_of_memory
from .streams import VideoInput
from .video_codecs import _reason
from .video_packets import PacketPastMemory
from .video_timeline import _length, _origin

log = logging.getLogger("ncnn_sr")


# How decoders refuse a damaged packet: as invalid data, or, for some garbage, with an
# error code of their own that FFmpeg has no name for (the AAC decoder's for bytes of 0xff),
# or a bare -1 (the AAC and H.263 decoders' for some), which is AVERROR(EPERM): PyAV's
# PermissionError, "Operation not permitted", though no file's permission is involved.
DAMAGE = (av.error.InvalidDataError, av.error.UndefinedError, av.error.PermissionError)
# What a decoder refuses a packet with: also EINVAL, for a picture size past FFmpeg's
# limits (a VP9 frame's header damaged to 55305x9355). Not damage wherever it comes
# from: a filter graph's refusal is not the file's.
REFUSED = DAMAGE + (av.error.ArgumentError,)


# What a sound decoder is opened with: checksums checked (AC-3's, E-AC-3's, FLAC's,
# MP3's where it has them) and a packet that fails one refused. Without it AC-3's and
# FLAC's decoders played a packet with 8 bytes overwritten as it came, garbled, and
# FFmpeg's log alone told. Whole AAC, Opus, MP3, AC-3 and FLAC, from the start or
# from a packet midway, decode alike.
STRICT_DECODING = {"err_detect": "crccheck+explode"}


def _opened_strict(decoder) -> bool:
    """Whether ``decoder``, a sound decoder not yet open, opened (STRICT_DECODING)."""
    decoder.options = {**decoder.options, **STRICT_DECODING}
    try:
        decoder.open()
    except av.error.FFmpegError:
        return False
    return True


def _refused_how(e: Exception) -> str | None:
    """How a decoder's refusal ``e`` of a packet (one of REFUSED) is said where FFmpeg's
    words for it mislead; None where they do not."""
    if isinstance(e, av.error.PermissionError) and e.errno == errno.EPERM:
        return "its decoder refused a packet, with FFmpeg's bare error -1"
    if isinstance(e, av.error.ArgumentError):
        return "its decoder refused a packet as invalid"  # FFmpeg's "Invalid argument" names no argument given
    return None


def _refusal(e: Exception) -> str:
    """A decoder's refusal ``e`` of a packet (one of REFUSED), in words."""
    return _refused_how(e) or f"its decoder refused a packet: {_reason(e)}"


def _cannot_decode(src, e: Exception, flags: FlagNames, refused: bool = False) -> InputError | MemoryError:
    """``src`` said as undecodable for ``e``; ``refused``: ``e`` is the decoder's
    refusal of a packet, one of REFUSED. The host out of memory (FFmpeg's ENOMEM, or
    its EAGAIN under a cap) is said as that, naming the decoding."""
    if isinstance(e, PacketPastMemory):  # what --skip-damaged skips is decoded, this is not read
        return InputError(f"{src}: cannot read: {e.strerror}")
    # After it: its ENOMEM asked for more than all the memory there is, not for what was short.
    if (short := ffmpeg_short_of_memory(f"FFmpeg cannot decode {src}", e)) is not None:
        return short
    if not (refused or isinstance(e, DAMAGE)):
        return InputError(f"{src}: cannot decode: {_reason(e)}")
    reason = _refused_how(e) or _reason(e)
    return InputError(f"{src}: cannot decode: {reason} (a damaged file? ",
                      Option(flag=flags("--skip-damaged"), argument="skip_damaged=True", everywhere=True),
                      " upscales the rest)")


# An input whose packets stop before this share of the duration its container gives
# is reported as maybe truncated: short of it, a stream ending a little early (the
# last frame's duration unknown, say) is no sign of a cut.
TRUNCATED_BELOW = 0.75


class _Reach:
    """How far into the input the demuxed packets went, every stream counted: the
    container's duration runs to the end of its longest stream, be it sound or a
    subtitle cue that outlasts the picture."""

    def __init__(self):
        self.start: Fraction | None = None
        self.end: float | None = None
        self.complete = False  # the demuxer reached the end of the file (a part that ends early stops before)
        self.cut_short: str | None = None  # the kind of stream whose last packet could not be decoded
        # Where the demuxer met damage, skipped with --skip-damaged: (seconds from the
        # start, FFmpeg's words, ``end`` then).
        self.damage: tuple[float, str, float | None] | None = None

    def add(self, packet) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        begins = packet.pts * packet.time_base
        self.start = begins if self.start is None else min(self.start, begins)
        end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        self.end = end if self.end is None else max(self.end, end)

    def origin(self, container) -> Fraction:
        # A cut-off file may not say where it starts: its first packet does.
        return _origin(container) if container.start_time is not None or self.start is None else self.start

    def since_start(self, container) -> float:
        """How far the packets went so far, from the input's start."""
        return 0.0 if self.end is None else self.end - float(self.origin(container))

    def stopped_at_damage(self) -> bool:
        """Whether no packet came past the damage the demuxer met."""
        return self.damage is not None and self.end == self.damage[2]


def _warn_of_damage(container, src, reach: _Reach, flags: FlagNames) -> None:
    at, said, _ = reach.damage
    skipped = flags.named("--skip-damaged", "skip_damaged")
    if not reach.stopped_at_damage():  # FFmpeg found its way on (the next Matroska cluster)
        log.warning("%s: damaged at %.2f s (FFmpeg's demuxer says: %s): what could not be read there is missing "
                    "(%s)", src, at, said, skipped)
        return
    total = _length(container, reach.origin(container))
    of = f" of {float(total):.2f} s" if total is not None and float(total) > at else ""
    log.warning("%s: cannot be read past %.2f s%s (FFmpeg's demuxer says: %s): upscaled up to there (%s)", src, at,
                of, said, skipped)


def _warn_if_truncated(container, src, reach: _Reach) -> None:
    if not reach.complete or reach.end is None or reach.stopped_at_damage():
        return  # a stop at damage is said as such (``_warn_of_damage``)
    start = reach.origin(container)
    reached = reach.end - float(start)
    if reach.cut_short:
        log.warning("%s ends in a %s packet cut short, at %.2f s: it may be truncated", src, reach.cut_short, reached)
        return
    if container.format.name == "gif" and isinstance(src, (str, os.PathLike)):
        # FFmpeg ends a GIF cut right after a frame's control extension, before its
        # image, as at a whole file's end (its blocks' walk tells).
        try:
            # Mapped, not read: a GIF a video is made of may be hundreds of MB.
            with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                cut = gif.cut_short(data)
        except (OSError, ValueError):  # ValueError: an empty file, which cannot be mapped
            cut = None
        if cut:
            log.warning("%s is cut short (%s): it may be truncated", src, cut)
            return
    if container.format.name == "mpegts":
        # MPEG-TS states no length: FFmpeg measures it to the last timestamps at the
        # file's end, a cut one's too (or gives none), so it tells nothing of a cut; and
        # packets with no duration fall a frame short of it, all of a 1-frame clip.
        return
    total = _length(container, start)
    if total is None:
        return  # a file without a duration (a live recording) gives nothing to measure against
    total = float(total)
    # Packets stamped before the start (an AAC encoder's priming, 21 ms before 0) count
    # in Matroska's duration though not in its streams' start: a whole clip of one frame
    # at 24 fps 'ended at 0.04 s of the 0.06 s' its container gave.
    lead = max(0.0, float(start - reach.start)) if reach.start is not None else 0.0
    if reached < TRUNCATED_BELOW * (total - lead):
        # FFmpeg ends the streams of a cut-off file quietly, as if it were whole.
        log.warning("%s ended at %.2f s of the %.2f s its container gives: it may be truncated", src, reached,
                    total)


# What is wrong with an mp4 whose video stops short, its other streams read to the end.
_NOT_PLACED = "the rest is not where its index places it"


# What is wrong with an AVI whose data is not where its index lists it (``_avi_shifted``).
_SHIFTED = "its data is not where its index (idx1) lists it from there on, as where bytes were cut out of the file"


def _avi_listed(path, stream: int) -> int | None:
    """How many chunks with data of stream ``stream`` the .avi file ``path`` lists in
    its index (``avi_index``); None without a whole index: a file cut off has none,
    and is read as far as it goes."""
    index = None if isinstance(path, VideoInput) else avi_index.read(path)
    return None if index is None else index.video_chunks(stream)


def _avi_shifted(path, stream: int, rate: Fraction) -> float | None:
    """Where (s) the data of the .avi file ``path`` stops being where its index lists
    it, as where bytes were cut out of it midway, by the frames of its video stream
    ``stream`` at ``rate`` listed before; None where it is all in place, or the index
    is not whole."""
    index = None if isinstance(path, VideoInput) else avi_index.read(path)
    first = None if index is None else avi_index.first_misplaced(path, index)
    return None if first is None else float(index.video_chunks(stream, first, empty=True) / rate)
