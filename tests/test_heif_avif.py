"""HEIF input (iPhones' .heic, through pillow-heif) and AVIF output (Pillow's own):
read and written like the other pictures, metadata, depth and alpha included."""
import io
import struct
import subprocess
import sys

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from conftest import picture
from ncnn_sr import InputError, read_image, write_image
from ncnn_sr import images as images_mod
from ncnn_sr.animation import Animation, read_frames, write_frames
from ncnn_sr.jobs import plan_jobs
from ncnn_sr.path_names import picture_suffixes
from test_cli import FAST, installed, run

# The tests write HEIFs through Pillow: ncnn-sr gives Pillow pillow-heif's reader only
# as it reads a file that may be one (test_a_heic_read_first_in_a_process_*).
pillow_heif.register_heif_opener()

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')
ARTIST = 0x013B


# The XMP read_image gives back: its orientation reset, as the pixels were turned.
UPRIGHT_XMP = XMP.replace(b'Orientation="6"', b'Orientation="1"')


def phone_exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[ARTIST] = "Jane Doe"
    return exif.tobytes()


def heic(path, pixels: np.ndarray, **options):
    """A HEIC of ``pixels`` as a phone writes one (pillow-heif's encoder, x265)."""
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path, format="HEIF", **options)
    return path


def heic16(path, pixels: np.ndarray):
    """A 10-bit HEIF of 16-bit RGB ``pixels``."""
    height, width = pixels.shape[:2]
    pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=pixels.tobytes()).save(path, quality=-1)
    return path


def close(a: np.ndarray, b: np.ndarray, most: float) -> bool:
    return a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < most


# --- HEIF input ------------------------------------------------------------------------

def test_a_heic_is_read_upright_with_its_exif_xmp_and_icc(tmp_path):
    pixels = picture(12, 16)
    src = heic(tmp_path / "p.heic", pixels, exif=phone_exif(6), xmp=XMP, icc_profile=SRGB_ICC, quality=-1)
    arr, info = read_image(src)
    assert info.format == "HEIF" and info.frames == 1
    assert close(arr, np.rot90(pixels, -1), 8)  # turned once, not twice
    exif = Image.Exif()
    exif.load(info.exif)
    assert exif.get(0x0112, 1) == 1 and exif[ARTIST] == "Jane Doe"
    assert info.icc_profile == SRGB_ICC and b"x:xmpmeta" in info.xmp and b'Orientation="6"' not in info.xmp


