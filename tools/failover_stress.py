"""Stress: a Pipeline's and ordered_map's device failover, on random schedules.

Each schedule is 2 to 4 fake devices of 1 or 2 proc workers each, any of them lost
(failing every picture from its first, second, third or fourth on, as a lost Vulkan
device does), and 0 to 3 bad pictures (failing on every device, as a bug a picture
triggers does); each upscale sleeps a random moment so that the threads interleave
differently every time. What must hold:

- the run ends (no hang);
- with a sound device: every good picture is written, every bad one fails with one
  line, no sound device is among ``Summary.lost`` and each lost device that failed a
  good picture is, and the run is not stopped;
- with none: the run ends, stopped once every device is out, or with every picture
  given an outcome;
- each picture gets at most one outcome, and the exit status the commands give is 1
  where a picture is bad or every device lost, else 0.

Videos (ordered_map): a folder of 4 videos through one set of lanes, each with a bad
frame at random, stopped as the command stops a folder (once more videos in a row than
batch_cli.FAILED_EVERYWHERE fail on every device in service). With a sound device,
every video without a bad frame is done, frames in order, and each with one fails; a
bad video alone does not stop the folder (two in a row may, by design); a lost device
that failed a frame of a video done takes no frame of the later ones. With none, the
folder stops as soon as the rule allows. How each video ended is counted, and how many
times a lost device failed a good frame of a video (a warning each).

    python tools/failover_stress.py --runs 300 --seed 1
    python tools/failover_stress.py --runs 300 --video
    python tools/failover_stress.py --runs 2000 --jitter

Bad pictures are at most as many as there are proc workers: more in a row take every
device out by design (Pipeline._at_fault).
"""
from __future__ import annotations

import argparse
import collections
import inspect
import logging
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ncnn_sr.devices import Device
from ncnn_sr.jobs import Job
from ncnn_sr.lanes import Lane, UpscalingFailed, ordered_map
from ncnn_sr.pipeline import Pipeline

from measure import positive

PICTURES = 16
FRAMES = 24
VIDEOS = 4  # a folder's
try:  # how many videos in a row failed on every device in service a folder of videos goes on after
    from ncnn_sr.batch_cli import FAILED_EVERYWHERE
except ImportError:
    FAILED_EVERYWHERE = 0  # stopped at the first
HANG = 30  # seconds a run may take before it counts as hung


class FakeDevice:
    """Gives a picture back as it came, after a random moment; fails a 5x5 one (a
    bad picture) in an unforeseen way; a lost one fails every call from its
    ``lost_after``-th on."""

    scale = 1

    def __init__(self, index: int, lost_after: int | None, rng: random.Random):
        self.device = Device(index, "fake", "discrete", 8000)
        self.lost_after, self._rng = lost_after, rng
        self._lock = threading.Lock()
        self.calls = 0
        self.failed_good: set[int] = set()  # the good pictures (by number) it failed

    def upscale(self, image, progress=None, **kw):
        with self._lock:
            call = self.calls
            self.calls += 1
            pause = self._rng.random() * 0.002
        time.sleep(pause)
        if self.lost_after is not None and call >= self.lost_after:
            if image.shape[:2] != (5, 5):
                with self._lock:
                    self.failed_good.add(int(image[0, 0, 0]))
            raise RuntimeError("vkQueueSubmit failed")
        if image.shape[:2] == (5, 5):
            raise ValueError("odd picture")
        return image


class Tally:
    """What a stress tool's runs came to: the wrong ones by ``kind`` (of a wrong line's
    first line), the first ``show`` of them printed in full, and in ``seen`` counts of
    what the runs met on the way."""

    def __init__(self, show: int, kind: Callable[[str], str]):
        self.show, self.kind = show, kind
        self.kinds: collections.Counter = collections.Counter()
        self.seen: collections.Counter = collections.Counter()
        self.failing = self.shown = 0

    def add(self, run: int, plan, wrong: list[str]) -> None:
        self.failing += bool(wrong)
        for line in wrong:
            self.kinds[self.kind(line.split("\n")[0])] += 1
        if wrong and self.shown < self.show:
            self.shown += 1
            print(f"run {run}: {plan}")
            for line in wrong:
                print("   ", line[:4000])

    def report(self, runs: int) -> int:
        """Print the counts; the exit status: 1 if any run was wrong."""
        for what, count in sorted(self.seen.items()):
            print(f"{count:5d}  {what}")
        print(f"{runs} runs, {self.failing} wrong: {dict(self.kinds)}")
        return 1 if self.failing else 0


