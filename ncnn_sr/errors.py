"""Errors a user can cause. Each message is the one line the command prints."""
import errno


class NcnnSrError(Exception):
    """Base of every error ncnn-sr raises on purpose."""


class ModelError(NcnnSrError):
    """A model that cannot be found, verified or loaded."""


class ModelMissing(ModelError):
    """A model whose files are not there (as against there but unusable)."""


class DeviceError(NcnnSrError):
    """A device that does not exist or cannot run the model."""


class InputError(NcnnSrError):
    """A picture or array the engine cannot take, or an output it cannot write."""


class NoRoom(InputError):
    """An output's file system is full or read-only: no later output there can be
    written either."""


def os_reason(e: OSError) -> str:
    """Why a file operation failed, in words: "File exists" from making a folder means
    a file is in the way."""
    if e.errno == errno.EEXIST and e.filename:
        return f"{e.filename} is a file, not a folder"
    return e.strerror or str(e)


# What no retry can get past: the disk full (or over quota), or mounted read-only.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def cannot_write(target, e: OSError) -> InputError:
    """The one-line error for a write to ``target`` that failed with ``e``."""
    kind = NoRoom if e.errno in NO_ROOM else InputError
    return kind(f"cannot write {target}: {os_reason(e)}")
