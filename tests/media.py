"""Small media files the tests make for themselves with PyAV."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc, Colorspace

from conftest import picture

# A matrix's name -> how swscale names it, and the tag (matrix, primaries, transfer)
# that goes with it, in H.273's numbers: BT.601 as NTSC video (SMPTE 170M) tags it.
MATRICES = {
    "bt709": (Colorspace.ITU709, 1, ColorPrimaries.BT709, ColorTrc.BT709),
    "bt601": (Colorspace.ITU601, 6, ColorPrimaries.SMPTE170M, ColorTrc.SMPTE170M),
}


def _tag(codec_context, matrix: str, full_range: bool) -> None:
    _, codec_context.colorspace, codec_context.color_primaries, codec_context.color_trc = MATRICES[matrix]
    codec_context.color_range = ColorRange.JPEG if full_range else ColorRange.MPEG


def make_clip(path: Path, frames: int = 6, width: int = 32, height: int = 24, rate: Fraction = Fraction(24),
              audio: str | None = "aac", sample_rate: int = 48000, frame_ms: list[int] | None = None,
              rotation: int = 0, hflip: bool = False, video_streams: int = 1,
              sound_spans: list[tuple[float, float]] | None = None, colours: list[tuple[int, int, int]] | None = None,
              matrix: str | None = None, full_range: bool = False, layout: str = "mono",
              timecode: str | None = None, tags: dict | None = None, sar: Fraction | None = None,
              interlaced: bool = False, gop: int | None = None, b_frames: int = 0, sample_bits: int = 16) -> Path:
    """A clip of moving colour waves (H.264, or VP9 for .webm) with a sine tone in
    ``audio`` (aac, pcm_s16le, libopus, vorbis (stereo only) or None), in each channel of ``layout``. ``frame_ms`` gives each frame's time
    in milliseconds, for a variable frame rate (coded without B-frames: in an mp4 or
    .mov each frame then lasts until the next, the last 1/``rate``, whatever the
    pictures). ``rotation`` (degrees counterclockwise, as PyAV's VideoFrame.rotation
    reads it back: -90 is a phone held upright) and
    ``hflip`` go into a display matrix that tells players how to show the picture.
    ``video_streams`` above 1 adds copies of the picture as further video streams.
    ``sound_spans`` lists the (start, end) seconds the tone plays, for sound that starts
    late or pauses; by default it plays from 0 to the end of the picture.
    ``colours`` makes frame i one flat RGB colour, ``colours[i % len(colours)]``.
    ``matrix`` ("bt709" or "bt601") converts the frames to YUV with that matrix and
    tags the stream with it (matrix, primaries, transfer), in limited range or with
    ``full_range`` in full range; None leaves them as FFmpeg makes them: BT.601,
    limited range, untagged. ``timecode`` tags the first video stream (an mp4 makes a
    timecode track of it), ``tags`` the file. ``sar`` is the samples' aspect ratio
    (anamorphic video), written into the H.264 stream and an mp4's pasp box.
    ``interlaced`` codes the frames as interlaced H.264 (top field first) and shoots
    each frame's odd lines half a frame later, as a camera that films fields does: a
    vertical bar moving right, which combs wherever the frame is shown whole. ``gop``
    puts a keyframe every so many frames (where a seek can land). ``b_frames`` codes
    that many B-frames in every run of them, whatever the pictures, also with
    ``frame_ms``, as a camera or screen recorder that uses them writes a variable rate.
    ``sample_bits`` above 16 (24: for pcm_s24le, or flac) makes the tone of samples that
    many bits deep, handed to the encoder as s32: its lowest bits are not all 0."""
    video_codec = "libvpx-vp9" if path.suffix == ".webm" else "libx264"
    with av.open(str(path), "w") as out:
        videos = [out.add_stream(video_codec, rate=rate) for _ in range(video_streams)]
        for video in videos:
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            # One thread: x264's on several, on 2 busy cores, coded the same frames to other
            # sizes now and then (3 encodes of 210): bytes a fixture cuts at a fixed offset
            # could then fall in another frame, and its damage be found elsewhere.
            video.codec_context.thread_count = 1
            if frame_ms is not None:
                video.codec_context.time_base = video.time_base = Fraction(1, 1000)
                # An mp4 stores each frame's duration in decoding order, as the time to
                # the next one decoded: with B-frames (which x264 picks for moving
                # pictures, not for flat ones) or their delay, durations land on the
                # wrong frames, and the same times gave the last frame another length.
                video.codec_context.max_b_frames = 0
            if b_frames:
                video.codec_context.max_b_frames = b_frames
                video.codec_context.options = {"x264-params": f"b-adapt=0:bframes={b_frames}"}
            if sar is not None:
                video.codec_context.sample_aspect_ratio = sar
            if interlaced:
                video.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
            if gop is not None:
                video.codec_context.gop_size = gop
        out.metadata.update(tags or {})
        if timecode:
            videos[0].metadata["timecode"] = timecode
        if rotation or hflip:
            videos[0].set_display_rotation(rotation, hflip=hflip)
        if matrix is not None:
            for video in videos:
                _tag(video.codec_context, matrix, full_range)
        sound = out.add_stream(audio, rate=sample_rate) if audio else None
        if sound is not None:
            sound.layout = layout
            if sample_bits > 16:  # FLAC's encoder takes s16 first, and makes 16-bit sound of it
                sound.codec_context.format = "s32"
            if audio == "vorbis":  # FFmpeg's own encoder, the only one here: "experimental"
                sound.codec_context.options = {"strict": "experimental"}
        for i in range(frames):
            if colours:
                image = np.full((height, width, 3), colours[i % len(colours)], np.uint8)
            elif interlaced:
                image = fields(height, width, i)
            else:
                image = picture(height, width, seed=i)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if matrix is not None:
                frame = frame.reformat(format="yuv420p", dst_colorspace=MATRICES[matrix][0],
                                       dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG)
            if frame_ms is not None:
                frame.pts, frame.time_base = frame_ms[i], Fraction(1, 1000)
            for video in videos:
                for packet in video.encode(frame):
                    out.mux(packet)
        for video in videos:
            for packet in video.encode():
                out.mux(packet)
        if sound is not None:
            seconds = frame_ms[-1] / 1000 + 0.04 if frame_ms else float(frames / rate)
            for begin, end in sound_spans or [(0.0, seconds)]:
                first = round(begin * sample_rate)
                t = np.arange(first, round(end * sample_rate)) / sample_rate
                if sample_bits == 16:
                    tone, form = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16), "s16p"
                else:
                    top = 2 ** (sample_bits - 1) - 1
                    tone = np.round(0.3 * np.sin(2 * np.pi * 440 * t) * top).astype(np.int32) << (32 - sample_bits)
                    form = "s32p"
                step = 1024
                for start in range(0, len(tone), step):
                    chunk = tone[start:start + step]
                    f = av.AudioFrame.from_ndarray(np.tile(chunk, (sound.layout.nb_channels, 1)), format=form,
                                                   layout=layout)
                    f.sample_rate, f.pts = sample_rate, first + start
                    for packet in sound.encode(f):
                        out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def make_turning_stream(path: Path, turns: list[int], frames: int = 3, width: int = 32, height: int = 16) -> Path:
    """A bare H.264 stream (.h264) of as many parts as ``turns``, each of ``frames``
    frames whose first holds a display orientation message (SEI) that turns the
    picture by so many degrees (0: none), as a camera writes when it is turned
    midway. FFmpeg gives each message's matrix to the frame it comes with alone."""
    from av.bitstream import BitStreamFilterContext

    data = b""
    for k, turn in enumerate(turns):
        part = make_clip(path.with_name(f"{path.stem}.part{k}.mkv"), frames=frames, width=width, height=height,
                         audio=None)
        with av.open(str(part)) as inp:
            video = inp.streams.video[0]
            annexb = "h264_mp4toannexb"
            first = BitStreamFilterContext(
                f"{annexb},h264_metadata=display_orientation=insert:rotate={turn}" if turn else annexb, video)
            rest = BitStreamFilterContext(annexb, video)
            for i, packet in enumerate(p for p in inp.demux(video) if p.size):
                data += b"".join(bytes(q) for q in (rest if i else first).filter(packet))
            data += b"".join(bytes(q) for q in first.filter(None)) + b"".join(bytes(q) for q in rest.filter(None))
    path.write_bytes(data)
    return path


