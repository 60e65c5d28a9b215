"""Fuzz: damaged inputs against the promise that every file a user can get wrong is a
one-line error, never a traceback, a crash, or gigabytes and minutes spent first.

Mutates seeds of one kind of input and reads each result as the commands do; a case
that raises anything but the package's own errors, kills the process (ncnn takes a
param file's numbers on trust: a SIGSEGV), takes over --slow seconds or grows the
resident memory by over --memory MB is saved to --out, once per kind of failure.
Cases run in a child process, restarted after a crash, under an address-space limit.

    python tools/fuzz.py --target param --seconds 300
    python tools/fuzz.py --target checkpoint --seconds 120 --seed 2 --out /tmp/fuzz
    python tools/fuzz.py --target picture --seconds 120
    python tools/fuzz.py --target video --seconds 300

Targets: ``checkpoint`` (.pth zip and legacy pickles, .safetensors: read_weights),
``param`` (a catalog model's .param and .bin, loaded and run on a 12x10 picture on
the CPU), ``picture`` (PNG, APNG, JPEG with EXIF, GIF, WebP, TIFF, BMP, AVIF still and
animated, HEIC, and what is read past Pillow: 16-bit PNG and APNG, interlaced too, TIFF
and PPM, grey PFM, lossless WebP: read_image, then read_frames for an animation),
``video`` (H.264 in .mp4 and .mkv with sound, VP9 in .webm, .mov with PCM: upscaled
by upscale_video with pixels repeated for the network, which must leave no output
behind on a failure). Found this way
(2026-12-01): a pickle's memo index of 10^8 (2.7 GB and 21 s before the error), a
Convolution pad of 2^31 and a BinaryOp given one input (ncnn's SIGSEGV), a 16-bit
TIFF's samples counted as pixels, and an animated AVIF of timescale 0 (Pillow's
ZeroDivisionError).
"""
from __future__ import annotations

import argparse
import io
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkpoint_seeds() -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(ROOT / "tests"))  # the test suite's torch-free .pth writer
    import numpy as np
    import checkpoints as ck
    state = {"conv.weight": ck.tensor(np.ones((4, 3, 3, 3), np.float32)), "conv.bias": ck.tensor(np.zeros(4, np.float32)),
             "t": ck.transposed(np.arange(6, dtype=np.float32).reshape(2, 3))}
    made = Path(os.environ["FUZZ_DIR"]) / "seed"
    return [(".pth", ck.save_zip(made.with_suffix(".zip.pth"), {"params_ema": state}).read_bytes()),
            (".pth", ck.save_legacy(made.with_suffix(".old.pth"), state).read_bytes()),
            (".safetensors", ck.save_safetensors(made.with_suffix(".safetensors"), {"w": np.ones((2, 3), np.float32)})
             .read_bytes())]


def _picture_seeds() -> list[tuple[str, bytes]]:
    import numpy as np
    from PIL import Image
    rgb = np.random.default_rng(0).integers(0, 255, (9, 11, 3), dtype=np.uint8)
    frames = [Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], a, np.uint8)])) for a in (255, 128, 0)]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated
    seeds = []
    for suffix, image, options in [
        (".png", Image.fromarray(rgb).convert("P"), {"transparency": 3}),
        (".png", frames[0], {"save_all": True, "append_images": frames[1:], "duration": [30, 40, 50],
                             "default_image": True, "disposal": [0, 1, 2], "blend": [0, 1, 1]}),
        (".jpg", Image.fromarray(rgb), {"exif": exif.tobytes(), "icc_profile": b"x" * 200}),
        (".gif", Image.fromarray(rgb).convert("P"), {"save_all": True, "duration": [20, 30], "loop": 2,
                                                    "append_images": [Image.fromarray(rgb[:4, :5].copy()).convert("P")]}),
        (".webp", frames[1], {"save_all": True, "append_images": [frames[0]], "duration": [40, 60]}),
        (".tif", Image.fromarray(rgb), {"compression": "tiff_lzw"}),
        (".bmp", Image.fromarray(rgb), {}),
        (".avif", Image.fromarray(rgb), {"exif": exif.tobytes(), "quality": 90}),
        (".avif", frames[0], {"save_all": True, "append_images": frames[1:], "duration": [30, 40, 50]}),
        (".heic", Image.fromarray(rgb), {"quality": 90}),
    ]:
        data = io.BytesIO()
        if suffix == ".heic":
            import pillow_heif
            pillow_heif.register_heif_opener()
        image.save(data, {".jpg": "JPEG", ".tif": "TIFF", ".heic": "HEIF"}.get(suffix, suffix[1:].upper()), **options)
        seeds.append((suffix, data.getvalue()))
    return seeds + _deep_seeds(rgb)


