"""What the two commands' flags are, read before any work: the click commands whose
usage errors say how to call them, the checks of a path flag, and the RunOptions a
run is given. Nothing here loads numpy, ncnn or Pillow: the commands' help and their
usage errors come without them (batch_cli runs the work, and loads them)."""
from __future__ import annotations

import os
import re
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from .choices import DEVICE_SPECS
from .entry import EXIT_FAILED, output_is_a_listing
from .errors import failed_words, one_line, shell_word
from .path_names import names_a_folder
from .streams import STDIO

if TYPE_CHECKING:
    from .models import ModelSpec

# The reference's -j, the drop-in's default; ncnn-sr's -j auto starts from it (batch_cli).
REFERENCE_JOBS = "1:2:2"


class UsageCommand(click.Command):
    """A command whose every usage error shows how to call it: click's parser raises
    "Option '-i' requires an argument." without the command's context, and it came
    alone, under none of the Usage: lines that every other usage error shows."""

    def __init__(self, *args, known_as: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.known_as = known_as or {}  # other names of its options, said where given: {"--scale": "-s"}
        # Another command's options, with what to say of them: click offered the options
        # spelt alike ("--quality" to ncnn-sr video: "Did you mean '--quiet'?"). Or a
        # function that returns them, called only when an unknown option is met (the
        # drop-in's are read from ncnn-sr's commands, which a run need not load).
        self.elsewhere: dict[str, str] | Callable[[], dict[str, str]] = {}

    def invoke(self, ctx: click.Context):
        output_is_a_listing(False)  # its help was printed, if asked for; a listing says so again
        return super().invoke(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            elsewhere = self.elsewhere() if callable(self.elsewhere) else self.elsewhere
            if e.option_name in elsewhere:
                raise click.NoSuchOption(e.option_name, f"No such option '{e.option_name}' "
                                         f"{elsewhere[e.option_name]}", ctx=ctx) from None
            # Click offers only names spelt alike: "-I" got no word of "-i".
            if not e.possibilities:
                names = {name for p in self.get_params(ctx) for name in (*p.opts, *p.secondary_opts)}
                meant = self.known_as.get(e.option_name) or next(
                    (name for name in sorted(names) if name.lower() == e.option_name.lower()), None)
                e.possibilities = [meant] if meant else []
            if e.ctx is None:
                e.ctx = ctx
            raise
        except click.UsageError as e:
            if e.ctx is None:
                e.ctx = ctx
            raise


class OnePathCommand(UsageCommand):
    """A command whose -i and -o take one path each. Words left over after the options
    are mostly a path with spaces left unquoted (-i my photo.png) or a shell pattern
    (-i *.png) that gave -i several files: click's "Got unexpected extra argument"
    is followed by what to do. ``several`` says what to give for several inputs;
    ``empty_words``, that empty words left over are passed over. A path flag given
    twice is refused: click keeps the last, and "-i a.png -i b.png" upscaled b.png
    alone, unsaid; ``last_path_wins`` keeps it, as the reference's getopt does."""

    def __init__(self, *args, several: str = "", empty_words: bool = False, last_path_wins: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.several, self.empty_words, self.last_path_wins = several, empty_words, last_path_wins

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.allow_extra_args = True  # to say more than click would of the words left over
        given = list(args)  # click's parser takes the words out of args
        if not ctx.resilient_parsing:
            self._paths_not_options(ctx, given)
        try:
            rest = super().parse_args(ctx, args)
        except click.MissingParameter as e:
            self._paths_without_flags(ctx, given, e)
            raise
        if not (self.last_path_wins or ctx.resilient_parsing):
            self._one_path_each(ctx, given)
        if not ctx.resilient_parsing:
            self._one_side_each(ctx, given)
        if self.empty_words:
            rest = [word for word in rest if word]
        if rest and not ctx.resilient_parsing:
            words = "s" if len(rest) > 1 else ""
            ctx.fail(f"Got unexpected extra argument{words} ({' '.join(rest)}): -i and -o take one path each; "
                     f"quote a path with spaces{self.several}")
        return rest

    def _paths_not_options(self, ctx: click.Context, args: list[str]) -> None:
        """An option followed by another of the command's options, no file of that name
        there: its path or value was forgotten, and click took the option for it. What
        it said next was beside the point ("No such option '-1'" for "-o -g -1", a call
        "-i -o -o out.png" to try). --suffix takes any text, "-x" too."""
        options = {name: p for p in self.get_params(ctx) for name in (*p.opts, *p.secondary_opts)
                   if isinstance(p, click.Option)}
        at = 0
        while at < len(args) - 1 and args[at] != "--":
            word, value = args[at], args[at + 1]
            option = options.get(word)
            takes_value = option is not None and not option.is_flag and not option.count
            if takes_value and option.name != "suffix" and value in options and not os.path.lexists(value):
                what = {"input_path": "the input path", "output_path": "the output path"}.get(option.name)
                ctx.fail(f"{word} has no {'path' if what else 'value'}: {value} after it is an option; give "
                         f"{what or 'its value'} right after {word}")
            at += 2 if takes_value else 1

    def _one_path_each(self, ctx: click.Context, args: list[str]) -> None:
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        for flag in ("-i", "-o"):
            if sum(flag in getattr(p, "opts", ()) for p in order) > 1:
                ctx.fail(f"{flag} is given twice, and only the last would be used: -i and -o take one path each"
                         f"{self.several}")

    def _one_side_each(self, ctx: click.Context, args: list[str]) -> None:
        """A flag and its opposite both given (--exact --blend) are refused: click kept
        the last, unsaid, where -v with -q is refused as contradicting. The words are
        walked as _paths_not_options walks them, so an option's value (--suffix --blend)
        is no flag."""
        options = {name: p for p in self.get_params(ctx) for name in (*p.opts, *p.secondary_opts)
                   if isinstance(p, click.Option)}
        sides: dict[str, str] = {}  # the first flag given of each pair
        at = 0
        while at < len(args) and args[at] != "--":
            word = args[at]
            option = options.get(word)
            if option is not None and option.is_flag and option.secondary_opts:
                first = sides.setdefault(option.name, word)
                if (first in option.secondary_opts) != (word in option.secondary_opts):
                    ctx.fail(f"{first} and {word} contradict each other: give one")
            at += 2 if option is not None and not option.is_flag and not option.count else 1

    def _paths_without_flags(self, ctx: click.Context, args: list[str], missing: click.MissingParameter) -> None:
        """``upscale in.png out.png``: click stops at the missing -i, the paths unsaid.
        Where the words left over fill the -i and -o missing, the call with them is said."""
        names = {"-i": "INPUT", "-o": "OUTPUT"}
        flags = {flag: p for p in self.params for flag in names if flag in getattr(p, "opts", ())}
        if ctx.resilient_parsing or missing.param not in flags.values():
            return
        given, words, _ = self.make_parser(ctx).parse_args(args=args)
        words = [word for word in words if word] if self.empty_words else words
        paths = {flag: given.get(p.name) for flag, p in flags.items()}
        lacking = [flag for flag, value in paths.items() if value is None]
        if not words or len(words) > len(lacking):
            return
        paths.update(zip(lacking, words))
        # An -o that has a default (convert's) is left out; a required one still wanted is OUTPUT.
        call = [ctx.command_path] + [f"{flag} {shell_word(value or names[flag])}"
                                     for flag, value in paths.items() if value is not None or flags[flag].required]
        ctx.fail(f"Got unexpected extra argument{'s' if len(words) > 1 else ''} ({' '.join(words)}): "
                 f"paths are given with -i and -o: {' '.join(call)}")


def _tilde_part(text: str) -> str | None:
    """The leading ~ or ~user of ``text`` that a shell would have made a home folder,
    or None: none there, or a file or folder so named where the command runs (the
    one meant, as for any path)."""
    first = re.split(r"[/\\]" if os.name == "nt" else "/", text, maxsplit=1)[0]
    return first if first.startswith("~") and not os.path.lexists(first) else None


def _home_path(prog: str, text: str, failed=None) -> str:
    """``text`` with a leading ~ or ~user made the home folder it names, as a shell
    would have: quoted ("~/x.png") or from a config, it made a folder named ~ where the
    command ran. ``failed``: as for path_flag."""
    first = _tilde_part(text)
    if first is None:
        return text
    home = os.path.expanduser(text)
    if home == text:  # ~user of no user
        _refuse(prog, f"{text}: no user named {first[1:]} for {first}: write ./{text} for a folder of that name",
                failed)
    return home


def _refuse(prog: str, words: str, failed=None) -> None:
    """Exit status 1 after ``words``, said to have failed (failed_words) where
    ``failed`` names the input of a run that ends here; on one line, whatever the
    names in it hold."""
    click.echo(one_line(f"{prog}: error: {words if failed is None else failed_words(failed, words)}"), err=True)
    sys.exit(EXIT_FAILED)


class HomePath(click.Path):
    """click's Path, a leading ~ or ~user made the home folder it names as path_flag
    does: quoted or from a config, click checked "~/models" as given and said it did
    not exist, or a folder named ~ was made where the command ran."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and _tilde_part(value) is not None:
            value = os.path.expanduser(value)  # ~user of no user stays, and is not found
        return super().convert(value, param, ctx)


def param_runs_as(path: str | os.PathLike) -> str | None:
    """For a model folder that is a model's file, its .param or the .bin beside one:
    the -n that runs it (a user given a model's two files may take -m to want it);
    else None."""
    stem, suffix = os.path.splitext(os.fspath(path))
    if suffix.lower() == ".bin":
        path = next((stem + end for end in (".param", ".PARAM") if os.path.isfile(stem + end)), path)
    elif suffix.lower() != ".param":
        return None
    if not os.path.isfile(path) or not os.path.splitext(path)[1].lower() == ".param":
        return None
    return f"-n {shell_word(os.fspath(path))} runs it"


class ModelFolder(HomePath):
    """-m: a folder that is there. click said of a model's .param "Directory
    'mine.param' is a file.", where -n runs it (and of its .bin alike)."""

    def __init__(self) -> None:
        super().__init__(path_type=Path, exists=True, file_okay=False)

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            given = os.path.expanduser(value) if isinstance(value, str) and _tilde_part(value) is not None else value
            runs = param_runs_as(given) if isinstance(given, (str, os.PathLike)) else None
            if runs is None:
                raise
            self.fail(f"{os.fspath(given)} is a model's file, not a folder of models: {runs}", param, ctx)


class ModelText(click.ParamType):
    """A -n value: a model's name, or a .param path whose leading ~ or ~user is made
    the home folder, as -m's is: "~/models/mine.param" (quoted, or from a config) was
    a file not found."""

    name = "text"

    def convert(self, value, param, ctx):
        if isinstance(value, str) and _tilde_part(value) is not None:
            value = os.path.expanduser(value)
        return value


def _file_address_path(text: str) -> str | None:
    """The path a file: address (file:///home/me/a%20b.png) names on this machine, or
    None for any other text, or one of another machine's."""
    if not text[:7].lower() == "file://":
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        return None
    if os.name == "nt":
        import nturl2path  # /C:/x/a.png is C:\x\a.png

        return nturl2path.url2pathname(parts.path)
    return urllib.parse.unquote(parts.path)


def path_flag(prog: str, flag: str, text: str, what: str, folders: bool = False, failed=None) -> Path:
    """A path flag's value, or a one-line error and exit status 1 when it is empty:
    Path("") is the current folder, and an unset variable in a script (-i "$IN")
    upscaled whatever was there, or wrote into it. ``folders``: the flag takes a
    folder of files too, which a pattern left unexpanded meant. ``failed``: the input
    (its path) of a run whose refusal here says it failed, as the drop-in's do: its
    wrappers take stderr without "failed" for a success. An empty value is a flag error
    (the reference prints its usage), said as it is."""
    if not text:
        click.echo(f"{prog}: error: {flag} is empty: give {what}", err=True)
        sys.exit(EXIT_FAILED)
    given, text = text, _home_path(prog, text, failed)
    if failed == given:
        failed = text  # the input named as the words below name it ("~/x*.png" expanded)
    local = _file_address_path(text)
    if local is not None and not os.path.lexists(text):
        # A file manager's copied link: no download, the path was meant.
        _refuse(prog, f"{text} is a file's address: give its path, {shell_word(local)}", failed)
    if folders and any(c in text for c in "*?") and not os.path.lexists(text):
        # Windows's cmd expands no pattern, nor does any shell a quoted one. A "[" alone
        # is no sign of one: "[Group] Title - 01.mkv" is a common name.
        folder = shell_word(os.path.dirname(text) or ".")
        _refuse(prog, f"{text}: file not found: a pattern is not expanded here (quoted, or in Windows's cmd): "
                      f"give their folder, {flag} {folder}", failed)
    if _WEB_ADDRESS.match(text) and not os.path.lexists(text):
        # Said whole and as what it is: as a path its // became / ("https:/x.org/a.jpg:
        # file not found"), and an output made a folder named "s3:".
        how = "write here, then upload" if flag == "-o" else "download it first"
        _refuse(prog, f"{text} is a web address, not a file: {how}", failed)
    if flag in ("-i", "--dni") and names_a_folder(text) and os.path.exists(os.path.normpath(text)) \
            and not os.path.isdir(text):
        # "a.png/": Path() drops the separator, and the file was read, where a shell or
        # the system refuses it (ENOTDIR). An output so named is a folder to make; a
        # model folder (-m) is refused in words of its own.
        _refuse(prog, f"{text}: not a folder ({os.path.normpath(text)} is a file)", failed)
    if text != STDIO and Path(text) == Path(STDIO):
        # "./-" or "-/" names the file or folder "-", as for cat ./-: Path() drops the
        # "./" and the slash, which left "-", standard input or output.
        return Path.cwd() / STDIO
    return Path(text)


def gpu_flag(prog: str, text: str) -> str:
    """-g's value, or a one-line error and exit status 1 where it is empty: -g "$GPU"
    with GPU unset ran on whatever auto found, unsaid. The drop-in takes it, as the
    reference does."""
    if not text.strip():
        click.echo(f"{prog}: error: -g is empty: {DEVICE_SPECS}, or several devices as 0,1",
                   err=True)
        sys.exit(EXIT_FAILED)
    return text


_WEB_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")  # a scheme of two letters or more: C:// is a drive


@dataclass(frozen=True)
class RunOptions:
    """Everything a batch run needs, from either command's flags."""

    input: Path
    output: Path
    model: str | ModelSpec  # a catalog name (a family already resolved), a .param path, or a mix (--denoise)
    model_path: Path | None
    gpu: str
    tile: str
    jobs: str
    tta: bool
    fmt: str | None
    scale: float | None = None
    width: int | None = None
    height: int | None = None
    tile_pad: int | None = None
    overlap: int | None = None
    exact: bool | None = None
    alpha: str = "bicubic"
    fill_transparent: bool | None = None  # None: the engine's default (not under the reference rule)
    precision: str = "default"
    quality: int | None = None
    metadata: bool = True
    recursive: bool = False
    skip_existing: bool = False
    skip_damaged: bool = False  # a damaged picture is read as far as it goes, with a warning
    suffix: str = ""  # after each output's stem in folder mode: photo.jpg -> photo_x4.png
    verbose: bool = False
    quiet: bool = False
    output_folder: bool = False  # -o was written as a folder ("out/"): one, made if missing
    keep_opaque_alpha: bool = False  # any alpha channel asked as JPEG makes name.jpg.png, as the reference
    drop_oversized_exif: bool = False  # a JPEG then goes without an EXIF it cannot hold, instead of failing
    animate: bool = True  # an animated picture gives an animation of every frame where the format holds one
    # stderr as the reference's wrappers (Upscayl) read it: a "NN.NN%" line after each tile,
    # and "failed" only where something failed, as the reference says it only then.
    reference_stderr: bool = False
    # A folder with no pictures: a warning and status 0, as the reference (scripts looping
    # over frame folders under `set -e` go on), instead of an error.
    empty_folder_ok: bool = False
    # A -m folder without the named model is passed over for the next that has it: with
    # a warning (a user who names a folder means its model). The drop-in refuses a -m
    # it is given so, as the reference fails, and passes over its default models folder
    # unsaid, as the reference then looks beside itself, where its models are.
    warn_model_elsewhere: bool = True
    # One picture whose output is itself is replaced by its upscaled self, as the
    # reference does and Upscayl's "double upscayl" relies on (its second pass is
    # -i out.png -o out.png); ncnn-sr refuses it, the picture would be lost.
    in_place_ok: bool = False
