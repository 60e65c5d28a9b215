"""An ncnn network written from numpy weights: layers added in order, each with its
own weights, turned into a .param text and .bin bytes (Split layers added where a
blob feeds several layers, as ncnn requires); and the check that a state dict holds
the keys and shapes an architecture expects. For the converters (convert.py and the
architectures beside it); knows nothing of files.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import ModelError, Option
from .param_file import PARAM_MAGIC

INPUT_BLOB, OUTPUT_BLOB = "data", "output"
_TAG_FP16 = (0x01306B47).to_bytes(4, "little")
_TAG_FP32 = bytes(4)
_FP16_MAX = float(np.finfo(np.float16).max)
_LRELU = " 9=2 -23310=1,2.000000e-01"  # a leaky ReLU of slope 0.2 fused into a Convolution


class Net:
    """Layers in order, each with its weights; Split layers are added where a blob
    feeds more than one layer, as ncnn requires."""

    def __init__(self, weights: Mapping[str, np.ndarray], lookup: Mapping[str, str], fp16: bool):
        self._weights, self._lookup, self._fp16 = weights, lookup, fp16
        self._layers: list[list] = [["Input", "input", [], [INPUT_BLOB], "", b""]]
        self._count = 0

    def add(self, kind: str, name: str, bottoms: list[str], params: str = "", data: bytes = b"") -> str:
        return self.add_many(kind, name, bottoms, 1, params, data)[0]

    def add_many(self, kind: str, name: str, bottoms: list[str], count: int, params: str = "",
                 data: bytes = b"") -> list[str]:
        """A layer with ``count`` outputs (a Slice, say); their blob names."""
        self._count += 1
        tops = [f"{kind.lower()}{self._count}" + (f"_{i}" if count > 1 else "") for i in range(count)]
        self._layers.append([kind, name, list(bottoms), tops, params, data])
        return tops

    @property
    def weights(self) -> Mapping[str, np.ndarray]:
        return self._weights

    def array(self, key: str) -> np.ndarray:
        return np.asarray(self._weights[self._lookup[key]], dtype=np.float32)

    def conv(self, key: str, bottom: str, lrelu: bool = False, extra: str = "") -> str:
        """The convolution of state dict keys ``key``.weight and .bias, padded to keep
        the size, a leaky ReLU of slope 0.2 after it with ``lrelu``; ``extra``
        params appended."""
        w, b = self.array(f"{key}.weight"), self.array(f"{key}.bias")
        return self.conv_of(key, bottom, w, b, self._lookup[f"{key}.weight"], lrelu, extra)

    def conv_of(self, name: str, bottom: str, w: np.ndarray, b: np.ndarray, source: str, lrelu: bool = False,
                extra: str = "") -> str:
        """A convolution of the weights ``w`` and bias ``b`` (worked out from the keys
        ``source`` names, for errors), padded to keep the size."""
        out, _, k, _ = w.shape
        params = f"0={out} 1={k} 4={k // 2} 5=1 6={w.size}" + (_LRELU if lrelu else "") + (f" {extra}" if extra else "")
        return self.add("Convolution", name, [bottom], params, self.flagged(w, source) + raw(b))

    def prelu(self, key: str, bottom: str) -> str:
        slope = self.array(f"{key}.weight")
        return self.add("PReLU", key, [bottom], f"0={slope.size}", raw(slope))

    def flagged(self, w: np.ndarray, source: str) -> bytes:
        if not self._fp16:
            return _TAG_FP32 + raw(w)
        if np.abs(w).max(initial=0) > _FP16_MAX:
            raise ModelError(f"weight {source} holds values too large for fp16: keep float32 weights (",
                             Option("--fp32", "fp16=False"), ")")
        data = w.astype("<f2").tobytes()
        return _TAG_FP16 + data + bytes(-len(data) % 4)

    def finish(self, last: str) -> tuple[str, bytes]:
        """The param text and the bin bytes, with blob ``last`` renamed ``output``."""
        layers = [[kind, name, [OUTPUT_BLOB if b == last else b for b in bottoms],
                   [OUTPUT_BLOB if t == last else t for t in tops], params, data]
                  for kind, name, bottoms, tops, params, data in self._layers]
        uses: dict[str, int] = {}
        for layer in layers:
            for b in layer[2]:
                uses[b] = uses.get(b, 0) + 1
        done: list[list] = []
        taken: dict[str, int] = {}
        for layer in layers:
            layer[2] = [self._split_use(b, uses, taken) for b in layer[2]]
            done.append(layer)
            for t in layer[3]:
                if uses.get(t, 0) > 1:
                    done.append(["Split", f"split_{t}", [t], [f"{t}_splitncnn_{i}" for i in range(uses[t])], "", b""])
        blobs = {t for layer in done for t in layer[3]}
        lines = [str(PARAM_MAGIC), f"{len(done)} {len(blobs)}"]
        for kind, name, bottoms, tops, params, _ in done:
            row = f"{kind:<24} {name:<24} {len(bottoms)} {len(tops)} {' '.join(bottoms + tops)}"
            lines.append(f"{row} {params}".rstrip())
        return "\n".join(lines) + "\n", b"".join(layer[5] for layer in done)

    @staticmethod
    def _split_use(blob: str, uses: dict[str, int], taken: dict[str, int]) -> str:
        if uses[blob] == 1:
            return blob
        i = taken.get(blob, 0)
        taken[blob] = i + 1
        return f"{blob}_splitncnn_{i}"


def counted(n: int, what: str) -> str:
    """``n`` ``what``s, for an architecture's description: "1 block", "23 blocks"."""
    return f"{n} {what}{'' if n == 1 else 's'}"


def raw(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def check_shapes(weights: Mapping[str, np.ndarray], lookup: Mapping[str, str], shapes: Mapping[str, tuple],
           architecture: str) -> None:
    """Every expected key there with its shape, finite, and no key to spare."""
    missing = [lookup[k] for k in shapes if lookup[k] not in weights]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"{architecture}: key {missing[0]} is missing{more}")
    expected = {lookup[k] for k in shapes}
    spare = sorted(k for k in weights if k not in expected)
    if spare:
        shown = ", ".join(spare[:3]) + (", ..." if len(spare) > 3 else "")
        raise ModelError(f"{architecture}: keys not known for it ({shown}): another variant of the architecture?")
    for key, shape in shapes.items():
        kind = np.asarray(weights[lookup[key]]).dtype
        if kind.kind in "biu":  # a quantized model's: its scales are elsewhere, read as numbers it upscaled to noise
            raise ModelError(f"{architecture}: {lookup[key]} holds {kind} values, not floating-point weights (a "
                             "quantized model?): convert takes float32, float16, bfloat16 or float64 ones")
        try:
            a = np.asarray(weights[lookup[key]], dtype=np.float32)
        except (TypeError, ValueError):
            raise ModelError(f"{architecture}: {lookup[key]} is not an array of numbers") from None
        if a.shape != shape:
            raise ModelError(f"{architecture}: {lookup[key]} has shape {tuple(a.shape)}, expected {shape}")
        if not np.isfinite(a).all():
            raise ModelError(f"{architecture}: {lookup[key]} holds NaN or infinite values")


def shape_of(weights: Mapping[str, np.ndarray], key: str) -> tuple:
    return tuple(np.shape(weights[key]))


def conv_shapes(key: str, out: int, inc: int) -> dict[str, tuple]:
    return {f"{key}.weight": (out, inc, 3, 3), f"{key}.bias": (out,)}
