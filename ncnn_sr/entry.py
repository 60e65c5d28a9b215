"""The commands' entry points: they load the command's module, and its ncnn and
numpy, under a Ctrl-C guard, so that an early Ctrl-C ends in one line too."""
from __future__ import annotations

import importlib
import os
import sys

EXIT_INTERRUPTED = 130


def _run(module: str, prog: str) -> None:
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # native libraries may be half loaded: no teardown
    main()


def ncnn_sr() -> None:
    _run("ncnn_sr.cli", "ncnn-sr")


def realesrgan_ncnn_vulkan() -> None:
    _run("ncnn_sr.dropin", "realesrgan-ncnn-vulkan")
