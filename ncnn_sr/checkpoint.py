"""Weights of a PyTorch-trained model, read without PyTorch.

Three file formats are read, told apart by their content rather than their suffix:
PyTorch's zip checkpoint (torch >= 1.6), PyTorch's legacy format (a sequence of
pickles followed by the raw storages, as many older ESRGAN models are), and
safetensors.

A checkpoint's pickle is never loaded with plain ``pickle.load``: the unpickler
knows only the names a state dict needs (``collections.OrderedDict``, PyTorch's
tensor and parameter rebuild functions, the storage types as dtype markers) and
inert stand-ins for a few harmless values found in training checkpoints (numpy
scalars, ``argparse.Namespace``). Any other name is refused before anything of it
runs.
"""
from __future__ import annotations

import codecs
import collections
import functools
import io
import json
import lzma
import math
import os
import pickle
import pickletools
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError, Option, file_path, shell_word, stand_in
from .models import refuse_zip_of_models
from .param_file import starts_as_param

__all__ = ["read_weights"]

# The dicts a checkpoint may keep its state dict under, in order of preference:
# BasicSR's EMA weights first, as Real-ESRGAN's own inference takes them.
_STATE_DICT_KEYS = ("params_ema", "params", "state_dict", "model")

# torch's storage types and dtypes, by the name a pickle gives them. bfloat16 has no
# numpy type: it is read as its 16 bits and widened to float32 afterwards.
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_TORCH_DTYPES = {
    "float64": "f8", "double": "f8", "float32": "f4", "float": "f4", "float16": "f2", "half": "f2",
    "bfloat16": "bf16", "int64": "i8", "long": "i8", "int32": "i4", "int": "i4", "int16": "i2",
    "short": "i2", "int8": "i1", "uint8": "u1", "bool": "?",
}
_SAFETENSORS_DTYPES = {
    "F64": "f8", "F32": "f4", "F16": "f2", "BF16": "bf16", "I64": "i8", "I32": "i4", "I16": "i2",
    "I8": "i1", "U64": "u8", "U32": "u4", "U16": "u2", "U8": "u1", "BOOL": "?",
}

# The first pickle of PyTorch's legacy format, and the version after it.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
# How many times its own size a zip's compressed members may unpack to.
_MAX_UNPACKING = 16
# The longest safetensors header read (the format's own limit is 100 MB).
_MAX_HEADER = 100_000_000

# The most dimensions a tensor has (numpy's limit).
_MAX_DIMS = 64

# The most elements a pickle's calls may copy, beyond its own length.
_COPY_ALLOWANCE = 1 << 20

# What a damaged pickle makes the unpickler raise, besides UnpicklingError.
_BAD_PICKLE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
               AttributeError, OverflowError, struct.error, RecursionError, MemoryError)


