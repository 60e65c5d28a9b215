"""``realesrgan-ncnn-vulkan``: the reference tool's flags, defaults and file naming,
so existing scripts keep working, with its bugs fixed: any ``-s`` resamples
correctly, ``-g -1`` runs on the CPU, a missing output folder is made, and a failed
picture gives a non-zero exit status."""
from __future__ import annotations

if __name__ == "__main__":  # python -m ncnn_sr.dropin, where the installed command is not on PATH
    # First, as the installed command starts: the entry point holds a stop signal from
    # here on, and runs this module as its command (it exits). The imports below, run
    # first, left a Ctrl-C landing among them a traceback and SIGTERM a silent death.
    from .entry import realesrgan_ncnn_vulkan
    realesrgan_ncnn_vulkan()

import functools
import logging
import math
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from . import models as models_mod
from .choices import MIN_TILE
from .console import name_streams, setup_logging
from .errors import FlagNames, InputError, command_words, failed_words, one_line, shell_word
from .flags import REFERENCE_JOBS, ModelText, OnePathCommand, RunOptions, param_runs_as, path_flag
from .path_names import names_a_folder, picture_named_as_video, video_by_its_output
from .streams import STDIO, DeliveryInterrupted, OutputPipe, Streams, VideoInput, VideoOutput, is_stream
from .typed_numbers import decimal_number, whole_number
from .video_options import EncodeOptions, is_video_input, is_video_path

log = logging.getLogger("ncnn_sr")

PROG = "realesrgan-ncnn-vulkan"
# The reference writes JPEG at quality 100 and WebP lossless, and tiles with 10 px of
# context and no blending: the drop-in promises the reference's output.
REFERENCE_JPEG_QUALITY = 100
REFERENCE_TILE_PAD = 10
PATHS = "a picture or folder path"  # what an empty -i or -o should have been
# The reference's default -m. Missing, or lacking the model, it falls back to the installed
# models, so the classic calls run anywhere; a folder given otherwise must be there.
DEFAULT_MODEL_FOLDER = Path("models")
# The reference's output formats. ncnn-sr also writes gif and avif; the drop-in
# refuses them, as the reference does.
REFERENCE_FORMATS = ("png", "jpg", "jpeg", "webp")
# A hint names ncnn-sr's flags, which the drop-in has not (but for -m, -n and -s).
FLAGS = FlagNames("ncnn-sr")


# Option names as the reference's usage shows them (-j load:proc:save, not -j TEXT).
@click.command(context_settings={"help_option_names": ["-h", "--help"]}, name=PROG, cls=OnePathCommand,
               several=", and give several pictures as their folder",
               # as the reference's getopt does: wrappers give "" for a flag left out, and
               # a flag given twice keeps its last value
               empty_words=True, last_path_wins=True,
               known_as={"--input": "-i", "--output": "-o", "--scale": "-s", "--tile": "-t", "--model-path": "-m",
                         "--model": "-n", "--gpu": "-g", "--jobs": "-j", "--tta": "-x", "--format": "-f",
                         "--verbose": "-v"},  # ncnn-sr's long names, which the reference has not
               options_metavar="-i infile -o outfile [options]...")  # the reference's usage line
@click.option("-i", "input_path", required=True, type=click.Path(readable=False), metavar="input-path",
              help="input image path (jpg/png/webp) or directory, or a video (mp4, mkv...)")
@click.option("-o", "output_path", required=True, type=click.Path(readable=False), metavar="output-path",
              help="output image path (jpg/png/webp) or directory, or a video (out.mp4)")
@click.option("-s", "scale", default="4", show_default=True, metavar="scale",
              help="upscale ratio, any value: realesr-animevideov3 has x2, x3 and x4 files; other "
                   "ratios and models resample the model's output (Lanczos)")
@click.option("-t", "tile", default="0", show_default=True, metavar="tile-size",
              help="tile size (>=32/0=auto) can be 0,0,0 for multi-gpu")
@click.option("-m", "model_path", default=str(DEFAULT_MODEL_FOLDER), show_default=True, type=click.Path(),
              metavar="model-path",
              help="folder path to the pre-trained models (the default falls back to the installed models)")
