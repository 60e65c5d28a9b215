"""Where a network can be cut, and how far each part reaches.

Real-ESRGAN's RRDBNet does nearly all its work at the input's size, in a trunk of 23
residual blocks whose receptive field spans hundreds of pixels, then upsamples twice
and runs three convolutions at four times the size. Two kinds of cut follow from that,
both read from the .param file alone; the engine runs every part on the one loaded
ncnn.Net by feeding the cut blob in and extracting the next one.

- The head: everything from the first upsampling layer on. It holds almost all the
  memory a CPU tile needs (64 channels at 16 pixels per input pixel) but sees only a
  pixel or two around itself, so it can run on small pieces of the trunk's output.
- Stages: the trunk cut wherever one blob carries everything later layers read (apart
  from what one convolution of the picture gives back, like RRDBNet's long skip).
  Each stage's reach, the context one of its output pixels depends on, is exact (one
  pixel per 3x3 convolution), so a stage run window by window with that much real
  context on every side gives the whole picture's numbers; stitched, its output is
  the next stage's input. Tiling then costs the reach of one block per seam instead of
  the receptive field of the whole network.

A network with GroupNorm layers (RealPLKSR) normalises each block's output by
statistics of the whole picture, which no window has. Each block whose GroupNorm
output is added to the block's input is a stage of its own that ends before the
GroupNorm: its windows give the map the norm reads, and ``staged`` normalises that
over the whole picture and adds the input. Such a network, which upsamples by a
PixelShuffle instead of an Interp, is cut there, its head only the shuffle; or by
DySample (GridSample layers, see dysample.py), cut where its layers begin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .dysample import SAMPLE_REACH
from .param_file import Layer, parse_param, readers

# Layers that look at one pixel at a time (or join blobs pixel by pixel).
_POINTWISE = frozenset("""
    ReLU LeakyReLU PReLU Sigmoid Clip Swish HardSwish Mish GELU TanH ELU
    BinaryOp UnaryOp Eltwise Split Concat Slice
