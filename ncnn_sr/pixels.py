"""Pixel arithmetic shared by the engine and the resampler: depth, float conversion,
rounding back, and colour to grey."""
from __future__ import annotations

import math
import os

import numpy as np

from .errors import InputError, with_article

SUPPORTED_DTYPES = (np.uint8, np.uint16)
# ITU-R BT.601 luma, as Pillow and OpenCV turn RGB into grey.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def check_image(image: np.ndarray) -> np.ndarray:
    """An H×W×C array with C in {1,3,4} and dtype uint8 or uint16; an H×W array is
    taken as H×W×1. Anything else is an InputError."""
    if not isinstance(image, np.ndarray):
        if type(image).__module__.startswith("PIL.") and isinstance(getattr(image, "mode", None), str):
            raise InputError(f"expected a numpy array, got a Pillow {image.mode} image: "
                             f"{_pillow_pixels(image)}")
        raise InputError(f"expected a numpy array, got {_not_array(image)}")
    image = np.asarray(image)  # a subclass (np.matrix) cannot take a third axis
    if image.dtype.kind == "u" and not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))  # big-endian uint16, as in 16-bit PNGs
    given = image.shape  # what messages name: not the axis added to a grey H×W array
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim == 3 and image.shape[2] == 2:
        raise InputError(f"expected an H×W×C array with C in 1, 3 or 4, got shape {image.shape}: grey with "
                         "alpha goes in as RGBA, image[:, :, [0, 0, 0, 1]]")
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f"expected an H×W×C array with C in 1, 3 or 4, got shape {image.shape}{_layout(image.shape)}")
    if image.dtype not in SUPPORTED_DTYPES:
        raise InputError(f"expected uint8 or uint16 pixels, got {image.dtype}{_conversion(image)}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"picture of shape {given} has no pixels")
    return image


def _not_array(value) -> str:
    """What ``value``, given in a picture's place, is, and how its pixels go in, for
    a message: a type's bare name told "got Tensor", or "got ndarray" for CuPy's."""
    kind = type(value)
    if isinstance(value, (list, tuple)):
        return f"{kind.__name__}: give np.asarray(pixels, np.uint8)"
    if isinstance(value, (str, os.PathLike)):
        return f"{'a path' if isinstance(value, os.PathLike) else kind.__name__}: read the picture with read_image(path)"
    # A picture fetched over the web, or opened, is a file's bytes, not its pixels:
    # read_image decodes them as the commands do (orientation, palettes, 16 bits).
    if isinstance(value, memoryview) and value.ndim > 1:
        # Rows and columns: another library's pixel buffer, not a file's bytes.
        return f"a memoryview of shape {value.shape}: give np.asarray(image)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (f"{memoryview(value).nbytes} bytes ({with_article(kind.__name__)}): a file's contents? save them to a file "
                "and read the picture with read_image(path)")
    if hasattr(value, "read"):
        name = getattr(value, "name", None)
        if isinstance(name, (str, bytes)) and name:
            return f"an open file: read the picture with read_image(path), its path {os.fsdecode(name)!r}"
        return (f"an open file with no name ({with_article(kind.__name__)}): save its contents to a file and read the "
                "picture with read_image(path)")
    if isinstance(value, np.generic):
        return f"a numpy {value.dtype} scalar ({value.item()!r}): give an H×W×C array"
    package = kind.__module__.split(".")[0]
    name = kind.__name__ if package == "builtins" else with_article(f"{package}.{kind.__name__}")
    if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        return f"{name}: give np.asarray(image)"  # a torch tensor, an xarray, a JAX array
    if hasattr(value, "__cuda_array_interface__"):
        return f"{name}, in a GPU's memory: give its pixels as a numpy array (CuPy's image.get())"
    return name