def fields(height: int, width: int, i: int) -> np.ndarray:
    """Frame ``i`` of a bar moving right a quarter of the width per frame, its even
    lines shot at time i and its odd lines at i + 1/2."""
    image = np.full((height, width, 3), 30, np.uint8)
    bar = max(2, width // 8)
    for parity, t in ((0, i), (1, i + 0.5)):
        left = round(t * width / 4) % width
        image[parity::2, left:left + bar] = 220
    return image


def film_frame(height: int, width: int, k: int) -> np.ndarray:
    """Frame ``k`` of a film: a bar moving right and a band moving down."""
    image = np.full((height, width, 3), 30, np.uint8)
    left = (8 + 10 * k) % (width - 12)
    image[:, left:left + 12] = 220
    image[k % height:k % height + 6] = 120
    return image


# 3:2 pulldown: four film frames A B C D make five video frames of fields
# (top, bottom) A A, B B, B C, C D, D D.
PULLDOWN = ((0, 0), (1, 1), (1, 2), (2, 3), (3, 3))


def make_telecined_clip(path: Path, film_frames: int = 8, width: int = 96, height: int = 64,
                        audio: str | None = "aac") -> Path:
    """Film at 23.976 frames a second telecined to 29.97 (``film_frames`` a multiple
    of 4 make 5/4 as many video frames), coded as interlaced H.264 of high quality,
    with a tone in ``audio`` for the whole length."""
    video_frames = []
    for group in range(film_frames // 4):
        for top, bottom in PULLDOWN:
            image = film_frame(height, width, 4 * group + top).copy()
            image[1::2] = film_frame(height, width, 4 * group + bottom)[1::2]
            video_frames.append(image)
    rate = Fraction(30000, 1001)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"crf": "8"}
        video.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        sound = out.add_stream(audio, rate=48000) if audio else None
        encode_all(out, video, [av.VideoFrame.from_ndarray(a, format="rgb24") for a in video_frames])
        if sound is not None:
            samples = round(len(video_frames) / rate * 48000)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000) * 32767).astype(np.int16)
            for start in range(0, samples, 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="s16p", layout="mono")
                frame.sample_rate, frame.pts = 48000, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode())
    return path