def read_weights(path: str | bytes | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of the checkpoint at ``path``, by name ("conv_first.weight").

    The state dict is the checkpoint's ``params_ema``, else ``params``, else
    ``state_dict``, else ``model`` entry (or one such entry inside another:
    ``{"state_dict": {"params_ema": ...}}``), else the checkpoint itself; one that
    holds no tensors but dicts of them (``{"net_g": ..., "net_d": ...}``) gives
    theirs, named under their keys ("net_g.conv_first.weight"). A leading
    "module." (from DataParallel) is taken off each name; entries that are not
    tensors are left out. Each array is a C-contiguous copy with the tensor's
    shape (a transposed or offset view is laid out afresh); floating-point
    tensors (float16, bfloat16, float64) come back as float32, integer and bool
    tensors keep their type.

    Raises ModelError, with a one-line message naming the file, for what is no
    file's path (a file's contents or an open file, said as ``read_image`` says
    them), a file that is missing or unreadable, a device or a pipe, not a checkpoint, damaged or
    truncated, holds a tensor of a type not read here, holds no tensors, or pickles
    anything but data.
    """
    # None, a number or a bytes path met Path() as a bare TypeError, a NUL byte
    # os.stat as a bare ValueError.
    name = file_path(path, "read_weights", ModelError)
    try:
        return _read_weights(Path(name))
    except ModelError as e:
        # Names come from the file (a tensor's, a pickled global's, a zip member's) and
        # may hold a line break: the message stays one line, with them escaped.
        shown = e.escaped()
        if shown is e:
            del shown  # else held by this frame, in its traceback: a cycle, with the tensors read
            raise
        try:
            raise shown from None
        finally:
            del shown


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    try:
        # By stat, which opens nothing: a FIFO blocks until a writer comes, /dev/zero has no end.
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):
            raise ModelError(f"{path} is not a regular file (a device or a pipe): give a checkpoint file")
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a checkpoint") from None
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    if not data:
        raise ModelError(f"{path} is empty (an interrupted download or copy?)")
    if stub := stand_in(path, data):
        raise ModelError(stub)
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        tensors = _read_zip(path, data)
    elif _is_safetensors(data):
        tensors = _read_safetensors(path, data)
    elif data[:1] == b"\x80":  # a binary pickle: the legacy format's magic number comes first
        tensors = _read_legacy(path, data)
    elif len(data) > 262 and data[257:262] == b"ustar":
        raise ModelError(f"{path} is in PyTorch's oldest (tar) checkpoint format, which is not read: "
                         "load and save it again with a newer PyTorch")
    elif starts_as_param(data):  # converted already, by hand or here
        raise ModelError(f"{path} is an ncnn model already (its .param): upscale with it as it is, ",
                         Option(f"-n {shell_word(str(path))}", f"Upscaler({str(path)!r})", everywhere=True))
    else:
        param = Path(path).with_suffix(".param")
        if Path(path).suffix.lower() == ".bin" and _starts_as_param_file(param):  # an ncnn model's weights
            raise ModelError(f"{path} is the weights of the ncnn model {param}: upscale with it as it is, ",
                             Option(f"-n {shell_word(str(param))}", f"Upscaler({str(param)!r})", everywhere=True))
        if Path(path).suffix.lower() == ".onnx":  # a protobuf, with no magic number to tell it by
            raise ModelError(f"{path} is an ONNX model, not PyTorch weights: pnnx converts it to ncnn")
        raise ModelError(f"{path} is not a PyTorch (.pth) or safetensors checkpoint")
    return _state_dict(path, tensors)


def _starts_as_param_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return starts_as_param(f.read(16))
    except OSError:
        return False


# --- the pickle -------------------------------------------------------------------

@dataclass(frozen=True)
class _Storage:
    """A storage named by a pickle: its bytes are found by ``key`` once unpickled."""
    key: str
    dtype: str | None  # as in _STORAGE_DTYPES; None for a storage type not read here
    type_name: str
    view: tuple[int, int] | None = None  # (offset, size) in elements, of legacy storage views

    def __setstate__(self, state):
        _refuse_state(state)


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as the pickle describes it, before its storage's bytes are known."""
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def __setstate__(self, state):
        _refuse_state(state)


def _refuse_state(state):
    # A pickle's BUILD would otherwise write straight into a frozen dataclass's
    # __dict__, replacing a checked storage, offset or size by anything.
    raise pickle.UnpicklingError("a state given to a storage, tensor or type")


