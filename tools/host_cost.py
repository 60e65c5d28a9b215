"""The engine's host-side time around the network: what an infinitely fast GPU leaves.

Development only. The network is replaced by a stand-in that returns a fixed output of
the right shape at once (after copying its input, as ncnn does; a GPU's output is
viewed where ncnn left it, not copied), on this machine's Vulkan device dressed as a
discrete GPU, one window at a time. What remains is the engine's own work: colour
conversion in and out, padding, cropping, blending and placing. Best of --repeat, in
ms. On a fast GPU this is what stands between the engine and the raw network; it runs
here, without a GPU, so changes to it can be measured side by side.

An RRDBNet's default on a discrete GPU, its trunk run whole (resident.py), goes
through an extractor of its own that the stand-in does not replace: it is left out,
and such a model runs blended windows, as where a picture's trunk does not fit.

    python tools/host_cost.py --model realesrgan-x4plus --size 512 --tile 200
    python tools/host_cost.py --model realesr-animevideov3-x2 --size 512 --tile 512 --reference
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ncnn_sr import Upscaler, get_device, network
from ncnn_sr.bench import synthetic_picture
from ncnn_sr.devices import Device

from measure import positive, run_main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--size", type=int, default=512, help="side of the square synthetic picture")
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--reference", action="store_true", help="the reference rule (tile_pad 10) instead of the default")
    ap.add_argument("--repeat", type=positive, default=5)
    args = ap.parse_args()
    # Else the real network ran, and its time was given as the host's (see above).
    Upscaler._load_resident = lambda *args, **kwargs: None
    up = Upscaler(args.model, device=_discrete(), tile=args.tile, **({"tile_pad": 10} if args.reference else {}))
    up._windows_ahead = 1
    scale, outputs, calls = up.scale, {}, []

    def instant(self, inputs, output):
        calls.append(1)
        (planes,) = inputs.values()
        np.ascontiguousarray(planes, dtype=np.float32)  # what the engine hands ncnn
        c, h, w = planes.shape
        if (h, w) not in outputs:
            outputs[h, w] = np.random.default_rng(0).random((3, h * scale, w * scale), dtype=np.float32)
        return outputs[h, w]

    network.Network.extract = instant
    picture = synthetic_picture(args.size, args.size)
    up.upscale(picture)
    windows = len(calls)
    if not windows:
        raise SystemExit(f"host_cost.py: {args.model} ran no window through Network.extract, which the stand-in "
                         "replaces: its time would be the network's")
    best = min(_timed(up.upscale, picture) for _ in range(args.repeat))
    rule = "reference rule" if args.reference else "blended windows"
    print(f"{args.model} {args.size}x{args.size} tile {args.tile} {rule}: {best * 1e3:.1f} ms host time, "
          f"{windows} window{'s' if windows > 1 else ''} a run")
    return 0


def _discrete() -> Device:
    here = get_device(0)
    return Device(here.index, here.name, "discrete", here.heap_budget_mb)


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


if __name__ == "__main__":
    run_main(main)
