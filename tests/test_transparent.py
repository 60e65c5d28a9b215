"""The colour under transparent pixels filled from the visible ones (transparent.py),
and the Upscaler's and the commands' use of it."""
import subprocess

import numpy as np
import pytest
from PIL import Image

from test_cli import installed
from ncnn_sr import Upscaler
from ncnn_sr.errors import SettingError
from ncnn_sr.transparent import filled

GREEN = (38, 209, 37)


def disc(side: int = 40, under=(0, 0, 0), dtype=np.uint8) -> np.ndarray:
    """A green disc with a soft edge on a transparent ground of colour ``under``."""
    yy, xx = np.mgrid[:side, :side]
    top = np.iinfo(dtype).max
    alpha = np.clip((side * 0.3 - np.hypot(yy - side / 2, xx - side / 2)) * 0.25 + 0.5, 0, 1)
    alpha = np.round(alpha * top).astype(dtype)[:, :, None]
    colour = np.empty((side, side, 3), dtype)
    colour[:] = np.array(GREEN, np.float64) / 255 * top
    colour[alpha[:, :, 0] == 0] = under
    return np.concatenate([colour, alpha], axis=2)


def test_one_colour_under_the_transparent_pixels_gives_way_to_the_visible_ones():
    picture = disc()
    colour, alpha = picture[:, :, :3], picture[:, :, 3:]
    out = filled(colour, alpha)
    assert out.dtype == np.uint8 and out.shape == colour.shape
    assert (out == GREEN).all()  # the only visible colour, everywhere
    assert (colour[alpha[:, :, 0] == 0] == 0).all()  # the picture itself untouched


def test_the_visible_pixels_keep_their_colour_and_the_fill_follows_the_nearest():
    colour = np.zeros((9, 12, 3), np.uint8)
    alpha = np.zeros((9, 12, 1), np.uint8)
    colour[:, :3], alpha[:, :3] = (200, 0, 0), 255
    colour[:, -3:], alpha[:, -3:] = (0, 0, 200), 40  # faint, but visible: kept
    out = filled(colour, alpha)
    assert (out[:, :3] == (200, 0, 0)).all() and (out[:, -3:] == (0, 0, 200)).all()
    assert (out[:, 3, 0] > out[:, 3, 2]).all() and (out[:, 8, 2] > out[:, 8, 0]).all()


@pytest.mark.parametrize("case", ["none hidden", "all hidden", "colours under them"])
def test_nothing_is_filled_where_there_is_nothing_to_fill_or_the_colours_may_be_data(case):
    picture = disc()
    if case == "none hidden":
        picture[:, :, 3] = 255
    elif case == "all hidden":
        picture[:, :, 3] = 0
    else:  # a texture whose alpha holds data: its colours there are its own
        picture[0, 0, :3] = (1, 2, 3)
    assert filled(picture[:, :, :3], picture[:, :, 3:]) is None


def test_sixteen_bit_and_grey_and_odd_sides_are_filled_alike():
    picture = disc(37, dtype=np.uint16)
    out = filled(picture[:, :, :3], picture[:, :, 3:])
    assert out.dtype == np.uint16 and (out == picture[18, 18, :3]).all()
    grey = disc(33)
    grey[:, :, :3] = np.where(grey[:, :, 3:] > 0, 90, 0)
    grey[1, 1, 3], grey[1, 1, :3] = 255, 200  # a second visible grey, far from the disc
    out = filled(grey[:, :, :3], grey[:, :, 3:])
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()


def visible_difference(up: Upscaler, under_a, under_b) -> int:
    a, b = up.upscale(disc(under=under_a)), up.upscale(disc(under=under_b))
    seen = a[:, :, 3] > 0
    assert (seen == (b[:, :, 3] > 0)).all()
    return int(np.abs(a[seen].astype(int) - b[seen]).max())


def test_an_upscaler_s_visible_output_does_not_depend_on_the_colour_under_the_transparent_pixels():
    with Upscaler("realesr-animevideov3-x2", device=-1) as up:
        assert up.fill_transparent is True
        assert visible_difference(up, (0, 0, 0), (255, 255, 255)) == 0


@pytest.mark.parametrize("settings", [{"fill_transparent": False}, {"tile_pad": 10}], ids=["asked", "reference"])
def test_kept_as_asked_or_under_the_reference_rule_the_colour_under_them_reaches_the_edges(settings):
    with Upscaler("realesr-animevideov3-x2", device=-1, **settings) as up:
        assert up.fill_transparent is False
        assert visible_difference(up, (0, 0, 0), (255, 255, 255)) > 20


def test_fill_transparent_is_true_or_false():
    with pytest.raises(SettingError, match="fill_transparent must be True or False, got 'no'"):
        Upscaler("realesr-animevideov3-x2", device=-1, fill_transparent="no")


def written(tmp_path, command: str, under, *flags) -> np.ndarray:
    src, out = tmp_path / f"in-{under[0]}.png", tmp_path / f"out-{under[0]}.png"
    Image.fromarray(disc(under=under)).save(src)
    subprocess.run([installed(command), "-i", str(src), "-o", str(out), "-n", "realesr-animevideov3", "-s", "2",
                    "-g", "-1", *flags], check=True, capture_output=True, timeout=300)
    return np.asarray(Image.open(out)).astype(int)


@pytest.mark.parametrize("command, flags, same", [("ncnn-sr", (), True), ("ncnn-sr", ("--keep-transparent",), False),
                                                  ("realesrgan-ncnn-vulkan", (), False)])
def test_the_commands_fill_the_colour_under_transparent_pixels_but_the_drop_in_and_when_kept(tmp_path, command,
                                                                                            flags, same):
    black, white = (written(tmp_path, command, under, *flags) for under in ((0, 0, 0), (255, 255, 255)))
    seen = black[:, :, 3] > 0
    assert (np.abs(black[seen] - white[seen]).max() == 0) == same
