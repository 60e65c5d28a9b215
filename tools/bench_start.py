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


def timed(tree: str, args: list[str], folder: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``args`` with ``tree``'s ncnn_sr."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = tree
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=folder, env=env, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="the tree (a clone or worktree) of the code before")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parent.parent),
                        help="the tree of the code after (default: this one)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from PIL import Image

    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    with tempfile.TemporaryDirectory() as folder:
        Image.frombytes("RGB", (64, 48), os.urandom(64 * 48 * 3)).save(Path(folder) / "a.png")
        print("| case | old wall | new wall | old CPU | new CPU |\n|---|---|---|---|---|")
        for case in args.cases:
            for tree in trees.values():  # bytecode written, files cached: untimed
                timed(tree, CASES[case], folder)
            runs: dict[str, list] = {name: [] for name in trees}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    runs[name].append(timed(tree, CASES[case], folder))
            wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
            cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
            print(f"| {case} | {wall['old']:.3f} | {wall['new']:.3f} | {cpu['old']:.3f} | {cpu['new']:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
