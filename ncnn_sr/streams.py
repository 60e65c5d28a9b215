"""A picture or video read from standard input or a pipe, and written to standard
output or a pipe, for the commands: ``-i -``, ``-o -``, and paths such as /dev/stdin
or a shell's ``<(...)`` and ``>(...)``.

The picture goes through a temporary file on the way, since reading it means looking
at it more than once (its kind, its frames) and writing it means a file renamed into
place. The output reaches the stream only once it is whole, so a failed run writes
nothing there. The run's messages name the stream, not the temporary file.

A video streams instead (``VideoInput``, ``VideoOutput``), as it may be longer than
the disk holds twice and may come from a program still making it: read as it comes,
and written as it is made, in a container that needs no going back: the one its name
says where it can be (``STREAMED``), else Matroska. A failed run leaves what was
written of it there.
"""
from __future__ import annotations

import atexit
import contextlib
import ntpath
import os
import re
import shutil
import stat
import sys
from pathlib import Path

from .errors import InputError, Option, cannot_write, too_large
from .files import WINDOWS_CONSOLE, atomic_write, windows_device
from .part_files import sweep_folders_once, temporary_folder
from .signals import HeldInterrupts, ctrl_c_signals

STDIO = "-"
# Read past this, standard input holds no picture this tool could take (a 16-bit RGBA
# TIFF at Pillow's pixel limit is 1.4 GB); /dev/zero would otherwise fill the disk.
MAX_STREAM_BYTES = 2 << 30
# Names of standard input and output as paths: the same as "-" (also redirected to a file).
_STANDARD = {"/dev/stdin": True, "/dev/stdout": False}
_WINDOWS = os.name == "nt"
_DESCRIPTOR = re.compile(r"/dev/(fd/\d+|stderr)|/proc/self/fd/\d+")


_PREFIX = "ncnn-sr-stream-"  # the temporary folders' names, and mkdtemp's 8 characters


def _stdin_flag(dash: bool) -> str:
    """How a command that takes ``-`` for standard input (``dash``) or not, as the
    drop-in, which reads it as a file's name, is told to read it."""
    return f"-i {STDIO}" if dash else "-i /dev/stdin"


def is_stream(path: str | os.PathLike, reading: bool) -> bool:
    """Whether ``path`` is a stream to read a picture from (``-``, /dev/stdin, a pipe:
    a shell's <(...) is one) or to write one to (``-``, /dev/stdout, a pipe or a
    device such as /dev/null), rather than a file. A device is no picture to read:
    /dev/zero has no end, and the picture reader refuses it by name."""
    if os.fspath(path) == STDIO or _STANDARD.get(os.fspath(path)) is reading:
        return True
    if not reading and _DESCRIPTOR.fullmatch(os.fspath(path)):
        # `-o /dev/fd/3 3>out.png`: a descriptor the shell opened, a file or not; its
        # name holds no format and cannot be renamed over.
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or (not reading and stat.S_ISCHR(mode))


def shown(path: str | os.PathLike, reading: bool) -> str:
    """The words for a stream in messages."""
    if os.fspath(path) == STDIO:
        return "standard input" if reading else "standard output"
    return os.fspath(path)


def _standard(path: str, reading: bool) -> str:
    """``-`` for /dev/stdin read or /dev/stdout written, else ``path``."""
    return STDIO if _STANDARD.get(path) is reading else path


def _terminal(path: str, reading: bool) -> bool:
    """Whether the stream is a terminal (which holds no picture and should not get one)."""
    if path == STDIO:
        standard = sys.stdin if reading else sys.stdout
        if standard is None:
            raise InputError(f"{shown(path, reading)} is closed")
        if _WINDOWS and standard.isatty():
            return _windows_console(standard)
        return standard.isatty()
    if _WINDOWS:
        # Windows takes any character device for a terminal (NUL too): its console is
        # known by its names, in any folder.
        return windows_device(ntpath.basename(path)) in WINDOWS_CONSOLE
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.isatty(fd)
    finally:
        os.close(fd)


