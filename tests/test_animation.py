"""Animated pictures: every frame read as a viewer shows it."""
import io
import logging
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import Blend, Disposal

from conftest import adam7_rows, picture, png_bytes, png_chunk, png_data, stored_delays
from ncnn_sr import ImageInfo, InputError, read_image, write_image
from ncnn_sr import icc as icc_mod
from ncnn_sr.animation import Animation, read_frames, write_frames
from ncnn_sr.images import frame_count

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
    anim, info = read_frames(save_animation(tmp_path / "a.gif", frames, duration=[20, 30, 40]))
    assert info.frames == 3 and anim.durations == (20, 30, 40)
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


def apng_bytes(frames, default=None, depth=8, colour_type=6, chunks=()) -> bytes:
    """An APNG whose ``frames`` are (RGBA samples of the frame's box, left, top,
    dispose, blend, delay as (numerator, denominator)); the first is the default
    image, and sets the canvas size, unless ``default`` (RGBA samples of the canvas)
    is given apart, outside the animation. Samples of another ``depth`` and
    ``colour_type`` may be given, and ``chunks`` (tRNS...) go before the image data."""
    numbers = iter(range(2 * len(frames)))  # fcTL and fdAT share one sequence, in file order
    controls, later = [], b""
    for index, (samples, left, top, dispose, blend, (num, den)) in enumerate(frames):
        height, width = samples.shape[:2]
        control = png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", next(numbers), width, height, left, top, num, den,
                                                 dispose, blend))
        if index == 0 and default is None:
            controls.append(control)
        else:
            later += control + png_chunk(b"fdAT", struct.pack(">I", next(numbers)) + png_data(samples, depth))
    animation = png_chunk(b"acTL", struct.pack(">II", len(frames), 0))
    head = png_bytes(frames[0][0] if default is None else default, depth, colour_type, animation, *chunks, *controls)
    return head[:-12] + later + head[-12:]  # the later frames before IEND


@pytest.mark.parametrize("depth, level", [(2, 1), (4, 1), (16, 30000)])
def test_grey_apng_frames_keep_their_levels_and_their_transparent_grey(depth, level, tmp_path):
    # Pillow clipped 16-bit grey at 255 (every frame white), and matched a 2- or
    # 4-bit tRNS level against its 8-bit scaling of the levels (no pixel clear).
    top = (1 << depth) - 1
    first = np.array([[[0], [level], [top]]], np.uint16 if depth == 16 else np.uint8)
    path = tmp_path / "grey.png"
    path.write_bytes(apng_bytes([(first, 0, 0, KEEP, SOURCE, (5, 100)), (first[:, ::-1], 0, 0, KEEP, SOURCE, (5, 100))],
                                depth=depth, colour_type=0, chunks=[png_chunk(b"tRNS", struct.pack(">H", level))]))
    if depth == 16:  # read in 16 bits, as a still png is
        want = np.array([[[0, 0, 0, 65535], [level, level, level, 0], [65535, 65535, 65535, 65535]]], np.uint16)
    else:
        shown = round(level * 255 / top)
        want = np.array([[[0, 0, 0, 255], [shown, shown, shown, 0], [255, 255, 255, 255]]], np.uint8)
    anim = read_frames(path)[0]
    assert np.array_equal(anim.frames[0], want) and np.array_equal(anim.frames[1], want[:, ::-1])


def test_a_sixteen_bit_colour_apng_keeps_its_transparent_colour(tmp_path):
    # Pillow compares its 8-bit reading of the samples with the 16-bit tRNS colour:
    # no pixel matched, and the transparent colour showed opaque in every frame.
    first = np.array([[[1000, 5, 5], [30000, 200, 7], [65535, 65535, 65535]]], np.uint16)
    path = tmp_path / "colour.png"
    path.write_bytes(apng_bytes([(first, 0, 0, KEEP, SOURCE, (5, 100)), (first[:, ::-1], 0, 0, KEEP, SOURCE, (5, 100))],
                                depth=16, colour_type=2, chunks=[png_chunk(b"tRNS", struct.pack(">HHH", 30000, 200, 7))]))
    want = np.array([[[1000, 5, 5, 65535], [30000, 200, 7, 0], [65535, 65535, 65535, 65535]]], np.uint16)
    anim = read_frames(path)[0]
    assert np.array_equal(anim.frames[0], want) and np.array_equal(anim.frames[1], want[:, ::-1])


def box(colour, width, height) -> np.ndarray:
    return np.full((height, width, 4), colour, np.uint8)


KEEP, SOURCE, OVER = (Disposal.OP_NONE, Blend.OP_SOURCE, Blend.OP_OVER)


@pytest.mark.parametrize("under, top, shown", [
    ((*RED, 255), (*BLUE, 128), (127, 0, 128, 255)),  # as browsers show it, where Pillow gave alpha 191
    ((*RED, 128), (*BLUE, 128), (85, 0, 170, 192)),
    ((*RED, 128), (*BLUE, 0), (*RED, 128)),
    ((*RED, 0), (*BLUE, 64), (*BLUE, 64)),
])
def test_an_apng_frame_blended_over_is_drawn_over_the_canvas_through_its_alpha(under, top, shown, tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box(under, 4, 3), 0, 0, KEEP, SOURCE, (5, 100)),
                                         (box(top, 4, 3), 0, 0, KEEP, OVER, (7, 100))]))
    shown_at = read_frames(path)[0].frames[1][2, 3]
    assert tuple(shown_at) + (255,) * (4 - len(shown_at)) == shown  # RGB where every frame is opaque


def test_an_apng_box_disposed_to_the_background_is_clear_for_the_next_frame(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box((*RED, 255), 6, 4), 0, 0, KEEP, SOURCE, (5, 100)),
                                         (box((*GREEN, 128), 2, 2), 3, 1, Disposal.OP_BACKGROUND, OVER, (7, 100)),
                                         (box((*BLUE, 128), 1, 1), 0, 0, KEEP, OVER, (3, 0))]))
    anim = read_frames(path)[0]
    want = np.full((4, 6, 4), (*RED, 255), np.uint8)
    want[1:3, 3:5] = (127, 128, 0, 255)
    assert np.array_equal(anim.frames[1], want)
    want[1:3, 3:5] = 0
    want[0, 0] = (127, 0, 128, 255)
    assert np.array_equal(anim.frames[2], want)
    assert anim.durations == (50, 70, 30)  # a denominator of 0 is hundredths


def test_an_apng_box_disposed_to_the_previous_is_put_back_for_the_next_frame(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box((*RED, 255), 6, 4), 0, 0, KEEP, SOURCE, (5, 100)),
                                         (box((*GREEN, 128), 2, 2), 3, 1, Disposal.OP_PREVIOUS, OVER, (7, 100)),
                                         (box((*BLUE, 128), 1, 1), 0, 0, KEEP, OVER, (3, 100))]))
    anim = read_frames(path)[0]
    want = np.full((4, 6, 3), RED, np.uint8)
    want[1:3, 3:5] = (127, 128, 0)
    assert np.array_equal(anim.frames[1], want)
    want[1:3, 3:5] = RED
    want[0, 0] = (127, 0, 128)
    assert np.array_equal(anim.frames[2], want)


def test_an_apng_first_frame_disposed_to_the_previous_is_cleared_to_the_background(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box((*RED, 255), 6, 4), 0, 0, Disposal.OP_PREVIOUS, SOURCE, (5, 100)),
                                         (box((*BLUE, 128), 2, 2), 1, 1, KEEP, OVER, (7, 100))]))
    anim = read_frames(path)[0]
    want = np.zeros((4, 6, 4), np.uint8)
    want[1:3, 1:3] = (*BLUE, 128)  # over a clear canvas: as it is
    assert np.array_equal(anim.frames[1], want)


def test_an_apng_frame_blended_as_source_replaces_its_box_alpha_and_all(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box((*RED, 255), 6, 4), 0, 0, KEEP, SOURCE, (5, 100)),
                                         (box((*BLUE, 128), 6, 4), 0, 0, KEEP, OVER, (7, 100)),
                                         (box((*GREEN, 128), 2, 2), 3, 1, KEEP, SOURCE, (3, 100))]))
    anim = read_frames(path)[0]
    want = np.full((4, 6, 4), (127, 0, 128, 255), np.uint8)
    want[1:3, 3:5] = (*GREEN, 128)
    assert np.array_equal(anim.frames[2], want)


def test_an_apng_default_image_outside_the_animation_is_not_drawn_under_its_frames(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes([(box((*BLUE, 128), 4, 3), 0, 0, KEEP, OVER, (5, 100)),
                                         (box((*RED, 255), 2, 1), 0, 0, KEEP, OVER, (7, 100))],
                                default=box((255, 255, 255, 255), 4, 3)))
    anim = read_frames(path)[0]
    assert len(anim.frames) == 2 and anim.durations == (50, 70)
    assert tuple(anim.frames[0][2, 3]) == (*BLUE, 128) and tuple(anim.frames[1][2, 3]) == (*BLUE, 128)
    assert tuple(anim.frames[1][0, 0]) == (*RED, 255)


def test_an_apng_palette_after_the_first_fctl_colours_every_frame(tmp_path):
    # The first frame's fcTL need only come before IDAT: before PLTE and tRNS too.
    indices = [np.zeros((3, 4, 1), np.uint8), np.ones((2, 2, 1), np.uint8)]
    controls = [png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 4, 3, 0, 0, 5, 100, KEEP, SOURCE)),
                png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 1, 2, 2, 1, 1, 7, 100, KEEP, OVER))]
    palette = [png_chunk(b"PLTE", bytes([*RED, *BLUE])), png_chunk(b"tRNS", bytes([255, 128]))]
    head = png_bytes(indices[0], 8, 3, png_chunk(b"acTL", struct.pack(">II", 2, 0)), controls[0], *palette)
    later = controls[1] + png_chunk(b"fdAT", struct.pack(">I", 2) + png_data(indices[1], 8))
    path = tmp_path / "a.png"
    path.write_bytes(head[:-12] + later + head[-12:])
    anim = read_frames(path)[0]
    want = np.full((3, 4, 3), RED, np.uint8)
    want[1:3, 1:3] = (127, 0, 128)
    assert np.array_equal(anim.frames[0], np.full((3, 4, 3), RED, np.uint8)) and np.array_equal(anim.frames[1], want)


