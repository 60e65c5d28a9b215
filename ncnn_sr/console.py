"""The commands' lines on stderr and their progress bars. Each message is one line
(a library warning too), a file name's control characters escaped and a stream's
temporary file named as the stream, written above the live bar where one runs; the
bars tell of a folder's pictures, a picture's tiles and a video's frames, or off a
terminal a plain line every few seconds."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Callable

import click

from .errors import NOT_UTF8, without_subject
from .in_work import PerPicture

if TYPE_CHECKING:  # outcomes loads the planning, and Pillow with it: not for --help
    from .outcomes import Outcome

log = logging.getLogger("ncnn_sr")


class _Lines(logging.Handler):
    """Library messages as one line each on stderr: 'PROG: warning: ...'."""

    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        try:
            echo(f"{self.prog}: {level}{record.getMessage()}")
        except OSError:
            # stderr is gone (-v 2>&1 | head): raised from a library call, it ended the
            # run before any picture. The command's own lines still fail, once the
            # pictures are done (Pipeline's on_outcome), and the exit status says so.
            pass


_bar = None  # the live progress bar, which other lines must not tear


# A file name may hold a newline or a terminal's escape codes: shown as escapes, every
# message stays one line and the terminal stays as it was. The 8-bit codes too (U+0080
# to U+009F), which some terminals (xterm) take as C1 codes: U+0085 a line break, U+009B
# the start of an escape sequence. Its bytes that are not UTF-8 as errors.shown_bytes
# says them (\\xe9): here, as a stream in ASCII (LC_ALL=C with PYTHONUTF8=0) is one
# click writes through its own wrapper, which made them "?".
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]} | {9: "\\t", 10: "\\n", 13: "\\r"} \
    | NOT_UTF8


# Temporary files standing in for streams (``streams``), and the words messages use for them.
stream_aliases: dict[str, str] = {}


def name_streams(aliases: dict[str, str]) -> None:
    """Have messages name the streams that temporary files stand in for."""
    stream_aliases.clear()
    stream_aliases.update(sorted(aliases.items(), key=lambda item: -len(item[0])))  # a name before its beginning


def echo(line: str) -> None:
    """``line`` on stderr, as one line, its streams named, above the live bar."""
    for temporary, words in stream_aliases.items():
        line = line.replace(temporary, words)
    line = line.translate(_CONTROL)
    if _bar is not None:
        _bar.write(line, file=sys.stderr)
    else:
        click.echo(line, err=True)


def echo_stopping(line: str) -> None:
    """``line`` as ``echo`` says it, from a command that a stop signal is ending: where
    stderr went with the signal (a closed terminal, hung up, fails each write: EIO), the
    line goes unsaid, and the stop stays a stop (its status 128 + the signal), not an
    error of status 1."""
    try:
        echo(line)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def setup_logging(prog: str, verbose: bool, quiet: bool = False) -> None:
    log.handlers[:] = [_Lines(prog)]
    log.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    log.propagate = False


def bar_fits(stream) -> bool:
    """Whether a tqdm bar can be drawn on ``stream``: a terminal that states its size.
    On one that states none (a pseudo-terminal that `ssh -t` or `docker run -t` made
    from a script) tqdm takes its rows for -1 and draws nothing, so the plain lines
    go there instead."""
    if not stream.isatty():
        return False
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no descriptor of its own: trust isatty
        return True
    return size.columns > 0 and size.lines > 0


def _open_bar(prog: str, total: int | None, unit: str, fraction: bool = False):
    """A tqdm bar on stderr when it is a terminal, else None; other lines go above it.
    A ``fraction``al count is shown to a tenth."""
    global _bar
    if not bar_fits(sys.stderr):
        return None
    from tqdm import tqdm

    _bar = tqdm(total=total, unit=unit, file=_BarStream(sys.stderr), dynamic_ncols=True, desc=prog, leave=False,
                bar_format=FRACTION_SHAPE if fraction else None)
    return _bar


# A bar's shape where its count has fractions (pictures, tiles in work): to a tenth.
FRACTION_SHAPE = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def fraction_words(count: float) -> str:
    """``count`` as a progress line says it: cut (not rounded) to a tenth, as 1.97 of
    2 is not "2.0/2", and whole where the tenth is: a log said "1/3 pictures", then
    "1.0/3" of a sixteenth more (or of shares of tiles that summed to 1.0000000000000002),
    as if the count had changed its kind."""
    # The nudge keeps a sum a hair under its tenth (0.7 + 0.2 = 0.8999999999999999) in it.
    tenths = int(count * 10 + 1e-9)
    return f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:.1f}"


class _BarStream:
    """``stream`` as a bar writes to it: once a write fails (the terminal or the pipe
    beneath is gone), nothing more, and no error. A bar is told of each tile from a
    proc worker, whose picture failed for it; and tqdm, raising from a write, keeps its
    lock, so every later bar call, its close too, waited for it for ever. Equal to
    ``stream``, which tqdm compares it with to clear the bar before another line."""

    def __init__(self, stream):
        self._stream, self._gone = stream, False

    def write(self, text: str) -> None:
        self._quietly(self._stream.write, text)

    def flush(self) -> None:
        self._quietly(self._stream.flush)

    def _quietly(self, method, *args) -> None:
        if self._gone:
            return
        try:
            method(*args)
        except OSError:
            self._gone = True  # the pictures are still worth finishing, as tile_percent's

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def __eq__(self, other) -> bool:
        return other is self or other is self._stream

    def __hash__(self) -> int:
        return hash(self._stream)


def _close_bar() -> None:
    global _bar
    if _bar is not None:
        _bar.close()
        _bar = None


class _Meter:
    """What the progress displays share: a live bar on a terminal (``bar``), else
    plain lines at most every ``PLAIN_EVERY`` seconds, timed from ``started``."""

    PLAIN_EVERY = 5.0

    def __init__(self, prog: str, bar):
        self.prog, self.bar = prog, bar
        self.started = self.last_line = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            _close_bar()
            self.bar = None


def sub_folder_gone(prog: str, words: str, what: str) -> str:
    """The one line of a sub-folder (-r) gone during a folder's run, ``words`` saying
    which (files.input_gone, or files.output_gone of an output sub-folder, whose
    ``what`` already read are lost too), for all its ``what`` (pictures, videos) left:
    the run goes on with the other folders."""
    from .files import REMOVED  # not at the top: files loads more than --help needs

    step = "written" if words.endswith(REMOVED) else "read"
    return f"{prog}: error: {words}: its {what} not yet {step} are not done; the other folders go on"


class Progress(_Meter):
    """A bar with count, rate and ETA on a terminal; otherwise a plain line at most
    every few seconds. ``-v`` adds a line per file, ``--quiet`` shows errors only."""

    def __init__(self, prog: str, total: int, verbose: bool, quiet: bool, show: bool, say_failed: bool = False):
        super().__init__(prog, _open_bar(prog, total, "pic", fraction=True) if show and not quiet else None)
        self.total, self.verbose, self.quiet = total, verbose, quiet
        self.say_failed = say_failed
        self.stopped: Callable[[], str | None] = lambda: None  # why the run stopped early, once it has
        self.done = self.skipped = 0
        self._ended: dict[str, int] = {}  # the outcomes so far, by status
        self.plain = show and not quiet and self.bar is None
        self.folder_mode = show
        self._parts: dict[int, float] = {}  # each proc worker's share of its picture done, by thread
        self.said = 0.0  # the count of the last plain line
        self._gone: set[str] = set()  # the gone sub-folders said
        self._lock = threading.Lock()  # outcomes come from the save workers, tiles from the proc workers

    def tile(self, done: int, total: int) -> None:
        """A tile of a picture in work, told from the worker's own thread: the bar moves by
        its share, where a few large photos on the CPU sat at 0/N for minutes."""
        with self._lock:
            # A picture's last tile: its outcome, due soon, counts it whole. None done
            # (0): the picture failed, was cancelled or went to another device, its
            # share left counted beside its outcome, or the other device's share.
            self._parts[threading.get_ident()] = done / total if done < total else 0.0
            if self.bar is not None:
                self._move_bar()
            elif self.plain and 0 < done < total:
                # Off a terminal too: a few photos on the CPU, minutes each, left a log
                # silent between them. A picture's last tile is told by its outcome's line.
                self._plain_line(self._shown())

    def _shown(self) -> float:
        # Never past the total: an animation's frames each count as the whole picture.
        return min(self.done + sum(self._parts.values()), self.total)

    def _move_bar(self) -> None:
        # Never back: a share drops to 0 before its outcome comes.
        shown = self._shown()
        if shown > self.bar.n:
            self.bar.update(shown - self.bar.n)

    def _plain_line(self, shown: float) -> None:
        """The count ``shown``, a fraction while pictures are in work, with rate and
        ETA, where none was said in the last few seconds; never less than said before."""
        now = time.monotonic()
        if now - self.last_line < self.PLAIN_EVERY and shown < self.total or shown < self.said:
            return
        if shown <= self.skipped:  # outputs there already: "2/2 pictures" of a run that upscaled none
            return
        self.last_line, self.said = now, shown
        # Skipped pictures take no time: counted in the rate, a resumed batch's ETA was
        # a fraction of what was left.
        rate = (shown - self.skipped) / max(now - self.started, 1e-9)
        pace = f", {rate:.2f}/s, ETA {(self.total - shown) / rate:.0f} s" if rate > 0 else ""
        ended = f" ({self._ended_words()})" if self._any_failed() else ""
        echo(f"{self.prog}: {fraction_words(shown)}/{self.total} pictures{ended}{pace}")

    def _any_failed(self) -> bool:
        """Whether a picture failed, or was not done (its sub-folder gone)."""
        return bool(self._ended.get("failed") or self._ended.get("not done"))

    def _ended_words(self) -> str:
        """The outcomes so far in the summary line's words: "2 upscaled, 1 failed"."""
        counts = [f"{self._ended.get('ok', 0)} upscaled"]
        counts += [f"{self._ended[status]} {status}" for status in ("skipped", "failed", "not done")
                   if self._ended.get(status)]
        return ", ".join(counts)

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        self.skipped += outcome.status == "skipped"
        self._ended[outcome.status] = self._ended.get(outcome.status, 0) + 1
        for note in outcome.notes:
            if not self.quiet:
                echo(f"{self.prog}: warning: {note}")
        if outcome.status == "failed" and self.folder_mode and not self.say_failed \
                and outcome.message == self.stopped():
            # The folder's line that says the run stopped names it (the drop-in's wrappers
            # look for "failed"); a single picture's run has no such line.
            pass
        elif outcome.status == "not done":
            if outcome.message not in self._gone:  # a sub-folder gone: one line for all its pictures
                self._gone.add(outcome.message)
                echo(sub_folder_gone(self.prog, outcome.message, "pictures"))
        elif outcome.status == "failed":
            message = outcome.message
            if self.say_failed:
                # The reference's word for a picture it could not do, which its wrappers look for.
                message = f"{outcome.job.source} failed: {without_subject(outcome.job.source, message)}"
            echo(f"{self.prog}: error: {message}")
        elif self.verbose:
            if outcome.status == "ok":
                echo(f"{outcome.job.source} -> {outcome.output} done")
            else:
                echo(f"{outcome.job.source} -> {outcome.output} skipped ({outcome.message})")
        elif outcome.status == "skipped" and not self.folder_mode and not self.quiet:
            # A folder's run counts it in its summary line; a picture's would end in silence.
            echo(f"{self.prog}: {outcome.output} exists: skipped (--skip-existing)")
        if self.bar is not None:
            with self._lock:
                self._move_bar()
                if self._any_failed():
                    # A count of pictures finished, which reached 6/6 with one failed
                    # (a full disk): the bar says which ended how, as the summary will.
                    # Drawn now, its count too, which a redraw held back for its
                    # interval left at 5/6 beside "5 upscaled, 1 failed".
                    self.bar.set_postfix_str(self._ended_words())
        elif self.plain:
            with self._lock:
                self._plain_line(self.done)


