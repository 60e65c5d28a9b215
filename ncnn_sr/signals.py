"""Which signals stop a command as Ctrl-C does. Imports nothing heavy: the entry
points install them before ncnn and numpy load."""
from __future__ import annotations

import signal


def stop_signals() -> list[int]:
    """SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped SSH session), and on
    Windows SIGBREAK (Ctrl-Break, which ended the process at once, its partial files
    left), less those ignored when the process started: nohup ignores SIGHUP, and a
    shell ignores SIGINT in a background job."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    found = [getattr(signal, name) for name in names if hasattr(signal, name)]
    return [sig for sig in found if signal.getsignal(sig) is not signal.SIG_IGN]
