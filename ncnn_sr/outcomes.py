"""What a Pipeline's run makes of its jobs: each one's Outcome, the run's Summary,
and the outcomes of a run with ``skip_existing`` that would skip every job."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .jobs import Job, existing_output


@dataclass(frozen=True)
class Outcome:
    """What became of one job: ``status`` is ok, skipped or failed, or "not done"
    where its sub-folder (below the folder its plan listed, ``Job.listed_in``) went
    during the run before it was read, or in place (its output folder too) before
    it was written, or where its output sub-folder (below ``Job.written_below``),
    which the run wrote in, went before it was written (``message`` says which, the
    same for each picture of it);
    ``output`` is the file written (it can differ from the job's target, e.g.
    alpha → png); ``notes`` are warnings about an item that still succeeded."""

    job: Job
    status: str
    message: str = ""
    output: Path | None = None
    notes: tuple[str, ...] = ()


@dataclass
class Summary:
    """What one ``Pipeline.run`` did: how many jobs were ok, skipped or failed (``done``
    all three), each failure's Outcome, the seconds it took and the input pixels it
    upscaled; ``cancelled``, ``stopped`` and ``abandoned`` say how it ended early."""

    ok: int = 0
    skipped: int = 0
    failed: int = 0
    cancelled: bool = False
    stopped: str | None = None  # why the run ended early on its own (a full disk, a folder gone, every device failed)
    # The run stopped because every device had failed, not for want of room.
    devices_failed: bool = False
    # The run stopped because a folder of its pictures was removed or renamed: those
    # read before it were still upscaled and written.
    input_gone: bool = False
    # The pictures not done since their sub-folder went before they were read (-r), or
    # it or their output sub-folder before they were written (see Outcome), and
    # each such folder in words ("IN/sub was removed or renamed during the run"): the
    # run went on with the other folders. Not in ``done``.
    not_done: int = 0
    gone_folders: list[str] = field(default_factory=list)
    # Each hidden temporary file of a write that failed and that could not be removed
    # (its folder made read-only meanwhile), in words: "OUT/.a.png.x1y2.part: a
    # temporary file that could not be removed (Permission denied)".
    left_behind: list[str] = field(default_factory=list)
    # Each device out of the run at its end, with what it failed on: "GPU 0 (...): RuntimeError(...)".
    lost: list[str] = field(default_factory=list)
    # Ctrl-C left a worker inside ncnn, whose tile may take minutes (or inside the
    # caller's jobs iterator): the process must end without the interpreter's
    # teardown, which would wait for it or abort. Idle workers are not left.
    abandoned: bool = False
    seconds: float = 0.0
    pixels_in: int = 0
    failures: list[Outcome] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.ok + self.skipped + self.failed


def found_output(job: Job) -> tuple[Path | None, Path | None]:
    """What ``skip_existing`` finds of ``job``: its output there (or None), and with one,
    the first output of another input of its stem that is not there yet (or None). Each
    input added since the last run adds one such output; one that sorts first takes
    the stem's plain name, which then held another input's picture: the job is skipped
    only where its output is there and no such one is missing. Its output is first
    looked for at its ``clash_name``, where an earlier run wrote it while another input
    of its stem took the plain name: that other removed since, the plain name holds
    its picture, which was taken for this one's."""
    if job.clash_name and (earlier := existing_output(job.target.with_name(job.clash_name))) is not None:
        return earlier, None  # where it is, as the names do not move
    existing = existing_output(job.target)
    if existing is None:
        return None, None
    return existing, next((t for t in job.stem_siblings if existing_output(t) is None), None)


def skipped_outcomes(jobs: Iterable[Job]) -> list[Outcome] | None:
    """The Outcome of each of ``jobs`` in a run with ``skip_existing`` that would skip
    every one, in their order; None where it would not. Such a run needs no lanes: a
    finished batch run again loaded a model (seconds on a GPU) for no picture."""
    outcomes = []
    for job in jobs:
        existing, missing = found_output(job)
        if existing is None or missing is not None:
            return None
        outcomes.append(Outcome(job, "skipped", "output exists", existing))
    return outcomes