@click.option("-n", "model", default="realesr-animevideov3", show_default=True, metavar="model-name",
              type=ModelText(),
              help="model name: realesr-animevideov3 | realesrgan-x4plus | realesrgan-x4plus-anime | realesrnet-x4plus "
                   "(fetch it first: ncnn-sr fetch realesrnet-x4plus)")
@click.option("-g", "gpu", default="auto", show_default=True, metavar="gpu-id",
              help="gpu device to use, -1 for the CPU; can be 0,1,2 for multi-gpu")
@click.option("-j", "jobs", default=REFERENCE_JOBS, show_default=True, metavar="load:proc:save",
              help="thread count for load/proc/save, can be 1:2,2,2:2 for multi-gpu")
@click.option("-x", "tta", is_flag=True, help="enable tta mode")
@click.option("-f", "fmt", default=None, metavar="format", help="output image format (jpg/png/webp, default=ext/png)")
@click.option("-v", "verbose", is_flag=True, help="verbose output")
# The reference's getopt reads -help as -h, and prints its usage: here -h took the
# other letters for options too, and "No such option '-e'" named one never typed.
@click.option("-help", "help_word", is_flag=True, hidden=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _, given: _usage(ctx) if given else None)
def main(input_path: str, output_path: str, scale: str, tile: str, model_path: str, model: str,
         gpu: str, jobs: str, tta: bool, fmt: str | None, verbose: bool) -> None:
    """Upscale a picture, each picture of a folder, or a video, with the Real-ESRGAN
    models: the flags, defaults and output names of the C++ realesrgan-ncnn-vulkan."""
    setup_logging(PROG, verbose)
    # A FIFO's reader sees its end however the run ends, the picture written or not.
    pipe = OutputPipe(output_path)
    click.get_current_context().call_on_close(pipe.close)
    output_folder = names_a_folder(output_path)  # "out/": Path() drops the slash
    # Each refusal of a run's paths says it failed, as the run's errors do (failed_words).
    input_path = path_flag(PROG, "-i", input_path, PATHS, folders=True, failed=input_path)
    output_path = pipe.path = path_flag(PROG, "-o", output_path, PATHS, failed=input_path)
    given = input_path  # the input as named, a pipe's too (replaced by the file it is read into)
    # "-" is a file's name here, as for the reference (a file or folder so named is
    # taken): ncnn-sr's standard streams would otherwise be "not found", or a folder "-".
    if str(input_path) == STDIO and not os.path.lexists(STDIO):
        _refuse(failed_words(input_path, "-: no file named - here: the drop-in reads standard input as -i /dev/stdin"))
    if str(output_path) == STDIO and not output_path.is_dir():
        _refuse(failed_words(input_path, "-o -: the drop-in writes files, not standard output: give the output "
                                         "picture's name or a folder"))
    # Path("") is the current folder: an unset variable (-m "$MODELS") ran the installed
    # models unsaid, where the reference looks for /NAME.param and fails, saying so: not
    # the usage an empty -i or -o gets from it, so this one says "failed".
    if not model_path:
        _refuse(failed_words(input_path, "-m is empty: give a model folder"))
    model_path = path_flag(PROG, "-m", model_path, "a model folder", failed=input_path)
    # The reference opens MODELDIR/NAME.param: a name in a sub-folder is the model folder's.
    model_file = models_mod.in_model_folder(model, model_path)
    # The reference fails to open the model's file in such a folder, and says so.
    if model_path != DEFAULT_MODEL_FOLDER and not model_path.exists():
        missing = failed_words(input_path, f"model folder {model_path} does not exist")
        click.echo(one_line(f"{PROG}: error: {missing}"), err=True)
        sys.exit(1)
    if model_path != DEFAULT_MODEL_FOLDER and not model_path.is_dir():
        # Else said to lack the model, as a path through the file (in.png/NAME.param).
        runs = param_runs_as(model_path)
        what = "not a folder" if runs is None else f"a model's file: {runs}"
        _refuse(failed_words(input_path, f"model folder {model_path} is {what}"))
    if model_path == DEFAULT_MODEL_FOLDER and not os.path.lexists(model_path) or \
            click.get_current_context().get_parameter_source("model_path") is ParameterSource.DEFAULT \
            and not model_path.is_dir():
        # No -m given: a file named models where the command runs is no model folder of
        # the user's, as a missing one is not. A missing models folder, given or not, is
        # passed over here: resolve_model, and so the Upscaler, refuses a model_path that is
        # not there.
        model_path = None
    factor = decimal_number(scale)
    if factor is None and (read := atoi_reading(scale, least=1)) is not None:
        factor = float(read)
        _warn_read("-s", scale, str(read))
    if factor is None or not (factor > 0 and math.isfinite(factor)):
        # float() makes 1e400 infinite: the number typed is positive, and too large.
        large = " is too large:" if factor is not None and factor > 0 else ":"
        _refuse(f"invalid scale argument: -s {shell_word(scale)}{large} give a positive number, such as 2, 3 or 4")
    # The reference reads a pipe (-i <(...), /dev/stdin) as it reads any file, and writes
    # into one named as a picture (a FIFO out.png) as into a file; one named otherwise
    # (-o >(...) is /dev/fd/63) it refuses by its extension, as the run does here.
    pipe_out = not output_folder and str(output_path) != STDIO and is_stream(output_path, reading=False) \
        and output_path.suffix.lower().lstrip(".") in REFERENCE_FORMATS
    piped = video_in = None
    if str(input_path) != STDIO and is_stream(input_path, reading=True) and is_video_path(output_path) \
            and not output_folder:
        # A video, as its output's name tells (the pipe's does not): read as it comes.
        try:
            video_in = VideoInput(input_path, dash=False)
        except InputError as e:
            _refuse(failed_words(given, command_words(e, FLAGS)))
    elif str(input_path) != STDIO and is_stream(input_path, reading=True) or pipe_out:
        try:
            piped = Streams(input_path, output_path, None, output_folder, dash=False, pipe_out=pipe_out)
        except InputError as e:
            _refuse(failed_words(given, command_words(e, FLAGS)))
        click.get_current_context().call_on_close(piped.close)  # an interrupt leaves by os._exit, past finally
        name_streams(piped.aliases)
        input_path, output_path = piped.input, piped.output
    # -t "$TILE" with TILE unset: the reference's atoi reads "" as 0 (auto), and so
    # each empty entry of a list ("0," is 0,0).
    empties = ",".join(part if part.strip() else "0" for part in tile.split(","))
    # A number followed by letters (-t 200px) as the reference's atoi reads it, said.
    tile = _read_as_atoi("-t", tile, reference_tiles(empties), empties, zero_is_auto=True)
    gpu = _read_as_atoi("-g", gpu, reference_gpus(gpu))
    jobs = _read_as_atoi("-j", jobs, reference_jobs(jobs, atoi=True), reference_jobs(jobs))
    try:
        name = models_mod.model_name_for(model_file, factor)
        if model_path is not None and model_path != DEFAULT_MODEL_FOLDER and models_mod.lacks_model(model_path, name):
            # The reference opens MODELDIR/NAME.param and fails; the installed model ran
            # in its stead, unsaid, where the folder's was meant.
            param = model_path / f"{name}.param"
            near = models_mod.near_name(param)
            # The folder's file named in another case was meant, not the installed model.
            hint = f": did you mean {near}?" if near is not None else \
                "; leave -m out to run the installed one" if name in models_mod.catalog() else ""
            _refuse(failed_words(input_path, f"model {name}: file {param} not found in the -m folder{hint}"))
        opts = RunOptions(
            input=input_path, output=output_path, output_folder=output_folder,
            model=name, model_path=model_path, gpu=gpu, tile=tile,
            jobs=jobs, tta=tta, fmt=fmt, scale=factor, tile_pad=REFERENCE_TILE_PAD, verbose=verbose,
            keep_opaque_alpha=True,  # the reference's file naming: any RGBA asked as jpg is written as png
            drop_oversized_exif=True,  # the reference writes no metadata, and has no flag to leave it out
            animate=False,  # the reference reads the first frame of an animated picture
            reference_stderr=True,
            empty_folder_ok=True,
            warn_model_elsewhere=False,  # refused above, or its default folder, passed over unsaid
            in_place_ok=True,
        )
        code = _run(opts, video_in, pipe)
        if code == 0 and piped is not None:
            pipe.reached = piped.output.exists()  # else the picture went to NAME.jpg.png, and the pipe is ended
            try:
                piped.deliver()
            except InputError as e:
                _refuse(failed_words(given, command_words(e, FLAGS)))
            except DeliveryInterrupted as e:  # as other runs interrupted say it
                from .batch_cli import stop_interrupted  # loaded by the run
                stop_interrupted(None, f"{PROG}: interrupted: {e.words}")
        sys.exit(code)
    finally:
        if piped is not None:
            piped.close()
        if video_in is not None:
            video_in.close()


