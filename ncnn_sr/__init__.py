"""ncnn-sr: portable super-resolution on any GPU through Vulkan, or on the CPU.

    >>> from ncnn_sr import Upscaler, read_image, write_image
    >>> pixels, info = read_image("photo.jpg")
    >>> with Upscaler("realesrgan-x4plus") as up:
    ...     write_image("photo_x4.png", up.upscale(pixels), info)
"""
from .devices import Device, get_device, list_devices
from .engine import Upscaler
from .errors import DeviceError, InputError, ModelError, NcnnSrError
from .images import ImageInfo, read_image, write_image
from .models import ModelSpec, catalog, model_name_for, resolve_model

__version__ = "0.1.0"

__all__ = [
    "Device", "DeviceError", "ImageInfo", "InputError", "ModelError", "ModelSpec", "NcnnSrError",
    "Upscaler", "catalog", "get_device", "list_devices", "model_name_for", "read_image",
    "resolve_model", "write_image", "__version__",
]
