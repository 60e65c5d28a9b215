"""Networks of the fetchable models' shapes (and of RealPLKSR, which users convert)
with random weights, for timing and
memory where the real weights are not at hand (no network): speed and memory depend on
the shape alone. What measured their catalog ``cpu_bytes_per_pixel``.

Development only; the package never imports this.

    python tools/stand_in_models.py /tmp/stand-in
    python tools/cpu_memory.py --models /tmp/stand-in/realesr-general-x4v3.param --sizes 64 128 192
    ncnn-sr bench -g -1 -t auto -n /tmp/stand-in/realesr-general-x4v3.param,realesr-animevideov3-x4
"""
from __future__ import annotations

import argparse
import math
import os

import numpy as np

from ncnn_sr.convert import convert_weights, write_model


def _conv(rng, state: dict, name: str, out: int, inc: int) -> None:
    state[f"{name}.weight"] = rng.normal(0, math.sqrt(2 / (9 * inc)), (out, inc, 3, 3)).astype(np.float32)
    state[f"{name}.bias"] = np.zeros(out, np.float32)


def compact(convs: int = 32, feat: int = 64, upscale: int = 4, seed: int = 0) -> dict:
    """SRVGGNetCompact's keys: body.0 the first convolution, PReLUs between."""
    rng, state = np.random.default_rng(seed), {}
    chans = [(feat, 3)] + [(feat, feat)] * convs + [(3 * upscale * upscale, feat)]
    for n, (out, inc) in enumerate(chans):
        _conv(rng, state, f"body.{2 * n}", out, inc)
        if n < len(chans) - 1:
            state[f"body.{2 * n + 1}.weight"] = np.full(feat, 0.1, np.float32)
    return state


def rrdbnet(blocks: int = 23, feat: int = 64, grow: int = 32, in_ch: int = 3, seed: int = 0) -> dict:
    """Real-ESRGAN's RRDBNet keys; ``in_ch`` 12 is its x2 (pixel-unshuffled by 2)."""
    rng, state = np.random.default_rng(seed), {}
    _conv(rng, state, "conv_first", feat, in_ch)
    for b in range(blocks):
        for r in range(1, 4):
            for c in range(1, 6):
                _conv(rng, state, f"body.{b}.rdb{r}.conv{c}", feat if c == 5 else grow, feat + (c - 1) * grow)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        _conv(rng, state, name, feat, feat)
    _conv(rng, state, "conv_last", 3, feat)
    return state


def realplksr(blocks: int = 28, dim: int = 64, pdim: int = 16, kernel: int = 17, upscale: int = 4,
              layer_norm: bool = False, seed: int = 0) -> dict:
    """RealPLKSR's keys as neosr (GroupNorm) or traiNNer-redux (``layer_norm``) save
    them, with the trainers' default shape."""
    rng, state = np.random.default_rng(seed), {}

    def conv(name, out, inc, k=3):
        state[f"{name}.weight"] = rng.normal(0, math.sqrt(1 / (k * k * inc)), (out, inc, k, k)).astype(np.float32)
        state[f"{name}.bias"] = np.zeros(out, np.float32)

    conv("feats.0", dim, 3)
    for i in range(1, blocks + 1):
        conv(f"feats.{i}.channel_mixer.0", 2 * dim, dim)
        conv(f"feats.{i}.channel_mixer.2", dim, 2 * dim)
        conv(f"feats.{i}.lk.conv", pdim, pdim, kernel)
        conv(f"feats.{i}.attn.f.0", dim, dim)
        conv(f"feats.{i}.refine", dim, dim, 1)
        norm = "layer_norm" if layer_norm else "norm"
        state[f"feats.{i}.{norm}.weight"] = np.ones(dim, np.float32)
        state[f"feats.{i}.{norm}.bias"] = np.zeros(dim, np.float32)
    conv(f"feats.{blocks + 2}", 3 * upscale * upscale, dim)
    return state


SHAPES = {
    "realesr-general-x4v3": lambda: compact(),
    "realesrgan-x2plus": lambda: rrdbnet(in_ch=12),
    "realesrnet-x4plus": lambda: rrdbnet(),
    # Not catalog models: custom ones users convert (ncnn-sr convert), in the default shape.
    "4x-realplksr": lambda: realplksr(),
    "4x-realplksr-layer-norm": lambda: realplksr(layer_norm=True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="where to write NAME.param and NAME.bin (made if missing)")
    args = ap.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    for name, make in SHAPES.items():
        spec = write_model(convert_weights(make()), args.folder, name, overwrite=True)
        print(f"{spec.param_path}: x{spec.scale}")


if __name__ == "__main__":
    main()
