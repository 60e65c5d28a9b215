"""Seams: how far tiled output is from whole-picture output, and what each tiling costs.

Upscales the picture as one tile and in tiles three ways: the reference rule (10 px
context, tiles cropped), blended windows (the engine's fallback when the stitched
feature map does not fit, and on discrete GPUs when the trunk does not) and exact stages
(RRDBNet's trunk stage by stage over the whole picture: the default on the CPU and
on integrated GPUs, ``exact=True`` on any device). For each: PSNR and largest pixel difference against the
whole picture with the same border rule (the reference rule mirrors the picture beyond its
edges, the seam-free tilings do not), wall time, and the compute, counted as the
multiply-adds of every convolution ncnn ran (from the .param file and the shapes
actually fed in), against the reference rule's.

    python tools/seams.py --image photo.png --model realesrgan-x4plus --tile 200
    python tools/seams.py --image photo.png --device 0 --precision fp32

With --unshuffle 2 or 4 the model (an RRDBNet: realesrgan-x4plus or
realesrgan-x4plus-anime) is first made into one that pixel-unshuffles its input, as
Real-ESRGAN's x2 and x1 models do (alignment 2 or 4): its conv_first widened to the
unshuffled channels, each sub-pixel weighted 1/s², converted with fp32 weights into a
temporary folder (its scale is 4/s).

    python tools/seams.py --image photo.png --tile 112 --precision fp32 --unshuffle 2

With --discrete the GPU of --device is taken for a discrete one (lavapipe standing
in: its times say nothing of a real GPU's), and the exact row is the discrete GPU's
default, the trunk run whole on the GPU and the head in pieces (resident.py); its
compute is the trunk's over the picture and the head's over each piece's window.

    python tools/seams.py --image photo.png --device 0 --discrete --precision fp32

--heap-mb sets the stand-in's heap budget (lavapipe reports 1024 MB, whose half holds the
trunk of a picture of 0.045 megapixels in float32, 0.09 in float16), and --rows picks the rows
(reference, blended, exact; default all): the whole picture is run only for the
border rule the rows need.

    python tools/seams.py --image photo.png --device 0 --discrete --heap-mb 8000 --rows exact
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ncnn_sr import Upscaler
from ncnn_sr import network
from ncnn_sr.bench import psnr
from ncnn_sr.convert import convert_weights, write_model
from ncnn_sr.devices import Device, get_device
from ncnn_sr.engine import DEFAULT_OVERLAP
from ncnn_sr.errors import ModelError
from ncnn_sr.models import ModelSpec, resolve_model
from ncnn_sr.param_file import parse_param
from ncnn_sr.resident import ResidentNetwork

from measure import non_negative, run_main


class MacCounter:
    """Multiply-adds of the convolutions one extraction runs: the layers the output
    depends on, stopping at the blobs fed in."""

    def __init__(self, param_bytes: bytes):
        self.layers = parse_param(param_bytes).layers
        self.producer = {t: i for i, layer in enumerate(self.layers) for t in layer.tops}

    def __call__(self, inputs: dict, output: str) -> int:
        size = {name: shape[1] * shape[2] for name, shape in inputs.items()}
        needed, stack = set(), [output]
        while stack:  # the layers to run, back from the output
            blob = stack.pop()
            if blob in size or blob not in self.producer or self.producer[blob] in needed:
                continue
            needed.add(self.producer[blob])
            stack.extend(self.layers[self.producer[blob]].bottoms)
        macs = 0
        for i in sorted(needed):
            layer = self.layers[i]
            area = max(size[b] for b in layer.bottoms) if layer.bottoms else 0
            if layer.type == "Interp":
                area = int(area * float(layer.params.get(1, 1.0)) * float(layer.params.get(2, 1.0)))
            elif layer.type == "Convolution":
                macs += int(layer.params.get(6, 0)) * area
            for t in layer.tops:
                size[t] = area
        return macs


def run(up: Upscaler, image: np.ndarray, counter: MacCounter) -> tuple[np.ndarray, int, float]:
    """The output, the multiply-adds it took and its wall time."""
    total = [0]
    real_extract = network.Network.extract

    def counting(self, inputs, output):
        total[0] += counter({k: v.shape for k, v in inputs.items()}, output)
        return real_extract(self, inputs, output)

    real_pieces = ResidentNetwork.run_pieces

    def counting_pieces(self, picture, box, tick=None):
        plan = self.plan
        total[0] += counter({self.net.input_blob: picture.shape}, plan.cut_blob)
        height, width = picture.shape[1:]
        for row, col, s, part in real_pieces(self, picture, box, tick):
            window = (0, min(height, row.end + plan.head_context) - row.window,
                      min(width, col.end + plan.head_context) - col.window)
            total[0] += counter({plan.cut_blob: window}, plan.head_output or up.spec.output_blob)
            yield row, col, s, part

    network.Network.extract = counting
    ResidentNetwork.run_pieces = counting_pieces
    try:
        start = time.perf_counter()
        out = up.upscale(image)
        return out, total[0], time.perf_counter() - start
    finally:
        network.Network.extract = real_extract
        ResidentNetwork.run_pieces = real_pieces


def widened(weight: np.ndarray, by: int) -> np.ndarray:
    """``conv_first``'s weight (out, 3, k, k) for the picture pixel-unshuffled by ``by``:
    input channel c * by² + i (sub-pixel i of colour c, as the unshuffle orders them)
    gets colour c's weight over by², so a flat picture gives the features it gave."""
    return np.repeat(weight, by * by, axis=1) / np.float32(by * by)


