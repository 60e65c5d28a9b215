"""ncnn's text .param format, parsed, and the walk over the .bin weights its layers
declare: enough to name what is wrong with a truncated or mismatched pair before
ncnn loads it. Knows nothing of catalogs or folders."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Iterator

from .errors import ModelError

if TYPE_CHECKING:
    import numpy as np

PARAM_MAGIC = 7767517
PNNX_MAGIC = 7767518  # the first line of pnnx's own NAME.pnnx.param, which ncnn cannot read


def starts_as_param(data: bytes) -> bool:
    """Whether ``data``, a file's first bytes, open as an ncnn .param's text does."""
    return data[:16].split(b"\n", 1)[0].strip() == str(PARAM_MAGIC).encode()


@dataclass(frozen=True)
class Layer:
    type: str
    name: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    params: dict  # id -> int | float | list


@dataclass(frozen=True)
class ParamGraph:
    """A parsed .param file. ``input_blob`` is the first Input layer's top;
    ``output_blob`` the last blob that no layer consumes."""

    layers: tuple[Layer, ...]
    input_blob: str
    output_blob: str


def readers(layers) -> dict[str, list[Layer]]:
    """The ``layers`` that take each blob, in their order."""
    taking: dict[str, list[Layer]] = {}
    for layer in layers:
        for bottom in layer.bottoms:
            taking.setdefault(bottom, []).append(layer)
    return taking


def _number(text: str) -> int | float:
    if any(ch in text for ch in ".eE") and not text.lstrip("-").isdigit():
        return float(text)
    return int(text)


def parse_param(param_bytes: bytes, name: str = "model", path=None) -> ParamGraph:
    """Parse ncnn's text param format; a malformed file is a ModelError, which names
    ``path``, the file's, where given."""
    if isinstance(param_bytes, bytes):
        try:
            return _parsed(param_bytes)
        except ModelError:
            pass  # said again below, in ``name``'s and ``path``'s words
    return _parse(param_bytes, name, path)


# A model's param is parsed by its checks (models), its stages' plan (netsplit) and its
# reach (the reference rule's tiles), each from the file's bytes: once is enough, where
# each parse of realesrgan-x4plus's took 40 ms on a busy 2-core machine. Nothing
# changes a ParamGraph.
@functools.lru_cache(maxsize=4)
def _parsed(param_bytes: bytes) -> ParamGraph:
    return _parse(param_bytes, "model", None)


def binary_param(what) -> str:
    return (f"{what} is a binary param file (ncnn2mem's .param.bin), which ncnn-sr does not read: "
            "give the text .param it was made from")


