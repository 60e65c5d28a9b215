"""Lanes, one device's Upscaler and its proc workers each, and ordered_map, which
spreads a video's frames over them, in order, handing a frame a device failed to
another (UpscalingFailed where none is left)."""
from __future__ import annotations

import logging
import numbers
import threading
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Callable

from .engine import Upscaler
from .errors import DeviceFailure, NcnnSrError, SettingError, describe
from .fixed import fixed_fields
from .workers import STOP, Cancelled, ProcQueue, Worker, join_workers

log = logging.getLogger("ncnn_sr")


@fixed_fields("lane")
@dataclass(frozen=True)
class Lane:
    """One device's Upscaler and how many proc workers share it. Anything with an
    Upscaler's ``upscale`` method may stand in for one (a wrapper, a fake); anything
    else is a SettingError."""

    upscaler: Upscaler
    workers: int

    def __post_init__(self) -> None:
        # Lane(None, 1) was taken, and ordered_map then failed each item as "upscaling
        # failed on None", a device's failure. The class itself has an upscale, which
        # fails once called without an Upscaler.
        if isinstance(self.upscaler, type) or not callable(getattr(self.upscaler, "upscale", None)):
            raise SettingError("a lane needs an Upscaler (or anything with its upscale method), got "
                               f"{describe(self.upscaler)}")
        if not whole_at_least_1(self.workers):  # "2" raised a bare TypeError; 1.5 failed later
            raise SettingError(f"a lane needs a whole number of proc workers, at least 1, got {describe(self.workers)}")


