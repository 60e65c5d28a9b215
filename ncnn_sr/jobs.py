"""Which pictures to upscale and where each result goes.

Folder mode follows the reference tool: the output of ``name.ext`` is
``name.FORMAT``; when two inputs in one folder share a stem, the later one (in
sorted order) becomes ``name.ext.FORMAT``, so a picture added later that sorts first
takes ``name.FORMAT`` from another; names are compared as case-insensitive
file systems compare them (macOS, Windows, exFAT and NTFS drives), where ``A.png``
and ``a.png`` are one file, and so are ``A/x.png`` and ``a/x.png`` of two subfolders
whose names differ only by case; and as macOS compares them, where a composed
``\u00e9`` and an ``e`` with a combining accent are one letter. Only files with a
picture extension are taken, and files whose name says nothing of them (no
extension, or a last suffix that is none: photo.jpg_large) whose first bytes are a
picture's (hidden files never; the others are named in one note, raw photos in one
of their own); ``recursive`` mirrors the folder tree in the output. A folder of
videos (``plan_videos``) keeps each video's name, and its container where it can (a
file whose name says nothing of it whose first bytes are a video's is taken too; the
others are named in one note).
"""
from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import os
import sys
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .cut_short import is_cut_short
from .errors import FlagNames, InputError, Option, SettingError, broken_link, describe, shell_word
from .files import ffmpeg_name
from .images import FORMATS, file_path, format_named, named_format, only_an_extension, output_format, special_kind
from .path_names import (RAW_ADVICE, RAW_SUFFIXES, is_picture_suffix, names_a_folder, says_its_kind, split_name,
                         suffix_fault)
from .signatures import VIDEO_HEAD, picture_format, video_container
from .video_options import is_video_path


@dataclass(frozen=True)
class Job:
    """One picture: read from ``source``, written to ``target``. ``stem_siblings``:
    where the folder's other inputs of its stem go, when this one took the stem's
    plain name (a.png of a.jpg, beside a.png which goes to a.png.png). ``in_place``:
    the picture may be replaced by its output (plan_jobs' in_place). ``clash_name``:
    for one of a folder that took the plain name, the name its output takes, in the
    target's folder, where another of its stem sorts first (a.png.png of a.png,
    beside a.jpg's a.png): an output there is this picture's, from a run when that
    other was there; "" where another input's output has that name, and for a
    picture alone. ``listed_in``: the folder a plan listed it below (its run's input
    folder): a sub-folder of it gone during the run is its own pictures' loss alone,
    the run goes on; None for a Job made by hand."""

    source: Path
    target: Path
    stem_siblings: tuple[Path, ...] = ()
    in_place: bool = False
    clash_name: str = ""
    listed_in: Path | None = None

    def __post_init__(self) -> None:
        # Made by hand with str paths, as open() takes them: the run failed inside on a
        # bare AttributeError ('str' object has no attribute 'suffix').
        for name in ("source", "target"):
            object.__setattr__(self, name, _job_path(getattr(self, name), f"a Job's {name}"))
        given = self.stem_siblings
        # One path given alone was taken a character at a time.
        given = (given,) if isinstance(given, (str, bytes, os.PathLike)) else given
        try:
            given = tuple(given)
        except TypeError:  # else a bare "'int' object is not iterable"
            raise SettingError(f"a Job's stem_siblings must be a path or a sequence of paths, "
                               f"got {describe(self.stem_siblings)}") from None
        object.__setattr__(self, "stem_siblings", tuple(_job_path(p, "a Job's stem sibling") for p in given))
        if not isinstance(self.clash_name, str):  # else a bare TypeError in --skip-existing's look
            raise SettingError(f"a Job's clash_name must be a str, got {describe(self.clash_name)}")
        if not isinstance(self.in_place, (bool, np.bool_)):
            # in_place="no" is true: the run replaced the picture by its output.
            raise SettingError(f"a Job's in_place must be True or False, got {describe(self.in_place)}")
        if self.listed_in is not None:
            object.__setattr__(self, "listed_in",
                               Path(file_path(self.listed_in, "a Job's listed_in", SettingError, "a folder's path")))

    @property
    def written_below(self) -> Path | None:
        """The folder a plan mirrored ``listed_in``'s sub-folders into (its run's output
        folder): a sub-folder of it gone during the run is its own pictures' loss
        alone, the run goes on. The target's folder less as many folders as the
        source's lies below ``listed_in``; None for a Job made by hand."""
        if self.listed_in is None:
            return None
        try:
            depth = len(self.source.parent.relative_to(self.listed_in).parts)
            return self.target.parents[depth]
        except (ValueError, IndexError):  # a source not below it, made by hand
            return None


def _job_path(path, what: str) -> Path:
    """``path`` as a Path; a SettingError, as jobs' other refusals of an argument,
    where it is no usable path."""
    name = file_path(path, what, SettingError)
    return path if isinstance(path, Path) else Path(name)  # a plan's own: not made again


@dataclass(frozen=True)
class Plan:
    """The jobs of a run, one-line notes about renamed or ignored files, and one-line
    errors for the sub-folders that could not be listed (whose pictures are not in
    ``jobs``: the run does the rest, and counts each as a failure)."""

    jobs: tuple[Job, ...]
    notes: tuple[str, ...]
    folder_mode: bool
    unlisted: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()  # the hidden files named as pictures, left out: said where no picture is found


def alpha_target(target: Path) -> Path:
    """Where a picture with transparency goes: its target, or, when that is a JPEG,
    ``name.jpg.png`` (the reference tool's rule). A png or webp target's
    ``name.png.png`` is another input's name on a stem clash, never this one's."""
    if named_format(target) == "jpg":  # .jfif and .jpe too
        return Path(f"{target}.png")
    return target


def existing_output(target: Path) -> Path | None:
    """The output --skip-existing finds for ``target``: that file, or its picture with
    transparency (``alpha_target``), where it is there, not empty and not cut short
    (``is_cut_short``)."""
    return next((p for p, short in _outputs_there(target) if not short), None)


