"""Stress: a Pipeline's run memory budget, with failover, failed saves, cancels and Ctrl-C.

Each run is a Pipeline of fake devices (scale 1, each upscale a moment long) over a
folder of stills and animations (APNG) of mixed sizes, the run's memory
(budget.memory_limit, patched) room for 0.5 to 3 pictures' needs, so that pictures
wait for room, and some alone need more than all of it. At random: 1 to 3 loaders,
1 to 3 savers, queue_size 1 to 4, 1 to 3 devices of 1 or 2 proc workers, a device
lost (failing every picture from its n-th on), bad pictures (failing on every
device), saves that fail (a full disk: NoRoom, which stops the run; another write
error, which fails that picture alone), broken pictures (a still of no picture, an
animation cut short: its frames' memory taken, then its reading failed), outputs
there already with skip_existing, on_outcome raising at its n-th call (a closed
stderr: run raises it once every job is done), and the run cancelled, or sent a
Ctrl-C (SIGINT, the run in the main thread), at the n-th upscale. What must hold:

- the run ends: a watchdog dumps every thread's stack (faulthandler) and ends the
  tool, exit status 3, when one takes longer than --hang seconds;
- each picture gets at most one outcome; a run not ended early, exactly one;
- a picture that alone needs more memory than the run has fails in one line
  ("needs about ... more than the ... available", or "... animations may take"),
  and no picture that fits alone fails for memory, whatever ended the run;
- a run not ended early, with a sound device: each good picture is written, each
  bad one fails on the devices, each failed save and broken picture fails alone,
  each skipped one is skipped; a full disk stops the run;
- a run not ended early holds no memory at its end (Pipeline._memory.held and the
  animations' budget are 0). One ended early may leave what its dropped pictures
  held: counted (a run's budget is its own), not wrong; the Pipeline then runs
  again, with no cancel, Ctrl-C or full disk, and must tell of each picture once
  (those written skipped) and hold nothing at its end.

    python tools/memory_stress.py --runs 300 --seed 1
    python tools/memory_stress.py --runs 1000 --seed 2 --hang 20
    python tools/memory_stress.py --runs 500 --jitter
    python tools/memory_stress.py --runs 500 --wide --jitter

Bad pictures are at most as many as there are proc workers: more in a row take every
device out by design (Pipeline._at_fault).
"""
from __future__ import annotations

import argparse
import collections
import faulthandler
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ncnn_sr import pipeline as pipeline_mod
from ncnn_sr.animation import frames_write_bytes
from ncnn_sr.budget import MemoryBudget
from ncnn_sr.devices import Device
from ncnn_sr.errors import NoRoom
from ncnn_sr.images import write_bytes
from ncnn_sr.jobs import Job
from ncnn_sr.lanes import Lane
from ncnn_sr.pipeline import Pipeline

from measure import positive

SIZES = (4, 6, 8, 12, 16)
WRITERS = pipeline_mod.write_image, pipeline_mod.write_frames  # as they were, each run wrapping them afresh
# An amount as budget.size_words says it: "1.2 GB", "12 MB", "1.5 MB", "20 kB", "900 bytes".
AMOUNT = r"\d+(?:\.\d)? (?:GB|MB|kB|bytes?)"
MEMORY = re.compile(rf"needs? about {AMOUNT} of memory, more than the {AMOUNT} (available|animations may take)")
FOR_MEMORY = re.compile(rf"about {AMOUNT} of memory")


class Closed(OSError):
    """What on_outcome raises at its n-th call: a closed stderr, say."""