def _layout(shape: tuple[int, ...]) -> str:
    """How an array of ``shape`` in another usual layout goes in, as the end of a
    message: PyTorch's C×H×W (a tensor's .numpy()) and batches N×H×W×C or N×C×H×W."""
    colours = (1, 3, 4)
    if len(shape) == 3 and shape[0] in colours:
        return ": a C×H×W picture (PyTorch's layout) goes in as image.transpose(1, 2, 0)"
    if len(shape) != 4 or (shape[3] not in colours and shape[1] not in colours):
        return ""
    one = "image[0]" if shape[0] == 1 else "image[i]"
    if shape[3] not in colours:
        one += ".transpose(1, 2, 0)"
    return f": {'a batch of one' if shape[0] == 1 else 'each picture of a batch'} goes in as {one}"


_READ = ", or read the file with read_image"


def _pillow_pixels(image) -> str:
    """How the pixels of the Pillow ``image`` go in, for a message."""
    mode = image.mode
    # convert() clips deeper grey to 0..255 rather than scaling it: a 16-bit grey PNG
    # (I;16) given as convert("L") came out white wherever it was past level 255.
    if mode.startswith("I;16"):
        return f"give np.asarray(image), its 16-bit grey as it is{_READ}"
    if mode == "I":
        return f"give np.asarray(image).astype(np.uint16) where its values are 16-bit grey (0 to 65535){_READ}"
    if mode == "F":
        # read_image refuses float pixels too
        return "float pixels, whose range only you know: give them scaled to np.uint16 (0 to 65535)"
    # Converted as read_image reads them: alpha (a transparent colour too) and grey
    # kept, neither of which convert("RGB") keeps: grey given as colour is tinted by
    # the network. np.asarray of the others gives their mode's own values: a P
    # image's palette indices (taken as grey), a CMYK one's inks (taken as RGBA).
    transparent = "transparency" in getattr(image, "info", {})
    if mode in ("RGB", "RGBA", "L") and not transparent:
        return f"give np.asarray(image){_READ}"
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or transparent:
        return f'give np.asarray(image.convert("RGBA")){_READ}'
    return f'give np.asarray(image.convert("{"L" if mode == "1" else "RGB"}")){_READ}'


def _conversion(image: np.ndarray) -> str:
    """How the pixels of ``image`` become ones the engine takes, as the end of a
    message: float pixels and the int64 of np.array of Python ints are the usual
    mistakes."""
    dtype = image.dtype
    if dtype.kind == "f":
        return _float_conversion(image)
    if dtype.kind == "b":
        return ": a mask is black and white as image.astype(np.uint8) * 255"
    if dtype.kind in "iu":
        return ": image.astype(np.uint8) keeps values 0 to 255, np.uint16 ones to 65535"
    return ""


# Values looked at to tell the range of float pixels.
_RANGE_SAMPLE = 1 << 20


