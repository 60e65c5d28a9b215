"""The commands' fixed cost, old code against new: help, a usage error, the model
listing and one small picture, each a fresh process, the two trees alternating.

Each tree's ncnn_sr is run as `python3 -m ncnn_sr` (or `-m ncnn_sr.dropin`) with
PYTHONPATH set to it, its bytecode cached as an installed package's is (see
measure.as_installed); a round runs each case once per tree, and the table gives
the medians of wall and CPU (user + system) seconds. On a shared machine CPU time
moves less with the load than wall time does.

    python tools/bench_start.py --old /work/main --rounds 9
    python tools/bench_start.py --old ../before --new . --cases help picture --rounds 15
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run in a folder holding a.png, a 64x48 picture.
CASES = {
    "help": ["-m", "ncnn_sr", "--help"],
    "usage-error": ["-m", "ncnn_sr", "-i", "a.png", "-o", "b.png", "--no-such-flag"],
    "models": ["-m", "ncnn_sr", "models"],
    "dropin-help": ["-m", "ncnn_sr.dropin", "-h"],
    "picture": ["-m", "ncnn_sr", "-i", "a.png", "-o", "b.png", "-n", "realesr-animevideov3-x2", "-g", "-1", "-q"],
    "dropin-picture": ["-m", "ncnn_sr.dropin", "-i", "a.png", "-o", "b.png", "-n", "realesr-animevideov3", "-s",
                       "2", "-g", "-1"],
    "x4plus-picture": ["-m", "ncnn_sr", "-i", "a.png", "-o", "b.png", "-n", "realesrgan-x4plus", "-g", "-1", "-q"],
}


# The exit status each case ends with; a run that ends otherwise broke, and is no figure.
EXPECTED = {"usage-error": 2}


def timed(tree: str, case: str, folder: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``case`` with ``tree``'s ncnn_sr; exits
    where it ends otherwise than the case does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = tree
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with subprocess.Popen([sys.executable, *CASES[case]], cwd=folder, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as child:
        try:
            child.communicate()
        except BaseException:
            # subprocess.run waits a quarter of a second for a child it killed on
            # Ctrl-C and leaves it unreaped after: a zombie under an init that reaps
            # nothing, still there for whoever looks (the tools' Ctrl-C test, loaded).
            child.kill()
            child.wait()
            raise
    wall = time.perf_counter() - start
    if child.returncode != EXPECTED.get(case, 0):
        raise SystemExit(f"bench_start.py: case {case} with {tree}: exit status {child.returncode}, "
                         f"not {EXPECTED.get(case, 0)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def positive(text: str) -> int:
    # measure.positive's rule; not imported, as measure imports ncnn_sr and this script
    # loads neither tree's ncnn_sr itself
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the tree (a clone or worktree) of the code before")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parent.parent),
                        help="the tree of the code after (default: this one)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=positive, default=7)
    args = parser.parse_args()
    for flag, tree in (("--old", args.old), ("--new", args.new)):
        # Else Python found the installed ncnn_sr, timed in that tree's place.
        if not os.path.isfile(os.path.join(tree, "ncnn_sr", "__init__.py")):
            parser.error(f"{flag} {tree}: no ncnn_sr package there")
    from PIL import Image

    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    with tempfile.TemporaryDirectory() as folder:
        Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)).save(Path(folder) / "a.png")
        print("| case | old wall | new wall | old CPU | new CPU |\n|---|---|---|---|---|")
        for case in args.cases:
            for tree in trees.values():  # bytecode written, files cached: untimed
                timed(tree, case, folder)
            runs: dict[str, list] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    runs[name].append(timed(tree, case, folder))
            wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
            cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
            print(f"| {case} | {wall['old']:.3f} | {wall['new']:.3f} | {cpu['old']:.3f} | {cpu['new']:.3f} |",
                  flush=True)


# The stop signal that ended the run, for its exit status (128 + it, as a shell says).
_stopped_by = [signal.SIGINT]


def _stopped(signum, frame):
    """SIGTERM and SIGHUP stop the run as Ctrl-C does, its timed child killed with it
    (``timed``'s doing): by their default the tool died alone (measure.run_main,
    which this script does not import, does the same for the other tools)."""
    _stopped_by[0] = signum
    raise KeyboardInterrupt


if __name__ == "__main__":
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:
            signal.signal(getattr(signal, name), _stopped)
    try:
        main()
    except KeyboardInterrupt:
        print("bench_start.py: interrupted", file=sys.stderr)
        sys.exit(128 + _stopped_by[0])