def _parse(param_bytes: bytes, name: str, path) -> ParamGraph:
    what = "the .param file" if path is None else str(path)
    if param_bytes[:4] == PARAM_MAGIC.to_bytes(4, "little"):  # ncnn2mem's, renamed .param
        raise ModelError(f"model {name}: {binary_param(what)}")
    try:
        text = param_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        if param_bytes.startswith(str(PARAM_MAGIC).encode()) and b"\0" not in param_bytes:
            # Text in another encoding (a name in Latin-1, say), no weights.
            line = param_bytes.count(b"\n", 0, e.start) + 1
            raise ModelError(f"model {name}: {what} is not UTF-8 text (byte 0x{param_bytes[e.start]:02x} on line "
                             f"{line}): save it as UTF-8") from None
        raise ModelError(f"model {name}: {what} is not text (is it a .bin?)") from None
    if text.startswith("\ufeff"):
        raise ModelError(f"model {name}: {what} begins with a byte-order mark (saved as 'UTF-8 with BOM'), "
                         "which ncnn cannot read: save it as plain UTF-8")
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    # Made as raised, not kept in a local: this frame, in the error's traceback, held it
    # in a cycle, and with it the file's text and the frames it went through.
    def bad() -> ModelError:
        return ModelError(f"model {name}: {what} is not an ncnn param file")

    if lines and lines[0] == [str(PNNX_MAGIC)] and "pnnx." in text:  # pnnx.Input: not a digit damaged
        raise ModelError(f"model {name}: {what} is pnnx's own graph, not an ncnn param file: give the "
                         "NAME.ncnn.param pnnx wrote beside it")
    if len(lines) < 2 or lines[0] != [str(PARAM_MAGIC)] or len(lines[1]) != 2:
        raise bad()
    try:
        layer_count, blob_count = int(lines[1][0]), int(lines[1][1])
    except ValueError:
        raise bad() from None
    if layer_count != len(lines) - 2:
        held = len(lines) - 2
        why = "truncated?" if held < layer_count else "a layer added by hand, the count not raised?"
        raise ModelError(f"model {name}: {what} declares {layer_count} layer{'s' * (layer_count != 1)} "
                         f"but holds {held} ({why})")
    layers = []
    try:
        for row in lines[2:]:
            ltype, lname, nb, nt = row[0], row[1], int(row[2]), int(row[3])
            bottoms = tuple(row[4:4 + nb])
            tops = tuple(row[4 + nb:4 + nb + nt])
            if len(tops) != nt:
                raise ValueError
            params: dict = {}
            for item in row[4 + nb + nt:]:
                key, _, value = item.partition("=")
                k = int(key)
                if k <= -23300:
                    parts = value.split(",")
                    params[-k - 23300] = [_number(v) for v in parts[1:]]
                else:
                    params[k] = _number(value)
            layers.append(Layer(ltype, lname, bottoms, tops, params))
    except (ValueError, IndexError):
        raise bad() from None
    # ncnn numbers each top as a blob of its own and stops past the count declared
    # ("too many blobs"), where `ncnn-sr models` had listed the file as usable.
    made = sum(len(layer.tops) for layer in layers)
    if made > blob_count:
        raise ModelError(f"model {name}: {what} declares {blob_count} blob{'s' * (blob_count != 1)} but its layers "
                         f"make {made} (a layer added by hand, the count not raised?)")
    for layer in layers:
        _check_inputs(layer, name, what)
        _check_ranges(layer, name, what)
    inputs = [t for layer in layers if layer.type == "Input" for t in layer.tops]
    consumed = {b for layer in layers for b in layer.bottoms}
    produced = [t for layer in layers if layer.type != "Input" for t in layer.tops if t not in consumed]
    if not inputs or not produced:
        raise ModelError(f"model {name}: {what} has no input or no output blob")
    fed = [t for t in inputs if t in consumed]
    if len(fed) > 1:  # the others, never fed, come out as garbage or NaN: not the machine's fault
        raise ModelError(f"model {name}: {what} has {len(fed)} inputs ({', '.join(fed)}): "
                         "an upscaler takes one, the picture")
    return ParamGraph(tuple(layers), (fed or inputs)[0], _picture_output(produced))


# Of several outputs, the one the reference extracts by name ("output"), else pnnx's
# first (out0): a side output listed after the picture ran an x2 model as x1, unsaid.
_OUTPUT_NAMES = ("output", "out0")


def _picture_output(produced: list[str]) -> str:
    return next((b for b in _OUTPUT_NAMES if b in produced), produced[-1])


def _check_inputs(layer: Layer, name: str, what: str) -> None:
    # ncnn hands a layer the inputs the file lists and takes the count on trust: a
    # BinaryOp given one input (a damaged type name) reads a second that is not there.
    count = len(layer.bottoms)
    if layer.type in ("Input", "MemoryData"):
        needed = "none"
        fits = count == 0
    elif layer.type == "BinaryOp":
        scalar = layer.params.get(1, 0) == 1
        needed = "one (with a scalar)" if scalar else "two"
        fits = count == (1 if scalar else 2)
    elif layer.type in _ONE_INPUT or (layer.type in _CONVOLUTIONS and not layer.params.get(19, 0)):
        needed = "one"
        fits = count == 1
    elif layer.type in ("Concat", "Eltwise"):
        needed = "at least one"
        fits = count >= 1
    else:
        return
    if not fits:
        raise ModelError(f"model {name}: layer {layer.name} ({layer.type}) has {count} inputs where it takes "
                         f"{needed}: {what} is damaged")


def _check_ranges(layer: Layer, name: str, what: str) -> None:
    for keys, low, high in _RANGES.get(layer.type, ()):
        for key in keys:
            value = layer.params.get(key)
            if value is None:
                continue
            fits = isinstance(value, (int, float)) and (low <= value <= high or
                                                        (key in _PADS and value in _SPECIAL_PADS))
            if layer.type == "Scale" and value == -233:  # its scale comes as a second input
                fits = True
            if not fits:
                raise ModelError(f"model {name}: layer {layer.name} ({layer.type}) has {key}={value}, "
                                 f"which no network has (from {low} to {high}): {what} is damaged")


# What one CPU window's peak resident memory is, per input pixel, over the float32
# feature maps alive at once: 4.9 to 7.9 times across the catalog's measured models
# (tools/cpu_memory.py; 7.9 for RRDBNet), the rest ncnn's workspace and pools.
MEMORY_OVER_LIVE_MAPS = 8
# Layers that keep their input's channels and size (for the estimate below).
_SAME_SHAPE = frozenset("""
    ReLU LeakyReLU PReLU Sigmoid Clip Swish HardSwish Mish GELU TanH ELU BinaryOp UnaryOp Eltwise
    Split Slice GroupNorm InstanceNorm LayerNorm BatchNorm Scale Bias Dropout Noop Crop Padding
    CumulativeSum Reduction
""".split())  # Slice (but along the channels, below) and Reduction: at most their input


