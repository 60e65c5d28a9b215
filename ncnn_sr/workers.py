"""What a run's threads are made of: the worker thread that can be waited for across
Ctrl-C, the queue the proc workers take pictures and calls for help from, an
animation's frames that they share, and the STOP a worker ends on. A Pipeline and
ordered_map both run on them."""
from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Callable

import numpy as np

from .engine import Upscaler
from .errors import start_thread
from .locked_queue import Ended, Queue


STOP = None  # the sentinel a worker ends on


# Every condition the main thread waits on with a worker is over an RLock: see locked_queue.
# Its Queue and Ended are still taken from here (pipeline, the tests).
__all__ = ["STOP", "Cancelled", "ProcQueue", "Queue", "Ended", "Frames", "Worker", "join_workers"]


class Cancelled(Exception):
    """Raised inside a proc worker's upscale when the run is cancelled."""


class ProcQueue:
    """What proc workers take: pictures, at most ``size`` waiting (``put`` raises
    queue.Full after ``timeout`` as queue.Queue does), and before them animations'
    calls for help to the workers on GPUs, or on the CPU. Those are not bounded by
    ``size``, so a worker asking for help never waits: each animation in progress
    asks for at most one per other worker. Nor are pictures given back (``retry``),
    which go before every other; so that one always finds a worker, a STOP is not
    taken while a picture is being worked on (from ``get`` to ``done``). A worker
    whose device is out of service takes only its STOP, until it is back. ``workers``
    is how many call ``get``, the proc workers."""

    def __init__(self, size: int, workers: int = 1):
        self._size, self._workers = size, workers
        self._pictures: deque = deque()
        self._helps: dict[bool, deque] = {True: deque(), False: deque()}  # by on_gpu
        self._working = 0  # pictures taken and not done
        # The workers that have looked at the queue as it is, and wait: once every one
        # has, none in work, nothing moves on unless one takes what it was passing over.
        self._looked: set[int] = set()
        self._stuck = False
        lock = threading.RLock()  # see locked_queue's note
        self._not_empty, self._not_full = threading.Condition(lock), threading.Condition(lock)

    def put(self, item, timeout: float | None = None) -> None:
        with self._not_full:
            if not self._not_full.wait_for(lambda: len(self._pictures) < self._size, timeout):
                raise queue.Full
            self._pictures.append(item)
            self._changed()  # the one notify woke could be out of service

    def ask_help(self, frames: Frames, count: int, on_gpu: bool) -> None:
        """Call ``count`` workers on GPUs (``on_gpu``), or on the CPU, to ``frames``,
        ahead of every picture."""
        with self._not_empty:
            self._helps[on_gpu].extend([frames] * count)
            self._changed()  # a notify(count) could wake the other kind's workers only

    def get(self, on_gpu: bool, serving: Callable[[], bool] = lambda: True,
            takes: Callable[[object, bool], bool] = lambda item, stuck: True):
        """The next call for help to a worker on a GPU (``on_gpu``) or the CPU, else
        the first picture it ``takes``; only a STOP while not ``serving`` (both read
        under the lock: a change to them is followed by ``wake``). ``takes(picture,
        stuck)`` is asked again with ``stuck`` where none was taken by any worker, each
        having looked at the queue as it is, and no picture is in work, so none will be
        done meanwhile. (Stuck once no picture was in work, a worker took a picture
        another was about to free: failed, as none could take it, while that one was
        yet to look.)"""
        helps = self._helps[on_gpu]
        pictures = self._pictures
        me = threading.get_ident()
        with self._not_empty:
            while True:
                on = serving()
                if on and helps:
                    self._looked.discard(me)
                    return helps.popleft()
                if pictures and pictures[0] is STOP:
                    if not self._working:
                        index = 0
                        break
                elif on:
                    index = self._first(takes, False)
                    if index is None and self._stuck:
                        index = self._first(takes, True)
                    if index is not None:
                        break
                self._looked.add(me)
                if not self._stuck and not self._working and len(self._looked) >= self._workers:
                    self._stuck = True
                    self._not_empty.notify_all()  # each looks again, for what it passed over
                    continue
                self._not_empty.wait()
            self._looked.discard(me)
            self._not_full.notify()
            item = pictures[index]
            del pictures[index]
            self._working += item is not STOP
            return item

    def _first(self, takes: Callable[[object, bool], bool], stuck: bool) -> int | None:
        """Where the first picture is that ``takes(picture, stuck)``, if any; under the lock."""
        # Given back, pictures are ahead of every STOP.
        return next((i for i, item in enumerate(self._pictures) if item is not STOP and takes(item, stuck)), None)

    def retry(self, item) -> None:
        """Give back a picture taken, for another worker, before every other; ``done``
        is still to be called for it."""
        with self._not_empty:
            self._pictures.appendleft(item)
            self._changed()

    def wake(self) -> None:
        """Every waiting worker looks again (a device back in service, the run halted)."""
        with self._not_empty:
            self._changed()

    def done(self) -> None:
        """A picture taken is done with (written on, failed, or given back)."""
        with self._not_empty:
            self._working -= 1
            if not self._working:
                self._changed()  # the workers waiting to take a STOP

    def _changed(self) -> None:
        """Under the lock: every waiting worker looks again, at a queue none has seen."""
        self._looked.clear()
        self._stuck = False
        self._not_empty.notify_all()


