"""What the two commands share: parsing the reference's list flags, building one
lane per device, running the pipeline and videos (their lines and bars are in
console.py), and the exit status. The flags themselves, which the commands read
before this module and the engine load, are flags.py's.

Exit status: 0 when every picture was upscaled or skipped, 1 when any failed, a
folder could not be listed, or the run could not start, 128 + the signal when
interrupted (signals.interrupted_status: 130 on Ctrl-C, 143 on SIGTERM).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import click

from . import devices
from .console import (FrameProgress, Progress, TileBar, echo, echo_stopping, stream_aliases, sub_folder_gone,
                      tile_percent)
from .cut_short import video_fault
from .engine import Upscaler
from .errors import (CpuOutOfMemory, DeviceError, FlagNames, InputError, ModelError, NcnnSrError, NoRoom, command_words,
                     failed_words, host_out_of_memory, os_reason, out_of_memory, shell_word, with_article,
                     write_error_type)
from .fetch_record import file_sha256
from .files import (REMOVED, broken_output, check_folder, check_writable, input_gone, is_fifo, make_folder,
                    mark_there, output_gone, reader_of)
from .flags import REFERENCE_JOBS, RunOptions
from .images import ANIMATED_WEBP, animated_webp, check_picture, frame_count, header_layout, one_size, output_format
from .jobs import (Job, OutputIsInput, Plan, check_reachable, existing_output, deeper_holds, hidden_left_out,
                   plan_jobs, plan_videos, video_clash_outputs, video_output_name)
from .lanes import Lane, UpscalingFailed, ordered_map
from .loading import ANIMATED_FORMATS, sizes_fitting
from .models import ModelSpec, known_scale, lacks_model, resolve_model
from .outcomes import Outcome, Summary, skipped_outcomes
from .path_names import numbered_pictures_hint
from .pipeline import Pipeline
from .resample import target_size
from .repeats import Repeats
from .streams import OutputPipe, VideoOutput, put_back
from .signals import interrupted_status
from .typed_numbers import whole_number
from .video_options import VIDEO_CONTAINERS, is_video_path
from .workers import Cancelled

log = logging.getLogger("ncnn_sr")

EXIT_FAILED = 1


class UsageError(NcnnSrError):
    """A bad flag value; the message is the reference tool's wording where it has one."""


# --- flag values -----------------------------------------------------------------------

def video_instead(source: Path, target: Path, formats: str) -> str:
    """What to do with the picture ``source`` whose output ``target`` is named as a
    video (out.mp4): an animation makes one with ``ncnn-sr video``, written out; a
    still picture is written as one of ``formats``."""
    if animated_webp(source):
        return f"{source} is {ANIMATED_WEBP}: write webp, png or gif"
    if frame_count(source) > 1:
        command = f"ncnn-sr video -i {shell_word(str(source))} -o {shell_word(str(target))}"
        return f"{source}'s frames make a video with: {command}"
    return f"{formats} ('ncnn-sr video' makes videos, of a video or an animated picture)"


def int_list(text: str, error: str, given: str | None = None) -> list[int]:
    """The comma list ``text`` of whole numbers; else the UsageError ``error`` naming
    ``given``, the flag's whole value (``text`` by default)."""
    values = [whole_number(part) for part in text.split(",")]
    if None in values:
        raise UsageError(error.format(shell_word(text if given is None else given)))
    return values


# The reference's wording, the flag and value refused (as -s's and -g's say them: a
# wrapper's user could not tell which of its settings was wrong), then what to give.
BAD_JOBS = "invalid thread count argument: -j {}: give load:proc:save, each at least 1, such as 1:2:2"
BAD_PROCS = "invalid jobs_proc thread count argument: -j {}: give one proc count of at least 1, or one per device: " \
            "1:2,2:2"
BAD_TILE = "invalid tilesize argument: -t {}: tile size must be 0 (auto) or a whole number of at least 32; one per " \
           "device: 0,200"


# -j auto (ncnn-sr's default): the reference's 1:2:2, with more savers where a discrete
# GPU does the upscaling. PNG writing is then what limits a folder: on an H200 with 16
# cores, 100 pictures of 480x360 through realesr-animevideov3-x2 ran at 14.5 pictures
# a second with 2 savers, 0.57 times the engine alone, and at 23.9 with 6, 1.18 times
# (docs/benchmarks.md). Half the cores, at most MAX_AUTO_SAVERS. REFERENCE_JOBS is also
# the drop-in's default.
MAX_AUTO_SAVERS = 8


def parse_jobs(text: str) -> tuple[int, list[int], int]:
    """``load:proc:save`` with ``proc`` a comma list, one per device."""
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(BAD_JOBS.format(shell_word(text)))
    load, save = whole_number(parts[0]), whole_number(parts[2])
    if load is None or save is None or load < 1 or save < 1:
        raise UsageError(BAD_JOBS.format(shell_word(text)))
    procs = int_list(parts[1], BAD_PROCS, text)
    if any(p < 1 for p in procs):
        raise UsageError(BAD_PROCS.format(shell_word(text)))
    return load, procs, save


def per_device(values: list[int], count: int, error: str) -> list[int]:
    """One value per device: a single value serves every device."""
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise UsageError(error)
    return values


def _misfit(said: str, given: int, what: str, auto: bool, count: int) -> str:
    """A list of ``given`` values, one per device, for ``count`` devices: -t 0,200 was
    refused as "...; one per device: 0,200 (only the default device is used)", the
    very list given named as the example."""
    devices_said = "-g auto uses one device" if auto else f"-g gives {count} device{'s' if count > 1 else ''}"
    fix = "list the devices with -g (0,1)" if auto else "one per device"
    return f"{said} gives {given} {what}s, one per device, but {devices_said}: give one {what}, or {fix}"


