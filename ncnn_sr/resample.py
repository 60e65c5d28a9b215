"""Resampling an upscaled picture to the size the user asked for (Lanczos)."""
from __future__ import annotations

import decimal
import math
import numbers
from fractions import Fraction

import numpy as np
from PIL import Image

from .choices import MAX_SIDE
from .errors import InputError, SettingError, describe, with_article
from .pixels import quantize, to_float
from .typed_numbers import checked_scale


def target_size(height: int, width: int, scale: float | None = None,
                out_width: int | None = None, out_height: int | None = None) -> tuple[int, int]:
    """(height, width) wanted for a picture: from a factor, or a width and/or height
    (one alone keeps the aspect ratio). A side that comes out between two whole
    numbers is rounded to the nearer, a half up (3 px at 1.5 is 5, as 5 px is 8).
    Every size is at least 1 and at most ``MAX_SIDE``: a side that would round to 0
    is an InputError, not 1 (which changed the picture's shape without a word)."""
    scale, out_width, out_height = checked_resize(scale, out_width, out_height)
    if out_width is not None or out_height is not None:
        if out_width is None:
            out_width = _half_up(Fraction(width * out_height, height))
            if out_width < 1:
                raise InputError(f"{with_article(f'{width}x{height}')} picture {_pixels(out_height)} tall would be under 1 pixel "
                                 "wide: give a width too, to stretch it")
        if out_height is None:
            out_height = _half_up(Fraction(height * out_width, width))
            if out_height < 1:
                raise InputError(f"{with_article(f'{width}x{height}')} picture {_pixels(out_width)} wide would be under 1 pixel "
                                 "tall: give a height too, to stretch it")
        return _checked(out_height, out_width)
    if scale is None:
        raise InputError("scale must be a positive number, got None")
    if max(height, width) * scale > MAX_SIDE:
        raise InputError(f"{with_article(f'{width}x{height}')} picture at scale {scale:g} is too large: "
                         f"at most {MAX_SIDE} pixels a side")
    # The decimal the scale was written as (repr is the shortest that reads back as the
    # same float): 25 px at 0.58 is 14.5, which rounds up, where the float product is
    # 14.499999999999998.
    if scale.is_integer() and type(height) is int and type(width) is int:
        # The model's own scale, as every picture of a folder run asks: exact as it is
        # (parsing its decimal took 17 us, 4 times a picture).
        sides = height * int(scale), width * int(scale)
    else:
        exact = Fraction(repr(scale))
        sides = _half_up(height * exact), _half_up(width * exact)
    if min(sides) < 1:
        # -s 1e-300 gave a 1x1 picture. A side rounds to 1 from half a pixel.
        least = decimal.Context(prec=3, rounding=decimal.ROUND_CEILING).divide(1, 2 * min(height, width))
        which = "a side" if max(sides) < 1 else "tall" if sides[0] < 1 else "wide"
        raise InputError(f"{with_article(f'{width}x{height}')} picture at scale {scale:g} would be under 1 pixel {which}: "
                         f"give a scale of at least {least:f}")
    return _checked(*sides)


def checked_resize(scale: float | None = None, out_width: int | None = None,
                   out_height: int | None = None) -> tuple[float | None, int | None, int | None]:
    """The arguments of ``target_size`` past its picture's size, as Python numbers
    (numpy's small types overflow in its arithmetic: a width of np.uint8(80) gave a
    100 px tall picture 2 px instead of 200); a SettingError unless they make a
    setting whatever the picture: a positive scale, or a width and/or height of 1 to
    ``MAX_SIDE`` pixels, or none of them."""
    scale = checked_scale(scale)
    for name, value in (("width", out_width), ("height", out_height)):
        if value is not None and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
            raise SettingError(f"{name} must be a whole number of pixels, got {describe(value)}")
    out_width = None if out_width is None else int(out_width)
    out_height = None if out_height is None else int(out_height)
    if out_width is not None or out_height is not None:
        if scale is not None:
            raise SettingError("give a scale or a target width/height, not both")
        # Named: given both, "target size" left the caller to find which was wrong.
        for name, v in (("width", out_width), ("height", out_height)):
            if v is not None and v < 1:
                raise SettingError(f"{name} must be at least 1 pixel, got {v}")
            if v is not None and v > MAX_SIDE:  # before the division, which overflowed on 10**400
                raise SettingError(f"{name} must be at most {MAX_SIDE} pixels a side, got {v}")
    return scale, out_width, out_height


def _pixels(count: int) -> str:
    return f"{count} pixel{'' if count == 1 else 's'}"


def _half_up(value: Fraction) -> int:
    """The nearest whole number, a half rounded up: round() takes a half to the even
    neighbour, so 3 px at 1.5 gave 4 where 5 px gave 8."""
    return math.floor(value + Fraction(1, 2))


def _checked(height: int, width: int) -> tuple[int, int]:
    if max(height, width) > MAX_SIDE:
        raise InputError(f"{with_article(f'{width}x{height}')} result is too large: at most {MAX_SIDE} pixels a side")
    return height, width


def resize_bytes(native: tuple[int, int], height: int, width: int, channels: int, itemsize: int) -> int:
    """Peak bytes ``resize`` takes to turn a ``native`` (height, width) picture into a
    ``height`` × ``width`` one, result included: the result; one channel of the input
    in float and Pillow's copy; one of the output in float, its copy and its rounding;
    with alpha, the alpha channel in float at both sizes and the division's output."""
    alpha = channels == 4
    return (height * width * (channels * itemsize + 12 + (8 if alpha else 0))
            + native[0] * native[1] * (8 + (4 if alpha else 0)))


def _lanczos(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(plane).resize((width, height), Image.LANCZOS))


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An H×W×C uint8/uint16 picture resized with Lanczos, same C and dtype.

    One channel at a time, in float: a whole float copy of a large result (16000x12000
    RGB) took 2.3 GB, where one channel takes a third. Colour is weighted by alpha
    while resampling (and divided back after), so fully transparent pixels do not
    bleed their hidden colour into visible ones.
    """
    if image.shape[:2] == (height, width):
        return image
    channels = image.shape[2]
    out = np.empty((height, width, channels), image.dtype)
    alpha = alpha_out = None
    if channels == 4:
        alpha = to_float(image[:, :, 3])
        alpha_out = np.clip(_lanczos(alpha, height, width), 0, 1)
        out[:, :, 3] = quantize(alpha_out, image.dtype)
    for c in range(3 if alpha is not None else channels):
        plane = to_float(image[:, :, c])
        if alpha is None:
            out[:, :, c] = quantize(_lanczos(plane, height, width), image.dtype)
            continue
        plane *= alpha
        weighted = _lanczos(plane, height, width)
        del plane
        out[:, :, c] = quantize(np.divide(weighted, alpha_out, out=np.zeros_like(weighted), where=alpha_out > 1e-6),
                                image.dtype)
    return out
