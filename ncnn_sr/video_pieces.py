"""A video's encoded frames kept in pieces beside its output, so that a run stopped
midway (Ctrl-C, a kill, a crash, the power, a device that failed) goes on where it
got to when the same command is run again: hours of upscaling on a CPU were lost to
one Ctrl-C.

While a run writes its output, each video packet the encoder makes is also written
into the piece in work; every ``every`` frames handed to the upscaler the encoder is
closed and a new one, set up alike, opened, so that each piece starts on a keyframe
and holds all its frames' packets. A piece is written under a temporary name and
renamed once whole, so a piece cut off by a kill is never taken for one. The pieces
and a record of what makes the output (``record.json``: the source file, the
settings, the encoder, the versions) live in a hidden folder named from the output.
A rerun whose record matches copies the kept pieces' packets in place of upscaling
and encoding their frames, and upscales from the first frame after them; the sound,
subtitles and everything else are made over the whole length as in one run, so they
stay in sync. A record that differs (a changed source, another model) starts over,
said in one line. Knows nothing of ncnn.

The piece format is this module's own (a packet's times, flags and bytes, in the
encoder's time base): a container's muxer would round or move the times. A packet's
side data is not kept: the one kind ENCODERS' packets carry (checked, 64x48, 30 frames
each) is quality_stats, the encoder's quantizer and picture type, which mp4, mov,
matroska and webm do not write (libvpx's alpha block additions come of yuva input only,
never encoded here; a new extradata would fail the headers' check)."""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from .budget import size_words
from .errors import DISK_FULL, FlagNames, cannot_write, out_of_memory
from .files import temp_stem

try:
    import fcntl
except ImportError:  # Windows: no lock, and no resume (see open_work)
    fcntl = None

log = logging.getLogger("ncnn_sr")

# About how much of the video, in seconds of its frames, goes in one piece: a stop
# loses at most that much upscaling, and each piece costs an encoder's restart (a
# keyframe; measured: under 1% in size at 60 s). NCNN_SR_PIECE_SECONDS sets another
# (the tests' tiny clips take a fraction of a second).
PIECE_SECONDS = 60.0
# Encoders whose pieces were checked to join into the video one run makes (the same
# frames, times and pixels), and the muxers they were checked in: others are written
# in one piece, no resume. (libaom-av1 was not there to check: this FFmpeg lacks it.)
ENCODERS = frozenset({"libx264", "libx264rgb", "libx265", "libsvtav1", "libvpx", "libvpx-vp9", "ffv1", "mpeg4"})
MUXERS = frozenset({"mp4", "mov", "matroska", "webm"})

_MAGIC = b"ncnn-sr piece 1\n"
_PACKET = struct.Struct("<qqqBI")  # pts, dts, duration, keyframe, size; then the bytes
_END = struct.Struct("<qqqd")  # first frame, end frame, packets, seconds at the end; after a packet of size 0
_NONE = -(1 << 63)  # a time not known


def work_folder(final: Path) -> Path:
    """The hidden folder beside ``final`` that holds its pieces."""
    return final.parent / f".{temp_stem(final.name, final.parent)}.ncnn-sr-pieces"


def piece_seconds() -> float:
    try:
        seconds = float(os.environ.get("NCNN_SR_PIECE_SECONDS", PIECE_SECONDS))
    except ValueError:
        return PIECE_SECONDS
    # "inf" is a float too, whose frames a piece no count holds: the video failed at its start.
    return seconds if seconds > 0 and math.isfinite(seconds) else PIECE_SECONDS


@dataclass
class Piece:
    """A whole piece: frames ``first`` to ``end`` (handed to the upscaler, counted
    from the output's first), ``packets`` of them, ``seconds`` the output's time at
    ``end``."""

    path: Path
    first: int
    end: int
    packets: int
    seconds: float


