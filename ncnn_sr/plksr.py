"""PLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution) and RealPLKSR, its
variant as neosr and traiNNer-redux train it, converted to ncnn.

Keys: ``feats.0`` (a 3x3 convolution of the picture to ``dim`` features), blocks
``feats.1`` to ``feats.N``, then a 3x3 convolution to 3 x scale² channels:
``feats.N+1`` in PLKSR, ``feats.N+2`` in RealPLKSR (a dropout, which holds no
weights, comes between). Each block, on its input x:

- RealPLKSR with ``layer_norm`` keys (traiNNer-redux's default): x normalised over its
  channels, pixel by pixel (eps 1e-6), times ``layer_norm.weight`` plus ``.bias``;
- the channel mixer, ``channel_mixer`` (RealPLKSR: 3x3 to 2 x dim, Mish, 3x3 back) or
  ``channe_mixer`` (PLKSR, so spelt: GELU between, and either convolution 1x1 or
  3x3, which the weights' shapes say);
- ``lk.conv``: a large (17x17) convolution of the first ``pdim`` channels only, the
  others passed on;
- ``attn.f.0`` (where the keys have it): times the sigmoid of a 3x3 convolution of
  itself;
- ``refine``: 1x1;
- RealPLKSR with ``norm`` keys (neosr's, and traiNNer-redux's without layer norm):
  GroupNorm over 4 groups (eps 1e-5; the number is in no key: 4 is what both trainers
  use);
- plus x.

The picture, each channel repeated scale² times, is added to the last convolution's
output, which is then pixel-shuffled, or, where the keys hold ``to_img`` weights,
upsampled by DySample (see dysample.py; RealPLKSR only). Not converted: PLKSR's sparse
large kernels (``lk.convs``, ``lk.mn_conv``), an ablation of the paper. PLKSR's
``with_idt`` option (the large kernel's input added to its output) leaves no trace in
the keys and is taken as off, its default.

GroupNorm takes its statistics over the whole picture, so a network with it gives
another output for each tile than for the picture: ``netsplit`` plans it in stages
that end at each GroupNorm, which ``staged`` computes over the whole picture.
"""
from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np

from . import dysample
from .errors import ModelError
from .ncnn_graph import INPUT_BLOB, Net, check_shapes, counted, raw, shape_of
from .span import describe_shape

NAME = "RealPLKSR"
GROUPS = 4
GROUP_EPS = 1e-5
LAYER_EPS = 1e-6
# ncnn's layer feature mask (param 31), bit 5: no im2col + sgemm for this layer. On the
# 17x17 kernel sgemm's column buffer took 4x the memory of the whole network's
# windows otherwise (606 against 154 MB at 160x160, default shape) for 6-15 % less
# speed (AVX2, 2 threads); winograd does not apply to it. Ignored on Vulkan.
NO_SGEMM = "31=32"


def is_plksr(weights: Mapping[str, np.ndarray]) -> bool:
    return "feats.0.weight" in weights and any(k.startswith("feats.1.lk.") for k in weights)