def _windows_console(standard) -> bool:
    """Whether the standard stream ``standard``, which Windows calls a terminal, is
    its console: its isatty says so of any character device, NUL too (> NUL), so
    the console is asked whether it has the stream's handle."""
    try:
        import ctypes
        import msvcrt

        mode = ctypes.c_uint32()
        handle = msvcrt.get_osfhandle(standard.fileno())
        return bool(ctypes.WinDLL("kernel32").GetConsoleMode(ctypes.c_void_p(handle), ctypes.byref(mode)))
    except (ImportError, OSError, ValueError, AttributeError):
        return True  # as isatty said


class Streams:
    """The temporary files standing in for the streams of one run: ``input`` and
    ``output`` are the paths to give the run (the given ones where they are files;
    ``output_folder`` says the output was written as a folder's, "out/");
    ``deliver()`` then hands the output to its stream; ``aliases`` maps each temporary
    path to the stream's words. A context manager: the files go when it ends.
    ``dash`` False is the drop-in's way, the reference's: ``-`` is a file's name, the
    output is a stream only where ``pipe_out`` says (a FIFO named as a picture, which
    the reference fopens and writes into), and the messages offer only what it takes."""

    def __init__(self, input_path: str | os.PathLike, output_path: str | os.PathLike, fmt: str | None,
                 output_folder: bool = False, dash: bool = True, pipe_out: bool = False):
        self._dash = dash
        if dash:
            self._out_stream = _standard(os.fspath(output_path), False) if is_stream(output_path, False) else None
        else:
            self._out_stream = os.fspath(output_path) if pipe_out else None
        self._folder = self._lock = None
        self.aliases: dict[str, str] = {}
        self.input, self.output = Path(input_path), Path(output_path)
        in_stream = _standard(os.fspath(input_path), True) if is_stream(input_path, True) else None
        if in_stream is None and self._out_stream is None:
            return
        if in_stream is not None and (output_folder or self.output.is_dir()):
            raise InputError(f"a picture from {shown(in_stream, reading=True)} needs an output file's name"
                             f"{' (or -o -)' if dash else ''}, not a folder")
        if self._out_stream is not None and self.input.is_dir():
            raise InputError(f"the pictures of a folder cannot all go to {shown(self._out_stream, reading=False)}: "
                             "give a folder")
        if self._out_stream is not None and _terminal(self._out_stream, reading=False):
            raise InputError(f"{shown(self._out_stream, reading=False)} is a terminal: send the picture to a file "
                             f"or a pipe{' (-o - > out.png)' if dash else ''}")
        if in_stream is not None and _terminal(in_stream, reading=True):
            raise InputError(f"{shown(in_stream, reading=True)} is a terminal: pipe a picture in "
                             f"({_stdin_flag(dash)} < in.jpg)")
        if self._out_stream is not None and self._out_stream != STDIO:
            _open_output(self._out_stream, check=True)  # a descriptor not open fails before the work
        try:
            # A Ctrl-C landing in mkdtemp once it had made the folder, or before this
            # try, left it behind: it waits until the folder is ours to remove.
            with HeldInterrupts(ctrl_c_signals()):
                self._folder, self._lock = temporary_folder(_PREFIX)
            # Those of runs killed outright (SIGKILL): each stayed, as large as its picture.
            sweep_folders_once(self._folder.parent, _PREFIX)
            if in_stream is not None:
                self.input = self._folder / "input"
                self._read(in_stream)
                self.aliases[str(self.input)] = shown(in_stream, reading=True)
            if self._out_stream is not None:
                self.output = self._folder / f"output.{self._format(fmt)}"
                words = shown(self._out_stream, reading=False)
                # A jpg asked for a picture with transparency is written as png (pipeline):
                # the reference writes it as the file NAME.jpg.png beside the pipe.
                as_png = f"{words} (as png)" if dash else f"{words}.png"
                self.aliases[f"{self.output}.png"] = as_png
                self.aliases[str(self.output)] = words
                # The stand-in itself not written (its folder's disk full, a ulimit -f): said
                # as the stream's, the pipe or the disk under standard output was blamed.
                for made, stream in ((f"{self.output}.png", as_png), (self.output, words)):
                    self.aliases[f"cannot write {made}:"] = f"cannot write the picture for {stream} in {self._folder}:"
        except BaseException:
            self.close()
            raise

    def _read(self, stream: str) -> None:
        words = shown(stream, reading=True)
        try:
            with open(self.input, "wb") as copy, \
                    (contextlib.nullcontext(sys.stdin.buffer) if stream == STDIO else open(stream, "rb")) as source:
                _waiting(source)
                size = 0
                while block := source.read(1 << 20):
                    size += len(block)
                    if size > MAX_STREAM_BYTES:
                        raise InputError(f"{words} holds more than {MAX_STREAM_BYTES >> 30} GB: no picture this "
                                         "takes (give a large picture as a file)")
                    try:
                        copy.write(block)
                    except OSError as e:  # the temporary folder's disk full, say: not the stream's doing
                        raise cannot_write(f"a copy of {words} in {self._folder}", e) from None
        except OSError as e:
            raise InputError(f"cannot read {words}: {e.strerror or e}") from None
        if size == 0:
            raise InputError(f"{words} is empty: no picture came")

    def _format(self, fmt: str | None) -> str:
        """The output's format: the stream path's extension where it has a picture's,
        else ``fmt``, else png."""
        from .images import output_format  # Pillow: only a run that writes needs it

        try:
            return output_format(self._out_stream)
        except InputError:
            return output_format(f"x.{fmt}") if fmt else "png"

    def deliver(self) -> None:
        """Hand the finished output to its stream (for the drop-in, a picture written
        as png where a jpg was asked goes to the file NAME.jpg.png instead)."""
        if self._out_stream is None:
            return
        made_as = self.output if self.output.exists() else Path(f"{self.output}.png")  # see the aliases
        if made_as != self.output and not self._dash:
            with open(made_as, "rb") as made:
                atomic_write(f"{self._out_stream}.png", lambda file: shutil.copyfileobj(made, file))
            return
        reached = False
        try:
            with open(made_as, "rb") as made:
                if self._out_stream == STDIO:
                    reached = True
                    shutil.copyfileobj(made, _waiting(sys.stdout.buffer))
                    sys.stdout.buffer.flush()
                else:
                    # Unbuffered: closed on a Ctrl-C, a buffer flushed into a reader that
                    # stopped reading would wait on it.
                    with _open_output(self._out_stream, buffering=0) as stream:
                        reached = True
                        _copy(made, _waiting(stream))
        except KeyboardInterrupt:
            # A FIFO's open waits for its reader: until then nothing reached it.
            raise DeliveryInterrupted(f"{shown(self._out_stream, reading=False)} got only part of the picture"
                                      if reached else "no output was written") from None
        except BrokenPipeError:
            if self._out_stream == STDIO:  # nothing reads it any more; Python would complain again flushing at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise InputError(f"{shown(self._out_stream, reading=False)} was closed before the picture "
                             "was written") from None
        except OSError as e:
            raise InputError(f"cannot write {shown(self._out_stream, reading=False)}: "
                             f"{too_large(e, e.strerror or str(e))}") from None

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> Streams:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OutputPipe:
    """A command's -o where it is a FIFO that a reader may wait on (cat pipe > out.png,
    a shell's >(...)): ``close()`` ends it for the reader unless it was ``reached``
    (opened to write). A run that failed wrote nothing there, and its reader waited
    for ever for a writer. Opened without blocking: with no reader, nothing waits."""

    def __init__(self, path: str | os.PathLike):
        self.path, self.reached = path, False

    def close(self) -> None:
        if self.reached or os.fspath(self.path) == STDIO:  # written and closed, or standard output
            return
        try:
            if stat.S_ISFIFO(os.stat(self.path).st_mode):
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        except (OSError, ValueError):  # ENXIO: no reader there
            pass