@functools.cache
def _ncnn_sr_options() -> dict[str, str]:
    """ncnn-sr's options that the drop-in has not, each with where it is, for the
    drop-in's "No such option" (UsageCommand.elsewhere): -r said nothing more, and the
    sub-folders the reference's users ask for seemed out of reach. Read from ncnn-sr's
    commands only when an unknown option is met, not on every run."""
    from .cli import upscale, video

    where = {}
    for command, name in ((video, "'ncnn-sr video'"), (upscale, "ncnn-sr")):  # where both have one, ncnn-sr
        where.update(dict.fromkeys((n for p in command.params for n in (*p.opts, *p.secondary_opts)), name))
    # ncnn-sr's long names of the drop-in's own options are offered as those (--scale: -s).
    return {option: f"(an option of {name}: the drop-in takes the reference's flags only)"
            for option, name in where.items() if option not in main.known_as}


def _run(opts: RunOptions, video_in: VideoInput | None, pipe: OutputPipe) -> int:
    """Runs the flags ``opts`` as the reference would: only its output formats, and
    JPEGs at its quality; a video into a FIFO (``pipe``) as ncnn-sr video writes one.
    Returns the run's status (exits on a bad flag)."""
    # Here, as the work starts: numpy, ncnn and Pillow load with it, not for --help or a usage error.
    from .batch_cli import run, run_video
    from .images import named_format

    into_folder = opts.output_folder or opts.output.is_dir()
    single = opts.input.is_file() and not into_folder
    # A missing input (or /dev/null) is a file to -f, as for the reference, which reads
    # it to fail: taken for a folder, -f bmp (which a file output ignores) was refused,
    # what is wrong with the input unsaid.
    one_file = not into_folder and not opts.input.is_dir()
    # A video read as it comes (video_in) may be a file too: standard input redirected from one.
    video = video_in is not None or is_video_input(opts.input) and not picture_named_as_video(opts.input, opts.output) \
        or single and video_by_its_output(opts.input, opts.output)
    if single and not video:
        _check_picture_name(opts.input, opts.output)
    fmt = opts.fmt
    if fmt is not None and video:
        # One file, from a pipe too, named by its extension; into a folder, a video too
        # (-o frames/ -f jpg wrote frames/clip.mp4 unsaid, where jpg frames were meant).
        # A file not named as a video is refused by the run: "written as its extension
        # says" went above that error, of a video never written.
        if fmt.strip() and into_folder:
            log.warning("-f %s ignored: the video %s is written into %s as a video", shell_word(fmt), opts.input.name,
                        opts.output)
        elif fmt.strip() and is_video_path(opts.output):
            log.warning("-f %s ignored: %s is written as %s, as its extension says", shell_word(fmt), opts.output,
                        opts.output.suffix[1:].lower())
        fmt = None
    elif fmt is not None and fmt.lower() not in REFERENCE_FORMATS:
        if not one_file:
            also = " (ncnn-sr writes gif and avif)" if fmt.lower() in ("gif", "avif") else ""
            _refuse(f"invalid format argument: -f {shell_word(fmt)}: give png, jpg or webp{also}")
        # The reference takes a file's format from its extension, whatever -f says; an
        # empty -f ("$FMT" unset) asked for nothing, and it says nothing; nor is a
        # missing input's output, never written, said to be written so. Said as the
        # run says a -f of the reference's formats ignored (jobs.plan_jobs): the format
        # named, where the extension names one (an output out of reach may not).
        if fmt.strip() and single:
            written = named_format(opts.output)
            log.warning("-f %s ignored: %s is written as %s", shell_word(fmt), opts.output,
                        "its extension says" if written is None else f"{written}, as its extension says")
        fmt = None
    # A quality would make WebP lossy: it is given only where the outputs are JPEGs
    # (a file takes its own extension, a folder -f's).
    jpeg = (opts.output.suffix if single else f".{fmt or 'png'}").lower() in (".jpg", ".jpeg")
    opts = replace(opts, fmt=fmt, quality=REFERENCE_JPEG_QUALITY if jpeg else None)
    if video:
        video_out = None
        # Named as a video, as a picture's pipe is named as a picture: /dev/stdout and
        # /dev/fd/63 stay refused, which name no container.
        if not into_folder and is_video_path(opts.output) and is_stream(opts.output, reading=False):
            try:
                video_out = VideoOutput(opts.output, dash=False)  # as it is made, as ncnn-sr video -o fifo.mkv
            except InputError as e:
                _refuse(failed_words(opts.input, command_words(e, FLAGS)))
            pipe.reached = True
        try:
            return run_video(PROG, opts, EncodeOptions(), src=video_in, dst=video_out,
                             flags=FlagNames("ncnn-sr video"))
        finally:
            if video_out is not None:
                video_out.close()
    return run(PROG, opts, flags=FLAGS)


