"""RealPLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution, as neosr and
traiNNer-redux train it), converted to ncnn.

Keys: ``feats.0`` (a 3x3 convolution of the picture to ``dim`` features), blocks
``feats.1`` to ``feats.N``, then (after a dropout, which holds no weights) a 3x3
convolution ``feats.N+2`` to 3 x scale² channels. Each block, on its input x:

- with ``layer_norm`` keys (traiNNer-redux's default): x normalised over its channels,
  pixel by pixel (eps 1e-6), times ``layer_norm.weight`` plus ``.bias``;
- ``channel_mixer``: 3x3 to 2 x dim, Mish, 3x3 back to dim;
- ``lk.conv``: a large (17x17) convolution of the first ``pdim`` channels only, the
  others passed on;
- ``attn.f.0`` (where the keys have it): times the sigmoid of a 3x3 convolution of
  itself;
- ``refine``: 1x1;
- with ``norm`` keys (neosr's, and traiNNer-redux's without layer norm): GroupNorm
  over 4 groups (eps 1e-5; the number is in no key: 4 is what both trainers use);
- plus x.

The picture, each channel repeated scale² times, is added to the last convolution's
output, which is then pixel-shuffled. A DySample upsampler (``to_img`` keys) is not
converted.

GroupNorm takes its statistics over the whole picture, so a network with it gives
another output for each tile than for the picture: ``netsplit`` plans it in stages
that end at each GroupNorm, which ``staged`` computes over the whole picture.
"""
from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np

from .errors import ModelError
from .ncnn_graph import INPUT_BLOB, Net, check_shapes, raw, shape_of
from .span import describe_shape

NAME = "RealPLKSR"
GROUPS = 4
GROUP_EPS = 1e-5
LAYER_EPS = 1e-6


def is_plksr(weights: Mapping[str, np.ndarray]) -> bool:
    return "feats.0.weight" in weights and "feats.1.lk.conv.weight" in weights