def cut_short_output(target: Path) -> Path | None:
    """The file ``existing_output`` finds for ``target`` but for its end missing, or None."""
    return next((p for p, short in _outputs_there(target) if short), None)


def _outputs_there(target: Path) -> list[tuple[Path, bool]]:
    """(file, whether it is cut short) for ``target`` and its picture with transparency,
    each that is there and not empty."""
    there = []
    for candidate in dict.fromkeys((target, alpha_target(target))):  # one look when they are one
        try:
            if candidate.is_file() and candidate.stat().st_size > 0:
                there.append((candidate, is_cut_short(candidate)))
        except OSError:
            pass  # a name too long, say: writing it will fail and say why
    return there


def is_picture_name(path: Path) -> bool:
    return is_picture_suffix(path.suffix) and not path.name.startswith(".")


def plan_jobs(input_path: str | os.PathLike, output_path: str | os.PathLike,
              fmt: str | None = None, recursive: bool = False, folder: bool = False, suffix: str = "",
              in_place: bool = False, skip_existing: bool = False,
              flags: FlagNames = FlagNames(library=True)) -> Plan:
    """Plan a run from an input file or folder and an output file or folder.

    A file into a folder becomes ``folder/stem.FORMAT`` (``stemSUFFIX.FORMAT`` with
    a ``suffix``, which lets outputs go beside their inputs: a picture there named
    as another's output is one, left out with a note); a file into a file name
    takes that name's format (``fmt`` and ``suffix`` are then ignored, ``fmt`` with
    a note, as in the reference). A
    folder goes into a folder. An output is a folder when it is one, when ``folder``
    says so, or when ``output_path`` is written as one ("out/"); a folder that is
    not there yet is made by the run, unless it is named like a picture output
    ("out.png" is refused, as the reference refuses it) or a video ("out.mp4"). A plan whose output would replace one of its
    own inputs is refused whole (InputError), as are a path that cannot be looked at
    and an output that cannot be reached (a link to nothing on its way, or a file
    where a folder must be). ``in_place`` lets a file input be replaced by its output
    named as the input, as the reference does and its wrappers rely on: the output is
    written aside and renamed over the input once whole. ``skip_existing`` says the
    run keeps the outputs there: a folder into itself without a suffix then leaves
    out, with a note, a picture named as another's output in this run's format
    (a.webp beside a.png, for webp), as a suffix's run does; otherwise that picture
    is an input the run would overwrite, and the plan is refused. ``flags``: how the
    notes name the arguments, as a command's flags (by default as this function's
    parameters).
    """
    # As str: None was a bare TypeError from pathlib, and bytes were refused.
    input_path, output_path = file_path(input_path, "plan_jobs"), file_path(output_path, "plan_jobs")
    if not isinstance(suffix, str):  # 5 named the outputs "a5.png"
        raise SettingError(f"suffix must be a str, got {describe(suffix)}")
    if fault := suffix_fault(suffix):  # "/../x" planned outputs outside the output folder
        raise SettingError(f"suffix {fault}, got {suffix!r}")
    for name, value in (("recursive", recursive), ("folder", folder), ("in_place", in_place),
                        ("skip_existing", skip_existing)):
        if not isinstance(value, (bool, np.bool_)):  # a truthy "no" took the subfolders too
            raise SettingError(f"{name} must be True or False, got {describe(value)}")
    try:
        return _plan(Path(input_path), Path(output_path), fmt, recursive, folder or names_a_folder(output_path),
                     suffix, in_place, skip_existing, flags)
    except OSError as e:  # a name too long for the file system, say
        raise InputError(f"{e.filename or input_path}: {e.strerror or e}") from None


