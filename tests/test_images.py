"""Reading and writing pictures: every mode, depth, metadata, broken files, atomic writes."""
import contextlib
import errno
import fractions
import gc
import io
import itertools
import re
import logging
import os
import random
import shutil
import stat
import struct
import warnings
import zlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageChops, ImageCms, ImageFile, IptcImagePlugin, PngImagePlugin, features

from conftest import adam7_rows, ctrl_c_once_made, picture, png_bytes, png_chunk, png_data
from ncnn_sr import InputError, budget, read_image, write_image
from ncnn_sr import files as files_mod
from ncnn_sr import images as images_mod
from ncnn_sr import icc as icc_mod
from ncnn_sr import metadata as metadata_mod
from ncnn_sr import png as png_mod
from ncnn_sr.animation import Animation, read_frames, write_frames
from ncnn_sr.errors import SettingError
from ncnn_sr.metadata import exif_body

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def save(path, im: Image.Image, **kw):
    im.save(path, **kw)
    return path


def rgb_image(h=6, w=8) -> Image.Image:
    return Image.fromarray(picture(h, w))


def png_header(path) -> tuple[int, int]:
    """A PNG file's bit depth and colour type."""
    head = open(path, "rb").read(26)
    return head[24], head[25]


# (mode made, how, expected array channels, dtype, mode after write + re-read)
MODES = {
    "L": (lambda: rgb_image().convert("L"), 1, np.uint8, "L"),
    "LA": (lambda: rgb_image().convert("LA"), 4, np.uint8, "LA"),
    "RGB": (lambda: rgb_image(), 3, np.uint8, "RGB"),
    "RGBA": (lambda: Image.fromarray(picture(6, 8, channels=4)), 4, np.uint8, "RGBA"),
    "P": (lambda: rgb_image().convert("P"), 3, np.uint8, "RGB"),
    "1": (lambda: rgb_image().convert("1"), 1, np.uint8, "L"),
    "I;16": (lambda: Image.fromarray((picture(6, 8, channels=1)[:, :, 0].astype(np.uint16) * 257 + 3)), 1, np.uint16, "I;16"),
}


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_reads_as_documented_and_writes_back(mode, tmp_path):
    make, channels, dtype, back = MODES[mode]
    src = save(tmp_path / "in.png", make())
    arr, info = read_image(src)
    assert arr.shape == (6, 8, channels) and arr.dtype == dtype and info.mode == mode
    write_image(tmp_path / "out.png", arr, info)
    with Image.open(tmp_path / "out.png") as im:
        assert im.mode == back and im.size == (8, 6)


def test_palette_with_transparency_reads_as_rgba(tmp_path):
    im = Image.fromarray(picture(6, 8, channels=4)).convert("P")
    im.info["transparency"] = 0
    src = save(tmp_path / "p.png", im, transparency=0)
    arr, _ = read_image(src)
    assert arr.shape[2] == 4 and (arr[:, :, 3] == 0).any()


def test_one_bit_png_with_a_transparent_level_reads_as_alpha_and_writes_back_grey(tmp_path):
    im = Image.fromarray(picture(6, 8, channels=1)[:, :, 0] > 127)  # mode 1
    src = save(tmp_path / "b.png", im, transparency=0)
    arr, info = read_image(src)
    assert arr.shape[2] == 4 and (arr[:, :, 3] == 0).any() and (arr[:, :, 3] == 255).any()
    write_image(tmp_path / "o.png", arr, info)
    assert Image.open(tmp_path / "o.png").mode == "LA"


def keyed_grey_png(path, depth: int, key: int) -> np.ndarray:
    """A grey PNG of every level of ``depth`` at ``path``, level ``key`` transparent
    (tRNS); its levels."""
    levels = (np.arange(48).reshape(6, 8, 1) % (1 << depth)).astype(np.uint8)
    path.write_bytes(png_bytes(levels, depth, 0, png_chunk(b"tRNS", struct.pack(">H", key))))
    return levels


@pytest.mark.parametrize("depth, key", [(2, 1), (4, 9)])
def test_a_two_or_four_bit_grey_png_with_a_transparent_level_reads_it_as_alpha(depth, key, tmp_path):
    # The tRNS level is in the file's depth, Pillow's grey in 8 bits: it matched none.
    levels = keyed_grey_png(tmp_path / "g.png", depth, key)
    arr, info = read_image(tmp_path / "g.png")
    assert arr.shape == (6, 8, 4) and np.array_equal(arr[:, :, 3] == 0, levels[:, :, 0] == key)
    assert np.array_equal(arr[:, :, 0], levels[:, :, 0] * (255 // ((1 << depth) - 1)))
    write_image(tmp_path / "o.png", arr, info)
    assert Image.open(tmp_path / "o.png").mode == "LA"


@pytest.mark.parametrize("depth, key", [(2, 4), (8, 256)])
def test_a_transparent_grey_level_past_the_bit_depth_makes_nothing_transparent(depth, key, tmp_path):
    # libpng ignores such a level: the picture stays plain grey, with no alpha.
    keyed_grey_png(tmp_path / "g.png", depth, key)
    assert read_image(tmp_path / "g.png")[0].shape == (6, 8, 1)


def test_cmyk_reads_as_rgb(tmp_path):
    src = save(tmp_path / "c.jpg", rgb_image().convert("CMYK"))
    arr, info = read_image(src)
    assert info.mode == "CMYK" and arr.shape == (6, 8, 3)
    assert np.abs(arr.astype(int) - picture(6, 8)).mean() < 20


@pytest.mark.parametrize("space", ["LAB", "YCbCr"])
def test_a_tiff_of_lab_or_ycbcr_pixels_reads_as_their_rgb_colours(space, tmp_path):
    # A scan or prepress export in CIELab (or a YCbCr TIFF) holds no RGB: upscaled as
    # its samples, it would come out in false colours. Lab's 8 bits cost up to a few
    # levels on the way back.
    src = picture(16, 16)
    if space == "LAB":
        to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
        im = ImageCms.applyTransform(Image.fromarray(src), to_lab)
    else:
        im = Image.fromarray(src).convert(space)
    path = save(tmp_path / "s.tif", im)
    with Image.open(path) as opened:
        assert opened.mode == space
    arr, info = read_image(path)
    assert info.mode == space and arr.shape == (16, 16, 3) and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - src).mean() < 3


def without_adobe_marker(data: bytes) -> bytes:
    """The JPEG ``data`` with its Adobe (APP14) segments left out, its samples as they were."""
    out, pos = bytearray(data[:2]), 2
    while data[pos + 1] != 0xDA:  # the headers, up to the first scan
        end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
        if data[pos + 1] != 0xEE:
            out += data[pos:end]
        pos = end
    return bytes(out + data[pos:])


def test_a_cmyk_jpeg_without_an_adobe_marker_reads_as_adobes_inverted_cmyk(tmp_path):
    # Only Adobe's marker tells a CMYK JPEG's polarity. Without it, most readers
    # (Pillow, djpeg, ImageMagick, Firefox, Chrome; not libvips) still take Adobe's
    # inverted samples: a file whose marker a metadata stripper took looks as it did.
    with_marker = save(tmp_path / "adobe.jpg", rgb_image(16, 16).convert("CMYK"), quality=95)
    (tmp_path / "bare.jpg").write_bytes(without_adobe_marker(with_marker.read_bytes()))
    with Image.open(tmp_path / "bare.jpg") as im:
        assert im.mode == "CMYK" and "adobe" not in im.info
    arr, info = read_image(tmp_path / "bare.jpg")
    assert info.mode == "CMYK"
    assert np.array_equal(arr, read_image(with_marker)[0])
    assert np.abs(arr.astype(int) - picture(16, 16)).mean() < 20


def test_cmyk_with_a_profile_that_is_not_cmyks_reads_as_rgb(tmp_path):
    # ImageCms is imported where a CMYK picture has a profile: littleCMS refuses an
    # RGB profile for CMYK pixels, and Pillow's own conversion is taken instead.
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "c.jpg"
    rgb_image().convert("CMYK").save(src, icc_profile=srgb)
    arr, info = read_image(src)
    assert info.mode == "CMYK" and arr.shape == (6, 8, 3)
    assert np.array_equal(arr, np.asarray(Image.open(src).convert("RGB")))


def test_sixteen_bit_grey_keeps_every_value(tmp_path):
    values = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1361)
    src = save(tmp_path / "g.png", Image.fromarray(values))
    arr, _ = read_image(src)
    write_image(tmp_path / "o.png", arr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o.png")), values)


@pytest.mark.parametrize("name", ["c16.png", "ep1:c16.png"])  # FFmpeg took the second for a URL of "ep1"
@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_round_trips_exactly(channels, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as a relative name: only a name's start can be a protocol
    values = (np.random.RandomState(0).rand(5, 7, channels) * 65535).astype(np.uint16)
    write_image(name, values)
    arr, info = read_image(name)
    assert arr.dtype == np.uint16 and np.array_equal(arr, values)


TIFF_EXIF = b"MM" + struct.pack(">HIHHHI4sI", 42, 8, 1, 0x010F, 2, 4, b"Cam\0", 0)  # Make, in its entry


@pytest.mark.parametrize("kind, body", [(b"eXIf", b"Exif\0\0" + TIFF_EXIF), (b"eXIf", b"not an exif"),
                                        (b"eXIf", TIFF_EXIF[:12]), (b"iCCP", b"ICC Profile\0\1" + zlib.compress(b"x"))],
                         ids=["jpegs-exif-header", "no-exif", "cut-short", "unknown-profile-compression"])
@pytest.mark.parametrize("colour_type", [0, 2, 4, 6])
def test_a_sixteen_bit_png_with_a_chunk_ffmpeg_cannot_parse_is_read_as_an_eight_bit_one_is(colour_type, kind, body,
                                                                                          tmp_path):
    # FFmpeg (libavcodec 62), which reads the 16-bit PNGs Pillow reads in 8 bits
    # only, refused the picture for an eXIf it cannot parse (begun with JPEG's
    # Exif\0\0 header, damaged) or a profile libpng and ncnn-sr leave out, 'Invalid
    # data found when processing input', where Pillow reads the same 8-bit PNG, and
    # the EXIF too where it can. The pixels do not depend on them: the orientation
    # is Pillow's to read.
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    values = np.random.default_rng(1).integers(0, 65536, (5, 7, channels)).astype(np.uint16)
    (tmp_path / "e.png").write_bytes(png_bytes(values, 16, colour_type, png_chunk(kind, body)))
    arr, info = read_image(tmp_path / "e.png")
    assert arr.dtype == np.uint16 and np.array_equal(arr, values[:, :, [0, 0, 0, 1]] if colour_type == 4 else values)
    (tmp_path / "e8.png").write_bytes(png_bytes((values >> 8).astype(np.uint8), 8, colour_type, png_chunk(kind, body)))
    assert info.exif == read_image(tmp_path / "e8.png")[1].exif


@pytest.mark.parametrize("transparency", [
    bytes([0, 128]) + bytes([255] * 298),
    bytes([255] * 280) + b"\x00" + bytes([255] * 19),  # Pillow's one clear index: 280
], ids=["alpha", "one-clear-entry"])
def test_a_palette_png_whose_transparency_outnumbers_256_colours_is_read_without_the_excess(transparency, tmp_path,
                                                                                           caplog):
    # Pillow refused it ("palette index out of range"); no pixel can have an index
    # past 255, and a tRNS past a shorter palette is read as far as the palette goes.
    indices = np.array([[[0], [1]], [[1], [0]]], np.uint8)
    palette = png_chunk(b"PLTE", bytes([255, 0, 0, 0, 0, 255]))
    (tmp_path / "p.png").write_bytes(png_bytes(indices, 8, 3, palette, png_chunk(b"tRNS", transparency)))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "p.png")
    want = np.array([[[255, 0, 0, transparency[0]], [0, 0, 255, transparency[1]]]], np.uint8)
    assert np.array_equal(arr, np.concatenate([want, want[:, ::-1]])[:, :, :arr.shape[2]])
    assert "p.png: its transparency (tRNS) has entries past the 256 colours a palette holds" in caplog.text


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG", "WEBP", "PNG"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_the_upright_size_told_from_a_header_is_the_size_read(fmt, orientation, tmp_path):
    # The run checks a target width or height against it before the pixels are read.
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(picture(10, 30)).save(tmp_path / "p", fmt, exif=exif.tobytes())
    assert images_mod.upright_sizes(tmp_path / "p") == (read_image(tmp_path / "p")[0].shape[:2],)


def test_a_palette_png_without_its_palette_is_refused(tmp_path):
    # libpng refuses it ("Missing PLTE before IDAT"); Pillow read every pixel black.
    data = io.BytesIO()
    Image.fromarray(picture(6, 8)).convert("P").save(data, "PNG")
    data = data.getvalue()
    at = data.index(b"PLTE") - 4
    length = struct.unpack(">I", data[at:at + 4])[0]
    (tmp_path / "p.png").write_bytes(data[:at] + data[at + 12 + length:])
    with pytest.raises(InputError, match=r"p\.png: broken or truncated picture \(PNG: palette colours without a palette \(PLTE\)\)"):
        read_image(tmp_path / "p.png")


@pytest.mark.parametrize("channels", [3, 4])
def test_an_interlaced_sixteen_bit_colour_png_is_read_exactly(channels, tmp_path):
    # FFmpeg, which reads Pillow's 8-bit-only PNGs, left rows black and shifted
    # others of an Adam7 one of six or eight bytes a pixel.
    values = np.random.default_rng(0).integers(0, 65536, (11, 13, channels)).astype(np.uint16)
    rows = adam7_rows(values)
    header = struct.pack(">IIBBBBB", 13, 11, 16, {3: 2, 4: 6}[channels], 0, 0, 1)
    (tmp_path / "i.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                                     + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))
    arr, _ = read_image(tmp_path / "i.png")
    assert arr.dtype == np.uint16 and np.array_equal(arr, values)


@pytest.mark.parametrize("maxval", [65535, 4095])
def test_a_sixteen_bit_ppm_is_read_in_sixteen_bits(maxval, tmp_path):
    # As dcraw -6 and LibRaw write a developed raw photo: Pillow reads it in 8 bits,
    # which went on to a png without a word.
    samples = np.random.default_rng(0).integers(0, maxval + 1, (5, 7, 3)).astype(np.uint16)
    (tmp_path / "c.ppm").write_bytes(b"P6\n# dcraw\n7 5\n%d\n" % maxval + samples.astype(">u2").tobytes())
    arr, info = read_image(tmp_path / "c.ppm")
    want = (samples.astype(np.uint32) * 65535 + maxval // 2) // maxval
    assert arr.dtype == np.uint16 and np.array_equal(arr, want) and info.format == "PPM"
    write_image(tmp_path / "o.png", arr, info)
    assert np.array_equal(read_image(tmp_path / "o.png")[0], want)


@pytest.mark.parametrize("maxval", [65535, 4095])
def test_a_sixteen_bit_ppm_is_not_decoded_by_pillows_python_decoder_too(maxval, tmp_path, monkeypatch):
    # Found by a user audit: its samples were decoded twice, by Pillow's decoder (in
    # Python: 24 s of a 4000x3000 photo) for 8-bit pixels then thrown away, and by
    # pnm.read16 (1 s), whose 16 bits are kept.
    from PIL import PpmImagePlugin

    def refused(self, buffer):
        raise AssertionError("Pillow's Python decoder")
    monkeypatch.setattr(PpmImagePlugin.PpmDecoder, "decode", refused)
    samples = np.random.default_rng(0).integers(0, maxval + 1, (5, 7, 3)).astype(np.uint16)
    (tmp_path / "c.ppm").write_bytes(b"P6\n7 5\n%d\n" % maxval + samples.astype(">u2").tobytes())
    arr, info = read_image(tmp_path / "c.ppm")
    assert np.array_equal(arr, (samples.astype(np.uint32) * 65535 + maxval // 2) // maxval)
    assert info.format == "PPM" and info.mode == "RGB"


def test_a_plain_sixteen_bit_ppm_is_read_in_sixteen_bits(tmp_path):
    # The text form (P3) of a deep PPM: Pillow reads it in 8 bits too.
    samples = np.random.default_rng(0).integers(0, 1024, (5, 7, 3)).astype(np.uint16)
    text = b"\n".join(b" ".join(b"%d" % v for v in row) for row in samples.reshape(5, 21))
    (tmp_path / "c.ppm").write_bytes(b"P3\n# text\n7 5\n1023\n" + text + b"\n")
    arr, _ = read_image(tmp_path / "c.ppm")
    want = (samples.astype(np.uint32) * 65535 + 511) // 1023
    assert arr.dtype == np.uint16 and np.array_equal(arr, want)


def test_a_ppm_cut_short_in_its_sixteen_bit_samples_is_broken(tmp_path):
    (tmp_path / "c.ppm").write_bytes(b"P6 7 5 65535\n" + bytes(7 * 5 * 6 - 10))
    with pytest.raises(InputError, match=r"c\.ppm: broken or truncated picture"):
        read_image(tmp_path / "c.ppm")


def jpeg2000(path, samples: np.ndarray, bits: int, codestream: bool = False):
    """A lossless JPEG 2000 (FFmpeg's encoder; Pillow writes no deep colour) of
    H×W×3 uint16 ``samples`` of ``bits`` bits."""
    import av
    height, width = samples.shape[:2]
    context = av.CodecContext.create("jpeg2000", "w")
    context.width, context.height, context.time_base = width, height, 1
    context.pix_fmt = "rgb48le" if bits == 16 else f"gbrp{bits}le"
    context.options = {"format": "j2k" if codestream else "jp2", "pred": "1"}
    frame = av.VideoFrame.from_ndarray((samples << (16 - bits)).astype(np.uint16), format="rgb48le")
    packets = context.encode(frame.reformat(format=context.pix_fmt)) + context.encode()
    path.write_bytes(b"".join(bytes(packet) for packet in packets))
    return path


@pytest.mark.parametrize("bits,codestream", [(16, False), (12, False), (16, True)])
def test_a_deep_colour_jpeg2000_is_read_in_sixteen_bits(bits, codestream, tmp_path):
    # An archive's master scan: Pillow reads its colour in 8 bits.
    samples = np.random.default_rng(0).integers(0, 1 << bits, (6, 9, 3)).astype(np.uint16)
    samples[0, 0] = (1 << bits) - 1
    arr, info = read_image(jpeg2000(tmp_path / ("a.j2k" if codestream else "a.jp2"), samples, bits, codestream))
    top = (1 << bits) - 1
    assert arr.dtype == np.uint16 and info.format == "JPEG2000" and arr[0, 0, 0] == 65535
    assert np.array_equal(arr, (samples.astype(np.uint32) * 65535 + top // 2) // top)


def test_a_sixteen_bit_apng_frame_outside_its_canvas_is_a_broken_picture(tmp_path):
    # Pillow reads the default image; FFmpeg, reading the 16 bits, refused the frame
    # with its own PatchWelcomeError, which went through as no InputError.
    samples = np.random.default_rng(0).integers(0, 1 << 16, (4, 5, 3), np.uint16)
    control = png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 5, 8, 0, 0, 50, 1000, 0, 0))
    still = png_bytes(samples, 16, 2, png_chunk(b"acTL", struct.pack(">II", 1, 0)))
    frame = png_chunk(b"fdAT", struct.pack(">I", 1) + png_data(samples, 16))
    (tmp_path / "a.png").write_bytes(still[:-12] + control + frame + still[-12:])
    said = r"^\S*a.png: broken or truncated picture \(FFmpeg cannot decode it: [^\n]*\)$"
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "a.png")


def test_exif_orientation_is_applied_and_reset(tmp_path):
    im = rgb_image(4, 6)
    exif = im.getexif()
    exif[0x0112] = 6  # rotated 90° clockwise
    exif[0x013B] = "Jane Doe"  # Artist
    src = save(tmp_path / "o.jpg", im, exif=exif.tobytes(), quality=95)
    arr, info = read_image(src)
    assert arr.shape[:2] == (6, 4)
    write_image(tmp_path / "out.jpg", arr, info)
    with Image.open(tmp_path / "out.jpg") as written:
        out_exif = written.getexif()
    assert out_exif.get(0x0112, 1) == 1 and out_exif[0x013B] == "Jane Doe"


def test_an_infos_exif_set_to_drop_it_says_to_make_another_with_replace(tmp_path):
    # found by a check of the library's messages: info.exif = None (to keep a photo's
    # GPS and camera out of the upscaled copy) was dataclasses' "cannot assign to field
    # 'exif'", where an Upscaler's settings say what to do instead.
    im = rgb_image(4, 6)
    exif = im.getexif()
    exif[0x013B] = "Jane Doe"  # Artist
    _, info = read_image(save(tmp_path / "o.jpg", im, exif=exif.tobytes(), quality=95))
    with pytest.raises(AttributeError) as refused:
        info.exif = None
    assert str(refused.value) == ("this ImageInfo's exif is fixed when it is made: make another with "
                                  "dataclasses.replace(info, exif=...)")
    assert info.exif is not None
    write_image(tmp_path / "out.jpg", np.zeros((6, 4, 3), np.uint8), replace(info, exif=None))
    with Image.open(tmp_path / "out.jpg") as written:
        assert 0x013B not in written.getexif()


@pytest.mark.parametrize("kind", ["Animation", "EncodeOptions", "Lane"])
def test_the_librarys_other_records_set_later_say_to_make_another_with_replace(kind, cpu_upscalers):
    from ncnn_sr import Animation
    from ncnn_sr.lanes import Lane
    from ncnn_sr.video import EncodeOptions

    made, said, field, value = {
        "Animation": (lambda: Animation((np.zeros((2, 2, 3), np.uint8),), (100,)), "this Animation's", "durations",
                      (50,)),
        "EncodeOptions": (lambda: EncodeOptions(), "EncodeOptions'", "crf", 16),
        "Lane": (lambda: Lane(cpu_upscalers("realesr-animevideov3-x2"), 1), "this Lane's", "workers", 2)}[kind]
    record = made()
    name = {"Animation": "anim", "EncodeOptions": "options", "Lane": "lane"}[kind]
    with pytest.raises(AttributeError) as refused:
        setattr(record, field, value)
    assert str(refused.value) == (f"{said} {field} is fixed when it is made: make another with "
                                  f"dataclasses.replace({name}, {field}=...)")
    assert getattr(replace(record, **{field: value}), field) == value
    with pytest.raises(AttributeError, match="cannot assign to field 'other'"):
        record.other = 1  # no field of it: as dataclasses says it


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_turns_the_pixels_as_pillow_does(orientation, tmp_path):
    from PIL import ImageOps

    im = rgb_image(3, 5)
    exif = im.getexif()
    exif[0x0112] = orientation
    src = save(tmp_path / "o.png", im, exif=exif.tobytes())
    arr, info = read_image(src)
    with Image.open(src) as pillow:
        assert np.array_equal(arr, np.asarray(ImageOps.exif_transpose(pillow)))
    out = Image.Exif()
    out.load(info.exif)
    assert out[0x0112] == 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_orientation_pillow_loses_past_a_tag_cut_short_is_still_applied(fmt, tmp_path):
    # found by a picture audit: Pillow stops reading a directory at the first value
    # cut short (the Model's text, here, which the block ends before), and the
    # orientation after it was lost: the picture came out sideways, where browsers,
    # which read the orientation's entry alone, show it upright.
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = 6, "Maker", "A long model name"
    block = exif.tobytes()[:-8]
    Image.fromarray(picture(10, 30)).save(tmp_path / "p", fmt, exif=block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's "Truncated File Read", as it opens a JPEG
        with Image.open(tmp_path / "p") as pillow:
            assert 0x0112 not in pillow.getexif()  # as Pillow reads it
    arr, info = read_image(tmp_path / "p")
    assert arr.shape[:2] == (30, 10)
    assert images_mod.upright_sizes(tmp_path / "p") == ((30, 10),)
    assert metadata_mod._stated_orientation(info.exif) == 1  # written back upright


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["L", "P", "I;16"])
def test_an_uncompressed_grey_or_palette_tiff_turned_a_quarter_reads_as_its_pixels_turned(mode, orientation, tmp_path):
    # Pillow memory-maps a one-strip uncompressed L, P or I;16 TIFF opened by its
    # path at the size it states upright, not the size stored: turned a quarter
    # (orientation 5-8), its rows were wrapped at the wrong width and the picture
    # came out scrambled, its sides swapped, without a word.
    stored = np.arange(5 * 3, dtype=np.uint8).reshape(5, 3) * 17
    im = Image.fromarray(stored.astype(np.uint16) * 257) if mode == "I;16" else Image.fromarray(stored)
    if mode == "P":
        im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(tmp_path / "o.tif", exif=exif)
    with Image.open(io.BytesIO((tmp_path / "o.tif").read_bytes())) as from_bytes:  # no memory map: turned right
        expected = np.asarray(from_bytes.convert("RGB") if mode == "P" else from_bytes)
    arr, _ = read_image(tmp_path / "o.tif")
    assert arr.shape == expected.shape[:2] + (arr.shape[2],) == ((5, 3) if orientation < 5 else (3, 5)) + (arr.shape[2],)
    assert np.array_equal(arr, expected.reshape(arr.shape))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_colour_written_with_a_grey_pictures_info_keeps_its_colour(dtype, tmp_path):
    # The info of a grey picture with alpha (LA) wrote any RGBA array as LA: a picture
    # coloured since it was read lost its colour without a word. Grey pixels
    # (equal R, G and B, as the engine keeps a grey one) are still written grey.
    grey = picture(6, 8, channels=1)[:, :, 0]
    _, info = read_image(save(tmp_path / "la.png", Image.fromarray(grey).convert("LA")))
    assert info.mode == "LA"
    colour = picture(6, 8, channels=4, dtype=dtype)
    for fmt in ("png", "webp", "avif") if dtype == np.uint8 else ("png",):
        write_image(tmp_path / f"o.{fmt}", colour, info)
        back, _ = read_image(tmp_path / f"o.{fmt}")
        assert back.shape == (6, 8, 4)
        spread = np.ptp(back[:, :, :3].astype(int), axis=2)
        assert spread.max() > 100, fmt  # not written grey
        if fmt == "png":
            assert np.array_equal(back, colour)
    grey_rgba = colour[:, :, [0, 0, 0, 3]]
    write_image(tmp_path / "g.png", grey_rgba, info)
    assert png_header(tmp_path / "g.png")[1] == 4  # grey+alpha
    assert np.array_equal(read_image(tmp_path / "g.png")[0], grey_rgba)


# What Stable Diffusion's web UI (a tEXt "parameters") and ComfyUI ("prompt" and
# "workflow") write, beside a compressed and an international one, and one after the pixels.
AI_TEXT = ((b"tEXt", b"parameters\x00a cat, Steps: 20, Sampler: Euler a, Size: 8x6"),
           (b"tEXt", b'prompt\x00{"3": {"class_type": "KSampler"}}'),
           (b"zTXt", b"workflow\x00\x00" + zlib.compress(b'{"nodes": []}')),
           (b"iTXt", b"Title\x00\x00\x00ja\x00\xe3\x82\xbf\xe3\x82\xa4\xe3\x83\x88\xe3\x83\xab\x00\xe7\x8c\xab"))


def ai_png(path, samples: np.ndarray, depth: int = 8):
    """A PNG of ``samples`` (RGB) with AI_TEXT, its last chunk after the pixels."""
    data = png_bytes(samples, depth, 2, *(png_chunk(kind, body) for kind, body in AI_TEXT[:-1]))
    end = data.rindex(b"IEND") - 4
    path.write_bytes(data[:end] + png_chunk(*AI_TEXT[-1]) + data[end:])
    return path


def text_in(path) -> list[tuple[bytes, bytes]]:
    """A PNG file's text chunks, as (kind, data), in its order."""
    data, found, at = Path(path).read_bytes(), [], 8
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            found.append((kind, data[at + 8:at + 8 + length]))
        at += 12 + length
    return found


@pytest.mark.parametrize("depth", [8, 16])
def test_a_pngs_text_chunks_are_kept_in_a_png_written_from_it(depth, tmp_path):
    # Stable Diffusion's and ComfyUI's pictures say in them what they were made with:
    # the upscaled png lost it.
    samples = picture(6, 8).astype(np.uint16) * 257 if depth == 16 else picture(6, 8)
    arr, info = read_image(ai_png(tmp_path / "ai.png", samples, depth))
    assert info.text_chunks == AI_TEXT
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png") == list(AI_TEXT)
    with Image.open(tmp_path / "o.png") as im:
        im.load()
        assert im.text["parameters"].startswith("a cat") and im.text["workflow"] == '{"nodes": []}'
        assert im.text["Title"] == "\u732b" and im.text["Title"].lang == "ja"
    assert np.array_equal(read_image(tmp_path / "o.png")[0], arr)
    write_image(tmp_path / "bare.png", arr, info, metadata=False)
    assert text_in(tmp_path / "bare.png") == []
    for fmt in ("jpg", "webp"):  # which hold no PNG text: written without it
        write_image(tmp_path / f"o.{fmt}", arr, info)
        assert read_image(tmp_path / f"o.{fmt}")[0].shape == arr.shape


@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("body", [b"no separator", b"\x00no keyword", b"k" * 80 + b"\x00too long a keyword"],
                         ids=["no-nul", "empty-keyword", "long-keyword"])
def test_a_text_chunk_without_a_keyword_is_left_out_not_the_picture(body, after_pixels, tmp_path):
    # Kept as read, it failed the picture once upscaled, blamed on the output in the
    # words of the library's check of info.text_chunks: "o.png: info.text_chunks
    # must be (kind, data) pairs of bytes...". libpng leaves such a chunk out.
    bad = png_chunk(b"tEXt", body)
    good = [png_chunk(kind, text) for kind, text in AI_TEXT[:2]]
    data = png_bytes(picture(6, 8), 8, 2, *good, *([] if after_pixels else [bad]))
    if after_pixels:
        data = data[:-12] + bad + data[-12:]
    (tmp_path / "t.png").write_bytes(data)
    arr, info = read_image(tmp_path / "t.png")
    assert info.text_chunks == AI_TEXT[:2]
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png") == list(AI_TEXT[:2])


# A ComfyUI workflow past 1 MB once decompressed: Pillow refuses a picture for it
# (PngImagePlugin.MAX_TEXT_CHUNK), where libpng reads it.
LONG_TEXT = b'{"nodes": [' + b'{"id": 1}, ' * 120_000 + b"]}"


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("after_pixels", [False, True])
@pytest.mark.parametrize("kind, body", [(b"zTXt", b"workflow\x00\x00" + zlib.compress(LONG_TEXT)),
                                        (b"iTXt", b"workflow\x00\x01\x00\x00\x00" + zlib.compress(LONG_TEXT))], ids=["zTXt", "iTXt"])
def test_a_text_chunk_past_pillows_limit_is_kept_whole_and_the_picture_read(kind, body, after_pixels, depth,
                                                                            tmp_path, caplog):
    # Before the pixels it was read with "a damaged chunk left out" and yet copied
    # into the png; after them the picture failed as "broken or truncated picture
    # (Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK)".
    long, good = png_chunk(kind, body), png_chunk(*AI_TEXT[0])
    samples = picture(6, 8).astype(np.uint16) * 257 if depth == 16 else picture(6, 8)
    data = png_bytes(samples, depth, 2, good, *([] if after_pixels else [long]))
    if after_pixels:
        data = data[:-12] + long + data[-12:]
    (tmp_path / "t.png").write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "t.png")
    assert caplog.text == ""
    assert np.array_equal(arr, samples) and info.text_chunks == (AI_TEXT[0], (kind, body))
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png") == [AI_TEXT[0], (kind, body)]
    assert np.array_equal(read_image(tmp_path / "o.png")[0], samples)


# More text than Pillow reads in all (PngImagePlugin.MAX_TEXT_MEMORY, 64 MB once
# decompressed), each chunk within its 1 MB: 66 zTXt and iTXt of 1 MB each.
MUCH_TEXT = [(kind, b"note%d\x00" % i + head + zlib.compress(b"x" * 1_040_000, 9))
             for i, (kind, head) in enumerate([(b"zTXt", b"\x00"), (b"iTXt", b"\x01\x00\x00\x00")] * 33)]


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("after_pixels", [False, True])
def test_more_text_than_pillow_reads_in_all_is_kept_and_the_picture_read(after_pixels, depth, tmp_path, caplog):
    # The picture failed as "broken or truncated picture (Too much memory used in
    # text chunks: 67600024>MAX_TEXT_MEMORY)", before its pixels or after them.
    xmp = (b"iTXt", png_mod.PNG_XMP_KEY + b"\x00\x00\x00\x00\x00<x:xmpmeta>t</x:xmpmeta>")
    samples = picture(6, 8).astype(np.uint16) * 257 if depth == 16 else picture(6, 8)
    texts = [png_chunk(*xmp)] + [png_chunk(*text) for text in MUCH_TEXT]
    data = png_bytes(samples, depth, 2, *([] if after_pixels else texts))
    if after_pixels:
        data = data[:-12] + b"".join(texts) + data[-12:]
    (tmp_path / "t.png").write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "t.png")
    assert caplog.text == ""
    assert np.array_equal(arr, samples) and info.text_chunks == tuple(MUCH_TEXT)
    assert info.xmp == b"<x:xmpmeta>t</x:xmpmeta>"  # still Pillow's to read
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png")[1:] == MUCH_TEXT
    assert np.array_equal(read_image(tmp_path / "o.png")[0], samples)


@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_ztxt_of_an_unknown_compression_is_left_out_as_the_warning_says(after_pixels, tmp_path, caplog):
    # No reader can read it (libpng leaves it out). Before the pixels it was "left
    # out" yet copied into the png, which Pillow then refused whole; after them the
    # picture failed as "broken or truncated picture (Unknown compression method 1 ...)".
    bad, good = png_chunk(b"zTXt", b"workflow\x00\x01" + zlib.compress(b"{}")), png_chunk(*AI_TEXT[0])
    data = png_bytes(picture(6, 8), 8, 2, good, *([] if after_pixels else [bad]))
    if after_pixels:
        data = data[:-12] + bad + data[-12:]
    (tmp_path / "t.png").write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "t.png")
    assert caplog.text.count("t.png: a damaged chunk left out, as libpng leaves it out: "
                             "zTXt (Unknown compression method 1 in zTXt chunk)") == 1
    assert np.array_equal(arr, picture(6, 8)) and info.text_chunks == (AI_TEXT[0],)
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png") == [AI_TEXT[0]]
    with Image.open(tmp_path / "o.png") as written:
        written.load()


def test_an_xmp_past_pillows_limit_is_kept_as_it_is(tmp_path):
    # Pillow cannot read it as the picture's XMP: it was lost, with a warning
    # calling it damaged.
    xmp = (b"iTXt", png_mod.PNG_XMP_KEY + b"\x00\x01\x00\x00\x00" + zlib.compress(b"<x:xmpmeta>" + LONG_TEXT))
    (tmp_path / "x.png").write_bytes(png_bytes(picture(6, 8), 8, 2, png_chunk(*xmp)))
    arr, info = read_image(tmp_path / "x.png")
    assert info.text_chunks == (xmp,) and not info.xmp
    write_image(tmp_path / "o.png", arr, info)
    assert text_in(tmp_path / "o.png") == [xmp]


def test_an_exif_imagemagick_wrote_as_png_text_goes_once_as_exif_with_its_orientation_reset(tmp_path):
    # ImageMagick writes a PNG's EXIF as a text chunk, "Raw profile type exif", which
    # Pillow reads as its EXIF: the picture was turned by it and its EXIF written
    # as eXIf, orientation 1, but the text was copied too, orientation 6 and all,
    # which tools reading it (ImageMagick, exiv2's) took to turn the picture again.
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Cam"
    body = exif.tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(body):8}\n{body.hex()}\n", zip=True)
    info.add_text("parameters", "a cat")
    rgb_image(4, 6).save(tmp_path / "m.png", pnginfo=info)
    arr, info = read_image(tmp_path / "m.png")
    assert arr.shape[:2] == (6, 4) and [data.split(b"\0")[0] for _, data in info.text_chunks] == [b"parameters"]
    write_image(tmp_path / "o.png", arr, info)
    with Image.open(tmp_path / "o.png") as written:
        written.load()
        assert "Raw profile type exif" not in written.info and written.info["parameters"] == "a cat"
        assert written.getexif()[0x0112] == 1 and written.getexif()[0x010F] == "Cam"