def cpu_bytes_estimate(graph: ParamGraph) -> int | None:
    """Bytes per input pixel one CPU window of the network is likely to peak at,
    worked out from its layers: MEMORY_OVER_LIVE_MAPS times the float32 feature maps
    alive at once, plus the column buffer of the largest convolution that ncnn runs as
    im2col + sgemm (kernels other than 1x1 and 3x3, unless its feature mask turns
    sgemm off). None for a network with a layer whose output shape is not worked out
    here. For custom models, which were given RRDBNet's 64 kB, ten times what a
    RealPLKSR needs."""
    last_use: dict[str, int] = {}
    for i, layer in enumerate(graph.layers):
        for b in layer.bottoms:
            last_use[b] = i
    shape: dict[str, tuple[float, float]] = {}  # blob -> (channels, scale against the input)
    live: dict[str, float] = {}
    peak = column = 0.0
    for i, layer in enumerate(graph.layers):
        p, kind = layer.params, layer.type
        below = [shape.get(b) for b in layer.bottoms]
        made = _layer_shape(layer, below)
        if made is None:
            return None
        c, s = made
        if kind == "Convolution":
            k_w = int(p.get(1, 0))
            k_h = int(p.get(11, k_w))
            if (k_w, k_h) not in ((1, 1), (3, 3)) and not int(p.get(31, 0)) & 32:
                inputs = int(p.get(6, 0)) / max(1.0, c)  # per output channel, the weights span them all
                column = max(column, inputs * 4 * below[0][1] ** 2)
        shares = _channel_slices(layer, c) if kind == "Slice" else None
        for top, share in zip(layer.tops, shares or [c] * len(layer.tops)):
            shape[top] = (share, s)
            live[top] = share * s * s * 4
        peak = max(peak, sum(live.values()))
        for b in layer.bottoms:
            if last_use.get(b) == i:
                live.pop(b, None)
    return int(MEMORY_OVER_LIVE_MAPS * peak + column) or None


def _layer_shape(layer: Layer, below: list) -> tuple[float, float] | None:
    """The channels and the scale against the input of what ``layer`` makes from
    ``below``, its inputs' (each such a pair, or None where not worked out); None
    where it is not worked out here."""
    p, kind = layer.params, layer.type
    if kind == "Input":
        return 3.0, 1.0
    if None in below or not below:
        return None
    if kind in ("Convolution", "ConvolutionDepthWise"):
        return float(p.get(0, 0)), below[0][1] / max(1, int(p.get(3, 1)))
    if kind == "Deconvolution":
        return float(p.get(0, 0)), below[0][1] * max(1, int(p.get(3, 1)))
    if kind == "Concat" and int(p.get(0, 0)) == 0:
        return sum(b[0] for b in below), below[0][1]
    if kind == "PixelShuffle":
        r = max(1, int(p.get(0, 1)))
        return below[0][0] / (r * r), below[0][1] * r
    if kind == "Reorg":
        r = max(1, int(p.get(0, 1)))
        return below[0][0] * r * r, below[0][1] / r
    if kind == "Interp" and not int(p.get(3, 0)) and not int(p.get(4, 0)) and not p.get(5, 0):
        return below[0][0], below[0][1] * max(float(p.get(1, 1.0)), float(p.get(2, 1.0)))
    if kind in _SAME_SHAPE:
        return below[0]
    if kind == "GridSample" and len(below) == 2:  # the input's channels where the grid says
        return below[0][0], below[1][1]
    return None


def output_scale(graph: ParamGraph, output_blob: str) -> float | None:
    """The scale of ``output_blob`` against the input picture, as the layers' own
    numbers give it; None where a layer's is not worked out here. Nothing is run."""
    shape: dict[str, tuple[float, float]] = {}
    for layer in graph.layers:
        made = _layer_shape(layer, [shape.get(b) for b in layer.bottoms])
        for top in layer.tops:
            if made is not None:
                shape[top] = made
    return shape[output_blob][1] if output_blob in shape else None


def fixed_blobs(graph: ParamGraph, side: int = 1) -> Iterator[tuple[Layer, int, int, int]]:
    """The blobs a run on a ``side`` × ``side`` picture makes, in the layers' order,
    each as (layer, channels, height, width). On one pixel, the least any run
    makes, they are what the layers' own numbers fix (an Interp's 3= and 4=, pads,
    a Tile's repeats, a Fold's size, a MemoryData's weights, a deconvolution's
    kernel). Channels are 1 (a least) where not worked out here; layers whose shapes
    are not worked out here, and those after them, are passed over."""
    for layer, shapes in _shapes(graph, side):
        for c, h, w in shapes:
            yield layer, c, h, w


