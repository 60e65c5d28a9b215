"""Borders: how close to the original picture the outer band of the output comes with
the picture mirrored beyond its edges (the reference rule's 10 px) and without (the
seam-free default, and Real-ESRGAN's own PyTorch inference).

Each picture is cropped to at most 512x512 (a multiple of the scale), shrunk by the
model's scale with bicubic, upscaled as one window both ways, and compared with the
crop: PSNR of the outer band (``--band`` output pixels, default 40 = 10 input pixels
at x4), of the rest, and of the two outputs against each other.

    python tools/borders.py --model realesrgan-x4plus photo1.png photo2.jpg ...
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from ncnn_sr import Upscaler
from ncnn_sr.bench import psnr

from measure import positive, run_main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pictures", nargs="+")
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--device", type=int, default=-1)
    ap.add_argument("--pad", type=int, default=10)
    ap.add_argument("--band", type=positive, default=40)  # 0: band[-0:] took the whole picture
    args = ap.parse_args()
    ups = {"mirrored": Upscaler(args.model, device=args.device, tile=4096, tile_pad=args.pad),
           "bare": Upscaler(args.model, device=args.device, tile=4096, tile_pad=0)}
    s = ups["bare"].scale
    print(f"{args.model}, one window, outer band of {args.band} output px; PSNR dB against the original")
    print("| picture | band, mirrored | band, bare | rest, mirrored | rest, bare | mirrored vs bare, band |")
    print("|---|---|---|---|---|---|")
    for path in args.pictures:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = min(im.width, 512) // s * s, min(im.height, 512) // s * s
            if not w or not h:
                raise SystemExit(f"borders.py: {path}: {im.width}x{im.height} is smaller than the model's scale, {s}")
            original = np.asarray(im.crop((0, 0, w, h)))
        small = np.asarray(Image.fromarray(original).resize((w // s, h // s), Image.BICUBIC))
        band = np.zeros((h, w), bool)
        band[:args.band] = band[-args.band:] = True
        band[:, :args.band] = band[:, -args.band:] = True
        outs = {name: up.upscale(small) for name, up in ups.items()}
        # A picture whose band is all of it has no rest to compare: "-", not numpy's nan.
        cells = [f"{psnr(original[where], outs[name][where]):.2f}" if where.any() else "-"
                 for where in (band, ~band) for name in ups]
        cells.append(f"{psnr(outs['mirrored'][band], outs['bare'][band]):.1f}")
        print(f"| {path.rsplit('/', 1)[-1]} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    run_main(main)
