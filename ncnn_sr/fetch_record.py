"""What ``ncnn-sr fetch`` wrote: a small record beside each model it installs
(``.NAME.fetched.json``: the official weights it was converted from and the sha256
of the .param and .bin written), so that ``ncnn-sr models`` calls fetched only a
pair that fetch wrote and nobody changed since; any other pair in that folder (put
there by hand, or fetched before records were kept) is listed as what it is.

Standard library only: ``ncnn-sr models`` reads it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import NamedTuple

from .errors import ModelError

_CHUNK = 1 << 20


def record_path(folder: Path, name: str) -> Path:
    """Where model ``name``'s record is, in ``folder``: hidden, as the download kept
    for it is (``.NAME.pth.download``), and no .param for the lookups to list."""
    return folder / f".{name}.fetched.json"


def file_sha256(path: Path, text: bool = False) -> str:
    """sha256 of a file's bytes; with ``text`` (a .param), CRLF read as LF, as the
    catalog's hashes of params are."""
    if text:
        return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_record(folder: Path, name: str, weights: str, weights_sha256: str, param: Path, bin_: Path) -> None:
    """Record model ``name`` as converted from ``weights`` (the official file's name)
    into ``param`` and ``bin_``. Written under a temporary name and renamed: a record
    is whole or absent, never half written."""
    record = {"model": name, "weights": weights, "weights_sha256": weights_sha256,
              "param": param.name, "param_sha256": file_sha256(param, text=True),
              "bin": bin_.name, "bin_sha256": file_sha256(bin_)}
    target = record_path(folder, name)
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            # Readable by whoever may read the model (mkstemp's is 600): in a folder
            # others share, they read no record, and were told it was none of fetch's.
            os.chmod(temp, stat.S_IMODE(param.stat().st_mode))
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as e:
        raise ModelError(f"model {name}: cannot write {target}: {e.strerror}") from None


class Record(NamedTuple):
    """What fetch recorded of a model: the weights' file name and sha256 it was
    converted from, and the first of its two files changed since (None if neither)."""

    weights: str
    weights_sha256: str | None
    changed: Path | None


def recorded(name: str, param: Path, bin_: Path) -> Record | None:
    """What ncnn-sr fetch recorded of model ``name`` as ``param`` and ``bin_``; None
    where it left no record of them (or one that cannot be read)."""
    try:
        record = json.loads(record_path(param.parent, name).read_text(encoding="utf-8"))
        weights, weights_sha256 = record["weights"], record["weights_sha256"]
        hashes = ((param, record["param"], record["param_sha256"], True),
                  (bin_, record["bin"], record["bin_sha256"], False))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(weights, str) or bin_.parent != param.parent:
        return None
    for path, written, sha256, text in hashes:
        try:
            if path.name != written or file_sha256(path, text) != sha256:
                return Record(weights, weights_sha256, path)
        except OSError:
            return Record(weights, weights_sha256, path)
    return Record(weights, weights_sha256, None)
