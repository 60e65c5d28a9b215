"""Calls on one GPU that share its memory, and a call that takes it alone.

The calls at once on a GPU (proc workers, lanes of -g 0,0) each plan for their share
of its heap budget. A picture whose trunk fits the whole share of all of them, but
not its own, runs whole (resident.py) only with the GPU to itself: it waits for the
calls in progress to end, and calls coming after it wait for it. Without that, one
picture came out exact alone and blended in a folder (two workers halve the room).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Gate:
    """Shared holds for calls within their share, one alone hold for a call that
    takes every share. Waiting alone holds go first: a stream of shared holds (a
    folder's other pictures) would keep one waiting for ever. A thread's holds nest
    (a progress callback that upscales on the same GPU)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holds: dict[int, int] = {}  # thread -> holds it has
        self._alone: int | None = None  # the thread holding the GPU alone
        self._waiting_alone = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            if me not in self._holds:
                while self._alone is not None or self._waiting_alone:
                    self._changed.wait()
            self._holds[me] = self._holds.get(me, 0) + 1
        try:
            yield
        finally:
            self._release(me)

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            self._waiting_alone += 1
            try:
                # Its own holds (nested) it cannot wait for.
                while self._alone not in (None, me) or any(thread != me for thread in self._holds):
                    self._changed.wait()
            finally:
                self._waiting_alone -= 1
            outer, self._alone = self._alone, me
            self._holds[me] = self._holds.get(me, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._alone = outer
            self._release(me)

    def _release(self, me: int) -> None:
        with self._changed:
            if self._holds[me] == 1:
                del self._holds[me]
            else:
                self._holds[me] -= 1
            self._changed.notify_all()


_gates: dict[int, Gate] = {}
_gates_lock = threading.Lock()


def gate(index: int) -> Gate:
    """The gate of GPU ``index``, one for every Upscaler on it."""
    with _gates_lock:
        return _gates.setdefault(index, Gate())