def reference_jobs(jobs: str, atoi: bool = False) -> str:
    """``-j`` as the reference reads it, with sscanf("%d:%*[^:]:%d"): a load or save
    count left out or empty ("1:2", "1:2:", ":2:2") is its default. An empty proc
    count stays empty: the reference's atoi reads 0 there, which both refuse. With
    ``atoi``, a count followed by letters is read as its number (atoi_reading): a
    load count so is read before the colon sscanf stops at, which leaves the save
    count at its default ("3x:1:4" is 3:1:2). And more than three parts are read as
    the reference reads them: the save count from the third ("1:2:2:2" is 1:2:2),
    and a proc count from each comma item of all that follows the first colon, by
    atoi, which stops at a colon ("1:2:3:4,5" is 1:2,5:3)."""
    parts = jobs.split(":")
    if len(parts) < 2 or len(parts) > 3 and not atoi:
        return jobs  # no proc list, or more than three parts: refused as it is
    defaults = REFERENCE_JOBS.split(":")
    if len(parts) == 2:
        parts.append("")
    if atoi:
        procs = ",".join(item.split(":")[0] for item in jobs.split(":", 1)[1].split(","))
        saves = parts[2].split(",")[0]  # sscanf's %d stops at a comma: the proc list's parser reads on
        load, save = atoi_reading(parts[0], least=1), atoi_reading(saves, least=1)
        parts = [parts[0] if load is None else str(load), reference_tiles(procs, procs=True),
                 defaults[2] if load is not None else saves if save is None else str(save)]
    for i in (0, 2):
        if not parts[i].strip():
            parts[i] = defaults[i]
    return ":".join(parts)