class _Inert:
    """Stands in for a harmless value of a training checkpoint (a numpy scalar, an
    argparse.Namespace): takes any arguments and state, does nothing with them."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _inert(*args, **kwargs) -> _Inert:
    return _Inert()


def _reconstructor(cls, base, state):
    # copyreg's rebuilding of a plain object (protocols 0 and 1): only of a stand-in.
    if cls is not _Inert:
        raise pickle.UnpicklingError("copyreg._reconstructor of an unknown class")
    return _Inert()


def _encode(text, encoding="latin1"):
    # How protocol 2 pickles bytes; no other codec is run.
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError("_codecs.encode with an unexpected codec")
    return codecs.encode(text, "latin1")


def _rebuild_tensor(storage, offset, size, stride, *rest):
    # torch._utils._rebuild_tensor(_v2/_v3): the arguments after the stride
    # (requires_grad, hooks, dtype, metadata) do not change the values.
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage")
    size, stride = tuple(size), tuple(stride)
    numbers = (offset, *size, *stride)
    if len(size) != len(stride) or not _dimensions(size, numbers):
        raise pickle.UnpicklingError(f"a tensor of {len(size)} dimensions with a size, stride or offset "
                                     "not read here (negative, past int64, or of too many dimensions)")
    return _TensorRef(storage, offset, size, stride)


def _dimensions(shape: tuple, numbers: tuple) -> bool:
    # As torch and numpy take them: a few int64 numbers. A shape of thousands of
    # dimensions or numbers of thousands of digits took minutes to multiply out,
    # and could not be put in a message.
    return len(shape) <= _MAX_DIMS and all(type(n) is int and 0 <= n < 1 << 63 for n in numbers)


def _rebuild_parameter(data, *rest):
    # A Parameter's values are its data's; requires_grad, hooks and state are dropped.
    return data


def _allowed_names() -> dict[tuple[str, str], object]:
    names = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
        ("torch", "Size"): tuple,
        ("torch", "device"): _inert,
        ("_codecs", "encode"): _encode,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("argparse", "Namespace"): _Inert,
    }
    # Not bytearray: bytearray(N) asks for N bytes, and no state dict holds one.
    for name in ("set", "frozenset", "tuple", "list", "dict", "complex", "slice"):
        names["builtins", name] = getattr(__import__("builtins"), name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        names[module, "scalar"] = _inert
        names[module, "_reconstruct"] = _inert
    names["numpy", "dtype"] = _Inert
    names["numpy", "ndarray"] = _Inert
    return names


_ALLOWED = _allowed_names()
_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


@dataclass(frozen=True)
class _StorageType:
    """A torch storage type or dtype a pickle names: what the tensors it marks hold."""
    name: str
    dtype: str | None  # as in _STORAGE_DTYPES; None for one not read here

    def __setstate__(self, state):
        _refuse_state(state)


class _OrderedDict(collections.OrderedDict):
    """An OrderedDict whose pickled attributes (a state dict's _metadata) are dropped:
    BUILD would copy them in anew each time a pickle repeats it."""

    def __setstate__(self, state):
        pass


class _Call:
    """A function or builtin type a pickle calls, charging the elements it copies
    (of list(x), set(x), dict(x)...) to the unpickler: the same call repeated on one
    memoized value would otherwise copy megabytes for each few bytes of pickle."""
    __slots__ = ("function", "unpickler")

    def __init__(self, function, unpickler):
        self.function, self.unpickler = function, unpickler

    def __call__(self, *args):
        sized = (str, bytes, tuple, list, dict, set, frozenset)
        self.unpickler.copied += sum(len(a) for a in args if isinstance(a, sized))
        if self.unpickler.copied > self.unpickler.allowance:
            raise pickle.UnpicklingError(f"it copies over {self.unpickler.allowance} values: not a state dict")
        return self.function(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError("a state given to a function")


class _Unpickler(pickle.Unpickler):
    """Unpickles a checkpoint's pickle, resolving only the names in _ALLOWED; a
    storage becomes a _Storage, whose bytes are read later."""

    def __init__(self, path: Path, stream: io.BytesIO):
        super().__init__(stream, encoding="utf-8")  # as torch.load reads Python 2 pickles
        self.path = path
        self.copied, self.allowance = 0, len(stream.getbuffer()) + _COPY_ALLOWANCE

    def find_class(self, module, name):
        # Python 3 writes protocol 2 (torch.save's) with Python 2's module names.
        module = _PYTHON2_MODULES.get(module, module)
        if not all(part.isidentifier() for part in f"{module}.{name}".split(".")):
            # A byte of a name damaged: no code to re-save the weights without.
            raise ModelError(f"{self.path} is damaged: its pickle names {module}.{name}, which no Python module "
                             "or class can be named")
        if (module, name) in _ALLOWED:
            found = _ALLOWED[module, name]
            if found is collections.OrderedDict:
                found = _OrderedDict
            # Classes a pickle makes with NEWOBJ (argparse.Namespace) are its stand-ins, left as they are.
            return found if found in (_Inert, complex, slice) else _Call(found, self)
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name, _STORAGE_DTYPES.get(name))
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name, _TORCH_DTYPES[name])
        raise ModelError(f"{self.path} pickles code ({module}.{name}), which is not read: "
                         "only tensors and plain data are (re-save the weights alone, or as .safetensors)")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, legacy view metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"an unknown persistent id {pid!r:.60}")
        view = pid[5] if len(pid) == 6 else None
        if view is not None:  # (view key, offset, size) of a storage view, before torch 0.4
            if not (isinstance(view, tuple) and len(view) == 3
                    and all(type(n) is int and n >= 0 for n in view[1:])):
                raise pickle.UnpicklingError("an unknown storage view")
            view = view[1:]
        return _Storage(str(pid[2]), pid[1].dtype, pid[1].name, view)


def _check_memo(stream: io.BytesIO) -> None:
    """Refuses a pickle that stores into a memo slot it cannot have: the C unpickler
    grows its memo to twice the largest index asked for and fills it, so one index
    of 10^8 in a damaged file costs seconds and gigabytes before any error. Each
    store takes at least two bytes of the pickle, and slots are numbered from 0."""
    start = stream.tell()
    limit = len(stream.getbuffer()) - start
    for op, arg, _ in pickletools.genops(stream):
        if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not 0 <= arg < limit:
            raise pickle.UnpicklingError(f"a memo slot {arg}, more than {limit} bytes of pickle can number")
    stream.seek(start)


def _unpickle(path: Path, stream: io.BytesIO, what: str):
    try:
        _check_memo(stream)
        return _Unpickler(path, stream).load()
    except _BAD_PICKLE as e:
        state = "truncated" if isinstance(e, EOFError) or "truncated" in str(e) else "damaged or not a checkpoint"
        raise ModelError(f"{path} is {state}: {what} cannot be read ({e or type(e).__name__})") from None


# --- the three formats ----------------------------------------------------------

def _read_zip(path: Path, data: bytes) -> dict:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, NotImplementedError):
        # zipfile's words ("File is not a zip file") say no more than these.
        raise ModelError(f"{path} is a damaged zip file (truncated?)") from None
    # torch.save stores its members as they are; a zip tool may deflate them, which
    # trained weights (float noise) survive only a little smaller. Members that would
    # unpack to many times the file are a zip bomb, not weights.
    unpacked = sum(info.file_size for info in archive.infolist() if info.compress_type != zipfile.ZIP_STORED)
    if unpacked > _MAX_UNPACKING * len(data):
        raise ModelError(f"{path}: its compressed members would unpack to {_bytes(unpacked)}, "
                         f"{unpacked // len(data)} times the file: not a checkpoint")
    # A TorchScript archive has a data.pkl too, of the module's classes: told apart first.
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise ModelError(f"{path} is a TorchScript archive, not a checkpoint: save the model's state_dict()")
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        # A model as often downloaded: a zip holding the checkpoint, or the ncnn model.
        refuse_zip_of_models(path, names)
        raise ModelError(f"{path} is a zip file but not a PyTorch checkpoint (no data.pkl in it)")
    prefix = pickles[0][: -len("data.pkl")]

    def member(name: str) -> bytes:
        try:
            return archive.read(prefix + name)
        except KeyError:
            raise ModelError(f"{path} is damaged: {prefix}{name} is missing from it") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
            # zlib's and LZMA's errors (bzip2's is an OSError): a member stored as it is, but
            # said to be compressed.
            raise ModelError(f"{path} is damaged (truncated?): cannot read {prefix}{name}: {e}") from None
        except (NotImplementedError, RuntimeError) as e:  # an unknown compression or zip version, or encryption
            raise ModelError(f"{path}: {prefix}{name} cannot be read ({e}): not a zip as torch.save writes it") from None

    order = "<"
    if prefix + "byteorder" in names:
        order = {b"little": "<", b"big": ">"}.get(member("byteorder").strip())
        if order is None:
            raise ModelError(f"{path} has an unknown byte order {member('byteorder')[:20]!r}")
    obj = _unpickle(path, io.BytesIO(member("data.pkl")), "data.pkl")
    # Tensors sharing a storage share the one read of it.
    return _resolve(path, obj, functools.lru_cache(maxsize=None)(lambda key: member(f"data/{key}")), order)


def _read_legacy(path: Path, data: bytes) -> dict:
    # Five pickles one after another, then each listed storage as its length in
    # elements (8 bytes) and its bytes. Each pickle is read from one stream of the
    # whole file, so the stream stands where the next begins.
    stream = io.BytesIO(data)
    if _unpickle(path, stream, "its header") != _LEGACY_MAGIC:
        raise ModelError(f"{path} is a pickle but not a PyTorch checkpoint (no PyTorch magic number)")
    if _unpickle(path, stream, "its header") != _LEGACY_PROTOCOL:
        raise ModelError(f"{path} is a PyTorch checkpoint of an unknown legacy version")
    info = _unpickle(path, stream, "its header")
    order = ">" if isinstance(info, dict) and info.get("little_endian") is False else "<"
    obj = _unpickle(path, stream, "its pickle")
    keys = _unpickle(path, stream, "its list of storages")
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise ModelError(f"{path} is damaged: its list of storages is not a list of names")

    types = {ref.storage.key: ref.storage for ref in _refs(obj)}
    storages, position = {}, stream.tell()
    for key in keys:
        if key not in types:
            raise ModelError(f"{path} is damaged: storage {key} is listed but no tensor uses it")
        if types[key].dtype is None:  # its length in bytes is unknown, and so where the next begins
            raise ModelError(f"{path}: it holds a tensor of type {types[key].type_name}, which is not read")
        head = data[position:position + 8]
        if len(head) < 8:
            raise ModelError(f"{path} is truncated: storage {key} is missing")
        count = int.from_bytes(head, "little" if order == "<" else "big")
        end = position + 8 + count * _itemsize(types[key].dtype)
        if end > len(data):
            raise ModelError(f"{path} is truncated: storage {key} needs {_bytes(end - len(data))} "
                             "more than the file has")
        storages[key] = data[position + 8:end]
        position = end

    def storage(key: str) -> bytes:
        if key not in storages:
            raise ModelError(f"{path} is damaged: storage {key} is used but not in the file")
        return storages[key]
    return _resolve(path, obj, storage, order)


def checkpoint_suffix(data: bytes) -> str | None:
    """The suffix of the weights ``data``, a file's first kilobytes, begin, in a
    format read here: ".pth" for PyTorch's zip (its pickle named as torch.save names
    it) or the legacy format's binary pickle, ".safetensors"; else None."""
    if _is_safetensors(data):
        return ".safetensors"
    zipped = data.startswith(b"PK\x03\x04") and b"data.pkl" in data[:1024]
    return ".pth" if zipped or data[:2] == b"\x80\x02" else None


