"""Files written whole or not at all: a temporary file beside the target, renamed over
it once complete, with the mode of the file it replaces, else the mode a new file of
this user gets."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from . import part_files
from .budget import size_words
from .errors import InputError, broken_link, cannot_write, link_loops, os_reason
from .signals import HeldInterrupts, ctrl_c_signals, held_ctrl_c


def ffmpeg_name(path: str | os.PathLike) -> str:
    """``path`` as a name FFmpeg takes for a file: "ep1:pilot.mkv" was a URL of the
    protocol "ep1", which it knows none of."""
    return f"file:{os.fspath(path)}"


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it; done once, at import, before any thread
    os.umask(mask)
    return mask


# mkstemp makes its file private (0600); the finished picture gets the mode any new
# file of this user would have.
_FILE_MODE = 0o666 & ~_process_umask()


def mode_for(target: Path) -> int:
    """The mode ``target`` is written with: that of the file there, which its owner
    may have made private (chmod 600), else a new file's."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode) & 0o777  # never a set-id bit
    except OSError:
        return _FILE_MODE


_WINDOWS = os.name == "nt"
_NOT_IN_WINDOWS_NAMES = frozenset('<>:"|?*/\\') | {chr(c) for c in range(32)}
# Devices in every folder, whatever the extension (nul.png, on Windows 10).
WINDOWS_CONSOLE = frozenset({"con", "conin$", "conout$"})
_WINDOWS_DEVICES = WINDOWS_CONSOLE | {"prn", "aux", "nul", *(f"{kind}{n}" for kind in ("com", "lpt")
                                                              for n in "123456789\u00b9\u00b2\u00b3")}


def windows_device(name: str) -> str | None:
    """The device a file named ``name`` (one part of a path) is on Windows, whatever
    its extension and spaces before it (nul.png, "con .txt"), lower case; or None."""
    stem = name.split(".", 1)[0].rstrip(" ").lower()
    return stem if stem in _WINDOWS_DEVICES else None


def windows_name_fault(name: str) -> str | None:
    """Why Windows cannot hold a file named ``name`` (one part of a path), or None.
    Written there, a name with a colon was a hidden stream of another file, one ending
    in a dot or space was another name, and NUL.png the null device."""
    bad = sorted(set(name) & _NOT_IN_WINDOWS_NAMES)
    if bad:
        return "Windows names hold none of " + " ".join(repr(c)[1:-1] for c in bad)
    if name.rstrip(". ") != name:
        return "Windows drops a dot or space at a name's end"
    if windows_device(name):
        return f"{name.split('.', 1)[0]} is a device's name on Windows"
    return None


def name_fault(name: str) -> str | None:
    """Why this system cannot hold a file named ``name`` (checked on Windows), or None."""
    return windows_name_fault(name) if _WINDOWS and name else None


# open() asks as the effective user; access() as the real one unless told.
_EFFECTIVE = os.access in os.supports_effective_ids


def write_protected(path: Path) -> bool:
    """Whether ``path`` is a file this user may not write. Renaming over a file needs
    no leave of the file's own: a picture its owner made read-only was replaced, where
    cp, a shell's > and the reference tool's fopen refuse (root may, as there)."""
    return path.is_file() and _not_writable(path)


def _not_writable(path: Path) -> bool:
    return not os.access(path, os.W_OK, effective_ids=_EFFECTIVE)


def write_target(path: str | os.PathLike, pipe: bool = False) -> Path:
    """The file a write to ``path`` by renaming over it should replace: the file a
    link points to (renamed over, the link itself would become a plain file), else
    ``path``. InputError for a device, FIFO or folder there, which renaming would
    replace rather than write to (as root, -o /dev/null.png made /dev/null a file),
    and for a file this user may not write. ``pipe``: a FIFO is taken, to be written
    into (``atomic_write``)."""
    return _write_target(path, pipe)[0]


# What _write_target says of a target behind a link: its file is not looked at again.
_UNKNOWN = -1