# What C's atoi reads at the start of a flag's value: spaces, a sign and digits.
_LEADING_WHOLE = re.compile(r"\s*([+-]?[0-9]{1,4000})")


def atoi_reading(text: str, least: int = 0) -> int | None:
    """The number the reference's atoi reads from ``text``, a number followed by
    letters ("2x", "200px", "3 savers"), which the reference reads as that number;
    None for a plain number (read as it is), for no number at the start, and where a
    digit follows ("2.5x", "2_0x", "32.0"): the number typed goes on past what the
    reference reads (2, where 2.5 or 20 was meant), and is refused, as is the 0 it
    reads where no number starts (-s x2 ran it without a model file). None too below
    ``least``: refused as typed, in one line, not read and then refused."""
    found = _LEADING_WHOLE.match(text)
    if found is None or whole_number(text) is not None or any(c.isdigit() for c in text[found.end():]):
        return None
    number = int(found[1])
    return number if number >= least else None


def reference_tiles(tiles: str, procs: bool = False) -> str:
    """A comma list of -t (or with ``procs``, of -j's proc counts) as the reference's
    atoi reads each entry: a number followed by letters as its number, and for -t a
    word that holds no digit ("auto", "abc") as 0, auto, the default, which the
    output does not depend on. A word holding a digit, or a number that is refused
    (a tile under MIN_TILE), is left as typed, to be refused."""
    read = []
    for part in tiles.split(","):
        number = atoi_reading(part, least=1 if procs else 0)
        if number is not None and (procs or number == 0 or number >= MIN_TILE):
            read.append(str(number))
        elif not procs and part.strip() and not any(c.isdigit() for c in part):
            read.append("0")
        else:
            read.append(part)
    return ",".join(read)


