"""Cutting a network in two where it starts to upsample.

Real-ESRGAN's RRDBNet does nearly all its work (and all of its reach: a receptive
field of hundreds of pixels) at the input's size, then upsamples twice and runs three
convolutions at four times the size. Those last layers hold almost all the memory a
CPU tile needs (64 channels at 16 pixels per input pixel) but see only a pixel or two
around themselves. Cut at the first upsampling layer, the "trunk" can run on large
windows and the "head" on small pieces of the trunk's output, with enough context to
give the same numbers as the whole network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .models import Layer, ParamGraph, parse_param, weight_ends

# Layers the head may hold: per-pixel ones, convolutions and upsampling.
_HEAD_POINTWISE = frozenset("ReLU LeakyReLU PReLU Sigmoid Clip Swish HardSwish BinaryOp UnaryOp Split".split())


@dataclass(frozen=True)
class NetSplit:
    """Two param texts and their weights, and what joins them.

    ``context`` is how many trunk-output pixels around a piece the head needs to
    compute that piece exactly; ``channels`` how many channels the cut blob has."""

    trunk_param: str
    trunk_bin: bytes
    head_param: str
    head_bin: bytes
    cut_blob: str
    context: int


def split_at_upsampler(param_bytes: bytes, bin_bytes: bytes, output_blob: str) -> NetSplit | None:
    """The network cut before its first Interp that upsamples, or None when it has
    none, when later layers reach back past it, or when the head holds a layer whose
    reach is not known here."""
    graph = parse_param(param_bytes)
    layers = graph.layers
    cut = next((i for i, layer in enumerate(layers) if layer.type == "Interp" and _upsamples(layer)), None)
    if cut is None or cut == 0:
        return None
    cut_blob = layers[cut].bottoms[0]
    before = {t for layer in layers[:cut] for t in layer.tops}
    if any(b in before and b != cut_blob for layer in layers[cut:] for b in layer.bottoms):
        return None
    context = _head_context(layers[cut:])
    offset = _weights_before(graph, cut, bin_bytes)
    if context is None or offset is None:
        return None
    if output_blob not in {t for layer in layers[cut:] for t in layer.tops}:
        return None
    # The layers' own lines, as parse_param counted them: no re-serialising.
    rows = [ln for ln in param_bytes.decode("utf-8").splitlines() if ln.strip()][2:]
    trunk = _param_text(layers[:cut], rows[:cut])
    head = _param_text(layers[cut:], [f"Input head_input 0 1 {cut_blob}"] + rows[cut:], extra_blob=cut_blob)
    return NetSplit(trunk, bin_bytes[:offset], head, bin_bytes[offset:], cut_blob, context)


def _upsamples(layer: Layer) -> bool:
    p = layer.params
    return float(p.get(1, 1.0)) > 1 or float(p.get(2, 1.0)) > 1


def _head_context(layers) -> int | None:
    """Trunk-output pixels of context the head needs, rounded up, or None."""
    scale, reach = 1.0, 0.0
    for layer in layers:
        p = layer.params
        if layer.type == "Interp":
            if not _upsamples(layer):
                return None
            reach += 1 / scale  # nearest needs none, (bi)linear and bicubic up to 2 pixels
            scale *= float(p.get(1, 1.0))
        elif layer.type in ("Convolution", "ConvolutionDepthWise"):
            kernel = int(p.get(1, 0))
            kernel_h = int(p.get(11, kernel))
            dilation = int(p.get(2, 1))
            if int(p.get(3, 1)) != 1:  # a stride changes the scale: not handled
                return None
            reach += (max(kernel, kernel_h) // 2) * dilation / scale
        elif layer.type not in _HEAD_POINTWISE:
            return None
    return math.ceil(reach) + 1


def _weights_before(graph: ParamGraph, cut: int, bin_bytes: bytes) -> int | None:
    """Bytes of the .bin the layers before ``cut`` read."""
    offset = 0
    for index, (_, offset) in enumerate(weight_ends(graph, bin_bytes)):
        if index == cut - 1 or offset is None:
            break
    return offset if offset is not None and offset <= len(bin_bytes) else None


def _param_text(layers, rows: list[str], extra_blob: str | None = None) -> str:
    blobs = {t for layer in layers for t in layer.tops} | ({extra_blob} if extra_blob else set())
    return "\n".join(["7767517", f"{len(rows)} {len(blobs)}", *rows]) + "\n"