def widen_races() -> None:
    """A random pause before a proc worker looks for a picture and before it fails one
    it was handed for want of another device: the moments other workers may change
    which device is in service."""
    from ncnn_sr import pipeline, workers

    def paused(method):
        def call(*args, **kwargs):
            time.sleep(random.random() * 0.003)
            return method(*args, **kwargs)
        return call

    workers.ProcQueue.get = paused(workers.ProcQueue.get)
    pipeline.Pipeline._blame = paused(pipeline.Pipeline._blame)
    pipeline.Pipeline._judge = paused(pipeline.Pipeline._judge)


def schedule(rng: random.Random) -> dict:
    count = rng.randint(2, 4)
    workers = [rng.randint(1, 2) for _ in range(count)]
    lost = {i: rng.randint(0, 3) for i in range(count) if rng.random() < 0.4}
    bad = rng.sample(range(PICTURES), min(rng.randint(0, 3), sum(workers)))
    return {"workers": workers, "lost": lost, "bad": sorted(bad), "queue_size": rng.randint(1, 4),
            "load_workers": rng.randint(1, 2)}


def within(seconds: float, call):
    result: dict = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        stacks = "".join(f"--- {t.name}\n" + "".join(traceback.format_stack(sys._current_frames()[t.ident]))
                         for t in threading.enumerate() if t.ident in sys._current_frames())
        raise TimeoutError(stacks)
    if "error" in result:
        raise result["error"]
    return result["value"]


def make_pictures(folder: Path, bad: list[int]) -> list[Job]:
    jobs = []
    for i in range(PICTURES):
        size = 5 if i in bad else 4
        Image.fromarray(np.full((size, size, 3), i, np.uint8)).save(folder / f"p{i:02d}.png")
        jobs.append(Job(folder / f"p{i:02d}.png", folder / "out" / f"p{i:02d}.png"))
    return jobs


def picture_run(plan: dict, rng: random.Random, folder: Path) -> list[str]:
    """What went wrong in one run of ``plan``."""
    for old in folder.iterdir():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    jobs = make_pictures(folder, plan["bad"])
    ups = [FakeDevice(i, plan["lost"].get(i), random.Random(rng.random())) for i in range(len(plan["workers"]))]
    outcomes = collections.Counter()
    p = Pipeline([Lane(up, w) for up, w in zip(ups, plan["workers"])], queue_size=plan["queue_size"],
                 load_workers=plan["load_workers"], on_outcome=lambda o: outcomes.update([o.job.source.name]))
    try:
        summary = within(HANG, lambda: p.run(jobs))
    except TimeoutError as e:
        return ["hang\n" + str(e)]
    wrong = []
    if any(n > 1 for n in outcomes.values()):
        wrong.append(f"a picture had several outcomes: {outcomes}")
    sound = [up for up in ups if up.lost_after is None]
    lost_said = {line.split(":")[0] for line in summary.lost}
    status = 1 if summary.stopped is not None or summary.failed else 0  # as the commands end
    if status != (1 if plan["bad"] or not sound else 0):
        wrong.append(f"exit status {status}")
    if sound:
        failed = sorted(int(f.job.source.stem[1:]) for f in summary.failures)
        if failed != plan["bad"]:
            wrong.append(f"failed {failed}, bad {plan['bad']}: "
                         + "; ".join(f.message for f in summary.failures))
        if summary.stopped is not None:
            wrong.append(f"stopped: {summary.stopped}")
        for f in summary.failures:
            if "\n" in f.message or not f.message.startswith(f"{f.job.source}: upscaling failed on "):
                wrong.append(f"failure said as {f.message!r}")
        for up in sound:
            if str(up.device) in lost_said:
                wrong.append(f"sound {up.device} said lost: {summary.lost}")
        for up in ups:
            if up.failed_good and str(up.device) not in lost_said and not wrong:
                wrong.append(f"lost {up.device} (failed good {sorted(up.failed_good)}) ended in service")
    elif summary.stopped is None and summary.done != PICTURES:
        wrong.append(f"every device lost: not stopped, yet {summary.done} outcomes of {PICTURES}")
    return wrong