def test_an_xmp_imagemagick_wrote_as_png_text_is_the_pictures_xmp_its_orientation_reset(tmp_path):
    # ImageMagick writes a PNG's XMP as a text chunk too ("Raw profile type xmp"),
    # which exiv2 and exiftool read as its XMP: it was copied as text, still saying
    # 6 and the old size, beside an EXIF reset to 1 on the turned picture, and a
    # jpg or webp got no XMP at all.
    exif = Image.Exif()
    exif[0x0112] = 6
    body = exif.tobytes()
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6" '
           b'exif:PixelXDimension="6" dc:creator="Jane"/></x:xmpmeta>')
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(body):8}\n{body.hex()}\n", zip=True)
    info.add_text("Raw profile type xmp", f"\nxmp\n{len(xmp):8}\n{xmp.hex()}\n", zip=True)
    info.add_text("parameters", "a cat")
    rgb_image(4, 6).save(tmp_path / "m.png", pnginfo=info)
    arr, info = read_image(tmp_path / "m.png")
    assert arr.shape[:2] == (6, 4) and [data.split(b"\0")[0] for _, data in info.text_chunks] == [b"parameters"]
    assert info.xmp == xmp.replace(b'Orientation="6"', b'Orientation="1"')
    for fmt in ("png", "jpg"):
        write_image(tmp_path / f"o.{fmt}", arr, info)
        with Image.open(tmp_path / f"o.{fmt}") as written:
            written.load()
            assert "Raw profile type xmp" not in written.info
            assert b'tiff:Orientation="1"' in written.info["xmp"] and b'PixelXDimension="4"' in written.info["xmp"]


def test_a_pngs_xmp_is_kept_once_beside_its_text(tmp_path):
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><tiff:Orientation>1</tiff:Orientation></x:xmpmeta>'
    path = save_with_xmp(tmp_path / "x.png", rgb_image(), xmp)
    arr, info = read_image(path)
    assert info.text_chunks == () and info.xmp == xmp
    write_image(tmp_path / "o.png", arr, replace(info, text_chunks=AI_TEXT[:1]))
    assert [kind for kind, _ in text_in(tmp_path / "o.png")] == [b"iTXt", b"tEXt"]


@pytest.mark.parametrize("texts", [
    ((b"tIME", b"parameters\x00x"),),  # no text chunk
    ((b"tEXt", b"no keyword"),),
    ((b"tEXt", b"\x00no keyword"),),
    ((b"tEXt", "parameters\x00x"),),
    "parameters",
])
def test_text_chunks_that_are_none_are_refused(texts, tmp_path):
    with pytest.raises(InputError, match=r"o.png: info.text_chunks must be \(kind, data\) pairs of bytes"):
        write_image(tmp_path / "o.png", picture(4, 4), images_mod.ImageInfo("RGB", "PNG", text_chunks=texts))
    assert not (tmp_path / "o.png").exists()


def test_a_png_transparency_key_on_grey_or_colour_is_alpha(tmp_path):
    # tRNS on an L or RGB PNG makes one grey level or colour transparent; it was dropped.
    grey = picture(6, 8, channels=1)[:, :, 0]
    key = int(grey[0, 0])
    src = save(tmp_path / "l.png", Image.fromarray(grey), transparency=key)
    arr, info = read_image(src)
    assert arr.shape == (6, 8, 4) and (arr[:, :, 3] == 0).sum() == (grey == key).sum()
    write_image(tmp_path / "l_out.png", arr, info)
    with Image.open(tmp_path / "l_out.png") as im:
        assert im.mode == "LA"  # grey stays grey
    colour = picture(6, 8)
    src = save(tmp_path / "rgb.png", Image.fromarray(colour), transparency=tuple(int(v) for v in colour[0, 0]))
    arr, _ = read_image(src)
    assert arr.shape == (6, 8, 4) and arr[0, 0, 3] == 0 and (arr[:, :, 3] == 255).any()


@pytest.mark.parametrize("fmt, payload", [
    ("jpg", b"Exif\x00\x00" + b"\xde\xad" * 20),  # not even a TIFF header
    ("jpg", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00\x01\x00"),  # cut short
    ("png", b"\xde\xad" * 20),
])
def test_a_corrupt_exif_block_costs_the_metadata_not_the_picture(fmt, payload, tmp_path):
    import io
    
    buffer = io.BytesIO()
    rgb_image().save(buffer, format="JPEG" if fmt == "jpg" else "PNG")
    data = buffer.getvalue()
    if fmt == "jpg":
        segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
        data = data[:2] + segment + data[2:]
    else:
        at = data.index(b"IDAT") - 4
        data = data[:at] + png_mod.chunk(b"eXIf", payload) + data[at:]
    (tmp_path / f"bad.{fmt}").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw Pillow warning either (pytest would catch it unseen)
        arr, info = read_image(tmp_path / f"bad.{fmt}")
        write_image(tmp_path / "out.png", arr, info)
    assert arr.shape == (6, 8, 3) and info.exif is None


def test_a_tiffs_exif_is_kept_without_the_tags_of_its_own_layout(tmp_path):
    # A TIFF's EXIF is its first directory's descriptive tags and their Exif IFD: all
    # were left out with the strips' offsets and sizes, which describe that file alone.
    from PIL import TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[0x010F], tags[0x8298], tags[0x0112] = "Canon", "(c) Jane Doe", 6  # Make, Copyright, Orientation
    tags[0x8769] = {0x9003: "2020:01:02 03:04:05"}  # the Exif IFD's DateTimeOriginal
    arr, info = read_image(save(tmp_path / "i.tiff", rgb_image(), tiffinfo=tags))
    write_image(tmp_path / "o.png", arr, info)
    with Image.open(tmp_path / "o.png") as out:
        exif = out.getexif()
        assert arr.shape[:2] == (8, 6) and exif.get(0x0112, 1) == 1
        assert exif[0x010F] == "Canon" and exif[0x8298] == "(c) Jane Doe"
        assert exif.get_ifd(0x8769) == {0x9003: "2020:01:02 03:04:05"}
        assert not {256, 257, 273, 279} & set(exif)  # the TIFF's size, strips and their sizes


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_tiffs_windows_title_tags_rating_and_host_computer_are_kept_as_a_jpegs_are(fmt, tmp_path):
    # Windows writes a picture's title, comment, author, tags and subject (XPTitle...)
    # and its stars (Rating) in the first directory; a JPEG's kept them, a TIFF's were
    # left out with the tags of its file's layout.
    from PIL import TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    descriptive = {0x9C9B: "Title", 0x9C9C: "Comment", 0x9C9D: "Author", 0x9C9E: "tag1;tag2", 0x9C9F: "Subject"}
    for tag, text in descriptive.items():
        tags[tag] = text.encode("utf-16-le") + b"\0\0"
    tags[0x4746], tags[0x4749], tags[0x013C], tags[0x010F] = 4, 75, "darkroom", "Canon"
    arr, info = read_image(save(tmp_path / "i.tiff", rgb_image(), tiffinfo=tags))
    write_image(tmp_path / f"o.{fmt}", arr, info)
    with Image.open(tmp_path / f"o.{fmt}") as out:
        exif = out.getexif()
        assert {tag: bytes(exif[tag]).decode("utf-16-le").rstrip("\0") for tag in descriptive} == descriptive
        assert (exif[0x4746], exif[0x4749], exif[0x013C], exif[0x010F]) == (4, 75, "darkroom", "Canon")
        assert not {256, 257, 258, 273, 279} & set(exif)


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "png16"])
def test_the_exif_size_of_the_picture_is_that_of_the_picture_written(fmt, tmp_path):
    # The EXIF's PixelXDimension and PixelYDimension (Pillow's ExifImageWidth and
    # ExifImageHeight) and its first directory's ImageWidth and ImageLength gave the
    # input's size: viewers and galleries that trust them showed the output at it.
    im = rgb_image()  # 8 across, 6 down, turned upright to 6 across, 8 down
    exif = im.getexif()
    exif[0x0100], exif[0x0101], exif[0x0112] = 8, 6, 6
    exif.get_ifd(0x8769).update({0xA002: 8, 0xA003: 6, 0x9003: "2020:01:02 03:04:05"})
    arr, info = read_image(save(tmp_path / "i.jpg", im, exif=exif.tobytes()))
    big = arr.repeat(3, axis=0).repeat(3, axis=1)  # 18 across, 24 down
    if fmt == "png16":
        big = big.astype(np.uint16) * 257
    out = tmp_path / f"o.{fmt.removesuffix('16')}"
    write_image(out, big, info)
    with Image.open(out) as written:
        exif = written.getexif()
        assert (exif[0x0100], exif[0x0101]) == (18, 24) and exif[0x0112] == 1
        assert exif.get_ifd(0x8769) == {0xA002: 18, 0xA003: 24, 0x9003: "2020:01:02 03:04:05"}


def test_an_exif_size_past_what_a_short_holds_is_written_as_a_long():
    from ncnn_sr.metadata import sized_exif

    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0xA002: 8, 0xA003: 6})
    data = exif.tobytes()
    sized = sized_exif(data, 70000, 5)
    assert len(sized) == len(data)
    read = Image.Exif()
    read.load(sized)
    assert read.get_ifd(0x8769) == {0xA002: 70000, 0xA003: 5}
    assert sized_exif(b"Exif\x00\x00II*\x00\x08\x00", 9, 9) == b"Exif\x00\x00II*\x00\x08\x00"  # cut short: as it was


def test_an_exif_whose_last_size_entry_is_cut_short_is_kept_as_it_was():
    # Its value's 4 bytes past the end were appended: the EXIF grew, where a damaged
    # one is given back as it is.
    from ncnn_sr.metadata import sized_exif

    cut = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00" + struct.pack("<HHI", 0x0100, 3, 1)
    assert sized_exif(cut, 9, 9) == cut


def test_an_exif_too_large_for_jpeg_is_an_input_error_and_png_keeps_it(tmp_path):
    im = rgb_image()
    exif = im.getexif()
    exif[0x013B] = "Jane Doe"
    exif[0x010E] = "x" * 70000  # ImageDescription: a PNG or WebP can carry it, JPEG cannot
    src = save(tmp_path / "i.png", im, exif=exif.tobytes())
    arr, info = read_image(src)
    # A library caller is told the argument that leaves it out, not the command's flag.
    with pytest.raises(InputError, match=r"o.jpg: its EXIF \(\d+ bytes\) is too large for JPEG.*\(metadata=False\)$"):
        write_image(tmp_path / "o.jpg", arr, info)
    write_image(tmp_path / "o2.jpg", arr, info, metadata=False)
    write_image(tmp_path / "o.png", arr, info)
    with Image.open(tmp_path / "o.png") as written:
        assert written.getexif()[0x013B] == "Jane Doe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.png", "o.png", "o2.jpg"]


@pytest.mark.parametrize("duplicate", ["pickle", "copy"])
def test_the_jpeg_exif_error_crosses_a_process_pool(duplicate, tmp_path):
    # found by a library audit: write_image's EXIF error could not be unpickled (its
    # __init__ takes the option too), so a multiprocessing Pool's result thread died on
    # it and pool.map waited for ever; ProcessPoolExecutor said BrokenProcessPool.
    import copy
    import pickle

    from ncnn_sr.errors import FlagNames

    arr, info = read_image(save(tmp_path / "i.png", rgb_image(), exif=_long_exif()))
    with pytest.raises(InputError) as refused:
        write_image(tmp_path / "o.jpg", arr, info)
    error = refused.value
    again = pickle.loads(pickle.dumps(error)) if duplicate == "pickle" else copy.copy(error)
    assert type(again) is type(error) and str(again) == str(error) and again.args == error.args
    assert again.said(FlagNames()) == error.said(FlagNames()) and again.said(FlagNames()).endswith("(--no-metadata)")
    assert again.option == error.option


def _long_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "x" * 70000  # too large for JPEG
    return exif.tobytes()


GAMMA = png_chunk(b"gAMA", struct.pack(">I", 100000))  # linear light
CHROMATICITIES = png_chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
STANDARD_RGB = png_chunk(b"sRGB", b"\x01")


def png_chunks(path) -> dict[bytes, bytes]:
    """The data of each chunk of the PNG at ``path`` (the last of a kind)."""
    data, at, found = open(path, "rb").read(), 8, {}
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        found[kind] = data[at + 8:at + 8 + length]
        at += 12 + length
    return found


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint8), (3, np.uint16), (4, np.uint16)])
def test_a_pngs_gamma_chromaticities_and_srgb_are_kept_in_a_png(channels, dtype, tmp_path):
    # A viewer shows the samples through them: left out, a PNG of gamma 1.0 came out
    # far darker than it went in.
    samples = picture(6, 8, channels).astype(dtype) * (257 if dtype == np.uint16 else 1)
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(samples, samples.itemsize * 8, colour_type, GAMMA, CHROMATICITIES, STANDARD_RGB))
    arr, info = read_image(src)
    write_image(tmp_path / "o.png", arr.repeat(2, axis=0).repeat(2, axis=1), info)
    written = png_chunks(tmp_path / "o.png")
    assert (written[b"gAMA"], written[b"cHRM"], written[b"sRGB"]) == (GAMMA[8:-4], CHROMATICITIES[8:-4], b"\x01")
    with Image.open(tmp_path / "o.png") as im:
        assert im.info["gamma"] == 1.0 and im.size == (16, 12)
    write_image(tmp_path / "bare.png", arr, info, metadata=False)
    assert not {b"gAMA", b"cHRM", b"sRGB"} & set(png_chunks(tmp_path / "bare.png"))


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (3, np.uint16)])
def test_a_png_with_an_icc_profile_keeps_it_and_its_gamma_without_srgb(channels, dtype, tmp_path):
    # PNG allows an sRGB chunk or an ICC profile, not both: the profile wins.
    samples = picture(6, 8, channels).astype(dtype) * (257 if dtype == np.uint16 else 1)
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(samples, samples.itemsize * 8, 2, GAMMA, STANDARD_RGB))
    arr, info = read_image(src)
    write_image(tmp_path / "o.png", arr, replace(info, icc_profile=SRGB_ICC))
    written = png_chunks(tmp_path / "o.png")
    assert b"iCCP" in written and written[b"gAMA"] == GAMMA[8:-4] and b"sRGB" not in written


# Display P3's chromaticities (its white D65), as a cHRM chunk states them.
P3_CHROMATICITIES = png_chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 68000, 32000, 26500, 69000, 15000, 6000))


def xy_to_rgb_matrix(white, red, green, blue) -> np.ndarray:
    """The matrix from linear RGB of these primaries to XYZ, their white's Y 1."""
    columns = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in (red, green, blue)]).T
    x, y = white
    return columns * np.linalg.solve(columns, [x / y, 1.0, (1 - x - y) / y])


def srgb_encoded(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0, 1)
    return 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def as_srgb(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """``pixels`` (H×W×C, uint8) shown through the profile ``icc``, as sRGB: what a
    colour-managed viewer shows."""
    im = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return np.asarray(ImageCms.profileToProfile(im, profile, ImageCms.createProfile("sRGB"), outputMode="RGB"),
                      dtype=float)


LEVELS = np.array([[[0, 0, 0], [64, 64, 64], [128, 128, 128], [255, 255, 255]],
                   [[200, 30, 30], [30, 200, 30], [30, 30, 200], [90, 160, 220]]], np.uint8)


@pytest.mark.parametrize("fmt", ["jpg", "webp", "avif"])
@pytest.mark.parametrize("gamma,chromaticities", [(100000, CHROMATICITIES), (55556, P3_CHROMATICITIES), (100000, b"")],
                         ids=["linear", "p3-gamma-1.8", "linear-gamma-only"])
def test_a_pngs_gamma_and_chromaticities_become_an_icc_profile_where_the_format_holds_no_chunks(
        fmt, gamma, chromaticities, tmp_path):
    # A jpg, webp or avif holds no gAMA or cHRM: without a profile stating them, a
    # PNG of gamma 1.0 came out far darker in every viewer, a Display P3 one duller.
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, png_chunk(b"gAMA", struct.pack(">I", gamma)), chromaticities))
    arr, info = read_image(src)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    with Image.open(tmp_path / f"o.{fmt}") as im:
        icc = im.info.get("icc_profile")
    assert icc and icc[16:20] == b"RGB "
    primaries = struct.unpack(">8I", chromaticities[8:-4]) if chromaticities else \
        (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
    white, red, green, blue = (np.array(primaries, float).reshape(4, 2) / 100000).tolist()
    to_srgb = np.linalg.solve(xy_to_rgb_matrix([0.3127, 0.329], [0.64, 0.33], [0.3, 0.6], [0.15, 0.06]),
                              xy_to_rgb_matrix(white, red, green, blue))
    linear = (LEVELS / 255.0) ** (100000 / gamma)
    expected = srgb_encoded(linear @ to_srgb.T)
    assert np.abs(as_srgb(LEVELS, icc) - expected).max() <= 2


@pytest.mark.parametrize("fmt,space", [("jpg", b"GRAY"), ("webp", b"RGB "), ("avif", b"RGB ")])
def test_a_grey_pngs_gamma_becomes_a_profile_of_the_written_pixels_colour_space(fmt, space, tmp_path):
    # A jpg keeps grey pixels grey: a grey profile; a webp or avif writes them as colour.
    grey = LEVELS[:1, :, :1]
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(grey, 8, 0, GAMMA))
    arr, info = read_image(src)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    with Image.open(tmp_path / f"o.{fmt}") as im:
        icc = im.info.get("icc_profile")
    assert icc and icc[16:20] == space
    shown = as_srgb(grey if space == b"GRAY" else grey.repeat(3, axis=2), icc)
    assert np.abs(shown - srgb_encoded(grey / 255.0)).max() <= 2


@pytest.mark.parametrize("fmt", ["webp", "avif"])
@pytest.mark.parametrize("curve", [1.0, lambda v: v ** 1.8], ids=["gamma-1.0", "sampled"])
def test_a_grey_pictures_own_grey_profile_becomes_a_colour_one_where_its_pixels_are_written_as_colour(
        fmt, curve, tmp_path):
    # found by a picture audit: a grey JPEG's GRAY profile (a linear one here; a
    # Photoshop scan's Dot Gain 20%) was left out of a webp or avif, which write grey
    # as colour: colour-managed viewers showed its mid grey (128) as sRGB 128, not 188.
    grey_icc = icc_mod.profile(icc_mod.SRGB_CHROMATICITIES, curve, grey=True)
    grey = LEVELS[:1, :, :1]
    src = save(tmp_path / "i.jpg", Image.fromarray(grey[:, :, 0]), icc_profile=grey_icc, quality=100)
    arr, info = read_image(src)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    with Image.open(tmp_path / f"o.{fmt}") as im:
        icc = im.info.get("icc_profile")
    assert icc and icc[16:20] == b"RGB "
    assert np.abs(as_srgb(grey.repeat(3, axis=2), icc) - as_srgb(grey, grey_icc)).max() <= 1


