"""A video's packets as its demuxer hands them out: what the demuxer logs as an error
meanwhile (damage it reads past, or stops at without a word), FFmpeg's ENOMEM with
memory to spare told apart from the host's shortage (a damaged size), a second
opening of the file to look ahead in, and the packets of a pipe, which cannot be
read twice, read ahead of the run and handed to it after. Used by ``video``; knows
nothing of ncnn.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import time
from fractions import Fraction
from typing import Iterator

import av
import av.logging

from . import video_streams
from .budget import available_memory, cap_room, size_words
from .files import ffmpeg_name
from .streams import VideoInput
from .video_codecs import set_level_back


# FFmpeg refuses any one allocation larger than this (av_max_alloc's default, INT_MAX),
# with ENOMEM however much memory is free; and what opening a file allocates beside it.
FFMPEG_LARGEST_ALLOCATION = (1 << 31) - 1
ROOM_BESIDE_IT = 512 << 20


def _room_past_ffmpeg() -> int | None:
    """Bytes this process may still allocate (the memory available, under a cap of its
    own, ulimit -v, where one is set) where they are more than any one allocation
    FFmpeg makes and room beside it: there, FFmpeg's ENOMEM is a size the file states
    (damaged), not the host's shortage. None where there are fewer."""
    capped = cap_room()
    room = min(available_memory(), capped[0]) if capped else available_memory()
    return room if room >= FFMPEG_LARGEST_ALLOCATION + ROOM_BESIDE_IT else None


class PacketPastMemory(av.error.FFmpegError):
    """FFmpeg's ENOMEM reading a packet with more memory free than any one allocation
    of its takes (``FFMPEG_LARGEST_ALLOCATION``, and room beside it): a damaged size
    (an mp4's sample of 822 MB in an 18 kB file), not the host's shortage. Its errno is
    not ENOMEM, which ``out_of_memory`` would take for the host's."""

    def __init__(self, room: int):
        super().__init__(errno.EOVERFLOW, f"a packet asks FFmpeg for more memory than it gives, with "
                                          f"{size_words(room, down=True)} free (damaged, most likely)")


# What FFmpeg's Matroska demuxer logs, as an error, for a file cut off: the cut is
# told as such (``_warn_if_truncated``), not as damage.
CUT_OFF_SAID = "File ended prematurely"


# Beside PyAV's loggers (libav.NAME) while their level is raised (_logged_here).
_UNSAID = logging.NullHandler()


@contextlib.contextmanager
def _logged_here() -> Iterator[list]:
    """What FFmpeg logs meanwhile in this thread, as (level, name, message)."""
    level, repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    if level is None or level < av.logging.ERROR:  # FFmpeg calls PyAV's logging back only at the level set
        # Other threads' FFmpeg errors meanwhile (a frame-threaded decoder's, an
        # encoder's) go to Python's logging, which, set up by no one, printed them
        # raw on stderr (its last resort): a handler that does nothing keeps them
        # unsaid, as at the level before. Set up by a program, its handlers get them.
        libav = logging.getLogger("libav")
        if _UNSAID not in libav.handlers:
            libav.addHandler(_UNSAID)
        av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # else a second damage alike was held back
    try:
        with av.logging.Capture(local=True) as logs:
            yield logs
    finally:
        set_level_back(level)
        av.logging.set_skip_repeated(repeated)


def _demuxer_said(container, logs: list) -> list[str]:
    """The errors among ``logs`` that ``container``'s demuxer logged, a cut-off end's aside."""
    return [message.strip() for at, name, message in logs
            if at <= av.logging.ERROR and name == container.format.name and message.strip()
            and not message.startswith(CUT_OFF_SAID)]


@contextlib.contextmanager
def _demuxer_errors(container, errors: list | None) -> Iterator[None]:
    """Add to ``errors`` what ``container``'s demuxer logs as an error meanwhile, in
    this thread. A demuxer that meets damage (a Matroska's block zeroed midway) logs
    it and goes on past it, or ends the file quietly, as if it were whole: its log
    alone tells. Caught in this thread only, which reads the packets: the decoders'
    and encoders' logs elsewhere stay FFmpeg's, unsaid."""
    if errors is None:
        yield
        return
    with _logged_here() as logs:
        try:
            yield
        finally:
            errors.extend(_demuxer_said(container, logs))


def _demuxed(container, *streams, errors: list | None = None) -> Iterator:
    """``container.demux()``, less the IndexError PyAV raises at the end of a file in
    which a new stream turned up midway (a damaged MPEG-TS, say): it looks for that
    stream, which it never listed, when it hands out the streams' last, empty, packets.
    The known streams' ones have all come by then. FFmpeg's ENOMEM with room to spare
    is a PacketPastMemory. ``errors`` gets what the demuxer logs as an error
    (``_demuxer_errors``)."""
    packets = container.demux(*streams)
    while True:
        try:
            with _demuxer_errors(container, errors):
                packet = next(packets)
        except (StopIteration, IndexError):
            return
        except av.error.MemoryError:
            if (room := _room_past_ffmpeg()) is None:
                raise
            raise PacketPastMemory(room) from None
        yield packet