def _write_target(path: str | os.PathLike, pipe: bool) -> tuple[Path, int | None]:
    """``write_target(path, pipe)``, and the st_mode of the file it names as found
    (None: nothing there; _UNKNOWN behind a link), for ``atomic_write`` to ask no
    more of it."""
    target = Path(path)
    try:
        # One lstat answers each question of a name that is no link: a new file
        # (each picture's, asked of twice: the loader's check, the write) took 3.
        try:
            found = os.lstat(target).st_mode
        except (OSError, ValueError) as e:
            if isinstance(e, OSError) and not _nothing_there(e):
                raise
            found = None  # as Path.is_symlink, is_file and exists each take it
        if found is not None and stat.S_ISLNK(found):
            if not target.exists() and link_loops(target):  # realpath stops in the loop: the link was replaced
                raise InputError(f"cannot write {os.fspath(path)}: it is {broken_link(target)}")
            target, found = Path(os.path.realpath(target)), _UNKNOWN
            # Each question asked once, and only where the answers before leave it open.
            if target.is_file():
                regular, folder, protected = True, False, _not_writable(target)
            elif not target.exists():
                regular, folder, protected = True, False, False
            else:
                regular, folder, protected = pipe and is_fifo(target), target.is_dir(), False
        elif found is None:
            regular, folder, protected = True, False, False
        elif stat.S_ISREG(found):
            regular, folder, protected = True, False, _not_writable(target)
        else:
            regular, folder, protected = pipe and stat.S_ISFIFO(found), stat.S_ISDIR(found), False
    except OSError as e:  # a name too long for the file system, say
        raise cannot_write(os.fspath(path), e) from None
    if folder:
        raise InputError(f"cannot write {os.fspath(path)}: a folder of that name is there")
    if not regular:
        raise InputError(f"cannot write {os.fspath(path)}: not a regular file")
    fault = name_fault(target.name)
    if fault:
        raise InputError(f"cannot write {os.fspath(path)}: {fault}")
    if protected:
        raise InputError(f"cannot write {os.fspath(path)}: it is write-protected (read-only): make it writable "
                         "to replace it")
    return target, found


# The errors for which pathlib's is_symlink, is_file and exists answer False (Python 3.11).
_ABSENT_ERRNOS = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
_ABSENT_WINERRORS = (21, 123, 1921)  # not ready, an invalid name, links too deep


def _nothing_there(e: OSError) -> bool:
    return e.errno in _ABSENT_ERRNOS or getattr(e, "winerror", None) in _ABSENT_WINERRORS


def is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def reader_of(target: Path, named) -> int:
    """The FIFO ``target`` opened to write, as a descriptor that blocks; opened without
    blocking, so that one nothing reads is refused: the write would wait for ever."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise InputError(f"cannot write {named}: it is a pipe (FIFO) that nothing reads") from None
        raise cannot_write(named, e) from None
    os.set_blocking(fd, True)
    return fd


def file_in_the_way(path: str | os.PathLike) -> Path | None:
    """The file that ``path`` leads through as if it were a folder ("in.png" of
    "in.png/a.png", or of "in.png/"), where there is one: the system says only "Not a
    directory"."""
    own = (Path(path),) if os.path.basename(os.fspath(path)) in ("", ".") else ()  # Path drops the separator
    return next((p for p in (*own, *Path(path).parents) if p.exists() and not p.is_dir()), None)


