"""Shared by the benchmark scripts: run a child process, return its wall time,
peak resident memory and output (ncnn_sr.bench.run_child), or stop on failure; how
to start the command they measure; and how a script's main reports a wrong model,
device or file."""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

from ncnn_sr.bench import result_path, run_child
from ncnn_sr.errors import NcnnSrError
from ncnn_sr.files import atomic_write
from ncnn_sr.signals import interrupted_status, note_stop, raising_ctrl_c, stop_signals

COMMAND_HELP = ("how to start the command, e.g. 'python3 -m ncnn_sr' where no ncnn-sr script is installed "
                "(default: the ncnn-sr beside this Python, else on PATH)")


def wxh(text: str) -> tuple[int, int]:
    """An argparse type: ``WIDTHxHEIGHT`` as (width, height), both positive."""
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT, such as 256x256")
    return int(w), int(h)


def positive(text: str) -> int:
    """An argparse type: a count of runs, pictures or rounds, at least 1 (0 timed
    nothing, and the tables' medians failed once the runs were done)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return int(text)


def non_negative(text: str) -> int:
    """An argparse type: a width in pixels, 0 or more (a negative blend or padding was
    an IndexError deep in the tiling, or refused only after the first runs)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 0")
    return int(text)


def result_file(text: str) -> str:
    """An argparse type: a file the results can be written to, checked before the
    runs (ncnn_sr.bench.result_path), not found unwritable after them."""
    try:
        return result_path(text)
    except NcnnSrError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def write_result(path: str, text: str) -> None:
    """``text`` into ``path``, whole or not at all."""
    atomic_write(path, lambda f: f.write(text.encode()))


def ncnn_sr_command(text: str | None) -> list[str]:
    """The words that start ncnn-sr: ``text`` split as a shell would, else the script
    beside this Python (a venv's, even when it is not on PATH), else PATH's."""
    if text:
        return shlex.split(text)
    return [shutil.which("ncnn-sr", path=str(Path(sys.executable).parent)) or "ncnn-sr"]


def as_installed(warm_up: list[str]) -> None:
    """Times the command as an installed package runs: pip compiles its bytecode at
    install time, but an environment with PYTHONDONTWRITEBYTECODE (some sandboxes and
    CI images) makes every start compile all of ncnn_sr again, about 0.25 s here, which
    a folder of small pictures would count as the command's. So the variable is
    dropped for the children and ``warm_up`` (a short run of the command, untimed)
    writes the bytecode first."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    timed_child(warm_up)


def timed_child(cmd: list[str]) -> tuple[float, int | None, str]:
    """(wall seconds, peak RSS in bytes, stdout) of ``cmd``; exits on failure. The
    peak is None where this system cannot tell a child's (see bench.run_child)."""
    run = run_child(cmd)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr_tail}")
    return run.seconds, None if run.rss_mb is None else int(run.rss_mb * 2**20), run.stdout


def megabytes(size: int | None) -> float | None:
    """``size`` bytes in MiB, None kept: a table shows it as '-'."""
    return None if size is None else size / 2**20


def shown_mb(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:.0f}"


@raising_ctrl_c
def _stopped(signum, frame):
    note_stop(signum)
    raise KeyboardInterrupt


def run_main(main) -> None:
    """Exits with ``main()``'s status; a model, device or file given wrong is the one
    line the library or the system says, not a traceback that hides it, and Ctrl-C
    one line too. SIGTERM and SIGHUP stop it as Ctrl-C does: by their default a tool
    died at once and left the children it measures (bench.run_child, each in a
    session of its own) running on: the device script's dry run, its budget spent
    (timeout's SIGTERM), found a raw-engine child at 80 % of a CPU 50 minutes later."""
    for sig in stop_signals():
        if sig != signal.SIGINT:
            signal.signal(sig, _stopped)
    try:
        code = main()
    except (NcnnSrError, OSError) as e:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {e}") from None
    except KeyboardInterrupt:  # its children are ended (bench.run_child); the one line, as ncnn-sr's
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        raise SystemExit(interrupted_status()) from None
    raise SystemExit(code)
