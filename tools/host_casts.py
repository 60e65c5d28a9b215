"""What the fp16 casts ncnn makes on the host for a discrete GPU cost, on this CPU.

For a float32 input, ncnn casts it to fp16 on the host before the upload, and casts the
fp16 output back after the download (ncnn's cast_float32_to_float16 and
cast_float16_to_float32, with the net's threads). This times those casts, with the
engine's own 8-bit conversions around them, on one window of realesr-animevideov3-x2
(3 planes of SIZE² in, of (2·SIZE)² out), against numpy making and reading float16
planes itself. No GPU needed; interleaved, median and best of --count.

    python tools/host_casts.py --size 512 --count 15
"""
from __future__ import annotations

import argparse
import statistics
import time

import ncnn
import numpy as np


def positive(text: str) -> int:
    # measure.positive's rule; not imported, as measure loads ncnn_sr, which this tool,
    # timing ncnn's own casts, does without
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=positive, default=512)
    ap.add_argument("--scale", type=positive, default=2)
    ap.add_argument("--count", type=positive, default=15)
    ap.add_argument("--threads", type=positive, default=2)
    args = ap.parse_args()
    rng = np.random.RandomState(0)
    picture = rng.randint(0, 256, (args.size, args.size, 3), np.uint8)
    side = args.size * args.scale
    output32 = rng.rand(3, side, side).astype(np.float32)
    output16 = output32.astype(np.float16)
    table16 = (np.arange(256, dtype=np.float32) / 255).astype(np.float16)
    opt = ncnn.Option()
    opt.num_threads = args.threads
    packed16 = ncnn.Mat()
    ncnn.cast_float32_to_float16(ncnn.Mat(output32), packed16, opt)

    def in_ncnn():  # the engine's float32 planes, then ncnn's cast
        planar = np.ascontiguousarray(picture.transpose(2, 0, 1), dtype=np.float32) / 255
        ncnn.cast_float32_to_float16(ncnn.Mat(planar).clone(), ncnn.Mat(), opt)

    def in_numpy16():  # float16 planes from a 256-entry table: ncnn would upload them as they are
        ncnn.Mat(np.take(table16, np.ascontiguousarray(picture.transpose(2, 0, 1)))).clone()

    def out_ncnn():  # ncnn's cast back, then rounding to 8 bits
        wide = ncnn.Mat()
        ncnn.cast_float16_to_float32(packed16, wide, opt)
        np.clip(np.asarray(wide) * 255 + 0.5, 0, 255).astype(np.uint8)

    def out_numpy16():  # the fp16 output read by numpy (extract type 1)
        np.clip(output16.astype(np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)

    steps = {"input: ncnn's cast": in_ncnn, "input: numpy float16": in_numpy16,
             "output: ncnn's cast": out_ncnn, "output: numpy float16": out_numpy16}
    times = {name: [] for name in steps}
    for _ in range(args.count):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    print(f"| {args.size} px window, x{args.scale} | median ms | best ms |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts) * 1e3:.2f} | {min(ts) * 1e3:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