def test_an_apng_whose_transparency_outnumbers_256_colours_is_read_every_frame(tmp_path):
    # Each frame, decoded alone with the palette and tRNS, was refused as the still
    # picture was ("palette index out of range").
    indices = [np.zeros((3, 4, 1), np.uint8), np.ones((2, 2, 1), np.uint8)]
    frames = [(indices[0], 0, 0, KEEP, SOURCE, (5, 100)), (indices[1], 1, 1, KEEP, SOURCE, (7, 100))]
    palette = [png_chunk(b"PLTE", bytes([*RED, *BLUE])), png_chunk(b"tRNS", bytes([255, 128]) + bytes(298))]
    path = tmp_path / "a.png"
    path.write_bytes(apng_bytes(frames, depth=8, colour_type=3, chunks=palette))
    anim = read_frames(path)[0]
    assert len(anim.frames) == 2 and anim.durations == (50, 70)
    assert tuple(anim.frames[0][2, 3]) == (*RED, 255) and tuple(anim.frames[1][2, 2]) == (*BLUE, 128)


def test_an_apng_with_a_damaged_ancillary_chunk_is_read_without_it_every_frame(tmp_path):
    # Pillow refused it whole for a damaged transparency (or text) chunk; libpng leaves
    # the chunk out, for every frame alike: opaque here, its default image apart.
    indices = [np.zeros((3, 4, 1), np.uint8), np.ones((2, 2, 1), np.uint8)]
    controls = [png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 0, 4, 3, 0, 0, 5, 100, KEEP, SOURCE)),
                png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", 2, 2, 2, 1, 1, 7, 100, KEEP, OVER))]
    transparency = png_chunk(b"tRNS", bytes([255, 128]))
    transparency = transparency[:-4] + bytes(b ^ 0xFF for b in transparency[-4:])
    head = png_bytes(np.full((3, 4, 1), 1, np.uint8), 8, 3, png_chunk(b"acTL", struct.pack(">II", 2, 0)),
                     png_chunk(b"PLTE", bytes([*RED, *BLUE])), transparency)
    later = b"".join(control + png_chunk(b"fdAT", struct.pack(">I", 2 * n + 1) + png_data(frame, 8))
                     for n, (control, frame) in enumerate(zip(controls, indices)))
    path = tmp_path / "a.png"
    path.write_bytes(head[:-12] + later + head[-12:])
    first, info = read_image(path)
    anim = read_frames(path, info)[0]
    want = np.full((3, 4, 3), RED, np.uint8)
    want[1:3, 1:3] = BLUE
    assert info.frames == 2 and np.array_equal(first, np.full((3, 4, 3), RED, np.uint8))
    assert np.array_equal(anim.frames[0], first) and np.array_equal(anim.frames[1], want)


def test_an_apng_whose_first_fctl_is_damaged_is_one_error_naming_it(tmp_path, caplog):
    # The fcTL was left out as a damaged ancillary chunk, with a warning, and the
    # frames after it then failed as "frame sequence numbers out of order".
    frames = [(np.full((4, 4, 4), 200 * i, np.uint8), 0, 0, KEEP, SOURCE, (5, 100)) for i in range(2)]
    whole = apng_bytes(frames)
    at = whole.index(b"fcTL") - 4
    end = at + 12 + struct.unpack_from(">I", whole, at)[0]
    (tmp_path / "a.png").write_bytes(whole[:end - 4] + bytes(b ^ 0xFF for b in whole[end - 4:end]) + whole[end:])
    with caplog.at_level(logging.WARNING, logger="ncnn_sr"):
        with pytest.raises(InputError, match=r"a.png: broken or truncated picture \(.*checksum.*fcTL.*\)$"):
            read_frames(tmp_path / "a.png")
        with pytest.raises(InputError, match="fcTL"):
            read_image(tmp_path / "a.png")
    assert "left out" not in caplog.text and "out of order" not in caplog.text


def test_an_apng_cut_short_is_an_input_error_naming_the_file(tmp_path):
    whole = apng_bytes([(np.random.default_rng(i).integers(0, 256, (40, 40, 4), np.uint8), 0, 0, KEEP,
                                   OVER, (5, 100)) for i in range(3)])
    (tmp_path / "cut.png").write_bytes(whole[:int(len(whole) * 0.9)])  # into the last frame
    with pytest.raises(InputError, match="cut.png: broken or truncated picture"):
        read_frames(tmp_path / "cut.png")


def test_gif_transparency_is_alpha_and_a_frame_disposed_to_the_background_is_clear_again(tmp_path):
    first = solid((0, 0, 0, 0), mode="RGBA")
    first.paste((*RED, 255), (0, 0, 4, 6))  # left half red
    second = solid((0, 0, 0, 0), mode="RGBA")
    second.paste((*BLUE, 255), (4, 0, 8, 6))  # right half blue, left clear again
    anim = read_frames(save_animation(tmp_path / "a.gif", [first, second], disposal=2))[0]
    assert anim.frames[0].shape == (6, 8, 4)
    assert anim.frames[1][0, 0, 3] == 0 and list(anim.frames[1][0, 7]) == [*BLUE, 255]


def gif_bytes(size, frames, palette) -> bytes:
    """A GIF of 8-bit index ``frames``: (indices, left, top, disposal, transparent
    index or None), on a canvas of ``size`` whose background is index 0. A frame may
    end in a dict of options: ``palette`` (a local colour table), ``interlace``
    (rows stored in the GIF's four passes) and ``control`` (False: no graphic control
    extension before it)."""
    def data(indices):  # uncompressed LZW: 9-bit codes, a clear code every 250
        codes = [code for i, v in enumerate(indices.ravel()) for code in ([256] if i % 250 == 0 else []) + [int(v)]]
        bits = sum(code << (9 * i) for i, code in enumerate(codes + [257]))
        raw = bits.to_bytes((9 * (len(codes) + 1) + 7) // 8, "little")
        return b"\x08" + b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255] for i in range(0, len(raw), 255)) + b"\0"

    table = bytes(c for rgb in palette + [(0, 0, 0)] * (256 - len(palette)) for c in rgb)
    out = b"GIF89a" + struct.pack("<HHBBB", *size, 0xF7, 0, 0) + table
    for indices, left, top, disposal, transparent, *more in frames:
        options = more[0] if more else {}
        if options.get("control", True):
            out += b"\x21\xf9\x04" + struct.pack("<BHB", disposal << 2 | (transparent is not None), 5,
                                                transparent or 0) + b"\0"
        flags, local = 0, b""
        if "palette" in options:
            flags, local = 0x87, bytes(c for rgb in options["palette"] + [(0, 0, 0)] * (256 - len(options["palette"]))
                                       for c in rgb)
        if options.get("interlace"):
            flags |= 0x40
            height = indices.shape[0]
            indices = indices[[*range(0, height, 8), *range(4, height, 8), *range(2, height, 4), *range(1, height, 2)]]
        out += (b"\x2c" + struct.pack("<HHHHB", left, top, indices.shape[1], indices.shape[0], flags) + local
                + data(indices))
    return out + b"\x3b"


def test_gif_canvas_no_frame_covers_and_boxes_disposed_to_the_background_are_clear(tmp_path):
    # As browsers show them: Pillow painted both in the background colour (index 0),
    # an opaque block, unless the frame had a transparent index.
    palette = [(9, 9, 9), RED, GREEN, BLUE]
    box = np.full((4, 6), 1, np.uint8)
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((16, 12), [(box, 2, 3, 2, None), (box + 1, 8, 6, 3, None),
                                          (np.full((2, 2), 3, np.uint8), 0, 0, 0, None)], palette))
    anim = read_frames(path)[0]
    assert anim.durations == (50, 50, 50) and anim.frames[0].shape == (12, 16, 4)
    want = np.zeros((3, 12, 16, 4), np.uint8)
    want[0, 3:7, 2:8] = (*RED, 255)
    want[1, 6:10, 8:14] = (*GREEN, 255)  # the red box disposed to the background: clear
    want[2, 0:2, 0:2] = (*BLUE, 255)  # the green one restored to what was before it: clear
    assert np.array_equal(np.stack(anim.frames), want)


@pytest.mark.parametrize("left, top, more", [(2, 1, 0), (0, 0, 0), (2, 1, 1)])
def test_a_gif_read_as_a_still_picture_is_clear_where_its_first_frame_leaves_the_screen(left, top, more, tmp_path):
    # Pillow painted it in palette colour 0, opaque: a one-frame GIF upscaled to png
    # or webp (or its first frame alone, to jpg) lost the clear canvas browsers show.
    path = tmp_path / "a.gif"
    frames = [(np.full((2, 3), 1, np.uint8), left, top, 0, None)] + [(np.full((6, 8), 1, np.uint8), 0, 0, 0, None)] * more
    path.write_bytes(gif_bytes((8, 6), frames, [(9, 9, 9), RED]))
    want = np.zeros((6, 8, 4), np.uint8)
    want[top:top + 2, left:left + 3] = (*RED, 255)
    arr, info = read_image(path)
    assert info.frames == 1 + more and np.array_equal(arr, want)
    assert np.array_equal(read_frames(path)[0].frames[0], want)


def test_gif_frames_with_their_own_transparent_index_and_restored_to_the_previous(tmp_path):
    palette = [(9, 9, 9), RED, GREEN, BLUE]
    first = np.full((12, 16), 1, np.uint8)
    first[:, :8] = 0  # left half clear (index 0 is transparent in this frame)
    second = np.full((4, 4), 3, np.uint8)
    second[:2] = 1  # top clear (index 1 is transparent in this one): the red shows through
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((16, 12), [(first, 0, 0, 1, 0), (second, 6, 4, 3, 1), (second[2:], 0, 0, 0, 1)],
                               palette))
    anim = read_frames(path)[0]
    want = np.zeros((3, 12, 16, 4), np.uint8)
    want[:, :, 8:] = (*RED, 255)
    want[1, 6:8, 6:10] = (*BLUE, 255)
    want[2, 0:2, 0:4] = (*BLUE, 255)
    assert all(shown_alike(got, w) for got, w in zip(anim.frames, want))


