"""Errors a user can cause. Each message is the one line the command prints."""
from __future__ import annotations

import codecs
import errno
import functools
import itertools
import mmap
import ntpath
import os
import re
import shlex
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from .budget import cap_room, mb_words


@dataclass(frozen=True)
class FlagNames:
    """How a command's hints name ncnn-sr's options: as its own, or, for a command that
    has not got them (the drop-in), as ``command``'s, which has. ``library``: no
    command's, but the library's caller's, for words that go to the log, not into an
    error's Options (which say themselves either way): see ``named``."""

    command: str | None = None
    library: bool = False

    def __call__(self, flag: str) -> str:
        """``flag`` (with its value, if any: "--deinterlace off") as the user gives it."""
        return flag if self.command is None else f"'{self.command} {flag}'"

    def another(self, what: str, flag: str) -> str:
        """What follows "choose another" for another ``what`` (a codec), ``flag``'s value."""
        return flag if self.command is None else f"{what} with {self(flag)}"

    def named(self, flag: str, argument: str) -> str:
        """An option in a warning: ``argument`` as the library's caller gave it, else
        ``flag`` as this command takes it."""
        return argument if self.library else self(flag)

    def option(self, option: Option) -> str:
        """``option`` as this command says it: as it is where every command takes it."""
        return option.flag if option.everywhere else self(option.flag)


@dataclass(frozen=True)
class Option:
    """An option a hint names: ``flag`` as ncnn-sr's commands take it (each names it
    through its FlagNames), ``argument`` as the library's functions take it, each
    with the words around it where the two read differently ("with -m" against "as
    model_path="). ``everywhere``: the drop-in takes the flag too, with the same
    meaning (-m, -n, -s), so it says it as it is."""

    flag: str
    argument: str
    everywhere: bool = False


class NcnnSrError(Exception):
    """Base of every error ncnn-sr raises on purpose. Its message may be given in
    pieces, text and Options: str() says each Option as the library's argument,
    ``said`` as a command's flag."""

    def __init__(self, *parts):
        if not any(isinstance(p, Option) for p in parts):
            # Several pieces are one message: Exception's own str() said them as a tuple.
            super().__init__(*parts if len(parts) < 2 else ("".join(map(str, parts)),))
            self.parts = None
            return
        super().__init__("".join(p.argument if isinstance(p, Option) else str(p) for p in parts))
        self.parts = parts

    @property
    def pieces(self) -> tuple:
        """The message in its pieces, text and Options: for a message that says this
        one and more, as a command would say it too."""
        return getattr(self, "parts", None) or (str(self),)

    def said(self, flags: FlagNames | None = None) -> str:
        """The message with any option it names as ``flags`` name it (None: as the
        library's argument)."""
        if flags is None:
            return str(self)
        return "".join(flags.option(p) if isinstance(p, Option) else str(p) for p in self.pieces)

    def escaped(self) -> NcnnSrError:
        """This error, or where what it says holds an unprintable character (a line
        break from a file's name), a copy of it (its type, attributes and options
        kept) saying it escaped, on one line."""
        parts = self.pieces
        shown = tuple(replace(p, flag=one_line(p.flag), argument=one_line(p.argument)) if isinstance(p, Option)
                      else one_line(str(p)) for p in parts)
        return self if shown == parts else self._saying(*shown)

    def extended(self, *more) -> NcnnSrError:
        """A copy of this error (its type, attributes and options kept) whose message
        goes on with ``more``, text and Options."""
        return self._saying(*self.pieces, *more)

    def preceded(self, *more) -> NcnnSrError:
        """A copy of this error, as ``extended`` makes one, whose message opens with
        ``more``."""
        return self._saying(*more, *self.pieces)

    def __reduce__(self):
        # pickle and copy rebuild it without its __init__, which subclasses give other
        # arguments: HintedInputError's could not be unpickled, so a multiprocessing
        # Pool's result thread died on it and pool.map waited for ever.
        return _rebuilt, (type(self), self.args), self.__dict__

    def _saying(self, *parts) -> NcnnSrError:
        # Made without its own __init__, which may take other arguments (HintedInputError's).
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        NcnnSrError.__init__(copy, *parts)
        copy.__cause__, copy.__suppress_context__ = self.__cause__, self.__suppress_context__
        return copy


