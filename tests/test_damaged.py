"""Damaged pictures (cut short, a checksum or restart marker wrong): refused naming
--skip-damaged, or with it upscaled as far as their decoders read them, what is
missing filled grey, with a warning (real models, tiny pictures, CPU)."""
import io
import logging
import re
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import picture
from ncnn_sr.animation import read_frames
from ncnn_sr.errors import InputError, SettingError
from ncnn_sr.images import read_image
from test_cli import installed

NCNN_SR = installed("ncnn-sr")
DROPIN = installed("realesrgan-ncnn-vulkan")
X2 = ("-g", "-1", "-n", "realesr-animevideov3", "-s", "2")
HINT = "reads what can be read of it"


def encoded(fmt: str, arr=None, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture(24, 32) if arr is None else arr).save(out, fmt, **options)
    return out.getvalue()


def jpeg_cut(progressive: bool = False) -> bytes:
    """A 32x24 JPEG cut short two thirds into its (last) scan's data, no end marker."""
    data = encoded("JPEG", quality=90, progressive=progressive, subsampling=0)
    sos = data.rindex(b"\xff\xda")
    start = sos + 2 + struct.unpack_from(">H", data, sos + 2)[0]
    return data[:start + (len(data) - 2 - start) * 2 // 3]


def png_cut(interlaced: bool = False) -> bytes:
    """A 32x24 PNG cut short two thirds into its pixel data (stored, so that rows map
    to bytes); interlaced by hand, as Pillow writes none."""
    arr = picture(24, 32)
    if not interlaced:
        data = encoded("PNG", arr, compress_level=0)
    else:
        rows = b""
        for top, left, down, across in ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
                                        (0, 1, 2, 2), (1, 0, 2, 1)):
            part = arr[top::down, left::across]
            rows += b"".join(b"\0" + row.tobytes() for row in part) if part.size else b""
        data = _png(arr.shape, zlib.compress(rows, 0), interlace=1)
    idat = data.index(b"IDAT")
    length = struct.unpack_from(">I", data, idat - 4)[0]
    return data[:idat + 4 + length * 2 // 3]


def _png(shape, idat: bytes, interlace: int) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    head = struct.pack(">IIBBBBB", shape[1], shape[0], 8, 2, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_checksum_wrong() -> bytes:
    """A 32x24 PNG whose compressed pixel data has a byte changed two thirds in."""
    data = bytearray(encoded("PNG", compress_level=9))
    idat = data.index(b"IDAT")
    length = struct.unpack_from(">I", data, idat - 4)[0]
    data[idat + 4 + length * 2 // 3] ^= 0x55
    return bytes(data)


def jpeg_restart_wrong() -> bytes:
    """A 32x24 JPEG with a restart marker each MCU, its third renumbered."""
    data = encoded("JPEG", quality=90, restart_marker_blocks=1, subsampling=0)
    markers = [m.start() for m in re.finditer(rb"\xff[\xd0-\xd7]", data)]
    at = markers[2]
    return data[:at + 1] + bytes([0xD0 + (data[at + 1] + 3) % 8]) + data[at + 2:]


def jpeg_codes_wrong() -> bytes:
    """A 32x24 JPEG with 8 bytes inside its scan's data overwritten (no 0xFF: no marker)."""
    data = encoded("JPEG", quality=90)
    at = data.rindex(b"\xff\xda") + (len(data) - data.rindex(b"\xff\xda")) // 2
    return data[:at] + bytes((37 * k + 11) % 255 for k in range(8)) + data[at + 8:]


def cut_at(fmt: str, fraction: float, **options) -> bytes:
    data = encoded(fmt, **options)
    return data[:int(len(data) * fraction)]


def gif_cut() -> bytes:
    """A 32x24 GIF (not interlaced) cut short in its frame's last data sub-block."""
    return cut_at("GIF", 0.9, interlace=False)


# name: (file's bytes, what its warning says is missing, whether it is read exactly
# where it is not missing: a lossless format's rows are the whole picture's)
DAMAGED = {
    "baseline.jpg": (lambda: jpeg_cut(), r"rows \d+-24 of 24(, the first in part,)? missing, filled grey", False),
    "progressive.jpg": (lambda: jpeg_cut(True), r"rows \d+-24 of 24(, the first in part,)? read with less detail or "
                                                r"grey", False),
    "cut.png": (lambda: png_cut(), r"rows 17-24 of 24 missing, filled grey", True),
    "interlaced.png": (lambda: png_cut(True), r"\d+% of its pixels missing \(rows \d+-24 of 24 in part\), filled grey",
                       True),
    # A byte changed in compressed data decodes into wrong pixels until the decoder fails.
    "checksum.png": (png_checksum_wrong, r"rows \d+-24 of 24 missing(, the first in part)?, filled grey, and those "
                                         r"before may be wrong", False),
    "restarts.jpg": (jpeg_restart_wrong, r"read as libjpeg reads it on from the next restart marker, the blocks "
                                         r"between grey or shifted", False),
    "codes.jpg": (jpeg_codes_wrong, r"read as libjpeg decodes on through them, the blocks from there wrong or "
                                    r"shifted", False),
    "cut.gif": (gif_cut, r"rows \d+-24 of 24 missing(, the first in part)?, filled grey", False),
    "cut.bmp": (lambda: cut_at("BMP", 0.6), r"rows 1-\d+ of 24 missing(, the first in part)?, filled grey", True),
    "cut.tif": (lambda: cut_at("TIFF", 0.6), r"rows \d+-24 of 24 missing(, the first in part)?, filled grey", True),
}


@pytest.mark.parametrize("name", DAMAGED)
def test_a_damaged_picture_is_refused_naming_the_option_and_read_with_it(name, tmp_path, caplog):
    make, missing, exact = DAMAGED[name]
    path = tmp_path / name
    path.write_bytes(make())
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: broken or truncated picture \(.*\): "
                                         rf"skip_damaged=True {HINT}$"):
        read_image(path)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(path, skip_damaged=True)
    said = [r.getMessage() for r in caplog.records if r.name == "ncnn_sr"]
    assert len(said) == 1 and re.fullmatch(rf"{re.escape(str(path))}: [^:]+.*: {missing}", said[0]), said
    assert arr.shape == (24, 32, 3) and arr.dtype == np.uint8
    with Image.open(path) as im:  # its own format, read so
        assert info.format == im.format
    grey = (np.abs(arr.astype(int) - 128) <= 2).all(axis=2)
    if "filled grey" in missing:
        rows = [int(n) for n in re.search(r"rows (\d+)-(\d+)", said[0]).groups()]
        assert grey[rows[1] - 1].any()  # the last row it says is missing is grey where missing
    if exact:
        whole = picture(24, 32)
        same = (arr == whole).all(axis=2)
        assert (same | grey).all() and same.sum() > 24 * 32 // 4  # what was read is the picture's


def test_a_cut_jpeg_is_upscaled_with_the_flag_and_refused_without_it(tmp_path):
    (tmp_path / "cut.jpg").write_bytes(jpeg_cut())
    proc = subprocess.run([NCNN_SR, "-i", "cut.jpg", "-o", "o.png", *X2], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == ("ncnn-sr: error: cut.jpg: broken or truncated picture (JPEG: its data is cut short "
                           f"(no end marker) before its last blocks): --skip-damaged {HINT}\n")
    assert not (tmp_path / "o.png").exists()
    proc = subprocess.run([NCNN_SR, "-i", "cut.jpg", "-o", "o.png", *X2, "--skip-damaged"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warned) == 1 and re.fullmatch(
        r"ncnn-sr: warning: cut.jpg: JPEG: its data is cut short \(no end marker\) before its last blocks: "
        r"rows \d+-24 of 24, the first in part, missing, filled grey", warned[0]), proc.stderr
    with Image.open(tmp_path / "o.png") as out:
        assert out.size == (64, 48)


def test_in_a_folder_the_flag_reads_each_damaged_picture(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(jpeg_cut())
    (tmp_path / "in" / "b.png").write_bytes(png_cut())
    (tmp_path / "in" / "c.png").write_bytes(encoded("PNG"))
    proc = subprocess.run([NCNN_SR, "-i", "in", "-o", "out", *X2], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c.png"]
    assert proc.stderr.count(f"--skip-damaged {HINT}") == 2, proc.stderr
    proc = subprocess.run([NCNN_SR, "-i", "in", "-o", "out", *X2, "--skip-damaged"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    assert "in/a.jpg: JPEG: its data is cut short" in proc.stderr
    assert "in/b.png: image file is truncated: rows 17-24 of 24 missing, filled grey" in proc.stderr


@pytest.mark.parametrize("name, data", [
    ("cut.webp", lambda: cut_at("WEBP", 0.6, lossless=True)),  # libwebp decodes whole frames alone
    ("empty.png", lambda: png_cut()[:encoded("PNG", compress_level=0).index(b"IDAT") + 60]),  # no whole row
    ("early.jpg", lambda: (data := encoded("JPEG", quality=90))[:data.rindex(b"\xff\xda") + 20]),  # no block
    ("scanless.jpg", lambda: (data := encoded("JPEG", quality=90, progressive=True))[:data.index(b"\xff\xda")]
     + b"\xff\xd9"),
])
def test_where_nothing_can_be_read_the_flag_changes_nothing(name, data, tmp_path):
    (tmp_path / name).write_bytes(data())
    with pytest.raises(InputError) as refused:
        read_image(tmp_path / name)
    assert "broken or truncated picture" in str(refused.value) and HINT not in str(refused.value)
    with pytest.raises(InputError) as still:
        read_image(tmp_path / name, skip_damaged=True)
    assert str(still.value) == str(refused.value)


def test_the_dropin_refuses_a_damaged_picture_naming_ncnn_srs_flag(tmp_path):
    # The reference tool's readers fill a cut JPEG without a word; its flags are kept.
    (tmp_path / "cut.jpg").write_bytes(jpeg_cut())
    proc = subprocess.run([DROPIN, "-i", "cut.jpg", "-o", "o.png", *X2], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and f"'ncnn-sr --skip-damaged' {HINT}" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_skip_damaged_must_be_a_bool(tmp_path):
    (tmp_path / "a.png").write_bytes(encoded("PNG"))
    with pytest.raises(SettingError, match=r"^skip_damaged must be True or False, got "):
        read_image(tmp_path / "a.png", skip_damaged="no")


def animation(fmt: str, **options) -> bytes:
    out = io.BytesIO()
    frames = [Image.fromarray(picture(24, 32, seed=i)) for i in range(3)]
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100, **options)
    return out.getvalue()


def test_an_animated_gif_cut_short_keeps_its_whole_frames_with_the_flag(tmp_path):
    data = animation("GIF")
    (tmp_path / "cut.gif").write_bytes(data[:len(data) * 5 // 6])  # inside its third frame
    proc = subprocess.run([NCNN_SR, "-i", "cut.gif", "-o", "o.gif", *X2], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and proc.stderr == (
        "ncnn-sr: error: cut.gif: broken or truncated picture (GIF: cut short after frame 2): "
        f"--skip-damaged {HINT}\n"), proc.stderr
    assert not (tmp_path / "o.gif").exists()
    proc = subprocess.run([NCNN_SR, "-i", "cut.gif", "-o", "o.gif", *X2, "--skip-damaged"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert ("ncnn-sr: warning: cut.gif: GIF: cut short after frame 2: frame 3 of 3 missing: the 2 before are kept\n"
            in proc.stderr)
    with Image.open(tmp_path / "o.gif") as out:
        assert (out.size, out.n_frames) == ((64, 48), 2)


def test_an_apng_whose_last_frames_data_is_damaged_keeps_the_frames_before(tmp_path, caplog):
    data = bytearray(animation("PNG", compress_level=9))
    at = data.rindex(b"fdAT")
    length = struct.unpack_from(">I", data, at - 4)[0]
    for k in range(8, length, 7):  # its compressed pixels, the chunk whole: its checksum set anew
        data[at + 4 + k] ^= 0x5A
    data[at + 4 + length:at + 8 + length] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 4 + length])))
    (tmp_path / "d.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match=rf"^\S*d.png: broken or truncated picture \(.*\): skip_damaged=True {HINT}$"):
        read_frames(tmp_path / "d.png")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        frames, info = read_frames(tmp_path / "d.png", skip_damaged=True)
    assert (len(frames.frames), info.frames) == (2, 3)
    assert [r.getMessage().split(": ")[-2:] for r in caplog.records] == [["frame 3 of 3 missing",
                                                                           "the 2 before are kept"]]
    with pytest.raises(SettingError, match=r"^skip_damaged must be True or False, got 1$"):
        read_frames(tmp_path / "d.png", skip_damaged=1)


@pytest.mark.parametrize("cut", ["inside its last chunk", "between its frames"])
def test_an_apng_cut_short_keeps_its_whole_frames(cut, tmp_path, caplog):
    # The APNG's chunks were all walked before any frame was decoded: one cut short
    # kept none of its frames, and was said to be "damaged in its first frame".
    data = animation("PNG")
    last = data.rindex(b"fcTL") - 4  # the third frame's control chunk
    (tmp_path / "c.png").write_bytes(data[:len(data) - 20] if cut == "inside its last chunk" else data[:last])
    from ncnn_sr.animation import read_frames
    with pytest.raises(InputError, match=rf"^\S*c.png: broken or truncated picture \(.*\): skip_damaged=True {HINT}$"):
        read_frames(tmp_path / "c.png")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        frames, info = read_frames(tmp_path / "c.png", skip_damaged=True)
    assert (len(frames.frames), info.frames) == (2, 3)
    assert [r.getMessage().split(": ")[-2:] for r in caplog.records] == [["frame 3 of 3 missing",
                                                                           "the 2 before are kept"]]
    (tmp_path / "whole.png").write_bytes(data)
    whole = read_frames(tmp_path / "whole.png")[0]
    assert all(np.array_equal(kept, own) for kept, own in zip(frames.frames, whole.frames[:2]))


def test_an_apng_with_a_default_image_cut_short_reads_as_one_without(tmp_path, caplog):
    # Its first frame, past the default image, was composed after a walk of all its
    # chunks: cut in a later frame, it was "broken or truncated (PNG cut short)" with
    # no word of the flag, and refused with it, where one without a default image
    # reads its first frame and keeps its whole frames with the flag.
    out = io.BytesIO()
    frames = [Image.fromarray(picture(24, 32, seed=i)) for i in range(4)]
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], duration=100, default_image=True)
    data = out.getvalue()
    (tmp_path / "whole.png").write_bytes(data)
    (tmp_path / "c.png").write_bytes(data[:-20])
    from ncnn_sr.animation import read_frames
    assert np.array_equal(read_image(tmp_path / "c.png")[0], read_image(tmp_path / "whole.png")[0])
    with pytest.raises(InputError, match=rf"^\S*c.png: broken or truncated picture \(.*\): skip_damaged=True {HINT}$"):
        read_frames(tmp_path / "c.png")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        kept, info = read_frames(tmp_path / "c.png", skip_damaged=True)
    assert (len(kept.frames), info.frames) == (2, 3)
    assert [r.getMessage().split(": ")[-2:] for r in caplog.records] == [["frame 3 of 3 missing",
                                                                           "the 2 before are kept"]]


def test_a_gif_whose_frame_is_smaller_than_its_canvas_is_read_with_the_flag(tmp_path, caplog):
    # Its first frame is re-read to leave the canvas around it clear, which failed on
    # the damage: the flag warned, then refused it all the same; and the canvas outside
    # the frame, which no decoder writes, was counted as missing.
    out = io.BytesIO()
    Image.fromarray(picture(40, 50)).save(out, "GIF")
    data = bytearray(out.getvalue())
    data[6:10] = struct.pack("<HH", 60, 50)  # the canvas: the frame's 50x40 at 0,0 in 60x50
    (tmp_path / "box.gif").write_bytes(bytes(data[:len(data) * 2 // 3]))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, info = read_image(tmp_path / "box.gif", skip_damaged=True)
    assert arr.shape == (50, 60, 4) and info.format == "GIF"
    assert (arr[40:, :, 3] == 0).all() and (arr[:, 50:, 3] == 0).all()  # clear outside the frame
    assert (arr[:40, :50, 3] == 255).all()
    said = [r.getMessage().split(": ")[-1] for r in caplog.records]
    assert len(said) == 1 and re.fullmatch(r"(\d+)% of its pixels missing \(rows \d+-(\d+) of 50 in part\), filled grey",
                                            said[0]), said
    share, last = map(int, re.match(r"(\d+)\D+\d+-(\d+)", said[0]).groups())
    assert share <= 67 and last <= 40  # within the frame's 50x40 of the canvas's 60x50


def test_a_gif_with_a_transparent_index_whose_frame_is_smaller_than_its_canvas_is_read_with_the_flag(tmp_path):
    # Drawn over its transparent index, whatever the fill, no pixel of it is told
    # missing: it was still read again for the canvas around it, and refused.
    arr = picture(40, 50, 4)
    arr[:, :, 3] = np.where(arr[:, :, 3] > 60, 255, 0)
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "GIF")
    data = bytearray(out.getvalue())
    data[6:10] = struct.pack("<HH", 60, 50)
    (tmp_path / "box.gif").write_bytes(bytes(data[:len(data) * 2 // 3]))
    read, _ = read_image(tmp_path / "box.gif", skip_damaged=True)
    assert read.shape == (50, 60, 4) and (read[40:, :, 3] == 0).all() and (read[:, 50:, 3] == 0).all()
    # Interlaced (as Pillow writes it): its first pass, every 8th row, as drawn, clear where they are.
    assert np.array_equal(read[:40:8, :50, 3], arr[::8, :, 3])


def first_frame_damaged_gif() -> bytes:
    """A 32x24 GIF of 3 frames, its first frame's image data kept in part, in one
    sub-block, the rest of the file whole."""
    data = animation("GIF", interlace=False)
    descriptor = data.index(b"\x2c\x00\x00\x00\x00")
    start = descriptor + 10 + (3 << ((data[descriptor + 9] & 7) + 1) if data[descriptor + 9] & 0x80 else 0) + 1
    end = start
    while data[end]:
        end += 1 + data[end]
    return data[:start] + b"\xc8" + data[start + 1:start + 201] + data[end:]


def test_an_animation_damaged_in_its_first_frame_gives_that_frame_as_a_still_alone(tmp_path):
    (tmp_path / "a.gif").write_bytes(first_frame_damaged_gif())
    for out, code in (("o.jpg", 0), ("o.gif", 1)):
        proc = subprocess.run([NCNN_SR, "-i", "a.gif", "-o", out, *X2, "--skip-damaged"], capture_output=True,
                              text=True, cwd=tmp_path, timeout=300)
        assert proc.returncode == code, proc.stderr
        assert re.search(r"warning: a.gif: GIF: frame 1's image data is damaged or ends before its last pixels: "
                         r"rows \d+-24 of 24 missing(, the first in part)?, filled grey\n", proc.stderr), proc.stderr
    assert proc.stderr.endswith(
        "ncnn-sr: error: a.gif: broken or truncated picture (GIF: frame 1's image data is damaged or ends before its "
        "last pixels): its first frame is damaged, so no frame of the animation is whole (a jpg of it is that frame, "
        "read as far as it goes)\n"), proc.stderr
    with Image.open(tmp_path / "o.jpg") as still:
        assert still.size == (64, 48)
    assert not (tmp_path / "o.gif").exists()


def test_a_library_caller_is_told_how_to_read_the_first_frame_of_an_animation_damaged_there(tmp_path):
    # It was told of "a jpg of it", the command line's way, which a caller of
    # read_frames has no part in.
    (tmp_path / "a.gif").write_bytes(first_frame_damaged_gif())
    with pytest.raises(InputError) as caught:
        read_frames(tmp_path / "a.gif", skip_damaged=True)
    assert str(caught.value).endswith("its first frame is damaged, so no frame of the animation is whole "
                                      "(read_image with skip_damaged=True reads that frame as far as it goes)")
    assert read_image(tmp_path / "a.gif", skip_damaged=True)[0].shape == (24, 32, 3)


def sixteen_bit(kind: str) -> bytes:
    """A 32x24 picture of 16-bit samples (``kind``: its format and channels) cut short
    two thirds in."""
    from ncnn_sr.png import png16
    from test_tiff16 import GREY_ALPHA_TAGS, tiff
    samples = np.random.default_rng(7).integers(0, 1 << 16, (24, 32, int(kind[-1])), np.uint16)
    if kind.startswith("png"):
        data = png16(samples) if samples.shape[2] > 1 else encoded("PNG", samples[:, :, 0])
    elif kind.startswith("tif"):
        data = tiff(samples, extra=GREY_ALPHA_TAGS if samples.shape[2] == 2 else None)
    else:
        data = b"P6 32 24 65535\n" + samples.astype(">u2").tobytes()
    return data[:len(data) * 2 // 3]


@pytest.mark.parametrize("kind, name", [("png3", "a.png"), ("png4", "a.png"), ("png2", "a.png"), ("tif3", "a.tif"),
                                        ("tif4", "a.tif"), ("ppm3", "a.ppm")])
def test_a_damaged_sixteen_bit_picture_read_in_eight_bits_is_said_so(kind, name, tmp_path, caplog):
    # Its 16-bit readers (FFmpeg's, tiff16's, pnm's) take no damaged file: it was read
    # in Pillow's 8 bits, the warning saying nothing of it.
    path = tmp_path / name
    path.write_bytes(sixteen_bit(kind))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(path, skip_damaged=True)
    said = [r.getMessage() for r in caplog.records if r.name == "ncnn_sr"]
    assert arr.dtype == np.uint8 and len(said) == 1, said
    assert said[0].endswith("of 24 missing, filled grey; read in 8 bits, not its 16: the 16-bit readers read "
                            "no damaged file"), said


@pytest.mark.parametrize("kind, name", [("png1", "a.png"), ("tif2", "a.tif")])
def test_a_damaged_sixteen_bit_grey_picture_keeps_its_sixteen_bits_unsaid(kind, name, tmp_path, caplog):
    # Pillow's I;16, and tiff16's grey+alpha read through it.
    (tmp_path / name).write_bytes(sixteen_bit(kind))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / name, skip_damaged=True)
    said = [r.getMessage() for r in caplog.records if r.name == "ncnn_sr"]
    assert arr.dtype == np.uint16 and len(said) == 1 and said[0].endswith("of 24 missing, filled grey"), said
    assert (arr[-1] == 32768).all() or (arr[-1, :, :3] == 32768).all()  # mid grey in 16 bits
