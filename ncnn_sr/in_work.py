"""Which picture each thread upscales, for a display that keeps something of each
picture in work (how far its lines have said it is done): a picture whose device
failed goes on in another thread (a Pipeline's failover), where it starts again, and
what was said of it must go with it, not stay with the thread that failed it."""
from __future__ import annotations

import contextlib
import threading
import weakref

_here = threading.local()


@contextlib.contextmanager
def upscaling(picture):
    """Within it, ``picture`` (the array handed to the upscale, the same one whichever
    device takes it) is the one this thread upscales."""
    before = getattr(_here, "picture", None)
    try:
        weakref.ref(picture)
    except TypeError:  # what is kept of it could not go as it does: none is named
        picture = None
    _here.picture = picture
    try:
        yield
    finally:
        _here.picture = before


class PerPicture:
    """A value kept for the picture this thread upscales, as long as that picture
    lives, whichever thread asks; where none was named (an Upscaler called directly,
    a video's frames), for this thread."""

    def __init__(self):
        self._by_picture: dict[int, object] = {}
        self._by_thread = threading.local()

    def get(self):
        picture = getattr(_here, "picture", None)
        if picture is None:
            return getattr(self._by_thread, "value", None)
        return self._by_picture.get(id(picture))

    def set(self, value) -> None:
        """``value`` kept, or with None, nothing."""
        picture = getattr(_here, "picture", None)
        if picture is None:
            self._by_thread.value = value
        elif value is None:
            self._by_picture.pop(id(picture), None)
        else:
            if id(picture) not in self._by_picture:
                # A freed picture's id can be a new one's: its value goes as it does
                # (a picture that failed for good keeps it till then).
                weakref.finalize(picture, self._by_picture.pop, id(picture), None)
            self._by_picture[id(picture)] = value

    def upscale_ended(self) -> None:
        """The upscale in this thread ended without its result: a named picture's value
        is kept, as it may go on on another device; a thread's is dropped, as the
        thread's next upscale is another picture's."""
        if getattr(_here, "picture", None) is None:
            self._by_thread.value = None