def test_a_grey_profile_without_a_grey_curve_is_still_left_out_of_colour_pixels(tmp_path):
    # A lookup-table GRAY profile (no kTRC) has no colour form made here: left out, as before.
    info = images_mod.ImageInfo("L", "JPEG", icc_profile=GREY_ICC)
    write_image(tmp_path / "o.webp", picture(4, 6, 1), info)
    assert Image.open(tmp_path / "o.webp").info.get("icc_profile") is None


@pytest.mark.parametrize("chunks", [(STANDARD_RGB,), (GAMMA, STANDARD_RGB), (), (CHROMATICITIES,),
                                    (png_chunk(b"gAMA", struct.pack(">I", 45455)), CHROMATICITIES),
                                    (png_chunk(b"gAMA", struct.pack(">I", 0)),)])
def test_a_png_shown_as_srgb_gets_no_profile_in_other_formats(chunks, tmp_path):
    # sRGB is what viewers assume of a picture without a profile (an sRGB chunk wins
    # over gAMA, as PNG asks; a gamma of 0 is no gamma).
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, *chunks))
    arr, info = read_image(src)
    write_image(tmp_path / "o.jpg", arr, info)
    with Image.open(tmp_path / "o.jpg") as im:
        assert "icc_profile" not in im.info


def cicp(primaries: int, transfer: int) -> bytes:
    return png_chunk(b"cICP", bytes([primaries, transfer, 0, 1]))


def test_a_pngs_cicp_becomes_an_icc_profile_where_the_format_holds_no_chunks(tmp_path):
    # Display P3 with sRGB's curve (12, 13), as phones and browsers write it; cICP
    # wins over gAMA, as PNG asks.
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, GAMMA, cicp(12, 13)))
    arr, info = read_image(src)
    write_image(tmp_path / "o.avif", arr, info)
    with Image.open(tmp_path / "o.avif") as im:
        icc = im.info.get("icc_profile")
    assert icc
    to_srgb = np.linalg.solve(xy_to_rgb_matrix([0.3127, 0.329], [0.64, 0.33], [0.3, 0.6], [0.15, 0.06]),
                              xy_to_rgb_matrix([0.3127, 0.329], [0.68, 0.32], [0.265, 0.69], [0.15, 0.06]))
    linear = np.asarray(srgb_encoded(np.linspace(0, 1, 4096)))  # sRGB's curve, inverted by lookup
    light = np.interp(LEVELS * 1.0, linear, np.linspace(0, 1, 4096))
    assert np.abs(as_srgb(LEVELS, icc) - srgb_encoded(light @ to_srgb.T)).max() <= 2


@pytest.mark.parametrize("chunks,gamma", [((cicp(1, 13), GAMMA), None), ((cicp(1, 1),), None),
                                          ((cicp(9, 16),), None), ((cicp(9, 16), GAMMA), 1.0)],
                         ids=["srgb-over-gamma", "bt709", "hdr", "hdr-with-gamma"])
def test_a_cicp_of_srgb_needs_no_profile_and_one_of_hdr_leaves_the_other_chunks(chunks, gamma, tmp_path):
    # HDR (PQ, HLG) has no ICC profile of a matrix and curves: the picture is shown
    # as a reader without cICP shows the PNG, by its other chunks.
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, *chunks))
    arr, info = read_image(src)
    write_image(tmp_path / "o.webp", arr, info)
    with Image.open(tmp_path / "o.webp") as im:
        icc = im.info.get("icc_profile")
    if gamma is None:
        assert icc is None
    else:
        assert np.abs(as_srgb(LEVELS, icc) - srgb_encoded(LEVELS / 255.0)).max() <= 2


def test_a_pngs_gamma_becomes_no_profile_without_metadata(tmp_path):
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, GAMMA, CHROMATICITIES))
    arr, info = read_image(src)
    write_image(tmp_path / "o.webp", arr, info, metadata=False)
    with Image.open(tmp_path / "o.webp") as im:
        assert "icc_profile" not in im.info


def test_a_pngs_own_profile_wins_over_its_gamma_in_other_formats(tmp_path):
    src = tmp_path / "i.png"
    src.write_bytes(png_bytes(LEVELS, 8, 2, GAMMA))
    arr, info = read_image(src)
    write_image(tmp_path / "o.jpg", arr, replace(info, icc_profile=SRGB_ICC))
    with Image.open(tmp_path / "o.jpg") as im:
        assert im.info["icc_profile"] == SRGB_ICC


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_icc_profile_is_kept(fmt, tmp_path):
    src = save(tmp_path / f"i.{fmt}", rgb_image(), icc_profile=SRGB_ICC)
    arr, info = read_image(src)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    assert Image.open(tmp_path / f"o.{fmt}").info.get("icc_profile") == SRGB_ICC


# A grey ICC profile's header: data colour space GRAY (bytes 16-20).
GREY_ICC = SRGB_ICC[:16] + b"GRAY" + SRGB_ICC[20:]


@pytest.mark.parametrize("fmt, kept", [("png", True), ("jpg", True), ("webp", False)])
def test_grey_icc_profile_is_written_only_where_the_file_stays_grey(fmt, kept, tmp_path):
    # WebP has no grey: a GRAY profile in its RGB made colour-managed readers fail.
    src = save(tmp_path / "i.png", rgb_image().convert("L"), icc_profile=GREY_ICC)
    arr, info = read_image(src)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    assert (Image.open(tmp_path / f"o.{fmt}").info.get("icc_profile") == GREY_ICC) == kept


@pytest.mark.parametrize("space", [b"CMYK", b"Lab ", b"XYZ "])
@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "avif"])
def test_an_icc_profile_of_another_colour_space_than_the_pixels_is_left_out(space, fmt, tmp_path):
    # found by a library audit: the info of another picture (a CMYK photo's profile,
    # read by Pillow) was written with RGB pixels, which colour-managed readers cannot
    # show through it; only a GRAY profile on colour pixels was left out.
    info = images_mod.ImageInfo("RGB", "JPEG", icc_profile=SRGB_ICC[:16] + space + SRGB_ICC[20:])
    write_image(tmp_path / f"o.{fmt}", picture(4, 6), info)
    assert Image.open(tmp_path / f"o.{fmt}").info.get("icc_profile") is None


def test_no_metadata_drops_icc_and_exif(tmp_path):
    im = rgb_image()
    exif = im.getexif()
    exif[0x013B] = "Jane Doe"
    src = save(tmp_path / "i.png", im, icc_profile=SRGB_ICC, exif=exif.tobytes())
    arr, info = read_image(src)
    write_image(tmp_path / "o.png", arr, info, metadata=False)
    out = Image.open(tmp_path / "o.png")
    assert "icc_profile" not in out.info and not out.getexif()


def test_no_metadata_drops_the_resolution(tmp_path):
    arr, info = read_image(save(tmp_path / "i.png", rgb_image(), dpi=(300, 300)))
    write_image(tmp_path / "o.png", arr, info, metadata=False)
    assert "dpi" not in Image.open(tmp_path / "o.png").info


def dpi_of(path) -> tuple[float, float] | None:
    dpi = Image.open(path).info.get("dpi")
    return None if dpi is None else tuple(round(float(d), 1) for d in dpi)  # PNG holds pixels a metre


@pytest.mark.parametrize("out", ["png", "jpg"])
@pytest.mark.parametrize("src", ["png", "jpg", "tiff", "bmp"])
def test_the_resolution_is_kept_as_the_same_dots_per_inch(src, out, tmp_path):
    # An editor scaling a picture keeps its DPI (it prints larger); it was dropped.
    arr, info = read_image(save(tmp_path / f"i.{src}", rgb_image(), dpi=(300, 150)))
    write_image(tmp_path / f"o.{out}", arr, info)
    assert dpi_of(tmp_path / f"o.{out}") == (300, 150)



def exif_dpi_of(path) -> tuple[float, float] | None:
    """The resolution a picture's EXIF states, in dots per inch (a WebP's or AVIF's only place for it)."""
    with Image.open(path) as im:
        exif = im.getexif()
    if 0x011A not in exif:
        return None
    per_inch = {2: 1, 3: 2.54}[exif.get(0x0128, 2)]
    return tuple(round(float(exif[tag]) * per_inch, 1) for tag in (0x011A, 0x011B))


@pytest.mark.parametrize("out", ["webp", "avif"])
@pytest.mark.parametrize("src", ["png", "jpg", "tiff", "bmp"])
def test_the_resolution_is_kept_in_a_webp_or_avifs_exif(src, out, tmp_path):
    # WebP and AVIF state a resolution in their EXIF alone: a TIFF's, PNG's, BMP's or
    # JFIF's, which is not in its EXIF, was lost there.
    arr, info = read_image(save(tmp_path / f"i.{src}", rgb_image(), dpi=(300, 150)))
    write_image(tmp_path / f"o.{out}", arr, info)
    assert exif_dpi_of(tmp_path / f"o.{out}") == (300, 150)
    assert read_image(tmp_path / f"o.{out}")[1].dpi == pytest.approx((300, 150), rel=1e-4)


@pytest.mark.parametrize("out", ["webp", "avif"])
def test_a_turned_tiffs_resolution_and_exif_are_kept_upright_in_a_webp_or_avif(out, tmp_path):
    exif = rgb_image().getexif()
    exif[0x0112] = 6  # rotated 90° clockwise
    exif[0x013B] = "Jane Doe"
    arr, info = read_image(save(tmp_path / "i.tif", rgb_image(), dpi=(300, 150), exif=exif.tobytes()))
    write_image(tmp_path / f"o.{out}", arr, info)
    assert exif_dpi_of(tmp_path / f"o.{out}") == (150, 300)
    with Image.open(tmp_path / f"o.{out}") as written:
        assert written.getexif()[0x013B] == "Jane Doe" and written.getexif().get(0x0112, 1) == 1


def test_a_resolution_added_to_a_cameras_exif_in_a_webp_leaves_its_maker_note_readable(tmp_path):
    # A JPEG stating its resolution in JFIF alone, beside a camera's EXIF: the EXIF
    # gets it in place, its maker note's offsets still pointing at what they name.
    arr, info = read_image(save(tmp_path / "i.jpg", rgb_image(), dpi=(300, 150), exif=camera_exif(6)))
    write_image(tmp_path / "o.webp", arr, info)
    assert exif_dpi_of(tmp_path / "o.webp") == (150, 300)
    with Image.open(tmp_path / "o.webp") as written:
        kept = written.getexif()
        assert kept[0x0112] == 1 and kept[0x010F] == "Can" and kept.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        assert maker_note_model(written.info["exif"]) == b"EOS 5D Mark IV\x00\x00"


def test_a_webp_is_given_no_resolution_without_one_or_metadata(tmp_path):
    arr, info = read_image(save(tmp_path / "i.png", rgb_image()))
    write_image(tmp_path / "o.webp", arr, info)
    arr, info = read_image(save(tmp_path / "dpi.png", rgb_image(), dpi=(300, 150)))
    write_image(tmp_path / "bare.webp", arr, info, metadata=False)
    assert exif_dpi_of(tmp_path / "o.webp") is None and exif_dpi_of(tmp_path / "bare.webp") is None


def test_a_sixteen_bit_colour_png_keeps_its_resolution(tmp_path):
    write_image(tmp_path / "i.png", picture(4, 5, dtype=np.uint16), images_mod.ImageInfo("RGB", "PNG", dpi=(300, 150)))
    arr, info = read_image(tmp_path / "i.png")
    write_image(tmp_path / "o.png", arr, info)
    assert dpi_of(tmp_path / "o.png") == (300, 150)


def test_a_jpeg_stating_no_resolution_gets_none(tmp_path):
    # Pillow gives such a JPEG 72 dpi when it has EXIF: a made-up value is not kept.
    exif = rgb_image().getexif()
    exif[0x013B] = "Jane Doe"
    for name, options in (("plain.jpg", {}), ("exif.jpg", {"exif": exif.tobytes()})):
        arr, info = read_image(save(tmp_path / name, rgb_image(), **options))
        write_image(tmp_path / "o.png", arr, info)
        assert dpi_of(tmp_path / "o.png") is None


def test_a_tiff_stating_no_resolution_gets_none(tmp_path):
    # Pillow gives a TIFF without resolution tags 1 dpi: the output was stated 1 dpi
    # (a 12x16 picture 16 inches wide). One that states it without a unit is in
    # inches, TIFF's default unit.
    arr, info = read_image(save(tmp_path / "none.tiff", rgb_image()))
    write_image(tmp_path / "o.png", arr, info)
    assert info.dpi is None and dpi_of(tmp_path / "o.png") is None
    tags = {282: 300.0, 283: 150.0}  # X and Y resolution, no ResolutionUnit
    assert read_image(save(tmp_path / "no_unit.tiff", rgb_image(), tiffinfo=tags))[1].dpi == (300, 150)


@pytest.mark.parametrize("src", ["png", "jpg", "tif"])  # Pillow turns a TIFF itself, and dropped its orientation
def test_turning_a_picture_upright_swaps_its_horizontal_and_vertical_resolution(src, tmp_path):
    exif = rgb_image().getexif()
    exif[0x0112] = 6  # rotated 90° clockwise
    arr, info = read_image(save(tmp_path / f"i.{src}", rgb_image(), dpi=(300, 150), exif=exif.tobytes()))
    write_image(tmp_path / "o.png", arr, info)
    assert arr.shape[:2] == (8, 6) and dpi_of(tmp_path / "o.png") == (150, 300)


def test_a_resolution_a_format_cannot_hold_is_left_out(tmp_path):
    info = images_mod.ImageInfo("RGB", "PNG", dpi=(70000.0, 70000.0))  # JPEG holds at most 65535
    write_image(tmp_path / "o.jpg", picture(4, 4), info)
    write_image(tmp_path / "o.png", picture(4, 4), info)
    assert dpi_of(tmp_path / "o.jpg") is None and dpi_of(tmp_path / "o.png") == (70000, 70000)


@pytest.mark.parametrize("dpi", [(300,), (0, 300), (float("nan"), 300), ("300", "300"), 300])
def test_a_resolution_that_is_not_two_positive_numbers_is_an_input_error(dpi, tmp_path):
    info = images_mod.ImageInfo("RGB", "PNG", dpi=dpi)
    with pytest.raises(InputError, match=r"o.png: info.dpi must be two positive numbers \(across, down\) or None, got "):
        write_image(tmp_path / "o.png", picture(4, 4), info)
    assert not list(tmp_path.iterdir())


def xmp_packet(orientation: int = 1, pad: int = 0) -> bytes:
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            b'tiff:Orientation="%d" dc:creator="Jane Doe"/></rdf:RDF></x:xmpmeta>' % orientation + b" " * pad)


def save_with_xmp(path, im: Image.Image, xmp: bytes, **kw):
    if path.suffix == ".png":  # Pillow writes a PNG's XMP as a text chunk only
        from PIL.PngImagePlugin import PngInfo

        text = PngInfo()
        text.add_itxt("XML:com.adobe.xmp", xmp)
        return save(path, im, pnginfo=text, **kw)
    return save(path, im, xmp=xmp, **kw)


@pytest.mark.parametrize("out", ["png", "jpg", "webp"])
@pytest.mark.parametrize("src", ["png", "jpg", "webp"])
def test_xmp_is_kept(src, out, tmp_path):
    # It was dropped: the creator, rights and keywords an editor or archive wrote in it.
    arr, info = read_image(save_with_xmp(tmp_path / f"i.{src}", rgb_image(), xmp_packet()))
    write_image(tmp_path / f"o.{out}", arr, info)
    assert Image.open(tmp_path / f"o.{out}").info["xmp"] == xmp_packet()


@pytest.mark.parametrize("out", ["png", "jpg", "png16"])
def test_the_xmp_size_of_the_picture_is_that_of_the_picture_written(out, tmp_path):
    # Photo editors state the size in the XMP too, as attributes or as elements: the
    # input's went along stale, as the EXIF's did.
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
           b'exif:PixelXDimension="8" exif:PixelYDimension="6" tiff:Orientation="6">'
           b'<tiff:ImageWidth>8</tiff:ImageWidth><tiff:ImageLength>6</tiff:ImageLength>'
           b'</rdf:Description></rdf:RDF></x:xmpmeta>')
    arr, info = read_image(save_with_xmp(tmp_path / "i.jpg", rgb_image(), xmp))  # turned: 6 across, 8 down
    big = arr.repeat(3, axis=0).repeat(3, axis=1)
    if out == "png16":
        big = big.astype(np.uint16) * 257
    path = tmp_path / f"o.{out.removesuffix('16')}"
    write_image(path, big, info)
    written = png_text_xmp(path) if path.suffix == ".png" else Image.open(path).info["xmp"]
    assert written == (xmp.replace(b'"8"', b'"18"').replace(b'"6" ', b'"24" ').replace(b'Orientation="6"', b'Orientation="1"')
                       .replace(b">8<", b">18<").replace(b">6<", b">24<"))


def png_text_xmp(path) -> bytes:
    with Image.open(path) as im:
        return im.info["XML:com.adobe.xmp"].encode("latin-1")


