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
def captured_stderr(hand_back: bool = False):
    """What native code writes to fd 2 meanwhile, kept from the terminal: ncnn prints a
    block of device details when the instance is made, and its complaints about a
    model file as lines of its own. Yields a function that returns the text so far
    (from any thread: captures that overlap share one file, and fd 2 is given back
    when the last of them ends).

    ``hand_back``: where the block ends without an exception and without reading the
    text, what was caught goes on to fd 2 then, for a block whose native code says
    nothing unless it fails (and then its words are read for a message): fd 2 is the
    whole process's, and the lines a program's other threads wrote meanwhile were lost."""
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
                # The file, the fd 2 it stands in for, the captures in it, the spans
                # of the file dealt with (handed back to that fd 2, or kept by their
                # capture), and where the captures in progress that keep theirs began.
                _capture = [sink, saved, 0, [], []]
            _capture[2] += 1
            sink = _capture[0]
            start = os.fstat(sink.fileno()).st_size
            if not hand_back:
                _capture[4].append(start)
    except (OSError, ValueError):
        yield lambda: ""
        return

    read = False

    def text() -> str:
        nonlocal read
        read = True
        # Read where it is, not through the file's offset, which fd 2 shares to write
        # at; Windows has no pread: the offset is put back at the end.
        if hasattr(os, "pread"):
            return os.pread(sink.fileno(), max(os.fstat(sink.fileno()).st_size - start, 0),
                            start).decode(errors="replace")
        sink.seek(start)
        said = sink.read()
        sink.seek(0, os.SEEK_END)
        return said.decode(errors="replace")
    handed = False
    try:
        yield text
        if hand_back and not read:
            _hand_back(start)
            handed = True
    finally:
        with _capture_lock:
            _capture[2] -= 1
            if not hand_back:
                _capture[4].remove(start)
            if _capture[2] and not handed:
                # Its text is its own (kept from the terminal, or read into an error):
                # a capture beside it that hands back leaves it out.
                _capture[3].append((start, os.fstat(sink.fileno()).st_size))
            if _capture[2] == 0:
                sink, saved, _, _, _ = _capture
                _capture = None
                os.dup2(saved, 2)
                os.close(saved)
                sink.close()


def _hand_back(start: int) -> None:
    """What the capture in force caught from ``start`` on, written to the fd 2 it
    stands in for, less the spans dealt with already and what the captures in
    progress that keep their text caught since they began."""
    with _capture_lock:
        sink, saved, _, handed, keeping = _capture
        end = os.fstat(sink.fileno()).st_size
        spans, at = [], start
        for first, last in sorted(handed + [(began, end) for began in keeping]):
            if first > at:
                spans.append((at, min(first, end)))
            at = max(at, last)
        spans.append((at, end))
        try:
            for first, last in spans:
                if last <= first:
                    continue
                if hasattr(os, "pread"):
                    caught = os.pread(sink.fileno(), last - first, first)
                else:
                    sink.seek(first)
                    caught = sink.read(last - first)
                    sink.seek(0, os.SEEK_END)
                while caught:
                    caught = caught[os.write(saved, caught):]
        except OSError:
            return  # a closed terminal or pipe: nothing else written there gets through either
        handed.append((start, end))