def _plan(src: Path, dst: Path, fmt: str | None, recursive: bool, into_folder: bool, suffix: str,
          in_place: bool, skip_existing: bool = False, flags: FlagNames = FlagNames(library=True)) -> Plan:
    # "" is no format, as write_image takes it; anything else not a str is refused
    # there (an array's truth was ambiguous, and 0 or False planned png unsaid).
    given, fmt = fmt, None if fmt is None or (isinstance(fmt, str) and not fmt) else format_named(fmt, dst)
    if not src.exists():
        raise InputError(f"{src} is {broken_link(src)}" if src.is_symlink() else f"{src}: file not found")
    if not src.is_file() and not src.is_dir():
        raise InputError(f"{src} is neither a file nor a folder")
    if src.is_file():
        if src.suffix.lower() in RAW_SUFFIXES:
            # As a folder leaves it out: Pillow reads its preview (a DNG's 256 pixels,
            # a CR2's camera JPEG), or nothing it can tell, in place of the photo.
            raise InputError(f"{src} is a raw photo, which is not read here: {RAW_ADVICE.format('it')}")
        named = not (into_folder or dst.is_dir())
        if not named:
            dst = dst / f"{split_name(src.name)[0]}{suffix}.{fmt or 'png'}"
        check_reachable(dst, file=True)
        written = output_format(dst)
        # The reference's rule, but said: a script's -f is otherwise lost without a word.
        # Named as given: -f jpeg was said as "-f jpg", a flag the user never typed.
        notes = () if fmt in (None, written) else (f"{flags.named(f'-f {given}', f'fmt={given!r}')} ignored: {dst} "
                                                   f"is written as {written}, as its extension says",)
        if suffix and named:
            notes += (f"{flags.named(f'--suffix {suffix}', f'suffix={suffix!r}')} ignored: the output is named, "
                      f"{dst}",)
        if recursive:  # a script's -r over what it took for a folder
            notes += (f"{flags.named('-r', 'recursive=True')} ignored: {src} is not a folder",)
        # Only a picture named as its own output is replaced: one whose output folder
        # is its own (-o .) got its name from the run, and was lost unasked.
        in_place = in_place and named
        plan = Plan((Job(src, dst, in_place=in_place),), notes, False)
        return plan if in_place else _unless_overwriting(plan)
    check_reachable(dst, file=False)
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{src} is a folder but {dst} is a file: "
                         "input and output must both be files or both be folders")
    if not dst.exists() and not into_folder and (dst.suffix.lower().lstrip(".") in FORMATS
                                                 or (dst.suffix and is_picture_suffix(dst.suffix)) or only_an_extension(dst)):
        # The reference refuses it; a folder named out.png was made instead, in silence,
        # and so was one named out.tif, a picture read here though not written. (A bare
        # "out" asks nothing of Pillow: its every reader would load for the answer.)
        raise InputError(f"{src} is a folder but {dst} is named like a picture: input and output must both be "
                         f"files or both be folders ({os.path.join(dst, '')} makes a folder of that name)")
    if not dst.exists() and not into_folder and is_video_path(dst):
        # A folder of frames (-i tmp_frames -o out.mp4) made a folder named out.mp4, in silence.
        raise InputError(f"{src} is a folder but {dst} is named like a video: a folder's pictures are written "
                         f"into a folder ({os.path.join(dst, '')} makes a folder of that name)")
    jobs: list[Job] = []
    notes: list[str] = []
    unlisted: list[str] = []
    # Output paths below dst, casefolded, across folders: "A/x.png" and "a/x.png" are
    # one file where case is not told apart.
    taken: dict[str, tuple[str, str]] = {}
    videos = 0
    not_pictures: list[str] = []  # files named as no picture nor video, below src
    raws: list[str] = []  # raw photos, below src
    unread: list[str] = []  # files of a name that says nothing, their first bytes unread: "name: why"
    sniffed = False  # whether one of them was read, its name saying nothing
    kept_aside: set[Path] = set()  # pictures left out as outputs of an earlier run, without a suffix
    hidden: list[str] = []  # files named as pictures but hidden (.a.png), below src
    for folder, entries in _walk(src, dst, recursive, unlisted):
        # Each entry looked at once, by what scandir told (a stat only for links and
        # what is neither file nor folder): a folder of 20000 frames took 16 s to plan.
        names, broken, special = [], [], []
        within = "" if folder == src else f"{folder.relative_to(src)}{os.sep}"
        for e in entries:
            is_file = _holds(e.is_file)
            if is_picture_name(Path(e.name)):
                if is_file:
                    names.append(e.name)
                elif _leads_nowhere(e):
                    broken.append(f"{e.path} is {broken_link(Path(e.path))}: left out")
                elif not _holds(e.is_dir) and (kind := special_kind(e.path)) is not None:
                    special.append(f"{e.path} is {kind}, not a picture file: left out")
            elif not is_file or e.name.startswith("."):
                if is_file and is_picture_suffix(Path(e.name).suffix):
                    hidden.append(within + e.name)
                continue  # .DS_Store, our own .part files: left out unsaid
            elif is_video_path(e.name):
                videos += 1
            elif (extension := Path(e.name).suffix) and says_its_kind(extension):
                (raws if extension.lower() in RAW_SUFFIXES else not_pictures).append(within + e.name)
            elif picture_format(head := _head(e.path)) is not None:
                # A picture whose name says nothing of it: no extension (a scraper's, a
                # phone's export), or a last suffix that is none (Twitter's .jpg_large, a
                # backup's .png~, wget's .1), which the reference reads as it reads any
                # file. Only these are opened to plan: a folder of 20000 frames, or of
                # frames and their .json, has no head read.
                names.append(e.name)
            elif video_container(head) is not None and not _sound_alone(e.path):
                videos += 1  # a clip a downloader left without its extension: 'ncnn-sr video' takes it
            elif not head and (why := _unreadable(e.path)) is not None:
                unread.append(f"{within}{e.name}: {why}")
            else:
                not_pictures.append(within + e.name)
                sniffed = True
        notes += broken + special
        if (suffix or skip_existing) and _same_folder(folder, dst / folder.relative_to(src)):
            # Without a suffix an earlier run's outputs are told only by this run's
            # format: in all of them, a.png and a.webp would each be the other's.
            kept = _left_out_outputs(folder, names, suffix, notes, None if suffix else [fmt or "png"])
            if not suffix:
                # As the jobs name their outputs: through dst, which may be spelt apart from src.
                kept_aside.update(dst / folder.relative_to(src) / name for name in set(names) - set(kept))
            names = kept
        folders = [e.name for e in entries if recursive and _holds(e.is_dir) and not e.name.startswith(".")]
        _name_outputs(folder, names, dst, folder.relative_to(src), fmt or "png", jobs, notes, taken, suffix,
                      folders, src)
    jobs = _with_stem_siblings(jobs, dst, fmt or "png", suffix)
    if kept_aside:
        _unless_writing_over(jobs, kept_aside)
    if not_pictures:
        notes.append(_left_out(src, not_pictures, "picture", sniffed))
    if unread:
        notes.append(_unread(src, unread))
    if raws:
        # Said apart: they are pictures, and "not pictures by their names" misled.
        notes.append(f"{len(raws)} raw photo{'s' if len(raws) > 1 else ''} in {src} left out ({_first_names(raws)}): "
                     f"raw photos are not read here; {RAW_ADVICE.format('them')}")
    if videos:
        # Left out without a word, a folder of clips ended in "no pictures found".
        # The command quoted as the shell reads it back: in quotes of its own, a folder
        # with a space ("my clips") or a Latin-1 byte went in as two paths, or another.
        # The library's caller is named the library's way, a command's user the command.
        how = "plan_jobs plans pictures; upscale_video upscales a video" if flags.library else \
            f"a folder run upscales pictures; ncnn-sr video -i {shell_word(str(src))} -o OUT_FOLDER upscales its videos"
        notes.append(f"{videos} video{'s' if videos > 1 else ''} in {src} left out: {how}")
    return _unless_overwriting(Plan(tuple(jobs), tuple(notes), True, tuple(unlisted), tuple(hidden)))


