"""ncnn's CPU path on an idle and on a busy machine, under each OpenMP wait setting.

Development only. The ncnn wheel's OpenMP runtime (GNU libgomp) reads how long a
waiting thread spins before it sleeps from the environment, once, as it loads. Each
case here is a fresh Python that upscales a synthetic picture on the CPU --calls
times, from its main thread or from a worker thread, with --load other processes
spinning on the cores (0: none) and one setting in its environment:

    library   none: what ncnn_sr chooses itself (ncnn_sr.openmp)
    default   none, ncnn imported before ncnn_sr: libgomp's own defaults
    spin=N    GOMP_SPINCOUNT=N (libgomp's default is 300000, and 100 where it
              runs more threads than there are cores, which stays so)
    passive   OMP_WAIT_POLICY=passive (threads sleep at once)

It prints the median wall and CPU seconds of a call. The busy loops are stopped after
each case.

    python tools/omp_wait.py --model realesrgan-x4plus --size 32 --load 2
    python tools/omp_wait.py --settings library default spin=1000 --callers main --load 0 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {"library": {}, "default": {}, "passive": {"OMP_WAIT_POLICY": "passive"}}


def environment(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if setting.startswith("spin="):
        env["GOMP_SPINCOUNT"] = setting[5:]
    else:
        env.update(SETTINGS[setting])
    return env


def child(model: str, size: int, calls: int, caller: str, setting: str) -> None:
    if setting == "default":
        import ncnn  # noqa: F401  (loaded first, it keeps libgomp's settings)
    import numpy as np

    from ncnn_sr import Upscaler

    picture = np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8)
    times = []

    def work() -> None:
        with Upscaler(model, device=-1) as up:
            up.upscale(picture)  # warm: the pools and the OpenMP threads
            for _ in range(calls):
                wall, cpu = time.perf_counter(), time.process_time()
                up.upscale(picture)
                times.append((time.perf_counter() - wall, time.process_time() - cpu))

    if caller == "main":
        work()
    else:
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
    print(json.dumps(times))


def measure(args, setting: str, load: int, caller: str) -> tuple[float, float]:
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        run = subprocess.run([sys.executable, __file__, "--child", caller, "--model", args.model,
                              "--size", str(args.size), "--calls", str(args.calls), "--setting", setting],
                             env=environment(setting), capture_output=True, text=True, timeout=args.timeout)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if run.returncode != 0:
        raise SystemExit(f"{setting} {caller} failed: {run.stderr.strip().splitlines()[-1:]}")
    times = json.loads(run.stdout.splitlines()[-1])
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def positive(text: str) -> int:
    # measure.positive's rule; not imported, as measure imports ncnn_sr, whose OpenMP
    # settings the children would inherit in place of the one each case sets
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesrgan-x4plus")
    ap.add_argument("--size", type=positive, default=32, help="side of the square synthetic picture")
    ap.add_argument("--calls", type=positive, default=3, help="timed calls per case, after one to warm up")
    ap.add_argument("--settings", nargs="+", default=["library", "default", "passive"])
    ap.add_argument("--callers", nargs="+", choices=("main", "thread"), default=["main", "thread"])
    ap.add_argument("--load", nargs="+", type=int, default=[0, os.cpu_count() or 1],
                    help="how many busy loops run beside each case (default: none, then one per core)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a case may take")
    ap.add_argument("--child", choices=("main", "thread"), help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.model, args.size, args.calls, args.child, args.setting)
        return 0
    for setting in args.settings:
        if setting not in SETTINGS and not (setting.startswith("spin=") and setting[5:].isdigit()):
            ap.error(f"a setting is library, default, passive or spin=N, got {setting!r}")
    print(f"{args.model}, {args.size}x{args.size}, CPU, {os.cpu_count()} cores; median of {args.calls} calls")
    print(f"{'setting':>12} {'load':>4} {'caller':>6} {'wall s':>8} {'cpu s':>8}")
    for load in args.load:
        for setting in args.settings:
            for caller in args.callers:
                wall, cpu = measure(args, setting, load, caller)
                print(f"{setting:>12} {load:>4} {caller:>6} {wall:8.3f} {cpu:8.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
