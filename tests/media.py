"""Small media files the tests make for themselves with PyAV."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from conftest import picture


def make_clip(path: Path, frames: int = 6, width: int = 32, height: int = 24, rate: Fraction = Fraction(24),
              audio: bool = True, sample_rate: int = 48000) -> Path:
    """An H.264 clip of moving colour waves, with an AAC sine tone when ``audio``."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=sample_rate) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(picture(height, width, seed=i), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            seconds = float(frames / rate)
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            step = 1024
            for start in range(0, len(tone), step):
                chunk = tone[start:start + step].reshape(1, -1)
                f = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                f.sample_rate, f.pts = sample_rate, start
                for packet in sound.encode(f):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def bomb_png(path: Path) -> Path:
    """A PNG whose header claims 100000×100000 pixels: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path
