"""A video's or picture's part file (the hidden file it is written into, renamed into
place once complete) that a run killed outright (SIGKILL, a crash, the power) left
behind: it is locked (flock) for as long as its writer lives, so a later run writing
the same output (a video), or into the same folder (pictures, ``sweep_once``), tells
one whose writer is gone, and removes it. Such a file was never cleaned: a 4K video
killed midway left gigabytes hidden in the output folder, and each rerun killed
again added its own. A file is removed only where it is proven this package's
and stale: named as only this module names them, and free to lock. A part takes
that name once its writer holds its lock: free to lock, it is a killed run's even
where empty, as a video's is until FFmpeg's first flush (a kill while the first
frames were upscaled left one that no run removed). On Linux it is made with no name
(O_TMPFILE), locked, then linked under that name, and no kill leaves anything of its
making. Elsewhere, and on file systems that make no such file, it is made under
another name, ``NEW``, then renamed: one under NEW's name, unlocked for the instant
between its making and its lock, is a killed run's where also empty and older than
NEW_AGE; a writer that stood still longer in that instant finds its part gone once
locked, and makes another (open_part). Where the system has no flock (Windows), or
the file system takes no lock, none is removed.

A run's temporary folder (standard input's copy, standard output's picture, a
denoise mix's model) is proven alike by a lock file in it (``temporary_folder``,
``sweep_folders_once``), and takes its name once that is locked and written (made
under NEW_FOLDER's, then renamed): one under NEW_FOLDER's, unlocked and older than
NEW_AGE, is a killed run's."""
from __future__ import annotations

import base64
import ctypes
import errno
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# Between the output's stem and mkstemp's 8 characters. Part files of earlier versions,
# never locked (".a.ncnn-sr-part.1a2b3c4d.mp4"), are named apart and left alone.
MARK = "ncnn-sr-part-locked"
# A part's name from its making until its lock is taken, where it is made by name (off
# Linux, or a file system that makes no file without one: _unnamed_part): renamed to
# MARK's once locked, which a live run does within microseconds. A SIGKILL in between
# left it empty, and no run removed it: one empty, unlocked and older than NEW_AGE
# seconds is a killed run's.
NEW = "ncnn-sr-part-new"
NEW_AGE = 60
_RANDOM = 8  # the characters tempfile.mkstemp puts between prefix and suffix
# Parts open_part makes in a row before it gives up: it makes another only where a
# sweep took the last for a killed run's, its writer standing still for NEW_AGE
# seconds between making and locking it; ten in a row is a file system that says
# each lock is held.
_TRIES = 10


def open_part(folder: Path, stem: str, suffix: str) -> tuple[Path, int, bool]:
    """A new empty hidden file in ``folder`` for the output ``stem + suffix`` (``stem``
    as temp_stem makes it), its descriptor (binary, as mkstemp opens it), and whether
    it is locked: the lock holds until that descriptor and its copies are closed. A
    locked one is named with MARK, taken only once locked; an unlocked one keeps NEW.
    One a sweep removed before it was locked (_remove_if_stale: unlocked, it seemed a
    killed run's) is made again: written into, it was lost at its rename."""
    if fcntl is not None and _TMPFILE and (made := _unnamed_part(folder, stem, suffix)) is not None:
        return made
    for _ in range(_TRIES):
        handle, name = tempfile.mkstemp(prefix=f".{stem}.{NEW}.", suffix=suffix, dir=folder)
        if fcntl is None:
            return Path(name), handle, False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held by a sweep, which goes on to remove it
        except OSError:
            return Path(name), handle, False  # a file system that takes no lock: never taken for stale
        else:
            if (locked := _named_locked(Path(name))) is not None:
                return locked, handle, True
        os.close(handle)
    raise BlockingIOError(errno.EAGAIN, f"each part file made was removed as stale ({_TRIES} made)", str(folder))


# Linux's flag that makes a file with no name in a folder, to link there later; 0
# elsewhere (macOS and the BSDs have none).
_TMPFILE = getattr(os, "O_TMPFILE", 0) if sys.platform.startswith("linux") else 0
# Names tried for an unnamed part before it is made by mkstemp: each taken is one
# chance in 32**8.
_LINK_TRIES = 100