def _rebuilt(cls: type[NcnnSrError], args: tuple) -> NcnnSrError:
    """An error of ``cls`` saying ``args``, its attributes yet to be set (pickle's state)."""
    return cls.__new__(cls, *args)


def command_words(e: BaseException, flags: FlagNames = FlagNames()) -> str:
    """What a command prints for ``e``: its message with any option it names as
    ``flags`` name it (ncnn-sr's own flags by default), never as the library's
    argument. Every command prints a caught error through this."""
    return e.said(flags) if isinstance(e, NcnnSrError) else str(e)


class ModelError(NcnnSrError):
    """A model that cannot be found, verified or loaded."""


class ModelMissing(ModelError):
    """A model whose files are not there (as against there but unusable)."""


class DeviceFailure(NcnnSrError):
    """The device failed, not the work: the same work may succeed on another device,
    or with smaller tiles. A DeviceError, or lanes' UpscalingFailed (a frame that
    failed in an unforeseen way on each device in service); here, so that what
    recognises both (video's kept pieces) need not import lanes, which loads ncnn."""


class DeviceError(DeviceFailure):
    """A device that does not exist or cannot run the model."""


class CpuOutOfMemory(DeviceError):
    """The CPU out of memory even with the smallest tiles: smaller tiles cannot mend
    it, fewer pictures in work at once (a command's -j) may."""


class InputError(NcnnSrError):
    """A picture or array the engine cannot take, or an output it cannot write."""


class HintedInputError(InputError):
    """An InputError whose message ends with the option that gets past it, in brackets:
    str() names it as the library's argument, ``said`` as a command's flag."""

    def __init__(self, message: str, option: Option):
        super().__init__(message, " (", option, ")")
        self.message, self.option = message, option


class SettingError(InputError, ValueError):
    """A setting the library cannot run with, given to an Upscaler or its upscale, a
    Pipeline, a Lane, ordered_map, a Job, plan_jobs, EncodeOptions, upscale_video (its
    frames function, options, one its encoder cannot take, or progress),
    model_name_for (a scale), convert_weights (a scale or fp16), interpolate_weights
    (a weight), write_model (overwrite or trial), fetch_model (force or progress),
    Repeats (its function), mix_models, denoised_model, write_image or write_frames
    (fmt, quality, metadata or info): an InputError as the library's other refusals,
    and a ValueError, as these were raised first."""


class WriteOutOfMemory(InputError):
    """An output's writing that ran out of memory once begun (Pillow's MemoryError, or
    an encoder's out-of-memory status): the host's memory, which later outputs would
    meet alike, not the picture's fault; ``out_of_memory`` says so of it."""


class NoRoom(InputError):
    """An output's file system is full or read-only, or its folder was removed or made
    read-only during the run: no later output there can be written either."""


def failed_words(subject, words: str) -> str:
    """``words`` of an error that ended a run on ``subject`` (its input's path) before
    any output, said as the drop-in says a picture that failed: "a.png failed: file not
    found". The reference says "failed" wherever it cannot read a picture, write one or
    open a model file ("decode image a.png failed"), and its wrappers (Upscayl) take
    stderr without that word for a success, whatever the exit status: they announced an
    output never written. Words that say it already, or the reference's "invalid ..."
    of a bad flag (which they look for too), are kept as they are."""
    if "failed" in words or words.startswith("invalid "):
        return words
    return f"{subject} failed: {without_subject(subject, words)}"


def without_subject(subject, words: str) -> str:
    """``words`` without the ``subject: `` they may begin with, the name as it is or
    as one_line said it: the plain name alone was looked for, and one said escaped (a
    byte that is not UTF-8, a line break) was named twice, "caf\\xe9.png failed:
    caf\\xe9.png: not a picture"."""
    for said in dict.fromkeys((f"{subject}: ", f"{one_line(str(subject))}: ")):
        if words.startswith(said):
            return words[len(said):]
    return words


# A file's name may hold bytes that are not UTF-8 (Latin-1's b"caf\xe9.png" from an
# old archive, or any byte past ASCII where Python reads names as ASCII), which Python
# holds as surrogates (os.fsdecode: "caf\udce9.png"). A message shows each as the byte
# it stands for, \xe9, as a shell's $'...' writes it, not as Python's \udce9,
# which names no byte a user or a file has.
NOT_UTF8 = {c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)}