def icc_as_srgb(pixels: np.ndarray, icc: bytes) -> np.ndarray:
    """RGB ``pixels`` shown through the profile ``icc`` as sRGB."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    return np.asarray(ImageCms.profileToProfile(Image.fromarray(pixels), profile, ImageCms.createProfile("sRGB")),
                      dtype=float)


def png_chunk_kinds(path) -> list[bytes]:
    data, at, kinds = open(path, "rb").read(), 8, []
    while at < len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        kinds.append(kind)
        at += 12 + length
    return kinds


# Display P3 (as phones and cameras state it in nclx): P3 primaries, sRGB's curve.
P3 = {"color_primaries": 12, "transfer_characteristics": 13}


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "avif"])
def test_a_heics_nclx_colour_is_kept(fmt, tmp_path):
    # libheif gives its samples as they are coded, in its primaries: written as they
    # are without a word of them, a Display P3 photo came out dull in every viewer.
    pixels = np.array([[[200, 40, 40], [40, 200, 40]], [[40, 40, 200], [128, 128, 128]]], np.uint8)
    pixels = pixels.repeat(8, axis=0).repeat(8, axis=1)
    arr, info = read_image(heic(tmp_path / "p3.heic", pixels, quality=-1, **P3))
    assert info.colour_chunks == ((b"cICP", bytes([12, 13, 0, 1])),)
    write_image(tmp_path / f"o.{fmt}", arr, info)
    with Image.open(tmp_path / f"o.{fmt}") as im:
        icc = im.info["icc_profile"]
    assert (np.abs(icc_as_srgb(arr, icc) - arr) > 8).any()  # not shown as sRGB
    p3 = np.array([[0.4866, 0.2657, 0.1982], [0.2290, 0.6917, 0.0793], [0.0, 0.0451, 1.0439]])  # to XYZ, D65
    srgb = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    light = np.where(arr / 255 <= 0.04045, arr / 255 / 12.92, ((arr / 255 + 0.055) / 1.055) ** 2.4)
    linear = np.clip(light @ np.linalg.solve(srgb, p3).T, 0, 1)
    expected = 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    assert np.abs(icc_as_srgb(arr, icc) - expected).max() <= 2
    if fmt == "png":
        assert b"cICP" in png_chunk_kinds(tmp_path / "o.png")
    write_image(tmp_path / f"bare.{fmt}", arr, info, metadata=False)
    with Image.open(tmp_path / f"bare.{fmt}") as im:
        assert "icc_profile" not in im.info


def test_a_ten_bit_heics_nclx_colour_is_kept_in_a_sixteen_bit_png(tmp_path):
    path = tmp_path / "p3.heic"
    pillow_heif.from_bytes(mode="RGB;16", size=(4, 4), data=np.full((4, 4, 3), 40000, np.uint16).tobytes()).save(
        path, quality=-1, **P3)
    arr, info = read_image(path)
    write_image(tmp_path / "o.png", arr, info)
    assert arr.dtype == np.uint16 and {b"cICP", b"iCCP"} <= set(png_chunk_kinds(tmp_path / "o.png"))


@pytest.mark.parametrize("nclx", [{}, {"color_primaries": 1, "transfer_characteristics": 1}])
def test_a_heic_of_srgb_colour_holds_no_colour_chunks(nclx, tmp_path):
    arr, info = read_image(heic(tmp_path / "s.heic", np.full((8, 8, 3), 90, np.uint8), **nclx))
    assert info.colour_chunks == ()


def avif_of_colour(path, pixels: np.ndarray, primaries: int, transfer: int):
    """An AVIF whose nclx states ``primaries`` and ``transfer`` (H.273's), as
    cameras and encoders write them: Pillow's writer states sRGB's."""
    Image.fromarray(pixels).save(path, format="AVIF", quality=100)
    data = bytearray(path.read_bytes())
    at = data.index(b"colrnclx") + 8
    data[at:at + 4] = struct.pack(">HH", primaries, transfer)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("channels", [3, 4])
def test_an_avifs_nclx_colour_is_kept(channels, tmp_path):
    # As a HEIF's: libavif gives the samples in the primaries the nclx states.
    pixels = picture(8, 8, channels)
    arr, info = read_image(avif_of_colour(tmp_path / "p3.avif", pixels, 12, 13))
    assert info.colour_chunks == ((b"cICP", bytes([12, 13, 0, 1])),)
    write_image(tmp_path / "o.webp", arr, info)
    with Image.open(tmp_path / "o.webp") as im:
        assert b"sRGB curve" in im.info["icc_profile"]


@pytest.mark.parametrize("primaries,transfer", [(1, 13), (2, 2), (1, 1)])
def test_an_avif_of_srgb_colour_holds_no_colour_chunks(primaries, transfer, tmp_path):
    arr, info = read_image(avif_of_colour(tmp_path / "s.avif", picture(8, 8), primaries, transfer))
    assert info.colour_chunks == ()


def avif_nclx(path) -> tuple[int, int]:
    """The primaries and transfer the nclx of the AVIF at ``path`` states."""
    data = path.read_bytes()
    return struct.unpack_from(">HH", data, data.index(b"colrnclx") + 8)


@pytest.mark.parametrize("source", ["heic", "avif", "png"])
def test_an_hdr_colour_no_profile_states_is_kept_in_an_avifs_nclx(source, tmp_path):
    # BT.2020 PQ: no ICC profile states it, but an AVIF's nclx does; written without
    # it, the upscaled HDR photo was shown as sRGB, washed out.
    pixels = picture(8, 8)
    if source == "heic":
        src = heic(tmp_path / "pq.heic", pixels, quality=-1, color_primaries=9, transfer_characteristics=16)
    elif source == "avif":
        src = avif_of_colour(tmp_path / "pq.avif", pixels, 9, 16)
    else:
        src = tmp_path / "pq.png"
        Image.fromarray(pixels).save(src, pnginfo=cicp_info(9, 16))
    arr, info = read_image(src)
    write_image(tmp_path / "o.avif", arr, info)
    assert avif_nclx(tmp_path / "o.avif") == (9, 16)
    assert read_image(tmp_path / "o.avif")[1].colour_chunks == ((b"cICP", bytes([9, 16, 0, 1])),)
    write_image(tmp_path / "bare.avif", arr, info, metadata=False)
    assert avif_nclx(tmp_path / "bare.avif") == (1, 13)  # sRGB's


def cicp_info(primaries: int, transfer: int):
    from PIL.PngImagePlugin import PngInfo
    chunks = PngInfo()
    chunks.add(b"cICP", bytes([primaries, transfer, 0, 1]))
    return chunks


def test_the_command_keeps_an_hdr_heics_colour_in_an_avif_without_a_warning(tmp_path):
    heic(tmp_path / "pq.heic", picture(8, 8), quality=-1, color_primaries=9, transfer_characteristics=16)
    proc = run("-i", tmp_path / "pq.heic", "-o", tmp_path / "o.avif", *FAST)
    assert "cICP" not in proc.stderr and avif_nclx(tmp_path / "o.avif") == (9, 16)


def test_a_p3_colour_is_stated_in_an_avifs_nclx_beside_its_profile(tmp_path):
    arr, info = read_image(avif_of_colour(tmp_path / "p3.avif", picture(8, 8), 12, 13))
    write_image(tmp_path / "o.avif", arr, info)
    assert avif_nclx(tmp_path / "o.avif") == (12, 13)
    with Image.open(tmp_path / "o.avif") as im:
        assert b"sRGB curve" in im.info["icc_profile"]


def test_an_avifs_own_profile_is_kept_without_colour_chunks(tmp_path):
    Image.fromarray(picture(8, 8)).save(tmp_path / "i.avif", icc_profile=SRGB_ICC)
    arr, info = read_image(tmp_path / "i.avif")
    assert info.icc_profile == SRGB_ICC and info.colour_chunks == ()


@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_transparent_heics_keep_their_channels(channels, tmp_path):
    pixels = picture(12, 16, channels=channels)
    arr, info = read_image(heic(tmp_path / "p.heic", pixels, quality=-1))
    assert arr.dtype == np.uint8 and close(arr, pixels, 6)
    assert info.mode == ("L" if channels == 1 else "RGBA")


def test_a_ten_bit_heif_is_read_as_sixteen_bit(tmp_path):
    levels = (np.arange(16 * 64 * 3).reshape(16, 64, 3) % 1024).astype(np.uint16)
    arr, info = read_image(heic16(tmp_path / "p.heif", levels << 6))
    assert arr.dtype == np.uint16 and info.mode == "RGB"
    assert arr.max() > 65472  # 1023 spread to 65535, not left-aligned
    assert len(np.unique(arr[:, :, 1])) > 256  # more than 8 bits survive
    assert close(arr, levels.astype(np.int64) * 65535 // 1023, 300)


def test_a_ten_bit_grey_heif_is_read_as_sixteen_bit_grey_up_to_white(tmp_path):
    levels = (np.arange(16 * 64).reshape(16, 64) % 1024).astype(np.uint16)
    pillow_heif.from_bytes(mode="L;16", size=(64, 16), data=(levels << 6).tobytes()).save(tmp_path / "g.heif",
                                                                                          quality=-1)
    arr, info = read_image(tmp_path / "g.heif")
    assert arr.shape == (16, 64, 1) and arr.dtype == np.uint16 and info.mode == "I;16"
    assert arr.max() == 65535 and close(arr[:, :, 0], levels.astype(np.int64) * 65535 // 1023, 300)


def test_a_burst_heif_is_its_primary_picture_not_an_animation(tmp_path):
    first = picture(12, 16)
    shots = [first, 255 - first, first[::-1]]
    Image.fromarray(shots[0]).save(tmp_path / "b.heic", save_all=True, primary_index=1, quality=-1,
                                   append_images=[Image.fromarray(shot) for shot in shots[1:]])
    arr, info = read_image(tmp_path / "b.heic")
    assert info.frames == 1 and images_mod.frame_count(tmp_path / "b.heic") == 1
    assert close(arr, shots[1], 8)


@pytest.mark.parametrize("keep", [12, 300, -40])
def test_a_truncated_heic_is_broken_in_libheifs_words(keep, tmp_path):
    data = heic(tmp_path / "p.heic", picture(12, 16)).read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[:keep])
    with pytest.raises(InputError, match=r"cut\.heic: broken or truncated picture \(.+\)$"):
        read_image(tmp_path / "cut.heic")


def test_heif_and_avif_are_picture_extensions_whatever_was_imported_first():
    for first in ("", "from PIL import Image; Image.init(); ", "import ncnn_sr.cli; "):
        code = first + "from ncnn_sr.path_names import picture_suffixes as S; print(sorted({'.heic', '.heif', '.avif'} - S()))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == "[]", (first, proc.stdout, proc.stderr)
    assert {".heic", ".heif", ".hif", ".avif"} <= picture_suffixes()


@pytest.mark.parametrize("name", ["p.heic", "p.png"])
@pytest.mark.parametrize("first", ["", "from PIL import Image; Image.init(); "])
def test_a_heic_read_first_in_a_process_is_read_whatever_its_name_and_pillows_readers(name, first, tmp_path):
    # pillow-heif is loaded only for a file that opens as ISO BMFF does, as it is read:
    # a HEIF named otherwise, or read after Pillow's own readers (AVIF's among them)
    # were loaded, is read all the same, and a PNG loads none of it.
    heic(tmp_path / name, picture(12, 16), quality=-1)
    Image.fromarray(picture(12, 16)).save(tmp_path / "q.png")
    code = first + f"""
import sys
from ncnn_sr import read_image
png = read_image({str(tmp_path / "q.png")!r})[0].shape
loaded = "pillow_heif" in sys.modules
arr, info = read_image({str(tmp_path / name)!r})
print(png, loaded, arr.shape, info.format)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "(12, 16, 3) False (12, 16, 3) HEIF"


def test_folder_mode_takes_heic_heif_and_avif(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    heic(src / "a.heic", picture(8, 8))
    heic(src / "b.HEIF", picture(8, 8))
    Image.fromarray(picture(8, 8)).save(src / "c.avif")
    assert sorted(job.target.name for job in plan_jobs(src, tmp_path / "out").jobs) == ["a.png", "b.png", "c.png"]


def test_the_command_upscales_a_heic_keeping_its_exif(tmp_path):
    heic(tmp_path / "photo.heic", picture(10, 12), exif=phone_exif(6), icc_profile=SRGB_ICC)
    run("-i", tmp_path / "photo.heic", "-o", tmp_path / "out.png", *FAST)
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (20, 24) and im.getexif()[ARTIST] == "Jane Doe"
        assert im.getexif().get(0x0112, 1) == 1 and im.info["icc_profile"] == SRGB_ICC


def test_the_command_writes_a_ten_bit_heif_as_sixteen_bit_png(tmp_path):
    heic16(tmp_path / "p.heif", (np.arange(8 * 8 * 3).reshape(8, 8, 3) % 1024).astype(np.uint16) << 6)
    run("-i", tmp_path / "p.heif", "-o", tmp_path / "o.png", *FAST)
    head = (tmp_path / "o.png").read_bytes()[:26]
    assert head[24] == 16 and head[25] == 2  # 16-bit RGB


def test_the_command_upscales_a_folder_of_heics(tmp_path):
    (tmp_path / "in").mkdir()
    heic(tmp_path / "in" / "a.heic", picture(8, 10))
    heic(tmp_path / "in" / "b.heif", picture(8, 10, channels=4))
    run("-i", tmp_path / "in", "-o", tmp_path / "out", "-f", "avif", *FAST)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.avif", "b.avif"]
    with Image.open(tmp_path / "out" / "b.avif") as im:
        assert im.size == (20, 16) and im.mode == "RGBA"


def test_a_truncated_heic_is_one_line_and_no_output(tmp_path):
    data = heic(tmp_path / "p.heic", picture(12, 16)).read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[:-40])
    proc = run("-i", tmp_path / "cut.heic", "-o", tmp_path / "o.png", *FAST, check_ok=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ncnn-sr: error: ")]
    assert proc.returncode == 1 and len(errors) == 1 and "cut.heic: broken or truncated picture (" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("major", [b"xvif", b"mif1"], ids=["damaged", "mif1"])
def test_an_avif_named_so_among_its_compatible_brands_alone_is_read(major, tmp_path):
    # libavif takes a file as AVIF by any of its brands: a damaged major brand was
    # called a video (MP4), mif1 went to pillow-heif, whose libheif decodes no AV1.
    write_image(tmp_path / "a.avif", picture(12, 16))
    whole, _ = read_image(tmp_path / "a.avif")
    data = (tmp_path / "a.avif").read_bytes()
    assert data[8:12] == b"avif" and b"avif" in data[16:data.index(b"meta")]  # major, then compatible
    (tmp_path / "b.avif").write_bytes(data[:8] + major + data[12:])
    arr, info = read_image(tmp_path / "b.avif")
    assert info.format == "AVIF" and np.array_equal(arr, whole)


# --- AVIF output -----------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3, 4])
def test_avif_keeps_the_pictures_channels(channels, tmp_path):
    pixels = picture(12, 16, channels=channels)
    info = images_mod.ImageInfo("L" if channels == 1 else "RGB", "PNG")
    write_image(tmp_path / "o.avif", pixels, info)
    with Image.open(tmp_path / "o.avif") as im:
        assert im.format == "AVIF"
        back = np.asarray(im.convert("RGBA"))
    assert close(back[:, :, :3], np.repeat(pixels[:, :, :1], 3, 2) if channels == 1 else pixels[:, :, :3], 6)
    assert channels != 4 or close(back[:, :, 3:], pixels[:, :, 3:], 3)


def test_avif_keeps_exif_xmp_and_icc(tmp_path):
    info = images_mod.ImageInfo("RGB", "JPEG", icc_profile=SRGB_ICC, exif=phone_exif(1), xmp=UPRIGHT_XMP)
    write_image(tmp_path / "o.avif", picture(12, 16), info)
    arr, back = read_image(tmp_path / "o.avif")
    exif = Image.Exif()
    exif.load(back.exif)
    assert arr.shape == (12, 16, 3) and exif[ARTIST] == "Jane Doe" and back.icc_profile == SRGB_ICC
    assert b"x:xmpmeta" in back.xmp


def test_avif_without_metadata_holds_none(tmp_path):
    info = images_mod.ImageInfo("RGB", "JPEG", icc_profile=SRGB_ICC, exif=phone_exif(1), xmp=XMP)
    write_image(tmp_path / "o.avif", picture(12, 16), info, metadata=False)
    back = read_image(tmp_path / "o.avif")[1]
    assert back.exif is None and back.icc_profile is None and back.xmp is None


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sixteen_bit_pictures_are_written_as_eight_bit_avif(channels, tmp_path):
    pixels = picture(12, 16, channels=channels, dtype=np.uint16)
    write_image(tmp_path / "o.avif", pixels)
    back = read_image(tmp_path / "o.avif")[0]
    assert back.dtype == np.uint8 and abs(back[:, :, 0].mean() - (pixels[:, :, 0] / 257).mean()) < 3


def test_avif_quality_defaults_high_and_can_be_lowered(tmp_path):
    pixels = picture(64, 64)
    write_image(tmp_path / "default.avif", pixels)
    write_image(tmp_path / "q90.avif", pixels, quality=90)
    write_image(tmp_path / "q40.avif", pixels, quality=40)
    sizes = {name: (tmp_path / f"{name}.avif").stat().st_size for name in ("default", "q90", "q40")}
    assert sizes["default"] == sizes["q90"] > sizes["q40"]


@pytest.mark.parametrize("size, said", [
    ((1, 32769), "32769x1 is too large for AVIF, which holds at most 32768 pixels a side"),
    ((16385, 16385), "16385x16385 is too large for AVIF, which its readers take up to 268435456 pixels"),
])
def test_a_picture_avifs_readers_refuse_is_not_written(size, said, tmp_path):
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (*size, 3))  # no memory for the pixels
    with pytest.raises(InputError, match=said):
        write_image(tmp_path / "o.avif", huge)
    assert not list(tmp_path.iterdir())


def test_avif_is_refused_up_front_where_pillow_has_no_avif(monkeypatch, tmp_path):
    monkeypatch.setattr(images_mod.features, "check_module", lambda name: name != "avif")
    with pytest.raises(InputError, match=r"o\.avif: this Pillow was built without AVIF \(libavif\); use png"):
        write_image(tmp_path / "o.avif", picture(4, 4))
    assert not list(tmp_path.iterdir())


def test_the_command_writes_avif_at_its_default_and_at_a_quality(tmp_path):
    Image.fromarray(picture(16, 16)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "d.avif", *FAST)
    run("-i", tmp_path / "in.png", "-o", tmp_path / "q.avif", "--quality", "30", *FAST)
    with Image.open(tmp_path / "d.avif") as im:
        assert im.format == "AVIF" and im.size == (32, 32)
    assert (tmp_path / "q.avif").stat().st_size < (tmp_path / "d.avif").stat().st_size


def test_an_animation_is_not_written_as_avif_which_would_lose_its_play_count(tmp_path):
    moving = Animation((picture(6, 8), 255 - picture(6, 8)), (100, 50), plays=1)
    with pytest.raises(InputError, match=r"a\.avif: an animated AVIF would lose how many times it plays; write webp"):
        write_frames(tmp_path / "a.avif", moving)
    assert not list(tmp_path.iterdir())


def test_the_command_writes_an_animations_first_frame_as_avif_and_says_so(tmp_path):
    first = picture(8, 10)
    Image.fromarray(first).save(tmp_path / "a.gif", save_all=True, append_images=[Image.fromarray(255 - first)])
    proc = run("-i", tmp_path / "a.gif", "-o", tmp_path / "o.avif", *FAST)
    assert "has 2 frames: upscaling the first only (ncnn-sr writes avif still: write webp, png or gif" in proc.stderr
    with Image.open(tmp_path / "o.avif") as im:
        assert im.size == (20, 16) and getattr(im, "n_frames", 1) == 1


def test_the_help_names_avif():
    out = run("upscale", "--help").stdout
    assert "png, jpg, webp, gif, avif" in out and "avif quality" in out


DROPIN = installed("realesrgan-ncnn-vulkan")


@pytest.mark.parametrize("args, said", [
    (["-o", "{d}/o.avif"], "unsupported output format '.avif' for {d}/o.avif: use png, jpg or webp"),
    (["-o", "{d}/out", "-f", "avif"], "invalid format argument"),
])
def test_the_drop_in_keeps_the_references_formats(args, said, tmp_path):
    (tmp_path / "in").mkdir()
    Image.fromarray(picture(8, 8)).save(tmp_path / "in" / "a.png")
    source = tmp_path / "in" / ("a.png" if args[1].endswith(".avif") else "")
    proc = subprocess.run([DROPIN, "-i", source, *[a.format(d=tmp_path) for a in args], *FAST],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and said.format(d=tmp_path) in proc.stderr, proc.stderr
    assert not (tmp_path / "o.avif").exists() and not (tmp_path / "out").exists()


# --- animated AVIF input ---------------------------------------------------------------

def animated_avif(path, repeating: bool | None = True, track_duration: int | None = None):
    """A three-frame AVIF animation (100 ms a frame) from Pillow's writer, which says
    it plays for ever (its edit list repeats, over a track of no end), made to say
    otherwise: ``repeating`` False plays it once, a ``track_duration`` (ms) that many
    times the 300 ms of its one segment, and None takes its edit list out."""
    frames = [Image.fromarray(picture(8, 8, seed=i)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    data = bytearray(path.read_bytes())
    elst, tkhd = data.index(b"elst"), data.index(b"tkhd")
    assert data[elst + 4] == 1 and data[tkhd + 4] == 1  # version 1: 64-bit durations
    if repeating is None:
        data[data.index(b"edts"):data.index(b"edts") + 4] = b"free"
    else:
        data[elst + 7] = int(repeating)  # the lowest bit of its flags
    if track_duration is not None:
        data[tkhd + 32:tkhd + 40] = track_duration.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("repeating,track_duration,plays", [
    (True, None, 0),  # Pillow's own: for ever
    (False, 300, 1),
    (True, 900, 3),
    (True, 800, 3),  # a last showing cut short is a showing
    (None, None, 0),  # no edit list: for ever, as browsers play it
])
def test_an_animated_avif_keeps_how_many_times_it_plays(repeating, track_duration, plays, tmp_path):
    # Every animated AVIF was read as playing for ever: one that plays once looped in its webp.
    from ncnn_sr.animation import read_frames

    anim, _ = read_frames(animated_avif(tmp_path / "a.avif", repeating, track_duration))
    assert len(anim.frames) == 3 and anim.plays == plays
    write_frames(tmp_path / "o.webp", anim)
    with Image.open(tmp_path / "o.webp") as im:
        assert im.n_frames == 3 and im.info["loop"] == plays


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@pytest.mark.parametrize("elst,tkhd", [(b"", b"\0" * 24), (b"\0\0\0\1" + struct.pack(">II", 1, 100), b""), (b"\0\0", b"\0" * 24)])
def test_an_avif_whose_edit_list_or_track_header_is_cut_short_plays_for_ever(elst, tkhd):
    # A damaged file's count is unknown, as libavif reads it: an IndexError escaped.
    from ncnn_sr import avif

    trak = box(b"tkhd", tkhd) + box(b"edts", box(b"elst", elst)) + box(b"mdia", box(b"hdlr", bytes(8) + b"pict"))
    assert avif.plays(box(b"moov", box(b"trak", trak))) == 0


def avif_meta(colr: bytes) -> bytes:
    """The bytes of an AVIF's header alone whose primary item has the colour property ``colr``."""
    ipma = b"\0\0\0\0" + struct.pack(">IHB", 1, 1, 1) + b"\x01"
    meta = b"\0\0\0\0" + box(b"pitm", b"\0\0\0\0\0\1") + box(b"iprp", box(b"ipco", box(b"colr", colr)) + box(b"ipma", ipma))
    return box(b"ftyp", b"avif") + box(b"meta", meta)


@pytest.mark.parametrize("nclx", [b"nclx", b"nclx\0\1\0"])
def test_an_avif_whose_nclx_is_cut_short_states_no_colour(nclx, tmp_path):
    # A struct.error escaped from reading the picture.
    from ncnn_sr import avif

    path = tmp_path / "a.avif"
    path.write_bytes(avif_meta(nclx))
    assert avif.coded_colour(str(path)) is None
    path.write_bytes(avif_meta(b"nclx\0\x0c\0\x0d\0\0\x80"))
    assert avif.coded_colour(str(path)) == (12, 13)  # the test's file is read where whole


@pytest.mark.parametrize("kind", [b"free", b"meta", b"moov"])
def test_an_avif_whose_box_states_a_size_past_its_end_is_read_as_far_as_it_goes(kind, tmp_path):
    # A 64-bit size no file has: seeking past a box of it raised a ValueError, and
    # reading one whole a MemoryError, out of reading the picture.
    from ncnn_sr import avif

    whole = avif_meta(b"nclx\0\x0c\0\x0d\0\0\x80")
    ftyp, meta = whole[:12], whole[20:]  # the meta box's payload, after its 8-byte header
    huge = struct.pack(">I4sQ", 1, kind, 2**64 - 1)
    path = tmp_path / "a.avif"
    path.write_bytes(ftyp + huge + meta if kind == b"meta" else ftyp + huge + whole[12:])
    assert avif.file_plays(str(path)) == 0
    assert avif.coded_colour(str(path)) == ((12, 13) if kind == b"meta" else None)


def test_an_avif_whose_pictures_data_is_damaged_is_a_broken_picture(tmp_path):
    # libavif's refusal came out of read_image as a RuntimeError, and the commands said
    # "cannot read: RuntimeError('Failed to decode frame 0: ...')".
    Image.fromarray(picture(8, 8)).save(tmp_path / "p.avif", quality=90)
    data = bytearray((tmp_path / "p.avif").read_bytes())
    at = data.index(b"mdat") + 4
    data[at:] = bytes(len(data) - at)  # the coded picture zeroed
    (tmp_path / "p.avif").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"p.avif: broken or truncated picture \(Failed to decode frame 0"):
        read_image(tmp_path / "p.avif")


@pytest.mark.parametrize("keep", [0.5, 0.75])
def test_an_avif_cut_short_in_its_data_is_broken_in_libavifs_words(keep, tmp_path):
    # Taken for a HEIF by its brands, it got libheif's words, which parse its boxes
    # alone: "libheif reads it, pillow-heif does not".
    Image.fromarray(picture(32, 32)).save(tmp_path / "p.avif", quality=90)
    data = (tmp_path / "p.avif").read_bytes()
    (tmp_path / "cut.avif").write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "cut.avif")
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 'cut.avif'}: broken or truncated picture (") and "libheif" not in said


def ten_bit_avif(path, samples=None):
    """A 10-bit AVIF of 16-bit RGB ``samples`` (SVT-AV1 through FFmpeg's muxer;
    Pillow writes 8 bits only), a 32x32 ramp of 1024 levels without them."""
    import av
    if samples is None:
        ramp = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)
        samples = np.dstack([ramp, ramp[::-1], ramp.T])
    with av.open(str(path), "w", format="avif") as out:
        stream = out.add_stream("libsvtav1", rate=1)
        stream.height, stream.width = samples.shape[:2]
        stream.pix_fmt = "yuv420p10le"
        frame = av.VideoFrame.from_ndarray(samples, format="rgb48le")
        for packet in [*stream.encode(frame.reformat(format="yuv420p10le")), *stream.encode()]:
            out.mux(packet)
    return path


def test_a_ten_bit_avif_is_read_in_sixteen_bits(tmp_path, caplog):
    # Pillow's reader gives 8 bits of any AVIF: a 10-bit HDR photo lost its depth,
    # where a 10-bit HEIF is read in 16. FFmpeg reads its 10.
    import logging
    path = ten_bit_avif(tmp_path / "ten.avif")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(path)
    assert arr.dtype == np.uint16 and arr.shape == (32, 32, 3) and "bits" not in caplog.text
    assert len(np.unique(arr[:, :, 0])) > 256  # more levels than 8 bits hold
    with Image.open(path) as im:  # the picture libavif shows, within a level or two
        assert np.abs(arr / 257.0 - np.asarray(im.convert("RGB"))).mean() < 2
    Image.fromarray(picture(8, 8)).save(tmp_path / "eight.avif")
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "eight.avif")
    assert arr.dtype == np.uint8 and "bits" not in caplog.text


