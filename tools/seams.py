"""Seams: how far tiled output is from whole-picture output, per context and overlap.

For each "pad,overlap" pair, upscales the picture in tiles and as one tile with the
same border rule (the same pad mirrored at the picture's edges), and prints PSNR and
the largest pixel difference, with the compute (the windows' total area on this
picture) against the reference rule's (10 px context, no overlap).

    python tools/seams.py --image photo.png --model realesrgan-x4plus --tile 200 10,0 10,16 10,32
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from ncnn_sr import Upscaler
from ncnn_sr.tiles import blend_spans


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def window_area(height: int, width: int, tile: int, pad: int, overlap: int) -> int:
    """Pixels the network sees in all: the reference rule's padded tiles without
    overlap, the engine's blended windows with it."""
    if overlap == 0:
        ny, nx = -(-height // tile), -(-width // tile)
        return (height + 2 * pad * ny) * (width + 2 * pad * nx)
    (ly, ys), (lx, xs) = blend_spans(height, tile, pad, overlap), blend_spans(width, tile, pad, overlap)
    return ly * len(ys) * lx * len(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--device", type=int, default=-1)
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("configs", nargs="+", help="pad,overlap pairs, e.g. 10,0 10,16")
    args = ap.parse_args()
    image = np.asarray(Image.open(args.image).convert("RGB"))
    whole_tile = max(image.shape[:2]) + 32
    wholes: dict[int, np.ndarray] = {}
    print("| pad | overlap | compute | PSNR dB | max diff |\n|---|---|---|---|---|")
    for config in args.configs:
        pad, overlap = map(int, config.split(","))
        if pad not in wholes:
            wholes[pad] = Upscaler(args.model, device=args.device, tile=whole_tile, tile_pad=pad).upscale(image)
        tiled = Upscaler(args.model, device=args.device, tile=args.tile, tile_pad=pad, overlap=overlap).upscale(image)
        cost = window_area(*image.shape[:2], args.tile, pad, overlap) / window_area(*image.shape[:2], args.tile, 10, 0)
        worst = int(np.abs(wholes[pad].astype(int) - tiled).max())
        print(f"| {pad} | {overlap} | {cost:.2f} | {psnr(wholes[pad], tiled):.2f} | {worst} |", flush=True)


if __name__ == "__main__":
    main()
