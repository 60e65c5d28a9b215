"""ncnn-sr: portable super-resolution on any GPU through Vulkan, or on the CPU.

    >>> from ncnn_sr import Upscaler, read_image, write_image
    >>> pixels, info = read_image("photo.jpg")
    >>> with Upscaler("realesrgan-x4plus") as up:
    ...     write_image("photo_x4.png", up.upscale(pixels), info)
"""
import importlib

__version__ = "0.1.0"

# The public names and the modules that hold them. They are imported on first use,
# so that importing the package itself is instant: the commands' entry points
# (``entry``) can then catch a Ctrl-C that lands while ncnn and numpy load.
_HOMES = {
    "Animation": "animation", "read_frames": "animation", "write_frames": "animation",
    "read_weights": "checkpoint",
    "ConvertedModel": "convert", "convert_weights": "convert", "interpolate_weights": "convert",
    "name_scale": "convert", "write_model": "convert",
    "DownloadError": "download", "fetch_model": "fetch", "denoised_model": "mixing", "mix_models": "mixing",
    "Device": "devices", "get_device": "devices", "list_devices": "devices",
    "Upscaler": "engine",
    "DeviceError": "errors", "InputError": "errors", "ModelError": "errors", "NcnnSrError": "errors",
    "ImageInfo": "images", "read_image": "images", "write_image": "images",
    "ModelSpec": "models", "catalog": "models", "fetched_model_folder": "models", "model_name_for": "models", "resolve_model": "models",
}

__all__ = sorted(_HOMES) + ["__version__"]


def __getattr__(name: str):
    """Import a public name from its module on first use, so that importing the
    package itself stays instant."""
    if name not in _HOMES:
        raise AttributeError(f"module 'ncnn_sr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's names, with the public ones not imported yet."""
    return sorted(set(globals()) | set(_HOMES))