def _is_safetensors(data: bytes) -> bool:
    # The header's length, then its JSON; a truncated one is still told apart.
    return data[8:9] == b"{" and 2 <= int.from_bytes(data[:8], "little") <= _MAX_HEADER


def _read_safetensors(path: Path, data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little")
    if 8 + size > len(data):
        raise ModelError(f"{path} is truncated: its safetensors header ends {_bytes(8 + size - len(data))} "
                         "past the end of the file")
    try:
        header = json.loads(data[8:8 + size])
    except (ValueError, RecursionError) as e:  # RecursionError: arrays nested thousands deep
        raise ModelError(f"{path} is a damaged safetensors file: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path} is a damaged safetensors file: its header is not a JSON object")
    body = memoryview(data)[8 + size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            if not _dimensions(shape, (*shape, begin, end)) or not isinstance(dtype, str):
                raise ValueError
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"{path} is a damaged safetensors file: tensor {name}'s entry is malformed") from None
        kind = _SAFETENSORS_DTYPES.get(dtype)
        if kind is None:
            raise ModelError(f"{path}: tensor {name} is of type {dtype}, which is not read")
        needed = math.prod(shape) * _itemsize(kind)
        if end - begin != needed:
            raise ModelError(f"{path} is a damaged safetensors file: tensor {name} has {end - begin} bytes, "
                             f"its shape needs {needed}")
        if end > len(body):
            raise ModelError(f"{path} is truncated: tensor {name} ends {_bytes(end - len(body))} "
                             "past the end of the file")
        try:
            tensors[name] = _as_result(np.frombuffer(body[begin:end], dtype=_dtype(kind, "<")).reshape(shape), kind)
        except ValueError:  # an empty shape of too many dimensions or of a size past memory
            raise ModelError(f"{path} is a damaged safetensors file: "
                             f"tensor {name}'s shape {shape} is too large") from None
    return tensors


# --- from storages to arrays ------------------------------------------------------

def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count} bytes"


