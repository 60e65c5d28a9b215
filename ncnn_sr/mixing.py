"""Two trainings of one network mixed weight by weight, as ncnn models: Real-ESRGAN's
denoise strength, which mixes realesr-general-x4v3 with realesr-general-wdn-x4v3.

Works on the converted .bin files, so that only the two ncnn models need be kept:
each weight is mixed in float32 and stored back as it was stored (float16 stays
float16, so the mix is as exact as the models themselves).
"""
from __future__ import annotations

import numbers
import os
from dataclasses import replace

import numpy as np

from .errors import ModelError, SettingError, describe, file_path, no_path
from .models import PATH_TYPES, ModelSpec, resolve_model
from .param_file import parse_param, weight_arrays

# Real-ESRGAN's --denoise_strength picks these two: its strength is the first's share.
DENOISE_MODELS = ("realesr-general-x4v3", "realesr-general-wdn-x4v3")


def mix_models(first: str | bytes | os.PathLike | ModelSpec, second: str | bytes | os.PathLike | ModelSpec,
               weight: float, folder: str | bytes | os.PathLike, name: str) -> ModelSpec:
    """``weight`` x ``first``'s weights + (1 - ``weight``) x ``second``'s, written as
    ``name``.param and .bin in ``folder``; its checked spec. ``first`` and ``second``
    are models as ``resolve_model`` takes them: a name, a .param path or a ModelSpec.
    Both must be one network (the same .param) with bins of the same layout.
    ``name`` is a plain file name, as ``write_model`` takes one; a pair of that name there is replaced as
    ``write_model`` replaces one: the names hold the old pair or the new, never one
    file of each."""
    from .convert import ConvertedModel, check_target, write_model  # the converter's modules: only a mix needs them

    _check_weight(weight)
    for which, model in (("first", first), ("second", second)):
        # resolve_model's words said "the model", which of two it did not, nor whose.
        if not isinstance(model, (ModelSpec, *PATH_TYPES)):
            raise ModelError(f"mix_models' {which} must be a model's name, a .param file's path or a ModelSpec, "
                             f"got {no_path(model)}")
    folder = file_path(folder, "mix_models", ModelError, "a folder's path")
    # Before anything is written: "" left a hidden ".param" and ".bin" behind, and
    # "../x" wrote beside the folder.
    check_target(folder, name, overwrite=True)
    first, second = resolve_model(first), resolve_model(second)
    params = [spec.param_path.read_bytes().replace(b"\r\n", b"\n") for spec in (first, second)]
    if params[0] != params[1]:
        raise ModelError(f"{first.name} and {second.name} are not one network (their .param files differ): "
                         "only two trainings of one network can be mixed")
    bins = [spec.bin_path.read_bytes() for spec in (first, second)]
    graph = parse_param(params[0], first.name)
    try:
        layout = list(weight_arrays(graph, bins[0]))
        if layout != list(weight_arrays(graph, bins[1])) or len(bins[0]) != len(bins[1]):
            raise ModelError("their weights are stored in other formats")
    except ModelError as e:
        raise ModelError(f"{first.name} and {second.name} cannot be mixed: {e}") from None
    mixed = bytearray(bins[0])
    for offset, dtype, count in layout:
        a, b = (np.frombuffer(data, dtype, count, offset).astype(np.float32) for data in bins)
        mixed[offset:offset + count * np.dtype(dtype).itemsize] = \
            (weight * a + (1 - weight) * b).astype(dtype).tobytes()
    # As a pair, as the converter writes one: written one after the other, a failure
    # between them (a full disk, Ctrl-C) left the new bin beside the old param.
    # (parse_param read the param as UTF-8.)
    mix = ConvertedModel(params[0].decode("utf-8"), bytes(mixed), f"{first.name} mixed with {second.name}",
                         first.scale)
    spec = write_model(mix, folder, name, trial=False, overwrite=True)
    # What the catalog knows of the first (its scale, its memory per pixel) holds for the mix.
    return replace(spec, scale=first.scale, prepadding=first.prepadding, cpu_bytes_per_pixel=first.cpu_bytes_per_pixel)


def denoised_model(strength: float, folder: str | bytes | os.PathLike,
                   model_path: str | bytes | os.PathLike | None = None) -> ModelSpec:
    """Real-ESRGAN's denoise strength: realesr-general-x4v3 mixed with its
    weak-denoise training, ``strength`` of the first, written in ``folder`` (kept as
    long as the model is used); 1 is realesr-general-x4v3 itself, from where it is."""
    general, weak = DENOISE_MODELS
    # Checked first: True passed as 1, and a string or None met the name's format as a
    # bare ValueError or TypeError.
    _check_weight(strength, "denoise strength")
    folder = file_path(folder, "denoised_model", ModelError, "a folder's path")
    first = resolve_model(general, model_path)
    if strength == 1:
        return first
    return mix_models(first, resolve_model(weak, model_path), strength, folder, f"{general}-dn{strength:g}")


def _check_weight(weight, what: str = "mixing weight") -> None:
    """A SettingError unless ``weight`` is a real number from 0 to 1 (numpy's included;
    not a bool): a setting, refused as Upscaler's and Pipeline's are."""
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, numbers.Real) or not 0 <= weight <= 1:
        raise SettingError(f"the {what} must be a number from 0 to 1, got {describe(weight)}")