def _waiting(file):
    """``file``, its descriptor made to wait for its pipe (or socket) where the program
    that started this one left it non-blocking (node.js's child processes get such
    pipes): a read before the first bytes came returned nothing, said as "standard
    input is empty", and a write into a full pipe was refused, the rest of the picture
    lost under status 0, a video's a traceback. The flag is the pipe end's: standard
    input's or output's, which the program that started this one may share (its own,
    inherited), is put back as the process ends."""
    try:
        fd = file.fileno()
        if not os.get_blocking(fd):
            os.set_blocking(fd, True)
            if fd in (0, 1) and fd not in _made_waiting:
                if not _made_waiting:
                    atexit.register(put_back)
                _made_waiting.append(fd)
    except (AttributeError, OSError, ValueError):  # no descriptor; Windows before 3.12 has no such call
        pass
    return file


_made_waiting: list[int] = []  # standard input's and output's descriptors _waiting made wait


def put_back() -> None:
    """Standard input and output as ``_waiting`` found them, non-blocking: at exit,
    and before an os._exit (a Ctrl-C, memory run out), which skips atexit."""
    for fd in _made_waiting:
        try:
            os.set_blocking(fd, False)
        except OSError:  # closed by now
            pass


def _copy(source, stream) -> None:
    """``source`` to its end into the unbuffered ``stream``, whose writes into a pipe
    may take part of what they are given."""
    while chunk := source.read(shutil.COPY_BUFSIZE):
        view = memoryview(chunk)
        while view:
            view = view[stream.write(view):]


