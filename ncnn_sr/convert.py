"""A PyTorch state dict of a Real-ESRGAN-family model, as numpy arrays, turned into
an ncnn param text and bin weights, with no PyTorch and no pnnx.

Architectures are told apart by their keys and shapes:

- RRDBNet with BasicSR/Real-ESRGAN names (``conv_first``, ``body.N.rdbM.convK``,
  ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``): scale 4, or
  2 / 1 when ``conv_first`` takes 12 / 48 channels (the picture pixel-unshuffled by 2
  / 4 first), 8 with a third upsampling convolution ``conv_up3`` (x8 models, such as
  ai-forever's RealESRGAN_x8).
- RRDBNet as the ESRGAN repository's RRDBNet_arch.py names it (``conv_first``,
  ``RRDB_trunk.N.RDBM.convK``, ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``,
  ``conv_last``): scale 4.
- RRDBNet with the original ESRGAN names (``model.0``, ``model.1.sub.N.RDBM.convK.0``,
  ``model.1.sub.<last>``, then ``model.3``, ``model.6``, ... for the upsampling
  convolutions, then the HR and last convolutions): scale 2 to the number of
  upsampling convolutions (1 with none: ``model.2`` and ``model.4`` follow the trunk),
  except that one upsampling convolution is x2 or x3 (ESRGAN's x3 upsamples once, by
  3): the caller says which.
- SRVGGNetCompact with PReLU activations (realesr-animevideov3,
  realesr-general-x4v3): ``body.0`` convolution, ``body.1`` PReLU, then pairs, and a
  last convolution to 3 x upscale² channels. Compact models with ReLU or leaky ReLU
  activations hold no weights for them, so their keys do not say which: they are
  refused rather than guessed.
- SPAN (``conv_1.sk``, ``block_N.c1_r``, ..., ``upsampler.0``): see span.py.
- RealPLKSR (``feats.0``, ``feats.N.channel_mixer``, ``feats.N.lk.conv``, ...): see
  plksr.py.

The network computes the PyTorch module's forward on float RGB in [0,1]. For the
pixel-unshuffled RRDBNets a picture whose sides are not a multiple of the unshuffle
factor is first reflect-padded on the right and bottom to one and the result
cropped back, as Real-ESRGAN's own inference does (the PyTorch module refuses such
a picture). Knows nothing of any file format but ncnn's.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import numbers
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from . import plksr, span
from .errors import (FlagNames, InputError, ModelError, NcnnSrError, Option, SettingError, cannot_write, describe,
                     file_path, in_one_line, os_reason)
from .files import atomic_write, mode_for, name_fault, temp_stem, write_protected
from .models import ModelSpec, catalog, model_name_for, resolve_model
from .ncnn_graph import INPUT_BLOB, Net, check_shapes, conv_shapes, counted, shape_of

log = logging.getLogger("ncnn_sr")

_RESIDUAL = "0=1 -23301=2,2.000000e-01,1.000000e+00"  # Eltwise sum: 0.2 * first + second
_CONVERTIBLE = ("RRDBNet (Real-ESRGAN, ESRGAN), SRVGGNetCompact with PReLU, SPAN, RealPLKSR and PLKSR "
                "can be converted")


@dataclass(frozen=True)
class ConvertedModel:
    """An ncnn model made from a state dict. ``param`` is the text of a .param file
    whose input blob is ``data`` and output blob ``output``; ``weights`` the .bin
    bytes it declares, exactly; ``scale`` the output's size over the input's."""

    param: str
    weights: bytes
    architecture: str
    scale: int


@in_one_line
def convert_weights(weights: Mapping[str, np.ndarray], fp16: bool = True, scale: int | None = None,
                    scale_hint: int | None = None, flags: FlagNames = FlagNames(library=True)) -> ConvertedModel:
    """Convert a state dict (key -> array) of a model this module knows (see its
    docstring) into an ncnn model; weights stored as fp16 (as the shipped models) or,
    with ``fp16=False``, fp32. A layout not known here, a key missing or to spare, a
    wrong shape, or a weight that is not finite (or too large for fp16) is a
    ModelError; a ``scale``, ``scale_hint`` or ``fp16`` of the wrong kind, a
    SettingError (a ValueError).

    The keys give the scale, except for ESRGAN names with one upsampling convolution,
    which are x2 or x3 alike: there ``scale`` (2 or 3) decides, else ``scale_hint``
    (the scale the model's name gives, see name_scale) where it is 2 or 3, else x2 with
    a warning logged (naming ``scale`` as ``flags`` say: by default as this argument,
    a command's as its flag). Elsewhere a ``scale`` other than the keys' is a
    ModelError, and ``scale_hint`` is not used."""
    for value, what in ((scale, "scale"), (scale_hint, "scale_hint")):
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral)
                                  or value < 1):
            raise SettingError(f"{what} must be a whole number from 1, got {describe(value)}")
    if not isinstance(fp16, (bool, np.bool_)):  # "no" is true: fp16 where fp32 was asked for
        raise SettingError(f"fp16 must be True or False, got {describe(fp16)}")
    scale, scale_hint, fp16 = (None if scale is None else int(scale), None if scale_hint is None else int(scale_hint),
                               bool(fp16))
    _check_state(weights)
    keys = list(weights)
    if not keys:
        raise ModelError("the weights are empty: no model to convert")
    known = _known(weights, scale, scale_hint, flags)
    if known is not None:
        return _scale_checked(known(weights, fp16), scale)
    # A trainer's wrapper names the network's weights under its attribute: "generator.",
    # "net_g.", "model." (Lightning's state_dict). The one known network under a prefix
    # is taken (of several, the one of EMA weights); others beside it (a discriminator,
    # say) are left out.
    found = _networks_under_prefixes(weights)
    if len(found) == 1:
        prefix, inner = found[0]
        model = _scale_checked(_known(inner, scale, scale_hint, flags)(inner, fp16), scale)
        return replace(model, architecture=f"{model.architecture}, the weights under {prefix}")
    if found:
        raise ModelError(f"the weights hold several networks, under {', '.join(p for p, _ in found)}: "
                         "save the one to convert alone")
    # The first keys in order tell little (a SwinIR's are conv_after_body...): a key
    # that shows what the network is goes first, and is said.
    telling = [k for k in keys if _QKV.search(k)]
    kind = ", a transformer (its attention's qkv weights, as SwinIR, HAT and DAT have)" if telling else ""
    ordered = telling[:1] + sorted(k for k in keys if k not in telling[:1])
    shown = ", ".join(ordered[:3]) + (", ..." if len(keys) > 3 else "")
    raise ModelError(f"an architecture not known here{kind} (keys such as {shown}): {_CONVERTIBLE}")


# A transformer's attention: its query, key and value projections in one (qkv, to_qkv).
_QKV = re.compile(r"(^|[._])qkv[._]")


def _check_state(weights) -> None:
    """A ModelError unless ``weights`` is a mapping with string keys, as a state dict is."""
    if not isinstance(weights, Mapping):
        raise ModelError(f"the weights must be a mapping of names to arrays, got {describe(weights)}")
    if not all(isinstance(k, str) for k in weights):
        raise ModelError("the weights' keys must all be strings")


# The community names models by their scale: 4x_Name, 4x-Name, 4xName, Name_x4, Name.3x.
# A token of its own (between _ - . and spaces), or a leading Nx before a capital.
_SCALE_TOKEN = re.compile(r"(?i:(\d{1,2})x|x(\d{1,2}))")
_LEADING_SCALE = re.compile(r"(\d{1,2})[xX](?=[A-Z])")


def name_scale(name: str) -> int | None:
    """The scale a model's name gives by the community's convention ("3x_Foo",
    "4xFoo", "Foo_x3", "Foo-3x"), or None when it gives none or two different ones.
    For ``scale_hint``: ``name`` is a file's name without its suffix."""
    if not isinstance(name, str):
        raise ModelError(f"a model's name must be a string, got {describe(name)}")
    found = {int(next(g for g in m.groups() if g)) for token in re.split(r"[_\-. ]+", name)
             if (m := _SCALE_TOKEN.fullmatch(token))}
    if m := _LEADING_SCALE.match(name):
        found.add(int(m.group(1)))
    return found.pop() if len(found) == 1 and min(found) >= 1 else None


def _scale_checked(model: ConvertedModel, scale: int | None) -> ConvertedModel:
    if scale is not None and model.scale != scale:
        raise ModelError(f"{model.architecture}: its keys say x{model.scale}, not x{scale} (",
                         Option(f"--scale {scale}", f"scale={scale}"), "); a scale is chosen only for ESRGAN names "
                         "with one upsampling convolution, x2 or x3")
    return model


def _known(weights: Mapping[str, np.ndarray], scale: int | None = None, hint: int | None = None,
           flags: FlagNames = FlagNames(library=True)):
    """The converter of the architecture ``weights``' keys name, or None; ``scale``,
    ``hint`` and ``flags`` as convert_weights takes them."""
    if "conv_first.weight" in weights and any(k.startswith("RRDB_trunk.") for k in weights):
        return _esrgan_trunk
    if "conv_first.weight" in weights and any(re.match(r"body\.\d+\.rdb\d\.", k) for k in weights):
        # SwinIR, HAT and DAT have a conv_first too; a conv_up3 is an x8 model's third nearest x2.
        return lambda w, fp16: _rrdbnet(w, {k: k for k in w}, "RRDBNet (Real-ESRGAN names)", fp16,
                                        (2, 2, 2) if "conv_up3.weight" in w else (2, 2))
    if "model.0.weight" in weights and any(k.startswith("model.1.sub.") for k in weights):
        return functools.partial(_esrgan, scale=scale, hint=hint, flags=flags)
    if "body.0.weight" in weights and ("body.1.weight" in weights or "body.2.weight" in weights):
        return _compact
    if span.is_span(weights):
        return lambda w, fp16: ConvertedModel(*span.convert_span(w, fp16))
    if plksr.is_plksr(weights):
        return lambda w, fp16: ConvertedModel(*plksr.convert_plksr(w, fp16))
    return None


def _networks_under_prefixes(weights: Mapping[str, np.ndarray]) -> list[tuple[str, dict]]:
    """(prefix, weights) of the known networks under prefixes: the EMA one alone where
    it is one of several, as with BasicSR's params_ema beside params."""
    found = _prefixed(weights)
    ema = [f for f in found if "ema" in f[0].lower()]
    return ema if len(found) > 1 and len(ema) == 1 else found


def _network_weights(weights: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """The weights of the one known network in ``weights`` (under a trainer's prefix,
    or not), or ``weights`` themselves where there is not exactly one."""
    if _known(weights) is not None:
        return weights
    found = _networks_under_prefixes(weights)
    return found[0][1] if len(found) == 1 else weights


def _prefixed(weights: Mapping[str, np.ndarray], depth: int = 2) -> list[tuple[str, dict]]:
    """(prefix, the weights under it with it taken off) for each known network found
    under one or (``depth``) two leading name parts."""
    groups: dict[str, dict] = {}
    for key, value in weights.items():
        head, dot, rest = key.partition(".")
        if dot and rest:
            groups.setdefault(head + ".", {})[rest] = value
    found = []
    for head, inner in groups.items():
        if _known(inner) is not None:
            found.append((head, inner))
        elif depth > 1:
            found.extend((head + p, w) for p, w in _prefixed(inner, depth - 1))
    return found


@in_one_line
def interpolate_weights(first: Mapping[str, np.ndarray], second: Mapping[str, np.ndarray],
                        weight: float) -> dict[str, np.ndarray]:
    """``weight`` x ``first`` + (1 - ``weight``) x ``second``, weight by weight: the
    network interpolation Real-ESRGAN offers between two trainings of one network
    (its ``-dn`` strength mixes realesr-general-x4v3, ``first``, with
    realesr-general-wdn-x4v3). Both must hold the same names and shapes; ``weight``
    is from 0 to 1 (else a SettingError, a ValueError). Integer entries (counters)
    are taken from ``first``. Where their names differ, the one known network of
    each is taken from under its trainer's prefix (params_ema, model., ...), and
    those are mixed."""
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real) or not 0 <= weight <= 1:
        raise SettingError(f"the interpolation weight must be a number from 0 to 1, got {describe(weight)}")
    weight = float(weight)
    _check_state(first)
    _check_state(second)
    if first.keys() != second.keys():
        # One network saved under two trainers' prefixes (params_ema, Lightning's model.).
        first, second = _network_weights(first), _network_weights(second)
    if first.keys() != second.keys():
        odd = sorted(first.keys() ^ second.keys())
        raise ModelError(f"the two models hold different weights ({', '.join(odd[:3])}"
                         f"{', ...' if len(odd) > 3 else ''}): only two trainings of one network can be interpolated")
    mixed = {}
    for key, a in first.items():
        try:
            a, b = np.asarray(a), np.asarray(second[key])
        except (ValueError, TypeError):  # nested lists of uneven lengths
            a = b = np.asarray(None)
        if a.dtype.kind not in "biufc" or b.dtype.kind not in "biufc":
            raise ModelError(f"weight {key} is not an array of numbers")
        if a.shape != b.shape:
            raise ModelError(f"weight {key} is {_shape_text(a.shape)} in one model and {_shape_text(b.shape)} in "
                             "the other: only two trainings of one network can be interpolated")
        if np.issubdtype(a.dtype, np.floating):
            a = (weight * a.astype(np.float32) + (1 - weight) * b.astype(np.float32)).astype(np.float32)
        mixed[key] = a
    return mixed


def _shape_text(shape: tuple) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def write_model(model: ConvertedModel, folder: str | bytes | os.PathLike, name: str, trial: bool = True,
                overwrite: bool = False) -> ModelSpec:
    """Write ``NAME.param`` and ``NAME.bin`` in ``folder`` and return their checked
    spec, as ``resolve_model`` gives it for the .param's path, with the model's scale.
    An existing NAME.param or NAME.bin is replaced only with ``overwrite``. The name
    of a verified catalog model, or of a catalog family, is refused: in a model
    folder that name stands for the catalog's files.

    Both are written under hidden temporary names first; with ``trial`` that pair is
    loaded and run once on the CPU, and must give the model's scale, before the two
    take their names (the bin, then the param). An existing pair steps aside to
    hidden names first and is deleted only once the new pair is in place; a failure
    or Ctrl-C on the way puts it back. So the names hold the old pair or the new
    one, never one file of each, and no temporary file is left behind. A model that
    does not run is a ModelError, and replaces nothing."""
    if not isinstance(model, ConvertedModel):
        raise ModelError(f"the model must be a ConvertedModel, got {describe(model)}")
    for value, what in ((overwrite, "overwrite"), (trial, "trial")):
        if not isinstance(value, (bool, np.bool_)):  # overwrite="no" is true: it replaced the model there
            raise SettingError(f"{what} must be True or False, got {describe(value)}")
    folder = Path(file_path(folder, "write_model", ModelError, "a folder's path"))
    check_target(folder, name, overwrite)
    if not folder.is_dir():  # else the error named a hidden temporary file in it
        why = f"{folder} is not a folder" if folder.exists() else f"there is no folder {folder}"
        raise InputError(f"cannot write {folder / f'{name}.param'}: {why}")
    param_path, bin_path = folder / f"{name}.param", folder / f"{name}.bin"
    temp = f".{temp_stem(name, folder)}.{secrets.token_hex(4)}"
    temp_param, temp_bin = folder / f"{temp}.part.param", folder / f"{temp}.part.bin"
    # The param steps aside first and comes in last: NAME.param is the model, and
    # a bin without it is only half of one.
    old = {path: folder / f"{temp}.old{path.suffix}" for path in (param_path, bin_path) if os.path.lexists(path)}
    moved, placed = [], []
    try:
        # A pair replaced keeps its files' modes (chmod 600 kept private), as a picture does.
        atomic_write(temp_bin, lambda f: f.write(model.weights), shown=bin_path, mode=mode_for(bin_path))
        atomic_write(temp_param, lambda f: f.write(model.param.encode("utf-8")), shown=param_path,
                     mode=mode_for(param_path))
        if trial:
            _trial_run(temp_param, model.scale, name)
        for path, aside in old.items():
            try:
                os.replace(path, aside)
            except OSError as e:  # the hidden name it was going to is none of the user's
                raise InputError(f"cannot replace {path}: {os_reason(e)}") from None
            moved.append(path)
        for source, target in ((temp_bin, bin_path), (temp_param, param_path)):
            _rename(source, target)
            placed.append(target)
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        for path in reversed(moved):
            with contextlib.suppress(OSError):  # if even that fails, the old file keeps its hidden name
                os.replace(old[path], path)
        raise
    finally:
        for path in (temp_param, temp_bin):
            with contextlib.suppress(OSError):  # a read-only folder refuses even what is not there
                path.unlink()
    for aside in old.values():
        with contextlib.suppress(OSError):  # the new model is in place: a leftover is no failure
            aside.unlink()
    return replace(resolve_model(param_path), scale=model.scale)


def check_target(folder: str | os.PathLike, name: str, overwrite: bool = False) -> None:
    """A ModelError unless ``write_model`` may write model ``name`` in ``folder``: a
    plain file name, not a verified catalog model's or a family's, and no pair there
    already unless ``overwrite``; an InputError where a file of it there is
    write-protected. (Checked before a download, too.)"""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or name.startswith(".") \
            or "/" in name or os.sep in name \
            or any(unicodedata.category(c) == "Cc" for c in name) or name.lower().endswith((".param", ".bin")):
        # A control character (a line break, from -n or the weights' file name) made a
        # model that every listing and message showed over two lines.
        raise ModelError(f"a model's name must be a file name without folder or suffix, got {describe(name)}")
    fault = name_fault(f"{name}.param")
    if fault:  # a colon's files were hidden streams of a file of the name before it
        raise ModelError(f"a model's name must be a file name this system can hold, got {describe(name)}: {fault}")
    entry = catalog().get(name)
    if entry is not None and entry.param_sha256:
        # Other weights under a verified model's name would be refused as a corrupt copy.
        raise ModelError(f"{name} is the name of a catalog model: give the converted one another name")
    if model_name_for(name) != name:  # the commands map a family name to one of its models
        raise ModelError(f"{name} names the catalog's {name} models (",
                         Option(f"-n {name}", f"model_name_for({name!r}, scale)", everywhere=True),
                         " would pick one of them): give the converted one another name")
    for path in (Path(folder) / f"{name}.param", Path(folder) / f"{name}.bin"):
        try:
            folder_there, there = path.is_dir(), os.path.lexists(path)
            protected = write_protected(path)
        except OSError as e:  # a name too long for the file system: a traceback once the folder was made
            raise cannot_write(path, e) from None
        if folder_there:
            raise ModelError(f"{path} is a folder: the model cannot take its name")
        if there and not overwrite:
            raise ModelError(f"{path} exists: replace it (", Option("--force", "overwrite=True"),
                             "), or give another name")
        if protected:  # its owner's chmod a-w, which --force is no leave to undo (root may, as cp)
            raise InputError(f"cannot replace {path}: it is write-protected (read-only): make it writable to "
                             "replace it")


def _trial_run(param: Path, scale: int, name: str) -> None:
    """Load the model of ``param`` (a temporary file) on the CPU as model ``name``,
    which measures its scale by running it once on a small picture; a ModelError
    unless it loads, runs and gives ``scale``."""
    from .engine import Upscaler  # the engine loads ncnn: only a trial needs it

    try:
        # Named as the user named it: its errors named the hidden pair (".m.1a2b3c4d.part").
        with Upscaler(replace(resolve_model(param), name=name), device="cpu") as upscaler:
            measured = upscaler.scale
    except NcnnSrError as e:
        # A custom model's failure names its .param and .bin: here a hidden temporary pair.
        pieces = list(e.pieces)
        for hidden in (f"{param} ", f" ({param.with_suffix('.bin')})"):
            pieces = [piece.replace(hidden, "") if isinstance(piece, str) else piece for piece in pieces]
        raise ModelError("the converted model does not run: ", *pieces) from None
    if measured != scale:
        raise ModelError(f"the converted model gives x{measured}, where its architecture says x{scale}")


def _rename(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as e:
        raise cannot_write(target, e) from None


# --- the network text and weights --------------------------------------------------------


# --- checks ------------------------------------------------------------------------------


# --- RRDBNet -----------------------------------------------------------------------------

_UNSHUFFLE = {3: 1, 12: 2, 48: 4}  # conv_first's input channels -> pixel-unshuffle factor


def _rrdbnet(weights: Mapping[str, np.ndarray], lookup: dict[str, str], names: str, fp16: bool,
             factors: tuple[int, ...] = (2, 2), note: str = "") -> ConvertedModel:
    """An RRDBNet from keys named as BasicSR names them (``lookup`` maps those names to
    the state dict's), with a nearest upsampling by each of ``factors``, each followed
    by its convolution (BasicSR's has two by 2; ESRGAN's x3, one by 3). ``note`` follows
    the scale in the architecture's description."""
    blocks = len({m.group(1) for k in lookup if (m := re.match(r"body\.(\d+)\.rdb", k))})
    first = shape_of(weights, lookup["conv_first.weight"])
    grow_key = lookup.get("body.0.rdb1.conv1.weight")
    if len(first) != 4 or blocks == 0 or grow_key not in weights or len(shape_of(weights, grow_key)) != 4:
        raise ModelError(f"{names}: conv_first or the first block's convolutions are not 4-D weights "
                         "as an RRDBNet has")
    feat, in_ch = first[0], first[1]
    grow = shape_of(weights, grow_key)[0]
    ups = len(factors)
    unshuffle = _UNSHUFFLE.get(in_ch) if factors == (2, 2) else (1 if in_ch == 3 else None)
    if unshuffle is None:
        first_name = lookup["conv_first.weight"].removesuffix(".weight")  # as the file names it
        raise ModelError(f"{names}: {first_name} takes {counted(in_ch, 'channel')}; an RGB model takes "
                         f"{'3, 12 or 48' if factors == (2, 2) else '3'}")
    scale = math.prod(factors) // unshuffle
    arch = f"{names}, {counted(blocks, 'block')}, {feat} features, {grow} growth channels, x{scale}{note}"
    shapes = conv_shapes("conv_first", feat, in_ch)
    for i in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                shapes.update(conv_shapes(f"body.{i}.rdb{r}.conv{c}", feat if c == 5 else grow, feat + (c - 1) * grow))
    for key in ["conv_body", *(f"conv_up{u}" for u in range(1, ups + 1)), "conv_hr"]:
        shapes.update(conv_shapes(key, feat, feat))
    shapes.update(conv_shapes("conv_last", 3, feat))
    check_shapes(weights, {**{k: k for k in shapes}, **lookup}, shapes, arch)

    net = Net(weights, lookup, fp16)
    x = INPUT_BLOB
    if unshuffle > 1:
        # Reflect-padded by one factor less than the unshuffle's: Reorg drops the rows and
        # columns that do not fill a block, so a side already a multiple is left as it is.
        pad = unshuffle - 1
        x = net.add("Padding", "pad_to_multiple", [x], f"0=0 1={pad} 2=0 3={pad} 4=2")
        x = net.add("Reorg", "pixel_unshuffle", [x], f"0={unshuffle} 1=0")
    feat_blob = x = net.conv("conv_first", x)
    for i in range(blocks):
        block_in = x
        for r in (1, 2, 3):
            rdb_in, outs = x, [x]
            for c in range(1, 5):
                joined = outs[0] if c == 1 else net.add("Concat", f"body.{i}.rdb{r}.cat{c}", outs)
                outs.append(net.conv(f"body.{i}.rdb{r}.conv{c}", joined, lrelu=True))
            x5 = net.conv(f"body.{i}.rdb{r}.conv5", net.add("Concat", f"body.{i}.rdb{r}.cat5", outs))
            x = net.add("Eltwise", f"body.{i}.rdb{r}.residual", [x5, rdb_in], _RESIDUAL)
        x = net.add("Eltwise", f"body.{i}.residual", [x, block_in], _RESIDUAL)
    x = net.add("BinaryOp", "trunk_residual", [feat_blob, net.conv("conv_body", x)], "0=0")
    for u, factor in enumerate(factors, 1):
        x = net.add("Interp", f"upsample{u}", [x], f"0=1 1={factor}.000000e+00 2={factor}.000000e+00")
        x = net.conv(f"conv_up{u}", x, lrelu=True)
    x = net.conv("conv_last", net.conv("conv_hr", x, lrelu=True))
    if unshuffle > 1:
        # Cropped to the picture's size times the scale, which the padding may exceed.
        like = INPUT_BLOB if scale == 1 else net.add(
            "Interp", "output_size", [INPUT_BLOB], f"0=1 1={scale}.000000e+00 2={scale}.000000e+00")
        x = net.add("Crop", "crop_to_picture", [x, like])
    param, data = net.finish(x)
    return ConvertedModel(param, data, arch, scale)


def _esrgan(weights: Mapping[str, np.ndarray], fp16: bool, scale: int | None = None,
            hint: int | None = None, flags: FlagNames = FlagNames(library=True)) -> ConvertedModel:
    """The original ESRGAN names, mapped to BasicSR's. With one upsampling convolution
    the model is x2 or x3 (see _one_upsampling): ``scale`` says which, else ``hint``."""
    names = "RRDBNet (ESRGAN names)"
    subs = {int(m.group(1)) for k in weights if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))}
    tops = sorted({int(m.group(1)) for k in weights if (m := re.fullmatch(r"model\.(\d+)\.weight", k))} - {0})
    ups = len(tops) - 2
    # ups 0: a 1x model (model.2, model.4), as many of the community's 1x_ models are.
    if not subs or ups < 0 or tops != [*(3 * u for u in range(1, ups + 1)), 3 * ups + 2, 3 * ups + 4]:
        found = ", ".join(f"model.{t}" for t in tops) or "none"
        raise ModelError(f"{names}: the convolutions after the trunk ({found}) are not those of "
                         "ESRGAN's nearest-upsampling layout (model.3, model.6, ..., then two more)")
    blocks = max(subs) + 1
    lookup = {}
    for end in ("weight", "bias"):
        lookup[f"conv_first.{end}"] = f"model.0.{end}"
        lookup[f"conv_body.{end}"] = f"model.1.sub.{blocks}.{end}"
        for u in range(1, ups + 1):
            lookup[f"conv_up{u}.{end}"] = f"model.{3 * u}.{end}"
        lookup[f"conv_hr.{end}"] = f"model.{3 * ups + 2}.{end}"
        lookup[f"conv_last.{end}"] = f"model.{3 * ups + 4}.{end}"
        for i in range(blocks):
            for r in (1, 2, 3):
                for c in range(1, 6):
                    lookup[f"body.{i}.rdb{r}.conv{c}.{end}"] = f"model.1.sub.{i}.RDB{r}.conv{c}.0.{end}"
    if ups == 1:
        factors, note = _one_upsampling(names, scale, hint, flags)
    else:
        factors, note = (2,) * ups, ""
    return _rrdbnet(weights, lookup, names, fp16, factors, note)


def _one_upsampling(names: str, scale: int | None, hint: int | None,
                    flags: FlagNames = FlagNames(library=True)) -> tuple[tuple[int], str]:
    """The upsampling factor of an ESRGAN-named model with one upsampling convolution,
    and a note for its description. ESRGAN's architecture.py makes x2 with one nearest
    x2 and a convolution, and x3 with one nearest x3 and a convolution: the same keys
    and shapes, so only the caller can tell."""
    if scale is not None:
        if scale not in (2, 3):
            raise ModelError(f"{names} with one upsampling convolution is x2 or x3, not x{scale} (",
                             Option(f"--scale {scale}", f"scale={scale}"), ")")
        return (scale,), ""
    if hint in (2, 3):
        return (hint,), " (as its name says; its keys allow x2 or x3)"
    # A warning has no Options: the caller's words are chosen here.
    log.warning("%s with one upsampling convolution is x2 or x3 alike by its keys: converted as x2; "
                "give %s for an x3 model", names, flags.named("--scale 3", "scale=3"))
    return (2,), " (its keys allow x2 or x3)"


_TRUNK_NAMES = {"conv_first": "conv_first", "trunk_conv": "conv_body", "upconv1": "conv_up1", "upconv2": "conv_up2",
                "HRconv": "conv_hr", "conv_last": "conv_last"}


def _esrgan_trunk(weights: Mapping[str, np.ndarray], fp16: bool) -> ConvertedModel:
    """The names of the ESRGAN repository's RRDBNet_arch.py (its own RRDB_ESRGAN_x4.pth):
    ``RRDB_trunk.N.RDBM.convK``, ``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``,
    mapped to BasicSR's."""
    blocks = {int(m.group(1)) for k in weights if (m := re.match(r"RRDB_trunk\.(\d+)\.", k))}
    lookup = {}
    for end in ("weight", "bias"):
        for theirs, ours in _TRUNK_NAMES.items():
            lookup[f"{ours}.{end}"] = f"{theirs}.{end}"
        for i in range(max(blocks, default=-1) + 1):
            for r in (1, 2, 3):
                for c in range(1, 6):
                    lookup[f"body.{i}.rdb{r}.conv{c}.{end}"] = f"RRDB_trunk.{i}.RDB{r}.conv{c}.{end}"
    return _rrdbnet(weights, lookup, "RRDBNet (ESRGAN repository names)", fp16)


# --- SRVGGNetCompact ---------------------------------------------------------------------


def _compact(weights: Mapping[str, np.ndarray], fp16: bool) -> ConvertedModel:
    names = "SRVGGNetCompact"
    first = shape_of(weights, "body.0.weight")
    act = shape_of(weights, "body.1.weight") if "body.1.weight" in weights else ()
    if len(first) != 4 or len(act) != 1:
        raise ModelError(f"{names} without PReLU weights (ReLU or leaky ReLU activations) cannot be told apart "
                         f"by its keys and is not converted here: {_CONVERTIBLE}")
    last = max((int(m.group(1)) for k in weights if (m := re.fullmatch(r"body\.(\d+)\.weight", k))))
    last_shape = shape_of(weights, f"body.{last}.weight")
    feat = first[0]
    upscale = math.isqrt(last_shape[0] // 3) if len(last_shape) == 4 else 0
    if last % 2 or upscale < 1 or last_shape[0] != 3 * upscale * upscale:
        raise ModelError(f"{names}: its last convolution body.{last} gives {describe(last_shape)} where "
                         "3 x upscale² output channels are expected")
    convs = last // 2 - 1
    arch = f"{names}, {convs} convolutions, {feat} features, x{upscale}"
    shapes = conv_shapes("body.0", feat, 3)
    for i in range(1, last):
        if i % 2:
            shapes[f"body.{i}.weight"] = (act[0],) if act[0] == 1 else (feat,)
        else:
            shapes.update(conv_shapes(f"body.{i}", feat, feat))
    shapes.update(conv_shapes(f"body.{last}", 3 * upscale * upscale, feat))
    lookup = {k: k for k in shapes}
    check_shapes(weights, lookup, shapes, arch)

    net = Net(weights, lookup, fp16)
    x = INPUT_BLOB
    for i in range(last):
        x = net.prelu(f"body.{i}", x) if i % 2 else net.conv(f"body.{i}", x)
    x = net.conv(f"body.{last}", x)
    if upscale > 1:
        x = net.add("PixelShuffle", "pixel_shuffle", [x], f"0={upscale} 1=0")
        base = net.add("Interp", "upsample", [INPUT_BLOB], f"0=1 1={upscale}.000000e+00 2={upscale}.000000e+00")
    else:
        base = INPUT_BLOB
    x = net.add("BinaryOp", "add_upsampled", [x, base], "0=0")
    param, data = net.finish(x)
    return ConvertedModel(param, data, arch, upscale)
