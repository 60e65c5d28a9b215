"""Folder throughput and memory: the whole command against the raw engine, same run.

For each folder size it makes that many pictures, then measures
  - raw engine: one Upscaler called in a plain loop on the pictures already in memory
    (no reading, no writing, no process start), in a child process;
  - command: `ncnn-sr -i FOLDER -o OUT ...` as a user runs it, wall time of the whole
    process (start, model load, read, upscale, write) and its peak RSS.
Ratio = command pictures/s ÷ raw pictures/s: the target is >= 0.95 (load and save
hidden behind proc). Peak RSS must stay flat as the folder grows. With ``--rounds N``
the two alternate N times and each row is one round; the last line gives the median
ratio (a shared machine's speed drifts by 10 % within minutes).

    python tools/bench_batch.py                        # animevideov3-x2 on CPU, 10 and 100 pictures
    python tools/bench_batch.py --model realesrgan-x4plus --size 96x96 --counts 10 30
    python tools/bench_batch.py --counts 100 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from measure import (COMMAND_HELP, as_installed, megabytes, ncnn_sr_command, positive, result_file, shown_mb,
                     run_main, timed_child, write_result, wxh)

RAW_CHILD = """
import json, os, sys, time
import numpy as np
from PIL import Image
from ncnn_sr import Upscaler
folder, model, device = sys.argv[1], sys.argv[2], sys.argv[3]
names = sorted(os.listdir(folder))
pictures = [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names]
up = Upscaler(model, device=int(device) if device.lstrip('-').isdigit() else device)
up.upscale(pictures[0][:16, :16])  # warm-up outside the timing, as the command's load is not
start = time.perf_counter()
for p in pictures:
    up.upscale(p)
print(json.dumps({"seconds": time.perf_counter() - start, "count": len(pictures)}))
"""


def make_pictures(folder: Path, count: int, width: int, height: int) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(float)
    for i in range(count):
        img = np.stack([128 + 100 * np.sin(xx / (5 + c + i % 7) + yy / 9.0 + i) for c in range(3)], 2)
        img = np.clip(img + rng.randn(height, width, 3) * 6, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"p{i:04d}.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesr-animevideov3-x2")
    ap.add_argument("--device", default="-1")
    ap.add_argument("--jobs", default="1:2:2", help="the command's -j (auto: its default)")
    ap.add_argument("--size", type=wxh, default="192x144", help="WxH of each picture")
    ap.add_argument("--counts", type=positive, nargs="+", default=[10, 100])
    ap.add_argument("--rounds", type=positive, default=1, help="alternate raw and command this many times")
    ap.add_argument("--json", type=result_file, help="also write the results here")
    ap.add_argument("--command", help=COMMAND_HELP)
    args = ap.parse_args()
    width, height = args.size
    command = ncnn_sr_command(args.command)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.counts:
            folder = Path(tmp) / f"in{count}"
            make_pictures(folder, count, width, height)
            if count == args.counts[0]:
                one = Path(tmp) / "one"
                make_pictures(one, 1, width, height)
                as_installed([*command, "-i", str(one), "-o", str(Path(tmp) / "one_out"), "-n", args.model,
                              "-g", args.device, "-j", args.jobs, "-q"])
            for round_ in range(1, args.rounds + 1):
                rows.append(one_round(command, folder, Path(tmp) / f"out{count}", args, width, height, count))
                rows[-1]["round"] = round_
    print("| model | pictures | size | round | raw pic/s | raw MP/s | command pic/s | command MP/s | ratio "
          "| command peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['pictures']} | {r['size']} | {r['round']} | {r['raw_pictures_per_s']:.2f} "
              f"| {r['raw_mpix_per_s']:.3f} | {r['command_pictures_per_s']:.2f} | {r['command_mpix_per_s']:.3f} "
              f"| {r['ratio']:.3f} | {shown_mb(r['command_peak_rss_mb'])} |")
    for count in args.counts:
        ratios = sorted(r["ratio"] for r in rows if r["pictures"] == count)
        print(f"{count} pictures: median ratio {statistics.median(ratios):.3f} over {len(ratios)} round(s) "
              f"({ratios[0]:.3f}-{ratios[-1]:.3f})")
    if args.json:
        write_result(args.json, json.dumps(rows, indent=2))
    return 0


def one_round(command: list[str], folder: Path, out: Path, args, width: int, height: int, count: int) -> dict:
    """The raw engine, then the command, on ``folder``: one row."""
    raw_wall, raw_rss, raw_out = timed_child([sys.executable, "-c", RAW_CHILD, str(folder), args.model, args.device])
    raw = json.loads(raw_out)
    shutil.rmtree(out, ignore_errors=True)  # each round writes every picture anew
    cmd_wall, cmd_rss, _ = timed_child([*command, "-i", str(folder), "-o", str(out), "-n", args.model,
                                        "-g", args.device, "-j", args.jobs, "-q"])
    mp = count * width * height / 1e6
    return {
        "model": args.model, "device": args.device, "jobs": args.jobs, "pictures": count,
        "size": f"{width}x{height}",
        "raw_pictures_per_s": count / raw["seconds"], "raw_mpix_per_s": mp / raw["seconds"],
        "command_pictures_per_s": count / cmd_wall, "command_mpix_per_s": mp / cmd_wall,
        "ratio": (count / cmd_wall) / (count / raw["seconds"]),
        "command_peak_rss_mb": megabytes(cmd_rss), "raw_peak_rss_mb": megabytes(raw_rss),
    }


if __name__ == "__main__":
    run_main(main)
