"""What a path's name says it is, a picture, a video or a folder, without opening it.
The commands ask this as they read their flags: Pillow is loaded only where a
picture's extension is looked up, and its readers beyond the common formats' only
where those do not answer."""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from .errors import shell_word
from .files import name_fault
from .signatures import PICTURE_HEAD, picture_format
from .video_options import is_video_input, is_video_path

# Formats Pillow registers that are no picture it can read: PDF and PALM it only
# writes, MPEG is a video whose header alone it reads, BUFR/GRIB/HDF5 are data it
# only recognises.
NOT_PICTURES = frozenset({"PDF", "PALM", "MPEG", "BUFR", "GRIB", "HDF5"})


@functools.lru_cache(maxsize=1)
def picture_suffixes() -> frozenset[str]:
    """The extensions of the pictures Pillow reads, .heic and .heif (pillow-heif's)
    among them. Those of NOT_PICTURES are left out: a folder holding them is not a
    folder of broken pictures."""
    from PIL import Image

    from . import heif

    heif.register()
    # Loads every reader of Pillow's (Image.init): some 50 ms, once a process.
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt not in NOT_PICTURES)


def is_picture_suffix(suffix: str) -> bool:
    """Whether ``suffix`` (".png") is in ``picture_suffixes()``."""
    from PIL import Image

    # Pillow's common formats (PNG, JPEG, GIF, BMP, netpbm) register their extensions
    # without the others' readers: a folder of them, or one picture, starts some 50 ms
    # sooner (a tenth of a small run) than where every reader had to be loaded.
    Image.preinit()
    fmt = Image.EXTENSION.get(suffix.lower())
    return fmt not in NOT_PICTURES if fmt is not None else suffix.lower() in picture_suffixes()


# Extensions of files found beside pictures and videos that Python's own table of
# types (KNOWN_SUFFIXES below) lacks, or lacked in 3.10: sidecars (an export's .json,
# .xmp, Apple's .aae edits, a camera's .thm thumbnail and GoPro's .lrv low-resolution
# copy, an episode's .nfo and checksums, raw developers' edits: RawTherapee's .pp3, DxO's .dop,
# Capture One's .cos), subtitles, texts, Windows' desktop.ini, Thumbs.db and links, and
# downloads not finished (Firefox's .part, Chrome's .crdownload): each is left out by
# its name, unopened, where a thumbnail or a download cut short could be taken for a
# picture by its first bytes.
SIDECAR_SUFFIXES = frozenset({
    ".json", ".txt", ".xml", ".xmp", ".aae", ".thm", ".lrv", ".nfo", ".sfv", ".md5", ".sha1", ".sha256", ".ini",
    ".db", ".md", ".log", ".yml", ".yaml", ".url", ".lnk", ".pp3", ".dop", ".cos", ".srt", ".ass", ".ssa", ".vtt",
    ".sub", ".idx", ".sup", ".part", ".crdownload", ".partial", ".tmp"})
# Camera raw photos. Most start as a TIFF whose first image is a preview (a DNG's
# 256-pixel one, a CR2's camera JPEG), which Pillow reads in place of the photo.
RAW_SUFFIXES = frozenset({
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf", ".pef",
    ".srw", ".3fr", ".erf", ".kdc", ".dcr", ".mos", ".mrw", ".x3f", ".iiq", ".rwl", ".fff"})
RAW_ADVICE = "develop {} to a 16-bit TIFF or PNG first (darktable, RawTherapee, dcraw -6 -T)"


# The extensions of Python 3.11's own table of types (mimetypes' defaults, before the
# system's files are read), written out, less those above: that table grows with each
# Python (3.13 added .md, .markdown and .rst; 3.14 .flac, .m4a and .mka among others;
# 3.15 .toml), and a suffix it lacked was opened to be told by its first bytes, so that
# a folder run upscaled other pictures under each Python. Not the system's table
# (/etc/mime.types: 1550 types on Debian) either: it differs from one machine to the
# next, and names a picture's backups (.bak, .old) "x-trash", where their first bytes
# tell. Pictures' and videos' extensions here are asked apart first.
KNOWN_SUFFIXES = frozenset({
    ".3g2", ".3gp", ".3gpp", ".3gpp2", ".a", ".aac", ".adts", ".ai", ".aif", ".aifc", ".aiff", ".au", ".avi",
    ".avif", ".bat", ".bcpio", ".bin", ".bmp", ".br", ".bz2", ".c", ".cdf", ".cpio", ".csh", ".css", ".csv", ".dll",
    ".doc", ".dot", ".dvi", ".eml", ".eps", ".etx", ".exe", ".gif", ".gtar", ".gz", ".h", ".h5", ".hdf", ".heic",
    ".heif", ".htm", ".html", ".ico", ".ief", ".jpe", ".jpeg", ".jpg", ".js", ".ksh", ".latex", ".loas", ".m1v",
    ".m3u", ".m3u8", ".man", ".me", ".mht", ".mhtml", ".mid", ".midi", ".mif", ".mjs", ".mov", ".movie", ".mp2",
    ".mp3", ".mp4", ".mpa", ".mpe", ".mpeg", ".mpg", ".ms", ".n3", ".nc", ".nq", ".nt", ".nws", ".o", ".obj",
    ".oda", ".opus", ".p12", ".p7c", ".pbm", ".pct", ".pdf", ".pfx", ".pgm", ".pic", ".pict", ".pl", ".png", ".pnm",
    ".pot", ".ppa", ".ppm", ".pps", ".ppt", ".ps", ".pwz", ".py", ".pyc", ".pyo", ".qt", ".ra", ".ram", ".ras",
    ".rdf", ".rgb", ".roff", ".rtf", ".rtx", ".sgm", ".sgml", ".sh", ".shar", ".snd", ".so", ".src", ".sv4cpio",
    ".sv4crc", ".svg", ".svgz", ".swf", ".t", ".tar", ".taz", ".tbz2", ".tcl", ".tex", ".texi", ".texinfo", ".tgz",
    ".tif", ".tiff", ".tr", ".trig", ".tsv", ".txz", ".tz", ".ustar", ".vcf", ".wasm", ".wav", ".webm",
    ".webmanifest", ".webp", ".wiz", ".wsdl", ".xbm", ".xlb", ".xls", ".xpdl", ".xpm", ".xsl", ".xul", ".xwd",
    ".xz", ".z", ".zip"})