def unshuffled_model(name: str, by: int, folder: str) -> ModelSpec:
    """Model ``name`` (an RRDBNet x4) made into one that pixel-unshuffles its input by
    ``by``, written in ``folder`` with fp32 weights."""
    tests = str(Path(__file__).resolve().parent.parent / "tests")  # the suite's reader of shipped weights
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from test_convert import rrdb_state

    spec = resolve_model(name)
    layers = parse_param(spec.param_path.read_bytes()).layers
    convs = [layer for layer in layers if layer.type == "Convolution"]
    # conv_first, 15 a block, conv_body, two upsamplings', conv_hr and conv_last; no PReLU.
    if spec.scale != 4 or len(convs) < 21 or (len(convs) - 6) % 15 or any(x.type == "PReLU" for x in layers):
        raise ModelError(f"--unshuffle takes an RRDBNet x4 model (realesrgan-x4plus or "
                         f"realesrgan-x4plus-anime), not {name}")
    state = rrdb_state(name)
    state["conv_first.weight"] = widened(state["conv_first.weight"], by)
    return write_model(convert_weights(state, fp16=False), folder, f"{name}-unshuffled-by-{by}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--device", type=int, default=-1)
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--pad", type=non_negative, default=10)
    ap.add_argument("--overlaps", type=non_negative, nargs="+", default=[DEFAULT_OVERLAP],
                    help="blend widths to measure")
    ap.add_argument("--precision", default="default", help="default, fp32 or bf16 (every row)")
    ap.add_argument("--discrete", action="store_true",
                    help="take the GPU of --device for a discrete one, and measure its default (see above)")
    ap.add_argument("--heap-mb", type=int, help="with --discrete: the stand-in's heap budget in MB")
    ap.add_argument("--rows", default="reference,blended,exact",
                    help="comma-separated: reference, blended, exact (stages, or with --discrete its default)")
    ap.add_argument("--unshuffle", type=int, choices=(2, 4),
                    help="measure the model made to pixel-unshuffle its input by 2 or 4 (see above)")
    args = ap.parse_args()
    if args.discrete:
        if args.device < 0:
            ap.error("--discrete takes a Vulkan device as --device, not the CPU")
        here = get_device(args.device)
        args.device = Device(here.index, here.name, "discrete", args.heap_mb or here.heap_budget_mb)
    elif args.heap_mb:
        ap.error("--heap-mb sets the heap of --discrete's stand-in")
    args.rows = args.rows.split(",")
    if not args.rows or not set(args.rows) <= {"reference", "blended", "exact"}:
        ap.error(f"--rows takes reference, blended and exact, got {','.join(args.rows)}")
    image = np.asarray(Image.open(args.image).convert("RGB"))
    if not args.unshuffle:
        return measure(args, image, args.model)
    with tempfile.TemporaryDirectory() as folder:
        return measure(args, image, unshuffled_model(args.model, args.unshuffle, folder))


def measure(args: argparse.Namespace, image: np.ndarray, model: str | ModelSpec) -> None:
    """Print the table for ``model`` (a name, or the spec of one made here)."""
    counter = MacCounter(resolve_model(model).param_path.read_bytes())
    whole_tile = max(image.shape[:2]) + 32
    wholes = {}
    borders = [("mirrored", dict(tile_pad=args.pad))] if "reference" in args.rows else []
    if set(args.rows) - {"reference"}:
        borders.append(("bare", dict(tile_pad=0)))
    whole_macs = {}
    for border, options in borders:
        up = Upscaler(model, device=args.device, tile=whole_tile, precision=args.precision, **options)
        wholes[border], whole_macs[border], seconds = run(up, image, counter)
    shown = args.model + (f", unshuffled by {args.unshuffle} (alignment {up.alignment})" if args.unshuffle else "")
    print(f"{shown}, {image.shape[1]}x{image.shape[0]}, {args.tile} px tiles, device {args.device}, "
          f"precision {args.precision}; whole picture {seconds:.1f} s")
    rows = [("reference rule", dict(tile_pad=args.pad))] if "reference" in args.rows else []
    if "blended" in args.rows:
        rows += [(f"blended, overlap {o}", dict(tile_pad=args.pad, overlap=o, exact=False)) for o in args.overlaps]
    if "exact" in args.rows and getattr(args.device, "discrete", False):
        rows.append(("whole trunk (a discrete GPU's default)", dict(tile_pad=args.pad, overlap=args.overlaps[0])))
    elif "exact" in args.rows:
        rows.append(("exact stages (where they fit)", dict(tile_pad=args.pad, overlap=args.overlaps[0], exact=True)))
    base_macs = base_time = None
    if "reference" not in args.rows:  # the rows' compute and time against the whole picture's instead
        base_macs, base_time = whole_macs["bare"], seconds
        print("(compute and time against the whole picture as one run: no reference rule row)")
    print("| tiling | compute | time | PSNR dB | max diff |\n|---|---|---|---|---|")
    for name, options in rows:
        up = Upscaler(model, device=args.device, tile=args.tile, precision=args.precision, **options)
        out, macs, seconds = run(up, image, counter)
        base_macs, base_time = base_macs or macs, base_time or seconds
        whole = wholes["mirrored" if up.overlap == 0 else "bare"]
        worst = int(np.abs(whole.astype(int) - out).max())
        print(f"| {name} | {macs / base_macs:.3f} | {seconds:.1f} s ({seconds / base_time:.2f}) "
              f"| {psnr(whole, out):.2f} | {worst} |", flush=True)


if __name__ == "__main__":
    run_main(main)