class FrameProgress(_Meter):
    """Frames done, frames per second and ETA: a bar on a terminal, else a plain line
    every few seconds. A folder's video is told by ``place`` ("2/24") and ``name``:
    a season's log said hours of frames of no video named."""

    def __init__(self, prog: str, total: int | None, quiet: bool, place: str = "", name: str = ""):
        super().__init__(prog, None if quiet else _open_bar(f"{prog} {place}" if place else prog, total, "frame"))
        self.total, self.quiet = total, quiet
        self.done = 0
        self.kept = 0  # frames a stopped run's kept work held: done, but not by this run
        self.which = f" video {place} ({name}):" if place else ""

    @property
    def made(self) -> int:
        """The frames this run upscaled."""
        return self.done - self.kept

    def __call__(self, done: int) -> None:
        if not self.done and done > 1:
            # A run going on from kept work starts past it: its rate and ETA are of the
            # frames it upscales, not the kept ones it copied in a moment.
            self.kept = self.done = done - 1
            self.started = time.monotonic()
            if self.bar is not None:  # its clock and rate from here, its count past the kept
                self.bar.reset(self.bar.total)
                self.bar.initial = self.bar.n = self.bar.last_print_n = self.kept
                self.bar.refresh()
        step, self.done = done - self.done, done
        if self.total and done > self.total:
            # The total is the container's word, or a deinterlacer's rate times it
            # (film on a clip of under five frames): past it, it is what is done.
            self.total = done
            if self.bar is not None:
                self.bar.total = done
        if self.bar is not None:
            self.bar.update(step)
        elif not self.quiet:
            now = time.monotonic()
            if now - self.last_line >= self.PLAIN_EVERY:
                self.last_line = now
                fps = self.made / max(now - self.started, 1e-9)
                eta = f", ETA {(self.total - done) / fps:.0f} s" if self.total and fps else ""
                of = f"/{self.total}" if self.total else ""
                echo(f"{self.prog}:{self.which} {done}{of} frames, {fps:.2f} fps{eta}")


    def finish(self) -> None:
        """Close it once the video is written: a total that was a guess (a container's
        length, a deinterlacer's rate times it) is what was done, where the bar
        ended at "30/31 frames", as if a frame were lost."""
        if self.bar is not None and self.done and self.bar.total != self.done:
            self.total = self.bar.total = self.done
            self.bar.refresh()
        self.close()