def shown_bytes(text: str) -> str:
    """``text`` with the bytes of a name that are not UTF-8 as \\xe9 (``NOT_UTF8``):
    the one way every message says them."""
    return text.translate(NOT_UTF8)


def shown_repr(text: str) -> str:
    """``repr(text)``, as a message quotes a name, with the bytes of a name that are
    not UTF-8 as shown_bytes says them (\\xe9), not as repr's \\udce9."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])", r"\1\\x\2", repr(text))


def _stream_escapes(e: UnicodeError) -> tuple[str, int]:
    # What a stream cannot encode: a name's byte that is not UTF-8 as shown_bytes says
    # it, a character the stream's encoding lacks (a Japanese name to cp1252) as
    # Python's backslashreplace does (\u6a21).
    if not isinstance(e, UnicodeEncodeError):
        raise e
    return "".join(NOT_UTF8.get(ord(c)) or c.encode("ascii", "backslashreplace").decode("ascii")
                   for c in e.object[e.start:e.end]), e.end


# The error handler the commands' standard output and error write with (entry.py).
STREAM_ERRORS = "ncnn_sr.names"
codecs.register_error(STREAM_ERRORS, _stream_escapes)


def one_line(text: str) -> str:
    """``text`` with its unprintable characters (line breaks above all) escaped: a
    name from a user's file, in a message, keeps the message one line. A name's bytes
    that are not UTF-8 are said as shown_bytes says them."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in shown_bytes(text))


_WINDOWS = os.name == "nt"
# Characters a word may hold and stay one literal word, unquoted, in cmd, PowerShell
# and a POSIX shell (letters and digits of any script besides).
_PLAIN = frozenset("\\/:._-+=")
# PowerShell takes the typographic single quotes for ' too.
_POWERSHELL_SINGLE_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")


def shell_word(text: str) -> str:
    """``text`` as one word of a command a message offers to copy into this system's
    shell, which reads it back as ``text``: quoted for a POSIX shell, or on Windows,
    where it needs any, for the shell this command was likely started from:
    PowerShell, whose double quotes expand $name and `, in single quotes; cmd, which
    expands %name% inside double quotes as well, in double quotes with each % left
    outside them."""
    if not _WINDOWS:
        return _posix_word(text)
    if text and all(c.isalnum() or c in _PLAIN for c in text):
        return text
    return _powershell_word(text) if _in_powershell() else _cmd_word(text)


# What $'...' holds as bash, zsh and ksh read it back: a name's byte that is not UTF-8
# as shown_bytes says it; a control character in echo's escapes for the common ones,
# a C0 one or DEL as its byte, a C1 one as its character (\u0085: its byte alone,
# \x85, is no UTF-8).
_DOLLAR_QUOTED = NOT_UTF8 | {9: "\\t", 10: "\\n", 13: "\\r"} \
    | {c: f"\\x{c:02x}" for c in [*range(32), 127] if c not in (9, 10, 13)} \
    | {c: f"\\u{c:04x}" for c in range(128, 160)}


def _posix_word(text: str) -> str:
    """``text`` quoted for a POSIX shell, a name's bytes that are not UTF-8 in $'...'
    (caf$'\\xe9'.png, as ls quotes them), which bash, zsh and ksh read back as those
    bytes: in single quotes, as shown_bytes says them, they were four characters. Its
    control characters go in $'...' too ($'\\n'): in single quotes a line break stayed
    one, which echo then showed as \\n, read back as a backslash and an n."""
    pieces = re.split(r"([\udc80-\udcff\x00-\x1f\x7f-\x9f]+)", text)
    return "".join(f"$'{piece.translate(_DOLLAR_QUOTED)}'" if odd else shlex.quote(piece) if piece
                   else "" for odd, piece in zip(itertools.cycle((False, True)), pieces)) or shlex.quote(text)


def _in_powershell() -> bool:
    """Whether this process was likely started from PowerShell (Windows only). Windows
    sets PSModulePath for every process to the system's module folders; PowerShell adds
    its per-user one, under the user's profile, for itself and what it starts."""
    profile = os.environ.get("USERPROFILE")
    if not profile:
        return False
    profile = ntpath.normcase(profile).rstrip("\\") + "\\"
    return any(ntpath.normcase(entry).startswith(profile)
               for entry in os.environ.get("PSModulePath", "").split(";"))