def _unnamed_part(folder: Path, stem: str, suffix: str) -> tuple[Path, int, bool] | None:
    """open_part's file, made with no name, locked, then linked under MARK's: never
    named and unlocked, so a run killed (SIGKILL) as it made it left nothing. Made
    under NEW's name, a kill there left an empty file for NEW_AGE seconds, which a
    rerun at once wrote beside, and which stayed where no run came after. None where
    the system or the file system makes no file without a name (NFS, overlayfs before
    Linux 6.6), or it can be neither locked nor linked (no /proc): mkstemp makes it,
    and says why where it cannot be made at all."""
    try:
        handle = os.open(folder, _TMPFILE | os.O_RDWR, 0o600)  # as mkstemp's
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Linked by its /proc path, followed (AT_SYMLINK_FOLLOW), as an unprivileged
        # process can: os.link follows it only given a src_dir_fd, which an absolute
        # path leaves unused. A link never replaces what has the name.
        for _ in range(_LINK_TRIES):
            name = Path(folder, f".{stem}.{MARK}.{_random_name()}{suffix}")
            try:
                os.link(f"/proc/self/fd/{handle}", name, src_dir_fd=handle, follow_symlinks=True)
            except FileExistsError:
                continue
            return name, handle, True
    except OSError:
        pass
    os.close(handle)
    return None


def _random_name() -> str:
    """_RANDOM characters, as a part's name holds between its mark and its suffix."""
    return base64.b32encode(os.urandom(_RANDOM * 5 // 8)).decode("ascii").lower()


def _named_locked(made: Path) -> Path | None:
    """``made`` (NEW's name), now locked, under MARK's: where it cannot be (a name
    taken, one chance in 37**8; a folder made read-only meanwhile), under NEW's
    still, never swept as its lock is held. None where ``made`` is gone: swept
    before it was locked.

    One rename, so that the part has one name whatever befalls the folder: a link
    to MARK's name, then the unlink of NEW's, left it under both where the folder
    was made read-only between them, and a run warned of one."""
    locked = made.with_name(made.name.replace(f".{NEW}.", f".{MARK}.", 1))
    try:
        _rename_no_replace(made, locked)
    except FileExistsError:
        return made
    except FileNotFoundError:
        return None  # or its folder removed: the next try says so
    except OSError:
        return made
    return locked


def _renameat2():
    """Linux's renameat2, which renames without replacing in one call; None where
    the C library has none (before glibc 2.28, other systems)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    call.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    call.restype = ctypes.c_int
    return call


_RENAMEAT2 = _renameat2()
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def _rename_no_replace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; FileExistsError where ``dst`` is there. Without
    renameat2 (or a file system that refuses its flag), a check, then a rename:
    nothing takes MARK's name between the two, as only the file of NEW's name
    (``src``, ours) is ever renamed to it."""
    if _RENAMEAT2 is not None:
        if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), os.fspath(src), None, os.fspath(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dst))
    os.rename(src, dst)


def new_part(folder: Path, stem: str, suffix: str) -> tuple[Path, int | None]:
    """``open_part``'s file, and the descriptor that holds its lock, to close once the
    file is renamed into place or removed (None where no lock was taken)."""
    name, handle, locked = open_part(folder, stem, suffix)
    if locked:
        return name, handle
    os.close(handle)
    return name, None


def remove_stale(folder: Path, stem: str, suffix: str) -> list[tuple[str, int]]:
    """Remove the part files for the output ``stem + suffix`` in ``folder`` whose
    writer is gone; (name, bytes) of each removed."""
    if fcntl is None:
        return []
    removed = []
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:
        return []  # writing there says why
    for name in entries:
        if (named := _named_part(name, suffix)) is None or named[0] != stem:
            continue
        if (size := _remove_if_stale(os.path.join(folder, name), named[1] == NEW)) is not None:
            removed.append((name, size))
    return removed


def _named_part(name: str, suffix: str) -> tuple[str, str] | None:
    """The stem and the mark (MARK or NEW) of ``name`` where open_part names a part
    so, with ``suffix``; else None."""
    if not (name.startswith(".") and name.endswith(suffix)):
        return None
    head = name[:len(name) - _RANDOM - len(suffix)]  # ".{stem}.{mark}."
    for mark in (MARK, NEW):
        if head.endswith(f".{mark}."):
            return head[1:-len(mark) - 2], mark
    return None


