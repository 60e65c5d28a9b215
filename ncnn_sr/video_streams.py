"""What goes along with the upscaled picture from a video's other streams: sound and
subtitles (copied, or re-encoded where the container needs it), attachments,
chapters, and the tags players choose tracks by, less those that describe the old
file; and which codecs a container can hold. Used by ``video``; knows nothing of ncnn.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import av
import numpy as np
from av.subtitles.codeccontext import SubtitleCodecContext

from . import cover_atom
from .errors import one_line
from .video_window import INTERLEAVED_WITHIN, Window

log = logging.getLogger("ncnn_sr")

# How a video's tags are read: one that is not UTF-8 (an old muxer's Latin-1 title)
# with U+FFFD for what is not, as ffprobe shows it. PyAV 18's strict default refused
# the whole video as one FFmpeg cannot read; 19 takes no metadata_errors (every video
# failed with a TypeError) and reads each tag with surrogateescape, whose lone
# surrogates it writes back as the old bytes: no UTF-8 in the output either. Told
# apart here alone, by what PyAV has, not its version number.
_TAG_ERRORS = {"metadata_errors": "replace"} if hasattr(av.container.Container, "metadata_errors") else {}


def _as_ffprobe_shows(text: str) -> str:
    """``text`` with what PyAV 19 read of bytes that are not UTF-8 (surrogateescape's
    lone surrogates) as U+FFFD, what PyAV 18's "replace" made of them: unchanged
    where all was UTF-8."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_tags(tags: dict) -> None:
    """PyAV's dict of ``tags``, changed in place: the container and its streams
    keep theirs, which the run reads at each use."""
    read = [(_as_ffprobe_shows(key), _as_ffprobe_shows(value)) for key, value in tags.items()]
    tags.clear()
    tags.update(read)


def open_reading(file, **kwargs):
    """``av.open(file, **kwargs)`` for reading, its tags and its streams' read as
    ffprobe shows them (``_TAG_ERRORS``); its chapters' are ``chapters_of``'s."""
    container = av.open(file, **kwargs, **_TAG_ERRORS)
    _read_tags(container.metadata)
    for stream in container.streams:
        _read_tags(stream.metadata)
    return container


def chapters_of(container) -> list[dict]:
    """``container.chapters()``, their titles read as ``open_reading`` reads tags:
    PyAV makes the list anew at each call."""
    chapters = container.chapters()
    for chapter in chapters:
        _read_tags(chapter["metadata"])
    return chapters

# How far FFmpeg reads into a file, a second time, to learn the parameters of a
# stream it found none of in its first look (5 MB, 5 s): an MPEG-TS whose sound
# starts 10 s into its packets, say. Bounded: a stream that never comes (a damaged
# file's) costs that read, kept in memory, at each opening of the file.
PROBE_FURTHER = {"probesize": str(64 << 20), "analyzeduration": str(60 * 1_000_000)}


def unprobed(container) -> bool:
    """Whether FFmpeg learnt no parameters of a sound or picture stream of
    ``container`` (a sound's channels or rate, a picture's size) in what it read."""
    for stream in container.streams:
        context = stream.codec_context
        if context is None or stream.disposition & av.stream.Disposition.attached_pic:
            continue
        if stream.type == "audio" and not (context.layout.nb_channels and context.sample_rate):
            return True
        if stream.type == "video" and not context.width:
            return True
    return False


def open_file(name):
    """The file ``name`` opened for reading, read further a second time where FFmpeg's
    first look learnt too little of a stream (``unprobed``): its sound was else
    dropped as a damaged file's. ``name`` may be a file object that can be gone back
    in (standard input redirected from a file), read from its start; a stream (a
    pipe) cannot be opened twice."""
    container = open_reading(name)
    if unprobed(container):
        container.close()
        if not isinstance(name, str):
            name.seek(0)
        container = open_reading(name, options=PROBE_FURTHER)
    return container


@contextlib.contextmanager
def reopened(inp):
    """A second opening of the file ``inp`` was opened from, read as far as it was: by
    its name, or where it was opened from a file object that can be gone back in
    (standard input redirected from a file, ``< in.mkv``), that, from its start, then
    left where ``inp`` read it to, which it reads on from."""
    if inp.file is None:
        with open_reading(inp.name, options=dict(inp.options)) as again:
            yield again
        return
    source = inp.file.file  # PyAV's wrapper's
    at = source.tell()
    source.seek(0)
    try:
        with open_reading(source, options=dict(inp.options)) as again:
            yield again
    finally:
        source.seek(at)


# FFmpeg's muxers of QuickTime's file format (mp4, mov, m4v, 3gp).
MOV_FAMILY = frozenset({"mp4", "mov", "ipod", "3gp", "3g2"})

# The muxers that write chapters; the others leave them out without a word.
_CHAPTERED = frozenset({"matroska", "webm", "mp4", "mov", "ipod", "3gp", "3g2", "asf"})

# Re-encoded sound runs on sample by sample; only a jump ahead in its source's times
# by more than this (about an encoder's frame: 20 ms of Opus) is a gap to keep.
# Smaller ones are rounding: mkv keeps times to the millisecond. Around a gap, the
# encoder's frame that spans it still moves up to a frame of sound, as in ffmpeg.
RESYNC_AFTER = 0.02

# Muxers that play every sound stream from the picture's start, the time of its first
# sample lost: Ogg counts samples from 0, and an AVI plays each stream from its first
# packet. Sound that starts late is re-encoded there, led by silence.
OFFSET_DROPPING_MUXERS = frozenset({"ogg", "ogv", "avi"})


class _SampleClock:
    """Timestamps for the frames of a re-encoded sound, in samples at ``rate``: the
    first at its source's time, each next where the one before ends, unless the source
    jumps ahead by more than RESYNC_AFTER, a gap in the sound, where it follows the
    source again. A jump back is not followed (the output's time cannot run back): the
    sound runs on, late by the overlap. ``priming``: the samples the encoder leads
    with, where the output plays them (PRIMING_PLAYED): every time is that much
    earlier, so that the silence that leads the sound is that much shorter."""

    def __init__(self, rate: int, priming: int = 0):
        self.rate, self.priming = rate, priming
        self.next: int | None = None

    def _source(self, frame) -> int | None:
        """The sample ``frame`` starts at in its source, less the priming; None where
        it says no time."""
        if frame.pts is None or frame.time_base is None:
            return None
        return round(frame.pts * frame.time_base * self.rate) - self.priming

    def silence_before(self, frame, start: int) -> int:
        """The samples of silence that keep ``frame`` at its time where the output
        times sound by its samples alone: from ``start`` to the first frame; to a
        later one, across a gap stamp() would follow. 0 where it says no time."""
        source = self._source(frame)
        if source is None:
            return 0
        if self.next is None:
            return max(0, source - start)
        return source - self.next if source - self.next > RESYNC_AFTER * self.rate else 0

    def stamp(self, frame) -> None:
        source = self._source(frame)
        if self.next is None:
            self.next = 0 if source is None else source
        elif source is not None and source - self.next > RESYNC_AFTER * self.rate:
            self.next = source
        frame.pts, frame.time_base = self.next, Fraction(1, self.rate)
        self.next += frame.samples


# Muxers that play an encoder's priming, the samples it leads its sound with (1105 of
# MP3's at 48 kHz, 256 of AC3's), which an mp4's edit list, Matroska's shift of every
# stream and Ogg's Opus header cut: an AVI plays each stream from its first packet, so
# re-encoded sound came that much late (23 ms of MP3). Where silence leads the sound
# (it starts late), the silence is that much shorter; else it stays late, less than
# BT.1359 notices (125 ms), as copied AAC (21 ms) and MP3 do, said with -v: cutting
# the priming would damage the sound's first 16 ms (AAC's decoder needs the packet
# before), and ffmpeg -c copy moves the picture a whole frame later instead.
PRIMING_PLAYED = frozenset({"avi"})
# The priming copied sound leads with there, in samples, where it is long enough to
# say (-v): FFmpeg's AAC encoder's (Apple's, 2112, cut to a packet's by the
# mp4's edit list, plays about as long) and LAME's. AC3's 5 ms goes unsaid.
_COPIED_PRIMING = {"aac": 1024, "mp3": 1105}
PRIMING_SAID = Fraction(1, 100)


@functools.cache
def encoder_priming(encoder: str, rate: int, layout: str, sample_format: str, bit_rate: int) -> int:
    """The samples of priming ``encoder`` leads its sound with at these settings, as
    the time before 0 it stamps its first packet with; 0 where it does not open."""
    ctx = av.codec.Codec(encoder, "w").create()
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = rate, layout, sample_format, bit_rate
    ctx.time_base = Fraction(1, rate)
    try:
        ctx.open()
        silence = silent_frame(sample_format, layout, ctx.frame_size or 1024, rate)
        silence.time_base = ctx.time_base
        packets = ctx.encode(silence) + ctx.encode(None)
    except av.error.FFmpegError:
        return 0
    first = next((p for p in packets if p.pts is not None and p.time_base is not None), None)
    return max(0, -round(first.pts * first.time_base * rate)) if first is not None else 0


class EditCut:
    """The copied sound packets to write into an output that plays every packet it is
    given (OFFSET_DROPPING_MUXERS: an AVI, Ogg), by stream: not those an mp4's edit
    list cuts (which FFmpeg flags discarded: sound before the picture's start, 0.3 s
    of it played and the rest came that much late), but the last of them before the
    rest, for the decoder to start from (AAC's overlap, MP3's bit reservoir), which
    plays as the priming does, a packet late (21 ms of AAC's): its first packet after
    the cut came out damaged without it. PCM and lossless codecs (FLAC) code each
    packet alone: none goes before them (one of FLAC's is 96 ms)."""

    def __init__(self):
        self.held: dict[int, object] = {}
        self.begun: set[int] = set()

    def passed(self, packet) -> list:
        index = packet.stream.index
        if index in self.begun:
            return [packet]
        if packet.is_discard:
            codec = packet.stream.codec_context.codec
            if not (codec.lossless or codec.name.startswith("pcm_")):
                self.held[index] = packet
            return []
        self.begun.add(index)
        before = self.held.pop(index, None)
        return [packet] if before is None else [before, packet]