class FakeDevice:
    """Gives a picture back as it came; fails a bad one (green 1 in its first pixel)
    in an unforeseen way; a lost one fails every call from its ``lost_after``-th on.
    Its ``hooks`` (the run's) may cancel or interrupt the run at a call."""

    scale = 1

    def __init__(self, index: int, lost_after: int | None, rng: random.Random, hooks):
        self.device = Device(index, "fake", "discrete", 8000)
        self.lost_after, self._rng, self._hooks = lost_after, rng, hooks
        self._lock = threading.Lock()
        self.calls = 0

    def upscale(self, image, progress=None, **kw):
        with self._lock:
            call = self.calls
            self.calls += 1
            pause = self._rng.random() * 0.002
        self._hooks()
        time.sleep(pause)
        if progress is not None:
            progress(1, 1)  # where a cancel stops an upscale
        if self.lost_after is not None and call >= self.lost_after:
            raise RuntimeError("vkQueueSubmit failed")
        if image[0, 0, 1] == 1:
            raise ValueError("odd picture")
        return image.copy()


def still_need(side: int) -> int:
    return side * side * 3 + write_bytes(side, side, 3, 1, "png")


def animation_frames(side: int, frames: int) -> int:
    """What the animations' budget counts: scale 1, the frames and the result twice."""
    return frames * 4 * 3 * side * side


def animation_need(side: int, frames: int) -> int:
    """What the run's memory holds for an animation: its frames and, as for a still,
    their writing (as RGB or RGBA, whichever takes more, as the loader counts it)."""
    return animation_frames(side, frames) + max(frames_write_bytes(side, side, channels, 1, frames, "png")
                                                for channels in (3, 4))


def too_large(picture: dict, limit: int, animation_memory: int | None) -> bool:
    """Whether ``picture`` alone needs more than the run's memory, or an animation's
    frames more than the animations may take (with none asked, half the machine's)."""
    if picture["need"] > limit:
        return True
    return picture["frames"] > 1 and animation_memory is not None and \
        animation_frames(picture["side"], picture["frames"]) > animation_memory