def _deep_seeds(rgb) -> list[tuple[str, bytes]]:
    """What the package reads past Pillow, by its own code or FFmpeg's: 16-bit colour
    and grey+alpha PNG (one interlaced, and an interlaced APNG), 16-bit TIFF tiled with a predictor, 16-bit
    PPM, a grey PFM, a lossless WebP, a palette PNG with a transparency table."""
    import struct
    import zlib
    import numpy as np
    from PIL import Image
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import adam7_rows, png_bytes, png_chunk
    deep = rgb.astype(np.uint16) * 257 + 3
    interlaced = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 11, 9, 16, 2, 0, 0, 1))
                  + png_chunk(b"IDAT", zlib.compress(adam7_rows(deep))) + png_chunk(b"IEND", b""))
    tiff = io.BytesIO()
    import av  # FFmpeg's TIFF encoder writes 16-bit colour, which Pillow cannot
    with av.open(tiff, "w", format="image2pipe") as out:
        stream = out.add_stream("tiff", rate=1)
        stream.width, stream.height, stream.pix_fmt = 11, 9, "rgb48le"
        stream.options = {"compression_algo": "deflate"}
        for packet in stream.encode(av.VideoFrame.from_ndarray(deep, format="rgb48le")):
            out.mux(packet)
    palette = io.BytesIO()
    Image.fromarray(rgb).convert("P").save(palette, "PNG", transparency=bytes(range(0, 256, 7)))
    lossless = io.BytesIO()
    Image.fromarray(rgb).save(lossless, "WEBP", lossless=True)
    from test_animation import interlaced_apng16
    animated = interlaced_apng16(Path(os.environ["FUZZ_DIR"]) / "seed.png",
                                 np.stack([np.dstack([deep, deep[:, :, :1]])] * 2)).read_bytes()
    return [(".png", png_bytes(deep, 16, 2)), (".png", png_bytes(deep[:, :, :2], 16, 4)), (".png", interlaced),
            (".tif", tiff.getvalue()), (".ppm", b"P6\n11 9\n65535\n" + deep.astype(">u2").tobytes()),
            (".pfm", b"Pf\n11 9\n-1.0\n" + (rgb[:, :, 0] / 255).astype("<f4").tobytes()),
            (".webp", lossless.getvalue()), (".png", palette.getvalue()), (".png", animated)]


def _video_seeds() -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(ROOT / "tests"))  # the test suite's clip maker
    from media import make_clip
    made = Path(os.environ["FUZZ_DIR"]) / "seed"
    return [(suffix, make_clip(made.with_suffix(suffix), frames=4, width=16, height=12, audio=audio).read_bytes())
            for suffix, audio in ((".mp4", "aac"), (".mkv", "libopus"), (".webm", None), (".mov", "pcm_s16le"))]


def _param_seeds() -> list[tuple[str, bytes]]:
    from ncnn_sr import resolve_model
    spec = resolve_model("realesr-animevideov3-x2")
    return [(".param", Path(spec.param_path).read_bytes() + b"\0" + Path(spec.bin_path).read_bytes())]