def test_interlaced_gif_frames_of_their_own_colour_table_are_read_row_by_row(tmp_path):
    # Each row of a frame 11 high is its own index, stored in the four passes, which
    # a local table colours: rows out of order, or the global colours, would show.
    rows = np.repeat(np.arange(1, 12, dtype=np.uint8)[:, None], 3, axis=1)
    local = [(0, 0, 0)] + [(20 * i, 255 - 20 * i, 7) for i in range(1, 12)]
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((5, 13), [(rows, 1, 2, 1, 0, {"interlace": True, "palette": local}),
                                         (rows[:4], 0, 0, 1, None, {"interlace": True})], [(9, 9, 9)] * 12))
    anim = read_frames(path)[0]
    want = np.zeros((13, 5, 4), np.uint8)
    want[2:13, 1:4] = np.array([(*local[i], 255) for i in range(1, 12)], np.uint8)[:, None]
    assert np.array_equal(anim.frames[0], want)
    want[:4, :3] = (9, 9, 9, 255)  # the global table's, its four rows in order
    assert np.array_equal(anim.frames[1], want)


def test_a_gif_frame_without_a_control_extension_takes_none_from_the_frame_before(tmp_path):
    # Its transparent index, delay and disposal are those of no extension: every pixel
    # drawn, shown 100 ms (a delay of 0), and left in place.
    palette = [(9, 9, 9), RED, GREEN, BLUE]
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((4, 2), [(np.full((2, 4), 1, np.uint8), 0, 0, 2, 2),
                                        (np.array([[2, 3]], np.uint8), 0, 0, 0, None, {"control": False}),
                                        (np.array([[3]], np.uint8), 3, 1, 1, None)], palette))
    anim = read_frames(path)[0]
    assert anim.durations == (50, 100, 50)
    assert list(anim.frames[1][0, 0]) == [*GREEN, 255] and anim.frames[1][1, 0, 3] == 0  # after the box cleared
    assert list(anim.frames[2][0, 1]) == [*BLUE, 255]  # the second frame stayed


@pytest.mark.parametrize("disposal, restored", [(4, True), (5, False), (7, False)])
def test_a_gif_frame_disposed_by_method_4_is_restored_to_the_previous_as_browsers_do(disposal, restored, tmp_path):
    # Method 4 is reserved, but some encoders write it for 3 (the spec's third bit):
    # Chrome, Firefox and Safari restore the box; 5 to 7 they leave in place.
    palette = [(9, 9, 9), RED, GREEN, BLUE]
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((4, 2), [(np.full((2, 4), 1, np.uint8), 0, 0, 1, None),
                                        (np.full((2, 2), 3, np.uint8), 0, 0, disposal, None),
                                        (np.array([[2]], np.uint8), 3, 1, 1, None)], palette))
    last = read_frames(path)[0].frames[2]
    assert list(last[0, 0]) == list(RED if restored else BLUE) and list(last[1, 3]) == list(GREEN)


def test_gif_frames_pillow_passes_over_after_an_empty_extension_are_counted(tmp_path):
    # Pillow takes the byte after an empty extension's terminator for a sub-block size
    # and skips the frames inside: it counted 2 where 14 were composed, and the
    # memory budget, reckoned from the count, was that of 2 whole canvases.
    def frame(left, top):  # 1x1 of global colour 1: LZW clear, 1, end
        return b"\x2c" + struct.pack("<HHHHB", left, top, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    inside = b"".join(frame(0, i) for i in range(12))
    head = b"GIF89a" + struct.pack("<HHBBB", 16, 16, 0x80, 0, 0) + bytes(3) + b"\xff" * 3
    path = tmp_path / "a.gif"
    path.write_bytes(head + frame(0, 0) + frame(1, 0) + b"\x21\x01\x00" + bytes([len(inside)]) + inside
                     + b"\x00\x3b")
    info = read_image(path)[1]
    anim = read_frames(path)[0]
    assert info.frames == len(anim.frames) == 14


def test_a_gif_frame_of_no_pixels_draws_nothing_and_is_shown_for_its_time(tmp_path):
    # Pillow cannot open the 0x5 GIF the frame was decoded from alone: read_frames
    # called the file "not a picture", which read_image had just read.
    def frame(left, top, width=1, height=1):  # of global colour 1: LZW clear, 1, end
        return b"\x2c" + struct.pack("<HHHHB", left, top, width, height, 0) + b"\x02\x02\x44\x01\x00"
    head = b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + bytes(3) + b"\xff" * 3
    path = tmp_path / "a.gif"
    path.write_bytes(head + frame(0, 0) + frame(1, 1, 0, 5) + frame(2, 2) + b"\x3b")
    anim = read_frames(path)[0]
    assert read_image(path)[1].frames == len(anim.frames) == 3
    assert np.array_equal(anim.frames[1], anim.frames[0]) and anim.frames[2][:, :, 3].sum() == 2 * 255


def test_a_gif_screen_smaller_than_its_first_frame_is_widened_to_it(tmp_path):
    # Some encoders write a 0x0 screen: its frames read as empty arrays and failed.
    path = tmp_path / "a.gif"
    path.write_bytes(gif_bytes((0, 0), [(np.full((6, 8), 1, np.uint8), 0, 0, 0, None),
                                        (np.full((3, 4), 2, np.uint8), 4, 3, 0, None)], [(9, 9, 9), RED, GREEN]))
    anim, info = read_frames(path)
    assert [f.shape for f in anim.frames] == [(6, 8, 3)] * 2 and tuple(anim.frames[1][5, 7]) == GREEN


def sixteen_bit_apng(path, frames, blend=0, dispose=0):
    """An APNG of the 16-bit RGB ``frames`` (of one size), each 50 ms."""
    height, width = frames[0].shape[:2]
    control = [png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", number, width, height, 0, 0, 50, 1000, dispose, blend))
               for number in [0, *range(1, 2 * len(frames), 2)]]  # fcTL and fdAT share one sequence
    colour_type = 6 if frames[0].shape[2] == 4 else 2
    later = b"".join(control[i] + png_chunk(b"fdAT", struct.pack(">I", 2 * i) + png_data(frames[i], 16))
                     for i in range(1, len(frames)))
    first = png_bytes(frames[0], 16, colour_type, png_chunk(b"acTL", struct.pack(">II", len(frames), 0)), control[0])
    path.write_bytes(first[:-12] + later + first[-12:])  # the later frames before IEND
    return path


def test_a_sixteen_bit_apng_is_read_in_sixteen_bits(tmp_path):
    # Pillow has no 16-bit colour mode: its frames were the high bytes of each sample.
    frames = [np.random.default_rng(i).integers(0, 1 << 16, (4, 5, 3), np.uint16) for i in range(2)]
    path = sixteen_bit_apng(tmp_path / "a.png", frames)
    assert np.array_equal(read_image(path)[0], frames[0])
    anim = read_frames(path)[0]
    assert all(np.array_equal(got, want) for got, want in zip(anim.frames, frames)) and anim.durations == (50, 50)


def test_a_sixteen_bit_apng_frame_blended_over_the_one_before_is_composed_in_sixteen_bits(tmp_path):
    under = np.zeros((2, 3, 4), np.uint16)
    under[...] = (65535, 0, 0, 65535)
    top = np.zeros((2, 3, 4), np.uint16)
    top[...] = (0, 0, 65535, 32768)
    anim = read_frames(sixteen_bit_apng(tmp_path / "a.png", [under, top], blend=1))[0]
    assert anim.frames[1].dtype == np.uint16 and tuple(anim.frames[1][0, 0]) == (32767, 0, 32768)  # opaque: RGB


@pytest.mark.parametrize("fps, count, want", [(30, 3, [33, 34, 33]), (60, 6, [17, 16, 17, 17, 16, 17]),
                                               (30000 / 1001, 3, [33, 34, 33])])
def test_apng_frames_of_a_fraction_of_a_millisecond_end_at_the_nearest_one_keeping_the_length(fps, count, want,
                                                                                               tmp_path):
    # found by an animation user's audit: each delay was rounded alone, so a 60 fps
    # APNG (FFmpeg writes 1/60) was read as 17 ms frames and played 2 % slow in the
    # WebP, APNG or GIF written, a 30 fps one 1 % fast (33 ms).
    num, den = (1001, 30000) if fps != int(fps) else (1, fps)
    frames = [(picture(4, 4, channels=4, seed=i), 0, 0, 0, 0, (num, den)) for i in range(count)]
    (tmp_path / "a.png").write_bytes(apng_bytes(frames))
    assert list(read_frames(tmp_path / "a.png")[0].durations) == want


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


@pytest.mark.parametrize("name, where, plays", [
    (b"NETSCAPE2.0", 1, 3),  # after the first frame, as browsers read it too
    (b"ANIMEXTS1.0", 0, 3),  # its other name, which browsers take alike
    (b"NETSCAPE2.0", 2, 3),  # after the last frame
])
def test_a_gif_s_loop_count_is_read_wherever_its_extension_is(name, where, plays, tmp_path):
    # Pillow reads the count only before the first frame, and by one name: the
    # animation, which browsers repeat, was shown once.
    frames = [(np.full((2, 2), i, np.uint8), 0, 0, 1, None) for i in (1, 2)]
    whole = gif_bytes((2, 2), frames, [(9, 9, 9), RED, GREEN])
    starts = [m.start() for m in re.finditer(b"\x21\xf9\x04", whole)] + [len(whole) - 1]
    loop = b"\x21\xff\x0b" + name + b"\x03\x01" + struct.pack("<H", plays - 1) + b"\x00"
    path = tmp_path / "a.gif"
    path.write_bytes(whole[:starts[where]] + loop + whole[starts[where]:])
    assert read_frames(path)[0].plays == plays


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


def test_an_apng_default_image_outside_the_animation_is_not_counted_as_a_frame(tmp_path):
    path = save_animation(tmp_path / "a.png", [solid((255, 255, 255)), solid(RED), solid(BLUE)],
                          default_image=True, duration=[10, 20])
    assert read_image(path)[1].frames == 2  # what the progress bar and the memory budget count
    assert frame_count(path) == 2  # what the batch command caps its proc workers by


@pytest.mark.parametrize("frames", [[RED, BLUE], [RED]])
def test_an_apng_read_as_a_still_is_its_first_frame_not_its_default_image(tmp_path, frames):
    path = save_animation(tmp_path / "a.png", [solid((255, 255, 255))] + [solid(c) for c in frames],
                          default_image=True, duration=[10] * len(frames))
    assert tuple(read_image(path)[0][0, 0]) == RED  # as browsers show it, and read_frames starts
    assert tuple(read_frames(path)[0].frames[0][0, 0]) == RED


@pytest.mark.parametrize("keyed", [False, True])
def test_a_sixteen_bit_grey_apngs_first_frame_past_its_default_image_keeps_16_bits(keyed, tmp_path):
    # It was composed in 8 bits, where one without a default image keeps 16 (README).
    first = np.array([[[1000], [30000], [65535]]], np.uint16)
    path = tmp_path / "grey.png"
    path.write_bytes(apng_bytes([(first, 0, 0, KEEP, SOURCE, (5, 100)), (first[:, ::-1], 0, 0, KEEP, SOURCE, (5, 100))],
                                default=np.zeros_like(first), depth=16, colour_type=0,
                                chunks=[png_chunk(b"tRNS", struct.pack(">H", 30000))] if keyed else []))
    arr, info = read_image(path)
    want = np.dstack([first] * 3 + [np.array([[[65535], [0], [65535]]], np.uint16)]) if keyed else first
    assert info.mode == "I;16" and arr.dtype == np.uint16 and np.array_equal(arr, want)


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


def test_a_multi_page_tiff_is_its_first_page_with_a_warning_not_an_animation(tmp_path, caplog):
    # A scan's pages, or a page and its thumbnail: they became an animation of 0 ms
    # frames looping for ever, and pages of two sizes failed without naming the file.
    pages = [Image.fromarray(picture(6, 8, seed=0)), Image.fromarray(picture(4, 4, seed=1))]
    pages[0].save(tmp_path / "scan.tiff", save_all=True, append_images=pages[1:])
    anim, info = read_frames(tmp_path / "scan.tiff")
    assert info.frames == 1 and len(anim.frames) == 1 and np.array_equal(anim.frames[0], np.asarray(pages[0]))
    assert "scan.tiff: a TIFF of 2 pages: reading the first only" in caplog.text


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
    # found by a library user's check: bare TypeErrors ("'int' object is not iterable")
    (5, (0,), 0, "needs a sequence of one or more frames, got 5"),
    (np.uint8(3), (0,), 0, r"needs a sequence of one or more frames, got np.uint8\(3\)$"),
    (np.array(3, np.uint8), (0,), 0, "needs a sequence of one or more frames, got a 0-d array$"),
    ((np.zeros((4, 4, 3), np.uint8),), 40, 0, r"one whole number of milliseconds \(0 or more\) per frame, got 40"),
    ((np.zeros((4, 4, 3), np.uint8),), None, 0, "one whole number of milliseconds .* got None"),
    # "got (-1,) for 1 frames" (a library audit)
    ((np.zeros((4, 4, 3), np.uint8),), (-1,), 0, r"per frame, got \(-1,\) for its 1 frame$"),
    ((np.zeros((4, 4, 3), np.uint8),) * 2, (5,), 0, r"per frame, got \(5,\) for its 2 frames$"),
])
def test_an_animation_that_cannot_be_is_refused_in_words(frames, durations, plays, said):
    with pytest.raises(InputError, match=said):
        Animation(frames, durations, plays)


