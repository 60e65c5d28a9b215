"""Numbers as a user types them on a command line: ASCII digits only; and the
scale a library caller gives.

Python's int(), float() and Fraction() also take "2_0" (twenty) and other scripts'
digits ("\u0662"), so a typo ran at another scale, tile, rate or device without a
word. The C++ tool reads its flags with atoi/atof, which take neither.
"""
from __future__ import annotations

import decimal
import math
import numbers
import re
from fractions import Fraction

from .errors import SettingError, describe

_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Longer than any flag's number: int() refuses past 4300 digits (a ValueError, not
# None), and Fraction("1e10000000") spends seconds building its digits.
_MOST_DIGITS, _MOST_EXPONENT = 4000, 400


def whole_number(text: str) -> int | None:
    """``text``, spaces around it aside, as a whole number with an optional sign;
    None for anything else."""
    text = text.strip()
    return int(text) if _WHOLE.fullmatch(text) and len(text) <= _MOST_DIGITS else None


def decimal_number(text: str) -> float | None:
    """``text``, spaces around it aside, as a decimal number (2, 2.5, .5, 1e3); None
    for anything else, nan and inf included."""
    text = text.strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def ratio(text: str) -> Fraction | None:
    """``text`` as an exact decimal (29.97) or a ratio of whole numbers (24000/1001);
    None for anything else, a zero denominator included."""
    top, slash, bottom = text.strip().partition("/")
    parts = (top, bottom) if slash else (top,)
    decimals = [_DECIMAL.fullmatch(p.strip()) for p in parts]
    if not all(decimals) or len(text) > _MOST_DIGITS \
            or any(d[2] and abs(int(d[2][1:])) > _MOST_EXPONENT for d in decimals):
        return None
    if slash and not all(_WHOLE.fullmatch(p.strip()) for p in parts):
        return None
    try:
        return Fraction(text.strip().replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def checked_scale(scale) -> float | None:
    """``scale`` as a float, None as None; a SettingError unless it is a positive,
    finite number. Any real number but a bool is one (ints, floats, Fractions,
    numpy's), and a Decimal too, which the numbers module does not count as real but
    which is how an exact decimal such as 1.5 is written: it was refused where
    Fraction(3, 2) was taken. A string ("2") is not, as no other number setting
    takes one. The wrong kind and the wrong value are told apart in the same words
    wherever a scale is given."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (numbers.Real, decimal.Decimal)):
        raise SettingError(f"scale must be a number, got {describe(scale)}")
    try:
        value = float(scale)
    except OverflowError:  # an int or Fraction past float's range
        value = math.inf
    except ValueError:  # a Decimal's signalling NaN
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        text = str(scale)
        raise SettingError(f"scale must be a positive number, got {text if len(text) <= 60 else f'{value:g}'}")
    return value