NUMBERS = ["0", "-1", "1", "3", "65535", "2147483647", "-2147483648", "1e30", "nan", "x", "", "1,2"]
TOKENS = ["0", "1", "2", "-1", "99999", "in0", "out0", "Convolution", "Crop", "Split", "BinaryOp", "Interp"]


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        if not data:  # emptied by a deletion: a case of its own, with nothing left to change
            break
        at, kind = rng.randrange(len(data)), rng.random()
        if kind < 0.5:
            data[at] = rng.randrange(256)
        elif kind < 0.7:
            del data[at:at + rng.randrange(1, 64)]
        elif kind < 0.85:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:  # numbers at the edges of their range, where lengths and counts break
            data[at:at + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff", b"\0\0\0\0"])
    return bytes(data)


def _mutate_param(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.choice([1, 1, 2, 3])):
        i = rng.randrange(2, len(lines))
        tokens = lines[i].split()
        j, kind = rng.randrange(len(tokens)), rng.random()
        if kind < 0.35 and "=" in tokens[j]:
            tokens[j] = tokens[j].split("=")[0] + "=" + rng.choice(NUMBERS)
        elif kind < 0.55:
            tokens[j] = rng.choice(TOKENS)
        elif kind < 0.7:
            del tokens[j]
        elif kind < 0.8:
            tokens.insert(j, rng.choice(["0=1", "1=3", "5=1", "-23300=2,1,2", "2=2"]))
        elif kind < 0.9:
            lines.insert(i, lines[rng.randrange(2, len(lines))])
            continue
        else:
            del lines[i]
            continue
        lines[i] = " ".join(tokens)
    return "\n".join(lines) + "\n"


def _case(target: str, suffix: str, data: bytes, folder: Path) -> None:
    """Reads one case as the commands do; only the package's own errors are expected."""
    import numpy as np
    from ncnn_sr import Upscaler, read_frames, read_image, read_weights
    if target == "param":
        param, _, weights = data.partition(b"\0")
        (folder / "m.param").write_bytes(param)
        (folder / "m.bin").write_bytes(weights)
        with Upscaler(str(folder / "m.param"), device=-1) as upscaler:
            upscaler.upscale(np.random.default_rng(0).integers(0, 255, (12, 10, 3), dtype=np.uint8))
        return
    path = folder / f"case{suffix}"
    path.write_bytes(data)
    if target == "video":
        from ncnn_sr.video import upscale_video
        out, before = folder / "out.mkv", set(folder.iterdir())
        try:  # doubled by repeating pixels: the network is not what is tried here
            upscale_video(path, out, lambda frames: (f.repeat(2, 0).repeat(2, 1) for f in frames))
        except BaseException:
            left = set(folder.iterdir()) - before  # the output, or its hidden part file
            for stray in left:
                stray.unlink()
            if left:
                raise LeftBehind("a failure left a partial output") from None
            raise
        finally:
            out.unlink(missing_ok=True)
        return
    if target == "checkpoint":
        read_weights(path)
    else:
        _, info = read_image(path)
        if info.frames > 1:
            read_frames(path, info)


class LeftBehind(Exception):
    """A failure that left its output, or a part of it, behind."""


def child(args) -> None:
    """Runs cases until the time is up, saving each new kind of failure; the case under
    way is kept in current.* so that the parent can save one that kills the process."""
    import warnings
    warnings.simplefilter("ignore")  # Pillow's and libtiff's complaints about the damage
    from ncnn_sr.errors import NcnnSrError
    folder = Path(args.out)
    seeds = {"checkpoint": _checkpoint_seeds, "param": _param_seeds, "picture": _picture_seeds,
             "video": _video_seeds}[args.target]()
    rng, seen, runs = random.Random(args.seed), set(), 0
    end = time.time() + args.seconds
    while time.time() < end:
        suffix, data = rng.choice(seeds)
        if args.target == "param":
            text, _, weights = data.partition(b"\0")
            if rng.random() < 0.2:
                weights = _mutate_bytes(weights, rng)
            data = _mutate_param(text.decode(), rng).encode() + b"\0" + weights
        else:
            data = _mutate_bytes(data, rng)
        (folder / "current").write_bytes(data)
        (folder / "current.suffix").write_text(suffix, encoding="utf-8")
        runs += 1
        start, memory = time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kind = None
        # A case stuck in C code (Pillow reading a damaged canvas row by row) takes no
        # Python signal: SIGALRM's default action ends the child, which the parent keeps.
        signal.alarm(max(1, math.ceil(args.hang)))
        try:
            _case(args.target, suffix, data, folder)
        except NcnnSrError as e:
            if "\n" in str(e).strip():
                kind = "multi-line message"
        except Exception as e:  # noqa: BLE001 - any other is what is looked for
            frame = ([f for f in traceback.extract_tb(e.__traceback__) if "ncnn_sr" in f.filename]
                     or traceback.extract_tb(e.__traceback__))[-1]
            kind = f"{type(e).__name__} at {Path(frame.filename).name}:{frame.lineno}"
        finally:
            signal.alarm(0)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory) / 1024
        if kind is None and time.time() - start > args.slow:
            kind = f"slow ({time.time() - start:.0f} s)"
        if kind is None and grown > args.memory:
            kind = f"memory (+{grown:.0f} MB)"
        if kind is not None and kind.split(" (")[0] not in seen:
            seen.add(kind.split(" (")[0])
            saved = folder / f"found-{len(list(folder.glob('found-*')))}{suffix}"
            saved.write_bytes(data)
            print(f"{kind}: {saved}", flush=True)
    print(f"{runs} cases", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("checkpoint", "param", "picture", "video"), required=True)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="/tmp/ncnn-sr-fuzz", help="where the failing cases are saved")
    parser.add_argument("--slow", type=float, default=5, help="seconds a case may take")
    parser.add_argument("--memory", type=float, default=500, help="MB a case may add to the peak")
    parser.add_argument("--limit", type=float, default=6, help="GB of address space a child may take")
    parser.add_argument("--hang", type=float, default=60,
                        help="seconds after which a case is ended and kept as hung (a slow one is kept past --slow)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hang <= 0:
        parser.error(f"--hang {args.hang:g}: a case needs some time")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    os.environ["FUZZ_DIR"] = args.out
    if args.child:
        child(args)
        return
    limit = int(args.limit * 2**30)
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY and limit > hard:
        # No process may raise its limit past the hard one: each child failed to start,
        # a SubprocessError's traceback, in a shell of ulimit -v 6000000 (5.7 GB).
        print(f"fuzz.py: --limit {args.limit:g} GB is more than this process may take: its children get "
              f"{hard / 2**30:.1f} GB", file=sys.stderr)
        limit = hard
    end, crashes, hangs = time.time() + args.seconds, 0, 0
    while time.time() < end:
        with open(Path(args.out) / "child.log", "ab") as log:  # ncnn's and a dying child's words
            result = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", "--seed", str(args.seed),
                                     "--seconds", str(end - time.time())], stderr=log,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
        if result.returncode != 0:  # the case under way killed it, or hung: kept, and a new child goes on
            hung = result.returncode == -signal.SIGALRM
            hangs, crashes = hangs + hung, crashes + (not hung)
            suffix = (Path(args.out) / "current.suffix").read_text(encoding="utf-8")
            saved = Path(args.out) / (f"hung-{hangs}{suffix}" if hung else
                                      f"crash-{crashes}-status{result.returncode}{suffix}")
            saved.write_bytes((Path(args.out) / "current").read_bytes())
            print(f"hung past {args.hang:g} s: {saved}" if hung else
                  f"process killed (status {result.returncode}): {saved}", flush=True)
        args.seed += 1000  # a new child must not replay the cases before the crash
    if hangs:
        print(f"{hangs} hung")
    print(f"{crashes} crashes")


if __name__ == "__main__":
    main()