def plan(rng: random.Random, wide: bool = False) -> dict:
    count = rng.randint(1, 20)
    pictures = []
    for i in range(count):
        side, frames = rng.choice(SIZES), (rng.randint(2, 3) if rng.random() < 0.25 else 1)
        pictures.append({"side": side, "frames": frames,
                         "need": still_need(side) if frames == 1 else animation_need(side, frames)})
    needs = sorted(p["need"] for p in pictures)
    limit = int(needs[len(needs) // 2] * (rng.uniform(0.5, 3) if rng.random() < 0.5 else rng.uniform(0.9, 1.3)))
    if rng.random() < 0.2:
        limit = rng.choice(needs)  # one that fits alone, exactly
    animation_memory = None if rng.random() < 0.7 else int(limit * rng.uniform(0.5, 1.5))
    workers = [rng.randint(1, 3 if wide else 2) for _ in range(rng.randint(1, 4 if wide else 3))]
    fits = [i for i, p in enumerate(pictures) if not too_large(p, limit, animation_memory)]
    bad = rng.sample(fits, min(len(fits), rng.choice((0, 0, 1, 2)), sum(workers)))
    good = [i for i in fits if i not in bad]
    roles = {i: rng.choice(("skip", "write-fails", "broken")) for i in good if rng.random() < 0.15}
    if good and rng.random() < 0.15:
        roles[rng.choice(good)] = "no-room"
    for i in bad:
        roles[i] = "bad"
    return {"pictures": pictures, "limit": limit, "roles": roles, "workers": workers,
            "lost": {i: rng.randint(0, 3) for i in range(len(workers)) if rng.random() < (0.45 if wide else 0.3)},
            "load_workers": rng.randint(1, 4 if wide else 3), "save_workers": rng.randint(1, 3), "queue_size": rng.randint(1, 4),
            "animation_memory": animation_memory,
            "cancel_at": rng.randint(0, 8) if rng.random() < 0.15 else None,
            "interrupt_at": rng.randint(0, 8) if rng.random() < 0.15 else None,
            "stay_inside": rng.random() < 0.5,
            "outcome_fails_at": rng.randint(0, 5) if rng.random() < 0.08 else None,
            "cancel_after_outcomes": rng.randint(0, 4) if rng.random() < 0.1 else None}


def make_jobs(folder: Path, p: dict) -> list[Job]:
    jobs = []
    (folder / "out").mkdir()
    for i, picture in enumerate(p["pictures"]):
        side, role = picture["side"], p["roles"].get(i)
        frames = []
        for f in range(picture["frames"]):
            pixels = np.zeros((side, side, 3), np.uint8)
            pixels[..., 0], pixels[..., 2] = i, 10 * f  # frames that differ: Pillow merges equal ones
            pixels[0, 0, 1] = role == "bad"
            frames.append(Image.fromarray(pixels))
        source = folder / f"p{i:02d}.png"
        if len(frames) > 1:
            frames[0].save(source, save_all=True, append_images=frames[1:], duration=100)
        else:
            frames[0].save(source)
        if role == "broken":  # a still of no picture; an animation cut short, its first frame whole
            data = source.read_bytes()
            source.write_bytes(data[:-1] if len(frames) > 1 else data[:20])
        jobs.append(Job(source, folder / "out" / source.name))
        if role == "skip":
            frames[0].save(jobs[-1].target)
    return jobs


def failing_writes(roles: dict[str, str]):
    """write_image and write_frames as the pipeline calls them, failing the outputs
    ``roles`` name: a full disk, or another write error."""
    def wrap(write):
        def call(path, *args, **kwargs):
            role = roles.get(Path(path).name)
            if role == "no-room":
                raise NoRoom(f"cannot write {path}: no space left on device (fake)")
            if role == "write-fails":
                raise OSError(5, "Input/output error (fake)")
            return write(path, *args, **kwargs)
        return call
    return wrap(WRITERS[0]), wrap(WRITERS[1])


class Watchdog:
    """Ends the tool with every thread's stack once a run takes more than ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds, self._deadline, self._about = seconds, None, ""
        threading.Thread(target=self._watch, daemon=True).start()

    def arm(self, about: str) -> None:
        self._about, self._deadline = about, time.monotonic() + self.seconds

    def disarm(self) -> None:
        self._deadline = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            deadline = self._deadline  # read once: the run may end meanwhile
            if deadline is not None and time.monotonic() > deadline:
                print(f"HANG: {self._about}", file=sys.stderr, flush=True)
                faulthandler.dump_traceback(sys.stderr, all_threads=True)
                os._exit(3)


def one_run(p: dict, rng: random.Random, folder: Path, watchdog: Watchdog, seen: collections.Counter) -> list[str]:
    jobs = make_jobs(folder, p)
    name_roles = {f"p{i:02d}.png": role for i, role in p["roles"].items()}
    pipeline_mod.write_image, pipeline_mod.write_frames = failing_writes(name_roles)
    pipeline_mod.budget.memory_limit = lambda: p["limit"]
    main = threading.get_ident()
    state = {"in_run": True, "calls": 0}
    lock = threading.Lock()
    box: dict = {}

    def hooks():
        with lock:
            call = state["calls"]
            state["calls"] += 1
            if state.get("again"):
                return
            if call == p["cancel_at"] and "pipeline" in box:
                box["pipeline"].cancel()
            interrupt = call == p["interrupt_at"] and state["in_run"]
            if interrupt:
                seen["Ctrl-C sent"] += 1
                signal.pthread_kill(main, signal.SIGINT)
        if interrupt and p["stay_inside"]:
            time.sleep(0.1)  # a long tile: the run leaves this worker behind (Summary.abandoned)

    ups = [FakeDevice(i, p["lost"].get(i), random.Random(rng.random()), hooks) for i in range(len(p["workers"]))]
    outcomes: collections.Counter = collections.Counter()

    def on_outcome(o):
        outcomes[o.job.source.name] += 1
        if sum(outcomes.values()) - 1 == p["outcome_fails_at"] and not state.get("again"):
            raise Closed(32, "Broken pipe (fake stderr)")
        if (p["cancel_after_outcomes"] is not None and sum(outcomes.values()) > p["cancel_after_outcomes"]
                and not state.get("again")):
            box["pipeline"].cancel()

    pipe = Pipeline([Lane(up, w) for up, w in zip(ups, p["workers"])], load_workers=p["load_workers"],
                    save_workers=p["save_workers"], queue_size=p["queue_size"], skip_existing=True,
                    on_outcome=on_outcome, animation_memory=p["animation_memory"])
    box["pipeline"] = pipe
    watchdog.arm(repr(p))
    interrupted_out = False
    try:
        summary = pipe.run(jobs)
    except KeyboardInterrupt:  # one landing as run returns
        interrupted_out = True
    except Closed:
        return told_failed(pipe, jobs, watchdog, seen)
    finally:
        with lock:
            state["in_run"] = False
    watchdog.disarm()
    if interrupted_out:
        seen["KeyboardInterrupt out of run"] += 1
        return []
    wrong = []
    early = summary.cancelled or summary.stopped is not None or summary.abandoned
    why = ("abandoned" if summary.abandoned else "cancelled" if summary.cancelled
           else "stopped: " + summary.stopped.split(":")[0][:40] if summary.stopped else "complete")
    seen[f"run {re.sub(r'/.*', '', why)}"] += 1
    if any(n > 1 for n in outcomes.values()):
        wrong.append(f"a picture had several outcomes: {outcomes}")
    if not early and len(outcomes) != len(jobs):
        wrong.append(f"a complete run told of {len(outcomes)} pictures of {len(jobs)}")
    messages = {f.job.source.name: f.message for f in summary.failures}
    sound = any(up.lost_after is None for up in ups)
    for i, picture in enumerate(p["pictures"]):
        name, role = f"p{i:02d}.png", p["roles"].get(i)
        room = p["limit"]
        said = messages.get(name)
        if said is not None and ("\n" in said or name not in said):
            wrong.append(f"{name} failed as {said!r}")
        if too_large(picture, room, p["animation_memory"]):
            seen["pictures too large alone"] += 1
            if said is not None and MEMORY.search(said):
                seen["pictures too large alone, failed in words"] += 1
            elif not early or said is not None:
                wrong.append(f"{name}, needing {picture['need']} of {room}, ended as {said!r} "
                             f"(outcomes {outcomes[name]})")
            continue
        if said is not None and FOR_MEMORY.search(said):
            wrong.append(f"{name}, needing {picture['need']} of {room}, failed for memory: {said}")
        if early or not sound:
            continue
        expected = {"bad": "failed", "write-fails": "failed", "broken": "failed", "skip": "skipped"}.get(role, "ok")
        seen[f"pictures checked in complete runs: {role or 'good'}"] += 1
        ok = (folder / "out" / name).is_file() and outcomes[name] == 1
        if expected == "failed":
            words = {"bad": "upscaling failed on", "write-fails": "cannot write", "broken": "broken"}[role]
            if said is None or words not in said:
                wrong.append(f"{name} ({role}) ended as {said!r}")
        elif expected == "ok" and (said is not None or not ok):
            wrong.append(f"{name} ({role}, {picture['frames']} frames) ended as {said!r}")
    if not early and "no-room" in p["roles"].values() and sound:
        wrong.append("a full disk did not stop the run")
    held = (pipe._memory.held, pipe._budget.held)
    if held != (0, 0):
        seen[f"{'early' if early else 'complete'} runs ending with memory held"] += 1
        if not early:
            wrong.append(f"held at the end (run memory, animations): {held}")
    if early and not summary.abandoned:
        wrong += run_again(pipe, jobs, p, name_roles, state, outcomes, watchdog, seen)
    return wrong


def told_failed(pipe: Pipeline, jobs: list[Job], watchdog: Watchdog, seen: collections.Counter) -> list[str]:
    """What went wrong in a run whose on_outcome raised (run raises it once every job is
    done, and tells of none after): the summary still counts each job."""
    watchdog.disarm()
    summary = pipe._summary
    seen["runs whose on_outcome raised"] += 1
    if summary.cancelled or summary.stopped is not None or summary.abandoned:
        return []
    wrong = []
    if summary.done != len(jobs):
        wrong.append(f"on_outcome raised: {summary.done} done of {len(jobs)}")
    if (pipe._memory.held, pipe._budget.held) != (0, 0):
        wrong.append(f"on_outcome raised: held at the end {(pipe._memory.held, pipe._budget.held)}")
    return wrong


def run_again(pipe: Pipeline, jobs: list[Job], p: dict, name_roles: dict, state: dict,
              outcomes: collections.Counter, watchdog: Watchdog, seen: collections.Counter) -> list[str]:
    """What went wrong in a run of ``pipe`` again, after one that ended early, with no
    cancel, Ctrl-C or full disk: it starts afresh, the outputs written skipped."""
    state["again"] = True
    for name in [name for name, role in name_roles.items() if role == "no-room"]:
        del name_roles[name]
    outcomes.clear()
    watchdog.arm(f"again: {p!r}")
    summary = pipe.run(jobs)
    watchdog.disarm()
    seen["runs again after an early end"] += 1
    wrong = []
    if summary.cancelled or summary.abandoned:
        wrong.append(f"run again: cancelled {summary.cancelled}, abandoned {summary.abandoned}")
    if summary.stopped is None and (len(outcomes) != len(jobs) or any(n != 1 for n in outcomes.values())):
        wrong.append(f"run again: told of {dict(outcomes)}, {len(jobs)} pictures")
    if summary.stopped is None and (pipe._memory.held, pipe._budget.held) != (0, 0):
        wrong.append(f"run again: held at the end {(pipe._memory.held, pipe._budget.held)}")
    return wrong


def count_waits(seen: collections.Counter) -> None:
    """Count the takes of memory that found no room at once (a loader waiting)."""
    take = MemoryBudget.take

    def counted(self, amount, cancel):
        if self.held + amount > self.total:
            seen["takes of memory that waited for room"] += 1
        return take(self, amount, cancel)
    MemoryBudget.take = counted


def widen_races() -> None:
    """failover_stress's pauses where the proc workers hand over, and one before each
    take and give of memory."""
    from failover_stress import widen_races as hand_overs

    hand_overs()
    for name in ("take", "give"):
        def paused(method):
            def call(*args, **kwargs):
                time.sleep(random.random() * 0.003)
                return method(*args, **kwargs)
            return call
        setattr(MemoryBudget, name, paused(getattr(MemoryBudget, name)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=positive, default=200, help="how many random runs")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the runs' plans (the threads' order is not)")
    parser.add_argument("--hang", type=float, default=30, help="seconds a run may take before it counts as hung")
    parser.add_argument("--jitter", action="store_true",
                        help="random pauses where the workers hand over and take memory, to widen the races")
    parser.add_argument("--wide", action="store_true",
                        help="up to 4 devices of up to 3 proc workers, 4 loaders, more of them lost")
    parser.add_argument("--show", type=int, default=3, help="how many failing runs to print in full")
    args = parser.parse_args()
    logging.getLogger("ncnn_sr").setLevel(logging.CRITICAL)  # the warnings of each run
    rng = random.Random(args.seed)
    watchdog = Watchdog(args.hang)
    from failover_stress import Tally

    tally = Tally(args.show, lambda line: re.sub(r"p\d\d\.png|\d+|\(.*\)|\[.*\]|'.*'", "#", line)[:60])
    count_waits(tally.seen)
    if args.jitter:
        widen_races()
    scratch = Path(tempfile.mkdtemp(prefix="memory_stress_"))
    try:
        for run in range(args.runs):
            p = plan(rng, args.wide)
            folder = scratch / f"run{run}"
            folder.mkdir()
            tally.add(run, p, one_run(p, rng, folder, watchdog, tally.seen))
            shutil.rmtree(folder, ignore_errors=True)  # an abandoned run's workers may write on: ignored
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tally.report(args.runs)


if __name__ == "__main__":
    sys.exit(main())