def ten_bit_avif_animation(path, count: int = 3):
    """A 16x16 10-bit AVIF animation of ``count`` frames at 10 a second, each a
    ramp of 256 levels a channel (its third channel halved frame by frame)."""
    import av
    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 256).astype(np.uint16)
    with av.open(str(path), "w", format="avif") as out:
        stream = out.add_stream("libsvtav1", rate=10)
        stream.height, stream.width, stream.pix_fmt = 16, 16, "yuv420p10le"
        packets = []
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(np.dstack([ramp, ramp[::-1], ramp.T >> index]), format="rgb48le")
            frame.pts = index
            packets += stream.encode(frame.reformat(format="yuv420p10le"))
        for packet in [*packets, *stream.encode()]:
            out.mux(packet)
    return path


def test_a_ten_bit_avif_animations_frames_are_read_in_sixteen_bits(tmp_path):
    # Pillow reads every AVIF in 8 bits: a 10-bit animation lost its depth, where a
    # 10-bit still AVIF is read in 16. FFmpeg reads the animation's track in 10.
    anim, info = read_frames(ten_bit_avif_animation(tmp_path / "ten.avif"))
    assert info.frames == 3 and anim.durations == (100, 100, 100)
    assert all(frame.dtype == np.uint16 and frame.shape == (16, 16, 3) for frame in anim.frames)
    with Image.open(tmp_path / "ten.avif") as im:  # each the picture libavif shows, its chroma upsampled apart
        for index, frame in enumerate(anim.frames):
            im.seek(index)
            assert np.abs(frame / 257.0 - np.asarray(im.convert("RGB"))).mean() < 4
    assert (anim.frames[0] % 257).any()  # not 8-bit levels spread over 16 bits