def test_a_png_xmp_in_a_plain_text_chunk_is_kept_too(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("XML:com.adobe.xmp", xmp_packet().decode())
    arr, info = read_image(save(tmp_path / "i.png", rgb_image(), pnginfo=text))
    write_image(tmp_path / "o.jpg", arr, info)
    assert Image.open(tmp_path / "o.jpg").info["xmp"] == xmp_packet()


def test_a_sixteen_bit_colour_png_keeps_its_xmp(tmp_path):
    write_image(tmp_path / "o.png", picture(4, 5, dtype=np.uint16), images_mod.ImageInfo("RGB", "PNG", xmp=xmp_packet()))
    assert Image.open(tmp_path / "o.png").info["xmp"] == xmp_packet()


def test_an_xmp_orientation_is_applied_and_reset_to_1(tmp_path):
    # Without an EXIF orientation, Pillow turns a picture by its XMP's: left at 6, the
    # upright output would be turned again.
    arr, info = read_image(save_with_xmp(tmp_path / "i.png", rgb_image(4, 6), xmp_packet(orientation=6)))
    assert arr.shape[:2] == (6, 4)
    write_image(tmp_path / "o.png", arr, info)
    assert Image.open(tmp_path / "o.png").info["xmp"] == xmp_packet(orientation=1)
    assert np.array_equal(read_image(tmp_path / "o.png")[0], arr)


def test_an_xmp_too_large_for_jpeg_is_left_out_and_png_keeps_it(tmp_path):
    info = images_mod.ImageInfo("RGB", "PNG", xmp=xmp_packet(pad=70000))  # one JPEG segment holds 65504 bytes
    write_image(tmp_path / "o.jpg", picture(4, 4), info)
    write_image(tmp_path / "o.png", picture(4, 4), info)
    assert "xmp" not in Image.open(tmp_path / "o.jpg").info and Image.open(tmp_path / "o.png").info["xmp"] == info.xmp


@pytest.mark.parametrize("source", ["JPEG", "GIF"])
def test_a_jpeg_or_gif_comment_is_kept_where_the_output_holds_one(source, tmp_path):
    # A camera's or an editor's comment (COM in JPEG, a comment extension in GIF)
    # was lost in every output, a jpg written from a jpg too.
    rgb_image().save(tmp_path / "in.img", format=source, comment=b"shot by Jane")
    arr, info = read_image(tmp_path / "in.img")
    assert info.comment == b"shot by Jane"
    for fmt in ("jpg", "gif", "webp"):
        write_image(tmp_path / f"o.{fmt}", arr, info)
        with Image.open(tmp_path / f"o.{fmt}") as written:
            assert written.info.get("comment") == (b"shot by Jane" if fmt in ("jpg", "gif") else None)
    write_image(tmp_path / "o.png", arr, info)  # as PNG's Comment text, as ImageMagick writes it
    assert text_in(tmp_path / "o.png") == [(b"tEXt", b"Comment\x00shot by Jane")]
    write_image(tmp_path / "u.png", arr, replace(info, comment="é by Jane".encode()))
    assert text_in(tmp_path / "u.png") == [(b"iTXt", "Comment\x00\x00\x00\x00\x00é by Jane".encode())]
    write_image(tmp_path / "own.png", arr, replace(info, text_chunks=((b"tEXt", b"Comment\x00its own"),)))
    assert text_in(tmp_path / "own.png") == [(b"tEXt", b"Comment\x00its own")]
    write_image(tmp_path / "bare.jpg", arr, info, metadata=False)
    assert "comment" not in Image.open(tmp_path / "bare.jpg").info


def test_a_pngs_comment_text_is_the_comment_of_a_jpg_or_gif(tmp_path):
    # GIMP writes "Created with GIMP" so, ImageMagick a JPEG's comment: lost in a jpg.
    text = PngImagePlugin.PngInfo()
    text.add_itxt("Comment", "\u732b by Jane")
    arr, info = read_image(save(tmp_path / "i.png", rgb_image(), pnginfo=text))
    assert info.comment == "\u732b by Jane".encode()
    for fmt in ("jpg", "gif"):
        write_image(tmp_path / f"o.{fmt}", arr, info)
        assert Image.open(tmp_path / f"o.{fmt}").info["comment"] == "\u732b by Jane".encode()
    write_image(tmp_path / "o.png", arr, info)
    assert [data.split(b"\x00")[0] for _, data in text_in(tmp_path / "o.png")] == [b"Comment"]


def test_a_comment_too_long_for_jpeg_is_left_out_of_a_jpg(tmp_path):
    # A GIF's comment has no limit; one JPEG segment holds 65533 bytes.
    info = images_mod.ImageInfo("RGB", "GIF", comment=b"x" * 70000)
    write_image(tmp_path / "o.jpg", picture(4, 4), info)
    write_image(tmp_path / "o.gif", picture(4, 4), info)
    assert "comment" not in Image.open(tmp_path / "o.jpg").info
    assert Image.open(tmp_path / "o.gif").info["comment"] == info.comment


def camera_exif(orientation: int) -> bytes:
    """A camera's EXIF (little-endian): Make, Orientation, an Exif directory with a
    maker note whose own directory points at its model by an offset from the TIFF
    header (as Canon's and Sony's do), an Interop directory, and a thumbnail (IFD1)."""
    def directory(entries, next_at=0):
        return struct.pack("<H", len(entries)) + b"".join(
            struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries) + struct.pack("<I", next_at)
    exif_at, note_at, date_at, interop_at, ifd1_at, thumb_at = 50, 92, 132, 152, 170, 200
    thumb = b"\xff\xd8" + b"\x11" * 20 + b"\xff\xd9"
    note = (directory([(0x0006, 2, 16, struct.pack("<I", note_at + 18))]) + b"EOS 5D Mark IV\x00\x00").ljust(40, b"\x00")
    data = (b"II*\x00" + struct.pack("<I", 8)
            + directory([(0x010F, 2, 4, b"Can\x00"), (0x0112, 3, 1, struct.pack("<HH", orientation, 0)),
                         (0x8769, 4, 1, struct.pack("<I", exif_at))], ifd1_at)
            + directory([(0x9003, 2, 20, struct.pack("<I", date_at)), (0x927C, 7, 40, struct.pack("<I", note_at)),
                         (0xA005, 4, 1, struct.pack("<I", interop_at))])
            + note + b"2024:05:06 07:08:09\x00" + directory([(0x0001, 2, 4, b"R98\x00")]))
    data += directory([(0x0201, 4, 1, struct.pack("<I", thumb_at)), (0x0202, 4, 1, struct.pack("<I", len(thumb)))])
    assert len(data) == thumb_at
    return b"Exif\x00\x00" + data + thumb


def maker_note_model(exif: bytes) -> bytes:
    """The model a camera_exif's maker note names, found as a reader finds it."""
    data = exif_body(exif)
    first = struct.unpack_from("<I", data, 4)[0]

    def entry(directory_at, tag):  # the 4 bytes of the tag's value
        for at in range(directory_at + 2, directory_at + 2 + 12 * struct.unpack_from("<H", data, directory_at)[0], 12):
            if struct.unpack_from("<H", data, at)[0] == tag:
                return struct.unpack_from("<I", data, at + 8)[0]
    note = entry(entry(first, 0x8769), 0x927C)
    return data[entry(note, 0x0006):][:16]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_cameras_maker_note_still_reads_once_its_orientation_is_reset(fmt, tmp_path):
    # Pillow writes the EXIF anew, each part at another offset: a maker note's own
    # offsets (Canon's, Sony's, Panasonic's count from the TIFF header) then point
    # elsewhere, and the lens and camera settings in it read as garbage.
    exif = camera_exif(6)
    assert maker_note_model(exif) == b"EOS 5D Mark IV\x00\x00"
    arr, info = read_image(save(tmp_path / f"i.{fmt.lower()}", rgb_image(), format=fmt, exif=exif))
    assert arr.shape[:2] == (8, 6) and maker_note_model(info.exif) == b"EOS 5D Mark IV\x00\x00"
    write_image(tmp_path / "o.jpg", arr, info)
    with Image.open(tmp_path / "o.jpg") as written:
        kept = written.getexif()
        assert kept[0x0112] == 1 and kept.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        assert kept.get_ifd(0x8769)[0xA005] and not kept.get_ifd(ExifTags.IFD.IFD1)  # the thumbnail was the turned picture's
        assert maker_note_model(written.info["exif"]) == b"EOS 5D Mark IV\x00\x00"
        assert b"\x11" * 20 not in written.info["exif"]


@pytest.mark.parametrize("out", ["png", "webp", "avif"])
def test_a_cameras_maker_note_still_reads_in_each_format_holding_exif(out, tmp_path):
    # found by a picture audit: Pillow's AVIF writer takes an orientation out of the
    # EXIF (1 too) and writes the rest anew, each part at another offset.
    arr, info = read_image(save(tmp_path / "i.jpg", rgb_image(), exif=camera_exif(6)))
    write_image(tmp_path / f"o.{out}", arr, info)
    with Image.open(tmp_path / f"o.{out}") as written:
        assert written.getexif().get(0x0112, 1) == 1 and written.size == (6, 8)
        assert maker_note_model(written.info["exif"]) == b"EOS 5D Mark IV\x00\x00"


def photoshop_resource(code: int, data: bytes) -> bytes:
    """One Photoshop image resource (8BIM, its id, an empty name, its size, its data padded to even)."""
    return b"8BIM" + struct.pack(">HHI", code, 0, len(data)) + data + b"\x00" * (len(data) % 2)


# An IPTC record: the caption (2:120), its keywords (2:25) and copyright (2:116).
IPTC = b"".join(b"\x1c\x02" + bytes([tag]) + struct.pack(">H", len(text)) + text
                for tag, text in ((120, b"Harbour at dawn"), (25, b"boats"), (116, b"(c) Jane Doe")))


def test_a_jpegs_iptc_caption_and_copyright_are_kept_in_a_jpg(tmp_path):
    # Photo agencies' captions, keywords and copyright (IPTC, in the Photoshop APP13
    # segment) were lost, jpg to jpg too. Its thumbnail and its paths, which are the
    # picture's as it was, and the EXIF and XMP copies, which are not turned, stay out.
    resources = (photoshop_resource(0x0404, IPTC) + photoshop_resource(0x040C, b"\xff\xd8stale\xff\xd9")
                 + photoshop_resource(0x07D0, b"path" * 7))
    data = io.BytesIO()
    rgb_image().save(data, format="JPEG", quality=95)
    app13 = b"Photoshop 3.0\x00" + resources
    data = data.getvalue()[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + data.getvalue()[2:]
    (tmp_path / "i.jpg").write_bytes(data)
    arr, info = read_image(tmp_path / "i.jpg")
    write_image(tmp_path / "o.jpg", arr, info)
    with Image.open(tmp_path / "o.jpg") as written:
        assert written.info["photoshop"] == {0x0404: IPTC}
    write_image(tmp_path / "bare.jpg", arr, info, metadata=False)
    assert "photoshop" not in Image.open(tmp_path / "bare.jpg").info



def tiff_with_iptc_as_longs(path) -> bytes:
    """A TIFF whose IPTC-NAA tag is typed as longs, as Photoshop writes it; the
    record it holds, padded to whole longs."""
    padded = IPTC + b"\x00" * (-len(IPTC) % 4)
    data = io.BytesIO()
    rgb_image().save(data, format="TIFF", tiffinfo={33723: padded})
    data = bytearray(data.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    for at in range(first + 2, first + 2 + 12 * struct.unpack_from("<H", data, first)[0], 12):
        if struct.unpack_from("<H", data, at)[0] == 33723:
            struct.pack_into("<HI", data, at + 2, 4, len(padded) // 4)
    path.write_bytes(data)
    return padded


@pytest.mark.parametrize("typed", ["undefined", "longs", "photoshop"])
def test_a_tiffs_iptc_caption_and_copyright_are_kept_in_a_jpg(typed, tmp_path):
    # A TIFF holds IPTC in its IPTC-NAA tag (or among Photoshop's resources), a JPEG
    # as Photoshop's resource in APP13: it was lost in a jpg.
    src, record = tmp_path / "i.tif", IPTC
    if typed == "longs":
        record = tiff_with_iptc_as_longs(src)
    else:
        tag = {"undefined": (33723, IPTC),
               "photoshop": (34377, photoshop_resource(0x0404, IPTC) + photoshop_resource(0x040C, b"thumbnail"))}[typed]
        save(src, rgb_image(), tiffinfo=dict([tag]))
    arr, info = read_image(src)
    write_image(tmp_path / "o.jpg", arr, info)
    with Image.open(tmp_path / "o.jpg") as written:
        assert written.info["photoshop"] == {0x0404: record}
        assert IptcImagePlugin.getiptcinfo(written)[2, 120] == b"Harbour at dawn"
    write_image(tmp_path / "bare.jpg", arr, info, metadata=False)
    assert "photoshop" not in Image.open(tmp_path / "bare.jpg").info


def test_no_metadata_drops_the_xmp(tmp_path):
    arr, info = read_image(save_with_xmp(tmp_path / "i.png", rgb_image(), xmp_packet()))
    write_image(tmp_path / "o.png", arr, info, metadata=False)
    assert "xmp" not in Image.open(tmp_path / "o.png").info


def test_jpeg_quality_sets_the_trade_off(tmp_path):
    arr = picture(64, 64)
    write_image(tmp_path / "lo.jpg", arr, quality=30)
    write_image(tmp_path / "hi.jpg", arr, quality=98)
    assert os.path.getsize(tmp_path / "lo.jpg") < os.path.getsize(tmp_path / "hi.jpg")


def test_webp_without_quality_is_lossless(tmp_path):
    arr = picture(16, 16, channels=4)
    write_image(tmp_path / "o.webp", arr)
    assert np.array_equal(read_image(tmp_path / "o.webp")[0], arr)


def test_format_comes_from_the_extension_in_any_case(tmp_path):
    write_image(tmp_path / "o.JPEG", picture(8, 8))
    assert Image.open(tmp_path / "o.JPEG").format == "JPEG"


def test_unknown_output_extension_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unsupported output format '.tif' for .*: use png, jpg, webp, gif or avif"):
        write_image(tmp_path / "o.tif", picture(4, 4))


def test_a_picture_written_as_gif_keeps_its_size_and_its_colours_closely(tmp_path):
    arr = picture(24, 32)
    write_image(tmp_path / "o.gif", arr)
    back, info = read_image(tmp_path / "o.gif")
    assert info.format == "GIF" and back.shape == (24, 32, 3)
    assert np.abs(back.astype(int) - arr).mean() < 6  # 255 colours, median cut


def gradient_with_details(height=48, width=64) -> np.ndarray:
    """A smooth gradient, a colour a pixel (more than a GIF palette holds), with two
    small details of colours of their own: a red mouth and a dark eye."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x * 4, y * 5, 255 - x * 2 - y], axis=2).clip(0, 255).astype(np.uint8)
    arr[20:24, 10:14] = (200, 20, 40)
    arr[8:11, 40:43] = (10, 10, 20)
    return arr


def test_a_gif_keeps_a_small_detail_of_a_colour_of_its_own(tmp_path):
    # found by a palette measurement: median cut splits the colours where most pixels
    # are, and gave the 9 pixels of a dark eye the gradient's (32, 11, 123), 103 levels
    # off; an upscaled anime frame's eye or mouth lost so came to 15-22 dB in its block.
    arr = gradient_with_details()
    write_image(tmp_path / "o.gif", arr)
    back = read_image(tmp_path / "o.gif")[0].astype(int)
    assert np.abs(back - arr)[8:11, 40:43].max() <= 4 and np.abs(back - arr)[20:24, 10:14].max() <= 4
    assert np.abs(back - arr).mean() < 4


def test_a_gif_palette_is_no_further_from_a_picture_than_median_cut_alone():
    # The details' colours take the place of the entries whose pixels lose least, and
    # only where the picture's squared error falls: never worse than median cut alone.
    from ncnn_sr import gif
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert gif._searched(np.zeros((0, 5, 3), np.uint8)).size == (5, 0)  # as Pillow's search takes it
    for arr in (gradient_with_details(), picture(40, 50), noise, noise // 64 * 64):
        searched = gif._searched(np.ascontiguousarray(arr))
        cut = Image.fromarray(arr).quantize(gif.TRANSPARENT_INDEX, method=Image.Quantize.MEDIANCUT)
        errors = [((np.asarray(p.convert("RGB")).astype(int) - arr) ** 2).sum() for p in (searched, cut)]
        assert errors[0] <= errors[1]
        assert len(searched.getpalette()) <= 3 * gif.TRANSPARENT_INDEX and np.asarray(searched).max() < 255


@pytest.mark.parametrize("source", ["profile", "chunks"])
def test_a_gif_of_a_picture_in_another_colour_space_shows_its_colours_as_srgb(source, tmp_path):
    # found by a picture audit: a GIF holds no profile (viewers show it as sRGB), and
    # a Display P3 picture's colours went in as they were: duller, up to 31 levels off.
    chunks = ((b"gAMA", struct.pack(">I", 55556)), (b"cHRM", P3_CHROMATICITIES[8:-4]))
    p3 = icc_mod.profile(icc_mod.CODED_PRIMARIES[12], 2.2, grey=False)
    info = (images_mod.ImageInfo("RGB", "PNG", icc_profile=p3) if source == "profile"
            else images_mod.ImageInfo("RGB", "PNG", colour_chunks=chunks))
    write_image(tmp_path / "o.gif", LEVELS, info)
    shown = as_srgb(LEVELS, p3 if source == "profile" else icc_mod.from_png_chunks(chunks, grey=False))
    assert np.abs(read_image(tmp_path / "o.gif")[0] - shown).max() <= 2


def test_gif_transparency_is_alpha_cut_at_half(tmp_path):
    arr = picture(6, 16, channels=4)  # alpha rises from 0 to 255 across
    write_image(tmp_path / "o.gif", arr)
    back = read_image(tmp_path / "o.gif")[0]
    assert back.shape == (6, 16, 4)
    assert np.array_equal(back[:, :, 3], np.where(arr[:, :, 3] < 128, 0, 255))


def test_an_opaque_picture_written_as_gif_has_no_transparent_colour(tmp_path):
    write_image(tmp_path / "o.gif", picture(6, 8, channels=4)[:, :, :3])
    with Image.open(tmp_path / "o.gif") as im:
        assert "transparency" not in im.info


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sixteen_bit_pictures_are_written_as_eight_bit_gif(channels, tmp_path):
    arr = picture(6, 8, channels=channels, dtype=np.uint16)
    write_image(tmp_path / "o.gif", arr)
    back = read_image(tmp_path / "o.gif")[0]
    assert back.dtype == np.uint8 and back.shape[:2] == (6, 8)
    shown = back[:, :, 3] == 255 if channels == 4 else slice(None)  # transparent pixels have no colour
    assert np.abs(back[:, :, 0].astype(int) - arr[:, :, 0] // 257)[shown].mean() < 6


def test_jpeg_cannot_take_alpha(tmp_path):
    with pytest.raises(InputError, match="JPEG cannot store transparency"):
        write_image(tmp_path / "o.jpg", picture(4, 4, channels=4))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, size, said", [
    ("o.webp", (1, 16384), "16384x1 is too large for WebP, which holds at most 16383 pixels a side"),
    ("o.jpg", (65501, 1), "1x65501 is too large for JPEG, which holds at most 65500 pixels a side"),
    ("o.gif", (1, 65536), "65536x1 is too large for GIF, which holds at most 65535 pixels a side"),
])
def test_pictures_past_a_formats_size_limit_are_refused_before_encoding(name, size, said, tmp_path, capfd):
    # WebP's encoder raised a ValueError that a batch's save thread did not count.
    with pytest.raises(InputError, match=said):
        write_image(tmp_path / name, np.zeros((*size, 3), np.uint8))
    assert not list(tmp_path.iterdir()) and capfd.readouterr().err == ""  # libjpeg says nothing


@pytest.mark.parametrize("array, info, said", [
    (np.zeros((4, 4, 3), np.float32), None, "expected uint8 or uint16 pixels"),
    (np.zeros((0, 8, 3), np.uint8), None, "has no pixels"),
    (np.zeros(8, np.uint8), None, "expected an H×W×C array"),
    (np.zeros((4, 4, 5), np.uint8), None, "expected an H×W×C array"),
    (np.zeros((4, 4, 3), np.uint8), "x", "info must be the ImageInfo read_image gave"),
])
def test_what_write_image_cannot_take_is_an_input_error(array, info, said, tmp_path):
    with pytest.raises(InputError, match=said):
        write_image(tmp_path / "o.png", array, info)
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "o.png"
    target.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(images_mod, "_encode", broken)
    with pytest.raises(InputError, match="cannot write .*No space left on device"):
        write_image(target, picture(4, 4))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


# Writes past RLIMIT_FSIZE end as on a disk that fills up: a short write, then an
# error (EFBIG; Python ignores SIGXFSZ). A child process takes the limit.
_WRITE_PAST_A_LIMIT = """
import resource, sys
import numpy as np
from ncnn_sr import InputError, write_image
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), np.uint8)
try:
    write_image(sys.argv[1], noise)
except InputError as e:
    print(e)
"""


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "gif"])
def test_a_disk_filling_up_midway_is_an_error_and_leaves_no_file(fmt, tmp_path):
    target = tmp_path / f"o.{fmt}"
    proc = subprocess.run([sys.executable, "-c", _WRITE_PAST_A_LIMIT, str(target)], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == (f"cannot write {target}: File too large (past this process's limit on a file's "
                                   "size: ulimit -f)")
    assert not list(tmp_path.iterdir())


# read_image of ``path`` under an address-space cap of ``margin`` bytes past what the
# process holds once warmed up by reading ``warm`` (a small picture of the same kind):
# its outcome's type on stdout.
_READ_SHORT_OF_MEMORY = """
import resource, sys
from ncnn_sr import read_image
path, warm, margin = sys.argv[1], sys.argv[2], int(sys.argv[3])
read_image(warm)
with open("/proc/self/status") as f:
    held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (held + margin if hard < 0 else min(held + margin, hard), hard))
try:
    read_image(path)
except Exception as e:
    print(type(e).__name__, e)
else:
    print("read")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.parametrize("fmt, options, margins_mb", [
    # Pillow's 64 MB picture made, libjpeg's 48 MB of a progressive JPEG's coefficients not.
    ("jpg", {"progressive": True}, (76, 88, 100)),
    # Pillow's reader asks libwebp for its two 64 MB canvases as it opens the file.
    ("webp", {"quality": 50, "method": 0}, (16, 48, 80, 112)),
    # dav1d's frames, then libavif's 64 MB of RGBA.
    pytest.param("avif", {"quality": 50, "speed": 10}, (8, 16, 32, 48),
                 marks=pytest.mark.skipif(not features.check("avif"), reason="needs Pillow's AVIF reader")),
])
def test_a_picture_read_short_of_memory_is_a_memory_error_not_a_broken_picture(fmt, options, margins_mb, tmp_path):
    # Each was "broken or truncated picture (broken data stream when reading image
    # file)", "(could not create decoder object)", "(Failed to decode frame 0:
    # Decoding of color planes failed)" or "(Pixel allocation failed: Out of memory)":
    # the file blamed, a folder's run going on to fail each later picture alike. Each
    # is out of memory, as a bare MemoryError where the memory ran out first at
    # Pillow's own picture.
    flat = np.zeros((4000, 4000, 3), np.uint8)
    flat[::97] = 200
    save(tmp_path / f"big.{fmt}", Image.fromarray(flat), **options)
    save(tmp_path / f"warm.{fmt}", Image.fromarray(picture(16, 16)), **options)
    for margin in margins_mb:
        proc = subprocess.run([sys.executable, "-c", _READ_SHORT_OF_MEMORY, str(tmp_path / f"big.{fmt}"),
                               str(tmp_path / f"warm.{fmt}"), str(margin << 20)], capture_output=True, text=True,
                              timeout=120)
        assert proc.stdout.split(" ", 1)[0] == "MemoryError", (margin, proc.stdout, proc.stderr)
    proc = subprocess.run([sys.executable, "-c", _READ_SHORT_OF_MEMORY, str(tmp_path / f"big.{fmt}"),
                           str(tmp_path / f"warm.{fmt}"), str(400 << 20)], capture_output=True, text=True, timeout=120)
    assert proc.stdout == "read\n", proc.stderr  # with room, the same picture reads



# read_frames of the animated WebP ``path`` with its address space capped at ``margin``
# bytes past what the process holds as Pillow asks libwebp for a frame the ``at``th
# time (from 0: read_image's first frame, then read_frames' each): past 1, the memory
# runs out midway, frames read before it. Its outcome on stdout.
_FRAMES_SHORT_OF_MEMORY = """
import resource, sys
from PIL import WebPImagePlugin
from ncnn_sr.animation import read_frames
path, at, margin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
decode, calls = WebPImagePlugin.WebPImageFile._get_next, []
def capped_at_frame(im):
    calls.append(None)
    if len(calls) == at + 1:
        with open("/proc/self/status") as f:
            held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (held + margin if hard < 0 else min(held + margin, hard), hard))
    return decode(im)
WebPImagePlugin.WebPImageFile._get_next = capped_at_frame
try:
    anim, info = read_frames(path)
except Exception as e:
    print(type(e).__name__, e)
else:
    print("read", len(anim.frames))
"""


def big_lossless_webp(path, count: int):
    """An animated lossless WebP of ``count`` 2000x2000 frames: 16 MB of RGBA each,
    which libwebp's lossless decoder takes again beside its canvases (of too many
    colours for a palette, which it would decode in far less)."""
    y, x = np.mgrid[:2000, :2000]
    frames = [Image.fromarray(np.dstack([x + index, y, x + y]).astype(np.uint8)) for index in range(count)]
    frames[0].save(path, save_all=True, append_images=frames[1:], lossless=True, method=0, duration=100)
    return path


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_an_animated_webp_read_short_of_memory_midway_is_a_memory_error_not_a_broken_picture(tmp_path):
    # libwebp failing to get a frame's memory is Pillow's "failed to read next frame",
    # as of a broken frame: it was "broken or truncated picture (failed to read next
    # frame)", a folder's run going on to fail each later animation alike.
    path = big_lossless_webp(tmp_path / "a.webp", 4)
    for at, margin_mb in ((0, 4), (2, 8), (3, 4), (3, 12)):
        proc = subprocess.run([sys.executable, "-c", _FRAMES_SHORT_OF_MEMORY, str(path), str(at), str(margin_mb << 20)],
                              capture_output=True, text=True, timeout=120)
        assert proc.stdout == f"MemoryError {path}: not enough memory to read it\n", (at, proc.stdout, proc.stderr)
    proc = subprocess.run([sys.executable, "-c", _FRAMES_SHORT_OF_MEMORY, str(path), "2", str(400 << 20)],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout == "read 4\n", proc.stderr  # with room, the same animation reads


def test_an_animated_webp_with_a_broken_frame_is_still_a_broken_picture(tmp_path):
    # Told from memory running out: a whole file whose frame libwebp cannot decode,
    # with room to, and one cut short, say the file is at fault.
    path = big_lossless_webp(tmp_path / "a.webp", 3)
    whole = path.read_bytes()
    last = whole.rfind(b"VP8L") + 8 + 5  # into the last frame's pixels, past its header
    (tmp_path / "bad.webp").write_bytes(whole[:last] + bytes(len(whole) - last))
    (tmp_path / "cut.webp").write_bytes(whole[:len(whole) * 9 // 10])
    with pytest.raises(InputError, match=r"bad\.webp: broken or truncated picture \(failed to read next frame\): "
                                         r"skip_damaged=True reads what can be read of it$"):  # the frames before
        read_frames(tmp_path / "bad.webp")
    with pytest.raises(InputError, match=r"cut\.webp: broken or truncated picture \(WebP: cut short"):
        read_frames(tmp_path / "cut.webp")


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(images_mod, "_encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "o.png", picture(4, 4))
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_an_input_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write"):
            write_image(folder / "o.png", picture(4, 4))
    finally:
        folder.chmod(0o700)


@contextlib.contextmanager
def as_another_user():
    """The block run as a user who is not root (nobody, where the tests run as root):
    root may write any file, as cp and the reference tool would. What it imports must
    be imported before: nobody cannot read root's Python."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_a_write_protected_output_is_refused_and_kept(tmp_path):
    # It was renamed over without a word: a picture its owner had made read-only
    # (chmod a-w) was replaced, where cp, a shell's > and the reference tool refuse.
    folder = Path(tempfile.mkdtemp())  # not tmp_path, which another user cannot enter
    try:
        folder.chmod(0o777)
        target = folder / "o.png"
        target.write_bytes(b"kept")
        target.chmod(0o444)
        write_image(tmp_path / "warm.png", picture(4, 4))  # Pillow's PNG plugin imported
        with as_another_user(), pytest.raises(InputError) as refused:
            write_image(target, picture(4, 4))
        assert str(refused.value) == f"cannot write {target}: it is write-protected (read-only): make it writable " \
                                     "to replace it"
        assert target.read_bytes() == b"kept" and os.listdir(folder) == ["o.png"]
    finally:
        shutil.rmtree(folder)


def test_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot write"):
        write_image(tmp_path / "no" / "such" / "o.png", picture(4, 4))


@pytest.mark.parametrize("content,reason", [
    (b"", "not a picture"),
    (b"hello, I am text", "not a picture"),
])
def test_files_that_are_not_pictures_are_input_errors(content, reason, tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"fake.png: {reason}"):
        read_image(path)


def test_truncated_picture_is_an_input_error(tmp_path):
    save(tmp_path / "whole.png", Image.fromarray(picture(64, 64)))
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.png: broken or truncated"):
        read_image(tmp_path / "cut.png")


def test_a_picture_that_fails_to_read_is_freed_at_once(tmp_path):
    # A refusal must not hold the picture in a reference cycle, which only a full
    # collection frees: a folder of broken 3 MP JPEGs held 9 MB for each, until
    # Python's collection came by its counts of objects.
    data = save(tmp_path / "whole.jpg", rgb_image(64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    def pictures():
        return sum(isinstance(o, Image.Image) for o in gc.get_objects())
    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        before = pictures()  # those other tests keep
        for _ in range(5):
            with pytest.raises(InputError, match="broken or truncated"):
                read_image(tmp_path / "cut.jpg")
        assert pictures() == before
    finally:
        gc.enable()


def test_a_jpeg_claiming_far_more_pixels_than_its_data_holds_is_broken_or_truncated(tmp_path):
    # libjpeg reads data that stops at the end marker as grey to the claimed size:
    # 8x8 pixels under a header saying 9000x9000 were read, and upscaled at length,
    # as a 9000x9000 grey picture, where one cut short before its end is refused.
    data = bytearray(save(tmp_path / "small.jpg", rgb_image(8, 8)).read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 9000, 9000)
    (tmp_path / "claims.jpg").write_bytes(bytes(data))
    said = (r"^\S*claims.jpg: broken or truncated picture \(JPEG: its header claims 9000x9000 pixels, "
            rf"far more than its {len(data)} bytes can hold\)$")
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "claims.jpg")


@pytest.mark.parametrize("compression, name, bits", [("tiff_adobe_deflate", "Deflate", 8), ("packbits", "PackBits", 8),
                                                     ("tiff_adobe_deflate", "Deflate", 16)])
def test_a_tiff_claiming_far_more_pixels_than_its_data_holds_is_broken_or_truncated(compression, name, bits,
                                                                                     tmp_path):
    # found by the fuzzer: an 823-byte TIFF whose width was damaged to 15073291 (135
    # Mpx: under the bomb limit) took 777 MB before its decoder failed ("decoder error
    # -2"); no Deflate data grows more than 1032 times, no PackBits more than 64.
    path = tmp_path / "small.tif"
    if bits == 8:
        rgb_image(9, 11).save(path, compression=compression)
    else:  # 16-bit colour, read past Pillow (tiff16), which Pillow cannot write
        import av
        with av.open(str(path), "w", format="image2pipe") as out:
            stream = out.add_stream("tiff", rate=1)
            stream.width, stream.height, stream.pix_fmt = 11, 9, "rgb48le"
            stream.options = {"compression_algo": "deflate"}
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture(9, 11).astype(np.uint16) * 257,
                                                                   format="rgb48le")):
                out.mux(packet)
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\0"
    ifd = struct.unpack_from("<I", data, 4)[0]
    entries = [ifd + 2 + 12 * i for i in range(struct.unpack_from("<H", data, ifd)[0])]
    width = next(at for at in entries if struct.unpack_from("<H", data, at)[0] == 256)
    struct.pack_into("<HHII", data, width, 256, 4, 1, 15_000_000)  # a LONG: 15000000 pixels wide
    (tmp_path / "claims.tif").write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "claims.tif")
    assert re.fullmatch(rf"\S*claims.tif: broken or truncated picture \(TIFF: its header claims 15000000x9 pixels, "
                        rf"far more than its \d+ bytes of {name} data can hold\)", str(e.value)), str(e.value)


@pytest.mark.parametrize("width, height", [(8_912_907, 9), (11, 10_223_625)])
def test_an_animated_webp_whose_canvas_its_frames_leave_all_but_bare_is_broken(width, height, tmp_path):
    # found by the fuzzer: a 634-byte animation of two 11x9 frames whose canvas was
    # damaged to 8912907x9 took 81 s and 2.5 GB to read (Pillow loads a row of 35 MB
    # in 64 kB reads, each copying what came before); at 11x10223625, 15 s and 3.6 GB.
    frames = [rgb_image(9, 11).convert("RGBA"), Image.new("RGBA", (11, 9), (10, 20, 30, 255))]
    path = tmp_path / "small.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[40, 60], lossless=True)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"VP8X" and data[24:30] == (10).to_bytes(3, "little") + (8).to_bytes(3, "little")
    data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    (tmp_path / "canvas.webp").write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "canvas.webp")
    assert str(e.value) == (f"{tmp_path / 'canvas.webp'}: broken or truncated picture (WebP: its header claims a "
                            f"{width}x{height} canvas, of which its frames cover no more than 11x9)")


def test_an_animated_webp_whose_frames_cover_a_part_of_its_canvas_is_read(tmp_path):
    # A small frame on a canvas of a few times its size, as animations place them.
    frames = [Image.new("RGBA", (40, 30), (200, 0, 0, 255)), Image.new("RGBA", (40, 30), (0, 200, 0, 255))]
    path = tmp_path / "small.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[40, 60], lossless=True)
    data = bytearray(path.read_bytes())
    data[24:30] = (399).to_bytes(3, "little") + (299).to_bytes(3, "little")  # 400x300
    (tmp_path / "canvas.webp").write_bytes(bytes(data))
    image, info = read_image(tmp_path / "canvas.webp")
    assert image.shape[:2] == (300, 400) and info.frames == 2


def test_a_jpeg_is_opened_once(tmp_path):
    # Its checks read the file Pillow has open, which it then decodes from where
    # it was left.
    path = save(tmp_path / "a.jpg", rgb_image(16, 24), quality=95)
    count = ("import sys, numpy as np\n"
             "from PIL import Image\n"
             "from ncnn_sr import read_image\n"
             "opened = []\n"
             "sys.addaudithook(lambda event, args: opened.append(1) if event == 'open' and args[0] == sys.argv[1] else None)\n"
             "arr, _ = read_image(sys.argv[1])\n"
             "assert np.array_equal(arr, np.asarray(Image.open(sys.argv[1])))\n"
             "print(len(opened))\n")
    done = subprocess.run([sys.executable, "-c", count, str(path)], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "2\n"), done.stderr  # read_image's, and the test's


JPEG_KINDS = {"sequential": {}, "progressive": {"progressive": True}, "grey": {"mode": "L"},
              "4:4:4": {"subsampling": 0}}


def jpeg_bytes(arr: np.ndarray, kind: str) -> bytes:
    options = dict(JPEG_KINDS[kind])
    im = Image.fromarray(arr).convert(options.pop("mode", "RGB"))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


@pytest.mark.parametrize("kind", JPEG_KINDS)
@pytest.mark.parametrize("kept", [0.3, 0.7, 0.98])
def test_a_jpeg_cut_short_and_closed_with_an_end_marker_is_broken_or_truncated(kind, kept, tmp_path):
    # As broken downloads and cameras leave them: libjpeg read the blocks after the
    # cut as grey (a progressive one's, without its last scans' detail) and said
    # nothing, where one cut short without its end marker is refused.
    data = jpeg_bytes(picture(96, 128), kind)
    (tmp_path / "cut.jpg").write_bytes(data[:int(len(data) * kept)] + b"\xff\xd9")
    said = r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops at an end marker (before|after)"
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("kind", ["sequential", "progressive"])
def test_a_jpeg_cut_just_after_a_ff_byte_and_closed_with_an_end_marker_is_broken_or_truncated(kind, tmp_path):
    # Its data's last byte, a 0xFF whose stuffed 0x00 was cut off, reads as a fill
    # byte before the end marker: the bytes set between them made a marker of their
    # own, which Pillow refused, and the cut went untold (a grey bottom).
    data = jpeg_bytes(picture(96, 128), kind)
    scans = data.rindex(b"\xff\xda")
    cut = data.index(b"\xff\x00", scans + (len(data) - scans) // 3) + 1
    (tmp_path / "cut.jpg").write_bytes(data[:cut] + b"\xff\xd9")
    with pytest.raises(InputError, match=r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("kind", ["sequential", "progressive"])
@pytest.mark.parametrize("at", [0, 1, 2])  # before the restart marker, inside it, after it
def test_a_jpeg_cut_where_a_restart_interval_ends_is_broken_or_truncated(kind, at, tmp_path):
    # Cameras write restart markers: cut where an interval ends, the bytes set
    # before the end marker stood where libjpeg looks for the next restart marker,
    # which it skipped to, and the cut went untold (a grey bottom).
    im = Image.fromarray(picture(96, 128))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, restart_marker_blocks=4, **JPEG_KINDS[kind])
    data = out.getvalue()
    scans = data.rindex(b"\xff\xda")
    marker = re.compile(rb"\xff[\xd0-\xd7]").search(data, scans + (len(data) - scans) // 3).start()
    (tmp_path / "cut.jpg").write_bytes(data[:marker + at] + b"\xff\xd9")
    with pytest.raises(InputError, match=r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops"):
        read_image(tmp_path / "cut.jpg")


def _restart_lost(data: bytes, at: int) -> bytes:
    return data[:at] + data[at + 2:]


def _restart_renumbered(data: bytes, at: int) -> bytes:
    return data[:at + 1] + bytes([0xD0 + (data[at + 1] + 3) % 8]) + data[at + 2:]


@pytest.mark.parametrize("kind", JPEG_KINDS)
@pytest.mark.parametrize("damage", [_restart_lost, _restart_renumbered], ids=["lost", "renumbered"])
def test_a_jpeg_whose_restart_markers_are_out_of_sequence_is_broken(kind, damage, tmp_path):
    # A byte gone or changed on an old disk inside a camera's restart intervals:
    # libjpeg skips to the next marker it finds, warns (which Pillow does not pass
    # on), and decodes the intervals between grey or shifted, a stripe across the
    # picture that was upscaled without a word.
    out = io.BytesIO()
    options = dict(JPEG_KINDS[kind])
    Image.fromarray(picture(96, 128)).convert(options.pop("mode", "RGB")).save(
        out, "JPEG", quality=90, restart_marker_blocks=2, **options)
    data = out.getvalue()
    markers = [m.start() for m in re.compile(rb"\xff[\xd0-\xd7]").finditer(data, data.rindex(b"\xff\xda"))]
    (tmp_path / "r.jpg").write_bytes(damage(data, markers[len(markers) // 2]))
    with pytest.raises(InputError, match=r"^\S*r.jpg: broken or truncated picture \(JPEG: .*restart marker"):
        read_image(tmp_path / "r.jpg")
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_image(tmp_path / "whole.jpg")[0].shape[:2] == (96, 128)


def test_a_jpeg_whose_scans_stop_before_any_of_a_component_is_broken_or_truncated(tmp_path):
    data = jpeg_bytes(picture(96, 128), "progressive")
    (tmp_path / "cut.jpg").write_bytes(data[:data.index(b"\xff\xda")] + b"\xff\xd9")
    said = r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops at an end marker after 0 scans, before"
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "cut.jpg")


def test_a_progressive_jpeg_whose_whole_scans_stop_before_its_last_bits_is_read_with_a_warning(tmp_path, caplog):
    # Cut at a scan's start, or made so: libjpeg writes any script that sends the DC.
    data = jpeg_bytes(picture(96, 128), "progressive")
    (tmp_path / "coarse.jpg").write_bytes(data[:data.rindex(b"\xff\xda")] + b"\xff\xd9")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "coarse.jpg")
    assert arr.shape == (96, 128, 3)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"{tmp_path / 'coarse.jpg'}: a progressive JPEG whose 9 scans end before the last bits of "
                    "its coefficients (cut short, or made so): read with less detail"]


def test_a_progressive_jpeg_cut_between_scans_without_an_end_marker_is_read_with_a_warning(tmp_path, caplog):
    # As one closed there with an end marker is: its whole scans' picture, coarser.
    data = jpeg_bytes(picture(96, 128), "progressive")
    (tmp_path / "coarse.jpg").write_bytes(data[:data.rindex(b"\xff\xda")])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "coarse.jpg")
    with Image.open(io.BytesIO(data[:data.rindex(b"\xff\xda")] + b"\xff\xd9")) as closed:
        assert np.array_equal(arr, np.asarray(closed))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"{tmp_path / 'coarse.jpg'}: a progressive JPEG whose 9 scans end before the last bits of "
                    "its coefficients (cut short, with no end marker): read with less detail"]


@pytest.mark.parametrize("inside", [3, 20])  # its length, or its tables
def test_a_progressive_jpeg_cut_inside_a_header_between_scans_is_read_as_cut_before_it(inside, tmp_path, caplog):
    # Pillow's words were "image file is truncated (5 bytes not processed)".
    data = jpeg_bytes(picture(96, 128), "progressive")
    header = data.rindex(b"\xff\xc4")  # the tables before its last scans
    assert header > data.index(b"\xff\xda")
    (tmp_path / "cut.jpg").write_bytes(data[:header + inside])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "cut.jpg")
    with Image.open(io.BytesIO(data[:header] + b"\xff\xd9")) as closed:
        assert np.array_equal(arr, np.asarray(closed))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and said[0].endswith("(cut short, with no end marker): read with less detail")


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_a_jpeg_ending_in_its_own_mid_grey_is_read(kind, tmp_path):
    # Its coded grey decodes as libjpeg's grey for blocks it has no data for.
    from ncnn_sr import jpeg

    arr = picture(96, 128)
    arr[-40:] = 128
    path = tmp_path / "bar.jpg"
    path.write_bytes(jpeg_bytes(arr, kind))
    with Image.open(path) as im:
        assert jpeg.ends_grey(im)
    got, _ = read_image(path)
    with Image.open(path) as im:
        assert np.array_equal(got, np.asarray(im).reshape(got.shape))
    assert (got[-8:] == 128).all()


@pytest.mark.parametrize("kind", ["sequential", "4:4:4", "grey", "restarts"])
@pytest.mark.parametrize("size", [(33, 47), (9, 17), (17, 9)])
def test_a_jpeg_cut_short_in_its_last_row_of_mcus_is_broken_or_truncated(kind, size, tmp_path):
    # Its picture's edge cuts its last MCU: the 8x8 pixels at the corner straddled
    # MCUs whose data was there, and where the last MCU is one pixel wide or high,
    # its grey came out coloured by the chroma upsampled from the MCU before.
    options = {"restart_marker_blocks": 2} if kind == "restarts" else dict(JPEG_KINDS[kind])
    im = Image.fromarray(picture(*size)).convert(options.pop("mode", "RGB"))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **options)
    data = out.getvalue()
    # Short of the last MCUs, whose data starts before the last tenth's.
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) * 85 // 100] + b"\xff\xd9")
    with pytest.raises(InputError, match=r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops"):
        read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("kind", ["sequential", "progressive", "grey", "4:4:4", "restarts"])
@pytest.mark.parametrize("cut", [1, 2])  # inside its end marker, or all of it
def test_a_jpeg_whose_data_is_whole_without_its_end_marker_is_read(kind, cut, tmp_path):
    # Some cameras and encoders leave the end marker out, and a download may stop just
    # there: nothing of the picture is missing, and it was refused as truncated.
    options = {"restart_marker_blocks": 2} if kind == "restarts" else dict(JPEG_KINDS[kind])
    im = Image.fromarray(picture(33, 47)).convert(options.pop("mode", "RGB"))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **options)
    data = out.getvalue()
    assert data.endswith(b"\xff\xd9")
    (tmp_path / "open.jpg").write_bytes(data[:-cut])
    arr, info = read_image(tmp_path / "open.jpg")
    with Image.open(io.BytesIO(data)) as whole:
        assert np.array_equal(arr, np.asarray(whole).reshape(arr.shape))
    assert info.format == "JPEG"


@pytest.mark.parametrize("kind", ["sequential", "progressive", "grey", "4:4:4", "restarts"])
@pytest.mark.parametrize("size", [(33, 47), (9, 17)])
@pytest.mark.parametrize("scan", [0, -1])  # a progressive one's first or last
@pytest.mark.parametrize("kept", [0.3, 0.9, 0.99])
def test_a_jpeg_cut_short_without_an_end_marker_says_its_data_is_cut_short(kind, size, scan, kept, tmp_path):
    # Pillow's words were "image file is truncated (37 bytes not processed)", those
    # bytes being its own buffer's. Cut in its last bytes, a picture closed with an
    # end marker may decode the same whether bytes follow or not: told otherwise.
    options = {"restart_marker_blocks": 2} if kind == "restarts" else dict(JPEG_KINDS[kind])
    im = Image.fromarray(picture(*size)).convert(options.pop("mode", "RGB"))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, **options)
    data = out.getvalue()
    sos = [m.start() for m in re.finditer(rb"\xff\xda", data)][scan]
    start = sos + 2 + struct.unpack_from(">H", data, sos + 2)[0]
    end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, start).start()
    (tmp_path / "cut.jpg").write_bytes(data[:start + max(1, int((end - start) * kept))])
    said = r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data is cut short \(no end marker\) (before|after)"
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "cut.jpg")


def ycck(data: bytes) -> bytes:
    """The CMYK JPEG ``data``, as Pillow writes it (Adobe, no transform), with its
    Adobe marker saying YCCK: the same samples, read as YCC and K."""
    out = bytearray(data)
    adobe = out.index(b"\xff\xee") + 4
    assert out[adobe:adobe + 5] == b"Adobe"
    out[adobe + 11] = 2
    return bytes(out)


@pytest.mark.parametrize("size", [(96, 128), (33, 47)])
def test_a_ycck_jpeg_cut_short_and_closed_with_an_end_marker_is_broken_or_truncated(size, tmp_path):
    # Photoshop's CMYK JPEGs: Pillow reads their empty blocks as 128 in C, M and Y
    # and 127 in K, no one grey.
    out = io.BytesIO()
    Image.fromarray(picture(*size)).convert("CMYK").save(out, "JPEG", quality=90)
    data = ycck(out.getvalue())
    with Image.open(io.BytesIO(data)) as im:
        assert (im.mode, im.info["adobe_transform"]) == ("CMYK", 2)
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_image(tmp_path / "whole.jpg")[0].shape == (*size, 3)  # turned to RGB
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2] + b"\xff\xd9")
    with pytest.raises(InputError, match=r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops"):
        read_image(tmp_path / "cut.jpg")


def test_a_progressive_jpeg_cut_in_a_late_scans_data_is_broken_or_truncated(tmp_path):
    # The bytes set before its end marker first decoded, with the bits left of the
    # cut byte, to a run of empty blocks to the scan's end: as the data that ran out
    # left them, and the cut went untold.
    data = jpeg_bytes(picture(48, 64), "progressive")
    scans = [m.start() for m in re.finditer(rb"\xff\xda", data)]
    assert len(scans) == 10
    start = scans[8] + 2 + struct.unpack_from(">H", data, scans[8] + 2)[0]
    cut = re.compile(rb"\xff[^\x00]").search(data, start).start() - 2  # two bytes before its data's end
    assert cut - start > 40 and b"\xff" not in data[cut - 4:cut]
    (tmp_path / "whole9.jpg").write_bytes(data[:scans[9]] + b"\xff\xd9")
    (tmp_path / "cut.jpg").write_bytes(data[:cut] + b"\xff\xd9")
    with Image.open(tmp_path / "whole9.jpg") as whole, Image.open(tmp_path / "cut.jpg") as cut_short:
        assert ImageChops.difference(whole.convert("RGB"), cut_short.convert("RGB")).getbbox() is not None
    with pytest.raises(InputError, match=r"^\S*cut.jpg: broken or truncated picture \(JPEG: its data stops"):
        read_image(tmp_path / "cut.jpg")


def valid_jpegs():
    """JPEGs Pillow writes whole, of every kind and on the edges of the checks for
    data cut short: flat mid-grey (what libjpeg fills missing blocks with), black,
    white and noise, one pixel to a few MCUs, edges that cut MCUs."""
    rng = np.random.RandomState(3)
    options = [{}, {"progressive": True}, {"optimize": True}, {"subsampling": 0}, {"subsampling": 1},
               {"restart_marker_blocks": 1}, {"restart_marker_rows": 1}, {"progressive": True, "subsampling": 0}]
    for size in [(1, 1), (3, 7), (9, 17), (8, 8), (16, 16), (1, 640), (640, 1), (17, 33)]:
        arrays = [np.full((*size, 3), 128, np.uint8), np.full((*size, 3), 127, np.uint8), np.zeros((*size, 3), np.uint8),
                  np.full((*size, 3), 255, np.uint8), rng.randint(0, 256, (*size, 3)).astype(np.uint8), picture(*size)]
        for arr, mode, option, quality in itertools.product(arrays, ("RGB", "L", "CMYK", "YCCK"), options, (1, 75, 100)):
            out = io.BytesIO()
            Image.fromarray(arr).convert("CMYK" if mode == "YCCK" else mode).save(out, "JPEG", quality=quality, **option)
            yield ycck(out.getvalue()) if mode == "YCCK" else out.getvalue()


def test_whole_jpegs_of_every_kind_are_read_without_a_word():
    # Refusing a whole picture is far worse than missing a cut one: every check for
    # data cut short passes these over, the grey ones decoded again included.
    said = []
    for data in valid_jpegs():
        with Image.open(io.BytesIO(data)) as im:
            read = images_mod._check_jpeg_data(im, "a.jpg")
            im.load()
            images_mod._check_jpeg_end(im, "a.jpg", *read)
            said.append(read[1])
    assert len(said) == 4608 and said == [None] * len(said)


def test_whole_jpegs_of_every_kind_without_their_end_marker_are_read_as_they_are_without_a_word():
    # Without an end marker, every one is decoded again (twice for a sequential one
    # whose first filler changes nothing), as a cut short one is told.
    said, differ = [], 0
    for data in valid_jpegs():
        assert data.endswith(b"\xff\xd9")
        with Image.open(io.BytesIO(data[:-2])) as opened:
            im, ended = images_mod._with_end_marker(opened)
            with im:
                assert not ended
                read = images_mod._check_jpeg_data(im, "a.jpg", ended)
                im.load()
                images_mod._check_jpeg_end(im, "a.jpg", *read, ended)
                said.append(read[1])
                with Image.open(io.BytesIO(data)) as whole:
                    differ += ImageChops.difference(im, whole).getbbox() is not None
    assert len(said) == 4608 and said == [None] * len(said) and differ == 0


def test_whole_jpegs_from_ffmpeg_and_the_docs_are_read(tmp_path):
    import av

    paths = [Path(__file__).parent.parent / "docs" / "sample.jpg"]
    for pix_fmt, (height, width) in itertools.product(("yuvj420p", "yuvj422p", "yuvj444p"), [(18, 34), (2, 2), (64, 48)]):
        codec = av.CodecContext.create("mjpeg", "w")
        codec.width, codec.height, codec.pix_fmt, codec.time_base = width, height, pix_fmt, fractions.Fraction(1, 25)
        for i, arr in enumerate([np.full((height, width, 3), 128, np.uint8), picture(height, width)]):
            for packet in codec.encode(av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format=pix_fmt)):
                paths.append(tmp_path / f"{pix_fmt}-{width}x{height}-{i}.jpg")
                paths[-1].write_bytes(bytes(packet))
    assert len(paths) == 19
    for path in paths:
        with Image.open(path) as im:
            assert read_image(path)[0].shape[:2] == (im.height, im.width)


def test_a_jpeg_with_bytes_after_its_end_marker_is_read(tmp_path):
    data = jpeg_bytes(picture(96, 128), "sequential")
    (tmp_path / "tail.jpg").write_bytes(data + b"\x00" * 100 + data)
    assert read_image(tmp_path / "tail.jpg")[0].shape == (96, 128, 3)


@pytest.mark.parametrize("options", [{}, {"progressive": True, "optimize": True}])
def test_a_large_flat_jpeg_in_few_bytes_is_no_shortfall(options):
    # A flat picture takes the fewest bits a block can: still within the bound.
    from ncnn_sr import jpeg

    for mode in ("L", "RGB"):
        out = io.BytesIO()
        Image.new(mode, (4000, 3000), 128).save(out, "JPEG", **options)
        assert jpeg.shortfall(out, len(out.getvalue())) is None


def test_a_png_broken_before_its_pixels_is_broken_not_an_unknown_format(tmp_path):
    # Pillow's PNG reader refuses it while opening, and Pillow then says it knows no
    # format for it: a download cut short inside its metadata was "not a picture".
    from PIL.PngImagePlugin import PngInfo

    text = PngInfo()
    text.add_text("Comment", "x" * 200)
    data = save(tmp_path / "whole.png", rgb_image(), pnginfo=text).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:100])  # inside the text chunk
    checksum = bytearray(data)
    checksum[data.index(b"IHDR") + 4 + 13] ^= 0xFF  # the header's CRC: a critical chunk
    (tmp_path / "crc.png").write_bytes(bytes(checksum))
    for name in ("cut.png", "crc.png"):
        with pytest.raises(InputError, match=rf"^\S*{name}: broken or truncated picture \(.+\)$"):
            read_image(tmp_path / name)


@pytest.mark.parametrize("width, height, depth, colour, said", [
    (0, 24, 8, 2, "0x24 pixels"), (32, 0, 8, 2, "32x0 pixels"),
    (32, 24, 16, 3, "16-bit samples of colour type 3, which PNG does not define"),
    (32, 24, 8, 5, "8-bit samples of colour type 5, which PNG does not define")])
def test_a_png_whose_header_states_what_png_has_not_says_what(tmp_path, width, height, depth, colour, said):
    # A header of zeroed or changed bytes (a disk's bad block), its checksum right:
    # "broken or truncated picture (not identified by this driver)", Pillow's words.
    data = bytearray(png_bytes(picture(24, 32), 8, 2))
    struct.pack_into(">IIBB", data, 16, width, height, depth, colour)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    (tmp_path / "z.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"^\S*z.png: broken or truncated picture \(PNG: its header states "
                                         rf"{re.escape(said)}\)$"):
        read_image(tmp_path / "z.png")


def damaged(chunk: bytes) -> bytes:
    """The PNG ``chunk`` with a wrong checksum."""
    return chunk[:-4] + bytes(b ^ 0xFF for b in chunk[-4:])


def test_a_png_whose_ancillary_chunk_is_damaged_is_read_without_it_with_a_warning(tmp_path, caplog):
    # Pillow refused the whole picture for a damaged text or gamma chunk, where libpng
    # (and the viewers built on it) leaves the chunk out and shows the picture.
    samples = picture(6, 8)
    chrm = png_chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    gama, text = png_chunk(b"gAMA", struct.pack(">I", 45455)), png_chunk(b"tEXt", b"Comment\x00hello")
    (tmp_path / "d.png").write_bytes(png_bytes(samples, 8, 2, damaged(gama), chrm, damaged(text)))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "d.png")
    assert (arr == samples).all()
    assert [kind for kind, _ in info.colour_chunks] == [b"cHRM"]  # the damaged gamma is not written back
    assert ("d.png: 2 damaged chunks left out, as libpng leaves them out: gAMA (a wrong checksum), "
            "tEXt (a wrong checksum)") in caplog.text


@pytest.mark.parametrize("chunk, why", [
    (png_chunk(b"pHYs", b"\x00\x0b"), "Truncated pHYs chunk"),
    (png_chunk(b"tRNS", b"\x00"), "Truncated tRNS chunk"),  # colour's takes 6 bytes
    (png_chunk(b"iCCP", b"icc\x00\x07" + zlib.compress(b"x")), "Unknown compression method 7 in iCCP chunk"),
], ids=["pHYs", "tRNS", "iCCP"])
def test_a_png_whose_ancillary_chunk_pillow_refuses_is_read_without_it_with_a_warning(chunk, why, tmp_path,
                                                                                       caplog):
    # Pillow refused the whole picture for a physical size cut short, say, which
    # libpng takes for a benign error: the chunk is left out.
    samples = picture(6, 8)
    (tmp_path / "d.png").write_bytes(png_bytes(samples, 8, 2, png_chunk(b"tEXt", b"Comment\x00kept"), chunk))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "d.png")
    assert (arr == samples).all() and info.mode == "RGB"
    assert f"d.png: a damaged chunk left out, as libpng leaves it out: {chunk[4:8].decode()} ({why})" in caplog.text


@pytest.mark.parametrize("chunk, kept", [
    (png_chunk(b"eXIf", bytes.fromhex("4d4d002a00000008000101120003000000010006000000000000")),  # turned a quarter
     lambda arr, info: arr.shape == (6, 8, 3)),
    (png_chunk(b"tEXt", b"Comment\x00hello"), lambda arr, info: info.comment is None),
    (png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"),
     lambda arr, info: not info.xmp),
], ids=["eXIf", "tEXt", "iTXt"])
def test_a_damaged_chunk_after_the_pixels_is_left_out_with_a_warning(chunk, kept, tmp_path, caplog):
    # Pillow checks no checksum past the pixels: a damaged EXIF there turned the
    # picture by whatever orientation its bytes now said, and damaged text went into
    # the output, where libpng (and browsers) leave the chunk out.
    samples = picture(6, 8)
    whole = png_bytes(samples, 8, 2)
    (tmp_path / "d.png").write_bytes(whole[:-12] + damaged(chunk) + whole[-12:])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "d.png")
    assert kept(arr, info) and (arr == samples).all()
    said = f"d.png: a damaged chunk left out, as libpng leaves it out: {chunk[4:8].decode()} (a wrong checksum)"
    assert said in caplog.text


def test_a_file_that_is_no_png_is_not_read_whole_to_mend_it(tmp_path, monkeypatch):
    # Mending reads the whole file: one Pillow cannot identify may be a large video.
    monkeypatch.setattr(images_mod, "mended_png", lambda data: pytest.fail("read whole"))
    (tmp_path / "v.png").write_bytes(b"\x00" * 4096)
    with pytest.raises(InputError, match="not a picture"):
        read_image(tmp_path / "v.png")


def test_a_damaged_critical_chunk_is_still_a_broken_png_named_so(tmp_path):
    # Mending drops the damaged ancillary chunk: the refusal names the palette.
    samples = np.zeros((4, 4, 1), np.uint8)
    palette = png_chunk(b"PLTE", bytes(range(12)))
    (tmp_path / "p.png").write_bytes(png_bytes(samples, 8, 3, damaged(png_chunk(b"tEXt", b"a\x00b")),
                                               damaged(palette)))
    with pytest.raises(InputError, match=r"p.png: broken or truncated picture \(.*PLTE.*\)$"):
        read_image(tmp_path / "p.png")


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("which", [0, 1])
def test_a_png_whose_pixel_data_changed_under_its_checksum_is_broken(depth, which, tmp_path):
    # A byte of a stored (uncompressed) deflate block changed, as a bit flipped on an
    # old disk: Pillow (and FFmpeg, for 16 bits) check no IDAT's checksum and stop
    # inflating short of zlib's Adler-32, and upscaled the wrong pixels without a word.
    samples = (np.arange(6 * 8 * 3).reshape(6, 8, 3) * 37 % (2 ** depth)).astype(np.uint16 if depth == 16 else np.uint8)
    whole = png_bytes(samples, depth, 2)
    at = whole.index(b"IDAT") - 4
    rows = zlib.decompress(whole[at + 8:at + 8 + struct.unpack_from(">I", whole, at)[0]])
    stored = bytearray(zlib.compress(rows, 0))
    stored[len(stored) // 2 if which else 12] ^= 0x10  # in the first half's IDAT, or the second's
    halves = [png_chunk(b"IDAT", bytes(stored[:len(stored) // 2])), png_chunk(b"IDAT", bytes(stored[len(stored) // 2:]))]
    halves[which] = damaged(halves[which])  # as the changed data's checksum would be
    (tmp_path / "d.png").write_bytes(whole[:at] + b"".join(halves) + png_chunk(b"IEND", b""))
    with pytest.raises(InputError, match=r"d.png: broken or truncated picture \(PNG: .*IDAT.*checksum.*whole.*\): "
                                         r"skip_damaged=True reads what can be read of it$"):
        read_image(tmp_path / "d.png")


@pytest.mark.parametrize("which", [0, 1])
def test_a_png_whose_pixel_chunk_checksum_alone_is_wrong_is_read_with_a_warning(which, tmp_path, caplog):
    # Its pixels decompress whole (zlib's own check right): browsers show it, and it
    # was refused as broken where only the chunk's checksum was checked.
    samples = picture(6, 8)
    whole = png_bytes(samples, 8, 2)
    at = whole.index(b"IDAT") - 4
    length = struct.unpack_from(">I", whole, at)[0]
    data = whole[at + 8:at + 8 + length]
    halves = [png_chunk(b"IDAT", data[:length // 2]), png_chunk(b"IDAT", data[length // 2:])]
    halves[which] = damaged(halves[which])
    (tmp_path / "d.png").write_bytes(whole[:at] + b"".join(halves) + png_chunk(b"IEND", b""))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        pixels, _ = read_image(tmp_path / "d.png")
    np.testing.assert_array_equal(pixels, samples)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'd.png'}: its pixel data's checksum (IDAT) is wrong, though the data decompresses whole: "
        "read as it is"]


def test_a_sixteen_bit_png_with_a_damaged_text_chunk_stays_sixteen_bit(tmp_path):
    samples = (np.arange(6 * 8 * 3).reshape(6, 8, 3) * 997 % 65536).astype(np.uint16)
    (tmp_path / "d.png").write_bytes(png_bytes(samples, 16, 2, damaged(png_chunk(b"tEXt", b"a\x00b"))))
    arr, _ = read_image(tmp_path / "d.png")
    assert arr.dtype == np.uint16 and (arr == samples).all()


def _cut_before_frame_header(data: bytes) -> bytes:
    return data[:data.index(b"\xff\xc0")]  # its tables whole, not its size


@pytest.mark.parametrize("fmt,options,cut", [
    ("JPEG", {"quality": 90}, _cut_before_frame_header),
    ("GIF", {}, lambda data: data[:len(data) // 2]),  # inside the palette
    ("TIFF", {"compression": "tiff_lzw"}, lambda data: data[:len(data) // 2]),  # its directory is last
    ("BMP", {}, lambda data: data[:10]),
])
def test_a_picture_cut_short_in_its_header_is_broken_not_an_unknown_format(fmt, options, cut, tmp_path):
    # Pillow's reader of the format refuses it while opening, and Pillow then says it
    # knows no format for it: a half-downloaded photo was "not a picture".
    data = save(tmp_path / "whole", Image.fromarray(picture(16, 16)), format=fmt, **options).read_bytes()
    (tmp_path / "cut.img").write_bytes(cut(data))
    said = rf"^\S*cut.img: broken or truncated picture(, or a kind of {fmt} Pillow cannot read \(| \({fmt}: ).+\)$"
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "cut.img")


@pytest.mark.parametrize("fmt,options,sizes", [
    ("WEBP", {}, range(9, 16)),  # RIFF, its size, WEBP: Pillow looks at 16 bytes
    ("WEBP", {"lossless": True}, [12, 15]),
    ("PNG", {}, range(2, 8)),  # inside its signature
    ("JPEG", {"quality": 90}, [2]),  # its start-of-image marker alone
    ("GIF", {}, range(3, 6)),  # inside GIF89a
    ("TIFF", {}, [3]),
    ("AVIF", {}, range(8, 12)),  # inside its ftyp box's brand
])
def test_a_picture_cut_short_inside_its_signature_is_broken_not_an_unknown_format(fmt, options, sizes, tmp_path):
    # Too short for Pillow's readers to know the format: a download that stopped a
    # few bytes in was "not a picture", an AVIF's ftyp a video's.
    data = save(tmp_path / "whole", Image.fromarray(picture(16, 16)), format=fmt, **options).read_bytes()
    for size in sizes:
        (tmp_path / "cut.img").write_bytes(data[:size])
        said = rf"^\S*cut.img: broken or truncated picture \(.*cut short at {size} bytes, inside its header\)$"
        with pytest.raises(InputError, match=said):
            read_image(tmp_path / "cut.img")


@pytest.mark.parametrize("options", [{}, {"lossless": True}])
@pytest.mark.parametrize("channels", [3, 4])
def test_a_webp_cut_short_past_its_header_says_how_many_of_its_bytes_are_there(options, channels, tmp_path):
    # Pillow's words were "could not create decoder object", at every cut.
    data = save(tmp_path / "whole.webp", Image.fromarray(picture(16, 16, channels=channels)), **options).read_bytes()
    for size in (16, 30, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.webp").write_bytes(data[:size])
        said = rf"^\S*cut.webp: broken or truncated picture \(WebP: cut short, {size} of the {len(data)} bytes its header states\)$"
        with pytest.raises(InputError, match=said):
            read_image(tmp_path / "cut.webp")


@pytest.mark.parametrize("content", [b"G", b"GI", b"II", b"RIFF\x10\x00\x00\x00WAVE", b"\x89"])
def test_a_few_bytes_that_start_no_format_surely_are_not_a_picture(content, tmp_path):
    (tmp_path / "few.png").write_bytes(content)
    with pytest.raises(InputError, match=r"few.png: not a picture, or a format Pillow cannot read$"):
        read_image(tmp_path / "few.png")


def _two_page_tiff() -> tuple[bytearray, int, int]:
    """A two-page TIFF's bytes, where its first directory points to the second, and
    where the second is."""
    import io

    buffer = io.BytesIO()
    frame = Image.fromarray(picture(4, 4))
    frame.save(buffer, "TIFF", save_all=True, append_images=[frame.transpose(Image.Transpose.ROTATE_90)])
    data = bytearray(buffer.getvalue())
    first = struct.unpack_from("<I", data, 4)[0]
    pointer = first + 2 + 12 * struct.unpack_from("<H", data, first)[0]
    return data, pointer, struct.unpack_from("<I", data, pointer)[0]


def _without_width(data: bytearray, pointer: int, second: int) -> bytes:
    for entry in range(second + 2, second + 2 + 12 * struct.unpack_from("<H", data, second)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == 256:  # ImageWidth, renamed to a tag no one knows
            struct.pack_into("<H", data, entry, 65000)
    return bytes(data)


@pytest.mark.parametrize("damage", [
    _without_width,  # Pillow's TypeError("Missing dimensions") as it counted the pages
    lambda data, pointer, second: bytes(data[:pointer] + struct.pack("<I", len(data) + 999) + data[pointer + 4:]),
    lambda data, pointer, second: bytes(data[:second + 7]),  # the file cut short in the second directory
])
def test_a_tiff_whose_later_page_cannot_be_read_gives_its_first_page_with_a_warning(damage, tmp_path, caplog):
    # Only the first page is read, and the whole file failed on the second.
    (tmp_path / "two.tif").write_bytes(damage(*_two_page_tiff()))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "two.tif")
    assert np.array_equal(arr, picture(4, 4)) and info.frames == 1
    assert "two.tif: a TIFF whose pages after the first cannot be read: reading the first only" in caplog.text


def preview_tiff(path, dng: bool):
    """A TIFF whose first image is a reduced-resolution preview (NewSubfileType 1), as
    a raw photo's DNG starts, its raw data in SubIFDs that Pillow does not read."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2
    tags = ImageFileDirectory_v2()
    tags[254] = 1
    if dng:
        tags[50706], tags.tagtype[50706] = b"\x01\x04\x00\x00", 1  # DNGVersion 1.4
    Image.fromarray(picture(12, 16)).save(path, format="TIFF", tiffinfo=tags)
    return path


@pytest.mark.parametrize("dng", [True, False])
def test_a_tiff_whose_first_image_is_a_preview_is_refused_not_upscaled(dng, tmp_path):
    # A DNG's 256-pixel preview was upscaled and written as the photo, without a word.
    src = preview_tiff(tmp_path / ("p.dng" if dng else "p.tif"), dng)
    with pytest.raises(InputError) as caught:
        read_image(src)
    said = str(caught.value)
    assert said.startswith(f"{src}: its first image is a 16x12 preview, not the picture") and "\n" not in said
    assert ("raw photo (DNG)" in said) == dng


def test_missing_file_and_folder_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_image(tmp_path / "nothing.png")
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_a_system_error_on_reading_is_not_called_a_broken_picture(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    Image.fromarray(picture(4, 4)).save(src)

    def out_of_descriptors(*args, **kwargs):
        raise OSError(24, "Too many open files", str(src))

    monkeypatch.setattr(Image, "open", out_of_descriptors)
    with pytest.raises(InputError) as caught:
        read_image(src)
    assert str(caught.value) == f"{src}: cannot read: Too many open files"


def test_an_eps_without_ghostscript_says_what_is_missing_not_that_it_is_broken(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", False)  # none installed, whatever this machine has
    src = tmp_path / "a.eps"
    src.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto 8 8 lineto stroke\n")
    with pytest.raises(InputError) as caught:
        read_image(src)
    assert str(caught.value) == (f"{src}: an EPS or PostScript picture, which Pillow reads through Ghostscript: "
                                 "install Ghostscript (gs), or convert it to png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    save(tmp_path / "big.png", Image.new("RGB", (200, 200)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(tmp_path / "big.png")


def test_a_picture_between_pillows_warning_and_its_limit_is_read(tmp_path, monkeypatch, recwarn):
    # Pillow warns from MAX_IMAGE_PIXELS (89 MP) and refuses from twice that; the warning
    # refused a 102-megapixel camera photo (11648x8736) as a possible decompression bomb.
    save(tmp_path / "photo.png", Image.new("RGB", (40, 40), (10, 20, 30)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels: over it, under twice it
    image, _ = read_image(tmp_path / "photo.png")
    assert image.shape == (40, 40, 3)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_32_bit_integer_pixels_past_16_bits_are_refused_with_their_range_and_what_to_do(tmp_path):
    # A scientific 32-bit TIFF was refused as '32-bit integer pixels outside the 16-bit
    # range are not supported': neither how far outside nor what to do, as float
    # pixels are told.
    Image.fromarray(np.array([[0, 70000], [5, -3]], np.int32)).save(tmp_path / "deep.tif")
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "deep.tif")
    assert str(caught.value) == (f"{tmp_path / 'deep.tif'}: 32-bit integer pixels from -3 to 70000, past the "
                                 "16-bit range (0 to 65535), which is not supported: "
                                 "convert it to a 16-bit png or tiff")


def psd_file(version: int, colour_mode: int, depth: int, channels: int = 3, height: int = 4, width: int = 5) -> bytes:
    """A PSD (PSB where ``version`` is 2) of one flat picture, its samples all 0."""
    head = b"8BPS" + struct.pack(">H6sHIIHH", version, b"\0" * 6, channels, height, width, depth, colour_mode)
    lengths = struct.pack(">I", 0) * 2 + (struct.pack(">Q", 0) if version == 2 else struct.pack(">I", 0))
    return head + lengths + struct.pack(">H", 0) + bytes(channels * height * width * depth // 8)


@pytest.mark.parametrize("version,colour_mode,depth,said", [
    (1, 3, 16, "a 16-bit RGB PSD, which Pillow cannot read (it reads 8-bit ones): save it as a 16-bit png or tiff"),
    (1, 1, 32, "a 32-bit (float) grey PSD, which Pillow cannot read (it reads 8-bit ones): "
               "save it as a 16-bit png or tiff"),
    (2, 3, 8, "a PSB (Photoshop's large document format), which Pillow cannot read: save it as a png or tiff"),
])
def test_a_psd_pillow_cannot_read_is_named_with_what_to_do(tmp_path, version, colour_mode, depth, said):
    # Photoshop's 16-bit document was 'broken or truncated picture, or a kind of PSD
    # Pillow cannot read ((3, 16))': it is whole, and (3, 16) says nothing to a user.
    (tmp_path / "doc.psd").write_bytes(psd_file(version, colour_mode, depth))
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "doc.psd")
    assert str(caught.value) == f"{tmp_path / 'doc.psd'}: {said}"


def test_an_8_bit_psd_is_read(tmp_path):
    (tmp_path / "doc.psd").write_bytes(psd_file(1, 3, 8))
    image, info = read_image(tmp_path / "doc.psd")
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8 and info.format == "PSD"


@pytest.mark.parametrize("head,said", [
    (b"\x76\x2f\x31\x01\x02\x00\x00\x00", "an OpenEXR picture (float pixels), which Pillow cannot read: "
                                          "convert it to a 16-bit png or tiff"),
    (b"\xff\x0a\xfa\x7f", "a JPEG XL picture, which Pillow cannot read: convert it to png (djxl)"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL picture, which Pillow cannot read: convert it to png (djxl)"),
    (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "a Radiance HDR picture (float pixels), which Pillow cannot read: "
                                             "convert it to a 16-bit png or tiff"),
    (b"SDPX\x00\x00\x08\x00", "a DPX picture, which Pillow cannot read: convert it to a 16-bit png or tiff"),
])
def test_a_picture_format_pillow_lacks_is_named_with_what_to_convert_it_to(tmp_path, head, said):
    # An EXR render or a JPEG XL photo was 'not a picture, or a format Pillow cannot read'.
    (tmp_path / "in.pic").write_bytes(head + bytes(200))
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "in.pic")
    assert str(caught.value) == f"{tmp_path / 'in.pic'}: {said}"


def test_a_whole_picture_of_a_kind_pillow_does_not_support_is_not_only_called_broken(tmp_path):
    # A whole 64-bit BMP was 'broken or truncated picture (Unsupported BMP pixel depth
    # (64))': Pillow's "Unsupported" is of a kind it lacks as often as of damage.
    rows = bytes(4 * 4 * 8)
    head = struct.pack("<IiiHHIIiiII", 40, 4, 4, 1, 64, 0, len(rows), 0, 0, 0, 0)
    (tmp_path / "deep.bmp").write_bytes(b"BM" + struct.pack("<IHHI", 54 + len(rows), 0, 0, 54) + head + rows)
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "deep.bmp")
    assert str(caught.value) == (f"{tmp_path / 'deep.bmp'}: broken or truncated picture, or a kind Pillow cannot "
                                 "read (Unsupported BMP pixel depth (64))")


def bmp32(pixels: np.ndarray, top_down: bool = False, info_size: int = 40) -> bytes:
    """``pixels`` (H×W×4, RGBA) as a 32-bit BMP without masks (BI_RGB), each pixel's
    fourth byte its alpha, as Pillow writes RGBA and as Windows' reserved byte holds it."""
    height, width = pixels.shape[:2]
    rows = np.ascontiguousarray((pixels if top_down else pixels[::-1])[:, :, [2, 1, 0, 3]]).tobytes()
    head = struct.pack("<IiiHHIIiiII", info_size, width, -height if top_down else height, 1, 32, 0, len(rows),
                       2835, 2835, 0, 0).ljust(info_size, b"\0")
    return b"BM" + struct.pack("<IHHI", 14 + info_size + len(rows), 0, 0, 14 + info_size) + head + rows


@pytest.mark.parametrize("top_down, info_size", [(False, 40), (True, 40), (False, 124)])
def test_a_32_bit_bmp_keeps_the_alpha_its_fourth_bytes_hold(top_down, info_size, tmp_path):
    # found by a picture audit: an RGBA picture Pillow itself saved as BMP was read
    # opaque (Pillow reads a 32-bit BMP without masks as RGB), its clear pixels black,
    # where browsers and the reference tool's stb_image read that byte as alpha.
    pixels = picture(6, 10, 4)
    (tmp_path / "a.bmp").write_bytes(bmp32(pixels, top_down, info_size))
    arr, info = read_image(tmp_path / "a.bmp")
    assert arr.shape == (6, 10, 4)
    np.testing.assert_array_equal(arr, pixels)


def test_a_32_bit_bmp_whose_fourth_bytes_are_all_0_is_opaque(tmp_path):
    # Windows leaves the reserved byte 0: no alpha, or every such picture would be clear.
    pixels = picture(6, 10, 4)
    pixels[:, :, 3] = 0
    (tmp_path / "a.bmp").write_bytes(bmp32(pixels))
    arr, _ = read_image(tmp_path / "a.bmp")
    np.testing.assert_array_equal(arr, pixels[:, :, :3])


def rle_bmp(width: int, height: int, codes: bytes, bits: int = 8) -> bytes:
    """A BMP of RLE8 (or RLE4) ``codes``, bottom row first, of two colours: 0 dark,
    1 light."""
    palette = bytes((10, 20, 30, 0, 200, 150, 100, 0))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 1 if bits == 8 else 2, len(codes), 2835, 2835, 2, 0)
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(codes), 0, 0, offset) + info + palette + codes


# Rows of 4 pixels, bottom first: 4 light; 2 light, then the row ended early
# (end of line), or 1 light, 2 skipped (a delta) and 1 light; then 4 light, or
# the bitmap ended early (end of bitmap) after 2 of them.
_RLE_SKIPPING = {
    "end of line": (bytes((4, 1, 0, 0, 2, 1, 0, 0, 4, 1, 0, 0, 0, 1)), [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]]),
    "delta": (bytes((4, 1, 0, 0, 1, 1, 0, 2, 2, 0, 1, 1, 0, 0, 4, 1, 0, 0, 0, 1)),
              [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]]),
    "end of bitmap": (bytes((4, 1, 0, 0, 4, 1, 0, 0, 2, 1, 0, 1)), [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]),
}


@pytest.mark.parametrize("codes, shown", _RLE_SKIPPING.values(), ids=_RLE_SKIPPING)
def test_an_rle_bmps_skipped_pixels_are_clear_as_browsers_show_them(codes, shown, tmp_path):
    # The codes may leave pixels unwritten, which browsers show clear: Pillow gave
    # them the palette's first colour, opaque, and refused an early end of bitmap
    # as 'not enough image data'.
    (tmp_path / "r.bmp").write_bytes(rle_bmp(4, 3, codes))
    arr, info = read_image(tmp_path / "r.bmp")
    assert arr.shape == (3, 4, 4) and info.mode == "RGBA"
    np.testing.assert_array_equal(arr[:, :, 3], np.array(shown[::-1]) * 255)
    np.testing.assert_array_equal(arr[:, :, :3][arr[:, :, 3] > 0], [[100, 150, 200]] * int(np.sum(shown)))


def test_an_rle_bmp_writing_every_pixel_stays_opaque_and_one_cut_short_is_broken(tmp_path):
    codes = bytes((4, 1, 0, 0, 3, 0, 1, 1, 0, 0, 0, 1))
    (tmp_path / "r.bmp").write_bytes(rle_bmp(4, 2, codes))
    arr, info = read_image(tmp_path / "r.bmp")
    assert arr.shape == (2, 4, 3)
    (tmp_path / "cut.bmp").write_bytes(rle_bmp(4, 2, codes[:6]))  # no end of bitmap: its data ran out
    with pytest.raises(InputError, match=r"cut.bmp: broken or truncated picture"):
        read_image(tmp_path / "cut.bmp")


def test_an_rgba_picture_pillow_saved_as_bmp_keeps_its_alpha(tmp_path):
    pixels = picture(5, 7, 4)
    Image.fromarray(pixels).save(tmp_path / "a.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp")[0], pixels)


def test_a_picture_over_pillows_limit_names_its_size_and_the_limit(tmp_path, monkeypatch):
    # Its size was left out ('too many pixels (over 178956970)'), which tells neither how
    # far over a 30000x30000 scan is nor that a damaged header states 8388609x9.
    save(tmp_path / "big.png", Image.new("RGB", (50, 41)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "big.png")
    assert str(caught.value) == (f"{tmp_path / 'big.png'}: too many pixels (50x41, over 2000): "
                                 "refusing a possible decompression bomb")


def test_a_gif_cut_short_between_frames_is_broken_or_truncated(tmp_path):
    # Pillow counting the frames read a byte past the end: IndexError, which a batch
    # reported as "cannot read: IndexError('index out of range')".
    noise = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), np.uint8)
    frames = [Image.fromarray(f) for f in noise]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    whole = (tmp_path / "a.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(whole[:int(len(whole) * 0.8)])
    with pytest.raises(InputError, match=r"cut.gif: broken or truncated picture \(GIF: cut short after frame 3\)$"):
        read_image(tmp_path / "cut.gif")


def test_a_gif_cut_anywhere_says_after_which_frame(tmp_path):
    # Pillow's words, by where the cut fell: 'index out of range', 'unpack_from
    # requires a buffer of at least 2 bytes...', 'image file is truncated (27 bytes
    # not processed)', or the walk's own 'GIF cut short'.
    from ncnn_sr.animation import read_frames
    frames = [Image.new("RGB", (8, 6), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)  # a control each
    whole = (tmp_path / "a.gif").read_bytes()
    starts = [m.start() for m in re.finditer(b"\x21\xf9\x04", whole)]  # each frame's control extension
    refused = 0
    for size in range(starts[0], len(whole)):
        (tmp_path / "cut.gif").write_bytes(whole[:size])
        before = max(sum(start < size for start in starts) - 1, 0)
        # What can be read of it (its first frame's first rows, or the frames before) names skip_damaged.
        said = (rf"^\S*cut.gif: broken or truncated picture \(GIF: cut short after frame {before}\)" if before
                else r"^\S*cut.gif: broken or truncated picture \(GIF: cut short in its first frame\)")
        said += r"(: skip_damaged=True reads what can be read of it)?$"
        for read in (read_image, read_frames):
            try:
                read(tmp_path / "cut.gif")
            except InputError as e:
                assert re.match(said, str(e)), (size, str(e))
                refused += 1
    assert refused > 100


def _with_short_image_data(data: bytes, frame: int) -> bytes:
    """The GIF ``data`` whose ``frame`` (from 0) keeps a third of its LZW data, its
    sub-blocks and the rest of the file whole: as an old encoder or a disk left it."""
    descriptor = [m.start() for m in re.finditer(rb"\x2c\x00\x00\x00\x00", data)][frame]
    pos = descriptor + 10 + (3 << ((data[descriptor + 9] & 7) + 1) if data[descriptor + 9] & 0x80 else 0)
    start, blocks, at = pos + 1, b"", pos + 1
    while data[at]:
        blocks += data[at + 1:at + 1 + data[at]]
        at += 1 + data[at]
    short = blocks[:len(blocks) // 3]
    return data[:start] + bytes([len(short)]) + short + data[at:]


@pytest.mark.parametrize("frame", [0, 1])
def test_a_gif_whose_image_data_ends_before_its_pixels_says_which_frame(frame, tmp_path):
    # The file runs whole to its trailer: Pillow said 'image file is truncated (1
    # bytes not processed)', of a file that is not.
    from ncnn_sr.animation import read_frames
    frames = [Image.fromarray(picture(16, 24) // (i + 1)) for i in range(2)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    (tmp_path / "s.gif").write_bytes(_with_short_image_data((tmp_path / "a.gif").read_bytes(), frame))
    # Its first frame's pixels up to there can be read, or the frames before it (skip_damaged).
    said = (rf"^\S*s.gif: broken or truncated picture \(GIF: frame {frame + 1}'s image data is damaged or ends "
             r"before its last pixels\): skip_damaged=True reads what can be read of it$")
    for read in (read_frames,) if frame else (read_image, read_frames):  # read_image reads the first alone
        with pytest.raises(InputError, match=said):
            read(tmp_path / "s.gif")


@pytest.mark.parametrize("kept", range(1, 9))
def test_a_gif_cut_short_inside_an_image_descriptor_is_broken_or_truncated(kept, tmp_path):
    # Pillow counting the frames unpacked the descriptor's few bytes: struct.error.
    frames = [Image.new("RGB", (8, 6), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    whole = (tmp_path / "a.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(whole[:whole.rindex(b",") + kept])
    with pytest.raises(InputError, match=r"^\S*cut.gif: broken or truncated picture \(.*\)$"):
        read_image(tmp_path / "cut.gif")


def test_animated_gif_gives_its_first_frame_and_frame_count(tmp_path):
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    arr, info = read_image(tmp_path / "a.gif")
    assert info.frames == 3 and arr.shape == (6, 8, 3)
    assert tuple(arr[0, 0]) == (255, 0, 0)


def test_unicode_file_names_work(tmp_path):
    path = tmp_path / "фото 写真 🌸.png"
    write_image(path, picture(4, 4))
    assert read_image(path)[0].shape == (4, 4, 3)


def test_permission_denied_is_an_input_error(tmp_path, monkeypatch):
    # A folder that makes no file, whether named (mkstemp) or not (part_files' O_TMPFILE).
    real_open, unnamed = os.open, getattr(os, "O_TMPFILE", -1)

    def denied(path, flags, *args, **kwargs):
        if flags & os.O_CREAT or flags & unnamed == unnamed:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(InputError, match="cannot write .*Permission denied"):
        write_image(tmp_path / "o.png", picture(4, 4))


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "gif"])
def test_written_pictures_get_the_mode_of_any_new_file(fmt, tmp_path):
    # The temporary file is private until renamed; the result must not stay so.
    (tmp_path / "plain").write_bytes(b"")
    write_image(tmp_path / f"out.{fmt}", picture(8, 8))
    assert (tmp_path / f"out.{fmt}").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


@pytest.mark.parametrize("shape", [(40, 56, 3), (1000, 1000, 3), (9, 7, 4), (9, 7, 1), (1, 1, 3)])
def test_png_is_written_up_filtered_at_the_fast_compression_level(shape, tmp_path):
    # Pillow's adaptive filters took half its writing time (see png.write_png8); a
    # picture of several blocks (1000x1000 grain) is written as IDAT chunks in a row.
    image = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    write_image(tmp_path / "out.png", image)
    data = (tmp_path / "out.png").read_bytes()
    chunks, at = [], 8
    while at < len(data):
        size, = struct.unpack(">I", data[at:at + 4])
        chunks.append((data[at + 4:at + 8], data[at + 8:at + 8 + size]))
        assert zlib.crc32(data[at + 4:at + 8 + size]) == struct.unpack(">I", data[at + 8 + size:at + 12 + size])[0]
        at += 12 + size
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"".join(kinds[1:-1]) == b"IDAT" * (len(kinds) - 2)
    assert (len(kinds) > 3) == (shape[0] == 1000)
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    assert stream[:2] == b"\x78\x01"  # zlib's header of the fastest level
    rows = np.frombuffer(zlib.decompress(stream), np.uint8).reshape(shape[0], -1)
    assert images_mod.PNG_COMPRESS_LEVEL == 1 and (rows[:, 0] == 2).all()  # Up, every row
    read = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(read.reshape(shape), image)


def test_a_write_through_a_link_replaces_what_it_points_to_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "out.png"
    link.symlink_to(tmp_path / "real" / "target.png")
    write_image(link, np.zeros((4, 4, 3), np.uint8))
    assert link.is_symlink() and (tmp_path / "real" / "target.png").is_file()
    write_image(link, np.full((4, 4, 3), 9, np.uint8))  # and again, over the file it made
    assert link.is_symlink() and read_image(link)[0].max() == 9


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
def test_a_picture_in_a_folder_that_does_not_exist_is_refused_naming_the_folder(writer, tmp_path):
    # found by a library audit: "No such file or directory", of the file it was to make.
    from ncnn_sr.animation import Animation, write_frames

    write = {"write_image": lambda p: write_image(p, picture(4, 6)),
             "write_frames": lambda p: write_frames(p, Animation((picture(4, 6),) * 2, (100, 100)))}[writer]
    folder = tmp_path / "made" / "later"
    with pytest.raises(InputError, match=rf"^cannot write {re.escape(str(folder / 'a.png'))}: its folder "
                                         rf"{re.escape(str(folder))} does not exist$"):
        write(folder / "a.png")
    assert os.listdir(tmp_path) == []
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    with pytest.raises(InputError, match=rf"^cannot write .*a\.png: its folder .*out is a link to "
                                         rf"{re.escape(str(tmp_path / 'gone'))}, which does not exist$"):
        write(tmp_path / "out" / "a.png")
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("below", ["a.png", "sub/a.png", ""])
def test_a_path_below_a_file_names_the_file_in_the_way(below, tmp_path):
    # found by a library audit: "Not a directory", of a path whose every part but one
    # was a folder.
    (tmp_path / "in.png").write_bytes(b"x")
    path = f"{tmp_path / 'in.png'}{os.sep}{below}"
    in_the_way = re.escape(str(tmp_path / "in.png"))
    with pytest.raises(InputError, match=rf"^{re.escape(path)}: file not found: {in_the_way} is a file, not a folder$"):
        read_image(path)
    if below:  # a name ending in a separator is a folder's, refused before
        with pytest.raises(InputError, match=rf"^cannot write {re.escape(path)}: {in_the_way} is a file, "
                                             r"not a folder$"):
            write_image(path, picture(4, 4))
    assert os.listdir(tmp_path) == ["in.png"]


def test_a_link_that_points_at_itself_is_refused_not_replaced_by_a_file(tmp_path):
    # found by a library audit: its target could not be found, so the link itself was
    # renamed over, where cp and a shell's > refuse it.
    link = tmp_path / "out.png"
    link.symlink_to(link)
    with pytest.raises(InputError, match=r"^cannot write .*out\.png: it is a link that leads back to itself "
                                         r"\(a loop of links\)$"):
        write_image(link, picture(4, 4))
    assert link.is_symlink() and os.listdir(tmp_path) == ["out.png"]


def test_a_fifo_is_written_into_not_replaced_by_a_file(tmp_path):
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    # Nothing reads it: opened to write, it would wait for ever.
    with pytest.raises(InputError, match=r"out\.png: it is a pipe \(FIFO\) that nothing reads$"):
        write_image(fifo, np.zeros((4, 4, 3), np.uint8))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["out.png"]
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    while not got and reader.is_alive():  # until the reader waits on the pipe
        try:
            write_image(fifo, picture(4, 5))
            break
        except InputError:
            time.sleep(0.01)
    reader.join(10)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(got[0]))), picture(4, 5))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["out.png"]


def test_a_grainy_jpeg_at_high_quality_is_written(tmp_path):
    # Pillow holds an optimized JPEG in a buffer of one byte a pixel under quality 95;
    # grain at 4:4:4 outgrows it and libjpeg failed ("Suspension not allowed here").
    grain = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    write_image(tmp_path / "grain.jpg", grain, quality=92)
    back, _ = read_image(tmp_path / "grain.jpg")
    assert back.shape == (300, 400, 3) and os.path.getsize(tmp_path / "grain.jpg") > 300 * 400
    assert sorted(os.listdir(tmp_path)) == ["grain.jpg"]


@pytest.mark.parametrize("quality, grey", [(92, False), (100, False), (100, True)])
def test_a_grainy_jpeg_at_high_quality_is_written_optimized_without_a_word_from_libjpeg(quality, grey, tmp_path,
                                                                                          capfd, monkeypatch):
    # Pillow's buffer (2 bytes a pixel at quality 95+) was outgrown: libjpeg printed
    # "Suspension not allowed here" on fd 2 before the file was written unoptimized.
    # Black and white grain takes the most (4.7 bytes a pixel at quality 100).
    rng = np.random.default_rng(0)
    grain = (rng.integers(0, 2, (300, 400, 1 if grey else 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "grain.jpg", grain, quality=quality)
    assert capfd.readouterr().err == ""
    optimized = io.BytesIO()
    monkeypatch.setattr(ImageFile, "MAXBLOCK", 10 * grain.size)  # room for all of it
    Image.fromarray(grain[:, :, 0] if grey else grain).save(
        optimized, "JPEG", quality=quality, subsampling=0, optimize=True)
    assert open(tmp_path / "grain.jpg", "rb").read() == optimized.getvalue()


def test_a_name_too_long_for_the_file_system_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"cannot write .*: File name too long$"):
        write_image(tmp_path / ("x" * 300 + ".png"), np.zeros((2, 2, 3), np.uint8))


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.png: not a picture: the file is empty \(0 bytes\)$"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("stem", ["y" * 246, "写" * 82], ids=["ascii", "three-byte characters"])
def test_a_name_that_fits_is_written_though_a_temporary_name_beside_it_would_not(stem, tmp_path):
    # The temporary name adds 15 bytes to the target's: a 250-byte name failed with
    # "File name too long", though the file system holds it.
    write_image(tmp_path / f"{stem}.png", picture(4, 4))
    assert os.listdir(tmp_path) == [f"{stem}.png"]


def test_a_folder_where_the_picture_goes_is_named_so(tmp_path):
    (tmp_path / "o.png").mkdir()
    with pytest.raises(InputError, match=r"o.png: a folder of that name is there$"):
        write_image(tmp_path / "o.png", picture(4, 4))


def test_a_sixteen_bit_grey_transparency_key_is_alpha(tmp_path):
    # Pillow reads a 16-bit grey PNG's tRNS level into info alone: the transparency was lost.
    values = np.arange(48, dtype=np.uint16).reshape(6, 8) * 1361
    src = save(tmp_path / "g.png", Image.fromarray(values), transparency=int(values[1, 2]))
    arr, info = read_image(src)
    assert arr.shape == (6, 8, 4) and arr.dtype == np.uint16
    assert np.array_equal(arr[:, :, 0], values) and np.array_equal(arr[:, :, 1], values)
    assert np.array_equal(arr[:, :, 3] == 0, values == values[1, 2])
    write_image(tmp_path / "o.png", arr, info)
    assert png_header(tmp_path / "o.png") == (16, 4)  # grey stays grey
    assert np.array_equal(read_image(tmp_path / "o.png")[0], arr)


def test_sixteen_bit_grey_with_alpha_keeps_every_value_and_is_written_back_grey_with_alpha(tmp_path):
    # Pillow reads a 16-bit grey+alpha PNG as 8-bit RGBA; it was written back as 16-bit RGBA.
    grey = np.arange(48, dtype=np.uint16).reshape(6, 8, 1) * 1361 + 5
    alpha = 65535 - grey * 3 // 4
    src = tmp_path / "la.png"
    src.write_bytes(png_bytes(np.concatenate([grey, alpha], axis=2), 16, 4))
    arr, info = read_image(src)
    assert arr.dtype == np.uint16 and np.array_equal(arr, np.concatenate([grey, grey, grey, alpha], axis=2))
    write_image(tmp_path / "o.png", arr, info)
    assert png_header(tmp_path / "o.png") == (16, 4)
    assert np.array_equal(read_image(tmp_path / "o.png")[0], arr)


def test_reading_in_many_threads_keeps_the_bomb_check_and_the_warning_filters(tmp_path, monkeypatch):
    # warnings.catch_warnings in two load workers at once left filters behind for the
    # whole process, and could lift the bomb check for a picture another opened.
    import threading

    save(tmp_path / "bomb.png", Image.new("RGB", (50, 50)))  # over Pillow's limit, twice MAX_IMAGE_PIXELS
    save(tmp_path / "fine.png", Image.new("RGB", (20, 20)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    before, loaded, interval = list(warnings.filters), [], sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: their reads interleave

    def read(name: str) -> None:
        for _ in range(200):
            try:
                loaded.append(read_image(tmp_path / name)[0].shape)
            except InputError:
                pass
    try:
        threads = [threading.Thread(target=read, args=(name,)) for name in ("bomb.png", "fine.png") * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert warnings.filters == before
    assert (50, 50, 3) not in loaded and loaded.count((20, 20, 3)) == 400


def test_the_pixel_limit_holds_for_a_frame_that_grows_on_loading(tmp_path, monkeypatch):
    # Pillow refuses on opening; a frame it only learns the size of on loading (ICO,
    # MPO, TIFF in some versions) got a warning while loading ran outside the guard.
    Image.fromarray(picture(41, 50)).save(tmp_path / "p.png")  # 2050 pixels, over twice 1000
    monkeypatch.setattr(Image, "_decompression_bomb_check", lambda size: None)  # as if open saw a small frame
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError, match=r"too many pixels \(50x41, over 2000\)"):
        read_image(tmp_path / "p.png")


def _read_within(path, seconds: float = 20) -> BaseException | None:
    """What read_image raised on ``path``, read in a thread so that a read which blocks
    fails the test instead of hanging it: a FIFO's open waits for a writer."""
    import threading

    outcome: list = []

    def read() -> None:
        try:
            read_image(path)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a writer comes and goes: the reader is let go
        pytest.fail(f"read_image({path}) still waited after {seconds} s")
    return outcome[0]


def test_a_fifo_is_refused_as_a_pipe_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    caught = _read_within(fifo)
    assert isinstance(caught, InputError)
    assert str(caught) == f"{fifo}: not a picture: it is a pipe (FIFO), not a regular file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_as_a_device_not_called_empty(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    with pytest.raises(InputError, match=f"^{device}: not a picture: it is a device, not a regular file$"):
        read_image(device)


@pytest.mark.parametrize("data, said", [
    (b"P7\nWIDTH 2\nHEIGHT 2\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\nENDHDR\n" + bytes(16),
     "a PAM (Netpbm's P7), which Pillow cannot read: convert it to png (pamtopng)"),
    (b"PF\n2 2\n-1.0\n" + bytes(48),
     "a colour PFM (32-bit float pixels), which is not supported: convert it to a 16-bit png or tiff"),
    (b"Pf\n2 2\n-1.0\n" + bytes(16),
     "a grey PFM (32-bit float pixels), which is not supported: convert it to a 16-bit png or tiff"),
], ids=["pam", "colour-pfm", "grey-pfm"])
def test_a_netpbm_kind_that_is_not_read_is_named(data, said, tmp_path):
    # PAM and colour PFM were "not a picture, or a format Pillow cannot read", while
    # grey PFM said its pixels were 32-bit float.
    (tmp_path / "p.pnm").write_bytes(data)
    with pytest.raises(InputError, match=f"^{re.escape(str(tmp_path / 'p.pnm'))}: {re.escape(said)}$"):
        read_image(tmp_path / "p.pnm")


def test_a_file_whose_size_says_0_but_has_content_is_not_called_empty():
    # /proc files: stat gives 0 bytes, reading gives text.
    if not os.path.exists("/proc/self/maps"):
        pytest.skip("no /proc here")
    with pytest.raises(InputError, match=r"^/proc/self/maps: not a picture, or a format Pillow cannot read$"):
        read_image("/proc/self/maps")


@pytest.mark.parametrize("given, said", [
    (5, "got 5"),
    (None, "got None"),
    (np.zeros((40, 40, 3), np.uint8), "got an object of type ndarray"),  # the arguments swapped
    ("", "got ''"),  # read as ": file not found", written as a folder's name ending in /
    (b"", "got b''"),
])
def test_what_is_no_path_is_an_input_error_naming_it(given, said, tmp_path):
    with pytest.raises(InputError, match=f"^read_image needs a file's path, {said}$"):
        read_image(given)
    with pytest.raises(InputError, match=f"^write_image needs a file's path, {said}$"):
        write_image(given, picture(4, 4))


def test_a_path_holding_a_nul_byte_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"not a valid path \(it holds a NUL byte\)$"):
        read_image(f"{tmp_path}/a\0b.png")
    with pytest.raises(InputError, match=r"not a valid path \(it holds a NUL byte\)$"):
        write_image(f"{tmp_path}/a\0b.png", picture(4, 4))
    assert not list(tmp_path.iterdir())


def test_a_files_contents_given_as_its_path_are_an_error_of_one_short_line(tmp_path):
    write_image(tmp_path / "a.png", picture(16, 16))
    data = (tmp_path / "a.png").read_bytes()
    # It printed the whole file, escaped: kilobytes on one line.
    with pytest.raises(InputError, match=rf"^read_image needs a file's path, got {len(data)} bytes holding a NUL "
                                         r"byte: a file's contents\? give its path$"):
        read_image(data)


def test_a_files_contents_or_an_open_file_is_refused_in_one_line_saying_what_is_taken(tmp_path):
    # found by a check of the library's faults: bytes from a web request or an open
    # file were "got <_io.BufferedReader name='a.png'>" or "got an object of type
    # bytearray", which said neither that a path is taken nor what to give instead.
    # The reader opens a file again by its path for its checks and deeper samples,
    # and write_image writes beside its path and renames: both take paths alone.
    write_image(tmp_path / "a.png", picture(16, 16))
    data = (tmp_path / "a.png").read_bytes()
    for given, kind in ((bytearray(data), "bytearray"), (memoryview(data), "memoryview")):
        with pytest.raises(InputError) as refused:
            read_image(given)
        assert str(refused.value) == (f"read_image needs a file's path, got {len(data)} bytes (a {kind}): "
                                      "a file's contents? save them to a file and give its path")
    with open(tmp_path / "a.png", "rb") as f, pytest.raises(InputError) as refused:
        read_image(f)
    assert str(refused.value) == f"read_image needs a file's path, got an open file: give its path, {f.name!r}"
    with pytest.raises(InputError) as refused:
        read_image(io.BytesIO(data))
    assert str(refused.value) == ("read_image needs a file's path, got an open file with no name (a BytesIO): "
                                  "give a file's path")
    with open(tmp_path / "b.png", "wb") as f, pytest.raises(InputError) as refused:
        write_image(f, picture(4, 4))
    assert str(refused.value) == f"write_image needs a file's path, got an open file: give its path, {f.name!r}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"] and not (tmp_path / "b.png").stat().st_size


@pytest.mark.parametrize("exif", [b"garbage", b"Exif\0\0garbage"])
@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "avif"])
def test_an_exif_that_is_no_exif_is_an_input_error(exif, fmt, tmp_path):
    # found by a library audit: an AVIF failed with Pillow's SyntaxError (it reads the
    # EXIF's orientation), the other formats wrote it as EXIF that no reader can parse.
    info = images_mod.ImageInfo("RGB", "PNG", exif=exif)
    with pytest.raises(InputError, match=rf"o\.{fmt}: info\.exif is no EXIF \(it starts with no TIFF header, "
                                         r"II\*\\x00 or MM\\x00\*, after an optional Exif\\x00\\x00\): "
                                         r"got b'(Exif\\x00\\x00)?garbage'$"):
        write_image(tmp_path / f"o.{fmt}", picture(4, 4), info)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "avif"])
def test_an_exif_holding_nothing_is_left_out(fmt, tmp_path):
    # found by a library audit: "Exif\0\0" alone failed an AVIF with libavif's bare
    # ValueError ("Invalid Exif payload").
    write_image(tmp_path / f"o.{fmt}", picture(4, 4), images_mod.ImageInfo("RGB", "PNG", exif=b"Exif\0\0"))
    assert read_image(tmp_path / f"o.{fmt}")[1].exif is None


def test_an_animation_s_exif_that_is_no_exif_is_an_input_error(tmp_path):
    from ncnn_sr import Animation, write_frames

    with pytest.raises(InputError, match=r"o\.webp: info\.exif is no EXIF"):
        write_frames(tmp_path / "o.webp", Animation((picture(4, 4), picture(4, 4, seed=1)), (10, 10)),
                     images_mod.ImageInfo("RGB", "PNG", exif=b"garbage"))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
@pytest.mark.parametrize("mode, said", [(["L"], "['L']"), ({}, "{}"), (None, "None")])
def test_an_info_mode_that_is_not_a_str_is_an_input_error(writer, mode, said, tmp_path):
    # found by a library audit: a list was a TypeError ("unhashable type") from the
    # check of whether the picture was grey, with the metadata left out too.
    from ncnn_sr import Animation, write_frames

    info = images_mod.ImageInfo(mode, "PNG")
    write = {"write_image": lambda m: write_image(tmp_path / "o.png", picture(4, 4), info, metadata=m),
             "write_frames": lambda m: write_frames(tmp_path / "o.png", Animation((picture(4, 4),) * 2, (10, 10)),
                                                    info, metadata=m)}[writer]
    for metadata in (True, False):
        with pytest.raises(InputError, match=rf"o\.png: info\.mode must be Pillow's mode of the picture read, as a "
                                             rf"str \(such as RGB or L\), got {re.escape(said)}$"):
            write(metadata)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("field", ["icc_profile", "exif", "xmp"])
def test_metadata_that_is_not_bytes_is_an_input_error(field, tmp_path):
    info = images_mod.ImageInfo("RGB", "PNG", **{field: "not bytes"})
    for fmt in ("png", "jpg", "webp"):
        with pytest.raises(InputError, match=rf"o.{fmt}: info.{field} must be bytes or None, got str$"):
            write_image(tmp_path / f"o.{fmt}", picture(4, 4), info)
    assert not list(tmp_path.iterdir())
    write_image(tmp_path / "o.png", picture(4, 4), info, metadata=False)  # left out: nothing to refuse


@pytest.mark.parametrize("chunks", [None, ((b"tEXt", b"x"),), ((b"gAMA", "100000"),), (b"gAMA",), ((b"gAMA", b""),),
                                    ((b"cHRM", bytes(31)),)])
def test_colour_chunks_that_are_not_known_kinds_with_bytes_are_an_input_error(chunks, tmp_path):
    info = images_mod.ImageInfo("RGB", "PNG", colour_chunks=chunks)
    with pytest.raises(InputError, match=r"o.png: info.colour_chunks must be \(kind, data\) pairs of bytes"):
        write_image(tmp_path / "o.png", picture(4, 4), info)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
def test_a_metadata_flag_that_is_not_true_or_false_is_an_input_error(writer, tmp_path):
    # found by a bug hunt: metadata="no" is true, so the metadata it meant to leave
    # out (a camera's EXIF with its GPS position) was written
    from ncnn_sr import Animation, write_frames

    image, info = picture(4, 4), images_mod.ImageInfo("RGB", "PNG", exif=b"Exif\0\0")
    write = {"write_image": lambda m: write_image(tmp_path / "o.png", image, info, metadata=m),
             "write_frames": lambda m: write_frames(tmp_path / "o.png", Animation((image, image), (10, 10)), info,
                                                    metadata=m)}[writer]
    for flag in ("no", 0, None):
        with pytest.raises(SettingError, match=rf"o.png: metadata must be True or False, got {flag!r}$"):
            write(flag)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("quality, said", [("90", "'90'"), (50.5, "50.5"), (True, "True"), (0, "0"), (101, "101")])
@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_a_quality_that_is_not_a_whole_number_from_1_to_100_is_an_input_error(quality, said, fmt, tmp_path):
    # A SettingError, a ValueError too, as a Pipeline's quality is (a library audit:
    # a bare InputError, which an `except ValueError` around the settings missed)
    with pytest.raises(SettingError, match=f"o.{fmt}: quality must be a whole number from 1 to 100, got {said}$"):
        write_image(tmp_path / f"o.{fmt}", picture(4, 4), quality=quality)
    with pytest.raises(SettingError, match=f"o.{fmt}: quality must be a whole number from 1 to 100, got {said}$"):
        write_frames(tmp_path / f"o.{fmt}", Animation((picture(4, 4),) * 2, (10, 10)), quality=quality)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
def test_an_info_not_read_image_s_is_a_setting_error(writer, tmp_path):
    image = picture(4, 4)
    write = {"write_image": lambda: write_image(tmp_path / "o.png", image, {"exif": b""}),
             "write_frames": lambda: write_frames(tmp_path / "o.png", Animation((image, image), (10, 10)),
                                                  {"exif": b""})}[writer]
    with pytest.raises(SettingError, match="^info must be the ImageInfo read_image gave, got "):
        write()
    assert not list(tmp_path.iterdir())


def test_a_numpy_integer_quality_is_a_quality(tmp_path):
    write_image(tmp_path / "o.jpg", picture(4, 4), quality=np.int64(80))
    assert read_image(tmp_path / "o.jpg")[0].shape == (4, 4, 3)


def test_one_size_is_the_size_every_picture_has_either_way_round(tmp_path):
    from ncnn_sr.images import one_size

    for name, (h, w) in {"a.png": (24, 32), "b.jpg": (24, 32), "c.png": (32, 24)}.items():
        Image.fromarray(picture(h, w)).save(tmp_path / name)
    same = [tmp_path / n for n in ("a.png", "b.jpg", "c.png")]
    assert one_size(same) == (24, 32)
    Image.fromarray(picture(24, 33)).save(tmp_path / "d.png")
    assert one_size([*same, tmp_path / "d.png"]) is None
    assert one_size([*same, tmp_path / "d.png"], most=3) == (24, 32)  # only the first few are read
    (tmp_path / "e.png").write_bytes(b"not a picture")
    assert one_size([tmp_path / "e.png", *same]) is None
    assert one_size([]) is None


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
def test_a_writer_given_a_folder_or_a_name_without_extension_says_so(writer, tmp_path):
    # found by a bug hunt: write_image("/tmp", ...) said "/tmp has no extension and is
    # not a folder ... or give a folder that exists", the words of the commands' -o
    from ncnn_sr import Animation, write_frames

    image = picture(4, 4)
    write = {"write_image": lambda p: write_image(p, image),
             "write_frames": lambda p: write_frames(p, Animation((image, image), (10, 10)))}[writer]
    with pytest.raises(InputError) as refused:
        write(tmp_path)
    assert str(refused.value) == f"cannot write {tmp_path}: a folder of that name is there"
    with pytest.raises(InputError) as refused:
        write(tmp_path / "out")
    assert str(refused.value) == (f"cannot write {tmp_path / 'out'}: its name has no extension: "
                                  "name it .png, .jpg, .webp, .gif or .avif, or give fmt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt, said", [
    ("bmp", "cannot write {out}: unsupported format 'bmp' (fmt): use png, jpg, webp, gif or avif"),
    ("png/../a", "cannot write {out}: unsupported format 'png/../a' (fmt): use png, jpg, webp, gif or avif"),
    (3, "fmt must be a format's name (png, jpg, webp, gif or avif), got 3"),
    # found by a library user's check: numpy's "truth value of an array is ambiguous"
    (np.array(["png", "jpg"]), "fmt must be a format's name (png, jpg, webp, gif or avif), got "
                               "array(['png', 'jpg'], dtype='<U3')"),
])
def test_a_writer_given_a_format_it_cannot_write_names_the_format_not_a_made_up_file(fmt, said, tmp_path):
    # found by a library audit: fmt="bmp" was refused as "unsupported output format
    # '.bmp' for x.bmp", a file the caller never named, and fmt=3 as the file "x.3".
    # A README audit: it is a setting the writer cannot run with, a SettingError (a
    # ValueError) as the README says of write_image's and write_frames', as quality=0
    # is; it was a bare InputError.
    out = tmp_path / "out.dat"
    with pytest.raises(SettingError) as refused:
        write_image(out, picture(4, 4), fmt=fmt)
    assert str(refused.value) == said.format(out=out)
    with pytest.raises(SettingError) as refused:
        write_frames(out, Animation((picture(4, 4), picture(4, 4, seed=1)), (100, 100)), fmt=fmt)
    assert str(refused.value) == said.format(out=out)
    assert list(tmp_path.iterdir()) == []


def test_plan_jobs_given_a_format_it_cannot_write_names_the_format(tmp_path):
    from ncnn_sr.jobs import plan_jobs

    Image.fromarray(picture(4, 4)).save(tmp_path / "a.png")
    with pytest.raises(SettingError) as refused:
        plan_jobs(tmp_path / "a.png", tmp_path / "out", fmt="bmp")
    assert str(refused.value) == (f"cannot write {tmp_path / 'out'}: unsupported format 'bmp' (fmt): "
                                  "use png, jpg, webp, gif or avif")


@pytest.mark.parametrize("fmt", [np.zeros(2), 0, False, b"png"])
def test_plan_jobs_given_a_format_that_is_no_name_says_so_in_one_line(fmt, tmp_path):
    # found by a library audit: an array was numpy's "truth value of an array is
    # ambiguous" ValueError, and 0 or False planned png outputs without a word.
    from ncnn_sr.jobs import plan_jobs

    Image.fromarray(picture(4, 4)).save(tmp_path / "a.png")
    with pytest.raises(SettingError, match=r"^fmt must be a format's name \(png, jpg, webp, gif or avif\), got "):
        plan_jobs(tmp_path / "a.png", tmp_path / "out", fmt=fmt, folder=True)
    assert plan_jobs(tmp_path / "a.png", tmp_path / "out", fmt="", folder=True).jobs[0].target == tmp_path / "out" / "a.png"


def test_a_writer_takes_a_format_in_capitals_or_with_its_dot(tmp_path):
    for n, fmt in enumerate(("PNG", ".jpg", "JPEG")):
        write_image(tmp_path / f"out{n}.dat", picture(4, 4), fmt=fmt)
    assert [Image.open(tmp_path / f"out{n}.dat").format for n in range(3)] == ["PNG", "JPEG", "JPEG"]


def test_a_colour_chunk_of_the_wrong_size_is_not_carried_over(tmp_path):
    """A damaged sRGB chunk (the specification's is 1 byte), which Pillow reads,
    written back would make the output invalid."""
    from conftest import png_bytes, png_chunk
    (tmp_path / "in.png").write_bytes(png_bytes(picture(4, 4), 8, 2, png_chunk(b"sRGB", b"\0\0"),
                                                png_chunk(b"gAMA", (45455).to_bytes(4, "big"))))
    _, info = read_image(tmp_path / "in.png")
    assert info.colour_chunks == ((b"gAMA", (45455).to_bytes(4, "big")),)


def test_a_picture_that_cannot_be_encoded_for_lack_of_memory_is_an_input_error(tmp_path, monkeypatch):
    # A MemoryError from the encoder (a machine that commits what is asked, a limit on
    # the process) came out as it was, not the one line a command prints.
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "save", no_memory)
    with pytest.raises(InputError, match=r"a\.jpg: not enough memory to write an 8x6 picture as JPEG \(about \d+ bytes "):
        write_image(tmp_path / "a.jpg", picture(6, 8))
    assert os.listdir(tmp_path) == []



# write_image (argv[2] "still") or write_frames (3 frames: "frames") of a 1000x1000
# picture to the WebP argv[1] with the address space capped at argv[3] bytes past what
# the process holds as libwebp's encoder is called: its outcome on stdout.
_WEBP_WRITTEN_SHORT_OF_MEMORY = """
import resource, sys
import numpy as np
from PIL import WebPImagePlugin
from ncnn_sr import write_image
from ncnn_sr.animation import Animation, write_frames
path, kind, margin = sys.argv[1], sys.argv[2], int(sys.argv[3])

def capped(encoder):
    def encoding(*args, **kwargs):
        with open("/proc/self/status") as f:
            held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (held + margin if hard < 0 else min(held + margin, hard), hard))
        return encoder(*args, **kwargs)
    return encoding

name = "WebPEncode" if kind == "still" else "WebPAnimEncoder"
setattr(WebPImagePlugin._webp, name, capped(getattr(WebPImagePlugin._webp, name)))
# Made with no large temporaries: freed, they stay in the heap the encoder would take.
frames = []
for index in range(1 if kind == "still" else 3):
    frame = np.empty((1000, 1000, 3), np.uint8)
    frame[:, :, 0] = np.arange(index, 1000 + index, dtype=np.uint16).astype(np.uint8)
    frame[:, :, 1] = np.arange(1000, dtype=np.uint16).astype(np.uint8)[:, None]
    for row in range(1000):
        frame[row, :, 2] = np.arange(row, row + 1000, dtype=np.uint16).astype(np.uint8)
    frames.append(frame)
try:
    if kind == "still":
        write_image(path, frames[0])
    else:
        write_frames(path, Animation(tuple(frames), (100,) * 3))
except Exception as e:
    print(type(e).__name__, e)
else:
    print("written")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
@pytest.mark.parametrize("kind, margins_mb, said", [
    # libwebp's encoder out of memory (under 4 MB: Pillow's own picture, a MemoryError).
    ("still", (4, 8, 16), "a 1000x1000 picture as WEBP"),
    # The animation encoder not made (under 12 MB), then out of memory for a frame.
    ("frames", (0, 8, 16), "3 1000x1000 frames as WEBP"),
])
def test_a_webp_written_short_of_memory_is_out_of_memory_not_an_encoder_error(kind, margins_mb, said, tmp_path):
    # libwebp's VP8_ENC_ERROR_OUT_OF_MEMORY came out as Pillow said it, "ValueError:
    # encoding error 1" (a still) or "RuntimeError: ERROR adding frame.
    # WebPEncodingError: 1." (an animation), as did "RuntimeError: could not create
    # encoder object": a command's "cannot write out.webp: ValueError('encoding error
    # 1')" for the picture, a folder's run going on to fail each later one alike. Each is the writing's out of memory (an InputError that
    # stops a run: test_cli), no file left.
    for margin in margins_mb:
        proc = subprocess.run([sys.executable, "-c", _WEBP_WRITTEN_SHORT_OF_MEMORY, str(tmp_path / "o.webp"), kind,
                               str(margin << 20)], capture_output=True, text=True, timeout=120)
        assert proc.stdout.startswith(f"WriteOutOfMemory {tmp_path / 'o.webp'}: not enough memory to "
                                      f"write {said} (about "), (margin, proc.stdout, proc.stderr)
        assert os.listdir(tmp_path) == []
    proc = subprocess.run([sys.executable, "-c", _WEBP_WRITTEN_SHORT_OF_MEMORY, str(tmp_path / "o.webp"), kind,
                           str(400 << 20)], capture_output=True, text=True, timeout=120)
    assert proc.stdout == "written\n", proc.stderr  # with room, the same picture is written


# write_image of a 2000x2000 picture to the JPEG argv[1] with the address space capped
# at argv[2] bytes past what the process holds as it is called (ulimit -v); its
# unoptimized retry, where argv[3] is given, with the heap filled but for argv[3]
# freed blocks of 1000 bytes, as another thread may have taken the memory meanwhile
# (the retry otherwise fits in what the failed encode freed). Its outcome on stdout.
# Room past the 45 MB write_image asks for the picture's write, short of the optimized
# encode's (Pillow's copy, its buffer and libjpeg's coefficients: 64 MB).
_JPEG_CAP = 55 << 20
_JPEG_WRITTEN_SHORT_OF_MEMORY = """
import resource, sys
import numpy as np
from PIL import ImageFile
from ncnn_sr import write_image
path, margin = sys.argv[1], int(sys.argv[2])
room = int(sys.argv[3]) if len(sys.argv) > 3 else None
encode, encodes = ImageFile._save, []

def cap(margin):
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (held + margin if hard < 0 else min(held + margin, hard), hard))


