"""GIF palettes: Pillow's search methods against the GIF writer's (median cut and the details it loses).

``--sets tool``: three animations of 6 frames of 320x240, as an x2 upscale gives them: anime-like
(flat colours, sharp edges, a soft gradient sky where bands show), a dithered
256-colour photo-like GIF upscaled (75k colours a frame) and a sticker with clear
pixels. Each frame is reduced to 255 colours (``--searches all``) by MEDIANCUT (what
gif.to_palette did before the details were added), MAXCOVERAGE and FASTOCTREE (LIBIMAGEQUANT where this Pillow has it), each
undithered (as Pillow's search maps) and Floyd-Steinberg dithered (mapped again to
the palette found), with a palette per frame or one found for all the frames. For
each: the CPU time a frame (the variants alternate, each round in the reverse order
of the one before), the bytes of the frames saved alone as GIFs, the PSNR of the
decoded frame against the RGB it was made from (opaque pixels) and the worst 8x8
block's PSNR. Then the whole writer (gif.animation_to_palette + write_animation,
which draws only what changed) with each method in place of median cut.

    python tools/gif_palette.py --rounds 3 --sets tool --searches all

The drawn sets (``--sets drawn``) are anime-like frames drawn anti-aliased and
upscaled x2 by realesr-animevideov3 on the CPU (``--lanczos``: by Lanczos, no
network): cel shading with outlines (24 frames of 160x120), line art on paper with
thin strokes and sparkles (16 of 256x192), a gradient sunset (12 of 256x192), a
photo-like fractal texture with noise, panning (8 of 256x192), a tiny sprite (30 of
64x48). For them, and by default, the searches compared are the one GIF frames get
now (``gif._searched``: median cut and the details it loses), median cut alone (as
it was), MAXCOVERAGE alone, the lower error of those two for each frame, and median
cut searched on a quarter of the pixels, all of them mapped by Pillow, each also in
the whole writer (``gif._searched`` replaced):

    python tools/gif_palette.py --rounds 3 --sets drawn
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image, ImageDraw, features

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


# --- drawn sets: shapes drawn at 4x and reduced, so their edges are anti-aliased -----

SS = 4


def _head(d: ImageDraw.ImageDraw, cx: float, cy: float, s: float, blink: bool = False,
          hair=(240, 170, 60)) -> None:
    """A face of radius ``s`` (drawn pixels): outline, hair, eyes with a pupil and a
    highlight (or closed), a red mouth: the small details of distinct colours."""
    line, lw = (40, 25, 30), max(1, int(s * 0.06))
    d.ellipse([cx - s, cy - s, cx + s, cy + s * 1.1], fill=(255, 224, 200), outline=line, width=lw)
    d.pieslice([cx - s * 1.05, cy - s * 1.15, cx + s * 1.05, cy + s * 0.6], 180, 360, fill=hair, outline=line, width=lw)
    for ex in (cx - s * 0.4, cx + s * 0.4):
        if blink:
            d.line([ex - s * 0.18, cy + s * 0.2, ex + s * 0.18, cy + s * 0.2], fill=line, width=lw)
            continue
        d.ellipse([ex - s * 0.17, cy - s * 0.05, ex + s * 0.17, cy + s * 0.45], fill=(60, 40, 140), outline=line, width=lw)
        d.ellipse([ex - s * 0.1, cy + s * 0.05, ex + s * 0.1, cy + s * 0.35], fill=(10, 10, 30))
        d.ellipse([ex - s * 0.06, cy + s * 0.02, ex + s * 0.02, cy + s * 0.12], fill=(255, 255, 255))
    d.arc([cx - s * 0.2, cy + s * 0.5, cx + s * 0.2, cy + s * 0.75], 20, 160, fill=(180, 40, 60), width=lw)


def _reduced(im: Image.Image, w: int, h: int) -> np.ndarray:
    return np.asarray(im.resize((w, h), Image.LANCZOS))


def flat(n=24, w=160, h=120) -> list[np.ndarray]:
    out = []
    for t in range(n):
        im = Image.new("RGB", (w * SS, h * SS), (200, 230, 245))
        d = ImageDraw.Draw(im)
        d.rectangle([0, h * SS * 0.65, w * SS, h * SS], fill=(120, 190, 90))
        d.rectangle([w * SS * 0.7, h * SS * 0.2, w * SS * 0.95, h * SS * 0.65], fill=(190, 150, 120),
                    outline=(60, 40, 30), width=SS)
        d.rectangle([w * SS * 0.75, h * SS * 0.3, w * SS * 0.82, h * SS * 0.4], fill=(250, 250, 180),
                    outline=(60, 40, 30), width=SS)
        _head(d, (40 + 2 * t) * SS, 55 * SS, 26 * SS, blink=t % 8 == 5)
        out.append(_reduced(im, w, h))
    return out


def outlines(n=16, w=256, h=192) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    strokes = [(rng.uniform(0, w * 1.3 * SS, 4), tuple(int(c) for c in rng.integers(0, 120, 3))) for _ in range(60)]
    out = []
    for t in range(n):
        im = Image.new("RGB", (w * SS, h * SS), (250, 248, 240))
        d = ImageDraw.Draw(im)
        for pts, colour in strokes:
            d.line([pts[0] - 3 * t * SS, pts[1] % (h * SS), pts[2] - 3 * t * SS, pts[3] % (h * SS)], fill=colour, width=SS)
        _head(d, 128 * SS, (96 + t % 4) * SS, 40 * SS, blink=t % 6 == 3, hair=(80, 60, 200))
        for k in range(8):  # sparkles of 2x2 pixels
            x, y = (20 + 29 * k + t * 2) % w, 20 + 17 * k
            d.ellipse([x * SS, y * SS, (x + 2) * SS, (y + 2) * SS], fill=(255, 40 * k % 256, 0))
        out.append(_reduced(im, w, h))
    return out


def gradient(n=12, w=256, h=192) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h * SS, 0:w * SS] / SS
    sky = np.stack([250 - yy * 0.6, 120 + yy * 0.5, 90 + yy * 0.8], -1)
    out = []
    for t in range(n):
        a = sky.copy()
        a[(xx - 180) ** 2 + (yy - 60 - t) ** 2 < 30 ** 2] = (255, 240, 180)
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(im)
        d.polygon([(0, 150 * SS), (60 * SS, 120 * SS), (130 * SS, 160 * SS), (256 * SS, 140 * SS),
                   (256 * SS, 192 * SS), (0, 192 * SS)], fill=(40, 30, 60))
        _head(d, (60 + 4 * t) * SS, 130 * SS, 18 * SS, hair=(30, 30, 30))
        out.append(_reduced(im, w, h))
    return out


def photo(n=8, w=256, h=192) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    big = np.zeros((h * 2, w * 2, 3))
    for octave in range(1, 7):
        cell = 128 // 2 ** octave
        rows, columns = h * 2 // cell + 2, w * 2 // cell + 2
        layer = rng.normal(0, 1, (rows, columns, 3))
        layer = ((layer - layer.min()) / np.ptp(layer) * 255).astype(np.uint8)
        up = np.asarray(Image.fromarray(layer).resize((columns * cell, rows * cell), Image.BICUBIC)).astype(float)
        big += (up[:h * 2, :w * 2] - 128) / octave
    big = 120 + big * 0.9 + np.linspace(-30, 30, w * 2)[None, :, None]
    return [np.clip(big[t * 3:t * 3 + h, t * 5:t * 5 + w] + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
            for t in range(n)]


def sprite(n=30, w=64, h=48) -> list[np.ndarray]:
    out = []
    for t in range(n):
        im = Image.new("RGB", (w * SS, h * SS), (30, 30, 60))
        d = ImageDraw.Draw(im)
        d.rectangle([0, 38 * SS, w * SS, h * SS], fill=(90, 60, 40))
        _head(d, (10 + t * 1.5) * SS, 24 * SS, 10 * SS, blink=t % 10 == 0)
        d.rectangle([(t * 3 % w) * SS, 5 * SS, (t * 3 % w + 1) * SS, 6 * SS], fill=(255, 255, 0))
        out.append(_reduced(im, w, h))
    return out


def drawn_sets(lanczos: bool) -> dict[str, list[np.ndarray]]:
    made = {"cel shading": flat(), "line art": outlines(), "gradient sunset": gradient(),
            "photo-like": photo(), "sprite": sprite()}
    if lanczos:
        return {k: [_x2(f) for f in frames] for k, frames in made.items()}
    from ncnn_sr import Upscaler
    with Upscaler("realesr-animevideov3-x2", device=-1) as up:
        return {k: [up.upscale(f) for f in frames] for k, frames in made.items()}


# --- searches: an H×W×3 array to a palette picture of 255 colours --------------------

def _method(method):
    return lambda rgb: Image.fromarray(rgb).quantize(gif.TRANSPARENT_INDEX, method=method)


def _error(picture: Image.Image, rgb: np.ndarray) -> float:
    palette = np.array(picture.getpalette(), np.uint8).reshape(-1, 3)
    d = palette[np.asarray(picture)].astype(np.int32) - rgb
    return float(np.einsum("ijk,ijk->", d, d))


def lower_error(rgb: np.ndarray) -> Image.Image:
    """Median cut or MAXCOVERAGE, whichever leaves the frame the lower squared error."""
    found = [_method(m)(rgb) for m in (Q.MEDIANCUT, Q.MAXCOVERAGE)]
    return min(found, key=lambda p: _error(p, rgb))


def quarter(rgb: np.ndarray) -> Image.Image:
    """Median cut searched on every other pixel of every other row, the frame mapped to
    it by Pillow (its nearest colour cached at 6 bits a channel)."""
    palette = Image.fromarray(np.ascontiguousarray(rgb[::2, ::2])).quantize(gif.TRANSPARENT_INDEX, method=Q.MEDIANCUT)
    return Image.fromarray(rgb).quantize(palette=palette, dither=D.NONE)


def per_frame(search, dither: bool):
    def run(frames):
        out = []
        for frame in frames:
            rgb = np.ascontiguousarray(frame[:, :, :3])
            start = time.process_time()
            picture = search(rgb)
            if dither:
                im = Image.fromarray(rgb)  # the search maps undithered whatever it is asked
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


def _whole(frames: list[np.ndarray], search) -> tuple[bytes, float, float]:
    """The GIF of ``frames`` as the writer makes it with ``search`` in place of
    ``gif._searched``, its CPU time and that of the searches in it."""
    now, spent = gif._searched, [0.0]

    def timed(rgb):
        start = time.process_time()
        try:
            return search(rgb)
        finally:
            spent[0] += time.process_time() - start
    gif._searched = timed
    try:
        start = time.process_time()
        b = io.BytesIO()
        gif.write_animation(b, gif.animation_to_palette(frames), [100] * len(frames), 0)
        return b.getvalue(), time.process_time() - start, spent[0]
    finally:
        gif._searched = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sets", choices=("drawn", "tool", "both"), default="drawn")
    parser.add_argument("--searches", choices=("compared", "all"), default="compared",
                        help="all: FASTOCTREE (LIBIMAGEQUANT), dithered and one palette for all frames too")
    parser.add_argument("--lanczos", action="store_true", help="drawn sets upscaled by Lanczos, not the network")
    args = parser.parse_args()
    rounds = args.rounds
    print(f"Pillow {Image.__version__}, libimagequant: {features.check_feature('libimagequant')}")
    searches = {"now (median cut + details)": gif._searched, "mediancut": _method(Q.MEDIANCUT),
                "maxcoverage": _method(Q.MAXCOVERAGE), "lower error of the two": lower_error,
                "mediancut of a quarter, Pillow maps": quarter}
    if args.searches == "all":
        searches["fastoctree"] = _method(Q.FASTOCTREE)
        if features.check_feature("libimagequant"):
            searches["libimagequant"] = _method(Q.LIBIMAGEQUANT)
    variants = {name: per_frame(search, False) for name, search in searches.items()}
    if args.searches == "all":
        for name, search in searches.items():
            variants[name + "+FS"] = per_frame(search, True)
        for name in ("mediancut", "fastoctree"):
            method = Q.MEDIANCUT if name == "mediancut" else Q.FASTOCTREE
            variants["one palette, " + name] = one_palette(method, False)
            variants["one palette, " + name + "+FS"] = one_palette(method, True)
    sets = {}
    if args.sets in ("tool", "both"):
        sets.update({"anime x2": anime(), "dithered photo x2": dithered_photo(), "sticker with clear pixels": sticker()})
    if args.sets in ("drawn", "both"):
        sets.update(drawn_sets(args.lanczos))
    overall: dict[str, list] = {k: [] for k in searches}
    for title, frames in sets.items():
        colours = np.mean([len(np.unique(f[:, :, :3].reshape(-1, 3), axis=0)) for f in frames])
        print(f"\n{title}: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}, "
              f"{colours:.0f} colours a frame")
        print("| each frame alone | ms a frame, median (range) | time / mediancut | bytes | PSNR dB | worst 8x8 block dB |")
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
        print("\n| whole writer | CPU ms, median | / mediancut | searches' ms | / mediancut | GIF bytes | PSNR dB "
              "| worst 8x8 block dB |")
        print("|---|---|---|---|---|---|---|---|")
        spent: dict[str, list[tuple[float, float]]] = {k: [] for k in searches}
        for r in range(rounds):
            for k in (list(searches) if r % 2 == 0 else list(searches)[::-1]):
                data, cpu, searching = _whole(frames, searches[k])
                spent[k].append((cpu, searching))
                if r == 0:
                    q = [quality(s, f) for s, f in zip(gif.frames_as_shown(data)[0], frames)]
                    found[k] = (len(data), np.mean([a for a, _ in q]), min(c for _, c in q))
        cpu0, search0 = (np.median([s[i] for s in spent["mediancut"]]) for i in (0, 1))
        for k in searches:
            cpu, searching = (np.median([s[i] for s in spent[k]]) for i in (0, 1))
            overall[k].append((cpu, searching, *found[k]))
            print(f"| {k} | {cpu * 1000:.0f} | {cpu / cpu0:.2f} | {searching * 1000:.0f} | {searching / search0:.2f} "
                  f"| {found[k][0]} | {found[k][1]:.2f} | {found[k][2]:.2f} |")
    if len(sets) > 1:
        print("\n| all sets, whole writer | CPU / mediancut | searches / mediancut | bytes / mediancut "
              "| PSNR dB, mean of sets | worst block dB, mean of sets | sets with PSNR lower / worst block lower |")
        print("|---|---|---|---|---|---|---|")
        base = np.array(overall["mediancut"])
        for k, rows in overall.items():
            a = np.array(rows)
            print(f"| {k} | {a[:, 0].sum() / base[:, 0].sum():.2f} | {a[:, 1].sum() / base[:, 1].sum():.2f} "
                  f"| {a[:, 2].sum() / base[:, 2].sum():.2f} | {a[:, 3].mean():.2f} | {a[:, 4].mean():.2f} "
                  f"| {(a[:, 3] < base[:, 3] - 0.005).sum()} / {(a[:, 4] < base[:, 4] - 0.005).sum()} |")


if __name__ == "__main__":
    main()
