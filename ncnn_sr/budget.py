"""Memory that threads share: each holds part of it while its work is in flight."""
from __future__ import annotations

import threading


class MemoryBudget:
    """Bytes that work in flight may hold together (a batch's animations, whose
    frames are held whole). ``take`` waits until an amount fits beside what is held:
    one of at most ``total`` always does, once the others are given back."""

    def __init__(self, total: int):
        self.total = total
        self._held = 0
        self._room = threading.Condition()

    def take(self, amount: int, cancel: threading.Event) -> bool:
        """Hold ``amount`` once it fits; False, holding nothing, if ``cancel`` is set first."""
        with self._room:
            while self._held + amount > self.total:
                if cancel.is_set():
                    return False
                self._room.wait(0.1)
            self._held += amount
            return True

    @property
    def held(self) -> int:
        return self._held

    def give(self, amount: int) -> None:
        if amount:
            with self._room:
                self._held -= amount
                self._room.notify_all()