class Frames:
    """An animation's frames, upscaled by whichever workers call ``work``: each frame
    once, its result in its place. After the first failure (Cancelled too) no more
    frames are taken, and ``result`` raises it."""

    def __init__(self, frames: tuple[np.ndarray, ...], upscale: Callable[[Upscaler, np.ndarray], np.ndarray]):
        self._frames, self._upscale = frames, upscale
        self._done: list = [None] * len(frames)
        self._next = self._running = 0
        self._error: BaseException | None = None
        self._changed = threading.Condition()

    def work(self, upscaler: Upscaler) -> None:
        """Upscale frames with ``upscaler`` until none is left to take."""
        while True:
            with self._changed:
                if self._error is not None or self._next >= len(self._frames):
                    return
                index = self._next
                self._next += 1
                self._running += 1
            result = None
            try:
                result = self._upscale(upscaler, self._frames[index])
            except BaseException as e:  # the owner's worker raises it, as if it were its own
                # Kept in no local: this frame, in the error's traceback, would hold it
                # in a cycle (with every frame upscaled, through result's frame) that
                # only a full collection frees.
                with self._changed:
                    self._error = self._error or e
            with self._changed:
                self._running -= 1
                self._done[index] = result
                self._changed.notify_all()

    def result(self) -> tuple[np.ndarray, ...]:
        """Every frame upscaled, in order, once no worker is on one; or the first failure,
        raised. Calls for help still queued then find nothing left, and hold no frame."""
        with self._changed:
            self._changed.wait_for(lambda: self._running == 0)
            if self._error is None:
                done, self._done, self._frames = tuple(self._done), [], ()
                return done
            self._done, self._frames = [], ()
            try:
                raise self._error
            finally:
                self._error = None  # else held in a cycle through this frame, in its traceback


class Worker:
    """A daemon thread running ``target(*args)``, whose end can be waited for across
    Ctrl-C. Python 3.11's Thread.join, interrupted by a KeyboardInterrupt, can mark a
    thread that still runs as stopped (is_alive() False): the batch then returned with
    a worker inside ncnn, and the process died in std::terminate at exit (SIGABRT)."""

    def __init__(self, target: Callable, *args, on_error: Callable[[BaseException], None] | None = None):
        self.done = Ended()

        def run() -> None:
            try:
                target(*args)
            except BaseException as e:
                if on_error is None:
                    raise
                on_error(e)
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        start_thread(self.thread)


def join_workers(workers: list[Worker]) -> None:
    """Wait for each of ``workers`` to end, in short waits so that Ctrl-C reaches this
    (main) thread promptly."""
    for w in workers:
        while not w.done.wait(0.1):
            pass
        w.thread.join()  # its target has returned: only the thread's own exit is left
