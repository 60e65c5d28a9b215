"""Files fetched over HTTP(S) and checked before anything reads them.

A download goes to a hidden ``.NAME.download`` beside its target and takes the
target's name only once its size and sha256 are those it was pinned to. An
interrupted download (a dropped connection, Ctrl-C) keeps what it received there,
and the next call goes on from it with a Range request, since a 64 MB checkpoint
over a poor connection may never arrive in one go. Knows nothing of models.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import stat
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import DISK_FULL, InputError, NcnnSrError, cannot_write, describe, is_web_page
from .files import check_folder, folder_made, write_target

CHUNK = 1 << 20
# Seconds a connection may stay silent (to connect, or between two reads).
TIMEOUT = 30.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DownloadError(NcnnSrError):
    """A file that could not be fetched, or arrived other than pinned."""


@dataclass(frozen=True)
class Source:
    """Where a file is on the web (http or https), and what it must be: ``sha256``
    (hex) and ``size`` in bytes, each None where not pinned."""

    url: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise DownloadError(f"a download's url must be a non-empty string, got {describe(self.url)}")
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", checked_sha256(self.sha256))
        if self.size is not None and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0):
            raise DownloadError(f"a download's size must be a whole number of bytes, got {describe(self.size)}")


def checked_sha256(text: str) -> str:
    """A sha256 as given (in either case), in lower case; DownloadError if it is none."""
    if not isinstance(text, str) or not _SHA256.fullmatch(text.lower()):
        raise DownloadError(f"a sha256 is 64 hexadecimal digits, got {describe(text)}")
    return text.lower()


def is_url(text: str) -> bool:
    """Whether ``text`` names a file on the web rather than a local path."""
    try:
        scheme = urllib.parse.urlsplit(text).scheme
    except ValueError:  # "http://[::1": an address, if a malformed one (check_url says why)
        scheme = text.partition(":")[0]
    return scheme.lower() in ("http", "https")


def check_url(url: str) -> None:
    """A DownloadError unless ``url`` is an http or https address that can be asked
    for: urllib's own errors for a malformed one were a traceback ("Invalid IPv6
    URL"), or a connection said to have broken (a port that is no number)."""
    if not is_url(url):
        raise DownloadError(f"{url} is no http or https address")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # raises for a port that is no number, or out of range
    except ValueError as e:
        raise DownloadError(f"{url} is not a valid address: {e}") from None
    if not parts.hostname:
        raise DownloadError(f"{url} is not a valid address: it names no server")


def partial_path(target: Path) -> Path:
    """Where the download of ``target`` waits until it is whole and checked: hidden."""
    return target.with_name(f"{'' if target.name.startswith('.') else '.'}{target.name}.download")