def _float_conversion(image: np.ndarray) -> str:
    """The conversion of float pixels, by the range they are in: ones of 0 to 255
    told to be multiplied by 255 wrapped round in the cast (200.0 became 56)."""
    # A sample of a large picture tells its range (on an error path, and the array
    # may be a huge broadcast); fmax passes NaN over.
    step = max(1, math.isqrt(image.size // _RANGE_SAMPLE))
    sample = image[::step, ::step].ravel()
    top = float(np.fmax.reduce(sample)) if sample.size else 0.0
    top = 0.0 if math.isnan(top) else top
    if top <= 1:
        return ": float pixels in [0, 1] convert with (image * 255).round().astype(np.uint8), or * 65535 to np.uint16"
    if top <= 255:
        return f": float pixels of 0 to 255 (these reach {top:g}) convert with image.round().astype(np.uint8)"
    if top <= 65535:
        return f": float pixels of 0 to 65535 (these reach {top:g}) convert with image.round().astype(np.uint16)"
    return f": float pixels reaching {top:g}, whose range only you know: give them scaled to np.uint16 (0 to 65535)"


def max_value(dtype: np.dtype) -> int:
    return int(np.iinfo(dtype).max)


def to_eight_bit(image: np.ndarray) -> np.ndarray:
    """uint16 pixels as the nearest uint8 (÷257, rounded); uint8 as they are."""
    if image.dtype == np.uint8:
        return image
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """Pixels as float32 in [0, 1]. Several channels come back as an H×W×C view of
    C×H×W planes, the layout ncnn takes: handing them to a network then costs no
    strided copy (half the host time of a 532 px window's input)."""
    scale = np.float32(1.0 / max_value(image.dtype))
    if image.ndim != 3 or image.shape[2] == 1:
        return image.astype(np.float32) * scale
    planes = np.empty((image.shape[2], *image.shape[:2]), np.float32)
    for c in range(image.shape[2]):
        np.multiply(image[:, :, c], scale, out=planes[c], dtype=np.float32)
    return planes.transpose(1, 2, 0)


def quantize(values: np.ndarray, dtype: np.dtype, out: np.ndarray | None = None) -> np.ndarray:
    """Float pixels in [0, 1] back to integers: clip, ×max + 0.5, floor, as the
    reference tool rounds. Written into ``out`` (of ``dtype``) where given: a copy of
    the integers into the picture cost as much as the rounding of an 8-bit output."""
    top = max_value(dtype)
    if out is None:
        out = np.empty(values.shape, dtype)
    if values.ndim == 3 and values.shape[2] > 1 and values.strides[2] > values.strides[0]:
        # Channel planes seen as H×W×C (a network's C×H×W output, transposed):
        # plane by plane, each read in order, about twice as fast as the strided
        # whole (2048x2048x3: 11 against 20 ms), in one buffer reused.
        buffer = None
        for c in range(values.shape[2]):
            buffer = _rounded(values[:, :, c], top, buffer)
            out[:, :, c] = buffer
        return out
    out[...] = _rounded(values, top)
    return out


def quantize_into(values: np.ndarray, channels: int, into: np.ndarray) -> None:
    """Float output (RGB, plus alpha if any), rounded into ``into``, a box of the
    output picture, whose ``channels`` may be one: grey by luma of the colour as it is
    written, clipped: the network overshoots at sharp edges, and the luma of those
    values was up to 12 levels off the colour output's (the C++ code's RGB)."""
    quantize(to_gray(np.clip(values[:, :, :3], 0, 1)) if channels == 1 else values, into.dtype, into)


def _rounded(values: np.ndarray, top: int, buffer: np.ndarray | None = None) -> np.ndarray:
    """×top + 0.5, clipped to [0, top], in float32 (in ``buffer`` where given): what
    the cast to integers floors."""
    buffer = np.multiply(values, np.float32(top), out=buffer, dtype=np.float32)
    buffer += np.float32(0.5)
    np.clip(buffer, 0, top, out=buffer)
    return buffer


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 float to H×W×1 float by BT.601 luma."""
    return (rgb @ LUMA)[:, :, None]


# Rows at a time the grey of a colour picture is worked out in: its 32-bit
# intermediates stay a few MB however large the picture.
_GREY_ROWS = 256


def is_grey_colour(image: np.ndarray) -> bool:
    """Whether the H×W×3 or H×W×4 ``image`` is grey: equal R, G and B everywhere."""
    rows = range(0, image.shape[0], _GREY_ROWS)
    return all((band[:, :, 0] == band[:, :, 1]).all() and (band[:, :, 1] == band[:, :, 2]).all()
               for band in (image[r:r + _GREY_ROWS] for r in rows))


def make_grey(image: np.ndarray) -> None:
    """Sets the R, G and B of the integer H×W×3 or H×W×4 ``image`` to its luma by
    Pillow's weights (its convert("L"): 19595, 38470 and 7471 in 65536, so that equal
    channels keep their value), in place."""
    for r in range(0, image.shape[0], _GREY_ROWS):
        band = image[r:r + _GREY_ROWS]
        # At most 65535 × 65536 + 32768: 32 bits hold it, at 16 bits a sample too.
        grey = band[:, :, 0] * np.uint32(19595)
        grey += band[:, :, 1] * np.uint32(38470)
        grey += band[:, :, 2] * np.uint32(7471)
        grey += np.uint32(32768)
        grey >>= 16
        band[:, :, :3] = grey[:, :, None]
