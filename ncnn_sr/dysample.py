"""DySample ("Learning to Upsample by Learning to Sample", ICCV 2023), the upsampler
RealPLKSR offers in neosr and traiNNer-redux instead of a pixel shuffle, converted to
ncnn. Keys under ``to_img.``: ``offset`` (1x1, C to 2 x groups x scale² channels),
``scope`` (1x1, no bias; absent in DySample's static-scope form), the buffer
``init_pos``, and ``end_conv`` (to the output's channels; absent at x1).

On its input x (C channels, H x W): offsets ``offset(x) * sigmoid(scope(x)) * 0.5``
(``* 0.25`` without scope) plus ``init_pos``, the first half for x, the second for y,
each of groups x scale² channels; each group's scale² pairs, pixel-shuffled, say where
output pixel (h·s+i, w·s+j) samples that group's C / groups channels: at (w, h) plus
its offset, in input pixels, bilinearly, coordinates clamped to the picture
(grid_sample with align_corners=False, padding "border"). With zero offset weights
that is plain bilinear upsampling, as init_pos puts each sample where it does.

ncnn's GridSample takes coordinates normalised to the input's size, which the param
cannot hold: the network works them out from a plane of ones (a running sum gives
the column or row, a sum over the row the size), so one model serves any size of
tile. Each sample reads its own neighbourhood only, out to its offset, which the
tile's context must cover as it covers a convolution's. No offset is bounded: either
scope scales (by 0.25, or by a sigmoid's 0 to 0.5) a 1x1 convolution of features
that are not bounded. So the context is measured, not assumed: ``offsets_of`` reads
the offset convolutions back from a converted model, and ``Offsets.reach`` says how
far the samples made from a piece's features reach (netsplit's head plan assumes
``SAMPLE_REACH``; the head widens a piece's window where they reach further).

Two grid_sample conventions are about, under the same keys and shapes (offset,
scope, init_pos, end_conv), so a checkpoint cannot say which it was trained with.
DySample's published sample() (tiny-smart/dysample), traiNNer-redux's arch_util.DySample
and spandrel's shared __arch_helpers/dysample.py in its F.grid_sample revisions call
grid_sample with align_corners=False, which the grid above is built for (pixel
centres at i + 0.5 over a size W): a zero offset samples the pixel's own centre.
Another revision of that spandrel file (float32 forced through
torch.ops.aten.grid_sampler_2d(x, grid, 0, 1, True)) passes align_corners=True with
the same grid, which reads a sample meant for x at x + 0.5 - (x + 0.5) / W: the
picture squeezed towards its centre by (W - 1) / W, by up to half an input pixel at
its edges and by an amount that depends on the size it is run at. traiNNer-redux's
RealPLKSR imports its DySample from spandrel, so which one a checkpoint saw depends
on the spandrel its trainer had. align_corners=False is converted (GridSample's 2=0):
it is what the grid's construction and the paper mean, and only it lets a tile give
the whole picture's numbers; a checkpoint trained under the other sees its
samples moved by at most half an input pixel, near the picture's edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .errors import ModelError
from .ncnn_graph import Net, shape_of
from .param_file import ParamGraph, layer_weights

PREFIX = "to_img."
# GridSample: bilinear (0=1), border padding (1=2), align_corners=False (2=0), the
# grid given channels first, x then y (3=1).
_GRID_SAMPLE = "0=1 1=2 2=0 3=1"
# Input pixels a sample reads from its own pixel where its learnt offset is within
# 2.5: init_pos (under half a pixel), the offset, and the bilinear neighbour. The head
# plan assumes this much; a piece whose offsets go further gets more (Offsets.reach).
SAMPLE_REACH = 4
# The reach of offsets that are not finite: more than any picture has.
UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class Offsets:
    """A converted DySample's offsets, for x then y: ``weights`` (n x C) and
    ``biases`` (n) of the 1x1 convolutions that give twice each sample's offset in
    pixels, and ``scopes`` (n x C), the dynamic scope's convolutions, whose sigmoid
    then scales it (None for the static scope, whose 0.25 is in the weights)."""

    weights: tuple[np.ndarray, np.ndarray]
    biases: tuple[np.ndarray, np.ndarray]
    scopes: tuple[np.ndarray, np.ndarray] | None = None

    def reach(self, features: np.ndarray) -> int:
        """The most input pixels from its own pixel that a sample made from
        ``features`` (C x H x W, the upsampler's input) reads: ``SAMPLE_REACH`` while
        every offset is within 2.5 pixels. A sample at pixel i, offset d (|d| under
        the learnt offset + 0.5 with init_pos) reads pixels floor(i + d) and the next."""
        flat = features.reshape(features.shape[0], -1)
        largest = 0.0
        for axis in range(2):
            twice = self.weights[axis] @ flat + self.biases[axis][:, None]
            if self.scopes is not None:
                twice *= 0.5 + 0.5 * np.tanh(0.5 * (self.scopes[axis] @ flat))  # the sigmoid, without overflow
            largest = max(largest, float(np.abs(twice).max(initial=0)))
        if not math.isfinite(largest):
            return UNBOUNDED  # the network's output will say what is wrong; its samples may read anything
        return max(SAMPLE_REACH, math.ceil(largest / 2 + 0.5) + 1)


def offsets_of(graph: ParamGraph, bin_bytes: bytes) -> Offsets | None:
    """The offsets of a DySample that ``dysample`` converted, from the model's
    .param ``graph`` and .bin bytes; None where its layers are not found."""
    names = [f"{PREFIX}{axis}.{part}" for part in ("offset", "scope") for axis in "xy"]
    found = layer_weights(graph, bin_bytes, names)
    kinds = {layer.name: layer.type for layer in graph.layers}

    def conv(name):
        arrays = found.get(name, [])
        if kinds.get(name) != "Convolution" or len(arrays) != 2 or not arrays[1].size \
                or arrays[0].size % arrays[1].size:
            return None
        return arrays[0].reshape(arrays[1].size, -1), arrays[1]

    offset = [conv(f"{PREFIX}{axis}.offset") for axis in "xy"]
    scope = [conv(f"{PREFIX}{axis}.scope") for axis in "xy"]
    if None in offset or scope.count(None) == 1:
        return None
    return Offsets((offset[0][0], offset[1][0]), (offset[0][1], offset[1][1]),
                   None if None in scope else (scope[0][0], scope[1][0]))


def has_dysample(weights: Mapping[str, np.ndarray]) -> bool:
    return any(k.startswith(PREFIX) for k in weights)


def dysample_shapes(weights: Mapping[str, np.ndarray], channels: int, scale: int, name: str) -> dict[str, tuple]:
    """The shapes of a DySample's keys on ``channels`` input channels at ``scale``,
    as the keys say how many groups, whether a scope and whether an end convolution."""
    if f"{PREFIX}offset.weight" not in weights:
        raise ModelError(f"{name}: a DySample upsampler (to_img keys) without to_img.offset.weight")
    offset = shape_of(weights, f"{PREFIX}offset.weight")
    per_group = 2 * scale * scale
    if len(offset) != 4 or offset[0] % per_group or offset[1:] != (channels, 1, 1) \
            or not 0 < offset[0] // per_group <= channels or channels % (offset[0] // per_group):
        raise ModelError(f"{name}: to_img.offset.weight has shape {tuple(offset)}: a DySample upsampler's 1x1 "
                         f"convolution of {channels} channels to 2 x groups x {scale * scale} is expected")
    n = offset[0]
    shapes = {f"{PREFIX}offset.weight": (n, channels, 1, 1), f"{PREFIX}offset.bias": (n,),
              f"{PREFIX}init_pos": (1, n, 1, 1)}
    if f"{PREFIX}scope.weight" in weights:
        shapes[f"{PREFIX}scope.weight"] = (n, channels, 1, 1)
    if f"{PREFIX}end_conv.weight" in weights:
        end = shape_of(weights, f"{PREFIX}end_conv.weight")
        if len(end) != 4 or end[0] != 3 or end[2] != end[3] or end[2] % 2 == 0:
            raise ModelError(f"{name}: to_img.end_conv.weight has shape {tuple(end)}: a convolution to 3 channels "
                             "of an odd square kernel is expected")
        shapes.update({f"{PREFIX}end_conv.weight": (3, channels, end[2], end[2]), f"{PREFIX}end_conv.bias": (3,)})
    elif channels != 3:
        raise ModelError(f"{name}: a DySample upsampler without to_img.end_conv gives {channels} channels, not 3")
    return shapes


def describe(weights: Mapping[str, np.ndarray], scale: int) -> str:
    groups = shape_of(weights, f"{PREFIX}offset.weight")[0] // (2 * scale * scale)
    scope = "dynamic" if f"{PREFIX}scope.weight" in weights else "static"
    return f"DySample upsampler ({groups} group{'' if groups == 1 else 's'}, {scope} scope)"


def dysample(net: Net, x: str, channels: int, scale: int) -> str:
    """The DySample upsampler of the ``to_img`` keys on blob ``x``; its output blob."""
    w = net.array(f"{PREFIX}offset.weight")
    b = net.array(f"{PREFIX}offset.bias")
    init = net.array(f"{PREFIX}init_pos").reshape(-1)
    scope = net.array(f"{PREFIX}scope.weight") if f"{PREFIX}scope.weight" in net.weights else None
    n = w.shape[0] // 2
    groups = n // (scale * scale)
    # Twice the offset, in pixels, is what the normalised coordinate needs.
    twice = 1.0 if scope is not None else 0.5
    source = f"{PREFIX}offset.weight"
    ones = net.conv_of(f"{PREFIX}ones", x, np.zeros((1, channels, 1, 1), np.float32), np.ones(1, np.float32), source)
    coords = []
    for axis, (name, along) in enumerate((("x", 2), ("y", 1))):
        part = slice(axis * n, (axis + 1) * n)
        index = net.add("CumulativeSum", f"{PREFIX}{name}.index", [ones], f"0={along}")  # column (row) + 1
        size = net.add("Reduction", f"{PREFIX}{name}.size", [ones], f"0=0 1=0 -23303=1,{along} 4=1 5=1")
        doubled = net.add("BinaryOp", f"{PREFIX}{name}.double", [index], "0=2 1=1 2=2")
        centred = net.add("BinaryOp", f"{PREFIX}{name}.centre", [doubled, size], "0=1")  # 2 (i + 1) - size
        # 2 i + 1 - size + 2 init_pos, one channel for each sample.
        base = net.conv_of(f"{PREFIX}{name}.base", centred, np.ones((n, 1, 1, 1), np.float32),
                           2 * init[part] - 1, source)
        offset = net.conv_of(f"{PREFIX}{name}.offset", x, w[part] * twice, b[part] * twice, source)
        if scope is not None:
            gate = net.add("Sigmoid", f"{PREFIX}{name}.scope_gate",
                           [net.conv_of(f"{PREFIX}{name}.scope", x, scope[part], np.zeros(n, np.float32),
                                        f"{PREFIX}scope.weight")])
            offset = net.add("BinaryOp", f"{PREFIX}{name}.scoped", [offset, gate], "0=2")
        shifted = net.add("BinaryOp", f"{PREFIX}{name}.shift", [offset, base], "0=0")
        coords.append(net.add("BinaryOp", f"{PREFIX}{name}.normalise", [shifted, size], "0=3"))
    pieces = [_split(net, f"{PREFIX}{name}.groups", c, groups) for name, c in zip("xy", coords)]
    inputs = _split(net, f"{PREFIX}groups", x, groups)
    outputs = []
    for g in range(groups):
        pair = net.add("Concat", f"{PREFIX}grid{g}.pair", [pieces[0][g], pieces[1][g]], "0=0")
        grid = net.add("PixelShuffle", f"{PREFIX}grid{g}", [pair], f"0={scale} 1=0") if scale > 1 else pair
        outputs.append(net.add("GridSample", f"{PREFIX}sample{g}", [inputs[g], grid], _GRID_SAMPLE))
    out = net.add("Concat", f"{PREFIX}join", outputs, "0=0") if groups > 1 else outputs[0]
    return net.conv(f"{PREFIX}end_conv", out) if f"{PREFIX}end_conv.weight" in net.weights else out


def _split(net: Net, name: str, blob: str, count: int) -> list[str]:
    if count == 1:
        return [blob]
    return net.add_many("Slice", name, [blob], count, f"-23300={count}," + ",".join(["-233"] * count) + " 1=0")
