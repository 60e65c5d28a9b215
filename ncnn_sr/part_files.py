"""A video's or picture's part file (the hidden file it is written into, renamed into
place once complete) that a run killed outright (SIGKILL, a crash, the power) left
behind: it is locked (flock) for as long as its writer lives, so a later run writing
the same output (a video), or into the same folder (pictures, ``sweep_once``), tells
one whose writer is gone, and removes it. Such a file was never cleaned: a 4K video
killed midway left gigabytes hidden in the output folder, and each rerun killed
again added its own. A file is removed only where it is proven this package's
and stale: named as only this module names them, not empty (its writer locks it
before anything is written), and free to lock. Where the system has no flock
(Windows), or the file system takes no lock, none is removed."""
from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

# Between the output's stem and mkstemp's 8 characters. Part files of earlier versions,
# never locked (".a.ncnn-sr-part.1a2b3c4d.mp4"), are named apart and left alone.
MARK = "ncnn-sr-part-locked"
_RANDOM = 8  # the characters tempfile.mkstemp puts between prefix and suffix


def open_part(folder: Path, stem: str, suffix: str) -> tuple[Path, int, bool]:
    """A new empty hidden file in ``folder`` for the output ``stem + suffix`` (``stem``
    as temp_stem makes it), its descriptor (binary, as mkstemp opens it), and whether
    it is locked: the lock holds until that descriptor and its copies are closed."""
    handle, name = tempfile.mkstemp(prefix=f".{stem}.{MARK}.", suffix=suffix, dir=folder)
    if fcntl is None:
        return Path(name), handle, False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return Path(name), handle, True
    except OSError:
        return Path(name), handle, False  # a file system that takes no lock: never taken for stale


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
    prefix = f".{stem}.{MARK}."
    removed = []
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:
        return []  # writing there says why
    for name in entries:
        if not (name.startswith(prefix) and name.endswith(suffix)
                and len(name) == len(prefix) + _RANDOM + len(suffix)):
            continue
        path = os.path.join(folder, name)
        size = _remove_if_stale(path)
        if size is not None:
            removed.append((name, size))
    return removed


# Folders already swept of stale picture parts this run (one listing per folder, not
# one per picture: a folder of 20000 outputs was to be listed 20000 times), by their
# path as asked (resolving it for each picture cost an lstat per part of the path) and
# as resolved (one folder named two ways is swept once).
_asked: set[str] = set()
_swept: set[str] = set()
_swept_lock = threading.Lock()  # pictures are written from several threads


def sweep_once(folder: Path) -> list[int]:
    """Remove, the first time this run asks of ``folder``, every stale part file there
    named as new_part names a picture's (any stem, suffix ".part"); the size of each."""
    if fcntl is None:
        return []
    asked = os.path.abspath(folder)
    with _swept_lock:
        if asked in _asked:
            return []
        _asked.add(asked)
        key = os.path.realpath(asked)
        if key in _swept:
            return []
        _swept.add(key)
    middle, end = f".{MARK}.", ".part"
    try:
        entries = [e.name for e in os.scandir(folder)]
    except OSError:
        return []  # writing there says why
    removed = []
    for name in entries:
        if not (name.startswith(".") and name.endswith(end)):
            continue
        at = name.rfind(middle)
        if at < 2 or len(name) != at + len(middle) + _RANDOM + len(end):
            continue
        if (size := _remove_if_stale(os.path.join(folder, name))) is not None:
            removed.append(size)
    return removed


def _remove_if_stale(path: str) -> int | None:
    """Remove ``path`` where its writer is gone; its size, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None  # empty: maybe made this instant, not yet locked by its writer
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