class TileBar(_Meter):
    """A single picture's tiles as a bar on a terminal: a photo on the CPU takes
    minutes, in which nothing was shown. Opened before the first tile is done. An
    animation's ``frames`` (of one size) count each frame's tiles, whichever worker
    upscales it.

    Never back: a tile size that ran out of memory is halved and the picture starts
    again, and a picture (a frame) whose device failed starts again on another; the
    bar went from 2/4 to 1/16. It holds its place until the work passes it (the
    warning before says why it paused), then goes on in the new tiling's count (9/16)."""

    def __init__(self, prog: str, frames: int = 1):
        super().__init__(prog, _open_bar(prog, None, "tile"))
        self.frames = frames
        self.lock = threading.Lock()
        self.partial = False  # a plain line of a count not yet finished was written
        self._finished = 0  # frames whose last tile was told
        self._parts: dict[int, Fraction] = {}  # the share done of the frame each thread upscales
        self._shown = Fraction(0)  # of the whole picture: the most it was ever
        self._tiles = 0  # a frame's, in the finest tiling told

    def __call__(self, done: int, total: int) -> None:
        with self.lock:
            me = threading.get_ident()
            if not done:
                # An upscale that ended without its result (see Pipeline), its last tile
                # told or not: the picture starts again, on another device or not at
                # all, and an animation's frames with it, those done too. Each was
                # counted again as the retry did it, and a frame that failed as it was
                # resampled twice: the bar stood at 3/3 after the retry's first frame.
                self._finished = 0
                self._parts.clear()
                return
            if done >= total:
                self._parts.pop(me, None)
                self._finished += 1
            else:
                self._parts[me] = Fraction(done, int(total))
            now = (self._finished + sum(self._parts.values(), Fraction(0))) / self.frames
            if now <= self._shown:
                return  # not past where it was: held, the warning before says why
            self._shown = min(Fraction(1), now)
            tiles = getattr(total, "tiles", None)  # tiles.Steps: steps of that many tiles
            # In the finest tiling told: frames in work at once, on the tile size before
            # and after one ran out of memory, flipped it between 2/12 and 11/48.
            self._tiles = max(self._tiles, int(total) if tiles is None else tiles)
            whole = self._tiles * self.frames
            exact = self._shown * whole
            count = int(exact) if exact.denominator == 1 else float(exact)
            if self.bar is None:
                self._plain_line(count, whole)
                return
            if (tiles is not None or exact.denominator != 1) and self.bar.bar_format is None:
                self.bar.bar_format = FRACTION_SHAPE  # a share of another tiling's tiles
            known = self.bar.total is not None
            self.bar.total = whole
            self.bar.update(count - self.bar.n)
            if not known:
                self.bar.refresh()  # the total, at once

    def _plain_line(self, count: float, whole: int) -> None:
        """Off a terminal (a log, nohup), a line every few seconds, as a folder's run and
        a video's write: a photo on the CPU said nothing for minutes. Once done, a last
        line where one was said, else the log's last word was "2/4 tiles", as if the
        run stopped there; a picture done within the first few seconds says nothing."""
        now = time.monotonic()
        if count >= whole:
            if self.partial:
                self.partial = False
                echo(f"{self.prog}: {whole}/{whole} tiles, done in {now - self.started:.0f} s")
            return
        if now - self.last_line < self.PLAIN_EVERY:
            return
        self.last_line, self.partial = now, True
        rate = count / max(now - self.started, 1e-9)
        echo(f"{self.prog}: {fraction_words(count)}/{whole} tiles, {rate:.2f}/s, ETA {(whole - count) / rate:.0f} s")