def capped(im, fp, tile, bufsize=0):
    if im.size == (1, 1):  # the optimized encode's head
        return encode(im, fp, tile, bufsize)
    encodes.append(None)
    if len(encodes) > 1 and room is not None:
        cap(0)
        filler = []
        try:
            while True:
                filler.append(bytes(1000))
        except MemoryError:
            pass
        del filler[len(filler) - room:]
        try:
            return encode(im, fp, tile, bufsize)
        finally:
            del filler
    return encode(im, fp, tile, bufsize)

ImageFile._save = capped
# Made with no large temporaries: freed, they stay in the heap the encoder would take.
frame = np.empty((2000, 2000, 3), np.uint8)
frame[:, :, 0] = np.arange(2000, dtype=np.uint16).astype(np.uint8)
frame[:, :, 1] = np.arange(2000, dtype=np.uint16).astype(np.uint8)[:, None]
for row in range(2000):
    frame[row, :, 2] = np.arange(row, row + 2000, dtype=np.uint16).astype(np.uint8)
cap(margin)
try:
    write_image(path, frame, quality=95)
except Exception as e:
    print(type(e).__name__, e)
else:
    print("written", len(encodes))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_jpeg_whose_unoptimized_retry_runs_out_of_memory_is_out_of_memory_not_a_broken_stream(tmp_path):
    # Past Pillow's buffer, libjpeg's coefficients for optimizing (its "Insufficient
    # memory (case 4)" on fd 2) fail the encode, and the unoptimized retry takes little.
    # Where that retry ran out too, libjpeg's failure read "cannot write o.jpg: broken
    # data stream when writing image file": the picture blamed, a folder's run going on
    # to fail each later one alike. It is the writing's out of memory (an InputError that
    # stops a run), no file left, however little the retry found (where Pillow's buffer
    # did not fit, a MemoryError already).
    # With the heap filled to its last blocks, C code that does not check its allocations
    # (1 CI run: a segfault at 0 blocks left) can end the process first: not an outcome
    # of ours, it is left out, so long as most rooms give one.
    target, told = tmp_path / "o.jpg", 0
    for room in range(0, 210, 10):
        proc = subprocess.run([sys.executable, "-c", _JPEG_WRITTEN_SHORT_OF_MEMORY, str(target), str(_JPEG_CAP),
                               str(room)], capture_output=True, text=True, timeout=120)
        if proc.returncode < 0:
            # Its part, if left, is removed here: the next write there would sweep it
            # and say so on stderr (1 CI run), which this test reads for libjpeg's line.
            for left in tmp_path.iterdir():
                left.unlink()
            continue
        assert os.listdir(tmp_path) == []
        assert proc.stdout.startswith(f"WriteOutOfMemory {target}: not enough memory to write a 2000x2000 "
                                      f"picture as JPEG (about "), (room, proc.stdout, proc.stderr)
        assert proc.stderr == "", (room, proc.stderr)  # libjpeg's "Insufficient memory (case 4)" neither
        told += 1
    assert told >= 15, told


