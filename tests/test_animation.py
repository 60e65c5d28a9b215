"""Animated pictures: every frame read as a viewer shows it."""
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import Blend, Disposal

from conftest import picture
from ncnn_sr import InputError, read_image
from ncnn_sr.animation import Animation, read_frames

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(colour, size=(8, 6), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def save_animation(path, frames, **options):
    frames[0].save(path, save_all=True, append_images=frames[1:], **options)
    return path


# --- reading -------------------------------------------------------------------------------

def test_gif_frames_that_change_a_corner_are_read_as_whole_pictures(tmp_path):
    # Pillow's GIF writer stores each frame's changed box alone; a viewer draws it
    # over the frame before.
    frames = [solid(RED), solid(RED), solid(RED)]
    frames[1].paste(BLUE, (0, 0, 2, 2))
    frames[2].paste(GREEN, (6, 4, 8, 6))
    anim, info = read_frames(save_animation(tmp_path / "a.gif", frames, duration=[10, 20, 30]))
    assert info.frames == 3 and anim.durations == (10, 20, 30)
    assert all(np.array_equal(got, np.asarray(want)) for got, want in zip(anim.frames, frames))


def test_apng_frames_blended_over_the_one_before_are_read_as_whole_pictures(tmp_path):
    over = solid((0, 0, 0, 0), mode="RGBA")
    over.paste((0, 0, 255, 255), (0, 0, 4, 3))
    path = save_animation(tmp_path / "a.png", [solid((*RED, 255), mode="RGBA"), over], duration=[50, 70],
                          blend=[Blend.OP_SOURCE, Blend.OP_OVER], disposal=[Disposal.OP_NONE, Disposal.OP_NONE])
    anim = read_frames(path)[0]
    want = np.full((6, 8, 3), RED, np.uint8)
    want[:3, :4] = BLUE
    assert anim.frames[1].shape == (6, 8, 3)  # every pixel opaque once blended
    assert np.array_equal(anim.frames[1], want) and anim.durations == (50, 70)


def test_gif_transparency_is_alpha_and_a_frame_disposed_to_the_background_is_clear_again(tmp_path):
    first = solid((0, 0, 0, 0), mode="RGBA")
    first.paste((*RED, 255), (0, 0, 4, 6))  # left half red
    second = solid((0, 0, 0, 0), mode="RGBA")
    second.paste((*BLUE, 255), (4, 0, 8, 6))  # right half blue, left clear again
    anim = read_frames(save_animation(tmp_path / "a.gif", [first, second], disposal=2))[0]
    assert anim.frames[0].shape == (6, 8, 4)
    assert anim.frames[1][0, 0, 3] == 0 and list(anim.frames[1][0, 7]) == [*BLUE, 255]


def test_webp_frames_are_read_as_they_were_written(tmp_path):
    frames = [Image.fromarray(picture(6, 8, seed=i)) for i in range(3)]
    anim = read_frames(save_animation(tmp_path / "a.webp", frames, duration=[40, 50, 60], lossless=True))[0]
    assert anim.durations == (40, 50, 60)
    assert all(np.array_equal(got, np.asarray(want)) for got, want in zip(anim.frames, frames))


def test_an_animation_with_transparency_in_a_later_frame_alone_is_rgba_throughout(tmp_path):
    later = solid((*GREEN, 255), mode="RGBA")
    later.paste((0, 0, 0, 0), (0, 0, 2, 2))
    anim = read_frames(save_animation(tmp_path / "a.png", [solid((*RED, 255), mode="RGBA"), later]))[0]
    assert [f.shape[2] for f in anim.frames] == [4, 4]
    assert anim.frames[0][:, :, 3].min() == 255 and anim.frames[1][0, 0, 3] == 0


@pytest.mark.parametrize("name, options, plays", [
    ("a.gif", {}, 1),  # no loop count: shown once
    ("a.gif", {"loop": 0}, 0),
    ("a.gif", {"loop": 2}, 3),  # a GIF counts the repeats
    ("a.png", {"loop": 3}, 3),
    ("a.png", {"loop": 0}, 0),
    ("a.webp", {"loop": 3}, 3),
    ("a.webp", {"loop": 0}, 0),
])
def test_how_often_an_animation_plays_is_read_as_showings(name, options, plays, tmp_path):
    anim = read_frames(save_animation(tmp_path / name, [solid(RED), solid(BLUE)], **options))[0]
    assert anim.plays == plays


def test_every_frame_is_turned_upright_as_the_exif_says(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90° clockwise to view
    frames = [Image.fromarray(picture(6, 8, seed=i)) for i in range(2)]
    path = save_animation(tmp_path / "a.webp", frames, lossless=True, exif=exif.tobytes())
    anim, info = read_frames(path)
    assert all(np.array_equal(got, np.rot90(np.asarray(f), -1)) for got, f in zip(anim.frames, frames))
    written = Image.Exif()
    written.load(info.exif)
    assert written[0x0112] == 1  # already applied


def test_an_apng_default_image_outside_the_animation_is_left_out(tmp_path):
    path = save_animation(tmp_path / "a.png", [solid((255, 255, 255)), solid(RED), solid(BLUE)],
                          default_image=True, duration=[10, 20])
    anim = read_frames(path)[0]
    assert [tuple(f[0, 0]) for f in anim.frames] == [RED, BLUE] and anim.durations == (10, 20)


def test_a_still_picture_is_one_frame_as_read_image_gives_it(tmp_path):
    arr = picture(6, 8, channels=1, dtype=np.uint16)
    Image.fromarray(arr[:, :, 0]).save(tmp_path / "grey.png")
    anim, info = read_frames(tmp_path / "grey.png")
    assert len(anim.frames) == 1 and np.array_equal(anim.frames[0], read_image(tmp_path / "grey.png")[0])
    assert anim.plays == 1 and info.frames == 1


def test_a_phone_mpo_is_one_frame(tmp_path):
    views = [Image.fromarray(picture(8, 8, seed=i)) for i in range(2)]
    views[0].save(tmp_path / "photo.jpg", format="MPO", save_all=True, append_images=views[1:])
    assert len(read_frames(tmp_path / "photo.jpg")[0].frames) == 1


def test_a_frame_broken_midway_is_an_input_error_naming_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), np.uint8)
    path = save_animation(tmp_path / "a.gif", [Image.fromarray(f) for f in noise])
    whole = path.read_bytes()
    (tmp_path / "cut.gif").write_bytes(whole[:int(len(whole) * 0.95)])  # into the last frame
    assert read_image(tmp_path / "cut.gif")[1].frames == 4  # the first frame alone reads
    with pytest.raises(InputError, match="cut.gif: broken or truncated picture"):
        read_frames(tmp_path / "cut.gif")


@pytest.mark.parametrize("frames, durations, plays, said", [
    ((), (), 0, "needs a sequence of one or more frames"),
    (np.zeros((2, 4, 4, 3), np.uint8), (0, 0), 0, "needs a sequence of one or more frames"),
    ((np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)), (0, 0), 0, "all be of one shape and dtype"),
    ((np.zeros((4, 4, 3), np.uint8),), (0, 0), 0, "one whole number of milliseconds"),
    ((np.zeros((4, 4, 3), np.uint8),), (-1,), 0, "one whole number of milliseconds"),
    ((np.zeros((4, 4, 3), np.uint8),), (1.5,), 0, "one whole number of milliseconds"),
    ((np.zeros((4, 4, 3), np.uint8),), (0,), -1, "plays must be a whole number"),
    ((np.zeros((4, 4, 3), np.float32),), (0,), 0, "expected uint8 or uint16"),
])
def test_an_animation_that_cannot_be_is_refused_in_words(frames, durations, plays, said):
    with pytest.raises(InputError, match=said):
        Animation(frames, durations, plays)