def check_reachable(output: Path, file: bool) -> None:
    """InputError if a folder above ``output`` is a file, or if ``output`` or a folder
    above it is a link that leads nowhere: no folder can be made there ("Not a
    directory", "File exists"), and a run would upscale every picture only to fail
    each. A ``file`` output's own link may name a file not made yet, in a folder that
    is there."""
    making = f"cannot make the folder {'of ' if file else ''}{output}"
    parts = [*reversed(output.parents), output]
    with contextlib.suppress(OSError):  # its words are the walk's
        if output.parent.is_dir():
            # Every folder above it is one then, as the walk would find them: the loader
            # checks each picture's output, and walking its folders took 10 stats a
            # picture at /tmp/x/y/p.png where this takes 3.
            parts = [output]
    if len(parts) == 1 and _nothing_named(output):
        return  # as the walk finds it (neither there nor a link): the run makes it
    for part in parts:
        if part.exists():
            if part != output and not part.is_dir():
                raise InputError(f"{making}: {part} is {'a file, ' if part.is_file() else ''}not a folder")
            continue
        if not part.is_symlink():
            return  # the run makes it and what is below it
        if part != output:
            raise InputError(f"{making}: {part} is {broken_link(part)}")
        if not (file and _links_to_a_new_file(output)):
            raise InputError(f"cannot write {'' if file else 'into '}{output}: it is {broken_link(part)}")