def add_subtitles(clip: Path, dst: Path, cues: list[tuple[str, str, str]], tracks: int = 1) -> Path:
    """Remux ``clip`` into ``dst`` (mkv) with ``tracks`` SRT subtitle tracks of (start,
    end, text) cues, as ``ffmpeg -i clip -i subs.srt`` would."""
    srt = dst.with_suffix(".srt")
    srt.write_text("".join(f"{i}\n{a} --> {b}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1)))
    with av.open(str(clip)) as a, av.open(str(srt)) as b, av.open(str(dst), "w") as out:
        streams = {}
        for container, copies in ((a, 1), (b, tracks)):
            for stream in container.streams:
                streams[(id(container), stream.index)] = [out.add_stream_from_template(stream) for _ in range(copies)]
        for container in (a, b):
            for packet in container.demux():
                if packet.dts is not None:
                    for stream in streams[(id(container), packet.stream.index)]:
                        packet.stream = stream
                        out.mux(packet)
    return dst


def packets(path: Path, kind: str) -> list[tuple[int, bytes]]:
    """(pts, bytes) of every packet of the first stream of ``kind`` in a file."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return [(p.pts, bytes(p)) for p in c.demux(stream) if p.size]


def bomb_png(path: Path) -> Path:
    """A PNG whose header claims 100000×100000 pixels: a decompression bomb."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def add_mov_text(clip: Path, dst: Path, text: str = "Hello") -> Path:
    """Remux ``clip`` into ``dst`` (mp4) with a mov_text subtitle track (an mp4's own
    kind) holding one cue of ``text`` for the first 100 ms."""
    with av.open(str(clip)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        subtitles = out.add_stream("mov_text")
        # The encoder is never used, but opened all the same, and it needs a header.
        subtitles.codec_context.subtitle_header = b"[Script Info]\r\nScriptType: v4.00+\r\n\r\n[Events]\r\n"
        for packet in inp.demux():
            if packet.size:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        data = text.encode()
        cue = av.Packet(len(data).to_bytes(2, "big") + data)
        cue.pts, cue.dts, cue.duration, cue.time_base, cue.stream = 0, 0, 100, Fraction(1, 1000), subtitles
        out.mux(cue)
    return dst


# HDR10 metadata as a P3 mastering display of 1000 cd/m² gives it: red, green, blue and
# white as CIE 1931 (x, y), luminance (max, min) in cd/m², then MaxCLL and MaxFALL.
HDR10 = (0.68, 0.32, 0.265, 0.69, 0.15, 0.06, 0.3127, 0.329, 1000.0, 0.0001, 1000, 400)


def make_hdr_clip(path: Path, frames: int = 3, width: int = 32, height: int = 24) -> Path:
    """A 10-bit H.265 clip tagged BT.2020 with the PQ transfer, with the ``HDR10``
    mastering display and light levels in SEI messages, as an HDR grade is written."""
    rx, ry, gx, gy, bx, by, wx, wy, most, least, cll, fall = HDR10

    def xy(x, y):  # x265 takes chromaticities in units of 0.00002
        return f"({round(x * 50000)},{round(y * 50000)})"

    display = f"G{xy(gx, gy)}B{xy(bx, by)}R{xy(rx, ry)}WP{xy(wx, wy)}L({round(most * 10000)},{round(least * 10000)})"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx265", rate=24)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p10le"
        ctx = video.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 9, 9, 16, ColorRange.MPEG
        ctx.options = {"x265-params": f"master-display={display}:max-cll={cll},{fall}:log-level=error"}
        encode_all(out, video, (bt2020(picture(height, width, seed=i)) for i in range(frames)))
    return path


def bt2020(image: np.ndarray):
    """``image`` (RGB) coded in 10-bit BT.2020 YUV. PyAV before 18 has no name for
    swscale's BT.2020 matrix (9) and takes it only as the RGB frame's tag."""
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    frame.colorspace = 9
    return frame.reformat(format="yuv420p10le", dst_colorspace=9, dst_color_range=ColorRange.MPEG)


def encode_all(out, video, frames) -> None:
    """Encode ``frames`` (numbered 0, 1, ... in order) on the stream ``video`` of the
    open container ``out``, then flush the encoder."""
    for i, frame in enumerate(frames):
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)


def hdr_metadata(path: Path) -> tuple | None:
    """The HDR10 metadata on the first decoded frame, laid out as ``HDR10``; None if
    it has none."""
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    display = frame.side_data.get("MASTERING_DISPLAY_METADATA")
    light = frame.side_data.get("CONTENT_LIGHT_LEVEL")
    if display is None or light is None:
        return None
    # FFmpeg's AVMasteringDisplayMetadata: (x, y) of red, green, blue and white, then
    # min and max luminance, each a fraction of two ints.
    n = struct.unpack("=20i", bytes(display)[:80])
    ratios = [n[i] / n[i + 1] for i in range(0, 20, 2)]
    return (*ratios[:8], ratios[9], ratios[8], *struct.unpack("=2I", bytes(light)[:8]))