def _powershell_word(text: str) -> str:
    """``text`` in PowerShell's single quotes, which expand nothing. Windows PowerShell
    hands a word holding a space to a program in double quotes it does not escape, so
    a trailing backslash is doubled, else the program's runtime reads it as escaping
    the closing quote (a doubled separator in a path is one)."""
    word = "".join(c * 2 if c in _POWERSHELL_SINGLE_QUOTES else c for c in text)
    if any(c.isspace() for c in text):
        word += "\\" * (len(word) - len(word.rstrip("\\")))
    return f"'{word}'"


def _cmd_word(text: str) -> str:
    """``text`` for cmd: in double quotes, escaped as a program's C runtime reads them
    back (backslashes before a quote doubled, a quote as \\"), each % outside the
    quotes, where cmd reads %"PATH"% as a variable whose name holds quotes, which no
    variable has, and leaves it as it is."""
    pieces = [re.sub(r'(\\*)("|\Z)', lambda m: m[1] * 2 + ('\\"' if m[2] else ""), piece)
              for piece in text.split("%")]
    quoted = [f'"{piece}"' for piece in pieces]
    # Empty quotes at either end are noise; between two %, they keep %% from being one.
    if len(quoted) > 1:
        quoted[0] = quoted[0] if pieces[0] else ""
        quoted[-1] = quoted[-1] if pieces[-1] else ""
    return "%".join(quoted)


def in_one_line(function):
    """``function``, whose refusals show what a user gave (a model's name, a file's
    name, a key of their file, which may hold a line break) escaped, on one line: each
    of the type it was, with its attributes, options and cause."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except NcnnSrError as e:
            shown = e.escaped()
            if shown is e:
                # A local naming the error raised would hold it in a cycle through its
                # traceback, with every frame's locals (the picture read): freed by a
                # full collection alone.
                del shown
                raise
            try:
                raise shown.with_traceback(e.__traceback__) from e.__cause__
            finally:
                del shown
    return wrapper


# Initialisms whose first letter's name begins with a vowel sound, said as a word
# that does not: "a HEIF", not "an H-E-I-F".
_SAID_AS_WORDS = frozenset({"HEIF", "HEIC", "FLAC", "LUT", "NEF", "RAW"})
# Lowercase names spelled out letter by letter, or begun so ("an ndarray", "an mmap").
_SPELLED = ("nd", "mm", "mp3", "mp4", "mkv", "svg", "hdr", "rgb", "hevc", "h26", "exr", "fp16", "fp32")
# Words begun with a vowel whose first sound is none ("a one"), and with an h that is
# not said ("an hour").
_SAID_WITH_YOU = ("one", "once", "eu", "ewe")
_SILENT_H = ("hour", "honest", "honour", "honor", "heir")


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an", as its first sound asks, where a message builds
    one from a number or a name: "an 8x6 picture", "an 11000x20 result", "an RGBA
    picture", "an HTTPResponse", "a uint8 array", "an xarray.DataArray", "a U". The
    first letter alone read "a 8x6 picture" and "an U". A number is said as English
    says it (eight, eleven, eighteen, eighty ..., eleven thousand); a name in
    capitals, letter by letter unless it is said as a word (HEIF, FLAC)."""
    word = phrase.lstrip("(['\"")
    digits = re.match(r"\d+", word)
    if digits:
        run = digits[0]
        vowel = run[0] == "8" or (len(run) % 3 == 2 and run[:2] in ("11", "18"))
        return f"{'an' if vowel else 'a'} {phrase}"
    capitals = re.match(r"[A-Z]+(?![a-z])|[A-Z]+(?=[A-Z][a-z])", word)
    initialism = capitals[0] if capitals and (len(capitals[0]) > 1 or not word[1:2].isalpha()) else None
    if initialism is not None and initialism not in _SAID_AS_WORDS and \
            not any(word.startswith(w) for w in _SAID_AS_WORDS):
        vowel = initialism[0] in "AEFHILMNORSX"  # "ay", "eff", "aitch", "el", "em", "ess", "ex" ...
    else:
        lower = word.lower()
        if lower.startswith(_SAID_WITH_YOU):
            vowel = False
        elif lower.startswith(_SPELLED + _SILENT_H):
            vowel = True
        elif lower[:1] == "u":
            # "you" before a single consonant and a vowel, or a vowel (unit, user, uint8);
            # "uh" before two consonants (unsigned, upscaler, umbrella).
            vowel = not re.match(r"u([aeiou]|[b-df-hj-np-tv-z][aeiouy])", lower)
        elif lower[:1] == "x":
            vowel = not lower.startswith("xy")  # "ex" (xarray, xml), but "zy" (xylene)
        else:
            vowel = lower[:1] in ("a", "e", "i", "o")
    return f"{'an' if vowel else 'a'} {phrase}"