def _nothing_named(path: Path) -> bool:
    """Whether nothing at all is at ``path``, not even a link (one lstat, where
    Path.exists then is_symlink took two system calls for each picture's new output);
    False where that cannot be told, for the walk to ask."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        pass
    return False


def _links_to_a_new_file(link: Path) -> bool:
    """Whether a link that leads nowhere names a file in a folder that is there: a
    write through it makes that file."""
    try:
        os.stat(link)
    except OSError as e:
        return e.errno != errno.ELOOP and Path(os.path.realpath(link)).parent.is_dir()
    return True


class OutputIsInput(InputError):
    """A planned output that is one of the inputs."""


def _unless_overwriting(plan: Plan) -> Plan:
    """``plan``, or InputError if an output is one of the inputs (the same file by any
    path or link): the reference tool overwrote it, and the picture was lost. A JPEG
    target counts with the ``name.jpg.png`` it becomes if its picture has alpha,
    which is known only once the picture is read."""
    check_outputs_not_inputs([job.source for job in plan.jobs],
                             [(target, job.target) for job in plan.jobs
                              for target in dict.fromkeys((job.target, alpha_target(job.target)))])
    return plan


def _unless_writing_over(jobs: list[Job], kept_aside: set[Path]) -> None:
    """OutputIsInput if a job of ``jobs`` that --skip-existing would not skip has its
    output at a picture of ``kept_aside``: without a suffix such a picture may be one
    of its own (a.png beside a.jpg), and a.bmp added since, taking a.png, or one cut
    short, would be written over it."""
    from .outcomes import found_output  # it imports this module

    for job in jobs:
        aside = [target for target in (job.target, alpha_target(job.target)) if target in kept_aside]
        if not aside:
            continue
        existing, missing = found_output(job)
        if existing is None or missing is not None:
            raise OutputIsInput(f"output {aside[0]} is an input: it would be overwritten; choose another output")


def check_outputs_not_inputs(sources: list[Path], targets: list[tuple[Path, Path]]) -> None:
    """OutputIsInput if a file of ``targets`` ((file, the job's output it stands for))
    is one of ``sources`` by any path or link."""
    known = {}
    for source in sources:
        with contextlib.suppress(OSError):
            st = source.stat()
            known[(st.st_dev, st.st_ino)] = source
    for target, output in targets:
        try:
            st = target.stat()
        except OSError:
            continue  # not there yet: it cannot be an input
        same = known.get((st.st_dev, st.st_ino))
        if same is not None:
            also = "" if same == target else f" ({same})"
            why = "" if target == output else f", where {output} goes if its picture has transparency,"
            raise OutputIsInput(f"output {target}{why} is an input{also}: it would be overwritten; "
                                "choose another output")


def _walk(src: Path, dst: Path, recursive: bool, unlisted: list[str], kind: str = "pictures"):
    """(folder, its entries sorted by name) for ``src`` and, if recursive, below it,
    never descending into the output folder nor twice into one folder (a link to a
    folder above it would loop). A folder reached through links is walked under the
    name with the fewest: its own where it is in the tree, not that of a link to it
    that sorts first, whose name the output tree would mirror instead. ``src`` that
    cannot be listed is an InputError; a folder below it is a line in ``unlisted``,
    and the walk goes on without it."""
    walked = {dst.resolve()} - {src.resolve()} if dst.exists() else set()
    order = itertools.count()
    waiting = [(0, next(order), src)]  # links crossed, then breadth first
    while waiting:
        links, _, folder = heapq.heappop(waiting)
        real = folder.resolve()
        if real in walked:
            continue
        walked.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            reason = f"{folder}: cannot list: {e.strerror or e}"
            if folder == src:
                raise InputError(reason) from None
            unlisted.append(f"{reason}: its {kind}, and the folders in it, are left out")
            continue
        yield folder, entries
        if recursive:
            for e in entries:
                if _holds(e.is_dir) and not e.name.startswith("."):
                    heapq.heappush(waiting, (links + e.is_symlink(), next(order), Path(e.path)))


def _left_out(src: Path, names: list[str], kind: str, sniffed: bool) -> str:
    """The note of the files ``names`` (below ``src``) left out as no ``kind`` by their
    names (or, with ``sniffed``, by their first bytes for some). One line for the run:
    they were left out without a word, and a folder of sidecar files (.json, .xmp
    beside each photo, .nfo beside each episode) must not bury the run in lines."""
    count = len(names)
    words = f"not {kind}s by their names" if count > 1 else f"not a {kind} by its name"
    return f"{count} file{'s' if count > 1 else ''} in {src} left out: {words}{' or first bytes' if sniffed else ''} " \
           f"({_first_names(names)})"


def hidden_left_out(names, kind: str) -> str:
    """What to add where a folder run found no ``kind`` (picture, video) but hidden
    files named as one (``names``): it said "no pictures found" alone, the folder's
    .a.png unsaid, where the files named as no picture are counted."""
    if not names:
        return ""
    count = len(names)
    return f"; {count} hidden {kind}{'s' if count > 1 else ''} left out ({_first_names(list(names))})"


def _first_names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _head(path: str) -> bytes:
    """The first bytes of the file at ``path`` that ``picture_format`` and
    ``video_container`` ask; none where it cannot be read. Opened without waiting: a
    FIFO put in a file's place since the folder was listed has no writer to wait for."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return b""
    try:
        return os.read(fd, VIDEO_HEAD)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _unreadable(path: str) -> str | None:
    """Why the file at ``path``, whose ``_head`` was empty, cannot be read; None where
    it can (an empty file) or is gone. Asked only of those: an empty head is rare."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        return None if e.errno == errno.ENOENT else (e.strerror or str(e)).lower()
    try:
        os.read(fd, 1)
    except OSError as e:
        return (e.strerror or str(e)).lower()
    finally:
        os.close(fd)
    return None


def _unread(src: Path, names: list[str]) -> str:
    """The note of the files ``names`` (below ``src``, each "name: why") of no name
    that says what they are, left out as their first bytes could not be read: said
    to be no picture, a picture this user may not read was lost from sight."""
    count = len(names)
    which = "it cannot be read to tell whether it is" if count == 1 else "they cannot be read to tell whether they are"
    return f"{count} file{'s' if count > 1 else ''} in {src} left out: {which} {'a ' if count == 1 else ''}" \
           f"picture{'s' if count > 1 else ''} ({_first_names(names)})"


def _holds(test) -> bool:
    """``entry.is_file`` or ``entry.is_dir``, following links: a broken or looping link
    is neither."""
    try:
        return test()
    except OSError:
        return False


def _leads_nowhere(entry: os.DirEntry) -> bool:
    return entry.is_symlink() and not os.path.exists(entry.path)


def _same_folder(folder: Path, out: Path) -> bool:
    try:
        return out.exists() and os.path.samefile(folder, out)
    except OSError:
        return False


def _one_file_name(name: str) -> str:
    """``name`` as the file systems that tell fewest names apart compare it: case
    ignored (macOS, Windows, exFAT), and an accented letter's two Unicode spellings,
    composed or as a letter and a combining accent, taken as one (macOS); names of
    one file give one string."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


# Their usual file systems (APFS, NTFS) tell no case apart, nor, on macOS, an accent's
# two spellings.
_NAMES_FOLDED = sys.platform in ("darwin", "win32")


def output_key(path: str | os.PathLike) -> str:
    """``path`` as a string the paths of one file share on this system's usual file
    systems (case ignored on macOS and Windows), for outputs of one run to be told
    apart before any is written."""
    whole = os.path.normcase(os.path.abspath(path))
    return _one_file_name(whole) if _NAMES_FOLDED else whole


def _left_out_outputs(folder: Path, names: list[str], suffix: str, notes: list[str],
                      formats: list[str] | None = None) -> list[str]:
    """``names`` less the outputs of an earlier run into the same folder: a_x4.png
    beside a.jpg, for suffix _x4, would otherwise be upscaled again, as would the
    names a stem clash or transparency gave (``_output_names``). That run may have
    written another format (-f jpg, then -f webp): each is looked for, unless
    ``formats`` names those to look for. A name is never left out as its own output
    (a.png, for png, without a suffix)."""
    formats = {output_format(f"x.{fmt}") for fmt in formats or FORMATS}
    outputs_of: dict[str, set[str]] = defaultdict(set)
    for name in names:
        for fmt in formats:
            for output in _output_names(name, suffix, fmt):
                outputs_of[output].add(name)
    kept, outputs = [], []
    for name in names:
        (outputs if outputs_of.get(_one_file_name(name), set()) - {name} else kept).append(name)
    if outputs:
        shown = ", ".join(outputs[:2]) + (", ..." if len(outputs) > 2 else "")
        notes.append(f"{len(outputs)} picture{'s' if len(outputs) > 1 else ''} in {folder} named as the output of "
                     f"another ({shown}) left out, as outputs of an earlier run")
    return kept


# How many times a stem clash's name may end in the format again (_name_outputs).
_RENAMED_AGAIN = 3


def _output_names(name: str, suffix: str, fmt: str) -> set[str]:
    """The names, casefolded, that the picture ``name`` may have been given as an
    output beside it: stem, suffix, format; on a stem clash with its own extension
    too (a_x4.jpg.png), the format repeated where that was taken; and each of those
    as a picture with transparency names it when the format is JPEG (a_x4.jpg.png)."""
    stem, extension = split_name(name)
    renamed = f"{stem}{suffix}{extension}"
    named = [f"{stem}{suffix}.{fmt}"] + [renamed + f".{fmt}" * times for times in range(1, _RENAMED_AGAIN + 1)]
    return {_one_file_name(str(alpha)) for target in named for alpha in (Path(target), alpha_target(Path(target)))}


def _name_outputs(folder: Path, names: list[str], dst: Path, rel: Path, fmt: str, jobs: list[Job], notes: list[str],
                  taken: dict[str, tuple[Path, str]], suffix: str = "", folders: list[str] = (),
                  listed_in: Path | None = None) -> None:
    """Jobs for the pictures ``names`` of ``folder``, listed below ``listed_in``,
    written to ``dst / rel`` as stem, ``suffix``, format. ``taken``: each output path below ``dst`` so far,
    casefolded, with its input and that path (a folder's ending in "/"); the
    sub-folders ``folders``, mirrored there, take their names first."""
    within = rel.as_posix()
    out_folder = dst / rel

    def below(output: str) -> str:  # (rel / output).as_posix(), without making a Path for each
        return output if within == "." else f"{within}/{output}"

    def key(output: str) -> str:
        return _one_file_name(below(output))

    for name in folders:  # x.jpg's x.png beside the mirrored folder x.png: one of them failed
        taken.setdefault(key(name), (folder / name, below(name) + "/"))
    named = []
    for name in names:
        source, (stem, extension) = folder / name, split_name(name)
        wanted = f"{stem}{suffix}.{fmt}"
        clash_name = f"{stem}{suffix}{extension}.{fmt}"
        first = taken.get(key(wanted))
        if first is not None:
            renamed = clash_name
            # Case-sensitively a renamed output is always free; ignoring case, a name
            # sorted earlier ("A.jpg.webp") may hold it.
            while key(renamed) in taken:
                renamed = f"{renamed}.{fmt}"
            notes.append(_clash_note(first, source, below(wanted), renamed))
            wanted, clash_name = renamed, ""
        taken[key(wanted)] = (source, below(wanted))
        named.append((source, wanted, clash_name))
    for source, wanted, clash_name in named:
        # a.png's a.png.png is the output of an input a.png.png where there is one.
        jobs.append(Job(source, out_folder / wanted,
                        clash_name=clash_name if clash_name and key(clash_name) not in taken else "",
                        listed_in=listed_in))


def _with_stem_siblings(jobs: list[Job], dst: Path, fmt: str, suffix: str = "") -> list[Job]:
    """``jobs``, each that took its stem's plain name told where the others of that
    stem go. Names follow the sorted order, so a picture added since the last run
    that sorts first (a.bmp beside a.jpg) takes the plain name (a.png): the file there
    may then be another input's, which --skip-existing must not take for this one's."""
    below: dict[Path, str] = {}  # each output folder below dst, as _name_outputs writes it

    def within(folder: Path) -> str:
        if folder not in below:
            rel = folder.relative_to(dst).as_posix()
            below[folder] = "" if rel == "." else f"{rel}/"
        return below[folder]

    def plain(job: Job) -> str:  # as _name_outputs compares names: below dst, casefolded
        return _one_file_name(f"{within(job.target.parent)}{split_name(job.source.name)[0]}{suffix}.{fmt}")

    keys = [plain(job) for job in jobs]
    groups: dict[str, list[Job]] = defaultdict(list)
    for job, key in zip(jobs, keys):
        groups[key].append(job)
    named = []
    for job, key in zip(jobs, keys):
        group = groups[key]
        if len(group) > 1 and _one_file_name(job.target.relative_to(dst).as_posix()) == key:
            job = replace(job, stem_siblings=tuple(other.target for other in group if other is not job))
        named.append(job)
    return named


def _clash_note(first: tuple[Path, str], source: Path, wanted: str, renamed: str) -> str:
    first_source, first_output = first
    if first_output.endswith("/"):
        return f"{source} would output {wanted}, where the sub-folder {first_source} goes: {source.name} will output " \
               f"{renamed}"
    if first_output == wanted:
        return f"both {first_source} and {source} would output {wanted}: {source.name} will output {renamed}"
    alike = "case is not told apart" if unicodedata.normalize("NFC", first_output) != \
        unicodedata.normalize("NFC", wanted) else "an accented letter's two Unicode spellings are one (macOS)"
    return (f"{first_source} outputs {first_output} and {source} would output {wanted}, the same "
            f"file where {alike}: {source.name} will output {renamed}")


def plan_videos(src: Path, dst: Path, encode, recursive: bool = False, folder: bool = False,
                flags: FlagNames = FlagNames(library=True)) -> list[tuple[Path, Path]]:
    """(input, output) for each video in the folder ``src``, sorted, into the folder
    ``dst`` with the same tree: NAME in the input's container where the encoder that
    ``encode`` picks can be written there, else NAME.mkv (which holds any sound and
    subtitles), or the first of FALLBACK_CONTAINERS that can hold it. InputError for
    such a video where none can, for a folder without videos, an output that is a file,
    and the input folder itself as the output (outputs would overwrite inputs), and
    for an output not there yet named like a video, unless ``folder`` (it was given
    with a trailing separator). A folder without videos says so first: a folder of
    frames into out.mp4 was sent to give an output folder, to be told then that it
    held no videos. An output refused is said alone: the notes of what the folder
    leaves out are logged only once it is taken. ``flags``: as plan_jobs'."""
    if dst.exists() and not dst.is_dir():
        output_refused = f"{src} is a folder but {dst} is a file: give an output folder for its videos"
    elif not dst.exists() and is_video_path(dst) and not folder:
        # As for pictures: a folder named out.mp4 was made without a word.
        output_refused = (f"{src} is a folder but {dst} is named like a video: give an output folder for its "
                          f"videos ({dst}{os.sep} makes a folder of that name)")
    else:
        output_refused = None  # said once the folder is known to hold videos (see above)
    if dst.exists() and os.path.samefile(src, dst):
        raise InputError(f"{dst} is the input folder: the videos would be written over; choose another")
    # The pictures' walk, so that -r follows linked folders alike, each folder once.
    unlisted: list[str] = []
    folders = sorted(_walk(src, dst, recursive, unlisted, "videos"), key=lambda walked: walked[0])
    # Held until the output is taken: 'video -i FOLDER -o out.mp4' printed them, then
    # refused the output, a usage mistake said last among lines of little use to it.
    told = list(unlisted)
    jobs = []
    # Outputs below dst, as one file where case is not told apart, across folders:
    # A/x.mp4 and a/x.mp4 are one file there.
    kept: dict[str, Path] = {}
    fallback = None  # the container of the videos whose own cannot hold the encoder's video
    pictures = 0
    others: list[str] = []  # files below src neither videos nor pictures, said in one note
    subtitles: list[str] = []  # those of them beside a video of their stem
    sniffed = False  # whether one of the others has no extension, and was read
    hidden: list[str] = []  # files named as videos but hidden (.v.mp4), below src
    for folder, entries in folders:
        planned = []
        moved = []  # those made .mkv (or another of FALLBACK_CONTAINERS), with their own's refusal
        rel = folder.relative_to(src)
        within = "" if folder == src else f"{rel}{os.sep}"
        left = []  # this folder's others
        for e in entries:
            path = Path(e.path)
            if path.name.startswith("."):
                if is_video_path(path) and _holds(e.is_file):
                    hidden.append(within + e.name)
                continue  # .DS_Store, our own .part files: left out unsaid
            if not is_video_path(path):
                if not _holds(e.is_file):
                    continue  # a folder; a pipe or a link to nowhere not named as a video
                picture = bool(path.suffix) and is_picture_name(path)
                if not picture and not (path.suffix and says_its_kind(path.suffix)):
                    # A clip whose name says nothing of it (a downloader's without its
                    # extension, Show.S01E01.1080p, a tool's clip.mp4_original): told by
                    # its first bytes, as FFmpeg tells it. Only these are opened to plan:
                    # a folder of 20000 files named by their kinds has no head read.
                    head = _head(e.path)
                    if video_container(head) is not None and not _sound_alone(e.path):
                        moved.append((path, None))  # its container unnamed: written as .mkv
                        continue
                    picture = picture_format(head) is not None
                    sniffed = sniffed or not picture
                if picture:
                    pictures += 1
                else:
                    left.append(e.name)
                continue
            if not path.is_file():
                # Left out without a word, as a picture folder's were: a pipe named
                # a.mp4, a link to a video moved away.
                kind = special_kind(path)
                said = f"{path} is {broken_link(path)}" if path.is_symlink() and not path.exists() else \
                    None if kind is None else f"{path} is {kind}, not a video file"
                if said is not None:
                    told.append(f"{said}: left out")
                continue
            suffix = path.suffix.lower()
            refusal = _container_refusal(suffix, encode)
            if refusal is not None:
                moved.append((path, refusal))
                continue
            name = f"{path.stem}{suffix}"
            first = kept.get(_one_file_name((rel / name).as_posix()))
            if first is not None:  # a.MP4 beside a.mp4, or A.mp4 where case is not told apart
                name = _renamed(path, name, first, f"{path.name}{suffix}", told)
            kept[_one_file_name((rel / name).as_posix())] = path
            planned.append((path, dst / path.parent.relative_to(src) / name))
        # A video made .mkv whose name another output has (c.vob beside c.mkv) takes
        # NAME.EXT.mkv rather than overwrite it; the outputs named as their inputs
        # keep their names whatever the order, so --skip-existing finds them again.
        for path, refusal in moved:
            fallback = fallback or _fallback_container(encode)
            if fallback is None:  # every such video would fail: said before any model loads
                raise _of_file(path, refusal or _container_refusal(FALLBACK_CONTAINERS[0], encode))
            suffix = fallback
            name = f"{split_name(path.name)[0]}{suffix}"
            first = kept.get(_one_file_name((rel / name).as_posix()))
            if first is not None:
                renamed = _moved_clash_name(path, name, lambda other: _one_file_name((rel / other).as_posix()) in kept)
                name = _renamed(path, name, first, renamed, told)
            kept[_one_file_name((rel / name).as_posix())] = path
            planned.append((path, dst / path.parent.relative_to(src) / name))
        # Subtitles in files of their own beside a video (ep1.srt, ep1.en.ass) are not
        # read: its output does not carry them, which a season's folder is to be told.
        stems = {source.stem.casefold() if is_video_path(source) else source.name.casefold()
                 for source, _ in planned}
        for name in left:
            # Each stem the name could have: ep1.en.srt is ep1.en's, or ep1's.
            parts = name.casefold().split(".")
            beside = Path(name).suffix.lower() in SUBTITLE_SUFFIXES and \
                any(".".join(parts[:n]) in stems for n in range(1, len(parts)))
            (subtitles if beside else others).append(within + name)
        jobs += sorted(planned)
    if subtitles:
        count = len(subtitles)
        told.append(f"{count} subtitle file{'s' if count > 1 else ''} in {src} not carried: subtitles in separate "
                    f"files are not read; copy them beside the outputs ({', '.join(subtitles[:3])}"
                    f"{', ...' * (count > 3)})")
    if others:
        told.append(_left_out(src, others, "video", sniffed))
    if pictures:
        # As a folder of pictures names 'ncnn-sr video' for its clips: a GIF among the
        # clips was left out unsaid, and a folder of GIFs was "no videos in it".
        how = f"plan_videos plans videos; plan_jobs({str(src)!r}, out_folder) plans its pictures" if flags.library \
            else f"a video folder run upscales videos; ncnn-sr -i {shell_word(str(src))} -o OUT_FOLDER upscales its pictures"
        told.append(f"{pictures} picture{'s' if pictures > 1 else ''} in {src} left out: {how}")
    if not jobs:
        # Said before it: they tell why a folder of frames, or of GIFs, holds no videos.
        for line in told:
            logging.getLogger("ncnn_sr").warning("%s", line)
        deeper = not recursive and deeper_holds(src, videos=True, dst=dst)  # else -r was named where it finds none
        # The library's caller gave recursive=, a command's user -r.
        deeper_hint = (" (", Option("-r", "recursive=True"), " looks in its sub-folders too)") if deeper else ()
        raise InputError(f"{src}: no videos in it", *deeper_hint, hidden_left_out(hidden, "video"))
    if output_refused is not None:
        raise InputError(output_refused)
    for line in told:
        logging.getLogger("ncnn_sr").warning("%s", line)
    # An output that is a link to an input (out/a.mkv to in/a.mkv) was written over it.
    check_outputs_not_inputs([path for path, _ in jobs], [(target, target) for _, target in jobs])
    return jobs


def _sound_alone(path: str) -> bool:
    """Whether FFmpeg reads the file at ``path`` and finds no moving picture in it:
    sound alone, or with its album art (a .wma, .mka or .m4a saved without its
    extension starts as a .wmv, .mkv or .mp4 does). A file it cannot read is left
    to the run, which says why, as a video named so."""
    try:
        import av  # only for a file whose name says nothing and whose first bytes are a video's
    except ImportError:  # a picture run, which needs no PyAV: counted among the videos, by its first bytes
        return False
    from .video_streams import open_reading  # its tags read as a run reads them
    try:
        with open_reading(ffmpeg_name(path)) as container:
            return all(s.disposition & av.stream.Disposition.attached_pic for s in container.streams.video)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        return False


def video_clash_outputs(jobs: list[tuple[Path, Path]]) -> dict[Path, Path]:
    """For each video of ``jobs`` (plan_videos') that took its plain name, where its
    output goes while another of that name takes it (c.vob.mkv of c.vob, beside
    c.mkv; clip-2.mkv of clip, a video without an extension, beside clip.mkv): a
    finished video there is this one's, from a run when that other was there, and
    the file at the plain name that other's. None for a name another job's output
    has."""
    targets = {_one_file_name(str(target)) for _, target in jobs}
    clashes = {}
    for source, target in jobs:
        if target.suffix == source.suffix.lower():  # in its own container: a.MP4.mp4 beside a.mp4
            clash = target.with_name(f"{source.name}{target.suffix}")
        elif target.name == f"{split_name(source.name)[0]}{target.suffix}":  # made .mkv, at its plain name
            clash = target.with_name(_moved_clash_name(
                source, target.name, lambda other: _one_file_name(str(target.with_name(other))) in targets))
        else:
            continue  # named so already, as another took its plain name
        if clash != target and _one_file_name(str(clash)) not in targets:
            clashes[target] = clash
    return clashes


def _moved_clash_name(path: Path, name: str, taken: Callable[[str], bool]) -> str:
    """The name the video ``path`` made ``name``'s container (.mkv) takes where another
    output has ``name``: NAME.vob.mkv; for a NAME with no extension, NAME-2.mkv (or
    the first number after that whose name is not ``taken``). As plan_videos names
    it and video_clash_outputs finds it again."""
    suffix = Path(name).suffix
    renamed, n = f"{path.name}{suffix}", 1
    while renamed == name or taken(renamed):
        n += 1
        renamed = f"{path.name}-{n}{suffix}"
    return renamed


# Entries looked at, at most, for one -r would take below a folder that held none at
# its top: past them -r is named all the same, as it was of any sub-folder.
DEEPER_LOOKS = 20000


def deeper_holds(folder: Path, videos: bool = False, dst: Path | None = None, past_looks: bool = True) -> bool:
    """Whether a sub-folder of ``folder`` that -r walks (not a hidden one, nor the
    output folder ``dst``), at any depth, holds a picture -r would take (a video with
    ``videos``): named as one and not hidden, or of a name that says nothing, by its
    first bytes. "(-r looks in its sub-folders too)" was said of sub-folders that
    held none, where -r found nothing either. Stops at the first found; ``past_looks``
    past DEEPER_LOOKS entries: True for a hint, a huge tree being more likely to hold
    one than not; False for a warning that says they are there."""
    looked, kind = 0, "videos" if videos else "pictures"
    for below, entries in _walk(folder, dst if dst is not None else folder, True, [], kind):
        if below == folder:
            continue  # its own files: the run that asks found none there
        for e in entries:
            looked += 1
            if looked > DEEPER_LOOKS:
                return past_looks
            if e.name.startswith(".") or not _holds(e.is_file):
                continue
            named = is_video_path(e.name) if videos else is_picture_name(Path(e.name))
            if named:
                return True
            suffix = Path(e.name).suffix
            if is_video_path(e.name) or is_picture_name(Path(e.name)) or (suffix and says_its_kind(suffix)):
                continue  # named as what this run does not take
            head = _head(e.path)
            if (video_container(head) if videos else picture_format(head)) is not None:
                return True
    return False


def video_output_name(src: Path, encode) -> str:
    """The name the video ``src`` takes in an output folder, as a folder's video does
    where no other's output has it: NAME in its own container (lowercase) where the
    encoder that ``encode`` picks can be written there, else in the first of
    FALLBACK_CONTAINERS that can hold it (also where it has no container's extension
    to keep, as a clip a downloader left, or Show.S01E01.1080p); InputError where none
    can."""
    # A suffix that is no container's (.1080p) was kept as the output's, and refused.
    suffix = src.suffix.lower() if is_video_path(src) else ""
    refusal = _container_refusal(suffix or FALLBACK_CONTAINERS[0], encode)
    if refusal is not None or not suffix:
        suffix = _fallback_container(encode)
        if suffix is None:
            raise _of_file(src, refusal)
    return f"{split_name(src.name)[0]}{suffix}"


def _container_refusal(suffix: str, encode) -> InputError | None:
    """Why a file named ``suffix`` cannot hold the video ``encode``'s encoder makes,
    None where it can."""
    from . import video_codecs  # PyAV: only where videos are planned

    try:
        video_codecs.video_encoder(Path(f"x{suffix}"), encode)
    except InputError as e:
        return e
    return None


# Files of subtitles a player reads beside a video of their stem (.idx with its .sub).
SUBTITLE_SUFFIXES = frozenset({".srt", ".ass", ".ssa", ".vtt", ".sub", ".idx", ".sup"})

# Where a folder's video goes whose own container cannot hold the encoder's video:
# Matroska, which holds any sound and subtitles, else the first common one that can
# (.avi for HuffYUV or Ut Video, .mov for QuickTime RLE).
FALLBACK_CONTAINERS = (".mkv", ".mp4", ".mov", ".webm", ".avi")


def _of_file(path: Path, refusal: InputError) -> InputError:
    """``refusal`` of the encoder's container said of the video at ``path``, its type
    and the options it names kept: in an f-string, the command printed the library's
    words (codec='smc') for its own flag."""
    return type(refusal)(f"{path}: ", *refusal.pieces)


def _fallback_container(encode) -> str | None:
    """The suffix of the first of FALLBACK_CONTAINERS that ``encode``'s encoder can be
    written into, None if none."""
    return next((suffix for suffix in FALLBACK_CONTAINERS if _container_refusal(suffix, encode) is None), None)


def _renamed(path: Path, name: str, other: Path, renamed: str, told: list[str]) -> str:
    told.append(f"{path} would output {name}, as {other} does: it will output {renamed}")
    return renamed
