"""Which signals stop a command as Ctrl-C does. Imports nothing heavy: the entry
points install them before ncnn and numpy load."""
from __future__ import annotations

import signal
import threading


# The stop signals by name, those a system lacks passed over.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU", "SIGBREAK")


def stop_signals() -> list[int]:
    """SIGINT, SIGTERM and SIGHUP (a closed terminal, a dropped SSH session), SIGXCPU
    (a soft CPU time limit reached: ulimit -St, a batch scheduler's warning before it
    kills; by default a core dump, the partial files left), and on Windows SIGBREAK
    (Ctrl-Break, which ended the process at once, its partial files left), less those
    ignored when the process started: nohup ignores SIGHUP, and a shell ignores SIGINT
    in a background job."""
    names = STOP_SIGNALS
    found = [getattr(signal, name) for name in names if hasattr(signal, name)]
    return [sig for sig in found if signal.getsignal(sig) is not signal.SIG_IGN]


# The stop signal that is ending the command, for its exit status (interrupted_status).
_stopped_by: list[int] = []


def note_stop(signum: int) -> None:
    """Keep ``signum`` as the signal that stops the command (the first one only)."""
    if not _stopped_by:
        _stopped_by.append(signum)


def interrupted_status() -> int:
    """The exit status of a command a stop signal ended: 128 + the signal, as a shell
    says of a process that died of it, and as the reference (no handler) gives: 130
    for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP, 152 for SIGXCPU. Every stop gave 130,
    and a service manager, or a script that tells Ctrl-C from a stop, took a SIGTERM for
    Ctrl-C. 130 where none was noted (Python's own SIGINT handler) or on Windows's
    Ctrl-Break."""
    signum = _stopped_by[0] if _stopped_by else signal.SIGINT
    named = [getattr(signal, name, None) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU")]
    return 128 + signum if signum in named else 128 + signal.SIGINT


def raising_ctrl_c(handler):
    """``handler``, a signal handler that raises KeyboardInterrupt as Python's SIGINT
    handler does, marked so (see ``ctrl_c_signals``)."""
    handler.raises_ctrl_c = True
    return handler


def ctrl_c_signals() -> list[int]:
    """The stop signals whose handler raises KeyboardInterrupt: Python's SIGINT
    handler, or the commands' for each. Holding them changes nothing a program asked
    for; a library user's own handler, or SIGTERM's default, is left alone."""
    return [sig for sig in stop_signals()
            if (handler := signal.getsignal(sig)) is signal.default_int_handler
            or getattr(handler, "raises_ctrl_c", False)]


def handled_in_python() -> list[int]:
    """The stop signals whose handler is Python code, which runs between Python's
    steps, less those a HeldInterrupts holds (noted, raised once released)."""
    return [sig for sig in stop_signals() if callable(handler := signal.getsignal(sig))
            and getattr(handler, "__func__", None) is not HeldInterrupts._note]


def held_ctrl_c() -> HeldInterrupts:
    """``HeldInterrupts(ctrl_c_signals())``, the handlers looked up only where they are
    held, in the main thread: a folder run's save threads write each picture, and
    looking up 6 handlers took 12 us a write for nothing."""
    main = threading.current_thread() is threading.main_thread()
    return HeldInterrupts(ctrl_c_signals() if main else [])


class HeldInterrupts:
    """The stop signals ``signals`` (default: every one, Ctrl-C, SIGTERM and SIGHUP)
    noted rather than raised until ``release``, which hands the first that came
    meanwhile to its own handler (KeyboardInterrupt where it has none); as a context
    manager, released as its block ends. The library holds ``ctrl_c_signals()``, which
    raise KeyboardInterrupt anyway: a program's own handler is left in place. Python
    runs signal handlers in the main thread alone, so elsewhere this holds nothing.
    (Blocking the signals in this thread would not do: another thread, OpenMP's or
    OpenBLAS's, takes them.)"""

    def __init__(self, signals: list[int] | None = None):
        self.noted = False
        self._first = None  # the first signal noted
        self._saved: dict = {}
        if threading.current_thread() is threading.main_thread():
            try:
                for sig in stop_signals() if signals is None else signals:
                    # Kept before it is set: a signal's handler runs as a call returns.
                    self._saved[sig] = signal.getsignal(sig)
                    signal.signal(sig, self._note)
            except BaseException:
                # Another stop signal, not yet held, raised here once the first was: no
                # one could release this, and Ctrl-C stayed noted for good.
                self.noted = False
                self.release()
                raise

    def __enter__(self) -> HeldInterrupts:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _note(self, signum, frame) -> None:
        if not self.noted:
            self._first = signum
        self.noted = True

    def release(self, hand_on: bool = True) -> None:
        """The handlers put back, and the first signal noted handed to its own, unless
        not ``hand_on``: then it is dropped."""
        saved, self._saved = self._saved, {}
        for sig, handler in saved.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if not hand_on:
            self.noted = False
        if self.noted:
            # Handed to the handler it came for, as if it came now: the commands'
            # raises once, then ignores the signals that land in its clean-up; raised
            # bare, past it, the next one was raised there too (a partial file left).
            self.noted = False
            handler = saved.get(self._first)
            if not callable(handler):  # SIG_DFL or SIG_IGN, held all the same (signals=None)
                raise KeyboardInterrupt
            handler(self._first, None)