def whole_at_least_1(value) -> bool:
    """Whether ``value`` is a whole number (not a bool), at least 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def check_lanes(lanes, user: str) -> list[Lane]:
    """``lanes`` as a list; a SettingError unless they are one or more Lanes: an
    Upscaler in one's place was an AttributeError once the run began, and one Lane or
    Upscaler, or a number, for the list of them a bare TypeError. A list, so that
    lanes given as an iterator are not used up here."""
    if isinstance(lanes, Lane):
        raise SettingError(f"{user}'s lanes must be a list of Lanes, got one Lane: give [lane]")
    if isinstance(lanes, Upscaler):
        raise SettingError(f"{user}'s lanes must be a list of Lanes, got an Upscaler: give [Lane(upscaler, workers=1)]")
    if lanes is None or isinstance(lanes, str) or not isinstance(lanes, Iterable):
        raise SettingError(f"{user}'s lanes must be Lanes (an Upscaler and its proc workers), got {describe(lanes)}")
    lanes = list(lanes)
    if not lanes:
        raise SettingError(f"{user} needs at least one lane")
    for lane in lanes:
        if not isinstance(lane, Lane):
            raise SettingError(f"{user}'s lanes must be Lanes (an Upscaler and its proc workers), got {describe(lane)}")
    return lanes


class UpscalingFailed(DeviceFailure):
    """An item of ordered_map's (a video's frame) that failed in an unforeseen way (not
    an NcnnSrError, memory or Cancelled) on ``upscalers``, in that order; ``error`` is
    the last failure, and the cause. ``every_device``: of several lanes, it failed on
    every one in service, so the item is more likely at fault than they are, as a
    Pipeline's picture that fails on every device in service fails alone; only such
    failures again and again, none done between, say the devices are lost (a folder
    of videos stops then). One lane alone failing says no more of it than of the
    item."""

    def __init__(self, upscalers: list, error: Exception, every_device: bool, about=None,
                 names: dict[int, str] | None = None):
        # ``names``: lane_names' of the lanes, where two may share a device.
        self.names = {id(up): (names or {}).get(id(up)) or str(getattr(up, "device", up)) for up in upscalers}
        where = ", then on ".join(self.names[id(up)] for up in dict.fromkeys(upscalers))
        super().__init__(f"{'' if about is None else f'{about}: '}upscaling failed on {where}: {error!r}")
        self.upscalers, self.error, self.every_device = list(upscalers), error, every_device
        self.__cause__ = error

    def __reduce__(self):
        # Its upscalers as their devices, which are all it says of them: an Upscaler
        # cannot be pickled, and this error crosses a process pool so. Its names are
        # by the upscalers' ids, which mean nothing elsewhere.
        rebuild, args, state = super().__reduce__()
        return rebuild, args, {**state, "upscalers": [getattr(up, "device", up) for up in self.upscalers],
                               "names": {}}

    @property
    def devices(self) -> list:
        """Each device it failed on, once, in that order."""
        return list(dict.fromkeys(getattr(up, "device", up) for up in self.upscalers))

    def about(self, item) -> UpscalingFailed:
        """This failure, its line naming ``item`` (the video) first."""
        return UpscalingFailed(self.upscalers, self.error, self.every_device, about=item, names=self.names)


def lane_names(upscalers: Iterable) -> dict[int, str]:
    """Each of ``upscalers``' name in messages, by its id: its device, and where two
    lanes share that device (-g -1,-1), which of those it is ("CPU lane 2"), where
    the lines read "failed on CPU, then on CPU"."""
    upscalers = list({id(up): up for up in upscalers}.values())
    devices = [getattr(up, "device", up) for up in upscalers]
    names = {}
    for up, device in zip(upscalers, devices):
        same = [other for other, its in zip(upscalers, devices) if its == device]
        names[id(up)] = str(device) if len(same) < 2 else f"{device} lane {list(map(id, same)).index(id(up)) + 1}"
    return names


class _Failed:
    """An exception travelling through the ordered map to its consumer."""

    def __init__(self, error: BaseException):
        self.error = error


def ordered_map(lanes: list[Lane], items: Iterable, work: Callable, window: int = 8,
                cancel: threading.Event | None = None, out: set[int] | None = None):
    """Yield ``work(upscaler, item)`` for each item, in the items' order, spread over
    every lane's proc workers (video frames: order matters, devices do not).

    A feeder thread pulls ``items`` (so decoding overlaps upscaling), at most
    ``window`` items are in flight, and an exception from ``items`` or ``work`` comes
    out of this generator. Setting ``cancel`` stops the threads at their next check
    (between items; between tiles too when ``work`` watches ``cancel``), and the
    generator with Cancelled at the first item not done by then.

    Once the generator is done, by running out, by raising, or by being closed, its
    threads have all ended: nothing touches ``items`` or calls ``work`` any more, so
    the caller may free what they use (an input file, an upscaler). Waiting for them
    costs at most one item in progress per worker. The one exception is Ctrl-C: a
    KeyboardInterrupt raised while the generator runs sets ``cancel`` and goes out at
    once, leaving the threads to stop on their own, so that Ctrl-C is never held up
    by a tile (a caller that gets Ctrl-C elsewhere should likewise not close it).

    An item that ``work`` fails in an unforeseen way (not an NcnnSrError, memory or
    Cancelled) comes out as an UpscalingFailed naming the upscalers' devices, its
    ``error`` the failure. With lanes of more than one upscaler, the one that failed is
    taken out, with a warning, and the item goes on to another lane in service, as in
    a Pipeline (those it failed on are out). The last one in service is never taken
    out: an item that fails on it fails (``every_device``), naming those taken out, in
    turn, and it, as the items left are failed on the upscalers left alike.

    ``out``: the ids of the upscalers out for good, which take no item, shared by the
    ordered_maps of one run (a folder's videos); each that failed an item another lane
    then did joins it, as a Pipeline's device does, and stays out for the next ones,
    where those an item failed on alone come back. It never holds every lane.
    """
    # Else no lanes, or a window of 0, waited for ever.
    lanes = check_lanes(lanes, "ordered_map")
    if not whole_at_least_1(window):
        raise SettingError(f"the window must be a whole number of items, at least 1, got {describe(window)}")
    # Else a function that is none failed each item as an UpscalingFailed "on CPU",
    # and items that are no sequence a bare TypeError from the feeder thread.
    if not callable(work):
        raise SettingError(f"ordered_map's work must be a function of (upscaler, item), got {describe(work)}")
    try:
        items = iter(items)
    except TypeError:
        raise SettingError(f"ordered_map's items must be iterable, got {describe(items)}") from None
    if cancel is not None and not isinstance(cancel, threading.Event):
        # Else True or "yes" came out as a bare AttributeError from the feeder thread,
        # and again from the generator's end, which sets it.
        raise SettingError(f"ordered_map's cancel must be a threading.Event, or None, got {describe(cancel)}")
    cancel = cancel or threading.Event()
    slots = threading.Semaphore(window)
    if out is not None and not isinstance(out, set):
        # Else the first item done failed to join its lanes to it, in its worker's
        # thread, and the consumer waited for that item for ever.
        raise SettingError(f"ordered_map's out must be a set of the upscalers' ids out for good, or None, "
                           f"got {describe(out)}")
    out = set() if out is None else out
    serving = [lane for lane in lanes if id(lane.upscaler) not in out]
    if not serving:
        raise SettingError("ordered_map's lanes are all out for good: none is left to take an item")
    workers = [lane for lane in serving for _ in range(lane.workers)]
    # Never full: at most ``window`` items are in flight, and a STOP a worker.
    todo = ProcQueue(window + len(workers), len(workers))
    done: dict[int, object] = {}
    ready = threading.Condition()
    total = [None]  # how many items there were, once the feeder knows
    # Whether the feeder stopped at the cancel, an item taken and not handed on: the
    # items it handed on are then not all there were.
    cut = [False]
    several = len({id(lane.upscaler) for lane in lanes}) > 1
    names = lane_names(lane.upscaler for lane in lanes)
    upscalers = {id(lane.upscaler) for lane in serving}
    down: set[int] = set()  # the ids of the upscalers taken out
    out_in_turn: list = []  # the upscalers taken out, in that order
    failed_on: dict[int, list] = {}  # by item's index, the upscalers it failed on

    def taken_out(upscaler, index: int, error: Exception) -> UpscalingFailed | None:
        """None where ``upscaler`` is out, and item ``index``, which it failed with
        ``error``, goes to another lane in service (it has failed on none of those:
        each it failed on is out); else the item's failure, none being left. (It failed
        the video once it failed on a second one, while a third device was sound.)
        Under ``ready``: two lanes that fail at once leave one in service."""
        with ready:
            if not several or not any(up != id(upscaler) and up not in down for up in upscalers):
                return UpscalingFailed(out_in_turn + [upscaler], error, every_device=several, names=names)
            first = id(upscaler) not in down
            if first:
                down.add(id(upscaler))
                out_in_turn.append(upscaler)
            failed_on.setdefault(index, []).append(upscaler)
        if first:
            log.warning("%s failed (%r): it takes no more frames, the other devices go on", names[id(upscaler)], error)
        return None

    def feed() -> None:
        count = 0
        try:
            for item in items:
                while not slots.acquire(timeout=0.1):
                    if cancel.is_set():
                        cut[0] = True
                        return
                if cancel.is_set():
                    cut[0] = True
                    return
                todo.put((count, item))
                count += 1
        except BaseException as e:  # a broken input: hand it to the consumer
            with ready:
                done[count] = _Failed(e)
                count += 1
                ready.notify_all()
        finally:
            with ready:
                total[0] = count
                ready.notify_all()
            for _ in workers:
                todo.put(STOP)

    def proc(upscaler) -> None:
        while True:
            entry = todo.get(False)
            if entry is STOP:
                return
            try:
                if cancel.is_set():
                    return
                index, item = entry
                if id(upscaler) in down:
                    todo.retry(entry)
                    return
                try:
                    result = work(upscaler, item)
                except (NcnnSrError, MemoryError, Cancelled) as e:
                    result = _Failed(e)
                except Exception as e:
                    failure = taken_out(upscaler, index, e)
                    if failure is None:
                        todo.retry(entry)
                        return
                    result = _Failed(failure)
                except BaseException as e:
                    result = _Failed(e)
                with ready:
                    if not isinstance(result, _Failed):
                        # Done here, it failed where it was before for its device's fault.
                        out.update(map(id, failed_on.pop(index, ())))
                    done[index] = result
                    ready.notify_all()
                # A failure left in a local is held by this frame, in its traceback: a
                # cycle, freed by a full collection alone.
                del result
            finally:
                todo.done()

    threads: list[Worker] = []
    interrupted = False
    try:
        # Started inside the try: Thread.start waits for its thread to run, and a
        # Ctrl-C can come out of that wait with it running, to be stopped by the cancel.
        for target, *args in [(feed,)] + [(proc, lane.upscaler) for lane in workers]:
            threads.append(Worker(target, *args))
        index = 0
        while True:
            with ready:
                while index not in done and (total[0] is None or index < total[0]):
                    if cancel.is_set():
                        # The workers stop at it, this item undone: waited for, it
                        # never came.
                        raise Cancelled
                    ready.wait(0.1)
                if index not in done:
                    if cut[0]:  # ended as if the items ran out, without a word
                        raise Cancelled
                    return  # every item was yielded
                result = done.pop(index)
            slots.release()
            if isinstance(result, _Failed):
                try:
                    raise result.error
                finally:
                    del result  # else held by this frame, in the error's traceback: a cycle
            yield result
            index += 1
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        cancel.set()
        if not interrupted:
            join_workers(threads)
