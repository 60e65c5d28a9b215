"""A split network's trunk run once over the whole picture on the GPU, and its head
on pieces of the trunk's output without the map leaving the GPU.

Exact stages (``staged``) keep each stage's 64-channel map in the host's memory: on a
discrete GPU every stage sends it across the bus and back, which ran 11-15x slower
than blended windows on an H200 (docs/benchmarks.md). But an ncnn Extractor keeps the
blobs it has computed, on the device too, until they are used or it is dropped. So
one extraction can compute the trunk over the whole picture, and each further
extraction a piece of the head from the kept map: the picture goes in once, the
pieces come out, and the output is the whole picture's.

One head gives one piece per extractor (its output, once extracted, is kept too),
so the net is rewritten with ``copies`` heads, each behind a Crop of its own from a
Split of the cut blob. A Crop's window comes from the shapes of four small inputs
(ncnn's crop expressions), set before its head is extracted, so one loaded net
serves every picture size. The heads' weights are a few hundred kB each.
"""
from __future__ import annotations

import io
import re
from typing import Callable, Iterator

import numpy as np

from .netsplit import NetPlan
from .network import Network, NetFailure, own_piece, placed, unshuffle
from .param_file import Layer, parse_param, weight_ends
from .tiles import Span, reach_spans

# Heads in the rewritten net: the most pieces one picture may be cut into. 64 pieces of
# 400 px (a large GPU's tile) cover 3200x3200; smaller tiles grow their pieces to fit.
COPIES = 64
# Device memory per trunk cell (an input pixel, or a block of an unshuffling net's) of
# a whole-picture trunk: RRDBNet's dense blocks hold up to 192 channels beside their
# convolutions' workspace. Measured on lavapipe, 128-256 px pictures, realesrgan-x4plus
# and -x4plus-anime alike: 1.7-3.4 kB in ncnn's fp16 storage, 5.3-7.0 kB in float32 (the
# trunk's own peak; 4.4-4.5 and 8.1 kB with the map's download beside it); with room
# for another device's workspace. Doubled in float32.
TRUNK_BYTES_PER_CELL = 6_000
# The head piece of a window run through the rewritten net: all of it, in one piece.
WINDOW_PIECE = 1 << 30
# What stays once the trunk has run: its output, 64 channels, while the head's pieces run.
KEPT_MAP_BYTES_PER_CELL = 256


def _ancestors(layers: tuple[Layer, ...], blob: str, stop: str | None = None) -> set[int]:
    """Indices of the layers ``blob`` is computed from, not looking past ``stop``."""
    producer = {top: i for i, layer in enumerate(layers) for top in layer.tops}
    wanted, seen = [blob], set()
    while wanted:
        b = wanted.pop()
        i = producer.get(b)
        if i is None or i in seen or b == stop and blob != stop:
            continue
        seen.add(i)
        wanted.extend(layers[i].bottoms)
    return seen


def _line(layer: Layer, name: str, bottoms, tops, params: str) -> str:
    words = [layer.type, name, str(len(bottoms)), str(len(tops)), *bottoms, *tops]
    return " ".join([*words, params] if params else words)


def _params_text(raw_line: str, layer: Layer) -> str:
    """The ``key=value`` part of a layer's line, as the file has it: its own spacing
    kept, which a quoted string parameter may hold."""
    named = re.match(r"\s*(?:\S+\s+){%d}" % (4 + len(layer.bottoms) + len(layer.tops)), raw_line + " ")
    return (raw_line + " ")[named.end():].rstrip() if named else ""


