"""16-bit colour TIFFs read in 16 bits: uncompressed, deflate, LZW and PackBits, in
strips or tiles, either byte order, with the horizontal predictor, RGB and RGBA; the
layouts not read exactly keep Pillow's 8 bits with a warning. Files are written here
byte by byte (Pillow writes no 16-bit colour TIFF)."""
import io
import logging
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from ncnn_sr import tiff16
from ncnn_sr.images import read_image
from ncnn_sr.metadata import orient
from ncnn_sr.png import png16
from test_cli import run

SHORT, LONG = 3, 4


def tiff(samples: np.ndarray, compression: int = 1, predictor: int = 1, big: bool = False, rows: int | None = None,
         tile: int | None = None, extra: dict | None = None) -> bytes:
    """A one-page TIFF of H×W×C uint16 ``samples`` (C 3, or 4 with unassociated
    alpha), in strips of ``rows`` rows or ``tile`` × ``tile`` tiles."""
    e = ">" if big else "<"
    h, w, c = samples.shape
    blocks = []
    if tile:
        padded = np.zeros((-(-h // tile) * tile, -(-w // tile) * tile, c), np.uint16)
        padded[:h, :w] = samples
        parts = [padded[y:y + tile, x:x + tile] for y in range(0, h, tile) for x in range(0, w, tile)]
    else:
        step = rows or h
        parts = [samples[y:y + step] for y in range(0, h, step)]
    for part in parts:
        part = part.astype(np.int64)
        if predictor == 2:
            part[:, 1:] = np.diff(part, axis=1)
        raw = (part % 65536).astype(e + "u2").tobytes()
        blocks.append(zlib.compress(raw) if compression == 8 else raw)
    tags = {256: (LONG, [w]), 257: (LONG, [h]), 258: (SHORT, [16] * c), 259: (SHORT, [compression]),
            262: (SHORT, [2]), 277: (SHORT, [c]), 284: (SHORT, [1])}
    if tile:
        tags.update({322: (SHORT, [tile]), 323: (SHORT, [tile]), 324: (LONG, [0] * len(blocks)),
                     325: (LONG, [len(b) for b in blocks])})
    else:
        tags.update({273: (LONG, [0] * len(blocks)), 278: (SHORT, [rows or h]), 279: (LONG, [len(b) for b in blocks])})
    if predictor != 1:
        tags[317] = (SHORT, [predictor])
    if c == 4:
        tags[338] = (SHORT, [2])
    tags.update(extra or {})
    return _assemble(e, tags, blocks, 324 if tile else 273)


def _assemble(e: str, tags: dict, blocks: list[bytes], offsets_tag: int) -> bytes:
    start = 8
    table = start + 2 + 12 * len(tags) + 4
    spill = bytearray()
    spilled = {}
    for tag, (kind, values) in sorted(tags.items()):
        size = (2 if kind == SHORT else 4) * len(values)
        if size > 4:
            spilled[tag] = table + len(spill)
            spill += struct.pack(e + ("H" if kind == SHORT else "I") * len(values), *values)
    data = table + len(spill)
    offsets, at = [], data
    for block in blocks:
        offsets.append(at)
        at += len(block)
    kind, _ = tags[offsets_tag]
    tags[offsets_tag] = (kind, offsets)
    if offsets_tag in spilled:
        spill[spilled[offsets_tag] - table:spilled[offsets_tag] - table + 4 * len(offsets)] = \
            struct.pack(e + "I" * len(offsets), *offsets)
    out = bytearray((b"MM\0*" if e == ">" else b"II*\0") + struct.pack(e + "I", start))
    out += struct.pack(e + "H", len(tags))
    for tag, (kind, values) in sorted(tags.items()):
        out += struct.pack(e + "HHI", tag, kind, len(values))
        if tag in spilled:
            out += struct.pack(e + "I", spilled[tag])
        else:
            out += struct.pack(e + ("H" if kind == SHORT else "I") * len(values), *values).ljust(4, b"\0")
    out += struct.pack(e + "I", 0) + spill
    return bytes(out) + b"".join(blocks)


def libtiff_compressed(samples: np.ndarray, compression: str) -> bytes:
    """``samples`` compressed by libtiff (through Pillow, as 16-bit grey rows of width x
    channels), then told to be the colour picture they are."""
    h, w, c = samples.shape
    grey = Image.frombytes("I;16", (w * c, h), samples.astype("<u2").tobytes())
    buffer = io.BytesIO()
    grey.save(buffer, "TIFF", compression=compression)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        tags = im.tag_v2
        offsets, counts, rows, kind = tags[273], tags[279], tags[278], tags[259]
    data = buffer.getvalue()
    blocks = [data[o:o + n] for o, n in zip(offsets, counts)]
    return _assemble("<", {256: (LONG, [w]), 257: (LONG, [h]), 258: (SHORT, [16] * c), 259: (SHORT, [kind]),
                           262: (SHORT, [2]), 273: (LONG, [0] * len(blocks)), 277: (SHORT, [c]),
                           278: (LONG, [rows]), 279: (LONG, list(counts)), 284: (SHORT, [1]),
                           **({338: (SHORT, [2])} if c == 4 else {})}, blocks, 273)


SAMPLES = np.random.default_rng(0).integers(0, 1 << 16, (13, 11, 3), dtype=np.uint16)
RGBA = np.random.default_rng(1).integers(0, 1 << 16, (9, 10, 4), dtype=np.uint16)


@pytest.mark.parametrize("layout", [
    {}, {"big": True}, {"compression": 8}, {"compression": 8, "predictor": 2, "rows": 4},
    {"compression": 8, "predictor": 2, "big": True}, {"tile": 16}, {"tile": 16, "compression": 8, "predictor": 2},
])
def test_a_16_bit_rgb_tiff_reads_as_its_16_bit_samples(layout):
    data = tiff(SAMPLES, **layout)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB" and tiff16.is_deep(im)  # Pillow's own: 8 bits
        assert tiff16.reads_deep(im)  # as the header's memory check counts it
    assert np.array_equal(tiff16.read16(data), SAMPLES)


@pytest.mark.parametrize("channels", [3, 4])
def test_the_predictor_restarts_at_each_tiles_left_edge(channels):
    # Each tile is differenced on its own: undone along the whole row, every tile
    # after the first in a row came out in wrong colours.
    wide = np.random.default_rng(2).integers(0, 1 << 16, (13, 40, channels), dtype=np.uint16)
    assert np.array_equal(tiff16.read16(tiff(wide, tile=16, compression=8, predictor=2)), wide)


@pytest.mark.parametrize("compression", ["tiff_lzw", "packbits", "tiff_adobe_deflate"])
def test_libtiffs_compressions_read_in_16_bits_too(compression):
    assert np.array_equal(tiff16.read16(libtiff_compressed(SAMPLES, compression)), SAMPLES)
    assert np.array_equal(tiff16.read16(libtiff_compressed(RGBA, compression)), RGBA)


def test_a_16_bit_rgba_tiff_keeps_its_alpha_in_16_bits():
    assert np.array_equal(tiff16.read16(tiff(RGBA, compression=8, predictor=2)), RGBA)


GREY_ALPHA = np.random.default_rng(3).integers(0, 1 << 16, (7, 9, 2), dtype=np.uint16)
GREY_ALPHA_TAGS = {262: (SHORT, [1]), 338: (SHORT, [2])}  # black at 0, unassociated alpha


@pytest.mark.parametrize("layout", [
    {}, {"big": True}, {"compression": 8, "predictor": 2, "rows": 3}, {"compression": 8, "predictor": 2, "big": True},
    {"tile": 16, "compression": 8, "predictor": 2},
])
def test_a_16_bit_grey_and_alpha_tiff_reads_as_16_bit_grey_and_alpha(layout, tmp_path):
    # Pillow has no mode for it and said it was no picture (or a broken one).
    (tmp_path / "in.tif").write_bytes(tiff(GREY_ALPHA, extra=GREY_ALPHA_TAGS, **layout))
    image, info = read_image(tmp_path / "in.tif")
    grey, alpha = GREY_ALPHA[:, :, 0], GREY_ALPHA[:, :, 1]
    assert image.dtype == np.uint16 and image.shape == (7, 9, 4) and info.mode == "LA"
    assert all(np.array_equal(image[:, :, c], grey) for c in range(3)) and np.array_equal(image[:, :, 3], alpha)


def test_a_16_bit_grey_and_alpha_tiff_white_at_0_reads_its_grey_turned_over(tmp_path):
    (tmp_path / "in.tif").write_bytes(tiff(GREY_ALPHA, extra={262: (SHORT, [0]), 338: (SHORT, [2])}))
    image, _ = read_image(tmp_path / "in.tif")
    assert np.array_equal(image[:, :, 0], 65535 - GREY_ALPHA[:, :, 0]) and np.array_equal(image[:, :, 3], GREY_ALPHA[:, :, 1])


def test_a_16_bit_grey_and_premultiplied_alpha_tiff_reads_its_grey_divided_by_its_alpha(tmp_path):
    # Associated alpha (extra samples 1), as Pillow reads 8-bit La: it was refused,
    # "a kind of TIFF Pillow cannot read".
    grey, alpha = GREY_ALPHA[:, :, 0].astype(np.int64), GREY_ALPHA[:, :, 1].astype(np.int64)
    alpha[0, 0], alpha[0, 1] = 0, 65535
    premultiplied = np.stack([(grey * alpha + 32767) // 65535, alpha], axis=2).astype(np.uint16)
    (tmp_path / "in.tif").write_bytes(tiff(premultiplied, compression=8, predictor=2,
                                           extra={262: (SHORT, [1]), 338: (SHORT, [1])}))
    image, info = read_image(tmp_path / "in.tif")
    assert image.dtype == np.uint16 and image.shape == (7, 9, 4) and info.mode == "LA"
    assert np.array_equal(image[:, :, 3], alpha) and image[0, 0, 0] == 0 and image[0, 1, 0] == grey[0, 1]
    seen = alpha > 4096  # where the premultiplied grey keeps enough levels to compare
    assert np.abs(image[:, :, 0].astype(np.int64) - grey)[seen].max() <= 16
    assert all(np.array_equal(image[:, :, c], image[:, :, 0]) for c in (1, 2))


def test_a_16_bit_grey_tiff_with_an_unspecified_extra_sample_reads_as_16_bit_grey(tmp_path):
    # Extra samples 0 are no alpha: Pillow leaves an 8-bit one aside (LX).
    (tmp_path / "in.tif").write_bytes(tiff(GREY_ALPHA, extra={262: (SHORT, [1]), 338: (SHORT, [0])}))
    image, info = read_image(tmp_path / "in.tif")
    assert image.dtype == np.uint16 and image.shape == (7, 9, 1) and info.mode == "I;16"
    assert np.array_equal(image[:, :, 0], GREY_ALPHA[:, :, 0])


def test_the_command_writes_a_16_bit_grey_and_alpha_tiff_as_a_16_bit_grey_and_alpha_png(tmp_path):
    (tmp_path / "in.tif").write_bytes(tiff(GREY_ALPHA, compression=8, predictor=2, extra=GREY_ALPHA_TAGS))
    run("-i", tmp_path / "in.tif", "-o", tmp_path / "out.png", "-g", "-1", "-n", "realesr-animevideov3", "-s", "2")
    head = (tmp_path / "out.png").read_bytes()[:26]
    assert (head[24], head[25]) == (16, 4)  # 16 bits, grey and alpha
    image, _ = read_image(tmp_path / "out.png")
    assert image.shape == (14, 18, 4) and image.dtype == np.uint16


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("samples,tags", [(SAMPLES, {}), (GREY_ALPHA, GREY_ALPHA_TAGS)])
def test_a_16_bit_tiff_with_an_orientation_is_turned_as_pillow_turns_its_8_bits(orientation, samples, tags, tmp_path):
    # Pillow turns a TIFF upright as it loads it, the grey rows read in 16 bits too:
    # a quarter turn failed ("cannot reshape array"), a half turn swapped red and blue.
    (tmp_path / "in.tif").write_bytes(tiff(samples, compression=8, predictor=2, extra={**tags, 274: (SHORT, [orientation])}))
    image, _ = read_image(tmp_path / "in.tif")
    upright = orient(samples, orientation)
    if samples.shape[2] == 2:  # grey and alpha, read as RGBA
        upright = upright[:, :, [0, 0, 0, 1]]
    else:
        with Image.open(tmp_path / "in.tif") as im:  # Pillow's own 8 bits: the high bytes, turned
            assert np.array_equal(np.asarray(im), (upright >> 8).astype(np.uint8))
    assert image.dtype == np.uint16 and np.array_equal(image, upright)


@pytest.mark.parametrize("change", [
    {284: (SHORT, [2])},  # one plane per channel
    {317: (SHORT, [3])},  # the floating-point predictor
    {338: (SHORT, [0])},  # an unspecified fourth sample
])
def test_a_layout_not_read_exactly_is_left_to_pillow(change):
    samples = RGBA if 338 in change else SAMPLES
    data = tiff(samples, extra=change)
    assert tiff16.read16(data) is None
    with Image.open(io.BytesIO(data)) as im:  # counted in 8 bits by the header's memory check
        assert not tiff16.reads_deep(im)


def test_a_16_bit_rgb_and_premultiplied_alpha_tiff_reads_its_colour_divided_by_its_alpha(tmp_path, caplog):
    # A compositor's export (associated alpha, extra samples 1) was read in 8 bits with
    # 'a 16-bit TIFF of a layout read here in 8 bits only', where 16-bit grey with
    # premultiplied alpha was read in 16.
    colour, alpha = RGBA[:, :, :3].astype(np.int64), RGBA[:, :, 3:].astype(np.int64)
    alpha[0, 0], alpha[0, 1] = 0, 65535
    premultiplied = np.concatenate([(colour * alpha + 32767) // 65535, alpha], axis=2).astype(np.uint16)
    (tmp_path / "in.tif").write_bytes(tiff(premultiplied, compression=8, predictor=2, extra={338: (SHORT, [1])}))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        image, info = read_image(tmp_path / "in.tif")
    assert "8 bits" not in caplog.text
    assert image.dtype == np.uint16 and image.shape == (9, 10, 4) and info.mode == "RGBA"
    assert np.array_equal(image[:, :, 3:], alpha) and (image[0, 0, :3] == 0).all()
    assert np.array_equal(image[0, 1, :3], colour[0, 1])
    seen = alpha[:, :, 0] > 4096  # where the premultiplied colour keeps enough levels to compare
    assert np.abs(image[:, :, :3].astype(np.int64) - colour)[seen].max() <= 16


def test_the_command_reads_a_16_bit_tiff_as_the_same_16_bit_png(tmp_path, caplog):
    (tmp_path / "in.tif").write_bytes(tiff(SAMPLES, compression=8, predictor=2))
    image, info = read_image(tmp_path / "in.tif")
    assert image.dtype == np.uint16 and np.array_equal(image, SAMPLES)
    (tmp_path / "in.png").write_bytes(png16(SAMPLES))
    for name in ("in.tif", "in.png"):
        run("-i", tmp_path / name, "-o", tmp_path / f"{name}.png", "-g", "-1", "-n", "realesr-animevideov3", "-s", "2")
    a, _ = read_image(tmp_path / "in.tif.png")
    b, _ = read_image(tmp_path / "in.png.png")
    assert a.dtype == np.uint16 and np.array_equal(a, b)


def test_a_16_bit_tiff_of_another_layout_is_read_in_8_bits_with_a_warning(tmp_path, caplog):
    # The floating-point predictor: Pillow reads it (in 8 bits), this module does not.
    (tmp_path / "other.tif").write_bytes(tiff(RGBA, extra={317: (SHORT, [3])}))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        image, _ = read_image(tmp_path / "other.tif")
    assert image.dtype == np.uint8 and "read here in 8 bits only" in caplog.text


@pytest.mark.parametrize("limit", [143, 215])  # 143 pixels, 429 samples: an error, or a warning
def test_the_pixel_limit_counts_pixels_not_samples(tmp_path, monkeypatch, limit):
    # Read as grey rows, a 16-bit RGB TIFF has 3 samples a pixel, which Pillow's
    # decompression-bomb check counted as pixels: a 40-megapixel scan was refused.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    (tmp_path / "in.tif").write_bytes(tiff(SAMPLES))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, _ = read_image(tmp_path / "in.tif")
    assert image.dtype == np.uint16 and np.array_equal(image, SAMPLES)