def describe(value) -> str:
    """A value a user gave, for a one-line message: its repr, or its type where the
    repr is long (an array passed by mistake prints over many lines)."""
    text = repr(value)
    return text if len(text) <= 60 and "\n" not in text else f"an object of type {type(value).__name__}"


def nul_in_path(name: str, given, what: str) -> str:
    """The message for a path ``name`` (``given`` as the caller gave it, to ``what``)
    that holds a NUL byte. A long one is a file's contents given in its path's place
    (``read_image(response.content)``), which the message printed whole: kilobytes of
    escapes on one line."""
    text = repr(name)
    if len(text) <= 200:
        return f"{text}: not a valid path (it holds a NUL byte)"
    unit = "bytes" if isinstance(given, bytes) else "characters"
    return f"{what} needs a file's path, got {len(given)} {unit} holding a NUL byte: a file's contents? give its path"


def file_contents(name: str, given) -> str | None:
    """What ``given`` (``name`` decoded) is where it is a file's contents given in a
    name's or path's place (``Upscaler(param.read_text())``), for a message; None for
    anything else. Such a name, long and holding a NUL byte or line breaks, was
    printed whole: kilobytes of escapes on one line."""
    if len(repr(name)) <= 200 or ("\0" not in name and "\n" not in name):
        return None
    unit = "bytes" if isinstance(given, bytes) else "characters"
    held = "holding a NUL byte" if "\0" in name else f"over {name.count(chr(10)) + 1} lines"
    return f"{len(given)} {unit} {held}: a file's contents? save them to a file and give its path"


def file_path(path, what: str, error: type[NcnnSrError] = InputError, kind: str = "a file's path") -> str:
    """``path`` as a str; ``error`` (read_weights' is a ModelError) for what is no
    usable path (None, a number, an array given in the path's place, a name holding
    a NUL byte), naming ``what`` took it and ``kind`` ("a folder's path") it takes."""
    try:
        name = os.fsdecode(os.fspath(path))
    except TypeError:
        raise error(f"{what} needs {kind}, got {no_path(path)}") from None
    if "\0" in name:  # the system cuts the name there: another file, or a bare ValueError
        raise error(nul_in_path(name, path, what))
    if not name:  # read, it was ": file not found"; written, a folder's name ending in a separator
        raise error(f"{what} needs {kind}, got {describe(path)}")
    return name


def no_path(given) -> str:
    """What ``given``, which is no path, is, and what to give instead: a file's
    contents, or an open file, are taken by no reader or writer here, which open a
    file again by its path (for its checks, and deeper samples through FFmpeg) or
    write beside it and rename."""
    if hasattr(given, "read") or hasattr(given, "write"):
        name = getattr(given, "name", None)
        if isinstance(name, (str, bytes)) and name:
            return f"an open file: give its path, {os.fsdecode(name)!r}"
        return f"an open file with no name ({with_article(type(given).__name__)}): give a file's path"
    if isinstance(given, (bytearray, memoryview)):
        return (f"{memoryview(given).nbytes} bytes ({with_article(type(given).__name__)}): a file's contents? save "
                "them to a file and give its path")
    return describe(given)


def os_reason(e: OSError) -> str:
    """Why a file operation failed, in words: "File exists" from making a folder means
    something that is not a folder is in the way, which it names."""
    if e.errno == errno.EEXIST and e.filename:
        return f"{e.filename} is {_in_the_way(Path(os.fsdecode(e.filename)))}"
    return too_many_files(e, too_large(e, e.strerror or str(e)))


def too_large(e: BaseException, words: str) -> str:
    """``words``, the reason ``e`` gives, with the cause where ``e`` is EFBIG ("File too
    large") under a limit on the size of this process's files (ulimit -f, a batch
    scheduler's): the disk and its file system, which have room, were suspected."""
    if getattr(e, "errno", None) != errno.EFBIG:
        return words
    try:
        import resource  # not on Windows, which has no such limit
    except ImportError:
        return words
    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY:
        return words  # the file system's largest file (FAT32's 4 GB)
    return f"{words} (past this process's limit on a file's size: ulimit -f)"