def convert_plksr(weights: Mapping[str, np.ndarray], fp16: bool) -> tuple[str, bytes, str, int]:
    """The param text, bin bytes, description and scale of the (Real)PLKSR in ``weights``."""
    paper = "feats.1.channe_mixer.0.weight" in weights
    name = "PLKSR" if paper else NAME
    upsampler = dysample.has_dysample(weights)
    if upsampler and paper:
        raise ModelError("PLKSR (channe_mixer keys) with a DySample upsampler (to_img keys): another variant of "
                         "the architecture?")
    if "feats.1.lk.conv.weight" not in weights:
        raise ModelError(f"{name} with sparse large kernels (feats.1.lk.convs or lk.mn_conv keys) is not "
                         "converted here: only the plain large kernel (lk.conv)")
    blocks = len({m.group(1) for k in weights if (m := re.match(r"feats\.(\d+)\.lk\.conv\.weight$", k))})
    first = shape_of(weights, "feats.0.weight")
    lk = shape_of(weights, "feats.1.lk.conv.weight")
    last = f"feats.{blocks + (1 if paper else 2)}"
    out = shape_of(weights, f"{last}.weight") if f"{last}.weight" in weights else ()
    if len(first) != 4 or first[1] != 3 or len(lk) != 4 or len(out) != 4:
        raise ModelError(f"{name}: feats.0 is {describe_shape(first)}, feats.1.lk.conv {describe_shape(lk)} and "
                         f"{last} {describe_shape(out)}: an RGB model of {blocks} blocks is expected")
    dim, pdim, kernel = first[0], lk[0], lk[2]
    scale = math.isqrt(out[0] // 3)
    if scale < 1 or out[0] != 3 * scale * scale:
        raise ModelError(f"{name}: {last} gives {out[0]} channels where 3 x scale² are expected")
    if kernel % 2 == 0 or not 0 < pdim <= dim:
        raise ModelError(f"{name}: feats.1.lk.conv is {describe_shape(lk)}: an odd kernel on at most {dim} "
                         "channels is expected")
    mixer = "channe_mixer" if paper else "channel_mixer"
    kernels = tuple(shape_of(weights, f"feats.1.{mixer}.{i}.weight")[2:3] for i in (0, 2)
                    if f"feats.1.{mixer}.{i}.weight" in weights)
    if kernels not in (((3,), (3,)), ((3,), (1,)), ((1,), (3,))) or (not paper and kernels != ((3,), (3,))):
        raise ModelError(f"{name}: feats.1.{mixer} holds no 1x1 and 3x3 convolutions of a channel mixer")
    mixing = (kernels[0][0], kernels[1][0])
    layer_norm = "feats.1.layer_norm.weight" in weights
    group_norm = "feats.1.norm.weight" in weights
    if paper and (layer_norm or group_norm):
        raise ModelError("PLKSR (channe_mixer keys) with norm weights: another variant of the architecture?")
    if not paper and layer_norm == group_norm:
        raise ModelError(f"{NAME}: its blocks hold {'both' if layer_norm else 'neither'} norm and layer_norm "
                         "weights: another variant of the architecture?")
    if group_norm and dim % GROUPS:
        raise ModelError(f"{NAME}: {dim} features do not split into {GROUPS} groups")
    attention = "feats.1.attn.f.0.weight" in weights
    shapes = {"feats.0.weight": (dim, 3, 3, 3), "feats.0.bias": (dim,),
              f"{last}.weight": (3 * scale * scale, dim, 3, 3), f"{last}.bias": (3 * scale * scale,)}
    norm = "layer_norm" if layer_norm else "norm" if group_norm else None
    for i in range(1, blocks + 1):
        shapes.update(_block_shapes(f"feats.{i}", dim, pdim, kernel, attention, mixer, mixing, norm))
    if upsampler:
        shapes.update(dysample.dysample_shapes(weights, 3 * scale * scale, scale, name))
    what = {"layer_norm": "layer norm", "norm": f"GroupNorm of {GROUPS} groups",
            None: {(3, 1): "CCM", (1, 3): "ICCM", (3, 3): "DCCM"}[mixing]}[norm]
    arch = (f"{name}, {counted(blocks, 'block')}, {dim} features, {kernel}x{kernel} kernel on {pdim}, "
            f"{what}{'' if attention else ', no attention'}"
            f"{', ' + dysample.describe(weights, scale) if upsampler else ''}, x{scale}")
    check_shapes(weights, {k: k for k in shapes}, shapes, arch)

    net = Net(weights, {k: k for k in shapes}, fp16)
    x = net.conv("feats.0", INPUT_BLOB)
    for i in range(1, blocks + 1):
        x = _block(net, f"feats.{i}", x, dim, pdim, mixer, norm)
    x = net.conv(last, x)
    # Each picture channel repeated scale² times: a 1x1 convolution of ones.
    repeat = np.zeros((3 * scale * scale, 3, 1, 1), np.float32)
    repeat[np.arange(3 * scale * scale), np.arange(3 * scale * scale) // (scale * scale)] = 1
    picture = net.conv_of("repeat", INPUT_BLOB, repeat, np.zeros(3 * scale * scale, np.float32), "the repeat")
    x = net.add("BinaryOp", "residual", [x, picture], "0=0")
    if upsampler:
        x = dysample.dysample(net, x, 3 * scale * scale, scale)
    elif scale > 1:
        x = net.add("PixelShuffle", "pixel_shuffle", [x], f"0={scale} 1=0")
    param, data = net.finish(x)
    return param, data, arch, scale


def _block_shapes(key: str, dim: int, pdim: int, kernel: int, attention: bool, mixer: str,
                  mixing: tuple[int, int], norm: str | None) -> dict:
    k0, k2 = mixing
    shapes = {f"{key}.{mixer}.0.weight": (2 * dim, dim, k0, k0), f"{key}.{mixer}.0.bias": (2 * dim,),
              f"{key}.{mixer}.2.weight": (dim, 2 * dim, k2, k2), f"{key}.{mixer}.2.bias": (dim,),
              f"{key}.lk.conv.weight": (pdim, pdim, kernel, kernel), f"{key}.lk.conv.bias": (pdim,),
              f"{key}.refine.weight": (dim, dim, 1, 1), f"{key}.refine.bias": (dim,)}
    if attention:
        shapes.update({f"{key}.attn.f.0.weight": (dim, dim, 3, 3), f"{key}.attn.f.0.bias": (dim,)})
    if norm is not None:
        shapes.update({f"{key}.{norm}.weight": (dim,), f"{key}.{norm}.bias": (dim,)})
    return shapes


def _block(net: Net, key: str, x: str, dim: int, pdim: int, mixer: str, norm: str | None) -> str:
    h = _layer_norm(net, key, x, dim) if norm == "layer_norm" else x
    h = net.conv(f"{key}.{mixer}.0", h)
    # PLKSR's nn.GELU is the exact one (erf), which ncnn's GELU is without its fast flag.
    activation = net.add("Mish", f"{key}.mish", [h]) if mixer == "channel_mixer" else \
        net.add("GELU", f"{key}.gelu", [h], "0=0")
    h = net.conv(f"{key}.{mixer}.2", activation)
    if pdim < dim:
        large, rest = net.add_many("Slice", f"{key}.split", [h], 2, f"-23300=2,{pdim},-233 1=0")
        h = net.add("Concat", f"{key}.join", [net.conv(f"{key}.lk.conv", large, extra=NO_SGEMM), rest], "0=0")
    else:
        h = net.conv(f"{key}.lk.conv", h, extra=NO_SGEMM)
    if f"{key}.attn.f.0.weight" in net.weights:
        gate = net.add("Sigmoid", f"{key}.gate", [net.conv(f"{key}.attn.f.0", h)])
        h = net.add("BinaryOp", f"{key}.attend", [h, gate], "0=2")
    h = net.conv(f"{key}.refine", h)
    if norm == "norm":
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