def build_lanes(opts: RunOptions, pictures: int | None = None,
                frame: tuple[int, int] | Callable[[], tuple[int, int] | None] | None = None,
                items: int | None = None,
                before_devices: Callable[[ModelSpec], None] | None = None) -> tuple[list[Lane], int, int]:
    """One Upscaler per device with its proc workers; also the load and save counts
    (capped at the CPU count, as the reference does). With ``pictures`` known (each
    frame of an animation counts: its frames are shared by the workers), no lane gets
    more proc workers than there are pictures: on the CPU each worker gets a share of
    the cores, so one picture with two workers would use half of them. With ``items``
    known too (the pictures, an animation one), a device no picture would reach
    gets no lane, and its model is not loaded (see _lanes_with_work).
    ``before_devices`` is given the model found, before the devices are looked at.
    With every picture of one size (``frame``, height and width: a video's; or a
    function that finds it, called only where it matters), the CPU gets one worker
    with all the cores where that runs each picture as one window and more workers,
    splitting the memory budget, would tile it."""
    # The model before the devices: a name not found (a typo) was said after the auto
    # device's notice, no longer the one line. Found once for every lane, each of which
    # checked its files' sha256 again (0.08 s for realesrgan-x4plus).
    spec = resolve_model(opts.model, opts.model_path)
    if before_devices is not None:
        before_devices(spec)
    asked = _asked(opts)
    load, save, procs, tiles, chosen = asked.load, asked.save, asked.procs, asked.tiles, asked.chosen
    if items is not None and pictures is not None:
        kept = _lanes_with_work(chosen, items, pictures)
        for name in _left_out(chosen, kept):
            log.info("%s is left out: no picture of this run would reach it", name)
        chosen, tiles, procs = ([values[index] for index in kept] for values in (chosen, tiles, procs))
    # Of the lanes that run only: -g -1,0 with one picture warned of GPU 0 (lavapipe),
    # then left it out.
    for device in dict.fromkeys(chosen):
        if device.is_gpu and device.kind == "cpu":
            # Scripts written for the reference, which has no CPU mode, pass -g 0 by habit:
            # on a machine whose one Vulkan device is lavapipe that ran ten times slower
            # than ncnn's CPU path, without a word.
            log.warning("%s is a software Vulkan device, about ten times slower than the CPU: -g -1 runs on the "
                        "CPU", device)
    cpus = os.cpu_count() or 1
    if asked.auto_jobs and any(device.discrete for device in chosen):
        save = max(save, min(MAX_AUTO_SAVERS, cpus // 2))
    elsewhere = opts.warn_model_elsewhere and opts.model_path is not None and lacks_model(opts.model_path, opts.model)
    lanes = []
    procs = _capped_workers(chosen, procs, cpus, pictures, said=not asked.auto_jobs)
    # The CPU listed twice (-g -1,-1) is one set of cores and one memory: its lanes'
    # workers share them all.
    cpu_workers = sum(workers for device, workers in zip(chosen, procs) if not device.is_gpu)
    # A GPU listed twice (-g 0,0) is one heap: its lanes' windows in flight share it.
    # Each lane keeps a worker, but no more calls run at once than there are pictures:
    # one picture with -g -1,-1 ran on half the cores.
    calls: dict[int, int] = {}
    for device, workers in zip(chosen, procs):
        calls[device.index] = calls.get(device.index, 0) + workers
    if pictures is not None:
        calls = {index: max(1, min(count, pictures)) for index, count in calls.items()}
    for device, tile, workers in zip(chosen, tiles, procs):
        threads = None if device.is_gpu else devices.cpu_threads_per_call(calls[device.index])
        up = _upscaler(opts, spec, device, tile, threads, calls[device.index])
        if frame is not None and not device.is_gpu and tile == 0 and 1 < workers == cpu_workers:
            size = frame() if callable(frame) else frame
            if size is not None and up.runs_whole(*size, calls=1) and not up.runs_whole(*size):
                # 640x480 frames of animevideov3-x2: 1.25 fps in one window on all the
                # cores, against 1.0 fps for two workers on blended tiles. The model is
                # loaded again only then: threads are fixed when it loads.
                log.info("one proc worker on %s with all its cores: %dx%d pictures fit one window for one, "
                         "not for %d", device, size[1], size[0], workers)
                up.close()
                up, workers = _upscaler(opts, spec, device, tile, devices.cpu_threads_per_call(1), 1), 1
        lanes.append(Lane(up, workers))
    if elsewhere:
        spec = lanes[0].upscaler.spec
        log.warning(f"{opts.model_path} has no {spec.name}.param: {spec.name} from {spec.source} runs instead")
    _say_exact_unused(opts, lanes)
    return lanes, min(load, cpus), min(save, cpus)


@dataclass(frozen=True)
class _Asked:
    """-j, -g and -t as a run's flags give them, checked: whether -j is auto, the load
    and save counts, and each device's proc count, tile size and Device (``chosen``,
    empty for -g auto where it was not looked up)."""

    auto_jobs: bool
    load: int
    save: int
    procs: list[int]
    tiles: list[int]
    chosen: list[devices.Device]


def _asked(opts: RunOptions, find_auto: bool = True, look_up: bool = True) -> _Asked:
    """``opts``' -j, -g and -t, or the UsageError of the first that is wrong; each device
    given by index is looked up where ``look_up`` (one that is not there is wrong), the
    auto device only where ``find_auto`` too: its notice (no hardware Vulkan device)
    says where pictures would run."""
    auto_jobs = opts.jobs.strip().lower() == "auto"
    load, procs, save = parse_jobs(REFERENCE_JOBS if auto_jobs else opts.jobs)
    # Every flag is checked before a device is looked at, whose notices (a software
    # Vulkan device passed over) would come before the flag's error.
    auto = opts.gpu.strip().lower() in ("auto", "")
    # "cpu" and "gpu0" (str(Device)'s "GPU 0") as the library and bench take them,
    # also in a list (0,cpu)
    indices = [] if auto else [devices.named_index(part) for part in opts.gpu.split(",")]
    if None in indices:
        raise UsageError(f"invalid gpu device: -g {shell_word(opts.gpu)}: {devices.DEVICE_SPECS}, or several "
                         "devices as 0,1")
    count = 1 if auto else len(indices)
    tiles = int_list(opts.tile, BAD_TILE)
    tiles = per_device(tiles, count, _misfit("invalid tilesize argument: -t", len(tiles), "tile size", auto, count))
    if any(t != 0 and t < devices.MIN_TILE for t in tiles):
        raise UsageError(BAD_TILE.format(shell_word(opts.tile)))
    procs = per_device(procs, count, _misfit("invalid jobs_proc thread count argument: -j", len(procs), "proc count",
                                             auto, count))
    chosen = [devices.get_device("auto")] if auto and find_auto and look_up else []
    for index in indices if look_up else ():
        try:
            chosen.append(devices.get_device(index))
        except NcnnSrError:
            raise UsageError(f"invalid gpu device {index}: {_device_hint()}") from None
    return _Asked(auto_jobs, load, save, procs, tiles, chosen)


def check_run(opts: RunOptions) -> None:
    """The mistakes build_lanes refuses, found without loading a model: a wrong -j, -g
    or -t (UsageError), a model unknown, missing or corrupt (ModelError, resolve_model's).
    For a run with nothing left to do (--skip-existing finding every output), which
    loads none: that took seconds on a GPU for no picture, and -g 0 on lavapipe warned
    of its slowness."""
    _asked(opts, find_auto=False)
    resolve_model(opts.model, opts.model_path)


def _say_exact_unused(opts: RunOptions, lanes: list[Lane]) -> None:
    """A warning where --exact was given for a model that has no stages to run: its
    tiles are blended, as without it."""
    if opts.exact and not any(lane.upscaler.stages for lane in lanes):
        log.warning("--exact ignored: %s does not run in stages (RRDBNet models and a RealPLKSR with GroupNorm "
                    "do): its tiles are blended", lanes[0].upscaler.spec.name)


def _upscaler(opts: RunOptions, spec: ModelSpec, device: devices.Device, tile: int, threads: int | None,
              concurrency: int) -> Upscaler:
    return Upscaler(spec, device=device, tile=tile, tta=opts.tta, tile_pad=opts.tile_pad, overlap=opts.overlap,
                    exact=opts.exact, alpha=opts.alpha, precision=opts.precision, model_path=opts.model_path,
                    threads=threads, concurrency=concurrency, fill_transparent=opts.fill_transparent)


# The reference caps a GPU's proc threads at its compute queue count, which ncnn's Python
# module does not tell; drivers offer 1 to 16.
MAX_GPU_WORKERS = 16


def _capped_workers(chosen: list[devices.Device], procs: list[int], cpus: int,
                    pictures: int | None = None, said: bool = True) -> list[int]:
    """Each lane's proc workers, ``procs`` capped: workers beyond what a device runs at
    once only wait, each holding a picture (a video two frames per worker), and
    starting them is slow: a video took 40 times as long with 1:100000:1 and never
    began with 1:99999999999999999999:1. The CPU gets at most one per core, a GPU at
    most MAX_GPU_WORKERS, however many times it is listed: -g -1,-1 -j 1:2,2:2 ran 4
    workers on 2 cores, each lane capped alone. The lanes of a device share its cap
    out in turn, each keeping one worker. No lane gets more than there are
    ``pictures``. Where -j was ``said``, -v says so."""
    capped = list(procs)
    for device in dict.fromkeys(chosen):
        lanes = [i for i, listed in enumerate(chosen) if listed == device]
        most = max(MAX_GPU_WORKERS if device.is_gpu else cpus, len(lanes))
        asked = sum(procs[i] for i in lanes)
        why = "as many as it runs at once"
        if asked > most:
            for i in lanes:
                capped[i] = 1
            left = most - len(lanes)
            while left:
                for i in lanes:
                    if left and capped[i] < procs[i]:
                        capped[i] += 1
                        left -= 1
        if pictures is not None and any(capped[i] > pictures for i in lanes):
            # Said in the same line: -v said "using 2" of a picture's 4, then ran 1.
            for i in lanes:
                capped[i] = max(1, min(capped[i], pictures))
            why = f"one per picture{'' if pictures == 1 else ' to do'}"
        if said and any(capped[i] != procs[i] for i in lanes):
            using = "+".join(str(capped[i]) for i in lanes)
            log.info("%d proc workers on %s: using %s, %s", asked, device, using, why)
    return capped


def _left_out(chosen: list[devices.Device], kept: list[int]) -> list[str]:
    """The lanes of ``chosen`` not ``kept``, each named as the failure lines name
    it (lanes.lane_names): the device, once, where none of its lanes is kept; else
    which of its lanes ("CPU lane 2"). "GPU 0 is left out" was said of -g 0,0's second
    lane, before the one picture ran on GPU 0."""
    named = []
    for index, device in enumerate(chosen):
        same = [i for i, other in enumerate(chosen) if other == device]
        running = any(i in kept for i in same)
        if index in kept or (not running and index != same[0]):
            continue
        named.append(f"{device} lane {same.index(index) + 1}" if running else str(device))
    return named


def _lanes_with_work(chosen: list[devices.Device], items: int, pictures: int) -> list[int]:
    """The indices, in listed order, of the lanes on ``chosen`` devices that a run of
    ``items`` pictures, ``pictures`` with each frame of an animation counted, can give
    work: one picture with -g 0,-1 loaded the model on both. Each picture goes to one
    lane: with fewer pictures than lanes, those on the likely fastest devices (see
    devices.likely_faster), in listed order among equals; an animation's frames go to
    the other lanes of its device's kind (GPU or CPU) too. At least one lane is kept."""
    # Stable: devices alike keep the order they were listed in. The first listed was
    # kept, whatever it was: -g -1,0 with one picture left a hardware GPU 0 idle.
    ranked = sorted(range(len(chosen)), key=lambda index: devices.likely_faster(chosen[index]))
    kept = ranked[:max(1, min(items, len(chosen)))]
    for index in ranked[len(kept):]:
        if len(kept) < pictures and any(chosen[k].is_gpu == chosen[index].is_gpu for k in kept):
            kept.append(index)
    return sorted(kept)


def _pictures(jobs: list, animate: bool) -> int:
    """How many pictures ``jobs`` upscale, each frame of an animation written whole
    counted, up to the most proc workers a lane may have: more changes nothing."""
    most = max(MAX_GPU_WORKERS, os.cpu_count() or 1)
    count = len(jobs)
    for job in jobs:
        if count >= most:
            break
        if animate and output_format(job.target) in ANIMATED_FORMATS:
            count += frame_count(job.source) - 1
    return count


def _device_hint() -> str:
    return f"this machine has {devices.gpu_range()}; -1 is the CPU"


# --- running ---------------------------------------------------------------------------

def _written_since(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime >= moment
    except OSError:
        return False


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (the run will make it
    and those inside it), or None."""
    missing = None
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing = folder
    return missing


def _written_in(target: Path) -> Path:
    """The folder a file is made in to be renamed as ``target``: that of the file a link
    of its name points to."""
    return Path(os.path.realpath(target)).parent if target.is_symlink() else target.parent


def _remove_empty_folders(root: Path) -> list[Path]:
    """Take back the folders a run made and left empty (every picture failed, or was
    interrupted): no output means nothing left behind. Returns those removed."""
    removed = []
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(folder)
        except OSError:
            continue  # not empty: it holds results
        removed.append(Path(folder))
    return removed


def run_video(prog: str, opts: RunOptions, encode, debug: bool = False, src=None, dst=None,
              flags: FlagNames = FlagNames()) -> int:
    """Upscale one video, or each video in a folder; returns the exit status. One
    video given an output folder goes into it named as a folder's would be. Ctrl-C
    ends the process at once (within a second), leaving no output file. ``src`` and
    ``dst`` (a ``streams.VideoInput`` and ``VideoOutput``) stand for the input and
    output where those are streams. ``flags``: how the command's hints name its options
    (the drop-in has not got ncnn-sr video's)."""
    if src is None and opts.input.is_dir():
        return _run_video_folder(prog, opts, encode, debug, flags)
    if opts.recursive:  # a script's -r over what it took for a folder
        what = "standard input" if src is not None and os.fspath(opts.input) == "-" else opts.input
        log.warning(f"-r ignored: {what} is not a folder")
    from . import video, video_codecs

    to_file = dst is None
    src = opts.input if src is None else src
    dst = opts.output if dst is None else dst
    bar = None
    began = time.time()
    new_folder = None
    working = None  # the output being written, whose work a failed device keeps (video_pieces)
    length = None  # its seconds, where known: for the room a full disk's rerun needs
    made: set[Path] = set()  # the output's folder and those above it, once the run has made or found it
    try:
        if to_file:
            if opts.output_folder or opts.output.is_dir():
                if src is not opts.input:  # a stream's name says nothing to name its output by
                    shown = os.path.join(opts.output, "") if opts.output_folder else opts.output
                    raise InputError(f"{shown} is a folder: give the output video's file name")
                # As a single picture into a folder, and as a folder's videos are named:
                # every check below is then the file's.
                opts = replace(opts, output=opts.output / video_output_name(opts.input, encode),
                               output_folder=False)
                dst = opts.output
            check_reachable(opts.output, file=True)
            if not is_video_path(opts.output):
                what = f"unsupported video container '{opts.output.suffix}' for {opts.output}" if opts.output.suffix \
                    else f"{opts.output} has no extension to say its video container"  # ".mp4" is a name, no suffix
                raise InputError(f"{what}: use {', '.join(VIDEO_CONTAINERS[:-1])} or {VIDEO_CONTAINERS[-1]}")
            if (src is opts.input and opts.output.exists() and opts.input.exists()
                    and os.path.samefile(opts.input, opts.output)):
                raise InputError(f"output {opts.output} is the input: it would be overwritten; choose another output")
            if opts.skip_existing and _finished(opts.output):  # as for a single picture
                check_run(opts)
                if not opts.quiet:
                    echo(f"{prog}: {opts.output} exists: skipped (--skip-existing)")
                return 0
            # Else found as the output opened, once the model had loaded.
            check_folder(_written_in(opts.output))
        encoder = video_codecs.video_encoder(dst, encode, flags)  # a bad --codec or --preset before a model loads
        info = video.probe(src)
        length = _length_out(info, encode)
        _check_encodable(opts, info, src, dst, encoder, encode, flags=flags)  # and frames it cannot code
        # Before the devices' notices and a model load, which would not say it; from the
        # video's own end where its sound runs on past it.
        video.check_start(src, encode, info.duration, info.video_duration, flags)
        lanes, _, _ = build_lanes(opts, frame=(info.height, info.width))
        if to_file:
            new_folder = _first_missing(opts.output.parent)  # taken back if no video comes of the run
        bar = FrameProgress(prog, video.frames_out(info, encode), opts.quiet)
        working = opts.output if to_file else None
        line = _one_video(opts, src, dst, encode, lanes, bar, flags, made=made)
    except KeyboardInterrupt:
        if not to_file:
            stop_interrupted(bar, f"{prog}: interrupted: {dst} got only part of the video")
        # After the finished video was renamed into place, or before.
        whole = _written_since(opts.output, began)
        if not whole and new_folder is not None:
            _remove_empty_folders(new_folder)
        from .video_pieces import kept_words  # what a rerun goes on from

        kept = None if whole else kept_words(opts.output)
        stop_interrupted(bar, f"{prog}: interrupted after {opts.output} was written whole" if whole
                          else f"{prog}: interrupted: {opts.output} is not written yet; {kept}" if kept
                          else f"{prog}: interrupted: no output was written")
    except MemoryError as e:
        if working is None or not _said_out_of_memory(prog, bar, working, e):
            raise  # entry's line
        return EXIT_FAILED
    except (NcnnSrError, OSError) as e:
        if out_of_memory(e):
            raise host_out_of_memory(e) from e  # entry's line: not the file's fault
        if debug:
            raise
        if working is not None and (gone := output_gone(working.parent, made)) is not None:
            # Its write's "No such file or directory" named the video, not why, where a
            # folder's run (and its pictures') says the folder went, and all in it.
            e, working = InputError(gone[0]), None
        full = _kept_on_full_disk(working, e, length) if working is not None else None
        then = f"{full[0]}: once {full[1]}, run the same command again to go on" if full else None
        _say_failed(prog, bar, e, flags, opts, then)
        if working is not None and full is None:
            _say_kept(prog, working, e)
        if new_folder is not None:
            _remove_empty_folders(new_folder)
        return EXIT_FAILED
    if not opts.quiet:
        echo(f"{prog}: {line}")
    return 0


def _check_encodable(opts: RunOptions, info, src, dst, encoder: str, encode, lanes: list[Lane] | None = None,
                     flags: FlagNames = FlagNames()) -> None:
    """Before the model runs on ``src`` (``info``, its probe): the InputError its
    first frame would meet where ``encoder`` cannot code the frames made of it into
    ``dst``, or stamp them at their rate."""
    from . import video, video_codecs

    video_codecs.check_size(info, dst, encoder, encode, _frame_scale(opts, lanes), opts.width, opts.height,
                            lambda: video.sideways(src), flags)
    video.check_rate(info, dst, encoder, encode, flags)


def _frame_scale(opts: RunOptions, lanes: list[Lane] | None = None) -> float | None:
    """The scale a video's frames are upscaled by, where known before its first frame:
    -s's; else the model's own, a catalog model's before it loads, any once loaded
    (``lanes``). None with --width or --height, which set the size."""
    if opts.scale is not None or opts.width is not None or opts.height is not None:
        return opts.scale
    return lanes[0].upscaler.scale if lanes else known_scale(opts.model)


def _naming(e: Exception, src: Path, dst: Path) -> Exception:
    """``e`` naming the video of a folder it is about: a setting's refusal (".mkv
    cannot hold huffyuv video") names none, and its line did not say which failed."""
    if not isinstance(e, NcnnSrError) or any(str(path) in str(e) for path in (src, dst)):
        return e
    return NcnnSrError(f"{src}: ", *e.pieces)


def _length_out(info, encode) -> float | None:
    """The seconds of the video ``info`` describes that ``encode`` writes, where known."""
    return float(encode.part_seconds(info.duration)) if info.duration else None


def _kept_on_full_disk(dst: Path, e: Exception, length: float | None) -> tuple[str, str] | None:
    """Where the run of the video ``dst`` (``length`` seconds, where known) stopped
    as its disk filled (``e``), and video.upscale_video kept its whole pieces for a
    rerun: what is kept, and the room to make for the rerun to go on to the end, in
    words; None where nothing is kept, or ``e`` is another failure."""
    from .video import disk_full
    from .video_pieces import amount, kept_on_full_disk

    kept = kept_on_full_disk(dst, length) if disk_full(e) else None
    if kept is None:
        return None
    words, more = kept
    # The pieces' measure is the picture's alone: its sound and container come on top.
    return words, f"over {amount(more)} more is free on its disk" if more else "more room is free on its disk"


def _say_failed(prog: str, bar: FrameProgress | None, e: Exception, flags: FlagNames = FlagNames(),
                opts: RunOptions | None = None, then: str | None = None) -> None:
    """``e``'s line; given the run's ``opts``, as an error that ended the run
    (said_failed); ``then``, what is kept and how to go on, after it."""
    if bar is not None:
        bar.close()
    # An OSError here is from looking at a path (a name too long, say), which it names;
    # one that names none is said without its "None".
    said = (command_words(e, flags) if isinstance(e, NcnnSrError)
            else f"{e.filename}: {os_reason(e)}" if e.filename else os_reason(e))
    said = said if opts is None else said_failed(opts, said)
    echo(f"{prog}: error: {said}" + (f"; {then}" if then else ""))


def _say_kept(prog: str, dst: Path, e: Exception) -> None:
    """After the run of the video ``dst`` failed with ``e``: what of it is kept, where
    anything is (video.upscale_video keeps the whole pieces where the device failed,
    as for a stop), and how to go on. Where GPUs alone failed, the CPU (-g -1) or
    smaller tiles (-t) go on too: they make the same frames but for rounding
    (_frame_settings). Where the CPU ran out of memory with the smallest tiles, the
    same command on the same host likely runs out at the same place: fewer proc
    workers (-j), fewer frames in work at once, need less, as _said_out_of_memory's."""
    from .video_pieces import kept_words

    gpu = isinstance(e, UpscalingFailed) and all(getattr(d, "is_gpu", False) for d in e.devices)
    kept = kept_words(dst, "run the same command again, or with -g -1 (the CPU) or a smaller -t," if gpu
                      else "run the same command again, or with -j 1:1:1," if isinstance(e, CpuOutOfMemory)
                      else "run the same command again")
    if kept:
        echo(f"{prog}: {dst} is not written yet; {kept}")


def _said_out_of_memory(prog: str, bar: FrameProgress | None, dst: Path, e: MemoryError) -> bool:
    """After the run of the video ``dst`` ran out of the host's memory (a frame that
    could not be allocated): where its whole pieces are kept (video.upscale_video keeps
    them, as for a failed device), entry's line for it said with what is kept and how
    to go on, in one line, with what ran out where ``e`` names it (OutOfMemoryFor's
    words, as entry's line says them). Smaller tiles, or fewer proc workers and so
    fewer frames in work at once, need less; neither changes the frames
    (_frame_settings). False where nothing is kept, for entry's own line."""
    from .video_pieces import kept_words

    kept = kept_words(dst, "run the same command again, or with a smaller -t or -j 1:1:1,")
    if kept is None:
        return False
    if bar is not None:
        bar.close()
    what = getattr(e, "said", "")
    echo(f"{prog}: error: out of memory{what and ': '}{what}; {dst} is not written yet; {kept}")
    return True


def stop_interrupted(bar: FrameProgress | None, message: str) -> None:
    """Say ``message`` and end the process at once: Ctrl-C does not wait for a tile
    in progress."""
    if bar is not None:
        try:
            bar.close()
        except (OSError, ValueError):  # its terminal hung up
            pass
    echo_stopping(message)
    _close_command()
    put_back()  # atexit's, which os._exit skips
    os._exit(interrupted_status())


def _close_command() -> None:
    """What the command made to last its life (standard input's copy, a mixed model's
    folder) goes before os._exit, which skips the context managers and click's close
    callbacks that remove it: each Ctrl-C inside ncnn left a copy of the picture in /tmp."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        try:
            ctx.close()
        except Exception:  # a clean-up that fails does not hold the exit up
            pass
        ctx = ctx.parent


def _one_video(opts: RunOptions, src: Path, dst: Path, encode, lanes: list[Lane], bar: FrameProgress,
               flags: FlagNames = FlagNames(), out: set[int] | None = None, made: set[Path] | None = None) -> str:
    """Upscale ``src`` into ``dst`` through ``lanes``, less those ``out`` for good
    (ordered_map's, shared by a folder's videos), its progress on ``bar`` (closed when
    done); the line that says what was written. ``made`` gets the output's folder once
    it is there (files.mark_there), for a failure to tell it removed after."""
    from . import video

    window = 2 * sum(lane.workers for lane in lanes) + 2
    cancel = threading.Event()

    def check(done: int, total: int) -> None:
        if cancel.is_set():
            raise Cancelled

    def work(upscaler, image):
        return upscaler.upscale(image, scale=opts.scale, width=opts.width, height=opts.height, progress=check)

    # A frame that repeats the one before it is not upscaled again (repeats.py).
    frames = Repeats(lambda decoded: ordered_map(lanes, decoded, work, window=window, cancel=cancel, out=out))
    try:
        if isinstance(dst, Path):  # else a stream
            dst.parent.mkdir(parents=True, exist_ok=True)
            if made is not None:
                mark_there(dst.parent, made)
    except OSError as e:
        # A full disk stops a folder's run, as a write to it does (see cannot_write).
        raise write_error_type(e)(f"cannot make the folder of {dst}: {os_reason(e)}") from None
    start = time.monotonic()
    # A FIFO among the outputs gets the video as it is made, as -o fifo.mp4 does; one
    # that nothing reads fails it at once, where opening it would wait for ever.
    piped = VideoOutput(dst, open(reader_of(dst, dst), "wb")) if isinstance(dst, Path) and is_fifo(dst) else None
    try:
        written = video.upscale_video(src, dst if piped is None else piped, frames, encode, progress=bar,
                                      flags=flags, settings=_frame_settings(opts, lanes[0].upscaler.spec))
    except UpscalingFailed as e:
        raise e.about(src) from e.error  # the line names the video, as a picture's does
    finally:
        if piped is not None:
            piped.close()
    seconds = time.monotonic() - start
    bar.finish()
    reused = f"; {frames.count} repeated the frame before, upscaled once" if frames.count else ""
    rate = bar.made / seconds if seconds > 0 else 0.0  # a clock that ticks every 15 ms (Windows) can read 0
    # The rate is of frames upscaled, which a constant rate (--fps, an .avi, MPEG-2) repeats or drops.
    upscaled = f"{bar.made} upscaled, " if bar.made != written else ""
    if bar.kept:
        upscaled = f"{bar.kept} kept from a stopped run, {bar.made} upscaled, "
    said = f"wrote {dst}: {written} frame{'s' * (written != 1)} in {seconds:.1f} s"
    if written and not bar.done:  # none went through the bar, which counts the kept from the first upscaled
        return f"{said} (all kept from a stopped run)"
    return f"{said} ({upscaled}{rate:.2f} fps{reused})"


def _frame_settings(opts: RunOptions, spec: ModelSpec) -> dict:
    """What makes a video's upscaled frames, for a stopped run's kept work to be taken
    as this run's (video_pieces): not the device or tile size, which change them by
    rounding alone, so that a run whose GPU failed goes on on the CPU or in smaller
    tiles. A GPU's default fp16 is 54-57 dB from the CPU's fp32, at most 2 levels off
    (docs/benchmarks.md; lavapipe 57.4 dB), far under the encoder's own loss (libx264
    at crf 18 in yuv420p: 34.7 dB on the same frames), and one run on both (-g 0,-1),
    or the engine's own fall back to the CPU, joins them alike; tiles change them
    where they blend, a little. The model by its files' bytes: a name says nothing of
    which -m folder it came from, or of weights retrained since under the same name."""
    return {"model": opts.model, "weights": _weights_of(spec), "scale": opts.scale,
            "width": opts.width, "height": opts.height, "tta": opts.tta, "precision": opts.precision,
            "exact": opts.exact, "tile_pad": opts.tile_pad, "overlap": opts.overlap}


def _weights_of(spec: ModelSpec) -> str:
    """The sha256 of the model's .param and .bin ("" where one cannot be read: no kept
    work is then taken up). A 64 MB model takes about 0.1 s, once a video."""
    try:
        return f"{file_sha256(spec.param_path)} {file_sha256(spec.bin_path)}"
    except OSError:
        return ""


def _finished(dst: Path) -> bool:
    """Whether the video ``dst`` is there for --skip-existing to skip: one that is
    empty, cut short or that FFmpeg cannot open (another tool's, or a copy, stopped
    while writing it; a disk that filled) is said and written again, as a picture cut
    short is. This run's own writing never leaves one: a video is written into a hidden
    file and renamed into place once complete. A folder of its name is no video done:
    it was skipped for one, every rerun, where the run refuses it before the upscale."""
    if not dst.exists() or dst.is_dir():
        return False
    fault = video_fault(dst)
    if fault is not None:
        log.warning("%s %s: written again (--skip-existing)", dst, fault)
        return False
    from .video_pieces import amount, remove_if_finished, work_folder
    if (size := remove_if_finished(dst)) is not None:
        log.warning("%s: removed %s (%s) left by a run killed once the video was written", dst,
                    work_folder(dst).name, amount(size))
    return True


def _done_before(jobs: list[tuple[Path, Path]]) -> dict[Path, Path]:
    """Each output of ``jobs`` that --skip-existing finds done, with the file found:
    first where an earlier run wrote it while another video of its name was there
    (c.vob.mkv of c.vob, beside c.mkv), as the names do not move: that other
    removed, c.vob took c.mkv, and was skipped for that other's video."""
    clashes = video_clash_outputs(jobs)
    done = {}
    for _, dst in jobs:
        earlier = clashes.get(dst)
        if earlier is not None and earlier.is_file() and video_fault(earlier) is None:
            done[dst] = earlier
        elif _finished(dst):
            done[dst] = dst
    return done


def _run_video_folder(prog: str, opts: RunOptions, encode, debug: bool, flags: FlagNames = FlagNames()) -> int:
    """Each video in the folder ``opts.input`` (its sub-folders too with
    ``opts.recursive``) into the folder ``opts.output``, the model loaded once (see
    _one_worker_for). A video that fails is one line and the run goes on; the exit
    status is 1 if any failed. A full disk, or a folder it read or wrote videos in
    removed or made read-only, stops the run at the first video it fails, in one line:
    every later one would fail alike; so do the
    devices, once more videos in a row than can be in work at once (one: see
    FAILED_EVERYWHERE) fail on each in service, none done between. A device out for
    good (one that failed a frame another then did) is out for the rest of the
    folder. A sub-folder (-r) removed or renamed during the run is one line instead, its
    videos not yet read not done, and the run goes on with the others, as a folder of
    pictures does (files.input_gone decides for both); an output sub-folder removed
    too, its videos not yet written not done (files.output_gone). Ctrl-C stops at
    once, leaving no partial file."""
    from . import video, video_codecs

    began = command_start(time.monotonic())  # its summary's time is the whole command's, as a folder of pictures'
    done = skipped = failed = 0
    not_done = 0  # the videos of sub-folders gone during the run (-r), as Summary.not_done
    gone_said: set[str] = set()  # those sub-folders, in words: one line each
    failed_names: list[str] = []  # those failed, as _say_failed_names names them
    failed_everywhere = 0  # videos in a row, none done between, failed on every device in service
    out: set[int] = set()  # ordered_map's devices out for good, across the videos
    bar = None
    new_folder = None  # the folders made for the video in work, taken back if it is not done
    pipes: dict[Path, OutputPipe] = {}  # see _RunState.pipes
    jobs: list[tuple[Path, Path]] = []
    read_in: set[Path] = set()  # the folders a video was read in, and those above them (mark_there)
    working = None  # the output being written, whose work a Ctrl-C keeps (video_pieces)
    length = None  # its seconds, where known: for the room a full disk's rerun needs
    written_into: set[Path] = set()  # the folders a video was written in
    try:
        jobs = plan_videos(opts.input, opts.output, encode, opts.recursive, opts.output_folder, FlagNames())
        pipes = {dst: OutputPipe(dst) for _, dst in jobs if is_fifo(dst)}
        done_before = _done_before(jobs) if opts.skip_existing else {}
        if len(done_before) < len(jobs):
            check_folder(opts.output)
        else:
            # No model loads for videos all skipped (build_lanes is called for the first
            # to do); a mistake in the flags or the model is still one.
            check_run(opts)
        lanes = None
        for place, (src, dst) in enumerate(jobs, 1):
            if dst in done_before:
                skipped += 1
                mark_there(dst.parent, written_into)  # removed, it is not made again in silence
                if opts.verbose:  # as a single video says it, which -v's line per file is
                    echo(f"{prog}: {done_before[dst]} exists: skipped (--skip-existing)")
                continue
            new_folder = None
            try:
                if (gone := output_gone(dst.parent, written_into, opts.output)) is not None:
                    # Made again, it said every video done while those before were gone.
                    # A sub-folder's (-r) is its own videos' loss alone (_folder_broken).
                    raise NoRoom(gone[0]) if gone[1] else InputError(gone[0])
                check_reachable(dst, file=True)  # a link to nowhere, as a single video's -o is checked
                info = video.probe(src)
                length = _length_out(info, encode)
                mark_there(src.parent, read_in)
                _check_encodable(opts, info, src, dst, video_codecs.video_encoder(dst, encode, flags), encode, lanes,
                                 flags)
                one = None if lanes is None else _one_worker_for(opts, lanes, (info.height, info.width))
                if one is not None and one != (lanes[0].workers == 1):
                    # As this video alone would run: its frames, not the first's, choose.
                    lanes[0].upscaler.close()
                    lanes = None
                if lanes is None:
                    lanes, _, _ = build_lanes(opts, frame=(info.height, info.width))
                bar = FrameProgress(prog, video.frames_out(info, encode), opts.quiet, f"{place}/{len(jobs)}",
                                    src.relative_to(opts.input).as_posix())
                new_folder = _first_missing(dst.parent)  # taken back if no video comes of the run
                working = dst
                # Marked as made, before any video is written there: removed during the
                # first, it was made again in silence for the others.
                line = _one_video(opts, src, dst, encode, lanes, bar, out=out, made=written_into)
                working = None
            except (ModelError, DeviceError):
                raise  # the model's or the device's: every video would fail alike
            except (NcnnSrError, OSError) as e:
                if out_of_memory(e):
                    # The system's ENOMEM, said as a file's error (a path looked up):
                    # every later video would fail alike. Said as below.
                    raise host_out_of_memory(e) from e
                if debug:
                    raise
                failed_at, working = working, None  # what the device's failure kept of it is said below
                if new_folder is not None:
                    # Taken back by the run itself, they are no folder removed during it:
                    # the next video makes them again.
                    written_into.difference_update(_remove_empty_folders(new_folder))
                # A full disk, or a folder removed or made read-only: every later video
                # would fail alike, a line each.
                full = _kept_on_full_disk(failed_at, e, length) if failed_at is not None else None
                broken = (f"{command_words(e, flags)}; {full[0]}", full[1]) if full else \
                    (command_words(e, flags), "it can be written") if isinstance(e, NoRoom) else \
                    _folder_broken(src, dst, read_in, written_into, flags, opts.input, opts.output)
                if broken is not None and broken[1] is None:
                    # A sub-folder gone: its videos alone are lost, said once (each failed
                    # alone, "file not found", or stopped the run, the others undone).
                    not_done += 1
                    if broken[0] not in gone_said:
                        gone_said.add(broken[0])
                        if bar is not None:
                            bar.close()
                        echo(sub_folder_gone(prog, broken[0], "videos"))
                    continue
                failed += 1
                failed_names.append(_listed_name(src, opts.input))
                left = len(jobs) - done - skipped - failed  # a gone sub-folder's videos too, as for pictures
                if broken is not None:
                    if bar is not None:
                        bar.close()
                    # Not the one the stop's line is about: it is the run's one line.
                    _say_failed_names(prog, failed_names[:-1])
                    _say_stopped(prog, broken[0], done, skipped, failed, left, broken[1])
                    return EXIT_FAILED
                _say_failed(prog, bar, _naming(e, src, dst), flags)
                if failed_at is not None:
                    _say_kept(prog, failed_at, e)
                failed_everywhere += isinstance(e, UpscalingFailed) and e.every_device
                if failed_everywhere > FAILED_EVERYWHERE:
                    # As a folder of pictures stops: every later video would fail on them alike.
                    # Named as a folder of pictures names them, in the lanes' order; not
                    # "devices", which would hide the module from the whole function.
                    named = ", ".join(map(str, dict.fromkeys(lane.upscaler.device for lane in lanes)))
                    _say_failed_names(prog, failed_names)
                    _say_stopped(prog, f"every device failed ({named})", done, skipped, failed, left,
                                 "a device works again")
                    return EXIT_FAILED
                continue
            done += 1
            mark_there(dst.parent, written_into)
            failed_everywhere = 0
            if dst in pipes:
                pipes[dst].reached = True
            if not opts.quiet:
                echo(f"{prog}: {line}")
    except KeyboardInterrupt:
        _end_pipes(pipes)
        if new_folder is not None:
            _remove_empty_folders(new_folder)
        left = len(jobs) - done - skipped - failed  # the one stopped too, as a folder of pictures counts
        from .video_pieces import kept_words  # what a rerun goes on from

        # The same command again upscaled the videos it had written again.
        anew = done and left and not opts.skip_existing
        kept = kept_words(working, f"run {_resumed_by(prog)}" if anew else "run the same command again") \
            if working is not None else None
        if bar is not None:
            bar.close()  # above the names, as the line below them closes it
        _say_failed_names(prog, failed_names)
        then = f"of {working}, {kept}" if kept else "no partial files were left" + (
            f"; {_resumed_by(prog)} goes on from there" if anew else "")
        stop_interrupted(bar, f"{prog}: interrupted: {_videos(done)} upscaled, {skipped} skipped, {failed} "
                              f"failed, {left} not done; {then}")
    except MemoryError as e:
        if working is None or not _said_out_of_memory(prog, bar, working, e):
            raise  # entry's line
        return EXIT_FAILED
    except (NcnnSrError, OSError) as e:
        if out_of_memory(e):
            raise host_out_of_memory(e) from e
        if debug:
            raise
        _say_failed(prog, bar, e, flags, opts)
        if working is not None:  # a DeviceError, which stops the folder
            _say_kept(prog, working, e)
        return EXIT_FAILED
    finally:
        _end_pipes(pipes)
    if not opts.quiet:
        lost = f", {not_done} not done" if not_done else ""  # a sub-folder gone: its line said so
        _say_failed_names(prog, failed_names)
        echo(f"{prog}: {_videos(len(jobs))}: {done} upscaled, {skipped} skipped{_failed(failed, opts)}{lost} in "
             f"{time.monotonic() - began:.1f} s")
    return EXIT_FAILED if failed or not_done else 0


def _folder_broken(src: Path, dst: Path, read_in: set, written_into: set, flags: FlagNames,
                   listed_in: Path, written_below: Path) -> tuple[str, str | None] | None:
    """After the video ``src`` failed to become ``dst``: why no later one can be done,
    where a folder this run read or wrote videos in is gone or read-only now, and what
    mends it, in words; None for what mends it where the folder gone is a sub-folder of
    ``listed_in`` or of ``written_below`` (-r), whose videos alone are lost; else None
    (the failure is the video's)."""
    out = dst.parent
    gone = output_gone(out, written_into, written_below)
    if gone is not None and not gone[1]:
        return gone[0], None
    # The output folder given was found writable as the run started (check_folder),
    # as one a video was written in was: refusing a file now, it was made read-only.
    # Not yet made (no video written), it is no cause: the failure is the video's.
    given = out == written_below and out.is_dir()
    refused = broken_output(out, written_into, out if out in written_into or given else None)
    if refused is not None:
        return command_words(refused, flags), "it can be written"
    gone = input_gone(src.parent, read_in, listed_in)
    return None if gone is None else (gone[0], "it is back" if gone[1] else None)


def _one_worker_for(opts: RunOptions, lanes: list[Lane], frame: tuple[int, int]) -> bool | None:
    """Whether build_lanes gives pictures of ``frame`` (height, width) one CPU worker
    with all the cores (True) or the workers asked (False); None where it has no such
    choice: not one lane, on the CPU (-g -1, or auto finding it), with an automatic
    tile and several workers."""
    if len(lanes) != 1 or lanes[0].upscaler.device.is_gpu:
        return None
    asked = _asked(opts, find_auto=False)
    # -g auto (no device listed) found the lane's device, the CPU here, as it loaded.
    chosen = asked.chosen or [lanes[0].upscaler.device]
    if len(chosen) != 1 or asked.tiles[0] != 0:
        return None
    workers = _capped_workers(chosen, asked.procs, os.cpu_count() or 1, said=False)[0]
    if workers < 2:
        return None
    up = lanes[0].upscaler
    return up.runs_whole(*frame, calls=1) and not up.runs_whole(*frame, calls=workers)


def _end_pipes(pipes: dict[Path, OutputPipe]) -> None:
    """Each FIFO among a folder's outputs that got nothing ended for its reader, which
    waited for ever on an output that failed or was not done."""
    for pipe in pipes.values():
        pipe.close()


# How many videos in a row, none done between, may fail on every device in service
# (a frame of each did, UpscalingFailed.every_device) before a folder stops: more
# say the devices are lost, not the videos. As a folder of pictures allows as many
# pictures as can be in work at once (each may be a bad one), and a folder's videos
# are in work one at a time. (Stopped at the first, a video with a bad frame stopped
# the folder there, run after run.)
FAILED_EVERYWHERE = 1


def _say_stopped(prog: str, reason: str, ok: int, skipped: int, failed: int, left: int, when: str) -> None:
    """The one line of a folder's run that stopped early for ``reason``, which counts
    what it did and says how to go on ``when`` the cause is mended. Where the output
    folder was removed (files.removed_words), what the run wrote went with it: there is
    nothing for --skip-existing to go on from; the same command makes it again."""
    if reason.endswith(REMOVED):
        then = "nothing is left to go on from: the same command starts over"
    else:
        then = f"once {when}, {_resumed_by(prog)} goes on from there"
    echo(f"{prog}: stopped: {reason}; {ok} upscaled, {skipped} skipped, {failed} failed, {left} not done; {then}")


def _resumed_by(prog: str) -> str:
    """The command that goes on with a folder's run of ``prog`` where it stopped."""
    return "the same command with --skip-existing" if prog == "ncnn-sr" else "ncnn-sr with --skip-existing"


def _failed(count: int, opts: RunOptions) -> str:
    """A summary's failures, left out where none failed and stderr is the reference's."""
    return "" if count == 0 and opts.reference_stderr else f", {count} failed"


# A folder's last lines name at most this many of the files that failed, in one line
# a screen shows; the others are counted.
NAMED_FAILURES = 10


def _say_failed_names(prog: str, names: list[str]) -> None:
    """The files of a folder's run that failed, ``names`` in its order, said in one line
    above its last: each had its own error line, which with hundreds of files has
    scrolled away by the end, and a user looked for the ones to redo. The summary (or
    the line of a run stopped or interrupted) stays the last line, as wrappers read it.
    The file whose failure stopped the run is left to the stop's line, which says it.
    Each name is one word as the shell reads it back: a name holding ", " read as two."""
    if not names:
        return
    shown = ", ".join(shell_word(name) for name in names[:NAMED_FAILURES])
    more = f", and {len(names) - NAMED_FAILURES} more" if len(names) > NAMED_FAILURES else ""
    echo(f"{prog}: failed: {shown}{more}")


def _listed_name(path: Path, folder: Path) -> str:
    """``path`` as found in the run's input ``folder`` (sub/b.png), which the user
    gave once: its full path each time made a line of ten names too long to read."""
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _failed_pictures(opts: RunOptions, plan: Plan, summary: Summary) -> list[str]:
    """The pictures of ``summary`` that failed, named in the plan's order (the
    pipeline reports them as they end, which the workers shuffle); not one that
    stopped the run (a full disk), which the stop's one line is about."""
    order = {job: place for place, job in enumerate(plan.jobs)}
    jobs = sorted((outcome.job for outcome in summary.failures if outcome.message != summary.stopped),
                  key=lambda job: order.get(job, len(order)))
    return [_listed_name(job.source, job.listed_in or opts.input) for job in jobs]


def _videos(count: int) -> str:
    return f"{count} video{'' if count == 1 else 's'}"


def _picture_interrupted(prog: str, target: Path, written: bool) -> str:
    """The line of a single picture's run interrupted, as a single video's says it:
    whether its output (``target``'s) was ``written`` whole (a save under way is
    finished first) or not at all. Which of three lines came hung on when the Ctrl-C
    came, one in a folder's words ("0 upscaled, 0 skipped, 0 failed, 1 not done")."""
    # A stream's output is handed to it only once the run has ended well.
    if written and str(target) not in stream_aliases:
        return f"{prog}: interrupted after {existing_output(target) or target} was written whole"
    return f"{prog}: interrupted: no output was written"


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.is_dir() and b.is_dir() and os.path.samefile(a, b)
    except OSError:
        return False


def _scale_suffix(opts: RunOptions) -> str:
    """A --suffix that says the scale the run's outputs come at (_x2, _x1.5), where it
    is known before a model loads; _upscaled where a size or a custom model sets it."""
    scale = _frame_scale(opts)
    return "_upscaled" if scale is None else f"_x{round(scale, 2):g}"


def _run_progress(prog: str, opts: RunOptions, plan: Plan) -> Progress:
    """What tells of each picture of ``plan``'s outcome, the bar of a folder's run."""
    return Progress(prog, len(plan.jobs), opts.verbose, opts.quiet, show=plan.folder_mode,
                    say_failed=opts.reference_stderr)


@dataclass
class _RunState:
    """What a picture run has made so far, for its end to report or close however it
    ends: its plan and summary, its bars, and the output folder it made (taken back
    if left empty)."""

    plan: Plan | None = None
    summary: Summary | None = None
    started: float = 0.0  # the command's start (command_start), for the summary's time
    load_seconds: float | None = None  # the lanes' making: the devices looked up, the model loaded on them
    progress: Progress | None = None
    tiles: TileBar | None = None
    new_folder: Path | None = None
    # FIFOs among a folder's outputs, until their picture is written into them.
    pipes: dict[Path, OutputPipe] = field(default_factory=dict)

    def written(self, outcome: Outcome) -> None:
        if outcome.status == "ok" and outcome.output in self.pipes:
            self.pipes[outcome.output].reached = True

    def close(self) -> None:
        _end_pipes(self.pipes)
        if self.progress is not None:
            self.progress.close()
        if self.tiles is not None:
            self.tiles.close()
        if self.new_folder is not None:  # whatever ended the run: a closed stderr, a dead worker
            _remove_empty_folders(self.new_folder)


def _plan(prog: str, opts: RunOptions, flags: FlagNames) -> Plan:
    """The run's jobs; ``prog`` names the command in hints."""
    try:
        # The notes' flags as typed: the drop-in's -f is its own, and it gives no --suffix or -r.
        plan = plan_jobs(opts.input, opts.output, opts.fmt, opts.recursive, folder=opts.output_folder,
                         suffix=opts.suffix, in_place=opts.in_place_ok, skip_existing=opts.skip_existing,
                         flags=FlagNames())
    except OutputIsInput as e:
        if _same_folder(opts.input, opts.output):
            # Outputs beside their inputs were wanted: the way there was not said.
            raise InputError(f"{e}, or name the outputs apart: {flags(f'--suffix {_scale_suffix(opts)}')}") \
                from None
        raise
    except InputError as e:
        # A name FFmpeg reads as numbered pictures (frames/f%02d.png) is no file here,
        # where their folder is what is taken.
        hint = numbered_pictures_hint(opts.input, "-i takes a file or a folder", prog) \
            if str(e) == f"{opts.input}: file not found" else ""
        if hint:
            raise e.extended(hint) from None
        raise
    return plan


def _say_plan(prog: str, plan: Plan) -> None:
    """``plan``'s notes, as warnings, and each folder it could not list, as an error."""
    for note in plan.notes:
        log.warning(note)
    for line in plan.unlisted:
        echo(f"{prog}: error: {line}")


def _check_plan(opts: RunOptions, plan: Plan, flags: FlagNames) -> None:
    """InputError where ``plan`` holds no picture; a warning where --quality sets
    none of its outputs."""
    if not plan.jobs:
        raise InputError(f"{opts.input}: no pictures found{_deeper(opts, flags)}"
                         f"{hidden_left_out(plan.hidden, 'picture')}")
    if opts.quality is not None and all(output_format(job.target) in ("png", "gif") for job in plan.jobs):
        log.warning("--quality ignored: it sets jpg, webp and avif quality; PNG is lossless, GIF a palette")


def _deeper(opts: RunOptions, flags: FlagNames) -> str:
    """What to add where a folder run found no picture: that -r (``flags``' -r, the
    drop-in having none) looks in the sub-folders, where they hold one it takes."""
    if opts.recursive or not deeper_holds(Path(opts.input), dst=Path(opts.output)):
        return ""
    return f" ({flags('-r')} looks in its sub-folders too)"


def _skip_all(prog: str, opts: RunOptions, skipped: list[Outcome], state: _RunState) -> None:
    """The run of ``state``'s plan where --skip-existing finds every output."""
    # Nothing is written where --skip-existing finds every output: a finished batch
    # run again, into a folder now read-only, was refused. Nor is a model loaded,
    # seconds on a GPU for no picture (-g 0 on lavapipe warned of its slowness);
    # the flags and the model are checked as for a run with work.
    check_run(opts)
    state.progress = _run_progress(prog, opts, state.plan)
    for outcome in skipped:
        state.progress(outcome)
    state.summary = Summary(skipped=len(skipped))


def _say_lanes(opts: RunOptions, lanes: list[Lane]) -> None:
    """Each lane's model, device and workers, and the resampling of its results (-v)."""
    tta = ", TTA (8 runs a tile)" if opts.tta else ""  # else -x was seen to take only in the time it took
    for lane in lanes:
        log.info("%s x%d on %s, %d proc worker(s)%s", lane.upscaler.spec.name, lane.upscaler.scale,
                 lane.upscaler.device, lane.workers, tta)
    native = lanes[0].upscaler.scale
    if opts.scale is not None and opts.scale != native and opts.width is None and opts.height is None:
        log.info("%s is %s: its output is resampled to x%g (Lanczos)", lanes[0].upscaler.spec.name,
                 with_article(f"x{native} model"), opts.scale)


def _on_tile(prog: str, opts: RunOptions, count: int, state: _RunState) -> Callable[[int, int], None] | None:
    """What tells of each tile of the run's ``count`` pictures (a folder's bar, a
    single picture's own, the reference's percent lines), if anything does."""
    plan, progress = state.plan, state.progress
    # A folder's bar on a terminal says more than a tile's line, which would scroll it away.
    on_tile = tile_percent if opts.reference_stderr and progress.bar is None else None
    if progress.bar is not None or progress.plain and on_tile is None:
        on_tile = progress.tile
    elif on_tile is None and not plan.folder_mode and not opts.quiet:
        frames = frame_count(plan.jobs[0].source) if count > 1 else 1  # an animation written whole
        on_tile = state.tiles = TileBar(prog, frames)
    return on_tile


def _upscale_all(prog: str, opts: RunOptions, out_folder: Path, flags: FlagNames, state: _RunState) -> None:
    """The run of ``state``'s plan through a Pipeline, into ``out_folder``."""
    plan = state.plan
    # A single picture too: it was upscaled, minutes of a photo on the CPU, only
    # to fail as it was written.
    check_writable(out_folder if plan.folder_mode else _written_in(plan.jobs[0].target))
    # A folder of pictures of one size (a camera's, a video's frames) is planned as a video's.
    count = _pictures(plan.jobs, opts.animate)
    loading = time.monotonic()
    lanes, load, save = build_lanes(opts, pictures=count,
                                    frame=lambda: one_size([job.source for job in plan.jobs]),
                                    items=len(plan.jobs),
                                    before_devices=None if plan.folder_mode else
                                    lambda spec: _check_picture(opts, plan.jobs[0], spec, flags))
    state.load_seconds = time.monotonic() - loading
    _say_lanes(opts, lanes)
    progress = state.progress = _run_progress(prog, opts, plan)
    on_tile = _on_tile(prog, opts, count, state)

    def on_outcome(outcome: Outcome) -> None:
        state.written(outcome)
        progress(outcome)

    pipeline = Pipeline(lanes, load, save, scale=opts.scale, width=opts.width, height=opts.height,
                        quality=opts.quality, metadata=opts.metadata, skip_existing=opts.skip_existing,
                        on_outcome=on_outcome, keep_opaque_alpha=opts.keep_opaque_alpha,
                        drop_oversized_exif=opts.drop_oversized_exif, animate=opts.animate, on_tile=on_tile,
                        skip_damaged=opts.skip_damaged, flags=flags)
    progress.stopped = lambda: pipeline.stopped
    state.summary = pipeline.run(plan.jobs)


def _check_picture(opts: RunOptions, job: Job, spec: ModelSpec, flags: FlagNames) -> None:
    """The InputError that a run's one picture would fail on as it is read, or as its
    header's size is checked (its output too large for its format), where either is
    known before the devices are looked at and the model loads: the auto device's
    notice (no Vulkan device) came first, two lines for one mistake, after the
    seconds a model takes to load. Its pixels are read only where its end is missing."""
    check_picture(job.source, skip_damaged=opts.skip_damaged)
    resize = (opts.scale, opts.width, opts.height)
    if all(value is None for value in resize):
        if spec.scale is None:  # a custom model, not yet run: its scale is unknown
            return
        resize = (spec.scale, None, None)
    sizes = header_layout(job.source)[0]
    refusal = sizes_fitting(job, sizes, lambda height, width: target_size(height, width, *resize), flags)[1]
    if refusal is not None:
        raise InputError(refusal)


def command_start(fallback: float) -> float:
    """When the command started, as its entry point timed it (entry.command_started),
    else ``fallback`` (a run called in-process, with no entry point)."""
    entry = sys.modules.get(f"{__package__}.entry")  # not imported here: loading it holds the stop signals
    started = None if entry is None else entry.command_started()
    return fallback if started is None else started


def _took(seconds: float, load: float | None, summary: Summary) -> str:
    """A folder's time as its summary says it: the whole run's ``seconds``, which a
    user sets beside the wall time they saw, the model's ``load`` among them said
    apart, and the speed of the upscaling after it."""
    if load is None:  # no model loaded: every output there already (--skip-existing)
        return f"{seconds:.1f} s"
    # No speed of a run that upscaled nothing (all failed).
    rate = f", then {summary.ok / summary.seconds:.2f} pictures/s" if summary.ok and summary.seconds else ""
    return f"{seconds:.1f} s: model load {load:.1f} s{rate}"


def _ended(prog: str, opts: RunOptions, state: _RunState) -> int:
    """Say how a run that was not cut short by an exception ended; its exit status."""
    plan, summary = state.plan, state.summary
    total = len(plan.jobs)
    for left in summary.left_behind:
        log.warning(left)
    failed = _failed_pictures(opts, plan, summary) if plan.folder_mode else []
    if summary.stopped is not None and plan.folder_mode:
        _say_failed_names(prog, failed)
        _say_stopped(prog, summary.stopped, summary.ok, summary.skipped, summary.failed, total - summary.done,
                     "a device works again" if summary.devices_failed else "it is back" if summary.input_gone else
                     "it can be written")
        return EXIT_FAILED
    if summary.cancelled:
        left = total - summary.done
        # How to go on said, as where a full disk stopped the run: the same command
        # again wrote every picture again.
        then = f"; {_resumed_by(prog)} goes on from there" if left else ""
        message = (f"{prog}: interrupted: {summary.ok} upscaled, {summary.skipped} skipped"
                   f"{_failed(summary.failed, opts)}, {left} not done; no partial files were left{then}") \
            if plan.folder_mode else _picture_interrupted(prog, plan.jobs[0].target, summary.ok > 0)
        try:
            _say_failed_names(prog, failed)
        except (OSError, ValueError):
            pass  # see echo_stopping
        if summary.abandoned:
            stop_interrupted(None, message)
        echo_stopping(message)
        return interrupted_status()
    unlisted = len(plan.unlisted)
    if plan.folder_mode and not opts.quiet:
        took = _took(time.monotonic() - state.started, state.load_seconds, summary)
        folders = f", {unlisted} folder{'s' if unlisted > 1 else ''} not listed" if unlisted else ""
        lost = f", {summary.not_done} not done" if summary.not_done else ""  # a sub-folder gone: its line said so
        _say_failed_names(prog, failed)
        echo(f"{prog}: {total} picture{'' if total == 1 else 's'}: {summary.ok} upscaled, {summary.skipped} skipped"
             f"{_failed(summary.failed, opts)}{lost}{folders} in {took}")
    return EXIT_FAILED if summary.failed or summary.not_done or unlisted else 0


def run(prog: str, opts: RunOptions, debug: bool = False, flags: FlagNames = FlagNames()) -> int:
    """Plan, build lanes, run, report; returns the exit status. Hints name options as
    ``flags`` name them."""
    state = _RunState(started=command_start(time.monotonic()))
    try:
        state.plan = plan = _plan(prog, opts, flags)
        # -t, -j and -g as written before the plan's notes, as the reference checks its
        # flags before it lists the folder: a bad -t came after the warnings of the files
        # left out. The devices are looked up later, as there (no Vulkan yet for a picture
        # that is broken).
        _asked(opts, look_up=False)
        if plan.folder_mode:
            state.pipes = {job.target: OutputPipe(job.target) for job in plan.jobs if is_fifo(job.target)}
        _say_plan(prog, plan)
        if plan.jobs and plan.folder_mode and not opts.quiet and not opts.recursive \
                and deeper_holds(Path(opts.input), dst=Path(opts.output), past_looks=False):
            # As a Thumbs.db left out is said: photos/2023/*.jpg were left out unsaid.
            log.warning(f"{opts.input}: the pictures in its sub-folders are left out "
                        f"({flags('-r')} upscales them too)")
        if not plan.jobs and opts.empty_folder_ok and not plan.unlisted:
            # As the reference looks its devices up and loads its model before it finds
            # the folder empty: a typo tried on an empty folder passed, with status 0.
            check_run(opts)
            log.warning(f"{opts.input}: no pictures found{_deeper(opts, flags)}"
                        f"{hidden_left_out(plan.hidden, 'picture')}: nothing to do")
            return 0
        _check_plan(opts, plan, flags)
        # A picture's missing folders are made as a folder's are, and taken back alike.
        out_folder = opts.output if plan.folder_mode else plan.jobs[0].target.parent
        state.new_folder = _first_missing(out_folder)
        if state.new_folder is not None:
            # Made now, before a model loads: where it cannot be (below /proc, a folder
            # of another user's), every picture was upscaled only to fail, a line each.
            make_folder(out_folder)
        skipped = skipped_outcomes(plan.jobs) if opts.skip_existing else None
        if skipped is not None:
            _skip_all(prog, opts, skipped, state)
        else:
            _upscale_all(prog, opts, out_folder, flags, state)
    except KeyboardInterrupt:
        plan, summary = state.plan, state.summary
        if plan.folder_mode if plan is not None else os.path.isdir(opts.input):
            echo_stopping(f"{prog}: interrupted before any picture was written")
        else:
            echo_stopping(_picture_interrupted(prog, opts.output if plan is None else plan.jobs[0].target,
                                      summary is not None and summary.ok > 0))
        return interrupted_status()
    except NcnnSrError as e:
        if out_of_memory(e):
            raise host_out_of_memory(e) from e  # entry's line: not the picture's fault
        if debug:
            raise
        echo(f"{prog}: error: {said_failed(opts, command_words(e, flags))}")
        return EXIT_FAILED
    finally:
        state.close()
    return _ended(prog, opts, state)


def said_failed(opts: RunOptions, words: str) -> str:
    """``words`` of an error that ended the run of ``opts`` before any output, said to
    have failed where stderr is the reference's (``failed_words``)."""
    return failed_words(opts.input, words) if opts.reference_stderr else words