def _open_output(path: str, check: bool = False, buffering: int = -1):
    """A stream named by its path, opened to write (``check``: only whether it can be,
    as an InputError). A descriptor's name is written through the descriptor itself:
    opened anew, a file the shell opened with ``3>>`` would lose what it held."""
    if not _DESCRIPTOR.fullmatch(path):
        return None if check else open(path, "wb", buffering=buffering)
    number = 2 if path == "/dev/stderr" else int(path.rsplit("/", 1)[1])
    if check:
        try:
            os.fstat(number)
        except OSError as e:
            raise InputError(f"cannot write {path}: {e.strerror or e}") from None
        return None
    return open(number, "wb", buffering=buffering, closefd=False)


def _file_start(file) -> int | None:
    """Where reading ``file`` starts, if it is a regular file; else None."""
    try:
        return file.tell() if stat.S_ISREG(os.fstat(file.fileno()).st_mode) else None
    except (OSError, ValueError):  # no descriptor (io.UnsupportedOperation is both)
        return None


def _appends(file) -> bool:
    """Whether each write to ``file`` goes to its end, wherever it was sought to."""
    try:
        import fcntl  # not on Windows, whose files have no such mode here
        return bool(fcntl.fcntl(file.fileno(), fcntl.F_GETFL) & os.O_APPEND)
    except (ImportError, OSError, ValueError):
        return False


def _refuse_terminal(path: str, reading: bool, dash: bool = True) -> None:
    if _terminal(path, reading):
        # The drop-in writes no standard output: -o - is a file's name to it. A library
        # caller (upscale_video takes these streams) ran no command: told its own way.
        if reading:
            what = Option(f"pipe a video in ({_stdin_flag(dash)} < in.mkv)",
                          "pipe a video in, or give upscale_video the video's path", everywhere=True)
        else:
            what = Option(f"send the video to a file or a pipe{' (-o - | ...)' if dash else ''}",
                          "send the video to a file or a pipe, or give upscale_video a file's path to write",
                          everywhere=True)
        raise InputError(f"{shown(path, reading)} is a terminal: ", what)


class DeliveryInterrupted(KeyboardInterrupt):
    """A Ctrl-C as ``Streams.deliver`` handed the output to its stream: its words say
    how far it got ("no output was written")."""

    def __init__(self, words: str):
        super().__init__(words)
        self.words = words