def test_a_jpeg_whose_unoptimized_retry_is_written_says_nothing_of_the_failed_encode(tmp_path):
    # Room for the picture's write (ulimit -v), not for optimizing it: the retry wrote
    # the picture, and libjpeg's "Insufficient memory (case 4)" of the failed encode
    # reached the terminal, an error line for a picture written well.
    target = tmp_path / "o.jpg"
    proc = subprocess.run([sys.executable, "-c", _JPEG_WRITTEN_SHORT_OF_MEMORY, str(target), str(_JPEG_CAP)],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout == "written 2\n", proc.stderr  # unoptimized, after the failed encode
    assert proc.stderr == ""
    assert read_image(target)[0].shape == (2000, 2000, 3)


def test_what_another_thread_writes_to_stderr_while_a_jpeg_is_optimized_short_of_memory_reaches_it(
        tmp_path, monkeypatch, capfd):
    # fd 2 is caught then, for libjpeg's "Insufficient memory" of an encode its retry
    # mends; a library user's other threads lost their lines meanwhile.
    monkeypatch.setattr(images_mod, "_short_for_optimizing", lambda im, options: True)
    optimize = images_mod.save_optimized_jpeg

    def optimized_while_another_thread_writes(*args):
        writer = threading.Thread(target=os.write, args=(2, b"beside the encode\n"))
        writer.start()
        writer.join()
        optimize(*args)
    monkeypatch.setattr(images_mod, "save_optimized_jpeg", optimized_while_another_thread_writes)
    write_image(tmp_path / "o.jpg", picture(8, 8))
    assert capfd.readouterr().err == "beside the encode\n"


def test_a_picture_whose_writing_cannot_fit_in_memory_is_refused_before_it_is_encoded(tmp_path, monkeypatch):
    # Linux kills a process that takes more than there is, rather than failing its
    # allocation: a 70000x70000 png was killed while Pillow copied it. An 8x6 RGB png
    # takes 4 bytes a pixel beside the picture (Pillow's copy), an RGBA one none.
    from ncnn_sr import budget
    monkeypatch.setattr(budget, "memory_limit", lambda: 100)
    with pytest.raises(InputError, match=r"a\.png: writing an 8x6 picture as PNG needs about 192 bytes of memory "
                                         r"beside the picture, more than the 100 bytes available"):
        write_image(tmp_path / "a.png", picture(6, 8))
    assert os.listdir(tmp_path) == []
    write_image(tmp_path / "b.png", picture(6, 8, channels=4))
    assert read_image(tmp_path / "b.png")[0].shape == (6, 8, 4)


def writers_sharing_memory(monkeypatch, limit: int):
    """Memory of ``limit`` bytes, writing a picture taking height x width bytes of it
    (none for RGBA, as for an 8-bit RGBA png). Returns (begun, go, encoded): a picture
    of 6 rows, once its encoding has begun (``begun`` set), waits for ``go``; ``encoded``
    lists the heights of the pictures whose encoding began, in order."""
    monkeypatch.setattr(budget, "memory_limit", lambda: limit)
    monkeypatch.setattr(images_mod, "write_bytes",
                        lambda height, width, channels, *rest, **named: height * width * (channels != 4))
    begun, go, encoded, encode = threading.Event(), threading.Event(), [], images_mod._encode

    def held_encode(f, image, *rest):
        encoded.append(image.shape[0])
        if image.shape[0] == 6:
            begun.set()
            assert go.wait(60), "never let go"
        encode(f, image, *rest)

    monkeypatch.setattr(images_mod, "_encode", held_encode)
    return begun, go, encoded


def until(done) -> None:
    """Wait for ``done()`` to be true (a bound against a hang, not a timing)."""
    for _ in range(30000):
        if done():
            return
        time.sleep(0.001)
    raise AssertionError("never happened")


def test_writers_in_other_threads_wait_for_room_beside_each_other(tmp_path, monkeypatch):
    # Each of two save workers saw room for its own writing alone in what was available,
    # and Linux would kill the process that took both. 60 + 50 bytes do not fit in 100:
    # the second waits for the first to finish, then writes.

    begun, go, encoded = writers_sharing_memory(monkeypatch, 100)
    first = threading.Thread(target=write_image, args=(tmp_path / "a.png", picture(6, 10)))
    second = threading.Thread(target=write_image, args=(tmp_path / "b.png", picture(5, 10)))
    try:
        first.start()
        assert begun.wait(30)
        second.start()
        until(lambda: budget.WRITERS.waiting or len(encoded) > 1)
        assert encoded == [6] and budget.WRITERS.waiting == 1
    finally:
        go.set()
        first.join()
        second.join()
    assert encoded == [6, 5] and budget.WRITERS.waiting == 0
    assert read_image(tmp_path / "b.png")[0].shape == (5, 10, 3)


def test_a_writer_that_cannot_fit_even_alone_is_refused_at_once_while_others_write(tmp_path, monkeypatch):
    # 60 bytes promised to a writer in progress and 100 available: 200 would not fit
    # were it done, so waiting for it would only delay the refusal.

    begun, go, encoded = writers_sharing_memory(monkeypatch, 100)
    first = threading.Thread(target=write_image, args=(tmp_path / "a.png", picture(6, 10)))
    try:
        first.start()
        assert begun.wait(30)
        with pytest.raises(InputError, match=r"c\.png: writing a 10x20 picture as PNG needs about 200 bytes of memory beside the picture, more than the 160 bytes available"):
            write_image(tmp_path / "c.png", picture(20, 10))
        assert encoded == [6]
    finally:
        go.set()
        first.join()
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_a_writer_that_failed_gives_its_memory_back(tmp_path, monkeypatch):
    writers_sharing_memory(monkeypatch, 100)
    with pytest.raises(InputError, match="does not exist"):
        write_image(tmp_path / "gone" / "a.png", picture(6, 10))  # 60 promised, then given back
    alone = threading.Thread(target=write_image, args=(tmp_path / "b.png", picture(10, 10)), daemon=True)  # all 100
    alone.start()
    until(lambda: not alone.is_alive())
    assert os.listdir(tmp_path) == ["b.png"] and budget.WRITERS.waiting == 0


def test_a_ctrl_c_as_a_writer_is_let_in_gives_its_memory_back(tmp_path, monkeypatch):
    # Landing after the promise was made and before the block that gives it back
    # (here at the notify that ends the wait), a Ctrl-C kept it for good: in the same
    # process (a notebook), a later writer that did not fit beside it waited for ever.
    writers_sharing_memory(monkeypatch, 100)
    room, real_notify = budget.WRITERS._room, budget.WRITERS._room.notify_all

    def ctrl_c_once():
        real_notify()
        if budget.WRITERS._promised:
            monkeypatch.setattr(room, "notify_all", real_notify)
            raise KeyboardInterrupt
    monkeypatch.setattr(room, "notify_all", ctrl_c_once)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "a.png", picture(6, 10))  # 60 promised
    alone = threading.Thread(target=write_image, args=(tmp_path / "b.png", picture(10, 10)), daemon=True)  # all 100
    alone.start()
    until(lambda: not alone.is_alive())
    assert os.listdir(tmp_path) == ["b.png"] and budget.WRITERS._promised == 0


