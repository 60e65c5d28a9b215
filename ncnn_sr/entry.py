"""The commands' entry points. A Ctrl-C, SIGTERM, SIGHUP or SIGXCPU at any moment of a command's
life ends it in one line with status 128 + the signal (130, 143, 129, 152), or, once its work is done, changes
nothing:
- from the first moment, SIGTERM, SIGHUP (a closed terminal, a dropped SSH session)
  where nohup does not ignore it, SIGXCPU (a soft CPU time limit reached), and on
  Windows Ctrl-Break, are taken as Ctrl-C;
- while the command's module, and its ncnn and numpy, load, and while click reads
  the arguments, it is caught here (click would print "Aborted!" and exit 1);
- the commands handle it themselves while they work; a second one meanwhile changes
  nothing, and one Python would drop (raised in a finalizer) is raised again;
- once the command has returned, they are ignored: the interpreter's own teardown,
  interrupted, died by the signal or printed a traceback after the work was done.
Memory running out anywhere a command does not handle it is one line and status 1, and
so is standard output that cannot be written (help or a listing sent to a full disk). A
reader of a listing that goes away (| head -1) changes nothing either: the rest of it
goes unwritten, and the command goes on to its end.
"""
from __future__ import annotations

import os
import sys

import _signal  # Python's own, loaded with it: nothing more loads before the hold below

_early: list[int] = []  # the stop signals held


def _held(signum, frame) -> None:
    _early.append(signum)


def _hold_from_the_start() -> None:
    """A stop signal that lands as this module and those it needs load, before ``_run``
    sets the commands' handlers, is held for ``_run`` to end the command with: Python's
    Ctrl-C handler printed a traceback (status -2) and SIGTERM killed it unsaid (-15),
    0.04 to 0.085 s into a start on two busy cores. Only in a command's own process,
    started by its script (bin/ncnn-sr, Scripts\\ncnn-sr.exe), ``python -m ncnn_sr``
    or ``python -m ncnn_sr.dropin``: a program that imports this module keeps its
    handlers."""
    started = (getattr(sys, "argv", None) or [""])[0] or ""
    name = os.path.basename(started)
    for suffix in (".exe", "-script.pyw", "-script.py"):
        name = name.removesuffix(suffix)
    ours = name in ("ncnn-sr", "realesrgan-ncnn-vulkan") or \
        name in ("__main__.py", "dropin.py") and os.path.basename(os.path.dirname(started)) == "ncnn_sr"
    # signals.STOP_SIGNALS's names: that module is not loaded yet.
    for sig_name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGXCPU", "SIGBREAK") if ours else ():
        sig = getattr(_signal, sig_name, None)
        try:
            if sig is not None and _signal.getsignal(sig) != _signal.SIG_IGN:  # nohup's SIGHUP stays ignored
                _signal.signal(sig, _held)
        except (ValueError, OSError):  # not the main thread
            pass


_hold_from_the_start()

# Loaded once the signals are held.
import _thread
import gc
import importlib
import signal
import time

from .signals import interrupted_status, note_stop, raising_ctrl_c, stop_signals

# As the command's script starts: before this module, only the package's own
# __init__ (which loads nothing) and Python's.
_loaded = time.monotonic()
_command_started: list[float] = []  # set by _run: a command is running through here

EXIT_OK = 0
EXIT_FAILED = 1

# Whether all standard output has held so far is a listing (help, --version, models,
# devices, fetch's list, what convert and bench tell of their work): a reader that
# closed it early (| head -1) took what it wanted, and the command goes on, its output
# dropped, to the status it would have had, as the help did where its one write fit in
# the pipe before the reader left. Help and --version are printed as a command's
# options are read, before it starts; a command starting clears it, a listing sets it
# again.
_listing = [True]


def output_is_a_listing(listing: bool = True) -> None:
    """Says whether what the command writes to standard output from here on is a
    listing, which its reader may stop reading at any line: its reader gone, the
    rest goes to /dev/null, and the command's work and its status are as they would
    have been (a bench read by | head -1 ended at its first line, its runs unmade)."""
    _listing[0] = listing