def too_many_files(e: BaseException, words: str) -> str:
    """``words``, the reason ``e`` gives, with the limit reached where ``e`` is EMFILE
    ("Too many open files"): this process's own (ulimit -n), which a larger one mends,
    not the file's or the system's."""
    if getattr(e, "errno", None) != errno.EMFILE:
        return words
    try:
        import resource  # not on Windows, whose C runtime has a limit of its own
    except ImportError:
        return words
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return words
    return f"{words} (past this process's limit on open files: ulimit -n {soft})"


def _in_the_way(path: Path) -> str:
    # A link that broke during a run (its folder removed, a drive unmounted) is what
    # to mend, not a file to move away.
    try:
        if path.is_symlink() and not path.exists():
            return broken_link(path)
    except OSError:
        pass  # gone or changed again since: the usual words
    return "a file, not a folder"


def broken_link(link: Path) -> str:
    """What a link that leads nowhere is, in words: "a link to X, which does not exist"."""
    if link_loops(link):
        return "a link that leads back to itself (a loop of links)"
    return f"a link to {os.readlink(link)}, which does not exist"


def link_loops(link: Path) -> bool:
    """Whether ``link`` leads back to itself, through other links or none."""
    return stat_refused(link, errno.ELOOP)


def stat_refused(path: Path, number: int) -> bool:
    """Whether the system refuses to look ``path`` up for the error ``number`` (errno)."""
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == number
    return False


# What a clone made without git-lfs holds in place of each large file: a text stub
# that names it, which would otherwise read as a truncated or foreign file.
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def stand_in(path, data) -> str | None:
    """The one line for ``data`` read from ``path`` when it stands in for the file a
    user meant: a Git LFS pointer, or the web page a file is shown on, saved instead
    of the file. Else None."""
    if data[:len(_LFS_POINTER)] == _LFS_POINTER:
        return f"{path} is a Git LFS pointer, not the file itself (cloned without git-lfs? run 'git lfs pull' there)"
    if is_web_page(data):
        return f"{path} is a web page (HTML), not the file itself: download it from its raw or release link"
    return None


def is_web_page(data) -> bool:
    """Whether ``data``, a file's first bytes, begin an HTML page."""
    start = bytes(data[:64]).removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return start.startswith((b"<!doctype html", b"<html"))