def test_a_writer_that_fits_beside_the_one_in_progress_does_not_wait(tmp_path, monkeypatch):

    begun, go, encoded = writers_sharing_memory(monkeypatch, 100)
    first = threading.Thread(target=write_image, args=(tmp_path / "a.png", picture(6, 10)))
    try:
        first.start()
        assert begun.wait(30)
        write_image(tmp_path / "b.png", picture(4, 10))  # 60 + 40 fit in 100
        assert encoded == [6, 4]
    finally:
        go.set()
        first.join()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_a_writer_that_needs_no_memory_does_not_wait_behind_one_waiting(tmp_path, monkeypatch):
    # An 8-bit RGBA png is written from the picture itself: nothing for it to wait for.
    begun, go, encoded = writers_sharing_memory(monkeypatch, 100)
    first = threading.Thread(target=write_image, args=(tmp_path / "a.png", picture(6, 10)))
    second = threading.Thread(target=write_image, args=(tmp_path / "b.png", picture(5, 10)))
    third = threading.Thread(target=write_image, args=(tmp_path / "c.png", picture(5, 10, channels=4)))
    try:
        first.start()
        assert begun.wait(30)
        second.start()
        until(lambda: budget.WRITERS.waiting)
        third.start()
        until(lambda: not third.is_alive())
        assert encoded == [6, 5] and budget.WRITERS.waiting == 1
    finally:
        go.set()
        first.join()
        second.join()
        third.join()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "c.png"]


