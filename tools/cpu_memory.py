"""Peak resident memory of one CPU tile, per model: where the catalog's
``cpu_bytes_per_pixel`` comes from.

Development only; the package never imports this. For each model, a child process
loads the model on the CPU (``Upscaler(model, device=-1)``) and exits: that is the
baseline. Then, for each size n, a fresh child loads it the same way and upscales one
n×n RGB picture as a single tile (``tile=n``). Each child's peak resident memory is its
ru_maxrss, read with os.wait4. The cost of the tile is peak - baseline; divided by the
padded tile's pixels, (n + 2*pad)², it gives bytes per input pixel.

    python tools/cpu_memory.py
    python tools/cpu_memory.py --models realesrgan-x4plus --sizes 64 128 --threads 2

ncnn's per-thread scratch grows with --threads (default: ncnn's, all cores), so measure
with the thread count the estimate is meant for.
"""
from __future__ import annotations

import argparse
import math
import sys

from ncnn_sr.bench import run_child
from ncnn_sr.models import resolve_model

from measure import run_main

MODELS = ["realesr-animevideov3-x2", "realesr-animevideov3-x3", "realesr-animevideov3-x4",
          "realesrgan-x4plus-anime", "realesrgan-x4plus"]
# The cap on n: bigger single tiles of the RRDBNet models take many GB.
MAX_SIZE = 256


def child(model: str, n: int, threads: int, pad: int) -> None:
    """In the child: load the model, and upscale an n×n picture as one tile if n > 0,
    padded by ``pad`` pixels a side (the reference rule), as the arithmetic counts it."""
    import numpy as np
    from ncnn_sr import Upscaler
    up = Upscaler(model, device=-1, tile=max(n, 32), tile_pad=pad, threads=threads or None)
    if n:
        picture = np.random.default_rng(0).integers(0, 256, (n, n, 3), dtype=np.uint8)
        out = up.upscale(picture)
        assert out.shape == (n * up.scale, n * up.scale, 3)


def peak_rss(model: str, n: int, threads: int, pad: int) -> int:
    """Peak resident bytes of a child process running ``child(model, n, threads, pad)``."""
    run = run_child([sys.executable, __file__, "--child", model, str(n), str(threads), str(pad)])
    if run.returncode != 0:
        what = f"at {n}x{n}" if n else "loaded alone"
        raise SystemExit(f"cpu_memory.py: child for {model} {what} failed with exit status {run.returncode}: "
                         f"{run.stderr_tail}")
    if run.rss_mb is None:
        raise SystemExit("this system does not tell a child process's peak memory, which this tool measures")
    return int(run.rss_mb * 2**20)


def round_up(value: float) -> int:
    """Up to a conservative round number: two significant digits, plus 10 % margin."""
    value *= 1.1
    step = 10 ** max(0, int(math.log10(value)) - 1)
    return int(math.ceil(value / step) * step)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 192, 256],
                    help=f"square input sides, one tile each (at most {MAX_SIZE})")
    ap.add_argument("--pad", type=int, default=10, help="tile padding per side (the models' prepadding)")
    ap.add_argument("--threads", type=int, default=0, help="ncnn threads (0: ncnn's default)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], *map(int, args.child[1:]))
        return 0
    if max(args.sizes) > MAX_SIZE or min(args.sizes) < 32:
        ap.error(f"sizes must be between 32 and {MAX_SIZE}")
    for model in args.models:  # a wrong one in one line, not in its child's traceback
        resolve_model(model)

    mib = 1 << 20
    print("| model | input | padded px | baseline MiB | peak MiB | tile MiB | bytes/px |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for model in args.models:
        base = peak_rss(model, 0, args.threads, args.pad)
        points = []
        for n in sorted(set(args.sizes)):  # one size twice: a slope through one point
            peak = peak_rss(model, n, args.threads, args.pad)
            px = (n + 2 * args.pad) ** 2
            points.append((px, peak - base))
            print(f"| {model} | {n}x{n} | {px} | {base / mib:.0f} | {peak / mib:.0f} | "
                  f"{(peak - base) / mib:.0f} | {(peak - base) / px:.0f} |", flush=True)
        ratios = [d / px for px, d in points]
        if len(points) > 1:  # least-squares slope: the marginal cost of one more pixel
            mx = sum(p for p, _ in points) / len(points)
            my = sum(d for _, d in points) / len(points)
            slope = sum((p - mx) * (d - my) for p, d in points) / sum((p - mx) ** 2 for p, _ in points)
        else:
            slope = ratios[0]
        summary[model] = (max(ratios), slope)

    print()
    print("| model | max bytes/px | fitted slope bytes/px | suggested cpu_bytes_per_pixel |")
    print("|---|---|---|---|")
    for model, (worst, slope) in summary.items():
        print(f"| {model} | {worst:.0f} | {slope:.0f} | {round_up(max(worst, slope))} |")
    return 0


if __name__ == "__main__":
    run_main(main)
