"""What a path's name says it is, a picture, a video or a folder, without opening it.
The commands ask this as they read their flags: Pillow is loaded only where a
picture's extension is looked up, and its readers beyond the common formats' only
where those do not answer."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from .files import name_fault
from .video_options import is_video_path

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
# types (mimetypes) lacks, or lacked in 3.10: sidecars (an export's .json, .xmp, Apple's
# .aae edits, a camera's .thm thumbnail and GoPro's .lrv low-resolution copy, an
# episode's .nfo and checksums, raw developers' edits: RawTherapee's .pp3, DxO's .dop,
# Capture One's .cos), subtitles, texts, Windows' desktop.ini, Thumbs.db and links, and
# downloads not finished (Firefox's .part, Chrome's .crdownload): each is left out by
# its name, unopened, where a thumbnail or a download cut short could be taken for a
# picture by its first bytes. The commonest (.json, .txt) are here too, so that a
# folder of photos and their sidecars loads no table.
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


@functools.lru_cache(maxsize=256)  # asked of each file of a folder, of a few suffixes
def says_its_kind(suffix: str) -> bool:
    """Whether the extension ``suffix`` (".json") names a kind of file: one of
    SIDECAR_SUFFIXES or RAW_SUFFIXES, or one Python's own table of types knows. A
    name whose last suffix is none of these (Twitter's photo.jpg_large, a backup's
    image.png~, wget's pic.jpeg.1, clip.1080p) says nothing of what the file is: a
    folder run reads its first bytes, as a name with no extension's. Pictures' and
    videos' extensions are asked apart (is_picture_suffix, is_video_path)."""
    folded = suffix.lower()
    return folded in SIDECAR_SUFFIXES or folded in RAW_SUFFIXES or folded in _types_known()


@functools.lru_cache(maxsize=1)
def _types_known() -> frozenset[str]:
    """The extensions of Python's own table of types (149 in 3.11). Not the system's
    files that mimetypes.init() reads as well (/etc/mime.types, 74 kB on Debian: 1550
    types, 3 ms): one more file opened for each folder run, a plan that differs from
    one machine to the next, and a table that names a picture's backups (.bak, .old)
    "x-trash", and .ogg sound, where their first bytes tell. Imported only here: a run
    that plans no folder, or one of pictures and their sidecars alone, never loads
    it."""
    import mimetypes

    # The tables before init() (types_map is replaced by the system's once any code
    # calls guess_type); the public ones where a Python names them otherwise.
    tables = [getattr(mimetypes, private, None) or getattr(mimetypes, public)
              for private, public in (("_types_map_default", "types_map"),
                                      ("_common_types_default", "common_types"),
                                      ("_encodings_map_default", "encodings_map"),
                                      ("_suffix_map_default", "suffix_map"))]
    return frozenset(ext.lower() for table in tables for ext in table)


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
