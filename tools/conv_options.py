"""Memory and time of one window of a model (--model, realesrgan-x4plus by default)
under ncnn's convolution options.

Development only. For each option set a fresh child process loads the model into a
bare ``ncnn.Net`` on the CPU with that option set on ``net.opt``, extracts one n×n
random window twice, and reports the mean time per extraction and the peak resident
memory above the loaded model (ru_maxrss before and after).

    python tools/conv_options.py --size 132 --threads 2
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from measure import positive, run_main

OPTION_SETS = [
    {},
    {"use_winograd_convolution": False},
    {"use_sgemm_convolution": False},
    {"use_winograd_convolution": False, "use_sgemm_convolution": False},
    {"use_packing_layout": False},
]


def child(model: str, n: int, threads: int, flags: dict) -> None:
    import ncnn
    import numpy as np

    from ncnn_sr import devices
    from ncnn_sr.models import resolve_model

    spec = resolve_model(model)
    devices.steady_heap()
    net = ncnn.Net()
    net.opt.num_threads = threads
    for key, value in flags.items():
        setattr(net.opt, key, value)
    net.load_param(str(spec.param_path))
    net.load_model(str(spec.bin_path))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    window = np.random.default_rng(0).random((3, n, n), dtype=np.float32)
    start = time.perf_counter()
    for _ in range(2):
        ex = net.create_extractor()
        ex.input(spec.input_blob, ncnn.Mat(window))
        ret, out = ex.extract(spec.output_blob)
        assert ret == 0
        del ex, out
    seconds = (time.perf_counter() - start) / 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"| {', '.join(f'{k}={v}' for k, v in flags.items()) or 'default'} | {(peak - base) // 1024} | {seconds:.2f} |",
          flush=True)


def main() -> int | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--size", type=positive, default=132)
    ap.add_argument("--threads", type=positive, default=2)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.model, args.size, args.threads, json.loads(args.child))
        return
    print("| options | window MB | seconds |\n|---|---|---|", flush=True)
    for flags in OPTION_SETS:
        done = subprocess.run([sys.executable, __file__, "--model", args.model, "--size", str(args.size),
                               "--threads", str(args.threads), "--child", json.dumps(flags)])
        if done.returncode != 0:
            return done.returncode  # the child said why


if __name__ == "__main__":
    run_main(main)
