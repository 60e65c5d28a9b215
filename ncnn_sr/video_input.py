"""Opening a video to read: its container, and the video stream to upscale in it
(not a cover picture, nor a codec FFmpeg cannot decode), with a one-line error for
what cannot be read as a video, and why: a missing or empty file, a still picture,
an mp4 or mov cut off before its index or whose index is damaged, a file ending
too soon. Used by ``video``; knows nothing of ncnn.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import av

from . import isobmff, video_streams
from .budget import size_words
from .errors import InputError, Option, out_of_memory
from .path_names import numbered_pictures_hint
from .streams import VideoInput
from .video_codecs import _reason
from .video_packets import _ahead_of, _demuxer_said, _logged_here, _named, _room_past_ffmpeg


# Suffixes of containers, never of a bare stream (.m4v and .mpg may name one).
_NEVER_BARE = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".flv", ".ts", ".m2ts", ".mts", ".wmv", ".ogv",
                         ".3gp", ".vob"})


def _open_input(path):
    if isinstance(path, VideoInput):
        if path.opened is not None:  # the look's (probe's), as fresh as a new one
            container, path.opened = path.opened, None
            return container
        if not path.peek(1):
            raise InputError(f"{path} is empty: no video came")
        # Known from its first boxes, before FFmpeg reads through its frames (gigabytes
        # maybe) to the index, then fails at the first frame as "cannot decode".
        if not path.seekable() and _index_last(path.peek):
            raise InputError(f"{path}: {_iso_kind(path.peek(12))} whose index (moov) follows its frames cannot be "
                             "read as it comes: give it as a file, or remux it with its index first "
                             "(ffmpeg -movflags faststart)")
    elif _missing(path):
        # FFmpeg would read a name with %d in it as a numbered sequence of pictures
        # (f_%04d.png: f_0001.png, ...), then refused as "a still picture".
        # The commands name the pictures' command, the library's caller plan_jobs.
        hint = numbered_pictures_hint(path, "ncnn-sr video takes a video")
        said = (Option(hint, numbered_pictures_hint(path, "upscale_video takes a video", library=True),
                       everywhere=True),) if hint else ()
        raise InputError(f"{path}: file not found", *said)
    room = None  # where FFmpeg's ENOMEM was the file's
    try:
        # Standard input redirected from a file is read further as the file is.
        container = video_streams.open_reading(path) if isinstance(path, VideoInput) \
            and not path.seekable() else video_streams.open_file(_named(path))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except PermissionError:  # PyAV's is one too; else "not a video FFmpeg can read", of a good one
        raise InputError(f"{path}: permission denied") from None
    except (MemoryError, OSError) as e:
        if out_of_memory(e):  # FFmpeg's ENOMEM (PyAV's MemoryError) or the system's: not the file's fault
            room = _room_past_ffmpeg()
            if room is None:
                raise MemoryError(f"{path}: cannot open: {_reason(e)}") from e
            # ...unless there was room for any one allocation FFmpeg makes: then a
            # header asked for more (a table's entry count past 2 GB, as damage
            # leaves), said below, where the ENOMEM is not its context.
        elif not _ends_too_soon(path, e):
            raise
        else:
            raise InputError(f"{path}: not a video FFmpeg can read (it ends too soon, as a copy or download cut "
                             "short does)") from None
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError) as e:
        if isinstance(path, VideoInput) and isinstance(e, av.error.NotImplementedError):
            # FFmpeg's reader of the kind (an APNG's) asked to go back in it: a stream cannot.
            raise InputError(f"{path}: FFmpeg reads this kind of video only by going back in it: "
                             "give it as a file") from None
        if not isinstance(path, VideoInput) and _empty_file(path):  # a copy or download cut short, say
            raise InputError(f"{path}: not a video: the file is empty (0 bytes)") from None
        if damage := _index_damage(path):  # there, but not found
            raise InputError(f"{path}: {damage}: FFmpeg cannot find its frames") from None
        if not isinstance(path, VideoInput) and (kind := _index_missing(path)):
            raise InputError(f"{path}: {kind} without its index (moov), as one cut off before its end is: FFmpeg "
                             "cannot find its frames") from None
        raise InputError(f"{path}: not a video FFmpeg can read ({_reason(e)})") from None
    if room is not None:
        raise InputError(f"{path}: not a video FFmpeg can read: its headers ask FFmpeg for more memory than it "
                         f"gives at once, with {size_words(room, down=True)} free (damaged, most likely)")
    # FFmpeg reads a lone picture (a JPEG named .mp4) as a one-frame video through its
    # image demuxers, all named *_pipe or image2.
    kind = container.format.name
    if kind == "image2" or kind.endswith("_pipe"):
        try:
            raise _still_picture(container, path)
        finally:
            container.close()
    # A still HEIF or AVIF comes through FFmpeg's mp4 reader, as a video of one frame: a
    # HEIC's at its coded size (whole blocks of 64 pixels), cropped by none.
    moving = _moving(container)
    if moving and all(video_streams.still_item(container, s) for s in moving):
        brand = container.metadata.get("major_brand", "").strip() or "heif"
        container.close()
        raise InputError(f"{path}: a still picture ({brand}), not a video: upscale it as a picture ('ncnn-sr upscale' into out.png, say)")
    return container


def _ends_too_soon(path, error: OSError) -> bool:
    """Whether FFmpeg's EIO ``error`` on opening ``path`` is its word for data that ends
    within what it was reading (Matroska cut inside its header: "File ended prematurely"),
    rather than a disk that failed a read: the file's bytes read again without an error.
    A stream's read that failed comes out as Python's own error, not FFmpeg's."""
    if not isinstance(error, av.error.FFmpegError) or error.errno != errno.EIO:
        return False
    if isinstance(path, VideoInput) or not os.path.isfile(path):  # a named pipe's writer is gone: read once
        return True
    try:
        with open(path, "rb") as f:
            # What an open reads: the header and a few MB of probing, and Matroska's index
            # near the end; not the whole of a film.
            left = 64 << 20
            while left > 0 and (chunk := f.read(min(left, 1 << 20))):
                left -= len(chunk)
            f.seek(max(f.tell(), os.fstat(f.fileno()).st_size - (1 << 20)))
            f.read()
    except OSError:
        return False
    return True