class Interrupted(KeyboardInterrupt, Exception):
    """A Ctrl-C that came as FFmpeg waited for a stream: to read (a live source that
    has sent too little yet) or to write (a reader that stopped reading). PyAV passes
    on only Exceptions from its reads and writes, raised again once FFmpeg returns; a
    KeyboardInterrupt it printed as a traceback and took for the stream's end (the
    command failed as 'not a video FFmpeg can read') or lost (it waited on, for ever)."""


class VideoInput:
    """A video read from a stream, as a file object PyAV reads without seeking, once:
    the container the command's look at it opens is the one its run goes on with
    (``opened``), as the stream cannot be read again. Standard input redirected from
    a file (``< in.mp4``) is that file, from where it stood: ``seekable()``, and read
    as a file is (an mp4 with its index last too)."""

    def __init__(self, path: str | os.PathLike, dash: bool = True):
        stream = _standard(os.fspath(path), True)
        self.words = shown(stream, reading=True)
        _refuse_terminal(stream, True, dash)
        try:
            self._file = _waiting(sys.stdin.buffer if stream == STDIO else open(stream, "rb"))
        except OSError as e:
            raise InputError(f"cannot read {self.words}: {e.strerror or e}") from None
        self._origin = _file_start(self._file)  # None for a pipe
        self._head = b""  # its first bytes, looked at before FFmpeg reads it (peek)
        self._at = 0  # how much of them FFmpeg has read
        self.opened = None  # the container the look opened, for the run
        self.ahead = None  # what the look read of it ahead of the run, which reads it first (video_packets._Ahead)

    def seekable(self) -> bool:
        """Whether it is a file, which FFmpeg may go back in (PyAV asks)."""
        return self._origin is not None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            at = self._file.seek(offset + (self._origin if whence == os.SEEK_SET else 0), whence)
        except OSError as e:
            raise InputError(f"cannot read {self.words}: {e.strerror or e}") from None
        return at - self._origin

    def tell(self) -> int:
        return self._file.tell() - self._origin

    def read(self, size: int = -1) -> bytes:
        if self._at < len(self._head):
            end = len(self._head) if size < 0 else self._at + size
            data = self._head[self._at:end]
            self._at += len(data)
            return data
        try:
            return self._file.read(size)
        except OSError as e:
            raise InputError(f"cannot read {self.words}: {e.strerror or e}") from None
        except KeyboardInterrupt:
            raise Interrupted from None

    def peek(self, size: int) -> bytes:
        """Its first ``size`` bytes (fewer where it ends sooner), read now where not
        yet read, before FFmpeg reads any. It waits for no more than that: a video
        still being made may have sent no more yet. A file is gone back to its start."""
        if self.seekable():
            self.seek(0)
            head = self.read(size)
            self.seek(0)
            return head
        if self._at:
            raise InputError(f"{self.words} cannot be read again from its start: give the video as a file")
        more = getattr(self._file, "read1", self._file.read)
        while len(self._head) < size:
            try:
                data = more(size - len(self._head))
            except OSError as e:
                raise InputError(f"cannot read {self.words}: {e.strerror or e}") from None
            if not data:
                break
            self._head += data
        return self._head[:size]

    def close(self) -> None:
        """Closes a pipe it opened (standard input stays open)."""
        if self._file is not sys.stdin.buffer:
            self._file.close()

    def __str__(self) -> str:
        return self.words


