"""A Pipeline's device failover: with several devices, one that fails a picture in an
unforeseen way (a Vulkan error, a lost device) takes no more, and the picture goes to
another; which device is out of service, for now or for good, and who is at fault,
the picture or the devices (see Failover._judge)."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from .engine import Upscaler
from .lanes import UpscalingFailed, lane_names
from .loading import Item
from .outcomes import Summary

log = logging.getLogger("ncnn_sr")


def tried(item: Item, upscaler) -> bool:
    """Whether ``item`` failed on ``upscaler`` in an unforeseen way."""
    return any(up is upscaler for up in item.failed_on)


class Failover:
    """Which of a Pipeline's devices take pictures, of which it is a part: its state
    (``_start_failover``) is read and changed under ``_report_lock``. What it takes of
    the Pipeline is declared here, and nothing more (a test holds it to that)."""

    _upscalers: list[Upscaler]  # each lane's, once
    _proc_workers: int  # of every lane
    _report_lock: threading.Lock
    _summary: Summary  # the run's
    _halt: threading.Event  # stops new pictures
    _wake_procs: Callable[[], None]  # the run's proc workers re-read _down and _halt

    def _start_failover(self) -> None:
        """Every device in service, no picture found at fault: as a Pipeline is made and
        each run starts."""
        # The Upscalers' ids: those that take no pictures (out of service for now, or
        # out for good), and those out for good; and the pictures found at fault since
        # the last one done (see _at_fault).
        self._down: set[int] = set()
        self._out: set[int] = set()
        self._at_fault_in_row = 0
        self._lost_said: dict[int, str] = {}  # each one down's entry in Summary.lost
        self._names = lane_names(self._upscalers)  # "CPU lane 2" where two lanes share the CPU

    def _done_on(self, upscaler: Upscaler, item: Item, pictures: tuple) -> None:
        """``item``, whose ``pictures`` ``upscaler`` has upscaled: counted, none found at
        fault in a row any more, and each device it failed on before out for good."""
        with self._report_lock:
            self._summary.pixels_in += sum(picture.shape[0] * picture.shape[1] for picture in pictures)
            self._at_fault_in_row = 0
            # Done here, it failed where it was taken from for its device's fault: each
            # such one is out for good, though back in service meanwhile for a bad
            # picture's sake (it ended the run in service, unsaid).
            gone = [up for up in dict.fromkeys(item.failed_on) if up is not upscaler and id(up) not in self._out]
            self._out.update(map(id, gone))
            leaving = [up for up in gone if id(up) not in self._down]
            back = []
            if leaving and all(id(up) in self._down or up in leaving for up in self._upscalers):
                # None would be left in service to take the pictures that bring those out
                # for now back, as in _judge.
                back = [up for up in self._upscalers if id(up) in self._down and id(up) not in self._out]
            leaving, back, last = self._out_of_service(leaving, back)
        for up in leaving:
            log.warning("%s takes no more pictures: %s, which it failed, was done on %s%s", self._names[id(up)],
                        item.job.source, self._names[id(upscaler)], "; no device is left" if last else "")
        if gone:
            # A picture given back waiting for one of them, having failed on every
            # device in service, now fails: an idle worker takes it at once, not once
            # none is in work.
            self._tell([], back, last, None, "no other device was left in service")
            self._wake_procs()

    def _judge(self, upscaler: Upscaler, item: Item, error: Exception) -> None:
        """Who is at fault, ``upscaler`` or ``item``, which it failed with ``error`` in an
        unforeseen way; ``item.again`` says whether it goes to another device.

        With several Upscalers, a device that fails a picture takes no more while the
        picture goes to a device in service it has not failed on: if it is done there,
        each device it failed on is out for good (see _upscale). Once it has failed on
        every device in service, it is more likely at fault than they are, and fails
        alone: the devices it failed on are back in service (see _at_fault). (Found at
        fault once it had failed on two, a good picture failed on two lost devices of
        three, the third one sound, and a lost one came back.) The last device in
        service that fails a picture goes too where a device out for now has not had
        it: those come back, and the picture goes to one of them. Once none is left, no
        more pictures start."""
        with self._report_lock:
            before = [up for up in dict.fromkeys(item.failed_on) if up is not upscaler]
            item.failed_on.append(upscaler)
            item.failure, item.again = error, False
            if len(self._upscalers) < 2:
                return
            down, out = self._down, self._out
            leaving, back, why = [upscaler], [], ""
            if any(id(up) not in out and not tried(item, up) for up in self._upscalers):
                item.again = True
                if all(id(up) in down or up is upscaler for up in self._upscalers):
                    back = [up for up in self._upscalers if id(up) in down and id(up) not in out and up is not upscaler]
                    why = (f"{self._names[id(upscaler)]}, the last device in service, failed {item.job.source}, "
                           "which the others have not had")
            else:
                leaving, back = [], [up for up in before if id(up) in down and id(up) not in out]
                why = (f"{item.job.source} failed on {self._names[id(upscaler)]} too, so the picture was more likely "
                       "at fault")
            leaving, back, last = self._settle(item, leaving, back)
        self._tell(leaving, back, last, error, why)

    def _settle(self, item: Item, leaving: list, back: list) -> tuple[list, list, bool]:
        """Under _report_lock: the Upscalers ``leaving`` go out of service, those ``back``
        come back, unless ``item``, failing, is found at fault once too often (see
        _at_fault): every one is then out for good. Which left and came back, and
        whether that was the last one in service."""
        if not item.again and self._at_fault(item):
            leaving, back = self._upscalers, []
            self._out.update(map(id, self._upscalers))
        for up in leaving:
            if id(up) not in self._down:
                self._lost_said[id(up)] = f"{self._names[id(up)]}: {item.failure!r}"
        return self._out_of_service(leaving, back)

    def _out_of_service(self, leaving: list, back: list) -> tuple[list, list, bool]:
        """Under _report_lock: the Upscalers ``leaving`` go out of service, each with its
        entry in Summary.lost, those ``back`` come back; see _settle."""
        down = self._down
        leaving = [up for up in leaving if id(up) not in down]
        self._back_in_service(back)
        for up in leaving:
            down.add(id(up))
            self._summary.lost.append(self._lost_said[id(up)])
        last = bool(leaving) and all(id(up) in down for up in self._upscalers)
        if last:
            self._summary.devices_failed = True
            if self._summary.stopped is None:
                self._summary.stopped = f"every device failed ({', '.join(map(str, self._devices()))})"
            self._halt.set()
        return leaving, back, last

    def _tell(self, leaving: list, back: list, last: bool, error: Exception, why: str) -> None:
        """Warn of each Upscaler ``leaving`` (failed with ``error``) and ``back`` (for
        ``why``), and wake the proc workers to it."""
        for up in leaving:
            log.warning("%s failed (%r): %s", self._names[id(up)], error,
                        "no device is left" if last else "it takes no more pictures, the other devices go on")
        for up in back:
            log.warning("%s takes pictures again: %s", self._names[id(up)], why)
        if leaving or back:
            self._wake_procs()  # those waiting for a device in service that has not had a picture look again

    def _at_fault(self, item: Item) -> bool:
        """Whether ``item``, failing on every device in service, is one picture too many
        found at fault in a row, none done between: more than every proc worker could
        have had at once, the devices are then the more likely lost (with every one
        lost, each picture fails on all of them, bringing them back, for ever). Under
        _report_lock."""
        self._at_fault_in_row += 1
        return self._at_fault_in_row > self._proc_workers

    def _blame(self, item: Item) -> None:
        """``item``, given back for a device that has not had it, fails as more likely at
        fault than those it failed on, which come back: none is left to take it (it went
        out of service, or for good, meanwhile), or the proc workers are stuck (see
        _awaits)."""
        item.again = False
        with self._report_lock:
            back = [up for up in dict.fromkeys(item.failed_on) if id(up) in self._down and id(up) not in self._out]
            leaving, back, last = self._settle(item, [], back)
        self._tell(leaving, back, last, item.failure,
                   f"{item.job.source} failed on every device in service, so the picture was more likely at fault")
        item.error = self._failed_on_said(item)

    def _back_in_service(self, upscalers: list) -> None:
        """Each of ``upscalers``, out for now, takes pictures again; under _report_lock."""
        for up in upscalers:
            self._down.discard(id(up))
            self._summary.lost.remove(self._lost_said[id(up)])  # said again if it goes out for good

    def _awaits(self, item: Item, stuck: bool) -> bool:
        """Whether a device that has not failed ``item`` may yet have it: one in
        service, or unless the proc workers are ``stuck`` (each picture left waits for
        one out for now, for another picture's sake), one out for now."""
        return any(id(up) not in self._out and not tried(item, up) and not (stuck and id(up) in self._down)
                   for up in self._upscalers)

    def _failed_on_said(self, item: Item) -> str:
        # In ordered_map's words, which a video's frame fails with.
        return str(UpscalingFailed(item.failed_on, item.failure, every_device=False, about=item.job.source,
                                   names=self._names))

    def _devices(self) -> list:
        """Each lane's device, once, in the lanes' order."""
        return list(dict.fromkeys(up.device for up in self._upscalers))
