"""A long call whose caller hears a Ctrl-C at once.

Python raises a signal's exception in the main thread alone, and only between its own
steps: a Ctrl-C that lands while ncnn runs a window (which holds no GIL, and checks for
nothing) came out of ``Upscaler.upscale`` once the window was done, 9 s later for a
500x500 picture on 2 CPU threads, which runs as one window. Run in a helper thread,
the work leaves the caller waiting on a queue, where the KeyboardInterrupt comes at
once. The window itself cannot be stopped inside ncnn: the work stops at its next
report instead.
"""
from __future__ import annotations

import queue
import sys
import threading
from typing import Callable, TypeVar

from .errors import start_thread
from .locked_queue import Queue
from .signals import handled_in_python

T = TypeVar("T")
Report = Callable[[int, int], None]

# How long one wait for the helper lasts: where a wait cannot be interrupted (Windows),
# the signal is raised between two of them.
POLL_SECONDS = 0.25


class Abandoned(Exception):
    """Raised in the helper at its next report once its caller has left."""


def wanted() -> bool:
    """Whether a call made here hears a Ctrl-C only after its work: in the main thread,
    where a stop signal's handler is Python code that is not holding it. A program's
    own (a KeyboardInterrupt of its own, a clean exit) waited for ncnn's window as
    Python's did."""
    return threading.current_thread() is threading.main_thread() and bool(handled_in_python())


def _next(events: queue.Queue) -> tuple:
    while True:
        try:
            return events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue


def _answer(answers: queue.Queue, left: Callable[[], bool]) -> bool:
    """The caller's answer to a progress report; False once the caller has ``left``,
    though its answer never came: a second Ctrl-C can land in its clean-up before the
    answer is put, and the helper waited for it for ever."""
    while True:
        try:
            return answers.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if left():
                return False


def _inside(thread: int, frame) -> bool:
    """Whether the thread ``thread`` still runs inside ``frame``."""
    at = sys._current_frames().get(thread)
    while at is not None:
        if at is frame:
            return True
        at = at.f_back
    return False


def _tell_helper(stop: threading.Event, answers: queue.Queue, left: Callable[[], None]) -> None:
    """The caller's clean-up as it leaves, each step tried though a Ctrl-C lands in
    the one before (Python's own handler raises at each): one is on its way out
    already. One landing between the steps still skips the rest; the helper then
    sees the caller gone from its frame."""
    # answers.put: where the work waits on a progress this thread left.
    for step in (stop.set, lambda: answers.put(False), left):
        try:
            step()
        except KeyboardInterrupt:
            pass


def run(work: Callable[[Report], T], progress: Report | None, left: Callable[[], None]) -> T:
    """``work(report)``, run in a daemon helper thread while this thread waits. Each
    ``report(done, total)`` of the work calls ``progress`` in this thread, as a call
    made here would, and waits for it: an exception it raises ends the work (which
    raises Abandoned) and then comes out here. An exception that lands here while the
    work runs (a Ctrl-C) comes out at once: ``left()`` is called, and the work raises
    Abandoned at its next report."""
    # Over an RLock (see locked_queue): a Ctrl-C as this thread took the events' lock
    # back from the helper putting a progress released it under the helper, whose
    # notify raised RuntimeError.
    events: queue.Queue = Queue()
    answers: queue.Queue = Queue()
    stop = threading.Event()
    # The frame too: a Ctrl-C can land in the caller's finally before it sets stop.
    # Held in a list the helper empties as it ends: this frame holds the list, and kept
    # in a cycle with it, the picture and its result waited for a full collection.
    caller, here = threading.get_ident(), [sys._getframe()]

    def gone() -> bool:
        return stop.is_set() or not _inside(caller, here[0])

    def report(done: int, total: int) -> None:
        if stop.is_set():
            raise Abandoned
        if progress is not None:
            events.put(("progress", (done, total)))
            if not _answer(answers, gone):
                raise Abandoned

    def helper() -> None:
        try:
            events.put(("done", work(report)))
        except BaseException as e:  # a Ctrl-C's or exit's too: it goes on in the caller's thread
            # For a caller gone, without its traceback: kept, put where no one takes it,
            # it held the queue in a cycle, and the work's frames with it (the picture,
            # the result) until a full collection.
            events.put(("raised", e.with_traceback(None) if gone() else e))
        finally:
            here.clear()

    over = False
    try:
        # Started inside the try: a Ctrl-C can come out of start() with the helper
        # already running, and must reach it too (else it waits for ever on a
        # progress answer, and close() on it).
        start_thread(threading.Thread(target=helper, name="ncnn_sr upscale", daemon=True))
        while True:
            kind, value = _next(events)
            if kind == "progress":
                try:
                    progress(*value)
                except BaseException:
                    answers.put(False)
                    _next(events)  # the work's end, at once: it waits between two windows
                    over = True
                    raise
                answers.put(True)
                continue
            over = True
            if kind == "raised":
                try:
                    raise value
                finally:
                    # A local naming the error held this frame in a cycle through
                    # its traceback, and the work's frames (the picture) with it.
                    del value
            return value
    finally:
        if not over:
            _tell_helper(stop, answers, left)