# By picture (in_work), as a Pipeline's proc workers upscale one picture at a time
# each, and one whose device failed goes on in another thread: how far tile_percent
# has said the picture is done, as (tiles, out of), or None.
_percent_said = PerPicture()


def tile_percent(done: int, total: int) -> None:
    """A picture's tiles done as the reference says them: a line such as '25.00%'.
    Steps of tiles (``tiles.Steps``: a staged run's windows, TTA's passes over one
    window) say a line as each tile's worth is done, as the reference does its tiles.

    Never less than a line said before of the same picture: a tile size that ran out of
    memory is halved and the picture starts again (the reference never retries), and it
    said 50.00% then 6.25%. The retry says nothing until it passes that line, so the
    lines only go on, as a wrapper that reads them as a bar expects; the warning before
    them says why they paused. A line of a restart would be one the reference never
    writes, in the lines such a wrapper reads."""
    said = _percent_said.get()
    if not done:
        # An upscale that ended without its result (see Pipeline): no line. Its picture
        # may go on on another device, from where its lines were, not from 0.00%.
        _percent_said.upscale_ended()
        return
    tiles = getattr(total, "tiles", None)
    if tiles is None:
        finished, tiles = range(done, done + 1), total
    else:  # the tiles this step finished: none within a tile, several where steps are fewer than tiles
        finished = range((done - 1) * tiles // total + 1, done * tiles // total + 1)
    if said is not None:
        finished = [tile for tile in finished if tile * said[1] > said[0] * tiles]
    if finished:
        # A picture done leaves no mark: the next one starts from nothing.
        _percent_said.set(None if finished[-1] >= tiles else (finished[-1], tiles))
    try:
        for tile in finished:
            echo(f"{tile / tiles * 100:.2f}%")
    except OSError:
        pass  # stderr is gone: the picture is still worth finishing
