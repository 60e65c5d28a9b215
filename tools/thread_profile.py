"""Where a whole ncnn-sr command spends CPU time, every thread counted.

Development only. Runs `python -m ncnn_sr ARGS` in this process with each thread
(the main one, the load, proc and save workers, the video's helpers) under a
cProfile of its own that counts that thread's CPU time, not the wall clock: on a
shared machine a thread waiting for a core showed as time spent, and cProfile alone
sees the main thread only. The threads' profiles are summed, and the functions that
took the most are listed with their share of all the threads' CPU. ncnn's forward
pass is the call `ncnn.extract`; what is not under it is the command's own work.
cProfile's own cost is counted in: small Python calls weigh more than they do
unprofiled (ten or so times for a call of a microsecond). What this script imports
before the command starts (ncnn_sr's bench and errors, numpy with them) is left out of
the start-up counted: tools/bench_start.py measures that.

    python tools/thread_profile.py -- upscale -i in50 -o out50 -n realesr-animevideov3 -s 2 -g -1 -q
    python tools/thread_profile.py --sort cumtime --match ncnn_sr/ -- video -i clip.mp4 -o out.mp4 -g -1 -q
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import runpy
import sys
import threading
import time

from measure import positive, run_main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=positive, default=15, help="how many functions to list")
    ap.add_argument("--sort", choices=["tottime", "cumtime"], default="tottime",
                    help="by each function's own time, or with what it calls")
    ap.add_argument("--match", default="", help="list only functions whose file:line(name) holds this")
    ap.add_argument("--save", help="also write the summed profile here (pstats)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the ncnn-sr command's arguments")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the command after --, such as -- upscale -i IN -o OUT")

    ended: list[cProfile.Profile] = []  # read once their threads are done with them
    lock = threading.Lock()
    run = threading.Thread.run

    def profiled(thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            run(thread)
        finally:
            profile.disable()
            with lock:
                ended.append(profile)

    threading.Thread.run = profiled
    started = len(threading.enumerate())
    sys.argv = ["ncnn_sr", *command]
    wall, cpu = time.perf_counter(), os.times()
    mine = cProfile.Profile(time.thread_time)
    status = 0
    mine.enable()
    try:
        runpy.run_module("ncnn_sr", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (e.code is not None)
    finally:
        mine.disable()
    wall, spent = time.perf_counter() - wall, os.times()
    threading.Thread.run = run
    with lock:
        profiles = [mine, *ended]
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    if args.save:
        stats.dump_stats(args.save)
    total = stats.total_tt
    print(f"command exit status {status}; wall {wall:.2f} s; process CPU {spent.user - cpu.user:.2f} s user, "
          f"{spent.system - cpu.system:.2f} s system; the {len(profiles)} threads profiled: {total:.2f} s of CPU"
          + (f" ({len(threading.enumerate()) - started} still running, left out)"
             if len(threading.enumerate()) > started else ""))
    key = 2 if args.sort == "tottime" else 3
    rows = sorted(((entry[key], entry[1], f"{where}:{line}({name})")
                   for (where, line, name), entry in stats.stats.items()
                   if args.match in f"{where}:{line}({name})"), reverse=True)
    print(f"{args.sort:>9}  share  calls  function")
    for seconds, calls, name in rows[:args.top]:
        print(f"{seconds:8.3f}s {100 * seconds / total:5.1f}% {calls:6d}  {name[-100:]}")
    return status


if __name__ == "__main__":
    run_main(main)