def says_its_kind(suffix: str) -> bool:
    """Whether the extension ``suffix`` (".json") names a kind of file: one of
    SIDECAR_SUFFIXES, RAW_SUFFIXES or KNOWN_SUFFIXES. A name whose last suffix is
    none of these (Twitter's photo.jpg_large, a backup's image.png~, wget's
    pic.jpeg.1, clip.1080p) says nothing of what the file is: a folder run reads its
    first bytes, as a name with no extension's. Pictures' and videos' extensions
    are asked apart (is_picture_suffix, is_video_path)."""
    folded = suffix.lower()
    return folded in SIDECAR_SUFFIXES or folded in RAW_SUFFIXES or folded in KNOWN_SUFFIXES


def split_name(name: str) -> tuple[str, str]:
    """``name`` as its stem and its extension, split at its last dot, as the reference
    names outputs: "photo." is ("photo", "."), where pathlib (before Python 3.14) gave
    the stem "photo.", and photo..png was written. A leading dot starts a hidden
    name, not an extension (".x": (".x", ""))."""
    at = name.rfind(".")
    return (name[:at], name[at:]) if at > 0 else (name, "")


def video_by_its_output(src: str | os.PathLike, dst: str | os.PathLike | None) -> bool:
    """Whether the file ``src``, named as neither a picture nor a video (clip.nut,
    film.rmvb, tape.y4m), is a video, as ``dst`` is named as one (out.mkv): read as a
    picture, it could only be refused, and its output with it, as no picture format."""
    return (dst is not None and is_video_path(dst) and not is_picture_suffix(Path(src).suffix)
            and not is_video_path(src) and os.path.isfile(src))


def _head(path: str | os.PathLike, size: int) -> bytes:
    """The first ``size`` bytes of the regular file ``path``; none where it is another
    kind (a FIFO would wait for a writer) or cannot be read."""
    try:
        if not os.path.isfile(path):
            return b""
        with open(path, "rb") as f:
            return f.read(size)
    except (OSError, ValueError):
        return b""


def picture_named_as_video(src: str | os.PathLike, dst: str | os.PathLike | None) -> bool:
    """Whether the file ``src``, named as a video (clip.mp4), is a picture by its first
    bytes (a PNG saved under a video's name) and ``dst`` is named as a picture
    (out.png): read as a video it could only be refused, as "a still picture", and its
    picture output with it, as no video container."""
    # The input's name and a video's output name are asked first: they need no Pillow,
    # which a video run's start, a picture folder's plan and a usage error do without.
    return (dst is not None and is_video_input(src) and not is_video_path(dst)
            and is_picture_suffix(Path(dst).suffix) and picture_under_video_name(src) is not None)


def picture_under_video_name(src: str | os.PathLike) -> str | None:
    """The picture format ("PNG") of the file ``src``, named as a video, whose first
    bytes are a picture's; None where it is not named so, or is no such picture."""
    return picture_format(_head(src, PICTURE_HEAD)) if is_video_input(src) else None


def names_a_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is written as a folder's, ending in a separator or "." ("out/",
    "out/."): Path() drops both, and a missing folder became a file name."""
    return os.path.basename(os.fspath(path)) in ("", ".")


def suffix_fault(suffix: str) -> str | None:
    """Why ``suffix`` cannot be added to a file's name (the words after "suffix"), or
    None where it can."""
    if any(sep and sep in suffix for sep in (os.sep, os.altsep)) or "\0" in suffix:
        return "is added to a file's name: it cannot hold a folder separator"
    if suffix and suffix.strip(".") == "":
        return "needs a letter or digit: dots alone make names that hide or mean other files"
    fault = name_fault(f"a{suffix}.png")
    return None if fault is None else f"is added to a file's name: {fault}"  # else each picture failed to be written


# FFmpeg's number in a picture sequence's name: %d, or %0Nd and %Nd for N digits.
_PRINTF_NUMBER = re.compile(r"%\d*d")


def numbered_pictures_hint(path: str | os.PathLike, takes: str, command: str = "ncnn-sr", library: bool = False) -> str:
    """What to do instead, where ``path``, not found, names a numbered sequence of
    pictures as FFmpeg does (frames/f%02d.png): ``command`` (the drop-in's own name
    in its words) upscales their folder, or for ``library``, plan_jobs' jobs of it;
    ``takes`` says what the input is instead ("ncnn-sr video takes a video"). "" for
    another name (100%.png, a%s.png, a pattern in a folder's name only)."""
    if not _PRINTF_NUMBER.search(os.path.basename(os.fspath(path))):
        return ""
    folder = os.path.dirname(os.fspath(path)) or "."
    how = f"a Pipeline running plan_jobs({folder!r}, out_folder).jobs" if library \
        else f"{command} -i {shell_word(folder)} -o OUT_FOLDER"
    return f": {takes}, not numbered pictures: {how} upscales them, for ffmpeg to join into a video"
