"""SPAN (Swift Parameter-free Attention Network, CVPR 2024 NTIRE), converted to ncnn.

Keys: ``conv_1``, ``block_N.c{1,2,3}_r`` (N from 1, six in the paper's model),
``conv_cat``, ``conv_2`` and ``upsampler.0``; every ``conv_1``, ``c*_r`` and ``conv_2``
a Conv3XC: a 1x1 convolution ``sk`` beside three in a row, ``conv.0`` (1x1), ``conv.1``
(3x3, unpadded, its input padded with zeros before ``conv.0``) and ``conv.2`` (1x1),
all linear, so one 3x3 convolution does what they do together; it is worked out here
from them (a checkpoint's ``eval_conv``, where it has one, is only as fresh as the last
forward in eval mode before saving). Each block: three of those, SiLU after the first
two, then ``(out + x) * (sigmoid(out) - 0.5)``. The network: the picture, less the
training set's mean colour and times 255 (unless the checkpoint says ``no_norm``),
through ``conv_1``, the blocks, ``conv_2`` on the last block's output, a 1x1
``conv_cat`` of [``conv_1``'s output, that, the first block's output, the last block's
first convolution], and a 3x3 convolution to 3 x scale² channels, pixel-shuffled.
"""
from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np

from .errors import ModelError
from .ncnn_graph import INPUT_BLOB, Net, check_shapes, counted, shape_of

NAMES = "SPAN"
# The mean colour of the training set (DIV2K) that SPAN subtracts from its input.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
IMG_RANGE = 255.0
_PARTS = ("sk", "conv.0", "conv.1", "conv.2")


def is_span(weights: Mapping[str, np.ndarray]) -> bool:
    return "conv_1.sk.weight" in weights and "block_1.c1_r.sk.weight" in weights