# Muxers that time PCM sound by its samples alone, whatever its packets' times (a
# QuickTime file's stts of a tick a sample, an AVI's stream): a pause in it, copied,
# was lost, and the sound after it played early.
_PCM_COUNTING_MUXERS = MOV_FAMILY | {"avi"}
# Linear PCM by its codec's name: signed or float samples of so many bits, whose
# silence is all zero bytes (and unsigned 8-bit, whose silence is 0x80).
_LINEAR_PCM = re.compile(r"pcm_(s|f)(8|16|24|32|64)(le|be)?|pcm_u8")


class _PcmGaps:
    """Silent packets to copy into linear PCM sound ahead of a packet that starts
    after a pause (more than RESYNC_AFTER past where the one before ends), or, with
    ``lead_from`` (seconds), after that time: for an output that times the sound by
    its samples alone. The packets are timed in samples (1/rate)."""

    def __init__(self, stream, lead_from: Fraction | None):
        ctx = stream.codec_context
        bits = 8 if _codec_name(stream) == "pcm_u8" else int(_LINEAR_PCM.fullmatch(_codec_name(stream)).group(2))
        self.rate, self.frame_bytes = ctx.sample_rate, bits // 8 * ctx.layout.nb_channels
        self.silence = b"\x80" if _codec_name(stream) == "pcm_u8" else bytes(bits // 8)
        self.next = None if lead_from is None else round(lead_from * self.rate)

    def fill(self, packet) -> list:
        if packet.pts is None or packet.time_base is None or not packet.size:
            return []
        start = round(packet.pts * packet.time_base * self.rate)
        if self.next is None:
            self.next = start
        fillers = []
        if start - self.next > RESYNC_AFTER * self.rate:
            for begin in range(self.next, start, self.rate):  # a second at a time
                samples = min(self.rate, start - begin)
                filler = av.Packet(self.silence * (samples * self.frame_bytes // len(self.silence)))
                filler.pts = filler.dts = begin
                filler.duration, filler.time_base = samples, Fraction(1, self.rate)
                fillers.append(filler)
            self.next = start
        self.next += packet.size // self.frame_bytes
        return fillers


def pcm_gaps(muxer: str, stream, lead_from: Fraction | None) -> _PcmGaps | None:
    """What fills the pauses of ``stream``, copied into a ``muxer`` output, where that
    times it by its samples alone and it is linear PCM; else None."""
    if muxer not in _PCM_COUNTING_MUXERS or not _LINEAR_PCM.fullmatch(_codec_name(stream)):
        return None
    return _PcmGaps(stream, lead_from)


@dataclass(frozen=True)
class SideOutput:
    """Where an input audio or subtitle stream goes: ``stream`` of the output, its
    packets copied as they are; or with a ``resampler`` decoded, converted to the
    sample format, layout and rate the encoder of ``stream`` takes, timed by ``clock``
    and re-encoded; or, subtitles with ``text``, decoded and each cue re-encoded in
    the text format of ``stream`` (``encoded_cue``). Copied PCM sound has ``gaps``
    where the output times it by its samples alone; copied sound is ``timed`` (see
    ``timed_by_samples``) where the output needs its last packet's duration."""

    stream: object
    resampler: av.AudioResampler | None = None
    clock: _SampleClock | None = None
    text: bool = False
    gaps: _PcmGaps | None = None
    timed: bool = False


def timed_by_samples(packet, samples: int | None):
    """``packet`` of copied sound, read without a duration (a Matroska's ALAC, which
    FFmpeg has no parser to time; its AAC stored after the video), given the length of
    the ``samples`` it decodes to (None: not known, a damaged packet), in 1/rate
    ticks: an mp4's muxer times each sample by the next one's start, the last by its
    packet's duration, and one of 0 fell past the edit list's end, where readers leave
    it out (77 ms of ALAC's, 21 ms of AAC's)."""
    if packet.duration or packet.pts is None or packet.time_base is None or not packet.size:
        return packet
    rate = packet.stream.codec_context.sample_rate
    if not samples or not rate:
        return packet
    tick = Fraction(1, rate)
    pts, dts = packet.pts, packet.dts
    packet.pts = round(pts * packet.time_base / tick)
    packet.dts = None if dts is None else round(dts * packet.time_base / tick)
    packet.time_base, packet.duration = tick, samples
    return packet


def sample_rate_for(source: int, rates: Iterable[int] | None) -> int:
    """The sample rate to encode sound of ``source`` Hz at, for an encoder that takes
    ``rates`` (None: any): the source's own, else the nearest above it, else the
    highest there is, so that no detail is lost that could be kept."""
    if not rates or source in rates:
        return source
    above = [r for r in rates if r > source]
    return min(above) if above else max(rates)


def _rate_held(muxer: str, encoder: str, source: int) -> int:
    """The sample rate to re-encode sound of ``source`` Hz at with ``encoder``, as
    ``sample_rate_for`` chooses among those a ``muxer`` output holds it at (FLV holds
    MP3 at 11.025 kHz and up only)."""
    rates = av.codec.Codec(encoder, "w").audio_rates
    rate = sample_rate_for(source, rates)
    if not rates or takes_encoded(muxer, encoder, rate=rate):
        return rate
    held = [r for r in rates if takes_encoded(muxer, encoder, rate=r)]
    return sample_rate_for(source, held) if held else rate


# Muxers that list no codecs of their own: FFmpeg answers "can it hold this?" for them
# only for their default codecs (an MPEG-TS, it says, holds MPEG-2 video but not
# H.264), so what they hold is listed here, by muxer; they refuse, or write unplayable,
# anything else. (AV1, which an MPEG-TS muxer writes, FFmpeg reads back from it as a
# data stream, and so this tool: it is left out.)
_MPEG_PS = frozenset({"mpeg1video", "mpeg2video", "h264", "mp2", "mp3", "ac3", "dts", "pcm_s16be", "dvd_subtitle"})
_HOLDS = {
    "mpegts": frozenset({"h264", "hevc", "vvc", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "dirac", "cavs",
                         "aac", "aac_latm", "mp2", "mp3", "ac3", "eac3", "dts", "truehd", "opus", "dvb_subtitle",
                         "dvb_teletext", "hdmv_pgs_subtitle"}),
    "mpeg": _MPEG_PS, "vob": _MPEG_PS, "svcd": _MPEG_PS, "dvd": _MPEG_PS,
    "ogg": frozenset({"theora", "vp8", "vorbis", "opus", "flac", "speex"}),
    "ogv": frozenset({"theora", "vp8", "vorbis", "opus", "flac", "speex"}),
}


# Video an MPEG-TS written as a Blu-ray's .m2ts (192-byte packets, HDMV's stream types)
# holds, by FFmpeg's word, and FFmpeg reads back from it as a data stream.
M2TS_UNREAD = frozenset({"dirac"})


# Video that FFmpeg's muxers take, then write without its frame times: H.264 in an
# MPEG program stream (.mpg, .vob) keeps a time on one frame in several (a variable
# rate is lost; an FFmpeg reader guesses the rest), in ASF (.wmv) its times read back
# out of order and doubled, with or without B-frames. Their own codecs keep them.
_LOSES_TIMES = {muxer: frozenset({"h264"}) for muxer in ("mpeg", "vob", "svcd", "dvd", "asf")}


def loses_times(muxer: str, codec: str) -> bool:
    """Whether ``muxer`` writes ``codec`` (its canonical name) video without the
    frame times (``holds`` may still say it holds it)."""
    return codec in _LOSES_TIMES.get(muxer, ())


# The encoder to name for a muxer that takes no H.264, or loses its times: its own
# kind of video, which keeps them.
OWN_VIDEO = {"mpeg": "mpeg2video", "vob": "mpeg2video", "svcd": "mpeg2video", "dvd": "mpeg2video", "asf": "wmv2",
             "ogg": "libvpx", "ogv": "libvpx"}


# Sound encoders to re-encode with where FFmpeg's default for the muxer will not do: a
# .3gp's is AMR-NB, telephone speech, whose encoder opens only for 8 kHz mono (any
# other sound failed the whole video); a 3GP player plays AAC, as an mp4's does.
_SOUND_ENCODER = {"3gp": "aac", "3g2": "aac"}


def sound_encoder(out) -> str | None:
    """The encoder for sound that the output container ``out`` cannot hold as it is,
    None where it takes no sound."""
    target = _SOUND_ENCODER.get(out.format.name, out.default_audio_codec)
    return None if target in (None, "none") else target


# The encoders that make sound of a codec again, for sound re-encoded only to keep its
# time (a late start, led by silence): it stays what it was where the container takes
# the encoder's, AC3 with its surround (the container's own encoder, an AVI's MP3,
# takes two channels at most).
_OWN_ENCODERS = {"aac": "aac", "ac3": "ac3", "eac3": "eac3", "mp2": "mp2", "mp3": "libmp3lame", "opus": "libopus",
                 "flac": "flac"}


def _own_encoder(muxer: str, codec: str) -> str | None:
    """The encoder of ``codec`` where a ``muxer`` output holds what it makes; else None."""
    encoder = _OWN_ENCODERS.get(codec)
    try:
        return encoder if encoder is not None and takes_encoded(muxer, encoder) else None
    except (av.error.FFmpegError, ValueError):  # an encoder this FFmpeg lacks
        return None


def holds(muxer: str, codec: str) -> bool:
    """Whether FFmpeg's ``muxer`` (a format name: "mp4", "matroska") lists ``codec``
    (its canonical name) among those it holds. Some it lists, it then refuses to
    write: ``takes`` and ``takes_encoded`` ask it."""
    listed = _HOLDS.get(muxer)
    return codec in listed if listed is not None else codec in _listed(muxer)


@functools.cache
def _listed(muxer: str) -> frozenset:
    with av.open(io.BytesIO(), "w", format=muxer) as probe_output:
        names = frozenset(probe_output.supported_codecs)
    # FFmpeg lists its encoders and decoders by their own names, which for some codecs
    # are not the codec's (flv for flv1, msmpeg4 for msmpeg4v3): asked by the codec's
    # name, a .flv held no flv1 and a .wmv no msmpeg4v3, their own default video.
    return names | {canonical for name in names if (canonical := _canonical_name(name))}


def _canonical_name(name: str) -> str | None:
    for mode in ("r", "w"):
        try:
            return av.codec.Codec(name, mode).canonical_name
        except (av.error.FFmpegError, ValueError):
            pass
    return None


def muxer_for(path: Path) -> str | None:
    """The muxer FFmpeg writes a file of ``path``'s name with; None if its name says none."""
    named = io.BytesIO()
    named.name = path.name  # PyAV hands FFmpeg the name, which it guesses the format from
    try:
        with av.open(named, "w") as probe_output:
            return probe_output.format.name
    except ValueError:
        return None


# How a muxer refuses a stream when it writes the file's header, past FFmpeg's "can
# this format hold that codec?", which says yes to them: EINVAL (.mov takes VP9, AV1,
# Opus and FLAC only in an .mp4; .flv no MPEG-4 video), ENOSYS (.flv, PCM sound) or
# "patches welcome" (.mov, VP8). Other errors there come from a stream without the data
# a real one has (an H.264 stream's extradata, say): those are left to the real file.
_REFUSALS = (av.error.ArgumentError, av.error.NotImplementedError, av.error.PatchWelcomeError)


def _refused(muxer: str, add: Callable) -> bool:
    """Whether ``muxer`` refuses to write a header for the stream ``add(container)``
    adds to a container of its format."""
    probe_output = av.open(io.BytesIO(), "w", format=muxer)
    try:
        add(probe_output)
        probe_output.start_encoding()
    except _REFUSALS:
        return True
    except av.error.FFmpegError:
        return False
    except ValueError:  # PyAV's: FFmpeg says the format does not hold the codec
        return True
    finally:
        try:
            probe_output.close()
        except av.error.FFmpegError:
            pass
    return False


def _codec_name(stream) -> str:
    """The codec of ``stream``, by its own name, not its decoder's."""
    return getattr(stream.codec_context.codec, "canonical_name", stream.codec_context.name)


def takes(out, stream) -> bool:
    """Whether the output container ``out`` can hold the input ``stream`` as it is."""
    codec = _codec_name(stream)
    muxer = out.format.name
    return (holds(muxer, codec) and not _mishandled(muxer, stream)
            and not _refused(muxer, lambda probe: _copied(probe, stream)))


# Sound an .mp4 holds that common players do not play from it: browsers and QuickTime
# refuse Vorbis there, and Apple's players PCM, which FFmpeg writes in an .mp4 since
# version 8 (a .mov keeps PCM: QuickTime's own). It is re-encoded to the .mp4's AAC.
# Vorbis in an .avi has a tag FFmpeg made up, which no other player knows, and FFmpeg
# read its copy back mistimed (its second packet at 0.47 s): re-encoded to MP3.
def _unplayed(muxer: str, codec: str) -> bool:
    return (muxer == "mp4" and (codec == "vorbis" or codec.startswith("pcm_"))
            or muxer == "avi" and codec == "vorbis")


# The readers whose AAC carries its header on each packet (ADTS): in any other
# container AAC without its header (AudioSpecificConfig: an mp4's esds, a Matroska
# CodecPrivate) is damaged there.
_ADTS_READERS = frozenset({"mpegts", "mpeg", "aac", "hls"})


def _headerless(inp, codec: str, stream) -> bool:
    """Whether ``stream`` of ``inp`` is AAC without its header: FFmpeg's Matroska
    muxer refuses a copy of it (EINVAL, which was blamed on the output) and its mp4
    muxer writes it on without one. Its decoder takes it for AAC-LC of the stated
    rate and channels, as ffmpeg does."""
    return (codec == "aac" and not stream.codec_context.extradata
            and not set(inp.format.name.split(",")) & _ADTS_READERS)


# FFmpeg's FLV muxer writes sound of other than one or two named channels with its
# codec's FourCC, which only these have (Opus and FLAC with their header too): for
# any other codec it aborts the process, where no error can be caught.
_FLV_FOURCC = frozenset({"aac", "mp3", "opus", "flac", "ac3", "eac3"})
# FFmpeg's FLV reader lists sound tracks in the order their first tags come, and its
# muxer writes a tag ahead of the sound for each track after the first (enhanced FLV's
# multitrack) and for a first one of these codecs, but none for a first of MP3 or PCM:
# that track was read back after the others, which players then took as the first. It
# is re-encoded to AAC, which old players play in an FLV as its first track too.
_FLV_HEADED = frozenset({"aac", "opus", "flac", "ac3", "eac3"})
_FLV_LEAD_ENCODER = "aac"
# The rates FLV's flags state for its own codecs: the muxer wrote PCM at 8 or 16 kHz
# with the flag readers take for 5.5 kHz, and G.711 at any rate as 8 kHz, so that it
# played at another speed.
_FLV_PCM_RATES = (5512, 11025, 22050, 44100)
_FLV_RATES = {"pcm_u8": _FLV_PCM_RATES, "pcm_s16le": _FLV_PCM_RATES, "pcm_s16be": _FLV_PCM_RATES,
              "adpcm_swf": _FLV_PCM_RATES, "pcm_mulaw": (8000,), "pcm_alaw": (8000,)}


def _mishandled(muxer: str, stream) -> bool:
    """Whether FFmpeg's ``muxer`` would abort the process on a copy of ``stream``, or
    write it to play at another speed."""
    if muxer != "flv" or stream.type != "audio":
        return False
    codec, ctx = _codec_name(stream), stream.codec_context
    if codec in _FLV_FOURCC:
        return codec in ("opus", "flac") and not ctx.extradata
    rates = _FLV_RATES.get(codec)
    return (_ordered(ctx.layout).name not in ("mono", "stereo")
            or rates is not None and ctx.sample_rate not in rates)


def _copied(out, stream):
    """A stream of ``out`` to copy the packets of the input ``stream`` into."""
    copy = out.add_stream_from_template(stream)
    if stream.type == "audio":
        # An mp4's muxer fails on unnamed channels (an AVI's or Matroska's PCM
        # sound) only when it writes its trailer, at the very end.
        copy.layout = _ordered(stream.codec_context.layout)
    return copy


def _frame_length(inp, stream, reopen: bool, ahead: Callable[[], Iterable] | None = None) -> int | None:
    """The samples in a frame of the sound ``stream``, for an AVI to time its copy by,
    a chunk each, where FFmpeg read none (FLAC, E-AC3, a Matroska's AAC stored after
    its video): its muxer timed it by the sample instead, and wrote an empty chunk for
    each sample a packet held (48000 a second: a 20 s clip's AAC made a 23 MB file,
    most of it index). Its header states it (FLAC's, AAC's: _stated_frame_length),
    or E-AC3's first packet, among ``ahead()``, where ``inp`` is a pipe; else it is
    what the first packets decode to, read in a second opening of ``inp`` (where
    ``reopen``). 0 where none is needed (FFmpeg read it, or PCM, timed by its bytes);
    None where it cannot be known: the input cannot be read again (a pipe)."""
    if stream.codec_context.frame_size or _codec_name(stream).startswith("pcm_"):
        return 0
    stated = _stated_frame_length(stream, None if reopen else ahead)
    if stated or not reopen:
        return stated
    try:
        with reopened(inp) as again:
            lengths = [frame.samples for frame in itertools.islice(again.decode(again.streams[stream.index]), 8)]
    except (av.error.FFmpegError, OSError):
        return 0  # timed by the sample, as before
    # The most common: FLAC's last block is shorter.
    return collections.Counter(lengths).most_common(1)[0][0] if lengths else 0


def _stated_frame_length(stream, ahead: Callable[[], Iterable] | None) -> int | None:
    """The samples in a frame of the sound ``stream`` as its header states them (its
    codec's extradata: FLAC's STREAMINFO, AAC's AudioSpecificConfig), or with
    ``ahead``, the packets read ahead of the run, as its first packet's do (AC-3's
    and E-AC3's syncframes); None where they do not, or no packet of it came."""
    name, ctx = _codec_name(stream), stream.codec_context
    if name == "flac":
        return _flac_block_size(ctx.extradata)
    if name == "aac":
        return _aac_frame_length(ctx.extradata, ctx.sample_rate)
    if name in ("ac3", "eac3") and ahead is not None:
        first = next((packet for packet in itertools.islice(ahead(), STILL_LOOK)
                      if packet.stream.index == stream.index and packet.size), None)
        return _ac3_frame_length(bytes(first)) if first is not None else None
    return None


def _ac3_frame_length(data: bytes) -> int | None:
    """The samples a packet of AC-3 or E-AC3 ``data`` holds, as its syncframes'
    headers state (ATSC A/52): an AC-3 syncframe holds 6 blocks of 256 samples; an
    E-AC3 one 1, 2, 3 or 6 (its numblkscod), and a packet may hold several, counted
    for its first independent substream (the others play at the same time)."""
    samples, at = 0, 0
    while at + 6 <= len(data) and data[at:at + 2] == b"\x0b\x77":
        bsid = data[at + 5] >> 3
        if bsid <= 10:  # AC-3's, one a packet
            return 1536
        if bsid > 16:
            return None
        kind, substream = data[at + 2] >> 6, (data[at + 2] >> 3) & 7
        if kind != 1 and substream == 0:  # not a dependent substream, nor another program
            samples += 256 * (6 if data[at + 4] >> 6 == 3 else (1, 2, 3, 6)[(data[at + 4] >> 4) & 3])
        at += ((data[at + 2] & 7) << 8 | data[at + 3]) * 2 + 2  # frmsiz: its 16-bit words, less one
    return samples or None


# The sampling rates AAC's AudioSpecificConfig indexes (ISO/IEC 14496-3, 1.6.3.4).
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# Its object types whose GASpecificConfig states 1024 samples a frame, or 960
# (frameLengthFlag): AAC Main, LC, SSR, LTP, Scalable, and the ER forms of LC, LTP
# and Scalable (ER AAC LD's are 512 or 480).
_AAC_OF_1024 = frozenset({1, 2, 3, 4, 6, 17, 19, 20})


def _aac_frame_length(config: bytes | None, rate: int) -> int | None:
    """The samples at ``rate``, the stream's, in a frame of AAC whose
    AudioSpecificConfig is ``config``: 1024 (or 960) of its core's rate, twice as many
    where SBR (HE-AAC) doubles the rate the stream states. None where it does not say."""
    if not config or not rate:
        return None
    bits, at = "".join(f"{byte:08b}" for byte in config), 0

    def take(n: int) -> int:
        nonlocal at
        at += n
        return int(bits[at - n:at].ljust(n, "0"), 2)

    def kind() -> int:
        first = take(5)
        return 32 + take(6) if first == 31 else first

    def sampling() -> int:
        index = take(4)
        return take(24) if index == 15 else _AAC_RATES[index] if index < len(_AAC_RATES) else 0

    object_type, core = kind(), sampling()
    take(4)  # channelConfiguration
    if object_type in (5, 29):  # SBR (and PS) stated first: the rate it doubles to, then the core's type
        sampling()
        object_type = kind()
    frame = 960 if take(1) else 1024
    if object_type not in _AAC_OF_1024 or not core or at > len(bits) or frame * rate % core:
        return None
    return frame * rate // core


def _flac_block_size(header: bytes | None) -> int | None:
    """The samples in every block of FLAC whose ``header`` (its STREAMINFO, alone or
    after the "fLaC" marker and the block's own header, as FFmpeg keeps it) states
    them: its least block size (the last block's aside) and its most, the same."""
    if header and header[:4] == b"fLaC":
        header = header[8:]
    if not header or len(header) < 34:
        return None
    least, most = int.from_bytes(header[0:2], "big"), int.from_bytes(header[2:4], "big")
    return most if least == most and most >= 16 else None  # FLAC's blocks hold 16 samples at least


def _time_by_frames(copy, length: int) -> None:
    """Have an AVI time the copied sound ``copy`` by its frames of ``length`` samples
    (_frame_length). PyAV sets that only as an option of a codec context it opens (a
    decoder, never used)."""
    try:
        copy.codec_context.options = {"frame_size": str(length)}
        copy.codec_context.open()
    except av.error.FFmpegError:
        pass  # timed by the sample, as before


def takes_encoded(muxer: str, encoder: str, **settings) -> bool:
    """Whether a ``muxer`` output can hold what ``encoder`` makes with ``settings``
    (a sound's ``rate``, say)."""
    if not holds(muxer, av.codec.Codec(encoder, "w").canonical_name):
        return False

    def add(probe_output) -> None:
        # A stream made from a template is written without opening its encoder (which
        # would print its banner): the template comes from a container never written.
        with av.open(io.BytesIO(), "w", format=muxer) as unwritten:
            probe_output.add_stream_from_template(unwritten.add_stream(encoder, **settings))

    return not _refused(muxer, add)


# The uncompressed formats asked of a muxer for raw video, 4:2:0 first, then 4:2:2
# (QuickTime's uncompressed YUV is packed 4:2:2), then 4:4:4, RGB, and deeper ones.
_RAW_CANDIDATES = ("yuv420p", "uyvy422", "yuyv422", "yuv422p", "nv12", "yuv444p", "rgb24", "bgr24", "rgba", "bgra",
                   "argb", "abgr", "gray", "yuv420p10le", "yuv422p10le", "yuv444p10le", "y210le", "rgb48be",
                   "rgb48le", "gray16be", "gray16le")


@functools.cache
def raw_formats(muxer: str) -> tuple[str, ...]:
    """The pixel formats raw video is read back in, unchanged, from a ``muxer``
    output. Raw video carries no header of its own, only the container's tag for its
    layout, which some muxers lack for a format and write one a reader takes for
    another: a .mov's yuv420p could not be decoded, an .avi's rgb24 read as bgr24."""
    return tuple(fmt for fmt in _RAW_CANDIDATES if _raw_round_trip(muxer, fmt))


@contextlib.contextmanager
def _read_back(muxer: str, write: Callable):
    """A tiny ``muxer`` file that ``write(output)`` fills, opened again to read: how
    FFmpeg is asked what one of its muxers keeps."""
    written = io.BytesIO()
    with av.open(written, "w", format=muxer) as output:
        write(output)
    written.seek(0)
    with av.open(written) as probe_input:
        yield probe_input


def silent_frame(sample_format: str, layout: str, samples: int, rate: int, pts: int = 0):
    """``samples`` of silence at ``rate``, starting at sample ``pts``."""
    silence = av.AudioFrame(format=sample_format, layout=layout, samples=samples)
    for plane in silence.planes:
        plane.update(bytes(plane.buffer_size))
    silence.sample_rate, silence.pts = rate, pts
    return silence


def _mux_silence(output, stream, sample_format: str, samples: int) -> None:
    """One frame of mono silence through the sound ``stream`` of ``output``."""
    output.mux(stream.encode(silent_frame(sample_format, "mono", samples, stream.rate)))
    output.mux(stream.encode())


def _raw_round_trip(muxer: str, pix_fmt: str) -> bool:
    size = 8
    sent = av.VideoFrame.from_ndarray(np.arange(size * size * 3, dtype=np.uint8).reshape(size, size, 3),
                                      format="rgb24").reformat(format=pix_fmt)

    def write(output) -> None:
        stream = output.add_stream("rawvideo", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = pix_fmt
        sent.pts = 0
        output.mux(stream.encode(sent))
        output.mux(stream.encode())
    try:
        with _read_back(muxer, write) as probe_input:
            back = next(probe_input.decode(video=0))
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration):
        return False
    return back.format.name == pix_fmt and np.array_equal(back.to_ndarray(format="rgb24"),
                                                          sent.to_ndarray(format="rgb24"))


# Sound this much early against the picture is noticed (ITU-R BT.1359 puts the
# threshold at 45 ms): less late a start is not worth re-encoding a copy for (AC3's
# surround made MP3's stereo, for 30 ms).
NOTICED_EARLY = Fraction(45, 1000)


def _note_priming(late_by: dict[tuple[str, int], list[int]], name: str, priming: Fraction, stream,
                  sound_from: Fraction) -> None:
    """Add the sound ``stream``, going out as codec ``name``, to ``late_by`` where the
    ``priming`` (s) its output plays first puts it PRIMING_SAID or more late against
    the picture, which starts at ``sound_from``: less what it starts late by, which
    is lost there (copied) or silence short of the priming (re-encoded). An AVI holds
    no edit list or initial padding to cut the priming by, and moves the picture only
    by whole frames; cutting it damages the sound's first 16 ms (AAC's decoder needs
    the packet before), so it stays, and is said."""
    start = Fraction(0) if stream.start_time is None or stream.time_base is None else \
        stream.start_time * stream.time_base
    late = priming - max(Fraction(0), start - sound_from)
    if late >= PRIMING_SAID:
        late_by.setdefault((name, round(1000 * late)), []).append(stream.index)


def _starts_late(stream, sound_from: Fraction) -> Fraction | None:
    """How long after ``sound_from`` (seconds of the input) the sound ``stream``
    starts, where that is more than NOTICED_EARLY; else None."""
    if stream.start_time is None or stream.time_base is None:
        return None
    late = stream.start_time * stream.time_base - sound_from
    return late if late > NOTICED_EARLY else None


def _pauses(inp, stream, reopen: bool, window: Window | None = None) -> bool:
    """Whether the sound ``stream`` pauses (in ``window``, where only a part is
    wanted): a packet of it starts more than RESYNC_AFTER past where those before it
    end. Read in a second opening of the file, so that ``inp`` stays at its start;
    False where it cannot be opened again (a pipe)."""
    if not reopen:
        return False
    # An mp4 or .mov states a pause as the duration of the packet before it, which
    # runs to the next: more than twice a frame (its codec's, else the most common
    # length of its first packets, where its header states none: Opus, FLAC) is not
    # sound but a pause. HE-AAC's packets hold twice the frame its header states.
    # In ticks of the stream's time base: Fractions made for each of a film's
    # 170000 packets took 20 s.
    ctx, base = stream.codec_context, stream.time_base
    if base is None:
        return False
    frame = Fraction(ctx.frame_size, ctx.sample_rate) / base if ctx.frame_size and ctx.sample_rate else None
    # Gaps of whole ticks past these are past RESYNC_AFTER and NOTICED_EARLY.
    resync, noticed = math.floor(Fraction(RESYNC_AFTER) / base), math.floor(NOTICED_EARLY / base)
    # A part's sound from its start to its end: a pause that runs into it too, and its
    # first sound, where none came before, as a late start.
    first = math.floor(window.start / base) if window is not None else None
    last = math.ceil(window.end / base) if window is not None and window.end is not None else math.inf
    end = None
    try:
        with reopened(inp) as again:
            if window is not None and window.start > INTERLEAVED_WITHIN:
                # Landing late is no fault: the sound then seems to start late in the part.
                again.seek(math.floor((window.start - INTERLEAVED_WITHIN) * av.time_base), backward=True)
            timed = ((packet.pts, packet.duration) for packet in again.demux(again.streams[stream.index])
                     if packet.pts is not None and packet.size)
            ahead = list(itertools.islice(timed, 256))
            if frame is None:
                # A Matroska's blocks state none where FFmpeg read no frame size (its
                # sound far behind its video): then the most common step between them.
                lengths = [d for _, d in ahead if d] or [b - a for (a, _), (b, _) in zip(ahead, ahead[1:]) if b > a]
                if not lengths:
                    return False
                frame = collections.Counter(lengths).most_common(1)[0][0]
            twice = 2 * frame
            for start, duration in itertools.chain(ahead, timed):
                duration = duration or frame  # one stated, or a frame's
                if start >= last:
                    return False
                if first is None or start > first:
                    since, allowed = end, resync
                    if first is not None and (end is None or end < first):
                        since, allowed = first, (noticed if end is None else resync)
                    if since is not None and start - since > allowed:
                        return True
                reach = start + (duration if duration <= twice else frame)
                end = reach if end is None else max(end, reach)
    except (av.error.FFmpegError, OSError):
        return False
    return False


def still_item(inp, stream) -> bool:
    """Whether the video ``stream`` of ``inp`` is the still picture of an animated AVIF
    or HEIF, an item FFmpeg gives as a stream of one frame with no duration (a track of
    the mov family, the animation beside it, has one), not a moving picture."""
    return inp.format.name.startswith("mov") and stream.frames == 1 and stream.duration is None


# How many packets into a file the second picture of a JPEG or PNG track is looked
# for: a video's comes within its first frames, as its packets are interleaved.
STILL_LOOK = 256


def still_track(inp, stream, ahead: Callable[[], Iterable] | None = None) -> bool:
    """Whether the video ``stream`` of ``inp`` is cover art kept as a track of one JPEG
    or PNG picture: FFmpeg's Matroska muxer writes an mp4's or an MP3's cover so
    (ffmpeg -i in.mp4 -c copy out.mkv), read back as a video stream like any other,
    not as an attached picture. Told by its codec, and by its second picture, which
    does not come in the file's first packets: read in a second opening of the file,
    or where ``inp`` is a stream, which cannot be opened again, among ``ahead()``, its
    first packets read ahead of its run, which reads them again."""
    # JPEG and PNG alone: a cover of another kind (an mp4's BMP, an MP3's GIF, TIFF or
    # WebP) has neither a Matroska codec ID nor a VFW fourcc (ff_codec_bmp_tags), and
    # the muxer refuses it as a track ("No bmp codec tag found").
    if stream.codec_context is None or _codec_name(stream) not in _COVER_FILES:
        return False
    pictures = 0
    try:
        with contextlib.nullcontext() if ahead is not None else reopened(inp) as again:
            packets = ahead() if ahead is not None else again.demux()
            for packet in itertools.islice(packets, STILL_LOOK):  # all streams': a bounded read
                pictures += packet.stream.index == stream.index and packet.size > 0
    except (av.error.FFmpegError, IndexError):  # a damaged file's end; IndexError: a stream new midway
        pass  # what was read says it
    return pictures == 1


def carry_over(inp, video_in, out, dst: Path, window: Window | None = None,
               one_way: bool = False, reopen: bool = True, sound_from: Fraction = Fraction(0),
               held: list | None = None, ahead: Callable[[], Iterable] | None = None
               ) -> tuple[dict[int, SideOutput], list, list[tuple[str, bytes]]]:
    """Set up in ``out`` what goes along with the upscaled ``video_in``: chapters (of
    the part in ``window``, where only a part is wanted), attachments, cover art, and
    outputs for the input's audio and subtitles, returned by input stream index, with
    the packets of the cover pictures to mux before any other, and the cover pictures
    (codec, bytes) to put in once the file is written (``cover_atom``); the file's
    tags, which may hold a timecode to re-time, are the caller's. What is left out is
    named in a warning, one for streams alike. ``one_way``: ``out`` is written without
    going back (a pipe); ``reopen``: ``inp`` can be opened again (``reopened``): a
    file, or standard input redirected from one, not a pipe. ``sound_from``: the input's time the output's picture starts at,
    where sound that starts later is re-encoded for an output that would play it
    from there (OFFSET_DROPPING_MUXERS). ``held``: of a stream, its first packets,
    read ahead of the run (which reads them again) to tell a cover track by
    (``still_track``), whose picture, and an attached one, is taken from them.
    ``ahead``: of a stream, reads on ahead of the run (held for it too), for the first
    packet of sound whose frames' length it states (``_frame_length``)."""
    held = held or []
    chapters = chapters_of(inp)
    if window is not None:
        chapters = window.chapters(chapters)
    if chapters and out.format.name not in _CHAPTERED:
        log.warning("%s cannot hold chapters: dropping %d (a .mkv output keeps them)", dst.suffix, len(chapters))
    elif chapters:  # in seconds' terms, so --fps moves none of them
        out.set_chapters(chapters)
    pictures = []  # cover art, kept after the sound and subtitles, as an mp4 has it
    for extra in inp.streams.video:
        if extra.index == video_in.index:
            continue
        if extra.disposition & av.stream.Disposition.attached_pic:
            if _is_attached_file(inp, extra) and out.format.name == "matroska":
                _attach_picture(inp, extra, out, reopen, held)
            elif not _is_attached_file(inp, extra) or extra.metadata["filename"] in _COVER_NAMES:
                pictures.append(extra)
            else:  # a picture attached for another use (a logo, say), like any other file
                log.warning("%s cannot hold attachments: dropping stream %d (%s; a .mkv output keeps it)", dst.suffix,
                            extra.index, extra.metadata["filename"])
            continue
        elif still_item(inp, extra):  # an animated AVIF's still: its first frame again, said by none
            continue
        elif (reopen or held) and still_track(inp, extra, None if reopen else lambda: iter(held)):
            pictures.append(extra)
            continue
        elif extra.codec_context is None:  # passed over for a later one that can be decoded
            log.warning("dropping video stream %d: FFmpeg knows no codec for it", extra.index)
        else:
            log.warning("dropping video stream %d: only video stream %d is upscaled", extra.index,
                        video_in.index)
    mapping = {}
    # The sound streams that go along, copied or re-encoded: not those below left out.
    sounds = [stream for stream in inp.streams.audio
              if stream.codec_context is not None and stream.codec_context.layout.nb_channels]
    # What is done to the streams a container cannot hold, by what is said of it: one
    # line for several streams alike (two srt tracks into an .avi), in their words.
    left: dict[tuple[str, str, bool], list[int]] = {}
    # Sound an AVI plays its encoder's priming of (PRIMING_PLAYED), by codec and
    # milliseconds late: one line for streams alike.
    late_by: dict[tuple[str, int], list[int]] = {}
    for stream in list(inp.streams.audio) + list(inp.streams.subtitles):
        if stream.codec_context is None:  # a codec FFmpeg does not know, or a damaged header
            log.warning("dropping %s stream %d: FFmpeg knows no codec for it", stream.type, stream.index)
            continue
        if stream.type == "audio" and stream.codec_context.layout.nb_channels == 0:
            # Neither copied (a muxer refuses it: EINVAL, blamed on the output) nor re-encoded.
            # A file was read further for it (open_file); a stream cannot be read again.
            if reopen:
                log.warning("dropping audio stream %d: its header states no channels, as a damaged file's does",
                            stream.index)
            else:
                log.warning("dropping audio stream %d: no channels stated in what FFmpeg read of it first, as a "
                            "damaged file's header, or sound that starts late in a pipe, which is not read again "
                            "(give it as a file)", stream.index)
            continue
        # Sound by its codec's name, not its decoder's (mp3float for MP3); subtitles by
        # their decoder's, which says srt where the codec's is subrip.
        name = _codec_name(stream) if stream.type == "audio" else stream.codec_context.name
        unplayed = stream.type == "audio" and _unplayed(out.format.name, name)
        headerless = stream.type == "audio" and _headerless(inp, name, stream)
        # A part starts at 0; else an AVI's picture starts at ``sound_from``.
        lead_from = None if out.format.name not in OFFSET_DROPPING_MUXERS else \
            Fraction(0) if window is not None else sound_from
        gaps = pcm_gaps(out.format.name, stream, lead_from) if stream.type == "audio" else None
        late = (_starts_late(stream, sound_from)
                if stream.type == "audio" and out.format.name in OFFSET_DROPPING_MUXERS and gaps is None else None)
        # A pause, copied there, was lost too: the sound after it played early.
        paused = (stream.type == "audio" and out.format.name in OFFSET_DROPPING_MUXERS and gaps is None
                  and late is None and not unplayed and not headerless and takes(out, stream)
                  and _pauses(inp, stream, reopen, window))
        # FFmpeg's FLV muxer takes a sound track after the first only of a codec with an
        # enhanced FLV FourCC: "Unsupported multi-track audio codec" (PCM, say).
        unfourcc = (out.format.name == "flv" and stream.type == "audio" and name not in _FLV_FOURCC
                    and any(o.stream.type == "audio" for o in mapping.values()))
        # The first of more sound tracks in an .flv, which it reads back first only with a tag ahead.
        lead = (out.format.name == "flv" and stream.type == "audio" and len(sounds) > 1 and stream is sounds[0])
        unheaded = lead and name not in _FLV_HEADED
        # Sound an AVI would copy, by the length of its frames (_frame_length); unknown
        # in a pipe (no header states it), it is re-encoded, as an encoder's frames have one.
        framing = (_frame_length(inp, stream, reopen, ahead)
                   if out.format.name == "avi" and stream.type == "audio" and not unplayed and not headerless
                   and late is None and not paused and takes(out, stream) else 0)
        unframed = framing is None
        if not unplayed and not headerless and late is None and not paused and not unfourcc and not unheaded \
                and not unframed and takes(out, stream):
            # An mp4's AAC opens with its encoder's priming, before 0, which an edit list
            # cuts. Matroska cuts it only by a CodecDelay, written from the stream's
            # initial padding, which PyAV cannot set and FFmpeg's mp4 reader leaves at 0:
            # its muxer moves every stream later instead, by the priming (21 ms at 48
            # kHz), which then plays, as with ffmpeg -c copy. The streams stay in step.
            o = _labelled(_copied(out, stream), stream)
            if framing:
                _time_by_frames(o, framing)
            if one_way and name == "aac" and not stream.codec_context.extradata:
                # Matroska written to a pipe needs the stream's header at its start; a
                # file gets it from the first packet, going back for it.
                o.codec_context.extradata = aac_config(stream.codec_context)
            mapping[stream.index] = SideOutput(o, gaps=gaps, timed=stream.type == "audio"
                                               and out.format.name in MOV_FAMILY)
            if stream.type == "audio" and out.format.name in PRIMING_PLAYED:
                priming = Fraction(_COPIED_PRIMING.get(name, 0), stream.codec_context.sample_rate)
                _note_priming(late_by, name, priming, stream, sound_from)
        elif stream.type == "audio" and (target := ((late is not None or paused or unframed)
                                                     and _own_encoder(out.format.name, name))
                                          or sound_encoder(out)):
            if lead and av.codec.Codec(target, "w").canonical_name not in _FLV_HEADED:
                target = _FLV_LEAD_ENCODER
            source_rate = stream.codec_context.sample_rate
            rate = _rate_held(out.format.name, target, source_rate)
            # PyAV's add_stream sets a bitrate of 0, "the encoder's choice", which some
            # refuse (WMA); FFmpeg's own default for the encoder is what ffmpeg uses.
            bit_rate = av.codec.Codec(target, "w").create().bit_rate or 0
            source_layout = _ordered(stream.codec_context.layout)
            layout = _layout_for(target, rate, bit_rate, source_layout)
            o = _labelled(out.add_stream(target, rate=rate, bit_rate=bit_rate), stream)
            o.layout = layout
            ctx = o.codec_context
            _keep_depth(ctx, stream.codec_context)
            resampler = av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=ctx.sample_rate)
            priming = 0 if out.format.name not in PRIMING_PLAYED else \
                encoder_priming(target, ctx.sample_rate, ctx.layout.name, ctx.format.name, ctx.bit_rate or 0)
            mapping[stream.index] = SideOutput(o, resampler, _SampleClock(ctx.sample_rate, priming))
            if late is None:  # else silence leads it, shorter by the priming
                _note_priming(late_by, av.codec.Codec(target, "w").canonical_name,
                              Fraction(priming, ctx.sample_rate), stream, sound_from)
            resampled = f", resampled from {source_rate} to {rate} Hz" if rate != source_rate else ""
            if layout.nb_channels != source_layout.nb_channels:
                resampled += f", downmixed from {source_layout.name} to {layout.name}"
            what = (f"{dst.suffix} cannot hold {name} audio: re-encoding audio", f" to {target}{resampled}", False)
            if late is not None and takes(out, stream) and not unplayed and not headerless:
                what = (f"{dst.suffix} plays sound from the picture's start: re-encoding audio",
                        f", which starts later, to {target}{resampled}, led by silence", False)
            if unheaded and takes(out, stream) and not unplayed and not headerless:
                what = (f"{dst.suffix} reads a first sound track of {name} back after the others: re-encoding audio",
                        f" to {target}{resampled}, which it reads first", False)
            if unfourcc and takes(out, stream):
                what = (f"{dst.suffix} holds {name} audio as its first sound track only: re-encoding audio",
                        f" to {target}{resampled}", False)
            if unframed:
                what = (f"{dst.suffix} would index {name} audio read from a pipe sample by sample, "
                        "its frames' length not stated: re-encoding audio",
                        f" to {target}{resampled} (given as a file, it is copied)", False)
            if paused:
                what = (f"{dst.suffix} times sound by its samples alone: re-encoding audio",
                        f", which pauses, to {target}{resampled}, its pauses filled with silence", False)
            if unplayed:
                what = (f"{dst.suffix} holds {name} audio that common players do not play there: re-encoding audio",
                        f" to {target}{resampled}", True)
            if headerless:
                what = (f"{name} audio without its header (AudioSpecificConfig), as a damaged file has it, "
                        "decoded as AAC-LC: re-encoding audio", f" to {target}{resampled}", False)
            left.setdefault(what, []).append(stream.index)
        elif stream.type == "subtitle" and (target := _text_form(out.format.name, stream)):
            o = _labelled(out.add_stream(target), stream)
            o.codec_context.subtitle_header = stream.codec_context.subtitle_header
            mapping[stream.index] = SideOutput(o, text=True)
            what = (f"{dst.suffix} cannot hold {name} subtitles: converting subtitle", f" to {target}", False)
            left.setdefault(what, []).append(stream.index)
        else:
            kept = out.format.name != "matroska" and (holds("matroska", name) or _text_form("matroska", stream))
            kind = "subtitles" if stream.type == "subtitle" else stream.type
            left.setdefault((f"{dst.suffix} cannot hold {name} {kind}: dropping", "", kept), []).append(stream.index)
    for (before, after, kept), indexes in left.items():
        hint = f" (a .mkv output keeps {'it' if len(indexes) == 1 else 'them'})" if kept else ""
        log.warning("%s %s%s%s", before, _streams(indexes), after, hint)
    for (name, ms), indexes in late_by.items():
        one = len(indexes) == 1
        # Said with -v, not as a warning: 21-25 ms late is under what viewers notice
        # (ITU-R BT.1359: 125 ms late), and every .avi of AAC or MP3 sound has it.
        log.info("%s plays the priming of %s sound: audio %s %s %d ms late against the picture "
                    "(a .mkv or .mp4 output keeps %s in step)", dst.suffix, name, _streams(indexes),
                    "comes" if one else "come", ms, "it" if one else "them")
    _name_lost_flags(inp, mapping, out, dst)
    labelled = ([(video_in.index, s) for s in out.streams.video[:1]]
                + [(index, target.stream) for index, target in mapping.items()])
    _hold_languages(out, dst, labelled)
    _name_lost_titles(out, dst, labelled)
    if one_way and out.format.name in MOV_FAMILY:
        # Fragmented, as a pipe gets it, an MP4 gives each stream a track: the cover's
        # one, without a frame, read back as a video of no codec. A .m4v's or .mov's
        # cover is put in once the file is written, which a pipe is not.
        for picture in pictures:
            log.warning("%s written into a pipe cannot hold cover art: dropping stream %d, a picture attached to "
                        "the file (a .mkv output keeps it)", dst.suffix, picture.index)
        pictures = []
    # The muxers of a .m4v and a .mov write no cover art: it is put in after them.
    boxed = [picture for picture in pictures if out.format.name in cover_atom.MUXERS
             and picture.codec_context is not None and _codec_name(picture) in cover_atom.KINDS]
    covers = [packet for picture in pictures
              if picture not in boxed and (packet := _cover(inp, picture, out, dst, reopen, held)) is not None]
    _attachments(inp, out, dst)
    for stream in inp.streams.data:
        if "timecode" in stream.metadata and "timecode" in video_in.metadata:
            continue  # the video's timecode tag carries it; the muxer makes the track again
        if stream.name == "bin_data" and inp.format.name.startswith("mov") and inp.chapters():
            continue  # an mp4's chapter track, which FFmpeg reads as data: the chapters go along
        kind = stream.name or "of unknown kind"  # a data stream has no codec context, but its codec's name
        log.warning("dropping data stream %d (%s)", stream.index, kind)
    return mapping, covers, [(_codec_name(picture), bytes(_picture(inp, picture, reopen, held)))
                              for picture in boxed]


# The track flags players choose by, and the muxers that write each: FFmpeg's WebM
# muxer leaves out Matroska's commentary and accessibility flags, its mov muxer writes
# the mp4's kind boxes (forced, commentary, captions, descriptions) only in an .mp4, an
# MPEG-TS says a sound track is for the hearing or the visually impaired in its language
# descriptor, and the others have no place for them.
_TRACK_FLAGS = {"default": (av.stream.Disposition.default, MOV_FAMILY | {"matroska", "webm"}),
                "forced": (av.stream.Disposition.forced, frozenset({"matroska", "webm", "mp4"})),
                "commentary": (av.stream.Disposition.comment, frozenset({"matroska", "mp4"})),
                "hearing-impaired": (av.stream.Disposition.hearing_impaired,
                                     frozenset({"matroska", "mp4", "mpegts"})),
                "visual-impaired": (av.stream.Disposition.visual_impaired, frozenset({"matroska", "mp4", "mpegts"}))}


def _name_lost_flags(inp, mapping: dict[int, SideOutput], out, dst: Path) -> None:
    """Warn, in one line, of the track flags of the streams in ``mapping`` that the
    output container ``out`` cannot hold, naming each flag and its streams; not the
    default flags of sound whose first track has one: players take that track without."""
    sounds = [i for i in mapping if inp.streams[i].type == "audio"]
    default = av.stream.Disposition.default
    unsaid = set(sounds) if sounds and inp.streams[sounds[0]].disposition & default else set()
    lost = []
    for flag, (bit, keepers) in _TRACK_FLAGS.items():
        indexes = [i for i in mapping if inp.streams[i].disposition & bit and not (bit == default and i in unsaid)
                   and (out.format.name not in keepers or _one_kind_lost(flag, inp.streams[i], out.format.name))]
        if indexes:
            lost.append(f"{flag} ({_streams(indexes)})")
    if lost:
        log.warning("%s cannot hold the track flags %s: dropping them (a .mkv output keeps them)", dst.suffix,
                    " and ".join(lost))


# ISO 639-2's two codes for the languages that have two, bibliographic and
# terminological: Matroska files mostly name them by the first (fre, ger, chi).
_ISO639_TWINS = dict(pair for b, t in (
    ("alb", "sqi"), ("arm", "hye"), ("baq", "eus"), ("bur", "mya"), ("chi", "zho"), ("cze", "ces"), ("dut", "nld"),
    ("fre", "fra"), ("geo", "kat"), ("ger", "deu"), ("gre", "ell"), ("ice", "isl"), ("mac", "mkd"), ("mao", "mri"),
    ("may", "msa"), ("per", "fas"), ("rum", "ron"), ("slo", "slk"), ("tib", "bod"), ("wel", "cym"))
    for pair in ((b, t), (t, b)))


@functools.cache
def _mov_holds_language(code: str) -> bool:
    """Whether a .mov track tagged with the language ``code`` reads back with it: a
    .mov names languages by the Macintosh's old list, which FFmpeg's muxer matches
    with one of the two codes of some (fra, not fre; ger, not deu) and leaves out
    those not on it. Asked by writing a tiny one."""
    def write(output) -> None:
        stream = output.add_stream("pcm_s16le", rate=8000)
        stream.metadata["language"] = code
        _mux_silence(output, stream, "s16", 8)
    with _read_back("mov", write) as probe_input:
        return probe_input.streams[0].metadata.get("language") == code


def _hold_languages(out, dst: Path, streams: list) -> None:
    """Tag the (input index, output stream) ``streams`` of a .mov ``out`` with the
    code of their language that it holds, and warn, in one line, of the languages it
    holds by neither code (a .mkv or .mp4 holds any); an undetermined one, or a blank
    tag, which names none, loses nothing."""
    if out.format.name != "mov":
        return
    lost = []
    for index, stream in streams:
        key = next((k for k in stream.metadata if k.lower() == "language"), None)
        code = stream.metadata[key].strip().lower() if key else "und"
        if code in ("", "und"):
            continue
        held = next((c for c in (code, _ISO639_TWINS.get(code)) if c and _mov_holds_language(c)), None)
        if held is None:
            lost.append(f"{one_line(code)} (stream {index})")
        else:
            stream.metadata[key] = held
    if lost:
        log.warning("%s holds languages of the Macintosh's old list only: dropping %s (a .mp4 or .mkv output keeps "
                    "them)", dst.suffix, ", ".join(lost))


@functools.cache
def _titles_held(muxer: str) -> tuple[bool, bool]:
    """Whether a ``muxer`` output's title, and a track's, read back: FFmpeg's mov
    muxer writes a track's only in an .mp4 or .mov (not an .m4v or .3gp), and a
    .3gp's own as a 3GPP tag its reader does not read. Asked by writing a tiny one."""
    def write(output) -> None:
        output.metadata["title"] = "t"
        stream = output.add_stream("aac", rate=8000)  # a sound every muxer of the family holds
        stream.metadata["title"] = "t"
        _mux_silence(output, stream, "fltp", 1024)
    with _read_back(muxer, write) as probe_input:
        return "title" in probe_input.metadata, "title" in stream_tags_to_keep(probe_input.streams[0].metadata)


def _titled(metadata) -> bool:
    return any(key.lower() == "title" and value for key, value in metadata.items())


def _name_lost_titles(out, dst: Path, streams: list) -> None:
    """Warn, in one line, of the titles an ``out`` of the mov family cannot hold: the
    file's, and those of the (input index, output stream) ``streams``."""
    if out.format.name not in MOV_FAMILY:
        return
    file_held, track_held = _titles_held(out.format.name)
    lost = ["the file's"] if not file_held and _titled(out.metadata) else []
    untitled = [] if track_held else [index for index, stream in streams if _titled(stream.metadata)]
    if untitled:
        lost.append(f"those of {_streams(untitled)}")
    if lost:
        log.warning("%s cannot hold titles: dropping %s (a .mp4 or .mkv output keeps them)", dst.suffix,
                    " and ".join(lost))


def _one_kind_lost(flag: str, stream, muxer: str) -> bool:
    """Whether ``muxer``, which holds ``flag``, leaves it out for ``stream`` all the
    same: an MPEG-TS's language descriptor gives a sound track one kind, hearing
    impaired before visually impaired, and its subtitles only the first."""
    return (muxer == "mpegts" and flag == "visual-impaired"
            and (stream.type != "audio" or bool(stream.disposition & av.stream.Disposition.hearing_impaired)))


# Muxers whose files keep no stream that was given no packet: FFmpeg's mov muxer
# (mp4, mov, m4v, 3gp) writes no track for it, and an MPEG program stream declares
# its streams only by their packets.
_DROPS_EMPTY = MOV_FAMILY | {"mpeg", "vob", "svcd", "dvd"}


def name_empty(inp, side: dict[int, SideOutput], fed: set[int], out, dst: Path, part: bool = False) -> None:
    """Warn, in one line, of the streams in ``side`` (by input index) whose outputs
    got no packet (their indexes not in ``fed``; ``part``: of the part of the input
    written), where ``out``'s container leaves such a track out."""
    if out.format.name not in _DROPS_EMPTY:
        return
    empty = [index for index, target in side.items() if target.stream.index not in fed]
    if empty:
        kinds = {inp.streams[index].type for index in empty}
        kind = f"{kinds.pop()} " if len(kinds) == 1 else ""
        one = len(empty) == 1
        log.warning("%s cannot hold an empty track: dropping %s%s, which %s no packets%s (a .mkv output keeps %s)",
                    dst.suffix, kind, _streams(empty), "has" if one else "have", " in the part written" * part,
                    "it" if one else "them")


def _streams(indexes: list[int]) -> str:
    """"stream 2", "streams 2 and 3", "streams 2, 3 and 4"."""
    if len(indexes) == 1:
        return f"stream {indexes[0]}"
    return f"streams {', '.join(map(str, indexes[:-1]))} and {indexes[-1]}"


# Tags that describe the file they were read from (its muxer, the statistics mkvmerge
# counts, an mp4's brands) rather than what it holds: copied, they would be wrong.
# "rotate" is gone too: the frames are turned upright; and a WebM's "alpha_mode": they
# are upscaled without their alpha.
_STALE_TAGS = ("encoder", "duration", "bps", "number_of_", "_statistics_", "major_brand", "minor_version",
               "compatible_brands", "rotate", "vendor_id", "alpha_mode")
# The handler names FFmpeg's mp4 muxer writes by default: no track's own name, and
# carried into a Matroska file they would show up as tags.
_DEFAULT_HANDLERS = frozenset({"VideoHandler", "SoundHandler", "SubtitleHandler", "DataHandler"})


def tags_to_keep(metadata) -> dict:
    """What of a file's or a stream's tags (title, language, creation time, timecode)
    still holds for the upscaled copy."""
    return {key: _read_once(key, value) for key, value in metadata.items() if not key.lower().startswith(_STALE_TAGS)
            and not (key.lower() == "handler_name" and value in _DEFAULT_HANDLERS)}


# FFmpeg 9 (PyAV 19, libavformat 63) joins with ";" the values of a tag an mov holds
# twice, FFmpeg 8 kept one of them.
_JOINS_REPEATS = av.library_versions["libavformat"] >= (63,)


def _read_once(key: str, value: str) -> str:
    """The tag ``key`` = ``value`` as it was written where FFmpeg 9 read it twice and
    joined the two with ";": an mov's tag both in its udta and as a QuickTime key
    (-movflags use_metadata_tags), whose upscale's was 'Holiday;Holiday'; and its
    creation time, from its mvhd and its key, which the mov and mp4 muxers cannot parse
    (the output had none), as its first."""
    if not _JOINS_REPEATS or ";" not in value:
        return value
    if key.lower() == "creation_time":
        return value.split(";", 1)[0]
    first, _, second = value.partition(";")
    return first if first == second else value


# Sample formats of no more than 16 bits, which an encoder's default s16 holds whole.
_SHALLOW_FORMATS = frozenset({"u8", "u8p", "s16", "s16p"})


def _keep_depth(ctx, source) -> None:
    """Set the lossless encoder context ``ctx`` (FLAC's) to code the sound that
    ``source`` (a lossless decoder's context: PCM, FLAC) decodes deeper than 16 bits
    in 24 bits, from s32, which holds a 24-bit source's samples whole: FLAC's encoder
    takes s16 first, and 24-bit sound lost its lowest 8 bits. Deeper sources (32-bit
    PCM, float) keep 24 of theirs: 32-bit FLAC is FFmpeg's experimental, which many
    players do not play. Lossy sound (AAC, MP3) stays at 16 bits: its decoder's floats
    hold nothing finer worth the larger file."""
    if not (ctx.codec.lossless and source.codec.lossless) or source.format.name in _SHALLOW_FORMATS \
            or "s32" not in {form.name for form in ctx.codec.audio_formats or ()}:
        return
    ctx.format = "s32"
    ctx.options = {**ctx.options, "bits_per_raw_sample": "24"}


def _layout_for(encoder: str, rate: int, bit_rate: int, layout: av.AudioLayout) -> av.AudioLayout:
    """``layout``, else one of as many channels: its side speakers at the back, then
    the usual one (Opus takes 5.1 with back speakers, not AC3's side ones, which the
    resampler moves there, as ffmpeg does); where ``encoder`` takes fewer channels
    (MP3, MPEG audio and WMA take at most two) stereo, else mono, as ffmpeg downmixes
    for them. PyAV does not list an encoder's layouts, so they are tried."""
    tries = [layout]
    for name in (layout.name.replace("(side)", ""), f"{layout.nb_channels}c"):  # quad(side): quad, before 4.0
        try:
            candidate = av.AudioLayout(name)
        except ValueError:  # no usual layout of that many (9 or more)
            continue
        if candidate.nb_channels == layout.nb_channels and candidate.name not in {t.name for t in tries}:
            tries.append(candidate)
    tries += [av.AudioLayout(name) for name in ("stereo", "mono") if av.AudioLayout(name).nb_channels
              < layout.nb_channels]
    for candidate in tries:
        ctx = av.codec.Codec(encoder, "w").create()
        ctx.sample_rate, ctx.layout, ctx.bit_rate = rate, candidate, bit_rate
        ctx.format = ctx.codec.audio_formats[0] if ctx.codec.audio_formats else ctx.format
        try:
            ctx.open()
        except av.error.FFmpegError:
            continue
        return candidate
    return layout  # none opens: the encoder's own error says why, when it is used


# AAC's sample rates by their index in its header (ISO 14496-3).
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_AAC_OBJECTS = {"Main": 1, "LC": 2, "SSR": 3, "LTP": 4, "HE-AAC": 2, "HE-AACv2": 2}


def aac_config(ctx) -> bytes | None:
    """The AAC stream header (AudioSpecificConfig) of AAC that comes with a header on
    each packet (ADTS: an MPEG-TS's), as those headers state it; None where its
    profile, rate or channels are none an ADTS header states."""
    rate, channels = ctx.sample_rate, ctx.channels
    if ctx.profile in ("HE-AAC", "HE-AACv2"):  # the decoder's rate: twice the coded one
        rate //= 2
    if ctx.profile == "HE-AACv2":  # mono coded, stereo decoded
        channels = 1
    config = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 8: 7}.get(channels)
    if ctx.profile not in _AAC_OBJECTS or rate not in _AAC_RATES or config is None:
        return None
    bits = _AAC_OBJECTS[ctx.profile] << 11 | _AAC_RATES.index(rate) << 7 | config << 3
    return bits.to_bytes(2, "big")


def _ordered(layout: av.AudioLayout) -> av.AudioLayout:
    """``layout``, or where it counts channels without naming them (as a Matroska
    file's PCM sound reads back) the usual layout of that many: mono, stereo, 5.1...
    Some encoders (MP3) and muxers (mp4) take only named ones."""
    if any(channel.name == "NONE" for channel in layout.channels):
        try:
            return av.AudioLayout(f"{layout.nb_channels}c")
        except ValueError:  # no usual layout of that many (9 or more)
            return layout
    return layout


# PyAV encodes subtitles since version 16.1.
_RECODES_SUBTITLES = hasattr(SubtitleCodecContext, "encode_subtitle")


@functools.cache
def _text_encoder(muxer: str) -> str | None:
    """The subtitle encoder whose text a ``muxer`` output holds: its default (ASS for
    Matroska, WebVTT for WebM), else mov_text where it holds that (mp4 and mov, whose
    default is none: ffmpeg writes mov_text there when asked to keep subtitles)."""
    with av.open(io.BytesIO(), "w", format=muxer) as probe_output:
        target = probe_output.default_subtitle_codec
    if target not in (None, "none") and av.codec.Codec(target, "w").text_sub:
        return target
    return "mov_text" if holds(muxer, "mov_text") else None


def _text_form(muxer: str, stream) -> str | None:
    """The subtitle encoder (``_text_encoder``) whose text a ``muxer`` output holds
    that the text subtitles of ``stream`` can be converted to, its decoder opened;
    None for subtitles that are pictures, or a muxer that holds no text."""
    codec = stream.codec_context.codec
    if not getattr(codec, "text_sub", False) or not _RECODES_SUBTITLES:
        return None
    target = _text_encoder(muxer)
    if target is None:
        return None
    try:
        # Opened, the decoder makes the header (the styles) its cues refer to.
        stream.codec_context.open(strict=False)
    except av.error.FFmpegError:
        return None  # subtitles it cannot read go the way of those it cannot convert
    return target


def encoded_cue(cue, packet, stream):
    """The subtitle ``cue`` decoded from ``packet``, encoded for the output ``stream``
    as a packet at the time of ``packet``, lasting as long."""
    encoded = stream.codec_context.encode_subtitle(cue)
    # The encoder times a packet in its own units, which the muxer would misread.
    shown = packet.duration or round(Fraction(cue.end_display_time - cue.start_display_time, 1000)
                                     / packet.time_base)
    encoded.pts, encoded.dts, encoded.duration = packet.pts, packet.dts, shown
    encoded.time_base, encoded.stream = packet.time_base, stream
    return encoded


def stream_tags_to_keep(metadata) -> dict:
    """``tags_to_keep`` of a stream's tags, its title under the key that every muxer
    writes: an mp4's track title reads back as "name", which a muxer takes for no title."""
    tags = tags_to_keep(metadata)
    if "name" in tags and not any(key.lower() == "title" for key in tags):
        tags["title"] = tags.pop("name")
    return tags


def _labelled(stream, source):
    """``stream`` with the tags and disposition (default, forced, commentary...) of the
    input stream ``source``: players choose tracks by them."""
    stream.metadata.update(stream_tags_to_keep(source.metadata))
    stream.disposition = source.disposition
    return stream


def _attachments(inp, out, dst: Path) -> None:
    """Files attached to a Matroska input (the fonts its styled subtitles use, say)
    go along into a Matroska output, whole; other containers cannot hold them."""
    for stream in inp.streams.attachments:
        label = stream.name or "unnamed"
        if out.format.name != "matroska":
            log.warning("%s cannot hold attachments: dropping stream %d (%s; a .mkv output keeps it)", dst.suffix,
                        stream.index, label)
            continue
        out.add_attachment(label, stream.mimetype or "application/octet-stream", bytes(stream.data))


def _is_attached_file(inp, stream) -> bool:
    """Whether ``stream`` is a Matroska attachment: FFmpeg shows the pictures among
    them (a cover.jpg, say) as attached-picture video streams, the other files as
    attachments."""
    return inp.format.name.startswith("matroska") and "filename" in stream.metadata


def _picture(inp, stream, reopen: bool, held: list = ()):
    """The packet of the attached picture ``stream``: the demuxer holds the picture as
    its one packet, which comes first; read apart, so as to leave ``inp`` at its
    start. A stream cannot be opened again, and loses nothing: the pictures come
    before any other packet. Of a cover track (``still_track``), its one picture.
    Where ``inp`` is a stream whose first packets were read ahead (``held``), taken
    from them, a copy: the run reads them again, and the picture's is muxed apart."""
    kept = next((p for p in held if p.stream.index == stream.index and p.size), None)
    if kept is not None:
        return _copy(kept)
    if reopen:
        with reopened(inp) as again:
            packet = next(again.demux(again.streams[stream.index]))
        # Its data outlives ``again``: FFmpeg's demuxers give reference-counted packets,
        # "valid indefinitely" (av_read_frame), which PyAV's Packet holds a reference of.
        # Its stream does not: read after the close, its index was freed memory (valgrind
        # says so; it read 1294730736). ``stream`` is the same one of ``inp``, still open.
        packet.stream = stream
        return packet
    return next(inp.demux(stream))


def _copy(packet):
    """A packet of the same bytes and times as ``packet``, of the same stream."""
    copy = av.Packet(bytes(packet))
    copy.stream = packet.stream
    copy.pts, copy.dts, copy.duration, copy.time_base = packet.pts, packet.dts, packet.duration, packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy


def _attach_picture(inp, stream, out, reopen: bool, held: list) -> None:
    out.add_attachment(stream.metadata["filename"], stream.metadata.get("mimetype") or "application/octet-stream",
                       bytes(_picture(inp, stream, reopen, held)))


# The pictures a Matroska file holds as cover art, attachments named cover.jpg or
# cover.png (its specification's names), which FFmpeg reads back as attached pictures.
_COVER_FILES = {"mjpeg": ("jpg", "image/jpeg"), "png": ("png", "image/png")}
_COVER_NAMES = frozenset(f"cover.{extension}" for extension, _ in _COVER_FILES.values())


def _cover(inp, stream, out, dst: Path, reopen: bool, held: list):
    """Keep the cover picture ``stream`` of ``inp`` (an mp4's, an MP3's, a .mkv's
    cover.jpg) in ``out`` as it is, where it can hold it: a Matroska output as an
    attachment, another as an attached picture stream, whose packet is returned to mux;
    else warn it is dropped."""
    codec = _codec_name(stream) if stream.codec_context is not None else None  # None: one FFmpeg does not know
    muxer = out.format.name
    if muxer == "matroska" and codec in _COVER_FILES:
        extension, mimetype = _COVER_FILES[codec]
        name = "cover" if not any(a.name.startswith("cover.") for a in out.streams.attachments) \
            else f"cover-{stream.index}"
        out.add_attachment(f"{name}.{extension}", mimetype, bytes(_picture(inp, stream, reopen, held)))
        return None
    if muxer != "matroska" and codec is not None and holds(muxer, codec):
        packet = _picture(inp, stream, reopen, held)
        if _holds_picture(muxer, stream, packet):
            packet.stream = out.add_stream_from_template(stream)
            packet.stream.disposition = av.stream.Disposition.attached_pic
            return packet
    # FFmpeg's mov muxers write a cover as the covr atom of the iTunes metadata, which
    # a .mov (QuickTime's own tags, or mdta keys) and a .3gp do not get. The ipod muxer
    # (.m4v) writes one, but PyAV adds no stream whose codec the muxer's list leaves out
    # (avformat_query_codec), and the ipod muxer's names neither JPEG nor PNG. A .mov's
    # and a .m4v's are put in once the file is written (cover_atom); a .3gp's are not:
    # its tags are 3GPP's own.
    kept = " (an .mp4 or .mkv output keeps it)" if codec in _COVER_FILES and muxer not in ("mp4", "matroska") else ""
    log.warning("%s cannot hold %scover art: dropping stream %d, a picture attached to the file%s", dst.suffix,
                f"{codec} " if codec else "", stream.index, kept)
    return None


def _holds_picture(muxer: str, stream, packet) -> bool:
    """Whether a ``muxer`` output keeps ``packet``, the picture of the attached
    picture ``stream``, as such, whole: an mp4 does; FFmpeg's mov muxer takes it and
    writes it nowhere in a .mov, and an .avi's makes a one-frame video of it. Asked by
    writing a tiny one."""
    data = bytes(packet)

    def write(output) -> None:
        copy = output.add_stream_from_template(stream)
        copy.disposition = av.stream.Disposition.attached_pic
        picture = av.Packet(data)
        picture.stream = copy
        output.mux(picture)
    try:
        with _read_back(muxer, write) as probe_input:
            return any(s.disposition & av.stream.Disposition.attached_pic and bytes(next(probe_input.demux(s))) == data
                       for s in probe_input.streams.video)
    except (av.error.FFmpegError, ValueError, StopIteration):
        return False
