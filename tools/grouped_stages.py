"""Grouped stages: could fewer, approximate stages give a discrete GPU seam-free
output at a few host round trips a window instead of exact stages' 23?

Exact stages (``staged``) run RRDBNet's trunk one block at a time over the whole
picture, each cell with the block's whole reach (15 px) of context: the whole
picture's output, but on a GPU every stage's 64-channel map crosses the bus (11-15x
slower than blended windows on an H200). This cuts the trunk into GROUPS stages
instead (consecutive blocks joined), each run in cells with only REACH pixels of
context, cropped as the reference rule crops: GROUPS round trips a window. Prints,
for each GROUPS:REACH asked, the compute (multiply-adds ncnn ran, from
tools/seams.py's counter) against the reference rule's, and PSNR and largest
difference against the whole picture (no mirrored border), and the wall time. Float
32; --device 0 times the stages on a GPU (the whole picture is still the CPU's).
23:15 is exact stages as the engine runs them; 1:10 is one stage, the whole trunk,
with the reference rule's context.

    python tools/grouped_stages.py --image photo.png --tile 200 --groups 23:15 1:10 4:17
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from PIL import Image

import ncnn_sr.engine as engine
from ncnn_sr import Upscaler
from ncnn_sr.bench import psnr
from ncnn_sr.models import resolve_model
from ncnn_sr.netsplit import plan_network as network_plan
from ncnn_sr.netsplit import Stage

from measure import run_main
from seams import MacCounter, run


def grouped(plan, groups: int, reach: int):
    """``plan`` with its stages joined into ``groups`` runs of consecutive stages, each
    claiming ``reach``: the engine then gives each cell that much context."""
    stages = plan.stages
    bounds = [round(i * len(stages) / groups) for i in range(groups + 1)]
    return dataclasses.replace(plan, stages=tuple(
        Stage(stages[b].source, stages[e - 1].target, reach, stages[e - 1].channels)
        for b, e in zip(bounds, bounds[1:])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--device", type=int, default=-1, help="where the grouped stages run")
    ap.add_argument("--groups", nargs="+", default=["23:15", "1:10", "4:17"], help="GROUPS:REACH pairs")
    args = ap.parse_args()
    try:
        asked = [tuple(int(n) for n in pair.split(":")) for pair in args.groups]
        if any(len(pair) != 2 for pair in asked):
            raise ValueError("not a pair")
    except ValueError:
        raise SystemExit(f"grouped_stages.py: --groups takes GROUPS:REACH pairs, not {' '.join(args.groups)}")
    spec = resolve_model(args.model)
    plan = network_plan(spec.param_path.read_bytes(), spec.input_blob, spec.output_blob)
    stages = plan.stages if plan is not None else ()
    if not stages or any(s.norm is not None for s in stages):
        raise SystemExit("grouped_stages.py: the model's trunk has no plain stages to group")
    for groups, reach in asked:  # checked before the whole picture's run, not after it
        if not 1 <= groups <= len(stages) or reach < 0:
            raise SystemExit(f"grouped_stages.py: --groups {groups}:{reach}: give 1 to {len(stages)} groups "
                             f"({args.model}'s trunk has {len(stages)} stages) and a reach of 0 or more")
    image = np.asarray(Image.open(args.image).convert("RGB"))
    counter = MacCounter(resolve_model(args.model).param_path.read_bytes())
    whole_tile = max(image.shape[:2]) + 32
    whole, _, _ = run(Upscaler(args.model, device=-1, tile=whole_tile, precision="fp32", tile_pad=0), image, counter)
    _, reference, _ = run(Upscaler(args.model, device=-1, tile=args.tile, precision="fp32", tile_pad=10), image,
                          counter)
    print(f"{args.model}, {image.shape[1]}x{image.shape[0]}, {args.tile} px cells, device {args.device}, fp32")
    print("| groups | reach | compute | PSNR dB | max diff | time |\n|---|---|---|---|---|---|")
    real_plan = engine.plan_network
    for groups, reach in asked:
        def plan_network(*a, **k):
            return grouped(real_plan(*a, **k), groups, reach)
        engine.plan_network = plan_network  # read as the Upscaler loads its network
        try:
            up = Upscaler(args.model, device=args.device, tile=args.tile, precision="fp32", tile_pad=10,
                          overlap=15, exact=True)
            out, macs, seconds = run(up, image, counter)
            up.close()
        finally:
            engine.plan_network = real_plan
        worst = int(np.abs(whole.astype(int) - out).max())
        print(f"| {groups} | {reach} | {macs / reference:.3f} | {psnr(whole, out):.2f} | {worst} | {seconds:.1f} s |",
              flush=True)


if __name__ == "__main__":
    run_main(main)
