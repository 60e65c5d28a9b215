"""A Ctrl-C landing just as the main thread, its wait on a condition over, takes that
condition's lock back from another thread: the moment a plain Lock's taking back is
cut, with the lock then released under the thread holding it."""
from __future__ import annotations

import contextlib
import signal
import threading
import time


class CtrlCAsTakenBack:
    """Locks (threading.Lock's and RLock's) made while ``watching``: once ``arm``ed,
    the first that a thread other than the main one takes is held until the main
    thread, its wait on a condition of that lock over, waits to take it back; the main
    thread is then sent a Ctrl-C (SIGINT), and the lock held a while more, for the
    handler to run there."""

    def __init__(self):
        self._main = threading.get_ident()
        self._armed = False
        self.fired = False
        self._held = None  # the lock held
        self._waiting = threading.Event()  # made before any lock is watched

    def arm(self) -> None:
        self._armed = True

    def _hold(self, lock) -> None:
        if self._armed and not self.fired and threading.get_ident() != self._main:
            self.fired, self._held = True, lock  # from here on, the main thread's taking back waits for this one
            assert self._waiting.wait(10), "the main thread never waited to take the lock back"
            time.sleep(0.05)  # into its blocking acquire
            signal.pthread_kill(self._main, signal.SIGINT)
            time.sleep(0.3)

    def _taking_back(self, lock) -> None:
        # That lock's only: the main thread takes back others' (a thread's start waits
        # on an Event) while the lock is held, and a Ctrl-C then lands elsewhere.
        if lock is self._held and threading.get_ident() == self._main:
            self._waiting.set()

    @contextlib.contextmanager
    def watching(self, monkeypatch):
        ctrl_c = self

        class Watched:
            def __init__(self, lock):
                self._lock = lock

            def __enter__(self):
                got = self._lock.__enter__()
                ctrl_c._hold(self)
                return got

            def __exit__(self, *exc):
                return self._lock.__exit__(*exc)

            def acquire(self, blocking=True, timeout=-1):
                if blocking:
                    ctrl_c._taking_back(self)  # a Condition over a plain Lock takes it back so; entered with ``with``
                got = self._lock.acquire(blocking, timeout)
                if got:
                    ctrl_c._hold(self)
                return got

            def release(self):
                self._lock.release()

            def __getattr__(self, name):  # an RLock's own, which a Condition uses; a plain Lock has none
                found = getattr(self._lock, name)
                if name != "_acquire_restore":
                    return found

                def taken_back(state):
                    ctrl_c._taking_back(self)
                    return found(state)
                return taken_back

        lock, rlock = threading.Lock, threading.RLock
        monkeypatch.setattr(threading, "Lock", lambda: Watched(lock()))
        monkeypatch.setattr(threading, "RLock", lambda: Watched(rlock()))
        try:
            yield self
        finally:
            monkeypatch.setattr(threading, "Lock", lock)
            monkeypatch.setattr(threading, "RLock", rlock)


def ctrl_c_as_the_main_thread_takes_back(monkeypatch, make):
    """``make()``, its locks watched (see CtrlCAsTakenBack), armed once it has returned."""
    ctrl_c = CtrlCAsTakenBack()
    with ctrl_c.watching(monkeypatch):
        made = make()
    ctrl_c.arm()
    return made
