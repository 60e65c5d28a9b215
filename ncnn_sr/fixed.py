"""Settings fixed when an object is made, read back as its attributes."""
from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect


def _owner(obj) -> str:
    """``obj``'s kind as the refusals name it: "this Upscaler", "this Pipeline". Not
    with an article: one chosen by the name's first letter read wrong for a user's
    subclass ("an U", "an Unit", "a HDUpscaler"), where the name's sound decides."""
    return f"this {type(obj).__name__}"


def _refused(obj, name: str, argument: str) -> AttributeError:
    return AttributeError(f"{_owner(obj)}'s {name} is fixed when it is made: make another with {argument}=")


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
        raise _refused(obj, self._name, self._argument)

    def __delete__(self, obj) -> None:
        # Without it, Python's refusal said only "__delete__".
        raise _refused(obj, self._name, self._argument)


class ReadOnly(property):
    """A property read back only, that is no argument of the constructor (an
    Upscaler's scale, the model's); set, an AttributeError that says what it is and
    what to do instead, where a property's own said only that it "has no setter"."""

    def __init__(self, fget, instead: str):
        super().__init__(fget)
        self._instead = instead

    def __set__(self, obj, value) -> None:
        raise AttributeError(f"{_owner(obj)}'s {self.fget.__name__} {self._instead}")


def read_only(instead: str):
    """Makes a method a ReadOnly property, refused when set with ``instead``: "is its
    model's: make another with another model=" after "this Upscaler's scale"."""
    return lambda fget: ReadOnly(fget, instead)


@functools.lru_cache(maxsize=None)
def _arguments(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.__init__).parameters) - {"self"}


class FixedArguments:
    """Refuses, as a Fixed setting is refused, setting an argument of the
    constructor that the object keeps under another name (an Upscaler's precision, a
    Pipeline's scale): that made an attribute nothing reads, and the object went on
    as it was made, without a word. A Fixed setting, and a property with a setter
    (an Upscaler's tile), are left to themselves."""

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_") and name in _arguments(type(self)):
            held = getattr(type(self), name, None)
            if not isinstance(held, Fixed) and not (isinstance(held, property) and held.fset is not None):
                raise _refused(self, name, name)
        super().__setattr__(name, value)


def _declared(cls: type, name: str) -> bool:
    """Whether ``cls`` or a class it is made from declares ``name``: as a class
    attribute, a property or a method, or annotated alone (``note: str``)."""
    return hasattr(cls, name) or any(name in inspect.get_annotations(c) for c in cls.__mro__)


def _settable(cls: type) -> list[str]:
    """The public properties of ``cls`` that may be set (an Upscaler's tile)."""
    return sorted(name for name in dir(cls) if not name.startswith("_") and type(getattr(cls, name)) is property
                  and getattr(cls, name).fset is not None)


def _undeclared(obj, name: str) -> AttributeError:
    cls = type(obj)
    names = {n for n in dir(cls) if not n.startswith("_")} | _arguments(cls)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.7) or \
        difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.7)
    said = f"{_owner(obj)} has no setting {name!r}"
    if close:
        return AttributeError(f"{said}: did you mean {close[0]!r}?")
    settable = _settable(cls)
    # A Pipeline has none: saying so spares a look for the setting's right name.
    return AttributeError(f"{said} (only its {' and '.join(settable)} may be set once it is made)" if settable
                          else f"{said} (none of its settings may be set once it is made)")


class DeclaredOnly(FixedArguments):
    """FixedArguments that also refuses a public name its class does not declare:
    ``up.tiles = 64``, meant for ``tile``, made an attribute nothing reads, and the
    Upscaler went on with the tile it had, without a word (a Pipeline's ``p.quallity``
    with its quality). Private names (``_x``) and
    the names a subclass declares (a class attribute, a property, an annotation) are
    still set; a method may be replaced."""

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_") and name not in _arguments(type(self)) and not _declared(type(self), name):
            raise _undeclared(self, name)
        super().__setattr__(name, value)


def fixed_fields(name: str, owner: str | None = None):
    """A decorator, over ``@dataclass(frozen=True)``, for a record users read and may
    set: a field set is refused as a Fixed setting is, saying how to make another
    (``dataclasses.replace(name, field=...)``, ``name`` what the docs call one),
    where dataclasses said only "cannot assign to field 'exif'". ``owner``: how the
    refusal names the record's kind, where ``_owner``'s possessive reads wrong
    ("EncodeOptions'"). Still a FrozenInstanceError; a name that is no field is
    refused as dataclasses refuses it."""
    def decorate(cls):
        frozen, fields = cls.__setattr__, frozenset(f.name for f in dataclasses.fields(cls))

        def __setattr__(self, field: str, value) -> None:
            if field not in fields:
                return frozen(self, field, value)  # a subclass's own attribute may be set
            whose = owner or f"{_owner(self)}'s"
            raise dataclasses.FrozenInstanceError(f"{whose} {field} is fixed when it is made: make another with "
                                                  f"dataclasses.replace({name}, {field}=...)")
        cls.__setattr__ = __setattr__
        return cls
    return decorate
