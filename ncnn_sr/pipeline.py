"""load → proc → save: three kinds of threads joined by two bounded queues.

Load workers read pictures, proc workers (N per device, one Upscaler per device)
upscale them, save workers write them. The queues hold at most ``queue_size``
pictures each, so memory stays bounded however many files there are; animated
pictures, whose frames are all held at once, also share a memory budget. Errors and
cancellation travel through the same queues as pictures: a failed item carries its
reason to the save side, which reports it; a STOP item tells a worker to end.

An animation's frames are independent: the proc worker that takes one asks every
other proc worker on its kind of device (GPU or CPU), of every lane, for help, and
they take its frames before any new picture (see workers.ProcQueue and Frames).

With several devices, one that fails a picture in an unforeseen way (a Vulkan error,
a lost device) takes no more pictures, and that picture goes to another: the others
go on without it, unless the picture fails on each of them too (see failover.py).

The load workers and their checks of each picture are in loading.py; ordered_map,
which spreads a video's frames over the same lanes, in lanes.py.
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import replace
from typing import Callable, Iterable

import numpy as np

from . import budget, in_work, part_files
from .animation import write_frames
from .budget import MemoryBudget
from .engine import Upscaler, checked_progress
from .errors import (FlagNames, InputError, NcnnSrError, NoRoom, SettingError, cannot_write, describe,
                     host_out_of_memory, out_of_memory)
from .failover import Failover, tried
from .files import broken_output, is_fifo, mark_there, output_gone, went_with_input
from .fixed import DeclaredOnly, Fixed, read_only
from .images import checked_quality, write_image
from .jobs import Job, Plan
from .lanes import Lane, UpscalingFailed, check_lanes, ordered_map, whole_at_least_1
from .loading import Item, Loading
from .outcomes import Outcome, Summary
from .resample import checked_resize
from .signals import HeldInterrupts, ctrl_c_signals
from .workers import STOP, Cancelled, Frames, ProcQueue, Queue, Worker, join_workers

# What the library's users import from here (see the README), wherever it is defined.
__all__ = ["Lane", "Outcome", "Pipeline", "Summary", "UpscalingFailed", "ordered_map"]

# What an animation's frames may take in memory, all animations in flight together
# (never more than half the memory available when a run starts): frames counted at
# 4 bytes a pixel, the upscaled ones twice, as the encoders copy every frame before
# writing. A 100-frame 480x270 GIF upscaled x4 takes about 1.7 GB.
MAX_ANIMATION_MEMORY = 4 << 30


class _OnTileFailed(Exception):
    """The caller's ``on_tile`` raised ``error`` during an upscale: the picture fails
    for it, and no device is to blame."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


# The end of the jobs: a None among them (a job left out by the caller's own filter) ended them.
_NO_MORE = object()


def _not_jobs(given) -> SettingError:
    if isinstance(given, Plan):  # what plan_jobs returns: "as plan_jobs gives them" was no help
        return SettingError("jobs must be Jobs, got a Plan: give its jobs, plan_jobs(...).jobs")
    return SettingError(f"jobs must be Jobs, as plan_jobs gives them, got {describe(given)}")