def largest_fixed_blob(graph: ParamGraph) -> tuple[Layer, int, int, int] | None:
    """The largest of fixed_blobs; None for a graph of no layer."""
    return max(fixed_blobs(graph), key=lambda blob: blob[1] * blob[2] * blob[3], default=None)


def fixed_output(graph: ParamGraph, output_blob: str) -> tuple[Layer, int, int] | None:
    """Where the size of ``output_blob`` is the same whatever the picture: the layer
    whose own numbers fix it and the (height, width) it makes (0, 0 where not worked
    out here); None where the picture's size reaches it (or a layer not known here
    may pass it on)."""
    fixer: dict[str, Layer | None] = {}  # blob -> the layer that fixed its size, None for the picture's
    for layer in graph.layers:
        below = [fixer.get(b) for b in layer.bottoms]
        if _fixes_size(layer):
            made = layer
        elif layer.type == "Interp" and _whole(layer.params, 5) and len(below) > 1:
            made = below[1]  # the size of its second input
        elif not below or None in below:
            made = None
        else:
            made = below[0]
        for top in layer.tops:
            fixer[top] = made
    layer = fixer.get(output_blob)
    if layer is None:
        return None
    shape = next((shapes for _, shapes in _shapes(graph, 1, output_blob)), None)
    return (layer, *shape[0][1:]) if shape else (layer, 0, 0)


def _whole(params: dict, key: int, default: int = 0) -> int:
    """The param ``key`` as a whole number; ``default`` for an array where a number
    belongs (a damaged file, which ncnn reads as it may)."""
    value = params.get(key, default)
    return int(value) if isinstance(value, (int, float)) else default


def _fixes_size(layer: Layer) -> bool:
    """Whether ``layer`` makes a blob of a size of its own, whatever its input's."""
    p = layer.params
    if layer.type == "Interp":
        return _whole(p, 3) > 0 and _whole(p, 4) > 0 and not _whole(p, 5)
    if layer.type == "Fold":
        return _whole(p, 20) > 0
    return layer.type == "MemoryData"


def _shapes(graph: ParamGraph, side: int, only: str | None = None) -> Iterator[tuple[Layer, list]]:
    """Each layer with the (channels, height, width) of the blobs it makes on a
    ``side`` × ``side`` RGB picture (a deconvolution's also before its pad is cut:
    ncnn makes both); with ``only``, that blob's maker alone. Sides are a pixel at
    the least. Layers not worked out here, and those that take their blobs, are
    left out."""
    shape: dict[str, tuple[int, int, int]] = {}
    for layer in graph.layers:
        below = [shape.get(b) for b in layer.bottoms]
        made = [(3, side, side)] if layer.type == "Input" else _layer_shapes(layer, below)
        if made is None:
            continue
        made = [(max(1, c), max(1, h), max(1, w)) for c, h, w in made]
        for top, size in zip(layer.tops, made[-len(layer.tops):] if len(made) >= len(layer.tops) else []):
            shape[top] = size
        if only is None:
            yield layer, made
        elif only in layer.tops and only in shape:
            yield layer, [shape[only]]
            return