""".split())
_CONVOLUTIONS = frozenset(("Convolution", "ConvolutionDepthWise"))
# Layers that may change a map's size.
_RESIZING = frozenset("Interp Reorg PixelShuffle Deconvolution DeconvolutionDepthWise".split())
# A stage shorter than this is merged with its neighbour: each stage costs a pass over
# the feature map, so cutting around a single convolution is not worth it.
MIN_STAGE_REACH = 8
# A DySample head's context counts dysample.SAMPLE_REACH for its samples, which holds
# while the learnt offsets stay within 2.5 pixels; nothing bounds them, so the head
# measures them on each piece and widens its window where they go further. Its other
# layers that are not pointwise (a running sum, a sum over a row) only count pixels to
# normalise coordinates to the piece's size.
_SAMPLER = _POINTWISE | _CONVOLUTIONS | frozenset(("CumulativeSum", "Reduction", "PixelShuffle", "GridSample"))


@dataclass(frozen=True)
class GroupNorm:
    """A GroupNorm layer ``layer`` of ``groups`` groups and epsilon ``eps`` whose input
    is blob ``blob``; with ``affine``, its .bin weights scale and shift each channel."""

    layer: str
    blob: str
    groups: int
    eps: float
    affine: bool = True

    def __post_init__(self) -> None:
        if self.groups < 1 or not self.eps >= 0:
            raise ValueError(f"invalid GroupNorm {self}")


@dataclass(frozen=True)
class Stage:
    """Part of the trunk: from blob ``source`` (the picture's input blob for the first
    stage) to blob ``target``. Each output pixel depends on the input pixels within
    ``reach`` of it, through ``source`` and through the picture; ``channels`` is how
    many ``target`` has. With ``norm``, windows compute the norm's input blob (within
    ``reach``), and ``target`` is that normalised over the whole picture plus
    ``source``."""

    source: str
    target: str
    reach: int
    channels: int
    norm: GroupNorm | None = None

    def __post_init__(self) -> None:
        if self.reach < 0 or self.channels < 1:
            raise ValueError(f"invalid stage {self}")
        if self.norm is not None and self.channels % self.norm.groups:
            raise ValueError(f"{self.channels} channels in {self.norm.groups} groups")

    @property
    def windowed(self) -> str:
        """The blob each window computes."""
        return self.target if self.norm is None else self.norm.blob


@dataclass(frozen=True)
class NetPlan:
    """How to run a network in parts. The head reads only ``cut_blob`` and needs
    ``head_context`` pixels (at the cut's scale) around a piece to compute it exactly;
    it ends at ``head_output`` (None: the network's output). ``stages`` take the
    picture to ``cut_blob``; empty when the trunk has a layer whose reach is not known
    here, and then it runs whole.

    With ``sampled`` the head is a DySample upsampler (GridSample layers), whose
    ``head_context`` holds only while its offsets stay within 2.5 pixels: its pieces
    need more where they go further (``dysample.Offsets.reach``).

    A network that opens by pixel-unshuffling the picture by ``unshuffle`` (Real-ESRGAN's
    x2 and x1 RRDBNets: a reflecting pad to whole blocks, then Reorg) and ends by
    cropping to the picture's upscaled size is planned without those two: the picture
    is unshuffled outside it and fed to ``entry``, the Reorg's output, and the head's
    output is cropped outside it. Stages and pieces then work on whole blocks."""

    cut_blob: str
    head_context: int
    stages: tuple[Stage, ...]
    entry: str | None = None
    unshuffle: int = 1
    head_output: str | None = None
    sampled: bool = False

    def __post_init__(self) -> None:
        if self.head_context < 1:
            raise ValueError("the head needs context")
        if self.stages and self.stages[-1].target != self.cut_blob:
            raise ValueError("the stages must end at the cut")
        if self.unshuffle < 1 or (self.unshuffle > 1) != (self.entry is not None):
            raise ValueError("an unshuffled plan names its entry, and only it")


def plan_network(param_bytes: bytes, input_blob: str, output_blob: str) -> NetPlan | None:
    """The network's head and stages, or None when it has no upsampling Interp, when
    later layers reach back past it, or when the head holds a layer whose reach is not
    known here."""
    layers = parse_param(param_bytes).layers
    entry, unshuffle, head_output = None, 1, output_blob
    opening = _unshuffled(layers, input_blob, output_blob)
    if opening is not None:
        first, last, entry, unshuffle, head_output = opening
        # The unshuffled picture comes in at the Reorg's output, as a picture at its Input.
        layers = (Layer("Input", "unshuffled", (), (entry,), {}), *layers[first:last])
        input_blob = entry
    cut = next((i for i, layer in enumerate(layers) if layer.type == "Interp" and _upsamples(layer)), None)
    if cut is None and any(layer.type == "GroupNorm" for layer in layers):
        cut = _upsampler_start(layers)
    if cut is None or cut == 0:
        return None
    if not all(_keeps_scale(layer) for layer in layers[:cut]):
        return None
    cut_blob = layers[cut].bottoms[0]
    before = {t for layer in layers[:cut] for t in layer.tops}
    if any(b in before and b != cut_blob for layer in layers[cut:] for b in layer.bottoms):
        return None
    if head_output not in {t for layer in layers[cut:] for t in layer.tops}:
        return None
    context = _head_context(layers[cut:])
    if context is None:
        return None
    return NetPlan(cut_blob, context, _stages(layers[:cut], input_blob, cut_blob), entry, unshuffle,
                   None if entry is None else head_output,
                   sampled=any(layer.type == "GridSample" for layer in layers[cut:]))


def _unshuffled(layers, input_blob: str, output_blob: str):
    """For a network that opens with a pixel unshuffle by s (a reflecting Padding of s
    - 1 rows and columns at the bottom and right, then Reorg by s) and ends with a Crop
    to another blob's size: (index of the first layer after the Reorg, index of the
    Crop, the Reorg's output, s, the blob the Crop cuts). None for any other network."""
    names = {input_blob}
    for i, layer in enumerate(layers):
        if layer.type == "Input":
            continue
        if layer.type == "Split" and layer.bottoms[0] in names:
            names.update(layer.tops)
            continue
        if layer.type != "Padding" or layer.bottoms[0] not in names or i + 1 >= len(layers):
            return None
        reorg = layers[i + 1]
        if reorg.type != "Reorg":  # its numbers, read below, are a Reorg's (ranged as it was parsed)
            return None
        p, r = layer.params, reorg.params
        s = int(r.get(0, 1))
        pads = tuple(int(p.get(k, 0)) for k in range(4))
        if reorg.bottoms != layer.tops or int(r.get(1, 0)) != 0 or s < 2 \
                or pads != (0, s - 1, 0, s - 1) or int(p.get(4, 0)) != 2:
            return None
        crop = next((j for j, c in enumerate(layers) if output_blob in c.tops), None)
        if crop is None or layers[crop].type != "Crop" or len(layers[crop].bottoms) != 2:
            return None
        return i + 2, crop, reorg.tops[0], s, layers[crop].bottoms[0]
    return None


def _keeps_scale(layer: Layer) -> bool:
    """Whether a trunk layer keeps its map at the picture's scale, as the head's
    pieces, boxes of the picture, need (a downscaling Interp or a stride does not)."""
    p = layer.params
    if layer.type == "Pooling" and int(p.get(4, 0)):
        return True  # global: to the weights of a channel attention, no map
    if layer.type == "Pooling" and int(p.get(7, 0)):
        return False  # adaptive: to a size of its own
    if layer.type in _CONVOLUTIONS or layer.type == "Pooling":
        stride = 3 if layer.type in _CONVOLUTIONS else 2
        return int(p.get(stride, 1)) == 1 and int(p.get(stride + 10, p.get(stride, 1))) == 1
    return layer.type not in _RESIZING


def _upsamples(layer: Layer) -> bool:
    p = layer.params
    return float(p.get(1, 1.0)) > 1 or float(p.get(2, 1.0)) > 1


def _conv_reach(layer: Layer) -> int | None:
    """Pixels a convolution reaches on each side, or None unless its output has its
    input's size (stride 1, padded by that reach on every side)."""
    p = layer.params
    kernel_w = int(p.get(1, 0))
    kernel_h = int(p.get(11, kernel_w))
    dilation_w = int(p.get(2, 1))
    dilation_h = int(p.get(12, dilation_w))
    if int(p.get(3, 1)) != 1 or int(p.get(13, p.get(3, 1))) != 1:
        return None
    reach_w, reach_h = kernel_w // 2 * dilation_w, kernel_h // 2 * dilation_h
    left = int(p.get(4, 0))
    pads = (left, int(p.get(15, left)), int(p.get(14, left)), int(p.get(16, p.get(14, left))))
    same = left in (-233, -234) or pads == (reach_w, reach_w, reach_h, reach_h)
    if not same or kernel_w % 2 == 0 or kernel_h % 2 == 0:
        return None
    return max(reach_w, reach_h)


def _own_reach(layer: Layer) -> int | None:
    """What one layer adds to the reach, or None when it is not known here."""
    if layer.type in _CONVOLUTIONS:
        return _conv_reach(layer)
    if layer.type in ("Concat", "Slice") and int(layer.params.get(0 if layer.type == "Concat" else 1, 0)) != 0:
        return None  # joins or cuts along a side: not pixel by pixel
    return 0 if layer.type in _POINTWISE else None


def _upsampler_start(layers) -> int | None:
    """Where a network without Interp upsamples: its first PixelShuffle, or, with a
    GridSample, the last layer before the first one from which on the layers read
    one blob made before them."""
    sample = next((i for i, layer in enumerate(layers) if layer.type == "GridSample"), None)
    if sample is None:
        return next((i for i, layer in enumerate(layers) if layer.type == "PixelShuffle"), None)
    for i in range(sample, 0, -1):
        before = {t for layer in layers[:i] for t in layer.tops}
        if len({b for layer in layers[i:] for b in layer.bottoms if b in before}) == 1:
            return i
    return None


def _sampled_context(layers) -> int | None:
    """The context of a DySample head, or None for any other head with GridSample:
    one of other layers, or whose grid does not count its own pixels (a warp by a
    flow from elsewhere may reach any distance)."""
    if any(layer.type not in _SAMPLER for layer in layers) or \
            not any(layer.type == "CumulativeSum" for layer in layers):
        return None
    first = next(i for i, layer in enumerate(layers) if layer.type == "GridSample")
    last = max(i for i, layer in enumerate(layers) if layer.type == "GridSample")
    scale = max([int(layer.params.get(0, 1)) for layer in layers if layer.type == "PixelShuffle"] + [1])
    reach = float(SAMPLE_REACH)
    for i, layer in enumerate(layers):
        own = _own_reach(layer) if layer.type in _CONVOLUTIONS or layer.type in _POINTWISE else 0
        if own is None:
            return None
        if i < first:  # the offsets' convolutions, at the input's scale
            reach += own
        elif i > last:  # the end convolution, at the output's
            reach += own / scale
    return math.ceil(reach) + 1


def _head_context(layers) -> int | None:
    """Cut-blob pixels of context the head needs, rounded up, or None."""
    if any(layer.type == "GridSample" for layer in layers):
        return _sampled_context(layers)
    scale, reach = 1.0, 0.0
    for layer in layers:
        if layer.type == "Interp":
            if not _upsamples(layer):
                return None
            reach += 1 / scale  # nearest needs none, (bi)linear and bicubic up to 2 pixels
            scale *= float(layer.params.get(1, 1.0))
        elif layer.type == "PixelShuffle":
            scale *= max(1, int(layer.params.get(0, 1)))
        else:
            own = _own_reach(layer)
            if own is None:
                return None
            reach += own / scale
    return math.ceil(reach) + 1


# --- stages ---------------------------------------------------------------------------

def _stages(layers, input_blob: str, cut_blob: str) -> tuple[Stage, ...]:
    producer = {t: i for i, layer in enumerate(layers) for t in layer.tops}
    if any(b not in producer for layer in layers for b in layer.bottoms):
        return ()
    # A Split's outputs are its input under other names: feeding the input feeds them.
    source = {}
    for layer in layers:
        for t in layer.tops:
            source[t] = source.get(layer.bottoms[0], layer.bottoms[0]) if layer.type == "Split" else t
    cheap = _from_picture(layers, input_blob)
    last_use = {}
    for i, layer in enumerate(layers):
        for b in layer.bottoms:
            last_use[source[b]] = i
    reach = _Reaches(layers, input_blob)
    if any(layer.type == "GroupNorm" for layer in layers):
        return _normalised_stages(layers, input_blob, cut_blob, producer, source, cheap, last_use, reach)
    # A cut before layer i is clean when one blob, besides cheap ones, is made before i
    # and read at or after it. The blobs live at each cut are kept in one sweep: a
    # blob is live from the layer after its producer to its last reader. (A set made
    # anew for each cut was 0.1 s of realesrgan-x4plus's 1000 layers at every start.)
    live_from: dict[int, list[str]] = {}
    live_to: dict[int, list[str]] = {}
    for b, end in last_use.items():
        if producer[b] < end and b not in cheap:
            live_from.setdefault(producer[b] + 1, []).append(b)
            live_to.setdefault(end + 1, []).append(b)
    live: set[str] = set()
    candidates: list[str] = []
    for i in range(1, len(layers) + 1):
        live.difference_update(live_to.get(i, ()))
        live.update(live_from.get(i, ()))
        at_cut = {cut_blob} if i == len(layers) else live
        if len(at_cut) == 1 and layers[i - 1].type != "Split":
            blob = next(iter(at_cut))
            if blob != input_blob and (not candidates or candidates[-1] != blob):
                candidates.append(blob)
    if not candidates or candidates[-1] != cut_blob:
        return ()
    channels = _channels(layers)
    bounds: list[str] = []
    start = input_blob
    for blob in candidates:
        r = reach(blob, start)
        if r is None or channels.get(blob) is None:
            return ()
        if r >= MIN_STAGE_REACH or blob == cut_blob:
            if blob == cut_blob and r < MIN_STAGE_REACH and bounds:
                bounds.pop()  # a short tail joins the stage before it
            bounds.append(blob)
            start = blob
    stages, start = [], input_blob
    for blob in bounds:
        stages.append(Stage(start, blob, reach(blob, start), channels[blob]))
        start = blob
    return tuple(stages)


def _normalised_stages(layers, input_blob: str, cut_blob: str, producer, source, cheap, last_use,
                       reach: _Reaches) -> tuple[Stage, ...]:
    """The stages of a trunk with GroupNorm layers: each GroupNorm whose output is added
    to its block's input ends a stage of that block alone; the blocks chained, the
    first block's input and the cut are the other bounds. No stages when a GroupNorm
    is found in any other pattern, or a bound is no clean cut."""
    reading = readers(layers)
    bounds: list[tuple[str, GroupNorm | None]] = []
    for layer in layers:
        if layer.type != "GroupNorm":
            continue
        after = reading.get(layer.tops[0], [])
        p = layer.params
        groups, channels = int(p.get(0, 1)), int(p.get(1, 0))
        if len(after) != 1 or after[0].type != "BinaryOp" or len(after[0].bottoms) != 2 \
                or int(after[0].params.get(0, 0)) != 0 or channels < 1 or groups < 1 or channels % groups:
            return ()
        add = after[0]
        skip = source[add.bottoms[1] if add.bottoms[0] == layer.tops[0] else add.bottoms[0]]
        if bounds and skip != bounds[-1][0]:
            return ()  # not chained block after block
        if not bounds and skip != input_blob:
            bounds.append((skip, None))
        # ncnn's defaults where the param leaves them out: eps 0.001, affine.
        norm = GroupNorm(layer.name, layer.bottoms[0], groups, float(p.get(2, 0.001)), bool(int(p.get(3, 1))))
        bounds.append((add.tops[0], norm))
    if bounds[-1][0] != cut_blob:
        bounds.append((cut_blob, None))
    for blob, _ in bounds:  # nothing else made before the bound is read after it
        at = producer[blob]
        if any(producer[b] <= at < end and b not in cheap and b != blob for b, end in last_use.items()):
            return ()
    channels = _channels(layers)
    stages, start = [], input_blob
    for blob, norm in bounds:
        blob_reach = reach(blob if norm is None else norm.blob, start)
        if blob_reach is None or channels.get(blob) is None:
            return ()
        stages.append(Stage(start, blob, blob_reach, channels[blob], norm))
        start = blob
    return tuple(stages)


def _from_picture(layers, input_blob: str) -> set[str]:
    """Blobs the picture gives back through at most one convolution (and Splits):
    cheap enough for every stage that reads them to recompute from the picture."""
    depth = {input_blob: 0}
    for layer in layers:
        if layer.type == "Split" and layer.bottoms[0] in depth:
            depth.update((t, depth[layer.bottoms[0]]) for t in layer.tops)
        elif layer.type in _CONVOLUTIONS and layer.bottoms[0] in depth:
            depth.update((t, depth[layer.bottoms[0]] + 1) for t in layer.tops)
    return {b for b, d in depth.items() if d <= 1}


class _Reaches:
    """``reach(blob, start)``: the context ``blob`` needs, counted back to ``start`` and
    to the picture; None when a layer on the way has a reach not known here. Layers
    come in order (ncnn's format requires it), so one forward pass does, the value
    taken where a layer first makes ``blob``. A pass from the first layer for each
    question was 0.15 s of realesrgan-x4plus's start (1000 layers, 24 stages, 54
    questions): the layers before ``start`` is made count alike for every start, so
    each start's pass begins from the state there, and goes as far as it is asked."""

    def __init__(self, layers, input_blob: str):
        self._layers = layers
        self._own = [_own_reach(layer) for layer in layers]
        self._made: dict[str, int] = {}  # where each blob is first made
        for i, layer in enumerate(layers):
            for t in layer.tops:
                self._made.setdefault(t, i)
        self._fresh = _Pass(input_blob)
        self._base = _Pass(input_blob)  # no start: the state before any start is made
        self._passes: dict[str, _Pass] = {}

    def __call__(self, blob: str, start: str) -> int | None:
        done = self._passes.get(start)
        if done is None:
            begin = self._made.get(start, len(self._layers))
            if self._base.at > begin:  # asked out of order: counted again from the first layer
                self._base = self._fresh.copy()
            self._advance(self._base, begin, None)
            done = self._passes[start] = self._base.copy()
        self._advance(done, self._made.get(blob, len(self._layers) - 1) + 1, start)
        return done.first.get(blob)

    def _advance(self, state: _Pass, until: int, start: str | None) -> None:
        reach, first = state.reach, state.first
        for i in range(state.at, until):
            layer = self._layers[i]
            own = self._own[i]
            below = [reach.get(b) for b in layer.bottoms]
            value = None if own is None or not below or None in below else own + max(below)
            if layer.type == "Input":
                value = 0
            for t in layer.tops:
                reach[t] = 0 if t == start else value
                first.setdefault(t, reach[t])
        state.at = max(state.at, until)


class _Pass:
    """A forward pass of ``_Reaches`` up to layer ``at``: each blob's latest reach, and
    its reach where it was first made."""

    def __init__(self, input_blob: str | None = None):
        self.at = 0
        self.reach: dict[str, int | None] = {} if input_blob is None else {input_blob: 0}
        self.first: dict[str, int | None] = {}

    def copy(self) -> _Pass:
        other = _Pass()
        other.at, other.reach, other.first = self.at, dict(self.reach), dict(self.first)
        return other


def network_reach(param_bytes: bytes, output_blob: str) -> int | None:
    """Pixels of the picture around one of its pixels that the network's output there
    depends on, rounded up: context past it cannot change the output. None where a
    layer on the way is not known here, or resamples with aligned corners. Resampling
    counts two of its input's pixels (bicubic's), a pixel shuffle or unshuffle a block."""
    known: dict[str, tuple[float, float]] = {}  # blob: (reach in picture pixels, its scale)
    for layer in parse_param(param_bytes).layers:
        p = layer.params
        below = [known.get(b) for b in layer.bottoms]
        if layer.type == "Input":
            value = (0.0, 1.0)
        elif not below or None in below:
            value = None
        elif layer.type == "Crop":  # to another blob's size, from the top left
            value = below[0] if len(below) == 2 and not int(p.get(0, 0)) and not int(p.get(1, 0)) else None
        elif len({scale for _, scale in below}) != 1:
            value = None
        else:
            reach, scale = max(r for r, _ in below), below[0][1]
            value = None
            # Aligned corners (6=1) put each sample where the window's size says.
            if layer.type == "Interp" and not int(p.get(3, 0)) and not int(p.get(4, 0)) and not int(p.get(6, 0)):
                value = (reach + 2 / scale, scale * float(p.get(1, 1.0))) if p.get(1, 1.0) == p.get(2, 1.0) else None
            elif layer.type == "PixelShuffle":
                value = (reach + 1 / scale, scale * max(1, int(p.get(0, 1))))
            elif layer.type == "Reorg":
                stride = max(1, int(p.get(0, 1)))
                value = (reach + stride / scale, scale / stride)
            elif layer.type == "Padding" and not int(p.get(0, 0)) and not int(p.get(2, 0)):
                value = (reach + max(int(p.get(1, 0)), int(p.get(3, 0))) / scale, scale)
            elif (own := _own_reach(layer)) is not None:
                value = (reach + own / scale, scale)
        known.update((t, value) for t in layer.tops)
    found = known.get(output_blob)
    return None if found is None else math.ceil(found[0] - 1e-9)


def _channels(layers) -> dict[str, int | None]:
    """How many channels each blob has, where the layers say (one forward pass)."""
    channels: dict[str, int | None] = {}
    for layer in layers:
        below = [channels.get(b) for b in layer.bottoms]
        if layer.type == "Input":
            value = 3
        elif layer.type in _CONVOLUTIONS:
            value = int(layer.params.get(0, 0)) or None
        elif layer.type == "Concat" and int(layer.params.get(0, 0)) == 0:
            value = None if None in below else sum(below)
        elif (layer.type in _POINTWISE or layer.type == "GroupNorm") and below and layer.type != "Slice":
            value = below[0]
        else:
            value = None
        channels.update((t, value) for t in layer.tops)
    return channels
