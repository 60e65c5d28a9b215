"""HEIF input (iPhones' .heic, through pillow-heif): read like the other pictures,
metadata, depth and alpha included."""
import subprocess
import sys

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from conftest import picture
from ncnn_sr import InputError, read_image
from ncnn_sr import images as images_mod
from ncnn_sr.jobs import PICTURE_SUFFIXES, plan_jobs
from test_cli import FAST, run

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
        code = first + "from ncnn_sr.jobs import PICTURE_SUFFIXES as S; print(sorted({'.heic', '.heif', '.avif'} - S))"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == "[]", (first, proc.stdout, proc.stderr)
    assert {".heic", ".heif", ".hif", ".avif"} <= PICTURE_SUFFIXES


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
    run("-i", tmp_path / "in", "-o", tmp_path / "out", *FAST)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    with Image.open(tmp_path / "out" / "b.png") as im:
        assert im.size == (20, 16) and im.mode == "RGBA"


def test_a_truncated_heic_is_one_line_and_no_output(tmp_path):
    data = heic(tmp_path / "p.heic", picture(12, 16)).read_bytes()
    (tmp_path / "cut.heic").write_bytes(data[:-40])
    proc = run("-i", tmp_path / "cut.heic", "-o", tmp_path / "o.png", *FAST, check_ok=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ncnn-sr: error: ")]
    assert proc.returncode == 1 and len(errors) == 1 and "cut.heic: broken or truncated picture (" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "o.png").exists()
