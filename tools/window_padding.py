"""Window padding: do blended windows come closer to the whole picture when the
network pads a window's inner edges with its own features instead of zeros?

A window's convolutions pad with zeros at every edge, as the whole picture's do at
the picture's border; at a seam the true neighbours are features, not zeros, and the
zeros' error reaches into the window. This rewrites the model's 3x3 convolutions
(pad 1) into an explicit Padding layer before each: edge (replicate) or reflect
padding on the sides where the window has a neighbour, zeros on the picture's own
border, so the whole picture's output is unchanged. Each window gets the variant for
its sides; the windows are the engine's blended layout (``tiles.blend_spans``, no
mirrored border) with its linear ramps. Prints PSNR and largest difference against
the model run on the whole picture, per padding. CPU, float32; the convolutions'
work is the same for every padding.

    python tools/window_padding.py --image photo.png --model realesrgan-x4plus --tile 200
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from ncnn_sr.bench import psnr
from ncnn_sr.devices import CPU
from ncnn_sr.engine import DEFAULT_OVERLAP
from ncnn_sr.models import resolve_model
from ncnn_sr.network import Network
from ncnn_sr.tiles import blend_spans, ramp_weights

from measure import non_negative, run_main

PADDINGS = {"zeros": None, "edge": 1, "reflect": 2}  # ncnn Padding's type


def padded_param(text: str, sides: tuple[bool, bool, bool, bool], kind: int | None) -> str:
    """The param with each pad-1 convolution fed by Padding layers: ``kind`` on the
    sides (top, bottom, left, right) that are True, zeros on the others."""
    lines = text.replace("\r", "").strip().split("\n")
    if kind is None or not any(sides):
        return "\n".join(lines) + "\n"
    body, added = [], 0
    near = [int(s) for s in sides]
    for line in lines[2:]:
        words = line.split()
        if words[0] == "Convolution" and "4=1" in words:
            name, source = words[1], words[4]
            # ncnn's Padding: 0 top, 1 bottom, 2 left, 3 right, 4 type (0 constant)
            body.append(f"Padding {name}_near 1 1 {source} {name}_n 0={near[0]} 1={near[1]} 2={near[2]} "
                        f"3={near[3]} 4={kind}")
            body.append(f"Padding {name}_far 1 1 {name}_n {name}_p 0={1 - near[0]} 1={1 - near[1]} "
                        f"2={1 - near[2]} 3={1 - near[3]} 4=0")
            words[4] = f"{name}_p"
            body.append(" ".join("4=0" if w == "4=1" else w for w in words))
            added += 2
        else:
            body.append(line)
    layers, blobs = map(int, lines[1].split())
    return "\n".join([lines[0], f"{layers + added} {blobs + added}"] + body) + "\n"


def upscale(net: Network, image: np.ndarray) -> np.ndarray:
    out = net.run(image.astype(np.float32) / 255)
    net.trim()  # a net's pools keep its buffers: several variants at once filled the memory
    return out


def blended(image: np.ndarray, nets, tile: int, pad: int, overlap: int, scale: int) -> np.ndarray:
    height, width = image.shape[:2]
    length_y, rows = blend_spans(height, tile, pad, overlap, 0)
    length_x, cols = blend_spans(width, tile, pad, overlap, 0)
    out = np.zeros((height * scale, width * scale, image.shape[2]), np.float32)
    for i, row in enumerate(rows):
        for j, col in enumerate(cols):
            net = nets((i > 0, i < len(rows) - 1, j > 0, j < len(cols) - 1))
            window = image[row.window:row.window + length_y, col.window:col.window + length_x]
            piece = upscale(net, window)[(row.start - row.window) * scale:(row.end - row.window) * scale,
                                         (col.start - col.window) * scale:(col.end - col.window) * scale]
            weight_y = ramp_weights(piece.shape[0], row.rise * scale, row.fall * scale)[:, None, None]
            weight_x = ramp_weights(piece.shape[1], col.rise * scale, col.fall * scale)[None, :, None]
            out[row.start * scale:row.end * scale, col.start * scale:col.end * scale] += piece * weight_y * weight_x
    return out


def to_bytes(planes: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(planes * 255), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--tile", type=non_negative, default=200)
    ap.add_argument("--pad", type=non_negative, default=10)
    ap.add_argument("--overlap", type=non_negative, default=DEFAULT_OVERLAP)
    ap.add_argument("--paddings", nargs="+", choices=list(PADDINGS), default=list(PADDINGS))
    args = ap.parse_args()
    spec = resolve_model(args.model)
    text = spec.param_path.read_text(encoding="utf-8")
    image = np.asarray(Image.open(args.image).convert("RGB"))

    def net(param_text: str) -> Network:
        return Network(str(spec.param_path), str(spec.bin_path), CPU, spec.input_blob, spec.output_blob,
                       precision="fp32", param_text=param_text)

    whole = to_bytes(upscale(net(text), image))
    scale = whole.shape[0] // image.shape[0]
    print(f"{args.model}, {image.shape[1]}x{image.shape[0]}, {args.tile} px tiles, blend {args.overlap} px, CPU fp32")
    print("| padding at seams | PSNR dB | max diff | time |\n|---|---|---|---|")
    for name in args.paddings:
        made: dict = {}

        def nets(sides, kind=PADDINGS[name], made=made):
            key = padded_param(text, sides, kind)
            if key not in made:
                made[key] = net(key)
            return made[key]

        start = time.perf_counter()
        out = to_bytes(blended(image, nets, args.tile, args.pad, args.overlap, scale))
        worst = int(np.abs(whole.astype(int) - out).max())
        print(f"| {name} | {psnr(whole, out):.2f} | {worst} | {time.perf_counter() - start:.1f} s |", flush=True)
        made.clear()


if __name__ == "__main__":
    run_main(main)