def _missing(path) -> bool:
    """Whether no file is named ``path`` (a folder on the way unreadable is left to
    FFmpeg, which says permission denied)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        pass
    return False


def _still_picture(container, path) -> InputError:
    """The error for ``path``, which FFmpeg opened (``container``) by a picture reader:
    a still picture to upscale as one; one of a kind FFmpeg decodes and Pillow, which
    reads the pictures ``ncnn-sr upscale`` takes, does not (DPX, EXR, PAM), to convert
    first; or no picture at all, only named as one."""
    from .images import ANIMATED_WEBP, animated_webp  # Pillow, only for a picture given as a video

    kind = container.format.name
    if kind == "webp_pipe" and not isinstance(path, VideoInput) and animated_webp(path):
        return InputError(f"{path}: {ANIMATED_WEBP}: upscale it as a picture, into a webp, png or gif")
    if isinstance(path, VideoInput) or _a_picture(path):
        return InputError(f"{path}: a still picture ({kind.removesuffix('_pipe')}), not a video: "
                          "upscale it as a picture ('ncnn-sr upscale' into out.png, say)")
    # FFmpeg's image2 goes by the name alone: a text file named .png is no picture;
    # its other readers went by what the file holds.
    if kind == "image2" and not _decodes(container):
        return InputError(f"{path}: not a video, nor a picture (only named as one)")
    video = container.streams.video
    codec = video[0].codec_context.name if video and video[0].codec_context is not None else kind.removesuffix("_pipe")
    return InputError(f"{path}: a still picture ({codec}), not a video, of a kind ",
                      Option("ncnn-sr upscale", "read_image", everywhere=True),
                      " does not read either: convert it (to PNG or TIFF, say) to upscale it")


def _decodes(container) -> bool:
    """Whether the first video stream of ``container`` gives a frame."""
    try:
        return bool(container.streams.video) and next(container.decode(video=0), None) is not None
    except av.error.FFmpegError:
        return False


def _a_picture(path: str | os.PathLike) -> bool:
    from PIL import Image, UnidentifiedImageError

    from . import heif
    from .images import pillow_warnings

    heif.register_for(path)
    try:
        with pillow_warnings(), Image.open(path):
            return True
    except Image.DecompressionBombError:  # its warning is ignored by pillow_warnings
        return True  # a picture all the same, only too large: its header said its size
    except (OSError, UnidentifiedImageError, ValueError):
        return False


def _empty_file(path: str | os.PathLike) -> bool:
    try:
        return os.path.getsize(path) == 0 and os.path.isfile(path)
    except OSError:
        return False


# The boxes an mp4 or a mov starts with (an old QuickTime file has no ftyp).
_MP4_FIRST = (b"ftyp", b"wide", b"free", b"skip", b"mdat", b"moov", b"pnot")


def _iso_kind(head: bytes) -> str:
    """What an mp4 or mov whose first 12 bytes are ``head`` is called: a mov where its
    file type (ftyp) says QuickTime ("qt  "), or where it has none, as QuickTime
    files made before the ftyp existed (an mp4 has one), an mp4 otherwise."""
    return "a mov (QuickTime)" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "an mp4"


def _index_missing(path: str | os.PathLike) -> str | None:
    """What the file ``path`` is (``_iso_kind``) where it is an mp4 or mov with frames
    (mdat) but no index (moov), which its muxer writes last: a recording, copy or
    download cut short; None otherwise."""
    try:
        with open(path, "rb") as f:
            def read(at: int, n: int) -> bytes:
                f.seek(at)
                return f.read(n)

            kinds = [box.kind for box in isobmff.boxes(read)]
            head = read(0, 12)
    except OSError:
        return None
    if kinds and kinds[0] in _MP4_FIRST and b"mdat" in kinds and b"moov" not in kinds:
        return _iso_kind(head)
    return None


# How large a box of an mp4's or mov's, beside its frames (mdat), is looked into for
# damage (``_index_damage``): an index (moov) is a few MB for hours of video.
_INDEX_MOST = 64 << 20


def _index_damage(path) -> str | None:
    """What is wrong with the index (moov) of the file ``path`` where it is an mp4 or
    mov whose index holds a box of a damaged kind (``isobmff.misnamed``), which FFmpeg
    reads past as if it were not there: a track's, and it found no video; the index's
    own, and it found no index. None otherwise, or for a stream."""
    if isinstance(path, VideoInput):
        return None
    try:
        with open(path, "rb") as f:
            def read(at: int, n: int) -> bytes:
                f.seek(at)
                return f.read(n)

            if read(4, 4) not in _MP4_FIRST:
                return None
            found = []
            for box in isobmff.boxes(read):
                if box.kind != b"mdat" and box.end is not None and box.end - box.body <= _INDEX_MOST:
                    found.append((box.kind, read(box.body, box.end - box.body)))
    except OSError:
        return None
    wrong = isobmff.misnamed(found)
    if wrong is None:
        return None
    should, kind = wrong
    shown = f"'{kind.decode()}'" if all(32 <= b < 127 for b in kind) else f"0x{kind.hex()}"
    return f"its index (moov) is damaged (its {should.decode()} box's kind reads {shown})"


def _boxes_cut_off(path) -> bool:
    """Whether the last box of the mp4 or mov file ``path`` runs past its end, as in
    a file cut off (its index, written last, cut short, it lists frames it lost); not
    for a stream, which is not looked at."""
    if isinstance(path, VideoInput):
        return False
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size

            def read(at: int, n: int) -> bytes:
                f.seek(at)
                return f.read(n)

            return any(box.end is not None and box.end > size for box in isobmff.boxes(read))
    except OSError:
        return False


def _index_last(peek) -> bool:
    """Whether the file whose first n bytes ``peek(n)`` gives is an mp4 or mov with its
    frames (mdat) before its index (moov), which a reader that cannot go back never
    gets to use. Only boxes that start in its first 64 KB are looked at."""
    if peek(8)[4:8] not in _MP4_FIRST:
        return False
    for box in isobmff.boxes(lambda at, n: peek(at + n)[at:at + n], before=1 << 16):
        if box.kind in (b"moov", b"mdat"):
            return box.kind == b"mdat"
    return False


def _moving(container) -> list:
    """The video streams of ``container`` that are not a still picture attached to the
    file (an mp4's cover art)."""
    return [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]


def _video_stream(container, path):
    """The video to upscale: the first video stream that is not a still picture
    attached to the file (an mp4's cover art may come first) and that FFmpeg can
    decode (a later one is upscaled where the first is of a codec it does not know)."""
    moving = _moving(container)
    if not moving and (damage := _index_damage(path)):  # a track's box damaged, left out
        raise InputError(f"{path}: cannot find its video: {damage}")
    if not moving and not container.streams.video and not container.streams.audio:
        # FFmpeg took it for lyrics or subtitles: a video whose start is cut off (read as
        # LRC lyrics), or a subtitle file given as the video; "no video stream" hid which.
        named = not isinstance(path, VideoInput) and Path(path).suffix.lower() in _NEVER_BARE
        raise InputError(f"{path}: not a video FFmpeg can read (it reads as {container.format.long_name}"
                         f"{': damaged, or its start cut off?' if named else ''})")
    if not moving:
        # A song with its album art: said as no video alone, the picture it holds was a puzzle.
        cover = ", only a cover picture (a still attached to the file)" if container.streams.video else ""
        raise InputError(f"{path}: has no video stream{cover}")
    # An animated AVIF's still picture comes first, its animation after it.
    animated = [s for s in moving if not video_streams.still_item(container, s)]
    if len(animated) > 1:
        # An mp4's cover art remuxed into a .mkv, a track of one picture: never the video
        # beside it. Looked for in a stream's first packets, read ahead of its run: it
        # cannot be opened again (a pipe, or standard input, which is one opening).
        ahead = _ahead_of(path, container, start=True).read if isinstance(path, VideoInput) else None
        animated = [s for s in animated if not video_streams.still_track(container, s, ahead)] or animated
    decodable = next((s for s in animated or moving if s.codec_context is not None), None)
    if decodable is None and (damage := _index_damage(path)):  # the box naming its codec (stsd) damaged
        raise InputError(f"{path}: cannot find its video's codec: {damage}")
    if decodable is None:  # a codec FFmpeg does not know, or a damaged header
        raise InputError(f"{path}: cannot decode its video: FFmpeg knows no decoder for it")
    return decodable


def _open_run_input(src) -> tuple:
    """``_open_input(src)``, and what its demuxer logged as an error as it opened it:
    FFmpeg reads a file's first packets then (a few seconds' worth, to find its
    streams), and damage among them is logged there, not as they are handed out."""
    with _logged_here() as logs:
        container = _open_input(src)
    return container, _demuxer_said(container, logs)


def _decode_in_order(video_in) -> None:
    """Have ``video_in`` decoded with slice threads only. A frame-threaded decoder
    tells of a packet it refuses only when that frame's turn to come out arrives; on
    the last flush PyAV then drops that error and every frame still queued behind it
    (a file cut off in its last packet lost 2 frames of 30, unsaid), and midway the
    refusal went unsaid. Decoding costs little beside upscaling."""
    video_in.thread_type = "SLICE"