# Folders already swept of stale picture parts this run (one listing per folder, not
# one per picture: a folder of 20000 outputs was to be listed 20000 times), by their
# path as asked (resolving it for each picture cost an lstat per part of the path) and
# as resolved (one folder named two ways is swept once). Forgotten as a run starts
# (forget_swept), and the least recently asked beyond KEEP_SWEPT: kept for the
# process's life, they grew in a library user's long-lived process with every folder
# written into, and a folder swept once was never swept again, days later.
KEEP_SWEPT = 256  # a folder forgotten and asked again is listed once more
_asked: OrderedDict[str, None] = OrderedDict()
_swept: OrderedDict[str, None] = OrderedDict()
_swept_lock = threading.Lock()  # pictures are written from several threads


def forget_swept() -> None:
    """Sweep every folder again the next time it is asked of: a run starts."""
    with _swept_lock:
        _asked.clear()
        _swept.clear()


def _seen(kept: OrderedDict, key: str) -> bool:
    """Whether ``kept`` holds ``key``; it does from now on, as the most recent."""
    if key in kept:
        kept.move_to_end(key)
        return True
    kept[key] = None
    if len(kept) > KEEP_SWEPT:
        kept.popitem(last=False)
    return False


def sweep_once(folder: Path) -> list[int]:
    """Remove, the first time this run asks of ``folder``, every stale part file there
    named as new_part names a picture's (any stem, suffix ".part"); the size of each."""
    if fcntl is None:
        return []
    asked = os.path.abspath(folder)
    with _swept_lock:
        if _seen(_asked, asked) or _seen(_swept, os.path.realpath(asked)):
            return []
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:
        return []  # writing there says why
    removed = []
    for name in entries:
        if (named := _named_part(name, ".part")) is None or not named[0]:
            continue
        if (size := _remove_if_stale(os.path.join(folder, name), named[1] == NEW)) is not None:
            removed.append(size)
    return removed


# The file in a temporary folder that its run holds locked for the folder's life.
FOLDER_LOCK = ".ncnn-sr-lock"
# Between a temporary folder's prefix and mkdtemp's characters from its making until
# its lock file is locked and written ("ncnn-sr-stream-new-1a2b3c4d"), renamed then
# (without it: "ncnn-sr-stream-1a2b3c4d"), which a live run does within microseconds.
# A SIGKILL in between left a folder with no lock file, or an empty one, that no run
# removed, as a live run's looks so for that instant: one under this name, holding
# no more than its lock file, free to lock and older than NEW_AGE, is a killed run's.
NEW_FOLDER = "new-"


def temporary_folder(prefix: str) -> tuple[Path, int | None]:
    """A new temporary folder named ``prefix`` and mkdtemp's characters, marked as a
    live run's (lock_folder) before it takes that name, and the descriptor that holds
    its lock, to close once the folder is removed (None where no lock was taken).
    One a sweep removed before it was named (_remove_new_folder_if_stale: unlocked,
    it seemed a killed run's) is made again."""
    if fcntl is None:
        return Path(tempfile.mkdtemp(prefix=prefix)), None
    for _ in range(_TRIES):
        made = Path(tempfile.mkdtemp(prefix=prefix + NEW_FOLDER))
        lock = lock_folder(made)
        # Named even where no lock was taken (no room for its file, a file system that
        # takes none): under its own name, one with no lock file, or an empty one, is kept.
        if (folder := _named_folder(made, prefix)) is not None:
            return folder, lock
        if lock is not None:
            os.close(lock)
    raise BlockingIOError(errno.EAGAIN, f"each temporary folder made was removed as stale ({_TRIES} made)",
                          tempfile.gettempdir())


def _named_folder(made: Path, prefix: str) -> Path | None:
    """``made`` (NEW_FOLDER's name) under its own: where that is taken (one chance in
    37**8), under NEW_FOLDER's still, never swept while its lock is held. None where
    ``made`` is gone: swept before it was named."""
    named = made.with_name(prefix + made.name[len(prefix + NEW_FOLDER):])
    if os.path.lexists(named):  # a rename would take the place of an empty folder
        return made
    try:
        os.rename(made, named)
    except FileNotFoundError:
        return None
    except OSError:  # taken meanwhile, and not empty
        return made
    return named


_folders_swept: set[str] = set()  # the prefixes whose stale folders this process removed


