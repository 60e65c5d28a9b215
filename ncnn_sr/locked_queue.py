"""queue.Queue and a set-once event whose conditions are over an RLock, for threads
that the main thread waits for across Ctrl-C (a run's workers, interruptible's helper).
Apart from workers so that interruptible, which engine imports, can use them."""
from __future__ import annotations

import queue
import threading


# Every condition the main thread waits on with a worker (workers.ProcQueue's, Queue's,
# Ended's, interruptible's queues) is over an RLock, never a plain Lock (threading.Event's, queue.Queue's). A wait, its
# time up, takes its lock back: a plain Lock's acquire is cut by a Ctrl-C, an RLock's
# taking back is not. Cut while a worker held the lock (setting the event, taking from
# the queue), the wait raised KeyboardInterrupt with the lock not taken back, its with
# block's end then released it under the worker, and the worker's notify raised
# RuntimeError ("cannot notify on un-acquired lock"): a traceback from the worker
# thread after a Ctrl-C, or a run that raised RuntimeError for it. Nor can an RLock be
# released by a thread that does not hold it.


class Queue(queue.Queue):
    """queue.Queue, its conditions over an RLock (see the note above): the
    main thread puts its STOPs into it in short waits that Ctrl-C cuts."""

    def __init__(self, maxsize: int = 0):
        super().__init__(maxsize)
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)


class Ended:
    """Set once, by a worker as it ends; waited for by the main thread in short waits
    that Ctrl-C cuts. threading.Event but for its condition's lock (see the note above)."""

    def __init__(self):
        self._set = False
        self._changed = threading.Condition(threading.RLock())

    def set(self) -> None:
        with self._changed:
            self._set = True
            self._changed.notify_all()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """Whether it is set, once it is or ``timeout`` seconds have passed."""
        with self._changed:
            return self._changed.wait_for(lambda: self._set, timeout)