def _out_side(side: int, kernel: int, dilation: int, stride: int, pads: tuple[int, int]) -> int:
    if pads[0] in _SPECIAL_PADS:
        return -(-side // stride)  # 'same': the input's, over the stride
    return (side + pads[0] + pads[1] - dilation * (kernel - 1) - 1) // stride + 1


def _layer_shapes(layer: Layer, below: list) -> list | None:
    """The shapes ``layer`` makes from ``below`` (see _shapes), or None."""
    p, kind = layer.params, layer.type

    def n(key, default=0):
        return _whole(p, key, default)

    if kind == "MemoryData":
        return [(max(1, n(2)) * max(1, n(11)), max(1, n(1)), max(1, n(0)))]
    known = below[0] if below else None
    if kind == "Interp" and _fixes_size(layer):
        return [(known[0] if known else 1, n(3), n(4))]
    if kind == "Fold" and _fixes_size(layer):
        return [(1, n(21, n(20)), n(20))]
    if known is None or None in below:
        return None
    c, h, w = known
    if kind == "Interp":
        if n(5) and len(below) > 1:
            return [(c, below[1][1], below[1][2])]
        return [(c, int(h * float(p.get(1, 1.0))), int(w * float(p.get(2, 1.0))))]
    if kind == "Padding" and len(below) == 1:
        return [(c + n(7) + n(8), h + n(0) + n(1), w + n(2) + n(3))]
    if kind in ("Convolution", "ConvolutionDepthWise", "Pooling"):
        pooling = kind == "Pooling"
        if pooling and n(4):
            return [(c, 1, 1)]  # global
        if pooling and n(7):
            return [(c, n(18, n(8)), n(8))]  # adaptive
        k_w, d_w, s_w = (n(1, 1), 1, n(2, 1)) if pooling else (n(1, 1), n(2, 1), n(3, 1))
        k_h, d_h, s_h = (n(11, k_w), 1, n(12, s_w)) if pooling else (n(11, k_w), n(12, d_w), n(13, s_w))
        left = n(3) if pooling else n(4)
        top = n(13, left) if pooling else n(14, left)
        right, bottom = (n(14, left), n(15, top)) if pooling else (n(15, left), n(16, top))
        channels = c if pooling else n(0)
        return [(channels, _out_side(h, k_h, d_h, max(1, s_h), (top, bottom)),
                 _out_side(w, k_w, d_w, max(1, s_w), (left, right)))]
    if kind in ("Deconvolution", "DeconvolutionDepthWise"):
        k_w, d_w, s_w = n(1, 1), n(2, 1), n(3, 1)
        k_h, d_h, s_h = n(11, k_w), n(12, d_w), n(13, s_w)
        full = (n(0), (h - 1) * s_h + d_h * (k_h - 1) + 1 + n(19, n(18)),
                (w - 1) * s_w + d_w * (k_w - 1) + 1 + n(18))
        left, top = n(4), n(14, n(4))
        right, bottom = n(15, left), n(16, top)
        if max(left, top, right, bottom) > 0:
            return [full, (full[0], full[1] - top - bottom, full[2] - left - right)]
        if n(20) > 0 and n(21, n(20)) > 0:
            return [full, (full[0], n(21, n(20)), n(20))]
        return [full]
    if kind == "Tile":
        repeats = p.get(2)
        if isinstance(repeats, list) and 0 < len(repeats) <= 3 and all(isinstance(r, int) for r in repeats):
            times = [1] * (3 - len(repeats)) + repeats
        elif 2 not in p and 0 <= n(0) <= 2:
            times = [1, 1, 1]
            times[n(0)] = n(1, 1)
        else:
            return None
        return [(c * times[0], h * times[1], w * times[2])]
    if kind == "PixelShuffle":
        r = max(1, n(0, 1))
        return [(c // (r * r), h * r, w * r)]
    if kind == "Reorg":
        r = max(1, n(0, 1))
        return [(c * r * r, h // r, w // r)]
    if kind == "Concat" and n(0) == 0:
        return [(sum(b[0] for b in below), h, w)]
    if kind in ("BinaryOp", "Eltwise"):  # broadcast
        return [tuple(max(side) for side in zip(*below))]
    if kind == "Slice":
        shares = _channel_slices(layer, c)
        return None if shares is None else [(int(share), h, w) for share in shares]
    if kind in _SAME_SHAPE and kind not in ("Crop", "Padding", "Reduction"):
        return [known] * max(1, len(layer.tops))
    return None


def _channel_slices(layer: Layer, channels: float) -> list[float] | None:
    """The channels of each output of a Slice along the channels, -233 sharing what
    the others leave; None for another Slice."""
    counts = layer.params.get(0)
    if int(layer.params.get(1, 0)) != 0 or not isinstance(counts, list) or len(counts) != len(layer.tops):
        return None
    given = sum(n for n in counts if n != -233)
    rest = max(0.0, channels - given) / max(1, sum(n == -233 for n in counts))
    return [rest if n == -233 else float(n) for n in counts]


# Layers whose output has as many channels as their input.
_SAME_CHANNELS = frozenset("""
    Split Padding Crop Interp BinaryOp UnaryOp ReLU LeakyReLU PReLU Clip ELU GELU Swish Mish
    HardSigmoid HardSwish Sigmoid TanH Noop Dropout
""".split())


def check_picture_channels(graph: ParamGraph, name: str = "model", path=None) -> None:
    """A ModelError unless each 2D convolution the input blob reaches (through
    layers that keep or unshuffle its channels) takes 3 channels, as the RGB
    picture fed to it has: ncnn takes its count from the weights and read past
    the picture's channels, which gave a garbled picture, not an error."""
    feeds = readers(graph.layers)
    channels = {graph.input_blob: 3}
    blobs = [graph.input_blob]
    while blobs:
        blob = blobs.pop()
        for layer in feeds.get(blob, []):
            c, p = channels[blob], layer.params
            if layer.type in _SAME_CHANNELS or (layer.type == "Reorg" and isinstance(p.get(0, 1), int)):
                c *= p.get(0, 1) ** 2 if layer.type == "Reorg" else 1
                for top in layer.tops:
                    if top not in channels:
                        channels[top] = c
                        blobs.append(top)
            elif layer.type in ("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise") \
                    and not p.get(19, 0):
                kernel = p.get(1, 0) * p.get(11, p.get(1, 0))
                group = p.get(7, 1) if "DepthWise" in layer.type else 1
                # One without 6= (its weights' size: a damaged line) tells nothing.
                if kernel and p.get(0, 0) and group and p.get(6, 0) and p[6] * group % (kernel * p[0]) == 0:
                    takes = p[6] * group // (kernel * p[0])
                    if takes != c:
                        kind = {1: " (a grayscale model?)", 4: " (a model for RGBA?)"}.get(takes, "")
                        raise ModelError(f"model {name}: {'its .param' if path is None else path}: layer "
                                         f"{layer.name} ({layer.type}) takes {takes} channel{'s' * (takes != 1)} "
                                         f"where the picture gives it {c}{kind}: ncnn-sr runs models of RGB "
                                         "pictures")


def input_alignment(graph: ParamGraph) -> int:
    """The stride ``s`` of a pixel unshuffle (a Reorg) the network applies to its
    input blob first, reached through nothing but Split layers and at most one
    Padding that adds rows and columns only at the bottom and right; 1 for any other
    network. A network with such an unshuffle computes each ``s`` × ``s`` block of
    its input together, so its output depends on where its input starts modulo
    ``s`` (the phase), and two runs agree only where their inputs start at the same
    phase of the picture."""
    feeds = readers(graph.layers)
    blobs, padded = [graph.input_blob], False
    strides = set()
    while blobs:
        for layer in feeds.get(blobs.pop(), []):
            if layer.type == "Split":
                blobs.extend(layer.tops)
            elif layer.type == "Padding" and not padded and len(layer.bottoms) == 1 \
                    and layer.params.get(0, 0) == 0 and layer.params.get(2, 0) == 0:
                # Padding at the top or left would move the phase; none of the
                # converted models has it, so it is not worked out here.
                padded = True
                blobs.extend(layer.tops)
            elif layer.type == "Reorg" and int(layer.params.get(0, 1)) > 1:
                strides.add(int(layer.params[0]))
    # Two unshuffles of different strides from the same input: none known; run as
    # any other network rather than guess.
    return strides.pop() if len(strides) == 1 else 1


# Layer types that read nothing from the .bin file.
_WEIGHTLESS = frozenset("""
    Input Split Concat Slice Crop Interp PixelShuffle Reorg BinaryOp Eltwise UnaryOp
    ReLU LeakyReLU Sigmoid TanH Clip ELU GELU Swish Mish HardSigmoid HardSwish SELU Softplus
    Exp Log Power Threshold AbsVal Dropout Noop Softmax Pooling Pooling1D Pooling3D
    Padding Reshape Permute Flatten Squeeze ExpandDims ShuffleChannel Tile Cast Reduction
    ArgMax Packing Flip Erf CopyTo Shrink Fold Unfold GridSample Einsum DeformableConv2D_noweight
    CumulativeSum
""".split())

_CONVOLUTIONS = frozenset("""
    Convolution Convolution1D Convolution3D ConvolutionDepthWise ConvolutionDepthWise1D
    ConvolutionDepthWise3D Deconvolution Deconvolution1D Deconvolution3D DeconvolutionDepthWise
    DeconvolutionDepthWise1D DeconvolutionDepthWise3D
""".split())

# Layer types ncnn runs on exactly one input.
_ONE_INPUT = frozenset("""
    ReLU LeakyReLU PReLU Sigmoid TanH Clip ELU GELU Swish Mish HardSigmoid HardSwish SELU Softplus
    UnaryOp PixelShuffle Reorg Pooling InnerProduct GroupNorm LayerNorm InstanceNorm BatchNorm Bias
    Dropout Softmax Split Slice Flatten Permute
""".split())

# The values ncnn takes on trust: a kernel, stride or pad of 2^31 (one damaged
# digit) makes it index or allocate out of bounds and kill the process. Each is
# (keys, lowest, highest) by layer type, far wider than any network needs; pads may
# also be ncnn's -233 and -234 ("same" padding). Also the numbers this package reads
# itself (axes, modes, flags: an array there, of a damaged file, was a TypeError's
# traceback) and the sizes a Fold fixes.
_SIZES_ = (1, 11, 2, 12, 3, 13)  # kernel, dilation and stride, in w and h
_PADS = (4, 14, 15, 16)
_COUNTS = ((0,), 0, 1 << 20)
_RANGES = {
    **{t: [((0, 7), 0, 1 << 16), (_SIZES_, 1, 1024), (_PADS, 0, 4096), ((5,), 0, 1), ((6,), 0, 1 << 34),
           ((31,), 0, 1 << 20)]  # 31=: the feature mask, a few bits
       for t in _CONVOLUTIONS},
    "Pooling": [((0, 4, 5), 0, 3), ((1, 11, 2, 12), 1, 4096), ((3, 13, 14, 15), 0, 4096), ((7,), 0, 1)],
    "Padding": [((0, 1, 2, 3, 7, 8), 0, 4096), ((4,), 0, 2)],
    "PixelShuffle": [((0,), 1, 64)],
    "Reorg": [((0,), 1, 64), ((1,), 0, 1)],
    "Interp": [((1, 2), 0, 64), ((3, 4), 0, 1 << 16), ((0,), 0, 3), ((5, 6), 0, 1)],
    "InnerProduct": [_COUNTS, ((1,), 0, 1), ((2,), 0, 1 << 34)],
    "GroupNorm": [((0, 1), 0, 1 << 20), ((2,), 0, 1), ((3,), 0, 1)],
    "Concat": [((0,), -4, 4)],  # axes
    "Slice": [((1,), -4, 4)],  # axis
    "Fold": [((1, 11, 2, 12, 3, 13), 1, 1024), ((20, 21), 0, 1 << 20)],
    "Normalize": [((3,), 0, 1 << 20)],
    "MemoryData": [((0, 1, 2, 11), 0, 1 << 20)],
    **{t: [_COUNTS] for t in ("PReLU", "BatchNorm", "Bias", "Scale", "InstanceNorm", "LayerNorm")},
}
_SPECIAL_PADS = (-233, -234)

# How ncnn stores a weight blob: FLAGGED blobs start with a 4-byte tag that says the
# element type; RAW blobs are plain float32.
FLAGGED, RAW = 0, 1


def weight_blobs(layer: Layer) -> list[tuple[int, int]] | None:
    """The (element count, storage) of each blob this layer reads from the .bin, in
    order, or None when the layer type's weights are not known here."""
    p = layer.params
    t = layer.type
    if t in _WEIGHTLESS:
        return []
    if t in _CONVOLUTIONS or t == "InnerProduct":
        # The params that hold the weights' element count and whether a bias follows.
        size, biased = (2, 1) if t == "InnerProduct" else (6, 5)
        if p.get(8, 0):  # int8 scales follow in a layout that varies by type
            return None
        blobs = [(int(p.get(size, 0)), FLAGGED)]
        if p.get(biased, 0):
            blobs.append((int(p.get(0, 0)), RAW))
        return blobs
    if t == "PReLU":
        return [(int(p.get(0, 0)), RAW)]
    if t == "BatchNorm":
        return [(int(p.get(0, 0)), RAW)] * 4
    if t == "Bias":
        return [(int(p.get(0, 0)), RAW)]
    if t == "Scale":
        size = int(p.get(0, 0))
        if size == -233:
            return []
        return [(size, RAW)] * (2 if p.get(1, 0) else 1)
    if t == "InstanceNorm":
        return [(int(p.get(0, 0)), RAW)] * 2 if p.get(2, 1) else []
    if t == "GroupNorm":
        return [(int(p.get(1, 0)), RAW)] * 2 if p.get(3, 1) else []
    if t == "LayerNorm":
        return [(int(p.get(0, 0)), RAW)] * 2 if p.get(2, 1) else []
    if t == "Normalize":
        return [(int(p.get(3, 0)), RAW)]
    if t == "MemoryData":
        dims = [max(int(p.get(k, 0)), 1) for k in (0, 1, 11, 2)]
        return [(dims[0] * dims[1] * dims[2] * dims[3], RAW)]
    return None


def _align4(n: int) -> int:
    return (n + 3) & ~3


_TAG_FP16 = 0x01306B47
_TAG_INT8 = 0x000D4B38
_TAG_FP32 = 0x0002C056


def _blob_size(data: bytes, offset: int, count: int, storage: int) -> int:
    """Bytes a weight blob takes at ``offset``, reading its tag as ncnn does."""
    if storage == RAW:
        return count * 4
    if offset + 4 > len(data):
        return 4 + count * 4  # past the end: the caller reports the shortfall
    tag = int.from_bytes(data[offset:offset + 4], "little")
    if tag == _TAG_FP16:
        return 4 + _align4(count * 2)
    if tag == _TAG_INT8:
        return 4 + _align4(count)
    if tag == _TAG_FP32 or tag == 0:
        return 4 + count * 4
    return 4 + 256 * 4 + _align4(count)  # quantized: a 256-entry table, then indices


def weight_ends(graph: ParamGraph, bin_bytes: bytes) -> Iterator[tuple[Layer, int | None]]:
    """Each layer with the .bin offset just past its weights, reading blob tags as
    ncnn does; the offset is None from the first layer whose weights are not known
    here (the walk stops there)."""
    offset = 0
    for layer in graph.layers:
        blobs = weight_blobs(layer)
        if blobs is None:
            yield layer, None
            return
        for count, storage in blobs:
            offset += _blob_size(bin_bytes, offset, max(count, 0), storage)
        yield layer, offset


def unsized(graph: ParamGraph) -> Layer | None:
    """The first layer whose weights are not known here (a type the size check does
    not know, an int8 convolution): check_bin_size stops there. None when every
    layer's are known."""
    return next((layer for layer in graph.layers if weight_blobs(layer) is None), None)


def weight_arrays(graph: ParamGraph, bin_bytes: bytes) -> Iterator[tuple[int, str, int]]:
    """Each weight blob of the bin as (offset of its values, numpy dtype, count):
    "<f2" for float16, "<f4" for float32; a ModelError at an int8 or quantized blob,
    or a layer whose weights are not known here."""
    for _, offset, dtype, count in _layer_arrays(graph, bin_bytes):
        yield offset, dtype, count


def layer_weights(graph: ParamGraph, bin_bytes: bytes, names: Iterable[str]) -> dict[str, list[np.ndarray]]:
    """The weight blobs of the layers ``names``, as float32 arrays in the bin's order;
    a ModelError where weight_arrays gives one, or where the bin is short."""
    # Here alone: the rest of this module is read by `ncnn-sr models`, without numpy.
    import numpy as np

    wanted, found = set(names), {}
    for layer, offset, dtype, count in _layer_arrays(graph, bin_bytes):
        if layer.name in wanted:
            if offset + count * np.dtype(dtype).itemsize > len(bin_bytes):
                raise ModelError(f"the weights of layer {layer.name} run past the end of the bin")
            found.setdefault(layer.name, []).append(np.frombuffer(bin_bytes, dtype, count, offset).astype(np.float32))
    return found


def _layer_arrays(graph: ParamGraph, bin_bytes: bytes) -> Iterator[tuple[Layer, int, str, int]]:
    offset = 0
    for layer in graph.layers:
        blobs = weight_blobs(layer)
        if blobs is None:
            raise ModelError(f"layer {layer.name} ({layer.type}): its weights' layout is not known here")
        for count, storage in blobs:
            count = max(count, 0)
            size = _blob_size(bin_bytes, offset, count, storage)
            if storage == RAW:
                yield layer, offset, "<f4", count
            else:
                tag = int.from_bytes(bin_bytes[offset:offset + 4], "little")
                if tag not in (_TAG_FP16, _TAG_FP32, 0):
                    raise ModelError(f"layer {layer.name} holds int8 or quantized weights")
                yield layer, offset + 4, "<f2" if tag == _TAG_FP16 else "<f4", count
            offset += size


def check_bin_size(graph: ParamGraph, bin_bytes: bytes, name: str = "model", path=None) -> bool:
    """Check that the weights the param declares fill the bin exactly; ``path``, the
    bin's, is what the messages name.

    Returns True when every layer's weights are known and add up; False when a
    layer type's weights are not known here (ncnn's own loader still refuses a
    short file). Raises ModelError when the sizes disagree.
    """
    offset, what = 0, "the .bin file" if path is None else str(path)
    for layer, offset in weight_ends(graph, bin_bytes):
        if offset is None:
            return False
        if any(count < 0 for count, _ in weight_blobs(layer)):
            raise ModelError(f"model {name}: layer {layer.name} declares a negative weight size")
        if offset > len(bin_bytes) and not bin_bytes:
            raise ModelError(f"model {name}: {what} is empty but layer {layer.name} of its .param has weights "
                             "(an interrupted download or copy?)")
        if offset > len(bin_bytes):
            raise ModelError(
                f"model {name}: {what} is too short for its .param ({len(bin_bytes)} bytes, "
                f"layer {layer.name} needs more): truncated download, or the bin of another model"
            )
    if offset != len(bin_bytes):
        raise ModelError(
            f"model {name}: {what} holds {len(bin_bytes)} bytes but its .param declares {offset}: "
            f"the bin of another model, or {len(bin_bytes) - offset} bytes added at its end"
        )
    return True
