"""The engine on ncnn's CPU path, with the real models on small pictures."""

import functools
import io
import os
import re
import struct
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import load_interrupted, picture, psnr, upscale_in_threads
from ncnn_sr import DeviceError, InputError, ModelError, Upscaler, catalog
from ncnn_sr.errors import SettingError
from ncnn_sr import engine as engine_mod
from ncnn_sr import network as network_mod
from ncnn_sr.resample import resize, resize_bytes, target_size
from ncnn_sr.tiles import tta_forward, tta_inverse

FAST = "realesr-animevideov3-x4"
PACKAGED = [n for n, e in catalog().items() if e.package_files]


def shrink(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w // factor, h // factor), Image.BICUBIC))


@pytest.mark.parametrize("name", PACKAGED)
def test_each_reference_model_upscales_a_small_picture_on_cpu(name, cpu_upscalers):
    up = cpu_upscalers(name)
    image = picture(20, 24)
    out = up.upscale(image)
    s = catalog()[name].scale
    assert out.shape == (20 * s, 24 * s, 3) and out.dtype == np.uint8
    # The result, scaled back down, still is the input picture.
    assert psnr(shrink(out, s), image) > 20


def test_a_model_loads_and_runs_where_python_has_no_standard_error(monkeypatch):
    # pythonw's sys.stderr is None; the library failed there on loading any model.
    monkeypatch.setattr(sys, "stderr", None)
    up = Upscaler("realesr-animevideov3-x2", device=-1)
    try:
        assert up.upscale(picture(8, 10)).shape == (16, 20, 3)
    finally:
        up.close()


def test_what_another_thread_writes_to_stderr_while_a_model_loads_reaches_stderr(capfd, monkeypatch):
    # ncnn's complaints are caught off fd 2 while a model loads, and fd 2 is the
    # whole process's: a library user's other threads lost their lines meanwhile
    # (254 of 528 reached stderr over three realesrgan-x4plus loads).
    written = []
    for name in ("_load_param", "_load_weights"):
        def loads_while_another_thread_writes(*args, _load=getattr(network_mod, name), _name=name):
            written.append(f"beside {_name}\n")
            writer = threading.Thread(target=os.write, args=(2, written[-1].encode()))
            writer.start()
            writer.join()
            return _load(*args)
        monkeypatch.setattr(network_mod, name, loads_while_another_thread_writes)
    Upscaler("realesr-animevideov3-x2", device=-1).close()
    assert "beside _load_weights\n" in written
    assert capfd.readouterr().err == "".join(written)


def test_tiles_equal_the_whole_picture_where_the_receptive_field_fits(cpu_upscalers):
    image = picture(60, 72)
    whole = cpu_upscalers(FAST, tile=0, tile_pad=10).upscale(image).astype(int)
    tiled = cpu_upscalers(FAST, tile=32, tile_pad=10).upscale(image).astype(int)
    diff = np.abs(whole - tiled).max(axis=2)
    # animevideov3 sees 18 input pixels around itself: beyond 20 px of any seam
    # the tiles hold the same context as the whole picture.
    rows = np.arange(60 * 4) // 4
    cols = np.arange(72 * 4) // 4
    far_y = np.abs(rows - 32) >= 20
    far_x = np.minimum(np.abs(cols - 32), np.abs(cols - 64)) >= 20
    assert far_y.any() and far_x.any()
    assert diff[far_y][:, far_x].max() == 0


def test_context_wider_than_the_receptive_field_makes_tiles_seamless(cpu_upscalers):
    image = picture(60, 72)
    whole = cpu_upscalers(FAST, tile=0, tile_pad=20).upscale(image)
    tiled = cpu_upscalers(FAST, tile=32, tile_pad=20).upscale(image)
    assert np.abs(whole.astype(int) - tiled).max() <= 1  # float rounding only


def test_reference_tiling_stays_within_its_usual_tolerance(cpu_upscalers):
    image = picture(60, 72)
    whole = cpu_upscalers(FAST, tile=0, tile_pad=10).upscale(image)
    tiled = cpu_upscalers(FAST, tile=32, tile_pad=10).upscale(image)
    assert psnr(whole, tiled) > 55


def test_tta_is_the_mean_of_the_eight_symmetric_runs(cpu_upscalers):
    image = picture(16, 20)
    plain = cpu_upscalers(FAST)
    tta = cpu_upscalers(FAST, tta=True).upscale(image).astype(np.float64)
    runs = [tta_inverse(plain.upscale(np.ascontiguousarray(tta_forward(image, k))), k).astype(np.float64)
            for k in range(8)]
    mean = np.mean(runs, axis=0)
    # TTA averages the raw outputs, then clips; compare where no run was clipped.
    unclipped = np.all([(r > 0) & (r < 255) for r in runs], axis=0)
    assert unclipped.mean() > 0.5
    assert np.abs(tta - mean)[unclipped].max() <= 1.0  # each run was rounded once more
    assert np.abs(tta - runs[0]).max() > 1  # and TTA is not the plain run


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_channels_and_depth_come_out_as_they_went_in(channels, dtype, cpu_upscalers):
    image = picture(10, 12, channels=channels, dtype=dtype)
    out = cpu_upscalers("realesr-animevideov3-x2").upscale(image)
    assert out.shape == (20, 24, channels) and out.dtype == dtype


def test_two_dimensional_grey_comes_back_two_dimensional(cpu_upscalers):
    # found by a bug hunt: an H×W picture came back H×W×1, which Pillow's fromarray refuses
    up = cpu_upscalers("realesr-animevideov3-x2")
    grey = picture(10, 12, channels=1)
    out = up.upscale(grey[:, :, 0])
    assert out.shape == (20, 24) and np.array_equal(out, up.upscale(grey)[:, :, 0])
    assert up.upscale(grey[:, :, 0], scale=1.5).shape == (15, 18)
    Image.fromarray(out)


def test_sixteen_bit_keeps_its_depth_and_agrees_with_eight_bit(cpu_upscalers):
    up = cpu_upscalers("realesr-animevideov3-x2")
    eight = up.upscale(picture(12, 12)).astype(np.float64)
    sixteen = up.upscale(picture(12, 12, dtype=np.uint16)).astype(np.float64) / 257
    assert np.abs(eight - sixteen).max() <= 1.0
    assert (up.upscale(picture(12, 12, dtype=np.uint16)) % 257 != 0).any()  # real 16-bit values


def test_grey_stays_grey_and_matches_the_colour_result(cpu_upscalers):
    up = cpu_upscalers("realesr-animevideov3-x2")
    grey = picture(12, 12, channels=1)
    out = up.upscale(grey)[:, :, 0].astype(np.float64)
    via_rgb = up.upscale(np.repeat(grey, 3, axis=2)).astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(out - via_rgb).max() <= 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_with_alpha_stays_grey(dtype, cpu_upscalers):
    # Grey with alpha goes in as RGBA of equal R, G and B: the network gave it colour
    # (up to 120 levels apart on grain), which a grey picture's writing then had to
    # drop, whatever colour the pixels had. Its grey is the luma of the colour result.
    up = cpu_upscalers("realesr-animevideov3-x2")
    grain = (np.random.RandomState(3).rand(14, 14, 1) * 255).astype(np.uint8)
    rgba = np.concatenate([grain, grain, grain, picture(14, 14, channels=4)[:, :, 3:]], axis=2)
    if dtype == np.uint16:
        rgba = rgba.astype(np.uint16) * 257
    out = up.upscale(rgba)
    assert out.dtype == dtype and (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
    nudged = rgba.copy()
    nudged[0, 0, 2] ^= 1  # one sample of one pixel off grey: its colour result
    colour = up.upscale(nudged).astype(np.float64)
    assert np.abs(out[:, :, 0] - colour[:, :, :3] @ [0.299, 0.587, 0.114]).max() <= 2.0 * (257 if dtype == np.uint16 else 1)
    assert np.array_equal(out[:, :, 3], colour[:, :, 3])
    assert np.array_equal(up.upscale(rgba, scale=1.5)[:, :, 0], up.upscale(rgba, scale=1.5)[:, :, 1])


def test_grey_is_the_luma_of_the_colour_result_where_the_network_overshoots(cpu_upscalers):
    # Hard black and white edges: the network's output runs past 0 and 1 there, which
    # the colour output clips before it could be taken to grey.
    up = cpu_upscalers("realesr-animevideov3-x2")
    grey = (np.random.RandomState(3).rand(14, 14, 1) > 0.5).astype(np.uint8) * 255
    out = up.upscale(grey)[:, :, 0].astype(np.float64)
    colour = up.upscale(np.repeat(grey, 3, axis=2)).astype(np.float64)
    assert np.abs(out - colour @ [0.299, 0.587, 0.114]).max() <= 1.0


def test_alpha_is_upscaled_bicubic_and_never_enters_the_network(cpu_upscalers):
    up = cpu_upscalers("realesr-animevideov3-x2")
    image = picture(12, 16, channels=4)
    out = up.upscale(image)
    rgb_only = up.upscale(np.ascontiguousarray(image[:, :, :3]))
    assert np.array_equal(out[:, :, :3], rgb_only)
    alpha = out[:, :, 3].astype(float)
    assert np.abs(np.diff(alpha, axis=1)).max() <= 12  # a smooth ramp stays smooth
    assert abs(alpha[:, 0].mean() - 0) < 10 and abs(alpha[:, -1].mean() - 255) < 10


def _clamped_bicubic(plane: np.ndarray, scale: int) -> np.ndarray:
    """The C++ code's alpha rule, written out: ncnn's bicubic (a = -0.75, pixel
    centres aligned) over the whole plane, each tap past an edge reading the edge pixel."""
    def weights(size: int) -> np.ndarray:
        w = np.zeros((size * scale, size))
        for i in range(size * scale):
            f = (i + 0.5) / scale - 0.5
            x0 = int(np.floor(f))
            for k in range(-1, 3):
                d = abs(f - (x0 + k))
                c = 1.25 * d ** 3 - 2.25 * d ** 2 + 1 if d <= 1 else -0.75 * (d ** 3 - 5 * d ** 2 + 8 * d - 4)
                w[i, min(max(x0 + k, 0), size - 1)] += c
        return w
    values = weights(plane.shape[0]) @ (plane / 255.0) @ weights(plane.shape[1]).T
    return np.floor(np.clip(values, 0, 1) * 255 + 0.5)


@pytest.mark.parametrize("tile", [0, 32])
def test_alpha_follows_the_reference_bicubic_up_to_the_picture_edges(cpu_upscalers, tile):
    # An alpha sharp at the edges, where padding shows: mirrored, the outer pixels were
    # up to 60 levels off the C++ code's (the drop-in's rule: tile_pad 10).
    image = picture(40, 70, channels=4)  # 2x3 tiles of 32
    image[:, :, 3] = np.random.RandomState(1).randint(0, 256, image.shape[:2])
    out = cpu_upscalers("realesr-animevideov3-x2", tile=tile, tile_pad=10).upscale(image)
    assert np.abs(out[:, :, 3] - _clamped_bicubic(image[:, :, 3].astype(float), 2)).max() <= 1


def test_opaque_alpha_stays_opaque(cpu_upscalers):
    image = picture(10, 10, channels=4)
    image[:, :, 3] = 255
    out = cpu_upscalers("realesr-animevideov3-x2").upscale(image)
    assert (out[:, :, 3] == 255).all()


def test_alpha_can_go_through_the_network(cpu_upscalers):
    image = picture(12, 16, channels=4)
    bicubic = cpu_upscalers("realesr-animevideov3-x2").upscale(image)
    model = cpu_upscalers("realesr-animevideov3-x2", alpha="model").upscale(image)
    assert np.array_equal(model[:, :, :3], bicubic[:, :, :3])
    assert not np.array_equal(model[:, :, 3], bicubic[:, :, 3])
    assert psnr(model[:, :, 3], bicubic[:, :, 3]) > 25


def test_other_scale_is_native_inference_then_lanczos(cpu_upscalers):
    up = cpu_upscalers(FAST)
    image = picture(16, 20)
    native = up.upscale(image)
    half = up.upscale(image, scale=2)
    assert half.shape == (32, 40, 3)
    assert np.array_equal(half, resize(native, 32, 40))
    assert psnr(shrink(half, 2), image) > 20  # a picture, not a garbled buffer


def test_fractional_scale_and_target_sizes(cpu_upscalers):
    up = cpu_upscalers("realesr-animevideov3-x2")
    image = picture(10, 20)
    assert up.upscale(image, scale=1.5).shape == (15, 30, 3)
    assert up.upscale(image, width=50).shape == (25, 50, 3)
    assert up.upscale(image, height=30).shape == (30, 60, 3)
    assert up.upscale(image, width=33, height=17).shape == (17, 33, 3)


@pytest.mark.parametrize("bad", [
    np.zeros((4, 4, 3), np.float32),
    np.zeros((4, 4, 2), np.uint8),
    np.zeros((4, 4, 3, 1), np.uint8),
    np.zeros((0, 4, 3), np.uint8),
    [[1, 2], [3, 4]],
])
def test_arrays_it_cannot_take_are_input_errors(bad, cpu_upscalers):
    with pytest.raises(InputError):
        cpu_upscalers(FAST).upscale(bad)


@pytest.mark.parametrize("bad, hint", [
    (np.full((4, 4, 3), 0.5, np.float32), "(image * 255).round().astype(np.uint8)"),
    (np.full((4, 4), 0.5), "(image * 255).round().astype(np.uint8)"),
    (np.full((4, 4, 3), 200, np.int64), "image.astype(np.uint8)"),
    (np.full((4, 4, 3), 200, np.int32), "image.astype(np.uint8)"),
    (np.ones((4, 4), bool), "image.astype(np.uint8) * 255"),
    (np.zeros((4, 4, 2), np.uint8), "image[:, :, [0, 0, 0, 1]]"),
    ([[1, 2], [3, 4]], "np.asarray(pixels, np.uint8)"),
])
def test_pixels_of_a_wrong_kind_are_refused_in_a_line_that_says_how_to_give_them(bad, hint, cpu_upscalers):
    # found by a library audit: "expected uint8 or uint16 pixels, got float32" said
    # what was wrong, not what to do; float pixels and int64 ones (np.array of Python
    # ints) are the first mistakes made.
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(bad)
    assert hint in str(caught.value) and "\n" not in str(caught.value)
    image = pixels = bad  # the names the hint uses
    cpu_upscalers(FAST).upscale(eval(hint, {"np": np, "image": image, "pixels": pixels}))


@pytest.mark.parametrize("top, dtype", [(255, np.uint8), (200, np.uint8), (65535, np.uint16), (1000, np.uint16)])
@pytest.mark.parametrize("kind", [np.float64, np.float32])
def test_float_pixels_beyond_1_are_told_a_conversion_that_keeps_their_values(top, dtype, kind, cpu_upscalers):
    # found by a library audit: float pixels of 0 to 255 (an OpenCV or numpy
    # computation's) were told (image * 255).round().astype(np.uint8), which
    # multiplied them again and wrapped round: 200.0 came out as 56, a wrong picture
    # and no error.
    values = np.linspace(0, top, 48).round().reshape(4, 4, 3).astype(dtype)
    image = values.astype(kind)
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(image)
    message = str(caught.value)
    hint = re.search(r"convert with (.+?)(?:, |$)", message).group(1)
    assert "\n" not in message and np.array_equal(eval(hint, {"np": np, "image": image}), values), message


@pytest.mark.parametrize("layout", ["CHW", "NHWC", "NCHW", "batch of 2"])
def test_a_picture_in_pytorch_s_or_a_batch_s_layout_is_told_how_it_goes_in(layout, cpu_upscalers):
    # found by a library audit: a C×H×W picture (a torch tensor's .numpy()) or a
    # batch of one was refused with its shape alone
    hwc = picture(5, 6)
    image = {"CHW": hwc.transpose(2, 0, 1), "NHWC": hwc[None], "NCHW": hwc.transpose(2, 0, 1)[None],
             "batch of 2": np.stack([hwc, hwc])}[layout]
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(image)
    message = str(caught.value)
    hint = re.search(r"goes in as (.+)$", message).group(1)
    i = 0  # the index a batch's hint names
    given = eval(hint, {"np": np, "image": image, "i": i})
    assert "\n" not in message and np.array_equal(given, hwc), message


class _Tensor:
    """What a torch.Tensor, an xarray or a JAX array is to numpy: an object that
    gives its pixels through __array__."""
    __module__ = "torch"

    def __init__(self, pixels):
        self.pixels = pixels

    def __array__(self, dtype=None, copy=None):
        return self.pixels


def test_an_array_of_another_library_or_a_numpy_scalar_is_told_what_to_give(cpu_upscalers):
    # found by a library audit: a torch tensor was refused as "got Tensor", a cupy
    # array as "expected a numpy array, got ndarray" and np.uint8(3) as "got uint8",
    # though each is a numpy thing or goes into one.
    hwc = picture(5, 6)
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(_Tensor(hwc))
    message = str(caught.value)
    assert message.startswith("expected a numpy array, got a torch._Tensor: give "), message
    hint = re.search(r": give (.+?)(?:,|$)", message).group(1)
    assert np.array_equal(eval(hint, {"np": np, "image": _Tensor(hwc)}), hwc)
    with pytest.raises(InputError, match=r"^expected a numpy array, got a numpy uint8 scalar \(3\): give an H×W×C"):
        cpu_upscalers(FAST).upscale(np.uint8(3))
    for path in ("photo.png", Path("photo.png")):
        with pytest.raises(InputError, match=r": read the picture with read_image\(path\)$"):
            cpu_upscalers(FAST).upscale(path)


def test_what_is_given_in_a_pictures_place_takes_the_article_its_name_is_said_with(cpu_upscalers):
    # An audit's: "got a xarray.DataArray", "an open file with no name (a
    # HTTPResponse)", the article chosen by the first letter.
    array = type("DataArray", (_Tensor,), {"__module__": "xarray.core.dataarray"})
    with pytest.raises(InputError, match=r"^expected a numpy array, got an xarray\.DataArray: give "):
        cpu_upscalers(FAST).upscale(array(picture(5, 6)))
    response = type("HTTPResponse", (io.RawIOBase,), {"readable": lambda self: True})
    with pytest.raises(InputError, match=r"^expected a numpy array, got an open file with no name \(an HTTPResponse\)"):
        cpu_upscalers(FAST).upscale(response())
    with pytest.raises(InputError, match=r"^an 8x6 picture at scale 1e-09 would be under 1 pixel a side: "):
        cpu_upscalers(FAST).upscale(picture(6, 8), scale=1e-9)


def test_a_files_contents_or_an_open_file_is_told_to_be_read_with_read_image(cpu_upscalers, tmp_path):
    # found by a library audit: bytes from a web request said only "expected a numpy
    # array, got bytes", and an open file "got a _io.BufferedReader", where a str
    # path was told to go through read_image.
    path = tmp_path / "photo.png"
    Image.fromarray(picture(5, 6)).save(path)
    data = path.read_bytes()
    up = cpu_upscalers(FAST)
    for given in (data, bytearray(data), memoryview(data)):
        with pytest.raises(InputError, match=rf"^expected a numpy array, got {len(data)} bytes \(a "
                                             rf"{type(given).__name__}\): a file's contents\? save them to a "
                                             r"file and read the picture with read_image\(path\)$"):
            up.upscale(given)
    with open(path, "rb") as f, pytest.raises(
            InputError, match=rf"^expected a numpy array, got an open file: read the picture with "
                              rf"read_image\(path\), its path {re.escape(repr(str(path)))}$"):
        up.upscale(f)
    with pytest.raises(InputError, match=r"^expected a numpy array, got an open file with no name \(a BytesIO\): "
                                         r"save its contents to a file and read the picture with read_image\(path\)$"):
        up.upscale(io.BytesIO(data))


def test_a_memoryview_of_pixels_is_told_to_go_in_as_an_array(cpu_upscalers):
    # found by a library audit: a memoryview of an H×W×3 array (a buffer another
    # library exports) was asked whether it was "a file's contents"
    hwc = picture(5, 6)
    with pytest.raises(InputError) as refused:
        cpu_upscalers(FAST).upscale(memoryview(hwc))
    message = str(refused.value)
    assert message == "expected a numpy array, got a memoryview of shape (5, 6, 3): give np.asarray(image)"
    assert np.array_equal(eval(message.rsplit("give ", 1)[1], {"np": np, "image": memoryview(hwc)}), hwc)


def test_an_empty_grey_picture_is_named_by_the_shape_it_was_given(cpu_upscalers):
    # It said (16, 0, 1), the axis the engine adds, for an H×W array of shape (16, 0).
    with pytest.raises(InputError, match=r"^picture of shape \(16, 0\) has no pixels$"):
        cpu_upscalers(FAST).upscale(np.zeros((16, 0), np.uint8))


@pytest.mark.parametrize("mode", ["P", "CMYK"])
def test_a_pillow_image_is_an_input_error_that_says_how_to_give_its_pixels(mode, cpu_upscalers):
    # Its mode's own values (palette indices, inks) are no pixels the engine takes: the
    # error said only "got Image", and np.asarray of a P or CMYK image is upscaled as grey or RGBA.
    image = Image.fromarray(picture(4, 4)).convert(mode)
    with pytest.raises(InputError, match=rf"^expected a numpy array, got a Pillow {mode} image: "
                                         r"give np.asarray\(image.convert\(\"RGB\"\)\)"):
        cpu_upscalers(FAST).upscale(image)


@pytest.mark.parametrize("mode, target", [
    ("RGB", "RGB"), ("RGBA", "RGBA"), ("L", "L"), ("1", "L"), ("LA", "RGBA"), ("PA", "RGBA"),
    ("P", "RGB"), ("P transparent", "RGBA"), ("CMYK", "RGB"), ("YCbCr", "RGB"), ("RGBX", "RGB"),
])
def test_a_pillow_image_is_told_the_pixels_that_keep_its_alpha_and_its_grey(mode, target, cpu_upscalers):
    # found by a library audit: every Pillow image was told np.asarray(image.convert("RGB")),
    # which dropped an RGBA or LA image's alpha without a word, and gave a grey (L)
    # picture as colour, which the network tints (read_image keeps it grey)
    rgba = picture(4, 4, 4)
    rgba[:2, :, 3] = 0
    image = Image.fromarray(rgba).convert(mode) if "A" in mode else Image.fromarray(rgba[:, :, :3]).convert(mode.split()[0])
    if mode == "P transparent":
        image.info["transparency"] = int(np.asarray(image)[0, 0])
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(image)
    message = str(caught.value)
    hint = re.search(r"give (.+?)(?:,| \(|$)", message).group(1)
    given = eval(hint, {"np": np, "image": image})
    assert np.array_equal(given, np.asarray(image.convert(target))), message
    assert cpu_upscalers(FAST).upscale(given).shape == (16, 16, *given.shape[2:])


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_a_16_bit_pillow_image_is_told_to_go_in_at_16_bits(mode, cpu_upscalers, tmp_path):
    # found by a library audit: a 16-bit grey PNG opens as I;16, and the hint was
    # image.convert("L"), which Pillow clips: every level past 255 came out white.
    grey = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 4000)
    Image.fromarray(grey).save(tmp_path / "grey16.png")
    image = Image.open(tmp_path / "grey16.png")
    image = image if mode == "I;16" else image.convert("I") if mode == "I" else Image.frombytes(
        mode, image.size, grey.astype(">u2").tobytes())
    with pytest.raises(InputError) as caught:
        cpu_upscalers(FAST).upscale(image)
    message = str(caught.value)
    assert message.startswith(f"expected a numpy array, got a Pillow {mode} image: give ")
    assert "convert" not in message and "\n" not in message
    hint = re.search(r"give (np\.asarray\(image\)[^ ,]*)", message).group(1)
    given = eval(hint, {"np": np, "image": image})
    assert np.array_equal(given, grey)
    assert np.array_equal(cpu_upscalers(FAST).upscale(given), cpu_upscalers(FAST).upscale(grey))


def test_a_float_pillow_image_is_not_told_to_convert_to_8_bits(cpu_upscalers):
    # Its values may be anything: convert("L") clips them to 0..255 unseen.
    with pytest.raises(InputError, match=r"^expected a numpy array, got a Pillow F image: float pixels") as caught:
        cpu_upscalers(FAST).upscale(Image.new("F", (4, 4)))
    assert "convert(" not in str(caught.value)


@pytest.mark.parametrize("kwargs", [
    {"tile": 16}, {"alpha": "magic"}, {"tile_pad": -1}, {"overlap": -1}, {"precision": "fp8"}, {"concurrency": 0},
    # found by a bug hunt: a crash (SIGFPE), bare TypeErrors, a MemoryError
    {"threads": -3}, {"threads": 0}, {"tile": 40.5}, {"tile": "64"}, {"device": None}, {"tile_pad": 100000},
    {"overlap": 513},
])
def test_bad_options_are_input_errors(kwargs):
    with pytest.raises(InputError):
        Upscaler(**({"model": FAST, "device": -1} | kwargs))


def test_a_model_that_is_no_name_or_path_is_an_input_error():
    with pytest.raises(InputError, match="model must be a name"):
        Upscaler(None)


def test_numpy_integers_are_whole_numbers(cpu_upscalers):
    assert Upscaler(FAST, device=-1, tile=np.int64(64)).tile == 64
    assert cpu_upscalers(FAST).upscale(picture(4, 4), width=np.int64(10)).shape == (10, 10, 3)


def test_numpy_sizes_of_small_types_do_not_overflow(cpu_upscalers):
    # found by a bug hunt: 50 * np.uint8(60) wrapped around, giving 1 row instead of 150
    up = cpu_upscalers("realesr-animevideov3-x2")
    assert up.upscale(picture(50, 20), width=np.uint8(60)).shape == (150, 60, 3)
    assert up.upscale(picture(50, 20), height=np.int8(100)).shape == (100, 40, 3)
    assert up.upscale(picture(50, 20), scale=np.float16(1.5)).shape == (75, 30, 3)


def test_a_result_larger_than_the_memory_available_is_an_input_error(cpu_upscalers, monkeypatch):
    # found by a bug hunt: width=100000 for a 40 px picture (10 GB per channel of
    # float to resample) got the process killed
    up = cpu_upscalers("realesr-animevideov3-x2")
    monkeypatch.setattr(engine_mod.budget, "memory_limit", lambda: 1 << 20)
    assert up.upscale(picture(10, 10), scale=3).shape == (30, 30, 3)
    with pytest.raises(InputError, match=r"needs about 1\.3 MB of memory, more than the 1\.0 MB available"):
        up.upscale(picture(10, 10), scale=30)
    with pytest.raises(InputError, match="needs about"):
        up.upscale(picture(400, 400))  # the native result alone
    monkeypatch.setattr(engine_mod.budget, "memory_limit", lambda: None)  # unknown: no refusal on a guess
    assert up.upscale(picture(10, 10), scale=30).shape == (300, 300, 3)


def test_a_custom_model_with_a_fixed_blob_larger_than_the_memory_is_refused_before_it_loads(tmp_path, monkeypatch):
    # A map of 4096x4096 whatever the picture (96 MB in float16, 192 MB in float32),
    # brought back to the picture's size: it upscales while the memory holds it. Where
    # it did not, a convolution's output of 17 GB (3 to 64 channels, pads of 4096)
    # segfaulted ncnn beside 23 GB available, and one of 10 GB was filled.
    (tmp_path / "big.param").write_text("7767517\n5 6\nInput data 0 1 data\nSplit s 1 2 data d e\n"
                                        "Interp big 1 1 d f 0=2 3=4096 4=4096\nInterp back 2 1 f e g 0=2 5=1\n"
                                        "Interp up 1 1 g out 0=2 1=2.0 2=2.0\n")
    (tmp_path / "big.bin").write_bytes(b"")
    with Upscaler(str(tmp_path / "big.param"), device=-1) as up:
        assert up.upscale(picture(6, 7)).shape == (12, 14, 3)
    monkeypatch.setattr(engine_mod.budget, "memory_limit", lambda: 128 << 20)
    monkeypatch.setattr(engine_mod.budget, "memory_limit_named", lambda: (128 << 20, ""))
    with pytest.raises(ModelError, match=r" layer big \(Interp\) makes a 4096x4096x3 blob \((96|192) MB\), more than "
                                         r"half the 128 MB available$"):
        Upscaler(str(tmp_path / "big.param"), device=-1)
    # Named as budget.room_words names what binds in every refusal of memory: it said
    # "half the 128 MB of memory available" of a cap, on a machine of gigabytes free.
    monkeypatch.setattr(engine_mod.budget, "memory_limit_named", lambda: (128 << 20, "ulimit -v"))
    with pytest.raises(ModelError, match=r"\), more than half the 128 MB this process may still use \(ulimit -v\)$"):
        Upscaler(str(tmp_path / "big.param"), device=-1)
    monkeypatch.setattr(engine_mod.budget, "memory_limit", lambda: None)  # unknown: no refusal on a guess
    Upscaler(str(tmp_path / "big.param"), device=-1).close()


def fake_lavapipe(monkeypatch) -> None:
    """A 1024 MB software Vulkan device as GPU 0, where no model may load: on a
    machine without Vulkan ncnn ran the GPU's network on the CPU, where such a model
    segfaulted or filled the memory."""
    lavapipe = engine_mod.devices.Device(0, "lavapipe", "cpu", 1024)
    monkeypatch.setattr(engine_mod.devices, "get_device", lambda spec: lavapipe)

    def load(*args, **kwargs):
        raise AssertionError("loaded: not refused first")
    monkeypatch.setattr(Upscaler, "_load", load)


@pytest.mark.parametrize("layer, said", [
    ("Padding p 1 1 data a 0=4096 1=4096 2=4096 3=4096 7=4096 8=4096", "layer p (Padding) makes an 8193x8193x8195 blob"),
    ("Convolution p 1 1 data a 0=64 1=1 4=4096 6=192", "layer p (Convolution) makes an 8193x8193x64 blob"),
    ("Deconvolution p 1 1 data a 0=3 1=1 18=30000 19=30000 6=9", "layer p (Deconvolution) makes a 30001x30001x3 blob"),
    ("Tile p 1 1 data a -23302=3,1,30000,30000", "layer p (Tile) makes a 30000x30000x3 blob"),
    ("Fold p 1 1 data a 1=1 20=40000 21=40000", "layer p (Fold) makes a 40000x40000x1 blob"),
])
def test_a_custom_model_with_a_fixed_blob_larger_than_the_gpu_heap_is_refused_before_it_loads(
        layer, said, tmp_path, monkeypatch):
    # Only an Interp's 3= and 4= were checked: ncnn makes no check of the Vulkan buffer
    # it fails to make, and lavapipe segfaulted on a 65536x65536 Interp's.
    (tmp_path / "big.param").write_text(f"7767517\n3 3\nInput data 0 1 data\n{layer}\n"
                                        "Interp up 1 1 a out 0=2 1=2.0 2=2.0\n")
    (tmp_path / "big.bin").write_bytes(struct.pack("<I9f", 0, 1, 0, 0, 0, 1, 0, 0, 0, 1) if "Deconv" in layer else
                                       struct.pack("<I", 0) + bytes(192 * 4) if "Convolution" in layer else b"")
    fake_lavapipe(monkeypatch)
    with pytest.raises(ModelError, match=re.escape(said) + r" \(\d+ MB\), more than the 1024 MB of "):
        Upscaler(str(tmp_path / "big.param"), device=0)


def test_a_custom_model_whose_test_picture_needs_more_than_the_gpu_heap_is_refused_before_it_loads(
        tmp_path, monkeypatch):
    # An x1024 deconvolution: 6 MB for a one-pixel picture, 6 GB for the 32x32 test
    # picture a model of no known scale is run on, whose GPU buffer ncnn does not check.
    weights = 3 * 3 * 1024 * 1024
    (tmp_path / "wide.param").write_text("7767517\n2 2\nInput data 0 1 data\n"
                                         f"Deconvolution d 1 1 data out 0=3 1=1024 3=1024 6={weights}\n")
    (tmp_path / "wide.bin").write_bytes(bytes(4 + 4 * weights))
    fake_lavapipe(monkeypatch)
    with pytest.raises(ModelError, match=r" layer d \(Deconvolution\) makes a 32768x32768x3 blob \(6144 MB\) from "
                                         r"its 32x32 test picture, more than the 1024 MB of "):
        Upscaler(str(tmp_path / "wide.param"), device=0)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_big_endian_and_subclassed_arrays_are_pictures(cpu_upscalers):
    up = cpu_upscalers("realesr-animevideov3-x2")
    image = picture(10, 12, dtype=np.uint16)
    want = up.upscale(image)
    got = up.upscale(image.astype(">u2"))
    assert got.dtype == np.uint16 and np.array_equal(got, want)
    grey = picture(10, 12, channels=1)[:, :, 0]
    assert np.array_equal(up.upscale(np.asmatrix(grey)), up.upscale(grey))


def test_bad_target_sizes_are_input_errors(cpu_upscalers):
    up = cpu_upscalers(FAST)
    for kwargs in ({"scale": 0}, {"scale": -2}, {"width": 0}, {"scale": 2, "width": 10}, {"scale": "2"},
                   {"width": 5.5}, {"height": "10"}):
        with pytest.raises(InputError):
            up.upscale(picture(4, 4), **kwargs)


@pytest.mark.parametrize("kwargs, said", [
    ({"width": 0}, "width must be at least 1 pixel, got 0"),
    ({"height": -5}, "height must be at least 1 pixel, got -5"),
    ({"width": 8, "height": 300000}, "height must be at most 262144 pixels a side, got 300000"),
])
def test_a_target_side_out_of_range_is_named(kwargs, said, cpu_upscalers):
    # found by a library audit: width=0 said "target size must be at least 1 pixel",
    # which left a caller giving both to find which of them it was
    with pytest.raises(SettingError) as refused:
        cpu_upscalers(FAST).upscale(picture(4, 4), **kwargs)
    assert str(refused.value) == said


@pytest.mark.parametrize("kwargs", [{"width": 10**400}, {"height": 10**400}])
def test_a_target_side_past_floats_range_is_an_input_error_not_an_overflow(kwargs, cpu_upscalers):
    with pytest.raises(InputError, match="at most"):
        cpu_upscalers(FAST).upscale(picture(4, 4), **kwargs)


def test_closing_while_other_threads_upscale_lets_their_calls_finish():
    # close() freed the network under running extractions: a segfault, 19 times in 40.
    up = Upscaler(FAST, device=-1)
    results, started = [], threading.Event()

    def work():
        for seed in range(6):
            started.set()
            try:
                results.append(up.upscale(picture(24, 24, seed=seed)).shape)
            except InputError as e:
                results.append(str(e))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait()
    up.close()
    for t in threads:
        t.join()
    size = 24 * up.scale
    assert len(results) == 18 and set(results) <= {(size, size, 3), "this Upscaler is closed: make another"}
    assert "this Upscaler is closed: make another" in results


def test_a_closed_upscaler_refuses_to_run():
    with Upscaler(FAST, device=-1) as up:
        up.upscale(picture(4, 4))
    with pytest.raises(InputError, match="this Upscaler is closed"):
        up.upscale(picture(4, 4))


def test_a_closed_upscaler_is_refused_at_the_start_of_a_with_block():
    # found by a library audit: a second "with up:" entered without a word, and ran
    # its block up to the first upscale, which said the Upscaler was closed; a closed
    # file is refused at its with, as here.
    up = Upscaler(FAST, device=-1)
    with up:
        up.upscale(picture(4, 4))
    ran = []
    with pytest.raises(InputError, match="^this Upscaler is closed: make another$"):
        with up:
            ran.append(True)
    assert ran == [] and up.closed


def test_a_closed_upscaler_refuses_every_further_use_its_tile_set_too():
    # found by a check of the library's settings: after close(), up.tile = 64 was taken
    # and read back 64, and runs_whole answered from the freed network, where upscale
    # and a with of it said it was closed. Reading it back is still allowed.
    up = Upscaler(FAST, device=-1, tile=48)
    up.close()
    closed = "^this Upscaler is closed: make another$"
    for use in (lambda: setattr(up, "tile", 64), lambda: up.runs_whole(8, 8), lambda: up.upscale(picture(4, 4)),
                lambda: up.__enter__()):
        with pytest.raises(InputError, match=closed):
            use()
    assert up.tile == 48 and up.closed and up.scale == 4 and up.spec.name == FAST and "closed" in repr(up)
    up.close()  # closing again does nothing


def test_one_upscaler_serves_several_threads_at_once(cpu_upscalers):
    up = cpu_upscalers(FAST, tile=32)
    images = [picture(40, 36, seed=s) for s in range(4)]
    expected = [up.upscale(im) for im in images]
    for got, want in zip(upscale_in_threads(up, images), expected):
        assert np.array_equal(got, want)


def test_calls_stopped_by_their_progress_beside_others_raise_their_own_error_and_leave_the_others_right(
        cpu_upscalers):
    # Eight threads at once, each call ending well, or stopped by its progress at a
    # tile (an error, or a KeyboardInterrupt as a program's own cancel raises it).
    import threading

    class Stop(Exception):
        pass

    class Cancel(KeyboardInterrupt):
        pass

    up = cpu_upscalers(FAST, tile=32)
    images = [picture(40, 100, seed=s) for s in range(2)]  # four tiles each
    expected = [up.upscale(im) for im in images]
    start, results = threading.Barrier(8, timeout=60), {}

    def work(n: int) -> None:
        start.wait()
        for i in range(4):
            mode, stop_at = (n + i) % 3, 1 + (n + i) % 3

            def progress(done, total):
                if mode and done >= stop_at:
                    raise (Stop if mode == 1 else Cancel)((n, i))
            try:
                out = up.upscale(images[(n + i) % 2], progress=progress)
            except (Stop, Cancel) as e:
                results[n, i] = (type(e), e.args)
            else:
                results[n, i] = np.array_equal(out, expected[(n + i) % 2])

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    for (n, i), got in results.items():
        mode = (n + i) % 3
        assert got == (True if mode == 0 else (Stop if mode == 1 else Cancel, ((n, i),))), (n, i)
    assert len(results) == 32 and up._running == 0 and not up._callers


def fail_above(limit: int, real_run):
    """A Network.run that fails like an out-of-memory device for windows over ``limit``."""
    def run(self, image, keep=None):
        if max(image.shape[:2]) > limit:
            raise network_mod.NetFailure("injected out of memory")
        return real_run(self, image, keep)
    return run


def test_out_of_memory_halves_the_tile_and_still_gives_the_right_picture(monkeypatch, caplog):
    image = picture(40, 40)
    up = Upscaler(FAST, device=-1, tile=40, tile_pad=10)
    want = Upscaler(FAST, device=-1, tile=32, tile_pad=10).upscale(image)
    monkeypatch.setattr(network_mod.Network, "run", fail_above(56, network_mod.Network.run))
    got = up.upscale(image)
    assert up.tile == 32
    assert np.array_equal(got, want)
    assert "retrying with 32px tiles" in caplog.text


def test_out_of_memory_with_a_tile_larger_than_the_picture_halves_the_picture_not_the_tile(monkeypatch, caplog):
    # found by a bug hunt: halving a 400 px tile on a 40 px picture repeated the same
    # failing one-window run three times (200, 100 and 50 px) before tiling it
    image = picture(40, 40)
    up = Upscaler(FAST, device=-1, tile=400, tile_pad=10)
    monkeypatch.setattr(network_mod.Network, "run", fail_above(56, network_mod.Network.run))
    up.upscale(image)
    assert up.tile == 32
    assert caplog.text.count("retrying with") == 1


def test_a_gpu_given_up_for_the_cpu_is_freed_only_after_the_calls_inside_it(monkeypatch, caplog):
    # found by a bug hunt: the fallback freed the GPU network while another call was
    # still extracting on it, which crashes the process
    image = picture(30, 30)  # one tile: the same picture at the CPU's automatic tile
    up = Upscaler(FAST, device=-1, tile=32, tile_pad=10)
    want = up.upscale(image)
    old = up._net
    old.device = engine_mod.Device(0, "stand-in GPU", "discrete", 4096)
    inside, go = threading.Event(), threading.Event()
    real_run = network_mod.Network.run

    def run(self, window, keep=None):
        if self is old and threading.current_thread().name != "inside":
            raise network_mod.NetFailure("injected out of memory")
        if self is old:
            inside.set()
            go.wait(60)
        return real_run(self, window, keep)

    monkeypatch.setattr(network_mod.Network, "run", run)
    results = {}
    worker = threading.Thread(target=lambda: results.setdefault("inside", up.upscale(image)), name="inside",
                              daemon=True)
    worker.start()
    try:
        assert inside.wait(60)
        assert np.array_equal(up.upscale(image), want)  # on the CPU, while the other call is in the old net
        assert up.device == engine_mod.devices.CPU and "falling back to the CPU" in caplog.text
        assert old._net is not None
    finally:
        go.set()
        worker.join(60)
    assert np.array_equal(results["inside"], want)
    assert old._net is None  # freed by the last call out
    up.close()


def test_cpu_out_of_memory_at_the_smallest_tile_is_a_device_error(monkeypatch):
    up = Upscaler(FAST, device=-1, tile=32, tile_pad=10)
    monkeypatch.setattr(network_mod.Network, "run", fail_above(0, network_mod.Network.run))
    with pytest.raises(DeviceError, match="ran out of memory even with 32px tiles"):
        up.upscale(picture(8, 8))


def test_custom_model_overflowing_on_the_cpu_is_a_model_error_not_out_of_memory(tmp_path, monkeypatch):
    # Zero in (the scale probe), zero out; a real picture overflows to infinity. On the
    # CPU no smaller tile mends that: it was halved down to 32 px, then "the CPU ran
    # out of memory".
    (tmp_path / "overflow-x2.bin").write_bytes(b"")
    param = tmp_path / "overflow-x2.param"
    param.write_text("7767517\n4 4\nInput in0 0 1 data\nBinaryOp big 1 1 data a 0=2 1=1 2=1e38\n"
                     "BinaryOp bigger 1 1 a b 0=2 1=1 2=10.0\nInterp up 1 1 b output 0=1 1=2.0 2=2.0\n")
    up = Upscaler(str(param), device=-1, tile=64)
    runs = []
    real = network_mod.Network.extract
    monkeypatch.setattr(network_mod.Network, "extract", lambda self, *a: (runs.append(1), real(self, *a))[1])
    with pytest.raises(ModelError, match=f"^model overflow-x2: {re.escape(str(param))} gave NaN or infinite values on "
                                         f"the CPU: its weights \\({re.escape(str(tmp_path / 'overflow-x2.bin'))}\\) "
                                         "are broken, or not those of its .param$"):
        up.upscale(picture(40, 40))
    assert len(runs) == 1
    up.close()


def test_custom_model_whose_weights_give_nan_on_the_test_input_names_its_bin(tmp_path):
    # found by a user audit: NaN weights (or another model's bin of the same size) said
    # "failed on a 32x32 test input: non-finite output on CPU", naming neither file.
    import struct

    (tmp_path / "nan.bin").write_bytes(struct.pack("<I9f3f", 0, *[float("nan")] * 9, 0, 0, 0))
    param = tmp_path / "nan.param"
    param.write_text("7767517\n3 3\nInput data 0 1 data\nConvolution conv 1 1 data c 0=3 1=1 5=1 6=9\n"
                     "Interp up 1 1 c output 0=1 1=2.0 2=2.0\n")
    with pytest.raises(ModelError, match=f"^model nan: {re.escape(str(param))} gave NaN or infinite values for a "
                                         f"black 32x32 test input on CPU: its weights "
                                         f"\\({re.escape(str(tmp_path / 'nan.bin'))}\\) are broken, or not those "
                                         "of its .param$"):
        Upscaler(str(param), device=-1)


def test_custom_model_whose_output_is_no_picture_is_a_model_error(tmp_path):
    # A classifier given by mistake: its scores, transposed as a picture, were a bare
    # ValueError and a traceback.
    (tmp_path / "scores.bin").write_bytes(b"")
    param = tmp_path / "scores.param"
    param.write_text("7767517\n3 3\nInput in0 0 1 data\nPooling pool 1 1 data pooled 0=1 4=1\n"
                     "Softmax scores 1 1 pooled output\n")
    with pytest.raises(ModelError,
                       match=r"^model scores: .*scores.param gives blob 'output' of shape \(3,\), not a picture's"):
        Upscaler(str(param), device=-1)


@pytest.mark.parametrize("factor, size", [(1.5, 48), (0.5, 16)])
def test_custom_model_of_no_whole_scale_is_named_in_the_error(tmp_path, factor, size):
    # Its Interp is a head run in pieces on the CPU: a 1.5x one said only "the head of
    # output gave 48x48 for 32x32", naming neither the model nor what to do.
    (tmp_path / "odd.bin").write_bytes(b"")
    param = tmp_path / "odd.param"
    param.write_text(f"7767517\n2 2\nInput in0 0 1 data\nInterp up 1 1 data output 0=2 1={factor} 2={factor}\n")
    with pytest.raises(ModelError, match=rf"^model odd: {re.escape(str(param))} turns a 32x32 RGB picture into {size}x{size}x3: "
                                         "not a whole-number RGB upscaler$"):
        Upscaler(str(param), device=-1)


def test_a_model_whose_output_is_cropped_to_nothing_is_one_line(tmp_path):
    # found by a bug hunt: a Crop taking more than the picture has gave a Mat of
    # negative size, which numpy refused with a bare ValueError: a traceback.
    (tmp_path / "gone.bin").write_bytes(b"")
    (tmp_path / "gone.param").write_text(
        "7767517\n3 3\nInput in0 0 1 data\nInterp up 1 1 data up 0=1 1=2.0 2=2.0\n"
        "Crop crop 1 1 up output -23309=2,300,300 -23310=2,-300,-300 -23311=2,-2,-1\n")
    with pytest.raises(ModelError, match=rf"^model gone: {re.escape(str(tmp_path / 'gone.param'))} failed on a 32x32 "
                                         r"test input: ncnn gave an output of "
                                         r"-536x-536x3 on CPU$"):
        Upscaler(str(tmp_path / "gone.param"), device=-1)


@pytest.mark.parametrize("crop, said", [
    (12, "turns a 32x32 RGB picture into 40x40x3: an x2 model that crops 6 pixels"),
    # 32x32 leaves it nothing, as it does Real-CUGAN's x2 and x4: that was all the error said
    (36, "turns a 64x64 RGB picture into 56x56x3: an x2 model that crops 18 pixels"),
])
def test_a_model_that_crops_its_border_is_refused_as_one_needing_its_own_padding(tmp_path, crop, said):
    # found by a bug hunt: Real-CUGAN's models, given by path, were refused as "failed on
    # a 32x32 test input: ncnn error -100 on CPU" (x2, x4) or "not a whole-number RGB
    # upscaler" (x3), naming neither what they do nor what they need.
    (tmp_path / "cropped.bin").write_bytes(b"")
    (tmp_path / "cropped.param").write_text(
        "7767517\n3 3\nInput in0 0 1 data\nInterp up 1 1 data up 0=1 1=2.0 2=2.0\n"
        f"Crop crop 1 1 up output -23309=2,{crop},{crop} -23310=2,-{crop},-{crop} -23311=2,-2,-1\n")
    with pytest.raises(ModelError, match=rf"^model cropped: {re.escape(str(tmp_path / 'cropped.param'))} {said} of the input from each side of its output, as "
                                         r"Real-CUGAN's do: it needs a padding of its own, which ncnn-sr does not "
                                         "give$"):
        Upscaler(str(tmp_path / "cropped.param"), device=-1)


UNET = ("7767517\n6 7\nInput in0 0 1 data\nSplit s 1 2 data a b\nPooling p 1 1 a pa 0=1 1=2 2=2\n"
        "Interp i 1 1 pa ia 0=1 1=2.0 2=2.0\nBinaryOp add 2 1 ia b sum 0=0\nInterp up 1 1 sum output 0=1 1=2.0 2=2.0\n")


def _unet(c: np.ndarray) -> np.ndarray:
    """UNET in numpy, on a planar picture of even sides."""
    pooled = c.reshape(c.shape[0], c.shape[1] // 2, 2, c.shape[2] // 2, 2).mean(axis=(2, 4))
    return (pooled.repeat(2, 1).repeat(2, 2) + c).repeat(2, 1).repeat(2, 2)


@pytest.mark.parametrize("tile", [0, 32])
def test_a_custom_model_that_pools_its_input_runs_on_whole_blocks(tmp_path, tile):
    # found by a bug hunt: a U-Net-like model (pool, then upsample and add) given a
    # side of odd length gave a row too many, which was cropped away unseen, or read
    # past its input: "NaN or infinite values ... its weights are broken". Its windows
    # are now of whole 2x2 blocks, reflected at the bottom and right, as an unshuffle's.
    (tmp_path / "unet.bin").write_bytes(b"")
    (tmp_path / "unet.param").write_text(UNET)
    image = picture(37, 45) // 4
    padded = np.pad(image.astype(np.float32) / 255, ((0, 1), (0, 1), (0, 0)), mode="reflect")
    expected = _unet(padded.transpose(2, 0, 1)).transpose(1, 2, 0)[:74, :90]
    with Upscaler(str(tmp_path / "unet.param"), device=-1, tile=tile) as up:
        assert (up.scale, up.alignment) == (2, 2)
        out = up.upscale(image)
    assert np.abs(out.astype(int) - np.floor(np.clip(expected, 0, 1) * 255 + 0.5)).max() == 0


def test_progress_is_called_per_tile_and_can_stop_the_work(cpu_upscalers):
    up = cpu_upscalers(FAST, tile=32)
    calls = []
    up.upscale(picture(40, 70), progress=lambda done, total: calls.append((done, total)))
    # Three windows across; down, 40 px leave no room for a seam with its context:
    # one window, run once.
    assert calls == [(1, 3), (2, 3), (3, 3)]

    class Stop(Exception):
        pass

    def stop_after_two(done, total):
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        up.upscale(picture(40, 70), progress=stop_after_two)




def _passes_told_one_by_one(cpu_upscalers, model: str, size: tuple[int, int], **settings) -> None:
    """TTA over a picture that runs as one window tells each of its passes (eight, or
    sixteen with the alpha through the network), as a tile of one, and a progress that
    raises stops it between them."""
    up = cpu_upscalers(model, tta=True, **settings)
    calls = []
    up.upscale(picture(*size), progress=lambda done, total: calls.append((done, total, getattr(total, "tiles", 1))))
    assert calls == [(done, 8, 1) for done in range(1, 9)]
    calls.clear()
    cpu_upscalers(model, tta=True, alpha="model", **settings).upscale(
        picture(*size, 4), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 16) for done in range(1, 17)]
    passes = []

    class Stop(Exception):
        pass

    def stop_after_two(done, total):
        passes.append(done)
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        up.upscale(picture(*size), progress=stop_after_two)
    assert passes == [1, 2]


def test_tta_on_one_window_tells_each_pass_and_can_stop_between_them(cpu_upscalers):
    # A picture run as one window (a 500x666 photo with -x on the CPU) told nothing for
    # its eight passes, minutes, and a cancel waited for all of them.
    _passes_told_one_by_one(cpu_upscalers, FAST, (20, 30))


def test_tta_on_blended_windows_grown_to_one_tells_each_pass_as_one_tile_does(cpu_upscalers):
    # Tiles of 32 px blend a 40x40 picture as one window: it told its eight passes once,
    # all at the end, where a grid of one tile tells each, and a cancel waited for all.
    assert cpu_upscalers("realesr-animevideov3-x2", tile=32).runs_whole(40, 40)
    _passes_told_one_by_one(cpu_upscalers, "realesr-animevideov3-x2", (40, 40), tile=32)
    image = picture(40, 40)
    got = cpu_upscalers("realesr-animevideov3-x2", tile=32, tta=True).upscale(image)
    assert np.array_equal(got, cpu_upscalers("realesr-animevideov3-x2", tile=64, tta=True).upscale(image))

# --- seam-free tiling ------------------------------------------------------------------

def test_context_past_the_networks_reach_is_cut_and_the_output_kept():
    # A --tile-pad of 500 around 32 px tiles of a 64x64 picture ran windows of
    # 1032 px (65 s on 2 cores); realesr-animevideov3-x4 reaches 19 px.
    from ncnn_sr.models import resolve_model
    from ncnn_sr.netsplit import network_reach

    spec = resolve_model(FAST)
    assert network_reach(spec.param_path.read_bytes(), spec.output_blob) == 19
    image = picture(40, 44, channels=4)
    up = Upscaler(FAST, device=-1, tile=32, tile_pad=100)
    assert up.tile_pad == 19
    as_asked = Upscaler(FAST, device=-1, tile=32, tile_pad=100)
    as_asked._tile_pad = 100  # the context it ran with before (fixed when made, to the public)
    apart = np.abs(up.upscale(image).astype(int) - as_asked.upscale(image))
    # The same sums, which ncnn rounds a little differently in windows of another
    # size (as between two tile sizes); context cut within the reach (10 px) set
    # 8335 samples apart, by up to 2 levels.
    assert apart.max() <= 1 and np.count_nonzero(apart) <= 4
    assert Upscaler(FAST, device=-1, tile=32, tile_pad=16).tile_pad == 16  # within the reach: as asked
    assert Upscaler(FAST, device=-1, tile=32, tile_pad=100, overlap=8).tile_pad == 100  # blended windows keep it


def test_seam_free_is_the_default_and_tile_pad_alone_is_the_reference_rule():
    assert Upscaler(FAST, device=-1).overlap == engine_mod.DEFAULT_OVERLAP > 0
    reference = Upscaler(FAST, device=-1, tile_pad=10)
    assert (reference.overlap, reference.tile_pad) == (0, 10)
    assert Upscaler(FAST, device=-1, tile_pad=10, overlap=8).overlap == 8


def repeat_pixels(self, image, keep=None):
    """A 'network' with no context at all: each pixel becomes a 4x4 block."""
    if keep is not None:
        image = image[keep[0]:keep[1], keep[2]:keep[3]]
    return image.repeat(4, axis=0).repeat(4, axis=1)


@pytest.mark.parametrize("h,w,tile,overlap", [(70, 53, 32, 16), (64, 64, 32, 16), (40, 100, 32, 24), (33, 90, 32, 16)])
def test_blending_is_exact_when_tiles_agree(h, w, tile, overlap, monkeypatch):
    # Tiles of a context-free network agree everywhere, so the blend weights (rises,
    # falls, corners, small last tiles, rows carried to the next band) must sum to 1.
    monkeypatch.setattr(network_mod.Network, "run", repeat_pixels)
    image = picture(h, w, channels=4)
    whole = Upscaler(FAST, device=-1, tile=0).upscale(image)
    blended = Upscaler(FAST, device=-1, tile=tile, overlap=overlap).upscale(image)
    assert np.abs(whole.astype(int) - blended).max() <= 1


def test_blending_removes_most_of_the_seam_error(cpu_upscalers):
    image = picture(72, 90, seed=3)
    whole = cpu_upscalers(FAST, tile=0).upscale(image)
    reference = cpu_upscalers(FAST, tile=32, tile_pad=10).upscale(image)
    blended = cpu_upscalers(FAST, tile=32).upscale(image)
    assert psnr(whole, blended) > psnr(whole, reference) + 3
    assert np.abs(whole.astype(int) - blended).max() < np.abs(whole.astype(int) - reference).max()


def test_seam_free_runs_do_not_mirror_the_picture_beyond_its_edges(cpu_upscalers):
    # As Real-ESRGAN's own inference runs a whole picture; the reference rule, which
    # promises the C++ code's output, keeps its mirrored border.
    image = picture(40, 52, seed=5)
    default = cpu_upscalers(FAST, tile=0).upscale(image)  # one window
    as_it_is = cpu_upscalers(FAST, tile=64, tile_pad=0).upscale(image)  # the reference rule without context
    mirrored = cpu_upscalers(FAST, tile=64, tile_pad=10).upscale(image)
    assert np.array_equal(default, as_it_is)
    assert not np.array_equal(default, mirrored)
    # Tiled and blended, the border is still the picture's own edge.
    blended = cpu_upscalers(FAST, tile=32).upscale(image)
    assert psnr(default, blended) > psnr(mirrored, blended) + 10


def test_blended_tiles_with_context_wider_than_the_picture_give_the_whole_picture(cpu_upscalers):
    # 20 px of context around 32 px tiles of a 33 px wide picture: each window is the
    # whole width (no border is mirrored beyond it). That raised an IndexError.
    image = picture(40, 33, seed=6)
    whole = cpu_upscalers(FAST, tile=0).upscale(image)
    wide = cpu_upscalers(FAST, tile=32, tile_pad=20, overlap=16).upscale(image)
    assert np.array_equal(wide, whole)


def test_every_window_of_a_blended_run_has_one_shape_so_ncnn_reuses_its_buffers(monkeypatch):
    shapes = []
    real_run = network_mod.Network.run

    def spy(self, image, keep=None):
        shapes.append(image.shape)
        return real_run(self, image, keep)

    monkeypatch.setattr(network_mod.Network, "run", spy)
    image = picture(75, 110)  # tiles of 32 leave uneven last tiles on both axes
    Upscaler(FAST, device=-1, tile=32).upscale(image)
    assert len(shapes) == 12 and len(set(shapes)) == 1
    shapes.clear()
    Upscaler(FAST, device=-1, tile=32).upscale(picture(40, 40))  # a second call, another picture
    assert len(set(shapes)) == 1



def test_bf16_stays_within_50_db_of_fp32_and_really_changes_the_numbers():
    image = picture(24, 24)
    fp32 = Upscaler(FAST, device=-1, precision="fp32").upscale(image)
    bf16 = Upscaler(FAST, device=-1, precision="bf16").upscale(image)
    assert not np.array_equal(fp32, bf16)
    assert psnr(fp32, bf16) >= 50


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_pictures_of_new_sizes_do_not_pile_up_ncnn_buffers():
    # ncnn's pools keep every buffer and reuse one only for a run of about its size;
    # the engine empties them when a picture of another size comes, so memory
    # follows the current picture, not every size seen so far.
    up = Upscaler(FAST, device=-1, tile=0)  # one window per picture: each size a new shape
    loaded = resident_mb()
    grown = []
    for size in (190, 170, 150, 130, 110):
        up.upscale(picture(size, size - 20, seed=size))
        grown.append(resident_mb() - loaded)
    assert grown[-1] < 0.7 * grown[0]


def test_memory_goes_back_after_a_big_picture(monkeypatch):
    monkeypatch.setattr(engine_mod, "TRIM_AFTER_OUTPUT_BYTES", 0)  # every picture counts as big
    up = Upscaler(FAST, device=-1, tile=64)
    loaded = resident_mb()
    up.upscale(picture(150, 130))
    assert resident_mb() - loaded < 15


@pytest.mark.parametrize("channels", [3, 4])
def test_resizing_holds_one_channel_in_float_at_a_time(channels):
    # A whole float copy of a 16000x12000 result took 2.3 GB. tracemalloc sees numpy's
    # arrays, not Pillow's buffers: this bounds numpy's share, which the estimate the
    # engine checks the memory with must cover (docs/benchmarks.md has the RSS).
    import tracemalloc
    image = picture(300, 400, channels)
    tracemalloc.start()
    try:
        resize(image, 500, 700)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole_float_copy = (300 * 400 + 2 * 500 * 700) * channels * 4
    assert peak < resize_bytes((300, 400), 500, 700, channels, 1) < whole_float_copy


def test_calls_at_once_on_the_cpu_split_the_cores_unless_told_otherwise():
    # What a GPU lane falling back to the CPU gets: with ncnn's default every call took
    # every core, beside any CPU lane's workers.
    shared = Upscaler("realesr-animevideov3-x2", device=-1, concurrency=2)
    assert shared._net._net.opt.num_threads == max(1, os.cpu_count() // 2)
    told = Upscaler("realesr-animevideov3-x2", device=-1, concurrency=2, threads=3)
    assert told._net._net.opt.num_threads == 3


# --- found by a bug hunt of the library's arguments ----------------------------------


def test_more_threads_than_any_machine_has_is_an_input_error_not_a_crash():
    # 100000 threads segfaulted in the first run, 65535 ended the process with status
    # 1 and no word, 2**31 was a bare TypeError from the ncnn binding.
    for threads in (100000, 2**31):
        with pytest.raises(InputError, match="threads must be 1 to 1024"):
            Upscaler(FAST, device=-1, threads=threads)


def test_numpy_integers_of_small_types_do_not_overflow_in_the_tile_arithmetic():
    # Each raised OverflowError (np.uint8(200) * 2, say) in the first upscale.
    for kwargs in ({"tile": np.uint8(200)}, {"tile_pad": np.uint8(200)}, {"overlap": np.int8(100), "tile": np.int8(64)},
                   {"concurrency": np.uint8(2)}):
        up = Upscaler("realesr-animevideov3-x2", device=-1, **kwargs)
        assert up.upscale(picture(70, 70)).shape == (140, 140, 3)


def test_a_numpy_integer_device_is_an_index():
    # Refused before as "must be 'auto', an index or a Device, got np.int64(-1)".
    assert Upscaler("realesr-animevideov3-x2", device=np.int64(-1)).device.index == -1


@pytest.mark.parametrize("kwargs", [{"tta": "no"}, {"exact": "no"}, {"tta": None}, {"exact": 0}])
def test_switches_that_are_not_true_or_false_are_input_errors(kwargs):
    # tta="no" was taken as true: eight runs per tile, without a word.
    with pytest.raises(InputError, match="must be True or False"):
        Upscaler(FAST, device=-1, **kwargs)


@pytest.mark.parametrize("kwargs", [{"tile": None}, {"concurrency": None}, {"model_path": 5},
                                    {"model_path": ["/tmp"]}])
def test_options_of_other_types_are_input_errors_not_type_errors(kwargs):
    with pytest.raises(InputError):
        Upscaler(FAST, device=-1, **kwargs)


def test_a_progress_that_is_no_function_is_an_input_error_before_any_work(cpu_upscalers, monkeypatch):
    # It was a TypeError from the first tile, after that tile's work.
    up = cpu_upscalers(FAST)
    monkeypatch.setattr(up, "_upscale_native", lambda *a: pytest.fail("ran"))
    with pytest.raises(InputError, match="progress must be a function"):
        up.upscale(picture(8, 8), progress=5)


class _Report:
    def __call__(self, done, total, *more):
        pass


def test_a_progress_that_cannot_take_done_and_total_is_a_setting_error_before_any_work(cpu_upscalers, monkeypatch):
    # found by a library audit: progress=lambda: ... (or a one-argument function) was a
    # bare TypeError ("takes 0 positional arguments but 2 were given") from the first
    # tile, after that tile's work, which on the CPU can be minutes.
    up = cpu_upscalers(FAST)
    # Whatever can be called with (done, total) still runs, as may a builtin, whose
    # arguments cannot be looked at.
    for fine in (lambda done, total: None, lambda *a: None, lambda done, total, extra=1: None, _Report(),
                 functools.partial(lambda what, done, total: None, "x"), print):
        assert up.upscale(picture(4, 4), progress=fine).shape == (4 * up.scale, 4 * up.scale, 3)
    monkeypatch.setattr(up, "_upscale_native", lambda *a: pytest.fail("ran"))
    for wrong, said in ((lambda: None, "too many positional arguments"),
                        (lambda done: None, "too many positional arguments"),
                        (lambda done, total, what: None, "missing a required argument: 'what'"),
                        (lambda *, done, total: None, "too many positional arguments")):
        with pytest.raises(SettingError) as refused:
            up.upscale(picture(8, 8), progress=wrong)
        assert str(refused.value).startswith("progress must be a function of (done, total), got "), refused.value
        assert str(refused.value).endswith(f": {said}"), refused.value
        assert "\n" not in str(refused.value)


def test_closing_from_inside_a_call_returns_and_frees_the_networks_when_the_call_ends():
    # close() in a progress callback waited for the call it was called from: a hang.
    up = Upscaler("realesr-animevideov3-x2", device=-1, tile=32)
    results = []

    def work():
        results.append(up.upscale(picture(70, 70), progress=lambda done, total: up.close()).shape)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and results == [(140, 140, 3)]
    assert up._net._net is None and up._alpha_net._net is None  # freed once the call ended
    with pytest.raises(InputError, match="this Upscaler is closed"):
        up.upscale(picture(4, 4))


@pytest.mark.parametrize("field", ["input_blob", "output_blob"])
def test_a_model_spec_with_a_wrong_blob_name_is_a_model_error_not_a_lack_of_memory(field):
    import dataclasses

    from ncnn_sr.errors import ModelError
    from ncnn_sr.models import resolve_model

    bad = dataclasses.replace(resolve_model("realesr-animevideov3-x2"), **{field: "nope"})
    with pytest.raises(ModelError, match="no (input )?blob 'nope'"):
        Upscaler(bad, device=-1).upscale(np.zeros((20, 20, 3), np.uint8))


@pytest.mark.parametrize("size, kwargs, wanted", [
    ((3, 3), {"scale": 1.5}, (5, 5)),  # 4.5: round() gave 4
    ((5, 5), {"scale": 1.5}, (8, 8)),  # 7.5
    ((25, 25), {"scale": 0.58}, (15, 15)),  # 14.5 as written; as floats 14.499999999999998
    ((2, 4), {"out_width": 5}, (3, 5)),  # a height of 2.5: round() gave 2
    ((4, 2), {"out_height": 5}, (5, 3)),  # a width of 2.5
    ((2, 5), {"out_width": 3}, (1, 3)),  # a height of 1.2: below the half
    ((6, 2), {"out_height": 9}, (9, 3)),  # a width of 3 exactly
])
def test_a_side_halfway_between_two_sizes_rounds_up(size, kwargs, wanted):
    # (height, width) in and out
    assert target_size(*size, **kwargs) == wanted


@pytest.mark.parametrize("size, kwargs, said", [
    ((4, 5), {"scale": 1e-300}, "a 5x4 picture at scale 1e-300 would be under 1 pixel a side: give a scale of at "
                                "least 0.125"),
    ((4, 5), {"scale": 0.12}, "a 5x4 picture at scale 0.12 would be under 1 pixel tall: give a scale of at least "
                              "0.125"),
    ((1000, 6), {"scale": 0.05}, "a 6x1000 picture at scale 0.05 would be under 1 pixel wide: give a scale of at "
                                 "least 0.0834"),
    ((10, 1000), {"out_width": 1}, "a 1000x10 picture 1 pixel wide would be under 1 pixel tall: give a height "
                                   "too, to stretch it"),
    ((1000, 10), {"out_height": 10}, "a 10x1000 picture 10 pixels tall would be under 1 pixel wide: give a width "
                                     "too, to stretch it"),
])
def test_a_side_that_would_round_to_nothing_is_refused_not_made_1_pixel(size, kwargs, said):
    # -s 1e-300 wrote a 1x1 picture without a word.
    with pytest.raises(InputError) as refused:
        target_size(*size, **kwargs)
    assert str(refused.value) == said


def test_the_least_scale_a_refusal_gives_is_taken():
    assert target_size(4, 5, scale=0.125) == (1, 1)
    assert target_size(1000, 6, scale=0.0834) == (83, 1)  # 6 x 1/12, rounded up to 3 digits


def test_an_upscalers_repr_names_its_model_scale_device_and_state():
    # found by a bug hunt: <ncnn_sr.engine.Upscaler object at 0x7f...>, in a log or a
    # debugger, told nothing about which model ran where
    up = Upscaler("realesr-animevideov3-x2", device=-1, tile=64, tta=True)
    assert repr(up) == "<Upscaler 'realesr-animevideov3-x2' x2 on CPU tile=64 tta>"
    up.close()
    assert repr(up).endswith(" closed>")
    assert repr(Upscaler.__new__(Upscaler)) == "<Upscaler ?>"  # a constructor that failed half way


def test_an_upscalers_repr_names_the_settings_given_otherwise_than_by_default():
    # found by a library audit: two Upscalers of one model, one with alpha="model",
    # fp32 and the reference tiling, had the same repr in a log line
    up = Upscaler("realesr-animevideov3-x2", device=-1, alpha="model", precision="fp32", threads=1, tile_pad=10)
    assert repr(up) == ("<Upscaler 'realesr-animevideov3-x2' x2 on CPU tile=auto alpha=model precision=fp32 "
                        "threads=1 tile_pad=10 overlap=0>")
    up.close()
    up = Upscaler("realesr-animevideov3-x2", device=-1, overlap=4, exact=False)
    assert repr(up) == "<Upscaler 'realesr-animevideov3-x2' x2 on CPU tile=auto overlap=4 exact=False>"
    up.close()


def test_closing_twice_does_nothing_and_an_unclosed_upscaler_is_freed_when_collected(capfd):
    import gc
    import weakref

    up = Upscaler(FAST, device=-1)
    up.upscale(picture(8, 8))
    up.close()
    up.close()
    left = Upscaler(FAST, device=-1)
    left.upscale(picture(8, 8, channels=4))
    gone = weakref.ref(left)
    del left
    gc.collect()
    assert gone() is None
    assert capfd.readouterr().err == ""  # no word from ncnn's pools


def test_a_ctrl_c_as_a_run_ends_leaves_no_buffer_of_the_pools_behind(tmp_path):
    # found by a bug hunt: Ctrl-C during `ncnn-sr convert`'s trial run, as the output
    # was copied, kept ncnn's output Mat alive in the traceback; the pools freed under
    # it printed "FATAL ERROR! pool allocator destroyed too early", and the process
    # died of a segfault as it exited
    import subprocess
    import sys

    script = f"""
import numpy as np
from ncnn_sr import devices, network
from ncnn_sr.models import resolve_model
spec = resolve_model({FAST!r})
net = network.Network(str(spec.param_path), str(spec.bin_path), devices.CPU, spec.input_blob, spec.output_blob)
def interrupted(*args, **kwargs):
    raise KeyboardInterrupt
network.np.array, real = interrupted, network.np.array
try:
    net.extract({{spec.input_blob: np.zeros((3, 8, 8), np.float32)}}, spec.output_blob)
except KeyboardInterrupt:
    network.np.array = real
    net.release()
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_exiting_while_a_daemon_thread_upscales_does_not_kill_the_process():
    # found by a bug hunt: ncnn was still running in the thread as the process went
    # down, which died in std::terminate (SIGABRT) four times in six
    from conftest import exit_while_upscaling

    for _ in range(3):
        proc = exit_while_upscaling(-1, 200, 0.5)
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_second_ctrl_c_while_python_exits_waits_for_the_window_without_a_traceback():
    # found by a Ctrl-C audit: Python's exit waits for the window the first Ctrl-C
    # came in (ncnn cannot stop it); a second one meanwhile came out of that wait as
    # "Exception ignored in atexit callback" and a traceback, and on Vulkan the
    # instance was torn down under the window: SIGSEGV (see test_vulkan.py)
    from conftest import ctrl_c_twice_as_python_exits

    # One thread: a window of seconds on any machine.
    proc = ctrl_c_twice_as_python_exits(-1, 400, threads=1)
    assert proc.stdout == "interrupted\nsecond Ctrl-C while ncnn ran\n", proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == EXIT_WAIT_SAID


EXIT_WAIT_SAID = "Python exits once ncnn has finished the window it is running: ncnn cannot stop one midway\n"


@pytest.mark.parametrize("duplicate", ["pickle", "copy", "deepcopy"])
def test_an_upscaler_refuses_to_be_copied_or_pickled_in_one_line(duplicate, cpu_upscalers):
    # found by a bug hunt: pickle (a multiprocessing Pool's argument) raised a bare
    # "cannot pickle '_thread.lock' object", and copy.copy shared the network with
    # its own count of running calls: closing the copy freed the network under the
    # original, whose next upscale died in an AttributeError
    import copy
    import pickle

    up = cpu_upscalers(FAST)
    do = {"pickle": pickle.dumps, "copy": copy.copy, "deepcopy": copy.deepcopy}[duplicate]
    with pytest.raises(InputError, match=r"^an Upscaler cannot be copied or pickled: .*one per process") as e:
        do(up)
    assert "\n" not in str(e.value)
    assert up.upscale(picture(4, 4)).shape == (16, 16, 3)


@pytest.mark.parametrize("args, kwargs, said", [
    (("a", 3), {}, "height must be a whole number of pixels, at least 1, got 'a'"),
    ((None, 3), {}, "height must be a whole number of pixels, at least 1, got None"),
    ((10.5, 3), {}, "height must be a whole number of pixels, at least 1, got 10.5"),
    ((-5, 3), {}, "height must be a whole number of pixels, at least 1, got -5"),
    ((3, 0), {}, "width must be a whole number of pixels, at least 1, got 0"),
    ((3, 3), {"calls": -1}, "calls must be a whole number, at least 1, got -1"),
    ((3, 3), {"calls": 0}, "calls must be a whole number, at least 1, got 0"),
    ((3, 3), {"calls": "2"}, "calls must be a whole number, at least 1, got '2'"),
])
def test_runs_whole_refuses_sizes_and_counts_of_the_wrong_kind(args, kwargs, said, cpu_upscalers):
    # found by a bug hunt: bare TypeError and ValueError ("math domain error"), or an
    # answer for a picture of -5 rows
    with pytest.raises(InputError) as refused:
        cpu_upscalers(FAST).runs_whole(*args, **kwargs)
    assert str(refused.value) == said


def one_window(up: Upscaler, height: int, width: int) -> bool:
    """Whether ``up`` ran a ``height`` × ``width`` picture as one window, as its
    progress tells: blended windows, tiles and a staged run's windows and pieces
    are each told, one window alone as (1, 1)."""
    told = []
    up.upscale(np.zeros((height, width, 3), np.uint8), progress=lambda done, total: told.append((done, total)))
    return told == [(1, 1)]


@pytest.mark.parametrize("tile, memory, overlap", [(32, None, None), (48, None, None), (64, None, None),
                                                   (32, None, 0), (0, 1 << 20, None), (0, 4 << 20, None),
                                                   (0, 16 << 20, None)])
def test_runs_whole_says_whether_upscale_runs_one_window(tile, memory, overlap, monkeypatch):
    # found by a library audit: with tile=32 (or an automatic 32 px tile) a 40x40
    # picture ran as one blended window, its windows grown to the whole picture, where
    # runs_whole said False; the CLI kept two CPU workers for frames one worker ran whole.
    if memory is not None:  # an automatic tile of 32 to 64 px for these pictures
        monkeypatch.setattr(engine_mod.budget, "available_memory", lambda: memory)
    sizes = (8, 24, 40, 56, 72, 88)
    with Upscaler("realesr-animevideov3-x2", device=-1, threads=1, tile=tile, overlap=overlap) as up:
        said = {(h, w): up.runs_whole(h, w) for h in sizes for w in sizes}
        ran = {(h, w): one_window(up, h, w) for h in sizes for w in sizes}
    assert said == ran
    assert any(ran.values()) and not all(ran.values())


@pytest.mark.parametrize("exact, whole", [(None, False), (False, True)])
def test_runs_whole_says_false_for_a_staged_run_and_true_for_its_blended_window(exact, whole):
    # 32 px tiles of a 40x40 picture: RRDBNet's staged run goes window by window over
    # the trunk, where without stages its blended windows grow to one.
    with Upscaler("realesrgan-x4plus-anime", device=-1, threads=1, tile=32, exact=exact) as up:
        assert up.runs_whole(40, 40) is one_window(up, 40, 40) is whole


# A process forked after ncnn ran inherits its OpenMP runtime without the threads and its
# Vulkan instance without the driver's state: ncnn waited there for ever. Each script runs
# in a fresh Python, so that this test process's own ncnn plays no part.
FORK_SCRIPT = """
import os, signal, sys
import numpy as np
from ncnn_sr import Upscaler, NcnnSrError, list_devices
img = np.zeros((16, 16, 3), np.uint8)
{parent}
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hang shows as a child killed by SIGALRM
    try:
        {child}
        print("child ran", flush=True)
    except NcnnSrError as e:
        print("child refused:", type(e).__name__, e, flush=True)
    {child_exit}
_, status = os.waitpid(pid, 0)
print("child status", status, flush=True)
"""


def run_forked(parent: str, child: str, child_exit: str = "os._exit(0)") -> str:
    import subprocess
    import sys

    script = FORK_SCRIPT.format(parent=parent, child=child, child_exit=child_exit)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_an_upscaler_made_before_a_fork_is_refused_in_the_child():
    out = run_forked("up = Upscaler('realesr-animevideov3-x2', device=-1, threads=1); up.upscale(img)",
                     "up.upscale(img)")
    assert "child refused: InputError this Upscaler was made in another process" in out
    assert "child status 0" in out


def test_a_threaded_cpu_upscaler_is_refused_in_a_child_forked_after_ncnn_ran_threads():
    parent = "Upscaler('realesr-animevideov3-x2', device=-1, threads=2).upscale(img)"
    out = run_forked(parent, "Upscaler('realesr-animevideov3-x2', device=-1, threads=2).upscale(img)")
    assert "child refused: DeviceError ncnn ran OpenMP threads in the parent of this forked process" in out
    assert "child status 0" in out
    # One thread starts none, and runs.
    out = run_forked(parent, "Upscaler('realesr-animevideov3-x2', device=-1, threads=1).upscale(img)")
    assert "child ran" in out and "child status 0" in out


def test_a_ctrl_c_while_a_model_loads_ends_the_load_at_the_next_read(monkeypatch):
    # ncnn holds the GIL while it loads a model: a Ctrl-C waited for the whole load.
    from ncnn_sr.devices import CPU
    assert load_interrupted(monkeypatch, CPU) <= 4


def test_weights_that_cannot_be_opened_say_why(tmp_path):
    from ncnn_sr.devices import CPU
    from ncnn_sr.models import resolve_model
    spec = resolve_model(FAST)
    with pytest.raises(ModelError, match=r"could not load the weights in .*gone\.bin \(No such file or directory\)$"):
        network_mod.Network(str(spec.param_path), str(tmp_path / "gone.bin"), CPU, spec.input_blob, spec.output_blob)


def test_a_library_user_s_own_signal_handler_stays_in_place_while_a_model_loads(monkeypatch):
    # The load held SIGTERM and SIGHUP whatever their handlers: a program's own SIGTERM
    # handler was set aside, and its SIGTERM came out of Upscaler() as a KeyboardInterrupt.
    import signal
    from ncnn_sr.devices import CPU
    from ncnn_sr.models import resolve_model

    def mine(signum, frame):
        pass
    previous = signal.signal(signal.SIGTERM, mine)
    seen, read = [], network_mod._WeightsReader.read

    def noting(self, buf, size):
        seen.append((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)))
        return read(self, buf, size)
    monkeypatch.setattr(network_mod._WeightsReader, "read", noting)
    spec = resolve_model(FAST)
    try:
        network_mod.Network(str(spec.param_path), str(spec.bin_path), CPU, spec.input_blob, spec.output_blob)
    finally:
        signal.signal(signal.SIGTERM, previous)
    term, interrupt = seen[0]
    assert term is mine  # left alone
    assert interrupt is not signal.default_int_handler  # Python's Ctrl-C, held


@pytest.mark.parametrize("given", [{"tile": 16}, {"threads": 0}, {"precision": "fp8"}, {"alpha": "none"},
                                   {"tile_pad": -1}, {"overlap": 10**6}, {"concurrency": 0}, {"tta": "no"},
                                   {"device": 1.5}, {"model_path": 3}, {"exact": True, "overlap": 0},
                                   # numpy's "truth value of an array is ambiguous" ValueError
                                   {"precision": np.array(["fp32", "bf16"])}, {"alpha": np.zeros(3)}])
def test_an_upscalers_bad_setting_is_a_setting_error_a_value_error(given):
    # It was a plain InputError, where Lane's, Pipeline's and EncodeOptions' are ValueErrors too.
    with pytest.raises(SettingError) as caught:
        Upscaler("realesr-animevideov3-x2", **{"device": -1, **given}).close()
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InputError)


@pytest.mark.parametrize("name, said", [
    ("model", "model must be a name, a .param path or a ModelSpec"),
    ("device", "device must be 'auto', an index or a Device"),
    ("model_path", "model_path must be a folder's path"), ("tile", "tile must be a whole number"),
    ("threads", "threads must be a whole number"), ("tta", "tta must be True or False"),
    ("precision", "precision must be one of default, fp32, bf16"), ("alpha", "alpha must be one of bicubic, model")])
def test_an_upscalers_setting_given_an_array_is_named_by_its_type_on_one_line(name, said):
    # An array in a setting's place was printed whole, over many lines.
    with pytest.raises(SettingError) as refused:
        Upscaler(**{"model": "realesr-animevideov3-x2", "device": -1, name: np.zeros((9, 9))})
    assert str(refused.value) == f"{said}, got an object of type ndarray"


@pytest.mark.parametrize("change", ["set", "del"])
@pytest.mark.parametrize("name, argument", [("tta", "tta"), ("alpha", "alpha"), ("tile_pad", "tile_pad"),
                                            ("overlap", "overlap"), ("spec", "model")])
def test_an_upscalers_setting_fixed_when_made_refuses_a_change(cpu_upscalers, name, argument, change):
    # found by a check of the library's faults: up.tta = "no" turned TTA on unchecked,
    # and a tile_pad set later skipped its rounding to the network's blocks and its
    # cut to the network's reach. Calls read these throughout, from any thread. A del
    # (found by a library audit) was an AttributeError whose whole message was
    # "__delete__", where setting it says what to do instead.
    up = cpu_upscalers("realesr-animevideov3-x2")
    before = getattr(up, name)
    with pytest.raises(AttributeError) as refused:
        setattr(up, name, before) if change == "set" else delattr(up, name)
    assert str(refused.value) == (f"this Upscaler's {name} is fixed when it is made: "
                                  f"make another with {argument}=")
    assert getattr(up, name) is before


@pytest.mark.parametrize("name", ["model", "device", "precision", "exact", "threads", "concurrency", "model_path"])
def test_an_upscalers_other_arguments_set_later_are_refused_not_taken_without_effect(cpu_upscalers, name):
    # found by a check of the README's claims: up.precision = "fp32" made an attribute
    # nothing reads, and the calls went on in the precision it was made with, without
    # a word (up.device's refusal said only that a property has no setter)
    up = cpu_upscalers("realesr-animevideov3-x2")
    with pytest.raises(AttributeError) as refused:
        setattr(up, name, "fp32")
    assert str(refused.value) == f"this Upscaler's {name} is fixed when it is made: make another with {name}="
    assert name not in vars(up)


@pytest.mark.parametrize("name, said", [
    ("scale", "this Upscaler's scale is its model's: give upscale() a scale= for results of another size, "
              "or make another with another model="),
    ("alignment", "this Upscaler's alignment is its model's: make another with another model="),
    ("stages", "this Upscaler's stages follows from how it was made: make another with exact= (or overlap=)"),
    ("closed", "this Upscaler's closed is read back only: close() closes it")])
def test_an_upscalers_attributes_that_are_no_arguments_say_what_to_do_when_set(cpu_upscalers, name, said):
    # found by a check of the library's faults: up.scale = 2 was Python's own "property
    # 'scale' of 'Upscaler' object has no setter", where every setting fixed when it is
    # made says what to do instead.
    up = cpu_upscalers("realesr-animevideov3-x2")
    before = getattr(up, name)
    with pytest.raises(AttributeError) as refused:
        setattr(up, name, before)
    assert str(refused.value) == said
    assert getattr(up, name) == before and name not in vars(up)


def test_every_public_attribute_of_an_upscaler_that_cannot_be_set_says_why(cpu_upscalers):
    # So that one added later cannot fall back on Python's "has no setter".
    up = cpu_upscalers("realesr-animevideov3-x2")
    for name, held in vars(Upscaler).items():
        if not name.startswith("_") and isinstance(held, property) and held.fset is None:
            with pytest.raises(AttributeError) as refused:
                setattr(up, name, getattr(up, name))
            assert str(refused.value).startswith(f"this Upscaler's {name} "), name
            assert "setter" not in str(refused.value), name


@pytest.mark.parametrize("name, said", [
    ("tiles", "this Upscaler has no setting 'tiles': did you mean 'tile'?"),
    ("Tile", "this Upscaler has no setting 'Tile': did you mean 'tile'?"),
    ("precison", "this Upscaler has no setting 'precison': did you mean 'precision'?"),
    ("colour", "this Upscaler has no setting 'colour' (only its tile may be set once it is made)")])
def test_an_upscalers_setting_it_does_not_have_is_refused_with_the_one_meant(cpu_upscalers, name, said):
    # found by a check of the library's settings: up.tiles = 64, meant for tile, made an
    # attribute nothing reads, and the calls went on with the tile it had, without a word.
    up = cpu_upscalers("realesr-animevideov3-x2")
    with pytest.raises(AttributeError) as refused:
        setattr(up, name, 64)
    assert str(refused.value) == said and name not in vars(up) and up.tile == 0


def test_an_upscalers_private_names_and_a_subclasss_own_may_still_be_set():
    class Labelled(Upscaler):
        label = None  # declared here: a subclass's own settings
        note: str

        @property
        def shown(self) -> str:
            return self._shown

        @shown.setter
        def shown(self, value: str) -> None:
            self._shown = value

    with Labelled("realesr-animevideov3-x2", device=-1) as up:
        up.label, up.note, up.shown, up._cache = "a", "b", "c", {}
        assert (up.label, up.note, up.shown, up._cache) == ("a", "b", "c", {})
        up.upscale = lambda image, **kw: image  # a method replaced, as tests and wrappers do
        with pytest.raises(AttributeError, match="^this Labelled has no setting 'labels': did you mean 'label'\\?$"):
            up.labels = "x"


@pytest.mark.parametrize("kind", ["U", "Unit", "Enhancer", "HDUpscaler"])
def test_a_subclasss_refusals_name_it_with_no_article_guessed_from_its_first_letter(kind):
    # An audit's: the article was chosen by the name's first letter, "an U has no
    # setting 'x'" (and "a HDUpscaler's", "an Unit's"), which a name's sound decides.
    made = type(kind, (Upscaler,), {"label": None})
    with made("realesr-animevideov3-x2", device=-1) as up:
        with pytest.raises(AttributeError) as refused:
            up.labels = "x"
        assert str(refused.value) == f"this {kind} has no setting 'labels': did you mean 'label'?"
        with pytest.raises(AttributeError) as refused:
            up.precision = "fp32"
        assert str(refused.value) == f"this {kind}'s precision is fixed when it is made: make another with precision="
        with pytest.raises(AttributeError) as refused:
            up.scale = 2
        assert str(refused.value).startswith(f"this {kind}'s scale is its model's: ")


@pytest.mark.parametrize("tile, said", [("64", "tile must be a whole number, got '64'"),
                                        (None, "tile must be a whole number, got None"),
                                        (True, "tile must be a whole number, got True"),
                                        (16, "tile size must be 0 (auto) or at least 32, got 16"),
                                        (-64, "tile size must be 0 (auto) or at least 32, got -64")])
def test_an_upscalers_tile_set_later_is_checked_as_the_constructor_checks_it(tile, said):
    up = Upscaler("realesr-animevideov3-x2", device=-1, tile=48)
    with up:
        with pytest.raises(SettingError) as refused:
            up.tile = tile
        assert str(refused.value) == said and up.tile == 48
        with pytest.raises(SettingError) as made:
            Upscaler("realesr-animevideov3-x2", device=-1, tile=tile)
        assert str(made.value) == said


def test_an_upscalers_tile_set_later_is_the_tile_of_its_next_calls():
    image = picture(40, 70)
    with Upscaler("realesr-animevideov3-x2", device=-1, tile=32, overlap=0) as up, \
            Upscaler("realesr-animevideov3-x2", device=-1, tile=64, overlap=0) as made_so:
        assert not up.runs_whole(40, 70)
        up.tile = np.int64(64)  # as the constructor, numpy's whole numbers too
        assert type(up.tile) is int and up.tile == 64 and not up.runs_whole(40, 70) and up.runs_whole(40, 64)
        assert np.array_equal(up.upscale(image), made_so.upscale(image))
        up.tile = 0
        assert up.runs_whole(40, 70)


@pytest.mark.parametrize("name, said", [("scale", "scale must be a number"),
                                        ("width", "width must be a whole number of pixels")])
def test_upscales_setting_given_an_array_is_named_by_its_type_on_one_line(cpu_upscalers, name, said):
    # An array in a setting's place was printed whole, over many lines.
    with pytest.raises(SettingError) as refused:
        cpu_upscalers("realesr-animevideov3-x2").upscale(picture(8, 8), **{name: np.zeros((9, 9))})
    assert str(refused.value) == f"{said}, got an object of type ndarray"


@pytest.mark.parametrize("given", [{"scale": -1}, {"scale": "2"}, {"width": 0}, {"scale": 2, "width": 8},
                                   {"progress": 5}])
def test_upscales_bad_setting_is_a_setting_error_a_value_error(cpu_upscalers, given):
    with pytest.raises(SettingError):
        cpu_upscalers("realesr-animevideov3-x2").upscale(picture(8, 8), **given)
    with pytest.raises(SettingError):
        cpu_upscalers("realesr-animevideov3-x2").runs_whole(0, 8)


def _own_ctrl_c(signum, frame):
    raise KeyboardInterrupt("a program's own")


@pytest.fixture
def sigint_handler(request):
    """Python's SIGINT handler, or a program's own that raises KeyboardInterrupt too."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    if request.param != "python's":
        signal.signal(signal.SIGINT, _own_ctrl_c)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sigint_handler", ["python's", "a program's own"], indirect=True)
def test_a_ctrl_c_comes_out_of_upscale_in_the_main_thread_while_the_network_still_runs(monkeypatch, sigint_handler):
    # found by a library user's check: a Ctrl-C landed while ncnn ran a window, and
    # Python raised it only once the window was done: 9 s after the Ctrl-C for a
    # 500x500 picture on 2 CPU threads, the whole picture being one window (Jupyter's
    # interrupt waited as long). The window cannot be stopped inside ncnn; the call's
    # caller need not wait for it. A program's own SIGINT handler waited for the window
    # still (12.7 s for a 10.7 s call of realesrgan-x4plus, the Ctrl-C at 3.2 s).
    import signal

    up = Upscaler("realesr-animevideov3-x2", device=-1, threads=1, tile=32)
    real, runs, inside, gate = network_mod.Network.run, [], threading.Event(), threading.Event()

    def run_then_wait(self, image, *args, **kwargs):
        runs.append(threading.get_ident())
        inside.set()
        try:
            if len(runs) == 1:
                os.kill(os.getpid(), signal.SIGINT)
            out = real(self, image, *args, **kwargs)
            if len(runs) == 1:
                gate.wait(60)  # the network still at work when the caller hears of the Ctrl-C
            return out
        finally:
            inside.clear()
    monkeypatch.setattr(network_mod.Network, "run", run_then_wait)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        up.upscale(picture(80, 80), progress=lambda done, total: seen.append(threading.get_ident()))
    assert inside.is_set() and runs[0] != threading.get_ident()
    gate.set()
    up.close()  # waits for nothing: the abandoned call frees the network as it ends
    for _ in range(600):
        if not up._running:
            break
        inside.wait(0.1)
    assert len(runs) == 1 and not seen  # stopped at its next tile, its progress unsaid
    with pytest.raises(InputError, match="closed"):
        up.upscale(picture(4, 4))


def _closes_within(up, seconds: float) -> bool:
    """Whether ``up.close()`` returns within ``seconds`` (a hang here would hang the run)."""
    closer = threading.Thread(target=up.close, daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


@pytest.mark.parametrize("exiting", [False, True])
def test_a_ctrl_c_before_the_helper_begins_the_work_leaves_nothing_counted(monkeypatch, exiting):
    # As the one out of Thread.start that hung CI: a Ctrl-C that lands once the call is
    # counted in, but before its work begins, left it counted for ever, and close()
    # (or the close as Python exits) waited for a call that would never end.
    up = Upscaler("realesr-animevideov3-x2", device=-1, threads=1, tile=32)
    real_run = engine_mod.interruptible.run

    def ctrl_c_first(work, progress, left):
        raise KeyboardInterrupt
    monkeypatch.setattr(engine_mod.interruptible, "run", ctrl_c_first)
    with pytest.raises(KeyboardInterrupt):
        up.upscale(picture(40, 40))
    monkeypatch.setattr(engine_mod.interruptible, "run", real_run)
    assert up._running == 0 and not up._callers
    assert up.upscale(picture(8, 8)).shape == (16, 16, 3)  # and it runs on
    up._exiting = exiting
    assert _closes_within(up, 30), "close() waited for a call whose work never began"


def test_a_call_whose_caller_left_before_its_work_began_does_not_run_it(monkeypatch):
    # The helper may be slow to start: by then its caller has counted the call out,
    # and its work must not run on a network close() may have freed.
    up = Upscaler("realesr-animevideov3-x2", device=-1, threads=1, tile=32)
    works, ran = [], []
    real_native = up._upscale_native

    def ctrl_c_before_the_helper_runs(work, progress, left):
        works.append(work)
        left()
        raise KeyboardInterrupt
    monkeypatch.setattr(engine_mod.interruptible, "run", ctrl_c_before_the_helper_runs)
    monkeypatch.setattr(up, "_upscale_native", lambda *a: ran.append(1) or real_native(*a))
    with pytest.raises(KeyboardInterrupt):
        up.upscale(picture(40, 40))
    up.close()
    with pytest.raises(engine_mod.interruptible.Abandoned):
        works[0](lambda done, total: None)  # the helper, late
    assert not ran and up._running == 0 and up._left == 0


def test_progress_runs_in_the_caller_s_thread_and_its_exception_stops_the_work():
    up = Upscaler("realesr-animevideov3-x2", device=-1, threads=1, tile=32)
    seen = []

    def stop_at_second(done, total):
        seen.append((threading.get_ident(), done, total))
        if done == 2:
            raise ValueError("enough")
    with pytest.raises(ValueError, match="enough"):
        up.upscale(picture(80, 80), progress=stop_at_second)  # 9 tiles
    assert seen == [(threading.get_ident(), 1, 9), (threading.get_ident(), 2, 9)]
    # Closed from its own progress, the call ends with its result; the networks go after.
    out = up.upscale(picture(64, 64), progress=lambda done, total: up.close())
    assert out.shape == (128, 128, 3)
    with pytest.raises(InputError, match="closed"):
        up.upscale(picture(4, 4))


def test_the_upscaler_s_help_states_the_default_overlap_it_blends():
    # help(Upscaler) named DEFAULT_OVERLAP alone, a constant its reader cannot see
    assert f"``DEFAULT_OVERLAP`` ({engine_mod.DEFAULT_OVERLAP}) pixels" in Upscaler.__doc__


def test_an_open_file_or_a_files_contents_as_the_model_or_its_folder_is_said_as_read_image_says_it(tmp_path):
    # They were "got <_io.BufferedReader name=...>" and "got <memory at 0x...>".
    (tmp_path / "m.param").write_text("7767517\n")
    with open(tmp_path / "m.param", "rb") as f, pytest.raises(SettingError) as refused:
        Upscaler(f, device=-1)
    assert str(refused.value) == ("model must be a name, a .param path or a ModelSpec, got an open file: give its "
                                  f"path, {f.name!r}")
    with pytest.raises(SettingError) as refused:
        Upscaler("realesr-animevideov3-x2", device=-1, model_path=memoryview(b"models"))
    assert str(refused.value) == ("model_path must be a folder's path, got 6 bytes (a memoryview): a file's contents? "
                                  "save them to a file and give its path")


@pytest.mark.parametrize("folder, said", [("nodir", "does not exist"), ("file", "is not a folder"),
                                          ("file/sub", "does not exist")])
@pytest.mark.parametrize("by", ["name", "path", "spec"])
def test_a_model_path_that_is_no_folder_is_refused_before_anything_loads(tmp_path, monkeypatch, folder, said, by):
    # found by a check of the library's settings: model_path="nodir" was passed over
    # for the next folder, and the installed realesrgan-x4plus ran without a word, where
    # both commands refuse -m nodir. Now refused whatever names the model, as -m is, by
    # resolve_model (the one check), before it looks the model up.
    from ncnn_sr import models as models_mod
    (tmp_path / "file").write_text("")
    spec = models_mod.resolve_model("realesr-animevideov3-x2")
    model = {"name": "realesr-animevideov3-x2", "path": str(spec.param_path), "spec": spec}[by]
    monkeypatch.setattr(models_mod, "_resolve", lambda *a: pytest.fail("looked the model up"))
    monkeypatch.setattr(models_mod, "check_files", lambda *a: pytest.fail("looked the model up"))
    monkeypatch.setattr(engine_mod.devices, "get_device", lambda *a: pytest.fail("looked the device up"))
    with pytest.raises(ModelError) as refused:
        Upscaler(model, device=-1, model_path=tmp_path / folder)
    assert str(refused.value) == f"model folder {tmp_path / folder} {said}"


def test_the_cpu_auto_tile_counts_a_custom_models_largest_blob(tmp_path, monkeypatch):
    # An x16 deconvolution to 64 maps (64 kB a pixel in float32), then a Pooling, which
    # the estimate does not know: custom models' 64 kB a pixel ran a 150x150 picture
    # whole. An x32 one of 64 maps peaked at 5.2 GB on 100x100, against the 1.5 GB cap.
    (tmp_path / "pooled.param").write_text(
        "7767517\n4 4\nInput data 0 1 data\nDeconvolution d 1 1 data a 0=64 1=16 3=16 6=49152\n"
        "Pooling p 1 1 a b 0=1 1=4 2=4\nConvolution c 1 1 b out 0=3 1=1 6=192\n")
    (tmp_path / "pooled.bin").write_bytes(bytes(4 + 4 * 49152) + struct.pack("<I", 0) + bytes(192 * 4))
    monkeypatch.setattr(engine_mod.devices.host_memory, "available_memory", lambda: 8 << 30)
    with Upscaler(str(tmp_path / "pooled.param"), device=-1) as up:
        assert up.spec.cpu_bytes_per_pixel == 64_000 and up.scale == 4
        tile = up._auto_tile(up._net, 150, 150)[0]
        assert 32 <= tile < 150
        assert up._auto_tile(up._net, 40, 40)[0] == 0


def test_a_custom_model_whose_block_probes_run_out_of_memory_is_said_to_not_blamed(tmp_path, monkeypatch):
    # The 33 to 64 px test runs of a model of no known scale failing for memory (an x32
    # deconvolution to 256 maps on the CPU under ulimit -v 2400000: ncnn error -100 for
    # each) was "upscales a 32x32 picture x4 but no picture of 33 to 64 pixels a side
    # likewise: not an upscaler", blaming the model.
    (tmp_path / "wide.param").write_text(
        "7767517\n5 5\nInput data 0 1 data\nDeconvolution d 1 1 data a 0=3 1=32 3=32 6=9216\n"
        "Convolution w 1 1 a b 0=4 1=1 6=12\nPooling p 1 1 b e 0=1 1=8 2=8\nConvolution c 1 1 e out 0=3 1=1 6=12\n")
    (tmp_path / "wide.bin").write_bytes(bytes(4 + 4 * 9216) + bytes(4 + 48) + bytes(4 + 48))
    run = network_mod.Network.run

    def short_of_memory(self, array):
        if array.shape[0] > 32:
            raise network_mod.NetFailure(f"ncnn error -100 on {self.device}", -100)
        return run(self, array)

    monkeypatch.setattr(network_mod.Network, "run", short_of_memory)
    with pytest.raises(DeviceError, match=r"^model wide: .*wide\.param could not be run on a 33x33 test picture: "
                                          r"CPU ran out of memory \(ncnn error -100 on CPU\)$"):
        Upscaler(str(tmp_path / "wide.param"), device=-1)


def test_upscale_takes_a_decimal_scale_as_the_same_fraction(cpu_upscalers):
    # found by a library audit: Decimal("1.5") was refused ("scale must be a number")
    # while Fraction(3, 2) was taken
    up, image = cpu_upscalers("realesr-animevideov3-x2"), picture(7, 9)
    out = up.upscale(image, scale=Decimal("1.5"))
    assert out.shape == (11, 14, 3) and np.array_equal(out, up.upscale(image, scale=Fraction(3, 2)))
    for wrong, said in ((Decimal("-1.5"), "scale must be a positive number, got -1.5"),
                        (Decimal("sNaN"), "scale must be a positive number, got sNaN"),
                        (Decimal("Infinity"), "scale must be a positive number, got Infinity"),
                        (True, "scale must be a number, got True")):
        with pytest.raises(SettingError) as refused:
            up.upscale(image, scale=wrong)
        assert str(refused.value) == said


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_device_is_refused_as_the_commands_empty_g_is(empty, monkeypatch):
    # found by a library audit: device="" ran on the automatic device, undocumented,
    # where ncnn-sr's -g "" is refused ("-g is empty"): a device read from an unset
    # variable ran wherever auto found, unsaid. (The drop-in's -g "" runs, as the
    # reference's does: its own rule, not the library's.)
    from ncnn_sr import devices

    monkeypatch.setattr(devices, "explain_auto", lambda: pytest.fail("looked for the auto device"))
    with pytest.raises(SettingError) as refused:
        Upscaler("realesr-animevideov3-x2", device=empty)
    assert str(refused.value) == ("device is empty: give auto, cpu, -1 or a device index (0 or gpu0), "
                                  f"got {empty!r}")
    with pytest.raises(devices.DeviceError) as refused:
        devices.get_device(empty)
    assert str(refused.value) == f"invalid gpu device {empty!r}: give auto, cpu, -1 or a device index (0 or gpu0)"


# realesrgan-x4plus on the CPU (2 threads), loaded under a loose cap on the address
# space, then run on a 64x64 picture under a cap argv[1] bytes past the process
# (ulimit -v): a digest of the result, or the error's words.
_UNDER_A_CAP = """
import hashlib, resource, sys
from conftest import picture
from ncnn_sr import DeviceError, Upscaler
def capped(room):
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:"))
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (held + room if hard < 0 else min(held + room, hard), hard))
capped(2 << 30)
up = Upscaler("realesrgan-x4plus", device=-1, threads=2)
capped(int(sys.argv[1]))
try:
    print(hashlib.sha256(up.upscale(picture(64, 64)).tobytes()).hexdigest())
    if len(sys.argv) > 2:  # then argv[2] bytes more, as a result's writing takes
        print(len(bytearray(int(sys.argv[2]))))
except (DeviceError, MemoryError) as e:
    print(f"{type(e).__name__}: {e}")
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_split_networks_head_takes_pieces_the_room_under_a_cap_holds(cpu_upscalers):
    # The head of realesrgan-x4plus (its 4x maps: 44-48 kB an input pixel) ran on
    # pieces of 48 px (50 with their context) whatever the room: under ulimit -v 630000
    # to 680000, 256x256 pictures ran 32 px tiles for 50-70 s, then the first piece of
    # 50x50 that did not fit ended it in "the CPU ran out of memory even with 32px
    # tiles". Smaller pieces give the same numbers (their context is the head's reach).
    import hashlib
    expected = hashlib.sha256(cpu_upscalers("realesrgan-x4plus", threads=2).upscale(picture(64, 64)).tobytes())
    proc = subprocess.run([sys.executable, "-c", _UNDER_A_CAP, str(90 << 20)], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).parent)
    assert (proc.returncode, proc.stdout) == (0, expected.hexdigest() + "\n"), (proc.stdout, proc.stderr)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_the_room_a_call_under_a_cap_took_is_given_back_for_its_results_writing():
    # ncnn's pools kept every buffer of the run until the next picture of another
    # size: under ulimit -v 620000 to 640000 a 256x256 picture ran through with
    # realesrgan-x4plus (80-110 s), then "writing a 1024x1024 picture as PNG needs
    # about 4.0 MB of memory beside the picture, more than the 692 kB this process may
    # still use". Here 40 MB after a picture that ran in 90 MB of room.
    proc = subprocess.run([sys.executable, "-c", _UNDER_A_CAP, str(90 << 20), str(40 << 20)], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).parent)
    assert proc.returncode == 0 and re.fullmatch(rf"[0-9a-f]{{64}}\n{40 << 20}\n", proc.stdout), \
        (proc.stdout, proc.stderr)


# realesr-animevideov3-x2 on the CPU (1 thread) run on 64x64 planes, then on 160x160
# ones under a cap with argv[1] bytes more room than those need alone, counting what
# the pools keep of the first run as room: "ran", or ncnn's error.
_POOLS_UNDER_A_CAP = """
import resource, sys
import numpy as np
from ncnn_sr import devices, models, network
spec = models.resolve_model("realesr-animevideov3-x2")
def size():
    return next(int(line.split()[1]) << 10 for line in open("/proc/self/status") if line.startswith("VmSize:"))
net = network.Network(str(spec.param_path), str(spec.bin_path), devices.CPU, spec.input_blob, spec.output_blob,
                      threads=1, name=spec.name)
rng = np.random.default_rng(0)
large, small = rng.random((3, 160, 160), dtype=np.float32), rng.random((3, 64, 64), dtype=np.float32)
before = size()
net.extract({spec.input_blob: large}, spec.output_blob)
need = size() - before
net.trim()
before = size()
net.extract({spec.input_blob: small}, spec.output_blob)
kept = size() - before
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (size() - kept + need + int(sys.argv[1]), hard))
try:
    net.extract({spec.input_blob: large}, spec.output_blob)
    print("ran")
except network.NetFailure as e:
    print(e)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's /proc for the process's size")
def test_a_cpu_run_out_of_memory_runs_again_with_the_pools_trimmed():
    # ncnn's pools keep the buffers of every shape run before: the 160x160 run, with
    # room for itself and 8 MB more once the 64x64 run's were given back, failed with
    # ncnn error -100.
    proc = subprocess.run([sys.executable, "-c", _POOLS_UNDER_A_CAP, str(8 << 20)], capture_output=True, text=True,
                          timeout=300)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), (proc.stdout, proc.stderr)


@pytest.mark.parametrize("room, trimmed", [(4 << 30, 0), (20 << 20, 1)])
def test_under_a_cap_the_pools_are_trimmed_only_where_its_room_is_short(room, trimmed, cpu_upscalers, monkeypatch):
    # Trimmed after every call under any cap, each small frame of a video run under
    # ulimit -v took its pools' buffers anew: 0.65 s a 320x180 frame of
    # realesr-animevideov3-x2 (2 threads) where 0.59 s without the cap.
    from ncnn_sr import budget
    up = cpu_upscalers("realesr-animevideov3-x2")
    up.upscale(picture(16, 16))
    calls = []
    monkeypatch.setattr(up, "_trim", lambda: calls.append(1))
    monkeypatch.setattr(budget, "cap_room", lambda: (room, "ulimit -v"))
    up.upscale(picture(16, 16))
    assert len(calls) == trimmed
