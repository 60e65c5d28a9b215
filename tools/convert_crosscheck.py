"""Converter cross-check: ncnn_sr.convert's networks against a PyTorch forward.

The forwards here are written from the architectures' definitions (RRDBNet with
its 0.2-scaled residuals, nearest x2 upsamplings and pixel-unshuffled input for x2
and x1; SRVGGNetCompact with PReLU, pixel shuffle and the nearest-upsampled input
added; SPAN with each Conv3XC's four convolutions apart, as it trains; PLKSR and
RealPLKSR with torch's own GELU, GroupNorm, Mish and repeat_interleave; DySample
with torch's grid_sample, bilinear, padding "border", align_corners=False),
independently of the numpy references in the tests. Each model gets random weights
(the tests' builders), is converted with fp32 weights, run by ncnn on the CPU in
fp32, and compared with torch on the same random picture.

Needs torch (CPU is enough), which ncnn-sr itself never needs; says so and fails
where it is missing. Prints one line per model and exits 1 when any differs by
more than --tolerance (of the largest output value, where that is over 1).

    python tools/convert_crosscheck.py
    python tools/convert_crosscheck.py --size 37x29
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ncnn_sr.convert import convert_weights  # noqa: E402
from test_convert import random_compact, random_rrdb  # noqa: E402
from test_plksr import random_plksr  # noqa: E402
from test_span import random_span  # noqa: E402


def torch_rrdbnet(F, torch, state: dict, x, unshuffle: int):
    def conv(h, key):
        return F.conv2d(h, torch.from_numpy(state[f"{key}.weight"]), torch.from_numpy(state[f"{key}.bias"]),
                        padding=1)

    def lrelu(h):
        return F.leaky_relu(h, 0.2)

    if unshuffle > 1:  # padded to a multiple first, as Real-ESRGAN's inference does
        height, width = x.shape[2:]
        x = F.pad(x, (0, -width % unshuffle, 0, -height % unshuffle), mode="reflect")
        x = F.pixel_unshuffle(x, unshuffle)
    feat = conv(x, "conv_first")
    h = feat
    for i in range(len({key.split(".")[1] for key in state if key.startswith("body.")})):
        block_in = h
        for r in (1, 2, 3):
            outs = [h]
            for c in range(1, 5):
                outs.append(lrelu(conv(torch.cat(outs, 1), f"body.{i}.rdb{r}.conv{c}")))
            h = conv(torch.cat(outs, 1), f"body.{i}.rdb{r}.conv5") * 0.2 + outs[0]
        h = h * 0.2 + block_in
    feat = feat + conv(h, "conv_body")
    for u in (1, 2):
        feat = lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest"), f"conv_up{u}"))
    out = conv(lrelu(conv(feat, "conv_hr")), "conv_last")
    if unshuffle > 1:
        scale = 4 // unshuffle
        out = out[:, :, :height * scale, :width * scale]
    return out


def torch_compact(F, torch, state: dict, x):
    last = max(int(key.split(".")[1]) for key in state)
    h = x
    for index in range(0, last + 1, 2):
        h = F.conv2d(h, torch.from_numpy(state[f"body.{index}.weight"]),
                     torch.from_numpy(state[f"body.{index}.bias"]), padding=1)
        if index < last:
            h = F.prelu(h, torch.from_numpy(state[f"body.{index + 1}.weight"]))
    upscale = round((h.shape[1] // 3) ** 0.5)
    return F.pixel_shuffle(h, upscale) + F.interpolate(x, scale_factor=upscale, mode="nearest")


def torch_span(F, torch, state: dict, x):
    def conv(h, key, padding):
        return F.conv2d(h, torch.from_numpy(state[f"{key}.weight"]), torch.from_numpy(state[f"{key}.bias"]),
                        padding=padding)

    def conv3xc(h, key):  # as it trains: zeros around the input, 1x1, 3x3 unpadded, 1x1; and the 1x1 skip
        inner = conv(conv(conv(F.pad(h, (1, 1, 1, 1)), f"{key}.conv.0", 0), f"{key}.conv.1", 0), f"{key}.conv.2", 0)
        return inner + conv(h, f"{key}.sk", 0)

    if "no_norm" not in state:
        x = (x - torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)) * 255.0
    features = h = conv3xc(x, "conv_1")
    blocks = len({key.split(".")[0] for key in state if key.startswith("block_")})
    outputs = []
    for i in range(1, blocks + 1):
        first = conv3xc(h, f"block_{i}.c1_r")
        out = conv3xc(F.silu(conv3xc(F.silu(first), f"block_{i}.c2_r")), f"block_{i}.c3_r")
        h = (out + h) * (torch.sigmoid(out) - 0.5)
        outputs.append(h)
    h = conv(torch.cat([features, conv3xc(h, "conv_2"), outputs[0], first], 1), "conv_cat", 0)
    h = conv(h, "upsampler.0", 1)
    scale = round((h.shape[1] // 3) ** 0.5)
    return F.pixel_shuffle(h, scale) if scale > 1 else h


def torch_plksr(F, torch, state: dict, x):
    def conv(h, key):
        w = torch.from_numpy(state[f"{key}.weight"])
        return F.conv2d(h, w, torch.from_numpy(state[f"{key}.bias"]), padding=w.shape[2] // 2)

    blocks = len({key.split(".")[1] for key in state if ".lk.conv." in key})
    h = conv(x, "feats.0")
    for i in range(1, blocks + 1):
        key, skip = f"feats.{i}", h
        if f"{key}.layer_norm.weight" in state:  # over the channels, pixel by pixel
            mean = h.mean(1, keepdim=True)
            h = (h - mean) / torch.sqrt((h - mean).pow(2).mean(1, keepdim=True) + 1e-6)
            h = h * torch.from_numpy(state[f"{key}.layer_norm.weight"])[:, None, None] \
                + torch.from_numpy(state[f"{key}.layer_norm.bias"])[:, None, None]
        if f"{key}.channe_mixer.0.weight" in state:  # PLKSR: nn.GELU, the exact one
            h = conv(F.gelu(conv(h, f"{key}.channe_mixer.0")), f"{key}.channe_mixer.2")
        else:
            h = conv(F.mish(conv(h, f"{key}.channel_mixer.0")), f"{key}.channel_mixer.2")
        pdim = state[f"{key}.lk.conv.weight"].shape[0]
        h = torch.cat([conv(h[:, :pdim], f"{key}.lk.conv"), h[:, pdim:]], 1)
        if f"{key}.attn.f.0.weight" in state:
            h = h * torch.sigmoid(conv(h, f"{key}.attn.f.0"))
        h = conv(h, f"{key}.refine")
        if f"{key}.norm.weight" in state:
            h = F.group_norm(h, 4, torch.from_numpy(state[f"{key}.norm.weight"]),
                             torch.from_numpy(state[f"{key}.norm.bias"]))
        h = h + skip
    h = conv(h, f"feats.{blocks + (1 if f'feats.1.channe_mixer.0.weight' in state else 2)}")
    scale = round((h.shape[1] // 3) ** 0.5)
    h = h + torch.repeat_interleave(x, scale * scale, dim=1)
    if "to_img.offset.weight" in state:
        return torch_dysample(F, torch, state, h, scale)
    return F.pixel_shuffle(h, scale) if scale > 1 else h


def torch_dysample(F, torch, state: dict, x, scale: int):
    """DySample as the paper's code runs it: offsets in input pixels, added to the
    pixel centres, normalised to the input's size, pixel-shuffled into each group's
    grid for grid_sample."""
    def weight(key):
        return torch.from_numpy(state[f"to_img.{key}"])

    b, channels, h, w = x.shape
    offset = F.conv2d(x, weight("offset.weight"), weight("offset.bias"))
    if "to_img.scope.weight" in state:
        offset = offset * torch.sigmoid(F.conv2d(x, weight("scope.weight"))) * 0.5
    else:
        offset = offset * 0.25
    offset = (offset + weight("init_pos")).view(b, 2, -1, h, w)
    groups = offset.shape[2] // (scale * scale)
    centre_x = (torch.arange(w, dtype=x.dtype) + 0.5).view(1, 1, 1, 1, w)
    centre_y = (torch.arange(h, dtype=x.dtype) + 0.5).view(1, 1, 1, h, 1)
    coords = torch.cat([2 * (centre_x + offset[:, :1]) / w - 1, 2 * (centre_y + offset[:, 1:]) / h - 1], 1)
    grid = F.pixel_shuffle(coords.reshape(b, -1, h, w), scale).view(b, 2, groups, h * scale, w * scale)
    grid = grid.permute(0, 2, 3, 4, 1).reshape(b * groups, h * scale, w * scale, 2)
    out = F.grid_sample(x.reshape(b * groups, channels // groups, h, w), grid, mode="bilinear",
                        padding_mode="border", align_corners=False).view(b, channels, h * scale, w * scale)
    if "to_img.end_conv.weight" in state:
        end = weight("end_conv.weight")
        out = F.conv2d(out, end, weight("end_conv.bias"), padding=end.shape[2] // 2)
    return out


def ncnn_forward(param: str, weights: bytes, x: np.ndarray) -> np.ndarray:
    import ncnn

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "m.param").write_text(param, encoding="utf-8")
        (Path(folder) / "m.bin").write_bytes(weights)
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(net.opt, option, False)
        net.load_param(str(Path(folder) / "m.param"))
        net.load_model(str(Path(folder) / "m.bin"))
        with net.create_extractor() as ex:
            ex.input("data", ncnn.Mat(np.ascontiguousarray(x)))
            _, out = ex.extract("output")
            return np.array(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20x16", help="picture WxH (default 20x16)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest difference allowed")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch is not installed here: nothing was checked", file=sys.stderr)
        return 1
    x = np.random.default_rng(0).random((3, height, width), dtype=np.float32)
    def rrdbnet(unshuffle):
        return lambda *a: torch_rrdbnet(*a, unshuffle)

    models = [("RRDBNet x4", random_rrdb(), rrdbnet(1)), ("RRDBNet x2", random_rrdb(in_ch=12), rrdbnet(2)),
              ("RRDBNet x1", random_rrdb(in_ch=48), rrdbnet(4)), ("SRVGGNetCompact x2", random_compact(), torch_compact),
              ("SRVGGNetCompact x4", random_compact(upscale=4), torch_compact),
              ("SPAN x4", random_span(blocks=6, scale=4), torch_span),
              ("SPAN x2, no norm", random_span(scale=2, norm=False), torch_span),
              ("RealPLKSR x4", random_plksr(blocks=3, dim=16, pdim=4, kernel=17, scale=4), torch_plksr),
              ("RealPLKSR x2, LN", random_plksr(scale=2, layer_norm=True), torch_plksr),
              ("RealPLKSR x1, no EA", random_plksr(scale=1, attention=False), torch_plksr),
              ("RealPLKSR x2, DySample", random_plksr(scale=2, layer_norm=True, dysample="dynamic"), torch_plksr),
              ("RealPLKSR x3, DyS-S", random_plksr(scale=3, dysample="static"), torch_plksr),
              ("RealPLKSR x4, DySample", random_plksr(blocks=3, dim=16, pdim=4, kernel=17, scale=4,
                                                      dysample="dynamic"), torch_plksr),
              ("PLKSR x4, CCM", random_plksr(paper=True, mixing=(3, 1), kernel=17, pdim=4, dim=16, scale=4),
               torch_plksr),
              ("PLKSR x2, ICCM", random_plksr(paper=True, mixing=(1, 3)), torch_plksr)]
    failed = False
    for name, state, forward in models:
        model = convert_weights(state, fp16=False)
        with torch.no_grad():
            ref = forward(F, torch, state, torch.from_numpy(x)[None])[0].numpy()
        got = ncnn_forward(model.param, model.weights, x)
        # Relative to the output where it exceeds 1: random weights on SPAN's input
        # times 255 give outputs in the hundreds, where float32 keeps 1e-5 of it.
        span = max(1.0, float(np.abs(ref).max()))
        diff = float(np.abs(ref - got).max()) / span if ref.shape == got.shape else float("inf")
        failed |= not diff <= args.tolerance
        print(f"{name:20} {'x'.join(map(str, got.shape))}  max difference {diff:.2e}  "
              f"{'ok' if diff <= args.tolerance else 'DIFFERS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