def test_a_ten_bit_avif_animation_written_as_png_keeps_sixteen_bits(tmp_path):
    proc = run("-i", ten_bit_avif_animation(tmp_path / "ten.avif", 2), "-o", tmp_path / "o.png", *FAST)
    assert proc.returncode == 0 and "bits" not in proc.stderr, proc.stderr
    import av
    with av.open(str(tmp_path / "o.png")) as container:
        frames = [frame.to_ndarray(format="rgb48le") for frame in container.decode(video=0)]
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3)
    assert (frames[0] % 257).any()  # not 8-bit levels spread over 16 bits


def test_a_ten_bit_avif_ffmpeg_decodes_otherwise_than_libavif_keeps_eight_bits_saying_why(tmp_path, caplog):
    # Its nclx says full range, which libavif follows and FFmpeg does not (its AV1
    # stream says limited): FFmpeg's colours would not be the picture's.
    import logging
    data = bytearray(ten_bit_avif(tmp_path / "t.avif").read_bytes())
    data[data.index(b"nclx") + 10] |= 0x80  # the full-range flag
    (tmp_path / "full.avif").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "full.avif")
    with Image.open(tmp_path / "full.avif") as im:
        assert arr.dtype == np.uint8 and np.array_equal(arr, np.asarray(im.convert("RGB")))
    assert ("full.avif: a 10-bit AVIF, read here in 8 bits only (Pillow gives 8, and FFmpeg cannot decode it "
            "as libavif does)") in caplog.text