def download(source: Source, target: str | os.PathLike,
             progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Fetch ``source`` to ``target`` and return its path. ``progress(done, total)``
    is called as bytes arrive (``total`` None when unknown).

    Raises DownloadError when the server cannot be reached or refuses, when the file
    is larger than pinned or its sha256 differs (the part is then deleted: resuming
    could only give the same bytes), and InputError when it cannot be written (a
    missing folder too), checked before the server is asked. A download cut short
    keeps its part for the next call."""
    part = download_part(source, target, progress)
    try:
        os.replace(part, Path(target))
    except OSError as e:
        raise cannot_write(Path(target), e) from None
    _origin(part).unlink(missing_ok=True)
    return Path(target)


def download_part(source: Source, target: str | os.PathLike,
                  progress: Callable[[int, int | None], None] | None = None) -> Path:
    """As ``download``, but the whole, checked file stays at ``partial_path(target)``,
    with the record of where it came from, and that path is returned. The caller
    ``discard``s it once done with it; while it is there, the next call for the
    same source finds it whole and asks the server for nothing more than whether
    the file is still the same (a pinned size: not even that). So a caller whose
    own work on the file fails (its output's disk full) keeps what a long download
    brought."""
    check_url(source.url)
    target = Path(target)
    if "\0" in str(target):  # %00 in an address's file name
        raise DownloadError(f"{source.url} names a file no system can hold (a NUL byte)")
    _check_target(target)
    part = partial_path(target)
    done, validator = _kept(part, source)
    try:
        done = _fetch(source, part, done, validator, progress)
    except OSError as e:  # the network's: a failed write is an InputError already
        kept = part.stat().st_size if part.exists() else 0
        again = " (the bytes received are kept: run it again to go on from them)" if kept else ""
        raise DownloadError(f"cannot download {source.url}: {_reason(e, _proxy(source.url))}{again}") from None
    except http.client.HTTPException as e:  # a connection dropped midway: IncompleteRead
        raise DownloadError(f"cannot download {source.url}: the connection broke ({type(e).__name__}); "
                            "run it again to go on from the bytes received") from None
    if source.size is not None and done < source.size:
        if _begins_a_web_page(part):  # sent without its length: not the start of the file to go on from
            _forget(part)
            raise _web_page(source)
        raise DownloadError(f"cannot download {source.url}: the server stopped after {done} of {source.size} "
                            "bytes; run it again to go on from them")
    _check_digest(source, part)
    return part


def kept_bytes(target: str | os.PathLike, source: Source) -> int:
    """Bytes kept from an earlier download of ``source`` to ``target`` that the next
    goes on from; 0 for bytes from another address (which it starts afresh without),
    and more than the size pinned. Reads only: nothing is removed."""
    part = partial_path(Path(target))
    try:
        size = part.stat().st_size
        came_from = _origin(part).read_text(encoding="utf-8").split("\n")[0]
    except (OSError, UnicodeDecodeError):
        return 0
    return size if came_from == source.url and (source.size is None or size <= source.size) else 0


def discard(part: Path) -> None:
    """Remove a file ``download_part`` gave, and its record."""
    _forget(part)


class Downloaded:
    """The file ``download_part`` gave for one use, while that use runs (a ``with``
    block): set ``path`` once it is there. It is discarded when the use succeeds, or
    fails with one of ``refused`` (the file itself is no good: no later call could use
    it); any other failure (a full disk, Ctrl-C) keeps it, whole, for the next call,
    and ``kept`` then names it."""

    def __init__(self, refused: type[BaseException] | tuple[type[BaseException], ...]) -> None:
        self.refused = refused
        self.path: Path | None = None
        self.kept: Path | None = None

    def __enter__(self) -> Downloaded:
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if self.path is not None:
            if kind is None or issubclass(kind, self.refused):
                discard(self.path)
            else:
                self.kept = self.path
        return False


class WaitStopped(KeyboardInterrupt):
    """A Ctrl-C while ``one_at_a_time`` waited for another process: the bytes kept in
    the folder are that one's download, which goes on."""


@contextlib.contextmanager
def one_at_a_time(folder: Path, waiting: Callable[[], None] | None = None):
    """Make ``folder`` (as ``folder_made``) and hold it around a download into it and
    the use of what came (a ``with`` block, outside ``Downloaded``'s): another process
    doing the same there waits for it to end, ``waiting`` called first. Two fetches of
    one model at once each appended to the same part, so neither's sha256 matched: one
    blamed the server, the other read a part the first had deleted (a traceback).
    Where the folder cannot be locked (Windows, some network file systems), nothing
    is held."""
    while True:
        fd = None
        try:
            # On a failure the folders made are taken back while this process still
            # holds them: taken back once it had let go, an empty one was removed under
            # the download of the process that had just taken it. Stopped while
            # waiting, it leaves them to the one it waited for.
            with folder_made(folder, kept_on=WaitStopped):
                fd = _held(folder, waiting)
                if fd is not None and not _same_file(fd, folder):
                    # Taken back by the one waited for (it failed, leaving it empty):
                    # what is held is gone, so a third would not have waited.
                    waiting = None  # said once
                    continue
                yield
                return
        finally:
            if fd is not None:
                os.close(fd)  # which lets the lock go


def _held(folder: Path, waiting: Callable[[], None] | None) -> int | None:
    """A descriptor of ``folder`` locked for this process, waited for; None where it
    cannot be locked. WaitStopped on a Ctrl-C while waiting."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                if waiting is not None:
                    waiting()
                fcntl.flock(fd, fcntl.LOCK_EX)
            except KeyboardInterrupt:
                raise WaitStopped from None
        except OSError:  # a file system without locks
            pass
    except BaseException:
        os.close(fd)
        raise
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        there, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (held.st_dev, held.st_ino)


def _check_target(target: Path) -> None:
    """InputError unless ``target`` can be written, said before the server is asked:
    a missing folder, a folder in the file's place or a folder no file can be made in
    each failed only after the download, or once it began."""
    write_target(target)  # a folder, a device or a write-protected file there
    folder = target.parent
    if not os.path.lexists(folder):  # not made: the caller names the folder, and makes it
        raise InputError(f"cannot write {target}: there is no folder {folder}")
    check_folder(folder)


def _origin(part: Path) -> Path:
    """Beside a part: the address its bytes came from and the validator (ETag or
    Last-Modified) the server gave for them, a line each, so that a resume asks for
    the rest of that file and no other."""
    return part.with_name(f"{part.name}.from")


def _forget(part: Path) -> None:
    for path in (part, _origin(part)):
        # A read-only folder refuses to remove even what is not there; a part that is
        # there and stays fails the write after, which says so.
        with contextlib.suppress(OSError):
            path.unlink()


def _kept(part: Path, source: Source) -> tuple[int, str]:
    """Bytes of an earlier attempt to go on from, and the validator the server gave
    for them: none where they cannot be the start of this file (more than the whole,
    or fetched from another address)."""
    try:
        kept = part.stat().st_size
    except FileNotFoundError:
        _forget(part)
        return 0, ""
    except OSError as e:
        raise cannot_write(part, e) from None
    try:
        came_from, validator = (_origin(part).read_text(encoding="utf-8").split("\n") + ["", ""])[:2]
    except (OSError, UnicodeDecodeError):  # no record, or a broken one: the bytes' source is unknown
        came_from, validator = None, ""
    if came_from != source.url or (source.size is not None and kept > source.size):
        _forget(part)
        return 0, ""
    return kept, validator


def _validator(response) -> str:
    """What If-Range can name this response's file by: a strong ETag, else its
    Last-Modified date; "" when the server gives neither."""
    etag = response.headers.get("ETag", "")
    return etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified", "")


def _fetch(source: Source, part: Path, done: int, validator: str, progress) -> int:
    if source.size is not None and done == source.size:
        return done  # whole already: only the check is left
    headers = {"User-Agent": f"ncnn-sr/{__version__}"}
    if done:
        headers["Range"] = f"bytes={done}-"
        if validator:  # a server whose file changed since sends it whole (200)
            headers["If-Range"] = validator
    request = urllib.request.Request(source.url, headers=headers)
    try:
        # An opener of its own: urlopen's reads the proxy settings once, at its first
        # call, so that a message could name another proxy than the one asked.
        response = urllib.request.build_opener().open(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and done:  # the range starts at the end: what is kept is all there is
            return done
        if 300 <= e.code < 400:  # urllib follows redirects: one it gives back goes nowhere, or round
            why = ("its redirects go round in a loop (or on past 10)" if e.headers.get("Location")
                   else f"the server redirects ({e.code}) without saying where")
            raise DownloadError(f"cannot download {source.url}: {why}") from None
        raise DownloadError(f"cannot download {source.url}: the server said {e.code} {e.reason}") from None
    with response:
        if done and response.status != 206:  # the server sends the whole file again
            done = 0
        total = _length(response, done)
        if source.size is not None and total is not None and total != source.size:
            _forget(part)
            if is_web_page(response.read(64)):
                raise _web_page(source)
            raise DownloadError(f"{source.url} is {total} bytes where the file pinned is {source.size}: "
                                "it is another file")
        try:
            if not done:
                _origin(part).write_text(f"{source.url}\n{_validator(response)}\n", encoding="utf-8")
            f = open(part, "ab" if done else "wb")
        except OSError as e:
            raise cannot_write(part, e) from None
        with f:
            if progress:
                progress(done, total if total is not None else source.size)
            # read1: what has arrived, so that a slow connection's bytes are kept as they come
            while chunk := response.read1(CHUNK):
                done += len(chunk)
                if source.size is not None and done > source.size:
                    f.close()
                    _forget(part)
                    raise DownloadError(f"{source.url} holds more than the {source.size} bytes pinned: "
                                        "it is another file")
                try:
                    f.write(chunk)
                    f.flush()
                except OSError as e:
                    raise _write_failed(part, e, total if total is not None else source.size) from None
                if progress:
                    progress(done, total if total is not None else source.size)
    if total is not None and done < total:  # the connection closed early, without a word from http.client
        raise http.client.IncompleteRead(b"", total - done)
    return done


def _web_page(source: Source) -> DownloadError:
    # A network's sign-in page was "N bytes where the file pinned is M: it is another
    # file", or, sent without its length, kept to go on from.
    return DownloadError(f"{source.url} sent a web page (HTML), not the file: a sign-in page of the network or a "
                         "proxy, or an error page? (open the address in a browser to see it)")


def _begins_a_web_page(part: Path) -> bool:
    try:
        with open(part, "rb") as f:
            return is_web_page(f.read(64))
    except OSError:
        return False


def _write_failed(part: Path, e: OSError, total: int | None) -> InputError:
    """The error for bytes that could not be written to ``part``: on a full disk, what
    is kept there (the next call goes on from it, which no message said)."""
    error = cannot_write(part, e)
    if e.errno not in DISK_FULL:
        return error
    try:
        kept = part.stat().st_size
    except OSError:
        kept = 0
    if not kept:
        return error
    of = "" if total is None else f" of {total}"
    return type(error)(f"{error} ({kept}{of} bytes are kept there: make room and run it again to go on from them)")


def _length(response, done: int) -> int | None:
    """The whole file's size as the response gives it, or None."""
    whole = re.fullmatch(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", "").strip())
    if whole:
        return int(whole.group(1))
    length = response.headers.get("Content-Length")
    return done + int(length) if length and length.isdecimal() else None


def _check_digest(source: Source, part: Path) -> None:
    if source.sha256 is None:
        return
    try:
        digest = file_sha256(part)
    except OSError as e:  # removed by hand meanwhile, say: it was a traceback
        raise DownloadError(f"cannot download {source.url}: cannot read {part}: {e.strerror or e}") from None
    if digest != source.sha256:
        _forget(part)
        raise DownloadError(f"{source.url} is not the file pinned (its sha256 is {digest}, not {source.sha256}); "
                            "nothing was kept")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, sha256: str | None, size: int | None = None) -> None:
    """Check a file already on this machine (downloaded by hand, say) as a download
    is checked: DownloadError unless it has the ``size`` and ``sha256`` given."""
    sha256 = None if sha256 is None else checked_sha256(sha256)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise DownloadError(f"{path} is a folder, not a checkpoint")
        if not stat.S_ISREG(info.st_mode):  # /dev/zero hashed for ever, a pipe waited for a writer
            raise DownloadError(f"{path} is not a regular file (a device or a pipe): give a checkpoint file")
        actual = info.st_size
        if size is not None and actual != size:
            raise DownloadError(f"{path} is {actual} bytes where the file pinned is {size}: it is another file")
        digest = None if sha256 is None else file_sha256(path)
    except OSError as e:
        raise DownloadError(f"cannot read {path}: {e.strerror or e}") from None
    if digest != sha256:
        raise DownloadError(f"{path} is not the file pinned (its sha256 is {digest}, not {sha256})")


def _proxy(url: str) -> str | None:
    """The proxy urllib asks for ``url`` (from http_proxy, https_proxy, no_proxy), as
    a message names it: "http://host:port (http_proxy)", without the password its
    address may hold; None where it asks the server itself."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme.lower())
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    given = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = f":{given.port}" if given.port is not None else ""
    except ValueError:  # a port that is no number: urllib's own error says so
        port = ""
    return f"{given.scheme}://{given.hostname or ''}{port} ({parts.scheme.lower()}_proxy)"


def _reason(e: OSError, proxy: str | None = None) -> str:
    """Why the connection failed. Through a ``proxy`` that cannot be reached, the
    proxy is named: the server's address alone was blamed ("Connection refused"), and
    an unknown proxy host was told to set the proxy that was set."""
    reason = getattr(e, "reason", e)
    if isinstance(reason, socket.timeout) or isinstance(e, socket.timeout):
        return f"no answer in {TIMEOUT:g} s" + (f" (through the proxy {proxy})" if proxy else "")
    if proxy is not None and isinstance(reason, OSError) and not isinstance(e, urllib.error.HTTPError):
        said = "its host is unknown" if isinstance(reason, socket.gaierror) else reason.strerror or str(reason)
        return f"the proxy {proxy} cannot be reached: {said}"
    if isinstance(reason, socket.gaierror):
        return "the host is unknown (no network, or a proxy needed: https_proxy is honoured)"
    if isinstance(reason, OSError):
        return reason.strerror or str(reason)
    return str(reason)
