"""Settings fixed when an object is made, read back as its attributes."""
from __future__ import annotations


class Fixed:
    """A setting read as an attribute, kept in the owner's ``_name``; set, an
    AttributeError that says to make another. Set later, such settings were taken
    unchecked (an Upscaler's tta="no" turned TTA on), and skipped what the
    constructor derives from them (a tile_pad's rounding to the network's blocks, a
    pipeline's count of proc workers from its lanes), while other threads read them."""

    def __init__(self, doc: str, argument: str | None = None):
        self.__doc__, self._argument = doc, argument

    def __set_name__(self, owner, name: str) -> None:
        self._name, self._slot = name, f"_{name}"
        self._argument = self._argument or name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self._slot)

    def __set__(self, obj, value) -> None:
        kind = type(obj).__name__
        article = "an" if kind[0] in "AEIOU" else "a"
        raise AttributeError(f"{article} {kind}'s {self._name} is fixed when it is made: "
                             f"make another with {self._argument}=")