def _named(src):
    """What FFmpeg opens ``src`` by: the name of a file, or the stream itself."""
    return src if isinstance(src, VideoInput) else ffmpeg_name(src)


@contextlib.contextmanager
def _reopened(src):
    """A second opening of the file ``src`` (standard input redirected from one too),
    ``src`` left where it was read to; None for a pipe, which cannot be read twice, or
    where it cannot be opened again."""
    if src is None or (isinstance(src, VideoInput) and not src.seekable()):
        yield None
        return
    at = src.tell() if isinstance(src, VideoInput) else None
    try:
        if at is not None:
            src.seek(0)
        try:
            again = video_streams.open_file(_named(src))
        except (av.error.FFmpegError, OSError):
            yield None
            return
        with again:
            yield again
    finally:
        if at is not None:
            src.seek(at)


def _packet_time(packet) -> Fraction | None:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None or packet.time_base is None else stamp * packet.time_base


# How much of a pipe is held for the run while its frames' times are looked at, and
# for how long it is read ahead: no further than a file piped in (cat) comes in that
# time, so that a live source (a camera, an encoder's output) is upscaled as it comes,
# not once it has sent minutes of video (64 MiB at 2 Mbit/s: 4.5 minutes).
PEEK_BYTES = 64 * 2 ** 20
PEEK_SECONDS = 2


class _Ahead:
    """The packets of a container that cannot be read twice (a pipe, standard input),
    read ahead of its run to look at; the run reads them first (``packets``), and an
    error met among them where it would have met it."""

    def __init__(self, inp):
        self.inp, self.held, self.error = inp, [], None
        # What the demuxer logged as an error (``_demuxer_errors``), as far as the run has come.
        self.errors: list[str] = []
        # What it logged as the packets were read ahead, and before which of those held:
        # the run comes to it there, not at its first packet.
        self.logged: list[str] = []
        self.logged_before: int | None = None
        self.size = 0
        self.ended = False  # whether the container's every packet was read
        self.before: list | None = None  # those read before it was sought in (``sought``)

    def read(self) -> Iterator:
        """Its packets: those read ahead already, then more, held too, for as long as
        PEEK_SECONDS and PEEK_BYTES allow."""
        yield from list(self.held)
        if self.ended or self.error is not None or self.size > PEEK_BYTES:
            return
        until = time.monotonic() + PEEK_SECONDS
        try:
            for packet in _demuxed(self.inp, errors=self.logged):
                if self.logged and self.logged_before is None:
                    self.logged_before = len(self.held)
                self.held.append(packet)
                self.size += packet.size
                yield packet
                if self.size > PEEK_BYTES or time.monotonic() > until:
                    return
            self.ended = True
        except av.error.FFmpegError as e:
            self.error = e
        finally:
            if self.logged and self.logged_before is None:  # after the last packet read
                self.logged_before = len(self.held)

    def sought(self) -> None:
        """The container was sought in (standard input redirected from a file, for a
        part of it): its run reads on from there, not what was read ahead before."""
        self.before, self.held, self.size, self.ended, self.error = self.held, [], 0, False, None
        self.errors, self.logged, self.logged_before = [], [], None

    def first(self) -> list:
        """The container's first packets, as far as they were read ahead."""
        return self.held if self.before is None else self.before

    def packets(self) -> Iterator:
        for index, packet in enumerate(self.held):
            if index == self.logged_before:
                self.errors.extend(self.logged)
            yield packet
        if self.logged_before is not None and self.logged_before >= len(self.held):
            self.errors.extend(self.logged)
        self.held, self.before = [], None
        if self.error is not None:
            # Taken out: kept, it held this frame (in its traceback, with ``self``) in a
            # cycle, and with it the frames it went through, the decoding's.
            error, self.error = self.error, None
            try:
                raise error
            finally:
                del error
        if not self.ended:  # read again at its end, FFmpeg says End of file
            yield from _demuxed(self.inp, errors=self.errors)


def _ahead_of(src, inp, start: bool = False) -> _Ahead | None:
    """What was read of ``inp``, opened from the stream ``src``, ahead of its run
    (``_video_stream``'s look for a cover track), kept on ``src`` for the run; None
    where nothing was, or with ``start`` a new ``_Ahead`` there to read ahead."""
    if not isinstance(src, VideoInput):
        return None
    if start and (src.ahead is None or src.ahead.inp is not inp):
        src.ahead = _Ahead(inp)
    return src.ahead if src.ahead is not None and src.ahead.inp is inp else None