def video_run(plan: dict, rng: random.Random, seen: collections.Counter) -> list[str]:
    """What went wrong in one folder of VIDEOS videos of ``plan`` through one set of
    lanes, some with a bad frame, stopped as the command stops a folder; how each video
    ended, counted in ``seen``, with the good frames the lost devices failed."""
    ups = [FakeDevice(i, plan["lost"].get(i), random.Random(rng.random())) for i in range(len(plan["workers"]))]
    lanes = [Lane(up, w) for up, w in zip(ups, plan["workers"])]
    sound = any(up.lost_after is None for up in ups)
    shared = {"out": set()} if "out" in inspect.signature(ordered_map).parameters else {}  # else lanes come back
    wrong, in_row, proven = [], 0, set()  # proven: the lost devices that failed a frame of a video done
    for video in range(VIDEOS):
        bad = {rng.randrange(FRAMES)} if rng.random() < 0.3 else set()
        frames = [np.full((5 if i in bad else 4,) * 2 + (3,), i, np.uint8) for i in range(FRAMES)]
        calls = {id(up): up.calls for up in ups}
        for up in ups:
            up.failed_good.clear()

        def drain():
            try:
                return list(ordered_map(lanes, frames, lambda up, frame: up.upscale(frame), window=rng.randint(1, 6),
                                        **shared))
            except UpscalingFailed as e:
                return e

        try:
            result = within(HANG, drain)
        except TimeoutError as e:
            return ["hang\n" + str(e)]
        seen["videos x lost devices that failed a good frame there (a warning each)"] += sum(
            bool(up.failed_good) for up in ups)
        back = [up for up in ups if id(up) in proven and up.calls > calls[id(up)]]
        if back:
            wrong.append(f"lost {back[0].device}, out for good, back in video {video}")
        kind = f"{'bad frame' if bad else 'no bad frame'}, {'a' if sound else 'no'} sound device"
        if isinstance(result, UpscalingFailed):
            seen[f"{kind}: failed, every_device={result.every_device}"] += 1
            if sound and not bad:
                wrong.append(f"a good video failed: {result}")
            in_row += result.every_device
            if in_row > FAILED_EVERYWHERE:
                seen[f"folder stopped at video {video}, {'a' if sound else 'no'} sound device"] += 1
                if sound and in_row < 2:  # more bad videos in a row may stop it, by design
                    wrong.append(f"a bad video stopped the folder at video {video}")
                elif not sound and video != FAILED_EVERYWHERE:
                    wrong.append(f"every device lost, stopped only at video {video}")
                return wrong
            continue
        seen[f"{kind}: done"] += 1
        in_row = 0
        proven.update(id(up) for up in ups if up.failed_good)
        if bad:
            wrong.append("a bad frame came out")
        elif [int(frame[0, 0, 0]) for frame in result] != list(range(FRAMES)):
            wrong.append("frames out of order or missing")
    if not sound:
        wrong.append("every device lost, the folder not stopped")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=positive, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", action="store_true", help="ordered_map, not a Pipeline")
    parser.add_argument("--jitter", action="store_true",
                        help="random pauses where the workers hand over, to widen the races")
    parser.add_argument("--show", type=int, default=3, help="how many failing runs to print in full")
    args = parser.parse_args()
    logging.getLogger("ncnn_sr").setLevel(logging.CRITICAL)  # the warnings of each run
    rng = random.Random(args.seed)
    if args.jitter:
        widen_races()
    tally = Tally(args.show, lambda line: re.sub(r"\d+|\(.*\)|\[.*\]", "#", line.split(":")[0]))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for run in range(args.runs):
            plan = schedule(rng)
            tally.add(run, plan, video_run(plan, rng, tally.seen) if args.video else picture_run(plan, rng, folder))
    return tally.report(args.runs)


if __name__ == "__main__":
    sys.exit(main())
