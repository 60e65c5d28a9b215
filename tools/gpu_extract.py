"""Where GPU time goes, from raw ncnn up to the engine, on one Vulkan device.

Development only. For each model and window size, in one process and interleaved
(so that clock changes hit all alike), ``--count`` runs each of
  - raw: a plain ``ncnn.Net`` (ncnn's default options: fp16 where the GPU has it),
    one Extractor per run, a planar float32 window in and its output out;
  - network: the engine's ``_Network.extract`` on the same window (adds the input's
    copy, the output's copy into numpy and the finiteness check);
  - upscale-1 and upscale-N: ``Upscaler(model, device, tile=--tile, tile_pad=10)
    .upscale`` on an 8-bit picture of that size (adds the colour conversion in and
    out, padding, cropping), with one window at a time as the C++ code runs them,
    then with the engine's windows in flight (GPU_WINDOWS_IN_FLIGHT);
and prints the median and best in ms, with the best's megapixels per second. Then
one upscale under cProfile, its top functions by own time. Set beside ``ncnn-sr
bench`` and the C++ code on the same machine, it says which layer loses the time.

    python tools/gpu_extract.py --model realesrgan-x4plus --sizes 200 400 --count 10
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time

import ncnn
import numpy as np

from ncnn_sr import Upscaler
from ncnn_sr.bench import synthetic_picture
from ncnn_sr.devices import get_device
from ncnn_sr.engine import _Network
from ncnn_sr.models import resolve_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["realesrgan-x4plus", "realesr-animevideov3-x2"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 400])
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--tile", type=int, default=200, help="the upscales' tile (0: the engine's choice)")
    ap.add_argument("--profile", type=int, default=14, help="functions listed from the profile (0: no profile)")
    args = ap.parse_args()
    rows, profiles = [], []
    for name in args.model:
        spec = resolve_model(name)
        raw = ncnn.Net()
        raw.opt.use_vulkan_compute = True
        raw.set_vulkan_device(args.gpu)
        raw.load_param(str(spec.param_path))
        raw.load_model(str(spec.bin_path))
        net = _Network(str(spec.param_path), str(spec.bin_path), get_device(args.gpu), spec.input_blob,
                       spec.output_blob)
        one = Upscaler(spec, device=args.gpu, tile=args.tile, tile_pad=10)
        one._windows_ahead = 1
        up = Upscaler(spec, device=args.gpu, tile=args.tile, tile_pad=10)
        for size in args.sizes:
            picture = synthetic_picture(size, size)
            planar = np.ascontiguousarray(picture.transpose(2, 0, 1), dtype=np.float32) / 255

            def run_raw():
                with raw.create_extractor() as ex:
                    ex.input(spec.input_blob, ncnn.Mat(planar))
                    _, out = ex.extract(spec.output_blob)
                    np.asarray(out)

            steps = {"raw": run_raw,
                     "network": lambda: net.extract({spec.input_blob: planar}, spec.output_blob),
                     "upscale-1": lambda: one.upscale(picture),
                     f"upscale-{up._windows_ahead}": lambda: up.upscale(picture)}
            times = {step: [] for step in steps}
            for step in steps.values():
                step()  # warm-up: this size's blobs
            for _ in range(args.count):
                for step, fn in steps.items():
                    start = time.perf_counter()
                    fn()
                    times[step].append(time.perf_counter() - start)
            for step, ts in times.items():
                rows.append(f"| {name} | {size} | {step} | {statistics.median(ts) * 1e3:.1f} | {min(ts) * 1e3:.1f} "
                            f"| {size * size / 1e6 / min(ts):.3f} |")
                print(rows[-1], flush=True)
            if args.profile:
                prof = cProfile.Profile()
                prof.runcall(up.upscale, picture)
                text = io.StringIO()
                pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(args.profile)
                profiles.append(f"### {name} {size}\n{text.getvalue()}")
        up.close()
        one.close()
        net.release()
        raw.clear()
    print("| model | window | step | median ms | best ms | best MP/s |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n".join(profiles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