def same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` are one file, by any path or link; False where either is
    not there (or no valid path)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_named_as_file(path: str, wanted: str) -> None:
    """InputError where ``path`` is written as a folder's, ending in a separator (or a
    separator and a dot): Path() drops them, and "out/" was written as a file named
    out. ``wanted`` says what to name instead ("the picture, such as out.png")."""
    if os.path.basename(path) in ("", "."):
        raise InputError(f"cannot write {path}: a name ending in {os.sep} (or {os.sep}.) is a folder's: "
                         f"name {wanted}")


class _PythonWrites:
    """A file whose bytes all go through its ``write``. Given a file descriptor,
    Pillow's JPEG encoder writes to it in C and takes a short write for a whole one:
    on a disk that filled up midway it left a truncated picture and no error."""

    def __init__(self, file):
        self._file = file
        self.wrote = False

    def write(self, data) -> int:
        written = self._file.write(data)
        self.wrote = self.wrote or written > 0  # see atomic_write's first byte
        return written

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name):
        return getattr(self._file, name)

# File systems hold names of at most 255 bytes, and a temporary name beside a file adds
# some to its name: a name that fits could then never be written. A name over this is
# cut short in the temporary name, told apart from others cut alike by a hash of it.
_TEMP_NAME_BYTES, _TEMP_NAME_CHARS = 200, 50
# Windows opens no path of 260 characters or more unless long paths are enabled: past
# this, a temporary name is the hash alone, for a path that fits to stay writable.
_WINDOWS_LONG_PATH = 200


def temp_stem(name: str, folder: str | os.PathLike | None = None) -> str:
    """``name`` as the start of a temporary name beside it in ``folder``: itself, or
    cut short."""
    whole = os.fsencode(name)
    if (_WINDOWS and folder is not None and len(name) > _HASHED_CHARS
            and len(os.path.abspath(os.path.join(folder, name))) > _WINDOWS_LONG_PATH):
        return f"~{_hashed(whole)}"  # only where shorter: a short name's hash lengthened its temporary path
    if len(whole) <= _TEMP_NAME_BYTES:
        return name  # as each picture's name is: no hash made for it
    return f"{name[:_TEMP_NAME_CHARS]}~{_hashed(whole)}"


_HASHED_CHARS = 13  # "~" and 12 hex digits


def _hashed(whole: bytes) -> str:
    return hashlib.sha256(whole).hexdigest()[:12]


def _said_removed(folder: Path, sizes: list[int]) -> None:
    """Warn of the part files of ``sizes`` removed from ``folder`` (part_files), by the
    folder's whole path: the current one was ".: removed ..."."""
    size = sum(sizes)
    shown = size_words(size)  # as a video's part file is said (video._part_file)
    one = len(sizes) == 1
    what, who = ("a hidden part file", "a run") if one else (f"{len(sizes)} hidden part files", "a run or runs")
    logging.getLogger("ncnn_sr").warning("%s: removed %s (%s) left by %s killed while writing there",
                                         os.path.abspath(folder), what, shown, who)


def atomic_write(path: str | os.PathLike, encode, shown: str | os.PathLike | None = None,
                 mode: int | None = None, pipe: bool = False) -> None:
    """``encode(binary file)`` writes ``path`` whole or not at all: into a hidden
    temporary file beside it (beside what a link points to), renamed over it once
    complete, with ``mode`` (default ``mode_for(path)``). Failures to write are
    InputErrors naming the file (``shown`` where the caller's own path is a temporary
    one the user never asked for). ``pipe``: a FIFO there gets the complete file's
    bytes, as a shell's > writes into it; one that nothing reads is refused."""
    target, found = _write_target(path, pipe)
    named = target if shown is None else shown
    folder = target.parent
    if found == _UNKNOWN:  # behind a link: its file asked of once for both
        try:
            found = os.stat(target).st_mode
        except OSError:
            found = None
    if mode is None:  # that of the file there, which its owner may have made private; else a new file's
        mode = _FILE_MODE if found is None else stat.S_IMODE(found) & 0o777  # never a set-id bit
    tmp = reader = lock = None
    try:
        if pipe and found is not None and stat.S_ISFIFO(found):
            reader = reader_of(target, named)  # before the work: nothing is made for a FIFO nothing reads
        # Its whole path found once for both (each found it, asking the system for
        # the current folder, each picture); its ".." left as they are, for the system
        # to follow, as it did for the folder named.
        where = folder if folder.is_absolute() else Path(os.getcwd()) / folder
        if (removed := part_files.sweep_once(where)):
            _said_removed(folder, removed)
        with held_ctrl_c():  # see _make_a_file
            # Locked while written (part_files): one a run killed outright left is
            # told from another run's in progress, and removed by the next run here.
            # Written through mkstemp's own descriptor: opened again by name, os.open's
            # was in text mode on Windows, each \n written a \r\n (the picture corrupt).
            tmp, fd, locked = part_files.open_part(where, temp_stem(target.name, folder), ".part")
            if locked:
                # Not empty from now on: earlier versions never took an empty part for
                # stale (it might have been one just made, not yet locked), and a small
                # picture's bytes wait in the buffer until the end: a run killed
                # meanwhile left empty parts (2 of 9 kills of a folder run of 16x16
                # pictures) that no run of theirs removed. The encoder writes over this
                # byte (or the file is cut back to nothing).
                os.pwrite(fd, b"\0", 0)
            lock = os.dup(fd) if locked else None  # holds the lock once the file object closes fd
    except BaseException as e:
        if lock is not None:
            os.close(lock)
        if reader is not None:
            os.close(reader)  # its reader sees the end
        if tmp is not None:  # made, and a Ctrl-C came meanwhile
            os.close(fd)
            os.unlink(tmp)
        if isinstance(e, NotADirectoryError) and (there := file_in_the_way(target)) is not None:
            raise InputError(f"cannot write {named}: {there} is a file, not a folder") from None
        if isinstance(e, FileNotFoundError) and not os.path.isdir(folder):
            # "No such file or directory" seemed to be of the file it was to make.
            why = f"is {broken_link(folder)}" if os.path.islink(folder) else "does not exist"
            raise InputError(f"cannot write {named}: its folder {folder} {why}") from None
        if isinstance(e, OSError):
            raise cannot_write(named, e) from None
        raise
    try:
        if reader is not None:
            # Read back through its descriptor alone: a write into a pipe waits on its
            # reader, which a Ctrl-C does not wait for (the pipeline), and the process's
            # hard exit then left the file behind.
            os.unlink(tmp)
        with os.fdopen(fd, "w+b") as f:
            encode(writes := _PythonWrites(f))
            if not writes.wrote:
                f.truncate(0)
            if reader is not None:
                f.seek(0)
                with open(reader, "wb", closefd=False) as into:
                    shutil.copyfileobj(f, into)
            elif hasattr(os, "fchmod"):  # Windows before Python 3.13 has none (nor modes past read-only)
                os.fchmod(f.fileno(), mode)
        if reader is None:
            os.replace(tmp, target)
    except BaseException as e:
        left = remove_part(tmp)
        error = cannot_write(named, e) if isinstance(e, OSError) and not isinstance(e, InputError) else e
        if left is not None and isinstance(error, InputError):
            error.left_behind = left  # for the caller to say: the error is the picture's
        if error is e:
            raise
        raise error from None
    finally:
        if lock is not None:
            os.close(lock)  # after the rename: until then the part is this run's
        if reader is not None:
            os.close(reader)


def remove_part(tmp: str | os.PathLike) -> str | None:
    """Remove ``tmp``, a write's temporary file; where it cannot be (its folder made
    read-only meanwhile), what is left, in words, for the caller to say."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass  # gone with its folder
    except OSError as e:
        return f"{tmp}: a temporary file that could not be removed ({os_reason(e)})"
    return None


def make_folder(folder: Path) -> None:
    """Make ``folder`` and its missing parents; InputError saying why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot make the folder {folder}: {os_reason(e)}") from None


@contextlib.contextmanager
def folder_made(folder: str | os.PathLike, kept_on: type[BaseException] | tuple[type[BaseException], ...] = ()):
    """Make ``folder`` and its missing parents for what the block writes there; when
    the block fails or is interrupted, take the folders it made back, as far as they
    are empty (one holding a download's kept bytes stays), unless with one of
    ``kept_on`` (another process uses them)."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]  # innermost first
    make_folder(folder)
    try:
        yield folder
    except BaseException as e:
        for p in made if not isinstance(e, kept_on) else ():
            try:
                p.rmdir()
            except OSError:
                break
        raise


def check_writable(folder: Path) -> None:
    """InputError unless a file can be made in ``folder``: into a folder the user may
    not write, each picture was upscaled only to fail (hours of a folder on the CPU).
    A file is made and removed, since permissions alone do not tell (network file
    systems, read-only mounts, root)."""
    _make_a_file(folder, f"cannot write into {folder}")


def _make_a_file(folder: Path, said: str) -> None:
    """Make a file of one byte in ``folder`` and remove it; InputError starting
    ``said`` where none can be made. A full disk makes an empty file."""
    # A Ctrl-C is held while the file is there: landing in mkstemp once it had made the
    # file, before its name came back, it left the file in the folder (a hidden .part
    # among the outputs). Python runs the handler between any two steps of its code.
    with HeldInterrupts(ctrl_c_signals()):
        try:
            fd, name = tempfile.mkstemp(prefix=".ncnn-sr-", suffix=".part", dir=folder)
        except OSError as e:
            raise InputError(f"{said}: {os_reason(e)}") from None
        try:
            os.write(fd, b"\0")
        except OSError as e:
            raise InputError(f"{said}: {os_reason(e)}") from None
        finally:
            os.close(fd)
            os.unlink(name)


def _present(path: Path, said: str) -> bool:
    """Whether ``path`` is there; InputError starting ``said`` where asking fails for
    another reason than its absence (a name too long for the file system was taken as
    absent, and failed later with a traceback)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # missing, or below a file (said as such above it)
        return False
    except OSError as e:
        raise InputError(f"{said}: {os_reason(e)}") from None
    return True


def check_folder(folder: str | os.PathLike) -> None:
    """InputError unless files can be written in ``folder``, made if missing: a file
    in its way, or a folder no file can be made in, failed a model's fetch or
    conversion only after its download or its work. Nothing is left made."""
    folder = Path(folder)
    said = f"cannot write into {folder}"
    there = next(p for p in (folder, *folder.parents) if _present(p, said))  # the root is there
    if not there.is_dir():
        what = broken_link(there) if there.is_symlink() and not there.exists() else "a file, not a folder"
        raise InputError(f"{said}: {'it' if there == folder else there} is {what}")
    _make_a_file(there, said)  # permissions alone do not tell (a read-only mount, root)


def mark_there(folder: Path, there: set) -> None:
    """Add ``folder``, which a run read or wrote in, and those above it to ``there``."""
    while folder not in there:
        there.add(folder)
        if folder.parent == folder:
            return
        folder = folder.parent


def gone_folder(folder: Path, there: set, listed_in: Path | None = None) -> tuple[Path, bool] | None:
    """The folder on ``folder``'s path that is gone now (removed, renamed, a drive
    unplugged): the topmost missing one, whose parent is still there; and whether the
    run stops for it. False for a sub-folder of ``listed_in``, the folder a plan listed
    the run's pictures below (-r): its pictures alone are lost. True for one that
    ``there`` (see mark_there) holds, a folder the run read in: its input. None where
    ``folder`` is there, or the missing one is neither (a Job made by hand naming a
    folder never there: the picture's failure alone)."""
    if folder.is_dir():
        return None
    while not folder.parent.is_dir() and folder.parent != folder:
        folder = folder.parent
    if listed_in is not None and listed_in in folder.parents:
        return folder, False
    # Looked at again once found in ``there``: a folder is added to it once made (a
    # save's output folder), which may be after the look above, as another thread
    # made it; it was taken for removed.
    return (folder, True) if folder in there and not folder.is_dir() else None


def input_gone(folder: Path, read_in: set, listed_in: Path | None = None) -> tuple[str, bool] | None:
    """After a file of ``folder`` could not be read: why, where a folder of it is gone
    (gone_folder, ``read_in`` its ``there``), in words, and whether the run stops for
    it (the folder given) or goes on (a sub-folder of ``listed_in``). The decision of a
    folder of pictures (loading) and of one of videos (batch_cli) alike. None: the
    failure is the file's alone."""
    gone = gone_folder(folder, read_in, listed_in)
    return None if gone is None else (moved_words(gone[0]), gone[1])


def went_with_input(output: Path, source: Path, listed_in: Path | None) -> str | None:
    """Where the output folder ``output`` went with the sub-folder of ``listed_in`` (-r)
    that held the input folder ``source``, as in place (-o the same as -i: a sub-folder
    is its own outputs' folder): that sub-folder's loss alone, in input_gone's words,
    and the run goes on (the other sub-folders' outputs are in them); else None."""
    gone = gone_folder(source, set(), listed_in)
    if gone is None or gone[1] or not (gone[0] == output or gone[0] in output.parents):
        return None
    return moved_words(gone[0])


def output_gone(folder: Path, written_into: set, written_below: Path | None = None) -> tuple[str, bool] | None:
    """Where the output folder ``folder`` is gone and the run wrote in it, or found
    outputs there (``written_into``, see mark_there): why, in removed_words naming the
    topmost folder gone, and whether the run stops for it (the folder given, or one
    above it: every later output would be lost alike) or goes on (a sub-folder of
    ``written_below``, the folder a plan mirrored its sub-folders into, -r: its own
    outputs alone are lost). Made again, what was written there before would be gone
    unsaid. None where ``folder`` is there, or was never there in this run: it is made
    as the outputs come (-r mirrors sub-folders so)."""
    gone = gone_folder(folder, written_into)
    if gone is None:
        return None
    return removed_words(gone[0]), written_below is None or written_below not in gone[0].parents


def broken_output(folder: Path, written_into: set, checked: Path | None) -> InputError | None:
    """After a write into ``folder`` failed: why no later output can be written there
    either, the run's cause to stop (pictures: pipeline; videos: batch_cli), else None
    (the failure is the file's). Gone where the run wrote there (output_gone; a
    sub-folder's loss alone is asked before); refusing a file now in ``checked``, a
    folder the run found writable (chmod)."""
    if (gone := output_gone(folder, written_into)) is not None:
        return InputError(gone[0])
    if checked is not None:
        try:
            check_writable(checked)
        except InputError as e:
            return e
    return None


# How removed_words ends: said of a sub-folder (console.sub_folder_gone), its outputs are
# lost as they are written, not as they are read.
REMOVED = "was removed during the run (what was written there is gone)"


def removed_words(folder: Path) -> str:
    """Why no output can be written in ``folder``, which a run wrote in and is gone."""
    return f"{folder} {REMOVED}"


def moved_words(folder: Path) -> str:
    """Why no input can be read in ``folder``, which a run read in and is gone."""
    return f"{folder} was removed or renamed during the run"
