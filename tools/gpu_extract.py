"""Where GPU time goes, from raw ncnn up to the engine, on one Vulkan device.

Development only. For each model and window size, in one process and interleaved
(so that clock changes hit all alike), ``--count`` runs each of
  - raw: a plain ``ncnn.Net`` (ncnn's default options: fp16 where the GPU has it),
    one Extractor per run, a planar float32 window in and its output out; and
    variants of it: one host thread for ncnn's conversions, fp32 storage (no fp16
    conversion on the host), the output left packed, the input handed over as
    float16 (numpy's cast, so that ncnn uploads it without casting on the host);
  - network: the engine's ``Network.extract`` on the same window (adds the input's
    copy, the output's copy into numpy and the finiteness check);
  - upscale-1 and upscale-N: ``Upscaler(model, device, tile=--tile, tile_pad=10)
    .upscale`` on an 8-bit picture of that size (adds the colour conversion in and
    out, padding, cropping), with one window at a time as the C++ code runs them,
    then with the engine's windows in flight (GPU_WINDOWS_IN_FLIGHT); where the
    upscale ran an RRDBNet's trunk whole instead (a discrete GPU's default where the
    picture fits, resident.py), windows in flight play no part: one row, "upscale,
    trunk whole";
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
from ncnn_sr.resident import ResidentNetwork
from ncnn_sr.network import Network
from ncnn_sr.models import resolve_model

from measure import positive, run_main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", default=["realesrgan-x4plus", "realesr-animevideov3-x2"])
    ap.add_argument("--sizes", type=positive, nargs="+", default=[200, 400])
    ap.add_argument("--count", type=positive, default=10)
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--tile", type=int, default=200, help="the upscales' tile (0: the engine's choice)")
    ap.add_argument("--profile", type=int, default=14, help="functions listed from the profile (0: no profile)")
    ap.add_argument("--no-variants", dest="variants", action="store_false",
                    help="skip the raw variants (1 host thread, fp32 storage, packed output, fp16 input)")
    args = ap.parse_args()
    if args.gpu < 0:  # the raw rows would run on Vulkan device 0 and the others on the CPU
        raise SystemExit(f"gpu_extract.py: --gpu {args.gpu}: give a Vulkan device's index (0, 1, ...); "
                         "for the CPU, ncnn-sr bench -g -1")
    rows, profiles = [], []
    # Counted to tell an upscale that ran the trunk whole from one that ran windows.
    pieces, run_pieces = [], ResidentNetwork.run_pieces

    def counted(self, *args, **kwargs):
        pieces.append(1)
        return run_pieces(self, *args, **kwargs)

    ResidentNetwork.run_pieces = counted
    for name in args.model:
        spec = resolve_model(name)
        raw = _raw_net(spec, args.gpu)
        # Candidates for the host's share of a raw run: ncnn converts fp32 planes to fp16
        # and back on the host, with its CPU threads, and unpacks the output.
        variants = {"raw, 1 host thread": (_raw_net(spec, args.gpu, num_threads=1), 0),
                    "raw, fp32 storage": (_raw_net(spec, args.gpu, use_fp16_storage=False, use_fp16_packed=False,
                                                   use_fp16_arithmetic=False), 0),
                    "raw, packed output": (raw, 1),
                    "raw, fp16 input": (raw, "fp16")} if args.variants else {}
        net = Network(str(spec.param_path), str(spec.bin_path), get_device(args.gpu), spec.input_blob,
                       spec.output_blob)
        one = Upscaler(spec, device=args.gpu, tile=args.tile, tile_pad=10)
        one._windows_ahead = 1
        up = Upscaler(spec, device=args.gpu, tile=args.tile, tile_pad=10)
        for size in args.sizes:
            picture = synthetic_picture(size, size)
            planar = np.ascontiguousarray(picture.transpose(2, 0, 1), dtype=np.float32) / 255
            # Input side of the cast ncnn makes on the host for a discrete GPU (fp32 to
            # fp16, same rounding); numpy does it from 8 bits with a 256-entry table.
            table16 = (np.arange(256, dtype=np.float32) / 255).astype(np.float16)

            def run_raw(net=raw, kind=0):
                with net.create_extractor() as ex:
                    if kind == "fp16":
                        window = np.take(table16, np.ascontiguousarray(picture.transpose(2, 0, 1)))
                        ex.input(spec.input_blob, ncnn.Mat(window))
                        kind = 0
                    else:
                        ex.input(spec.input_blob, ncnn.Mat(planar))
                    _, out = ex.extract(spec.output_blob, kind)
                    np.asarray(out)

            steps = {"raw": run_raw,
                     **{label: (lambda net=net_, kind=kind: run_raw(net, kind))
                        for label, (net_, kind) in variants.items()},
                     "network": lambda: net.extract({spec.input_blob: planar}, spec.output_blob),
                     "upscale-1": lambda: one.upscale(picture),
                     f"upscale-{up._windows_ahead}": lambda: up.upscale(picture)}
            for step in steps.values():
                step()  # warm-up: this size's blobs
            pieces.clear()
            steps[f"upscale-{up._windows_ahead}"]()
            if pieces:  # the two upscales ran alike, one run of the trunk
                del steps["upscale-1"], steps[f"upscale-{up._windows_ahead}"]
                steps["upscale, trunk whole"] = lambda: up.upscale(picture)
            times = {step: [] for step in steps}
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
        for other, _ in variants.values():
            other.clear()
        raw.clear()
    print("| model | window | step | median ms | best ms | best MP/s |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n".join(profiles))
    return 0


def _raw_net(spec, gpu: int, **options) -> ncnn.Net:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = True
    for key, value in options.items():
        setattr(net.opt, key, value)
    net.set_vulkan_device(gpu)
    net.load_param(str(spec.param_path))
    net.load_model(str(spec.bin_path))
    return net


if __name__ == "__main__":
    run_main(main)
