"""The ``ncnn-sr`` command: a thin layer over the library.

``ncnn-sr -i IN -o OUT`` upscales one picture; ``ncnn-sr models`` and
``ncnn-sr devices`` list what is there.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import devices as devices_mod
from . import models as models_mod
from .engine import ALPHA_MODES, Upscaler
from .errors import NcnnSrError
from .images import output_format, read_image, write_image

log = logging.getLogger("ncnn_sr")

DEFAULT_MODEL = "realesrgan-x4plus"


class _Lines(logging.Handler):
    """Library messages as one line each on stderr: 'ncnn-sr: warning: ...'."""

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        click.echo(f"ncnn-sr: {level}{record.getMessage()}", err=True)


def _setup_logging(verbose: bool) -> None:
    log.handlers[:] = [_Lines()]
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"ncnn-sr: error: {message}", err=True)
    sys.exit(code)


class _DefaultToUpscale(click.Group):
    """``ncnn-sr -i a -o b`` means ``ncnn-sr upscale -i a -o b``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["upscale", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultToUpscale, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ncnn-sr")
def main() -> None:
    """Upscale pictures with Real-ESRGAN models on any Vulkan GPU, or on the CPU.

    Run `ncnn-sr upscale --help` for the options; `ncnn-sr -i IN -o OUT` is short
    for `ncnn-sr upscale -i IN -o OUT`.
    """


@main.command()
@click.option("-i", "--input", "input_path", required=True, type=click.Path(path_type=Path), help="Input picture.")
@click.option("-o", "--output", "output_path", required=True, type=click.Path(path_type=Path),
              help="Output picture (png, jpg, webp), or an existing folder.")
@click.option("-n", "--model", default=DEFAULT_MODEL, show_default=True,
              help="Model name, a family such as realesr-animevideov3, or a .param path.")
@click.option("-s", "--scale", type=float, default=None, help="Output scale (any factor; default: the model's).")
@click.option("--width", type=int, default=None, help="Output width (keeps the aspect ratio alone).")
@click.option("--height", type=int, default=None, help="Output height (keeps the aspect ratio alone).")
@click.option("-t", "--tile", type=int, default=0, show_default=True, help="Tile size, >=32, 0 = auto.")
@click.option("--tile-pad", type=int, default=None, help="Context pixels around each tile (default: the model's, 10).")
@click.option("-g", "--gpu", default="auto", show_default=True, help="Vulkan device index, or -1 for the CPU.")
@click.option("-m", "--model-path", type=click.Path(path_type=Path), default=None, help="Folder to look for models in first.")
@click.option("-x", "--tta", is_flag=True, help="Test-time augmentation: average the 8 flips/rotations (8x slower).")
@click.option("-f", "--format", "fmt", type=click.Choice(["png", "jpg", "jpeg", "webp"], case_sensitive=False),
              default=None, help="Output format when -o is a folder (else from -o's extension).")
@click.option("--quality", type=click.IntRange(1, 100), default=None, help="jpg/webp quality (webp: lossless without it).")
@click.option("--alpha", type=click.Choice(ALPHA_MODES), default="bicubic", show_default=True,
              help="How transparency is upscaled.")
@click.option("--fp32", is_flag=True, help="Full float32 precision on the GPU (slower, no fp16).")
@click.option("--no-metadata", is_flag=True, help="Do not copy EXIF and ICC profile to the output.")
@click.option("-v", "--verbose", is_flag=True, help="Say what is being done.")
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
def upscale(input_path: Path, output_path: Path, model: str, scale: float | None, width: int | None,
            height: int | None, tile: int, tile_pad: int | None, gpu: str, model_path: Path | None,
            tta: bool, fmt: str | None, quality: int | None, alpha: str, fp32: bool, no_metadata: bool,
            verbose: bool, debug: bool) -> None:
    """Upscale one picture."""
    _setup_logging(verbose)
    try:
        _upscale_one(input_path, output_path, model, scale, width, height, tile, tile_pad, gpu,
                     model_path, tta, fmt, quality, alpha, fp32, not no_metadata)
    except KeyboardInterrupt:
        _fail("interrupted; no output was written", 130)
    except NcnnSrError as e:
        if debug:
            raise
        _fail(str(e))


def _upscale_one(input_path, output_path, model, scale, width, height, tile, tile_pad, gpu,
                 model_path, tta, fmt, quality, alpha, fp32, metadata) -> None:
    if output_path.is_dir():
        output_path = output_path / f"{input_path.stem}.{(fmt or 'png').lower()}"
    out_fmt = output_format(output_path)
    pixels, info = read_image(input_path)
    if info.frames > 1:
        log.warning("%s has %d frames: upscaling the first only", input_path, info.frames)
    if out_fmt == "jpg" and pixels.shape[2] == 4:
        output_path = output_path.with_suffix(".png")
        out_fmt = "png"
        log.warning("%s has transparency, which JPEG cannot store: writing %s instead", input_path, output_path)
    name = models_mod.model_name_for(model, scale)
    with Upscaler(name, device=gpu, tile=tile, tta=tta, tile_pad=tile_pad, alpha=alpha, fp32=fp32,
                  model_path=model_path) as up:
        log.info("%s: %s x%d on %s", input_path, up.spec.name, up.scale, up.device)
        if scale == up.scale:
            scale = None
        result = up.upscale(pixels, scale=scale, width=width, height=height)
    write_image(output_path, result, info, fmt=out_fmt, quality=quality, metadata=metadata)
    log.info("wrote %s (%dx%d)", output_path, result.shape[1], result.shape[0])


@main.command("models")
@click.option("-m", "--model-path", type=click.Path(path_type=Path), default=None, help="Folder to look in first.")
def list_models(model_path: Path | None) -> None:
    """List the known models, where each was found, and whether it was verified."""
    for name, entry in models_mod.catalog().items():
        try:
            spec = models_mod.resolve_model(name, model_path)
            state = "verified" if spec.verified else "unverified (no catalog hash; sizes checked)"
            click.echo(f"{name:26} x{entry.scale}  {state:11}  {spec.source}")
        except NcnnSrError as e:
            click.echo(f"{name:26} x{entry.scale}  missing      {e}")


@main.command("devices")
def list_devices() -> None:
    """List the Vulkan devices (with heap budget and auto tile size) and the CPU."""
    try:
        for d in devices_mod.list_devices():
            if d.is_gpu:
                click.echo(f"{d.index:>3}  {d.name}  [{d.kind}]  heap budget {d.heap_budget_mb} MB, "
                           f"auto tile {devices_mod.gpu_auto_tile(d.heap_budget_mb)}")
            else:
                click.echo(f"{d.index:>3}  CPU  (-g -1)")
    except NcnnSrError as e:
        _fail(str(e))