def reference_gpus(gpus: str) -> str:
    """A comma list of -g as the reference's atoi reads each device: a number
    followed by letters ("0x") as its number. A word ("abc"), which it reads as GPU
    0, is left to be refused: it names no device, and GPU 0 is not always the one
    -g auto picks; and so is a negative number, which the reference refuses."""
    return ",".join(str(number) if (number := atoi_reading(part)) is not None and number >= 0 else part
                    for part in gpus.split(","))


def _read_as_atoi(flag: str, given: str, read: str, plain: str | None = None, zero_is_auto: bool = False) -> str:
    """``read``, the value of ``flag`` as the reference reads the value ``given``,
    with a warning where it differs from ``plain``, ``given`` as read without atoi's
    leniency (``given`` itself by default). ``zero_is_auto``: a 0 read is said to be
    auto, as -t's is; -g's 0 is a device, GPU 0, which -g auto may not pick."""
    if read != (given if plain is None else plain):
        _warn_read(flag, given, f"{read} (auto)" if zero_is_auto and read == "0" else read)
    return read


def _warn_read(flag: str, given: str, read: str) -> None:
    # As a word to type (-s '2 x'): "-s  +2 times read as 2" left its bounds unseen.
    log.warning("%s %s read as %s, as %s reads it", flag, shell_word(given), read, PROG)


def _check_picture_name(source: Path, output: Path) -> None:
    """Exits with the drop-in's words where the one picture's (``source``'s) ``output``
    names no format the reference writes."""
    from .batch_cli import video_instead
    from .images import nameless, no_extension, only_an_extension

    # ".png" alone (an unset "$NAME.png") is read as the extension it is, and refused.
    alone = not output.suffix and only_an_extension(output)
    suffix = (output.name if alone else output.suffix).lower()
    # ncnn-sr's words would offer gif and avif, which the drop-in refuses. (What is in
    # the way of an output that cannot be reached comes first, in the run's words.)
    if suffix.lstrip(".") in REFERENCE_FORMATS and not alone or not _reachable(output):
        return
    if alone and suffix.lstrip(".") in REFERENCE_FORMATS:
        problem = nameless(output)
    elif not suffix:
        problem = no_extension(output, ".png, .jpg or .webp")
    elif is_video_path(output) and source.is_file():
        instead = video_instead(source, output, "use png, jpg or webp")
        problem = f"unsupported output format '{suffix}' for {output}: {instead}"
    else:
        also = " (ncnn-sr writes gif and avif)" if suffix in (".gif", ".avif") else ""
        problem = f"unsupported output format '{suffix}' for {output}: use png, jpg or webp{also}"
    click.echo(one_line(f"{PROG}: error: {failed_words(source, problem)}"), err=True)
    sys.exit(1)


def _usage(ctx: click.Context) -> None:
    """Prints the help, as -h does, and exits 0."""
    if not ctx.resilient_parsing:  # shell completion reads the flags without running them
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _refuse(message: str) -> None:
    """The reference's words for a bad flag value, then the value and what to give;
    exit status 1. Logged, so a value holding a line break stays on one line."""
    log.error(message)
    sys.exit(1)


def _reachable(output: Path) -> bool:
    """Whether a picture could be written at ``output`` but for its name."""
    from .jobs import check_reachable

    try:
        check_reachable(output, file=True)
    except (InputError, OSError):
        return False
    return True


main.elsewhere = _ncnn_sr_options