def rewrite(param: bytes, weights: bytes, plan: NetPlan, output_blob: str, copies: int = COPIES
            ) -> tuple[str, bytes, str, list[str]] | None:
    """The .param text and .bin bytes of the net with ``copies`` heads, the blob the
    picture goes in at, and a probe blob per stage (one pixel of its output, whose
    extraction runs the trunk up to it); None where a layer's weights are not known
    here (the .bin cannot be cut) or the file's lines do not match its layers.

    The probes cut the trunk into one GPU submission a stage: ncnn submits all the
    layers an extraction needs at once, and the whole trunk of a large picture in one
    could run for seconds, past a desktop driver's watchdog (2 s on Windows), with no
    progress said and no Ctrl-C taken until it ends."""
    graph = parse_param(param)
    layers = graph.layers
    lines = [line for line in param.decode("utf-8").splitlines()[2:] if line.split()]
    if len(lines) != len(layers):
        return None
    head_output = plan.head_output or output_blob
    entry = plan.entry or graph.input_blob
    trunk = _ancestors(layers, plan.cut_blob, stop=entry)
    head = _ancestors(layers, head_output, stop=plan.cut_blob) - trunk
    ends, start = {}, 0
    for i, (layer, end) in enumerate(weight_ends(graph, weights)):
        if end is None:
            return None
        ends[i], start = (start, end), end
    out_lines, out_bins = [], []
    kept_input = False
    probed = [stage.target for stage in plan.stages if stage.target != plan.cut_blob]
    # The next layer reads a stage's output through a Split whose other branch the
    # probe crops: a blob read by two layers is freed (ncnn's light mode) once the
    # first has run, and the second would compute the trunk again.
    rerouted = {blob: f"{blob}_resident" for blob in probed}
    for i in sorted(trunk):
        layer = layers[i]
        if rerouted.keys() & set(layer.bottoms):
            out_lines.append(_line(layer, layer.name, [rerouted.get(b, b) for b in layer.bottoms], layer.tops,
                                   _params_text(lines[i], layer)))
        else:
            out_lines.append(lines[i])
        out_bins.append(weights[ends[i][0]:ends[i][1]])
        kept_input |= entry in layer.tops
        for top in rerouted.keys() & set(layer.tops):
            j = probed.index(top)
            out_lines.append(f"Split resident_probe_split_{j} 1 2 {top} {rerouted[top]} {top}_probe")
            out_lines.append(f"Crop resident_probe_{j} 1 1 {top}_probe resident_probe_{j} 3=1 4=1 5=1")
    if not kept_input:  # an unshuffling net's entry, fed directly
        out_lines.insert(0, f"Input resident_entry 0 1 {entry}")
    cuts = [f"resident_cut_{k}" for k in range(copies)]
    out_lines.append(f"Split resident_split 1 {copies} {plan.cut_blob} {' '.join(cuts)}")
    head_bin = b"".join(weights[ends[i][0]:ends[i][1]] for i in sorted(head))
    for k in range(copies):
        marks = [f"resident_{edge}_{k}" for edge in ("y0", "x0", "y1", "x1")]
        out_lines.extend(f"Input {mark}_in 0 1 {mark}" for mark in marks)
        # The window's start is its input's width less one (a shape is at least 1),
        # its end the width itself; axes 1 and 2 are height and width.
        out_lines.append(f"Crop resident_crop_{k} 5 1 {cuts[k]} {' '.join(marks)} resident_piece_{k} "
                         '19="-(1w,1),-(2w,1)" 20="3w,4w" 21="1,2"')
        renamed = {plan.cut_blob: f"resident_piece_{k}"}
        for i in sorted(head):
            layer = layers[i]
            bottoms = [renamed.get(b, f"{b}_r{k}") for b in layer.bottoms]
            tops = [f"{t}_r{k}" for t in layer.tops]
            out_lines.append(_line(layer, f"{layer.name}_r{k}", bottoms, tops, _params_text(lines[i], layer)))
        out_bins.append(head_bin)
    blobs = {word for line in out_lines for word in _tops(line)}
    text = f"7767517\n{len(out_lines)} {len(blobs)}\n" + "\n".join(out_lines) + "\n"
    return text, b"".join(out_bins), entry, [f"resident_probe_{j}" for j in range(len(probed))]


def _tops(line: str) -> list[str]:
    words = line.split()
    bottoms, tops = int(words[2]), int(words[3])
    return words[4 + bottoms:4 + bottoms + tops]


def head_output_name(blob: str, copy: int) -> str:
    return f"{blob}_r{copy}"


def window_end(span: Span, limit: int, context: int) -> int:
    """Where the window of the head piece over ``span`` ends: ``context`` cells past
    it, within a map side of ``limit`` cells."""
    return min(limit, span.end + context)