def test_a_deep_grey_avif_keeps_eight_bits_saying_why(tmp_path, caplog, monkeypatch):
    # FFmpeg's grey is not read here: the warning must not blame its colours. No
    # encoder here writes a deep grey AVIF (libavif checks pixi against the AV1
    # stream): an 8-bit one stands in, its depth said to be 10.
    import logging
    from ncnn_sr import avif
    Image.fromarray(picture(8, 8)[:, :, 0]).save(tmp_path / "g.avif")
    monkeypatch.setattr(avif, "bit_depth", lambda path: 10)
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        arr, _ = read_image(tmp_path / "g.avif")
    assert arr.shape == (8, 8, 1) and arr.dtype == np.uint8
    assert "g.avif: a 10-bit AVIF, read here in 8 bits only (a grey one is read by Pillow alone" in caplog.text


def test_an_animated_avif_whose_track_has_no_timescale_is_a_broken_picture(tmp_path):
    # Pillow divides by the track's timescale: a 0 there came out of read_image as a
    # ZeroDivisionError, and the commands said "cannot read: ZeroDivisionError(...)".
    frames = [Image.fromarray(picture(8, 8, seed=i)) for i in range(2)]
    frames[0].save(tmp_path / "a.avif", save_all=True, append_images=frames[1:], duration=50)
    data = bytearray((tmp_path / "a.avif").read_bytes())
    at = data.index(b"mdhd") + 4
    scale_at = at + (20 if data[at] == 1 else 12)  # after version, flags and the two times
    data[scale_at:scale_at + 4] = bytes(4)
    (tmp_path / "a.avif").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"a\.avif: broken or truncated picture \(division by zero\)$"):
        read_image(tmp_path / "a.avif")