def _itemsize(kind: str) -> int:
    return 2 if kind == "bf16" else np.dtype(kind).itemsize


def _dtype(kind: str, order: str) -> np.dtype:
    return np.dtype(order + ("u2" if kind == "bf16" else kind))


def _as_result(array: np.ndarray, kind: str) -> np.ndarray:
    """A copy of ``array`` in the type read_weights returns: floats as float32."""
    if kind == "bf16":  # bfloat16 is float32's upper half
        return (array.astype(np.uint32, order="C") << 16).view(np.float32)
    if array.dtype.kind == "f":
        return array.astype(np.float32, order="C")
    return array.astype(array.dtype.newbyteorder("="), order="C")


def _refs(obj):
    """The tensors in ``obj`` (nested dicts, lists, tuples), each once."""
    # A stack, not recursion: a pickle may nest deeper than Python's recursion limit.
    stack, seen = [obj], set()
    while stack:
        value = stack.pop()
        if isinstance(value, _TensorRef):
            yield value
        elif isinstance(value, (dict, list, tuple)) and id(value) not in seen:
            seen.add(id(value))
            stack.extend(value.values() if isinstance(value, dict) else value)


def _resolve(path: Path, obj, storage_bytes, order: str) -> dict[str, np.ndarray]:
    """The tensors of the state dict in ``obj``, as arrays by name."""
    chosen = _choose(obj)
    refs = _tensors_in(chosen) if isinstance(chosen, dict) else {}
    if not refs and isinstance(chosen, dict):
        # a dict of networks ({"net_g": ..., "net_d": ...}): named under their keys
        refs = {f"{key}.{name}": ref for key, inner in chosen.items() if isinstance(key, str)
                and isinstance(inner, dict) for name, ref in _tensors_in(inner).items()}
    if not refs and next(_refs(obj), None) is not None:  # an optimizer's state alone, say
        raise ModelError(f"{path} holds tensors, but no state dict of a model's weights where one is kept "
                         f"(at its top, or under {', '.join(_STATE_DICT_KEYS)} or a network's name)")
    return {name: _array(path, name, ref, storage_bytes, order) for name, ref in refs.items()}


