"""Shared by the benchmark scripts: run a child process, return its wall time,
peak resident memory and output (ncnn_sr.bench.run_child), or stop on failure."""
from __future__ import annotations

from ncnn_sr.bench import run_child


def timed_child(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes, stdout) of ``cmd``; exits on failure."""
    run = run_child(cmd)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr_tail}")
    return run.seconds, int(run.rss_mb * 2**20), run.stdout