def convert_span(weights: Mapping[str, np.ndarray], fp16: bool) -> tuple[str, bytes, str, int]:
    """The param text, bin bytes, description and scale of the SPAN in ``weights``."""
    blocks = len({m.group(1) for k in weights if (m := re.match(r"block_(\d+)\.", k))})
    first = shape_of(weights, "conv_1.sk.weight")
    last = shape_of(weights, "upsampler.0.weight") if "upsampler.0.weight" in weights else ()
    if len(first) != 4 or len(last) != 4 or first[1] != 3 or first[0] < 1 or blocks == 0:
        raise ModelError(f"{NAMES}: conv_1 takes {describe_shape(first)} and the upsampler "
                         f"gives {describe_shape(last)}; an RGB model with a pixel-shuffle upsampler is expected "
                         "(another upsampler, such as DySample, is not converted here)")
    feat = first[0]
    scale = math.isqrt(last[0] // 3)
    if scale < 1 or last[0] != 3 * scale * scale:
        raise ModelError(f"{NAMES}: the upsampler gives {last[0]} channels where 3 x scale² are expected")
    norm = "no_norm" not in weights
    arch = f"{NAMES}, {counted(blocks, 'block')}, {feat} features, x{scale}" + ("" if norm else ", no input normalisation")
    shapes: dict[str, tuple] = {}
    gains: dict[str, int] = {}
    for key, c_in in [("conv_1", 3), *((f"block_{i}.c{j}_r", feat) for i in range(1, blocks + 1) for j in (1, 2, 3)),
                      ("conv_2", feat)]:
        gains[key] = _gain(weights, key, c_in)
        shapes.update(_conv3xc_shapes(weights, key, c_in, feat, gains[key]))
    shapes.update({"conv_cat.weight": (feat, 4 * feat, 1, 1), "conv_cat.bias": (feat,),
                   "upsampler.0.weight": (3 * scale * scale, feat, 3, 3), "upsampler.0.bias": (3 * scale * scale,)})
    extra = {k: np.shape(weights[k]) for k in ("no_norm",) if k in weights}
    check_shapes(weights, {k: k for k in (*shapes, *extra)}, {**shapes, **extra}, arch)

    net = Net(weights, {k: k for k in shapes}, fp16)
    x = INPUT_BLOB
    if norm:
        # A 1x1 convolution: ncnn's Scale layer crashed on the input blob (1.0.20261020).
        weight = (IMG_RANGE * np.eye(3, dtype=np.float32))[:, :, None, None]
        bias = -IMG_RANGE * np.asarray(RGB_MEAN, np.float32)
        x = net.conv_of("normalise", x, weight, bias, "the input's normalisation")
    features = x = _conv3xc(net, weights, "conv_1", x)
    first_block = block_first = None  # the first block's output; the last one's first convolution
    for i in range(1, blocks + 1):
        x, block_first = _spab(net, weights, f"block_{i}", x)
        first_block = first_block or x
    x = _conv3xc(net, weights, "conv_2", x)
    x = net.add("Concat", "cat", [features, x, first_block, block_first], "0=0")
    x = net.conv("conv_cat", x)
    x = net.conv("upsampler.0", x)
    if scale > 1:
        x = net.add("PixelShuffle", "pixel_shuffle", [x], f"0={scale} 1=0")
    param, data = net.finish(x)
    return param, data, arch, scale


def describe_shape(shape: tuple) -> str:
    return "no weight" if not shape else f"a weight of shape {tuple(shape)}"


def _gain(weights: Mapping[str, np.ndarray], key: str, c_in: int) -> int:
    """How many times ``c_in`` channels a Conv3XC's inner convolutions widen to."""
    inner = shape_of(weights, f"{key}.conv.0.weight") if f"{key}.conv.0.weight" in weights else ()
    if len(inner) != 4 or inner[0] < 1 or inner[0] % c_in:
        raise ModelError(f"{NAMES}: {key}.conv.0.weight is {describe_shape(inner)}, not the 1x1 convolution "
                         f"to a multiple of {c_in} channels a Conv3XC has")
    return inner[0] // c_in


def _conv3xc_shapes(weights, key: str, c_in: int, c_out: int, gain: int) -> dict[str, tuple]:
    shapes = {f"{key}.sk.weight": (c_out, c_in, 1, 1), f"{key}.conv.0.weight": (c_in * gain, c_in, 1, 1),
              f"{key}.conv.1.weight": (c_out * gain, c_in * gain, 3, 3),
              f"{key}.conv.2.weight": (c_out, c_out * gain, 1, 1)}
    shapes.update({f"{key}.{part}.bias": (shapes[f"{key}.{part}.weight"][0],) for part in _PARTS})
    if f"{key}.eval_conv.weight" in weights:  # worked out again below: only its shape matters
        shapes.update({f"{key}.eval_conv.weight": (c_out, c_in, 3, 3), f"{key}.eval_conv.bias": (c_out,)})
    return shapes


def fused_conv3xc(weights: Mapping[str, np.ndarray], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The 3x3 convolution (weight, bias) that a Conv3XC's four convolutions make
    together. Its input padded with zeros and then ``conv.0``'s bias added, every
    one of ``conv.1``'s taps sees that bias: it goes into the bias whole."""
    def get(part: str, end: str) -> np.ndarray:
        return np.asarray(weights[f"{key}.{part}.{end}"], np.float64)

    w1, b1 = get("conv.0", "weight")[:, :, 0, 0], get("conv.0", "bias")
    w2, b2 = get("conv.1", "weight"), get("conv.1", "bias")
    w3, b3 = get("conv.2", "weight")[:, :, 0, 0], get("conv.2", "bias")
    weight = np.einsum("om,mnyx,ni->oiyx", w3, w2, w1)
    weight[:, :, 1, 1] += get("sk", "weight")[:, :, 0, 0]
    bias = w3 @ (b2 + np.einsum("mnyx,n->m", w2, b1)) + b3 + get("sk", "bias")
    return weight.astype(np.float32), bias.astype(np.float32)


def _conv3xc(net: Net, weights, key: str, bottom: str) -> str:
    w, b = fused_conv3xc(weights, key)
    return net.conv_of(key, bottom, w, b, f"{key}.conv.1.weight")


def _spab(net: Net, weights, key: str, x: str) -> tuple[str, str]:
    """A block's output, and its first convolution's (which the last block hands to
    conv_cat)."""
    first = _conv3xc(net, weights, f"{key}.c1_r", x)
    y = _conv3xc(net, weights, f"{key}.c2_r", net.add("Swish", f"{key}.act1", [first]))
    out = _conv3xc(net, weights, f"{key}.c3_r", net.add("Swish", f"{key}.act2", [y]))
    attention = net.add("BinaryOp", f"{key}.centre", [net.add("Sigmoid", f"{key}.sigmoid", [out])], "0=1 1=1 2=0.5")
    joined = net.add("BinaryOp", f"{key}.residual", [out, x], "0=0")
    return net.add("BinaryOp", f"{key}.attend", [joined, attention], "0=2"), first
