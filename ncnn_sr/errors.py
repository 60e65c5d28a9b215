"""Errors a user can cause. Each message is the one line the command prints."""


class NcnnSrError(Exception):
    """Base of every error ncnn-sr raises on purpose."""


class ModelError(NcnnSrError):
    """A model that cannot be found, verified or loaded."""


class DeviceError(NcnnSrError):
    """A device that does not exist or cannot run the model."""


class InputError(NcnnSrError):
    """A picture or array the engine cannot take, or an output it cannot write."""