@pytest.mark.parametrize("unit, x, y, dpi", [(2, 300.0, 150.0, (300, 150)), (3, 118.11, 59.055, (300, 150)),
                                              (None, 300.0, 150.0, (300, 150)), (1, 300.0, 150.0, None)],
                         ids=["inch", "cm", "no-unit", "unitless"])
@pytest.mark.parametrize("fmt", ["webp", "avif", "heic"])
def test_the_resolution_a_webp_avif_or_heif_states_in_its_exif_is_kept(fmt, unit, x, y, dpi, tmp_path):
    # They state none of their own, only in the EXIF, as a JPEG without JFIF does,
    # whose resolution Pillow reads from it: a png from a 300 dpi JPEG said 300 dpi,
    # from the same WebP, AVIF or HEIC photo none. EXIF's unit is the inch unless stated.
    exif = Image.Exif()
    exif.update({0x011A: x, 0x011B: y, ARTIST: "Jane Doe"})
    if unit is not None:
        exif[0x0128] = unit
    Image.fromarray(picture(6, 8)).save(tmp_path / f"i.{fmt}", exif=exif.tobytes(), quality=90)
    arr, info = read_image(tmp_path / f"i.{fmt}")
    assert info.dpi == (None if dpi is None else pytest.approx(dpi, abs=0.01))
    write_image(tmp_path / "o.png", arr, info)
    written = Image.open(tmp_path / "o.png").info.get("dpi")
    assert (written and tuple(round(d) for d in written)) == (dpi and tuple(dpi))
