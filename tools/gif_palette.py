"""GIF palettes: Pillow's search methods against the median cut the GIF writer uses.

Three animations of 6 frames of 320x240, as an x2 upscale gives them: anime-like
(flat colours, sharp edges, a soft gradient sky where bands show), a dithered
256-colour photo-like GIF upscaled (75k colours a frame) and a sticker with clear
pixels. Each frame is reduced to 255 colours by MEDIANCUT (what gif.to_palette does
now), MAXCOVERAGE and FASTOCTREE (LIBIMAGEQUANT where this Pillow has it), each
undithered (as Pillow's search maps) and Floyd-Steinberg dithered (mapped again to
the palette found), with a palette per frame or one found for all the frames. For
each: the CPU time a frame (the variants alternate, each round in the reverse order
of the one before), the bytes of the frames saved alone as GIFs, the PSNR of the
decoded frame against the RGB it was made from (opaque pixels) and the worst 8x8
block's PSNR. Then the whole writer (gif.animation_to_palette + write_animation,
which draws only what changed) with each method in place of median cut.

    python tools/gif_palette.py --rounds 3
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, features

from ncnn_sr import gif

W, H, N = 320, 240, 6
Q, D = Image.Quantize, Image.Dither


def _x2(a: np.ndarray) -> np.ndarray:
    mode = "RGBA" if a.shape[2] == 4 else "RGB"
    return np.asarray(Image.fromarray(a, mode).resize((a.shape[1] * 2, a.shape[0] * 2), Image.LANCZOS))


def anime() -> list[np.ndarray]:
    yy, xx = np.mgrid[0:H // 2, 0:W // 2]
    sky = np.stack([60 + yy * 0.8, 120 + yy * 0.6, 230 - yy * 0.3], -1)
    frames = []
    for t in range(N):
        f = sky.copy()
        f[yy > 80] = (70, 160, 60)
        f[(xx - 40 - 6 * t) ** 2 + (yy - 60) ** 2 < 400] = (250, 220, 190)
        f[(xx - 40 - 6 * t) ** 2 + (yy - 55) ** 2 < 9] = (20, 20, 40)
        f[(abs(xx - 110) < 15) & (abs(yy - 50 - t) < 25)] = (200, 40, 60)
        frames.append(_x2(np.clip(f, 0, 255).astype(np.uint8)))
    return frames


def dithered_photo() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, (H // 8, W // 8, 3))
    yy, xx = np.mgrid[0:H // 2, 0:W // 2]
    frames = []
    for t in range(N):
        blurred = Image.fromarray(np.clip(128 + 50 * np.roll(base, t, axis=1), 0, 255).astype(np.uint8))
        a = np.asarray(blurred.resize((W // 2, H // 2), Image.BICUBIC)).astype(float)
        a += np.stack([xx * 0.4, yy * 0.3, (xx + yy) * 0.2], -1) - 40 + rng.normal(0, 4, a.shape)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        source = im.quantize(palette=im.quantize(256), dither=D.FLOYDSTEINBERG)  # as a GIF held it
        frames.append(_x2(np.asarray(source.convert("RGB"))))
    return frames


def sticker() -> list[np.ndarray]:
    yy, xx = np.mgrid[0:H // 2, 0:W // 2]
    frames = []
    for t in range(N):
        f = np.zeros((H // 2, W // 2, 4), np.uint8)
        r = np.hypot(xx - 60 - 5 * t, yy - 60)
        body = r < 40
        f[body, :3] = np.stack([255 - r * 3, 150 + r, 80 + r * 2], -1)[body].clip(0, 255)
        f[body, 3] = 255
        f[(abs(xx - 60 - 5 * t) < 8) & (abs(yy - 50) < 4), :3] = (30, 10, 10)
        frames.append(_x2(f))
    return frames


def _rgb(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(frame[:, :, :3]))


def per_frame(method, dither: bool):
    def run(frames):
        out = []
        for frame in frames:
            im = _rgb(frame)
            start = time.process_time()
            picture = im.quantize(gif.TRANSPARENT_INDEX, method=method)
            if dither:  # the search maps undithered whatever it is asked
                picture = im.quantize(palette=picture, dither=D.FLOYDSTEINBERG)
            out.append((picture, time.process_time() - start))
        return out
    return run


def one_palette(method, dither: bool):
    def run(frames):
        start = time.process_time()
        strip = Image.fromarray(np.ascontiguousarray(np.concatenate([f[:, :, :3] for f in frames])))
        palette = strip.quantize(gif.TRANSPARENT_INDEX, method=method)
        share = (time.process_time() - start) / len(frames)
        out = []
        for frame in frames:
            start = time.process_time()
            picture = _rgb(frame).quantize(palette=palette, dither=D.FLOYDSTEINBERG if dither else D.NONE)
            out.append((picture, time.process_time() - start + share))
        return out
    return run


def _db(mse: float) -> float:
    return 10 * np.log10(255 ** 2 / max(mse, 1e-9))


def quality(shown: np.ndarray, frame: np.ndarray) -> tuple[float, float]:
    """PSNR over the opaque pixels and that of the worst 8x8 block (over half opaque)."""
    err = ((shown[:, :, :3].astype(float) - frame[:, :, :3]) ** 2).mean(axis=2)
    opaque = frame[:, :, 3] >= gif.ALPHA_CUT if frame.shape[2] == 4 else np.ones(err.shape, bool)
    h, w = err.shape[0] // 8 * 8, err.shape[1] // 8 * 8
    blocks = np.where(opaque, err, 0)[:h, :w].reshape(h // 8, 8, w // 8, 8).sum(axis=(1, 3))
    counted = opaque[:h, :w].reshape(h // 8, 8, w // 8, 8).sum(axis=(1, 3))
    return _db(err[opaque].mean()), _db((blocks[counted > 32] / counted[counted > 32]).max())


def _saved(picture: Image.Image) -> bytes:
    b = io.BytesIO()
    picture.save(b, "GIF", **gif.SAVE_OPTIONS)
    return b.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    methods = {"mediancut": Q.MEDIANCUT, "maxcoverage": Q.MAXCOVERAGE, "fastoctree": Q.FASTOCTREE}
    if features.check_feature("libimagequant"):
        methods["libimagequant"] = Q.LIBIMAGEQUANT
    print(f"Pillow {Image.__version__}, libimagequant: {features.check_feature('libimagequant')}")
    variants = {}
    for name, method in methods.items():
        variants[name] = per_frame(method, False)
        variants[name + "+FS"] = per_frame(method, True)
    for name in ("mediancut", "fastoctree"):
        variants["one palette, " + name] = one_palette(methods[name], False)
        variants["one palette, " + name + "+FS"] = one_palette(methods[name], True)
    for title, frames in (("anime x2", anime()), ("dithered photo x2", dithered_photo()),
                          ("sticker with clear pixels", sticker())):
        colours = np.mean([len(np.unique(f[:, :, :3].reshape(-1, 3), axis=0)) for f in frames])
        print(f"\n{title}: {N} frames of {W}x{H}, {colours:.0f} colours a frame")
        print("| variant | ms a frame, median (range) | time / mediancut | bytes | PSNR dB | worst 8x8 block dB |")
        print("|---|---|---|---|---|---|")
        times: dict[str, list[float]] = {k: [] for k in variants}
        found = {}
        for r in range(rounds):
            for k in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
                out = variants[k](frames)
                times[k].append(sum(t for _, t in out) / len(out))
                if k not in found:
                    shown = [np.asarray(Image.open(io.BytesIO(_saved(p))).convert("RGB")) for p, _ in out]
                    q = [quality(s, f) for s, f in zip(shown, frames)]
                    found[k] = (sum(len(_saved(p)) for p, _ in out), np.mean([a for a, _ in q]), min(b for _, b in q))
        base = np.median(times["mediancut"])
        for k in variants:
            m = np.median(times[k])
            print(f"| {k} | {m * 1000:.0f} ({min(times[k]) * 1000:.0f}-{max(times[k]) * 1000:.0f}) | {m / base:.2f} "
                  f"| {found[k][0]} | {found[k][1]:.2f} | {found[k][2]:.2f} |")
        print("whole writer: | method | CPU ms, median | / mediancut | GIF bytes | PSNR dB | worst 8x8 block dB |")
        search = Image.Image.quantize
        spent: dict[str, list[float]] = {k: [] for k in methods}
        for r in range(rounds):
            for k in (list(methods) if r % 2 == 0 else list(methods)[::-1]):
                def swapped(im, colors=256, method=None, *args, _m=methods[k], **kwargs):
                    return search(im, colors, _m if method == Q.MEDIANCUT else method, *args, **kwargs)
                Image.Image.quantize = swapped
                try:
                    start = time.process_time()
                    b = io.BytesIO()
                    gif.write_animation(b, gif.animation_to_palette(frames), [100] * N, 0)
                    spent[k].append(time.process_time() - start)
                finally:
                    Image.Image.quantize = search
                if r == 0:
                    q = [quality(s, f) for s, f in zip(gif.frames_as_shown(b.getvalue())[0], frames)]
                    found[k] = (len(b.getvalue()), np.mean([a for a, _ in q]), min(c for _, c in q))
        for k in methods:
            m = np.median(spent[k])
            print(f"| {k} | {m * 1000:.0f} | {m / np.median(spent['mediancut']):.2f} | {found[k][0]} "
                  f"| {found[k][1]:.2f} | {found[k][2]:.2f} |")


if __name__ == "__main__":
    main()