def sweep_folders_once(parent: Path, prefix: str) -> None:
    """Remove, once a process for each ``prefix``, the stale temporary folders of
    ``prefix`` in ``parent`` (remove_stale_folders): one a run killed outright left
    (SIGKILL, a crash, the power) stayed for good, as large as what it held."""
    if prefix in _folders_swept:
        return
    _folders_swept.add(prefix)
    # Not held from Ctrl-C: a folder half removed keeps its lock file, and is found again.
    remove_stale_folders(str(parent), prefix)


def lock_folder(folder: Path) -> int | None:
    """Mark ``folder``, just made, as a live run's: a file in it locked until the
    descriptor returned is closed (None where no lock could be taken). Locked before
    its one byte is written: an empty one is a lock not taken, or not yet."""
    if fcntl is None:
        return None
    try:
        fd = os.open(os.path.join(folder, FOLDER_LOCK), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, b"\0")
    except OSError:
        os.close(fd)
        return None
    return fd


def remove_stale_folders(parent: str, prefix: str) -> int:
    """Remove the folders in ``parent`` named ``prefix`` and mkdtemp's 8 characters,
    this user's, whose lock (lock_folder) no live run holds; how many. A folder with
    no lock file, or an empty one (an earlier version's, whose run may live, or
    another program's), is left alone. So are those of NEW_FOLDER's name, but where
    a run was killed making them (_remove_new_folder_if_stale)."""
    if fcntl is None:
        return 0
    try:
        entries = [e.name for e in os.scandir(parent)]
    except OSError:
        return 0
    removed = 0
    for name in entries:
        if not name.startswith(prefix):
            continue
        if len(name) == len(prefix) + _RANDOM:
            removed += _remove_folder_if_stale(os.path.join(parent, name))
        elif len(name) == len(prefix + NEW_FOLDER) + _RANDOM and name.startswith(prefix + NEW_FOLDER):
            removed += _remove_new_folder_if_stale(os.path.join(parent, name))
    return removed


def _remove_folder_if_stale(folder: str) -> bool:
    try:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return False
    except OSError:
        return False
    return _remove_once_unlocked(folder, made=False)


def _remove_new_folder_if_stale(folder: str) -> bool:
    """Remove ``folder`` (NEW_FOLDER's name) where a run was killed making it: this
    user's, older than NEW_AGE, holding nothing but its lock file, if that, free to
    lock. A live run's is renamed within microseconds; one that stood still longer
    makes another (temporary_folder)."""
    try:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or time.time() - st.st_mtime < NEW_AGE:
            return False  # the lock file's making changes the folder's time
        held = os.listdir(folder)
        if not held:
            os.rmdir(folder)  # not where its lock file was made meanwhile
            return True
        if held != [FOLDER_LOCK]:
            return False  # more than a run making it holds: not a run's, or not ours
    except OSError:
        return False
    return _remove_once_unlocked(folder, made=True)


def _remove_once_unlocked(folder: str, made: bool) -> bool:
    """Remove ``folder`` where its lock file is free to lock: its run is gone. A run's
    folder of its own name (not ``made``: renamed once locked and written) has a lock
    file of one byte, and its other files go first, the lock last, so a removal cut
    short is found again; one a run was making (``made``) holds the lock file alone,
    empty or not."""
    try:
        fd = os.open(os.path.join(folder, FOLDER_LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        lock = os.fstat(fd)
        if not stat.S_ISREG(lock.st_mode) or (lock.st_size == 0 and not made):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its run lives (one being made: about to name it)
        if not made:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name != FOLDER_LOCK:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
        os.unlink(os.path.join(folder, FOLDER_LOCK))
        os.rmdir(folder)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _remove_if_stale(path: str, new: bool = False) -> int | None:
    """Remove ``path`` where its writer is gone; its size, else None. ``new``: it is
    named NEW's, and only one empty and older than NEW_AGE can be a killed run's."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None  # MARK's, empty or not, is named a part once its writer held it (open_part)
        if new and (st.st_size or time.time() - st.st_mtime < NEW_AGE):
            return None  # may be one just made, not yet locked; one written into was never killed so
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # its writer lives (another run writing the same output)
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None  # another file under the name meanwhile
        os.unlink(path)
        return st.st_size
    except OSError:
        return None
    finally:
        os.close(fd)