def piece_spans(height: int, width: int, box: tuple, piece: int, context: int, copies: int = COPIES
                ) -> tuple[list[Span], list[Span]] | None:
    """Rows and columns of head pieces of at most ``piece`` cells (grown until there are
    at most ``copies``) splitting ``box`` of a ``height`` × ``width`` map; None where
    even pieces of the whole box's side would be more."""
    y0, y1, x0, x1 = box
    while True:
        _, rows = reach_spans(y0, y1, height, piece + 2 * context, context)
        _, cols = reach_spans(x0, x1, width, piece + 2 * context, context)
        if len(rows) * len(cols) <= copies:
            return rows, cols
        if piece >= max(y1 - y0, x1 - x0):
            return None
        piece += max(8, piece // 4)


class ResidentNetwork:
    """The rewritten net on one GPU: ``run_pieces`` gives the head's output piece by
    piece for a picture whose trunk runs once. ``plan``, ``head_piece`` and ``entry``
    as SplitNetwork's, so a staged run's code takes either."""

    def __init__(self, net: Network, plan: NetPlan, head_piece: int, output_blob: str, probes: list[str]):
        self.net, self.plan, self.head_piece = net, plan, head_piece
        self.probes = probes
        self.device = net.device
        self._output = plan.head_output or output_blob

    @classmethod
    def load(cls, param: bytes, weights: bytes, plan: NetPlan, output_blob: str, device, precision: str,
             name: str, head_piece: int = 200, path: str | None = None) -> ResidentNetwork | None:
        """The rewritten net of the model whose .param is ``param`` (read from ``path``,
        which errors name) loaded on ``device``; None where it cannot be rewritten."""
        made = rewrite(param, weights, plan, output_blob, COPIES)
        if made is None:
            return None
        text, binary, entry, probes = made
        net = Network(path, None, device, entry, head_output_name(plan.head_output or output_blob, 0), precision,
                      param_text=text, weights=io.BytesIO(binary), name=name)
        return cls(net, plan, head_piece, output_blob, probes)

    @property
    def precision(self) -> str:
        return self.net.precision

    def run(self, image: np.ndarray, keep: tuple | None = None) -> np.ndarray:
        """An H×W×C float32 window through the whole network, as Network.run: its
        trunk and one head over all of it, in one extraction. So a discrete GPU that
        blends windows where a picture's trunk does not fit needs no second net."""
        whole = ResidentNetwork(self.net, self.plan, WINDOW_PIECE, self._output, [])
        _, fed = self.entry(image.transpose(2, 0, 1))
        return placed(lambda cells: whole.run_pieces(fed, cells), image.shape, keep, self.plan.unshuffle)

    def with_piece(self, head_piece: int) -> ResidentNetwork:
        """The same net, run in head pieces of ``head_piece`` cells (one call's tile)."""
        return ResidentNetwork(self.net, self.plan, head_piece, self._output, self.probes)

    def entry(self, planes: np.ndarray) -> tuple[str, np.ndarray]:
        if self.plan.unshuffle > 1:
            return self.net.input_blob, unshuffle(planes, self.plan.unshuffle)
        return self.net.input_blob, planes

    def steps(self, height: int, width: int, box: tuple) -> int:
        """The extractions ``run_pieces`` makes: a stage each, then a head piece each."""
        spans = piece_spans(height, width, box, self.head_piece, self.plan.head_context)
        return len(self.probes) + (0 if spans is None else len(spans[0]) * len(spans[1]))

    def run_pieces(self, picture: np.ndarray, box: tuple, tick: Callable[[], None] | None = None
                   ) -> Iterator[tuple[Span, Span, int, np.ndarray]]:
        """For C×H×W ``picture`` (as ``entry`` gives it), the head's output over ``box``
        (y0, y1, x0, x1 in trunk cells), piece by piece, as SplitNetwork.head gives it;
        ``tick()`` after each stage of the trunk (an exception it raises stops the run)."""
        _, height, width = picture.shape
        spans = piece_spans(height, width, box, self.head_piece, self.plan.head_context)
        if spans is None:
            raise NetFailure(f"more than {COPIES} head pieces for {width}x{height}")
        rows, cols = spans
        marks: dict[str, np.ndarray] = {}
        with self.net.extractor({self.net.input_blob: picture}) as extract:
            for probe in self.probes:
                extract({}, probe)
                if tick is not None:
                    tick()
            for k, (row, col) in enumerate((r, c) for r in rows for c in cols):
                y1, x1 = window_end(row, height, self.plan.head_context), window_end(col, width, self.plan.head_context)
                for edge, value in (("y0", row.window + 1), ("x0", col.window + 1), ("y1", y1), ("x1", x1)):
                    marks[f"resident_{edge}_{k}"] = np.zeros(value, np.float32)
                out = extract(marks, head_output_name(self._output, k))
                marks.clear()
                yield own_piece(out, row, col, y1 - row.window, x1 - col.window, self._output)

    def trim(self) -> None:
        self.net.trim()

    def release(self) -> None:
        self.net.release()