def convert_plksr(weights: Mapping[str, np.ndarray], fp16: bool) -> tuple[str, bytes, str, int]:
    """The param text, bin bytes, description and scale of the RealPLKSR in ``weights``."""
    if any(k.startswith("to_img.") for k in weights):
        raise ModelError(f"{NAME} with a DySample upsampler (to_img keys) is not converted here: only the "
                         "pixel-shuffle one")
    if "feats.1.channe_mixer.0.weight" in weights:
        raise ModelError("PLKSR (channe_mixer keys), the paper's own, is not converted here: only RealPLKSR")
    blocks = len({m.group(1) for k in weights if (m := re.match(r"feats\.(\d+)\.lk\.conv\.weight$", k))})
    first = shape_of(weights, "feats.0.weight")
    lk = shape_of(weights, "feats.1.lk.conv.weight")
    last_key = f"feats.{blocks + 2}.weight"
    last = shape_of(weights, last_key) if last_key in weights else ()
    if len(first) != 4 or first[1] != 3 or len(lk) != 4 or len(last) != 4:
        raise ModelError(f"{NAME}: feats.0 is {describe_shape(first)}, feats.1.lk.conv {describe_shape(lk)} and "
                         f"{last_key} {describe_shape(last)}: an RGB model of {blocks} blocks is expected")
    dim, pdim, kernel = first[0], lk[0], lk[2]
    scale = math.isqrt(last[0] // 3)
    if scale < 1 or last[0] != 3 * scale * scale:
        raise ModelError(f"{NAME}: {last_key} gives {last[0]} channels where 3 x scale² are expected")
    if kernel % 2 == 0 or not 0 < pdim <= dim:
        raise ModelError(f"{NAME}: feats.1.lk.conv is {describe_shape(lk)}: an odd kernel on at most {dim} "
                         "channels is expected")
    layer_norm = "feats.1.layer_norm.weight" in weights
    group_norm = "feats.1.norm.weight" in weights
    if layer_norm == group_norm:
        raise ModelError(f"{NAME}: its blocks hold {'both' if layer_norm else 'neither'} norm and layer_norm "
                         "weights: another variant of the architecture?")
    if group_norm and dim % GROUPS:
        raise ModelError(f"{NAME}: {dim} features do not split into {GROUPS} groups")
    attention = "feats.1.attn.f.0.weight" in weights
    shapes = {"feats.0.weight": (dim, 3, 3, 3), "feats.0.bias": (dim,),
              last_key: (3 * scale * scale, dim, 3, 3), f"feats.{blocks + 2}.bias": (3 * scale * scale,)}
    for i in range(1, blocks + 1):
        shapes.update(_block_shapes(f"feats.{i}", dim, pdim, kernel, attention, layer_norm))
    norm_text = "layer norm" if layer_norm else f"GroupNorm of {GROUPS} groups"
    arch = (f"{NAME}, {blocks} blocks, {dim} features, {kernel}x{kernel} kernel on {pdim}, "
            f"{norm_text}{'' if attention else ', no attention'}, x{scale}")
    check_shapes(weights, {k: k for k in shapes}, shapes, arch)

    net = Net(weights, {k: k for k in shapes}, fp16)
    x = net.conv("feats.0", INPUT_BLOB)
    for i in range(1, blocks + 1):
        x = _block(net, f"feats.{i}", x, dim, pdim, layer_norm)
    x = net.conv(f"feats.{blocks + 2}", x)
    # Each picture channel repeated scale² times: a 1x1 convolution of ones.
    repeat = np.zeros((3 * scale * scale, 3, 1, 1), np.float32)
    repeat[np.arange(3 * scale * scale), np.arange(3 * scale * scale) // (scale * scale)] = 1
    picture = net.conv_of("repeat", INPUT_BLOB, repeat, np.zeros(3 * scale * scale, np.float32), "the repeat")
    x = net.add("BinaryOp", "residual", [x, picture], "0=0")
    if scale > 1:
        x = net.add("PixelShuffle", "pixel_shuffle", [x], f"0={scale} 1=0")
    param, data = net.finish(x)
    return param, data, arch, scale


def _block_shapes(key: str, dim: int, pdim: int, kernel: int, attention: bool, layer_norm: bool) -> dict:
    shapes = {f"{key}.channel_mixer.0.weight": (2 * dim, dim, 3, 3), f"{key}.channel_mixer.0.bias": (2 * dim,),
              f"{key}.channel_mixer.2.weight": (dim, 2 * dim, 3, 3), f"{key}.channel_mixer.2.bias": (dim,),
              f"{key}.lk.conv.weight": (pdim, pdim, kernel, kernel), f"{key}.lk.conv.bias": (pdim,),
              f"{key}.refine.weight": (dim, dim, 1, 1), f"{key}.refine.bias": (dim,)}
    if attention:
        shapes.update({f"{key}.attn.f.0.weight": (dim, dim, 3, 3), f"{key}.attn.f.0.bias": (dim,)})
    norm = "layer_norm" if layer_norm else "norm"
    shapes.update({f"{key}.{norm}.weight": (dim,), f"{key}.{norm}.bias": (dim,)})
    return shapes


def _block(net: Net, key: str, x: str, dim: int, pdim: int, layer_norm: bool) -> str:
    h = _layer_norm(net, key, x, dim) if layer_norm else x
    h = net.conv(f"{key}.channel_mixer.0", h)
    h = net.conv(f"{key}.channel_mixer.2", net.add("Mish", f"{key}.mish", [h]))
    if pdim < dim:
        large, rest = net.add_many("Slice", f"{key}.split", [h], 2, f"-23300=2,{pdim},-233 1=0")
        h = net.add("Concat", f"{key}.join", [net.conv(f"{key}.lk.conv", large), rest], "0=0")
    else:
        h = net.conv(f"{key}.lk.conv", h)
    if f"{key}.attn.f.0.weight" in net.weights:
        gate = net.add("Sigmoid", f"{key}.gate", [net.conv(f"{key}.attn.f.0", h)])
        h = net.add("BinaryOp", f"{key}.attend", [h, gate], "0=2")
    h = net.conv(f"{key}.refine", h)
    if not layer_norm:
        gamma, beta = net.array(f"{key}.norm.weight"), net.array(f"{key}.norm.bias")
        h = net.add("GroupNorm", f"{key}.norm", [h], f"0={GROUPS} 1={dim} 2={GROUP_EPS:e} 3=1",
                    raw(gamma) + raw(beta))
    return net.add("BinaryOp", f"{key}.skip", [h, x], "0=0")


def _layer_norm(net: Net, key: str, x: str, dim: int) -> str:
    """Each pixel's channels less their mean, over the root of their mean square plus
    eps, then scaled and shifted channel by channel: ncnn's LayerNorm normalises along
    a row, not across channels, so 1x1 convolutions average them."""
    centre = np.eye(dim, dtype=np.float32) - np.float32(1 / dim)
    zero = np.zeros(dim, np.float32)
    centred = net.conv_of(f"{key}.centre", x, centre[:, :, None, None], zero, f"{key}.layer_norm.weight")
    square = net.add("UnaryOp", f"{key}.square", [centred], "0=4")
    mean = np.full((dim, dim, 1, 1), 1 / dim, np.float32)
    variance = net.conv_of(f"{key}.variance", square, mean, np.full(dim, LAYER_EPS, np.float32),
                           f"{key}.layer_norm.weight")
    scaled = net.add("BinaryOp", f"{key}.normalise", [centred, net.add("UnaryOp", f"{key}.rsqrt", [variance], "0=6")],
                     "0=2")
    gamma, beta = net.array(f"{key}.layer_norm.weight"), net.array(f"{key}.layer_norm.bias")
    return net.add("ConvolutionDepthWise", f"{key}.layer_norm", [scaled], f"0={dim} 1=1 5=1 6={dim} 7={dim}",
                   net.flagged(gamma, f"{key}.layer_norm.weight") + raw(beta))

