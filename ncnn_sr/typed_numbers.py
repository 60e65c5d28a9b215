"""Numbers as a user types them on a command line: ASCII digits only.

Python's int(), float() and Fraction() also take "2_0" (twenty) and other scripts'
digits ("\u0662"), so a typo ran at another scale, tile, rate or device without a
word. The C++ tool reads its flags with atoi/atof, which take neither.
"""
from __future__ import annotations

import re
from fractions import Fraction

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