_last_signal = [signal.SIGINT]
_stopping = [False]


@raising_ctrl_c
def _as_ctrl_c(signum, frame) -> None:
    # Once: a second Ctrl-C broke off the clean-up after the first (a picture being
    # saved, a child being killed), or this module's own handling of it (a traceback).
    if _stopping[0]:
        return
    _stopping[0] = True
    _last_signal[0] = signum
    note_stop(signum)
    raise KeyboardInterrupt


def _unraisable(info) -> None:
    # Python drops an exception raised in a finalizer or a weakref callback (importlib's
    # module locks have one): a signal landing there was a traceback, "Exception
    # ignored", and the command ran on to status 0. It is sent again from another
    # thread, to be raised once this hook has returned (raised in it, it is dropped too).
    if not isinstance(info.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(info)
        return
    # A second signal landing here, once the handler is re-armed, raises in this hook,
    # which Python drops too ("Exception ignored in sys.unraisablehook"): the handler,
    # disarmed by it, then ignored the one sent, and the command ran on to status 0.
    while True:
        try:
            _stopping[0] = False
            _thread.start_new_thread(_thread.interrupt_main, (_last_signal[0],))
            return
        except KeyboardInterrupt:
            continue


def _leave_now(status: int) -> None:
    """os._exit(status), standard input and output put back as the command found them
    first (streams.put_back: atexit's, which os._exit skips)."""
    streams = sys.modules.get(f"{__package__}.streams")  # not loaded: nothing was changed
    if streams is not None:
        try:
            streams.put_back()
        except BaseException:  # a second Ctrl-C there does not hold the exit up
            pass
    os._exit(status)


def _interrupted(prog: str) -> None:
    try:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.stderr.flush()
    except OSError:  # after SIGHUP the terminal may be gone
        pass
    _leave_now(interrupted_status())  # native libraries may be half loaded or running: no teardown


class _PastClick(BaseException):
    """A stop signal's KeyboardInterrupt carried out of the command past click's main,
    which writes an empty line for one, to end the line a terminal echoed ^C on: in a
    log, or after a service manager's SIGTERM, a stray line before "interrupted"."""


def _carried_past_click(method):
    def carried(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except (KeyboardInterrupt, Exception) as e:
            # Or, as where the command's module loads (_run), an error a Ctrl-C caused:
            # ncnn, numpy and Pillow load once the flags are read, and one interrupted
            # in its C code reports an ImportError or a RuntimeError.
            if _caused_by_ctrl_c(e):
                raise _PastClick from None
            raise
    return carried


def _interrupted_past_click(prog: str) -> None:
    try:
        if sys.stderr.isatty():  # the terminal's ^C line ended, as click would
            sys.stderr.write("\n")
    except (OSError, ValueError):
        pass
    _interrupted(prog)


def _caused_by_ctrl_c(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _out_of_memory(prog: str, what: str = "") -> None:
    # Lines still buffered would be lost to os._exit, which skips the teardown (that
    # needs memory too); partial files were removed on the way out, as on any error.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    sys.stderr.write(f"{prog}: error: out of memory{what and ': '}{what}\n")
    sys.stderr.flush()
    _leave_now(EXIT_FAILED)  # the teardown would need memory too


# The system loader's words (glibc's) for a library it could not map into the address
# space: past a ulimit -v, as a command loads PyAV (FFmpeg's libraries), ncnn or numpy
# once it starts. Python raises them as an ImportError, numpy as its own, quoting them.
_UNMAPPED = r"([^\s:]+): (?:failed to map segment from shared object|cannot map zero-fill pages)"


def _unloaded_for_memory(error: BaseException) -> str | None:
    """The library that ``error`` (an ImportError, or one caused by one) says could not
    be mapped into memory; None where it says no such thing."""
    import re  # here, not as this module loads: before the signals are held, only what that needs

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ImportError) and (found := re.search(_UNMAPPED, str(error))):
            return found[1]
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


class StandardOutputError(OSError):
    """Standard output could not be written (help or a listing sent to a full disk)."""


class _MarkedOutput:
    """Standard output, or the bytes under it (``buffer``), whose write errors are
    StandardOutputErrors: it is written by code of many hands (click's help and echo,
    which may write the bytes underneath, print), and an OSError does not say which
    file it came from. A broken pipe is left as it is, to end the command, but in a
    listing, whose reader took what it wanted: the command goes on, writing nowhere."""

    def __init__(self, stream):
        self._stream = stream
        if getattr(stream, "buffer", None) is not None:
            self.buffer = _MarkedOutput(stream.buffer)

    def write(self, data):
        return self._marked(self._stream.write, data)

    def writelines(self, lines) -> None:
        self._marked(self._stream.writelines, lines)

    def flush(self) -> None:
        self._marked(self._stream.flush)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    @staticmethod
    def _marked(method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            if not _listing[0] or not _stdout_to_devnull():
                raise
            return method(*args)  # what was held for the reader, to /dev/null
        except OSError as e:
            raise StandardOutputError(e.errno, e.strerror) from e


def _stdout_to_devnull() -> bool:
    """Standard output's file, which failed a write, made /dev/null: what it still
    holds, and what is written to it from here on, goes nowhere, where it would fail
    again, at the interpreter's exit too, as "Exception ignored". Whether it could be."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        return False
    finally:
        os.close(devnull)
    return True


def _cannot_write_stdout(prog: str, error: StandardOutputError) -> int:
    _stdout_to_devnull()
    sys.stderr.write(f"{prog}: error: cannot write standard output: {error.strerror or error}\n")
    return EXIT_FAILED


def _spells_any_name(stream) -> None:
    """Characters ``stream``'s encoding lacks written as escapes (\\u6a21), not raised:
    a file's name Windows's code page cannot spell (a Japanese name, cp1252, output
    sent to a file) failed the command with a traceback, after its work; and a name's
    bytes that are not UTF-8 as those bytes (\\xe9), where standard error said
    Python's \\udce9 and standard output, in the C locale, the raw byte, which a
    terminal shows as a broken character."""
    from .errors import STREAM_ERRORS

    try:
        if stream.errors in ("strict", "backslashreplace", "surrogateescape"):
            stream.reconfigure(errors=STREAM_ERRORS)
    except (AttributeError, ValueError):  # no such stream, or not a plain text one
        pass


def _reader_went_away() -> bool:
    """Whether click ended the command for a broken pipe (| head): it exits 1 then,
    with the standard streams wrapped so that their flush at exit says nothing."""
    try:
        from click.utils import PacifyFlushWrapper
    except ImportError:  # a click that moved it: its exit status stands, 1
        return False
    return isinstance(sys.stdout, PacifyFlushWrapper)


def _stderr_to_devnull() -> None:
    """Standard error closed before Python started (2>&-, some daemons' launchers)
    leaves sys.stderr None, which every message and progress line failed on: the
    command exited 1 without a word or a picture. Its messages go to /dev/null, as
    to the closed stream, and fd 2 is held by it, so that no file the command opens
    takes number 2, where ncnn would write its complaints into it."""
    try:
        os.fstat(2)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
        if fd != 2:
            os.dup2(fd, 2)
            os.close(fd)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)


def command_started() -> float | None:
    """When the command run by its entry point started (``time.monotonic()``), for
    the time its closing line says, which a user sets beside the wall time they saw;
    None where no command runs through an entry point (one called in-process)."""
    return _command_started[0] if _command_started else None


def _run(module: str, prog: str) -> None:
    _command_started[:] = [_loaded]
    # numpy's OpenBLAS starts a thread per core as it loads, each spinning a while for
    # work that never comes (ncnn computes the networks; numpy's few products are of
    # 3-vectors): 0.04 s of CPU at every start, taken from the command's own loading
    # on a small machine. One thread, where the user has not set another count.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if sys.stderr is None:
        _stderr_to_devnull()
    _spells_any_name(sys.stdout)
    _spells_any_name(sys.stderr)
    if sys.stdout is not None:
        sys.stdout = _MarkedOutput(sys.stdout)
    stopping = stop_signals()
    for sig in stopping:
        signal.signal(sig, _as_ctrl_c)
    if _early:  # held as this module loaded
        note_stop(_early[0])
        _interrupted(prog)
    sys.unraisablehook = _unraisable
    try:
        main = importlib.import_module(module).main
        import click
    except KeyboardInterrupt:
        _interrupted(prog)
    except MemoryError:
        _out_of_memory(prog)
    except Exception as e:
        # Interrupted inside a C extension's loading, or a class being made, Python
        # reports an ImportError or a RuntimeError caused by the KeyboardInterrupt.
        if _caused_by_ctrl_c(e):
            _interrupted(prog)
        if (library := _unloaded_for_memory(e)) is not None:
            _out_of_memory(prog, f"cannot load {library}")
        raise
    # What the modules made as they loaded (numpy's, click's, Pillow's objects) lives
    # as long as the process: kept out of the collector's passes, which went through
    # all of it at each full collection, and several times in the interpreter's
    # teardown (75 ms of a one-picture run on 2 cores, 15 ms without).
    gc.freeze()
    # Reading the arguments, and the command's work: what click's main runs. The
    # instance's own, for this process alone (it ends here).
    main.make_context = _carried_past_click(main.make_context)
    main.invoke = _carried_past_click(main.invoke)
    try:
        code = main(standalone_mode=False)
    except _PastClick:
        _interrupted_past_click(prog)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _interrupted(prog)
    except MemoryError as e:
        # Its words where they name what could not be had (errors.OutOfMemoryFor; read
        # here by name, not imported: nothing more loads on this way out).
        _out_of_memory(prog, getattr(e, "said", ""))
    except ImportError as e:
        # A library the command loads as it starts its work (PyAV for a video) that the
        # memory left could not map: a traceback, where it is the host's memory, as a
        # MemoryError is.
        if (library := _unloaded_for_memory(e)) is None:
            raise
        _out_of_memory(prog, f"cannot load {library}")
    except BrokenPipeError:
        # Its reader went away (| head): there is no one left to tell, and the
        # interpreter's own flush at exit would print a traceback about it. Work cut
        # short by it failed (fetch's second model was not fetched); a listing did not
        # (its output dropped as written, _MarkedOutput: this one came past it).
        _leave_now(EXIT_OK if _listing[0] else EXIT_FAILED)
    except click.exceptions.ClickException as e:
        e.show()
        code = e.exit_code
    except SystemExit as e:
        code = EXIT_OK if _listing[0] and _reader_went_away() else e.code
    except StandardOutputError as e:  # help or a listing sent to a full disk (> list.txt)
        code = _cannot_write_stdout(prog, e)
    finally:
        # Before the handlers are swapped: a signal that came as the command returned is
        # handled by the first swap (Python runs pending handlers first), which raised it
        # out of here as a traceback, after the work was done.
        _stopping[0] = True
        for sig in stopping:
            signal.signal(sig, signal.SIG_IGN)
    # What the command left for the collector is collected now, and the rest is kept
    # out of the teardown's passes too: its memory goes with the process.
    gc.collect()
    gc.freeze()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        # A stream gone (a closed terminal's, hung up): the teardown would flush it
        # again, print "lost sys.stderr" to no one and make the status 120.
        os._exit(EXIT_OK if code is None else code if isinstance(code, int) else EXIT_FAILED)
    sys.exit(code)


def ncnn_sr() -> None:
    _run("ncnn_sr.cli", "ncnn-sr")


def realesrgan_ncnn_vulkan() -> None:
    _run("ncnn_sr.dropin", "realesrgan-ncnn-vulkan")