@pytest.mark.parametrize("frames, said", [
    (np.zeros((2, 4, 4, 3), np.uint8), r"got a 2x4x4x3 array: give its frames as tuple\(frames\)$"),
    (np.zeros((2, 4, 4), np.uint8), r"got a 2x4x4 array: give its frames as tuple\(frames\), or one picture as "
                                    r"\(picture,\)$"),
])
def test_an_array_given_as_frames_is_refused_with_the_tuple_that_does(frames, said):
    # found by a library user's check: "got an object of type ndarray" said nothing of
    # the tuple of frames an N×H×W×C array of them makes
    with pytest.raises(InputError, match=said):
        Animation(frames, (0, 0))


# --- writing -------------------------------------------------------------------------------

def moving(count=3, channels=3, size=(12, 16)) -> Animation:
    """Frames that differ, the RGBA ones with a clear box that moves."""
    frames = []
    for i in range(count):
        frame = picture(*size, channels=channels, seed=i)
        if channels == 4:
            frame[:, :, 3] = 255
            frame[:4, 4 * i: 4 * i + 4, 3] = 0
        frames.append(frame)
    return Animation(tuple(frames), tuple(40 + 10 * i for i in range(count)), plays=0)


@pytest.mark.parametrize("name", ["a.webp", "a.png"])
@pytest.mark.parametrize("channels", [3, 4])
def test_webp_and_apng_keep_every_frame_exactly_with_its_duration(name, channels, tmp_path):
    anim = moving(channels=channels)
    write_frames(tmp_path / name, anim)
    back = read_frames(tmp_path / name)[0]
    assert back.durations == anim.durations and back.plays == 0
    assert all(shown_alike(got, want) for got, want in zip(back.frames, anim.frames))