# An MP4's index (moov) goes at its end, once every frame's place is known, or first,
# gone back to; fragmented, an empty one goes first and each keyframe's run of frames
# after it in a box (moof) of its own, placed from that box, as it is made. The index
# waits for the first run (delay_moov) to hold the edit lists that start the picture
# at 0 and cut the AAC priming: without them every stream of a video with B-frames
# started 2 frames late (83 ms at 24 fps), the priming played.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof"}
# The containers a stream named with their suffix is written in, as it is made: FFmpeg's
# muxer, its settings and the container's name. Others get Matroska, with a warning:
# some go back to finish the video (an AVI's header holds its length and frame count,
# its index comes last: one of 1 s written into a pipe read back as 137 s long).
_TS = ("mpegts", None, "MPEG-TS")  # of 192-byte packets for the name output.m2ts, as a file
STREAMED = {".mkv": ("matroska", None, "Matroska"), ".webm": ("webm", None, "WebM"),
            ".ts": _TS, ".mts": _TS, ".m2ts": _TS,
            ".mp4": ("mp4", _FRAGMENTED, "MP4"), ".m4v": ("ipod", _FRAGMENTED, "MP4"),
            ".mov": ("mov", _FRAGMENTED, "QuickTime")}


class VideoOutput:
    """A video written to a stream, in the container its name says where ``STREAMED``
    has it, else as Matroska (``unkept``: the suffix that said another): ``format``
    and ``options`` for FFmpeg's muxer, ``kind`` its name in words, ``name`` and
    ``suffix`` for what looks at a file's name (the choice of codecs, what the
    container holds). It is the file object PyAV writes, whose failures are
    InputErrors naming the stream. Standard output redirected to a file is written
    from where it stood, and gone back in to finish the video (its duration, its
    index), unless the file is written at its end (``>> f``), where a write cannot go
    back. ``file``: the stream opened already (a FIFO opened once a reader was found).
    ``dash``: the command takes ``-o -`` for standard output (the drop-in does not)."""

    def __init__(self, path: str | os.PathLike, file=None, dash: bool = True):
        self._stream = _standard(os.fspath(path), False)
        self.words = shown(self._stream, reading=False)
        asked = os.path.splitext(self._stream)[1].lower()  # none for -, /dev/stdout, /dev/fd/63
        self.unkept = asked if asked and asked not in STREAMED else None
        self.suffix = asked if asked in STREAMED else ".mkv"
        self.name = f"output{self.suffix}"
        self.format, self.options, self.kind = STREAMED[self.suffix]
        if file is None:
            _refuse_terminal(self._stream, False, dash)
        try:
            self.file = _waiting(file or (sys.stdout.buffer if self._stream == STDIO else _open_output(self._stream)))
        except OSError as e:
            raise InputError(f"cannot write {self.words}: {too_large(e, e.strerror or str(e))}") from None
        self._origin = None if _appends(self.file) else _file_start(self.file)  # None: one way
        self.written = 0  # bytes, wherever they went

    def write(self, data) -> int:
        try:
            done = self.file.write(data)
        except OSError as e:
            raise self._failed(e) from None
        except KeyboardInterrupt:
            raise Interrupted from None
        self.written += done
        return done

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as e:
            raise self._failed(e) from None
        except KeyboardInterrupt:
            raise Interrupted from None

    def seekable(self) -> bool:
        return self._origin is not None

    @property
    def closed(self) -> bool:
        """PyAV writes no end to a file closed already."""
        return self.file.closed

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.flush()
        try:
            at = self.file.seek(offset + (self._origin if whence == os.SEEK_SET else 0), whence)
        except OSError as e:
            raise self._failed(e) from None
        return at - self._origin

    def tell(self) -> int:
        return self.file.tell() - self._origin

    def _failed(self, e: OSError) -> InputError:
        if isinstance(e, BrokenPipeError):
            return self.closed_early()
        return InputError(f"cannot write {self.words}: {too_large(e, e.strerror or str(e))}")

    def closed_early(self) -> InputError:
        """The error for a stream its reader closed: Python's own complaint on the way
        out, flushing standard output again, is silenced."""
        if self._stream == STDIO:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return InputError(f"{self.words} was closed before the video was written whole")

    def close(self) -> None:
        """Closes a pipe it opened, so that its reader sees the video end (standard
        output stays open). A reader gone already has nothing left to tell."""
        if self.file is not sys.stdout.buffer:
            try:
                self.file.close()
            except OSError:
                pass

    def __str__(self) -> str:
        return self.words
