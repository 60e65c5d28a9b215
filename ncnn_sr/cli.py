"""The ``ncnn-sr`` command: a thin layer over the library.

``ncnn-sr -i IN -o OUT`` upscales a picture or a folder of pictures;
``ncnn-sr models`` and ``ncnn-sr devices`` list what is there; ``ncnn-sr bench``
measures speed and memory on this machine; ``ncnn-sr convert`` turns PyTorch weights
into a model the others take; ``ncnn-sr fetch`` downloads the catalog's other models.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import urllib.parse
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import click
from click.core import ParameterSource

from . import __version__, fetch_record, models as models_mod
from .choices import ALPHA_MODES, MAX_CONTEXT, MAX_SIDE, MIN_TILE, PRECISIONS
from .console import bar_fits, name_streams, setup_logging
from .entry import output_is_a_listing
from .errors import (FlagNames, InputError, ModelError, ModelMissing, NcnnSrError, command_words, one_line, shell_word,
                     shown_repr, with_article)
from .files import check_folder, folder_made, same_file
from .flags import HomePath, ModelFolder, ModelText, OnePathCommand, RunOptions, UsageCommand, gpu_flag, path_flag
from .path_names import (is_picture_suffix, names_a_folder, picture_named_as_video, picture_under_video_name,
                         suffix_fault, video_by_its_output)
from .signals import HeldInterrupts, ctrl_c_signals
from .streams import DeliveryInterrupted, OutputPipe, Streams, VideoInput, VideoOutput, is_stream, shown
from .typed_numbers import decimal_number, ratio, whole_number
from .video_options import DEINTERLACE_MODES, EncodeOptions, is_video_input, is_video_path, parse_time

PROG = "ncnn-sr"
DEFAULT_MODEL = "realesrgan-x4plus"


def _input_of(args: list[str], short: str = "-i", long: str = "--input") -> str | None:
    """The -i value (or another flag's) in click's forms: ``-i X``, ``--input X``,
    ``--input=X``, ``-iX`` (where click keeps an "=": ``-i=X`` is the path ``=X``)."""
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{long}="):
            return arg.split("=", 1)[1]
        if arg.startswith(short) and len(arg) > 2:
            return arg[2:]
    return None


class _DefaultToUpscale(click.Group):
    """``ncnn-sr -i a -o b`` means ``ncnn-sr upscale -i a -o b``, or ``ncnn-sr video
    -i a -o b`` when ``a`` is a video file, or a stream and ``b`` named as a video."""

    command_class = UsageCommand  # the commands without a class of their own

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Only options go on to upscale: a mistyped command ("vidoe") is said to be one,
        # rather than an extra argument of upscale.
        own = ("--help", "-h", "--version")  # the group's options
        # A help flag before a call's options (ncnn-sr -h -i photo.png) asks for that
        # command's help: the group read -i as its own, and had none.
        helped = args[:1] in (["--help"], ["-h"]) and any(a.startswith("-") and a not in own for a in args[1:])
        if args and args[0].startswith("-") and (args[0] not in own or helped):
            source, target = _input_of(args), _input_of(args, "-o", "--output")
            # A stream's kind is not in its name: a video's output name tells (-i - -o out.mkv).
            video = source and not picture_named_as_video(source, target) and (
                is_video_input(source) or (is_stream(source, reading=True) and target and is_video_path(target))
                or video_by_its_output(source, target))
            args = ["video" if video else "upscale", *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # "ncnn-sr in.png out.png" was "No such command 'in.png'", with no word of -i/-o.
        word = args[0] if args else ""
        if word and self.get_command(ctx, word) is None and _names_a_file(word):
            # An -o given beside the bare input is the output meant: OUTPUT in its place
            # asked the user to retype what they had given.
            output = (args[1] if len(args) > 1 and not args[1].startswith("-")
                      else _input_of(args[1:], "-o", "--output") or "OUTPUT")
            raise click.UsageError(f"No such command {shown_repr(word)}: to upscale it, use -i/-o: "
                                   f"{ctx.command_path} -i {shell_word(word)} -o {shell_word(output)}", ctx)
        return super().resolve_command(ctx, args)


def _names_a_file(word: str) -> bool:
    """Whether ``word`` is a file or folder there is, or named like a picture or video."""
    return os.path.exists(word) or is_picture_suffix(Path(word).suffix) or is_video_path(word)


@click.group(cls=_DefaultToUpscale, context_settings={"help_option_names": ["-h", "--help"]})
# The version is the package's own, not looked up among the installed distributions:
# that loaded importlib.metadata and searched them at each --version, and failed with
# a traceback where none is installed (a checkout run as python -m ncnn_sr).
@click.version_option(__version__)
def main() -> None:
    """Upscale pictures with Real-ESRGAN models on any Vulkan GPU, or on the CPU.

    Run `ncnn-sr upscale --help` for the options; `ncnn-sr -i IN -o OUT` is short
    for `ncnn-sr upscale -i IN -o OUT`, or for `ncnn-sr video -i IN -o OUT` where
    IN is a video.
    """


class _Typed:
    """Click reads numbers with int() and float(), which take "2_0" as 20 and other
    scripts' digits: a typo ran at another scale or size, unsaid. ``taken`` says in
    words which numbers are taken, where the range alone does not."""

    def __init__(self, *args, taken: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.taken = taken

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            number = self.read(value)
            if number is None:
                self.fail(f"{value!r} is not {self.what}", param, ctx)
            # float() makes 1e400 infinite and 1e-400 zero: said as what the user typed,
            # they were "inf is not in the range" or, for -s, "must be a positive number".
            if isinstance(number, float) and not math.isfinite(number):
                self.fail(f"{value!r} is too large: {self.accepted()}", param, ctx)
            if number == 0 and any(c in "123456789" for c in value.strip().lower().partition("e")[0]) \
                    and (self.min is None or self.min > 0 or self.min_open):
                self.fail(f"{value!r} is too small: {self.accepted()}", param, ctx)
        return super().convert(value, param, ctx)

    def accepted(self) -> str:
        """The numbers taken, in words."""
        bounds = self._describe_range()
        return self.taken or (f"give {self.what} in {bounds}" if bounds else f"give a finite {self.what[2:]}")

    def _describe_range(self) -> str:
        # Click describes a range without bounds (-s takes any positive factor, checked
        # by its callback) as "x<=None" in --help.
        return "" if self.min is None and self.max is None else super()._describe_range()


class WholeNumber(_Typed, click.IntRange):
    read, what = staticmethod(whole_number), "a whole number"


class DecimalNumber(_Typed, click.FloatRange):
    read, what = staticmethod(decimal_number), "a number"

_SCALES = f"a positive number, such as 2, 3.5 or 0.5 (the output is at most {MAX_SIDE} pixels a side)"


def _positive(ctx, param, value):
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise click.BadParameter(f"must be {_SCALES}")
    return value


MAX_FPS = 1000
MIN_FPS = Fraction(1, 100)


def _fps(ctx, param, value):
    if value is None:
        return None
    fps = ratio(value)
    if fps is None:
        raise click.BadParameter("give a rate such as 30, 29.97 or 24000/1001")
    if fps <= 0:
        raise click.BadParameter("must be positive")
    if fps > MAX_FPS:  # a typo such as 1e9 would otherwise write frames for hours
        raise click.BadParameter(f"at most {MAX_FPS} frames per second")
    if fps < MIN_FPS:  # fewer would leave a short clip without a single frame
        raise click.BadParameter(f"at least {MIN_FPS} frames per second")
    return fps


def _suffix(ctx, param, value: str) -> str:
    fault = suffix_fault(value)
    if fault:
        raise click.BadParameter(fault)
    return value


def _time(ctx, param, value):
    if value is None:
        return None
    try:
        seconds = parse_time(value)
    except ValueError as e:
        raise click.BadParameter(command_words(e)) from None
    if param.name in ("duration", "end") and seconds == 0:
        raise click.BadParameter("must be more than 0")
    return seconds


# Video bitrates, in bits per second: below the lowest, encoders fail on opening with
# FFmpeg's "Generic error in an external library" (libx264 at 1), and a number that
# small most likely meant kbit/s; above the highest, a typo.
MIN_BITRATE, MAX_BITRATE = 1000, 10**10
_BITRATE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def _bitrate(ctx, param, value):
    if value is None:
        return None
    text = value.strip().lower()
    unit = text[-1:] if text[-1:] in _BITRATE_UNITS else ""
    number = ratio(text[:len(text) - len(unit)])
    if number is None:
        raise click.BadParameter(f"give bits per second, such as 8000000, 8M or 2500k, not {value!r}")
    rate = number * _BITRATE_UNITS[unit]
    if not MIN_BITRATE <= rate <= MAX_BITRATE:
        # Past a float's range (1e400) float(rate) raised OverflowError: a traceback.
        said = f"{float(rate):g}" if rate < MAX_BITRATE else f"more than {MAX_BITRATE:.0e}"
        raise click.BadParameter(f"{value} is {said} bits per second: give {MIN_BITRATE} to {MAX_BITRATE:.0e} "
                                 "(such as 8M or 2500k)")
    return int(rate)


# The models that --exact stages, named in --help and by `devices`.
_STAGED_MODELS = "RRDBNet models (realesrgan-x4plus, -x4plus-anime, -x2plus, realesrnet-x4plus)"

# Options both commands take, in the order --help lists them after -i, -o and -n.
_SHARED_OPTIONS = [
    click.option("-s", "--scale", type=DecimalNumber(taken=f"give {_SCALES}"), default=None, callback=_positive,
                 help="Output scale (any factor; default: the model's); with --width/--height it only "
                      "picks the model variant (realesr-animevideov3 -s 2: the x2 file)."),
    click.option("--width", type=WholeNumber(min=1), default=None, help="Output width (keeps the aspect ratio alone)."),
    click.option("--height", type=WholeNumber(min=1), default=None,
                 help="Output height (keeps the aspect ratio alone)."),
    click.option("-t", "--tile", default="0", show_default=True, help="Tile size, >=32 or 0 = auto; one per device: 0,200."),
    click.option("--tile-pad", type=WholeNumber(min=0, max=MAX_CONTEXT), default=None,
                 help="Context pixels around each tile (default 10); alone, it selects the reference tiling (no "
                      "blending)."),
    click.option("--overlap", type=WholeNumber(min=0, max=MAX_CONTEXT), default=None,
                 help="Pixels neighbouring tiles share and blend (default 15; 0: the reference tiling). "
                      f"{_STAGED_MODELS} tile exactly instead while memory allows."),
    click.option("--exact/--blend", "exact", default=None,
                 help=f"Tile {_STAGED_MODELS} exactly (the whole picture's output) or blend. Default: exact "
                      "while memory allows (the CPU and integrated GPUs run the trunk in stages; a discrete GPU "
                      "runs it whole, or blends where it does not fit, and stages only with --exact); a "
                      "RealPLKSR with GroupNorm is exact on every device unless --blend."),
    "gpu",  # each command's own: see _GPU_HELP
    "jobs",  # each command's own: see _JOBS_HELP
    click.option("-m", "--model-path", type=ModelFolder(), default=None,
                 help="Folder to look for models in first."),
    click.option("-dn", "--denoise", type=DecimalNumber(0, 1), default=None,
                 help="With -n realesr-general-x4v3 (ncnn-sr fetch it and realesr-general-wdn-x4v3): how "
                      "strongly to denoise, 0 to 1, as Real-ESRGAN's -dn: its share of the mix with "
                      "realesr-general-wdn-x4v3. Without it, the model alone (1)."),
    click.option("-x", "--tta", is_flag=True, help="Test-time augmentation: average the 8 flips/rotations (8x slower)."),
    click.option("--fp32", is_flag=True, help="Full float32 precision (slower on GPUs); same as --precision fp32."),
    click.option("--precision", type=click.Choice(PRECISIONS), default="default", show_default=True,
                 help="Number format inside the network: bf16 (CPU only) was 9-15% faster, 54 dB from fp32, on CPUs "
                      "with avx512_bf16 and on one with AVX2 alone."),
    click.option("-v", "--verbose", is_flag=True, help="A line per file, and what is being done."),
    click.option("-q", "--quiet", is_flag=True, help="Errors only."),
    click.option("--debug", is_flag=True, help="Show a traceback on errors."),
]


# A video's decoding and encoding run in threads of their own whatever -j says (FFmpeg's
# among them): of load:proc:save, video takes the proc workers alone.
_JOBS_HELP = {
    "upscale": "Threads load:proc:save; proc one per device: 1:2,2:2. auto: 1:2:2, with up to 8 savers (half "
               "the cores) when a discrete GPU upscales, as writing PNGs then limits a run.",
    "video": "Threads load:proc:save, of which only proc counts (decoding and encoding take threads of "
             "their own); proc one per device: 1:2,2:2. auto: 1:2:2.",
}


# Only pictures leave out the devices none of them would reach: every device listed
# loads the model for a video, whose frames go to whichever is free.
_GPU = "Vulkan device index (0, gpu0), -1 or cpu for the CPU; several: 0,1 or 0,-1"
_GPU_HELP = {
    "upscale": f"{_GPU}. With fewer pictures than devices, a hardware GPU is used first, then the CPU, then a "
               "software Vulkan device (lavapipe), each kind in the order listed.",
    "video": f"{_GPU}, which share the frames.",
}


def _gpu(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return value if ctx.resilient_parsing else gpu_flag(PROG, value)  # completion exits on nothing


def _shared_options(command):
    for option in reversed(_SHARED_OPTIONS):
        if option == "jobs":
            option = click.option("-j", "--jobs", default="auto", show_default=True, help=_JOBS_HELP[command.__name__])
        elif option == "gpu":
            option = click.option("-g", "--gpu", default="auto", show_default=True, callback=_gpu,
                                  help=_GPU_HELP[command.__name__])
        command = option(command)
    return command


def _run_options(input_path: str, output_path: str, model: str, fp32: bool, precision: str, what: str,
                 **rest) -> RunOptions:
    """RunOptions from the shared and command-specific flags; also sets up logging.
    ``what`` is what an empty -i or -o should have been."""
    if rest["verbose"] and rest["quiet"]:  # one would silently win over the other
        raise click.UsageError("-v/--verbose and -q/--quiet contradict each other: give one")
    setup_logging(PROG, rest["verbose"], rest["quiet"])
    inputs = path_flag(PROG, "-i", input_path, what, folders=True)
    output = path_flag(PROG, "-o", output_path, what)
    if fp32 and precision not in ("default", "fp32"):
        raise click.BadParameter(f"--fp32 contradicts --precision {precision}", param_hint="'--precision'")
    if rest["exact"] and rest["overlap"] == 0:
        raise click.UsageError("--exact contradicts --overlap 0, the reference tiling: give one")
    if rest["exact"] and rest["tile_pad"] is not None and rest["overlap"] is None:
        raise click.UsageError(f"--exact contradicts --tile-pad {rest['tile_pad']} alone, which selects the reference "
                               "tiling: give one (or --overlap N beside --tile-pad)")
    asked = model
    if rest["model_path"] is not None:  # -m root -n sub/x is root/sub/x, as for the drop-in
        model = models_mod.in_model_folder(model, rest["model_path"])
    name = models_mod.model_name_for(model, rest["scale"])
    sized = [flag for flag in ("width", "height") if rest[flag] is not None]
    if sized and rest["scale"] is not None and models_mod.known_scale(name) != rest["scale"] \
            and models_mod.findable(name, rest["model_path"]):
        # Dropped without a word, the output had the size's size and not the scale's. A
        # scale the model runs at (a variant -s picked, or the model's own) is no loss.
        logging.getLogger("ncnn_sr").warning(
            f"-s {rest['scale']:g} is ignored: {' and '.join('--' + flag for flag in sized)} "
            f"set{'s' if len(sized) == 1 else ''} the output size, and {asked} has no x{rest['scale']:g} variant "
            "for -s to pick")
    denoise = rest.pop("denoise")
    if denoise is not None:
        name = _denoised(name, denoise, rest["model_path"])
    if rest["width"] is not None or rest["height"] is not None:
        rest["scale"] = None  # the size is given: -s only picked the model variant
    return RunOptions(input=inputs, output=output, output_folder=names_a_folder(output_path), model=name,
                      precision="fp32" if fp32 else precision, **rest)


_DENOISE_PREFIX = "ncnn-sr-denoise-"  # a -dn mix's temporary model folder, and mkdtemp's characters


def _remove_folder(folder: Path, lock: int | None) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if lock is not None:
        os.close(lock)  # the lock last: a folder half removed is still a live run's


def _denoised(name: str, strength: float, model_path: Path | None) -> models_mod.ModelSpec:
    """realesr-general-x4v3 mixed with its weak-denoise training at ``strength``, as a
    model in a temporary folder that lasts as long as the command."""
    from . import mixing, part_files

    general, weak = mixing.DENOISE_MODELS
    if name != general:
        raise click.BadParameter(f"it mixes {general} with {weak}: give -n {general}, not {name}",
                                 param_hint="'-dn' / '--denoise'")
    try:
        # Gone as the command ends, however it ends: an interrupt leaves by os._exit, past atexit, closing
        # the command's context first (batch_cli.stop_interrupted). A Ctrl-C landing in mkdtemp once it
        # had made the folder, or before its removal was set, left it behind: it waits until then.
        with HeldInterrupts(ctrl_c_signals()):
            folder, lock = part_files.temporary_folder(_DENOISE_PREFIX)
            click.get_current_context().call_on_close(lambda: _remove_folder(folder, lock))
        # Those of runs killed outright (SIGKILL) as their model was mixed or ran: each stayed for good.
        part_files.sweep_folders_once(folder.parent, _DENOISE_PREFIX)
        spec = mixing.denoised_model(strength, folder, model_path)
        # As -m without the named model warns (build_lanes): a mix is no name it can look up.
        used = (general,) if strength == 1 else (general, weak)
        for model in used:
            if model_path is not None and models_mod.lacks_model(model_path, model):
                source = models_mod.resolve_model(model, model_path).source
                how = "runs" if strength == 1 else "is mixed in"
                logging.getLogger("ncnn_sr").warning(f"{model_path} has no {model}.param: {model} from {source} "
                                                     f"{how} instead")
        return spec
    except NcnnSrError as e:
        _fail(command_words(e))


@main.command(cls=OnePathCommand, several=", and give several pictures as their folder")
# -i and -o stay text: Path() would take "" for the current folder and drop the slash
# of "out/", which says a folder is meant. Not readable: refused there, a file the user
# cannot read was a usage error (status 2), where reading it says so in one line.
@click.option("-i", "--input", "input_path", required=True, type=click.Path(readable=False),
              help="Input picture or folder; - reads standard input.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(readable=False),
              help="Output picture (png, jpg, webp, gif, avif) or folder (made if missing; out/ is always a folder); "
                   "- writes standard output.")
@click.option("-n", "--model", default=DEFAULT_MODEL, show_default=True, type=ModelText(),
              help="Model name (NAME of a NAME.param in the -m folder too, sub/NAME in its sub-folder), a family "
                   "such as realesr-animevideov3, or a .param path.")
@_shared_options
@click.option("-f", "--format", "fmt", type=click.Choice(["png", "jpg", "jpeg", "webp", "gif", "avif"], case_sensitive=False),
              default=None, help="Output format in folder mode and for -o - (default png; a file takes its extension's).")
@click.option("--quality", type=WholeNumber(1, 100), default=None,
              help="jpg/webp/avif quality (default: jpg 95, avif 90; webp lossless without it).")
@click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders too; their tree is mirrored in the output.")
@click.option("--skip-existing", is_flag=True,
              help="Leave outputs that already exist (resume a batch); one empty or cut short is written again.")
@click.option("--skip-damaged", is_flag=True,
              help="Upscale a damaged picture (cut short, its data's checksum or restart markers wrong) as far as "
                   "its decoder can read it, what is missing filled grey (of an animation, the frames before the "
                   "damaged one), with a warning saying what is missing, instead of refusing it; in a folder, each "
                   "such picture. JPEG, PNG, GIF, BMP, TIFF; a WebP, AVIF or HEIF's decoder reads none.")
@click.option("--suffix", default="", callback=_suffix,
              help="Added to each output's name in folder mode (photo.jpg -> photo_x4.png), so outputs may go "
                   "beside their inputs: -i shots -o shots --suffix _x4.")
@click.option("--alpha", type=click.Choice(ALPHA_MODES), default="bicubic", show_default=True,
              help="How transparency is upscaled.")
@click.option("--fill-transparent/--keep-transparent", "fill_transparent", default=None,
              help="The colour under fully transparent pixels, which the model sees beside the visible ones: "
                   "where it is one colour (black, white), fill it from the visible colours around, so that edges "
                   "get no dark or light fringe, or keep it, as the reference tool does (for an alpha channel "
                   "that holds data). Default: fill, but keep with the reference tiling (--tile-pad alone).")
@click.option("--no-metadata", is_flag=True, help="Do not copy EXIF, XMP, ICC profile and resolution (DPI) to the outputs.")
def upscale(no_metadata: bool, debug: bool, **options) -> None:
    """Upscale a picture, or every picture in a folder."""
    pipe = _output_pipe(options["output_path"])
    opts = _run_options(metadata=not no_metadata, what="a picture or folder path", **options)
    pipe.path = opts.output
    # Once the flags are read: numpy, ncnn and Pillow load with the work, not for a usage error.
    from .batch_cli import run, stop_interrupted, video_instead

    if is_video_input(opts.input) and os.path.isfile(opts.input) \
            and not picture_named_as_video(opts.input, opts.output):  # a name too long: False, no OSError
        # Named here, a video was "not a picture" or its .mkv output "unsupported". A
        # picture under a video's name is sent to no command its video run sends it back from.
        if (fmt := picture_under_video_name(opts.input)) is not None:
            _fail(f"{opts.input} is {with_article(fmt)} picture under a video's name: name its output as a picture "
                  "(-o out.png, say)")
        _fail(f"{opts.input} is a video: 'ncnn-sr upscale' takes pictures; use 'ncnn-sr video'")
    if is_video_path(opts.output) and not opts.output_folder and os.path.isfile(opts.input) \
            and not os.path.isdir(opts.output):
        _fail(f"unsupported output format '{opts.output.suffix}' for {opts.output}: "
              f"{video_instead(opts.input, opts.output, 'use png, jpg, webp, gif or avif')}")
    if not (is_stream(opts.input, reading=True) or is_stream(opts.output, reading=False)):
        sys.exit(run(PROG, opts, debug))
    try:
        streams = Streams(opts.input, opts.output, opts.fmt, opts.output_folder)
    except NcnnSrError as e:
        _fail(command_words(e))
    click.get_current_context().call_on_close(streams.close)  # an interrupt leaves by os._exit, past the with
    with streams:
        name_streams(streams.aliases)
        code = run(PROG, replace(opts, input=streams.input, output=streams.output), debug)
        if code == 0:
            try:
                pipe.reached = True  # deliver opens it, and closes it failing too
                streams.deliver()
            except NcnnSrError as e:
                _fail(command_words(e))
            except DeliveryInterrupted as e:  # as other runs interrupted say it
                stop_interrupted(None, f"{PROG}: interrupted: {e.words}")
    sys.exit(code)


@main.command(cls=OnePathCommand, several=", and give one video at a time")
@click.option("-i", "--input", "input_path", required=True, type=click.Path(readable=False),
              help="Input video, or a folder of videos; - reads standard input.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(readable=False),
              help="Output video: mp4, mkv, mov, webm, avi, m4v, 3gp, ts, m2ts, mts or flv; also mpg, mpeg "
                   "and vob with --codec mpeg2video, wmv with --codec wmv2, ogv with --codec libvpx. Or a folder "
                   "(made if missing; out/ is always a folder), for a folder of videos too: each video keeps "
                   "its name and container there (else .mkv, or for a codec Matroska cannot hold, the first "
                   "of .mp4, .mov, .webm, .avi that can). - writes Matroska to standard output.")
@click.option("-n", "--model", default="realesr-animevideov3", show_default=True, type=ModelText(),
              help="Model name, a family, or a .param path.")
@_shared_options
@click.option("--codec", default=None, help="Video encoder (default libx264; libvpx-vp9 for .webm).")
@click.option("--crf", type=WholeNumber(0, 63), default=None, help="Constant quality, lower is better: 0-51 for x264/x265, 0-63 for VP9/AV1, 4-63 for VP8 (default 18 for "
                   "them without --bitrate).")
@click.option("--preset", default=None, help="Encoder preset, e.g. slow, medium, fast.")
@click.option("--pix-fmt", default=None,
              help="Output pixel format [default: yuv420p; yuv420p10le for 10-bit or deeper input].")
@click.option("--bitrate", callback=_bitrate, default=None,
              help="Target bitrate in bits/s, k or M for thousands or millions: 8M, 2500k (instead of --crf).")
@click.option("--fps", callback=_fps, default=None,
              help="Constant output rate; frames are repeated or dropped to keep the duration.")
@click.option("--deinterlace", type=click.Choice(DEINTERLACE_MODES), default="auto", show_default=True,
              help="Make interlaced frames whole (bwdif) before upscaling: auto does the frames the "
                   "video flags as interlaced; on does every frame; film undoes 3:2 pulldown (NTSC film "
                   "and anime DVDs: 29.97 to 23.976 fps).")
@click.option("--field-rate", is_flag=True,
              help="Deinterlace to a frame per field (50i to 50p): smoother motion, twice the frames to upscale.")
@click.option("--start", callback=_time, default=None,
              help="Upscale from this time on: seconds (90, 2.5) or [H:]M:S (1:30, 1:02:03.5); the output starts at 0.")
@click.option("--duration", callback=_time, default=None,
              help="Upscale this long a part only (same forms as --start): try settings on a few seconds first.")
@click.option("--end", callback=_time, default=None, help="Upscale up to this time (instead of --duration).")
@click.option("--skip-damaged", is_flag=True,
              help="Skip the video packets and subtitle cues a damaged file holds (a warning counts them; "
                   "damaged sound becomes a gap, damage FFmpeg conceals is kept, a file it cannot read past is "
                   "upscaled up to there) instead of stopping there.")
@click.option("-r", "--recursive", is_flag=True, help="With a folder: its sub-folders' videos too, tree mirrored.")
@click.option("--skip-existing", is_flag=True,
              help="Leave a video whose output exists (with a folder, each); one empty, cut short or that FFmpeg "
                   "cannot open is written again.")
def video(codec: str | None, crf: int | None, preset: str | None, pix_fmt: str | None, bitrate: int | None,
          fps: Fraction | None, deinterlace: str, field_rate: bool, start: Fraction | None, duration: Fraction | None,
          end: Fraction | None, skip_damaged: bool, debug: bool, **options) -> None:
    """Upscale a video in one pass, sound and subtitles kept.

    A run stopped midway (Ctrl-C, a kill, a crash) goes on from where it got to when
    the same command is run again: the encoded video is kept in pieces of about a
    minute in a hidden folder beside the output (.NAME.EXT.ncnn-sr-pieces) until it is
    written. Only for libx264, libx265, libsvtav1, libvpx, libvpx-vp9, ffv1 and mpeg4
    into .mp4, .mov, .mkv or .webm, and not from or to a pipe."""
    if end is not None:
        if duration is not None:
            raise click.UsageError("--end and --duration both say where the part ends: give one")
        if end <= (start or 0):
            raise click.BadParameter(f"must come after --start ({float(start or 0):g} s)", param_hint="'--end'")
        duration = end - (start or 0)
    if field_rate and deinterlace in ("off", "film"):
        raise click.UsageError(f"--field-rate makes a frame of each field: it cannot go with --deinterlace "
                               f"{deinterlace}")
    pipe = _output_pipe(options["output_path"])
    opts = _run_options(fmt=None, what="a video file path", **options)
    pipe.path = opts.output
    from .batch_cli import run_video  # as upscale's

    src = dst = None  # streams, where the input or output is one
    try:
        if is_stream(opts.input, reading=True):
            if opts.output_folder or (not is_stream(opts.output, reading=False) and opts.output.is_dir()):
                raise InputError(f"a video from {shown(opts.input, reading=True)} needs an output file's name "
                                 "(or -o -), not a folder")
            src = VideoInput(opts.input)
        if is_stream(opts.output, reading=False):
            if src is None and opts.input.is_dir():
                raise InputError(f"the videos of a folder cannot all go to {shown(opts.output, reading=False)}: "
                                 "give a folder")
            dst = VideoOutput(opts.output)
            pipe.reached = True
    except NcnnSrError as e:
        if src is not None:
            src.close()
        _fail(command_words(e))
    encode = EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, bitrate=bitrate, fps=fps,
                           deinterlace=deinterlace, field_rate=field_rate, start=start or Fraction(0),
                           duration=duration, skip_damaged=skip_damaged, keep_width=opts.width is not None,
                           keep_height=opts.height is not None)
    try:
        code = run_video(PROG, opts, encode, debug, src, dst)
    finally:
        for stream in (src, dst):
            if stream is not None:
                stream.close()
    sys.exit(code)


def _output_pipe(output: str) -> OutputPipe:
    """-o as a FIFO, ended for its reader as the command ends, however it fails."""
    pipe = OutputPipe(output)
    click.get_current_context().call_on_close(pipe.close)  # an interrupt leaves by os._exit, past a finally
    return pipe


def _fail(message: str, code: int = 1) -> None:
    _say(f"{PROG}: error: {message}", err=True)
    sys.exit(code)


def _say(line: str, err: bool = False) -> None:
    """``line``, which names a file, on one line, as every message says a name."""
    click.echo(one_line(line), err=err)


# Wide enough for every catalog name; a longer custom name widens the column.
_NAME_WIDTH = 26


# The picture options ncnn-sr video has not got, and the video ones upscale has not.
video.elsewhere = {
    # A folder run has no container to give: jobs.plan_videos keeps each video's own.
    **dict.fromkeys(("-f", "--format"), "for videos: one video's container is its output's extension (-o out.mkv); "
                                        "a folder's videos each keep their own where it holds the --codec, "
                                        "else .mkv (or another that holds it)"),
    "--quality": "for videos: their quality is --crf (lower is better) or --bitrate",
    "--suffix": "for videos: each keeps its name in the output folder",
    **dict.fromkeys(("--alpha", "--fill-transparent", "--keep-transparent"), "for videos: they are written opaque"),
    "--no-metadata": "for videos: their tags go along with them"}
upscale.elsewhere = {name: "for pictures: it is an option of 'ncnn-sr video'"
                     for p in video.params for name in (*p.opts, *p.secondary_opts)
                     if not any(name in (*q.opts, *q.secondary_opts) for q in upscale.params)}


@main.command("models")
@click.option("-m", "--model-path", type=ModelFolder(), default=None,
              help="Folder to look in first; the custom models in it are listed too.")
def list_models(model_path: Path | None) -> None:
    """List the known models, where each was found, and whether it was verified
    (or fetched: converted from its authors' weights, whose sha256 was checked);
    then the custom models: each other NAME.param + NAME.bin pair in the -m folder
    and in the NCNN_SR_MODEL_PATH folders, usable as -n NAME.

    A custom model's scale shows as x?: it is measured when the model is first
    loaded (its name may say otherwise). Listing only checks files, it loads no
    network. A pair missing one of its files, an empty or mismatched file, or a
    folder named like a model is listed as unusable, with the reason. A custom
    model named like a family (realesr-animevideov3) is listed as shadowed: -n
    NAME picks the catalog's model, its .param path picks this one.
    """
    output_is_a_listing()
    fetched = models_mod.fetched_model_folder()
    for folder, source in models_mod.model_folders(model_path):
        # The fetched models folder need not be there yet (fetch makes it), unless a
        # file is where it, or a folder above it, would be made: fetch warns of that too.
        there = next((p for p in (folder, *folder.parents) if os.path.lexists(p)), folder) \
            if folder == fetched else folder
        if not there.is_dir():
            _say(f"{PROG}: warning: {source} is not a folder: no model is looked up there", err=True)
    rows = [_catalog_row(name, entry.scale, model_path) for name, entry in models_mod.catalog().items()]
    rows += [_custom_row(name, model_path) for name in models_mod.custom_model_names(model_path)]
    # A file's name may hold a line break: each model stays on its line.
    rows = [(one_line(name), scale, state, one_line(where)) for name, scale, state, where in rows]
    name_width = max(_NAME_WIDTH, *(len(name) for name, _, _, _ in rows))
    width = max(len(state) for _, _, state, _ in rows)
    for name, scale, state, where in rows:
        click.echo(f"{name:{name_width}} x{scale}  {state:{width}}  {where}")


def _state(e: NcnnSrError) -> str:
    # A file that is there but corrupt or the wrong model is not missing: it also
    # hides the package's copy, which is not used in its stead.
    return "missing" if isinstance(e, ModelMissing) else "unusable"


def _catalog_row(name: str, scale: int, model_path: Path | None) -> tuple[str, int, str, str]:
    try:
        spec = models_mod.resolve_model(name, model_path)
    except NcnnSrError as e:
        return name, scale, _state(e), command_words(e)
    if spec.verified:
        return name, scale, "verified", spec.source
    entry = models_mod.catalog()[name]
    if entry.download:
        # Only what fetch recorded writing, unchanged since, is called fetched: any
        # pair in the fetched models folder was, a pair put there by hand too.
        record = fetch_record.recorded(name, spec.param_path, spec.bin_path)
        again = f"'{PROG} fetch {name} --force' fetches"
        if record is not None and record.changed is not None:
            return name, scale, "unverified", (f"{spec.source} ({record.changed} changed since {PROG} fetch wrote "
                                               f"it: {again} it again; {_sizes_said(spec)})")
        if record is not None:
            # fetch_model(source=...) in the library takes other weights than the catalog pins.
            weights = f"the official {record.weights}, its sha256 checked" \
                if record.weights_sha256 == entry.download[1] else f"{record.weights}, not the catalog's weights"
            return name, scale, "fetched", f"{spec.source} (converted from {weights})"
        if spec.param_path.parent == models_mod.fetched_model_folder():
            return name, scale, "unverified", (f"{spec.source} (no record of {PROG} fetch writing it: {again} the "
                                               f"official one; {_sizes_said(spec)})")
    return name, scale, "unverified", f"{spec.source} (no catalog hash; {_sizes_said(spec)})"


def _sizes_said(spec: models_mod.ModelSpec) -> str:
    # A layer type the size check does not know stops it: "sizes checked" claimed the rest.
    layer = models_mod.unsized_layer(spec)
    if layer is None:
        return "sizes checked"
    return f"sizes not checked from layer {layer.name} ({layer.type}) on, its weights' layout not known here"


def _custom_row(name: str, model_path: Path | None) -> tuple[str, str, str, str]:
    try:
        spec = models_mod.resolve_model(name, model_path)
    except NcnnSrError as e:
        return name, "?", _state(e), command_words(e)
    if models_mod.model_name_for(name) != name:
        # The command maps a family name to a catalog variant before any lookup.
        return name, "?", "shadowed", (f"{spec.source}: -n {name} picks the catalog's {name} models; "
                                       f"-n {spec.param_path} runs this one")
    return name, "?", "unverified", f"{spec.source} (custom; {_sizes_said(spec)}; scale measured when first loaded)"


@main.command("devices")
def list_devices() -> None:
    """List the Vulkan devices (with heap budget, auto tile size and default tiling of
    RRDBNet models) and the CPU."""
    from . import devices as devices_mod  # ncnn, which the other listings do without

    output_is_a_listing()
    try:
        auto, why = devices_mod.explain_auto()
        for d in devices_mod.list_devices():
            tiling = "exact tiles" if d.host_memory else \
                "exact tiles where a picture's trunk fits on it, else blended (--exact: stages)"
            if d.is_gpu:
                tile = devices_mod.gpu_tile_for(d)
                reference = devices_mod.gpu_tile_for(d, reference_rule=True)
                also = f" ({reference} with the reference rule)" if reference != tile else ""
                click.echo(f"{d.index:>3}  {d.name}  [{d.kind}]  heap budget {d.heap_budget_mb} MB, "
                           f"auto tile {tile}{also}, {tiling}")
            else:
                click.echo(f"{d.index:>3}  CPU  (-g -1), {tiling}")
        click.echo(f"-g auto is {auto.index}" + (f": {why}" if why else ""))
        click.echo(f"Tiling as shown for {_STAGED_MODELS}; a RealPLKSR with GroupNorm is tiled exactly on "
                   "every device (in stages, or its trunk whole on a discrete GPU); other models blend their "
                   "tiles.")
    except NcnnSrError as e:
        _fail(command_words(e))


def _bench_tiles(ctx, param, value: str) -> list:
    tiles = []
    for part in value.split(","):
        part = part.strip().lower()
        if part in ("auto", "whole"):
            tiles.append("auto" if part == "auto" else 0)
        elif (tile := whole_number(part) or 0) >= MIN_TILE:
            tiles.append(tile)
        else:
            raise click.BadParameter(f"{part!r}: give tile sizes >= {MIN_TILE}, auto or whole")
    return list(dict.fromkeys(tiles))


# The largest synthetic picture the bench makes: past it, it is the picture's own
# memory (and an hour of CPU per run) that would be measured.
MAX_BENCH_SIDE = 16384
# The most --repeat and --rounds: past it a typo (an extra zero or ten) runs for days.
MAX_BENCH_RUNS = 100


def _bench_size(ctx, param, value: str) -> tuple[int, int]:
    w, _, h = value.lower().partition("x")
    w, h = whole_number(w) or 0, whole_number(h) or 0
    if not (w > 0 and h > 0):
        raise click.BadParameter(f"{value!r}: give WIDTHxHEIGHT, such as 256x256")
    if max(w, h) > MAX_BENCH_SIDE:
        raise click.BadParameter(f"{value!r}: at most {MAX_BENCH_SIDE} pixels a side")
    return w, h


def _result_file(ctx, param, value: str | None) -> str | None:
    """Refused before the runs rather than after them."""
    if value is not None:
        if not value:
            raise click.BadParameter("give a file name")
        from .bench import result_path

        try:
            return result_path(value)
        except NcnnSrError as e:
            raise click.BadParameter(command_words(e)) from None
    return value


def _comma_list(ctx, param, value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _model_list(ctx, param, value: str) -> list[str]:
    return [ModelText().convert(part, param, ctx) for part in _comma_list(ctx, param, value)]


def _sha256(ctx, param, value: str | None) -> str | None:
    """A flag's sha256 in lower case; a usage error (status 2) where it is none."""
    from .download import checked_sha256

    try:
        return None if value is None else checked_sha256(value)
    except NcnnSrError as e:
        raise click.BadParameter(command_words(e)) from None


@main.command("convert", cls=OnePathCommand)
@click.option("-i", "--input", "source", required=True,
              help="PyTorch weights (.pth, .pt, .ckpt or .safetensors) of an RRDBNet (Real-ESRGAN, ESRGAN), "
                   "SRVGGNetCompact, SPAN, RealPLKSR or PLKSR model.")
@click.option("-o", "--output", "folder", default=None,
              help="Folder for NAME.param and NAME.bin (made if missing).  [default: the input's folder; the "
                   "current one for an https:// input]")
@click.option("-n", "--name", default=None, help="Model name.  [default: the input's name without its suffix]")
@click.option("--fp32", is_flag=True, help="Keep float32 weights (a bin twice the size); default float16, as the "
                                         "catalog's models have.")
@click.option("--dni", "other", default=None,
              help="A second training of the same network to interpolate with, weight by weight (Real-ESRGAN's "
                   "-dn: -i realesr-general-x4v3.pth --dni realesr-general-wdn-x4v3.pth).")
@click.option("--dni-weight", type=DecimalNumber(0, 1), default=None,
              help="Share of the -i model's weights in the interpolation; the --dni model's is the rest "
                   "(Real-ESRGAN's -dn strength).  [default: 0.5]")
@click.option("--scale", type=WholeNumber(min=1), default=None,
              help="2 or 3 for an old ESRGAN model (model.1.sub... keys) with one upsampling layer, whose keys "
                   "are the same at x2 and x3; any other model's keys give its scale, which this must match.  "
                   "[default: as the input's name says (3x_Name, Name_x3), else 2 with a warning]")
@click.option("--sha256", default=None, callback=_sha256,
              help="The sha256 the -i weights must have (as their publisher gives it); checked before they are "
                   "read.")
@click.option("--force", is_flag=True, help="Replace NAME.param and NAME.bin where they exist.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def convert(source: str, folder: str | None, name: str | None, fp32: bool, other: str | None,
            dni_weight: float | None, scale: int | None, sha256: str | None, force: bool, debug: bool) -> None:
    """Convert a .pth or .safetensors model to ncnn, without PyTorch.

    -i may be an https:// address: the weights are downloaded beside the model,
    converted and deleted. Writes NAME.param and NAME.bin once they have run on a
    small picture on the CPU, and says how to use them: -n and the .param's path
    (-m FOLDER -n NAME finds them too)."""
    from . import checkpoint, convert as convert_mod  # only this command needs them
    from . import download as download_mod

    setup_logging(PROG, verbose=False)  # the library's warnings as the other commands give them
    url = source if download_mod.is_url(source) else None
    if source == "-" and not os.path.lexists(source):  # the other commands' standard input
        _fail("convert reads the weights from a file or an https:// address, not from standard input (-i -): "
              "save them first")
    if url is not None:
        try:
            download_mod.check_url(url)
        except NcnnSrError as e:
            _fail(command_words(e))
    path = path_flag(PROG, "-i", source, "the weights to convert") if url is None else \
        Path(Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name)
    if not path.name:
        _fail(f"{url} names no file: give the address of the weights themselves")
    file_name = path.name  # the downloaded copy's name is hidden
    if url is not None and path.suffix.lower() == ".param":  # else "-n URL" was offered, once downloaded
        _fail(f"{url} is an ncnn model's .param, which runs as it is once downloaded with its .bin: give the "
              ".param's path to -n")
    # A name refused that the user never typed needs its source, and the way to another.
    derived = " (the name is the weights' file's: -n NAME gives another)" if name is None else ""
    name = path.stem if name is None else name
    if folder is not None:
        target = path_flag(PROG, "-o", folder, "the folder to write to")
    else:
        target = Path(".") if url is not None else path.parent
    # Weights refused are deleted: no run could use them; any other failure keeps them.
    downloaded = download_mod.Downloaded(refused=ModelError)
    try:
        if other is None and dni_weight is not None:
            raise NcnnSrError("--dni-weight needs --dni, the model to interpolate with")
        dni_weight = 0.5 if dni_weight is None else dni_weight
        entry = models_mod.catalog().get(name)
        if entry is not None and entry.download is not None:
            # -n NAME would run it at the catalog's scale, and models and fetch would call it
            # the official weights, their sha256 checked.
            raise NcnnSrError(f"{name} is the name of a catalog model ({PROG} fetch {name} installs the official "
                              f"one): give the converted one another name{derived}")
        _check_output_folder(target, renamed=True)
        for given, flag in ((None if url is not None else path, "-i"), (other, "--dni")):
            # pytorch_model.bin, as Hugging Face names weights: NAME.bin is the weights
            # themselves, which --force (that the refusal suggested) wrote the model over.
            for written in (target / f"{name}.param", target / f"{name}.bin"):
                if given is not None and same_file(written, given):
                    raise NcnnSrError(f"{written} is the weights to convert ({flag}): give the model another name "
                                      "(-n) or folder (-o)")
        # Before the download or the work: what would refuse it afterwards. The folder
        # first, so that a name is blamed only for what the name does.
        try:
            check_folder(target)
        except NcnnSrError as e:  # beside the weights, by default: somewhere else may do
            raise e.extended(' (-o FOLDER writes the model elsewhere)' if folder is None else '') from None
        try:
            convert_mod.check_target(target, name, force)
        except NcnnSrError as e:
            raise e.extended(derived) from None
        # Read before a download: a --dni that cannot be read failed only once the weights had come.
        second = None if other is None else \
            checkpoint.read_weights(path_flag(PROG, "--dni", other, "the model to interpolate with"))
        # Two conversions of one address into one folder at once: one after the other.
        made = download_mod.one_at_a_time(target, lambda: logging.getLogger("ncnn_sr").warning(
            "another download into %s is under way (another ncnn-sr convert?): waiting for it to end", target)) \
            if url is not None else folder_made(target)
        with made, downloaded:
            if url is not None:
                try:  # the other may have written it meanwhile
                    convert_mod.check_target(target, name, force)
                except NcnnSrError as e:
                    raise e.extended(derived) from None
                with _download_bar(file_name, quiet=False) as progress:
                    path = downloaded.path = download_mod.download_part(download_mod.Source(url, sha256),
                                                                        target / f".{file_name}", progress)
            elif sha256 is not None:
                download_mod.verify_file(path, sha256)
            weights = checkpoint.read_weights(path)
            try:
                if second is not None:
                    weights = convert_mod.interpolate_weights(weights, second, dni_weight)
                # Models are named by their scale (3x_Name.pth): where the keys cannot tell, that decides.
                model = convert_mod.convert_weights(weights, fp16=not fp32, scale=scale,
                                                    scale_hint=convert_mod.name_scale(Path(file_name).stem),
                                                    flags=FlagNames())
            except ModelError as e:
                # What is wrong is said by key: which file holds them, where several are
                # at hand (a --dni, a folder of downloads), is not.
                raise e.preceded(f"{path}{'' if other is None else f' and {other}'}: ") from None
            spec = convert_mod.write_model(model, target, name, overwrite=force)
    except KeyboardInterrupt:
        if downloaded.kept is not None:  # before the entry point's "interrupted"
            _say(f"{PROG}: the downloaded weights are kept in {downloaded.kept}: the same command takes "
                 "them from there", err=True)
        raise
    except NcnnSrError as e:
        if debug:
            raise
        # The downloaded copy is named by its address.
        words = command_words(e)
        said = words if downloaded.path is None else words.replace(str(downloaded.path), url)
        if downloaded.kept is not None:
            said += f" (the downloaded weights are kept in {downloaded.kept}: the same command takes them from there)"
        _fail(said)
    # The model is written: what is said of it may go unread (| head -1), and fails nothing.
    output_is_a_listing()
    mixed = "" if other is None else f", {dni_weight:g} of {file_name} and {1 - dni_weight:g} of {Path(other).name}"
    _say(f"{spec.param_path} and {spec.bin_path.name}: {model.architecture}{mixed}")
    click.echo(f"use it with: {PROG} -i IN -o OUT -n {shell_word(str(spec.param_path))}")


def _check_output_folder(target: Path, renamed: bool) -> None:
    """An NcnnSrError unless ``target``, -o, may be the folder models are written in;
    ``renamed``: the command's -n names the model, which the folder's name meant."""
    if os.path.exists(target) and not os.path.isdir(target):
        raise NcnnSrError(f"{target} is not a folder: -o names the folder to write NAME.param and NAME.bin in")
    if not os.path.lexists(target) and target.suffix.lower() in (".param", ".bin"):
        # -o models/Mine.param: a folder so named was made, the model written in it.
        name = f" -n {shell_word(target.stem)}" if renamed else ""
        raise NcnnSrError(f"{target} is named like a model's file: -o names the folder to write NAME.param and "
                          f"NAME.bin in (-o {shell_word(str(target.parent))}{name})")


def _not_fetched(name: str, spec: models_mod.ModelSpec) -> str | None:
    """How model ``name``'s pair ``spec`` differs from what fetch recorded writing;
    None where it is just that."""
    record = fetch_record.recorded(name, spec.param_path, spec.bin_path)
    if record is None:
        return f"no record of {PROG} fetch writing it"  # by hand, or by a fetch that kept none
    return None if record.changed is None else f"{record.changed.name} changed since {PROG} fetch wrote it"


@main.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--from", "weights", type=HomePath(dir_okay=False, path_type=Path), default=None,
              help="The official weights, downloaded by hand: checked and converted, nothing downloaded "
                   "(one model only).")
@click.option("--url", default=None,
              help="A mirror of the weights (one model only); they must still be the ones the catalog pins.")
@click.option("-o", "--output", "folder", type=HomePath(path_type=Path), default=None,
              help="Install in this folder (then pass it with -m) instead of the fetched models folder.")
@click.option("--all", "every", is_flag=True, help="Fetch every model it can (144 MB in all).")
@click.option("--force", is_flag=True, help="Fetch and convert again a model that is there already.")
@click.option("-q", "--quiet", is_flag=True, help="No progress.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def fetch(names: tuple[str, ...], weights: Path | None, url: str | None, folder: Path | None, every: bool,
          force: bool, quiet: bool, debug: bool) -> None:
    """Download catalog models that ncnn-sr does not come with from their authors'
    releases, check them against the sha256 the catalog pins, convert them and
    install them where -n finds them. Without NAMES, list those models.

    A download cut short (no connection, Ctrl-C) keeps its bytes: the same command
    goes on from them. https_proxy is honoured."""
    from . import convert as convert_mod, download as download_mod, fetch as fetch_mod  # only this command needs them

    setup_logging(PROG, verbose=False)
    if folder is not None:
        try:
            _check_output_folder(folder, renamed=False)  # as convert's -o; the list cannot be installed there either
        except NcnnSrError as e:
            _fail(command_words(e))
    where = folder or models_mod.fetched_model_folder()
    # A folder the user never typed: where it comes from is part of what to mend, and
    # the default one (under a home folder that is not there, or read-only, as a
    # service's user's) how to name another.
    named = "" if folder is not None else \
        f" (the fetched models folder {models_mod.ENV_FETCHED} names)" if os.environ.get(models_mod.ENV_FETCHED) \
        else f" (the default fetched models folder: give another with {models_mod.ENV_FETCHED}, or fetch into one " \
             "with -o FOLDER and use it with -m)"
    if every and names:
        raise click.UsageError("--all fetches every model: name none")
    names = tuple(fetch_mod.fetchable()) if every else names
    if not names and (weights is not None or url is not None):  # else the list below, and they go unused
        given = "--from" if weights is not None else "--url"
        raise click.UsageError(f"{given} gives the weights of one model: name it ({PROG} fetch NAME {given} ...)")
    if not names and force:
        raise click.UsageError("--force fetches again the models named: name them, or give --all")
    if not names:
        output_is_a_listing()
        for name, entry in fetch_mod.fetchable().items():
            try:
                spec = fetch_mod.installed(name, where)
                kept = fetch_mod.pending_bytes(name, where)
                other = None if spec is None else _not_fetched(name, spec)
                state = f"there, {other}: {spec.param_path}" if other is not None else \
                    f"fetched: {spec.param_path}" if spec is not None else \
                    f"not fetched ({_amount(kept)} of a download kept)" if kept else "not fetched"
            except NcnnSrError as e:
                state = f"unusable: {command_words(e)}"
            click.echo(f"{name:{_NAME_WIDTH}} x{entry.scale}  {entry.download[2] / 1e6:5.1f} MB  {state}")
        # With -o, the command offered installs there too, as the list is of that folder.
        elsewhere = "" if folder is None else f" -o {shell_word(str(folder))}"
        click.echo(f"fetch one with: {PROG} fetch NAME{elsewhere} (into {where})")
        try:
            check_folder(where)
        except NcnnSrError as e:  # the list is still true; the offer is not
            click.echo(f"{PROG}: warning: {command_words(e)}{named}", err=True)
        return
    if weights is not None and url is not None:
        raise click.UsageError("--from and --url are two places to take the weights from: give one")
    if url is not None and not download_mod.is_url(url):
        _fail(f"--url takes an http or https address, not {url!r} (a file here is --from FILE)", 2)
    try:
        if url is not None:
            download_mod.check_url(url)
    except NcnnSrError as e:
        _fail(command_words(e), 2)
    if (weights is not None or url is not None) and len(set(names)) > 1:
        raise click.UsageError(f"{'--from' if weights else '--url'} gives the weights of one model: name only that one")
    # Its lines tell of the downloads, which are the work: a reader gone (| head -1)
    # stops none of them, nor changes the status.
    output_is_a_listing()
    failed = False
    for name in dict.fromkeys(names):
        try:
            fetch_mod.source_of(name)  # an unknown name fails before any download
            spec = fetch_mod.installed(name, where) if not force else None
            if spec is not None:
                other = _not_fetched(name, spec)
                if other is None:
                    _say(f"{name}: fetched already ({spec.param_path}); --force fetches it again")
                else:  # put there by hand, perhaps: "fetched already" vouched for it
                    _say(f"{name}: there already ({spec.param_path}), {other}; --force fetches the official one")
                continue
            source = fetch_mod.mirrored(name, url) if url is not None else fetch_mod.source_of(name)
            try:
                check_folder(where)
            except NcnnSrError as e:  # as it is for every model: said once, before a download
                _fail(f"{command_words(e)}{named}")
            convert_mod.check_target(where, name, force)  # before "downloading": it would refuse the model after
            if weights is None and not quiet:  # a log has no bar: say what takes the time
                kept = fetch_mod.pending_bytes(name, where, source)
                going_on = f", going on from the {_amount(kept)} kept" if kept else ""
                click.echo(f"{name}: downloading {source.url} ({_amount(source.size)}{going_on})", err=True)
            with _download_bar(name, quiet) as progress:
                spec = fetch_mod.fetch_model(name, where, weights=weights, force=force, progress=progress,
                                             source=source, flags=FlagNames())
            _say(f"{name}: {spec.param_path} and {spec.bin_path.name}")
        except NcnnSrError as e:
            if debug:
                raise
            words = command_words(e)
            said = words.startswith((f"{name}:", f"{name!r} ", f"model {name} ", f"model {name}:"))  # not twice
            _say(f"{PROG}: error: {words if said else f'{name}: {words}'}", err=True)
            failed = True
        except download_mod.WaitStopped:  # what is kept there is the other's
            _say(f"{PROG}: {name}: stopped waiting: the other download into {where} goes on", err=True)
            raise
        except KeyboardInterrupt:
            # Before the entry point's "interrupted": what a long download brought is not lost.
            kept = fetch_mod.pending_bytes(name, where) if weights is None else 0
            if kept:
                _say(f"{PROG}: {name}: the {_amount(kept)} downloaded are kept: the same command goes on "
                     "from them", err=True)
            raise
    if failed:
        sys.exit(1)
    if folder is not None:
        click.echo(f"use it with: {PROG} -i IN -o OUT -m {shell_word(str(folder))} -n NAME")


def _amount(size: int) -> str:
    """A number of bytes as the fetch command says it: a download stopped in its first
    second kept some thousands, which "0.0 MB" called none."""
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB" if size >= 1000 else \
        f"{size} bytes"


@contextlib.contextmanager
def _download_bar(name: str, quiet: bool):
    """A progress callback for one download: a bar of bytes on a terminal."""
    if quiet or not bar_fits(sys.stderr):
        yield None
        return
    from tqdm import tqdm

    with tqdm(unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, desc=name, leave=False,
              dynamic_ncols=True) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


@main.command("bench")
@click.option("-n", "--model", "models", default=f"{DEFAULT_MODEL},realesr-animevideov3-x2", show_default=True,
              callback=_model_list, help="Models (names, families or .param paths), comma-separated.")
@click.option("-g", "--gpu", default="auto", show_default=True, callback=_gpu,
              help="Devices, comma-separated: 0,-1 (or gpu0,cpu).")
@click.option("-t", "--tile", "tiles", default="auto,200", show_default=True, callback=_bench_tiles,
              help="Tile sizes, comma-separated: >=32, auto (the engine's choice) or whole (one tile).")
@click.option("--precision", "precisions", default="default", show_default=True, callback=_comma_list,
              help="Comma-separated, of default, fp32, fp16, bf16, int8; with several, fp32 runs first "
                   "and the others get their PSNR from it.")
@click.option("-i", "--image", type=HomePath(dir_okay=False, path_type=Path), default=None,
              help="A picture to time on (default: a synthetic one of --size).")
@click.option("--size", default="256x256", show_default=True, callback=_bench_size,
              help="Size of the synthetic picture.")
@click.option("--repeat", type=WholeNumber(min=1, max=MAX_BENCH_RUNS), default=3, show_default=True,
              help="Timed runs per configuration; the best counts.")
@click.option("--rounds", type=WholeNumber(min=1, max=MAX_BENCH_RUNS), default=1, show_default=True,
              help="Times each configuration is measured, alternating with the C++ code if asked.")
@click.option("--tiling", "tilings", default="seamless", show_default=True, callback=_comma_list,
              help="Comma-separated. seamless: the engine's default; reference: the C++ code's rule (use it "
                   "to compare); exact: exact output on every device (stages where a discrete GPU cannot run "
                   "the trunk whole); blended: blended windows on every device.")
@click.option("--reference-python", type=HomePath(dir_okay=False), default=None,
              help="A python with realesrgan-ncnn-py installed (a path, or a name on PATH): time the official "
                   "C++ code side by side.")
@click.option("--json", "json_path", type=HomePath(dir_okay=False), default=None, callback=_result_file,
              help="Write every row here.")
@click.option("--markdown", "markdown_path", type=HomePath(dir_okay=False), default=None, callback=_result_file,
              help="Write the table here.")
def bench(models: list[str], gpu: str, tiles: list, precisions: list[str], image: Path | None,
          size: tuple[int, int], repeat: int, rounds: int, tilings: list[str], reference_python: str | None,
          json_path: str | None, markdown_path: str | None) -> None:
    """Measure speed (input MP/s), peak memory and precision on this machine, each
    configuration in a fresh process."""
    # Here, not at the top: the other commands' start would load them for nothing.
    from . import bench as bench_mod
    from . import devices as devices_mod
    from .images import read_image

    setup_logging(PROG, verbose=False)  # the library's warnings as the other commands give them
    # Its lines tell of the runs: a reader gone (| head -1), before them too, stops
    # neither the runs nor the saving of their rows (--json, --markdown).
    output_is_a_listing()
    for values, known, flag in ((precisions, bench_mod.PRECISIONS, "'--precision'"),
                                (tilings, bench_mod.TILINGS, "'--tiling'")):
        if not values or any(v not in known for v in values):
            raise click.BadParameter(f"choose from {', '.join(known)}", param_hint=flag)
    if not models:
        raise click.BadParameter("give at least one model", param_hint="'-n' / '--model'")
    if json_path is not None and json_path == markdown_path:
        raise click.BadParameter("--json and --markdown name the same file", param_hint="'--markdown'")
    if image is not None and click.get_current_context().get_parameter_source("size") is not ParameterSource.DEFAULT:
        raise click.BadParameter("--size is the synthetic picture's: -i's is timed at its own size",
                                 param_hint="'--size'")
    for path, flag in ((json_path, "--json"), (markdown_path, "--markdown")):
        if path is not None and image is not None and same_file(path, image):
            # Written once the runs are done, it replaced the picture they timed.
            raise click.BadParameter(f"{flag} names the -i picture, which it would write over", param_hint=f"'{flag}'")
    try:
        # The same configuration twice would be timed twice: a family and its default
        # variant, "auto" and -1.
        models = bench_mod.checked_models(models)
        # Before the devices, whose notices (a software Vulkan device passed over)
        # would come before a missing picture's error.
        if image is not None:
            picture = bench_mod.rgb8(read_image(image)[0])
        else:
            picture = bench_mod.synthetic_picture(*size)
        parts = [part.strip() for part in devices_mod.split_specs(gpu) if part.strip()] or ["auto"]
        indices = list(dict.fromkeys(devices_mod.get_device(part).index for part in parts))
        tilings = list(dict.fromkeys(tilings))
        if reference_python is not None:
            reference_python = bench_mod.reference_path(reference_python)
    except NcnnSrError as e:
        _fail(command_words(e))
    click.echo(f"machine: {bench_mod.machine_line()}")
    click.echo(f"picture: {picture.shape[1]}x{picture.shape[0]}, best of {repeat}, tiling {', '.join(tilings)}")
    try:
        rows = bench_mod.run(picture, models, indices, tiles, precisions, repeat=repeat, rounds=rounds,
                             tilings=tilings, reference_python=reference_python)
        click.echo(bench_mod.report(rows))
        bench_mod.save(rows, (picture.shape[1], picture.shape[0]), repeat, rounds, json_path, markdown_path)
    except KeyboardInterrupt:
        raise  # the entry point's one line, as at any other moment
    except NcnnSrError as e:
        _fail(command_words(e))
    if any("error" in r for r in rows):
        sys.exit(1)