# A write refused for the disk's room: full, or the user's quota reached. Room made,
# the same write goes through (a kept download, a video's kept pieces).
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# What no retry can get past: the disk full (or over quota), or mounted read-only.
NO_ROOM = DISK_FULL | {errno.EROFS}


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is the host out of memory, whoever met it: a MemoryError (numpy's
    for a frame; PyAV raises FFmpeg's ENOMEM as one too), or FFmpeg's or the system's
    ENOMEM as the cause of the one-line error it was said in ("in.mp4: cannot decode:
    Cannot allocate memory"). Not the file's fault, nor the device's: the same run with
    more memory free, or needing less, gets past it. A bare MemoryError behind another
    error is not looked at: a damaged file's size, past any memory, says so. A
    WriteOutOfMemory is one too."""
    return isinstance(e, (MemoryError, WriteOutOfMemory)) or any(_no_memory(c)
                                                                 for c in (e, e.__cause__ or e.__context__))


def _no_memory(error: BaseException | None) -> bool:
    """Whether ``error`` is an ENOMEM, or FFmpeg's EAGAIN under a cap on the address
    space (ulimit -v): how it says a thread it could not start (swscale's, a decoder's),
    whose stack the cap left no room for. Said as "Resource temporarily unavailable", it
    blamed the file being read or written. FFmpeg's: PyAV's own protocol takes the EAGAIN
    of a decoder that wants more input; a pipe's is not this."""
    code = getattr(error, "errno", None)
    if code == errno.EAGAIN and type(error).__module__ == "av.error":
        # The room may be back once the error is raised (the threads started meanwhile
        # ended): the cap itself, where there is room now, says whose the EAGAIN was.
        return not mappable(default_thread_stack()) or address_space_capped()
    return code == errno.ENOMEM


def ffmpeg_short_of_memory(what: str, e: BaseException) -> OutOfMemoryFor | None:
    """``e``, what FFmpeg raised as ``what`` failed ("swscale cannot convert ...",
    "FFmpeg cannot decode in.mp4"), as the OutOfMemoryFor it is where the host's memory
    is why (out_of_memory: FFmpeg's ENOMEM, or its EAGAIN under a cap, how it says
    threads whose stacks the cap left no room for): ``what``, FFmpeg's reason, and the
    room left under a cap of the process's own. Said as a file's error, such a failure
    reached the commands as a bare "out of memory", where their other out-of-memory
    lines say what ran out. None where memory is not why."""
    if not out_of_memory(e):
        return None
    capped = cap_room()
    left = f" with {mb_words(capped[0])} left under {capped[1]}" if capped is not None else ""
    return OutOfMemoryFor(f"{what} ({getattr(e, 'strerror', None) or e}){left}")


def address_space_capped() -> bool:
    try:
        import resource  # not on Windows, which has no such cap
    except ImportError:
        return False
    return resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY


def host_out_of_memory(e: BaseException) -> MemoryError:
    """``e``, FFmpeg's or the system's ENOMEM (``out_of_memory``) said as a file's
    error ("in.mp4: cannot decode: Cannot allocate memory"), as the MemoryError it is,
    in the same words: the host's memory, not the file's fault, which the commands
    say as such (and a folder's later files would meet alike)."""
    return MemoryError(str(e.escaped() if isinstance(e, NcnnSrError) else e))


def start_thread(thread: threading.Thread) -> None:
    """``thread`` started, or a MemoryError where the system could not start it for
    want of memory for its stack (mapped as it starts: past a ulimit -v), which Python
    says as "RuntimeError: can't start new thread", as it says a limit on threads."""
    try:
        thread.start()
    except RuntimeError as e:
        # A thread's stack as the system maps it: the size threading.stack_size sets,
        # else the threads' default. 2 MB alone fitted where the 8 MB stacks of a
        # stack limit of 8 MB did not, and the traceback went through.
        if mappable(threading.stack_size() or default_thread_stack()):
            raise
        raise OutOfMemoryFor(f"cannot start a thread: no memory for its stack ({e})") from e


class OutOfMemoryFor(MemoryError):
    """The host out of memory for something its words name (a thread's stack), which
    the commands say after "out of memory: " (``said``). A bare MemoryError's words
    are not said: they are a file's error (host_out_of_memory's "in.png: cannot read:
    Cannot allocate memory"), or numpy's, which would blame the file."""

    @property
    def said(self) -> str:
        return str(self)


def mappable(size: int) -> bool:
    """Whether ``size`` bytes of address space can be mapped now (past a ulimit -v they
    cannot), as a thread's stack is. Ask outside any exception handler where a refusal
    follows: one raised inside it has the handled error as its context, which
    out_of_memory looks at."""
    try:
        mmap.mmap(-1, size).close()
    except OSError:
        return False
    return True


# glibc's default thread stack on x86-64 where the stack limit is unlimited; other
# machines' are larger, and taking the least errs towards trying.
_LEAST_DEFAULT_STACK = 2 << 20


def default_thread_stack() -> int:
    """The stack glibc gives a thread not told its size: the stack limit (ulimit -s)
    where finite, as it stands now (glibc reads it as the process starts), else
    _LEAST_DEFAULT_STACK. The same where the limit cannot be read (Windows)."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    except (ImportError, OSError, ValueError):
        return _LEAST_DEFAULT_STACK
    return _LEAST_DEFAULT_STACK if soft == resource.RLIM_INFINITY else soft


def write_error_type(e: BaseException) -> type[InputError]:
    """The error type for a write that failed with ``e``: NoRoom where its disk is full
    or read-only, which no later output there gets past either, else InputError."""
    return NoRoom if getattr(e, "errno", None) in NO_ROOM else InputError


def cannot_write(target, e: OSError) -> InputError:
    """The one-line error for a write to ``target`` that failed with ``e``."""
    kind = write_error_type(e)
    reason = os_reason(e)
    if _WINDOWS and isinstance(e, FileNotFoundError) and len(os.path.abspath(target)) >= 260:
        reason += " (the path is 260 characters or longer: shorten it, or enable Windows's long paths)"
    return kind(f"cannot write {target}: {reason}")