@pytest.mark.parametrize("writer", ["write_image", "write_frames"])
@pytest.mark.parametrize("name, fmt", [("new/", "png"), ("x.png/", None), (f"x.png{os.sep}.", None)])
def test_a_path_written_as_a_folder_s_is_refused_not_written_as_a_file(tmp_path, writer, name, fmt):
    # found by a library audit: Path() dropped the separator, and write_image("out/",
    # fmt="png") wrote a file named out, "x.png/" one named x.png.
    from ncnn_sr.animation import Animation, write_frames

    write = {"write_image": lambda p: write_image(p, picture(4, 6), fmt=fmt),
             "write_frames": lambda p: write_frames(p, Animation((picture(4, 6),), (100,)), fmt=fmt)}[writer]
    with pytest.raises(InputError, match="a folder's"):
        write(f"{tmp_path}{os.sep}{name}")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "mkstemp"])
def test_a_ctrl_c_as_the_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch, unnamed):
    # Landing in mkstemp once it had made the file, before its name came back, it left
    # the hidden .part beside the output. Made without a name, it is named by a link.
    from ncnn_sr import part_files
    if not unnamed:
        monkeypatch.setattr(part_files, "_TMPFILE", 0)
    ctrl_c_once_made(monkeypatch, ".part")
    with pytest.raises(KeyboardInterrupt):
        files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_as_a_folder_is_tried_for_writing_leaves_nothing_in_it(tmp_path, monkeypatch):
    # Every command tries its output folder with a file made and removed there: a Ctrl-C
    # as it was made left a hidden .ncnn-sr-*.part among the outputs.
    ctrl_c_once_made(monkeypatch, ".ncnn-sr-")
    with pytest.raises(KeyboardInterrupt):
        files_mod.check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_file_name_with_a_line_break_is_escaped_in_read_and_write_errors(tmp_path):
    # Model errors escaped it; a picture's kept the raw line break, a message of two lines.
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "a\nb.png")
    assert str(caught.value) == f"{tmp_path}/a\\nb.png: file not found"
    (tmp_path / "x\ny.png").write_text("not a picture")
    with pytest.raises(InputError, match=r"x\\ny\.png: not a picture") as caught:
        read_image(tmp_path / "x\ny.png")
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError) as caught:
        write_image(tmp_path / "no\nfolder" / "o.png", picture(4, 4))
    assert "no\\nfolder" in str(caught.value) and "\n" not in str(caught.value)


def test_a_hinted_error_escaped_onto_one_line_keeps_its_type_and_its_hint_for_each_reader(tmp_path):
    # Escaping re-raised type(e)(message): HintedInputError, which takes a message and
    # an option, came out a TypeError.
    from ncnn_sr.errors import FlagNames, HintedInputError

    im = rgb_image()
    exif = im.getexif()
    exif[0x010E] = "x" * 70000  # too large for JPEG
    arr, info = read_image(save(tmp_path / "i.png", im, exif=exif.tobytes()))
    with pytest.raises(HintedInputError) as caught:
        write_image(tmp_path / "o\n.jpg", arr, info)
    assert "o\\n.jpg: its EXIF" in str(caught.value) and str(caught.value).endswith("(metadata=False)")
    said = caught.value.said(FlagNames())
    assert "o\\n.jpg: its EXIF" in said and said.endswith("(--no-metadata)") and "\n" not in said
    assert not (tmp_path / "o\n.jpg").exists()


@pytest.mark.parametrize("trailer, said", [
    (b"", "broken or truncated picture (GIF: cut short after frame 2): skip_damaged=True reads what can be read of it"),
    (b";", None),  # a control extension its file ends after: no frame missing
])
def test_a_gif_cut_right_after_a_frames_control_extension_is_truncated(trailer, said, tmp_path):
    # found by QA: cut at the end of the third frame's graphic control extension, before
    # its image, the file was read as 2 frames without a word (exit 0): the walk took
    # the end for a missing trailer, which it is only after a whole frame
    from ncnn_sr.animation import read_frames
    frames = [Image.new("RGB", (8, 6), (60 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    whole = (tmp_path / "a.gif").read_bytes()
    third = [m.start() for m in re.finditer(b"\x21\xf9\x04", whole)][2]
    (tmp_path / "cut.gif").write_bytes(whole[:third + 8] + trailer)
    if said is None:
        assert len(read_frames(tmp_path / "cut.gif")[0].frames) == 2
        return
    with pytest.raises(InputError) as caught:
        read_frames(tmp_path / "cut.gif")
    assert str(caught.value) == f"{tmp_path / 'cut.gif'}: {said}"


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is swept")
def test_a_folder_written_into_again_is_neither_swept_nor_resolved_again(tmp_path, monkeypatch):
    # Each picture written resolved its folder's path (os.path.realpath: one lstat per
    # part of the path, 7 for each of 2000 pictures 7 folders deep) to find it swept
    # already; the same folder named apart (through a link) is still swept once.
    (tmp_path / "link").symlink_to(tmp_path)
    resolved, real = [], os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or real(path, **kw))
    listed, scandir = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or scandir(path))
    for _ in range(3):
        files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
        files_mod.atomic_write(tmp_path / "link" / "b.png", lambda f: f.write(b"whole"))
    assert len(listed) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "link"]
    assert len(resolved) == 2, resolved  # the folder as named each way, once


def test_a_file_its_encoder_writes_nothing_into_is_written_empty(tmp_path):
    # A part holds one byte from its lock on (part_files: an empty part is never taken
    # for stale), which the encoder writes over: writing nothing, it is cut back.
    files_mod.atomic_write(tmp_path / "a.txt", lambda f: None)
    files_mod.atomic_write(tmp_path / "b.txt", lambda f: f.write(b""))  # a model of no weights writes its bin so
    files_mod.atomic_write(tmp_path / "c.txt", lambda f: f.write(b"c"))
    assert [(tmp_path / n).read_bytes() for n in ("a.txt", "b.txt", "c.txt")] == [b"", b"", b"c"]


@pytest.mark.skipif(os.name == "nt", reason="no flock")
def test_a_picture_s_part_is_locked_until_it_is_renamed_into_place(tmp_path, monkeypatch):
    # A part free to lock is taken for one a killed run left (part_files): were its
    # lock let go before the rename, another run sweeping the folder could remove it.
    import fcntl
    renamed, replace = [], os.replace

    def checked(src, dst):
        fd = os.open(src, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        renamed.append(Path(src).name)
        replace(src, dst)
    monkeypatch.setattr(os, "replace", checked)
    files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
    assert len(renamed) == 1 and (tmp_path / "a.png").read_bytes() == b"whole"


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_an_empty_part_a_run_killed_as_it_made_it_left_is_removed_by_the_next_run_there(tmp_path, caplog):
    # A part is made under part_files.NEW's name, then locked and named as a part: a
    # SIGKILL in between left an empty file under NEW's name that no run removed, as a
    # live run's is there unlocked for that instant too. One empty, free to lock, and
    # older than part_files.NEW_AGE is a killed run's: not one just made, nor one
    # written into, nor one its writer holds (a part whose locked name was taken).
    import fcntl
    killed, just_made, written, held = (tmp_path / f".{n}.png.ncnn-sr-part-new.{r}.part" for n, r in (
        ("a", "a1b2c3d4"), ("b", "e5f6g7h8"), ("c", "i9j0k1l2"), ("d", "m3n4o5p6")))
    for path in (killed, just_made, held):
        path.write_bytes(b"")
    written.write_bytes(b"\0")
    for path in (killed, written, held):
        os.utime(path, (time.time() - 3600,) * 2)
    holder = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
            files_mod.atomic_write(tmp_path / "x.png", lambda f: f.write(b"whole"))
    finally:
        os.close(holder)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([just_made.name, written.name, held.name, "x.png"])
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: removed a hidden part file (0 bytes) left by a run killed while writing there"]


# A run that SIGKILL ends as it makes a part file (a picture's or a video's): just
# before its lock is taken ("before"), or just after ("once").
KILLED_MAKING_A_PART = """
import fcntl, os, signal, sys
from pathlib import Path
from ncnn_sr import files, part_files
folder, when, what = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
flock = fcntl.flock
def killed(fd, how):
    if when == "once":
        flock(fd, how)
    os.kill(os.getpid(), signal.SIGKILL)
fcntl.flock = killed
if what == "picture":
    files.atomic_write(folder / "a.png", lambda f: f.write(b"whole"))
else:
    part_files.new_part(folder, "out", ".mp4")
"""


def _makes_unnamed_files(folder: Path) -> bool:
    try:
        os.close(os.open(folder, os.O_TMPFILE | os.O_RDWR, 0o600))
    except (AttributeError, OSError):
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="elsewhere a part is named before it is locked")
@pytest.mark.parametrize("what", ["picture", "video"])
@pytest.mark.parametrize("when", ["before", "once"])
def test_a_run_killed_as_it_made_its_part_file_leaves_nothing_beside_a_rerun_s_output(tmp_path, when, what):
    # A part was made under a name of its own, then locked, then renamed: a SIGKILL
    # before the rename left an empty hidden file that looked like a live run's for
    # part_files.NEW_AGE (60 s). A rerun at once wrote beside it, said nothing of it,
    # and it stayed where no run came later. Made with no name, locked, then linked
    # under its name, it is never named and unlocked.
    if not _makes_unnamed_files(tmp_path):
        pytest.skip("a file system that makes no file without a name: named before it is locked")
    killed = subprocess.run([sys.executable, "-c", KILLED_MAKING_A_PART, str(tmp_path), when, what], timeout=120)
    assert killed.returncode == -9
    if what == "picture":
        files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))  # the rerun
        assert os.listdir(tmp_path) == ["a.png"]
    else:
        from ncnn_sr import part_files
        assert part_files.remove_stale(tmp_path, "out", ".mp4") == [] and os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the descriptors in /proc")
@pytest.mark.parametrize("refused", ["O_TMPFILE", "link"])
def test_a_part_no_file_without_a_name_can_be_made_for_is_made_by_name_and_locked(tmp_path, monkeypatch, refused):
    # File systems that make no file without a name (NFS, overlayfs before Linux 6.6)
    # refuse O_TMPFILE; a system with no /proc cannot link one. Its part is then made
    # under NEW's name and locked before it takes MARK's, as elsewhere, and the
    # unnamed file's descriptor is not kept.
    import fcntl
    from ncnn_sr import part_files
    real_open, real_link, unnamed = os.open, os.link, getattr(os, "O_TMPFILE", -1)

    def no_unnamed(path, flags, *args, **kwargs):
        if flags & unnamed == unnamed:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return real_open(path, flags, *args, **kwargs)

    def no_proc(src, dst, *args, **kwargs):
        if os.fspath(src).startswith("/proc/"):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), src)
        return real_link(src, dst, *args, **kwargs)
    if refused == "O_TMPFILE":
        monkeypatch.setattr(os, "open", no_unnamed)
    else:
        monkeypatch.setattr(os, "link", no_proc)
    held = []

    def encode(f):
        [part] = os.listdir(tmp_path)
        fd = real_open(tmp_path / part, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        held.append(part)
        f.write(b"whole")
    before = len(os.listdir("/proc/self/fd"))
    files_mod.atomic_write(tmp_path / "a.png", encode)
    assert len(os.listdir("/proc/self/fd")) == before
    assert held[0].startswith(f".a.png.{part_files.MARK}.") and os.listdir(tmp_path) == ["a.png"]


@pytest.mark.skipif(os.name == "nt", reason="no flock")
def test_a_part_in_a_folder_made_read_only_as_it_was_named_is_left_under_one_name(tmp_path, monkeypatch):
    # A part was named in two steps, a link to its locked name and the unlink of its
    # first: a folder made read-only between them (a folder run, 1 CI run in 6) kept
    # it under both names, and the run warned of the one it wrote into alone.
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(os, "unlink", refused)
    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(InputError) as e:
        files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
    left = os.listdir(tmp_path)
    assert len(left) == 1 and ".ncnn-sr-part-locked." in left[0], left
    assert e.value.left_behind == f"{tmp_path / left[0]}: a temporary file that could not be removed " \
        f"(Permission denied)"


@pytest.mark.skipif(os.name == "nt", reason="no flock")
@pytest.mark.parametrize("renameat2", [True, False])
def test_a_part_is_never_named_over_a_file_of_its_locked_name(tmp_path, monkeypatch, renameat2):
    # One chance in 37**8: the locked name is another run's part. Renamed over it, that
    # run's picture would be this one's. Linux's renameat2 refuses in the same call;
    # without it (an old C library, another system) a check comes first.
    from ncnn_sr import part_files
    if not renameat2:
        monkeypatch.setattr(part_files, "_RENAMEAT2", None)
    elif part_files._RENAMEAT2 is None:
        pytest.skip("no renameat2 in this C library")
    made = tmp_path / ".a.png.ncnn-sr-part-new.a1b2c3d4.part"
    taken = tmp_path / ".a.png.ncnn-sr-part-locked.a1b2c3d4.part"
    made.write_bytes(b"mine")
    taken.write_bytes(b"another run's")
    assert part_files._named_locked(made) == made
    assert made.read_bytes() == b"mine" and taken.read_bytes() == b"another run's"
    taken.unlink()
    assert part_files._named_locked(made) == taken and taken.read_bytes() == b"mine" and not made.exists()


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_a_part_taken_for_a_killed_run_s_before_its_writer_locked_it_is_made_anew(tmp_path, monkeypatch):
    # A writer that stood still (Ctrl-Z, say) between making its part and locking it
    # for longer than part_files.NEW_AGE had it removed by another run's sweep, and
    # wrote into a file of no name: its picture was lost at the rename. Finding it
    # gone once locked, it makes another.
    from ncnn_sr import part_files
    monkeypatch.setattr(part_files, "_TMPFILE", 0)  # made under NEW's name, as off Linux
    made, mkstemp = [], tempfile.mkstemp

    def swept(*args, **kwargs):
        handle, name = mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            os.utime(name, (time.time() - 3600,) * 2)
            part_files.forget_swept()
            part_files.sweep_once(tmp_path)  # another run's sweep
        return handle, name
    monkeypatch.setattr(tempfile, "mkstemp", swept)
    files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
    assert len(made) == 2 and os.listdir(tmp_path) == ["a.png"] and (tmp_path / "a.png").read_bytes() == b"whole"


@pytest.mark.skipif(os.name == "nt", reason="no flock: no part file is taken for stale")
def test_a_part_whose_lock_a_sweep_holds_as_its_writer_locks_it_is_made_anew(tmp_path, monkeypatch):
    # The sweep that removes a part its writer has not yet locked holds its lock for
    # that instant: the writer, refused it, took the part for one on a file system of
    # no locks, kept it, and lost it as the sweep went on to remove it.
    import fcntl
    from ncnn_sr import part_files
    monkeypatch.setattr(part_files, "_TMPFILE", 0)  # made under NEW's name, as off Linux
    made, mkstemp, flock = [], tempfile.mkstemp, fcntl.flock

    def kept(*args, **kwargs):
        handle, name = mkstemp(*args, **kwargs)
        made.append(name)
        return handle, name

    def held(fd, how):
        if len(made) == 1 and os.path.exists(made[0]):
            os.unlink(made[0])  # as the sweep holding it goes on to
            raise BlockingIOError(errno.EWOULDBLOCK, os.strerror(errno.EWOULDBLOCK))
        return flock(fd, how)
    monkeypatch.setattr(tempfile, "mkstemp", kept)
    monkeypatch.setattr(fcntl, "flock", held)
    files_mod.atomic_write(tmp_path / "a.png", lambda f: f.write(b"whole"))
    assert len(made) == 2 and os.listdir(tmp_path) == ["a.png"] and (tmp_path / "a.png").read_bytes() == b"whole"


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is swept")
def test_the_folders_kept_as_swept_are_bounded(tmp_path, monkeypatch):
    # Kept for the process's life, one entry per folder ever written into: a library user
    # writing into many folders over days grew them without end.
    from ncnn_sr import part_files
    part_files.forget_swept()
    listed, scandir = [], os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or scandir(path))
    many = part_files.KEEP_SWEPT + 50
    for i in range(many):
        (tmp_path / str(i)).mkdir()
        part_files.sweep_once(tmp_path / str(i))
        part_files.sweep_once(tmp_path / "0")  # asked again and again: kept as the others come
    assert len(listed) == many
    assert max(len(part_files._asked), len(part_files._swept)) <= part_files.KEEP_SWEPT
    part_files.sweep_once(tmp_path / "1")  # long forgotten: listed again, once
    assert len(listed) == many + 1


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_a_jpeg_whose_coded_data_is_damaged_is_broken(kind, tmp_path):
    # 16 bytes overwritten inside the scans (a failing disk, a bad transfer): libjpeg
    # decodes on with a warning Pillow does not pass on, every block after them
    # shifted or of wrong colours, and the picture was upscaled without a word.
    data = jpeg_bytes(picture(96, 128), kind)
    scans = data.index(b"\xff\xda") if kind == "progressive" else data.rindex(b"\xff\xda")
    at = scans + 40 if kind == "progressive" else scans + (len(data) - scans) // 2
    junk = bytes(b % 255 for b in random.Random(0).randbytes(16))  # no 0xFF: no marker made
    (tmp_path / "d.jpg").write_bytes(data[:at] + junk + data[at + 16:])
    row = "1" if kind == "progressive" else "49"  # its first scan; the MCU row the bytes fell in
    said = rf"^\S*d.jpg: broken or truncated picture \(JPEG: its coded data is damaged from about row {row} of 96 "
    with pytest.raises(InputError, match=said):
        read_image(tmp_path / "d.jpg")
