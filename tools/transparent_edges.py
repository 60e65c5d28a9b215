"""The colour under transparent pixels, and what it does to the visible edge.

A picture (docs/sample.jpg by default) gets a soft-edged disc of alpha; the pixels
outside it are made fully transparent and their colour set to black, then to white.
Each is upscaled with the colour under them kept (as the reference tool runs it) and
filled from the visible colours (ncnn-sr's default, transparent.py). The truth is
the opaque picture's own upscale: what the model gives where the colour goes on as
the picture does. Compared over the disc's edge (output alpha between 10 % and 90 %)
and its inside (alpha 255): mean absolute difference in levels, and PSNR.

    python tools/transparent_edges.py --models realesr-animevideov3-x2 realesrgan-x4plus
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ncnn_sr import Upscaler
from ncnn_sr.bench import psnr

from measure import positive, run_main

SAMPLE = Path(__file__).resolve().parent.parent / "docs" / "sample.jpg"


def cut_out(picture: np.ndarray, edge: float) -> np.ndarray:
    """``picture`` with a disc's alpha, soft over ``edge`` pixels."""
    h, w = picture.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    inside = (min(h, w) * 0.4 - np.hypot(yy - h / 2, xx - w / 2)) / edge + 0.5
    alpha = np.round(np.clip(inside, 0, 1) * 255).astype(np.uint8)[:, :, None]
    return np.concatenate([picture, alpha], axis=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["realesr-animevideov3-x2", "realesrgan-x4plus"])
    ap.add_argument("--picture", type=Path, default=SAMPLE)
    ap.add_argument("--device", type=int, default=-1)
    ap.add_argument("--edge", type=positive, default=4, help="input pixels over which the disc fades out")
    args = ap.parse_args()
    with Image.open(args.picture) as im:
        picture = np.asarray(im.convert("RGB"))
    cut = cut_out(picture, args.edge)
    hidden = cut[:, :, 3] == 0
    print(f"{args.picture.name} {picture.shape[1]}x{picture.shape[0]}, disc fading over {args.edge} px; "
          "against the opaque picture's upscale: mean |diff| in levels, PSNR dB")
    print("| model | under the transparent pixels | edge, kept | edge, filled | inside, kept | inside, filled |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        ups = {fill: Upscaler(model, device=args.device, tile=4096, fill_transparent=fill) for fill in (False, True)}
        truth = ups[False].upscale(picture).astype(np.float64)
        for name, under in (("black", 0), ("white", 255)):
            given = cut.copy()
            given[hidden, :3] = under
            cells = {}
            for fill, up in ups.items():
                out = up.upscale(given)
                a = out[:, :, 3]
                for part, where in (("edge", (a > 25) & (a < 230)), ("inside", a == 255)):
                    diff = np.abs(out[where][:, :3] - truth[where])
                    cells[part, fill] = f"{diff.mean():.2f} ({psnr(out[where][:, :3], truth[where]):.1f} dB)"
            print(f"| {model} | {name} | {cells['edge', False]} | {cells['edge', True]} | "
                  f"{cells['inside', False]} | {cells['inside', True]} |")
        for up in ups.values():
            up.close()


if __name__ == "__main__":
    run_main(main)
