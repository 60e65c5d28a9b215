"""Errors a user can cause. Each message is the one line the command prints."""
import errno


class NcnnSrError(Exception):
    """Base of every error ncnn-sr raises on purpose."""


class ModelError(NcnnSrError):
    """A model that cannot be found, verified or loaded."""


class DeviceError(NcnnSrError):
    """A device that does not exist or cannot run the model."""


class InputError(NcnnSrError):
    """A picture or array the engine cannot take, or an output it cannot write."""


def os_reason(e: OSError) -> str:
    """Why a file operation failed, in words: "File exists" from making a folder means
    a file is in the way."""
    if e.errno == errno.EEXIST and e.filename:
        return f"{e.filename} is a file, not a folder"
    return e.strerror or str(e)
