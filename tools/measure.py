"""Shared by the benchmark scripts: run a child process, return its wall time,
peak resident memory and output."""
from __future__ import annotations

import os
import subprocess
import time


def timed_child(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stdout) of ``cmd``; exits on failure.

    The child is reaped with wait4 to get its own rusage, so its output must be
    small enough for the pipes (the benchmark children print one JSON line)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err}")
    return wall, usage.ru_maxrss * 1024, out