class Pipeline(Loading, Failover, DeclaredOnly):
    """Runs jobs through the ``lanes``: ``load_workers`` threads read pictures, each
    lane's workers upscale them on its Upscaler, ``save_workers`` threads write them,
    and the queues between hold at most ``queue_size`` pictures. Each picture is
    upscaled as ``Upscaler.upscale`` does with ``scale``, ``width`` and ``height``,
    and written as ``write_image`` does with ``quality`` and ``metadata``; with
    ``skip_existing`` a job whose output is there (not empty, nor cut short) is skipped;
    with ``skip_damaged`` a damaged picture is read as ``read_image`` reads it with
    ``skip_damaged``, as far as it goes, with a warning.

    ``on_outcome`` is called once for each job the run finishes (ok, skipped or
    failed: ``Summary.done`` of them; "not done", its sub-folder gone), from a save or load thread, never from two
    threads at once; an exception from it (a closed stderr, say) is raised by ``run``
    once every job is done. A run ended early (``cancel()``, Ctrl-C, a full disk, an
    output folder removed or made read-only, a folder of pictures removed, every device
    failed) starts no more jobs, and tells of none of those it did not finish:
    ``Summary.cancelled`` or ``stopped`` says why, and the jobs, which may be a lazy
    iterator, are not read to the end to tell of each. The system out of memory as a
    picture is read (ENOMEM, said as "cannot read"; Pillow's MemoryError) fails no
    picture, which every later one would fail alike: the run stops, and ``run`` raises
    it as a MemoryError; so as a picture is written. ``on_tile(done, total)`` is called from the proc threads,
    several at once, after each tile of a
    picture or frame; an exception from it fails that picture, naming ``on_tile``, and
    is no device's failure (see below). Where the upscale of
    one it was told of ends without its result (failed, cancelled, or gone to another
    device), it is told ``(0, total)`` from the same thread: none of it is done; once a
    frame of an animation has failed, it is told nothing more of its other frames, but
    ``(0, total)`` as each ends. While
    it runs, ``in_work`` names the picture in work, the same whichever device takes it,
    for a display that keeps what it said of each picture (``in_work.PerPicture``).

    A picture with transparency asked as JPEG is written as ``name.jpg.png``, with a
    note; a fully opaque alpha channel is dropped and the JPEG written, unless
    ``keep_opaque_alpha`` (the reference tool's rule: any alpha channel makes a png).
    An EXIF block too large for a JPEG output fails that picture, unless
    ``drop_oversized_exif``: it is then written without its EXIF, with a note. An
    XMP packet too large for a JPEG output is left out of it, with a note. A picture
    or animation with partial transparency asked as GIF, which cuts alpha at half,
    gets a note.

    An animated picture (GIF, WebP, APNG, AVIF) asked as png, webp or gif is upscaled
    frame by frame into an animation of every frame, unless ``animate`` is false; a
    jpg or an avif gets its first frame, with a note (a still ``name.jpg.png``
    where that frame has transparency). Its frames are shared by the proc workers of
    every lane on its kind of device, which take them before new pictures; one that fails fails the
    picture, as a still's failure does. Animations in flight hold at most
    ``animation_memory`` bytes together (default: MAX_ANIMATION_MEMORY, at most half
    the memory available); one that alone would need more fails, in words. Stills and
    animations in flight (their results and their writing) hold their memory together
    within the memory available as the run starts: one that does not fit beside the
    others waits for room, one that alone would not fit fails before it is upscaled,
    in words.

    With lanes of more than one Upscaler, one whose upscale fails in an unforeseen
    way (not an NcnnSrError, nor memory: a Vulkan error, a lost device) takes no more
    pictures, with a warning, and the picture goes to a device it has not failed on.
    If it works there, each device it failed on is out for good; once it has failed
    on every device in service, the picture fails (its fault, likely), and those
    devices go on, each back in service with a warning. More pictures failed so in a
    row than there are proc workers, none done between, and every device is out.
    Once every lane is out, no more pictures start and the run stops (``stopped``,
    ``devices_failed``); pictures already upscaled are still written.

    A failure's hint names the option that gets past it as the library's argument
    ("metadata=False"), or, given a command's ``flags``, as its flag ("--no-metadata").
    ``lanes`` (a tuple), ``load_workers`` and ``save_workers`` read back as attributes,
    fixed when it is made: setting one, or another argument (``scale``), is an
    AttributeError, as is a public name it does not declare (``p.quallity``, naming the
    one meant: DeclaredOnly); a subclass's declared names and private ones may be set."""

    lanes = Fixed("The lanes, a tuple: each an Upscaler and its proc workers.")
    load_workers = Fixed("The threads that read pictures.")
    save_workers = Fixed("The threads that write results.")

    def __init__(self, lanes: list[Lane], load_workers: int = 1, save_workers: int = 2,
                 scale: float | None = None, width: int | None = None, height: int | None = None,
                 quality: int | None = None, metadata: bool = True, skip_existing: bool = False,
                 on_outcome: Callable[[Outcome], None] | None = None, queue_size: int = 8,
                 keep_opaque_alpha: bool = False, drop_oversized_exif: bool = False, animate: bool = True,
                 animation_memory: int | None = None, on_tile: Callable[[int, int], None] | None = None,
                 skip_damaged: bool = False, flags: FlagNames | None = None):
        lanes = check_lanes(lanes, "a pipeline")  # each Lane has checked its upscaler
        # "2" was a bare TypeError, and 1.5 one in run.
        for name, value in (("load_workers", load_workers), ("save_workers", save_workers),
                            ("queue_size", queue_size)):
            if not whole_at_least_1(value):
                raise SettingError(f"{name} must be a whole number, at least 1, got {describe(value)}")
        for name, value in (("metadata", metadata), ("skip_existing", skip_existing),
                            ("keep_opaque_alpha", keep_opaque_alpha), ("drop_oversized_exif", drop_oversized_exif),
                            ("animate", animate), ("skip_damaged", skip_damaged)):
            # A truthy "no" skipped every existing output, or kept the metadata asked away.
            if not isinstance(value, (bool, np.bool_)):
                raise SettingError(f"{name} must be True or False, got {describe(value)}")
        if on_outcome is not None and not callable(on_outcome):
            raise SettingError(f"on_outcome must be a function of an Outcome, or None, got {describe(on_outcome)}")
        # Else a wrong one failed each picture as it ran, after its upscale's work.
        checked_progress(on_tile, "on_tile must be a function of (done, total), or None")
        if flags is not None and not isinstance(flags, FlagNames):
            raise SettingError(f"flags must be FlagNames or None, got {describe(flags)}")
        if animation_memory is not None and not whole_at_least_1(animation_memory):
            raise SettingError(f"animation_memory must be a whole number of bytes, at least 1, or None, "
                               f"got {describe(animation_memory)}")
        # Once here: else each picture of the batch failed on the same setting, one by one.
        # How large or small a scale may be is each picture's to say.
        try:
            checked_resize(scale, width, height)
            checked_quality(quality)
        except InputError as e:
            # These are settings too: the README promises a ValueError for each.
            raise SettingError(str(e)) from None
        self._lanes = tuple(lanes)
        self._load_workers, self._save_workers = load_workers, save_workers
        self._resize = {"scale": scale, "width": width, "height": height}
        self._quality, self._metadata = quality, metadata
        self._keep_opaque_alpha, self._drop_oversized_exif = keep_opaque_alpha, drop_oversized_exif
        self._skip_existing, self._skip_damaged = skip_existing, skip_damaged
        self._animate, self._animation_memory = animate, animation_memory
        self._on_outcome, self._on_tile = on_outcome, on_tile
        self._flags = flags
        self._queue_size = queue_size
        self._cancel = threading.Event()
        # No new picture starts (set by cancel, and once every device has failed); the
        # cancel alone stops the saves.
        self._halt = threading.Event()
        self._upscalers = list({id(lane.upscaler): lane.upscaler for lane in lanes}.values())
        self._start_failover()
        self._proc_workers = sum(lane.workers for lane in lanes)
        self._wake_procs: Callable[[], None] = lambda: None  # the run's proc workers re-read _down and _halt
        self._report_lock = threading.Lock()
        self._saving = 0  # saves under way, counted under _report_lock
        # Workers inside what a Ctrl-C cannot wait for: an upscale (a tile in ncnn may
        # take minutes) or the caller's jobs iterator (it may wait for ever); under
        # _report_lock.
        self._inside = 0
        self._errors: list[BaseException] = []
        self._summary = Summary()  # each run's own, from its start
        # A run interrupted inside a picture, or one that could not start all its
        # workers, leaves workers waiting on its queues and its cancel: a later run must
        # not clear that cancel under them. What that run did, for the refusal; or None.
        self._abandoned: str | None = None
        self._running = False  # a run is under way; set under _run_lock
        self._run_lock = threading.Lock()

    def __repr__(self) -> str:
        # The lanes and the workers always; of the rest, what was given otherwise than
        # by default, as a log line or a debugger needs it.
        given = [("width", self._resize["width"], None), ("height", self._resize["height"], None),
                 ("scale", self._resize["scale"], None), ("quality", self._quality, None),
                 ("metadata", self._metadata, True), ("skip_existing", self._skip_existing, False),
                 ("keep_opaque_alpha", self._keep_opaque_alpha, False),
                 ("drop_oversized_exif", self._drop_oversized_exif, False), ("animate", self._animate, True),
                 ("skip_damaged", self._skip_damaged, False),
                 ("animation_memory", self._animation_memory, None), ("queue_size", self._queue_size, 8)]
        parts = [f"lanes=[{', '.join(map(repr, self._lanes))}]", f"load_workers={self._load_workers}",
                 f"save_workers={self._save_workers}"]
        parts += [f"{name}={value!r}" for name, value, default in given if value != default]
        if self._running:
            parts.append("running")
        return f"<{type(self).__name__} {' '.join(parts)}>"

    def __reduce_ex__(self, protocol):
        # pickle and copy both come here. A copy shared the original's cancel, halt and
        # run lock but not its count of runs: the two ran at once, each clearing the
        # other's cancel, and a cancel() of either stopped both.
        raise InputError("a Pipeline cannot be copied or pickled: its runs share one cancel and its lanes hold "
                         "networks loaded on devices; make another with the same lanes, or one per process")

    def cancel(self) -> None:
        """Stop soon: no new picture is started, work in progress stops after its
        current tile, and nothing half-written is left. It stops the run in progress;
        a later ``run`` starts afresh."""
        self._cancel.set()
        self._halt.set()
        self._wake_procs()  # those out of service, waiting for it, drain the queue

    @read_only("is its run's to say: cancel() stops a run")
    def stopped(self) -> str | None:
        """Why the run in progress ended early on its own (a full disk), as its summary
        will say, or None: ``on_outcome`` hears of the picture that stopped it after.
        Read without a lock, as ``on_outcome`` is called holding the one it is set under."""
        return self._summary.stopped

    def run(self, jobs: Iterable[Job]) -> Summary:
        """Run every job; Ctrl-C (KeyboardInterrupt) in the calling thread cancels and
        the summary says so. A Pipeline may run again, unless a run of it was
        interrupted inside a picture (``Summary.abandoned``) or could not start its
        worker threads; one run at a time: a run asked for while one is under way
        (from another thread, or from a callback) is an InputError, as is a run whose
        lanes hold a closed Upscaler."""
        if self._abandoned is not None:
            raise InputError(f"this Pipeline's run {self._abandoned}: make a new Pipeline to run again")
        for lane in self.lanes:
            # Else every picture failed on it, one by one.
            if getattr(lane.upscaler, "closed", False) is True:
                raise InputError(f"a pipeline's lane holds a closed Upscaler ({lane.upscaler!r}): make another, "
                                 "or run the pipeline inside its with block")
        # Each run resets and fills the one summary, cancel and queues: two at once
        # counted each other's pictures, and the second's start undid the first's cancel.
        mine = False
        try:
            with self._run_lock:
                if self._running:
                    raise InputError("this Pipeline is running: make a Pipeline for each run at once")
                # No call between these two: a signal's handler runs as a call returns,
                # and one landing as a lock's acquire returned, before the try that
                # released it, left the Pipeline taken; every later run said "running".
                mine = True
                self._running = True
            return self._run(jobs)
        finally:
            if mine:
                self._running = False

    def _run(self, jobs: Iterable[Job]) -> Summary:
        # The cancel, Ctrl-C or stop (a full disk) of an earlier run, and the folders it
        # found unwritable, held for it alone: the next run did nothing, or failed each
        # picture on the old reason.
        self._cancel.clear()
        self._halt.clear()
        self._start_failover()
        self._start_loading()  # no loader runs between runs
        self._summary = Summary()
        self._errors = []
        self._written_into: set = set()  # the output folders this run has written in, and those above them
        self._outputs_lost = False  # whether a sub-folder's loss alone was found (_lost_alone)
        self._folders_lock = threading.Lock()
        part_files.forget_swept()  # each run sweeps its folders of killed runs' parts anew
        asked = self._animation_memory
        self._budget = MemoryBudget(min(MAX_ANIMATION_MEMORY, budget.available_memory() // 2)
                                     if asked is None else asked)
        # The memory the run's stills may take together, as it is before any is read:
        # checked against the memory left as each was read, pictures let in one after
        # another all counted on the room the first results had not yet taken.
        limit = budget.memory_limit()
        self._memory = None if limit is None else MemoryBudget(limit)
        start = time.perf_counter()
        # A path, or a list of them, was an AttributeError from a worker thread.
        if isinstance(jobs, (str, bytes, os.PathLike)) or not isinstance(jobs, Iterable):
            raise _not_jobs(jobs)
        pending = iter(jobs)
        pending_lock = threading.Lock()
        to_proc = ProcQueue(self._queue_size, self._proc_workers)
        self._wake_procs = to_proc.wake
        to_save: queue.Queue = Queue(self._queue_size)

        def next_job() -> Job | None:
            with pending_lock, self._unwaitable():
                job = next(pending, _NO_MORE)
            if job is _NO_MORE:
                return None
            if not isinstance(job, Job):
                raise _not_jobs(job)
            return job

        # A Ctrl-C while the workers start would leave some running with no one to stop
        # them: it waits until they all run and the handler below is in place. Only the
        # signals that raise KeyboardInterrupt anyway are held, as while a model loads:
        # a library user's own handler (or SIGTERM's default) is not set aside.
        held = HeldInterrupts(ctrl_c_signals())
        crashed = self._crashed
        try:
            loaders = [Worker(self._load, next_job, to_proc, on_error=crashed) for _ in range(self.load_workers)]
            procs = [Worker(self._proc, lane.upscaler, to_proc, to_save, on_error=crashed)
                     for lane in self.lanes for _ in range(lane.workers)]
            savers = [Worker(self._save, to_save, on_error=crashed) for _ in range(self.save_workers)]
        except BaseException as e:
            # A thread that cannot start (too many threads) left Ctrl-C held for good.
            # Those started stop taking work; any left waiting for a STOP are abandoned.
            self.cancel()
            self._abandoned = f"could not start its worker threads ({type(e).__name__}: {e})"
            held.release()
            raise
        # Each stage ends when its threads have ended and the next stage got one STOP
        # per worker that still reads.
        stages = [(loaders, to_proc, procs), (procs, to_save, savers), (savers, None, [])]
        stops_sent = {id(to_proc): 0, id(to_save): 0}
        try:
            held.release()
            self._close(stages, stops_sent)
        except KeyboardInterrupt:
            self.cancel()
            # Only a save under way is waited for, so that no file is left half-written
            # (a second Ctrl-C meanwhile is ignored): a tile in ncnn cannot be stopped,
            # and on the CPU one tile can be the whole picture, minutes of work.
            while True:
                try:
                    self._wait_for_saves()
                    break
                except KeyboardInterrupt:
                    continue
            # Idle workers, waiting for work, end on their STOPs: only one inside an
            # upscale, or in the jobs iterator, is left behind.
            while True:
                try:
                    self._summary.abandoned = not self._drain(stages, stops_sent)
                    break
                except KeyboardInterrupt:
                    continue
            if self._summary.abandoned:
                self._abandoned = "was interrupted inside a picture (Summary.abandoned)"
        self._summary.cancelled = self._cancel.is_set() and self._summary.stopped is None
        self._summary.seconds = time.perf_counter() - start
        if self._errors:
            raise self._errors[0]
        return self._summary

    def _stop(self, reason: str, input_gone: bool = False) -> bool:
        """End the run early for ``reason``, which the summary gives: no more pictures
        are started, those in progress are dropped, but where ``input_gone`` (a folder
        of pictures went), whose outputs can still be written: those upscaled are.
        False where it had ended already."""
        with self._report_lock:
            first = self._summary.stopped is None
            if first:
                self._summary.stopped = reason
                self._summary.input_gone = input_gone
        if input_gone:
            self._halt.set()
            self._wake_procs()
        else:
            self.cancel()
        return first

    def _crashed(self, error: BaseException) -> None:
        """A worker died of an error no job could be blamed for: the run stops, since
        the other stages would wait for it for ever, and ``run`` raises it."""
        with self._report_lock:
            self._errors.append(error)
        self.cancel()

    # --- workers -----------------------------------------------------------------------

    def _put(self, q: queue.Queue, item, readers: list | None = None, until: threading.Event | None = None) -> None:
        """Put, but give up waiting once ``until`` (by default the halt: no more pictures
        start) is set, and a STOP once every one of ``readers`` has ended."""
        until = self._halt if until is None else until
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if item is not STOP and until.is_set():
                    return
                if item is STOP and readers is not None and all(r.done.is_set() for r in readers):
                    return

    def _proc(self, upscaler: Upscaler, to_proc: ProcQueue, to_save: queue.Queue) -> None:
        # Out of service, it waits for its STOP, or to be back (see _judge); once the
        # run halts, it takes what is left to drop it.
        def serving() -> bool:
            return id(upscaler) not in self._down or self._halt.is_set()

        # A picture it failed waits for a device that has not had it (see _judge).
        def takes(item: Item, stuck: bool) -> bool:
            return self._halt.is_set() or not tried(item, upscaler) or not self._awaits(item, stuck)

        while True:
            item = to_proc.get(upscaler.device.is_gpu, serving, takes)
            if item is STOP:
                return
            if isinstance(item, Frames):  # another worker's animation: its owner reports how it went
                if not self._halt.is_set() and id(upscaler) not in self._down:
                    item.work(upscaler)
                continue
            try:
                if not serving():  # taken out since get looked
                    to_proc.retry(item)
                elif self._halt.is_set():
                    pass
                elif tried(item, upscaler):  # no device that has not had it is left to take it
                    self._blame(item)
                    item.pixels = item.animation = None
                    self._saved(to_save, item)
                else:
                    self._proc_one(upscaler, item, to_proc, to_save)
            finally:
                to_proc.done()

    def _proc_one(self, upscaler: Upscaler, item: Item, to_proc: ProcQueue, to_save: queue.Queue) -> None:
        if not item.error:
            try:
                self._upscale(upscaler, item, to_proc)
            except Cancelled:
                return
            except _OnTileFailed as e:
                item.error = f"{item.job.source}: on_tile, the progress callback, failed: {e.error!r}"
            except NcnnSrError as e:
                item.error = f"{item.job.source}: {e.said(self._flags)}"
            except MemoryError:
                item.error = f"{item.job.source}: not enough memory for its result"
            except _FailedOn:
                if item.again and not self._halt.is_set():
                    to_proc.retry(item)
                    return
                item.error = self._failed_on_said(item)
            except Exception as e:
                item.error = f"{item.job.source}: upscaling failed: {e!r}"
            if item.error:
                item.pixels = item.animation = None
        self._saved(to_save, item)

    def _saved(self, to_save: queue.Queue, item: Item) -> None:
        """``item`` handed from a proc worker to the savers, for its output or outcome."""
        # Once every device has failed, the saves go on with what was upscaled: only a
        # cancel stops them reading. (Given up at the halt, a picture whose failure
        # took the last device out went unreported.)
        self._put(to_save, item, until=self._cancel)

    def _upscale(self, upscaler: Upscaler, item: Item, to_proc: ProcQueue) -> None:
        """``item``'s picture, or each frame of its animation, upscaled in its place.
        The frames are shared with the other proc workers; this one upscales them too
        until none is left to take, so it never waits for a frame no one has taken."""
        # Once a frame has failed, the animation fails or starts again elsewhere, and
        # the frames other workers are on are lost with it: on_tile is told nothing
        # more of them. Told after the failure's (0, total), a display took their
        # tiles for the retry's. Under ``telling``, so that no tile is told between
        # the failure and its (0, total). (They go on to their end: stopped, their
        # Cancelled could reach Frames before the failure, which it would hide.)
        telling, failed = threading.Lock(), threading.Event()

        def upscale(upscaler: Upscaler, picture: np.ndarray) -> np.ndarray:
            told = 0  # the tiles on_tile was told of, out of how many

            def progress(done: int, total: int) -> None:
                nonlocal told
                with telling:
                    if not failed.is_set():
                        self._raise_if_cancelled(done, total)
                        told = total
                        return
                if self._cancel.is_set():
                    raise Cancelled

            try:
                with self._unwaitable(), in_work.upscaling(picture):
                    result = upscaler.upscale(picture, progress=progress, **self._resize)
            except BaseException as e:
                with telling:
                    failed.set()
                    if told:
                        self._untell(told)
                if not isinstance(e, Exception) or isinstance(e, (NcnnSrError, MemoryError, Cancelled, _OnTileFailed)):
                    raise
                # Which of several devices failed (an animation's frames: the helper's,
                # not the owner's), so the line can say so.
                self._judge(upscaler, item, e)
                raise _FailedOn(upscaler.device, e) from e
            with telling:
                if failed.is_set() and told:
                    # Lost with the animation: a folder's bar kept the share last told
                    # of it beside the animation's outcome.
                    self._untell(told)
            return result

        if item.animation is None:
            pictures = (item.pixels,)
            item.pixels = upscale(upscaler, item.pixels)
        else:
            pictures = item.animation.frames
            frames = Frames(pictures, upscale)
            # Helpers on the same kind of device only: a GPU's animation that handed a
            # frame to a CPU worker waited for it long after its own were done.
            on_gpu = upscaler.device.is_gpu
            helpers = sum(lane.workers for lane in self.lanes if lane.upscaler.device.is_gpu == on_gpu) - 1
            to_proc.ask_help(frames, min(helpers, len(pictures) - 1), on_gpu)
            frames.work(upscaler)
            item.animation = replace(item.animation, frames=frames.result())
        self._done_on(upscaler, item, pictures)

    def _untell(self, total: int) -> None:
        """Tell ``on_tile``, from the thread that told it of tiles of an upscale that
        ended without its result, that none of it is done: (0, ``total``)."""
        try:
            self._on_tile(0, total)
        except Exception:
            pass  # the upscale failed already, for this or another reason

    def _raise_if_cancelled(self, done: int, total: int) -> None:
        """The progress callback of every upscale: stops it between tiles once cancelled,
        else tells ``on_tile``."""
        if self._cancel.is_set():
            raise Cancelled
        if self._on_tile is not None:
            try:
                self._on_tile(done, total)
            except Exception as e:
                # Raised as it is, a bar's error counted as the device's: with two
                # devices, one hiccup of the bar took a sound GPU out for the run.
                raise _OnTileFailed(e) from e

    def _save(self, to_save: queue.Queue) -> None:
        while True:
            item = to_save.get()
            if item is STOP:
                return
            # A FIFO's reader may never read what is written into it (a paused player):
            # a Ctrl-C does not wait for that save, which leaves no file (atomic_write).
            piped = is_fifo(item.target)
            with self._report_lock:
                saving = not self._cancel.is_set()
                self._saving += saving and not piped
            try:
                if saving:
                    with self._unwaitable() if piped else contextlib.nullcontext():
                        self._save_one(item)
            finally:
                with self._report_lock:
                    self._saving -= saving and not piped
                item.pixels = item.animation = None
                self._budget.give(item.reserved)
                if item.held:
                    self._memory.give(item.held)

    def _save_one(self, item: Item) -> None:
        if item.error:
            # A loader's look at its output folder (check_writable) met the folder
            # as it was removed, file by file (rm -rf): its sub-folder's loss, said once.
            lost = self._lost_alone(item.job)
            self._report(Outcome(item.job, "failed", item.error, notes=tuple(item.notes)) if lost is None else
                         Outcome(item.job, "not done", lost))
            return
        stops = False  # whether no later picture could be written either
        try:
            self._make_folder_of(item)
            if item.animation is None:
                write_image(item.target, item.pixels, item.info, quality=self._quality, metadata=self._metadata)
            else:
                write_frames(item.target, item.animation, item.info, quality=self._quality, metadata=self._metadata)
        except NoRoom as e:
            failure, stops = e.said(self._flags), True
            self._left(e)
        except NcnnSrError as e:
            if out_of_memory(e):
                # The host's memory, run out as it was written (an encoder's, or the
                # system's ENOMEM): every later picture would fail alike, a line each.
                # The run stops, as where a picture is read (loading._read).
                raise host_out_of_memory(e) from e
            failure = e.said(self._flags)
            self._left(e)
        except Exception as e:  # a batch outlives any one file, and counts it as failed
            failure = f"cannot write {item.target}: {e!r}"
        else:
            self._report(Outcome(item.job, "ok", output=item.target, notes=tuple(item.notes)))
            return
        if (lost := self._lost_alone(item.job)) is not None:
            # -r: the sub-folder removed was this picture's output folder (or one above
            # it, below the run's), and no other's: it stopped the whole run, the others
            # undone; in place (-o the same as -i), its input's sub-folder too.
            self._report(Outcome(item.job, "not done", lost))
            return
        if not stops and (changed := self._folder_changed(item)) is not None:
            failure, stops = changed, True
        # A full disk, or a folder removed or made read-only: every later picture would
        # be upscaled only to fail alike, a line each (249 of 300 pictures after a
        # chmod): stop, and say how to go on once it can be written. Another save that
        # failed beside the one that stopped the run is a picture in progress, dropped
        # as the others: the stop says it once, and --skip-existing redoes it.
        if stops and not self._stop(failure):
            return
        self._report(Outcome(item.job, "failed", failure, notes=tuple(item.notes)))

    def _left(self, error: NcnnSrError) -> None:
        """The temporary file that ``error``'s write left, if any, kept for the summary:
        said with the picture's failure, it went unsaid where the run stopped."""
        left = getattr(error, "left_behind", None)
        if left is not None:
            with self._report_lock:
                self._summary.left_behind.append(left)

    def _folder_changed(self, item: Item) -> str | None:
        """After ``item``'s write failed: why no later picture can be written in its
        folder (files.broken_output, which a folder of videos asks too); else None
        (the failure is the picture's)."""
        refused = broken_output(item.target.parent, self._written_into, self._found_writable(item))
        return None if refused is None else refused.said(self._flags)

    def _lost_alone(self, job: Job) -> str | None:
        """Where ``job``'s output folder is missing: why its picture alone (and the
        others of its sub-folder) cannot be written, the run going on, in words: it
        went with its input's sub-folder (in place, files.went_with_input), or it is an
        output sub-folder (-r) this run wrote in, gone (files.output_gone); else None.
        Once one is found, the loaders ask it of each picture (``_outputs_lost``)."""
        folder = job.target.parent
        if folder.is_dir():
            return None
        lost = went_with_input(folder, job.source.parent, job.listed_in)
        if lost is None and (gone := output_gone(folder, self._written_into, job.written_below)) is not None \
                and not gone[1]:
            lost = gone[0]
        if lost is not None:
            self._outputs_lost = True
        return lost

    def _make_folder_of(self, item: Item) -> None:
        """Make ``item``'s output folder where it is missing (-r mirrors sub-folders as
        their pictures come), unless this run wrote there before: then it was removed
        during the run (by hand, or a drive's mount gone), and NoRoom stops the run,
        but for a sub-folder's loss alone (_lost_alone: in place, its input went too).
        Made again, the outputs written before were gone while every picture was said
        done; in place, it held outputs alone, where the pictures were removed or moved
        away. The folder is marked written in before the write: removed just after it,
        before the picture's outcome, it was made again in silence for the next."""
        folder = item.target.parent
        with self._folders_lock:  # two saves into one missing folder: one made
            if not folder.is_dir():
                if (lost := self._lost_alone(item.job)) is not None:
                    raise InputError(lost)  # _save_one says it as the sub-folder's
                if (gone := output_gone(folder, self._written_into)) is not None:
                    raise NoRoom(gone[0])
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise cannot_write(item.target, e) from None
            mark_there(folder, self._written_into)

    def _report(self, outcome: Outcome) -> None:
        with self._report_lock:
            s = self._summary
            if outcome.status == "ok":
                s.ok += 1
            elif outcome.status == "skipped":
                s.skipped += 1
                # Removed during the run, its folder is not made again in silence for
                # the pictures left, the skipped ones gone (see _make_folder_of).
                mark_there(outcome.output.parent, self._written_into)
            elif outcome.status == "not done":
                s.not_done += 1
                if outcome.message not in s.gone_folders:
                    s.gone_folders.append(outcome.message)
            else:
                s.failed += 1
                s.failures.append(outcome)
            if self._on_outcome is not None and not self._errors:
                try:
                    self._on_outcome(outcome)
                except Exception as e:  # the pictures still get done; run raises it after
                    self._errors.append(e)

    # --- joining -----------------------------------------------------------------------

    def _wait_for_saves(self) -> None:
        """Once cancelled, until no save is under way: none starts after it."""
        while True:
            with self._report_lock:
                if not self._saving:
                    return
            time.sleep(0.02)

    @contextlib.contextmanager
    def _unwaitable(self):
        """Marks a worker inside what a Ctrl-C cannot wait for (see _drain)."""
        with self._report_lock:
            self._inside += 1
        try:
            yield
        finally:
            with self._report_lock:
                self._inside -= 1

    def _drain(self, stages, stops_sent: dict) -> bool:
        """Once cancelled, whether every worker has ended: each stage's STOPs are sent
        once the stage before has ended, and False as soon as one worker is inside an
        upscale or the jobs iterator, which may not end for minutes."""
        for threads, next_queue, readers in stages:
            for w in threads:
                while not w.done.wait(0.02):
                    with self._report_lock:
                        if self._inside:
                            return False
                w.thread.join()
            # The queues drain, being cancelled: no STOP waits long for room.
            self._send_stops(next_queue, readers, stops_sent)
        return True

    def _close(self, stages, stops_sent: dict) -> None:
        """Join each stage, then send the next one its STOPs, never twice: this may be
        re-entered after a Ctrl-C."""
        for threads, next_queue, readers in stages:
            join_workers(threads)
            self._send_stops(next_queue, readers, stops_sent)

    def _send_stops(self, next_queue: queue.Queue | None, readers: list, stops_sent: dict) -> None:
        """A STOP for each of ``readers`` of ``next_queue`` (None: the last stage's) that
        ``stops_sent`` does not count as sent yet."""
        if next_queue is not None:
            while stops_sent[id(next_queue)] < len(readers):
                self._put(next_queue, STOP, readers)
                stops_sent[id(next_queue)] += 1


class _FailedOn(Exception):
    """An unforeseen ``error`` from an upscale on ``device`` (see Pipeline._judge)."""

    def __init__(self, device, error: Exception):
        super().__init__(device, error)
        self.device, self.error = device, error








