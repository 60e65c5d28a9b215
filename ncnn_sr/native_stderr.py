"""Native code's lines on fd 2 (ncnn's, libjpeg's) kept from the terminal. Apart from
the devices, so that writing a picture can quieten libjpeg without loading ncnn."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading

# The capture of fd 2 in force: its file, the fd 2 it took the place of, and how many
# captures share it. Each capture took fd 2 and gave back what it found: two that
# overlapped in two threads (loads at once) and ended in the order they began left
# fd 2 on the first one's file, deleted, and the process's later lines went into it.
_capture: list | None = None
_capture_lock = threading.Lock()


@contextlib.contextmanager
def captured_stderr():
    """What native code writes to fd 2 meanwhile, kept from the terminal: ncnn prints a
    block of device details when the instance is made, and its complaints about a
    model file as lines of its own. Yields a function that returns the text so far
    (from any thread: captures that overlap share one file, and fd 2 is given back
    when the last of them ends)."""
    global _capture
    try:
        if sys.stderr is not None:  # None under pythonw, or where fd 2 was closed at start
            sys.stderr.flush()
        with _capture_lock:
            if _capture is None:
                saved = os.dup(2)
                try:
                    sink = tempfile.TemporaryFile()
                    os.dup2(sink.fileno(), 2)
                except BaseException:
                    os.close(saved)
                    raise
                _capture = [sink, saved, 0]
            _capture[2] += 1
            sink = _capture[0]
            start = os.fstat(sink.fileno()).st_size
    except (OSError, ValueError):
        yield lambda: ""
        return

    def text() -> str:
        # Read where it is, not through the file's offset, which fd 2 shares to write
        # at; Windows has no pread: the offset is put back at the end.
        if hasattr(os, "pread"):
            return os.pread(sink.fileno(), max(os.fstat(sink.fileno()).st_size - start, 0),
                            start).decode(errors="replace")
        sink.seek(start)
        said = sink.read()
        sink.seek(0, os.SEEK_END)
        return said.decode(errors="replace")
    try:
        yield text
    finally:
        with _capture_lock:
            _capture[2] -= 1
            if _capture[2] == 0:
                sink, saved, _ = _capture
                _capture = None
                os.dup2(saved, 2)
                os.close(saved)
                sink.close()
