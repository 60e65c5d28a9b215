"""Checkpoint files written without PyTorch, as PyTorch and safetensors write them.

A tensor here is a ``Tensor``: a view (offset, size, stride) of a ``Storage``, as
torch pickles it, so that views (transposed, or two tensors sharing one storage) can
be written. ``tools/checkpoint_crosscheck.py`` checks that torch.load reads these
files as the arrays they were written from.
"""
from __future__ import annotations

import collections
import contextlib
import io
import json
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np

# numpy dtype (or "bfloat16") -> torch storage type and safetensors dtype.
_TYPES = {
    "float32": ("FloatStorage", "F32"), "float16": ("HalfStorage", "F16"), "bfloat16": ("BFloat16Storage", "BF16"),
    "float64": ("DoubleStorage", "F64"), "int64": ("LongStorage", "I64"), "int32": ("IntStorage", "I32"),
    "uint8": ("ByteStorage", "U8"),
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class Storage:
    """A flat storage: ``values`` (1-D) kept as ``dtype`` ("bfloat16" keeps the upper
    16 bits of float32 values, so choose values that bfloat16 holds exactly)."""

    def __init__(self, values, dtype: str = "float32"):
        values = np.asarray(values).reshape(-1)
        if dtype == "bfloat16":
            self.raw = (values.astype("<f4").view("<u4") >> 16).astype("<u2")
        else:
            self.raw = values.astype(np.dtype(dtype).newbyteorder("<"))
        self.dtype = dtype

    @property
    def type_name(self) -> str:
        return _TYPES[self.dtype][0]


class Tensor:
    """A view of a storage, pickled as torch pickles a tensor."""

    def __init__(self, storage: Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def __reduce__(self):
        return _rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())


def tensor(array, dtype: str = "float32") -> Tensor:
    """A contiguous tensor of its own storage."""
    array = np.asarray(array)
    strides = [int(np.prod(array.shape[i + 1:])) for i in range(array.ndim)]
    return Tensor(Storage(array, dtype), 0, array.shape, strides)


def transposed(array, dtype: str = "float32") -> Tensor:
    """``array.T`` as torch's ``t()`` makes it: a view of ``array``'s storage."""
    array = np.asarray(array)
    assert array.ndim == 2
    return Tensor(Storage(array, dtype), 0, array.shape[::-1], (1, array.shape[1]))


def sharing(first, second, dtype: str = "float32") -> tuple[Tensor, Tensor]:
    """Two contiguous tensors in one storage, the second after the first."""
    first, second = np.asarray(first), np.asarray(second)
    storage = Storage(np.concatenate([first.reshape(-1), second.reshape(-1)]), dtype)
    a, b = tensor(first, dtype), tensor(second, dtype)
    return Tensor(storage, 0, a.size, a.stride), Tensor(storage, first.size, b.size, b.stride)


# --- the names torch's pickles refer to, made up for the time of a dump ----------

def _rebuild_tensor_v2(*args):
    raise AssertionError("only pickled, never called")


_STORAGE_CLASSES = {name: type(name, (), {"__module__": "torch"}) for name, _ in _TYPES.values()}


@contextlib.contextmanager
def _torch_names():
    # pickle writes a global by its module and name, and checks that importing the
    # name gives the same object: stand-in modules answer for torch meanwhile.
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name, cls in _STORAGE_CLASSES.items():
        setattr(torch, name, cls)
    _rebuild_tensor_v2.__module__ = "torch._utils"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _dump(obj, persistent_id) -> tuple[bytes, list[Storage]]:
    """``obj`` pickled as torch pickles it, and its storages in order of first use."""
    storages: list[Storage] = []

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if not isinstance(value, Storage):
                return None
            if not any(value is s for s in storages):
                storages.append(value)
            return persistent_id(value, next(i for i, s in enumerate(storages) if s is value))

    out = io.BytesIO()
    with _torch_names():
        Pickler(out, protocol=2).dump(obj)
    return out.getvalue(), storages


# --- the three formats ---------------------------------------------------------

def save_zip(path, obj, prefix: str = "archive") -> Path:
    """``obj`` as torch.save writes it (torch >= 1.6)."""
    def pid(storage, index):
        return "storage", _STORAGE_CLASSES[storage.type_name], str(index), "cpu", storage.raw.size
    data, storages = _dump(obj, pid)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data)
        z.writestr(f"{prefix}/byteorder", "little")
        for index, storage in enumerate(storages):
            z.writestr(f"{prefix}/data/{index}", storage.raw.tobytes())
        z.writestr(f"{prefix}/version", "3\n")
    return Path(path)


def save_legacy(path, obj) -> Path:
    """``obj`` as torch.save(..., _use_new_zipfile_serialization=False) writes it."""
    def pid(storage, index):
        return "storage", _STORAGE_CLASSES[storage.type_name], f"k{index}", "cpu", storage.raw.size, None
    data, storages = _dump(obj, pid)
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    with open(path, "wb") as f:
        for value in (LEGACY_MAGIC, 1001, info):
            pickle.dump(value, f, protocol=2)
        f.write(data)
        pickle.dump([f"k{i}" for i in range(len(storages))], f, protocol=2)
        for storage in storages:
            f.write(struct.pack("<q", storage.raw.size) + storage.raw.tobytes())
    return Path(path)


def save_safetensors(path, arrays: dict, dtypes: dict | None = None) -> Path:
    """``arrays`` as a safetensors file; ``dtypes`` may name one "bfloat16"."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in arrays.items():
        array = np.asarray(array)
        dtype = (dtypes or {}).get(name, array.dtype.name)
        raw = Storage(array, dtype).raw.tobytes()
        header[name] = {"dtype": _TYPES[dtype][1], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return Path(path)


def malicious_pickle(command: str) -> bytes:
    """A pickle that runs ``os.system(command)`` when plainly loaded."""
    return b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(command)) + command.encode() + b"\x85R."
