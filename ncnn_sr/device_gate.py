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
from collections.abc import Hashable, Iterator


_acting = threading.local()


@contextlib.contextmanager
def acting_for(owner: Hashable) -> Iterator[None]:
    """Holds taken in this thread counted as ``owner``'s (a thread's ident, or
    ``helper_owner()``'s): a call in the main thread runs its work in a helper
    (interruptible) and its progress in the main thread, where a call made from that
    progress is another helper, which waited for the first's hold while the first
    waited for the progress."""
    before = getattr(_acting, "owner", None)
    _acting.owner = owner
    try:
        yield
    finally:
        _acting.owner = before


def _owner() -> Hashable:
    owner = getattr(_acting, "owner", None)
    return threading.get_ident() if owner is None else owner


def helper_owner() -> Hashable:
    """The owner of the holds of a helper that runs a call made in this thread: the
    one this thread acts for (inside the progress of a call whose helper holds the
    GPU, where the new call nests in those holds), else one of its own, not this
    thread's. A helper a Ctrl-C left in its window keeps its holds till its next tile:
    counted as the thread's, the thread's next call nested in them, and ran beside a
    run that needed the GPU alone."""
    owner = getattr(_acting, "owner", None)
    return object() if owner is None else owner


class Gate:
    """Shared holds for calls within their share, one alone hold for a call that
    takes every share. Waiting alone holds go first: a stream of shared holds (a
    folder's other pictures) would keep one waiting for ever. An owner's holds nest
    (a progress callback that upscales on the same GPU), and an alone hold nested in
    a shared one waits for the others' holds alone, while one such waits at most:
    ``alone()`` gives whether it holds the GPU alone (False: it runs in its share)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holds: dict[Hashable, int] = {}  # owner -> holds it has
        self._alone: Hashable | None = None  # the owner holding the GPU alone
        # Counted, not stacked: one owner's helpers (a call's, and that of the call
        # made in its progress, which a Ctrl-C left at its window) may end their holds
        # in any order.
        self._alone_holds = 0
        self._waiting_alone = 0
        self._upgrading: Hashable | None = None  # an owner with a shared hold waiting to go alone

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = _owner()
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
    def alone(self) -> Iterator[bool]:
        me = _owner()
        with self._changed:
            upgrading = me in self._holds and self._alone != me
            # Two owners each waiting for the other's shared hold to end would wait for
            # ever: the second runs in the share it holds.
            got = not upgrading or self._upgrading is None
            if got:
                if upgrading:
                    self._upgrading = me
                self._waiting_alone += 1
                try:
                    # Its own holds (nested) it cannot wait for.
                    while self._alone not in (None, me) or any(owner != me for owner in self._holds):
                        self._changed.wait()
                finally:
                    self._waiting_alone -= 1
                    if upgrading:
                        self._upgrading = None
                    # Shared holds wait while one waits alone: where that one leaves
                    # (an exception in its wait) they must look again.
                    self._changed.notify_all()
                self._alone = me
                self._alone_holds += 1
            self._holds[me] = self._holds.get(me, 0) + 1
        try:
            yield got
        finally:
            if got:
                with self._changed:
                    self._alone_holds -= 1
                    if not self._alone_holds:
                        self._alone = None
            self._release(me)

    def _release(self, me: Hashable) -> None:
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


def holding(index: int) -> bool:
    """Whether this thread, or the helper it acts for, holds GPU ``index``'s gate."""
    held = _gates.get(index)
    if held is None:
        return False
    with held._changed:
        return _owner() in held._holds


def hold(device, alone: bool = False) -> contextlib.AbstractContextManager:
    """The hold a call on ``device`` (a devices.Device) takes while it runs, alone or
    shared: it gives whether the call holds the GPU alone (False on the CPU)."""
    if not device.is_gpu:
        return contextlib.nullcontext(False)
    held = gate(device.index)
    return held.alone() if alone else held.shared()