def _tensors_in(d: dict) -> dict:
    return {name: ref for name, ref in d.items() if isinstance(ref, _TensorRef) and isinstance(name, str)}


def _choose(obj, depth: int = 2):
    # The first of the usual keys that holds tensors: BasicSR's checkpoints may keep
    # an empty "params" beside "params_ema", and training ones a "model" of options.
    # One usual key may hold another ({"state_dict": {"params_ema": ...}}).
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if not isinstance(inner, dict):
                continue
            if any(isinstance(v, _TensorRef) for v in inner.values()):
                return inner
            if depth > 1 and (deeper := _choose(inner, depth - 1)) is not inner:
                return deeper
    return obj


def _array(path: Path, name: str, ref: _TensorRef, storage_bytes, order: str) -> np.ndarray:
    kind = ref.storage.dtype
    if kind is None:
        raise ModelError(f"{path}: tensor {name} is of type {ref.storage.type_name}, which is not read")
    data = storage_bytes(ref.storage.key)
    itemsize = _itemsize(kind)
    count = len(data) // itemsize
    offset = ref.offset
    if ref.storage.view is not None:
        view_offset, view_size = ref.storage.view
        if view_offset + view_size > count:
            raise ModelError(f"{path} is damaged: a storage view of tensor {name} lies past its storage")
        offset, count = offset + view_offset, view_offset + view_size
    last = offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if 0 not in ref.size and last >= count:
        raise ModelError(f"{path} is damaged (truncated?): tensor {name} needs {last + 1} elements "
                         f"of its storage, which has {count}")
    if math.prod(ref.size) > count:
        # A view repeating its storage (a stride of 0) is no trained weight, and a few
        # bytes of it could ask for any amount of memory.
        raise ModelError(f"{path} is damaged: tensor {name} of size {ref.size} holds more elements than "
                         f"its storage ({count})")
    storage = np.frombuffer(data, dtype=_dtype(kind, order), count=count)
    try:
        if 0 in ref.size:
            return _as_result(np.empty(ref.size, dtype=storage.dtype), kind)
        view = np.lib.stride_tricks.as_strided(storage[offset:], shape=ref.size,
                                               strides=[s * itemsize for s in ref.stride], writeable=False)
        return _as_result(view, kind)
    except (ValueError, MemoryError):  # a size past memory (repeated by a stride of 0, or empty)
        raise ModelError(f"{path} is damaged: tensor {name} of size {ref.size} is too large") from None


def _state_dict(path: Path, tensors: dict) -> dict[str, np.ndarray]:
    weights = {(name[len("module."):] if name.startswith("module.") else name): array
               for name, array in tensors.items()}
    if not weights:
        raise ModelError(f"{path} holds no tensors: it is a checkpoint, but not of a model's weights")
    return weights
