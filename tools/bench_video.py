"""Video throughput and memory: `ncnn-sr video` against the raw engine, same frames.

It makes clips with PyAV (moving synthetic content, an AAC tone, the given size and
rate), then measures
  - raw engine: the clip's frames decoded into memory first, then one Upscaler in a
    plain loop (no decoding, encoding or muxing in the timing), in a child process;
  - command: `ncnn-sr video -i CLIP -o OUT.mp4 ...`, wall time of the whole process
    (start, model load, decode, upscale, encode, mux) and its peak RSS.
Ratio = command fps ÷ raw fps (target >= 0.9). Peak RSS must not grow with the
clip's length.

    python tools/bench_video.py                          # 640x480 24000/1001, 5 s and 10 s, CPU
    python tools/bench_video.py --seconds 2 --size 320x240 --raw-for 2
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

from measure import (COMMAND_HELP, as_installed, megabytes, ncnn_sr_command, result_file, shown_mb, timed_child,
                     run_main, write_result, wxh)

RAW_CHILD = """
import json, sys, time
import av
from ncnn_sr import Upscaler
clip, model, device = sys.argv[1], sys.argv[2], sys.argv[3]
with av.open(clip) as c:
    frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
up = Upscaler(model, device=int(device) if device.lstrip("-").isdigit() else device)
up.upscale(frames[0][:16, :16])
start = time.perf_counter()
for f in frames:
    up.upscale(f)
print(json.dumps({"seconds": time.perf_counter() - start, "frames": len(frames)}))
"""


def seconds_value(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):  # 0 made a clip of no frames, which the command refused
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds > 0")
    return seconds


def rate_value(text: str) -> str:
    """An argparse type: frames per second, a fraction > 0, kept as written for the rows."""
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    if rate <= 0:  # Fraction's traceback, libx264's, or a clip of no frames the command refused
        raise argparse.ArgumentTypeError(f"{text!r}: give frames per second > 0, such as 24000/1001")
    return text


def make_clip(path: Path, seconds: float, width: int, height: int, rate: Fraction) -> int:
    import av
    import numpy as np

    count = round(seconds * rate)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"crf": "20", "preset": "veryfast"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(count):
            t = i / float(rate)
            img = np.stack([128 + 100 * np.sin(xx / (9 + c) + yy / 13 + t * 2 + c) for c in range(3)], 2)
            # A bar of at most half the frame, so that it moves on a small one too.
            bar_w, bar_h = min(120, width // 2), min(90, height // 2)
            x0 = int((t * 80) % (width - bar_w))
            img[height // 3: height // 3 + bar_h, x0: x0 + bar_w] = (230, 60, 40)
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            for p in video.encode(frame):
                out.mux(p)
        for p in video.encode():
            out.mux(p)
        samples = np.arange(int(seconds * 48000)) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 330 * samples) * 32767).astype(np.int16)
        for start in range(0, len(tone), 1024):
            chunk = np.repeat(tone[start:start + 1024].reshape(1, -1), 2, axis=0).reshape(1, -1)
            f = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            f.sample_rate, f.pts = 48000, start
            for p in audio.encode(f):
                out.mux(p)
        for p in audio.encode():
            out.mux(p)
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesr-animevideov3-x2")
    ap.add_argument("--device", default="-1")
    ap.add_argument("--jobs", default="1:2:2")
    ap.add_argument("--size", type=wxh, default="640x480")
    ap.add_argument("--rate", type=rate_value, default="24000/1001")
    ap.add_argument("--seconds", type=seconds_value, nargs="+", default=[5, 10])
    ap.add_argument("--raw-for", type=seconds_value, nargs="*",
                    help="clip lengths (of --seconds) to also time the raw engine on (default: the longest)")
    ap.add_argument("--json", type=result_file)
    ap.add_argument("--command", help=COMMAND_HELP)
    args = ap.parse_args()
    width, height = args.size
    if width % 2 or height % 2:
        ap.error(f"--size {width}x{height}: the clips are yuv420p, whose sides are even")
    if args.raw_for is None:
        args.raw_for = [max(args.seconds)]
    missing = [seconds for seconds in args.raw_for if seconds not in args.seconds]
    if missing:  # else no raw engine was timed on it, and its row had no ratio, unsaid
        ap.error(f"--raw-for {' '.join(f'{s:g}' for s in missing)}: not among the clips' lengths "
                 f"(--seconds {' '.join(f'{s:g}' for s in args.seconds)})")
    rate = Fraction(args.rate)
    command = ncnn_sr_command(args.command)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.mp4"
        make_clip(warm, 0.25, width, height, rate)
        as_installed([*command, "video", "-i", str(warm), "-o", str(Path(tmp) / "warm_out.mp4"),
                      "-n", args.model, "-g", args.device, "-j", args.jobs, "-q"])
        for seconds in args.seconds:
            clip = Path(tmp) / f"clip{seconds:g}.mp4"
            frames = make_clip(clip, seconds, width, height, rate)
            row = {"seconds": seconds, "frames": frames, "size": f"{width}x{height}", "rate": args.rate,
                   "model": args.model, "device": args.device, "jobs": args.jobs}
            if seconds in args.raw_for:
                _, raw_rss, raw_out = timed_child([sys.executable, "-c", RAW_CHILD, str(clip), args.model, args.device])
                raw = json.loads(raw_out)
                row["raw_fps"] = raw["frames"] / raw["seconds"]
            wall, rss, _ = timed_child([*command, "video", "-i", str(clip),
                                        "-o", str(Path(tmp) / f"out{seconds:g}.mp4"),
                                        "-n", args.model, "-g", args.device, "-j", args.jobs, "-q"])
            row["command_fps"] = frames / wall
            row["command_peak_rss_mb"] = megabytes(rss)
            if "raw_fps" in row:
                row["ratio"] = row["command_fps"] / row["raw_fps"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print("| clip | frames | raw fps | command fps | ratio | command peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        raw = f"{r['raw_fps']:.3f}" if "raw_fps" in r else "-"
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else "-"
        print(f"| {r['seconds']:g} s {r['size']} @ {r['rate']} | {r['frames']} | {raw} | {r['command_fps']:.3f} "
              f"| {ratio} | {shown_mb(r['command_peak_rss_mb'])} |")
    if args.json:
        write_result(args.json, json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main)
