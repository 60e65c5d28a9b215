"""ICC profiles written here for colour a format cannot state otherwise: a PNG's gAMA,
cHRM and cICP chunks (and a HEIF's or an AVIF's nclx, held as a cICP), for a jpg,
webp or avif written from it, which carry an ICC profile and nothing else of the
kind, and a cICP for a png, which most readers still ignore. Display profiles of the simplest kind (a matrix and a
tone curve per channel, or one grey curve) in ICC.1 version 2, which every
colour-managed viewer reads."""
from __future__ import annotations

import struct

import numpy as np

# The profile connection space's white, D50, as ICC.1 states it.
D50 = (0.9642, 1.0, 0.8249)
# Bradford's cone responses: the chromatic adaptation ICC.1 recommends for moving
# colorants from a display's white to D50.
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# White, red, green and blue (x, y) of sRGB (BT.709), which viewers assume of a
# picture that states none.
SRGB_CHROMATICITIES = ((0.3127, 0.329), (0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
# PNG's gAMA of sRGB (1/2.2, times 100000), and how far one may stray and still be
# shown as sRGB (1 %: within a level of 8 bits at mid grey).
_SRGB_GAMMA, _GAMMA_SLACK = 45455, 0.01
# How far a cHRM coordinate may stray from sRGB's and still be sRGB (libpng's 0.001).
_CHROMATICITY_SLACK = 0.001
# Entries of a sampled tone curve: 1024, as sRGB's own profile has.
_CURVE_POINTS = 1024


def _srgb_to_light(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _bt709_to_light(v: np.ndarray) -> np.ndarray:
    # The camera curve's inverse, as browsers show BT.709 stills.
    return np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45))


# ITU-T H.273's colour primaries (the code points of a PNG's cICP and of a HEIF's or
# an AVIF's nclx) as the white, red, green and blue (x, y) they stand for.
CODED_PRIMARIES = {
    1: SRGB_CHROMATICITIES,
    2: SRGB_CHROMATICITIES,  # unspecified: what viewers assume
    4: ((0.310, 0.316), (0.67, 0.33), (0.21, 0.71), (0.14, 0.08)),
    5: ((0.3127, 0.329), (0.64, 0.33), (0.29, 0.60), (0.15, 0.06)),
    6: ((0.3127, 0.329), (0.630, 0.340), (0.310, 0.595), (0.155, 0.070)),
    7: ((0.3127, 0.329), (0.630, 0.340), (0.310, 0.595), (0.155, 0.070)),
    9: ((0.3127, 0.329), (0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
    11: ((0.314, 0.351), (0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    12: ((0.3127, 0.329), (0.680, 0.320), (0.265, 0.690), (0.150, 0.060)),
    22: ((0.3127, 0.329), (0.630, 0.340), (0.295, 0.605), (0.155, 0.077)),
}
# H.273's transfer characteristics a tone curve states: a gamma, or the function from
# samples to light. PQ (16) and HLG (18) are HDR: their light goes past the white a
# display profile's curve ends at, so no profile of this kind states them.
CODED_TRANSFERS = {1: _bt709_to_light, 2: _srgb_to_light, 4: 2.2, 5: 2.8, 6: _bt709_to_light, 8: 1.0,
                   13: _srgb_to_light, 14: _bt709_to_light, 15: _bt709_to_light}
# Code points shown as sRGB without a profile: BT.709's primaries with sRGB's or
# BT.709's curve, which viewers show alike.
_SRGB_PRIMARIES, _SRGB_TRANSFERS = frozenset({1, 2}), frozenset({1, 2, 6, 13, 14, 15})


def stated(primaries: int, transfer: int) -> bool:
    """Whether a profile of this module states H.273's ``primaries`` and
    ``transfer`` (or none is needed)."""
    return primaries in CODED_PRIMARIES and transfer in CODED_TRANSFERS


def unstated(chunks) -> tuple[int, int] | None:
    """The primaries and transfer of the cICP among a PNG's ``chunks`` that no
    profile states (HDR), None where there is no such cICP."""
    coded = dict(chunks).get(b"cICP", b"")
    return (coded[0], coded[1]) if len(coded) == 4 and not stated(coded[0], coded[1]) else None


def srgb_like(primaries: int, transfer: int) -> bool:
    """Whether H.273's ``primaries`` and ``transfer`` are shown as sRGB is."""
    return primaries in _SRGB_PRIMARIES and transfer in _SRGB_TRANSFERS


def cicp_chunks(primaries, transfer) -> tuple[tuple[bytes, bytes], ...]:
    """H.273's ``primaries`` and ``transfer`` of RGB samples in full range (as
    decoders give a HEIF's or an AVIF's) as the cICP chunk a PNG states them by, in
    ``ImageInfo.colour_chunks``' form; () for sRGB's or numbers that are no code
    points."""
    if not all(isinstance(v, int) and 0 <= v <= 255 for v in (primaries, transfer)) or srgb_like(primaries, transfer):
        return ()
    return ((b"cICP", bytes([primaries, transfer, 0, 1])),)


def from_code_points(primaries: int, transfer: int, grey: bool) -> bytes | None:
    """The profile of H.273's ``primaries`` and ``transfer`` (``stated`` ones), for
    pixels written ``grey`` or as colour; None where viewers show them as sRGB."""
    if transfer in _SRGB_TRANSFERS and (primaries in _SRGB_PRIMARIES or grey):
        return None
    return profile(CODED_PRIMARIES[primaries], CODED_TRANSFERS[transfer], grey)


def for_format(chunks, grey: bool, fmt: str) -> bytes | None:
    """The profile a picture of PNG colour chunks ``chunks`` needs, written as
    ``fmt`` (png, jpg, webp, avif) without one of its own: ``from_png_chunks`` for
    a format that holds none of the chunks; a png holds them all, but readers that
    know no cICP (most, still) show it as sRGB, and a profile stating it is read by
    all (those that know cICP take it over the profile)."""
    if fmt != "png":
        return from_png_chunks(chunks, grey)
    coded = dict(chunks).get(b"cICP", b"")
    return from_png_chunks(chunks, grey) if len(coded) == 4 and stated(coded[0], coded[1]) else None


def from_png_chunks(chunks, grey: bool) -> bytes | None:
    """The ICC profile that shows the pixels as a PNG's colour chunks ``chunks``
    ((kind, data) pairs) say, for a picture written ``grey`` (a GRAY profile) or as
    colour (RGB); None where the PNG is shown as sRGB, which viewers assume without
    a profile: an sRGB chunk (which wins over gAMA and cHRM, as PNG asks), neither
    gAMA nor cHRM, or ones within a step of sRGB's. A cICP wins over them all, as
    PNG asks, where a profile states it; an HDR one leaves the others to say what
    readers without cICP show (PNG asks its writers to add them for those). A chunk
    of the wrong size, a gamma of 0 or chromaticities with no matrix are ignored,
    as libpng does."""
    found = {kind: data for kind, data in chunks}
    coded = found.get(b"cICP", b"")
    if len(coded) == 4 and stated(coded[0], coded[1]):
        return from_code_points(coded[0], coded[1], grey)
    if b"sRGB" in found:
        return None
    gamma = _png_gamma(found.get(b"gAMA"))
    chromaticities = _png_chromaticities(found.get(b"cHRM"))
    srgb_gamma = gamma is None or abs(gamma / _SRGB_GAMMA - 1) <= _GAMMA_SLACK
    srgb_colours = chromaticities is None or all(
        abs(a - b) <= _CHROMATICITY_SLACK
        for pair, srgb in zip(chromaticities, SRGB_CHROMATICITIES) for a, b in zip(pair, srgb))
    if srgb_gamma and (srgb_colours or grey):
        return None
    # Without a gAMA a viewer shows the samples with sRGB's curve (a cHRM alone).
    curve = _srgb_to_light if gamma is None else 100000 / gamma
    return profile(chromaticities or SRGB_CHROMATICITIES, curve, grey)


def _png_gamma(data: bytes | None) -> int | None:
    if data is None or len(data) != 4:
        return None
    return struct.unpack(">I", data)[0] or None


def _png_chromaticities(data: bytes | None) -> tuple | None:
    if data is None or len(data) != 32:
        return None
    values = [v / 100000 for v in struct.unpack(">8I", data)]
    pairs = tuple(zip(values[::2], values[1::2]))
    try:
        _rgb_to_xyz(*pairs)
    except (np.linalg.LinAlgError, ZeroDivisionError):
        return None
    return pairs


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _rgb_to_xyz(white, red, green, blue) -> np.ndarray:
    """The matrix from linear RGB of these primaries to XYZ, white at Y 1."""
    columns = np.column_stack([_xyz(*red), _xyz(*green), _xyz(*blue)])
    scale = np.linalg.solve(columns, _xyz(*white))
    if not np.isfinite(scale).all() or (scale <= 0).any():  # a white outside its primaries' gamut
        raise np.linalg.LinAlgError("no display of these primaries")
    return columns * scale


def _to_d50(white) -> np.ndarray:
    """Bradford's adaptation from ``white`` (x, y) to D50."""
    ratio = (_BRADFORD @ np.array(D50)) / (_BRADFORD @ _xyz(*white))
    return np.linalg.inv(_BRADFORD) @ np.diag(ratio) @ _BRADFORD


def profile(chromaticities, curve, grey: bool) -> bytes:
    """A version 2 display profile of the white, red, green and blue (x, y)
    ``chromaticities`` (only the white for ``grey``) whose samples give light by
    ``curve``: a gamma (light = sample ** gamma), or a function of the samples in
    0..1 as an array."""
    white = chromaticities[0]
    tone = _curve(curve)
    tags = [(b"desc", _description(grey, curve)), (b"cprt", _text(b"No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50))]
    if grey:
        tags.append((b"kTRC", tone))
    else:
        colorants = _to_d50(white) @ _rgb_to_xyz(*chromaticities)
        tags += [(kind, _xyz_tag(colorants[:, i])) for i, kind in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
        tags += [(kind, tone) for kind in (b"rTRC", b"gTRC", b"bTRC")]
    return _assemble(b"GRAY" if grey else b"RGB ", tags)


def colour_from_grey(grey_icc: bytes) -> bytes | None:
    """An RGB profile showing grey pixels written as colour (R = G = B) as the GRAY
    profile ``grey_icc`` shows them: its grey tone curve (kTRC) on each channel, and
    sRGB's colorants, whose sum is the connection space's white, where a grey
    profile puts its greys; None where it has no such curve (a lookup table's)."""
    tone = _tag(grey_icc, b"kTRC")
    if tone is None or tone[:4] not in (b"curv", b"para"):
        return None
    white = SRGB_CHROMATICITIES[0]
    colorants = _to_d50(white) @ _rgb_to_xyz(*SRGB_CHROMATICITIES)
    tags = [(b"desc", _text_description(b"RGB of a grey profile's curve")), (b"cprt", _text(b"No copyright, use freely")),
            (b"wtpt", _xyz_tag(D50))]
    tags += [(kind, _xyz_tag(colorants[:, i])) for i, kind in enumerate((b"rXYZ", b"gXYZ", b"bXYZ"))]
    tags += [(kind, tone) for kind in (b"rTRC", b"gTRC", b"bTRC")]
    made = _assemble(b"RGB ", tags)
    # A parametric curve is ICC.1 version 4's: the profile states the grey one's version.
    return made[:8] + grey_icc[8:12] + made[12:] if tone[:4] == b"para" else made


def _tag(data: bytes, signature: bytes) -> bytes | None:
    """The tag ``signature`` of the ICC profile ``data``; None where it has none or
    its tag table is damaged."""
    if len(data) < 132:
        return None
    count = struct.unpack_from(">I", data, 128)[0]
    for at in range(132, min(132 + 12 * count, len(data) - 11), 12):
        kind, offset, size = struct.unpack_from(">4sII", data, at)
        if kind == signature:
            return data[offset:offset + size] if offset + size <= len(data) and size >= 12 else None
    return None


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _curve(curve) -> bytes:
    if not callable(curve) and 1 <= round(curve * 256) <= 0xFFFF:  # one gamma, in 8.8 fixed point
        return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(curve * 256))
    samples = np.linspace(0, 1, _CURVE_POINTS)
    light = curve(samples) if callable(curve) else samples ** curve
    table = np.round(np.clip(light, 0, 1) * 65535).astype(">u2")
    return b"curv\0\0\0\0" + struct.pack(">I", _CURVE_POINTS) + table.tobytes()


def _text(words: bytes) -> bytes:
    return b"text\0\0\0\0" + words + b"\0"


def _description(grey: bool, curve) -> bytes:
    named = {_srgb_to_light: b", sRGB curve", _bt709_to_light: b", BT.709 curve"}
    return _text_description((b"Grey" if grey else b"RGB") +
                             (named.get(curve, b", sampled curve") if callable(curve) else b", gamma %.3f" % curve))


def _text_description(words: bytes) -> bytes:
    # ASCII, then an empty Unicode and an empty ScriptCode description (67 bytes).
    return b"desc\0\0\0\0" + struct.pack(">I", len(words) + 1) + words + b"\0" + bytes(4 + 4 + 2 + 1 + 67)


def _assemble(space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """The profile's header, tag table and tags (equal ones stored once), each on a
    4-byte boundary."""
    body, offsets, table = b"", {}, []
    start = 128 + 4 + 12 * len(tags)
    for kind, data in tags:
        if data not in offsets:
            offsets[data] = start + len(body)
            body += data + bytes(-len(data) % 4)
        table.append(struct.pack(">4sII", kind, offsets[data], len(data)))
    size = start + len(body)
    header = struct.pack(">I4sI4s4s4s6H4s4sI4sI8sI12s4s44s", size, b"", 0x02100000, b"mntr", space, b"XYZ ",
                         2000, 1, 1, 0, 0, 0, b"acsp", b"", 0, b"", 0, b"", 0,
                         b"".join(_s15(v) for v in D50), b"", b"")
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body
