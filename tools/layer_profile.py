"""Where a network's CPU time goes, by layer type, and how each type scales with threads.

Development only. For each thread count, a fresh ``ncnn.Net`` (fp32, ncnn's own pools)
runs one n×n random window, extracting the top blob of every layer in file order within
one Extractor, so each extraction runs exactly one new layer; the time of each is added
to its layer type. Blobs are taken in ncnn's packed layout (``extract(name, 1)``): the
unpacking a plain extract does would otherwise be billed to the layer. Light mode is off
so that earlier blobs stay for later layers, which keeps every blob of the profiled part
in memory: ``--layers`` limits the run to the first N layers (default 48: the first
residual-in-residual block of realesrgan-x4plus and a bit). Best of ``--repeat``. Then
the speed of a plain memory copy on 1 and N threads, the ceiling for copy-bound layers.

    python tools/layer_profile.py --model realesrgan-x4plus --size 276 --threads 1 2
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import threading
import time

import ncnn
import numpy as np

from ncnn_sr.bench import PRECISIONS
from ncnn_sr.models import resolve_model
from ncnn_sr.param_file import parse_param

from measure import positive, run_main

SKIPPED = ("Input", "Split")  # no work of their own


def profiled_layers(model: str, layers: int) -> list[tuple[str, str]]:
    """(type, top blob) of the first ``layers`` layers with work of their own."""
    graph = parse_param(resolve_model(model).param_path.read_bytes())
    return [(layer.type, layer.tops[0]) for layer in graph.layers if layer.type not in SKIPPED][:layers]


def profile(model: str, size: int, threads: int, layers: int, repeat: int) -> dict[str, float]:
    spec = resolve_model(model)
    tops = profiled_layers(model, layers)
    pools = (ncnn.PoolAllocator(), ncnn.PoolAllocator())
    net = ncnn.Net()
    net.opt.num_threads, net.opt.lightmode = threads, False
    for key, value in PRECISIONS["fp32"].items():
        setattr(net.opt, key, value)
    net.opt.blob_allocator, net.opt.workspace_allocator = pools
    net.load_param(str(spec.param_path))
    net.load_model(str(spec.bin_path))
    window = np.random.default_rng(0).random((3, size, size), np.float32)
    best: dict[str, float] = {}
    for _ in range(repeat):
        spent: dict[str, float] = collections.Counter()
        ex = net.create_extractor()
        ex.input(spec.input_blob, ncnn.Mat(window).clone())
        for kind, blob in tops:
            start = time.perf_counter()
            if ex.extract(blob, 1)[0] != 0:
                raise SystemExit(f"ncnn failed on {blob}")
            spent[kind] += time.perf_counter() - start
        del ex
        if not best or sum(spent.values()) < sum(best.values()):
            best = dict(spent)
    net.clear()
    del net, pools
    return best


def copy_seconds(mb: int, threads: int, repeat: int = 10) -> float:
    """Best time to copy ``mb`` MB split across ``threads`` threads (ctypes.memmove lets
    go of the GIL): what ncnn's single-threaded Concat could gain at most by splitting."""
    src, dst = np.ones(mb << 18, np.float32), np.empty(mb << 18, np.float32)
    step = src.nbytes // threads

    def part(i: int) -> None:
        ctypes.memmove(dst.ctypes.data + i * step, src.ctypes.data + i * step, step)

    best = float("inf")
    for _ in range(repeat):
        workers = [threading.Thread(target=part, args=(i,)) for i in range(1, threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        part(0)
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--size", type=positive, default=276, help="window side in pixels (276: 256 + 2 x 10 context)")
    ap.add_argument("--threads", type=positive, nargs="+", default=[1, 2])
    ap.add_argument("--layers", type=positive, default=48)
    ap.add_argument("--repeat", type=positive, default=2)
    args = ap.parse_args()
    runs = {n: profile(args.model, args.size, n, args.layers, args.repeat) for n in args.threads}
    first = runs[args.threads[0]]
    count = len(profiled_layers(args.model, args.layers))
    which = f"first {count}" if count == args.layers else f"all {count}"  # a network shorter than --layers
    print(f"{args.model}, {args.size}x{args.size}, {which} layers, best of {args.repeat}")
    head = " | ".join(f"{n} thr ms (share)" for n in args.threads)
    print(f"| layer type | {head} | scaling {args.threads[0]}->{args.threads[-1]} |")
    print("|---|" + "---|" * (len(args.threads) + 1))
    for kind in sorted(first, key=first.get, reverse=True):
        cells = " | ".join(f"{runs[n][kind] * 1e3:.0f} ({100 * runs[n][kind] / sum(runs[n].values()):.0f} %)"
                           for n in args.threads)
        print(f"| {kind} | {cells} | {first[kind] / runs[args.threads[-1]][kind]:.2f}x |")
    totals = " | ".join(f"{sum(runs[n].values()) * 1e3:.0f}" for n in args.threads)
    print(f"| all | {totals} | {sum(first.values()) / sum(runs[args.threads[-1]].values()):.2f}x |")
    copies = {n: copy_seconds(44, n) for n in args.threads}
    print("44 MB memory copy (one Concat's size at 276 px): " + ", ".join(
        f"{n} thr {copies[n] * 1e3:.1f} ms ({2 * 44 / 1024 / copies[n]:.0f} GB/s)" for n in args.threads))


if __name__ == "__main__":
    run_main(main)