@dataclass
class Work:
    """The pieces of one output: those kept from a stopped run (``kept``), and the
    one in work. Made by ``open_work``; the folder is locked while it lives."""

    output: Path
    folder: Path
    record: dict
    every: int  # frames a piece
    kept: list[Piece] = field(default_factory=list)
    lock: int | None = None  # the folder's descriptor, flocked
    _file: object = field(default=None, repr=False)  # the piece in work, under its .tmp name
    _first: int = field(default=0, repr=False)  # its first frame
    _packets: int = field(default=0, repr=False)  # and how many packets it has
    _number: int = field(default=0, repr=False)  # its place among the pieces
    given_up: bool = False  # no room for the pieces: none is kept this run, the video still written
    total: int | None = None  # frames to the end, where known: whether the video fits once they are given up
    video: Path | None = None  # the file the video is written into, for the same

    @property
    def resumed(self) -> int:
        """Frames the kept pieces hold, from the output's first."""
        return self.kept[-1].end if self.kept else 0

    def packets(self, piece: Piece, time_base: Fraction) -> Iterator[av.Packet]:
        """The packets of the kept ``piece``, in the order they were made."""
        with open(piece.path, "rb") as f:
            f.read(len(_MAGIC))
            while True:
                pts, dts, duration, key, size = _PACKET.unpack(f.read(_PACKET.size))
                if not size and key == 2:
                    return
                packet = av.Packet(f.read(size))
                packet.time_base = time_base
                packet.pts = None if pts == _NONE else pts
                packet.dts = None if dts == _NONE else dts
                packet.duration = 0 if duration == _NONE else duration
                packet.is_keyframe = bool(key)
                yield packet

    def opened(self, shape: tuple[int, int], extradata: bytes | None) -> bool:
        """Whether an encoder opened on frames of ``shape`` (height, width), making
        the headers ``extradata``, makes pieces that join those kept; it is recorded."""
        made = {"shape": list(shape), "extradata": (extradata or b"").hex()}
        if self.kept:
            return all(self.record.get(k) == v for k, v in made.items())
        self.record.update(made)
        try:
            _write_record(self.folder, self.record)
        except OSError as e:
            self._give_up(e)
        return True

    def start(self, first: int) -> None:
        """Begin the piece of the frames from ``first`` on."""
        if self.given_up:
            return
        try:
            self._file = open(self.folder / f"piece-{self._number:05d}.tmp", "wb")
            self._file.write(_MAGIC)
        except OSError as e:
            self._give_up(e)
            return
        self._first, self._packets = first, 0

    def add(self, packet) -> None:
        """Keep ``packet``, made by the encoder of the piece in work."""
        if self._file is None:
            return
        data = bytes(packet)
        pts, dts, duration = (_NONE if v is None else v for v in (packet.pts, packet.dts, packet.duration))
        try:
            self._file.write(_PACKET.pack(pts, dts, duration, int(packet.is_keyframe), len(data)))
            self._file.write(data)
        except OSError as e:
            self._give_up(e)
            return
        self._packets += 1

    def close_piece(self, end: int, seconds: float) -> None:
        """The piece in work is whole, up to frame ``end``: made lasting, under its own name."""
        if self._file is None:
            return
        f, self._file = self._file, None
        try:
            with f:
                f.write(_PACKET.pack(0, 0, 0, 2, 0))
                f.write(_END.pack(self._first, end, self._packets, seconds))
                f.flush()
                os.fsync(f.fileno())
            name = self.folder / f"piece-{self._number:05d}.bin"
            os.replace(self.folder / f"piece-{self._number:05d}.tmp", name)
        except OSError as e:
            self._give_up(e)
            return
        _sync_folder(self.folder)
        self._number += 1

    def _give_up(self, e: OSError) -> None:
        """The pieces cannot be written (their disk is full, say): the video is, all
        the same, in the room they held, and a stop from here loses the run. Keeping
        the work is not worth failing a run that would otherwise finish; but where the
        rest of the video needs more than their room, at their rate so far
        (``_no_room_for_the_rest``), it would fail later all the same, with nothing
        kept: the run stops now, as for the video's own write refused (NoRoom), its
        whole pieces kept for a rerun. A write refused for the host's memory
        (ENOMEM) stops the run as any out of memory does (a MemoryError), the whole
        pieces kept: going on keeping nothing, it would most likely run out further on,
        all lost."""
        if out_of_memory(e):
            self.drop_piece()
            raise MemoryError(f"cannot keep the work beside {self.output}: {e.strerror or e}") from e
        if e.errno in DISK_FULL and self._no_room_for_the_rest():
            self.drop_piece()
            raise cannot_write(self.output, e) from e
        # "No room" where it is the disk's (the common cause), the cause alone elsewhere.
        log.warning("%s: %s the work beside it (%s): it is still written, but a stop from here loses the run",
                    self.output, "no room to keep" if e.errno in DISK_FULL else "cannot keep", e.strerror or e)
        self.given_up = True
        self.stop()

    def _no_room_for_the_rest(self) -> bool:
        """Whether the video, at the whole pieces' rate so far over its ``total``
        frames, needs more than the disk's room with the pieces removed, past what
        its file holds already (False where not known: no whole piece, no ``total``
        or ``video``). Its file, not the frames done, says what it holds: a muxer
        holds packets back (an mp4 on a 240 kB disk had most of it taken by 197 kB
        of pieces, its file far behind them)."""
        pieces = _whole_pieces(self.folder, tidy=False)
        if not pieces or not self.total or self.video is None:
            return False
        try:
            size = sum(piece.path.stat().st_size for piece in pieces)
            free = shutil.disk_usage(self.folder).free
            written = os.stat(self.video).st_size
        except OSError:
            return False
        try:
            in_work = os.stat(self.folder / f"piece-{self._number:05d}.tmp").st_size
        except OSError:
            in_work = 0
        rest = size * max(self.total / pieces[-1].end, 1.0) - written
        return rest > free + size + in_work

    def room_short(self) -> tuple[int, int, int] | None:
        """Where a rerun's disk lacks the room to go on from the kept pieces to the
        end: its free bytes, about how many more it needs (kept_on_full_disk's
        reckoning: the video and its pieces, each at the kept pieces' rate over
        ``total`` frames, or the kept ones alone where it is not known, less the kept
        ones there already), and the kept pieces' bytes; None where it has the room,
        or it is not known."""
        if not self.kept:
            return None
        try:
            size = sum(piece.path.stat().st_size for piece in self.kept)
            free = shutil.disk_usage(self.folder).free
        except OSError:
            return None
        short = room_to_finish(size, self.kept[-1].end, self.total or 0, free)
        return (free, short, size) if short > 0 else None

    def keep_or_remove(self) -> None:
        """As a run stops: the folder kept where it holds a whole piece, else removed."""
        if _whole_pieces(self.folder, tidy=False):
            self.release()
        else:
            self.remove()

    def stop(self) -> None:
        """No more pieces this run (an encoder whose restart would not join): the
        output is still written, in one piece from here, and nothing is kept."""
        self.drop_piece()
        self.remove()

    def drop_piece(self) -> None:
        """The piece in work let go of, unfinished, and its .tmp removed: it is never
        taken for one, and on a full disk its room is the rerun's."""
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass  # the bytes a full disk refused, flushed again: the piece is dropped all the same
            try:
                os.unlink(self.folder / f"piece-{self._number:05d}.tmp")
            except OSError:
                pass  # the next run's _whole_pieces tidies it

    @property
    def writing(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        """Let go of the folder (its lock), leaving what is in it."""
        self.drop_piece()
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def remove(self) -> None:
        """The folder and all in it gone: the output is complete, or it failed."""
        self.release()
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_if_finished(final: Path) -> int | None:
    """Remove the pieces beside the finished video ``final`` where a run killed
    outright between renaming it into place and removing them left them (a kill, a
    crash, the power): none newer than ``final``, and no run holding them. Their size,
    or None where they are not there or are kept: another run's in progress, or the
    work of a stopped run that was to write ``final`` again (made since), for the same
    command to go on from. Without it a rerun with --skip-existing, which skips the
    video, left the pieces, a hidden folder as large as the video, for good."""
    folder = work_folder(final)
    if fcntl is None or folder.is_symlink():
        return None
    try:
        lock = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a run writing it now
        finished = os.stat(final).st_mtime_ns
        # Each piece, and the folder as one was added, is written before the video is
        # whole: its last bytes (an mp4's moov box) come after the last piece.
        times, size = [os.fstat(lock).st_mtime_ns], 0
        for entry in os.scandir(folder):
            st = entry.stat(follow_symlinks=False)
            times.append(st.st_mtime_ns)
            size += st.st_size
        if max(times) > finished:
            return None
        shutil.rmtree(folder)
        return size
    except OSError:
        return None  # left as it is: a rerun writing the video goes on from it, or removes it
    finally:
        os.close(lock)


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def source_identity(src) -> dict | None:
    """What tells the file ``src`` from another, or from itself changed; None for a stream."""
    if not isinstance(src, (str, os.PathLike)):
        return None
    try:
        st = os.stat(src)
    except OSError:
        return None
    return {"path": os.path.abspath(src), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def open_work(final: Path, record: dict, every: int, flags: FlagNames = FlagNames(library=True)) -> Work | None:
    """The pieces of ``final``, made of what ``record`` says, ``every`` frames each:
    those a stopped run of the same record left are kept; a folder of another record
    is emptied, saying why (naming what differs as ``flags`` do: made_with). None where pieces cannot be kept: no flock (Windows), or
    another run holds the folder. An InputError (NoRoom where the disk is full) where
    the folder cannot be written, as the output then could not either."""
    if fcntl is None:
        return None
    folder = work_folder(final)
    try:
        folder.mkdir(exist_ok=True)
        lock = os.open(folder, os.O_RDONLY)
    except OSError as e:
        raise cannot_write(final, e) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        log.warning("%s: another run is writing it (%s is in use): this one keeps no work", final, folder.name)
        return None
    record = json.loads(json.dumps({**record, "every": every}))  # as read back
    work = Work(final, folder, record, every, lock=lock)
    try:
        return _taken_up(work, flags)
    except OSError as e:  # the disk is full, say: as writing the output would fail
        work.remove()
        raise cannot_write(final, e) from None


def _taken_up(work: Work, flags: FlagNames) -> Work:
    """``work``, its folder's kept pieces in it where its record is the same; else
    the folder emptied and the record written."""
    final, folder, record = work.output, work.folder, work.record
    old = _read_record(folder)
    made = {k: old.pop(k) for k in _MADE if k in old} if old is not None else {}
    if old is not None and old != record:
        key = next((k for k in record if old.get(k) != record[k]), None) or next(iter(old))
        log.warning("%s: starting over: the kept work (%s) was made %s", final, folder.name,
                    made_with(key, old.get(key), record.get(key), flags))
        old = None
    if old is None or len(made) < len(_MADE):  # none, another's, or one whose encoder never opened
        _empty(folder)
        _write_record(folder, record)
        return work
    work.kept = _whole_pieces(folder)
    work.record.update(made)
    work._number = len(work.kept)
    return work


# What the record gets once the encoder opens: the frames' size, and the headers
# (extradata) every piece's encoder made.
_MADE = ("shape", "extradata")


# How the kept work was made, where the record's field ``key`` differs, in words
# that follow "was made".
_WHAT = {"source": "from another source file (changed since)", "settings": "with another model or settings",
         "options": "with other video options", "encoder": "with another encoder",
         "output": "into another output container", "versions": "by another ncnn-sr, PyAV or FFmpeg version",
         "every": "in pieces of another length", "rate": "at another frame rate"}

# The settings and video options of a record (each value as str() gives it) by the
# command's flag that sets them: -n, -s and -x the drop-in takes alike.
_FLAGS = {"model": "-n", "scale": "-s", "width": "--width", "height": "--height", "tta": "-x",
          "precision": "--precision", "tile_pad": "--tile-pad", "overlap": "--overlap",
          "codec": "--codec", "crf": "--crf", "preset": "--preset", "pix_fmt": "--pix-fmt", "bitrate": "--bitrate",
          "fps": "--fps", "deinterlace": "--deinterlace", "field_rate": "--field-rate", "start": "--start",
          "duration": "--duration", "skip_damaged": "--skip-damaged", "keep_width": "--width",
          "keep_height": "--height"}
_BOOLEANS = ("True", "False")


def made_with(key: str, old, new, flags: FlagNames = FlagNames()) -> str:
    """How the kept work was made, where its record's field ``key`` was ``old`` and
    this run's is ``new``: the one setting or option that differs, by its flag
    ("with --crf 18, not 20"), or for ``flags.library`` as upscale_video's caller gave
    it ("with crf=18, not 20", "with settings['model'] = 'a', not 'b'"), where the
    two say which; else ``_WHAT``'s words."""
    if key in ("settings", "options") and isinstance(old, dict) and isinstance(new, dict):
        name = next((k for k in (*new, *old) if old.get(k) != new.get(k)), None)
        if name == "weights":
            return "with other model files (its .param or .bin changed since)"
        if flags.library and name is not None:
            return _argument_change(key, name, old.get(name), new.get(name))
        if name == "exact":  # --exact/--blend: None, neither given
            said = {"True": "--exact", "False": "--blend"}
            return f"with {said.get(old.get(name), 'the default')}, not {said.get(new.get(name), 'the default')}"
        if name in _FLAGS:
            return _flag_change(_FLAGS[name], old.get(name, "None"), new.get(name, "None"))
    return _WHAT.get(key, f"with another {key}")


def _argument_change(key: str, name: str, old: str | None, new: str | None) -> str:
    """"with crf=18, not 20" for an EncodeOptions field (the record's str()s, every
    field there); for a key of upscale_video's ``settings``, which the caller may
    have left out, "with settings['model'] = 'a', not 'b'" (its values are strs)."""
    if key == "options":
        return f"with {name}={old}, not {new}"
    item = f"settings[{name!r}]"
    if old is None:
        return f"without {item}, not with it = {new!r}"
    return f"with {item} = {old!r}, not {'without it' if new is None else repr(new)}"


def _flag_change(flag: str, old: str, new: str) -> str:
    """"with --crf 18, not 20", as ``flag`` was ``old`` and is ``new`` (str()s)."""
    if old in _BOOLEANS and new in _BOOLEANS:
        return f"with {flag}, not without it" if old == "True" else f"without {flag}, not with it"
    if old == "None":
        return f"with the default {flag}, not {flag} {_shown(new)}"
    return f"with {flag} {_shown(old)}, not {'the default' if new == 'None' else _shown(new)}"


def _shown(value: str) -> str:
    """A value as the command takes it: a fraction (a rate, seconds) as a decimal."""
    if re.fullmatch(r"-?\d+/\d+", value):
        return format(float(Fraction(value)), "g")
    return value


def _read_record(folder: Path) -> dict | None:
    try:
        with open(folder / "record.json", encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(folder: Path, record: dict) -> None:
    temp = folder / "record.json.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, folder / "record.json")
    _sync_folder(folder)


def _empty(folder: Path) -> None:
    for entry in os.scandir(folder):
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _whole_pieces(folder: Path, tidy: bool = True) -> list[Piece]:
    """The whole pieces in ``folder`` that follow on from the first frame, one after
    another ([] where it cannot be listed); with ``tidy``, any other file of a piece
    (one cut off, one after a gap) is removed."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.startswith("piece-"))
    except OSError:
        return []
    pieces: list[Piece] = []
    for name in names:
        path = folder / name
        piece = _read_end(path) if name == f"piece-{len(pieces):05d}.bin" else None
        if piece is not None and piece.first == (pieces[-1].end if pieces else 0):
            pieces.append(piece)
        elif tidy:
            try:
                path.unlink()
            except OSError:
                pass
    return pieces


def _read_end(path: Path) -> Piece | None:
    """The piece at ``path``, where it is whole: its packets all there, its end after them."""
    try:
        with open(path, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                return None
            count = 0
            while True:
                head = f.read(_PACKET.size)
                if len(head) < _PACKET.size:
                    return None
                *_, key, size = _PACKET.unpack(head)
                if key == 2 and not size:
                    break
                f.seek(size, os.SEEK_CUR)
                count += 1
            end = f.read(_END.size)
            if len(end) < _END.size or f.read(1):
                return None
            first, last, packets, seconds = _END.unpack(end)
    except OSError:
        return None
    if packets != count or last <= first:
        return None
    return Piece(path, first, last, packets, seconds)


def kept_words(final: Path, again: str = "run the same command again") -> str | None:
    """What a stopped run of ``final`` kept, to say as it stops, with how to go on
    (``again``, "to go on"); None where nothing is."""
    pieces = _whole_pieces(work_folder(final), tidy=False)
    if not pieces:
        return None
    return f"the work up to {clock(pieces[-1].seconds)} is kept in {work_folder(final).name}: {again} to go on"


def kept_on_full_disk(final: Path, length: float | None) -> tuple[str, int | None] | None:
    """What a run of ``final`` that its full disk stopped kept, in words, and about how
    many bytes more its disk must have free for the same command to go on from it to
    the end (None where not known: ``length``, the output's seconds, is not); None
    where nothing is kept. The room is room_to_finish's, the pieces' rate so far
    standing for the rest. It counts the picture alone: the video's sound and container, not in the pieces, come on
    top (small beside upscaled frames, but for a tiny clip)."""
    folder = work_folder(final)
    pieces = _whole_pieces(folder, tidy=False)
    if not pieces:
        return None
    size = 0
    for piece in pieces:
        try:
            size += piece.path.stat().st_size
        except OSError:
            pass
    more = None
    if length and pieces[-1].seconds > 0:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = 0
        more = max(0, room_to_finish(size, pieces[-1].seconds, length, free))
    return f"the work up to {clock(pieces[-1].seconds)} is kept in {folder.name} ({amount(size)})", more


def room_to_finish(kept: int, done: float, whole: float, free: int) -> int:
    """About how many bytes more than ``free`` a run needs to go on from ``kept``
    bytes of pieces, which hold ``done`` of the video's ``whole`` (frames or seconds),
    to its end: the pieces are written beside the video as it is made, each about as
    large, so the disk holds both at the end, twice the video at the kept pieces' rate,
    of which the kept pieces are there already. Negative where it has the room."""
    video = kept * max(whole / done, 1.0)
    return round(2 * video - kept - free)


def amount(size: float, up: bool = False, down: bool = False) -> str:
    """A number of bytes in words, as the memory's refusals say them (size_words, whose
    ``up`` and ``down`` these are): 1.2 GB, 350 MB, 12 kB, 900 bytes (a disk with none
    free had "1 kB free"; 999,500 bytes, in kB of 1000, "1000 kB")."""
    return size_words(round(size), up=up, down=down)


def clock(seconds: float) -> str:
    """``seconds`` as HH:MM:SS."""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