def shown_alike(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal where it shows: a clear pixel's colour is nothing (the WebP animation
    encoder does not keep it)."""
    if got.shape != want.shape:
        return False
    if got.shape[2] == 3:
        return np.array_equal(got, want)
    shown = want[:, :, 3] > 0
    return np.array_equal(got[:, :, 3], want[:, :, 3]) and np.array_equal(got[shown], want[shown])


def test_gif_keeps_every_frame_closely_its_duration_and_its_transparency(tmp_path):
    anim = moving(channels=4)
    write_frames(tmp_path / "a.gif", anim)
    back = read_frames(tmp_path / "a.gif")[0]
    assert back.durations == anim.durations and len(back.frames) == 3
    for got, want in zip(back.frames, anim.frames):
        assert np.array_equal(got[:, :, 3], want[:, :, 3])  # a clear box that moves is clear where it is now
        shown = want[:, :, 3] == 255
        assert np.abs(got[:, :, :3].astype(int) - want[:, :, :3])[shown].mean() < 6


def still_background_and_a_moving_box(count=4) -> Animation:
    """Opaque frames of one smooth background (more colours than a GIF palette
    holds) with a small box that moves along its top rows."""
    y, x = np.mgrid[0:40, 0:48]
    background = np.stack([x * 5, y * 6, 128 + x - y], axis=2).clip(0, 255).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        frame[2:8, 4 + 8 * i:12 + 8 * i] = (255, 255, 0) if i % 2 else (255, 0, 255)
        frames.append(frame)
    return Animation(tuple(frames), (100,) * count)


def test_a_gif_s_background_that_stays_still_is_drawn_once_not_dithered_again_each_frame(tmp_path):
    # found by an animation user's audit: each frame was reduced to a palette of its
    # own and dithered whole, so a background that stayed still changed in 98 % of its
    # pixels from frame to frame (a mean of 11 levels): it shimmered.
    anim = still_background_and_a_moving_box()
    write_frames(tmp_path / "a.gif", anim)
    back = read_frames(tmp_path / "a.gif")[0]
    assert len(back.frames) == 4 and back.durations == anim.durations
    for got, want in zip(back.frames, anim.frames):
        assert np.abs(got.astype(int) - want).mean() < 4
    for got in back.frames[1:]:
        assert np.array_equal(got[10:], back.frames[0][10:])
    assert read_image(tmp_path / "a.gif")[0].shape[2] == 3  # its first frame alone is opaque (a jpg of it)


def test_a_gifs_frames_keep_a_small_detail_of_a_colour_of_its_own_where_they_draw_it(tmp_path):
    # found by a palette measurement: median cut gave a small dark eye the colour of
    # the gradient round it (103 levels off) in each frame that drew it; the frames
    # after the first, drawn where they changed, and one with clear pixels alike.
    y, x = np.mgrid[0:48, 0:64]
    background = np.stack([x * 4, y * 5, 255 - x * 2 - y], axis=2).clip(0, 255).astype(np.uint8)
    frames, eyes = [], []
    for i in range(4):
        frame = np.concatenate([background, np.full((48, 64, 1), 255, np.uint8)], axis=2)
        frame[20:24, 10 + 4 * i:14 + 4 * i, :3] = (200, 20, 40)
        frame[8:11, 40 - 3 * i:43 - 3 * i, :3] = (10, 10, 20)
        frame[44:, :4, 3] = 0 if i == 2 else 255
        frames.append(frame)
        eyes.append(np.s_[8:11, 40 - 3 * i:43 - 3 * i])
    write_frames(tmp_path / "a.gif", Animation(tuple(frames), (100,) * 4))
    back = read_frames(tmp_path / "a.gif")[0]
    for got, want, eye in zip(back.frames, frames, eyes):
        assert np.array_equal(got[:, :, 3] == 0, want[:, :, 3] == 0)
        assert np.abs(got[eye].astype(int) - want[eye]).max() <= 4
        assert np.abs(got[:, :, :3].astype(int) - want[:, :, :3])[want[:, :, 3] > 0].mean() < 4


def sticker(count=6, square_in="body", hole_from=None) -> tuple[Animation, np.ndarray]:
    """A still textured disc (more colours than a GIF palette holds) in a clear
    surround, with a small opaque square that moves over the disc ("body") or through
    the surround ("surround"), and from frame ``hole_from`` on a clear hole in the
    disc; and where the disc stays still, far from both."""
    y, x = np.mgrid[0:64, 0:64]
    body = np.zeros((64, 64, 4), np.uint8)
    grain = np.random.default_rng(0).integers(-12, 13, (64, 64, 3))
    body[:, :, :3] = (np.stack([x * 3 + 40, y * 3 + 20, 140 + x - y], axis=2) + grain).clip(0, 255)
    disc = (x - 32) ** 2 + (y - 36) ** 2 < 22 ** 2
    body[:, :, 3] = disc * 255
    frames = []
    for i in range(count):
        frame = body.copy()
        if hole_from is not None and i >= hole_from:
            frame[30:40, 26:38, 3] = 0
        top, left = (24, 14 + 5 * i) if square_in == "body" else (2, 2 + 9 * i)
        frame[top:top + 6, left:left + 6] = (255, 255, 0, 255) if i % 2 else (255, 0, 255, 255)
        frames.append(frame)
    still = disc.copy()
    still[:42] = False
    return Animation(tuple(frames), (100,) * count), still


@pytest.mark.parametrize("square_in, hole_from", [("body", None), ("surround", None), ("body", 3)])
def test_a_gif_s_still_body_in_a_clear_surround_is_drawn_once_not_dithered_again_each_frame(
        square_in, hole_from, tmp_path):
    # found by an animation user's audit: where any frame had a clear pixel, every
    # frame was written whole over a cleared canvas, dithered with a palette of its
    # own: a sticker's still body changed in 99.5 % of its pixels from frame to frame.
    # A frame draws only what changed unless a pixel the canvas shows must turn
    # clear in it: then the frame before clears its box (disposal 2), and this one
    # draws all it shows there. Clear stays clear, and opaque opaque, in every frame.
    anim, still = sticker(square_in=square_in, hole_from=hole_from)
    write_frames(tmp_path / "a.gif", anim)
    back = read_frames(tmp_path / "a.gif")[0]
    assert len(back.frames) == 6 and back.durations == anim.durations
    for got, want in zip(back.frames, anim.frames):
        assert np.array_equal(got[:, :, 3] == 255, want[:, :, 3] >= 128)
        assert np.array_equal(got[:, :, 3] == 0, want[:, :, 3] < 128)
        shown = want[:, :, 3] >= 128
        assert np.abs(got[:, :, :3].astype(int) - want[:, :, :3])[shown].mean() < 6
    for got in back.frames[1:]:
        assert np.array_equal(got[still], back.frames[0][still])


def test_a_gif_with_clear_pixels_ends_on_a_clear_canvas_for_its_first_frame_drawn_again(tmp_path):
    # Its frames after the first are left on the canvas where nothing turns clear:
    # the first, shown again as it loops, is drawn whole and expects the canvas clear.
    from ncnn_sr.gif import _images
    anim, _ = sticker()
    write_frames(tmp_path / "a.gif", anim)
    data = (tmp_path / "a.gif").read_bytes()
    *_, (pos, control, _) = _images(data)
    assert (control[3] >> 2) & 7 == 2
    left, top, width, height = struct.unpack_from("<HHHH", data, pos + 1)
    rows, columns = np.nonzero(anim.frames[-1][:, :, 3] >= 128)
    assert top <= rows.min() and top + height > rows.max() and left <= columns.min() and left + width > columns.max()


def test_a_gif_frame_that_draws_few_colours_carries_a_palette_of_few(tmp_path):
    # Each frame after the first carried all 256 entries of its palette, 768 bytes,
    # though it drew a small square: more than half of a sticker's file.
    from ncnn_sr.gif import _images
    frames = []
    for i in range(4):
        frame = np.full((32, 40, 3), (20, 90, 160), np.uint8)
        frame[4:10, 4 + 6 * i:10 + 6 * i] = (255, 255, 0) if i % 2 else (255, 0, 255)
        frames.append(frame)
    anim = Animation(tuple(frames), (100,) * 4)
    write_frames(tmp_path / "a.gif", anim)
    data = (tmp_path / "a.gif").read_bytes()
    entries = [2 << (data[pos + 9] & 7) if data[pos + 9] & 0x80 else 0 for pos, _, _ in _images(data)]
    # The squares' colours, the background's, the transparent one: all four frames
    # draw no other, and share them in the global table.
    assert 2 << (data[10] & 7) == 4 and entries == [0, 0, 0, 0]
    back = read_frames(tmp_path / "a.gif")[0]
    assert all(np.array_equal(got[:, :, :3], want) for got, want in zip(back.frames, frames))


def test_a_gif_frame_s_opaque_black_edge_after_a_cleared_canvas_is_drawn(tmp_path):
    # found with the test above: Pillow's writer cut a frame after one disposed to
    # the background to the box of what differed from its background colour, an
    # opaque black, so a black column on its edge was not drawn and showed clear.
    frames = [picture(16, 16, channels=4, seed=i) for i in range(2)]
    for frame in frames:
        frame[:, :, 3] = 255
        frame[6:9, 6:9, 3] = 0
    frames[1][:, 0, :3] = 0
    write_frames(tmp_path / "a.gif", Animation(tuple(frames), (30, 30)))
    back = read_frames(tmp_path / "a.gif")[0]
    assert [np.array_equal(got[:, :, 3], want[:, :, 3]) for got, want in zip(back.frames, frames)] == [True, True]
    assert (back.frames[1][:, 0, :3] == 0).all()


def test_a_gif_keeps_two_equal_frames_as_one_where_the_frames_after_them_are_drawn_over(tmp_path):
    anim = still_background_and_a_moving_box(3)
    frames = anim.frames[:1] * 2 + anim.frames[1:]
    write_frames(tmp_path / "a.gif", Animation(frames, (30, 40, 50, 60)))
    back = read_frames(tmp_path / "a.gif")[0]
    assert back.durations == (70, 50, 60)
    assert all(np.abs(got.astype(int) - want).mean() < 4 for got, want in zip(back.frames, anim.frames))


@pytest.mark.parametrize("kind, longest", [("gif", 655350), ("png", 655350), ("png16", 655350), ("webp", 2**24 - 1)])
@pytest.mark.parametrize("merged", [False, True])
def test_a_frame_longer_than_the_format_holds_is_refused_in_words(kind, longest, merged, tmp_path):
    # found by a library audit: Pillow's OverflowError (gif), ValueError (png) or
    # RuntimeError (webp); the 16-bit APNG writer cut it to 655350 ms without a word.
    # Two equal frames in a row are one, shown for both their times (gif, png).
    frames = [picture(4, 6), picture(4, 6, seed=1)]
    if kind == "png16":
        frames = [frame.astype(np.uint16) * 257 for frame in frames]
    frames = tuple(frames[:1] * (1 + merged) + frames[1:])
    too_long = longest + 10
    durations = (too_long, 40) if not merged else (too_long // 2, too_long - too_long // 2, 40)
    ext = "png" if kind == "png16" else kind
    path = tmp_path / f"o.{ext}"
    if merged and ext == "webp":  # a WebP keeps each frame
        write_frames(path, Animation(frames, durations))
        assert read_frames(path)[0].durations == durations
        return
    name = {"gif": "GIF", "png": "an APNG", "webp": "WebP"}[ext]
    with pytest.raises(InputError, match=rf"o\.{ext}: a frame shown for {too_long} ms is longer than {name} holds "
                                         rf"\({longest} ms\)"):
        write_frames(path, Animation(frames, durations))
    assert list(tmp_path.iterdir()) == []
    write_frames(path, Animation(frames, (longest, 40) if not merged else (longest - 20, 20, 40)))
    assert read_frames(path)[0].durations == (longest, 40)


@pytest.mark.parametrize("duration", [65537, 70001, 655349])
def test_an_apng_frame_of_over_a_minute_is_written_to_the_nearest_hundredth(duration, tmp_path):
    # found by a library audit: Pillow's APNG writer failed ("cannot write duration")
    # on a time it cannot state in 16-bit fractions of a second; the 16-bit writer
    # already rounded those to hundredths.
    animation = Animation((picture(4, 6), picture(4, 6, seed=1)), (duration, 40))
    write_frames(tmp_path / "o.png", animation)
    assert read_frames(tmp_path / "o.png")[0].durations == (round(duration / 10) * 10, 40)


def test_gif_durations_in_hundredths_keep_the_animation_length(tmp_path):
    # A GIF holds hundredths of a second: 33 ms frames (30 fps) were cut to 30 ms.
    write_frames(tmp_path / "a.gif", Animation(moving(6).frames, (33,) * 6))
    assert read_frames(tmp_path / "a.gif")[0].durations == (30, 40, 30, 30, 40, 30)  # 200 ms for 198
    write_frames(tmp_path / "b.gif", Animation(moving(4).frames, (0, 10, 99, 15)))
    assert stored_delays(tmp_path / "b.gif") == [0, 10, 100, 10]  # ends at 0, 10, 110, 120 for 124


def test_gif_frames_of_10_ms_or_less_are_read_as_the_100_ms_browsers_show(tmp_path):
    # A WebP or APNG of a GIF's 0 and 10 ms frames played them ten times too fast.
    frames = [solid(colour) for colour in (RED, GREEN, BLUE, RED)]
    path = save_animation(tmp_path / "a.gif", frames, duration=[0, 10, 20, 30])
    assert stored_delays(path) == [0, 10, 20, 30]
    assert read_frames(path)[0].durations == (100, 100, 20, 30)


@pytest.mark.parametrize("name", ["a.gif", "a.webp", "a.png"])
@pytest.mark.parametrize("plays", [0, 1, 3])
def test_how_often_it_plays_is_kept(name, plays, tmp_path):
    anim = Animation(moving().frames, (50, 50, 50), plays=plays)
    write_frames(tmp_path / name, anim)
    assert read_frames(tmp_path / name)[0].plays == plays


@pytest.mark.parametrize("name, most", [("a.gif", 65536), ("a.webp", 65535), ("a.png", 2**32 - 1)])
def test_more_plays_than_a_format_holds_are_the_most_it_holds(name, most, tmp_path):
    # An APNG that plays 70000 times (APNG counts to 2^32 - 1) failed as a webp
    # ("ERROR assembling WebP: -1.") or a gif (a bare OverflowError).
    write_frames(tmp_path / name, Animation(moving().frames, (50, 50, 50), plays=2**40))
    assert read_frames(tmp_path / name)[0].plays == most


def test_webp_with_a_quality_is_lossy_and_smaller(tmp_path):
    anim = moving(size=(48, 64))
    write_frames(tmp_path / "lossless.webp", anim)
    write_frames(tmp_path / "lossy.webp", anim, quality=60)
    assert (tmp_path / "lossy.webp").stat().st_size < (tmp_path / "lossless.webp").stat().st_size
    assert read_frames(tmp_path / "lossy.webp")[0].durations == anim.durations


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_the_metadata_the_format_holds_is_kept(fmt, tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "Jane Doe"
    info = ImageInfo("RGB", "GIF", icc_profile=icc, exif=exif.tobytes())
    write_frames(tmp_path / f"a.{fmt}", moving(), info)
    with Image.open(tmp_path / f"a.{fmt}") as im:
        assert im.info.get("icc_profile") == icc and im.getexif()[0x013B] == "Jane Doe"
    write_frames(tmp_path / f"b.{fmt}", moving(), info, metadata=False)
    with Image.open(tmp_path / f"b.{fmt}") as im:
        assert "icc_profile" not in im.info and 0x013B not in im.getexif()


@pytest.mark.parametrize("fmt,kind", [("webp", b"EXIF"), ("png", b"eXIf")])
def test_the_exif_chunk_starts_at_its_tiff_header(fmt, kind, tmp_path):
    # found by a picture audit: an animated webp's EXIF chunk began with "Exif\0\0",
    # the name of a JPEG's APP1 segment that Pillow's EXIF carries, where a still
    # webp's, libwebp's (cwebp -metadata exif) and a PNG's eXIf start at the TIFF header.
    exif = Image.Exif()
    exif[0x013B] = "Jane Doe"
    write_frames(tmp_path / f"a.{fmt}", moving(), ImageInfo("RGB", "GIF", exif=exif.tobytes()))
    data = (tmp_path / f"a.{fmt}").read_bytes()
    body = data.index(kind) + (8 if fmt == "webp" else 4)  # after a RIFF chunk's size, or a PNG chunk's kind
    assert data[body:body + 4] in (b"II*\x00", b"MM\x00*")


def test_an_apngs_gamma_and_chromaticities_are_kept_in_the_apng_written(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    colour = ((b"gAMA", struct.pack(">I", 100000)), (b"cHRM", struct.pack(">8I", *range(8))))
    chunks = PngInfo()
    for kind, data in colour:
        chunks.add(kind, data)
    frames = [Image.fromarray(picture(6, 8, seed=i)) for i in range(2)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:], duration=100, pnginfo=chunks)
    anim, info = read_frames(tmp_path / "a.png")
    assert info.colour_chunks == colour
    write_frames(tmp_path / "b.png", anim, info)
    with Image.open(tmp_path / "b.png") as im:
        assert im.n_frames == 2 and im.info["gamma"] == 1.0 and im.info["chromaticity"] == tuple(v / 100000 for v in range(8))


def ffmpeg_frames(path, pix_fmt: str) -> list[np.ndarray]:
    """Every frame of the APNG at ``path`` as FFmpeg decodes it, in ``pix_fmt``."""
    import av
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format=pix_fmt) for frame in container.decode(video=0)]


@pytest.mark.parametrize("channels, pix_fmt, mode", [(1, "gray16le", "I;16"), (3, "rgb48le", "RGB"),
                                                     (4, "rgba64le", "RGBA")])
def test_sixteen_bit_frames_are_written_as_a_sixteen_bit_apng(channels, pix_fmt, mode, tmp_path):
    # Pillow's writer has no 16-bit mode: a 16-bit animation kept 8 of its bits in
    # png, where a still png keeps 16.
    frames = [picture(6, 8, channels=channels, seed=i, dtype=np.uint16) for i in range(3)]
    frames[2] = frames[1].copy()  # two equal frames in a row are one, as Pillow's writer shows them
    write_frames(tmp_path / "a.png", Animation(tuple(frames), (40, 50, 60), 3))
    got = ffmpeg_frames(tmp_path / "a.png", pix_fmt)
    assert len(got) == 2 and all(np.array_equal(g.reshape(f.shape), f) for g, f in zip(got, frames))
    with Image.open(tmp_path / "a.png") as im:
        assert (im.mode, im.n_frames, im.info["loop"]) == (mode, 2, 3)
        im.seek(1)
        assert im.info["duration"] == 110


def test_sixteen_bit_frames_keep_their_metadata_in_an_apng(tmp_path):
    info = ImageInfo(mode="RGB", format="PNG", icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes(), dpi=(300, 300))
    frames = tuple(picture(6, 8, seed=i, dtype=np.uint16) for i in range(2))
    write_frames(tmp_path / "a.png", Animation(frames, (10, 10)), info)
    with Image.open(tmp_path / "a.png") as im:
        assert im.n_frames == 2 and im.info["icc_profile"] == info.icc_profile
        assert tuple(round(d) for d in im.info["dpi"]) == (300, 300)


def test_sixteen_bit_frames_are_written_as_eight_bit_webp_and_gif(tmp_path):
    frames = tuple(picture(6, 8, seed=i, dtype=np.uint16) for i in range(2))
    for name in ("a.webp", "a.gif"):
        write_frames(tmp_path / name, Animation(frames, (20, 20)))
        assert read_frames(tmp_path / name)[0].frames[0].dtype == np.uint8


def test_one_frame_is_written_as_a_still_picture(tmp_path):
    arr = picture(6, 8, dtype=np.uint16)
    write_frames(tmp_path / "a.png", Animation((arr,), (0,)))
    assert np.array_equal(read_image(tmp_path / "a.png")[0], arr)  # 16-bit, as write_image keeps it


def test_jpeg_holds_no_animation(tmp_path):
    with pytest.raises(InputError, match="a.jpg: JPEG holds no animation; write webp, png or gif"):
        write_frames(tmp_path / "a.jpg", moving())
    assert not list(tmp_path.iterdir())


def test_what_write_frames_cannot_take_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="write_frames needs an Animation"):
        write_frames(tmp_path / "a.gif", [picture(4, 4)])
    with pytest.raises(InputError, match="too large for WebP"):
        write_frames(tmp_path / "a.webp", Animation((np.zeros((1, 16384, 3), np.uint8),) * 2, (0, 0)))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["a.gif", "a.webp", "a.png"])
def test_a_failed_write_leaves_no_file(name, tmp_path, monkeypatch):
    from ncnn_sr import animation as animation_mod

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(animation_mod, "_encode_frames", broken)
    with pytest.raises(InputError, match="cannot write .*No space left on device"):
        write_frames(tmp_path / name, moving())
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("clear_in", [0, 1])
def test_gif_clear_pixels_in_one_frame_alone_are_clear_there_only(clear_in, tmp_path):
    frames = [picture(12, 16, channels=4, seed=i) for i in range(2)]
    for frame in frames:
        frame[:, :, 3] = 255
    frames[clear_in][2:6, 2:6, 3] = 0
    write_frames(tmp_path / "a.gif", Animation(tuple(frames), (30, 30)))
    back = read_frames(tmp_path / "a.gif")[0]
    assert [np.array_equal(got[:, :, 3], want[:, :, 3]) for got, want in zip(back.frames, frames)] == [True, True]


def test_the_info_read_image_gave_spares_reading_the_first_frame_again(tmp_path, monkeypatch):
    path = tmp_path / "a.gif"
    save_animation(path, [solid(RED), solid(GREEN)], duration=[40, 60])
    info = read_image(path)[1]
    monkeypatch.setattr("ncnn_sr.animation.read_image", lambda *a: pytest.fail("read twice"))
    anim, same = read_frames(path, info)
    assert same is info and len(anim.frames) == 2 and anim.durations == (40, 60)
    with pytest.raises(InputError, match="ImageInfo"):
        read_frames(path, "info")


@pytest.mark.parametrize("ext", ["gif", "png", "webp"])
@pytest.mark.parametrize("other", ["still", "fewer", "more", "format"])
def test_the_info_of_another_picture_is_an_input_error_naming_the_mistake(ext, other, tmp_path):
    # found by a library audit: a still picture given an animation's info was "broken
    # or truncated", a WebP given a count of fewer frames lost the rest without a word,
    # and a GIF or APNG came back with the count it was given, not the one it had.
    from dataclasses import replace

    path = save_animation(tmp_path / f"a.{ext}", [solid(RED), solid(GREEN), solid(BLUE)], duration=40, loop=0,
                          **({"lossless": True} if ext == "webp" else {}))
    info = read_image(path)[1]
    if other == "still":
        path = tmp_path / f"still.{ext}"
        solid(RED).save(path, **({"lossless": True} if ext == "webp" else {}))
    wrong = {"still": info, "fewer": replace(info, frames=2), "more": replace(info, frames=4),
             "format": replace(info, format="AVIF" if ext != "png" else "GIF")}[other]
    said = {"still": rf"'{info.format}', 3 frames; the file is '{info.format}', 1",
            "fewer": rf"'{info.format}', 2 frames; the file is '{info.format}', 3",
            "more": rf"'{info.format}', 4 frames; the file is '{info.format}', 3",
            "format": rf"'{wrong.format}', 3 frames; the file is '{info.format}', 3"}[other]
    with pytest.raises(InputError, match=rf"{path.name}: info is another picture's \(it says {said}\): "
                                         r"give what read_image gave for this file, or none$"):
        read_frames(path, wrong)


def interlaced_apng16(path, frames: np.ndarray):
    """A two-frame Adam7-interlaced 16-bit RGBA APNG of ``frames`` (2×H×W×4 uint16) at ``path``."""
    height, width = frames.shape[1:3]
    coded = [zlib.compress(adam7_rows(frame)) for frame in frames]
    control = [png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, width, height, 0, 0, 1, 10, 0, 0)) for seq in (0, 1)]
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 1))
        + png_chunk(b"acTL", struct.pack(">II", 2, 0)) + control[0] + png_chunk(b"IDAT", coded[0])
        + control[1] + png_chunk(b"fdAT", struct.pack(">I", 2) + coded[1]) + png_chunk(b"IEND", b""))
    return path


def test_an_interlaced_sixteen_bit_apng_is_read_exactly(tmp_path):
    # FFmpeg, which reads 16-bit colour, placed an Adam7 one's pixels wrongly.
    frames = np.random.default_rng(0).integers(0, 65536, (2, 9, 11, 4)).astype(np.uint16)
    frames[:, :, :, 3] = 65535
    first, info = read_image(interlaced_apng16(tmp_path / "a.png", frames))
    assert np.array_equal(first, frames[0])
    animation, _ = read_frames(tmp_path / "a.png", info)
    assert all(np.array_equal(got[:, :, :3], want[:, :, :3]) for got, want in zip(animation.frames, frames))


def test_an_interlaced_sixteen_bit_apng_frame_of_damaged_data_is_one_error(tmp_path):
    frames = np.random.default_rng(0).integers(0, 65536, (2, 9, 11, 4)).astype(np.uint16)
    data = interlaced_apng16(tmp_path / "a.png", frames).read_bytes()
    at = data.index(b"fdAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    body = data[at + 4:at + 18] + b"\xff\xff\xff" + data[at + 21:at + 4 + length]  # past the zlib header
    (tmp_path / "b.png").write_bytes(data[:at + 4] + body + struct.pack(">I", zlib.crc32(b"fdAT" + body))
                                     + data[at + 8 + length:])
    _, info = read_image(tmp_path / "b.png")  # the first frame is whole
    with pytest.raises(InputError, match=r"b\.png: broken or truncated picture \(broken PNG: its compressed pixels"):
        read_frames(tmp_path / "b.png", info)


def test_animations_compare_equal_by_their_frames_timing_and_plays():
    # found by a library audit: two animations of equal frames in separate arrays
    # raised numpy's "truth value of an array ... is ambiguous" ValueError on ==.
    frames = (picture(6, 8), picture(6, 8, seed=1))
    animation = Animation(frames, (40, 60), 2)
    assert animation == Animation(tuple(f.copy() for f in frames), [40, 60], 2)
    assert animation != Animation((frames[0], frames[0]), (40, 60), 2)
    assert animation != Animation(frames, (40, 70), 2)
    assert animation != Animation(frames, (40, 60), 0)
    assert animation != Animation(tuple(f.astype(np.uint16) for f in frames), (40, 60), 2)
    assert animation != Animation(frames[:1], (40,), 2)
    assert animation != frames


def test_an_animation_s_repr_sums_its_frames_up():
    # found by a library audit: it printed every frame's pixels, screens of numbers
    # for a log line or a failed assert.
    animation = Animation((picture(60, 80), picture(60, 80, seed=1)), (40, 60), 2)
    assert repr(animation) == "Animation(frames=<2 of 60x80x3 uint8>, durations=(40, 60), plays=2)"


def test_a_file_name_with_a_line_break_is_escaped_in_read_frames_and_write_frames(tmp_path):
    with pytest.raises(InputError) as caught:
        read_frames(tmp_path / "a\nb.gif")
    assert str(caught.value) == f"{tmp_path}/a\\nb.gif: file not found"
    anim = Animation((picture(4, 4), picture(4, 4, seed=1)), (100, 100), 0)
    with pytest.raises(InputError) as caught:
        write_frames(tmp_path / "no\nfolder" / "o.gif", anim)
    assert "no\\nfolder" in str(caught.value) and "\n" not in str(caught.value)


def test_writing_frames_takes_memory_for_each_frame_beside_a_still_s():
    # Every frame is made a Pillow picture before the writer begins, and 16-bit APNG
    # frames' png files are held, copied and joined: six frames take more than two,
    # and two at least what write_image takes for a still.
    from ncnn_sr.animation import frames_write_bytes
    from ncnn_sr.images import write_bytes
    for fmt, quality, itemsize in [("png", None, 1), ("png", None, 2), ("gif", None, 1), ("webp", None, 1),
                                   ("webp", 80, 1), ("gif", None, 2)]:
        for channels in (1, 3, 4):
            two, six = (frames_write_bytes(100, 100, channels, itemsize, n, fmt, quality) for n in (2, 6))
            assert six > two >= write_bytes(100, 100, channels, itemsize, fmt, quality), (fmt, quality, itemsize)


def test_frames_whose_writing_cannot_fit_in_memory_are_refused_before_they_are_encoded(tmp_path, monkeypatch):
    # write_frames took no part in write_image's check: Linux would kill the process
    # whose animation's encoder took more than was available.
    import os
    from ncnn_sr import budget
    monkeypatch.setattr(budget, "memory_limit", lambda: 100)
    frames = Animation((picture(6, 8), picture(6, 8, seed=1)), (100, 100))
    with pytest.raises(InputError, match=r"^[^\n]*a\.webp: writing 2 8x6 frames as WEBP needs about \d+ kB of "
                                         r"memory beside the frames, more than the 100 bytes available$"):
        write_frames(tmp_path / "a.webp", frames)
    assert os.listdir(tmp_path) == []


def frame_writers_sharing_memory(monkeypatch, limit: int):
    """Memory of ``limit`` bytes, write_frames and write_image taking height x width
    bytes of it. Returns (begun, go, encoded): an animation of 6 rows, once its
    encoding has begun (``begun`` set), waits for ``go``; ``encoded`` lists the heights
    of the pictures and animations whose encoding began, in order."""
    import threading
    from ncnn_sr import animation as animation_mod, budget, images as images_mod
    monkeypatch.setattr(budget, "memory_limit", lambda: limit)
    monkeypatch.setattr(animation_mod, "frames_write_bytes", lambda height, width, *rest, **named: height * width)
    monkeypatch.setattr(images_mod, "write_bytes", lambda height, width, *rest, **named: height * width)
    begun, go, encoded = threading.Event(), threading.Event(), []
    encode_frames, encode = animation_mod._encode_frames, images_mod._encode

    def held_encode_frames(f, animation, *rest):
        encoded.append(animation.frames[0].shape[0])
        if animation.frames[0].shape[0] == 6:
            begun.set()
            assert go.wait(60), "never let go"
        encode_frames(f, animation, *rest)

    def noted_encode(f, image, *rest):
        encoded.append(image.shape[0])
        encode(f, image, *rest)

    monkeypatch.setattr(animation_mod, "_encode_frames", held_encode_frames)
    monkeypatch.setattr(images_mod, "_encode", noted_encode)
    return begun, go, encoded


def two_frames(height: int) -> Animation:
    return Animation((picture(height, 10), picture(height, 10, seed=1)), (100, 100))


@pytest.mark.parametrize("second", ["write_frames", "write_image"])
def test_a_frames_writer_and_others_in_other_threads_wait_for_room_beside_each_other(tmp_path, monkeypatch, second):
    # 60 + 50 bytes do not fit in 100: the second writer, of frames or of a still,
    # waits for the frames in progress to finish, then writes.
    import threading
    import time
    from ncnn_sr import budget
    begun, go, encoded = frame_writers_sharing_memory(monkeypatch, 100)
    write = {"write_frames": lambda: write_frames(tmp_path / "b.png", two_frames(5)),
             "write_image": lambda: write_image(tmp_path / "b.png", picture(5, 10))}[second]
    first = threading.Thread(target=write_frames, args=(tmp_path / "a.png", two_frames(6)))
    other = threading.Thread(target=write)
    try:
        first.start()
        assert begun.wait(30)
        other.start()
        for _ in range(30000):  # a bound against a hang, not a timing
            if budget.WRITERS.waiting or len(encoded) > 1:
                break
            time.sleep(0.001)
        assert encoded == [6] and budget.WRITERS.waiting == 1
    finally:
        go.set()
        first.join()
        other.join()
    assert encoded == [6, 5] and budget.WRITERS.waiting == 0
    assert read_frames(tmp_path / "a.png")[1].frames == 2
    assert read_image(tmp_path / "b.png")[0].shape == (5, 10, 3)


def test_a_frames_writer_waits_for_a_still_s_writer_in_progress(tmp_path, monkeypatch):
    # 70 bytes promised to a still in progress, 50 to the frames: they wait for it.
    import threading
    import time
    from ncnn_sr import budget, images as images_mod
    begun, go, encoded = frame_writers_sharing_memory(monkeypatch, 100)
    encode = images_mod._encode

    def held_encode(f, image, *rest):
        begun.set()
        assert go.wait(60), "never let go"
        encode(f, image, *rest)

    monkeypatch.setattr(images_mod, "_encode", held_encode)
    first = threading.Thread(target=write_image, args=(tmp_path / "a.png", picture(7, 10)))
    other = threading.Thread(target=write_frames, args=(tmp_path / "b.gif", two_frames(5)))
    try:
        first.start()
        assert begun.wait(30)
        other.start()
        for _ in range(30000):  # a bound against a hang, not a timing
            if budget.WRITERS.waiting or encoded:
                break
            time.sleep(0.001)
        assert encoded == [] and budget.WRITERS.waiting == 1
    finally:
        go.set()
        first.join()
        other.join()
    assert encoded == [7, 5] and budget.WRITERS.waiting == 0  # the still's noted as its encoding goes on
    assert read_frames(tmp_path / "b.gif")[1].frames == 2


def test_frames_whose_encoder_runs_out_of_memory_are_one_error_and_no_file(tmp_path, monkeypatch):
    import os

    def no_memory(*args, **kwargs):
        raise MemoryError

    from ncnn_sr import gif
    monkeypatch.setattr(Image.Image, "save", no_memory)
    monkeypatch.setattr(gif, "_lzw", no_memory)  # which encodes each GIF frame
    with pytest.raises(InputError, match=r"a\.gif: not enough memory to write 2 10x6 frames as GIF \(about \d+ kB"):
        write_frames(tmp_path / "a.gif", two_frames(6))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("frames", [1, 2])
def test_what_is_no_path_is_refused_naming_write_frames_for_one_frame_as_for_many(frames, tmp_path):
    # One frame is written as a still by write_image, whose refusal named write_image,
    # a function the caller never called.
    animation = Animation(tuple(picture(4, 4, seed=i) for i in range(frames)), (100,) * frames)
    for given, said in ((None, "None"), (3, "3"), ("", "''")):
        with pytest.raises(InputError) as refused:
            write_frames(given, animation)
        assert str(refused.value) == f"write_frames needs a file's path, got {said}"
    with open(tmp_path / "a.gif", "wb") as f, pytest.raises(InputError) as refused:
        write_frames(f, animation)
    assert str(refused.value) == f"write_frames needs a file's path, got an open file: give its path, {f.name!r}"
    assert [p.name for p in tmp_path.iterdir()] == ["a.gif"] and not (tmp_path / "a.gif").stat().st_size


XMP_PACKET = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
              b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
              b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Doe</dc:creator></rdf:Description>'
              b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def with_gif_xmp(data: bytes, packet: bytes = XMP_PACKET) -> bytes:
    """The GIF ``data`` with an XMP packet before its first frame, as Photoshop and
    ExifTool write it: an application extension "XMP DataXMP" whose data is the
    packet as it is, then the 258-byte "magic trailer" (1, 255 down to 0) that
    keeps a reader walking it as sub-blocks on track, then the terminator."""
    trailer = bytes([1, *range(255, -1, -1)])
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # past the screen and global palette
    return data[:at] + b"\x21\xff\x0bXMP DataXMP" + packet + trailer + b"\x00" + data[at:]


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_a_gifs_xmp_is_kept_in_a_png_or_webp(frames, fmt, tmp_path):
    # found by an animation user's audit: Pillow reads no XMP from a GIF, so its
    # creator and rights were left out of every output.
    pictures = [Image.fromarray(picture(6, 8) // (i + 1)) for i in range(frames)]
    save_animation(tmp_path / "plain.gif", pictures, duration=100, loop=0)
    (tmp_path / "a.gif").write_bytes(with_gif_xmp((tmp_path / "plain.gif").read_bytes()))
    animation, info = read_frames(tmp_path / "a.gif")
    assert len(animation.frames) == frames and info.xmp == XMP_PACKET
    write_frames(tmp_path / f"o.{fmt}", animation, info)
    with Image.open(tmp_path / f"o.{fmt}") as written:
        assert b"<dc:creator>Jane Doe</dc:creator>" in written.info["xmp"]


def with_gif_icc(data: bytes, icc: bytes) -> bytes:
    """The GIF ``data`` with the ICC profile ``icc`` before its first frame, as
    ImageMagick writes it: an application extension "ICCRGBG1012" whose data
    sub-blocks hold the profile."""
    blocks = b"".join(bytes([len(icc[i:i + 255])]) + icc[i:i + 255] for i in range(0, len(icc), 255))
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # past the screen and global palette
    return data[:at] + b"\x21\xff\x0bICCRGBG1012" + blocks + b"\x00" + data[at:]


@pytest.mark.parametrize("frames", [1, 3])
@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_a_gifs_icc_profile_is_kept_in_a_png_or_webp(frames, fmt, tmp_path):
    # found by a picture audit: Pillow reads no ICC profile from a GIF, so a Display
    # P3 one's colours were written without it, shown duller, as sRGB.
    p3 = icc_mod.profile(icc_mod.CODED_PRIMARIES[12], 2.2, grey=False)
    pictures = [Image.fromarray(picture(6, 8) // (i + 1)) for i in range(frames)]
    save_animation(tmp_path / "plain.gif", pictures, duration=100, loop=0)
    (tmp_path / "a.gif").write_bytes(with_gif_icc((tmp_path / "plain.gif").read_bytes(), p3))
    animation, info = read_frames(tmp_path / "a.gif")
    assert len(animation.frames) == frames and info.icc_profile == p3
    write_frames(tmp_path / f"o.{fmt}", animation, info)
    with Image.open(tmp_path / f"o.{fmt}") as written:
        assert written.info["icc_profile"] == p3


def test_an_animated_gif_of_another_colour_space_shows_its_colours_as_srgb(tmp_path):
    # found by a picture audit: a GIF holds no profile, and a Display P3 animation's
    # colours went in as they were, shown as sRGB, duller.
    p3 = icc_mod.profile(icc_mod.CODED_PRIMARIES[12], 2.2, grey=False)
    frames = (np.full((4, 6, 3), (200, 30, 30), np.uint8), np.full((4, 6, 3), (30, 160, 90), np.uint8))
    write_frames(tmp_path / "o.gif", Animation(frames, (100, 100)), ImageInfo("RGB", "WEBP", icc_profile=p3))
    srgb = ImageCms.createProfile("sRGB")
    for got, frame in zip(read_frames(tmp_path / "o.gif")[0].frames, frames):
        shown = ImageCms.profileToProfile(Image.fromarray(frame), ImageCms.ImageCmsProfile(io.BytesIO(p3)), srgb)
        assert np.abs(got.astype(int) - np.asarray(shown)).max() <= 2


def test_an_animated_gifs_comment_is_kept_in_a_gif(tmp_path):
    frames = [Image.fromarray(picture(6, 8) // (i + 1)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=[100, 200, 300],
                   loop=0, comment=b"made by Jane")
    animation, info = read_frames(tmp_path / "a.gif")
    write_frames(tmp_path / "o.gif", animation, info)
    with Image.open(tmp_path / "o.gif") as written:
        assert written.info["comment"] == b"made by Jane" and written.n_frames == 3


def composed(frames) -> list[np.ndarray]:
    """The canvas after each of ``gif.animation_to_palette``'s frames, composed here
    from their palette pictures, boxes and disposals, before any is encoded."""
    canvas, shown = None, []
    for frame in frames:
        picture = frame.picture
        if canvas is None:
            canvas = np.zeros((picture.height, picture.width, 4), np.uint8)
        indices = np.asarray(picture)
        palette = np.array(picture.getpalette(), np.uint8).reshape(-1, 3)
        drawn = indices != picture.info.get("transparency", -1)
        box = canvas[frame.top:frame.top + picture.height, frame.left:frame.left + picture.width]
        box[drawn] = np.concatenate([palette[indices[drawn]], np.full((int(drawn.sum()), 1), 255, np.uint8)], axis=1)
        shown.append(canvas.copy())
        if frame.disposal == 2:
            box[:] = 0
    return shown


def composed_by_pillow(path) -> tuple[list[np.ndarray], list[int], int | None]:
    """Each frame of the GIF at ``path`` as Pillow's reader composes it, RGBA, with
    the durations and the loop count it reads."""
    frames, durations = [], []
    with Image.open(path) as im:
        for index in range(im.n_frames):
            im.seek(index)
            frames.append(np.asarray(im.convert("RGBA")))
            durations.append(im.info["duration"])
        return frames, durations, im.info.get("loop")


def sprite_gif(path, scene: str, clear: bool, disposal: int):
    """A small animated GIF made by Pillow: a sprite moving over a still background
    (``clear``: a clear surround), or every pixel changing each frame (``clear``:
    with clear holes that move)."""
    y, x = np.mgrid[0:24, 0:32]
    frames = []
    for i in range(5):
        if scene == "sprite":
            frame = np.zeros((24, 32, 4), np.uint8)
            frame[:, :, :3] = np.stack([x * 8, y * 10, 128 + 0 * x], axis=2)
            frame[:, :, 3] = 0 if clear else 255
            frame[8:16, 3 + 4 * i:11 + 4 * i] = (220, 40, 40, 255)
            frame[10:14, 5 + 4 * i:9 + 4 * i] = (250, 250, 0, 255)
        else:
            frame = np.stack([(x * 8 + 40 * i) % 256, (y * 10 + 30 * i) % 256, (x * y + 50 * i) % 256,
                              np.where((x // 4 + y // 4 + i) % 3 == 0, 0 if clear else 255, 255)], axis=2)
        frames.append(Image.fromarray(frame.astype(np.uint8)) if clear else Image.fromarray(frame[:, :, :3].astype(np.uint8)))
    return save_animation(path, frames, duration=[70, 80, 90, 100, 110], loop=0, disposal=disposal)


@pytest.mark.parametrize("disposal", [1, 2, 3])
@pytest.mark.parametrize("scene, clear", [("sprite", False), ("sprite", True), ("full", False), ("full", True)])
def test_an_upscaled_gif_shows_exactly_the_frames_its_palette_pictures_make(scene, clear, disposal, in_process,
                                                                           monkeypatch, tmp_path):
    # What the file holds is how the palette pictures are encoded: a frame that uses
    # the global table, or transparency where a pixel stays as drawn, must change no
    # pixel that Pillow's reader (and a browser) composes.
    from ncnn_sr import animation

    made = []

    def recorded(frames):
        made.append((frames, animation.__dict__["_real_gif_pictures"](frames)))
        return made[-1][1]
    monkeypatch.setitem(animation.__dict__, "_real_gif_pictures", animation.gif_pictures)
    monkeypatch.setattr(animation, "gif_pictures", recorded)
    source = sprite_gif(tmp_path / "a.gif", scene, clear, disposal)
    status, stderr = in_process("-i", source, "-o", tmp_path / "b.gif", "-n", "realesr-animevideov3", "-s", 2,
                                "-g", -1)
    assert (status, stderr) == (0, "")
    (upscaled, pictures), = made
    got, durations, loop = composed_by_pillow(tmp_path / "b.gif")
    assert durations == [70, 80, 90, 100, 110] and loop == 0 and len(got) == len(upscaled) == 5
    assert all(shown_alike(a, b) for a, b in zip(got, composed(pictures)))
    for a, want in zip(got, upscaled):
        opaque = want[:, :, 3] >= 128 if want.shape[2] == 4 else np.ones(want.shape[:2], bool)
        assert np.array_equal(a[:, :, 3] == 255, opaque) and np.array_equal(a[:, :, 3] == 0, ~opaque)
        assert np.abs(a[:, :, :3].astype(int) - want[:, :, :3])[opaque].mean() < 8  # 255 colours a frame


def blinking_sticker(count=6) -> Animation:
    """A textured disc (more colours than a GIF palette holds) in a clear surround,
    shown at the left and at the right in turn: each frame clears the one before."""
    y, x = np.mgrid[0:48, 0:64]
    grain = np.random.default_rng(0).integers(-12, 13, (48, 64, 3))
    colour = (np.stack([x * 3 + 40, y * 4 + 20, 140 + x - y], axis=2) + grain).clip(0, 255).astype(np.uint8)
    frames = []
    for i in range(count):
        centre = 18 if i % 2 == 0 else 46
        alpha = ((x - centre) ** 2 + (y - 24) ** 2 < 14 ** 2) * 255
        frames.append(np.dstack([colour, alpha.astype(np.uint8)]))
    return Animation(tuple(frames), (100,) * count)


def test_gif_frames_that_draw_the_same_colours_share_the_global_palette(tmp_path):
    # found measuring our GIFs against gifsicle -O3: each frame after the first
    # carried a table of its own, 768 bytes for a frame of 129 colours or more, where
    # frames that draw alike (a disc that blinks, a sprite shown again) use one set of
    # colours; gifsicle puts it in the global table, and the file was 9363 bytes,
    # 7827 so (-16 %), the frames drawn exactly alike.
    from ncnn_sr.gif import _images
    anim = blinking_sticker()
    write_frames(tmp_path / "a.gif", anim)
    data = (tmp_path / "a.gif").read_bytes()
    assert len(data) <= 8000
    own_tables = [bool(data[pos + 9] & 0x80) for pos, _, _ in _images(data)]
    assert own_tables.count(False) >= 3
    got, durations, loop = composed_by_pillow(tmp_path / "a.gif")
    assert durations == [100] * 6 and loop == 0
    for a, want in zip(got, anim.frames):
        assert np.array_equal(a[:, :, 3], want[:, :, 3])
        assert np.abs(a[:, :, :3].astype(int) - want[:, :, :3])[want[:, :, 3] > 0].mean() < 6


def test_a_gif_frame_of_few_colours_is_coded_in_as_few_bits(tmp_path):
    # Pillow's encoder wrote a code size of 8, whatever the table: codes of 9 bits at
    # first for a frame of 3 colours, where 3 do. The file of this animation was 286
    # bytes (322 before frames shared the global table), 214 so; the frames alike.
    from ncnn_sr.gif import _images
    frames = []
    for i in range(4):
        frame = np.full((32, 40, 3), (20, 90, 160), np.uint8)
        frame[4:10, 4 + 6 * i:10 + 6 * i] = (255, 255, 0) if i % 2 else (255, 0, 255)
        frames.append(frame)
    write_frames(tmp_path / "a.gif", Animation(tuple(frames), (100,) * 4))
    data = (tmp_path / "a.gif").read_bytes()
    assert len(data) <= 230
    code_sizes = []
    for pos, _, _ in _images(data):
        table = data[pos + 9] if data[pos + 9] & 0x80 else data[10]
        code_sizes.append((data[pos + 10 + (3 << (table & 7) + 1 if data[pos + 9] & 0x80 else 0)], table & 7))
    assert code_sizes == [(2, 1)] * 4  # 4 entries: a table size of 1 (2 bits), the least code size, 2
    got, durations, _ = composed_by_pillow(tmp_path / "a.gif")
    assert durations == [100] * 4 and all(np.array_equal(a[:, :, :3], want) for a, want in zip(got, frames))
